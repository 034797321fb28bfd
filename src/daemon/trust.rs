//! What a Git-sourced environment may choose, and what only `daemon.yaml` says. Anyone who can
//! push to the branch chooses the desired state (documents, strategy, mode, prune, bases inside
//! the checkout), never where it is sent or with which credentials: the gateway URL and every
//! secret reference come from the environment's `gateway:` in `daemon.yaml`. A repository's
//! `mcp-gitops.yaml` naming them differently is refused as invalid, `${VAR}` reads only the
//! variables `allowed_env` lists, `{file:}` references resolve inside `secrets_dir`, and bases
//! stay inside the checkout.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::core::fsutil::{ConfineError, confined};
use crate::core::secrets::Secret;
use crate::engine::apply::Keys;
use crate::engine::environment::{self, CONFIG_FILE, Config, EnvError, SecretRef};
use crate::engine::reconcile::{ConnectError, ReconcileError, Settings, Target, connect};
use crate::gateway::Client;

/// An environment's gateway and credentials, as `daemon.yaml` names them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    pub url: String,
    #[serde(default)]
    pub token: Option<SecretRef>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub jwt_secret: Option<SecretRef>,
    #[serde(default)]
    pub secret: Option<SecretRef>,
    #[serde(default)]
    pub gateway_secret: Option<SecretRef>,
}

/// The operator's rules for one Git-sourced environment.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    pub connection: Connection,
    /// The process variables the repository's files may substitute with `${VAR}`.
    pub allowed_env: Vec<String>,
    /// Where `{file:}` references resolve (and must stay).
    pub secrets_dir: Option<PathBuf>,
}

/// Why a revision (or `daemon.yaml`) is refused.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error(
        "{file}: the repository may not choose this environment's gateway or credentials: {}; daemon.yaml sets them: remove these fields from the file (or make them equal to daemon.yaml's)",
        fields.join(", ")
    )]
    Connection { file: String, fields: Vec<String> },
    #[error(
        "{file}: ${{{var}}}: not in this environment's allowed_env in daemon.yaml (a Git source may substitute only the variables listed there)"
    )]
    Var { file: String, var: String },
    #[error("{field}: {file}: a file reference needs secrets_dir in daemon.yaml")]
    NoSecretsDir { field: &'static str, file: String },
    #[error("{field}: {source}")]
    SecretFile {
        field: &'static str,
        #[source]
        source: ConfineError,
    },
    #[error("{field}: {reason}")]
    Read { field: &'static str, reason: String },
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
}

impl crate::core::error::Classify for TrustError {
    fn class(&self) -> crate::core::error::ErrorClass {
        use crate::core::error::ErrorClass;
        match self {
            TrustError::Read { .. } => ErrorClass::Io,
            TrustError::Connect(e) => e.class(),
            TrustError::Env(e) => e.class(),
            TrustError::Reconcile(e) => e.class(),
            _ => ErrorClass::Invalid,
        }
    }
}

fn shown(r: &SecretRef) -> String {
    match (&r.env, &r.file) {
        (Some(v), _) => format!("{{env: {v}}}"),
        (None, Some(f)) => format!("{{file: {}}}", f.display()),
        (None, None) => "{}".into(),
    }
}

fn same_url(a: &str, b: &str) -> bool {
    let n = |u: &str| u.trim().trim_end_matches('/').to_string();
    n(a) == n(b)
}

impl Trust {
    /// The rules of an environment from `daemon.yaml`'s `gateway:` and `allowed_env`, checked:
    /// only for Git sources, a gateway URL, token or user and jwt_secret, every secret reference
    /// a set variable or a file inside `secrets_dir`. The problems as (pointer below
    /// `gateway`, reason).
    pub fn checked(
        connection: Connection,
        allowed_env: Vec<String>,
        git: bool,
        secrets_dir: Option<&Path>,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> (Option<Trust>, Vec<(String, String)>) {
        let mut p: Vec<(String, String)> = Vec::new();
        let mut add = |at: &str, why: String| p.push((at.to_string(), why));
        if !git {
            add(
                "",
                "only for Git sources: a directory's own mcp-gitops.yaml names its gateway".into(),
            );
            return (None, p);
        }
        if let Err(e) = crate::gateway::check_url(&connection.url) {
            add("/url", e.to_string());
        }
        let trust = Trust {
            connection,
            allowed_env,
            secrets_dir: secrets_dir.map(Path::to_path_buf),
        };
        let c = &trust.connection;
        for (field, r) in [
            ("token", &c.token),
            ("jwt_secret", &c.jwt_secret),
            ("secret", &c.secret),
            ("gateway_secret", &c.gateway_secret),
        ] {
            let Some(r) = r else { continue };
            let at = format!("/{field}");
            match (&r.env, &r.file) {
                (Some(var), None) if lookup(var).is_none_or(|v| v.is_empty()) => {
                    add(&at, format!("the environment variable {var} is not set"))
                }
                (Some(_), None) => {}
                (None, Some(_)) => {
                    if let Err(e) = trust.resolve(field, &Some(r.clone())) {
                        add(&at, e.to_string().replacen(&format!("{field}: "), "", 1));
                    }
                }
                _ => add(&at, "give exactly one of env: VAR or file: PATH".into()),
            }
        }
        if c.token.is_none() && (c.user.is_none() || c.jwt_secret.is_none()) {
            add("", "give token, or user and jwt_secret".into());
        }
        (Some(trust), p)
    }

    pub fn allows(&self, var: &str) -> bool {
        self.allowed_env.iter().any(|a| a == var)
    }

    /// Every connection field of an environment file that differs from `daemon.yaml`'s (absent
    /// ones are fine; secret references are compared as written).
    pub fn check(&self, c: &Config, file: &str) -> Result<(), TrustError> {
        let d = &self.connection;
        let mut fields = Vec::new();
        if !c.gateway.trim().is_empty() && !same_url(&c.gateway, &d.url) {
            fields.push(format!("gateway {}", c.gateway.trim()));
        }
        if let Some(u) = &c.user
            && d.user.as_ref() != Some(u)
        {
            fields.push(format!("user {u}"));
        }
        for (field, theirs, ours) in [
            ("token", &c.token, &d.token),
            ("jwt_secret", &c.jwt_secret, &d.jwt_secret),
            ("secret", &c.secret, &d.secret),
            ("gateway_secret", &c.gateway_secret, &d.gateway_secret),
        ] {
            if let Some(t) = theirs
                && ours.as_ref() != Some(t)
            {
                fields.push(format!("{field} {}", shown(t)));
            }
        }
        if fields.is_empty() {
            Ok(())
        } else {
            Err(TrustError::Connection {
                file: file.to_string(),
                fields,
            })
        }
    }

    /// A `{file:}` reference resolved inside `secrets_dir` (symbolic links followed); an
    /// `{env:}` one as it is.
    pub fn resolve(
        &self,
        field: &'static str,
        r: &Option<SecretRef>,
    ) -> Result<Option<SecretRef>, TrustError> {
        let Some(SecretRef {
            file: Some(file), ..
        }) = r
        else {
            return Ok(r.clone());
        };
        let Some(dir) = &self.secrets_dir else {
            return Err(TrustError::NoSecretsDir {
                field,
                file: file.display().to_string(),
            });
        };
        let real =
            confined(dir, file).map_err(|source| TrustError::SecretFile { field, source })?;
        Ok(Some(SecretRef {
            env: None,
            file: Some(real),
        }))
    }

    /// Replace the file's connection by `daemon.yaml`'s.
    pub fn apply(&self, c: &mut Config) -> Result<(), TrustError> {
        let d = &self.connection;
        c.gateway = d.url.clone();
        c.user = d.user.clone();
        c.token = self.resolve("token", &d.token)?;
        c.jwt_secret = self.resolve("jwt_secret", &d.jwt_secret)?;
        c.secret = self.resolve("secret", &d.secret)?;
        c.gateway_secret = self.resolve("gateway_secret", &d.gateway_secret)?;
        Ok(())
    }

    /// A client for `daemon.yaml`'s connection itself (a source-less gateway), with the
    /// gateway's key: what export and import of such a gateway need.
    pub fn connect(&self, s: &Settings) -> Result<(Client, Keys), TrustError> {
        let read =
            |field: &'static str, r: &Option<SecretRef>| -> Result<Option<String>, TrustError> {
                match self.resolve(field, r)? {
                    None => Ok(None),
                    Some(r) => r
                        .read(Path::new("/"), &environment::env_lookup)
                        .map_err(|e| TrustError::Read {
                            field,
                            reason: e.to_string(),
                        }),
                }
            };
        let c = &self.connection;
        let client = connect(
            &c.url,
            read("token", &c.token)?,
            c.user.clone(),
            read("jwt_secret", &c.jwt_secret)?,
            s,
        )?;
        let keys = Keys::new(
            read("secret", &c.secret)?.map(|v| Secret::new(&v)),
            read("gateway_secret", &c.gateway_secret)?.map(|v| Secret::new(&v)),
        );
        Ok((client, keys))
    }

    /// Load the environment at `dir` of a checkout at `root` under these rules and connect it
    /// with `daemon.yaml`'s connection (no request yet).
    pub fn open(&self, dir: &Path, root: &Path, s: &Settings) -> Result<Target, TrustError> {
        let lookup = |var: &str| {
            if self.allows(var) {
                environment::env_lookup(var)
            } else {
                None
            }
        };
        let mut env = environment::load_confined(dir, root, &lookup).map_err(|e| match e {
            EnvError::Unset { file, var, .. } if !self.allows(&var) => {
                TrustError::Var { file, var }
            }
            e => e.into(),
        })?;
        self.check(&env.config, &dir.join(CONFIG_FILE).display().to_string())?;
        self.apply(&mut env.config)?;
        Ok(Target::new(env, s)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(v: &str) -> Option<SecretRef> {
        Some(SecretRef {
            env: Some(v.into()),
            file: None,
        })
    }

    fn file(p: &str) -> Option<SecretRef> {
        Some(SecretRef {
            env: None,
            file: Some(p.into()),
        })
    }

    fn trust() -> Trust {
        Trust {
            connection: Connection {
                url: "http://gw.internal:4444".into(),
                user: Some("admin@example.com".into()),
                jwt_secret: env("JWT_SECRET_KEY"),
                secret: env("AUTH_ENCRYPTION_SECRET"),
                ..Connection::default()
            },
            ..Trust::default()
        }
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn confined_bases_stay_inside_the_root_at_every_level() {
        let t = tempfile::tempdir().unwrap();
        let (root, outside) = (t.path().join("checkout"), t.path().join("outside"));
        write(&outside, CONFIG_FILE, "gateway: http://x\n");
        let prod = root.join("envs/prod");
        write(
            &root.join("envs/base"),
            CONFIG_FILE,
            "bases: [../../../outside]\n",
        );
        write(&prod, CONFIG_FILE, "gateway: http://x\nbases: [../base]\n");
        // Unconfined (plan/apply of one's own files): the base of the base is read.
        environment::load_with_vars(&prod, &|_| None).unwrap();
        let err = environment::load_confined(&prod, &root, &|_| None).unwrap_err();
        let EnvError::Escape { base, source } = &err else {
            panic!("{err:?}")
        };
        assert!(
            base.ends_with("envs/prod/../base/../../../outside"),
            "{base}"
        );
        assert!(matches!(
            source,
            crate::core::fsutil::ConfineError::Outside { .. }
        ));
        // A symbolic link inside the root that leads out of it.
        std::os::unix::fs::symlink(&outside, root.join("envs/link")).unwrap();
        write(&prod, CONFIG_FILE, "bases: [../link]\n");
        assert!(matches!(
            environment::load_confined(&prod, &root, &|_| None),
            Err(EnvError::Escape { .. })
        ));
        // Inside: fine, and the file without a gateway loads (the CLI then asks for one).
        write(&prod, CONFIG_FILE, "bases: [../base]\n");
        write(&root.join("envs/base"), CONFIG_FILE, "mode: auto\n");
        let env = environment::load_confined(&prod, &root, &|_| None).unwrap();
        let err = Target::new(env, &Default::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("gateway: is required"), "{err}");
    }

    #[test]
    fn a_file_may_repeat_the_connection_but_not_change_it() {
        let t = trust();
        // Absent, or equal (a trailing slash aside): fine.
        t.check(&Config::default(), "f").unwrap();
        let same = Config {
            gateway: "http://gw.internal:4444/".into(),
            user: Some("admin@example.com".into()),
            jwt_secret: env("JWT_SECRET_KEY"),
            secret: env("AUTH_ENCRYPTION_SECRET"),
            ..Config::default()
        };
        t.check(&same, "f").unwrap();
        // Anything else names every field that differs, and only references, never values.
        let other = Config {
            gateway: "http://127.0.0.1:9".into(),
            token: file("/etc/hostname"),
            user: Some("admin@example.com".into()),
            jwt_secret: env("MCP_GITOPS_WEBHOOK_SECRET"),
            gateway_secret: env("AUTH_ENCRYPTION_SECRET"),
            ..Config::default()
        };
        let err = t
            .check(&other, "x@c:envs/prod/mcp-gitops.yaml")
            .unwrap_err();
        let TrustError::Connection { fields, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            fields,
            &[
                "gateway http://127.0.0.1:9",
                "token {file: /etc/hostname}",
                "jwt_secret {env: MCP_GITOPS_WEBHOOK_SECRET}",
                "gateway_secret {env: AUTH_ENCRYPTION_SECRET}",
            ]
        );
        assert!(
            err.to_string()
                .starts_with("x@c:envs/prod/mcp-gitops.yaml: the repository may not choose"),
            "{err}"
        );
        let user = Config {
            user: Some("someone@else".into()),
            ..Config::default()
        };
        assert!(t.check(&user, "f").is_err());
    }

    #[test]
    fn the_connection_is_daemon_yamls_with_files_inside_the_secrets_dir() {
        let d = tempfile::tempdir().unwrap();
        let secrets = d.path().join("secrets");
        std::fs::create_dir_all(&secrets).unwrap();
        std::fs::write(secrets.join("prod-token"), "t0k3n\n").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", secrets.join("escape")).unwrap();
        let mut t = trust();
        t.connection.token = file("prod-token");
        // No secrets_dir: a file reference is refused.
        let mut c = Config {
            mode: crate::engine::environment::Mode::Observe,
            ..Config::default()
        };
        assert!(matches!(
            t.apply(&mut c),
            Err(TrustError::NoSecretsDir { field: "token", .. })
        ));
        t.secrets_dir = Some(secrets.clone());
        t.apply(&mut c).unwrap();
        assert_eq!(c.gateway, "http://gw.internal:4444");
        assert_eq!(c.user.as_deref(), Some("admin@example.com"));
        assert_eq!(c.jwt_secret, env("JWT_SECRET_KEY"));
        assert_eq!(
            c.mode,
            crate::engine::environment::Mode::Observe,
            "desired state stays"
        );
        let token = c.token.as_ref().unwrap();
        assert_eq!(
            token.file,
            Some(secrets.canonicalize().unwrap().join("prod-token"))
        );
        assert_eq!(
            token.read(Path::new("/"), &|_| None).unwrap().as_deref(),
            Some("t0k3n")
        );
        // Leaving the directory, by '..', an absolute path or a symbolic link: refused.
        for f in ["../x", "/etc/hostname", "escape"] {
            std::fs::write(d.path().join("x"), "x").unwrap();
            t.connection.token = file(f);
            match t.apply(&mut c) {
                Err(TrustError::SecretFile {
                    field: "token",
                    source: ConfineError::Outside { .. },
                }) => {}
                other => panic!("{f}: {other:?}"),
            }
        }
    }
}

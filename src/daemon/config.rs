//! `daemon.yaml`: the environments one `mcp-gitops run` process manages, where each one's
//! desired state comes from (a local directory or a path in a Git branch), how often it is
//! checked, an optional backup schedule, and the HTTP listener. Read and checked as a whole
//! before anything starts: every problem is listed with the file and a JSON pointer.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(super) use super::config_raw::RawDuration;
use super::config_raw::{Raw, RawBackup, RawEnv, RawGit, RawGitAuth};
use super::listener::{self, ListenerSpec};
use super::schedule::{Schedule, parse_duration};
use super::trust::Trust;
use crate::core::document::{self, Format};
use crate::core::webhook::HookSecret;
use crate::engine::environment::{Mode, SecretRef};
use crate::engine::git::{self, GitAuth, Remote};

/// Where the listener binds unless `listen` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9090";
/// Drift check and fetch period unless an environment says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Webhook requests allowed per minute unless `webhook.rate_limit` says otherwise.
pub const DEFAULT_WEBHOOK_RATE: u32 = 60;
/// Wrongly signed webhook requests allowed per client address and minute unless
/// `webhook.failure_limit` says otherwise.
pub const DEFAULT_WEBHOOK_FAILURES: u32 = 10;

/// The checked configuration.
#[derive(Debug)]
pub struct DaemonConfig {
    pub listen: SocketAddr,
    /// State, the Git cache and checkouts live here.
    pub state_dir: PathBuf,
    pub webhook: Option<Webhook>,
    pub listener: ListenerSpec,
    /// The web UI (None: no `ui:` section, the UI is off).
    pub ui: Option<super::ui_config::UiSpec>,
    /// Who may call the HTTP API, and its limits.
    pub api: super::api_config::ApiSpec,
    pub environments: Vec<EnvSpec>,
}

/// `POST /hooks/git`: the shared secret of the `X-Hub-Signature-256` HMAC, a rate limit for
/// signed requests and one per client address for wrongly signed ones.
#[derive(Debug)]
pub struct Webhook {
    pub secret: HookSecret,
    pub per_minute: u32,
    pub failures_per_minute: u32,
}

/// One managed environment.
#[derive(Debug, Clone)]
pub struct EnvSpec {
    pub name: String,
    pub source: SourceSpec,
    /// Overrides the environment file's `mode`.
    pub mode: Option<Mode>,
    pub interval: Duration,
    pub parallelism: usize,
    pub allow_mass_delete: bool,
    pub backup: Option<BackupSpec>,
    /// A Git source's connection and what its files may read (never the repository's).
    pub trust: Option<Trust>,
}

/// Where an environment's desired state comes from.
#[derive(Debug, Clone)]
pub enum SourceSpec {
    /// An environment directory on disk, watched for changes.
    Dir(PathBuf),
    /// An environment directory at `path` in `branch` of a repository.
    Git(Box<GitSpec>),
}

#[derive(Debug, Clone)]
pub struct GitSpec {
    pub remote: Remote,
    pub branch: String,
    /// Repository-relative, cleaned ("" is the root).
    pub path: String,
}

/// Scheduled backups of the environment's live gateway into a Git branch.
#[derive(Debug, Clone)]
pub struct BackupSpec {
    pub schedule: Schedule,
    pub remote: Remote,
    pub branch: String,
    /// Repository-relative file path.
    pub path: String,
    pub message_prefix: String,
    pub push_attempts: u32,
}

/// Why the configuration cannot be used: every problem, each with file and pointer.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Load(#[from] document::LoadError),
    #[error("{file}: {} problem{}\n{}", problems.len(), if problems.len() == 1 { "" } else { "s" },
        problems.iter().map(|p| format!("  {file}: {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { file: String, problems: Vec<String> },
}

/// Collects problems as `pointer: reason`.
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, pointer: impl std::fmt::Display, reason: impl std::fmt::Display) {
        self.0.push(format!("{pointer}: {reason}"));
    }
}

fn default_state_dir() -> PathBuf {
    let var = |v: &str| {
        std::env::var_os(v)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    };
    var("XDG_STATE_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("mcp-gitops")
}

/// Environment names become metric labels and directory names.
pub(super) fn check_name(name: &str) -> Result<(), &'static str> {
    let ok_first = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok_rest = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if name.is_empty() || name.len() > 63 || !ok_first || !ok_rest {
        return Err(
            "must be 1-63 characters: lower-case letters, digits, '-', '_', '.', starting with a letter or digit",
        );
    }
    Ok(())
}

fn git_auth(a: &RawGitAuth, base: &Path) -> GitAuth {
    GitAuth {
        token_env: a.token_env.clone(),
        username: a.username.clone(),
        ssh_key: a.ssh_key.as_ref().map(|p| base.join(p)),
        ssh_passphrase_env: a.ssh_passphrase_env.clone(),
        known_hosts: a.known_hosts.as_ref().map(|p| base.join(p)),
        insecure_skip_host_key_check: a.insecure_skip_host_key_check,
        ..GitAuth::default()
    }
}

/// A local repository path is taken relative to the configuration file.
fn resolve_url(url: &str, base: &Path) -> String {
    let local = !url.contains("://") && !url.contains(':') && !url.starts_with('/');
    if local {
        base.join(url).display().to_string()
    } else {
        url.to_string()
    }
}

pub(super) fn read_secret(
    r: &SecretRef,
    base: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    if r.env.is_some() == r.file.is_some() {
        return Err("give exactly one of env: VAR or file: PATH".into());
    }
    match r.read(base, lookup) {
        Ok(Some(s)) if !s.is_empty() => Ok(s),
        Ok(_) => Err(match &r.env {
            Some(var) => format!("the environment variable {var} is empty"),
            None => format!(
                "{} is empty",
                base.join(r.file.as_deref().unwrap_or(Path::new("")))
                    .display()
            ),
        }),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether repository path `inner` is `outer` or below it.
pub fn within(inner: &str, outer: &str) -> bool {
    outer.is_empty() || inner == outer || inner.starts_with(&format!("{outer}/"))
}

/// Read and check `daemon.yaml`. `${VAR}` is substituted from `lookup`.
pub fn load(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<DaemonConfig, ConfigError> {
    let (name, text) = document::read_text(path)?;
    // Parsed first, then substituted inside strings: a value cannot change the structure.
    let mut value = document::parse_value(&text, Some(Format::Yaml), &name)?;
    crate::engine::environment::substitute_value(&mut value, &name, lookup, &|_| false).map_err(
        |e| ConfigError::Invalid {
            file: name.clone(),
            problems: vec![e.to_string().replacen(&format!("{name}: "), "", 1)],
        },
    )?;
    let raw: Raw = document::from_value(value, &name)?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut p = Problems(Vec::new());

    let listen = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = listen.parse::<SocketAddr>().unwrap_or_else(|e| {
        p.add(
            "/listen",
            format!("'{listen}' is not an address:port ({e})"),
        );
        DEFAULT_LISTEN.parse().expect("default address")
    });
    let state_dir = raw
        .state_dir
        .map(|d| base.join(d))
        .unwrap_or_else(default_state_dir);
    let webhook = raw.webhook.and_then(|w| {
        let per_minute = w.rate_limit.unwrap_or(DEFAULT_WEBHOOK_RATE);
        if per_minute == 0 {
            p.add(
                "/webhook/rate_limit",
                "must be at least 1 (requests per minute)",
            );
        }
        let failures_per_minute = w.failure_limit.unwrap_or(DEFAULT_WEBHOOK_FAILURES);
        if failures_per_minute == 0 {
            p.add(
                "/webhook/failure_limit",
                "must be at least 1 (requests per client and minute)",
            );
        }
        match read_secret(&w.secret, &base, lookup) {
            Ok(s) => Some(Webhook {
                secret: HookSecret::new(&s),
                per_minute,
                failures_per_minute,
            }),
            Err(e) => {
                p.add("/webhook/secret", e);
                None
            }
        }
    });
    let listener = listener::check(raw.listener.unwrap_or_default(), &mut |at, why| {
        p.add(at, why)
    });
    let ui = raw
        .ui
        .map(|u| super::ui_config::check(u, &base, lookup, &mut |at, why| p.add(at, why)));
    let secrets_dir = raw.secrets_dir.map(|d| base.join(d));
    if let Some(d) = &secrets_dir
        && !d.is_dir()
    {
        p.add(
            "/secrets_dir",
            format!("{} is not a directory", d.display()),
        );
    }
    if raw.environments.is_empty() {
        p.add("/environments", "lists no environment");
    }
    let mut environments = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (i, e) in raw.environments.into_iter().enumerate() {
        let at = format!("/environments/{i}");
        if let Err(why) = check_name(&e.name) {
            p.add(format!("{at}/name"), format!("'{}' {why}", e.name));
        }
        if names.contains(&e.name) {
            p.add(format!("{at}/name"), format!("'{}' is used twice", e.name));
        }
        names.push(e.name.clone());
        if let Some(spec) = env_spec(e, &at, &base, secrets_dir.as_deref(), lookup, &mut p) {
            environments.push(spec);
        }
    }
    let api = super::api_config::check(
        raw.api.unwrap_or_default(),
        &names,
        &base,
        secrets_dir.as_deref(),
        lookup,
        &mut |at, why| p.add(at, why),
    );
    if !p.0.is_empty() {
        return Err(ConfigError::Invalid {
            file: name,
            problems: p.0,
        });
    }
    Ok(DaemonConfig {
        listen,
        state_dir,
        webhook,
        listener,
        ui,
        api,
        environments,
    })
}

fn remote(url: &str, auth: &RawGitAuth, base: &Path, at: &str, p: &mut Problems) -> Option<Remote> {
    Remote::new(&resolve_url(url, base), git_auth(auth, base))
        .map_err(|e| p.add(at, e))
        .ok()
}

fn branch(b: Option<String>, at: &str, p: &mut Problems) -> String {
    let b = b.unwrap_or_else(|| "main".into());
    if !git::valid_branch(&b) {
        p.add(at, format!("'{b}' is not a valid branch name"));
    }
    b
}

fn env_spec(
    mut e: RawEnv,
    at: &str,
    base: &Path,
    secrets_dir: Option<&Path>,
    lookup: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Option<EnvSpec> {
    let git = e.source.git.is_some() && e.source.dir.is_none();
    let allowed_env = std::mem::take(&mut e.allowed_env);
    let trust = e.gateway.take().and_then(|c| {
        let (trust, problems) = Trust::checked(c, allowed_env, git, secrets_dir, lookup);
        for (pointer, reason) in problems {
            p.add(format!("{at}/gateway{pointer}"), reason);
        }
        trust
    });
    if git && trust.is_none() {
        p.add(
            format!("{at}/gateway"),
            "is required for a Git source: the gateway's url and credentials come from daemon.yaml, never from the repository",
        );
    }
    let source = match (e.source.dir, e.source.git) {
        (Some(dir), None) => {
            let dir = base.join(dir);
            if !dir.is_dir() {
                p.add(
                    format!("{at}/source/dir"),
                    format!("{} is not a directory", dir.display()),
                );
            }
            Some(SourceSpec::Dir(dir))
        }
        (None, Some(g)) => {
            let gat = format!("{at}/source/git");
            let url = g.url.unwrap_or_else(|| {
                p.add(format!("{gat}/url"), "is required");
                String::new()
            });
            let branch = branch(g.branch, &format!("{gat}/branch"), p);
            let path = git::clean_path(g.path.as_deref().unwrap_or(""))
                .map_err(|err| p.add(format!("{gat}/path"), err))
                .unwrap_or_default();
            let remote = if url.is_empty() {
                None
            } else {
                remote(&url, &g.auth, base, &format!("{gat}/url"), p)
            };
            remote.map(|remote| {
                SourceSpec::Git(Box::new(GitSpec {
                    remote,
                    branch,
                    path,
                }))
            })
        }
        _ => {
            p.add(
                format!("{at}/source"),
                "give exactly one of dir: PATH or git: {url, branch, path}",
            );
            None
        }
    };
    let interval = match e.interval {
        None => DEFAULT_INTERVAL,
        Some(RawDuration::Seconds(s)) => Duration::from_secs(s),
        Some(RawDuration::Text(t)) => parse_duration(&t).unwrap_or_else(|why| {
            p.add(format!("{at}/interval"), why);
            DEFAULT_INTERVAL
        }),
    };
    if interval < Duration::from_secs(1) {
        p.add(format!("{at}/interval"), "must be at least 1s");
    }
    let parallelism = e.parallelism.unwrap_or(4);
    if parallelism == 0 {
        p.add(format!("{at}/parallelism"), "must be at least 1");
    }
    let backup = e.backup.and_then(|b| {
        backup_spec(
            b,
            &format!("{at}/backup"),
            source.as_ref(),
            &e.name,
            base,
            p,
        )
    });
    Some(EnvSpec {
        name: e.name,
        source: source?,
        mode: e.mode,
        interval,
        parallelism,
        allow_mass_delete: e.allow_mass_delete,
        backup,
        trust,
    })
}

fn backup_spec(
    b: RawBackup,
    at: &str,
    source: Option<&SourceSpec>,
    env: &str,
    base: &Path,
    p: &mut Problems,
) -> Option<BackupSpec> {
    let schedule = Schedule::parse(&b.schedule)
        .map_err(|why| p.add(format!("{at}/schedule"), why))
        .ok();
    let path = match git::clean_path(&b.path) {
        Ok(s) if s.is_empty() => {
            p.add(format!("{at}/path"), "must name a file in the repository");
            None
        }
        Ok(s) => Some(s),
        Err(e) => {
            p.add(format!("{at}/path"), e);
            None
        }
    };
    let src = match source {
        Some(SourceSpec::Git(g)) => Some(g),
        _ => None,
    };
    let g = b.git.unwrap_or(RawGit {
        url: None,
        branch: None,
        path: None,
        auth: RawGitAuth::default(),
    });
    if g.path.is_some() {
        p.add(
            format!("{at}/git/path"),
            "not used here: the file is backup.path",
        );
    }
    let remote = match (&g.url, src) {
        (Some(url), _) => remote(url, &g.auth, base, &format!("{at}/git/url"), p),
        (None, Some(s)) => Some(s.remote.clone()),
        (None, None) => {
            p.add(
                format!("{at}/git/url"),
                "is required when the source is a directory",
            );
            None
        }
    };
    let branch = match (g.branch, src) {
        (None, Some(s)) => s.branch.clone(),
        (b, _) => branch(b, &format!("{at}/git/branch"), p),
    };
    // The daemon's own backups must never become the environment's desired state.
    if let (Some(s), Some(r), Some(path)) = (src, &remote, &path)
        && r.url == s.remote.url
        && branch == s.branch
        && within(path, &s.path)
    {
        p.add(
            format!("{at}/path"),
            format!(
                "'{path}' is inside {} on the same branch: backups would become desired state",
                if s.path.is_empty() {
                    "the environment's source (the whole repository)".to_string()
                } else {
                    format!("the environment's own source path '{}'", s.path)
                }
            ),
        );
    }
    Some(BackupSpec {
        schedule: schedule?,
        remote: remote?,
        branch,
        path: path?,
        message_prefix: b.message.unwrap_or_else(|| format!("backup {env}")),
        push_attempts: b.push_attempts.unwrap_or(5).max(1),
    })
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

//! Credentials and host-key verification for one remote operation, and the mapping of the
//! library's errors to [`GitError`].

use std::cell::RefCell;
use std::path::PathBuf;

use git2::{Cred, CredentialType, RemoteCallbacks};

use super::known_hosts::{self, Verdict};
use super::url::Transport;
use super::{GitAuth, GitError, Remote, RemoteUrl, SecretValue};

/// Check settings that need no network: named variables are set, named files exist.
pub(super) fn check(auth: &GitAuth, url: &RemoteUrl) -> Result<(), GitError> {
    let var_set = |flag: &str, var: &Option<String>| -> Result<(), GitError> {
        match var {
            Some(v) if std::env::var(v).map(|s| s.is_empty()).unwrap_or(true) => {
                Err(GitError::BadSetting {
                    setting: format!("{flag} {v}"),
                    reason: "that environment variable is not set".into(),
                })
            }
            _ => Ok(()),
        }
    };
    var_set("--git-token-env", &auth.token_env)?;
    var_set("--ssh-passphrase-env", &auth.ssh_passphrase_env)?;
    if let Some(k) = &auth.ssh_key
        && !k.is_file()
    {
        return Err(GitError::BadSetting {
            setting: format!("--ssh-key {}", k.display()),
            reason: "no such file".into(),
        });
    }
    if auth.token_env.is_some() && url.transport == Transport::Http {
        return Err(GitError::BadSetting {
            setting: format!("--git-token-env for {url}"),
            reason: "a token is only sent over https://".into(),
        });
    }
    if auth.password.is_some() && url.transport == Transport::Http {
        return Err(GitError::BadSetting {
            setting: format!("the password for {url}"),
            reason: "a password or token is only sent over https://".into(),
        });
    }
    if auth.given_only
        && url.transport == Transport::Ssh
        && !auth.insecure_skip_host_key_check
        && auth.known_hosts.is_none()
        && auth.known_hosts_text.is_none()
    {
        return Err(GitError::BadSetting {
            setting: format!("known_hosts for {url}"),
            reason: "required for an SSH remote: host keys are always verified".into(),
        });
    }
    Ok(())
}

/// What happened during one operation's callbacks.
#[derive(Default)]
struct State {
    credential_calls: u32,
    memory_key_calls: u32,
    host_key_problem: Option<(String, String)>,
    no_credentials: Option<String>,
}

/// Callbacks for one operation on one remote.
pub(super) struct Session<'r> {
    remote: &'r Remote,
    state: RefCell<State>,
}

fn read_known_hosts(file: &std::path::Path) -> String {
    crate::core::document::read_text(file)
        .map(|(_, t)| t)
        .unwrap_or_default()
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

impl<'r> Session<'r> {
    pub(super) fn new(remote: &'r Remote) -> Session<'r> {
        Session {
            remote,
            state: RefCell::default(),
        }
    }

    pub(super) fn callbacks(&self) -> RemoteCallbacks<'_> {
        let mut cb = RemoteCallbacks::new();
        cb.credentials(|_url, user_from_url, allowed| self.credential(user_from_url, allowed));
        cb.certificate_check(|cert, _host| {
            let Some(hostkey) = cert.as_hostkey() else {
                // TLS: the library's own verification decides.
                return Ok(git2::CertificateCheckStatus::CertificatePassthrough);
            };
            self.host_key(hostkey.hostkey())
        });
        cb
    }

    fn credential(
        &self,
        user_from_url: Option<&str>,
        allowed: CredentialType,
    ) -> Result<Cred, git2::Error> {
        let auth = &self.remote.auth;
        let mut st = self.state.borrow_mut();
        st.credential_calls += 1;
        let n = st.credential_calls;
        let refuse = |st: &mut State, why: String| {
            st.no_credentials = Some(why.clone());
            Err(git2::Error::from_str(&why))
        };
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            let token = match &auth.password {
                Some(p) => Some(p.expose().to_string()),
                None => auth.token_env.as_ref().and_then(|v| std::env::var(v).ok()),
            }
            .filter(|t| !t.is_empty());
            let what = if auth.password.is_some() {
                "the password"
            } else {
                "the token"
            };
            return match token {
                Some(_) if n > 1 => refuse(&mut st, format!("{what} was not accepted")),
                Some(t) => Cred::userpass_plaintext(
                    auth.username.as_deref().unwrap_or("x-access-token"),
                    &t,
                ),
                None if auth.given_only => refuse(
                    &mut st,
                    "the server asks for credentials and none were given (a username and password)".into(),
                ),
                None => refuse(
                    &mut st,
                    "the server asks for credentials: put a token in an environment variable and name it with --git-token-env".into(),
                ),
            };
        }
        let user = user_from_url.unwrap_or("git");
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(user);
        }
        if let Some(key) = &auth.ssh_key_text
            && allowed.contains(CredentialType::SSH_MEMORY)
        {
            // From memory only: the key is never written to a file. Offered once.
            st.memory_key_calls += 1;
            if st.memory_key_calls > 1 {
                return refuse(
                    &mut st,
                    format!("the SSH key was not accepted for user {user}"),
                );
            }
            let passphrase = auth.ssh_passphrase.as_ref().map(SecretValue::expose);
            return Cred::ssh_key_from_memory(user, None, key.expose(), passphrase).or_else(|_| {
                // Only a NUL byte fails here (the key is parsed when it is used); the
                // library's message is not passed on.
                refuse(&mut st, "the SSH private key is not text".into())
            });
        }
        if allowed.contains(CredentialType::SSH_KEY) {
            // One candidate per call: the given key, else the agent, then default key files.
            let passphrase = auth
                .ssh_passphrase_env
                .as_ref()
                .and_then(|v| std::env::var(v).ok());
            let mut candidates: Vec<Option<PathBuf>> = Vec::new();
            if let Some(k) = &auth.ssh_key {
                candidates.push(Some(k.clone()));
            } else if !auth.given_only {
                if std::env::var_os("SSH_AUTH_SOCK").is_some() {
                    candidates.push(None);
                }
                if let Some(h) = home() {
                    for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
                        let p = h.join(".ssh").join(name);
                        if p.is_file() {
                            candidates.push(Some(p));
                        }
                    }
                }
            }
            return match candidates.get(n as usize - 1) {
                Some(Some(key)) => Cred::ssh_key(user, None, key, passphrase.as_deref()),
                Some(None) => Cred::ssh_key_from_agent(user),
                None if candidates.is_empty() && auth.given_only => refuse(
                    &mut st,
                    "the server asks for an SSH key and none was given".into(),
                ),
                None if candidates.is_empty() => refuse(
                    &mut st,
                    "no SSH key: pass --ssh-key FILE (or run an SSH agent)".into(),
                ),
                None => refuse(
                    &mut st,
                    format!("the SSH key was not accepted for user {user}"),
                ),
            };
        }
        refuse(
            &mut st,
            format!("the server asks for an unsupported kind of credential ({allowed:?})"),
        )
    }

    fn host_key(&self, blob: Option<&[u8]>) -> Result<git2::CertificateCheckStatus, git2::Error> {
        let url = &self.remote.url;
        let (host, port) = url.ssh_endpoint().unwrap_or(("?", 22));
        let name = known_hosts::host_name(host, port);
        if self.remote.auth.insecure_skip_host_key_check {
            tracing::warn!(
                "not checking the SSH host key of {name} (--insecure-skip-host-key-check)"
            );
            return Ok(git2::CertificateCheckStatus::CertificateOk);
        }
        let auth = &self.remote.auth;
        let fail = |problem: String| {
            self.state.borrow_mut().host_key_problem = Some((name.clone(), problem.clone()));
            Err(git2::Error::from_str(&problem))
        };
        let Some(blob) = blob else {
            return fail("the server's key could not be read".into());
        };
        let (text, shown) = match (&auth.known_hosts_text, &auth.known_hosts) {
            (Some(k), _) => (k.text.clone(), k.shown.clone()),
            (None, Some(f)) => (read_known_hosts(f), f.display().to_string()),
            (None, None) if auth.given_only => {
                return fail("no known_hosts given: host keys are always verified".into());
            }
            (None, None) => match home().map(|h| h.join(".ssh/known_hosts")) {
                Some(f) => (read_known_hosts(&f), f.display().to_string()),
                None => {
                    return fail(
                        "no known_hosts file (HOME is not set); pass --known-hosts FILE".into(),
                    );
                }
            },
        };
        let kind = known_hosts::key_type(blob).unwrap_or("unknown").to_string();
        let opt_out = if auth.given_only {
            ""
        } else {
            " or pass --insecure-skip-host-key-check"
        };
        match known_hosts::check(&text, host, port, blob) {
            Verdict::Trusted => Ok(git2::CertificateCheckStatus::CertificateOk),
            Verdict::Unknown => fail(format!(
                "no {kind} key for {name} in {shown}; add the host's key there (check it first, e.g. ssh-keyscan -p {port} {host}){opt_out}"
            )),
            Verdict::Changed { line } => fail(format!(
                "the {kind} key offered differs from the one in {shown} line {line}: the host key changed or someone is intercepting the connection"
            )),
            Verdict::Revoked { line } => fail(format!(
                "the {kind} key offered is marked @revoked in {shown} line {line}"
            )),
        }
    }

    /// Map a library error from a network operation.
    pub(super) fn error(&self, e: git2::Error) -> GitError {
        let url = self.remote.url.to_string();
        let st = self.state.borrow();
        if let Some((host, problem)) = &st.host_key_problem {
            return GitError::HostKey {
                url,
                host: host.clone(),
                problem: problem.clone(),
            };
        }
        if let Some(why) = &st.no_credentials {
            return GitError::Auth {
                url,
                reason: why.clone(),
            };
        }
        let reason = e.message().to_string();
        // An untrusted TLS certificate comes back as a generic SSL-class error.
        if e.code() == git2::ErrorCode::Certificate
            || (e.class() == git2::ErrorClass::Ssl && reason.contains("certificate"))
        {
            return GitError::Certificate { url, reason };
        }
        if e.code() == git2::ErrorCode::Auth
            || (e.class() == git2::ErrorClass::Ssh && reason.contains("authentica"))
        {
            return GitError::Auth { url, reason };
        }
        GitError::Unreachable { url, reason }
    }
}

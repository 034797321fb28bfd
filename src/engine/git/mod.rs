//! Git, behind a small API that hides the library (git2 today; gix could replace it): a cached
//! clone of a remote ([`Repo`]: fetch, resolve a revision, read files at a commit, publish a
//! commit that changes one path and push it without force) and a user's working copy
//! ([`WorkingCopy`]: commit files, on a new branch if asked). No git2 type is public.
//!
//! Credentials: HTTPS with a token read from an environment variable named by the caller, or
//! given as a value (never inline in a URL); SSH with a private key file (or the agent), or a
//! key given as a value and used from memory (never written to disk), and host keys verified
//! against `known_hosts` (a file, or its text); an unknown or changed host key is refused
//! unless the caller opted out. Error messages name the repository, the branch or revision and
//! the path concerned, and never carry a token or key.

mod auth;
pub mod known_hosts;
mod repo;
mod url;
mod worktree;

use std::path::PathBuf;
use std::sync::Arc;

pub use repo::{Change, FileCommit, Published, Repo, Snapshot, Tree};
pub use url::{RemoteUrl, Transport};
pub use worktree::WorkingCopy;

/// The author and committer of every commit mcp-gitops makes.
pub const AUTHOR_NAME: &str = "mcp-gitops";
pub const AUTHOR_EMAIL: &str = "mcp-gitops@localhost";

/// A credential held in memory (a password, a private key, a passphrase): `Debug` never
/// shows it, and nothing here writes it anywhere.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> SecretValue {
        SecretValue(value.into())
    }

    /// The value, for the one place that hands it to the Git library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(*****)")
    }
}

/// `known_hosts` lines given as text, and how messages name where they came from (e.g.
/// `Secret repo-ssh, key known_hosts`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnownHostsText {
    pub text: String,
    pub shown: String,
}

/// How to authenticate to a remote: the names of environment variables and files, or (for a
/// caller that reads its credentials itself, like the Kubernetes controller) the values, held
/// in memory as [`SecretValue`]s.
#[derive(Clone, Debug, Default)]
pub struct GitAuth {
    /// HTTPS: the environment variable holding a token (sent as the password).
    pub token_env: Option<String>,
    /// HTTPS: the user name sent with the token (default `x-access-token`).
    pub username: Option<String>,
    /// SSH: a private key file (default: the SSH agent, then `~/.ssh/id_ed25519`, `id_ecdsa`,
    /// `id_rsa`).
    pub ssh_key: Option<PathBuf>,
    /// SSH: the environment variable holding the key's passphrase.
    pub ssh_passphrase_env: Option<String>,
    /// SSH: the `known_hosts` file host keys are checked against (default
    /// `~/.ssh/known_hosts`).
    pub known_hosts: Option<PathBuf>,
    /// SSH: accept any host key. Off by default; for throwaway setups only.
    pub insecure_skip_host_key_check: bool,
    /// HTTPS: the password or token itself (wins over `token_env`).
    pub password: Option<SecretValue>,
    /// SSH: the private key itself (OpenSSH or PEM text), used from memory (wins over
    /// `ssh_key`).
    pub ssh_key_text: Option<SecretValue>,
    /// SSH: the key's passphrase itself (wins over `ssh_passphrase_env`).
    pub ssh_passphrase: Option<SecretValue>,
    /// SSH: the `known_hosts` lines themselves (win over the `known_hosts` file).
    pub known_hosts_text: Option<KnownHostsText>,
    /// Use only what is given here: no SSH agent, no `~/.ssh` keys, no `~/.ssh/known_hosts`
    /// (a process serving many tenants must not lend them its own credentials); an SSH remote
    /// then needs `known_hosts` or `known_hosts_text`.
    pub given_only: bool,
}

/// A remote repository and how to reach it.
#[derive(Clone, Debug)]
pub struct Remote {
    pub url: RemoteUrl,
    pub auth: GitAuth,
}

impl Remote {
    /// Check a URL and the credential settings without contacting anything.
    pub fn new(url: &str, auth: GitAuth) -> Result<Remote, GitError> {
        let url = RemoteUrl::parse(url)?;
        auth::check(&auth, &url)?;
        Ok(Remote { url, auth })
    }
}

/// Called before each push attempt with the attempt number (1-based): for logging, and for
/// tests that push concurrently.
pub type BeforePush = Arc<dyn Fn(u32) + Send + Sync>;

/// How [`Repo::publish`] behaves.
#[derive(Clone)]
pub struct PublishOptions {
    /// Attempts in all (a rejected push is retried on the new head).
    pub max_attempts: u32,
    pub before_push: Option<BeforePush>,
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions {
            max_attempts: 5,
            before_push: None,
        }
    }
}

/// A commit id (full hex).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CommitId(pub String);

impl CommitId {
    /// The first 12 hex digits.
    pub fn short(&self) -> &str {
        &self.0[..self.0.len().min(12)]
    }
}

impl std::fmt::Display for CommitId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a Git operation failed. Every variant names what it concerns; none carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("{setting}: {reason}")]
    BadSetting { setting: String, reason: String },
    #[error("cannot reach Git repository {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("Git repository {url} refused the credentials: {reason}")]
    Auth { url: String, reason: String },
    #[error("Git repository {url}: refusing the SSH host key of {host}: {problem}")]
    HostKey {
        url: String,
        host: String,
        problem: String,
    },
    #[error(
        "Git repository {url}: the server's TLS certificate is not trusted ({reason}); add its CA to the system's trust store or point SSL_CERT_FILE at it"
    )]
    Certificate { url: String, reason: String },
    #[error("Git repository {url}: no branch '{branch}'")]
    NoBranch { url: String, branch: String },
    #[error("Git repository {url}: unknown revision '{rev}' (not a branch, tag or commit id)")]
    UnknownRev { url: String, rev: String },
    #[error("Git repository {url} at {rev}: no '{path}' there")]
    NoPath {
        url: String,
        rev: String,
        path: String,
    },
    #[error("Git repository {url}: push of branch '{branch}' rejected: {reason}")]
    Rejected {
        url: String,
        branch: String,
        reason: String,
    },
    #[error("{dir}: {reason}")]
    State { dir: String, reason: String },
    #[error("{context}: {reason}")]
    Local { context: String, reason: String },
}

impl crate::core::error::Classify for GitError {
    fn class(&self) -> crate::core::error::ErrorClass {
        use crate::core::error::ErrorClass;
        match self {
            GitError::BadUrl { .. }
            | GitError::BadSetting { .. }
            | GitError::UnknownRev { .. }
            | GitError::NoBranch { .. }
            | GitError::NoPath { .. }
            | GitError::State { .. } => ErrorClass::Invalid,
            GitError::Unreachable { .. } => ErrorClass::Unreachable,
            GitError::Auth { .. } | GitError::HostKey { .. } | GitError::Certificate { .. } => {
                ErrorClass::Auth
            }
            GitError::Rejected { .. } => ErrorClass::Failed,
            GitError::Local { .. } => ErrorClass::Io,
        }
    }
}

impl GitError {
    pub(crate) fn local(context: impl std::fmt::Display, e: impl std::fmt::Display) -> GitError {
        GitError::Local {
            context: context.to_string(),
            reason: e.to_string(),
        }
    }
}

/// Whether `branch` is a valid branch name.
pub fn valid_branch(branch: &str) -> bool {
    git2::Reference::is_valid_name(&format!("refs/heads/{branch}"))
}

/// Join a relative path (`../base`) onto a repository path (`envs/prod`) lexically: None when
/// it leaves the repository.
pub fn join_path(base: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = base.split('/').filter(|s| !s.is_empty()).collect();
    for seg in rel.split(['/', '\\']) {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    if rel.starts_with('/') {
        return None;
    }
    Some(parts.join("/"))
}

/// A repository-relative path: `/`-separated, no `.`/`..` segments, not inside `.git`.
pub fn clean_path(path: &str) -> Result<String, GitError> {
    let bad = |reason: &str| GitError::BadSetting {
        setting: format!("path '{path}'"),
        reason: reason.to_string(),
    };
    let mut parts = Vec::new();
    for seg in path.split(['/', '\\']) {
        match seg {
            "" | "." => continue,
            ".." => return Err(bad("must stay inside the repository (no '..')")),
            ".git" => return Err(bad("must not point into .git")),
            s => parts.push(s),
        }
    }
    if path.starts_with('/') {
        return Err(bad("must be relative to the repository's root"));
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_and_confined() {
        assert_eq!(
            clean_path("./backups//prod.json").unwrap(),
            "backups/prod.json"
        );
        assert_eq!(clean_path("envs/prod/").unwrap(), "envs/prod");
        assert_eq!(clean_path(".").unwrap(), "");
        for bad in ["../x", "a/../../b", "/etc/passwd", ".git/config"] {
            assert!(clean_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relative_paths_join_inside_the_repository() {
        assert_eq!(
            join_path("envs/prod", "../base").as_deref(),
            Some("envs/base")
        );
        assert_eq!(
            join_path("envs/prod", "./x/").as_deref(),
            Some("envs/prod/x")
        );
        assert_eq!(join_path("envs", "..").as_deref(), Some(""));
        assert_eq!(join_path("envs", "../.."), None);
        assert_eq!(join_path("envs", "/etc"), None);
        assert!(valid_branch("promote/ai-tools") && !valid_branch("a..b"));
    }
}

//! Flags shared by the commands that talk to a Git remote, and how Git errors map to exit
//! codes.

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::engine::git::{GitAuth, GitError, Remote};

/// A remote repository and how to authenticate to it.
#[derive(Args, Debug, Clone)]
pub struct RepoArgs {
    /// The repository: https://…, ssh://user@host[:port]/path, user@host:path, or a local path.
    #[arg(long, value_name = "URL")]
    pub repo: String,
    /// HTTPS: the environment variable that holds the token (never the token itself).
    #[arg(long, value_name = "VAR")]
    pub git_token_env: Option<String>,
    /// HTTPS: the user name sent with the token (default x-access-token).
    #[arg(long, value_name = "NAME")]
    pub git_user: Option<String>,
    /// SSH: private key file (default: the SSH agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa).
    #[arg(long, value_name = "FILE")]
    pub ssh_key: Option<PathBuf>,
    /// SSH: the environment variable that holds the key's passphrase.
    #[arg(long, value_name = "VAR")]
    pub ssh_passphrase_env: Option<String>,
    /// SSH: the known_hosts file host keys are checked against (default ~/.ssh/known_hosts).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// SSH: accept any host key, unknown or changed (unsafe; off by default).
    #[arg(long)]
    pub insecure_skip_host_key_check: bool,
    /// Where clones are cached (default $XDG_CACHE_HOME/mcp-gitops/git, else
    /// ~/.cache/mcp-gitops/git).
    #[arg(long, env = "MCP_GITOPS_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl RepoArgs {
    /// The remote, checked without contacting it.
    pub fn remote(&self) -> Result<Remote, CliError> {
        Ok(Remote::new(
            &self.repo,
            GitAuth {
                token_env: self.git_token_env.clone(),
                username: self.git_user.clone(),
                ssh_key: self.ssh_key.clone(),
                ssh_passphrase_env: self.ssh_passphrase_env.clone(),
                known_hosts: self.known_hosts.clone(),
                insecure_skip_host_key_check: self.insecure_skip_host_key_check,
                ..GitAuth::default()
            },
        )?)
    }

    pub fn cache_dir(&self) -> PathBuf {
        if let Some(d) = &self.cache_dir {
            return d.clone();
        }
        let var = |v: &str| {
            std::env::var_os(v)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        };
        var("XDG_CACHE_HOME")
            .or_else(|| var("HOME").map(|h| h.join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
            .join("mcp-gitops/git")
    }
}

impl From<GitError> for CliError {
    fn from(e: GitError) -> Self {
        CliError::classified(e)
    }
}

//! The raw, unchecked shape of `daemon.yaml` as serde reads it; `config` checks it.

use serde::Deserialize;

use std::path::PathBuf;

use super::listener::RawListener;
use super::trust::Connection;
use crate::engine::environment::{Mode, SecretRef};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    #[serde(default)]
    pub(super) listen: Option<String>,
    #[serde(default)]
    pub(super) state_dir: Option<PathBuf>,
    #[serde(default)]
    pub(super) webhook: Option<RawWebhook>,
    #[serde(default)]
    pub(super) listener: Option<RawListener>,
    #[serde(default)]
    pub(super) api: Option<super::api_config::RawApi>,
    pub(super) secrets_dir: Option<PathBuf>,
    #[serde(default)]
    pub(super) ui: Option<super::ui_config::RawUi>,
    pub(super) environments: Vec<RawEnv>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    pub(super) secret: SecretRef,
    #[serde(default)]
    pub(super) rate_limit: Option<u32>,
    #[serde(default)]
    pub(super) failure_limit: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEnv {
    pub(super) name: String,
    pub(super) source: RawSource,
    #[serde(default)]
    pub(super) mode: Option<Mode>,
    #[serde(default)]
    pub(super) interval: Option<RawDuration>,
    #[serde(default)]
    pub(super) parallelism: Option<usize>,
    #[serde(default)]
    pub(super) allow_mass_delete: bool,
    #[serde(default)]
    pub(super) backup: Option<RawBackup>,
    #[serde(default)]
    pub(super) gateway: Option<Connection>,
    #[serde(default)]
    pub(super) allowed_env: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    #[serde(default)]
    pub(super) dir: Option<PathBuf>,
    #[serde(default)]
    pub(super) git: Option<RawGit>,
}

/// A repository, a branch and how to authenticate; `source.git` also has a `path`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGit {
    #[serde(default)]
    pub(super) url: Option<String>,
    #[serde(default)]
    pub(super) branch: Option<String>,
    #[serde(default)]
    pub(super) path: Option<String>,
    #[serde(default)]
    pub(super) auth: RawGitAuth,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGitAuth {
    #[serde(default)]
    pub(super) token_env: Option<String>,
    #[serde(default)]
    pub(super) username: Option<String>,
    #[serde(default)]
    pub(super) ssh_key: Option<PathBuf>,
    #[serde(default)]
    pub(super) ssh_passphrase_env: Option<String>,
    #[serde(default)]
    pub(super) known_hosts: Option<PathBuf>,
    #[serde(default)]
    pub(super) insecure_skip_host_key_check: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackup {
    pub(super) schedule: String,
    pub(super) path: String,
    #[serde(default)]
    pub(super) git: Option<RawGit>,
    #[serde(default)]
    pub(super) message: Option<String>,
    #[serde(default)]
    pub(super) push_attempts: Option<u32>,
}

/// `90`, `"90s"`, `"5m"`, `"1h30m"`.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawDuration {
    Seconds(u64),
    Text(String),
}

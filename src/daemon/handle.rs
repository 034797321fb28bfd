//! What the daemon hands its listener for each environment and each source-less gateway: the
//! status, a trigger, and what the engine needs to plan, apply and export through the API (the
//! worker's own source, settings and trusted connection), plus the one-writer guard the
//! worker also takes.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::source::{self, Fetched, Loaded, Source};
use super::status::EnvShared;
use super::worker::Trigger;
use crate::core::error::{Classify, ErrorClass};
use crate::engine::apply::Keys;
use crate::engine::environment::Mode;
use crate::engine::git::{CommitId, GitError};
use crate::engine::reconcile::Settings;
use crate::gateway::Client;

/// One environment as a listener sees it.
pub struct EnvHandle {
    pub shared: Arc<EnvShared>,
    pub trigger: mpsc::UnboundedSender<Trigger>,
    /// The repository URL and branch a Git source reads (None for directories).
    pub git: Option<(String, String)>,
    /// Where the worker reads the desired state, with `daemon.yaml`'s trust.
    pub source: Source,
    /// The worker's settings (its limiter, counters, content cache, lock).
    pub settings: Settings,
    /// `daemon.yaml`'s mode override.
    pub mode: Option<Mode>,
    /// Where the environment's scheduled backup (`backup:`) commits, for reading its history
    /// (its own cache directory: reading never waits for a backup's push).
    pub backup: Option<crate::engine::backup::BackupTarget>,
}

/// Why the API could not load an environment's desired state.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("environment {env}: {error}")]
    Invalid { env: String, error: String },
    #[error("environment {env}: {source}")]
    Source {
        env: String,
        #[source]
        source: GitError,
    },
}

impl Classify for LoadError {
    fn class(&self) -> ErrorClass {
        match self {
            LoadError::Invalid { .. } => ErrorClass::Invalid,
            LoadError::Source { source, .. } => source.class(),
        }
    }
}

impl EnvHandle {
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Load the desired state the worker holds (a Git source at the revision in force, else
    /// its head), connected with the worker's settings; the same `Target` the worker plans.
    pub async fn load(&self) -> Result<Loaded, LoadError> {
        let fetched = match &self.source {
            Source::Dir(d) => source::load_dir(d, &self.settings),
            Source::Git(g) => {
                let (g, s) = (g.clone(), self.settings.clone());
                let at = self.shared.status().revision.map(CommitId);
                tokio::task::spawn_blocking(move || {
                    source::load_git(&g, &s, None, None, at.as_ref())
                })
                .await
                .unwrap_or_else(|e| Fetched::Failed(GitError::local("load", e)))
            }
        };
        let env = self.name().to_string();
        match fetched {
            Fetched::New(mut l) => {
                if let Some(m) = self.mode {
                    l.target.env.config.mode = m;
                }
                Ok(*l)
            }
            Fetched::Invalid { error, .. } => Err(LoadError::Invalid { env, error }),
            Fetched::Failed(source) => Err(LoadError::Source { env, source }),
            Fetched::Same(_) | Fetched::Unchanged => Err(LoadError::Invalid {
                env,
                error: "nothing loaded".into(),
            }),
        }
    }
}

/// A gateway from `api.gateways`: no desired state, export and import only.
pub struct GatewayHandle {
    pub name: String,
    /// Its client and key, or why it could not be connected.
    pub connection: Result<(Client, Keys), String>,
    /// Held while something writes to it through the API.
    pub writer: tokio::sync::Mutex<()>,
    /// The daemon's resource content cache.
    pub cache: Option<Arc<crate::engine::content_cache::ContentCache>>,
}

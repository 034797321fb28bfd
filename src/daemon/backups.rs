//! Scheduled backups of an environment's live gateway into Git: on each firing of the cron
//! schedule, export the gateway (with the credentials and keys of the environment in force),
//! commit what changed and push — through the same [`crate::engine::backup::once`] as
//! `backup --once`. Pushes of all environments are serialized; nothing changed means no
//! commit; a backup never writes where the environment reads its desired state.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use super::config::{BackupSpec, GitSpec, within};
use super::metrics::Metrics;
use super::schedule::{rfc3339, unix_now};
use super::status::{BackupOutcome, BackupResult, EnvShared, StateStore};
use crate::engine::backup::{self, BackupError, BackupTarget};
use crate::engine::git::PublishOptions;

/// One environment's backup schedule.
pub struct Backups {
    pub label: String,
    pub spec: BackupSpec,
    /// The environment's own Git source, when it has one.
    pub source: Option<GitSpec>,
    pub cache_dir: PathBuf,
    pub shared: Arc<EnvShared>,
    /// Held while pushing: one push at a time across the daemon.
    pub push_lock: Arc<Mutex<()>>,
    pub metrics: Option<Arc<Metrics>>,
    pub store: Option<Arc<StateStore>>,
    /// Resource content read before (the daemon's content cache).
    pub content_cache: Option<Arc<crate::engine::content_cache::ContentCache>>,
}

/// Where a backup spec commits, read through a cache of its own under `dir` (the UI's history).
pub fn history_target(spec: &BackupSpec, dir: &std::path::Path) -> BackupTarget {
    BackupTarget {
        remote: spec.remote.clone(),
        branch: spec.branch.clone(),
        path: spec.path.clone(),
        cache_dir: dir.join("git-history"),
        message_prefix: spec.message_prefix.clone(),
        format: None,
        publish: PublishOptions::default(),
    }
}

impl Backups {
    fn log(&self, msg: &str) {
        super::log_line(&self.label, msg);
    }

    /// Run the schedule until `stop` resolves; a backup in progress finishes first.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let now = unix_now();
            let Some(next) = self.spec.schedule.next_after(now) else {
                return;
            };
            self.shared.update(|s| {
                if let Some(b) = &mut s.backup {
                    b.next = Some(rfc3339(next));
                }
            });
            let wait = Duration::from_secs((next - now).max(0) as u64);
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let result = self.once().await;
            crate::memory::release_soon();
            if let Some(m) = &self.metrics {
                m.backup(&self.shared.name, result.outcome);
            }
            match (result.outcome, &result.error) {
                (BackupOutcome::Failed, Some(e)) => self.log(&format!("backup failed: {e}")),
                (BackupOutcome::Committed, _) => self.log(&format!(
                    "backup committed {}: {}",
                    result
                        .commit
                        .as_deref()
                        .unwrap_or_default()
                        .get(..12)
                        .unwrap_or_default(),
                    result.summary.as_deref().unwrap_or_default()
                )),
                _ => {}
            }
            self.shared.update(|s| {
                if let Some(b) = &mut s.backup {
                    b.last = Some(result);
                }
            });
            if let Some(store) = &self.store
                && let Err(e) = store.save()
            {
                self.log(&format!("cannot save the daemon's state: {e}"));
            }
        }
    }

    /// One backup now.
    pub async fn once(&self) -> BackupResult {
        let failed = |error: String| BackupResult {
            outcome: BackupOutcome::Failed,
            at: crate::core::clock::now_rfc3339(),
            error: Some(error),
            ..BackupResult::default()
        };
        let live = self.shared.live.lock().expect("live lock").clone();
        let Some(live) = live else {
            return failed("the environment has not been loaded yet: no gateway to back up".into());
        };
        let spec = &self.spec;
        if let Some(src) = &self.source
            && src.remote.url == spec.remote.url
            && src.branch == spec.branch
            && let Some(input) = live.inputs.iter().find(|i| within(&spec.path, i))
        {
            return failed(format!(
                "refusing to write {} into '{input}', which the environment reads its desired state from",
                spec.path
            ));
        }
        let Some(gateway_secret) = live.keys.gateway.clone() else {
            return failed(
                "the environment names no key: set secret (or gateway_secret) in its mcp-gitops.yaml to decrypt the gateway's credentials".into(),
            );
        };
        let mut opts =
            backup::export_options(gateway_secret, live.keys.document.clone(), live.who.clone());
        opts.cache = self.content_cache.clone();
        let target = BackupTarget {
            remote: spec.remote.clone(),
            branch: spec.branch.clone(),
            path: spec.path.clone(),
            cache_dir: self.cache_dir.clone(),
            message_prefix: spec.message_prefix.clone(),
            format: None,
            publish: PublishOptions {
                max_attempts: spec.push_attempts,
                before_push: None,
            },
        };
        let _one_push_at_a_time = self.push_lock.lock().await;
        match backup::once(&live.client, &opts, &target).await {
            Ok(out) => match out.commit {
                Some(c) => BackupResult {
                    outcome: BackupOutcome::Committed,
                    at: crate::core::clock::now_rfc3339(),
                    commit: Some(c.0),
                    summary: out
                        .message
                        .and_then(|m| m.lines().next().map(str::to_string)),
                    error: None,
                },
                None => BackupResult {
                    outcome: BackupOutcome::Unchanged,
                    at: crate::core::clock::now_rfc3339(),
                    commit: out.previous.map(|c| c.0),
                    summary: Some(format!(
                        "{} entities, nothing changed",
                        out.document.entities.total()
                    )),
                    error: None,
                },
            },
            Err(BackupError::Git(e)) => failed(e.to_string()),
            Err(BackupError::Export(e)) => failed(e.to_string()),
        }
    }
}

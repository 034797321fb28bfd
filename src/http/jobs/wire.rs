//! The daemon's environments as import targets: each resolved, per request, from what its
//! worker loaded last (client and keys), its mode (daemon.yaml's override, else its file's)
//! and its source (which decides the reconcile lock a job holds).

use std::sync::Arc;

use super::{ApiError, JobsApi, Resolved, TargetEntry, environment_route};
use crate::daemon::EnvHandle;
use crate::daemon::config::{DaemonConfig, SourceSpec};
use crate::engine::envlock;
use crate::engine::jobs::{JobStore, JobTarget};

/// The import API over the daemon's environments.
pub fn build(cfg: &DaemonConfig, envs: &[EnvHandle], store: Arc<JobStore>) -> JobsApi {
    let mut targets = Vec::new();
    for (spec, handle) in cfg.environments.iter().zip(envs) {
        let (shared, spec) = (handle.shared.clone(), spec.clone());
        targets.push(TargetEntry {
            target: JobTarget::Environment(spec.name.clone()),
            resolve: Box::new(move || {
                let live = shared
                    .live
                    .lock()
                    .expect("live lock")
                    .as_ref()
                    .map(|l| (l.client.clone(), l.keys.clone()));
                let Some((client, keys)) = live else {
                    return Err(ApiError::Unavailable(format!(
                        "environment {} has not loaded its desired state yet",
                        spec.name
                    )));
                };
                let status = shared.status();
                let mode = spec.mode.or(status.mode).unwrap_or_default();
                let gateway = status.gateway.unwrap_or_else(|| client.url().to_string());
                let (git, key) = match &spec.source {
                    SourceSpec::Git(g) => (
                        true,
                        envlock::Key::new(
                            format!("git {}@{}:{}", g.remote.url, g.branch, g.path),
                            &gateway,
                        ),
                    ),
                    SourceSpec::Dir(d) => (false, envlock::Key::for_dir(d, &gateway)),
                };
                Ok(Resolved {
                    client,
                    keys,
                    route: environment_route(&spec.name, mode, git),
                    lock: Some(key),
                })
            }),
        });
    }
    JobsApi::new(store, targets)
}

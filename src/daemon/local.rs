//! `watch`: keep a gateway holding an environment directory. A change to the directory (or a
//! base it inherits) re-plans and applies after a short debounce; a periodic drift check does
//! the same (in `observe` mode it only reports). It is one environment of the daemon's loop
//! ([`crate::daemon::worker`]) with a directory source and no listener.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::daemon::source::Source;
use crate::daemon::status::{EnvShared, EnvStatus};
use crate::daemon::worker::Worker;
use crate::engine::reconcile::Settings;

pub use crate::daemon::worker::{Cycle, cycle};

/// How `watch` runs.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// Drift check period.
    pub interval: Duration,
    /// Quiet time after the last file event before re-planning.
    pub debounce: Duration,
    /// Longest wait between retries while the gateway is unreachable.
    pub max_backoff: Duration,
    pub settings: Settings,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            interval: Duration::from_secs(60),
            debounce: Duration::from_millis(150),
            max_backoff: Duration::from_secs(30),
            settings: Settings::default(),
        }
    }
}

/// Watch `dir` until `stop` resolves. Returns when stopped (never on errors).
pub async fn watch(
    dir: &Path,
    opts: &WatchOptions,
    stop: impl Future<Output = ()>,
) -> Result<(), notify::Error> {
    let worker = Worker {
        label: format!("watch {}", dir.display()),
        source: Source::Dir(dir.to_path_buf()),
        interval: opts.interval,
        debounce: opts.debounce,
        max_backoff: opts.max_backoff,
        settings: opts.settings.clone(),
        mode: None,
        shared: EnvShared::new(EnvStatus::default()),
        metrics: None,
        store: None,
        resume: None,
    };
    // Nothing triggers a watch but its directory.
    let (_triggers, rx) = mpsc::unbounded_channel();
    worker.run(rx, stop).await
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut int, mut term) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(i), Ok(t)) => (i, t),
        _ => return std::future::pending().await,
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

//! `mcp-gitops run`: one process keeping several environments in their desired state. Each
//! environment has a worker ([`worker`]: the loop `watch` also runs) reading a directory or a
//! Git branch, and optionally a backup schedule ([`backups`]). An HTTP listener
//! ([`crate::http`]) takes push webhooks and serves health, status and metrics. A stop lets
//! every worker and backup finish what is in flight, saves the state, then closes the listener.

pub mod api_config;
pub mod backups;
pub mod config;
mod config_raw;
pub mod handle;
pub mod listener;
pub mod local;
pub mod metrics;
pub mod schedule;
pub mod source;
pub mod status;
pub mod trust;
pub mod ui_config;
pub mod worker;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc, watch};

use crate::engine::git::CommitId;
use crate::engine::reconcile::Settings;
use config::{DaemonConfig, EnvSpec, SourceSpec};
use metrics::Metrics;
use source::{GitSource, Source};
use status::{BackupStatus, EnvShared, EnvStatus, StateStore};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{path}: {reason}")]
    State { path: String, reason: String },
    #[error("{path} is in use by another mcp-gitops run (one daemon per state directory)")]
    Locked { path: String },
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
}

/// One line on standard error: `<time> <label>: <message>`, a multi-line message joined with
/// "; " (one event, one line).
pub fn log_line(label: &str, msg: &str) {
    let msg: Vec<String> = msg
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(crate::core::quote::clean_lines)
        .collect();
    eprintln!(
        "{} {}: {}",
        crate::core::clock::now_rfc3339(),
        crate::core::quote::clean_lines(label),
        msg.join("; ")
    );
}

fn log(msg: &str) {
    log_line("daemon", msg);
}

/// Bind the configured address.
pub async fn bind(cfg: &DaemonConfig) -> Result<TcpListener, DaemonError> {
    TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| DaemonError::Listen {
            addr: cfg.listen.to_string(),
            reason: e.to_string(),
        })
}

fn state_error(path: &Path, e: impl std::fmt::Display) -> DaemonError {
    DaemonError::State {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn source_of(env: &EnvSpec, cfg: &DaemonConfig) -> Source {
    match &env.source {
        SourceSpec::Dir(d) => Source::Dir(d.clone()),
        SourceSpec::Git(g) => Source::Git(Box::new(GitSource {
            spec: (**g).clone(),
            trust: env.trust.clone().unwrap_or_default(),
            cache_dir: cfg.state_dir.join("git"),
            checkouts: cfg.state_dir.join("checkouts"),
        })),
    }
}

fn initial_status(env: &EnvSpec, src: &Source) -> EnvStatus {
    EnvStatus {
        name: env.name.clone(),
        source: src.describe(),
        backup: env.backup.as_ref().map(|b| BackupStatus {
            schedule: b.schedule.as_str().to_string(),
            target: format!("{}@{}:{}", b.remote.url, b.branch, b.path),
            ..BackupStatus::default()
        }),
        ..EnvStatus::default()
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

pub use handle::{EnvHandle, GatewayHandle};

/// `api.gateways`, connected with their counters and the daemon's content cache.
fn gateway_handles(
    cfg: &DaemonConfig,
    cache: &Arc<crate::engine::content_cache::ContentCache>,
) -> Vec<GatewayHandle> {
    let settings = Settings {
        content_cache: Some(cache.clone()),
        command: "run",
        ..Settings::default()
    };
    cfg.api
        .gateways
        .iter()
        .map(|g| {
            let connection = g.trust.connect(&settings).map_err(|e| {
                let msg = format!("gateway {}: cannot connect: {e}", g.name);
                log(&msg);
                msg
            });
            GatewayHandle {
                name: g.name.clone(),
                connection,
                writer: tokio::sync::Mutex::new(()),
                cache: Some(cache.clone()),
            }
        })
        .collect()
}

/// What the daemon gives its listener (the `http` front door): the environments, the
/// metrics, and whether a stop was asked for (not ready any more).
pub struct Served {
    pub envs: Vec<EnvHandle>,
    /// The HTTP API's import jobs.
    pub jobs: Arc<crate::engine::jobs::JobStore>,
    /// `api.gateways`: export and import only.
    pub gateways: Vec<GatewayHandle>,
    pub metrics: Arc<Metrics>,
    pub draining: Arc<AtomicBool>,
}

/// Run the daemon until `stop` resolves. `listen` starts the listener with what the daemon
/// serves; it is told to stop (its receiver turns true) once the work in flight is done.
pub async fn serve<L, F>(
    cfg: DaemonConfig,
    listen: L,
    stop: impl Future<Output = ()>,
) -> Result<(), DaemonError>
where
    L: FnOnce(&DaemonConfig, Served, watch::Receiver<bool>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let dir = &cfg.state_dir;
    for d in [dir.clone(), dir.join("git"), dir.join("checkouts")] {
        std::fs::create_dir_all(&d).map_err(|e| state_error(&d, e))?;
    }
    let lock_path = dir.join("daemon.lock");
    let lock = std::fs::File::create(&lock_path).map_err(|e| state_error(&lock_path, e))?;
    if lock.try_lock().is_err() {
        return Err(DaemonError::Locked {
            path: dir.display().to_string(),
        });
    }
    // Checkouts left by a process that was killed mid-load.
    if let Ok(rd) = std::fs::read_dir(dir.join("checkouts")) {
        for e in rd.flatten() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    let store = Arc::new(StateStore::new(&dir.join("state.json")));
    // Resource content read before, by gateway, id and version: one file for every
    // environment and backup of this daemon.
    let (content_cache, warning) = crate::engine::content_cache::ContentCache::open(dir);
    if let Some(w) = warning {
        log(&w);
    }
    let content_cache = Arc::new(content_cache);
    // Import jobs of the HTTP API: one file each; those the last process left running are
    // interrupted.
    let jobs_dir = dir.join("jobs");
    let (jobs, notes) =
        crate::engine::jobs::JobStore::open(&jobs_dir).map_err(|e| state_error(&jobs_dir, e))?;
    for n in notes {
        log(&n);
    }
    let jobs = Arc::new(jobs);
    // Finished jobs past their age go at start and every ten minutes.
    {
        let (jobs, max_age) = (jobs.clone(), cfg.api.job_max_age);
        tokio::spawn(async move {
            loop {
                match jobs.cleanup(crate::core::clock::now_unix(), max_age.as_secs()) {
                    Ok(ids) if !ids.is_empty() => {
                        log(&format!("removed {} finished jobs", ids.len()))
                    }
                    Ok(_) => {}
                    Err(e) => log(&format!("cannot remove old jobs: {e}")),
                }
                tokio::time::sleep(Duration::from_secs(600)).await;
            }
        });
    }
    let saved = store.saved().unwrap_or_else(|e| {
        log(&format!("{e}; starting without the previous state"));
        Vec::new()
    });
    let metrics = Arc::new(Metrics::new());
    let push_lock = Arc::new(Mutex::new(()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut handles = Vec::new();
    let mut tasks = Vec::new();
    for env in &cfg.environments {
        let src = source_of(env, &cfg);
        let mut status = initial_status(env, &src);
        if let Some(prev) = saved.iter().find(|s| s.name == env.name) {
            status.resume(prev);
        }
        let resume = match &src {
            Source::Git(_) => status.revision.clone().map(CommitId),
            Source::Dir(_) => None,
        };
        let shared = EnvShared::new(status);
        store.track(shared.clone());
        let (tx, rx) = mpsc::unbounded_channel();
        let default_owner = match &env.source {
            SourceSpec::Git(g) => Some(
                g.path
                    .rsplit('/')
                    .next()
                    .filter(|s| !s.is_empty())
                    .unwrap_or(&env.name)
                    .to_string(),
            ),
            SourceSpec::Dir(_) => None,
        };
        let w = worker::Worker {
            label: format!("env {}", env.name),
            source: src.clone(),
            interval: env.interval,
            debounce: Duration::from_millis(150),
            max_backoff: Duration::from_secs(30),
            settings: Settings {
                parallelism: env.parallelism,
                allow_mass_delete: env.allow_mass_delete,
                dry_run: false,
                default_owner,
                stats: Some(shared.stats.clone()),
                // The process's one limiter per gateway URL, shared with every other
                // environment on that gateway.
                limiter: None,
                content_cache: Some(content_cache.clone()),
                // The same lock as apply and watch take; a Git source by its origin.
                lock_source: match &src {
                    Source::Git(g) => Some(format!(
                        "git {}@{}:{}",
                        g.spec.remote.url, g.spec.branch, g.spec.path
                    )),
                    Source::Dir(_) => None,
                },
                command: "run",
                ..Settings::default()
            },
            mode: env.mode,
            shared: shared.clone(),
            metrics: Some(metrics.clone()),
            store: Some(store.clone()),
            resume,
        };
        let label = w.label.clone();
        let w_settings = w.settings.clone();
        let stop = stopped(stop_rx.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = w.run(rx, stop).await {
                log_line(&label, &format!("cannot watch: {e}"));
            }
        }));
        if let Some(spec) = &env.backup {
            let b = backups::Backups {
                label: format!("env {}", env.name),
                spec: spec.clone(),
                source: match &env.source {
                    SourceSpec::Git(g) => Some((**g).clone()),
                    SourceSpec::Dir(_) => None,
                },
                cache_dir: dir.join("git"),
                shared: shared.clone(),
                push_lock: push_lock.clone(),
                metrics: Some(metrics.clone()),
                store: Some(store.clone()),
                content_cache: Some(content_cache.clone()),
            };
            tasks.push(tokio::spawn(b.run(stopped(stop_rx.clone()))));
        }
        let backup = env
            .backup
            .as_ref()
            .map(|spec| backups::history_target(spec, dir));
        handles.push(EnvHandle {
            backup,
            source: src.clone(),
            settings: w_settings,
            mode: env.mode,
            shared,
            trigger: tx,
            git: match &env.source {
                SourceSpec::Git(g) => Some((g.remote.url.to_string(), g.branch.clone())),
                SourceSpec::Dir(_) => None,
            },
        });
    }
    let draining = Arc::new(AtomicBool::new(false));
    let (srv_tx, srv_rx) = watch::channel(false);
    let server = tokio::spawn(listen(
        &cfg,
        Served {
            envs: handles,
            jobs: jobs.clone(),
            gateways: gateway_handles(&cfg, &content_cache),
            metrics,
            draining: draining.clone(),
        },
        srv_rx,
    ));
    stop.await;
    log("stopping: finishing work in flight");
    draining.store(true, Ordering::SeqCst);
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    if let Err(e) = store.save() {
        log(&format!("cannot save the state: {e}"));
    }
    if let Err(e) = jobs.flush() {
        log(&format!("cannot save the jobs: {e}"));
    }
    let _ = srv_tx.send(true);
    let _ = server.await;
    drop(lock);
    log("stopped");
    Ok(())
}

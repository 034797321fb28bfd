//! `watch`: keep a gateway holding an environment directory. A change to the directory (or a
//! base it inherits) re-plans and applies after a short debounce; a periodic drift check does
//! the same (in `observe` mode it only reports). An invalid edit is reported with its file and
//! pointer and the last good state stays in force; an unreachable gateway is retried with
//! backoff; a stop request lets in-flight requests finish and starts no new write.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use crate::apply::{Bucket, Cancel, Report};
use crate::envdir::Mode;
use crate::reconcile::{Counts, ReconcileError, Settings, Target};

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

/// What one cycle did.
#[derive(Debug)]
pub enum Cycle {
    InSync(Counts),
    Applied(Report),
    /// Observe mode: the changes that would be made.
    Drift(Vec<String>),
    Failed(ReconcileError),
}

/// Plan and, in `auto` mode, apply once. The one cycle `watch` and the daemon share.
pub async fn cycle(t: &Target) -> Cycle {
    let planned = match t.plan().await {
        Ok(p) => p,
        Err(e) => return Cycle::Failed(e),
    };
    let counts = planned.counts();
    if counts.changes() == 0 {
        return Cycle::InSync(counts);
    }
    if t.env.config.mode == Mode::Observe {
        return Cycle::Drift(planned.lines(false));
    }
    match t.apply(&planned, None).await {
        Ok(r) => Cycle::Applied(r),
        Err(e) => Cycle::Failed(e),
    }
}

/// One line per event: a multi-line error is joined with "; ".
fn log(dir: &Path, msg: &str) {
    let msg: Vec<&str> = msg
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    eprintln!(
        "{} watch {}: {}",
        crate::clock::now_rfc3339(),
        dir.display(),
        msg.join("; ")
    );
}

fn summary(r: &Report) -> String {
    let n = |b| r.count(None, b);
    format!(
        "applied: {} created, {} updated, {} deleted, {} unchanged, {} skipped, {} failed",
        n(Bucket::Created),
        n(Bucket::Updated),
        n(Bucket::Deleted),
        n(Bucket::Unchanged),
        n(Bucket::Skipped),
        n(Bucket::Failed)
    )
}

/// The directories to watch: the environment and its bases.
fn watched_dirs(t: Option<&Target>, dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![dir.to_path_buf()];
    if let Some(t) = t {
        for b in &t.env.config.bases {
            dirs.push(t.env.dir.join(b));
        }
    }
    dirs
}

/// Whether a file event can change the environment (editor droppings are not).
fn relevant(event: &notify::Event) -> bool {
    use notify::EventKind;
    if matches!(event.kind, EventKind::Access(_)) {
        return false;
    }
    event.paths.iter().any(|p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        !(name.starts_with('.') || name.ends_with('~') || name.ends_with(".swp"))
    })
}

enum Verdict {
    Keep,
    Retry,
    Reject,
}

/// Watch `dir` until `stop` resolves. Returns when stopped (never on errors).
pub async fn watch(
    dir: &Path,
    opts: &WatchOptions,
    stop: impl Future<Output = ()>,
) -> Result<(), notify::Error> {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(e) = res
            && relevant(&e)
        {
            let _ = tx.send(());
        }
    })?;
    let cancel = Cancel::default();
    tokio::pin!(stop);
    let mut watching: Vec<PathBuf> = Vec::new();
    // The state last applied or checked without an error in the documents, and a newly
    // loaded one that has not yet been through a cycle.
    let mut good: Option<Target> = None;
    let mut pending: Option<Target> = None;
    let mut reload = true;
    let mut backoff = Duration::ZERO;
    let mut drift_reported = false;
    // Say "in sync" once after each (re)load, so that an edit that changes nothing is seen.
    let mut announce = false;
    loop {
        if reload {
            reload = false;
            match Target::open(dir, &opts.settings) {
                Ok(mut t) => {
                    t.opts.cancel = cancel.clone();
                    pending = Some(t);
                    drift_reported = false;
                    announce = true;
                }
                Err(e) => {
                    let keep = if good.is_some() {
                        "applying nothing; the last good state stays in force"
                    } else {
                        "applying nothing until it is fixed"
                    };
                    log(dir, &format!("invalid: {e}; {keep}"));
                }
            }
            let want = watched_dirs(pending.as_ref().or(good.as_ref()), dir);
            if want != watching {
                for d in &watching {
                    let _ = watcher.unwatch(d);
                }
                for d in &want {
                    if let Err(e) = watcher.watch(d, RecursiveMode::NonRecursive) {
                        log(dir, &format!("cannot watch {}: {e}", d.display()));
                    }
                }
                watching = want;
            }
        }
        let mut next = Instant::now() + opts.interval;
        let mut stopping = false;
        let refused = |e: &ReconcileError| matches!(e.label(), "invalid" | "mass_delete");
        let fresh = pending.take();
        let is_fresh = fresh.is_some();
        // What becomes of a freshly loaded state: kept, rejected, or retried.
        let mut verdict = Verdict::Keep;
        if let Some(t) = fresh.as_ref().or(good.as_ref()) {
            let run = cycle(t);
            tokio::pin!(run);
            let outcome = tokio::select! {
                c = &mut run => c,
                _ = &mut stop => {
                    log(dir, "stopping: finishing requests in flight");
                    cancel.cancel();
                    stopping = true;
                    run.await
                }
            };
            match outcome {
                Cycle::InSync(c) => {
                    backoff = Duration::ZERO;
                    if drift_reported || announce {
                        log(dir, &format!("in sync ({} unchanged)", c.unchanged));
                        drift_reported = false;
                        announce = false;
                    }
                }
                Cycle::Applied(r) => {
                    backoff = Duration::ZERO;
                    for res in r
                        .results
                        .iter()
                        .filter(|r| r.outcome.bucket() != Bucket::Unchanged)
                    {
                        log(
                            dir,
                            &t.env.mask(&format!(
                                "{} {} {}",
                                res.kind,
                                res.name,
                                serde_json::to_value(&res.outcome)
                                    .ok()
                                    .and_then(|v| v.get("result").cloned())
                                    .and_then(|v| v.as_str().map(str::to_string))
                                    .unwrap_or_default()
                            )),
                        );
                    }
                    log(dir, &summary(&r));
                    drift_reported = true;
                }
                Cycle::Drift(lines) => {
                    backoff = Duration::ZERO;
                    if !drift_reported {
                        log(
                            dir,
                            &format!("drift ({} changes, mode observe):", lines.len()),
                        );
                        for l in &lines {
                            log(dir, &t.env.mask(l));
                        }
                    }
                    drift_reported = true;
                }
                Cycle::Failed(e) if e.is_transient() => {
                    backoff = (backoff * 2)
                        .max(Duration::from_millis(500))
                        .min(opts.max_backoff);
                    log(
                        dir,
                        &format!(
                            "{}; retrying in {:.1}s",
                            t.env.mask(&e.to_string()),
                            backoff.as_secs_f64()
                        ),
                    );
                    next = Instant::now() + backoff;
                    verdict = Verdict::Retry;
                }
                Cycle::Failed(e) if is_fresh && refused(&e) => {
                    let keep = if good.is_some() {
                        "applying nothing; the last good state stays in force"
                    } else {
                        "applying nothing until it is fixed"
                    };
                    log(
                        dir,
                        &format!("invalid: {}; {keep}", t.env.mask(&e.to_string())),
                    );
                    verdict = Verdict::Reject;
                    drift_reported = false;
                }
                Cycle::Failed(e) => {
                    log(dir, &format!("failed: {}", t.env.mask(&e.to_string())));
                }
            }
        }
        if let Some(f) = fresh {
            match verdict {
                Verdict::Keep => good = Some(f),
                Verdict::Retry => pending = Some(f),
                Verdict::Reject => {}
            }
        }
        if stopping {
            break;
        }
        // Wait for a change, the next check, or a stop.
        tokio::select! {
            _ = &mut stop => break,
            _ = sleep_until(next) => {}
            got = rx.recv() => {
                if got.is_none() {
                    break;
                }
                // Debounce: wait until the directory has been quiet for a moment.
                loop {
                    tokio::select! {
                        more = rx.recv() => if more.is_none() { break },
                        _ = tokio::time::sleep(opts.debounce) => break,
                    }
                }
                reload = true;
            }
        }
    }
    log(dir, "stopped");
    Ok(())
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

//! One environment kept in its desired state: the loop `watch` and every environment of the
//! daemon run. It loads the source (a directory, on every saved change; a Git branch, every
//! interval and on a webhook), plans, applies in `auto` mode or reports drift in `observe`
//! mode, and checks for drift every interval. An invalid revision or edit is reported with its
//! file and pointer and applies nothing: the last good state stays in force. An unreachable
//! gateway or repository is retried with backoff. A stop lets requests in flight finish and
//! starts no new write.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::metrics::Metrics;
use super::source::{self, Fetched, Loaded, Source};
use super::status::{CycleResult, EnvShared, Live, SourceError, StateStore};
use crate::apply::{Bucket, Cancel, Report};
use crate::envdir::Mode;
use crate::git::CommitId;
use crate::reconcile::{Counts, ReconcileError, Settings, Target};

/// What one cycle did.
#[derive(Debug)]
pub enum Cycle {
    InSync(Counts),
    Applied(Report),
    /// Observe mode: the changes that would be made.
    Drift {
        counts: Counts,
        lines: Vec<String>,
    },
    Failed(ReconcileError),
}

/// Plan and, in `auto` mode, apply once, holding the environment's lock (`log` is told when
/// another process holds it and the cycle waits).
pub async fn cycle(t: &Target, log: &(dyn Fn(&str) + Sync)) -> Cycle {
    let _lock = if t.env.config.mode == Mode::Observe {
        None
    } else {
        match t.lock(&|w| log(&w.to_string())).await {
            Ok(l) => Some(l),
            Err(e) => return Cycle::Failed(e),
        }
    };
    let planned = match t.plan().await {
        Ok(p) => p,
        Err(e) => return Cycle::Failed(e),
    };
    let counts = planned.counts();
    if counts.changes() == 0 {
        return Cycle::InSync(counts);
    }
    if t.env.config.mode == Mode::Observe {
        return Cycle::Drift {
            counts,
            lines: planned.lines(false),
        };
    }
    match t.apply(&planned, None).await {
        Ok(r) => Cycle::Applied(r),
        Err(e) => Cycle::Failed(e),
    }
}

/// Asks a worker to act now.
#[derive(Clone, Copy, Debug)]
pub enum Trigger {
    /// Fetch the source (a webhook said it changed) and reconcile.
    Fetch,
}

/// How a worker runs.
pub struct Worker {
    /// Log lines start with it: `watch envs/dev`, `env prod`.
    pub label: String,
    pub source: Source,
    /// Drift check (and, for Git, fetch) period.
    pub interval: Duration,
    /// Quiet time after the last file event before reloading a directory.
    pub debounce: Duration,
    /// Longest wait between retries while the gateway or repository is unreachable.
    pub max_backoff: Duration,
    pub settings: Settings,
    /// Overrides the environment file's mode.
    pub mode: Option<Mode>,
    pub shared: Arc<EnvShared>,
    pub metrics: Option<Arc<Metrics>>,
    pub store: Option<Arc<StateStore>>,
    /// The revision a previous run applied: used when the head cannot be at start.
    pub resume: Option<CommitId>,
}

enum Verdict {
    Keep,
    Retry,
    Reject,
}

fn backoff_after(prev: Duration, max: Duration) -> Duration {
    (prev * 2).max(Duration::from_millis(500)).min(max)
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

fn report_counts(r: &Report) -> Counts {
    let n = |b| r.count(None, b);
    Counts {
        create: n(Bucket::Created),
        update: n(Bucket::Updated),
        delete: n(Bucket::Deleted),
        unchanged: n(Bucket::Unchanged),
        skip: n(Bucket::Skipped),
    }
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

/// The directories to watch: the environment and its bases.
fn watched_dirs(t: Option<&Target>, dir: &std::path::Path) -> Vec<PathBuf> {
    let mut dirs = vec![dir.to_path_buf()];
    if let Some(t) = t {
        for b in &t.env.config.bases {
            dirs.push(t.env.dir.join(b));
        }
    }
    dirs
}

const KEEP_GOOD: &str = "applying nothing; the last good state stays in force";
const KEEP_NONE: &str = "applying nothing until it is fixed";

impl Worker {
    fn log(&self, msg: &str) {
        super::log_line(&self.label, msg);
    }

    fn save(&self) {
        if let Some(store) = &self.store
            && let Err(e) = store.save()
        {
            self.log(&format!("cannot save the daemon's state: {e}"));
        }
    }

    async fn load(
        &self,
        seen: Option<&CommitId>,
        current: Option<&Loaded>,
        at: Option<&CommitId>,
    ) -> Fetched {
        let fetched = match &self.source {
            Source::Dir(d) => source::load_dir(d, &self.settings),
            Source::Git(g) => {
                let (g, s) = (g.clone(), self.settings.clone());
                let (seen, at) = (seen.cloned(), at.cloned());
                let key = current.map(|l| l.key.clone());
                tokio::task::spawn_blocking(move || {
                    source::load_git(&g, &s, seen.as_ref(), key.as_ref(), at.as_ref())
                })
                .await
                .unwrap_or_else(|e| Fetched::Failed(crate::git::GitError::local("fetch", e)))
            }
        };
        match fetched {
            Fetched::New(mut l) => {
                if let Some(m) = self.mode {
                    l.target.env.config.mode = m;
                }
                Fetched::New(l)
            }
            other => other,
        }
    }

    fn source_error(&self, reason: &str, error: &str, revision: Option<&CommitId>) {
        if let Some(m) = &self.metrics {
            m.source_error(&self.shared.name, reason);
        }
        self.shared.update(|s| {
            s.source_error = Some(SourceError {
                at: crate::clock::now_rfc3339(),
                revision: revision.map(|c| c.0.clone()),
                reason: reason.into(),
                error: error.into(),
            });
            if let Some(r) = revision {
                s.head = Some(r.0.clone());
            }
        });
    }

    /// Record a cycle in the status, the metrics and the state file.
    fn record(&self, l: &Loaded, cycle: &Cycle, started: Instant) {
        let at = crate::clock::now_rfc3339();
        let duration = started.elapsed();
        let mut r = CycleResult {
            at: at.clone(),
            duration_ms: duration.as_millis() as u64,
            revision: l.revision.as_ref().map(|c| c.0.clone()),
            ..CycleResult::default()
        };
        let (drift, applied) = match cycle {
            Cycle::InSync(c) => {
                r.outcome = "in_sync".into();
                r.counts = *c;
                (0, true)
            }
            Cycle::Applied(rep) => {
                r.outcome = "applied".into();
                r.counts = report_counts(rep);
                r.failed = rep.failed();
                (r.failed + r.counts.skip, r.failed == 0)
            }
            Cycle::Drift { counts, .. } => {
                r.outcome = "drift".into();
                r.counts = *counts;
                (counts.changes(), false)
            }
            Cycle::Failed(e) => {
                r.outcome = "failed".into();
                r.reason = Some(e.label().into());
                r.error = Some(l.target.env.mask(&e.to_string()));
                (0, false)
            }
        };
        if let Some(m) = &self.metrics {
            m.cycle(
                &self.shared.name,
                &r.outcome,
                r.reason.as_deref(),
                duration,
                drift,
                applied,
            );
        }
        self.shared.update(|s| {
            s.cycles += 1;
            if !matches!(cycle, Cycle::Failed(_)) {
                s.drift = drift;
            }
            if applied {
                s.last_applied_at = Some(at);
            }
            s.last_result = Some(r);
        });
        self.shared.set_ready();
        self.save();
        crate::memory::release_soon();
    }

    /// The state `l` is now in force.
    fn adopt(&self, l: &Loaded) {
        let t = &l.target;
        *self.shared.live.lock().expect("live lock") = Some(Live {
            client: t.client.clone(),
            keys: t.keys.clone(),
            who: t.client.who(),
            inputs: l.key.paths.clone(),
        });
        self.shared.update(|s| {
            s.revision = l.revision.as_ref().map(|c| c.0.clone());
            if let Some(r) = &l.revision {
                s.head = Some(r.0.clone());
            }
            s.source_error = None;
            s.gateway = Some(t.env.config.gateway.clone());
            s.mode = Some(format!("{:?}", t.env.config.mode).to_lowercase());
        });
    }

    fn log_cycle(&self, t: &Target, outcome: &Cycle, drift_reported: bool) {
        match outcome {
            Cycle::Applied(r) => {
                for res in r
                    .results
                    .iter()
                    .filter(|r| r.outcome.bucket() != Bucket::Unchanged)
                {
                    let result = serde_json::to_value(&res.outcome)
                        .ok()
                        .and_then(|v| v.get("result").and_then(|v| v.as_str().map(str::to_string)))
                        .unwrap_or_default();
                    self.log(&t.env.mask(&format!("{} {} {result}", res.kind, res.name)));
                }
                self.log(&summary(r));
            }
            Cycle::Drift { lines, .. } if !drift_reported => {
                self.log(&format!("drift ({} changes, mode observe):", lines.len()));
                for l in lines {
                    self.log(&t.env.mask(l));
                }
            }
            _ => {}
        }
    }

    /// Run until `stop` resolves; `triggers` ask for an immediate fetch. Returns when stopped
    /// (never on errors of the source or the gateway).
    pub async fn run(
        self,
        mut triggers: mpsc::UnboundedReceiver<Trigger>,
        stop: impl Future<Output = ()>,
    ) -> Result<(), notify::Error> {
        let (fs_tx, mut fs_rx) = mpsc::unbounded_channel::<()>();
        let mut watcher = match &self.source {
            Source::Dir(_) => Some(notify::recommended_watcher(
                move |res: notify::Result<notify::Event>| {
                    if let Ok(e) = res
                        && relevant(&e)
                    {
                        let _ = fs_tx.send(());
                    }
                },
            )?),
            Source::Git(_) => None,
        };
        let cancel = Cancel::default();
        tokio::pin!(stop);
        let mut watching: Vec<PathBuf> = Vec::new();
        // The state last applied or checked without an error in the documents, and a newly
        // loaded one that has not yet been through a cycle.
        let mut good: Option<Loaded> = None;
        let mut pending: Option<Loaded> = None;
        let mut seen: Option<CommitId> = None;
        let mut resume = self.resume.clone();
        let mut reload = true;
        // Whether this wake-up checks for drift (start, timer, file change); a webhook whose
        // fetch brings nothing new for this environment does not.
        let mut check = true;
        let mut backoff = Duration::ZERO;
        let mut git_backoff = Duration::ZERO;
        let mut drift_reported = false;
        let mut triggers_open = true;
        // Say "in sync" once after each (re)load, so that an edit that changes nothing is seen.
        let mut announce = false;
        let mut next = Instant::now();
        loop {
            if check {
                next = Instant::now() + self.interval;
            }
            if reload {
                reload = false;
                let current = pending.as_ref().or(good.as_ref());
                let fetched = self.load(seen.as_ref(), current, None).await;
                match fetched {
                    Fetched::New(l) => {
                        git_backoff = Duration::ZERO;
                        seen = l.revision.clone();
                        let mut l = *l;
                        l.target.opts.cancel = cancel.clone();
                        pending = Some(l);
                        drift_reported = false;
                        announce = true;
                    }
                    Fetched::Same(head) => {
                        git_backoff = Duration::ZERO;
                        self.shared.update(|s| {
                            s.head = Some(head.0.clone());
                            s.source_error = None;
                        });
                        seen = Some(head);
                    }
                    Fetched::Unchanged => {
                        git_backoff = Duration::ZERO;
                        // Reachable again: a fetch problem is over (an invalid head stays).
                        self.shared.update(|s| {
                            if s.source_error.as_ref().is_some_and(|e| e.reason == "git") {
                                s.source_error = None;
                            }
                        });
                    }
                    Fetched::Invalid { error, revision } => {
                        git_backoff = Duration::ZERO;
                        let keep = if good.is_some() { KEEP_GOOD } else { KEEP_NONE };
                        self.log(&format!("invalid: {error}; {keep}"));
                        self.source_error("invalid", &error, revision.as_ref());
                        seen = revision;
                        self.shared.set_ready();
                        self.save();
                    }
                    Fetched::Failed(e) => {
                        let transient = matches!(e, crate::git::GitError::Unreachable { .. });
                        let msg = e.to_string();
                        if transient {
                            git_backoff = backoff_after(git_backoff, self.max_backoff);
                            next = next.min(Instant::now() + git_backoff);
                            self.log(&format!(
                                "{msg}; retrying in {:.1}s",
                                git_backoff.as_secs_f64()
                            ));
                        } else {
                            self.log(&format!("failed: {msg}"));
                        }
                        self.source_error("git", &msg, None);
                        self.shared.set_ready();
                        self.save();
                    }
                }
                // A restarted daemon whose head cannot be used carries on with what it last
                // applied.
                if good.is_none()
                    && pending.is_none()
                    && let Some(rev) = resume.take()
                {
                    match self.load(None, None, Some(&rev)).await {
                        Fetched::New(l) => {
                            self.log(&format!(
                                "resuming with {}, the revision applied before the restart",
                                rev.short()
                            ));
                            let mut l = *l;
                            l.target.opts.cancel = cancel.clone();
                            // In force, while the head's problem stays on record.
                            let problem = self.shared.status().source_error;
                            self.adopt(&l);
                            self.shared.update(|s| s.source_error = problem);
                            good = Some(l);
                        }
                        _ => self.log(&format!("cannot resume with {}", rev.short())),
                    }
                }
                if let (Some(w), Source::Dir(dir)) = (watcher.as_mut(), &self.source) {
                    let want =
                        watched_dirs(pending.as_ref().or(good.as_ref()).map(|l| &l.target), dir);
                    if want != watching {
                        for d in &watching {
                            let _ = w.unwatch(d);
                        }
                        for d in &want {
                            if let Err(e) = w.watch(d, RecursiveMode::NonRecursive) {
                                self.log(&format!("cannot watch {}: {e}", d.display()));
                            }
                        }
                        watching = want;
                    }
                }
            }
            let mut stopping = false;
            let refused = |e: &ReconcileError| matches!(e.label(), "invalid" | "mass_delete");
            let fresh = pending.take();
            let is_fresh = fresh.is_some();
            let mut verdict = Verdict::Keep;
            let state = if is_fresh || check {
                fresh.as_ref().or(good.as_ref())
            } else {
                None
            };
            if let Some(l) = state {
                let t = &l.target;
                let started = Instant::now();
                let tell = |m: &str| self.log(m);
                let run = cycle(t, &tell);
                tokio::pin!(run);
                let outcome = tokio::select! {
                    c = &mut run => c,
                    _ = &mut stop => {
                        self.log("stopping: finishing requests in flight");
                        cancel.cancel();
                        stopping = true;
                        run.await
                    }
                };
                self.log_cycle(t, &outcome, drift_reported);
                match &outcome {
                    Cycle::InSync(c) => {
                        backoff = Duration::ZERO;
                        if drift_reported || announce {
                            self.log(&format!("in sync ({} unchanged)", c.unchanged));
                            drift_reported = false;
                            announce = false;
                        }
                    }
                    Cycle::Applied(_) | Cycle::Drift { .. } => {
                        backoff = Duration::ZERO;
                        drift_reported = true;
                    }
                    Cycle::Failed(e) if e.is_transient() => {
                        backoff = backoff_after(backoff, self.max_backoff);
                        self.log(&format!(
                            "{}; retrying in {:.1}s",
                            t.env.mask(&e.to_string()),
                            backoff.as_secs_f64()
                        ));
                        next = next.min(Instant::now() + backoff);
                        verdict = Verdict::Retry;
                    }
                    Cycle::Failed(e) if is_fresh && refused(e) => {
                        let keep = if good.is_some() { KEEP_GOOD } else { KEEP_NONE };
                        let msg = t.env.mask(&e.to_string());
                        self.log(&format!("invalid: {msg}; {keep}"));
                        self.source_error(e.label(), &msg, l.revision.as_ref());
                        verdict = Verdict::Reject;
                        drift_reported = false;
                    }
                    Cycle::Failed(e) => {
                        self.log(&format!("failed: {}", t.env.mask(&e.to_string())));
                    }
                }
                if matches!(verdict, Verdict::Keep) && is_fresh {
                    self.adopt(l);
                }
                self.record(l, &outcome, started);
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
            let until = next.saturating_duration_since(Instant::now());
            self.shared.update(|s| {
                s.next_run = Some(super::schedule::rfc3339(
                    super::schedule::unix_now() + until.as_secs() as i64,
                ));
            });
            // Wait for a change, a trigger, the next check, or a stop.
            check = true;
            tokio::select! {
                _ = &mut stop => break,
                _ = sleep_until(next) => {
                    if matches!(self.source, Source::Git(_)) {
                        reload = true;
                    }
                }
                got = fs_rx.recv(), if watcher.is_some() => {
                    if got.is_none() {
                        break;
                    }
                    // Debounce: wait until the directory has been quiet for a moment.
                    loop {
                        tokio::select! {
                            more = fs_rx.recv() => if more.is_none() { break },
                            _ = tokio::time::sleep(self.debounce) => break,
                        }
                    }
                    reload = true;
                }
                got = triggers.recv(), if triggers_open => {
                    check = false;
                    if got.is_some() {
                        while triggers.try_recv().is_ok() {}
                        reload = true;
                    } else {
                        triggers_open = false;
                    }
                }
            }
        }
        self.log("stopped");
        Ok(())
    }
}

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
use super::status::{EnvShared, SourceFault, StateStore};
use crate::core::error::Classify;
use crate::engine::apply::{Cancel, Report};
use crate::engine::environment::Mode;
use crate::engine::git::CommitId;
use crate::engine::reconcile::{Counts, ReconcileError, Settings, Target};
use crate::engine::rules::{self, CycleKind, LoopRules, Verdict, Wake};

#[path = "worker_record.rs"]
mod record;

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

impl Cycle {
    /// What the loop's rules see of it.
    pub fn kind(&self) -> CycleKind {
        match self {
            Cycle::InSync(_) => CycleKind::InSync,
            Cycle::Applied(_) | Cycle::Drift { .. } => CycleKind::Changed,
            Cycle::Failed(e) => CycleKind::Failed(e.class()),
        }
    }
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
    /// Fetch the source and check for drift even if it did not change ("reconcile now").
    Reconcile,
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
                .unwrap_or_else(|e| {
                    Fetched::Failed(crate::engine::git::GitError::local("fetch", e))
                })
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

    /// Load the source (and, after a restart, what was last applied) into `st`.
    async fn reload(&self, st: &mut LoopState, cancel: &Cancel) {
        let current = st.pending.as_ref().or(st.good.as_ref());
        match self.load(st.seen.as_ref(), current, None).await {
            Fetched::New(l) => {
                st.rules.loaded();
                st.seen = l.revision.clone();
                let mut l = *l;
                l.target.opts.cancel = cancel.clone();
                st.pending = Some(l);
            }
            Fetched::Same(head) => {
                st.rules.fetched();
                self.shared.update(|s| {
                    s.head = Some(head.0.clone());
                    s.source_error = None;
                });
                st.seen = Some(head);
            }
            Fetched::Unchanged => {
                st.rules.fetched();
                // Reachable again: a fetch problem is over (an invalid head stays).
                self.shared.update(|s| {
                    if s.source_error
                        .as_ref()
                        .is_some_and(|e| e.reason == SourceFault::Git)
                    {
                        s.source_error = None;
                    }
                });
            }
            Fetched::Invalid { error, revision } => {
                st.rules.fetched();
                let keep = if st.good.is_some() {
                    KEEP_GOOD
                } else {
                    KEEP_NONE
                };
                self.log(&format!("invalid: {error}; {keep}"));
                self.source_error(SourceFault::Invalid, &error, revision.as_ref());
                st.seen = revision;
                self.shared.set_ready();
                self.save();
            }
            Fetched::Failed(e) => {
                let msg = e.to_string();
                match st.rules.fetch_failed(e.class()) {
                    Some(wait) => {
                        st.next = st.next.min(Instant::now() + wait);
                        self.log(&format!("{msg}; retrying in {:.1}s", wait.as_secs_f64()));
                    }
                    None => self.log(&format!("failed: {msg}")),
                }
                self.source_error(SourceFault::Git, &msg, None);
                self.shared.set_ready();
                self.save();
            }
        }
        // A restarted daemon whose head cannot be used carries on with what it last applied.
        if st.good.is_none()
            && st.pending.is_none()
            && let Some(rev) = st.resume.take()
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
                    st.good = Some(l);
                }
                _ => self.log(&format!("cannot resume with {}", rev.short())),
            }
        }
    }

    /// Watch the environment's directories (and its bases') for a directory source.
    fn rewatch(
        &self,
        st: &LoopState,
        w: &mut notify::RecommendedWatcher,
        watching: &mut Vec<PathBuf>,
    ) {
        let Source::Dir(dir) = &self.source else {
            return;
        };
        let want = watched_dirs(
            st.pending.as_ref().or(st.good.as_ref()).map(|l| &l.target),
            dir,
        );
        if want != *watching {
            for d in watching.iter() {
                let _ = w.unwatch(d);
            }
            for d in &want {
                if let Err(e) = w.watch(d, RecursiveMode::NonRecursive) {
                    self.log(&format!("cannot watch {}: {e}", d.display()));
                }
            }
            *watching = want;
        }
    }

    /// Log and record one cycle's outcome; the rules decide what becomes of the state.
    #[allow(clippy::too_many_arguments)]
    fn conclude(
        &self,
        l: &Loaded,
        outcome: &Cycle,
        fresh: bool,
        has_good: bool,
        rules: &mut LoopRules,
        next: &mut Instant,
        started: Instant,
    ) -> Verdict {
        let t = &l.target;
        let d = rules.after_cycle(outcome.kind(), fresh);
        self.log_cycle(outcome, d.report_drift);
        match outcome {
            Cycle::InSync(c) if d.say_in_sync => {
                self.log(&format!("in sync ({} unchanged)", c.unchanged));
            }
            Cycle::Failed(e) => {
                let msg = t.env.mask(&e.to_string());
                if let Some(wait) = d.retry_in {
                    self.log(&format!("{msg}; retrying in {:.1}s", wait.as_secs_f64()));
                    *next = (*next).min(Instant::now() + wait);
                } else if d.verdict == Verdict::Reject {
                    let keep = if has_good { KEEP_GOOD } else { KEEP_NONE };
                    self.log(&format!("invalid: {msg}; {keep}"));
                    self.source_error(SourceFault::rejected(e.class()), &msg, l.revision.as_ref());
                } else {
                    self.log(&format!("failed: {msg}"));
                }
            }
            _ => {}
        }
        if d.verdict == Verdict::Keep && fresh {
            self.adopt(l);
        }
        self.record(l, outcome, started);
        d.verdict
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
        let polled = matches!(self.source, Source::Git(_));
        let cancel = Cancel::default();
        tokio::pin!(stop);
        let mut watching: Vec<PathBuf> = Vec::new();
        let mut st = LoopState {
            rules: LoopRules::new(self.max_backoff),
            good: None,
            pending: None,
            seen: None,
            resume: self.resume.clone(),
            next: Instant::now(),
        };
        let (mut reload, mut check) = (true, true);
        let mut triggers_open = true;
        loop {
            if check {
                st.next = Instant::now() + self.interval;
            }
            if reload {
                self.reload(&mut st, &cancel).await;
                if let Some(w) = watcher.as_mut() {
                    self.rewatch(&st, w, &mut watching);
                }
            }
            let mut stopping = false;
            let fresh = st.pending.take();
            let verdict = match rules::to_run(fresh.as_ref(), st.good.as_ref(), check) {
                None => None,
                Some(l) => {
                    let started = Instant::now();
                    let tell = |m: &str| self.log(m);
                    // One writer per environment in this process: an API apply or import
                    // finishes first.
                    let _writer = self.shared.writer.lock().await;
                    let run = cycle(&l.target, &tell);
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
                    let has_good = st.good.is_some();
                    Some(self.conclude(
                        l,
                        &outcome,
                        fresh.is_some(),
                        has_good,
                        &mut st.rules,
                        &mut st.next,
                        started,
                    ))
                }
            };
            if let (Some(verdict), Some(f)) = (verdict, fresh) {
                rules::settle(&mut st.good, &mut st.pending, f, verdict);
            }
            if stopping {
                break;
            }
            let until = st.next.saturating_duration_since(Instant::now());
            self.shared.update(|s| {
                s.next_run = Some(super::schedule::rfc3339(
                    super::schedule::unix_now() + until.as_secs() as i64,
                ));
            });
            // Wait for a change, a trigger, the next check, or a stop.
            let wake = tokio::select! {
                _ = &mut stop => break,
                _ = sleep_until(st.next) => Wake::Timer,
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
                    Wake::Files
                }
                got = triggers.recv(), if triggers_open => {
                    if let Some(mut t) = got {
                        while let Ok(more) = triggers.try_recv() {
                            if matches!(more, Trigger::Reconcile) {
                                t = more;
                            }
                        }
                        match t {
                            Trigger::Fetch => Wake::Trigger,
                            Trigger::Reconcile => Wake::Reconcile,
                        }
                    } else {
                        // No more triggers: nothing to do until the next check.
                        triggers_open = false;
                        (reload, check) = (false, false);
                        continue;
                    }
                }
            };
            (reload, check) = rules::on_wake(wake, polled);
        }
        self.log("stopped");
        Ok(())
    }
}

/// What the loop carries between wake-ups.
struct LoopState {
    rules: LoopRules,
    /// The state last applied or checked without an error in the documents.
    good: Option<Loaded>,
    /// A newly loaded state that has not yet been through a cycle (or is to be retried).
    pending: Option<Loaded>,
    /// The revision last fetched.
    seen: Option<CommitId>,
    /// The revision a previous run applied, until used.
    resume: Option<CommitId>,
    next: Instant,
}

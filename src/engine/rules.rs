//! The rules of a reconcile loop, as pure transitions: what a cycle's outcome means for the
//! state in force (keep the last good state, retry with backoff, reject a bad revision), when
//! to say "in sync" or report drift again, and what a wake-up does. The daemon's and `watch`'s
//! loop (`daemon::worker`) drives them; the Kubernetes controller needs the same rules without
//! that loop.

use std::time::Duration;

use crate::core::error::ErrorClass;

/// The shortest wait before a retry.
pub const MIN_BACKOFF: Duration = Duration::from_millis(500);

/// The next wait after `prev`: doubled, at least [`MIN_BACKOFF`], at most `max`.
pub fn backoff_after(prev: Duration, max: Duration) -> Duration {
    (prev * 2).max(MIN_BACKOFF).min(max)
}

/// What one cycle came to, as far as the rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CycleKind {
    /// The gateway holds the desired state.
    InSync,
    /// Changes were applied, or (observe mode) drift was found.
    Changed,
    Failed(ErrorClass),
}

/// What becomes of a newly loaded state after its first cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It is now the state in force.
    Keep,
    /// Not yet used: try it again after the backoff.
    Retry,
    /// Refused (invalid, conflicts, mass delete): the last good state stays in force.
    Reject,
}

/// What the loop should do after a cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AfterCycle {
    pub verdict: Verdict,
    /// Run again this soon (a transient failure).
    pub retry_in: Option<Duration>,
    /// Say "in sync" (after drift was reported, or once after each load).
    pub say_in_sync: bool,
    /// Report the drift lines (not again while the same drift persists).
    pub report_drift: bool,
}

/// The loop's memory between cycles.
#[derive(Clone, Debug)]
pub struct LoopRules {
    max_backoff: Duration,
    backoff: Duration,
    fetch_backoff: Duration,
    drift_reported: bool,
    announce: bool,
}

impl LoopRules {
    pub fn new(max_backoff: Duration) -> LoopRules {
        LoopRules {
            max_backoff,
            backoff: Duration::ZERO,
            fetch_backoff: Duration::ZERO,
            drift_reported: false,
            announce: false,
        }
    }

    /// A new state was loaded: its first cycle reports its drift and says "in sync".
    pub fn loaded(&mut self) {
        self.fetch_backoff = Duration::ZERO;
        self.drift_reported = false;
        self.announce = true;
    }

    /// The source answered (with something new or not).
    pub fn fetched(&mut self) {
        self.fetch_backoff = Duration::ZERO;
    }

    /// The source could not be fetched: how soon to try again, if it is worth it.
    pub fn fetch_failed(&mut self, class: ErrorClass) -> Option<Duration> {
        class.is_transient().then(|| {
            self.fetch_backoff = backoff_after(self.fetch_backoff, self.max_backoff);
            self.fetch_backoff
        })
    }

    /// Decide after a cycle of a `fresh` (newly loaded) state or of the one in force.
    pub fn after_cycle(&mut self, kind: CycleKind, fresh: bool) -> AfterCycle {
        let mut out = AfterCycle {
            verdict: Verdict::Keep,
            retry_in: None,
            say_in_sync: false,
            report_drift: !self.drift_reported,
        };
        match kind {
            CycleKind::InSync => {
                self.backoff = Duration::ZERO;
                out.say_in_sync = self.drift_reported || self.announce;
                self.drift_reported = false;
                self.announce = false;
            }
            CycleKind::Changed => {
                self.backoff = Duration::ZERO;
                self.drift_reported = true;
            }
            CycleKind::Failed(c) if c.is_transient() => {
                self.backoff = backoff_after(self.backoff, self.max_backoff);
                out.retry_in = Some(self.backoff);
                out.verdict = Verdict::Retry;
            }
            CycleKind::Failed(c) if fresh && c.rejects_revision() => {
                out.verdict = Verdict::Reject;
                self.drift_reported = false;
            }
            CycleKind::Failed(_) => {}
        }
        out
    }
}

/// Which state a wake-up reconciles: a fresh one always, the one in force only on a check.
pub fn to_run<'a, S>(fresh: Option<&'a S>, good: Option<&'a S>, check: bool) -> Option<&'a S> {
    if fresh.is_some() || check {
        fresh.or(good)
    } else {
        None
    }
}

/// Where a fresh state goes after its first cycle.
pub fn settle<S>(good: &mut Option<S>, pending: &mut Option<S>, fresh: S, verdict: Verdict) {
    match verdict {
        Verdict::Keep => *good = Some(fresh),
        Verdict::Retry => *pending = Some(fresh),
        Verdict::Reject => {}
    }
}

/// Why a loop woke up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// The interval passed.
    Timer,
    /// Files of a directory source changed (after the debounce).
    Files,
    /// Someone asked for a fetch (a webhook).
    Trigger,
    /// Someone asked for a fetch and a drift check ("reconcile now").
    Reconcile,
}

/// What a wake-up does: `(reload the source, check for drift)`. A source that is polled (Git)
/// is fetched on the timer; a trigger fetches without a drift check of an unchanged state.
pub fn on_wake(wake: Wake, polled: bool) -> (bool, bool) {
    match wake {
        Wake::Timer => (polled, true),
        Wake::Files => (true, true),
        Wake::Trigger => (true, false),
        Wake::Reconcile => (true, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(8);

    #[test]
    fn backoff_doubles_from_the_minimum_up_to_the_maximum() {
        let mut b = Duration::ZERO;
        let mut seen = Vec::new();
        for _ in 0..7 {
            b = backoff_after(b, MAX);
            seen.push(b.as_millis());
        }
        assert_eq!(seen, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
    }

    #[test]
    fn a_cycle_outcome_decides_the_fresh_state() {
        use CycleKind::*;
        let busy = Failed(ErrorClass::GatewayBusy);
        // (outcome, fresh, verdict, retry)
        let table = [
            (InSync, true, Verdict::Keep, None),
            (Changed, true, Verdict::Keep, None),
            (
                Failed(ErrorClass::Unreachable),
                true,
                Verdict::Retry,
                Some(500),
            ),
            (busy, false, Verdict::Retry, Some(500)),
            (Failed(ErrorClass::Invalid), true, Verdict::Reject, None),
            (Failed(ErrorClass::Conflict), true, Verdict::Reject, None),
            (Failed(ErrorClass::MassDelete), true, Verdict::Reject, None),
            // The state in force is not rejected by a later failure: it stays.
            (Failed(ErrorClass::Invalid), false, Verdict::Keep, None),
            (Failed(ErrorClass::Auth), true, Verdict::Keep, None),
            (Failed(ErrorClass::Failed), true, Verdict::Keep, None),
        ];
        for (kind, fresh, verdict, retry) in table {
            let mut r = LoopRules::new(MAX);
            let d = r.after_cycle(kind, fresh);
            assert_eq!(d.verdict, verdict, "{kind:?} fresh={fresh}");
            assert_eq!(d.retry_in.map(|d| d.as_millis()), retry, "{kind:?}");
        }
    }

    #[test]
    fn retries_back_off_and_a_success_resets_them() {
        let mut r = LoopRules::new(MAX);
        let down = CycleKind::Failed(ErrorClass::Unreachable);
        let waits: Vec<_> = (0..3)
            .map(|_| r.after_cycle(down, true).retry_in.unwrap().as_millis())
            .collect();
        assert_eq!(waits, [500, 1000, 2000]);
        r.after_cycle(CycleKind::InSync, true);
        assert_eq!(r.after_cycle(down, true).retry_in.unwrap().as_millis(), 500);
    }

    #[test]
    fn drift_is_reported_once_and_in_sync_said_after_it() {
        let mut r = LoopRules::new(MAX);
        r.loaded();
        assert!(r.after_cycle(CycleKind::Changed, true).report_drift);
        assert!(!r.after_cycle(CycleKind::Changed, false).report_drift);
        let back = r.after_cycle(CycleKind::InSync, false);
        assert!(back.say_in_sync);
        assert!(!r.after_cycle(CycleKind::InSync, false).say_in_sync);
        // A reload announces "in sync" once even without drift.
        r.loaded();
        assert!(r.after_cycle(CycleKind::InSync, true).say_in_sync);
    }

    #[test]
    fn fetch_failures_back_off_only_when_transient() {
        let mut r = LoopRules::new(MAX);
        assert_eq!(r.fetch_failed(ErrorClass::Auth), None);
        assert_eq!(r.fetch_failed(ErrorClass::Unreachable), Some(MIN_BACKOFF));
        assert_eq!(
            r.fetch_failed(ErrorClass::Unreachable),
            Some(Duration::from_secs(1))
        );
        r.fetched();
        assert_eq!(r.fetch_failed(ErrorClass::Unreachable), Some(MIN_BACKOFF));
    }

    #[test]
    fn the_good_state_stays_unless_a_fresh_one_is_kept() {
        for (verdict, good, pending) in [
            (Verdict::Keep, Some("new"), None),
            (Verdict::Retry, Some("old"), Some("new")),
            (Verdict::Reject, Some("old"), None),
        ] {
            let (mut g, mut p) = (Some("old"), None);
            settle(&mut g, &mut p, "new", verdict);
            assert_eq!((g, p), (good, pending), "{verdict:?}");
        }
    }

    #[test]
    fn what_runs_and_what_a_wake_up_does() {
        assert_eq!(to_run(Some(&1), Some(&2), false), Some(&1));
        assert_eq!(to_run(None, Some(&2), false), None);
        assert_eq!(to_run(None, Some(&2), true), Some(&2));
        assert_eq!(to_run::<i32>(None, None, true), None);
        assert_eq!(on_wake(Wake::Timer, true), (true, true));
        assert_eq!(on_wake(Wake::Timer, false), (false, true));
        assert_eq!(on_wake(Wake::Files, false), (true, true));
        assert_eq!(on_wake(Wake::Trigger, true), (true, false));
    }
}

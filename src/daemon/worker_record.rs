//! What a worker records of each cycle: the status others read, the metrics, the state file
//! and the log line.

use tokio::time::Instant;

use super::super::status::{CycleOutcome, CycleResult, EnvShared, Live, SourceError, SourceFault};
use super::{Cycle, Loaded, Worker};
use crate::core::error::Classify;
use crate::engine::apply::{Report, Verb};
use crate::engine::git::CommitId;
use crate::engine::reconcile::Counts;

fn summary(r: &Report) -> String {
    let n = |b| r.count(None, b);
    format!(
        "applied: {} created, {} updated, {} deleted, {} unchanged, {} skipped, {} failed",
        n(Verb::Create),
        n(Verb::Update),
        n(Verb::Delete),
        n(Verb::Unchanged),
        n(Verb::Skip),
        n(Verb::Fail)
    )
}

/// What a run did, counted like a plan (its failures are `CycleResult::failed`).
fn report_counts(r: &Report) -> Counts {
    Counts::of(
        r.results
            .iter()
            .map(|x| x.outcome.verb())
            .filter(|v| *v != Verb::Fail),
    )
}

impl Worker {
    pub(super) fn source_error(
        &self,
        reason: SourceFault,
        error: &str,
        revision: Option<&CommitId>,
    ) {
        if let Some(m) = &self.metrics {
            m.source_error(&self.shared.name, reason);
        }
        self.shared.update(|s| {
            s.source_error = Some(SourceError {
                at: crate::core::clock::now_rfc3339(),
                revision: revision.map(|c| c.0.clone()),
                reason,
                error: error.into(),
            });
            if let Some(r) = revision {
                s.head = Some(r.0.clone());
            }
        });
    }

    /// Record a cycle in the status, the metrics and the state file.
    pub(super) fn record(&self, l: &Loaded, cycle: &Cycle, started: Instant) {
        let at = crate::core::clock::now_rfc3339();
        let duration = started.elapsed();
        let mut r = CycleResult {
            at: at.clone(),
            duration_ms: duration.as_millis() as u64,
            revision: l.revision.as_ref().map(|c| c.0.clone()),
            ..CycleResult::default()
        };
        let (drift, applied) = match cycle {
            Cycle::InSync(c) => {
                r.outcome = CycleOutcome::InSync;
                r.counts = *c;
                (0, true)
            }
            Cycle::Applied(rep) => {
                r.outcome = CycleOutcome::Applied;
                r.counts = report_counts(rep);
                r.failed = rep.failed();
                (r.failed + r.counts.skip, r.failed == 0)
            }
            Cycle::Drift { counts, .. } => {
                r.outcome = CycleOutcome::Drift;
                r.counts = *counts;
                (counts.changes(), false)
            }
            Cycle::Failed(e) => {
                r.outcome = CycleOutcome::Failed;
                r.reason = Some(e.class());
                r.error = Some(l.target.env.mask(&e.to_string()));
                (0, false)
            }
        };
        if let Some(m) = &self.metrics {
            m.cycle(
                &self.shared.name,
                r.outcome,
                r.reason,
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
            EnvShared::push_result(s, r);
        });
        self.shared.set_ready();
        self.save();
        crate::memory::release_soon();
    }

    /// The state `l` is now in force.
    pub(super) fn adopt(&self, l: &Loaded) {
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
            s.mode = Some(t.env.config.mode);
        });
    }

    pub(super) fn log_cycle(&self, outcome: &Cycle, report_drift: bool) {
        match outcome {
            Cycle::Applied(r) => {
                for res in r
                    .results
                    .iter()
                    .filter(|r| r.outcome.verb() != Verb::Unchanged)
                {
                    let result = serde_json::to_value(&res.outcome)
                        .ok()
                        .and_then(|v| v.get("result").and_then(|v| v.as_str().map(str::to_string)))
                        .unwrap_or_default();
                    self.log(&format!("{} {} {result}", res.kind, res.name));
                }
                self.log(&summary(r));
            }
            Cycle::Drift { lines, .. } if report_drift => {
                self.log(&format!("drift ({} changes, mode observe):", lines.len()));
                for l in lines {
                    self.log(l);
                }
            }
            _ => {}
        }
    }
}

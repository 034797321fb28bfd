//! Asynchronous jobs (an import, a bulk tool import) as the HTTP API runs them: what a job
//! records (its target, kind, state, live counts, per-entity results, errors and warnings,
//! times) and the pure rules on it: counting a result, finishing, marking a job the process
//! left running as interrupted, expiry. [`store`] keeps them, one file each, in the daemon's
//! state directory. A job record never holds a secret: results carry names, verbs and field
//! names, never values.

pub mod commit;
pub mod run;
pub mod store;

use serde::{Deserialize, Serialize};

use crate::core::kind::Kind;
use crate::core::policy::Strategy;
use crate::core::verb::Verb;
use crate::engine::apply::{EntityResult, Outcome, Report};

pub use commit::{queue_commit, run_commit};
pub use run::{ImportSpec, queue, run_import};
pub use store::{JobStore, StoreError};

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// A document imported into a gateway (or committed to an environment's Git source).
    Import,
    /// A JSON array of tools created through the gateway's bulk route.
    BulkTools,
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Accepted, waiting for the target's writer slot.
    Queued,
    Running,
    /// Ran to the end (entities may have failed: see the counts).
    Completed,
    /// Stopped as a whole before or while writing (the errors say why).
    Failed,
    /// The process stopped while it was queued or running; importing again converges.
    Interrupted,
    /// Stopped on request; writes in flight finished, no further one started.
    Cancelled,
}

impl JobState {
    pub fn finished(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

/// Live counts, in ContextForge's words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCounts {
    pub total: usize,
    pub processed: usize,
    pub created: usize,
    pub updated: usize,
    /// Skipped and unchanged entities.
    pub skipped: usize,
    pub failed: usize,
}

/// What happened to one entity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEntity {
    pub kind: Kind,
    /// Name, or URI for resources and roots.
    pub name: String,
    pub result: Verb,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renamed_to: Option<String>,
    /// Names of the fields written (never their values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Why it was skipped or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl JobEntity {
    pub fn of(r: &EntityResult) -> JobEntity {
        let (fields, message) = match &r.outcome {
            Outcome::Updated { fields } => (fields.clone(), None),
            Outcome::Skipped { reason } => (Vec::new(), Some(reason.clone())),
            Outcome::Failed { error, .. } => (Vec::new(), Some(error.clone())),
            _ => (Vec::new(), None),
        };
        JobEntity {
            kind: r.kind,
            name: r.name.clone(),
            result: r.outcome.verb(),
            renamed_to: r.renamed_to.clone(),
            fields,
            message,
        }
    }
}

/// What a job runs against.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum JobTarget {
    /// An environment of daemon.yaml.
    Environment(String),
    /// A gateway of daemon.yaml without a desired-state source.
    Gateway(String),
}

impl std::fmt::Display for JobTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobTarget::Environment(n) => write!(f, "environment {n}"),
            JobTarget::Gateway(n) => write!(f, "gateway {n}"),
        }
    }
}

/// One job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub target: JobTarget,
    pub kind: JobKind,
    pub state: JobState,
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict_strategy: Option<Strategy>,
    pub counts: JobCounts,
    pub results: Vec<JobEntity>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// What the job produced besides entity results (a commit, a branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<serde_json::Value>,
    /// RFC 3339.
    pub created_at: String,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    /// Unix seconds: when it finished (for expiry).
    #[serde(default)]
    pub finished_unix: Option<u64>,
}

/// A new job id: a random UUID (version 4) as ContextForge's import ids are.
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the operating system's random source");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Whether `id` has the form [`new_id`] gives (so that it can name a file).
pub fn valid_id(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
        })
}

impl Job {
    pub fn new(id: String, target: JobTarget, kind: JobKind, now: &str) -> Job {
        Job {
            id,
            target,
            kind,
            state: JobState::Queued,
            dry_run: false,
            conflict_strategy: None,
            counts: JobCounts::default(),
            results: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            outcome: None,
            created_at: now.to_string(),
            started_at: None,
            finished_at: None,
            finished_unix: None,
        }
    }

    pub fn start(&mut self, total: usize, now: &str) {
        self.state = JobState::Running;
        self.counts.total = total;
        self.started_at = Some(now.to_string());
    }

    /// Count one entity's result.
    pub fn record(&mut self, e: JobEntity) {
        let c = &mut self.counts;
        c.processed += 1;
        match e.result {
            Verb::Create => c.created += 1,
            Verb::Update | Verb::Delete => c.updated += 1,
            Verb::Unchanged | Verb::Skip => c.skipped += 1,
            Verb::Fail => c.failed += 1,
        }
        if let (Verb::Fail, Some(m)) = (e.result, &e.message) {
            self.errors.push(format!("{} {}: {m}", e.kind, e.name));
        }
        self.results.push(e);
        c.total = c.total.max(c.processed);
    }

    /// Finish after a run: every result the report has that was not recorded live is counted
    /// (the set-aside ones), its notes become warnings.
    pub fn complete(&mut self, report: &Report, now: &str, now_unix: u64) {
        let seen = self.results.len();
        if report.results.len() > seen {
            // The live results arrive in completion order; the report's are complete.
            self.counts = JobCounts {
                total: self.counts.total.max(report.results.len()),
                ..JobCounts::default()
            };
            self.results.clear();
            self.errors.clear();
            for r in &report.results {
                self.record(JobEntity::of(r));
            }
        }
        self.warnings.extend(report.notes.iter().cloned());
        self.finish(JobState::Completed, now, now_unix);
    }

    /// Stop the job as a whole with `error`.
    pub fn fail(&mut self, error: String, now: &str, now_unix: u64) {
        self.errors.push(error);
        self.finish(JobState::Failed, now, now_unix);
    }

    pub fn finish(&mut self, state: JobState, now: &str, now_unix: u64) {
        self.state = state;
        self.finished_at = Some(now.to_string());
        self.finished_unix = Some(now_unix);
    }

    /// At load: a job the previous process left queued or running can never finish; it is
    /// interrupted (its results so far are kept).
    pub fn interrupt_if_unfinished(&mut self, now: &str, now_unix: u64) -> bool {
        if self.state.finished() {
            return false;
        }
        self.errors.push(
            "interrupted: the daemon stopped before the job finished; run the import again (it converges: entities already written are unchanged)"
                .into(),
        );
        self.finish(JobState::Interrupted, now, now_unix);
        true
    }

    /// Finished at least `max_age_secs` ago.
    pub fn expired(&self, now_unix: u64, max_age_secs: u64) -> bool {
        self.state.finished()
            && self
                .finished_unix
                .is_some_and(|t| now_unix.saturating_sub(t) >= max_age_secs)
    }

    /// The job in ContextForge's import-status shape (`GET /import/status/{id}`).
    pub fn contextforge_status(&self) -> serde_json::Value {
        let status = match self.state {
            JobState::Queued => "pending",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed | JobState::Interrupted | JobState::Cancelled => "failed",
        };
        let c = &self.counts;
        let mut v = serde_json::json!({
            "import_id": self.id,
            "status": status,
            "progress": {
                "total": c.total,
                "processed": c.processed,
                "created": c.created,
                "updated": c.updated,
                "skipped": c.skipped,
                "failed": c.failed,
            },
            "errors": self.errors,
            "warnings": self.warnings,
            "started_at": self.started_at.as_ref().unwrap_or(&self.created_at),
            "completed_at": self.finished_at,
        });
        // Ours, beside ContextForge's fields: what the job produced (an import that became a
        // commit says which).
        if let Some(o) = &self.outcome {
            v["outcome"] = o.clone();
        }
        v
    }
}

#[cfg(test)]
mod tests;

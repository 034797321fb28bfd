//! Running an import into an `auto` environment with a Git source as a job: the import
//! becomes a commit ([`crate::engine::import_commit`]); the job records the commit (sha,
//! branch, files, counts by type) in its `outcome` and one result per entity, and writes
//! nothing to the gateway. Applying the commit is the environment's worker's job: `applied`
//! is called after a commit on the environment's own branch (the front door asks the worker to
//! reconcile now) and says whether that was asked.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::{JobEntity, JobStore};
use crate::core::clock;
use crate::core::verb::Verb;
use crate::engine::import_commit::{self, CommitOutcome, CommitRequest, CommitTarget, Validate};

/// Run queued job `id` as a commit: take its target's writer slot (imports into one target
/// run one after the other), commit, record. The commit's outcome when it succeeded.
pub async fn run_commit<A>(
    store: &JobStore,
    id: &str,
    target: CommitTarget,
    req: CommitRequest,
    validate: Arc<Validate>,
    applied: A,
) -> Option<CommitOutcome>
where
    A: FnOnce() -> bool,
{
    let job = store.get(id)?;
    let slot = store.writer(&job.target);
    let _slot = slot.lock().await;
    let _ = store.update(id, |j| j.start(0, &clock::now_rfc3339()));
    let done = tokio::task::spawn_blocking(move || {
        import_commit::commit_import(&target, &req, validate.as_ref())
    })
    .await;
    let (t, u) = (clock::now_rfc3339(), clock::now_unix());
    let out = match done {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            let _ = store.update(id, |j| j.fail(e.to_string(), &t, u));
            return None;
        }
        Err(e) => {
            let _ = store.update(id, |j| j.fail(format!("the commit stopped: {e}"), &t, u));
            return None;
        }
    };
    let mut record = outcome(&out);
    if out.commit.is_some() && !out.review {
        record["reconcile"] = json!(if applied() {
            "requested"
        } else {
            "not_requested"
        });
    }
    let _ = store.update(id, |j| {
        j.counts.total = out.items.len();
        for i in &out.items {
            j.record(JobEntity {
                kind: i.kind,
                name: i.name.clone(),
                result: i.result,
                renamed_to: None,
                fields: i.fields.clone(),
                message: i.reason.clone(),
            });
        }
        j.outcome = Some(record);
        j.finish(super::JobState::Completed, &t, u);
    });
    Some(out)
}

/// The job's `outcome` for a commit: `{"type": "commit", "committed", "commit", "branch",
/// "review", "base", "files", "message", "counts": {"created": {"tools": 2}, …}}`.
pub fn outcome(out: &CommitOutcome) -> Value {
    let mut counts: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for i in &out.items {
        let by = match i.result {
            Verb::Create => "created",
            Verb::Update | Verb::Delete => "updated",
            Verb::Unchanged => "unchanged",
            Verb::Skip => "skipped",
            Verb::Fail => "failed",
        };
        *counts
            .entry(by)
            .or_default()
            .entry(i.kind.plural())
            .or_default() += 1;
    }
    json!({
        "type": "commit",
        "committed": out.commit.is_some(),
        "commit": out.commit.as_ref().map(|c| c.0.clone()),
        "branch": out.branch,
        "review": out.review,
        "base": out.base.as_ref().map(|c| c.0.clone()),
        "files": out.files,
        "message": out.message,
        "counts": counts,
    })
}

/// Record a new queued commit job for `target`; its id.
pub fn queue_commit(
    store: &JobStore,
    target: super::JobTarget,
    strategy: crate::core::policy::Strategy,
    dry_run: bool,
) -> Result<String, super::StoreError> {
    let mut job = super::Job::new(
        super::new_id(),
        target,
        super::JobKind::Import,
        &clock::now_rfc3339(),
    );
    job.dry_run = dry_run;
    job.conflict_strategy = Some(strategy);
    let id = job.id.clone();
    store.insert(job)?;
    Ok(id)
}

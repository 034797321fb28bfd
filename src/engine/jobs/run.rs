//! Running an import as a job: wait for the target's writer slot (so two imports into one
//! target run one after the other) and whatever else the front door must hold (the
//! environment's reconcile lock), then stage and run the one import path
//! ([`crate::engine::import`]), every entity's result counted into the job as it is done.

use std::future::Future;

use super::{Job, JobEntity, JobKind, JobStore, JobTarget, StoreError, new_id};
use crate::core::clock;
use crate::core::document::Document;
use crate::core::select::IncludeSpec;
use crate::engine::apply::{EntityResult, Keys, Options};
use crate::engine::import;
use crate::gateway::Gateway;

/// What an import job imports, and how.
pub struct ImportSpec {
    pub whole: Document,
    /// The document's name in messages.
    pub file: String,
    pub keys: Keys,
    pub include: Option<IncludeSpec>,
    pub opts: Options,
}

/// Record a new queued import job for `target`; its id.
pub fn queue(store: &JobStore, target: JobTarget, spec: &ImportSpec) -> Result<String, StoreError> {
    let mut job = Job::new(new_id(), target, JobKind::Import, &clock::now_rfc3339());
    job.dry_run = spec.opts.dry_run;
    job.conflict_strategy = Some(spec.opts.strategy);
    let id = job.id.clone();
    store.insert(job)?;
    Ok(id)
}

/// Run queued job `id`: take the writer slot of its target, then `hold` (a lock the front
/// door needs, or why it cannot be had: the job fails with that), then import. The job ends
/// completed (entities may have failed: its counts say), or failed as a whole.
pub async fn run_import<G, H, T>(store: &JobStore, id: &str, client: &G, spec: ImportSpec, hold: H)
where
    G: Gateway,
    H: Future<Output = Result<T, String>>,
{
    let Some(job) = store.get(id) else { return };
    let slot = store.writer(&job.target);
    let _slot = slot.lock().await;
    let now = || (clock::now_rfc3339(), clock::now_unix());
    let fail = |error: String| {
        let (t, u) = now();
        let _ = store.update(id, |j| j.fail(error, &t, u));
    };
    let _held = match hold.await {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    let request = import::Request {
        whole: &spec.whole,
        file: &spec.file,
        keys: spec.keys.clone(),
        include: spec.include.clone(),
        opts: spec.opts.clone(),
    };
    let staged = match import::stage(client, request).await {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let total = import::total(&staged);
    let _ = store.update(id, |j| {
        j.start(total, &clock::now_rfc3339());
        for s in &staged.aside {
            j.record(JobEntity {
                kind: s.kind,
                name: s.key.clone(),
                result: crate::core::verb::Verb::Skip,
                renamed_to: None,
                fields: Vec::new(),
                message: Some(s.reason.clone()),
            });
        }
    });
    let progress = |r: &EntityResult, _: usize, _: usize| {
        let _ = store.update(id, |j| j.record(JobEntity::of(r)));
    };
    match import::run(client, &staged, Some(&progress)).await {
        Ok(report) => {
            let (t, u) = now();
            let _ = store.update(id, |j| j.complete(&report, &t, u));
        }
        Err(e) => fail(e.to_string()),
    }
}

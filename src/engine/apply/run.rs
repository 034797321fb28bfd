//! Execute prepared steps: one dependency level at a time (roots, gateways, tools, resources,
//! prompts, servers), `parallelism` writes at once inside a level, every entity's result
//! recorded; dependents of a failed entity are skipped, never attempted.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde_json::Value;
use tokio::time::Instant;

use super::{
    EntityResult, Ids, Index, Observed, Options, Outcome, Prepared, Report, Step, StepAction,
    key_of,
};
use crate::core::diff::{CredentialMap, Desired, FieldChange};
use crate::core::document::validate::{is_id_ref, slugify};
use crate::core::document::{Document, Server};
use crate::core::kind::Kind;
use crate::gateway::body::{self, Links, Owner};
use crate::gateway::{Gateway, GatewayError};

/// Called as each entity is done (written, found unchanged, skipped or failed) with its
/// result, how many are done and how many there are.
pub type Progress<'a> = &'a (dyn Fn(&EntityResult, usize, usize) + Sync);

/// The id of the token user's personal team (ownership for everything created).
pub async fn personal_team<G: Gateway>(client: &G) -> Result<Option<String>, GatewayError> {
    client.personal_team().await
}

struct Run<'a, G> {
    client: &'a G,
    resources: &'a HashMap<String, super::observe::ResourceMeta>,
    index: Index<'a>,
    creds: &'a CredentialMap,
    opts: &'a Options,
    owner: Owner,
    ids: Mutex<Ids>,
    /// (kind, identity) → why it did not reach the gateway.
    failed: Mutex<HashMap<(Kind, String), String>>,
    notes: Mutex<Vec<String>>,
    done: AtomicUsize,
    total: usize,
    progress: Option<Progress<'a>>,
}

/// Execute the steps. Never fails as a whole: every entity gets a result.
pub async fn execute<G: Gateway>(
    client: &G,
    desired: &Desired<'_>,
    observed: &Observed,
    prepared: &Prepared,
    opts: &Options,
    owner: Owner,
    progress: Option<Progress<'_>>,
) -> Report {
    let total = prepared.steps.len();
    let (desired, creds) = (desired.document, desired.credentials);
    let run = Run {
        client,
        resources: &observed.resources,
        index: Index::new(desired),
        creds,
        opts,
        owner,
        ids: Mutex::new(observed.ids.clone()),
        failed: Mutex::new(HashMap::new()),
        notes: Mutex::new(prepared.notes.clone()),
        done: AtomicUsize::new(0),
        total,
        progress,
    };
    let mut results = Vec::new();
    for kind in Kind::ALL {
        let steps: Vec<&Step> = prepared
            .steps
            .iter()
            .filter(|s| s.kind == kind && s.action != StepAction::Delete)
            .collect();
        if kind == Kind::Server && !opts.dry_run {
            run.await_discovery(&steps, desired).await;
        }
        // By index, so that the futures are `Send` (see `live::resource_contents`).
        let mut level: Vec<(usize, EntityResult)> = stream::iter(0..steps.len())
            .map(|i| {
                let (run, step) = (&run, steps[i]);
                async move { (i, run.step(step, observed).await) }
            })
            .buffer_unordered(opts.parallelism.max(1))
            .collect()
            .await;
        level.sort_by_key(|(i, _)| *i);
        results.extend(level.into_iter().map(|(_, r)| r));
    }
    // Prune last, in reverse dependency order, and only after a clean run: servers no longer
    // link what is about to go.
    let failed = results
        .iter()
        .filter(|r| r.outcome.verb() == super::Verb::Fail)
        .count();
    for kind in super::prune::DELETE_ORDER {
        let steps: Vec<&Step> = prepared
            .steps
            .iter()
            .filter(|s| s.kind == kind && s.action == StepAction::Delete)
            .collect();
        let level: Vec<EntityResult> = stream::iter(0..steps.len())
            .map(|i| {
                let (run, step) = (&run, steps[i]);
                async move {
                    if run.opts.cancel.is_cancelled() {
                        let reason = "not started: shutting down".to_string();
                        return run.result(step, Outcome::Skipped { reason }, &[]);
                    }
                    if failed > 0 {
                        let reason = format!(
                            "not deleted: {failed} entit{} failed above; prune waits for a clean run",
                            if failed == 1 { "y" } else { "ies" }
                        );
                        return run.result(step, Outcome::Skipped { reason }, &[]);
                    }
                    run.delete(step, observed).await
                }
            })
            .buffered(opts.parallelism.max(1))
            .collect()
            .await;
        results.extend(level);
    }
    Report {
        dry_run: opts.dry_run,
        results,
        notes: run.notes.into_inner().expect("notes lock"),
    }
}

impl<G: Gateway> Run<'_, G> {
    fn result(&self, step: &Step, outcome: Outcome, changes: &[FieldChange]) -> EntityResult {
        if let Outcome::Failed { error, .. } | Outcome::Skipped { reason: error } = &outcome
            && matches!(step.action, StepAction::Create | StepAction::Update(_))
        {
            self.failed
                .lock()
                .expect("failed lock")
                .insert(key_of(step.kind, &step.key), error.clone());
        }
        let result = EntityResult {
            kind: step.kind,
            name: step.key.clone(),
            renamed_to: (step.target != step.key).then(|| step.target.clone()),
            outcome,
            changes: changes.iter().map(short).collect(),
        };
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(p) = self.progress {
            p(&result, n, self.total);
        }
        result
    }

    async fn step(&self, step: &Step, observed: &Observed) -> EntityResult {
        let changes: &[FieldChange] = match &step.action {
            StepAction::Unchanged => return self.result(step, Outcome::Unchanged, &[]),
            StepAction::Skip(r) => {
                if !observed.exists(step.kind, &step.key) {
                    // Not on the gateway and not created: whatever links it cannot be applied.
                    self.failed
                        .lock()
                        .expect("failed lock")
                        .insert(key_of(step.kind, &step.key), r.clone());
                }
                return self.result(step, Outcome::Skipped { reason: r.clone() }, &[]);
            }
            _ if self.opts.cancel.is_cancelled() => {
                let reason = "not started: shutting down".to_string();
                return self.result(step, Outcome::Skipped { reason }, &[]);
            }
            StepAction::Create => &[],
            StepAction::Update(c) => c,
            StepAction::Delete => return self.delete(step, observed).await,
        };
        let Some(entity) = self.index.get(step.kind, &step.key) else {
            return self.result(step, Outcome::failed("not in the document"), changes);
        };
        let links = match entity {
            super::EntityRef::Server(s) => match self.links(s) {
                Ok(l) => l,
                Err(Blocked::Dependency(reason)) => {
                    return self.result(step, Outcome::Skipped { reason }, changes);
                }
                Err(Blocked::Missing(error)) => {
                    return self.result(step, Outcome::failed(error), changes);
                }
            },
            _ => Links::default(),
        };
        let creds = self.creds.get(&(step.kind, step.key.clone()));
        let outcome = match &step.action {
            StepAction::Create => self.create(step, entity, creds, &links).await,
            _ => {
                let live_id = observed.id(step.kind, &step.key).unwrap_or_default();
                self.update(step, entity, changes, creds, &links, live_id)
                    .await
            }
        };
        self.result(step, outcome, changes)
    }

    async fn delete(&self, step: &Step, observed: &Observed) -> EntityResult {
        let Some(id) = observed.id(step.kind, &step.key) else {
            return self.result(step, Outcome::failed("no longer on the gateway"), &[]);
        };
        if self.opts.dry_run {
            return self.result(step, Outcome::Deleted, &[]);
        }
        let outcome = match self.client.delete(step.kind, id, &step.key).await {
            Ok(_) => Outcome::Deleted,
            Err(e) => Outcome::refused(&e),
        };
        self.result(step, outcome, &[])
    }

    async fn create(
        &self,
        step: &Step,
        entity: super::EntityRef<'_>,
        creds: Option<&crate::core::secrets::Credentials>,
        links: &Links,
    ) -> Outcome {
        let body = match body::create(entity, &step.target, creds, &self.owner, links) {
            Ok(b) => b,
            Err(e) => return Outcome::failed(e.0),
        };
        if self.opts.dry_run {
            return Outcome::Created;
        }
        let id = match self.client.create(step.kind, &step.target, &body).await {
            Ok(id) => id,
            Err(e) => return Outcome::refused(&e),
        };
        self.ids
            .lock()
            .expect("ids lock")
            .insert(key_of(step.kind, &step.key), id.clone());
        if !entity.is_active()
            && let Err(e) = self.set_active(step, &id, false).await
        {
            return Outcome::refused_after(&e, "created, but deactivating failed: ");
        }
        Outcome::Created
    }

    async fn update(
        &self,
        step: &Step,
        entity: super::EntityRef<'_>,
        changes: &[FieldChange],
        creds: Option<&crate::core::secrets::Credentials>,
        links: &Links,
        live_id: &str,
    ) -> Outcome {
        let fields: Vec<String> = changes.iter().map(|c| c.field().to_string()).collect();
        let mut body = match body::update(entity, changes, creds, links) {
            Ok(b) => b,
            Err(e) => return Outcome::failed(e.0),
        };
        // Every write moves a resource's version on: keep its content marker in step.
        if let (super::EntityRef::Resource(r), Some(Value::Object(m))) = (entity, body.as_mut())
            && let Some(content) = &r.content
            && let Some(meta) = self
                .resources
                .get(&crate::core::document::validate::identity(
                    Kind::Resource,
                    &r.uri,
                ))
            && let Some(v) = meta.version
        {
            m.insert(
                "extension_metadata".into(),
                body::content_marker(content, v + 1, meta.extension_metadata.as_ref()),
            );
        }
        if self.opts.dry_run {
            return Outcome::Updated { fields };
        }
        if let Some(body) = body
            && let Err(e) = self
                .client
                .update(step.kind, live_id, &step.key, &body)
                .await
        {
            return Outcome::refused(&e);
        }
        if changes.iter().any(|c| c.field() == "is_active")
            && let Err(e) = self.set_active(step, live_id, entity.is_active()).await
        {
            return Outcome::refused(&e);
        }
        Outcome::Updated { fields }
    }

    async fn set_active(&self, step: &Step, id: &str, on: bool) -> Result<(), GatewayError> {
        self.client
            .set_active(step.kind, id, &step.target, on)
            .await
    }

    /// Resolve a server's links to ids; skip it when something it links failed.
    fn links(&self, s: &Server) -> Result<Links, Blocked> {
        let failed = self.failed.lock().expect("failed lock");
        let ids = self.ids.lock().expect("ids lock");
        let mut out = Links::default();
        for (kind, refs, into) in [
            (Kind::Tool, &s.tool_ids, &mut out.tools),
            (Kind::Resource, &s.resource_uris, &mut out.resources),
            (Kind::Prompt, &s.prompt_names, &mut out.prompts),
        ] {
            for r in refs {
                let key = key_of(kind, r);
                if let Some(why) = failed.get(&key) {
                    return Err(Blocked::Dependency(format!(
                        "links {kind} {r}, which was not applied ({why})"
                    )));
                }
                if kind == Kind::Tool
                    && let Some(((_, g), _)) = failed.iter().find(|((k, g), _)| {
                        *k == Kind::Gateway && key.1.starts_with(&format!("{g}-"))
                    })
                {
                    return Err(Blocked::Dependency(format!(
                        "links tool {r} of gateway {g}, which was not applied"
                    )));
                }
                match ids.get(&key) {
                    Some(id) => into.push(id.clone()),
                    None if is_id_ref(r) && ids.values().any(|v| v == r) => into.push(r.clone()),
                    None if is_id_ref(r) => {
                        self.notes.lock().expect("notes lock").push(format!(
                            "server {}: {kind} id {r} is an id of the source gateway that this document does not name; link dropped",
                            s.name
                        ));
                    }
                    None if self.opts.dry_run => {}
                    None => {
                        return Err(Blocked::Missing(format!(
                            "links {kind} {r}, which does not exist on the gateway"
                        )));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Wait (bounded) until peer gateways have discovered the tools servers link to.
    async fn await_discovery(&self, steps: &[&Step], desired: &Document) {
        let wanted: Vec<(Kind, String)> = steps
            .iter()
            .filter(|s| matches!(s.action, StepAction::Create | StepAction::Update(_)))
            .filter_map(|s| desired.entities.servers.iter().find(|x| x.name == s.key))
            .flat_map(|s| s.tool_ids.iter())
            .filter(|r| !is_id_ref(r))
            .map(|r| key_of(Kind::Tool, r))
            .collect();
        let gateways: Vec<String> = desired
            .entities
            .gateways
            .iter()
            .map(|g| format!("{}-", slugify(&g.name)))
            .collect();
        let deadline = Instant::now() + self.opts.discovery_timeout;
        let mut wait = Duration::from_millis(250);
        loop {
            let missing = {
                let ids = self.ids.lock().expect("ids lock");
                wanted
                    .iter()
                    .filter(|k| !ids.contains_key(*k))
                    .any(|(_, n)| gateways.iter().any(|g| n.starts_with(g.as_str())))
            };
            if !missing || Instant::now() >= deadline || self.opts.cancel.is_cancelled() {
                return;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
            if let Ok(live) = self.client.live(&[Kind::Tool]).await {
                let mut ids = self.ids.lock().expect("ids lock");
                for t in live.tools {
                    ids.entry(key_of(Kind::Tool, &t.name)).or_insert(t.id);
                }
            }
        }
    }
}

enum Blocked {
    /// Something it links was not applied: skipped.
    Dependency(String),
    /// Something it links does not exist: failed.
    Missing(String),
}

/// A change for display, long values cut.
pub fn short(c: &FieldChange) -> String {
    let s = c.to_string();
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}

//! The one engine that makes a gateway hold a document: observe the target, diff with
//! `core::diff::diff`, resolve conflicts by strategy, then execute in dependency levels with bounded
//! concurrency and per-entity results. `import`, `apply`, `restore` and the daemon all call
//! it; none has its own diff.

mod observe;
pub mod prune;
mod ready;
mod run;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::core::diff::{self, CredentialMap, FieldChange, Op};
use crate::core::document::Document;
use crate::core::document::validate::{identity, slugify};
use crate::core::kind::Kind;

pub use crate::core::document::entity::{EntityRef, Index};
pub use crate::core::policy::Strategy;
pub use crate::core::verb::{Counts, Verb};
pub use crate::gateway::body::Owner;
pub use observe::{Observed, live_ids, observe};
pub use prune::{MassDelete, PrunePolicy};
pub use ready::{Keys, Ready, ReadyError, owner, ready, ready_offline};
pub use run::{Progress, execute, personal_team, short};

/// How to execute.
#[derive(Clone, Debug)]
pub struct Options {
    pub strategy: Strategy,
    /// Plan and report, write nothing.
    pub dry_run: bool,
    /// Concurrent writes within one dependency level.
    pub parallelism: usize,
    /// How long servers wait for tools a peer gateway is still discovering.
    pub discovery_timeout: Duration,
    /// Unix seconds, for `rename`.
    pub now_unix: u64,
    /// Set to stop starting writes; those in flight finish.
    pub cancel: Cancel,
    /// Resource content read before (observation reads only what changed since).
    pub content_cache: Option<std::sync::Arc<crate::engine::content_cache::ContentCache>>,
}

/// A stop flag shared with a signal handler: once set, no further write starts.
#[derive(Clone, Debug, Default)]
pub struct Cancel(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            strategy: Strategy::Update,
            dry_run: false,
            parallelism: 4,
            discovery_timeout: Duration::from_secs(30),
            now_unix: 0,
            cancel: Cancel::default(),
            content_cache: None,
        }
    }
}

/// What happened (or, in a dry run, would happen) to one entity.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Updated {
        fields: Vec<String>,
    },
    Unchanged,
    Deleted,
    Skipped {
        reason: String,
    },
    Failed {
        /// The gateway's status and message (or why no request was made).
        error: String,
        /// The HTTP status the gateway answered with, when it answered.
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// The one classification (`core::error`): retried, refused, ...
        class: crate::core::error::ErrorClass,
    },
}

/// One entity's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EntityResult {
    pub kind: Kind,
    /// Name, or URI for resources and roots, as the document gives it.
    pub name: String,
    /// The name it was created under, when renamed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_to: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Field-level changes (values of credentials never shown).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
}

/// The result of a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub results: Vec<EntityResult>,
    /// What the document lacked or what was dropped, said once each.
    pub notes: Vec<String>,
}

impl Report {
    /// The report as one JSON object (`-o json`, the API): per-kind counts, every entity's
    /// result, notes. `not_selected`: entities a selection left out.
    pub fn to_json(&self, not_selected: usize) -> serde_json::Value {
        use serde_json::json;
        let per_kind = |b: Verb| -> serde_json::Value {
            Kind::DISPLAY
                .iter()
                .map(|k| (k.plural().to_string(), json!(self.count(Some(*k), b))))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        json!({
            "ok": self.failed() == 0,
            "dry_run": self.dry_run,
            "summary": {
                "created": per_kind(Verb::Create),
                "updated": per_kind(Verb::Update),
                "unchanged": self.count(None, Verb::Unchanged),
                "deleted": per_kind(Verb::Delete),
                "skipped": self.count(None, Verb::Skip),
                "failed": self.failed(),
                "not_selected": not_selected,
            },
            "results": self.results,
            "notes": self.notes,
        })
    }
}

impl Outcome {
    /// A failure found before any request (not in the document, a missing link, a body that
    /// cannot be built).
    pub fn failed(error: impl Into<String>) -> Outcome {
        Outcome::Failed {
            error: error.into(),
            status: None,
            class: crate::core::error::ErrorClass::Failed,
        }
    }

    /// A request the gateway refused (its status and message) or that did not reach it.
    pub fn refused(e: &crate::gateway::GatewayError) -> Outcome {
        Self::refused_after(e, "")
    }

    /// [`Outcome::refused`], said after what had been done already.
    pub fn refused_after(e: &crate::gateway::GatewayError, done: &str) -> Outcome {
        use crate::core::error::Classify;
        let error = match (e.status(), e.gateway_message()) {
            (Some(s), Some(m)) => format!("{done}{s} {m}"),
            _ => format!("{done}{e}"),
        };
        Outcome::Failed {
            error,
            status: e.status(),
            class: e.class(),
        }
    }

    /// What was done, in the one vocabulary (`core::verb`).
    pub fn verb(&self) -> Verb {
        match self {
            Outcome::Created => Verb::Create,
            Outcome::Updated { .. } => Verb::Update,
            Outcome::Unchanged => Verb::Unchanged,
            Outcome::Deleted => Verb::Delete,
            Outcome::Skipped { .. } => Verb::Skip,
            Outcome::Failed { .. } => Verb::Fail,
        }
    }
}

impl Report {
    pub fn count(&self, kind: Option<Kind>, verb: Verb) -> usize {
        self.results
            .iter()
            .filter(|r| kind.is_none_or(|k| r.kind == k) && r.outcome.verb() == verb)
            .count()
    }

    pub fn failed(&self) -> usize {
        self.count(None, Verb::Fail)
    }

    /// Field names updated per kind, for "update 3 tools (url, tags)".
    pub fn updated_fields(&self, kind: Kind) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.results.iter().filter(|r| r.kind == kind) {
            if let Outcome::Updated { fields } = &r.outcome {
                for f in fields {
                    if !out.contains(f) {
                        out.push(f.clone());
                    }
                }
            }
        }
        out
    }
}

/// A planned step for one entity.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub kind: Kind,
    /// The key as the document gives it.
    pub key: String,
    /// The key to create under (differs when renamed).
    pub target: String,
    pub action: StepAction,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StepAction {
    Create,
    Update(Vec<FieldChange>),
    Unchanged,
    Skip(String),
    /// Prune: owned, no longer declared.
    Delete,
}

impl StepAction {
    /// What the step will do, in the one vocabulary (`core::verb`).
    pub fn verb(&self) -> Verb {
        match self {
            StepAction::Create => Verb::Create,
            StepAction::Update(_) => Verb::Update,
            StepAction::Unchanged => Verb::Unchanged,
            StepAction::Skip(_) => Verb::Skip,
            StepAction::Delete => Verb::Delete,
        }
    }
}

/// An entity that exists and differs, under `--conflict-strategy fail`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub kind: Kind,
    pub name: String,
    pub fields: Vec<String>,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({})",
            self.kind,
            self.name,
            self.fields.join(", ")
        )
    }
}

/// The steps of a run, before execution.
#[derive(Clone, Debug, Default)]
pub struct Prepared {
    pub steps: Vec<Step>,
    pub conflicts: Vec<Conflict>,
    pub notes: Vec<String>,
}

fn fields(changes: &[FieldChange]) -> Vec<String> {
    changes.iter().map(|c| c.field().to_string()).collect()
}

/// The name a renamed copy gets, in the form the gateway stores.
pub fn renamed(kind: Kind, key: &str, now_unix: u64) -> String {
    let raw = format!("{key}_imported_{now_unix}");
    if kind.stores_slug() {
        slugify(&raw)
    } else {
        raw
    }
}

/// Diff `desired` against what was observed and decide every entity's step. Pure.
pub fn prepare(
    desired: &Document,
    desired_credentials: &CredentialMap,
    observed: &Observed,
    opts: &Options,
) -> Prepared {
    let plan = diff::diff(
        &diff::Desired {
            document: desired,
            credentials: desired_credentials,
        },
        &diff::Live {
            document: &observed.document,
            credentials: &observed.credentials,
        },
    );
    let index = Index::new(desired);
    let mut out = Prepared::default();
    for (kind, name) in &observed.unreadable {
        out.notes.push(format!(
            "the stored credential of {kind} {name} does not decrypt with the gateway secret; it is rewritten"
        ));
    }
    for change in plan.changes {
        let (kind, key) = (change.kind, change.key);
        let entity = index.get(kind, &key);
        let action = match change.op {
            Op::Unchanged => StepAction::Unchanged,
            Op::Create => match entity.and_then(lacking) {
                Some(reason) => StepAction::Skip(reason),
                None => StepAction::Create,
            },
            Op::Update { changes } => match opts.strategy {
                Strategy::Update => StepAction::Update(changes),
                Strategy::Skip => StepAction::Skip(format!(
                    "exists and differs ({}); --conflict-strategy skip",
                    fields(&changes).join(", ")
                )),
                Strategy::Fail => {
                    out.conflicts.push(Conflict {
                        kind,
                        name: key.clone(),
                        fields: fields(&changes),
                    });
                    StepAction::Skip("conflict".into())
                }
                Strategy::Rename if kind == Kind::Root => StepAction::Skip(
                    "exists and differs; a root is its URI and cannot be renamed".into(),
                ),
                Strategy::Rename => {
                    let target = renamed(kind, &key, opts.now_unix);
                    out.steps.push(Step {
                        kind,
                        key,
                        target,
                        action: StepAction::Create,
                    });
                    continue;
                }
            },
        };
        if action == StepAction::Create
            && let Some(e) = entity
            && let Some(note) = credential_note(e)
        {
            out.notes.push(note);
        }
        out.steps.push(Step {
            kind,
            target: key.clone(),
            key,
            action,
        });
    }
    out
}

/// Why an absent entity cannot be created from what the document holds.
fn lacking(e: EntityRef<'_>) -> Option<String> {
    match e {
        EntityRef::Resource(r) if r.content.is_none() => Some(
            "the document holds no content for it (ContextForge's own export leaves content out); not created"
                .into(),
        ),
        EntityRef::Prompt(p) if p.template.trim().is_empty() => Some(
            "the document holds an empty template (ContextForge's export writes federated prompts this way); not created"
                .into(),
        ),
        _ => None,
    }
}

/// A credential the document names but does not carry.
fn credential_note(e: EntityRef<'_>) -> Option<String> {
    let (name, auth_type, value) = match e {
        EntityRef::Tool(t) => (&t.name, &t.auth_type, &t.auth_value),
        EntityRef::Gateway(g) => (&g.name, &g.auth_type, &g.auth_value),
        _ => return None,
    };
    match (auth_type, value) {
        (Some(t), None) => Some(format!(
            "{} {name}: the document names auth_type {t} but carries no credential (ContextForge's full export drops them); created without credentials",
            e.kind()
        )),
        _ => None,
    }
}

/// Decrypt the document's credentials, by (kind, key).
pub fn desired_credentials(
    doc: &Document,
    secret: Option<&crate::core::secrets::Secret>,
) -> Result<CredentialMap, crate::core::secrets::CryptoError> {
    let mut out = CredentialMap::new();
    let values = doc
        .entities
        .tools
        .iter()
        .map(|t| (Kind::Tool, &t.name, &t.auth_value))
        .chain(
            doc.entities
                .gateways
                .iter()
                .map(|g| (Kind::Gateway, &g.name, &g.auth_value)),
        );
    for (kind, name, value) in values {
        if let (Some(v), Some(s)) = (value, secret) {
            out.insert((kind, name.clone()), s.decrypt(v)?);
        }
    }
    Ok(out)
}

/// Links a document entity keeps by (kind, identity), resolved to ids as entities get created.
pub(crate) type Ids = HashMap<(Kind, String), String>;

pub(crate) fn key_of(kind: Kind, key: &str) -> (Kind, String) {
    (kind, identity(kind, key))
}

#[cfg(test)]
mod fake_tests;
#[cfg(test)]
mod tests;

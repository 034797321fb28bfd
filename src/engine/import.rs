//! Import of a document into a gateway: the one path `mcp-gitops import`, `restore` and the
//! HTTP API's import jobs share. [`stage`] does everything before the first write (federated
//! entities set aside, the selection closed over dependencies, the document validated in full,
//! the gateway observed, the steps prepared); [`run`] writes; [`preview`] says what a run would
//! do without writing.

use serde::Serialize;

use crate::core::diff::Desired;
use crate::core::document::federated::{self, SetAside};
use crate::core::document::{Document, validate::identity};
use crate::core::kind::Kind;
use crate::core::select::{self, IncludeSpec, Selection};
use crate::engine::apply::{
    self, EntityResult, Keys, Options, Outcome, Progress, Ready, ReadyError, Report, StepAction,
    Strategy,
};
use crate::gateway::{Gateway, GatewayError};

/// What to import, and how.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// The document as given.
    pub whole: &'a Document,
    /// Its name in messages (a file, `<stdin>`, `request body`).
    pub file: &'a str,
    pub keys: Keys,
    /// Only these entities and what they depend on.
    pub include: Option<IncludeSpec>,
    pub opts: Options,
}

/// An import that may start writing: nothing has been written yet.
pub struct Staged {
    /// What of the document is applied.
    pub desired: Document,
    /// Entities peer gateways federate, reported as skipped.
    pub aside: Vec<SetAside>,
    /// Entities the selection left out.
    pub not_selected: usize,
    pub ready: Ready,
    pub opts: Options,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("include matched nothing in {file}")]
    NothingMatched { file: String },
    #[error(transparent)]
    Ready(#[from] ReadyError),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
}

impl crate::core::error::Classify for ImportError {
    fn class(&self) -> crate::core::error::ErrorClass {
        match self {
            ImportError::NothingMatched { .. } => crate::core::error::ErrorClass::Invalid,
            ImportError::Ready(e) => e.class(),
            ImportError::Gateway(e) => e.class(),
        }
    }
}

/// The selection an import applies: federated entities set aside, then `include` closed over
/// dependencies. Pure.
pub fn selection(
    whole: &Document,
    include: Option<&IncludeSpec>,
) -> (Document, Vec<SetAside>, usize) {
    let aside = federated::detect(whole);
    let kept = federated::without(whole, &aside);
    let selected = select::select(
        &kept,
        &Selection {
            include: include.cloned(),
            include_inactive: true,
            dependencies: true,
            ..Selection::default()
        },
    );
    (selected.document, aside, selected.skipped)
}

/// Everything before the first write. Reads only.
pub async fn stage<G: Gateway>(client: &G, req: Request<'_>) -> Result<Staged, ImportError> {
    let (desired, aside, not_selected) = selection(req.whole, req.include.as_ref());
    if req.include.is_some() && desired.entities.total() == 0 {
        return Err(ImportError::NothingMatched {
            file: req.file.to_string(),
        });
    }
    let ready = apply::ready(client, req.whole, &desired, req.file, &req.keys, &req.opts).await?;
    Ok(Staged {
        desired,
        aside,
        not_selected,
        ready,
        opts: req.opts,
    })
}

/// Write what was staged; `progress` hears of every entity as it is done. The report lists the
/// set-aside entities first, as skipped.
pub async fn run<G: Gateway>(
    client: &G,
    staged: &Staged,
    progress: Option<Progress<'_>>,
) -> Result<Report, ImportError> {
    let Ready {
        observed,
        credentials,
        prepared,
    } = &staged.ready;
    let owner = apply::owner(client, prepared, &staged.opts).await?;
    let mut report = apply::execute(
        client,
        &Desired {
            document: &staged.desired,
            credentials,
        },
        observed,
        prepared,
        &staged.opts,
        owner,
        progress,
    )
    .await;
    report
        .results
        .splice(0..0, staged.aside.iter().map(set_aside_result));
    Ok(report)
}

fn set_aside_result(s: &SetAside) -> EntityResult {
    EntityResult {
        kind: s.kind,
        name: s.key.clone(),
        renamed_to: None,
        outcome: Outcome::Skipped {
            reason: s.reason.clone(),
        },
        changes: Vec::new(),
    }
}

/// How many entities a run of `staged` reports on (the set-aside ones included).
pub fn total(staged: &Staged) -> usize {
    staged.aside.len() + staged.ready.prepared.steps.len()
}

/// What an import would do to one entity.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PreviewItem {
    pub kind: Kind,
    /// Name, or URI for resources and roots.
    pub name: String,
    /// `create`, `update`, `unchanged`, `skip` (the one vocabulary, `core::verb`).
    pub action: crate::core::verb::Verb,
    /// It exists on the gateway and differs: what the conflict strategy decides.
    pub conflict: bool,
    /// Fields that differ (credential values never shown).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// The name it would be created under (`rename`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Not selected itself, but something selected needs it.
    pub dependency: bool,
}

/// What an import would do, without a write.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Preview {
    pub items: Vec<PreviewItem>,
    /// Counts by kind (plural) and action.
    pub summary: serde_json::Map<String, serde_json::Value>,
    /// Entities that exist and differ.
    pub conflicts: usize,
    /// Dependencies that will be created.
    pub dependencies: Vec<PreviewItem>,
    pub notes: Vec<String>,
}

/// The preview of a staged import: per entity what the strategy decides, conflicts marked,
/// the dependencies it creates. Under `fail` and `skip`, stage with [`preview_options`] (conflicts are
/// then shown, not refused). Pure.
pub fn preview(staged: &Staged, strategy: Strategy, include: Option<&IncludeSpec>) -> Preview {
    let mut out = Preview {
        notes: staged.ready.prepared.notes.clone(),
        ..Preview::default()
    };
    for s in &staged.aside {
        out.items.push(PreviewItem {
            kind: s.kind,
            name: s.key.clone(),
            action: crate::core::verb::Verb::Skip,
            conflict: false,
            fields: Vec::new(),
            renamed_to: None,
            reason: Some(s.reason.clone()),
            dependency: false,
        });
    }
    for step in &staged.ready.prepared.steps {
        let dependency = include.is_some_and(|inc| !inc.matches(step.kind, &step.key));
        let (mut action, mut fields, mut reason) = (step.action.verb(), Vec::new(), None);
        let mut conflict = false;
        match &step.action {
            StepAction::Update(changes) => {
                conflict = true;
                fields = changes.iter().map(apply::short).collect();
            }
            StepAction::Skip(r) => reason = Some(r.clone()),
            _ => {}
        }
        let renamed_to = (step.target != step.key).then(|| step.target.clone());
        if renamed_to.is_some() {
            conflict = true;
        }
        if strategy == Strategy::Skip && matches!(step.action, StepAction::Update(_)) {
            action = crate::core::verb::Verb::Skip;
            reason = Some(format!(
                "exists and differs ({}); conflict strategy skip",
                fields.join(", ")
            ));
        }
        if strategy == Strategy::Fail && conflict {
            action = crate::core::verb::Verb::Fail;
            reason = Some("conflict under conflict strategy fail: the import is refused".into());
            fields = std::mem::take(&mut fields);
        }
        let item = PreviewItem {
            kind: step.kind,
            name: step.key.clone(),
            action,
            conflict,
            fields,
            renamed_to,
            reason,
            dependency,
        };
        out.conflicts += usize::from(conflict);
        if dependency && item.action == crate::core::verb::Verb::Create {
            out.dependencies.push(item.clone());
        }
        out.items.push(item);
    }
    for i in &out.items {
        let by_kind = out
            .summary
            .entry(i.kind.plural())
            .or_insert_with(|| serde_json::json!({}));
        let verb = serde_json::to_value(i.action).expect("verb serialises");
        let key = verb.as_str().unwrap_or_default().to_string();
        let n = by_kind[&key].as_u64().unwrap_or(0) + 1;
        by_kind[key] = n.into();
    }
    out
}

/// The options a preview stages with: `fail` and `skip` are staged as `update`, so that every
/// conflict is listed (with its fields) instead of refusing the preview or hiding it as a skip.
pub fn preview_options(mut opts: Options) -> Options {
    if matches!(opts.strategy, Strategy::Fail | Strategy::Skip) {
        opts.strategy = Strategy::Update;
    }
    opts.dry_run = true;
    opts
}

/// Whether `kind`/`key` of the staged import is among what is applied.
pub fn selected(staged: &Staged, kind: Kind, key: &str) -> bool {
    let id = identity(kind, key);
    staged
        .desired
        .entities
        .keys(kind)
        .into_iter()
        .any(|k| identity(kind, k) == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::document::test_doc;
    use crate::gateway::fake::FakeGateway;

    fn doc() -> Document {
        test_doc(
            r#"{"tools": [{"name": "a", "url": "http://x.example/a", "integration_type": "REST", "request_type": "GET"},
                         {"name": "b", "url": "http://x.example/b", "integration_type": "REST", "request_type": "GET"}],
               "servers": [{"name": "s", "tool_ids": ["a"]}]}"#,
        )
    }

    #[tokio::test]
    async fn preview_marks_conflicts_and_dependencies_and_writes_nothing() {
        let gw = FakeGateway::new();
        let whole = doc();
        // First import everything, then change a tool in the document.
        let req = Request {
            whole: &whole,
            file: "doc",
            keys: Keys::default(),
            include: None,
            opts: Options::default(),
        };
        let staged = stage(&gw, req).await.expect("stage");
        let report = run(&gw, &staged, None).await.expect("run");
        assert_eq!(report.failed(), 0, "{report:?}");

        let mut changed = doc();
        changed.entities.tools[0].url = "http://x.example/changed".into();
        changed.entities.tools.push(
            serde_json::from_value(serde_json::json!({"name": "c", "url": "http://x.example/c",
                "integration_type": "REST", "request_type": "GET"}))
            .expect("tool"),
        );
        changed.entities.servers[0].tool_ids.push("c".into());
        let writes = gw.writes();
        let include = IncludeSpec::parse("servers:s").expect("spec");
        let staged = stage(
            &gw,
            Request {
                whole: &changed,
                file: "doc",
                keys: Keys::default(),
                include: Some(include.clone()),
                opts: preview_options(Options {
                    strategy: Strategy::Fail,
                    ..Options::default()
                }),
            },
        )
        .await
        .expect("stage");
        let p = preview(&staged, Strategy::Fail, Some(&include));
        assert_eq!(gw.writes(), writes, "a preview writes nothing");
        let a = p.items.iter().find(|i| i.name == "a").expect("a");
        assert!(a.conflict && a.dependency, "{a:?}");
        assert_eq!(a.action, crate::core::verb::Verb::Fail);
        assert!(a.fields.iter().any(|f| f.contains("url")), "{a:?}");
        let names: Vec<&str> = p.dependencies.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["c"], "only the new tool is a dependency to create");
        assert!(p.items.iter().all(|i| i.name != "b"), "b is not selected");
        assert_eq!(
            p.conflicts, 2,
            "a differs, and s links one more tool: {p:?}"
        );
        assert_eq!(p.summary["tools"]["create"], 1);

        // Under skip the same conflict is shown as a conflict that is skipped, with its fields.
        let staged = stage(
            &gw,
            Request {
                whole: &changed,
                file: "doc",
                keys: Keys::default(),
                include: None,
                opts: preview_options(Options {
                    strategy: Strategy::Skip,
                    ..Options::default()
                }),
            },
        )
        .await
        .expect("stage");
        let p = preview(&staged, Strategy::Skip, None);
        let a = p.items.iter().find(|i| i.name == "a").expect("a");
        assert!(a.conflict, "{a:?}");
        assert_eq!(a.action, crate::core::verb::Verb::Skip);
        assert!(a.fields.iter().any(|f| f.contains("url")), "{a:?}");
        assert!(a.reason.as_deref().unwrap_or("").contains("skip"), "{a:?}");
        assert_eq!(p.summary["tools"]["skip"], 1, "{p:?}");
        assert_eq!(gw.writes(), writes, "a preview writes nothing");
    }
}

//! One `GatewayConfig` reconcile: finalizer as `deletionPolicy` asks, sources read into the
//! engine's layers, plan, ownership check, apply (or report drift in `observe`), status written
//! only when it changed, an Event only when `Ready` flips.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret as K8sSecret};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};

use super::metrics::Cycle;
use super::{Ctx, Error, REQUESTED_AT, jitter, k8s_io};
use crate::core::document::{Document, credential};
use crate::core::kind::Kind;
use crate::engine::apply::{Outcome, prune};
use crate::engine::environment::{Config, Environment, Mode, Prune, Strategy};
use crate::engine::layers::{self, Layer};
use crate::engine::reconcile::{Settings, Target};
use crate::gateway::Priority;
use crate::k8s::crd::*;
use crate::k8s::status::{self, DRIFTED, READY, RECONCILING, STALLED, Want};

/// The finalizer a `deletionPolicy: Delete` config carries.
pub const FINALIZER: &str = "gitops.mcp-gitops.dev/delete-owned";
/// The ownership markers of this controller's configs start so.
pub const FAMILY: &str = "mcp-gitops:k8s.";
const MAX_FAILURES: usize = 20;
const MAX_HISTORY: usize = 5;

/// `k8s.<namespace>.<name>`: what this config's entities are tagged with.
pub fn owner(cfg: &GatewayConfig) -> String {
    format!(
        "k8s.{}.{}",
        cfg.namespace().unwrap_or_default(),
        cfg.name_any()
    )
}

/// What a successful sync found and did.
#[derive(Debug, Default)]
pub struct Synced {
    pub revision: String,
    pub plan: PlanSummary,
    pub applied: bool,
    pub drift: bool,
    pub inventory: Inventory,
    /// The inventory ConfigMap's text, when the list is too long for the status.
    pub inventory_text: Option<String>,
    pub failures: Vec<EntityFailure>,
    pub failures_total: usize,
}

pub async fn reconcile(cfg: Arc<GatewayConfig>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = cfg.namespace().unwrap_or_default();
    let api: Api<GatewayConfig> = Api::namespaced(ctx.client.clone(), &ns);
    let has = cfg.finalizers().iter().any(|f| f == FINALIZER);
    if cfg.meta().deletion_timestamp.is_some() {
        return if has {
            super::cleanup::run(&cfg, &ctx, &api).await
        } else {
            Ok(Action::await_change())
        };
    }
    let wants = cfg.spec.deletion_policy == DeletionPolicy::Delete;
    if wants != has {
        super::set_finalizer(&api, &*cfg, FINALIZER, wants).await?;
    }
    let started = std::time::Instant::now();
    let result = if cfg.spec.suspend {
        Err(Error::Suspended)
    } else {
        sync(&cfg, &ctx).await
    };
    ctx.metrics.reconciled("GatewayConfig", &result);
    let cycle = match &result {
        Ok(x) => Cycle::Planned {
            changes: (x.plan.creates + x.plan.updates + x.plan.deletes) as usize,
            applied: x.applied && x.failures_total == 0,
        },
        Err(Error::Suspended) => Cycle::Suspended,
        Err(e) => Cycle::Failed(e),
    };
    ctx.metrics.cycle(
        &format!("{ns}/{}", cfg.name_any()),
        cycle,
        started.elapsed(),
    );
    let old = cfg.status.clone().unwrap_or_default();
    let now = crate::core::clock::now_rfc3339();
    let (mut new, wants) = next_status(&old, &result, &now);
    let generation = cfg.metadata.generation;
    let (conditions, flips) = status::settle(&old.conditions, &wants, &now, generation);
    new.conditions = conditions;
    new.observed_generation = generation;
    new.last_handled_requested_at = cfg.annotations().get(REQUESTED_AT).cloned();
    let interval = super::parse_interval(&cfg.spec.interval);
    let requeue = match &result {
        Err(Error::Suspended) => None,
        Err(e) if !e.stalled() => Some(interval.min(Duration::from_secs(30))),
        _ => Some(interval),
    };
    if let (Ok(x), Some(inv)) = (&result, &new.inventory) {
        super::inventory::sync(
            &ctx.client,
            &cfg,
            old.inventory.as_ref(),
            inv,
            x.inventory_text.as_deref(),
        )
        .await?;
    }
    super::publish(&api, &*cfg, &ctx, &old, &new, &flips).await?;
    Ok(match requeue {
        Some(d) => Action::requeue(jitter(d)),
        None => Action::await_change(),
    })
}

/// The status after `result` (conditions not yet settled: see `write_status`).
pub fn next_status(
    old: &GatewayConfigStatus,
    result: &Result<Synced, Error>,
    now: &str,
) -> (GatewayConfigStatus, Vec<Want>) {
    let mut s = old.clone();
    let wants = match result {
        Ok(x) => {
            let reason = match (x.applied, x.drift, x.failures_total) {
                (_, _, n) if n > 0 => "ApplyFailed",
                (true, _, _) => "Applied",
                (false, true, _) => "DriftDetected",
                (false, false, _) => "UpToDate",
            };
            let c = &x.plan;
            let msg = format!(
                "{} create, {} update, {} delete, {} unchanged",
                c.creates, c.updates, c.deletes, c.unchanged
            );
            s.last_attempted_revision = Some(x.revision.clone());
            if x.failures_total == 0 {
                s.last_applied_revision = Some(x.revision.clone());
            }
            s.last_plan = Some(x.plan.clone());
            s.inventory = Some(x.inventory.clone());
            s.failures = x.failures.clone();
            s.failures_total = (x.failures_total > 0).then_some(x.failures_total as u32);
            if x.applied || x.failures_total > 0 {
                push_history(&mut s, now, &x.revision, reason, &msg);
            }
            let mut w = if x.failures_total > 0 {
                status::outcome(Err((
                    reason,
                    format!("{} entities failed", x.failures_total),
                    false,
                )))
            } else {
                status::outcome(Ok((reason, msg.clone())))
            };
            w.push(Want::new(
                DRIFTED,
                x.drift && !x.applied,
                if x.drift && !x.applied {
                    "DriftDetected"
                } else {
                    "InSync"
                },
                if x.drift && !x.applied {
                    msg
                } else {
                    String::new()
                },
            ));
            w
        }
        Err(Error::Suspended) => vec![
            Want::new(READY, false, "Suspended", "spec.suspend is true"),
            Want::new(RECONCILING, false, "Suspended", ""),
            Want::new(STALLED, false, "Suspended", ""),
        ],
        Err(e) => {
            let reason = e.reason();
            if e.stalled() {
                push_history(
                    &mut s,
                    now,
                    e.revision().unwrap_or("-"),
                    reason,
                    &e.to_string(),
                );
            }
            s.last_attempted_revision = e
                .revision()
                .map(str::to_string)
                .or(s.last_attempted_revision);
            status::outcome(Err((reason, e.to_string(), e.stalled())))
        }
    };
    (s, wants)
}

/// Newest first; a repeat of the newest entry's result and revision is not added again.
fn push_history(
    s: &mut GatewayConfigStatus,
    now: &str,
    revision: &str,
    result: &str,
    summary: &str,
) {
    if let Some(h) = s.history.first()
        && h.result == result
        && h.revision == revision
        && result != "Applied"
    {
        return;
    }
    s.history.insert(
        0,
        HistoryEntry {
            time: now.to_string(),
            revision: revision.to_string(),
            result: result.to_string(),
            summary: crate::core::quote::clean(summary, false)
                .chars()
                .take(300)
                .collect(),
        },
    );
    s.history.truncate(MAX_HISTORY);
}

/// The engine's environment settings from the spec (no connection: that comes from the
/// gateway resource).
pub fn env_config(cfg: &GatewayConfig) -> Config {
    let s = &cfg.spec;
    Config {
        mode: match s.mode {
            SyncMode::Apply => Mode::Auto,
            SyncMode::Observe => Mode::Observe,
        },
        conflict_strategy: Some(match s.conflict_strategy {
            ConflictStrategy::Update => Strategy::Update,
            ConflictStrategy::Skip => Strategy::Skip,
            ConflictStrategy::Fail => Strategy::Fail,
        }),
        prune: Prune {
            enabled: s.prune.enabled,
            owner: Some(owner(cfg)),
            max_delete_percent: s.prune.max_delete_percent,
        },
        ..Config::default()
    }
}

/// A config's sources read: the engine's layers, in order, and the commits Git sources were
/// read at.
#[derive(Clone, Debug, Default)]
pub struct SourceLayers {
    pub layers: Vec<Layer>,
    /// `branch@<commit12>` of each Git source, in order.
    pub commits: Vec<String>,
    /// Which layers came from Git (named by their commit in the revision, not digested).
    pub from_git: Vec<bool>,
}

impl SourceLayers {
    fn push(&mut self, layer: Layer, git: bool) {
        self.layers.push(layer);
        self.from_git.push(git);
    }

    /// The status revision: the digest of the sources' content ([`revision`]) when no source
    /// is Git; `main@3f2a9c1d0b7e` for one Git source alone; Git sources' commits joined by
    /// `+`, then `+sha256:…` of the other sources' content, when there are several.
    pub fn revision(&self) -> String {
        let others: Vec<Layer> = self
            .layers
            .iter()
            .zip(&self.from_git)
            .filter(|(_, git)| !**git)
            .map(|(l, _)| l.clone())
            .collect();
        match (self.commits.is_empty(), others.is_empty()) {
            (true, _) => revision(&others),
            (false, true) => self.commits.join("+"),
            (false, false) => format!("{}+{}", self.commits.join("+"), revision(&others)),
        }
    }
}

/// The config's sources as the engine's layers, in order (Git sources fetched into the clone
/// cache of config `ns/name`).
pub async fn read_sources(
    ctx: &Ctx,
    ns: &str,
    name: &str,
    sources: &[Source],
) -> Result<SourceLayers, Error> {
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    let mut out = SourceLayers::default();
    for (i, s) in sources.iter().enumerate() {
        if let Some(c) = &s.config_map {
            let cm = cms.get_opt(&c.name).await?.ok_or_else(|| Error::NotFound {
                kind: "ConfigMap",
                name: c.name.clone(),
            })?;
            let data = cm.data.unwrap_or_default();
            let files: Vec<(String, String)> = if c.keys.is_empty() {
                data.into_iter()
                    .filter(|(k, _)| {
                        k.ends_with(".json") || k.ends_with(".yaml") || k.ends_with(".yml")
                    })
                    .collect()
            } else {
                c.keys
                    .iter()
                    .map(|k| {
                        data.get(k).map(|v| (k.clone(), v.clone())).ok_or_else(|| {
                            Error::Invalid(format!("ConfigMap {}: no key {k}", c.name))
                        })
                    })
                    .collect::<Result<_, _>>()?
            };
            let layer = Layer {
                label: format!("configmap-{}", c.name),
                files,
                shown: None,
            };
            out.push(layer, false);
        } else if let Some(d) = &s.inline {
            let ext = if d.document.trim_start().starts_with('{') {
                "json"
            } else {
                "yaml"
            };
            let layer = Layer {
                label: format!("inline-{}", d.name),
                files: vec![(format!("{}.{ext}", d.name), d.document.clone())],
                shown: None,
            };
            out.push(layer, false);
        } else if let Some(g) = &s.git {
            let got = super::git::fetch(ctx, ns, name, i, g).await?;
            out.commits
                .push(format!("{}@{}", g.branch, got.commit.short()));
            for layer in got.layers {
                out.push(layer, true);
            }
        }
    }
    Ok(out)
}

/// `sha256:` and 16 hex digits over every layer's label, file names and texts.
pub fn revision(layers: &[Layer]) -> String {
    super::short_digest(
        layers
            .iter()
            .flat_map(|l| std::iter::once(&l.label).chain(l.files.iter().flat_map(|(n, t)| [n, t])))
            .map(String::as_str),
    )
}

/// Whether this reconcile is a routine drift check: the spec, the sources' content (or commit)
/// and the request annotation are what the last successful reconcile handled. Its gateway
/// requests then go at [`Priority::Background`], leaving part of the gateway's budget to the
/// configs with something new to apply. (A rotated credential Secret changes none of these: it
/// is applied as soon as the budget's background share allows.)
pub fn routine(cfg: &GatewayConfig, revision: &str) -> bool {
    let Some(s) = &cfg.status else { return false };
    s.observed_generation.is_some()
        && s.observed_generation == cfg.metadata.generation
        && s.last_applied_revision.as_deref() == Some(revision)
        && s.last_handled_requested_at.as_ref() == cfg.annotations().get(REQUESTED_AT)
        && s.conditions
            .iter()
            .any(|c| c.type_ == READY && c.status == "True")
}

/// Connect the config's gateway (credentials from Secrets) with `env`.
pub async fn target(
    cfg: &GatewayConfig,
    ctx: &Ctx,
    mut env: Environment,
    allow_mass_delete: bool,
    priority: Priority,
) -> Result<Target, Error> {
    let ns = cfg.namespace().unwrap_or_default();
    let gws: Api<ContextForgeGateway> = Api::namespaced(ctx.client.clone(), &ns);
    let name = &cfg.spec.gateway_ref.name;
    let gw = gws.get_opt(name).await?.ok_or_else(|| Error::NotFound {
        kind: "ContextForgeGateway",
        name: name.clone(),
    })?;
    let secrets: Api<K8sSecret> = Api::namespaced(ctx.client.clone(), &ns);
    let conn =
        super::connect::connect(&secrets, &gw, cfg.spec.document_key_secret_ref.as_ref()).await?;
    if !cfg.spec.credentials.is_empty() {
        let key = conn.keys.document.as_ref().ok_or_else(|| {
            Error::Invalid(format!(
                "credentials: ContextForgeGateway {name} has no encryptionSecretRef (and the config no documentKeySecretRef) to encrypt them with"
            ))
        })?;
        set_credentials(&secrets, &cfg.spec.credentials, key, &mut env.document).await?;
    }
    let settings = Settings {
        stats: Some(ctx.metrics.gateway_stats(&format!("{ns}/{name}"))),
        limiter: Some(ctx.limiter(&conn.url, conn.rate_limit.unwrap_or(450)).await),
        priority,
        allow_mass_delete,
        default_owner: Some(owner(cfg)),
        command: "controller",
        lock_timeout: Duration::ZERO,
        timeout: gw
            .spec
            .timeout_seconds
            .map(|s| Duration::from_secs(s as u64)),
        ..Settings::default()
    };
    Ok(Target::connect(env, conn, &settings)?)
}

/// `spec.credentials` into the desired document: each token read from its Secret key and set,
/// encrypted with `key`, on its entity (replacing the documents' credential for it).
async fn set_credentials(
    secrets: &Api<K8sSecret>,
    credentials: &[EntityCredential],
    key: &crate::core::secrets::Secret,
    doc: &mut Document,
) -> Result<(), Error> {
    for (index, c) in credentials.iter().enumerate() {
        let kind = match c.kind.as_str() {
            "tools" => Kind::Tool,
            "gateways" => Kind::Gateway,
            other => {
                return Err(Error::Invalid(format!(
                    "credentials[{index}].kind: {other:?} is not tools or gateways"
                )));
            }
        };
        let token = super::connect::secret_value(secrets, &c.secret_key_ref).await?;
        credential::set_bearer(doc, kind, &c.name, &token, key)
            .map_err(|source| Error::Credential { index, source })?;
    }
    Ok(())
}

async fn sync(cfg: &GatewayConfig, ctx: &Ctx) -> Result<Synced, Error> {
    let ns = cfg.namespace().unwrap_or_default();
    let configs: Api<GatewayConfig> = Api::namespaced(ctx.client.clone(), &ns);
    for d in &cfg.spec.depends_on {
        let ready = configs.get_opt(&d.name).await?.is_some_and(|c| {
            c.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == READY && c.status == "True")
            })
        });
        if !ready {
            return Err(Error::Dependency(format!("GatewayConfig {}", d.name)));
        }
    }
    let read = read_sources(ctx, &ns, &cfg.name_any(), &cfg.spec.sources).await?;
    let revision = read.revision();
    let layers = read.layers;
    let root = ctx.state_dir.join("configs").join(&ns).join(cfg.name_any());
    let config = env_config(cfg);
    let env = k8s_io(move || layers::load(&root, &layers, config))
        .await?
        .map_err(|e| Error::Layers(e, revision.clone()))?;
    let priority = if routine(cfg, &revision) {
        Priority::Background
    } else {
        Priority::Foreground
    };
    let mut t = target(cfg, ctx, env, cfg.spec.prune.allow_mass_delete, priority).await?;
    let marker = prune::marker_tag(&owner(cfg)).map_err(|e| Error::Invalid(e.to_string()))?;
    if t.prune.is_none() {
        prune::mark(&mut t.desired, &marker);
    }
    let at = |e| Error::Engine(Box::new(e), revision.clone());
    let planned = t.plan().await.map_err(at)?;
    let foreign = prune::foreign_owners(&t.desired, &planned.ready.observed, &marker, FAMILY);
    if !foreign.is_empty() {
        let list: Vec<String> = foreign
            .iter()
            .take(5)
            .map(|(k, n, o)| format!("{k} '{n}' is owned by {o}"))
            .collect();
        return Err(Error::Ownership {
            message: format!(
                "{} entities belong to another config: {}",
                foreign.len(),
                list.join(", ")
            ),
            revision,
        });
    }
    let counts = planned.counts();
    let plan = PlanSummary {
        creates: counts.create as u32,
        updates: counts.update as u32,
        deletes: counts.delete as u32,
        unchanged: counts.unchanged as u32,
        digest: format!(
            "sha256:{}",
            &t.digests(&planned).0.chars().take(16).collect::<String>()
        ),
    };
    let changes = counts.create + counts.update + counts.delete;
    let (inventory, inventory_text) = super::inventory::of(&t.desired, &marker, &cfg.name_any());
    let mut out = Synced {
        revision: revision.clone(),
        plan,
        drift: changes > 0,
        inventory,
        inventory_text,
        ..Synced::default()
    };
    if changes == 0 || cfg.spec.mode == SyncMode::Observe {
        return Ok(out);
    }
    let report = t.apply(&planned, None).await.map_err(at)?;
    out.applied = true;
    for r in &report.results {
        if let Outcome::Failed { error, .. } = &r.outcome {
            out.failures_total += 1;
            if out.failures.len() < MAX_FAILURES {
                out.failures.push(EntityFailure {
                    kind: r.kind.plural().to_string(),
                    name: r.name.clone(),
                    message: crate::core::quote::clean(error, false)
                        .chars()
                        .take(300)
                        .collect(),
                });
            }
        }
    }
    Ok(out)
}

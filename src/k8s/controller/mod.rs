//! `mcp-gitops controller`: kube-rs Controllers for `GatewayConfig`, `ContextForgeGateway` and
//! `GatewayBackup`, reconciling through the engine; leader election with a Lease; `/healthz`, `/readyz`,
//! `/metrics`.

pub mod backup;
#[cfg(test)]
mod backup_tests;
mod cleanup;
pub mod config;
mod connect;
pub mod gateway;
pub mod git;
pub mod git_auth;
mod inventory;
pub mod metrics;
mod run;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::core::error::{Classify, ErrorClass};
use crate::gateway::Limiter;
use crate::k8s::status::{Flips, READY};
pub use metrics::Metrics;

pub use run::{ControllerArgs, run};

/// An annotation whose new value asks for an immediate reconcile; echoed in
/// `status.lastHandledRequestedAt`.
pub const REQUESTED_AT: &str = "gitops.mcp-gitops.dev/requestedAt";
/// `"true"` on a `deletionPolicy: Delete` config lets it go without deleting its entities
/// (the escape hatch when its gateway is gone for good).
pub const FORCE_ORPHAN: &str = "gitops.mcp-gitops.dev/force-orphan";
/// The field manager of every write.
pub const MANAGER: &str = "mcp-gitops-controller";

/// What every reconcile shares.
pub struct Ctx {
    pub client: kube::Client,
    pub recorder: Recorder,
    /// Where layered documents are materialised (`configs/<ns>/<name>`) and Git sources are
    /// cloned (`git/<ns>/<name>`).
    pub state_dir: PathBuf,
    pub metrics: Metrics,
    /// Every gateway's client-side limiter, held for the controller's lifetime (see
    /// [`Ctx::limiter`]).
    limiters: std::sync::Mutex<Vec<Arc<Limiter>>>,
}

impl Ctx {
    /// The one client-side limiter for the gateway at `url`, at `per_minute` (its
    /// `ContextForgeGateway`'s `requestsPerMinute`, which may have been edited since the last
    /// call: the latest value counts, higher or lower), shared by every config on it, its
    /// backups and its own check, and kept while the controller runs. The process's registry
    /// ([`Limiter::for_gateway`]) keeps a limiter only while some client uses it: between two
    /// reconciles there may be none, and a new limiter would have forgotten the last minute's
    /// requests (the first reconciles of 50 configs, then edits, went over the budget so and
    /// were answered 429).
    pub async fn limiter(&self, url: &str, per_minute: usize) -> Arc<Limiter> {
        let l = Limiter::for_gateway(url, per_minute);
        {
            let mut held = self.limiters.lock().expect("limiters");
            if !held.iter().any(|h| Arc::ptr_eq(h, &l)) {
                held.push(l.clone());
            }
        }
        l.set_rate(per_minute).await;
        l
    }
}

/// Why a reconcile did not succeed: each becomes a condition reason through [`Error::reason`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("Secret {name}, key {key}: {why}")]
    Secret {
        name: String,
        key: String,
        why: String,
    },
    #[error("Secret {name} not found")]
    NoSecret { name: String },
    #[error("{kind} {name} not found")]
    NotFound { kind: &'static str, name: String },
    /// A Git source could not be fetched or read (`index` in `spec.sources`).
    #[error("sources[{index}].git: {source}")]
    Git {
        index: usize,
        #[source]
        source: crate::engine::layers::git::GitLayerError,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("credentials[{index}]: {source}")]
    Credential {
        index: usize,
        source: crate::core::document::credential::CredentialError,
    },
    #[error("{0}")]
    Layers(crate::engine::layers::LayerError, String),
    #[error("{0}")]
    Engine(Box<crate::engine::reconcile::ReconcileError>, String),
    #[error(transparent)]
    Reconcile(#[from] crate::engine::reconcile::ReconcileError),
    #[error(transparent)]
    Gateway(#[from] crate::gateway::GatewayError),
    #[error("ownership conflict: {message}")]
    Ownership { message: String, revision: String },
    #[error("{0}")]
    InUse(String),
    #[error("suspended")]
    Suspended,
    #[error("waiting for {0} to be Ready (dependsOn)")]
    Dependency(String),
    #[error("internal: {0}")]
    Join(String),
}

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Kube(_) | Error::Join(_) => ErrorClass::Unreachable,
            Error::Secret { .. }
            | Error::NoSecret { .. }
            | Error::NotFound { .. }
            | Error::Invalid(_)
            | Error::Credential { .. } => ErrorClass::Invalid,
            Error::Git { source, .. } => source.class(),
            Error::Layers(e, _) => e.class(),
            Error::Engine(e, _) => e.class(),
            Error::Reconcile(e) => e.class(),
            Error::Gateway(e) => e.class(),
            Error::Ownership { .. } => ErrorClass::Conflict,
            Error::InUse(_) | Error::Suspended | Error::Dependency(_) => ErrorClass::Locked,
        }
    }
}

impl Error {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesApiError",
            Error::Secret { .. } | Error::NoSecret { .. } => "SecretMissing",
            // Fetching: unreachable, refused credentials or host key, no branch or path.
            Error::Git {
                source: crate::engine::layers::git::GitLayerError::Git(_),
                ..
            } => "GitFailed",
            Error::NotFound {
                kind: "ContextForgeGateway",
                ..
            } => "GatewayNotFound",
            Error::NotFound { .. } => "SourceNotFound",
            Error::Ownership { .. } => "OwnershipConflict",
            Error::Credential { .. } => "CredentialInvalid",
            Error::InUse(_) => "InUse",
            Error::Suspended => "Suspended",
            Error::Dependency(_) => "DependencyNotReady",
            e => e.class().reason(),
        }
    }

    /// A human must act (retrying alone will not help).
    pub fn stalled(&self) -> bool {
        matches!(
            self.class(),
            ErrorClass::Invalid | ErrorClass::Conflict | ErrorClass::MassDelete | ErrorClass::Auth
        )
    }

    /// The sources' revision the failure concerns, when known.
    pub fn revision(&self) -> Option<&str> {
        match self {
            Error::Layers(_, r) | Error::Engine(_, r) | Error::Ownership { revision: r, .. } => {
                Some(r)
            }
            _ => None,
        }
    }
}

/// `sha256:` and 16 hex digits over `parts` (each length-prefixed, so that no two lists of
/// parts collide by concatenation).
pub fn short_digest<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let hex: String = h
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// `30s`, `5m`, `1h30m` (checked by the CRD's CEL rule); 5 minutes when unreadable.
pub fn parse_interval(s: &str) -> Duration {
    let mut total = 0u64;
    let mut n = 0u64;
    for c in s.chars() {
        match c {
            '0'..='9' => n = n.saturating_mul(10).saturating_add(c as u64 - '0' as u64),
            's' => (total, n) = (total + n, 0),
            'm' => (total, n) = (total + n * 60, 0),
            'h' => (total, n) = (total + n * 3600, 0),
            _ => return Duration::from_secs(300),
        }
    }
    if total == 0 {
        Duration::from_secs(300)
    } else {
        Duration::from_secs(total)
    }
}

/// `d` plus up to 10% (so that many configs do not check their gateway in step).
pub fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let frac = u16::from_le_bytes(b) as f64 / u16::MAX as f64;
    d + d.mul_f64(0.1 * frac)
}

/// Run blocking file work off the async threads.
pub async fn k8s_io<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Join(e.to_string()))
}

/// Add or remove `finalizer` (a merge patch guarded by the resource version).
pub async fn set_finalizer<K>(
    api: &Api<K>,
    obj: &K,
    finalizer: &str,
    present: bool,
) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut list: Vec<String> = obj
        .finalizers()
        .iter()
        .filter(|f| *f != finalizer)
        .cloned()
        .collect();
    if present {
        list.push(finalizer.to_string());
    }
    let patch = serde_json::json!({
        "metadata": {"finalizers": list, "resourceVersion": obj.resource_version()}
    });
    api.patch(
        &obj.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// Write `new` as the status (server-side apply) when it differs from `old`; publish an Event
/// when `Ready` flipped.
pub async fn publish<K, S>(
    api: &Api<K>,
    obj: &K,
    ctx: &Ctx,
    old: &S,
    new: &S,
    flips: &Flips,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    if old != new {
        let body = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": new,
        });
        api.patch_status(
            &obj.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
        ctx.metrics.status_writes.fetch_add(1, Ordering::Relaxed);
    }
    for (type_, status, reason) in &flips.flipped {
        if type_ != READY {
            continue;
        }
        let ev = Event {
            type_: if status == "True" {
                EventType::Normal
            } else {
                EventType::Warning
            },
            reason: reason.clone(),
            note: Some(format!("Ready is now {status}")),
            action: "Reconcile".into(),
            secondary: None,
        };
        ctx.recorder.publish(&ev, &obj.object_ref(&())).await?;
        ctx.metrics.events.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Shared by the run loop and tests.
pub fn context(client: kube::Client, state_dir: PathBuf, identity: &str) -> Arc<Ctx> {
    let reporter = kube::runtime::events::Reporter {
        controller: MANAGER.into(),
        instance: Some(identity.to_string()),
    };
    Arc::new(Ctx {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        state_dir,
        metrics: Metrics::default(),
        limiters: std::sync::Mutex::new(Vec::new()),
    })
}

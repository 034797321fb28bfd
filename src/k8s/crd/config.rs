//! `GatewayConfig`: the desired state of one environment on one gateway.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, KindCounts, LocalRef, SecretKeyRef, SecretRef};

/// The desired state of one environment on one gateway: documents from ConfigMaps, Git or
/// inline, layered in order like an environment's `bases` (a later source patches an earlier
/// one's entities), planned and applied by the same engine as `mcp-gitops apply`.
// The printer columns repeat `type_`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "gitops.mcp-gitops.dev",
    version = "v1alpha1",
    kind = "GatewayConfig",
    namespaced,
    cel,
    status = "GatewayConfigStatus",
    shortname = "gwc",
    category = "mcp-gitops",
    printcolumn(
        name = "Gateway",
        type_ = "string",
        json_path = ".spec.gatewayRef.name"
    ),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Revision",
        type_ = "string",
        json_path = ".status.lastAppliedRevision"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct GatewayConfigSpec {
    /// The `ContextForgeGateway` (same namespace) this environment is applied to. Immutable:
    /// to move an environment, delete it (with `deletionPolicy: Orphan`) and create another.
    #[x_kube(validation = Rule::new("self == oldSelf").message("gatewayRef is immutable"))]
    pub gateway_ref: LocalRef,
    /// The documents, layered in order.
    #[schemars(length(min = 1, max = 16))]
    pub sources: Vec<Source>,
    /// The key the documents' `auth_value`s are encrypted with, when it is not the gateway's
    /// `encryptionSecretRef` (they are re-encrypted for the gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_key_secret_ref: Option<SecretKeyRef>,
    /// Per-entity credentials from Secret keys: a bearer token set as the entity's
    /// `auth_value` (encrypted with the gateway's key before it is sent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub credentials: Vec<EntityCredential>,
    /// `apply` writes; `observe` only reports drift.
    #[serde(default)]
    pub mode: SyncMode,
    /// What to do with a live entity that differs from the documents.
    #[serde(default)]
    pub conflict_strategy: ConflictStrategy,
    /// Delete what this config owns and no longer declares (off by default).
    #[serde(default)]
    pub prune: PruneSpec,
    /// What deleting this resource does to the entities it owns.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// How often drift is checked and Git fetched (`30s`, `5m`, `1h`); default `5m`.
    #[serde(default = "default_interval")]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(s|m|h))+$')").message("interval is a duration such as 30s, 5m or 1h30m"))]
    pub interval: String,
    /// Stop reconciling (deletion still works).
    #[serde(default)]
    pub suspend: bool,
    /// `GatewayConfig`s (same namespace) that must be Ready first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<LocalRef>,
}

fn default_interval() -> String {
    "5m".into()
}

/// Exactly one of `configMap`, `git` and `inline`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(
    cel,
    validation = Rule::new("[has(self.configMap), has(self.git), has(self.inline)].filter(x, x).size() == 1").message("a source sets exactly one of configMap, git and inline")
)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<InlineSource>,
}

/// A ConfigMap whose keys are documents (JSON or YAML), read in key order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapSource {
    pub name: String,
    /// Only these keys (default: every key ending in `.json`, `.yaml` or `.yml`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
}

/// An environment directory at `path` in `branch` of a repository, fetched at every reconcile
/// into the controller's clone cache: its `*.json`, `*.yaml`, `*.yml` documents (and, when its
/// `mcp-gitops.yaml` names `bases` in the repository, theirs first). SSH host keys are always
/// verified.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitSource {
    /// `https://…` or `ssh://…` / `git@host:path`.
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://') || self.startsWith('ssh://') || self.matches('^[^/:]+@[^/:]+:.+$')").message("url must be https://, http://, ssh:// or user@host:path"))]
    pub url: String,
    #[serde(default = "default_branch")]
    pub branch: String,
    /// The directory inside the repository (default: its root), or one document file.
    #[serde(default)]
    #[x_kube(validation = Rule::new("!self.startsWith('/') && !self.contains('..')").message("path is relative and stays inside the repository"))]
    pub path: String,
    /// A Secret with `username` and `password` (HTTPS), or `identity` (an SSH private key),
    /// optional `passphrase`, and `known_hosts` (required for SSH). None: anonymous HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
}

fn default_branch() -> String {
    "main".into()
}

/// A small document written in the resource itself (no credentials in plaintext: an
/// `auth_value` in it is encrypted, as in any document).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct InlineSource {
    /// Names the document in errors (`inline/<name>`).
    pub name: String,
    /// The document, JSON or YAML.
    #[x_kube(validation = Rule::new("size(self) <= 65536").message("an inline document is at most 64 KiB: use a ConfigMap or Git"))]
    pub document: String,
}

/// A bearer token for one tool or peer gateway, from a Secret key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntityCredential {
    /// `tools` or `gateways`.
    #[x_kube(validation = Rule::new("self == 'tools' || self == 'gateways'").message("kind is tools or gateways"))]
    pub kind: String,
    /// The entity's name.
    pub name: String,
    pub secret_key_ref: SecretKeyRef,
}

/// `apply` or `observe`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    #[default]
    Apply,
    Observe,
}

/// `update`, `skip` or `fail` (`rename` makes copies on every run: not for an environment).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConflictStrategy {
    #[default]
    Update,
    Skip,
    Fail,
}

/// `Orphan` (default) leaves the entities on the gateway; `Delete` removes what this config
/// owns, in reverse dependency order, before the resource goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    #[default]
    Orphan,
    Delete,
}

/// Prune and its mass-delete guard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PruneSpec {
    #[serde(default)]
    pub enabled: bool,
    /// Refuse a plan deleting more than this share of the owned entities (or all of them).
    #[serde(default = "default_percent")]
    #[schemars(range(min = 0, max = 100))]
    pub max_delete_percent: u8,
    /// Let one reconcile past the guard.
    #[serde(default)]
    pub allow_mass_delete: bool,
}

impl Default for PruneSpec {
    fn default() -> Self {
        PruneSpec {
            enabled: false,
            max_delete_percent: default_percent(),
            allow_mass_delete: false,
        }
    }
}

fn default_percent() -> u8 {
    crate::core::policy::MAX_DELETE_PERCENT
}

/// What the controller last did for this config.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayConfigStatus {
    /// `Ready`, `Reconciling`, `Stalled`, `Drifted`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The sources' revision last applied in full: `sha256:…` of the documents; with Git
    /// sources `<branch>@<commit12>` (several joined by `+`, then `+sha256:…` of the other
    /// sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,
    /// The revision last tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_plan: Option<PlanSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Inventory>,
    /// Per-entity failures of the last run (at most 20; `failuresTotal` counts all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<EntityFailure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures_total: Option<u32>,
    /// The last few reconciliations that changed something or failed, newest first (at most 5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// Echo of the `gitops.mcp-gitops.dev/requestedAt` annotation last handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_requested_at: Option<String>,
}

/// The last plan's counts and digest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanSummary {
    pub creates: u32,
    pub updates: u32,
    pub deletes: u32,
    pub unchanged: u32,
    /// The plan's digest (`sha256:…`).
    pub digest: String,
}

/// What this config owns on the gateway.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// The ownership tag set on every entity this config declares (`mcp-gitops:<owner>`).
    pub owner_tag: String,
    pub total: u32,
    #[serde(default)]
    pub counts: KindCounts,
    /// Every entity (`tools/<name>`, `resources/<uri>`, …), sorted, while there are at most 100;
    /// past that, empty, and the list is in `configMap`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<String>,
    /// A digest of the whole list (`sha256:…`): also in the ConfigMap, to tell it is current.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// A ConfigMap (owned by this resource, key `inventory.json`) listing every entity, when
    /// there are more than 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
}

/// One entity that failed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntityFailure {
    pub kind: String,
    pub name: String,
    pub message: String,
}

/// One past reconciliation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// RFC 3339.
    pub time: String,
    pub revision: String,
    /// `Applied`, `Drifted`, or a failure reason.
    pub result: String,
    /// e.g. `1 create, 2 updates`.
    #[serde(default)]
    pub summary: String,
}

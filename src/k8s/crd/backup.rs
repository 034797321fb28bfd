//! `GatewayBackup`: scheduled snapshots of a gateway into a Git branch.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::{Condition, LocalRef, SecretRef};

/// Back a gateway up to a file in a Git branch on a cron schedule, as the daemon's backups do:
/// no empty commits, what changed in the message, credentials encrypted.
// The printer columns repeat `type_`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "gitops.mcp-gitops.dev",
    version = "v1alpha1",
    kind = "GatewayBackup",
    namespaced,
    cel,
    status = "GatewayBackupStatus",
    shortname = "gwb",
    category = "mcp-gitops",
    printcolumn(
        name = "Gateway",
        type_ = "string",
        json_path = ".spec.gatewayRef.name"
    ),
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule"),
    printcolumn(
        name = "Last commit",
        type_ = "string",
        json_path = ".status.lastCommit"
    ),
    printcolumn(name = "Next run", type_ = "string", json_path = ".status.nextRun"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct GatewayBackupSpec {
    /// The `ContextForgeGateway` (same namespace) to back up.
    #[x_kube(validation = Rule::new("self == oldSelf").message("gatewayRef is immutable"))]
    pub gateway_ref: LocalRef,
    /// A cron expression (5 fields, UTC), e.g. `0 */6 * * *`.
    #[x_kube(validation = Rule::new("self.split(' ').filter(f, f != '').size() == 5").message("schedule is a cron expression of 5 fields"))]
    pub schedule: String,
    pub git: BackupGit,
    /// Stop taking snapshots.
    #[serde(default)]
    pub suspend: bool,
}

/// Where the snapshot goes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupGit {
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://') || self.startsWith('ssh://') || self.matches('^[^/:]+@[^/:]+:.+$')").message("url must be https://, http://, ssh:// or user@host:path"))]
    pub url: String,
    #[serde(default = "default_branch")]
    pub branch: String,
    /// The file in the repository (`.json` or `.yaml`).
    #[x_kube(validation = Rule::new("self != '' && !self.startsWith('/') && !self.contains('..')").message("path is a relative file path inside the repository"))]
    pub path: String,
    /// The commit message's first words (default `backup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// As `GitSource.secretRef`: `username`/`password`, or `identity` and `known_hosts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
}

fn default_branch() -> String {
    "main".into()
}

/// The last snapshot and the next.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayBackupStatus {
    /// `Ready` (BackedUp, Unchanged, Scheduled, Suspended, or a failure reason), `Reconciling`
    /// and `Stalled`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The last commit this backup made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_commit: Option<String>,
    /// When the last snapshot was attempted (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
    /// When the next is due (RFC 3339, UTC); absent while suspended or stalled on the schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
    /// Entities in the last snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entities: Option<u32>,
    /// The `gitops.mcp-gitops.dev/requestedAt` annotation's value last handled (a new value
    /// takes a snapshot at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_requested_at: Option<String>,
}

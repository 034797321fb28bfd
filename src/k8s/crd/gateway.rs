//! `ContextForgeGateway`: how to reach one gateway, with credentials from Secrets only.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::{Condition, SecretKeyRef};

/// How to reach one ContextForge gateway. Every `GatewayConfig` and `GatewayBackup` naming it
/// shares its request budget.
// The printer columns repeat `type_`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "gitops.mcp-gitops.dev",
    version = "v1alpha1",
    kind = "ContextForgeGateway",
    namespaced,
    cel,
    status = "ContextForgeGatewayStatus",
    shortname = "cfgw",
    category = "mcp-gitops",
    printcolumn(name = "URL", type_ = "string", json_path = ".spec.url"),
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
    printcolumn(name = "Version", type_ = "string", json_path = ".status.version"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ContextForgeGatewaySpec {
    /// The gateway's base URL, e.g. `http://mcp-stack-mcpgateway.mcp:80`.
    #[x_kube(validation = kube::core::Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("url must start with http:// or https://"))]
    pub url: String,
    /// How to authenticate: a bearer token, or the JWT signing key and a user.
    pub auth: GatewayAuth,
    /// The gateway's `AUTH_ENCRYPTION_SECRET`: stored credentials are decrypted and written
    /// with it. Needed when documents carry credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_secret_ref: Option<SecretKeyRef>,
    /// A PEM CA bundle the gateway's TLS certificate is checked against (besides the system's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
    /// Requests per minute to this gateway from the controller, shared by every resource that
    /// targets it (the gateway allows 500 and locks a client out after five 429s). Default 450.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 500))]
    pub requests_per_minute: Option<u32>,
    /// Per-request timeout in seconds. Default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 600))]
    pub timeout_seconds: Option<u32>,
}

/// Exactly one of `tokenSecretRef` and `jwt`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[x_kube(
    cel,
    validation = kube::core::Rule::new("has(self.tokenSecretRef) != has(self.jwt)").message("set exactly one of tokenSecretRef and jwt")
)]
#[serde(rename_all = "camelCase")]
pub struct GatewayAuth {
    /// A bearer token (an API token or an admin JWT) in a Secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<SecretKeyRef>,
    /// Mint short-lived admin tokens with the gateway's JWT signing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtAuth>,
}

/// The gateway's `JWT_SECRET_KEY` and the admin user tokens are minted for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtAuth {
    /// The signing key (`JWT_SECRET_KEY`).
    pub signing_key_secret_ref: SecretKeyRef,
    /// The admin user's e-mail.
    #[x_kube(validation = kube::core::Rule::new("self.contains('@')").message("user must be an e-mail address"))]
    pub user: String,
    /// Default `mcpgateway-api`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Default `mcpgateway`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

/// What the controller last saw of the gateway.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContextForgeGatewayStatus {
    /// `Ready`: Connected, Unreachable, AuthFailed, KeyMismatch, SecretMissing.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The gateway's version, as it reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The `GatewayConfig`s and `GatewayBackup`s that name this gateway (deletion waits for
    /// them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_by: Vec<String>,
    /// Echo of the `gitops.mcp-gitops.dev/requestedAt` annotation last handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_requested_at: Option<String>,
}

//! The ContextForge REST client: auth, pagination, retries and rate limits (see `http`),
//! typed reads of the live configuration (see `live`), and the typed operations the engine
//! uses (the [`Gateway`] trait, see `ops`), also served in memory by `fake::FakeGateway`.

mod auth;
pub mod body;
pub mod fake;
mod http;
pub mod info;
mod limiter;
pub use limiter::Priority;
pub mod live;
mod ops;

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

pub use auth::{Auth, AuthError, MintOptions};
pub use http::{Action, GatewayError, Limiter, RetryPolicy, Stats, message_of};
pub use ops::Gateway;

/// Requests per minute a client sends by default: the gateway allows 500 on `/v1`.
pub const DEFAULT_RATE_LIMIT: usize = 450;

/// The JWT audience and issuer the gateway expects by default (its `JWT_AUDIENCE`,
/// `JWT_ISSUER`).
pub const DEFAULT_JWT_AUDIENCE: &str = "mcpgateway-api";
pub const DEFAULT_JWT_ISSUER: &str = "mcpgateway";

/// How to reach and talk to a gateway.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub url: String,
    pub auth: Auth,
    /// Requests per minute, client side (0 = unlimited). The gateway allows 500/min on `/v1`
    /// and locks a client out for 15 minutes after five 429s.
    pub rate_limit: usize,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Counters to share with other clients (default: the client's own).
    pub stats: Option<Arc<Stats>>,
    /// A limiter of its own (default: the process's one for this gateway URL, at `rate_limit`
    /// or the lowest rate another client of that gateway asked for).
    pub limiter: Option<Arc<Limiter>>,
    /// Whose requests these are, for the limiter (a periodic check is `Background`).
    pub priority: Priority,
    /// A PEM bundle of CA certificates the gateway's TLS certificate may chain to, besides the
    /// system's (check it first with [`check_ca_pem`]).
    pub ca_pem: Option<String>,
}

impl ClientOptions {
    pub fn new(url: impl Into<String>, auth: Auth) -> Self {
        ClientOptions {
            url: url.into(),
            auth,
            rate_limit: DEFAULT_RATE_LIMIT,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            stats: None,
            limiter: None,
            priority: Priority::Foreground,
            ca_pem: None,
        }
    }
}

/// A connection to one gateway. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    t: Arc<http::Transport>,
    user: Option<String>,
    who: Option<String>,
}

/// A URL that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("gateway URL '{0}' must start with http:// or https://")]
    Scheme(String),
    #[error(
        "gateway URL carries user:password, but the gateway's REST API does not accept Basic auth; pass a bearer token (--token) or --user with JWT_SECRET_KEY"
    )]
    BasicAuth,
}

/// Check and normalise a gateway URL (no trailing slash).
pub fn check_url(url: &str) -> Result<String, UrlError> {
    let url = url.trim().trim_end_matches('/');
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return Err(UrlError::Scheme(url.to_string()));
    };
    if rest.split('/').next().unwrap_or("").contains('@') {
        return Err(UrlError::BasicAuth);
    }
    if rest.is_empty() {
        return Err(UrlError::Scheme(url.to_string()));
    }
    Ok(url.to_string())
}

/// The certificates of a PEM bundle; an error saying why when it holds none or is not PEM.
fn ca_certificates(pem: &str) -> Result<Vec<reqwest::Certificate>, String> {
    let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
        .map_err(|e| format!("the CA bundle is not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("the CA bundle holds no certificate".into());
    }
    Ok(certs)
}

/// Whether `pem` is a usable CA bundle (configuration is checked before any connection).
pub fn check_ca_pem(pem: &str) -> Result<(), String> {
    ca_certificates(pem).map(|_| ())
}

impl Client {
    pub fn new(opts: ClientOptions) -> Result<Client, GatewayError> {
        let base = check_url(&opts.url).map_err(|e| GatewayError::Unreachable {
            url: opts.url.clone(),
            reason: e.to_string(),
        })?;
        let bearer = http::Bearer::new(opts.auth.clone())?;
        let cas = match &opts.ca_pem {
            Some(pem) => ca_certificates(pem).map_err(|reason| GatewayError::Unreachable {
                url: base.clone(),
                reason,
            })?,
            None => Vec::new(),
        };
        let http = reqwest::Client::builder()
            .tls_certs_merge(cas)
            .timeout(opts.timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("mcp-gitops/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GatewayError::Unreachable {
                url: base.clone(),
                reason: e.to_string(),
            })?;
        let limiter = opts
            .limiter
            .unwrap_or_else(|| Limiter::for_gateway(&base, opts.rate_limit));
        Ok(Client {
            user: opts.auth.user().map(str::to_string),
            who: opts.auth.who(),
            t: Arc::new(http::Transport {
                http,
                base,
                bearer,
                limiter,
                priority: opts.priority,
                retry: opts.retry,
                stats: opts.stats.unwrap_or_default(),
            }),
        })
    }

    /// The gateway's base URL.
    pub fn url(&self) -> &str {
        &self.t.base
    }

    /// The user the token was minted for, if it was minted here.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Who acts, for `exported_by` and audit lines: the minted token's user, else the user a
    /// given token names (unverified), else "unknown".
    pub fn who(&self) -> String {
        self.who.clone().unwrap_or_else(|| "unknown".to_string())
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.t.stats.clone()
    }

    pub async fn get(&self, path: &str, action: &Action) -> Result<Value, GatewayError> {
        self.t.send(Method::GET, path, None, action).await
    }

    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        action: &Action,
    ) -> Result<Value, GatewayError> {
        self.t.send(Method::POST, path, Some(body), action).await
    }

    pub async fn put(
        &self,
        path: &str,
        body: &Value,
        action: &Action,
    ) -> Result<Value, GatewayError> {
        self.t.send(Method::PUT, path, Some(body), action).await
    }

    pub async fn delete(&self, path: &str, action: &Action) -> Result<Value, GatewayError> {
        self.t.send(Method::DELETE, path, None, action).await
    }

    /// Create tools (a JSON array of `ToolCreate` bodies, at most 200) through the gateway's
    /// bulk route; its per-item report (`created`, `errors` by index).
    pub async fn bulk_import_tools(&self, tools: &[Value]) -> Result<Value, GatewayError> {
        let action = Action::new(format!("bulk-import {} tools", tools.len()));
        self.post(
            "/admin/tools/import",
            &Value::Array(tools.to_vec()),
            &action,
        )
        .await
    }
}

/// Percent-encode one path segment or query value.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            check_url("http://127.0.0.1:4444/").unwrap(),
            "http://127.0.0.1:4444"
        );
        assert_eq!(
            check_url("gateway:4444").unwrap_err(),
            UrlError::Scheme("gateway:4444".into())
        );
        assert_eq!(
            check_url("http://admin:pw@gw:4444").unwrap_err(),
            UrlError::BasicAuth
        );
    }

    #[test]
    fn components_are_encoded() {
        assert_eq!(encode_component("file:///a b"), "file%3A%2F%2F%2Fa%20b");
        assert_eq!(encode_component("abc-1.2_~"), "abc-1.2_~");
    }
}

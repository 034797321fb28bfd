//! One request to the gateway: client-side rate limiting, retries with backoff and jitter
//! (honouring `Retry-After`), timeouts, and typed errors that carry what was being done.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

pub use super::limiter::Limiter;

use super::auth::{Auth, AuthError};
use crate::core::kind::Kind;

/// What went wrong talking to the gateway. `action` says what was being done, e.g.
/// "create tool 'weather-api'".
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot reach the gateway at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{action}: the gateway refused the credentials (401 {message})")]
    Unauthorized { action: String, message: String },
    #[error(
        "{action}: the token is not allowed (403 {message}); an unrestricted admin token is needed (teams: null, is_admin: true)"
    )]
    Forbidden { action: String, message: String },
    #[error("{action}: the gateway answered {status}: {message}")]
    Api {
        action: String,
        kind: Option<Kind>,
        name: Option<String>,
        status: u16,
        message: String,
    },
    #[error(
        "{action}: the gateway is rate limiting this client (retry after {retry_after}s); lower --rate-limit"
    )]
    RateLimited { action: String, retry_after: u64 },
    #[error("{action}: unexpected response from the gateway: {reason}")]
    Protocol { action: String, reason: String },
    #[error("{0}")]
    Auth(#[from] super::auth::AuthError),
}

impl crate::core::error::Classify for GatewayError {
    fn class(&self) -> crate::core::error::ErrorClass {
        use crate::core::error::ErrorClass;
        match self {
            GatewayError::Unreachable { .. } => ErrorClass::Unreachable,
            GatewayError::Unauthorized { .. } | GatewayError::Forbidden { .. } => ErrorClass::Auth,
            GatewayError::Auth(_) => ErrorClass::Invalid,
            GatewayError::RateLimited { .. } => ErrorClass::GatewayBusy,
            GatewayError::Api { status, .. } if *status >= 500 => ErrorClass::GatewayBusy,
            GatewayError::Api { .. } | GatewayError::Protocol { .. } => ErrorClass::Failed,
        }
    }
}

impl GatewayError {
    /// The HTTP status, when the gateway answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            GatewayError::Api { status, .. } => Some(*status),
            GatewayError::Unauthorized { .. } => Some(401),
            GatewayError::Forbidden { .. } => Some(403),
            GatewayError::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// The gateway's own message, when it sent one.
    pub fn gateway_message(&self) -> Option<&str> {
        match self {
            GatewayError::Api { message, .. }
            | GatewayError::Unauthorized { message, .. }
            | GatewayError::Forbidden { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// Describes a request for error messages: what, and about which entity.
#[derive(Clone, Debug)]
pub struct Action {
    pub text: String,
    pub kind: Option<Kind>,
    pub name: Option<String>,
    /// A POST that only reads (the selective export): counted as a read, safe to retry.
    pub query: bool,
}

impl Action {
    pub fn new(text: impl Into<String>) -> Self {
        Action {
            text: text.into(),
            kind: None,
            name: None,
            query: false,
        }
    }

    /// A read sent as POST.
    pub fn query(text: impl Into<String>) -> Self {
        Action {
            query: true,
            ..Action::new(text)
        }
    }

    /// "create tool 'x'".
    pub fn entity(verb: &str, kind: Kind, name: &str) -> Self {
        Action {
            text: format!("{verb} {kind} '{name}'"),
            kind: Some(kind),
            name: Some(name.to_string()),
            query: false,
        }
    }
}

/// Request counters, for tests, benchmarks (e.g. "zero writes on a second import") and the
/// daemon's metrics.
#[derive(Default, Debug)]
pub struct Stats {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub retries: AtomicU64,
    /// Requests that ended in an error (after retries).
    pub errors: AtomicU64,
}

impl Stats {
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// The bearer token to send. A minted token is minted again once half its lifetime has
/// passed, so that a long-running watcher or daemon never sends an expired one.
pub struct Bearer {
    auth: Auth,
    current: std::sync::Mutex<(String, std::time::Instant)>,
}

impl Bearer {
    pub fn new(auth: Auth) -> Result<Bearer, AuthError> {
        let token = auth.bearer()?;
        Ok(Bearer {
            auth,
            current: std::sync::Mutex::new((token, std::time::Instant::now())),
        })
    }

    /// Whether a token minted at `minted` with lifetime `ttl` is due for renewal at `now`.
    pub fn due(minted: std::time::Instant, now: std::time::Instant, ttl: Duration) -> bool {
        now.saturating_duration_since(minted) >= ttl / 2
    }

    pub fn token(&self) -> Result<String, AuthError> {
        let mut cur = self.current.lock().expect("token lock");
        if let Auth::Mint(m) = &self.auth {
            let now = std::time::Instant::now();
            if Self::due(cur.1, now, m.ttl) {
                *cur = (self.auth.bearer()?, now);
            }
        }
        Ok(cur.0.clone())
    }
}

/// Retry policy.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
    /// A `Retry-After` longer than this is a lockout: fail instead of waiting.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(200),
            max: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(90),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter.
    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max);
        let mut b = [0u8; 4];
        let _ = getrandom::fill(&mut b);
        let frac = f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX);
        cap.mul_f64(0.5 + frac / 2.0)
    }
}

/// The transport: one reqwest client, the limiter and the counters.
pub struct Transport {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    pub(super) bearer: Bearer,
    pub(super) limiter: Arc<Limiter>,
    pub(super) priority: super::Priority,
    pub(super) retry: RetryPolicy,
    pub(super) stats: Arc<Stats>,
}

impl Transport {
    /// Send a request and return the parsed JSON body (Null for an empty body).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        action: &Action,
    ) -> Result<Value, GatewayError> {
        let res = self.send_with_retries(method, path, body, action).await;
        if res.is_err() {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        res
    }

    async fn send_with_retries(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        action: &Action,
    ) -> Result<Value, GatewayError> {
        let url = format!("{}{}", self.base, path);
        let idempotent = method != Method::POST || action.query;
        let mut attempt = 0;
        loop {
            let admitted = self.limiter.acquire_as(self.priority).await;
            if method == Method::GET || action.query {
                self.stats.reads.fetch_add(1, Ordering::Relaxed);
            } else {
                self.stats.writes.fetch_add(1, Ordering::Relaxed);
            }
            let mut req = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(self.bearer.token()?);
            if let Some(b) = body {
                req = req.json(b);
            }
            tracing::debug!(%method, path, "request");
            let result = req.send().await;
            if result.is_ok() {
                self.limiter.answered(admitted).await;
            }
            let retryable_after: Option<Duration> = match result {
                Err(e) => {
                    // A refused connection never reached the gateway: always safe to retry.
                    let safe = e.is_connect() || idempotent;
                    if safe && attempt + 1 < self.retry.attempts {
                        Some(self.retry.backoff(attempt))
                    } else {
                        return Err(GatewayError::Unreachable {
                            url: self.base.clone(),
                            reason: error_chain(&e),
                        });
                    }
                }
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    let bytes = resp.bytes().await.map_err(|e| GatewayError::Unreachable {
                        url: self.base.clone(),
                        reason: error_chain(&e),
                    })?;
                    if status.is_success() {
                        if bytes.is_empty() {
                            return Ok(Value::Null);
                        }
                        return serde_json::from_slice(&bytes).map_err(|e| {
                            GatewayError::Protocol {
                                action: action.text.clone(),
                                reason: format!("body is not JSON ({e})"),
                            }
                        });
                    }
                    let message = message_of(&bytes);
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        let after = Duration::from_secs(retry_after.unwrap_or(1));
                        if after > self.retry.max_retry_after || attempt + 1 >= self.retry.attempts
                        {
                            return Err(GatewayError::RateLimited {
                                action: action.text.clone(),
                                retry_after: after.as_secs(),
                            });
                        }
                        self.limiter.pause(after);
                        Some(after + self.retry.backoff(0))
                    } else if status.is_server_error()
                        && idempotent
                        && attempt + 1 < self.retry.attempts
                    {
                        Some(self.retry.backoff(attempt))
                    } else {
                        return Err(classify(status, message, action));
                    }
                }
            };
            let wait = retryable_after.expect("set when retrying");
            attempt += 1;
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tracing::info!(action = %action.text, attempt, ?wait, "retrying gateway request");
            tokio::time::sleep(wait).await;
        }
    }
}

fn classify(status: StatusCode, message: String, action: &Action) -> GatewayError {
    match status.as_u16() {
        401 => GatewayError::Unauthorized {
            action: action.text.clone(),
            message,
        },
        403 => GatewayError::Forbidden {
            action: action.text.clone(),
            message,
        },
        s => GatewayError::Api {
            action: action.text.clone(),
            kind: action.kind,
            name: action.name.clone(),
            status: s,
            message,
        },
    }
}

/// The gateway's message: `{"detail": ...}` on most routes, `{"message": ...}` on gateway
/// routes; pydantic detail lists become `field: msg; ...`.
pub fn message_of(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        return text
            .chars()
            .take(300)
            .collect::<String>()
            .trim()
            .to_string();
    };
    let pick = v.get("detail").or_else(|| v.get("message")).unwrap_or(&v);
    match pick {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                let loc = i
                    .get("loc")
                    .and_then(Value::as_array)
                    .map(|l| {
                        l.iter()
                            .filter(|p| p.as_str() != Some("body"))
                            .map(|p| p.to_string().trim_matches('"').to_string())
                            .collect::<Vec<_>>()
                            .join(".")
                    })
                    .unwrap_or_default();
                let msg = i.get("msg").and_then(Value::as_str).unwrap_or("invalid");
                if loc.is_empty() {
                    msg.to_string()
                } else {
                    format!("{loc}: {msg}")
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        Value::Object(o) => o
            .get("message")
            .and_then(Value::as_str)
            .map(|m| match o.get("reason_code").and_then(Value::as_str) {
                Some(code) => format!("{m} ({code})"),
                None => m.to_string(),
            })
            .unwrap_or_else(|| pick.to_string()),
        other => other.to_string(),
    }
}

/// The most specific cause ("tcp connect error: Connection refused (os error 111)").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut last = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        last = inner.to_string();
        src = inner.source();
    }
    if e.to_string().contains("timed out") || last.contains("timed out") {
        return format!("timed out ({last})");
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_from_every_error_shape() {
        assert_eq!(
            message_of(br#"{"detail":"Tool not found: x"}"#),
            "Tool not found: x"
        );
        assert_eq!(
            message_of(br#"{"message":"Gateway name already exists"}"#),
            "Gateway name already exists"
        );
        assert_eq!(
            message_of(br#"{"detail":[{"loc":["body","tool","name"],"msg":"bad name"},{"loc":["body","url"],"msg":"bad url"}]}"#),
            "tool.name: bad name; url: bad url"
        );
        assert_eq!(
            message_of(br#"{"detail":{"message":"Root URI rejected by policy","reason_code":"file_disabled"}}"#),
            "Root URI rejected by policy (file_disabled)"
        );
        assert_eq!(
            message_of(b"Internal Server Error"),
            "Internal Server Error"
        );
    }

    #[test]
    fn minted_tokens_are_renewed_at_half_their_lifetime() {
        let t0 = std::time::Instant::now();
        let ttl = Duration::from_secs(900);
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(!Bearer::due(t0, at(0), ttl));
        assert!(!Bearer::due(t0, at(449), ttl));
        assert!(Bearer::due(t0, at(450), ttl));
        assert!(Bearer::due(t0, at(5000), ttl));

        let mint = |ttl| {
            Bearer::new(Auth::Mint(super::super::MintOptions {
                user: "admin@example.com".into(),
                jwt_secret: "k".into(),
                audience: "a".into(),
                issuer: "i".into(),
                ttl,
            }))
            .unwrap()
        };
        let long = mint(Duration::from_secs(900));
        assert_eq!(
            long.token().unwrap(),
            long.token().unwrap(),
            "kept while fresh"
        );
        let short = mint(Duration::ZERO);
        assert_ne!(
            short.token().unwrap(),
            short.token().unwrap(),
            "renewed when due"
        );
        let given = Bearer::new(Auth::Token("t".into())).unwrap();
        assert_eq!(given.token().unwrap(), "t");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        for a in 0..10 {
            let b = p.backoff(a);
            assert!(b <= p.max, "{b:?}");
            assert!(b >= p.base.mul_f64(0.5).min(p.max), "{b:?}");
        }
    }
}

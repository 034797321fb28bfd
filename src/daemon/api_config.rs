//! `daemon.yaml`'s `api`: who may call the HTTP API (named bearer tokens with a role, read from
//! `{env:}` or `{file:}` references, never written inline), the request body limit, the rate
//! limit per client, whether `/status` and `/metrics` are open without a token, which
//! environment serves the ContextForge-compatible routes, and gateways without a desired-state
//! source (export and import only), connected like a Git environment's `gateway:`.

use std::path::Path;

use serde::Deserialize;

use super::trust::{Connection, Trust};
use crate::core::access::{ApiToken, MIN_TOKEN_LEN, Role};
use crate::engine::environment::SecretRef;

/// The request body limit unless `api.body_limit` says otherwise (an import of a large export).
pub const DEFAULT_BODY_LIMIT: usize = 32 * 1024 * 1024;
/// Finished jobs are kept this long unless `api.job_max_age` says otherwise.
pub const DEFAULT_JOB_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// API requests allowed per client address and minute unless `api.rate_limit` says otherwise.
pub const DEFAULT_API_RATE: u32 = 600;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    #[serde(default)]
    tokens: Vec<RawToken>,
    #[serde(default)]
    body_limit: Option<RawSize>,
    #[serde(default)]
    rate_limit: Option<u32>,
    #[serde(default)]
    open_status: bool,
    #[serde(default)]
    open_metrics: bool,
    #[serde(default)]
    compat_environment: Option<String>,
    /// Finished import jobs are removed after this (`"24h"`, `"30m"`, seconds).
    #[serde(default)]
    job_max_age: Option<super::config::RawDuration>,
    #[serde(default)]
    gateways: Vec<RawGateway>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    role: Role,
    token: SecretRef,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    name: String,
    gateway: Connection,
}

/// `1048576`, `"512KB"`, `"10MB"`, `"1GB"` (powers of 1024).
#[derive(Deserialize)]
#[serde(untagged)]
enum RawSize {
    Bytes(u64),
    Text(String),
}

/// The checked `api` section.
#[derive(Debug, Clone)]
pub struct ApiSpec {
    pub tokens: Vec<ApiToken>,
    pub body_limit: usize,
    /// Requests per client address and minute (0: unlimited).
    pub per_minute: u32,
    pub open_status: bool,
    pub open_metrics: bool,
    /// The environment (or source-less gateway) behind the ContextForge-compatible routes.
    pub compat_environment: Option<String>,
    /// Finished import jobs are removed this long after they finished.
    pub job_max_age: std::time::Duration,
    pub gateways: Vec<GatewaySpec>,
}

impl Default for ApiSpec {
    fn default() -> Self {
        ApiSpec {
            tokens: Vec::new(),
            body_limit: DEFAULT_BODY_LIMIT,
            per_minute: DEFAULT_API_RATE,
            open_status: false,
            open_metrics: false,
            compat_environment: None,
            job_max_age: DEFAULT_JOB_MAX_AGE,
            gateways: Vec::new(),
        }
    }
}

/// A gateway without a desired-state source: export and import only.
#[derive(Debug, Clone)]
pub struct GatewaySpec {
    pub name: String,
    /// Its connection, with `daemon.yaml`'s rules for secret references.
    pub trust: Trust,
}

fn size(raw: RawSize) -> Result<u64, String> {
    let text = match raw {
        RawSize::Bytes(b) => return Ok(b),
        RawSize::Text(t) => t,
    };
    let t = text.trim();
    let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = t[digits.len()..].to_ascii_uppercase();
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a size (e.g. 1048576, 512KB, 10MB)"))?;
    let mult: u64 = match unit.as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return Err(format!("'{text}': unknown unit (B, KB, MB, GB)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{text}' is too large"))
}

/// Check `api`. `names` are the environments' names; problems go to `problem(pointer, reason)`.
pub(super) fn check(
    raw: RawApi,
    names: &[String],
    base: &Path,
    secrets_dir: Option<&Path>,
    lookup: &dyn Fn(&str) -> Option<String>,
    problem: &mut dyn FnMut(String, String),
) -> ApiSpec {
    let mut spec = ApiSpec {
        open_status: raw.open_status,
        open_metrics: raw.open_metrics,
        per_minute: raw.rate_limit.unwrap_or(DEFAULT_API_RATE),
        ..ApiSpec::default()
    };
    if let Some(b) = raw.body_limit {
        match size(b) {
            Ok(n) if n < 1024 => problem("/api/body_limit".into(), "must be at least 1KB".into()),
            Ok(n) => spec.body_limit = usize::try_from(n).unwrap_or(usize::MAX),
            Err(why) => problem("/api/body_limit".into(), why),
        }
    }
    for (i, t) in raw.tokens.into_iter().enumerate() {
        let at = format!("/api/tokens/{i}");
        if let Err(why) = super::config::check_name(&t.name) {
            problem(format!("{at}/name"), format!("'{}' {why}", t.name));
        }
        if spec.tokens.iter().any(|o| o.name == t.name) {
            problem(format!("{at}/name"), format!("'{}' is used twice", t.name));
        }
        match super::config::read_secret(&t.token, base, lookup) {
            Ok(v) if v.chars().count() < MIN_TOKEN_LEN => problem(
                format!("{at}/token"),
                format!("is shorter than {MIN_TOKEN_LEN} characters"),
            ),
            Ok(v) => {
                let token = ApiToken::new(&t.name, t.role, &v);
                if let Some(o) = spec.tokens.iter().find(|o| o.same_value(&token)) {
                    problem(
                        format!("{at}/token"),
                        format!("has the same value as token '{}'", o.name),
                    );
                }
                spec.tokens.push(token);
            }
            Err(why) => problem(format!("{at}/token"), why),
        }
    }
    for (i, g) in raw.gateways.into_iter().enumerate() {
        let at = format!("/api/gateways/{i}");
        if let Err(why) = super::config::check_name(&g.name) {
            problem(format!("{at}/name"), format!("'{}' {why}", g.name));
        }
        if spec.gateways.iter().any(|o| o.name == g.name) || names.contains(&g.name) {
            problem(
                format!("{at}/name"),
                format!(
                    "'{}' is already the name of a gateway or an environment",
                    g.name
                ),
            );
        }
        if g.gateway.secret.is_none() {
            problem(
                format!("{at}/gateway/secret"),
                "is required: export decrypts the gateway's stored credentials with it".into(),
            );
        }
        let (trust, problems) = Trust::checked(g.gateway, Vec::new(), true, secrets_dir, lookup);
        for (pointer, reason) in problems {
            problem(format!("{at}/gateway{pointer}"), reason);
        }
        if let Some(trust) = trust {
            spec.gateways.push(GatewaySpec {
                name: g.name,
                trust,
            });
        }
    }
    match raw.job_max_age {
        None => {}
        Some(super::config::RawDuration::Seconds(s)) => {
            spec.job_max_age = std::time::Duration::from_secs(s);
        }
        Some(super::config::RawDuration::Text(t)) => match super::schedule::parse_duration(&t) {
            Ok(d) => spec.job_max_age = d,
            Err(why) => problem("/api/job_max_age".into(), why),
        },
    }
    if let Some(c) = raw.compat_environment {
        if !names.contains(&c) && !spec.gateways.iter().any(|g| g.name == c) {
            problem(
                "/api/compat_environment".into(),
                format!("'{c}' is neither an environment nor one of api.gateways"),
            );
        }
        spec.compat_environment = Some(c);
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_units() {
        assert_eq!(size(RawSize::Bytes(5)).unwrap(), 5);
        assert_eq!(size(RawSize::Text("512KB".into())).unwrap(), 512 * 1024);
        assert_eq!(size(RawSize::Text("10 MB".into())).unwrap(), 10 << 20);
        assert_eq!(size(RawSize::Text("2g".into())).unwrap(), 2 << 30);
        assert!(size(RawSize::Text("ten".into())).is_err());
        assert!(size(RawSize::Text("10TB".into())).is_err());
    }
}

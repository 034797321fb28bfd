//! daemon.yaml's `ui:` section: the web UI's tokens (each with a role), the key its session
//! cookies are signed with and how long a session lasts.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::config::RawDuration;
use super::schedule::parse_duration;
use crate::engine::environment::SecretRef;
use crate::http::ui::auth::{Role, Token, Tokens};

/// How long a UI session lasts unless `ui.session_ttl` says otherwise.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUi {
    #[serde(default)]
    tokens: Vec<RawToken>,
    #[serde(default)]
    session_key: Option<SecretRef>,
    #[serde(default)]
    session_ttl: Option<RawDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    role: String,
    token: SecretRef,
}

/// The checked `ui:` section.
#[derive(Debug, Clone)]
pub struct UiSpec {
    pub tokens: Tokens,
    /// None: a key generated into the state directory (`ui-session.key`, 0600).
    pub session_key: Option<String>,
    pub session_ttl: Duration,
}

/// Check `ui:`; every problem goes to `p` as (JSON pointer, reason).
pub(super) fn check(
    raw: RawUi,
    base: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    p: &mut dyn FnMut(String, String),
) -> UiSpec {
    let mut tokens = Vec::new();
    for (i, t) in raw.tokens.into_iter().enumerate() {
        let at = format!("/ui/tokens/{i}");
        let Some(role) = Role::parse(&t.role) else {
            p(
                format!("{at}/role"),
                format!("'{}' is not viewer, operator or admin", t.role),
            );
            continue;
        };
        if t.name.trim().is_empty() {
            p(format!("{at}/name"), "is required".into());
        }
        match super::config::read_secret(&t.token, base, lookup) {
            Ok(value) if value.len() >= 16 => tokens.push(Token {
                name: t.name,
                role,
                value,
            }),
            Ok(_) => p(
                format!("{at}/token"),
                "is shorter than 16 characters".into(),
            ),
            Err(e) => p(format!("{at}/token"), e),
        }
    }
    let session_key =
        raw.session_key
            .and_then(|k| match super::config::read_secret(&k, base, lookup) {
                Ok(v) if v.len() >= 32 => Some(v),
                Ok(_) => {
                    p(
                        "/ui/session_key".into(),
                        "is shorter than 32 characters".into(),
                    );
                    None
                }
                Err(e) => {
                    p("/ui/session_key".into(), e);
                    None
                }
            });
    let session_ttl = match raw.session_ttl {
        None => DEFAULT_SESSION_TTL,
        Some(RawDuration::Seconds(s)) => Duration::from_secs(s),
        Some(RawDuration::Text(t)) => parse_duration(&t).unwrap_or_else(|why| {
            p("/ui/session_ttl".into(), why);
            DEFAULT_SESSION_TTL
        }),
    };
    if session_ttl.is_zero() {
        p("/ui/session_ttl".into(), "must be longer than zero".into());
    }
    UiSpec {
        tokens: Tokens(tokens),
        session_key,
        session_ttl,
    }
}

//! daemon.yaml's `ui:` section: the web UI is on, the key its session cookies are signed with
//! and how long a session lasts (who may log in: `api.tokens`).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::config::RawDuration;
use super::schedule::parse_duration;
use crate::engine::environment::SecretRef;

/// How long a UI session lasts unless `ui.session_ttl` says otherwise.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUi {
    #[serde(default)]
    session_key: Option<SecretRef>,
    #[serde(default)]
    session_ttl: Option<RawDuration>,
}

/// The checked `ui:` section.
#[derive(Debug, Clone)]
pub struct UiSpec {
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
        session_key,
        session_ttl,
    }
}

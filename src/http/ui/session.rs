//! The web UI's signed session cookie and its CSRF token.
//!
//! A session is `v1.<caller hex>.<role>.<expiry unix>.<nonce hex>.<HMAC-SHA256 hex>`: the
//! server keeps nothing but the key and the nonces of sessions logged out before their
//! expiry. The CSRF token of a session is an HMAC of its nonce under the same key with another
//! label, so a form post carries proof that it came from a page served to that session.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::core::digest::{self, Keyed};

use super::auth::{Caller, role_of};

/// The cookie's name.
pub const COOKIE: &str = "mcp_gitops_session";

/// A checked session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub caller: Caller,
    pub expires: u64,
    pub nonce: String,
}

/// Signs and checks sessions; remembers the ones logged out until they expire.
pub struct Sessions {
    key: Vec<u8>,
    pub ttl_secs: u64,
    revoked: Mutex<HashMap<String, u64>>,
}

impl Sessions {
    pub fn new(key: &[u8], ttl_secs: u64) -> Sessions {
        Sessions {
            key: key.to_vec(),
            ttl_secs,
            revoked: Mutex::new(HashMap::new()),
        }
    }

    fn mac(&self, label: &str, body: &str) -> String {
        Keyed::new(&self.key)
            .update(label.as_bytes())
            .update(&[0])
            .update(body.as_bytes())
            .hex()
    }

    /// A new session for `caller`, valid `ttl_secs` from `now`: the cookie's value.
    pub fn issue(&self, caller: &Caller, now: u64) -> String {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).expect("the system's random source");
        let body = format!(
            "v1.{}.{}.{}.{}",
            digest::hex(caller.name.as_bytes()),
            caller.role.label(),
            now + self.ttl_secs,
            digest::hex(&nonce)
        );
        let mac = self.mac("session", &body);
        format!("{body}.{mac}")
    }

    /// The session a cookie value stands for, if it is signed by this key, unexpired at `now`
    /// and not logged out.
    pub fn check(&self, value: &str, now: u64) -> Option<Session> {
        let (body, mac) = value.rsplit_once('.')?;
        let want = Keyed::new(&self.key)
            .update(b"session")
            .update(&[0])
            .update(body.as_bytes());
        if !want.verify(&digest::unhex(mac)?) {
            return None;
        }
        let mut parts = body.split('.');
        let (v, name, role, exp, nonce) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        if v != "v1" || parts.next().is_some() {
            return None;
        }
        let expires: u64 = exp.parse().ok()?;
        if now >= expires || self.revoked.lock().expect("revoked").contains_key(nonce) {
            return None;
        }
        Some(Session {
            caller: Caller {
                name: String::from_utf8(digest::unhex(name)?).ok()?,
                role: role_of(role)?,
            },
            expires,
            nonce: nonce.to_string(),
        })
    }

    /// The CSRF token every form of this session carries.
    pub fn csrf(&self, s: &Session) -> String {
        self.mac("csrf", &s.nonce)
    }

    /// Whether `token` is this session's CSRF token (constant time).
    pub fn csrf_ok(&self, s: &Session, token: &str) -> bool {
        digest::constant_time_eq(self.csrf(s).as_bytes(), token.as_bytes())
    }

    /// Log a session out: its cookie is refused from now on (forgotten once expired).
    pub fn revoke(&self, s: &Session, now: u64) {
        let mut r = self.revoked.lock().expect("revoked");
        r.retain(|_, exp| *exp > now);
        r.insert(s.nonce.clone(), s.expires);
    }
}

/// The `Set-Cookie` value for a new session. `Secure` only when served over TLS (the daemon's
/// listener speaks plain HTTP on loopback; put a TLS proxy in front for anything else).
pub fn set_cookie(value: &str, ttl_secs: u64, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/; Max-Age={ttl_secs}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
}

/// The session cookie's value among a request's `Cookie` headers.
pub fn from_headers(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::ui::auth::Role;

    fn alice() -> Caller {
        Caller {
            name: "alice".into(),
            role: Role::Operator,
        }
    }

    #[test]
    fn a_session_is_signed_expires_and_can_be_logged_out() {
        let s = Sessions::new(b"key-one", 3600);
        let v = s.issue(&alice(), 1000);
        let got = s.check(&v, 1001).expect("valid");
        assert_eq!(got.caller, alice());
        assert_eq!(got.expires, 4600);
        assert!(s.check(&v, 4600).is_none(), "expired");
        // Another key, a changed role, a cut value: refused.
        assert!(Sessions::new(b"key-two", 3600).check(&v, 1001).is_none());
        let forged = v.replacen(".operator.", ".admin.", 1);
        assert!(s.check(&forged, 1001).is_none());
        assert!(s.check(&v[..v.len() - 2], 1001).is_none());
        assert!(s.check("", 1001).is_none());
        s.revoke(&got, 1002);
        assert!(s.check(&v, 1003).is_none(), "logged out");
        let other = s.issue(&alice(), 1000);
        assert!(s.check(&other, 1003).is_some(), "only that session");
    }

    #[test]
    fn the_csrf_token_belongs_to_its_session() {
        let s = Sessions::new(b"key", 60);
        let a = s.check(&s.issue(&alice(), 0), 1).unwrap();
        let b = s.check(&s.issue(&alice(), 0), 1).unwrap();
        assert!(s.csrf_ok(&a, &s.csrf(&a)));
        assert!(!s.csrf_ok(&a, &s.csrf(&b)));
        assert!(!s.csrf_ok(&a, ""));
    }

    #[test]
    fn cookies_are_http_only_and_strict() {
        let c = set_cookie("v", 60, false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"));
        assert!(set_cookie("v", 60, true).ends_with("; Secure"));
        let mut h = axum::http::HeaderMap::new();
        h.append(
            axum::http::header::COOKIE,
            "a=1; mcp_gitops_session=abc.def".parse().unwrap(),
        );
        assert_eq!(from_headers(&h).as_deref(), Some("abc.def"));
    }
}

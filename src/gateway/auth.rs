//! Credentials for the gateway's REST API: a bearer token, or a short-lived admin JWT minted
//! from the gateway's `JWT_SECRET_KEY` (HS256). Basic auth is refused by the API, so it is
//! refused here with a clear message.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header, encode};
use serde::Serialize;

/// How to authenticate.
#[derive(Clone)]
pub enum Auth {
    /// A bearer token as given (`--token`, `MCPGATEWAY_BEARER_TOKEN`).
    Token(String),
    /// Mint an unrestricted admin token for `user` from the gateway's JWT secret.
    Mint(MintOptions),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Auth::Token(*****)"),
            Auth::Mint(m) => write!(f, "Auth::Mint(user {})", m.user),
        }
    }
}

/// Claims for a minted token (FACTS §2.2).
#[derive(Clone)]
pub struct MintOptions {
    pub user: String,
    pub jwt_secret: String,
    pub audience: String,
    pub issuer: String,
    pub ttl: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error(
        "the gateway's REST API does not accept Basic auth; pass a bearer token (--token or MCPGATEWAY_BEARER_TOKEN) or mint one with --user and JWT_SECRET_KEY"
    )]
    BasicRefused,
    #[error(
        "no credentials for the gateway: pass --token (or MCPGATEWAY_BEARER_TOKEN), or --user with JWT_SECRET_KEY set"
    )]
    Missing,
    #[error("--user needs the gateway's JWT secret: set JWT_SECRET_KEY or pass --jwt-secret")]
    NoJwtSecret,
    #[error("cannot sign a token: {0}")]
    Sign(String),
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    email: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
    aud: &'a str,
    iss: &'a str,
    teams: Option<Vec<String>>,
    is_admin: bool,
    token_use: &'static str,
    user: UserClaim<'a>,
}

#[derive(Serialize)]
struct UserClaim<'a> {
    email: &'a str,
    full_name: &'static str,
    is_admin: bool,
    auth_provider: &'static str,
}

impl Auth {
    /// Pick the credentials from the flags, refusing Basic auth plainly.
    pub fn resolve(
        token: Option<String>,
        user: Option<String>,
        jwt_secret: Option<String>,
        audience: String,
        issuer: String,
    ) -> Result<Auth, AuthError> {
        if let Some(t) = token.filter(|t| !t.trim().is_empty()) {
            let t = t.trim();
            if t.len() > 6 && t[..6].eq_ignore_ascii_case("basic ") {
                return Err(AuthError::BasicRefused);
            }
            let t = t.strip_prefix("Bearer ").unwrap_or(t);
            return Ok(Auth::Token(t.to_string()));
        }
        match user {
            Some(user) if user.contains(':') => Err(AuthError::BasicRefused),
            Some(user) => Ok(Auth::Mint(MintOptions {
                user,
                jwt_secret: jwt_secret
                    .filter(|s| !s.is_empty())
                    .ok_or(AuthError::NoJwtSecret)?,
                audience,
                issuer,
                ttl: Duration::from_secs(15 * 60),
            })),
            None => Err(AuthError::Missing),
        }
    }

    /// The bearer token to send.
    pub fn bearer(&self) -> Result<String, AuthError> {
        match self {
            Auth::Token(t) => Ok(t.clone()),
            Auth::Mint(m) => mint(m),
        }
    }

    /// Who the requests are made as: the minted token's user, else the user a given token
    /// names (read, not verified: for `exported_by` and audit lines only).
    pub fn who(&self) -> Option<String> {
        match self {
            Auth::Token(t) => token_user(t),
            Auth::Mint(m) => Some(m.user.clone()),
        }
    }

    /// Who the requests are made as, when known.
    pub fn user(&self) -> Option<&str> {
        match self {
            Auth::Token(_) => None,
            Auth::Mint(m) => Some(&m.user),
        }
    }
}

fn token_user(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token
        .trim()
        .trim_start_matches("Bearer ")
        .split('.')
        .nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.pointer("/user/email")
        .or_else(|| v.get("email"))
        .or_else(|| v.get("sub"))
        .and_then(|s| s.as_str())
        .map(str::to_string)
}

/// Mint an HS256 admin token: `teams: null` + `is_admin: true` is the unrestricted scope
/// export, import and roots need.
pub fn mint(m: &MintOptions) -> Result<String, AuthError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut jti = [0u8; 16];
    getrandom::fill(&mut jti).map_err(|e| AuthError::Sign(e.to_string()))?;
    let claims = Claims {
        sub: &m.user,
        email: &m.user,
        iat: now,
        exp: now + m.ttl.as_secs(),
        jti: crate::core::digest::hex(&jti),
        aud: &m.audience,
        iss: &m.issuer,
        teams: None,
        is_admin: true,
        token_use: "api",
        user: UserClaim {
            email: &m.user,
            full_name: "mcp-gitops",
            is_admin: true,
            auth_provider: "api_token",
        },
    };
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(m.jwt_secret.as_bytes()),
    )
    .map_err(|e| AuthError::Sign(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_acts_is_the_minted_user_or_the_token_s_claims() {
        let minted = resolve(None, Some("ops@example.com"), Some("k")).unwrap();
        assert_eq!(minted.who().as_deref(), Some("ops@example.com"));
        let token = minted.bearer().unwrap();
        let given = resolve(Some(&format!("Bearer {token}")), None, None).unwrap();
        assert_eq!(given.who().as_deref(), Some("ops@example.com"));
        let opaque = resolve(Some("not-a-jwt"), None, None).unwrap();
        assert_eq!(opaque.who(), None);
    }

    fn resolve(
        token: Option<&str>,
        user: Option<&str>,
        secret: Option<&str>,
    ) -> Result<Auth, AuthError> {
        Auth::resolve(
            token.map(String::from),
            user.map(String::from),
            secret.map(String::from),
            "mcpgateway-api".into(),
            "mcpgateway".into(),
        )
    }

    #[test]
    fn basic_auth_is_refused_plainly() {
        assert_eq!(
            resolve(Some("Basic YTpi"), None, None).unwrap_err(),
            AuthError::BasicRefused
        );
        assert_eq!(
            resolve(None, Some("admin:changeme"), Some("s")).unwrap_err(),
            AuthError::BasicRefused
        );
    }

    #[test]
    fn token_wins_and_bearer_prefix_is_dropped() {
        match resolve(Some("Bearer abc"), Some("u@x"), None).unwrap() {
            Auth::Token(t) => assert_eq!(t, "abc"),
            other => panic!("{other:?}"),
        }
        assert_eq!(resolve(None, None, None).unwrap_err(), AuthError::Missing);
        assert_eq!(
            resolve(None, Some("u@x"), None).unwrap_err(),
            AuthError::NoJwtSecret
        );
    }

    #[test]
    fn minted_tokens_carry_the_admin_claims() {
        let auth = resolve(None, Some("admin@example.com"), Some("s3cret")).unwrap();
        let token = auth.bearer().unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.set_audience(&[crate::gateway::DEFAULT_JWT_AUDIENCE]);
        v.set_issuer(&[crate::gateway::DEFAULT_JWT_ISSUER]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(b"s3cret"),
            &v,
        )
        .unwrap();
        let c = data.claims;
        assert_eq!(c["sub"], "admin@example.com");
        assert_eq!(c["teams"], serde_json::Value::Null);
        assert_eq!(c["is_admin"], true);
        assert_eq!(c["jti"].as_str().unwrap().len(), 32);
        assert!(format!("{auth:?}").contains("admin@example.com"));
    }
}

//! Who may call the HTTP API: named bearer tokens, each with a role. Tokens are kept only as
//! SHA-256 digests and compared in constant time (every token is compared, whichever matches),
//! so neither the value nor which token was close leaks. Pure: `http::api::auth` calls it.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::core::digest::constant_time_eq;

/// What a caller may do; each role may do everything the ones before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Status and plans.
    Viewer,
    /// Also export, import, apply and reconcile.
    Operator,
    /// Also job cleanup.
    Admin,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may do what `needed` may.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// An authenticated caller: the token's name and role (never its value).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

/// One configured token. Its debug form shows the name and role only.
#[derive(Clone)]
pub struct ApiToken {
    pub name: String,
    pub role: Role,
    digest: [u8; 32],
}

impl ApiToken {
    pub fn new(name: &str, role: Role, value: &str) -> ApiToken {
        ApiToken {
            name: name.to_string(),
            role,
            digest: Sha256::digest(value.as_bytes()).into(),
        }
    }

    /// Whether two tokens have the same value.
    pub fn same_value(&self, other: &ApiToken) -> bool {
        constant_time_eq(&self.digest, &other.digest)
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiToken({}, {}, *****)", self.name, self.role)
    }
}

/// The shortest token accepted in `daemon.yaml`.
pub const MIN_TOKEN_LEN: usize = 16;

/// The caller a bearer token belongs to, if any. Every token is compared in constant time.
pub fn authenticate(tokens: &[ApiToken], given: &str) -> Option<Caller> {
    let d: [u8; 32] = Sha256::digest(given.as_bytes()).into();
    let mut found = None;
    for t in tokens {
        if constant_time_eq(&t.digest, &d) && found.is_none() {
            found = Some(Caller {
                name: t.name.clone(),
                role: t.role,
            });
        }
    }
    found
}

/// The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive).
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_include_the_ones_before() {
        assert!(Role::Admin.allows(Role::Operator));
        assert!(Role::Operator.allows(Role::Viewer));
        assert!(Role::Operator.allows(Role::Operator));
        assert!(!Role::Viewer.allows(Role::Operator));
        assert!(!Role::Operator.allows(Role::Admin));
    }

    #[test]
    fn a_token_authenticates_as_its_name_and_role_only() {
        let tokens = [
            ApiToken::new("ci", Role::Operator, "ci-token-0123456789"),
            ApiToken::new("dash", Role::Viewer, "dash-token-0123456789"),
        ];
        assert_eq!(
            authenticate(&tokens, "dash-token-0123456789"),
            Some(Caller {
                name: "dash".into(),
                role: Role::Viewer
            })
        );
        assert_eq!(
            authenticate(&tokens, "ci-token-0123456789").map(|c| c.role),
            Some(Role::Operator)
        );
        for wrong in [
            "",
            "ci-token-012345678",
            "ci-token-0123456789 ",
            "CI-TOKEN-0123456789",
        ] {
            assert_eq!(authenticate(&tokens, wrong), None, "{wrong:?}");
        }
        assert!(!format!("{:?}", tokens[0]).contains("ci-token"));
        assert!(tokens[0].same_value(&ApiToken::new("x", Role::Admin, "ci-token-0123456789")));
    }

    #[test]
    fn only_bearer_headers_carry_a_token() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer   abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("abc"), None);
    }
}

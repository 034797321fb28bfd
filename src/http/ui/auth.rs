//! Who may use the UI: a token from daemon.yaml, each with a role. The UI only needs
//! [`Authenticate`]; the API's token layer implements the same trait.

use crate::core::digest;

/// What a caller may do; each role includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Status and plans.
    Viewer,
    /// Export, import, apply, reconcile.
    Operator,
    /// Jobs cleanup.
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

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Whether this role includes `needed`.
    pub fn may(self, needed: Role) -> bool {
        self >= needed
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The token's name in daemon.yaml (never the token).
    pub name: String,
    pub role: Role,
}

/// Turns a presented token into a caller.
pub trait Authenticate: Send + Sync {
    fn authenticate(&self, token: &str) -> Option<Caller>;
}

/// One token of daemon.yaml.
#[derive(Clone)]
pub struct Token {
    pub name: String,
    pub role: Role,
    pub value: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({}, {})", self.name, self.role.label())
    }
}

/// daemon.yaml's tokens, compared in constant time (every one, whichever matches).
#[derive(Clone, Debug, Default)]
pub struct Tokens(pub Vec<Token>);

impl Authenticate for Tokens {
    fn authenticate(&self, token: &str) -> Option<Caller> {
        let mut found = None;
        for t in &self.0 {
            let same = digest::constant_time_eq(
                digest::sha256_hex(t.value.as_bytes()).as_bytes(),
                digest::sha256_hex(token.as_bytes()).as_bytes(),
            );
            if same && found.is_none() {
                found = Some(Caller {
                    name: t.name.clone(),
                    role: t.role,
                });
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_give_their_role_and_nothing_else_does() {
        let t = Tokens(vec![
            Token {
                name: "ci".into(),
                role: Role::Viewer,
                value: "tok-v".into(),
            },
            Token {
                name: "ops".into(),
                role: Role::Operator,
                value: "tok-o".into(),
            },
        ]);
        assert_eq!(t.authenticate("tok-o").unwrap().role, Role::Operator);
        assert_eq!(t.authenticate("tok-v").unwrap().name, "ci");
        assert!(t.authenticate("tok").is_none());
        assert!(t.authenticate("").is_none());
        assert!(Role::Admin.may(Role::Operator) && !Role::Viewer.may(Role::Operator));
        assert!(!format!("{:?}", t).contains("tok-o"));
    }
}

//! Who may use the UI: the API's tokens (`api.tokens` in daemon.yaml), each with a role; the UI
//! turns a token into a session ([`super::session`]) and never keeps the token.

pub use crate::core::access::{Caller, Role};

/// A role from its label (as a session records it).
pub fn role_of(label: &str) -> Option<Role> {
    [Role::Viewer, Role::Operator, Role::Admin]
        .into_iter()
        .find(|r| r.label() == label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_is_read_back_from_its_label() {
        for r in [Role::Viewer, Role::Operator, Role::Admin] {
            assert_eq!(role_of(r.label()), Some(r));
        }
        assert_eq!(role_of("root"), None);
    }
}

//! Is a key the gateway's own? One stored credential of the gateway (see
//! [`crate::gateway::info::sample_credential`]) is decrypted with it: a wrong key would
//! write credentials the gateway cannot read and export ones nobody can.

use crate::core::kind::Kind;
use crate::core::secrets::Secret;
use crate::gateway::info::sample_credential;
use crate::gateway::{Client, GatewayError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyCheck {
    /// The key decrypts the stored credential of this entity.
    Verified { kind: Kind, name: String },
    /// It does not.
    Mismatch { kind: Kind, name: String },
    /// The gateway holds no credential to check the key against (among the entities looked at).
    NothingToCheck,
}

impl KeyCheck {
    /// The one check, pure: `value` as the gateway stored it, under `key`.
    pub fn of(key: &Secret, kind: Kind, name: String, value: &str) -> KeyCheck {
        match key.decrypt_bytes(value) {
            Ok(_) => KeyCheck::Verified { kind, name },
            Err(_) => KeyCheck::Mismatch { kind, name },
        }
    }
}

/// Check `key` against the gateway behind `client`.
pub async fn check_key(client: &Client, key: &Secret) -> Result<KeyCheck, GatewayError> {
    Ok(match sample_credential(client).await? {
        Some((kind, name, value)) => KeyCheck::of(key, kind, name, &value),
        None => KeyCheck::NothingToCheck,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_right_key_verifies_and_another_is_a_mismatch() {
        let right = Secret::new("the-gateways-own-key");
        let wrong = Secret::new("some-other-key");
        let value = right
            .encrypt_headers(&[("Authorization".into(), "Bearer x".into())])
            .unwrap();
        assert_eq!(
            KeyCheck::of(&right, Kind::Tool, "t".into(), &value),
            KeyCheck::Verified {
                kind: Kind::Tool,
                name: "t".into()
            }
        );
        assert_eq!(
            KeyCheck::of(&wrong, Kind::Gateway, "g".into(), &value),
            KeyCheck::Mismatch {
                kind: Kind::Gateway,
                name: "g".into()
            }
        );
    }
}

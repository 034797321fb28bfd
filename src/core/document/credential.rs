//! An entity's credential set from outside its documents (the controller's
//! `spec.credentials`: a bearer token from a Secret key): encrypted with the documents' key at
//! once, so the plaintext never sits in a document.

use crate::core::document::validate::identity;
use crate::core::document::{Document, Entity};
use crate::core::kind::Kind;
use crate::core::secrets::{Credentials, Secret};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialError {
    #[error("{kind} cannot carry a credential: only tools and gateways do")]
    Unsupported { kind: &'static str },
    #[error("{kind} '{name}' is in none of the documents")]
    NoEntity { kind: &'static str, name: String },
    #[error("the token for {kind} '{name}' is empty")]
    Empty { kind: &'static str, name: String },
    #[error(
        "the token for {kind} '{name}' holds a control character (a line break?): it would not be a valid header"
    )]
    Control { kind: &'static str, name: String },
}

/// Set the `kind` entity `name` (matched as the gateway matches names) to send
/// `Authorization: Bearer <token>` upstream, encrypted with `key`. It replaces whatever
/// credential the documents gave it.
pub fn set_bearer(
    doc: &mut Document,
    kind: Kind,
    name: &str,
    token: &str,
    key: &Secret,
) -> Result<(), CredentialError> {
    let (plural, name_s) = (kind.plural(), name.to_string());
    if token.is_empty() {
        return Err(CredentialError::Empty {
            kind: plural,
            name: name_s,
        });
    }
    if token.chars().any(char::is_control) {
        return Err(CredentialError::Control {
            kind: plural,
            name: name_s,
        });
    }
    let value = key.encrypt(&Credentials::from_pairs([(
        "Authorization".to_string(),
        format!("Bearer {token}"),
    )]));
    let want = identity(kind, name);
    let slot = match kind {
        Kind::Tool => doc
            .entities
            .tools
            .iter_mut()
            .find(|t| identity(kind, t.key()) == want)
            .map(|t| (&mut t.auth_type, &mut t.auth_value)),
        Kind::Gateway => doc
            .entities
            .gateways
            .iter_mut()
            .find(|g| identity(kind, g.key()) == want)
            .map(|g| (&mut g.auth_type, &mut g.auth_value)),
        _ => return Err(CredentialError::Unsupported { kind: plural }),
    };
    let (auth_type, auth_value) = slot.ok_or(CredentialError::NoEntity {
        kind: plural,
        name: name_s,
    })?;
    *auth_type = Some("bearer".into());
    *auth_value = Some(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::document::{Gateway, Tool};

    fn doc() -> Document {
        let mut d = Document::default();
        d.entities.tools.push(Tool {
            name: "Weather API".into(),
            auth_type: Some("basic".into()),
            auth_value: Some("old".into()),
            ..Tool::default()
        });
        d.entities.gateways.push(Gateway {
            name: "peer".into(),
            ..Gateway::default()
        });
        d
    }

    #[test]
    fn the_token_is_set_encrypted_and_replaces_the_documents_credential() {
        let key = Secret::new("doc-key");
        let mut d = doc();
        set_bearer(&mut d, Kind::Tool, "weather-api", "s3cret", &key).unwrap();
        let t = &d.entities.tools[0];
        assert_eq!(t.auth_type.as_deref(), Some("bearer"));
        let v = t.auth_value.as_deref().unwrap();
        assert!(!v.contains("s3cret"));
        let creds = key.decrypt(v).unwrap();
        assert_eq!(creds.get("Authorization"), Some("Bearer s3cret"));
        set_bearer(&mut d, Kind::Gateway, "peer", "p", &key).unwrap();
        let g = &d.entities.gateways[0];
        assert_eq!(
            key.decrypt(g.auth_value.as_deref().unwrap())
                .unwrap()
                .get("Authorization"),
            Some("Bearer p")
        );
    }

    #[test]
    fn a_missing_entity_an_empty_or_multi_line_token_and_other_kinds_are_refused() {
        let key = Secret::new("k");
        let mut d = doc();
        let before = d.clone();
        assert!(matches!(
            set_bearer(&mut d, Kind::Tool, "nope", "t", &key),
            Err(CredentialError::NoEntity { .. })
        ));
        assert!(matches!(
            set_bearer(&mut d, Kind::Tool, "weather-api", "", &key),
            Err(CredentialError::Empty { .. })
        ));
        assert!(matches!(
            set_bearer(&mut d, Kind::Tool, "weather-api", "a\r\nX-Evil: 1", &key),
            Err(CredentialError::Control { .. })
        ));
        assert!(matches!(
            set_bearer(&mut d, Kind::Server, "s", "t", &key),
            Err(CredentialError::Unsupported { .. })
        ));
        assert_eq!(d, before, "a refused credential changes nothing");
    }
}

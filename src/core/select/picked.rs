//! Entities picked one by one (the web UI's checkboxes): `type:key` values, the key taken
//! exactly as it is, whatever it holds (`*`, `?`, `[`, `,`, `:`), never as a pattern.

use std::collections::BTreeSet;

use super::Key;
use crate::core::kind::{Kind, UnknownKind};

/// A picked value that names no entity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    #[error("{value:?} names no entity: write it as type:name, e.g. tools:weather-api")]
    NoKind { value: String },
    #[error("{value:?}: {source}")]
    Kind {
        value: String,
        #[source]
        source: UnknownKind,
    },
    #[error("nothing is selected")]
    Empty,
}

/// The keys of `type:key` values (`tools:a,b` is the one tool named `a,b`).
pub fn parse_picked<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeSet<Key>, PickError> {
    let mut out = BTreeSet::new();
    for value in values {
        let Some((kind, key)) = value.split_once(':').filter(|(_, k)| !k.is_empty()) else {
            return Err(PickError::NoKind {
                value: value.to_string(),
            });
        };
        let kind: Kind = kind.parse().map_err(|source| PickError::Kind {
            value: value.to_string(),
            source,
        })?;
        out.insert((kind, key.to_string()));
    }
    if out.is_empty() {
        return Err(PickError::Empty);
    }
    Ok(out)
}

/// The `type:key` value of a key (what [`parse_picked`] reads back).
pub fn picked_value(kind: Kind, key: &str) -> String {
    format!("{}:{key}", kind.plural())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picked_value_is_one_exact_key() {
        let got = parse_picked([
            "servers:ops,core",
            "tools:weather_*",
            "roots:file:///a",
            "tools:weather_*",
        ])
        .unwrap();
        let want: BTreeSet<Key> = [
            (Kind::Server, "ops,core".to_string()),
            (Kind::Tool, "weather_*".to_string()),
            (Kind::Root, "file:///a".to_string()),
        ]
        .into();
        assert_eq!(got, want);
        assert_eq!(
            parse_picked(["weather"]).unwrap_err(),
            PickError::NoKind {
                value: "weather".into()
            }
        );
        assert_eq!(
            parse_picked(["tools:"]).unwrap_err(),
            PickError::NoKind {
                value: "tools:".into()
            }
        );
        assert!(matches!(
            parse_picked(["widgets:x"]).unwrap_err(),
            PickError::Kind { .. }
        ));
        assert_eq!(parse_picked([]).unwrap_err(), PickError::Empty);
        assert_eq!(
            parse_picked([picked_value(Kind::Resource, "https://x/a?b=[1]").as_str()]).unwrap(),
            [(Kind::Resource, "https://x/a?b=[1]".to_string())].into()
        );
    }
}

//! Tags: ContextForge returns `{"id","label"}` objects for most kinds and plain strings for
//! resources, but accepts only strings on create. A [`Tag`] reads both and writes a string.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A tag label.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The gateway's normalised form: trimmed, lower-cased, spaces become `-`. Filters match on
    /// this form.
    pub fn normalized(&self) -> String {
        normalize(&self.0)
    }
}

/// Normalise a tag the way the gateway does before storing its id (`_` becomes `-` too).
pub fn normalize(s: &str) -> String {
    s.trim()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-")
        .replace('_', "-")
}

impl From<&str> for Tag {
    fn from(s: &str) -> Self {
        Tag(s.to_string())
    }
}

impl Serialize for Tag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Plain(String),
            Object {
                #[serde(default)]
                id: Option<String>,
                #[serde(default)]
                label: Option<String>,
            },
        }
        let repr = Repr::deserialize(d).map_err(|_| {
            serde::de::Error::custom("a tag must be a string (or an {\"id\", \"label\"} object)")
        })?;
        match repr {
            Repr::Plain(s) => Ok(Tag(s)),
            Repr::Object { id, label } => label
                .filter(|l| !l.is_empty())
                .or(id)
                .map(Tag)
                .ok_or_else(|| serde::de::Error::custom("tag object needs an id or a label")),
        }
    }
}

impl JsonSchema for Tag {
    fn schema_name() -> Cow<'static, str> {
        "Tag".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A tag: a string, or ContextForge's {id, label} object (read only).",
            "anyOf": [
                {"type": "string"},
                {"type": "object", "properties": {"id": {"type": "string"}, "label": {"type": "string"}}}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_strings_and_objects_and_writes_strings() {
        let tags: Vec<Tag> =
            serde_json::from_str(r#"["a", {"id":"public-api","label":"Public API"}, {"id":"x"}]"#)
                .unwrap();
        assert_eq!(
            tags,
            vec![Tag::from("a"), Tag::from("Public API"), Tag::from("x")]
        );
        assert_eq!(
            serde_json::to_string(&tags).unwrap(),
            r#"["a","Public API","x"]"#
        );
        assert!(serde_json::from_str::<Tag>("{}").is_err());
        assert!(serde_json::from_str::<Tag>("3").is_err());
    }

    #[test]
    fn normalizes_like_the_gateway() {
        assert_eq!(Tag::from("  Public  API ").normalized(), "public-api");
        assert_eq!(normalize("weather"), "weather");
        assert_eq!(normalize("Under_Score"), "under-score");
    }
}

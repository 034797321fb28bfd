//! What was read of an entity's content, remembered by gateway, kind, entity id and the
//! version (and update time) the gateway reports for the entity. A lookup answers only
//! while the gateway still reports the same version and update time, so an entity that
//! changed is always read again. Pure: the file behind it is the engine's business.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::core::kind::Kind;

/// The format written; another number is not read.
pub const FORMAT: u32 = 1;

/// One remembered content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub gateway: String,
    pub kind: Kind,
    pub id: String,
    #[serde(default)]
    pub version: Option<i64>,
    #[serde(default)]
    pub updated_at: Option<String>,
    pub content: String,
}

/// The serialized form.
#[derive(Debug, Serialize, Deserialize)]
struct File {
    format: u32,
    entries: Vec<Entry>,
}

type Key = (String, Kind, String);

/// Remembered contents.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Contents {
    entries: HashMap<Key, Entry>,
}

/// The gateway URL as a key: without a trailing slash.
fn gateway_key(gateway: &str) -> String {
    gateway.trim_end_matches('/').to_string()
}

impl Contents {
    /// The content remembered for this entity at exactly this version and update time. An
    /// entity for which the gateway reports neither is never answered: nothing would tell
    /// a change.
    pub fn get(
        &self,
        gateway: &str,
        kind: Kind,
        id: &str,
        version: Option<i64>,
        updated_at: Option<&str>,
    ) -> Option<&str> {
        if version.is_none() && updated_at.is_none() {
            return None;
        }
        let e = self
            .entries
            .get(&(gateway_key(gateway), kind, id.to_string()))?;
        (e.version == version && e.updated_at.as_deref() == updated_at)
            .then_some(e.content.as_str())
    }

    /// Remember `content` as read at this version and update time (replacing what was
    /// remembered of the entity). Returns whether anything changed.
    pub fn put(
        &mut self,
        gateway: &str,
        kind: Kind,
        id: &str,
        version: Option<i64>,
        updated_at: Option<&str>,
        content: &str,
    ) -> bool {
        if version.is_none() && updated_at.is_none() {
            return false;
        }
        let entry = Entry {
            gateway: gateway_key(gateway),
            kind,
            id: id.to_string(),
            version,
            updated_at: updated_at.map(str::to_string),
            content: content.to_string(),
        };
        let key = (entry.gateway.clone(), kind, entry.id.clone());
        if self.entries.get(&key) == Some(&entry) {
            return false;
        }
        self.entries.insert(key, entry);
        true
    }

    /// Forget this gateway's entities of `kind` whose ids are not in `live` (deleted ones).
    /// Returns whether anything was forgotten.
    pub fn retain_live(&mut self, gateway: &str, kind: Kind, live: &[&str]) -> bool {
        let g = gateway_key(gateway);
        let before = self.entries.len();
        let live: std::collections::HashSet<&str> = live.iter().copied().collect();
        self.entries
            .retain(|(eg, ek, id), _| *eg != g || *ek != kind || live.contains(id.as_str()));
        self.entries.len() != before
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// JSON, entries in a stable order.
    pub fn to_json(&self) -> Vec<u8> {
        let mut entries: Vec<Entry> = self.entries.values().cloned().collect();
        entries.sort_by(|a, b| (&a.gateway, a.kind, &a.id).cmp(&(&b.gateway, b.kind, &b.id)));
        serde_json::to_vec(&File {
            format: FORMAT,
            entries,
        })
        .unwrap_or_default()
    }

    /// Read what [`Contents::to_json`] wrote; anything else is an error (the caller starts
    /// empty).
    pub fn from_json(bytes: &[u8]) -> Result<Contents, String> {
        let f: File = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if f.format != FORMAT {
            return Err(format!("format {} (expected {FORMAT})", f.format));
        }
        let entries = f
            .entries
            .into_iter()
            .map(|e| ((e.gateway.clone(), e.kind, e.id.clone()), e))
            .collect();
        Ok(Contents { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GW: &str = "http://127.0.0.1:4444";

    #[test]
    fn answers_only_at_the_same_version_and_update_time() {
        let mut c = Contents::default();
        let t = Some("2026-12-02T10:00:00");
        assert!(c.put(GW, Kind::Resource, "a1", Some(3), t, "hello"));
        assert_eq!(c.get(GW, Kind::Resource, "a1", Some(3), t), Some("hello"));
        // The trailing slash of the URL does not matter.
        assert_eq!(
            c.get(&format!("{GW}/"), Kind::Resource, "a1", Some(3), t),
            Some("hello")
        );
        // Changed since: another version or another update time.
        assert_eq!(c.get(GW, Kind::Resource, "a1", Some(4), t), None);
        assert_eq!(
            c.get(
                GW,
                Kind::Resource,
                "a1",
                Some(3),
                Some("2026-12-02T10:00:01")
            ),
            None
        );
        assert_eq!(c.get(GW, Kind::Resource, "a1", Some(3), None), None);
        // Another gateway, kind or id.
        assert_eq!(
            c.get("http://other:1", Kind::Resource, "a1", Some(3), t),
            None
        );
        assert_eq!(c.get(GW, Kind::Prompt, "a1", Some(3), t), None);
        assert_eq!(c.get(GW, Kind::Resource, "a2", Some(3), t), None);
        // The same again changes nothing; a newer read replaces.
        assert!(!c.put(GW, Kind::Resource, "a1", Some(3), t, "hello"));
        assert!(c.put(GW, Kind::Resource, "a1", Some(4), t, "bye"));
        assert_eq!(c.get(GW, Kind::Resource, "a1", Some(3), t), None);
        assert_eq!(c.get(GW, Kind::Resource, "a1", Some(4), t), Some("bye"));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn nothing_to_tell_a_change_by_is_never_remembered() {
        let mut c = Contents::default();
        assert!(!c.put(GW, Kind::Resource, "a1", None, None, "x"));
        assert_eq!(c.get(GW, Kind::Resource, "a1", None, None), None);
        assert!(c.is_empty());
    }

    #[test]
    fn deleted_entities_are_forgotten() {
        let mut c = Contents::default();
        c.put(GW, Kind::Resource, "a1", Some(1), None, "x");
        c.put(GW, Kind::Resource, "a2", Some(1), None, "y");
        c.put("http://other:1", Kind::Resource, "a3", Some(1), None, "z");
        assert!(c.retain_live(GW, Kind::Resource, &["a2"]));
        assert_eq!(c.get(GW, Kind::Resource, "a1", Some(1), None), None);
        assert_eq!(c.get(GW, Kind::Resource, "a2", Some(1), None), Some("y"));
        assert_eq!(
            c.get("http://other:1", Kind::Resource, "a3", Some(1), None),
            Some("z")
        );
        assert!(!c.retain_live(GW, Kind::Resource, &["a2"]));
    }

    #[test]
    fn round_trips_and_refuses_anything_else() {
        let mut c = Contents::default();
        c.put(
            GW,
            Kind::Resource,
            "a1",
            Some(2),
            Some("t"),
            "line\n\"quoted\"",
        );
        let back = Contents::from_json(&c.to_json()).unwrap();
        assert_eq!(back, c);
        assert!(Contents::from_json(b"{not json").is_err());
        assert!(Contents::from_json(br#"{"format":99,"entries":[]}"#).is_err());
        assert!(Contents::from_json(br#"{"format":1,"entries":[{"id":1}]}"#).is_err());
    }
}

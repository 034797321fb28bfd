//! What changed between two versions of a document, entity by entity (header fields such as
//! `exported_at` are ignored), and how that reads in a commit message:
//! `backup: +2 tools (a, b), ~1 server (ai-tools), -1 prompt (old)`.
//!
//! Only names, URIs and field names are ever shown; values (credentials included) never are.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::core::document::validate::identity;
use crate::core::document::{Document, Entities};
use crate::core::kind::Kind;
use crate::core::verb::Verb;

/// One entity that differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityChange {
    pub op: Verb,
    pub kind: Kind,
    /// Name, or URI for resources and roots.
    pub key: String,
    /// Top-level fields that differ (for `Changed`).
    pub fields: Vec<String>,
}

/// Every entity that differs, in a stable order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub items: Vec<EntityChange>,
}

/// Names listed per group in a summary line before "and N more".
const NAMES_SHOWN: usize = 5;

/// Entities by (kind, identity) → (key as written, JSON value).
fn index(e: &Entities) -> BTreeMap<(Kind, String), (String, Value)> {
    let v = serde_json::to_value(e).expect("entities serialise");
    let mut out = BTreeMap::new();
    for kind in Kind::ALL {
        let field = kind.key_field();
        for item in v
            .get(kind.plural())
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = item[field].as_str().unwrap_or_default().to_string();
            out.insert((kind, identity(kind, &key)), (key, item.clone()));
        }
    }
    out
}

fn differing_fields(old: &Value, new: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (a, b) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut fields: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    fields.sort();
    fields.dedup();
    fields
}

/// Compare the entities of `old` (None: there was no previous version) with `new`'s.
pub fn between(old: Option<&Entities>, new: &Entities) -> Changes {
    let before = old.map(index).unwrap_or_default();
    let after = index(new);
    let mut items = Vec::new();
    for (id, (key, value)) in &after {
        match before.get(id) {
            None => items.push(EntityChange {
                op: Verb::Create,
                kind: id.0,
                key: key.clone(),
                fields: vec![],
            }),
            Some((_, old)) if old != value => items.push(EntityChange {
                op: Verb::Update,
                kind: id.0,
                key: key.clone(),
                fields: differing_fields(old, value),
            }),
            Some(_) => {}
        }
    }
    for (id, (key, _)) in &before {
        if !after.contains_key(id) {
            items.push(EntityChange {
                op: Verb::Delete,
                kind: id.0,
                key: key.clone(),
                fields: vec![],
            });
        }
    }
    let display = |k: Kind| Kind::DISPLAY.iter().position(|d| *d == k);
    items.sort_by(|a, b| (a.op, display(a.kind), &a.key).cmp(&(b.op, display(b.kind), &b.key)));
    Changes { items }
}

/// Compare two documents' entities.
pub fn between_documents(old: Option<&Document>, new: &Document) -> Changes {
    between(old.map(|d| &d.entities), &new.entities)
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn count(&self, op: Verb) -> usize {
        self.items.iter().filter(|c| c.op == op).count()
    }

    /// `+2 tools (a, b), ~1 server (ai-tools), -1 prompt (old)`; `no changes` when empty.
    pub fn summary(&self) -> String {
        let mut groups = Vec::new();
        for op in [Verb::Create, Verb::Update, Verb::Delete] {
            for kind in Kind::DISPLAY {
                let names: Vec<&str> = self
                    .items
                    .iter()
                    .filter(|c| c.op == op && c.kind == kind)
                    .map(|c| c.key.as_str())
                    .collect();
                if names.is_empty() {
                    continue;
                }
                let mut shown = names[..names.len().min(NAMES_SHOWN)].join(", ");
                if names.len() > NAMES_SHOWN {
                    shown.push_str(&format!(" and {} more", names.len() - NAMES_SHOWN));
                }
                groups.push(format!(
                    "{}{} ({shown})",
                    op.mark(),
                    kind.count(names.len())
                ));
            }
        }
        if groups.is_empty() {
            "no changes".to_string()
        } else {
            groups.join(", ")
        }
    }

    /// One line per entity: `+ tool a`, `~ server ai-tools: description, tool_ids`.
    pub fn lines(&self) -> Vec<String> {
        self.items
            .iter()
            .map(|c| {
                let mut l = format!("{} {} {}", c.op.mark(), c.kind, c.key);
                if !c.fields.is_empty() {
                    l.push_str(&format!(": {}", c.fields.join(", ")));
                }
                l
            })
            .collect()
    }

    /// A commit message: `{prefix}: {summary}`, a blank line, then every entity's line.
    pub fn message(&self, prefix: &str) -> String {
        let mut m = format!("{prefix}: {}\n", self.summary());
        if !self.is_empty() {
            m.push('\n');
            for l in self.lines() {
                m.push_str(&l);
                m.push('\n');
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::document::test_doc;

    #[test]
    fn added_changed_removed_read_as_a_commit_subject() {
        let old = test_doc(
            r#"{"tools":[{"name":"keep","url":"https://k.example.com"}],
                "servers":[{"name":"ai-tools","tool_ids":["keep"]}],
                "prompts":[{"name":"old","template":"x"}]}"#,
        );
        let new = test_doc(
            r#"{"tools":[{"name":"keep","url":"https://k.example.com"},
                         {"name":"a","url":"https://a.example.com"},
                         {"name":"b","url":"https://b.example.com"}],
                "servers":[{"name":"ai-tools","tool_ids":["keep","a"],"description":"d"}]}"#,
        );
        let c = between_documents(Some(&old), &new);
        assert_eq!(
            c.summary(),
            "+2 tools (a, b), ~1 server (ai-tools), -1 prompt (old)"
        );
        assert_eq!(
            c.lines(),
            vec![
                "+ tool a",
                "+ tool b",
                "~ server ai-tools: description, tool_ids",
                "- prompt old"
            ]
        );
        assert!(
            c.message("backup")
                .starts_with("backup: +2 tools (a, b), ~1 server")
        );
        assert!(between_documents(Some(&new), &new).is_empty());
        assert_eq!(between_documents(Some(&new), &new).summary(), "no changes");
    }

    #[test]
    fn long_groups_are_cut_and_header_fields_ignored() {
        let tools: Vec<String> = (0..8)
            .map(|i| format!(r#"{{"name":"t{i}","url":"https://x.example.com"}}"#))
            .collect();
        let mut new = test_doc(&format!(r#"{{"tools":[{}]}}"#, tools.join(",")));
        assert_eq!(
            between_documents(None, &new).summary(),
            "+8 tools (t0, t1, t2, t3, t4 and 3 more)"
        );
        let old = new.clone();
        new.exported_at = Some("2030-01-01T00:00:00Z".into());
        new.source_gateway = Some("http://elsewhere".into());
        assert!(between_documents(Some(&old), &new).is_empty());
    }
}

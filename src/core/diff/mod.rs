//! Pure diff of a desired document against the live gateway (both in document form): which
//! entities to create, which fields of which entities to update, in dependency order. No I/O.
//!
//! Only what the desired document says is compared ("the document owns what it states"):
//! server-side fields never produce a diff, and neither do tag shapes, association order,
//! `127.0.0.1` written as `localhost`, or prompt `required` flags (the gateway recomputes them
//! from the template). Credentials are compared decrypted, never as ciphertext.

mod normalize;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::core::document::Document;
use crate::core::kind::Kind;
use crate::core::secrets::Credentials;

pub use normalize::{Comparable, comparable};

/// One field that differs.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum FieldChange {
    /// A scalar or object value changed.
    Value {
        field: String,
        from: Value,
        to: Value,
    },
    /// A set-like list changed (tags, server links).
    List {
        field: String,
        added: Vec<String>,
        removed: Vec<String>,
    },
    /// A credential changed; values are never shown.
    Sensitive { field: String },
}

impl FieldChange {
    pub fn field(&self) -> &str {
        match self {
            FieldChange::Value { field, .. }
            | FieldChange::List { field, .. }
            | FieldChange::Sensitive { field } => field,
        }
    }
}

impl fmt::Display for FieldChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldChange::Value { field, from, to } => write!(f, "{field}: {from} -> {to}"),
            FieldChange::List {
                field,
                added,
                removed,
            } => {
                write!(f, "{field}")?;
                if !added.is_empty() {
                    write!(f, " +[{}]", added.join(", "))?;
                }
                if !removed.is_empty() {
                    write!(f, " -[{}]", removed.join(", "))?;
                }
                Ok(())
            }
            FieldChange::Sensitive { field } => write!(f, "{field}: (sensitive value changed)"),
        }
    }
}

/// What to do with one entity.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Create,
    Update { changes: Vec<FieldChange> },
    Unchanged,
}

/// One entity's planned operation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    pub kind: Kind,
    /// Name, or URI for resources and roots.
    pub key: String,
    #[serde(flatten)]
    pub op: Op,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let changes: Vec<String>;
        let op = match &self.op {
            Op::Create => LineOp::Create,
            Op::Unchanged => LineOp::Unchanged,
            Op::Update { changes: c } => {
                changes = c.iter().map(ToString::to_string).collect();
                LineOp::Update(&changes)
            }
        };
        f.write_str(&plan_line(self.kind, &self.key, op))
    }
}

/// What one plan line says of an entity.
#[derive(Clone, Copy, Debug)]
pub enum LineOp<'a> {
    Create,
    /// The field changes, each already rendered.
    Update(&'a [String]),
    Delete,
    Skip(&'a str),
    Unchanged,
}

/// The one rendering of a plan line, as `plan` prints it: `+ create`, `~ update` with the
/// field changes, `- delete`, `  skip` with the reason, `  unchanged`.
pub fn plan_line(kind: Kind, key: &str, op: LineOp<'_>) -> String {
    match op {
        LineOp::Create => format!("+ create {kind} {key}"),
        LineOp::Update(changes) => format!("~ update {kind} {key}: {}", changes.join("; ")),
        LineOp::Delete => format!("- delete {kind} {key}"),
        LineOp::Skip(why) => format!("  skip {kind} {key}: {why}"),
        LineOp::Unchanged => format!("  unchanged {kind} {key}"),
    }
}

/// Decrypted credentials on each side, keyed by (kind, key); absent means "none".
pub type CredentialMap = BTreeMap<(Kind, String), Credentials>;

/// The live side: the gateway's configuration in document form, with its decrypted
/// credentials.
pub struct Live<'a> {
    pub document: &'a Document,
    pub credentials: &'a CredentialMap,
}

/// The desired side.
pub struct Desired<'a> {
    pub document: &'a Document,
    pub credentials: &'a CredentialMap,
}

/// A plan: every desired entity's operation, in dependency order (roots, gateways, tools,
/// resources, prompts, servers).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
}

impl Plan {
    /// Entities that need a write.
    pub fn writes(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.op != Op::Unchanged)
    }

    pub fn is_empty(&self) -> bool {
        self.writes().next().is_none()
    }
}

/// Compare desired against live.
pub fn diff(desired: &Desired<'_>, live: &Live<'_>) -> Plan {
    let mut changes = Vec::new();
    for kind in Kind::ALL {
        // Both sides are brought to comparable form at once, the live one on another thread
        // (one kind at a time, so that only one kind's comparable forms are held).
        let (live_items, want_list) = std::thread::scope(|s| {
            let live_side = s.spawn(|| {
                comparable(live.document, kind)
                    .into_iter()
                    .map(|c| (c.identity.clone(), c))
                    .collect::<BTreeMap<String, Comparable>>()
            });
            let want = comparable(desired.document, kind);
            (live_side.join().expect("diff worker"), want)
        });
        for want in want_list {
            let key = (kind, want.key.clone());
            let op = match live_items.get(&want.identity) {
                None => Op::Create,
                Some(have) => {
                    let mut fc = normalize::field_changes(&want, have);
                    let live_key = (kind, have.key.clone());
                    let (d, l) = (
                        desired.credentials.get(&key),
                        live.credentials.get(&live_key),
                    );
                    if want.manages_auth && d != l {
                        fc.push(FieldChange::Sensitive {
                            field: "auth_value".into(),
                        });
                    }
                    if fc.is_empty() {
                        Op::Unchanged
                    } else {
                        Op::Update { changes: fc }
                    }
                }
            };
            changes.push(Change {
                kind,
                key: want.key,
                op,
            });
        }
    }
    Plan { changes }
}

#[cfg(test)]
mod tests;

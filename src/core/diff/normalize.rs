//! Entities in comparable form: the fields a document states, normalised the way the gateway
//! stores them.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value};

use super::FieldChange;
use crate::core::document::validate::identity;
use crate::core::document::{Document, Entity};
use crate::core::kind::Kind;

/// One entity, ready to compare.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparable {
    pub key: String,
    /// The key in the form the gateway compares names (slug) or URIs (as written).
    pub identity: String,
    /// Scalar and object fields the document states.
    pub fields: BTreeMap<String, Value>,
    /// Set-like fields (tags, server links), in identity form.
    pub lists: BTreeMap<String, BTreeSet<String>>,
    /// The document states credentials for this entity.
    pub manages_auth: bool,
}

/// Fields that are the gateway's business, never compared (the key is compared as identity).
const NOT_COMPARED: &[&str] = &["id", "capabilities", "auth_value", "arguments"];
/// Set-like fields and the kind their members name.
const LISTS: &[(&str, Option<Kind>)] = &[
    ("tags", None),
    ("tool_ids", Some(Kind::Tool)),
    ("resource_uris", Some(Kind::Resource)),
    ("prompt_names", Some(Kind::Prompt)),
];

/// Every entity of a kind in comparable form.
pub fn comparable(doc: &Document, kind: Kind) -> Vec<Comparable> {
    let e = &doc.entities;
    match kind {
        Kind::Tool => each(&e.tools),
        Kind::Gateway => each(&e.gateways),
        Kind::Server => each(&e.servers),
        Kind::Prompt => each(&e.prompts),
        Kind::Resource => each(&e.resources),
        Kind::Root => each(&e.roots),
    }
}

fn each<E: Entity + Serialize>(items: &[E]) -> Vec<Comparable> {
    items.iter().map(one).collect()
}

fn one<E: Entity + Serialize>(item: &E) -> Comparable {
    let kind = E::KIND;
    let Value::Object(obj) = serde_json::to_value(item).expect("entities serialise") else {
        unreachable!("entities are objects")
    };
    // A document that names an auth type but carries no value (ContextForge's full export)
    // does not manage credentials: nothing about them is compared.
    let manages_auth = obj.get("auth_value").is_some_and(|v| !v.is_null());
    let mut fields = BTreeMap::new();
    let mut lists = BTreeMap::new();
    for (field, value) in obj {
        let is_key = field == kind.key_field();
        if is_key || NOT_COMPARED.contains(&field.as_str()) || value.is_null() {
            continue;
        }
        if let Some((_, member)) = LISTS.iter().find(|(f, _)| *f == field) {
            let set = value
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(|s| match member {
                            Some(k) => identity(*k, s),
                            None => crate::core::document::tag::normalize(s),
                        })
                        .collect()
                })
                .unwrap_or_default();
            lists.insert(field, set);
            continue;
        }
        let value = match field.as_str() {
            "url" => Value::String(loopback(value.as_str().unwrap_or_default())),
            "request_type" | "transport" => {
                Value::String(value.as_str().unwrap_or_default().to_ascii_uppercase())
            }
            // The gateway strips surrounding whitespace from the strings it is given (a YAML
            // block scalar's final newline, say).
            "description" | "template" | "displayName" | "jsonpath_filter" => match value {
                Value::String(s) => Value::String(s.trim().to_string()),
                other => other,
            },
            "input_schema" if kind == Kind::Prompt => prompt_arguments(&value),
            // The gateway stores an empty tool input schema as the typed default.
            "input_schema" if value.as_object().is_some_and(|o| o.is_empty()) => {
                serde_json::json!({"type": "object", "properties": {}})
            }
            _ => value,
        };
        fields.insert(field, value);
    }
    Comparable {
        key: item.key().to_string(),
        identity: identity(kind, item.key()),
        fields,
        lists,
        manages_auth,
    }
}

/// The gateway stores `127.0.0.1` as `localhost`.
fn loopback(url: &str) -> String {
    url.replacen("://127.0.0.1", "://localhost", 1)
}

/// Prompt arguments as `{name: description}`: the gateway recomputes `required` from the
/// template, so it is not compared.
fn prompt_arguments(schema: &Value) -> Value {
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .map(|(k, v)| {
                    let d = v.get("description").cloned().unwrap_or(Value::from(""));
                    (k.clone(), if d.is_null() { Value::from("") } else { d })
                })
                .collect::<Map<String, Value>>()
        })
        .unwrap_or_default();
    Value::Object(props)
}

/// Field-level differences of `want` against `have`, over what `want` states.
pub fn field_changes(want: &Comparable, have: &Comparable) -> Vec<FieldChange> {
    let mut out = Vec::new();
    for (field, value) in &want.fields {
        if field == "auth_type" && !want.manages_auth {
            continue;
        }
        let current = have.fields.get(field).cloned().unwrap_or(Value::Null);
        if &current != value && !(empty(value) && empty(&current)) {
            out.push(FieldChange::Value {
                field: field.clone(),
                from: current,
                to: value.clone(),
            });
        }
    }
    for (field, set) in &want.lists {
        let empty_set = BTreeSet::new();
        let current = have.lists.get(field).unwrap_or(&empty_set);
        let added: Vec<String> = set.difference(current).cloned().collect();
        let removed: Vec<String> = current.difference(set).cloned().collect();
        if !added.is_empty() || !removed.is_empty() {
            out.push(FieldChange::List {
                field: field.clone(),
                added,
                removed,
            });
        }
    }
    out
}

/// `{}`, `[]`, `""` and null all mean "nothing".
fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

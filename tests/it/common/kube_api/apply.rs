//! Patches: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch (treated as
//! a JSON merge patch: no patch directives, lists replaced whole) and a simplified server-side
//! apply.
//!
//! Field ownership, simplified against the real API server:
//! - a field is a path of object keys to a leaf; **lists are atomic** (a list is one field, owned
//!   whole, replaced whole: no `listType=map` merging by key, no `listType=set`); empty objects
//!   are not owned;
//! - every write records ownership: an apply for its `fieldManager` (operation `Apply`), any other
//!   write for its `fieldManager` or else the client's user agent up to its first `/` (operation
//!   `Update`, which takes the fields whose values it changed from everyone else and drops the
//!   fields it removed from everyone);
//! - an apply conflicts (409) when another manager owns one of its fields with a different value
//!   (same path only); `force=true` takes the field over; the same value is shared ownership;
//! - fields an apply manager applied before and omits now are removed from the object, unless
//!   another manager also owns them or something below them;
//! - the `status` subresource and the main resource are owned separately (`subresource` in
//!   `managedFields`), and `metadata.managedFields` is rendered with `fieldsV1` as nested `f:`
//!   keys (list contents are not described).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

/// A field: object keys from the root.
pub type Path = Vec<String>;

/// Per object: (manager, subresource, "Apply" or "Update") → the fields it owns.
pub type Managers = BTreeMap<(String, String, String), BTreeSet<Path>>;

/// Paths no one owns: identity and server-set metadata.
fn system(p: &Path) -> bool {
    match p.first().map(String::as_str) {
        Some("apiVersion" | "kind") => true,
        Some("metadata") => matches!(
            p.get(1).map(String::as_str),
            Some(
                "name"
                    | "namespace"
                    | "resourceVersion"
                    | "uid"
                    | "creationTimestamp"
                    | "generation"
                    | "managedFields"
                    | "deletionTimestamp"
                    | "selfLink"
            )
        ),
        _ => false,
    }
}

fn leaves(v: &Value, prefix: &mut Path, out: &mut BTreeSet<Path>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                prefix.push(k.clone());
                leaves(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            if !prefix.is_empty() && !system(prefix) {
                out.insert(prefix.clone());
            }
        }
    }
}

pub fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn set(v: &mut Value, path: &[String], value: Value) {
    let mut cur = v;
    for k in &path[..path.len() - 1] {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        cur = cur
            .as_object_mut()
            .unwrap()
            .entry(k.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.insert(path[path.len() - 1].clone(), value);
    }
}

fn remove(v: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for k in parents {
        match cur.get_mut(k) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(last);
    }
}

fn related(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn fields(v: &Value) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    leaves(v, &mut Vec::new(), &mut out);
    out
}

/// Give `p` to `who` alone: no one else owns it, its parents or its children.
fn take(managers: &mut Managers, who: &(String, String, String), p: &Path) {
    for (m, owned) in managers.iter_mut() {
        if m != who {
            owned.retain(|q| !related(p, q));
        }
    }
}

/// Record a non-apply write from `old` to `new` by `manager` on `sub` ("" or "status").
pub fn record_update(old: &Value, new: &Value, manager: &str, sub: &str, managers: &mut Managers) {
    let (before, after) = (fields(old), fields(new));
    for p in before.difference(&after) {
        for owned in managers.values_mut() {
            owned.remove(p);
        }
    }
    let me = (manager.to_string(), sub.to_string(), "Update".to_string());
    for p in after.iter().filter(|p| get(old, p) != get(new, p)) {
        take(managers, &me, p);
        managers.entry(me.clone()).or_default().insert(p.clone());
    }
    managers.retain(|_, s| !s.is_empty());
}

/// Apply `applied` to `live` for `manager` on `sub` ("" or "status"). Err: the conflicts.
pub fn apply(
    live: &mut Value,
    applied: &Value,
    manager: &str,
    sub: &str,
    force: bool,
    managers: &mut Managers,
    in_scope: &dyn Fn(&Path) -> bool,
) -> Result<(), Vec<String>> {
    let mut new = fields(applied);
    new.retain(|p| in_scope(p));
    let me = (manager.to_string(), sub.to_string(), "Apply".to_string());
    let mut conflicts = Vec::new();
    for (who, owned) in managers.iter() {
        if *who == me {
            continue;
        }
        for p in new.iter().filter(|p| owned.contains(*p)) {
            if get(live, p) != get(applied, p) {
                conflicts.push(format!("conflict with \"{}\": .{}", who.0, p.join(".")));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    let old = managers.remove(&me).unwrap_or_default();
    for p in old.difference(&new) {
        if !managers
            .values()
            .any(|s| s.iter().any(|q| q.starts_with(p)))
        {
            remove(live, p);
        }
    }
    for p in &new {
        if get(live, p) != get(applied, p) {
            take(managers, &me, p);
        }
        set(live, p, get(applied, p).cloned().unwrap_or(Value::Null));
    }
    managers.retain(|_, s| !s.is_empty());
    if !new.is_empty() {
        managers.insert(me, new);
    }
    Ok(())
}

/// `metadata.managedFields` for the apply managers.
pub fn managed_fields(managers: &Managers, api_version: &str, time: &str) -> Value {
    let entries: Vec<Value> = managers
        .iter()
        .map(|((manager, sub, operation), paths)| {
            let mut fields = Value::Object(Map::new());
            for p in paths {
                let keys: Vec<String> = p.iter().map(|k| format!("f:{k}")).collect();
                set(&mut fields, &keys, json!({}));
            }
            let mut e = json!({
                "manager": manager, "operation": operation, "apiVersion": api_version,
                "time": time, "fieldsType": "FieldsV1", "fieldsV1": fields,
            });
            if !sub.is_empty() {
                e["subresource"] = json!(sub);
            }
            e
        })
        .collect();
    Value::Array(entries)
}

/// The patch types a PATCH request's content type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/json-patch+json" => Some(PatchType::Json),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }
}

/// A merge, strategic or JSON patch applied to `doc`.
pub fn patch(doc: &mut Value, kind: PatchType, body: &Value) -> Result<(), String> {
    match kind {
        PatchType::Merge | PatchType::Strategic => {
            json_patch::merge(doc, body);
            Ok(())
        }
        PatchType::Json => {
            let p: json_patch::Patch =
                serde_json::from_value(body.clone()).map_err(|e| format!("bad JSON patch: {e}"))?;
            json_patch::patch(doc, &p).map_err(|e| format!("JSON patch failed: {e}"))
        }
        PatchType::Apply => Err("apply is not a plain patch".into()),
    }
}

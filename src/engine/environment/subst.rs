//! `${VAR}` substitution inside parsed values, and masking of what was substituted.
//!
//! Files are parsed first and variables are substituted inside string values (and object
//! keys) only, so a value can never change a document's structure: a newline or a quote in it
//! stays part of the one string it lands in. Every substituted string is recorded with its
//! JSON pointer; output shows `${VAR}` at those places, and only there.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::EnvError;
use crate::core::diff::FieldChange;
use crate::core::document::{self, validate::identity};
use crate::core::kind::Kind;

/// One string that substitution changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Substituted {
    /// Where, as a JSON pointer into the parsed file.
    pub pointer: String,
    /// As written (`https://${HOST}/v1`).
    pub template: String,
    /// What it became.
    pub value: String,
}

/// Why substitution failed, at a JSON pointer of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubstError {
    Unset {
        pointer: String,
        var: String,
    },
    /// A substituted object key names a key the object already has.
    DuplicateKey {
        pointer: String,
        key: String,
    },
}

/// Expand `${VAR}` in `s` from `lookup`; `$${` escapes. `Ok(None)`: nothing to expand.
/// `Err(var)`: `var` is not set.
pub fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, String> {
    if !s.contains("${") {
        return Ok(None);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('$') {
            out.push_str(&rest[..i - 1]);
            out.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let Some(end) = rest[i..].find('}') else {
            out.push_str(&rest[i..]);
            rest = "";
            break;
        };
        let var = &rest[i + 2..i + end];
        out.push_str(&lookup(var).ok_or_else(|| var.to_string())?);
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(Some(out))
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Substitute in every string and key of `v` (at `pointer`), except below the pointers
/// `skip` accepts; record each substituted string in `out`.
pub fn substitute(
    v: &mut Value,
    pointer: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    skip: &dyn Fn(&str) -> bool,
    out: &mut Vec<Substituted>,
) -> Result<(), SubstError> {
    if skip(pointer) {
        return Ok(());
    }
    let unset = |var| SubstError::Unset {
        pointer: pointer.to_string(),
        var,
    };
    match v {
        Value::String(s) => {
            if let Some(value) = expand(s, lookup).map_err(unset)? {
                if value != *s {
                    out.push(Substituted {
                        pointer: pointer.to_string(),
                        template: s.clone(),
                        value: value.clone(),
                    });
                }
                *s = value;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute(item, &format!("{pointer}/{i}"), lookup, skip, out)?;
            }
        }
        Value::Object(map) => {
            let mut keyed = Map::with_capacity(map.len());
            for (key, mut item) in std::mem::take(map) {
                let at = format!("{pointer}/{}", escape(&key));
                let key = expand(&key, lookup)
                    .map_err(|var| SubstError::Unset {
                        pointer: at.clone(),
                        var,
                    })?
                    .unwrap_or(key);
                substitute(
                    &mut item,
                    &format!("{pointer}/{}", escape(&key)),
                    lookup,
                    skip,
                    out,
                )?;
                if keyed.insert(key.clone(), item).is_some() {
                    return Err(SubstError::DuplicateKey { pointer: at, key });
                }
            }
            *map = keyed;
        }
        _ => {}
    }
    Ok(())
}

/// Substitute `${VAR}` from `lookup` inside the strings and keys of `value` (parsed from
/// `file`), except below the pointers `skip` accepts. Returns what was substituted, where.
pub fn substitute_value(
    value: &mut Value,
    file: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    skip: &dyn Fn(&str) -> bool,
) -> Result<Vec<Substituted>, EnvError> {
    let mut out = Vec::new();
    substitute(value, "", lookup, skip, &mut out).map_err(|e| match e {
        SubstError::Unset { pointer, var } => EnvError::Unset {
            file: file.to_string(),
            pointer: Some(pointer).filter(|p| !p.is_empty()),
            var,
        },
        SubstError::DuplicateKey { pointer, key } => EnvError::DuplicateKey {
            file: file.to_string(),
            pointer,
            key,
        },
    })?;
    Ok(out)
}

/// The settings of `mcp-gitops.yaml` that say how to reach and authenticate to the gateway:
/// an inherited base's are never used, so never substituted (nor required).
const CONNECTION: &[&str] = &[
    "gateway",
    "token",
    "user",
    "jwt_secret",
    "secret",
    "gateway_secret",
];

pub(super) fn connection_setting(pointer: &str) -> bool {
    let top = pointer.trim_start_matches('/');
    let top = top.split('/').next().unwrap_or_default();
    pointer.starts_with('/') && CONNECTION.contains(&top)
}

/// A document file's text, parsed, then `${VAR}` substituted in its strings.
pub(super) fn document_value(
    name: &str,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(Value, Vec<Substituted>), EnvError> {
    let mut raw = document::parse_value(text, None, name)?;
    let used = substitute_value(&mut raw, name, lookup, &|_| false)?;
    Ok((raw, used))
}

/// The key of entity `index` of `kind` in a raw document value.
pub(super) fn raw_key(raw: &Value, kind: Kind, index: usize) -> Option<String> {
    let item = raw.get("entities")?.get(kind.plural())?.get(index)?;
    let field = kind.key_field();
    item.get(field)?.as_str().map(str::to_string)
}

/// A substituted string inside an entity.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Place {
    /// Within the entity: `/url`, `/headers/X-Env`, `/tags/0`.
    pointer: String,
    template: String,
    value: String,
}

/// Where substituted values sit in the desired entities, to show them as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Masks(BTreeMap<(Kind, String), Vec<Place>>);

impl Masks {
    /// Record `s` (a pointer into a document file) when it points into an entity:
    /// `/entities/<kind>/<index>/...`; `key` gives that entity's key.
    pub fn record(&mut self, s: &Substituted, key: &dyn Fn(Kind, usize) -> Option<String>) {
        let mut parts = s.pointer.splitn(5, '/').skip(1);
        let (Some("entities"), Some(plural), Some(index)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        let (Some(kind), Ok(index)) = (
            Kind::ALL.into_iter().find(|k| k.plural() == plural),
            index.parse::<usize>(),
        ) else {
            return;
        };
        let (Some(rest), Some(key)) = (parts.next(), key(kind, index)) else {
            return;
        };
        self.0
            .entry((kind, identity(kind, &key)))
            .or_default()
            .push(Place {
                pointer: format!("/{rest}"),
                template: s.template.clone(),
                value: s.value.clone(),
            });
    }

    /// Add another environment's places (a base's): this one's replace theirs per entity
    /// and pointer.
    pub fn inherit(&mut self, base: &Masks) {
        for (k, places) in &base.0 {
            let mine = self.0.entry(k.clone()).or_default();
            for p in places {
                if !mine.iter().any(|m| m.pointer == p.pointer) {
                    mine.push(p.clone());
                }
            }
        }
    }

    /// Forget the places of entity `key` that a JSON merge `patch` replaces or removes.
    pub fn forget_patched(&mut self, key: &(Kind, String), patch: &Value) {
        let Some(places) = self.0.get_mut(key) else {
            return;
        };
        places.retain(|p| {
            let mut at = patch;
            for token in p.pointer.split('/').skip(1) {
                let token = token.replace("~1", "/").replace("~0", "~");
                match at.as_object().and_then(|o| o.get(&token)) {
                    None => return true,
                    Some(v) => at = v,
                }
            }
            false
        });
    }

    /// Keep only the places whose value the merged entities still hold there (a patch may
    /// have replaced or removed it).
    pub fn retain_held(&mut self, entities: &BTreeMap<(Kind, String), Value>) {
        self.0.retain(|k, places| {
            let entity = entities.get(k);
            places.retain(|p| {
                entity
                    .and_then(|e| e.pointer(&p.pointer))
                    .and_then(Value::as_str)
                    == Some(p.value.as_str())
            });
            !places.is_empty()
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A change of the desired entity (`kind`, `key`) with substituted values shown as
    /// written, where they were substituted.
    pub fn change(&self, kind: Kind, key: &str, c: &FieldChange) -> FieldChange {
        let Some(places) = self.0.get(&(kind, identity(kind, key))) else {
            return c.clone();
        };
        let field = format!("/{}", escape(c.field()));
        let here = places.iter().filter_map(|p| {
            let rest = p.pointer.strip_prefix(&field)?;
            (rest.is_empty() || rest.starts_with('/')).then_some((rest, p))
        });
        match c {
            FieldChange::Value { field, from, to } => {
                let mut to = to.clone();
                for (rest, p) in here {
                    if let Some(Value::String(s)) = to.pointer_mut(rest)
                        && *s == p.value
                    {
                        *s = p.template.clone();
                    }
                }
                FieldChange::Value {
                    field: field.clone(),
                    from: from.clone(),
                    to,
                }
            }
            FieldChange::List {
                field,
                added,
                removed,
            } => {
                let mut added = added.clone();
                for (_, p) in here {
                    for a in added.iter_mut().filter(|a| **a == p.value) {
                        *a = p.template.clone();
                    }
                }
                FieldChange::List {
                    field: field.clone(),
                    added,
                    removed: removed.clone(),
                }
            }
            FieldChange::Sensitive { .. } => c.clone(),
        }
    }

    /// Free text (an error message): a substituted value that appears quoted in it whole —
    /// `'value'` or `"value"` — is shown as written. Nothing else is touched.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for p in self.0.values().flatten() {
            if p.value.is_empty() {
                continue;
            }
            let json = |s: &str| Value::from(s).to_string();
            out = out
                .replace(&format!("'{}'", p.value), &format!("'{}'", p.template))
                .replace(&json(&p.value), &json(&p.template));
        }
        out
    }
}

#[cfg(test)]
mod tests;

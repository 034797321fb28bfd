//! Where promoted entities are written in the target directory, as new file contents.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{PromoteError, key_of, values};
use crate::core::document::{self, Entities, Format};
use crate::core::kind::Kind;
use crate::engine::environment;

/// The file new entities go to when the target has none of these yet.
pub const PROMOTED_FILE: &str = "promoted.yaml";
const PROMOTED_NAMES: [&str; 3] = ["promoted.yaml", "promoted.yml", "promoted.json"];

struct File {
    path: PathBuf,
    value: Value,
    format: Format,
    changed: bool,
}

/// The new contents of the files of `to_dir` (repository-relative paths under `to_rel`) that
/// hold the `changed` entities of `promoted`.
pub fn plan(
    to_dir: &Path,
    to_rel: &str,
    promoted: &Entities,
    changed: &[(Kind, String)],
) -> Result<Vec<(String, Vec<u8>)>, PromoteError> {
    let mut files = Vec::new();
    for path in environment::document_files(to_dir)? {
        let (name, text) = document::read_text(&path).map_err(environment::EnvError::from)?;
        let format = Format::from_path(&path).unwrap_or(Format::Yaml);
        let value = document::parse_value(&text, Some(format), &name)
            .map_err(environment::EnvError::from)?;
        files.push(File {
            path,
            value,
            format,
            changed: false,
        });
    }
    // Which file holds which entity.
    let mut holder: BTreeMap<(Kind, String), usize> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        for kind in Kind::ALL {
            for item in f
                .value
                .pointer(&format!("/entities/{}", kind.plural()))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                holder.entry((kind, key_of(kind, item))).or_insert(i);
            }
        }
    }
    let promoted_file = match files.iter().position(|f| {
        f.path
            .file_name()
            .is_some_and(|n| PROMOTED_NAMES.iter().any(|p| n == *p))
    }) {
        Some(i) => i,
        None => {
            files.push(File {
                path: to_dir.join(PROMOTED_FILE),
                value: serde_json::json!({"version": document::DOCUMENT_VERSION, "entities": {}}),
                format: Format::Yaml,
                changed: false,
            });
            files.len() - 1
        }
    };
    for (key, value) in values(promoted) {
        if !changed.contains(&key) {
            continue;
        }
        let at = holder.get(&key).copied().unwrap_or(promoted_file);
        let f = &mut files[at];
        put(&mut f.value, key.0, &key.1, value, at == promoted_file).map_err(|reason| {
            PromoteError::Target {
                file: f.path.display().to_string(),
                reason,
            }
        })?;
        f.changed = true;
    }
    let mut out = Vec::new();
    for f in files.into_iter().filter(|f| f.changed) {
        let name = f
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = document::to_string(&f.value, f.format);
        // What is written must read back.
        document::parse_value(&text, Some(f.format), &name).map_err(|e| PromoteError::Target {
            file: f.path.display().to_string(),
            reason: e.to_string(),
        })?;
        let rel = if to_rel.is_empty() {
            name
        } else {
            format!("{to_rel}/{name}")
        };
        out.push((rel, text.into_bytes()));
    }
    Ok(out)
}

/// Replace the entity `id` of `kind` in a document value, or add it (sorted by key when
/// `sort`).
fn put(doc: &mut Value, kind: Kind, id: &str, entity: Value, sort: bool) -> Result<(), String> {
    let root = doc
        .as_object_mut()
        .ok_or_else(|| "not a document (expected a mapping at the top)".to_string())?;
    let entities = root
        .entry("entities")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| "/entities is not a mapping".to_string())?;
    let list = entities
        .entry(kind.plural())
        .or_insert_with(|| Value::Array(vec![]))
        .as_array_mut()
        .ok_or_else(|| format!("/entities/{} is not a list", kind.plural()))?;
    match list.iter().position(|item| key_of(kind, item) == id) {
        Some(i) => list[i] = entity,
        None => list.push(entity),
    }
    if sort {
        list.sort_by_key(|item| key_of(kind, item));
    }
    Ok(())
}

//! An environment directory: the desired state of one gateway. Document files (JSON or YAML)
//! whose entities are merged, an `mcp-gitops.yaml` saying where the gateway is and where its
//! credentials come from, optional `bases` whose entities are inherited and patched (JSON merge
//! patch per entity), and `${VAR}` substitution from the process environment, inside string
//! values after parsing (`subst`).

mod subst;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::core::document::validate::identity;
use crate::core::document::{self, Document, LoadError};
use crate::core::kind::Kind;
pub use crate::core::policy::{MAX_DELETE_PERCENT, Mode, Prune, Strategy};
pub use subst::{Masks, substitute_value};
use subst::{connection_setting, document_value, raw_key};

/// The environment file's name.
pub const CONFIG_FILE: &str = "mcp-gitops.yaml";

/// Where a secret comes from: an environment variable or a file, never inline.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    #[serde(default)]
    pub env: Option<String>,
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// Why a [`SecretRef`] could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretRefError {
    #[error("the environment variable {0} is not set")]
    Unset(String),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Read(Box<document::LoadError>),
}

impl SecretRef {
    /// The value: the variable's (from `lookup`), else the file's (relative to `base`, without
    /// its trailing newline). None when the reference names neither.
    pub fn read(
        &self,
        base: &Path,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<String>, SecretRefError> {
        if let Some(var) = &self.env {
            return lookup(var)
                .map(Some)
                .ok_or_else(|| SecretRefError::Unset(var.clone()));
        }
        if let Some(file) = &self.file {
            let path = base.join(file);
            // Bounded like every input file (a token file naming /dev/zero ends there).
            return match document::read_text(&path) {
                Ok((_, s)) => Ok(Some(s.trim_end().to_string())),
                Err(document::LoadError::Io { source, .. }) => Err(SecretRefError::Io {
                    path: path.display().to_string(),
                    source,
                }),
                Err(e) => Err(SecretRefError::Read(Box::new(e))),
            };
        }
        Ok(None)
    }
}

/// `mcp-gitops.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The gateway's base URL (required unless the environment is only inherited, or the
    /// daemon's configuration names it).
    #[serde(default)]
    pub gateway: String,
    /// A bearer token.
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// Or: mint an admin token for this user with the JWT secret.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub jwt_secret: Option<SecretRef>,
    /// The key the documents' `auth_value`s are encrypted with.
    #[serde(default)]
    pub secret: Option<SecretRef>,
    /// The gateway's own key, when it differs from `secret`.
    #[serde(default)]
    pub gateway_secret: Option<SecretRef>,
    #[serde(default)]
    pub conflict_strategy: Option<Strategy>,
    /// Delete what this environment owns and no longer declares (off by default).
    #[serde(default)]
    pub prune: Prune,
    #[serde(default)]
    pub mode: Mode,
    /// Environment directories whose entities this one inherits, relative to this one.
    #[serde(default)]
    pub bases: Vec<PathBuf>,
}

/// A loaded environment.
#[derive(Clone, Debug)]
pub struct Environment {
    pub dir: PathBuf,
    pub config: Config,
    /// The merged desired document (bases patched by this environment).
    pub document: Document,
    /// Where each entity was defined, by (kind, identity).
    pub origin: BTreeMap<(Kind, String), String>,
    /// Where substituted values sit in `document`, shown as written in output.
    pub masks: Masks,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("{dir}: no {CONFIG_FILE} (an environment directory needs one)")]
    NoConfig { dir: String },
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Invalid(#[from] crate::core::document::ValidationError),
    #[error("{file}: {}${{{var}}} is not set in the environment", at(pointer))]
    Unset {
        file: String,
        /// Where in the file, when known.
        pointer: Option<String>,
        var: String,
    },
    #[error("{file}: {pointer}: ${{...}} makes the key '{key}', which the object already has")]
    DuplicateKey {
        file: String,
        pointer: String,
        key: String,
    },
    #[error(
        "{file}: /conflict_strategy: rename is not allowed in an environment: an environment converges to its documents, and renaming would add a copy on every run (use update, skip or fail; `import --conflict-strategy rename` makes one-off copies)"
    )]
    Rename { file: String },
    #[error("{kind} '{key}' is defined twice: in {first} and in {second}")]
    Duplicate {
        kind: Kind,
        key: String,
        first: String,
        second: String,
    },
    #[error("{dir}: bases form a cycle")]
    Cycle { dir: String },
    #[error("base {base}: {source}")]
    Escape {
        base: String,
        #[source]
        source: crate::core::fsutil::ConfineError,
    },
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl crate::core::error::Classify for EnvError {
    fn class(&self) -> crate::core::error::ErrorClass {
        // A directory or file that cannot be read is the input's problem, like a bad one.
        crate::core::error::ErrorClass::Invalid
    }
}

fn at(pointer: &Option<String>) -> String {
    pointer
        .as_ref()
        .map(|p| format!("{p}: "))
        .unwrap_or_default()
}

impl Environment {
    /// Free text (an error message): a substituted value quoted whole in it is shown as
    /// written (`'https://${HOST}/v1'`); nothing else changes. Plan lines and reports are
    /// masked where the values were substituted instead ([`Masks::change`]).
    pub fn mask(&self, text: &str) -> String {
        self.masks.text(text)
    }

    /// Read a secret reference (environment variable or file, relative to the directory).
    pub fn secret(&self, r: &Option<SecretRef>) -> Result<Option<String>, EnvError> {
        let Some(r) = r else { return Ok(None) };
        r.read(&self.dir, &env_lookup).map_err(|e| match e {
            SecretRefError::Unset(var) => EnvError::Unset {
                file: self.dir.join(CONFIG_FILE).display().to_string(),
                pointer: None,
                var,
            },
            SecretRefError::Io { path, source } => EnvError::Io { path, source },
            SecretRefError::Read(e) => EnvError::Load(*e),
        })
    }
}

/// Look a variable up in the process environment.
pub fn env_lookup(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// Load an environment directory (and its bases).
pub fn load(dir: &Path) -> Result<Environment, EnvError> {
    load_with(dir, &env_lookup, &mut Vec::new())
}

/// Load with variables from `lookup` instead of the process environment.
pub fn load_with_vars(
    dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Environment, EnvError> {
    load_with(dir, lookup, &mut Vec::new())
}

/// Load with variables from `lookup`, every base (and base of a base) confined to `root`:
/// after resolving `..` and symbolic links it must be inside it.
pub fn load_confined(
    dir: &Path,
    root: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Environment, EnvError> {
    load_within(dir, lookup, &mut Vec::new(), Some(root))
}

fn load_with(
    dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    stack: &mut Vec<PathBuf>,
) -> Result<Environment, EnvError> {
    load_within(dir, lookup, stack, None)
}

fn load_within(
    dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    stack: &mut Vec<PathBuf>,
    root: Option<&Path>,
) -> Result<Environment, EnvError> {
    if let Some(root) = root {
        crate::core::fsutil::confined(root, dir).map_err(|source| EnvError::Escape {
            base: dir.display().to_string(),
            source,
        })?;
    }
    let canonical = dir.canonicalize().map_err(|source| EnvError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    if stack.contains(&canonical) {
        return Err(EnvError::Cycle {
            dir: dir.display().to_string(),
        });
    }
    // A base (loaded for another environment) is inherited for its entities only.
    let inherited = !stack.is_empty();
    stack.push(canonical);
    let mut masks = Masks::default();
    let config_path = dir.join(CONFIG_FILE);
    if !config_path.is_file() {
        return Err(EnvError::NoConfig {
            dir: dir.display().to_string(),
        });
    }
    let (name, text) = document::read_text(&config_path)?;
    let mut raw = document::parse_value(&text, Some(document::Format::Yaml), &name)?;
    let skip = |p: &str| inherited && connection_setting(p);
    substitute_value(&mut raw, &name, lookup, &skip)?;
    let config: Config = document::from_value(raw, &name)?;
    if config.conflict_strategy == Some(Strategy::Rename) {
        return Err(EnvError::Rename { file: name });
    }

    if config.bases.is_empty() {
        let env = load_plain(dir, config, lookup)?;
        stack.pop();
        return Ok(env);
    }

    // Entities by (kind, identity), as JSON objects, with where they came from.
    let mut entities: BTreeMap<(Kind, String), (Value, String)> = BTreeMap::new();
    for base in &config.bases {
        let b = load_within(&dir.join(base), lookup, stack, root)?;
        masks.inherit(&b.masks);
        for (key, v) in entity_values(&b.document) {
            let origin = b.origin.get(&key).cloned().unwrap_or_default();
            entities.insert(key, (v, origin));
        }
    }
    let mut here: BTreeMap<(Kind, String), String> = BTreeMap::new();
    let mut version = document::DOCUMENT_VERSION.to_string();
    let mut mine = Masks::default();
    for path in document_files(dir)? {
        // With bases a file may hold partial entities (patches), checked once merged. Patches
        // apply as written: a null removes a field.
        let (name, text) = document::read_text(&path)?;
        let (raw, used) = document_value(&name, &text, lookup)?;
        for u in &used {
            mine.record(u, &|kind, i| raw_key(&raw, kind, i));
        }
        if let Some(v) = raw.get("version").and_then(Value::as_str) {
            version = v.to_string();
        }
        for (key, v) in raw_entities(raw.get("entities").unwrap_or(&Value::Null)) {
            if let Some(first) = here.get(&key) {
                return Err(EnvError::Duplicate {
                    kind: key.0,
                    key: key.1,
                    first: first.clone(),
                    second: name,
                });
            }
            here.insert(key.clone(), name.clone());
            match entities.get_mut(&key) {
                Some((base, origin)) => {
                    masks.forget_patched(&key, &v);
                    merge_patch(base, &v);
                    *origin = format!("{name} (patching {origin})");
                }
                None => {
                    entities.insert(key, (v, name.clone()));
                }
            }
        }
    }
    stack.pop();
    mine.inherit(&masks);
    let mut masks = mine;
    let mut lists: Map<String, Value> = Map::new();
    let mut origin = BTreeMap::new();
    if !masks.is_empty() {
        let held = entities.iter().map(|(k, (v, _))| (k.clone(), v.clone()));
        masks.retain_held(&held.collect());
    }
    for ((kind, id), (v, from)) in entities {
        lists
            .entry(kind.plural())
            .or_insert_with(|| Value::Array(vec![]))
            .as_array_mut()
            .expect("array")
            .push(v);
        origin.insert((kind, id), from);
    }
    let merged = serde_json::json!({"version": version, "entities": lists});
    let mut document: Document = document::parse(
        &merged.to_string(),
        Some(document::Format::Json),
        &format!("{} (merged with its bases)", dir.display()),
    )?;
    document.entities.sort();
    Ok(Environment {
        dir: dir.to_path_buf(),
        config,
        document,
        origin,
        masks,
    })
}

/// Without bases every file is a whole document: parsed and checked on its own (shape and
/// meaning, not references, which may point into other files or at the gateway), so that
/// problems name the file and its pointers, then merged.
fn load_plain(
    dir: &Path,
    config: Config,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Environment, EnvError> {
    let mut masks = Masks::default();
    let mut document = Document {
        version: document::DOCUMENT_VERSION.to_string(),
        ..Document::default()
    };
    let mut origin: BTreeMap<(Kind, String), String> = BTreeMap::new();
    for path in document_files(dir)? {
        let (name, text) = document::read_text(&path)?;
        // Without any `${` the file is read straight into a document (large files load fast).
        let doc = if text.contains("${") {
            let (raw, used) = document_value(&name, &text, lookup)?;
            for u in &used {
                masks.record(u, &|kind, i| raw_key(&raw, kind, i));
            }
            document::document_from_value(raw, &name)?
        } else {
            document::from_str(&text, None, &name)?
        };
        document::validate(&doc, &name, &Default::default())?;
        for kind in Kind::ALL {
            for key in doc.entities.keys(kind) {
                let k = (kind, identity(kind, key));
                if let Some(first) = origin.get(&k) {
                    return Err(EnvError::Duplicate {
                        kind,
                        key: key.to_string(),
                        first: first.clone(),
                        second: name,
                    });
                }
                origin.insert(k, name.clone());
            }
        }
        document.version = doc.version;
        let (e, from) = (&mut document.entities, doc.entities);
        e.tools.extend(from.tools);
        e.gateways.extend(from.gateways);
        e.servers.extend(from.servers);
        e.prompts.extend(from.prompts);
        e.resources.extend(from.resources);
        e.roots.extend(from.roots);
    }
    document.entities.sort();
    if !masks.is_empty() {
        masks.retain_held(&entity_values(&document).into_iter().collect());
    }
    Ok(Environment {
        dir: dir.to_path_buf(),
        config,
        document,
        origin,
        masks,
    })
}

/// The document files of a directory: `*.json`, `*.yaml`, `*.yml` except the environment
/// file, sorted by name.
pub fn document_files(dir: &Path) -> Result<Vec<PathBuf>, EnvError> {
    let io = |source| EnvError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| p.file_name().is_some_and(|n| n != CONFIG_FILE))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("json" | "yaml" | "yml")
            )
        })
        .collect();
    files.sort();
    Ok(files)
}

fn entity_values(doc: &Document) -> Vec<((Kind, String), Value)> {
    raw_entities(&serde_json::to_value(&doc.entities).expect("entities serialise"))
}

/// Entities of a document's `entities` object, keyed by (kind, identity).
fn raw_entities(v: &Value) -> Vec<((Kind, String), Value)> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        for item in v
            .get(kind.plural())
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key_field = kind.key_field();
            let key = item[key_field].as_str().unwrap_or_default();
            out.push(((kind, identity(kind, key)), item.clone()));
        }
    }
    out
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn bases_are_patched_and_variables_substituted() {
        let t = tempfile::tempdir().unwrap();
        let (base, prod) = (t.path().join("base"), t.path().join("prod"));
        write(&base, CONFIG_FILE, "gateway: http://unused\n");
        write(
            &base,
            "tools.yaml",
            "version: '1'\nentities:\n  tools:\n    - {name: weather, url: 'https://w.example.com', tags: [aa], description: base}\n",
        );
        write(
            &prod,
            CONFIG_FILE,
            "gateway: ${GW}\nmode: observe\nbases: [../base]\nconflict_strategy: skip\n",
        );
        write(
            &prod,
            "patch.json",
            r#"{"version":"1","entities":{"tools":[{"name":"weather","url":"https://${HOST}/v2","description":null}]}}"#,
        );
        write(
            &prod,
            "more.yaml",
            "entities:\n  prompts:\n    - {name: p, template: 'x'}\n",
        );
        let vars = |v: &str| match v {
            "GW" => Some("http://prod:4444".to_string()),
            "HOST" => Some("prod-weather.example.com".to_string()),
            _ => None,
        };
        let env = load_with(&prod, &vars, &mut Vec::new()).unwrap();
        assert_eq!(env.config.gateway, "http://prod:4444");
        assert_eq!(env.config.mode, Mode::Observe);
        assert_eq!(env.config.conflict_strategy, Some(Strategy::Skip));
        let tool = &env.document.entities.tools[0];
        assert_eq!(tool.url, "https://prod-weather.example.com/v2");
        assert_eq!(tool.description, None, "null removes the field");
        assert_eq!(tool.tags.len(), 1, "unpatched fields are inherited");
        let change = crate::core::diff::FieldChange::Value {
            field: "url".into(),
            from: json!("https://w.example.com"),
            to: json!("https://prod-weather.example.com/v2"),
        };
        assert_eq!(
            env.masks.change(Kind::Tool, "weather", &change).to_string(),
            r#"url: "https://w.example.com" -> "https://${HOST}/v2""#
        );

        write(
            &prod,
            "again.json",
            r#"{"version":"1","entities":{"tools":[{"name":"weather","url":"https://x.example.com"}]}}"#,
        );
        let err = load_with(&prod, &vars, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("tool 'weather' is defined twice"), "{err}");
        assert!(
            err.contains("again.json") && err.contains("patch.json"),
            "{err}"
        );
    }

    #[test]
    fn unset_variables_and_cycles_are_errors() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), CONFIG_FILE, "gateway: ${NOPE_NOT_SET}\n");
        let err = load_with(t.path(), &|_| None, &mut Vec::new()).unwrap_err();
        assert!(
            err.to_string().contains("${NOPE_NOT_SET} is not set"),
            "{err}"
        );
        write(t.path(), CONFIG_FILE, "gateway: http://x\nbases: [.]\n");
        assert!(matches!(
            load_with(t.path(), &|_| None, &mut Vec::new()),
            Err(EnvError::Cycle { .. })
        ));
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut t = json!({"a": {"b": 1, "c": 2}, "d": [1]});
        merge_patch(&mut t, &json!({"a": {"b": null, "e": 3}, "d": [2]}));
        assert_eq!(t, json!({"a": {"c": 2, "e": 3}, "d": [2]}));
    }
}

//! An environment from documents held in memory (a controller's ConfigMaps and inline
//! documents), layered like `bases`: the first layer's documents are whole, each later layer's
//! entities patch the ones before (JSON merge patch per entity). The layers are written as
//! environment directories chained by `bases` under a fresh directory and loaded by
//! [`environment::load_with_vars`], so they obey exactly the rules of a directory on disk;
//! documents read no variables (`${VAR}` is an error) and choose no connection.

use std::path::{Path, PathBuf};

use crate::core::fsutil::write_atomic;
use crate::engine::environment::{self, CONFIG_FILE, Config, EnvError, Environment};

pub mod git;

/// One layer: a label (`configmap-dev-docs`) and its documents as (file name, text).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layer {
    pub label: String,
    pub files: Vec<(String, String)>,
    /// How errors name this layer's files: this prefix, then the file name (e.g.
    /// `ssh://git@host/repo.git@3f2a9c1d0b7e:envs/prod/`). None: `<NN>-<label>/`.
    pub shown: Option<String>,
}

/// Load `layers` (at least one) as an environment, through directories written under `root`
/// (which must exist and be empty or hold an earlier call's layers: it is cleared). `config`
/// replaces the loaded environment's settings. Errors name files as `<label>/<file>`.
pub fn load(root: &Path, layers: &[Layer], config: Config) -> Result<Environment, LayerError> {
    if layers.is_empty() {
        return Err(LayerError::Empty);
    }
    let io = |path: &Path, source| {
        LayerError::Env(EnvError::Io {
            path: path.display().to_string(),
            source,
        })
    };
    if root.exists() {
        std::fs::remove_dir_all(root).map_err(|e| io(root, e))?;
    }
    let mut prev: Option<String> = None;
    let mut top = PathBuf::new();
    let mut renames: Vec<(String, String)> = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let name = format!("{i:02}-{}", safe(&layer.label));
        if let Some(s) = &layer.shown {
            renames.push((format!("{}/{name}/", root.display()), s.clone()));
        }
        let dir = root.join(&name);
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let cfg = match &prev {
            None => "{}\n".to_string(),
            Some(p) => format!("bases: [\"../{p}\"]\n"),
        };
        write_atomic(&dir.join(CONFIG_FILE), cfg.as_bytes()).map_err(|e| io(&dir, e))?;
        for (file, text) in &layer.files {
            let f = safe(file);
            if f == CONFIG_FILE {
                return Err(LayerError::Reserved {
                    layer: layer.label.clone(),
                });
            }
            write_atomic(&dir.join(&f), text.as_bytes()).map_err(|e| io(&dir, e))?;
        }
        prev = Some(name);
        top = dir;
    }
    let shown = |e: EnvError| {
        let prefix = format!("{}/", root.display());
        let mut message = e.to_string();
        for (from, to) in &renames {
            message = message.replace(from, to);
        }
        LayerError::Invalid {
            message: message.replace(&prefix, ""),
            source: Box::new(e),
        }
    };
    let mut env = environment::load_with_vars(&top, &|_| None).map_err(shown)?;
    env.config = config;
    Ok(env)
}

/// A label or key as a file name: letters, digits, `-`, `_`, `.` (others become `_`).
fn safe(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match s.trim_start_matches('.') {
        "" => "_".into(),
        t => t.to_string(),
    }
}

/// Why layers do not make an environment.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("no sources: a config needs at least one document")]
    Empty,
    #[error("{layer}: a document may not be named {CONFIG_FILE}")]
    Reserved { layer: String },
    /// A document is invalid; `message` names it `<label>/<file>` with the JSON pointer.
    #[error("{message}")]
    Invalid {
        message: String,
        #[source]
        source: Box<EnvError>,
    },
    #[error(transparent)]
    Env(EnvError),
}

impl crate::core::error::Classify for LayerError {
    fn class(&self) -> crate::core::error::ErrorClass {
        match self {
            LayerError::Env(EnvError::Io { .. }) => crate::core::error::ErrorClass::Io,
            _ => crate::core::error::ErrorClass::Invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str, url: &str) -> String {
        format!(
            r#"{{"version":"2025-03-26","entities":{{"tools":[{{"name":"{name}","url":"{url}","integration_type":"REST","request_type":"GET"}}]}}}}"#
        )
    }

    #[test]
    fn later_layers_patch_earlier_ones() {
        let t = tempfile::tempdir().unwrap();
        let base = Layer {
            label: "configmap-base".into(),
            shown: None,
            files: vec![
                ("a.json".into(), tool("a", "http://a.example/1")),
                ("b.json".into(), tool("b", "http://b.example/1")),
            ],
        };
        let patch = Layer {
            label: "inline-prod".into(),
            shown: None,
            files: vec![(
                "p.yaml".into(),
                "entities:\n  tools:\n  - name: a\n    url: http://a.example/2\n".into(),
            )],
        };
        let env = load(&t.path().join("l"), &[base, patch], Config::default()).unwrap();
        let tools = &env.document.entities.tools;
        assert_eq!(tools.len(), 2);
        let a = tools.iter().find(|x| x.name == "a").unwrap();
        assert_eq!(a.url, "http://a.example/2");
        assert_eq!(a.integration_type, "REST");
    }

    #[test]
    fn an_invalid_document_is_named_by_layer_and_file_and_variables_are_not_read() {
        let t = tempfile::tempdir().unwrap();
        let bad = Layer {
            label: "configmap-dev".into(),
            shown: None,
            files: vec![("tools.json".into(), tool("a", "not a url"))],
        };
        let e = load(
            &t.path().join("l"),
            std::slice::from_ref(&bad),
            Config::default(),
        )
        .unwrap_err();
        let m = e.to_string();
        assert!(m.contains("00-configmap-dev/tools.json"), "{m}");
        assert!(!m.contains(&t.path().display().to_string()), "{m}");
        assert!(m.contains("/entities/tools/0"), "{m}");
        // A layer that says how it is shown (a Git commit's directory) is named so.
        let shown = Layer {
            shown: Some("git@example.com:ops.git@3f2a9c1d0b7e:envs/dev/".into()),
            ..bad
        };
        let m = load(&t.path().join("l"), &[shown], Config::default())
            .unwrap_err()
            .to_string();
        assert!(
            m.starts_with("git@example.com:ops.git@3f2a9c1d0b7e:envs/dev/tools.json"),
            "{m}"
        );
        // SAFETY-free: a variable set in the process is still not substituted.
        let var = Layer {
            label: "inline-x".into(),
            shown: None,
            files: vec![("x.json".into(), tool("a", "http://${HOME}/x"))],
        };
        let e = load(&t.path().join("l"), &[var], Config::default()).unwrap_err();
        assert!(e.to_string().contains("HOME"), "{e}");
    }

    #[test]
    fn no_layers_and_reserved_names_are_refused() {
        let t = tempfile::tempdir().unwrap();
        assert!(matches!(
            load(t.path(), &[], Config::default()),
            Err(LayerError::Empty)
        ));
        let l = Layer {
            label: "x".into(),
            shown: None,
            files: vec![(CONFIG_FILE.into(), "gateway: http://evil\n".into())],
        };
        assert!(matches!(
            load(&t.path().join("l"), &[l], Config::default()),
            Err(LayerError::Reserved { .. })
        ));
    }
}

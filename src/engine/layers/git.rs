//! A layer from Git: the documents of an environment directory at the head of a branch, fetched
//! into a clone cache as the daemon fetches its Git environments. The layer holds the files an
//! environment directory gives (`*.json`, `*.yaml`, `*.yml` directly in it, not its
//! `mcp-gitops.yaml`); when that `mcp-gitops.yaml` names `bases` inside the repository, each
//! base becomes a layer of its own before it (depth first, each directory once), so a later
//! layer patches an earlier one's entities as between sources. The rest of `mcp-gitops.yaml`
//! (gateway, credentials, mode, strategy, prune) is not read: the caller decides those.
//! A `path` naming one document file gives a layer of that file alone. Blocking.

use std::path::Path;

use super::Layer;
use crate::engine::environment::CONFIG_FILE;
use crate::engine::git::{self, CommitId, GitError, Remote, Repo};

/// What a Git source gave: the branch head it was read at, and its layers (bases first).
#[derive(Clone, Debug)]
pub struct GitLayers {
    pub commit: CommitId,
    pub layers: Vec<Layer>,
}

/// Why a Git source gave no layers. Every variant names the repository, commit and file.
#[derive(Debug, thiserror::Error)]
pub enum GitLayerError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("{at}{file}: {reason}")]
    Config {
        at: String,
        file: String,
        reason: String,
    },
    #[error("{at}{dir}/{CONFIG_FILE}: base {base} leaves the repository")]
    Escape {
        at: String,
        dir: String,
        base: String,
    },
    #[error("{at}{dir}: bases form a cycle")]
    Cycle { at: String, dir: String },
    #[error("{at}{file}: not UTF-8 text")]
    NotText { at: String, file: String },
    #[error("{at}{path}: not a document (a directory, or a .json, .yaml or .yml file)")]
    NotDocument { at: String, path: String },
}

impl crate::core::error::Classify for GitLayerError {
    fn class(&self) -> crate::core::error::ErrorClass {
        match self {
            GitLayerError::Git(e) => e.class(),
            _ => crate::core::error::ErrorClass::Invalid,
        }
    }
}

/// Fetch `remote` into its clone under `cache_dir` and read `path` (repository-relative, `""`
/// for the root) at the head of `branch`. Layers are labelled `label` (the directory itself)
/// and `label-base-N`; errors and the layers' `shown` name files `URL@<commit12>:<path>/<file>`.
pub fn fetch(
    remote: &Remote,
    cache_dir: &Path,
    branch: &str,
    path: &str,
    label: &str,
) -> Result<GitLayers, GitLayerError> {
    let path = git::clean_path(path)?;
    let repo = Repo::open_or_clone(remote, cache_dir)?;
    let commit = repo
        .branch_head(branch)?
        .ok_or_else(|| GitError::NoBranch {
            url: remote.url.to_string(),
            branch: branch.to_string(),
        })?;
    let at = format!("{}@{}:", remote.url, commit.short());
    let mut reader = Reader {
        repo: &repo,
        commit: &commit,
        at: &at,
        label,
        stack: Vec::new(),
        done: Vec::new(),
        layers: Vec::new(),
    };
    reader.dir(&path)?;
    Ok(GitLayers {
        layers: reader.layers,
        commit,
    })
}

fn is_document(name: &str) -> bool {
    [".json", ".yaml", ".yml"].iter().any(|e| name.ends_with(e))
}

fn joined(dir: &str, file: &str) -> String {
    if dir.is_empty() {
        file.to_string()
    } else {
        format!("{dir}/{file}")
    }
}

struct Reader<'a> {
    repo: &'a Repo,
    commit: &'a CommitId,
    at: &'a str,
    label: &'a str,
    /// The directories being read (a base naming one of them is a cycle).
    stack: Vec<String>,
    /// The directories already made layers (a base named twice is read once).
    done: Vec<String>,
    layers: Vec<Layer>,
}

impl Reader<'_> {
    fn text(&self, file: &str, bytes: Vec<u8>) -> Result<String, GitLayerError> {
        String::from_utf8(bytes).map_err(|_| GitLayerError::NotText {
            at: self.at.to_string(),
            file: file.to_string(),
        })
    }

    fn dir(&mut self, path: &str) -> Result<(), GitLayerError> {
        if self.stack.iter().any(|p| p == path) {
            return Err(GitLayerError::Cycle {
                at: self.at.to_string(),
                dir: path.to_string(),
            });
        }
        if self.done.iter().any(|p| p == path) {
            return Ok(());
        }
        let (is_dir, tree) = self.repo.read_top(self.commit, path)?;
        if !is_dir {
            let name = path.rsplit('/').next().unwrap_or(path).to_string();
            if !is_document(&name) || name == CONFIG_FILE {
                return Err(GitLayerError::NotDocument {
                    at: self.at.to_string(),
                    path: path.to_string(),
                });
            }
            let bytes = tree.into_values().next().unwrap_or_default();
            let text = self.text(path, bytes)?;
            let parent = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            self.layers.push(Layer {
                label: self.next_label(),
                files: vec![(name, text)],
                shown: Some(format!("{}{}", self.at, joined(parent, ""))),
            });
            return Ok(());
        }
        let mut files = Vec::new();
        let mut bases = Vec::new();
        for (name, bytes) in tree {
            let file = joined(path, &name);
            if name == CONFIG_FILE {
                let text = self.text(&file, bytes)?;
                bases = self.bases(&file, &text)?;
            } else if is_document(&name) {
                files.push((name, self.text(&file, bytes)?));
            }
        }
        self.stack.push(path.to_string());
        for b in &bases {
            let Some(base) = git::join_path(path, b) else {
                return Err(GitLayerError::Escape {
                    at: self.at.to_string(),
                    dir: path.to_string(),
                    base: b.clone(),
                });
            };
            self.dir(&base)?;
        }
        self.stack.pop();
        self.done.push(path.to_string());
        self.layers.push(Layer {
            label: self.next_label(),
            files,
            shown: Some(format!("{}{}", self.at, joined(path, ""))),
        });
        Ok(())
    }

    /// `label` for the directory itself (read last), `label-base-N` for the N-th base.
    fn next_label(&self) -> String {
        if self.stack.is_empty() {
            self.label.to_string()
        } else {
            format!("{}-base-{}", self.label, self.layers.len() + 1)
        }
    }

    /// The `bases` of an `mcp-gitops.yaml` (nothing else of it is read).
    fn bases(&self, file: &str, text: &str) -> Result<Vec<String>, GitLayerError> {
        let bad = |reason: String| GitLayerError::Config {
            at: self.at.to_string(),
            file: file.to_string(),
            reason,
        };
        let value = crate::core::document::parse_value(
            text,
            Some(crate::core::document::Format::Yaml),
            file,
        )
        .map_err(|e| bad(e.to_string().replacen(&format!("{file}: "), "", 1)))?;
        match value.get("bases") {
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .map(|b| {
                    b.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad("/bases: a list of directories".into()))
                })
                .collect(),
            Some(_) => Err(bad("/bases: a list of directories".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::git::GitAuth;
    use crate::engine::layers::load;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let f = dir.join(rel);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    }

    fn tool(name: &str, description: &str) -> String {
        format!(
            "version: '2025-03-26'\nentities:\n  tools:\n    - {{name: {name}, url: 'https://{name}.example.com', request_type: GET, description: {description}}}\n"
        )
    }

    /// A repository with `files` committed on main (a work tree; fetched as file://).
    fn repo(t: &Path, files: &[(&str, &str)]) -> Remote {
        let work = t.join("work");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        for (rel, text) in files {
            write(&work, rel, text);
        }
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "docs"]);
        Remote::new(&format!("file://{}", work.display()), GitAuth::default()).unwrap()
    }

    #[test]
    fn a_directory_with_bases_gives_its_bases_first_and_loads_as_layers() {
        let t = tempfile::tempdir().unwrap();
        let remote = repo(
            t.path(),
            &[
                ("envs/base/tools.yaml", &tool("weather", "base")),
                ("envs/base/mcp-gitops.yaml", "gateway: ${NOT_READ}\n"),
                ("envs/base/nested/ignored.yaml", "not: read"),
                ("envs/base/README.md", "not a document"),
                (
                    "envs/prod/mcp-gitops.yaml",
                    "gateway: http://ignored\nmode: observe\nbases: [../base]\n",
                ),
                (
                    "envs/prod/patch.yaml",
                    "entities:\n  tools:\n    - {name: weather, description: prod}\n",
                ),
            ],
        );
        let cache = t.path().join("cache");
        let got = fetch(&remote, &cache, "main", "./envs/prod/", "git-0").unwrap();
        assert_eq!(got.commit.0.len(), 40);
        let labels: Vec<&str> = got.layers.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["git-0-base-1", "git-0"]);
        let names: Vec<Vec<&str>> = got
            .layers
            .iter()
            .map(|l| l.files.iter().map(|(n, _)| n.as_str()).collect())
            .collect();
        assert_eq!(names, [vec!["tools.yaml"], vec!["patch.yaml"]]);
        let at = format!("{}@{}:", remote.url, got.commit.short());
        assert_eq!(
            got.layers[1].shown.as_deref(),
            Some(format!("{at}envs/prod/").as_str())
        );
        let env = load(&t.path().join("l"), &got.layers, Default::default()).unwrap();
        let tools = &env.document.entities.tools;
        assert_eq!(tools.len(), 1);
        assert_eq!(tools[0].description.as_deref(), Some("prod"));
        assert_eq!(tools[0].url, "https://weather.example.com");

        // The root, and a single document file.
        let root = fetch(&remote, &cache, "main", "", "git-0").unwrap();
        assert!(root.layers[0].files.is_empty(), "{:?}", root.layers);
        let one = fetch(&remote, &cache, "main", "envs/base/tools.yaml", "g").unwrap();
        assert_eq!(one.layers.len(), 1);
        assert_eq!(one.layers[0].files[0].0, "tools.yaml");
        assert_eq!(
            one.layers[0].shown.as_deref(),
            Some(format!("{at}envs/base/").as_str())
        );
    }

    #[test]
    fn missing_branches_paths_escapes_and_cycles_are_named() {
        let t = tempfile::tempdir().unwrap();
        let remote = repo(
            t.path(),
            &[
                ("envs/out/mcp-gitops.yaml", "bases: [../../..]\n"),
                ("envs/a/mcp-gitops.yaml", "bases: [../b]\n"),
                ("envs/b/mcp-gitops.yaml", "bases: [../a]\n"),
                ("envs/bad/mcp-gitops.yaml", "bases: 3\n"),
                ("envs/bad/x.yaml", "{}"),
                ("notes.txt", "x"),
            ],
        );
        let cache = t.path().join("cache");
        let err = |branch: &str, path: &str| {
            fetch(&remote, &cache, branch, path, "git-0")
                .unwrap_err()
                .to_string()
        };
        let url = remote.url.to_string();
        assert_eq!(
            err("nope", "envs/a"),
            format!("Git repository {url}: no branch 'nope'")
        );
        let e = err("main", "envs/missing");
        assert!(
            e.starts_with(&format!("Git repository {url} at "))
                && e.ends_with(": no 'envs/missing' there"),
            "{e}"
        );
        let e = err("main", "envs/out");
        assert!(
            e.ends_with("envs/out/mcp-gitops.yaml: base ../../.. leaves the repository"),
            "{e}"
        );
        assert!(err("main", "envs/a").ends_with("envs/a: bases form a cycle"));
        assert!(
            err("main", "envs/bad")
                .ends_with("envs/bad/mcp-gitops.yaml: /bases: a list of directories")
        );
        assert!(err("main", "notes.txt").contains("notes.txt: not a document"));
        assert!(err("main", "../x").contains("must stay inside the repository"));
        use crate::core::error::{Classify, ErrorClass};
        let e = fetch(&remote, &cache, "nope", "", "g").unwrap_err();
        assert_eq!(e.class(), ErrorClass::Invalid);
        let gone = Remote::new(
            &format!("file://{}", t.path().join("gone").display()),
            GitAuth::default(),
        )
        .unwrap();
        let e = fetch(&gone, &cache, "main", "", "g").unwrap_err();
        assert_eq!(e.class(), ErrorClass::Unreachable, "{e}");
    }
}

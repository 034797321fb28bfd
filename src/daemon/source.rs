//! Where an environment's desired state comes from: a directory on disk, or a path in a
//! branch of a Git repository. A Git source is fetched into the cache, and a new head is laid
//! out in a temporary directory and loaded like any environment directory. What the
//! environment reads (its path and its bases) is keyed by Git object ids, so a commit that
//! touches nothing it reads — the daemon's own backup commits, say — loads nothing.

use std::path::{Path, PathBuf};

use super::config::GitSpec;
use super::status::{SourceInfo, SourceKind};
use super::trust::Trust;
use crate::engine::git::{self, CommitId, GitError, Repo};
use crate::engine::reconcile::{Settings, Target};

/// A source of desired state.
#[derive(Clone, Debug)]
pub enum Source {
    Dir(PathBuf),
    Git(Box<GitSource>),
}

#[derive(Clone, Debug)]
pub struct GitSource {
    pub spec: GitSpec,
    /// The connection and the rules of `daemon.yaml`: the repository chooses only the desired
    /// state.
    pub trust: Trust,
    /// The clone cache.
    pub cache_dir: PathBuf,
    /// Where commits are laid out while they load (emptied again at once).
    pub checkouts: PathBuf,
}

/// What the environment reads at a revision, by Git object id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputKey {
    /// Repository paths: the environment's, then its bases'.
    pub paths: Vec<String>,
    pub ids: Vec<Option<String>>,
}

/// A loaded desired state.
pub struct Loaded {
    pub target: Target,
    /// The commit it was read from (Git sources).
    pub revision: Option<CommitId>,
    pub key: InputKey,
}

/// The result of looking at a source.
pub enum Fetched {
    New(Box<Loaded>),
    /// The head moved, but nothing the environment reads changed.
    Same(CommitId),
    /// The head is the one last seen.
    Unchanged,
    /// The newest revision (or the directory) holds no valid environment.
    Invalid {
        error: String,
        revision: Option<CommitId>,
    },
    /// The repository could not be fetched or read.
    Failed(GitError),
}

impl Source {
    /// For status and logs: `dir`/`git`, URL, branch, path.
    pub fn describe(&self) -> SourceInfo {
        match self {
            Source::Dir(d) => SourceInfo {
                kind: SourceKind::Dir,
                url: None,
                branch: None,
                path: d.display().to_string(),
            },
            Source::Git(g) => SourceInfo {
                kind: SourceKind::Git,
                url: Some(g.spec.remote.url.to_string()),
                branch: Some(g.spec.branch.clone()),
                path: g.spec.path.clone(),
            },
        }
    }
}

/// Load a directory source.
pub fn load_dir(dir: &Path, settings: &Settings) -> Fetched {
    match Target::open(dir, settings) {
        Ok(target) => Fetched::New(Box::new(Loaded {
            target,
            revision: None,
            key: InputKey::default(),
        })),
        Err(e) => Fetched::Invalid {
            error: e.to_string(),
            revision: None,
        },
    }
}

fn key_at(repo: &Repo, commit: &CommitId, paths: &[String]) -> Result<InputKey, GitError> {
    let ids = paths
        .iter()
        .map(|p| repo.entry_id(commit, p))
        .collect::<Result<_, _>>()?;
    Ok(InputKey {
        paths: paths.to_vec(),
        ids,
    })
}

/// Fetch a Git source and load its head (or `at`, a given revision). `seen` is the head last
/// looked at, `current` the key of the state in force. Blocking.
pub fn load_git(
    src: &GitSource,
    settings: &Settings,
    seen: Option<&CommitId>,
    current: Option<&InputKey>,
    at: Option<&CommitId>,
) -> Fetched {
    let spec = &src.spec;
    let opened = match Repo::open_or_clone(&spec.remote, &src.cache_dir) {
        // A given revision may already be in the cache while the remote is away.
        Err(GitError::Unreachable { .. }) if at.is_some() => {
            Repo::open_cached(&spec.remote, &src.cache_dir)
        }
        other => other,
    };
    let repo = match opened {
        Ok(r) => r,
        Err(e) => return Fetched::Failed(e),
    };
    let head = match at {
        Some(c) => c.clone(),
        None => match repo.branch_head(&spec.branch) {
            Ok(Some(h)) => h,
            Ok(None) => {
                return Fetched::Invalid {
                    error: GitError::NoBranch {
                        url: spec.remote.url.to_string(),
                        branch: spec.branch.clone(),
                    }
                    .to_string(),
                    revision: None,
                };
            }
            Err(e) => return Fetched::Failed(e),
        },
    };
    if at.is_none() && seen == Some(&head) {
        return Fetched::Unchanged;
    }
    if let Some(k) = current {
        match key_at(&repo, &head, &k.paths) {
            Ok(key) if key == *k => return Fetched::Same(head),
            Ok(_) => {}
            Err(e) => return Fetched::Failed(e),
        }
    }
    let invalid = |error: String| Fetched::Invalid {
        error,
        revision: Some(head.clone()),
    };
    match repo.entry_id(&head, &spec.path) {
        Ok(Some(_)) => {}
        Ok(None) => {
            return invalid(
                GitError::NoPath {
                    url: spec.remote.url.to_string(),
                    rev: head.short().to_string(),
                    path: spec.path.clone(),
                }
                .to_string(),
            );
        }
        Err(e) => return Fetched::Failed(e),
    }
    match lay_out_and_load(&repo, src, settings, &head) {
        Ok(Ok(loaded)) => Fetched::New(Box::new(loaded)),
        Ok(Err(error)) => invalid(error),
        Err(e) => Fetched::Failed(e),
    }
}

/// Write the commit's files into a temporary directory, load the environment from it, and
/// name it `URL@commit:path` from then on. Ok(Err(_)): the content is not a valid environment.
fn lay_out_and_load(
    repo: &Repo,
    src: &GitSource,
    settings: &Settings,
    head: &CommitId,
) -> Result<Result<Loaded, String>, GitError> {
    let spec = &src.spec;
    let local = |what: &str, e: &dyn std::fmt::Display| {
        GitError::local(format!("{}: {what}", src.checkouts.display()), e)
    };
    std::fs::create_dir_all(&src.checkouts).map_err(|e| local("cannot create", &e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".checkout-")
        .tempdir_in(&src.checkouts)
        .map_err(|e| local("cannot create", &e))?;
    let (_, files) = repo.read(head, "")?;
    for (rel, bytes) in &files {
        let file = tmp.path().join(rel);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| local(rel, &e))?;
        }
        std::fs::write(&file, bytes).map_err(|e| local(rel, &e))?;
    }
    let shown = format!("{}@{}:", spec.remote.url, head.short());
    let prefix = format!("{}/", tmp.path().display());
    let checkout = tmp.path().display().to_string();
    let whole = format!("the checkout of {}@{}", spec.remote.url, head.short());
    let show = |text: String| text.replace(&prefix, &shown).replace(&checkout, &whole);
    let dir = tmp.path().join(&spec.path);
    let mut target = match src.trust.open(&dir, tmp.path(), settings) {
        Ok(t) => t,
        Err(e) => return Ok(Err(show(e.to_string()))),
    };
    let mut paths = vec![spec.path.clone()];
    for b in &target.env.config.bases {
        match git::join_path(&spec.path, &b.to_string_lossy()) {
            Some(p) => paths.push(p),
            None => {
                return Ok(Err(format!(
                    "{shown}{}: base {} leaves the repository",
                    spec.path,
                    b.display()
                )));
            }
        }
    }
    let key = key_at(repo, head, &paths)?;
    target.env.dir = PathBuf::from(format!("{shown}{}", spec.path));
    Ok(Ok(Loaded {
        target,
        revision: Some(head.clone()),
        key,
    }))
}

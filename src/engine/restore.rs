//! Reading a document out of Git for a restore: a single document file at a revision, or an
//! environment directory's documents (merged with its bases, `${VAR}` substituted, as `plan`
//! and `apply` read them). What is read is restored through the import engine by the caller.

use std::path::Path;

use crate::core::document::{self, Document, Format};
use crate::engine::environment;
use crate::engine::git::{self, CommitId, GitError, Remote, Repo};

/// A document as it was at a revision.
#[derive(Clone, Debug)]
pub struct AtRevision {
    pub document: Document,
    pub commit: CommitId,
    /// `URL@commit:path`, for messages.
    pub name: String,
    /// Whether `path` was an environment directory.
    pub directory: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Git(#[from] GitError),
    /// The content at the revision is not a valid document or environment.
    #[error("{0}")]
    Invalid(String),
}

/// Read the document at `path` in `rev` of `remote` (cloned into `cache_dir`). Blocking.
pub fn read_document(
    remote: &Remote,
    cache_dir: &Path,
    rev: &str,
    path: &str,
) -> Result<AtRevision, RestoreError> {
    let path = git::clean_path(path)?;
    let repo = Repo::open_or_clone(remote, cache_dir)?;
    let commit = repo.resolve(rev)?;
    let name = format!("{}@{}:{path}", remote.url, commit.short());
    let (directory, files) = repo.read(&commit, &path)?;
    if !directory {
        let bytes = files.into_values().next().unwrap_or_default();
        document::check_size(&name, bytes.len() as u64)
            .map_err(|e| RestoreError::Invalid(e.to_string()))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| RestoreError::Invalid(format!("{name}: not UTF-8 text")))?;
        let doc = document::from_str(&text, Format::for_reading(Path::new(&path)), &name)
            .map_err(|e| RestoreError::Invalid(e.to_string()))?;
        return Ok(AtRevision {
            document: doc,
            commit,
            name,
            directory,
        });
    }
    // An environment may inherit from directories beside it: lay out the whole commit.
    let (_, all) = repo.read(&commit, "")?;
    let tmp = tempfile::Builder::new()
        .prefix("mcp-gitops-restore-")
        .tempdir()
        .map_err(|e| GitError::local("temporary directory", e))?;
    for (rel, bytes) in &all {
        let file = tmp.path().join(rel);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| GitError::local(rel, e))?;
        }
        std::fs::write(&file, bytes).map_err(|e| GitError::local(rel, e))?;
    }
    let env_dir = tmp.path().join(&path);
    let config = env_dir.join(environment::CONFIG_FILE);
    if !config.exists() {
        // A plain directory of documents: merged like an environment's.
        std::fs::write(&config, "gateway: http://unused.invalid\n")
            .map_err(|e| GitError::local(config.display(), e))?;
    }
    let prefix = format!("{}/", tmp.path().display());
    let shown = format!("{}@{}:", remote.url, commit.short());
    let env = environment::load(&env_dir)
        .map_err(|e| RestoreError::Invalid(e.to_string().replace(&prefix, &shown)))?;
    let mut doc = env.document;
    doc.exported_at = None;
    Ok(AtRevision {
        document: doc,
        commit,
        name,
        directory,
    })
}

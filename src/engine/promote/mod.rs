//! Commit-to-promote: copy selected entities of one environment directory into another in a Git
//! working copy, re-encrypting credentials for the target's key, and commit the result (on a
//! new branch for review, if asked). The source is read as written — `${VAR}` references stay
//! references, resolved later by the target's own environment — merged with its bases.
//!
//! Where entities go: an entity the target directory already defines in one of its own
//! document files is replaced in that file; any other entity (new, or only inherited from a
//! base) goes to `promoted.yaml` in the target directory (or an existing `promoted.json` /
//! `promoted.yml`). Files are rewritten in normal form (YAML comments are not kept).

pub(crate) mod place;
mod write;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::core::changes::Changes;
use crate::core::document::Entities;
use crate::core::kind::Kind;
use crate::core::secrets::{CryptoError, Secret};
use crate::core::select::{self, Selection};
use crate::engine::environment::{self, EnvError, Environment};
use crate::engine::git::{CommitId, GitError, WorkingCopy};

/// What to promote, from where to where.
#[derive(Clone, Debug, Default)]
pub struct PromoteOptions {
    /// Any directory inside the working copy.
    pub repo_dir: PathBuf,
    /// The source and target environment directories (relative paths are taken from
    /// `repo_dir`).
    pub from: PathBuf,
    pub to: PathBuf,
    pub selection: Selection,
    /// Decrypts the source's credentials (default: the source environment's `secret`).
    pub source_secret: Option<Secret>,
    /// Encrypts them for the target (default: the target environment's `secret`, else the
    /// source key).
    pub target_secret: Option<Secret>,
    /// Commit on this branch: created from HEAD when absent; it may already be checked out.
    pub branch: Option<String>,
    /// Show what would change; write and commit nothing.
    pub dry_run: bool,
}

/// What a promotion did.
#[derive(Clone, Debug, Default)]
pub struct PromoteOutcome {
    pub changes: Changes,
    /// Repository-relative files written (or, in a dry run, that would be).
    pub files: Vec<String>,
    pub commit: Option<CommitId>,
    /// The branch committed on.
    pub branch: Option<String>,
    pub message: Option<String>,
    /// Source and target directories, repository-relative.
    pub from: String,
    pub to: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("the selection matched nothing in {from}")]
    NothingSelected { from: String },
    #[error(
        "{dir} holds encrypted credentials ({kind} {name}): pass {flag} or set `secret` in its mcp-gitops.yaml"
    )]
    NoKey {
        dir: String,
        kind: Kind,
        name: String,
        flag: &'static str,
    },
    #[error("{dir}: the credential of {kind} '{name}' {source}")]
    Credential {
        dir: String,
        kind: Kind,
        name: String,
        #[source]
        source: CryptoError,
    },
    #[error("{file}: cannot write: {reason}")]
    Io { file: String, reason: String },
    #[error("{file}: {reason}")]
    Target { file: String, reason: String },
}

/// Read an environment as written: `${VAR}` references are kept, not substituted.
pub(crate) fn load_as_written(dir: &Path) -> Result<Environment, EnvError> {
    environment::load_with_vars(dir, &|var| Some(format!("${{{var}}}")))
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Promote, and commit unless nothing changes (or in a dry run).
pub fn promote(opts: &PromoteOptions) -> Result<PromoteOutcome, PromoteError> {
    let wc = WorkingCopy::open(&opts.repo_dir)?;
    let (from_dir, to_dir) = (
        resolve(&opts.repo_dir, &opts.from),
        resolve(&opts.repo_dir, &opts.to),
    );
    let (from, to) = (wc.relative(&from_dir)?, wc.relative(&to_dir)?);
    for (dir, rel) in [(&from_dir, &from), (&to_dir, &to)] {
        if !dir.join(environment::CONFIG_FILE).is_file() {
            return Err(GitError::State {
                dir: rel.clone(),
                reason: format!(
                    "not an environment directory (no {})",
                    environment::CONFIG_FILE
                ),
            }
            .into());
        }
        let dirty = wc.uncommitted(rel)?;
        if !dirty.is_empty() {
            return Err(GitError::State {
                dir: rel.clone(),
                reason: format!(
                    "has uncommitted changes ({}); commit or stash them first",
                    dirty.join(", ")
                ),
            }
            .into());
        }
    }
    let source = load_as_written(&from_dir)?;
    let target = load_as_written(&to_dir)?;
    let selected = select::select(&source.document, &opts.selection).document;
    if selected.entities.total() == 0 {
        return Err(PromoteError::NothingSelected { from });
    }

    // Keys are read only when credentials are to be carried over or compared: an
    // environment variable that is not set does not matter otherwise.
    let (source_key, target_key) = if place::needs_keys(&target, &selected.entities) {
        let source_key = match &opts.source_secret {
            Some(k) => Some(k.clone()),
            None => source
                .secret(&source.config.secret)?
                .map(|s| Secret::new(&s)),
        };
        let target_key = match &opts.target_secret {
            Some(k) => Some(k.clone()),
            None => target
                .secret(&target.config.secret)?
                .map(|s| Secret::new(&s))
                .or_else(|| source_key.clone()),
        };
        (source_key, target_key)
    } else {
        (None, None)
    };
    let keys = place::PlaceKeys {
        source: source_key.as_ref(),
        target: target_key.as_ref(),
        source_name: &from,
        source_flag: "--secret",
        target_flag: "--rekey-secret",
    };
    let placement = place::place(&to_dir, &to, &target, &selected.entities, &keys)?;
    let (changes, files) = (placement.changes, placement.files);
    let mut out = PromoteOutcome {
        from: from.clone(),
        to: to.clone(),
        ..Default::default()
    };
    if changes.is_empty() {
        out.changes = changes;
        return Ok(out);
    }
    let message = changes.message(&format!("promote {from} -> {to}"));
    out.files = files.iter().map(|(p, _)| p.clone()).collect();
    out.changes = changes;
    out.message = Some(message.clone());
    if opts.dry_run {
        return Ok(out);
    }
    if let Some(b) = &opts.branch {
        match wc.current_branch() {
            Some(cur) if &cur == b => {}
            _ if wc.branch_exists(b) => {
                return Err(GitError::State {
                    dir: wc.root().display().to_string(),
                    reason: format!(
                        "branch {b} exists and is not checked out; check it out first or choose another --branch"
                    ),
                }
                .into());
            }
            _ => wc.start_branch(b)?,
        }
    }
    out.commit = Some(wc.commit_files(&files, &message)?);
    out.branch = wc.current_branch();
    Ok(out)
}

/// The entities of `e` as JSON values by (kind, identity).
pub(crate) fn values(e: &Entities) -> Vec<((Kind, String), Value)> {
    let doc = serde_json::to_value(e).expect("entities serialise");
    let mut out = Vec::new();
    for kind in Kind::ALL {
        for item in doc
            .get(kind.plural())
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.push(((kind, key_of(kind, item)), item.clone()));
        }
    }
    out
}

/// The identity of a raw entity value.
pub(crate) fn key_of(kind: Kind, item: &Value) -> String {
    let field = kind.key_field();
    crate::core::document::validate::identity(kind, item[field].as_str().unwrap_or_default())
}

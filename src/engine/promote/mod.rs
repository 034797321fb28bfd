//! Commit-to-promote: copy selected entities of one environment directory into another in a Git
//! working copy, re-encrypting credentials for the target's key, and commit the result (on a
//! new branch for review, if asked). The source is read as written — `${VAR}` references stay
//! references, resolved later by the target's own environment — merged with its bases.
//!
//! Where entities go: an entity the target directory already defines in one of its own
//! document files is replaced in that file; any other entity (new, or only inherited from a
//! base) goes to `promoted.yaml` in the target directory (or an existing `promoted.json` /
//! `promoted.yml`). Files are rewritten in normal form (YAML comments are not kept).

mod write;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::core::changes::{self, Changes};
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
fn load_as_written(dir: &Path) -> Result<Environment, EnvError> {
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
    let mut current = target.document.entities.clone();
    keep_only(&mut current, &selected.entities);
    let (source_key, target_key) =
        if has_credentials(&selected.entities) || has_credentials(&current) {
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
    let mut promoted = selected.entities.clone();
    rekey(
        &mut promoted,
        source_key.as_ref(),
        target_key.as_ref(),
        &from,
    )?;

    // Compare with what the target holds now, credentials by their decrypted value.
    let (cmp_new, cmp_old) = (
        fingerprinted(&promoted, target_key.as_ref(), &to, "--rekey-secret")?,
        fingerprinted(&current, target_key.as_ref(), &to, "--rekey-secret")?,
    );
    let changes = changes::between(Some(&cmp_old), &cmp_new);
    let mut out = PromoteOutcome {
        from: from.clone(),
        to: to.clone(),
        ..Default::default()
    };
    if changes.is_empty() {
        out.changes = changes;
        return Ok(out);
    }
    let changed: Vec<(Kind, String)> = changes
        .items
        .iter()
        .map(|c| {
            (
                c.kind,
                crate::core::document::validate::identity(c.kind, &c.key),
            )
        })
        .collect();
    let files = write::plan(&to_dir, &to, &promoted, &changed)?;
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

/// Decrypt every credential with the source key and encrypt it with the target key.
fn rekey(
    e: &mut Entities,
    from: Option<&Secret>,
    to: Option<&Secret>,
    dir: &str,
) -> Result<(), PromoteError> {
    let values = e
        .tools
        .iter_mut()
        .map(|t| (Kind::Tool, &t.name, &mut t.auth_value))
        .chain(
            e.gateways
                .iter_mut()
                .map(|g| (Kind::Gateway, &g.name, &mut g.auth_value)),
        );
    for (kind, name, value) in values {
        let Some(v) = value.as_deref() else { continue };
        let no_key = |flag| PromoteError::NoKey {
            dir: dir.to_string(),
            kind,
            name: name.clone(),
            flag,
        };
        let from = from.ok_or_else(|| no_key("--secret"))?;
        let to = to.ok_or_else(|| no_key("--rekey-secret"))?;
        let creds = from.decrypt(v).map_err(|source| PromoteError::Credential {
            dir: dir.to_string(),
            kind,
            name: name.clone(),
            source,
        })?;
        *value = Some(to.encrypt(&creds));
    }
    Ok(())
}

fn has_credentials(e: &Entities) -> bool {
    e.tools.iter().any(|t| t.auth_value.is_some())
        || e.gateways.iter().any(|g| g.auth_value.is_some())
}

/// Keep only the entities of `e` that `wanted` also has (by kind and identity).
fn keep_only(e: &mut Entities, wanted: &Entities) {
    let keys: std::collections::BTreeSet<(Kind, String)> = Kind::ALL
        .iter()
        .flat_map(|k| {
            wanted
                .keys(*k)
                .into_iter()
                .map(move |n| (*k, crate::core::document::validate::identity(*k, n)))
        })
        .collect();
    let has =
        |k: Kind, n: &str| keys.contains(&(k, crate::core::document::validate::identity(k, n)));
    e.tools.retain(|x| has(Kind::Tool, &x.name));
    e.gateways.retain(|x| has(Kind::Gateway, &x.name));
    e.servers.retain(|x| has(Kind::Server, &x.name));
    e.prompts.retain(|x| has(Kind::Prompt, &x.name));
    e.resources.retain(|x| has(Kind::Resource, &x.uri));
    e.roots.retain(|x| has(Kind::Root, &x.uri));
}

/// A copy whose `auth_value`s are replaced by a digest of their decrypted value, so that
/// equal credentials compare equal whatever their nonce. A value the key cannot decrypt is an
/// error: the target key is wrong.
fn fingerprinted(
    e: &Entities,
    key: Option<&Secret>,
    dir: &str,
    flag: &'static str,
) -> Result<Entities, PromoteError> {
    let mut out = e.clone();
    let values = out
        .tools
        .iter_mut()
        .map(|t| (Kind::Tool, &t.name, &mut t.auth_value))
        .chain(
            out.gateways
                .iter_mut()
                .map(|g| (Kind::Gateway, &g.name, &mut g.auth_value)),
        );
    for (kind, name, value) in values {
        let Some(v) = value.as_deref() else { continue };
        let key = key.ok_or_else(|| PromoteError::NoKey {
            dir: dir.to_string(),
            kind,
            name: name.clone(),
            flag,
        })?;
        let creds = key.decrypt(v).map_err(|source| PromoteError::Credential {
            dir: dir.to_string(),
            kind,
            name: name.clone(),
            source,
        })?;
        *value = Some(crate::core::digest::sha256_hex(creds.to_json().as_bytes()));
    }
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

//! An import into an environment that is kept at a Git source (`auto` mode) becomes a commit:
//! the selected entities of the document are placed into the environment's path on the head
//! of its branch (or of a new review branch started from it) exactly as `promote` places them
//! ([`crate::engine::promote::write`]), credentials re-encrypted from the document's key to
//! the environment's, the result loaded by the caller's loader (nothing is pushed when it is
//! not a valid environment), then committed and pushed without force ([`Repo::publish_from`]).
//! Nothing changes: no commit. Applying the commit is the daemon's job, not this one's.
//!
//! The selection is the import's ([`crate::engine::import::selection`]: federated entities set
//! aside, `include` closed over dependencies). Conflict strategies: `update` replaces what the
//! environment defines, `skip` leaves it as it is, `fail` refuses when anything it defines
//! differs, `rename` (a one-off copy under a new name) has no place in a desired state and is
//! refused.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::core::changes::Changes;
use crate::core::document::Document;
use crate::core::document::validate::identity;
use crate::core::kind::Kind;
use crate::core::policy::Strategy;
use crate::core::secrets::Secret;
use crate::core::select::IncludeSpec;
use crate::core::verb::Verb;
use crate::engine::environment;
use crate::engine::git::{self, CommitId, GitError, PublishOptions, Published, Remote, Repo};
use crate::engine::import;
use crate::engine::promote::{self, PromoteError, place};

/// The environment's Git source: where its desired state lives.
#[derive(Clone)]
pub struct CommitTarget {
    pub remote: Remote,
    /// The branch the environment reads.
    pub branch: String,
    /// The environment's directory in the repository ("" is the root).
    pub path: String,
    /// Where the cached clone lives.
    pub cache_dir: PathBuf,
    pub publish: PublishOptions,
}

/// What to commit.
#[derive(Clone, Debug)]
pub struct CommitRequest {
    /// The document as given (validated by the caller).
    pub whole: Document,
    /// Its name in messages.
    pub file: String,
    pub include: Option<IncludeSpec>,
    pub strategy: Strategy,
    /// Decrypts the document's credentials.
    pub document_key: Option<Secret>,
    /// Encrypts them for the environment (its `secret`).
    pub env_key: Option<Secret>,
    /// Commit here instead (created from the environment's branch head when new); the
    /// environment's branch is then left untouched.
    pub review_branch: Option<String>,
    /// Say what the commit would be (items, files, message, and the checks on the result);
    /// commit and push nothing.
    pub dry_run: bool,
}

/// Loads the environment at `dir` of a checkout rooted at `root` as the daemon would: why it
/// is not a valid environment.
pub type Validate = dyn Fn(&Path, &Path) -> Result<(), String> + Send + Sync;

/// What the commit does to one entity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommitItem {
    pub kind: Kind,
    pub name: String,
    /// `create`, `update`, `unchanged` or `skip`.
    pub result: Verb,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What [`commit_import`] did.
#[derive(Clone, Debug, Default)]
pub struct CommitOutcome {
    /// The new commit (None: nothing changed).
    pub commit: Option<CommitId>,
    /// The branch committed on (or that would have been).
    pub branch: String,
    /// Committed on a review branch, not the environment's.
    pub review: bool,
    /// The head the change was prepared on.
    pub base: Option<CommitId>,
    /// Repository-relative files written.
    pub files: Vec<String>,
    pub message: Option<String>,
    pub items: Vec<CommitItem>,
    pub attempts: u32,
}

impl CommitOutcome {
    /// How many entities ended with `verb`.
    pub fn count(&self, verb: Verb) -> usize {
        self.items.iter().filter(|i| i.result == verb).count()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("include matched nothing in {file}")]
    NothingMatched { file: String },
    #[error(
        "conflict strategy rename makes one-off copies and cannot be committed to a desired state; use update, skip or fail"
    )]
    Rename,
    #[error("{} conflicts under conflict strategy fail; nothing was committed: {}", .conflicts.len(), .conflicts.join(", "))]
    Conflicts { conflicts: Vec<String> },
    #[error("Git repository {url} at {branch}: {path} is not an environment directory (no {file})", file = environment::CONFIG_FILE)]
    NoEnvironment {
        url: String,
        branch: String,
        path: String,
    },
    #[error(
        "after the import, {path} on {branch} would not be a valid environment; nothing was pushed: {reason}"
    )]
    Invalid {
        branch: String,
        path: String,
        reason: String,
    },
    #[error(transparent)]
    Promote(#[from] PromoteError),
    #[error(transparent)]
    Git(#[from] GitError),
}

impl crate::core::error::Classify for CommitError {
    fn class(&self) -> crate::core::error::ErrorClass {
        use crate::core::error::ErrorClass;
        match self {
            CommitError::Conflicts { .. } => ErrorClass::Conflict,
            CommitError::Git(e) => e.class(),
            CommitError::Promote(PromoteError::Io { .. }) => ErrorClass::Io,
            CommitError::Promote(PromoteError::Git(e)) => e.class(),
            _ => ErrorClass::Invalid,
        }
    }
}

/// Commit the import to the environment's branch (or the review branch) and push it. Blocking.
pub fn commit_import(
    target: &CommitTarget,
    req: &CommitRequest,
    validate: &Validate,
) -> Result<CommitOutcome, CommitError> {
    if req.strategy == Strategy::Rename {
        return Err(CommitError::Rename);
    }
    let path = git::clean_path(&target.path)?;
    let (desired, aside, _) = import::selection(&req.whole, req.include.as_ref());
    if req.include.is_some() && desired.entities.total() == 0 {
        return Err(CommitError::NothingMatched {
            file: req.file.clone(),
        });
    }
    let branch = req
        .review_branch
        .clone()
        .unwrap_or_else(|| target.branch.clone());
    let start = req.review_branch.as_ref().map(|_| target.branch.as_str());
    let mut repo = Repo::open_or_clone(&target.remote, &target.cache_dir)?;
    let root = repo.dir().to_path_buf();
    let at = Place {
        root: &root,
        path: &path,
        branch: &branch,
        url: target.remote.url.to_string(),
    };
    let mut out = CommitOutcome {
        branch: branch.clone(),
        review: req.review_branch.is_some(),
        ..CommitOutcome::default()
    };
    let mut failure = None;
    let published = repo.publish_from(&branch, start, &target.publish, |snap| {
        out.base = snap.head().cloned();
        match plan(&at, req, &desired, validate) {
            Ok(p) => {
                out.items = p.items;
                out.files = p
                    .change
                    .iter()
                    .flat_map(|c| c.files.iter())
                    .map(|f| f.0.clone())
                    .collect();
                out.message = p.change.as_ref().map(|c| c.message.clone());
                p.change.filter(|_| !req.dry_run)
            }
            Err(e) => {
                failure = Some(e);
                None
            }
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    out.items.splice(
        0..0,
        aside.iter().map(|s| CommitItem {
            kind: s.kind,
            name: s.key.clone(),
            result: Verb::Skip,
            fields: Vec::new(),
            reason: Some(s.reason.clone()),
        }),
    );
    match published {
        Published::Committed { commit, attempts } => {
            out.commit = Some(commit);
            out.attempts = attempts;
        }
        Published::Unchanged { .. } if req.dry_run => out.attempts = 0,
        Published::Unchanged { .. } => {
            out.attempts = 1;
            out.files.clear();
            out.message = None;
        }
    }
    Ok(out)
}

/// Where the change is prepared: the checked-out head in `root`, the environment at `path`.
struct Place<'a> {
    root: &'a Path,
    path: &'a str,
    branch: &'a str,
    url: String,
}

struct Planned {
    items: Vec<CommitItem>,
    change: Option<git::Change>,
}

/// On the checked-out head: what each entity comes to, and the files to commit (None when
/// nothing changes), checked by loading the result.
fn plan(
    at: &Place<'_>,
    req: &CommitRequest,
    desired: &Document,
    validate: &Validate,
) -> Result<Planned, CommitError> {
    let env_dir = at.root.join(at.path);
    let shown = if at.path.is_empty() { "." } else { at.path };
    if !env_dir.join(environment::CONFIG_FILE).is_file() {
        return Err(CommitError::NoEnvironment {
            url: at.url.clone(),
            branch: at.branch.to_string(),
            path: shown.to_string(),
        });
    }
    let env = promote::load_as_written(&env_dir).map_err(PromoteError::from)?;
    let keys = place::PlaceKeys {
        source: req.document_key.as_ref(),
        target: req.env_key.as_ref(),
        source_name: &req.file,
        source_flag: "secret",
        target_flag: "the environment's secret",
    };
    let (placed, diff) = place::compare(shown, &env, &desired.entities, &keys)?;
    let (items, kept) = decide(&placed, diff, req.strategy)?;
    if kept.is_empty() {
        return Ok(Planned {
            items,
            change: None,
        });
    }
    let files = place::files(&env_dir, at.path, &placed, &kept)?;
    for (rel, bytes) in &files {
        crate::core::fsutil::replace_atomic(&at.root.join(rel), bytes).map_err(|e| {
            PromoteError::Io {
                file: rel.clone(),
                reason: e.to_string(),
            }
        })?;
    }
    validate(&env_dir, at.root).map_err(|reason| CommitError::Invalid {
        branch: at.branch.to_string(),
        path: shown.to_string(),
        reason,
    })?;
    Ok(Planned {
        items,
        change: Some(git::Change {
            files,
            message: kept.message("import"),
        }),
    })
}

/// Apply the strategy to what differs: every incoming entity's result, and the changes kept.
fn decide(
    incoming: &crate::core::document::Entities,
    diff: Changes,
    strategy: Strategy,
) -> Result<(Vec<CommitItem>, Changes), CommitError> {
    if strategy == Strategy::Fail {
        let conflicts: Vec<String> = diff
            .items
            .iter()
            .filter(|c| c.op == Verb::Update)
            .map(|c| format!("{} {} ({})", c.kind, c.key, c.fields.join(", ")))
            .collect();
        if !conflicts.is_empty() {
            return Err(CommitError::Conflicts { conflicts });
        }
    }
    let mut items = Vec::new();
    let mut kept = Changes::default();
    for ((kind, id), _) in promote::values(incoming) {
        let change = diff
            .items
            .iter()
            .find(|c| c.kind == kind && identity(kind, &c.key) == id);
        let name = incoming_name(incoming, kind, &id);
        let item = match change {
            None => CommitItem {
                kind,
                name,
                result: Verb::Unchanged,
                fields: Vec::new(),
                reason: None,
            },
            Some(c) if c.op == Verb::Update && strategy == Strategy::Skip => CommitItem {
                kind,
                name,
                result: Verb::Skip,
                fields: c.fields.clone(),
                reason: Some(format!(
                    "the environment defines it differently ({}); conflict strategy skip",
                    c.fields.join(", ")
                )),
            },
            Some(c) => {
                kept.items.push(c.clone());
                CommitItem {
                    kind,
                    name,
                    result: c.op,
                    fields: c.fields.clone(),
                    reason: None,
                }
            }
        };
        items.push(item);
    }
    Ok((items, kept))
}

/// The name (or URI) of an incoming entity as written.
fn incoming_name(e: &crate::core::document::Entities, kind: Kind, id: &str) -> String {
    e.keys(kind)
        .into_iter()
        .find(|k| identity(kind, k) == id)
        .map(str::to_string)
        .unwrap_or_else(|| id.to_string())
}

#[cfg(test)]
mod tests;

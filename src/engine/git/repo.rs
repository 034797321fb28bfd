//! A cached clone of a remote: fetch, resolve revisions, read files at a commit, and publish a
//! commit that changes files under one path, pushed without force and retried on the new head
//! when someone else pushed first.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use git2::{FetchOptions, FetchPrune, ObjectType, Oid, PushOptions, Repository, Signature};

use super::auth::Session;
use super::{CommitId, GitError, PublishOptions, Remote};

mod history;
pub use history::FileCommit;

const FETCH_REFSPECS: [&str; 2] = [
    "+refs/heads/*:refs/remotes/origin/*",
    "+refs/tags/*:refs/tags/*",
];

/// A local clone of a remote, kept in a cache directory and locked while open.
pub struct Repo {
    repo: Repository,
    remote: Remote,
    dir: PathBuf,
    _lock: File,
}

/// Files read from a commit: path (relative to what was read) → content.
pub type Tree = BTreeMap<String, Vec<u8>>;

/// Read access to the branch head a change is being prepared on.
pub struct Snapshot<'a> {
    repo: &'a Repository,
    tree: Option<git2::Tree<'a>>,
    head: Option<CommitId>,
}

impl Snapshot<'_> {
    /// The branch head the change will be committed on (None: the branch is new).
    pub fn head(&self) -> Option<&CommitId> {
        self.head.as_ref()
    }

    /// A file's content at the head, if the file exists.
    pub fn file(&self, path: &str) -> Option<Vec<u8>> {
        let entry = self.tree.as_ref()?.get_path(Path::new(path)).ok()?;
        let blob = entry.to_object(self.repo).ok()?.into_blob().ok()?;
        Some(blob.content().to_vec())
    }
}

/// What to commit: files to write (repository-relative path → content) and the message.
#[derive(Clone, Debug)]
pub struct Change {
    pub files: Vec<(String, Vec<u8>)>,
    pub message: String,
}

/// The result of [`Repo::publish`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Published {
    /// A commit was pushed; `attempts` > 1 when a rejected push was redone on a newer head.
    Committed { commit: CommitId, attempts: u32 },
    /// Nothing to commit; the branch head as it is (None: the branch does not exist).
    Unchanged { head: Option<CommitId> },
}

fn cache_name(url: &str) -> String {
    use sha2::{Digest, Sha256};
    let tail: String = url
        .trim_end_matches('/')
        .trim_end_matches(".git")
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repo")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(40)
        .collect();
    let hash = crate::core::digest::hex(&Sha256::digest(url.as_bytes())[..6]);
    format!("{tail}-{hash}")
}

impl Repo {
    /// Open the cached clone of `remote` under `cache_dir` (created, or re-created when
    /// unusable), lock it against concurrent use, and fetch every branch and tag.
    pub fn open_or_clone(remote: &Remote, cache_dir: &Path) -> Result<Repo, GitError> {
        let url = remote.url.as_str();
        let name = cache_name(url);
        let dir = cache_dir.join(&name);
        let local = |what: &str, e: &dyn std::fmt::Display| {
            GitError::local(format!("cache {}: {what}", dir.display()), e)
        };
        std::fs::create_dir_all(cache_dir).map_err(|e| local("cannot create", &e))?;
        let lock =
            File::create(cache_dir.join(format!("{name}.lock"))).map_err(|e| local("lock", &e))?;
        lock.lock().map_err(|e| local("lock", &e))?;
        let repo = match Repository::open(&dir) {
            Ok(r) if r.find_remote("origin").is_ok() => r,
            _ => {
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(|e| local("cannot reset", &e))?;
                }
                let r = Repository::init(&dir).map_err(|e| local("cannot create", &e))?;
                r.remote("origin", url).map_err(|e| local("remote", &e))?;
                r
            }
        };
        repo.remote_set_url("origin", url)
            .map_err(|e| local("remote", &e))?;
        let out = Repo {
            repo,
            remote: remote.clone(),
            dir,
            _lock: lock,
        };
        out.fetch()?;
        Ok(out)
    }

    /// Open the cached clone of `remote` as it is, without fetching (None of the remote's
    /// newer commits; for reading what was fetched before).
    pub fn open_cached(remote: &Remote, cache_dir: &Path) -> Result<Repo, GitError> {
        let name = cache_name(remote.url.as_str());
        let dir = cache_dir.join(&name);
        let local = |what: &str, e: &dyn std::fmt::Display| {
            GitError::local(format!("cache {}: {what}", dir.display()), e)
        };
        let lock =
            File::create(cache_dir.join(format!("{name}.lock"))).map_err(|e| local("lock", &e))?;
        lock.lock().map_err(|e| local("lock", &e))?;
        let repo = Repository::open(&dir).map_err(|e| local("cannot open", &e))?;
        Ok(Repo {
            repo,
            remote: remote.clone(),
            dir,
            _lock: lock,
        })
    }

    /// The cache directory (the working copy commits are prepared in).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn url(&self) -> String {
        self.remote.url.to_string()
    }

    /// Fetch every branch and tag (pruning deleted branches).
    pub fn fetch(&self) -> Result<(), GitError> {
        let session = Session::new(&self.remote);
        let mut remote = self
            .repo
            .find_remote("origin")
            .map_err(|e| session.error(e))?;
        let mut opts = FetchOptions::new();
        opts.remote_callbacks(session.callbacks())
            .prune(FetchPrune::On)
            .download_tags(git2::AutotagOption::None);
        let res = remote.fetch(&FETCH_REFSPECS, Some(&mut opts), None);
        drop(opts);
        res.map_err(|e| session.error(e))
    }

    /// The remote branch's head as last fetched, if the branch exists.
    pub fn branch_head(&self, branch: &str) -> Result<Option<CommitId>, GitError> {
        match self
            .repo
            .refname_to_id(&format!("refs/remotes/origin/{branch}"))
        {
            Ok(oid) => Ok(Some(CommitId(oid.to_string()))),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) if e.code() == git2::ErrorCode::InvalidSpec => Err(GitError::BadSetting {
                setting: format!("--branch {branch}"),
                reason: "not a valid branch name".into(),
            }),
            Err(e) => Err(GitError::local(format!("branch {branch}"), e)),
        }
    }

    /// Resolve a branch, tag or (abbreviated) commit id to a commit.
    pub fn resolve(&self, rev: &str) -> Result<CommitId, GitError> {
        let unknown = || GitError::UnknownRev {
            url: self.url(),
            rev: rev.to_string(),
        };
        let candidates = [
            format!("refs/remotes/origin/{rev}"),
            format!("refs/tags/{rev}"),
            rev.to_string(),
        ];
        for spec in candidates {
            if let Ok(obj) = self.repo.revparse_single(&spec)
                && let Ok(commit) = obj.peel_to_commit()
            {
                return Ok(CommitId(commit.id().to_string()));
            }
        }
        Err(unknown())
    }

    fn tree_at(&self, commit: &CommitId) -> Result<git2::Tree<'_>, GitError> {
        let oid = Oid::from_str(&commit.0).map_err(|e| GitError::local(commit, e))?;
        self.repo
            .find_commit(oid)
            .and_then(|c| c.tree())
            .map_err(|e| GitError::local(format!("commit {commit}"), e))
    }

    /// The object id of what `path` names in `commit` (a tree or a blob), None when absent:
    /// equal ids mean equal content.
    pub fn entry_id(&self, commit: &CommitId, path: &str) -> Result<Option<String>, GitError> {
        let tree = self.tree_at(commit)?;
        if path.is_empty() {
            return Ok(Some(tree.id().to_string()));
        }
        Ok(tree
            .get_path(Path::new(path))
            .ok()
            .map(|e| e.id().to_string()))
    }

    /// The files at `path` in `commit`: one entry keyed `""` when `path` is a file, else every
    /// file below the directory keyed by its path relative to it.
    pub fn read(&self, commit: &CommitId, path: &str) -> Result<(bool, Tree), GitError> {
        self.read_at(commit, path, true)
    }

    /// [`Repo::read`], but of a directory only the files directly in it (what an environment
    /// directory's documents are).
    pub fn read_top(&self, commit: &CommitId, path: &str) -> Result<(bool, Tree), GitError> {
        self.read_at(commit, path, false)
    }

    fn read_at(&self, commit: &CommitId, path: &str, deep: bool) -> Result<(bool, Tree), GitError> {
        let tree = self.tree_at(commit)?;
        let no_path = || GitError::NoPath {
            url: self.url(),
            rev: commit.short().to_string(),
            path: path.to_string(),
        };
        let mut out = Tree::new();
        if path.is_empty() {
            self.collect(&tree, "", deep, &mut out)?;
            return Ok((true, out));
        }
        let entry = tree.get_path(Path::new(path)).map_err(|_| no_path())?;
        let obj = entry
            .to_object(&self.repo)
            .map_err(|e| GitError::local(path, e))?;
        match obj.kind() {
            Some(ObjectType::Blob) => {
                let blob = obj.into_blob().map_err(|_| no_path())?;
                out.insert(String::new(), blob.content().to_vec());
                Ok((false, out))
            }
            Some(ObjectType::Tree) => {
                let sub = obj.into_tree().map_err(|_| no_path())?;
                self.collect(&sub, "", deep, &mut out)?;
                Ok((true, out))
            }
            _ => Err(no_path()),
        }
    }

    fn collect(
        &self,
        tree: &git2::Tree<'_>,
        prefix: &str,
        deep: bool,
        out: &mut Tree,
    ) -> Result<(), GitError> {
        for entry in tree.iter() {
            let Ok(name) = entry.name() else { continue };
            if matches!(name, "." | ".." | ".git") || name.contains(['/', '\\', '\0']) {
                continue;
            }
            let path = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}/{name}")
            };
            let obj = entry
                .to_object(&self.repo)
                .map_err(|e| GitError::local(&path, e))?;
            match (entry.kind(), entry.filemode()) {
                // Symbolic links are not followed or written.
                (_, 0o120000) => {}
                (Some(ObjectType::Blob), _) => {
                    let blob = obj
                        .into_blob()
                        .map_err(|_| GitError::local(&path, "blob"))?;
                    out.insert(path, blob.content().to_vec());
                }
                (Some(ObjectType::Tree), _) if deep => {
                    let sub = obj
                        .into_tree()
                        .map_err(|_| GitError::local(&path, "tree"))?;
                    self.collect(&sub, &path, deep, out)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Prepare a change on the head of `branch` and push it; when the push is rejected because
    /// the branch moved, fetch and prepare it again on the new head (the change touches only
    /// its own files, so this is the same as re-applying it; `build` sees the new head's
    /// content and may describe the change anew). Never forces. `build` returns None when there
    /// is nothing to change.
    pub fn publish(
        &mut self,
        branch: &str,
        opts: &PublishOptions,
        build: impl FnMut(&Snapshot<'_>) -> Option<Change>,
    ) -> Result<Published, GitError> {
        self.publish_from(branch, None, opts, build)
    }

    /// [`Repo::publish`], but a `branch` the remote lacks starts from the head of `start`
    /// (None, or `start` missing too: without history). `start` itself is never written.
    pub fn publish_from(
        &mut self,
        branch: &str,
        start: Option<&str>,
        opts: &PublishOptions,
        mut build: impl FnMut(&Snapshot<'_>) -> Option<Change>,
    ) -> Result<Published, GitError> {
        let refname = format!("refs/heads/{branch}");
        if !git2::Reference::is_valid_name(&refname) {
            return Err(GitError::BadSetting {
                setting: format!("--branch {branch}"),
                reason: "not a valid branch name".into(),
            });
        }
        let mut last_reason = String::new();
        for attempt in 1..=opts.max_attempts.max(1) {
            if attempt > 1 {
                std::thread::sleep(std::time::Duration::from_millis(100 * u64::from(attempt)));
            }
            self.fetch()?;
            let head = match (self.branch_head(branch)?, start) {
                (None, Some(s)) => self.branch_head(s)?,
                (h, _) => h,
            };
            let commit = self.prepare(branch, head.as_ref(), &mut build)?;
            let Some(commit) = commit else {
                return Ok(Published::Unchanged { head });
            };
            if let Some(hook) = &opts.before_push {
                hook(attempt);
            }
            match self.push(branch, &refname)? {
                None => {
                    let oid = Oid::from_str(&commit.0).map_err(|e| GitError::local(&commit, e))?;
                    self.repo
                        .reference(
                            &format!("refs/remotes/origin/{branch}"),
                            oid,
                            true,
                            "pushed",
                        )
                        .map_err(|e| GitError::local(format!("branch {branch}"), e))?;
                    return Ok(Published::Committed {
                        commit,
                        attempts: attempt,
                    });
                }
                Some(reason) => {
                    tracing::info!("push of {branch} rejected (attempt {attempt}): {reason}");
                    last_reason = reason;
                }
            }
        }
        Err(GitError::Rejected {
            url: self.url(),
            branch: branch.to_string(),
            reason: format!(
                "{last_reason}; still rejected after {} attempts",
                opts.max_attempts.max(1)
            ),
        })
    }

    /// Check out `head` (or nothing, for a new branch) in the cache's working copy, let
    /// `build` decide, write its files atomically, commit. None: nothing to commit.
    fn prepare(
        &self,
        branch: &str,
        head: Option<&CommitId>,
        build: &mut impl FnMut(&Snapshot<'_>) -> Option<Change>,
    ) -> Result<Option<CommitId>, GitError> {
        let local = |what: &str, e: &dyn std::fmt::Display| {
            GitError::local(
                format!("{} (branch {branch}): {what}", self.dir.display()),
                e,
            )
        };
        let (parent, tree) = match head {
            Some(h) => {
                let oid = Oid::from_str(&h.0).map_err(|e| local("head", &e))?;
                let c = self.repo.find_commit(oid).map_err(|e| local("head", &e))?;
                let t = c.tree().map_err(|e| local("head", &e))?;
                (Some(c), t)
            }
            None => {
                let empty = self
                    .repo
                    .treebuilder(None)
                    .and_then(|b| b.write())
                    .and_then(|oid| self.repo.find_tree(oid))
                    .map_err(|e| local("empty tree", &e))?;
                (None, empty)
            }
        };
        let mut checkout = git2::build::CheckoutBuilder::new();
        checkout.force().remove_untracked(true);
        self.repo
            .checkout_tree(tree.as_object(), Some(&mut checkout))
            .map_err(|e| local("checkout", &e))?;
        let mut index = self.repo.index().map_err(|e| local("index", &e))?;
        index.read_tree(&tree).map_err(|e| local("index", &e))?;
        let snapshot = Snapshot {
            repo: &self.repo,
            tree: head.map(|_| tree.clone()),
            head: head.cloned(),
        };
        let Some(change) = build(&snapshot) else {
            return Ok(None);
        };
        for (path, bytes) in &change.files {
            let file = self.dir.join(path);
            crate::core::fsutil::check_inside(&self.dir, path).map_err(|e| local(path, &e))?;
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent).map_err(|e| local(path, &e))?;
            }
            crate::core::fsutil::replace_atomic(&file, bytes).map_err(|e| local(path, &e))?;
            index
                .add_path(Path::new(path))
                .map_err(|e| local(path, &e))?;
        }
        let new_tree = index
            .write_tree()
            .and_then(|oid| self.repo.find_tree(oid))
            .map_err(|e| local("tree", &e))?;
        index.write().map_err(|e| local("index", &e))?;
        if parent.is_some() && new_tree.id() == tree.id() {
            return Ok(None);
        }
        let sig = Signature::now(super::AUTHOR_NAME, super::AUTHOR_EMAIL)
            .map_err(|e| local("signature", &e))?;
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let oid = self
            .repo
            .commit(None, &sig, &sig, &change.message, &new_tree, &parents)
            .map_err(|e| local("commit", &e))?;
        let refname = format!("refs/heads/{branch}");
        self.repo
            .reference(&refname, oid, true, "mcp-gitops commit")
            .and_then(|_| self.repo.set_head(&refname))
            .map_err(|e| local("branch", &e))?;
        Ok(Some(CommitId(oid.to_string())))
    }

    /// Push without force. Ok(None): pushed; Ok(Some(reason)): rejected because the remote
    /// branch moved (retry on the new head).
    fn push(&self, branch: &str, refname: &str) -> Result<Option<String>, GitError> {
        let session = Session::new(&self.remote);
        let mut remote = self
            .repo
            .find_remote("origin")
            .map_err(|e| session.error(e))?;
        let status: std::cell::RefCell<Option<String>> = Default::default();
        let mut callbacks = session.callbacks();
        callbacks.push_update_reference(|_, msg| {
            if let Some(m) = msg {
                *status.borrow_mut() = Some(m.to_string());
            }
            Ok(())
        });
        let mut opts = PushOptions::new();
        opts.remote_callbacks(callbacks);
        let res = remote.push(&[format!("{refname}:{refname}")], Some(&mut opts));
        drop(opts);
        match res {
            Err(e) if e.code() == git2::ErrorCode::NotFastForward => {
                Ok(Some(e.message().to_string()))
            }
            Err(e) => Err(session.error(e)),
            Ok(()) => match status.into_inner() {
                None => Ok(None),
                Some(m) if retryable(&m) => Ok(Some(m)),
                Some(m) => Err(GitError::Rejected {
                    url: self.url(),
                    branch: branch.to_string(),
                    reason: m,
                }),
            },
        }
    }
}

/// Server messages that mean "the branch moved under you".
fn retryable(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    [
        "non-fast-forward",
        "fetch first",
        "stale info",
        "cannot lock ref",
        "failed to update ref",
    ]
    .iter()
    .any(|s| m.contains(s))
}

//! A user's working copy: where promotions are written and committed. Only the files a change
//! names go into its commit, whatever else is staged or modified.

use std::path::{Path, PathBuf};

use git2::{FileMode, Repository, Signature, StatusOptions};

use super::{CommitId, GitError};

pub struct WorkingCopy {
    repo: Repository,
    root: PathBuf,
}

impl WorkingCopy {
    /// The working copy containing `dir`.
    pub fn open(dir: &Path) -> Result<WorkingCopy, GitError> {
        let state = |reason: String| GitError::State {
            dir: dir.display().to_string(),
            reason,
        };
        let repo = Repository::discover(dir)
            .map_err(|e| state(format!("not in a Git working copy ({})", e.message())))?;
        let root = repo
            .workdir()
            .ok_or_else(|| state("a bare repository has no working copy".into()))?
            .canonicalize()
            .map_err(|e| state(e.to_string()))?;
        Ok(WorkingCopy { repo, root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `path` (absolute, or relative to the current directory) relative to the root, with `/`.
    pub fn relative(&self, path: &Path) -> Result<String, GitError> {
        let outside = || GitError::State {
            dir: path.display().to_string(),
            reason: format!("is not inside the working copy {}", self.root.display()),
        };
        let abs = std::path::absolute(path).map_err(|_| outside())?;
        // Canonicalise the longest existing ancestor (the path itself may not exist yet).
        let mut existing = abs.as_path();
        let mut rest = Vec::new();
        while !existing.exists() {
            rest.push(existing.file_name().ok_or_else(outside)?);
            existing = existing.parent().ok_or_else(outside)?;
        }
        let mut full = existing.canonicalize().map_err(|_| outside())?;
        for part in rest.iter().rev() {
            full.push(part);
        }
        let rel = full.strip_prefix(&self.root).map_err(|_| outside())?;
        let text = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        super::clean_path(&text)
    }

    /// Files under `dir` (repository-relative) with uncommitted changes, staged or not,
    /// including untracked ones.
    pub fn uncommitted(&self, dir: &str) -> Result<Vec<String>, GitError> {
        let mut opts = StatusOptions::new();
        opts.include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false);
        if !dir.is_empty() {
            opts.pathspec(format!("{dir}/"));
            opts.disable_pathspec_match(false);
        }
        let statuses = self
            .repo
            .statuses(Some(&mut opts))
            .map_err(|e| GitError::local(format!("status of {dir}"), e))?;
        Ok(statuses
            .iter()
            .filter(|s| !s.status().is_ignored())
            .filter_map(|s| s.path().ok().map(str::to_string))
            .filter(|p| dir.is_empty() || p.starts_with(&format!("{dir}/")))
            .collect())
    }

    /// The checked-out branch's short name (None when HEAD is detached or unborn).
    pub fn current_branch(&self) -> Option<String> {
        let head = self.repo.head().ok()?;
        head.is_branch()
            .then(|| head.shorthand().ok().map(str::to_string))
            .flatten()
    }

    pub fn branch_exists(&self, name: &str) -> bool {
        self.repo.find_branch(name, git2::BranchType::Local).is_ok()
    }

    /// Create `name` at HEAD and switch to it. The working tree and index stay as they are
    /// (the new branch points at the same commit).
    pub fn start_branch(&self, name: &str) -> Result<(), GitError> {
        let refname = format!("refs/heads/{name}");
        let local = |e: git2::Error| GitError::local(format!("branch {name}"), e);
        if !git2::Reference::is_valid_name(&refname) {
            return Err(GitError::BadSetting {
                setting: format!("--branch {name}"),
                reason: "not a valid branch name".into(),
            });
        }
        if let Ok(head) = self.repo.head().and_then(|h| h.peel_to_commit()) {
            self.repo.branch(name, &head, false).map_err(local)?;
        }
        self.repo.set_head(&refname).map_err(local)
    }

    /// Write `files` (repository-relative) atomically, commit exactly them on HEAD with
    /// `message`, and stage them. Other changes in the index or working tree are left alone.
    pub fn commit_files(
        &self,
        files: &[(String, Vec<u8>)],
        message: &str,
    ) -> Result<CommitId, GitError> {
        let local = |what: &str, e: &dyn std::fmt::Display| {
            GitError::local(format!("{}: {what}", self.root.display()), e)
        };
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let base = match &parent {
            Some(c) => c.tree().map_err(|e| local("HEAD", &e))?,
            None => self
                .repo
                .treebuilder(None)
                .and_then(|b| b.write())
                .and_then(|oid| self.repo.find_tree(oid))
                .map_err(|e| local("empty tree", &e))?,
        };
        let mut update = git2::build::TreeUpdateBuilder::new();
        for (path, bytes) in files {
            let file = self.root.join(path);
            crate::core::fsutil::check_inside(&self.root, path).map_err(|e| local(path, &e))?;
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir).map_err(|e| local(path, &e))?;
            }
            crate::core::fsutil::replace_atomic(&file, bytes).map_err(|e| local(path, &e))?;
            let oid = self.repo.blob(bytes).map_err(|e| local(path, &e))?;
            update.upsert(path.as_str(), oid, FileMode::Blob);
        }
        let tree_oid = update
            .create_updated(&self.repo, &base)
            .map_err(|e| local("tree", &e))?;
        let tree = self
            .repo
            .find_tree(tree_oid)
            .map_err(|e| local("tree", &e))?;
        let sig = Signature::now(super::AUTHOR_NAME, super::AUTHOR_EMAIL)
            .map_err(|e| local("signature", &e))?;
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let oid = self
            .repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .map_err(|e| local("commit", &e))?;
        let mut index = self.repo.index().map_err(|e| local("index", &e))?;
        for (path, _) in files {
            index
                .add_path(Path::new(path))
                .map_err(|e| local(path, &e))?;
        }
        index.write().map_err(|e| local("index", &e))?;
        Ok(CommitId(oid.to_string()))
    }
}

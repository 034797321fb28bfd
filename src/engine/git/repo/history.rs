//! The commits of a branch that changed one file, newest first (a backup's snapshots).

use std::path::Path;

use git2::{Oid, Sort};

use super::Repo;
use crate::engine::git::{CommitId, GitError};

/// One commit that changed the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCommit {
    pub commit: CommitId,
    /// Committer time, Unix seconds.
    pub time: i64,
    /// The message's first line.
    pub subject: String,
}

impl Repo {
    fn blob_at(&self, commit: &git2::Commit<'_>, path: &str) -> Option<Oid> {
        let tree = commit.tree().ok()?;
        tree.get_path(Path::new(path)).ok().map(|e| e.id())
    }

    /// Up to `n` commits on the remote branch (as last fetched) whose `path` differs from the
    /// commit's first parent (or that add it), newest first. An unknown branch has none.
    pub fn file_history(
        &self,
        branch: &str,
        path: &str,
        n: usize,
    ) -> Result<Vec<FileCommit>, GitError> {
        let Some(head) = self.branch_head(branch)? else {
            return Ok(Vec::new());
        };
        let local = |e: git2::Error| GitError::local(format!("history of {path}"), e);
        let mut walk = self.repo.revwalk().map_err(local)?;
        walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)
            .map_err(local)?;
        walk.push(Oid::from_str(&head.0).map_err(local)?)
            .map_err(local)?;
        walk.simplify_first_parent().map_err(local)?;
        let mut out = Vec::new();
        for oid in walk {
            if out.len() >= n {
                break;
            }
            let c = self.repo.find_commit(oid.map_err(local)?).map_err(local)?;
            let now = self.blob_at(&c, path);
            let before = c.parent(0).ok().and_then(|p| self.blob_at(&p, path));
            if now.is_some() && now != before {
                out.push(FileCommit {
                    commit: CommitId(c.id().to_string()),
                    time: c.time().seconds(),
                    subject: String::from_utf8_lossy(c.summary_bytes().unwrap_or(b"")).into_owned(),
                });
            }
        }
        Ok(out)
    }
}

//! Backups to Git: export the live gateway with the export engine, write the document to a path
//! in a branch of a repository, commit with a message that lists what changed since the
//! previous version there (entities, not bytes: `exported_at` and the other header fields are
//! ignored), and push without force. Nothing changed: no commit. One call, one backup: the CLI's
//! `backup --once` and a scheduling daemon both call [`once`].

use std::path::PathBuf;

use crate::core::changes::{self, Changes};
use crate::core::document::{self, Document, Format};
use crate::core::secrets::Secret;
use crate::core::select::Selection;
use crate::engine::export::{ExportError, ExportOptions, export};
use crate::engine::git::{self, CommitId, GitError, PublishOptions, Published, Remote, Repo};
use crate::gateway::Client;

/// Where a backup goes.
#[derive(Clone)]
pub struct BackupTarget {
    pub remote: Remote,
    /// The branch (created on the first backup when the remote lacks it: it then starts
    /// without history, holding only the backup).
    pub branch: String,
    /// Repository-relative file path (see [`git::clean_path`]).
    pub path: String,
    /// Where the cached clone lives.
    pub cache_dir: PathBuf,
    /// The commit message's first word(s), before `: <summary>` (default `backup`).
    pub message_prefix: String,
    /// JSON or YAML (default: from the path's extension, else JSON).
    pub format: Option<Format>,
    pub publish: PublishOptions,
}

impl BackupTarget {
    /// A `--format` that contradicts the path's extension (`yaml` onto `.json`): the message
    /// to refuse it with.
    pub fn format_mismatch(format: Option<Format>, path: &str) -> Option<String> {
        let (given, implied) = (format?, Format::from_path(std::path::Path::new(path))?);
        (given != implied).then(|| {
            let (name, ext) = match given {
                Format::Json => ("json", ".json"),
                Format::Yaml => ("yaml", ".yaml or .yml"),
            };
            format!(
                "--format {name} does not match --path {path}: give the path a {ext} extension, or leave --format out (the extension decides)"
            )
        })
    }

    pub fn format(&self) -> Format {
        self.format
            .or_else(|| Format::from_path(std::path::Path::new(&self.path)))
            .unwrap_or(Format::Json)
    }
}

/// What a backup did.
#[derive(Clone, Debug)]
pub struct BackupOutcome {
    /// The new commit, or None when nothing changed.
    pub commit: Option<CommitId>,
    /// The branch head before (None: the branch was new).
    pub previous: Option<CommitId>,
    /// Push attempts (more than 1 when someone else pushed in between).
    pub attempts: u32,
    /// What changed against the previous version at the path.
    pub changes: Changes,
    /// The commit message (when committed).
    pub message: Option<String>,
    /// The exported document (credentials encrypted).
    pub document: Document,
    /// A note about the previous version, e.g. that it could not be read.
    pub note: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Git(#[from] GitError),
}

/// What a backup exports: everything, deactivated entities included, decrypted with the
/// gateway's key and encrypted with `document_secret` (default: the gateway's).
pub fn export_options(
    gateway_secret: Secret,
    document_secret: Option<Secret>,
    exported_by: String,
) -> ExportOptions {
    ExportOptions {
        selection: Selection {
            include_inactive: true,
            dependencies: true,
            ..Selection::default()
        },
        gateway_secret,
        document_secret,
        exported_by: Some(exported_by),
        now: crate::core::clock::now_rfc3339(),
        cache: None,
    }
}

/// Export the gateway and commit the document to the target, once.
pub async fn once(
    client: &Client,
    export_opts: &ExportOptions,
    target: &BackupTarget,
) -> Result<BackupOutcome, BackupError> {
    let path = git::clean_path(&target.path)?;
    if path.is_empty() {
        return Err(GitError::BadSetting {
            setting: "--path".into(),
            reason: "must name a file in the repository".into(),
        }
        .into());
    }
    let exported = export(client, export_opts).await?;
    let document = exported.document;
    let format = target.format();
    let text = document::to_string(&document, format);
    let target = target.clone();
    let doc = document.clone();
    let joined = tokio::task::spawn_blocking(move || commit(&target, &path, &doc, text, format))
        .await
        .map_err(|e| GitError::local("backup", e))?;
    let (published, last) = joined?;
    let (commit, attempts) = match published {
        Published::Committed { commit, attempts } => (Some(commit), attempts),
        Published::Unchanged { .. } => (None, 1),
    };
    Ok(BackupOutcome {
        commit,
        previous: last.previous,
        attempts,
        changes: last.changes,
        message: last.message,
        document,
        note: last.note,
    })
}

/// What the last attempt saw.
#[derive(Default)]
struct Last {
    previous: Option<CommitId>,
    changes: Changes,
    message: Option<String>,
    note: Option<String>,
}

fn commit(
    target: &BackupTarget,
    path: &str,
    doc: &Document,
    text: String,
    format: Format,
) -> Result<(Published, Last), GitError> {
    let mut repo = Repo::open_or_clone(&target.remote, &target.cache_dir)?;
    let mut last = Last::default();
    let name = format!("{}@{}:{path}", target.remote.url, target.branch);
    let published = repo.publish(&target.branch, &target.publish, |snap| {
        let mut note = None;
        let previous = snap.file(path).and_then(|bytes| {
            let parsed = String::from_utf8(bytes)
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    // By content: a previous version in the other format still compares.
                    document::from_str(&t, Some(format).filter(|f| *f == Format::Yaml), &name)
                        .map_err(|e| e.to_string())
                });
            match parsed {
                Ok(d) => Some(d),
                Err(e) => {
                    note = Some(format!(
                        "the previous version could not be read ({e}); it is replaced"
                    ));
                    None
                }
            }
        });
        let changes = changes::between_documents(previous.as_ref(), doc);
        let first = snap.file(path).is_none();
        if changes.is_empty() && !first && note.is_none() {
            last = Last {
                previous: snap.head().cloned(),
                changes,
                message: None,
                note,
            };
            return None;
        }
        let mut message = if changes.is_empty() {
            format!("{}: first backup (no entities)\n", target.message_prefix)
        } else {
            changes.message(&target.message_prefix)
        };
        if let Some(n) = &note {
            message.push_str(&format!("\nNote: {n}\n"));
        }
        if let Some(src) = &doc.source_gateway {
            message.push_str(&format!("\nSource: {src}\n"));
        }
        last = Last {
            previous: snap.head().cloned(),
            changes,
            message: Some(message.clone()),
            note,
        };
        Some(git::Change {
            files: vec![(path.to_string(), text.clone().into_bytes())],
            message,
        })
    })?;
    Ok((published, last))
}

/// A snapshot commit of a backup file, for a history list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotCommit {
    pub commit: CommitId,
    /// Committer time, RFC 3339.
    pub at: String,
    pub subject: String,
}

impl From<git::FileCommit> for SnapshotCommit {
    fn from(c: git::FileCommit) -> Self {
        let at = chrono::DateTime::<chrono::Utc>::from_timestamp(c.time, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        SnapshotCommit {
            commit: c.commit,
            at,
            subject: c.subject,
        }
    }
}

/// The `n` newest commits of the target's branch that changed its backup file, newest first
/// (fetched now into `target.cache_dir`). Blocking.
pub fn history(target: &BackupTarget, n: usize) -> Result<Vec<SnapshotCommit>, GitError> {
    let path = git::clean_path(&target.path)?;
    let repo = Repo::open_or_clone(&target.remote, &target.cache_dir)?;
    Ok(repo
        .file_history(&target.branch, &path, n)?
        .into_iter()
        .map(SnapshotCommit::from)
        .collect())
}

/// Whether `sha` may name a snapshot commit: 7 to 40 lowercase hex digits (never a branch or
/// another revision expression).
pub fn valid_sha(sha: &str) -> bool {
    (7..=40).contains(&sha.len()) && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The backup document at commit `sha` (one of [`history`]'s), read as `restore` reads it.
/// Blocking.
pub fn snapshot(
    target: &BackupTarget,
    sha: &str,
) -> Result<crate::engine::restore::AtRevision, crate::engine::restore::RestoreError> {
    if !valid_sha(sha) {
        return Err(crate::engine::restore::RestoreError::Invalid(format!(
            "{}: not a commit id",
            crate::core::quote::quote(sha)
        )));
    }
    crate::engine::restore::read_document(&target.remote, &target.cache_dir, sha, &target.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_contradicting_the_extension_is_named() {
        let m = BackupTarget::format_mismatch(Some(Format::Yaml), "backups/prod.json").unwrap();
        assert!(
            m.starts_with("--format yaml does not match --path backups/prod.json: "),
            "{m}"
        );
        assert!(BackupTarget::format_mismatch(Some(Format::Json), "b.yml").is_some());
        for (f, p) in [
            (Some(Format::Yaml), "b.yml"),
            (Some(Format::Yaml), "b.yaml"),
            (Some(Format::Json), "b.json"),
            (Some(Format::Yaml), "backup"),
            (None, "b.json"),
        ] {
            assert_eq!(BackupTarget::format_mismatch(f, p), None, "{f:?} {p}");
        }
    }

    #[test]
    fn only_hex_commit_ids_name_a_snapshot() {
        assert!(valid_sha("0123abc"));
        assert!(valid_sha(&"a".repeat(40)));
        for bad in [
            "main",
            "HEAD~1",
            "012345",
            "ABCDEF0",
            "0123abc:x",
            &"a".repeat(41),
        ] {
            assert!(!valid_sha(bad), "{bad}");
        }
    }

    fn commit_to(bare: &std::path::Path, files: &[(&str, &str)], message: &str) {
        let remote = Remote::new(&bare.display().to_string(), Default::default()).unwrap();
        let work = bare.parent().unwrap().join("work");
        let mut repo = Repo::open_or_clone(&remote, &work).unwrap();
        let change = git::Change {
            files: files
                .iter()
                .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
                .collect(),
            message: message.into(),
        };
        repo.publish("main", &PublishOptions::default(), |_| Some(change.clone()))
            .unwrap();
    }

    #[test]
    fn history_lists_the_commits_that_changed_the_file_newest_first() {
        let tmp = tempfile::tempdir().unwrap();
        let bare = tmp.path().join("backups.git");
        git2::Repository::init_bare(&bare).unwrap();
        commit_to(&bare, &[("prod.json", "1")], "backup: first");
        commit_to(&bare, &[("other.txt", "x")], "unrelated");
        commit_to(&bare, &[("prod.json", "2")], "backup: second\n\nbody");
        commit_to(&bare, &[("prod.json", "3")], "backup: third");
        let target = BackupTarget {
            remote: Remote::new(&bare.display().to_string(), Default::default()).unwrap(),
            branch: "main".into(),
            path: "prod.json".into(),
            cache_dir: tmp.path().join("cache"),
            message_prefix: "backup".into(),
            format: None,
            publish: PublishOptions::default(),
        };
        let all = history(&target, 20).unwrap();
        let subjects: Vec<&str> = all.iter().map(|c| c.subject.as_str()).collect();
        assert_eq!(
            subjects,
            ["backup: third", "backup: second", "backup: first"]
        );
        assert!(
            all.iter()
                .all(|c| c.commit.0.len() == 40 && c.at.ends_with('Z'))
        );
        assert_eq!(history(&target, 2).unwrap().len(), 2);
        let other = BackupTarget {
            branch: "nope".into(),
            ..target.clone()
        };
        assert!(history(&other, 20).unwrap().is_empty());
    }
}

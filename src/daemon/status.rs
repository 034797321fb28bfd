//! What the daemon knows about each environment: shown by `GET /status`, kept in
//! `state.json` (written atomically after every cycle and backup) so that a restarted daemon
//! resumes with the revision it last applied.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::core::error::ErrorClass;
use crate::core::policy::Mode;
use crate::engine::apply::Keys;
use crate::engine::reconcile::Counts;
use crate::gateway::{Client, Stats};

/// How many cycles `history` keeps.
pub const HISTORY: usize = 10;

/// The state file's format.
pub const STATE_FORMAT: &str = "mcp-gitops-daemon-state/1";

/// An environment at a glance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// No cycle has finished yet.
    #[default]
    Pending,
    /// The gateway holds the desired state.
    Synced,
    /// Observe mode: the gateway differs from the desired state.
    OutOfSync,
    /// Applied, but some entities failed or were skipped.
    Degraded,
    /// The last cycle failed, or the newest revision cannot be used.
    Failed,
}

/// What kind of source an environment reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    #[default]
    Dir,
    Git,
}

/// What one cycle came to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CycleOutcome {
    #[default]
    InSync,
    Applied,
    /// Observe mode: the gateway differs.
    Drift,
    Failed,
}

impl CycleOutcome {
    pub fn label(self) -> &'static str {
        match self {
            CycleOutcome::InSync => "in_sync",
            CycleOutcome::Applied => "applied",
            CycleOutcome::Drift => "drift",
            CycleOutcome::Failed => "failed",
        }
    }
}

/// Why the newest revision (or edit) is not in force.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFault {
    /// Fetching or reading the repository failed.
    #[default]
    Git,
    /// The documents are invalid.
    Invalid,
    /// Conflicts under `conflict_strategy: fail`.
    Conflict,
    /// A prune over the mass-delete limit.
    MassDelete,
}

impl SourceFault {
    /// The fault of a revision rejected with an error of this class.
    pub fn rejected(class: ErrorClass) -> SourceFault {
        match class {
            ErrorClass::Conflict => SourceFault::Conflict,
            ErrorClass::MassDelete => SourceFault::MassDelete,
            _ => SourceFault::Invalid,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SourceFault::Git => "git",
            SourceFault::Invalid => "invalid",
            SourceFault::Conflict => "conflict",
            SourceFault::MassDelete => "mass_delete",
        }
    }
}

/// What a scheduled backup came to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupOutcome {
    Committed,
    #[default]
    Unchanged,
    Failed,
}

impl BackupOutcome {
    pub fn label(self) -> &'static str {
        match self {
            BackupOutcome::Committed => "committed",
            BackupOutcome::Unchanged => "unchanged",
            BackupOutcome::Failed => "failed",
        }
    }
}

/// Where the desired state comes from (no credentials).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub kind: SourceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The directory, or the path in the repository.
    pub path: String,
}

/// The outcome of one cycle.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CycleResult {
    pub outcome: CycleOutcome,
    pub at: String,
    pub duration_ms: u64,
    /// The commit the desired state was read from (Git sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(default)]
    pub counts: Counts,
    /// Entities that failed to apply.
    #[serde(default)]
    pub failed: usize,
    /// Why it failed: `invalid`, `unreachable`, `mass_delete`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ErrorClass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The newest revision (or the directory's content) could not be used.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceError {
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    pub reason: SourceFault,
    pub error: String,
}

/// One backup.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupResult {
    pub outcome: BackupOutcome,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The commit subject, or the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "safe_opt"
    )]
    pub error: Option<String>,
}

/// Errors repeat values from documents and peers: in `/status` and `state.json` every line
/// is escaped and cut (see `quote::clean_lines`).
fn safe<S: serde::Serializer>(e: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::core::quote::clean_lines(e))
}

fn safe_opt<S: serde::Serializer>(e: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => safe(e, s),
        None => s.serialize_none(),
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupStatus {
    pub schedule: String,
    /// `URL@branch:path`.
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<BackupResult>,
}

/// Everything `GET /status` says about one environment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvStatus {
    pub name: String,
    pub source: SourceInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    pub health: Health,
    /// The commit whose desired state is in force (Git sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The branch head last fetched (Git sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_error: Option<SourceError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<CycleResult>,
    /// The last cycles, newest first (at most [`HISTORY`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<CycleResult>,
    /// When the gateway was last seen holding the desired state (after an apply or a check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_at: Option<String>,
    /// Entities that differ from the desired state after the last cycle.
    #[serde(default)]
    pub drift: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
    #[serde(default)]
    pub cycles: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupStatus>,
}

impl EnvStatus {
    /// Recompute `health` from the last cycle and the source.
    pub fn refresh_health(&mut self) {
        self.health = match (&self.source_error, &self.last_result) {
            (Some(_), _) => Health::Failed,
            (None, None) => Health::Pending,
            (None, Some(r)) => match r.outcome {
                CycleOutcome::Failed => Health::Failed,
                CycleOutcome::Drift => Health::OutOfSync,
                CycleOutcome::Applied if r.failed > 0 || r.counts.skip > 0 => Health::Degraded,
                _ => Health::Synced,
            },
        };
    }

    /// Take over what a previous run recorded for the same source.
    pub fn resume(&mut self, saved: &EnvStatus) {
        if saved.source != self.source {
            return;
        }
        self.revision = saved.revision.clone();
        self.head = saved.head.clone();
        self.last_result = saved.last_result.clone();
        self.history = saved.history.clone();
        self.last_applied_at = saved.last_applied_at.clone();
        self.drift = saved.drift;
        self.cycles = saved.cycles;
        if let (Some(b), Some(sb)) = (&mut self.backup, &saved.backup)
            && b.target == sb.target
        {
            b.last = sb.last.clone();
        }
        self.refresh_health();
    }
}

/// What a backup needs from the environment currently in force.
#[derive(Clone)]
pub struct Live {
    pub client: Client,
    pub keys: Keys,
    pub who: String,
    /// Repository paths the desired state is read from (Git sources): a backup must not
    /// write below them.
    pub inputs: Vec<String>,
}

/// One environment's shared state: its status, what backups need, its request counters.
pub struct EnvShared {
    pub name: String,
    pub status: Mutex<EnvStatus>,
    pub live: Mutex<Option<Live>>,
    /// Requests of every client made for this environment.
    pub stats: Arc<Stats>,
    /// The first cycle (or load attempt) has finished.
    pub ready: AtomicBool,
    /// Held by whoever writes to the environment's gateway in this process (its worker's
    /// cycle, an API apply or import): one writer at a time.
    pub writer: tokio::sync::Mutex<()>,
}

impl EnvShared {
    pub fn new(status: EnvStatus) -> Arc<EnvShared> {
        Arc::new(EnvShared {
            name: status.name.clone(),
            status: Mutex::new(status),
            live: Mutex::new(None),
            stats: Arc::new(Stats::default()),
            ready: AtomicBool::new(false),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// Record a cycle's result as the last one and in the history.
    pub fn push_result(s: &mut EnvStatus, r: CycleResult) {
        s.history.insert(0, r.clone());
        s.history.truncate(HISTORY);
        s.last_result = Some(r);
    }

    pub fn status(&self) -> EnvStatus {
        self.status.lock().expect("status lock").clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut EnvStatus)) {
        let mut s = self.status.lock().expect("status lock");
        f(&mut s);
        s.refresh_health();
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    format: String,
    saved_at: String,
    environments: Vec<EnvStatus>,
}

/// `state.json`: every environment's status, written atomically.
pub struct StateStore {
    path: PathBuf,
    envs: Mutex<Vec<Arc<EnvShared>>>,
    write: Mutex<()>,
}

impl StateStore {
    pub fn new(path: &Path) -> StateStore {
        StateStore {
            path: path.to_path_buf(),
            envs: Mutex::new(Vec::new()),
            write: Mutex::new(()),
        }
    }

    /// What a previous run saved (nothing when absent; an unreadable file is reported).
    pub fn saved(&self) -> Result<Vec<EnvStatus>, String> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("cannot read {}: {e}", self.path.display())),
        };
        let f: StateFile = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a state file: {e}", self.path.display()))?;
        if f.format != STATE_FORMAT {
            return Err(format!(
                "{}: format {} is not {STATE_FORMAT}",
                self.path.display(),
                f.format
            ));
        }
        Ok(f.environments)
    }

    pub fn track(&self, env: Arc<EnvShared>) {
        self.envs.lock().expect("state lock").push(env);
    }

    /// Write every environment's status.
    pub fn save(&self) -> std::io::Result<()> {
        let _w = self.write.lock().expect("state write lock");
        let environments = self
            .envs
            .lock()
            .expect("state lock")
            .iter()
            .map(|e| e.status())
            .collect();
        let f = StateFile {
            format: STATE_FORMAT.into(),
            saved_at: crate::core::clock::now_rfc3339(),
            environments,
        };
        let text = serde_json::to_string_pretty(&f).expect("state serialises");
        crate::core::fsutil::write_atomic(&self.path, format!("{text}\n").as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(outcome: CycleOutcome, failed: usize) -> CycleResult {
        CycleResult {
            outcome,
            failed,
            ..CycleResult::default()
        }
    }

    #[test]
    fn health_follows_the_last_cycle_and_the_source() {
        let mut s = EnvStatus::default();
        let cases = [
            (None, None, Health::Pending),
            (Some(result(CycleOutcome::InSync, 0)), None, Health::Synced),
            (Some(result(CycleOutcome::Applied, 0)), None, Health::Synced),
            (
                Some(result(CycleOutcome::Applied, 2)),
                None,
                Health::Degraded,
            ),
            (
                Some(result(CycleOutcome::Drift, 0)),
                None,
                Health::OutOfSync,
            ),
            (Some(result(CycleOutcome::Failed, 0)), None, Health::Failed),
            (
                Some(result(CycleOutcome::InSync, 0)),
                Some(SourceError::default()),
                Health::Failed,
            ),
        ];
        for (last, source_error, want) in cases {
            s.last_result = last;
            s.source_error = source_error;
            s.refresh_health();
            assert_eq!(s.health, want, "{:?} {:?}", s.last_result, s.source_error);
        }
    }

    #[test]
    fn state_survives_a_restart_for_the_same_source_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(&dir.path().join("state.json"));
        assert!(store.saved().unwrap().is_empty());
        let source = SourceInfo {
            kind: SourceKind::Git,
            url: Some("/srv/config.git".into()),
            branch: Some("main".into()),
            path: "envs/prod".into(),
        };
        let env = EnvShared::new(EnvStatus {
            name: "prod".into(),
            source: source.clone(),
            ..EnvStatus::default()
        });
        env.update(|s| {
            s.revision = Some("abc".into());
            s.last_result = Some(result(CycleOutcome::Applied, 0));
        });
        store.track(env);
        store.save().unwrap();

        let saved = store.saved().unwrap();
        let mut again = EnvStatus {
            name: "prod".into(),
            source: source.clone(),
            ..EnvStatus::default()
        };
        again.resume(&saved[0]);
        assert_eq!(again.revision.as_deref(), Some("abc"));
        assert_eq!(again.health, Health::Synced);

        let mut moved = EnvStatus {
            name: "prod".into(),
            source: SourceInfo {
                path: "envs/other".into(),
                ..source
            },
            ..EnvStatus::default()
        };
        moved.resume(&saved[0]);
        assert_eq!(moved.revision, None, "another source starts afresh");

        std::fs::write(dir.path().join("state.json"), "{").unwrap();
        assert!(store.saved().unwrap_err().contains("not a state file"));
    }
}

//! The jobs of one daemon: in memory with a live view per job (a `watch` channel, for event
//! streams), persisted as one file per job (`<dir>/<id>.json`, mode 0600, written atomically:
//! at creation, at every change of state, and at most every [`SAVE_EVERY`] while running),
//! loaded at start with unfinished jobs marked interrupted; finished jobs removed once old
//! enough. Also the one writer slot per target that serializes jobs into one environment.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Job, JobTarget, valid_id};
use crate::core::clock;

/// A running job's file is rewritten at most this often (its state changes always are).
pub const SAVE_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("job {id} not found")]
    NotFound { id: String },
}

impl crate::core::error::Classify for StoreError {
    fn class(&self) -> crate::core::error::ErrorClass {
        match self {
            StoreError::Io { .. } => crate::core::error::ErrorClass::Io,
            StoreError::NotFound { .. } => crate::core::error::ErrorClass::Invalid,
        }
    }
}

struct Slot {
    tx: watch::Sender<Job>,
    saved: Instant,
}

/// The jobs, their files and the writer slots.
pub struct JobStore {
    dir: PathBuf,
    jobs: Mutex<BTreeMap<String, Slot>>,
    writers: Mutex<HashMap<JobTarget, Arc<tokio::sync::Mutex<()>>>>,
}

fn io(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

impl JobStore {
    /// Open (creating it, mode 0700) the job directory and load its jobs; a job left queued or
    /// running is marked interrupted and saved so. Returns what to log: files that could not
    /// be read (left in place) and jobs interrupted.
    pub fn open(dir: &Path) -> Result<(JobStore, Vec<String>), StoreError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io(dir, e))?;
        let store = JobStore {
            dir: dir.to_path_buf(),
            jobs: Mutex::new(BTreeMap::new()),
            writers: Mutex::new(HashMap::new()),
        };
        let mut notes = Vec::new();
        let (now, now_unix) = (clock::now_rfc3339(), clock::now_unix());
        for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))?.flatten() {
            let path = entry.path();
            let Some(id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .filter(|id| valid_id(id))
            else {
                continue;
            };
            let job: Job = match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(j) => j,
                Err(e) => {
                    notes.push(format!("job file {} ignored: {e}", path.display()));
                    continue;
                }
            };
            if job.id != id {
                notes.push(format!(
                    "job file {} ignored: it holds job {}",
                    path.display(),
                    job.id
                ));
                continue;
            }
            let mut job = job;
            if job.interrupt_if_unfinished(&now, now_unix) {
                notes.push(format!(
                    "job {} ({}) marked interrupted",
                    job.id, job.target
                ));
                store.write(&job)?;
            }
            let (tx, _) = watch::channel(job);
            store.lock().insert(
                id.to_string(),
                Slot {
                    tx,
                    saved: Instant::now(),
                },
            );
        }
        Ok((store, notes))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Slot>> {
        self.jobs.lock().expect("jobs lock")
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn write(&self, job: &Job) -> Result<(), StoreError> {
        let path = self.path(&job.id);
        let bytes = serde_json::to_vec_pretty(job).expect("a job serialises");
        crate::core::fsutil::replace_atomic(&path, &bytes).map_err(|e| io(&path, e))
    }

    /// Add a new job (saved at once).
    pub fn insert(&self, job: Job) -> Result<(), StoreError> {
        self.write(&job)?;
        let (tx, _) = watch::channel(job.clone());
        self.lock().insert(
            job.id.clone(),
            Slot {
                tx,
                saved: Instant::now(),
            },
        );
        Ok(())
    }

    /// Change a job; watchers see it at once, the file follows (see the module's rules).
    pub fn update(&self, id: &str, f: impl FnOnce(&mut Job)) -> Result<(), StoreError> {
        let mut jobs = self.lock();
        let slot = jobs
            .get_mut(id)
            .ok_or_else(|| StoreError::NotFound { id: id.to_string() })?;
        let before = slot.tx.borrow().state;
        slot.tx.send_modify(f);
        let job = slot.tx.borrow().clone();
        if job.state != before || slot.saved.elapsed() >= SAVE_EVERY {
            slot.saved = Instant::now();
            drop(jobs);
            self.write(&job)?;
        }
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<Job> {
        self.lock().get(id).map(|s| s.tx.borrow().clone())
    }

    /// Every job, newest first.
    pub fn list(&self) -> Vec<Job> {
        let mut all: Vec<Job> = self
            .lock()
            .values()
            .map(|s| s.tx.borrow().clone())
            .collect();
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        all
    }

    /// The job's live view.
    pub fn subscribe(&self, id: &str) -> Option<watch::Receiver<Job>> {
        self.lock().get(id).map(|s| s.tx.subscribe())
    }

    /// Remove finished jobs older than `max_age_secs` (files included); their ids.
    pub fn cleanup(&self, now_unix: u64, max_age_secs: u64) -> Result<Vec<String>, StoreError> {
        let old: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, s)| s.tx.borrow().expired(now_unix, max_age_secs))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &old {
            let path = self.path(id);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path, e)),
            }
            self.lock().remove(id);
        }
        Ok(old)
    }

    /// Save every job as it is now (at a stop).
    pub fn flush(&self) -> Result<(), StoreError> {
        let all: Vec<Job> = self
            .lock()
            .values()
            .map(|s| s.tx.borrow().clone())
            .collect();
        for j in &all {
            self.write(j)?;
        }
        Ok(())
    }

    /// The writer slot of `target`: whoever holds it is the only job writing there.
    pub fn writer(&self, target: &JobTarget) -> Arc<tokio::sync::Mutex<()>> {
        self.writers
            .lock()
            .expect("writers lock")
            .entry(target.clone())
            .or_default()
            .clone()
    }
}

//! One reconcile at a time per environment and gateway. `apply`, every `watch` cycle and every
//! cycle of the daemon take an exclusive advisory lock (`flock`) on a file named after the
//! environment (its canonical directory, or its Git source) and the gateway's URL, in the lock
//! directory (`MCP_GITOPS_LOCK_DIR`, else `$XDG_STATE_HOME/mcp-gitops/locks`, else
//! `~/.local/state/mcp-gitops/locks`). The holder writes who it is (pid, command, since when)
//! into the file; a second process waits, saying so, up to a timeout, then gives up naming the
//! holder. The kernel releases the lock when the holder exits, however it exits.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::apply::Cancel;

/// What is locked: an environment on a gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// The environment's canonical directory, or its source (`git URL@branch:path`).
    pub env: String,
    /// The gateway's base URL.
    pub gateway: String,
}

impl Key {
    pub fn new(env: impl Into<String>, gateway: &str) -> Key {
        Key {
            env: env.into(),
            gateway: gateway.trim_end_matches('/').to_string(),
        }
    }

    /// An environment directory (canonicalised, so that every way of naming it is one lock).
    pub fn for_dir(dir: &Path, gateway: &str) -> Key {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        Key::new(dir.display().to_string(), gateway)
    }

    fn file_name(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.env.as_bytes());
        h.update([0]);
        h.update(self.gateway.as_bytes());
        let hex: String = h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{hex}.lock")
    }
}

/// Who holds a lock (written into the lock file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    /// `mcp-gitops apply /srv/envs/prod` (never arguments that may carry secrets).
    pub command: String,
    pub since: String,
    pub env: String,
    pub gateway: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} ({}) since {}",
            self.pid, self.command, self.since
        )
    }
}

fn holder_text(h: Option<&Holder>) -> String {
    h.map_or_else(|| "another process".to_string(), ToString::to_string)
}

fn gave_up(waited: &Duration) -> String {
    if waited.is_zero() {
        "not waiting (--lock-timeout 0)".into()
    } else {
        format!("gave up after {}s (--lock-timeout)", waited.as_secs())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{} on {}: locked by {}; {} (lock file {})",
        key.env, key.gateway, holder_text(holder.as_deref()), gave_up(waited), path.display()
    )]
    Busy {
        key: Box<Key>,
        path: PathBuf,
        holder: Option<Box<Holder>>,
        waited: Duration,
    },
    #[error("{} on {}: stopped while waiting for the lock", key.env, key.gateway)]
    Cancelled { key: Box<Key> },
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A second process is waiting (passed to the caller once, to tell its user).
pub struct Waiting<'a> {
    pub key: &'a Key,
    pub holder: Option<Holder>,
    pub timeout: Duration,
}

impl std::fmt::Display for Waiting<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "waiting for the lock on {} on {}, held by {}; up to {}s",
            self.key.env,
            self.key.gateway,
            holder_text(self.holder.as_ref()),
            self.timeout.as_secs()
        )
    }
}

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct EnvLock {
    file: File,
}

impl Drop for EnvLock {
    fn drop(&mut self) {
        // Nobody holds it once closed: say so before the kernel lets the next one in.
        let _ = self.file.set_len(0);
    }
}

/// The lock directory (see the module's documentation).
pub fn lock_dir() -> PathBuf {
    let var = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("MCP_GITOPS_LOCK_DIR")
        .or_else(|| var("XDG_STATE_HOME").map(|d| d.join("mcp-gitops/locks")))
        .or_else(|| var("HOME").map(|d| d.join(".local/state/mcp-gitops/locks")))
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("mcp-gitops-{}/locks", unsafe { libc::geteuid() }))
        })
}

fn open(dir: &Path, key: &Key) -> Result<(File, PathBuf), LockError> {
    let path = dir.join(key.file_name());
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    // A directory someone else owns (a shared temporary directory) is not trusted.
    let meta = std::fs::symlink_metadata(dir).map_err(io)?;
    if !meta.is_dir() || meta.uid() != unsafe { libc::geteuid() } {
        return Err(io(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the lock directory is not a directory owned by this user",
        )));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(io)?;
    Ok((file, path))
}

/// Try once: Ok(true) when taken, Ok(false) when another holds it.
fn try_flock(file: &File) -> io::Result<bool> {
    loop {
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(e),
        }
    }
}

fn read_holder(path: &Path) -> Option<Holder> {
    let mut text = String::new();
    File::open(path)
        .ok()?
        .take(64 * 1024)
        .read_to_string(&mut text)
        .ok()?;
    serde_json::from_str(text.trim()).ok()
}

/// Take the lock for `key` in `dir`, waiting up to `timeout` (zero: not at all) while another
/// process holds it; `on_wait` is told once when waiting starts. `command` is recorded as the
/// holder's. A `cancel` stops the wait.
pub async fn acquire(
    dir: &Path,
    key: &Key,
    command: &str,
    timeout: Duration,
    cancel: &Cancel,
    on_wait: &(dyn Fn(&Waiting<'_>) + Sync),
) -> Result<EnvLock, LockError> {
    let (mut file, path) = open(dir, key)?;
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    let started = Instant::now();
    let mut pause = Duration::from_millis(10);
    let mut told = false;
    while !try_flock(&file).map_err(io)? {
        if started.elapsed() >= timeout {
            return Err(LockError::Busy {
                key: Box::new(key.clone()),
                holder: read_holder(&path).map(Box::new),
                path,
                waited: timeout,
            });
        }
        if cancel.is_cancelled() {
            return Err(LockError::Cancelled {
                key: Box::new(key.clone()),
            });
        }
        if !told {
            told = true;
            on_wait(&Waiting {
                key,
                holder: read_holder(&path),
                timeout,
            });
        }
        let left = timeout.saturating_sub(started.elapsed());
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
    let holder = Holder {
        pid: std::process::id(),
        command: command.to_string(),
        since: crate::core::clock::now_rfc3339(),
        env: key.env.clone(),
        gateway: key.gateway.clone(),
    };
    let line = serde_json::to_string(&holder).expect("a holder serialises") + "\n";
    file.set_len(0).map_err(io)?;
    std::io::Seek::rewind(&mut file).map_err(io)?;
    file.write_all(line.as_bytes()).map_err(io)?;
    Ok(EnvLock { file })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key::new("/srv/envs/dev", "http://gw:4444/")
    }

    async fn take(dir: &Path, timeout: Duration) -> Result<EnvLock, LockError> {
        acquire(
            dir,
            &key(),
            "mcp-gitops test",
            timeout,
            &Cancel::default(),
            &|_| {},
        )
        .await
    }

    #[tokio::test]
    async fn a_second_taker_fails_naming_the_holder_then_gets_it_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let held = take(dir.path(), Duration::ZERO).await.unwrap();
        // flock locks belong to open files: a second open in this process conflicts too.
        let e = take(dir.path(), Duration::ZERO).await.unwrap_err();
        let LockError::Busy { holder, .. } = &e else {
            panic!("{e}")
        };
        let h = holder.as_deref().unwrap();
        assert_eq!(h.pid, std::process::id());
        assert_eq!(h.command, "mcp-gitops test");
        assert_eq!(h.gateway, "http://gw:4444");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!(
                "/srv/envs/dev on http://gw:4444: locked by pid {} (mcp-gitops test) since ",
                std::process::id()
            )) && msg.contains("; not waiting (--lock-timeout 0)"),
            "{msg}"
        );
        drop(held);
        take(dir.path(), Duration::ZERO).await.unwrap();
    }

    #[tokio::test]
    async fn a_waiter_is_told_and_gets_the_lock_when_it_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let held = take(dir.path(), Duration::ZERO).await.unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let tx = std::sync::Mutex::new(tx);
        let waiter = {
            let dir = dir.path().to_path_buf();
            tokio::spawn(async move {
                let tell = move |w: &Waiting<'_>| {
                    let _ = tx.lock().unwrap().send(w.to_string());
                };
                acquire(
                    &dir,
                    &key(),
                    "second",
                    Duration::from_secs(60),
                    &Cancel::default(),
                    &tell,
                )
                .await
            })
        };
        // Released only once the waiter said it waits.
        let told = tokio::task::spawn_blocking(move || rx.recv().unwrap())
            .await
            .unwrap();
        assert!(
            told.starts_with(
                "waiting for the lock on /srv/envs/dev on http://gw:4444, held by pid "
            ),
            "{told}"
        );
        assert!(told.ends_with("; up to 60s"), "{told}");
        drop(held);
        let lock = waiter.await.unwrap().unwrap();
        let h = read_holder(&dir.path().join(key().file_name())).unwrap();
        assert_eq!(h.command, "second");
        drop(lock);
        assert_eq!(read_holder(&dir.path().join(key().file_name())), None);
    }

    #[tokio::test]
    async fn a_cancel_stops_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let _held = take(dir.path(), Duration::ZERO).await.unwrap();
        let cancel = Cancel::default();
        cancel.cancel();
        let e = acquire(
            dir.path(),
            &key(),
            "x",
            Duration::from_secs(60),
            &cancel,
            &|_| {},
        )
        .await
        .unwrap_err();
        assert!(matches!(e, LockError::Cancelled { .. }), "{e}");
    }

    #[test]
    fn keys_name_one_file_per_environment_and_gateway() {
        let dir = tempfile::tempdir().unwrap();
        let a = Key::for_dir(dir.path(), "http://gw:4444");
        let b = Key::for_dir(&dir.path().join("."), "http://gw:4444/");
        assert_eq!(a.file_name(), b.file_name());
        assert_ne!(
            a.file_name(),
            Key::for_dir(dir.path(), "http://other:4444").file_name()
        );
    }
}

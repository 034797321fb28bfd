//! Output files. What an output path names decides how it is written:
//!
//! - a regular file, or nothing yet: atomically — a temporary file beside it, synced, then
//!   renamed over it — keeping the replaced file's permission bits (and, where allowed, its
//!   owner); a new file is created private (0600: documents carry encrypted credentials). A
//!   failed write leaves nothing behind;
//! - a symbolic link: followed; its target is replaced as above (the temporary file lives beside
//!   the target) and the link stays;
//! - a FIFO or a character device (a pipe, a terminal, `/dev/null`): written through, and a
//!   write error (ENOSPC on `/dev/full`) is reported;
//! - `/dev/stdout`, `/dev/stderr` (and `/dev/fd/1`, `/dev/fd/2`): the process's own streams;
//! - a directory, a block device or a socket: refused, nothing written.
//!
//! Files inside a Git working copy are written with [`replace_atomic`] instead, which never
//! follows a symbolic link.
//!
//! Paths read on behalf of others can be confined to a directory ([`confined`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Kinds of file that are never written as an output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unwritable {
    Directory,
    BlockDevice,
    Socket,
    Other,
}

impl std::fmt::Display for Unwritable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unwritable::Directory => "a directory",
            Unwritable::BlockDevice => "a block device",
            Unwritable::Socket => "a socket",
            Unwritable::Other => "a special file",
        })
    }
}

/// An output path that names something that is not written (carried inside the
/// [`io::Error`] that [`write_atomic`] returns; its kind is `InvalidInput`).
#[derive(Debug, thiserror::Error)]
#[error("it is {kind}; an output must be a regular file, a FIFO or a character device")]
pub struct Refused {
    pub path: PathBuf,
    pub kind: Unwritable,
}

/// Which of the process's own streams a path names (`/dev/stdout` → 1, `/dev/stderr` → 2).
fn std_stream(path: &Path) -> Option<u8> {
    match path.to_str()? {
        "/dev/stdout" | "/dev/fd/1" | "/proc/self/fd/1" => Some(1),
        "/dev/stderr" | "/dev/fd/2" | "/proc/self/fd/2" => Some(2),
        _ => None,
    }
}

/// `-` or `/dev/stdout`: the output is standard output.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-" || std_stream(path) == Some(1)
}

/// How an output path is written.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    Stream(u8),
    /// Atomically replace (or create) this regular file: the path with symlinks resolved.
    Replace(PathBuf),
    Through,
}

fn refused(path: &Path, kind: Unwritable) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        Refused {
            path: path.to_path_buf(),
            kind,
        },
    )
}

fn plan(path: &Path) -> io::Result<Plan> {
    if let Some(s) = std_stream(path) {
        return Ok(Plan::Stream(s));
    }
    match std::fs::metadata(path) {
        Ok(m) => {
            let t = m.file_type();
            if t.is_file() {
                Ok(Plan::Replace(resolve(path)?))
            } else if t.is_fifo() || t.is_char_device() {
                Ok(Plan::Through)
            } else {
                Err(refused(path, unwritable(&t)))
            }
        }
        // Nothing there, or a symlink to nothing: create (the link's target).
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Plan::Replace(resolve(path)?)),
        Err(e) => Err(e),
    }
}

fn unwritable(t: &std::fs::FileType) -> Unwritable {
    if t.is_dir() {
        Unwritable::Directory
    } else if t.is_block_device() {
        Unwritable::BlockDevice
    } else if t.is_socket() {
        Unwritable::Socket
    } else {
        Unwritable::Other
    }
}

/// Follow symbolic links (also dangling ones) to the path they finally name.
fn resolve(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) => dir.join(to),
                    None => to,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(io::Error::from_raw_os_error(libc::ELOOP))
}

/// Write `bytes` to the output `path` (see the module's documentation for what it does with
/// each kind of file).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    match plan(path)? {
        Plan::Stream(1) => {
            let mut out = io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()
        }
        Plan::Stream(_) => {
            let mut err = io::stderr().lock();
            err.write_all(bytes)?;
            err.flush()
        }
        Plan::Through => write_through(path, bytes),
        Plan::Replace(target) => replace(&target, bytes),
    }
}

/// Write `bytes` atomically to the file at `path` itself, for files inside a Git working copy:
/// whatever is at the path is replaced by a regular file, and a symbolic link there is never
/// followed (a repository's link may point outside it).
pub fn replace_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes)
}

/// Refuse a repository-relative path whose directories (below `root`) include a symbolic link:
/// a file written there would land outside the working copy.
pub fn check_inside(root: &Path, rel: &str) -> io::Result<()> {
    let mut p = root.to_path_buf();
    let parts: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        p.push(part);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{part} is a symbolic link in the repository; not written through it"),
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn write_through(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // No create, no truncate: it exists and is not a regular file (checked again on the open
    // file, in case it was swapped since).
    let mut f = OpenOptions::new().write(true).open(path)?;
    let t = f.metadata()?.file_type();
    if !(t.is_fifo() || t.is_char_device()) {
        return Err(refused(path, unwritable(&t)));
    }
    f.write_all(bytes)?;
    f.flush()
}

fn replace(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".mcp-gitops-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    if let Ok(old) = std::fs::symlink_metadata(target)
        && old.is_file()
    {
        keep_owner_and_mode(tmp.as_file(), &old)?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(target).map_err(|e| e.error)?;
    // The rename itself survives a crash once the directory is synced (best effort).
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Why a path may not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is outside {root} (after resolving '..' and symbolic links)")]
    Outside { path: String, root: String },
}

/// `path` (a relative one is taken relative to `root`) with `..` and every symbolic link
/// resolved, when that is `root` itself or inside it (`root` resolved too). The path must
/// exist.
pub fn confined(root: &Path, path: &Path) -> Result<PathBuf, ConfineError> {
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| ConfineError::Io { path, source }
    };
    let real_root = root.canonicalize().map_err(io(root))?;
    let joined = root.join(path);
    let real = joined.canonicalize().map_err(io(&joined))?;
    if !real.starts_with(&real_root) {
        return Err(ConfineError::Outside {
            path: joined.display().to_string(),
            root: root.display().to_string(),
        });
    }
    Ok(real)
}

/// The replaced file's permission bits; its owner and group where the process may set them.
fn keep_owner_and_mode(tmp: &File, old: &std::fs::Metadata) -> io::Result<()> {
    let mine = tmp.metadata()?;
    if (mine.uid(), mine.gid()) != (old.uid(), old.gid())
        && std::os::unix::fs::fchown(tmp, Some(old.uid()), Some(old.gid())).is_err()
    {
        let _ = std::os::unix::fs::fchown(tmp, None, Some(old.gid()));
    }
    tmp.set_permissions(std::fs::Permissions::from_mode(old.mode() & 0o777))
}

/// Check, before any work, that `path` can be an output: its kind is one that is written, and
/// a file to be replaced or created can be created in its (target's) directory.
pub fn check_output(path: &Path) -> io::Result<()> {
    match plan(path)? {
        Plan::Stream(_) | Plan::Through => Ok(()),
        Plan::Replace(target) => {
            let dir = match target.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            tempfile::Builder::new()
                .prefix(".mcp-gitops-probe-")
                .tempfile_in(dir)
                .map(drop)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o777
    }

    #[test]
    fn confined_paths_stay_inside_after_dot_dot_and_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/token"), "x").unwrap();
        std::fs::write(t.path().join("outside"), "secret").unwrap();
        let real_root = root.canonicalize().unwrap();
        // Inside: relative, with a '..' that stays inside, absolute, and the root itself.
        assert_eq!(
            confined(&root, Path::new("a/token")).unwrap(),
            real_root.join("a/token")
        );
        assert_eq!(
            confined(&root, Path::new("a/b/../token")).unwrap(),
            real_root.join("a/token")
        );
        assert_eq!(
            confined(&root, &root.join("a/b")).unwrap(),
            real_root.join("a/b")
        );
        assert_eq!(confined(&root, Path::new(".")).unwrap(), real_root);
        // A symbolic link inside pointing inside is fine.
        std::os::unix::fs::symlink(root.join("a/token"), root.join("link-in")).unwrap();
        assert_eq!(
            confined(&root, Path::new("link-in")).unwrap(),
            real_root.join("a/token")
        );
        // Outside: '..', an absolute path, a symbolic link (to a file or a directory), and a
        // prefix that is not a path component (root-x is not inside root).
        std::fs::create_dir_all(t.path().join("root-x")).unwrap();
        std::os::unix::fs::symlink(t.path().join("outside"), root.join("link-out")).unwrap();
        std::os::unix::fs::symlink(t.path(), root.join("a/dir-out")).unwrap();
        for p in [
            PathBuf::from("../outside"),
            PathBuf::from("a/b/../../../outside"),
            t.path().join("outside"),
            PathBuf::from("/etc/hostname"),
            PathBuf::from("link-out"),
            PathBuf::from("a/dir-out/outside"),
            PathBuf::from("a/dir-out"),
            PathBuf::from("../root-x"),
        ] {
            match confined(&root, &p) {
                Err(ConfineError::Outside { path, .. }) => {
                    assert!(path.ends_with(p.to_str().unwrap()), "{path} for {p:?}")
                }
                other => panic!("{p:?}: {other:?}"),
            }
        }
        // Missing: an error naming the path, not a panic.
        let err = confined(&root, Path::new("nope")).unwrap_err();
        assert!(matches!(err, ConfineError::Io { .. }), "{err}");
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn a_regular_file_is_replaced_keeping_its_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        std::fs::write(&p, "one").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let before = std::fs::metadata(&p).unwrap().ino();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_ne!(std::fs::metadata(&p).unwrap().ino(), before, "renamed over");
        assert_eq!(mode(&p), 0o640);
        assert_eq!(names(dir.path()), ["out.json"]);
    }

    #[test]
    fn a_missing_file_is_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new.json");
        write_atomic(&p, b"x").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"x");
        assert_eq!(mode(&p), 0o600);
        assert_eq!(names(dir.path()), ["new.json"]);
    }

    #[test]
    fn a_missing_directory_fails_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no/such/dir/out.json");
        assert!(write_atomic(&p, b"x").is_err());
        assert!(check_output(&p).is_err());
        assert!(!p.exists());
    }

    #[test]
    fn a_symlink_is_kept_and_its_target_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let links = dir.path().join("links");
        std::fs::create_dir(&links).unwrap();
        let target = real.join("backup.json");
        std::fs::write(&target, "old").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        // A relative link, through a second link: both are followed.
        let link = links.join("current.json");
        std::os::unix::fs::symlink("../real/backup.json", &link).unwrap();
        let link2 = links.join("alias.json");
        std::os::unix::fs::symlink("current.json", &link2).unwrap();

        write_atomic(&link2, b"new").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        for l in [&link, &link2] {
            assert!(
                std::fs::symlink_metadata(l)
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
        }
        assert_eq!(
            std::fs::read_link(&link2).unwrap(),
            Path::new("current.json")
        );
        assert_eq!(mode(&target), 0o644);
        assert_eq!(names(&real), ["backup.json"]);
        assert_eq!(names(&links), ["alias.json", "current.json"]);
    }

    #[test]
    fn in_a_working_copy_a_symlink_is_replaced_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "keep").unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        let link = repo.join("backup.json");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        replace_atomic(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().is_file());
        assert_eq!(std::fs::read(&link).unwrap(), b"new");
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
        assert_eq!(names(&repo), ["backup.json"]);
    }

    #[test]
    fn a_symlinked_directory_in_a_working_copy_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join("real")).unwrap();
        std::os::unix::fs::symlink(dir.path(), repo.join("backups")).unwrap();
        let e = check_inside(&repo, "backups/prod.json").unwrap_err();
        assert!(
            e.to_string().starts_with("backups is a symbolic link"),
            "{e}"
        );
        check_inside(&repo, "real/prod.json").unwrap();
        check_inside(&repo, "new/dir/prod.json").unwrap();
        // The file itself may be a link: replace_atomic replaces it.
        check_inside(&repo, "backups").unwrap();
    }

    #[test]
    fn a_dangling_symlink_creates_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("made.json", &link).unwrap();
        write_atomic(&link, b"x").unwrap();
        assert_eq!(std::fs::read(dir.path().join("made.json")).unwrap(), b"x");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn a_symlink_loop_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::os::unix::fs::symlink("b", &a).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("b")).unwrap();
        let e = write_atomic(&a, b"x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{e}");
        assert_eq!(names(dir.path()), ["a", "b"]);
    }

    #[test]
    fn a_fifo_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let mut s = String::new();
                File::open(&fifo).unwrap().read_to_string(&mut s).unwrap();
                s
            })
        };
        check_output(&fifo).unwrap();
        write_atomic(&fifo, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), "through the pipe");
        assert!(
            std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo()
        );
        assert_eq!(names(dir.path()), ["pipe"]);
    }

    #[test]
    fn dev_full_reports_the_write_error_and_stays_a_device() {
        let p = Path::new("/dev/full");
        check_output(p).unwrap();
        let e = write_atomic(p, b"x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
        assert!(std::fs::metadata(p).unwrap().file_type().is_char_device());
    }

    #[test]
    fn dev_null_works() {
        write_atomic(Path::new("/dev/null"), b"gone").unwrap();
        assert!(
            std::fs::metadata("/dev/null")
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }

    #[test]
    fn directories_and_sockets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        for (p, kind) in [
            (dir.path().to_path_buf(), Unwritable::Directory),
            (sock.clone(), Unwritable::Socket),
        ] {
            for e in [write_atomic(&p, b"x"), check_output(&p)] {
                let e = e.unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
                let r = e.get_ref().and_then(|r| r.downcast_ref::<Refused>());
                assert_eq!(r.map(|r| r.kind), Some(kind), "{e}");
            }
        }
        assert!(
            write_atomic(dir.path(), b"x")
                .unwrap_err()
                .to_string()
                .starts_with("it is a directory;")
        );
        assert_eq!(names(dir.path()), ["sock"]);
    }

    #[test]
    fn dev_stdout_is_standard_output() {
        for p in ["-", "/dev/stdout", "/dev/fd/1"] {
            assert!(is_stdout(Path::new(p)), "{p}");
        }
        assert!(!is_stdout(Path::new("/dev/stderr")));
        assert!(!is_stdout(Path::new("out.json")));
        assert_eq!(plan(Path::new("/dev/stdout")).unwrap(), Plan::Stream(1));
        assert_eq!(plan(Path::new("/dev/stderr")).unwrap(), Plan::Stream(2));
    }
}

//! Files are written atomically: a temporary file beside the target, synced, then renamed.
//! A failed write leaves nothing behind. Paths read on behalf of others can be confined to a
//! directory ([`confined`]).

use std::io::Write;
use std::path::{Path, PathBuf};

/// Write `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".mcp-gitops-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn writes_and_replaces_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_directory_fails_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no/such/dir/out.json");
        assert!(write_atomic(&p, b"x").is_err());
        assert!(!p.exists());
    }
}

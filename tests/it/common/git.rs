//! Git for tests: the `git` CLI as somebody else, bare repositories, a real sshd on loopback,
//! and `git http-backend` over HTTPS behind Basic authentication.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The `git` CLI as somebody else, with no user or system configuration.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "someone")
        .env("GIT_AUTHOR_EMAIL", "someone@example.com")
        .env("GIT_COMMITTER_NAME", "someone")
        .env("GIT_COMMITTER_EMAIL", "someone@example.com")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// An empty bare repository `name` under `dir`.
pub fn bare(dir: &Path, name: &str) -> PathBuf {
    git(dir, &["init", "-q", "--bare", "-b", "main", name]);
    dir.join(name)
}

/// sshd on loopback, run in the foreground and stopped on drop.
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: std::process::Child,
}

impl Sshd {
    pub fn start() -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let script = super::root().join("tests/git/sshd.sh");
        let out = Command::new(&script)
            .arg("prepare")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sshd is needed for this test (make test installs it: tests/git/sshd.sh install): {}",
            stderr(&out)
        );
        let port: u16 = stdout(&out).trim().parse().unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-f"])
            .arg(dir.path().join("sshd_config"))
            .arg("-E")
            .arg(dir.path().join("sshd.log"))
            .spawn()
            .unwrap();
        // Stopped by Drop, also when it never listens.
        let sshd = Sshd { dir, port, child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return sshd;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "sshd did not listen: {}",
            std::fs::read_to_string(sshd.dir.path().join("sshd.log")).unwrap_or_default()
        );
    }

    /// The `ssh://` URL of a repository on this host, as the current user.
    pub fn url(&self, repo: &Path) -> String {
        let user =
            String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            user.trim(),
            self.port,
            repo.display()
        )
    }

    pub fn host_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("host_key.pub")).unwrap()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `git http-backend` over HTTPS on loopback (`tests/git/https_git.py`) serving the
/// repositories under a directory, with a self-signed certificate for 127.0.0.1 and Basic
/// authentication as `user` with `token`; stopped on drop.
pub struct HttpsGit {
    pub port: u16,
    /// The certificate (trust it with `SSL_CERT_FILE`).
    pub cert: PathBuf,
    _server: super::tls::Served,
}

impl HttpsGit {
    pub fn start(root: &Path, user: &str, token: &str) -> HttpsGit {
        let (cert, key) = super::tls::self_signed(root, "git-cert");
        let mut cmd = Command::new("python3");
        cmd.arg(super::root().join("tests/git/https_git.py"))
            .arg(root)
            .arg(&cert)
            .arg(&key)
            .env("GIT_TEST_USER", user)
            .env("GIT_TEST_TOKEN", token);
        let server = super::tls::Served::start(cmd, "the HTTPS Git server");
        HttpsGit {
            port: server.port,
            cert,
            _server: server,
        }
    }

    /// The URL of repository `name` (a bare repository under the served directory).
    pub fn url(&self, name: &str) -> String {
        format!("https://127.0.0.1:{}/{name}", self.port)
    }
}

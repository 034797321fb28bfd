//! TLS for tests: a self-signed certificate for 127.0.0.1 (Debian's `openssl`), and a TLS front
//! (`tests/gateway/tls_proxy.py`) for a loopback HTTP server.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl req` with a fresh P-256 key written to `key`.
fn req(key: &Path) -> Command {
    let mut c = Command::new("openssl");
    c.args([
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
    ])
    .args(["-nodes", "-keyout"])
    .arg(key);
    c
}

/// A fresh self-signed certificate (and its key) for `127.0.0.1`, in `dir`: (cert, key).
pub fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    run(req(&key)
        .args(["-x509", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-out"])
        .arg(&cert));
    (cert, key)
}

/// A private CA and a server certificate for `127.0.0.1` it signed, in `dir`:
/// (CA certificate, server certificate, server key). Verifiers that refuse a CA certificate
/// as a server's (rustls) need this rather than [`self_signed`].
pub fn private_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let (ca, ca_key, csr, leaf, key, ext) = (
        p("ca.pem"),
        p("ca-key.pem"),
        p("leaf.csr"),
        p("leaf.pem"),
        p("leaf-key.pem"),
        p("leaf.ext"),
    );
    run(req(&ca_key)
        .args(["-x509", "-days", "1", "-subj", "/CN=mcp-gitops test CA"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out"])
        .arg(&ca));
    run(req(&key).args(["-subj", "/CN=127.0.0.1", "-out"]).arg(&csr));
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "1", "-CAcreateserial", "-in"])
        .arg(&csr)
        .arg("-CA")
        .arg(&ca)
        .arg("-CAkey")
        .arg(&ca_key)
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(&leaf));
    (ca, leaf, key)
}

/// A server process that prints its port on its first line; killed on drop.
pub struct Served {
    pub port: u16,
    child: Child,
}

impl Served {
    /// Start `cmd` (stdout piped) and read the port it prints.
    pub fn start(mut cmd: Command, what: &str) -> Served {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // Killed by Drop, also when the port is not printed.
        let served = Served {
            port: line.trim().parse().unwrap_or(0),
            child,
        };
        assert_ne!(served.port, 0, "{what} did not start");
        served
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// TLS with `cert`/`key` in front of `127.0.0.1:upstream`.
pub fn front(cert: &Path, key: &Path, upstream: u16) -> Served {
    let mut cmd = Command::new("python3");
    cmd.arg(super::root().join("tests/gateway/tls_proxy.py"))
        .arg(cert)
        .arg(key)
        .arg(upstream.to_string());
    Served::start(cmd, "the TLS front")
}

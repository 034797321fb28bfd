//! Remotes over SSH (a real sshd on loopback, host keys checked against known_hosts) and HTTPS
//! (`git http-backend` behind Basic authentication and a self-signed certificate).

use std::process::Command;

use super::*;
use crate::common::git::{HttpsGit, Sshd};

#[tokio::test(flavor = "multi_thread")]
async fn ssh_remotes_verify_the_host_key() {
    let sshd = Sshd::start();
    let gw = Gateway::start();
    let root = gw.dir.path();
    let remote = bare(root, "remote.git");
    let url = sshd.url(&remote);
    import(
        &gw,
        &json!({"version": "2025-03-26", "entities": {
            "tools": [{"name": "over-ssh", "url": "https://o.example.com/v1", "request_type": "GET"}]}}),
    );
    let hosts = root.join("known_hosts");
    let key = sshd.dir.path().join("client_key");
    let backup = |extra: &[&str]| {
        gw.cmd()
            .args([
                "backup", "--once", "--user", ADMIN, "--path", "gw.yaml", "--repo", &url,
            ])
            .arg("--ssh-key")
            .arg(&key)
            .arg("--known-hosts")
            .arg(&hosts)
            .arg("--cache-dir")
            .arg(root.join("cache"))
            .args(extra)
            .output()
            .unwrap()
    };

    // Unknown host: refused, exit 5, nothing pushed.
    std::fs::write(&hosts, "").unwrap();
    let out = backup(&[]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "refusing the SSH host key of [127.0.0.1]:{}: no ssh-ed25519 key",
            sshd.port
        )),
        "{}",
        stderr(&out)
    );
    // A different key on record: refused as changed.
    let other = root.join("other_key");
    Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    std::fs::write(&hosts, format!("[127.0.0.1]:{} {other_pub}", sshd.port)).unwrap();
    let out = backup(&[]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("differs from the one in"),
        "{}",
        stderr(&out)
    );
    assert_eq!(git(&remote, &["branch", "--list"]), "", "nothing pushed");

    // The right key: clone, commit and push over SSH.
    std::fs::write(
        &hosts,
        format!("[127.0.0.1]:{} {}", sshd.port, sshd.host_key()),
    )
    .unwrap();
    let out = backup(&[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(show(&remote, "main:gw.yaml").contains("over-ssh"));
    // Opting out of the check works, and says so.
    std::fs::write(&hosts, "").unwrap();
    let fresh = Gateway::start();
    let out = fresh
        .cmd()
        .args([
            "restore", "--user", ADMIN, "--repo", &url, "--rev", "main", "--path", "gw.yaml",
        ])
        .arg("--ssh-key")
        .arg(&key)
        .arg("--known-hosts")
        .arg(&hosts)
        .arg("--insecure-skip-host-key-check")
        .arg("--cache-dir")
        .arg(fresh.dir.path().join("cache"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("not checking the SSH host key"),
        "{}",
        stderr(&out)
    );
    assert_eq!(tool_count(&fresh).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn https_remotes_take_the_token_from_the_environment() {
    const TOKEN: &str = "CANARY-git-token-3f9a";
    let gw = Gateway::start();
    let root = gw.dir.path();
    let remote = bare(root, "remote.git");
    let server = HttpsGit::start(root, "x-access-token", TOKEN);
    let url = format!("https://127.0.0.1:{}/remote.git", server.port);
    import(
        &gw,
        &json!({"version": "2025-03-26", "entities": {
            "tools": [{"name": "over-https", "url": "https://o.example.com/v1", "request_type": "GET"}]}}),
    );
    let backup = |token: Option<&str>, trusted: bool| {
        let mut c = gw.cmd();
        c.args([
            "backup", "--once", "--user", ADMIN, "--path", "gw.json", "--repo", &url,
        ])
        .arg("--cache-dir")
        .arg(root.join("cache"));
        if let Some(t) = token {
            c.env("BACKUP_GIT_TOKEN", t)
                .args(["--git-token-env", "BACKUP_GIT_TOKEN"]);
        }
        if trusted {
            c.env("SSL_CERT_FILE", &server.cert);
        }
        c.output().unwrap()
    };
    let no_leak = |o: &std::process::Output| {
        let all = stdout(o) + &stderr(o);
        assert!(!all.contains("CANARY"), "a token in the output: {all}");
    };

    let out = backup(None, true);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the server asks for credentials"),
        "{}",
        stderr(&out)
    );
    let out = backup(Some("CANARY-wrong-token"), true);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the token was not accepted"),
        "{}",
        stderr(&out)
    );
    no_leak(&out);
    let out = backup(Some(TOKEN), false);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("TLS certificate is not trusted"),
        "{}",
        stderr(&out)
    );
    assert_eq!(git(&remote, &["branch", "--list"]), "", "nothing pushed");

    let out = backup(Some(TOKEN), true);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    no_leak(&out);
    assert!(show(&remote, "main:gw.json").contains("over-https"));
    let config = std::fs::read_dir(root.join("cache"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| std::fs::read_to_string(e.path().join(".git/config")).unwrap())
        .collect::<String>();
    assert!(!config.contains("CANARY"), "the token was stored: {config}");
}

//! Git sources end to end: a bare repository served by a real sshd on loopback (host key in the
//! Secret's `known_hosts`, the client key as its `identity`) and by `git http-backend` over
//! HTTPS with Basic authentication; the controller fetches it as the daemon does.
//!
//! SSH: a wrong host key → Stalled `GitFailed`, nothing written; the Secret fixed → applied at
//! once (the interval is an hour: only the Secret's watch can bring it), with the base the
//! directory names; a key with a passphrase (a wrong one stalls); a pushed commit → applied
//! within an interval, the status naming the new commit; quiet intervals write nothing; a
//! missing path stalls, an unreachable host is retried (Reconciling); no key or passphrase
//! appears in the log, the status or the state directory; deleting the config drops its clone.
//! A `GatewayBackup` with a `secretRef` pushes over SSH with the same Secret keys.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use mcp_gitops::k8s::crd::GatewayConfig;
use serde_json::{Value, json};

use super::{Cluster, condition, eventually, tool_doc};
use crate::common::free_port;
use crate::common::git::{HttpsGit, Sshd, bare, git};
use crate::common::kube_api::NS;

/// A work tree pushing to `remote`'s main.
struct Work {
    dir: std::path::PathBuf,
}

impl Work {
    fn new(root: &Path, remote: &Path) -> Work {
        let dir = root.join("work");
        std::fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "-q", "-b", "main"]);
        git(
            &dir,
            &["remote", "add", "origin", &remote.display().to_string()],
        );
        Work { dir }
    }

    /// Write `files`, commit, push; the commit id.
    fn push(&self, files: &[(&str, &str)], message: &str) -> String {
        for (rel, text) in files {
            let f = self.dir.join(rel);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, text).unwrap();
        }
        git(&self.dir, &["add", "-A"]);
        git(&self.dir, &["commit", "-q", "-m", message]);
        git(&self.dir, &["push", "-q", "origin", "HEAD:main"]);
        git(&self.dir, &["rev-parse", "HEAD"]).trim().to_string()
    }
}

async fn patch_config(c: &Cluster, name: &str, spec: Value) {
    Api::<GatewayConfig>::namespaced(c.client(), NS)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": spec })),
        )
        .await
        .expect("edit the GatewayConfig");
}

async fn patch_secret(c: &Cluster, name: &str, data: Value) {
    Api::<Secret>::namespaced(c.client(), NS)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "stringData": data })),
        )
        .await
        .expect("edit the Secret");
}

fn message(obj: &Value, kind: &str) -> String {
    condition(obj, kind).unwrap()["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Every file's bytes under `dir`, for "is this value anywhere on disk".
fn files_contain(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .unwrap_or_default()
                .windows(needle.len())
                .any(|w| w == needle)
            {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssh_source_is_applied_follows_pushes_and_refuses_an_unknown_host_key() {
    let sshd = Sshd::start();
    let c = Cluster::start();
    c.jwt_gateway("gw").await;
    let root = c.dir.path();
    let remote = bare(root, "config.git");
    let work = Work::new(root, &remote);
    let first = work.push(
        &[
            (
                "envs/base/tools.yaml",
                &tool_doc("k8s-git-base", "from the base"),
            ),
            ("envs/prod/mcp-gitops.yaml", "bases: [../base]\n"),
            ("envs/prod/tools.yaml", &tool_doc("k8s-git", "first")),
        ],
        "prod, on a base",
    );
    let identity = std::fs::read_to_string(sshd.dir.path().join("client_key")).unwrap();
    // A line of the key's body: must never appear anywhere.
    let key_line = identity.lines().nth(2).unwrap().to_string();
    let host = format!("[127.0.0.1]:{}", sshd.port);
    let other = root.join("other_key");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    let wrong = format!(
        "{host} {}",
        std::fs::read_to_string(other.with_extension("pub")).unwrap()
    );
    c.secret(
        "repo-ssh",
        &[("identity", &identity), ("known_hosts", &wrong)],
    )
    .await;
    let url = sshd.url(&remote);
    let git_source = |url: &str, path: &str| {
        json!([{"git": {"url": url, "branch": "main", "path": path,
                        "secretRef": {"name": "repo-ssh"}}}])
    };
    let source = git_source(&url, "envs/prod");
    c.gateway_config(
        "prod",
        "gw",
        "-",
        json!({"sources": source, "interval": "1h"}),
    )
    .await;
    let before = c.gw.get("/v1/tools?limit=0").await;
    // Debug logging: the leak checks below read everything the controller says.
    let debug = std::ffi::OsStr::new("mcp_gitops=debug");
    let ctl = c.controller_with(&c.api.url.clone(), "one", &[], &[("MCP_GITOPS_LOG", debug)]);

    // 1. The host key on record differs: Stalled, GitFailed, the message says why; nothing
    //    written.
    let stalled = c.wait_condition("prod", "Stalled", "True", &ctl).await;
    let ready = condition(&stalled, "Ready").unwrap();
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "GitFailed");
    let m = message(&stalled, "Ready");
    assert!(
        m.starts_with("sources[0].git: Git repository ssh://")
            && m.contains(&format!("refusing the SSH host key of {host}"))
            && m.contains("differs from the one in Secret repo-ssh, key known_hosts line 1"),
        "{m}"
    );
    assert!(!m.contains("insecure"), "no opt-out is offered: {m}");
    assert_eq!(
        condition(&stalled, "Reconciling").unwrap()["status"],
        "False"
    );
    assert_eq!(c.gw.get("/v1/tools?limit=0").await, before, "written");

    // 2. The right host key in the Secret: applied at once (only the watch can bring it),
    //    the base first; the status names the commit.
    patch_secret(
        &c,
        "repo-ssh",
        json!({"known_hosts": format!("{host} {}", sshd.host_key())}),
    )
    .await;
    let ready = c.wait_condition("prod", "Ready", "True", &ctl).await;
    assert_eq!(
        c.tool_description("k8s-git").await.as_deref(),
        Some("first")
    );
    assert_eq!(
        c.tool_description("k8s-git-base").await.as_deref(),
        Some("from the base")
    );
    let rev = format!("main@{}", &first[..12]);
    assert_eq!(ready["status"]["lastAppliedRevision"], rev.as_str());
    assert_eq!(ready["status"]["lastAttemptedRevision"], rev.as_str());
    assert_eq!(ready["status"]["history"][0]["revision"], rev.as_str());
    let state = root.join("state-one");
    assert!(
        state.join("git").join(NS).join("prod").is_dir(),
        "the clone cache is per config under the state directory"
    );

    // 2b. A key with a passphrase (the sshd accepts it too): the wrong passphrase stalls, the
    //     right one works.
    let locked = root.join("locked_key");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "CANARY-phrase", "-f"])
        .arg(&locked)
        .status()
        .unwrap();
    let authorized = sshd.dir.path().join("authorized_keys");
    let mut keys = std::fs::read_to_string(&authorized).unwrap();
    keys.push_str(&std::fs::read_to_string(locked.with_extension("pub")).unwrap());
    std::fs::write(&authorized, keys).unwrap();
    let locked_key = std::fs::read_to_string(&locked).unwrap();
    patch_secret(
        &c,
        "repo-ssh",
        json!({"identity": locked_key, "passphrase": "CANARY-wrong"}),
    )
    .await;
    let stalled = eventually("a wrong passphrase stalls", &ctl, || async {
        let o = c.config("prod")?;
        (condition(&o, "Ready")?["reason"] == "GitFailed").then_some(o)
    })
    .await;
    let m = message(&stalled, "Ready");
    assert!(m.contains("refused the credentials"), "{m}");
    patch_secret(&c, "repo-ssh", json!({"passphrase": "CANARY-phrase"})).await;
    c.wait_condition("prod", "Ready", "True", &ctl).await;

    // 3. A pushed commit is applied within an interval (5 s now), the status naming it.
    patch_config(&c, "prod", json!({"interval": "5s"})).await;
    c.wait_condition("prod", "Ready", "True", &ctl).await;
    let second = work.push(
        &[("envs/prod/tools.yaml", &tool_doc("k8s-git", "second"))],
        "prod: second",
    );
    let pushed = Instant::now();
    eventually("the pushed commit applied", &ctl, || async {
        (c.tool_description("k8s-git").await.as_deref() == Some("second")).then_some(())
    })
    .await;
    let took = pushed.elapsed();
    eprintln!("git_source: push to applied in {took:?} (interval 5 s)");
    assert!(took < Duration::from_secs(12), "{took:?}");
    let rev2 = format!("main@{}", &second[..12]);
    eventually("the status names the new commit", &ctl, || async {
        (c.config("prod")?["status"]["lastAppliedRevision"] == rev2.as_str()).then_some(())
    })
    .await;

    // Steady state: two quiet intervals fetch but write nothing, to the API server or the
    // gateway (the revision is the commit: stable while the branch stays).
    eventually("a plan with nothing to do", &ctl, || async {
        let p = c.config("prod")?["status"]["lastPlan"].clone();
        (p["creates"] == 0 && p["updates"] == 0 && p["deletes"] == 0).then_some(())
    })
    .await;
    let quiet = c.gw.get("/v1/tools?limit=0").await;
    let writes = c.writes_during(Duration::from_secs(12)).await;
    assert!(writes.is_empty(), "writes in a steady state: {writes:#?}");
    assert_eq!(
        c.gw.get("/v1/tools?limit=0").await,
        quiet,
        "the gateway was written"
    );

    // 4. A path the branch lacks: Stalled (a person must act), nothing written.
    let tools = c.gw.get("/v1/tools?limit=0").await;
    patch_config(
        &c,
        "prod",
        json!({"sources": git_source(&url, "envs/nope")}),
    )
    .await;
    let stalled = c.wait_condition("prod", "Stalled", "True", &ctl).await;
    assert_eq!(condition(&stalled, "Ready").unwrap()["reason"], "GitFailed");
    let m = message(&stalled, "Ready");
    assert!(m.contains("no 'envs/nope' there"), "{m}");
    assert_eq!(c.gw.get("/v1/tools?limit=0").await, tools, "written");

    // 5. An unreachable host: retried (Reconciling), not Stalled.
    let closed = format!("ssh://git@127.0.0.1:{}{}", free_port(), remote.display());
    patch_config(
        &c,
        "prod",
        json!({"sources": git_source(&closed, "envs/prod")}),
    )
    .await;
    let retrying = c.wait_condition("prod", "Reconciling", "True", &ctl).await;
    assert_eq!(condition(&retrying, "Stalled").unwrap()["status"], "False");
    assert_eq!(
        condition(&retrying, "Ready").unwrap()["reason"],
        "GitFailed"
    );
    let m = message(&retrying, "Ready");
    assert!(m.contains("cannot reach Git repository"), "{m}");

    // The key was never shown or written: not in the log, a status, or the state directory.
    let shown = format!("{}\n{}", ctl.text(), c.config("prod").unwrap()["status"]);
    assert!(!shown.contains(&key_line), "the SSH key was shown");
    assert!(!shown.contains("PRIVATE KEY"), "the SSH key was shown");
    assert!(!shown.contains("CANARY"), "the passphrase was shown");
    let locked_line = locked_key.lines().nth(2).unwrap();
    for needle in [key_line.as_str(), locked_line, "CANARY"] {
        assert_eq!(
            files_contain(&state, needle.as_bytes()),
            Vec::<String>::new(),
            "a key or passphrase was written"
        );
    }

    // 6. Deleted: its clone goes too.
    Api::<GatewayConfig>::namespaced(c.client(), NS)
        .delete("prod", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the clone removed", &ctl, || async {
        (!state.join("git").join(NS).join("prod").exists()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_source_takes_username_and_password_from_the_secret() {
    const PASSWORD: &str = "CANARY-git-password-7c1e";
    let c = Cluster::start();
    c.jwt_gateway("gw").await;
    let root = c.dir.path();
    let served = root.join("served");
    std::fs::create_dir_all(&served).unwrap();
    let remote = bare(&served, "config.git");
    let work = Work::new(root, &remote);
    let commit = work.push(
        &[("tools.yaml", &tool_doc("k8s-https", "over https"))],
        "docs at the root",
    );
    let server = HttpsGit::start(&served, "bot", PASSWORD);
    c.secret(
        "repo-https",
        &[("username", "bot"), ("password", "CANARY-wrong-password")],
    )
    .await;
    let source = json!([{"git": {"url": server.url("config.git"),
                                 "secretRef": {"name": "repo-https"}}}]);
    c.gateway_config(
        "web",
        "gw",
        "-",
        json!({"sources": source, "interval": "1h"}),
    )
    .await;
    // The controller trusts the server's self-signed certificate the way any process does
    // (SSL_CERT_FILE), not through an insecure switch.
    let ctl = c.controller_with(
        &c.api.url.clone(),
        "one",
        &[],
        &[
            ("SSL_CERT_FILE", server.cert.as_os_str()),
            ("MCP_GITOPS_LOG", std::ffi::OsStr::new("mcp_gitops=debug")),
        ],
    );

    // A refused password: Stalled, GitFailed, saying so.
    let stalled = c.wait_condition("web", "Stalled", "True", &ctl).await;
    assert_eq!(condition(&stalled, "Ready").unwrap()["reason"], "GitFailed");
    let m = message(&stalled, "Ready");
    assert!(m.contains("refused the credentials"), "{m}");
    assert_eq!(c.tool_description("k8s-https").await, None);

    // The right one: applied at once, the status naming the commit.
    patch_secret(&c, "repo-https", json!({"password": PASSWORD})).await;
    let ready = c.wait_condition("web", "Ready", "True", &ctl).await;
    assert_eq!(
        c.tool_description("k8s-https").await.as_deref(),
        Some("over https")
    );
    assert_eq!(
        ready["status"]["lastAppliedRevision"],
        format!("main@{}", &commit[..12]).as_str()
    );
    let shown = format!("{}\n{}", ctl.text(), ready["status"]);
    assert!(!shown.contains("CANARY"), "a password was shown: {shown}");
    assert_eq!(
        files_contain(&root.join("state-one"), b"CANARY"),
        Vec::<String>::new(),
        "a password was written"
    );
}

/// A `GatewayBackup` pushes over SSH with the same Secret keys (the identity from memory, the
/// host key from `known_hosts`): the one translation of a Secret serves both kinds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_pushes_over_ssh_with_the_secrets_identity() {
    let sshd = Sshd::start();
    let c = Cluster::start();
    c.jwt_gateway("gw").await;
    c.gw.post(
        "/v1/tools",
        json!({"tool": {"name": "k8s-backed-up-ssh", "url": "https://b.example.com/v1",
                        "integration_type": "REST", "request_type": "GET"}}),
    )
    .await;
    let remote = bare(c.dir.path(), "backups.git");
    let identity = std::fs::read_to_string(sshd.dir.path().join("client_key")).unwrap();
    let known = format!("[127.0.0.1]:{} {}", sshd.port, sshd.host_key());
    c.secret(
        "backup-ssh",
        &[("identity", &identity), ("known_hosts", &known)],
    )
    .await;
    let b: mcp_gitops::k8s::crd::GatewayBackup = serde_json::from_value(json!({
        "apiVersion": format!("{}/v1alpha1", super::GROUP), "kind": "GatewayBackup",
        "metadata": {"name": "nightly",
                     "annotations": {"gitops.mcp-gitops.dev/requestedAt": "now"}},
        "spec": {"gatewayRef": {"name": "gw"}, "schedule": "0 3 * * *",
                 "git": {"url": sshd.url(&remote), "branch": "main",
                         "path": "backups/gw.json", "message": "backup gw",
                         "secretRef": {"name": "backup-ssh"}}},
    }))
    .unwrap();
    Api::<mcp_gitops::k8s::crd::GatewayBackup>::namespaced(c.client(), NS)
        .create(&kube::api::PostParams::default(), &b)
        .await
        .expect("create the GatewayBackup");
    let ctl = c.controller("one", &[]);
    let done = eventually("the backup committed over SSH", &ctl, || async {
        let b = c.api.object(super::GROUP, "gatewaybackups", "nightly")?;
        b["status"]["lastCommit"].is_string().then_some(b)
    })
    .await;
    let commit = done["status"]["lastCommit"].as_str().unwrap();
    assert_eq!(git(&remote, &["rev-parse", "main"]).trim(), commit);
    assert!(git(&remote, &["show", "main:backups/gw.json"]).contains("k8s-backed-up-ssh"));
    let key_line = identity.lines().nth(2).unwrap();
    assert!(!ctl.text().contains(key_line), "the SSH key was shown");
    assert_eq!(
        files_contain(&c.dir.path().join("state-one"), key_line.as_bytes()),
        Vec::<String>::new(),
        "the SSH key was written"
    );
}

//! `GatewayBackup` end to end: the controller against the fake API server, a real gateway with
//! a tool holding a credential, and a local bare repository. Schedule `* * * * *`: the first
//! firing commits the gateway (the credential encrypted with the gateway's key, never in
//! plaintext) and `status.lastCommit` is that commit; an edited schedule moves `nextRun`
//! without a snapshot; `requestedAt` snapshots at once: nothing changed → no commit
//! (`Unchanged`), a change on the gateway → a commit whose message names it.

use std::time::Duration;

use kube::api::{Api, Patch, PatchParams, PostParams};
use mcp_gitops::k8s::crd::GatewayBackup;
use serde_json::{Value, json};

use super::{Cluster, GROUP, condition, eventually, eventually_within};
use crate::common::git::{bare, git};
use crate::common::kube_api::NS;
use crate::common::proc::Logged;

const CANARY: &str = "CANARY-backup-token-41";
const REQUESTED_AT: &str = "gitops.mcp-gitops.dev/requestedAt";

fn backup(c: &Cluster) -> Option<Value> {
    c.api.object(GROUP, "gatewaybackups", "nightly")
}

fn ready(b: &Value) -> (String, String) {
    let r = condition(b, "Ready").cloned().unwrap_or_default();
    let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
    (s("status"), s("reason"))
}

fn unix(t: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t.as_str().expect("a time"))
        .expect("RFC 3339")
        .timestamp()
}

async fn request(c: &Cluster, value: &str) {
    Api::<GatewayBackup>::namespaced(c.client(), NS)
        .patch(
            "nightly",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {REQUESTED_AT: value}}})),
        )
        .await
        .expect("annotate the backup");
}

/// Wait until the request `value` was handled; the backup then.
async fn handled(c: &Cluster, value: &str, ctl: &Logged) -> Value {
    eventually(&format!("requestedAt {value} handled"), ctl, || async {
        let b = backup(c)?;
        (b["status"]["lastHandledRequestedAt"] == value).then_some(b)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_snapshot_then_unchanged_then_the_change_named() {
    let t0 = std::time::Instant::now();
    let c = Cluster::start();
    eprintln!("[backup e2e] gateway up after {:?}", t0.elapsed());
    c.jwt_gateway("gw").await;
    c.gw.post(
        "/v1/tools",
        json!({"tool": {"name": "k8s-backed-up", "url": "https://b.example.com/v1",
                        "integration_type": "REST", "request_type": "GET",
                        "auth_type": "bearer", "auth_token": CANARY}}),
    )
    .await;
    let repo = bare(c.dir.path(), "backups.git");
    let b: GatewayBackup = serde_json::from_value(json!({
        "apiVersion": format!("{GROUP}/v1alpha1"), "kind": "GatewayBackup",
        "metadata": {"name": "nightly"},
        "spec": {"gatewayRef": {"name": "gw"}, "schedule": "* * * * *",
                 "git": {"url": repo.display().to_string(), "branch": "main",
                         "path": "backups/gw.json", "message": "backup gw"}},
    }))
    .unwrap();
    Api::<GatewayBackup>::namespaced(c.client(), NS)
        .create(&PostParams::default(), &b)
        .await
        .expect("create the GatewayBackup");
    let ctl = c.controller("one", &[]);
    let t1 = std::time::Instant::now();

    // 1. The first firing (within a minute): one commit holding the tool, its credential
    //    encrypted with the gateway's key; status.lastCommit is that commit.
    let first = eventually_within(
        Duration::from_secs(90),
        "the first snapshot",
        &ctl,
        || async {
            let b = backup(&c)?;
            b["status"]["lastCommit"].is_string().then_some(b)
        },
    )
    .await;
    eprintln!("[backup e2e] first firing after {:?}", t1.elapsed());
    assert_eq!(
        ready(&first),
        ("True".into(), "BackedUp".into()),
        "{first:#}"
    );
    let commit = first["status"]["lastCommit"].as_str().unwrap().to_string();
    assert_eq!(git(&repo, &["rev-parse", "main"]).trim(), commit);
    assert_eq!(git(&repo, &["rev-list", "--count", "main"]).trim(), "1");
    let file = git(&repo, &["show", "main:backups/gw.json"]);
    assert!(
        !file.contains(CANARY),
        "the credential in plaintext:\n{file}"
    );
    let doc: Value = serde_json::from_str(&file).unwrap();
    let tool = doc["entities"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "k8s-backed-up")
        .expect("the tool in the snapshot")
        .clone();
    let sealed = tool["auth_value"]
        .as_str()
        .expect("an encrypted auth_value");
    assert_eq!(
        c.gw.decode_auth(&[sealed], None)[0]["Authorization"],
        format!("Bearer {CANARY}"),
        "the gateway's own key decrypts it"
    );
    let s = &first["status"];
    assert!(s["entities"].as_u64().unwrap() >= 1, "{s:#}");
    let (last_run, next_run) = (unix(&s["lastRun"]), unix(&s["nextRun"]));
    assert!(
        next_run % 60 == 0 && next_run > last_run && next_run - last_run <= 60,
        "{s:#}"
    );
    let subject = git(&repo, &["log", "-1", "--format=%s", "main"]);
    assert!(
        subject.starts_with("backup gw: ") && subject.contains("k8s-backed-up"),
        "{subject}"
    );

    // 2. An edited schedule: nextRun moves to its next firing, no snapshot on the edit.
    Api::<GatewayBackup>::namespaced(c.client(), NS)
        .patch(
            "nightly",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"schedule": "0 0 1 1 *"}})),
        )
        .await
        .unwrap();
    let edited = eventually("nextRun on 1 January", &ctl, || async {
        let b = backup(&c)?;
        let s = &b["status"];
        (s["observedGeneration"] == b["metadata"]["generation"]
            && s["nextRun"].as_str()?.contains("-01-01T00:00:00Z"))
        .then_some(b)
    })
    .await;
    assert_eq!(
        edited["status"]["lastRun"], s["lastRun"],
        "the edit backed up"
    );
    assert_eq!(edited["status"]["lastCommit"], commit.as_str());

    // 3. requestedAt: a snapshot now; nothing changed → no commit, Unchanged.
    let t2 = std::time::Instant::now();
    request(&c, "1").await;
    let same = handled(&c, "1", &ctl).await;
    eprintln!(
        "[backup e2e] requested snapshot (unchanged) after {:?}",
        t2.elapsed()
    );
    assert_eq!(
        ready(&same),
        ("True".into(), "Unchanged".into()),
        "{same:#}"
    );
    assert_eq!(same["status"]["lastCommit"], commit.as_str());
    assert_eq!(git(&repo, &["rev-list", "--count", "main"]).trim(), "1");
    assert!(
        same["status"]["nextRun"]
            .as_str()
            .unwrap()
            .contains("-01-01T00:00:00Z")
    );

    // 4. A change on the gateway, then requestedAt: a new commit whose message names it.
    c.gw.post(
        "/v1/tools",
        json!({"tool": {"name": "k8s-added-later", "url": "https://l.example.com/v1",
                        "integration_type": "REST", "request_type": "GET"}}),
    )
    .await;
    request(&c, "2").await;
    let t3 = std::time::Instant::now();
    let changed = handled(&c, "2", &ctl).await;
    eprintln!(
        "[backup e2e] requested snapshot (committed) after {:?}",
        t3.elapsed()
    );
    assert_eq!(
        ready(&changed),
        ("True".into(), "BackedUp".into()),
        "{changed:#}"
    );
    let second = changed["status"]["lastCommit"].as_str().unwrap();
    assert_ne!(second, commit);
    assert_eq!(git(&repo, &["rev-parse", "main"]).trim(), second);
    assert_eq!(git(&repo, &["rev-list", "--count", "main"]).trim(), "2");
    let subject = git(&repo, &["log", "-1", "--format=%s", "main"]);
    assert!(
        subject.contains("k8s-added-later") && !subject.contains("k8s-backed-up"),
        "{subject}"
    );
    assert!(
        !ctl.text().contains(CANARY),
        "the credential in the controller's log"
    );
}

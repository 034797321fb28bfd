//! `GatewayBackup` reconcile decisions against a scripted API server (tower-test, as
//! `tests.rs`): a reconcile before the firing makes no request at all; a new backup is
//! scheduled, not run; a due one runs and writes `lastRun` and the next firing; the request
//! annotation runs one at once; an invalid schedule stalls; suspend stops snapshots.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

use super::backup::{Next, decide, reconcile};
use super::context;
use super::tests::{EVENTS, Handle, condition, expect, not_found};
use crate::core::clock::now_unix;
use crate::core::schedule::{Schedule, parse_rfc3339};
use crate::k8s::crd::GatewayBackup;

const API: &str = "/apis/gitops.mcp-gitops.dev/v1alpha1/namespaces/mcp";

fn status_path() -> String {
    format!("{API}/gatewaybackups/nightly/status")
}

fn backup(schedule: &str, status: Option<Value>, annotations: Value) -> Value {
    let mut v = json!({
        "apiVersion": "gitops.mcp-gitops.dev/v1alpha1", "kind": "GatewayBackup",
        "metadata": {"name": "nightly", "namespace": "mcp", "generation": 2, "resourceVersion": "5",
                     "uid": "b-1", "annotations": annotations},
        "spec": {"gatewayRef": {"name": "gw"}, "schedule": schedule,
                 "git": {"url": "https://git.example.com/ops/backups.git", "branch": "main",
                         "path": "envs/prod/backup.json"}}
    });
    if let Some(s) = status {
        v["status"] = s;
    }
    v
}

/// A status as a scheduled backup has it: `Ready=True` for generation 2, the next firing at
/// `next_run`.
fn scheduled(next_run: &str) -> Value {
    let c = |t: &str, s: &str| {
        json!({"type": t, "status": s, "reason": "Scheduled", "message": "",
               "lastTransitionTime": "2026-12-01T00:00:00.000000Z", "observedGeneration": 2})
    };
    json!({"observedGeneration": 2, "nextRun": next_run,
           "conditions": [c("Ready", "True"), c("Reconciling", "False"), c("Stalled", "False")]})
}

fn list(kind: &str, items: Vec<Value>) -> (u16, Value) {
    (
        200,
        json!({"apiVersion": "gitops.mcp-gitops.dev/v1alpha1", "kind": format!("{kind}List"),
               "metadata": {"resourceVersion": "9"}, "items": items}),
    )
}

/// One reconcile of `obj` while `script` answers; what the script returned, and the Action.
async fn scenario<F, Fut>(obj: Value, script: F) -> (Value, String)
where
    F: FnOnce(Handle) -> Fut,
    Fut: std::future::Future<Output = Value> + Send + 'static,
{
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(kube::Client::new(svc, "mcp"), dir.path().to_path_buf(), "t");
    let verifier = tokio::spawn(script(handle));
    let b: GatewayBackup = serde_json::from_value(obj).unwrap();
    let action = tokio::time::timeout(Duration::from_secs(10), reconcile(Arc::new(b), ctx))
        .await
        .expect("the reconcile waited for a request the script does not answer")
        .expect("reconcile");
    let out = tokio::time::timeout(Duration::from_secs(5), verifier)
        .await
        .expect("the script expected more requests")
        .unwrap();
    (out, format!("{action:?}"))
}

fn ready(status: &Value) -> (String, String, String) {
    let r = condition(&status["status"], "Ready");
    let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
    (s("status"), s("reason"), s("message"))
}

#[tokio::test]
async fn a_new_backup_is_scheduled_for_its_next_firing_not_run() {
    let obj = backup("0 3 * * *", None, json!({}));
    let echo = obj.clone();
    let (patch, action) = scenario(obj, move |mut h| async move {
        let p = expect(&mut h, "PATCH", &status_path(), (200, echo)).await;
        let ev = expect(&mut h, "POST", EVENTS, (201, json!({}))).await;
        assert_eq!(
            (ev["reason"].as_str(), ev["type"].as_str()),
            (Some("Scheduled"), Some("Normal"))
        );
        p
    })
    .await;
    assert_eq!(patch["kind"], "GatewayBackup");
    let s = &patch["status"];
    let next = s["nextRun"].as_str().unwrap();
    assert!(next.ends_with("T03:00:00Z"), "{next}");
    let next = parse_rfc3339(next).unwrap();
    let now = now_unix() as i64;
    assert!(next > now && next <= now + 86_400, "{next} vs {now}");
    assert_eq!(ready(&patch).0, "True");
    assert_eq!(ready(&patch).1, "Scheduled");
    assert!(s.get("lastRun").is_none() && s.get("lastCommit").is_none());
    assert_eq!(s["observedGeneration"], 2);
    assert!(action.contains("requeue_after: Some"), "{action}");
}

/// What a watched object changing, a restart or a new leader causes before the firing: no
/// request at all (no gateway read, no status write), a requeue for the firing.
#[tokio::test]
async fn before_the_firing_a_reconcile_makes_no_request() {
    let next = crate::core::schedule::rfc3339(now_unix() as i64 + 3000);
    let obj = backup("0 3 * * *", Some(scheduled(&next)), json!({}));
    let (_, action) = scenario(obj, |_h| async { Value::Null }).await;
    assert!(action.contains("requeue_after: Some"), "{action}");
}

#[tokio::test]
async fn a_due_backup_runs_and_reports_lastrun_and_the_next_firing() {
    let obj = backup(
        "*/5 * * * *",
        Some(scheduled("2020-01-01T00:00:00Z")),
        json!({}),
    );
    let echo = obj.clone();
    let (patch, _) = scenario(obj, move |mut h| async move {
        expect(
            &mut h,
            "GET",
            &format!("{API}/gatewayconfigs"),
            list("GatewayConfig", vec![]),
        )
        .await;
        expect(
            &mut h,
            "GET",
            &format!("{API}/contextforgegateways/gw"),
            not_found("gw"),
        )
        .await;
        let p = expect(&mut h, "PATCH", &status_path(), (200, echo)).await;
        let ev = expect(&mut h, "POST", EVENTS, (201, json!({}))).await;
        assert_eq!(
            (ev["reason"].as_str(), ev["type"].as_str()),
            (Some("GatewayNotFound"), Some("Warning"))
        );
        p
    })
    .await;
    let (status, reason, message) = ready(&patch);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "GatewayNotFound")
    );
    assert!(
        message.contains("ContextForgeGateway gw not found"),
        "{message}"
    );
    assert_eq!(condition(&patch["status"], "Stalled")["status"], "True");
    let s = &patch["status"];
    let now = now_unix() as i64;
    let last = parse_rfc3339(s["lastRun"].as_str().unwrap()).unwrap();
    assert!((now - last).abs() <= 5, "lastRun {last} vs {now}");
    // A person must act: the next attempt is the next firing, on a 5-minute boundary.
    let next = parse_rfc3339(s["nextRun"].as_str().unwrap()).unwrap();
    assert!(next > now && next <= now + 300 && next % 300 == 0, "{next}");
}

#[tokio::test]
async fn a_new_requested_at_runs_at_once_and_reads_the_secret_ref() {
    let next = crate::core::schedule::rfc3339(now_unix() as i64 + 3000);
    let mut obj = backup(
        "0 3 * * *",
        Some(scheduled(&next)),
        json!({"gitops.mcp-gitops.dev/requestedAt": "r1"}),
    );
    obj["spec"]["git"]["secretRef"] = json!({"name": "backup-repo"});
    let echo = obj.clone();
    // The Secret has a username but no password: refused before any Git or gateway contact.
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "backup-repo", "namespace": "mcp"},
        "stringData": {"username": "bot"}});
    let (patch, _) = scenario(obj, move |mut h| async move {
        expect(
            &mut h,
            "GET",
            "/api/v1/namespaces/mcp/secrets/backup-repo",
            (200, secret),
        )
        .await;
        let p = expect(&mut h, "PATCH", &status_path(), (200, echo)).await;
        expect(&mut h, "POST", EVENTS, (201, json!({}))).await;
        p
    })
    .await;
    let (status, reason, message) = ready(&patch);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "SecretMissing")
    );
    assert!(
        message.contains("Secret backup-repo, key password"),
        "{message}"
    );
    assert_eq!(patch["status"]["lastHandledRequestedAt"], "r1");
    assert!(patch["status"]["lastRun"].is_string());
}

#[tokio::test]
async fn a_backup_into_a_configs_git_source_is_refused_before_any_gateway_contact() {
    let obj = backup(
        "*/5 * * * *",
        Some(scheduled("2020-01-01T00:00:00Z")),
        json!({}),
    );
    let prod = json!({"apiVersion": "gitops.mcp-gitops.dev/v1alpha1", "kind": "GatewayConfig",
        "metadata": {"name": "prod", "namespace": "mcp"},
        "spec": {"gatewayRef": {"name": "gw"},
                 "sources": [{"git": {"url": "https://git.example.com/ops/backups", "path": "envs/prod"}}]}});
    let echo = obj.clone();
    let (patch, _) = scenario(obj, move |mut h| async move {
        expect(
            &mut h,
            "GET",
            &format!("{API}/gatewayconfigs"),
            list("GatewayConfig", vec![prod]),
        )
        .await;
        let p = expect(&mut h, "PATCH", &status_path(), (200, echo)).await;
        expect(&mut h, "POST", EVENTS, (201, json!({}))).await;
        p
    })
    .await;
    let (_, reason, message) = ready(&patch);
    assert_eq!(reason, "WouldOverwriteSource");
    assert!(message.contains("GatewayConfig prod"), "{message}");
}

#[tokio::test]
async fn an_invalid_schedule_stalls_and_suspend_stops_snapshots() {
    let obj = backup("@daily", None, json!({}));
    let echo = obj.clone();
    let (patch, action) = scenario(obj, move |mut h| async move {
        let p = expect(&mut h, "PATCH", &status_path(), (200, echo)).await;
        expect(&mut h, "POST", EVENTS, (201, json!({}))).await;
        p
    })
    .await;
    assert_eq!(ready(&patch).1, "InvalidSchedule");
    assert!(ready(&patch).2.contains("5 fields"), "{}", ready(&patch).2);
    assert_eq!(condition(&patch["status"], "Stalled")["status"], "True");
    assert!(patch["status"].get("nextRun").is_none());
    assert!(action.contains("requeue_after: None"), "{action}");

    let mut obj = backup(
        "0 3 * * *",
        Some(scheduled("2020-01-01T00:00:00Z")),
        json!({}),
    );
    obj["spec"]["suspend"] = json!(true);
    let echo = obj.clone();
    let (patch, _) = scenario(obj, move |mut h| async move {
        let p = expect(&mut h, "PATCH", &status_path(), (200, echo)).await;
        expect(&mut h, "POST", EVENTS, (201, json!({}))).await;
        p
    })
    .await;
    assert_eq!(ready(&patch).0, "False");
    assert_eq!(ready(&patch).1, "Suspended");
    assert!(
        patch["status"].get("nextRun").is_none(),
        "{}",
        patch["status"]
    );
}

#[test]
fn due_at_the_stored_firing_or_on_a_new_request_only() {
    let every5 = Schedule::parse_five_fields("*/5 * * * *").unwrap();
    let t = 1_796_119_650; // 2026-12-01T10:07:30Z
    let at = |status: Option<Value>, ann: Value| -> GatewayBackup {
        serde_json::from_value(backup("*/5 * * * *", status, ann)).unwrap()
    };
    // New: wait for the next firing.
    assert_eq!(
        decide(&at(None, json!({})), &every5, t),
        Next::Wait(t + 150)
    );
    let st = scheduled("2026-12-01T10:10:00Z");
    assert_eq!(
        decide(&at(Some(st.clone()), json!({})), &every5, t),
        Next::Wait(t + 150)
    );
    assert_eq!(
        decide(&at(Some(st.clone()), json!({})), &every5, t + 150),
        Next::Run
    );
    // Another generation (the spec was edited): the stored firing is recomputed, not run.
    let mut old = st.clone();
    old["observedGeneration"] = json!(1);
    assert_eq!(
        decide(&at(Some(old), json!({})), &every5, t + 400),
        Next::Wait(t + 450)
    );
    // A request not yet handled runs now; a handled one does not.
    let ann = json!({"gitops.mcp-gitops.dev/requestedAt": "x"});
    assert_eq!(
        decide(&at(Some(st.clone()), ann.clone()), &every5, t),
        Next::Run
    );
    let mut handled = st;
    handled["lastHandledRequestedAt"] = json!("x");
    assert_eq!(
        decide(&at(Some(handled), ann), &every5, t),
        Next::Wait(t + 150)
    );
}

//! Reconcile decisions against a scripted API server (tower-test): each test lists the
//! requests the reconcile must make, in order, answers them, and fails on any other (an
//! unexpected request is never answered, and the reconcile times out).

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

use super::config::{FINALIZER, reconcile};
use super::{FORCE_ORPHAN, context};
use crate::k8s::crd::GatewayConfig;

pub(super) type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

const BASE: &str = "/apis/gitops.mcp-gitops.dev/v1alpha1/namespaces/mcp/gatewayconfigs/dev";
/// The config's documents, its gateway, and where Events go.
const DOCS: &str = "/api/v1/namespaces/mcp/configmaps/dev-docs";
const GW: &str = "/apis/gitops.mcp-gitops.dev/v1alpha1/namespaces/mcp/contextforgegateways/gw";
pub(super) const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/mcp/events";

fn status_path() -> String {
    format!("{BASE}/status")
}

fn config(policy: &str, finalizers: &[&str], status: Option<Value>, annotations: Value) -> Value {
    let mut v = json!({
        "apiVersion": "gitops.mcp-gitops.dev/v1alpha1",
        "kind": "GatewayConfig",
        "metadata": {"name": "dev", "namespace": "mcp", "generation": 3, "resourceVersion": "7",
                     "uid": "u-1", "finalizers": finalizers, "annotations": annotations},
        "spec": {"gatewayRef": {"name": "gw"}, "deletionPolicy": policy,
                 "sources": [{"configMap": {"name": "dev-docs"}}]}
    });
    if let Some(s) = status {
        v["status"] = s;
    }
    v
}

fn configmap(doc: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "dev-docs", "namespace": "mcp"},
           "data": {"tools.json": doc}})
}

const GOOD: &str = r#"{"version":"2025-03-26","entities":{"tools":[{"name":"a","url":"http://a.example/x","integration_type":"REST","request_type":"GET"}]}}"#;
const BAD: &str = r#"{"version":"2025-03-26","entities":{"tools":[{"name":"a","url":"not a url","integration_type":"REST","request_type":"GET"}]}}"#;

pub(super) fn not_found(what: &str) -> (u16, Value) {
    (
        404,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
               "code": 404, "message": format!("{what} not found")}),
    )
}

/// Answer the next request, which must be `method path`; returns its JSON body (or Null).
pub(super) async fn expect(
    h: &mut Handle,
    method: &str,
    path: &str,
    answer: (u16, Value),
) -> Value {
    let (req, send) = tokio::time::timeout(Duration::from_secs(5), h.next_request())
        .await
        .unwrap_or_else(|_| panic!("no request; expected {method} {path}"))
        .expect("the client is gone");
    assert_eq!(
        (req.method().as_str(), req.uri().path()),
        (method, path),
        "unexpected request {}",
        req.uri()
    );
    let bytes = req.into_body().collect_bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    send.send_response(
        Response::builder()
            .status(answer.0)
            .body(Body::from(serde_json::to_vec(&answer.1).unwrap()))
            .unwrap(),
    );
    body
}

/// Run one reconcile of `obj` while `script` answers the API server's side.
async fn scenario<F, Fut>(obj: Value, script: F) -> Value
where
    F: FnOnce(Handle) -> Fut,
    Fut: std::future::Future<Output = Value> + Send + 'static,
{
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(svc, "mcp");
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(client, dir.path().to_path_buf(), "test");
    let verifier = tokio::spawn(script(handle));
    let cfg: GatewayConfig = serde_json::from_value(obj).unwrap();
    tokio::time::timeout(Duration::from_secs(10), reconcile(Arc::new(cfg), ctx))
        .await
        .expect("the reconcile waited for a request the script does not answer")
        .expect("reconcile");
    tokio::time::timeout(Duration::from_secs(5), verifier)
        .await
        .expect("the script expected more requests")
        .unwrap()
}

pub(super) fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

#[tokio::test]
async fn delete_policy_adds_the_finalizer_and_a_missing_gateway_is_reported_once() {
    let obj = config("Delete", &[], None, json!({}));
    let echo = obj.clone();
    let status = scenario(obj, move |mut h| async move {
        let fin = expect(&mut h, "PATCH", BASE, (200, echo.clone())).await;
        assert_eq!(fin["metadata"]["finalizers"], json!([FINALIZER]));
        assert_eq!(fin["metadata"]["resourceVersion"], "7");
        expect(&mut h, "GET", DOCS, (200, configmap(GOOD))).await;
        expect(&mut h, "GET", GW, not_found("gw")).await;
        let patch = expect(&mut h, "PATCH", &status_path(), (200, echo.clone())).await;
        let event = expect(&mut h, "POST", EVENTS, (201, json!({}))).await;
        assert_eq!(event["reason"], "GatewayNotFound");
        assert_eq!(event["type"], "Warning");
        patch
    })
    .await;
    assert_eq!(status["kind"], "GatewayConfig");
    let s = &status["status"];
    let ready = condition(s, "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("GatewayNotFound"))
    );
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("ContextForgeGateway gw not found")
    );
    // A human must create the gateway (its creation reconciles the config at once).
    assert_eq!(condition(s, "Stalled")["status"], "True");
    assert_eq!(condition(s, "Reconciling")["status"], "False");
    assert_eq!(s["observedGeneration"], 3);
    assert_eq!(ready["observedGeneration"], 3);
}

/// Orphan: no finalizer; and a status that already says what this reconcile finds is not
/// written again, nor is an Event published.
#[tokio::test]
async fn orphan_adds_no_finalizer_and_an_unchanged_status_is_not_written() {
    let obj = config("Orphan", &[], None, json!({}));
    let echo = obj.clone();
    let first = scenario(obj, move |mut h| async move {
        expect(&mut h, "GET", DOCS, (200, configmap(GOOD))).await;
        expect(&mut h, "GET", GW, not_found("gw")).await;
        let patch = expect(&mut h, "PATCH", &status_path(), (200, echo.clone())).await;
        expect(&mut h, "POST", EVENTS, (201, json!({}))).await;
        patch
    })
    .await;
    // Again, with the status the first reconcile wrote: reads only.
    let again = config("Orphan", &[], Some(first["status"].clone()), json!({}));
    scenario(again, move |mut h| async move {
        expect(&mut h, "GET", DOCS, (200, configmap(GOOD))).await;
        expect(&mut h, "GET", GW, not_found("gw")).await;
        Value::Null
    })
    .await;
}

/// An invalid document stalls the config with the file and the JSON pointer, before the
/// gateway is even looked up.
#[tokio::test]
async fn an_invalid_document_stalls_with_file_and_pointer_and_contacts_no_gateway() {
    let obj = config(
        "Orphan",
        &[],
        None,
        json!({"gitops.mcp-gitops.dev/requestedAt": "now-1"}),
    );
    let echo = obj.clone();
    let status = scenario(obj, move |mut h| async move {
        expect(&mut h, "GET", DOCS, (200, configmap(BAD))).await;
        let patch = expect(&mut h, "PATCH", &status_path(), (200, echo.clone())).await;
        let event = expect(&mut h, "POST", EVENTS, (201, json!({}))).await;
        assert_eq!(event["reason"], "InvalidDocument");
        patch
    })
    .await;
    let s = &status["status"];
    let stalled = condition(s, "Stalled");
    assert_eq!(stalled["status"], "True");
    let m = stalled["message"].as_str().unwrap();
    assert!(m.contains("configmap-dev-docs/tools.json"), "{m}");
    assert!(m.contains("/entities/tools/0"), "{m}");
    assert_eq!(condition(s, "Reconciling")["status"], "False");
    assert_eq!(s["lastHandledRequestedAt"], "now-1");
    assert!(
        s["lastAttemptedRevision"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(s.get("lastAppliedRevision").is_none());
    assert_eq!(s["history"][0]["result"], "InvalidDocument");
}

/// A Git source over SSH whose Secret has no `known_hosts`: SecretMissing, Stalled, before any
/// network work or gateway contact (host keys are always verified).
#[tokio::test]
async fn a_git_source_without_known_hosts_stalls_before_any_fetch() {
    let mut obj = config("Orphan", &[], None, json!({}));
    obj["spec"]["sources"] = json!([
        {"configMap": {"name": "dev-docs"}},
        {"git": {"url": "ssh://git@git.example.com/ops.git", "branch": "main", "path": "envs/dev",
                 "secretRef": {"name": "repo-ssh"}}}
    ]);
    let echo = obj.clone();
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "repo-ssh", "namespace": "mcp"},
        // base64 of "-----BEGIN OPENSSH PRIVATE KEY-----"
        "data": {"identity": "LS0tLS1CRUdJTiBPUEVOU1NIIFBSSVZBVEUgS0VZLS0tLS0="}});
    let status = scenario(obj, move |mut h| async move {
        expect(&mut h, "GET", DOCS, (200, configmap(GOOD))).await;
        expect(
            &mut h,
            "GET",
            "/api/v1/namespaces/mcp/secrets/repo-ssh",
            (200, secret),
        )
        .await;
        let patch = expect(&mut h, "PATCH", &status_path(), (200, echo.clone())).await;
        let event = expect(&mut h, "POST", EVENTS, (201, json!({}))).await;
        assert_eq!(event["reason"], "SecretMissing");
        patch
    })
    .await;
    let s = &status["status"];
    let ready = condition(s, "Ready");
    assert_eq!(ready["reason"], "SecretMissing");
    let m = ready["message"].as_str().unwrap();
    assert!(
        m.starts_with("Secret repo-ssh, key known_hosts: required for an SSH repository"),
        "{m}"
    );
    assert!(!m.contains("OPENSSH"), "{m}");
    assert_eq!(condition(s, "Stalled")["status"], "True");
}

/// Deleting a `Delete` config whose gateway is gone for good: the escape hatch releases the
/// finalizer without contacting any gateway.
#[tokio::test]
async fn force_orphan_releases_the_finalizer_of_a_deleted_config() {
    let mut obj = config(
        "Delete",
        &[FINALIZER, "other/keep"],
        None,
        json!({FORCE_ORPHAN: "true"}),
    );
    obj["metadata"]["deletionTimestamp"] = json!("2026-12-02T17:00:00Z");
    let echo = obj.clone();
    scenario(obj, move |mut h| async move {
        let fin = expect(&mut h, "PATCH", BASE, (200, echo)).await;
        assert_eq!(fin["metadata"]["finalizers"], json!(["other/keep"]));
        Value::Null
    })
    .await;
}

/// Deleting a `Delete` config whose gateway cannot be found keeps the resource (finalizer
/// stays) with a condition naming the escape hatch.
#[tokio::test]
async fn an_unreachable_gateway_never_silently_orphans() {
    let mut obj = config("Delete", &[FINALIZER], None, json!({}));
    obj["metadata"]["deletionTimestamp"] = json!("2026-12-02T17:00:00Z");
    let echo = obj.clone();
    let status = scenario(obj, move |mut h| async move {
        expect(&mut h, "GET", GW, not_found("gw")).await;
        let patch = expect(&mut h, "PATCH", &status_path(), (200, echo)).await;
        expect(&mut h, "POST", EVENTS, (201, json!({}))).await;
        patch
    })
    .await;
    let ready = condition(&status["status"], "Ready");
    assert_eq!(ready["reason"], "DeletionBlocked");
    assert!(ready["message"].as_str().unwrap().contains(FORCE_ORPHAN));
}

#[test]
fn intervals_parse() {
    assert_eq!(super::parse_interval("1h30m"), Duration::from_secs(5400));
    assert_eq!(super::parse_interval("30s"), Duration::from_secs(30));
    assert_eq!(super::parse_interval("x"), Duration::from_secs(300));
    let j = super::jitter(Duration::from_secs(100));
    assert!(j >= Duration::from_secs(100) && j <= Duration::from_secs(110));
}

/// A gateway whose token Secret is missing: finalizer added, `Ready=False, SecretMissing`,
/// `usedBy` lists its configs; no gateway contacted.
#[tokio::test]
async fn a_gateway_with_a_missing_secret_is_not_ready_and_lists_its_users() {
    let api = "/apis/gitops.mcp-gitops.dev/v1alpha1/namespaces/mcp";
    let gw = json!({"apiVersion": "gitops.mcp-gitops.dev/v1alpha1", "kind": "ContextForgeGateway",
        "metadata": {"name": "gw", "namespace": "mcp", "generation": 2, "resourceVersion": "4", "uid": "g"},
        "spec": {"url": "http://127.0.0.1:1", "auth": {"tokenSecretRef": {"name": "gw-token", "key": "token"}}}});
    let list = |kind: &str, items: Vec<Value>| {
        json!({"apiVersion": "gitops.mcp-gitops.dev/v1alpha1", "kind": format!("{kind}List"),
               "metadata": {"resourceVersion": "9"}, "items": items})
    };
    let dev = config("Orphan", &[], None, json!({}));
    let echo = gw.clone();
    let (svc, mut h) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(kube::Client::new(svc, "mcp"), dir.path().to_path_buf(), "t");
    let script = tokio::spawn(async move {
        expect(
            &mut h,
            "GET",
            &format!("{api}/gatewayconfigs"),
            (200, list("GatewayConfig", vec![dev])),
        )
        .await;
        expect(
            &mut h,
            "GET",
            &format!("{api}/gatewaybackups"),
            (200, list("GatewayBackup", vec![])),
        )
        .await;
        let fin = expect(
            &mut h,
            "PATCH",
            &format!("{api}/contextforgegateways/gw"),
            (200, echo.clone()),
        )
        .await;
        assert_eq!(
            fin["metadata"]["finalizers"],
            json!([super::gateway::FINALIZER])
        );
        expect(
            &mut h,
            "GET",
            "/api/v1/namespaces/mcp/secrets/gw-token",
            not_found("gw-token"),
        )
        .await;
        let st = expect(
            &mut h,
            "PATCH",
            &format!("{api}/contextforgegateways/gw/status"),
            (200, echo),
        )
        .await;
        let ev = expect(&mut h, "POST", EVENTS, (201, json!({}))).await;
        assert_eq!(ev["reason"], "SecretMissing");
        st
    });
    let obj: crate::k8s::crd::ContextForgeGateway = serde_json::from_value(gw).unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        super::gateway::reconcile(Arc::new(obj), ctx),
    )
    .await
    .expect("unanswered request")
    .unwrap();
    let st = script.await.unwrap();
    let ready = condition(&st["status"], "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("SecretMissing"))
    );
    assert!(ready["message"].as_str().unwrap().contains("gw-token"));
    assert_eq!(st["status"]["usedBy"], json!(["GatewayConfig/dev"]));
    assert_eq!(st["status"]["observedGeneration"], 2);
}

/// `dependsOn` a config that is not Ready: nothing read, nothing applied, Reconciling.
#[tokio::test]
async fn a_dependency_not_ready_waits() {
    let mut obj = config("Orphan", &[], None, json!({}));
    obj["spec"]["dependsOn"] = json!([{"name": "base"}]);
    let base = {
        let mut b = config("Orphan", &[], None, json!({}));
        b["metadata"]["name"] = json!("base");
        b
    };
    let echo = obj.clone();
    let status = scenario(obj, move |mut h| async move {
        let p = "/apis/gitops.mcp-gitops.dev/v1alpha1/namespaces/mcp/gatewayconfigs/base";
        expect(&mut h, "GET", p, (200, base)).await;
        let patch = expect(&mut h, "PATCH", &status_path(), (200, echo)).await;
        expect(&mut h, "POST", EVENTS, (201, json!({}))).await;
        patch
    })
    .await;
    let ready = condition(&status["status"], "Ready");
    assert_eq!(ready["reason"], "DependencyNotReady");
    assert_eq!(
        condition(&status["status"], "Reconciling")["status"],
        "True"
    );
}

/// A controller context whose API server is never asked anything (kept alive by the rest).
fn quiet_context() -> (Arc<super::Ctx>, (Handle, tempfile::TempDir)) {
    let (svc, h) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(kube::Client::new(svc, "mcp"), dir.path().to_path_buf(), "t");
    (ctx, (h, dir))
}

/// The first reconciles of many configs spend most of a minute's budget; the edits after them
/// must still wait for it, though no client of the gateway lived in between (each reconcile
/// makes its own and drops it).
#[tokio::test(start_paused = true)]
async fn a_gateways_limiter_outlives_the_reconciles_that_use_it() {
    let (ctx, _keep) = quiet_context();
    let url = "http://gw.limiter-outlives.test:8080";
    let start = tokio::time::Instant::now();
    {
        let l = ctx.limiter(url, 2).await;
        l.acquire().await;
        l.acquire().await;
    }
    // Nothing but the controller holds it now.
    let again = ctx.limiter(&format!("{url}/"), 2).await;
    assert!(start.elapsed() < Duration::from_secs(1));
    again.acquire().await;
    assert!(
        start.elapsed() >= Duration::from_secs(59),
        "the minute's two requests were forgotten: {:?}",
        start.elapsed()
    );
}

/// An edited `requestsPerMinute` counts from the next reconcile, raised as well as lowered,
/// and the requests already sent still count against it.
#[tokio::test(start_paused = true)]
async fn a_gateways_edited_budget_counts_raised_or_lowered() {
    let (ctx, _keep) = quiet_context();
    let url = "http://gw.edited-budget.test:8080";
    let start = tokio::time::Instant::now();
    let l = ctx.limiter(url, 2).await;
    l.acquire().await;
    l.acquire().await;
    // Raised to 3: a third request fits this minute.
    ctx.limiter(url, 3).await.acquire().await;
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "the raise did not count"
    );
    // Lowered to 1: three were sent in this minute, so the next waits for them all to age out.
    ctx.limiter(url, 1).await.acquire().await;
    assert!(
        start.elapsed() >= Duration::from_secs(59),
        "the lowered budget did not count: {:?}",
        start.elapsed()
    );
}

/// A drift check with nothing new is routine (its requests go at background priority); a new
/// generation, new source content, an unhandled request annotation or a config not Ready is not.
#[test]
fn only_a_drift_check_with_nothing_new_is_routine() {
    use super::config::routine;
    let ready = json!({"observedGeneration": 3, "lastAppliedRevision": "sha256:aa",
        "conditions": [{"type": "Ready", "status": "True", "reason": "UpToDate",
                        "lastTransitionTime": "2026-12-03T00:00:00Z", "message": ""}]});
    let cfg = |status: Option<Value>, annotations: Value| -> GatewayConfig {
        serde_json::from_value(config("Orphan", &[], status, annotations)).unwrap()
    };
    assert!(routine(&cfg(Some(ready.clone()), json!({})), "sha256:aa"));
    assert!(
        !routine(&cfg(Some(ready.clone()), json!({})), "sha256:bb"),
        "edited source"
    );
    assert!(
        !routine(&cfg(None, json!({})), "sha256:aa"),
        "never reconciled"
    );
    let mut old_gen = ready.clone();
    old_gen["observedGeneration"] = json!(2);
    assert!(
        !routine(&cfg(Some(old_gen), json!({})), "sha256:aa"),
        "edited spec"
    );
    let asked = json!({"gitops.mcp-gitops.dev/requestedAt": "now"});
    assert!(
        !routine(&cfg(Some(ready.clone()), asked), "sha256:aa"),
        "asked for one"
    );
    let mut failing = ready;
    failing["conditions"][0]["status"] = json!("False");
    assert!(
        !routine(&cfg(Some(failing), json!({})), "sha256:aa"),
        "not Ready"
    );
}

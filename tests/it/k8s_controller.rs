//! The controller's GatewayConfig reconcile end to end against a real gateway: the Kubernetes
//! API server is scripted (tower-test: each expected request answered in order, any other
//! left unanswered so that the reconcile times out), the gateway is real.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::client::Body;
use mcp_gitops::k8s::controller::{config::reconcile, context};
use mcp_gitops::k8s::crd::GatewayConfig;
use serde_json::{Value, json};

use crate::common::Gateway;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

const NS: &str = "/namespaces/mcp";
const CANARY: &str = "canary-token-";

fn obj(name: &str, cm: &str, status: Option<Value>) -> Value {
    let mut v = json!({
        "apiVersion": "gitops.mcp-gitops.dev/v1alpha1", "kind": "GatewayConfig",
        "metadata": {"name": name, "namespace": "mcp", "generation": 1, "resourceVersion": "1", "uid": name},
        "spec": {"gatewayRef": {"name": "gw"}, "sources": [{"configMap": {"name": cm}}], "interval": "1m"}
    });
    if let Some(s) = status {
        v["status"] = s;
    }
    v
}

fn configmap(name: &str, tools: &[(&str, &str)]) -> Value {
    let tools: Vec<Value> = tools
        .iter()
        .map(|(n, u)| json!({"name": n, "url": u, "integration_type": "REST", "request_type": "GET"}))
        .collect();
    let doc = json!({"version": "2025-03-26", "entities": {"tools": tools}}).to_string();
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "mcp"},
           "data": {"tools.json": doc}})
}

fn gateway_cr(url: &str) -> Value {
    json!({"apiVersion": "gitops.mcp-gitops.dev/v1alpha1", "kind": "ContextForgeGateway",
           "metadata": {"name": "gw", "namespace": "mcp", "uid": "g"},
           "spec": {"url": url, "auth": {"tokenSecretRef": {"name": "gw-token", "key": "token"}}}})
}

fn token_secret(token: &str) -> Value {
    let s = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("gw-token".into()),
            namespace: Some("mcp".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "token".to_string(),
            ByteString(token.as_bytes().to_vec()),
        )])),
        ..Default::default()
    };
    serde_json::to_value(s).unwrap()
}

async fn expect(h: &mut Handle, method: &str, path: &str, answer: Value) -> Value {
    let (req, send) = tokio::time::timeout(Duration::from_secs(30), h.next_request())
        .await
        .unwrap_or_else(|_| panic!("no request; expected {method} {path}"))
        .expect("client gone");
    assert_eq!((req.method().as_str(), req.uri().path()), (method, path));
    let bytes = req.into_body().collect_bytes().await.unwrap();
    send.send_response(
        Response::builder()
            .body(Body::from(serde_json::to_vec(&answer).unwrap()))
            .unwrap(),
    );
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// The reads every reconcile makes: its ConfigMap, the gateway, the token Secret.
async fn reads(h: &mut Handle, cm: Value, url: &str, token: &str) {
    let cm_name = cm["metadata"]["name"].as_str().unwrap().to_string();
    expect(h, "GET", &format!("/api/v1{NS}/configmaps/{cm_name}"), cm).await;
    let g = "/apis/gitops.mcp-gitops.dev/v1alpha1";
    expect(
        h,
        "GET",
        &format!("{g}{NS}/contextforgegateways/gw"),
        gateway_cr(url),
    )
    .await;
    expect(
        h,
        "GET",
        &format!("/api/v1{NS}/secrets/gw-token"),
        token_secret(token),
    )
    .await;
}

/// Run one reconcile of `cfg` while `script` plays the API server; returns what it returns.
async fn scenario<F, Fut>(cfg: Value, script: F) -> Vec<Value>
where
    F: FnOnce(Handle) -> Fut,
    Fut: std::future::Future<Output = Vec<Value>> + Send + 'static,
{
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(svc, "mcp");
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(client, dir.path().to_path_buf(), "it");
    let verifier = tokio::spawn(script(handle));
    let cfg: GatewayConfig = serde_json::from_value(cfg).unwrap();
    tokio::time::timeout(Duration::from_secs(60), reconcile(Arc::new(cfg), ctx))
        .await
        .expect("the reconcile waited for a request the script does not answer")
        .expect("reconcile");
    verifier.await.unwrap()
}

fn ready(status: &Value) -> (String, String) {
    let c = status["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    (
        c["status"].as_str().unwrap().into(),
        c["reason"].as_str().unwrap().into(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_applies_its_configmap_settles_and_a_second_owner_is_a_conflict() {
    let gw = Gateway::start();
    let token = gw.token();
    assert!(!token.contains(CANARY));
    let cm = configmap(
        "dev-docs",
        &[
            ("k8s_a", "http://a.example/a"),
            ("k8s_b", "http://b.example/b"),
        ],
    );
    let status_path =
        "/apis/gitops.mcp-gitops.dev/v1alpha1/namespaces/mcp/gatewayconfigs/dev/status";
    let events = "/apis/events.k8s.io/v1/namespaces/mcp/events";

    // 1. First reconcile: both tools created, status Ready/Applied, one Event.
    let (g, t, c) = (gw.url.clone(), token.clone(), cm.clone());
    let out = scenario(obj("dev", "dev-docs", None), move |mut h| async move {
        reads(&mut h, c, &g, &t).await;
        let status = expect(&mut h, "PATCH", status_path, obj("dev", "dev-docs", None)).await;
        let event = expect(&mut h, "POST", events, json!({})).await;
        vec![status, event]
    })
    .await;
    let (status, event) = (&out[0], &out[1]);
    assert_eq!(ready(status), ("True".into(), "Applied".into()), "{status}");
    let s = &status["status"];
    assert_eq!(s["lastPlan"]["creates"], 2);
    assert_eq!(s["inventory"]["total"], 2);
    assert_eq!(s["inventory"]["ownerTag"], "mcp-gitops:k8s.mcp.dev");
    assert_eq!(s["lastAppliedRevision"], s["lastAttemptedRevision"]);
    assert_eq!(event["reason"], "Applied");
    for v in [status, event] {
        assert!(!v.to_string().contains(&token), "the token leaked into {v}");
    }
    let names = gw.tool_names().await;
    assert!(
        names
            .iter()
            .any(|n| n.contains("k8s-a") || n.contains("k8s_a")),
        "{names:?}"
    );

    // 2. Again with that status: nothing to apply; the status says UpToDate (one write), Ready
    //    did not flip (no Event).
    let (g, t, c) = (gw.url.clone(), token.clone(), cm.clone());
    let out = scenario(
        obj("dev", "dev-docs", Some(s.clone())),
        move |mut h| async move {
            reads(&mut h, c, &g, &t).await;
            vec![expect(&mut h, "PATCH", status_path, obj("dev", "dev-docs", None)).await]
        },
    )
    .await;
    let second = &out[0];
    assert_eq!(ready(second), ("True".into(), "UpToDate".into()));
    assert_eq!(second["status"]["lastPlan"]["unchanged"], 2);

    // 3. Steady state: reads only, no status write, no Event.
    let (g, t, c) = (gw.url.clone(), token.clone(), cm.clone());
    scenario(
        obj("dev", "dev-docs", Some(second["status"].clone())),
        move |mut h| async move {
            reads(&mut h, c, &g, &t).await;
            vec![]
        },
    )
    .await;

    // 3b. Observe mode with an edited ConfigMap: Drifted, the gateway untouched.
    let before = gw.get("/v1/tools?limit=0").await.to_string();
    let edited = configmap(
        "dev-docs",
        &[
            ("k8s_a", "http://a.example/edited"),
            ("k8s_b", "http://b.example/b"),
        ],
    );
    let mut observing = obj("dev", "dev-docs", Some(second["status"].clone()));
    observing["spec"]["mode"] = json!("observe");
    let (g, t) = (gw.url.clone(), token.clone());
    let out = scenario(observing, move |mut h| async move {
        reads(&mut h, edited, &g, &t).await;
        vec![expect(&mut h, "PATCH", status_path, obj("dev", "dev-docs", None)).await]
    })
    .await;
    let drifted = out[0]["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Drifted")
        .unwrap()
        .clone();
    assert_eq!(drifted["status"], "True", "{}", out[0]);
    assert_eq!(ready(&out[0]).1, "DriftDetected");
    assert_eq!(out[0]["status"]["lastPlan"]["updates"], 1);
    assert_eq!(
        gw.get("/v1/tools?limit=0").await.to_string(),
        before,
        "observe wrote"
    );

    // 4. Another config claiming k8s_a: Stalled with OwnershipConflict, nothing written.
    let before = gw.get("/v1/tools?limit=0").await.to_string();
    let other = configmap("prod-docs", &[("k8s_a", "http://a.example/changed")]);
    let (g, t) = (gw.url.clone(), token.clone());
    let prod_status =
        "/apis/gitops.mcp-gitops.dev/v1alpha1/namespaces/mcp/gatewayconfigs/prod/status";
    let out = scenario(obj("prod", "prod-docs", None), move |mut h| async move {
        reads(&mut h, other, &g, &t).await;
        let st = expect(&mut h, "PATCH", prod_status, obj("prod", "prod-docs", None)).await;
        expect(&mut h, "POST", events, json!({})).await;
        vec![st]
    })
    .await;
    assert_eq!(
        ready(&out[0]),
        ("False".into(), "OwnershipConflict".into()),
        "{}",
        out[0]
    );
    assert!(out[0].to_string().contains("mcp-gitops:k8s.mcp.dev"));
    assert_eq!(
        gw.get("/v1/tools?limit=0").await.to_string(),
        before,
        "nothing written"
    );

    // 5. Delete `dev` with deletionPolicy Delete: what it owns is deleted from the gateway, a
    //    hand-made tool stays, and the finalizer is released.
    gw.post(
        "/v1/tools",
        json!({"tool": {"name": "hand_made", "url": "http://h.example/h", "integration_type": "REST", "request_type": "GET"}}),
    )
    .await;
    let mut deleting = obj("dev", "dev-docs", Some(second["status"].clone()));
    deleting["spec"]["deletionPolicy"] = json!("Delete");
    deleting["metadata"]["finalizers"] = json!(["gitops.mcp-gitops.dev/delete-owned"]);
    deleting["metadata"]["deletionTimestamp"] = json!("2026-12-02T18:00:00Z");
    let (g, t, echo) = (gw.url.clone(), token.clone(), deleting.clone());
    let out = scenario(deleting, move |mut h| async move {
        let api = "/apis/gitops.mcp-gitops.dev/v1alpha1";
        expect(
            &mut h,
            "GET",
            &format!("{api}{NS}/contextforgegateways/gw"),
            gateway_cr(&g),
        )
        .await;
        expect(
            &mut h,
            "GET",
            &format!("/api/v1{NS}/secrets/gw-token"),
            token_secret(&t),
        )
        .await;
        vec![
            expect(
                &mut h,
                "PATCH",
                &format!("{api}{NS}/gatewayconfigs/dev"),
                echo,
            )
            .await,
        ]
    })
    .await;
    assert_eq!(out[0]["metadata"]["finalizers"], json!([]));
    let names = gw.tool_names().await;
    assert!(
        !names.iter().any(|n| n.contains("k8s")),
        "owned tools remain: {names:?}"
    );
    assert!(
        names.iter().any(|n| n.contains("hand")),
        "a hand-made tool was deleted: {names:?}"
    );
}

//! A rotated token Secret: the controller uses the new token at once (the old one is revoked on
//! the gateway, so only the new one can work); no token is ever shown.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use super::{Cluster, eventually, tool_doc};
use crate::common::kube_api::NS;

/// A new API token for the admin: (id, token).
async fn api_token(c: &Cluster, name: &str) -> (String, String) {
    let t =
        c.gw.post("/tokens", json!({"name": name, "expires_in_days": 1}))
            .await;
    (
        t["token"]["id"].as_str().unwrap().to_string(),
        t["access_token"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_secret_is_used_at_once() {
    let c = Cluster::start();
    let (old_id, old) = api_token(&c, "k8s-old").await;
    let (_, new) = api_token(&c, "k8s-new").await;
    c.secret(
        "gw-keys",
        &[("encryption", c.gw.secret()), ("token", old.as_str())],
    )
    .await;
    c.gateway_resource(
        "gw",
        json!({"tokenSecretRef": {"name": "gw-keys", "key": "token"}}),
    )
    .await;
    c.config_map("docs", &[("tools.yaml", &tool_doc("k8s-rot", "one"))])
        .await;
    c.gateway_config("rot", "gw", "docs", json!({"interval": "1h"}))
        .await;
    let ctl = c.controller("one", &[]);
    c.wait_condition("rot", "Ready", "True", &ctl).await;
    assert_eq!(c.tool_description("k8s-rot").await.as_deref(), Some("one"));

    // Revoke the old token and put the new one in the Secret.
    let r = reqwest::Client::new()
        .delete(format!("{}/tokens/{old_id}", c.gw.url))
        .bearer_auth(c.gw.token())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "revoke: {}", r.status());
    let probe = reqwest::Client::new()
        .get(format!("{}/v1/tools", c.gw.url))
        .bearer_auth(&old)
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), 401, "the old token still works");
    Api::<Secret>::namespaced(c.client(), NS)
        .patch(
            "gw-keys",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"token": new}})),
        )
        .await
        .unwrap();
    // An edit now (the interval is an hour: only the watches can bring it) is applied with the
    // new token.
    Api::<ConfigMap>::namespaced(c.client(), NS)
        .patch(
            "docs",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"tools.yaml": tool_doc("k8s-rot", "two")}})),
        )
        .await
        .unwrap();
    eventually("the edit applied with the new token", &ctl, || async {
        (c.tool_description("k8s-rot").await.as_deref() == Some("two")).then_some(())
    })
    .await;
    let gw = c
        .api
        .object(super::GROUP, "contextforgegateways", "gw")
        .unwrap();
    assert_eq!(super::condition(&gw, "Ready").unwrap()["status"], "True");

    // Neither token appears in the controller's log or in any status.
    let statuses: Vec<Value> = ["contextforgegateways", "gatewayconfigs"]
        .iter()
        .flat_map(|p| c.api.objects(super::GROUP, p))
        .map(|o| o["status"].clone())
        .collect();
    let shown = format!("{}\n{}", ctl.text(), json!(statuses));
    assert!(
        !shown.contains(&old) && !shown.contains(&new),
        "a token was shown"
    );
}

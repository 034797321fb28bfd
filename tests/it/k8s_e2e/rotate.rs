//! A rotated token Secret: the controller uses the new token at once (the old one has expired on
//! the gateway by then, so only the new one can work); no token is ever shown.
//!
//! The gateway refuses token management to anything but an interactive session (`POST /tokens`
//! is 403 for minted and API tokens), so the old token is a minted one that expires: the test
//! waits (polling the gateway) until the gateway rejects it, then rotates.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use std::time::Duration;

use mcp_gitops::gateway::{Auth, MintOptions};

use super::{Cluster, eventually, tool_doc};
use crate::common::ADMIN;
use crate::common::kube_api::NS;

/// An admin token minted with the gateway's signing key, valid for `ttl`.
fn minted(c: &Cluster, ttl: Duration) -> String {
    Auth::Mint(MintOptions {
        user: ADMIN.into(),
        jwt_secret: c.gw.jwt_secret().into(),
        audience: "mcpgateway-api".into(),
        issuer: "mcpgateway".into(),
        ttl,
    })
    .bearer()
    .unwrap()
}

async fn status_with(c: &Cluster, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/v1/tools", c.gw.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_secret_is_used_at_once() {
    let c = Cluster::start();
    let new = minted(&c, Duration::from_secs(3600));
    let old = minted(&c, Duration::from_secs(30));
    assert_eq!(status_with(&c, &old).await, 200);
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

    // The old token expires; then the new one goes into the Secret.
    eventually("the old token expired", &ctl, || async {
        (status_with(&c, &old).await == 401).then_some(())
    })
    .await;
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

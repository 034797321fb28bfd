//! `spec.credentials`: a tool's bearer token from a Secret key. The gateway stores it (encrypted
//! with its key); a quiet interval re-encrypts nothing and writes nothing; a rotated Secret
//! updates the tool at once; a credential for an entity the documents lack stalls the config with
//! the index, and writes nothing; the token is never shown.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use mcp_gitops::core::secrets::Secret as Key;
use mcp_gitops::engine::export::{ExportOptions, export};
use serde_json::{Value, json};

use super::{Cluster, condition, eventually, tool_doc};
use crate::common::kube_api::NS;

/// The `Authorization` header the gateway holds for tool `name` (decrypted with its key).
async fn stored_header(c: &Cluster, name: &str) -> Option<String> {
    let opts = ExportOptions {
        selection: Default::default(),
        gateway_secret: Key::new(c.gw.secret()),
        document_secret: None,
        exported_by: None,
        now: "2026-12-03T00:00:00Z".into(),
        cache: None,
    };
    let doc = export(&c.gw.client(), &opts).await.unwrap().document;
    let t = doc.entities.tools.iter().find(|t| t.name == name)?;
    let creds = Key::new(c.gw.secret())
        .decrypt(t.auth_value.as_deref()?)
        .unwrap();
    creds.get("Authorization").map(str::to_string)
}

async fn set_token(c: &Cluster, token: &str) {
    Api::<Secret>::namespaced(c.client(), NS)
        .patch(
            "tool-token",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"token": token}})),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tools_token_comes_from_a_secret_key_and_follows_it() {
    let c = Cluster::start();
    c.jwt_gateway("gw").await;
    c.secret("tool-token", &[("token", "first-canary-token")])
        .await;
    c.config_map("docs", &[("tools.yaml", &tool_doc("k8s-cred", "one"))])
        .await;
    let cred = json!([{"kind": "tools", "name": "k8s-cred",
                       "secretKeyRef": {"name": "tool-token", "key": "token"}}]);
    c.gateway_config(
        "cred",
        "gw",
        "docs",
        json!({"interval": "3s", "credentials": cred}),
    )
    .await;
    let ctl = c.controller("one", &[]);

    // Applied: the gateway holds the token as a bearer credential.
    c.wait_condition("cred", "Ready", "True", &ctl).await;
    assert_eq!(
        stored_header(&c, "k8s-cred").await.as_deref(),
        Some("Bearer first-canary-token")
    );

    // Quiet intervals: the token is encrypted afresh each time (a new nonce), yet nothing is
    // written, to the gateway or to the API server.
    eventually("a plan with nothing to do", &ctl, || async {
        let p = c.config("cred")?["status"]["lastPlan"].clone();
        (p["creates"] == 0 && p["updates"] == 0).then_some(())
    })
    .await;
    let before = c.gw.get("/v1/tools?limit=0").await;
    let writes = c.writes_during(Duration::from_secs(8)).await;
    assert!(writes.is_empty(), "writes in a steady state: {writes:#?}");
    assert_eq!(c.gw.get("/v1/tools?limit=0").await, before);

    // A rotated Secret: the tool's credential follows at once.
    set_token(&c, "second-canary-token").await;
    eventually("the rotated token stored", &ctl, || async {
        (stored_header(&c, "k8s-cred").await.as_deref() == Some("Bearer second-canary-token"))
            .then_some(())
    })
    .await;

    // A credential for a tool no document has: Stalled, naming it; nothing written.
    let before = c.gw.get("/v1/tools?limit=0").await;
    Api::<mcp_gitops::k8s::crd::GatewayConfig>::namespaced(c.client(), NS)
        .patch(
            "cred",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"credentials": [
                {"kind": "tools", "name": "k8s-cred",
                 "secretKeyRef": {"name": "tool-token", "key": "token"}},
                {"kind": "tools", "name": "not-in-any-document",
                 "secretKeyRef": {"name": "tool-token", "key": "token"}}]}})),
        )
        .await
        .unwrap();
    let stalled = c.wait_condition("cred", "Stalled", "True", &ctl).await;
    let ready = condition(&stalled, "Ready").unwrap();
    assert_eq!(ready["reason"], "CredentialInvalid", "{ready}");
    let msg = ready["message"].as_str().unwrap();
    assert!(
        msg.contains("credentials[1]") && msg.contains("not-in-any-document"),
        "{msg}"
    );
    assert_eq!(c.gw.get("/v1/tools?limit=0").await, before);

    // The tokens never appear in the log or in any status.
    let statuses: Vec<Value> = c
        .api
        .objects(super::GROUP, "gatewayconfigs")
        .into_iter()
        .map(|o| o["status"].clone())
        .collect();
    let shown = format!("{}\n{}", ctl.text(), json!(statuses));
    assert!(
        !shown.contains("first-canary-token") && !shown.contains("second-canary-token"),
        "a token was shown"
    );
}

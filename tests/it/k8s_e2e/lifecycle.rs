//! One controller, one gateway, two configs: create → Ready and applied; an edited ConfigMap is
//! applied; a hand change is healed at the next interval; a quiet interval writes nothing; an
//! invalid document stalls with the key and the JSON pointer and writes nothing; deletion with
//! `Delete` removes the owned entities and releases the finalizer, with `Orphan` leaves them.

use std::time::Duration;

use kube::api::{Api, DeleteParams};
use mcp_gitops::k8s::crd::GatewayConfig;
use serde_json::json;

use super::{Cluster, GROUP, condition, eventually, tool_doc};
use crate::common::kube_api::NS;

const FINALIZER: &str = "gitops.mcp-gitops.dev/delete-owned";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_edit_heal_stay_quiet_stall_and_delete() {
    let c = Cluster::start();
    c.jwt_gateway("gw").await;
    c.config_map("dev-docs", &[("tools.yaml", &tool_doc("k8s-dev", "first"))])
        .await;
    c.config_map(
        "keep-docs",
        &[("tools.yaml", &tool_doc("k8s-keep", "kept"))],
    )
    .await;
    c.gateway_config("dev", "gw", "dev-docs", json!({"deletionPolicy": "Delete"}))
        .await;
    c.gateway_config("keep", "gw", "keep-docs", json!({})).await;
    let ctl = c.controller("one", &[]);

    // 1. Created → the gateway holds the documents; Ready for the current generation.
    let dev = c.wait_condition("dev", "Ready", "True", &ctl).await;
    let keep = c.wait_condition("keep", "Ready", "True", &ctl).await;
    assert_eq!(
        c.tool_description("k8s-dev").await.as_deref(),
        Some("first")
    );
    assert_eq!(
        c.tool_description("k8s-keep").await.as_deref(),
        Some("kept")
    );
    let finalizers = |o: &serde_json::Value| o["metadata"]["finalizers"].to_string();
    assert!(
        finalizers(&dev).contains(FINALIZER),
        "Delete needs a finalizer"
    );
    assert!(!finalizers(&keep).contains(FINALIZER), "Orphan needs none");
    let gw = eventually("the gateway Ready", &ctl, || async {
        let g = c.api.object(GROUP, "contextforgegateways", "gw")?;
        (condition(&g, "Ready")?["status"] == "True").then_some(g)
    })
    .await;
    assert_eq!(condition(&gw, "Ready").unwrap()["reason"], "Connected");

    // 2. An edited ConfigMap is applied.
    c.set_doc("dev-docs", &tool_doc("k8s-dev", "second")).await;
    eventually("the edit applied", &ctl, || async {
        (c.tool_description("k8s-dev").await.as_deref() == Some("second")).then_some(())
    })
    .await;

    // 3. A hand change on the gateway is healed at the next interval (5 s).
    let tools = c.gw.get("/v1/tools?limit=0").await;
    let id = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "k8s-dev")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = reqwest::Client::new()
        .put(format!("{}/v1/tools/{id}", c.gw.url))
        .bearer_auth(c.gw.token())
        .json(&json!({"description": "by hand"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "hand change: {}", r.status());
    assert_eq!(
        c.tool_description("k8s-dev").await.as_deref(),
        Some("by hand")
    );
    eventually("the hand change healed", &ctl, || async {
        (c.tool_description("k8s-dev").await.as_deref() == Some("second")).then_some(())
    })
    .await;

    // 8. Steady state: over two quiet intervals, no write to the gateway (its tools are as they
    //    were, to the update time) and no write at all to the API server.
    //    First the status after the heal: the last plan of each config had nothing to do.
    for name in ["dev", "keep"] {
        eventually(
            &format!("{name}: a plan with nothing to do"),
            &ctl,
            || async {
                let p = c.config(name)?["status"]["lastPlan"].clone();
                (p["creates"] == 0 && p["updates"] == 0 && p["deletes"] == 0).then_some(())
            },
        )
        .await;
    }
    let before = c.gw.get("/v1/tools?limit=0").await;
    let writes = c.writes_during(Duration::from_secs(12)).await;
    assert!(
        writes.is_empty(),
        "writes in a steady state: {writes:#?}\ndev now: {:#}",
        c.config("dev").unwrap()["status"]
    );
    assert_eq!(
        c.gw.get("/v1/tools?limit=0").await,
        before,
        "the gateway was written"
    );

    // 5. An invalid document: Stalled, naming the key and the JSON pointer; nothing written.
    let bad = tool_doc("k8s-dev", "third").replace("request_type: POST", "request_type: 42");
    c.set_doc("dev-docs", &bad).await;
    let stalled = c.wait_condition("dev", "Stalled", "True", &ctl).await;
    let message = condition(&stalled, "Stalled").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("tools.yaml"), "{message}");
    assert!(message.contains("/entities/tools/0"), "{message}");
    assert_eq!(
        c.gw.get("/v1/tools?limit=0").await,
        before,
        "an invalid document wrote"
    );

    // A valid document again, then delete both.
    c.set_doc("dev-docs", &tool_doc("k8s-dev", "second")).await;
    c.wait_condition("dev", "Stalled", "False", &ctl).await;
    let configs = Api::<GatewayConfig>::namespaced(c.client(), NS);
    configs
        .delete("dev", &DeleteParams::default())
        .await
        .unwrap();
    configs
        .delete("keep", &DeleteParams::default())
        .await
        .unwrap();
    // 6. Delete: the owned tool goes, the finalizer is released, the object is gone.
    eventually("dev deleted", &ctl, || async {
        c.config("dev").is_none().then_some(())
    })
    .await;
    assert_eq!(
        c.tool_description("k8s-dev").await,
        None,
        "Delete left its tool"
    );
    // Orphan: the object goes at once and its tool stays.
    eventually("keep deleted", &ctl, || async {
        c.config("keep").is_none().then_some(())
    })
    .await;
    assert_eq!(
        c.tool_description("k8s-keep").await.as_deref(),
        Some("kept")
    );
    assert!(ctl.text().lines().all(|l| !l.contains(c.gw.jwt_secret())));
}

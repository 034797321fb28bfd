//! The inventory: a config of a few entities lists them in its status; past 100, the list goes
//! to a ConfigMap the config owns (written once, not at every interval); back under, the
//! ConfigMap is deleted and the list is in the status again.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use super::{Cluster, eventually};
use crate::common::kube_api::NS;

fn tools(n: usize) -> String {
    let mut s = String::from("version: '2025-03-26'\nentities:\n  tools:\n");
    for i in 0..n {
        s.push_str(&format!(
            "    - name: inv-{i:03}\n      url: https://inv.example.com/{i}\n      request_type: GET\n"
        ));
    }
    s
}

async fn set_tools(c: &Cluster, n: usize) {
    Api::<ConfigMap>::namespaced(c.client(), NS)
        .patch(
            "docs",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"tools.yaml": tools(n)}})),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_inventory_moves_to_an_owned_config_map_and_back() {
    let c = Cluster::start();
    c.jwt_gateway("gw").await;
    c.config_map("docs", &[("tools.yaml", &tools(2))]).await;
    c.gateway_config("inv", "gw", "docs", json!({"interval": "3s"}))
        .await;
    let ctl = c.controller("one", &[]);
    let cfg = c.wait_condition("inv", "Ready", "True", &ctl).await;
    let inv = &cfg["status"]["inventory"];
    assert_eq!(inv["entities"], json!(["tools/inv-000", "tools/inv-001"]));
    assert_eq!(inv["total"], 2);
    assert!(inv.get("configMap").is_none(), "{inv}");

    // 101 tools: the status keeps counts and the digest; the list is in the ConfigMap.
    set_tools(&c, 101).await;
    let inv = eventually("the inventory in a ConfigMap", &ctl, || async {
        let inv = c.config("inv")?["status"]["inventory"].clone();
        (inv["total"] == 101).then_some(inv)
    })
    .await;
    assert_eq!(inv["configMap"], "inv-inventory", "{inv}");
    assert!(inv.get("entities").is_none(), "{inv}");
    let cm = c
        .api
        .object("", "configmaps", "inv-inventory")
        .expect("the ConfigMap");
    let uid = c.config("inv").unwrap()["metadata"]["uid"].clone();
    let owner = &cm["metadata"]["ownerReferences"][0];
    assert_eq!(
        (&owner["kind"], &owner["uid"]),
        (&json!("GatewayConfig"), &uid)
    );
    let list: Value = serde_json::from_str(cm["data"]["inventory.json"].as_str().unwrap()).unwrap();
    assert_eq!(list["entities"]["tools"].as_array().unwrap().len(), 101);
    assert_eq!(list["digest"], inv["digest"]);
    assert_eq!(list["entities"]["tools"][100], "inv-100");

    // Quiet intervals rewrite neither the ConfigMap nor the status (once the status says the
    // last plan had nothing to do).
    eventually("a plan with nothing to do", &ctl, || async {
        let p = c.config("inv")?["status"]["lastPlan"].clone();
        (p["creates"] == 0 && p["updates"] == 0).then_some(())
    })
    .await;
    let writes = c.writes_during(Duration::from_secs(7)).await;
    assert!(writes.is_empty(), "writes in a steady state: {writes:#?}");

    // Back to 3: the list is in the status again and the ConfigMap is gone.
    set_tools(&c, 3).await;
    eventually("the inventory back in the status", &ctl, || async {
        let inv = c.config("inv")?["status"]["inventory"].clone();
        (inv["total"] == 3 && inv["entities"].as_array()?.len() == 3).then_some(())
    })
    .await;
    assert!(
        c.api.object("", "configmaps", "inv-inventory").is_none(),
        "the ConfigMap is deleted"
    );
}

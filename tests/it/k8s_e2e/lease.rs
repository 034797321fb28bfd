//! Two controllers with leader election, each through its own door of the fake API server:
//! only the leader writes (to the gateway and to the API server, bar the standby's Lease
//! reads); kill -9 the leader and the standby takes over within the lease duration.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::{Cluster, eventually, tool_doc};
use crate::common::kube_api::NS;

const LEASE_SECONDS: u64 = 4;

fn holder(c: &Cluster) -> Option<String> {
    c.api
        .object("coordination.k8s.io", "leases", "mcp-gitops-controller")?["spec"]["holderIdentity"]
        .as_str()
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_writes_and_a_standby_takes_over() {
    let mut c = Cluster::start();
    let (url_a, url_b) = (c.api.door(), c.api.door());
    let port = |u: &str| u.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let (port_a, port_b) = (port(&url_a), port(&url_b));
    c.jwt_gateway("gw").await;
    c.config_map("docs", &[("tools.yaml", &tool_doc("k8s-ha", "one"))])
        .await;
    c.gateway_config("ha", "gw", "docs", json!({})).await;
    let d = LEASE_SECONDS.to_string();
    let args = ["--leader-elect", "--lease-duration", d.as_str()];
    let a = c.controller_via(&url_a, "a", &args);
    let b = c.controller_via(&url_b, "b", &args);

    let leader = eventually("a leader", &a, || async { holder(&c) }).await;
    c.wait_condition("ha", "Ready", "True", &a).await;
    let (mut leader_proc, standby_proc, standby_id, standby_port) = if leader == "a" {
        (a, b, "b", port_b)
    } else {
        assert_eq!(leader, "b");
        (b, a, "a", port_a)
    };
    // The standby wrote nothing but (attempts at) its Lease.
    let standby_writes = |since: usize| -> Vec<String> {
        c.api
            .requests_since(since)
            .into_iter()
            .filter(|r| r.port == standby_port && r.is_write() && !r.path.contains("/leases"))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    };
    assert_eq!(standby_writes(0), Vec::<String>::new());

    // kill -9 the leader: the standby takes over within the lease duration (plus the time to
    // notice), then applies an edit.
    leader_proc.kill();
    let killed = Instant::now();
    eventually("the standby leads", &standby_proc, || async {
        (holder(&c).as_deref() == Some(standby_id)).then_some(())
    })
    .await;
    let took = killed.elapsed();
    assert!(
        took < Duration::from_secs(2 * LEASE_SECONDS + 2),
        "took over after {took:?}"
    );
    let mark = c.api.mark();
    Api::<ConfigMap>::namespaced(c.client(), NS)
        .patch(
            "docs",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"tools.yaml": tool_doc("k8s-ha", "two")}})),
        )
        .await
        .unwrap();
    eventually("the new leader applies", &standby_proc, || async {
        (c.tool_description("k8s-ha").await.as_deref() == Some("two")).then_some(())
    })
    .await;
    c.wait_condition("ha", "Ready", "True", &standby_proc).await;
    assert!(
        !standby_writes(mark).is_empty(),
        "the new leader's status writes come through its own door"
    );
}

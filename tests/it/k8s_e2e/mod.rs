//! `mcp-gitops controller` end to end: the built binary against the fake Kubernetes API server
//! (`common::kube_api`, loaded with the committed `crds/`) and a real ContextForge gateway.
//! Every wait polls observable state (the gateway's entities, the custom resources' status, the
//! API server's request log) with a deadline; nothing sleeps to synchronise.

mod backup;
mod bench;
mod credentials;
mod gateway_status;
mod git_source;
mod inventory;
mod lease;
mod lifecycle;
mod rotate;

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, PostParams};
use mcp_gitops::k8s::crd::{ContextForgeGateway, GatewayConfig};
use serde_json::{Value, json};

use crate::common::kube_api::{FakeApi, NS};
use crate::common::proc::Logged;
use crate::common::{ADMIN, Gateway, description, free_port};

pub const GROUP: &str = "gitops.mcp-gitops.dev";
pub const WATCH_LABEL: &str = "gitops.mcp-gitops.dev/watch";

/// A gateway, the fake API server with the committed CRDs, and a scratch directory.
pub struct Cluster {
    pub gw: Gateway,
    pub api: FakeApi,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    pub fn start() -> Cluster {
        Self::with_gateway(Gateway::start())
    }

    /// The same around a gateway started by the caller (with settings of its own).
    pub fn with_gateway(gw: Gateway) -> Cluster {
        let api = FakeApi::start();
        for f in [
            "contextforgegateways.gitops.mcp-gitops.dev.yaml",
            "gatewayconfigs.gitops.mcp-gitops.dev.yaml",
            "gatewaybackups.gitops.mcp-gitops.dev.yaml",
        ] {
            let path = crate::common::root().join("crds").join(f);
            api.register_crds(&std::fs::read_to_string(&path).expect("a committed CRD"));
        }
        Cluster {
            gw,
            api,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `mcp-gitops controller` for `NS` with this kubeconfig; more arguments after.
    pub fn controller(&self, identity: &str, extra: &[&str]) -> Logged {
        self.controller_via(&self.api.url.clone(), identity, extra)
    }

    /// The same through one of the fake API server's doors (`FakeApi::door`).
    pub fn controller_via(&self, url: &str, identity: &str, extra: &[&str]) -> Logged {
        self.controller_with(url, identity, extra, &[])
    }

    /// The same with more environment variables (e.g. `SSL_CERT_FILE`).
    pub fn controller_with(
        &self,
        url: &str,
        identity: &str,
        extra: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Logged {
        let metrics = format!("127.0.0.1:{}", free_port());
        self.spawn_controller(url, identity, &metrics, extra, env)
    }

    /// `controller` with more environment variables, and the address of its `/metrics`.
    pub fn controller_with_metrics(
        &self,
        identity: &str,
        extra: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> (Logged, String) {
        let metrics = format!("127.0.0.1:{}", free_port());
        let url = self.api.url.clone();
        (
            self.spawn_controller(&url, identity, &metrics, extra, env),
            metrics,
        )
    }

    fn spawn_controller(
        &self,
        url: &str,
        identity: &str,
        metrics: &str,
        extra: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Logged {
        let kubeconfig =
            FakeApi::kubeconfig_for(url, &self.dir.path().join(format!("kubeconfig-{identity}")));
        let state = self.dir.path().join(format!("state-{identity}"));
        let mut args = vec![
            "controller",
            "--namespace",
            NS,
            "--identity",
            identity,
            "--metrics-listen",
            metrics,
        ];
        args.extend_from_slice(extra);
        let mut cmd = Logged::command(&args);
        cmd.env("KUBECONFIG", kubeconfig)
            .env("HOME", self.dir.path())
            .env("MCP_GITOPS_STATE_DIR", state)
            // Debug for this crate: the tests that look for leaked secrets in the log then see the
            // most the controller ever logs.
            .env("MCP_GITOPS_LOG", "info,mcp_gitops=debug");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Logged::spawn(cmd)
    }

    pub fn client(&self) -> kube::Client {
        self.api.client()
    }

    /// A Secret with `data` (plain values; stored base64), labelled to be watched.
    pub async fn secret(&self, name: &str, data: &[(&str, &str)]) {
        let data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let s: Secret = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {WATCH_LABEL: "true"}},
            "stringData": data,
        }))
        .unwrap();
        Api::<Secret>::namespaced(self.client(), NS)
            .create(&PostParams::default(), &s)
            .await
            .expect("create a Secret");
    }

    /// A ConfigMap whose keys are documents, labelled to be watched.
    pub async fn config_map(&self, name: &str, docs: &[(&str, &str)]) {
        let data: serde_json::Map<String, Value> = docs
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {WATCH_LABEL: "true"}}, "data": data,
        }))
        .unwrap();
        Api::<ConfigMap>::namespaced(self.client(), NS)
            .create(&PostParams::default(), &cm)
            .await
            .expect("create a ConfigMap");
    }

    /// Replace the document `tools.yaml` of ConfigMap `cm`.
    pub async fn set_doc(&self, cm: &str, doc: &str) {
        Api::<ConfigMap>::namespaced(self.client(), NS)
            .patch(
                cm,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({"data": {"tools.yaml": doc}})),
            )
            .await
            .expect("edit the ConfigMap");
    }

    /// The gateway's JWT signing key and encryption secret as Secrets, and a
    /// ContextForgeGateway `name` minting admin tokens with them.
    pub async fn jwt_gateway(&self, name: &str) {
        self.secret(
            "gw-keys",
            &[
                ("jwt", self.gw.jwt_secret()),
                ("encryption", self.gw.secret()),
            ],
        )
        .await;
        self.gateway_resource(
            name,
            json!({"jwt": {"signingKeySecretRef": {"name": "gw-keys", "key": "jwt"}, "user": ADMIN}}),
        )
        .await;
    }

    pub async fn gateway_resource(&self, name: &str, auth: Value) {
        let g: ContextForgeGateway = serde_json::from_value(json!({
            "apiVersion": format!("{GROUP}/v1alpha1"), "kind": "ContextForgeGateway",
            "metadata": {"name": name},
            "spec": {"url": self.gw.url, "auth": auth,
                     "encryptionSecretRef": {"name": "gw-keys", "key": "encryption"}},
        }))
        .unwrap();
        Api::<ContextForgeGateway>::namespaced(self.client(), NS)
            .create(&PostParams::default(), &g)
            .await
            .expect("create a ContextForgeGateway");
    }

    /// A GatewayConfig from one ConfigMap, with `spec` merged over the defaults.
    pub async fn gateway_config(&self, name: &str, gateway: &str, config_map: &str, spec: Value) {
        let mut s = json!({
            "gatewayRef": {"name": gateway},
            "sources": [{"configMap": {"name": config_map}}],
            "interval": "5s",
        });
        json_patch::merge(&mut s, &spec);
        let c: GatewayConfig = serde_json::from_value(json!({
            "apiVersion": format!("{GROUP}/v1alpha1"), "kind": "GatewayConfig",
            "metadata": {"name": name}, "spec": s,
        }))
        .unwrap();
        Api::<GatewayConfig>::namespaced(self.client(), NS)
            .create(&PostParams::default(), &c)
            .await
            .expect("create a GatewayConfig");
    }

    /// The writes (`METHOD path status`) the API server took while `quiet` passed: over a
    /// steady state, none are expected.
    pub async fn writes_during(&self, quiet: Duration) -> Vec<String> {
        let mark = self.api.mark();
        tokio::time::sleep(quiet).await;
        self.api
            .requests_since(mark)
            .into_iter()
            .filter(|r| r.is_write())
            .map(|w| format!("{} {} {}", w.method, w.path, w.status))
            .collect()
    }

    /// The stored GatewayConfig (read directly, not through a request).
    pub fn config(&self, name: &str) -> Option<Value> {
        self.api.object(GROUP, "gatewayconfigs", name)
    }

    /// The description of the gateway's tool `name`, if it has one.
    pub async fn tool_description(&self, name: &str) -> Option<String> {
        let tools = self.gw.get("/v1/tools?limit=0").await;
        description(tools.as_array().unwrap(), name)
    }

    /// Wait until the config's status has condition `kind` = `status` for its current
    /// generation; the whole object then.
    pub async fn wait_condition(
        &self,
        name: &str,
        kind: &str,
        status: &str,
        ctl: &Logged,
    ) -> Value {
        eventually(&format!("{name}: {kind}={status}"), ctl, || async {
            let c = self.config(name)?;
            let generation = c["metadata"]["generation"].as_i64();
            (condition(&c, kind)?["status"] == status
                && c["status"]["observedGeneration"].as_i64() == generation)
                .then_some(c)
        })
        .await
    }
}

/// The condition `kind` in an object's status.
pub fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// A tool document (the gateway's export format).
pub fn tool_doc(name: &str, description: &str) -> String {
    format!(
        "version: '2025-03-26'\nentities:\n  tools:\n    - name: {name}\n      url: https://{name}.example.com/v1\n      request_type: POST\n      description: {description}\n"
    )
}

/// Poll `f` (every 100 ms, up to 60 s) until it gives Some; on time-out, panic with the
/// controller's log.
pub async fn eventually<T, F, Fut>(what: &str, ctl: &Logged, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(Duration::from_secs(60), what, ctl, f).await
}

/// [`eventually`] with another deadline.
pub async fn eventually_within<T, F, Fut>(limit: Duration, what: &str, ctl: &Logged, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; the controller logged:\n{}",
            ctl.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

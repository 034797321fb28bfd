//! A ContextForgeGateway's status says the gateway's version, and `Ready` is `KeyMismatch`
//! when `encryptionSecretRef` is not the gateway's key (tried on a credential the gateway
//! stored), while the right key is `Connected`; behind TLS with a private CA, `caSecretRef`
//! makes it trusted and without it the certificate is refused. No key value appears in the
//! status.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use mcp_gitops::k8s::crd::ContextForgeGateway;
use serde_json::json;

use super::{Cluster, GROUP, condition, eventually};
use crate::common::ADMIN;
use crate::common::kube_api::NS;
use crate::common::tls::{front, private_ca};

/// A ContextForgeGateway `name` at `url` with the gateway's keys (`gw-keys`), and `extra`
/// merged into its spec.
async fn gateway_at(c: &Cluster, name: &str, url: &str, extra: serde_json::Value) {
    let mut spec = json!({"url": url,
        "auth": {"jwt": {"signingKeySecretRef": {"name": "gw-keys", "key": "jwt"}, "user": ADMIN}},
        "encryptionSecretRef": {"name": "gw-keys", "key": "encryption"}});
    json_patch::merge(&mut spec, &extra);
    let g: ContextForgeGateway = serde_json::from_value(json!({
        "apiVersion": format!("{GROUP}/v1alpha1"), "kind": "ContextForgeGateway",
        "metadata": {"name": name}, "spec": spec,
    }))
    .unwrap();
    Api::<ContextForgeGateway>::namespaced(c.client(), NS)
        .create(&PostParams::default(), &g)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn version_key_mismatch_and_a_private_ca() {
    let c = Cluster::start();
    // A tool with credentials, stored by the gateway under its own key.
    c.gw.post(
        "/v1/tools",
        json!({"tool": {"name": "keyed-tool", "url": "https://keyed.example.com/v1",
                        "integration_type": "REST", "request_type": "GET",
                        "auth_type": "bearer", "auth_token": "keycheck-canary-token"}}),
    )
    .await;
    let version = c.gw.get("/version").await["app"]["version"]
        .as_str()
        .expect("the gateway says its version")
        .to_string();
    c.jwt_gateway("gw").await;
    let wrong_key = "not-the-gateways-encryption-secret";
    let s: Secret = serde_json::from_value(json!({
        "metadata": {"name": "wrong-keys"},
        "stringData": {"jwt": c.gw.jwt_secret(), "encryption": wrong_key},
    }))
    .unwrap();
    Api::<Secret>::namespaced(c.client(), NS)
        .create(&PostParams::default(), &s)
        .await
        .unwrap();
    gateway_at(
        &c,
        "wrong",
        &c.gw.url,
        json!({"auth": {"jwt": {"signingKeySecretRef": {"name": "wrong-keys"}}},
               "encryptionSecretRef": {"name": "wrong-keys"}}),
    )
    .await;
    // The gateway behind TLS with a certificate of its own (a private CA): trusted through
    // caSecretRef, refused without.
    let (ca, cert, key) = private_ca(c.dir.path());
    let port: u16 = c.gw.url.rsplit(':').next().unwrap().parse().unwrap();
    let tls = front(&cert, &key, port);
    let https = format!("https://127.0.0.1:{}", tls.port);
    let pem = std::fs::read_to_string(&ca).unwrap();
    c.secret("gw-ca", &[("ca.crt", &pem)]).await;
    gateway_at(
        &c,
        "tls",
        &https,
        json!({"caSecretRef": {"name": "gw-ca", "key": "ca.crt"}}),
    )
    .await;
    gateway_at(&c, "untrusted", &https, json!({})).await;
    let ctl = c.controller("one", &[]);

    let ready = |name: &'static str, status: &'static str| {
        let c = &c;
        async move {
            let g = c.api.object(GROUP, "contextforgegateways", name)?;
            (condition(&g, "Ready")?["status"] == status).then_some(g)
        }
    };
    let good = eventually("gw Ready", &ctl, || ready("gw", "True")).await;
    let r = condition(&good, "Ready").unwrap();
    assert_eq!(r["reason"], "Connected");
    assert!(
        r["message"].as_str().unwrap().contains("keyed-tool"),
        "the check names what it decrypted: {r}"
    );
    assert_eq!(good["status"]["version"], version.as_str());

    let bad = eventually("wrong: Ready False", &ctl, || ready("wrong", "False")).await;
    let r = condition(&bad, "Ready").unwrap();
    assert_eq!(r["reason"], "KeyMismatch", "{r}");
    assert!(r["message"].as_str().unwrap().contains("keyed-tool"), "{r}");
    // The gateway answered: its version is known even with the wrong key.
    assert_eq!(bad["status"]["version"], version.as_str());

    let trusted = eventually("tls Ready", &ctl, || ready("tls", "True")).await;
    assert_eq!(condition(&trusted, "Ready").unwrap()["reason"], "Connected");
    assert_eq!(trusted["status"]["version"], version.as_str());
    let refused = eventually("untrusted: Ready False", &ctl, || {
        ready("untrusted", "False")
    })
    .await;
    let r = condition(&refused, "Ready").unwrap();
    assert_eq!(r["reason"], "Unreachable", "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("certificate"),
        "the refusal says why: {r}"
    );

    let text = format!("{good}{bad}{}", ctl.text());
    for secret in [wrong_key, c.gw.secret(), "keycheck-canary-token"] {
        assert!(!text.contains(secret), "a secret in the status or log");
    }
}

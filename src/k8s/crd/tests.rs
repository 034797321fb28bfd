use std::path::Path;

use kube::CustomResourceExt;
use serde_json::{Value, json};

use super::*;

fn gateway(auth: Value) -> ContextForgeGateway {
    serde_json::from_value(json!({
        "apiVersion": "gitops.mcp-gitops.dev/v1alpha1",
        "kind": "ContextForgeGateway",
        "metadata": {"name": "gw", "namespace": "mcp"},
        "spec": {"url": "http://gw:4444", "auth": auth}
    }))
    .unwrap()
}

fn config(spec: Value) -> GatewayConfig {
    serde_json::from_value(json!({
        "apiVersion": "gitops.mcp-gitops.dev/v1alpha1",
        "kind": "GatewayConfig",
        "metadata": {"name": "dev", "namespace": "mcp"},
        "spec": spec
    }))
    .unwrap()
}

fn token() -> Value {
    json!({"tokenSecretRef": {"name": "gw-token", "key": "token"}})
}

fn jwt() -> Value {
    json!({"signingKeySecretRef": {"name": "gw-jwt", "key": "key"}, "user": "admin@example.com"})
}

fn messages(e: kube::core::cel::ValidationErrors) -> String {
    format!("{e:?}")
}

#[test]
fn gateway_auth_is_exactly_one_of_token_and_jwt() {
    assert!(gateway(token()).validate_cel().is_ok());
    assert!(gateway(json!({"jwt": jwt()})).validate_cel().is_ok());
    let both = gateway(json!({"tokenSecretRef": token()["tokenSecretRef"], "jwt": jwt()}));
    let e = messages(both.validate_cel().unwrap_err());
    assert!(e.contains("exactly one of tokenSecretRef and jwt"), "{e}");
    let neither = gateway(json!({}));
    assert!(neither.validate_cel().is_err());
}

#[test]
fn gateway_url_and_user_are_checked() {
    let mut g = gateway(token());
    g.spec.url = "gw:4444".into();
    let e = messages(g.validate_cel().unwrap_err());
    assert!(e.contains("http:// or https://"), "{e}");
    let mut j = jwt();
    j["user"] = json!("admin");
    assert!(gateway(json!({"jwt": j})).validate_cel().is_err());
}

fn spec() -> Value {
    json!({
        "gatewayRef": {"name": "gw"},
        "sources": [{"configMap": {"name": "dev-docs"}}],
    })
}

#[test]
fn a_source_is_exactly_one_kind() {
    assert!(config(spec()).validate_cel().is_ok());
    let mut s = spec();
    s["sources"] = json!([{"configMap": {"name": "a"}, "inline": {"name": "x", "document": "{}"}}]);
    let e = messages(config(s).validate_cel().unwrap_err());
    assert!(
        e.contains("exactly one of configMap, git and inline"),
        "{e}"
    );
    let mut s = spec();
    s["sources"] = json!([{}]);
    assert!(config(s).validate_cel().is_err());
    let mut s = spec();
    s["sources"] = json!([{"git": {"url": "https://example.com/r.git", "path": "envs/dev"}}]);
    assert!(config(s).validate_cel().is_ok());
}

#[test]
fn git_paths_stay_inside_and_urls_are_known() {
    for (url, path) in [
        ("https://example.com/r.git", "../x"),
        ("https://example.com/r.git", "/etc"),
        ("file:///srv/r.git", ""),
    ] {
        let mut s = spec();
        s["sources"] = json!([{"git": {"url": url, "path": path}}]);
        assert!(config(s).validate_cel().is_err(), "{url} {path}");
    }
    let mut s = spec();
    s["sources"] = json!([{"git": {"url": "git@github.com:o/r.git"}}]);
    assert!(config(s).validate_cel().is_ok());
}

#[test]
fn gateway_ref_is_immutable() {
    let old = config(spec());
    let same = config(spec());
    assert!(same.validate_cel_update(&old).is_ok());
    let mut s = spec();
    s["gatewayRef"] = json!({"name": "other"});
    let e = messages(config(s).validate_cel_update(&old).unwrap_err());
    assert!(e.contains("gatewayRef is immutable"), "{e}");
}

#[test]
fn interval_is_a_duration() {
    for (i, ok) in [
        ("30s", true),
        ("1h30m", true),
        ("5", false),
        ("soon", false),
    ] {
        let mut s = spec();
        s["interval"] = json!(i);
        assert_eq!(config(s).validate_cel().is_ok(), ok, "{i}");
    }
}

#[test]
fn defaults_are_the_safe_ones() {
    let c = config(spec());
    assert_eq!(c.spec.mode, SyncMode::Apply);
    assert_eq!(c.spec.deletion_policy, DeletionPolicy::Orphan);
    assert_eq!(c.spec.conflict_strategy, ConflictStrategy::Update);
    assert!(!c.spec.prune.enabled);
    assert_eq!(c.spec.prune.max_delete_percent, 50);
    assert_eq!(c.spec.interval, "5m");
    // rename makes a copy on every run: not an environment's strategy.
    let mut s = spec();
    s["conflictStrategy"] = json!("rename");
    assert!(serde_json::from_value::<GatewayConfigSpec>(s).is_err());
}

#[test]
fn backup_schedule_is_cron() {
    let b = |schedule: &str| -> GatewayBackup {
        serde_json::from_value(json!({
            "apiVersion": "gitops.mcp-gitops.dev/v1alpha1", "kind": "GatewayBackup",
            "metadata": {"name": "b", "namespace": "mcp"},
            "spec": {"gatewayRef": {"name": "gw"}, "schedule": schedule,
                     "git": {"url": "https://example.com/b.git", "path": "prod.json"}}
        }))
        .unwrap()
    };
    assert!(b("0 */6 * * *").validate_cel().is_ok());
    assert!(b("hourly").validate_cel().is_err());
}

/// No field of any spec can hold a credential: every property whose name speaks of one is a
/// reference to a Secret.
#[test]
fn credentials_are_only_secret_references() {
    fn walk(v: &Value, at: &str, bad: &mut Vec<String>) {
        if let Some(props) = v.get("properties").and_then(Value::as_object) {
            for (name, sub) in props {
                let lower = name.to_ascii_lowercase();
                let speaks = [
                    "token",
                    "password",
                    "secret",
                    "key",
                    "identity",
                    "credential",
                ]
                .iter()
                .any(|w| lower.contains(w));
                let object = sub.get("type") == Some(&json!("object"));
                let is_ref = (lower.ends_with("secretref") || lower.ends_with("secretkeyref"))
                    && object
                    || sub.get("type") == Some(&json!("array"))
                    || lower == "key"; // SecretKeyRef.key names a key, holds none
                if speaks && !is_ref {
                    bad.push(format!("{at}.{name}"));
                }
                walk(sub, &format!("{at}.{name}"), bad);
            }
        }
        if let Some(items) = v.get("items") {
            walk(items, at, bad);
        }
    }
    let mut bad = vec![];
    for crd in all() {
        let v = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
        walk(
            &v["openAPIV3Schema"]["properties"]["spec"],
            "spec",
            &mut bad,
        );
    }
    assert!(bad.is_empty(), "fields that may hold credentials: {bad:?}");
}

#[test]
fn crds_have_names_columns_and_the_category() {
    let crds = all();
    let names: Vec<_> = crds.iter().map(file_name).collect();
    assert_eq!(
        names,
        [
            "contextforgegateways.gitops.mcp-gitops.dev.yaml",
            "gatewayconfigs.gitops.mcp-gitops.dev.yaml",
            "gatewaybackups.gitops.mcp-gitops.dev.yaml"
        ]
    );
    for crd in &crds {
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["mcp-gitops".to_string()][..])
        );
        assert!(
            crd.spec
                .names
                .short_names
                .as_ref()
                .is_some_and(|s| !s.is_empty())
        );
        let v = &crd.spec.versions[0];
        assert!(v.subresources.as_ref().unwrap().status.is_some());
        assert!(v.additional_printer_columns.as_ref().unwrap().len() >= 4);
    }
    let y = to_yaml(&GatewayConfig::crd()).unwrap();
    assert!(y.contains("x-kubernetes-validations"));
}

/// `crds/` holds exactly what `mcp-gitops crds --out-dir crds` writes.
#[test]
fn committed_crds_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let mut stale = vec![];
    for crd in all() {
        let file = dir.join(file_name(&crd));
        let want = to_yaml(&crd).unwrap();
        if std::fs::read_to_string(&file).ok().as_deref() != Some(want.as_str()) {
            stale.push(file.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:?} differ from the Rust types: run `cargo run -- crds --out-dir crds`"
    );
    // And nothing else claims to be a CRD of ours there.
    let count = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(count, 3, "crds/ holds exactly the three CRDs");
}

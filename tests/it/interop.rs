//! Documents written by mcp-gitops are accepted by ContextForge's own `mcpgateway import`.

use crate::common;

use std::process::Command;

use crate::common::{Gateway, seed};

#[tokio::test(flavor = "multi_thread")]
async fn contextforge_import_accepts_our_export_with_zero_failures() {
    let source = Gateway::start();
    seed::seed(&source).await;
    let out = source
        .cmd()
        .args(["export", "--user", common::ADMIN, "--out", "ours.json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = source.dir.path().join("ours.json");

    // Same credential key on the target, as their import requires (it cannot rekey across keys).
    let target = Gateway::start();
    let import = Command::new(common::root().join(".venv/bin/mcpgateway"))
        .args(["import", file.to_str().unwrap(), "--verbose"])
        .envs(&target.env)
        .env("MCPGATEWAY_BEARER_TOKEN", target.token())
        .current_dir(target.dir.path())
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&import.stdout),
        String::from_utf8_lossy(&import.stderr)
    );
    assert!(import.status.success(), "mcpgateway import failed:\n{text}");
    assert!(text.contains("Failed: 0"), "{text}");
    assert!(
        !text.contains(seed::CANARY),
        "no plaintext in their output either"
    );

    // What arrived: every tool, prompt, resource and server, tags as given.
    let tools = target.get("/v1/tools?limit=0").await;
    let local: Vec<_> = tools
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["gatewayId"].is_null())
        .collect();
    assert_eq!(local.len(), 15);
    assert!(
        local
            .iter()
            .all(|t| !t["tags"].as_array().unwrap().is_empty()),
        "tags arrived"
    );
    assert_eq!(
        target
            .get("/v1/prompts?limit=0")
            .await
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["gatewayId"].is_null())
            .count(),
        12
    );
    assert_eq!(
        target
            .get("/v1/servers?limit=0")
            .await
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(target.get("/v1/roots").await.as_array().unwrap().len(), 6);
}

/// The key ContextForge's sample exports were made with.
const SAMPLE_SECRET: &str = "test-encryption-secret-32-bytes-long!!";

/// Import one of ContextForge's own sample exports into a fresh gateway, its peer gateway
/// running again under the name the sample gives it. Returns the gateway, stdout, exit code.
fn import_sample(file: &str) -> (Gateway, String, Option<i32>) {
    let gw = Gateway::start();
    let peer = gw.peer("tiny-peer");
    let text = std::fs::read_to_string(common::root().join("tests/data").join(file))
        .unwrap()
        .replace("http://localhost:8765/mcp", &peer);
    let path = gw.dir.path().join(file);
    std::fs::write(&path, text).unwrap();
    let out = gw
        .cmd()
        .args(["import", path.to_str().unwrap(), "--user", common::ADMIN])
        .args(["--secret", SAMPLE_SECRET, "--rekey-secret"])
        .arg(gw.secret())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        !stdout.contains("peer-token-xyz"),
        "no plaintext credential in the report"
    );
    let code = out.status.code();
    (
        gw,
        format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
        code,
    )
}

fn names(v: &serde_json::Value, field: &str) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["gatewayId"].is_null())
        .map(|x| x[field].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn contextforge_full_export_sample_imports_and_reports_what_it_lacks() {
    let (gw, out, code) = import_sample("cf-export-cli-full.json");
    assert_eq!(code, Some(0), "{out}");
    // What the file holds arrives...
    assert_eq!(
        names(&gw.get("/v1/tools?limit=0").await, "name"),
        vec![
            "crm-search",
            "github-create-issue",
            "legacy-single-header",
            "public-noauth",
            "weather-current"
        ]
    );
    let tools = gw.get("/v1/tools?limit=0").await;
    let weather = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "weather-current")
        .unwrap();
    assert!(
        !weather["tags"].as_array().unwrap().is_empty(),
        "tags arrive"
    );
    let servers = gw.get("/v1/servers?limit=0").await;
    let ops = servers
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ops-toolkit")
        .unwrap();
    let mut linked: Vec<&str> = ops["associatedTools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    linked.sort();
    assert_eq!(
        linked,
        vec!["public-noauth", "tiny-peer-add", "tiny-peer-echo"],
        "links, federated tools included"
    );
    assert_eq!(
        names(&gw.get("/v1/prompts?limit=0").await, "name"),
        vec!["code-review", "summarize"]
    );
    assert_eq!(gw.get("/v1/roots").await.as_array().unwrap().len(), 2);
    // ...and what it lacks is reported, not invented.
    for lack in [
        "skipped resource tiny://motd: the document holds no content",
        "skipped prompt greet: the document holds an empty template",
        "tool weather-current: the document names auth_type basic but carries no credential",
    ] {
        assert!(out.contains(lack), "missing {lack:?} in:\n{out}");
    }
    assert!(
        names(&gw.get("/v1/resources?limit=0").await, "uri").is_empty(),
        "no resource was created without content"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn contextforge_selective_export_sample_imports_with_its_credentials() {
    let (gw, out, code) = import_sample("cf-export-api-selective.json");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("Imported: 2 tools, 1 gateway, 1 server, 1 prompt, 1 root (1 item skipped)"),
        "{out}"
    );
    assert!(
        out.contains(
            "is an id of the source gateway that this document does not name; link dropped"
        ),
        "{out}"
    );
    // The peer gateway's credential arrived re-encrypted for this gateway's key.
    let gws = gw.get("/v1/gateways?limit=0").await;
    let id = gws[0]["id"].as_str().unwrap();
    let sel = gw
        .post(
            "/v1/export/selective",
            serde_json::json!({"gateways": [id]}),
        )
        .await;
    let value = sel["entities"]["gateways"][0]["auth_value"]
        .as_str()
        .unwrap();
    assert_eq!(
        gw.decode_auth(&[value], None),
        vec![serde_json::json!({"Authorization": "Bearer peer-token-xyz"})]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn contextforge_tag_filtered_sample_imports() {
    let (gw, out, code) = import_sample("cf-export-cli-tools-tag-weather.json");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Imported: 1 tool"), "{out}");
    assert_eq!(
        names(&gw.get("/v1/tools?limit=0").await, "name"),
        vec!["weather-current"]
    );
}

//! ContextForge's own export of a gateway with several peers that share prompt names imports,
//! and documents in the shapes of ContextForge's tests and docs import, into real gateways.

use crate::common;

use std::path::PathBuf;
use std::process::Command;

use crate::common::Gateway;
use serde_json::{Value, json};

/// The gateway's venv (`CF_VENV`, else the repository's `.venv`), as `tests/gateway/cf.sh`.
fn venv() -> PathBuf {
    std::env::var_os("CF_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::root().join(".venv"))
}

fn local(v: &Value, field: &str) -> Vec<String> {
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

fn import(gw: &Gateway, path: &std::path::Path) -> (Option<i32>, String) {
    let out = gw
        .cmd()
        .args(["import", path.to_str().unwrap(), "--user", common::ADMIN])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn contextforge_export_with_peers_sharing_a_prompt_name_imports() {
    let source = Gateway::start();
    for peer in ["peer-a", "peer-b"] {
        let url = source.peer(peer);
        source
            .post(
                "/v1/gateways",
                json!({"name": peer, "url": url, "transport": "STREAMABLEHTTP"}),
            )
            .await;
    }
    source
        .post(
            "/v1/tools",
            json!({"tool": {"name": "local-tool", "url": "https://api.example.com/x",
                            "integration_type": "REST", "request_type": "GET"}}),
        )
        .await;
    source
        .post(
            "/v1/prompts",
            json!({"prompt": {"name": "summarize", "template": "Summarize {{ text }}",
                              "arguments": [{"name": "text", "required": true}]}}),
        )
        .await;

    // ContextForge's own CLI export of it.
    let file = source.dir.path().join("cf-export.json");
    let export = Command::new(venv().join("bin/mcpgateway"))
        .args(["export", "--out", file.to_str().unwrap()])
        .envs(&source.env)
        .env("MCPGATEWAY_BEARER_TOKEN", source.token())
        .current_dir(source.dir.path())
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "mcpgateway export failed: {}{}",
        String::from_utf8_lossy(&export.stdout),
        String::from_utf8_lossy(&export.stderr)
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let greets = doc["entities"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "greet")
        .count();
    assert_eq!(greets, 2, "the export leaks both peers' prompt: {doc}");

    let target = Gateway::start();
    let (code, out) = import(&target, &file);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("duplicate"), "{out}");
    assert_eq!(
        out.matches("skipped prompt greet: the document holds an empty template")
            .count(),
        2,
        "{out}"
    );
    // Everything local arrived; the peers provide their own prompt again.
    assert_eq!(
        local(&target.get("/v1/tools?limit=0").await, "name"),
        vec!["local-tool"]
    );
    assert_eq!(
        local(&target.get("/v1/prompts?limit=0").await, "name"),
        vec!["summarize"]
    );
    let mut gateways: Vec<String> = target
        .get("/v1/gateways?limit=0")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect();
    gateways.sort();
    assert_eq!(gateways, vec!["peer-a", "peer-b"]);
    let federated_greets = target
        .get("/v1/prompts?limit=0")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p["gatewayId"].is_null() && p["originalName"] == "greet")
        .count();
    assert_eq!(federated_greets, 2, "each peer federates its greet again");

    // A second import changes nothing.
    let (code, again) = import(&target, &file);
    assert_eq!(code, Some(0), "{again}");
    assert!(again.contains("Imported: nothing"), "{again}");
}

#[tokio::test(flavor = "multi_thread")]
async fn document_in_contextforge_test_shape_imports() {
    let gw = Gateway::start();
    let peer = gw.peer("shape-peer");
    // version "1.0", no exported_at, no metadata, gateway_name on items, server links as
    // associated_* by name.
    let doc = json!({
        "version": "1.0",
        "entities": {
            "gateways": [{"name": "shape-peer", "url": peer, "transport": "STREAMABLEHTTP"}],
            "tools": [
                {"name": "test_tool", "url": "https://api.example.com/tool", "integration_type": "REST",
                 "request_type": "GET", "description": "Test tool", "tags": ["api"], "gateway_name": null},
                {"name": "shape-peer-echo", "url": peer, "integration_type": "MCP",
                 "gateway_name": "shape-peer"}
            ],
            "resources": [{"name": "runbook", "uri": "docs://ops/runbook", "mime_type": "text/markdown",
                           "content": "# Runbook"}],
            "prompts": [{"name": "summarize", "template": "Summarize {{ text }}"}],
            "servers": [{"name": "ai-tools-server", "associated_tools": ["test_tool"],
                         "associated_resources": ["runbook"], "associated_prompts": ["summarize"]}]
        }
    });
    let path = gw.dir.path().join("shape.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    let (code, out) = import(&gw, &path);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("skipped tool shape-peer-echo: federated from a peer gateway (gateway_name 'shape-peer')"),
        "{out}"
    );
    let servers = gw.get("/v1/servers?limit=0").await;
    let s = &servers.as_array().unwrap()[0];
    assert_eq!(s["name"], "ai-tools-server");
    assert_eq!(s["associatedTools"], json!(["test-tool"]));
    let resources = gw.get("/v1/resources?limit=0").await;
    let prompts = gw.get("/v1/prompts?limit=0").await;
    let id_of = |list: &Value, field: &str, value: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|x| x[field] == value)
            .map(|x| x["id"].clone())
            .unwrap_or_else(|| panic!("{value} not in {list}"))
    };
    assert_eq!(
        s["associatedResources"],
        json!([id_of(&resources, "uri", "docs://ops/runbook")])
    );
    assert_eq!(
        s["associatedPrompts"],
        json!([id_of(&prompts, "name", "summarize")])
    );
}

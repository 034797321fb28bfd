//! Documents written by mcp-gitops are accepted by ContextForge's own `mcpgateway import`.

mod common;

use std::process::Command;

use common::{Gateway, seed};

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

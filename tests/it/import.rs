//! `mcp-gitops import` end to end against real ContextForge gateways.

use crate::common;

use crate::common::{Gateway, seed};
use mcp_gitops::core::kind::Kind;
use mcp_gitops::gateway::live::{self, LiveServer, LiveTool};
use serde_json::{Value, json};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}
fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Export `gw` to `file` in its own directory; returns the document.
fn export(gw: &Gateway, file: &str) -> Value {
    let out = gw
        .cmd()
        .args(["export", "--user", common::ADMIN, "--out", file])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    common::read_json(&gw.dir.path().join(file))
}

/// A document without what legitimately differs between two exports.
fn comparable(mut doc: Value) -> Value {
    let o = doc.as_object_mut().unwrap();
    o.remove("exported_at");
    o.remove("source_gateway");
    doc
}

fn json_out(o: &std::process::Output) -> Value {
    serde_json::from_str(stdout(o).trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)))
}

#[tokio::test(flavor = "multi_thread")]
async fn restores_the_seed_scenario_exactly_once_and_round_trips() {
    let a = Gateway::start();
    seed::seed(&a).await;
    let original = export(&a, "a.json");
    let file = a.dir.path().join("a.json");
    let b = Gateway::start();
    let import = |extra: &[&str]| {
        b.cmd()
            .args(["import", file.to_str().unwrap(), "--user", common::ADMIN])
            .args(extra)
            .output()
            .unwrap()
    };

    // Dry run: a real comparison, and not one write request.
    let dry = import(&["--dry-run", "--output", "json"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let v = json_out(&dry);
    assert_eq!(v["requests"]["writes"], 0);
    assert_eq!(v["summary"]["created"]["tools"], 15);
    assert_eq!(v["summary"]["created"]["servers"], 5);
    let dry_text = import(&["--dry-run"]);
    assert!(
        stdout(&dry_text).contains(
            "Would create 15 tools, 3 gateways, 5 servers, 12 prompts, 8 resources, 6 roots; update nothing"
        ),
        "{}",
        stdout(&dry_text)
    );
    let tools: Vec<LiveTool> = live::list_all(&b.client(), Kind::Tool).await.unwrap();
    assert!(tools.is_empty(), "a dry run wrote to the gateway");

    // The restore.
    let out = import(&[]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(
        stdout(&out).lines().last().unwrap(),
        "Imported: 15 tools, 3 gateways, 5 servers, 12 prompts, 8 resources, 6 roots"
    );
    for s in [stdout(&out), stderr(&out)] {
        assert!(!s.contains(seed::CANARY), "plaintext credential in output");
    }

    // A second run changes nothing and sends no write.
    let again = import(&["--output", "json"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let v = json_out(&again);
    assert_eq!(v["requests"]["writes"], 0, "{v}");
    assert_eq!(v["summary"]["unchanged"], 49, "{v}");
    // One list per entity type and one credential read: resource content is vouched for by
    // the content marker written with it, not read again.
    assert_eq!(v["requests"]["reads"], 7, "{}", v["requests"]);
    let text = import(&[]);
    assert_eq!(
        stdout(&text).lines().last().unwrap(),
        "Imported: nothing (49 unchanged)"
    );

    // Export again: the same document, credentials, content and links included.
    let restored = export(&b, "b.json");
    assert_eq!(comparable(restored), comparable(original));

    // Ownership is explicit: every imported row has a team and a visibility.
    let tools: Vec<Value> = live::list_all(&b.client(), Kind::Tool).await.unwrap();
    for t in tools.iter().filter(|t| t["gatewayId"].is_null()) {
        assert!(t["teamId"].is_string(), "{t}");
        assert_eq!(t["visibility"], "public");
    }

    // Content edited by hand is still seen (the edit moved the version past the marker's),
    // and the update keeps the marker in step: the next run reads no content again.
    let resources: Vec<Value> = live::list_all(&b.client(), Kind::Resource).await.unwrap();
    let r = resources.iter().find(|r| r["gatewayId"].is_null()).unwrap();
    b.client()
        .put(
            &format!("/v1/resources/{}", r["id"].as_str().unwrap()),
            &json!({"content": "edited by hand"}),
            &mcp_gitops::gateway::Action::new("edit by hand"),
        )
        .await
        .unwrap();
    let v = json_out(&import(&["--output", "json"]));
    assert_eq!(v["summary"]["updated"]["resources"], 1, "{v}");
    assert_eq!(
        v["requests"]["reads"], 8,
        "one content read: {}",
        v["requests"]
    );
    let v = json_out(&import(&["--output", "json"]));
    assert_eq!(v["summary"]["unchanged"], 49, "{v}");
    assert_eq!(v["requests"]["reads"], 7, "{}", v["requests"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_document_from_another_environment_is_rekeyed_and_works() {
    let a = Gateway::start_with(&[("AUTH_ENCRYPTION_SECRET", "key-a")]);
    let b = Gateway::start_with(&[("AUTH_ENCRYPTION_SECRET", "key-b")]);
    let peer = a.peer("vault");
    a.post(
        "/v1/gateways",
        json!({"name": "vault", "url": peer, "transport": "STREAMABLEHTTP",
               "auth_type": "authheaders", "auth_header_key": "X-Vault", "auth_header_value": "CANARY-v"}),
    )
    .await;
    a.post(
        "/v1/tools",
        json!({"tool": {"name": "billing", "url": "https://billing.example.com/api",
                        "integration_type": "REST", "request_type": "POST",
                        "auth_type": "bearer", "auth_token": "CANARY-b"}}),
    )
    .await;
    let out = a
        .cmd()
        .args([
            "export",
            "--user",
            common::ADMIN,
            "--secret",
            "key-a",
            "--out",
            "a.json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let file = a.dir.path().join("a.json");
    let import = |secret: &str, rekey: &str| {
        b.cmd()
            .args(["import", file.to_str().unwrap(), "--user", common::ADMIN])
            .args(["--secret", secret, "--rekey-secret", rekey])
            .output()
            .unwrap()
    };
    let out = import("key-a", "key-b");
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    let audit = err.lines().find(|l| l.starts_with("audit: ")).expect(&err);
    let (fa, fb) = (
        mcp_gitops::core::secrets::Secret::new("key-a").fingerprint(),
        mcp_gitops::core::secrets::Secret::new("key-b").fingerprint(),
    );
    assert!(
        audit.contains(&format!("from key {fa} to key {fb}"))
            && audit.contains("by admin@example.com")
            && audit.contains("gateway vault")
            && audit.contains("tool billing"),
        "{audit}"
    );
    assert!(!audit.contains("key-a") && !audit.contains("key-b"));
    assert!(!stdout(&out).contains("CANARY") && !err.contains("CANARY"));

    // B's stored values decrypt with key-b (the gateway's own decode_auth) to the originals.
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .filter(|x| x["gatewayId"].is_null())
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect()
    };
    let tools = ids(&b.get("/v1/tools?limit=0").await);
    let gateways = ids(&b.get("/v1/gateways?limit=0").await);
    let sel = b
        .post(
            "/v1/export/selective",
            json!({"tools": tools, "gateways": gateways}),
        )
        .await;
    let values: Vec<&str> = ["tools", "gateways"]
        .iter()
        .map(|k| sel["entities"][*k][0]["auth_value"].as_str().unwrap())
        .collect();
    assert_eq!(
        b.decode_auth(&values, Some("key-b")),
        vec![
            json!({"Authorization": "Bearer CANARY-b"}),
            json!({"X-Vault": "CANARY-v"})
        ]
    );

    // Converged; and a wrong target key is refused before any write.
    let again = import("key-a", "key-b");
    assert!(
        stdout(&again).contains("Imported: nothing (2 unchanged)"),
        "{}",
        stdout(&again)
    );
    let wrong = import("key-a", "key-a");
    assert_eq!(wrong.status.code(), Some(2), "{}", stdout(&wrong));
    assert!(
        stderr(&wrong).contains("do not decrypt with the given key"),
        "{}",
        stderr(&wrong)
    );
}

fn write(gw: &Gateway, name: &str, doc: &Value) -> String {
    let p = gw.dir.path().join(name);
    std::fs::write(&p, serde_json::to_string_pretty(doc).unwrap()).unwrap();
    p.to_str().unwrap().to_string()
}

fn small(url: &str) -> Value {
    json!({"version": "2025-03-26", "entities": {
        "tools": [{"name": "weather_api", "url": url, "request_type": "GET", "tags": ["weather"]},
                  {"name": "translate", "url": "https://tr.example.com/v1", "request_type": "POST"}],
        "servers": [{"name": "ai-tools", "tool_ids": ["weather_api", "translate"]}],
        "prompts": [{"name": "summarize", "template": "Summarize {{ text }}"}],
        "roots": [{"uri": "file:///srv/workspace", "name": "workspace"}]
    }})
}

#[tokio::test(flavor = "multi_thread")]
async fn conflict_strategies_validation_and_selective_import() {
    let gw = Gateway::start();
    let run = |args: &[&str]| {
        gw.cmd()
            .arg("import")
            .args(args)
            .args(["--user", common::ADMIN])
            .output()
            .unwrap()
    };
    let tool_count = || async {
        live::list_all::<LiveTool>(&gw.client(), Kind::Tool)
            .await
            .unwrap()
            .len()
    };

    // Bad input: every problem at once, file and pointer named, nothing written.
    let bad = write(
        &gw,
        "bad.json",
        &json!({"version": "1", "entities": {
            "tools": [{"name": "ok", "url": "https://x.example.com/a"},
                      {"name": "has space", "url": "https://x.example.com/b"},
                      {"name": "ok", "url": "https://x.example.com/c"}],
            "resources": [{"name": "r", "uri": "docs://r", "mime_type": "text/csv", "content": "a"}],
            "servers": [{"name": "s", "tool_ids": ["nowhere"]}]}}),
    );
    let out = run(&[&bad]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for want in [
        "bad.json: 4 problems",
        "/entities/tools/1/name",
        "/entities/tools/2: duplicate tool 'ok'",
        "/entities/resources/0/mime_type",
        "/entities/servers/0/tool_ids/0",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
    assert_eq!(tool_count().await, 0);

    // Selective import brings dependencies and counts the rest.
    let doc = small("https://w.example.com/v1");
    let file = write(&gw, "small.json", &doc);
    let out = run(&[&file, "--include", "server:ai-*"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().last().unwrap(),
        "Imported: 2 tools, 1 server (2 items skipped)"
    );
    // YAML on standard input reads the same.
    let out = gw
        .cmd()
        .args(["import", "-", "--user", common::ADMIN, "--dry-run"])
        .write_stdin(
            "version: '2025-03-26'\nentities:\n  tools:\n    - name: weather_api\n      url: https://w.example.com/v1\n      request_type: GET\n      tags: [weather]\n",
        )
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("Would create nothing; update nothing; leave 1 unchanged"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = run(&[&file, "--include", "tools:nothing-like-this"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--include matched nothing"));
    let out = run(&[&file]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().last().unwrap(),
        "Imported: 1 prompt, 1 root (3 unchanged)"
    );

    // The same names, a changed URL.
    let changed = write(&gw, "changed.json", &small("https://w2.example.com/v1"));
    let out = run(&[&changed, "--conflict-strategy", "fail"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("tool weather_api (url)"),
        "{}",
        stderr(&out)
    );
    let out = run(&[&changed, "--conflict-strategy", "skip"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("skipped tool weather_api: exists and differs (url)"));
    let out = run(&[&changed, "--dry-run"]);
    assert!(
        stdout(&out).contains("update 1 tool (url)"),
        "{}",
        stdout(&out)
    );
    let out = run(&[&changed, "--output", "json"]);
    let v = json_out(&out);
    assert_eq!(v["requests"]["writes"], 1, "one PUT, nothing else: {v}");
    let tools: Vec<LiveTool> = live::list_all(&gw.client(), Kind::Tool).await.unwrap();
    let w = tools.iter().find(|t| t.name == "weather-api").unwrap();
    assert_eq!(w.url.as_deref(), Some("https://w2.example.com/v1"));

    let out = run(&[&file, "--conflict-strategy", "rename", "--verbose"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.contains("created tool weather_api as weather-api-imported-"))
        .unwrap_or_else(|| panic!("{text}"));
    let renamed = line.rsplit(' ').next().unwrap();
    let tools: Vec<LiveTool> = live::list_all(&gw.client(), Kind::Tool).await.unwrap();
    assert!(tools.iter().any(|t| t.name == renamed), "{renamed}");
    assert_eq!(tools.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_peer_skips_its_dependents_and_a_rerun_converges() {
    let gw = Gateway::start();
    let port = common::free_port();
    let doc = json!({"version": "2025-03-26", "entities": {
        "gateways": [{"name": "late-peer", "url": format!("http://127.0.0.1:{port}/mcp"),
                      "transport": "STREAMABLEHTTP"}],
        "tools": [{"name": "standalone", "url": "https://s.example.com/x", "request_type": "GET"}],
        "servers": [{"name": "federated", "tool_ids": ["late-peer-echo", "standalone"]}]
    }});
    let file = write(&gw, "doc.json", &doc);
    let run = || {
        gw.cmd()
            .args([
                "import",
                &file,
                "--user",
                common::ADMIN,
                "--discovery-timeout",
                "5",
            ])
            .output()
            .unwrap()
    };
    let out = run();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("failed gateway late-peer"), "{text}");
    assert!(
        text.contains("skipped server federated: links tool late-peer-echo of gateway late-peer, which was not applied"),
        "{text}"
    );
    assert!(
        text.ends_with("Imported: 1 tool (1 item skipped, 1 failed)\n"),
        "{text}"
    );

    // The peer comes up: the same document converges.
    gw.peer_on("late-peer", Some(port));
    let out = run();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).ends_with("Imported: 1 gateway, 1 server (1 unchanged)\n"),
        "{}",
        stdout(&out)
    );
    let servers: Vec<LiveServer> = live::list_all(&gw.client(), Kind::Server).await.unwrap();
    assert_eq!(servers[0].associated_tool_ids.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_tool_import_reports_each_item_and_never_fails_the_batch() {
    let gw = Gateway::start();
    gw.post(
        "/v1/tools",
        json!({"tool": {"name": "taken", "url": "https://t.example.com", "integration_type": "REST",
                        "request_type": "GET"}}),
    )
    .await;
    let secret = mcp_gitops::core::secrets::Secret::new(gw.secret());
    let creds = mcp_gitops::core::secrets::Credentials::from_pairs([(
        "X-Api-Key".to_string(),
        "CANARY-bulk".to_string(),
    )]);
    let items = json!([
        {"name": "alpha", "url": "https://a.example.com", "request_type": "GET", "tags": ["bulk"]},
        {"name": "bad name", "url": "ftp://nowhere"},
        {"name": "taken", "url": "https://t.example.com", "request_type": "GET"},
        {"name": "beta", "url": "https://b.example.com", "integration_type": "REST",
         "request_type": "POST", "description": "with a key", "timeout": 10, "rate_limit": 5,
         "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
         "auth_type": "authheaders", "auth_value": secret.encrypt(&creds)},
        {"name": "gamma", "url": "https://g.example.com", "request_type": "PUT"}
    ]);
    let file = write(&gw, "tools.json", &items);
    let out = gw
        .cmd()
        .args([
            "import-tools",
            &file,
            "--user",
            common::ADMIN,
            "--max-batch",
            "2",
        ])
        .args(["--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json_out(&out);
    assert_eq!(v["created_count"], 3, "{v}");
    assert_eq!(v["failed_count"], 2, "{v}");
    assert_eq!(
        v["created"],
        json!([{"index": 0, "name": "alpha"}, {"index": 3, "name": "beta"}, {"index": 4, "name": "gamma"}])
    );
    assert_eq!(v["errors"][0]["index"], 1);
    let fields: Vec<&str> = v["errors"][0]["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["/1/name", "/1/url"]);
    assert_eq!(v["errors"][1]["index"], 2);
    assert!(
        v["errors"][1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{v}"
    );
    assert!(!stdout(&out).contains("CANARY"));

    // The credential is stored encrypted with the gateway's key, and works with its decode.
    let tools: Vec<LiveTool> = live::list_all(&gw.client(), Kind::Tool).await.unwrap();
    let beta = tools.iter().find(|t| t.name == "beta").unwrap();
    assert!(beta.team_id.is_some(), "explicit ownership");
    let sel = gw
        .post("/v1/export/selective", json!({"tools": [beta.id]}))
        .await;
    let value = sel["entities"]["tools"][0]["auth_value"].as_str().unwrap();
    assert_eq!(
        gw.decode_auth(&[value], None),
        vec![json!({"X-Api-Key": "CANARY-bulk"})]
    );

    // Text output names the failures and counts.
    let out = gw
        .cmd()
        .args(["import-tools", &file, "--user", common::ADMIN])
        .output()
        .unwrap();
    assert!(stdout(&out).contains("  ! [1] bad name: Validation failed: /1/name: "));
    assert!(
        stdout(&out).ends_with("Created 0 of 5 tools (5 failed)\n"),
        "{}",
        stdout(&out)
    );
}

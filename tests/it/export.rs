//! `mcp-gitops export` end to end against a real ContextForge gateway.

use crate::common;

use crate::common::{Gateway, seed};
use mcp_gitops::core::kind::Kind;
use mcp_gitops::gateway::live::{self, LiveTool};
use serde_json::{Value, json};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}
fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn exports_the_seed_scenario_completely_and_secret_safely() {
    let gw = Gateway::start();
    let seeded = seed::seed(&gw).await;

    let out = gw
        .cmd()
        .args(["export", "--user", common::ADMIN, "--out", "file.json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().next().unwrap(),
        "Exported 49 entities: 15 tools, 3 gateways, 5 servers, 12 prompts, 8 resources, 6 roots"
    );
    let path = gw.dir.path().join("file.json");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(r#""version": "2025-03-26""#));
    let doc: Value = serde_json::from_str(&text).unwrap();
    for (kind, n) in [
        ("tools", 15),
        ("gateways", 3),
        ("servers", 5),
        ("prompts", 12),
        ("resources", 8),
        ("roots", 6),
    ] {
        assert_eq!(doc["entities"][kind].as_array().unwrap().len(), n, "{kind}");
        assert_eq!(doc["metadata"]["entity_counts"][kind], n, "{kind}");
    }

    // No plaintext credential anywhere: file, stdout, stderr.
    for (what, s) in [
        ("file", &text),
        ("stdout", &stdout(&out)),
        ("stderr", &stderr(&out)),
    ] {
        assert!(!s.contains(seed::CANARY), "plaintext credential in {what}");
    }

    // Every auth_value decrypts with the gateway's own decode_auth to the original headers.
    for (kind, expected) in [
        ("tools", &seeded.tool_headers),
        ("gateways", &seeded.gateway_headers),
    ] {
        let items = doc["entities"][kind].as_array().unwrap();
        let with_auth: Vec<&Value> = items
            .iter()
            .filter(|e| e.get("auth_type").is_some())
            .collect();
        assert_eq!(with_auth.len(), expected.len(), "{kind} with credentials");
        let values: Vec<&str> = with_auth
            .iter()
            .map(|e| e["auth_value"].as_str().expect("auth_value present"))
            .collect();
        let decoded = gw.decode_auth(&values, None);
        for (e, d) in with_auth.iter().zip(decoded) {
            let name = e["name"].as_str().unwrap();
            assert_eq!(&d, &expected[name], "{kind} {name}");
        }
    }

    // Federated entities are left out; server links are complete and by name/URI.
    let tool_names: Vec<&str> = doc["entities"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        !tool_names.iter().any(|n| n.starts_with("peer-")),
        "{tool_names:?}"
    );
    assert!(
        !text.contains("peer://"),
        "federated resources are left out"
    );
    let s0 = doc["entities"]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "server-0")
        .unwrap();
    assert_eq!(s0["tool_ids"].as_array().unwrap().len(), 4);
    assert!(
        s0["tool_ids"]
            .as_array()
            .unwrap()
            .contains(&json!("peer-one-echo"))
    );
    assert_eq!(s0["resource_uris"], json!(["docs://seed/res-0"]));
    assert_eq!(s0["prompt_names"], json!(["prompt-00", "prompt-05"]));
    let deps = &doc["metadata"]["dependencies"];
    assert_eq!(deps["servers_to_tools"]["server-0"], s0["tool_ids"]);
    assert_eq!(
        deps["servers_to_resources"]["server-0"],
        json!(["docs://seed/res-0"])
    );
    assert_eq!(
        deps["servers_to_prompts"]["server-1"],
        json!(["prompt-01", "prompt-06"])
    );

    // Resource content and every MIME type; prompt arguments as held.
    let res = doc["entities"]["resources"].as_array().unwrap();
    for (i, mime) in seed::MIME_TYPES.iter().enumerate() {
        let r = res
            .iter()
            .find(|r| r["uri"] == format!("docs://seed/res-{i}"))
            .unwrap();
        assert_eq!(r["mime_type"], *mime);
        assert_eq!(r["content"], format!("content of resource {i} ({mime})"));
    }
    let p = &doc["entities"]["prompts"][0];
    assert_eq!(
        p["input_schema"]["properties"]["topic"]["description"],
        "What to write about"
    );
    assert_eq!(p["input_schema"]["required"], json!(["topic", "audience"]));
    // Tags are plain strings (ContextForge's import accepts only strings).
    assert!(
        doc["entities"]["tools"][0]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .all(Value::is_string)
    );

    // Deterministic: a second export differs only in exported_at.
    let out2 = gw
        .cmd()
        .args(["export", "--user", common::ADMIN, "--out", "again.json"])
        .output()
        .unwrap();
    assert!(out2.status.success());
    let mut again = common::read_json(&gw.dir.path().join("again.json"));
    let mut first = doc.clone();
    first["exported_at"] = Value::Null;
    again["exported_at"] = Value::Null;
    assert_eq!(first, again);

    // --verbose lists entities; YAML on stdout parses to the same document.
    let yaml = gw
        .cmd()
        .args(["export", "--user", common::ADMIN, "--format", "yaml", "-v"])
        .output()
        .unwrap();
    assert!(yaml.status.success());
    assert!(stderr(&yaml).contains("  tool crm-basic-0"));
    let from_yaml = mcp_gitops::core::document::from_str(&stdout(&yaml), None, "stdout").unwrap();
    assert_eq!(from_yaml.entities.total(), 49);
}

#[tokio::test(flavor = "multi_thread")]
async fn selections_and_dependencies() {
    let gw = Gateway::start();
    seed::seed(&gw).await;
    let run = |args: &[&str]| {
        let out = gw
            .cmd()
            .args(["export", "--user", common::ADMIN])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        (
            serde_json::from_slice::<Value>(&out.stdout).unwrap(),
            stderr(&out).lines().last().unwrap_or_default().to_string(),
        )
    };
    let count = |d: &Value, k: &str| d["entities"][k].as_array().map_or(0, Vec::len);

    let (d, _) = run(&["--type", "tool", "--tags", "weather"]);
    assert_eq!((count(&d, "tools"), count(&d, "servers")), (5, 0));

    // A server brings its tools, resources, prompts, and the peer gateway of its federated tool.
    let (d, line) = run(&["--include", "servers:server-0"]);
    assert_eq!(
        line,
        "Exported 8 entities: 3 tools, 1 gateway, 1 server, 2 prompts, 1 resource, 0 roots (41 not selected)"
    );
    assert_eq!(d["entities"]["gateways"][0]["name"], "peer-one");
    let (d, _) = run(&["--include", "servers:server-0", "--no-dependencies"]);
    assert_eq!((count(&d, "servers"), count(&d, "tools")), (1, 0));
    let (d, _) = run(&["--include", "tool:github-*,root:data*"]);
    assert_eq!(
        (count(&d, "tools"), count(&d, "roots")),
        (5, 0),
        "roots match by URI"
    );
    let (d, _) = run(&["--include", "tools:github-bearer-5;roots:file:///srv/*"]);
    assert_eq!((count(&d, "tools"), count(&d, "roots")), (1, 3));
    let (d, _) = run(&["--exclude-types", "roots,prompt"]);
    assert_eq!(
        (count(&d, "roots"), count(&d, "prompts"), count(&d, "tools")),
        (0, 0, 15)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_are_never_cut_at_fifty() {
    let gw = Gateway::start();
    let bodies: Vec<Value> = (0..60)
        .map(|i| json!({"tool": {"name": format!("bulk-{i:02}"), "url": format!("https://bulk.example.com/{i}"),
                                 "integration_type": "REST", "request_type": "GET"}}))
        .collect();
    for b in bodies {
        gw.post("/v1/tools", b).await;
    }
    // Small pages force several cursor hops.
    let tools: Vec<LiveTool> = live::list_paged(&gw.client(), Kind::Tool, 7).await.unwrap();
    let mut names: Vec<String> = tools.iter().map(|t| t.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 60);
    let out = gw
        .cmd()
        .args(["export", "--user", common::ADMIN, "--out", "x.json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("Exported 60 entities: 60 tools,"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_and_faults_are_one_line_errors_and_write_nothing() {
    let gw = Gateway::start();
    // A public-only token: no `teams` claim, so no admin scope.
    let public_only = {
        use jsonwebtoken::{EncodingKey, Header, encode};
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        encode(
            &Header::default(),
            &json!({"sub": common::ADMIN, "exp": now + 600, "jti": "0123456789abcdef0123456789abcdef",
                    "aud": "mcpgateway-api", "iss": "mcpgateway"}),
            &EncodingKey::from_secret(gw.jwt_secret().as_bytes()),
        )
        .unwrap()
    };
    let unwritable = "/proc/no-such-dir/out.json";
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>, i32, &'a str);
    let cases: Vec<Case> = vec![
        (
            "unreachable",
            vec!["--gateway", "http://127.0.0.1:9", "--user", common::ADMIN],
            vec![],
            4,
            "cannot reach the gateway",
        ),
        (
            "wrong token",
            vec!["--token", "not-a-jwt"],
            vec![],
            5,
            "refused the credentials (401",
        ),
        (
            "no admin scope",
            vec!["--token", &public_only],
            vec![],
            5,
            "not allowed (403",
        ),
        (
            "missing secret",
            vec!["--user", common::ADMIN],
            vec![("AUTH_ENCRYPTION_SECRET", "")],
            2,
            "no secret",
        ),
        (
            "unknown type",
            vec!["--user", common::ADMIN, "--types", "tool,widget"],
            vec![],
            2,
            "unknown entity type 'widget'",
        ),
        (
            "malformed include",
            vec!["--user", common::ADMIN, "--include", "weather_*"],
            vec![],
            2,
            "--include: 'weather_*' has no entity type",
        ),
        (
            "include matches nothing",
            vec!["--user", common::ADMIN, "--include", "tools:nope-*"],
            vec![],
            2,
            "matched nothing on the gateway",
        ),
        (
            "basic auth",
            vec!["--user", "admin:changeme"],
            vec![],
            2,
            "does not accept Basic auth",
        ),
        (
            "basic auth URL",
            vec![
                "--gateway",
                "http://admin:pw@127.0.0.1:9",
                "--user",
                common::ADMIN,
            ],
            vec![],
            2,
            "does not accept Basic auth",
        ),
        (
            "wrong secret",
            vec!["--user", common::ADMIN],
            vec![("AUTH_ENCRYPTION_SECRET", "not-the-gateways")],
            2,
            "cannot be decrypted with the given secret",
        ),
    ];
    // A credential must exist for the wrong-secret case.
    gw.post("/v1/tools", json!({"tool": {"name": "secured", "url": "https://s.example.com/x", "integration_type": "REST",
        "request_type": "GET", "auth_type": "bearer", "auth_token": "CANARY-wrong-secret"}})).await;
    for (what, args, env, code, msg) in cases {
        let mut cmd = gw.cmd();
        cmd.arg("export").args(&args).args(["--out", "out.json"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{what}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{what}: one line: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(msg),
            "{what}: {err}"
        );
        assert!(!err.contains("CANARY"), "{what}");
        assert!(
            !gw.dir.path().join("out.json").exists(),
            "{what}: no file written"
        );
    }
    let out = gw
        .cmd()
        .args(["export", "--user", common::ADMIN, "--out", unwritable])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("error: cannot write /proc/no-such-dir/out.json"));
    // Nothing left behind in the working directory (no temp files).
    let leftovers: Vec<_> = std::fs::read_dir(gw.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("mcp-gitops"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn outputs_follow_symlinks_write_through_devices_and_refuse_directories() {
    let gw = Gateway::start();
    gw.post(
        "/v1/tools",
        json!({"tool": {"name": "linked", "url": "https://l.example.com/x",
        "integration_type": "REST", "request_type": "GET"}}),
    )
    .await;
    let dir = gw.dir.path();
    std::fs::create_dir(dir.join("real")).unwrap();
    std::fs::write(dir.join("real/backup.json"), "stale").unwrap();
    std::os::unix::fs::symlink("real/backup.json", dir.join("current.json")).unwrap();
    let export = |out: &str| {
        gw.cmd()
            .args(["export", "--user", common::ADMIN, "-o", out])
            .output()
            .unwrap()
    };

    // A symlink: the link stays, its target holds the document.
    let out = export("current.json");
    assert!(out.status.success(), "{}", stderr(&out));
    let link = std::fs::symlink_metadata(dir.join("current.json")).unwrap();
    assert!(link.file_type().is_symlink());
    let doc = common::read_json(&dir.join("real/backup.json"));
    assert_eq!(doc["entities"]["tools"][0]["name"], "linked");

    // /dev/full: the write error is reported (exit 6) and the device stays a device.
    let out = export("/dev/full");
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim(),
        "error: cannot write /dev/full: No space left on device (os error 28)"
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata("/dev/full")
            .unwrap()
            .file_type()
            .is_char_device()
    );

    // /dev/stdout is standard output: the document there, the summary on stderr.
    let out = export("/dev/stdout");
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["entities"]["tools"][0]["name"], "linked");
    assert!(
        stderr(&out).starts_with("Exported 1 entities"),
        "{}",
        stderr(&out)
    );

    // A directory is refused before the gateway is asked, and left as it was.
    let out = export("real");
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("error: cannot write real: it is a directory;"),
        "{}",
        stderr(&out)
    );
    assert!(dir.join("real").is_dir());
}

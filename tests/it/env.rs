//! `mcp-gitops plan` / `apply` of an environment directory against a real gateway.

use crate::common;

use crate::common::{Gateway, seed};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

const CONFIG: &str = "gateway: ${GW_URL}\nuser: admin@example.com\njwt_secret: {env: JWT_SECRET_KEY}\nsecret: {env: AUTH_ENCRYPTION_SECRET}\n";

#[tokio::test(flavor = "multi_thread")]
async fn plan_apply_converge_and_an_export_plans_to_nothing() {
    let gw = Gateway::start();
    let env = gw.dir.path().join("envs/dev");
    std::fs::create_dir_all(&env).unwrap();
    std::fs::write(env.join("mcp-gitops.yaml"), CONFIG).unwrap();
    let tools = |host: &str| {
        format!(
            "version: '2025-03-26'\nentities:\n  tools:\n    - {{name: weather-api, url: 'https://{host}/v1', request_type: GET, tags: [weather]}}\n    - {{name: translate, url: 'https://tr.example.com/v1', request_type: POST}}\n"
        )
    };
    std::fs::write(env.join("tools.yaml"), tools("${WEATHER_HOST}")).unwrap();
    std::fs::write(
        env.join("servers.json"),
        r#"{"version":"2025-03-26","entities":{"servers":[{"name":"ai-tools","tool_ids":["weather-api","translate"]}]}}"#,
    )
    .unwrap();
    let run = |args: &[&str], host: &str| {
        gw.cmd()
            .args(args)
            .arg(&env)
            .env("GW_URL", &gw.url)
            .env("WEATHER_HOST", host)
            .output()
            .unwrap()
    };

    let out = run(&["plan", "--detailed-exitcode"], "weather.example.com");
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "+ create tool translate\n+ create tool weather-api\n+ create server ai-tools\n"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("Plan: 3 to create, 0 to update, 0 unchanged.\n"),
        "{text}"
    );

    let out = run(&["apply"], "weather.example.com");
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(stdout(&out), "Applied: 2 tools, 1 server\n");
    let out = run(&["plan", "--detailed-exitcode"], "weather.example.com");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // A field-level diff; substituted values are shown as their variable.
    let out = run(&["plan"], "weather2.example.com");
    assert!(
        stdout(&out).contains(r#"~ update tool weather-api: url: "https://weather.example.com/v1" -> "https://${WEATHER_HOST}/v1""#),
        "{}",
        stdout(&out)
    );

    // Golden: the export of a gateway, as an environment, plans to nothing.
    seed::seed(&gw).await;
    let golden = gw.dir.path().join("envs/golden");
    std::fs::create_dir_all(&golden).unwrap();
    std::fs::write(golden.join("mcp-gitops.yaml"), CONFIG).unwrap();
    let out = gw
        .cmd()
        .args(["export", "--user", common::ADMIN, "--out"])
        .arg(golden.join("export.json"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = gw
        .cmd()
        .args(["plan", "--detailed-exitcode"])
        .arg(&golden)
        .env("GW_URL", &gw.url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).ends_with("Plan: 0 to create, 0 to update, 52 unchanged.\n"),
        "{}",
        stdout(&out)
    );

    // Still nothing after a restart, apart from the roots the gateway forgets; apply heals them.
    gw.restart();
    let golden_run = |args: &[&str]| {
        gw.cmd()
            .args(args)
            .arg(&golden)
            .env("GW_URL", &gw.url)
            .output()
            .unwrap()
    };
    let out = golden_run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let text = stdout(&out);
    assert_eq!(text.matches("+ create root ").count(), 6, "{text}");
    assert!(
        text.ends_with("Plan: 6 to create, 0 to update, 46 unchanged.\n"),
        "{text}"
    );
    let out = golden_run(&["apply"]);
    assert_eq!(stdout(&out), "Applied: 6 roots (46 unchanged)\n");
    let out = golden_run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

const PRUNE: &str = "prune: {enabled: true, owner: dev, max_delete_percent: 50}\n";

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_deletes_only_what_the_environment_owns_and_saved_plans_go_stale() {
    let gw = Gateway::start();
    let peer = gw.peer("tiny-peer");
    let env = gw.dir.path().join("envs/dev");
    std::fs::create_dir_all(&env).unwrap();
    std::fs::write(env.join("mcp-gitops.yaml"), format!("{CONFIG}{PRUNE}")).unwrap();
    let write = |tools: &[&str], links: &[&str], prompt: bool| {
        let tools: Vec<String> = tools
            .iter()
            .map(|t| {
                format!(r#"{{"name":"{t}","url":"https://{t}.example.com","request_type":"GET"}}"#)
            })
            .collect();
        let links: Vec<String> = links.iter().map(|t| format!("\"{t}\"")).collect();
        let prompts = if prompt {
            r#","prompts":[{"name":"old-summary","template":"Summarise {{ text }}"}]"#
        } else {
            ""
        };
        std::fs::write(
            env.join("desired.json"),
            format!(
                r#"{{"version":"2025-03-26","entities":{{"tools":[{}],"gateways":[{{"name":"tiny-peer","url":"{peer}","transport":"STREAMABLEHTTP"}}],"servers":[{{"name":"ai-tools","tool_ids":[{}]}}]{prompts}}}}}"#,
                tools.join(","),
                links.join(",")
            ),
        )
        .unwrap();
    };
    let run = |args: &[&str]| gw.cmd().args(args).env("GW_URL", &gw.url).output().unwrap();
    let env_s = env.to_str().unwrap();
    write(&["a", "b", "c", "d"], &["a", "b", "tiny-peer-echo"], true);
    let out = run(&["apply", env_s]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // Everything declared carries the ownership tag.
    let tools = gw.get("/v1/tools?limit=0").await;
    let a = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "a")
        .unwrap();
    assert!(a["tags"].to_string().contains("mcp-gitops:dev"), "{a}");
    // Something made by hand is not owned.
    gw.post(
        "/v1/tools",
        serde_json::json!({"tool": {"name": "hand-made", "url": "https://h.example.com", "request_type": "GET"}}),
    )
    .await;
    let out = run(&["plan", "--detailed-exitcode", env_s]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).ends_with("Plan: 0 to create, 0 to update, 0 to delete, 7 unchanged.\n"),
        "{}",
        stdout(&out)
    );

    // Drop tool b (and the server's link to it) and the prompt.
    write(&["a", "c", "d"], &["a", "tiny-peer-echo"], false);
    let plan_file = gw.dir.path().join("plan.json");
    let plan_s = plan_file.to_str().unwrap();
    let out = run(&["plan", "--detailed-exitcode", "--out", plan_s, env_s]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.starts_with("~ update server ai-tools: tool_ids -[b]\n- delete prompt old-summary\n- delete tool b\n"),
        "{text}"
    );
    assert!(
        text.contains("Plan: 0 to create, 1 to update, 2 to delete, 4 unchanged."),
        "{text}"
    );
    assert!(
        !text.contains("hand-made") && !text.contains("delete tool tiny-peer"),
        "{text}"
    );

    // The live gateway changes: the saved plan is stale and applies nothing.
    let c = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "c")
        .unwrap();
    let c_id = c["id"].as_str().unwrap();
    gw.client()
        .put(
            &format!("/v1/tools/{c_id}"),
            &serde_json::json!({"description": "edited by hand"}),
            &mcp_gitops::gateway::Action::new("edit"),
        )
        .await
        .unwrap();
    let out = run(&["apply", plan_s]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("stale plan: the live gateway changed"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
    let prompts = gw.get("/v1/prompts?limit=0").await;
    assert!(
        prompts
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "old-summary"),
        "nothing was deleted"
    );

    // A fresh plan applies exactly: server first, then deletes in reverse dependency order.
    let out = run(&["plan", "--out", plan_s, env_s]);
    assert!(out.status.success());
    // Editing the documents also makes it stale.
    let desired = std::fs::read_to_string(env.join("desired.json")).unwrap();
    std::fs::write(
        env.join("desired.json"),
        desired.replace("https://d.example.com", "https://d2.example.com"),
    )
    .unwrap();
    let out = run(&["apply", plan_s]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("documents or settings changed"),
        "{}",
        stderr(&out)
    );
    std::fs::write(env.join("desired.json"), &desired).unwrap();
    let out = run(&["apply", plan_s]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        stdout(&out),
        "Applied: 1 server, deleted 1 tool, 1 prompt (4 unchanged)\n"
    );
    let names: Vec<String> = gw
        .get("/v1/tools?limit=0")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!names.contains(&"b".to_string()), "{names:?}");
    for kept in ["a", "c", "d", "hand-made", "tiny-peer-echo"] {
        assert!(names.contains(&kept.to_string()), "{kept} kept: {names:?}");
    }
    assert!(
        gw.get("/v1/prompts?limit=0")
            .await
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["name"] != "old-summary")
    );

    // Deleting most of what it owns is refused, unless allowed.
    write(&[], &["tiny-peer-echo"], false);
    let out = run(&["plan", env_s]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("refusing to delete 3 of the 5 entities marked mcp-gitops:dev (60%"),
        "{}",
        stderr(&out)
    );
    let out = run(&["apply", "--allow-mass-delete", env_s]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("deleted 3 tools"), "{}", stdout(&out));
}

#[test]
fn plans_offline_against_a_saved_snapshot_without_a_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("dev");
    std::fs::create_dir_all(&env).unwrap();
    // Nothing listens on port 9: any request would fail the run.
    std::fs::write(
        env.join("mcp-gitops.yaml"),
        "gateway: http://127.0.0.1:9\ntoken: {env: TOKEN}\nprune: true\n",
    )
    .unwrap();
    std::fs::write(
        env.join("tools.json"),
        r#"{"version":"1","entities":{"tools":[{"name":"a","url":"https://a2.example.com","request_type":"GET"},{"name":"b","url":"https://b.example.com","request_type":"GET"}]}}"#,
    )
    .unwrap();
    let snapshot = dir.path().join("snapshot.json");
    std::fs::write(
        &snapshot,
        r#"{"version":"1","entities":{"tools":[{"name":"a","url":"https://a.example.com","request_type":"GET","tags":["mcp-gitops:dev"]},{"name":"c","url":"https://c.example.com","request_type":"GET","tags":["mcp-gitops:dev"]},{"name":"d","url":"https://d.example.com","request_type":"GET","tags":["mcp-gitops:dev"]},{"name":"by-hand","url":"https://h.example.com","request_type":"GET"}]}}"#,
    )
    .unwrap();
    let out = assert_cmd::Command::cargo_bin("mcp-gitops")
        .unwrap()
        .env_clear()
        .env("TOKEN", "not-used")
        .args([
            "plan",
            "--detailed-exitcode",
            "--allow-mass-delete",
            "--snapshot",
        ])
        .arg(&snapshot)
        .arg(&env)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(
        stdout(&out),
        "~ update tool a: url: \"https://a.example.com\" -> \"https://a2.example.com\"\n+ create tool b\n- delete tool c\n- delete tool d\nPlan: 1 to create, 1 to update, 2 to delete, 0 unchanged.\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn credential_drift_is_found_by_decrypted_value_and_never_shown() {
    use mcp_gitops::core::secrets::{Credentials, Secret};
    let gw = Gateway::start();
    let env = gw.dir.path().join("envs/dev");
    std::fs::create_dir_all(&env).unwrap();
    std::fs::write(env.join("mcp-gitops.yaml"), CONFIG).unwrap();
    let key = Secret::new(gw.secret());
    let write = |token: &str| {
        let v = key.encrypt(&Credentials::from_pairs([(
            "Authorization".to_string(),
            format!("Bearer {token}"),
        )]));
        std::fs::write(
            env.join("tools.json"),
            format!(
                r#"{{"version":"1","entities":{{"tools":[{{"name":"billing","url":"https://billing.example.com","request_type":"GET","auth_type":"bearer","auth_value":"{v}"}}]}}}}"#
            ),
        )
        .unwrap();
    };
    let run = |args: &[&str]| {
        gw.cmd()
            .args(args)
            .arg(&env)
            .env("GW_URL", &gw.url)
            .output()
            .unwrap()
    };
    write("CANARY-token-1");
    assert!(run(&["apply"]).status.success());
    // Re-encrypting the same value (a new nonce) is no change.
    write("CANARY-token-1");
    let out = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // Changed by hand on the gateway: found, and shown without the value.
    let tools = gw.get("/v1/tools?limit=0").await;
    let id = tools[0]["id"].as_str().unwrap();
    gw.client()
        .put(
            &format!("/v1/tools/{id}"),
            &serde_json::json!({"auth_type": "bearer", "auth_token": "CANARY-by-hand"}),
            &mcp_gitops::gateway::Action::new("edit by hand"),
        )
        .await
        .unwrap();
    let out = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with("~ update tool billing: auth_value: (sensitive value changed)\n"),
        "{}",
        stdout(&out)
    );
    let out = run(&["apply", "-o", "json"]);
    assert!(out.status.success());
    for o in [stdout(&out), stderr(&out)] {
        assert!(!o.contains("CANARY"), "plaintext credential in output: {o}");
    }
    let export = gw
        .cmd()
        .args(["export", "--user", common::ADMIN, "--out", "-"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&export.stdout).unwrap();
    let value = doc["entities"]["tools"][0]["auth_value"].as_str().unwrap();
    let decoded = gw.decode_auth(&[value], None);
    assert_eq!(decoded[0]["Authorization"], "Bearer CANARY-token-1");
}

/// ContextForge 1.0.7 empties a peer gateway's stored credentials on any PUT that names no
/// credential field; updates of other fields must keep them.
#[tokio::test(flavor = "multi_thread")]
async fn updating_a_peer_gateway_keeps_its_credentials() {
    use mcp_gitops::core::secrets::{Credentials, Secret};
    let gw = Gateway::start();
    let peer = gw.peer("vault");
    let env = gw.dir.path().join("envs/dev");
    std::fs::create_dir_all(&env).unwrap();
    std::fs::write(env.join("mcp-gitops.yaml"), format!("{CONFIG}{PRUNE}")).unwrap();
    let v = Secret::new(gw.secret()).encrypt(&Credentials::from_pairs([(
        "Authorization".to_string(),
        "Bearer CANARY-peer".to_string(),
    )]));
    let write = |desc: &str| {
        std::fs::write(
            env.join("gateways.json"),
            format!(
                r#"{{"version":"1","entities":{{"gateways":[{{"name":"vault","url":"{peer}","transport":"STREAMABLEHTTP","description":"{desc}","auth_type":"bearer","auth_value":"{v}"}}]}}}}"#
            ),
        )
        .unwrap();
    };
    let run = |args: &[&str]| {
        gw.cmd()
            .args(args)
            .arg(&env)
            .env("GW_URL", &gw.url)
            .output()
            .unwrap()
    };
    write("first");
    // Created, then (prune on) tagged as owned, then its description changed: two updates
    // that carry no credential.
    assert!(run(&["apply"]).status.success());
    write("second");
    let out = run(&["apply"]);
    assert_eq!(stdout(&out), "Applied: 1 gateway\n", "{}", stderr(&out));
    let out = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let export = gw
        .cmd()
        .args([
            "export",
            "--user",
            common::ADMIN,
            "--types",
            "gateways",
            "--out",
            "-",
        ])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&export.stdout).unwrap();
    let value = doc["entities"]["gateways"][0]["auth_value"]
        .as_str()
        .unwrap_or_else(|| panic!("the gateway lost its credentials: {doc}"));
    assert_eq!(
        gw.decode_auth(&[value], None)[0]["Authorization"],
        "Bearer CANARY-peer"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_applies_of_one_environment_take_turns_and_a_held_lock_names_its_holder() {
    use mcp_gitops::engine::apply::Cancel;
    use mcp_gitops::engine::envlock::{self, Key};
    use std::time::Duration;

    let gw = Gateway::start();
    let env = gw.dir.path().join("envs/dev");
    let locks = gw.dir.path().join("locks");
    std::fs::create_dir_all(&env).unwrap();
    std::fs::write(env.join("mcp-gitops.yaml"), CONFIG).unwrap();
    let tools = |n: usize| {
        let mut doc = "version: '2025-03-26'\nentities:\n  tools:\n".to_string();
        for i in 0..n {
            doc.push_str(&format!(
                "    - {{name: tool-{i:02}, url: 'https://t{i}.example.com/v1', request_type: GET}}\n"
            ));
        }
        doc
    };
    std::fs::write(env.join("tools.yaml"), tools(40)).unwrap();
    let apply = |extra: &[&str]| {
        gw.cmd()
            .arg("apply")
            .arg(&env)
            .args(extra)
            .env("GW_URL", &gw.url)
            .env("MCP_GITOPS_LOCK_DIR", &locks)
            .output()
            .unwrap()
    };
    let names = || gw.tool_names();

    // Two applies at once: one creates everything, the other waits and finds nothing to do.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| apply(&[]));
        let b = s.spawn(|| apply(&[]));
        (a.join().unwrap(), b.join().unwrap())
    });
    for o in [&a, &b] {
        assert!(o.status.success(), "{}{}", stdout(o), stderr(o));
        assert!(!stderr(o).contains("409") && !stdout(o).contains("409"));
    }
    let mut reports = [stdout(&a), stdout(&b)];
    reports.sort();
    assert_eq!(
        reports,
        ["Applied: 40 tools\n", "Applied: nothing (40 unchanged)\n"]
    );
    let expected: Vec<String> = (0..40).map(|i| format!("tool-{i:02}")).collect();
    assert_eq!(names().await, expected);

    // While another holds the lock: --lock-timeout 0 fails at once naming it, writing nothing.
    std::fs::write(env.join("tools.yaml"), tools(41)).unwrap();
    let held = envlock::acquire(
        &locks,
        &Key::for_dir(&env, &gw.url),
        "mcp-gitops apply (the test)",
        Duration::ZERO,
        &Cancel::default(),
        &|_| {},
    )
    .await
    .unwrap();
    let out = apply(&["--lock-timeout", "0"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    let holder = format!(
        "locked by pid {} (mcp-gitops apply (the test)) since ",
        std::process::id()
    );
    assert!(
        err.starts_with(&format!(
            "error: {} on {}: ",
            env.canonicalize().unwrap().display(),
            gw.url
        )) && err.contains(&holder)
            && err.contains("not waiting (--lock-timeout 0)"),
        "{err}"
    );
    assert_eq!(names().await.len(), 40, "nothing written");

    // With a timeout it says whom it waits for, and applies once the lock is released.
    let mut cmd = common::proc::Logged::command(&["apply", env.to_str().unwrap()]);
    for (k, v) in gw.cmd().get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.env("GW_URL", &gw.url)
        .env("MCP_GITOPS_LOCK_DIR", &locks);
    let mut waiting = common::proc::Logged::spawn(cmd);
    let line = waiting.wait_log(0, "waiting for the lock on ");
    assert!(
        waiting
            .line(line)
            .contains(&format!("held by pid {}", std::process::id()))
    );
    drop(held);
    let (code, log) = waiting.wait();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(names().await.len(), 41);
}

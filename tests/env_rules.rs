//! Environment rules against a real gateway: `conflict_strategy: fail` refuses the whole run,
//! and the README's own environment example runs as printed.

mod common;

use common::Gateway;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

async fn tool_names(gw: &Gateway) -> Vec<String> {
    let mut names: Vec<String> = gw
        .get("/v1/tools?limit=0")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn conflict_strategy_fail_refuses_the_whole_run_before_any_write() {
    let gw = Gateway::start();
    gw.post(
        "/v1/tools",
        serde_json::json!({"tool": {"name": "alpha", "url": "https://alpha.example.com",
                                    "request_type": "GET", "description": "by hand"}}),
    )
    .await;
    gw.post(
        "/v1/tools",
        serde_json::json!({"tool": {"name": "gamma", "url": "https://gamma.example.com",
                                    "request_type": "GET"}}),
    )
    .await;
    let env = gw.dir.path().join("envs/dev");
    std::fs::create_dir_all(&env).unwrap();
    std::fs::write(
        env.join("mcp-gitops.yaml"),
        "gateway: ${GW_URL}\nuser: admin@example.com\njwt_secret: {env: JWT_SECRET_KEY}\nconflict_strategy: fail\n",
    )
    .unwrap();
    let tools = r#"{"version":"2025-03-26","entities":{"tools":[
        {"name":"alpha","url":"https://alpha.example.com","request_type":"GET","description":"desired"},
        {"name":"beta","url":"https://beta.example.com","request_type":"GET"},
        {"name":"gamma","url":"https://gamma2.example.com","request_type":"GET"}]}}"#;
    std::fs::write(env.join("tools.json"), tools).unwrap();
    let run = |args: &[&str]| {
        gw.cmd()
            .args(args)
            .arg(&env)
            .env("GW_URL", &gw.url)
            .output()
            .unwrap()
    };
    let conflicts = "2 conflicts under conflict strategy fail; nothing was written:\n  tool alpha (description)\n  tool gamma (url)\n";

    let out = run(&["plan"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(stderr(&out), format!("error: {conflicts}"));
    assert_eq!(stdout(&out), "", "no plan is shown for a refused run");
    let out = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    let out = run(&["apply"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(stderr(&out), format!("error: {conflicts}"));
    assert_eq!(
        tool_names(&gw).await,
        ["alpha", "gamma"],
        "beta was not created"
    );
    let live = gw.get("/v1/tools?limit=0").await;
    assert_eq!(
        common::description(live.as_array().unwrap(), "alpha").as_deref(),
        Some("by hand")
    );

    // `import --conflict-strategy fail` is the same check, with the same list.
    let out = gw
        .cmd()
        .args([
            "import",
            "--user",
            common::ADMIN,
            "--conflict-strategy",
            "fail",
        ])
        .arg(env.join("tools.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stderr(&out), format!("error: {conflicts}"));
    assert_eq!(tool_names(&gw).await, ["alpha", "gamma"]);

    // Without conflicts the strategy is no obstacle: the new tool is created.
    std::fs::write(
        env.join("tools.json"),
        tools
            .replace("\"desired\"", "\"by hand\"")
            .replace("gamma2", "gamma"),
    )
    .unwrap();
    let out = run(&["apply"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out), "Applied: 1 tool (2 unchanged)\n");
    assert_eq!(tool_names(&gw).await, ["alpha", "beta", "gamma"]);
}

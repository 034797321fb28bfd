//! Environment rules against a real gateway: `conflict_strategy: fail` refuses the whole run,
//! and the README's own environment example runs as printed.

use crate::common;

use crate::common::Gateway;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
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
        gw.tool_names().await,
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
    assert_eq!(gw.tool_names().await, ["alpha", "gamma"]);

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
    assert_eq!(gw.tool_names().await, ["alpha", "beta", "gamma"]);
}

/// The README's `plan examples/envs/dev` / `apply examples/envs/dev` transcript, run line by
/// line from the repository's root with the dev environment's variables set (and nothing of
/// the base's): every `$ ` command, its output and the exit code `echo $?` shows.
#[tokio::test(flavor = "multi_thread")]
async fn the_readme_environment_example_runs_as_printed() {
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let start = readme
        .find("$ mcp-gitops plan examples/envs/dev")
        .expect("the README shows plan examples/envs/dev");
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    for line in block.lines() {
        match line.strip_prefix("$ ") {
            Some(cmd) => steps.push((cmd.to_string(), Vec::new())),
            None => steps.last_mut().unwrap().1.push(line.to_string()),
        }
    }
    assert!(steps.len() >= 3, "{block}");

    // The gateway holds the base's state, as the example assumes.
    let gw = Gateway::start();
    for file in ["tools.yaml", "servers.yaml"] {
        let out = gw
            .cmd()
            .args(["import", "--user", common::ADMIN])
            .arg(common::root().join("examples/envs/base").join(file))
            .output()
            .unwrap();
        assert!(out.status.success(), "{file}: {}", stderr(&out));
    }

    let mut last: Option<std::process::Output> = None;
    for (cmd, want) in steps {
        if cmd == "echo $?" {
            let code = last.as_ref().unwrap().status.code().unwrap();
            assert_eq!(vec![code.to_string()], want, "{cmd}");
            continue;
        }
        let args: Vec<&str> = cmd.split_whitespace().collect();
        assert_eq!(args[0], "mcp-gitops", "{cmd}");
        let out = assert_cmd::Command::cargo_bin("mcp-gitops")
            .unwrap()
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DEV_GATEWAY_URL", &gw.url)
            .env("DEV_GATEWAY_TOKEN", gw.token())
            .env("DEV_AUTH_ENCRYPTION_SECRET", gw.secret())
            .env("WEATHER_HOST", "weather.dev.example.com")
            .current_dir(common::root())
            .args(&args[1..])
            .output()
            .unwrap();
        assert_eq!(
            stdout(&out).lines().collect::<Vec<_>>(),
            want,
            "{cmd}: {}",
            stderr(&out)
        );
        last = Some(out);
    }
    let live = gw.get("/v1/tools?limit=0").await;
    let weather = live
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "weather-api")
        .unwrap();
    assert_eq!(weather["url"], "https://weather.dev.example.com/v1/current");
}

#[test]
fn rename_is_refused_for_an_environment_before_the_gateway_is_contacted() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9: a request would fail differently.
    std::fs::write(
        dir.path().join("mcp-gitops.yaml"),
        "gateway: http://127.0.0.1:9\ntoken: {env: TOKEN}\nconflict_strategy: rename\n",
    )
    .unwrap();
    for cmd in ["plan", "apply"] {
        let out = assert_cmd::Command::cargo_bin("mcp-gitops")
            .unwrap()
            .env_clear()
            .env("TOKEN", "not-used")
            .arg(cmd)
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(
                "mcp-gitops.yaml: /conflict_strategy: rename is not allowed in an environment"
            ),
            "{cmd}: {}",
            stderr(&out)
        );
    }
}

//! `mcp-gitops plan` / `apply` of an environment directory against a real gateway.

mod common;

use common::{Gateway, seed};

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
}

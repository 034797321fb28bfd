//! `mcp-gitops watch` against a real gateway: file changes (including rename-saves) applied,
//! invalid edits refused with the last good state kept, drift healed (also after a gateway
//! restart that lost the roots), observe mode only reporting, SIGTERM a clean exit.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::proc::Logged;
use crate::common::{Gateway, description};
use serde_json::Value;

const CONFIG: &str = "gateway: ${GW_URL}\nuser: admin@example.com\njwt_secret: {env: JWT_SECRET_KEY}\nsecret: {env: AUTH_ENCRYPTION_SECRET}\n";

/// `mcp-gitops watch --interval 1 DIR` with the gateway's settings.
fn start_watch(gw: &Gateway, dir: &Path) -> Logged {
    let mut cmd = Logged::command(&["watch", "--interval", "1"]);
    cmd.arg(dir)
        .env("GW_URL", &gw.url)
        .env("JWT_SECRET_KEY", gw.jwt_secret())
        .env("AUTH_ENCRYPTION_SECRET", gw.secret());
    Logged::spawn(cmd)
}

/// Wait until `check` holds for the gateway's tool list.
async fn wait_tools(gw: &Gateway, what: &str, check: impl Fn(&[Value]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tools = gw.get("/v1/tools?limit=0").await;
        if check(tools.as_array().unwrap()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {tools}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn tools_yaml(desc: &str) -> String {
    format!(
        "version: '2025-03-26'\nentities:\n  tools:\n    - name: weather-api\n      url: https://weather.example.com/v1\n      request_type: GET\n      description: {desc}\n  roots:\n    - uri: file:///srv/data\n      name: data\n"
    )
}

/// Save the way editors that write a temporary file and rename it do.
fn save_by_rename(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_applies_edits_keeps_the_last_good_state_heals_drift_and_stops_cleanly() {
    let gw = Gateway::start();
    let env = gw.dir.path().join("envs/dev");
    std::fs::create_dir_all(&env).unwrap();
    std::fs::write(env.join("mcp-gitops.yaml"), CONFIG).unwrap();
    std::fs::write(env.join("tools.yaml"), tools_yaml("first")).unwrap();

    let mut w = start_watch(&gw, &env);
    wait_tools(&gw, "the tool", |t| {
        description(t, "weather-api").as_deref() == Some("first")
    })
    .await;

    // An edit saved by rename is applied.
    save_by_rename(&env, "tools.yaml", &tools_yaml("second"));
    wait_tools(&gw, "the edit", |t| {
        description(t, "weather-api").as_deref() == Some("second")
    })
    .await;

    // An invalid edit: one clear error naming file and pointer; nothing applied; still running.
    let mark = w.lines();
    std::fs::write(
        env.join("tools.yaml"),
        tools_yaml("third").replace("request_type: GET", "request_type: FETCH"),
    )
    .unwrap();
    let at = w.wait_log(mark, "invalid:");
    let line = w.line(at);
    assert!(line.contains("tools.yaml"), "{line}");
    assert!(line.contains("/entities/tools/0/request_type"), "{line}");
    assert!(line.contains("last good state"), "{line}");
    // Drift is still corrected with the last good state: a tool deleted by hand comes back.
    let tools = gw.get("/v1/tools?limit=0").await;
    let id = tools[0]["id"].as_str().unwrap().to_string();
    gw.client()
        .delete(
            &format!("/v1/tools/{id}"),
            &mcp_gitops::gateway::Action::new("delete by hand"),
        )
        .await
        .unwrap();
    wait_tools(&gw, "drift healed", |t| {
        description(t, "weather-api").as_deref() == Some("second")
    })
    .await;
    assert!(w.alive());

    // Fixed: applied.
    save_by_rename(&env, "tools.yaml", &tools_yaml("fourth"));
    wait_tools(&gw, "the fix", |t| {
        description(t, "weather-api").as_deref() == Some("fourth")
    })
    .await;

    // The gateway goes away and comes back without its roots: retried, then healed.
    let mark = w.lines();
    gw.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let roots = gw.get("/v1/roots").await;
        if roots.to_string().contains("file:///srv/data") {
            break;
        }
        assert!(Instant::now() < deadline, "root not restored: {}", w.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(w.alive());
    // It was unreachable meanwhile (a restart takes seconds; checks run every second).
    w.wait_log(mark, "retrying in");

    let (code, log) = w.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.ends_with("stopped"), "{log}");
    assert!(!log.contains(gw.secret()) && !log.contains(gw.jwt_secret()));
}

#[tokio::test(flavor = "multi_thread")]
async fn observe_mode_reports_drift_and_writes_nothing() {
    let gw = Gateway::start();
    let env = gw.dir.path().join("envs/prod");
    std::fs::create_dir_all(&env).unwrap();
    std::fs::write(
        env.join("mcp-gitops.yaml"),
        format!("{CONFIG}mode: observe\n"),
    )
    .unwrap();
    std::fs::write(env.join("tools.yaml"), tools_yaml("first")).unwrap();
    let mut w = start_watch(&gw, &env);
    let at = w.wait_log(0, "drift (2 changes, mode observe)");
    w.wait_log(at - 1, "+ create tool weather-api");
    let tools = gw.get("/v1/tools?limit=0").await;
    assert_eq!(
        tools.as_array().unwrap().len(),
        0,
        "observe mode wrote: {tools}"
    );
    let (code, log) = w.terminate();
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_apply_lets_requests_in_flight_finish_and_starts_no_more() {
    let gw = Gateway::start();
    let env = gw.dir.path().join("envs/dev");
    std::fs::create_dir_all(&env).unwrap();
    std::fs::write(env.join("mcp-gitops.yaml"), CONFIG).unwrap();
    // 40 tools with distinct host names: each create waits for the gateway's URL check.
    let tools: Vec<String> = (0..40)
        .map(|i| {
            format!(
                r#"{{"name":"t-{i:02}","url":"https://h{i}.example.com/x","request_type":"GET"}}"#
            )
        })
        .collect();
    std::fs::write(
        env.join("tools.json"),
        format!(
            r#"{{"version":"1","entities":{{"tools":[{}]}}}}"#,
            tools.join(",")
        ),
    )
    .unwrap();
    let w = start_watch(&gw, &env);
    wait_tools(&gw, "the first tool", |t| !t.is_empty()).await;
    let (code, log) = w.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("stopping: finishing requests in flight"),
        "{log}"
    );
    assert!(
        log.contains("not started: shutting down") || log.contains("skipped"),
        "{log}"
    );
    // Whatever was started finished (no half-created tool); not everything was started.
    let created = gw.get("/v1/tools?limit=0").await.as_array().unwrap().len();
    assert!(created < 40, "all 40 were created after SIGTERM");
    let applied = log.lines().filter(|l| l.ends_with(" created")).count();
    assert_eq!(
        created, applied,
        "the log names every tool that was created:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_cycles_take_the_environments_lock_and_retry_while_another_holds_it() {
    use mcp_gitops::engine::apply::Cancel;
    use mcp_gitops::engine::envlock::{self, Key};

    let gw = Gateway::start();
    let env = gw.dir.path().join("envs/dev");
    let locks = gw.dir.path().join("locks");
    std::fs::create_dir_all(&env).unwrap();
    std::fs::write(env.join("mcp-gitops.yaml"), CONFIG).unwrap();
    std::fs::write(env.join("tools.yaml"), tools_yaml("locked")).unwrap();
    // Another process (here: this test, through the same engine) is reconciling the environment.
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
    let mut cmd = Logged::command(&["watch", "--interval", "1", "--lock-timeout", "1"]);
    cmd.arg(&env)
        .env("GW_URL", &gw.url)
        .env("JWT_SECRET_KEY", gw.jwt_secret())
        .env("AUTH_ENCRYPTION_SECRET", gw.secret())
        .env("MCP_GITOPS_LOCK_DIR", &locks);
    let mut w = Logged::spawn(cmd);
    let holder = format!("pid {} (mcp-gitops apply (the test))", std::process::id());
    let at = w.wait_log(0, "waiting for the lock on ");
    assert!(w.line(at).contains(&holder), "{}", w.line(at));
    // It gives up after --lock-timeout, says who holds the lock, and retries.
    let at = w.wait_log(at, "locked by ");
    assert!(
        w.line(at).contains(&holder) && w.line(at).contains("retrying in"),
        "{}",
        w.line(at)
    );
    assert!(
        gw.get("/v1/tools?limit=0")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    drop(held);
    wait_tools(&gw, "the tool", |t| {
        description(t, "weather-api").as_deref() == Some("locked")
    })
    .await;
    let (code, log) = w.terminate();
    assert_eq!(code, Some(0), "{log}");
}

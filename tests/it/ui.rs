//! The web UI in real headless Chromium against `mcp-gitops run` and a real gateway: log in
//! (a wrong token refused, a viewer who may only look), the environments overview and
//! "reconcile now", the plan and drift view with its field diff, "apply this plan" and a stale
//! plan refused; no CSP violation in the browser's log, a credential canary on no page, and
//! screenshots of every page at desktop and phone size in `target/ui-screenshots/`.

use std::time::{Duration, Instant};

use crate::common::browser::{Browser, Seen, click, log_in, submit_login};
use crate::common::{Gateway, set_description};
use crate::daemon::{Daemon, ENV_CONFIG, tool_doc, tool_with_token};
use serde_json::json;

const OPERATOR: &str = "ui-operator-token-0123456789";
const VIEWER: &str = "ui-viewer-token-0123456789";
const CANARY: &str = "ui-canary-bearer-4242";

async fn description(gw: &Gateway, name: &str) -> Option<String> {
    let tools = gw.get("/v1/tools?limit=0").await;
    crate::common::description(tools.as_array().unwrap(), name)
}

/// Click a button that asks for confirmation, and confirm.
async fn click_confirmed(b: &Browser, css: &str) {
    click(b, css).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.client.accept_alert().await.is_err() {
        assert!(Instant::now() < deadline, "no confirmation asked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn log_in_see_the_environments_their_drift_and_apply_exactly_the_plan_shown() {
    let gw = Gateway::start();
    let root = gw.dir.path();
    // `shared-api` exists live with another description: observe mode shows it as drift.
    gw.post(
        "/v1/tools",
        json!({"tool": {"name": "shared-api", "url": "https://shared.example.com/v1",
            "integration_type": "REST", "request_type": "GET", "description": "live"}}),
    )
    .await;
    let dev = root.join("envs/dev");
    let obs = root.join("envs/obs");
    for d in [&dev, &obs] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("mcp-gitops.yaml"), ENV_CONFIG).unwrap();
    }
    let (dev_doc, dev_value) = tool_with_token(gw.secret(), "dev-api", "v1", CANARY);
    std::fs::write(dev.join("tools.yaml"), dev_doc).unwrap();
    let (new_doc, _) = tool_with_token(gw.secret(), "obs-new", "new", CANARY);
    let shared = tool_doc("shared-api", "desired", "GET");
    let shared_entry = shared.split("  tools:\n").nth(1).unwrap();
    std::fs::write(obs.join("tools.yaml"), format!("{new_doc}{shared_entry}")).unwrap();
    let config = root.join("daemon.yaml");
    std::fs::write(
        &config,
        "listen: 127.0.0.1:0\nstate_dir: state\nui: {}\napi:\n  open_status: true\n  tokens:\n    - {name: ops, role: operator, token: {env: UI_OPERATOR_TOKEN}}\n    - {name: auditor, role: viewer, token: {env: UI_VIEWER_TOKEN}}\nenvironments:\n  - {name: dev, source: {dir: envs/dev}, interval: 1h}\n  - {name: obs, source: {dir: envs/obs}, interval: 1h, mode: observe}\n",
    )
    .unwrap();
    let d = Daemon::start_with(
        &gw,
        &config,
        &[("UI_OPERATOR_TOKEN", OPERATOR), ("UI_VIEWER_TOKEN", VIEWER)],
    );
    d.wait_ready().await;
    assert_eq!(description(&gw, "dev-api").await.as_deref(), Some("v1"));
    let base = d.url("");
    let b = Browser::start().await;
    let mut seen = Seen::default();

    // Not logged in: the login page. A wrong token is refused.
    b.goto(&format!("{base}/ui")).await;
    b.wait_url("/ui/login").await;
    b.find("label[for=token]").await;
    b.screenshots("login", None).await;
    submit_login(&b, &base, "not-a-token-of-daemon-yaml").await;
    assert!(b.text("#login-error").await.contains("not accepted"));
    seen.add(&b).await;

    // A viewer sees the environments, but no button that acts.
    log_in(&b, &base, VIEWER).await;
    let table = b.text("#environments").await;
    assert!(table.contains("dev") && table.contains("obs"), "{table}");
    assert!(!b.source().await.contains("Reconcile now"));
    b.goto(&format!("{base}/ui/env/obs/plan")).await;
    assert!(b.text("#apply-state").await.contains("Observe mode"),);
    seen.add(&b).await;
    click(&b, "form[action='/ui/logout'] button").await;
    b.wait_url("/ui/login").await;
    b.goto(&format!("{base}/ui")).await;
    b.wait_url("/ui/login").await; // logged out

    // The operator: one row per environment with its mode, sync state and drift.
    log_in(&b, &base, OPERATOR).await;
    let dev_row = b.text("tr[data-env=dev]").await;
    assert!(
        dev_row.contains("auto") && dev_row.contains("synced"),
        "{dev_row}"
    );
    let obs_row = b.text("tr[data-env=obs]").await;
    assert!(
        obs_row.contains("observe") && obs_row.contains("out of sync"),
        "{obs_row}"
    );
    assert_eq!(b.text("tr[data-env=obs] td.drift").await, "2", "{obs_row}");
    seen.add(&b).await;
    b.screenshots("overview", None).await;

    // Reconcile now: the worker runs another cycle.
    let cycles = d.status("dev").await["cycles"].as_u64().unwrap();
    click(&b, "tr[data-env=dev] form button").await;
    assert!(
        b.text(".flash")
            .await
            .contains("Reconcile of dev asked for")
    );
    d.wait_status("dev", "another cycle", |s| {
        s["cycles"].as_u64().unwrap() > cycles
    })
    .await;

    // The drift of the observed environment, field by field; credentials never shown.
    b.goto(&format!("{base}/ui/env/obs/plan")).await;
    let summary = b.text("#summary").await;
    assert!(
        summary.contains("+1 create")
            && summary.contains("~1 update")
            && summary.contains("-0 delete"),
        "{summary}"
    );
    assert_eq!(b.text("#prune").await, "Prune deletes nothing.");
    click(&b, "details[data-key=shared-api] summary").await;
    let diff = b.text("details[data-key=shared-api] table.diff").await;
    assert!(
        diff.contains("description") && diff.contains("\"live\"") && diff.contains("\"desired\""),
        "{diff}"
    );
    seen.add(&b).await;
    b.screenshots("plan-drift", None).await;

    // Changed by hand: the plan of dev shows it, and applying it puts v1 back.
    set_description(&gw, "dev-api", "by hand").await;
    b.goto(&format!("{base}/ui/env/dev/plan")).await;
    assert!(b.text("#summary").await.contains("~1 update"));
    seen.add(&b).await;
    b.screenshots("plan-apply", None).await;
    let cycles = d.status("dev").await["cycles"].as_u64().unwrap();
    click_confirmed(&b, "#apply button").await;
    assert!(
        b.text("#applied").await.contains("1 updated"),
        "{}",
        b.source().await
    );
    assert_eq!(description(&gw, "dev-api").await.as_deref(), Some("v1"));
    seen.add(&b).await;
    b.screenshots("applied", None).await;
    // The apply asks the worker to check again; that cycle must be over before the next hand
    // changes, or it would heal them (dev is in auto mode).
    d.wait_status("dev", "the cycle after the apply", |s| {
        s["cycles"].as_u64().unwrap() > cycles
    })
    .await;

    // A plan that no longer holds is not applied.
    set_description(&gw, "dev-api", "by hand 2").await;
    b.goto(&format!("{base}/ui/env/dev/plan")).await;
    b.find("#apply button").await;
    set_description(&gw, "dev-api", "by hand 3").await;
    click_confirmed(&b, "#apply button").await;
    let refused = b.text("#apply-error").await;
    assert!(
        refused.contains("stale") && refused.contains("live gateway changed"),
        "{refused}"
    );
    assert_eq!(
        description(&gw, "dev-api").await.as_deref(),
        Some("by hand 3")
    );
    seen.add(&b).await;
    b.screenshots("stale", None).await;

    // Export: one entity selected, previewed (it needs nothing else), downloaded, and it is
    // the gateway's.
    b.goto(&format!("{base}/ui/env/dev/export")).await;
    let tools_live = gw.tool_names().await;
    assert!(
        b.text("#export-counts").await.contains(&format!(
            "{} total items across 1 categories",
            tools_live.len()
        )),
        "{tools_live:?}"
    );
    click(&b, "input[value='tools:dev-api']").await;
    seen.add(&b).await;
    b.screenshots("export", None).await;
    click(&b, "#export-selected").await;
    b.wait_url("/ui/env/dev/export/preview").await;
    assert_eq!(b.text("#selected").await, "tools: dev-api");
    b.find("#no-dependencies").await;
    seen.add(&b).await;
    click(&b, "#download-selected").await;
    let file = b.download("export-").await;
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.len() == "export-YYYYMMDD-HHMMSS.json".len() && name.ends_with(".json"),
        "{name}"
    );
    let doc = crate::common::read_json(&file);
    let tools = doc["entities"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 1, "{doc:#}");
    assert_eq!(tools[0]["name"], "dev-api");
    assert_eq!(
        tools[0]["description"].as_str(),
        description(&gw, "dev-api").await.as_deref()
    );
    assert!(!std::fs::read_to_string(&file).unwrap().contains(CANARY));

    // No page broke its Content-Security-Policy, and no page holds a credential.
    let console = b.console().await;
    assert!(
        !console
            .iter()
            .any(|m| m.contains("Content Security Policy")),
        "{console:#?}"
    );
    for (url, html) in &seen.0 {
        for secret in [CANARY, dev_value.as_str(), OPERATOR, VIEWER, gw.secret()] {
            assert!(!html.contains(secret), "{url} shows a secret");
        }
        assert!(html.len() < 200 * 1024, "{url}: {} bytes", html.len());
    }
    assert!(!d.text().contains(CANARY));
}

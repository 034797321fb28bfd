//! The web UI's Jobs and Backups pages in real headless Chromium against `mcp-gitops run`, a
//! real gateway and a real Git backup repository: a scheduled backup's commit is listed, its
//! diff against live is empty, then shows a tool changed by hand field by field; an import job
//! started through the API is listed and its page's counts are the API's; an unknown job is a
//! 404 page; every page keyboard reachable, under 200 KB, without a CSP violation or a
//! credential canary; screenshots at desktop and phone size.

use std::time::{Duration, Instant};

use crate::common::browser::{Browser, Seen, click, log_in};
use crate::common::git::bare;
use crate::common::{Gateway, set_description};
use crate::daemon::{Daemon, ENV_CONFIG, tool_doc};
use serde_json::{Value, json};

const OPERATOR: &str = "ui-pages-operator-token-0123456789";
const VIEWER: &str = "ui-pages-viewer-token-0123456789";
const CANARY: &str = "ui-pages-canary-bearer-4242";

/// A document with one tool whose bearer token is the canary, encrypted with `secret`.
fn canary_doc(secret: &str) -> Value {
    let value = mcp_gitops::core::secrets::Secret::new(secret).encrypt(
        &mcp_gitops::core::secrets::Credentials::from_pairs([(
            "Authorization".to_string(),
            format!("Bearer {CANARY}"),
        )]),
    );
    json!({"version": "2025-03-26", "entities": {"tools": [
        {"name": "imported-api", "url": "https://imported.example.com/v1", "integration_type": "REST",
         "request_type": "POST", "description": "imported", "auth_type": "bearer", "auth_value": value}
    ]}})
}

/// Start an import job through the API and wait (polling) until it has finished: the job.
async fn import_job(d: &Daemon, doc: &Value) -> Value {
    let http = reqwest::Client::new();
    let r = http
        .post(d.url("/api/v1/environments/dev/import"))
        .bearer_auth(OPERATOR)
        .json(&json!({"document": doc}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let id = r.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let j: Value = http
            .get(d.url(&format!("/api/v1/jobs/{id}")))
            .bearer_auth(VIEWER)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !["queued", "running"].contains(&j["state"].as_str().unwrap_or("")) {
            return j;
        }
        assert!(Instant::now() < deadline, "job {id} never finished: {j}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every link, button, summary and input of the page can take the keyboard's focus.
async fn keyboard_reachable(b: &Browser) {
    let unreachable = b
        .client
        .execute(
            "return Array.from(document.querySelectorAll('a[href], button, summary, input, select'))
               .filter(e => e.type !== 'hidden')
               .filter(e => { e.focus(); return document.activeElement !== e; })
               .map(e => e.outerHTML.slice(0, 80));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(unreachable, json!([]), "not reachable by keyboard");
    let nav = b.text("nav").await;
    assert!(nav.contains("Jobs") && nav.contains("Backups"), "{nav}");
}

#[tokio::test(flavor = "multi_thread")]
async fn backups_list_their_commits_and_diff_against_live_and_jobs_show_the_apis_counts() {
    // A backup every 2 s: the gateway's own limiter is off for this.
    let gw = Gateway::start_with(&[("RATE_LIMITING_ENABLED", "false")]);
    let root = gw.dir.path();
    gw.post(
        "/v1/tools",
        json!({"tool": {"name": "shared-api", "url": "https://shared.example.com/v1",
            "integration_type": "REST", "request_type": "GET", "description": "live"}}),
    )
    .await;
    let dev = root.join("envs/dev");
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::write(dev.join("mcp-gitops.yaml"), ENV_CONFIG).unwrap();
    std::fs::write(
        dev.join("tools.yaml"),
        tool_doc("declared-api", "v1", "GET"),
    )
    .unwrap();
    let remote = bare(root, "backups.git");
    let config = root.join("daemon.yaml");
    std::fs::write(
        &config,
        "listen: 127.0.0.1:0\nstate_dir: state\nui: {}\napi:\n  open_status: true\n  tokens:\n    - {name: ops, role: operator, token: {env: UI_OPERATOR_TOKEN}}\n    - {name: auditor, role: viewer, token: {env: UI_VIEWER_TOKEN}}\nenvironments:\n  - name: dev\n    source: {dir: envs/dev}\n    interval: 1h\n    mode: observe\n    backup: {schedule: '*/2 * * * * *', path: backups/dev.json, git: {url: backups.git}}\n",
    )
    .unwrap();
    let d = Daemon::start_with(
        &gw,
        &config,
        &[("UI_OPERATOR_TOKEN", OPERATOR), ("UI_VIEWER_TOKEN", VIEWER)],
    );
    d.wait_ready().await;
    let s = d
        .wait_status("dev", "a first backup", |s| {
            s["backup"]["last"]["outcome"] == "committed"
        })
        .await;
    let first = s["backup"]["last"]["commit"].as_str().unwrap().to_string();
    assert!(remote.exists());

    let base = d.url("");
    let b = Browser::start().await;
    let mut seen = Seen::default();
    log_in(&b, &base, VIEWER).await;

    // The overview's last backup leads to the backups page, which lists the commit with its
    // subject; its diff against live: none.
    b.goto(&format!("{base}/ui")).await;
    click(&b, "tr[data-env=dev] a[href='/ui/backups']").await;
    b.wait_url("/ui/backups").await;
    let row = b.text(&format!("tr[data-commit='{first}']")).await;
    assert!(
        row.contains(&first[..12]) && row.contains("backup dev"),
        "{row}"
    );
    seen.add(&b).await;
    keyboard_reachable(&b).await;
    b.screenshots("backups", None).await;
    click(&b, &format!("tr[data-commit='{first}'] a")).await;
    b.wait_url(&format!("/ui/env/dev/backups/{first}")).await;
    assert!(
        b.text("#diff-state").await.contains("matches"),
        "{}",
        b.source().await
    );
    assert!(b.text("#summary").await.contains("~0 update"));
    assert!(!b.source().await.contains("Apply this plan"));
    seen.add(&b).await;

    // Changed by hand: the snapshot's diff shows the update with the field.
    set_description(&gw, "shared-api", "by hand").await;
    b.goto(&format!("{base}/ui/env/dev/backups/{first}")).await;
    assert!(b.text("#summary").await.contains("~1 update"));
    click(&b, "details[data-key=shared-api] summary").await;
    let diff = b.text("details[data-key=shared-api] table.diff").await;
    assert!(
        diff.contains("description") && diff.contains("\"by hand\"") && diff.contains("\"live\""),
        "{diff}"
    );
    seen.add(&b).await;
    keyboard_reachable(&b).await;
    b.screenshots("backup-diff", None).await;
    // An unknown commit is a 404 page.
    b.goto(&format!(
        "{base}/ui/env/dev/backups/0000000000000000000000000000000000000000"
    ))
    .await;
    assert!(b.text("h1").await.contains("No such snapshot"));

    // An import job through the API: listed, and its page's counts are the API's.
    let job = import_job(&d, &canary_doc(gw.secret())).await;
    assert_eq!(job["state"], "completed", "{job}");
    let id = job["id"].as_str().unwrap();
    b.goto(&format!("{base}/ui/jobs")).await;
    let row = b.text(&format!("tr[data-job='{id}']")).await;
    assert!(
        row.contains("completed") && row.contains("environment dev"),
        "{row}"
    );
    for k in [
        "total",
        "processed",
        "created",
        "updated",
        "skipped",
        "failed",
    ] {
        let cell = b.text(&format!("tr[data-job='{id}'] td.count-{k}")).await;
        assert_eq!(cell, job["counts"][k].to_string(), "{k} in {row}");
    }
    seen.add(&b).await;
    keyboard_reachable(&b).await;
    b.screenshots("jobs", None).await;
    click(&b, &format!("tr[data-job='{id}'] a")).await;
    b.wait_url(&format!("/ui/jobs/{id}")).await;
    assert_eq!(b.text("#job-state").await, "completed");
    for k in [
        "total",
        "processed",
        "created",
        "updated",
        "skipped",
        "failed",
    ] {
        assert_eq!(
            b.text(&format!("#count-{k}")).await,
            job["counts"][k].to_string(),
            "{k}"
        );
    }
    assert_eq!(job["counts"]["created"], 1, "{job}");
    assert!(b.text("#results").await.contains("imported-api"));
    b.find("#report").await;
    seen.add(&b).await;
    keyboard_reachable(&b).await;
    b.screenshots("job", None).await;
    b.goto(&format!("{base}/ui/jobs/not-a-job")).await;
    assert!(b.text("h1").await.contains("No such job"));

    // No page broke its Content-Security-Policy, and no page holds a credential.
    let console = b.console().await;
    assert!(
        !console
            .iter()
            .any(|m| m.contains("Content Security Policy")),
        "{console:#?}"
    );
    for (url, html) in &seen.0 {
        for secret in [CANARY, OPERATOR, VIEWER, gw.secret()] {
            assert!(!html.contains(secret), "{url} shows a secret");
        }
        assert!(html.len() < 200 * 1024, "{url}: {} bytes", html.len());
    }
    assert!(!d.text().contains(CANARY));
}

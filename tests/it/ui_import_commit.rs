//! The import wizard for an `auto` environment with a Git source, in real headless Chromium
//! against `mcp-gitops run`, a real gateway and a local bare repository: the preview says the
//! import becomes a commit, the last step's button reads "Commit", the summary shows the commit
//! (sha, branch) that is now the branch's head and says the daemon applies it, and the daemon
//! does: the gateway then holds the entity.

use std::time::{Duration, Instant};

use crate::common::Gateway;
use crate::common::browser::{Browser, click, log_in};
use crate::common::git::git;
use crate::daemon::{DESIRED, Daemon, push, repository, tool_doc, write_config};
use serde_json::{Value, json};

const OPERATOR: &str = "ui-import-commit-operator-token-0123";

async fn has_tool(gw: &Gateway, name: &str) -> bool {
    gw.get("/v1/tools?limit=0")
        .await
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == name)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wizard_commits_to_the_git_source_and_the_daemon_applies_it() {
    let gw = Gateway::start();
    let root = gw.dir.path();
    let (remote, work) = repository(root);
    push(
        &work,
        &[
            ("envs/prod/mcp-gitops.yaml", DESIRED.to_string()),
            ("envs/prod/tools.yaml", tool_doc("existing", "v1", "GET")),
        ],
        "prod",
    );
    let config = write_config(
        root,
        "listen: 127.0.0.1:0\nstate_dir: state\nui: {}\napi:\n  open_status: true\n  tokens:\n    - {name: ops, role: operator, token: {env: UI_OPERATOR_TOKEN}}\nenvironments:\n  - {name: prod, source: {git: {url: config.git, path: envs/prod}}, interval: 1h, @GATEWAY}\n",
    );
    let d = Daemon::start_with(&gw, &config, &[("UI_OPERATOR_TOKEN", OPERATOR)]);
    d.wait_ready().await;
    let before = git(&remote, &["rev-parse", "main"]).trim().to_string();
    let doc: Value = json!({"version": "2025-03-26", "entities": {"tools": [
        {"name": "wizard-api", "url": "https://wizard.example.com/v1", "integration_type": "REST",
         "request_type": "GET", "description": "from the wizard"}]}});
    let path = root.join("wizard.json");
    std::fs::write(&path, doc.to_string()).unwrap();

    let base = d.url("");
    let b = Browser::start().await;
    log_in(&b, &base, OPERATOR).await;
    b.goto(&format!("{base}/ui/env/prod/import")).await;
    b.find("#file")
        .await
        .send_keys(&path.display().to_string())
        .await
        .unwrap();
    click(&b, "#preview").await;

    // The preview says what the last step does; its button reads Commit.
    let note = b.text("#import-commits").await;
    assert!(
        note.contains("becomes a commit") && note.contains("envs/prod") && note.contains("main"),
        "{note}"
    );
    assert_eq!(b.text("#import").await, "Commit");
    assert!(
        !has_tool(&gw, "wizard-api").await,
        "a preview writes nothing"
    );
    b.screenshots("import-commit-preview", None).await;
    click(&b, "#import").await;

    // The summary: the commit, its branch, and that the daemon applies it.
    let sha_shown = b.text("#commit-sha").await;
    let head = git(&remote, &["rev-parse", "main"]).trim().to_string();
    assert_ne!(head, before, "a commit was pushed");
    assert!(
        head.starts_with(&sha_shown) && sha_shown.len() == 12,
        "{sha_shown} {head}"
    );
    assert_eq!(b.text("#commit-branch").await, "main");
    assert!(
        b.text("#commit-next")
            .await
            .contains("The daemon applies it"),
        "{}",
        b.text("#summary").await
    );
    let subject = git(&remote, &["log", "-1", "--format=%s", "main"]);
    assert_eq!(subject.trim(), "import: +1 tool (wizard-api)");
    assert!(
        git(&remote, &["show", "main:envs/prod/promoted.yaml"]).contains("wizard-api"),
        "the entity is in the environment's path"
    );
    b.screenshots("import-commit-done", None).await;

    // The daemon applies the commit (the wizard itself wrote nothing to the gateway).
    let deadline = Instant::now() + Duration::from_secs(90);
    while !has_tool(&gw, "wizard-api").await {
        assert!(Instant::now() < deadline, "never applied:\n{}", d.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d.wait_status("prod", "the commit in force", |s| {
        s["revision"] == head.as_str()
    })
    .await;
    drop(b);
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
}

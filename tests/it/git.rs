//! Backups to Git, restore from Git and promote: real gateways, real repositories (bare ones
//! in temp directories, the `git` CLI playing the other people), and a real sshd on loopback.

/// SSH and HTTPS remotes.
#[path = "git/transports.rs"]
mod transports;

use std::path::Path;
use std::sync::Arc;

use crate::common::{ADMIN, Gateway};
use mcp_gitops::core::secrets::{Credentials, Secret};
use mcp_gitops::core::select::Selection;
use mcp_gitops::engine::backup::{self, BackupTarget};
use mcp_gitops::engine::export::ExportOptions;
use mcp_gitops::engine::git::{GitAuth, PublishOptions, Remote};
use serde_json::{Value, json};

use crate::common::git::{bare, git, stderr, stdout};

fn subjects(repo: &Path, rev: &str) -> Vec<String> {
    git(repo, &["log", "--format=%s", rev])
        .lines()
        .map(str::to_string)
        .collect()
}

fn show(repo: &Path, spec: &str) -> String {
    git(repo, &["show", spec])
}

fn entities(doc_text: &str) -> Value {
    serde_json::from_str::<Value>(doc_text).unwrap()["entities"].clone()
}

fn bearer(secret: &str, token: &str) -> String {
    Secret::new(secret).encrypt(&Credentials::from_pairs([(
        "Authorization".to_string(),
        format!("Bearer {token}"),
    )]))
}

fn import(gw: &Gateway, doc: &Value) {
    let file = gw.dir.path().join("doc.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = gw
        .cmd()
        .args(["import", file.to_str().unwrap(), "--user", ADMIN])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

async fn tool_count(gw: &Gateway) -> usize {
    gw.get("/v1/tools?limit=0").await.as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread")]
async fn backups_commit_what_changed_and_restore_brings_back_an_older_commit() {
    let gw = Gateway::start();
    let root = gw.dir.path();
    let remote = bare(root, "remote.git");
    let cache = root.join("cache");
    let keep = json!({"name": "keep", "url": "https://keep.example.com/v1", "request_type": "GET",
                      "auth_type": "bearer", "auth_value": bearer(gw.secret(), "CANARY-keep")});
    let server = |d: &str| json!({"name": "ai-tools", "tool_ids": ["keep"], "description": d});
    import(
        &gw,
        &json!({"version": "2025-03-26", "entities": {
            "tools": [keep], "servers": [server("v1")],
            "prompts": [{"name": "old", "template": "Old {{ x }}"},
                        {"name": "stays", "template": "Stay {{ y }}"}]}}),
    );
    let backup = || {
        gw.cmd()
            .args(["backup", "--once", "--user", ADMIN, "--branch", "main"])
            .args([
                "--path",
                "backups/gw.json",
                "--repo",
                remote.to_str().unwrap(),
            ])
            .arg("--cache-dir")
            .arg(&cache)
            .output()
            .unwrap()
    };

    // The first backup creates the branch.
    let out = backup();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("Committed ")
            && stdout(&out)
                .contains("backup: +1 tool (keep), +1 server (ai-tools), +2 prompts (old, stays)"),
        "{}",
        stdout(&out)
    );
    let first = git(&remote, &["rev-parse", "main"]).trim().to_string();
    assert_eq!(
        git(&remote, &["log", "-1", "--format=%an <%ae>", "main"]).trim(),
        "mcp-gitops <mcp-gitops@localhost>"
    );

    // Two tools added, the server changed, a prompt deleted: the message says exactly that.
    import(
        &gw,
        &json!({"version": "2025-03-26", "entities": {
            "tools": [{"name": "a", "url": "https://a.example.com/v1", "request_type": "GET"},
                      {"name": "b", "url": "https://b.example.com/v1", "request_type": "POST"}],
            "servers": [server("v2")]}}),
    );
    let prompts = gw.get("/v1/prompts?limit=0").await;
    let old = prompts
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "old")
        .unwrap();
    gw.client()
        .delete(
            &format!("/v1/prompts/{}", old["id"].as_str().unwrap()),
            &mcp_gitops::gateway::Action::new("delete prompt"),
        )
        .await
        .unwrap();
    let out = backup();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        subjects(&remote, "main")[0],
        "backup: +2 tools (a, b), ~1 server (ai-tools), -1 prompt (old)"
    );
    let body = git(&remote, &["log", "-1", "--format=%b", "main"]);
    assert!(
        body.contains("+ tool a\n+ tool b\n~ server ai-tools: description\n- prompt old\n"),
        "{body}"
    );

    // Nothing changed (only exported_at would): no commit.
    let out = backup();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("No changes since "),
        "{}",
        stdout(&out)
    );
    assert_eq!(subjects(&remote, "main").len(), 2);
    let history = git(&remote, &["log", "-p", "main"]);
    assert!(!history.contains("CANARY"), "plaintext credential in Git");

    // Restore the first commit into a fresh gateway: exactly that commit's entities.
    let fresh = Gateway::start();
    let restore = |rev: &str, path: &str, repo: &str| {
        fresh
            .cmd()
            .args(["restore", "--user", ADMIN, "--repo", repo, "--rev", rev])
            .args(["--path", path, "--cache-dir"])
            .arg(&cache)
            .output()
            .unwrap()
    };
    let repo = remote.to_str().unwrap();
    for (rev, path, repo, code, message) in [
        (
            "main",
            "backups/nope.json",
            repo,
            2,
            "no 'backups/nope.json' there",
        ),
        (
            "deadbeef",
            "backups/gw.json",
            repo,
            2,
            "unknown revision 'deadbeef'",
        ),
        (
            "no-such-branch",
            "backups/gw.json",
            repo,
            2,
            "unknown revision",
        ),
        (
            "main",
            "backups/gw.json",
            "/nonexistent/repo.git",
            4,
            "cannot reach Git repository /nonexistent/repo.git",
        ),
    ] {
        let out = restore(rev, path, repo);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{rev} {path}: {}",
            stderr(&out)
        );
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: ") && err.contains(message), "{err}");
    }
    assert_eq!(
        tool_count(&fresh).await,
        0,
        "a failed restore wrote nothing"
    );

    let out = restore(&first[..10], "backups/gw.json", repo);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).ends_with("Imported: 1 tool, 1 server, 2 prompts\n"),
        "{}",
        stdout(&out)
    );
    let out = fresh
        .cmd()
        .args([
            "export",
            "--user",
            ADMIN,
            "--include-inactive",
            "-o",
            "now.json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let now = std::fs::read_to_string(fresh.dir.path().join("now.json")).unwrap();
    assert_eq!(
        entities(&now),
        entities(&show(&remote, &format!("{first}:backups/gw.json")))
    );

    // A backup to a repository that cannot be reached: exit 4, one line.
    let out = gw
        .cmd()
        .args(["backup", "--once", "--user", ADMIN, "--path", "b.json"])
        .args(["--repo", "/nonexistent/repo.git", "--cache-dir"])
        .arg(&cache)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_concurrent_push_is_never_overwritten_our_backup_goes_on_top() {
    let gw = Gateway::start();
    let root = gw.dir.path().to_path_buf();
    let remote = bare(&root, "remote.git");
    import(
        &gw,
        &json!({"version": "2025-03-26", "entities": {
            "tools": [{"name": "first", "url": "https://f.example.com/v1", "request_type": "GET"}]}}),
    );
    let client = gw.client();
    let export = ExportOptions {
        selection: Selection {
            include_inactive: true,
            dependencies: true,
            ..Selection::default()
        },
        gateway_secret: Secret::new(gw.secret()),
        document_secret: None,
        exported_by: Some(ADMIN.into()),
        now: "2026-11-22T10:00:00.000000Z".into(),
        cache: None,
    };
    let target = |hook: Option<mcp_gitops::engine::git::BeforePush>| BackupTarget {
        remote: Remote::new(remote.to_str().unwrap(), GitAuth::default()).unwrap(),
        branch: "main".into(),
        path: "backups/gw.json".into(),
        cache_dir: root.join("cache"),
        message_prefix: "backup".into(),
        format: None,
        publish: PublishOptions {
            max_attempts: 5,
            before_push: hook,
        },
    };
    let out = backup::once(&client, &export, &target(None)).await.unwrap();
    assert!(out.commit.is_some() && out.attempts == 1);

    // Somebody else pushes another file just before our push.
    let other = root.join("other");
    let (r, o) = (remote.clone(), other.clone());
    let hook: mcp_gitops::engine::git::BeforePush = Arc::new(move |attempt| {
        if attempt == 1 {
            git(
                o.parent().unwrap(),
                &["clone", "-q", r.to_str().unwrap(), "other"],
            );
            std::fs::write(o.join("README.md"), "Backups of the gateway\n").unwrap();
            git(&o, &["add", "README.md"]);
            git(&o, &["commit", "-q", "-m", "docs: readme"]);
            git(&o, &["push", "-q", "origin", "main"]);
        }
    });
    import(
        &gw,
        &json!({"version": "2025-03-26", "entities": {
            "tools": [{"name": "second", "url": "https://s.example.com/v1", "request_type": "GET"}]}}),
    );
    let out = backup::once(&client, &export, &target(Some(hook)))
        .await
        .unwrap();
    assert_eq!(
        out.attempts, 2,
        "rejected once, then pushed on the new head"
    );
    assert_eq!(
        subjects(&remote, "main"),
        vec![
            "backup: +1 tool (second)",
            "docs: readme",
            "backup: +1 tool (first)"
        ]
    );
    assert_eq!(show(&remote, "main:README.md"), "Backups of the gateway\n");
    assert!(show(&remote, "main:backups/gw.json").contains("\"second\""));

    // Somebody else changes our file just before our push: our content wins on top of theirs,
    // and the message describes the change from their version.
    let o = other.clone();
    let hook: mcp_gitops::engine::git::BeforePush = Arc::new(move |attempt| {
        if attempt == 1 {
            git(&o, &["pull", "-q", "origin", "main"]);
            let path = o.join("backups/gw.json");
            let mut doc: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            doc["entities"]["tools"].as_array_mut().unwrap().push(
                json!({"name": "intruder", "url": "https://i.example.com", "integration_type": "REST"}),
            );
            std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
            git(&o, &["commit", "-q", "-am", "hand edit"]);
            git(&o, &["push", "-q", "origin", "main"]);
        }
    });
    import(
        &gw,
        &json!({"version": "2025-03-26", "entities": {
            "tools": [{"name": "third", "url": "https://t.example.com/v1", "request_type": "GET"}]}}),
    );
    let out = backup::once(&client, &export, &target(Some(hook)))
        .await
        .unwrap();
    assert_eq!(out.attempts, 2);
    let log = subjects(&remote, "main");
    assert_eq!(
        log[..2],
        [
            "backup: +1 tool (third), -1 tool (intruder)".to_string(),
            "hand edit".to_string()
        ]
    );
    let head = show(&remote, "main:backups/gw.json");
    assert!(head.contains("\"third\"") && !head.contains("intruder"));
}

const ENV: &str =
    "gateway: ${GW_URL}\nuser: admin@example.com\njwt_secret: {env: JWT_SECRET_KEY}\n";

#[tokio::test(flavor = "multi_thread")]
async fn promote_reencrypts_for_the_target_commits_on_a_branch_and_restores() {
    let wc = tempfile::tempdir().unwrap();
    let w = wc.path();
    git(w, &["init", "-q", "-b", "main"]);
    let (staging, prod) = (w.join("envs/staging"), w.join("envs/prod"));
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::create_dir_all(&prod).unwrap();
    std::fs::write(
        staging.join("mcp-gitops.yaml"),
        format!("{ENV}secret: {{env: STAGING_KEY}}\n"),
    )
    .unwrap();
    std::fs::write(
        prod.join("mcp-gitops.yaml"),
        format!("{ENV}secret: {{env: PROD_KEY}}\n"),
    )
    .unwrap();
    let doc = |v: Value| {
        serde_json::to_string_pretty(&json!({"version": "2025-03-26", "entities": v})).unwrap()
    };
    std::fs::write(
        staging.join("tools.json"),
        doc(json!({
            "tools": [
                {"name": "weather", "url": "https://${WEATHER_HOST}/v2", "request_type": "GET",
                 "auth_type": "bearer", "auth_value": bearer("key-staging", "CANARY-weather")},
                {"name": "translate", "url": "https://tr.example.com/v1", "request_type": "POST"},
                {"name": "staging-only", "url": "https://s.example.com/v1", "request_type": "GET"}],
            "servers": [{"name": "ai-tools", "tool_ids": ["weather", "translate"]}]})),
    )
    .unwrap();
    std::fs::write(
        prod.join("tools.json"),
        doc(json!({
            "tools": [
                {"name": "weather", "url": "https://${WEATHER_HOST}/v1", "request_type": "GET",
                 "auth_type": "bearer", "auth_value": bearer("key-prod", "CANARY-weather")},
                {"name": "prod-only", "url": "https://p.example.com/v1", "request_type": "GET"}]})),
    )
    .unwrap();
    git(w, &["add", "."]);
    git(w, &["commit", "-q", "-m", "environments"]);
    let promote = |extra: &[&str]| {
        let mut c = assert_cmd::Command::cargo_bin("mcp-gitops").unwrap();
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("STAGING_KEY", "key-staging")
            .env("PROD_KEY", "key-prod")
            .current_dir(w)
            .args(["promote", "--from", "envs/staging", "--to", "envs/prod"])
            .args(["--include", "servers:ai-*"])
            .args(extra)
            .output()
            .unwrap()
    };

    let out = promote(&["--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Would promote"), "{}", stdout(&out));
    assert_eq!(
        git(w, &["status", "--porcelain"]),
        "",
        "a dry run wrote nothing"
    );

    let out = promote(&["--branch", "promote/ai-tools"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "Promoted envs/staging -> envs/prod: +1 tool (translate), +1 server (ai-tools), ~1 tool (weather)"
        ),
        "{text}"
    );
    assert_eq!(
        git(w, &["branch", "--show-current"]).trim(),
        "promote/ai-tools"
    );
    assert_eq!(
        subjects(w, "HEAD")[0],
        "promote envs/staging -> envs/prod: +1 tool (translate), +1 server (ai-tools), ~1 tool (weather)"
    );
    assert_eq!(subjects(w, "main").len(), 1, "main is untouched");
    assert_eq!(git(w, &["status", "--porcelain"]), "");
    // weather is updated where prod had it; the new entities go to promoted.yaml.
    let tools: Value =
        serde_json::from_str(&std::fs::read_to_string(prod.join("tools.json")).unwrap()).unwrap();
    let weather = &tools["entities"]["tools"][0];
    assert_eq!(
        weather["url"], "https://${WEATHER_HOST}/v2",
        "${{VAR}} kept"
    );
    assert_eq!(tools["entities"]["tools"][1]["name"], "prod-only");
    let promoted = std::fs::read_to_string(prod.join("promoted.yaml")).unwrap();
    assert!(promoted.contains("translate") && promoted.contains("ai-tools"));
    assert!(!promoted.contains("staging-only"));
    let history = git(w, &["log", "-p", "--all"]);
    assert!(!history.contains("CANARY") && !text.contains("CANARY"));

    // The target key decrypts what was written.
    let value = weather["auth_value"].as_str().unwrap();
    let creds = Secret::new("key-prod").decrypt(value).unwrap();
    assert_eq!(creds.get("authorization"), Some("Bearer CANARY-weather"));
    assert!(Secret::new("key-staging").decrypt(value).is_err());

    // Again: nothing to promote, no commit.
    let head = git(w, &["rev-parse", "HEAD"]);
    let out = promote(&["--branch", "promote/ai-tools"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("Nothing to promote"),
        "{}",
        stdout(&out)
    );
    assert_eq!(git(w, &["rev-parse", "HEAD"]), head);

    // A wrong target key is refused before anything is written.
    std::fs::write(w.join("envs/note.txt"), "x").unwrap();
    let out = promote(&["--rekey-secret", "wrong"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("envs/prod: the credential of tool 'weather'"),
        "{}",
        stderr(&out)
    );
    // Uncommitted changes in the target are refused.
    std::fs::write(prod.join("extra.yaml"), "version: '1'\n").unwrap();
    let out = promote(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("uncommitted changes (envs/prod/extra.yaml)"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(prod.join("extra.yaml")).unwrap();

    // Restore the promoted environment directory from the branch into a gateway whose key is
    // the target's: its own decode_auth reads the credential.
    let gw = Gateway::start_with(&[("AUTH_ENCRYPTION_SECRET", "key-prod")]);
    let out = gw
        .cmd()
        .env("WEATHER_HOST", "weather.example.com")
        .env("GW_URL", &gw.url)
        .args(["restore", "--user", ADMIN, "--secret", "key-prod"])
        .args([
            "--repo",
            w.to_str().unwrap(),
            "--rev",
            "promote/ai-tools",
            "--path",
            "envs/prod",
        ])
        .arg("--cache-dir")
        .arg(gw.dir.path().join("cache"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).ends_with("Imported: 3 tools, 1 server\n"),
        "{}",
        stdout(&out)
    );
    let tools = gw.get("/v1/tools?limit=0").await;
    let weather = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "weather")
        .unwrap();
    assert_eq!(weather["url"], "https://weather.example.com/v2");
    let sel = gw
        .post("/v1/export/selective", json!({"tools": [weather["id"]]}))
        .await;
    let stored = sel["entities"]["tools"][0]["auth_value"].as_str().unwrap();
    assert_eq!(
        gw.decode_auth(&[stored], None),
        vec![json!({"Authorization": "Bearer CANARY-weather"})]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_format_against_the_extension_is_refused_and_restore_reads_by_content() {
    let gw = Gateway::start();
    let root = gw.dir.path();
    let remote = bare(root, "remote.git");
    let cache = root.join("cache");

    // backup --format yaml onto a .json path: refused before anything is exported or pushed.
    let out = gw
        .cmd()
        .args(["backup", "--once", "--user", ADMIN, "--format", "yaml"])
        .args([
            "--path",
            "backups/gw.json",
            "--repo",
            remote.to_str().unwrap(),
        ])
        .arg("--cache-dir")
        .arg(&cache)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "error: --format yaml does not match --path backups/gw.json: give the path a .yaml or .yml extension, or leave --format out (the extension decides)\n"
    );
    assert!(
        git(&remote, &["branch", "--list"]).trim().is_empty(),
        "nothing pushed"
    );

    // A YAML document at a .json path (as an older mcp-gitops wrote it) restores.
    let work = root.join("work");
    git(root, &["clone", "-q", remote.to_str().unwrap(), "work"]);
    std::fs::create_dir(work.join("backups")).unwrap();
    std::fs::write(
        work.join("backups/gw.json"),
        "version: '2025-03-26'\nentities:\n  tools:\n    - name: from-yaml\n      url: https://y.example.com/v1\n      request_type: GET\n",
    )
    .unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "yaml backup"]);
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    let out = gw
        .cmd()
        .args(["restore", "--user", ADMIN, "--rev", "main"])
        .args([
            "--path",
            "backups/gw.json",
            "--repo",
            remote.to_str().unwrap(),
        ])
        .arg("--cache-dir")
        .arg(&cache)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let tools = gw.get("/v1/tools?limit=0").await;
    let names: Vec<&str> = tools
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["from-yaml"]);
}

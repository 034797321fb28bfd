//! The content cache against a real gateway: content is read again exactly when the gateway
//! reports a new version/update time, never stale, bypassed by `--no-cache`, kept private,
//! and a corrupt cache file only warns.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::{self, Gateway};
use mcp_gitops::core::kind::Kind;
use mcp_gitops::core::secrets::Secret;
use mcp_gitops::core::select::Selection;
use mcp_gitops::engine::content_cache::{ContentCache, FILE_NAME};
use mcp_gitops::engine::export::{ExportOptions, export};
use mcp_gitops::gateway::Action;
use serde_json::{Value, json};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

async fn resource(gw: &Gateway, uri: &str, content: &str) -> String {
    let v = gw
        .post(
            "/v1/resources",
            json!({"resource": {"uri": uri, "name": uri.replace("://", "-"), "content": content},
                   "visibility": "public"}),
        )
        .await;
    v["id"].as_str().unwrap().to_string()
}

async fn set_content(gw: &Gateway, id: &str, content: &str) -> Value {
    gw.client()
        .put(
            &format!("/v1/resources/{id}"),
            &json!({"content": content}),
            &Action::new("update resource"),
        )
        .await
        .unwrap()
}

fn contents(doc: &Value) -> Vec<(String, String)> {
    doc["entities"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["uri"].as_str().unwrap().to_string(),
                r["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn options(gw: &Gateway, cache: &std::sync::Arc<ContentCache>) -> ExportOptions {
    ExportOptions {
        selection: Selection::default(),
        gateway_secret: Secret::new(gw.secret()),
        document_secret: None,
        exported_by: None,
        now: "2026-12-02T00:00:00Z".into(),
        cache: Some(cache.clone()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn export_and_plan_read_only_changed_content_and_are_never_stale() {
    let gw = Gateway::start();
    let a = resource(&gw, "docs://a", "alpha").await;
    resource(&gw, "docs://b", "beta").await;
    resource(&gw, "docs://c", "gamma").await;

    // A content update moves both the version and the update time on.
    let before: Vec<Value> = serde_json::from_value(gw.get("/v1/resources?limit=0").await).unwrap();
    let old = before.iter().find(|r| r["id"] == a.as_str()).unwrap();
    let updated = set_content(&gw, &a, "alpha-2").await;
    assert_ne!(updated["version"], old["version"]);
    assert_ne!(updated["updatedAt"], old["updatedAt"]);
    set_content(&gw, &a, "alpha").await;

    // Engine: the second export reads no content, the third only the changed resource.
    let dir = tempfile::tempdir().unwrap();
    let cache = std::sync::Arc::new(ContentCache::open(dir.path()).0);
    let client = gw.client();
    let reads = || client.stats().reads();
    let first = export(&client, &options(&gw, &cache)).await.unwrap();
    let r1 = reads();
    let second = export(&client, &options(&gw, &cache)).await.unwrap();
    let r2 = reads() - r1;
    assert_eq!(r1 - r2, 3, "three content reads saved ({r1} then {r2})");
    assert_eq!(
        serde_json::to_value(&first.document).unwrap()["entities"]["resources"],
        serde_json::to_value(&second.document).unwrap()["entities"]["resources"]
    );
    set_content(&gw, &a, "alpha-3").await;
    let before = reads();
    let third = export(&client, &options(&gw, &cache)).await.unwrap();
    assert_eq!(reads() - before, r2 + 1, "only the changed content is read");
    let doc = serde_json::to_value(&third.document).unwrap();
    assert!(contents(&doc).contains(&("docs://a".into(), "alpha-3".into())));

    // CLI: the user's cache directory, private; a change shows in the next export.
    let xdg = gw.dir.path().join("xdg");
    let run = |args: &[&str]| {
        gw.cmd()
            .env("XDG_CACHE_HOME", &xdg)
            .args(args)
            .output()
            .unwrap()
    };
    let export_cli = |extra: &[&str]| {
        let mut args = vec!["export", "--user", common::ADMIN, "-o", "out.json"];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        (
            contents(&common::read_json(&gw.dir.path().join("out.json"))),
            text(&out.stderr),
        )
    };
    let (c, _) = export_cli(&[]);
    assert!(c.contains(&("docs://a".into(), "alpha-3".into())));
    let cache_dir = xdg.join("mcp-gitops");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache_dir), 0o700);
    assert_eq!(mode(&cache_dir.join(FILE_NAME)), 0o600);
    let file = std::fs::read_to_string(cache_dir.join(FILE_NAME)).unwrap();
    assert!(file.contains("alpha-3"));
    assert!(!file.contains(gw.secret()) && !file.contains(gw.jwt_secret()));
    set_content(&gw, &a, "alpha-4").await;
    let (c, _) = export_cli(&[]);
    assert!(c.contains(&("docs://a".into(), "alpha-4".into())), "{c:?}");

    // The cache is what answers: a planted entry at the live version is used, and
    // --no-cache reads past it.
    let planted = file_with(&cache_dir, &gw.url, &a, "planted");
    std::fs::write(cache_dir.join(FILE_NAME), planted).unwrap();
    let (c, _) = export_cli(&[]);
    assert!(c.contains(&("docs://a".into(), "planted".into())), "{c:?}");
    let (c, _) = export_cli(&["--no-cache"]);
    assert!(c.contains(&("docs://a".into(), "alpha-4".into())), "{c:?}");

    // A corrupt cache file is ignored with a warning (untouched under --no-cache), then
    // rebuilt.
    std::fs::write(cache_dir.join(FILE_NAME), b"{broken").unwrap();
    let (c, warn) = export_cli(&["--no-cache"]);
    assert!(!warn.contains("content cache"), "{warn}");
    assert_eq!(
        std::fs::read(cache_dir.join(FILE_NAME)).unwrap(),
        b"{broken"
    );
    assert!(c.contains(&("docs://a".into(), "alpha-4".into())));
    let (c, warn) = export_cli(&[]);
    assert!(warn.contains("ignoring the content cache"), "{warn}");
    assert!(c.contains(&("docs://a".into(), "alpha-4".into())));
    let file = std::fs::read_to_string(cache_dir.join(FILE_NAME)).unwrap();
    assert!(file.contains("alpha-4"), "{file}");

    // Plan of the export as an environment (an adopted gateway): nothing, then the change
    // made through the gateway's API shows as drift although the cache knew the old content.
    let env = gw.dir.path().join("envs/adopted");
    std::fs::create_dir_all(&env).unwrap();
    std::fs::write(
        env.join("mcp-gitops.yaml"),
        "gateway: ${GW_URL}\nuser: admin@example.com\njwt_secret: {env: JWT_SECRET_KEY}\nsecret: {env: AUTH_ENCRYPTION_SECRET}\n",
    )
    .unwrap();
    std::fs::copy(gw.dir.path().join("out.json"), env.join("export.json")).unwrap();
    let plan = || {
        let out = gw
            .cmd()
            .env("XDG_CACHE_HOME", &xdg)
            .env("GW_URL", &gw.url)
            .args(["plan", "--detailed-exitcode"])
            .arg(&env)
            .output()
            .unwrap();
        (out.status.code(), text(&out.stdout))
    };
    assert_eq!(plan().0, Some(0), "{}", plan().1);
    // A no-op apply reads the lists only; without the cache, every content as well.
    let requests = |extra: &[&str]| {
        let out = gw
            .cmd()
            .env("XDG_CACHE_HOME", &xdg)
            .env("GW_URL", &gw.url)
            .args(extra)
            .args(["apply", "-o", "json"])
            .arg(&env)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["requests"]["writes"], 0, "{v}");
        v["requests"]["reads"].as_u64().unwrap()
    };
    let (cached, uncached) = (requests(&[]), requests(&["--no-cache"]));
    assert_eq!(uncached - cached, 3, "{uncached} vs {cached}");
    assert_eq!(requests(&[]), cached);
    set_content(&gw, &a, "changed-behind-our-back").await;
    let (code, out) = plan();
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("~ update resource docs://a"), "{out}");
}

/// The cache file with one entry for `id` at the version and update time the gateway
/// reports now, holding `content`.
fn file_with(cache_dir: &Path, url: &str, id: &str, content: &str) -> Vec<u8> {
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(cache_dir.join(FILE_NAME)).unwrap()).unwrap();
    for e in v["entries"].as_array_mut().unwrap() {
        if e["id"] == id && e["kind"] == serde_json::to_value(Kind::Resource).unwrap() {
            assert_eq!(e["gateway"], url.trim_end_matches('/'));
            e["content"] = Value::from(content);
        }
    }
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_keeps_its_cache_in_its_state_directory() {
    let gw = Gateway::start();
    // Adopted: written through the API, not by mcp-gitops (no content marker).
    resource(&gw, "docs://kept", "kept content").await;
    let root = gw.dir.path();
    let env = root.join("envs/dev");
    std::fs::create_dir_all(&env).unwrap();
    std::fs::write(
        env.join("mcp-gitops.yaml"),
        "gateway: ${GW_URL}\nuser: admin@example.com\njwt_secret: {env: JWT_SECRET_KEY}\nsecret: {env: AUTH_ENCRYPTION_SECRET}\n",
    )
    .unwrap();
    std::fs::write(
        env.join("doc.yaml"),
        "version: '2025-03-26'\nentities:\n  resources:\n    - {name: docs-kept, uri: 'docs://kept', content: kept content}\n",
    )
    .unwrap();
    std::fs::write(
        root.join("daemon.yaml"),
        "listen: 127.0.0.1:0\nstate_dir: state\napi: {open_status: true, open_metrics: true}\nenvironments:\n  - {name: dev, source: {dir: envs/dev}, interval: 60s}\n",
    )
    .unwrap();
    let mut cmd = common::proc::Logged::command(&["run", "--config"]);
    cmd.arg(root.join("daemon.yaml"))
        .env("HOME", root)
        .env("GW_URL", &gw.url)
        .env("JWT_SECRET_KEY", gw.jwt_secret())
        .env("AUTH_ENCRYPTION_SECRET", gw.secret());
    let mut daemon = common::proc::Logged::spawn(cmd);
    daemon.wait_log(0, "env dev: in sync");
    let file = root.join("state").join(FILE_NAME);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("kept content")
    );
    // Not in the user's cache directory.
    assert!(!root.join(".cache/mcp-gitops").exists());
    daemon.terminate();
}

//! The import wizard in real headless Chromium against `mcp-gitops run` and a real gateway:
//! a file dropped on the drop zone (a real `drop` event carrying the file) with a conflict is
//! previewed, the conflict is seen, a strategy chosen, the import runs to the end of its
//! progress bar and its summary's counts are the gateway's; a file with problems picked
//! through the file input lists them by entity and pointer and offers no Import; a credential
//! canary is on no page and in no report; screenshots at desktop and phone size.

use crate::common::Gateway;
use crate::common::browser::{Browser, Seen, click, log_in};
use crate::daemon::{Daemon, ENV_CONFIG, tool_doc};
use serde_json::{Value, json};

const OPERATOR: &str = "ui-import-operator-token-0123456789";
const CANARY: &str = "ui-import-canary-bearer-4242";

/// The export document with `shared-api` (which exists live, differently) and `new-api`
/// (new, with an encrypted bearer token holding the canary).
fn conflicting(secret: &str) -> (Value, String) {
    let value = mcp_gitops::core::secrets::Secret::new(secret).encrypt(
        &mcp_gitops::core::secrets::Credentials::from_pairs([(
            "Authorization".to_string(),
            format!("Bearer {CANARY}"),
        )]),
    );
    let doc = json!({"version": "2025-03-26", "entities": {"tools": [
        {"name": "shared-api", "url": "https://shared.example.com/v1", "integration_type": "REST",
         "request_type": "GET", "description": "imported"},
        {"name": "new-api", "url": "https://new.example.com/v1", "integration_type": "REST",
         "request_type": "POST", "description": "new", "auth_type": "bearer", "auth_value": value}
    ]}});
    (doc, value)
}

/// Drop `text` as a file named `name` on the drop zone: the page's script fills the form.
async fn drop_file(b: &Browser, name: &str, text: &str) {
    b.client
        .execute(
            "const dt = new DataTransfer();
             dt.items.add(new File([arguments[1]], arguments[0], {type: 'application/json'}));
             document.getElementById('dropzone').dispatchEvent(
               new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));",
            vec![json!(name), json!(text)],
        )
        .await
        .unwrap();
}

async fn tools(gw: &Gateway) -> Vec<Value> {
    gw.get("/v1/tools?limit=0")
        .await
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn drop_a_file_see_its_conflict_choose_skip_import_and_the_summary_is_the_gateways() {
    let gw = Gateway::start();
    let root = gw.dir.path();
    gw.post(
        "/v1/tools",
        json!({"tool": {"name": "shared-api", "url": "https://shared.example.com/v1",
            "integration_type": "REST", "request_type": "GET", "description": "live"}}),
    )
    .await;
    let obs = root.join("envs/obs");
    std::fs::create_dir_all(&obs).unwrap();
    std::fs::write(obs.join("mcp-gitops.yaml"), ENV_CONFIG).unwrap();
    std::fs::write(obs.join("tools.yaml"), tool_doc("obs-own", "own", "GET")).unwrap();
    let config = root.join("daemon.yaml");
    std::fs::write(
        &config,
        "listen: 127.0.0.1:0\nstate_dir: state\nui: {}\napi:\n  tokens:\n    - {name: ops, role: operator, token: {env: UI_OPERATOR_TOKEN}}\nenvironments:\n  - {name: obs, source: {dir: envs/obs}, interval: 1h, mode: observe}\n",
    )
    .unwrap();
    let d = Daemon::start_with(&gw, &config, &[("UI_OPERATOR_TOKEN", OPERATOR)]);
    d.wait_ready().await;
    let base = d.url("");
    let before = tools(&gw).await.len();
    let b = Browser::start().await;
    let mut seen = Seen::default();
    log_in(&b, &base, OPERATOR).await;

    // The navigation leads to the wizard; a file dropped on the zone fills the form.
    click(&b, "nav a[href='/ui/import']").await;
    click(&b, "#import-targets a").await;
    b.wait_url("/ui/env/obs/import").await;
    let (doc, value) = conflicting(gw.secret());
    drop_file(&b, "conflict.json", &doc.to_string()).await;
    assert_eq!(b.text("#dropped").await, "Chosen: conflict.json");
    seen.add(&b).await;
    b.screenshots("import-upload", None).await;
    click(&b, "#preview").await;

    // The preview: counts by type, the conflict with its field, the credential only as present.
    let conflicts = b.text("#conflicts").await;
    assert!(
        conflicts.contains("shared-api") && conflicts.contains("differs in description"),
        "{conflicts}"
    );
    assert!(conflicts.contains(": update"), "{conflicts}");
    let counts = b.text("#counts tr[data-kind=tools]").await;
    assert!(counts.starts_with("tools 1 1 0"), "{counts}");
    assert!(b.text("#credentials").await.contains("tools new-api"));
    seen.add(&b).await;
    b.screenshots("import-preview", None).await;

    // Skip: the preview says what the conflict becomes, then the import runs to its end.
    click(&b, "#strategy input[value=skip]").await;
    click(&b, "#strategy button").await;
    // (The page after the form's navigation: its conflict is skipped.)
    let conflict = b
        .text("#conflicts li[data-key=shared-api][data-action=skip]")
        .await;
    assert!(conflict.contains("differs in description"), "{conflict}");
    seen.add(&b).await;
    click(&b, "#import").await;
    let summary = b.text("#summary").await;
    assert!(
        summary.contains("Import completed: 1 created, 0 updated, 1 skipped, 0 failed"),
        "{summary}"
    );
    let bar = b
        .client
        .execute(
            "const p = document.getElementById('progress'); return [p.value, p.max];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(bar, json!([2, 2]), "the bar is at its end");
    seen.add(&b).await;
    b.screenshots("import-done", None).await;

    // The gateway agrees: one tool more, the conflicting one as it was.
    let live = tools(&gw).await;
    assert_eq!(live.len(), before + 1);
    assert_eq!(
        crate::common::description(&live, "shared-api").as_deref(),
        Some("live")
    );
    assert_eq!(
        crate::common::description(&live, "new-api").as_deref(),
        Some("new")
    );

    // The job's event stream, for the session, ends with the same counts.
    let events = format!("{}/events", b.url().await);
    let done = b
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const s = new EventSource(arguments[0]);
             s.addEventListener('done', e => { s.close(); done(e.data); });
             s.onerror = () => { s.close(); done('error'); };",
            vec![json!(events)],
        )
        .await
        .unwrap();
    let done: Value = serde_json::from_str(done.as_str().unwrap()).unwrap();
    assert_eq!(done["counts"]["created"], 1, "{done}");
    assert_eq!(done["counts"]["skipped"], 1, "{done}");
    assert_eq!(done["state"], "completed", "{done}");

    // The report: the job with its per-entity results, no credential.
    click(&b, "#report").await;
    let file = b.download("import-").await;
    let text = std::fs::read_to_string(&file).unwrap();
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["counts"]["created"], 1, "{report:#}");
    assert_eq!(report["results"].as_array().unwrap().len(), 2, "{report:#}");
    assert!(!text.contains(CANARY) && !text.contains(&value));

    // A document with problems, picked through the file input: each problem with its entity
    // and pointer, the entity highlighted, no Import.
    let bad = json!({"version": "2025-03-26", "entities": {"tools": [
        {"name": "fine-api", "url": "https://fine.example.com/v1", "integration_type": "REST", "request_type": "GET"},
        {"name": "broken-api", "url": "https://broken.example.com/v1", "integration_type": "REST", "request_type": "FETCH"}
    ]}});
    let path = root.join("invalid.json");
    std::fs::write(&path, bad.to_string()).unwrap();
    b.goto(&format!("{base}/ui/env/obs/import")).await;
    b.find("#file")
        .await
        .send_keys(&path.display().to_string())
        .await
        .unwrap();
    click(&b, "#preview").await;
    let problems = b.text("#problems").await;
    assert!(
        problems.contains("tools broken-api")
            && problems.contains("/entities/tools/1/request_type")
            && problems.contains("FETCH"),
        "{problems}"
    );
    b.find("#entities tr#entity-tools-1.problem").await;
    assert!(b.text("#entities tr#entity-tools-0").await.contains("ok"));
    let html = b.source().await;
    assert!(!html.contains("id=\"import\"") && !html.contains("import-form"));
    seen.add(&b).await;
    b.screenshots("import-invalid", None).await;
    let names: Vec<String> = tools(&gw)
        .await
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!names.iter().any(|n| n == "fine-api"), "{names:?}");

    // No page broke its Content-Security-Policy, and no page holds a credential.
    let console = b.console().await;
    assert!(
        !console
            .iter()
            .any(|m| m.contains("Content Security Policy")),
        "{console:#?}"
    );
    for (url, html) in &seen.0 {
        for secret in [CANARY, value.as_str(), OPERATOR, gw.secret()] {
            assert!(!html.contains(secret), "{url} shows a secret");
        }
        assert!(html.len() < 200 * 1024, "{url}: {} bytes", html.len());
    }
    assert!(!d.text().contains(CANARY));
}

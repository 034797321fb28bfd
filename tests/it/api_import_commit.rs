//! An import into an `auto` environment with a Git source becomes a commit (issue 13), against
//! a real gateway, a real daemon and a local bare repository: the job records the commit, the
//! branch holds the entities in the environment's path with credentials encrypted with the
//! environment's key, the daemon applies it; importing again commits nothing; a review branch
//! leaves the environment's branch and the gateway alone; a result the daemon would refuse is
//! never pushed; an `auto` environment with a directory source answers 409 with its reason.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::Gateway;
use crate::common::git::git;
use crate::daemon::{DESIRED, Daemon, ENV_CONFIG, push, repository, tool_doc, write_config};
use mcp_gitops::core::secrets::{Credentials, Secret};
use serde_json::{Value, json};

const OPERATOR: &str = "operator-token-for-import-commit-01";
const DOC_KEY: &str = "the-documents-own-key-0123456789";
const CANARY: &str = "CANARY-import-commit-7c1f";

async fn post(d: &Daemon, path: &str, body: &Value) -> (u16, Value) {
    d.post_json(OPERATOR, path, body).await
}

/// A multipart upload: text fields, then the document as a file part.
async fn post_form(d: &Daemon, path: &str, fields: &[(&str, &str)], doc: &Value) -> (u16, Value) {
    let b = "----import-commit-boundary";
    let mut body = String::new();
    for (k, v) in fields {
        body.push_str(&format!(
            "--{b}\r\ncontent-disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    body.push_str(&format!(
        "--{b}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"doc.json\"\r\ncontent-type: application/json\r\n\r\n{doc}\r\n--{b}--\r\n"
    ));
    let r = d
        .http
        .post(d.url(path))
        .bearer_auth(OPERATOR)
        .header("content-type", format!("multipart/form-data; boundary={b}"))
        .body(body)
        .send()
        .await
        .unwrap();
    crate::daemon::answer(r).await
}

/// Wait until job `id` has finished; the job.
async fn finished(d: &Daemon, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = d
            .http
            .get(d.url(&format!("/api/v1/jobs/{id}")))
            .bearer_auth(OPERATOR)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let j: Value = r.json().await.unwrap();
        if !["queued", "running"].contains(&j["state"].as_str().unwrap()) {
            return j;
        }
        assert!(Instant::now() < deadline, "job {id} never finished: {j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn import(d: &Daemon, env: &str, body: &Value) -> Value {
    let (code, v) = post(d, &format!("/api/v1/environments/{env}/import"), body).await;
    assert_eq!(code, 202, "{v}");
    finished(d, v["job_id"].as_str().unwrap()).await
}

fn head(remote: &Path, branch: &str) -> String {
    git(remote, &["rev-parse", branch]).trim().to_string()
}

async fn tool(gw: &Gateway, name: &str) -> Option<Value> {
    gw.get("/v1/tools?limit=0")
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .cloned()
}

/// The document: a new tool `imported` with a bearer token encrypted with [`DOC_KEY`], and
/// `existing` with another description than the environment's.
fn document() -> Value {
    let token = Secret::new(DOC_KEY).encrypt(&Credentials::from_pairs([(
        "Authorization".to_string(),
        format!("Bearer {CANARY}"),
    )]));
    json!({"version": "2025-03-26", "entities": {"tools": [
        {"name": "imported", "url": "https://imported.example.com/v1", "request_type": "POST",
         "description": "from the import", "auth_type": "bearer", "auth_value": token},
        {"name": "existing", "url": "https://existing.example.com/v1", "request_type": "GET",
         "description": "v2"},
    ]}})
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_into_an_auto_git_environment_is_a_commit_the_daemon_applies() {
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
    std::fs::create_dir_all(root.join("envs/local")).unwrap();
    std::fs::write(root.join("envs/local/mcp-gitops.yaml"), ENV_CONFIG).unwrap();
    let config = write_config(
        root,
        "listen: 127.0.0.1:0\nstate_dir: state\napi:\n  open_status: true\n  compat_environment: prod\n  tokens:\n    - {name: ci, role: operator, token: {env: API_OPERATOR}}\nenvironments:\n  - {name: prod, source: {git: {url: config.git, path: envs/prod}}, interval: 1h, @GATEWAY}\n  - {name: local, source: {dir: envs/local}, interval: 1h}\n",
    );
    let d = Daemon::start_with(&gw, &config, &[("API_OPERATOR", OPERATOR)]);
    d.wait_ready().await;
    let first = head(&remote, "main");
    assert!(tool(&gw, "existing").await.is_some());

    // The preview says it will be a commit.
    let (code, p) = post(
        &d,
        "/api/v1/environments/prod/import/preview",
        &json!({"document": document(), "secret": DOC_KEY}),
    )
    .await;
    assert_eq!(code, 200, "{p}");
    assert_eq!(p["import_commits"]["branch"], "main", "{p}");
    assert_eq!(p["import_commits"]["path"], "envs/prod");
    assert!(p.get("import_refused").is_none(), "{p}");

    // Skip: `existing` stays as the environment defines it, `imported` is committed.
    let body = json!({"document": document(), "secret": DOC_KEY, "conflict_strategy": "skip"});
    let j = import(&d, "prod", &body).await;
    assert_eq!(j["state"], "completed", "{j:#}");
    let o = &j["outcome"];
    assert_eq!(o["type"], "commit");
    assert_eq!(o["committed"], true, "{j:#}");
    assert_eq!(o["branch"], "main");
    assert_eq!(o["reconcile"], "requested");
    assert_eq!(o["counts"]["created"]["tools"], 1, "{o}");
    assert_eq!(o["counts"]["skipped"]["tools"], 1, "{o}");
    assert_eq!(o["files"], json!(["envs/prod/promoted.yaml"]));
    assert_eq!(
        (
            j["counts"]["created"].clone(),
            j["counts"]["skipped"].clone()
        ),
        (json!(1), json!(1))
    );
    let sha = o["commit"].as_str().unwrap().to_string();
    assert_eq!(head(&remote, "main"), sha);
    assert_eq!(
        git(&remote, &["rev-parse", &format!("{sha}^")]).trim(),
        first
    );
    let subject = git(&remote, &["log", "-1", "--format=%s", "main"]);
    assert_eq!(subject.trim(), "import: +1 tool (imported)");
    let promoted = git(&remote, &["show", "main:envs/prod/promoted.yaml"]);
    assert!(promoted.contains("imported") && !promoted.contains(CANARY));
    let doc: Value = serde_saphyr::from_str(&promoted).unwrap();
    let value = doc["entities"]["tools"][0]["auth_value"].as_str().unwrap();
    assert!(
        Secret::new(DOC_KEY).decrypt(value).is_err(),
        "still the document's key"
    );
    let creds = Secret::new(gw.secret()).decrypt(value).unwrap();
    assert!(creds.to_json().contains(CANARY));
    assert_eq!(
        git(&remote, &["show", "main:envs/prod/tools.yaml"]),
        tool_doc("existing", "v1", "GET")
    );

    // The daemon applies it: the gateway holds the tool, the status the commit.
    let deadline = Instant::now() + Duration::from_secs(90);
    while tool(&gw, "imported").await.is_none() {
        assert!(Instant::now() < deadline, "never applied:\n{}", d.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d.wait_status("prod", "the commit in force", |s| {
        s["revision"] == sha.as_str()
    })
    .await;
    assert_eq!(tool(&gw, "existing").await.unwrap()["description"], "v1");

    // Again: nothing changes, no commit.
    let j = import(&d, "prod", &body).await;
    assert_eq!(j["state"], "completed", "{j:#}");
    assert_eq!(j["outcome"]["committed"], false, "{j:#}");
    assert_eq!(j["outcome"]["counts"]["unchanged"]["tools"], 1);
    assert_eq!(head(&remote, "main"), sha);

    // A review branch (multipart upload): the commit is there, main and the gateway untouched.
    let (code, v) = post_form(
        &d,
        "/api/v1/environments/prod/import",
        &[
            ("conflict_strategy", "update"),
            ("branch", "review"),
            ("secret", DOC_KEY),
        ],
        &document(),
    )
    .await;
    assert_eq!(code, 202, "{v}");
    let j = finished(&d, v["job_id"].as_str().unwrap()).await;
    assert_eq!(j["state"], "completed", "{j:#}");
    let o = &j["outcome"];
    assert_eq!(
        (o["branch"].as_str(), o["review"].as_bool()),
        (Some("review"), Some(true))
    );
    assert!(o.get("reconcile").is_none(), "{o}");
    assert_eq!(o["counts"]["updated"]["tools"], 1, "{o}");
    let review = o["commit"].as_str().unwrap();
    assert_eq!(head(&remote, "review"), review);
    assert_eq!(
        git(&remote, &["rev-parse", &format!("{review}^")]).trim(),
        sha
    );
    assert_eq!(head(&remote, "main"), sha);
    assert!(git(&remote, &["show", "review:envs/prod/tools.yaml"]).contains("v2"));
    assert_eq!(d.status("prod").await["revision"], sha.as_str());
    assert_eq!(tool(&gw, "existing").await.unwrap()["description"], "v1");

    // A document whose result would not be a valid environment (a `${...}` expression: the
    // gateway refuses it, and in an environment file it would read a variable) is refused with
    // 422 and its pointer before anything runs; nothing is pushed. (The job-level check, the
    // daemon's own loader on the result, is covered by the engine's tests.)
    let mut bad = document();
    bad["entities"]["tools"][1]["description"] = json!("${NOT_ALLOWED_HERE}");
    let (code, v) = post(
        &d,
        "/api/v1/environments/prod/import",
        &json!({"document": bad, "secret": DOC_KEY}),
    )
    .await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(
        v["error"]["problems"][0]["pointer"], "/entities/tools/1/description",
        "{v}"
    );
    assert_eq!(head(&remote, "main"), sha);

    // A job that fails as a whole pushes nothing either: `existing` differs from what the
    // environment defines, under conflict strategy fail.
    let j = import(
        &d,
        "prod",
        &json!({"document": document(), "secret": DOC_KEY, "conflict_strategy": "fail"}),
    )
    .await;
    assert_eq!(j["state"], "failed", "{j:#}");
    assert!(
        j["errors"]
            .to_string()
            .contains("tool existing (description)"),
        "{j:#}"
    );
    assert!(j["outcome"].is_null(), "{j:#}");
    assert_eq!(head(&remote, "main"), sha);

    // rename makes one-off copies: no place in a desired state (400, nothing runs).
    let (code, v) = post(
        &d,
        "/api/v1/environments/prod/import",
        &json!({"document": document(), "secret": DOC_KEY, "conflict_strategy": "rename"}),
    )
    .await;
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("rename"),
        "{v}"
    );

    // An auto environment with a directory source: 409 and why; the bulk route of the Git one too.
    let (code, v) = post(&d, "/api/v1/environments/local/import", &body).await;
    assert_eq!(code, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("directory source"),
        "{v}"
    );
    let (code, v) = post(&d, "/api/v1/environments/prod/tools/import", &json!([])).await;
    assert_eq!(code, 409, "{v}");

    // ContextForge's own `POST /import` into the same environment: a commit too, answered when
    // done with ContextForge's status object (and the commit beside it).
    let compat = json!({"version": "2025-03-26", "entities": {"tools": [
        {"name": "compat-tool", "url": "https://compat.example.com/v1", "request_type": "GET"}]}});
    let (code, v) = post(&d, "/import", &json!({"import_data": compat})).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(v["progress"]["created"], 1, "{v}");
    let compat_sha = v["outcome"]["commit"].as_str().unwrap().to_string();
    assert_eq!(head(&remote, "main"), compat_sha);
    assert_eq!(
        git(&remote, &["log", "-1", "--format=%s", "main"]).trim(),
        "import: +1 tool (compat-tool)"
    );

    let jobs = std::fs::read_dir(root.join("state/jobs"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect::<String>();
    assert!(!jobs.contains(CANARY));
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains(CANARY));
}

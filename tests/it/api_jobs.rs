//! The HTTP API's import side on `mcp-gitops run` against a real gateway: import preview,
//! import jobs (JSON and multipart), job status, server-sent events, cleanup, bulk tools,
//! ContextForge's own routes and shapes, every refusal's status code, two imports into one
//! environment serialized, a kill in the middle of a large import (the job reads interrupted
//! after the restart, a rerun converges), and a credential canary absent from every response
//! and job file.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::Gateway;
use crate::daemon::answer;
use mcp_gitops::core::secrets::{Credentials, Secret};
use serde_json::{Value, json};

/// Tools of the large import: under the client's 450 requests a minute, so that the test
/// measures the job, not the rate limit (the 1,000-entity run is `make bench`'s).
const BIG: usize = 400;
const VIEWER: &str = "viewer-token-for-api-jobs-0001";
const OPERATOR: &str = "operator-token-for-api-jobs-0002";
const ADMIN: &str = "admin-token-for-api-jobs-0003";
const CANARY: &str = "canary-api-jobs-5d1e0b-never-shown";

/// `mcp-gitops run` (the daemon tests' [`crate::daemon::Daemon`]) with this file's tokens, and
/// JSON calls as the admin or the operator.
struct Daemon(crate::daemon::Daemon);

impl std::ops::Deref for Daemon {
    type Target = crate::daemon::Daemon;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

fn setup(gw: &Gateway, dir: &Path) -> std::path::PathBuf {
    for env in ["ops", "prod"] {
        let d = dir.join("envs").join(env);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("mcp-gitops.yaml"),
            format!(
                "gateway: {}\nuser: admin@example.com\njwt_secret: {{env: JWT_SECRET_KEY}}\nsecret: {{env: AUTH_ENCRYPTION_SECRET}}\n",
                gw.url
            ),
        )
        .unwrap();
    }
    let config = dir.join("daemon.yaml");
    let lab = format!(
        "  gateways:\n    - {{name: lab, gateway: {{url: '{}', user: admin@example.com, jwt_secret: {{env: JWT_SECRET_KEY}}, secret: {{env: AUTH_ENCRYPTION_SECRET}}}}}}\n",
        gw.url
    );
    std::fs::write(
        &config,
        "listen: 127.0.0.1:0\nstate_dir: state\napi:\n".to_string() + &lab + "  compat_environment: ops\n  tokens:\n    - {name: dash, role: viewer, token: {env: API_VIEWER}}\n    - {name: ci, role: operator, token: {env: API_OPERATOR}}\n    - {name: root, role: admin, token: {env: API_ADMIN}}\nenvironments:\n  - {name: ops, source: {dir: envs/ops}, interval: 1h, mode: observe}\n  - {name: prod, source: {dir: envs/prod}, interval: 1h}\n",
    )
    .unwrap();
    config
}

impl Daemon {
    async fn start(gw: &Gateway, config: &Path) -> Daemon {
        let d = crate::daemon::Daemon::start_with(
            gw,
            config,
            &[
                ("API_VIEWER", VIEWER),
                ("API_OPERATOR", OPERATOR),
                ("API_ADMIN", ADMIN),
            ],
        );
        d.wait_ready().await;
        Daemon(d)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).bearer_auth(ADMIN);
        answer(r.send().await.unwrap()).await
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_as(OPERATOR, path, body).await
    }

    async fn post_as(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        self.post_json(token, path, body).await
    }

    /// Submit an import; its job id.
    async fn import(&self, env: &str, body: &Value) -> String {
        self.import_at(&format!("/api/v1/environments/{env}/import"), body)
            .await
    }

    async fn import_at(&self, path: &str, body: &Value) -> String {
        let (code, v) = self.post(path, body).await;
        assert_eq!(code, 202, "{v}");
        v["job_id"].as_str().unwrap().to_string()
    }

    /// Wait until job `id` has finished; the job.
    async fn finished(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let (code, j) = self.get(&format!("/api/v1/jobs/{id}")).await;
            assert_eq!(code, 200, "{j}");
            if !["queued", "running"].contains(&j["state"].as_str().unwrap()) {
                return j;
            }
            assert!(Instant::now() < deadline, "job {id} never finished: {j}");
            // Four polls a second stay well under the API's default 600 requests a minute.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn tools(prefix: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"name": format!("{prefix}{i:04}"), "url": format!("https://t{i}.example.com/op"),
                   "integration_type": "REST", "request_type": "GET"})
        })
        .collect()
}

fn doc(tools: Vec<Value>) -> Value {
    json!({"version": "2025-03-26", "exported_at": "2026-12-01T00:00:00Z",
           "entities": {"tools": tools}})
}

/// Every job file of the daemon, as text.
fn job_files(dir: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir.join("state/jobs")).unwrap().flatten() {
        out.push_str(&std::fs::read_to_string(e.path()).unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn import_routes_jobs_and_refusals() {
    let gw = Gateway::start();
    let t = tempfile::tempdir().unwrap();
    let config = setup(&gw, t.path());
    let d = Daemon::start(&gw, &config).await;
    let mut seen = String::new();

    // A tool with a bearer credential (the canary), encrypted with the environment's key.
    let secret = Secret::new(gw.secret());
    let creds = Credentials::from_pairs([("Authorization".into(), format!("Bearer {CANARY}"))]);
    let mut items = tools("api-", 3);
    items[0]["auth_type"] = json!("bearer");
    items[0]["auth_value"] = json!(secret.encrypt(&creds));
    let document = doc(items.clone());

    // Preview: three creations, nothing written.
    let (code, p) = d
        .post(
            "/api/v1/environments/ops/import/preview",
            &json!({"document": document}),
        )
        .await;
    assert_eq!(code, 200, "{p}");
    seen.push_str(&p.to_string());
    assert_eq!(p["valid"], true);
    assert_eq!(p["summary"]["tools"]["create"], 3, "{p}");
    assert!(gw.tool_names().await.is_empty(), "a preview writes nothing");

    // Import: 202, then a completed job with live counts and per-entity results.
    let id = d.import("ops", &json!({"document": document})).await;
    let job = d.finished(&id).await;
    seen.push_str(&job.to_string());
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["counts"]["created"], 3, "{job}");
    assert_eq!(job["results"].as_array().unwrap().len(), 3);
    assert_eq!(gw.tool_names().await.len(), 3);

    // Again: idempotent, nothing created or updated.
    let id2 = d.import("ops", &json!({"document": document})).await;
    let again = d.finished(&id2).await;
    assert_eq!(
        (
            &again["counts"]["created"],
            &again["counts"]["updated"],
            &again["counts"]["skipped"]
        ),
        (&json!(0), &json!(0), &json!(3)),
        "{again}"
    );

    // A changed tool: the preview shows the conflict with its field; `fail` refuses the job.
    let mut changed = items.clone();
    changed[1]["url"] = json!("https://changed.example.com/op");
    let (_, p) = d
        .post(
            "/api/v1/environments/ops/import/preview",
            &json!({"document": doc(changed.clone()), "conflict_strategy": "fail"}),
        )
        .await;
    let conflicts: Vec<&Value> = p["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["conflict"] == true)
        .collect();
    assert_eq!(conflicts.len(), 1, "{p}");
    assert_eq!(conflicts[0]["name"], "api-0001");
    assert!(
        conflicts[0]["fields"][0].as_str().unwrap().contains("url"),
        "{p}"
    );
    let failing = d
        .import(
            "ops",
            &json!({"document": doc(changed.clone()), "conflict_strategy": "fail"}),
        )
        .await;
    let failed = d.finished(&failing).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["errors"][0].as_str().unwrap().contains("conflict"),
        "{failed}"
    );

    // Multipart upload with a strategy field: the update goes through.
    let form = format!(
        "--B0und\r\nContent-Disposition: form-data; name=\"conflict_strategy\"\r\n\r\nupdate\r\n--B0und\r\nContent-Disposition: form-data; name=\"file\"; filename=\"export.json\"\r\nContent-Type: application/json\r\n\r\n{}\r\n--B0und--\r\n",
        doc(changed)
    );
    let r = d
        .http
        .post(d.url("/api/v1/environments/ops/import"))
        .bearer_auth(OPERATOR)
        .header("content-type", "multipart/form-data; boundary=B0und")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let mid = r.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let updated = d.finished(&mid).await;
    assert_eq!(updated["counts"]["updated"], 1, "{updated}");

    // An invalid document: the preview lists its problems with pointers; import refuses it.
    let (code, p) = d
        .post(
            "/api/v1/environments/ops/import/preview",
            &json!({"document": doc(vec![json!({"name": "no-url", "integration_type": "REST"})])}),
        )
        .await;
    assert_eq!(code, 200, "{p}");
    assert_eq!(p["valid"], false, "{p}");
    assert!(
        p["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["pointer"]
                .as_str()
                .unwrap()
                .starts_with("/document/entities/tools/0")),
        "{p}"
    );

    // Refusals: each with its status code and a JSON error.
    for (path, body, want) in [
        (
            "/api/v1/environments/ops/import",
            json!({"document": document, "conflict_strategy": "merge"}),
            400,
        ),
        (
            "/api/v1/environments/ops/import",
            json!({"dry_run": true}),
            422,
        ),
        (
            "/api/v1/environments/ops/import",
            json!({"document": {"version": "1", "entities": {"widgets": []}}}),
            422,
        ),
        (
            "/api/v1/environments/nope/import",
            json!({"document": document}),
            404,
        ),
        (
            "/api/v1/environments/prod/import",
            json!({"document": document}),
            409,
        ),
        (
            "/api/v1/environments/ops/import",
            json!({"document": document, "include": "tools"}),
            400,
        ),
    ] {
        let (code, v) = d.post(path, &body).await;
        assert_eq!(code, want, "{path} {body}: {v}");
        assert!(v["error"]["message"].is_string(), "{v}");
        seen.push_str(&v.to_string());
    }
    let (code, v) = d
        .post(
            "/api/v1/environments/prod/import",
            &json!({"document": document}),
        )
        .await;
    assert_eq!(code, 409);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("auto mode"),
        "{v}"
    );
    assert_eq!(
        d.get("/api/v1/jobs/00000000-0000-4000-8000-000000000000")
            .await
            .0,
        404
    );
    assert_eq!(d.get("/api/v1/jobs/not-a-job/events").await.0, 404);

    // Two imports into one environment run one after the other.
    let (a, b) = (
        d.import("ops", &json!({"document": doc(tools("ser-a-", 15))}))
            .await,
        d.import("ops", &json!({"document": doc(tools("ser-b-", 15))}))
            .await,
    );
    let (ja, jb) = (d.finished(&a).await, d.finished(&b).await);
    assert_eq!(
        (&ja["state"], &jb["state"]),
        (&json!("completed"), &json!("completed"))
    );
    let (first, second) = if ja["started_at"].as_str() <= jb["started_at"].as_str() {
        (&ja, &jb)
    } else {
        (&jb, &ja)
    };
    assert!(
        first["finished_at"].as_str().unwrap() <= second["started_at"].as_str().unwrap(),
        "overlapping imports: {first}\n{second}"
    );

    // ContextForge's own routes on the compatibility environment, in its shapes.
    let (code, cf) = d
        .post(
            "/import",
            &json!({"import_data": doc(tools("cf-", 2)), "conflict_strategy": "skip",
                    "dry_run": false, "rekey_secret": null, "selected_entities": {"tools": ["cf-0000"]}}),
        )
        .await;
    assert_eq!(code, 200, "{cf}");
    assert_eq!(cf["status"], "completed", "{cf}");
    for k in [
        "total",
        "processed",
        "created",
        "updated",
        "skipped",
        "failed",
    ] {
        assert!(cf["progress"][k].is_u64(), "{k}: {cf}");
    }
    assert_eq!(
        cf["progress"]["created"], 1,
        "only the selected entity: {cf}"
    );
    assert!(cf["errors"].is_array() && cf["warnings"].is_array() && cf["started_at"].is_string());
    let cf_id = cf["import_id"].as_str().unwrap().to_string();
    let (code, one) = d.get(&format!("/import/status/{cf_id}")).await;
    assert_eq!((code, &one["import_id"]), (200, &json!(cf_id)));
    let (code, all) = d.get("/v1/import/status").await;
    assert_eq!(code, 200);
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|j| j["import_id"] == cf_id.as_str())
    );
    let (code, missing) = d.get("/import/status/nope").await;
    assert_eq!(
        (code, &missing["detail"]),
        (404, &json!("Import nope not found"))
    );
    let (code, bad) = d
        .post(
            "/import",
            &json!({"import_data": doc(vec![]), "conflict_strategy": "bogus"}),
        )
        .await;
    assert_eq!(code, 400, "{bad}");
    assert!(bad["detail"].is_string(), "{bad}");
    let form = format!(
        "--B0und\r\nContent-Disposition: form-data; name=\"file\"; filename=\"export.json\"\r\n\r\n{}\r\n--B0und--\r\n",
        doc(tools("cf-", 2))
    );
    let r = d
        .http
        .post(d.url("/admin/import"))
        .bearer_auth(OPERATOR)
        .header("content-type", "multipart/form-data; boundary=B0und")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let admin_id = r.json::<Value>().await.unwrap()["import_id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = d.finished(&admin_id).await;
    assert_eq!(done["counts"]["created"], 1, "cf-0001 only: {done}");
    let (code, st) = d.get(&format!("/admin/import/status/{admin_id}")).await;
    assert_eq!((code, &st["status"]), (200, &json!("completed")), "{st}");
    let r = d
        .http
        .get(d.url("/export?types=tools"))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(disposition.contains("export-2"), "{disposition}");
    let exported: Value = r.json().await.unwrap();
    seen.push_str(&exported.to_string());
    let names: Vec<&str> = exported["entities"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"cf-0001") && names.contains(&"api-0000"),
        "{names:?}"
    );

    // Bulk tools (seed 004): per-item report, 413 over the batch limit, 429 over the rate.
    let mut items = tools("bulk-", 2);
    items.push(json!({"name": "bulk-bad", "url": "https://x.example.com", "integration_type": "REST", "request_type": "FETCH"}));
    let (code, rep) = d
        .post("/api/v1/environments/ops/tools/import", &json!(items))
        .await;
    assert_eq!(code, 200, "{rep}");
    assert_eq!(
        (&rep["created_count"], &rep["failed_count"]),
        (&json!(2), &json!(1)),
        "{rep}"
    );
    assert_eq!(rep["errors"][0]["index"], 2, "{rep}");
    let (code, rep) = d
        .post(
            "/api/v1/environments/ops/tools/import",
            &json!(tools("many-", 201)),
        )
        .await;
    assert_eq!(code, 413, "{rep}");
    let (code, rep) = d
        .post(
            "/api/v1/environments/ops/tools/import",
            &json!({"not": "a list"}),
        )
        .await;
    assert_eq!(code, 422, "{rep}");
    let mut codes = Vec::new();
    for _ in 0..10 {
        codes.push(
            d.post("/api/v1/environments/ops/tools/import", &json!([]))
                .await
                .0,
        );
    }
    assert_eq!(codes.last(), Some(&429), "{codes:?}");

    // A source-less gateway imports directly, and previews.
    let (code, p) = d
        .post(
            "/api/v1/gateways/lab/import/preview",
            &json!({"document": doc(tools("lab-", 2))}),
        )
        .await;
    assert_eq!(
        (code, &p["summary"]["tools"]["create"]),
        (200, &json!(2)),
        "{p}"
    );
    let lab = d
        .finished(
            &d.import_at(
                "/api/v1/gateways/lab/import",
                &json!({"document": doc(tools("lab-", 2))}),
            )
            .await,
        )
        .await;
    assert_eq!(lab["counts"]["created"], 2, "{lab}");
    assert_eq!(lab["target"], json!({"type": "gateway", "name": "lab"}));
    assert_eq!(
        d.post(
            "/api/v1/gateways/nope/import",
            &json!({"document": document})
        )
        .await
        .0,
        404
    );

    // The list, then cleanup of finished jobs.
    let (code, list) = d.get("/api/v1/jobs").await;
    assert_eq!(code, 200);
    seen.push_str(&list.to_string());
    let n = list["jobs"].as_array().unwrap().len();
    assert_eq!(n, 9, "{list}");
    seen.push_str(&job_files(t.path()));
    let r = d
        .http
        .post(d.url("/api/v1/jobs/cleanup?max_age_hours=0"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["removed_count"], n);
    assert_eq!(d.get(&format!("/api/v1/jobs/{id}")).await.0, 404);
    assert_eq!(
        std::fs::read_dir(t.path().join("state/jobs"))
            .unwrap()
            .count(),
        0,
        "job files removed"
    );

    // The canary reached the gateway encrypted, and no response or job file shows it.
    assert!(!seen.contains(CANARY), "the canary leaked");
    assert!(!d.proc.text().contains(CANARY), "the canary is in the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_import_streams_progress_and_a_kill_leaves_it_interrupted_then_a_rerun_converges() {
    let gw = Gateway::start_with(&[("RATE_LIMITING_ENABLED", "false")]);
    let t = tempfile::tempdir().unwrap();
    let config = setup(&gw, t.path());
    let mut d = Daemon::start(&gw, &config).await;
    let body = json!({"document": doc(tools("big-", BIG))});
    let id = d.import("ops", &body).await;

    // Events arrive while it runs: progress with growing counts.
    let mut r = d
        .http
        .get(d.url(&format!("/api/v1/jobs/{id}/events")))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut buf = String::new();
    let mut processed = Vec::new();
    let mut at = vec![Instant::now()];
    while processed.last().is_none_or(|p| *p < 60) {
        let chunk = r.chunk().await.unwrap().expect("the stream ended early");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                let v: Value = serde_json::from_str(data).unwrap();
                assert!(event.contains("event: progress"), "{event}");
                processed.push(v["counts"]["processed"].as_u64().unwrap());
                at.push(Instant::now());
            }
        }
    }
    assert!(processed.windows(2).all(|w| w[0] <= w[1]), "{processed:?}");
    // Measured, not asserted (speed belongs to `make bench`): the longest gap between events.
    let gaps: Vec<u128> = at[1..]
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    eprintln!(
        "events: {} while running, longest gap {} ms",
        processed.len(),
        gaps.iter().max().copied().unwrap_or(0)
    );
    assert!(
        processed.len() >= 3,
        "several events while running: {processed:?}"
    );

    // Killed in the middle; after a restart the job reads interrupted.
    d.proc.kill();
    let d = Daemon::start(&gw, &config).await;
    let (_, job) = d.get(&format!("/api/v1/jobs/{id}")).await;
    assert_eq!(job["state"], "interrupted", "{job}");
    assert!(
        job["errors"][0].as_str().unwrap().contains("interrupted"),
        "{job}"
    );
    let before = gw.tool_names().await.len();
    assert!(
        before > 0 && before < BIG,
        "{before} tools before the rerun"
    );

    // A rerun converges: only what is missing is created; a third run writes nothing.
    let rerun = d.finished(&d.import("ops", &body).await).await;
    assert_eq!(rerun["counts"]["failed"], 0, "{rerun}");
    let created = rerun["counts"]["created"].as_u64().unwrap() as usize;
    assert!(
        created <= BIG - before + 4,
        "{created} created after {before}"
    );
    assert_eq!(gw.tool_names().await.len(), BIG);
    let third = d.finished(&d.import("ops", &body).await).await;
    assert_eq!(third["counts"]["skipped"], BIG, "{third}");

    // The final event of a finished job says done.
    let text = d
        .http
        .get(d.url(&format!("/api/v1/jobs/{id}/events")))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("event: done"), "{text}");
}

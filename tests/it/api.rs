//! The HTTP API of `mcp-gitops run` (`/api/v1`) against a real gateway: authentication and
//! roles (401 with `WWW-Authenticate`, 403), limits (413, 429), status and reconcile, plan and
//! apply by digest (409 when stale), export byte-equal to the CLI's, the OpenAPI document, and
//! secrets canaries absent from every response and from the daemon's log.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::Gateway;
use crate::daemon::{Daemon, ENV_CONFIG, tool_doc, write_config};

const VIEWER: &str = "viewer-token-for-api-tests-0001";
const OPERATOR: &str = "operator-token-for-api-tests-0002";
const ADMIN: &str = "admin-token-for-api-tests-0003";

/// daemon.yaml's api section with the three tokens (and `more` settings).
fn api_section(more: &str) -> String {
    format!(
        "api:\n  tokens:\n    - {{name: dash, role: viewer, token: {{env: API_VIEWER}}}}\n    - {{name: ci, role: operator, token: {{env: API_OPERATOR}}}}\n    - {{name: root, role: admin, token: {{env: API_ADMIN}}}}\n{more}"
    )
}

const TOKENS: [(&str, &str); 3] = [
    ("API_VIEWER", VIEWER),
    ("API_OPERATOR", OPERATOR),
    ("API_ADMIN", ADMIN),
];

/// A daemon with environment `dev` (a directory holding tool `dev-api`) and `api`.
fn start(gw: &Gateway, api: &str, vars: &[(&str, &str)]) -> Daemon {
    start_env(gw, api, "", vars)
}

/// The same, with more settings of the environment (`, mode: observe`).
fn start_env(gw: &Gateway, api: &str, env: &str, vars: &[(&str, &str)]) -> Daemon {
    let root = gw.dir.path();
    let dev = root.join("envs/dev");
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::write(dev.join("mcp-gitops.yaml"), ENV_CONFIG).unwrap();
    if !dev.join("tools.yaml").exists() {
        std::fs::write(dev.join("tools.yaml"), tool_doc("dev-api", "v1", "GET")).unwrap();
    }
    let config = write_config(
        root,
        &format!(
            "listen: 127.0.0.1:0\nstate_dir: state\n{api}environments:\n  - {{name: dev, source: {{dir: envs/dev}}, interval: 1h{env}}}\n"
        ),
    );
    let mut all: Vec<(&str, &str)> = TOKENS.to_vec();
    all.extend_from_slice(vars);
    Daemon::start_with(gw, &config, &all)
}

/// The answer to one request: status, headers, body (JSON when it is JSON, else a string).
struct Answer {
    code: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_default()
    }

    /// An error answer of the API's one shape with this status and code.
    fn error(&self, code: u16, error: &str) -> Value {
        assert_eq!(self.code, code, "{}", self.text);
        let v = self.json();
        assert_eq!(v["error"]["code"], error, "{v}");
        assert!(v["error"]["message"].is_string(), "{v}");
        v
    }
}

async fn call(
    d: &Daemon,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut req = d.http.request(method, d.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    Answer {
        code: r.status().as_u16(),
        headers: r.headers().clone(),
        text: r.text().await.unwrap(),
    }
}

async fn get(d: &Daemon, path: &str, token: Option<&str>) -> Answer {
    call(d, Method::GET, path, token, None).await
}

async fn wait_env(d: &Daemon, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let a = get(d, "/api/v1/environments/dev", Some(VIEWER)).await;
        assert_eq!(a.code, 200, "{}", a.text);
        let v = a.json();
        if check(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out: {what}: {v:#}\n{}",
            d.text()
        );
        // Five polls a second stay well under the API's default 600 requests a minute.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_but_health_needs_a_token_with_the_right_role() {
    let gw = Gateway::start();
    let d = start(&gw, &api_section(""), &[]);
    d.wait_ready().await;
    assert_eq!(get(&d, "/healthz", None).await.code, 200);
    // Status and metrics are closed now unless opened; the API always is.
    for path in [
        "/status",
        "/metrics",
        "/api/v1/environments",
        "/api/v1/environments/dev",
    ] {
        let a = get(&d, path, None).await;
        a.error(401, "unauthorized");
        assert!(a.header("www-authenticate").starts_with("Bearer"), "{path}");
        get(&d, path, Some("not-a-token-at-all-0000"))
            .await
            .error(401, "unauthorized");
        let basic = d
            .http
            .get(d.url(path))
            .header("authorization", format!("Basic {VIEWER}"))
            .send()
            .await
            .unwrap();
        assert_eq!(basic.status().as_u16(), 401, "{path}");
        assert_eq!(get(&d, path, Some(VIEWER)).await.code, 200, "{path}");
    }
    let list = get(&d, "/api/v1/environments", Some(VIEWER)).await.json();
    assert_eq!(list["environments"][0]["name"], "dev", "{list}");
    get(&d, "/api/v1/environments/nope", Some(VIEWER))
        .await
        .error(404, "not_found");
    // Reconcile: an operator's, not a viewer's.
    let before = wait_env(&d, "the first cycle", |v| v["cycles"].as_u64() >= Some(1)).await;
    let cycles = before["cycles"].as_u64().unwrap();
    let reconcile = "/api/v1/environments/dev/reconcile";
    let a = call(&d, Method::POST, reconcile, Some(VIEWER), None).await;
    let v = a.error(403, "forbidden");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("viewer"),
        "{v}"
    );
    call(
        &d,
        Method::POST,
        "/api/v1/environments/nope/reconcile",
        Some(OPERATOR),
        None,
    )
    .await
    .error(404, "not_found");
    let a = call(&d, Method::POST, reconcile, Some(OPERATOR), None).await;
    assert_eq!(a.code, 202, "{}", a.text);
    // An unchanged directory is checked again (a drift check, not only a reload).
    let after = wait_env(&d, "the requested cycle", |v| {
        v["cycles"].as_u64() > Some(cycles)
    })
    .await;
    assert_eq!(after["health"], "synced", "{after}");
    let history = after["history"].as_array().unwrap();
    assert_eq!(
        history.len() as u64,
        after["cycles"].as_u64().unwrap().min(10),
        "{after}"
    );
    assert_eq!(history[0], after["last_result"]);
    assert_eq!(
        call(&d, Method::POST, reconcile, Some(ADMIN), None)
            .await
            .code,
        202
    );
    let (_, log) = d.terminate();
    assert!(
        log.contains("reconcile requested through the API by token 'ci'"),
        "{log}"
    );
    for t in [VIEWER, OPERATOR, ADMIN] {
        assert!(!log.contains(t), "a token in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_the_limit_get_413_and_clients_over_the_rate_429() {
    let gw = Gateway::start();
    let d = start_env(
        &gw,
        &api_section(
            "  body_limit: 1KB
  rate_limit: 8
  open_status: true
",
        ),
        ", mode: observe",
        &[],
    );
    d.wait_ready().await;
    // Opened explicitly: no token needed; metrics stay closed.
    assert_eq!(get(&d, "/status", None).await.code, 200);
    get(&d, "/metrics", None).await.error(401, "unauthorized");
    let big = json!({"digest": "x".repeat(2048)});
    let a = call(
        &d,
        Method::POST,
        "/api/v1/environments/dev/reconcile",
        Some(OPERATOR),
        Some(big),
    )
    .await;
    let v = a.error(413, "too_large");
    assert_eq!(v["error"]["limit"], 1024, "{v}");
    // An observe environment plans but never applies, even its own plan.
    let plan = get(&d, "/api/v1/environments/dev/plan", Some(VIEWER)).await;
    assert_eq!(plan.code, 200, "{}", plan.text);
    assert_eq!(plan.json()["mode"], "observe");
    let digest = plan.json()["digest"].clone();
    call(
        &d,
        Method::POST,
        "/api/v1/environments/dev/apply",
        Some(OPERATOR),
        Some(json!({"digest": digest})),
    )
    .await
    .error(409, "observe");
    // Five requests so far; the window holds eight a minute per client.
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(get(&d, "/api/v1/environments", Some(VIEWER)).await);
    }
    let ok = codes.iter().filter(|a| a.code == 200).count();
    assert_eq!(
        ok,
        3,
        "{:?}",
        codes.iter().map(|a| a.code).collect::<Vec<_>>()
    );
    let limited = codes.last().unwrap();
    limited.error(429, "rate_limited");
    let wait: u64 = limited.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Wrong tokens count too, and health and readiness are never limited.
    get(&d, "/api/v1/environments", Some("wrong-token-000000000"))
        .await
        .error(429, "rate_limited");
    assert_eq!(get(&d, "/healthz", None).await.code, 200);
    assert_eq!(get(&d, "/readyz", None).await.code, 200);
    d.terminate();
}

/// The document without its `exported_at` (the only field two exports may differ in).
fn without_exported_at(text: &str) -> String {
    text.lines()
        .filter(|l| {
            !l.trim_start().starts_with("\"exported_at\"")
                && !l.trim_start().starts_with("exported_at:")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The live tool `name`'s id.
async fn tool_id(gw: &Gateway, name: &str) -> String {
    let tools = gw.get("/v1/tools?limit=0&include_inactive=true").await;
    tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no tool {name}: {tools}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn drift(gw: &Gateway, name: &str, description: &str) {
    let id = tool_id(gw, name).await;
    gw.client()
        .put(
            &format!("/v1/tools/{id}"),
            &json!({"description": description}),
            &mcp_gitops::gateway::Action::new("drift"),
        )
        .await
        .unwrap();
}

async fn live_description(gw: &Gateway) -> Option<String> {
    let tools = gw.get("/v1/tools?limit=0").await;
    crate::common::description(tools.as_array().unwrap(), "dev-api")
}

const CANARY: &str = "canary-api-credential-7f3e9b21";

#[tokio::test(flavor = "multi_thread")]
async fn plan_apply_by_digest_and_export_equal_to_the_cli() {
    let gw = Gateway::start();
    let root = gw.dir.path();
    let dev = root.join("envs/dev");
    std::fs::create_dir_all(&dev).unwrap();
    let (secured, _) = crate::daemon::tool_with_token(gw.secret(), "dev-secured", "s1", CANARY);
    let plain = tool_doc("dev-api", "v1", "GET");
    let tools = format!("{plain}{}", secured.split_once("  tools:\n").unwrap().1);
    std::fs::write(dev.join("tools.yaml"), tools).unwrap();
    let d = start(
        &gw,
        &api_section(
            "  gateways:\n    - {name: legacy, gateway: {url: '${GW_URL}', user: admin@example.com, jwt_secret: {env: JWT_SECRET_KEY}, secret: {env: AUTH_ENCRYPTION_SECRET}}}\n",
        ),
        &[],
    );
    d.wait_ready().await;
    wait_env(&d, "applied", |v| v["health"] == "synced").await;
    let mut bodies: Vec<String> = Vec::new();

    // Drift on the gateway; the worker checks only every hour, the API plans now.
    drift(&gw, "dev-api", "drifted").await;
    let a = get(&d, "/api/v1/environments/dev/plan", Some(VIEWER)).await;
    assert_eq!(a.code, 200, "{}", a.text);
    bodies.push(a.text.clone());
    let plan = a.json();
    assert_eq!(
        (plan["update"].as_u64(), plan["create"].as_u64()),
        (Some(1), Some(0)),
        "{plan}"
    );
    // Exactly what the CLI's plan -o json prints, plus the digest.
    let out = gw
        .cmd()
        .env("GW_URL", &gw.url)
        .args(["plan", "-o", "json"])
        .arg(&dev)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut ours = plan.clone();
    for k in ["digest", "environment", "revision", "mode"] {
        ours.as_object_mut().unwrap().remove(k);
    }
    assert_eq!(ours, cli);
    let digest = plan["digest"].as_str().unwrap().to_string();

    // Apply: an operator's; a malformed digest is refused; a stale one is 409.
    let apply = "/api/v1/environments/dev/apply";
    call(
        &d,
        Method::POST,
        apply,
        Some(VIEWER),
        Some(json!({"digest": digest})),
    )
    .await
    .error(403, "forbidden");
    call(
        &d,
        Method::POST,
        apply,
        Some(OPERATOR),
        Some(json!({"digest": "abc"})),
    )
    .await
    .error(422, "invalid");
    call(
        &d,
        Method::POST,
        apply,
        Some(OPERATOR),
        Some(json!({"digest": 5})),
    )
    .await
    .error(400, "bad_request");
    call(
        &d,
        Method::POST,
        "/api/v1/environments/nope/apply",
        Some(OPERATOR),
        Some(json!({"digest": digest})),
    )
    .await
    .error(404, "not_found");
    drift(&gw, "dev-api", "drifted again").await;
    let a = call(
        &d,
        Method::POST,
        apply,
        Some(OPERATOR),
        Some(json!({"digest": digest})),
    )
    .await;
    let v = a.error(409, "stale");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the live gateway changed"),
        "{v}"
    );
    assert_eq!(
        live_description(&gw).await.as_deref(),
        Some("drifted again")
    );
    let fresh = get(&d, "/api/v1/environments/dev/plan", Some(VIEWER))
        .await
        .json();
    assert_ne!(fresh["digest"], plan["digest"]);
    let a = call(
        &d,
        Method::POST,
        apply,
        Some(OPERATOR),
        Some(json!({"digest": fresh["digest"]})),
    )
    .await;
    assert_eq!(a.code, 200, "{}", a.text);
    bodies.push(a.text.clone());
    let report = a.json();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["summary"]["updated"]["tools"], 1, "{report}");
    assert_eq!(live_description(&gw).await.as_deref(), Some("v1"));
    // Applied: the same digest again is stale now, and the plan is empty.
    let again = get(&d, "/api/v1/environments/dev/plan", Some(VIEWER))
        .await
        .json();
    assert_eq!(again["update"], 0, "{again}");

    // Export: the CLI's document, byte for byte but for exported_at.
    let cli_file = root.join("cli-export.json");
    let out = gw
        .cmd()
        .args(["export", "--user", "admin@example.com", "-o"])
        .arg(&cli_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli_text = std::fs::read_to_string(&cli_file).unwrap();
    let export = "/api/v1/environments/dev/export";
    get(&d, export, Some(VIEWER)).await.error(403, "forbidden");
    let a = get(&d, export, Some(OPERATOR)).await;
    assert_eq!(a.code, 200, "{}", a.text);
    assert_eq!(a.header("content-type"), "application/json");
    let disposition = a.header("content-disposition").to_string();
    let name = disposition
        .strip_prefix("attachment; filename=\"export-")
        .and_then(|r| r.strip_suffix(".json\""))
        .unwrap_or_else(|| panic!("{disposition}"));
    assert!(
        name.len() == 15
            && name.as_bytes()[8] == b'-'
            && name.replace('-', "").bytes().all(|c| c.is_ascii_digit()),
        "{disposition}"
    );
    assert_eq!(without_exported_at(&a.text), without_exported_at(&cli_text));
    assert!(
        a.text.contains("dev-secured") && a.text.contains("auth_value"),
        "{}",
        a.text
    );
    bodies.push(a.text.clone());
    // The source-less gateway (the same gateway here): the same document.
    let g = get(&d, "/api/v1/gateways/legacy/export", Some(OPERATOR)).await;
    assert_eq!(g.code, 200, "{}", g.text);
    assert_eq!(without_exported_at(&g.text), without_exported_at(&cli_text));
    get(&d, "/api/v1/gateways/nope/export", Some(OPERATOR))
        .await
        .error(404, "not_found");
    // Filters and formats as the CLI's flags.
    let a = get(
        &d,
        &format!("{export}?types=tools&format=yaml&tags=none-such"),
        Some(OPERATOR),
    )
    .await;
    assert_eq!(a.code, 200, "{}", a.text);
    assert_eq!(a.header("content-type"), "application/yaml");
    assert!(a.header("content-disposition").ends_with(".yaml\""));
    assert_eq!(a.header("x-exported-entities"), "0");
    let out = gw
        .cmd()
        .args([
            "export",
            "--user",
            "admin@example.com",
            "--types",
            "tools",
            "--tags",
            "none-such",
            "--format",
            "yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(
        without_exported_at(&a.text),
        without_exported_at(&String::from_utf8_lossy(&out.stdout))
    );
    get(&d, &format!("{export}?types=widgets"), Some(OPERATOR))
        .await
        .error(422, "invalid");
    get(&d, &format!("{export}?format=xml"), Some(OPERATOR))
        .await
        .error(422, "invalid");
    get(&d, &format!("{export}?colour=red"), Some(OPERATOR))
        .await
        .error(400, "bad_request");
    // Selective: the named entities only.
    let sel = format!("{export}/selective");
    let a = call(
        &d,
        Method::POST,
        &sel,
        Some(OPERATOR),
        Some(json!({"tools": ["dev-secured"]})),
    )
    .await;
    assert_eq!(a.code, 200, "{}", a.text);
    let doc = a.json();
    let names: Vec<&str> = doc["entities"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dev-secured"], "{doc}");
    bodies.push(a.text.clone());
    call(
        &d,
        Method::POST,
        &sel,
        Some(OPERATOR),
        Some(json!({"widgets": ["x"]})),
    )
    .await
    .error(422, "invalid");
    call(&d, Method::POST, &sel, Some(OPERATOR), Some(json!({})))
        .await
        .error(422, "invalid");
    let a = call(
        &d,
        Method::POST,
        "/api/v1/gateways/legacy/export/selective",
        Some(OPERATOR),
        Some(json!({"tools": ["dev-api"]})),
    )
    .await;
    assert_eq!(a.code, 200, "{}", a.text);

    // The OpenAPI document, status and metrics.
    let a = get(&d, "/api/v1/openapi.json", Some(VIEWER)).await;
    assert_eq!(a.code, 200);
    assert!(a.json()["paths"]["/api/v1/environments/{env}/apply"]["post"].is_object());
    get(&d, "/api/v1/openapi.json", None)
        .await
        .error(401, "unauthorized");
    for path in [
        "/status",
        "/metrics",
        "/api/v1/environments",
        "/api/v1/environments/dev",
    ] {
        bodies.push(get(&d, path, Some(VIEWER)).await.text);
    }
    let (_, log) = d.terminate();
    assert!(log.contains("through the API for token 'ci'"), "{log}");
    for (i, b) in bodies.iter().enumerate() {
        assert!(
            !b.contains(CANARY),
            "response {i} holds the credential:\n{b}"
        );
    }
    assert!(!log.contains(CANARY), "{log}");
    for t in [VIEWER, OPERATOR, ADMIN] {
        assert!(!log.contains(t), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_git_environment_plans_and_applies_at_the_revision_in_force_with_daemon_yamls_connection()
{
    use crate::daemon::{DESIRED, push, repository};
    let gw = Gateway::start();
    let root = gw.dir.path();
    let (_remote, work) = repository(root);
    let head = push(
        &work,
        &[
            ("envs/prod/mcp-gitops.yaml", DESIRED.into()),
            ("envs/prod/tools.yaml", tool_doc("dev-api", "v1", "GET")),
        ],
        "prod",
    );
    let config = write_config(
        root,
        &format!(
            "listen: 127.0.0.1:0\nstate_dir: state\n{}environments:\n  - {{name: prod, source: {{git: {{url: config.git, path: envs/prod}}}}, interval: 1h, @GATEWAY}}\n",
            api_section("")
        ),
    );
    let d = Daemon::start_with(&gw, &config, &TOKENS);
    d.wait_ready().await;
    drift(&gw, "dev-api", "drifted").await;
    let a = get(&d, "/api/v1/environments/prod/plan", Some(VIEWER)).await;
    assert_eq!(a.code, 200, "{}", a.text);
    let plan = a.json();
    assert_eq!(plan["revision"], head.as_str(), "{plan}");
    assert_eq!(plan["update"], 1, "{plan}");
    let a = call(
        &d,
        Method::POST,
        "/api/v1/environments/prod/apply",
        Some(OPERATOR),
        Some(json!({"digest": plan["digest"]})),
    )
    .await;
    assert_eq!(a.code, 200, "{}", a.text);
    assert_eq!(live_description(&gw).await.as_deref(), Some("v1"));
    let (_, log) = d.terminate();
    assert!(!log.contains(OPERATOR), "{log}");
}

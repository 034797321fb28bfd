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
            "listen: 127.0.0.1:0\nstate_dir: state\n{api}environments:\n  - {{name: dev, source: {{dir: envs/dev}}, interval: 1h}}\n"
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
        tokio::time::sleep(Duration::from_millis(50)).await;
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
    let d = start(
        &gw,
        &api_section("  body_limit: 1KB\n  rate_limit: 6\n  open_status: true\n"),
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
    // Three requests so far; the window holds six a minute per client.
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

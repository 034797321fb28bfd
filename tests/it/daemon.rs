//! `mcp-gitops run` against real gateways and real Git repositories (bare ones in temp
//! directories, pushed to with the `git` CLI): environments from Git branches and directories,
//! signed webhooks, bad commits that keep the last good state, scheduled backups that commit
//! only changes and never trigger a reconcile, outages, SIGTERM and a restart that resumes.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::git::{bare, git};
use crate::common::proc::Logged;
use crate::common::{Gateway, description};
use mcp_gitops::gateway::Action;
use mcp_gitops::http::hooks::HookSecret;
use serde_json::{Value, json};

const HOOK: &str = "hook-secret-for-tests";
pub(crate) const ENV_CONFIG: &str = "gateway: ${GW_URL}\nuser: admin@example.com\njwt_secret: {env: JWT_SECRET_KEY}\nsecret: {env: AUTH_ENCRYPTION_SECRET}\n";
/// A Git environment's file: desired state only (daemon.yaml names the gateway).
pub(crate) const DESIRED: &str = "conflict_strategy: update\n";
/// daemon.yaml's connection of a Git environment to the test's gateway.
const GATEWAY: &str = "gateway: {url: '${GW_URL}', user: admin@example.com, jwt_secret: {env: JWT_SECRET_KEY}, secret: {env: AUTH_ENCRYPTION_SECRET}}";

/// Between polls of `/status` and `/metrics`: 300 a minute at most, well within the API's
/// default limit of 600 per client and minute (a long wait polled faster is locked out by 429s).
const POLL_API: Duration = Duration::from_millis(200);

/// A response's status and body: JSON, or its text as a JSON string.
pub(crate) async fn answer(r: reqwest::Response) -> (u16, Value) {
    let code = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A running `mcp-gitops run`.
pub(crate) struct Daemon {
    pub(crate) proc: Logged,
    pub(crate) addr: String,
    pub(crate) http: reqwest::Client,
}

impl Daemon {
    pub(crate) fn start(gw: &Gateway, config: &Path) -> Daemon {
        Self::start_with(gw, config, &[])
    }

    /// With more variables in its environment.
    pub(crate) fn start_with(gw: &Gateway, config: &Path, vars: &[(&str, &str)]) -> Daemon {
        Self::spawn(Self::command(gw, config, vars))
    }

    /// The command `start_with` runs.
    pub(crate) fn command(
        gw: &Gateway,
        config: &Path,
        vars: &[(&str, &str)],
    ) -> std::process::Command {
        let mut cmd = Logged::command(&["run", "--config"]);
        cmd.arg(config)
            .env("HOME", gw.dir.path())
            .env("GW_URL", &gw.url)
            .env("JWT_SECRET_KEY", gw.jwt_secret())
            .env("AUTH_ENCRYPTION_SECRET", gw.secret())
            .env("HOOK_SECRET", HOOK)
            .envs(vars.iter().copied());
        cmd
    }

    /// Start `cmd` (an `mcp-gitops run`) and wait until it listens.
    pub(crate) fn spawn(cmd: std::process::Command) -> Daemon {
        let mut proc = Logged::spawn(cmd);
        let at = proc.wait_log(0, "daemon: listening on ");
        let line = proc.line(at);
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|r| r.split(';').next())
            .unwrap()
            .to_string();
        Daemon {
            proc,
            addr,
            http: reqwest::Client::new(),
        }
    }

    pub(crate) fn text(&self) -> String {
        self.proc.text()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, String) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub(crate) async fn status(&self, env: &str) -> Value {
        let (code, text) = self.get("/status").await;
        assert_eq!(code, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        v["environments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == env)
            .cloned()
            .unwrap_or_else(|| panic!("no environment {env} in {v}"))
    }

    /// Wait until `env`'s status satisfies `check`.
    pub(crate) async fn wait_status(
        &self,
        env: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let s = self.status(env).await;
            if check(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {env}: {what}: {s:#}\n{}",
                self.text()
            );
            tokio::time::sleep(POLL_API).await;
        }
    }

    /// Wait until /metrics holds `needle`; returns the whole exposition.
    pub(crate) async fn wait_metrics(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let (code, text) = self.get("/metrics").await;
            assert_eq!(code, 200, "{text}");
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needle} in\n{text}\n{}",
                self.text()
            );
            tokio::time::sleep(POLL_API).await;
        }
    }

    pub(crate) async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.get("/readyz").await.0 != 200 {
            assert!(Instant::now() < deadline, "never ready:\n{}", self.text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// POST `body` as JSON to `path` with bearer `token`: the status and the answer (JSON, or
    /// its text as a JSON string).
    pub(crate) async fn post_json(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        let r = self.http.post(self.url(path)).bearer_auth(token).json(body);
        answer(r.send().await.unwrap()).await
    }

    /// POST /hooks/git; `sign` says how: a good signature, a wrong one, or none.
    pub(crate) async fn hook(&self, body: &Value, sign: Sign) -> reqwest::Response {
        let bytes = serde_json::to_vec(body).unwrap();
        let mut req = self
            .http
            .post(self.url("/hooks/git"))
            .header("content-type", "application/json")
            .header("x-github-event", "push");
        match sign {
            Sign::Good => {
                req = req.header("x-hub-signature-256", HookSecret::new(HOOK).sign(&bytes));
            }
            Sign::Wrong => {
                req = req.header(
                    "x-hub-signature-256",
                    HookSecret::new("not-the-secret").sign(&bytes),
                );
            }
            Sign::GitLab(token) => {
                req = req.header("x-gitlab-token", token);
            }
            Sign::None => {}
        }
        req.body(bytes).send().await.unwrap()
    }

    /// A signed push event for `remote`'s main branch, which must be accepted.
    pub(crate) async fn pushed(&self, remote: &Path) {
        let r = self.hook(&push_event(remote), Sign::Good).await;
        assert_eq!(r.status().as_u16(), 202, "{:?}", r.text().await);
    }

    pub(crate) fn terminate(self) -> (Option<i32>, String) {
        self.proc.terminate()
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Sign {
    Good,
    Wrong,
    /// GitLab's plain token header.
    GitLab(&'static str),
    None,
}

/// A bare repository `config.git` under `root` and a working clone of it (`work`).
pub(crate) fn repository(root: &Path) -> (PathBuf, PathBuf) {
    let remote = bare(root, "config.git");
    let work = root.join("work");
    let args = [
        "clone",
        "-q",
        remote.to_str().unwrap(),
        work.to_str().unwrap(),
    ];
    git(root, &args);
    (remote, work)
}

/// Write files (path, content) in the working clone, commit, push; the new head.
pub(crate) fn push(work: &Path, files: &[(&str, String)], message: &str) -> String {
    for (path, text) in files {
        let p = work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", message]);
    if !git(work, &["ls-remote", "--heads", "origin", "main"]).is_empty() {
        git(work, &["pull", "-q", "--rebase", "origin", "main"]);
    }
    git(work, &["push", "-q", "origin", "HEAD:main"]);
    git(work, &["rev-parse", "HEAD"]).trim().to_string()
}

/// Push an environment envs/prod holding one tool; the new head.
fn push_prod(work: &Path, tool: &str) -> String {
    let files = [
        ("envs/prod/mcp-gitops.yaml", DESIRED.to_string()),
        ("envs/prod/tools.yaml", tool_doc(tool, "v1", "GET")),
    ];
    push(work, &files, "prod")
}

pub(crate) fn tool_doc(name: &str, description: &str, request_type: &str) -> String {
    format!(
        "version: '2025-03-26'\nentities:\n  tools:\n    - name: {name}\n      url: https://{name}.example.com/v1\n      request_type: {request_type}\n      description: {description}\n"
    )
}

/// A tool document whose bearer `token` is encrypted with `secret`; also the `auth_value`.
pub(crate) fn tool_with_token(
    secret: &str,
    name: &str,
    description: &str,
    token: &str,
) -> (String, String) {
    let value = mcp_gitops::core::secrets::Secret::new(secret).encrypt(
        &mcp_gitops::core::secrets::Credentials::from_pairs([(
            "Authorization".to_string(),
            format!("Bearer {token}"),
        )]),
    );
    let doc = format!(
        "{}      auth_type: bearer\n      auth_value: {value}\n",
        tool_doc(name, description, "POST")
    );
    (doc, value)
}

/// A GitHub push event for `remote`'s main branch.
fn push_event(remote: &Path) -> Value {
    json!({"ref": "refs/heads/main", "repository": {
        "full_name": "acme/config", "clone_url": remote.display().to_string()}})
}

async fn tools(gw: &Gateway) -> Vec<Value> {
    gw.get("/v1/tools?limit=0")
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// Wait until the gateway's tool `name` has `want` as its description.
async fn wait_description(gw: &Gateway, name: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let t = tools(gw).await;
        if description(&t, name).as_deref() == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "tool {name} never got description {want:?}: {t:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn delete_tool(gw: &Gateway, name: &str) {
    let t = tools(gw).await;
    let id = t.iter().find(|t| t["name"] == name).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    gw.client()
        .delete(&format!("/v1/tools/{id}"), &Action::new("delete by hand"))
        .await
        .unwrap();
}

/// Write daemon.yaml; `@GATEWAY` in `text` stands for [`GATEWAY`].
pub(crate) fn write_config(root: &Path, text: &str) -> PathBuf {
    let p = root.join("daemon.yaml");
    std::fs::write(&p, text.replace("@GATEWAY", GATEWAY)).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread")]
async fn environments_follow_commits_and_signed_webhooks_and_a_bad_commit_keeps_the_last_good_state()
 {
    let gw = Gateway::start();
    let root = gw.dir.path();
    let (remote, work) = repository(root);
    let c1 = push(
        &work,
        &[
            ("envs/staging/mcp-gitops.yaml", DESIRED.into()),
            (
                "envs/staging/tools.yaml",
                tool_doc("staging-api", "v1", "GET"),
            ),
            // A file may repeat daemon.yaml's connection (here with a variable it may read).
            ("envs/prod/mcp-gitops.yaml", ENV_CONFIG.into()),
            ("envs/prod/tools.yaml", tool_doc("prod-api", "v1", "GET")),
        ],
        "environments",
    );
    let dev = root.join("envs/dev");
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::write(dev.join("mcp-gitops.yaml"), ENV_CONFIG).unwrap();
    std::fs::write(dev.join("tools.yaml"), tool_doc("dev-api", "v1", "GET")).unwrap();
    let config = write_config(
        root,
        "listen: 127.0.0.1:0\nstate_dir: state\napi: {open_status: true, open_metrics: true}\nwebhook: {secret: {env: HOOK_SECRET}, rate_limit: 40}\nenvironments:\n  - {name: staging, source: {git: {url: config.git, path: envs/staging}}, interval: 1h, @GATEWAY}\n  - {name: prod, source: {git: {url: config.git, path: envs/prod}}, interval: 1s, @GATEWAY, allowed_env: [GW_URL]}\n  - {name: dev, source: {dir: envs/dev}, interval: 1h}\n",
    );
    let d = Daemon::start(&gw, &config);
    d.wait_ready().await;
    let t = tools(&gw).await;
    for name in ["staging-api", "prod-api", "dev-api"] {
        assert_eq!(
            description(&t, name).as_deref(),
            Some("v1"),
            "{name}: {t:?}"
        );
    }
    let s = d.status("staging").await;
    assert_eq!(s["revision"], c1.as_str(), "{s:#}");
    assert_eq!(s["health"], "synced", "{s:#}");
    assert_eq!(s["source"]["kind"], "git");
    assert_eq!(s["last_result"]["outcome"], "applied", "{s:#}");
    assert_eq!(d.status("dev").await["health"], "synced");

    // A commit reaches staging on a signed webhook, and not on an unsigned or wrongly signed one.
    let c2 = push(
        &work,
        &[(
            "envs/staging/tools.yaml",
            tool_doc("staging-api", "v2", "GET"),
        )],
        "staging v2",
    );
    for sign in [Sign::None, Sign::Wrong] {
        let r = d.hook(&push_event(&remote), sign).await;
        assert_eq!(r.status().as_u16(), 401);
    }
    assert_eq!(
        d.status("staging").await["head"],
        c1.as_str(),
        "no fetch before a good signature"
    );
    assert_eq!(
        description(&tools(&gw).await, "staging-api").as_deref(),
        Some("v1")
    );
    let r = d.hook(&push_event(&remote), Sign::Good).await;
    assert_eq!(r.status().as_u16(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["triggered"], json!(["staging", "prod"]), "{body}");
    wait_description(&gw, "staging-api", "v2").await;
    d.wait_status("staging", "revision c2", |s| s["revision"] == c2.as_str())
        .await;
    // prod reads nothing c2 changed: it sees the head and keeps its revision.
    let p = d
        .wait_status("prod", "head c2", |s| s["head"] == c2.as_str())
        .await;
    assert_eq!(p["revision"], c1.as_str(), "{p:#}");

    // A bad commit: prod is marked failed with the precise error and keeps its last good state;
    // staging, changed by the same commit, applies it.
    let c3 = push(
        &work,
        &[
            ("envs/prod/tools.yaml", tool_doc("prod-api", "v3", "FETCH")),
            (
                "envs/staging/tools.yaml",
                tool_doc("staging-api", "v3", "GET"),
            ),
        ],
        "a bad prod, a good staging",
    );
    // This time as GitLab sends it: its payload shape, the secret as a plain token.
    let gitlab = json!({"ref": "refs/heads/main", "project": {
        "path_with_namespace": "acme/config", "git_http_url": remote.display().to_string()}});
    let r = d.hook(&gitlab, Sign::GitLab("not-the-token")).await;
    assert_eq!(r.status().as_u16(), 401);
    let r = d.hook(&gitlab, Sign::GitLab(HOOK)).await;
    assert_eq!(r.status().as_u16(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["triggered"], json!(["staging", "prod"]), "{body}");
    wait_description(&gw, "staging-api", "v3").await;
    let p = d
        .wait_status("prod", "the bad commit", |s| {
            s["source_error"]["revision"] == c3.as_str()
        })
        .await;
    assert_eq!(p["health"], "failed", "{p:#}");
    assert_eq!(p["revision"], c1.as_str(), "{p:#}");
    let err = p["source_error"]["error"].as_str().unwrap();
    assert_eq!(p["source_error"]["reason"], "invalid");
    assert!(
        err.contains(&format!("@{}:envs/prod/tools.yaml", &c3[..12]))
            && err.contains("/entities/tools/0/request_type"),
        "{err}"
    );
    assert_eq!(
        description(&tools(&gw).await, "prod-api").as_deref(),
        Some("v1")
    );
    // The last good state stays in force: a tool deleted by hand comes back.
    delete_tool(&gw, "prod-api").await;
    wait_description(&gw, "prod-api", "v1").await;
    // Fixed: applied, and healthy again.
    let c4 = push(
        &work,
        &[("envs/prod/tools.yaml", tool_doc("prod-api", "v4", "GET"))],
        "prod fixed",
    );
    wait_description(&gw, "prod-api", "v4").await;
    let p = d
        .wait_status("prod", "c4 in force", |s| {
            s["revision"] == c4.as_str() && s["health"] == "synced"
        })
        .await;
    assert!(p.get("source_error").is_none(), "{p:#}");

    // Metrics, per environment. Prod (interval 1s) counts a cycle that
    // found nothing to do once one has run after c4.
    let metrics = d
        .wait_metrics(r#"mcp_gitops_reconcile_total{environment="prod",outcome="in_sync"}"#)
        .await;
    for needle in [
        r#"mcp_gitops_reconcile_total{environment="staging",outcome="applied"}"#,
        r#"mcp_gitops_reconcile_total{environment="prod",outcome="in_sync"}"#,
        r#"mcp_gitops_source_errors_total{environment="prod",reason="invalid"} 1"#,
        r#"mcp_gitops_webhook_requests_total{result="unauthorized"} 3"#,
        r#"mcp_gitops_webhook_requests_total{result="accepted"} 2"#,
        r#"mcp_gitops_drift_entities{environment="dev"} 0"#,
        r#"mcp_gitops_gateway_requests_total{environment="prod",kind="write"}"#,
        r#"mcp_gitops_last_applied_timestamp_seconds{environment="staging"}"#,
        r#"mcp_gitops_reconcile_duration_seconds_count{environment="prod"}"#,
    ] {
        assert!(metrics.contains(needle), "no {needle} in\n{metrics}");
    }
    let writes = metrics
        .lines()
        .find(|l| {
            l.starts_with(r#"mcp_gitops_gateway_requests_total{environment="prod",kind="write"}"#)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap();
    assert!(
        writes >= 3,
        "prod wrote at least create, re-create, update: {writes}"
    );

    // Webhook floods are cut off.
    let mut limited = None;
    for _ in 0..40 {
        let r = d.hook(&push_event(&remote), Sign::None).await;
        if r.status().as_u16() == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status().as_u16(), 401);
    }
    let r = limited.expect("never rate limited");
    assert!(r.headers().contains_key("retry-after"));

    let status_text = d.get("/status").await.1;
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("daemon: stopping: finishing work in flight"),
        "{log}"
    );
    assert!(log.ends_with("daemon: stopped"), "{log}");
    for text in [&log, &status_text, &metrics] {
        assert!(!text.contains(gw.secret()) && !text.contains(gw.jwt_secret()));
        assert!(!text.contains(HOOK));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_backups_commit_only_changes_serialize_pushes_and_never_trigger_a_reconcile() {
    // Backups every 2 s from two environments: the gateway's own limiter is off for this.
    let gw = Gateway::start_with(&[("RATE_LIMITING_ENABLED", "false")]);
    let root = gw.dir.path();
    let (remote, work) = repository(root);
    let prod_doc = tool_with_token(gw.secret(), "prod-api", "v1", "CANARY-token-of-prod").0;
    let c1 = push(
        &work,
        &[
            ("envs/prod/mcp-gitops.yaml", DESIRED.into()),
            ("envs/prod/tools.yaml", prod_doc),
            ("envs/staging/mcp-gitops.yaml", DESIRED.into()),
            (
                "envs/staging/tools.yaml",
                tool_doc("staging-api", "v1", "GET"),
            ),
        ],
        "environments",
    );
    let config = write_config(
        root,
        "listen: 127.0.0.1:0\nstate_dir: state\napi: {open_status: true, open_metrics: true}\nwebhook: {secret: {env: HOOK_SECRET}}\nenvironments:\n  - name: prod\n    source: {git: {url: config.git, path: envs/prod}}\n    @GATEWAY\n    interval: 1h\n    backup: {schedule: '*/2 * * * * *', path: backups/prod.json}\n  - name: staging\n    source: {git: {url: config.git, path: envs/staging}}\n    @GATEWAY\n    interval: 1h\n    backup: {schedule: '*/2 * * * * *', path: backups/staging.json}\n",
    );
    let d = Daemon::start(&gw, &config);
    d.wait_ready().await;
    // The first backups of both (pushed one at a time to one branch, neither lost), then
    // backups that find nothing new and commit nothing. (Both environments use one gateway
    // here, and a backup is of the whole live gateway.)
    for env in ["prod", "staging"] {
        d.wait_status(env, "a first backup", |s| {
            s["backup"]["last"]["outcome"] == "committed"
        })
        .await;
    }
    for env in ["prod", "staging"] {
        let first = d.status(env).await["backup"]["last"]["at"].clone();
        d.wait_status(env, "a backup with nothing new", |s| {
            s["backup"]["last"]["outcome"] == "unchanged" && s["backup"]["last"]["at"] != first
        })
        .await;
    }
    let log = git(&remote, &["log", "--format=%s", "main"]);
    let subjects: Vec<&str> = log.lines().collect();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    for env in ["prod", "staging"] {
        let want = format!("backup {env}: +2 tools (prod-api, staging-api)");
        assert!(subjects.contains(&want.as_str()), "{subjects:?}");
    }
    assert_eq!(subjects[2], "environments");
    let file = git(&remote, &["show", "main:backups/prod.json"]);
    assert!(!file.contains("CANARY"), "a plaintext credential in Git");
    let doc: Value = serde_json::from_str(&file).unwrap();
    let value = doc["entities"]["tools"][0]["auth_value"].as_str().unwrap();
    assert_eq!(
        gw.decode_auth(&[value], None)[0]["Authorization"],
        "Bearer CANARY-token-of-prod"
    );
    assert!(git(&remote, &["show", "main:backups/staging.json"]).contains("staging-api"));

    // A change by hand is backed up; the push event of that backup commit fetches, but runs no
    // reconcile: the change stays on the gateway (auto mode would have reverted it).
    let id = tools(&gw)
        .await
        .iter()
        .find(|t| t["name"] == "prod-api")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    gw.client()
        .put(
            &format!("/v1/tools/{id}"),
            &json!({"description": "changed by hand"}),
            &Action::new("edit by hand"),
        )
        .await
        .unwrap();
    let mut cycles = Value::Null;
    for env in ["prod", "staging"] {
        let s = d
            .wait_status(env, "the change backed up", |s| {
                s["backup"]["last"]["summary"] == format!("backup {env}: ~1 tool (prod-api)")
            })
            .await;
        let commit = s["backup"]["last"]["commit"].as_str().unwrap();
        let body = git(&remote, &["log", "-1", "--format=%b", commit]);
        assert!(body.contains("~ tool prod-api: description"), "{body}");
        if env == "prod" {
            cycles = s["cycles"].clone();
        }
    }
    let head = git(&remote, &["rev-parse", "main"]).trim().to_string();
    d.pushed(&remote).await;
    let s = d
        .wait_status("prod", "the backup commits fetched", |s| {
            s["head"] == head.as_str()
        })
        .await;
    assert_eq!(s["revision"], c1.as_str(), "{s:#}");
    assert_eq!(
        s["cycles"], cycles,
        "the backup commit ran a reconcile: {s:#}"
    );
    assert_eq!(
        description(&tools(&gw).await, "prod-api").as_deref(),
        Some("changed by hand")
    );
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("CANARY") && !log.contains(gw.secret()));
}

#[tokio::test(flavor = "multi_thread")]
async fn git_outages_are_retried_and_a_restarted_daemon_resumes_with_what_it_applied() {
    let gw = Gateway::start();
    let root = gw.dir.path();
    let (remote, work) = repository(root);
    let c1 = push_prod(&work, "prod-api");
    let config = write_config(
        root,
        "listen: 127.0.0.1:0\nstate_dir: state\napi: {open_status: true, open_metrics: true}\nenvironments:\n  - {name: prod, source: {git: {url: config.git, path: envs/prod}}, interval: 1s, @GATEWAY}\n",
    );
    let mut d = Daemon::start(&gw, &config);
    d.wait_status("prod", "c1 applied", |s| s["revision"] == c1.as_str())
        .await;
    // One daemon per state directory (with what daemon.yaml's gateway: needs set).
    let out = assert_cmd::Command::cargo_bin("mcp-gitops")
        .unwrap()
        .args(["run", "--config"])
        .arg(&config)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GW_URL", &gw.url)
        .env("JWT_SECRET_KEY", gw.jwt_secret())
        .env("AUTH_ENCRYPTION_SECRET", gw.secret())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is in use by another mcp-gitops run"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The repository goes away: retried with backoff, the last good state stays in force.
    let away = root.join("config.git.away");
    std::fs::rename(&remote, &away).unwrap();
    let mark = d.proc.lines();
    d.proc.wait_log(mark, "cannot reach Git repository");
    let at = d.proc.wait_log(mark, "retrying in");
    let line = d.proc.line(at);
    assert!(
        line.contains("env prod: cannot reach Git repository"),
        "{line}"
    );
    d.wait_status("prod", "the outage", |s| {
        s["source_error"]["reason"] == "git"
    })
    .await;
    delete_tool(&gw, "prod-api").await;
    wait_description(&gw, "prod-api", "v1").await;
    std::fs::rename(&away, &remote).unwrap();
    d.wait_status("prod", "the repository back", |s| {
        s.get("source_error").is_none()
    })
    .await;

    // A bad head, then SIGTERM: a clean exit with the state saved.
    let c2 = push(
        &work,
        &[("envs/prod/tools.yaml", tool_doc("prod-api", "v2", "FETCH"))],
        "bad",
    );
    d.wait_status("prod", "the bad head", |s| {
        s["source_error"]["revision"] == c2.as_str()
    })
    .await;
    let before = d.status("prod").await;
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("state/state.json")).unwrap())
            .unwrap();
    assert_eq!(
        state["environments"][0]["revision"],
        c1.as_str(),
        "{state:#}"
    );

    // Restarted, with the head still bad and a tool deleted meanwhile: it resumes with c1.
    delete_tool(&gw, "prod-api").await;
    let mut d = Daemon::start(&gw, &config);
    d.proc.wait_log(0, &format!("resuming with {}", &c1[..12]));
    wait_description(&gw, "prod-api", "v1").await;
    let s = d
        .wait_status("prod", "resumed", |s| {
            s["cycles"].as_u64() > before["cycles"].as_u64()
        })
        .await;
    assert_eq!(s["revision"], c1.as_str(), "{s:#}");
    assert_eq!(s["source_error"]["revision"], c2.as_str(), "{s:#}");
    assert_eq!(s["health"], "failed");
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_git_source_over_ssh_needs_a_known_host_key() {
    let sshd = common::git::Sshd::start();
    let gw = Gateway::start();
    let root = gw.dir.path();
    let (remote, work) = repository(root);
    let c1 = push_prod(&work, "over-ssh");
    let url = sshd.url(&remote);
    let hosts = root.join("known_hosts");
    let config = |name: &str| {
        write_config(
            root,
            &format!(
                "listen: 127.0.0.1:0\nstate_dir: {name}\napi: {{open_status: true, open_metrics: true}}\nenvironments:\n  - name: prod\n    interval: 1h\n    @GATEWAY\n    source:\n      git:\n        url: '{url}'\n        path: envs/prod\n        auth: {{ssh_key: '{}', known_hosts: '{}'}}\n",
                sshd.dir.path().join("client_key").display(),
                hosts.display()
            ),
        )
    };
    // An unknown host key: refused, nothing applied.
    std::fs::write(&hosts, "").unwrap();
    let d = Daemon::start(&gw, &config("state-a"));
    let s = d
        .wait_status("prod", "refused", |s| s["source_error"]["reason"] == "git")
        .await;
    let err = s["source_error"]["error"].as_str().unwrap();
    assert!(err.contains("refusing the SSH host key"), "{err}");
    assert!(tools(&gw).await.is_empty());
    d.terminate();
    // Known: fetched over SSH and applied.
    std::fs::write(
        &hosts,
        format!("[127.0.0.1]:{} {}", sshd.port, sshd.host_key()),
    )
    .unwrap();
    let d = Daemon::start(&gw, &config("state-b"));
    d.wait_status("prod", "applied over SSH", |s| s["revision"] == c1.as_str())
        .await;
    assert_eq!(
        description(&tools(&gw).await, "over-ssh").as_deref(),
        Some("v1")
    );
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_promotion_committed_and_pushed_reaches_prod_with_the_credential_rekeyed() {
    let staging = Gateway::start_with(&[("AUTH_ENCRYPTION_SECRET", "staging-key-0123456789")]);
    let prod = Gateway::start_with(&[("AUTH_ENCRYPTION_SECRET", "prod-key-9876543210")]);
    let root = staging.dir.path();
    let (remote, work) = repository(root);
    // promote reads each environment's key from its file: daemon.yaml's, repeated.
    let env_config = |who: &str| format!("secret: {{env: {who}_KEY}}\n");
    let (translate, credential) =
        tool_with_token(staging.secret(), "translate", "v2", "CANARY-translate");
    push(
        &work,
        &[
            ("envs/staging/mcp-gitops.yaml", env_config("STAGING")),
            ("envs/staging/translate.yaml", translate),
            (
                "envs/staging/weather.yaml",
                tool_doc("weather", "v1", "GET"),
            ),
            ("envs/prod/mcp-gitops.yaml", env_config("PROD")),
            ("envs/prod/weather.yaml", tool_doc("weather", "v1", "GET")),
        ],
        "staging and prod",
    );
    let config = write_config(
        root,
        "listen: 127.0.0.1:0\nstate_dir: state\napi: {open_status: true, open_metrics: true}\nwebhook: {secret: {env: HOOK_SECRET}}\nenvironments:\n  - {name: staging, source: {git: {url: config.git, path: envs/staging}}, interval: 1h, gateway: {url: '${STAGING_URL}', user: admin@example.com, jwt_secret: {env: JWT_SECRET_KEY}, secret: {env: STAGING_KEY}}}\n  - {name: prod, source: {git: {url: config.git, path: envs/prod}}, interval: 1h, gateway: {url: '${PROD_URL}', user: admin@example.com, jwt_secret: {env: JWT_SECRET_KEY}, secret: {env: PROD_KEY}}}\n",
    );
    let vars = [
        ("STAGING_URL", staging.url.as_str()),
        ("STAGING_KEY", staging.secret()),
        ("PROD_URL", prod.url.as_str()),
        ("PROD_KEY", prod.secret()),
    ];
    let d = Daemon::start_with(&staging, &config, &vars);
    d.wait_ready().await;
    assert!(description(&tools(&staging).await, "translate").is_some());
    assert!(description(&tools(&prod).await, "translate").is_none());
    let staging_rev = d.status("staging").await["revision"].clone();

    // Promote in the working copy (credentials re-encrypted for prod's key), push, webhook.
    let out = assert_cmd::Command::cargo_bin("mcp-gitops")
        .unwrap()
        .args([
            "promote",
            "--from",
            "envs/staging",
            "--to",
            "envs/prod",
            "--include",
            "tools:translate",
        ])
        .current_dir(&work)
        .envs(vars.iter().copied())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    let head = git(&work, &["rev-parse", "HEAD"]).trim().to_string();
    assert!(
        git(&work, &["log", "-1", "--format=%s"]).starts_with("promote envs/staging -> envs/prod")
    );
    d.pushed(&remote).await;
    wait_description(&prod, "translate", "v2").await;
    let p = d
        .wait_status("prod", "the promotion applied", |s| {
            s["revision"] == head.as_str()
        })
        .await;
    assert_eq!(p["last_result"]["counts"]["create"], 1, "{p:#}");
    // Staging reads nothing the promotion changed.
    let s = d
        .wait_status("staging", "the head", |s| s["head"] == head.as_str())
        .await;
    assert_eq!(s["revision"], staging_rev);
    // The promoted credential is prod's: the document in Git decrypts with prod's key only,
    // and the prod gateway's export of it decrypts to the same header.
    let promoted = git(&work, &["show", "HEAD:envs/prod/promoted.yaml"]);
    assert!(!promoted.contains("CANARY") && !promoted.contains(&credential));
    let out = prod
        .cmd()
        .args([
            "export",
            "--user",
            "admin@example.com",
            "--types",
            "tools",
            "--out",
            "prod.json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = common::read_json(&prod.dir.path().join("prod.json"));
    let value = doc["entities"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "translate")
        .unwrap()["auth_value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        prod.decode_auth(&[&value], None)[0]["Authorization"],
        "Bearer CANARY-translate"
    );
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("CANARY"));
}

#[test]
fn a_bad_configuration_is_refused_before_anything_starts() {
    let t = tempfile::tempdir().unwrap();
    let config = write_config(
        t.path(),
        "listen: 127.0.0.1:0\nstate_dir: state\nenvironments:\n  - {name: prod, source: {dir: nowhere}, interval: often}\n  - {name: prod, source: {git: {url: /srv/x.git}}, backup: {schedule: '61 * * * *', path: b.json}}\n",
    );
    let bin = || {
        let mut c = assert_cmd::Command::cargo_bin("mcp-gitops").unwrap();
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        c
    };
    let out = bin()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = config.display().to_string();
    assert!(
        err.starts_with(&format!("error: {file}: 6 problems")),
        "{err}"
    );
    for want in [
        "/environments/0/source/dir: ",
        "/environments/0/interval: 'often' is not a duration",
        "/environments/1/name: 'prod' is used twice",
        "/environments/1/backup/schedule: '61 * * * *' is not a cron schedule",
        "/environments/1/backup/path: 'b.json' is inside the environment's source (the whole repository) on the same branch",
        "/environments/1/gateway: is required for a Git source",
    ] {
        assert!(err.contains(&format!("{file}: {want}")), "{want}: {err}");
    }
    assert!(!t.path().join("state").exists(), "nothing may start");

    std::fs::create_dir_all(t.path().join("envs/dev")).unwrap();
    let config = write_config(
        t.path(),
        "environments:\n  - {name: dev, source: {dir: envs/dev}, interval: 5m, mode: observe}\n",
    );
    let out = bin()
        .args(["run", "--check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(": OK"), "{text}");
    assert!(text.contains("dev: directory "), "{text}");
    assert!(text.contains("every 300s, mode observe"), "{text}");
    assert!(text.contains("listen 127.0.0.1:9090"), "{text}");
}

/// Run `cmd` with at most `files` open files (soft and hard limit).
fn limit_files(cmd: &mut std::process::Command, files: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec the child only calls setrlimit, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let r = libc::rlimit {
                rlim_cur: files,
                rlim_max: files,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &r) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// A client that opens a new connection for every request (the listener may close idle ones).
fn unpooled() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// The value of the metric line starting with `name` (labels included).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// Read from `r` up to the end of a response head (or EOF); the text read.
async fn read_head(r: &mut (impl tokio::io::AsyncRead + Unpin)) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    while !out.windows(4).any(|w| w == b"\r\n\r\n") {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

/// Whether the peer closes `r` within `within` (EOF or reset), reading what it sends.
async fn closes(r: &mut (impl tokio::io::AsyncRead + Unpin), within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_flood_under_a_low_file_limit_starves_neither_the_listener_nor_the_reconciles() {
    let gw = Gateway::start();
    let root = gw.dir.path();
    let dev = root.join("envs/dev");
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::write(dev.join("mcp-gitops.yaml"), ENV_CONFIG).unwrap();
    std::fs::write(dev.join("tools.yaml"), tool_doc("dev-api", "v1", "GET")).unwrap();
    // Timeouts out of the way: the cap alone must hold the flood.
    let config = write_config(
        root,
        "listen: 127.0.0.1:0\nstate_dir: state\napi: {open_status: true, open_metrics: true}\nlistener: {header_timeout: 1h, idle_timeout: 1h}\nenvironments:\n  - {name: dev, source: {dir: envs/dev}, interval: 1s}\n",
    );
    let mut cmd = Daemon::command(&gw, &config, &[]);
    limit_files(&mut cmd, 200);
    let mut d = Daemon::spawn(cmd);
    d.http = unpooled();
    let at = d.proc.wait_log(0, "daemon: listener: ");
    let line = d.proc.line(at);
    assert!(
        line.contains(
            "up to 104 connections (file limit 200, 96 kept for reconciles, backups and state)"
        ),
        "{line}"
    );
    d.wait_ready().await;
    let before = d.status("dev").await["cycles"].as_u64().unwrap();

    // 300 connections that send nothing: more than the cap, more than the file limit.
    // All at once: the listener must not outrun the closing of the connections it evicts.
    let connects = (0..300).map(|_| tokio::net::TcpStream::connect(&d.addr));
    let idle: Vec<_> = futures::future::join_all(connects)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let started = Instant::now();
    let health = tokio::time::timeout(Duration::from_secs(2), d.get("/healthz"))
        .await
        .unwrap_or_else(|_| panic!("/healthz took over 2 s:\n{}", d.text()));
    assert_eq!(health.0, 200);
    eprintln!("/healthz after the flood: {:?}", started.elapsed());
    let fds = std::fs::read_dir(format!("/proc/{}/fd", d.proc.pid()))
        .unwrap()
        .count();
    let (_, m) = d.get("/metrics").await;
    let open = metric(&m, "mcp_gitops_http_connections");
    let evicted = metric(
        &m,
        r#"mcp_gitops_http_connections_closed_total{reason="evicted"}"#,
    );
    eprintln!("open files {fds}, connections {open}, evicted {evicted}");
    assert!(open <= 104.0, "{open} connections");
    assert!(evicted >= 190.0, "{evicted} evicted");
    assert!(fds <= 200 - 64, "{fds} files open: the reserve is used up");

    // With the flood still connected, reconciles go on, apply an edit, and save the state.
    std::fs::write(dev.join("tools.yaml"), tool_doc("dev-api", "v2", "GET")).unwrap();
    wait_description(&gw, "dev-api", "v2").await;
    let s = d
        .wait_status("dev", "two more cycles", |s| {
            s["cycles"].as_u64().unwrap() >= before + 2 && s["last_result"]["outcome"] == "in_sync"
        })
        .await;
    let state = common::read_json(&root.join("state/state.json"));
    assert!(
        state["environments"][0]["cycles"].as_u64().unwrap() > before,
        "{state:#} {s:#}"
    );
    drop(idle);
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("Too many open files"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_oversized_and_wrongly_signed_requests_are_cut_off_without_holding_up_signed_pushes() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    // No gateway needed: the listener answers whatever the environment's cycles do.
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let (remote, work) = repository(root);
    push_prod(&work, "prod-api");
    let config = write_config(
        root,
        "listen: 127.0.0.1:0\nstate_dir: state\napi: {open_status: true, open_metrics: true}\nwebhook: {secret: {env: HOOK_SECRET}, rate_limit: 5}\nlistener: {header_timeout: 3s, idle_timeout: 1s, body_timeout: 2s}\nenvironments:\n  - {name: prod, source: {git: {url: config.git, path: envs/prod}}, interval: 1h, gateway: {url: \"http://127.0.0.1:9\", token: {env: HOOK_SECRET}}}\n",
    );
    let mut cmd = Logged::command(&["run", "--config"]);
    let nowhere = format!("http://127.0.0.1:{}", common::free_port());
    cmd.arg(&config)
        .env("HOME", root)
        .env("GW_URL", &nowhere)
        .env(
            "JWT_SECRET_KEY",
            "jwt-secret-of-a-gateway-that-is-not-there",
        )
        .env(
            "AUTH_ENCRYPTION_SECRET",
            "key-of-a-gateway-that-is-not-there",
        )
        .env("HOOK_SECRET", HOOK);
    let mut d = Daemon::spawn(cmd);
    d.http = unpooled();
    let signed = "X-Hub-Signature-256: sha256=00\r\n";

    // (b) A declared 1 GiB body: 413 at once, nothing read, the connection closed.
    let mut s = TcpStream::connect(&d.addr).await.unwrap();
    let head = format!(
        "POST /hooks/git HTTP/1.1\r\nHost: mcp-gitops\r\nContent-Type: application/json\r\n{signed}Content-Length: 1073741824\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(1), read_head(&mut s))
        .await
        .expect("an answer within a second");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(closes(&mut s, Duration::from_secs(1)).await);

    // A chunked body is cut at the limit: 413, and the connection is closed while the client
    // still has 64 MiB to send.
    let (mut rd, mut wr) = TcpStream::connect(&d.addr).await.unwrap().into_split();
    let head = format!(
        "POST /hooks/git HTTP/1.1\r\nHost: mcp-gitops\r\n{signed}Transfer-Encoding: chunked\r\n\r\n"
    );
    wr.write_all(head.as_bytes()).await.unwrap();
    let writer = tokio::spawn(async move {
        let chunk = format!("{:x}\r\n{}\r\n", 1 << 20, "a".repeat(1 << 20));
        let mut sent = 0;
        while sent < 64 && wr.write_all(chunk.as_bytes()).await.is_ok() {
            sent += 1;
        }
        sent
    });
    let answer = tokio::time::timeout(Duration::from_secs(10), read_head(&mut rd))
        .await
        .expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let sent = tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .expect("the server closed the connection")
        .unwrap();
    assert!(sent < 64, "the whole body was read");

    // A body that stops coming: 408 after body_timeout.
    let mut s = TcpStream::connect(&d.addr).await.unwrap();
    let head = format!(
        "POST /hooks/git HTTP/1.1\r\nHost: mcp-gitops\r\n{signed}Content-Length: 100\r\n\r\n{{\"ref\":"
    );
    let started = Instant::now();
    s.write_all(head.as_bytes()).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(6), read_head(&mut s))
        .await
        .expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );

    // (c) Slowloris: a head sent a byte every 200 ms is cut off after header_timeout (3 s),
    // although bytes keep coming (so the 1 s idle timeout never applies).
    let (mut rd, mut wr) = TcpStream::connect(&d.addr).await.unwrap().into_split();
    let started = Instant::now();
    wr.write_all(b"GET /healthz HTTP/1.1\r\nHost: mcp-gitops\r\nX-Slow: ")
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        while wr.write_all(b"a").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    assert!(
        closes(&mut rd, Duration::from_secs(10)).await,
        "never cut off"
    );
    let took = started.elapsed();
    trickle.abort();
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_secs(8),
        "closed after {took:?}"
    );
    // A kept-alive connection with nothing more to say is closed after idle_timeout (1 s).
    let mut s = TcpStream::connect(&d.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: mcp-gitops\r\n\r\n")
        .await
        .unwrap();
    assert!(read_head(&mut s).await.starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    assert!(closes(&mut s, Duration::from_secs(5)).await);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2900),
        "closed after {took:?}"
    );

    // (d) A burst of unsigned and wrongly signed requests (more than rate_limit) is throttled
    // per client; a signed push still goes through.
    let mut codes = Vec::new();
    for i in 0..30 {
        let sign = if i % 2 == 0 { Sign::None } else { Sign::Wrong };
        codes.push(d.hook(&push_event(&remote), sign).await.status().as_u16());
    }
    assert_eq!(&codes[..10], &[401; 10], "{codes:?}");
    assert_eq!(&codes[10..], &[429; 20], "{codes:?}");
    let r = d.hook(&push_event(&remote), Sign::Good).await;
    assert_eq!(r.status().as_u16(), 202, "{:?}", r.text().await);
    let (_, m) = d.get("/metrics").await;
    for (result, n) in [
        ("unauthorized", 10.0),
        ("throttled", 20.0),
        ("accepted", 1.0),
        ("bad_request", 2.0),
    ] {
        let name = format!(r#"mcp_gitops_webhook_requests_total{{result="{result}"}}"#);
        assert_eq!(metric(&m, &name), n, "{result}");
    }
    assert!(
        metric(
            &m,
            r#"mcp_gitops_http_connections_closed_total{reason="header_timeout"}"#
        ) >= 1.0
    );
    assert!(
        metric(
            &m,
            r#"mcp_gitops_http_connections_closed_total{reason="idle"}"#
        ) >= 1.0
    );
}

/// Nothing ever connected to `l` (a non-blocking listener the test holds).
fn never_contacted(l: &std::net::TcpListener) {
    match l.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((_, from)) => panic!("the daemon connected to the repository's URL (from {from})"),
        Err(e) => panic!("{e}"),
    }
}

/// Push `files`, send the webhook, and wait until prod rejects that commit; its status.
async fn rejected(d: &Daemon, remote: &Path, work: &Path, files: &[(&str, String)]) -> Value {
    let c = push(work, files, "an attempt");
    d.pushed(remote).await;
    let s = d
        .wait_status("prod", "the commit rejected", |s| {
            s["source_error"]["revision"] == c.as_str()
        })
        .await;
    assert_eq!(s["source_error"]["reason"], "invalid", "{s:#}");
    assert_eq!(s["health"], "failed", "{s:#}");
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_cannot_send_the_daemons_secrets_elsewhere_and_backups_keep_daemon_yamls_gateway()
{
    let gw = Gateway::start();
    let root = gw.dir.path();
    let (remote, work) = repository(root);
    // The daemon's credential: a token in a file of the secrets directory, reached through a
    // symbolic link inside it. A planted secret outside it.
    let secrets = root.join("secrets");
    std::fs::create_dir_all(secrets.join("tokens")).unwrap();
    std::fs::write(secrets.join("tokens/prod"), gw.token()).unwrap();
    std::os::unix::fs::symlink(secrets.join("tokens/prod"), secrets.join("prod-token")).unwrap();
    let planted = root.join("planted-secret");
    std::fs::write(&planted, "PLANTED-host-secret").unwrap();
    let thief = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    thief.set_nonblocking(true).unwrap();
    let thief_url = format!("http://{}", thief.local_addr().unwrap());

    let c1 = push(
        &work,
        &[
            ("envs/prod/mcp-gitops.yaml", DESIRED.into()),
            (
                "envs/prod/tools.yaml",
                tool_doc("prod-api", "v1", "GET")
                    .replace("https://prod-api.example.com", "https://${WEATHER_HOST}"),
            ),
        ],
        "prod",
    );
    let config = write_config(
        root,
        "listen: 127.0.0.1:0\nstate_dir: state\napi: {open_status: true, open_metrics: true}\nsecrets_dir: secrets\nwebhook: {secret: {env: HOOK_SECRET}}\nenvironments:\n  - name: prod\n    source: {git: {url: config.git, path: envs/prod}}\n    gateway: {url: '${GW_URL}', token: {file: prod-token}, secret: {env: AUTH_ENCRYPTION_SECRET}}\n    allowed_env: [WEATHER_HOST]\n    interval: 1s\n    backup: {schedule: '*/2 * * * * *', path: prod.json, git: {branch: backups}}\n",
    );
    let d = Daemon::start_with(&gw, &config, &[("WEATHER_HOST", "weather.example.com")]);
    let s = d
        .wait_status("prod", "c1 applied", |s| s["revision"] == c1.as_str())
        .await;
    assert_eq!(s["gateway"], gw.url.as_str(), "{s:#}");
    let t = tools(&gw).await;
    let tool = t.iter().find(|t| t["name"] == "prod-api").unwrap();
    assert_eq!(
        tool["url"], "https://weather.example.com/v1",
        "an allowed variable"
    );
    d.wait_status("prod", "a backup with the file token", |s| {
        s["backup"]["last"]["outcome"] == "committed"
    })
    .await;

    // A commit naming another gateway and a host file as the token.
    let hostile = format!(
        "gateway: {thief_url}\ntoken: {{file: {}}}\n",
        planted.display()
    );
    let s = rejected(
        &d,
        &remote,
        &work,
        &[
            ("envs/prod/mcp-gitops.yaml", hostile),
            ("envs/prod/tools.yaml", tool_doc("prod-api", "v2", "GET")),
        ],
    )
    .await;
    let err = s["source_error"]["error"].as_str().unwrap();
    assert!(
        err.contains("envs/prod/mcp-gitops.yaml: the repository may not choose this environment's gateway or credentials")
            && err.contains(&format!("gateway {thief_url}"))
            && err.contains(&format!("token {{file: {}}}", planted.display())),
        "{err}"
    );
    assert_eq!(s["revision"], c1.as_str(), "{s:#}");
    assert_eq!(s["gateway"], gw.url.as_str(), "{s:#}");

    // One that signs a JWT with the webhook's secret (the daemon's variable HOOK_SECRET).
    let s = rejected(
        &d,
        &remote,
        &work,
        &[(
            "envs/prod/mcp-gitops.yaml",
            format!(
                "gateway: {thief_url}\nuser: admin@example.com\njwt_secret: {{env: HOOK_SECRET}}\n"
            ),
        )],
    )
    .await;
    let err = s["source_error"]["error"].as_str().unwrap();
    assert!(err.contains("jwt_secret {env: HOOK_SECRET}"), "{err}");

    // One that puts the webhook's secret into the desired state with ${VAR}.
    let s = rejected(
        &d,
        &remote,
        &work,
        &[
            ("envs/prod/mcp-gitops.yaml", DESIRED.into()),
            (
                "envs/prod/tools.yaml",
                tool_doc("prod-api", "${HOOK_SECRET}", "GET"),
            ),
        ],
    )
    .await;
    let err = s["source_error"]["error"].as_str().unwrap();
    assert!(
        err.contains("envs/prod/tools.yaml: ${HOOK_SECRET}: not in this environment's allowed_env"),
        "{err}"
    );

    // The last good state stays in force, on daemon.yaml's gateway; backups go on with it.
    delete_tool(&gw, "prod-api").await;
    wait_description(&gw, "prod-api", "v1").await;
    let after = d.status("prod").await["backup"]["last"]["at"].clone();
    let s = d
        .wait_status("prod", "a backup after the attempts", |s| {
            s["backup"]["last"]["at"] != after
        })
        .await;
    assert_ne!(s["backup"]["last"]["outcome"], "failed", "{s:#}");
    let backup = git(&remote, &["show", "backups:prod.json"]);
    assert!(backup.contains("prod-api"), "{backup}");
    never_contacted(&thief);
    let status_text = d.get("/status").await.1;
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    for text in [&log, &status_text, &backup] {
        assert!(!text.contains("PLANTED") && !text.contains(HOOK), "{text}");
        assert!(!text.contains(&gw.token()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bases_may_not_leave_the_checkout() {
    let gw = Gateway::start();
    let root = gw.dir.path();
    let (remote, work) = repository(root);
    // An environment directory on the daemon's host, outside the repository.
    let outside = root.join("outside-env");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("mcp-gitops.yaml"), DESIRED).unwrap();
    std::fs::write(outside.join("tools.yaml"), tool_doc("planted", "x", "GET")).unwrap();
    let c1 = push_prod(&work, "prod-api");
    let config = write_config(
        root,
        "listen: 127.0.0.1:0\nstate_dir: state\napi: {open_status: true, open_metrics: true}\nwebhook: {secret: {env: HOOK_SECRET}}\nenvironments:\n  - {name: prod, source: {git: {url: config.git, path: envs/prod}}, interval: 1h, @GATEWAY}\n",
    );
    let d = Daemon::start(&gw, &config);
    d.wait_status("prod", "c1 applied", |s| s["revision"] == c1.as_str())
        .await;
    let with_bases = |bases: &str| format!("{DESIRED}bases: [{bases}]\n");
    // The checkout is state/checkouts/<tmp>: five levels up from envs/prod is the daemon's
    // directory.
    let up = "../../../../../outside-env";
    let s = rejected(
        &d,
        &remote,
        &work,
        &[("envs/prod/mcp-gitops.yaml", with_bases(up))],
    )
    .await;
    let err = s["source_error"]["error"].as_str().unwrap();
    assert!(
        err.contains("outside-env") && err.contains("outside"),
        "{err}"
    );
    // Through a base inside the repository whose own base leaves it.
    let s = rejected(
        &d,
        &remote,
        &work,
        &[
            ("envs/prod/mcp-gitops.yaml", with_bases("../base")),
            ("envs/base/mcp-gitops.yaml", with_bases(up)),
        ],
    )
    .await;
    let err = s["source_error"]["error"].as_str().unwrap();
    assert!(
        err.contains("is outside the checkout of") && err.contains("outside-env"),
        "{err}"
    );
    // Through a symbolic link committed into the repository.
    std::os::unix::fs::symlink(&outside, work.join("envs/link")).unwrap();
    let s = rejected(
        &d,
        &remote,
        &work,
        &[("envs/prod/mcp-gitops.yaml", with_bases("../link"))],
    )
    .await;
    let err = s["source_error"]["error"].as_str().unwrap();
    assert!(
        err.contains("envs/prod/../link") && err.contains("cannot read"),
        "not laid out: {err}"
    );
    assert_eq!(s["revision"], c1.as_str(), "{s:#}");
    let t = tools(&gw).await;
    assert!(description(&t, "planted").is_none(), "{t:?}");
    assert_eq!(description(&t, "prod-api").as_deref(), Some("v1"));
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
}

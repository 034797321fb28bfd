//! The daemon's HTTP listener (axum): `POST /hooks/git` (signed push webhooks trigger an
//! immediate fetch), `GET /healthz`, `GET /readyz`, `GET /status` and `GET /metrics`. Handlers
//! only read shared state or send triggers: the work happens in the environments' workers.
//! [`listen`] serves them with the listener's limits.

pub mod api;
pub mod hooks;
pub mod jobs;
pub mod listen;
pub mod ui;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde_json::json;
use tokio::net::TcpListener;

use crate::daemon::log_line;

use crate::daemon::config::DaemonConfig;
use crate::daemon::metrics::Metrics;
use crate::daemon::status::EnvShared;
use crate::daemon::worker::Trigger;
use crate::daemon::{EnvHandle, GatewayHandle, Served, listener};
use api::Role;
use hooks::{Failures, HookSecret, Window};

/// The largest webhook body read (GitHub caps payloads at 25 MB; pushes are far smaller).
pub const MAX_HOOK_BODY: usize = 5 * 1024 * 1024;

/// The webhook's secret, the rate limit of signed requests and the per-client count of
/// wrongly signed ones.
pub struct HookState {
    pub secret: HookSecret,
    pub window: std::sync::Mutex<Window>,
    pub failures: std::sync::Mutex<Failures>,
}

/// Everything the handlers share.
pub struct AppState {
    pub envs: Vec<EnvHandle>,
    /// `api.gateways`: export and import only.
    pub gateways: Vec<GatewayHandle>,
    /// Tokens, limits and what is open (`daemon.yaml`'s `api`).
    pub api: api::ApiState,
    pub metrics: Arc<Metrics>,
    pub hook: Option<HookState>,
    /// Set once a stop was asked for: not ready any more.
    pub draining: Arc<AtomicBool>,
    /// A webhook body must arrive within this.
    pub body_timeout: Duration,
    /// The web UI (None: daemon.yaml has no `ui:` section).
    pub ui: Option<ui::Ui>,
}

/// Start serving the daemon's routes on `listener` with `daemon.yaml`'s listener limits until
/// `stop` turns true (`daemon::serve` calls it).
pub fn start(
    listener: TcpListener,
    cfg: &DaemonConfig,
    served: Served,
    stop: tokio::sync::watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send + use<> {
    let metrics = served.metrics.clone();
    let served_jobs = served.jobs.clone();
    let app = Arc::new(AppState {
        envs: served.envs,
        gateways: served.gateways,
        api: api::ApiState::new(&cfg.api),
        metrics: served.metrics,
        hook: cfg.webhook.as_ref().map(|w| HookState {
            secret: w.secret.clone(),
            window: std::sync::Mutex::new(hooks::window(w.per_minute)),
            failures: std::sync::Mutex::new(Failures::new(w.failures_per_minute)),
        }),
        draining: served.draining,
        body_timeout: cfg.listener.body_timeout,
        ui: cfg.ui.as_ref().map(|u| ui::Ui {
            sessions: ui::session::Sessions::new(
                &session_key(u.session_key.as_deref(), &cfg.state_dir),
                u.session_ttl.as_secs(),
            ),
            secure_cookies: false,
            jobs: std::sync::OnceLock::new(),
            uploads: Default::default(),
            exports: Default::default(),
            login_failures: std::sync::Mutex::new(Failures::new(ui::login::FAILURES_PER_MINUTE)),
        }),
    });
    let cap = listener::Cap::new(
        cfg.listener.max_connections,
        listener::file_limit(),
        cfg.environments.len(),
    );
    log_line(
        "daemon",
        &format!("listener: {}", cap.describe(&cfg.listener)),
    );
    let limits = listen::Limits {
        max_connections: cap.connections,
        max_body: cfg.api.body_limit.max(MAX_HOOK_BODY),
        header_timeout: cfg.listener.header_timeout,
        idle_timeout: cfg.listener.idle_timeout,
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let names: Vec<&str> = cfg.environments.iter().map(|e| e.name.as_str()).collect();
    log_line(
        "daemon",
        &format!(
            "listening on {addr}; {} environment{}: {}",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        ),
    );
    let jobs = Arc::new(jobs::wire::build(cfg, &app, served_jobs));
    if let Some(ui) = &app.ui {
        let _ = ui.jobs.set(jobs.clone());
    }
    let jobs = jobs::routes(jobs)
        .layer(axum::extract::DefaultBodyLimit::max(app.api.body_limit))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            jobs::wire::require,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            api::auth::guard,
        ));
    listen::serve(listener, router(app).merge(jobs), limits, metrics, stop)
}

/// The key UI sessions are signed with: daemon.yaml's, else `ui-session.key` in the state
/// directory (created 0600 with 32 random bytes on first use, kept across restarts).
fn session_key(configured: Option<&str>, state_dir: &std::path::Path) -> Vec<u8> {
    if let Some(k) = configured {
        return k.as_bytes().to_vec();
    }
    let path = state_dir.join("ui-session.key");
    if let Ok(k) = std::fs::read_to_string(&path)
        && let Some(bytes) = crate::core::digest::unhex(k.trim())
        && bytes.len() >= 32
    {
        return bytes;
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the system's random source");
    let written = tempfile::NamedTempFile::new_in(state_dir).and_then(|mut f| {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        f.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(crate::core::digest::hex(&key).as_bytes())?;
        f.persist(&path).map_err(|e| e.error)
    });
    if let Err(e) = written {
        log_line(
            "daemon",
            &format!(
                "cannot keep the UI's session key in {}: {e}; sessions end with this process",
                path.display()
            ),
        );
    }
    key.to_vec()
}

/// The routes: health and readiness (always open), the webhook (signed), status and metrics
/// (authenticated unless `api.open_status` / `api.open_metrics`), and the API. Every route but
/// health, readiness and the webhook is rate limited per client and body limited.
pub fn router(state: Arc<AppState>) -> Router {
    let guarded = Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .merge(api::routes())
        .layer(axum::extract::DefaultBodyLimit::max(state.api.body_limit))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::auth::guard,
        ));
    Router::new()
        .merge(ui::routes())
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/hooks/git", post(git_hook))
        .merge(guarded)
        .fallback(|| async {
            api::ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
        })
        .with_state(state)
}

/// A route that `open` opens to everyone, else to any authenticated caller.
fn viewer_unless_open(
    s: &AppState,
    open: bool,
    parts: &axum::http::request::Parts,
) -> Result<(), api::ApiError> {
    if open {
        return Ok(());
    }
    let c = api::auth::caller(s, parts)?;
    api::auth::allow(&c, Role::Viewer)
}

async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    let waiting: Vec<&str> = s
        .envs
        .iter()
        .filter(|e| !e.shared.is_ready())
        .map(|e| e.shared.name.as_str())
        .collect();
    let draining = s.draining.load(Ordering::SeqCst);
    let ready = waiting.is_empty() && !draining;
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({"ready": ready, "draining": draining, "waiting_for": waiting})),
    )
        .into_response()
}

async fn status(State(s): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    if let Err(e) = viewer_unless_open(&s, s.api.open_status, &parts) {
        return e.into_response();
    }
    let envs: Vec<_> = s.envs.iter().map(|e| e.shared.status()).collect();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "draining": s.draining.load(Ordering::SeqCst),
        "environments": envs,
    }))
    .into_response()
}

async fn metrics(State(s): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    if let Err(e) = viewer_unless_open(&s, s.api.open_metrics, &parts) {
        return e.into_response();
    }
    let shared: Vec<Arc<EnvShared>> = s.envs.iter().map(|e| e.shared.clone()).collect();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(&shared),
    )
        .into_response()
}

fn refuse(s: &AppState, code: StatusCode, result: &str, message: &str) -> Response {
    s.metrics.webhook(result);
    (code, Json(json!({"error": message}))).into_response()
}

fn too_many(s: &AppState, result: &str, wait: Duration, message: &str) -> Response {
    s.metrics.webhook(result);
    let secs = wait.as_secs().max(1).to_string();
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, secs)],
        Json(json!({"error": message})),
    )
        .into_response()
}

/// Why a webhook body could not be read.
enum BodyError {
    TooLarge,
    TimedOut,
    Broken,
}

/// The body, at most [`MAX_HOOK_BODY`] bytes (a chunked body is cut there), within `timeout`.
async fn read_body(body: Body, timeout: Duration) -> Result<Bytes, BodyError> {
    let read = async {
        let mut stream = body.into_data_stream();
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| BodyError::Broken)?;
            if out.len() + chunk.len() > MAX_HOOK_BODY {
                return Err(BodyError::TooLarge);
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(out))
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(BodyError::TimedOut))
}

async fn git_hook(State(s): State<Arc<AppState>>, request: Request) -> Response {
    let Some(hook) = &s.hook else {
        return refuse(
            &s,
            StatusCode::NOT_FOUND,
            "disabled",
            "webhooks are off: daemon.yaml sets no webhook.secret",
        );
    };
    let (parts, body) = request.into_parts();
    let client = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let headers = parts.headers;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (signature, gitlab) = (header("x-hub-signature-256"), header("x-gitlab-token"));
    // Without either header nothing can match: the body is not even read.
    let body = if signature.is_none() && gitlab.is_none() {
        Bytes::new()
    } else {
        match read_body(body, s.body_timeout).await {
            Ok(b) => b,
            Err(e) => {
                let (code, why) = match e {
                    BodyError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
                    BodyError::TimedOut => {
                        (StatusCode::REQUEST_TIMEOUT, "body not received in time")
                    }
                    BodyError::Broken => (StatusCode::BAD_REQUEST, "body not received"),
                };
                let mut r = refuse(&s, code, "bad_request", why);
                r.headers_mut().insert(
                    header::CONNECTION,
                    header::HeaderValue::from_static("close"),
                );
                return r;
            }
        }
    };
    // The signature first: a wrongly signed request only counts against its own client.
    if let Err(why) = hook.secret.check(&body, signature, gitlab) {
        let counted = hook
            .failures
            .lock()
            .expect("failures lock")
            .record(client, Instant::now());
        return match counted {
            Ok(()) => refuse(&s, StatusCode::UNAUTHORIZED, "unauthorized", why),
            Err(wait) => too_many(
                &s,
                "throttled",
                wait,
                "too many wrongly signed webhook requests from this address",
            ),
        };
    }
    let admitted = hook
        .window
        .lock()
        .expect("window lock")
        .admit(Instant::now());
    if let Err(wait) = admitted {
        return too_many(&s, "rate_limited", wait, "too many webhook requests");
    }
    let event = header("x-github-event")
        .or_else(|| header("x-gitea-event"))
        .unwrap_or("push");
    if event == "ping" {
        s.metrics.webhook("accepted");
        return (StatusCode::OK, Json(json!({"pong": true}))).into_response();
    }
    let push = hooks::parse_push(&body);
    let mut triggered = Vec::new();
    for e in &s.envs {
        if let Some((url, branch)) = &e.git
            && push.concerns(url, branch)
            && e.trigger.send(Trigger::Fetch).is_ok()
        {
            triggered.push(e.shared.name.clone());
        }
    }
    s.metrics.webhook("accepted");
    (StatusCode::ACCEPTED, Json(json!({"triggered": triggered}))).into_response()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_ui_session_key_is_generated_once_0600_unless_configured() {
        let dir = tempfile::tempdir().unwrap();
        let a = super::session_key(None, dir.path());
        assert_eq!(a.len(), 32);
        let file = dir.path().join("ui-session.key");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            super::session_key(None, dir.path()),
            a,
            "kept across restarts"
        );
        let configured = "k".repeat(40);
        assert_eq!(
            super::session_key(Some(&configured), dir.path()),
            configured.as_bytes()
        );
    }
}

//! The daemon's HTTP listener (axum): `POST /hooks/git` (signed push webhooks trigger an
//! immediate fetch), `GET /healthz`, `GET /readyz`, `GET /status` and `GET /metrics`. Handlers
//! only read shared state or send triggers: the work happens in the environments' workers.

pub mod hooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::mpsc;

use crate::daemon::metrics::Metrics;
use crate::daemon::status::EnvShared;
use crate::daemon::worker::Trigger;
use hooks::{HookSecret, Window};

/// The largest webhook body read (GitHub caps payloads at 25 MB; pushes are far smaller).
pub const MAX_HOOK_BODY: usize = 5 * 1024 * 1024;

/// One environment as the listener sees it.
pub struct EnvHandle {
    pub shared: Arc<EnvShared>,
    pub trigger: mpsc::UnboundedSender<Trigger>,
    /// The repository URL and branch a Git source reads (None for directories).
    pub git: Option<(String, String)>,
}

/// The webhook's secret and rate limit.
pub struct HookState {
    pub secret: HookSecret,
    pub window: std::sync::Mutex<Window>,
}

/// Everything the handlers share.
pub struct AppState {
    pub envs: Vec<EnvHandle>,
    pub metrics: Arc<Metrics>,
    pub hook: Option<HookState>,
    /// Set once a stop was asked for: not ready any more.
    pub draining: AtomicBool,
}

/// The routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/hooks/git", post(git_hook))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_HOOK_BODY))
        .with_state(state)
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

async fn status(State(s): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let envs: Vec<_> = s.envs.iter().map(|e| e.shared.status()).collect();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "draining": s.draining.load(Ordering::SeqCst),
        "environments": envs,
    }))
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
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

async fn git_hook(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(hook) = &s.hook else {
        return refuse(
            &s,
            StatusCode::NOT_FOUND,
            "disabled",
            "webhooks are off: daemon.yaml sets no webhook.secret",
        );
    };
    let admitted = hook
        .window
        .lock()
        .expect("window lock")
        .admit(Instant::now());
    if let Err(wait) = admitted {
        s.metrics.webhook("rate_limited");
        let secs = wait.as_secs().max(1).to_string();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs)],
            Json(json!({"error": "too many webhook requests"})),
        )
            .into_response();
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let checked = hook.secret.check(
        &body,
        header("x-hub-signature-256"),
        header("x-gitlab-token"),
    );
    if let Err(why) = checked {
        return refuse(&s, StatusCode::UNAUTHORIZED, "unauthorized", why);
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

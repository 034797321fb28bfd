//! The HTTP API's import side: import preview, import as an asynchronous job, jobs (list,
//! status, server-sent events, cleanup), bulk tool import, and ContextForge's own import and
//! export routes for one chosen environment. Handlers parse, call the engine
//! (`engine::import`, `engine::jobs`, `engine::bulk`, `engine::export`) and render.

mod body;
pub mod compat;
mod handlers;
pub mod multipart;
pub mod wire;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::core::document::validate::Problem;
use crate::core::policy::Mode;
use crate::core::window::SlidingWindow;
use crate::engine::apply::Keys;
use crate::engine::envlock;
use crate::engine::jobs::{JobStore, JobTarget};
use crate::gateway::Client;

pub use crate::daemon::api_config::DEFAULT_JOB_MAX_AGE;
/// Tools one bulk request may carry (the gateway's own limit).
pub const DEFAULT_BULK_MAX: usize = 200;
/// Bulk requests per client address and minute (the gateway's own limit).
pub const DEFAULT_BULK_RATE: u32 = 10;

/// How an import reaches a target.
#[derive(Clone, Debug)]
pub enum Route {
    /// Written to the gateway directly (an `observe` environment, a source-less gateway).
    Direct,
    /// Refused with 409: the reason (an `auto` environment is kept at its source).
    Refuse(String),
}

/// A target, resolved for one request.
#[derive(Clone)]
pub struct Resolved {
    pub client: Client,
    /// The target's keys: the document is taken to be encrypted with its key unless the
    /// request says otherwise.
    pub keys: Keys,
    pub route: Route,
    /// The environment's reconcile lock, taken for the whole job (None: a gateway).
    pub lock: Option<envlock::Key>,
    /// The target's one-writer guard in this process (the worker takes it for every cycle).
    pub writer: Option<Writer>,
}

/// Where a target's one-writer guard lives.
#[derive(Clone)]
pub enum Writer {
    Env(Arc<crate::daemon::status::EnvShared>),
    Gateway(Arc<crate::http::AppState>, usize),
}

impl Writer {
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        match self {
            Writer::Env(s) => s.writer.lock().await,
            Writer::Gateway(app, i) => app.gateways[*i].writer.lock().await,
        }
    }
}

/// A target the API can import into; `resolve` reads its current connection.
pub struct TargetEntry {
    pub target: JobTarget,
    pub resolve: Box<dyn Fn() -> Result<Resolved, ApiError> + Send + Sync>,
}

/// What the import routes share.
pub struct JobsApi {
    pub store: Arc<JobStore>,
    pub targets: Vec<TargetEntry>,
    /// The target behind ContextForge's own routes.
    pub compat: Option<JobTarget>,
    pub max_age: Duration,
    pub bulk_max: usize,
    pub bulk_per_minute: u32,
    pub bulk_windows: Mutex<HashMap<IpAddr, SlidingWindow>>,
    /// How long a job waits for the environment's reconcile to finish.
    pub lock_timeout: Duration,
}

impl JobsApi {
    pub fn new(store: Arc<JobStore>, targets: Vec<TargetEntry>) -> JobsApi {
        JobsApi {
            store,
            targets,
            compat: None,
            max_age: DEFAULT_JOB_MAX_AGE,
            bulk_max: DEFAULT_BULK_MAX,
            bulk_per_minute: DEFAULT_BULK_RATE,
            bulk_windows: Mutex::new(HashMap::new()),
            lock_timeout: Duration::from_secs(300),
        }
    }

    pub(crate) fn find(&self, t: &JobTarget) -> Result<Resolved, ApiError> {
        let e = self
            .targets
            .iter()
            .find(|e| &e.target == t)
            .ok_or_else(|| ApiError::NotFound(format!("no {t} in daemon.yaml")))?;
        (e.resolve)()
    }

    /// Admit one bulk request from `ip`, or say how long to wait.
    pub(crate) fn admit_bulk(&self, ip: IpAddr) -> Result<(), Duration> {
        let mut w = self.bulk_windows.lock().expect("bulk windows");
        if w.len() > 10_000 {
            w.clear();
        }
        w.entry(ip)
            .or_insert_with(|| SlidingWindow::new(self.bulk_per_minute as usize))
            .admit(std::time::Instant::now())
    }
}

/// The route's refusal, as a JSON body `{"error": …}` with the status it maps to.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    /// A body that is not what the route takes (400).
    #[error("{0}")]
    BadRequest(String),
    /// A document with problems (422), each with its JSON pointer.
    #[error("{message}")]
    Invalid {
        message: String,
        problems: Vec<Problem>,
    },
    /// Refused in the target's state (409).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{message}")]
    TooMany { message: String, retry_after: u64 },
    /// The environment is not loaded yet, or its gateway cannot be reached (503).
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// From an engine error, by its one classification.
    pub fn classified(e: impl crate::core::error::Classify + std::fmt::Display) -> ApiError {
        use crate::core::error::ErrorClass as C;
        let message = e.to_string();
        match e.class() {
            C::Invalid => ApiError::Invalid {
                message,
                problems: Vec::new(),
            },
            C::Conflict | C::MassDelete | C::Stale | C::Observe | C::Locked => {
                ApiError::Conflict(message)
            }
            C::Unreachable | C::GatewayBusy | C::Auth | C::Failed => ApiError::Unavailable(message),
            C::Io => ApiError::Internal(message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = json!({"error": self.to_string()});
        match &self {
            ApiError::Invalid { problems, .. } if !problems.is_empty() => {
                body["problems"] = problems_json(problems);
            }
            ApiError::TooMany { retry_after, .. } => {
                return (
                    status,
                    [(header::RETRY_AFTER, retry_after.to_string())],
                    Json(body),
                )
                    .into_response();
            }
            _ => {}
        }
        (status, Json(body)).into_response()
    }
}

/// Problems as JSON: `[{"pointer", "reason"}]`.
pub fn problems_json(problems: &[Problem]) -> serde_json::Value {
    problems
        .iter()
        .map(|p| json!({"pointer": p.pointer, "reason": p.reason}))
        .collect()
}

/// How an environment of daemon.yaml takes imports: its mode and source decide.
pub fn environment_route(name: &str, mode: Mode, git: bool) -> Route {
    match (mode, git) {
        (Mode::Observe, _) => Route::Direct,
        (Mode::Auto, true) => Route::Refuse(format!(
            "environment {name} is in auto mode with a Git source: an import would be reverted at the next drift check; commit the entities to its branch instead (mcp-gitops promote), or import into an observe environment"
        )),
        (Mode::Auto, false) => Route::Refuse(format!(
            "environment {name} is in auto mode with a directory source: an import would be reverted at the next drift check; add the entities to its directory, or set mode: observe"
        )),
    }
}

/// The routes, under `/api/v1` and (for the compatibility target) ContextForge's own paths.
pub fn routes(api: Arc<JobsApi>) -> Router {
    Router::new()
        .route(
            "/api/v1/environments/{env}/import/preview",
            post(handlers::preview_env),
        )
        .route(
            "/api/v1/gateways/{gw}/import/preview",
            post(handlers::preview_gateway),
        )
        .route(
            "/api/v1/environments/{env}/import",
            post(handlers::import_env),
        )
        .route(
            "/api/v1/gateways/{gw}/import",
            post(handlers::import_gateway),
        )
        .route(
            "/api/v1/environments/{env}/tools/import",
            post(handlers::bulk_env),
        )
        .route(
            "/api/v1/gateways/{gw}/tools/import",
            post(handlers::bulk_gateway),
        )
        .route("/api/v1/jobs", get(handlers::list))
        .route("/api/v1/jobs/cleanup", post(handlers::cleanup))
        .route("/api/v1/jobs/{id}", get(handlers::status))
        .route("/api/v1/jobs/{id}/events", get(handlers::events))
        .merge(compat::routes())
        .with_state(api)
}

//! The HTTP API's import side: import preview, import as an asynchronous job, jobs (list,
//! status, server-sent events, cleanup), bulk tool import, and ContextForge's own import and
//! export routes for one chosen environment. Handlers parse, call the engine
//! (`engine::import`, `engine::jobs`, `engine::bulk`, `engine::export`) and render.

mod body;
pub mod compat;
mod handlers;
pub mod multipart;
pub mod wire;

pub(crate) use body::load_problem;
pub(crate) use handlers::{event_stream, preview_value};

/// Check an import request's fields (`document`, `conflict_strategy`, `selected_entities`, …)
/// and start it as a job, as `POST …/import` does: the job's id.
pub(crate) fn submit_value(
    api: &Arc<JobsApi>,
    target: JobTarget,
    v: serde_json::Value,
) -> Result<String, ApiError> {
    body::import(v, "document").and_then(|b| handlers::submit(api, target, b))
}

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
    /// Committed to the environment's Git source (an `auto` environment with a Git source),
    /// which its worker then applies.
    Commit(Box<CommitRoute>),
    /// Refused with 409: the reason (an `auto` environment with a directory source).
    Refuse(String),
}

/// Where an import into an `auto` environment with a Git source is committed, how the result
/// is checked, and how its worker is asked to apply it.
#[derive(Clone)]
pub struct CommitRoute {
    pub target: crate::engine::import_commit::CommitTarget,
    /// The daemon's own loader for the environment (its trust rules): nothing is pushed that
    /// it would refuse.
    pub validate: Arc<crate::engine::import_commit::Validate>,
    /// Ask the environment's worker to fetch and reconcile now (false: it is stopping).
    pub reconcile: Arc<dyn Fn() -> bool + Send + Sync>,
}

impl std::fmt::Debug for CommitRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CommitRoute({}@{}:{})",
            self.target.remote.url, self.target.branch, self.target.path
        )
    }
}

impl CommitRoute {
    /// What the preview says about the commit an import would become.
    pub fn describe(&self) -> serde_json::Value {
        json!({
            "repository": self.target.remote.url.to_string(),
            "branch": self.target.branch,
            "path": self.target.path,
            "note": "this environment is in auto mode with a Git source: the import becomes a commit of the selected entities to its branch (or to the review branch given as `branch`), which the daemon then applies",
        })
    }
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
    /// An engine error, by its one classification (the API's status and code for its class).
    #[error("{message}")]
    Classified {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
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
            ApiError::Classified { status, .. } => *status,
        }
    }

    /// From an engine error, by its one classification (as every API route maps it).
    pub fn classified(e: impl crate::core::error::Classify + std::fmt::Display) -> ApiError {
        let class = e.class();
        ApiError::Classified {
            status: crate::http::api::status_of(class),
            code: class.label(),
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    /// In the API's one error shape (`http::api::ApiError`: `{"error": {"code", "message",
    /// …}}`), problems and `Retry-After` included.
    fn into_response(self) -> Response {
        use crate::http::api::ApiError as Shaped;
        let status = self.status();
        let code = match &self {
            ApiError::NotFound(_) => "not_found",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Invalid { .. } => "invalid",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooLarge(_) => "too_large",
            ApiError::TooMany { .. } => "rate_limited",
            ApiError::Unavailable(_) => "not_loaded",
            ApiError::Internal(_) => "io",
            ApiError::Classified { code, .. } => code,
        };
        let mut e = Shaped::new(status, code, self.to_string());
        match self {
            ApiError::Invalid { problems, .. } if !problems.is_empty() => {
                e = e.with(json!({"problems": problems_json(&problems)}));
            }
            ApiError::TooMany { retry_after, .. } => e.retry_after = Some(retry_after),
            _ => {}
        }
        e.into_response()
    }
}

/// Problems as JSON: `[{"pointer", "reason"}]`.
pub fn problems_json(problems: &[Problem]) -> serde_json::Value {
    problems
        .iter()
        .map(|p| json!({"pointer": p.pointer, "reason": p.reason}))
        .collect()
}

/// How an environment of daemon.yaml takes imports: its mode and source decide (`commit`: the
/// route of its Git source; None for a directory).
pub fn environment_route(name: &str, mode: Mode, commit: Option<CommitRoute>) -> Route {
    match (mode, commit) {
        (Mode::Observe, _) => Route::Direct,
        (Mode::Auto, Some(c)) => Route::Commit(Box::new(c)),
        (Mode::Auto, None) => Route::Refuse(format!(
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

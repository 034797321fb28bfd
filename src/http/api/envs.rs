//! `GET /api/v1/environments`, `GET /api/v1/environments/{env}` (status: revision, health,
//! drift, last result, next run, recent history) and `POST /api/v1/environments/{env}/reconcile`
//! (202: the worker fetches and checks for drift now).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::auth::{Operator, RequireRole, Viewer};
use super::error::ApiError;
use crate::daemon::EnvHandle;
use crate::daemon::worker::Trigger;
use crate::http::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/environments", get(list))
        .route("/api/v1/environments/{env}", get(one))
        .route("/api/v1/environments/{env}/reconcile", post(reconcile))
}

/// The environment named `name`, or the 404.
pub fn env<'a>(s: &'a AppState, name: &str) -> Result<&'a EnvHandle, ApiError> {
    s.envs
        .iter()
        .find(|e| e.name() == name)
        .ok_or_else(|| ApiError::not_found("environment", name))
}

async fn list(State(s): State<Arc<AppState>>, _: RequireRole<Viewer>) -> Json<serde_json::Value> {
    let envs: Vec<_> = s.envs.iter().map(|e| e.shared.status()).collect();
    let gateways: Vec<_> = s
        .gateways
        .iter()
        .map(|g| json!({"name": g.name, "connected": g.connection.is_ok()}))
        .collect();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "draining": s.draining.load(Ordering::SeqCst),
        "environments": envs,
        "gateways": gateways,
    }))
}

async fn one(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    _: RequireRole<Viewer>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let e = env(&s, &name)?;
    Ok(Json(
        serde_json::to_value(e.shared.status()).unwrap_or_default(),
    ))
}

async fn reconcile(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    RequireRole(caller, ..): RequireRole<Operator>,
) -> Result<Response, ApiError> {
    let e = env(&s, &name)?;
    if s.draining.load(Ordering::SeqCst) || e.trigger.send(Trigger::Reconcile).is_err() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping",
            "the daemon is stopping",
        ));
    }
    crate::daemon::log_line(
        &format!("env {name}"),
        &format!(
            "reconcile requested through the API by token '{}'",
            caller.name
        ),
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"environment": name, "reconcile": "requested"})),
    )
        .into_response())
}

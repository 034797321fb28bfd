//! The HTTP API under `/api/v1` (README, "HTTP API"; the OpenAPI document at
//! `/api/v1/openapi.json`). One small module per route group, each a `routes()` merged here;
//! every route authenticates with [`auth::RequireRole`] and answers errors as [`ApiError`].
//! Handlers parse, call the engine (the same functions as the CLI) and render.

pub mod auth;
pub mod body;
pub mod envs;
pub mod error;
pub mod export;
pub mod openapi;
pub mod plan;

use std::sync::Arc;

use axum::Router;

pub use auth::{ApiState, Caller, RequireRole, Role};
pub use error::{ApiError, status_of};

use crate::http::AppState;

/// Every API route group.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .merge(envs::routes())
        .merge(plan::routes())
        .merge(export::routes())
        .merge(openapi::routes())
}

//! `GET /api/v1/environments/{env}/plan`: what `plan -o json` prints for the environment's
//! desired state (the worker's source and trusted connection) against its live gateway, with
//! the plan's digest; `POST /api/v1/environments/{env}/apply` with `{"digest": …}` applies
//! exactly that plan, or answers 409 when the documents or the gateway changed since (the
//! check `apply PLAN_FILE` makes). Apply holds the environment's writer guard and lock: the
//! worker's reconcile never runs at the same time.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Json;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Operator, RequireRole, Viewer};
use super::body::{JsonBody, Params};
use super::envs::env;
use super::error::ApiError;
use crate::core::error::ErrorClass;
use crate::daemon::worker::Trigger;
use crate::http::AppState;

/// How long an API apply waits for the environment's worker to finish its cycle.
pub const WRITER_WAIT: Duration = Duration::from_secs(30);

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/environments/{env}/plan", get(plan))
        .route("/api/v1/environments/{env}/apply", post(apply))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanQuery {
    /// Also list unchanged entities.
    #[serde(default)]
    verbose: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplyBody {
    digest: String,
}

/// `<64 hex>.<64 hex>`: the desired and the live digest.
fn split_digest(d: &str) -> Option<(&str, &str)> {
    let (a, b) = d.split_once('.')?;
    let hex = |s: &str| s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit());
    (hex(a) && hex(b)).then_some((a, b))
}

async fn plan(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    Params(q): Params<PlanQuery>,
    _: RequireRole<Viewer>,
) -> Result<Json<Value>, ApiError> {
    let e = env(&s, &name)?;
    let l = e
        .load()
        .await
        .map_err(|e| ApiError::classified(&e, str::to_string))?;
    let t = &l.target;
    let p = t
        .plan()
        .await
        .map_err(|err| ApiError::classified(&err, |m| t.env.mask(m)))?;
    let mut v = p.to_json(q.verbose);
    v["digest"] = json!(t.plan_digest(&p));
    v["environment"] = json!(name);
    v["revision"] = json!(l.revision.as_ref().map(|c| c.0.clone()));
    v["mode"] = json!(t.env.config.mode);
    Ok(Json(v))
}

async fn apply(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    RequireRole(caller, ..): RequireRole<Operator>,
    JsonBody(body): JsonBody<ApplyBody>,
) -> Result<Json<Value>, ApiError> {
    let e = env(&s, &name)?;
    let Some((desired, live)) = split_digest(&body.digest) else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "digest: not a plan digest (GET …/plan answers one)",
        ));
    };
    let l = e
        .load()
        .await
        .map_err(|e| ApiError::classified(&e, str::to_string))?;
    let t = &l.target;
    let mask = |m: &str| t.env.mask(m);
    let _writer = tokio::time::timeout(WRITER_WAIT, e.shared.writer.lock())
        .await
        .map_err(|_| {
            ApiError::new(
                crate::http::api::status_of(ErrorClass::Locked),
                ErrorClass::Locked.label(),
                format!(
                    "environment {name}: its reconcile did not finish within {}s; try again",
                    WRITER_WAIT.as_secs()
                ),
            )
        })?;
    let _lock = t
        .lock(&|_| {})
        .await
        .map_err(|err| ApiError::classified(&err, mask))?;
    let label = format!("plan {}", &body.digest[..12]);
    let (_, report) = t
        .apply_if_digests(desired, live, &label, None)
        .await
        .map_err(|err| ApiError::classified(&err, mask))?;
    let mut v = report.to_json(0);
    v["environment"] = json!(name);
    v["digest"] = json!(body.digest);
    crate::daemon::log_line(
        &format!("env {name}"),
        &format!(
            "applied {label} through the API for token '{}': {} failed",
            caller.name,
            report.failed()
        ),
    );
    // The worker checks again, so that status and drift say what is live now.
    let _ = e.trigger.send(Trigger::Reconcile);
    Ok(Json(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_two_sha256_hex_strings() {
        let h = "a".repeat(64);
        assert_eq!(split_digest(&format!("{h}.{h}")), Some((&h[..], &h[..])));
        assert_eq!(split_digest(&h), None);
        assert_eq!(split_digest(&format!("{h}.{}", "g".repeat(64))), None);
        assert_eq!(split_digest(&format!("{h}.{h}.")), None);
    }
}

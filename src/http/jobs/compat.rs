//! ContextForge's own export and import routes and payloads, served for the one target
//! daemon.yaml chooses, so that scripts written for ContextForge's API work unchanged:
//! `GET /export`, `POST /export/selective`, `POST /import` (`import_data`,
//! `conflict_strategy`, `dry_run`, `rekey_secret`, `selected_entities`), `GET /import/status`,
//! `GET /import/status/{id}`, `POST /import/cleanup`, and the epic's `GET /admin/export`,
//! multipart `POST /admin/import` (202) and `GET /admin/import/status/{id}`; each also under
//! `/v1`. Errors are `{"detail": …}` as ContextForge writes them. The work is the engine's
//! (lossless export, idempotent import), not ContextForge's.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::body;
use super::handlers::{cleanup_jobs, submit};
use super::{ApiError, JobsApi};
use crate::core::clock;
use crate::core::document::{self, Format};
use crate::core::kind::Kind;
use crate::core::select::{IncludeSpec, Selection};
use crate::engine::export::{ExportError, ExportOptions, export};
use crate::engine::jobs::{JobState, JobTarget};

/// ContextForge's error body.
fn detail(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({"detail": msg.into()}))).into_response()
}

fn refuse(e: ApiError) -> Response {
    let status = e.status();
    let mut r = detail(status, e.to_string());
    if let ApiError::TooMany { retry_after, .. } = e {
        r.headers_mut().insert(
            header::RETRY_AFTER,
            retry_after.to_string().parse().expect("digits"),
        );
    }
    r
}

fn target(api: &JobsApi) -> Result<JobTarget, Box<Response>> {
    api.compat.clone().ok_or_else(|| {
        Box::new(detail(
            StatusCode::NOT_FOUND,
            "ContextForge-compatible routes are off: daemon.yaml names no api.compat_environment",
        ))
    })
}

/// Each compatible route is served at the root and under these prefixes (the OpenAPI test
/// expands `{p}` with them).
pub(crate) const PREFIXES: [&str; 2] = ["", "/v1"];

pub fn routes() -> Router<Arc<JobsApi>> {
    let mut r = Router::new();
    for p in PREFIXES {
        r = r
            .route(&format!("{p}/export"), get(export_all))
            .route(&format!("{p}/admin/export"), get(export_all))
            .route(&format!("{p}/admin/export/configuration"), get(export_all))
            .route(&format!("{p}/export/selective"), post(export_selective))
            .route(
                &format!("{p}/admin/export/selective"),
                post(export_selective),
            )
            .route(&format!("{p}/import"), post(import_sync))
            .route(&format!("{p}/admin/import"), post(import_async))
            .route(&format!("{p}/import/status"), get(status_list))
            .route(&format!("{p}/admin/import/status"), get(status_list))
            .route(&format!("{p}/import/status/{{id}}"), get(status_one))
            .route(&format!("{p}/admin/import/status/{{id}}"), get(status_one))
            .route(&format!("{p}/import/cleanup"), post(cleanup))
            .route(&format!("{p}/admin/import/cleanup"), post(cleanup));
    }
    r
}

#[derive(Deserialize, Default)]
pub(super) struct ExportQuery {
    types: Option<String>,
    exclude_types: Option<String>,
    tags: Option<String>,
    include_inactive: Option<bool>,
    include_dependencies: Option<bool>,
}

fn kinds(list: Option<&str>) -> Result<Option<Vec<Kind>>, ApiError> {
    list.filter(|s| !s.trim().is_empty())
        .map(Kind::parse_list)
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

async fn run_export(api: &JobsApi, sel: Selection, name: &str) -> Response {
    let t = match target(api) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let r = match api.find(&t) {
        Ok(r) => r,
        Err(e) => return refuse(e),
    };
    let Some(secret) = r.keys.gateway.clone() else {
        return detail(
            StatusCode::CONFLICT,
            format!("{t} has no secret: its credentials cannot be exported"),
        );
    };
    let opts = ExportOptions {
        selection: sel,
        gateway_secret: secret,
        document_secret: None,
        exported_by: Some(r.client.who()),
        now: clock::now_rfc3339(),
        cache: None,
    };
    match export(&r.client, &opts).await {
        Ok(e) => {
            let stamp = file_stamp(&clock::now_rfc3339());
            (
                [
                    (header::CONTENT_TYPE, "application/json".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}-{stamp}.json\""),
                    ),
                ],
                document::to_string(&e.document, Format::Json),
            )
                .into_response()
        }
        Err(ExportError::Gateway(g)) => refuse(ApiError::classified(g)),
        Err(e) => refuse(ApiError::Conflict(e.to_string())),
    }
}

/// `YYYYMMDD-HHMMSS` of an RFC 3339 time.
pub fn file_stamp(rfc3339: &str) -> String {
    let digits: String = rfc3339
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect();
    format!(
        "{}-{}",
        &digits[..8.min(digits.len())],
        digits.get(8..).unwrap_or_default()
    )
}

async fn export_all(State(api): State<Arc<JobsApi>>, Query(q): Query<ExportQuery>) -> Response {
    let sel = (|| -> Result<Selection, ApiError> {
        Ok(Selection {
            types: kinds(q.types.as_deref())?,
            exclude_types: kinds(q.exclude_types.as_deref())?.unwrap_or_default(),
            tags: q
                .tags
                .as_deref()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect(),
            include: None,
            picked: None,
            include_inactive: q.include_inactive.unwrap_or(false),
            dependencies: q.include_dependencies.unwrap_or(true),
        })
    })();
    match sel {
        Ok(sel) => run_export(&api, sel, "export").await,
        Err(e) => refuse(e),
    }
}

/// `{"tools": [names], "servers": [...], ...}` (ContextForge's body; the admin route wraps it
/// as `entity_selections`), names or URIs.
async fn export_selective(
    State(api): State<Arc<JobsApi>>,
    Query(q): Query<ExportQuery>,
    raw: Bytes,
) -> Response {
    let v: Value = match serde_json::from_slice(&raw) {
        Ok(v) => v,
        Err(e) => return detail(StatusCode::BAD_REQUEST, format!("not JSON: {e}")),
    };
    let deps = v
        .get("include_dependencies")
        .and_then(Value::as_bool)
        .or(q.include_dependencies)
        .unwrap_or(true);
    let picks = v.get("entity_selections").unwrap_or(&v);
    let Some(map) = picks.as_object() else {
        return detail(
            StatusCode::BAD_REQUEST,
            "the body must be an object of lists",
        );
    };
    let mut spec = Vec::new();
    for (kind, names) in map {
        if kind == "include_dependencies" {
            continue;
        }
        let names: Vec<&str> = names
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !names.is_empty() {
            spec.push(format!("{kind}:{}", names.join(",")));
        }
    }
    if spec.is_empty() {
        return detail(StatusCode::BAD_REQUEST, "no entities selected");
    }
    let include = match IncludeSpec::parse(&spec.join(";")) {
        Ok(i) => i,
        Err(e) => return detail(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let sel = Selection {
        include: Some(include),
        include_inactive: true,
        dependencies: deps,
        ..Selection::default()
    };
    run_export(&api, sel, "selective-export").await
}

/// `POST /import`: ContextForge answers when the import is done; so does this (the job is
/// recorded like any other, and its status is ContextForge's object).
async fn import_sync(State(api): State<Arc<JobsApi>>, headers: HeaderMap, raw: Bytes) -> Response {
    let t = match target(&api) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let id = match body::fields(&headers, &raw, &["import_data", "file"])
        .and_then(|v| body::import(v, "import_data"))
        .and_then(|b| submit(&api, t, b))
    {
        Ok(id) => id,
        Err(e) => return refuse(e),
    };
    let Some(mut rx) = api.store.subscribe(&id) else {
        return detail(StatusCode::INTERNAL_SERVER_ERROR, "the job vanished");
    };
    let job = match rx.wait_for(|j| j.state.finished()).await {
        Ok(j) => j.clone(),
        Err(_) => return detail(StatusCode::INTERNAL_SERVER_ERROR, "the job vanished"),
    };
    if job.state == JobState::Failed {
        // ContextForge: 400 {"detail": "Import failed"}; the reason is in the job's status.
        let mut v = job.contextforge_status();
        v["detail"] = json!(format!("Import failed: {}", job.errors.join("; ")));
        return (StatusCode::BAD_REQUEST, Json(v)).into_response();
    }
    Json(job.contextforge_status()).into_response()
}

/// `POST /admin/import`: a multipart file upload (or JSON), 202 with the import id.
async fn import_async(State(api): State<Arc<JobsApi>>, headers: HeaderMap, raw: Bytes) -> Response {
    let t = match target(&api) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    match body::fields(&headers, &raw, &["import_data", "file", "import_file"])
        .and_then(|v| body::import(v, "import_data"))
        .and_then(|b| submit(&api, t, b))
    {
        Ok(id) => {
            let job = api.store.get(&id).map(|j| j.contextforge_status());
            (
                StatusCode::ACCEPTED,
                Json(job.unwrap_or_else(|| json!({"import_id": id}))),
            )
                .into_response()
        }
        Err(e) => refuse(e),
    }
}

async fn status_list(State(api): State<Arc<JobsApi>>) -> Response {
    let t = match target(&api) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let all: Vec<Value> = api
        .store
        .list()
        .iter()
        .filter(|j| j.target == t)
        .map(|j| j.contextforge_status())
        .collect();
    Json(json!(all)).into_response()
}

async fn status_one(State(api): State<Arc<JobsApi>>, Path(id): Path<String>) -> Response {
    if let Err(r) = target(&api) {
        return *r;
    }
    match api.store.get(&id) {
        Some(j) => Json(j.contextforge_status()).into_response(),
        None => detail(StatusCode::NOT_FOUND, format!("Import {id} not found")),
    }
}

#[derive(Deserialize)]
struct CleanupQuery {
    max_age_hours: Option<f64>,
}

async fn cleanup(State(api): State<Arc<JobsApi>>, Query(q): Query<CleanupQuery>) -> Response {
    if let Err(r) = target(&api) {
        return *r;
    }
    match cleanup_jobs(&api, Some(q.max_age_hours.unwrap_or(24.0))) {
        Ok(n) => Json(json!({
            "status": "success",
            "message": format!("Cleaned up {n} completed import statuses"),
            "removed_count": n,
        }))
        .into_response(),
        Err(e) => refuse(e),
    }
}

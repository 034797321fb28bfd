//! `/api/v1` import routes: preview, import jobs, jobs, events, cleanup, bulk tools.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Json, Response};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::{self, BODY, ImportBody};
use super::{ApiError, JobsApi, Resolved, Route};
use crate::core::clock;
use crate::engine::apply::{Keys, Options, ReadyError};
use crate::engine::import::{self, ImportError};
use crate::engine::jobs::{self, ImportSpec, Job, JobTarget};

/// Keys of a request: the document's (the target's unless given) and the target gateway's.
fn keys(r: &Resolved, b: &ImportBody) -> Keys {
    Keys::new(
        b.secret.clone().or_else(|| r.keys.document.clone()),
        b.rekey_secret
            .clone()
            .or_else(|| b.secret.is_some().then(|| r.keys.gateway.clone()).flatten())
            .or_else(|| r.keys.gateway.clone()),
    )
}

fn options(b: &ImportBody) -> Options {
    Options {
        strategy: b.strategy,
        dry_run: b.dry_run,
        now_unix: clock::now_unix(),
        ..Options::default()
    }
}

/// A preview: what an import of the body would do, no write. A document with problems is a
/// preview too (`valid: false`, every problem with its pointer).
pub(super) async fn preview(api: &JobsApi, target: JobTarget, v: Value, doc_key: &str) -> Response {
    let b = match body::import(v, doc_key) {
        Ok(b) => b,
        Err(ApiError::Invalid { message, problems }) => {
            return Json(json!({
                "valid": false,
                "target": target,
                "error": message,
                "problems": super::problems_json(&problems),
                "items": [],
            }))
            .into_response();
        }
        Err(e) => return e.into_response(),
    };
    let r = match api.find(&target) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let request = import::Request {
        whole: &b.document,
        file: BODY,
        keys: keys(&r, &b),
        include: b.include.clone(),
        opts: import::preview_options(options(&b)),
    };
    match import::stage(&r.client, request).await {
        Ok(staged) => {
            let p = import::preview(&staged, b.strategy, b.include.as_ref());
            let mut v = json!(p);
            v["valid"] = json!(true);
            v["target"] = json!(target);
            v["conflict_strategy"] = json!(b.strategy);
            if let Route::Refuse(why) = &r.route {
                v["import_refused"] = json!(why);
            }
            Json(v).into_response()
        }
        Err(ImportError::Ready(ReadyError::Invalid(e))) => Json(json!({
            "valid": false,
            "target": target,
            "error": e.to_string(),
            "problems": super::problems_json(&e.problems),
            "items": [],
        }))
        .into_response(),
        Err(e) => ApiError::classified(e).into_response(),
    }
}

/// Queue an import job and start it; 202 with its id.
pub(super) fn submit(
    api: &Arc<JobsApi>,
    target: JobTarget,
    b: ImportBody,
) -> Result<String, ApiError> {
    let r = api.find(&target)?;
    if let Route::Refuse(why) = &r.route {
        return Err(ApiError::Conflict(why.clone()));
    }
    let spec = ImportSpec {
        keys: keys(&r, &b),
        opts: options(&b),
        whole: b.document,
        file: BODY.into(),
        include: b.include,
    };
    let id = jobs::queue(&api.store, target, &spec).map_err(ApiError::classified)?;
    let (api, job) = (api.clone(), id.clone());
    tokio::spawn(async move {
        let lock = r.lock.clone();
        let timeout = api.lock_timeout;
        let hold = async move {
            match lock {
                None => Ok(None),
                Some(key) => crate::engine::envlock::acquire(
                    &crate::engine::envlock::lock_dir(),
                    &key,
                    "run (API import)",
                    timeout,
                    &Default::default(),
                    &|_| {},
                )
                .await
                .map(Some)
                .map_err(|e| e.to_string()),
            }
        };
        // The target's one writer (shared with its worker) for the whole job, then its lock.
        let writer = r.writer.clone();
        let _writer = match &writer {
            Some(w) => Some(w.lock().await),
            None => None,
        };
        jobs::run_import(&api.store, &job, &r.client, spec, hold).await;
    });
    Ok(id)
}

fn accepted(id: &str) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "job_id": id,
            "status": "queued",
            "status_url": format!("/api/v1/jobs/{id}"),
            "events_url": format!("/api/v1/jobs/{id}/events"),
        })),
    )
        .into_response()
}

async fn import_into(
    api: Arc<JobsApi>,
    target: JobTarget,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let result = body::fields(&headers, &raw, &["document", "file"])
        .and_then(|v| body::import(v, "document"))
        .and_then(|b| submit(&api, target, b));
    match result {
        Ok(id) => accepted(&id),
        Err(e) => e.into_response(),
    }
}

async fn preview_into(
    api: Arc<JobsApi>,
    target: JobTarget,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    match body::fields(&headers, &raw, &["document", "file"]) {
        Ok(v) => preview(&api, target, v, "document").await,
        Err(e) => e.into_response(),
    }
}

pub(super) async fn preview_env(
    State(api): State<Arc<JobsApi>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    preview_into(api, JobTarget::Environment(name), headers, raw).await
}

pub(super) async fn preview_gateway(
    State(api): State<Arc<JobsApi>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    preview_into(api, JobTarget::Gateway(name), headers, raw).await
}

pub(super) async fn import_env(
    State(api): State<Arc<JobsApi>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    import_into(api, JobTarget::Environment(name), headers, raw).await
}

pub(super) async fn import_gateway(
    State(api): State<Arc<JobsApi>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    import_into(api, JobTarget::Gateway(name), headers, raw).await
}

/// A job without its per-entity results (lists).
fn summary(j: &Job) -> Value {
    let mut v = json!(j);
    if let Some(m) = v.as_object_mut() {
        m.remove("results");
    }
    v
}

pub(super) async fn list(State(api): State<Arc<JobsApi>>) -> Json<Value> {
    let jobs: Vec<Value> = api.store.list().iter().map(summary).collect();
    Json(json!({"jobs": jobs}))
}

fn job_or_404(api: &JobsApi, id: &str) -> Result<Job, ApiError> {
    api.store
        .get(id)
        .ok_or_else(|| ApiError::NotFound(format!("job {id} not found")))
}

pub(super) async fn status(State(api): State<Arc<JobsApi>>, Path(id): Path<String>) -> Response {
    match job_or_404(&api, &id) {
        Ok(j) => Json(json!(j)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// How often an event stream sends progress while a job runs, changed or not.
pub const EVENT_EVERY: Duration = Duration::from_millis(250);

fn event(name: &str, j: &Job) -> Event {
    let data = json!({
        "job_id": j.id,
        "state": j.state,
        "counts": j.counts,
        "errors": j.errors.len(),
        "warnings": j.warnings.len(),
    });
    Event::default().event(name).data(data.to_string())
}

/// Server-sent events: `progress` at least every [`EVENT_EVERY`] while the job is queued or
/// running (at once on a change), then one `done` with the final counts.
pub(super) async fn events(State(api): State<Arc<JobsApi>>, Path(id): Path<String>) -> Response {
    let Some(mut rx) = api.store.subscribe(&id) else {
        return ApiError::NotFound(format!("job {id} not found")).into_response();
    };
    let stream = async_stream(move |tx| async move {
        loop {
            let j = rx.borrow_and_update().clone();
            if j.state.finished() {
                let mut e = json!(summary(&j));
                e["results"] = json!(j.results.len());
                let _ = tx
                    .send(Event::default().event("done").data(e.to_string()))
                    .await;
                return;
            }
            if tx.send(event("progress", &j)).await.is_err() {
                return;
            }
            let _ = tokio::time::timeout(EVENT_EVERY, rx.changed()).await;
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// A stream fed by a task through a small channel (no extra crate).
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(f(tx));
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|o| o.map(Ok)))
}

#[derive(Deserialize)]
pub(super) struct CleanupQuery {
    max_age_hours: Option<f64>,
}

/// Remove finished jobs older than `max_age_hours` (default: the configured age).
pub(super) fn cleanup_jobs(api: &JobsApi, hours: Option<f64>) -> Result<usize, ApiError> {
    let secs = match hours {
        Some(h) if h.is_finite() && h >= 0.0 => (h * 3600.0) as u64,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "max_age_hours must be a number of hours, 0 or more".into(),
            ));
        }
        None => api.max_age.as_secs(),
    };
    api.store
        .cleanup(clock::now_unix(), secs)
        .map(|ids| ids.len())
        .map_err(ApiError::classified)
}

pub(super) async fn cleanup(
    State(api): State<Arc<JobsApi>>,
    Query(q): Query<CleanupQuery>,
) -> Response {
    match cleanup_jobs(&api, q.max_age_hours) {
        Ok(n) => Json(json!({"removed_count": n})).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The bulk tool items of a request: a JSON array body, or a form with a file (`tools_file`)
/// or a field (`tools`, `tools_json`, `json`, `payload`) holding one (seed 004).
fn bulk_items(headers: &HeaderMap, raw: &[u8]) -> Result<Vec<Value>, ApiError> {
    let keys = ["tools", "tools_file", "tools_json", "json", "payload"];
    let v = body::fields(headers, raw, &keys)?;
    let v = match v {
        Value::Object(mut m)
            if super::multipart::boundary(
                headers
                    .get(axum::http::header::CONTENT_TYPE)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or(""),
            )
            .is_some() =>
        {
            m.remove("tools").unwrap_or(Value::Null)
        }
        v => v,
    };
    match v {
        Value::Array(items) => Ok(items),
        _ => Err(ApiError::Invalid {
            message: "expected a JSON array of tools".into(),
            problems: Vec::new(),
        }),
    }
}

fn client_ip(c: Option<&ConnectInfo<SocketAddr>>) -> IpAddr {
    c.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// Bulk tool import into `target`: the gateway's own response shape, always 200 once
/// admitted; over the batch limit 413, over the rate 429, not an array 422.
pub(super) async fn bulk(
    api: &JobsApi,
    target: JobTarget,
    ip: IpAddr,
    headers: &HeaderMap,
    raw: &[u8],
) -> Response {
    if let Err(wait) = api.admit_bulk(ip) {
        return ApiError::TooMany {
            message: format!(
                "bulk import is limited to {} requests per minute",
                api.bulk_per_minute
            ),
            retry_after: wait.as_secs().max(1),
        }
        .into_response();
    }
    let items = match bulk_items(headers, raw) {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    if items.len() > api.bulk_max {
        let msg = format!("Too many tools ({}). Max {}.", items.len(), api.bulk_max);
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({"success": false, "message": msg, "error": msg})),
        )
            .into_response();
    }
    let r = match api.find(&target) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if let Route::Refuse(why) = &r.route {
        return ApiError::Conflict(why.clone()).into_response();
    }
    match crate::engine::bulk::import(&r.client, &items, r.keys.document.as_ref(), api.bulk_max)
        .await
    {
        Ok(report) => Json(crate::engine::bulk::contextforge_response(
            &report,
            items.len(),
        ))
        .into_response(),
        Err(e) => ApiError::classified(e).into_response(),
    }
}

pub(super) async fn bulk_env(
    State(api): State<Arc<JobsApi>>,
    Path(name): Path<String>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let ip = client_ip(ext.get::<ConnectInfo<SocketAddr>>());
    bulk(&api, JobTarget::Environment(name), ip, &headers, &raw).await
}

pub(super) async fn bulk_gateway(
    State(api): State<Arc<JobsApi>>,
    Path(name): Path<String>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let ip = client_ip(ext.get::<ConnectInfo<SocketAddr>>());
    bulk(&api, JobTarget::Gateway(name), ip, &headers, &raw).await
}

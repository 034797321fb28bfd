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
use crate::engine::import_commit::CommitRequest;
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
    match preview_value(api, target, v, doc_key).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

fn invalid(
    target: &JobTarget,
    message: String,
    problems: &[crate::core::document::validate::Problem],
) -> Value {
    json!({
        "valid": false,
        "target": target,
        "error": message,
        "problems": super::problems_json(problems),
        "items": [],
    })
}

/// The preview as JSON (the API's body; the UI's wizard renders the same value).
pub(crate) async fn preview_value(
    api: &JobsApi,
    target: JobTarget,
    v: Value,
    doc_key: &str,
) -> Result<Value, ApiError> {
    let b = match body::import(v, doc_key) {
        Ok(b) => b,
        Err(ApiError::Invalid { message, problems }) => {
            return Ok(invalid(&target, message, &problems));
        }
        Err(e) => return Err(e),
    };
    let r = api.find(&target)?;
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
            match &r.route {
                Route::Refuse(why) => v["import_refused"] = json!(why),
                Route::Commit(c) => {
                    let mut c = c.describe();
                    if let Some(review) = &b.branch {
                        c["branch"] = json!(review);
                    }
                    c["review"] = json!(b.branch.is_some());
                    v["import_commits"] = c;
                }
                Route::Direct => {}
            }
            Ok(v)
        }
        Err(ImportError::Ready(ReadyError::Invalid(e))) => {
            Ok(invalid(&target, e.to_string(), &e.problems))
        }
        Err(e) => Err(ApiError::classified(e)),
    }
}

/// Queue an import job and start it; 202 with its id.
pub(crate) fn submit(
    api: &Arc<JobsApi>,
    target: JobTarget,
    b: ImportBody,
) -> Result<String, ApiError> {
    let r = api.find(&target)?;
    match &r.route {
        Route::Refuse(why) => return Err(ApiError::Conflict(why.clone())),
        Route::Commit(c) => return submit_commit(api, target, b, &r, c),
        Route::Direct => {}
    }
    if b.branch.is_some() {
        return Err(ApiError::BadRequest(format!(
            "branch: {target} takes imports directly, not as a commit; leave branch out"
        )));
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

/// Queue an import that becomes a commit to the environment's Git source and start it; the
/// worker is asked to apply it once it is on the environment's own branch.
fn submit_commit(
    api: &Arc<JobsApi>,
    target: JobTarget,
    b: ImportBody,
    r: &Resolved,
    c: &super::CommitRoute,
) -> Result<String, ApiError> {
    if b.strategy == crate::core::policy::Strategy::Rename {
        return Err(ApiError::BadRequest(
            crate::engine::import_commit::CommitError::Rename.to_string(),
        ));
    }
    let document_key = keys(r, &b).document;
    // In full before anything runs, as a direct import's staging does: the commit itself
    // then checks the environment it makes (references into it included).
    let cx = crate::core::document::validate::Context {
        secret: document_key.as_ref(),
        live: None,
    };
    if let Err(e) = crate::core::document::validate(&b.document, BODY, &cx) {
        return Err(ApiError::Invalid {
            message: e.to_string(),
            problems: e.problems,
        });
    }
    let req = CommitRequest {
        document_key,
        env_key: r.keys.document.clone(),
        whole: b.document,
        file: BODY.into(),
        include: b.include,
        strategy: b.strategy,
        review_branch: b.branch,
        dry_run: b.dry_run,
    };
    let id = jobs::queue_commit(&api.store, target, req.strategy, req.dry_run)
        .map_err(ApiError::classified)?;
    let (api, job, c) = (api.clone(), id.clone(), c.clone());
    tokio::spawn(async move {
        let reconcile = c.reconcile.clone();
        jobs::run_commit(&api.store, &job, c.target, req, c.validate, move || {
            reconcile()
        })
        .await;
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
    event_stream(&api, &id)
}

/// The event stream of job `id` (the API's route and the UI's progress page).
pub(crate) fn event_stream(api: &JobsApi, id: &str) -> Response {
    let Some(mut rx) = api.store.subscribe(id) else {
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
    match &r.route {
        Route::Refuse(why) => return ApiError::Conflict(why.clone()).into_response(),
        Route::Commit(_) => {
            return ApiError::Conflict(format!(
                "{target} is in auto mode with a Git source: the bulk route writes to the gateway directly, which the next drift check would revert; import the tools as a document (POST /api/v1/environments/{{env}}/import), which commits them to its branch"
            ))
            .into_response();
        }
        Route::Direct => {}
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

//! HTTP: the paths, verbs and query parameters of the Kubernetes API, a streaming watch, and
//! the request log.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::apply::PatchType;
use super::resources::{self, Resource};
use super::select::Selector;
use super::store::{self, ApiError, Owner, Store};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    pub user_agent: Option<String>,
    pub status: u16,
    /// The port it came in on (`FakeApi::door` opens more than one onto the same objects).
    pub port: u16,
}

impl Request {
    /// POST, PUT, PATCH or DELETE.
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }

    /// A write to a `/status` subresource.
    pub fn is_status_write(&self) -> bool {
        self.is_write() && self.path.ends_with("/status")
    }

    pub fn is_watch(&self) -> bool {
        self.method == "GET"
            && self
                .query
                .split('&')
                .any(|p| p == "watch=true" || p == "watch=1")
    }
}

pub struct Shared {
    pub store: Mutex<Store>,
    pub log: Mutex<Vec<Request>>,
}

/// Where a request goes once its path is parsed.
enum Route {
    Version,
    CoreVersions,
    Groups,
    GroupVersion(String, String),
    Object {
        res: Resource,
        /// None: a collection across all namespaces (or of a cluster-scoped kind).
        ns: Option<String>,
        name: Option<String>,
        status: bool,
    },
}

fn route(store: &Store, path: &str) -> Result<Route, ApiError> {
    let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match seg.as_slice() {
        ["version"] => return Ok(Route::Version),
        ["api"] => return Ok(Route::CoreVersions),
        ["apis"] => return Ok(Route::Groups),
        ["api", v] => return Ok(Route::GroupVersion(String::new(), v.to_string())),
        ["apis", g, v] => return Ok(Route::GroupVersion(g.to_string(), v.to_string())),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::new(404, "NotFound", format!("no route {path}"))),
    };
    let (ns, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        _ => (None, rest),
    };
    let (plural, name, status) = match rest {
        [p] => (*p, None, false),
        [p, n] => (*p, Some(n.to_string()), false),
        [p, n, "status"] => (*p, Some(n.to_string()), true),
        _ => return Err(ApiError::new(404, "NotFound", format!("no route {path}"))),
    };
    let res = store.find(group, version, plural).ok_or_else(|| {
        ApiError::new(
            404,
            "NotFound",
            format!(
                "the server could not find the requested resource ({plural}.{group}/{version})"
            ),
        )
    })?;
    if res.namespaced != ns.is_some() && name.is_some() {
        return Err(ApiError::new(404, "NotFound", format!("no route {path}")));
    }
    if !res.namespaced && ns.is_some() {
        return Err(ApiError::new(
            404,
            "NotFound",
            format!("{plural} is not namespaced"),
        ));
    }
    Ok(Route::Object {
        res,
        ns,
        name,
        status,
    })
}

fn json_response(code: u16, v: &Value) -> Response {
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn error(e: &ApiError) -> Response {
    json_response(e.code, &e.status())
}

/// The one handler: every request is logged with the status it got.
pub async fn handle(
    State((shared, port)): State<(Arc<Shared>, u16)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let header = |h: header::HeaderName| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header(header::CONTENT_TYPE);
    let agent = header(header::USER_AGENT);
    let manager = q.get("fieldManager").cloned().unwrap_or_else(|| {
        let a = agent.as_deref().unwrap_or("unknown");
        a.split('/').next().unwrap_or(a).to_string()
    });
    let req = Req {
        method: &method,
        path: uri.path(),
        q: &q,
        content_type: content_type.as_deref(),
        manager: &manager,
        body: &body,
    };
    let resp = dispatch(&shared, &req).unwrap_or_else(|e| error(&e));
    shared.log.lock().unwrap().push(Request {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or_default().to_string(),
        content_type,
        user_agent: agent,
        status: resp.status().as_u16(),
        port,
    });
    resp
}

fn parse_body(body: &Bytes, yaml: bool) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad("the body is not UTF-8"))?;
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(_) if yaml => serde_saphyr::from_str(text)
            .map_err(|e| ApiError::bad(format!("the body is not YAML: {e}"))),
        Err(e) => Err(ApiError::bad(format!("the body is not JSON: {e}"))),
    }
}

/// What `dispatch` needs of a request.
struct Req<'a> {
    method: &'a Method,
    path: &'a str,
    q: &'a HashMap<String, String>,
    content_type: Option<&'a str>,
    /// `fieldManager`, or the user agent up to its first `/`.
    manager: &'a str,
    body: &'a Bytes,
}

fn dispatch(shared: &Arc<Shared>, r: &Req) -> Result<Response, ApiError> {
    let (method, path, q, content_type, body) = (r.method, r.path, r.q, r.content_type, r.body);
    let owner = || Owner::Update(r.manager.to_string());
    let mut store = shared.store.lock().unwrap();
    let (res, ns, name, status) = match route(&store, path)? {
        Route::Version => return Ok(json_response(200, &resources::version())),
        Route::CoreVersions => return Ok(json_response(200, &resources::core_versions())),
        Route::Groups => return Ok(json_response(200, &resources::group_list(&store.resources))),
        Route::GroupVersion(g, v) => {
            return resources::resource_list(&store.resources, &g, &v)
                .map(|l| json_response(200, &l))
                .ok_or_else(|| ApiError::new(404, "NotFound", format!("no {g}/{v}")));
        }
        Route::Object {
            res,
            ns,
            name,
            status,
        } => (res, ns, name, status),
    };
    if q.get("dryRun").is_some_and(|d| !d.is_empty()) {
        return Err(ApiError::bad(
            "dryRun is not supported by the fake API server",
        ));
    }
    let sel = Selector::parse(
        q.get("labelSelector").map(String::as_str),
        q.get("fieldSelector").map(String::as_str),
    )
    .map_err(ApiError::bad)?;
    let nsname = ns.clone().unwrap_or_default();
    let ok = |v: Value| Ok(json_response(200, &v));
    match (method.as_str(), name) {
        ("GET", None) if matches!(q.get("watch").map(String::as_str), Some("true" | "1")) => {
            let from = match q.get("resourceVersion").map(String::as_str) {
                None | Some("") => None,
                Some(rv) => Some(
                    rv.parse::<u64>()
                        .map_err(|_| ApiError::bad(format!("invalid resourceVersion {rv:?}")))?,
                ),
            };
            let initial_events = q.get("sendInitialEvents").is_some_and(|v| v == "true");
            let from = if initial_events { None } else { from };
            // A watch from a version too old is a 200 with one ERROR event, as the real server.
            let (events, rx, rv) = match store.watch(&res, from) {
                Ok(w) => w,
                Err(e) if e.code == 410 => {
                    return Ok(Response::builder()
                        .status(200)
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from(line("ERROR", e.status())))
                        .unwrap());
                }
                Err(e) => return Err(e),
            };
            let opts = WatchOpts {
                res,
                ns,
                sel,
                bookmarks: q.get("allowWatchBookmarks").is_some_and(|v| v == "true"),
                initial_events_end: initial_events,
                timeout: q
                    .get("timeoutSeconds")
                    .and_then(|t| t.parse().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(Duration::from_secs(1800)),
            };
            Ok(watch(opts, events, rx, rv))
        }
        ("GET", None) => ok(store.list(&res, ns.as_deref(), &sel)),
        ("GET", Some(n)) => ok(store.get(&res, &nsname, &n)?),
        ("POST", None) => {
            let created = store.create(&res, &nsname, parse_body(body, false)?, owner())?;
            Ok(json_response(201, &created))
        }
        ("PUT", Some(n)) => {
            ok(store.replace(&res, &nsname, &n, parse_body(body, false)?, status, owner())?)
        }
        ("PATCH", Some(n)) => {
            let ct = content_type.unwrap_or_default();
            let kind = PatchType::from_content_type(ct).ok_or_else(|| {
                ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!("the body of the request was in an unknown format: {ct}"),
                )
            })?;
            let body = parse_body(body, kind == PatchType::Apply)?;
            if kind == PatchType::Apply {
                let manager = q.get("fieldManager").cloned().unwrap_or_default();
                let force = q.get("force").is_some_and(|f| f == "true");
                ok(store.apply(&res, &nsname, &n, &body, status, &manager, force)?)
            } else {
                ok(store.patch(&res, &nsname, &n, kind, &body, status, r.manager)?)
            }
        }
        ("DELETE", Some(n)) => ok(store.delete(&res, &nsname, &n, &parse_body(body, false)?)?),
        ("DELETE", None) => {
            let names: Vec<(String, String)> = store
                .select(&res, ns.as_deref(), &sel)
                .iter()
                .map(|o| {
                    let m = &o["metadata"];
                    let s = |f: &str| m[f].as_str().unwrap_or_default().to_string();
                    (s("namespace"), s("name"))
                })
                .collect();
            for (n_ns, n) in &names {
                store.delete(&res, n_ns, n, &Value::Null)?;
            }
            ok(store.list(&res, ns.as_deref(), &Selector::default()))
        }
        (m, _) => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{m} {path}"),
        )),
    }
}

struct WatchOpts {
    res: Resource,
    ns: Option<String>,
    sel: Selector,
    bookmarks: bool,
    initial_events_end: bool,
    timeout: Duration,
}

fn line(kind: &str, object: Value) -> Bytes {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

fn bookmark(res: &Resource, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        json!({"kind": res.kind, "apiVersion": res.api_version(), "metadata": meta}),
    )
}

/// A streaming watch: the initial events, then every later change to this resource (and
/// namespace and selection), BOOKMARKs every 2 s when asked for, until `timeoutSeconds`, the
/// client leaving, or the server stopping.
fn watch(
    o: WatchOpts,
    initial: Vec<store::Event>,
    mut rx: broadcast::Receiver<store::Event>,
    mut last: u64,
) -> Response {
    let (tx, mut out) = mpsc::channel::<Bytes>(64);
    let render = |res: &Resource, mut obj: Value| {
        obj["apiVersion"] = json!(res.api_version());
        obj["kind"] = json!(res.kind);
        obj
    };
    let ours = move |e: &store::Event, o: &WatchOpts| {
        e.group == o.res.group
            && e.plural == o.res.plural
            && o.ns.as_ref().is_none_or(|n| *n == e.namespace)
    };
    tokio::spawn(async move {
        for e in initial.iter().filter(|e| ours(e, &o)) {
            if let Some((kind, obj)) = store::visible(e, &o.sel)
                && tx.send(line(kind, render(&o.res, obj))).await.is_err()
            {
                return;
            }
        }
        if o.initial_events_end && tx.send(bookmark(&o.res, last, true)).await.is_err() {
            return;
        }
        let deadline = tokio::time::sleep(o.timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        tick.tick().await;
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(e) if e.rv > last => {
                        last = e.rv;
                        if ours(&e, &o)
                            && let Some((kind, obj)) = store::visible(&e, &o.sel)
                            && tx.send(line(kind, render(&o.res, obj))).await.is_err()
                        {
                            return;
                        }
                    }
                    Ok(_) => {}
                    // Lagged or closed: end the watch; the client watches again from `last`.
                    Err(_) => return,
                },
                _ = tick.tick(), if o.bookmarks => {
                    if tx.send(bookmark(&o.res, last, false)).await.is_err() {
                        return;
                    }
                }
                _ = &mut deadline => return,
            }
        }
    });
    let stream =
        futures::stream::poll_fn(move |cx| out.poll_recv(cx).map(|b| b.map(Ok::<_, Infallible>)));
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

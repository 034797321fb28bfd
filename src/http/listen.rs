//! The listener's accept loop: HTTP/1.1 connections served by hyper with a deadline for the
//! request head, an idle timeout, an early 413 for a declared body over the limit, and a cap
//! on open connections.
//!
//! Over the cap, a new connection is accepted and the connection idle the longest (no request
//! being handled) is closed to make room; when every connection is handling a request the new
//! one is closed at once. The next connection is accepted only once the closed one has given its
//! descriptor back. So an idle flood never holds the listener — `/healthz` still answers — and
//! the listener never holds more descriptors than the cap plus the one just accepted.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use crate::daemon::metrics::Metrics;

/// How the listener treats connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    /// A request declaring a longer body is refused (413) before it reaches a route.
    pub max_body: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

/// One open connection, as the accept loop sees it.
struct Conn {
    /// Milliseconds after the registry's start when a byte last moved.
    last: AtomicU64,
    /// Requests being handled.
    busy: AtomicUsize,
    /// Chosen to make room; open until its task ends.
    closing: AtomicBool,
    close: Notify,
}

/// The open connections.
struct Registry {
    start: Instant,
    next: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    /// A connection's task ended (its descriptor is closed).
    removed: Notify,
}

impl Registry {
    fn new() -> Registry {
        Registry {
            start: Instant::now(),
            next: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
            removed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn len(&self) -> usize {
        self.conns.lock().expect("connections").len()
    }

    /// Register a new connection if there is room, marking the longest-idle one as closing to
    /// make it (returned, to be closed; it counts until its task ends). None: every connection
    /// is handling a request.
    fn admit(&self, cap: usize) -> Option<(u64, Arc<Conn>, Option<Arc<Conn>>)> {
        let mut conns = self.conns.lock().expect("connections");
        let mut evicted = None;
        if conns.len() >= cap {
            let open = conns
                .iter()
                .filter(|(_, c)| !c.closing.load(Ordering::SeqCst));
            let idle = open.map(|(id, c)| {
                (
                    *id,
                    c.busy.load(Ordering::SeqCst),
                    c.last.load(Ordering::SeqCst),
                )
            });
            let id = longest_idle(idle)?;
            let victim = conns[&id].clone();
            victim.closing.store(true, Ordering::SeqCst);
            evicted = Some(victim);
        }
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        let conn = Arc::new(Conn {
            last: AtomicU64::new(self.now()),
            busy: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        });
        conns.insert(id, conn.clone());
        Some((id, conn, evicted))
    }

    fn remove(&self, id: u64) {
        self.conns.lock().expect("connections").remove(&id);
        self.removed.notify_one();
    }

    /// Until at most `cap` connections are open (bounded: a stuck task must not stop the
    /// listener).
    async fn settle(&self, cap: usize) {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while self.len() > cap {
                self.removed.notified().await;
            }
        })
        .await;
    }
}

/// Of `(id, requests being handled, last activity)`, the connection to close for a new one:
/// the one idle the longest among those handling no request.
fn longest_idle(conns: impl Iterator<Item = (u64, usize, u64)>) -> Option<u64> {
    conns
        .filter(|(_, busy, _)| *busy == 0)
        .min_by_key(|(id, _, last)| (*last, *id))
        .map(|(id, _, _)| id)
}

/// A socket that records when a byte last moved.
struct Tracked {
    io: TcpStream,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl Tracked {
    fn touch(&self) {
        self.conn.last.store(self.registry.now(), Ordering::SeqCst);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Counts a request as being handled until dropped.
struct Busy(Arc<Conn>);

impl Busy {
    fn new(conn: &Arc<Conn>) -> Busy {
        conn.busy.fetch_add(1, Ordering::SeqCst);
        Busy(conn.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The body length a request declares, when it declares one over `max`.
fn declared_too_large(headers: &HeaderMap, max: usize) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|n| *n > max as u64)
}

/// 413 at once, without reading the body; the connection is closed after it.
pub(super) fn too_large(max: usize) -> Response<Body> {
    let body = serde_json::json!({"error": {
        "code": "too_large",
        "message": format!("request body over the limit of {max} bytes"),
        "limit": max,
    }});
    Response::builder()
        .status(StatusCode::PAYLOAD_TOO_LARGE)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONNECTION, "close")
        .body(Body::from(body.to_string()))
        .expect("a valid response")
}

/// Serve `router` on `listener` until `stop` turns true; then stop accepting, let requests in
/// flight finish, close idle connections, and return once every connection is closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let registry = Arc::new(Registry::new());
    let mut tasks = tokio::task::JoinSet::new();
    let mut last_error: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors (or a connection reset before it was accepted): wait a
                // little rather than spin, and say so at most once a minute.
                if last_error.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    crate::daemon::log_line("daemon", &format!("cannot accept a connection: {e}"));
                    last_error = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some((id, conn, evicted)) = registry.admit(limits.max_connections) else {
            metrics.connection_closed("refused");
            drop(stream);
            continue;
        };
        if let Some(old) = &evicted {
            metrics.connection_closed("evicted");
            old.close.notify_one();
        }
        metrics.connections(registry.len());
        let io = Tracked {
            io: stream,
            conn: conn.clone(),
            registry: registry.clone(),
        };
        let c = Connection {
            router: router.clone(),
            peer,
            conn,
            limits,
            metrics: metrics.clone(),
        };
        let (reg, stop) = (registry.clone(), stop.clone());
        tasks.spawn(async move {
            c.run(io, &reg, stop).await;
            reg.remove(id);
            c.metrics.connections(reg.len());
        });
        if evicted.is_some() {
            registry.settle(limits.max_connections).await;
        }
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
}

struct Connection {
    router: Router,
    peer: SocketAddr,
    conn: Arc<Conn>,
    limits: Limits,
    metrics: Arc<Metrics>,
}

impl Connection {
    async fn run(&self, io: Tracked, registry: &Registry, mut stop: watch::Receiver<bool>) {
        let svc = TowerToHyperService::new(self.router.clone());
        let (peer, conn) = (self.peer, self.conn.clone());
        let max_body = self.limits.max_body;
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let busy = Busy::new(&conn);
            let refuse = declared_too_large(req.headers(), max_body).is_some();
            req.extensions_mut().insert(ConnectInfo(peer));
            let call = (!refuse).then(|| svc.call(req));
            async move {
                let _busy = busy;
                match call {
                    Some(call) => call.await,
                    None => Ok::<_, Infallible>(too_large(max_body)),
                }
            }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .keep_alive(true);
        let served = http.serve_connection(TokioIo::new(io), service);
        tokio::pin!(served);
        let idle = self.limits.idle_timeout;
        let mut stopping = false;
        loop {
            let now = registry.now();
            let quiet =
                Duration::from_millis(now.saturating_sub(self.conn.last.load(Ordering::SeqCst)));
            let busy = self.conn.busy.load(Ordering::SeqCst) > 0;
            if !busy && quiet >= idle {
                self.metrics.connection_closed("idle");
                return;
            }
            let wait = if busy { idle } else { idle - quiet };
            tokio::select! {
                r = served.as_mut() => {
                    if r.is_err_and(|e| e.is_timeout()) {
                        self.metrics.connection_closed("header_timeout");
                    }
                    return;
                }
                _ = self.conn.close.notified() => return,
                _ = stop.wait_for(|s| *s), if !stopping => {
                    stopping = true;
                    served.as_mut().graceful_shutdown();
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::MAX_HOOK_BODY;

    #[test]
    fn the_connection_idle_the_longest_makes_room() {
        let conns = [(1, 0, 500), (2, 1, 10), (3, 0, 20), (4, 0, 20)];
        assert_eq!(longest_idle(conns.into_iter()), Some(3));
        assert_eq!(longest_idle([(2, 1, 10), (5, 2, 0)].into_iter()), None);
        let r = Registry::new();
        let (a, ca, none) = r.admit(2).unwrap();
        assert!(none.is_none());
        let (_, cb, _) = r.admit(2).unwrap();
        ca.last.store(5, Ordering::SeqCst);
        cb.last.store(9, Ordering::SeqCst);
        let (_, cc, evicted) = r.admit(2).unwrap();
        assert!(Arc::ptr_eq(&evicted.unwrap(), &ca), "a, idle the longest");
        assert_eq!(r.len(), 3, "a counts until its task ends");
        cc.last.store(20, Ordering::SeqCst);
        let (_, _, evicted) = r.admit(2).unwrap();
        assert!(Arc::ptr_eq(&evicted.unwrap(), &cb), "not a again: b");
        r.remove(a);
        assert_eq!(r.len(), 3);
        // Every connection handling a request: no room.
        let all: Vec<Arc<Conn>> = r.conns.lock().unwrap().values().cloned().collect();
        let _busy: Vec<Busy> = all.iter().map(Busy::new).collect();
        assert!(r.admit(2).is_none());
    }

    #[test]
    fn a_declared_body_over_the_limit_is_refused() {
        let mut h = HeaderMap::new();
        assert_eq!(declared_too_large(&h, MAX_HOOK_BODY), None);
        h.insert(
            header::CONTENT_LENGTH,
            MAX_HOOK_BODY.to_string().parse().unwrap(),
        );
        assert_eq!(declared_too_large(&h, MAX_HOOK_BODY), None);
        h.insert(header::CONTENT_LENGTH, "1073741824".parse().unwrap());
        assert_eq!(declared_too_large(&h, MAX_HOOK_BODY), Some(1 << 30));
        let r = too_large(MAX_HOOK_BODY);
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.headers()[header::CONNECTION], "close");
    }
}

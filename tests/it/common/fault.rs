//! A fault-injecting HTTP/1.1 proxy between mcp-gitops and a real gateway, on its own runtime
//! (so a test may block on a child process while it serves). One request per connection: the
//! request goes upstream with `Connection: close`, the answer comes back with it too.
//!
//! At the configured rate a request gets one of: a 5xx (before it reaches the gateway, or after
//! the gateway did it), a 429 with `Retry-After: 1`, a connection reset (before or after), or
//! 1–3 s of latency. The draws come from a seeded RNG, so the sequence of faults is the same on
//! every run (which request gets which still follows arrival order under concurrency).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// SplitMix64: small, seeded, good enough to pick faults and kill points.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }
}

/// What the proxy saw and did.
#[derive(Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub writes: AtomicU64,
    pub injected_5xx: AtomicU64,
    pub injected_429: AtomicU64,
    pub resets: AtomicU64,
    pub delays: AtomicU64,
    /// 429s that came from the gateway itself.
    pub upstream_429: AtomicU64,
    /// Requests read and not yet answered (the gateway may still be working on them).
    pub in_flight: AtomicU64,
}

/// Counts a request in flight until dropped, on every way out of `serve`.
struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    fn enter(c: &'a AtomicU64) -> InFlight<'a> {
        c.fetch_add(1, Ordering::SeqCst);
        InFlight(c)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Stats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::SeqCst)
    }

    pub fn summary(&self) -> String {
        format!(
            "{} requests ({} writes): {} injected 5xx, {} injected 429, {} resets, {} delays; {} 429 from the gateway",
            Self::get(&self.requests),
            Self::get(&self.writes),
            Self::get(&self.injected_5xx),
            Self::get(&self.injected_429),
            Self::get(&self.resets),
            Self::get(&self.delays),
            Self::get(&self.upstream_429),
        )
    }
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    ErrorBefore,
    ErrorAfter,
    Throttle,
    ResetBefore,
    ResetAfter,
    Delay(u64),
}

struct Shared {
    upstream: String,
    rate: f64,
    rng: Mutex<Rng>,
    stats: Arc<Stats>,
}

impl Shared {
    fn draw(&self) -> Option<Fault> {
        let mut rng = self.rng.lock().unwrap();
        if rng.unit() >= self.rate {
            return None;
        }
        Some(match rng.range(0, 6) {
            0 => Fault::ErrorBefore,
            1 => Fault::ErrorAfter,
            2 => Fault::Throttle,
            3 => Fault::ResetBefore,
            4 => Fault::ResetAfter,
            _ => Fault::Delay(rng.range(1000, 3001)),
        })
    }
}

/// A running proxy; stopped on drop.
pub struct Proxy {
    pub url: String,
    pub stats: Arc<Stats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Forward to `upstream` (`http://127.0.0.1:PORT`), injecting faults into a `rate` share
    /// of requests (0.0: a transparent proxy that only counts).
    pub fn start(upstream: &str, rate: f64, seed: u64) -> Proxy {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_start_matches("http://").to_string(),
            rate,
            rng: Mutex::new(Rng::new(seed)),
            stats: Arc::new(Stats::default()),
        });
        let stats = shared.stats.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                let accept = async {
                    loop {
                        let Ok((conn, _)) = listener.accept().await else {
                            continue;
                        };
                        tokio::spawn(serve(conn, shared.clone()));
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = rx => {}
                }
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        });
        Proxy {
            url,
            stats,
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Read one request head and body; None when the client closed first.
async fn read_request(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len = header(&head, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The head with any `Connection`/`Keep-Alive` header replaced by `Connection: close`.
fn closing(head: &str) -> String {
    let mut out: Vec<&str> = head
        .trim_end()
        .split("\r\n")
        .filter(|l| {
            let k = l.split(':').next().unwrap_or("").trim();
            !k.eq_ignore_ascii_case("connection") && !k.eq_ignore_ascii_case("keep-alive")
        })
        .collect();
    out.push("Connection: close");
    format!("{}\r\n\r\n", out.join("\r\n"))
}

async fn forward(upstream: &str, head: &str, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(closing(head).as_bytes()).await?;
    up.write_all(body).await?;
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(120), up.read_to_end(&mut resp))
        .await
        .map_err(|_| std::io::Error::other("upstream timed out"))??;
    Ok(resp)
}

fn canned(status: &str, extra: &str) -> Vec<u8> {
    let body = format!("{{\"detail\":\"injected {status}\"}}");
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn reset(conn: TcpStream) {
    // SO_LINGER 0: closing sends RST instead of FIN.
    let std = conn.into_std().unwrap();
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a linger struct of the size given.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&std),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// The gateway's answer with `Connection: close` in its head, so the client never reuses it.
fn closed_answer(resp: Vec<u8>) -> Vec<u8> {
    let Some(end) = find(&resp, b"\r\n\r\n") else {
        return resp;
    };
    let head = String::from_utf8_lossy(&resp[..end + 4]).to_string();
    let mut out = closing(&head).into_bytes();
    out.extend_from_slice(&resp[end + 4..]);
    out
}

async fn serve(mut conn: TcpStream, sh: Arc<Shared>) {
    let Some((head, body)) = read_request(&mut conn).await else {
        return;
    };
    let st = &sh.stats;
    let _in_flight = InFlight::enter(&st.in_flight);
    st.requests.fetch_add(1, Ordering::SeqCst);
    if !head.starts_with("GET ") {
        st.writes.fetch_add(1, Ordering::SeqCst);
    }
    let fault = sh.draw();
    let answer = match fault {
        Some(Fault::ErrorBefore) => {
            st.injected_5xx.fetch_add(1, Ordering::SeqCst);
            canned("503 Service Unavailable", "")
        }
        Some(Fault::Throttle) => {
            st.injected_429.fetch_add(1, Ordering::SeqCst);
            canned("429 Too Many Requests", "retry-after: 1\r\n")
        }
        Some(Fault::ResetBefore) => {
            st.resets.fetch_add(1, Ordering::SeqCst);
            return reset(conn);
        }
        _ => {
            if let Some(Fault::Delay(ms)) = fault {
                st.delays.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            let Ok(resp) = forward(&sh.upstream, &head, &body).await else {
                return reset(conn);
            };
            if resp.starts_with(b"HTTP/1.1 429") || resp.starts_with(b"HTTP/1.0 429") {
                st.upstream_429.fetch_add(1, Ordering::SeqCst);
            }
            match fault {
                Some(Fault::ErrorAfter) => {
                    st.injected_5xx.fetch_add(1, Ordering::SeqCst);
                    canned("502 Bad Gateway", "")
                }
                Some(Fault::ResetAfter) => {
                    st.resets.fetch_add(1, Ordering::SeqCst);
                    return reset(conn);
                }
                _ => closed_answer(resp),
            }
        }
    };
    let _ = conn.write_all(&answer).await;
    let _ = conn.shutdown().await;
}

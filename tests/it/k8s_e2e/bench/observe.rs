//! What the benchmark observes the controller with, from outside: the gateway polled from
//! 127.0.0.2 as a second admin user, the gateway's access log, the controller's `/metrics` and
//! its `/proc` status.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use mcp_gitops::gateway::{Auth, MintOptions};
use serde_json::{Value, json};

use crate::common::Gateway;
use crate::common::kube_api::NS;
use crate::common::proc::Logged;

/// The benchmark's own admin user on the gateway (a password the gateway accepts for one).
pub(super) const OBSERVER: &str = "bench-observer@example.com";
pub(super) const OBSERVER_PASSWORD: &str = "Quiet-River-Stone-Lamp-93-Moss!";
/// What the observer allows itself a minute (the gateway allows 500 per IP and per user).
pub(super) const OBSERVER_PER_MINUTE: usize = 450;
/// Polls the gateway from 127.0.0.2 as its own admin user, within its own budget.
pub(super) struct Observer {
    http: reqwest::Client,
    url: String,
    token: String,
    sent: VecDeque<Instant>,
    /// Times it waited for its own budget.
    pub(super) paced: u32,
}

impl Observer {
    pub(super) async fn new(gw: &Gateway) -> Observer {
        gw.post(
            "/auth/email/admin/users",
            json!({"email": OBSERVER, "password": OBSERVER_PASSWORD,
                   "full_name": "Benchmark observer", "is_admin": true}),
        )
        .await;
        let token = Auth::Mint(MintOptions {
            user: OBSERVER.into(),
            jwt_secret: gw.jwt_secret().into(),
            audience: "mcpgateway-api".into(),
            issuer: "mcpgateway".into(),
            ttl: Duration::from_secs(4 * 3600),
        })
        .bearer()
        .unwrap();
        let http = reqwest::Client::builder()
            .local_address("127.0.0.2".parse::<IpAddr>().unwrap())
            .build()
            .unwrap();
        Observer {
            http,
            url: gw.url.clone(),
            token,
            sent: VecDeque::new(),
            paced: 0,
        }
    }

    /// Wait until `n` more requests fit in the observer's one-minute window.
    pub(super) async fn headroom(&mut self, n: usize) {
        loop {
            let now = Instant::now();
            while self
                .sent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
            {
                self.sent.pop_front();
            }
            if self.sent.len() + n <= OBSERVER_PER_MINUTE {
                return;
            }
            self.paced += 1;
            let oldest = *self.sent.front().unwrap();
            tokio::time::sleep_until((oldest + Duration::from_secs(60)).into()).await;
        }
    }

    pub(super) async fn get(&mut self, path: &str) -> Value {
        self.headroom(1).await;
        self.sent.push_back(Instant::now());
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("observer GET {path}: {e}"));
        let status = r.status();
        let body = r.text().await.unwrap();
        // A 429 here would mean the benchmark disturbed what it measures.
        assert!(status.is_success(), "observer GET {path}: {status}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Poll tool `id` every `every` until its description is `want`: when the answer showing
    /// it arrived, and how many polls it took; None after `deadline`.
    pub(super) async fn until_description(
        &mut self,
        id: &str,
        want: &str,
        every: Duration,
        deadline: Duration,
    ) -> Option<(Instant, u32)> {
        let end = Instant::now() + deadline;
        let mut polls = 0;
        while Instant::now() < end {
            let sent = Instant::now();
            let t = self.get(&format!("/v1/tools/{id}")).await;
            polls += 1;
            if t["description"] == want {
                return Some((Instant::now(), polls));
            }
            tokio::time::sleep_until((sent + every).into()).await;
        }
        None
    }
}

/// One line of the gateway's uvicorn access log.
pub(super) struct Access {
    pub(super) at: DateTime<Utc>,
    pub(super) ip: String,
    pub(super) method: String,
    pub(super) path: String,
    pub(super) status: u16,
}

pub(super) fn access_log(gw: &Gateway) -> Vec<Access> {
    let text = std::fs::read_to_string(gw.dir.path().join("gateway.log")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["name"] == "uvicorn.access")
        .filter_map(|v| {
            // `127.0.0.1:51061 - "GET /v1/tools HTTP/1.1" 200`
            let at = DateTime::parse_from_rfc3339(v["@timestamp"].as_str()?).ok()?;
            let (client, rest) = v["message"].as_str()?.split_once(" - \"")?;
            let mut words = rest.split_whitespace();
            let method = words.next()?.to_string();
            let path = words.next()?.to_string();
            let status = words.nth(1)?.parse().ok()?;
            Some(Access {
                at: at.with_timezone(&Utc),
                ip: client.rsplit_once(':')?.0.to_string(),
                method,
                path,
                status,
            })
        })
        .collect()
}

/// The controller's requests (127.0.0.1) logged from `from` to `to`.
pub(super) fn controller_requests(
    log: &[Access],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<&Access> {
    log.iter()
        .filter(|a| a.ip == "127.0.0.1" && a.at >= from && a.at <= to)
        .collect()
}

/// Requests counted by method and path (ids as `{id}`, no query), most frequent first.
pub(super) fn routes(log: &[&Access]) -> String {
    let mut by: HashMap<String, usize> = HashMap::new();
    for a in log {
        let path = a.path.split('?').next().unwrap_or_default();
        let path: Vec<&str> = path
            .split('/')
            .map(|p| {
                if p.len() >= 16 && p.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                    "{id}"
                } else {
                    p
                }
            })
            .collect();
        *by.entry(format!("{} {}", a.method, path.join("/")))
            .or_default() += 1;
    }
    let mut v: Vec<(String, usize)> = by.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.iter()
        .map(|(r, n)| format!("{n} {r}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The last `n` lines of the controller's log.
pub(super) fn tail(ctl: &Logged, n: usize) -> String {
    let log = ctl.text();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// On drop (the end, or a panic), copies the gateway's log and the controller's to
/// `BENCH_K8S_KEEP` (default `target/k8s-bench`) for a look afterwards.
pub(super) struct Keep<'a> {
    pub(super) gw: &'a Gateway,
    pub(super) ctl: Option<&'a Logged>,
}

impl Drop for Keep<'_> {
    fn drop(&mut self) {
        let dir = std::env::var_os("BENCH_K8S_KEEP")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| crate::common::root().join("target/k8s-bench"));
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::copy(
            self.gw.dir.path().join("gateway.log"),
            dir.join("gateway.log"),
        );
        if let Some(ctl) = self.ctl {
            let _ = std::fs::write(dir.join("controller.log"), ctl.text());
        }
        eprintln!("k8s-bench: logs kept in {}", dir.display());
    }
}

pub(super) async fn scrape(addr: &str) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The sum of every sample whose line starts with `prefix`.
pub(super) fn sum(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub(super) struct Counts {
    pub(super) reconciles: f64,
    pub(super) reads: f64,
    pub(super) writes: f64,
    pub(super) status_writes: f64,
}

pub(super) async fn counts(addr: &str) -> Counts {
    let m = scrape(addr).await;
    let gw = |kind: &str| {
        sum(
            &m,
            &format!(
                "mcp_gitops_controller_gateway_requests_total{{gateway=\"{NS}/gw\",kind=\"{kind}\"}}"
            ),
        )
    };
    Counts {
        reconciles: sum(&m, "mcp_gitops_reconcile_total{"),
        reads: gw("read"),
        writes: gw("write"),
        status_writes: sum(&m, "mcp_gitops_controller_status_writes_total"),
    }
}

/// VmRSS, VmHWM, RssAnon, RssFile (MB) and Threads of `pid`.
pub(super) fn memory(pid: u32) -> (f64, f64, f64, f64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let mb = |k: &str| field(k) as f64 / 1024.0;
    (
        mb("VmRSS"),
        mb("VmHWM"),
        mb("RssAnon"),
        mb("RssFile"),
        field("Threads"),
    )
}

//! The controller benchmarks of issue 12, run by `tests/bench/run.sh k8s` (ignored in the
//! ordinary test run): 50 `GatewayConfig`s, each with one ConfigMap holding one tool, on one
//! real gateway, the built `mcp-gitops controller` (the release binary when `MCP_GITOPS_BIN`
//! says so) against the fake API server. Speed is measured and printed (`k8s-bench:` lines,
//! which the script collects), not asserted; correctness is (every edit lands).
//!
//! 1. edit → live: patch config i's ConfigMap with a new description at t0, poll the gateway's
//!    `GET /v1/tools/{id}` until it shows (t1); also the gateway's own access-log time of the
//!    controller's `PUT` (no poll resolution in it);
//! 2. steady state: every config at a short `interval`, several intervals with nothing to do:
//!    writes to the API server (status or other) and to the gateway, counted;
//! 3. the gateway requests in those intervals (its access log, and the controller's
//!    `mcp_gitops_controller_gateway_requests_total`) against the ContextForgeGateway's budget
//!    (`requestsPerMinute`, default 450);
//! 4. the controller's VmRSS / VmHWM with the 50 configs idle.
//!
//! The gateway runs as the tests' does — rate limiting on at ContextForge's defaults: 500
//! requests a minute on `/v1` per client IP and, separately, per user; five 429s lock the IP or
//! user out for 15 minutes — plus `LOG_LEVEL=INFO` for its access log. During the measured
//! windows the controller is its only client on 127.0.0.1 as the admin user; the benchmark
//! observes from 127.0.0.2 as a second admin user (so its polls count against windows of their
//! own, not the controller's), pacing itself under 450 requests a minute.

mod observe;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use kube::api::{Api, Patch, PatchParams};
use mcp_gitops::k8s::crd::GatewayConfig;
use serde_json::json;

use super::{Cluster, condition, tool_doc};
use crate::common::Gateway;
use crate::common::kube_api::NS;
use crate::common::proc::Logged;
use observe::{
    Keep, OBSERVER_PER_MINUTE, Observer, access_log, controller_requests, counts, memory, routes,
    tail,
};

/// The ContextForgeGateway's `requestsPerMinute` (not set: the default).
const BUDGET_PER_MINUTE: u64 = 450;

fn setting<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn name(i: usize) -> String {
    format!("bench-{i:02}")
}

/// Wait until every config is Ready for its current generation.
async fn all_ready(c: &Cluster, names: &[String], ctl: &Logged, deadline: Duration) {
    let end = Instant::now() + deadline;
    loop {
        let pending: Vec<&String> = names
            .iter()
            .filter(|n| {
                c.config(n).is_none_or(|o| {
                    condition(&o, "Ready").is_none_or(|r| r["status"] != "True")
                        || o["status"]["observedGeneration"] != o["metadata"]["generation"]
                })
            })
            .collect();
        if pending.is_empty() {
            return;
        }
        if Instant::now() >= end {
            panic!(
                "{} configs not Ready for their generation after {deadline:?} (first: {}); the controller's last lines:\n{}",
                pending.len(),
                pending[0],
                tail(ctl, 60)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// p50, p90 and max of `v` in ms (nearest rank).
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = |q: f64| s[((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
    (rank(0.5), rank(0.9), s[s.len() - 1])
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// What one round of edits measured.
struct Edits {
    /// t1 - t0 by polling, ms.
    polled: Vec<f64>,
    /// The controller's PUT in the gateway's access log - t0, ms.
    logged: Vec<f64>,
    polls: u32,
}

/// Edit the ConfigMap of each of `which` in turn (the next once the previous is live).
#[allow(clippy::too_many_arguments)]
async fn edit_round(
    c: &Cluster,
    ctl: &Logged,
    obs: &mut Observer,
    ids: &HashMap<String, String>,
    which: &[usize],
    round: &str,
    every: Duration,
    deadline: Duration,
) -> Edits {
    let mut out = Edits {
        polled: Vec::new(),
        logged: Vec::new(),
        polls: 0,
    };
    let mut starts = Vec::new();
    for &i in which {
        let n = name(i);
        let want = format!("{round} {i}");
        // Enough budget for the whole poll at this resolution, so pacing does not blur it.
        let need = (1000.0 / every.as_millis() as f64 * 1.5).ceil() as usize;
        obs.headroom(need.min(OBSERVER_PER_MINUTE / 2)).await;
        let (t0, wall0) = (Instant::now(), Utc::now());
        c.set_doc(&n, &tool_doc(&n, &want)).await;
        let (t1, polls) = obs
            .until_description(&ids[&n], &want, every, deadline)
            .await
            .unwrap_or_else(|| {
                let log = access_log(&c.gw);
                let ours = controller_requests(&log, wall0 - chrono::Duration::seconds(60), Utc::now());
                panic!(
                    "{round}: the edit of {n} was not live after {deadline:?}; the controller's gateway requests since a minute before the edit: {} ({} answered 429): {}\nthe controller's last lines:\n{}",
                    ours.len(),
                    ours.iter().filter(|a| a.status == 429).count(),
                    routes(&ours),
                    tail(ctl, 60)
                )
            });
        out.polled.push(ms(t1 - t0));
        out.polls += polls;
        starts.push((ids[&n].clone(), wall0));
    }
    let log = access_log(&c.gw);
    for (id, wall0) in starts {
        let path = format!("/v1/tools/{id}");
        if let Some(a) = log
            .iter()
            .find(|a| a.ip == "127.0.0.1" && a.method == "PUT" && a.path == path && a.at >= wall0)
        {
            out.logged
                .push((a.at - wall0).num_microseconds().unwrap() as f64 / 1000.0);
        }
    }
    out
}

fn report_edits(what: &str, e: &Edits, every: Duration) {
    let (p50, p90, max) = spread(&e.polled);
    let logged = if e.logged.is_empty() {
        "no PUT found in the access log".to_string()
    } else {
        let (l50, l90, lmax) = spread(&e.logged);
        format!(
            "p50 {l50:.0} ms, p90 {l90:.0} ms, max {lmax:.0} ms ({} PUTs found)",
            e.logged.len()
        )
    };
    println!(
        "k8s-bench: edit->live {what}, {} edits, polled every {} ms ({} polls): p50 {p50:.0} ms, p90 {p90:.0} ms, max {max:.0} ms; \
         the controller's PUT in the gateway's access log: {logged}; target p50 < 1000 ms: {}",
        e.polled.len(),
        every.as_millis(),
        e.polls,
        verdict(p50 < 1000.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: tests/bench/run.sh k8s"]
async fn k8s_bench_fifty_configs() {
    let n: usize = setting("BENCH_K8S_CONFIGS", 50);
    // Steady states: `SECONDSxINTERVALS`, e.g. "60x3 10x12": interval 60 s (50 configs' checks
    // fit the budget), a window of 3 of them; then 10 s (4 times what the budget allows).
    let steady_spec: String = setting("BENCH_K8S_STEADY", "60x3 10x12".to_string());
    let steady_runs: Vec<(u64, u64)> = steady_spec
        .split_whitespace()
        .filter_map(|r| {
            let (a, b) = r.split_once('x')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect();
    let steady_runs = &steady_runs[..];
    let idle_s: u64 = setting("BENCH_K8S_IDLE_SECONDS", 15);
    let loaded: usize = setting("BENCH_K8S_LOADED_EDITS", 5);
    let names: Vec<String> = (0..n).map(name).collect();

    let c = Cluster::with_gateway(Gateway::start_with(&[("LOG_LEVEL", "INFO")]));
    let mut obs = Observer::new(&c.gw).await;
    c.jwt_gateway("gw").await;
    for n in &names {
        c.config_map(n, &[("tools.yaml", &tool_doc(n, "v0"))]).await;
        c.gateway_config(n, "gw", n, json!({"interval": "5m"}))
            .await;
    }
    println!(
        "k8s-bench: setup: {n} GatewayConfigs (one ConfigMap, one tool each, interval 5m) on one gateway; \
         controller {}",
        std::env::var("MCP_GITOPS_BIN").unwrap_or_else(|_| "the test build's mcp-gitops".into())
    );

    // 0. The controller starts with all of them waiting.
    // The controller's default log level: debug logging is the e2e tests' leak check, not the
    // production cost being measured.
    let (ctl, metrics) = c.controller_with_metrics(
        "bench",
        &[],
        &[("MCP_GITOPS_LOG", std::ffi::OsStr::new("info"))],
    );
    let _keep = Keep {
        gw: &c.gw,
        ctl: Some(&ctl),
    };
    let started = Instant::now();
    let from_start = Utc::now();
    all_ready(&c, &names, &ctl, Duration::from_secs(600)).await;
    let converged = started.elapsed();
    let tools = obs.get("/v1/tools?limit=0").await;
    let ids: HashMap<String, String> = tools
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["description"] == "v0")
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for n in &names {
        assert!(ids.contains_key(n), "tool {n} is not on the gateway");
    }
    let log = access_log(&c.gw);
    let first = controller_requests(&log, from_start, Utc::now());
    println!(
        "k8s-bench: first reconcile of all {n}: Ready and on the gateway {:.1} s after the controller started; {} gateway requests: {}",
        converged.as_secs_f64(),
        first.len(),
        routes(&first)
    );

    // 1. Edit -> live, each config once, at the default interval, with the minute's budget
    //    free (the first reconciles spent most of it: what an edit then waits for is below).
    budget_clear(&c.gw, &ctl).await;
    let every = Duration::from_millis(20);
    let all: Vec<usize> = (0..n).collect();
    let quiet = edit_round(
        &c,
        &ctl,
        &mut obs,
        &ids,
        &all,
        "edit",
        every,
        Duration::from_secs(120),
    )
    .await;
    report_edits("(interval 5m, one at a time, budget free)", &quiet, every);

    // 4. Idle: nothing due for minutes.
    let pid = ctl.pid();
    let before = counts(&metrics).await;
    let (rss0, ..) = memory(pid);
    tokio::time::sleep(Duration::from_secs(idle_s)).await;
    let (rss, hwm, anon, file, threads) = memory(pid);
    let after = counts(&metrics).await;
    println!(
        "k8s-bench: idle with {n} configs: VmRSS {rss:.1} MB ({rss0:.1} MB {idle_s} s earlier; {anon:.1} MB anonymous, {file:.1} MB file-backed), \
         VmHWM {hwm:.1} MB (the peak so far: first reconciles and edits), {threads} threads; \
         {} reconciles and {} gateway requests in those {idle_s} s; target RSS < 40 MB: {}",
        after.reconciles - before.reconciles,
        after.reads + after.writes - before.reads - before.writes,
        verdict(rss < 40.0)
    );

    // 2 and 3. Steady states: each interval, a window of several of them.
    for &(interval_s, intervals) in steady_runs {
        steady(&c, &ctl, &metrics, &names, interval_s, intervals).await;
    }

    // 1 again, while every config is due every (last) interval: a sample.
    let every = Duration::from_millis(250);
    let sample: Vec<usize> = (0..loaded).map(|k| k * n / loaded.max(1)).collect();
    let busy = edit_round(
        &c,
        &ctl,
        &mut obs,
        &ids,
        &sample,
        "busy",
        every,
        Duration::from_secs(300),
    )
    .await;
    let last = steady_runs.last().map(|r| r.0).unwrap_or(0);
    report_edits(&format!("(interval {last}s on all)"), &busy, every);

    let (rss, hwm, ..) = memory(pid);
    let all_log = access_log(&c.gw);
    let ours = controller_requests(&all_log, from_start, Utc::now());
    println!(
        "k8s-bench: end: VmRSS {rss:.1} MB, VmHWM {hwm:.1} MB; the controller's gateway requests answered 429 over the whole run: {} of {}; \
         the observer waited for its own budget {} times",
        ours.iter().filter(|a| a.status == 429).count(),
        ours.len(),
        obs.paced
    );
}

/// Wait until the gateway's access log shows no request of the controller in the last minute
/// (its client-side window is empty then).
async fn budget_clear(gw: &Gateway, ctl: &Logged) {
    let end = Instant::now() + Duration::from_secs(300);
    loop {
        let log = access_log(gw);
        let now = Utc::now();
        let last = log.iter().rev().find(|a| a.ip == "127.0.0.1").map(|a| a.at);
        if last.is_none_or(|t| now - t > chrono::Duration::seconds(61)) {
            return;
        }
        assert!(
            Instant::now() < end,
            "the controller did not go quiet; its last lines:\n{}",
            tail(ctl, 40)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Every config at `interval_s`, then a window of `intervals` intervals: writes to the API
/// server and the gateway, and the gateway requests against the budget.
async fn steady(
    c: &Cluster,
    ctl: &Logged,
    metrics: &str,
    names: &[String],
    interval_s: u64,
    intervals: u64,
) {
    let configs = Api::<GatewayConfig>::namespaced(c.client(), NS);
    for n in names {
        configs
            .patch(
                n,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"interval": format!("{interval_s}s")}})),
            )
            .await
            .unwrap();
    }
    all_ready(c, names, ctl, Duration::from_secs(600)).await;
    // Every config has reconciled at the new generation; one more interval (and a minute, the
    // client's window) passes so that the window starts in the steady rhythm, not in the burst
    // the edit of every spec caused.
    tokio::time::sleep(Duration::from_secs(interval_s.max(60))).await;
    let window = Duration::from_secs(interval_s * intervals);
    let mark = c.api.mark();
    let before = counts(metrics).await;
    let w0 = Utc::now();
    tokio::time::sleep(window).await;
    let w1 = Utc::now();
    let after = counts(metrics).await;
    let api = c.api.requests_since(mark);
    let api_writes: Vec<_> = api.iter().filter(|r| r.is_write()).collect();
    let status_writes = api_writes.iter().filter(|r| r.is_status_write()).count();
    let event_writes = api_writes
        .iter()
        .filter(|r| r.path.contains("/events"))
        .count();
    let api_reads = api
        .iter()
        .filter(|r| !r.is_write() && !r.is_watch())
        .count();
    let log = access_log(&c.gw);
    let gw = controller_requests(&log, w0, w1);
    let gw_writes = gw.iter().filter(|a| a.method != "GET").count();
    let limited = gw.iter().filter(|a| a.status == 429).count();
    let checks = after.reconciles - before.reconciles;
    // Per interval, in order; and the busiest minute (any 60 s within the window).
    let each: Vec<usize> = (0..intervals)
        .map(|k| {
            let from = w0 + chrono::Duration::seconds((k * interval_s) as i64);
            let to = from + chrono::Duration::seconds(interval_s as i64);
            gw.iter().filter(|a| a.at >= from && a.at < to).count()
        })
        .collect();
    let busiest = gw
        .iter()
        .map(|a| {
            gw.iter()
                .filter(|b| b.at >= a.at && b.at < a.at + chrono::Duration::seconds(60))
                .count()
        })
        .max()
        .unwrap_or(0);
    let budget = (BUDGET_PER_MINUTE * interval_s) as f64 / 60.0;
    let counted = after.reads + after.writes - before.reads - before.writes;
    let max_each = each.iter().copied().max().unwrap_or(0);
    println!(
        "k8s-bench: steady state, interval {interval_s}s, {intervals} intervals ({} s): API server writes {} \
         ({status_writes} status, {event_writes} Events; the controller's metrics: {} status writes), {api_reads} API reads (not watches); \
         gateway writes {gw_writes}; target 0 and 0: {}",
        window.as_secs(),
        api_writes.len(),
        after.status_writes - before.status_writes,
        verdict(api_writes.is_empty() && gw_writes == 0)
    );
    println!(
        "k8s-bench: gateway requests, interval {interval_s}s: per interval {each:?} (access log: {} in all; the controller's metrics: {counted:.0}), \
         busiest minute {busiest} (by the access log's time, when the gateway answered), {limited} answered 429; \
         budget {BUDGET_PER_MINUTE} in any minute{}: {}; \
         drift checks: {checks:.0} in the window = {:.1} per interval of the {} due; {:.1} requests per check: {}",
        gw.len(),
        // The budget is per minute: an interval under a minute has no budget of its own, and
        // the limiter may spend a minute's in one burst.
        if interval_s >= 60 {
            format!(" and so {budget:.0} per interval")
        } else {
            String::new()
        },
        verdict(
            (interval_s < 60 || max_each as f64 <= budget)
                && (window.as_secs() < 60 || busiest as u64 <= BUDGET_PER_MINUTE)
                && limited == 0
        ),
        checks / intervals as f64,
        names.len(),
        if checks > 0.0 {
            gw.len() as f64 / checks
        } else {
            0.0
        },
        routes(&gw)
    );
}

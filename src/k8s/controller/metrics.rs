//! The controller's `/metrics` (OpenMetrics text): the daemon's per-environment series
//! ([`crate::engine::metrics::ReconcileSeries`], the same code), with
//! `environment` = `NAMESPACE/NAME` of a GatewayConfig — reconcile outcome and duration, drift,
//! the last time the gateway held the desired state — the daemon's backup series with
//! `environment` = `NAMESPACE/NAME` of a GatewayBackup, and the controller's own counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Error;
use super::backup::{BackupFailed, Snapshot};
use crate::core::error::Classify;
use crate::engine::metrics::{self as series, Env, EnvOutcome, ReconcileSeries};
use crate::gateway::Stats;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: String,
    result: String,
}

/// What one GatewayConfig reconcile came to, for the metrics.
pub enum Cycle<'a> {
    /// Planned: `changes` entities differed; `applied` when they were written.
    Planned {
        changes: usize,
        applied: bool,
    },
    Suspended,
    Failed(&'a Error),
}

pub struct Metrics {
    registry: Registry,
    reconcile: ReconcileSeries,
    by_kind: Family<Kind, Counter>,
    backups: Family<EnvOutcome, Counter>,
    last_backup: Family<Env, Gauge>,
    pub status_writes: AtomicU64,
    pub events: AtomicU64,
    /// Requests sent to each gateway (`namespace/name` of its ContextForgeGateway) by its
    /// configs and its own checks together: what its `requestsPerMinute` budget covers.
    gateways: Mutex<BTreeMap<String, Arc<Stats>>>,
    text: Mutex<String>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut r = Registry::with_prefix("mcp_gitops");
        let mut m = Metrics {
            registry: Registry::default(),
            reconcile: ReconcileSeries::register(&mut r),
            by_kind: Family::default(),
            backups: Family::default(),
            last_backup: Family::default(),
            status_writes: AtomicU64::new(0),
            events: AtomicU64::new(0),
            gateways: Mutex::new(BTreeMap::new()),
            text: Mutex::new(String::new()),
        };
        r.register(
            "controller_reconciles",
            "Reconciles of each kind, ok or failed",
            m.by_kind.clone(),
        );
        r.register(
            "backups",
            "GatewayBackup snapshots by outcome: committed, unchanged, failed",
            m.backups.clone(),
        );
        r.register(
            "last_backup_timestamp_seconds",
            "When a GatewayBackup's last snapshot succeeded (Unix time)",
            m.last_backup.clone(),
        );
        m.registry = r;
        m
    }
}

impl Metrics {
    /// One reconcile of `kind`, ok or failed (suspended counts as ok).
    pub fn reconciled<T>(&self, kind: &str, r: &Result<T, Error>) {
        self.reconciled_kind(kind, matches!(r, Ok(_) | Err(Error::Suspended)));
    }

    /// One reconcile of `kind`, ok or failed.
    pub fn reconciled_kind(&self, kind: &str, ok: bool) {
        self.by_kind
            .get_or_create(&Kind {
                kind: kind.into(),
                result: if ok { "ok" } else { "failed" }.into(),
            })
            .inc();
    }

    /// One snapshot of the GatewayBackup `name` (`namespace/name`), as the daemon counts its
    /// scheduled backups.
    pub fn backup(&self, name: &str, r: &Result<Snapshot, BackupFailed>) {
        let outcome = match r {
            Ok(Snapshot {
                commit: Some(_), ..
            }) => "committed",
            Ok(_) => "unchanged",
            Err(_) => "failed",
        };
        self.backups
            .get_or_create(&series::outcome(name, outcome))
            .inc();
        if r.is_ok() {
            self.last_backup
                .get_or_create(&series::env(name))
                .set(crate::core::clock::now_unix() as i64);
        }
    }

    /// One GatewayConfig reconcile of `environment` (`namespace/name`).
    pub fn cycle(&self, environment: &str, cycle: Cycle<'_>, took: Duration) {
        let (label, left) = match &cycle {
            Cycle::Planned { changes: 0, .. } => ("in_sync".to_string(), 0),
            Cycle::Planned { applied: true, .. } => ("applied".to_string(), 0),
            Cycle::Planned { changes, .. } => ("drift".to_string(), *changes),
            Cycle::Suspended => return self.reconcile.count(environment, "suspended"),
            Cycle::Failed(e) => (format!("failed_{}", e.class().label()), 0),
        };
        let planned = matches!(cycle, Cycle::Planned { .. });
        self.reconcile.record(
            environment,
            series::Cycle {
                outcome: &label,
                took,
                drift: planned.then_some(left),
                holds_desired: planned && left == 0,
            },
        );
    }

    /// The request counters of the gateway `namespace/name`, for every client talking to it.
    pub fn gateway_stats(&self, gateway: &str) -> Arc<Stats> {
        self.gateways
            .lock()
            .expect("gateway stats")
            .entry(gateway.to_string())
            .or_default()
            .clone()
    }

    /// OpenMetrics text, the controller's counters and whether this replica leads included.
    pub fn render(&self, leader: bool) -> String {
        let mut text = self.text.lock().expect("metrics text");
        text.clear();
        encode(&mut *text, &self.registry).expect("encoding to a String");
        let body = text.trim_end().trim_end_matches("# EOF").to_string();
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut requests = String::from("# TYPE mcp_gitops_controller_gateway_requests counter\n");
        // Namespaces and names are DNS labels: nothing in them needs escaping.
        for (gw, s) in self.gateways.lock().expect("gateway stats").iter() {
            for (kind, n) in [("read", s.reads()), ("write", s.writes())] {
                requests.push_str(&format!(
                    "mcp_gitops_controller_gateway_requests_total{{gateway=\"{gw}\",kind=\"{kind}\"}} {n}\n"
                ));
            }
        }
        format!(
            "{body}{requests}# TYPE mcp_gitops_controller_status_writes counter\n\
             mcp_gitops_controller_status_writes_total {}\n\
             # TYPE mcp_gitops_controller_events counter\n\
             mcp_gitops_controller_events_total {}\n\
             # TYPE mcp_gitops_controller_leader gauge\n\
             mcp_gitops_controller_leader {}\n# EOF\n",
            g(&self.status_writes),
            g(&self.events),
            u8::from(leader)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemons_series_per_config_and_the_controllers_counters() {
        let m = Metrics::default();
        let took = Duration::from_millis(120);
        m.cycle(
            "mcp/dev",
            Cycle::Planned {
                changes: 2,
                applied: true,
            },
            took,
        );
        m.cycle(
            "mcp/dev",
            Cycle::Planned {
                changes: 0,
                applied: false,
            },
            took,
        );
        m.cycle(
            "mcp/obs",
            Cycle::Planned {
                changes: 3,
                applied: false,
            },
            took,
        );
        let e = Error::Invalid("bad".into());
        m.cycle("mcp/bad", Cycle::Failed(&e), took);
        m.reconciled::<()>("GatewayConfig", &Err(e));
        m.reconciled("GatewayConfig", &Ok(()));
        m.status_writes.fetch_add(2, Ordering::Relaxed);
        let snap = |commit: Option<&str>| Snapshot {
            commit: commit.map(str::to_string),
            previous: None,
            subject: None,
            entities: 1,
        };
        m.backup("mcp/nightly", &Ok(snap(Some("abc"))));
        m.backup("mcp/nightly", &Ok(snap(None)));
        m.backup("mcp/nightly", &Err(BackupFailed::NoKey("gw".into())));
        let gw = m.gateway_stats("mcp/gw");
        gw.reads.fetch_add(5, Ordering::Relaxed);
        m.gateway_stats("mcp/gw")
            .writes
            .fetch_add(1, Ordering::Relaxed);
        let t = m.render(true);
        for line in [
            r#"mcp_gitops_reconcile_total{environment="mcp/dev",outcome="applied"} 1"#,
            r#"mcp_gitops_reconcile_total{environment="mcp/dev",outcome="in_sync"} 1"#,
            r#"mcp_gitops_reconcile_total{environment="mcp/obs",outcome="drift"} 1"#,
            r#"mcp_gitops_reconcile_total{environment="mcp/bad",outcome="failed_invalid"} 1"#,
            r#"mcp_gitops_drift_entities{environment="mcp/obs"} 3"#,
            r#"mcp_gitops_drift_entities{environment="mcp/dev"} 0"#,
            r#"mcp_gitops_reconcile_duration_seconds_count{environment="mcp/dev"} 2"#,
            r#"mcp_gitops_controller_reconciles_total{kind="GatewayConfig",result="failed"} 1"#,
            r#"mcp_gitops_controller_reconciles_total{kind="GatewayConfig",result="ok"} 1"#,
            "mcp_gitops_controller_status_writes_total 2",
            r#"mcp_gitops_controller_gateway_requests_total{gateway="mcp/gw",kind="read"} 5"#,
            r#"mcp_gitops_controller_gateway_requests_total{gateway="mcp/gw",kind="write"} 1"#,
            "mcp_gitops_controller_leader 1",
            r#"mcp_gitops_backups_total{environment="mcp/nightly",outcome="committed"} 1"#,
            r#"mcp_gitops_backups_total{environment="mcp/nightly",outcome="unchanged"} 1"#,
            r#"mcp_gitops_backups_total{environment="mcp/nightly",outcome="failed"} 1"#,
        ] {
            assert!(t.contains(line), "{line} missing from:\n{t}");
        }
        assert!(t.contains(r#"mcp_gitops_last_applied_timestamp_seconds{environment="mcp/dev"}"#));
        assert!(!t.contains(r#"mcp_gitops_last_applied_timestamp_seconds{environment="mcp/obs"}"#));
        assert!(
            t.contains(r#"mcp_gitops_last_backup_timestamp_seconds{environment="mcp/nightly"}"#)
        );
        assert!(t.ends_with("# EOF\n"));
        assert_eq!(t.matches("# EOF").count(), 1);
    }
}

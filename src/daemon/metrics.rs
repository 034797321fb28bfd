//! Prometheus metrics of the daemon (`GET /metrics`, OpenMetrics text): reconcile duration and
//! outcome, drift, gateway requests and errors, the last-applied time, source errors, backups
//! and webhook requests — each labelled by environment — and the listener's connections.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::status::{BackupOutcome, CycleOutcome, EnvShared, SourceFault};
use crate::core::error::ErrorClass;
use crate::engine::metrics::{Cycle, Env, EnvOutcome, ReconcileSeries, env, outcome};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EnvReason {
    environment: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EnvRequest {
    environment: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HookResult {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CloseReason {
    reason: String,
}

/// The daemon's metrics.
pub struct Metrics {
    registry: Registry,
    reconcile: ReconcileSeries,
    source_errors: Family<EnvReason, Counter>,
    gateway_requests: Family<EnvRequest, Counter>,
    gateway_errors: Family<Env, Counter>,
    backups: Family<EnvOutcome, Counter>,
    last_backup: Family<Env, Gauge>,
    webhooks: Family<HookResult, Counter>,
    connections: Gauge,
    closed: Family<CloseReason, Counter>,
    sync: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("mcp_gitops");
        let mut m = Metrics {
            reconcile: ReconcileSeries::register(&mut registry),
            source_errors: Family::default(),
            gateway_requests: Family::default(),
            gateway_errors: Family::default(),
            backups: Family::default(),
            last_backup: Family::default(),
            webhooks: Family::default(),
            connections: Gauge::default(),
            closed: Family::default(),
            sync: Mutex::new(()),
            registry: Registry::default(),
        };
        registry.register(
            "source_errors",
            "Revisions or edits that could not be used, by reason: invalid, conflict, mass_delete, git",
            m.source_errors.clone(),
        );
        registry.register(
            "gateway_requests",
            "Requests sent to the gateway, by kind: read, write",
            m.gateway_requests.clone(),
        );
        registry.register(
            "gateway_errors",
            "Gateway requests that failed after retries",
            m.gateway_errors.clone(),
        );
        registry.register(
            "backups",
            "Scheduled backups by outcome: committed, unchanged, failed",
            m.backups.clone(),
        );
        registry.register(
            "last_backup_timestamp_seconds",
            "When the last backup succeeded (Unix time)",
            m.last_backup.clone(),
        );
        registry.register(
            "webhook_requests",
            "Webhook requests by result: accepted, unauthorized, throttled (a client over its limit of wrongly signed requests), rate_limited, bad_request, disabled",
            m.webhooks.clone(),
        );
        registry.register(
            "http_connections",
            "Connections the listener holds open",
            m.connections.clone(),
        );
        registry.register(
            "http_connections_closed",
            "Connections the listener closed itself, by reason: idle, header_timeout, evicted (the longest idle, for a new one over the cap), refused (over the cap, every connection busy)",
            m.closed.clone(),
        );
        m.registry = registry;
        m
    }

    /// One reconcile cycle.
    pub fn cycle(
        &self,
        name: &str,
        result: CycleOutcome,
        reason: Option<ErrorClass>,
        took: Duration,
        drift: usize,
        applied: bool,
    ) {
        let label = match reason {
            Some(r) => format!("{}_{}", result.label(), r.label()),
            None => result.label().to_string(),
        };
        self.reconcile.record(
            name,
            Cycle {
                outcome: &label,
                took,
                drift: (result != CycleOutcome::Failed).then_some(drift),
                holds_desired: applied,
            },
        );
    }

    pub fn source_error(&self, name: &str, reason: SourceFault) {
        self.source_errors
            .get_or_create(&EnvReason {
                environment: name.to_string(),
                reason: reason.label().to_string(),
            })
            .inc();
    }

    pub fn backup(&self, name: &str, result: BackupOutcome) {
        self.backups
            .get_or_create(&outcome(name, result.label()))
            .inc();
        if result != BackupOutcome::Failed {
            self.last_backup
                .get_or_create(&env(name))
                .set(super::schedule::unix_now());
        }
    }

    pub fn webhook(&self, result: &str) {
        self.webhooks
            .get_or_create(&HookResult {
                result: result.to_string(),
            })
            .inc();
    }

    /// The listener holds `open` connections.
    pub fn connections(&self, open: usize) {
        self.connections.set(open as i64);
    }

    /// The listener closed a connection itself.
    pub fn connection_closed(&self, reason: &str) {
        self.closed
            .get_or_create(&CloseReason {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// The text exposition, with the environments' request counters brought up to date.
    pub fn encode(&self, envs: &[Arc<EnvShared>]) -> String {
        let _one_at_a_time = self.sync.lock().expect("metrics lock");
        for e in envs {
            let up_to = |c: &Counter, now: u64| {
                let seen = c.get();
                if now > seen {
                    c.inc_by(now - seen);
                }
            };
            let req = |kind: &str| EnvRequest {
                environment: e.name.clone(),
                kind: kind.into(),
            };
            up_to(
                &self.gateway_requests.get_or_create(&req("read")),
                e.stats.reads(),
            );
            up_to(
                &self.gateway_requests.get_or_create(&req("write")),
                e.stats.writes(),
            );
            up_to(
                &self.gateway_errors.get_or_create(&env(&e.name)),
                e.stats.errors(),
            );
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("metrics encode");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::status::EnvStatus;
    use std::sync::atomic::Ordering;

    #[test]
    fn exposition_carries_every_family_with_environment_labels() {
        let m = Metrics::new();
        let prod = EnvShared::new(EnvStatus {
            name: "prod".into(),
            ..EnvStatus::default()
        });
        m.cycle(
            "prod",
            CycleOutcome::Applied,
            None,
            Duration::from_millis(120),
            0,
            true,
        );
        m.cycle(
            "prod",
            CycleOutcome::Failed,
            Some(ErrorClass::Unreachable),
            Duration::from_millis(5),
            0,
            false,
        );
        m.source_error("prod", SourceFault::Invalid);
        m.backup("prod", BackupOutcome::Committed);
        m.webhook("unauthorized");
        m.connections(3);
        m.connection_closed("evicted");
        prod.stats.reads.fetch_add(7, Ordering::Relaxed);
        prod.stats.writes.fetch_add(2, Ordering::Relaxed);
        let text = m.encode(std::slice::from_ref(&prod));
        for line in [
            r#"mcp_gitops_reconcile_total{environment="prod",outcome="applied"} 1"#,
            r#"mcp_gitops_reconcile_total{environment="prod",outcome="failed_unreachable"} 1"#,
            r#"mcp_gitops_reconcile_duration_seconds_count{environment="prod"} 2"#,
            r#"mcp_gitops_drift_entities{environment="prod"} 0"#,
            r#"mcp_gitops_source_errors_total{environment="prod",reason="invalid"} 1"#,
            r#"mcp_gitops_gateway_requests_total{environment="prod",kind="read"} 7"#,
            r#"mcp_gitops_gateway_requests_total{environment="prod",kind="write"} 2"#,
            r#"mcp_gitops_gateway_errors_total{environment="prod"} 0"#,
            r#"mcp_gitops_backups_total{environment="prod",outcome="committed"} 1"#,
            r#"mcp_gitops_webhook_requests_total{result="unauthorized"} 1"#,
            "mcp_gitops_http_connections 3",
            r#"mcp_gitops_http_connections_closed_total{reason="evicted"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(text.contains("mcp_gitops_last_applied_timestamp_seconds{environment=\"prod\"}"));
        assert!(text.ends_with("# EOF\n"));
        // Scraping again does not count twice.
        prod.stats.reads.fetch_add(1, Ordering::Relaxed);
        let text = m.encode(std::slice::from_ref(&prod));
        assert!(text.contains(r#"kind="read"} 8"#), "{text}");
    }
}

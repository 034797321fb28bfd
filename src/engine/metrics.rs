//! The reconcile series every front door that reconciles exposes (the daemon per environment,
//! the controller per GatewayConfig), under the same names and labels so that one dashboard
//! serves both: `mcp_gitops_reconcile_total{environment, outcome}`,
//! `mcp_gitops_reconcile_duration_seconds{environment}`, `mcp_gitops_drift_entities` and
//! `mcp_gitops_last_applied_timestamp_seconds`.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Env {
    pub environment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EnvOutcome {
    pub environment: String,
    pub outcome: String,
}

pub fn env(name: &str) -> Env {
    Env {
        environment: name.to_string(),
    }
}

pub fn outcome(name: &str, outcome: &str) -> EnvOutcome {
    EnvOutcome {
        environment: name.to_string(),
        outcome: outcome.to_string(),
    }
}

/// Seconds histogram buckets: 10 ms .. ~80 s.
pub fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

/// What one reconcile came to, for [`ReconcileSeries::record`].
pub struct Cycle<'a> {
    /// `in_sync`, `applied`, `drift`, `failed_<reason>`, …
    pub outcome: &'a str,
    pub took: Duration,
    /// Entities that still differ (`None`: not known, e.g. it failed before planning).
    pub drift: Option<usize>,
    /// The gateway was seen holding the desired state.
    pub holds_desired: bool,
}

#[derive(Clone)]
pub struct ReconcileSeries {
    duration: Family<Env, Histogram>,
    reconciles: Family<EnvOutcome, Counter>,
    drift: Family<Env, Gauge>,
    last_applied: Family<Env, Gauge>,
}

impl ReconcileSeries {
    /// The four series, registered in `registry` (prefixed `mcp_gitops` by its owner).
    pub fn register(registry: &mut Registry) -> ReconcileSeries {
        let s = ReconcileSeries {
            duration: Family::new_with_constructor(duration_histogram),
            reconciles: Family::default(),
            drift: Family::default(),
            last_applied: Family::default(),
        };
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile (read the desired state, plan, and apply in auto mode) took",
            s.duration.clone(),
        );
        registry.register(
            "reconcile",
            "Reconciles by outcome: in_sync, applied, drift (observe mode), suspended, failed_<reason>",
            s.reconciles.clone(),
        );
        registry.register(
            "drift_entities",
            "Entities that differ from the desired state after the last reconcile",
            s.drift.clone(),
        );
        registry.register(
            "last_applied_timestamp_seconds",
            "When the gateway was last seen holding the desired state (Unix time)",
            s.last_applied.clone(),
        );
        s
    }

    /// One reconcile of `environment`.
    pub fn record(&self, environment: &str, c: Cycle<'_>) {
        self.reconciles
            .get_or_create(&outcome(environment, c.outcome))
            .inc();
        self.duration
            .get_or_create(&env(environment))
            .observe(c.took.as_secs_f64());
        if let Some(n) = c.drift {
            self.drift.get_or_create(&env(environment)).set(n as i64);
        }
        if c.holds_desired {
            self.last_applied
                .get_or_create(&env(environment))
                .set(unix_now());
        }
    }

    /// Only the outcome (a reconcile that did not run, e.g. suspended).
    pub fn count(&self, environment: &str, outcome_label: &str) {
        self.reconciles
            .get_or_create(&outcome(environment, outcome_label))
            .inc();
    }
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

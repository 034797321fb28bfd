//! `mcp-gitops watch ENV_DIR`: keep the gateway holding the environment directory.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{CliError, exit};
use crate::daemon::local::{WatchOptions, shutdown_signal, watch};
use crate::engine::reconcile::Settings;

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The environment directory (documents plus mcp-gitops.yaml).
    pub dir: PathBuf,
    /// Drift check period in seconds: re-applies in auto mode, reports in observe mode.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub interval: u64,
    /// Quiet time after the last file change before re-planning, in milliseconds.
    #[arg(long, default_value_t = 150, value_name = "MS")]
    pub debounce_ms: u64,
    /// Concurrent writes within one dependency level.
    #[arg(long, default_value_t = 4)]
    pub parallelism: usize,
    /// Let prune delete more than the environment's `max_delete_percent` of what it owns.
    #[arg(long)]
    pub allow_mass_delete: bool,
    /// Seconds a cycle waits while another mcp-gitops reconciles the environment (0: at once);
    /// then it is retried.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub lock_timeout: u64,
}

pub async fn run(a: WatchArgs) -> Result<u8, CliError> {
    if !a.dir.is_dir() {
        return Err(CliError::invalid(format!(
            "{}: not a directory",
            a.dir.display()
        )));
    }
    let opts = WatchOptions {
        interval: Duration::from_secs(a.interval.max(1)),
        debounce: Duration::from_millis(a.debounce_ms),
        settings: Settings {
            parallelism: a.parallelism,
            allow_mass_delete: a.allow_mass_delete,
            dry_run: false,
            lock_timeout: Duration::from_secs(a.lock_timeout),
            command: "watch",
            content_cache: super::content_cache(),
            ..Settings::default()
        },
        ..WatchOptions::default()
    };
    watch(&a.dir, &opts, shutdown_signal())
        .await
        .map_err(|e| CliError::new(exit::IO, format!("cannot watch {}: {e}", a.dir.display())))?;
    Ok(exit::OK)
}

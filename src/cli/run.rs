//! `mcp-gitops run --config daemon.yaml`: the daemon.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::{CliError, exit};
use crate::daemon::config::{self, SourceSpec};
use crate::daemon::local::shutdown_signal;
use crate::daemon::{self, DaemonError};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The daemon's configuration file (see the README's "daemon.yaml").
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Check the configuration, print what it manages, and exit.
    #[arg(long)]
    pub check: bool,
    /// Listen on this address instead of the configuration's `listen`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

fn describe(cfg: &config::DaemonConfig) -> Vec<String> {
    let mut out = vec![format!(
        "listen {}, state in {}, webhook {}",
        cfg.listen,
        cfg.state_dir.display(),
        if cfg.webhook.is_some() { "on" } else { "off" }
    )];
    for e in &cfg.environments {
        let source = match &e.source {
            SourceSpec::Dir(d) => format!("directory {}", d.display()),
            SourceSpec::Git(g) => format!("{}@{}:{}", g.remote.url, g.branch, g.path),
        };
        let source = match &e.trust {
            Some(t) => format!("{source} to {}", t.connection.url),
            None => source,
        };
        let mode = e.mode.map_or("from its mcp-gitops.yaml".to_string(), |m| {
            format!("{m:?}").to_lowercase()
        });
        let mut line = format!(
            "{}: {source}, every {}s, mode {mode}",
            e.name,
            e.interval.as_secs()
        );
        if let Some(b) = &e.backup {
            line.push_str(&format!(
                ", backup '{}' to {}@{}:{}",
                b.schedule.as_str(),
                b.remote.url,
                b.branch,
                b.path
            ));
        }
        out.push(line);
    }
    out
}

pub async fn run(a: RunArgs) -> Result<u8, CliError> {
    let mut cfg = config::load(&a.config, &crate::engine::environment::env_lookup)
        .map_err(CliError::invalid)?;
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    if a.check {
        println!("{}: OK", a.config.display());
        for l in describe(&cfg) {
            println!("  {l}");
        }
        return Ok(exit::OK);
    }
    let io = |e: DaemonError| CliError::new(exit::IO, e);
    let listener = daemon::bind(&cfg).await.map_err(io)?;
    daemon::serve(
        cfg,
        move |cfg, served, stop| crate::http::start(listener, cfg, served, stop),
        shutdown_signal(),
    )
    .await
    .map_err(io)?;
    Ok(exit::OK)
}

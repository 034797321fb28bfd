//! `mcp-gitops plan ENV_DIR` and `mcp-gitops apply ENV_DIR|PLAN_FILE`: the desired state of an
//! environment directory against its live gateway, through `reconcile` (the same engine as
//! `import`, `watch` and the daemon).

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::import::Output;
use super::{CliError, exit, report};
use crate::engine::reconcile::{ReconcileError, SavedPlan, Settings, Target};

#[derive(Args, Debug)]
pub struct EnvArgs {
    /// The environment directory (documents plus mcp-gitops.yaml); for apply also a plan file
    /// saved by `plan --out`.
    pub dir: PathBuf,
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    pub output: Output,
    /// Also list unchanged entities.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Concurrent writes within one dependency level (apply).
    #[arg(long, default_value_t = 4)]
    pub parallelism: usize,
    /// Let prune delete more than the environment's `max_delete_percent` of what it owns.
    #[arg(long)]
    pub allow_mass_delete: bool,
    /// Seconds apply waits while another mcp-gitops reconciles the environment (0: fail at once).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub lock_timeout: u64,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// Exit 0 when there is nothing to change, 2 when there are changes, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save the plan, for `apply PLAN_FILE` (which refuses it once stale).
    #[arg(long, value_name = "PLAN_FILE", conflicts_with = "snapshot")]
    pub out: Option<PathBuf>,
    /// Plan offline against a saved export of the gateway instead of the live gateway.
    #[arg(long, value_name = "EXPORT_FILE")]
    pub snapshot: Option<PathBuf>,
}

impl From<ReconcileError> for CliError {
    fn from(e: ReconcileError) -> Self {
        CliError::classified(e)
    }
}

fn settings(a: &EnvArgs) -> Settings {
    Settings {
        parallelism: a.parallelism,
        allow_mass_delete: a.allow_mass_delete,
        lock_timeout: std::time::Duration::from_secs(a.lock_timeout),
        command: "apply",
        content_cache: super::content_cache(),
        ..Settings::default()
    }
}

/// Tell the user that apply waits for another process's lock.
fn waiting(w: &crate::engine::envlock::Waiting<'_>) {
    eprintln!("{w}");
}

pub async fn plan(a: PlanArgs) -> Result<u8, CliError> {
    let fail = |e: CliError| {
        if a.detailed_exitcode {
            CliError::new(exit::FAILED, e.message)
        } else {
            e
        }
    };
    // A snapshot is read on another thread while the environment loads.
    let snapshot = a.snapshot.clone().map(|file| {
        std::thread::spawn(move || {
            crate::core::document::load_path(&file).map_err(CliError::invalid)
        })
    });
    let t = Target::open(&a.env.dir, &settings(&a.env)).map_err(|e| fail(e.into()))?;
    let p = match snapshot {
        Some(h) => {
            let snapshot = h.join().expect("snapshot reader").map_err(fail)?;
            t.plan_offline(snapshot)
        }
        None => t.plan().await,
    }
    .map_err(|e| fail(e.into()))?;
    let counts = p.counts();
    // Substituted values show as written where they were substituted (`Planned::lines`).
    let lines = p.lines(a.env.verbose);
    let notes = p.ready.prepared.notes.clone();
    if let Some(out) = &a.out {
        let saved = SavedPlan::new(&t, &p, super::now_rfc3339());
        let text = serde_json::to_string_pretty(&saved).expect("a plan serialises") + "\n";
        crate::core::fsutil::write_atomic(out, text.as_bytes()).map_err(|e| {
            fail(CliError::new(
                exit::IO,
                format!("cannot write {}: {e}", out.display()),
            ))
        })?;
    }
    match a.env.output {
        Output::Text => {
            for line in &lines {
                println!("{line}");
            }
            for n in &notes {
                println!("note: {n}");
            }
            let delete = if counts.delete > 0 || t.prune.is_some() {
                format!(", {} to delete", counts.delete)
            } else {
                String::new()
            };
            println!(
                "Plan: {} to create, {} to update{delete}, {} unchanged.",
                counts.create, counts.update, counts.unchanged
            );
            if let Some(out) = &a.out {
                println!(
                    "Saved the plan to {}; apply it with: mcp-gitops apply {}",
                    out.display(),
                    out.display()
                );
            }
        }
        Output::Json => println!("{}", p.to_json(a.env.verbose)),
    }
    // Large plans: the process ends now, freeing them one by one would only cost time.
    std::mem::forget((t, p));
    Ok(if a.detailed_exitcode && counts.changes() > 0 {
        exit::INVALID // 2: changes present
    } else {
        exit::OK
    })
}

pub async fn apply(a: EnvArgs) -> Result<u8, CliError> {
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal() && a.output == Output::Text;
    let bar = report::progress;
    let progress = tty.then_some(&bar as crate::engine::apply::Progress<'_>);
    let (t, result) = match SavedPlan::read(&a.dir) {
        Some(saved) => {
            let saved = saved.map_err(CliError::classified)?;
            let t = Target::open(&saved.environment, &settings(&a))?;
            let file = a.dir.display().to_string();
            let _lock = t.lock(&waiting).await?;
            let (_, result) = t.apply_saved(&saved, &file, progress).await?;
            (t, result)
        }
        None => {
            let t = Target::open(&a.dir, &settings(&a))?;
            // Planned and applied under the lock: a concurrent apply plans after this one.
            let _lock = t.lock(&waiting).await?;
            let p = t.plan().await?;
            let result = t.apply(&p, progress).await?;
            (t, result)
        }
    };
    match a.output {
        Output::Text => print!("{}", report::text(&result, 0, a.verbose, "Applied")),
        Output::Json => {
            let mut v = report::json(&result, 0);
            let stats = t.client.stats();
            v["requests"] = json!({"reads": stats.reads(), "writes": stats.writes()});
            println!("{v}");
        }
    }
    Ok(if result.failed() > 0 {
        exit::FAILED
    } else {
        exit::OK
    })
}

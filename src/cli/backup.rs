//! `mcp-gitops backup --once`: export the gateway into a file in a Git branch, commit what
//! changed, push.

use clap::Args;

use super::git_args::RepoArgs;
use super::{CliError, Connection, RekeyArg, SecretArg, exit};
use crate::core::document::Format;
use crate::engine::backup::{self, BackupError, BackupTarget};
use crate::engine::export::ExportError;
use crate::engine::git::PublishOptions;

#[derive(Args, Debug)]
#[command(mut_arg("rekey_secret", |a| a.help(
    "Encrypt the backup's credentials with this secret instead of --secret"
)))]
pub struct BackupArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(flatten)]
    pub secret: SecretArg,
    #[command(flatten)]
    pub rekey: RekeyArg,
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The branch to commit to (created when the remote lacks it).
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// The file in the repository, e.g. backups/prod.json (.yaml/.yml for YAML).
    #[arg(long, value_name = "PATH")]
    pub path: String,
    /// Back up once and exit (required; scheduled backups: `mcp-gitops run`).
    #[arg(long)]
    pub once: bool,
    /// The commit message's prefix, before ": <what changed>".
    #[arg(long, default_value = "backup", value_name = "PREFIX")]
    pub message: String,
    /// Output format (default: from the path's extension, else JSON).
    #[arg(long, value_parser = super::format_parser())]
    pub format: Option<Format>,
    /// Push attempts when someone else pushes to the branch at the same time.
    #[arg(long, default_value_t = 5)]
    pub push_attempts: u32,
    /// List every changed entity.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

pub async fn run(a: BackupArgs) -> Result<u8, CliError> {
    if !a.once {
        return Err(CliError::invalid(
            "backup runs one backup per call: pass --once (for scheduled backups, run the daemon: mcp-gitops run)",
        ));
    }
    let gateway_secret = a
        .secret
        .require("it decrypts the gateway's stored credentials")?;
    let remote = a.repo.remote()?;
    let path = crate::engine::git::clean_path(&a.path)?;
    if let Some(why) = BackupTarget::format_mismatch(a.format, &path) {
        return Err(CliError::invalid(why));
    }
    let client = a.conn.client()?;
    let mut opts = backup::export_options(gateway_secret, a.rekey.optional(), client.who());
    opts.cache = super::content_cache();
    let target = BackupTarget {
        remote,
        branch: a.branch.clone(),
        path: path.clone(),
        cache_dir: a.repo.cache_dir(),
        message_prefix: a.message.clone(),
        format: a.format,
        publish: PublishOptions {
            max_attempts: a.push_attempts.max(1),
            before_push: None,
        },
    };
    let out = backup::once(&client, &opts, &target)
        .await
        .map_err(|e| match e {
            BackupError::Git(g) => CliError::from(g),
            BackupError::Export(ExportError::Gateway(g)) => CliError::from(g),
            BackupError::Export(e) => CliError::invalid(e),
        })?;
    if let Some(n) = &out.note {
        eprintln!("note: {n}");
    }
    let doc = &out.document.entities;
    let place = format!("{}@{}:{path}", a.repo.repo, a.branch);
    match &out.commit {
        Some(commit) => {
            if a.verbose {
                for l in out.changes.lines() {
                    println!("  {l}");
                }
            }
            let subject = out
                .message
                .as_deref()
                .and_then(|m| m.lines().next())
                .unwrap_or_default();
            println!("Backed up {} entities: {}", doc.total(), doc.summary());
            let retried = if out.attempts > 1 {
                format!(
                    " (pushed on attempt {}: the branch had moved)",
                    out.attempts
                )
            } else {
                String::new()
            };
            println!(
                "Committed {} to {place}{retried}: {subject}",
                commit.short()
            );
        }
        None => println!(
            "No changes since {} ({} entities): nothing committed",
            out.previous
                .as_ref()
                .map_or_else(|| "the last backup".to_string(), |c| c.short().to_string()),
            doc.total()
        ),
    }
    Ok(exit::OK)
}

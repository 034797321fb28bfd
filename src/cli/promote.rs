//! `mcp-gitops promote --from envs/staging --to envs/prod`: copy selected entities between
//! environment directories in a Git working copy and commit.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, exit};
use crate::core::select::Selection;
use crate::engine::promote::{self, PromoteError, PromoteOptions};

#[derive(Args, Debug)]
pub struct PromoteArgs {
    /// The source environment directory (relative to --repo-dir).
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// The target environment directory (relative to --repo-dir).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// Only these entity types (singular or plural, comma-separated).
    #[arg(long = "types", alias = "type", value_name = "T,..")]
    pub types: Option<String>,
    /// Only entities carrying any of these tags.
    #[arg(long, value_name = "a,b")]
    pub tags: Option<String>,
    /// Only entities matching these patterns, e.g. "tools:weather_*;servers:ai-*".
    #[arg(long, value_name = "SPEC")]
    pub include: Option<String>,
    /// Do not bring what selected servers use.
    #[arg(long)]
    pub no_dependencies: bool,
    /// Commit on this branch, created from the current HEAD (for review).
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    /// Decrypts the source's credentials (default: `secret` in its mcp-gitops.yaml).
    #[arg(long, hide_env_values = true)]
    pub secret: Option<String>,
    /// Encrypts them for the target (default: `secret` in the target's mcp-gitops.yaml, else
    /// --secret).
    #[arg(long, hide_env_values = true)]
    pub rekey_secret: Option<String>,
    /// A directory inside the Git working copy.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub repo_dir: PathBuf,
    /// Show what would change; write and commit nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// List every changed entity.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

fn selection(a: &PromoteArgs) -> Result<Selection, CliError> {
    let mut sel = super::export::selection_flags(
        a.types.as_deref(),
        a.tags.as_deref(),
        a.include.as_deref(),
    )?;
    sel.include_inactive = true;
    sel.dependencies = !a.no_dependencies;
    Ok(sel)
}

pub fn run(a: PromoteArgs) -> Result<u8, CliError> {
    let opts = PromoteOptions {
        repo_dir: a.repo_dir.clone(),
        from: a.from.clone(),
        to: a.to.clone(),
        selection: selection(&a)?,
        source_secret: super::key(a.secret.as_deref()),
        target_secret: super::key(a.rekey_secret.as_deref()),
        branch: a.branch.clone(),
        dry_run: a.dry_run,
    };
    let out = promote::promote(&opts).map_err(|e| match e {
        PromoteError::Git(g) => CliError::from(g),
        PromoteError::Io { .. } => CliError::new(exit::IO, e),
        other => CliError::invalid(other),
    })?;
    if out.changes.is_empty() {
        println!(
            "Nothing to promote: {} already holds the selected entities of {}; nothing committed",
            out.to, out.from
        );
        return Ok(exit::OK);
    }
    if a.verbose || a.dry_run {
        for l in out.changes.lines() {
            println!("  {l}");
        }
    }
    let summary = out.changes.summary();
    match &out.commit {
        None => println!(
            "Would promote {} -> {}: {summary} (files: {})",
            out.from,
            out.to,
            out.files.join(", ")
        ),
        Some(c) => println!(
            "Promoted {} -> {}: {summary}\nCommitted {}{} (files: {})",
            out.from,
            out.to,
            c.short(),
            out.branch
                .as_deref()
                .map(|b| format!(" on branch {b}"))
                .unwrap_or_default(),
            out.files.join(", ")
        ),
    }
    Ok(exit::OK)
}

//! `mcp-gitops restore --repo URL --rev REV --path P`: the document at a revision, restored
//! through the import engine.

use clap::Args;

use super::git_args::RepoArgs;
use super::import::{ImportFlags, apply_document};
use super::{CliError, import::Output};
use crate::engine::restore::{self, RestoreError};

#[derive(Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The revision: a branch, a tag or a (short) commit id.
    #[arg(long, value_name = "REV")]
    pub rev: String,
    /// A document file, or an environment directory, in the repository.
    #[arg(long, value_name = "PATH")]
    pub path: String,
    #[command(flatten)]
    pub with: ImportFlags,
}

pub async fn run(a: RestoreArgs) -> Result<u8, CliError> {
    // Everything typed is checked before Git or the gateway is contacted.
    a.with.include()?;
    let remote = a.repo.remote()?;
    let path = crate::engine::git::clean_path(&a.path)?;
    a.with.conn.client()?;
    let cache = a.repo.cache_dir();
    let rev = a.rev.clone();
    let at =
        tokio::task::spawn_blocking(move || restore::read_document(&remote, &cache, &rev, &path))
            .await
            .map_err(|e| CliError::new(super::exit::FAILED, e))?
            .map_err(|e| match e {
                RestoreError::Git(g) => CliError::from(g),
                RestoreError::Invalid(m) => CliError::invalid(m),
            })?;
    let line = format!(
        "Restoring {} ({} entities: {})",
        at.name,
        at.document.entities.total(),
        at.document.entities.summary()
    );
    if a.with.output == Output::Text {
        println!("{line}");
    } else {
        eprintln!("{line}");
    }
    apply_document(a.with, &at.document, &at.name).await
}

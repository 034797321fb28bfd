//! `mcp-gitops crds`: print or write the CustomResourceDefinitions.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, exit};
use crate::k8s::crd;

#[derive(Args, Debug)]
pub struct CrdsArgs {
    /// Write each CRD to DIR/<plural>.<group>.yaml (atomically) instead of printing them all.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

pub fn run(a: CrdsArgs) -> Result<u8, CliError> {
    let io = |path: &std::path::Path, e: std::io::Error| {
        CliError::new(exit::IO, format!("cannot write {}: {e}", path.display()))
    };
    let yaml = |c| crd::to_yaml(c).map_err(|e| CliError::new(exit::FAILED, e));
    let Some(dir) = a.out_dir else {
        print!(
            "{}",
            crd::all_yaml().map_err(|e| CliError::new(exit::FAILED, e))?
        );
        return Ok(exit::OK);
    };
    // Render every file before writing the first.
    let files = crd::all()
        .iter()
        .map(|c| Ok((dir.join(crd::file_name(c)), yaml(c)?)))
        .collect::<Result<Vec<_>, CliError>>()?;
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    for (path, text) in &files {
        crate::core::fsutil::replace_atomic(path, text.as_bytes()).map_err(|e| io(path, e))?;
        eprintln!("Wrote {}", path.display());
    }
    Ok(exit::OK)
}

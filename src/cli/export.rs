//! `mcp-gitops export`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::{CliError, Connection, RekeyArg, SecretArg, exit};
use crate::core::document::{self, Format};
use crate::core::kind::Kind;
use crate::core::select::{Filters, Selection};
use crate::engine::export::{ExportError, ExportOptions, export};

#[derive(Args, Debug)]
#[command(mut_arg("rekey_secret", |a| a.help(
    "Encrypt the document's credentials with this secret instead of --secret"
)))]
pub struct ExportArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(flatten)]
    pub secret: SecretArg,
    #[command(flatten)]
    pub rekey: RekeyArg,
    /// Output file, or - for standard output.
    #[arg(long, short = 'o', default_value = "-")]
    pub out: PathBuf,
    /// Output format (default: from the file extension, else JSON).
    #[arg(long, value_parser = super::format_parser())]
    pub format: Option<Format>,
    /// Only these entity types (singular or plural, comma-separated).
    #[arg(long = "types", alias = "type", value_name = "T,..")]
    pub types: Option<String>,
    /// Leave these entity types out.
    #[arg(long = "exclude-types", alias = "exclude-type", value_name = "T,..")]
    pub exclude_types: Option<String>,
    /// Only entities carrying any of these tags.
    #[arg(long, value_name = "a,b")]
    pub tags: Option<String>,
    /// Include deactivated entities.
    #[arg(long)]
    pub include_inactive: bool,
    /// Only entities matching these patterns, e.g. "tools:weather_*,servers:ai-server".
    #[arg(long, value_name = "SPEC")]
    pub include: Option<String>,
    /// Do not pull in what selected servers depend on.
    #[arg(long)]
    pub no_dependencies: bool,
    /// List every exported entity.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

impl ExportArgs {
    fn selection(&self) -> Result<Selection, CliError> {
        Filters {
            types: self.types.as_deref(),
            exclude_types: self.exclude_types.as_deref(),
            tags: self.tags.as_deref(),
            include: self.include.as_deref(),
            include_inactive: self.include_inactive,
            dependencies: !self.no_dependencies,
        }
        .selection()
        .map_err(CliError::invalid)
    }
}

/// `--types a,b`, `--tags x,y` and `--include kind:name,...` as a selection (every check made
/// before anything else happens).
pub(crate) fn selection_flags(
    types: Option<&str>,
    tags: Option<&str>,
    include: Option<&str>,
) -> Result<Selection, CliError> {
    Filters {
        types,
        tags,
        include,
        ..Filters::default()
    }
    .selection()
    .map_err(CliError::invalid)
}

pub async fn run(a: ExportArgs) -> Result<u8, CliError> {
    // Everything the user typed is checked before the gateway is contacted.
    let selection = a.selection()?;
    let gateway_secret = a
        .secret
        .require("it decrypts the gateway's stored credentials")?;
    let document_secret = a.rekey.optional();
    let to_stdout = crate::core::fsutil::is_stdout(&a.out);
    let format = a
        .format
        .or_else(|| Format::from_path(&a.out))
        .unwrap_or(Format::Json);
    if !to_stdout {
        check_writable(&a.out)?;
    }
    let client = a.conn.client()?;
    let opts = ExportOptions {
        selection,
        gateway_secret,
        document_secret,
        exported_by: Some(client.who()),
        now: super::now_rfc3339(),
        cache: super::content_cache(),
    };
    let exported = export(&client, &opts).await.map_err(|e| match e {
        ExportError::Gateway(g) => CliError::from(g),
        ExportError::Credential { .. } => CliError::invalid(e),
        ExportError::NothingIncluded => CliError::invalid(e),
    })?;
    let doc = exported.document;
    let text = document::to_string(&doc, format);
    if to_stdout {
        std::io::stdout().write_all(text.as_bytes()).map_err(|e| {
            CliError::new(exit::IO, format!("cannot write to standard output: {e}"))
        })?;
    } else {
        crate::core::fsutil::write_atomic(&a.out, text.as_bytes()).map_err(|e| {
            CliError::new(exit::IO, format!("cannot write {}: {e}", a.out.display()))
        })?;
    }
    let mut report = String::new();
    if a.verbose {
        for kind in Kind::DISPLAY {
            for key in doc.entities.keys(kind) {
                report.push_str(&format!("  {kind} {key}\n"));
            }
        }
    }
    report.push_str(&format!(
        "Exported {} entities: {}",
        doc.entities.total(),
        doc.entities.summary()
    ));
    if exported.skipped > 0 {
        report.push_str(&format!(" ({} not selected)", exported.skipped));
    }
    if !to_stdout {
        report.push_str(&format!("\nWrote {}", a.out.display()));
    }
    if to_stdout {
        eprintln!("{report}");
    } else {
        println!("{report}");
    }
    Ok(exit::OK)
}

/// Fail early, before contacting the gateway, when the output is unusable (its directory
/// cannot be written, or it names a directory or another file that is never written).
fn check_writable(path: &std::path::Path) -> Result<(), CliError> {
    crate::core::fsutil::check_output(path).map_err(|e| {
        let reason = match (e.get_ref(), e.raw_os_error()) {
            (Some(refused), _) if refused.is::<crate::core::fsutil::Refused>() => {
                refused.to_string()
            }
            (_, Some(c)) => std::io::Error::from_raw_os_error(c).to_string(),
            _ => e.kind().to_string(),
        };
        CliError::new(
            exit::IO,
            format!("cannot write {}: {reason}", path.display()),
        )
    })
}

//! `mcp-gitops import-tools`: bulk-create REST tools from a JSON array through the gateway's
//! bulk route, each item validated on its own.

use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use super::import::Output;
use super::{CliError, Connection, SecretArg, exit};
use crate::core::document;
use crate::engine::bulk;

#[derive(Args, Debug)]
pub struct ImportToolsArgs {
    /// A JSON (or YAML) array of tools, or - for standard input.
    pub file: PathBuf,
    #[command(flatten)]
    pub conn: Connection,
    /// Decrypts the items' auth_values.
    #[command(flatten)]
    pub secret: SecretArg,
    /// Tools per request (the gateway accepts at most 200).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(1..=200))]
    pub max_batch: u16,
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
}

pub async fn run(a: ImportToolsArgs) -> Result<u8, CliError> {
    let (file, text) = document::read_text(&a.file).map_err(CliError::invalid)?;
    let items = match document::parse_value(&text, None, &file).map_err(CliError::invalid)? {
        Value::Array(items) => items,
        _ => {
            return Err(CliError::invalid(format!(
                "{file}: expected a JSON array of tools"
            )));
        }
    };
    let secret = a.secret.optional();
    let client = a.conn.client()?;
    let report = bulk::import(&client, &items, secret.as_ref(), usize::from(a.max_batch)).await?;
    match a.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string(&report).expect("report serialises")
        ),
        Output::Text => {
            for e in &report.errors {
                let name = e
                    .name
                    .as_str()
                    .map_or_else(|| e.name.to_string(), str::to_string);
                println!("  ! [{}] {name}: {}", e.index, e.error.message);
            }
            println!(
                "Created {} of {} tools ({} failed)",
                report.created_count,
                items.len(),
                report.failed_count
            );
        }
    }
    Ok(if report.failed_count > 0 {
        exit::FAILED
    } else {
        exit::OK
    })
}

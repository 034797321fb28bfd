//! `mcp-gitops import-tools`: bulk-create REST tools from a JSON array through the gateway's
//! bulk route, each item validated on its own.

use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use super::import::Output;
use super::{CliError, Connection, SecretArg, exit};
use crate::core::document;
use crate::engine::bulk::{self, BulkReport, Created, Failed};
use crate::gateway::Action;

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
    let team = crate::engine::apply::personal_team(&client).await?;

    let mut report = BulkReport::default();
    let mut ready: Vec<(usize, Value, Value)> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let name = item.get("name").cloned().unwrap_or(Value::Null);
        match bulk::prepare(index, item, secret.as_ref(), team.as_deref()) {
            Ok(body) => ready.push((index, name, body)),
            Err(error) => report.push_failed(Failed { index, name, error }),
        }
    }
    for batch in ready.chunks(usize::from(a.max_batch)) {
        let body = Value::Array(batch.iter().map(|(_, _, b)| b.clone()).collect());
        let action = Action::new(format!("bulk-import {} tools", batch.len()));
        let resp = client.post("/admin/tools/import", &body, &action).await?;
        let at = |i: &Value| i.as_u64().and_then(|i| batch.get(i as usize));
        for c in resp["created"].as_array().into_iter().flatten() {
            if let Some((index, name, _)) = at(&c["index"]) {
                report.push_created(Created {
                    index: *index,
                    name: name.clone(),
                });
            }
        }
        for e in resp["errors"].as_array().into_iter().flatten() {
            if let Some((index, name, _)) = at(&e["index"]) {
                report.push_failed(Failed {
                    index: *index,
                    name: name.clone(),
                    error: bulk::gateway_error(&e["error"]),
                });
            }
        }
    }
    report.sort();
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

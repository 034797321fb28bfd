//! `mcp-gitops import`: restore a document into a gateway through the apply engine.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::json;

use super::{CliError, Connection, RekeyArg, SecretArg, exit, report};
use crate::core::document::{self, Document};
use crate::core::select::IncludeSpec;
use crate::engine::apply::{self, Keys, Options, ReadyError, Strategy};
use crate::engine::import::{self, ImportError};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    #[default]
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Document file (JSON or YAML, mcp-gitops's or ContextForge's own export), or - for
    /// standard input.
    pub file: PathBuf,
    #[command(flatten)]
    pub with: ImportFlags,
}

/// Everything `import` takes besides the document; `restore` takes the same.
#[derive(Args, Debug)]
#[command(mut_arg("rekey_secret", |a| a.help(
    "The target gateway's AUTH_ENCRYPTION_SECRET, when the document was encrypted with another \
     key (a document from another environment)"
)))]
pub struct ImportFlags {
    #[command(flatten)]
    pub conn: Connection,
    /// Decrypts the document's auth_values (and, without --rekey-secret, the gateway's).
    #[command(flatten)]
    pub secret: SecretArg,
    #[command(flatten)]
    pub rekey: RekeyArg,
    /// What to do with an entity that exists and differs.
    #[arg(long, default_value = "update", value_parser = super::strategy_parser())]
    pub conflict_strategy: Strategy,
    /// Validate and compare with the gateway; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only these entities (and what they depend on), e.g. "tools:weather_*;servers:ai-*".
    #[arg(long, value_name = "SPEC")]
    pub include: Option<String>,
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    pub output: Output,
    /// One line per entity.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Concurrent writes within one dependency level.
    #[arg(long, default_value_t = 4)]
    pub parallelism: usize,
    /// Seconds a server waits for tools its peer gateway is still discovering.
    #[arg(long, default_value_t = 30)]
    pub discovery_timeout: u64,
}

pub async fn run(a: ImportArgs) -> Result<u8, CliError> {
    a.with.include()?;
    let file = if a.file.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        a.file.display().to_string()
    };
    let full = document::load_path(&a.file).map_err(CliError::invalid)?;
    apply_document(a.with, &full, &file).await
}

impl ImportFlags {
    /// `--include`, parsed.
    pub fn include(&self) -> Result<Option<IncludeSpec>, CliError> {
        self.include
            .as_deref()
            .map(IncludeSpec::parse)
            .transpose()
            .map_err(CliError::invalid)
    }
}

/// Restore `full` (named `file` in messages) into the gateway: the one path `import` and
/// `restore` share (the engine's, `engine::import`, which the HTTP API's jobs call too).
pub async fn apply_document(a: ImportFlags, full: &Document, file: &str) -> Result<u8, CliError> {
    let include = a.include()?;
    let keys = Keys::new(a.secret.optional(), a.rekey.optional());
    let opts = Options {
        strategy: a.conflict_strategy,
        dry_run: a.dry_run,
        parallelism: a.parallelism,
        discovery_timeout: Duration::from_secs(a.discovery_timeout),
        now_unix: crate::core::clock::now_unix(),
        content_cache: super::content_cache(),
        ..Options::default()
    };
    let client = a.conn.client()?;
    let request = import::Request {
        whole: full,
        file,
        keys: keys.clone(),
        include,
        opts,
    };
    let staged = match import::stage(&client, request).await {
        Err(ImportError::Ready(ReadyError::Conflicts(conflicts))) => {
            if a.output == Output::Json {
                println!(
                    "{}",
                    json!({"ok": false, "dry_run": a.dry_run, "conflicts": conflicts})
                );
            }
            return Err(ReadyError::Conflicts(conflicts).into());
        }
        Err(ImportError::NothingMatched { file }) => {
            return Err(CliError::invalid(format!(
                "--include matched nothing in {file}"
            )));
        }
        r => r.map_err(CliError::classified)?,
    };
    let tty = std::io::stderr().is_terminal() && a.output == Output::Text;
    let bar = report::progress;
    let result = import::run(&client, &staged, tty.then_some(&bar as apply::Progress<'_>))
        .await
        .map_err(CliError::classified)?;
    let credentials = &staged.ready.credentials;
    let selected = staged.not_selected;

    let stats = client.stats();
    let audit = keys
        .rotates()
        .then(|| {
            let who = client.who();
            report::audit(&result, &keys, credentials, &who, &client, a.dry_run)
        })
        .flatten();
    match a.output {
        Output::Text => {
            print!("{}", report::text(&result, selected, a.verbose, "Imported"));
            if let Some(line) = &audit {
                eprintln!("{line}");
            }
        }
        Output::Json => {
            let mut v = report::json(&result, selected);
            v["requests"] = json!({"reads": stats.reads(), "writes": stats.writes()});
            if let Some(line) = &audit {
                v["audit"] = json!(line);
            }
            println!("{v}");
        }
    }
    Ok(if result.failed() > 0 {
        exit::FAILED
    } else {
        exit::OK
    })
}

//! The command line: flags, one-line errors and documented exit codes.

mod backup;
mod crds;
mod env;
mod export;
mod git_args;
mod import;
mod import_tools;
mod offline;
mod promote;
mod report;
mod restore;
mod run;
mod watch;

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::core::secrets::Secret;
use crate::gateway::{Auth, Client, ClientOptions, GatewayError};

/// Exit codes (documented in the README).
pub mod exit {
    /// Everything succeeded.
    pub const OK: u8 = 0;
    /// The gateway refused an operation, or some entities failed.
    pub const FAILED: u8 = 1;
    /// Invalid input or usage: bad flags, a bad document, a missing secret.
    pub const INVALID: u8 = 2;
    /// Conflicts under `--conflict-strategy fail`.
    pub const CONFLICT: u8 = 3;
    /// The gateway (or a Git repository) could not be reached.
    pub const UNREACHABLE: u8 = 4;
    /// The gateway refused the credentials (401) or the token lacks permission (403); a Git
    /// server refused the credentials, or its SSH host key or TLS certificate was refused.
    pub const AUTH: u8 = 5;
    /// An output file could not be written.
    pub const IO: u8 = 6;
}

/// An error for the user: one line, and the exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    pub fn new(code: u8, message: impl std::fmt::Display) -> Self {
        CliError {
            code,
            message: message.to_string(),
        }
    }
    pub fn invalid(message: impl std::fmt::Display) -> Self {
        Self::new(exit::INVALID, message)
    }
    /// The exit code the error's class maps to (`core::error`).
    pub fn classified(e: impl crate::core::error::Classify + std::fmt::Display) -> Self {
        Self::new(e.class().exit_code(), e)
    }
}

impl From<crate::engine::apply::ReadyError> for CliError {
    fn from(e: crate::engine::apply::ReadyError) -> Self {
        CliError::classified(e)
    }
}

impl From<GatewayError> for CliError {
    fn from(e: GatewayError) -> Self {
        CliError::classified(e)
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "mcp-gitops",
    version,
    about = "GitOps reconciler and backup tool for the ContextForge MCP Gateway",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// The most read from one input file or standard input (bytes, or with K, M, G).
    #[arg(
        long,
        global = true,
        env = "MCP_GITOPS_MAX_INPUT",
        value_name = "SIZE",
        default_value = "256M",
        value_parser = crate::core::document::parse_size
    )]
    pub max_input: u64,
    /// Read every resource's content from the gateway: do not use or update the content
    /// cache ($XDG_CACHE_HOME/mcp-gitops, else ~/.cache/mcp-gitops).
    #[arg(long, global = true, env = "MCP_GITOPS_NO_CACHE")]
    pub no_cache: bool,
}

static NO_CACHE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// The CLI's content cache: None with `--no-cache` or without a cache directory. A cache
/// file that cannot be used is named in a warning and rebuilt.
pub(crate) fn content_cache() -> Option<std::sync::Arc<crate::engine::content_cache::ContentCache>>
{
    use crate::engine::content_cache::ContentCache;
    if NO_CACHE.get().copied().unwrap_or(false) {
        return None;
    }
    let (cache, warning) = ContentCache::open(&ContentCache::user_dir()?);
    if let Some(w) = warning {
        eprintln!("warning: {}", crate::core::quote::clean_lines(&w));
    }
    Some(std::sync::Arc::new(cache))
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Export the live gateway's configuration into an export document.
    Export(Box<export::ExportArgs>),
    /// Restore a document into the gateway: validated first, dependency-ordered, idempotent.
    Import(Box<import::ImportArgs>),
    /// Bulk-create REST tools from a JSON array, each validated on its own.
    ImportTools(Box<import_tools::ImportToolsArgs>),
    /// Show what applying an environment directory would change on its gateway.
    Plan(Box<env::PlanArgs>),
    /// Make the gateway hold an environment directory's desired state.
    Apply(Box<env::EnvArgs>),
    /// Keep the gateway holding an environment directory: apply on change, check for drift.
    Watch(Box<watch::WatchArgs>),
    /// The daemon: keep several environments (directories or Git branches) in their desired
    /// state, back them up to Git on a schedule, serve webhooks, status and metrics.
    Run(Box<run::RunArgs>),
    /// Check a document (JSON Schema shape and meaning) without contacting a gateway.
    Validate(offline::ValidateArgs),
    /// Re-encrypt a document's credentials for another key, offline.
    Rekey(offline::RekeyArgs),
    /// Print the export document's JSON Schema.
    Schema,
    /// Export the gateway into a file in a Git branch; commit what changed and push.
    Backup(Box<backup::BackupArgs>),
    /// Restore the document (or environment directory) at a Git revision into the gateway.
    Restore(Box<restore::RestoreArgs>),
    /// Copy selected entities between environment directories in a Git working copy; commit.
    Promote(Box<promote::PromoteArgs>),
    /// Print the Kubernetes CustomResourceDefinitions (or write them with --out-dir).
    Crds(crds::CrdsArgs),
    /// The Kubernetes controller: reconcile GatewayConfigs and ContextForgeGateways through
    /// the engine (kubeconfig from KUBECONFIG or in-cluster).
    Controller(Box<crate::k8s::controller::ControllerArgs>),
}

/// How to reach the gateway.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// Gateway base URL.
    #[arg(long = "gateway", env = "MCP_GATEWAY_URL", value_name = "URL")]
    pub url: Option<String>,
    /// Bearer token for the gateway's API.
    #[arg(long, env = "MCPGATEWAY_BEARER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Mint a short-lived admin token for this user (needs JWT_SECRET_KEY).
    #[arg(long, value_name = "EMAIL")]
    pub user: Option<String>,
    /// The gateway's JWT signing secret, for --user.
    #[arg(long, env = "JWT_SECRET_KEY", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    #[arg(long, env = "JWT_AUDIENCE", default_value = crate::gateway::DEFAULT_JWT_AUDIENCE)]
    pub jwt_audience: String,
    #[arg(long, env = "JWT_ISSUER", default_value = crate::gateway::DEFAULT_JWT_ISSUER)]
    pub jwt_issuer: String,
    /// Client-side limit in requests per minute (the gateway allows 500; 0 = no limit).
    #[arg(long, default_value_t = crate::gateway::DEFAULT_RATE_LIMIT)]
    pub rate_limit: usize,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

impl Connection {
    pub fn client(&self) -> Result<Client, CliError> {
        let url = self.url.clone().ok_or_else(|| {
            CliError::invalid("no gateway URL: pass --gateway URL or set MCP_GATEWAY_URL")
        })?;
        crate::gateway::check_url(&url).map_err(CliError::invalid)?;
        let auth = Auth::resolve(
            self.token.clone(),
            self.user.clone(),
            self.jwt_secret.clone(),
            self.jwt_audience.clone(),
            self.jwt_issuer.clone(),
        )
        .map_err(CliError::invalid)?;
        let mut opts = ClientOptions::new(url, auth);
        opts.rate_limit = self.rate_limit;
        opts.timeout = Duration::from_secs(self.timeout.max(1));
        Ok(Client::new(opts)?)
    }
}

/// `--secret` / `AUTH_ENCRYPTION_SECRET`.
#[derive(Args, Debug, Clone)]
pub struct SecretArg {
    /// The credential encryption secret (the gateway's AUTH_ENCRYPTION_SECRET).
    #[arg(long, env = "AUTH_ENCRYPTION_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
}

/// A secret flag's value as a key (an empty value counts as none).
pub fn key(value: Option<&str>) -> Option<Secret> {
    value.filter(|s| !s.is_empty()).map(Secret::new)
}

impl SecretArg {
    /// The secret, if one was given (an empty value counts as none).
    pub fn optional(&self) -> Option<Secret> {
        key(self.secret.as_deref())
    }

    pub fn require(&self, why: &str) -> Result<Secret, CliError> {
        match self.optional() {
            Some(s) => Ok(s),
            None => Err(CliError::invalid(format!(
                "no secret: pass --secret or set AUTH_ENCRYPTION_SECRET ({why})"
            ))),
        }
    }
}

/// `--rekey-secret`: the key written credentials are encrypted with instead of --secret. Each
/// command that flattens it words its help with `mut_arg("rekey_secret", …)`.
#[derive(Args, Debug, Clone)]
pub struct RekeyArg {
    /// Encrypt the credentials written with this secret instead of --secret.
    #[arg(long, hide_env_values = true)]
    pub rekey_secret: Option<String>,
}

impl RekeyArg {
    /// The secret, if one was given (an empty value counts as none).
    pub fn optional(&self) -> Option<Secret> {
        key(self.rekey_secret.as_deref())
    }
}

/// Parse the arguments, run, print a one-line error, return the exit code.
/// `--format json|yaml`, shown in `--help`.
fn format_parser() -> impl clap::builder::TypedValueParser<Value = crate::core::document::Format> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(crate::core::document::Format::NAMES)
        .map(|s| crate::core::document::Format::parse_name(&s).expect("a possible value"))
}

/// `--conflict-strategy`: the names of [`crate::core::policy::Strategy`], shown in `--help`.
fn strategy_parser() -> impl clap::builder::TypedValueParser<Value = crate::core::policy::Strategy>
{
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(crate::core::policy::Strategy::NAMES)
        .map(|s| s.parse().expect("a possible value"))
}

pub fn main() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::INVALID
            } else {
                exit::OK
            };
        }
    };
    crate::core::document::set_max_input(cli.max_input);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MCP_GITOPS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_target(false)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(crate::memory::on_park)
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", crate::core::quote::clean_lines(&e.message));
            e.code
        }
    }
}

async fn run(cli: Cli) -> Result<u8, CliError> {
    let _ = NO_CACHE.set(cli.no_cache);
    match cli.command {
        Command::Export(a) => export::run(*a).await,
        Command::Import(a) => import::run(*a).await,
        Command::Plan(a) => env::plan(*a).await,
        Command::Apply(a) => env::apply(*a).await,
        Command::Watch(a) => watch::run(*a).await,
        Command::Run(a) => run::run(*a).await,
        Command::ImportTools(a) => import_tools::run(*a).await,
        Command::Validate(a) => offline::validate(a),
        Command::Rekey(a) => offline::rekey(a),
        Command::Backup(a) => backup::run(*a).await,
        Command::Restore(a) => restore::run(*a).await,
        Command::Promote(a) => promote::run(*a),
        Command::Crds(a) => crds::run(a),
        Command::Controller(a) => crate::k8s::controller::run(*a).await,
        Command::Schema => {
            print!("{}", crate::core::document::schema_json());
            Ok(exit::OK)
        }
    }
}

pub use crate::core::clock::now_rfc3339;

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::{Cli, Command};

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn rekey_secret_reaches_every_command_that_takes_it() {
        let rekey = |args: &[&str]| match Cli::try_parse_from(args).unwrap().command {
            Command::Export(a) => a.rekey.optional().map(|s| s.fingerprint()),
            Command::Backup(a) => a.rekey.optional().map(|s| s.fingerprint()),
            Command::Import(a) => a.with.rekey.optional().map(|s| s.fingerprint()),
            _ => unreachable!(),
        };
        let want = Some(crate::core::secrets::Secret::new("r").fingerprint());
        assert_eq!(rekey(&["m", "export", "--rekey-secret", "r"]), want);
        assert_eq!(rekey(&["m", "export", "--rekey-secret", ""]), None);
        assert_eq!(rekey(&["m", "export"]), None);
        let backup = ["m", "backup", "--repo", "r", "--path", "p", "--once"];
        assert_eq!(
            rekey(&[&backup[..], &["--rekey-secret", "r"]].concat()),
            want
        );
        assert_eq!(
            rekey(&["m", "import", "f.json", "--rekey-secret", "r"]),
            want
        );
    }
}

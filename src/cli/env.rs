//! `mcp-gitops plan ENV_DIR` and `mcp-gitops apply ENV_DIR`: the desired state of an
//! environment directory against its live gateway, through the same engine as `import`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::import::Output;
use super::{CliError, exit, report};
use crate::apply::{self, Keys, Observed, Options, Prepared, Ready, StepAction};
use crate::envdir::{self, Environment, Mode};
use crate::gateway::{Auth, Client, ClientOptions};
use crate::plan::{CredentialMap, Desired};
use crate::secrets::Secret;

#[derive(Args, Debug)]
pub struct EnvArgs {
    /// The environment directory (documents plus mcp-gitops.yaml).
    pub dir: PathBuf,
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    pub output: Output,
    /// Also list unchanged entities.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Concurrent writes within one dependency level (apply).
    #[arg(long, default_value_t = 4)]
    pub parallelism: usize,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// Exit 0 when there is nothing to change, 2 when there are changes, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

struct Loaded {
    env: Environment,
    client: Client,
    observed: Observed,
    credentials: CredentialMap,
    prepared: Prepared,
    opts: Options,
}

async fn load(a: &EnvArgs) -> Result<Loaded, CliError> {
    let env = envdir::load(&a.dir).map_err(CliError::invalid)?;
    let c = &env.config;
    let invalid = |e: envdir::EnvError| CliError::invalid(e);
    let auth = Auth::resolve(
        env.secret(&c.token).map_err(invalid)?,
        c.user.clone(),
        env.secret(&c.jwt_secret).map_err(invalid)?,
        "mcpgateway-api".into(),
        "mcpgateway".into(),
    )
    .map_err(CliError::invalid)?;
    crate::gateway::check_url(&c.gateway).map_err(CliError::invalid)?;
    let client = Client::new(ClientOptions::new(c.gateway.clone(), auth))?;
    let keys = Keys::new(
        env.secret(&c.secret)
            .map_err(invalid)?
            .map(|s| Secret::new(&s)),
        env.secret(&c.gateway_secret)
            .map_err(invalid)?
            .map(|s| Secret::new(&s)),
    );
    let opts = Options {
        strategy: c.conflict_strategy.unwrap_or_default(),
        parallelism: a.parallelism,
        discovery_timeout: Duration::from_secs(30),
        ..Options::default()
    };
    let file = a.dir.display().to_string();
    let Ready {
        observed,
        credentials,
        prepared,
    } = apply::ready(&client, &env.document, &env.document, &file, &keys, &opts).await?;
    Ok(Loaded {
        env,
        client,
        observed,
        credentials,
        prepared,
        opts,
    })
}

pub async fn plan(a: PlanArgs) -> Result<u8, CliError> {
    let l = match load(&a.env).await {
        Ok(l) => l,
        Err(e) if a.detailed_exitcode => return Err(CliError::new(exit::FAILED, e.message)),
        Err(e) => return Err(e),
    };
    let mut lines = Vec::new();
    let (mut create, mut update, mut same) = (0, 0, 0);
    for s in &l.prepared.steps {
        let line = match &s.action {
            StepAction::Create => {
                create += 1;
                format!("+ create {} {}", s.kind, s.target)
            }
            StepAction::Update(changes) => {
                update += 1;
                let c: Vec<String> = changes.iter().map(ToString::to_string).collect();
                format!("~ update {} {}: {}", s.kind, s.key, c.join("; "))
            }
            StepAction::Unchanged => {
                same += 1;
                if !a.env.verbose {
                    continue;
                }
                format!("  unchanged {} {}", s.kind, s.key)
            }
            StepAction::Skip(why) => format!("- skip {} {}: {why}", s.kind, s.key),
        };
        lines.push(l.env.mask(&line));
    }
    match a.env.output {
        Output::Text => {
            for line in &lines {
                println!("{line}");
            }
            for n in &l.prepared.notes {
                println!("note: {}", l.env.mask(n));
            }
            println!("Plan: {create} to create, {update} to update, {same} unchanged.");
        }
        Output::Json => println!(
            "{}",
            json!({"create": create, "update": update, "unchanged": same,
                   "changes": lines, "notes": l.prepared.notes.iter().map(|n| l.env.mask(n)).collect::<Vec<_>>()})
        ),
    }
    Ok(if a.detailed_exitcode && create + update > 0 {
        exit::INVALID // 2: changes present
    } else {
        exit::OK
    })
}

pub async fn apply(a: EnvArgs) -> Result<u8, CliError> {
    let l = load(&a).await?;
    if l.env.config.mode == Mode::Observe {
        return Err(CliError::invalid(format!(
            "{}: mode is observe; apply refuses to write (use plan to see the drift)",
            a.dir.display()
        )));
    }
    let owner = apply::owner(&l.client, &l.prepared, &l.opts).await?;
    let result = apply::execute(
        &l.client,
        &Desired {
            document: &l.env.document,
            credentials: &l.credentials,
        },
        &l.observed,
        &l.prepared,
        &l.opts,
        owner,
        None,
    )
    .await;
    match a.output {
        Output::Text => print!(
            "{}",
            l.env.mask(&report::text(&result, 0, a.verbose, "Applied"))
        ),
        Output::Json => {
            let mut v = report::json(&result, 0);
            let stats = l.client.stats();
            v["requests"] = json!({"reads": stats.reads(), "writes": stats.writes()});
            println!("{}", l.env.mask(&v.to_string()));
        }
    }
    Ok(if result.failed() > 0 {
        exit::FAILED
    } else {
        exit::OK
    })
}

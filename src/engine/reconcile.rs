//! Reconcile an environment directory with its gateway: the sequence every environment front
//! door (`plan`, `apply`, `watch`, the daemon) runs, so that none has its own. Load the
//! environment, connect, mark what it owns when pruning, `apply::ready`, add prune's deletes,
//! then `apply::owner` + `apply::execute`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::core::diff::{Desired, LineOp, plan_line};
use crate::core::digest::Keyed;
use crate::core::document::Document;
use crate::core::error::{Classify, ErrorClass};
use crate::core::secrets::Secret;
use crate::engine::apply::{
    self, Keys, MassDelete, Options, Progress, PrunePolicy, Ready, ReadyError, Report, StepAction,
    prune,
};
pub use crate::engine::connect::{ConnectError, connect};
use crate::engine::environment::{self, EnvError, Environment, Masks, Mode};
use crate::engine::envlock::{self, LockError};
use crate::gateway::{Auth, Client, GatewayError, Limiter, Stats};

/// Why a reconcile did not get to writing.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("{file}: {message}")]
    Config { file: String, message: String },
    #[error(transparent)]
    Ready(#[from] ReadyError),
    #[error(transparent)]
    MassDelete(#[from] MassDelete),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error("{plan}: stale plan: {why}; run plan again")]
    Stale { plan: String, why: String },
    #[error("{dir}: mode is observe; apply refuses to write (use plan to see the drift)")]
    Observe { dir: String },
    #[error(transparent)]
    Locked(#[from] LockError),
}

impl Classify for ReconcileError {
    fn class(&self) -> ErrorClass {
        match self {
            ReconcileError::Env(e) => e.class(),
            ReconcileError::Config { .. } => ErrorClass::Invalid,
            ReconcileError::Ready(e) => e.class(),
            ReconcileError::Gateway(e) => e.class(),
            ReconcileError::MassDelete(_) => ErrorClass::MassDelete,
            ReconcileError::Stale { .. } => ErrorClass::Stale,
            ReconcileError::Observe { .. } => ErrorClass::Observe,
            ReconcileError::Locked(LockError::Busy { .. }) => ErrorClass::Locked,
            ReconcileError::Locked(LockError::Io { .. }) => ErrorClass::Io,
            ReconcileError::Locked(LockError::Cancelled { .. }) => ErrorClass::Failed,
        }
    }
}

/// Front-door settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub parallelism: usize,
    pub allow_mass_delete: bool,
    pub dry_run: bool,
    /// The prune owner when the environment file names none (default: the directory's name).
    pub default_owner: Option<String>,
    /// Count the requests of every client made with these settings here.
    pub stats: Option<Arc<Stats>>,
    /// One client-side rate limit for every client made with these settings.
    pub limiter: Option<Arc<Limiter>>,
    /// Whose requests these are, for the limiter (a periodic drift check: `Background`).
    pub priority: crate::gateway::Priority,
    /// How long [`Target::lock`] waits for another process's reconcile (zero: not at all).
    pub lock_timeout: Duration,
    /// What the environment is locked as, instead of its directory (a Git source, whose
    /// directory is a new checkout every time).
    pub lock_source: Option<String>,
    /// The front door, recorded as the lock's holder (`apply`, `watch`, `run`).
    pub command: &'static str,
    /// Resource content read before, shared by every target made with these settings.
    pub content_cache: Option<Arc<crate::engine::content_cache::ContentCache>>,
    /// The per-request timeout (default: the client's).
    pub timeout: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            parallelism: 4,
            allow_mass_delete: false,
            dry_run: false,
            default_owner: None,
            stats: None,
            limiter: None,
            priority: crate::gateway::Priority::Foreground,
            lock_timeout: Duration::from_secs(60),
            lock_source: None,
            command: "mcp-gitops",
            content_cache: None,
            timeout: None,
        }
    }
}

/// A gateway and the credentials for it, resolved by a front door.
pub struct Connect {
    pub url: String,
    pub auth: Auth,
    pub keys: Keys,
    /// Requests per minute (default: the client's); the process keeps one limit per URL.
    pub rate_limit: Option<usize>,
    /// CA certificates (PEM) the gateway's TLS certificate may chain to, besides the system's.
    pub ca_pem: Option<String>,
}

/// An environment connected to its gateway.
pub struct Target {
    pub env: Environment,
    pub client: Client,
    pub keys: Keys,
    pub opts: Options,
    pub prune: Option<PrunePolicy>,
    /// The desired document (taken from `env.document`), marked when pruning.
    pub desired: Document,
    /// What [`Target::lock`] takes.
    pub lock: LockSpec,
}

/// The lock of an environment on its gateway, and how to take it.
#[derive(Clone, Debug)]
pub struct LockSpec {
    pub key: envlock::Key,
    pub timeout: Duration,
    /// The holder's command, e.g. `mcp-gitops apply /srv/envs/prod`.
    pub command: String,
}

fn config_error(env_dir: &Path, message: impl ToString) -> ReconcileError {
    ReconcileError::Config {
        file: env_dir.join(environment::CONFIG_FILE).display().to_string(),
        message: message.to_string(),
    }
}

impl Target {
    /// Load `dir` and connect to its gateway (no request yet).
    pub fn open(dir: &Path, s: &Settings) -> Result<Target, ReconcileError> {
        Self::new(environment::load(dir)?, s)
    }

    pub fn new(env: Environment, s: &Settings) -> Result<Target, ReconcileError> {
        let c = &env.config;
        let bad = |m: String| config_error(&env.dir, m);
        if c.gateway.trim().is_empty() {
            return Err(bad("gateway: is required (the gateway's base URL)".into()));
        }
        let auth = Auth::resolve(
            env.secret(&c.token)?,
            c.user.clone(),
            env.secret(&c.jwt_secret)?,
            crate::gateway::DEFAULT_JWT_AUDIENCE.into(),
            crate::gateway::DEFAULT_JWT_ISSUER.into(),
        )
        .map_err(|e| bad(e.to_string()))?;
        let keys = Keys::new(
            env.secret(&c.secret)?.map(|s| Secret::new(&s)),
            env.secret(&c.gateway_secret)?.map(|s| Secret::new(&s)),
        );
        let url = c.gateway.clone();
        Self::connect(
            env,
            Connect {
                url,
                auth,
                keys,
                rate_limit: None,
                ca_pem: None,
            },
            s,
        )
    }

    /// Connect an environment whose gateway and credentials were resolved by the front door
    /// (the controller reads them from Kubernetes Secrets): `env.config`'s connection fields
    /// are ignored.
    pub fn connect(
        mut env: Environment,
        conn: Connect,
        s: &Settings,
    ) -> Result<Target, ReconcileError> {
        env.config.gateway = conn.url;
        let c = &env.config;
        let bad = |m: String| config_error(&env.dir, m);
        let client =
            crate::engine::connect::client(&c.gateway, conn.auth, conn.rate_limit, conn.ca_pem, s)
                .map_err(|e| match e {
                    ConnectError::Gateway(g) => ReconcileError::Gateway(g),
                    ConnectError::Config(m) => bad(m),
                })?;
        let keys = conn.keys;
        let opts = Options {
            strategy: c.conflict_strategy.unwrap_or_default(),
            parallelism: s.parallelism,
            dry_run: s.dry_run,
            discovery_timeout: Duration::from_secs(30),
            content_cache: s.content_cache.clone(),
            ..Options::default()
        };
        let prune = if c.prune.enabled {
            let owner = match c.prune.owner.as_ref().or(s.default_owner.as_ref()) {
                Some(o) => o.clone(),
                None => env
                    .dir
                    .canonicalize()
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_else(|| "default".into()),
            };
            Some(PrunePolicy {
                marker: prune::marker_tag(&owner).map_err(|e| bad(e.to_string()))?,
                max_delete_percent: c.prune.max_delete_percent,
                allow_mass_delete: s.allow_mass_delete,
            })
        } else {
            None
        };
        // The environment's document moves into `desired` (no copy of a large document).
        let mut desired = std::mem::take(&mut env.document);
        if let Some(p) = &prune {
            prune::mark(&mut desired, &p.marker);
        }
        let key = match &s.lock_source {
            Some(src) => envlock::Key::new(src.clone(), &env.config.gateway),
            None => envlock::Key::for_dir(&env.dir, &env.config.gateway),
        };
        let lock = LockSpec {
            command: format!("mcp-gitops {} {}", s.command, key.env),
            key,
            timeout: s.lock_timeout,
        };
        Ok(Target {
            env,
            client,
            keys,
            opts,
            prune,
            desired,
            lock,
        })
    }

    /// Take the environment's lock (one reconcile at a time per environment and gateway,
    /// across processes): plan and apply while holding it. `on_wait` is told when another
    /// holds it and this waits.
    pub async fn lock(
        &self,
        on_wait: &(dyn Fn(&envlock::Waiting<'_>) + Sync),
    ) -> Result<envlock::EnvLock, ReconcileError> {
        let l = &self.lock;
        Ok(envlock::acquire(
            &envlock::lock_dir(),
            &l.key,
            &l.command,
            l.timeout,
            &self.opts.cancel,
            on_wait,
        )
        .await?)
    }

    /// Observe the gateway and decide every step (reads only).
    pub async fn plan(&self) -> Result<Planned, ReconcileError> {
        let file = self.env.dir.display().to_string();
        let mut ready = apply::ready(
            &self.client,
            &self.desired,
            &self.desired,
            &file,
            &self.keys,
            &self.opts,
        )
        .await?;
        self.prune_into(&mut ready)?;
        Ok(self.planned(ready))
    }

    /// Plan against a saved snapshot of the gateway (an export document): no request.
    pub fn plan_offline(&self, snapshot: Document) -> Result<Planned, ReconcileError> {
        let file = self.env.dir.display().to_string();
        let mut ready = apply::ready_offline(
            &self.desired,
            &self.desired,
            &file,
            &self.keys,
            &self.opts,
            snapshot,
        )?;
        self.prune_into(&mut ready)?;
        Ok(self.planned(ready))
    }

    fn planned(&self, ready: Ready) -> Planned {
        Planned {
            ready,
            masks: self.env.masks.clone(),
        }
    }

    /// Add prune's deletes.
    fn prune_into(&self, ready: &mut Ready) -> Result<(), ReconcileError> {
        if let Some(p) = &self.prune {
            let deletes = prune::deletes(&self.desired, &ready.observed, p)?;
            ready.prepared.steps.extend(deletes);
        }
        Ok(())
    }

    /// Keyed digests (HMAC-SHA256) of the desired state and of the observed live state, as a
    /// saved plan records them.
    pub fn digests(&self, planned: &Planned) -> (String, String) {
        let key = self.digest_key();
        (
            desired_digest(&key, &self.desired, &planned.ready, &self.opts, &self.prune),
            live_digest(&key, &planned.ready),
        )
    }

    /// Execute a plan made by [`Target::plan`].
    pub async fn apply(
        &self,
        planned: &Planned,
        progress: Option<Progress<'_>>,
    ) -> Result<Report, ReconcileError> {
        if self.env.config.mode == Mode::Observe && !self.opts.dry_run {
            return Err(ReconcileError::Observe {
                dir: self.env.dir.display().to_string(),
            });
        }
        let r = &planned.ready;
        let owner = apply::owner(&self.client, &r.prepared, &self.opts).await?;
        let report = apply::execute(
            &self.client,
            &Desired {
                document: &self.desired,
                credentials: &r.credentials,
            },
            &r.observed,
            &r.prepared,
            &self.opts,
            owner,
            progress,
        )
        .await;
        Ok(planned.mask(report))
    }

    fn digest_key(&self) -> Vec<u8> {
        self.keys
            .gateway
            .as_ref()
            .map(|s| s.key_hex().into_bytes())
            .unwrap_or_else(|| b"mcp-gitops".to_vec())
    }

    /// Check that a saved plan still holds, then apply it.
    pub async fn apply_saved(
        &self,
        saved: &SavedPlan,
        plan_file: &str,
        progress: Option<Progress<'_>>,
    ) -> Result<(Planned, Report), ReconcileError> {
        self.apply_if_digests(
            &saved.desired_digest,
            &saved.live_digest,
            plan_file,
            progress,
        )
        .await
    }

    /// One string for both digests of a plan ([`Target::digests`]): what the API's plan
    /// answers and its apply takes.
    pub fn plan_digest(&self, planned: &Planned) -> String {
        let (d, l) = self.digests(planned);
        format!("{d}.{l}")
    }

    /// Plan again and apply only if both digests still match (else [`ReconcileError::Stale`]
    /// naming `plan` and which side changed).
    pub async fn apply_if_digests(
        &self,
        desired: &str,
        live: &str,
        plan: &str,
        progress: Option<Progress<'_>>,
    ) -> Result<(Planned, Report), ReconcileError> {
        let now = self.plan().await?;
        let stale = |why: &str| ReconcileError::Stale {
            plan: plan.to_string(),
            why: why.to_string(),
        };
        let (desired_digest, live_digest) = self.digests(&now);
        if !crate::core::digest::constant_time_eq(desired_digest.as_bytes(), desired.as_bytes()) {
            return Err(stale(
                "the environment's documents or settings changed since it was made",
            ));
        }
        if !crate::core::digest::constant_time_eq(live_digest.as_bytes(), live.as_bytes()) {
            return Err(stale("the live gateway changed since it was made"));
        }
        let report = self.apply(&now, progress).await?;
        Ok((now, report))
    }
}

/// A plan: what the gateway holds and what to do.
pub struct Planned {
    pub ready: Ready,
    /// Where the desired entities hold substituted values.
    masks: Masks,
}

pub use crate::core::verb::Counts;

/// One planned step as data (see [`Planned::steps`]).
#[derive(Clone, Debug, Serialize)]
pub struct PlanStep {
    pub kind: crate::core::kind::Kind,
    pub key: String,
    /// The key created under (differs from `key` when renamed).
    pub target: String,
    pub verb: crate::core::verb::Verb,
    pub changes: Vec<crate::core::diff::FieldChange>,
    /// Why it is skipped.
    pub reason: Option<String>,
}

impl Planned {
    pub fn counts(&self) -> Counts {
        Counts::of(self.ready.prepared.steps.iter().map(|s| s.action.verb()))
    }

    /// Every step as data, in the plan's order, with field changes as [`Planned::lines`] shows
    /// them (substituted values as written, credentials only as `Sensitive`).
    pub fn steps(&self) -> Vec<PlanStep> {
        self.ready
            .prepared
            .steps
            .iter()
            .map(|s| PlanStep {
                kind: s.kind,
                key: s.key.clone(),
                target: s.target.clone(),
                verb: s.action.verb(),
                changes: match &s.action {
                    StepAction::Update(c) => c
                        .iter()
                        .map(|c| self.masks.change(s.kind, &s.key, c))
                        .collect(),
                    _ => Vec::new(),
                },
                reason: match &s.action {
                    StepAction::Skip(why) => Some(self.masks.text(why)),
                    _ => None,
                },
            })
            .collect()
    }

    /// What `plan -o json` prints (and the API's plan answers): counts, change lines, notes.
    pub fn to_json(&self, verbose: bool) -> serde_json::Value {
        let c = self.counts();
        serde_json::json!({"create": c.create, "update": c.update, "delete": c.delete,
               "unchanged": c.unchanged, "skip": c.skip,
               "changes": self.lines(verbose), "notes": self.ready.prepared.notes})
    }

    /// Terraform-like lines: `+ create`, `~ update` with field changes, `- delete`, skips,
    /// and with `verbose` the unchanged entities. Credentials never appear.
    pub fn lines(&self, verbose: bool) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.ready.prepared.steps {
            let changes: Vec<String>;
            let (key, op) = match &s.action {
                StepAction::Create => (&s.target, LineOp::Create),
                StepAction::Update(c) => {
                    changes = c
                        .iter()
                        .map(|c| self.masks.change(s.kind, &s.key, c).to_string())
                        .collect();
                    (&s.key, LineOp::Update(&changes))
                }
                StepAction::Delete => (&s.key, LineOp::Delete),
                StepAction::Skip(why) => (&s.key, LineOp::Skip(why)),
                StepAction::Unchanged if verbose => (&s.key, LineOp::Unchanged),
                StepAction::Unchanged => continue,
            };
            out.push(plan_line(s.kind, key, op));
        }
        out
    }

    /// A report of this plan's execution with substituted values shown as written: in field
    /// changes where they were substituted, in messages where they are quoted whole.
    fn mask(&self, mut report: Report) -> Report {
        if self.masks.is_empty() {
            return report;
        }
        let updates: std::collections::HashMap<_, _> = self
            .ready
            .prepared
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                StepAction::Update(c) => Some(((s.kind, s.key.as_str()), c)),
                _ => None,
            })
            .collect();
        for r in &mut report.results {
            if let Some(changes) = updates.get(&(r.kind, r.name.as_str())) {
                r.changes = changes
                    .iter()
                    .map(|c| apply::short(&self.masks.change(r.kind, &r.name, c)))
                    .collect();
            }
            if let apply::Outcome::Failed { error: m, .. } | apply::Outcome::Skipped { reason: m } =
                &mut r.outcome
            {
                *m = self.masks.text(m);
            }
        }
        report
    }
}

/// HMAC-SHA256 of length-prefixed parts, hex (no two part lists share a digest).
fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    parts
        .iter()
        .fold(Keyed::new(key), |mac, p| {
            mac.update(&(p.len() as u64).to_be_bytes()).update(p)
        })
        .hex()
}

fn credentials_json(c: &crate::core::diff::CredentialMap) -> String {
    c.iter()
        .map(|((k, n), v)| format!("{k}\u{0}{n}\u{0}{}\n", v.to_json()))
        .collect()
}

fn desired_digest(
    key: &[u8],
    desired: &Document,
    ready: &Ready,
    opts: &Options,
    prune: &Option<PrunePolicy>,
) -> String {
    let mut doc = desired.clone();
    doc.exported_at = None;
    // A ciphertext changes with every encryption (a new nonce) while the credential does not:
    // the decrypted credentials are hashed below instead.
    for t in &mut doc.entities.tools {
        t.auth_value = t.auth_value.as_ref().map(|_| String::new());
    }
    for g in &mut doc.entities.gateways {
        g.auth_value = g.auth_value.as_ref().map(|_| String::new());
    }
    let settings = format!("{:?} {:?}", opts.strategy, prune);
    hmac_hex(
        key,
        &[
            serde_json::to_string(&doc.entities)
                .unwrap_or_default()
                .as_bytes(),
            credentials_json(&ready.credentials).as_bytes(),
            settings.as_bytes(),
        ],
    )
}

fn live_digest(key: &[u8], ready: &Ready) -> String {
    let o = &ready.observed;
    let mut doc = o.document.clone();
    doc.entities.sort();
    let mut ids: Vec<String> = o
        .ids
        .iter()
        .map(|((k, n), id)| format!("{k}\u{0}{n}\u{0}{id}"))
        .collect();
    ids.sort();
    hmac_hex(
        key,
        &[
            serde_json::to_string(&doc.entities)
                .unwrap_or_default()
                .as_bytes(),
            ids.join("\n").as_bytes(),
            credentials_json(&o.credentials).as_bytes(),
        ],
    )
}

pub use super::saved_plan::{PLAN_FORMAT, PlanFileError, SavedPlan};

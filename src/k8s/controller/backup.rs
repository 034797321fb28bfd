//! One `GatewayBackup` reconcile: the next firing of its cron schedule (UTC) is kept in
//! `status.nextRun`; a reconcile before it (a spec edit, a restart, a new leader) writes
//! nothing and backs nothing up; at or after it, one snapshot through the engine's one backup
//! path ([`crate::engine::backup::once`], as `backup --once` and the daemon's schedules: no
//! empty commit, what changed in the message, credentials encrypted with the gateway's key),
//! then the status and a requeue at the next firing. A new value of the `requestedAt`
//! annotation takes a snapshot at once.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Secret as K8sSecret;
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use super::{Ctx, Error, REQUESTED_AT, publish};
use crate::core::error::{Classify, ErrorClass};
use crate::core::schedule::{Schedule, parse_rfc3339, rfc3339};
use crate::engine::backup::{self, BackupError, BackupTarget};
use crate::engine::connect::ConnectError;
use crate::engine::export::ExportError;
use crate::engine::git::{self, GitError, PublishOptions, Remote};
use crate::engine::reconcile::Settings;
use crate::k8s::crd::{ContextForgeGateway, GatewayBackup, GatewayBackupSpec, GatewayConfig};
use crate::k8s::status::{self, READY, RECONCILING, STALLED, Want};

/// A failure worth retrying (an unreachable gateway or repository) is tried again this many
/// seconds later, or at the next firing if that is sooner.
pub const RETRY_SECS: i64 = 60;
/// The longest a reconcile waits before looking again (so a clock that jumped is noticed).
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Why a snapshot failed: each becomes a `Ready` reason through [`BackupFailed::reason`].
#[derive(Debug, thiserror::Error)]
pub enum BackupFailed {
    /// Reading the gateway resource, its Secrets, or connecting.
    #[error(transparent)]
    Setup(#[from] Error),
    #[error("spec.git: {0}")]
    Spec(GitError),
    #[error(
        "spec.git.path {path} is inside the Git source of GatewayConfig {config} ({url}, branch {branch}, path '{source_path}'): a backup must not write where a config reads its desired state"
    )]
    Overlap {
        path: String,
        config: String,
        url: String,
        branch: String,
        source_path: String,
    },
    #[error(
        "ContextForgeGateway {0} has no encryptionSecretRef: the gateway's AUTH_ENCRYPTION_SECRET is needed to decrypt its stored credentials and encrypt them in the snapshot"
    )]
    NoKey(String),
    #[error(transparent)]
    Export(ExportError),
    #[error(transparent)]
    Git(GitError),
}

fn gateway_reason(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::Auth => "AuthFailed",
        ErrorClass::Unreachable | ErrorClass::GatewayBusy => "GatewayUnreachable",
        ErrorClass::Invalid => "InvalidSpec",
        _ => "ExportFailed",
    }
}

impl BackupFailed {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            BackupFailed::Setup(e) => match e {
                Error::Gateway(g) => gateway_reason(g.class()),
                Error::Invalid(_) => "InvalidSpec",
                e => e.reason(),
            },
            BackupFailed::Spec(_) => "InvalidSpec",
            BackupFailed::Overlap { .. } => "WouldOverwriteSource",
            BackupFailed::NoKey(_) => "NoEncryptionKey",
            BackupFailed::Export(ExportError::Credential { .. }) => "KeyMismatch",
            BackupFailed::Export(e) => gateway_reason(e.class()),
            BackupFailed::Git(g) => match g.class() {
                ErrorClass::Auth => "GitAuthFailed",
                ErrorClass::Unreachable => "GitUnreachable",
                _ => "GitFailed",
            },
        }
    }

    /// Worth trying again soon without anyone acting (else: at the next firing).
    pub fn transient(&self) -> bool {
        match self {
            BackupFailed::Setup(Error::Kube(_)) => true,
            BackupFailed::Setup(Error::Gateway(g)) => g.class().is_transient(),
            BackupFailed::Export(e) => e.class().is_transient(),
            BackupFailed::Git(g) => matches!(
                g,
                GitError::Unreachable { .. } | GitError::Rejected { .. } | GitError::Local { .. }
            ),
            _ => false,
        }
    }
}

/// What a snapshot came to.
#[derive(Debug)]
pub struct Snapshot {
    /// The new commit; None when nothing changed.
    pub commit: Option<String>,
    /// The branch head before.
    pub previous: Option<String>,
    /// The commit message's first line.
    pub subject: Option<String>,
    pub entities: u32,
}

/// Whether a snapshot is due now.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Run,
    /// Not before this time (Unix seconds).
    Wait(i64),
}

/// Due when the stored `nextRun` (for this generation) has come, or the `requestedAt`
/// annotation has a value not yet handled. A new or edited backup waits for its next firing.
pub fn decide(b: &GatewayBackup, schedule: &Schedule, now: i64) -> Next {
    let st = b.status.clone().unwrap_or_default();
    let requested = b.annotations().get(REQUESTED_AT);
    if requested.is_some() && requested != st.last_handled_requested_at.as_ref() {
        return Next::Run;
    }
    let stored =
        st.next_run.as_deref().and_then(parse_rfc3339).filter(|_| {
            st.observed_generation == b.metadata.generation && !st.conditions.is_empty()
        });
    match stored {
        Some(n) if now >= n => Next::Run,
        Some(n) => Next::Wait(n),
        None => Next::Wait(schedule.next_after(now).unwrap_or(now + 3600)),
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Requeue just after `next` (Unix seconds), at most [`MAX_WAIT`] from now.
fn until(next: i64) -> Action {
    let ms = (next * 1000 - unix_ms()).max(0) as u64 + 200;
    Action::requeue(Duration::from_millis(ms).min(MAX_WAIT))
}

pub async fn reconcile(b: Arc<GatewayBackup>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if b.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = b.namespace().unwrap_or_default();
    let api: Api<GatewayBackup> = Api::namespaced(ctx.client.clone(), &ns);
    let old = b.status.clone().unwrap_or_default();
    let generation = b.metadata.generation;
    let stamp = crate::core::clock::now_rfc3339();
    let mut new = old.clone();
    new.observed_generation = generation;
    new.last_handled_requested_at = b.annotations().get(REQUESTED_AT).cloned();
    let schedule = match Schedule::parse_five_fields(&b.spec.schedule) {
        Ok(s) if !b.spec.suspend => s,
        parsed => {
            let wants = match parsed {
                Err(why) => {
                    ctx.metrics.reconciled_kind("GatewayBackup", false);
                    status::outcome(Err((
                        "InvalidSchedule",
                        format!("spec.schedule: {why}"),
                        true,
                    )))
                }
                Ok(_) => {
                    ctx.metrics.reconciled_kind("GatewayBackup", true);
                    vec![
                        Want::new(
                            READY,
                            false,
                            "Suspended",
                            "spec.suspend is true: no snapshots",
                        ),
                        Want::new(RECONCILING, false, "Suspended", ""),
                        Want::new(STALLED, false, "Suspended", ""),
                    ]
                }
            };
            new.next_run = None;
            let (c, flips) = status::settle(&old.conditions, &wants, &stamp, generation);
            new.conditions = c;
            publish(&api, &*b, &ctx, &old, &new, &flips).await?;
            return Ok(Action::await_change());
        }
    };
    let now = unix_ms() / 1000;
    if let Next::Wait(next) = decide(&b, &schedule, now) {
        new.next_run = Some(rfc3339(next));
        if old.observed_generation != generation || old.conditions.is_empty() {
            let wants = status::outcome(Ok((
                "Scheduled",
                format!("next snapshot at {}", rfc3339(next)),
            )));
            let (c, flips) = status::settle(&old.conditions, &wants, &stamp, generation);
            new.conditions = c;
            publish(&api, &*b, &ctx, &old, &new, &flips).await?;
        } else {
            publish(&api, &*b, &ctx, &old, &new, &Default::default()).await?;
        }
        return Ok(until(next));
    }
    let started = Instant::now();
    let result = snapshot(&b, &ctx).await;
    let done = unix_ms() / 1000;
    let label = format!("{ns}/{}", b.name_any());
    ctx.metrics.backup(&label, &result);
    ctx.metrics.reconciled_kind("GatewayBackup", result.is_ok());
    let mut next = schedule.next_after(done).unwrap_or(done + 3600);
    new.last_run = Some(rfc3339(now));
    let wants = match &result {
        Ok(s) => {
            new.entities = Some(s.entities);
            match &s.commit {
                Some(c) => {
                    new.last_commit = Some(c.clone());
                    let subject = s.subject.clone().unwrap_or_default();
                    tracing::info!("{label}: committed {}: {subject}", &c[..c.len().min(12)]);
                    status::outcome(Ok(("BackedUp", format!("committed {c}: {subject}"))))
                }
                None => {
                    new.last_commit = old.last_commit.clone().or(s.previous.clone());
                    let at = new.last_commit.as_deref().unwrap_or("-");
                    status::outcome(Ok((
                        "Unchanged",
                        format!(
                            "{} entities, nothing changed since {at}: no commit",
                            s.entities
                        ),
                    )))
                }
            }
        }
        Err(e) => {
            tracing::warn!("{label}: backup failed: {e}");
            if e.transient() {
                next = next.min(done + RETRY_SECS);
            }
            status::outcome(Err((e.reason(), e.to_string(), !e.transient())))
        }
    };
    tracing::debug!("{label}: snapshot took {:?}", started.elapsed());
    new.next_run = Some(rfc3339(next));
    let (c, flips) = status::settle(&old.conditions, &wants, &stamp, generation);
    new.conditions = c;
    publish(&api, &*b, &ctx, &old, &new, &flips).await?;
    Ok(until(next))
}

/// `url` without a trailing `/` or `.git`, for comparing two spellings of one repository.
fn repo_key(url: &str) -> &str {
    let u = url.trim().trim_end_matches('/');
    u.strip_suffix(".git").unwrap_or(u)
}

/// Refuse a backup into a directory a GatewayConfig of the namespace reads its documents from
/// (same repository and branch, the file inside the source's path): the daemon's rule.
async fn overlap(
    ctx: &Ctx,
    ns: &str,
    b: &GatewayBackupSpec,
    path: &str,
) -> Result<(), BackupFailed> {
    let configs: Api<GatewayConfig> = Api::namespaced(ctx.client.clone(), ns);
    for c in configs
        .list(&ListParams::default())
        .await
        .map_err(Error::from)?
    {
        for g in c.spec.sources.iter().filter_map(|s| s.git.as_ref()) {
            let src = git::clean_path(&g.path).unwrap_or_default();
            let inside = src.is_empty() || path == src || path.starts_with(&format!("{src}/"));
            if repo_key(&g.url) == repo_key(&b.git.url) && g.branch == b.git.branch && inside {
                return Err(BackupFailed::Overlap {
                    path: path.to_string(),
                    config: c.name_any(),
                    url: g.url.clone(),
                    branch: g.branch.clone(),
                    source_path: src,
                });
            }
        }
    }
    Ok(())
}

/// One snapshot of the backup's gateway into its repository.
pub async fn snapshot(b: &GatewayBackup, ctx: &Ctx) -> Result<Snapshot, BackupFailed> {
    let ns = b.namespace().unwrap_or_default();
    let spec = &b.spec;
    let path = git::clean_path(&spec.git.path).map_err(BackupFailed::Spec)?;
    if path.is_empty() || !git::valid_branch(&spec.git.branch) {
        return Err(BackupFailed::Spec(GitError::BadSetting {
            setting: format!("path '{}', branch '{}'", spec.git.path, spec.git.branch),
            reason: "a file in the repository and a valid branch name are needed".into(),
        }));
    }
    let secrets: Api<K8sSecret> = Api::namespaced(ctx.client.clone(), &ns);
    let dir = ctx.state_dir.join("backups").join(&ns).join(b.name_any());
    let auth =
        super::git_auth::git_auth(&secrets, &spec.git.url, spec.git.secret_ref.as_ref()).await?;
    let remote = Remote::new(&spec.git.url, auth).map_err(BackupFailed::Spec)?;
    overlap(ctx, &ns, spec, &path).await?;
    let gws: Api<ContextForgeGateway> = Api::namespaced(ctx.client.clone(), &ns);
    let name = &spec.gateway_ref.name;
    let gw = gws
        .get_opt(name)
        .await
        .map_err(Error::from)?
        .ok_or_else(|| Error::NotFound {
            kind: "ContextForgeGateway",
            name: name.clone(),
        })?;
    let conn = super::connect::connect(&secrets, &gw, None).await?;
    let key = conn
        .keys
        .gateway
        .clone()
        .ok_or_else(|| BackupFailed::NoKey(name.clone()))?;
    let settings = Settings {
        stats: Some(ctx.metrics.gateway_stats(&format!("{ns}/{name}"))),
        limiter: Some(ctx.limiter(&conn.url, conn.rate_limit.unwrap_or(450)).await),
        command: "controller",
        timeout: gw
            .spec
            .timeout_seconds
            .map(|s| Duration::from_secs(s as u64)),
        ..Settings::default()
    };
    let client = crate::engine::connect::client(
        &conn.url,
        conn.auth,
        conn.rate_limit,
        conn.ca_pem,
        &settings,
    )
    .map_err(|e| match e {
        ConnectError::Config(m) => Error::Invalid(m),
        ConnectError::Gateway(g) => Error::Gateway(g),
    })?;
    let opts = backup::export_options(key, None, client.who());
    let target = BackupTarget {
        remote,
        branch: spec.git.branch.clone(),
        path,
        cache_dir: dir.join("git"),
        message_prefix: spec.git.message.clone().unwrap_or_else(|| "backup".into()),
        format: None,
        publish: PublishOptions::default(),
    };
    let out = backup::once(&client, &opts, &target)
        .await
        .map_err(|e| match e {
            BackupError::Export(e) => BackupFailed::Export(e),
            BackupError::Git(g) => BackupFailed::Git(g),
        })?;
    Ok(Snapshot {
        commit: out.commit.map(|c| c.0),
        previous: out.previous.map(|c| c.0),
        subject: out
            .message
            .and_then(|m| m.lines().next().map(str::to_string)),
        entities: out.document.entities.total() as u32,
    })
}

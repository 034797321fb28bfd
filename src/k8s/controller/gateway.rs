//! One `ContextForgeGateway` reconcile: connect with its Secrets and read the gateway (an
//! authenticated list), its version, whether the encryption key decrypts one of its stored
//! credentials; `Ready` Connected / Unreachable / AuthFailed / KeyMismatch / SecretMissing; a
//! finalizer keeps it while any config or backup names it.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret as K8sSecret;
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};

use super::{Ctx, Error, REQUESTED_AT, jitter, publish};
use crate::core::error::{Classify, ErrorClass};
use crate::engine::keycheck::{KeyCheck, check_key};
use crate::gateway::{Client, ClientOptions};
use crate::k8s::crd::{ContextForgeGateway, GatewayBackup, GatewayConfig};
use crate::k8s::status::{self, Want};

/// Kept while configs or backups name the gateway.
pub const FINALIZER: &str = "gitops.mcp-gitops.dev/in-use";

/// `GatewayConfig/<name>` and `GatewayBackup/<name>` naming `gw`.
async fn users(ctx: &Ctx, ns: &str, gw: &str) -> Result<Vec<String>, Error> {
    let configs: Api<GatewayConfig> = Api::namespaced(ctx.client.clone(), ns);
    let backups: Api<GatewayBackup> = Api::namespaced(ctx.client.clone(), ns);
    let mut out: Vec<String> = configs
        .list(&ListParams::default())
        .await?
        .into_iter()
        .filter(|c| c.spec.gateway_ref.name == gw)
        .map(|c| format!("GatewayConfig/{}", c.name_any()))
        .collect();
    out.extend(
        backups
            .list(&ListParams::default())
            .await?
            .into_iter()
            .filter(|b| b.spec.gateway_ref.name == gw)
            .map(|b| format!("GatewayBackup/{}", b.name_any())),
    );
    out.sort();
    Ok(out)
}

/// What a check found: the gateway's version, and whether the encryption key is its own.
struct Checked {
    version: Option<String>,
    key: Option<KeyCheck>,
}

async fn check(gw: &ContextForgeGateway, ctx: &Ctx) -> Result<Checked, Error> {
    let ns = gw.namespace().unwrap_or_default();
    let secrets: Api<K8sSecret> = Api::namespaced(ctx.client.clone(), &ns);
    let conn = super::connect::connect(&secrets, gw, None).await?;
    if let Some(pem) = &conn.ca_pem {
        crate::gateway::check_ca_pem(pem)
            .map_err(|why| Error::Invalid(format!("caSecretRef: {why}")))?;
    }
    let mut opts = ClientOptions::new(conn.url.clone(), conn.auth);
    opts.rate_limit = conn.rate_limit.unwrap_or(450);
    opts.limiter = Some(ctx.limiter(&conn.url, opts.rate_limit).await);
    opts.ca_pem = conn.ca_pem;
    opts.stats = Some(
        ctx.metrics
            .gateway_stats(&format!("{ns}/{}", gw.name_any())),
    );
    opts.timeout = Duration::from_secs(gw.spec.timeout_seconds.unwrap_or(30) as u64);
    let client = Client::new(opts)?;
    crate::gateway::live::list_roots(&client).await?;
    let version = crate::gateway::info::version(&client).await?;
    let key = match &conn.keys.gateway {
        Some(k) => Some(check_key(&client, k).await?),
        None => None,
    };
    Ok(Checked { version, key })
}

/// `Ready` for what a check found.
fn ready(gw: &ContextForgeGateway, result: &Result<Checked, Error>) -> Want {
    match result {
        Ok(Checked {
            key: Some(KeyCheck::Mismatch { kind, name }),
            ..
        }) => Want::new(
            status::READY,
            false,
            "KeyMismatch",
            format!(
                "the encryptionSecretRef key does not decrypt the stored credentials of {kind} {name}: it is not the gateway's AUTH_ENCRYPTION_SECRET"
            ),
        ),
        Ok(c) => {
            let key = match &c.key {
                Some(KeyCheck::Verified { kind, name }) => {
                    format!("; the key decrypts {kind} {name}'s credentials")
                }
                _ => String::new(),
            };
            Want::new(
                status::READY,
                true,
                "Connected",
                format!("{} answers{key}", gw.spec.url),
            )
        }
        Err(e) => {
            let reason = match e.class() {
                ErrorClass::Auth => "AuthFailed",
                ErrorClass::Unreachable | ErrorClass::GatewayBusy => "Unreachable",
                _ => e.reason(),
            };
            Want::new(status::READY, false, reason, e.to_string())
        }
    }
}

pub async fn reconcile(gw: Arc<ContextForgeGateway>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ns = gw.namespace().unwrap_or_default();
    let api: Api<ContextForgeGateway> = Api::namespaced(ctx.client.clone(), &ns);
    let used_by = users(&ctx, &ns, &gw.name_any()).await?;
    let has = gw.finalizers().iter().any(|f| f == FINALIZER);
    let old = gw.status.clone().unwrap_or_default();
    let mut new = old.clone();
    new.used_by = used_by.clone();
    let now = crate::core::clock::now_rfc3339();
    let generation = gw.meta().generation;
    if gw.meta().deletion_timestamp.is_some() {
        if !has {
            return Ok(Action::await_change());
        }
        if used_by.is_empty() {
            super::set_finalizer(&api, &*gw, FINALIZER, false).await?;
            return Ok(Action::await_change());
        }
        let msg = format!("still used by {}: delete them first", used_by.join(", "));
        let (c, flips) = status::settle(
            &old.conditions,
            &[Want::new(status::READY, false, "InUse", msg)],
            &now,
            generation,
        );
        new.conditions = c;
        publish(&api, &*gw, &ctx, &old, &new, &flips).await?;
        return Ok(Action::requeue(Duration::from_secs(15)));
    }
    if !has {
        super::set_finalizer(&api, &*gw, FINALIZER, true).await?;
    }
    let result = check(&gw, &ctx).await;
    ctx.metrics.reconciled("ContextForgeGateway", &result);
    let want = ready(&gw, &result);
    if let Ok(c) = &result {
        new.version = c.version.clone();
    }
    let (c, flips) = status::settle(&old.conditions, &[want], &now, generation);
    new.conditions = c;
    new.observed_generation = generation;
    new.last_handled_requested_at = gw.annotations().get(REQUESTED_AT).cloned();
    publish(&api, &*gw, &ctx, &old, &new, &flips).await?;
    Ok(Action::requeue(jitter(match result {
        Ok(Checked {
            key: Some(KeyCheck::Mismatch { .. }),
            ..
        })
        | Err(_) => Duration::from_secs(30),
        Ok(_) => Duration::from_secs(300),
    })))
}

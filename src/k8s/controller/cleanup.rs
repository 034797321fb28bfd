//! Deleting a `deletionPolicy: Delete` config: remove what it owns (the engine's prune with an
//! empty desired state, reverse dependency order), then release the finalizer. A gateway that
//! cannot be reached keeps the resource, with a condition saying why and how to let it go.

use std::time::Duration;

use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use super::config::{FINALIZER, env_config, target};
use super::{Ctx, Error, FORCE_ORPHAN, publish};
use crate::core::document::{DOCUMENT_VERSION, Document};
use crate::engine::environment::Environment;
use crate::gateway::Priority;
use crate::k8s::crd::GatewayConfig;
use crate::k8s::status::{self, Want};

pub async fn run(
    cfg: &GatewayConfig,
    ctx: &Ctx,
    api: &Api<GatewayConfig>,
) -> Result<Action, Error> {
    if cfg.annotations().get(FORCE_ORPHAN).map(String::as_str) == Some("true") {
        super::set_finalizer(api, cfg, FINALIZER, false).await?;
        return Ok(Action::await_change());
    }
    match delete_owned(cfg, ctx).await {
        Ok(()) => {
            super::set_finalizer(api, cfg, FINALIZER, false).await?;
            Ok(Action::await_change())
        }
        Err(e) => {
            let old = cfg.status.clone().unwrap_or_default();
            let mut new = old.clone();
            let now = crate::core::clock::now_rfc3339();
            let message = format!(
                "cannot delete the entities this config owns: {e}; the resource stays until they are deleted (annotate {FORCE_ORPHAN}=true to delete it and leave them on the gateway)"
            );
            let wants = vec![
                Want::new(status::READY, false, "DeletionBlocked", message.clone()),
                Want::new(status::RECONCILING, true, "Deleting", ""),
                Want::new(status::STALLED, false, "DeletionBlocked", ""),
            ];
            let (c, flips) = status::settle(&old.conditions, &wants, &now, cfg.metadata.generation);
            new.conditions = c;
            publish(api, cfg, ctx, &old, &new, &flips).await?;
            Ok(Action::requeue(Duration::from_secs(30)))
        }
    }
}

async fn delete_owned(cfg: &GatewayConfig, ctx: &Ctx) -> Result<(), Error> {
    let mut config = env_config(cfg);
    config.prune.enabled = true;
    let env = Environment {
        dir: ctx.state_dir.join("configs"),
        config,
        document: Document {
            version: DOCUMENT_VERSION.to_string(),
            ..Document::default()
        },
        origin: Default::default(),
        masks: Default::default(),
    };
    let t = target(cfg, ctx, env, true, Priority::Foreground).await?;
    let planned = t.plan().await?;
    let report = t.apply(&planned, None).await?;
    let failed: Vec<String> = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, crate::engine::apply::Outcome::Failed { .. }))
        .map(|r| format!("{} {}", r.kind, r.name))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "failed to delete: {}",
            failed.join(", ")
        )))
    }
}

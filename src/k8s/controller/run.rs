//! The process: flags, the Kubernetes client (kubeconfig or in-cluster, as
//! `kube::Client::try_default` finds it), leader election, the Controllers and the listener.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret as K8sSecret};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Api, ResourceExt};

use super::{Ctx, Error, REQUESTED_AT, backup, config, context, gateway};
use crate::k8s::crd::{ContextForgeGateway, GatewayBackup, GatewayConfig};

/// The label a Secret or ConfigMap carries to be watched (read-only): a change to one
/// reconciles the configs and gateways that name it at once.
pub const WATCH_LABEL: &str = "gitops.mcp-gitops.dev/watch";

#[derive(clap::Args, Debug, Clone)]
pub struct ControllerArgs {
    /// Only this namespace (default: every namespace the service account may read).
    #[arg(long, env = "WATCH_NAMESPACE", value_name = "NS")]
    pub namespace: Option<String>,
    /// Take part in leader election with a Lease: only the leader reconciles and writes.
    #[arg(long, env = "MCP_GITOPS_LEADER_ELECT")]
    pub leader_elect: bool,
    /// The Lease's name.
    #[arg(long, default_value = "mcp-gitops-controller")]
    pub lease_name: String,
    /// The Lease's namespace (default: --namespace, else POD_NAMESPACE, else `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Seconds a leader holds the Lease without renewing it; a standby takes over after.
    #[arg(long, default_value_t = 15)]
    pub lease_duration: u64,
    /// This replica's identity in the Lease (default: POD_NAME, else host name and pid).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    #[arg(long, default_value = "0.0.0.0:9090")]
    pub metrics_listen: SocketAddr,
    /// Scratch space for layered documents (a writable emptyDir in a pod).
    #[arg(long, env = "MCP_GITOPS_STATE_DIR", default_value = "/tmp/mcp-gitops")]
    pub state_dir: PathBuf,
}

fn identity(a: &ControllerArgs) -> String {
    a.identity.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_else(|_| "host".into());
        format!("{}-{}", host.trim(), std::process::id())
    })
}

/// Generation, the request and force-orphan annotations and deletion: what reconciles a config
/// or a backup (not its status, nor the finalizer it adds itself).
fn changed<K: ResourceExt>(o: &K) -> Option<u64> {
    let mut h = DefaultHasher::new();
    o.meta().generation.hash(&mut h);
    o.annotations().get(REQUESTED_AT).hash(&mut h);
    o.annotations().get(super::FORCE_ORPHAN).hash(&mut h);
    o.meta().deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

fn api<K>(client: &kube::Client, ns: &Option<String>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(n) => Api::namespaced(client.clone(), n),
        None => Api::all(client.clone()),
    }
}

fn error_policy<K>(_: Arc<K>, e: &Error, _: Arc<Ctx>) -> Action {
    tracing::warn!("reconcile failed: {e}");
    Action::requeue(Duration::from_secs(15))
}

fn names_config(c: &GatewayConfig, name: &str) -> bool {
    c.spec.sources.iter().any(|s| {
        s.config_map.as_ref().is_some_and(|m| m.name == name)
            || s.git
                .as_ref()
                .and_then(|g| g.secret_ref.as_ref())
                .is_some_and(|r| r.name == name)
    }) || c
        .spec
        .document_key_secret_ref
        .as_ref()
        .is_some_and(|r| r.name == name)
        || c.spec
            .credentials
            .iter()
            .any(|x| x.secret_key_ref.name == name)
}

fn names_gateway(g: &ContextForgeGateway, name: &str) -> bool {
    let a = &g.spec.auth;
    [
        a.token_secret_ref.as_ref(),
        a.jwt.as_ref().map(|j| &j.signing_key_secret_ref),
        g.spec.encryption_secret_ref.as_ref(),
        g.spec.ca_secret_ref.as_ref(),
    ]
    .into_iter()
    .flatten()
    .any(|r| r.name == name)
}

/// What a change of an object concerns: the objects of `store` in its namespace that `names`
/// says name it.
fn naming<K, O>(
    store: reflector::Store<K>,
    names: fn(&K, &str) -> bool,
) -> impl Fn(O) -> Vec<ObjectRef<K>> + Send + Sync + 'static
where
    K: kube::Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    O: ResourceExt,
{
    move |o: O| {
        let (ns, name) = (o.namespace(), o.name_any());
        store
            .state()
            .into_iter()
            .filter(|k| k.namespace() == ns && names(k, &name))
            .map(|k| ObjectRef::from_obj(&*k))
            .collect()
    }
}

/// A config is gone: drop its scratch files and Git clones (best effort, off the async
/// threads; a cache, so a lost Delete event only leaves disk space behind).
fn forget(state: &std::path::Path, c: &GatewayConfig) {
    let (ns, name) = (c.namespace().unwrap_or_default(), c.name_any());
    let dirs = [
        state.join("configs").join(&ns).join(&name),
        super::git::cache_dir(state, &ns, &name),
    ];
    tokio::task::spawn_blocking(move || {
        for d in dirs {
            if d.exists()
                && let Err(e) = std::fs::remove_dir_all(&d)
            {
                tracing::warn!("{}: {e}", d.display());
            }
        }
    });
}

async fn controllers(ctx: Arc<Ctx>, ns: Option<String>) {
    let client = ctx.client.clone();
    let labelled = watcher::Config::default().labels(&format!("{WATCH_LABEL}=true"));
    // GatewayConfig: its own changes (generation, annotation) and the ConfigMaps, Secrets and
    // gateways it names.
    let (reader, writer) = reflector::store::<GatewayConfig>();
    let stream = watcher(
        api::<GatewayConfig>(&client, &ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(writer)
    .inspect({
        let state = ctx.state_dir.clone();
        move |e| {
            if let Ok(watcher::Event::Delete(c)) = e {
                forget(&state, c);
            }
        }
    })
    .applied_objects()
    .predicate_filter(changed::<GatewayConfig>, Default::default());
    let by_cm = naming::<_, ConfigMap>(reader.clone(), names_config);
    let by_secret = naming::<_, K8sSecret>(reader.clone(), names_config);
    let by_gateway =
        naming::<_, ContextForgeGateway>(reader.clone(), |c, name| c.spec.gateway_ref.name == name);
    let configs = Controller::for_stream(stream, reader)
        .watches(api::<ConfigMap>(&client, &ns), labelled.clone(), by_cm)
        .watches(api::<K8sSecret>(&client, &ns), labelled.clone(), by_secret)
        // A gateway's spec (not its status) concerns its configs.
        .watches_stream(
            watcher(
                api::<ContextForgeGateway>(&client, &ns),
                watcher::Config::default(),
            )
            .default_backoff()
            .touched_objects()
            .predicate_filter(predicates::generation, Default::default()),
            by_gateway,
        )
        .shutdown_on_signal()
        .run(config::reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    // ContextForgeGateway: its own changes and its Secrets.
    let gw_api = api::<ContextForgeGateway>(&client, &ns);
    let gws = Controller::new(gw_api, watcher::Config::default());
    let by_secret = naming::<_, K8sSecret>(gws.store(), names_gateway);
    let by_config = |c: GatewayConfig| {
        Some(
            ObjectRef::<ContextForgeGateway>::new(&c.spec.gateway_ref.name)
                .within(&c.namespace().unwrap_or_default()),
        )
    };
    let by_backup = |b: GatewayBackup| {
        Some(
            ObjectRef::<ContextForgeGateway>::new(&b.spec.gateway_ref.name)
                .within(&b.namespace().unwrap_or_default()),
        )
    };
    let gateways = gws
        .watches(api::<K8sSecret>(&client, &ns), labelled, by_secret)
        // A config created or its spec edited may change `usedBy` (a config's status writes
        // do not: they would cost the gateway a request each); deletions are seen by the
        // 15 s requeue of a gateway waiting to be deleted.
        .watches_stream(
            watcher(
                api::<GatewayConfig>(&client, &ns),
                watcher::Config::default(),
            )
            .default_backoff()
            .touched_objects()
            .predicate_filter(predicates::generation, Default::default()),
            by_config,
        )
        // Likewise a backup created or edited (`usedBy`).
        .watches_stream(
            watcher(
                api::<GatewayBackup>(&client, &ns),
                watcher::Config::default(),
            )
            .default_backoff()
            .touched_objects()
            .predicate_filter(predicates::generation, Default::default()),
            by_backup,
        )
        .shutdown_on_signal()
        .run(gateway::reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    // GatewayBackup: its own spec and request annotation only. Each reconcile reads the
    // gateway and its Secrets afresh when a snapshot is due; one before the firing does
    // nothing, so no other watch is needed.
    let (reader, writer) = reflector::store::<GatewayBackup>();
    let stream = watcher(
        api::<GatewayBackup>(&client, &ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(writer)
    .applied_objects()
    .predicate_filter(changed::<GatewayBackup>, Default::default());
    let backups = Controller::for_stream(stream, reader)
        .shutdown_on_signal()
        .run(backup::reconcile, error_policy, ctx)
        .for_each(|_| async {});
    futures::join!(configs, gateways, backups);
}

struct Health {
    leader: AtomicBool,
    ready: AtomicBool,
}

async fn serve(addr: SocketAddr, health: Arc<Health>, ctx: Arc<Ctx>) -> std::io::Result<()> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let h = health.clone();
    let ready = move || {
        let h = h.clone();
        async move {
            if h.ready.load(Ordering::Relaxed) {
                (StatusCode::OK, "ready\n")
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
            }
        }
    };
    let metrics = move || {
        let (h, c) = (health.clone(), ctx.clone());
        async move { c.metrics.render(h.leader.load(Ordering::Relaxed)) }
    };
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

/// Run until SIGTERM/SIGINT (0), or until leadership is lost (1: the pod restarts as a
/// standby, so that a replica that stopped being the leader never writes again).
pub async fn run(a: ControllerArgs) -> Result<u8, crate::cli::CliError> {
    use crate::cli::{CliError, exit};
    let client = kube::Client::try_default()
        .await
        .map_err(|e| CliError::new(exit::UNREACHABLE, format!("Kubernetes client: {e}")))?;
    std::fs::create_dir_all(&a.state_dir)
        .map_err(|e| CliError::new(exit::IO, format!("{}: {e}", a.state_dir.display())))?;
    let id = identity(&a);
    let ctx = context(client.clone(), a.state_dir.clone(), &id);
    let health = Arc::new(Health {
        leader: AtomicBool::new(!a.leader_elect),
        ready: AtomicBool::new(false),
    });
    let listener = a.metrics_listen;
    let server = tokio::spawn(serve(listener, health.clone(), ctx.clone()));
    // Ready once the API server answers for our kinds (a standby is ready too).
    api::<GatewayConfig>(&client, &a.namespace)
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .map_err(|e| CliError::new(exit::UNREACHABLE, format!("listing GatewayConfigs: {e}")))?;
    health.ready.store(true, Ordering::Relaxed);
    let mut lost: Option<tokio::sync::watch::Receiver<bool>> = None;
    if a.leader_elect {
        let lease_ns = a
            .lease_namespace
            .clone()
            .or_else(|| a.namespace.clone())
            .unwrap_or_else(|| "default".into());
        let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &a.lease_name)
            .with_namespace(lease_ns)
            .with_identity(id.clone())
            .with_duration(a.lease_duration.max(2))
            .with_grace(1)
            .build()
            .await
            .map_err(|e| CliError::new(exit::UNREACHABLE, format!("lease: {e}")))?;
        let (mut rx, _task) = manager.watch().await;
        tracing::info!("{id}: waiting for the lease {}", a.lease_name);
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return Err(CliError::new(exit::FAILED, "the lease manager stopped"));
            }
        }
        tracing::info!("{id}: leader");
        health.leader.store(true, Ordering::Relaxed);
        lost = Some(rx);
    }
    let work = controllers(ctx, a.namespace.clone());
    let lost = async move {
        match lost {
            Some(mut rx) => {
                while *rx.borrow_and_update() {
                    if rx.changed().await.is_err() {
                        break;
                    }
                }
            }
            None => futures::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = work => Ok(exit::OK),
        _ = lost => {
            tracing::error!("lost the lease: exiting so that only the leader writes");
            Ok(exit::FAILED)
        }
        r = server => Err(CliError::new(exit::IO, format!("listener {listener}: {r:?}"))),
    }
}

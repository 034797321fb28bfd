//! The daemon's environments and source-less gateways as import targets, each resolved per
//! request from what its worker loaded last (client and keys) or its connection, its mode
//! (daemon.yaml's override, else its file's) and its source (which decides the reconcile lock
//! a job holds besides the environment's one-writer guard); and the roles the routes need.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{
    ApiError, CommitRoute, JobsApi, Resolved, Route, TargetEntry, Writer, environment_route,
};
use crate::daemon::config::{DaemonConfig, SourceSpec};
use crate::daemon::source::Source;
use crate::daemon::worker::Trigger;
use crate::engine::envlock;
use crate::engine::import_commit::{CommitTarget, Validate};
use crate::engine::jobs::{JobStore, JobTarget};
use crate::http::AppState;
use crate::http::api::{Role, auth};

/// The import API over the daemon's environments and `api.gateways`.
pub fn build(cfg: &DaemonConfig, app: &Arc<AppState>, store: Arc<JobStore>) -> JobsApi {
    let mut targets = Vec::new();
    for (spec, handle) in cfg.environments.iter().zip(&app.envs) {
        let (shared, spec) = (handle.shared.clone(), spec.clone());
        let commit = commit_route(handle);
        targets.push(TargetEntry {
            target: JobTarget::Environment(spec.name.clone()),
            resolve: Box::new(move || {
                let live = shared
                    .live
                    .lock()
                    .expect("live lock")
                    .as_ref()
                    .map(|l| (l.client.clone(), l.keys.clone()));
                let Some((client, keys)) = live else {
                    return Err(ApiError::Unavailable(format!(
                        "environment {} has not loaded its desired state yet",
                        spec.name
                    )));
                };
                let status = shared.status();
                let mode = spec.mode.or(status.mode).unwrap_or_default();
                let gateway = status.gateway.unwrap_or_else(|| client.url().to_string());
                let key = match &spec.source {
                    SourceSpec::Git(g) => envlock::Key::new(
                        format!("git {}@{}:{}", g.remote.url, g.branch, g.path),
                        &gateway,
                    ),
                    SourceSpec::Dir(d) => envlock::Key::for_dir(d, &gateway),
                };
                Ok(Resolved {
                    client,
                    keys,
                    route: environment_route(&spec.name, mode, commit.clone()),
                    lock: Some(key),
                    writer: Some(Writer::Env(shared.clone())),
                })
            }),
        });
    }
    for (i, g) in app.gateways.iter().enumerate() {
        let (app, name) = (app.clone(), g.name.clone());
        targets.push(TargetEntry {
            target: JobTarget::Gateway(name.clone()),
            resolve: Box::new(move || match &app.gateways[i].connection {
                Ok((client, keys)) => Ok(Resolved {
                    client: client.clone(),
                    keys: keys.clone(),
                    route: Route::Direct,
                    lock: None,
                    writer: Some(Writer::Gateway(app.clone(), i)),
                }),
                Err(why) => Err(ApiError::Unavailable(why.clone())),
            }),
        });
    }
    let mut api = JobsApi::new(store, targets);
    api.max_age = cfg.api.job_max_age;
    api.compat = app.api.compat_environment.as_ref().map(|n| {
        if cfg.environments.iter().any(|e| &e.name == n) {
            JobTarget::Environment(n.clone())
        } else {
            JobTarget::Gateway(n.clone())
        }
    });
    api
}

/// The commit route of an environment with a Git source (None for a directory): its
/// repository, branch and path, the worker's own loader as the check, its trigger to apply.
fn commit_route(handle: &crate::daemon::handle::EnvHandle) -> Option<CommitRoute> {
    let Source::Git(src) = &handle.source else {
        return None;
    };
    let target = CommitTarget {
        remote: src.spec.remote.clone(),
        branch: src.spec.branch.clone(),
        path: src.spec.path.clone(),
        cache_dir: src.cache_dir.clone(),
        publish: Default::default(),
    };
    let (check, settings) = (src.clone(), handle.settings.clone());
    let validate: Arc<Validate> = Arc::new(move |dir: &Path, root: &Path| {
        check
            .trust
            .open(dir, root, &settings)
            .map(|_| ())
            .map_err(|e| {
                let shown = format!("{}/", root.display());
                e.to_string().replace(&shown, "")
            })
    });
    let trigger = handle.trigger.clone();
    Some(CommitRoute {
        target,
        validate,
        reconcile: Arc::new(move || trigger.send(Trigger::Reconcile).is_ok()),
    })
}

/// The role a route of this group needs: reading jobs is a viewer's, cleanup an admin's,
/// everything else (preview, import, bulk, ContextForge's export and import) an operator's.
pub fn role(method: &Method, path: &str) -> Role {
    let path = path.strip_prefix("/v1").unwrap_or(path);
    if path.ends_with("/cleanup") {
        Role::Admin
    } else if method == Method::GET
        && (path.starts_with("/api/v1/jobs") || path.contains("/import/status"))
    {
        Role::Viewer
    } else {
        Role::Operator
    }
}

/// Authenticate and authorise every request of this group (401, 403).
pub async fn require(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let needed = role(&parts.method, parts.uri.path());
    if let Err(e) = auth::caller(&s, &parts).and_then(|c| auth::allow(&c, needed)) {
        return e.into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_by_route() {
        for (m, p, want) in [
            (Method::GET, "/api/v1/jobs", Role::Viewer),
            (Method::GET, "/api/v1/jobs/x/events", Role::Viewer),
            (Method::POST, "/api/v1/jobs/cleanup", Role::Admin),
            (Method::POST, "/import/cleanup", Role::Admin),
            (Method::POST, "/v1/admin/import/cleanup", Role::Admin),
            (
                Method::POST,
                "/api/v1/environments/a/import",
                Role::Operator,
            ),
            (
                Method::POST,
                "/api/v1/environments/a/import/preview",
                Role::Operator,
            ),
            (Method::GET, "/export", Role::Operator),
            (Method::GET, "/v1/import/status/x", Role::Viewer),
            (Method::POST, "/import", Role::Operator),
        ] {
            assert_eq!(role(&m, p), want, "{m} {p}");
        }
    }
}

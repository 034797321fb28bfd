//! The web UI: server-rendered pages on the daemon's listener (no Node build, assets embedded).
//! A token logs in and gets a signed session cookie; every form post carries the session's
//! CSRF token; roles as for the API (viewer reads, operator acts). Pages call the engine the
//! CLI calls and never show a credential.

pub mod assets;
pub mod auth;
pub mod backups;
pub mod export;
pub mod import;
pub mod jobs;
pub mod layout;
pub mod login;
pub mod overview;
pub mod plan;
pub mod session;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};

use super::AppState;
use auth::Role;
use layout::Viewer;
use session::{Session, Sessions};

/// The UI's settings and state.
pub struct Ui {
    pub sessions: Sessions,
    /// Session cookies get `Secure` (only when served over TLS).
    pub secure_cookies: bool,
    /// The import API the wizard starts its jobs with (set once the API is built).
    pub jobs: std::sync::OnceLock<Arc<crate::http::jobs::JobsApi>>,
    /// The wizard's uploaded documents.
    pub uploads: import::Uploads,
    /// "Export All Configuration" files waiting for their one download.
    pub exports: export::Kept,
    /// Failed logins per client address ([`login::FAILURES_PER_MINUTE`]).
    pub login_failures: std::sync::Mutex<crate::http::hooks::Failures>,
}

/// The UI's routes (under `/ui`, and `/` leads there).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { layout::see_other("/ui", None) }))
        .route("/ui", get(overview::page))
        .route("/ui/login", get(login::form).post(login::submit))
        .route("/ui/logout", post(login::logout))
        .route("/ui/assets/{file}", get(assets::serve))
        .route("/ui/env/{name}/reconcile", post(overview::reconcile))
        .route("/ui/env/{name}/plan", get(plan::page))
        .route("/ui/env/{name}/apply", post(plan::apply))
        .merge(export::routes())
        .merge(import::routes())
        .merge(jobs::routes())
        .merge(backups::routes())
}

/// A request's checked session with its CSRF token.
pub struct Authed {
    pub session: Session,
    pub csrf: String,
}

impl Authed {
    pub fn viewer(&self) -> Viewer<'_> {
        Viewer {
            session: &self.session,
            csrf: &self.csrf,
        }
    }
}

fn now() -> u64 {
    crate::core::clock::now_unix()
}

/// The session of a page request; else the login page (303), or 404 when the UI is off.
pub fn session<'a>(
    s: &'a AppState,
    headers: &HeaderMap,
) -> Result<(Authed, &'a Ui), Box<Response>> {
    let Some(ui) = s.ui.as_ref() else {
        return Err(Box::new(layout::message(
            StatusCode::NOT_FOUND,
            "The web UI is off",
            None,
            "daemon.yaml has no ui: section",
        )));
    };
    let checked = session::from_headers(headers).and_then(|v| ui.sessions.check(&v, now()));
    match checked {
        Some(session) => {
            let csrf = ui.sessions.csrf(&session);
            Ok((Authed { session, csrf }, ui))
        }
        None => Err(Box::new(layout::see_other("/ui/login", None))),
    }
}

/// The session of a form post that needs `role`: its CSRF token checked (403 otherwise).
pub fn form_session<'a>(
    s: &'a AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    role: Role,
) -> Result<(Authed, &'a Ui), Box<Response>> {
    let (a, ui) = session(s, headers)?;
    let token = form.get("csrf").map(String::as_str).unwrap_or("");
    if !ui.sessions.csrf_ok(&a.session, token) {
        return Err(Box::new(layout::message(
            StatusCode::FORBIDDEN,
            "Form refused",
            Some(&a.viewer()),
            "The form's CSRF token does not belong to this session: reload the page and try again.",
        )));
    }
    if !a.session.caller.role.allows(role) {
        return Err(Box::new(forbidden(&a, role)));
    }
    Ok((a, ui))
}

/// 403: the caller's role may not.
pub fn forbidden(a: &Authed, needed: Role) -> Response {
    layout::message(
        StatusCode::FORBIDDEN,
        "Not allowed",
        Some(&a.viewer()),
        &format!(
            "This needs the {} role; {} has {}.",
            needed.label(),
            a.session.caller.name,
            a.session.caller.role.label()
        ),
    )
}

/// The environment named in a path, or a 404 page.
pub fn env<'a>(
    s: &'a AppState,
    name: &str,
    a: &Authed,
) -> Result<&'a crate::daemon::EnvHandle, Box<Response>> {
    s.envs
        .iter()
        .find(|e| e.shared.name == name)
        .ok_or_else(|| {
            Box::new(layout::message(
                StatusCode::NOT_FOUND,
                "No such environment",
                Some(&a.viewer()),
                &format!(
                    "daemon.yaml has no environment {}",
                    crate::core::quote::quote(name)
                ),
            ))
        })
}

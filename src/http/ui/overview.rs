//! `GET /ui`: every environment in one row (mode, sync state, drift, revision, last run,
//! next run, last backup) with "reconcile now"; `POST /ui/env/{name}/reconcile`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};

use super::auth::Role;
use super::layout::{self, csrf_field};
use super::{AppState, Authed};
use crate::daemon::status::{EnvStatus, Health};
use crate::daemon::worker::Trigger;

fn health(h: Health) -> (&'static str, &'static str) {
    match h {
        Health::Pending => ("pending", "pending"),
        Health::Synced => ("synced", "synced"),
        Health::OutOfSync => ("out_of_sync", "out of sync"),
        Health::Degraded => ("degraded", "degraded"),
        Health::Failed => ("failed", "failed"),
    }
}

fn short(rev: &str) -> &str {
    &rev[..rev.len().min(12)]
}

fn row(e: &EnvStatus, a: &Authed) -> Markup {
    let (class, label) = health(e.health);
    let mode = e.mode.map(|m| format!("{m:?}").to_lowercase());
    html! {
        tr data-env=(e.name) {
            td data-label="Environment" {
                a href={ "/ui/env/" (e.name) "/plan" } { (e.name) }
                " " a class="muted" href={ "/ui/env/" (e.name) "/export" } { "export" }
            }
            td data-label="Mode" { (mode.as_deref().unwrap_or("—")) }
            td data-label="Sync" { span class={ "badge h-" (class) } { (label) } }
            td data-label="Drift" class="drift" { (e.drift) }
            td data-label="Revision" class="mono" {
                (e.revision.as_deref().map(short).unwrap_or("—"))
            }
            td data-label="Last run" {
                @match &e.last_result {
                    Some(r) => { (r.outcome.label()) " " span class="muted" { (r.at) } }
                    None => "—",
                }
            }
            td data-label="Next run" { (e.next_run.as_deref().unwrap_or("—")) }
            td data-label="Last backup" {
                @match e.backup.as_ref().and_then(|b| b.last.as_ref()) {
                    Some(b) => { a href="/ui/backups" { (b.outcome.label()) } " " span class="muted" { (b.at) } }
                    None => "—",
                }
            }
            td data-label="" {
                @if a.session.caller.role.allows(Role::Operator) {
                    form class="inline" method="post" action={ "/ui/env/" (e.name) "/reconcile" } {
                        (csrf_field(&a.csrf))
                        button type="submit" { "Reconcile now" }
                    }
                }
            }
        }
    }
}

/// `GET /ui`.
pub async fn page(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (a, _) = match super::session(&s, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let envs: Vec<EnvStatus> = s.envs.iter().map(|e| e.shared.status()).collect();
    let body = html! {
        h1 { "Environments" }
        @if let Some(name) = q.get("reconciling") {
            p class="flash" role="status" { "Reconcile of " (name) " asked for." }
        }
        div class="table-wrap" {
            table class="rows" id="environments" {
                thead { tr {
                    th scope="col" { "Environment" } th scope="col" { "Mode" }
                    th scope="col" { "Sync" } th scope="col" { "Drift" }
                    th scope="col" { "Revision" } th scope="col" { "Last run" }
                    th scope="col" { "Next run" } th scope="col" { "Last backup" }
                    th scope="col" { span class="skip" { "Actions" } }
                } }
                tbody { @for e in &envs { (row(e, &a)) } }
            }
        }
    };
    layout::page(StatusCode::OK, "Environments", Some(&a.viewer()), body)
}

/// `POST /ui/env/{name}/reconcile` (operator): the worker fetches and checks for drift now.
pub async fn reconcile(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (a, _) = match super::form_session(&s, &headers, &form, Role::Operator) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let e = match super::env(&s, &name, &a) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    if e.trigger.send(Trigger::Reconcile).is_err() {
        return layout::message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not reconciled",
            Some(&a.viewer()),
            "The environment's worker has stopped.",
        );
    }
    layout::see_other(&format!("/ui?reconciling={name}"), None)
}

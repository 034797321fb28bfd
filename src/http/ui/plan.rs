//! `GET /ui/env/{name}/plan`: the plan and drift view (summary bar, what prune would delete
//! and whether the guard refuses it, entities by kind in dependency order, each expandable to
//! its field changes); `POST /ui/env/{name}/apply` applies exactly the plan shown (its digests).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};

use super::auth::Role;
use super::layout::{self, csrf_field};
use super::{AppState, Authed};
use crate::core::diff::FieldChange;
use crate::core::error::Classify;
use crate::core::kind::Kind;
use crate::core::verb::Verb;
use crate::engine::apply::Outcome;
use crate::engine::environment::Mode;
use crate::engine::reconcile::{PlanStep, ReconcileError};

/// How long an apply waits for the environment's running reconcile.
const WRITER_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

fn verb_class(v: Verb) -> &'static str {
    match v {
        Verb::Create => "v-create",
        Verb::Update => "v-update",
        Verb::Delete => "v-delete",
        _ => "muted",
    }
}

fn change(c: &FieldChange) -> Markup {
    match c {
        FieldChange::Value { field, from, to } => html! {
            tr { td class="mono" { (field) } td class="mono" { (from.to_string()) }
                 td class="mono" { (to.to_string()) } }
        },
        FieldChange::List {
            field,
            added,
            removed,
        } => html! {
            tr { td class="mono" { (field) }
                 td class="mono" { @if !removed.is_empty() { "−[" (removed.join(", ")) "]" } }
                 td class="mono" { @if !added.is_empty() { "+[" (added.join(", ")) "]" } } }
        },
        FieldChange::Sensitive { field } => html! {
            tr class="sensitive" { td class="mono" { (field) }
                 td colspan="2" { "credential changed (value not shown)" } }
        },
    }
}

fn step(s: &PlanStep) -> Markup {
    let name = if s.target != s.key {
        format!("{} → {}", s.key, s.target)
    } else {
        s.key.clone()
    };
    let label = match s.verb {
        Verb::Update => format!(
            "update ({} field{})",
            s.changes.len(),
            plural(s.changes.len())
        ),
        v => format!("{v:?}").to_lowercase(),
    };
    html! {
        details class="step" data-kind=(s.kind.singular()) data-key=(s.key) {
            summary {
                span class=(verb_class(s.verb)) { (s.verb.mark()) " " (label) } " "
                span class="mono" { (name) }
            }
            div {
                @if let Some(r) = &s.reason { p { "Skipped: " (r) } }
                @if s.changes.is_empty() {
                    p class="muted" { @match s.verb {
                        Verb::Create => "Created with the desired fields.",
                        Verb::Delete => "Deleted by prune: owned and no longer declared.",
                        _ => "No field changes.",
                    } }
                    @if s.verb == Verb::Update || s.verb == Verb::Unchanged {
                        p class="muted" { "Credentials: unchanged." }
                    }
                } @else {
                    div class="table-wrap" { table class="diff" {
                        thead { tr { th scope="col" { "Field" } th scope="col" { "Live" }
                                     th scope="col" { "Desired" } } }
                        tbody { @for c in &s.changes { (change(c)) } }
                    } }
                    @if !s.changes.iter().any(|c| matches!(c, FieldChange::Sensitive { .. })) {
                        p class="muted" { "Credentials: unchanged." }
                    }
                }
            }
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn env_name(name: &str) -> Markup {
    html! { span class="mono" { (name) } }
}

/// The summary bar of a plan: creates, updates, deletes, unchanged and skipped.
pub fn summary_bar(steps: &[PlanStep]) -> Markup {
    let count = |v| steps.iter().filter(|s: &&PlanStep| s.verb == v).count();
    let (c, u, d) = (
        count(Verb::Create),
        count(Verb::Update),
        count(Verb::Delete),
    );
    html! {
        p class="summary" id="summary" aria-label="Plan summary" {
            span class="v-create" { "+" (c) " create" }
            span class="v-update" { "~" (u) " update" }
            span class="v-delete" { "-" (d) " delete" }
            span class="muted" { (count(Verb::Unchanged)) " unchanged, " (count(Verb::Skip)) " skipped" }
        }
    }
}

/// A plan's steps by kind in dependency order, each expandable to its field changes
/// (credentials only as changed or unchanged).
pub fn entities(steps: &[PlanStep]) -> Markup {
    html! {
        @for k in Kind::ALL {
            @let of: Vec<&PlanStep> = steps.iter().filter(|s| s.kind == k).collect();
            @if !of.is_empty() {
                section aria-label=(k.plural()) {
                    h3 { (k.plural()) " " span class="muted" { "(" (of.len()) ")" } }
                    @for s in of { (step(s)) }
                }
            }
        }
    }
}

/// The page of a plan: steps in the engine's order, grouped by kind in dependency order.
fn planned(
    name: &str,
    steps: &[PlanStep],
    digests: (String, String),
    mode: Mode,
    a: &Authed,
) -> Markup {
    let count = |v| steps.iter().filter(|s| s.verb == v).count();
    let (c, u, d) = (
        count(Verb::Create),
        count(Verb::Update),
        count(Verb::Delete),
    );
    let deletes: Vec<&PlanStep> = steps.iter().filter(|s| s.verb == Verb::Delete).collect();
    let changes = c + u + d;
    html! {
        h1 { "Plan for " (env_name(name)) }
        (summary_bar(steps))
        h2 { "Prune" }
        @if deletes.is_empty() {
            p class="muted" id="prune" { "Prune deletes nothing." }
        } @else {
            div id="prune" {
                p { "Prune would delete " (deletes.len()) " entit" (if deletes.len() == 1 { "y" } else { "ies" })
                    " first; the mass-delete guard allows it." }
                ul { @for s in &deletes {
                    li class="mono" { (s.kind.singular()) " " (s.key) }
                } }
            }
        }
        h2 { "Entities" }
        (entities(steps))
        @if steps.is_empty() { p class="muted" { "The environment declares nothing." } }
        h2 { "Apply" }
        @if changes == 0 {
            p id="apply-state" { "The gateway holds the desired state: nothing to apply." }
        } @else if mode == Mode::Observe {
            p id="apply-state" { "Observe mode: the daemon reports this drift and never writes." }
        } @else if !a.session.caller.role.allows(Role::Operator) {
            p id="apply-state" { "Applying needs the operator role." }
        } @else {
            form method="post" action={ "/ui/env/" (name) "/apply" } id="apply" {
                (csrf_field(&a.csrf))
                input type="hidden" name="desired" value=(digests.0);
                input type="hidden" name="live" value=(digests.1);
                button type="submit" class="primary"
                    data-confirm={ "Apply " (changes) " change" (plural(changes)) " to " (name) "?" } {
                    "Apply this plan"
                }
                p class="muted" { "Applies exactly this plan: refused if the documents or the gateway changed since." }
            }
        }
    }
}

/// The page when planning failed (the mass-delete guard, an invalid source, the gateway).
pub fn failed(name: &str, e: &ReconcileError) -> Markup {
    html! {
        h1 { "Plan for " (env_name(name)) }
        @if let ReconcileError::MassDelete(m) = e {
            div class="guard" id="prune" role="alert" {
                p { strong { "The mass-delete guard refuses this plan." } }
                p { "Prune would delete " (m.deletes) " of " (m.owned) " owned entities, over the limit of "
                    (m.limit) "%; first: " span class="mono" { (m.examples) } }
                p class="muted" { "Nothing is applied until the documents or the limit change." }
            }
        } @else {
            p class="flash error" role="alert" { (crate::core::quote::clean_lines(&e.to_string())) }
        }
    }
}

/// `GET /ui/env/{name}/plan`.
pub async fn page(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (a, _) = match super::session(&s, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let e = match super::env(&s, &name, &a) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let t = match e.load().await.map(|l| l.target) {
        Ok(t) => t,
        Err(why) => {
            return layout::message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Cannot plan",
                Some(&a.viewer()),
                &crate::core::quote::clean_lines(&why.to_string()),
            );
        }
    };
    let body = match t.plan().await {
        Ok(p) => planned(&name, &p.steps(), t.digests(&p), t.env.config.mode, &a),
        Err(e) => failed(&name, &e),
    };
    layout::page(
        StatusCode::OK,
        &format!("Plan {name}"),
        Some(&a.viewer()),
        body,
    )
}

/// `POST /ui/env/{name}/apply` (operator): apply the plan whose digests the form carries.
pub async fn apply(
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
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let t = match e.load().await.map(|l| l.target) {
        Ok(t) => t,
        Err(why) => {
            return layout::message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Not applied",
                Some(&a.viewer()),
                &crate::core::quote::clean_lines(&why.to_string()),
            );
        }
    };
    // One writer per environment (the worker's cycle, an API apply or import), then the lock.
    let result = match tokio::time::timeout(WRITER_WAIT, e.shared.writer.lock()).await {
        Err(_) => Err(None),
        Ok(_writer) => match t.lock(&|_| {}).await {
            Ok(_lock) => t
                .apply_if_digests(field("desired"), field("live"), "the plan shown", None)
                .await
                .map(|(_, r)| r)
                .map_err(Some),
            Err(e) => Err(Some(e)),
        },
    };
    let _ = e.trigger.send(crate::daemon::worker::Trigger::Reconcile);
    let v = a.viewer();
    match result {
        Ok(r) => {
            let n = |f: fn(&Outcome) -> bool| r.results.iter().filter(|x| f(&x.outcome)).count();
            let failed = n(|o| matches!(o, Outcome::Failed { .. }));
            crate::daemon::log_line(
                "ui",
                &format!("{} applied the plan of {name}", a.session.caller.name),
            );
            layout::page(
                if failed > 0 {
                    StatusCode::BAD_GATEWAY
                } else {
                    StatusCode::OK
                },
                "Applied",
                Some(&v),
                html! {
                    h1 { "Applied to " (env_name(&name)) }
                    p class="summary" id="applied" {
                        span class="v-create" { (n(|o| matches!(o, Outcome::Created))) " created" }
                        span class="v-update" { (n(|o| matches!(o, Outcome::Updated { .. }))) " updated" }
                        span class="v-delete" { (n(|o| matches!(o, Outcome::Deleted))) " deleted" }
                        span { (failed) " failed" }
                    }
                    @for x in r.results.iter().filter(|x| matches!(x.outcome, Outcome::Failed { .. })) {
                        @if let Outcome::Failed { error, .. } = &x.outcome {
                            p class="flash error" { (x.kind.singular()) " " (x.name) ": "
                                (crate::core::quote::clean_lines(error)) }
                        }
                    }
                    p { a href={ "/ui/env/" (name) "/plan" } { "Plan again" } }
                },
            )
        }
        Err(None) => layout::message(
            StatusCode::CONFLICT,
            "Not applied",
            Some(&v),
            "The environment's reconcile is still running: try again in a moment.",
        ),
        Err(Some(e)) => {
            let code = match e.class() {
                crate::core::error::ErrorClass::Stale => StatusCode::CONFLICT,
                crate::core::error::ErrorClass::Observe => StatusCode::CONFLICT,
                crate::core::error::ErrorClass::Locked => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let text = match &e {
                ReconcileError::Stale { why, .. } => format!(
                    "Not applied: the plan is stale ({why}). Look at the new plan and apply again."
                ),
                other => format!(
                    "Not applied: {}",
                    crate::core::quote::clean_lines(&other.to_string())
                ),
            };
            layout::page(
                code,
                "Not applied",
                Some(&v),
                html! {
                    h1 { "Not applied" }
                    p class="flash error" role="alert" id="apply-error" { (text) }
                    p { a href={ "/ui/env/" (name) "/plan" } { "See the current plan" } }
                },
            )
        }
    }
}

//! The export page, `/ui/env/{name}/export`: the live entities by type (one tab each) with
//! checkboxes and a tag filter. "Export Selected" leads to a [`preview`] of the selection and
//! the dependencies it would add; its "Download" posts the exact selection back here and
//! gets `export-YYYYMMDD-HHMMSS.json` from the API's own export (the engine's `export`).
//! "Export All Configuration" (after a confirmation) exports everything and shows what the
//! file holds, then hands over that very file ([`all`]).

pub mod all;
pub mod form;
pub mod preview;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::{Path, Query, RawForm, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;

use super::auth::Role;
use super::layout::{self, csrf_field};
use super::{AppState, Authed};
use crate::core::document::{Entities, Format};
use crate::core::kind::Kind;
use crate::core::select::picked::picked_value;
use crate::core::select::{Filters, Key, Selection, parse_picked};
use crate::engine::export::select_live;
use crate::http::api::ApiError;
use crate::http::api::export::{attachment, env_source, export_file};
pub use all::Kept;
use form::Posted;
pub(crate) use form::serde_urlencoded_pairs;

/// The tabs, in the order the issue names them.
pub const TABS: [Kind; 6] = [
    Kind::Tool,
    Kind::Gateway,
    Kind::Server,
    Kind::Prompt,
    Kind::Resource,
    Kind::Root,
];

/// The export pages' routes.
pub fn routes() -> axum::Router<Arc<AppState>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/ui/env/{name}/export", get(page).post(download))
        .route("/ui/env/{name}/export/preview", post(preview::page))
        .route("/ui/env/{name}/export/all", post(all::export_all))
        .route("/ui/env/{name}/export/file/{id}", get(all::file))
}

fn base(name: &str) -> String {
    format!("/ui/env/{name}/export")
}

/// The page's listing (and "Export All"): active entities, with a tag filter.
fn listing(tag: Option<&str>) -> Result<Selection, ApiError> {
    Filters {
        tags: tag,
        ..Filters::default()
    }
    .selection()
    .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.to_string()))
}

/// "N total items across M categories (a tools, b gateways, …)": M counts the types that
/// hold anything.
pub fn summary(e: &Entities) -> (String, String) {
    let kinds = TABS.iter().filter(|k| e.count(**k) > 0).count();
    let counts = TABS
        .iter()
        .map(|k| format!("{} {}", e.count(*k), k.plural()))
        .collect::<Vec<_>>()
        .join(", ");
    (
        format!("{} total items across {kinds} categories", e.total()),
        counts,
    )
}

/// An error page for a failed export step.
fn failed(a: &Authed, title: &str, e: &ApiError) -> Response {
    let code = if e.status.is_server_error() {
        StatusCode::BAD_GATEWAY
    } else {
        e.status
    };
    layout::message(code, title, Some(&a.viewer()), &e.message)
}

/// `GET /ui/env/{name}/export[?tag=T]`.
pub async fn page(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (a, _) = match super::session(&s, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let tag = q.get("tag").map(|t| t.trim()).filter(|t| !t.is_empty());
    let listed = async {
        let src = env_source(&s, &name)?;
        select_live(&src.client, &listing(tag)?)
            .await
            .map_err(|e| ApiError::classified(&e, str::to_string))
    };
    let doc = match listed.await {
        Ok(x) => x.document,
        Err(e) => return failed(&a, "Cannot list the live entities", &e),
    };
    let e = &doc.entities;
    let (total, counts) = summary(e);
    let confirm = format!("Export all configuration: {total} ({counts})?");
    let b = base(&name);
    let body = html! {
        h1 { "Export from " span class="mono" { (name) } }
        form method="get" action=(b) class="filter" {
            label for="tag" { "Filter by tag" }
            input type="text" id="tag" name="tag" value=(tag.unwrap_or(""));
            " " button type="submit" { "Filter" }
        }
        nav class="tabs" aria-label="Entity types" {
            @for k in TABS { a href={ "#tab-" (k.plural()) } { (k.plural()) " (" (e.count(k)) ")" } " " }
        }
        form method="post" action={ (b) "/preview" } id="export" {
            (csrf_field(&a.csrf))
            @if let Some(t) = tag { input type="hidden" name="tag" value=(t); }
            @for k in TABS {
                section id={ "tab-" (k.plural()) } aria-label=(k.plural()) {
                    h2 { (k.plural()) }
                    @let keys = e.keys(k);
                    @if keys.is_empty() { p class="muted" { "None." } }
                    ul class="checks" {
                        @for key in keys {
                            li { label class="check" {
                                input type="checkbox" name="entity" value=(picked_value(k, key));
                                " " span class="mono" { (key) }
                            } }
                        }
                    }
                }
            }
            @if a.session.caller.role.allows(Role::Operator) {
                button type="submit" class="primary" id="export-selected" { "Export Selected" }
                " "
                button type="submit" formaction={ (b) "/all" } id="export-all" data-confirm=(confirm) { "Export All Configuration" }
                p class="muted" id="export-counts" { "All: " (total) "." }
            } @else {
                p { "Exporting needs the operator role." }
            }
        }
    };
    layout::page(
        StatusCode::OK,
        &format!("Export {name}"),
        Some(&a.viewer()),
        body,
    )
}

/// The checked session of an export form (operator) and the form.
fn posted(
    s: &AppState,
    headers: &HeaderMap,
    raw: &[u8],
) -> Result<(Authed, Posted), Box<Response>> {
    let form = Posted::parse(raw);
    let (a, _) = super::form_session(s, headers, &form.fields, Role::Operator)?;
    Ok((a, form))
}

/// The checked session of an export form (operator), the form and the entities it picked; a
/// page saying why not.
fn posted_picks(
    s: &AppState,
    headers: &HeaderMap,
    raw: &[u8],
) -> Result<(Authed, Posted, BTreeSet<Key>), Box<Response>> {
    let (a, form) = posted(s, headers, raw)?;
    let keys = picked(&a, &form)?;
    Ok((a, form, keys))
}

/// The entities a form picked (`entity=type:key`, exact keys); a page saying why not.
fn picked(a: &Authed, form: &Posted) -> Result<BTreeSet<Key>, Box<Response>> {
    parse_picked(form.all("entity")).map_err(|e| {
        Box::new(layout::message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Nothing to export",
            Some(&a.viewer()),
            &format!("{e}: select at least one entity, or export all configuration."),
        ))
    })
}

/// `POST /ui/env/{name}/export` (operator): the download of exactly the entities posted
/// (`entity=type:key`), with their dependencies when `dependencies` is sent.
pub async fn download(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawForm(raw): RawForm,
) -> Response {
    let (a, form, keys) = match posted_picks(&s, &headers, &raw) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let selection = Selection::picked(keys, form.has("dependencies"));
    let src = match env_source(&s, &name) {
        Ok(src) => src,
        Err(e) => return failed(&a, "Cannot export", &e),
    };
    match export_file(src, selection, Format::Json).await {
        Ok(f) => attachment(f),
        Err(e) => failed(&a, "Cannot export", &e),
    }
}

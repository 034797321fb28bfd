//! The import wizard, `/ui/env/{name}/import`: upload (drop, pick or paste; a plain
//! multipart form post without JavaScript), then the preview of the API's own preview
//! (`http::jobs::preview_value`: the engine's validation and staging, no write), then the
//! API's own import job (`http::jobs::submit_value`) and its progress and summary
//! ([`job`]). The document stays on the server between the steps, under a random id bound
//! to the session ([`upload`]).

pub mod job;
pub mod render;
pub mod upload;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::auth::Role;
use super::layout::{self, csrf_field};
use super::{AppState, Authed, Ui};
use crate::core::document;
use crate::core::policy::Strategy;
use crate::engine::jobs::JobTarget;
use crate::http::jobs::{self, ApiError, JobsApi};
pub use upload::Uploads;

/// The wizard's routes.
pub fn routes() -> axum::Router<Arc<AppState>> {
    use axum::routing::get;
    let big = axum::extract::DefaultBodyLimit::max(MAX_UPLOAD);
    axum::Router::new()
        .route("/ui/import", get(choose))
        .route("/ui/env/{name}/import", get(form).post(submit).layer(big))
        .route(
            "/ui/env/{name}/import/{upload}",
            get(preview).post(start).layer(big),
        )
        .route("/ui/env/{name}/import/job/{id}", get(job::page_of))
        .route("/ui/env/{name}/import/job/{id}/events", get(job::events))
        .route("/ui/env/{name}/import/job/{id}/report", get(job::report))
}

/// The largest document the wizard takes.
pub const MAX_UPLOAD: usize = 32 * 1024 * 1024;

/// The import pages' script (after the page's own).
pub fn script() -> Markup {
    html! { script src=(super::assets::import_js_url()) defer {} }
}

fn page(a: &Authed, code: StatusCode, title: &str, body: Markup) -> Response {
    layout::page(code, title, Some(&a.viewer()), html! { (body) (script()) })
}

pub(crate) fn jobs_api<'a>(ui: &'a Ui, a: &Authed) -> Result<&'a Arc<JobsApi>, Box<Response>> {
    ui.jobs.get().ok_or_else(|| {
        Box::new(layout::message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Import is not available",
            Some(&a.viewer()),
            "The import API is not running in this process.",
        ))
    })
}

fn base(name: &str) -> String {
    format!("/ui/env/{name}/import")
}

/// `GET /ui/import`: the environments to import into.
pub async fn choose(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let (a, _) = match super::session(&s, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    page(
        &a,
        StatusCode::OK,
        "Import",
        html! {
            h1 { "Import into an environment" }
            ul id="import-targets" {
                @for e in &s.envs {
                    li { a href=(base(&e.shared.name)) { (e.shared.name) } }
                }
            }
        },
    )
}

/// `GET /ui/env/{name}/import`: the upload step.
pub async fn form(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (a, _) = match super::session(&s, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    if let Err(r) = super::env(&s, &name, &a) {
        return *r;
    }
    let operator = a.session.caller.role.allows(Role::Operator);
    page(
        &a,
        StatusCode::OK,
        "Import",
        html! {
            h1 { "Import into " span class="mono" { (name) } }
            p { "Step 1 of 3: the export document (JSON or YAML). Nothing is written before the last step." }
            @if !operator { p class="flash error" { "Importing needs the operator role." } }
            form method="post" action=(base(&name)) enctype="multipart/form-data" id="upload" {
                (csrf_field(&a.csrf))
                div id="dropzone" class="dropzone" {
                    label for="file" { "Drop an export file here, or choose one: " }
                    input type="file" id="file" name="file" accept=".json,.yaml,.yml,application/json";
                    p id="dropped" class="muted" aria-live="polite" {}
                }
                label for="document" { "Or paste the document" }
                textarea id="document" name="document" rows="8" spellcheck="false" {}
                p { button type="submit" id="preview" { "Preview" } }
            }
        },
    )
}

/// `POST /ui/env/{name}/import`: keep the document, then its preview (303).
pub async fn submit(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let sent = upload::read_form(ct, &body).unwrap_or_default();
    let (a, ui) = match super::form_session(&s, &headers, &sent.fields, Role::Operator) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    if let Err(r) = super::env(&s, &name, &a) {
        return *r;
    }
    let Some((file, text)) = sent.document else {
        return layout::message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "No document",
            Some(&a.viewer()),
            "Drop or choose an export file, or paste its text, then preview it.",
        );
    };
    let id = ui.uploads.put(&a.session.nonce, &file, text, super::now());
    layout::see_other(&format!("{}/{id}", base(&name)), None)
}

/// The strategy of a query or form (default `update`).
fn strategy(q: &HashMap<String, String>) -> Result<Strategy, String> {
    match q
        .get("strategy")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        None => Ok(Strategy::Update),
        Some(s) => s
            .parse()
            .map_err(|e: crate::core::policy::UnknownStrategy| e.to_string()),
    }
}

fn label(s: Strategy) -> String {
    json!(s).as_str().unwrap_or("update").to_string()
}

/// The upload `id` of this session, parsed (problems of a document that does not parse are
/// the preview's).
fn uploaded(
    ui: &Ui,
    a: &Authed,
    id: &str,
) -> Result<(upload::Upload, Result<Value, ApiError>), Box<Response>> {
    let u = ui
        .uploads
        .get(id, &a.session.nonce, super::now())
        .ok_or_else(|| {
            Box::new(layout::message(
                StatusCode::NOT_FOUND,
                "Upload not found",
                Some(&a.viewer()),
                "This upload has expired or belongs to another session: upload the document again.",
            ))
        })?;
    let parsed = document::parse_value(&u.text, None, &u.file).map_err(jobs::load_problem);
    Ok((u, parsed))
}

/// `GET /ui/env/{name}/import/{upload}[?strategy=S]`: the preview.
pub async fn preview(
    State(s): State<Arc<AppState>>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (a, ui) = match super::session(&s, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let checked = super::env(&s, &name, &a)
        .map(|_| ())
        .and_then(|_| jobs_api(ui, &a).cloned())
        .and_then(|api| uploaded(ui, &a, &id).map(|u| (api, u)));
    let (api, (u, parsed)) = match checked {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let strat = match strategy(&q) {
        Ok(st) => st,
        Err(e) => {
            return layout::message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Bad strategy",
                Some(&a.viewer()),
                &e,
            );
        }
    };
    let (v, doc) = match parsed {
        Ok(doc) => {
            let body = json!({"document": doc, "conflict_strategy": label(strat)});
            match jobs::preview_value(&api, JobTarget::Environment(name.clone()), body, "document")
                .await
            {
                Ok(v) => (v, Some(doc)),
                Err(e) => {
                    return layout::message(
                        e.status(),
                        "Cannot preview",
                        Some(&a.viewer()),
                        &e.to_string(),
                    );
                }
            }
        }
        Err(ApiError::Invalid { message, problems }) => (
            json!({"valid": false, "error": message, "problems": jobs::problems_json(&problems)}),
            None,
        ),
        Err(e) => {
            return layout::message(
                e.status(),
                "Cannot read the document",
                Some(&a.viewer()),
                &e.to_string(),
            );
        }
    };
    let valid = v["valid"] == true;
    let action = format!("{}/{id}", base(&name));
    let body = html! {
        h1 { "Import into " span class="mono" { (name) } }
        p { "Step 2 of 3: preview of " span class="mono" { (u.file) } ". Nothing has been written." }
        @if valid {
            @if let Some(doc) = &doc { (render::plan(&v, doc, &action, &label(strat), &a.csrf)) }
        } @else {
            (render::problems(&v, doc.as_ref()))
        }
        p { a href=(base(&name)) { "Upload another document" } }
    };
    let code = if valid {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    page(&a, code, "Import preview", body)
}

/// `POST /ui/env/{name}/import/{upload}` (operator): start the import job, then its page.
pub async fn start(
    State(s): State<Arc<AppState>>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pairs: Vec<(String, String)> = super::export::serde_urlencoded_pairs(&body);
    let form: HashMap<String, String> = pairs.iter().cloned().collect();
    let (a, ui) = match super::form_session(&s, &headers, &form, Role::Operator) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let checked = super::env(&s, &name, &a)
        .map(|_| ())
        .and_then(|_| jobs_api(ui, &a).cloned())
        .and_then(|api| uploaded(ui, &a, &id).map(|u| (api, u)));
    let (api, (_, parsed)) = match checked {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let refuse = |title: &str, why: &str| {
        layout::message(
            StatusCode::UNPROCESSABLE_ENTITY,
            title,
            Some(&a.viewer()),
            why,
        )
    };
    let strat = match strategy(&form) {
        Ok(st) => st,
        Err(e) => return refuse("Bad strategy", &e),
    };
    let Ok(doc) = parsed else {
        return refuse(
            "Cannot import",
            "The document has problems: see its preview.",
        );
    };
    let chosen: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "entity")
        .map(|(_, v)| v.as_str())
        .collect();
    if chosen.is_empty() {
        return refuse("Nothing selected", "Select at least one entity to import.");
    }
    let total = render::listed(&doc).len();
    let mut body = json!({"document": doc, "conflict_strategy": label(strat)});
    if chosen.len() < total {
        body["include"] = json!(chosen.join(","));
    }
    match jobs::submit_value(&api, JobTarget::Environment(name.clone()), body) {
        Ok(job) => layout::see_other(&format!("{}/job/{job}", base(&name)), None),
        Err(e) => layout::message(
            e.status(),
            "Import not started",
            Some(&a.viewer()),
            &e.to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strategy_of_a_query_is_read_and_written_back_by_its_name() {
        let q = |s: &str| HashMap::from([("strategy".to_string(), s.to_string())]);
        assert_eq!(strategy(&q("skip")), Ok(Strategy::Skip));
        assert_eq!(label(strategy(&q("rename")).unwrap()), "rename");
        assert_eq!(strategy(&HashMap::new()), Ok(Strategy::Update));
        assert!(strategy(&q("merge")).is_err());
    }
}

//! `GET /ui/env/{name}/export`: the live entities by type (one tab each) with checkboxes and a
//! tag filter; `POST /ui/env/{name}/export`: "Export Selected" (with or without the
//! dependencies the selection needs) or "Export All Configuration", downloaded as
//! `export-YYYYMMDD-HHMMSS.json` by the API's own export (the engine's `export`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, RawForm, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::AppState;
use super::auth::Role;
use super::layout::{self, csrf_field};
use crate::core::document::Format;
use crate::core::kind::Kind;
use crate::core::select::Filters;
use crate::engine::export::{ExportOptions, export};
use crate::http::api::ApiError;
use crate::http::api::export::{env_source, run};

/// The tabs, in the order the issue names them.
const TABS: [Kind; 6] = [
    Kind::Tool,
    Kind::Gateway,
    Kind::Server,
    Kind::Prompt,
    Kind::Resource,
    Kind::Root,
];

fn filters<'a>(tags: Option<&'a str>, include: Option<&'a str>, deps: bool) -> Filters<'a> {
    Filters {
        types: None,
        exclude_types: None,
        tags,
        include,
        include_inactive: false,
        dependencies: deps,
    }
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
        let selection = filters(tag, None, false).selection().map_err(|e| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.to_string())
        })?;
        let secret = src.keys.gateway.clone().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "this gateway has no secret in daemon.yaml: export cannot decrypt its credentials",
            )
        })?;
        let opts = ExportOptions {
            selection,
            gateway_secret: secret,
            document_secret: None,
            exported_by: None,
            now: crate::core::clock::now_rfc3339(),
            cache: src.cache,
        };
        export(&src.client, &opts)
            .await
            .map_err(|e| ApiError::classified(&e, str::to_string))
    };
    let doc = match listed.await {
        Ok(x) => x.document,
        Err(e) => {
            return layout::message(
                StatusCode::BAD_GATEWAY,
                "Cannot list the live entities",
                Some(&a.viewer()),
                &e.message,
            );
        }
    };
    let e = &doc.entities;
    let kinds = TABS.iter().filter(|k| e.count(**k) > 0).count();
    let confirm = format!(
        "Export all configuration: {} items across {} categories ({})?",
        e.total(),
        kinds,
        TABS.iter()
            .map(|k| format!("{} {}", e.count(*k), k.plural()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let body = html! {
        h1 { "Export from " span class="mono" { (name) } }
        form method="get" action={ "/ui/env/" (name) "/export" } class="filter" {
            label for="tag" { "Filter by tag" }
            input type="text" id="tag" name="tag" value=(tag.unwrap_or(""));
            " " button type="submit" { "Filter" }
        }
        nav class="tabs" aria-label="Entity types" {
            @for k in TABS { a href={ "#tab-" (k.plural()) } { (k.plural()) " (" (e.count(k)) ")" } " " }
        }
        form method="post" action={ "/ui/env/" (name) "/export" } id="export" {
            (csrf_field(&a.csrf))
            @for k in TABS {
                section id={ "tab-" (k.plural()) } aria-label=(k.plural()) {
                    h2 { (k.plural()) }
                    @let keys = e.keys(k);
                    @if keys.is_empty() { p class="muted" { "None." } }
                    ul class="checks" {
                        @for key in keys {
                            li { label class="check" {
                                input type="checkbox" name="entity" value={ (k.plural()) ":" (key) };
                                " " span class="mono" { (key) }
                            } }
                        }
                    }
                }
            }
            p { label class="check" {
                input type="checkbox" name="dependencies" value="1" checked;
                " Add the dependencies the selection needs (a server's tools, resources, prompts)"
            } }
            @if a.session.caller.role.allows(Role::Operator) {
                button type="submit" name="what" value="selected" class="primary" id="export-selected" { "Export Selected" }
                " "
                button type="submit" name="what" value="all" id="export-all" data-confirm=(confirm) { "Export All Configuration" }
                p class="muted" id="export-counts" {
                    "All: " (e.total()) " total items across " (kinds) " categories."
                }
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

/// `POST /ui/env/{name}/export` (operator): the download.
pub async fn download(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawForm(raw): RawForm,
) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded_pairs(&raw);
    let form: HashMap<String, String> = pairs.iter().cloned().collect();
    let (a, _) = match super::form_session(&s, &headers, &form, Role::Operator) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let all = form.get("what").map(String::as_str) == Some("all");
    let chosen: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "entity")
        .map(|(_, v)| v.as_str())
        .collect();
    if !all && chosen.is_empty() {
        return layout::message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Nothing selected",
            Some(&a.viewer()),
            "Select at least one entity, or export all configuration.",
        );
    }
    let include = chosen.join(",");
    let deps = form.contains_key("dependencies");
    let selection = match filters(None, (!all).then_some(include.as_str()), deps).selection() {
        Ok(sel) => sel,
        Err(e) => {
            return layout::message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Cannot export",
                Some(&a.viewer()),
                &e.to_string(),
            );
        }
    };
    let src = match env_source(&s, &name) {
        Ok(src) => src,
        Err(e) => return e.into_response(),
    };
    match run(src, selection, Format::Json).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// A form body's pairs, in order (a key may repeat).
fn serde_urlencoded_pairs(raw: &[u8]) -> Vec<(String, String)> {
    url_pairs(std::str::from_utf8(raw).unwrap_or(""))
}

fn url_pairs(s: &str) -> Vec<(String, String)> {
    let decode = |t: &str| {
        let t = t.replace('+', " ");
        let bytes = t.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%'
                && i + 2 < bytes.len()
                && let (Some(h), Some(l)) = (
                    crate::core::digest::nibble(bytes[i + 1]),
                    crate::core::digest::nibble(bytes[i + 2]),
                )
            {
                out.push(h << 4 | l);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_pairs_keep_repeated_keys_and_decode() {
        let p = super::url_pairs("entity=tools%3Aa+b&entity=servers%3Ax&csrf=1");
        assert_eq!(p[0], ("entity".into(), "tools:a b".into()));
        assert_eq!(p[1].1, "servers:x");
        assert_eq!(p.len(), 3);
    }
}

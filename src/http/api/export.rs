//! Export through the API: `GET /api/v1/environments/{env}/export` and
//! `GET /api/v1/gateways/{gw}/export` with the CLI's filters as query parameters, and
//! `POST …/export/selective` with named entities (plus their dependencies unless
//! `include_dependencies=false`). The same engine export as `mcp-gitops export`, the same
//! document: credentials encrypted with the gateway's key, never in plaintext.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::auth::{Operator, RequireRole};
use super::body::{JsonBody, Params};
use super::envs::env;
use super::error::ApiError;
use crate::core::document::{self, Format};
use crate::core::kind::Kind;
use crate::core::select::{Filters, IncludeSpec, Selection};
use crate::engine::apply::Keys;
use crate::engine::content_cache::ContentCache;
use crate::engine::export::{ExportOptions, export};
use crate::gateway::Client;
use crate::http::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/environments/{env}/export", get(env_export))
        .route(
            "/api/v1/environments/{env}/export/selective",
            post(env_selective),
        )
        .route("/api/v1/gateways/{gw}/export", get(gw_export))
        .route("/api/v1/gateways/{gw}/export/selective", post(gw_selective))
}

/// The query parameters: the CLI's filters and the format.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    pub types: Option<String>,
    pub exclude_types: Option<String>,
    pub tags: Option<String>,
    pub include: Option<String>,
    #[serde(default)]
    pub include_inactive: bool,
    pub include_dependencies: Option<bool>,
    pub format: Option<String>,
}

impl ExportQuery {
    fn format(&self) -> Result<Format, ApiError> {
        match self.format.as_deref() {
            None => Ok(Format::Json),
            Some(f) => Format::parse_name(f).ok_or_else(|| {
                ApiError::new(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    format!(
                        "format: {} is not json or yaml",
                        crate::core::quote::quote(f)
                    ),
                )
            }),
        }
    }

    fn filters(&self) -> Filters<'_> {
        Filters {
            types: self.types.as_deref(),
            exclude_types: self.exclude_types.as_deref(),
            tags: self.tags.as_deref(),
            include: self.include.as_deref(),
            include_inactive: self.include_inactive,
            dependencies: self.include_dependencies.unwrap_or(true),
        }
    }
}

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        e.to_string(),
    )
}

/// A connected gateway to export from.
pub(crate) struct Source {
    pub(crate) client: Client,
    pub(crate) keys: Keys,
    pub(crate) who: String,
    pub(crate) cache: Option<Arc<ContentCache>>,
}

pub(crate) fn env_source(s: &AppState, name: &str) -> Result<Source, ApiError> {
    let e = env(s, name)?;
    let live = e.shared.live.lock().expect("live lock").clone();
    let live = live.ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "not_loaded",
            format!("environment {name} has no valid desired state loaded yet"),
        )
    })?;
    Ok(Source {
        client: live.client,
        keys: live.keys,
        who: live.who,
        cache: e.settings.content_cache.clone(),
    })
}

fn gw_source(s: &AppState, name: &str) -> Result<Source, ApiError> {
    let g = s
        .gateways
        .iter()
        .find(|g| g.name == name)
        .ok_or_else(|| ApiError::not_found("gateway", name))?;
    let (client, keys) = g
        .connection
        .clone()
        .map_err(|why| ApiError::new(axum::http::StatusCode::BAD_GATEWAY, "unreachable", why))?;
    Ok(Source {
        who: client.who(),
        client,
        keys,
        cache: g.cache.clone(),
    })
}

/// An exported document as a file: its text, name and type, and its entity counts.
pub(crate) struct ExportFile {
    pub(crate) text: String,
    /// `export-YYYYMMDD-HHMMSS.json` (or `.yaml`).
    pub(crate) name: String,
    pub(crate) mime: &'static str,
    pub(crate) document: document::Document,
}

/// Export with `selection` into a file (credentials encrypted, never in plaintext).
pub(crate) async fn export_file(
    src: Source,
    selection: Selection,
    format: Format,
) -> Result<ExportFile, ApiError> {
    let gateway_secret = src.keys.gateway.clone().ok_or_else(|| {
        invalid("this gateway has no secret in daemon.yaml: export cannot decrypt its credentials")
    })?;
    let at = std::time::SystemTime::now();
    let opts = ExportOptions {
        selection,
        gateway_secret,
        document_secret: None,
        exported_by: Some(src.who),
        now: crate::core::clock::rfc3339(at),
        cache: src.cache,
    };
    let exported = export(&src.client, &opts)
        .await
        .map_err(|e| ApiError::classified(&e, str::to_string))?;
    let text = document::to_string(&exported.document, format);
    let (ext, mime) = match format {
        Format::Json => ("json", "application/json"),
        Format::Yaml => ("yaml", "application/yaml"),
    };
    let name = format!(
        "export-{}.{ext}",
        chrono::DateTime::<chrono::Utc>::from(at).format("%Y%m%d-%H%M%S")
    );
    Ok(ExportFile {
        text,
        name,
        mime,
        document: exported.document,
    })
}

/// The file as a download (`Content-Disposition: attachment`), with its entity count in
/// `X-Exported-Entities`.
pub(crate) fn attachment(file: ExportFile) -> Response {
    let disposition = format!("attachment; filename=\"{}\"", file.name);
    let total = file.document.entities.total();
    let mut r = file.text.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(file.mime));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("x-exported-entities", HeaderValue::from(total));
    r
}

/// Export with `selection` and answer the document as an attachment.
pub(crate) async fn run(
    src: Source,
    selection: Selection,
    format: Format,
) -> Result<Response, ApiError> {
    Ok(attachment(export_file(src, selection, format).await?))
}

fn filtered(q: &ExportQuery) -> Result<(Selection, Format), ApiError> {
    let format = q.format()?;
    let sel = q.filters().selection().map_err(invalid)?;
    Ok((sel, format))
}

async fn env_export(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    Params(q): Params<ExportQuery>,
    _: RequireRole<Operator>,
) -> Result<Response, ApiError> {
    let (sel, format) = filtered(&q)?;
    run(env_source(&s, &name)?, sel, format).await
}

async fn gw_export(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    Params(q): Params<ExportQuery>,
    _: RequireRole<Operator>,
) -> Result<Response, ApiError> {
    let (sel, format) = filtered(&q)?;
    run(gw_source(&s, &name)?, sel, format).await
}

/// The selective body: names (URIs for resources and roots) per type, as ContextForge's
/// `POST /export/selective` takes them: `{"tools": ["a"], "servers": ["s"]}`.
pub type Selected = BTreeMap<String, Vec<String>>;

/// Named entities (plus dependencies unless the query says `include_dependencies=false`).
pub fn selective(body: &Selected, q: &ExportQuery) -> Result<(Selection, Format), ApiError> {
    if q.types.is_some() || q.exclude_types.is_some() || q.include.is_some() || q.tags.is_some() {
        return Err(invalid(
            "a selective export names its entities in the body: types, exclude_types, tags and include are not taken here",
        ));
    }
    let mut names = Vec::new();
    for (kind, list) in body {
        let k: Kind = kind.parse().map_err(invalid)?;
        names.extend(list.iter().map(|n| (k, n.as_str())));
    }
    let include = IncludeSpec::exact(names)
        .map_err(|_| invalid("the body names no entity: {\"tools\": [\"name\"], ...}"))?;
    Ok((
        Selection {
            include: Some(include),
            include_inactive: true,
            dependencies: q.include_dependencies.unwrap_or(true),
            ..Selection::default()
        },
        q.format()?,
    ))
}

async fn env_selective(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    Params(q): Params<ExportQuery>,
    _: RequireRole<Operator>,
    JsonBody(body): JsonBody<Selected>,
) -> Result<Response, ApiError> {
    let (sel, format) = selective(&body, &q)?;
    run(env_source(&s, &name)?, sel, format).await
}

async fn gw_selective(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    Params(q): Params<ExportQuery>,
    _: RequireRole<Operator>,
    JsonBody(body): JsonBody<Selected>,
) -> Result<Response, ApiError> {
    let (sel, format) = selective(&body, &q)?;
    run(gw_source(&s, &name)?, sel, format).await
}

//! "Export All Configuration": `POST /ui/env/{name}/export/all` (operator, after the page's
//! confirmation) exports everything the page lists, keeps that very file in memory under a
//! random one-time id bound to the session ([`Kept`]: ten minutes, a few files, a bounded
//! size; credentials in it are encrypted as in every export), and shows "Exported N total
//! items across M categories" counted on that file. `GET /ui/env/{name}/export/file/{id}`
//! hands it over once; `app.js` starts that download by itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawForm, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;

use super::{base, failed, listing, posted, summary};
use crate::core::document::Format;
use crate::http::AppState;
use crate::http::api::export::{ExportFile, attachment, env_source, export_file};
use crate::http::ui::layout;

/// How long an exported file waits for its download (seconds).
pub const KEPT_TTL: u64 = 600;
/// Files kept at once (the oldest go first).
pub const KEPT_FILES: usize = 8;
/// Bytes kept at once; a larger export is refused here (the API and the CLI stream it).
pub const KEPT_BYTES: usize = 64 * 1024 * 1024;

struct KeptFile {
    /// The session's nonce: only that session downloads it.
    owner: String,
    env: String,
    file: ExportFile,
    at: u64,
}

/// Exported files waiting for their one download.
#[derive(Default)]
pub struct Kept {
    inner: Mutex<HashMap<String, KeptFile>>,
}

/// Why a file is not kept.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("the export is {size} bytes, more than the {max} the web UI keeps for a download")]
pub struct TooLarge {
    pub size: usize,
    pub max: usize,
}

impl Kept {
    /// Keep `file` (of environment `env`) for `owner`; its one-time id.
    pub(crate) fn put(
        &self,
        owner: &str,
        env: &str,
        file: ExportFile,
        now: u64,
    ) -> Result<String, TooLarge> {
        let size = file.text.len();
        if size > KEPT_BYTES {
            return Err(TooLarge {
                size,
                max: KEPT_BYTES,
            });
        }
        let mut m = self.inner.lock().expect("kept lock");
        m.retain(|_, k| now.saturating_sub(k.at) < KEPT_TTL);
        let bytes =
            |m: &HashMap<String, KeptFile>| m.values().map(|k| k.file.text.len()).sum::<usize>();
        while !m.is_empty() && (m.len() >= KEPT_FILES || bytes(&m) + size > KEPT_BYTES) {
            let oldest = m
                .iter()
                .min_by_key(|(_, k)| k.at)
                .map(|(id, _)| id.clone())
                .expect("not empty");
            m.remove(&oldest);
        }
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).expect("the operating system's random source");
        let id = crate::core::digest::hex(&b);
        m.insert(
            id.clone(),
            KeptFile {
                owner: owner.to_string(),
                env: env.to_string(),
                file,
                at: now,
            },
        );
        Ok(id)
    }

    /// The file `id` of `env`, once, if `owner` exported it and it has not expired.
    pub(crate) fn take(&self, id: &str, owner: &str, env: &str, now: u64) -> Option<ExportFile> {
        let mut m = self.inner.lock().expect("kept lock");
        let ok = m.get(id).is_some_and(|k| {
            k.owner == owner && k.env == env && now.saturating_sub(k.at) < KEPT_TTL
        });
        if !ok {
            return None;
        }
        m.remove(id).map(|k| k.file)
    }
}

/// `POST /ui/env/{name}/export/all`: export, keep, say what the file holds.
pub async fn export_all(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawForm(raw): RawForm,
) -> Response {
    let (a, form) = match posted(&s, &headers, &raw) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let Some(ui) = s.ui.as_ref() else {
        return layout::message(StatusCode::NOT_FOUND, "The web UI is off", None, "no ui:");
    };
    let tag = form
        .fields
        .get("tag")
        .map(|t| t.trim())
        .filter(|t| !t.is_empty());
    let exported = async { export_file(env_source(&s, &name)?, listing(tag)?, Format::Json).await };
    let file = match exported.await {
        Ok(f) => f,
        Err(e) => return failed(&a, "Cannot export", &e),
    };
    let (total, counts) = summary(&file.document.entities);
    let file_name = file.name.clone();
    let id = match ui.exports.put(
        &a.session.nonce,
        &name,
        file,
        crate::core::clock::now_unix(),
    ) {
        Ok(id) => id,
        Err(e) => {
            return layout::message(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Export too large for the web UI",
                Some(&a.viewer()),
                &format!("{e}: export with the API or mcp-gitops export instead."),
            );
        }
    };
    let b = base(&name);
    let body = html! {
        h1 { "Exported from " span class="mono" { (name) } }
        p class="flash" role="status" id="export-result" { "Exported " (total) " (" (counts) ")." }
        @if let Some(t) = tag { p class="muted" { "Entities tagged " span class="mono" { (t) } " only." } }
        p {
            a class="button primary" id="export-download" data-auto-download
                href={ (b) "/file/" (id) } download=(file_name) { "Download " (file_name) }
        }
        p class="muted" id="export-once" {
            "The file can be downloaded once, within " (KEPT_TTL / 60) " minutes. Its credentials are encrypted with the gateway's key."
        }
        p { a href=(b) { "Back to export" } }
    };
    layout::page(
        StatusCode::OK,
        &format!("Exported {name}"),
        Some(&a.viewer()),
        body,
    )
}

/// `GET /ui/env/{name}/export/file/{id}`: the kept file, once, to the session that made it.
pub async fn file(
    State(s): State<Arc<AppState>>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (a, ui) = match crate::http::ui::session(&s, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match ui
        .exports
        .take(&id, &a.session.nonce, &name, crate::core::clock::now_unix())
    {
        Some(f) => attachment(f),
        None => layout::message(
            StatusCode::NOT_FOUND,
            "No such export",
            Some(&a.viewer()),
            "This export was downloaded already, has expired, or belongs to another session: export again.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> ExportFile {
        ExportFile {
            text: text.to_string(),
            name: "export-20260101-000000.json".into(),
            mime: "application/json",
            document: Default::default(),
        }
    }

    #[test]
    fn a_kept_export_is_handed_over_once_to_its_session_and_environment() {
        let k = Kept::default();
        let id = k.put("session-a", "dev", file("{}"), 100).unwrap();
        assert!(k.take(&id, "session-b", "dev", 101).is_none());
        assert!(k.take(&id, "session-a", "prod", 101).is_none());
        assert_eq!(k.take(&id, "session-a", "dev", 101).unwrap().text, "{}");
        assert!(k.take(&id, "session-a", "dev", 102).is_none(), "once");
        let late = k.put("session-a", "dev", file("{}"), 100).unwrap();
        assert!(k.take(&late, "session-a", "dev", 100 + KEPT_TTL).is_none());
    }

    #[test]
    fn kept_exports_are_bounded_in_count_and_size() {
        let k = Kept::default();
        let first = k.put("s", "dev", file("1"), 10).unwrap();
        for i in 0..KEPT_FILES {
            k.put("s", "dev", file("x"), 11 + i as u64).unwrap();
        }
        assert!(k.take(&first, "s", "dev", 50).is_none(), "the oldest went");
        let big = "x".repeat(KEPT_BYTES / 2 + 1);
        let a = k.put("s", "dev", file(&big), 60).unwrap();
        let b = k.put("s", "dev", file(&big), 61).unwrap();
        assert!(k.take(&a, "s", "dev", 62).is_none(), "made room for b");
        assert!(k.take(&b, "s", "dev", 62).is_some());
        let huge = "x".repeat(KEPT_BYTES + 1);
        assert_eq!(
            k.put("s", "dev", file(&huge), 70).unwrap_err(),
            TooLarge {
                size: KEPT_BYTES + 1,
                max: KEPT_BYTES
            }
        );
    }
}

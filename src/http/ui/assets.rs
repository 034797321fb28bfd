//! The UI's embedded assets (one stylesheet, one script), served under a content-hashed path
//! with a year-long cache, and the security headers every UI response carries.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The Content-Security-Policy of every UI page: nothing inline, nothing external.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'";

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");
const IMPORT_JS: &str = include_str!("assets/import.js");

/// An embedded file: its name with the content's hash in it, its type and its text.
struct Asset {
    path: String,
    mime: &'static str,
    body: &'static str,
}

fn assets() -> &'static [Asset; 3] {
    static A: OnceLock<[Asset; 3]> = OnceLock::new();
    A.get_or_init(|| {
        let named = |stem: &str, ext: &str, mime, body: &'static str| Asset {
            path: format!(
                "{stem}-{}.{ext}",
                &crate::core::digest::sha256_hex(body.as_bytes())[..12]
            ),
            mime,
            body,
        };
        [
            named("app", "css", "text/css; charset=utf-8", CSS),
            named("app", "js", "text/javascript; charset=utf-8", JS),
            named("import", "js", "text/javascript; charset=utf-8", IMPORT_JS),
        ]
    })
}

/// The stylesheet's URL.
pub fn css_url() -> String {
    format!("/ui/assets/{}", assets()[0].path)
}

/// The script's URL.
pub fn js_url() -> String {
    format!("/ui/assets/{}", assets()[1].path)
}

/// The import wizard's script.
pub fn import_js_url() -> String {
    format!("/ui/assets/{}", assets()[2].path)
}

/// `GET /ui/assets/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    match assets().iter().find(|a| a.path == file) {
        Some(a) => {
            let mut r = (
                [
                    (header::CONTENT_TYPE, a.mime),
                    (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                ],
                a.body,
            )
                .into_response();
            secure(&mut r);
            r
        }
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

/// The headers every UI response carries: the CSP, no sniffing, no referrer to other sites
/// (`no-referrer` would make browsers send `Origin: null` with the UI's own forms), no framing.
pub fn secure(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

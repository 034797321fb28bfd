//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of every route (written by hand in
//! `openapi.json` next to this file, embedded in the binary). A unit test reads every
//! `.route(...)` of `src/http` and checks that the document has it, and the other way round.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::auth::{RequireRole, Viewer};
use crate::http::AppState;

/// The document.
pub const OPENAPI: &str = include_str!("openapi.json");

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/openapi.json", get(document))
}

async fn document(_: RequireRole<Viewer>) -> Response {
    let mut r = OPENAPI.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    /// Every `.route("PATH", METHOD(...)...)` in the files below `dir`, as (method, path);
    /// the web UI's HTML pages (`src/http/ui`, not JSON) are not the API's.
    fn registered(dir: &Path, out: &mut BTreeSet<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() && p.ends_with("ui") {
                continue;
            }
            if p.is_dir() {
                registered(&p, out);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            for chunk in text.split(".route(").skip(1) {
                let chunk = chunk.trim_start();
                // `"PATH"`, or `&format!("{p}PATH")` for each of the compatible routes' prefixes
                let (paths, chunk) = if let Some(c) = chunk.strip_prefix('"') {
                    (None, c)
                } else if let Some(c) = chunk.strip_prefix("&format!(\"") {
                    (Some(()), c)
                } else {
                    continue;
                };
                let Some((path, rest)) = chunk.split_once('"') else {
                    continue;
                };
                // (past format!'s closing parenthesis)
                let rest = match paths {
                    None => rest,
                    Some(()) => rest.strip_prefix(')').unwrap_or(rest),
                };
                let paths: Vec<String> = match paths {
                    None => vec![path.to_string()],
                    Some(()) => {
                        let path = path.replace("{{", "\u{0}").replace("}}", "\u{1}");
                        let rest = path.strip_prefix("{p}").unwrap_or_else(|| {
                            panic!(
                                "{}: a format!ed route other than {{p}}…: {path}",
                                p.display()
                            )
                        });
                        assert!(!rest.contains(['{', '}']), "{path}");
                        let rest = rest.replace('\u{0}', "{").replace('\u{1}', "}");
                        crate::http::jobs::compat::PREFIXES
                            .iter()
                            .map(|pre| format!("{pre}{rest}"))
                            .collect()
                    }
                };
                // The method router up to the closing parenthesis of .route(
                let mut depth = 1;
                let mut end = rest.len();
                for (i, c) in rest.char_indices() {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                end = i;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let methods = &rest[..end];
                for m in ["get", "post", "put", "patch", "delete"] {
                    let called = methods.match_indices(&format!("{m}(")).any(|(i, _)| {
                        i == 0 || !methods[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                    });
                    if called {
                        for path in &paths {
                            out.insert((m.to_string(), path.clone()));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_document_has_every_registered_route_and_no_other() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for m in item.as_object().unwrap().keys() {
                documented.insert((m.clone(), path.clone()));
            }
        }
        let mut routes = BTreeSet::new();
        registered(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http"),
            &mut routes,
        );
        assert!(routes.contains(&("post".into(), "/api/v1/environments/{env}/apply".into())));
        assert!(routes.contains(&("get".into(), "/v1/admin/import/status/{id}".into())));
        let missing: Vec<_> = routes.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "routes missing from openapi.json: {missing:?}"
        );
        let extra: Vec<_> = documented.difference(&routes).collect();
        assert!(
            extra.is_empty(),
            "openapi.json documents routes that do not exist: {extra:?}"
        );
        // Every operation but health, readiness and the webhook needs a token.
        for (m, path) in &documented {
            let op = &doc["paths"][path][m];
            let open = op["security"].as_array().is_some_and(|s| s.is_empty());
            assert_eq!(
                open,
                ["/healthz", "/readyz", "/hooks/git"].contains(&path.as_str()),
                "{m} {path}"
            );
            assert!(op["responses"].is_object(), "{m} {path}");
        }
    }

    #[test]
    fn an_import_that_becomes_a_commit_is_documented() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let s = &doc["components"]["schemas"];
        assert_eq!(s["ImportRequest"]["properties"]["branch"]["type"], "string");
        let outcome = &s["Job"]["properties"]["outcome"]["properties"];
        for field in ["commit", "branch", "review", "files", "counts", "reconcile"] {
            assert!(outcome[field].is_object(), "Job.outcome.{field}");
        }
        assert!(s["ImportPreview"]["properties"]["import_commits"].is_object());
        let op = &doc["paths"]["/api/v1/environments/{env}/import"]["post"];
        assert!(op["summary"].as_str().unwrap().contains("commits"));
        let form = &op["requestBody"]["content"]["multipart/form-data"]["schema"];
        assert!(form["properties"]["branch"].is_object());
    }
}

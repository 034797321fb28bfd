//! The frame of every page: skip link, navigation, the caller and a logout form, the main
//! content; and the HTML response with the UI's security headers.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::assets;
use super::session::Session;

/// Who the page is for: the session and its CSRF token.
pub struct Viewer<'a> {
    pub session: &'a Session,
    pub csrf: &'a str,
}

/// A hidden CSRF field for a form of this session.
pub fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// A complete page.
pub fn page(code: StatusCode, title: &str, viewer: Option<&Viewer<'_>>, body: Markup) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · mcp-gitops" }
                link rel="stylesheet" href=(assets::css_url());
                script src=(assets::js_url()) defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    span class="brand" { "mcp-gitops" }
                    @if let Some(v) = viewer {
                        nav aria-label="Main" {
                            a href="/ui" { "Environments" }
                            " " a href="/ui/import" { "Import" }
                            " " a href="/ui/jobs" { "Jobs" }
                            " " a href="/ui/backups" { "Backups" }
                        }
                        span class="muted" {
                            (v.session.caller.name) " (" (v.session.caller.role.label()) ")"
                        }
                        form class="inline" method="post" action="/ui/logout" {
                            (csrf_field(v.csrf))
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main id="main" { (body) }
            }
        }
    };
    let mut r = (
        code,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        doc.into_string(),
    )
        .into_response();
    assets::secure(&mut r);
    r
}

/// A page with one message (an error, a refusal).
pub fn message(code: StatusCode, title: &str, viewer: Option<&Viewer<'_>>, text: &str) -> Response {
    page(
        code,
        title,
        viewer,
        html! {
            h1 { (title) }
            p class="flash error" role="alert" { (text) }
            p { a href="/ui" { "Back to the environments" } }
        },
    )
}

/// 303 to `to` (after a form post), with extra headers such as `Set-Cookie`.
pub fn see_other(to: &str, set_cookie: Option<String>) -> Response {
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response();
    if let Some(c) = set_cookie
        && let Ok(v) = c.parse()
    {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    assets::secure(&mut r);
    r
}

//! `GET/POST /ui/login` (a token for a session cookie) and `POST /ui/logout`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use maud::{Markup, html};

use super::{AppState, layout, session};

fn login_form(error: Option<&str>) -> Markup {
    html! {
        div class="card" {
            h1 { "Log in" }
            @if let Some(e) = error {
                p class="flash error" role="alert" id="login-error" { (e) }
            }
            form method="post" action="/ui/login" {
                label for="token" { "API token" }
                input type="password" id="token" name="token" autocomplete="current-password"
                    required autofocus aria-describedby="token-help";
                p id="token-help" class="muted" {
                    "A token from daemon.yaml's api.tokens; its role decides what you may do."
                }
                button type="submit" class="primary" { "Log in" }
            }
        }
    }
}

/// `GET /ui/login`.
pub async fn form(State(s): State<Arc<AppState>>) -> Response {
    if s.ui.is_none() {
        return layout::message(
            StatusCode::NOT_FOUND,
            "The web UI is off",
            None,
            "daemon.yaml has no ui: section",
        );
    }
    layout::page(StatusCode::OK, "Log in", None, login_form(None))
}

/// A login form sent from another site (a browser says so in `Sec-Fetch-Site` or `Origin`).
fn cross_site(headers: &HeaderMap) -> bool {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if h("sec-fetch-site").is_some_and(|v| v != "same-origin" && v != "none") {
        return true;
    }
    match (h("origin"), h(header::HOST.as_str())) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => origin.split_once("://").map(|(_, rest)| rest) != Some(host),
        _ => false,
    }
}

/// `POST /ui/login`: a good token sets the session cookie and leads to the environments.
pub async fn submit(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(ui) = s.ui.as_ref() else {
        return layout::message(StatusCode::NOT_FOUND, "The web UI is off", None, "no ui:");
    };
    if cross_site(&headers) {
        return layout::message(
            StatusCode::FORBIDDEN,
            "Form refused",
            None,
            "A login form sent from another site is refused.",
        );
    }
    let token = form.get("token").map(|t| t.trim()).unwrap_or("");
    match s.api.authenticate(token) {
        Some(caller) => {
            let value = ui.sessions.issue(&caller, super::now());
            let cookie = session::set_cookie(&value, ui.sessions.ttl_secs, ui.secure_cookies);
            crate::daemon::log_line(
                "ui",
                &format!("{} ({}) logged in", caller.name, caller.role.label()),
            );
            layout::see_other("/ui", Some(cookie))
        }
        None => layout::page(
            StatusCode::UNAUTHORIZED,
            "Log in",
            None,
            login_form(Some("That token is not accepted.")),
        ),
    }
}

/// `POST /ui/logout`: the session is refused from now on and its cookie removed.
pub async fn logout(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (a, ui) = match super::form_session(&s, &headers, &form, super::auth::Role::Viewer) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    ui.sessions.revoke(&a.session, super::now());
    layout::see_other("/ui/login", Some(session::clear_cookie()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_from_another_site_is_recognised() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:9090".parse().unwrap());
        assert!(
            !cross_site(&h),
            "no Origin: a form of this site or a script"
        );
        h.insert("origin", "http://127.0.0.1:9090".parse().unwrap());
        assert!(!cross_site(&h));
        h.insert("origin", "http://evil.example".parse().unwrap());
        assert!(cross_site(&h));
        h.remove("origin");
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(cross_site(&h));
    }
}

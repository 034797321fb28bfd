//! `GET/POST /ui/login` (a token for a session cookie) and `POST /ui/logout`. Failed logins
//! are counted per client address (the API's and the webhook's per-client limiter): past
//! [`FAILURES_PER_MINUTE`] in a minute that address gets 429 with the time to retry, even
//! with a good token, until the oldest failure is a minute old; other addresses are not
//! held up.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
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

/// Failed logins a client address may have in any minute.
pub const FAILURES_PER_MINUTE: u32 = 5;

/// 429: too many failed logins from this address; when to try again.
fn throttled(wait: Duration) -> Response {
    let secs = wait.as_secs().max(1);
    let at = chrono::Utc::now() + chrono::Duration::seconds(secs as i64);
    let mut r = layout::page(
        StatusCode::TOO_MANY_REQUESTS,
        "Log in",
        None,
        html! {
            div class="card" {
                h1 { "Too many failed logins" }
                p class="flash error" role="alert" id="login-throttled" {
                    "Too many failed logins from your address. Try again in " (secs)
                    " seconds (at " (at.format("%H:%M:%S UTC")) ")."
                }
                p { a href="/ui/login" { "Back to the login" } }
            }
        },
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

/// The address a request came from.
fn client(ext: &Extensions) -> IpAddr {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
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
    ext: Extensions,
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
    let ip = client(&ext);
    let failures = || ui.login_failures.lock().expect("login failures lock");
    if let Some(wait) = failures().blocked(ip, Instant::now()) {
        return throttled(wait);
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
        None => {
            let now = Instant::now();
            let mut f = failures();
            let counted = f.record(ip, now);
            if counted.is_ok()
                && let Some(wait) = f.blocked(ip, now)
            {
                // This failure filled the address's minute: said once in the log.
                crate::daemon::log_line(
                    "ui",
                    &format!(
                        "too many failed logins from {ip}: refused for {}s",
                        wait.as_secs().max(1)
                    ),
                );
            }
            drop(f);
            match counted {
                Ok(()) => layout::page(
                    StatusCode::UNAUTHORIZED,
                    "Log in",
                    None,
                    login_form(Some("That token is not accepted.")),
                ),
                Err(wait) => throttled(wait),
            }
        }
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
    fn failed_logins_hold_up_only_their_own_address_for_a_minute() {
        let mut f = crate::http::hooks::Failures::new(FAILURES_PER_MINUTE);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for i in 0..FAILURES_PER_MINUTE {
            assert_eq!(f.blocked(a, t0), None, "failure {i}");
            f.record(a, t0 + Duration::from_secs(i as u64)).unwrap();
        }
        let later = t0 + Duration::from_secs(20);
        assert_eq!(f.blocked(a, later), Some(Duration::from_secs(40)));
        assert_eq!(f.blocked(b, later), None, "another address logs in");
        assert_eq!(f.blocked(a, t0 + Duration::from_secs(60)), None);
    }

    #[test]
    fn the_throttled_page_says_when_to_retry() {
        let r = throttled(Duration::from_millis(12_500));
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "12");
    }

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

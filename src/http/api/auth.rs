//! Who is calling, and whether they may: `Authorization: Bearer <token>` checked against
//! `daemon.yaml`'s `api.tokens` in constant time ([`authenticate`]), a [`Caller`] placed in the
//! request by another layer (the UI's session cookie) taken as it is, and [`RequireRole`] in a
//! handler's arguments refusing with 401 (no or a wrong token, with `WWW-Authenticate`) or
//! 403 (a role that may not). [`guard`] limits the rate per client address (429) and the body
//! size (413) of every API request before anything else happens.

use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::core::access::{self, ApiToken};
pub use crate::core::access::{Caller, Role};
use crate::http::AppState;
use crate::http::hooks::Failures;

/// The API's part of the shared state.
pub struct ApiState {
    pub tokens: Vec<ApiToken>,
    pub body_limit: usize,
    pub open_status: bool,
    pub open_metrics: bool,
    pub compat_environment: Option<String>,
    /// Requests per client address and minute allowed (`api.rate_limit`; 0 = no limit).
    pub per_minute: u32,
    /// Requests per client address in the last minute.
    pub clients: std::sync::Mutex<Failures>,
}

impl ApiState {
    pub fn new(spec: &crate::daemon::api_config::ApiSpec) -> ApiState {
        ApiState {
            tokens: spec.tokens.clone(),
            body_limit: spec.body_limit,
            open_status: spec.open_status,
            open_metrics: spec.open_metrics,
            compat_environment: spec.compat_environment.clone(),
            per_minute: spec.per_minute,
            clients: std::sync::Mutex::new(Failures::new(spec.per_minute)),
        }
    }

    /// Count a request from `ip`, or say how long that client must wait; never limited when
    /// `api.rate_limit` is 0.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        self.clients.lock().expect("clients lock").record(ip, now)
    }

    /// The caller a bearer token belongs to (for the UI's login too).
    pub fn authenticate(&self, token: &str) -> Option<Caller> {
        access::authenticate(&self.tokens, token)
    }
}

/// The caller a bearer token belongs to, if any (the UI's login calls this with the token a
/// person typed, then keeps a session).
pub fn authenticate(state: &AppState, token: &str) -> Option<Caller> {
    state.api.authenticate(token)
}

/// The caller of a request: one placed by an earlier layer (a UI session), else the bearer
/// token's. `Err` is the 401 to answer.
pub fn caller(state: &AppState, parts: &Parts) -> Result<Caller, ApiError> {
    if let Some(c) = parts.extensions.get::<Caller>() {
        return Ok(c.clone());
    }
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "authentication required: send Authorization: Bearer <token>",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(access::bearer)
        .ok_or_else(|| ApiError::unauthorized("the Authorization header is not Bearer <token>"))?;
    state
        .api
        .authenticate(token)
        .ok_or_else(|| ApiError::unauthorized("the token is not valid"))
}

/// A role a route needs, as a type: `RequireRole<Operator>`.
pub trait Needs: Send + Sync + 'static {
    const ROLE: Role;
}

pub struct Viewer;
pub struct Operator;
pub struct Admin;

impl Needs for Viewer {
    const ROLE: Role = Role::Viewer;
}
impl Needs for Operator {
    const ROLE: Role = Role::Operator;
}
impl Needs for Admin {
    const ROLE: Role = Role::Admin;
}

/// An authenticated caller whose role allows `R`'s.
pub struct RequireRole<R: Needs>(pub Caller, pub PhantomData<R>);

impl<R: Needs> RequireRole<R> {
    pub fn caller(&self) -> &Caller {
        &self.0
    }
}

/// Whether `c` may do what `needed` may; the 403 otherwise.
pub fn allow(c: &Caller, needed: Role) -> Result<(), ApiError> {
    if c.role.allows(needed) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "token '{}' has role {}; this needs {needed}",
            c.name, c.role
        )))
    }
}

impl<R: Needs> FromRequestParts<Arc<AppState>> for RequireRole<R> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let c = caller(state, parts)?;
        allow(&c, R::ROLE)?;
        Ok(RequireRole(c, PhantomData))
    }
}

/// The client address a request came from.
pub fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// Rate (429) and declared body size (413) first, for every API request. A body sent without
/// a length is cut at the limit by the extractors ([`super::body`]).
pub async fn guard(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let ip = client_ip(&req);
    let admitted = s.api.admit(ip, Instant::now());
    if let Err(wait) = admitted {
        return ApiError::rate_limited(wait.as_secs()).into_response();
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.api.body_limit as u64) {
        let mut r = ApiError::too_large(s.api.body_limit).into_response();
        r.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        return r;
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::api_config::ApiSpec;

    #[test]
    fn a_rate_limit_of_zero_admits_everything_and_another_counts_per_client() {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let now = Instant::now();
        let none = ApiState::new(&ApiSpec {
            per_minute: 0,
            ..ApiSpec::default()
        });
        assert!((0..10_000).all(|_| none.admit(ip, now).is_ok()));
        let three = ApiState::new(&ApiSpec {
            per_minute: 3,
            ..ApiSpec::default()
        });
        assert!((0..3).all(|_| three.admit(ip, now).is_ok()));
        assert!(three.admit(ip, now).is_err(), "the fourth in a minute");
        let other = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));
        assert!(
            three.admit(other, now).is_ok(),
            "another client is not limited by it"
        );
    }
}

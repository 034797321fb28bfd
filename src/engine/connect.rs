//! Connect to a gateway from connection settings: a URL and a token, or a user and the JWT
//! secret to mint one. Every environment, and every source-less gateway of the daemon, connects
//! here.

use crate::core::error::{Classify, ErrorClass};
use crate::engine::reconcile::Settings;
use crate::gateway::{Auth, Client, ClientOptions, GatewayError};

/// Why a client could not be made from connection settings.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The settings are wrong (URL, credentials): the message says which.
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
}

impl Classify for ConnectError {
    fn class(&self) -> ErrorClass {
        match self {
            ConnectError::Config(_) => ErrorClass::Invalid,
            ConnectError::Gateway(g) => g.class(),
        }
    }
}

/// A client for `url` with a token, or a user and JWT secret, counted and rate limited as
/// `s` says (no request yet). What every environment and source-less gateway connects with.
pub fn connect(
    url: &str,
    token: Option<String>,
    user: Option<String>,
    jwt_secret: Option<String>,
    s: &Settings,
) -> Result<Client, ConnectError> {
    let auth = Auth::resolve(
        token,
        user,
        jwt_secret,
        crate::gateway::DEFAULT_JWT_AUDIENCE.into(),
        crate::gateway::DEFAULT_JWT_ISSUER.into(),
    )
    .map_err(|e| ConnectError::Config(e.to_string()))?;
    client(url, auth, None, None, s)
}

/// A client for `url` with `auth` resolved by the caller (the controller reads it from
/// Kubernetes Secrets), at `rate_limit` requests per minute (default: the client's), trusting
/// the CA certificates of `ca_pem` besides the system's.
pub fn client(
    url: &str,
    auth: Auth,
    rate_limit: Option<usize>,
    ca_pem: Option<String>,
    s: &Settings,
) -> Result<Client, ConnectError> {
    crate::gateway::check_url(url).map_err(|e| ConnectError::Config(e.to_string()))?;
    if let Some(pem) = &ca_pem {
        crate::gateway::check_ca_pem(pem).map_err(ConnectError::Config)?;
    }
    let mut client_opts = ClientOptions::new(url.to_string(), auth);
    client_opts.ca_pem = ca_pem;
    client_opts.stats = s.stats.clone();
    client_opts.limiter = s.limiter.clone();
    client_opts.priority = s.priority;
    if let Some(t) = s.timeout {
        client_opts.timeout = t;
    }
    if let Some(r) = rate_limit {
        client_opts.rate_limit = r;
    }
    Ok(Client::new(client_opts)?)
}

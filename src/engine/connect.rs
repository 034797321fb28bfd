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
    crate::gateway::check_url(url).map_err(|e| ConnectError::Config(e.to_string()))?;
    let mut client_opts = ClientOptions::new(url.to_string(), auth);
    client_opts.stats = s.stats.clone();
    client_opts.limiter = s.limiter.clone();
    Ok(Client::new(client_opts)?)
}

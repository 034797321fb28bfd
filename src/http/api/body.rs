//! Request bodies for API handlers: read up to `api.body_limit` (413 past it, however the body
//! is sent) and parsed as JSON with a 400 that says where it is wrong.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::http::AppState;

/// The raw body, at most `api.body_limit` bytes.
pub struct LimitedBody(pub Bytes);

impl FromRequest<Arc<AppState>> for LimitedBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let limit = state.api.body_limit;
        let read = axum::body::to_bytes(req.into_body(), limit);
        match tokio::time::timeout(state.body_timeout, read).await {
            Ok(Ok(b)) => Ok(LimitedBody(b)),
            Ok(Err(e)) if is_length_limit(&e) => Err(ApiError::too_large(limit)),
            Ok(Err(_)) => Err(ApiError::bad_request("the request body was not received")),
            Err(_) => Err(ApiError::new(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                "timeout",
                "the request body was not received in time",
            )),
        }
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if s.to_string().contains("length limit exceeded") {
            return true;
        }
        src = s.source();
    }
    false
}

/// A JSON body of type `T`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let LimitedBody(bytes) = LimitedBody::from_request(req, state).await?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(&mut de)
            .map(JsonBody)
            .map_err(|e| {
                let at = e.path().to_string();
                ApiError::bad_request(format!("the body is not valid JSON here: {}", e.inner()))
                    .with(serde_json::json!({"path": at}))
            })
    }
}

/// Query parameters of type `T`; unknown or malformed ones are a 400 of the API's shape.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Send> axum::extract::FromRequestParts<Arc<AppState>> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or_default();
        parse_query(q).map(Params)
    }
}

fn parse_query<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{q}")
            .parse()
            .map_err(|_| ApiError::bad_request("the query string is not valid"))?,
    )
    .map(|axum::extract::Query(v)| v)
    .map_err(|e| ApiError::bad_request(format!("query: {}", e.body_text())))
}

//! The API's errors: one JSON shape, `{"error": {"code", "message", ...}}`, with messages
//! escaped and cut (`core::quote`), and one mapping from [`ErrorClass`] to an HTTP status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};

use crate::core::error::{Classify, ErrorClass};
use crate::core::quote::{clean, quote};

/// The HTTP status of an error of this class (README, "HTTP API", status codes).
pub fn status_of(class: ErrorClass) -> StatusCode {
    match class {
        ErrorClass::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorClass::Conflict
        | ErrorClass::MassDelete
        | ErrorClass::Stale
        | ErrorClass::Observe
        | ErrorClass::Locked => StatusCode::CONFLICT,
        // The gateway behind us failed or refused our credentials: not the caller's.
        ErrorClass::Unreachable | ErrorClass::Auth | ErrorClass::Failed => StatusCode::BAD_GATEWAY,
        ErrorClass::GatewayBusy => StatusCode::SERVICE_UNAVAILABLE,
        ErrorClass::Io => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable: `unauthorized`, `forbidden`, `not_found`, `too_large`, `rate_limited`,
    /// `bad_request`, or an error class's label (`invalid`, `stale`, ...).
    pub code: &'static str,
    pub message: String,
    /// More fields of the error object.
    pub details: Option<Box<Value>>,
    /// Seconds, for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl AsRef<str>) -> ApiError {
        ApiError {
            status,
            code,
            message: clean(message.as_ref(), false),
            details: None,
            retry_after: None,
        }
    }

    /// A classified error, its message passed through `mask` (substituted values as written).
    pub fn classified<E: Classify + std::fmt::Display>(
        e: &E,
        mask: impl Fn(&str) -> String,
    ) -> ApiError {
        let class = e.class();
        ApiError::new(status_of(class), class.label(), mask(&e.to_string()))
    }

    pub fn unauthorized(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl AsRef<str>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn bad_request(message: impl AsRef<str>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// `what` named `name` does not exist.
    pub fn not_found(what: &str, name: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no {what} {}", quote(name)),
        )
    }

    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("request body over the limit of {limit} bytes"),
        )
        .with(json!({"limit": limit}))
    }

    pub fn rate_limited(wait_secs: u64) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests from this address; retry later",
        );
        e.retry_after = Some(wait_secs.max(1));
        e
    }

    /// Add fields to the error object.
    pub fn with(mut self, details: Value) -> ApiError {
        self.details = Some(Box::new(details));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"code": self.code, "message": self.message});
        if let (Some(Value::Object(more)), Some(obj)) =
            (self.details.map(|b| *b), body.as_object_mut())
        {
            for (k, v) in more {
                obj.entry(k).or_insert(v);
            }
        }
        let mut r = (self.status, Json(json!({ "error": body }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mcp-gitops\""),
            );
        }
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_a_client_or_server_status() {
        assert_eq!(status_of(ErrorClass::Stale), StatusCode::CONFLICT);
        assert_eq!(
            status_of(ErrorClass::Invalid),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        // Our gateway refusing our credentials is not the caller's 401.
        assert_eq!(status_of(ErrorClass::Auth), StatusCode::BAD_GATEWAY);
        assert_eq!(
            status_of(ErrorClass::GatewayBusy),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[tokio::test]
    async fn errors_are_one_json_shape_with_escaped_values() {
        let r = ApiError::not_found("environment", "a\u{1b}[2Jb").into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "not_found");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(!m.contains('\u{1b}'), "{m}");
        let r = ApiError::unauthorized("no token").into_response();
        assert!(
            r.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let r = ApiError::rate_limited(0).into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        let r = ApiError::too_large(10).into_response();
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["limit"], 10);
    }
}

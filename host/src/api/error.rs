//! The JSON error shape of every failed request, and the fallbacks that guarantee it.

use crate::error::{Code, Error};
use axum::Json;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Five-digit code `AABCC`: module, kind, number. Stable; see the code table.
    #[schema(example = "90301")]
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
    /// Structured facts for clients, e.g. the field at fault.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// What the caller can do about it.
    pub hint: Option<String>,
}

impl From<&Error> for ErrorBody {
    fn from(err: &Error) -> Self {
        Self {
            code: err.code.as_string(),
            message: err.message.clone(),
            details: err.details.clone().unwrap_or_else(|| serde_json::json!({})),
            hint: err.hint.clone(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(ErrorBody::from(&self))).into_response();
        add_headers(&self, response.headers_mut());
        response
    }
}

/// The headers some errors come with: how to authenticate (401), when to retry (429).
pub fn add_headers(err: &Error, headers: &mut header::HeaderMap) {
    match err.code {
        Code::Unauthenticated
        | Code::InvalidToken
        | Code::TokenExpired
        | Code::TokenRevoked
        | Code::UserDisabled
        | Code::BadCredentials => {
            headers.insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"weft\""),
            );
        }
        Code::SignInRateLimited => {
            if let Some(secs) = err
                .details
                .as_ref()
                .and_then(|d| d["retry_after_secs"].as_u64())
            {
                headers.insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
            }
        }
        _ => {}
    }
}

/// Fallback for paths no route serves.
pub async fn route_not_found(uri: axum::http::Uri) -> Error {
    Error::new(Code::RouteNotFound, format!("no route for {}", uri.path()))
        .details(serde_json::json!({ "path": uri.path() }))
        .hint("see /docs for the API")
}

/// Fallback for a known path called with a method it does not serve.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Error {
    Error::new(
        Code::MethodNotAllowed,
        format!("{} is not allowed on {}", method, uri.path()),
    )
    .details(serde_json::json!({ "method": method.as_str(), "path": uri.path() }))
}

/// Answers a panic in a handler with the JSON error shape instead of a dropped connection.
pub fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    Error::internal("internal error").into_response()
}

/// Rewrites any error answer that is not JSON yet (from a layer or a library) into the shape.
pub async fn ensure_json_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let code = match status {
        StatusCode::NOT_FOUND => Code::RouteNotFound,
        StatusCode::METHOD_NOT_ALLOWED => Code::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => Code::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Code::UnsupportedMediaType,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::Forbidden,
        StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
        s if s.is_client_error() => Code::InvalidParameter,
        _ => Code::Internal,
    };
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let body = ErrorBody::from(&Error::new(code, message));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    parts.status = status;
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    Response::from_parts(parts, Body::from(bytes))
}

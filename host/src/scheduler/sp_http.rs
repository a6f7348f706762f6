//! SwarmPilot's HTTP shapes: its error answers (`"status": "error"` and FastAPI's `detail`
//! next to Weft's code, message and hint), and the extractors whose rejections use them.

use crate::api::extract::{Json, Query};
use crate::error::Error;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// An error answer in the SwarmPilot shape.
pub(super) struct SpError(pub(super) Error);

impl From<Error> for SpError {
    fn from(err: Error) -> Self {
        Self(err)
    }
}

impl SpError {
    /// Weft's error body plus SwarmPilot's `status` and FastAPI's `detail`.
    fn body(&self) -> Value {
        let mut body = json!(crate::api::ErrorBody::from(&self.0));
        body["status"] = json!("error");
        body["detail"] = json!(self.0.message);
        body
    }

    /// The seed answers some failures with 200 and `"status": "error"`.
    pub(super) fn with_ok_status(self, extra: Value) -> Response {
        let mut body = self.body();
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        (StatusCode::OK, axum::Json(body)).into_response()
    }
}

impl IntoResponse for SpError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.body())).into_response();
        crate::api::error::add_headers(&self.0, response.headers_mut());
        response
    }
}

/// A JSON body whose rejection is a [`SpError`].
pub(super) struct SpJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for SpJson<T> {
    type Rejection = SpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, SpError> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// Query parameters whose rejection is a [`SpError`].
pub(super) struct SpQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for SpQuery<T> {
    type Rejection = SpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, SpError> {
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

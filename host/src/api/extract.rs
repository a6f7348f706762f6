//! Request extractors whose rejections use Weft's error shape and name the field at fault.

use crate::error::{Code, Error};
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A JSON request body (and a JSON response).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let is_json = content_type.starts_with("application/json")
            || (content_type.starts_with("application/") && content_type.contains("+json"));
        if !is_json {
            return Err(Error::new(
                Code::UnsupportedMediaType,
                "expected a JSON body with Content-Type: application/json",
            )
            .details(serde_json::json!({ "content_type": content_type })));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses JSON text, telling malformed syntax (400) from a well-formed body of the wrong shape
/// (422, naming the field).
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    refuse_nul(bytes)?;
    // Tracking the path costs on every field; only a body that fails needs it, so that one is
    // parsed again to name where.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        json_error(&path, err.into_inner())
    })?;
    de.end().map_err(|err| json_error(".", err))?;
    Ok(value)
}

/// Refuses a body with a NUL character in any string: PostgreSQL cannot store one in text (it
/// answered 500 where SQLite stored it), so no backend gets one. Only a body with the escape
/// `\u0000` in it is parsed again, to name the field.
fn refuse_nul(bytes: &[u8]) -> Result<(), Error> {
    const ESCAPE: &[u8] = b"\\u0000";
    if !bytes.windows(ESCAPE.len()).any(|w| w == ESCAPE) {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(()); // malformed: the parse that follows says so
    };
    match nul_at(&value, String::new()) {
        None => Ok(()),
        Some(field) => Err(Error::new(
            Code::InvalidField,
            format!("invalid field '{field}': text must not contain NUL (\\u0000) characters"),
        )
        .details(serde_json::json!({ "field": field }))),
    }
}

/// The path (`nodes[0].name`) of the first string or key holding a NUL.
fn nul_at(value: &serde_json::Value, path: String) -> Option<String> {
    use serde_json::Value;
    let named = |path: &str| {
        if path.is_empty() {
            ".".to_string()
        } else {
            path.to_string()
        }
    };
    match value {
        Value::String(text) if text.contains('\0') => Some(named(&path)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_at(item, format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let at = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                return Some(at);
            }
            nul_at(item, at)
        }),
        _ => None,
    }
}

fn json_error(path: &str, inner: serde_json::Error) -> Error {
    {
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." {
                    String::new()
                } else {
                    path.to_string()
                };
                Error::new(
                    Code::InvalidField,
                    if field.is_empty() {
                        format!("invalid body: {inner}")
                    } else {
                        format!("invalid field '{field}': {inner}")
                    },
                )
                .details(serde_json::json!({ "field": field }))
            }
            _ => Error::new(Code::MalformedJson, format!("malformed JSON: {inner}"))
                .details(serde_json::json!({ "line": inner.line(), "column": inner.column() })),
        }
    }
}

/// Maps a failure to read the body; an over-limit body is 413.
pub(crate) fn body_rejection(rejection: BytesRejection) -> Error {
    limited_body_rejection(rejection, "[api] max_body_bytes")
}

/// [`body_rejection`] for a route whose body limit is the `setting` named.
pub(crate) fn limited_body_rejection(rejection: BytesRejection, setting: &str) -> Error {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        Error::new(Code::PayloadTooLarge, "the request body is too large").hint(format!(
            "send a smaller body; the limit is set by {setting}"
        ))
    } else {
        Error::new(Code::MalformedJson, rejection.body_text())
    }
}

/// Query-string parameters.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        refuse_encoded_nul(parts.uri.query().unwrap_or_default(), "query")?;
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|r: QueryRejection| {
                Error::new(Code::InvalidParameter, r.body_text())
                    .details(serde_json::json!({ "in": "query" }))
            })
    }
}

/// Path parameters.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        refuse_encoded_nul(parts.uri.path(), "path")?;
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|r: PathRejection| {
                Error::new(Code::InvalidParameter, r.body_text())
                    .details(serde_json::json!({ "in": "path" }))
            })
    }
}

/// Refuses a NUL (`%00`) in a query string or path, for the reason of [`refuse_nul`].
fn refuse_encoded_nul(text: &str, part: &str) -> Result<(), Error> {
    if text
        .as_bytes()
        .windows(3)
        .any(|w| w.eq_ignore_ascii_case(b"%00"))
    {
        return Err(Error::new(
            Code::InvalidParameter,
            format!("the {part} must not contain NUL (%00) characters"),
        )
        .details(serde_json::json!({ "in": part })));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    #[test]
    fn malformed_is_400_and_wrong_shape_names_the_field() {
        let err = parse_json::<Body>(b"{\"name\": ").unwrap_err();
        assert_eq!(err.code, Code::MalformedJson);

        let err = parse_json::<Body>(br#"{"name":"a","inner":{"count":"x"}}"#).unwrap_err();
        assert_eq!(err.code, Code::InvalidField);
        assert_eq!(err.details.unwrap()["field"], "inner.count");

        let err = parse_json::<Body>(br#"{"name":"a"}"#).unwrap_err();
        assert_eq!(err.code, Code::InvalidField);
        assert!(err.message.contains("inner"), "{}", err.message);

        let err = parse_json::<Body>(br#"{"name":"a","inner":{"count":1},"x":1}"#).unwrap_err();
        assert!(err.message.contains("unknown field"), "{}", err.message);

        let err = parse_json::<Body>(br#"{"name":"a","inner":{"count":1}} trailing"#).unwrap_err();
        assert_eq!(err.code, Code::MalformedJson);
    }
}

//! MLflow's wire conventions: its error shape (`{"error_code", "message"}` with the protocol's
//! status codes, which the client reads), request messages as a JSON body (POST, PATCH,
//! DELETE) or as the query string (GET, lists as repeated keys), and proto3 JSON's leniency
//! (64-bit integers as numbers or strings, doubles as numbers or `"NaN"`/`"Infinity"`).

use crate::api::extract::parse_json;
use crate::error::{Code, Error};
use axum::extract::{FromRequest, Request};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// A Weft error answered in MLflow's shape on MLflow's paths.
#[derive(Debug)]
pub(crate) struct Wire(pub Error);

impl From<Error> for Wire {
    fn from(err: Error) -> Self {
        Wire(err)
    }
}

/// The result of an MLflow handler.
pub(crate) type WireResult<T> = std::result::Result<T, Wire>;

/// MLflow's error code for a Weft code, and the status MLflow answers it with.
fn protocol_code(code: Code) -> (&'static str, StatusCode) {
    match code {
        Code::ModelNotFound | Code::NotFound => ("RESOURCE_DOES_NOT_EXIST", StatusCode::NOT_FOUND),
        Code::ModelExists | Code::Conflict => ("RESOURCE_ALREADY_EXISTS", StatusCode::BAD_REQUEST),
        Code::ModelInvalidState => ("INVALID_STATE", StatusCode::BAD_REQUEST),
        Code::ModelForbidden | Code::Forbidden => ("PERMISSION_DENIED", StatusCode::FORBIDDEN),
        Code::Unauthenticated
        | Code::InvalidToken
        | Code::TokenExpired
        | Code::TokenRevoked
        | Code::UserDisabled
        | Code::SignInRateLimited => ("UNAUTHENTICATED", StatusCode::UNAUTHORIZED),
        Code::RouteNotFound | Code::MethodNotAllowed => {
            ("ENDPOINT_NOT_FOUND", StatusCode::NOT_FOUND)
        }
        Code::ModelStorage | Code::Unavailable => {
            ("TEMPORARILY_UNAVAILABLE", StatusCode::SERVICE_UNAVAILABLE)
        }
        Code::Internal => ("INTERNAL_ERROR", StatusCode::INTERNAL_SERVER_ERROR),
        _ => ("INVALID_PARAMETER_VALUE", StatusCode::BAD_REQUEST),
    }
}

impl IntoResponse for Wire {
    fn into_response(self) -> Response {
        let (name, status) = protocol_code(self.0.code);
        let body = serde_json::json!({
            "error_code": name,
            "message": self.0.message,
            "weft_code": self.0.code.as_string(),
        });
        let mut response = (status, axum::Json(body)).into_response();
        crate::api::error::add_headers(&self.0, response.headers_mut());
        response
    }
}

/// A request message: the JSON body, or for GET the query string.
pub(crate) struct Msg<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Msg<T> {
    type Rejection = Wire;

    async fn from_request(req: Request, state: &S) -> Result<Self, Wire> {
        if req.method() == Method::GET {
            let value = query_value(req.uri().query().unwrap_or_default());
            return serde_json::from_value(value)
                .map(Msg)
                .map_err(|e| Wire(invalid(format!("invalid query: {e}"))));
        }
        let bytes = bytes::Bytes::from_request(req, state)
            .await
            .map_err(|r| Wire(crate::api::extract::body_rejection(r)))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return serde_json::from_value(Value::Object(Map::new()))
                .map(Msg)
                .map_err(|e| Wire(invalid(e.to_string())));
        }
        parse_json(&bytes).map(Msg).map_err(Wire)
    }
}

/// A query string as a JSON object: a key given once is a string, a repeated key a list.
fn query_value(query: &str) -> Value {
    let mut map = Map::new();
    for (key, value) in form_urlencoded(query) {
        match map.get_mut(&key) {
            Some(Value::Array(items)) => items.push(Value::String(value)),
            Some(first) => {
                let first = first.take();
                map.insert(key, Value::Array(vec![first, Value::String(value)]));
            }
            None => {
                map.insert(key, Value::String(value));
            }
        }
    }
    Value::Object(map)
}

/// The pairs of an `application/x-www-form-urlencoded` string.
fn form_urlencoded(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k), decode(v))
    })
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match hex(bytes[i + 1]).zip(hex(bytes[i + 2])) {
                Some((hi, lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

/// An INVALID_PARAMETER_VALUE error.
pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::new(Code::ModelInvalidParameter, message)
}

/// A 64-bit integer sent as a number or a string (proto3 JSON allows both).
pub(crate) fn int<'de, D: Deserializer<'de>>(de: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error as _;
    match Option::<Value>::deserialize(de)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| D::Error::custom("expected an integer")),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("expected an integer, got '{s}'"))),
        Some(other) => Err(D::Error::custom(format!(
            "expected an integer, got {other}"
        ))),
    }
}

/// A double sent as a number or as proto3 JSON's `"NaN"`, `"Infinity"`, `"-Infinity"`.
pub(crate) fn double<'de, D: Deserializer<'de>>(de: D) -> Result<Option<f64>, D::Error> {
    use serde::de::Error as _;
    match Option::<Value>::deserialize(de)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) => match s.as_str() {
            "NaN" => Ok(Some(f64::NAN)),
            "Infinity" => Ok(Some(f64::INFINITY)),
            "-Infinity" => Ok(Some(f64::NEG_INFINITY)),
            _ => s
                .parse()
                .map(Some)
                .map_err(|_| D::Error::custom(format!("expected a number, got '{s}'"))),
        },
        Some(other) => Err(D::Error::custom(format!("expected a number, got {other}"))),
    }
}

/// A list sent as a list, or (from a query string) as one value.
pub(crate) fn list<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(de)? {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
        Some(Value::String(s)) => vec![s],
        Some(other) => vec![other.to_string()],
    })
}

/// A double as proto3 JSON writes it: NaN and the infinities as strings.
pub(crate) fn double_value(value: f64) -> Value {
    if value.is_nan() {
        Value::from("NaN")
    } else if value == f64::INFINITY {
        Value::from("Infinity")
    } else if value == f64::NEG_INFINITY {
        Value::from("-Infinity")
    } else {
        Value::from(value)
    }
}

/// The fallback of MLflow's paths: ENDPOINT_NOT_FOUND, as MLflow answers.
pub(crate) async fn endpoint_not_found(method: Method, uri: axum::http::Uri) -> Wire {
    Wire(Error::new(
        Code::RouteNotFound,
        format!("no MLflow endpoint {method} {}", uri.path()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_query_keys_make_lists() {
        let v = query_value("experiment_ids=1&experiment_ids=2&filter=a+%3D+%27b%27&x=");
        assert_eq!(v["experiment_ids"], serde_json::json!(["1", "2"]));
        assert_eq!(v["filter"], "a = 'b'");
        assert_eq!(v["x"], "");
    }
}

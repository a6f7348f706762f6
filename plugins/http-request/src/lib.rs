//! Node `http-request`: sends one HTTP request through the host's `wasi:http` and outputs the
//! response.
//!
//! Config: `{"url": "https://api.example.com/items", "method": "GET", "headers": {"accept":
//! "application/json"}, "body": ..., "timeout_ms": 10000}`. Input `in`, when connected,
//! replaces the config's `body`. A string body is sent as it is; any other JSON body is sent
//! as JSON text with `content-type: application/json` (unless a content type is set).
//!
//! Output `out`: `{"status": 200, "headers": {"content-type": "..."}, "body": ...}`, where the
//! body is parsed JSON when the response says it is JSON, text otherwise. Any status is a
//! successful run: branch on `out.status` downstream.
//!
//! The node declares the `http` capability; the host only lets it reach the hosts an
//! administrator allowed. A refused request is a `denied` error, an unreachable or timed-out
//! remote a retryable `failed` error.

use std::time::Duration;

use serde_json::{Map, Value};
use weft_sdk::http::{Request, Response};
use weft_sdk::node::prelude::*;

/// The `http-request` node.
pub struct HttpRequest;

/// Config of `http-request`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Absolute `http://` or `https://` URL.
    pub url: String,
    /// Method (default `GET`).
    #[serde(default = "get")]
    pub method: String,
    /// Request headers.
    #[serde(default)]
    pub headers: Map<String, Value>,
    /// Request body (replaced by input `in` when connected).
    pub body: Option<Value>,
    /// Timeout for connecting and for each wait on the response, in milliseconds.
    pub timeout_ms: Option<u64>,
}

fn get() -> String {
    "GET".into()
}

/// Builds the request from the config and the optional body override.
pub fn build(config: &Config, body: Option<Value>) -> Result<Request, NodeError> {
    if !config.method.bytes().all(|b| b.is_ascii_alphabetic()) || config.method.is_empty() {
        return Err(NodeError::invalid_config(format!(
            "method {:?} is not an HTTP method",
            config.method
        )));
    }
    let mut request = Request::new(&config.method.to_ascii_uppercase(), &config.url);
    let mut has_content_type = false;
    for (name, value) in &config.headers {
        let Value::String(value) = value else {
            return Err(NodeError::invalid_config(format!(
                "header `{name}` must be a string"
            )));
        };
        has_content_type |= name.eq_ignore_ascii_case("content-type");
        request = request.header(name, value);
    }
    match body.or_else(|| config.body.clone()) {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => request = request.body(text),
        Some(json) => {
            if !has_content_type {
                request = request.header("content-type", "application/json");
            }
            request = request.body(json.to_string());
        }
    }
    if let Some(ms) = config.timeout_ms {
        request = request.timeout(Duration::from_millis(ms));
    }
    Ok(request)
}

/// The `out` value for a response.
pub fn response_json(response: &Response) -> Value {
    let mut headers = Map::new();
    for (name, value) in &response.headers {
        match headers.get_mut(name) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(value);
            }
            _ => {
                headers.insert(name.clone(), Value::String(value.clone()));
            }
        }
    }
    let body = if response.is_json() {
        response
            .json::<Value>()
            .unwrap_or_else(|_| Value::String(response.text()))
    } else {
        Value::String(response.text())
    };
    json!({ "status": response.status, "headers": headers, "body": body })
}

impl Node for HttpRequest {
    type Config = Config;

    fn describe() -> Description {
        Description::new(
            "http-request",
            "0.1.0",
            "Sends an HTTP request (to hosts an administrator allowed) and outputs the response",
        )
        .input(
            Port::new("in", Kind::Any)
                .optional()
                .summary("request body, replacing config.body"),
        )
        .output(Port::new("out", Kind::Object).summary("{status, headers, body}"))
        .capability("http")
        .config_schema(json!({
            "type": "object",
            "required": ["url"],
            "properties": {
                "url": { "type": "string", "pattern": "^[hH][tT][tT][pP][sS]?://" },
                "method": { "type": "string", "default": "GET" },
                "headers": {
                    "type": "object",
                    "additionalProperties": { "type": "string" }
                },
                "body": { "description": "a string is sent as is, anything else as JSON" },
                "timeout_ms": { "type": "integer", "minimum": 1 }
            },
            "additionalProperties": false
        }))
    }

    fn run(config: Config, inputs: Inputs) -> Result<Outputs, NodeError> {
        let request = build(&config, inputs.opt_json("in")?)?;
        weft_sdk::debug!("{} {}", config.method, config.url);
        let response = request.send().map_err(|err| match err {
            // A bad URL comes from the config, not from the data.
            weft_sdk::http::Error::InvalidRequest(m) => NodeError::invalid_config(m),
            other => other.into(),
        })?;
        Ok(Outputs::new().json("out", response_json(&response)))
    }
}

weft_sdk::export_node!(HttpRequest);

#[cfg(test)]
mod tests {
    use super::*;

    fn config(value: Value) -> Config {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn rejects_bad_methods_and_headers() {
        let err = build(&config(json!({"url": "http://h/", "method": "GE T"})), None).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidConfig);
        let err = build(
            &config(json!({"url": "http://h/", "headers": {"x": 1}})),
            None,
        )
        .unwrap_err();
        assert!(err.message.contains("header `x`"), "{}", err.message);
    }

    #[test]
    fn builds_json_and_text_bodies() {
        let c = config(json!({"url": "http://h/", "method": "post", "body": {"a": 1}}));
        let request = format!("{:?}", build(&c, None).unwrap());
        assert!(request.contains("\"POST\""), "{request}");
        assert!(request.contains("application/json"), "{request}");
        let request = format!("{:?}", build(&c, Some(json!("raw"))).unwrap());
        assert!(!request.contains("application/json"), "{request}");
    }

    #[test]
    fn response_body_is_parsed_when_json() {
        let response = Response {
            status: 201,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("set-cookie".into(), "a=1".into()),
                ("set-cookie".into(), "b=2".into()),
            ],
            body: br#"{"id": 7}"#.to_vec(),
        };
        assert_eq!(
            response_json(&response),
            json!({
                "status": 201,
                "headers": {"content-type": "application/json", "set-cookie": "a=1, b=2"},
                "body": {"id": 7}
            })
        );
        let text = Response {
            status: 500,
            headers: vec![],
            body: b"oops".to_vec(),
        };
        assert_eq!(response_json(&text)["body"], json!("oops"));
    }

    #[test]
    fn declares_http() {
        assert_eq!(HttpRequest::describe().capabilities, ["http"]);
    }

    #[test]
    fn outside_a_host_the_request_fails_cleanly() {
        let err =
            weft_sdk::node::call::<HttpRequest>(r#"{"url": "http://127.0.0.1:9/"}"#, Inputs::new())
                .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Failed);
    }
}

//! The one error type of Weft's domain services, carrying a stable [`Code`].
//!
//! Services return [`Error`]; the API layer turns it into the JSON error shape
//! `{"code","message","details","hint"}`. Nothing here knows about HTTP beyond the status number
//! recorded in the code table.

mod codes;

pub(crate) use codes::Code;

use serde_json::Value;
use std::fmt;

/// A failure with a stable code, a human message and optional structured details and hint.
#[derive(Debug, Clone)]
pub struct Error {
    pub code: Code,
    pub message: String,
    pub details: Option<Value>,
    pub hint: Option<String>,
}

/// The result type of Weft's services.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
            hint: None,
        }
    }

    /// Attach structured details (a JSON object) for clients to act on.
    pub fn details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Attach a hint: what the caller can do about it.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The error as a plugin sees it through a host import: its stable code first, then the
    /// message and the hint (`10101: no room ... (hint: ...)`).
    pub(crate) fn for_guest(&self) -> String {
        let mut text = format!("{}: {}", self.code.as_string(), self.message);
        if let Some(hint) = &self.hint {
            text.push_str(&format!(" (hint: {hint})"));
        }
        text
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(Code::NotFound, format!("{what} '{id}' not found"))
            .details(serde_json::json!({ "resource": what, "id": id }))
    }

    /// A request field that failed validation; `field` is a JSON path such as `nodes[2].id`.
    pub fn invalid_field(field: &str, reason: impl fmt::Display) -> Self {
        Self::new(
            Code::InvalidField,
            format!("invalid field '{field}': {reason}"),
        )
        .details(serde_json::json!({ "field": field }))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Code::Forbidden, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code.as_string(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        // The store's own words stay in the log; the client learns only that it failed.
        tracing::error!(error = %err, "storage error");
        match err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Error::new(Code::Unavailable, "the database is unavailable")
                    .hint("retry shortly; if it persists, check the database server")
            }
            _ => Error::internal("a storage operation failed"),
        }
    }
}

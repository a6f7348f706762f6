//! Constructors for [`NodeError`].

use super::{ErrorKind, NodeError};

impl NodeError {
    /// An error of `kind`, not retryable.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retryable: false,
        }
    }

    /// The node's config is unusable.
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidConfig, message)
    }

    /// An input value is unusable.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// The node could not do its work.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message)
    }

    /// The host refused a capability.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Denied, message)
    }

    /// Marks the error as worth retrying (for example a timeout talking to a remote service).
    pub fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }

    /// Classifies an error string from a host import: `denied: ...` is a refusal, the rest
    /// a failure.
    pub(crate) fn from_host(message: String) -> Self {
        if message.starts_with("denied") {
            Self::denied(message)
        } else {
            Self::failed(message)
        }
    }
}

//! Constructors for [`NodeError`].

use super::{ErrorKind, NodeError};

impl ErrorKind {
    /// The kind's name in the WIT contract: `invalid-config`, `invalid-input`, `failed` or
    /// `denied`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidConfig => "invalid-config",
            ErrorKind::InvalidInput => "invalid-input",
            ErrorKind::Failed => "failed",
            ErrorKind::Denied => "denied",
        }
    }
}

impl NodeError {
    /// An error of `kind`, not retryable.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retryable: false,
        }
    }

    /// The node's config is unusable (a mistake in the workflow definition).
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidConfig, message)
    }

    /// An input value is unusable (a mistake upstream or in the data).
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// The node could not do its work; running it again will not help.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message)
    }

    /// The node could not do its work this time, but a retry may succeed (for example a
    /// remote service timed out). The host retries according to the workflow's policy.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::failed(message).with_retryable(true)
    }

    /// The host refused a capability the node needs.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Denied, message)
    }

    /// Sets whether running the node again with the same config and inputs may succeed.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_set_kind_and_retry() {
        let err = NodeError::retryable("timeout");
        assert_eq!((err.kind, err.retryable), (ErrorKind::Failed, true));
        assert!(!NodeError::invalid_input("x").retryable);
        assert_eq!(
            NodeError::from_host("denied: no".into()).kind,
            ErrorKind::Denied
        );
        assert_eq!(
            NodeError::from_host("missing".into()).kind,
            ErrorKind::Failed
        );
    }
}

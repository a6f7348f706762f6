//! What can go wrong loading or calling a plugin. Every variant is the plugin's fault or a limit,
//! never a host failure: the host reports it and carries on.

/// Why bytes could not become a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not a WebAssembly binary")]
    NotWasm,
    #[error("this is a core WebAssembly module, not a component")]
    CoreModule,
    #[error("invalid component: {0}")]
    Invalid(String),
    #[error("the component does not fit the {world} world: {reason}")]
    WrongWorld { world: &'static str, reason: String },
    #[error("the component's description is unusable: {0}")]
    BadDescription(String),
    #[error("describing the component failed: {0}")]
    Describe(Box<CallError>),
    #[error("cannot use the compiled-component cache: {0}")]
    Cache(String),
}

/// Why a call into a plugin failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The node ran and reported a typed failure.
    #[error("{kind}: {message}")]
    Node {
        kind: String,
        message: String,
        retryable: bool,
    },
    #[error("the call ran longer than its time limit of {limit_ms} ms")]
    Timeout { limit_ms: u64 },
    #[error("the call used more than its CPU limit of {limit_ms} ms")]
    CpuLimit { limit_ms: u64 },
    #[error("the plugin tried to use more than its memory limit of {limit_bytes} bytes")]
    MemoryLimit { limit_bytes: u64 },
    #[error("the plugin panicked: {message}")]
    Panic { message: String },
    #[error("the plugin trapped: {message}")]
    Trap { message: String },
    /// Inputs given to the call do not match the declared ports.
    #[error("invalid inputs: {0}")]
    BadInputs(String),
    /// The plugin returned something that does not match what it declared.
    #[error("invalid outputs: {0}")]
    BadOutputs(String),
    /// The strategy refused (for example no healthy instance).
    #[error("{0}")]
    Refused(String),
    /// No instance slot is free right now.
    #[error("the runtime is at capacity: {0}")]
    Capacity(String),
}

impl CallError {
    /// A stable, short name for the failure, for APIs and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Node { .. } => "node-error",
            CallError::Timeout { .. } => "timeout",
            CallError::CpuLimit { .. } => "cpu-limit",
            CallError::MemoryLimit { .. } => "memory-limit",
            CallError::Panic { .. } => "panic",
            CallError::Trap { .. } => "trap",
            CallError::BadInputs(_) => "bad-inputs",
            CallError::BadOutputs(_) => "bad-outputs",
            CallError::Refused(_) => "refused",
            CallError::Capacity(_) => "capacity",
        }
    }

    /// Whether trying again may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            CallError::Node { retryable, .. } => *retryable,
            CallError::Timeout { .. } | CallError::Capacity(_) => true,
            _ => false,
        }
    }
}

/// Turns a wasmtime error into one line with its whole cause chain.
pub(crate) fn chain(err: &wasmtime::Error) -> String {
    err.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

//! What can go wrong loading or calling a plugin. Every variant is the plugin's fault or a limit,
//! never a host failure: the host reports it and carries on.

/// Why bytes could not become a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not WebAssembly at all.
    #[error("not a WebAssembly binary")]
    NotWasm,
    /// A core module, not built as a component (wasm32-wasip2).
    #[error("this is a core WebAssembly module, not a component")]
    CoreModule,
    /// A component wasmtime refuses to compile.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// A component that exports neither world, both, or the contract's names with other types.
    #[error("the component does not fit the {world} world: {reason}")]
    WrongWorld {
        /// The world it was checked against.
        world: &'static str,
        /// What does not fit.
        reason: String,
    },
    /// A description with an unusable name, version, port or schema.
    #[error("the component's description is unusable: {0}")]
    BadDescription(String),
    /// `describe` failed (trapped, or went past its limits).
    #[error("describing the component failed: {0}")]
    Describe(Box<CallError>),
    /// The compiled-component cache could not be written.
    #[error("cannot use the compiled-component cache: {0}")]
    Cache(String),
}

/// Why a call into a plugin failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The node ran and reported a typed failure.
    #[error("{kind}: {message}")]
    Node {
        /// The node's error kind (`invalid-config`, `invalid-input`, ...).
        kind: String,
        /// The node's message.
        message: String,
        /// Whether the node says trying again may succeed.
        retryable: bool,
    },
    /// The call went past its wall-clock limit.
    #[error("the call ran longer than its time limit of {limit_ms} ms")]
    Timeout {
        /// The limit, in milliseconds.
        limit_ms: u64,
    },
    /// The call went past its CPU limit.
    #[error("the call used more than its CPU limit of {limit_ms} ms")]
    CpuLimit {
        /// The limit, in milliseconds.
        limit_ms: u64,
    },
    /// The plugin tried to grow its memory past its limit.
    #[error("the plugin tried to use more than its memory limit of {limit_bytes} bytes")]
    MemoryLimit {
        /// The limit, in bytes.
        limit_bytes: u64,
    },
    /// The plugin panicked (its panic message read from stderr).
    #[error("the plugin panicked: {message}")]
    Panic {
        /// The panic message and location.
        message: String,
    },
    /// The plugin trapped without a panic message (or exited).
    #[error("the plugin trapped: {message}")]
    Trap {
        /// The trap, and the tail of stderr if any.
        message: String,
    },
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

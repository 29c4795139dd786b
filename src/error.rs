//! One error type for the whole runtime. Every variant maps to the JavaScript `Error.name`
//! the API contract promises (see [`Error::name`]), so native and browser users see the same
//! failure vocabulary.

use crate::lifecycle::{Action, KernelState};

/// Everything the runtime can refuse or fail with. Display text is short and names the kernel,
/// state or field involved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("kernel '{id}' not found")]
    KernelNotFound { id: String },

    #[error("kernel '{id}' is {state}: cannot {action}")]
    KernelState { id: String, state: KernelState, action: Action },

    #[error("queue of kernel '{id}' is full ({capacity} messages)")]
    QueueFull { id: String, capacity: usize },

    #[error("{operation} on kernel '{id}' timed out after {timeout_ms} ms")]
    Timeout { id: String, operation: String, timeout_ms: f64 },

    #[error("malformed message for kernel '{id}': field '{field}' {problem}")]
    MessageFormat { id: String, field: String, problem: String },

    #[error("kernel '{id}' failed to compile{}: {message}", location(*.line, *.column))]
    KernelCompile { id: String, message: String, line: Option<u32>, column: Option<u32> },

    #[error("kernel '{id}' dropped the message of this call (its handler returned false)")]
    MessageDropped { id: String },

    #[error("no GPU backend available: {reason}")]
    BackendUnavailable { reason: String },

    #[error("GPU device lost: {reason}")]
    DeviceLost { reason: String },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

fn location(line: Option<u32>, column: Option<u32>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

impl Error {
    /// Every contract name [`name`](Self::name) gives, except `TypeError` (bad arguments).
    pub const NAMES: [&'static str; 9] = [
        "KernelNotFoundError",
        "KernelStateError",
        "QueueFullError",
        "TimeoutError",
        "MessageFormatError",
        "KernelCompileError",
        "MessageDroppedError",
        "BackendUnavailableError",
        "DeviceLostError",
    ];

    /// The `Error.name` JavaScript sees; stable, part of the API contract.
    pub fn name(&self) -> &'static str {
        match self {
            Error::KernelNotFound { .. } => "KernelNotFoundError",
            Error::KernelState { .. } => "KernelStateError",
            Error::QueueFull { .. } => "QueueFullError",
            Error::Timeout { .. } => "TimeoutError",
            Error::MessageFormat { .. } => "MessageFormatError",
            Error::KernelCompile { .. } => "KernelCompileError",
            Error::MessageDropped { .. } => "MessageDroppedError",
            Error::BackendUnavailable { .. } => "BackendUnavailableError",
            Error::DeviceLost { .. } => "DeviceLostError",
            Error::InvalidArgument(_) => "TypeError",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

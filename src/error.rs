//! One error type for the whole runtime, with a [`kind`](Error::kind) to match on.
//!
//! Display text is short and names the kernel, state or field involved. How each kind is
//! presented to JavaScript (an `Error` subclass name) is the wasm layer's business, not this
//! module's.

use crate::lifecycle::{Action, IllegalTransition, KernelState};

/// Everything the runtime can refuse or fail with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// No kernel (or registered definition) has this id.
    #[error("kernel '{id}' not found")]
    KernelNotFound {
        /// The id that was looked up.
        id: String,
    },

    /// The kernel's state does not allow the action (see [`crate::lifecycle`]).
    #[error("kernel '{id}' is {state}: cannot {action}")]
    KernelState {
        /// The kernel the error is about.
        id: String,
        /// The state the kernel was in.
        state: KernelState,
        /// The action that state refused.
        action: Action,
    },

    /// The input queue stayed full until the timeout.
    #[error("queue of kernel '{id}' is full ({capacity} messages)")]
    QueueFull {
        /// The kernel whose input queue is full.
        id: String,
        /// The queue's capacity, in messages.
        capacity: usize,
    },

    /// A receive, call or terminate outlasted its timeout.
    #[error("{operation} on kernel '{id}' timed out after {timeout_ms} ms")]
    Timeout {
        /// The kernel the error is about.
        id: String,
        /// What timed out: `call`, `receive` or `terminate` (with what it left unprocessed).
        operation: String,
        /// The timeout that ran out, in milliseconds.
        timeout_ms: f64,
    },

    /// A message that does not fit the kernel's layout; `field` is the path of the bad field.
    #[error("malformed message for kernel '{id}': field '{field}' {problem}")]
    MessageFormat {
        /// The kernel the message was for.
        id: String,
        /// Path of the bad field, or the message's (or Rust type's) name when the whole of it is wrong.
        field: String,
        /// What is wrong with it, phrased to follow the field name.
        problem: String,
    },

    /// The kernel's WGSL (or its host handler) was refused; `line`/`column` are in the user's
    /// own source when the compiler gave a position.
    #[error("kernel '{id}' failed to compile{}: {message}", location(*.line, *.column))]
    KernelCompile {
        /// The kernel that failed to compile.
        id: String,
        /// What the compiler (or the handler check) said.
        message: String,
        /// 1-based line in the user's source, if known.
        line: Option<u32>,
        /// 1-based column in the user's source, if known.
        column: Option<u32>,
    },

    /// The handler dropped the message of this `call`, so it has no answer.
    #[error("kernel '{id}' dropped the message of this call (its handler returned false)")]
    MessageDropped {
        /// The kernel whose handler dropped the message.
        id: String,
    },

    /// No adapter (or the runtime was disposed); `reason` says what was tried.
    #[error("no GPU backend available: {reason}")]
    BackendUnavailable {
        /// What was tried and why it failed, or that the runtime was disposed.
        reason: String,
    },

    /// The GPU device was lost; kernels wait for recovery.
    #[error("GPU device lost: {reason}")]
    DeviceLost {
        /// Why the device was lost, as reported.
        reason: String,
    },

    /// An argument out of its range or of the wrong shape.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Which kind of [`Error`] this is, without its details: what callers match on, and what the
/// JavaScript layer turns into an error class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// [`Error::KernelNotFound`].
    KernelNotFound,
    /// [`Error::KernelState`].
    KernelState,
    /// [`Error::QueueFull`].
    QueueFull,
    /// [`Error::Timeout`].
    Timeout,
    /// [`Error::MessageFormat`].
    MessageFormat,
    /// [`Error::KernelCompile`].
    KernelCompile,
    /// [`Error::MessageDropped`].
    MessageDropped,
    /// [`Error::BackendUnavailable`].
    BackendUnavailable,
    /// [`Error::DeviceLost`].
    DeviceLost,
    /// [`Error::InvalidArgument`].
    InvalidArgument,
}

fn location(line: Option<u32>, column: Option<u32>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

impl Error {
    /// The kind of error, for matching without destructuring.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::KernelNotFound { .. } => ErrorKind::KernelNotFound,
            Error::KernelState { .. } => ErrorKind::KernelState,
            Error::QueueFull { .. } => ErrorKind::QueueFull,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::MessageFormat { .. } => ErrorKind::MessageFormat,
            Error::KernelCompile { .. } => ErrorKind::KernelCompile,
            Error::MessageDropped { .. } => ErrorKind::MessageDropped,
            Error::BackendUnavailable { .. } => ErrorKind::BackendUnavailable,
            Error::DeviceLost { .. } => ErrorKind::DeviceLost,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
        }
    }

    /// Whether a failed message operation with this error counts in the kernel's `errors`:
    /// the message was refused or its wait ran out. Lifecycle refusals and device loss are
    /// reported elsewhere (the state, the device health).
    pub(crate) fn counts_against_kernel(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::MessageFormat | ErrorKind::QueueFull | ErrorKind::Timeout | ErrorKind::KernelState
        )
    }
}

impl IllegalTransition {
    /// The refusal as the runtime reports it, naming the kernel.
    pub fn for_kernel(self, id: &str) -> Error {
        Error::KernelState { id: id.to_owned(), state: self.state, action: self.action }
    }
}

/// The runtime's `Result`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

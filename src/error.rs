//! One error type for the whole runtime, with a [`kind`](Error::kind) to match on.
//!
//! Display text is short and names the kernel, state or field involved. How each kind is
//! presented to JavaScript (an `Error` subclass name) is the wasm layer's business, not this
//! module's.

use crate::degradation::DegradationLevel;
use crate::lifecycle::{Action, IllegalTransition, KernelState};

/// Everything the runtime can refuse or fail with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No kernel (or registered definition) has this id.
    #[error("kernel {} not found", Quoted(id))]
    #[non_exhaustive]
    KernelNotFound {
        /// The id that was looked up.
        id: String,
    },

    /// The kernel's state does not allow the action (see [`crate::lifecycle`]).
    #[error("kernel {} is {state}: cannot {action}{}", Quoted(id), next_step(*state, *action))]
    #[non_exhaustive]
    KernelState {
        /// The kernel the error is about.
        id: String,
        /// The state the kernel was in.
        state: KernelState,
        /// The action that state refused.
        action: Action,
    },

    /// The input queue was full: at once for a `try_send`, until the timeout for a send that
    /// waits, or with earlier sends waiting in line before it. For a batch, `accepted` says how many of
    /// its messages (from the front) were queued before; those are answered, the rest were not
    /// queued.
    #[error("queue of kernel {} is full ({}){}{}", Quoted(id), messages(*.capacity), batch_part(*.accepted), stall_part(stall))]
    #[non_exhaustive]
    QueueFull {
        /// The kernel whose input queue is full.
        id: String,
        /// The queue's capacity, in messages.
        capacity: usize,
        /// Messages of the refused send that were queued before it gave up (0 for one message).
        accepted: usize,
        /// Why the kernel took none of its queue, when the kernel itself is the reason.
        stall: Option<Stall>,
    },

    /// A receive, call or terminate outlasted its timeout.
    #[error("{operation} on kernel {} timed out after {} ms{}{}", Quoted(id), millis(timeout), unprocessed_part(*.unprocessed), stall_part(stall))]
    #[non_exhaustive]
    Timeout {
        /// The kernel the error is about.
        id: String,
        /// What timed out: `call`, `receive`, `try_receive`, `terminate` or `wait`.
        operation: String,
        /// The timeout that ran out.
        timeout: std::time::Duration,
        /// Messages a `terminate` that timed out left unprocessed (0 for other operations).
        unprocessed: u64,
        /// Why the kernel answered nothing, when it had input and the kernel itself is the
        /// reason (a call or receive that timed out).
        stall: Option<Stall>,
    },

    /// A message that does not fit the kernel's layout; `field` is the path of the bad field.
    #[error("malformed message for kernel {}: {} {problem}", Quoted(id), subject(field))]
    #[non_exhaustive]
    MessageFormat {
        /// The kernel the message was for.
        id: String,
        /// Path of the bad field, or the message's (or Rust type's) name when the whole of it is
        /// wrong; in a batch of messages, led by the message's index (`[3].value`, `[3]`).
        field: String,
        /// What is wrong with it, phrased to follow the field name.
        problem: String,
    },

    /// The kernel's WGSL (or its host handler) was refused; `line`/`column` are in the user's
    /// own source when the compiler gave a position (1-based; the column in characters).
    #[error("kernel {} failed to compile{}: {message}", Quoted(id), location(*.line, *.column))]
    #[non_exhaustive]
    KernelCompile {
        /// The kernel that failed to compile.
        id: String,
        /// What the compiler (or the handler check) said.
        message: String,
        /// 1-based line in the user's source, if known.
        line: Option<u32>,
        /// 1-based column in the user's source, if known, in characters (naga and wgpu count
        /// UTF-8 bytes, which the runtime converts).
        column: Option<u32>,
    },

    /// The handler dropped the message of this `call` (a handler that may drop chose to, or a
    /// host handler failed on it), so it has no answer.
    #[error("kernel {} dropped the message of this call: {}", Quoted(id), .failure.as_deref().unwrap_or("its handler dropped it"))]
    #[non_exhaustive]
    MessageDropped {
        /// The kernel whose handler dropped the message.
        id: String,
        /// Why the host handler failed on this very message (it threw, panicked or answered
        /// malformed); `None` when the handler dropped it on purpose.
        failure: Option<String>,
    },

    /// No adapter; `reason` says what was tried.
    #[error("no GPU backend available: {reason}")]
    #[non_exhaustive]
    BackendUnavailable {
        /// What was tried and why it failed.
        reason: String,
    },

    /// The runtime was disposed; nothing can be done with it any more.
    #[error("the runtime has been disposed")]
    Disposed,

    /// The runtime is draining (see `Runtime::drain`): it finishes what it has and takes no
    /// new launches, sends or calls.
    #[error("the runtime is draining: it takes no more {0}")]
    Draining(&'static str),

    /// The GPU device was lost; kernels wait for recovery.
    #[error("GPU device lost: {reason}")]
    #[non_exhaustive]
    DeviceLost {
        /// Why the device was lost, as reported.
        reason: String,
    },

    /// A kernel was terminated while its device was lost and nothing would recover it:
    /// `unprocessed` of its messages were never processed. Of [`ErrorKind::DeviceLost`].
    #[error("GPU device lost: {reason}; kernel {} stopped with {} unprocessed", Quoted(id), messages(*.unprocessed as usize))]
    #[non_exhaustive]
    StrandedByDeviceLoss {
        /// The kernel.
        id: String,
        /// Why the device was lost, as reported.
        reason: String,
        /// Its messages never processed.
        unprocessed: u64,
    },

    /// The kernel's circuit breaker is open (see [`crate::CircuitState`]): the send, call or
    /// protected operation was refused and nothing of it was queued. Try again after
    /// `retry_after`.
    #[error("circuit of kernel {} is open: retry in {} ms", Quoted(id), crate::platform::Float(millis(retry_after).0.ceil()))]
    #[non_exhaustive]
    CircuitOpen {
        /// The kernel whose circuit refused.
        id: String,
        /// How long until the circuit lets a probe through.
        retry_after: std::time::Duration,
    },
    /// The degradation manager refused a new message for a kernel of too low a priority while
    /// the runtime is loaded (see [`crate::degradation`]). Nothing was accepted: the message
    /// comes back to the sender.
    #[error(
        "kernel {} takes no new messages while the runtime is degraded to {level}: its priority {priority} is \
         below {required}",
        Quoted(id)
    )]
    #[non_exhaustive]
    Overloaded {
        /// The kernel the message was for.
        id: String,
        /// The degradation level that refused it.
        level: DegradationLevel,
        /// The kernel's priority.
        priority: i32,
        /// The priority a kernel needs for its messages to be taken at this level.
        required: i32,
    },

    /// Several kernels of a [`terminate_all`](crate::Runtime::terminate_all) or a drain
    /// failed: each one's own error, in id order (a single failure is that kernel's error
    /// alone), and every message they left unprocessed, summed. Of the first error's kind.
    #[error("{} kernels failed to terminate ({} left unprocessed in all): {}", .errors.len(), messages(*.unprocessed as usize), Each(.errors))]
    #[non_exhaustive]
    SeveralKernels {
        /// Each failed kernel's error, by kernel id.
        errors: Vec<Error>,
        /// The messages they left unprocessed, summed.
        unprocessed: u64,
    },

    /// An argument of the wrong shape (a type error in JavaScript).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A number outside the range its argument allows: a queue size of 0, a negative timeout,
    /// an id too long (a `RangeError` in JavaScript).
    #[error("out of range: {0}")]
    OutOfRange(String),
}

/// Which kind of [`Error`] this is, without its details: what callers match on, and what the
/// JavaScript layer turns into an error class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
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
    /// [`Error::Disposed`].
    Disposed,
    /// [`Error::Draining`].
    Draining,
    /// [`Error::CircuitOpen`].
    CircuitOpen,
    /// [`Error::Overloaded`].
    Overloaded,
    /// [`Error::InvalidArgument`].
    InvalidArgument,
    /// [`Error::OutOfRange`].
    OutOfRange,
}

impl ErrorKind {
    /// The refusals that turn an operation away before its kernel has its message: the
    /// kernel's circuit is open, its queue is full, or the runtime sheds load. None is the
    /// kernel's failure, so a circuit breaker counts none (see
    /// [`CircuitBreaker::execute`](crate::CircuitBreaker::execute)).
    pub(crate) const TURNED_AWAY: [ErrorKind; 3] =
        [ErrorKind::CircuitOpen, ErrorKind::QueueFull, ErrorKind::Overloaded];
}

/// A kernel id as error texts show it: in single quotes, with quotes, backslashes and control
/// characters escaped, so an id can neither end its quote nor start a line of its own, and cut
/// after [`SHOWN_ID_BYTES`] bytes (an id looked up may be any string, a megabyte long).
pub(crate) struct Quoted<'a>(pub &'a str);

/// How much of an id an error text shows: the longest id a kernel may have.
const SHOWN_ID_BYTES: usize = 128;

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        f.write_char('\'')?;
        for (at, c) in self.0.char_indices() {
            if at >= SHOWN_ID_BYTES {
                return write!(f, "…' ({} bytes)", self.0.len());
            }
            match c {
                '\'' | '\\' => write!(f, "\\{c}")?,
                c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => write!(f, "{}", c.escape_unicode())?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('\'')
    }
}

/// `timeout` in milliseconds as a number prints (`0.5`, `1500`, `2.25`), from whole
/// milliseconds and the nanoseconds past them, so whole milliseconds stay exact. Printed as the
/// platform prints floats (JavaScript's shortest digits on the web): printing a `u128` or
/// Rust's `f64` would link their formatting into the wasm for this one number.
fn millis(timeout: &std::time::Duration) -> crate::platform::Float {
    let whole = timeout.as_secs() as f64 * 1000.0 + f64::from(timeout.subsec_millis());
    crate::platform::Float(whole + f64::from(timeout.subsec_nanos() % 1_000_000) / 1e6)
}

/// Several errors' texts, one after another.
struct Each<'a>(&'a [Error]);

impl std::fmt::Display for Each<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            write!(f, "{}{error}", if i == 0 { "" } else { "; " })?;
        }
        Ok(())
    }
}

fn unprocessed_part(unprocessed: u64) -> String {
    match unprocessed {
        0 => String::new(),
        n => format!(" ({} left unprocessed)", messages(n as usize)),
    }
}

/// Why a kernel processes none of its input, named by a `QueueFull` or `Timeout` whose wait it
/// explains: the stall a sender cannot see from its side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stall {
    /// Its output queue is full: it runs no input until its answers are received (or it is
    /// connected to a kernel that takes them).
    OutputFull {
        /// The answers waiting for a receive.
        answers: usize,
    },
    /// It is not active (launched, deactivated, failed): its input waits for `activate` (or
    /// `recover`).
    Inactive(KernelState),
    /// Its answers go to a next stage (see `Runtime::connect`) that is stalled itself (paused,
    /// or its own answers unreceived) and so holds the stages before it.
    NextStageStalled,
    /// For a receive from a later stage of a pipeline: its input waits at an earlier stage,
    /// held by a stage that stalls (paused, or the last stage's answers unreceived) other than
    /// this one.
    UpstreamStalled,
}

impl std::fmt::Display for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stall::OutputFull { answers } => {
                let answers = plural(*answers, "answer", "answers");
                write!(f, "its output queue is full ({answers} nobody has received)")
            }
            Stall::Inactive(state) => write!(f, "it is {state}, not active"),
            Stall::NextStageStalled => f.write_str("its next stage takes none of its answers"),
            Stall::UpstreamStalled => f.write_str("its input waits at an earlier stage that is held"),
        }
    }
}

/// What to do instead, where a refused transition has one plain remedy (empty otherwise).
fn next_step(state: KernelState, action: Action) -> &'static str {
    use Action::*;
    use KernelState::*;
    match (state, action) {
        (Created, _) => " (its launch is still compiling: await it first)",
        (Failed, Launch) | (Launched | Active | Deactivated | Failed, Remove) => " (terminate it first)",
        (Failed, _) => " (its device was lost: recover() first, migrate() it to a working device, or terminate it)",
        (Terminated, Launch) => " (remove() it first to launch the id again)",
        (Launched | Active | Deactivated | Terminating, Launch) => " (the id is taken: launch under another id)",
        (Deactivated, Activate) => " (reactivate() resumes a deactivated kernel)",
        (Launched, Reactivate) => " (activate() starts a launched kernel)",
        _ => "",
    }
}

fn stall_part(stall: &Option<Stall>) -> String {
    match stall {
        Some(stall) => format!("; the kernel processes nothing while {stall}"),
        None => String::new(),
    }
}

/// What an error appends for a batch of which `accepted` messages were queued (nothing for 0).
pub(crate) fn batch_part(accepted: usize) -> String {
    match accepted {
        0 => String::new(),
        n => format!("; {}", first_queued(n)),
    }
}

/// "the first `n` messages of the batch were queued, the rest not", for `n` of 1 or more.
fn first_queued(n: usize) -> String {
    match n {
        1 => "the first message of the batch was queued, the rest not".to_owned(),
        n => format!("the first {n} messages of the batch were queued, the rest not"),
    }
}

/// A [`BatchSendError`]'s text: its count, unless its `QueueFull` already says it.
fn batch_send_text(accepted: usize, error: &Error) -> String {
    match (accepted, error) {
        (1.., Error::QueueFull { accepted: said, .. }) if *said == accepted => error.to_string(),
        (0, _) => format!("none of the batch's messages were queued: {error}"),
        (n, _) => format!("{}: {error}", first_queued(n)),
    }
}

/// `noun` with its indefinite article: "a string", "an object".
pub(crate) fn with_article(noun: &str) -> String {
    // "Uint32Array" and "u32" begin with the sound of "you".
    let you = noun.starts_with("Uint") || noun.starts_with("u32");
    // The first byte: a vowel is ASCII (`starts_with` of a set of `char`s was linked for this alone).
    let vowel =
        matches!(noun.bytes().next(), Some(b'a' | b'e' | b'i' | b'o' | b'u' | b'A' | b'E' | b'I' | b'O' | b'U'));
    let article = if vowel && !you { "an" } else { "a" };
    format!("{article} {noun}")
}

/// `parts` with `sep` between them, as `[String]::join` and `[&str]::join` give them: that
/// `join`'s code (`join_generic_copy`, about 1 KB in the wasm, with a copy for each kind of
/// part) weighs more than this loop's for both kinds.
pub(crate) fn joined<S: AsRef<str>>(parts: &[S], sep: &str) -> String {
    let mut text = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            text.push_str(sep);
        }
        text.push_str(part.as_ref());
    }
    text
}

/// `n` things, in the singular for one.
pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `n` messages, "1 message" for one.
pub(crate) fn messages(n: usize) -> String {
    plural(n, "message", "messages")
}

/// What a `MessageFormat` error is about, as its text names it: a field's path, a message
/// type's (or Rust type's) name, or "(message)" for the message as a whole.
fn subject(field: &str) -> String {
    match field {
        "(message)" => "the message".to_owned(),
        // A whole message of a batch (`[3]`).
        path if path.starts_with('[') && path.ends_with(']') && !path.contains('.') => {
            format!("message {path} of the batch")
        }
        path => format!("'{path}'"),
    }
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
            Error::DeviceLost { .. } | Error::StrandedByDeviceLoss { .. } => ErrorKind::DeviceLost,
            Error::Disposed => ErrorKind::Disposed,
            Error::Draining(_) => ErrorKind::Draining,
            Error::CircuitOpen { .. } => ErrorKind::CircuitOpen,
            Error::Overloaded { .. } => ErrorKind::Overloaded,
            Error::SeveralKernels { errors, .. } => errors.first().map_or(ErrorKind::Timeout, Error::kind),
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::OutOfRange(_) => ErrorKind::OutOfRange,
        }
    }

    /// Messages the kernel (or kernels) this error is about left unprocessed: a `terminate`
    /// or drain out of time, a kernel stranded by a lost device; 0 for every other error.
    pub fn unprocessed(&self) -> u64 {
        match self {
            Error::Timeout { unprocessed, .. }
            | Error::StrandedByDeviceLoss { unprocessed, .. }
            | Error::SeveralKernels { unprocessed, .. } => *unprocessed,
            _ => 0,
        }
    }

    /// Whether a failed message operation with this error counts in the kernel's `errors`:
    /// the message was refused or its wait ran out. Lifecycle refusals and device loss are
    /// reported elsewhere (the state, the device health).
    /// The end of a kernel's answers ([`ends_answers`](Self::ends_answers)) is no failure.
    pub(crate) fn counts_against_kernel(&self) -> bool {
        !self.ends_answers()
            && matches!(
                self.kind(),
                ErrorKind::MessageFormat
                    | ErrorKind::QueueFull
                    | ErrorKind::Timeout
                    | ErrorKind::KernelState
                    | ErrorKind::Overloaded
            )
    }

    /// Whether this refusal of a receive says that no answer will ever come: the kernel
    /// terminated with none left, was removed, or the runtime was shut down. It is how a
    /// `for await` loop or an `answers()` stream ends.
    pub(crate) fn ends_answers(&self) -> bool {
        matches!(
            self,
            Error::KernelState { state: KernelState::Terminated, action: Action::Receive, .. }
                | Error::KernelNotFound { .. }
                | Error::Disposed
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

/// Why [`KernelHandle::send`](crate::KernelHandle::send) refused a message (the kernel does not
/// take messages now, or the runtime is gone). The message comes back unsent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("message not sent: {error}")]
#[non_exhaustive]
pub struct SendError<T> {
    /// The message, unsent.
    pub message: T,
    /// Why.
    pub error: Error,
}

/// Why [`KernelHandle::try_send`](crate::KernelHandle::try_send) did not queue a message. The
/// message comes back unsent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TrySendError<T> {
    /// The input queue is full now (the error is the `QueueFull` that says so).
    #[error("message not sent: {1}")]
    Full(T, Error),
    /// The kernel does not take messages (see [`SendError`]).
    #[error("message not sent: {1}")]
    Refused(T, Error),
}

/// Why [`KernelHandle::send_timeout`](crate::KernelHandle::send_timeout) did not queue a
/// message. The message comes back unsent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SendTimeoutError<T> {
    /// The input queue stayed full for the whole timeout (the error is the `QueueFull`).
    #[error("message not sent: {1}")]
    Timeout(T, Error),
    /// The kernel does not take messages (see [`SendError`]).
    #[error("message not sent: {1}")]
    Refused(T, Error),
}

/// Why a batch was not queued whole: the first `accepted` messages were queued (and will be
/// answered), the rest were not.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", batch_send_text(*.accepted, .error))]
#[non_exhaustive]
pub struct BatchSendError {
    /// How many messages, from the front of the batch, were queued.
    pub accepted: usize,
    /// Why the rest were not (`QueueFull` when the timeout ran out, or the kernel's refusal).
    pub error: Error,
}

/// Why [`KernelHandle::try_receive`](crate::KernelHandle::try_receive) got no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TryReceiveError {
    /// No answer is waiting now (the error is a `Timeout` of zero milliseconds).
    #[error("{0}")]
    Empty(Error),
    /// No answer will come (the kernel terminated with none left, its device was lost, ...).
    #[error(transparent)]
    Refused(Error),
}

/// Why [`KernelHandle::call`](crate::KernelHandle::call) has no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError<T> {
    /// The message was not sent (the queue stayed full, or the kernel does not take messages);
    /// it comes back.
    #[error("call not sent: {1}")]
    NotSent(T, Error),
    /// The message was sent, but no answer came in time, or none will: it was dropped by the
    /// handler, the kernel stopped, the device was lost. Its late answer is discarded.
    #[error("call unanswered: {0}")]
    Unanswered(Error),
}

impl<T> From<SendError<T>> for Error {
    fn from(e: SendError<T>) -> Self {
        e.error
    }
}

impl<T> From<TrySendError<T>> for Error {
    fn from(e: TrySendError<T>) -> Self {
        match e {
            TrySendError::Full(_, error) | TrySendError::Refused(_, error) => error,
        }
    }
}

impl<T> From<SendTimeoutError<T>> for Error {
    fn from(e: SendTimeoutError<T>) -> Self {
        match e {
            SendTimeoutError::Timeout(_, error) | SendTimeoutError::Refused(_, error) => error,
        }
    }
}

impl From<BatchSendError> for Error {
    fn from(e: BatchSendError) -> Self {
        e.error
    }
}

impl From<TryReceiveError> for Error {
    fn from(e: TryReceiveError) -> Self {
        match e {
            TryReceiveError::Empty(error) | TryReceiveError::Refused(error) => error,
        }
    }
}

impl<T> From<CallError<T>> for Error {
    fn from(e: CallError<T>) -> Self {
        match e {
            CallError::NotSent(_, error) | CallError::Unanswered(error) => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// `joined` gives what `[String]::join` and `[&str]::join` give, for no part, one and several.
    #[test]
    fn joined_is_join() {
        for parts in [&[][..], &["one"], &["one", "", "three"], &["é", "ü"]] {
            let owned: Vec<String> = parts.iter().map(|part| part.to_string()).collect();
            for sep in ["", ", ", "; ", " or "] {
                assert_eq!(super::joined(parts, sep), parts.join(sep));
                assert_eq!(super::joined(&owned, sep), owned.join(sep));
            }
        }
    }

    /// "an" before a vowel, "a" before anything else (a "you" sound among them).
    #[test]
    fn articles_go_by_the_first_letter() {
        for (noun, said) in [
            ("object", "an object"),
            ("Int32Array", "an Int32Array"),
            ("undefined", "an undefined"),
            ("string", "a string"),
            ("Uint32Array", "a Uint32Array"),
            ("u32", "a u32"),
            ("éclair", "a éclair"),
            ("", "a "),
        ] {
            assert_eq!(super::with_article(noun), said);
        }
    }

    #[test]
    fn millis_prints_as_millis() {
        for (timeout, shown) in [
            (Duration::ZERO, "0"),
            (Duration::from_micros(500), "0.5"),
            (Duration::from_micros(999), "0.999"),
            (Duration::from_micros(2_250), "2.25"),
            (Duration::from_millis(7), "7"),
            (Duration::from_millis(1000), "1000"),
            (Duration::from_millis(1005), "1005"),
            (Duration::from_millis(61_234), "61234"),
            (Duration::new(61, 234_010_000), "61234.01"),
            (Duration::new(5, 999_000_000), "5999"),
        ] {
            assert_eq!(super::millis(&timeout).to_string(), shown, "{timeout:?}");
        }
    }

    /// Counts of one read in the singular: "(1 message)", not "(1 messages)".
    #[test]
    fn counts_of_one_are_singular() {
        use super::{Error, Stall};
        let full = |capacity, accepted, answers| Error::QueueFull {
            id: "k".into(),
            capacity,
            accepted,
            stall: Some(Stall::OutputFull { answers }),
        };
        assert_eq!(
            full(1, 1, 1).to_string(),
            "queue of kernel 'k' is full (1 message); the first message of the batch was queued, the rest \
             not; the kernel processes nothing while its output queue is full (1 answer nobody has received)"
        );
        assert_eq!(
            full(4, 2, 3).to_string(),
            "queue of kernel 'k' is full (4 messages); the first 2 messages of the batch were queued, the rest \
             not; the kernel processes nothing while its output queue is full (3 answers nobody has received)"
        );
        let batch = |accepted, error| super::BatchSendError { accepted, error }.to_string();
        assert_eq!(batch(2, full(4, 2, 3)), full(4, 2, 3).to_string(), "its QueueFull says the count already");
        assert!(batch(0, full(4, 0, 3)).starts_with("none of the batch's messages were queued: queue of"));
        let refused = || Error::Disposed;
        assert_eq!(
            batch(1, refused()),
            format!("the first message of the batch was queued, the rest not: {}", refused())
        );
        assert_eq!(
            batch(3, refused()),
            format!("the first 3 messages of the batch were queued, the rest not: {}", refused())
        );
        assert_eq!(super::unprocessed_part(1), " (1 message left unprocessed)");
        assert_eq!(super::unprocessed_part(2), " (2 messages left unprocessed)");
    }

    /// An id cannot end its quote, start a line or fill the text: what an error says about
    /// kernel `x' not found; kernel 'y` is one kernel's refusal, on one line.
    #[test]
    fn ids_are_quoted_escaped_and_cut() {
        let not_found = |id: &str| super::Error::KernelNotFound { id: id.into() }.to_string();
        assert_eq!(not_found("doubler"), "kernel 'doubler' not found");
        assert_eq!(not_found("x' not found; kernel 'y"), r"kernel 'x\' not found; kernel \'y' not found");
        assert_eq!(not_found("a\\b\nfake line\u{2028}"), r"kernel 'a\\b\u{a}fake line\u{2028}' not found");
        let long = "é".repeat(500_000);
        let text = not_found(&long);
        assert!(text.len() < 200 && text.ends_with("…' (1000000 bytes) not found"), "{text}");
        assert_eq!(not_found(&"k".repeat(128)), format!("kernel '{}' not found", "k".repeat(128)), "a whole id");
    }
}

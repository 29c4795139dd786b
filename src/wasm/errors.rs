//! Runtime errors as JavaScript sees them: instances of the classes in `js/errors.js`
//! (`RingKernelError` and a subclass per [`ErrorKind`], exported by the package, so `instanceof`
//! works), whose `name` is the contract's, with the details as properties (`kernelId`, `state`,
//! `action`, `accepted`, `unprocessed`, `errors`, `stall`, `field`, `line`, `column`, `retryAfterMs`,
//! `level`, `priority`, `requiredPriority`, and an aborted batch's `cause`) for programmatic handling.
//! Bad arguments are JavaScript's own `TypeError` and `RangeError`.

use js_sys::Reflect;
use wasm_bindgen::prelude::*;

use crate::error::{batch_part, Error, ErrorKind, Quoted, Stall};

#[wasm_bindgen(module = "/src/wasm/js/errors.js")]
extern "C" {
    /// A new instance of the error class `name`, with `message`.
    #[wasm_bindgen(js_name = default)]
    fn ring_kernel_error(name: &str, message: &str) -> js_sys::Error;
}

/// The JavaScript `Error.name` (and class in `js/errors.js`) of a kind; stable, part of the API
/// contract.
fn name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::KernelNotFound => "KernelNotFoundError",
        ErrorKind::KernelState => "KernelStateError",
        ErrorKind::QueueFull => "QueueFullError",
        ErrorKind::Timeout => "TimeoutError",
        ErrorKind::MessageFormat => "MessageFormatError",
        ErrorKind::KernelCompile => "KernelCompileError",
        ErrorKind::MessageDropped => "MessageDroppedError",
        ErrorKind::BackendUnavailable => "BackendUnavailableError",
        ErrorKind::DeviceLost => "DeviceLostError",
        ErrorKind::Disposed => "RuntimeDisposedError",
        ErrorKind::Draining => "RuntimeDrainingError",
        ErrorKind::CircuitOpen => "CircuitOpenError",
        ErrorKind::Overloaded => "OverloadedError",
        ErrorKind::InvalidArgument => "TypeError",
        ErrorKind::OutOfRange => "RangeError",
    }
}

/// Whether `value` is an error of a kind that turned an operation away before its kernel had
/// its message ([`ErrorKind::TURNED_AWAY`]), told by its `name`.
pub(super) fn turned_away(value: &JsValue) -> bool {
    let named = Reflect::get(value, &"name".into()).ok().and_then(|name| name.as_string());
    named.is_some_and(|named| ErrorKind::TURNED_AWAY.iter().any(|&kind| name(kind) == named))
}

/// Converts a runtime error to an instance of its JS class, with its details.
pub(super) fn js_error(error: Error) -> JsValue {
    // Bad arguments are JavaScript's own `TypeError` and `RangeError`, as a built-in's would be.
    match &error {
        Error::InvalidArgument(message) => return type_error(message.clone()),
        Error::OutOfRange(message) => return range_error(message.clone()),
        _ => {}
    }
    let js = ring_kernel_error(name(error.kind()), &error.to_string());
    let set = |key: &str, value: JsValue| {
        let _ = Reflect::set(&js, &key.into(), &value);
    };
    match &error {
        Error::KernelNotFound { id } | Error::MessageDropped { id, .. } => set("kernelId", id.into()),
        Error::Timeout { id, unprocessed, stall, .. } => {
            set("kernelId", id.into());
            set("unprocessed", (*unprocessed as f64).into());
            set_stall(&js, stall);
        }
        // Several kernels of a `terminateAll`, `drain` or `dispose`: the first one's id, their
        // sum, and each one's own error, as an `AggregateError` lists them.
        Error::SeveralKernels { errors, unprocessed } => {
            // Pushed, not collected: each `collect` into an `Array` is an instance of its own.
            let each = js_sys::Array::new();
            for error in errors {
                each.push(&js_error(error.clone()));
            }
            set("kernelId", Reflect::get(&each.get(0), &"kernelId".into()).unwrap_or_default());
            set("unprocessed", (*unprocessed as f64).into());
            set("errors", each.into());
        }
        Error::StrandedByDeviceLoss { id, unprocessed, .. } => {
            set("kernelId", id.into());
            set("unprocessed", (*unprocessed as f64).into());
        }
        Error::QueueFull { id, accepted, stall, .. } => {
            set("kernelId", id.into());
            set("accepted", (*accepted as f64).into());
            set_stall(&js, stall);
        }
        Error::KernelState { id, state, action } => {
            set("kernelId", id.into());
            set("state", state.as_str().into());
            set("action", action.to_string().into());
        }
        Error::Overloaded { id, level, priority, required } => {
            set("kernelId", id.into());
            set("level", level.as_str().into());
            set("priority", (*priority).into());
            set("requiredPriority", (*required).into());
        }
        Error::MessageFormat { id, field, .. } => {
            set("kernelId", id.into());
            set("field", field.into());
        }
        Error::CircuitOpen { id, retry_after } => {
            set("kernelId", id.into());
            set("retryAfterMs", (retry_after.as_secs_f64() * 1000.0).into());
        }
        Error::KernelCompile { id, line, column, .. } => {
            set("kernelId", id.into());
            set("line", line.map_or(JsValue::NULL, JsValue::from));
            set("column", column.map_or(JsValue::NULL, JsValue::from));
        }
        _ => {}
    }
    js.into()
}

/// The `QueueFullError` of a `trySend` refused because an earlier send to kernel `id` still
/// waits to be queued (see `order`): queued now, it would overtake that one.
pub(super) fn behind_earlier_sends(id: &str) -> JsValue {
    queue_full(
        id,
        &format!(
            "kernel {quoted_id} has earlier sends still waiting to be queued: trySend does not overtake them",
            quoted_id = Quoted(id)
        ),
        0,
    )
    .into()
}

/// The `QueueFullError` of a `sendBatch` to kernel `id` whose `signal` aborted while it waited
/// for room, after `accepted` of its messages (from the front) were queued: those are
/// answered, the rest were not queued. The signal's `reason` is its `cause`.
pub(super) fn aborted_batch(id: &str, accepted: usize, reason: JsValue) -> JsValue {
    let queued = match accepted {
        1 => "its first message was queued".to_owned(),
        n => format!("the first {n} of its messages were queued"),
    };
    let message = format!(
        "sendBatch to kernel {quoted_id} was aborted while it waited for room, after {queued}",
        quoted_id = Quoted(id)
    );
    let js = queue_full(id, &message, accepted);
    let _ = Reflect::set(&js, &"cause".into(), &reason);
    js.into()
}

/// A `QueueFullError`'s or `TimeoutError`'s `stall`, when the kernel itself is why it waited:
/// `"outputFull"` (answers nobody receives), `"inactive"` (not active), `"nextStageStalled"` (its
/// next stage takes none of its answers) or `"upstreamStalled"` (a receive's input waits at an
/// earlier stage that is held).
fn set_stall(js: &js_sys::Error, stall: &Option<Stall>) {
    let reason = match stall {
        Some(Stall::OutputFull { .. }) => "outputFull",
        Some(Stall::Inactive(_)) => "inactive",
        Some(Stall::NextStageStalled) => "nextStageStalled",
        Some(Stall::UpstreamStalled) => "upstreamStalled",
        None => return,
    };
    let _ = Reflect::set(js, &"stall".into(), &reason.into());
}

/// The error of a `sendBatch` refused after `accepted` of its messages (from the front) were
/// queued: those are answered. A full queue's error counts them already; any other refusal
/// (the kernel terminated, the runtime disposed, part way) gets the same `accepted` and the
/// same words, so a caller never resends what went in.
pub(super) fn cut_batch(error: Error, accepted: usize) -> JsValue {
    if accepted == 0 || matches!(error, Error::QueueFull { .. }) {
        return js_error(error);
    }
    let message = format!("{error}{}", batch_part(accepted));
    let js = js_error(error);
    let _ = Reflect::set(&js, &"message".into(), &message.into());
    let _ = Reflect::set(&js, &"accepted".into(), &(accepted as f64).into());
    js
}

/// A `QueueFullError` made here (not from the core's error), with its details.
fn queue_full(id: &str, message: &str, accepted: usize) -> js_sys::Error {
    let js = ring_kernel_error(name(ErrorKind::QueueFull), message);
    let _ = Reflect::set(&js, &"kernelId".into(), &id.into());
    let _ = Reflect::set(&js, &"accepted".into(), &(accepted as f64).into());
    js
}

/// Converts the result of an operation that answers nothing: `undefined`, or its JS error.
pub(super) fn js_void(result: Result<(), Error>) -> Result<JsValue, JsValue> {
    result.map(|()| JsValue::UNDEFINED).map_err(js_error)
}

/// A `TypeError` for a bad argument: a real one (`instanceof TypeError`).
pub(super) fn type_error(message: String) -> JsValue {
    js_sys::TypeError::new(&message).into()
}

/// A `RangeError` for a number outside what its argument allows (`instanceof RangeError`).
pub(super) fn range_error(message: String) -> JsValue {
    js_sys::RangeError::new(&message).into()
}

//! Runtime errors as JavaScript sees them: `Error`s whose `name` is the contract's (one per
//! [`ErrorKind`]), with the details as properties (`kernelId`, `state`, `action`, `field`,
//! `line`, `column`) for programmatic handling.

use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::error::{Error, ErrorKind};

/// The `name` of every error the runtime rejects with, except `TypeError` (bad arguments).
const NAMES: [&str; 9] = [
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

/// The JavaScript `Error.name` of a kind; stable, part of the API contract.
fn name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::KernelNotFound => NAMES[0],
        ErrorKind::KernelState => NAMES[1],
        ErrorKind::QueueFull => NAMES[2],
        ErrorKind::Timeout => NAMES[3],
        ErrorKind::MessageFormat => NAMES[4],
        ErrorKind::KernelCompile => NAMES[5],
        ErrorKind::MessageDropped => NAMES[6],
        ErrorKind::BackendUnavailable => NAMES[7],
        ErrorKind::DeviceLost => NAMES[8],
        ErrorKind::InvalidArgument => "TypeError",
    }
}

/// Converts a runtime error to a JS `Error` with the contract's `name` and its details.
pub(super) fn js_error(error: Error) -> JsValue {
    if let Error::InvalidArgument(message) = &error {
        // Bad arguments are JavaScript's own `TypeError`, as a built-in would throw.
        return type_error(message.clone());
    }
    let js = js_sys::Error::new(&error.to_string());
    js.set_name(name(error.kind()));
    let set = |key: &str, value: JsValue| {
        let _ = Reflect::set(&js, &key.into(), &value);
    };
    match &error {
        Error::KernelNotFound { id } | Error::MessageDropped { id } => set("kernelId", id.into()),
        Error::Timeout { id, unprocessed, .. } => {
            set("kernelId", id.into());
            set("unprocessed", (*unprocessed as f64).into());
        }
        Error::QueueFull { id, accepted, .. } => {
            set("kernelId", id.into());
            set("accepted", (*accepted as f64).into());
        }
        Error::KernelState { id, state, action } => {
            set("kernelId", id.into());
            set("state", state.as_str().into());
            set("action", action.to_string().into());
        }
        Error::MessageFormat { id, field, .. } => {
            set("kernelId", id.into());
            set("field", field.into());
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

/// Converts the result of an operation that answers nothing: `undefined`, or its JS error.
pub(super) fn js_void(result: Result<(), Error>) -> Result<JsValue, JsValue> {
    result.map(|()| JsValue::UNDEFINED).map_err(js_error)
}

/// A `TypeError` for a bad argument: a real one (`instanceof TypeError`).
pub(super) fn type_error(message: String) -> JsValue {
    js_sys::TypeError::new(&message).into()
}

/// Whether `error` is one of the runtime's errors (a JS `Error` whose `name` is one of the
/// contract's); the TypeScript declaration narrows on it.
#[wasm_bindgen(js_name = isRingKernelError, skip_typescript)]
pub fn is_ring_kernel_error(error: JsValue) -> bool {
    error.dyn_ref::<js_sys::Error>().is_some_and(|e| NAMES.contains(&String::from(e.name()).as_str()))
}

//! The JavaScript surface: `RingKernelRuntime`, `KernelHandle`, `managedKernel`, `defineMessage`,
//! `ringKernel`.
//! It converts JS values to the core's types and forwards; every behaviour lives in the core, so
//! native users miss nothing.
//!
//! - `runtime`: the `RingKernelRuntime` class ([`JsRuntime`] in Rust);
//! - `handle`: the `KernelHandle` class ([`JsKernelHandle`]), what `launch` resolves with;
//! - `calls`: the asynchronous calls the two share (a handle's are its runtime's, by its id);
//! - `managed`: `managedKernel`;
//! - `operations`: the memory dashboard and the degradation level on `RingKernelRuntime`;
//! - `envelopes`: `sendEnvelope`, `receiveEnvelope` and `currentTimestamp` on `RingKernelRuntime`;
//! - `devices`: several devices on `RingKernelRuntime` (`topology()`, `migrate`, ...);
//! - `definitions`: `defineMessage` and `ringKernel`;
//! - `abort`: `{ signal }`, an `AbortSignal` that ends an operation's wait;
//! - `order`: sends queued in the order they were issued (a kernel's line of sends);
//! - `messages`: JS values ↔ messages, through `codec` (the JavaScript encoders and decoders
//!   of `js/codec.js`) where it can; `host_handler`: JavaScript handlers for the cpu backend;
//! - `options`: option objects; `serialize`: results as JavaScript values; `errors`: runtime errors as instances of the JS classes of
//!   `js/errors.js`;
//! - `types`: the TypeScript declarations wasm-bindgen cannot derive (the envelope types are
//!   in `envelopes`, beside their code).

mod abort;
mod calls;
mod codec;
mod definitions;
mod devices;
mod envelopes;
mod errors;
mod handle;
mod host_handler;
mod managed;
mod messages;
mod operations;
mod options;
mod order;
mod runtime;
mod serialize;
mod types;

pub use definitions::{define_message, ring_kernel};
pub use handle::JsKernelHandle;
pub use managed::{managed_kernel, ManagedKernel};
pub use runtime::JsRuntime;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use errors::type_error;
use messages::{mistyped, shown};

/// Runs when the module is instantiated: panics reach the console with their message. (wasm-bindgen
/// also exports it; it is kept out of the TypeScript declarations, and its name says it is no
/// `start()` of the runtime's lifecycle.)
#[wasm_bindgen(start, skip_typescript)]
fn install_panic_hook() {
    console_error_panic_hook::set_once();
}

/// Serializes telemetry-like values: `None` becomes `null`, maps become plain objects.
fn to_js<T: serde::Serialize>(value: &T) -> Result<JsValue, JsValue> {
    serialize::to_value(value).map_err(|e| type_error(e.to_string()))
}

/// A kernel id from JavaScript: a string, or a `TypeError` naming the argument and what came
/// instead (wasm-bindgen's own conversion would turn `5` into "5" and `undefined` into "").
fn kernel_id(id: &JsValue, argument: &str) -> Result<String, JsValue> {
    match id.as_string() {
        // Read as Rust text, a lone surrogate became U+FFFD: two ids, one kernel. Checked only
        // then (the check reads the string a unit at a time).
        // (`contains` of a non-ASCII char runs `str`'s substring search, linked for nothing else.)
        Some(text)
            if text.chars().any(|c| c == '\u{FFFD}') && !id.unchecked_ref::<js_sys::JsString>().is_valid_utf16() =>
        {
            Err(type_error(format!(
                "{argument} must be a kernel id of well-formed text, got {} (it has a lone surrogate)",
                shown(id)
            )))
        }
        Some(text) => Ok(text),
        None => Err(mistyped(format_args!("{argument} must be a kernel id (a string)"), id)),
    }
}

/// The promise of an async method. Each method's future is boxed here, so the module holds one
/// copy of `future_to_promise`'s machinery rather than one per method (a size matter: the
/// package is measured gzipped).
fn promise(future: impl Future<Output = Result<JsValue, JsValue>> + 'static) -> Promise {
    boxed_promise(Box::pin(future))
}

/// [`promise`]'s one instance of `future_to_promise`.
fn boxed_promise(future: Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>) -> Promise {
    wasm_bindgen_futures::future_to_promise(future)
}

/// The promise of `future`, polled once now and then (if it waits) by its task: what it does
/// before its first wait happens when the method is called, in call order, as a JavaScript
/// async function's first steps do. Every future given here registers its waker anew on each
/// poll.
fn started_promise(mut future: Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>) -> Promise {
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(value)) => Promise::resolve(&value),
        Poll::Ready(Err(error)) => Promise::reject(&error),
        Poll::Pending => boxed_promise(future),
    }
}

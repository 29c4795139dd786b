//! The JavaScript surface: `RingKernelRuntime`, `KernelHandle`, `managedKernel`, `defineMessage`,
//! `ringKernel`.
//! It converts JS values to the core's types and forwards; every behaviour lives in the core, so
//! native users miss nothing.
//!
//! - `runtime`: the `RingKernelRuntime` class ([`JsRuntime`] in Rust);
//! - `handle`: the `KernelHandle` class ([`JsKernelHandle`]), what `launch` resolves with;
//! - `managed`: `managedKernel`;
//! - `definitions`: `defineMessage` and `ringKernel`;
//! - `messages`: JS values ↔ messages; `host_handler`: JavaScript handlers for the cpu backend;
//! - `options`: option objects; `errors`: runtime errors as named JS `Error`s;
//! - `types`: the TypeScript declarations wasm-bindgen cannot derive.

mod definitions;
mod errors;
mod handle;
mod host_handler;
mod managed;
mod messages;
mod options;
mod runtime;
mod types;

pub use definitions::{define_message, ring_kernel};
pub use errors::is_ring_kernel_error;
pub use handle::JsKernelHandle;
pub use managed::{managed_kernel, ManagedKernel};
pub use runtime::JsRuntime;

use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;

use errors::type_error;
use messages::type_name;

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// Makes `await using x = ...` work: the instance's class gets `[Symbol.asyncDispose]`, the
/// very `method` (`dispose`, `terminate`) under the well-known symbol. wasm-bindgen cannot name
/// symbol methods, so it is installed on the prototype at first use.
fn install_async_dispose(instance: &JsValue, method: &str) {
    let Ok(symbol) = Reflect::get(&js_sys::global(), &"Symbol".into())
        .and_then(|symbol_ctor| Reflect::get(&symbol_ctor, &"asyncDispose".into()))
    else {
        return;
    };
    if symbol.is_undefined() {
        return; // engines without explicit resource management still have dispose()
    }
    let prototype = Object::get_prototype_of(instance);
    if !Reflect::has(&prototype, &symbol).unwrap_or(true) {
        if let Ok(dispose) = Reflect::get(&prototype, &method.into()) {
            let _ = Reflect::set(&prototype, &symbol, &dispose);
        }
    }
}

/// Serializes telemetry-like values: `None` becomes `null`, maps become plain objects.
fn to_js<T: serde::Serialize>(value: &T) -> Result<JsValue, JsValue> {
    let serializer =
        serde_wasm_bindgen::Serializer::new().serialize_missing_as_null(true).serialize_maps_as_objects(true);
    value.serialize(&serializer).map_err(|e| type_error(e.to_string()))
}

/// A kernel id from JavaScript: a string, or a `TypeError` naming the argument and what came
/// instead (wasm-bindgen's own conversion would turn `5` into "5" and `undefined` into "").
fn kernel_id(id: &JsValue, argument: &str) -> Result<String, JsValue> {
    id.as_string()
        .ok_or_else(|| type_error(format!("{argument} must be a kernel id (a string), got {}", type_name(id))))
}

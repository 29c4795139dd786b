//! JavaScript functions as host handlers: `ringKernel({ ..., handler })`, run by the `cpu`
//! backend (the seeds' CPU actor model) when a page has no WebGPU.
//!
//! `handler(message, state)` gets the message as the same object `receive` would return and,
//! for kernels with state, the state as a typed array it may update in place. It returns the
//! answer object, or `null`/`undefined` to drop the message. It runs synchronously inside the
//! tick; a throw (or a returned Promise) drops that message, counts an error, and is
//! reported to its `call` and in telemetry's `lastError`; a handler's first throw (once per
//! registered handler) is also shown in the console, its later ones not (10,000 failures made
//! 10,000 lines).

use std::cell::Cell;

use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;

use super::messages::{js_answer, js_message_value, js_state};

#[wasm_bindgen(module = "/src/wasm/js/handler.js")]
extern "C" {
    /// `handler(message, state)`, or `undefined` when it threw (see `take_thrown`).
    #[wasm_bindgen(js_name = callHandler)]
    fn call_handler(handler: &Function, message: &JsValue, state: &JsValue) -> JsValue;
    /// `{ value }` of what the last `call_handler` that threw threw, or `null`.
    #[wasm_bindgen(js_name = takeThrown)]
    fn take_thrown() -> JsValue;
}
use crate::kernel::host::{HostHandler, HostOutcome, HostRun, RunReport};
use crate::message::{MessageLayout, Scalar, Value};

pub(super) struct JsHostHandler {
    function: Function,
    input: MessageLayout,
    output: MessageLayout,
    /// The state's element scalar, when the kernel has state.
    state: Option<Scalar>,
    /// Whether a failure was shown in the console already.
    logged: Cell<bool>,
}

// SAFETY: without the `atomics` target feature a wasm32 module has exactly one thread, so the
// JS function is never touched from another one. A threaded build fails to compile here
// instead of becoming unsound.
#[cfg(not(target_feature = "atomics"))]
unsafe impl Send for JsHostHandler {}
#[cfg(not(target_feature = "atomics"))]
unsafe impl Sync for JsHostHandler {}

impl JsHostHandler {
    pub fn new(function: Function, input: MessageLayout, output: MessageLayout, state: Option<Scalar>) -> Self {
        JsHostHandler { function, input, output, state, logged: Cell::new(false) }
    }

    /// The state words as the typed array the handler sees (a copy; written back after the run).
    fn state_array(&self, words: &[u32]) -> JsValue {
        match self.state {
            Some(scalar) => js_state(scalar, bytemuck::cast_slice(words)),
            None => JsValue::UNDEFINED,
        }
    }

    /// The handler's state array copied back into the kernel's state words (none without state:
    /// reading `buffer` of `undefined` would throw, and each thrown value held a slot in
    /// wasm-bindgen's table of JavaScript values).
    fn write_back(&self, state_array: &JsValue, words: &mut [u32]) {
        if self.state.is_none() {
            return;
        }
        if let Ok(buffer) = Reflect::get(state_array, &"buffer".into()) {
            js_sys::Uint32Array::new(&buffer).copy_to(words);
        }
    }

    fn call(&self, input: &[u8], output: &mut [u8], state: &JsValue) -> HostOutcome {
        let message = js_answer(&self.input, input);
        let answer = call_handler(&self.function, &message, state);
        if answer.is_undefined() {
            let thrown = take_thrown();
            if thrown.is_null() {
                return Ok(false);
            }
            let text = describe(&Reflect::get(&thrown, &"value".into()).unwrap_or_default());
            if !self.logged.replace(true) {
                let note =
                    "(later failures of this handler are counted in telemetry's errors and lastError, not shown)";
                web_sys::console::error_1(&format!("ringkernel-web: a host handler threw: {text} {note}").into());
            }
            return Err(format!("the handler threw: {text}"));
        }
        if answer.is_null() {
            return Ok(false);
        }
        if answer.is_instance_of::<js_sys::Promise>() {
            return Err(
                "the handler returned a Promise: host handlers run synchronously; return the answer object".into()
            );
        }
        let fields = match js_message_value(&answer) {
            Value::Struct(fields) => fields,
            other => {
                return Err(format!(
                    "the handler's answer is malformed: it must be an object, got {}",
                    other.kind_name()
                ))
            }
        };
        self.output
            .encode(fields.iter().map(|(name, value)| (name.as_str(), value)), output)
            .map_err(|e| format!("the handler's answer is malformed: {e}"))?;
        Ok(true)
    }
}

impl HostHandler for JsHostHandler {
    fn handle(&self, input: &[u8], output: &mut [u8], state: &mut [u32]) -> HostOutcome {
        let state_array = self.state_array(state);
        let outcome = self.call(input, output, &state_array);
        self.write_back(&state_array, state);
        outcome
    }

    /// One state copy each way per run, not per message.
    fn handle_run(&self, mut run: HostRun<'_>) -> RunReport {
        let state_array = self.state_array(run.state);
        let report = run.answer_each(|input, output, _| self.call(input, output, &state_array));
        self.write_back(&state_array, run.state);
        report
    }
}

/// `Name: message` for thrown Errors, the string form of anything else.
fn describe(thrown: &JsValue) -> String {
    match thrown.dyn_ref::<js_sys::Error>() {
        Some(error) => format!("{}: {}", String::from(error.name()), String::from(error.message())),
        None => {
            js_sys::JSON::stringify(thrown).ok().and_then(|s| s.as_string()).unwrap_or_else(|| format!("{thrown:?}"))
        }
    }
}

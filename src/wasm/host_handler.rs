//! JavaScript functions as host handlers: `ringKernel({ ..., handler })`, run by the `cpu`
//! backend (the seeds' CPU actor model) when a page has no WebGPU.
//!
//! `handler(message, state)` gets the message as the same object `receive` would return and,
//! for kernels with state, the state as a typed array it may update in place (a copy for the
//! run, written back after it: writes after the handler returned are lost). It returns the
//! answer object, or `null`/`undefined` to drop the message. It runs synchronously inside the
//! tick; a throw (or a returned Promise) drops that message, counts an error, and is
//! reported to its `call` and in telemetry's `lastError`; a handler's first throw (once per
//! registered handler) is also shown in the console, its later ones not (10,000 failures made
//! 10,000 lines). Nothing the handler does throws into the runtime: `js/codec.js` calls it
//! and reads what it threw, and a malformed answer (a getter that throws, say) is refused as
//! one (see `messages`).

use std::cell::Cell;

use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::codec::codec;
use super::messages::{js_answer, js_message_value};

#[wasm_bindgen(module = "/src/wasm/js/codec.js")]
extern "C" {
    /// `handler(message, state)`, or `undefined` when it threw (see `take_thrown`).
    #[wasm_bindgen(js_name = callHandler)]
    fn call_handler(handler: &Function, message: &JsValue, state: &JsValue) -> JsValue;
    /// What the last `call_handler` that threw threw, described, or `None`.
    #[wasm_bindgen(js_name = takeThrown)]
    fn take_thrown() -> Option<String>;
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

    /// The state words as the handler sees them: a typed array over a buffer of its own (a
    /// copy), and a plain view of that buffer kept here, to copy them back after the run
    /// whatever the handler did to its array (gave it another `buffer` property, say).
    fn state_copy(&self, words: &[u32]) -> Option<StateCopy> {
        let scalar = self.state?;
        let buffer = js_sys::ArrayBuffer::new((words.len() * 4) as u32);
        let plain = js_sys::Uint32Array::new(&buffer);
        plain.copy_from(words);
        let array = match scalar {
            Scalar::U32 => plain.clone().into(),
            Scalar::I32 => js_sys::Int32Array::new(&buffer).into(),
            Scalar::F32 => js_sys::Float32Array::new(&buffer).into(),
        };
        Some(StateCopy { array, buffer, plain })
    }

    fn call(&self, input: &[u8], output: &mut [u8], state: &JsValue) -> HostOutcome {
        let message = js_answer(&self.input, input);
        let answer = call_handler(&self.function, &message, state);
        if answer.is_undefined() {
            let Some(text) = take_thrown() else { return Ok(false) };
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
        // The answer's codec writes it straight into its slot; what it does not vouch for is
        // read field by field, to be refused with what is wrong (or packed all the same).
        if codec(&self.output).is_some_and(|codec| codec.encode_one_at(&self.output, &answer, output)) {
            return Ok(true);
        }
        let fields = match js_message_value(&answer) {
            Value::Struct(fields) => fields,
            other => {
                return Err(format!("the handler's answer is malformed: it must be an object, got {}", other.kind()))
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
        let copy = self.state_copy(state);
        let outcome = self.call(input, output, copy.as_ref().map_or(&JsValue::UNDEFINED, |c| &c.array));
        StateCopy::write_back(copy, state)?;
        outcome
    }

    /// One state copy each way per run, not per message.
    fn handle_run(&self, mut run: HostRun<'_>) -> RunReport {
        let copy = self.state_copy(run.state);
        let array = copy.as_ref().map_or(JsValue::UNDEFINED, |c| c.array.clone());
        let report = run.answer_each(|input, output, _| self.call(input, output, &array));
        if let Err(problem) = StateCopy::write_back(copy, run.state) {
            web_sys::console::error_1(&format!("ringkernel-web: {problem}").into());
        }
        report
    }
}

/// A run's copy of a kernel's state (see [`JsHostHandler::state_copy`]).
struct StateCopy {
    /// The typed array the handler gets.
    array: JsValue,
    buffer: js_sys::ArrayBuffer,
    /// The same words, through a view the handler never sees.
    plain: js_sys::Uint32Array,
}

impl StateCopy {
    /// The run's state words back into the kernel's; an error, and the state as it was before
    /// the run, when the handler took the buffer away (transferred or detached it).
    fn write_back(copy: Option<StateCopy>, words: &mut [u32]) -> Result<(), String> {
        let Some(copy) = copy else { return Ok(()) };
        if copy.buffer.byte_length() as usize != 4 * words.len() {
            return Err("the handler took its state's buffer away (transferred or detached it): the state stays as \
                        it was before the run"
                .into());
        }
        copy.plain.copy_to(words);
        Ok(())
    }
}

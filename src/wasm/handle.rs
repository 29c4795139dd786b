//! `KernelHandle`, the JavaScript class: one launched kernel, as `launch` resolves with it and
//! `getKernel` finds it. Every method converts its arguments and forwards to the core's
//! [`KernelHandle`] (its value-level methods); no behaviour lives here. Its TypeScript
//! declaration is generic over the kernel's message descriptions, so it is written by hand in
//! `types.rs`.

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use super::abort::Abort;
use super::errors::{behind_earlier_sends, js_error, js_void};
use super::messages::{js_answer, JsMessage};
use super::{calls, envelopes, options, order, promise, to_js};
use crate::error::{Error, TryReceiveError};
use crate::runtime::{Runtime, DEFAULT_TERMINATE_TIMEOUT};
use crate::KernelHandle;

/// A launched kernel, the JavaScript face of the core's [`KernelHandle`]: the id-based calls of
/// `RingKernelRuntime` as methods, with the seeds' `suspend`/`resume`, `status()`, `wait()` and
/// `[Symbol.asyncDispose]` (terminate, for `await using`).
#[wasm_bindgen(js_name = KernelHandle, skip_typescript)] // declared generic in TS_TYPES
pub struct JsKernelHandle {
    inner: KernelHandle,
}

impl JsKernelHandle {
    /// Wraps a handle from Rust (other wasm crates, tests) for the JS surface.
    pub fn from_handle(handle: KernelHandle) -> Self {
        JsKernelHandle { inner: handle }
    }

    /// The handle as JavaScript gets it.
    pub(super) fn new_js(handle: KernelHandle) -> JsValue {
        Self::from_handle(handle).into()
    }

    /// The runtime, for the calls this handle shares with it (`calls`), reaching this handle's
    /// launch only: a call that starts a microtask later, after a remove and a launch under the
    /// id, finds it gone (see `Runtime::kernel_in`).
    fn runtime(&self) -> Runtime {
        self.inner.pinned_runtime().clone()
    }

    /// The kernel id as those calls take it, or (to return) the promise rejected with
    /// `KernelNotFoundError` once this handle's kernel was removed: a kernel launched since
    /// under the same id is another, which this handle never reaches.
    fn id_js(&self) -> Result<JsValue, Promise> {
        match self.inner.live_id() {
            Ok(id) => Ok(JsValue::from_str(id)),
            Err(removed) => Err(Promise::reject(&js_error(removed))),
        }
    }
}

/// `{ id, state, mode, inputQueueDepth, outputQueueDepth, messagesProcessed, uptimeMs }`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Status<'a> {
    id: &'a str,
    state: &'static str,
    mode: &'static str,
    input_queue_depth: usize,
    output_queue_depth: usize,
    messages_processed: u64,
    uptime_ms: f64,
}

#[wasm_bindgen(js_class = KernelHandle)]
impl JsKernelHandle {
    /// The kernel's id.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.inner.id().to_owned()
    }

    /// The kernel's state now (`KernelNotFoundError` once it is removed).
    #[wasm_bindgen(getter)]
    pub fn state(&self) -> Result<String, JsValue> {
        self.inner.state().map(|state| state.as_str().to_owned()).map_err(js_error)
    }

    /// Queues one message; waits up to `{ timeout }` ms for room, then `QueueFullError`.
    pub fn send(&self, message: JsValue, options: Option<JsValue>) -> Promise {
        match self.id_js() {
            Ok(id) => calls::send(self.runtime(), id, message, options),
            Err(rejected) => rejected,
        }
    }

    /// Queues one message if there is room now; throws `QueueFullError` if not, or while an
    /// earlier send to the kernel still waits to be queued (it never overtakes one).
    #[wasm_bindgen(js_name = trySend)]
    pub fn try_send(&self, message: JsValue) -> Result<(), JsValue> {
        let (runtime, id) = (self.inner.runtime(), self.inner.live_id().map_err(js_error)?);
        if !order::is_clear(runtime, id) {
            // Counted as a `trySend` refused by a full queue is; worded for the line.
            return Err(match runtime.refused_in_line(id) {
                Error::QueueFull { .. } => behind_earlier_sends(id),
                other => js_error(other),
            });
        }
        // Packed by the layout's codec when it vouches for the message, as `send` does.
        let message = JsMessage::read(runtime, id, &message);
        self.inner.try_send_message(message.as_ref()).map_err(js_error)
    }

    /// Queues many messages (objects, or packed bytes), all within `{ timeout }` (resolving
    /// with their count), or `QueueFullError` whose `accepted` says how many were queued.
    #[wasm_bindgen(js_name = sendBatch)]
    pub fn send_batch(&self, messages: JsValue, options: Option<JsValue>) -> Promise {
        match self.id_js() {
            Ok(id) => calls::send_batch(self.runtime(), id, messages, options),
            Err(rejected) => rejected,
        }
    }

    /// Queues one message with an envelope and resolves with the header it was sent with, as
    /// `RingKernelRuntime.sendEnvelope` does.
    #[wasm_bindgen(js_name = sendEnvelope)]
    pub fn send_envelope(&self, message: JsValue, options: Option<JsValue>) -> Promise {
        match self.id_js() {
            Ok(id) => envelopes::send_envelope(self.runtime(), id, message, options),
            Err(rejected) => rejected,
        }
    }

    /// Resolves with `{ message, envelope }`: the next answer and its envelope's header.
    #[wasm_bindgen(js_name = receiveEnvelope)]
    pub fn receive_envelope(&self, options: Option<JsValue>) -> Promise {
        match self.id_js() {
            Ok(id) => envelopes::receive_envelope(self.runtime(), id, options, Some(self.inner.removed_flag())),
            Err(rejected) => rejected,
        }
    }

    /// Resolves with the next answer; `TimeoutError` after `{ timeout }` ms, waits without one;
    /// a `TypeError` at once on a stage connected onward with no answer left.
    pub fn receive(&self, options: Option<JsValue>) -> Promise {
        match self.id_js() {
            Ok(id) => calls::receive(self.runtime(), id, options, Some(self.inner.removed_flag())),
            Err(rejected) => rejected,
        }
    }

    /// Waits in line for the next answer, as `receive` does, and calls `callback(answer)` in the
    /// same step as it takes it: a `callback` that throws leaves the answer queued, and the
    /// promise rejects with what it threw. `callback` must not receive from the kernel itself
    /// (a `TypeError` then, the answer taken by that receive). `readable()` hands answers to
    /// its stream so, so a cancel never takes one. `{ timeout, signal }` as `receive`'s.
    #[wasm_bindgen(js_name = receiveInto)]
    pub fn receive_into(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(answer: any) => void")] callback: JsValue,
        options: Option<JsValue>,
    ) -> Promise {
        match self.id_js() {
            Ok(id) => calls::receive_into(self.runtime(), id, callback, options, Some(self.inner.removed_flag())),
            Err(rejected) => rejected,
        }
    }

    /// The next answer if one is waiting now, or `null`; throws when none will come (the
    /// kernel terminated with none left, its device was lost, ...).
    #[wasm_bindgen(js_name = tryReceive)]
    pub fn try_receive(&self) -> Result<JsValue, JsValue> {
        match self.inner.try_receive_with(js_answer) {
            Ok(answer) => Ok(answer),
            Err(TryReceiveError::Empty(_)) => Ok(JsValue::NULL),
            Err(TryReceiveError::Refused(refused)) => Err(js_error(refused)),
        }
    }

    /// Resolves with up to `{ max }` answers (at least one) as objects, or with `{ packed: true }`
    /// packed in the output layout, as a `Uint8Array`.
    #[wasm_bindgen(js_name = receiveBatch)]
    pub fn receive_batch(&self, options: Option<JsValue>) -> Promise {
        match self.id_js() {
            Ok(id) => calls::receive_batch(self.runtime(), id, options, Some(self.inner.removed_flag())),
            Err(rejected) => rejected,
        }
    }

    /// Sends one message and resolves with its own answer (matched by correlation id);
    /// `{ timeout }` ms covers queue room and the answer.
    pub fn call(&self, message: JsValue, options: Option<JsValue>) -> Promise {
        match self.id_js() {
            Ok(id) => calls::call(self.runtime(), id, message, options),
            Err(rejected) => rejected,
        }
    }

    /// `launched` → `active`, or `deactivated` → `active`.
    pub fn activate(&self) -> Promise {
        let handle = self.inner.clone();
        promise(async move { js_void(handle.activate().await) })
    }

    /// `active` → `deactivated`: nothing more is dispatched; queued input stays.
    pub fn deactivate(&self) -> Promise {
        match self.id_js() {
            Ok(id) => promise(calls::deactivate(self.runtime(), id)),
            Err(rejected) => rejected,
        }
    }

    /// The seeds' name for `deactivate`.
    pub fn suspend(&self) -> Promise {
        self.deactivate()
    }

    /// The seeds' name for `activate`: `deactivated` → `active`, or `launched` → `active`.
    pub fn resume(&self) -> Promise {
        self.activate()
    }

    /// Graceful stop within `{ timeout }` ms (default 5000); also `[Symbol.asyncDispose]`.
    pub fn terminate(&self, options: Option<JsValue>) -> Promise {
        match self.id_js() {
            Ok(id) => promise(calls::terminate(self.runtime(), id, options, Some(DEFAULT_TERMINATE_TIMEOUT))),
            Err(rejected) => rejected,
        }
    }

    /// Resolves once the kernel is terminated (or removed); `{ timeout, signal }` bound the
    /// wait (then a `TimeoutError`, or the signal's reason), the kernel left as it is.
    pub fn wait(&self, options: Option<JsValue>) -> Promise {
        let wait = match options::wait_option(options, "wait options") {
            Ok(wait) => wait,
            Err(error) => return Promise::reject(&error),
        };
        let handle = self.inner.clone();
        Abort::by(wait.signal).promise(async move { js_void(handle.wait_within(wait.timeout).await) })
    }

    /// Its kernel's `state` array as `runtime.readState(id)` reads it, of this launch only.
    #[wasm_bindgen(js_name = readState)]
    pub fn read_state(&self) -> Promise {
        let id = self.inner.live_id().map(str::to_owned).map_err(js_error);
        calls::read_state(self.inner.pinned_runtime().clone(), id)
    }

    /// A copy of its kernel's `state` array in a new `GPUBuffer`, as `runtime.stateToGPU(id)`
    /// makes one, this launch's only.
    #[wasm_bindgen(js_name = stateToGPU, unchecked_return_type = "GPUBuffer")]
    pub fn state_to_gpu(&self) -> Result<JsValue, JsValue> {
        calls::state_to_gpu(self.inner.pinned_runtime(), self.inner.live_id().map_err(js_error)?)
    }

    /// Writes `values` into its kernel's `state` array as `runtime.writeState(id, values,
    /// index)` does, this launch's only.
    #[wasm_bindgen(js_name = writeState, unchecked_return_type = "Promise<void>")]
    pub fn write_state(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint32Array | Int32Array | Float32Array")] values: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "number")] index: Option<JsValue>,
    ) -> Promise {
        let id = self.inner.live_id().map(str::to_owned).map_err(js_error);
        calls::write_state(self.inner.pinned_runtime().clone(), id, values, index)
    }

    /// State, mode, queue depths, messages processed and uptime.
    pub fn status(&self) -> Result<JsValue, JsValue> {
        let status = self.inner.status().map_err(js_error)?;
        to_js(&Status {
            id: &status.id,
            state: status.state.as_str(),
            mode: status.mode.as_str(),
            input_queue_depth: status.input_queue_depth,
            output_queue_depth: status.output_queue_depth,
            messages_processed: status.messages_processed,
            uptime_ms: status.uptime.as_secs_f64() * 1000.0,
        })
    }

    /// Every counter of the kernel, whether or not the runtime keeps telemetry (then the latency
    /// summary is empty).
    pub fn metrics(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.metrics().map_err(js_error)?)
    }
}

//! `RingKernelRuntime`, the JavaScript class: every method converts its arguments, forwards to
//! the core's [`Runtime`] and converts the result; no behaviour lives here.

use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::definitions::kernel_definition;
use super::errors::{js_error, js_void, turned_away};
use super::handle::JsKernelHandle;
use super::messages::mistyped;
use super::options::{self, launch_options, runtime_options, timeout_option, timeout_option_or, watchdog_action};
use super::{calls, envelopes, kernel_id, promise, started_promise, to_js};
use crate::error::Error;
use crate::kernel::KernelDefinition;
use crate::runtime::{LaunchOptions, Runtime, RuntimeOptions, DEFAULT_TERMINATE_TIMEOUT};

/// Promise-based host runtime for ring kernels (the seeds' `RingKernelRuntime`).
#[wasm_bindgen(js_name = RingKernelRuntime)]
pub struct JsRuntime {
    pub(super) inner: Rc<Runtime>,
}

#[wasm_bindgen(js_class = RingKernelRuntime)]
impl JsRuntime {
    /// Opens a WebGPU device (or none, on the `"cpu"` backend). Rejects with
    /// `BackendUnavailableError` when the browser has no WebGPU, explaining how to get it.
    #[wasm_bindgen(unchecked_return_type = "Promise<RingKernelRuntime>")]
    pub fn create(
        #[wasm_bindgen(unchecked_optional_param_type = "RuntimeOptions")] options: Option<JsValue>,
    ) -> Promise {
        promise(async move {
            let options: RuntimeOptions = runtime_options(options)?;
            // The core's checks of options against each other are the options' errors too.
            let runtime = Runtime::new(options).await.map_err(|mut error| {
                if let Error::InvalidArgument(text) | Error::OutOfRange(text) = &mut error {
                    *text = format!("{}: {text}", options::CREATE_OPTIONS);
                }
                error
            });
            let runtime = runtime.map_err(js_error)?;
            Ok(JsRuntime { inner: Rc::new(runtime) }.into())
        })
    }

    /// Launches a kernel: a registered id, or `definition` (from `ringKernel`-style fields), and
    /// resolves with its `KernelHandle`.
    #[wasm_bindgen(skip_typescript)] // declared generic in TS_TYPES
    pub fn launch(&self, id: JsValue, definition: Option<JsValue>, options: Option<JsValue>) -> Promise {
        let rt = self.inner.clone();
        // Started when called: the id is `created` (reserved) before this returns.
        started_promise(Box::pin(async move {
            let id = kernel_id(&id, "id")?;
            let options: LaunchOptions = launch_options(options, rt.options().default_queue_size)?;
            let handle = match launch_definition(&id, definition)? {
                Some(definition) => rt.launch_definition(definition, options).await,
                None => rt.launch(&id, options).await,
            }
            .map_err(js_error)?;
            Ok(JsKernelHandle::new_js(handle))
        }))
    }

    /// A handle to the kernel `id` (launched and not removed), or `null`.
    #[wasm_bindgen(js_name = getKernel, skip_typescript)] // declared generic in TS_TYPES
    pub fn get_kernel(&self, id: JsValue) -> Result<JsValue, JsValue> {
        let id = kernel_id(&id, "id")?;
        Ok(self.inner.get_kernel(&id).map_or(JsValue::NULL, JsKernelHandle::new_js))
    }

    /// `launched` → `active`: the kernel starts processing its queued messages.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn activate(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Promise {
        let rt = self.inner.clone();
        promise(async move {
            let id = kernel_id(&id, "id")?;
            js_void(rt.activate(&id).await)
        })
    }

    /// `active` → `deactivated`: nothing more is dispatched; queued input stays and nothing is dropped.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn deactivate(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Promise {
        promise(calls::deactivate(Runtime::clone(&self.inner), id))
    }

    /// `deactivated` → `active`: queued input is processed, in order.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn reactivate(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Promise {
        promise(calls::reactivate(Runtime::clone(&self.inner), id))
    }

    /// Graceful stop; `{ timeout }` in milliseconds.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn terminate(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "TimeoutOptions")] options: Option<JsValue>,
    ) -> Promise {
        promise(calls::terminate(Runtime::clone(&self.inner), id, options, None))
    }

    /// Terminates every kernel that can be, concurrently, each within `{ timeout }` ms. A
    /// kernel's failure rejects as it is; several kernels' as the first one's class with their
    /// `unprocessed` summed and each one's error in `errors`.
    #[wasm_bindgen(js_name = terminateAll, unchecked_return_type = "Promise<void>")]
    pub fn terminate_all(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "TimeoutOptions")] options: Option<JsValue>,
    ) -> Promise {
        let rt = self.inner.clone();
        promise(async move {
            let timeout = timeout_option(options, "terminateAll options")?;
            js_void(rt.terminate_all(timeout).await)
        })
    }

    /// Routes `from`'s answers into `to`'s input: on the GPU they are copied ring to ring
    /// inside the same submit, so a pipeline of n kernels costs one round trip. `to`'s input
    /// layout must match `from`'s output layout byte for byte. Receive from the last kernel.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn connect(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] from: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] to: JsValue,
    ) -> Promise {
        let rt = self.inner.clone();
        promise(async move {
            let (from, to) = (kernel_id(&from, "from")?, kernel_id(&to, "to")?);
            js_void(rt.connect(&from, &to).await)
        })
    }

    /// Ends `from`'s route; its answers go to `receive` again.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn disconnect(&self, #[wasm_bindgen(unchecked_param_type = "string")] from: JsValue) -> Promise {
        let rt = self.inner.clone();
        promise(async move {
            let from = kernel_id(&from, "from")?;
            js_void(rt.disconnect(&from).await)
        })
    }

    /// Forgets a terminated kernel so its id may be launched again; returns how many of its
    /// answers nobody had received were discarded with it (counted in the shutdown report too).
    pub fn remove(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Result<f64, JsValue> {
        Ok(self.inner.remove(&kernel_id(&id, "id")?).map_err(js_error)? as f64)
    }

    /// Queues one message; waits up to `{ timeout }` ms for room, then `QueueFullError`.
    #[wasm_bindgen(skip_typescript)] // declared generic in TS_TYPES
    pub fn send(&self, id: JsValue, message: JsValue, options: Option<JsValue>) -> Promise {
        calls::send(Runtime::clone(&self.inner), id, message, options)
    }

    /// Queues many messages (objects, or one typed array / ArrayBuffer already packed in the
    /// input layout), in order: all of them within `{ timeout }` (resolving with their count), or
    /// `QueueFullError` whose `accepted` says how many (from the front) were queued.
    #[wasm_bindgen(js_name = sendBatch, skip_typescript)] // declared generic in TS_TYPES
    pub fn send_batch(&self, id: JsValue, messages: JsValue, options: Option<JsValue>) -> Promise {
        calls::send_batch(Runtime::clone(&self.inner), id, messages, options)
    }

    /// Sends one message and resolves with its own answer, matched by correlation id, however
    /// many calls are in flight. `{ timeout }` ms covers queue room (`QueueFullError`) and the
    /// answer (`TimeoutError`).
    #[wasm_bindgen(skip_typescript)] // declared generic in TS_TYPES
    pub fn call(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_param_type = "MessageInput")] message: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "WaitOptions")] options: Option<JsValue>,
    ) -> Promise {
        calls::call(Runtime::clone(&self.inner), id, message, options)
    }

    /// Resolves with the next answer; `TimeoutError` after `{ timeout }` ms, waits without one;
    /// a `TypeError` at once on a stage connected onward with no answer left.
    #[wasm_bindgen(skip_typescript)] // declared generic in TS_TYPES
    pub fn receive(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "WaitOptions")] options: Option<JsValue>,
    ) -> Promise {
        calls::receive(Runtime::clone(&self.inner), id, options, None)
    }

    /// Resolves with up to `{ max }` answers (at least one) as objects, or with `{ packed: true }`
    /// packed in the output layout, as a `Uint8Array`.
    #[wasm_bindgen(js_name = receiveBatch, skip_typescript)] // declared generic in TS_TYPES
    pub fn receive_batch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "ReceiveBatchOptions")] options: Option<JsValue>,
    ) -> Promise {
        calls::receive_batch(Runtime::clone(&self.inner), id, options, None)
    }

    /// Queues one message with an envelope and resolves with the header it was sent with (a
    /// new `messageId`, `destination` = `id`, the runtime's clock's timestamp).
    #[wasm_bindgen(js_name = sendEnvelope, skip_typescript)] // declared generic in TS_ENVELOPES
    pub fn send_envelope(&self, id: JsValue, message: JsValue, options: Option<JsValue>) -> Promise {
        envelopes::send_envelope(Runtime::clone(&self.inner), id, message, options)
    }

    /// Resolves with `{ message, envelope }`: the next answer and its envelope's header.
    #[wasm_bindgen(js_name = receiveEnvelope, skip_typescript)] // declared generic in TS_ENVELOPES
    pub fn receive_envelope(&self, id: JsValue, options: Option<JsValue>) -> Promise {
        envelopes::receive_envelope(Runtime::clone(&self.inner), id, options, None)
    }

    /// The runtime's hybrid logical clock now (a local event: later than every timestamp it
    /// gave before).
    #[wasm_bindgen(js_name = currentTimestamp, unchecked_return_type = "HlcTimestamp")]
    pub fn current_timestamp(&self) -> JsValue {
        envelopes::js_timestamp(self.inner.current_timestamp())
    }

    /// Copies the kernel's `state` array back from the GPU, as a `Uint32Array`, `Int32Array` or
    /// `Float32Array` by its element type; it includes every message answered so far (after a
    /// lost device, a kernel with a `checkpointIntervalMs` holds its last checkpoint). Readable
    /// until the kernel is removed (or the runtime disposed, which releases the device), so
    /// final results survive `terminate`.
    #[wasm_bindgen(js_name = readState, skip_typescript)] // declared generic in TS_TYPES
    pub fn read_state(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Promise {
        calls::read_state(Runtime::clone(&self.inner), kernel_id(&id, "id"))
    }

    /// A new `GPUBuffer` on the kernel's device (`gpuDevice(deviceOf(id))`) holding a copy of
    /// its `state` array as of every tick submitted so far, with the usages `STORAGE`, `VERTEX`,
    /// `COPY_SRC` and `COPY_DST`: to draw or compute from on the GPU without reading it back.
    /// The buffer is the caller's to `destroy()`; the kernel's own state buffer never leaves
    /// the runtime, and the copy is gone with its device (lost, or destroyed by `dispose()`).
    /// Refused as `readState` is, with `BackendUnavailableError` for a kernel on a cpu device,
    /// and with `DeviceLostError` while its device is lost.
    #[wasm_bindgen(js_name = stateToGPU, unchecked_return_type = "GPUBuffer")]
    pub fn state_to_gpu(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> Result<JsValue, JsValue> {
        calls::state_to_gpu(&self.inner, &kernel_id(&id, "id")?)
    }

    /// Writes `values` into the kernel's `state` array from element `index` on (default 0, as
    /// `TypedArray.prototype.set` takes its offset), between ticks: messages the device took
    /// before see the old values, later ones the new, and recovery after a lost device restores
    /// them (with a `checkpointIntervalMs`, a partial write only once the next checkpoint is
    /// taken). A `Uint32Array`, `Int32Array` or `Float32Array` of the state's element type (a
    /// `TypeError` otherwise; a `RangeError` past its end), copied before this returns.
    #[wasm_bindgen(js_name = writeState, unchecked_return_type = "Promise<void>")]
    pub fn write_state(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Uint32Array | Int32Array | Float32Array")] values: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "number")] index: Option<JsValue>,
    ) -> Promise {
        calls::write_state(Runtime::clone(&self.inner), kernel_id(&id, "id"), values, index)
    }

    /// The kernel's state: `created`, `launched`, `active`, `deactivated`, `terminating`,
    /// `terminated` or `failed`.
    #[wasm_bindgen(js_name = getState, unchecked_return_type = "KernelState")]
    pub fn get_state(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Result<String, JsValue> {
        self.inner.state(&kernel_id(&id, "id")?).map(|s| s.as_str().to_owned()).map_err(js_error)
    }

    /// Ids of every kernel launched and not removed, sorted.
    #[wasm_bindgen(getter, js_name = kernelIds)]
    pub fn kernel_ids(&self) -> Vec<String> {
        self.inner.kernel_ids()
    }

    /// Ids of the kernels in the `active` state, sorted.
    #[wasm_bindgen(getter, js_name = activeKernels)]
    pub fn active_kernels(&self) -> Vec<String> {
        self.inner.active_kernels()
    }

    /// The kernel's counters, or `null` when telemetry is disabled.
    #[wasm_bindgen(js_name = getTelemetry, unchecked_return_type = "KernelTelemetry | null")]
    pub fn get_telemetry(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> Result<JsValue, JsValue> {
        match self.inner.telemetry(&kernel_id(&id, "id")?).map_err(js_error)? {
            None => Ok(JsValue::NULL),
            Some(t) => to_js(&t),
        }
    }

    /// Backend, adapter, every kernel with its state and counters, and runtime totals.
    #[wasm_bindgen(js_name = getSummary, unchecked_return_type = "RuntimeSummary")]
    pub fn get_summary(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.summary())
    }

    /// Healthy, degraded or unhealthy, with every finding naming its kernel or resource:
    /// `{ status, reason, issues: [{ severity, subject, kernel?, reason }] }`. Error rates are
    /// since the previous check.
    #[wasm_bindgen(unchecked_return_type = "HealthReport")]
    pub fn health(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.health())
    }

    /// Telemetry of every kernel in Prometheus' text exposition format.
    #[wasm_bindgen(js_name = metricsText)]
    pub fn metrics_text(&self) -> String {
        self.inner.metrics_text()
    }

    /// The kernel's circuit breaker now: `{ state, failures, opened, retryAfterMs }` (always
    /// `"closed"` unless the runtime was created with `circuitBreaker` options).
    #[wasm_bindgen(js_name = circuitBreaker, unchecked_return_type = "CircuitBreakerStatus")]
    pub fn circuit_breaker(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> Result<JsValue, JsValue> {
        to_js(&self.inner.circuit_status(&kernel_id(&id, "id")?).map_err(js_error)?)
    }

    /// Runs `operation` (a function, its result awaited) under the kernel's circuit breaker:
    /// rejects with `CircuitOpenError` without calling it while the circuit is open; otherwise
    /// its rejection (or throw) counts as a failure and its result as a success, but for a
    /// `CircuitOpenError`, `QueueFullError` or `OverloadedError`, which turned the operation
    /// away before the kernel had its message. The circuit is
    /// checked and `operation` called when this is called, so a send it makes is in call order
    /// (and takes a half-open circuit's probe before a send made after this call).
    #[wasm_bindgen(js_name = withCircuitBreaker, skip_typescript)] // declared generic in TS_TYPES
    pub fn with_circuit_breaker(&self, id: JsValue, operation: JsValue) -> Promise {
        let rt = self.inner.clone();
        started_promise(Box::pin(async move {
            let id = kernel_id(&id, "id")?;
            let operation: js_sys::Function = operation
                .dyn_into()
                .map_err(|other: JsValue| mistyped(format_args!("operation must be a function"), &other))?;
            let circuit = rt.circuit_breaker(&id).map_err(js_error)?;
            let protected = || async move {
                let returned = operation.call0(&JsValue::UNDEFINED).map_err(JsFailure)?;
                JsFuture::from(Promise::resolve(&returned)).await.map_err(JsFailure)
            };
            circuit.execute_judged(protected, |failure| !turned_away(&failure.0)).await.map_err(|failure| failure.0)
        }))
    }

    /// Kernels that have input and made no progress for the watchdog's heartbeat timeout, after
    /// the watchdog's action was applied to them: `[{ kernelId, inputDepth, sinceProgressMs,
    /// action }]`, sorted by id.
    #[wasm_bindgen(js_name = scanStaleKernels, unchecked_return_type = "Promise<StaleKernel[]>")]
    pub fn scan_stale_kernels(&self) -> Promise {
        let rt = self.inner.clone();
        promise(async move { to_js(&rt.scan_stale_kernels().await.map_err(js_error)?) })
    }

    /// How long a kernel with input may go without progress before scans call it stale, in ms.
    #[wasm_bindgen(js_name = setHeartbeatTimeout)]
    pub fn set_heartbeat_timeout(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number")] ms: JsValue,
    ) -> Result<(), JsValue> {
        let timeout = options::heartbeat_timeout(&ms)?;
        self.inner.kernel_watchdog().set_heartbeat_timeout(timeout).map_err(js_error)
    }

    /// What scans do with stale kernels: `"report"`, `"deactivate"` or `"recoverDevice"`.
    #[wasm_bindgen(js_name = setWatchdogAction)]
    pub fn set_watchdog_action(
        &self,
        #[wasm_bindgen(unchecked_param_type = "WatchdogAction")] action: JsValue,
    ) -> Result<(), JsValue> {
        self.inner.kernel_watchdog().set_action(watchdog_action(action)?).map_err(js_error)
    }

    /// The adapter this runtime's first device runs on: `{ backend, name, driver, deviceType, features }`
    /// (`topology()` gives every device's).
    #[wasm_bindgen(getter, unchecked_return_type = "AdapterInfo")]
    pub fn adapter(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.adapter())
    }

    /// After the GPU device was lost (kernels are "failed", `getSummary().device.lost` says
    /// why): opens a new device, relaunches the failed kernels with their last state
    /// checkpoint and returns each to the state it was in; messages without an answer are then
    /// processed, in order. Resolves at once if nothing was lost. A kernel the new device
    /// cannot build (one whose handler enables a feature it lacks) stays "failed" while the
    /// others run again: the promise rejects with its error (the first such kernel's), and a
    /// later `recover()` resolves at once and leaves it so. `migrate` runs it on a device that
    /// can (on its own device, it tries to build it again); `terminate` ends it at once.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn recover(&self) -> Promise {
        let rt = self.inner.clone();
        promise(async move { js_void(rt.recover().await) })
    }

    /// `drain` (every kernel terminated gracefully, within 5000 ms each) and
    /// `completeShutdown`: resolves with the shutdown report. When a kernel did not finish in
    /// time (or its device was lost) it rejects with that error (a `TimeoutError` says how many
    /// messages were left unprocessed; several kernels' errors come as one, as `terminateAll`
    /// gives them); the runtime stops all the same, and a later `dispose()`
    /// resolves with the report. After it every operation that would change something rejects
    /// with `RuntimeDisposedError`; reads (`getState`, `getSummary`, ...) answer with the final
    /// state.
    #[wasm_bindgen(unchecked_return_type = "Promise<ShutdownReport>")]
    pub fn dispose(&self) -> Promise {
        let rt = self.inner.clone();
        // New work is refused from this call on, not from when the promise's job first runs.
        let _ = rt.begin_drain(); // stopped already: dispose hands back the report
        promise(async move { to_js(&rt.dispose().await.map_err(js_error)?) })
    }

    /// The runtime's lifecycle: `running`, `draining` (after `drain`) or `stopped`.
    #[wasm_bindgen(getter, js_name = lifecycleState, unchecked_return_type = "LifecycleState")]
    pub fn lifecycle_state(&self) -> String {
        self.inner.lifecycle_state().as_str().to_owned()
    }

    /// Confirms the runtime runs (it does from `create`); a draining or stopped one cannot start.
    pub fn start(&self) -> Result<(), JsValue> {
        self.inner.start().map_err(js_error)
    }

    /// `running → draining`: new launches, sends and calls reject with `RuntimeDrainingError`
    /// from now on; every kernel is terminated gracefully, each within `{ timeout }` ms (default
    /// 5000), so what is queued or in flight is processed. Answers stay receivable.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn drain(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "TimeoutOptions")] options: Option<JsValue>,
    ) -> Promise {
        let rt = self.inner.clone();
        // Bad options change nothing; good ones refuse new work from this call on, not from
        // when the promise's job first runs.
        let begun = timeout_option_or(options, "drain options", Some(DEFAULT_TERMINATE_TIMEOUT)).and_then(|timeout| {
            rt.begin_drain().map_err(js_error)?;
            Ok(timeout)
        });
        // `drain` once begun: each kernel terminated within the timeout (`Infinity`: none).
        promise(async move { js_void(rt.terminate_all(begun?).await) })
    }

    /// `→ stopped` (draining first if that has not begun): resolves with the shutdown report,
    /// the same one on every later call.
    #[wasm_bindgen(js_name = completeShutdown, unchecked_return_type = "Promise<ShutdownReport>")]
    pub fn complete_shutdown(&self) -> Promise {
        let rt = self.inner.clone();
        promise(async move { to_js(&rt.complete_shutdown().await.map_err(js_error)?) })
    }
}

impl JsRuntime {
    /// Wraps a runtime created from Rust (other wasm crates, tests) for the JS surface.
    pub fn from_runtime(runtime: Runtime) -> Self {
        JsRuntime { inner: Rc::new(runtime) }
    }
}

/// `launch(id, definition?)`'s definition: `None` launches the registered `id`.
pub(super) fn launch_definition(id: &str, definition: Option<JsValue>) -> Result<Option<KernelDefinition>, JsValue> {
    definition
        .filter(|d| !d.is_undefined() && !d.is_null())
        .map(|definition| kernel_definition(&definition, Some(id.to_owned())))
        .transpose()
}

/// A protected operation's failure as JavaScript threw it (or the runtime's refusal, as its
/// JavaScript error), for `CircuitBreaker::execute`.
struct JsFailure(JsValue);

impl From<crate::error::Error> for JsFailure {
    fn from(error: crate::error::Error) -> Self {
        JsFailure(js_error(error))
    }
}

//! The JavaScript surface: `RingKernelRuntime`, `defineMessage`, `ringKernel`. It converts JS
//! values to the core's types and forwards; every behaviour lives in [`crate::runtime`], so
//! native users miss nothing. Errors become JS `Error`s whose `name` is the contract's.
//!
//! - this file: TypeScript types, errors, options, the `RingKernelRuntime` class, `managedKernel`;
//! - [`messages`]: JS values ↔ messages;
//! - [`definitions`]: `defineMessage` and `ringKernel`.

mod definitions;
pub use definitions::{define_message, ring_kernel};
mod host_handler;
mod messages;

use std::rc::Rc;

use js_sys::{Array, Object, Promise, Reflect};
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;

use crate::backend::BackendChoice;
use crate::error::Error;
use crate::lifecycle::{KernelMode, KernelState};
use crate::message::Scalar;
use crate::runtime::{LaunchOptions, Runtime, RuntimeOptions, DEFAULT_TERMINATE_TIMEOUT_MS};
use definitions::kernel_definition;
use messages::{borrow_fields, js_message, js_state, message_fields, packed_bytes, type_name};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/**
 * Lifecycle states, in order: created → launched → active ⇄ deactivated → terminating → terminated.
 * "failed": the GPU device was lost; `recover()` returns the kernel to the state it failed in.
 */
export type KernelState = "created" | "launched" | "active" | "deactivated" | "terminating" | "terminated" | "failed";
/** What wakes a kernel: any input (persistent, the default) or only host sends (event-driven). */
export type KernelMode = "persistent" | "event-driven";
/**
 * Where kernels run. "auto" and "webgpu" use the browser's WebGPU; "cpu" runs every kernel's host
 * `handler` instead (for browsers without WebGPU); the rest name native graphics APIs.
 */
export type BackendName = "auto" | "webgpu" | "cpu" | "vulkan" | "metal" | "dx12" | "gl";

export interface RuntimeOptions {
  /** Record latency and report getTelemetry (default true). */
  enableTelemetry?: boolean;
  /** Queue size of kernels launched without their own (default 4096). */
  defaultQueueSize?: number;
  backend?: BackendName;
  /** When the GPU device is lost, open a new one and relaunch the failed kernels without waiting for `recover()` (default false). */
  autoRecover?: boolean;
}
export interface LaunchOptions {
  queueSize?: number; mode?: KernelMode;
  /** Most messages one dispatch handles (default: the queue size); lower it for handlers that run long per message. */
  maxBatch?: number;
}
export interface ManagedKernelOptions { queueSize?: number; mode?: KernelMode; terminateTimeout?: number; }
/** Milliseconds. Without a timeout, the operation waits for as long as it takes. */
export interface TimeoutOptions { timeout?: number; }
export interface ReceiveBatchOptions { max?: number; timeout?: number; }

export interface AdapterInfo { backend: string; name: string; driver: string; deviceType: string; }

/** Send→answer latency in milliseconds; null until an answer has been timed. */
export interface LatencySummary {
  count: number; minMs: number | null; meanMs: number | null; maxMs: number | null;
  p50Ms: number | null; p99Ms: number | null; sumMs: number;
}

export interface KernelTelemetry {
  kernelId: string; state: KernelState; mode: KernelMode; queueSize: number;
  /** Accepted by send, sendBatch and call (host → kernel). */
  messagesSent: number;
  /** Answers handed to receive, receiveBatch and call (kernel → host). */
  messagesReceived: number;
  /** Counted where the handler runs (on the GPU, or on the host for the cpu backend). */
  messagesProcessed: number;
  /** Messages the handler dropped (and, on the cpu backend, those whose handler threw). */
  messagesDropped: number;
  /** Failed message operations: refused messages, timeouts, host handlers that threw. */
  errors: number; errorRate: number;
  /** Dispatches (runs of the handler) of this kernel. */
  dispatches: number;
  inputQueueDepth: number; inFlight: number; outputQueueDepth: number;
  bytesToDevice: number; bytesFromDevice: number; gpuMemoryBytes: number;
  uptimeMs: number;
  /** Processed messages per second of uptime. */
  throughput: number;
  /** Wall clock, ms since the Unix epoch. */
  startTime: number; lastMessageTime: number | null;
  latency: LatencySummary;
  /** Messages left unprocessed when terminate timed out. */
  unprocessedAtTermination: number;
  /** Answers that arrived after their call had timed out. */
  answersAbandoned: number;
  /** Answers routed to the connected kernel instead of `receive`. */
  messagesForwarded: number;
  /** The kernel this one's answers go to (`connect`), or null. */
  connectedTo: string | null;
  /** Why a host handler last failed (cpu backend), or null. */
  lastError: string | null;
}

export interface RuntimeSummary {
  backend: string; adapter: AdapterInfo; telemetryEnabled: boolean; uptimeMs: number;
  kernelCount: number; activeKernels: number;
  /** Pump ticks that did work: one submit and one readback each, for all kernels together. */
  ticks: number;
  /** Messages processed by all kernels. */
  totalMessages: number;
  totalSent: number; totalReceived: number; totalDropped: number; totalErrors: number;
  totalBytesToDevice: number; totalBytesFromDevice: number; aggregateThroughput: number;
  /** GPU buffers the runtime holds and their bytes (back to their start once kernels are terminated and removed). */
  gpuBufferCount: number; gpuBufferBytes: number;
  device: DeviceHealth;
  perKernel: Record<string, KernelTelemetry>;
}

/** Device losses and recoveries. */
export interface DeviceHealth {
  /** Why the device was lost, while kernels wait for recovery; null when healthy. */
  lost: string | null;
  losses: number; recoveries: number; autoRecover: boolean;
  /** Why the last recovery attempt failed, until one succeeds. */
  recoveryError: string | null;
}

/** A message as sent: numbers, arrays or typed arrays of numbers, objects for nested messages. */
export type MessageInput = { [field: string]: number | ArrayLike<number> | ArrayLike<number>[] | MessageInput | MessageInput[] };
/** An answer: numbers, typed arrays (by the field's scalar) for vectors and numeric arrays, objects for nested messages. */
export type MessageOutput = { [field: string]: number | Float32Array | Int32Array | Uint32Array | MessageOutput | MessageOutput[] };

export type ScalarType = "i32" | "u32" | "f32";
export type VectorType = `vec${2 | 3 | 4}<${ScalarType}>`;
/**
 * A field's type: a WGSL scalar or vector, `array<T, N>` of any field type, another message
 * (its description, or the name it was defined under).
 */
export type FieldType = ScalarType | VectorType | `array<${string}, ${number}>` | MessageDescription | (string & {});
/** What defineMessage returns: `{ name, fields: { value: "i32", ... } }`. */
export interface MessageDescription<N extends string = string, F extends Record<string, FieldType> = Record<string, FieldType>> {
  name: N; fields: F;
}

type TypedArrayOf<T> = T extends "f32" ? Float32Array : T extends "i32" ? Int32Array : Uint32Array;
type ElementOf<T extends string> = T extends `array<${infer E}, ${number}>` ? E : never;
/** The JavaScript value `send` takes for a field of type `T`. */
export type FieldInput<T> =
  T extends ScalarType ? number :
  T extends VectorType ? ArrayLike<number> :
  T extends `array<${string}, ${number}>` ? (ElementOf<T> extends ScalarType | VectorType ? ArrayLike<number> | ArrayLike<number>[] : FieldInput<ElementOf<T>>[]) :
  T extends MessageDescription<string, infer F> ? { [K in keyof F]: FieldInput<F[K]> } :
  MessageInput;
/** The JavaScript value `receive` gives for a field of type `T`. */
export type FieldOutput<T> =
  T extends ScalarType ? number :
  T extends `vec${number}<${infer S}>` ? TypedArrayOf<S> :
  T extends `array<${string}, ${number}>` ? (ElementOf<T> extends `vec${number}<${infer S}>` ? TypedArrayOf<S> : ElementOf<T> extends ScalarType ? TypedArrayOf<ElementOf<T>> : FieldOutput<ElementOf<T>>[]) :
  T extends MessageDescription<string, infer F> ? { [K in keyof F]: FieldOutput<F[K]> } :
  MessageOutput;
/** A message of description `D` as `send` takes it: `InputOf<typeof Request>` is `{ value: number }`. */
export type InputOf<D extends MessageDescription> = { [K in keyof D["fields"]]: FieldInput<D["fields"][K]> };
/** A message of description `D` as `receive` gives it (vectors and numeric arrays as typed arrays). */
export type OutputOf<D extends MessageDescription> = { [K in keyof D["fields"]]: FieldOutput<D["fields"][K]> };

/** The kernel's `state` array as a host handler sees it and `readState` returns it. */
export type StateArray = Uint32Array | Int32Array | Float32Array;
/** A kernel's persistent `state` array (zeroed at launch); read it with `readState`. */
export interface StateDefinition { length: number; type?: "atomic<u32>" | "atomic<i32>" | "u32" | "i32" | "f32"; }
/**
 * A kernel's handler in JavaScript, run by the "cpu" backend: gets the message as `receive` would
 * give it and the state array (updated in place), returns the answer, or null/undefined to drop the
 * message. Runs synchronously; a throw drops the message and counts an error.
 */
export type HostHandler<I extends MessageDescription = MessageDescription, O extends MessageDescription = MessageDescription> =
  (message: OutputOf<I>, state: StateArray | undefined) => InputOf<O> | null | undefined;

interface KernelDefinitionBase<I extends MessageDescription, O extends MessageDescription> {
  id?: string;
  input: I | string;
  output: O | string;
  workgroupSize?: number;
  state?: StateDefinition;
}
/**
 * A kernel: `wgsl` (`fn handle(msg: In) -> Out`, or `fn handle(msg: In, out: ptr<function, Out>) -> bool`
 * to drop messages) runs on GPU backends, `handler` on the "cpu" backend; give at least one.
 */
export type KernelDefinitionInput<I extends MessageDescription = MessageDescription, O extends MessageDescription = MessageDescription> =
  KernelDefinitionBase<I, O> & ({ wgsl: string; handler?: HostHandler<I, O> } | { wgsl?: string; handler: HostHandler<I, O> });

/** Registers a message type by name and returns its description. */
export function defineMessage<const N extends string, const F extends Record<string, FieldType>>(name: N, fields: F): MessageDescription<N, F>;
/** Registers a kernel for `runtime.launch(id)` (the seeds' `@ring_kernel`). */
export function ringKernel<I extends MessageDescription, O extends MessageDescription>(definition: KernelDefinitionInput<I, O> & { id: string }): void;

/** The `name` of every error the runtime throws. */
export type RingKernelErrorName =
  | "KernelNotFoundError" | "KernelStateError" | "QueueFullError" | "TimeoutError" | "MessageFormatError"
  | "KernelCompileError" | "MessageDroppedError" | "BackendUnavailableError" | "DeviceLostError";
export interface KernelNotFoundError extends Error { name: "KernelNotFoundError"; kernelId: string; }
/** An operation the kernel's state does not allow; `action` is what was asked (e.g. "activate"). */
export interface KernelStateError extends Error { name: "KernelStateError"; kernelId: string; state: KernelState; action: string; }
export interface QueueFullError extends Error { name: "QueueFullError"; kernelId: string; }
export interface TimeoutError extends Error { name: "TimeoutError"; kernelId: string; }
/** `field` is the path of the bad field, e.g. "bodies[2].mass". */
export interface MessageFormatError extends Error { name: "MessageFormatError"; kernelId: string; field: string; }
/** `line` and `column` are in the kernel's own WGSL, when the compiler gave a position. */
export interface KernelCompileError extends Error { name: "KernelCompileError"; kernelId: string; line: number | null; column: number | null; }
export interface MessageDroppedError extends Error { name: "MessageDroppedError"; kernelId: string; }
export interface BackendUnavailableError extends Error { name: "BackendUnavailableError"; }
export interface DeviceLostError extends Error { name: "DeviceLostError"; }
export type RingKernelError =
  | KernelNotFoundError | KernelStateError | QueueFullError | TimeoutError | MessageFormatError
  | KernelCompileError | MessageDroppedError | BackendUnavailableError | DeviceLostError;
/** Whether `error` is one of the runtime's errors; narrows on `error.name`. */
export function isRingKernelError(error: unknown): error is RingKernelError;

export interface RingKernelRuntime {
  /** Resolves with the next answer; TimeoutError after `timeout` ms, waits without one. `T` types the answer (e.g. `OutputOf<typeof Response>`). */
  receive<T extends MessageOutput = MessageOutput>(id: string, options?: TimeoutOptions): Promise<T>;
  /** Sends one message and resolves with its own answer (matched by correlation id). */
  call<T extends MessageOutput = MessageOutput>(id: string, message: MessageInput, options?: TimeoutOptions): Promise<T>;
}
"#;

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// Converts a runtime error to a JS `Error` with the contract's `name` and the details as
/// properties (`kernelId`, `state`, `field`, `line`, `column`) for programmatic handling.
fn js_error(error: Error) -> JsValue {
    let js = js_sys::Error::new(&error.to_string());
    js.set_name(error.name());
    let set = |key: &str, value: JsValue| {
        let _ = Reflect::set(&js, &key.into(), &value);
    };
    match &error {
        Error::KernelNotFound { id }
        | Error::QueueFull { id, .. }
        | Error::Timeout { id, .. }
        | Error::MessageDropped { id } => set("kernelId", id.into()),
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

/// Whether `error` is one of the runtime's errors (a JS `Error` whose `name` is one of the
/// contract's); the TypeScript declaration narrows on it.
#[wasm_bindgen(js_name = isRingKernelError, skip_typescript)]
pub fn is_ring_kernel_error(error: JsValue) -> bool {
    error.dyn_ref::<js_sys::Error>().is_some_and(|e| Error::NAMES.contains(&String::from(e.name()).as_str()))
}

fn type_error(message: String) -> JsValue {
    js_error(Error::InvalidArgument(message))
}

/// Parses an optional options object; a missing argument, `undefined` and `null` mean defaults,
/// and unknown keys are refused so a typo never silently does nothing.
fn parse_options<T: OptionKeys>(value: Option<JsValue>, what: &str) -> Result<T, JsValue> {
    let Some(value) = value.filter(|v| !v.is_undefined() && !v.is_null()) else {
        return Ok(T::default());
    };
    if !value.is_object() {
        return Err(type_error(format!("{what} must be an object, got {}", type_name(&value))));
    }
    // serde-wasm-bindgen reads only the declared keys, so unknown ones are checked here; it
    // would also take a BigInt for a number, which the types say these options are not.
    for key in Object::keys(value.unchecked_ref::<Object>()).iter() {
        let key = key.as_string().unwrap_or_default();
        if !T::KEYS.contains(&key.as_str()) {
            return Err(type_error(format!("{what}: unknown option '{key}' (expected one of {})", T::KEYS.join(", "))));
        }
        if Reflect::get(&value, &key.as_str().into())?.is_bigint() {
            return Err(type_error(format!("{what}: option '{key}' must be a number, got a BigInt")));
        }
    }
    serde_wasm_bindgen::from_value(value).map_err(|e| type_error(format!("{what}: {e}")))
}

/// An options object and the keys it may carry.
trait OptionKeys: for<'de> Deserialize<'de> + Default {
    const KEYS: &'static [&'static str];
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CreateOptions {
    enable_telemetry: Option<bool>,
    default_queue_size: Option<usize>,
    backend: Option<String>,
    auto_recover: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JsLaunchOptions {
    queue_size: Option<usize>,
    mode: Option<String>,
    max_batch: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ManagedKernelOptions {
    queue_size: Option<usize>,
    mode: Option<String>,
    terminate_timeout: Option<f64>,
}

#[derive(Deserialize, Default)]
struct TimeoutOptions {
    timeout: Option<f64>,
}

#[derive(Deserialize, Default)]
struct ReceiveBatchOptions {
    max: Option<usize>,
    timeout: Option<f64>,
}

impl OptionKeys for CreateOptions {
    const KEYS: &'static [&'static str] = &["enableTelemetry", "defaultQueueSize", "backend", "autoRecover"];
}
impl OptionKeys for JsLaunchOptions {
    const KEYS: &'static [&'static str] = &["queueSize", "mode", "maxBatch"];
}
impl OptionKeys for ManagedKernelOptions {
    const KEYS: &'static [&'static str] = &["queueSize", "mode", "terminateTimeout"];
}
impl OptionKeys for TimeoutOptions {
    const KEYS: &'static [&'static str] = &["timeout"];
}
impl OptionKeys for ReceiveBatchOptions {
    const KEYS: &'static [&'static str] = &["max", "timeout"];
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

/// Promise-based host runtime for ring kernels (the seeds' `RingKernelRuntime`).
#[wasm_bindgen(js_name = RingKernelRuntime)]
pub struct JsRuntime {
    inner: Rc<Runtime>,
}

#[wasm_bindgen(js_class = RingKernelRuntime)]
impl JsRuntime {
    /// Opens a WebGPU device. Rejects with `BackendUnavailableError` when the browser has no
    /// WebGPU, explaining how to get it.
    #[wasm_bindgen(unchecked_return_type = "Promise<RingKernelRuntime>")]
    pub fn create(
        #[wasm_bindgen(unchecked_optional_param_type = "RuntimeOptions")] options: Option<JsValue>,
    ) -> Promise {
        future_to_promise(async move {
            let opts: CreateOptions = parse_options(options, "RingKernelRuntime.create options")?;
            let defaults = RuntimeOptions::default();
            let backend = match opts.backend.as_deref() {
                None => BackendChoice::Auto,
                Some(name) => {
                    BackendChoice::parse(name).ok_or_else(|| type_error(format!("unknown backend '{name}'")))?
                }
            };
            let runtime = Runtime::new(RuntimeOptions {
                enable_telemetry: opts.enable_telemetry.unwrap_or(defaults.enable_telemetry),
                default_queue_size: opts.default_queue_size.unwrap_or(defaults.default_queue_size),
                backend,
                auto_recover: opts.auto_recover.unwrap_or(defaults.auto_recover),
            })
            .await
            .map_err(js_error)?;
            let runtime: JsValue = JsRuntime { inner: Rc::new(runtime) }.into();
            install_async_dispose(&runtime, "dispose");
            Ok(runtime)
        })
    }

    /// Launches a kernel: a registered id, or `definition` (from `ringKernel`-style fields).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn launch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "KernelDefinitionInput | null")] definition: Option<JsValue>,
        #[wasm_bindgen(unchecked_optional_param_type = "LaunchOptions")] options: Option<JsValue>,
    ) -> Promise {
        let rt = self.inner.clone();
        future_to_promise(async move {
            let id = kernel_id(&id, "id")?;
            let opts: JsLaunchOptions = parse_options(options, "launch options")?;
            let launch = LaunchOptions {
                queue_size: opts.queue_size,
                mode: parse_mode(opts.mode.as_deref())?,
                max_batch: opts.max_batch,
            };
            launch_kernel(&rt, id, definition, launch).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn activate(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Promise {
        let rt = self.inner.clone();
        future_to_promise(async move {
            let id = kernel_id(&id, "id")?;
            rt.activate(&id).await.map(|_| JsValue::UNDEFINED).map_err(js_error)
        })
    }

    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn deactivate(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Promise {
        let rt = self.inner.clone();
        future_to_promise(async move {
            let id = kernel_id(&id, "id")?;
            rt.deactivate(&id).await.map(|_| JsValue::UNDEFINED).map_err(js_error)
        })
    }

    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn reactivate(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Promise {
        let rt = self.inner.clone();
        future_to_promise(async move {
            let id = kernel_id(&id, "id")?;
            rt.reactivate(&id).await.map(|_| JsValue::UNDEFINED).map_err(js_error)
        })
    }

    /// Graceful stop; `{ timeout }` in milliseconds.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn terminate(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "TimeoutOptions")] options: Option<JsValue>,
    ) -> Promise {
        let rt = self.inner.clone();
        future_to_promise(async move {
            let id = kernel_id(&id, "id")?;
            let opts: TimeoutOptions = parse_options(options, "terminate options")?;
            rt.terminate(&id, opts.timeout).await.map(|_| JsValue::UNDEFINED).map_err(js_error)
        })
    }

    #[wasm_bindgen(js_name = terminateAll, unchecked_return_type = "Promise<void>")]
    pub fn terminate_all(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "TimeoutOptions")] options: Option<JsValue>,
    ) -> Promise {
        let rt = self.inner.clone();
        future_to_promise(async move {
            let opts: TimeoutOptions = parse_options(options, "terminateAll options")?;
            rt.terminate_all(opts.timeout).await.map(|_| JsValue::UNDEFINED).map_err(js_error)
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
        future_to_promise(async move {
            let (from, to) = (kernel_id(&from, "from")?, kernel_id(&to, "to")?);
            rt.connect(&from, &to).await.map(|_| JsValue::UNDEFINED).map_err(js_error)
        })
    }

    /// Ends `from`'s route; its answers go to `receive` again.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn disconnect(&self, #[wasm_bindgen(unchecked_param_type = "string")] from: JsValue) -> Promise {
        let rt = self.inner.clone();
        future_to_promise(async move {
            let from = kernel_id(&from, "from")?;
            rt.disconnect(&from).await.map(|_| JsValue::UNDEFINED).map_err(js_error)
        })
    }

    /// Forgets a terminated kernel so its id may be launched again.
    pub fn remove(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Result<(), JsValue> {
        self.inner.remove(&kernel_id(&id, "id")?).map_err(js_error)
    }

    /// Queues one message; waits up to `{ timeout }` ms for room, then `QueueFullError`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn send(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_param_type = "MessageInput")] message: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "TimeoutOptions")] options: Option<JsValue>,
    ) -> Promise {
        let rt = self.inner.clone();
        future_to_promise(async move {
            let id = kernel_id(&id, "id")?;
            let opts: TimeoutOptions = parse_options(options, "send options")?;
            let fields = rt.count_error(&id, message_fields(&id, &message)).map_err(js_error)?;
            rt.send(&id, &borrow_fields(&fields), opts.timeout).await.map_err(js_error)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Queues many messages (objects, or one typed array / ArrayBuffer already packed in the
    /// input layout) and resolves with how many were accepted within `{ timeout }`.
    #[wasm_bindgen(js_name = sendBatch, unchecked_return_type = "Promise<number>")]
    pub fn send_batch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_param_type = "MessageInput[] | ArrayBufferView | ArrayBuffer")] messages: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "TimeoutOptions")] options: Option<JsValue>,
    ) -> Promise {
        let rt = self.inner.clone();
        future_to_promise(async move {
            let id = kernel_id(&id, "id")?;
            let opts: TimeoutOptions = parse_options(options, "sendBatch options")?;
            let packed = if let Some(bytes) = packed_bytes(&messages) {
                bytes
            } else if Array::is_array(&messages) {
                let list = Array::from(&messages);
                let encoded = list.iter().try_fold(Vec::new(), |mut packed, message| {
                    let fields = message_fields(&id, &message)?;
                    packed.extend(rt.encode(&id, &borrow_fields(&fields))?);
                    Ok(packed)
                });
                // Refused whole, and counted once, like a malformed `send`.
                rt.count_error(&id, encoded).map_err(js_error)?
            } else {
                return Err(type_error(format!(
                    "sendBatch expects an array of messages or a typed array, got {}",
                    type_name(&messages)
                )));
            };
            let accepted = rt.send_packed(&id, &packed, opts.timeout).await.map_err(js_error)?;
            Ok(JsValue::from(accepted as f64))
        })
    }

    /// Sends one message and resolves with its own answer, matched by correlation id, however
    /// many calls are in flight. `{ timeout }` ms covers queue room (`QueueFullError`) and the
    /// answer (`TimeoutError`).
    #[wasm_bindgen(skip_typescript)] // declared generic in TS_TYPES
    pub fn call(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_param_type = "MessageInput")] message: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "TimeoutOptions")] options: Option<JsValue>,
    ) -> Promise {
        let rt = self.inner.clone();
        future_to_promise(async move {
            let id = kernel_id(&id, "id")?;
            let opts: TimeoutOptions = parse_options(options, "call options")?;
            let fields = rt.count_error(&id, message_fields(&id, &message)).map_err(js_error)?;
            let layout = rt.output_layout(&id).map_err(js_error)?;
            let answer = rt.call(&id, &borrow_fields(&fields), opts.timeout).await.map_err(js_error)?;
            Ok(js_message(&layout, answer))
        })
    }

    /// Resolves with the next answer; `TimeoutError` after `{ timeout }` ms, waits without one.
    #[wasm_bindgen(skip_typescript)] // declared generic in TS_TYPES
    pub fn receive(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "TimeoutOptions")] options: Option<JsValue>,
    ) -> Promise {
        let rt = self.inner.clone();
        future_to_promise(async move {
            let id = kernel_id(&id, "id")?;
            let opts: TimeoutOptions = parse_options(options, "receive options")?;
            let layout = rt.output_layout(&id).map_err(js_error)?;
            let answer = rt.receive_packed(&id, opts.timeout).await.map_err(js_error)?;
            Ok(js_message(&layout, layout.decode(&answer)))
        })
    }

    /// Resolves with up to `{ max }` answers packed in the output layout, as a `Uint8Array`.
    #[wasm_bindgen(js_name = receiveBatch, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn receive_batch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "ReceiveBatchOptions")] options: Option<JsValue>,
    ) -> Promise {
        let rt = self.inner.clone();
        future_to_promise(async move {
            let id = kernel_id(&id, "id")?;
            let opts: ReceiveBatchOptions = parse_options(options, "receiveBatch options")?;
            let packed =
                rt.receive_batch_packed(&id, opts.max.unwrap_or(usize::MAX), opts.timeout).await.map_err(js_error)?;
            Ok(js_sys::Uint8Array::from(packed.as_slice()).into())
        })
    }

    /// Copies the kernel's `state` array back from the GPU, as a `Uint32Array`, `Int32Array` or
    /// `Float32Array` by its element type; it includes every message answered so far. Readable
    /// until the kernel is removed, so final results survive `terminate`.
    #[wasm_bindgen(js_name = readState, unchecked_return_type = "Promise<Uint32Array | Int32Array | Float32Array>")]
    pub fn read_state(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Promise {
        let rt = self.inner.clone();
        future_to_promise(async move {
            let id = kernel_id(&id, "id")?;
            // The element type first: the kernel may be removed while the copy is in flight.
            let spec = rt.state_spec(&id).map_err(js_error)?;
            let bytes = rt.read_state(&id).await.map_err(js_error)?; // refuses a kernel without state
            Ok(js_state(spec.map_or(Scalar::U32, |s| s.element.scalar()), &bytes))
        })
    }

    /// The kernel's state: `created`, `launched`, `active`, `deactivated`, `terminating` or
    /// `terminated`.
    #[wasm_bindgen(js_name = getState, unchecked_return_type = "KernelState")]
    pub fn get_state(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Result<String, JsValue> {
        self.inner.state(&kernel_id(&id, "id")?).map(|s| s.as_str().to_owned()).map_err(js_error)
    }

    #[wasm_bindgen(getter, js_name = kernelIds)]
    pub fn kernel_ids(&self) -> Vec<String> {
        self.inner.kernel_ids()
    }

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

    /// Telemetry of every kernel in Prometheus' text exposition format.
    #[wasm_bindgen(js_name = metricsText)]
    pub fn metrics_text(&self) -> String {
        self.inner.metrics_text()
    }

    /// The adapter this runtime runs on: `{ backend, name, driver, deviceType }`.
    #[wasm_bindgen(getter, unchecked_return_type = "AdapterInfo")]
    pub fn adapter(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.adapter())
    }

    /// After the GPU device was lost (kernels are "failed", `getSummary().device.lost` says
    /// why): opens a new device, relaunches the failed kernels with their last state
    /// checkpoint and returns each to the state it was in; messages without an answer are then
    /// processed, in order. Resolves at once if nothing was lost.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn recover(&self) -> Promise {
        let rt = self.inner.clone();
        future_to_promise(async move { rt.recover().await.map(|_| JsValue::UNDEFINED).map_err(js_error) })
    }

    /// Destroys the GPU device (`GPUDevice.destroy()`), as a driver reset or a lost GPU would,
    /// to test how an application handles `DeviceLostError` and `recover()`.
    #[wasm_bindgen(js_name = destroyDevice)]
    pub fn destroy_device(&self) -> Result<(), JsValue> {
        self.inner.destroy_device().map_err(js_error)
    }

    /// Terminates every kernel and stops the pump; later calls fail.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn dispose(&self) -> Promise {
        let rt = self.inner.clone();
        future_to_promise(async move { rt.dispose().await.map(|_| JsValue::UNDEFINED).map_err(js_error) })
    }
}

/// Serializes telemetry-like values: `None` becomes `null`, maps become plain objects.
fn to_js<T: serde::Serialize>(value: &T) -> Result<JsValue, JsValue> {
    let serializer =
        serde_wasm_bindgen::Serializer::new().serialize_missing_as_null(true).serialize_maps_as_objects(true);
    value.serialize(&serializer).map_err(|e| type_error(e.to_string()))
}

fn parse_mode(mode: Option<&str>) -> Result<KernelMode, JsValue> {
    match mode {
        None => Ok(KernelMode::default()),
        Some(name) => KernelMode::parse(name)
            .ok_or_else(|| type_error(format!("mode must be 'persistent' or 'event-driven', got '{name}'"))),
    }
}

/// A kernel id from JavaScript: a string, or a `TypeError` naming the argument and what came
/// instead (wasm-bindgen's own conversion would turn `5` into "5" and `undefined` into "").
fn kernel_id(id: &JsValue, argument: &str) -> Result<String, JsValue> {
    id.as_string()
        .ok_or_else(|| type_error(format!("{argument} must be a kernel id (a string), got {}", type_name(id))))
}

/// Launches a registered id, or `definition` under `id`.
async fn launch_kernel(
    rt: &Runtime,
    id: String,
    definition: Option<JsValue>,
    options: LaunchOptions,
) -> Result<(), JsValue> {
    match definition.filter(|d| !d.is_undefined() && !d.is_null()) {
        None => rt.launch(&id, options).await.map_err(js_error),
        Some(definition) => {
            let def = kernel_definition(&definition, Some(id))?;
            rt.launch_definition(def, options).await.map_err(js_error)
        }
    }
}

/// A kernel that was launched and activated by `managedKernel` and is terminated when the
/// holder is done: `await using kernel = await managedKernel(runtime, "worker")`, or an
/// explicit `await kernel.terminate()` in a `finally`.
#[wasm_bindgen]
pub struct ManagedKernel {
    runtime: Rc<Runtime>,
    id: String,
    terminate_timeout: f64,
}

#[wasm_bindgen]
impl ManagedKernel {
    /// The kernel's id, for `runtime.send(kernel.id, ...)`.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.id.clone()
    }

    /// Terminates the kernel gracefully (also `[Symbol.asyncDispose]`). Does nothing if it is
    /// already terminated or removed.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn terminate(&self) -> Promise {
        let (rt, id, timeout) = (self.runtime.clone(), self.id.clone(), self.terminate_timeout);
        future_to_promise(async move {
            match rt.state(&id) {
                Ok(KernelState::Terminated) | Err(Error::KernelNotFound { .. }) => Ok(JsValue::UNDEFINED),
                _ => rt.terminate(&id, Some(timeout)).await.map(|_| JsValue::UNDEFINED).map_err(js_error),
            }
        })
    }
}

/// The seeds' `managed_kernel`: launches and activates `id` (a registered kernel, or
/// `definition`) and resolves with a handle that terminates it on `await using` exit.
/// Options: `{ queueSize, mode, terminateTimeout }` (ms, default 5000).
#[wasm_bindgen(js_name = managedKernel, unchecked_return_type = "Promise<ManagedKernel>")]
pub fn managed_kernel(
    runtime: &JsRuntime,
    #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "KernelDefinitionInput | null")] definition: Option<JsValue>,
    #[wasm_bindgen(unchecked_optional_param_type = "ManagedKernelOptions")] options: Option<JsValue>,
) -> Promise {
    let rt = runtime.inner.clone();
    future_to_promise(async move {
        let id = kernel_id(&id, "id")?;
        let opts: ManagedKernelOptions = parse_options(options, "managedKernel options")?;
        let launch =
            LaunchOptions { queue_size: opts.queue_size, mode: parse_mode(opts.mode.as_deref())?, max_batch: None };
        let terminate_timeout = opts.terminate_timeout.unwrap_or(DEFAULT_TERMINATE_TIMEOUT_MS);
        launch_kernel(&rt, id.clone(), definition, launch).await?;
        if let Err(e) = rt.activate(&id).await {
            let _ = rt.terminate(&id, Some(terminate_timeout)).await;
            return Err(js_error(e));
        }
        let managed: JsValue = ManagedKernel { runtime: rt, id, terminate_timeout }.into();
        install_async_dispose(&managed, "terminate");
        Ok(managed)
    })
}

impl JsRuntime {
    /// Wraps a runtime created from Rust (other wasm crates, tests) for the JS surface.
    pub fn from_runtime(runtime: Runtime) -> Self {
        JsRuntime { inner: Rc::new(runtime) }
    }
}

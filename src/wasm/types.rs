//! The TypeScript declarations wasm-bindgen cannot derive: option and telemetry shapes, message
//! typing (`InputOf`, `OutputOf`), the error interfaces, the generic `launch`/`receive`/`call`
//! and the `KernelHandle` class, generic over its kernel's messages.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/**
 * Lifecycle states, in order: created → launched → active ⇄ deactivated → terminating → terminated.
 * "failed": the GPU device was lost; `recover()` returns the kernel to the state it failed in.
 */
export type KernelState = "created" | "launched" | "active" | "deactivated" | "terminating" | "terminated" | "failed";
/** The seeds' two modes, kept and reported. Both are scheduled alike: WebGPU has no dispatch that outlives a submit, so a kernel is dispatched in each tick it has input, sent or forwarded by a connected stage. */
export type KernelMode = "persistent" | "event-driven";
/**
 * Where kernels run. "auto" and "webgpu" use WebGPU (the browser's, or Dawn's in Node); "cpu" runs
 * every kernel's host `handler` instead (where there is no WebGPU). Native graphics APIs ("vulkan",
 * "metal", "dx12", "gl") are the Rust crate's: here they reject with BackendUnavailableError.
 */
export type BackendName = "auto" | "webgpu" | "cpu";

export interface RuntimeOptions {
  /** Start from `RuntimeBuilder`'s preset (see the README's presets table); the other keys given override it, a nested object's keys the preset's nested ones (`null` turns an optional one off). */
  preset?: "development" | "production" | "highPerformance" | undefined;
  /** Record latency and report getTelemetry (default true). */
  enableTelemetry?: boolean | undefined;
  /** Queue size of kernels launched without their own (default 4096). */
  defaultQueueSize?: number | undefined;
  backend?: BackendName | undefined;
  /** When the GPU device is lost, open a new one and relaunch the failed kernels without waiting for `recover()` (default false). */
  autoRecover?: boolean | undefined;
  /** Which adapter, among those the backend lists (default 0; a browser offers only 0). */
  deviceIndex?: number | undefined;
  /** Several devices, each with its own tick loop (device ids are their places here); without it, one from `backend` and `deviceIndex`. A browser opens one adapter per entry (e.g. `[{ powerPreference: "high-performance" }, { powerPreference: "low-power" }]`). */
  devices?: DeviceSpec[] | undefined;
  /** Where launches without a `device` go (default "leastLoaded"). */
  loadBalancing?: LoadBalancing | undefined;
  /** Debug labels and validation (slower; default false). */
  debug?: boolean | undefined;
  /** Most messages one tick takes from all input queues together (default: no bound); kernels of higher `priority` first. */
  maxMessagesPerTick?: number | null | undefined;
  /** User Timing measures (`ringkernel:launch`, `ringkernel:tick`, `ringkernel:tick.plan`, `.execute`, `.deliver`, `ringkernel:recovery`) for DevTools' performance panel and `PerformanceObserver`s (default false). */
  tracing?: boolean | undefined;
  /** Where `health()` draws its lines (fractions more than 0 and at most 1, degraded at most unhealthy). */
  health?: HealthThresholds | undefined;
  /** A circuit breaker per kernel (default: none, nothing is refused by one); `{}` takes every default. */
  circuitBreaker?: CircuitBreakerOptions | null | undefined;
  /** The kernel watchdog's heartbeat timeout and action. */
  watchdog?: WatchdogOptions | undefined;
  /** Device bytes `memoryPressure` is measured against (WebGPU reports no device total), at least 1 (0 is a `RangeError`); without one, pressure reads 0. */
  memoryBudget?: number | null | undefined;
  /** Turns the degradation manager on (`{}` for its defaults); off without it. */
  degradation?: DegradationOptions | null | undefined;
}
export interface HealthThresholds {
  /** A queue this full makes its kernel degraded (default 0.8). */
  queueFill?: number | undefined;
  /** Failed operations per operation since the previous check that make a kernel degraded (default 0.05). */
  errorRateDegraded?: number | undefined;
  /** ... and unhealthy (default 0.5). */
  errorRateUnhealthy?: number | undefined;
  /** Memory pressure that makes the runtime degraded (default 0.8). */
  memoryDegraded?: number | undefined;
  /** ... and unhealthy (default 0.95). */
  memoryUnhealthy?: number | undefined;
}
/** One finding of `health()`, naming the kernel or resource it is about. */
export interface HealthIssue {
  severity: "degraded" | "unhealthy";
  subject: "runtime" | "device" | "memory" | "kernel";
  /** The kernel's id, when `subject` is `"kernel"`. */
  kernel?: string;
  reason: string;
}
/** `health()`: the worst finding decides; `reason` joins the findings of that severity. */
export interface HealthReport {
  status: "healthy" | "degraded" | "unhealthy";
  reason: string | null;
  issues: HealthIssue[];
}
/** When a kernel's circuit opens and how it closes again. */
export interface CircuitBreakerOptions {
  /** Failures in a row (handler errors, a lost device, timed-out calls) that open the circuit (default 5). */
  failureThreshold?: number | undefined;
  /** The run must fall within this many ms (default 60000). */
  windowMs?: number | undefined;
  /** How long the circuit stays open before it lets a probe through, in ms (default 30000). */
  openMs?: number | undefined;
  /** Operations let through while half-open (default 1). */
  halfOpenProbes?: number | undefined;
}
/** `closed`: everything goes through; `open`: sends and calls reject with `CircuitOpenError`; `halfOpen`: a probe goes through. */
export type CircuitState = "closed" | "open" | "halfOpen";
/** A kernel's circuit breaker, as `circuitBreaker(id)` reports it. */
export interface CircuitBreakerStatus {
  state: CircuitState;
  /** Failures in the current run (within the window). */
  failures: number;
  /** Times the circuit has opened. */
  opened: number;
  /** Ms until a refused operation may be tried again; null while nothing is refused. */
  retryAfterMs: number | null;
}
/** What a watchdog scan does with stale kernels besides listing them. */
export type WatchdogAction = "report" | "deactivate" | "recoverDevice";
export interface WatchdogOptions {
  /** How long a kernel with input may go without progress before it is stale, in ms (default 30000). */
  heartbeatTimeoutMs?: number | undefined;
  /** Default `"report"`. */
  action?: WatchdogAction | undefined;
}
/** A kernel that has input and made no progress for the heartbeat timeout. */
export interface StaleKernel {
  kernelId: string;
  /** Messages queued and in flight, unanswered. */
  inputDepth: number;
  /** Ms since its last progress. */
  sinceProgressMs: number;
  /** What the scan did (`"report"` where the configured action could not apply). */
  action: WatchdogAction;
}
/** The degradation manager's settings; every field optional. Thresholds are [light, moderate, severe, critical]. */
export interface DegradationOptions {
  /** Input queue fill (0..1) at which each level starts (default [0.5, 0.7, 0.85, 0.95]). */
  queueFillThresholds?: [number, number, number, number] | undefined;
  /** Latency p99 over the kernel's `latencyBudgetMs` at which each level starts (default [1, 1.5, 2, 4]). */
  latencyThresholds?: [number, number, number, number] | undefined;
  /** Memory pressure (0..1) at which each level starts (default [0.7, 0.8, 0.9, 0.97]). */
  memoryThresholds?: [number, number, number, number] | undefined;
  /** How far below a level's thresholds, as a fraction of them, the signals must fall before it steps down (default 0.1). */
  hysteresis?: number | undefined;
  /** How long a level holds before it may step down one level, in ms (default 1000). */
  cooldownMs?: number | undefined;
  /** The span of answers the latency p99 is taken over, in ms (default 1000). */
  windowMs?: number | undefined;
  /** The latency budget of kernels launched without `latencyBudgetMs`. */
  defaultLatencyBudgetMs?: number | undefined;
  /** Kernels with a `priority` below this are low priority: deferred at "moderate", refused at "severe" (default 0). */
  protectedPriority?: number | undefined;
}
/** How loaded the runtime is. normal: nothing; light: reported; moderate: low-priority kernels' ticks deferred; severe: also smaller batches for kernels over their latency budget and low-priority sends refused (OverloadedError); critical: only the highest priority takes messages. */
export type DegradationLevel = "normal" | "light" | "moderate" | "severe" | "critical";
/** Which signal set the level. */
export type DegradationReason = "none" | "queueFill" | "latency" | "memoryPressure";
export interface DegradationSignals {
  /** The fullest input queue among kernels that take messages, 0..1. */
  queueFill: number;
  /** The worst recent latency p99 over its budget; null when no kernel with a budget answered in the window. */
  latencyRatio: number | null;
  memoryPressure: number;
}
/** `degradationStatus()`, and `getSummary().degradation`. */
export interface DegradationStatus {
  /** Whether the runtime has a degradation manager (the `degradation` option). */
  enabled: boolean;
  level: DegradationLevel; reason: DegradationReason; signals: DegradationSignals;
  /** Level changes so far. */
  transitions: number;
}
/** What device memory is for. */
export type MemoryPurpose = "inputRing" | "outputRing" | "keptFlags" | "state" | "readback";
/** Bytes by purpose (the readback buffer is shared: 0 for a kernel). */
export type MemoryByPurpose = Record<MemoryPurpose, number>;
/** `memory()`, and `getSummary().memory`: device bytes by purpose and by kernel. On the "cpu" backend only the kernels' state words count. */
export interface MemoryReport {
  byPurpose: MemoryByPurpose;
  byKernel: Record<string, MemoryByPurpose>;
  usedBytes: number;
  /** The `memoryBudget`, or null. */
  budgetBytes: number | null;
  /** usedBytes / budgetBytes in [0, 1]; 0 without a budget. */
  pressure: number;
  /** What the device reports: WebGPU bounds one buffer and one binding, not the total (null on the "cpu" backend). */
  deviceLimits: { maxBufferBytes: number | null; maxBindingBytes: number | null };
}
export type MemoryPressureAlert = "high" | "normal";
/** What an `onMemoryAlert` callback receives. */
export interface MemoryAlertEvent {
  alert: MemoryPressureAlert; threshold: number; pressure: number; usedBytes: number; budgetBytes: number | null;
}
/** One device for the runtime to open. */
export interface DeviceSpec {
  backend?: BackendName | undefined;
  /** Which adapter among those the backend lists (native only; a browser offers 0). */
  index?: number | undefined;
  /** Which adapter to ask for (default "high-performance"). */
  powerPreference?: "high-performance" | "low-power" | undefined;
}
/** `"leastLoaded"`: the device with the least queued work, then memory; `"roundRobin"`: each in turn. */
export type LoadBalancing = "leastLoaded" | "roundRobin";
/** What a kernel needs of the device the runtime picks for it. */
export interface DeviceRequirements {
  /** Only devices of this backend ("auto": any GPU). */
  backend?: BackendName | null | undefined;
  /** Only devices whose largest buffer is at least this many bytes. */
  minBufferBytes?: number | null | undefined;
  /** Only devices whose largest storage binding (one ring or state array) is at least this many bytes. */
  minBindingBytes?: number | null | undefined;
}
/** One device of the runtime, as `topology()` and `getSummary().devices` report it. */
export interface DeviceInfo {
  /** What `launch`'s `device` and `migrate` take. */
  id: number;
  adapter: AdapterInfo;
  limits: { maxBufferBytes: number | null; maxBindingBytes: number | null };
  /** Device bytes its kernels hold there. */
  memoryBytes: number;
  /** Ids of the kernels placed there, sorted. */
  kernels: string[];
  /** Messages processed there since the runtime began, by whichever kernels ran there (it only grows). */
  messagesProcessed: number;
  /** Messages queued or in flight on those kernels. */
  queued: number;
  /** Why it is lost, while it is; null when healthy. */
  lost: string | null;
  losses: number; recoveries: number;
  /** Ticks that did work on it. */
  ticks: number;
}
export interface Topology { devices: DeviceInfo[]; }
/** What happened to a device: lost, recovered (a new device runs its kernels again), a recovery attempt that failed, or automatic recovery giving up (its kernels wait for `recover()`). */
export type DeviceEventKind = "lost" | "recovered" | "recoveryFailed" | "autoRecoveryGaveUp";
/** One thing that happened to one device, as `deviceEvents()` yields it. */
export interface DeviceEvent {
  /** Its number among the runtime's device events, from 1. */
  seq: number;
  kind: DeviceEventKind;
  /** The device (an id from `topology()`). */
  device: number;
  /** Why: the loss's reason, a failed recovery's error, or what automatic recovery last saw; for a recovery null, or the kernels it could not rebuild and why (`not rebuilt: ...`), which stay failed there. */
  reason: string | null;
  /** The kernels it concerns: those that failed with the loss, those running again after a recovery, those still waiting for one otherwise. */
  kernels: string[];
  /** When, in ms since the Unix epoch. */
  timestampMs: number;
  /** Events skipped before this one because the reader fell more than 256 behind (0 normally). */
  missed: number;
}
/** What `migrate` resolves with. */
export interface MigrationReport {
  kernelId: string; from: number; to: number;
  /** How long the kernel was out of every tick (compiling on the target comes before). */
  pauseMs: number;
  /** Messages handed to the old device and not yet answered there, answered on the new one: 0 unless the old device was lost while the kernel moved (a working device answers its last tick before the move). */
  requeued: number;
}
export interface LaunchOptions {
  /** Bound of the input and of the output queue, in messages (default: the runtime's `defaultQueueSize`). */
  queueSize?: number | null | undefined;
  /** Bound of the input queue alone, over `queueSize`. */
  inputQueueSize?: number | null | undefined;
  /** Bound of the output queue alone, over `queueSize`. */
  outputQueueSize?: number | null | undefined;
  mode?: KernelMode | undefined;
  /** Most messages one dispatch handles, 1 to the input queue size (the default; a RangeError beyond, naming it); lower it for handlers that run long per message. */
  maxBatch?: number | null | undefined;
  /** Activate the kernel as soon as it is launched (default false: it waits for `activate`). */
  autoActivate?: boolean | undefined;
  /** Invocations per workgroup (RingKernel's block size), over the definition's `workgroupSize`: 1 to the device's limit (a RangeError beyond; the cpu backend, which runs no workgroups, takes what every WebGPU device does, 1 to 256). */
  workgroupSize?: number | null | undefined;
  /** Most workgroups one dispatch may use (RingKernel's grid size); invocations then take several messages each; at least 1. */
  maxWorkgroups?: number | null | undefined;
  /** Bytes of workgroup memory the WGSL handler can use, as `workgroup_memory: array<u32, N>`: up to the device's limit (on the cpu backend, 16384, every WebGPU device's). */
  sharedMemory?: number | undefined;
  /** Keep the kernel out of fused pipelines and grouped dispatches: it always runs a dispatch of its own (default false). GPU backends only. */
  unfused?: boolean | undefined;
  /** With `maxMessagesPerTick`, kernels of higher priority take their messages first (default 0); under load, lower ones are deferred and refused first. */
  priority?: number | undefined;
  /** The latency p99 this kernel should keep, in ms: the degradation manager's latency signal, and at "severe" a kernel over it takes smaller batches. */
  latencyBudgetMs?: number | undefined;
  /** How often a GPU kernel's `state` is copied back as the checkpoint recovery restores, in ms: 0 (the default) with every tick, so a recovered kernel's state reflects each answered message once; `Infinity` never. A large state skips its copy on the ticks in between; recovered after a lost device (or moved off one), the kernel starts again from its last checkpoint (its zeroed state if none). A migration between working devices moves the state as it is, and a kernel's final state survives its terminate (read back within the terminate's timeout, or after it unless the device is lost first; `dispose()` reads none). */
  checkpointIntervalMs?: number | undefined;
  /** Values the kernel's `state` array starts with instead of zeros, from its first element on (the rest zeroed): a `Uint32Array`, `Int32Array` or `Float32Array` of the state's element type (a TypeError otherwise), no longer than the state (a RangeError). Recovery restores them until the first checkpoint. */
  initialState?: Uint32Array | Int32Array | Float32Array | null | undefined;
  /** The device to run on (an id from `topology()`); without it the runtime's `loadBalancing` picks one meeting `requirements`. */
  device?: number | null | undefined;
  requirements?: DeviceRequirements | undefined;
}
export interface ManagedKernelOptions { queueSize?: number | undefined; mode?: KernelMode | undefined; terminateTimeout?: number | undefined; }
/** Milliseconds, counted from the call (for a send, its wait behind earlier sends to the kernel included), from 0 (a NaN or negative one is a RangeError). Without a timeout, or with `Infinity` (or any number past 9e15, 285,000 years), the operation waits for as long as it takes. */
export interface TimeoutOptions { timeout?: number | undefined; }
/** A send's, receive's or call's `timeout`, and a `signal` that ends its wait: once it aborts, the operation rejects with the signal's `reason` and leaves nothing half done (see the README's "Cancelling with an AbortSignal"). */
export interface WaitOptions extends TimeoutOptions { signal?: AbortSignal | null | undefined; }
/**
 * `max` answers at most (1 or more; without it, every answer waiting); `min` answers waited for (1 or more, at most `max` and the kernel's output queue size, else a `RangeError` taking nothing; default 1); `timeout` ms to wait (without one, or `Infinity`, as long as it takes); `signal` ends the wait.
 * A batch takes its answers once `min` are there; at the `timeout` with fewer it takes what is there (a `TimeoutError` with none), and so it does sooner when no more will come (the kernel terminated, its device was lost, it was connected onward). A batch waiting for more holds its turn: receives made after it wait behind it.
 */
export interface ReceiveBatchOptions { min?: number | undefined; max?: number | undefined; timeout?: number | undefined; packed?: boolean | undefined; signal?: AbortSignal | null | undefined; }
/** `receiveBatch` options that ask for the answers packed in the output layout, as bytes. */
export interface PackedReceiveBatchOptions extends ReceiveBatchOptions { packed: true; }

/** An optional WebGPU feature a device is opened with where its adapter has it, so handlers can use it (`enable f16;`). */
export type DeviceFeature = "shader-f16";
export interface AdapterInfo {
  backend: string; name: string; driver: string; deviceType: string;
  /** The optional features the device was opened with: those the runtime knows that the adapter has ([] on the cpu backend). */
  features: DeviceFeature[];
}

/** Send→answer latency in milliseconds; null until an answer has been timed. */
export interface LatencySummary {
  count: number; minMs: number | null; meanMs: number | null; maxMs: number | null;
  p50Ms: number | null; p99Ms: number | null; sumMs: number;
}

export interface KernelTelemetry {
  kernelId: string; state: KernelState; mode: KernelMode;
  /** Bound of the input queue, in messages (`queueSize`, or `inputQueueSize`). */
  queueSize: number;
  /** Bound of the output queue, in messages (`queueSize`, or `outputQueueSize`). */
  outputQueueSize: number;
  /** Accepted by send, sendBatch and call (host → kernel). */
  messagesSent: number;
  /** Answers handed to receive, receiveBatch and call (kernel → host). */
  messagesReceived: number;
  /** Counted where the handler runs (on the GPU, or on the host for the cpu backend). */
  messagesProcessed: number;
  /** Messages the handler dropped (and, on the cpu backend, those its handler failed on: it threw, or returned a Promise or a malformed answer). */
  messagesDropped: number;
  /** Failed operations on the kernel: refused messages and receives (malformed, full queue, wrong state, overloaded), timed-out calls and terminates, and host handlers that threw. Not counted: a timed-out receive (it refused nothing) and a receive from a terminated kernel with no answer left (the end of its answers, as a `for await` loop ends). */
  errors: number;
  /** The share of operations that failed, from 0 to 1: `errors` per message processed or other operation failed. A message whose handler threw is one operation, though it is among both `messagesProcessed` and `errors`, as `health()` counts it: a handler that throws for every message reads 1, for half of them 0.5. */
  errorRate: number;
  /** Dispatches (runs of the handler) of this kernel. */
  dispatches: number;
  /** Of those, the ones run fused with the rest of its pipeline (one dispatch for the chain). */
  fusedDispatches: number;
  /** Of those, the ones run in one dispatch with other kernels of its handler (small batches). */
  groupedDispatches: number;
  /** Of those, the ones whose commands were encoded while the device ran the tick before: a tick of one kernel, or of one fused chain, with at most 16 messages (a round trip's) has the next one encoded ahead, so that one only writes its messages and submits. Always 0 on the cpu backend. */
  dispatchesEncodedAhead: number;
  /** Workgroups of its last GPU dispatch (0 before any, and on the cpu backend): the grid the runtime chose, or that of the fused or grouped dispatch it ran in. */
  lastWorkgroups: number;
  inputQueueDepth: number; inFlight: number; outputQueueDepth: number;
  bytesToDevice: number;
  /** Bytes read back from the GPU: what its ticks copied back (counters, every answer slot reserved, kept flags, its state's checkpoint) and its state reads. */
  bytesFromDevice: number;
  gpuMemoryBytes: number;
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
  /** Sends, calls and receives that waited a second or more on this kernel while it could not run their input (its output queue full of answers nobody receives, it was not active, or a stage after it held it; for a receive, also its input held at an earlier stage); the console warns once a stall. Shorter waits are not counted. */
  stalledSends: number;
  /** The device it runs on now. */
  device: number;
  /** Times it moved to another device (`migrate`). */
  migrations: number;
  /** The kernel this one's answers go to (`connect`), or null. */
  connectedTo: string | null;
  /** Why a host handler last failed (cpu backend), or null. */
  lastError: string | null;
  /** Where the kernel's circuit breaker is ("closed" while breakers are off). */
  circuitState: CircuitState;
  /** Times its circuit has opened. */
  circuitOpened: number;
  /** Wall clock (ms since the Unix epoch) of its last progress, or of work arriving while idle, or of a state change. */
  lastProgressTime: number;
  /** Whether the watchdog calls it stale now. */
  stale: boolean;
}

export interface RuntimeSummary {
  backend: string; adapter: AdapterInfo; telemetryEnabled: boolean;
  /** Milliseconds since the runtime was created, until it stopped (then its shutdown report's `totalUptimeMs`). */
  uptimeMs: number;
  kernelCount: number; activeKernels: number;
  /** Ticks that did work: one submit and one readback each, for all kernels together. */
  ticks: number;
  /** Where those ticks' time went, milliseconds summed over them: planning, the writes, encoding and submit (in the browser also a round trip's next tick encoded ahead, while the device works), waiting for the readback (or the JS handlers), delivery. */
  tickTime: { planMs: number; submitMs: number; waitMs: number; deliverMs: number };
  /** Messages processed by the kernels it lists in `perKernel`, as the other totals are: a removed kernel's counts leave with it (the shutdown report and `metrics()` keep them). */
  totalMessages: number;
  totalSent: number; totalReceived: number; totalDropped: number; totalErrors: number;
  totalBytesToDevice: number; totalBytesFromDevice: number; aggregateThroughput: number;
  /** GPU buffers the runtime holds and their bytes (back to their start once kernels are terminated and removed). */
  gpuBufferCount: number; gpuBufferBytes: number;
  device: DeviceHealth;
  perKernel: Record<string, KernelTelemetry>;
  memory: MemoryReport;
  degradation: DegradationStatus;
  /** Each device: adapter, kernels, memory, messages, losses. */
  devices: DeviceInfo[];
}

/** Device losses and recoveries, over every device. */
export interface DeviceHealth {
  /** Why a device was lost, while its kernels wait for recovery (of several, the one `health()` reports, named: one whose recovery failed, else one waiting for `recover()`, else one recovering); null when healthy. */
  lost: string | null;
  losses: number; recoveries: number; autoRecover: boolean;
  /** Why the last recovery attempt of the device `lost` names failed, until one succeeds. */
  recoveryError: string | null;
}

/** Arrays of `T`, nested to any depth (an `array<array<T, N>, M>` field). */
export type Nested<T> = (T | Nested<T>)[];
/** `Nested` as a field's input may come: read-only arrays too (`as const` literals). */
export type ReadonlyNested<T> = readonly (T | ReadonlyNested<T>)[];
/** Numbers as a vector or a numeric array field takes them, flat in memory order: an array, or a typed array of 8, 16 or 32-bit elements (64-bit ones are refused, and so is an object that only has a length). */
export type Numbers = readonly number[] | Float32Array | Int32Array | Uint32Array | Int16Array | Uint16Array | Int8Array | Uint8Array | Uint8ClampedArray;
/** Messages already packed in the input layout, back to back: bytes in any view whose elements are 8, 16 or 32 bits wide (64-bit elements are no message field's), or a whole buffer (a worker's `SharedArrayBuffer` too). A `Float32Array` is refused (TypeError) for messages with integer fields, and an `Int32Array` or `Uint32Array` for messages with `f32` fields: their bits would be read as the other kind of number. */
export type PackedMessages = Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | DataView | ArrayBuffer | SharedArrayBuffer;
/** A message as sent: numbers, arrays or typed arrays of numbers, objects for nested messages. */
export type MessageInput = { [field: string]: number | Numbers | ReadonlyNested<Numbers> | MessageInput | ReadonlyNested<MessageInput> };
/**
 * A message as the id-based methods (`send`, `sendBatch`, `sendEnvelope`) take it, typed by
 * whatever the caller has: a type, an interface or a class whose fields are numbers, arrays or
 * typed arrays of numbers, or nested messages. (An interface has no index signature, so it is
 * not a `MessageInput`.) The runtime checks the fields against the kernel's layout.
 */
export type MessageLike<M> = { [K in keyof M]: FieldLike<M[K]> };
/** `never` for what is never one message (a list, packed bytes, a `Date`, a `Map` or `Set`), so that an argument of that type does not type-check. */
type NotAMessage<M> = M extends ReadonlyArray<unknown> | ArrayBufferView | ArrayBuffer | Date | ReadonlyMap<unknown, unknown> | ReadonlySet<unknown> ? never : unknown;
/** Whether TypeScript knows the fields of message description `D`: not for a handle from an id alone (`getKernel("worker")`) or from a definition that names its messages by string. */
type KnownFields<D extends MessageDescription> = Record<string, FieldType> extends D["fields"] ? false : true;
/** What a handle's sends take: a message of its input type, or, where its fields are not known (`KnownFields`), any message-like object, as the id-based `send(id, ...)` takes one (a value of an interface of yours too). */
type HandleInput<I extends MessageDescription, M> = KnownFields<I> extends true ? InputOf<I> : M & MessageLike<M> & NotAMessage<M>;
/** What a handle's receives give: an answer of its output type, or, where its fields are not known (`KnownFields`), `T` as given (`receive<Response>()`), as `runtime.receive<T>(id)` types one. */
type HandleOutput<O extends MessageDescription, T> = KnownFields<O> extends true ? OutputOf<O> : T;
type FieldLike<V> =
  V extends number ? number : V extends Numbers ? V : V extends ReadonlyArray<infer E> ? ReadonlyArray<FieldLike<E>> :
  V extends (...args: never[]) => unknown ? V : V extends object ? MessageLike<V> : never;
/** An answer: numbers, arrays of numbers for vectors, typed arrays (by the field's scalar) for numeric arrays, objects for nested messages. */
export type MessageOutput = { [field: string]: number | number[] | Float32Array | Int32Array | Uint32Array | MessageOutput | Nested<MessageOutput> };

export type ScalarType = "i32" | "u32" | "f32";
export type VectorType = `vec${2 | 3 | 4}<${ScalarType}>`;
/**
 * Another message, by the name it was defined under: capitalized, as WGSL's struct names are by
 * convention. The runtime takes any defined name; for another spelling, or for exact field types
 * (a name types its fields only as `MessageInput`), give the message's description.
 */
export type MessageName = Capitalize<string>;
/** `array<T, N>`: of scalars, vectors, messages by name, or other arrays. */
export type ArrayType = `array<${ScalarType | VectorType | MessageName}, ${number}>` | `array<array<${string}`;
/** A field's type: a WGSL scalar, vector or array, or another message (its description or its name). */
export type FieldType = ScalarType | VectorType | ArrayType | MessageDescription | MessageName;
/** What defineMessage returns: `{ name, fields: { value: "i32", ... } }`, frozen (its fields a frozen copy). */
export interface MessageDescription<N extends string = string, F extends Record<string, FieldType> = Record<string, FieldType>> {
  readonly name: N; readonly fields: F;
}

type TypedArrayOf<T> = T extends "f32" ? Float32Array : T extends "i32" ? Int32Array : Uint32Array;
/** An array's element (one level: `array<array<..>, N>` is not matched). */
type ElementOf<T extends string> = T extends `array<${infer E}, ${number}>` ? E : never;
/** The element under every level of an array: `f32` of `array<array<f32, 3>, 2>`. */
type InnermostOf<T extends string> = T extends `array<${infer R}` ? InnermostOf<R> : T extends `${infer E}, ${string}` ? E : T;
/** The JavaScript value `send` takes for a field of type `T`. */
export type FieldInput<T> =
  T extends ScalarType ? number :
  T extends VectorType ? Numbers :
  T extends `array<${ScalarType}, ${number}>` ? Numbers :
  T extends `array<${string}` ? (InnermostOf<T> extends ScalarType | VectorType ? Numbers | ReadonlyNested<Numbers> : T extends `array<array<${string}` ? ReadonlyNested<MessageInput> : readonly FieldInput<ElementOf<T>>[]) :
  T extends MessageDescription<string, infer F> ? { [K in keyof F]: FieldInput<F[K]> } :
  MessageInput;
/** A vector's components as `receive` gives them: `[x, y]` for a `vec2`, up to `[x, y, z, w]`. */
export type VectorOutput<T> =
  T extends `vec2<${string}>` ? [number, number] : T extends `vec3<${string}>` ? [number, number, number] : [number, number, number, number];
/** The JavaScript value `receive` gives for a field of type `T` (a vector as a tuple, a numeric array, nested or not, as one flat typed array). */
export type FieldOutput<T> =
  T extends ScalarType ? number :
  T extends VectorType ? VectorOutput<T> :
  T extends `array<${string}` ? (InnermostOf<T> extends `vec${number}<${infer S}>` ? TypedArrayOf<S> : InnermostOf<T> extends ScalarType ? TypedArrayOf<InnermostOf<T>> : T extends `array<array<${string}` ? Nested<MessageOutput> : FieldOutput<ElementOf<T>>[]) :
  T extends MessageDescription<string, infer F> ? { -readonly [K in keyof F]: FieldOutput<F[K]> } :
  MessageOutput;
/** A message of description `D` as `send` takes it: `InputOf<typeof Request>` is `{ value: number }`. */
export type InputOf<D extends MessageDescription> = { [K in keyof D["fields"]]: FieldInput<D["fields"][K]> };
/** A message of description `D` as `receive` gives it (vectors as tuples of numbers, numeric arrays as typed arrays): a plain object of its own, not read-only. */
export type OutputOf<D extends MessageDescription> = { -readonly [K in keyof D["fields"]]: FieldOutput<D["fields"][K]> };

/** The kernel's `state` array as a host handler sees it and `readState` returns it. */
export type StateArray = Uint32Array | Int32Array | Float32Array;
/** The element types a kernel's `state` array is declared with (`atomic<u32>` when none is given). */
export type StateType = "atomic<u32>" | "atomic<i32>" | "u32" | "i32" | "f32";
/** A kernel's persistent `state` array (zeroed at launch); read it with `readState`. */
export interface StateDefinition { length: number; type?: StateType | undefined; }
/** The typed array of a state's element type `T`: a `Float32Array` for `f32`, an `Int32Array` for `i32` and `atomic<i32>`, else (`u32`, `atomic<u32>`, none given) a `Uint32Array`; for a union of types, the union of their arrays. */
type StateElementArray<T> = T extends "f32" ? Float32Array : T extends "i32" | "atomic<i32>" ? Int32Array : Uint32Array;
/**
 * What `readState()` gives for a kernel whose definition declares `state` as `S`: `{ length: 64, type: "f32" }`
 * a `Float32Array`, `{ length: 64 }` a `Uint32Array`; a definition without `state` (`readState` rejects
 * with a TypeError) or one whose type is not known, any `StateArray`.
 */
export type StateArrayOf<S extends StateDefinition | undefined> =
  [S] extends [StateDefinition] ? ("type" extends keyof S ? StateElementArray<S["type" & keyof S]> : Uint32Array) : StateArray;
/**
 * What a host handler gets as `state` for a definition that declares `state` as `S`: the array
 * `readState()` gives (see `StateArrayOf`: `{ length: 4, type: "f32" }` a `Float32Array`), `undefined`
 * for a definition without `state`, and where `S` is not known either of them.
 */
export type HandlerStateOf<S extends StateDefinition | undefined> =
  [S] extends [StateDefinition] ? StateArrayOf<S> : [S] extends [undefined] ? undefined : StateArray | undefined;
/**
 * A kernel's handler in JavaScript, run by the "cpu" backend: gets the message as `receive` would
 * give it and the state array (updated in place; typed by the definition's `state`, see
 * `HandlerStateOf`), returns the answer, or null/undefined to drop the message. Runs synchronously;
 * a throw drops the message and counts an error.
 */
export type HostHandler<I extends MessageDescription = MessageDescription, O extends MessageDescription = MessageDescription, S extends StateDefinition | undefined = StateDefinition | undefined> =
  // A method's type, whose parameters TypeScript checks both ways: a definition typed by its own
  // state is still a `KernelDefinitionInput` of any state (its handler was one of `StateArray | undefined`).
  { handler(message: OutputOf<I>, state: HandlerStateOf<S>): InputOf<O> | null | undefined }["handler"];

interface KernelDefinitionBase<I extends MessageDescription, O extends MessageDescription, S extends StateDefinition | undefined> {
  id?: string | undefined;
  /** `ringKernel` only: replace a kernel registered under the same id (without it, that is a TypeError). */
  replace?: boolean | undefined;
  input: I | string;
  output: O | string;
  workgroupSize?: number | undefined;
  /** Its `state` array; it types the handler's `state` argument, and a launch of this definition's `readState()` (see `StateArrayOf`). */
  state?: S;
}
/**
 * A kernel: `wgsl` (`fn handle(msg: In) -> Out`, or `fn handle(msg: In, out: ptr<function, Out>) -> bool`
 * to drop messages) runs on GPU backends, `handler` on the "cpu" backend; give at least one.
 */
export type KernelDefinitionInput<I extends MessageDescription = MessageDescription, O extends MessageDescription = MessageDescription, S extends StateDefinition | undefined = StateDefinition | undefined> =
  KernelDefinitionBase<I, O, S> & ({ wgsl: string; handler?: HostHandler<I, O, S> | undefined } | { wgsl?: string | undefined; handler: HostHandler<I, O, S> });

/** Registers a message type by name and returns its description. */
export function defineMessage<const N extends string, const F extends Record<string, FieldType>>(name: N, fields: F): MessageDescription<N, F>;
/** Registers a kernel for `runtime.launch(id)` (the seeds' `@ring_kernel`) and returns its definition; a taken id is a TypeError unless `replace: true`. */
export function ringKernel<I extends MessageDescription, O extends MessageDescription, S extends StateDefinition | undefined = undefined>(definition: KernelDefinitionInput<I, O, S> & { id: string }): KernelDefinitionInput<I, O, S> & { id: string };

/** The runtime's own lifecycle: `running` from `create`, `draining` after `drain()`, `stopped` after `completeShutdown()` or `dispose()`. */
export type LifecycleState = "running" | "draining" | "stopped";

/** What `dispose()` and `completeShutdown()` resolve with: the runtime's whole life, every message accounted for. */
export interface ShutdownReport {
  /** From `create` to shutdown, in milliseconds. */
  totalUptimeMs: number;
  /** Kernels launched and terminated over the runtime's life, removed ones included. */
  kernelsLaunched: number; kernelsTerminated: number;
  /** Messages processed by every kernel. */
  messagesProcessed: number;
  /** Messages accepted but never processed (left by a terminate or drain that timed out). */
  messagesUnprocessed: number;
  /** Answers nobody received: left in output queues at shutdown or at `remove`, and late answers of calls that timed out. */
  answersNeverReceived: number;
  deviceLosses: number; recoveries: number;
  /** Live migrations of kernels between devices (`migrate`). */
  migratedKernels: number;
}

/** `handle.status()`: a kernel's state and queue depths at a glance. */
export interface KernelStatus {
  id: string; state: KernelState; mode: KernelMode;
  /** Messages waiting on the host to go to the device. */
  inputQueueDepth: number;
  /** Answers waiting to be received. */
  outputQueueDepth: number;
  messagesProcessed: number;
  /** Milliseconds since launch (until termination). */
  uptimeMs: number;
}

/**
 * A launched kernel: what `launch` resolves with and `getKernel` finds. `I` and `O` (from a typed
 * definition, or given: `launch<typeof Request, typeof Response>("worker")`) type its messages
 * and answers, and `S` what `readState()` gives (from the definition's `state`, see `StateArrayOf`).
 * `await using kernel = await runtime.launch(...)` terminates it at block exit.
 */
export class KernelHandle<I extends MessageDescription = MessageDescription, O extends MessageDescription = MessageDescription, S extends StateArray = StateArray> {
  private constructor();
  /** `terminate()`, unless the kernel has ended already (terminated, removed, or its runtime disposed): then nothing. */
  [Symbol.asyncDispose](): Promise<void>;
  readonly id: string;
  /** The state now (KernelNotFoundError once the kernel is removed). */
  readonly state: KernelState;
  /** What `JSON.stringify` and Node's `console.log` show: its id, and its state (null once the kernel is removed). */
  toJSON(): { id: string; state: KernelState | null };
  /** Queues one message; waits up to `timeout` ms for room, then QueueFullError. */
  send<M extends object = InputOf<I>>(message: HandleInput<I, M>, options?: WaitOptions): Promise<void>;
  /** Queues one message if there is room now; throws QueueFullError if not, or while an earlier send to the kernel still waits to be queued (it never overtakes one). */
  trySend<M extends object = InputOf<I>>(message: HandleInput<I, M>): void;
  /** Queues every message within `timeout` and resolves with their count, or rejects with QueueFullError whose `accepted` (from the front) went in. */
  sendBatch<M extends object = InputOf<I>>(messages: ReadonlyArray<HandleInput<I, M>> | PackedMessages, options?: WaitOptions): Promise<number>;
  /** The next answer; TimeoutError after `timeout` ms, waits without one. */
  receive<T extends object = OutputOf<O>>(options?: WaitOptions): Promise<HandleOutput<O, T>>;
  /** Waits in line for the next answer, as `receive` does, and calls `callback(answer)` in the same step as it takes it: a callback that throws leaves the answer queued and the promise rejects with what it threw. */
  receiveInto<T extends object = OutputOf<O>>(callback: (answer: HandleOutput<O, T>) => void, options?: WaitOptions): Promise<void>;
  /** The next answer if one is waiting now, or null; throws when none will come. */
  tryReceive<T extends object = OutputOf<O>>(): HandleOutput<O, T> | null;
  /** `min` (default 1) to `max` answers packed in the output layout, with `packed: true` (see `ReceiveBatchOptions`). */
  receiveBatch(options: PackedReceiveBatchOptions): Promise<Uint8Array>;
  /** `min` (default 1) to `max` answers, as objects (see `ReceiveBatchOptions`). */
  receiveBatch<T extends object = OutputOf<O>>(options?: ReceiveBatchOptions & { packed?: false | undefined }): Promise<HandleOutput<O, T>[]>;
  receiveBatch(options?: ReceiveBatchOptions): Promise<OutputOf<O>[] | Uint8Array>;
  /** Sends one message and resolves with its own answer (matched by correlation id). */
  call<M extends object = InputOf<I>, T extends object = OutputOf<O>>(message: HandleInput<I, M>, options?: WaitOptions): Promise<HandleOutput<O, T>>;
  /** Queues one message with an envelope and resolves with the header it was sent with (as the runtime's `sendEnvelope`). */
  sendEnvelope<M extends object = InputOf<I>>(message: HandleInput<I, M>, options?: SendEnvelopeOptions): Promise<EnvelopeHeader>;
  /** The next answer and its envelope's header; TimeoutError after `timeout` ms. */
  receiveEnvelope<T extends object = OutputOf<O>>(options?: WaitOptions): Promise<ReceivedEnvelope<HandleOutput<O, T>>>;
  /** launched → active, or deactivated → active. */
  activate(): Promise<void>;
  /** active → deactivated: input stays queued, nothing is dispatched. */
  deactivate(): Promise<void>;
  /** The seeds' name for `deactivate`. */
  suspend(): Promise<void>;
  /** The seeds' name for `activate`: deactivated → active, or launched → active. */
  resume(): Promise<void>;
  /** Graceful stop within `timeout` ms (default 5000): queued messages are processed first. */
  terminate(options?: TimeoutOptions): Promise<void>;
  /** Resolves once the kernel is terminated or removed (by this handle or any other call); past `timeout` a `TimeoutError`, or the `signal`'s reason, the kernel left as it is. */
  wait(options?: WaitOptions): Promise<void>;
  /** Its kernel's `state` array, as `runtime.readState(id)` reads it: this launch's only (KernelNotFoundError once it is removed). */
  readState(): Promise<S>;
  /** Writes `values` into its kernel's `state` array from element `index` on (default 0), as `runtime.writeState(id, values, index)` does: this launch's only. */
  writeState(values: Uint32Array | Int32Array | Float32Array, index?: number): Promise<void>;
  /** A copy of its kernel's `state` array in a new `GPUBuffer` on its device, as `runtime.stateToGPU(id)` makes one: this launch's only; the caller destroys it. */
  stateToGPU(): GPUBuffer;
  status(): KernelStatus;
  /** Every counter, whether or not the runtime keeps telemetry (then `latency` is empty). */
  metrics(): KernelTelemetry;
  /**
   * Its answers one by one as they come (`for await (const answer of kernel.answers())`), each
   * wait with `receive`'s options. An answer is taken only when the loop asks for it, so leaving
   * the loop loses none. Ends when none will come (terminated with none left, removed, or the
   * runtime disposed); other refusals, a wait's timeout and the signal's abort are thrown.
   */
  answers<T extends object = OutputOf<O>>(options?: WaitOptions): AsyncGenerator<HandleOutput<O, T>, void, undefined>;
  /**
   * Its answers as a `ReadableStream`, each taken from the kernel when a reader asks for it (so
   * cancelling the stream loses none; the rest stay queued), each wait with `receive`'s options.
   * Closes when none will come (terminated with none left, removed, or the runtime disposed);
   * other refusals, a wait's timeout and the signal's abort error it, a lost device's
   * `DeviceLostError` too (with `autoRecover` as well, since the kernel comes back from its last checkpoint, which
   * its reader should hear of: make a new one once `deviceEvents()` says `recovered`). Transferred with
   * `postMessage`, the worker's end of the platform's pipe reads one answer ahead of the page,
   * and a cancel from the page loses that one; an error reaches the page as a plain `Error`.
   */
  readable<T extends object = OutputOf<O>>(options?: WaitOptions): ReadableStream<HandleOutput<O, T>>;
  /**
   * A `WritableStream` that sends each chunk to the kernel, in order, each waiting for room with
   * `send`'s options (the kernel's queue is its backpressure): `source.pipeTo(kernel.writable())`.
   * A refused send errors it; closing it leaves the kernel running, aborting it ends a send's wait
   * (`pipeTo(writable, { signal })` finishes a write under way before it aborts: give
   * `writable({ signal })` the same signal). Transferred with `postMessage`, a page's write
   * resolves once the worker holds the message (which is then queued when there is room), and an
   * abort from the page does not end a send's wait: abort a `signal` in the worker for that.
   */
  writable<M extends object = InputOf<I>>(options?: WaitOptions): WritableStream<HandleInput<I, M>>;
  /** The same as `answers()`: `for await (const answer of kernel)`. */
  [Symbol.asyncIterator](): AsyncGenerator<OutputOf<O>, void, undefined>;
}

/**
 * The built-in kernels' messages, so `launch("doubler")` (and the others, without a definition of
 * your own) gives a typed handle: `(await doubler.call({ value: 5 })).result` is a number.
 */
export interface BuiltInKernels {
  doubler: [MessageDescription<"Request", { value: "i32" }>, MessageDescription<"Response", { result: "i32" }>];
  echo: [MessageDescription<"EchoMessage", { value: "i32" }>, MessageDescription<"EchoMessage", { value: "i32" }>];
  vector_add: [
    MessageDescription<"VectorPair", { a: "array<f32, 32>"; b: "array<f32, 32>" }>,
    MessageDescription<"VectorSum", { sum: "array<f32, 32>" }>,
  ];
  saxpy: [
    MessageDescription<"SaxpyInput", { a: "f32"; x: "array<f32, 32>"; y: "array<f32, 32>" }>,
    MessageDescription<"SaxpyOutput", { result: "array<f32, 32>" }>,
  ];
  /** Its state: 64 `atomic<u32>` bins. */
  histogram: [MessageDescription<"HistogramSamples", { samples: "array<f32, 16>" }>, MessageDescription<"HistogramAck", { binned: "u32" }>, Uint32Array];
  mandelbrot: [
    MessageDescription<"MandelbrotTile", { origin: "vec2<f32>"; step: "f32"; max_iter: "u32" }>,
    MessageDescription<"MandelbrotCounts", { iterations: "array<u32, 64>" }>,
  ];
}
/** `T` as a call's type argument gives it, never inferred from where the result goes (`const a: Float32Array = await runtime.readState(id)` is a type error, not a claim): TypeScript 5.4's `NoInfer`, for older compilers too. */
type Given<T> = [T][T extends unknown ? 0 : never];
/** What a built-in kernel's `readState()` gives: its state's array (the histogram's bins), or, for one without state (it rejects), any `StateArray`. */
type BuiltInStateOf<K extends keyof BuiltInKernels> = BuiltInKernels[K] extends [unknown, unknown, infer S extends StateArray] ? S : StateArray;

export interface RingKernelRuntime {
  /** Launches a built-in kernel (see `BuiltInKernels`) and resolves with its typed handle. */
  launch<K extends keyof BuiltInKernels>(id: K, definition?: null, options?: LaunchOptions): Promise<KernelHandle<BuiltInKernels[K][0], BuiltInKernels[K][1], BuiltInStateOf<K>>>;
  /**
   * Launches a registered kernel, or `definition`, and resolves with its handle; a typed
   * definition gives a typed handle.
   */
  launch<I extends MessageDescription = MessageDescription, O extends MessageDescription = MessageDescription, S extends StateDefinition | undefined = undefined>(
    id: string, definition?: KernelDefinitionInput<I, O, S> | null, options?: LaunchOptions): Promise<KernelHandle<I, O, StateArrayOf<S>>>;
  /** A handle to the built-in kernel `id` (see `BuiltInKernels`), typed, or `null` when none is launched under it. A kernel of your own launched under a built-in's id is typed by `getKernel<I, O>(id)`. */
  getKernel<K extends keyof BuiltInKernels>(id: K): KernelHandle<BuiltInKernels[K][0], BuiltInKernels[K][1], BuiltInStateOf<K>> | null;
  /** A handle to the kernel `id` (launched and not removed), or `null`; `I` and `O` type its messages as `launch`'s do (`getKernel<typeof Request, typeof Response>("worker")`). */
  getKernel<I extends MessageDescription = MessageDescription, O extends MessageDescription = MessageDescription, S extends StateArray = StateArray>(id: string): KernelHandle<I, O, S> | null;
  /**
   * Copies the kernel's `state` array back from the GPU, as a `Uint32Array`, `Int32Array` or
   * `Float32Array` by its element type; it includes every message answered so far (after a lost
   * device, a kernel with a `checkpointIntervalMs` holds its last checkpoint). Readable until the
   * kernel is removed (or the runtime disposed), so final results survive `terminate`. `T`, given
   * (`readState<Float32Array>(id)`), types it where the caller knows the kernel's state type; a
   * handle from a typed definition knows it (see `StateArrayOf`).
   */
  readState<T extends StateArray = StateArray>(id: string): Promise<Given<T>>;
  /** Queues one message; waits up to `timeout` ms for room, then QueueFullError. */
  send<M extends object & MessageLike<M>>(id: string, message: M & NotAMessage<M>, options?: WaitOptions): Promise<void>;
  /**
   * Queues many messages (objects, or one typed array / ArrayBuffer / SharedArrayBuffer already packed in the input
   * layout), in order: all of them within `timeout` (resolving with their count), or
   * QueueFullError whose `accepted` says how many (from the front) were queued.
   */
  sendBatch<M extends object & MessageLike<M>>(id: string, messages: ReadonlyArray<M & NotAMessage<M>> | PackedMessages, options?: WaitOptions): Promise<number>;
  /** Resolves with the next answer; TimeoutError after `timeout` ms, waits without one; a TypeError at once on a stage connected onward with no answer left (its answers go to the next stage). `T` types the answer (e.g. `OutputOf<typeof Response>`). */
  receive<T extends object = MessageOutput>(id: string, options?: WaitOptions): Promise<T>;
  /**
   * Sends one message and resolves with its own answer (matched by correlation id). `T` types the
   * answer; the message is checked against its own type when `T` is inferred, and is any object
   * when `T` is given (TypeScript infers no type argument once one is given).
   */
  call<T extends object = MessageOutput, M extends object & MessageLike<M> = object>(id: string, message: M & NotAMessage<M>, options?: WaitOptions): Promise<T>;
  /** `min` (default 1) to `max` answers packed in the output layout, with `packed: true` (see `ReceiveBatchOptions`). */
  receiveBatch(id: string, options: PackedReceiveBatchOptions): Promise<Uint8Array>;
  /** `min` (default 1) to `max` answers, as objects (see `ReceiveBatchOptions`); `T` types each (e.g. `OutputOf<typeof Response>`). */
  receiveBatch<T extends object = MessageOutput>(id: string, options?: ReceiveBatchOptions & { packed?: false | undefined }): Promise<T[]>;
  receiveBatch(id: string, options?: ReceiveBatchOptions): Promise<MessageOutput[] | Uint8Array>;
  /** Runs `operation` under the kernel's circuit breaker: `CircuitOpenError` without calling it while the circuit is open; its rejection counts as a failure (but for a `CircuitOpenError`, `QueueFullError` or `OverloadedError`, which turned it away before the kernel had its message), its result as a success. */
  withCircuitBreaker<T>(id: string, operation: () => T | PromiseLike<T>): Promise<Awaited<T>>;
  /**
   * What happens to the runtime's devices from the call on, one event at a time
   * (`for await (const event of runtime.deviceEvents())`): each device lost, recovered, each
   * recovery attempt that failed, and automatic recovery giving up. Ends once the runtime is
   * disposed; `signal` ends the wait (the loop then throws its reason). Loops read
   * independently, each seeing every event.
   */
  deviceEvents(options?: { signal?: AbortSignal | null | undefined }): AsyncGenerator<DeviceEvent, void, undefined>;
  /** The same as `dispose()`: `await using runtime = await RingKernelRuntime.create()`. */
  [Symbol.asyncDispose](): Promise<void>;
  /** What `JSON.stringify` and Node's `console.log` show: its backend, lifecycle state and kernel ids. */
  toJSON(): { backend: string; lifecycleState: LifecycleState; kernelIds: string[] };
}

export interface ManagedKernel {
  /** The same as `terminate()`: `await using kernel = await managedKernel(...)`. */
  [Symbol.asyncDispose](): Promise<void>;
  /** What `JSON.stringify` and Node's `console.log` show: its id. */
  toJSON(): { id: string };
}

/**
 * The seeds' `managed_kernel`: launches and activates `id` (a registered kernel, or `definition`)
 * and resolves with a handle that terminates it on `await using` exit. Options: `{ queueSize, mode,
 * terminateTimeout }` (ms, default 5000; `Infinity` waits as long as the drain takes).
 */
export function managedKernel<I extends MessageDescription = MessageDescription, O extends MessageDescription = MessageDescription>(
  runtime: RingKernelRuntime, id: string, definition?: KernelDefinitionInput<I, O> | null, options?: ManagedKernelOptions,
): Promise<ManagedKernel>;

declare global {
  interface SymbolConstructor {
    /**
     * `Symbol.asyncDispose` (explicit resource management; TypeScript's `esnext.disposable` lib),
     * declared for projects whose `lib` lacks it, as TypeScript's own lib declares it, so both
     * merge. The classes here have the method where the engine has the symbol (Node 20+ and
     * current browsers); elsewhere call `dispose()` or `terminate()`.
     */
    readonly asyncDispose: unique symbol;
  }
}
"#;

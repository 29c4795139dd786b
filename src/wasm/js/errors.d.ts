import type { DegradationLevel, KernelState } from "./ringkernel_web.js";

/** The `name` of every error the runtime rejects with (bad arguments are `TypeError`s). */
export type RingKernelErrorName =
  | "KernelNotFoundError" | "KernelStateError" | "QueueFullError" | "TimeoutError" | "MessageFormatError"
  | "KernelCompileError" | "MessageDroppedError" | "BackendUnavailableError" | "DeviceLostError"
  | "RuntimeDisposedError" | "RuntimeDrainingError" | "CircuitOpenError" | "OverloadedError"
  /** The base class's own name (an instance made with `new RingKernelError(...)`). */
  | "RingKernelError";
/** Every error the runtime rejects with: `catch (e) { if (e instanceof RingKernelError) ... }`. `errors`: when several kernels of a `terminateAll()`, `drain()` or `dispose()` failed, each one's own error by kernel id (as an `AggregateError` lists them); the error is then of the first one's class, with its `kernelId` and their `unprocessed` summed. `accepted`: on whatever error ends a `sendBatch` part way, how many of its messages (from the front) went in and will be answered. `sent`: on a `call`'s error, whether its message was queued (Rust's `CallError::Unanswered` against `NotSent`): `true`, it may have run or may still run (a timed-out call's, or one that waited through a lost device, does, after recovery) and its answer is discarded; `false`, it never runs and may be sent again. Test it as `if (error.sent)`: it is absent where the runtime never took the call up (a bad argument, a handle whose kernel was removed, a call ended by its `signal`, which rejects with the signal's reason). */
export class RingKernelError extends Error {
  name: RingKernelErrorName; errors?: AnyRingKernelError[]; accepted?: number; sent?: boolean;
  /** The error as plain data, which `JSON.stringify` and `postMessage` carry whole (a structured clone of the error itself keeps only its message): `name`, `message` and its details, each of `errors` alike, and an aborted batch's `cause` (the signal's reason) as `{ name, message }`. */
  toJSON(): RingKernelErrorData;
  /** The error `toJSON()` described, of its own class (`RingKernelError` for a name it does not know; `TypeError`, `RangeError` and JavaScript's other own errors of their class), with its details: `RingKernelError.fromJSON(event.data.error)` in a page whose worker posted `error.toJSON()`. */
  static fromJSON(data: RingKernelErrorData): AnyRingKernelError;
  /** JavaScript's own errors, as a worker posts them (`{ name: error.name, message: error.message }`: a bad argument's `TypeError` or `RangeError` has no `toJSON()`), come back of their own class. */
  static fromJSON(data: JsErrorData): Error;
  static fromJSON(data: RingKernelErrorData | JsErrorData): AnyRingKernelError | Error;
}
/** One of JavaScript's own errors as plain data, `{ name, message }`: what a worker posts for the `TypeError`s and `RangeError`s of bad arguments. */
export interface JsErrorData { name: "Error" | "TypeError" | "RangeError" | "SyntaxError" | "ReferenceError" | "EvalError" | "URIError"; message: string; }
/** A runtime error as plain data (`error.toJSON()`): its name, message and details. */
export interface RingKernelErrorData { name: RingKernelErrorName; message: string; errors?: RingKernelErrorData[]; [detail: string]: unknown; }
/** No kernel has this id. */
export class KernelNotFoundError extends RingKernelError { name: "KernelNotFoundError"; kernelId: string; }
/** An operation the kernel's state does not allow; `action` is what was asked (e.g. "activate"). `accepted`: for a `sendBatch` cut off part way (a `terminate` or `dispose()` meanwhile: `state` is then "terminating"), how many of its messages went in. */
export class KernelStateError extends RingKernelError { name: "KernelStateError"; kernelId: string; state: KernelState; action: string; accepted?: number; }
/** Why a kernel processed none of its input, when the kernel itself is why a wait ran out: its output queue is full of answers nobody receives, it is not active, or its next stage (`connect`) takes none of its answers, being stalled itself; or, for a receive from a later stage of a pipeline, its input waits at an earlier stage held by another stage that stalls (`"upstreamStalled"`). */
export type Stall = "outputFull" | "inactive" | "nextStageStalled" | "upstreamStalled";
/** The input queue was full (at once for `trySend`, until the timeout for a send that waits, or with earlier sends to the kernel still waiting before a `trySend`); for `sendBatch`, `accepted` messages (from the front) were queued and will be answered, the rest were not. `stall` says when the kernel itself kept it full. */
export class QueueFullError extends RingKernelError { name: "QueueFullError"; kernelId: string; accepted: number; stall?: Stall; }
/** `unprocessed`: for a `terminate` that timed out, the messages it left unprocessed (0 otherwise). `stall`: for a call or receive, when the kernel itself answered nothing (it had input). When several kernels of a `terminateAll()`, `drain()` or `dispose()` timed out, `unprocessed` is their sum, `kernelId` the first one's and `errors` has each one's error. */
export class TimeoutError extends RingKernelError { name: "TimeoutError"; kernelId: string; unprocessed: number; stall?: Stall; }
/** `field` is the path of the bad field, e.g. "bodies[2].mass". */
export class MessageFormatError extends RingKernelError { name: "MessageFormatError"; kernelId: string; field: string; }
/** `line` and `column` are in the kernel's own WGSL, when the compiler gave a position (1-based; the column in characters, as an editor counts them). */
export class KernelCompileError extends RingKernelError { name: "KernelCompileError"; kernelId: string; line: number | null; column: number | null; }
/** The handler dropped the message of this call, or failed on it (a JavaScript handler that threw, or returned a Promise or a malformed answer: the message says which), so it has no answer. */
export class MessageDroppedError extends RingKernelError { name: "MessageDroppedError"; kernelId: string; }
/** No WebGPU adapter or device (the message says what was tried and how to get WebGPU), or a native graphics API's backend ("vulkan", ...) asked for on the web. */
export class BackendUnavailableError extends RingKernelError { name: "BackendUnavailableError"; }
/** The GPU device was lost; kernels wait for `recover()`. `kernelId` and `unprocessed`: for a `terminate` (or `dispose()`) of a kernel stranded on the lost device, which kernel and how many of its messages were left unprocessed. */
export class DeviceLostError extends RingKernelError { name: "DeviceLostError"; kernelId?: string; unprocessed?: number; }
/** The runtime was disposed: every later call rejects with this. `accepted`: for a `sendBatch` that was refused part way because the runtime was disposed, how many of its messages went in. A batch still waiting for room when `dispose()` began rejects with `RuntimeDrainingError` (or, its kernel terminating, `KernelStateError`) and its `accepted` instead. */
export class RuntimeDisposedError extends RingKernelError { name: "RuntimeDisposedError"; accepted?: number; }
/** The runtime is draining (`drain()`, or `dispose()` before it stops): new launches, sends and calls are refused; receives still work. `accepted`: for a `sendBatch` waiting for room when the drain began, how many of its messages went in. */
export class RuntimeDrainingError extends RingKernelError { name: "RuntimeDrainingError"; accepted?: number; }
/** The kernel's circuit breaker is open (see `circuitBreaker(id)`): the send, batch or call was refused whole and nothing was queued; `retryAfterMs` says when the circuit lets a probe through. */
export class CircuitOpenError extends RingKernelError { name: "CircuitOpenError"; kernelId: string; retryAfterMs: number; }
/** The runtime is degraded to `level` and refuses messages for kernels below `requiredPriority` (this one has `priority`); nothing was accepted, the message is still yours. */
export class OverloadedError extends RingKernelError { name: "OverloadedError"; kernelId: string; level: DegradationLevel; priority: number; requiredPriority: number; }
/** One of the runtime's errors, as a union that narrows on `name`. */
export type AnyRingKernelError =
  | KernelNotFoundError | KernelStateError | QueueFullError | TimeoutError | MessageFormatError
  | KernelCompileError | MessageDroppedError | BackendUnavailableError | DeviceLostError | RuntimeDisposedError
  | RuntimeDrainingError | CircuitOpenError | OverloadedError;
/** Whether `error` is one of the runtime's errors (`instanceof RingKernelError`); narrows on `error.name`. */
export function isRingKernelError(error: unknown): error is AnyRingKernelError;

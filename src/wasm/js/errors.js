// The runtime's errors as JavaScript classes: `catch (e) { if (e instanceof QueueFullError) ... }`.
// Each class keeps the contract's `name` (set on the prototype, so minifiers that rename classes
// cannot change it) and carries its details as properties (`kernelId`, `accepted`, ...), which
// the wasm layer sets. Bad arguments are JavaScript's own `TypeError` and `RangeError`.

/** Keys of an error's data that `fromJSON` does not copy as details. */
const NOT_DETAILS = new Set(["name", "message", "stack", "__proto__", "constructor", "toJSON"]);

/**
 * An error's `cause` (an aborted batch's: the signal's reason, a `DOMException` unless
 * `abort(reason)` gave another) or one of its `errors` as plain data: an error's own `toJSON()`,
 * or `{ name, message }` of any other error (`JSON.stringify` makes a `DOMException` `{}`, and a
 * clone of an `Error` subclass keeps no class); anything else as it is.
 */
function errorData(error) {
  if (typeof error?.toJSON === "function") return error.toJSON();
  if (error instanceof Error || (typeof DOMException === "function" && error instanceof DOMException)) {
    return { name: error.name, message: error.message };
  }
  return error;
}

/**
 * JavaScript's own error classes, by name: bad arguments are `TypeError`s and `RangeError`s, and
 * a worker posts those as `{ name, message }` (they have no `toJSON()`), so `fromJSON` makes them
 * again of their own class instead of calling them `RingKernelError`s.
 */
const JS_ERRORS = { Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError };

/** Every error the runtime rejects with, apart from bad arguments. */
export class RingKernelError extends Error {
  /**
   * The error as plain data, which `JSON.stringify` and `postMessage` carry whole: its `name`,
   * `message` and details (`kernelId`, `accepted`, ...; each of `errors` alike). A structured
   * clone of the error itself keeps only its message (its class and details are lost), so a
   * worker posts `error.toJSON()` and the page makes the error again with `fromJSON`.
   */
  toJSON() {
    const data = { name: this.name, message: this.message };
    for (const [key, value] of Object.entries(this)) {
      if (key === "errors" && Array.isArray(value)) data[key] = value.map(errorData);
      else if (key === "cause") data[key] = errorData(value);
      else data[key] = value;
    }
    return data;
  }

  /**
   * The error `toJSON()` described, of its own class (`RingKernelError` for a name it does not
   * know), with its details; JavaScript's own errors (`{ name: "TypeError", message }`, as a
   * worker posts a bad argument's) of theirs: `TypeError`, `RangeError`, ... Nested `errors` are
   * made in a loop, not by recursion, so data of any depth (a worker's message is anybody's)
   * makes its errors instead of overflowing the stack, and data that refers to itself (a
   * structured clone keeps cycles) makes errors that do too.
   */
  static fromJSON(data) {
    const made = new Map();
    const pending = [];
    /** The error for `data` (one per object), its details filled in by the loop below. */
    const errorFor = (data) => {
      const object = typeof data === "object" && data !== null;
      let error = object ? made.get(data) : undefined;
      if (error === undefined) {
        const jsError = Object.hasOwn(JS_ERRORS, data?.name ?? "") ? JS_ERRORS[data.name] : undefined;
        error = jsError ? new jsError(data.message) : ringKernelError(data?.name, data?.message);
        if (object) made.set(data, error);
        pending.push([data, error]);
      }
      return error;
    };
    const root = errorFor(data);
    while (pending.length > 0) {
      const [data, error] = pending.pop();
      for (const [key, value] of Object.entries(data ?? {})) {
        // Details only: nothing that would replace the error's prototype, class or methods
        // (its own, `Error`'s or `Object`'s: `toString`, `valueOf`, ...).
        if (NOT_DETAILS.has(key) || key in Error.prototype) continue;
        const detail = key === "errors" && Array.isArray(value) ? value.map(errorFor) : value;
        Object.defineProperty(error, key, { value: detail, writable: true, enumerable: true, configurable: true });
      }
    }
    return root;
  }
}
/** No kernel has this id. */
export class KernelNotFoundError extends RingKernelError {}
/** The kernel's state does not allow the operation (`state`, `action`). */
export class KernelStateError extends RingKernelError {}
/** The input queue stayed full until the timeout; `accepted` messages of a batch went in. */
export class QueueFullError extends RingKernelError {}
/** A receive, call or terminate outlasted its timeout (`unprocessed` for terminate). */
export class TimeoutError extends RingKernelError {}
/** A message that does not fit the kernel's layout; `field` is the bad field's path. */
export class MessageFormatError extends RingKernelError {}
/** The kernel's WGSL was refused; `line` and `column` are in its own source. */
export class KernelCompileError extends RingKernelError {}
/** The handler dropped the message of this call, so it has no answer. */
export class MessageDroppedError extends RingKernelError {}
/** No WebGPU adapter (or device) could be had; the message says what was tried. */
export class BackendUnavailableError extends RingKernelError {}
/** The GPU device was lost; kernels wait for `recover()`. */
export class DeviceLostError extends RingKernelError {}
/** The runtime was disposed: nothing can be done with it any more. */
export class RuntimeDisposedError extends RingKernelError {}
/** The runtime is draining (`drain()`): it finishes what it has and takes no new launches, sends or calls. */
export class RuntimeDrainingError extends RingKernelError {}
/** The kernel's circuit breaker is open: nothing was queued; try again after `retryAfterMs`. */
export class CircuitOpenError extends RingKernelError {}
/** The runtime is degraded (`level`) and refused a message for a kernel below `requiredPriority`; nothing was accepted. */
export class OverloadedError extends RingKernelError {}

const CLASSES = {
  RingKernelError,
  KernelNotFoundError,
  KernelStateError,
  QueueFullError,
  TimeoutError,
  MessageFormatError,
  KernelCompileError,
  MessageDroppedError,
  BackendUnavailableError,
  DeviceLostError,
  RuntimeDisposedError,
  RuntimeDrainingError,
  CircuitOpenError,
  OverloadedError,
};
for (const [name, errorClass] of Object.entries(CLASSES)) {
  Object.defineProperty(errorClass.prototype, "name", { value: name, writable: true, configurable: true });
}

/**
 * The error of class `name` (one of the above) with `message`; called by the wasm layer. The
 * default export, so the package's `export *` of this module leaves it out.
 */
export default function ringKernelError(name, message) {
  const errorClass = Object.hasOwn(CLASSES, name) ? CLASSES[name] : RingKernelError;
  return new errorClass(message);
}

/** Whether `error` is one of the runtime's errors (it narrows the type in TypeScript). */
export function isRingKernelError(error) {
  return error instanceof RingKernelError;
}

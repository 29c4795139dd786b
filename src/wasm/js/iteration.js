// A kernel's answers as an async iterable: `for await (const answer of kernel)` receives them one
// by one as they come, and `kernel.answers({ timeout, signal })` does the same with `receive`'s
// options for each wait. Installed when the package is imported, as lifetimes.js is.
//
// Each answer is taken from the kernel's output queue only when the loop asks for the next one
// (`tryReceive`, or `receive` when none is waiting), so leaving the loop (`break`, `return`, a
// throw) loses none: the answers not yet asked for stay queued. The loop ends when no answer will
// come: the kernel terminated with none left, was removed, or the runtime was disposed. Any other
// refusal (a failed kernel, a lost device, a wait's timeout, the signal's abort) is thrown into
// the loop. For throughput, loop over `receiveBatch` instead: each batch is in the caller's hands
// whole.
//
// Web Streams likewise: `kernel.readable()` is a `ReadableStream` of its answers, each taken when
// a reader asks for it (a high-water mark of 0: none waits in the stream, so cancelling it loses
// none), and `kernel.writable()` a `WritableStream` that sends each chunk, its backpressure the
// kernel's queue (a write waits for room as `send` does). `source.pipeTo(kernel.writable())`
// feeds a kernel; closing the writable leaves the kernel running.
//
// A runtime's device events likewise: `for await (const event of runtime.deviceEvents())` hears
// of each device lost, recovered, each failed recovery and automatic recovery giving up, from the
// call on, and ends once the runtime is disposed.
import { KernelHandle, RingKernelRuntime } from "./ringkernel_web.js";
import { KernelNotFoundError, KernelStateError, RuntimeDisposedError } from "./SNIPPETS/errors.js";

/**
 * Whether `error` says that no answer will ever come (the end of the kernel's answers): the
 * core's `Error::ends_answers`, which a Rust `answers()` stream ends on.
 */
function endOfAnswers(error) {
  return (
    (error instanceof KernelStateError && error.state === "terminated" && error.action === "receive") ||
    error instanceof KernelNotFoundError ||
    error instanceof RuntimeDisposedError
  );
}

async function* answersOf(kernel, options) {
  const signal = options?.signal;
  // The first turn waits through `receive`, which reads the options (refusing bad ones before
  // any answer is taken) and refuses at once when the signal has already aborted; later turns
  // take a waiting answer without a wait, once the signal is seen not to have aborted.
  let first = true;
  for (;;) {
    let answer = null;
    try {
      if (!first) {
        if (signal?.aborted) throw signal.reason;
        answer = kernel.tryReceive();
      }
      answer ??= await kernel.receive(options);
    } catch (error) {
      if (endOfAnswers(error)) return;
      throw error;
    }
    first = false;
    yield answer;
  }
}

Object.defineProperty(KernelHandle.prototype, "answers", {
  value: function answers(options) {
    return answersOf(this, options);
  },
  writable: true,
  configurable: true,
});

Object.defineProperty(KernelHandle.prototype, Symbol.asyncIterator, {
  value: function asyncIterator() {
    return answersOf(this, undefined);
  },
  writable: true,
  configurable: true,
});

/**
 * A signal of a stream's own, which aborts when the stream is done with its wait (`abort`) or
 * when a signal it follows aborts (the caller's `given`, with its reason); `release` stops
 * following them, so a long-lived caller's signal keeps no listener per stream that ended.
 * A stream dropped part way (its reader released, never cancelled or closed) never ends, so
 * the listener holds the stream's own controller only weakly and goes once that is collected
 * (`unfollowed`): a session's signal keeps no listener per stream let go.
 * A `given` that is no AbortSignal is a `TypeError` at once, as `receive`'s options say.
 */
function stopping(given, what) {
  if (given != null && (typeof given.addEventListener !== "function" || !("aborted" in given))) {
    throw new TypeError(`${what}: signal must be an AbortSignal, got ${given === null ? "null" : typeof given}`);
  }
  const own = new AbortController();
  const followed = [];
  const follow = (signal) => {
    if (signal == null) return;
    if (signal.aborted) return own.abort(signal.reason);
    const onAbort = forwarding(new WeakRef(own), signal);
    signal.addEventListener("abort", onAbort, { once: true });
    unfollowed?.register(own, { signal, onAbort }, own);
    followed.push([signal, onAbort]);
  };
  follow(given);
  return {
    signal: own.signal,
    follow,
    abort: (reason) => own.abort(reason),
    release() {
      unfollowed?.unregister(own);
      for (const [signal, onAbort] of followed.splice(0)) signal.removeEventListener("abort", onAbort);
    },
  };
}

/**
 * The listener that aborts `own` (a `WeakRef` to it) with `signal`'s reason, made out here so
 * that it closes over those two only and not over the stream's state.
 */
function forwarding(own, signal) {
  return () => own.deref()?.abort(signal.reason);
}

/** Takes a collected stream's listener off the signal it followed. */
const unfollowed =
  typeof FinalizationRegistry === "function"
    ? new FinalizationRegistry(({ signal, onAbort }) => signal.removeEventListener("abort", onAbort))
    : undefined;

function readableOf(kernel, options) {
  const stop = stopping(options?.signal, "readable options");
  const wait = { ...options, signal: stop.signal };
  let cancelled = false;
  return new ReadableStream(
    {
      // An answer is taken only in the step that hands it on (`receiveInto`), so a cancel, or
      // the signal, before that step takes nothing; the wait keeps its place among receives.
      async pull(controller) {
        try {
          await kernel.receiveInto((answer) => controller.enqueue(answer), wait);
        } catch (error) {
          if (cancelled) return;
          stop.release();
          if (endOfAnswers(error)) controller.close();
          else controller.error(error);
        }
      },
      cancel() {
        cancelled = true;
        stop.abort(CANCELLED);
        stop.release();
      },
    },
    { highWaterMark: 0 },
  );
}

function writableOf(kernel, options) {
  const stop = stopping(options?.signal, "writable options");
  const wait = { ...options, signal: stop.signal };
  return new WritableStream(
    {
      // The stream's own signal aborts as soon as it is aborted, before the write under way
      // settles (the sink's `abort` only runs after): a send waiting for room ends then.
      start(controller) {
        stop.follow(controller.signal);
      },
      write(message) {
        return kernel.send(message, wait).catch((error) => {
          stop.release();
          throw error;
        });
      },
      close() {
        stop.release();
      },
      abort() {
        stop.release();
      },
    },
    { highWaterMark: 1 },
  );
}

/** Why a stream's own wait ended: the stream was cancelled. */
const CANCELLED = Symbol("cancelled");

for (const [name, make] of [["readable", readableOf], ["writable", writableOf]]) {
  Object.defineProperty(KernelHandle.prototype, name, {
    value: function stream(options) {
      return make(this, options);
    },
    writable: true,
    configurable: true,
  });
}

async function* deviceEventsOf(runtime, seen, options) {
  for (;;) {
    const event = await runtime.nextDeviceEvent(seen, options);
    if (event === null) return;
    seen = event.seq;
    yield event;
  }
}

Object.defineProperty(RingKernelRuntime.prototype, "deviceEvents", {
  value: function deviceEvents(options) {
    // From the call on, not from the loop's first turn.
    return deviceEventsOf(this, this.lastDeviceEvent, options);
  },
  writable: true,
  configurable: true,
});

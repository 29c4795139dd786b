// How the package's objects end: `await using` disposes them, and nothing can free one under a
// pending call. Installed when the package is imported, before any object exists.
//
// wasm-bindgen gives every class `free()` and `[Symbol.dispose]`, which release the Rust object
// at once: any later call then dies with "null pointer passed to rust". A runtime must drain
// its kernels first, which only an async dispose can do, so both are taken away (and from the
// TypeScript declarations, so a synchronous `using` does not type-check). Objects end with
// `dispose()` or `terminate()` (or `await using`); their memory is reclaimed by the garbage
// collector once nothing holds them. After `dispose()` every operation rejects (or throws)
// `RuntimeDisposedError`; reads such as `getState` answer with the final state.
import { KernelHandle, ManagedKernel, RingKernelRuntime } from "./ringkernel_web.js";

/**
 * A handle's kernel that ended before its block did (terminated, removed, or ended by its
 * runtime's `dispose()`) is disposed already: its `terminate()` refuses, and disposal, which
 * ends what is still running, has nothing left to do.
 */
function terminateUnlessEnded() {
  return this.terminate().catch((error) => {
    const ended =
      error?.name === "RuntimeDisposedError" ||
      error?.name === "KernelNotFoundError" ||
      (error?.name === "KernelStateError" && error.state === "terminated");
    if (!ended) throw error;
  });
}

/** Each class and what `await using` calls when its block ends. */
const ASYNC_DISPOSE = [
  [RingKernelRuntime, function () { return this.dispose(); }],
  [KernelHandle, terminateUnlessEnded],
  [ManagedKernel, function () { return this.terminate(); }],
];

for (const [objectClass, dispose] of ASYNC_DISPOSE) {
  const prototype = objectClass.prototype;
  if (typeof Symbol.asyncDispose === "symbol") {
    Object.defineProperty(prototype, Symbol.asyncDispose, {
      value: function asyncDispose() {
        return dispose.call(this);
      },
      writable: true,
      configurable: true,
    });
  }
  if (typeof Symbol.dispose === "symbol") delete prototype[Symbol.dispose];
  delete prototype.free;
}

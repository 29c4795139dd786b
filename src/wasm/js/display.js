// How the package's objects show themselves: `JSON.stringify` and `console.log` in Node
// (`util.inspect`) show what they stand for (a runtime's backend, state and kernels; a kernel's
// id and state), and `String()` names the class. A wasm-bindgen object holds nothing but
// `__wbg_ptr`, its Rust object's address, which is all they would show otherwise. Installed
// when the package is imported, as lifetimes.js is.
import { KernelHandle, ManagedKernel, RingKernelRuntime } from "./ringkernel_web.js";

/** A read that refuses (a removed kernel's state) shows as null. */
function orNull(read) {
  try {
    return read();
  } catch {
    return null;
  }
}

/** Each class, its name, and what it shows (its `toJSON()`). */
const VIEWS = [
  [RingKernelRuntime, "RingKernelRuntime", (runtime) => ({
    backend: runtime.adapter.backend,
    lifecycleState: runtime.lifecycleState,
    kernelIds: runtime.kernelIds,
  })],
  [KernelHandle, "KernelHandle", (kernel) => ({ id: kernel.id, state: orNull(() => kernel.state) })],
  [ManagedKernel, "ManagedKernel", (kernel) => ({ id: kernel.id })],
];

const inspectCustom = Symbol.for("nodejs.util.inspect.custom");

for (const [objectClass, name, read] of VIEWS) {
  // Showing never throws: an object with no Rust object behind it (the class's prototype)
  // shows as empty.
  const view = (object) => (object.__wbg_ptr ? read(object) : {});
  Object.defineProperties(objectClass.prototype, {
    toJSON: { value: function toJSON() { return view(this); }, writable: true, configurable: true },
    [Symbol.toStringTag]: { value: name, configurable: true },
    // Node's console.log: `KernelHandle { id: 'doubler', state: 'active' }`.
    [inspectCustom]: {
      value: function inspect(depth, options, inspect) {
        if (depth < 0) return `[${name}]`;
        return `${name} ${inspect(view(this), { ...options, depth: options.depth == null ? null : options.depth - 1 })}`;
      },
      writable: true,
      configurable: true,
    },
  });
}

// `ringkernel-web/bundler`: the wasm-pack `bundler` build. The bundler's WebAssembly ESM
// integration (webpack's asyncWebAssembly, vite-plugin-wasm) instantiates the module when this
// file is imported, so `init` has nothing left to do. It is kept so code written for the default
// (`web`) build, which starts with `await init()`, runs unchanged.
export * from "./ringkernel_web.js";
// The error classes and isRingKernelError (not the default export: the wasm layer's factory).
export * from "./SNIPPETS/errors.js";
import "./lifetimes.js";
import "./iteration.js";
import "./display.js";

/** Nothing to do: the bundler instantiated the module on import. */
export default async function init() {}

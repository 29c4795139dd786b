// The package's entry (`import init, { RingKernelRuntime } from "ringkernel-web"`): wasm-bindgen's
// `web` build, the error classes, the lifetimes of its objects and how they show, and an `init()`
// that finds the wasm module in a browser, a worker, a bundler or Node.
export * from "./ringkernel_web.js";
// The error classes and isRingKernelError (not the default export: the wasm layer's factory).
export * from "./SNIPPETS/errors.js";
import "./lifetimes.js";
import "./iteration.js";
import "./display.js";
import initWasm, { initSync as initWasmSync, RingKernelRuntime, defineMessage as define, ringKernel as register } from "./ringkernel_web.js";

/** Whether the wasm module is instantiated: until then every call into it is refused by name. */
let ready = false;

/**
 * Loads and instantiates the wasm module (once; later calls resolve at once). Without an
 * argument it is fetched next to this file, or read from disk in Node, where `fetch` cannot
 * read `file:` URLs. An argument (bytes, a `Response`, a URL, a `WebAssembly.Module`, or
 * `{ module_or_path }`) is handed to wasm-bindgen's loader as it is.
 */
export default async function init(input) {
  if (input === undefined) {
    const url = new URL("ringkernel_web_bg.wasm", import.meta.url);
    if (url.protocol === "file:") input = { module_or_path: await readFileUrl(url) };
  }
  const exports = await initWasm(input);
  ready = true;
  return exports;
}

/** wasm-bindgen's synchronous `initSync({ module })`, noted as `init()` is. */
export function initSync(module) {
  const exports = initWasmSync(module);
  ready = true;
  return exports;
}

// The three ways into the package before it is initialized, which wasm-bindgen's glue would
// answer with "Cannot read properties of undefined (reading '__wbindgen_malloc')". Explicit
// exports take precedence over the `export *` above.
const notReady = (call) =>
  new Error(`ringkernel-web: ${call} was called before \`await init()\` resolved; nothing can run before the wasm module is loaded`);

/** `defineMessage`, refused by name before `init()`. */
export function defineMessage(name, fields) {
  if (!ready) throw notReady("defineMessage()");
  return define(name, fields);
}

/** `ringKernel`, refused by name before `init()`. */
export function ringKernel(definition) {
  if (!ready) throw notReady("ringKernel()");
  return register(definition);
}

const create = RingKernelRuntime.create;
RingKernelRuntime.create = function (options) {
  return ready ? create.call(this, options) : Promise.reject(notReady("RingKernelRuntime.create()"));
};

/** The bytes of a `file:` URL, through Node's `fs` (imported only here, so bundles never see it). */
async function readFileUrl(url) {
  const fs = "node:fs/promises";
  const { readFile } = await import(/* webpackIgnore: true */ /* @vite-ignore */ fs);
  return readFile(url);
}

// The package's entry (`import init, { RingKernelRuntime } from "ringkernel-web"`): wasm-bindgen's
// `web` build, the error classes, the lifetimes of its objects, and an `init()` that finds the
// wasm module in a browser, a worker, a bundler or Node.
export * from "./ringkernel_web.js";
// The error classes and isRingKernelError (not the default export: the wasm layer's factory).
export * from "./SNIPPETS/errors.js";
import "./lifetimes.js";
import "./iteration.js";
import initWasm from "./ringkernel_web.js";

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
  return initWasm(input);
}

/** The bytes of a `file:` URL, through Node's `fs` (imported only here, so bundles never see it). */
async function readFileUrl(url) {
  const fs = "node:fs/promises";
  const { readFile } = await import(/* webpackIgnore: true */ /* @vite-ignore */ fs);
  return readFile(url);
}

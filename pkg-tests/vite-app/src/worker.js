// A dedicated module worker that owns a ring-kernel runtime, in a Vite app: it imports the
// package by name (the web build: `init()` fetches the .wasm Vite emits for the worker; with
// `--mode bundler`, the bundler build through vite-plugin-wasm). The page posts what to run; the
// worker answers with what it found, or with the error that stopped it.
import { roundTrips } from "../../page/round-trips.js";

// Imported dynamically, after the handler below is set: the bundler build instantiates its wasm
// while it is imported (a top-level await), and a module worker's messages that arrive while its
// top-level code waits find no handler and are lost.
const ringkernel = import("ringkernel-web");

self.onmessage = async ({ data }) => {
  try {
    self.postMessage(await roundTrips(await ringkernel, data));
  } catch (error) {
    self.postMessage({ ok: false, error: `${error?.name ?? "Error"}: ${error?.message ?? error}` });
  }
};

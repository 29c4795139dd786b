// A dedicated module worker that owns a ring-kernel runtime, as a plain page (no bundler) starts
// one: `new Worker(new URL("./worker.js", import.meta.url), { type: "module" })`. Import maps do
// not reach workers, so it imports the installed package by its URL. The page posts what to run;
// the worker answers with what it found, or with the error that stopped it.
import { roundTrips } from "./round-trips.js";

// Imported after the handler below is set, as the README advises (messages that reach a module
// worker while its top-level code waits are lost).
const ringkernel = import("/ringkernel-web/index.js");

self.onmessage = async ({ data }) => {
  try {
    self.postMessage(await roundTrips(await ringkernel, data));
  } catch (error) {
    self.postMessage({ ok: false, error: `${error?.name ?? "Error"}: ${error?.message ?? error}` });
  }
};

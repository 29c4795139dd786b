// Entry of the Vite build: starts the package (the web build needs `init`; the bundler build's
// `init` does nothing) and runs the app on the backend named by `?backend=`. The app module is
// imported after `init` because it defines its messages and kernels when it loads, and with the
// web build nothing may call into the package before `init` has resolved.
import init from "ringkernel-web";
import type { BackendName } from "ringkernel-web";
import type { AppResult } from "./app";

declare global {
  interface Window {
    __result?: { ok: true; value: AppResult } | { ok: false; error: string };
  }
}

const backend = (new URLSearchParams(location.search).get("backend") ?? "auto") as BackendName;
const out = document.getElementById("out");
try {
  await init();
  const { run } = await import("./app");
  const value = await run(backend);
  window.__result = { ok: true, value };
  if (out) out.textContent = JSON.stringify(value, null, 2);
} catch (error) {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  window.__result = { ok: false, error: text };
  if (out) out.textContent = text;
}

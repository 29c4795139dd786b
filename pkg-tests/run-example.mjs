// Runs one of examples/<name>.js in Node, as written, on the backend RINGKERNEL_BACKEND names:
//   webgpu (the default): navigator.gpu from the `webgpu` npm package (Dawn), set up exactly as
//          the README tells Node users to; the examples' create() calls pick it as in a browser.
//   cpu:   every RingKernelRuntime.create() of the example gets { backend: "cpu" } (its own
//          options win), so kernels run their JavaScript (or built-in Rust) handlers.
// What the example prints goes to stdout untouched; the runtime's adapter goes to stderr as
// `[run-example] adapter: {...}`, and an error the example throws to stderr with exit code 1.
//
//   RINGKERNEL_BACKEND=cpu node run-example.mjs complete-lifecycle
//
// Node before 24 cannot parse `await using`: there the example is lowered first by rolldown
// (vite's bundler, installed with it) into plain try/finally code with "ringkernel-web" left as
// an import of the installed package, and run from a data: URL. Nothing else about it changes.
import { fileURLToPath } from "node:url";
import { RingKernelRuntime } from "ringkernel-web";

const [name] = process.argv.slice(2);
const backend = process.env.RINGKERNEL_BACKEND ?? "webgpu";
if (!name || !["webgpu", "cpu"].includes(backend)) {
  console.error("usage: RINGKERNEL_BACKEND=webgpu|cpu node run-example.mjs <example name>");
  process.exit(2);
}

if (backend === "webgpu") {
  // The README's two lines for Node.
  const { create, globals } = await import("webgpu");
  Object.assign(globalThis, globals);
  globalThis.navigator = { gpu: create([]) };
}

const create = RingKernelRuntime.create;
RingKernelRuntime.create = async function (options) {
  const runtime = await create.call(this, backend === "cpu" ? { backend: "cpu", ...options } : options);
  console.error(`[run-example] adapter: ${JSON.stringify(runtime.getSummary().adapter)}`);
  return runtime;
};

const example = new URL(`examples/${name}.js`, import.meta.url);
try {
  await import(usingSupported() ? example : await lowered(example));
} catch (error) {
  console.error(`[run-example] ${name} failed: ${error?.name}: ${error?.message}\n${error?.stack ?? ""}`);
  process.exitCode = 1;
}

/** Whether this Node parses `await using` declarations. */
function usingSupported() {
  try {
    new Function("return async () => { await using x = null; };");
    return true;
  } catch {
    return false;
  }
}

/** The example with `using` declarations lowered, as a data: URL importing the installed package. */
async function lowered(url) {
  const { rolldown } = await import("rolldown");
  const bundle = await rolldown({
    input: fileURLToPath(url),
    external: ["ringkernel-web"],
    transform: { target: "node20" },
    logLevel: "warn",
  });
  const { output } = await bundle.generate({
    format: "esm",
    paths: { "ringkernel-web": import.meta.resolve("ringkernel-web") },
  });
  await bundle.close();
  return `data:text/javascript;base64,${Buffer.from(output[0].code).toString("base64")}`;
}

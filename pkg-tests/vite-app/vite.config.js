// Two builds of the same app, as the two kinds of bundler users make them:
// - `vite build` imports "ringkernel-web" (the web build; Vite emits the .wasm it finds through
//   `new URL(..., import.meta.url)`), into dist/web;
// - `vite build --mode bundler` resolves "ringkernel-web" to "ringkernel-web/bundler" (the
//   bundler build, whose .wasm is an ES module import) with vite-plugin-wasm, into dist/bundler.
// Each has two pages: index.html (the app) and worker.html (the runtime in a module worker,
// bundled as an ES module: `worker.format: "es"`; the bundler build's worker needs the wasm
// plugin too).
// `vite vite-app` serves it in development. pkg-tests installs the package as `npm install ../pkg`
// does, as a link, so `server.fs.allow` names where the link points, as the README says: the dev
// server serves the .wasm from there (without it: 403, outside Vite's allow list).
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig, searchForWorkspaceRoot } from "vite";
import wasm from "vite-plugin-wasm";

const here = (file) => fileURLToPath(new URL(file, import.meta.url));
// Where `node_modules/ringkernel-web` points: Node resolves links to their targets.
const ringkernelWeb = dirname(createRequire(import.meta.url).resolve("ringkernel-web"));

export default defineConfig(({ mode }) => {
  const bundler = mode === "bundler";
  return {
    root: here("."),
    logLevel: "warn",
    plugins: bundler ? [wasm()] : [],
    worker: { format: "es", plugins: () => (bundler ? [wasm()] : []) },
    server: { fs: { allow: [searchForWorkspaceRoot(here(".")), ringkernelWeb] } },
    resolve: bundler ? { alias: [{ find: /^ringkernel-web$/, replacement: "ringkernel-web/bundler" }] } : {},
    build: {
      outDir: bundler ? "dist/bundler" : "dist/web",
      emptyOutDir: true,
      target: "esnext",
      rolldownOptions: { input: { app: here("index.html"), worker: here("worker.html") } },
    },
  };
});

// Two builds of the same app, as the two kinds of bundler users make them:
// - `vite build` imports "ringkernel-web" (the web build; Vite emits the .wasm it finds through
//   `new URL(..., import.meta.url)`), into dist/web;
// - `vite build --mode bundler` resolves "ringkernel-web" to "ringkernel-web/bundler" (the
//   bundler build, whose .wasm is an ES module import) with vite-plugin-wasm, into dist/bundler.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";
import wasm from "vite-plugin-wasm";

export default defineConfig(({ mode }) => {
  const bundler = mode === "bundler";
  return {
    root: fileURLToPath(new URL(".", import.meta.url)),
    logLevel: "warn",
    plugins: bundler ? [wasm()] : [],
    resolve: bundler ? { alias: [{ find: /^ringkernel-web$/, replacement: "ringkernel-web/bundler" }] } : {},
    build: { outDir: bundler ? "dist/bundler" : "dist/web", emptyOutDir: true, target: "esnext" },
  };
});

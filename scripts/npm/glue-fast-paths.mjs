// Two rewrites of wasm-bindgen's glue on a round trip's path, neither of which costs the wasm a
// byte (MEASURED.md, "Microtask turns and the clock"):
//
// - **js-sys's tasks run in promise reactions, not `queueMicrotask` turns.** Its task queue
//   (js-sys 0.3.107, `futures::queue`, under wasm-bindgen-futures) runs every woken future in a
//   microtask queued with the global `queueMicrotask` where there is one, and as a reaction of a
//   resolved promise where there is not. Both are microtasks, run in the order queued; in
//   Chromium a `queueMicrotask` turn costs 2 to 4 µs against 0.15 to 0.5 µs for a reaction, and
//   one message's `send` → `receive` takes four. A task that throws (a panic) then rejects a
//   promise nobody holds, reported as an unhandled rejection instead of an uncaught error.
// - **`performance` is read once.** The clock's import (`timers::performance_now`, 11 reads a
//   round trip) read the global each time, a call into the browser that in Chromium cost more
//   than `now()` itself (~250 ns a read from wasm against ~100 ns with the object kept).
//
//   node scripts/npm/glue-fast-paths.mjs <glue .js>
//
// Fails, changing nothing, unless the glue calls `queueMicrotask(arg0)` and `performance.now()`
// once each (as the glue of wasm-bindgen 0.2.130 does) and does not use the name it adds.
import { readFile, rename, writeFile } from "node:fs/promises";

const [gluePath] = process.argv.slice(2);
if (!gluePath) {
  console.error("usage: glue-fast-paths.mjs <glue .js>");
  process.exit(2);
}
let glue = await readFile(gluePath, "utf8");
const clock = "performanceKept";
const rewrites = [
  [/(?<![\w$.])queueMicrotask\(arg0\);/g, "Promise.resolve().then(arg0);"],
  [/(?<![\w$.])performance\.now\(\)/g, `${clock}.now()`],
];
const fail = (message) => {
  console.error(`glue-fast-paths: ${gluePath} ${message}`);
  process.exit(1);
};
if (glue.includes(clock)) fail(`already uses the name ${clock}`);
for (const [call, faster] of rewrites) {
  const found = glue.match(call)?.length ?? 0;
  if (found !== 1) fail(`has ${found} calls matching ${call}, not one`);
  glue = glue.replace(call, faster);
}
// At the end, past the leading comments tools read (`@ts-self-types`): the module has run to its
// end before the wasm, instantiated after it, calls the clock.
glue = `${glue.trimEnd()}\n// glue-fast-paths.mjs: the page's \`performance\`, read once.\nconst ${clock} = globalThis.performance;\n`;
// A new file renamed over the old, not written through a hard link another build shares.
await writeFile(`${gluePath}.fast`, glue);
await rename(`${gluePath}.fast`, gluePath);
console.log(`glue-fast-paths: ${gluePath}: tasks in promise reactions, performance read once`);

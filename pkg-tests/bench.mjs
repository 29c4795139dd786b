// Runs the browser bench (www/bench.html) in headless Chromium on its WebGPU (SwiftShader without
// a GPU) and prints what it measured: the table, or with --json the JSON document only, in the
// native bench's shape (`cargo run --release -p ringkernel-native -- bench --json`) plus the
// browser-only sections. Exits non-zero when the bench fails (a wrong answer included).
//
//   cd pkg-tests && node bench.mjs [--json] [--quick] [--iterations N] [--naive N] [--timeout SECONDS]
//
// It serves www/ at /, the installed package at /pkg/ and the repository's shaders/ at /shaders/
// (so the raw baseline compiles the very WGSL file the native bench does), cross-origin isolated
// so the page's clock resolves to 5 µs instead of 100 µs.
import { existsSync } from "node:fs";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { launchChromium } from "./chromium.mjs";
import { ISOLATION_HEADERS, startServer } from "../www/serve.mjs";
import { formatReport } from "../www/bench-report.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
// The installed package (a link to pkg/) is what users get; pkg/ itself when not installed.
const installed = join(here, "node_modules", "ringkernel-web");
const pkg = existsSync(installed) ? installed : join(root, "pkg");

/**
 * Serves and opens the bench page with `?autorun=1`, waits for `window.__bench` and resolves with
 * it (`{ ok, result }` or `{ ok: false, error, result }` with what was measured before the error),
 * plus the page's console errors. `log` gets each progress line the page prints; `query` adds
 * page parameters (`corrupt: "1"`).
 */
export async function runBenchPage({ quick = false, iterations, naive, query: extra = {}, timeoutMs = 30 * 60_000, log = () => {} } = {}) {
  // Cross-origin isolation (every file is same-origin) gives performance.now() 5 µs steps.
  const routes = { "/": join(root, "www"), "/pkg/": pkg, "/shaders/": join(root, "shaders") };
  const { server, url } = await startServer({ routes, headers: ISOLATION_HEADERS });
  let browser;
  try {
    browser = await launchChromium();
    const page = await browser.newPage();
    const consoleErrors = [];
    let last = "nothing yet";
    // A Rust panic in the wasm module leaves its promises pending forever: fail at once instead.
    let panicked;
    const panic = new Promise((resolve) => { panicked = resolve; });
    page.on("console", (message) => {
      const text = message.text();
      if (text.startsWith("[bench]")) {
        last = text;
        log(text);
      } else if (message.type() === "error") {
        consoleErrors.push(text);
        if (text.startsWith("panicked at")) panicked(text);
      }
    });
    page.on("pageerror", (error) => consoleErrors.push(String(error)));
    const query = new URLSearchParams({ ...extra, autorun: "1" });
    if (quick) query.set("quick", "1");
    if (iterations) query.set("iterations", String(iterations));
    if (naive) query.set("naive", String(naive));
    await page.goto(`${url}/bench.html?${query}`);
    const failure = (name, message) => page.textContent("#status").catch(() => "")
      .then((status) => ({ ok: false, error: { name, message: `${message} (at: ${status}; last finished: ${last})` }, consoleErrors }));
    const outcome = await Promise.race([
      page.waitForFunction(() => window.__bench !== undefined, null, { timeout: timeoutMs, polling: 250 })
        .then(() => null, () => failure("TimeoutError", `no result within ${timeoutMs / 1000} s`)),
      panic.then((text) => failure("WasmPanic", `the wasm module panicked: ${text.split("\n")[0]} ${text.split("\n")[1] ?? ""}`)),
    ]);
    if (outcome) return outcome;
    return { ...(await page.evaluate(() => window.__bench)), consoleErrors };
  } finally {
    await browser?.close();
    server.close();
  }
}

function parseArgs(argv) {
  const options = { json: false, quick: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const number = () => {
      const n = Number(argv[++i]);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${arg} wants a positive number`);
      return n;
    };
    const count = () => {
      const n = number();
      if (!Number.isInteger(n)) throw new Error(`${arg} wants a whole number from 1, got ${n}`);
      return n;
    };
    if (arg === "--json") options.json = true;
    else if (arg === "--quick") options.quick = true;
    else if (arg === "--iterations") options.iterations = count();
    else if (arg === "--naive") options.naive = count();
    else if (arg === "--timeout") options.timeoutMs = number() * 1000;
    else if (arg === "--help" || arg === "-h") options.help = true;
    else throw new Error(`unknown argument ${arg}`);
  }
  return options;
}

async function main() {
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`${e.message}\nusage: node bench.mjs [--json] [--quick] [--iterations N] [--naive N] [--timeout SECONDS]`);
    return 2;
  }
  if (options.help) {
    console.log("usage: node bench.mjs [--json] [--quick] [--iterations N] [--naive N] [--timeout SECONDS]");
    return 0;
  }
  const started = Date.now();
  const outcome = await runBenchPage({
    ...options,
    timeoutMs: options.timeoutMs ?? (options.quick ? 5 : 30) * 60_000,
    // Progress on stderr, so stdout stays one clean report; none with --json.
    log: options.json ? () => {} : (line) => console.error(line),
  });
  if (options.json) {
    const document = outcome.ok ? outcome.result : { ...(outcome.result ?? {}), error: `${outcome.error.name}: ${outcome.error.message}` };
    console.log(JSON.stringify(document, null, 2));
  } else if (outcome.ok) {
    console.log(formatReport(outcome.result));
    console.error(`(headless Chromium, ${((Date.now() - started) / 1000).toFixed(0)} s in all)`);
  }
  if (!outcome.ok) {
    console.error(`bench failed: ${outcome.error.name}: ${outcome.error.message}`);
    if (outcome.error.stack) console.error(outcome.error.stack);
    for (const line of outcome.consoleErrors ?? []) console.error(`console: ${line}`);
    return 1;
  }
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main();
}

// The npm package as users meet it: installed from pkg/ with `npm install`, loaded by a page
// served from localhost, run in headless Chromium on its WebGPU (SwiftShader without a GPU).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { mkdir } from "node:fs/promises";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { launchChromium } from "../chromium.mjs";
import { startServer } from "../../www/serve.mjs";
import { EXAMPLES } from "../examples/expected.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const installed = join(here, "..", "node_modules", "ringkernel-web");
const artifacts = join(here, "..", "artifacts");

let server, url, browser;

before(async () => {
  const routes = { "/": join(here, "..", "page"), "/examples/": join(here, "..", "examples"), "/ringkernel-web/": installed };
  ({ server, url } = await startServer({ routes }));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  server?.close();
});

test("the installed package.json names the module and its types", async () => {
  const pkg = JSON.parse(await readFile(join(installed, "package.json"), "utf8"));
  assert.equal(pkg.name, "ringkernel-web");
  for (const file of [pkg.main ?? pkg.module, pkg.types]) {
    await readFile(join(installed, file)); // throws if the file the package names is missing
  }
  assert.deepEqual(pkg.engines, { node: ">=20" });
  // The README's links to the repository's files lead there, not to files the package lacks.
  const readme = await readFile(join(installed, "README.md"), "utf8");
  const relative = [...readme.matchAll(/\]\((?!https?:|#)([^)\s]+)\)/g)].map((m) => m[1]);
  assert.deepEqual(relative, [], "relative links in the package's README");
  assert.match(readme, /\]\(https:\/\/github\.com\/ringkernel-web\/ringkernel-web\/blob\/main\/MEASURED\.md\)/);
  // The entry's declarations re-export the wasm-bindgen module's and the error classes'.
  const entry = await readFile(join(installed, pkg.types), "utf8");
  assert.match(entry, /export \* from "\.\/ringkernel_web\.js";/);
  assert.match(entry, /export \* from "\.\/errors\.js";/);
  const types = [entry, ...(await Promise.all(["ringkernel_web.d.ts", "errors.d.ts"].map((f) => readFile(join(installed, f), "utf8"))))].join("\n");
  assert.match(types, /export class RingKernelRuntime/);
  assert.match(types, /export class KernelStateError extends RingKernelError \{ name: "KernelStateError";/);
  assert.match(types, /export class CircuitOpenError extends RingKernelError \{ name: "CircuitOpenError"; kernelId: string; retryAfterMs: number; \}/);
  assert.match(types, /circuitBreaker\(id: string\): CircuitBreakerStatus;/);
  assert.match(types, /withCircuitBreaker<T>\(id: string, operation: \(\) => T \| PromiseLike<T>\): Promise<Awaited<T>>;/);
  assert.match(types, /scanStaleKernels\(\): Promise<StaleKernel\[\]>;/);
  assert.match(types, /export type CircuitState = "closed" \| "open" \| "halfOpen";/);
  assert.doesNotMatch(types, /\[Symbol\.dispose\]/, "a synchronous `using` must not type-check: disposal is async");
  assert.match(types, /receive<T extends object = MessageOutput>\(id: string, options\?: WaitOptions\): Promise<T>/);
  // A key set to undefined is not given: optional option keys take it under exactOptionalPropertyTypes.
  assert.match(types, /export interface WaitOptions extends TimeoutOptions \{ signal\?: AbortSignal \| null \| undefined; \}/);
  // readState: the union unless the caller gives the type; a handle's typed by its definition's state.
  assert.match(types, /readState<T extends StateArray = StateArray>\(id: string\): Promise<Given<T>>;/);
  assert.match(types, /export type StateArray = Uint32Array \| Int32Array \| Float32Array;/);
  assert.match(types, /readState\(\): Promise<S>;/);
  assert.match(types, /writeState\(id: string, values: Uint32Array \| Int32Array \| Float32Array, index\?: number\): Promise<void>/);
  assert.match(types, /deviceEvents\(options\?: \{ signal\?: AbortSignal \| null \| undefined \}\): AsyncGenerator<DeviceEvent, void, undefined>;/);
  assert.match(types, /nextDeviceEvent\(after: number, options\?: \{ signal\?: AbortSignal \| null \| undefined \}\): Promise<DeviceEvent \| null>;/);
  assert.match(types, /initialState\?: Uint32Array \| Int32Array \| Float32Array \| null \| undefined;/);
  assert.match(types, /export function defineMessage<.*>\(name: N, fields: F\): MessageDescription<N, F>;/);
  assert.match(types, /export function ringKernel<.*>\(definition: KernelDefinitionInput<I, O, S> & \{ id: string \}\): KernelDefinitionInput<I, O, S> & \{ id: string \};/);
  assert.match(types, /export function isRingKernelError\(error: unknown\): error is AnyRingKernelError;/);
  assert.match(types, /call<T extends object = MessageOutput, M extends object & MessageLike<M> = object>\(id: string, message: M & NotAMessage<M>, options\?: WaitOptions\): Promise<T>/);
  assert.match(types, /getState\(id: string\): KernelState;/);
  assert.match(types, /getTelemetry\(id: string\): KernelTelemetry \| null;/);
  assert.match(types, /export function managedKernel<I extends MessageDescription = MessageDescription, O extends MessageDescription = MessageDescription>\(\s*runtime: RingKernelRuntime, id: string, definition\?: KernelDefinitionInput<I, O> \| null/);
  assert.match(types, /launch<I extends MessageDescription = MessageDescription, O extends MessageDescription = MessageDescription, S extends StateDefinition \| undefined = undefined>\(\s*id: string, definition\?: KernelDefinitionInput<I, O, S> \| null, options\?: LaunchOptions\): Promise<KernelHandle<I, O, StateArrayOf<S>>>;/);
  assert.match(types, /getKernel<K extends keyof BuiltInKernels>\(id: K\): KernelHandle<BuiltInKernels\[K\]\[0\], BuiltInKernels\[K\]\[1\], BuiltInStateOf<K>> \| null;/);
  assert.match(types, /getKernel<I extends MessageDescription = MessageDescription, O extends MessageDescription = MessageDescription, S extends StateArray = StateArray>\(id: string\): KernelHandle<I, O, S> \| null;/);
  // Envelopes and the hybrid logical clock.
  assert.match(types, /sendEnvelope<M extends object & MessageLike<M>>\(id: string, message: M & NotAMessage<M>, options\?: SendEnvelopeOptions\): Promise<EnvelopeHeader>;/);
  assert.match(types, /send<M extends object & MessageLike<M>>\(id: string, message: M & NotAMessage<M>, options\?: WaitOptions\): Promise<void>;/);
  assert.match(types, /receiveEnvelope<T extends object = MessageOutput>\(id: string, options\?: WaitOptions\): Promise<ReceivedEnvelope<T>>;/);
  assert.match(types, /currentTimestamp\(\): HlcTimestamp;/);
  assert.match(types, /export interface HlcTimestamp \{ physicalMs: number; logical: number; \}/);
  // The operations layer: memory dashboard, degradation level, OverloadedError.
  assert.match(types, /memory\(\): MemoryReport;/);
  assert.match(types, /readonly memoryPressure: number;/);
  assert.match(types, /onMemoryAlert\(threshold: number, callback: \(event: MemoryAlertEvent\) => void\): number;/);
  assert.match(types, /readonly degradationLevel: DegradationLevel;/);
  assert.match(types, /degradationStatus\(\): DegradationStatus;/);
  assert.match(types, /export class OverloadedError extends RingKernelError \{ name: "OverloadedError";/);
  assert.match(types, /export class KernelHandle<I extends MessageDescription = MessageDescription, O extends MessageDescription = MessageDescription, S extends StateArray = StateArray> \{/);
  assert.match(types, /call<M extends object = InputOf<I>, T extends object = OutputOf<O>>\(message: HandleInput<I, M>, options\?: WaitOptions\): Promise<HandleOutput<O, T>>;/);
  assert.match(types, /tryReceive<T extends object = OutputOf<O>>\(\): HandleOutput<O, T> \| null;/);
  assert.match(types, /\[Symbol\.asyncDispose\]\(\): Promise<void>;/);
  // Every telemetry field the runtime serializes is declared.
  const declared = types.match(/export interface KernelTelemetry \{([\s\S]*?)\n\}/)[1];
  const page = await browser.newPage();
  await page.goto(`${url}/index.html`);
  await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 120_000 });
  const fields = await page.evaluate(() => Object.keys(window.__result.telemetry));
  await page.close();
  assert.ok(fields.length >= 20, `${fields}`);
  for (const field of fields) assert.match(declared, new RegExp(`\\b${field}\\??:`), `KernelTelemetry declares ${field}`);
});

test("both builds' glue runs tasks in promise reactions and reads `performance` once", async () => {
  // scripts/npm/glue-fast-paths.mjs: a `queueMicrotask` turn cost Chromium 2 to 4 µs.
  for (const glue of ["ringkernel_web.js", "bundler/ringkernel_web_bg.js"]) {
    const text = await readFile(join(installed, glue), "utf8");
    assert.doesNotMatch(text, /(?<![\w$.])(queueMicrotask\(|performance\.)/, glue);
    assert.equal(text.split("Promise.resolve().then(arg0);").length, 2, glue);
    assert.equal(text.split("performanceKept.now()").length, 2, glue);
  }
});

test("seed example: doubler answers 42 in headless Chromium over WebGPU", async () => {
  const page = await browser.newPage();
  const consoleErrors = [];
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  await page.goto(`${url}/index.html`);
  await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 120_000 });
  const result = await page.evaluate(() => window.__result);
  await mkdir(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, "seed-example.png") });
  assert.equal(result.ok, true, `runtime failed: ${result.name}: ${result.message}`);
  assert.deepEqual(result.response, { result: 42 });
  assert.deepEqual(result.length, { length: 5 });
  assert.equal(result.state, "active");
  assert.equal(result.telemetry.messagesProcessed, 1);
  assert.equal(result.adapter.backend, "browserwebgpu");
  assert.deepEqual(consoleErrors, []);
  await page.close();
});

/**
 * Runs one of the README's ```js blocks as written in a fresh page, with "ringkernel-web" resolved
 * to the installed package, and resolves with `result` (an expression over the block's variables)
 * and what it logged.
 */
async function runReadmeBlock(index, result) {
  const readme = await readFile(join(here, "..", "..", "README.md"), "utf8");
  const example = [...readme.matchAll(/```js\n([\s\S]*?)```/g)][index][1]
    .replace(`from "ringkernel-web"`, `from "/ringkernel-web/index.js"`);
  // Imports must stay at module top level, outside the try block that reports failures.
  const imports = example.split("\n").filter((l) => l.startsWith("import ")).join("\n");
  const body = example.split("\n").filter((l) => !l.startsWith("import ")).join("\n");
  const page = await browser.newPage();
  const errors = [];
  const logs = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => (m.type() === "error" ? errors : logs).push(m.text()));
  await page.goto(`${url}/blank.html`);
  await page.addScriptTag({
    type: "module",
    content: `${imports}\ntry {\n${body}\nwindow.__readme = { ok: true, result: ${result} };\n}` +
      ` catch (e) { window.__readme = { ok: false, error: e.name + ": " + e.message }; }`,
  });
  await page.waitForFunction(() => window.__readme !== undefined, null, { timeout: 120_000 });
  const outcome = await page.evaluate(() => window.__readme);
  await page.close();
  assert.equal(outcome.ok, true, outcome.error);
  assert.deepEqual(errors, []);
  return { result: outcome.result, logs };
}

test("the README's JavaScript example runs as written", async () => {
  const { result } = await runReadmeBlock(0, "{ response, objects, answers: [...answers] }");
  assert.deepEqual(result.response, { result: 42 });
  assert.ok(result.objects.length >= 1 && result.objects.length <= 3, JSON.stringify(result.objects));
  assert.deepEqual(result.objects, [{ result: 2 }, { result: 4 }, { result: 6 }].slice(0, result.objects.length));
  assert.ok(result.answers.length >= 1 && result.answers.length <= 3, `${result.answers}`);
  assert.deepEqual(result.answers, [2, 4, 6].slice(0, result.answers.length));
});

test("the README's kernel handle example runs as written", async () => {
  const { result, logs } = await runReadmeBlock(1, "{ answer, reply }");
  assert.deepEqual(result, { answer: { result: 42 }, reply: { result: 10 } });
  assert.deepEqual(logs, ["5"]);
});

// The seeds' usage examples ported to JavaScript (pkg-tests/examples/), by id and with kernel
// handles, each run as written with "ringkernel-web" resolved to the installed package; what they
// print (examples/expected.mjs) is checked line by line.
for (const [name, expected] of Object.entries(EXAMPLES)) {
  test(`seed example ${name}.js runs as written`, async () => {
    const page = await browser.newPage();
    const logs = [];
    const errors = [];
    page.on("console", (m) => (m.type() === "error" ? errors : logs).push(m.text()));
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${url}/example.html?name=${name}`);
    await page.waitForFunction(() => window.__done !== undefined, null, { timeout: 120_000 });
    const done = await page.evaluate(() => window.__done);
    assert.equal(done.ok, true, done.error);
    assert.deepEqual(logs, expected);
    assert.deepEqual(errors, []);
    await page.close();
  });
}

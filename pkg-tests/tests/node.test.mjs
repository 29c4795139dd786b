// The npm package in Node (no browser): `init()` with no argument, WebGPU from the `webgpu` npm
// package (Dawn) set up as the README says and nothing else, the cpu backend, and a Node without
// WebGPU. Every check runs in a child `node`, so a panic or an exit cannot take the test runner
// down, and Dawn's environment applies to that process only.
//
// Dawn runs on Chromium's SwiftShader here (VK_ICD_FILENAMES, unless it is set already): Dawn turns
// Mesa's lavapipe down, and its GLES adapter on llvmpipe exists only in compatibility mode, which
// wgpu does not ask for. A test that needs WebGPU fails with the reason when Dawn gives no adapter.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { EXAMPLES, GPU_ONLY } from "../examples/expected.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const DAWN_ENV = { VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? "/usr/lib/chromium/vk_swiftshader_icd.json" };
const CHILD_TIMEOUT_MS = 120_000;

/** The README's setup of WebGPU in Node, for scripts run with `node -e`. */
const DAWN_SETUP = `
import { create, globals } from "webgpu";
Object.assign(globalThis, globals);
globalThis.navigator = { gpu: create([]) };
`;

/**
 * Runs `node ...args` in pkg-tests/ (so "ringkernel-web" is the installed package) with `env` added,
 * and resolves with its exit code, signal, stdout and stderr. A child still running after
 * CHILD_TIMEOUT_MS is killed and reported as `timedOut` (a process that never exits is a failure).
 */
function runNode(args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, CHILD_TIMEOUT_MS);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** Runs an ES module given as text, like a user's script next to the installed package. */
const runModule = (source, env) => runNode(["--input-type=module", "-e", source], env);

/** Asserts the child ended by itself with exit code 0, showing what it said if not. */
function assertExited(result) {
  const said = `\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
  assert.equal(result.timedOut, false, `still running after ${CHILD_TIMEOUT_MS} ms: it never exits${said}`);
  assert.equal(result.code, 0, `exit code ${result.code} (signal ${result.signal})${said}`);
  assert.doesNotMatch(result.stderr, /panicked|RuntimeError: unreachable/, said);
}

/** The last line of stdout, parsed: the scripts below end by printing their findings as JSON. */
const findings = (result) => JSON.parse(result.stdout.trim().split("\n").at(-1));

test("init() with no argument loads the wasm next to the package in Node", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime } from "ringkernel-web";
    const wasm = await init();
    const again = await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const doubler = await runtime.launch("doubler", null, { autoActivate: true });
    const answer = await doubler.call({ value: 21 }, { timeout: 5000 });
    await runtime.dispose();
    console.log(JSON.stringify({ memory: wasm.memory instanceof WebAssembly.Memory, same: wasm === again, answer }));
  `);
  assertExited(result);
  assert.deepEqual(findings(result), { memory: true, same: true, answer: { result: 42 } });
});

// Timeouts share one `setTimeout` for the earliest deadline, left pending when a wait ends early
// (src/timers.rs): it must hold Node open while a wait needs it and never after.
test("initSync({ module }) with the wasm's bytes at hand initializes at once, as init() does", async () => {
  const result = await runModule(`
    import { readFileSync } from "node:fs";
    import { createRequire } from "node:module";
    import { dirname, join } from "node:path";
    import { initSync, RingKernelRuntime } from "ringkernel-web";
    const entry = createRequire(import.meta.url).resolve("ringkernel-web");
    initSync({ module: readFileSync(join(dirname(entry), "ringkernel_web_bg.wasm")) });
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const answer = await (await runtime.launch("doubler", null, { autoActivate: true })).call({ value: 21 }, { timeout: 5000 });
    await runtime.dispose();
    console.log(JSON.stringify(answer));
  `);
  assertExited(result);
  assert.deepEqual(findings(result), { result: 42 });
});

test("before init() resolves, defineMessage, ringKernel and create() are refused by name; afterwards they work", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage, ringKernel } from "ringkernel-web";
    const refused = (f) => { try { f(); return "accepted"; } catch (e) { return e.message; } };
    const before = {
      defineMessage: refused(() => defineMessage("Early", { value: "i32" })),
      ringKernel: refused(() => ringKernel({ id: "early", input: "Early", output: "Early", handler: (m) => m })),
      create: await RingKernelRuntime.create({ backend: "cpu" }).then(() => "resolved", (e) => e.message),
    };
    await init();
    const Early = defineMessage("Early", { value: "i32" });
    ringKernel({ id: "early", input: Early, output: Early, handler: (m) => m });
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const answer = await (await runtime.launch("early", null, { autoActivate: true })).call({ value: 7 }, { timeout: 5000 });
    await runtime.dispose();
    console.log(JSON.stringify({ before, answer }));
  `);
  assertExited(result);
  const { before, answer } = findings(result);
  for (const [call, message] of Object.entries(before)) {
    assert.match(message, /^ringkernel-web: .* was called before `await init\(\)` resolved/, `${call}: ${message}`);
  }
  assert.deepEqual(answer, { value: 7 });
});

test("a field type defineMessage cannot take is refused saying what it takes: vectors of 2 to 4, arrays of 1 or more nested fewer than 15 deep", async () => {
  const result = await runModule(`
    import init, { defineMessage } from "ringkernel-web";
    await init();
    const nested = (n) => "array<".repeat(n) + "f32" + ", 1>".repeat(n);
    const tried = (name, type) => { try { defineMessage(name, { x: type }); return "accepted"; } catch (e) { return e.name + ": " + e.message; } };
    console.log(JSON.stringify({
      deepest: tried("Deepest", nested(14)),
      tooDeep: tried("TooDeep", nested(15)),
      vec5: tried("Vec5", "vec5<f32>"),
      empty: tried("Empty", "array<f32, 0>"),
    }));
  `);
  assertExited(result);
  const found = findings(result);
  assert.equal(found.deepest, "accepted");
  for (const key of ["tooDeep", "vec5", "empty"]) {
    assert.match(found[key], /^TypeError: message \w+: field 'x' has unsupported type '.*' \(use i32, u32, f32, vecN<T> for N of 2 to 4, array<T, N> for N of 1 or more nested fewer than 15 deep, or a defined message's name\)$/, key);
  }
});

test("a pending timeout holds Node open until it fires, and ended waits never hold it", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const doubler = await runtime.launch("doubler", null, { autoActivate: true });
    const Echo = defineMessage("Echo", { value: "i32" });
    const quiet = await runtime.launch("quiet", { input: Echo, output: Echo, handler: (m) => m }, { autoActivate: true });
    // Ten-minute deadlines that end at once: the alarm is set for the first of them.
    const answers = [];
    for (let i = 0; i < 20; i++) answers.push((await doubler.call({ value: i }, { timeout: 600000 })).result);
    // Nothing else is pending: only the alarm, moved earlier, keeps the process alive for this.
    const timedOut = async (timeout) => {
      const started = performance.now();
      const outcome = await quiet.receive({ timeout }).then(() => "answered", (e) => e.name);
      return [outcome, Math.round(performance.now() - started)];
    };
    const sooner = await timedOut(300);
    // A wait later than the alarm (set for the 2 s call, which ended) makes it hold on again.
    await doubler.call({ value: 50 }, { timeout: 2000 });
    const later = await timedOut(2500);
    await doubler.call({ value: 51 }, { timeout: 600000 });
    await runtime.dispose();
    const exiting = performance.now();
    process.on("exit", () => console.log(JSON.stringify({ answers, sooner, later, exitAfter: Math.round(performance.now() - exiting) })));
  `);
  assertExited(result);
  const { answers, sooner, later, exitAfter } = findings(result);
  assert.deepEqual(answers, Array.from({ length: 20 }, (_, i) => 2 * i));
  assert.equal(sooner[0], "TimeoutError");
  assert.ok(sooner[1] >= 290 && sooner[1] < 60_000, `the 300 ms wait took ${sooner[1]} ms`);
  assert.equal(later[0], "TimeoutError");
  assert.ok(later[1] >= 2490 && later[1] < 60_000, `the 2500 ms wait took ${later[1]} ms`);
  assert.ok(exitAfter < 60_000, `the process exited ${exitAfter} ms after its last line: a ten-minute alarm held it`);
});

test("withCircuitBreaker checks the circuit and calls its operation when called: a half-open circuit's probe goes to the first in call order", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    // openMs is also how long a round of probes lasts before a new one begins: long enough that
    // the protected call and the send after it fall in the same round on a loaded machine.
    const runtime = await RingKernelRuntime.create({ backend: "cpu", circuitBreaker: { failureThreshold: 1, openMs: 1000, halfOpenProbes: 1 } });
    const doubler = await runtime.launch("doubler", null, { autoActivate: true });
    await runtime.withCircuitBreaker("doubler", () => Promise.reject(new Error("the caller's failure"))).catch(() => {});
    const opened = runtime.circuitBreaker("doubler").state;
    while (runtime.circuitBreaker("doubler").state === "open") await new Promise((resolve) => setTimeout(resolve, 5));
    const halfOpen = runtime.circuitBreaker("doubler").state;
    let called = false;
    const protectedCall = runtime.withCircuitBreaker("doubler", () => { called = true; return doubler.call({ value: 21 }); });
    const calledAtOnce = called;
    // Made after it: the probe was taken by the protected call's message.
    const later = doubler.send({ value: 1 }).then(() => "accepted", (e) => e.name);
    const [answer, refused] = await Promise.all([protectedCall.then((a) => a.result, (e) => e.name), later]);
    const closed = runtime.circuitBreaker("doubler").state;
    await runtime.dispose();
    console.log(JSON.stringify({ opened, halfOpen, calledAtOnce, answer, refused, closed }));
  `);
  assertExited(result);
  assert.deepEqual(findings(result), {
    opened: "open", halfOpen: "halfOpen", calledAtOnce: true, answer: 42, refused: "CircuitOpenError", closed: "closed",
  });
});

test("withCircuitBreaker: an operation turned away (its call finding the probe taken, a full queue) is not the kernel's failure, so the probe closes the circuit", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu", circuitBreaker: { failureThreshold: 1, openMs: 100, halfOpenProbes: 1 } });
    const doubler = await runtime.launch("doubler", null, { autoActivate: true, queueSize: 4 });
    await runtime.withCircuitBreaker("doubler", () => Promise.reject(new Error("the caller's failure"))).catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 150));
    // Both pass the circuit's check when called; each calls after a microtask, the second
    // finding the probe taken by the first, which waits while the kernel is paused.
    await doubler.deactivate();
    const guarded = (value) => runtime.withCircuitBreaker("doubler", async () => { await null; return doubler.call({ value }); });
    const [first, later] = [guarded(21), guarded(1)].map((p) => p.then((a) => a.result, (e) => e.name));
    const second = await later;
    await doubler.activate();
    const probe = await first;
    const afterRace = runtime.circuitBreaker("doubler");
    await doubler.deactivate();
    await doubler.sendBatch([{ value: 1 }, { value: 2 }, { value: 3 }, { value: 4 }]);
    const full = await runtime.withCircuitBreaker("doubler", () => doubler.send({ value: 5 }, { timeout: 0 })).catch((e) => e.name);
    const afterFull = runtime.circuitBreaker("doubler");
    await runtime.dispose();
    console.log(JSON.stringify({ probe, second, afterRace: [afterRace.state, afterRace.failures, afterRace.opened], full, afterFull: [afterFull.state, afterFull.failures] }));
  `);
  assertExited(result);
  assert.deepEqual(findings(result), {
    probe: 42, second: "CircuitOpenError", afterRace: ["closed", 0, 1], full: "QueueFullError", afterFull: ["closed", 0],
  });
});

test("a handle's wait() takes { timeout, signal }: a TimeoutError or the signal's reason, the kernel left as it is; other keys are a TypeError", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const doubler = await runtime.launch("doubler");
    const outcome = (p) => p.then(() => "resolved", (e) => e.name + ": " + e.message);
    const timedOut = await outcome(doubler.wait({ timeout: 20 }));
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("stopped waiting")), 20);
    const aborted = await outcome(doubler.wait({ signal: controller.signal }));
    const misspelt = await outcome(doubler.wait({ timout: 20 }));
    const state = doubler.state;
    const waited = doubler.wait({ timeout: 30000 });
    await doubler.terminate();
    const ended = await outcome(waited);
    const errors = runtime.getTelemetry("doubler").errors;
    await runtime.dispose();
    console.log(JSON.stringify({ timedOut, aborted, misspelt, state, ended, errors }));
  `);
  assertExited(result);
  const found = findings(result);
  assert.match(found.timedOut, /^TimeoutError: wait on kernel 'doubler' timed out after 20 ms/);
  assert.equal(found.aborted, "Error: stopped waiting", "the signal's reason");
  assert.match(found.misspelt, /^TypeError: .*timout/);
  assert.deepEqual([found.state, found.ended, found.errors], ["launched", "resolved", 0]);
});

test("telemetry reports both queues' bounds: queueSize the input's, outputQueueSize the output's", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const doubler = await runtime.launch("doubler", null, { inputQueueSize: 4, outputQueueSize: 16 });
    const echo = await runtime.launch("echo", null, { queueSize: 8 });
    const bounds = (t) => [t.queueSize, t.outputQueueSize];
    const found = [bounds(runtime.getTelemetry("doubler")), bounds(doubler.metrics()), bounds(echo.metrics())];
    await runtime.dispose();
    console.log(JSON.stringify(found));
  `);
  assertExited(result);
  assert.deepEqual(findings(result), [[4, 16], [4, 16], [8, 8]]);
});

test("a handle's readState() reads its own launch's state, as runtime.readState(id) does, and KernelNotFoundError once it is removed", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const histogram = await runtime.launch("histogram", null, { autoActivate: true });
    await histogram.call({ samples: Array(16).fill(0.5) });
    const own = await histogram.readState();
    const byId = await runtime.readState("histogram");
    await histogram.terminate();
    runtime.remove("histogram");
    await runtime.launch("histogram");
    const gone = await histogram.readState().then(() => "read", (e) => e.name);
    await runtime.dispose();
    console.log(JSON.stringify({ kind: own.constructor.name, same: [...own].join() === [...byId].join(), counted: own.reduce((a, b) => a + b, 0), gone }));
  `);
  assertExited(result);
  assert.deepEqual(findings(result), { kind: "Uint32Array", same: true, counted: 16, gone: "KernelNotFoundError" });
});

test("readState() gives the typed array its TypeScript type claims for each state type: f32 a Float32Array, i32 and atomic<i32> an Int32Array, u32, atomic<u32> and none given a Uint32Array", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const Tally = defineMessage("Tally", { bin: "u32" });
    const kinds = {};
    for (const type of ["f32", "i32", "atomic<i32>", "u32", "atomic<u32>", undefined]) {
      const state = type === undefined ? { length: 4 } : { length: 4, type };
      const handle = await runtime.launch("k" + Object.keys(kinds).length, { input: Tally, output: Tally, state, handler: (m) => m });
      kinds[type ?? "none"] = [(await handle.readState()).constructor.name, (await runtime.readState(handle.id)).constructor.name];
    }
    await runtime.dispose();
    console.log(JSON.stringify(kinds));
  `);
  assertExited(result);
  assert.deepEqual(findings(result), {
    f32: ["Float32Array", "Float32Array"],
    i32: ["Int32Array", "Int32Array"],
    "atomic<i32>": ["Int32Array", "Int32Array"],
    u32: ["Uint32Array", "Uint32Array"],
    "atomic<u32>": ["Uint32Array", "Uint32Array"],
    none: ["Uint32Array", "Uint32Array"],
  });
});

test("an error's toJSON() carries its class and details through JSON and structuredClone, and RingKernelError.fromJSON makes it again, several kernels' errors included, nested to any depth", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, RingKernelError, KernelStateError, TimeoutError, isRingKernelError, defineMessage } from "ringkernel-web";
    await init();
    const In = defineMessage("JsonIn", { value: "i32" });
    const Out = defineMessage("JsonOut", { result: "i32" });
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    await runtime.launch("doubler");
    const refused = await runtime.deactivate("doubler").catch((e) => e);
    // Two kernels that cannot drain in time: a TimeoutError with each one's own error.
    for (const id of ["a", "b"]) {
      await runtime.launch(id, { input: In, output: Out, handler: (m) => ({ result: m.value }) });
      await runtime.sendBatch(id, [{ value: 1 }, { value: 2 }]);
    }
    const several = await runtime.terminateAll({ timeout: 0 }).catch((e) => e);
    const copy = (error) => RingKernelError.fromJSON(structuredClone(JSON.parse(JSON.stringify(error))));
    const again = copy(refused);
    const severalAgain = copy(several);
    const unknown = RingKernelError.fromJSON({ name: "constructor", message: "?" });
    const plainClone = structuredClone(refused);
    const hostile = RingKernelError.fromJSON(JSON.parse('{"name":"KernelStateError","message":"m","__proto__":{"x":1},"constructor":1,"toJSON":5,"toString":5,"valueOf":1,"kernelId":"k"}'));
    const hostileKept = [hostile instanceof KernelStateError, JSON.stringify(hostile), hostile.x, String(hostile)];
    // Any depth (made in a loop, not by recursion), and data that refers to itself.
    let deep = { name: "TimeoutError", message: "0" };
    for (let i = 1; i <= 100000; i++) deep = { name: "TimeoutError", message: String(i), errors: [deep] };
    let innermost = RingKernelError.fromJSON(deep), depth = 0;
    while (innermost.errors) [innermost, depth] = [innermost.errors[0], depth + 1];
    const cyclic = { name: "KernelStateError", message: "c", kernelId: "k" };
    cyclic.errors = [cyclic, "not an error's data"];
    const cyclicAgain = RingKernelError.fromJSON(structuredClone(cyclic));
    const deepKept = [depth, innermost instanceof TimeoutError, innermost.message, cyclicAgain.errors[0] === cyclicAgain, cyclicAgain.errors[1].constructor.name, cyclicAgain.kernelId];
    await runtime.dispose().catch(() => {});
    console.log(JSON.stringify({
      data: refused.toJSON(),
      again: [again instanceof KernelStateError, isRingKernelError(again), again.name, again.message === refused.message, again.kernelId, again.state, again.action],
      several: [several instanceof TimeoutError, severalAgain instanceof TimeoutError, severalAgain.unprocessed, severalAgain.errors.map((e) => [e instanceof TimeoutError, e.kernelId, e.unprocessed])],
      unknown: [unknown.constructor.name, unknown.name],
      plainClone: [plainClone instanceof KernelStateError, plainClone.kernelId === undefined],
      hostileKept,
      deepKept,
    }));
  `);
  assertExited(result);
  const found = findings(result);
  assert.deepEqual(found.data, { name: "KernelStateError", message: found.data.message, kernelId: "doubler", state: "launched", action: "deactivate" });
  assert.deepEqual(found.again, [true, true, "KernelStateError", true, "doubler", "launched", "deactivate"]);
  assert.deepEqual(found.several, [true, true, 4, [[true, "a", 2], [true, "b", 2]]]);
  assert.deepEqual(found.unknown, ["RingKernelError", "RingKernelError"]);
  assert.deepEqual(found.plainClone, [false, true], "what toJSON() is for: a clone of the error itself loses its class and details");
  assert.deepEqual(found.hostileKept, [true, '{"name":"KernelStateError","message":"m","kernelId":"k"}', null, "KernelStateError: m"], "data cannot replace the prototype or the methods");
  assert.deepEqual(found.deepKept, [100000, true, "0", true, "RingKernelError", "k"]);
});

test("a compile error's column counts the characters of the user's line, not its UTF-8 bytes, on WebGPU (Dawn) and in the cpu backend's check of the handler", async () => {
  const result = await runModule(`
    ${DAWN_SETUP}
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    await init();
    const Cell = defineMessage("Cell", { index: "u32" });
    // The error sits after non-ASCII text on its own line: "é" is 2 bytes, "漢" 3.
    const compiled = "fn handle(c: Cell) -> Cell {\\n  let é = 1u; /* 漢 */ return Cell(c.index + é + nope);\\n}";
    const signature = "/* café */ fn handle(c: Celll) -> Cell { return c; }";
    const where = async (backend, wgsl) => {
      const runtime = await RingKernelRuntime.create({ backend });
      const error = await runtime.launch("k", { input: Cell, output: Cell, wgsl, handler: (c) => c }).catch((e) => e);
      await runtime.dispose();
      const line = wgsl.split("\\n")[error.line - 1];
      return [error.name, error.line, error.column, line.slice(error.column - 1, error.column + 4)];
    };
    console.log(JSON.stringify({ gpu: await where("webgpu", compiled), gpuSignature: await where("webgpu", signature), cpuSignature: await where("cpu", signature) }));
  `, DAWN_ENV);
  assertExited(result);
  const found = findings(result);
  assert.deepEqual(found.gpu, ["KernelCompileError", 2, 49, "nope)"]);
  assert.deepEqual(found.gpuSignature, ["KernelCompileError", 1, 25, "Celll"]);
  assert.deepEqual(found.cpuSignature, ["KernelCompileError", 1, 25, "Celll"]);
});

test("a worker's bad-argument errors posted as { name, message } come back from RingKernelError.fromJSON as the TypeError or RangeError they were, not as a RingKernelError", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, RingKernelError, KernelStateError } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const doubler = await runtime.launch("doubler", null, { queueSize: 4 });
    // What a worker posts for every error it catches: a RingKernelError's toJSON(), or JavaScript's own error by name.
    const post = (e) => structuredClone(typeof e.toJSON === "function" ? e.toJSON() : { name: e.name, message: e.message });
    const wrongType = await doubler.send({ value: 1 }, { timeot: 5 }).catch(post);   // a misspelt option
    const outOfRange = await runtime.launch("other", null, { queueSize: -1 }).catch(post);
    const again = [wrongType, outOfRange].map((data) => RingKernelError.fromJSON(data));
    const nested = RingKernelError.fromJSON({ name: "KernelStateError", message: "m", errors: [{ name: "TypeError", message: "t" }] });
    await runtime.dispose();
    console.log(JSON.stringify({
      data: [wrongType.name, outOfRange.name],
      again: again.map((e) => [e.constructor.name, e.name, e instanceof RingKernelError]),
      messages: again.map((e, i) => e.message === [wrongType, outOfRange][i].message),
      nested: [nested instanceof KernelStateError, nested.errors[0] instanceof TypeError, nested.errors[0].message],
      still: [RingKernelError.fromJSON({ name: "constructor", message: "?" }).constructor.name, RingKernelError.fromJSON({ name: "toString", message: "?" }).constructor.name],
    }));
  `);
  assertExited(result);
  const found = findings(result);
  assert.deepEqual(found.data, ["TypeError", "RangeError"]);
  assert.deepEqual(found.again, [["TypeError", "TypeError", false], ["RangeError", "RangeError", false]]);
  assert.deepEqual(found.messages, [true, true]);
  assert.deepEqual(found.nested, [true, true, "t"]);
  assert.deepEqual(found.still, ["RingKernelError", "RingKernelError"], "other names it does not know stay RingKernelErrors");
});

test("a handle's readable() and writable() are Web Streams of its answers and input: pipeTo feeds it with backpressure, a cancelled reader loses no answer, termination closes the readable and a refused send errors the writable", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, KernelStateError } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const doubler = await runtime.launch("doubler", null, { autoActivate: true, queueSize: 8 });
    const source = new ReadableStream({ start(c) { for (let value = 0; value < 100; value++) c.enqueue({ value }); c.close(); } });
    const piped = source.pipeTo(doubler.writable());
    const reader = doubler.readable().getReader();
    const streamed = [];
    while (streamed.length < 100) streamed.push((await reader.read()).value.result);
    await piped;
    reader.releaseLock();
    // A reader that reads one answer and cancels leaves the rest queued.
    await doubler.sendBatch([{ value: 1000 }, { value: 1001 }, { value: 1002 }]);
    const partial = doubler.readable().getReader();
    const one = (await partial.read()).value.result;
    await partial.cancel();
    const rest = (await doubler.receiveBatch({ max: 10, timeout: 20000 })).map((a) => a.result);
    // Cancelled while its read waits: that wait takes nothing.
    const idle = doubler.readable().getReader();
    const pending = idle.read();
    await idle.cancel();
    const ended = await pending;
    await doubler.send({ value: 7 });
    const later = (await doubler.receive({ timeout: 20000 })).result;
    // A caller's signal errors the stream with its reason.
    const controller = new AbortController();
    const signalled = doubler.readable({ signal: controller.signal }).getReader();
    const aborted = signalled.read().then(() => "read", (e) => e);
    controller.abort(new Error("enough"));
    const abortReason = (await aborted).message;
    // The stream's wait keeps its place among receives: a read whose wait began first gets the
    // first answer, a receive after it the second.
    const first = doubler.readable().getReader();
    const firstRead = first.read();
    await new Promise((resolve) => setTimeout(resolve, 10));
    const secondReceive = doubler.receive({ timeout: 20000 });
    await doubler.sendBatch([{ value: 21 }, { value: 22 }]);
    const inLine = [(await firstRead).value.result, (await secondReceive).result];
    first.releaseLock();
    // An aborted signal errors the stream and takes nothing, answers waiting or not.
    await doubler.sendBatch([{ value: 1 }, { value: 2 }]);
    const abortedRead = await doubler.readable({ signal: AbortSignal.abort(new Error("gone")) }).getReader().read().then(() => "read", (e) => e.message);
    const kept = (await doubler.receiveBatch({ max: 10, timeout: 20000 })).map((a) => a.result);
    // A callback that throws leaves its answer queued.
    await doubler.send({ value: 5 });
    const thrown = await doubler.receiveInto(() => { throw new Error("not now"); }).then(() => "taken", (e) => e.message);
    const still = (await doubler.receive({ timeout: 20000 })).result;
    // A callback that receives from the kernel itself takes the answer there: receiveInto then
    // takes nothing more and says so, and the next answer stays queued.
    await doubler.sendBatch([{ value: 6 }, { value: 7 }]);
    let inner;
    const selfReceiving = await doubler.receiveInto(() => { inner = doubler.tryReceive().result; }).then(() => "taken", (e) => e.name);
    const next = (await doubler.receive({ timeout: 20000 })).result;
    // Streams let go of a long-lived signal's listener when they end; a signal that is not one
    // is a TypeError at once.
    const { getEventListeners } = await import("node:events");
    const longLived = new AbortController();
    for (let i = 0; i < 50; i++) {
      await doubler.readable({ signal: longLived.signal }).cancel();
      await doubler.writable({ signal: longLived.signal }).close();
    }
    const listeners = getEventListeners(longLived.signal, "abort").length;
    const badSignal = (() => { try { doubler.readable({ signal: 5 }); return "made"; } catch (e) { return [e.constructor.name, e.message]; } })();
    // Aborting a writable ends the send that waits for room: that message is not queued.
    await doubler.deactivate();
    const before = doubler.status().inputQueueDepth;
    const writer = doubler.writable().getWriter();
    for (let value = 0; value < 8 - before; value++) writer.write({ value });
    const waiting = writer.write({ value: 99 }).then(() => "written", (e) => e?.name ?? String(e));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await writer.abort(new Error("stop"));
    const abortedWrite = await waiting;
    const queuedAfterAbort = doubler.status().inputQueueDepth;
    await doubler.activate();
    await doubler.receiveBatch({ max: 100, timeout: 20000 });
    // Terminated with none left, the readable closes; a send to it errors the writable.
    const closing = doubler.readable().getReader();
    const closed = closing.read();
    await doubler.terminate();
    const done = (await closed).done;
    const refused = await new ReadableStream({ start(c) { c.enqueue({ value: 1 }); c.close(); } }).pipeTo(doubler.writable()).then(() => "sent", (e) => [e instanceof KernelStateError, e.state]);
    await runtime.dispose();
    console.log(JSON.stringify({ inOrder: streamed.every((r, i) => r === 2 * i), one, rest, ended: ended.done, later, abortReason, inLine, abortedRead, kept, thrown, still, selfReceiving, inner, next, listeners, badSignal, abortedWrite, queuedAfterAbort, done, refused }));
  `);
  assertExited(result);
  assert.deepEqual(findings(result), { inOrder: true, one: 2000, rest: [2002, 2004], ended: true, later: 14, abortReason: "enough",
    inLine: [42, 44], abortedRead: "gone", kept: [2, 4], thrown: "not now", still: 10, selfReceiving: "TypeError", inner: 12, next: 14, listeners: 0, badSignal: ["TypeError", "readable options: signal must be an AbortSignal, got number"],
    abortedWrite: "Error", queuedAfterAbort: 8, done: true, refused: [true, "terminated"] });
});

test("streams dropped part way, neither cancelled nor closed, let go of a long-lived signal's listener once collected", async () => {
  const result = await runNode(["--expose-gc", "--input-type=module", "-e", `
    import init, { RingKernelRuntime } from "ringkernel-web";
    import { getEventListeners } from "node:events";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const doubler = await runtime.launch("doubler", null, { autoActivate: true });
    const session = new AbortController();
    // A view that reads one answer and a form that writes one message, then are dropped.
    for (let i = 0; i < 200; i++) {
      await doubler.send({ value: i });
      const reader = doubler.readable({ signal: session.signal }).getReader();
      await reader.read();
      reader.releaseLock();
      const writer = doubler.writable({ signal: session.signal }).getWriter();
      await writer.write({ value: i });
      writer.releaseLock();
      await doubler.receive({ timeout: 20000 });
    }
    const held = getEventListeners(session.signal, "abort").length;
    for (let i = 0; i < 10 && getEventListeners(session.signal, "abort").length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      gc();
    }
    const listeners = getEventListeners(session.signal, "abort").length;
    // A stream still in use follows the signal, collections or not.
    const live = doubler.readable({ signal: session.signal }).getReader();
    const waiting = live.read();
    for (let i = 0; i < 3; i++) { await new Promise((resolve) => setTimeout(resolve, 20)); gc(); }
    session.abort(new Error("session over"));
    const liveEnded = await waiting.then(() => "read", (e) => e.message);
    await runtime.dispose();
    console.log(JSON.stringify({ some: held > 0, listeners, liveEnded }));
  `]);
  assertExited(result);
  assert.deepEqual(findings(result), { some: true, listeners: 0, liveEnded: "session over" });
});

test("initialState starts a kernel's state and writeState (the runtime's and a handle's) writes into it between messages; wrong types and indices are TypeErrors and RangeErrors that write nothing", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage, ringKernel, KernelStateError } from "ringkernel-web";
    await init();
    const Request = defineMessage("TallyRequest", { value: "i32" });
    const Response = defineMessage("TallyResponse", { result: "i32" });
    // state[0]: messages seen, state[1]: the sum of their values.
    ringKernel({ id: "tally", input: Request, output: Response, state: { length: 2, type: "i32" }, handler: (m, s) => {
      s[1] += m.value;
      return { result: s[0]++ };
    } });
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const initial = new Int32Array([10, 100]);
    const tally = await runtime.launch("tally", null, { autoActivate: true, initialState: initial });
    initial[0] = -1; // copied by launch
    const first = (await tally.call({ value: 1 })).result;
    await runtime.writeState("tally", new Int32Array([7]), 1);
    const afterWrite = [...(await tally.readState())];
    await tally.writeState(new Int32Array([0]));
    const second = (await tally.call({ value: 2 })).result;
    const refused = async (promise) => promise.then(() => "written", (e) => [e.name, e instanceof TypeError || e instanceof RangeError, e.message]);
    const refusals = [
      await refused(runtime.writeState("tally", new Float32Array([1]))),
      await refused(runtime.writeState("tally", new Int32Array(2), 1)),
      await refused(runtime.writeState("tally", [1, 2])),
      await refused(runtime.writeState("tally", new Int32Array(1), 1.5)),
      await refused(runtime.launch("doubler", null, { initialState: new Int32Array(1) })),
      await refused(runtime.writeState("tally", (() => { const a = new Int32Array(2); structuredClone(a.buffer, { transfer: [a.buffer] }); return a; })())),
      await refused(runtime.writeState("tally", Object.defineProperties(new Uint8Array(8), { [Symbol.toStringTag]: { value: "Int32Array" }, BYTES_PER_ELEMENT: { value: 4 } }))),
      await refused(runtime.launch("tally2", ringKernel({ id: "tally2", input: Request, output: Response, state: { length: 1, type: "u32" }, handler: (m) => ({ result: 0 }) }), { initialState: new Int32Array(1) })),
    ];
    const kept = [...(await runtime.readState("tally"))];
    await tally.terminate();
    const ended = await tally.writeState(new Int32Array(1)).then(() => "written", (e) => [e.name, e instanceof KernelStateError, e.state, e.action]);
    await runtime.dispose();
    console.log(JSON.stringify({ first, afterWrite, second, refusals, kept, ended }));
  `);
  assertExited(result);
  const found = findings(result);
  assert.equal(found.first, 10, "the count started at its initial value");
  assert.deepEqual(found.afterWrite, [11, 7]);
  assert.equal(found.second, 0, "the write reached the next message");
  assert.deepEqual(found.refusals, [
    ["TypeError", true, "the state of kernel 'tally' is array<i32, 2>: give an Int32Array, got a Float32Array"],
    ["RangeError", true, "the state of kernel 'tally' has 2 elements: 2 values from index 1 do not fit"],
    ["TypeError", true, "writeState takes a Uint32Array, Int32Array or Float32Array, got an array"],
    ["RangeError", true, "writeState: index must be a whole number from 0 to 4294967295, got 1.5"],
    ["TypeError", true, "kernel 'doubler' has no state; declare one in its definition (state: { type, length })"],
    ["TypeError", true, "writeState cannot read its values: they are an Int32Array whose buffer is detached"],
    ["TypeError", true, "writeState takes a Uint32Array, Int32Array or Float32Array, got a Uint8Array"],
    ["TypeError", true, "the state of kernel 'tally2' is array<u32, 1>: give a Uint32Array, got an Int32Array"],
  ]);
  assert.deepEqual(found.kept, [1, 9], "nothing refused was written");
  assert.deepEqual(found.ended, ["KernelStateError", true, "terminated", "write state"]);
});

test("dispose() hands the answers its drain produced to receives already waiting for them", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const doubler = await runtime.launch("doubler"); // launched, not active: the drain runs them
    await doubler.sendBatch([{ value: 1 }, { value: 2 }, { value: 3 }]);
    const settled = (promise) => promise.then((a) => a, (e) => e.name);
    const waiting = [settled(doubler.receive()), settled(runtime.receive("doubler")), settled(runtime.receiveBatch("doubler", { max: 1 }))];
    const report = await runtime.dispose();
    const answers = await Promise.all(waiting);
    const after = await settled(runtime.receive("doubler"));
    console.log(JSON.stringify({ answers, neverReceived: report.answersNeverReceived, processed: report.messagesProcessed, after }));
  `);
  assertExited(result);
  assert.deepEqual(findings(result), {
    answers: [{ result: 2 }, { result: 4 }, [{ result: 6 }]], neverReceived: 0, processed: 3, after: "RuntimeDisposedError",
  });
});

test("sendBatch takes messages packed in a SharedArrayBuffer, whole or through a view, as it takes an ArrayBuffer", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const doubler = await runtime.launch("doubler", null, { autoActivate: true });
    const shared = new SharedArrayBuffer(12);
    new Int32Array(shared).set([1, 2, 3]);
    const sent = [
      await doubler.sendBatch(shared),
      await runtime.sendBatch("doubler", shared),
      await doubler.sendBatch(new Int32Array(shared, 4, 2)),
      await doubler.sendBatch(new DataView(shared, 8, 4)),
    ];
    const answers = (await doubler.receiveBatch({ min: 9, timeout: 5000 })).map((a) => a.result);
    const torn = await doubler.sendBatch(new SharedArrayBuffer(5)).then(() => "resolved", (e) => e.name + ": " + e.message);
    await runtime.dispose();
    console.log(JSON.stringify({ sent, answers, torn }));
  `);
  assertExited(result);
  assert.deepEqual(findings(result), {
    sent: [3, 3, 2, 1], answers: [2, 4, 6, 2, 4, 6, 4, 6, 6],
    torn: "MessageFormatError: malformed message for kernel 'doubler': 'Request' messages are 4 bytes each: a packed batch of 5 bytes is not a whole number of them",
  });
});

test("after dispose() a launch or readState of an id nothing is registered or launched under is a RuntimeDisposedError, as a send to it is", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    await runtime.launch("histogram");
    await runtime.dispose();
    const refusal = (promise) => promise.then(() => "resolved", (e) => e.name);
    console.log(JSON.stringify({
      launchUnknown: await refusal(runtime.launch("no-such-kernel")),
      launchBuiltIn: await refusal(runtime.launch("doubler")),
      readStateUnknown: await refusal(runtime.readState("no-such-kernel")),
      readStateLaunched: await refusal(runtime.readState("histogram")),
      sendUnknown: await refusal(runtime.send("no-such-kernel", { value: 1 })),
    }));
  `);
  assertExited(result);
  assert.deepEqual(findings(result), {
    launchUnknown: "RuntimeDisposedError", launchBuiltIn: "RuntimeDisposedError",
    readStateUnknown: "RuntimeDisposedError", readStateLaunched: "RuntimeDisposedError", sendUnknown: "RuntimeDisposedError",
  });
});

test("Node's own AbortSignal ends a wait: the receive rejects with its reason, operations whose signal aborted before the call do nothing", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const doubler = await runtime.launch("doubler", null, { autoActivate: true });
    const Echo = defineMessage("Echo", { value: "i32" });
    const quiet = await runtime.launch("quiet", { input: Echo, output: Echo, handler: (m) => m }, { autoActivate: true });
    const reason = new Error("enough");
    const controller = new AbortController();
    const waiting = quiet.receive({ signal: controller.signal }).then(() => "answered", (e) => (e === reason ? "reason" : e.name));
    setTimeout(() => controller.abort(reason), 50);
    const aborted = await waiting;
    const before = await doubler.send({ value: 1 }, { signal: AbortSignal.abort() }).then(() => "sent", (e) => e.name);
    const answer = await doubler.call({ value: 21 }, { signal: controller.signal }).then((a) => a, (e) => (e === reason ? "reason" : e.name));
    const depth = doubler.status().inputQueueDepth + doubler.status().outputQueueDepth;
    await runtime.dispose();
    console.log(JSON.stringify({ aborted, before, answer, depth }));
  `);
  assertExited(result);
  assert.deepEqual(findings(result), { aborted: "reason", before: "AbortError", answer: "reason", depth: 0 });
});

test("an abort before an operation goes on wins: a send that would now find room is not queued, a queued call's answer is abandoned", async () => {
  // On the cpu backend the tick ran the handlers and found room (or the answer) before the
  // aborted operation's task looked at its signal again: the abort lost.
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    await init();
    const M = defineMessage("M", { seq: "i32" });
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const seen = [];
    const busy = (ms) => { const end = performance.now() + ms; while (performance.now() < end); };
    const k = await runtime.launch("k", { input: M, output: M, handler: (m) => (seen.push(m.seq), busy(20), m) }, { autoActivate: true, queueSize: 2 });
    const outcome = (promise, controller) => promise.then((v) => "resolved " + JSON.stringify(v), (e) => (e === controller.signal.reason ? "aborted" : e.name));
    // A call queued at once, aborted in the same turn.
    const calling = new AbortController();
    const called = k.call({ seq: 1 }, { signal: calling.signal });
    calling.abort();
    const call = await outcome(called, calling);
    await k.receive({ timeout: 5000 }).catch(() => {});
    // Sends waiting for room (the queue of 2 is full), aborted in the same turn.
    const sends = [];
    for (const op of ["send", "sendBatch", "sendEnvelope", "call"]) {
      k.trySend({ seq: 100 }); k.trySend({ seq: 101 });
      const controller = new AbortController();
      const sent = op === "sendBatch" ? k.sendBatch([{ seq: 2 }], { signal: controller.signal }) : k[op]({ seq: 2 }, { signal: controller.signal });
      controller.abort();
      sends.push(await outcome(sent, controller));
      for (let i = 0; i < 2; i++) await k.receive({ timeout: 5000 });
    }
    const t = runtime.getTelemetry("k");
    await runtime.dispose();
    console.log(JSON.stringify({ call, sends, seen, abandoned: t.answersAbandoned, received: t.messagesReceived, sent: t.messagesSent }));
  `);
  assertExited(result);
  assert.deepEqual(findings(result), {
    call: "aborted",
    sends: ["aborted", "aborted", "aborted", "aborted"],
    seen: [1, 100, 101, 100, 101, 100, 101, 100, 101],
    abandoned: 1,
    received: 8,
    sent: 9,
  });
});

test("a send waiting for room past its stall warning leaves the thread free: timers fire, and a receive lets it in", async () => {
  // A kernel whose answers nobody receives: its input cannot move, so the ninth send waits. At
  // one second it is reported (a warning); from the next second on, its wait once ended at
  // once, again and again, a loop that froze Node's thread for good (or until a timeout's
  // deadline). The timers run to three seconds.
  const result = await runModule(`
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu", enableTelemetry: true });
    const doubler = await runtime.launch("doubler", null, { autoActivate: true, queueSize: 4 });
    for (let i = 0; i < 8; i++) await doubler.send({ value: i });
    const started = Date.now();
    let settled = null;
    const waiting = doubler.send({ value: 8 }).then(() => (settled = Date.now() - started));
    const ticks = [];
    await new Promise((resolve) => {
      const interval = setInterval(() => {
        ticks.push(Date.now() - started);
        if (ticks.length === 10) (clearInterval(interval), resolve());
      }, 300);
    });
    const beforeReceive = settled;
    const answers = [];
    while (answers.length < 9) answers.push((await doubler.receive({ timeout: 5000 })).result);
    await waiting;
    const stalledSends = runtime.getTelemetry("doubler").stalledSends;
    await runtime.dispose();
    console.log(JSON.stringify({ ticks: ticks.length, lastTickAfterWarning: ticks.at(-1) > 2500, beforeReceive, answers, stalledSends }));
  `);
  assertExited(result);
  assert.match(result.stderr, /a send to kernel 'doubler' has waited 1 s for room/);
  assert.deepEqual(findings(result), {
    ticks: 10,
    lastTickAfterWarning: true,
    beforeReceive: null,
    answers: [0, 2, 4, 6, 8, 10, 12, 14, 16],
    stalledSends: 1,
  });
});

test("a send held by a paused next stage is reported naming that stage, and a wait with no timeout holds no process open", async () => {
  // Its looks once set a ref'd timer every second, for good: the process never exited, and
  // nothing said why the send waited.
  const result = await runModule(`
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu", enableTelemetry: true });
    const doubler = await runtime.launch("doubler", null, { autoActivate: true, queueSize: 2 });
    await runtime.launch("echo", null, { queueSize: 2 }); // never activated
    await runtime.connect("doubler", "echo");
    let error;
    // Until a send is refused for a stall: one that timed out naming none met a kernel merely
    // slow to make room (a loaded machine).
    for (let i = 0; !error; i++) await doubler.send({ value: i }, { timeout: 20 }).catch((e) => { if (e.name !== "QueueFullError" || e.stall) error = e; });
    // Waits with no timeout: looked at (and reported) after a second; then the script ends.
    doubler.send({ value: 99 });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const stalledSends = runtime.getTelemetry("doubler").stalledSends;
    const ended = performance.now();
    process.on("exit", () => console.log(JSON.stringify({ name: error.name, stall: error.stall, stalledSends, exitAfter: Math.round(performance.now() - ended) })));
  `);
  assertExited(result);
  assert.match(result.stderr, /a send to kernel 'doubler' has waited 1 s for room: .* its next stage takes none of its answers\. The stage that holds it, 'echo': it is launched, not active\. activate\(\) it\./);
  const { name, stall, stalledSends, exitAfter } = findings(result);
  assert.deepEqual({ name, stall, stalledSends }, { name: "QueueFullError", stall: "nextStageStalled", stalledSends: 1 });
  assert.ok(exitAfter < 900, `the process exited ${exitAfter} ms after its last line: the stall watch's next look held it`);
});

test("in a pipeline of three, a send to the first stage and a receive from the last, held by the last stage paused, each name that stage and what to do", async () => {
  // The warning named only the next stage ("'b': its next stage takes none of its answers"),
  // and a receive from the last stage, its input waiting at an earlier one, said nothing.
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu", enableTelemetry: true });
    const Chain = defineMessage("Chain", { v: "i32" });
    const stage = (k) => ({ input: Chain, output: Chain, handler: (m) => ({ v: m.v + k }) });
    for (const [id, k] of [["a", 1], ["b", 10], ["c", 100]]) await runtime.launch(id, stage(k), { autoActivate: true, queueSize: 2 });
    await runtime.connect("a", "b");
    await runtime.connect("b", "c");
    await runtime.deactivate("c");
    // Fills the pipeline: a send that times out with no stall named met stages merely slow (a
    // loaded machine), and is sent again; one that names a stall found the pipeline held.
    let sent = 0;
    for (;;) {
      try { await runtime.send("a", { v: sent }, { timeout: 20 }); sent++; } catch (e) { if (e.name !== "QueueFullError" || e.stall) break; }
    }
    const waiting = runtime.send("a", { v: sent++ });
    const received = runtime.receive("c");
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const timedOut = await runtime.receive("c", { timeout: 10 }).catch((e) => e.stall);
    await runtime.reactivate("c");
    await waiting;
    const first = await received;
    await runtime.dispose();
    console.log(JSON.stringify({ first: first.v, timedOut }));
  `);
  assertExited(result);
  assert.match(result.stderr, /a send to kernel 'a' has waited 1 s for room: its input \(\d+ messages?\) waits because its next stage takes none of its answers\. The stage that holds it, 'c': it is deactivated, not active\. reactivate\(\) it\./);
  assert.match(result.stderr, /a receive from kernel 'c' has waited 1 s for an answer: its input \(\d+ messages?\) waits at an earlier stage, '[ab]', because it is deactivated, not active\. reactivate\(\) it\./);
  assert.deepEqual(findings(result), { first: 111, timedOut: "inactive" });
});

test("a receive or call waiting on a kernel never activated says so after a second, and is answered once it is", async () => {
  // The seeds' lifecycle leaves a launched kernel inactive: a newcomer's first receive, with no
  // timeout, waited without a word.
  const result = await runModule(`
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu", enableTelemetry: true });
    const doubler = await runtime.launch("doubler");
    await doubler.send({ value: 1 });
    let answered = null;
    const receiving = doubler.receive().then((a) => (answered = a.result));
    const calling = [2, 3, 4].map((value) => doubler.call({ value }));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const beforeActivate = answered;
    const stalledSends = runtime.getTelemetry("doubler").stalledSends;
    await doubler.activate();
    const answers = [await receiving, ...(await Promise.all(calling)).map((a) => a.result)];
    await runtime.dispose();
    console.log(JSON.stringify({ beforeActivate, stalledSends, answers }));
  `);
  assertExited(result);
  // Every wait is counted; the stall is warned of once, by whichever wait looked first.
  assert.match(result.stderr, /(a receive from kernel 'doubler' has waited 1 s for an answer|a call to kernel 'doubler' has waited 1 s for its answer): its input \(4 messages\) waits because it is launched, not active\. activate\(\) it\./);
  assert.equal(result.stderr.match(/has waited 1 s/g).length, 1, result.stderr);
  assert.deepEqual(findings(result), { beforeActivate: null, stalledSends: 4, answers: [2, 4, 6, 8] });
});

test("a handle never reaches a kernel launched later under its id: KernelNotFoundError, and nothing reaches the new one", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, KernelNotFoundError, managedKernel } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const old = await runtime.launch("doubler", null, { autoActivate: true });
    await old.terminate();
    runtime.remove("doubler");
    const fresh = await runtime.launch("doubler", null, { autoActivate: true });
    const refused = {};
    for (const [name, run] of Object.entries({
      send: () => old.send({ value: 1 }),
      trySend: () => old.trySend({ value: 2 }),
      sendBatch: () => old.sendBatch([{ value: 3 }]),
      call: () => old.call({ value: 4 }),
      receive: () => old.receive({ timeout: 10 }),
      tryReceive: () => old.tryReceive(),
      deactivate: () => old.deactivate(),
      terminate: () => old.terminate(),
      state: () => old.state,
      status: () => old.status(),
    })) {
      try {
        await run();
        refused[name] = "not refused";
      } catch (e) {
        refused[name] = e instanceof KernelNotFoundError ? e.kernelId : \`\${e.name}: \${e.message}\`;
      }
    }
    const answer = await fresh.call({ value: 21 }, { timeout: 5000 });
    const processed = fresh.status().messagesProcessed;
    // A managed kernel's scope ends (await using) without touching a later kernel of its id.
    const managed = await managedKernel(runtime, "echo");
    await runtime.terminate("echo");
    runtime.remove("echo");
    const later = await runtime.launch("echo", null, { autoActivate: true });
    await managed.terminate();
    const laterState = later.state;
    await runtime.dispose();
    console.log(JSON.stringify({ refused, answer, processed, laterState }));
  `);
  assertExited(result);
  const names = ["send", "trySend", "sendBatch", "call", "receive", "tryReceive", "deactivate", "terminate", "state", "status"];
  assert.deepEqual(findings(result), {
    refused: Object.fromEntries(names.map((name) => [name, "doubler"])),
    answer: { result: 42 },
    processed: 1,
    laterState: "active",
  });
});

test("a handle's calls that run a microtask later, after its kernel was removed and launched again in the same turn, are KernelNotFoundError and leave the new launch alone", async () => {
  // They checked the handle's launch when called and then looked the id up when their job ran:
  // the old handle's deactivate paused the new launch, its terminate ended it.
  const result = await runModule(`
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu", enableTelemetry: true });
    const old = await runtime.launch("doubler", null, { autoActivate: true });
    await old.terminate();
    const outcome = (promise) => promise.then(() => "resolved", (e) => e.name);
    const later = { deactivate: outcome(old.deactivate()), terminate: outcome(old.terminate()), receive: outcome(old.receive({ timeout: 100 })) };
    runtime.remove("doubler");
    runtime.launch("doubler", null, { autoActivate: true });
    const outcomes = {};
    for (const [name, promise] of Object.entries(later)) outcomes[name] = await promise;
    const state = runtime.getState("doubler");
    const answer = await runtime.call("doubler", { value: 21 }, { timeout: 5000 });
    await runtime.dispose();
    console.log(JSON.stringify({ outcomes, state, answer: answer.result }));
  `);
  assertExited(result);
  assert.deepEqual(findings(result), {
    outcomes: { deactivate: "KernelNotFoundError", terminate: "KernelNotFoundError", receive: "KernelNotFoundError" },
    state: "active",
    answer: 42,
  });
});

test("a send by id waiting behind others stays with the launch it was called on (or with none, called while the id named none): removed and launched again meanwhile, it is KernelNotFoundError and the new launch gets nothing", async () => {
  // It took the launch the id named when its turn came, and its message went into the new one.
  const result = await runModule(`
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const settle = (p) => p.then(() => "resolved", (e) => e.name);
    const runtime = await RingKernelRuntime.create({ backend: "cpu", enableTelemetry: true });
    await runtime.launch("doubler", null, { queueSize: 1 }); // never activated: its queue fills
    const first = settle(runtime.send("doubler", { value: 1 }));
    const waits = settle(runtime.send("doubler", { value: 2 }, { timeout: 5000 }));
    const behind = {
      send: settle(runtime.send("doubler", { value: 3 }, { timeout: 5000 })),
      sendBatch: settle(runtime.sendBatch("doubler", [{ value: 4 }], { timeout: 5000 })),
      call: settle(runtime.call("doubler", { value: 5 }, { timeout: 5000 })),
      sendEnvelope: settle(runtime.sendEnvelope("doubler", { value: 6 }, { timeout: 5000 })),
    };
    // Enough behind them that the line still moves when the id names no kernel.
    const crowd = Array.from({ length: 2000 }, (_, i) => settle(runtime.send("doubler", { value: 10 + i }, { timeout: 5000 })));
    await runtime.terminate("doubler", { timeout: 0 }).catch(() => {});
    runtime.remove("doubler");
    behind.calledWithNoKernel = settle(runtime.send("doubler", { value: 7 }, { timeout: 5000 }));
    behind.callWithNoKernel = settle(runtime.call("doubler", { value: 8 }, { timeout: 5000 }));
    await runtime.launch("doubler", null, { autoActivate: true });
    const outcomes = { first: await first, waits: await waits };
    for (const [name, promise] of Object.entries(behind)) outcomes[name] = await promise;
    outcomes.crowd = [...new Set(await Promise.all(crowd))].sort();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const reached = runtime.getTelemetry("doubler").messagesSent;
    await runtime.dispose();
    console.log(JSON.stringify({ outcomes, reached }));
  `);
  assertExited(result);
  const { outcomes, reached } = findings(result);
  assert.equal(outcomes.first, "resolved");
  for (const name of ["send", "sendBatch", "call", "sendEnvelope", "calledWithNoKernel", "callWithNoKernel"]) {
    assert.ok(["KernelNotFoundError", "KernelStateError"].includes(outcomes[name]), `${name}: ${outcomes[name]}`);
  }
  assert.ok(outcomes.crowd.every((name) => ["KernelNotFoundError", "KernelStateError"].includes(name)), String(outcomes.crowd));
  assert.equal(reached, 0, "the new launch took a message sent before it was launched");
});

test("the package's objects show what they stand for in console.log, JSON.stringify and String(), not their wasm address", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, managedKernel } from "ringkernel-web";
    import { inspect } from "node:util";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const kernel = await runtime.launch("doubler", null, { autoActivate: true });
    const managed = await managedKernel(runtime, "echo");
    const shown = { runtime: inspect(runtime, { breakLength: Infinity }), kernel: inspect(kernel), managed: inspect(managed), nested: inspect({ a: { b: kernel } }) };
    const json = JSON.stringify({ runtime, kernel, managed });
    const text = [String(runtime), \`\${kernel}\`, Object.prototype.toString.call(managed)];
    await kernel.terminate();
    runtime.remove("doubler");
    const removed = JSON.stringify(kernel);
    await runtime.dispose();
    const disposed = inspect(runtime);
    console.log(JSON.stringify({ shown, json: JSON.parse(json), text, removed, disposed }));
  `);
  assertExited(result);
  assert.deepEqual(findings(result), {
    shown: {
      runtime: "RingKernelRuntime { backend: 'cpu', lifecycleState: 'running', kernelIds: [ 'doubler', 'echo' ] }",
      kernel: "KernelHandle { id: 'doubler', state: 'active' }",
      managed: "ManagedKernel { id: 'echo' }",
      nested: "{ a: { b: KernelHandle { id: 'doubler', state: 'active' } } }",
    },
    json: {
      runtime: { backend: "cpu", lifecycleState: "running", kernelIds: ["doubler", "echo"] },
      kernel: { id: "doubler", state: "active" },
      managed: { id: "echo" },
    },
    text: ["[object RingKernelRuntime]", "[object KernelHandle]", "[object ManagedKernel]"],
    removed: JSON.stringify({ id: "doubler", state: null }),
    disposed: "RingKernelRuntime { backend: 'cpu', lifecycleState: 'stopped', kernelIds: [ 'echo' ] }",
  });
});

test("without WebGPU, create() rejects with BackendUnavailableError saying how to get it in Node", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, BackendUnavailableError } from "ringkernel-web";
    await init();
    const refusals = [];
    for (const options of [undefined, { backend: "webgpu" }]) {
      await RingKernelRuntime.create(options).then(
        () => refusals.push("created"),
        (e) => refusals.push({ name: e.name, named: e instanceof BackendUnavailableError, message: e.message }),
      );
    }
    // The process lives on, and the fallback the message names works.
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const doubler = await runtime.launch("doubler", null, { autoActivate: true });
    const answer = await doubler.call({ value: 5 }, { timeout: 5000 });
    await runtime.dispose();
    console.log(JSON.stringify({ refusals, answer, scope: typeof globalThis.WorkerGlobalScope }));
  `);
  assertExited(result);
  const { refusals, answer, scope } = findings(result);
  assert.equal(refusals.length, 2);
  for (const refusal of refusals) {
    assert.equal(refusal.name, "BackendUnavailableError", JSON.stringify(refusal));
    assert.equal(refusal.named, true);
    assert.match(refusal.message, /navigator\.gpu is missing: Node has no WebGPU/);
    assert.match(refusal.message, /webgpu npm package/);
    assert.match(refusal.message, /import \{ create, globals \} from "webgpu"; Object\.assign\(globalThis, globals\); globalThis\.navigator = \{ gpu: create\(\[\]\) \};/);
    assert.match(refusal.message, /backend: "cpu"/);
  }
  assert.deepEqual(answer, { result: 10 });
  assert.equal(scope, "undefined");
});

test("Dawn without an adapter: create() rejects with BackendUnavailableError naming SwiftShader", async () => {
  const result = await runModule(`${DAWN_SETUP}
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const error = await RingKernelRuntime.create().then(() => null, (e) => ({ name: e.name, message: e.message }));
    console.log(JSON.stringify({ error, scope: typeof globalThis.WorkerGlobalScope }));
  `, { VK_ICD_FILENAMES: "/nonexistent/no_icd.json" });
  assertExited(result);
  const { error, scope } = findings(result);
  assert.equal(error?.name, "BackendUnavailableError", JSON.stringify(error));
  // What to do comes first; what wgpu tried, last.
  assert.match(error.message, /^no GPU backend available: no adapter found: Node has navigator\.gpu, but it gave none\. /);
  assert.match(error.message, /\. Tried: [^]*\bwebgpu: [^]*$/, "the backends named as the options name them");
  assert.doesNotMatch(error.message, /Backends\(/);
  assert.match(error.message, /VK_ICD_FILENAMES=\/usr\/lib\/chromium\/vk_swiftshader_icd\.json/);
  assert.match(error.message, /backend: "cpu"/);
  assert.equal(scope, "undefined");
});

test("Dawn: create() opens a WebGPU device with no other shim and leaves no global behind", async () => {
  const result = await runModule(`${DAWN_SETUP}
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const globalsBefore = Object.getOwnPropertyNames(globalThis).sort();
    const runtime = await RingKernelRuntime.create();
    const globalsAfter = Object.getOwnPropertyNames(globalThis).sort();
    const doubler = await runtime.launch("doubler", null, { autoActivate: true });
    const answer = await doubler.call({ value: 21 }, { timeout: 10000 });
    const added = globalsAfter.filter((name) => !globalsBefore.includes(name));
    const adapter = runtime.getSummary().adapter;
    await runtime.dispose();
    console.log(JSON.stringify({ adapter, answer, added }));
  `, DAWN_ENV);
  assertExited(result);
  const { adapter, answer, added } = findings(result);
  console.log(`Dawn adapter: ${JSON.stringify(adapter)}`);
  assert.equal(adapter.backend, "browserwebgpu");
  assert.deepEqual(answer, { result: 42 });
  assert.deepEqual(added, []);
});

test("Dawn: gpuDevice() and stateToGPU(): a copy of a kernel's state in a GPUBuffer of the application's own, read by its own pass on the runtime's device and left unchanged by later messages", async () => {
  const result = await runModule(`${DAWN_SETUP}
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create();
    const histogram = await runtime.launch("histogram", null, { autoActivate: true });
    await histogram.call({ samples: Array(16).fill(0.5) }, { timeout: 10000 });
    const device = runtime.gpuDevice();
    const copy = histogram.stateToGPU();
    const usage = copy.usage === (GPUBufferUsage.STORAGE | GPUBufferUsage.VERTEX | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
    // The application's own pass on the runtime's device: each bin doubled.
    const module = device.createShaderModule({ code: \`
      @group(0) @binding(0) var<storage, read> bins: array<u32>;
      @group(0) @binding(1) var<storage, read_write> doubled: array<u32>;
      @compute @workgroup_size(1) fn main(@builtin(global_invocation_id) id: vec3<u32>) { doubled[id.x] = bins[id.x] * 2u; }\` });
    const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
    const doubledOf = async (input) => {
      const output = device.createBuffer({ size: input.size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
      const staging = device.createBuffer({ size: input.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: input } }, { binding: 1, resource: { buffer: output } }] });
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(input.size / 4);
      pass.end();
      encoder.copyBufferToBuffer(output, 0, staging, 0, input.size);
      device.queue.submit([encoder.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      const values = [...new Uint32Array(staging.getMappedRange().slice(0))];
      staging.unmap();
      output.destroy();
      staging.destroy();
      return values;
    };
    const first = await doubledOf(copy);
    const state = [...(await histogram.readState())];
    await histogram.call({ samples: Array(16).fill(0.5) }, { timeout: 10000 });
    const firstAgain = await doubledOf(copy);
    const second = await doubledOf(runtime.stateToGPU("histogram"));
    const errors = [];
    for (const attempt of [() => runtime.stateToGPU("doubler"), () => runtime.stateToGPU("nobody"), () => runtime.gpuDevice(1), () => runtime.gpuDevice("0")]) {
      try { attempt(); errors.push(null); } catch (e) { errors.push(e.name); }
    }
    await runtime.launch("doubler");
    try { runtime.stateToGPU("doubler"); } catch (e) { errors.push(e.name); }
    const sameDevice = runtime.gpuDevice(0) === device;
    await runtime.dispose();
    try { runtime.gpuDevice(); } catch (e) { errors.push(e.name); }
    console.log(JSON.stringify({ usage, size: copy.size, first, state, firstAgain, second, errors, sameDevice }));
  `, DAWN_ENV);
  assertExited(result);
  const found = findings(result);
  const bins = found.state;
  assert.equal(bins.reduce((a, b) => a + b, 0), 16);
  assert.deepEqual(found.first, bins.map((b) => b * 2), "the copy holds the state the kernel's messages made");
  assert.deepEqual(found.firstAgain, found.first, "later messages leave an earlier copy as it was");
  assert.deepEqual(found.second, bins.map((b) => b * 4), "a new copy has them");
  assert.deepEqual([found.usage, found.size, found.sameDevice], [true, bins.length * 4, true]);
  assert.deepEqual(found.errors, [
    "KernelNotFoundError", "KernelNotFoundError", "RangeError", "TypeError", "TypeError", "RuntimeDisposedError",
  ]);
});

test("Dawn: the application's own onuncapturederror on gpuDevice() leaves the runtime hearing of uncaught errors: both hear one, and the kernels fail until recover()", async () => {
  const result = await runModule(`${DAWN_SETUP}
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create();
    const doubler = await runtime.launch("doubler", null, { autoActivate: true });
    const device = runtime.gpuDevice();
    let heard = 0;
    device.onuncapturederror = () => { heard++; };
    const before = (await doubler.call({ value: 3 }, { timeout: 10000 })).result;
    device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.MAP_WRITE });
    const during = await doubler.call({ value: 3 }, { timeout: 10000 }).then((a) => a.result, (e) => e.name + ": " + e.message);
    await runtime.recover();
    const after = (await doubler.call({ value: 3 }, { timeout: 10000 })).result;
    await runtime.dispose();
    console.log(JSON.stringify({ before, during, after, heard }));
  `, DAWN_ENV);
  assertExited(result);
  const { before, during, after, heard } = findings(result);
  assert.deepEqual([before, after, heard], [6, 6, 1]);
  assert.match(during, /^DeviceLostError: .*uncaptured GPU error/);
});

test("Dawn: independent callers share ticks: one that starts a little later does not split them into cohorts taking every other tick", async () => {
  // The tick loop planned again the moment a tick was delivered, before the callers it had just
  // answered could send again: two callers, one a millisecond behind, then took a tick each,
  // every other tick, for good (400 ticks for 400 calls instead of about 200).
  const result = await runModule(`${DAWN_SETUP}
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create();
    const doubler = await runtime.launch("doubler", null, { autoActivate: true });
    await doubler.call({ value: 0 }, { timeout: 10000 });
    const ticksBefore = runtime.getSummary().ticks;
    const caller = async (late) => {
      if (late) await new Promise((resolve) => setTimeout(resolve, 1));
      for (let i = 0; i < 200; i++) await doubler.call({ value: i }, { timeout: 10000 });
    };
    await Promise.all([caller(false), caller(true)]);
    const ticks = runtime.getSummary().ticks - ticksBefore;
    await runtime.dispose();
    console.log(JSON.stringify({ ticks }));
  `, DAWN_ENV);
  assertExited(result);
  const { ticks } = findings(result);
  console.log(`400 calls from two callers took ${ticks} ticks`);
  assert.ok(ticks < 300, `400 calls from two callers took ${ticks} ticks: they did not share them`);
});

test("Dawn: dispose() destroys every device the runtime opened, after its last answers, and another runtime opens its own", async () => {
  const result = await runModule(`${DAWN_SETUP}
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    // Every device the package opens, as Dawn hands it out.
    const opened = [];
    const requestDevice = GPUAdapter.prototype.requestDevice;
    GPUAdapter.prototype.requestDevice = async function (...args) {
      const device = await requestDevice.apply(this, args);
      opened.push(device);
      return device;
    };
    const lostWithin = (device, ms) =>
      Promise.race([device.lost.then((info) => info.reason), new Promise((r) => setTimeout(() => r("not lost"), ms))]);
    const runtime = await RingKernelRuntime.create({ devices: [{}, {}] });
    const doubler = await runtime.launch("doubler", null, { autoActivate: true });
    const sent = await doubler.sendBatch(Array.from({ length: 100 }, (_, i) => ({ value: i })), { timeout: 10000 });
    const report = await runtime.dispose();
    const first = opened.slice();
    const reasons = await Promise.all(first.map((device) => lostWithin(device, 5000)));
    const answers = (await doubler.receiveBatch({ max: 100, timeout: 10000 }).catch((e) => e.name));
    const next = await RingKernelRuntime.create();
    const answer = await (await next.launch("doubler", null, { autoActivate: true })).call({ value: 21 }, { timeout: 10000 });
    const stillOpen = await lostWithin(opened.at(-1), 100);
    await next.dispose();
    console.log(JSON.stringify({
      devices: first.length, reasons, sent, processed: report.messagesProcessed, answers: typeof answers === "string" ? answers : answers.length,
      answer, stillOpen, lastLost: await lostWithin(opened.at(-1), 5000),
    }));
  `, DAWN_ENV);
  assertExited(result);
  assert.deepEqual(findings(result), {
    devices: 2, reasons: ["destroyed", "destroyed"], sent: 100, processed: 100, answers: "RuntimeDisposedError",
    answer: { result: 42 }, stillOpen: "not lost", lastLost: "destroyed",
  });
});

test("a JavaScript handler's failures: each call hears its own, lastError is the latest, and the console shows only the first", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage, ringKernel } from "ringkernel-web";
    await init();
    const logged = [];
    console.error = (...args) => logged.push(args.join(" "));
    const Request = defineMessage("OddRequest", { value: "i32" });
    const Response = defineMessage("OddResponse", { result: "i32" });
    ringKernel({ id: "odd", input: Request, output: Response, handler: (m) => {
      if (m.value % 2) throw new RangeError("odd " + m.value);
      return { result: 2 * m.value };
    } });
    const runtime = await RingKernelRuntime.create({ backend: "cpu", enableTelemetry: true });
    const odd = await runtime.launch("odd", null, { autoActivate: true });
    const first = (await odd.call({ value: 2 }, { timeout: 10000 })).result;
    // Queued while the kernel is paused, so that all of them run in one tick: 1, the calls of
    // 3 and 4, then 5. A call's place in that tick differs from its number in the kernel's stream.
    await odd.deactivate();
    await odd.sendBatch([{ value: 1 }]);
    const calls = [3, 4].map((value) => odd.call({ value }, { timeout: 10000 }).then((a) => a.result, (e) => e.name + ": " + e.message));
    await odd.send({ value: 5 });
    await odd.activate();
    const answers = await Promise.all(calls);
    const { errors, lastError, dispatches } = runtime.getTelemetry("odd");
    await runtime.dispose();
    console.log(JSON.stringify({ first, answers, errors, lastError, dispatches, logged }));
  `);
  assertExited(result);
  assert.deepEqual(findings(result), {
    first: 4,
    answers: ["MessageDroppedError: kernel 'odd' dropped the message of this call: the handler threw: RangeError: odd 3", 8],
    errors: 3,
    lastError: "the handler threw: RangeError: odd 5",
    dispatches: 2,
    logged: ["ringkernel-web: a host handler threw: RangeError: odd 1 (later failures of this handler are counted in telemetry's errors and lastError, not shown)"],
  });
});

test("Dawn: kernels launched and removed with no traffic leave the process's memory level", async () => {
  // Dawn frees a destroyed buffer's memory when the queue next moves on: an idle device kept
  // every removed kernel's rings, 72 MB growing to 285 MB over 2,000 cycles before a removed
  // kernel submitted nothing to say so. Cycles of one definition reuse its compiled pipeline.
  const result = await runModule(`${DAWN_SETUP}
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create();
    const cycle = async () => {
      await runtime.launch("doubler", null, { queueSize: 16384 });
      await runtime.terminate("doubler", { timeout: 10000 });
      runtime.remove("doubler");
    };
    for (let i = 0; i < 200; i++) await cycle(); // Dawn's and V8's own start-up growth
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 800; i++) await cycle();
    const grownMb = (process.memoryUsage().rss - before) / 2 ** 20;
    const { gpuBufferCount } = runtime.getSummary();
    await runtime.dispose();
    console.log(JSON.stringify({ grownMb, gpuBufferCount }));
  `, DAWN_ENV);
  assertExited(result);
  const { grownMb, gpuBufferCount } = findings(result);
  assert.equal(gpuBufferCount, 0);
  // Each cycle's rings are 2 × 16,384 slots of 4 bytes; kept, 800 cycles would hold 200 MB.
  assert.ok(grownMb < 40, `the process grew ${grownMb.toFixed(1)} MB over 800 launch and remove cycles`);
});

test("kernel ids are any well-formed text: __proto__ keeps its entry, a lone surrogate is refused, quotes and newlines stay inside their quote", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu", enableTelemetry: true });
    const doubler = {
      input: defineMessage("IdRequest", { value: "i32" }), output: defineMessage("IdResponse", { result: "i32" }),
      handler: (m) => ({ result: 2 * m.value }),
    };
    const proto = await runtime.launch("__proto__", doubler, { autoActivate: true });
    await runtime.launch("other", doubler);
    const answer = (await proto.call({ value: 21 }, { timeout: 10000 })).result;
    const { perKernel } = runtime.getSummary();
    const lone = await runtime.launch("k\\uD800", doubler).then(() => "launched", (e) => e.name + ": " + e.message);
    const notFound = (() => { try { runtime.getState("x' not found; kernel 'y\\nz"); } catch (e) { return e.message; } })();
    const field = (() => { try { defineMessage("Tagged", { type: "u32" }); } catch (e) { return e.name + ": " + e.message; } })();
    const name = (() => { try { defineMessage("loop", { value: "u32" }); } catch (e) { return e.name; } })();
    console.log(JSON.stringify({
      answer, perKernel: Object.keys(perKernel), sent: perKernel["__proto__"]?.messagesSent,
      prototypeKept: Object.getPrototypeOf(perKernel) === Object.prototype,
      byKernel: Object.keys(runtime.memory().byKernel), lone, notFound, field, name,
    }));
    await runtime.dispose();
  `);
  assertExited(result);
  const found = findings(result);
  assert.deepEqual({ ...found, lone: found.lone.split(",")[0] }, {
    answer: 42, perKernel: ["__proto__", "other"], sent: 1, prototypeKept: true, byKernel: ["__proto__", "other"],
    lone: "TypeError: id must be a kernel id of well-formed text",
    notFound: "kernel 'x\\' not found; kernel \\'y\\u{a}z' not found",
    field: "TypeError: message Tagged: 'type' is a WGSL keyword or reserved word; pick another field name",
    name: "TypeError",
  });
});

test("nothing a JavaScript handler or a message does throws into the runtime: each bad one is refused alone, and the runtime goes on", async () => {
  // Each of these once threw through the tick (or a send) into wasm, past the Rust code that
  // called it: every kernel of the runtime stopped, dispose() never settled, or a kernel's
  // sends all failed as "queue full" for good; an async handler's rejection ended Node.
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    await init();
    console.error = () => {};
    const Request = defineMessage("BadRequest", { value: "i32" });
    const Response = defineMessage("BadResponse", { result: "i32" });
    const runtime = await RingKernelRuntime.create({ backend: "cpu", enableTelemetry: true });
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    const badName = new Error("x");
    Object.defineProperty(badName, "message", { get() { throw new Error("no message"); } });
    const answers = {
      1: () => ({ get result() { throw new Error("getter boom"); } }),
      2: () => new Proxy({}, { ownKeys() { throw new Error("trap boom"); } }),
      3: () => revoked.proxy,
      4: () => { throw badName; },
      5: () => { throw revoked.proxy; },
      6: async () => { throw new Error("rejected"); },
      7: () => { throw "x".repeat(100000); },
    };
    const kernel = await runtime.launch("bad", {
      input: Request, output: Response, state: { length: 2 },
      handler: (m, state) => {
        state[0] += 1;
        if (m.value === 8) structuredClone(state.buffer, { transfer: [state.buffer] });
        return (answers[m.value] ?? (() => ({ result: 2 * m.value })))();
      },
    }, { autoActivate: true, maxBatch: 1 });
    const outcome = (value) => kernel.call({ value }, { timeout: 10000 }).then((a) => a.result, (e) => e.name + ": " + e.message.slice(0, 2000));
    const calls = [];
    for (const value of [1, 2, 3, 4, 5, 6, 7, 8, 9]) calls.push(await outcome(value));
    const boom = { get value() { throw new Error("send getter boom"); } };
    const refusals = [];
    for (const send of [() => kernel.sendBatch([{ value: 1 }, boom]), () => kernel.send(boom), () => kernel.call(boom)]) {
      refusals.push(await send().then(() => "sent", (e) => e.name));
    }
    const after = (await kernel.call({ value: 21 }, { timeout: 10000 })).result;
    const state = (await runtime.readState("bad"))[0];
    const report = await runtime.dispose();
    console.log(JSON.stringify({ calls, refusals, after, disposed: report.messagesProcessed > 0, state }));
  `);
  assertExited(result);
  const { calls, refusals, after, disposed, state } = findings(result);
  assert.deepEqual(calls.slice(0, 7).map((c) => String(c).split(":")[0]), Array(7).fill("MessageDroppedError"), JSON.stringify(calls));
  assert.match(calls[0], /got a value that threw when read \(a getter or a Proxy's trap\)/);
  assert.match(calls[3], /the handler threw: a thrown object that cannot be shown/);
  assert.match(calls[5], /returned a Promise/);
  assert.ok(calls[6].length < 1200 && calls[6].endsWith("… (100000 characters)"), "a thrown string is cut");
  assert.equal(calls[7], 16, "a run whose handler took its state's buffer away still answers");
  assert.equal(calls[8], 18);
  assert.deepEqual(refusals, ["MessageFormatError", "MessageFormatError", "MessageFormatError"]);
  assert.equal(after, 42, "the kernel takes sends after the refused ones");
  assert.equal(disposed, true);
  assert.equal(state, 9, "ten runs, all but the one whose buffer went (the batch with a bad message was refused whole)");
});

test("a JavaScript handler that throws on every message, or has no state, holds nothing per message", async () => {
  // wasm-bindgen keeps each JavaScript value Rust holds in one table; a value caught as a throw
  // on the Rust side kept its slot (and the value) for good: 1,157 slots grew to 33,797 over
  // 20,000 throws, and as many over 20,000 messages to a handler without state.
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    const wasm = await init();
    console.error = () => {};
    const Request = defineMessage("HeldRequest", { value: "i32" });
    const Response = defineMessage("HeldResponse", { result: "i32" });
    const runtime = await RingKernelRuntime.create({ backend: "cpu", enableTelemetry: true });
    const throws = await runtime.launch("throws", { input: Request, output: Response, handler: () => { throw new Error("no"); } }, { autoActivate: true });
    const plain = await runtime.launch("plain", { input: Request, output: Response, handler: (m) => ({ result: 2 * m.value }) }, { autoActivate: true });
    const slots = () => wasm.__wbindgen_externrefs.length;
    const before = slots();
    for (let i = 0; i < 5000; i++) await throws.send({ value: i });
    for (let i = 0; i < 5000; i++) { await plain.send({ value: i }); await plain.receive({ timeout: 10000 }); }
    while (runtime.getTelemetry("throws").errors < 5000) await new Promise((r) => setTimeout(r, 10));
    const after = slots();
    await runtime.dispose();
    console.log(JSON.stringify({ before, after }));
  `);
  assertExited(result);
  const { before, after } = findings(result);
  assert.ok(before > 0 && after <= before + 512, `wasm-bindgen's table grew from ${before} to ${after} slots over 10,000 messages`);
});

test("Dawn: a handler as a WGSL author writes it: directives at its top compile, a harness name or a barrier is refused at its line; stages numbering their overrides alike fuse, and a fused module that cannot compile runs unfused, saying so", async () => {
  const result = await runModule(
    `${DAWN_SETUP}
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    await init();
    const Req = defineMessage("Req", { value: "i32" });
    const Res = defineMessage("Res", { result: "i32" });
    const rt = await RingKernelRuntime.create({ enableTelemetry: true });
    const refusal = (e) => ({ name: e.name, line: e.line, column: e.column, message: e.message });
    const launch = (id, wgsl, definition = {}) =>
      rt.launch(id, { input: Req, output: Res, wgsl, ...definition }, { autoActivate: true, queueSize: 64 }).catch(refusal);
    const handler = "fn handle(msg: Req) -> Res { atomicAdd(&state[0], 1u); return Res(msg.value * 2); }";
    // A fn min of the handler's own used to replace the builtin in the drain: it ran on every slot.
    const min = await launch("min", "// counts\\nfn min(a: u32, b: u32) -> u32 { return b; }\\n" + handler, { state: { length: 1 } });
    const barrier = await launch("barrier", "fn handle(msg: Req) -> Res {\\n    workgroupBarrier();\\n    return Res(msg.value);\\n}");
    // Directives open the module wherever the harness goes; \\r alone ends a comment and a line.
    const directed = await launch("directed", "diagnostic(off, derivative_uniformity);\\r// a comment\\r" + handler, { state: { length: 1 } });
    await directed.sendBatch([{ value: 1 }, { value: 2 }, { value: 3 }]);
    const answers = (await directed.receiveBatch({ max: 3, timeout: 10000 })).map((a) => a.result);
    const counted = [...(await rt.readState("directed"))];
    // Runs a two-stage chain of \`stage\` (its Req-to-Req twin first) until it has run fused or
    // a fused module's failure was reported; resolves with its answers and whether it fused.
    const warnings = [];
    const warn = console.warn;
    console.warn = (...args) => warnings.push(args.join(" "));
    const chain = async (name, stage) => {
      const twin = stage.replace("Res(", "Req(").replace("-> Res", "-> Req");
      const first = await rt.launch(name + "-first", { input: Req, output: Req, wgsl: twin }, { autoActivate: true });
      const second = await rt.launch(name + "-second", { input: Req, output: Res, wgsl: stage }, { autoActivate: true });
      await rt.connect(first.id, second.id);
      const chained = [];
      for (let round = 0; round < 200; round++) {
        await first.send({ value: round });
        chained.push((await second.receive({ timeout: 10000 })).result);
        const fused = rt.getTelemetry(second.id).fusedDispatches > 0;
        if (round >= 4 && (fused || warnings.length > 0)) return { chained: chained.slice(0, 5), fused };
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return { chained: chained.slice(0, 5), fused: false };
    };
    // @id(n) numbers an override's pipeline constant, unique within a module: the fused copy drops it.
    const numbered = await chain("numbered", "@id(7) override scale: i32 = 2;\\nfn handle(msg: Req) -> Res { return Res(msg.value * scale); }");
    // Each stage's workgroup memory fits the device (which has its adapter's limits) on its own,
    // not the two together.
    const most = (await navigator.gpu.requestAdapter()).limits.maxComputeWorkgroupStorageSize;
    const words = Math.floor((most / 4) * 0.6);
    const scratch = await chain("scratch", \`var<workgroup> scratch: array<u32, \${words}>;\\nfn handle(msg: Req) -> Res { scratch[0] = 1u; return Res(msg.value * 2); }\`);
    console.warn = warn;
    await rt.dispose();
    console.log(JSON.stringify({ min, barrier, answers, counted, numbered, scratch, warnings }));`,
    DAWN_ENV,
  );
  assertExited(result);
  const { min, barrier, answers, counted, numbered, scratch, warnings } = findings(result);
  assert.equal(min.name, "KernelCompileError");
  assert.deepEqual([min.line, min.column], [2, 4]);
  assert.match(min.message, /may not declare \`min\`/);
  assert.equal(barrier.name, "KernelCompileError");
  assert.deepEqual([barrier.line, barrier.column], [2, 5]);
  assert.match(barrier.message, /\`workgroupBarrier\`/);
  assert.deepEqual(answers, [2, 4, 6]);
  assert.deepEqual(counted, [3], "the handler ran once per message");
  assert.deepEqual(numbered, { chained: [0, 4, 8, 12, 16], fused: true }, warnings.join("\n"));
  assert.deepEqual(scratch, { chained: [0, 4, 8, 12, 16], fused: false });
  const failed = warnings.filter((w) => w.includes("a fused pipeline did not compile; its stages run unfused"));
  assert.equal(failed.length, 1, warnings.join("\n"));
  assert.match(failed[0], /workgroup/i);
});

test("a call that timed out keeps its answer from the next stage: connect is refused until it is answered, then the pipeline carries only what is sent after", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    await init();
    const Rec = defineMessage("Rec", { seq: "u32", tag: "u32" });
    const stage = (bit) => ({ input: Rec, output: Rec, handler: (m) => ({ seq: m.seq, tag: m.tag | bit }) });
    const rt = await RingKernelRuntime.create({ backend: "cpu" });
    const b = await rt.launch("b", stage(2)); // launched, not active
    const c = await rt.launch("c", stage(4), { autoActivate: true });
    const call = await b.call({ seq: 7, tag: 0 }, { timeout: 50 }).then(() => "answered", (e) => e.name);
    const early = await rt.connect("b", "c").then(() => "connected", (e) => e.name + ": " + e.message);
    await b.activate();
    while (rt.getTelemetry("b").answersAbandoned < 1) await new Promise((resolve) => setTimeout(resolve, 5));
    await rt.connect("b", "c");
    await b.send({ seq: 8, tag: 0 });
    // Waits for the first answer at c (seq 8), taking any that came before it too.
    const atC = await c.receiveBatch({ max: 2, timeout: 20000 });
    await rt.dispose();
    console.log(JSON.stringify({ call, early, atC }));`);
  assertExited(result);
  const { call, early, atC } = findings(result);
  assert.equal(call, "TimeoutError");
  assert.match(early, /^TypeError: connect\('b', 'c'\): 'b' has 1 call in flight, waiting or given up/);
  assert.deepEqual(atC, [{ seq: 8, tag: 6 }], "the call's answer went to no receive");
});

test("Dawn: what a runtime holds goes at dispose() (handlers and what they captured, even with handles kept), or, never disposed, its device goes when it is collected", async () => {
  const result = await runNode(
    [
      "--expose-gc",
      "--input-type=module",
      "-e",
      `${DAWN_SETUP}
      import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
      await init();
      const lost = [];
      const requestDevice = GPUAdapter.prototype.requestDevice;
      GPUAdapter.prototype.requestDevice = async function (...args) {
        const device = await requestDevice.apply(this, args);
        const entry = { lost: false };
        device.lost.then(() => (entry.lost = true));
        lost.push(entry);
        return device;
      };
      const collected = { captured: 0, runtimes: 0 };
      const registry = new FinalizationRegistry((what) => collected[what]++);
      const settle = async () => {
        for (let turn = 0; turn < 5; turn++) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          globalThis.gc();
        }
      };
      const Echo = defineMessage("Echo", { value: "i32" });
      // Disposed, their handles kept: the handlers' 4 MB each go with the kernels' queues.
      const kept = [];
      for (let i = 0; i < 4; i++) {
        const rt = await RingKernelRuntime.create({ backend: "cpu" });
        const captured = new Uint8Array(4 << 20);
        registry.register(captured, "captured");
        const handle = await rt.launch("echo", { input: Echo, output: Echo, handler: (m) => ({ value: m.value + captured[0] }) }, { autoActivate: true });
        await handle.call({ value: i }, { timeout: 5000 });
        await rt.dispose();
        kept.push(handle);
      }
      // Never disposed: collected, each releases its device.
      const forgotten = async (i) => {
        const rt = await RingKernelRuntime.create();
        registry.register(rt, "runtimes");
        const doubler = await rt.launch("doubler", null, { autoActivate: true });
        await doubler.call({ value: i }, { timeout: 10000 });
      };
      for (let i = 0; i < 3; i++) await forgotten(i);
      // Collection, finalizers and devices' loss come in later turns: up to 10 s on a busy machine.
      for (let round = 0; round < 40; round++) {
        await settle();
        if (collected.captured === 4 && collected.runtimes === 3 && lost.every((d) => d.lost)) break;
      }
      console.log(JSON.stringify({ ...collected, kept: kept.length, devices: lost.length, devicesLost: lost.filter((d) => d.lost).length }));`,
    ],
    DAWN_ENV,
  );
  assertExited(result);
  const found = findings(result);
  assert.equal(found.captured, 4, `the handlers' captures of disposed runtimes, with handles kept: ${JSON.stringify(found)}`);
  assert.equal(found.runtimes, 3, JSON.stringify(found));
  assert.deepEqual([found.devices, found.devicesLost], [3, 3], `devices of runtimes never disposed: ${JSON.stringify(found)}`);
});

test("a kernel's end and the runtime's drain refuse as such: await using after the kernel ended does nothing, a trySend behind a waiting send and a batch cut off say the runtime drains", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    await init();
    const outcome = (promise) => promise.then(() => "resolved", (e) => e.name + (e.accepted === undefined ? "" : " accepted " + e.accepted));
    const Num = defineMessage("Num", { value: "i32" });
    const echo = { input: Num, output: Num, handler: (m) => m };
    const rt = await RingKernelRuntime.create({ backend: "cpu" });
    const disposing = [];
    let handle = await rt.launch("doubler", null, { autoActivate: true });
    await handle.terminate();
    disposing.push(await outcome(handle[Symbol.asyncDispose]()));
    rt.remove("doubler");
    disposing.push(await outcome(handle[Symbol.asyncDispose]()));
    // Queues of 4 that nobody receives from: a send waits, then trySend is behind it.
    const full = await rt.launch("full", echo, { autoActivate: true, queueSize: 4 });
    await full.sendBatch(Array.from({ length: 8 }, (_, value) => ({ value })));
    const waiting = outcome(full.send({ value: 9 }, { timeout: 10000 }));
    const batch = await rt.launch("batch", echo, { queueSize: 4 });
    const cut = outcome(batch.sendBatch(Array.from({ length: 10 }, (_, value) => ({ value })), { timeout: 10000 }));
    handle = full;
    const disposed = rt.dispose().catch(() => {});
    let trySend;
    try { full.trySend({ value: 10 }); trySend = "queued"; } catch (e) { trySend = e.name; }
    await disposed;
    disposing.push(await outcome(handle[Symbol.asyncDispose]()));
    console.log(JSON.stringify({ disposing, trySend, waiting: await waiting, cut: await cut }));`);
  assertExited(result);
  const { disposing, trySend, waiting, cut } = findings(result);
  assert.deepEqual(disposing, ["resolved", "resolved", "resolved"], "after terminate, remove and the runtime's dispose");
  assert.equal(trySend, "RuntimeDrainingError");
  assert.equal(waiting, "RuntimeDrainingError");
  assert.equal(cut, "RuntimeDrainingError accepted 4");
});

test("batches and queues too large for wasm memory are refused by name, and the kernel goes on; a slow-path batch holds no value per message", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    const wasm = await init();
    const outcome = (run) => Promise.resolve().then(run).then(() => "resolved", (e) => e.name + ": " + e.message);
    const rt = await RingKernelRuntime.create({ backend: "cpu" });
    const doubler = await rt.launch("doubler", null, { autoActivate: true, queueSize: 16 });
    // 1 GiB and 4 bytes, never touched: its pages cost nothing.
    const typed = await outcome(() => doubler.sendBatch(new Int32Array(2 ** 28 + 1), { timeout: 1000 }));
    const Wide = defineMessage("Wide", { values: "array<u32, 65535>" });
    const wide = await rt.launch("wide", { input: Wide, output: Wide, handler: (m) => m }, { queueSize: 8 });
    const one = { values: new Uint32Array(65535) };
    const objects = await outcome(() => wide.sendBatch(new Array(4097).fill(one), { timeout: 1000 }));
    const queue = await outcome(() => rt.launch("huge", { input: Wide, output: Wide, handler: (m) => m }, { queueSize: 4096 }));
    const after = await doubler.call({ value: 21 }, { timeout: 5000 });
    // Objects the codec leaves to the core (instances of a class) are read one by one as they
    // are packed: wasm memory grows by the packed batch, not by a value per message.
    class Value { constructor(value) { this.value = value; } }
    const before = wasm.memory.buffer.byteLength;
    const many = await rt.launch("many", { input: defineMessage("Count", { value: "i32" }), output: "Count", handler: (m) => m }, { queueSize: 1 << 20 });
    const instances = Array.from({ length: 1 << 20 }, (_, i) => new Value(i));
    const accepted = await many.sendBatch(instances, { timeout: 10000 });
    const grew = (wasm.memory.buffer.byteLength - before) / (1 << 20);
    await rt.dispose();
    console.log(JSON.stringify({ typed, objects, queue, after: after.result, accepted, grew }));`);
  assertExited(result);
  const { typed, objects, queue, after, accepted, grew } = findings(result);
  assert.match(typed, /^RangeError: sendBatch got 1073741828 bytes of packed messages, over 1073741824/);
  assert.match(objects, /^RangeError: a batch of 4097 messages of 262140 bytes is over 1073741824 bytes packed/);
  assert.match(queue, /^RangeError: queueSize of 4096 messages of 262140 bytes is over 268435456 bytes.*at most 1024 fit/);
  assert.equal(after, 42, "the kernel goes on");
  assert.equal(accepted, 1 << 20);
  assert.ok(grew < 48, `wasm memory grew ${grew} MB for a million objects read one by one (169 MB when each became a value first)`);
});

test("messages are read as they were when sent, whatever their reads do: a batch of class instances waiting its turn, getters that grow wasm memory, a typed array whose getters lie", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    const wasm = await init();
    const rt = await RingKernelRuntime.create({ backend: "cpu" });
    const spare = await RingKernelRuntime.create({ backend: "cpu" });
    await spare.launch("doubler", null, { queueSize: 1 << 22 });
    // A getter that calls into wasm and grows its memory (a batch of 16 MiB queued elsewhere).
    const growing = (value) => {
      const message = {};
      Object.defineProperty(message, "value", { enumerable: true, get() { spare.sendBatch("doubler", new Int32Array(1 << 22)).catch(() => {}); return value; } });
      return message;
    };
    // Behind a full queue and a waiting send, a batch the codec leaves to the core (instances
    // of a class) is read when sent, not when its turn comes.
    const doubler = await rt.launch("doubler", null, { inputQueueSize: 1, outputQueueSize: 64 });
    await doubler.send({ value: 1 });
    const waiting = doubler.send({ value: 2 }, { timeout: 5000 });
    class Message { constructor(value) { this.value = value; } }
    const instance = new Message(10);
    const batch = doubler.sendBatch([instance], { timeout: 5000 });
    instance.value = 99;
    await doubler.activate();
    const inTurn = [];
    for (let i = 0; i < 3; i++) inTurn.push((await doubler.receive({ timeout: 5000 })).result);
    await Promise.all([waiting, batch]);
    const take = async (n) => {
      const answers = [];
      while (answers.length < n) answers.push(...(await doubler.receiveBatch({ max: n - answers.length, timeout: 5000 })));
      return answers.map((a) => a.result);
    };
    await doubler.sendBatch([growing(5), growing(6)], { timeout: 5000 });
    const grownBatch = await take(2);
    const before = wasm.memory.buffer.byteLength;
    const grownCall = (await doubler.call(growing(7), { timeout: 5000 })).result;
    const grew = wasm.memory.buffer.byteLength > before;
    // A handler's answer whose getter grows wasm memory.
    const Pair = defineMessage("GrowPair", { a: "i32", b: "i32" });
    const pair = await rt.launch("pair", { input: Pair, output: Pair, handler: (m) => {
      const answer = { b: m.b + 1 };
      return Object.defineProperty(answer, "a", { enumerable: true, get() { spare.sendBatch("doubler", new Int32Array(1 << 22)).catch(() => {}); return m.a + 1; } });
    } }, { autoActivate: true });
    const answered = await pair.call({ a: 1, b: 1 }, { timeout: 5000 });
    // A typed array whose own getters claim another range: its real bytes go, and the kernel goes on.
    class Lying extends Int32Array { get byteLength() { return 1 << 20; } get byteOffset() { return 4; } }
    const lying = await doubler.sendBatch(new Lying([3, 4]), { timeout: 1000 });
    const lied = await take(2);
    const after = (await doubler.call({ value: 8 }, { timeout: 5000 })).result;
    await rt.dispose();
    await spare.dispose();
    console.log(JSON.stringify({ inTurn, grownBatch, grownCall, grew, answered, lying, lied, after }));`);
  assertExited(result);
  const found = findings(result);
  assert.deepEqual(found.inTurn, [2, 4, 20], "the instance as it was when sent");
  assert.deepEqual(found.grownBatch, [10, 12]);
  assert.equal(found.grownCall, 14);
  assert.equal(found.grew, true, "the getters did grow wasm memory");
  assert.deepEqual(found.answered, { a: 2, b: 2 });
  assert.deepEqual([found.lying, found.lied, found.after], [2, [6, 8], 16]);
});

test("a shutdown while a drain runs out of time leaves the drain its count: every message accepted is processed or counted unprocessed", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    await init();
    const Num = defineMessage("SlowNum", { value: "i32" });
    const rt = await RingKernelRuntime.create({ backend: "cpu" });
    const slow = (m) => { const start = performance.now(); while (performance.now() - start < 2); return m; };
    const kernel = await rt.launch("slow", { input: Num, output: Num, handler: slow }, { queueSize: 1000, maxBatch: 1 });
    const sent = await kernel.sendBatch(Array.from({ length: 200 }, (_, value) => ({ value })), { timeout: 2000 });
    await kernel.activate();
    const drained = rt.drain({ timeout: 300 }).then(() => null, (e) => ({ name: e.name, unprocessed: e.unprocessed }));
    await rt.completeShutdown();
    const drain = await drained;
    const telemetry = rt.getTelemetry("slow");
    console.log(JSON.stringify({ sent, drain, processed: telemetry.messagesProcessed, unprocessed: telemetry.unprocessedAtTermination }));`);
  assertExited(result);
  const { sent, drain, processed, unprocessed } = findings(result);
  assert.equal(drain?.name, "TimeoutError", JSON.stringify(drain));
  assert.ok(unprocessed > 0 && drain.unprocessed === unprocessed, JSON.stringify({ drain, unprocessed }));
  assert.equal(processed + unprocessed, sent);
});

test("the README's Node example runs as written on Dawn", async () => {
  const readme = await readFile(join(root, "..", "README.md"), "utf8");
  const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
  const example = blocks.find((block) => block.includes('from "webgpu"'));
  assert.ok(example, "the README has a ```js block that imports webgpu");
  const result = await runModule(example, DAWN_ENV);
  assertExited(result);
  assert.equal(result.stdout, "{ result: 42 }\n");
});

for (const [backend, env] of [["webgpu", DAWN_ENV], ["cpu", {}]]) {
  const label = backend === "webgpu" ? "Dawn" : "the cpu backend";

  test(`1000 messages through sendBatch and receiveBatch on ${label}`, async () => {
    const result = await runModule(`${backend === "webgpu" ? DAWN_SETUP : ""}
      import init, { RingKernelRuntime } from "ringkernel-web";
      await init();
      const runtime = await RingKernelRuntime.create({ backend: ${JSON.stringify(backend)}, enableTelemetry: true });
      const doubler = await runtime.launch("doubler", null, { autoActivate: true, queueSize: 1000 });
      const sent = await doubler.sendBatch(Array.from({ length: 1000 }, (_, i) => ({ value: i })), { timeout: 30000 });
      const answers = [];
      while (answers.length < 1000) {
        answers.push(...(await doubler.receiveBatch({ max: 1000 - answers.length, timeout: 30000 })));
      }
      const wrong = answers.flatMap((a, i) => (a.result === 2 * i ? [] : [{ i, got: a.result }])).slice(0, 5);
      const telemetry = runtime.getTelemetry("doubler");
      const found = { backend: runtime.getSummary().adapter.backend, sent, received: answers.length, wrong,
        processed: telemetry.messagesProcessed, left: doubler.tryReceive() };
      await runtime.dispose();
      console.log(JSON.stringify(found));
    `, env);
    assertExited(result);
    assert.deepEqual(findings(result), {
      backend: backend === "webgpu" ? "browserwebgpu" : "cpu",
      sent: 1000,
      received: 1000,
      wrong: [],
      processed: 1000,
      left: null,
    });
  });

  test(`a terminate out of time on ${label} answers what already ran and counts only the rest`, async () => {
    // Found by the model fuzz run on Dawn: messages on the device when the timeout hit were
    // counted unprocessed and their answers dropped, while the kernel's state showed them run.
    const result = await runModule(`${backend === "webgpu" ? DAWN_SETUP : ""}
      import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
      await init();
      const Seq = defineMessage("Seq", { seq: "u32" });
      const runtime = await RingKernelRuntime.create({ backend: ${JSON.stringify(backend)} });
      const rounds = [];
      for (let round = 0; round < 10; round++) {
        const id = "cut" + round;
        const k = await runtime.launch(id, {
          input: Seq, output: Seq, state: { length: 8 },
          wgsl: "fn handle(m: Seq) -> Seq { atomicAdd(&state[m.seq], 1u); return m; }",
          handler: (m, state) => { state[m.seq]++; return { seq: m.seq }; },
        }, { queueSize: 8, autoActivate: true });
        await k.sendBatch([{ seq: 1 }, { seq: 2 }, { seq: 3 }, { seq: 4 }]);
        const unprocessed = await k.terminate({ timeout: 0 }).then(() => 0, (e) => e.unprocessed);
        const answers = [];
        // Once its answers are taken, a terminated kernel's tryReceive is a KernelStateError.
        const next = () => { try { return k.tryReceive(); } catch (e) { if (e.name !== "KernelStateError") throw e; return null; } };
        for (let a; (a = next()) !== null; ) answers.push(a.seq);
        const ran = Array.from(await runtime.readState(id)).slice(1, 5).filter((n) => n > 0).length;
        rounds.push({ once: answers.length + unprocessed === 4, ranWasAnswered: ran === answers.length,
          inOrder: answers.every((seq, i) => seq === i + 1), processed: k.metrics().messagesProcessed === answers.length });
      }
      await runtime.dispose();
      console.log(JSON.stringify(rounds.filter((r) => !(r.once && r.ranWasAnswered && r.inOrder && r.processed))));
    `, env);
    assertExited(result);
    assert.deepEqual(findings(result), []);
  });

  test(`receives waiting at once on ${label} are answered in the order they were made`, async () => {
    // Found by an audit: receive A waits, a send (not awaited) wakes it with no answer yet, and
    // receive B, made after, took the answer meant for A.
    const result = await runModule(`${backend === "webgpu" ? DAWN_SETUP : ""}
      import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
      await init();
      const Seq = defineMessage("Seq", { seq: "u32" });
      const runtime = await RingKernelRuntime.create({ backend: ${JSON.stringify(backend)} });
      const k = await runtime.launch("k", { input: Seq, output: Seq, handler: (m) => m,
        wgsl: "fn handle(m: Seq) -> Seq { return m; }" }, { queueSize: 16, autoActivate: true });
      const got = [];
      const take = (name, receive) => receive.then((m) => got.push([name, m.seq]), (e) => got.push([name, e.name]));
      const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
      const a = take("A", k.receive());
      k.send({ seq: 1 });
      const b = take("B", k.receive());
      await sleep(50);
      await k.send({ seq: 2 });
      await Promise.all([a, b]);
      // One in the middle of the line gives up: the next one takes its place.
      const abort = new AbortController();
      const waiting = [take("C", k.receive()), take("D", k.receive({ signal: abort.signal })), take("E", k.receive())];
      await sleep(20);
      abort.abort();
      await k.sendBatch([{ seq: 3 }, { seq: 4 }]);
      await Promise.all(waiting);
      await runtime.dispose();
      console.log(JSON.stringify(got));
    `, env);
    assertExited(result);
    assert.deepEqual(findings(result), [["A", 1], ["B", 2], ["D", "AbortError"], ["C", 3], ["E", 4]]);
  });

  test(`receiveBatch({ min }) on ${label} waits for that many answers or its timeout, holds its turn, and takes what is there once none more will come`, async () => {
    const result = await runModule(`${backend === "webgpu" ? DAWN_SETUP : ""}
      import init, { RingKernelRuntime } from "ringkernel-web";
      await init();
      const runtime = await RingKernelRuntime.create({ backend: ${JSON.stringify(backend)} });
      const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
      const doubler = await runtime.launch("doubler", null, { queueSize: 16, outputQueueSize: 8, autoActivate: true });
      const depth = () => doubler.status().outputQueueDepth;
      const until = async (n) => { while (depth() !== n) await sleep(2); };
      const results = (answers) => answers.map((a) => a.result);
      const found = {};
      await doubler.sendBatch([{ value: 1 }, { value: 2 }]);
      await until(2);
      const batch = doubler.receiveBatch({ min: 4, max: 4, timeout: 20000 });
      const behind = runtime.receive("doubler", { timeout: 20000 });
      await sleep(50);
      found.whileWaiting = { depth: depth(), tryReceive: doubler.tryReceive() };
      await doubler.sendBatch([{ value: 3 }, { value: 4 }, { value: 5 }]);
      found.batch = results(await batch);
      found.behind = (await behind).result;
      await until(0);
      await doubler.sendBatch([{ value: 6 }, { value: 7 }]);
      await until(2);
      const started = performance.now();
      found.atTimeout = results(await runtime.receiveBatch("doubler", { min: 4, timeout: 100 }));
      found.waited = performance.now() - started >= 95;
      found.none = await doubler.receiveBatch({ min: 4, timeout: 10 }).catch((e) => e.name);
      await doubler.sendBatch([{ value: 8 }]);
      await until(1);
      const refusal = (options) => doubler.receiveBatch(options).then(() => "taken", (e) => e.name + ": " + e.message);
      found.refused = [await refusal({ min: 9 }), await refusal({ min: 3, max: 2 }), await refusal({ min: 0 })];
      const abort = new AbortController();
      const aborted = doubler.receiveBatch({ min: 2, signal: abort.signal }).catch((e) => e.name);
      await sleep(10);
      abort.abort();
      found.aborted = await aborted;
      found.left = depth();
      // Disposed while a batch waits for more: the drain ends its kernel, and the batch takes what is there.
      const last = doubler.receiveBatch({ min: 8, packed: true });
      await sleep(10);
      await runtime.dispose();
      found.atDispose = Array.from(new Int32Array((await last).slice().buffer));
      console.log(JSON.stringify(found));
    `, env);
    assertExited(result);
    assert.deepEqual(findings(result), {
      whileWaiting: { depth: 2, tryReceive: null },
      batch: [2, 4, 6, 8],
      behind: 10,
      atTimeout: [12, 14],
      waited: true,
      none: "TimeoutError",
      refused: [
        "RangeError: a receive batch's min of 9 could never be met: kernel 'doubler' holds at most 8 answers in its output queue (its outputQueueSize)",
        "RangeError: kernel 'doubler': a receive batch's min must be at most its max of 2, got 3",
        "RangeError: receiveBatch options: min must be a whole number from 1 to 4294967295, got 0",
      ],
      aborted: "AbortError",
      left: 1,
      atDispose: [16],
    });
  });

  test(`a drain out of time on ${label} counts every kernel's unprocessed messages, not only the first's`, async () => {
    // Each kernel takes one message a dispatch, so a drain of no time leaves most of its 2048;
    // "idle" has none and terminates in time.
    const result = await runModule(`${backend === "webgpu" ? DAWN_SETUP : ""}
      import init, { RingKernelRuntime, TimeoutError, defineMessage } from "ringkernel-web";
      await init();
      const Value = defineMessage("Value", { value: "i32" });
      const doubler = { input: Value, output: Value, handler: (m) => ({ value: 2 * m.value }),
        wgsl: "fn handle(m: Value) -> Value { return Value(2 * m.value); }" };
      const runtime = await RingKernelRuntime.create({ backend: ${JSON.stringify(backend)} });
      const kernels = {};
      for (const id of ["a", "b", "idle"]) kernels[id] = await runtime.launch(id, doubler, { queueSize: 2048, maxBatch: 1 });
      const values = Array.from({ length: 2048 }, (_, i) => ({ value: i }));
      for (const id of ["a", "b"]) await kernels[id].sendBatch(values);
      const error = await runtime.drain({ timeout: 0 }).then(() => null, (e) => e);
      const each = error?.errors?.map((e) => [e.name, e.kernelId, e.unprocessed]) ?? [];
      const answered = {};
      for (const [, id, left] of each) {
        const answers = [];
        while (answers.length < 2048 - left) answers.push(...(await kernels[id].receiveBatch({ max: 2048, timeout: 30000 })));
        answered[id] = answers.every((a, i) => a.value === 2 * i) && answers.length + left === 2048;
      }
      const report = await runtime.dispose();
      const sum = each.reduce((total, [, , left]) => total + left, 0);
      const expected = "2 kernels failed to terminate (" + sum + " messages left unprocessed in all): terminate on kernel 'a' " +
        "timed out after 0 ms (" + each[0]?.[2] + " messages left unprocessed); terminate on kernel 'b' timed out after 0 ms (" +
        each[1]?.[2] + " messages left unprocessed)";
      console.log(JSON.stringify({ timeout: error instanceof TimeoutError, kernelId: error?.kernelId,
        names: each.map(([name, id]) => [name, id]), eachLeftSome: each.every(([, , left]) => left > 1),
        summed: error?.unprocessed === sum, message: error?.message === expected || error?.message, answered,
        reported: report.messagesUnprocessed === sum }));
    `, env);
    assertExited(result);
    assert.deepEqual(findings(result), {
      timeout: true,
      kernelId: "a",
      names: [["TimeoutError", "a"], ["TimeoutError", "b"]],
      eachLeftSome: true,
      summed: true,
      message: true,
      answered: { a: true, b: true },
      reported: true,
    });
  });

  // The seeds' examples as written (lowered for Node 20, which cannot parse `await using`; see
  // run-example.mjs), each in its own process; what they print is checked line by line.
  for (const [name, expected] of Object.entries(EXAMPLES)) {
    if (backend === "cpu" && GPU_ONLY.has(name)) continue;
    test(`seed example ${name}.js runs in Node on ${label}`, async () => {
      const result = await runNode(["run-example.mjs", name], { ...env, RINGKERNEL_BACKEND: backend });
      assertExited(result);
      assert.deepEqual(result.stdout.trimEnd().split("\n"), expected, result.stderr);
      const adapter = JSON.parse(result.stderr.match(/^\[run-example\] adapter: (.*)$/m)?.[1] ?? "null");
      assert.equal(adapter?.backend, backend === "webgpu" ? "browserwebgpu" : "cpu", result.stderr);
    });
  }
}

test("an f32 field takes any number as a Float32Array stores it, so a JavaScript handler answers NaN and Infinity as WGSL does", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const F = defineMessage("NodeF32", { x: "f32", v: "vec2<f32>" });
    const root = await runtime.launch("root", { input: F, output: F, handler: (m) => ({ x: Math.sqrt(m.x), v: [m.v[0] * 1e38, -m.v[1] * 1e38] }) }, { autoActivate: true });
    const show = (a) => [String(a.x), ...a.v.map(String)];
    const answered = show(await root.call({ x: -1, v: [10, 10] }));
    // An answer received goes back in as it came, and a batch's NaN is answered too.
    await root.sendBatch([{ x: NaN, v: [1e39, 0] }, { x: 4, v: [0, 0] }]);
    const batch = (await root.receiveBatch({ max: 2, timeout: 5000 })).map(show);
    const errors = root.metrics().errors;
    await runtime.dispose();
    console.log(JSON.stringify({ answered, batch, errors }));
  `);
  assertExited(result);
  assert.deepEqual(findings(result), {
    answered: ["NaN", "Infinity", "-Infinity"],
    batch: [["NaN", "Infinity", "0"], ["2", "0", "0"]],
    errors: 0,
  });
});

test("a call is answered past an output queue full of answers nobody receives; behind such answers it is reported after a second", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const doubler = await runtime.launch("doubler", null, { autoActivate: true, queueSize: 2 });
    await doubler.sendBatch([{ value: 1 }, { value: 2 }]);
    while (doubler.status().outputQueueDepth < 2) await new Promise((r) => setTimeout(r, 5));
    // Its answer goes to the caller, not to the full output queue.
    const past = (await doubler.call({ value: 21 }, { timeout: 5000 })).result;
    // Behind a message whose answer has no room, a call waits, and says why after a second.
    await doubler.send({ value: 3 });
    const started = Date.now();
    const behind = doubler.call({ value: 4 });
    await new Promise((r) => setTimeout(r, 1300));
    const answers = (await doubler.receiveBatch({ max: 3, timeout: 5000 })).map((a) => a.result);
    while (answers.length < 3) answers.push((await doubler.receive({ timeout: 5000 })).result);
    const late = (await behind).result;
    const stalledSends = doubler.metrics().stalledSends;
    await runtime.dispose();
    console.log(JSON.stringify({ past, answers, late, waited: Date.now() - started > 1000, stalledSends }));
  `);
  assertExited(result);
  assert.match(result.stderr, /a call to kernel 'doubler' has waited 1 s for its answer: its input \(2 messages\) waits because its output queue is full/);
  assert.deepEqual(findings(result), { past: 42, answers: [2, 4, 6], late: 8, waited: true, stalledSends: 1 });
});

test("lifecycle: a terminate joins one under way, terminateAll and dispose finish terminating kernels, receives on a connected stage are refused", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    await init();
    const settled = (p) => p.then((v) => (v === undefined ? "ok" : v), (e) => e.name + ": " + e.message);
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const Count = defineMessage("NodeCount", { n: "i32" });
    const slow = { input: Count, output: Count, handler: (m) => { const t = Date.now(); while (Date.now() - t < 1); return m; } };
    const a = await runtime.launch("a", slow, { autoActivate: true, maxBatch: 4 });
    await a.sendBatch(Array.from({ length: 200 }, (_, n) => ({ n })));
    const first = settled(a.terminate({ timeout: 60000 }));
    await Promise.resolve();
    const second = settled(runtime.terminate("a", { timeout: 60000 }));
    const report = await runtime.dispose();
    const summary = { first: await first, second: await second, state: runtime.getState("a"),
      processed: report.messagesProcessed, unprocessed: report.messagesUnprocessed, terminated: report.kernelsTerminated };

    const rt = await RingKernelRuntime.create({ backend: "cpu" });
    const Value = defineMessage("NodeValue", { value: "i32" });
    const stage = { input: Value, output: Value, handler: (m) => m };
    const s1 = await rt.launch("s1", stage, { autoActivate: true });
    const waiting = settled(rt.receive("s1"));
    await rt.launch("s2", stage, { autoActivate: true });
    await rt.connect("s1", "s2");
    const connected = { waiting: await waiting, later: await settled(s1.receive({ timeout: 100 })) };
    // A call's timeout is the one given; an envelope's source is an id.
    await rt.disconnect("s1");
    await rt.deactivate("s2");
    const timedOut = await settled(rt.call("s2", { value: 1 }, { timeout: 100 }));
    const source = await settled(rt.sendEnvelope("s1", { value: 1 }, { source: "" }));
    await rt.reactivate("s2");
    // Answers nobody received go with a removed kernel: remove says how many.
    await s1.sendBatch([{ value: 1 }, { value: 2 }]);
    await rt.terminate("s1");
    const discarded = rt.remove("s1");
    await rt.dispose();
    console.log(JSON.stringify({ ...summary, connected, timedOut, source, discarded }));
  `);
  assertExited(result);
  const { timedOut, ...found } = findings(result);
  assert.match(timedOut, /^TimeoutError: call on kernel 's2' timed out after 100 ms/);
  assert.deepEqual(found, {
    first: "ok", second: "ok", state: "terminated", processed: 200, unprocessed: 0, terminated: 1,
    connected: {
      waiting: "TypeError: kernel 's1' is connected to 's2', so its answers go there: send to it and receive from the pipeline's last kernel, or disconnect it first",
      later: "TypeError: kernel 's1' is connected to 's2', so its answers go there: send to it and receive from the pipeline's last kernel, or disconnect it first",
    },
    source: "RangeError: an envelope's source must be 1 to 128 bytes long (UTF-8), got 0",
    discarded: 2,
  });
});

test("Dawn: automatic recovery that gives up says so once, a terminate waiting on its kernel then ends with its messages counted, and deviceEvents() tells of the loss, each failed attempt and the give-up", async () => {
  const result = await runModule(`${DAWN_SETUP}
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    // The GPU gone for good after the first device (removed, or blocklisted after a crash).
    const gpu = navigator.gpu;
    let gone = false;
    globalThis.navigator = { gpu: {
      requestAdapter: (options) => (gone ? Promise.resolve(null) : gpu.requestAdapter(options)),
      getPreferredCanvasFormat: () => gpu.getPreferredCanvasFormat(),
      get wgslLanguageFeatures() { return gpu.wgslLanguageFeatures; },
    } };
    const warnings = [];
    const warn = console.warn;
    console.warn = (...args) => { warnings.push(args.join(" ")); warn(...args); };
    const runtime = await RingKernelRuntime.create({ autoRecover: true });
    const doubler = await runtime.launch("doubler", null, { autoActivate: true });
    await doubler.sendBatch(Array.from({ length: 20 }, (_, value) => ({ value })), { timeout: 10000 });
    // Every event from here on, until the runtime is disposed (which ends the loop).
    const events = [];
    const heard = (async () => {
      for await (const event of runtime.deviceEvents()) {
        events.push([event.seq, event.kind, event.device, event.kernels.join(), event.missed, typeof event.reason, event.timestampMs > 0]);
      }
    })();
    gone = true;
    runtime.destroyDevice();
    // With no timeout: it waits for the automatic attempts (0, 0.1, 1 and 5 s), and no longer.
    const started = Date.now();
    const terminated = await runtime.terminate("doubler").then(() => "terminated", (e) => ({ name: e.name, unprocessed: e.unprocessed }));
    const waitedMs = Date.now() - started;
    const gaveUp = warnings.filter((w) => w.includes("automatic recovery of device 0 gave up"));
    const health = await runtime.health();
    await runtime.dispose().catch(() => {});
    await heard;
    console.log(JSON.stringify({ terminated, waited: waitedMs < 30000, gaveUp: gaveUp.length, health: [health.status, health.reason],
      state: runtime.getState("doubler"), events }));
  `, DAWN_ENV);
  assertExited(result);
  const found = findings(result);
  assert.deepEqual(found.terminated, { name: "DeviceLostError", unprocessed: 20 });
  assert.equal(found.waited, true);
  assert.equal(found.gaveUp, 1, "the give-up is said once");
  assert.equal(found.health[0], "unhealthy", "health no longer says it is recovering");
  assert.match(found.health[1], /the device is lost \(.*\) and the last recovery failed: /);
  assert.equal(found.state, "terminated");
  // The loss, each of the four automatic attempts failing (no adapter), the give-up: each heard
  // once, in order, naming the kernel that waits.
  const attempt = (seq) => [seq, "recoveryFailed", 0, "doubler", 0, "string", true];
  assert.deepEqual(found.events, [
    [1, "lost", 0, "doubler", 0, "string", true], attempt(2), attempt(3), attempt(4), attempt(5),
    [6, "autoRecoveryGaveUp", 0, "doubler", 0, "string", true],
  ]);
});

test("an async memory alert callback that rejects is shown in the console and ends no process", async () => {
  const result = await runNode(["--unhandled-rejections=strict", "--input-type=module", "-e", `
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    let called = 0;
    runtime.onMemoryAlert(0.5, async () => { called++; await null; throw new Error("alert handler failed"); });
    runtime.triggerMemoryAlert("high");
    await new Promise((resolve) => setTimeout(resolve, 50));
    await runtime.dispose();
    console.log(JSON.stringify({ called }));
  `]);
  assertExited(result);
  assert.deepEqual(findings(result), { called: 1 });
  assert.match(result.stderr, /ringkernel-web: a memory alert callback rejected:[\s\S]*alert handler failed/);
});

test("a managed kernel's end after the runtime was disposed of does nothing, as a handle's does", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, managedKernel } from "ringkernel-web";
    await init();
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const managed = await managedKernel(runtime, "doubler");
    const handle = await runtime.launch("echo", null, { autoActivate: true });
    await runtime.dispose();
    const ended = async (object) => object[Symbol.asyncDispose]().then(() => "ok", (e) => e.name);
    console.log(JSON.stringify({ managed: await ended(managed), terminate: await managed.terminate().then(() => "ok", (e) => e.name),
      handle: await ended(handle) }));
  `);
  assertExited(result);
  assert.deepEqual(findings(result), { managed: "ok", terminate: "ok", handle: "ok" });
});

test("options and definitions whose keys cannot be listed (a revoked Proxy) are refused as TypeErrors; nothing hangs or throws into Node", async () => {
  const result = await runNode(["--unhandled-rejections=strict", "--input-type=module", "-e", `
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    await init();
    const revoked = () => { const { proxy, revoke } = Proxy.revocable({}, {}); revoke(); return proxy; };
    const outcome = async (f) => { try { await f(); return "accepted"; } catch (e) { return e.name + ": " + e.message.split(":")[0]; } };
    const uncaught = [];
    process.on("uncaughtException", (e) => uncaught.push(String(e)));
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const doubler = await runtime.launch("doubler", null, { autoActivate: true });
    const refused = {
      handleTerminate: await outcome(() => doubler.terminate(revoked())),
      terminate: await outcome(() => runtime.terminate("doubler", revoked())),
      receive: await outcome(() => runtime.receive("doubler", revoked())),
      launch: await outcome(() => runtime.launch("late", revoked())),
      launchOptions: await outcome(() => runtime.launch("echo", null, revoked())),
      defineMessage: await outcome(() => defineMessage("Revoked", revoked())),
      create: await outcome(() => RingKernelRuntime.create({ ...{ preset: "development" }, get debug() { throw new Error("no"); } })),
    };
    const answer = await doubler.call({ value: 21 }, { timeout: 5000 });
    const terminated = await doubler.terminate({ timeout: 5000 }).then(() => "terminated");
    await runtime.dispose();
    console.log(JSON.stringify({ refused, answer, terminated, uncaught }));
  `]);
  assertExited(result);
  const found = findings(result);
  assert.deepEqual(found.uncaught, []);
  assert.deepEqual(found.answer, { result: 42 });
  assert.equal(found.terminated, "terminated");
  for (const [operation, refusal] of Object.entries(found.refused)) {
    assert.match(refusal, /^(TypeError|Error): /, `${operation}: ${refusal}`);
  }
  assert.deepEqual(found.refused, {
    handleTerminate: "TypeError: terminate options could not be read",
    terminate: "TypeError: terminate options could not be read",
    receive: "TypeError: receive options could not be read",
    launch: "TypeError: Cannot perform 'ownKeys' on a proxy that has been revoked",
    launchOptions: "TypeError: Cannot perform 'get' on a proxy that has been revoked",
    defineMessage: "TypeError: Cannot perform 'ownKeys' on a proxy that has been revoked",
    create: "Error: no",
  });
});

test("an option that 0 cannot be names the range it takes from 1, and an unknown create() option is named beside every known one, preset included", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const refusal = (promise) => promise.then(() => "accepted", (e) => e.name + ": " + e.message);
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const launch = (options) => refusal(runtime.launch("doubler", null, options));
    const refused = {
      maxBatch: await launch({ maxBatch: 1.5 }),
      maxWorkgroups: await launch({ maxWorkgroups: -1 }),
      workgroupSize: await launch({ workgroupSize: 0.5 }),
      maxMessagesPerTick: await refusal(RingKernelRuntime.create({ backend: "cpu", maxMessagesPerTick: 1.5 })),
      zeroBatch: await launch({ maxBatch: 0 }),
      zeroGrid: await launch({ maxWorkgroups: 0 }),
      zeroPerTick: await refusal(RingKernelRuntime.create({ backend: "cpu", maxMessagesPerTick: 0 })),
      unknown: await refusal(RingKernelRuntime.create({ backend: "cpu", presets: "production" })),
    };
    const launched = await runtime.launch("doubler", null, { maxBatch: 1, maxWorkgroups: 1, workgroupSize: 1, autoActivate: true });
    const answer = await launched.call({ value: 21 }, { timeout: 5000 });
    await runtime.dispose();
    console.log(JSON.stringify({ refused, answer }));
  `);
  assertExited(result);
  const found = findings(result);
  const from1 = (what, option, value) => `RangeError: ${what}: ${option} must be a whole number from 1 to 4294967295, got ${value}`;
  assert.deepEqual(found.refused, {
    // maxBatch's top is the kernel's input queue (the runtime's default, 4096, here).
    maxBatch: "RangeError: launch options: maxBatch must be a whole number from 1 to 4096 (the input queue size), got 1.5",
    maxWorkgroups: from1("launch options", "maxWorkgroups", "-1"),
    workgroupSize: from1("launch options", "workgroupSize", "0.5"),
    maxMessagesPerTick: from1("RingKernelRuntime.create options", "maxMessagesPerTick", "1.5"),
    zeroBatch: "RangeError: launch options: maxBatch must be a whole number from 1 to 4096 (the input queue size), got 0",
    zeroGrid: from1("launch options", "maxWorkgroups", "0"),
    zeroPerTick: from1("RingKernelRuntime.create options", "maxMessagesPerTick", "0"),
    unknown: "TypeError: RingKernelRuntime.create options: unknown option 'presets' (expected one of enableTelemetry, " +
      "defaultQueueSize, backend, autoRecover, deviceIndex, devices, loadBalancing, debug, maxMessagesPerTick, tracing, " +
      "health, circuitBreaker, watchdog, memoryBudget, degradation, preset)",
  });
  assert.deepEqual(found.answer, { result: 42 }, "1 is taken");
});

test("kernels whose host queues together would outgrow wasm memory are refused at launch by name, in every runtime sharing it, and removing one or disposing its runtime makes room", async () => {
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    await init();
    const Big = defineMessage("NodeBig", { words: "array<u32, 1024>" });
    const big = { input: Big, output: Big, handler: (m) => m };
    const runtime = await RingKernelRuntime.create({ backend: "cpu" });
    const other = await RingKernelRuntime.create({ backend: "cpu" });
    const refusal = (p) => p.then(() => "launched", (e) => e.name + ": " + e.message);
    // 65,536 messages of 4 KiB: 256 MiB a queue, 512 MiB a kernel, and 1 GiB the most in all,
    // every runtime's in this wasm memory together.
    const options = { queueSize: 65536 };
    const first = await refusal(runtime.launch("a", big, options));
    const second = await refusal(other.launch("b", big, options));
    const third = await refusal(runtime.launch("c", big, { queueSize: 1 }));
    const besideIt = await refusal(other.launch("c", big, { queueSize: 1 }));
    await other.terminate("b");
    other.remove("b");
    const afterRemove = await refusal(runtime.launch("c", big, { ...options, autoActivate: true }));
    const answer = await runtime.call("c", { words: Array(1024).fill(7) }, { timeout: 5000 });
    const beforeDispose = await refusal(other.launch("d", big, { queueSize: 1 }));
    await runtime.dispose();
    const afterDispose = await refusal(other.launch("d", big, options));
    await other.dispose();
    console.log(JSON.stringify({ first, second, third, besideIt, afterRemove, answered: answer.words[1023], beforeDispose, afterDispose }));
  `);
  assertExited(result);
  const found = findings(result);
  assert.deepEqual(
    [found.first, found.second, found.afterRemove, found.answered, found.afterDispose],
    ["launched", "launched", "launched", 7, "launched"],
  );
  const over = (id, here) => new RegExp(`^RangeError: kernel '${id}': its host queues \\(8192 bytes when full\\) and those of the kernels launched already \\(1073741824 bytes, ${here} of them this runtime's\\) are over 1073741824 bytes`);
  assert.match(found.third, over("c", 536870912));
  assert.match(found.besideIt, over("c", 536870912));
  assert.match(found.beforeDispose, over("d", 0));
});

test("sends waiting on many kernels keep each kernel's order, and a send to another kernel goes at once", async () => {
  // Each kernel's line is looked up by its id (it was a scan of every kernel with a send
  // waiting): what a line does must not change with how many there are.
  const result = await runNode(["--input-type=module", "-e", `
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    await init();
    const Req = defineMessage("Req", { value: "i32" }), Res = defineMessage("Res", { result: "i32" });
    const DEF = { input: Req, output: Res, handler: (m) => ({ result: m.value * 2 }) };
    const rt = await RingKernelRuntime.create({ backend: "cpu" });
    const main = await rt.launch("main", DEF, { autoActivate: true });
    const tried = (f) => { try { f(); return "sent"; } catch (e) { return e.name; } };
    const K = 300, stalled = [], waiting = [], behind = [];
    for (let i = 0; i < K; i++) {
      const h = await rt.launch("s" + i, DEF, { queueSize: 1 });
      h.trySend({ value: 3 * i });
      waiting.push(h.send({ value: 3 * i + 1 }), h.send({ value: 3 * i + 2 }));
      behind.push(tried(() => h.trySend({ value: -1 })));
      stalled.push(h);
    }
    const elsewhere = tried(() => main.trySend({ value: 21 }));
    const answer = await main.receive({ timeout: 5000 });
    const orders = [];
    for (const [i, h] of stalled.entries()) {
      await h.activate();
      const got = [];
      while (got.length < 3) got.push(...(await h.receiveBatch({ timeout: 5000 })).map((a) => a.result / 2 - 3 * i));
      orders.push(got.join());
    }
    await Promise.all(waiting);
    const clear = tried(() => stalled[0].trySend({ value: 0 }));
    await rt.dispose();
    console.log(JSON.stringify({ behind: [...new Set(behind)], elsewhere, answer, orders: [...new Set(orders)], clear }));
  `]);
  assertExited(result);
  assert.deepEqual(findings(result), {
    behind: ["QueueFullError"], elsewhere: "sent", answer: { result: 42 }, orders: ["0,1,2"], clear: "sent",
  });
});

test("operations sharing one AbortSignal add one listener to it, removed when the last of them ends; an abort ends them all", async () => {
  // A listener per operation made N operations on one signal quadratic (an EventTarget's add
  // and remove are linear in its listeners).
  const result = await runModule(`
    import init, { RingKernelRuntime } from "ringkernel-web";
    await init();
    const rt = await RingKernelRuntime.create({ backend: "cpu" });
    const doubler = await rt.launch("doubler", null, { autoActivate: true });
    const counted = (signal) => {
      const counts = { added: 0, removed: 0 };
      const add = signal.addEventListener.bind(signal), remove = signal.removeEventListener.bind(signal);
      signal.addEventListener = (...args) => { counts.added++; return add(...args); };
      signal.removeEventListener = (...args) => { counts.removed++; return remove(...args); };
      return counts;
    };
    const N = 200;
    // Rounds of receives that their answers end: one listener a round, gone with its last receive.
    const kept = new AbortController().signal, keptCounts = counted(kept), answered = [];
    for (let round = 0; round < 3; round++) {
      const receives = Array.from({ length: N }, () => doubler.receive({ signal: kept, timeout: 20000 }));
      await doubler.sendBatch(Array.from({ length: N }, (_, i) => ({ value: i })));
      answered.push((await Promise.all(receives)).length);
    }
    // Receives that an abort ends: each rejects with the signal's reason.
    const controller = new AbortController(), counts = counted(controller.signal), reason = new Error("stop");
    const waiting = Array.from({ length: N }, () => doubler.receive({ signal: controller.signal }).then(() => "answered", (e) => e === reason ? "aborted" : e.name));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const whileWaiting = { ...counts };
    controller.abort(reason);
    const outcomes = [...new Set(await Promise.all(waiting))];
    const answer = await doubler.call({ value: 21 }, { signal: controller.signal }).catch((e) => e === reason ? "aborted" : e.name);
    await rt.dispose();
    console.log(JSON.stringify({ answered, kept: keptCounts, whileWaiting, outcomes, after: counts, answer }));
  `);
  assertExited(result);
  assert.deepEqual(findings(result), {
    answered: [200, 200, 200], kept: { added: 3, removed: 3 }, whileWaiting: { added: 1, removed: 0 },
    outcomes: ["aborted"], after: { added: 1, removed: 1 }, answer: "aborted",
  });
});

test("a launched kernel that has answered nothing holds no latency histograms in wasm memory", async () => {
  // Its two HDR histograms (about 27 KB each, its latencies and the degradation manager's
  // window) are made with the first latency recorded: thousands of idle kernels cost ~4 KB each.
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    const wasm = await init();
    const Req = defineMessage("Req", { value: "i32" }), Res = defineMessage("Res", { result: "i32" });
    const DEF = { input: Req, output: Res, handler: (m) => ({ result: m.value * 2 }) };
    const rt = await RingKernelRuntime.create({ backend: "cpu", enableTelemetry: true, defaultQueueSize: 16 });
    const N = 1000, before = wasm.memory.buffer.byteLength;
    for (let i = 0; i < N; i++) await rt.launch("k" + i, DEF);
    const perKernel = Math.round((wasm.memory.buffer.byteLength - before) / N);
    const k = await rt.launch("answers", DEF, { autoActivate: true });
    const answer = await k.call({ value: 21 }, { timeout: 5000 });
    const latency = rt.getTelemetry("answers").latency.count;
    await rt.dispose();
    console.log(JSON.stringify({ perKernel, answer, latency }));
  `);
  assertExited(result);
  const { perKernel, answer, latency } = findings(result);
  assert.ok(perKernel < 10_000, `${perKernel} bytes of wasm memory per idle kernel`);
  assert.deepEqual(answer, { result: 42 });
  assert.equal(latency, 1, "a kernel that answers still records its latency");
});

test("messages of many fields, nested ones too, go through the codec and a misspelt, extra or missing field is refused by its path", async () => {
  // Past 16 fields the encoder checks keys against a Set of the names (a switch over every
  // name for each key made a message of F fields cost O(F²)); what it accepts must not change.
  const result = await runModule(`
    import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";
    await init();
    const named = (count, stem, type) => Object.fromEntries(Array.from({ length: count }, (_, i) => [stem + i, type]));
    const Inner = defineMessage("WideInner", named(20, "g", "i32"));
    const Small = defineMessage("WideSmall", { a: "i32", b: "f32" });
    const Wide = defineMessage("Wide", { ...named(40, "f", "i32"), inner: Inner, small: Small });
    const message = (k) => ({
      ...Object.fromEntries(Array.from({ length: 40 }, (_, i) => ["f" + i, k * 100 + i])),
      inner: Object.fromEntries(Array.from({ length: 20 }, (_, i) => ["g" + i, -k - i])), small: { a: k, b: 0.5 },
    });
    const rt = await RingKernelRuntime.create({ backend: "cpu" });
    const echo = await rt.launch("wide", { input: Wide, output: Wide, handler: (m) => m }, { autoActivate: true });
    await echo.sendBatch([message(1), message(2), message(3)]);
    const echoed = [];
    while (echoed.length < 3) echoed.push(...(await echo.receiveBatch({ timeout: 5000 })));
    const same = JSON.stringify(echoed) === JSON.stringify([1, 2, 3].map(message));
    const refusal = async (change) => {
      const bad = message(4);
      change(bad);
      try { await echo.sendBatch([message(5), bad]); return "accepted"; } catch (e) { return e.name + " " + e.field; }
    };
    const refused = {
      misspelt: await refusal((m) => { m.x39 = m.f39; delete m.f39; }),
      extra: await refusal((m) => { m.f40 = 1; }),
      missing: await refusal((m) => { delete m.f7; }),
      nestedMisspelt: await refusal((m) => { m.inner.h19 = 1; delete m.inner.g19; }),
      smallExtra: await refusal((m) => { m.small.c = 1; }),
    };
    const depth = echo.status().inputQueueDepth;
    await rt.dispose();
    console.log(JSON.stringify({ same, refused, depth }));
  `);
  assertExited(result);
  assert.deepEqual(findings(result), {
    same: true,
    refused: {
      misspelt: "MessageFormatError [1].x39", extra: "MessageFormatError [1].f40", missing: "MessageFormatError [1].f7",
      nestedMisspelt: "MessageFormatError [1].inner.h19", smallExtra: "MessageFormatError [1].small.c",
    },
    depth: 0,
  });
});

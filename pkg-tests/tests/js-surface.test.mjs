// The package's JavaScript surface as JS developers expect it, from the installed package in
// headless Chromium on WebGPU: objects in and out through the layout codecs (the same answers
// as packed bytes, every shape of field), malformed objects refused by name with nothing queued,
// real error classes, and disposal that cannot leave a half-freed object behind.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { launchChromium } from "../chromium.mjs";
import { startServer } from "../../www/serve.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const installed = join(here, "..", "node_modules", "ringkernel-web");

let server, url, browser;

before(async () => {
  ({ server, url } = await startServer({ routes: { "/": join(here, "..", "page"), "/ringkernel-web/": installed } }));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  server?.close();
});

/**
 * Runs `body` (an async function body with `rk`, the package's exports, and `wasm`, what
 * `init()` resolved with, in scope) as a module in a fresh page after `init()`, and resolves with what it returns. A throw fails the test with
 * the error's name and message; so does anything logged as an error. Warnings go to `warnings`.
 */
async function inPage(body, warnings = []) {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => (m.type() === "error" ? errors : m.type() === "warning" ? warnings : []).push(m.text()));
  await page.goto(`${url}/blank.html`);
  await page.addScriptTag({
    type: "module",
    content: `import init, * as rk from "/ringkernel-web/index.js";
try {
  const wasm = await init();
  window.__out = { ok: true, value: await (async () => { ${body} })() };
} catch (e) {
  window.__out = { ok: false, error: \`\${e?.name}: \${e?.message}\` };
}`,
  });
  await page.waitForFunction(() => window.__out !== undefined, null, { timeout: 120_000 });
  const out = await page.evaluate(() => window.__out);
  await page.close();
  assert.equal(out.ok, true, out.error);
  assert.deepEqual(errors, []);
  return out.value;
}

test("objects in and out: receiveBatch gives answer objects, the same as the packed bytes", async () => {
  const value = await inPage(`
    const rt = await rk.RingKernelRuntime.create();
    const doubler = await rt.launch("doubler", null, { autoActivate: true, queueSize: 4096 });
    const values = Array.from({ length: 3000 }, (_, i) => (i * 7919) % 4001 - 2000);
    const take = async (n, options) => {
      const out = [];
      while (out.length < n) out.push(...(await doubler.receiveBatch({ max: n - out.length, timeout: 20000, ...options })));
      return out;
    };
    const empty = [await doubler.sendBatch([]), await doubler.sendBatch(new Int32Array(0))];
    const accepted = await doubler.sendBatch(values.map((v) => ({ value: v })));
    const objects = await take(values.length);
    await doubler.sendBatch(new Int32Array(values));
    const bytes = [];
    while (bytes.length < values.length * 4) bytes.push(...(await doubler.receiveBatch({ timeout: 20000, packed: true })));
    const packed = Array.from(new Int32Array(new Uint8Array(bytes).buffer));
    // receive, tryReceive and call decode with the same codec.
    await doubler.send({ value: 21 });
    const received = await doubler.receive({ timeout: 20000 });
    const called = await doubler.call({ value: 5 }, { timeout: 20000 });
    // The codecs keep views of wasm memory: a batch that makes it grow must still be right.
    const before = wasm.memory.buffer.byteLength;
    const rt2 = await rk.RingKernelRuntime.create();
    const big = await rt2.launch("doubler", null, { autoActivate: true, queueSize: 1 << 20 });
    const many = Array.from({ length: 1 << 20 }, (_, i) => ({ value: i - 4000 }));
    await big.sendBatch(many, { timeout: 60000 });
    let grown = 0, wrong = 0;
    while (grown < many.length) for (const answer of await big.receiveBatch({ timeout: 60000 })) if (answer.result !== 2 * many[grown++].value) wrong++;
    const after = { grew: wasm.memory.buffer.byteLength > before, call: await doubler.call({ value: -8 }, { timeout: 20000 }) };
    await rt2.dispose();
    await rt.dispose();
    return { empty, accepted, values, objects, packed, received, called, grown, wrong, after };
  `);
  assert.deepEqual(value.empty, [0, 0], "an empty batch queues nothing and says so");
  assert.equal(value.accepted, value.values.length);
  assert.deepEqual(value.objects, value.values.map((v) => ({ result: v * 2 })));
  assert.deepEqual(value.packed, value.values.map((v) => v * 2));
  assert.deepEqual(value.received, { result: 42 });
  assert.deepEqual(value.called, { result: 10 });
  assert.equal(value.after.grew, true, "the large batch grew wasm memory");
  assert.deepEqual([value.grown, value.wrong], [1 << 20, 0]);
  assert.deepEqual(value.after.call, { result: -16 });
});

test("every field shape round-trips through the codecs: vec3 padding, arrays, nested messages", async () => {
  const value = await inPage(`
    const Inner = rk.defineMessage("SurfaceInner", { a: "i32", v: "vec2<f32>" });
    const Outer = rk.defineMessage("SurfaceOuter", {
      id: "u32", position: "vec3<f32>", inner: Inner, many: "array<SurfaceInner, 2>",
      points: "array<vec3<f32>, 2>", counts: "array<u32, 3>", grid: "array<array<i32, 2>, 2>",
    });
    const rt = await rk.RingKernelRuntime.create();
    const echo = await rt.launch("surface-echo", { input: Outer, output: Outer,
      wgsl: "fn handle(m: SurfaceOuter) -> SurfaceOuter { var o = m; o.id = m.id + 1u; return o; }" }, { autoActivate: true });
    const message = (k) => ({
      id: k, position: [k + 0.5, -1.25, 2], inner: { a: -k, v: new Float32Array([0.25, k]) },
      many: [{ a: 1, v: [2, 3] }, { a: 4, v: [5, 6] }], points: [1, 2, 3, 4, 5, 6 + k], counts: new Uint32Array([7, 8, k]),
      grid: [k, -k, 2 * k, -2 * k],
    });
    // Vectors come back as arrays, numeric arrays as typed arrays: compare them as plain arrays.
    const plain = (x) => JSON.parse(JSON.stringify(x, (_, v) => (ArrayBuffer.isView(v) ? Array.from(v) : v)));
    const types = (a) => [a.position, a.inner.v, a.points, a.counts, a.grid, a.many[0].v].map((t) => t.constructor.name);
    await echo.sendBatch([message(1), message(2), message(3)]);
    const batch = [];
    while (batch.length < 3) batch.push(...(await echo.receiveBatch({ timeout: 20000 })));
    const called = await echo.call(message(9), { timeout: 20000 });
    await echo.send(message(10));
    await new Promise((done) => setTimeout(done, 0));
    let tried = null;
    while (tried === null) { tried = echo.tryReceive(); if (tried === null) await new Promise((done) => setTimeout(done, 5)); }
    await rt.dispose();
    return { batch: plain(batch), called: plain(called), tried: plain(tried), types: types(batch[0]), expect: plain([1, 2, 3, 9, 10].map(message)) };
  `);
  const expected = value.expect.map((m) => ({ ...m, id: m.id + 1 }));
  assert.deepEqual(value.batch, expected.slice(0, 3));
  assert.deepEqual(value.called, expected[3]);
  assert.deepEqual(value.tried, expected[4]);
  // position and the two v's are vectors; points, counts and grid numeric arrays.
  assert.deepEqual(value.types, ["Array", "Array", "Float32Array", "Uint32Array", "Int32Array", "Array"]);
});

test("a malformed object in a batch is refused by its field path and nothing of the batch is queued", async () => {
  const value = await inPage(`
    const rt = await rk.RingKernelRuntime.create({ enableTelemetry: true });
    const doubler = await rt.launch("doubler", null, { queueSize: 64 }); // launched, not active: nothing drains
    const refusal = async (batch) => {
      try { await doubler.sendBatch(batch); return "accepted"; }
      catch (e) { return { name: e.name, field: e.field, message: e.message, isClass: e instanceof rk.MessageFormatError && e instanceof rk.RingKernelError }; }
    };
    const fraction = await refusal([{ value: 1 }, { value: 1.5 }]);
    const extra = await refusal([{ value: 1 }, { value: 2, valeu: 3 }]);
    const missing = await refusal([{ value: 1 }, {}]);
    const range = await refusal([{ value: 2 ** 31 }]);
    const text = await refusal([{ value: "1" }]);
    const hole = await refusal([{ value: 1 }, { value: 2 }, undefined]);
    const depth = doubler.status().inputQueueDepth;
    // Objects the fast path does not vouch for but the core accepts go in too: a class instance, -0.
    class Request { constructor(value) { this.value = value; } }
    const accepted = await doubler.sendBatch([new Request(3), { value: -0 }, { value: 4 }]);
    await doubler.activate();
    const answers = [];
    while (answers.length < 3) answers.push(...(await doubler.receiveBatch({ timeout: 20000 })));
    const errors = rt.getTelemetry("doubler").errors;
    await rt.dispose();
    return { fraction, extra, missing, range, text, hole, depth, accepted, answers, errors };
  `);
  assert.deepEqual(value.fraction.field, "[1].value", "led by its index in the batch");
  assert.deepEqual([value.hole.field, value.hole.message], ["[2]", "malformed message for kernel 'doubler': message [2] of the batch must be an object, got undefined"]);
  assert.match(value.fraction.message, /expects an integer \(i32\), got 1\.5/);
  assert.deepEqual(value.extra.field, "[1].valeu");
  assert.deepEqual(value.missing.field, "[1].value");
  assert.match(value.missing.message, /is missing/);
  assert.match(value.range.message, /out of range/);
  assert.deepEqual(value.text.field, "[0].value");
  assert.match(value.fraction.message, /^malformed message for kernel 'doubler': '\[1\]\.value' expects/);
  for (const refused of [value.fraction, value.extra, value.missing, value.range, value.text, value.hole]) {
    assert.equal(refused.name, "MessageFormatError");
    assert.equal(refused.isClass, true);
  }
  assert.equal(value.depth, 0, "a refused batch queues nothing");
  assert.equal(value.errors, 6, "each refused batch counts once");
  assert.equal(value.accepted, 3);
  assert.deepEqual(value.answers, [{ result: 6 }, { result: 0 }, { result: 8 }]);
});

test("errors are instances of exported classes, with their names and details", async () => {
  const value = await inPage(`
    const catchIt = async (f) => { try { await f(); return null; } catch (e) { return e; } };
    const rt = await rk.RingKernelRuntime.create();
    const notFound = await catchIt(() => rt.activate("nope"));
    const state = await catchIt(async () => { await rt.launch("doubler"); await rt.deactivate("doubler"); });
    const Req = rk.defineMessage("SurfaceReq", { value: "i32" });
    const Res = rk.defineMessage("SurfaceRes", { result: "i32" });
    const small = await rt.launch("small", { input: Req, output: Res,
      wgsl: "fn handle(msg: SurfaceReq) -> SurfaceRes { return SurfaceRes(msg.value); }" }, { queueSize: 2 });
    const full = await catchIt(() => small.sendBatch(new Int32Array([1, 2, 3]), { timeout: 0 }));
    const timeout = await catchIt(() => small.receive({ timeout: 0 }));
    const typo = await catchIt(() => rk.RingKernelRuntime.create({ enableTelemetri: true }));
    const range = await catchIt(() => rt.launch("small-2", { input: Req, output: Res,
      wgsl: "fn handle(msg: SurfaceReq) -> SurfaceRes { return SurfaceRes(msg.value); }" }, { queueSize: 0 }));
    const negative = await catchIt(() => small.receive({ timeout: -1 }));
    const terminateTimeout = await catchIt(() => rk.managedKernel(rt, "doubler", null, { terminateTimeout: -1 }));
    const heartbeat = await catchIt(() => rt.setHeartbeatTimeout(-1));
    const batch = await catchIt(() => rt.launch("small-3", { input: Req, output: Res,
      wgsl: "fn handle(msg: SurfaceReq) -> SurfaceRes { return SurfaceRes(msg.value); }" }, { queueSize: 4, maxBatch: 8 }));
    const describe = (e) => Object.fromEntries(Object.entries({
      name: e.name, ctor: e.constructor.name, error: e instanceof Error, ringKernel: e instanceof rk.RingKernelError,
      guard: rk.isRingKernelError(e), kernelId: e.kernelId, accepted: e.accepted, state: e.state, action: e.action,
      stack: typeof e.stack === "string",
    }).filter(([, v]) => v !== undefined));
    await rt.dispose();
    return {
      notFound: describe(notFound), state: describe(state), full: describe(full), timeout: describe(timeout),
      typo: { ...describe(typo), typeError: typo instanceof TypeError },
      ranges: [range, negative, terminateTimeout, heartbeat, batch].map((e) => [e.constructor.name, e instanceof RangeError, e.message]),
      classes: ["KernelNotFoundError", "KernelStateError", "QueueFullError", "TimeoutError", "MessageFormatError",
        "KernelCompileError", "MessageDroppedError", "BackendUnavailableError", "DeviceLostError", "RuntimeDisposedError",
        "RuntimeDrainingError", "CircuitOpenError", "OverloadedError"]
        .map((name) => [name, new rk[name]("x").name, rk[name].prototype instanceof rk.RingKernelError]),
    };
  `);
  const common = { error: true, ringKernel: true, guard: true, stack: true };
  assert.deepEqual(value.notFound, { ...common, name: "KernelNotFoundError", ctor: "KernelNotFoundError", kernelId: "nope" });
  assert.deepEqual(value.state, {
    ...common, name: "KernelStateError", ctor: "KernelStateError", kernelId: "doubler", state: "launched", action: "deactivate",
  });
  assert.deepEqual(value.full, { ...common, name: "QueueFullError", ctor: "QueueFullError", kernelId: "small", accepted: 2 });
  assert.deepEqual(value.timeout, { ...common, name: "TimeoutError", ctor: "TimeoutError", kernelId: "small" });
  assert.deepEqual(value.typo, { error: true, ringKernel: false, guard: false, stack: true, name: "TypeError", ctor: "TypeError", typeError: true });
  assert.deepEqual(value.ranges.map(([ctor, isRange]) => [ctor, isRange]), Array(5).fill(["RangeError", true]));
  assert.match(value.ranges[0][2], /launch options: queueSize must be a whole number from 1 to 4194304, got 0/);
  assert.match(value.ranges[1][2], /^receive options: timeout must be a non-negative number of milliseconds, got -1/);
  assert.match(value.ranges[2][2], /^managedKernel options: terminateTimeout must be a non-negative number of milliseconds, got -1/, "named by its option");
  assert.match(value.ranges[3][2], /^setHeartbeatTimeout: the heartbeat timeout must be a number of milliseconds more than 0, up to 9e15, got -1/);
  assert.equal(value.ranges[4][2], "launch options: maxBatch must be a whole number from 1 to 4 (the input queue size), got 8", "the range that applies");
  for (const [name, shown, subclass] of value.classes) assert.deepEqual([shown, subclass], [name, true], name);
});

test("disposal: [Symbol.asyncDispose] from init() on, no synchronous dispose or free, RuntimeDisposedError after", async () => {
  const value = await inPage(`
    const prototypes = { runtime: rk.RingKernelRuntime.prototype, handle: rk.KernelHandle.prototype, managed: rk.ManagedKernel.prototype };
    const before = Object.fromEntries(Object.entries(prototypes).map(([k, p]) =>
      [k, { asyncDispose: typeof p[Symbol.asyncDispose], dispose: Symbol.dispose in p, free: "free" in p }]));
    const rt = await rk.RingKernelRuntime.create();
    const doubler = await rt.launch("doubler", null, { autoActivate: true });
    await rt[Symbol.asyncDispose]();
    const after = [];
    for (const call of [() => rt.launch("doubler"), () => rt.send("doubler", { value: 1 }), () => doubler.call({ value: 1 }),
      () => rt.sendBatch("doubler", new Int32Array(4)), () => rt.receiveBatch("doubler", { timeout: 0 }),
      () => rt.setHeartbeatTimeout(100), () => rt.setWatchdogAction("report"), () => rt.onMemoryAlert(0.5, () => {}),
      () => rt.triggerMemoryAlert("high")]) {
      try { await call(); after.push("resolved"); } catch (e) { after.push(\`\${e.constructor.name} \${e instanceof rk.RingKernelError}\`); }
    }
    let usingError = "none";
    try { const disposable = rt; disposable[Symbol.dispose](); } catch (e) { usingError = e.constructor.name; }
    const report = await rt.completeShutdown();
    return { before, after, usingError, disposeAgain: JSON.stringify(await rt.dispose()) === JSON.stringify(report) };
  `);
  for (const [name, found] of Object.entries(value.before)) {
    assert.deepEqual(found, { asyncDispose: "function", dispose: false, free: false }, name);
  }
  assert.deepEqual(value.after, Array(9).fill("RuntimeDisposedError true"));
  assert.equal(value.usingError, "TypeError");
  assert.equal(value.disposeAgain, true, "a second dispose hands back the same report");
});

test("for await over a kernel takes its answers one by one: leaving the loop loses none, it ends when none will come, and a wait's timeout or abort is thrown", async () => {
  const value = await inPage(`
    const rt = await rk.RingKernelRuntime.create();
    const doubler = await rt.launch("doubler", null, { autoActivate: true, queueSize: 64 });
    const sending = (async () => { for (let i = 0; i < 300; i++) await doubler.send({ value: i }); })();
    const looped = [];
    for await (const answer of doubler) {
      looped.push(answer.result);
      if (looped.length === 100) break;
    }
    // The rest, received while the sends go on (their room comes from these receives).
    const rest = [];
    while (rest.length < 200) rest.push(...(await doubler.receiveBatch({ max: 500, timeout: 10000 })).map((a) => a.result));
    await sending;
    const leftOver = doubler.tryReceive();

    // A wait's timeout and a signal's abort are thrown into the loop; the kernel keeps going.
    const thrown = [];
    try { for await (const answer of doubler.answers({ timeout: 5 })) thrown.push(answer); } catch (e) { thrown.push(e.name); }
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("enough")), 20);
    try { for await (const answer of doubler.answers({ signal: controller.signal })) thrown.push(answer); } catch (e) { thrown.push(e.message); }
    // With answers waiting: bad options are refused before any is taken, and a loop whose signal
    // aborts stops at its next turn, leaving the rest queued.
    await doubler.sendBatch([{ value: 7 }, { value: 8 }, { value: 9 }]);
    while (doubler.status().outputQueueDepth < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    let badOptions = "none";
    try { for await (const answer of doubler.answers({ timeuot: 5 })) thrown.push(answer); } catch (e) { badOptions = e.constructor.name; }
    const stopping = new AbortController();
    const beforeAbort = [];
    try {
      for await (const answer of doubler.answers({ signal: stopping.signal })) { beforeAbort.push(answer.result); stopping.abort(new Error("stop")); }
    } catch (e) { beforeAbort.push(e.message); }
    const aborted = [];
    try { for await (const answer of doubler.answers({ signal: AbortSignal.abort(new Error("already")) })) aborted.push(answer); } catch (e) { aborted.push(e.message); }
    const leftQueued = (await doubler.receiveBatch({ max: 10, timeout: 1000 })).map((a) => a.result);

    // Answers still queued when the kernel terminates are yielded, then the loop ends.
    await doubler.sendBatch([{ value: 1 }, { value: 2 }, { value: 3 }]);
    const drained = (async () => { const got = []; for await (const a of doubler.answers()) got.push(a.result); return got; })();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await doubler.terminate();
    const afterTerminate = await drained;
    const errorsAfterEnd = doubler.metrics().errors;

    // A loop waiting when the runtime is disposed ends too.
    rt.remove("doubler");
    const again = await rt.launch("doubler", null, { autoActivate: true });
    const waiting = (async () => { let n = 0; for await (const _ of again) n++; return n; })();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await rt.dispose();
    return { looped, rest, leftOver, thrown, badOptions, beforeAbort, aborted, leftQueued, errorsAfterEnd, afterTerminate, afterDispose: await waiting,
      asyncIterator: typeof rk.KernelHandle.prototype[Symbol.asyncIterator] };
  `);
  const doubled = (from, to) => Array.from({ length: to - from }, (_, i) => 2 * (from + i));
  assert.deepEqual(value.looped, doubled(0, 100), "the loop's answers, in order");
  assert.deepEqual(value.rest, doubled(100, 300), "leaving the loop took none of the rest");
  assert.equal(value.leftOver, null);
  assert.deepEqual(value.thrown, ["TimeoutError", "enough"]);
  assert.equal(value.badOptions, "TypeError", "a misspelt option is refused as receive refuses it");
  assert.deepEqual(value.beforeAbort, [14, "stop"], "the loop stops at the turn after its signal aborts");
  assert.deepEqual(value.aborted, ["already"], "an aborted signal takes nothing");
  assert.deepEqual(value.leftQueued, [16, 18], "what the loops did not take stays queued");
  assert.equal(value.errorsAfterEnd, 0, "a loop's end is no failure of the kernel");
  assert.deepEqual(value.afterTerminate, [2, 4, 6]);
  assert.equal(value.afterDispose, 0);
  assert.equal(value.asyncIterator, "function");
});

test("sends are queued in the order they are called: at once when there is room, behind earlier ones that wait, and trySend never overtakes one", async () => {
  const value = await inPage(`
    const rt = await rk.RingKernelRuntime.create({ enableTelemetry: true });
    const doubler = await rt.launch("doubler", null, { queueSize: 4 }); // launched, not active: nothing drains
    const depth = () => doubler.status().inputQueueDepth;
    const depths = [];
    // None awaited: each is queued before it returns (no task has run in between).
    const first = doubler.send({ value: 0 });
    depths.push(depth());
    const called = doubler.call({ value: 1 }, { timeout: 20000 }); // queued now; its answer comes later
    depths.push(depth());
    const batch = doubler.sendBatch([{ value: 2 }]);
    depths.push(depth());
    doubler.trySend({ value: 3 });
    depths.push(depth());
    // The queue is full: this send waits for room, holding its place in the kernel's line.
    const waiting = doubler.send({ value: 4 }, { timeout: 20000 });
    let refused;
    const errorsBefore = doubler.metrics().errors;
    try { doubler.trySend({ value: 99 }); } catch (e) {
      refused = { name: e.name, queueFull: e instanceof rk.QueueFullError, kernelId: e.kernelId, accepted: e.accepted, message: e.message,
        counted: doubler.metrics().errors - errorsBefore };
    }
    // Behind the waiting send, whatever room appears first.
    const later = [doubler.send({ value: 5 }, { timeout: 20000 }), doubler.call({ value: 6 }, { timeout: 20000 }),
      doubler.sendBatch([{ value: 7 }], { timeout: 20000 })];
    depths.push(depth());
    await Promise.all([first, batch]);
    await doubler.activate();
    const answers = [];
    while (answers.length < 6) answers.push(...(await doubler.receiveBatch({ timeout: 20000 })));
    await waiting;
    const calls = [await called, await later[1]];
    await Promise.all(later);
    // Once the line is clear, trySend queues again.
    doubler.trySend({ value: 8 });
    answers.push(await doubler.receive({ timeout: 20000 }));
    await rt.dispose();
    return { depths, refused, answers: answers.map((a) => a.result), calls };
  `);
  assert.deepEqual(value.depths, [1, 2, 3, 4, 4], "each queued before it returned, until the queue was full");
  assert.deepEqual(value.refused, {
    name: "QueueFullError", queueFull: true, kernelId: "doubler", accepted: 0,
    message: "kernel 'doubler' has earlier sends still waiting to be queued: trySend does not overtake them",
    counted: 1, // in the kernel's errors, as a trySend refused by a full queue is
  });
  assert.deepEqual(value.answers, [0, 4, 6, 8, 10, 14, 16], "in the order the sends were called (calls' answers go to them)");
  assert.deepEqual(value.calls, [{ result: 2 }, { result: 12 }]);
});

test("a send behind one that waits gives up at its own timeout, not the one ahead's, and those behind it keep their order", async () => {
  const value = await inPage(`
    const rt = await rk.RingKernelRuntime.create({ enableTelemetry: true });
    const doubler = await rt.launch("doubler", null, { queueSize: 2 }); // launched, not active: nothing drains
    await doubler.sendBatch([{ value: 0 }, { value: 1 }]);
    const waiting = doubler.send({ value: 2 }); // no timeout: waits for room as long as it takes
    const reused = { value: 3 };
    const started = performance.now();
    // Behind it, each with its own timeout; the message is read when the call is made.
    const impatient = [doubler.send(reused, { timeout: 100 }), doubler.sendBatch([reused], { timeout: 100 }),
      doubler.call(reused, { timeout: 100 }), rt.sendEnvelope("doubler", reused, { timeout: 100 })];
    const patient = doubler.sendBatch([reused], { timeout: 20000 });
    reused.value = 4;
    const last = doubler.send({ value: 5 });
    const refusals = [];
    for (const p of impatient) {
      try { await p; refusals.push("sent"); } catch (e) { refusals.push({ name: e.name, queueFull: e instanceof rk.QueueFullError, kernelId: e.kernelId, accepted: e.accepted, stall: e.stall, message: e.message }); }
    }
    const waited = performance.now() - started;
    const errors = rt.getTelemetry("doubler").errors;
    await doubler.activate();
    const answers = [];
    while (answers.length < 5) answers.push(...(await doubler.receiveBatch({ timeout: 20000 })));
    await Promise.all([waiting, patient, last]);
    const leftover = await doubler.receive({ timeout: 200 }).catch((e) => e.name);
    await rt.dispose();
    return { refusals, waited, errors, answers: answers.map((a) => a.result), leftover };
  `);
  const full = {
    name: "QueueFullError", queueFull: true, kernelId: "doubler", accepted: 0, stall: "inactive",
    message: "queue of kernel 'doubler' is full (2 messages); the kernel processes nothing while it is launched, not active",
  };
  assert.deepEqual(value.refusals, [full, full, full, full], "each refused at its own timeout while the one ahead still waited");
  assert.ok(value.waited >= 90 && value.waited < 10000, `refused after about 100 ms, not when the one ahead was queued (${value.waited} ms)`);
  assert.equal(value.errors, 4, "counted as the kernel's errors, as sends that timed out waiting for room are");
  assert.deepEqual(value.answers, [0, 2, 4, 6, 10], "the waiting send, then those behind the refused ones, in order; the batch as it was when called");
  assert.equal(value.leftover, "TimeoutError", "nothing refused was queued");
});

test("a timeout too long for Rust's Duration (1e300 ms) waits as long as no timeout does, and sendEnvelope's options are checked as before (a timestamp needs both its parts)", async () => {
  const value = await inPage(`
    const rt = await rk.RingKernelRuntime.create();
    const doubler = await rt.launch("doubler", null, { autoActivate: true });
    const long = { timeout: 1e300 };
    await doubler.send({ value: 1 }, long);
    await doubler.sendBatch([{ value: 2 }], long);
    const header = await rt.sendEnvelope("doubler", { value: 3 }, { ...long, priority: 7, correlationId: 5, source: "host-side", timestamp: { physicalMs: 1, logical: 2 } });
    const answers = [await doubler.receive(long), await doubler.receive({ timeout: Number.MAX_VALUE }), await rt.receiveEnvelope("doubler", long)];
    const called = await doubler.call({ value: 4 }, long);
    const refusals = [];
    for (const options of [{ priorty: 1 }, { priority: 256 }, { priority: "high" }, { correlationId: 1.5 }, { correlationId: 1n }, { source: 5 }, { source: "a\\uD800b" }, { source: "\\uDC00" },
      { timestamp: { physicalMs: 1, tick: 0 } }, { timestamp: { physicalMs: 1, logical: -1 } }, { timestamp: { logical: 3 } }, { timestamp: {} }, { timeout: -1 }, { timeout: NaN }, { timeout: "5" }, { signal: {} }, { signal: "stop" }, 7]) {
      try { await rt.sendEnvelope("doubler", { value: 9 }, options); refusals.push("sent"); } catch (e) { refusals.push(e.constructor.name + ": " + e.message); }
    }
    const depth = doubler.status().inputQueueDepth + doubler.status().outputQueueDepth;
    // Refused with a timestamp from 50 minutes ahead (no such kernel, a malformed message): the
    // clock stays, and the next send's id follows the last one given.
    const clock = rt.currentTimestamp();
    const ahead = { physicalMs: clock.physicalMs + 50 * 60_000, logical: 0 };
    for (const [id, message] of [["nope", { value: 1 }], ["doubler", { value: "x" }], ["doubler", {}]]) {
      try { await rt.sendEnvelope(id, message, { timestamp: ahead }); refusals.push("sent"); } catch (e) { refusals.push(e.name); }
    }
    const clockMoved = rt.currentTimestamp().physicalMs >= ahead.physicalMs;
    const next = await rt.sendEnvelope("doubler", { value: 5 });
    await rt.receive("doubler", long);
    await rt.dispose();
    return { answers: [answers[0].result, answers[1].result, answers[2].message.result], envelope: answers[2].envelope.priority, header: { ...header, messageId: typeof header.messageId, timestamp: undefined }, called, refusals, depth, clockMoved, idsUsed: next.messageId - header.messageId };
  `);
  assert.deepEqual(value.answers, [2, 4, 6]);
  assert.equal(value.envelope, 7);
  assert.deepEqual(value.header, { messageId: "number", correlationId: 5, source: "host-side", destination: "doubler", priority: 7, timestamp: undefined });
  assert.deepEqual(value.called, { result: 8 });
  assert.deepEqual(value.refusals, [
    "TypeError: sendEnvelope options: unknown option 'priorty' (expected one of correlationId, priority, source, timestamp, timeout, signal)",
    "RangeError: sendEnvelope options: priority must be a whole number from 0 to 255, got 256",
    "TypeError: sendEnvelope options: priority must be a number, got \"high\"",
    "RangeError: sendEnvelope options: correlationId must be a whole number from 0 to 9007199254740991, got 1.5",
    "TypeError: sendEnvelope options: option 'correlationId' must be a number, got a BigInt",
    "TypeError: sendEnvelope options: source must be a kernel id (a string), got 5",
    "TypeError: sendEnvelope options: source must be a kernel id of well-formed text, got \"a\\ud800b\" (it has a lone surrogate)",
    "TypeError: sendEnvelope options: source must be a kernel id of well-formed text, got \"\\udc00\" (it has a lone surrogate)",
    "TypeError: sendEnvelope options: timestamp: unknown option 'tick' (expected one of physicalMs, logical)",
    "RangeError: sendEnvelope options: timestamp.logical must be a whole number from 0 to 4294967295, got -1",
    "TypeError: sendEnvelope options: timestamp.physicalMs must be a number, got undefined",
    "TypeError: sendEnvelope options: timestamp.physicalMs must be a number, got undefined",
    "RangeError: sendEnvelope options: timeout must be a non-negative number of milliseconds, got -1",
    "RangeError: sendEnvelope options: timeout must be a non-negative number of milliseconds, got NaN",
    "TypeError: sendEnvelope options: timeout must be a number of milliseconds, got \"5\"",
    "TypeError: sendEnvelope options: signal must be an AbortSignal, got an object",
    "TypeError: sendEnvelope options: signal must be an AbortSignal, got \"stop\"",
    "TypeError: sendEnvelope options must be an object, got 7",
    "KernelNotFoundError", "MessageFormatError", "MessageFormatError",
  ]);
  assert.equal(value.depth, 0, "nothing refused was queued");
  assert.equal(value.clockMoved, false, "a refused envelope moved the runtime's clock");
  // Given out since the header: the answer taken by receiveEnvelope, then the next send's.
  assert.equal(value.idsUsed, 2, "refused envelopes used up message ids");
});

test("a timeout of Infinity is no timeout: every wait takes it and waits as long as it takes; NaN and negative ones stay RangeErrors", async () => {
  const value = await inPage(`
    const catchIt = async (f) => { try { await f(); return "taken"; } catch (e) { return e.constructor.name + ": " + e.message; } };
    const rt = await rk.RingKernelRuntime.create();
    const doubler = await rt.launch("doubler", null, { autoActivate: true });
    const forever = { timeout: Infinity };
    // Waits that end only when the answers come, well after the call.
    const one = doubler.receive(forever);
    const two = rt.receiveBatch("doubler", { min: 2, max: 2, timeout: Infinity });
    const envelope = rt.receiveEnvelope("doubler", forever);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await doubler.send({ value: 1 }, forever);
    await doubler.sendBatch([{ value: 2 }, { value: 3 }], forever);
    await rt.sendEnvelope("doubler", { value: 4 }, { timeout: Infinity, priority: 1 });
    const answers = [(await one).result, (await two).map((a) => a.result), (await envelope).message.result];
    const called = await rt.call("doubler", { value: 5 }, forever);
    const Forever = rk.defineMessage("ForeverMsg", { value: "i32" });
    const definition = { input: Forever, output: Forever, wgsl: "fn handle(m: ForeverMsg) -> ForeverMsg { return m; }" };
    const managed = await rk.managedKernel(rt, "managed-forever", definition, { terminateTimeout: Infinity });
    await managed.terminate();
    const refused = [];
    for (const timeout of [NaN, -1, -Infinity]) {
      refused.push(await catchIt(() => doubler.receive({ timeout })));
      refused.push(await catchIt(() => rk.managedKernel(rt, "doubler", null, { terminateTimeout: timeout })));
    }
    const waited = doubler.wait(forever);
    await doubler.terminate(forever);
    await waited;
    await rt.terminateAll(forever);
    await rt.drain(forever);
    await rt.dispose();
    return { answers, called: called.result, refused };
  `);
  assert.deepEqual(value.answers, [2, [4, 6], 8]);
  assert.equal(value.called, 10);
  assert.deepEqual(value.refused, [
    "RangeError: receive options: timeout must be a non-negative number of milliseconds, got NaN",
    "RangeError: managedKernel options: terminateTimeout must be a non-negative number of milliseconds, got NaN",
    "RangeError: receive options: timeout must be a non-negative number of milliseconds, got -1",
    "RangeError: managedKernel options: terminateTimeout must be a non-negative number of milliseconds, got -1",
    "RangeError: receive options: timeout must be a non-negative number of milliseconds, got -Infinity",
    "RangeError: managedKernel options: terminateTimeout must be a non-negative number of milliseconds, got -Infinity",
  ]);
});

test("under autoRecover a kernel's readable() errors with DeviceLostError when its device is lost, and a new one after the recovery reads on, nothing lost", async () => {
  const value = await inPage(`
    const rt = await rk.RingKernelRuntime.create({ autoRecover: true });
    const doubler = await rt.launch("doubler", null, { autoActivate: true });
    const events = rt.deviceEvents()[Symbol.asyncIterator]();
    const reader = doubler.readable().getReader();
    await doubler.send({ value: 1 });
    const first = (await reader.read()).value.result;
    const pending = reader.read().then((r) => "read", (e) => e.name);
    await new Promise((resolve) => setTimeout(resolve, 50));
    rt.destroyDevice();
    const lost = await pending;
    const kinds = [];
    for (;;) { const { value } = await events.next(); kinds.push(value.kind); if (value.kind !== "lost") break; }
    const after = await reader.read().then(() => "read", (e) => e.name);
    await doubler.send({ value: 2 });
    const again = (await doubler.readable().getReader().read()).value.result;
    await rt.dispose();
    return { first, lost, kinds, after, again, state: "done" };
  `);
  assert.deepEqual(value, { first: 2, lost: "DeviceLostError", kinds: ["lost", "recovered"], after: "DeviceLostError", again: 4, state: "done" },
    "the stream ends with the loss (the kernel comes back from its last checkpoint, which its reader should hear of); a new one reads on");
});

test("an AbortSignal ends a wait: nothing half done, the signal's reason as the rejection, a partly queued batch's count, no listener left behind", async () => {
  const value = await inPage(`
    const rt = await rk.RingKernelRuntime.create({ enableTelemetry: true });
    const doubler = await rt.launch("doubler", null, { queueSize: 2 }); // launched, not active: nothing drains
    const settled = (p) => p.then((ok) => ({ ok }), (e) => e);
    const reason = new Error("changed my mind");

    // Aborted before the call: nothing is done, although there is room.
    const gone = AbortSignal.abort(reason);
    const early = [];
    for (const op of [() => doubler.send({ value: 100 }, { signal: gone }), () => doubler.sendBatch([{ value: 101 }], { signal: gone }),
      () => doubler.call({ value: 102 }, { signal: gone }), () => rt.sendEnvelope("doubler", { value: 103 }, { signal: gone }),
      () => doubler.receive({ signal: gone }), () => doubler.receiveBatch({ signal: gone }), () => rt.receiveEnvelope("doubler", { signal: gone })]) {
      early.push((await settled(op())) === reason);
    }
    const depthAfterEarly = doubler.status().inputQueueDepth;

    // Aborted while waiting: a batch of three of which one fits, and behind it a send, a call and an
    // envelope with the same signal, a receive, and a send without one.
    const controller = new AbortController();
    const signal = controller.signal;
    await doubler.send({ value: 0 });
    const batch = settled(doubler.sendBatch([{ value: 1 }, { value: 2 }, { value: 3 }], { signal }));
    const behind = [doubler.send({ value: 4 }, { signal }), doubler.call({ value: 5 }, { signal }), rt.sendEnvelope("doubler", { value: 6 }, { signal }),
      doubler.receive({ signal })].map(settled);
    const plain = doubler.send({ value: 7 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort(reason);
    const partial = await batch;
    const waits = (await Promise.all(behind)).map((e) => e === reason);
    await doubler.activate();
    await plain;
    const answers = [];
    while (answers.length < 3) answers.push(...(await doubler.receiveBatch({ timeout: 20000 })));

    // A call whose message was queued, aborted while it waits for its answer: its answer is discarded.
    await doubler.deactivate();
    const late = new AbortController();
    const abandoned = settled(doubler.call({ value: 20 }, { signal: late.signal }));
    await new Promise((resolve) => setTimeout(resolve, 20));
    late.abort();
    const abandonedError = await abandoned;
    await doubler.activate();
    const next = await doubler.call({ value: 21 }, { timeout: 20000 });
    const leftover = await doubler.receive({ timeout: 200 }).catch((e) => e.name);

    // AbortSignal.timeout: its reason is a DOMException named TimeoutError.
    const timedOut = await settled(doubler.receive({ signal: AbortSignal.timeout(30) }));

    // A long-lived signal collects no listeners: each wait removes the one it added.
    const kept = new AbortController().signal;
    let added = 0, removed = 0;
    const add = kept.addEventListener.bind(kept), remove = kept.removeEventListener.bind(kept);
    kept.addEventListener = (...args) => { added++; return add(...args); };
    kept.removeEventListener = (...args) => { removed++; return remove(...args); };
    for (let i = 0; i < 20; i++) {
      await doubler.send({ value: i }, { signal: kept });
      await doubler.receive({ signal: kept, timeout: 20000 });
    }

    const refusals = [];
    for (const options of [{ signal: {} }, { signal: "stop" }, { signal: null }, { timeout: 10, signal: undefined }]) {
      try { await doubler.send({ value: 30 }, options); await doubler.receive({ timeout: 20000 }); refusals.push("sent"); } catch (e) { refusals.push(e.constructor.name + ": " + e.message); }
    }
    try { await doubler.terminate({ signal: kept }); } catch (e) { refusals.push(e.constructor.name + ": " + e.message); }
    const telemetry = rt.getTelemetry("doubler");
    await rt.dispose();
    return {
      early, depthAfterEarly,
      partial: { name: partial.name, queueFull: partial instanceof rk.QueueFullError, accepted: partial.accepted, kernelId: partial.kernelId, cause: partial.cause === reason, message: partial.message },
      waits, answers: answers.map((a) => a.result),
      abandoned: { name: abandonedError.name, isDom: abandonedError instanceof DOMException }, next, leftover,
      timedOut: { name: timedOut.name, isDom: timedOut instanceof DOMException },
      listeners: { added, removed }, refusals, errors: telemetry.errors, abandonedAnswers: telemetry.answersAbandoned,
    };
  `);
  assert.deepEqual(value.early, [true, true, true, true, true, true, true], "every operation rejects with the reason of a signal aborted before the call");
  assert.equal(value.depthAfterEarly, 0, "nothing was queued");
  assert.deepEqual(value.partial, {
    name: "QueueFullError", queueFull: true, accepted: 1, kernelId: "doubler", cause: true,
    message: "sendBatch to kernel 'doubler' was aborted while it waited for room, after its first message was queued",
  });
  assert.deepEqual(value.waits, [true, true, true, true], "the send, call and envelope behind it and the receive reject with the reason");
  assert.deepEqual(value.answers, [0, 2, 14], "the first send, the batch's queued front, then the send behind the aborted ones");
  assert.deepEqual(value.abandoned, { name: "AbortError", isDom: true }, "abort() without a reason gives a DOMException named AbortError");
  assert.deepEqual(value.next, { result: 42 }, "the next call gets its own answer");
  assert.equal(value.leftover, "TimeoutError", "the aborted call's answer went to nobody");
  assert.deepEqual(value.timedOut, { name: "TimeoutError", isDom: true });
  assert.ok(value.listeners.added > 0, "some receive waited with the signal");
  assert.equal(value.listeners.removed, value.listeners.added, "every listener added was removed");
  assert.deepEqual(value.refusals, [
    "TypeError: send options: signal must be an AbortSignal, got an object",
    "TypeError: send options: signal must be an AbortSignal, got \"stop\"",
    "sent",
    "sent",
    "TypeError: terminate options: unknown option 'signal' (expected one of timeout)",
  ]);
  assert.equal(value.errors, 0, "neither the aborts (the caller's choice) nor the receive that timed out (it refused nothing) are the kernel's errors");
  assert.equal(value.abandonedAnswers, 1);
});

/**
 * A page body that runs seeded random sequences (seeds `seeds`, 800 steps each) into a kernel with
 * an 8-message queue: `send`, `sendBatch`, `call`, `trySend` and `sendEnvelope`, a third with timeouts
 * of 0 to 30 ms and some with an abort signal, none awaited, between receives, pauses, resumes
 * and aborts of that signal; with `chaos`, on two devices,
 * also migrations (awaited or not) and lost devices (`destroyDevice`, mostly `recover`ed at once).
 * Returns per run whether what came back is exactly every message of every send that resolved and
 * the accepted front of every refused batch, once each and in the order called, and how the calls
 * and refusals went.
 */
function interleavings(seeds, chaos) {
  return `
    const runs = [];
    for (const start of ${JSON.stringify(seeds)}) {
      let seed = start;
      const rand = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };
      const rt = await rk.RingKernelRuntime.create(${chaos ? "{ devices: [{}, {}] }" : ""});
      const k = await rt.launch("doubler", null, { queueSize: 8, autoActivate: true });
      let next = 1, active = true, migrations = 0, losses = 0;
      const issued = []; // { values, kind, outcome: a promise of { ok, value | error } }
      // Some operations carry the signal of the current controller, which a step aborts (and replaces).
      class Stop extends Error {}
      let controller = new AbortController(), aborts = 0;
      const settle = (p) => p.then((value) => ({ ok: true, value }), (error) => ({ ok: false, error }));
      const received = [];
      // A receive may time out, or (with chaos) find the kernel's device lost.
      const take = async (timeout) => {
        try { received.push(...(await k.receiveBatch({ timeout, signal: rand() < 0.2 ? controller.signal : undefined })).map((a) => a.result)); }
        catch (e) { if (e.name !== "TimeoutError" && e.name !== "DeviceLostError" && !(e instanceof Stop)) throw e; }
      };
      // Lifecycle steps a lost device can refuse.
      const tolerate = async (step) => { try { await step(); return true; } catch (e) { if (!${chaos} || !["KernelStateError", "DeviceLostError"].includes(e.name)) throw e; return false; } };
      for (let step = 0; step < 800; step++) {
        const r = rand();
        const kind = rand();
        const options = kind < 0.35 ? { timeout: Math.floor(rand() * 30) } : kind < 0.5 ? { signal: controller.signal } : undefined;
        if (r < 0.3) { const v = next++; issued.push({ values: [v], kind: "send", outcome: settle(k.send({ value: v }, options)) }); }
        else if (r < 0.45) {
          const values = Array.from({ length: 1 + Math.floor(rand() * 12) }, () => next++);
          issued.push({ values, kind: "batch", outcome: settle(k.sendBatch(values.map((value) => ({ value })), options)) });
        }
        else if (r < 0.55) { const v = next++; issued.push({ values: [v], kind: "call", outcome: settle(k.call({ value: v }, options)) }); }
        else if (r < 0.65) { const v = next++; let outcome; try { k.trySend({ value: v }); outcome = { ok: true }; } catch (error) { outcome = { ok: false, error }; } issued.push({ values: [v], kind: "try", outcome: Promise.resolve(outcome) }); }
        else if (r < 0.7) { const v = next++; issued.push({ values: [v], kind: "envelope", outcome: settle(rt.sendEnvelope("doubler", { value: v }, options)) }); }
        else if (r < 0.8) await take(Math.floor(rand() * 5));
        else if (r < 0.84) { if (await tolerate(() => active ? k.deactivate() : k.resume())) active = !active; }
        else if (${chaos} && r < 0.86) { const migrated = tolerate(() => rt.migrate("doubler", rand() < 0.5 ? 0 : 1)).then((ok) => { migrations += ok; }); if (rand() < 0.5) await migrated; }
        else if (${chaos} && r < 0.87) { await rt.destroyDevice(rand() < 0.5 ? 0 : 1); losses++; if (rand() < 0.7) await rt.recover(); }
        else if (r > 0.96) { controller.abort(new Stop("stopped by the test")); controller = new AbortController(); aborts++; }
        else await new Promise((ok) => setTimeout(ok, Math.floor(rand() * 3)));
      }
      if (${chaos}) await rt.recover();
      if (k.state !== "active") await k.resume();
      let settled = false;
      const outcomes = Promise.all(issued.map((x) => x.outcome)).then((all) => { settled = true; return all; });
      while (!settled) await take(50);
      const results = await outcomes;
      for (let before = -1; before !== received.length; ) { before = received.length; await take(300); }
      const expected = [];
      let calls = 0, wrongCalls = 0, refused = 0;
      issued.forEach(({ values, kind }, i) => {
        const { ok, value, error } = results[i];
        if (kind === "call") { if (ok) { calls++; if (value.result !== 2 * values[0]) wrongCalls++; } return; }
        if (!ok) { refused++; if (error.name !== "QueueFullError" && !(error instanceof Stop)) throw error; }
        // An aborted batch of which nothing was queued rejects with the reason itself.
        const accepted = ok ? values.length : kind === "batch" && !(error instanceof Stop) ? error.accepted : 0;
        expected.push(...values.slice(0, accepted).map((v) => 2 * v));
      });
      const firstDifference = expected.findIndex((v, i) => received[i] !== v);
      runs.push({ same: firstDifference === -1 && expected.length === received.length, firstDifference, expected: expected.length, received: received.length, calls, wrongCalls, refused, migrations, losses, aborts });
      await rt.dispose();
    }
    return runs;
  `;
}

test("random interleavings of sends with and without timeouts or abort signals, calls, trySend, envelopes, receives, pauses and aborts: every accepted message is answered once, in the order called", async () => {
  for (const run of await inPage(interleavings([1, 2, 3], false))) {
    assert.equal(run.same, true, JSON.stringify(run));
    assert.equal(run.wrongCalls, 0);
    assert.ok(run.calls > 0 && run.refused > 0 && run.expected > 0 && run.aborts > 0, `each kind of outcome happened: ${JSON.stringify(run)}`);
  }
});

test("the same with two devices, migrations and lost devices recovered: still every accepted message once, in order", async () => {
  for (const run of await inPage(interleavings([4, 5], true))) {
    assert.equal(run.same, true, JSON.stringify(run));
    assert.equal(run.wrongCalls, 0);
    assert.ok(run.migrations > 0 && run.losses > 0 && run.expected > 0, `each kind of event happened: ${JSON.stringify(run)}`);
  }
});

test("a batch larger than the queue, sent before any receive, waits with a warning and a counter, then says how many went in", async () => {
  const warnings = [];
  const value = await inPage(`
    const rt = await rk.RingKernelRuntime.create({ enableTelemetry: true });
    const doubler = await rt.launch("doubler", null, { autoActivate: true, queueSize: 1000 });
    const objects = Array.from({ length: 100000 }, (_, i) => ({ value: i }));
    let refused;
    try { await doubler.sendBatch(objects, { timeout: 1500 }); } catch (e) { refused = { name: e.name, accepted: e.accepted, queueFull: e instanceof rk.QueueFullError, stall: e.stall, says: e.message.endsWith("while its output queue is full (1000 answers nobody has received)") }; }
    const stalledSends = rt.getTelemetry("doubler").stalledSends;
    // Every accepted message is answered, in order; nothing else is.
    const answers = [];
    while (answers.length < refused.accepted) answers.push(...(await doubler.receiveBatch({ max: refused.accepted - answers.length, timeout: 20000 })));
    const inOrder = answers.every((a, i) => a.result === 2 * i);
    const leftover = doubler.tryReceive();
    await rt.dispose();
    return { refused, stalledSends, answered: answers.length, inOrder, leftover };
  `, warnings);
  // The input queue (1000) and the output queue (1000) filled; the rest was never queued.
  // The error says why: the kernel's own output queue is full.
  assert.deepEqual(value.refused, { name: "QueueFullError", accepted: 2000, queueFull: true, stall: "outputFull", says: true });
  assert.equal(value.stalledSends, 1);
  assert.equal(value.answered, 2000);
  assert.equal(value.inOrder, true);
  assert.equal(value.leftover, null);
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.match(warnings[0], /a send to kernel 'doubler' has waited 1 s for room: .*output queue is full \(1000 answers nobody has received\)/);
});

test("a message's fields are what for...in lists, with the codecs as without (the CSP test below): inherited ones count, a class instance's own do; defineMessage keeps a frozen copy of its fields", async () => {
  const value = await inPage(`
    const rt = await rk.RingKernelRuntime.create();
    const doubler = await rt.launch("doubler", null, { autoActivate: true });
    const inherited = await doubler.call(Object.create({ value: 21 }), { timeout: 20000 });
    class Msg { constructor(value) { this.value = value; } }
    // One the codec takes, one it leaves to the core, and a plain one: the batch goes in whole.
    const sent = await doubler.sendBatch([Object.create({ value: 1 }), new Msg(2), { value: 3 }]);
    const answers = [];
    while (answers.length < 3) answers.push(...(await doubler.receiveBatch({ timeout: 20000 })));
    const fields = { a: "i32" };
    const A = rk.defineMessage("ForInA", fields);
    fields.b = "f32"; // reused for another message: A keeps its one field
    const B = rk.defineMessage("ForInB", fields);
    let reassigned = "no error";
    try { A.fields = fields; } catch (e) { reassigned = e.constructor.name; }
    let inline = null;
    try {
      await rt.launch("forin-inline", { input: { name: "ForInA", fields: { a: "i32", z: "i32" } }, output: B,
        wgsl: "fn handle(m: ForInA) -> ForInB { return ForInB(m.a, 0.0); }" });
    } catch (e) {
      inline = { name: e.name, isType: e instanceof TypeError, says: e.message.includes("'ForInA' is already defined with other fields") };
    }
    const a = await rt.launch("forin-a", { input: A, output: B, wgsl: "fn handle(m: ForInA) -> ForInB { return ForInB(m.a, 0.5); }" }, { autoActivate: true });
    const viaA = await a.call({ a: 4 }, { timeout: 20000 });
    await rt.dispose();
    return { inherited, sent, answers, aKeys: Object.keys(A.fields), bKeys: Object.keys(B.fields),
      frozen: Object.isFrozen(A) && Object.isFrozen(A.fields), reassigned, inline, viaA };
  `);
  assert.deepEqual(value.inherited, { result: 42 });
  assert.equal(value.sent, 3);
  assert.deepEqual(value.answers, [{ result: 2 }, { result: 4 }, { result: 6 }]);
  assert.deepEqual([value.aKeys, value.bKeys], [["a"], ["a", "b"]]);
  assert.equal(value.frozen, true);
  assert.equal(value.reassigned, "TypeError", "a frozen description, in a module's strict code");
  assert.deepEqual(value.inline, { name: "TypeError", isType: true, says: true });
  assert.deepEqual(value.viaA, { a: 4, b: 0.5 });
});

test("under a Content-Security-Policy without 'unsafe-eval' (no codecs), objects give the same answers and refusals", async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${url}/csp.html`);
  await page.waitForFunction(() => window.__csp !== undefined, null, { timeout: 120_000 });
  const out = await page.evaluate(() => window.__csp);
  await page.close();
  assert.equal(out.ok, true, out.error);
  assert.equal(out.codegen, "EvalError", "the policy forbids generated code");
  assert.deepEqual(out.answers, [{ result: 2 }, { result: 4 }, { result: 6 }]);
  assert.deepEqual(out.called, { result: 42 });
  assert.deepEqual(out.inherited, { result: 42 });
  assert.deepEqual(out.mixed, [{ result: 2 }, { result: 4 }]);
  assert.deepEqual(out.refused, { name: "MessageFormatError", field: "[1].value", isClass: true });
  assert.deepEqual(out.body, { position: [0.5, 1, 2], tags: [7, 8], types: ["Array", "Uint32Array"] });
  assert.deepEqual(errors, []);
});

test("drain refuses new work with RuntimeDrainingError and dispose resolves with the shutdown report", async () => {
  const value = await inPage(`
    const catchIt = async (f) => { try { await f(); return "resolved"; } catch (e) { return \`\${e.constructor.name} \${e instanceof rk.RingKernelError}\`; } };
    const rt = await rk.RingKernelRuntime.create({ enableTelemetry: true });
    const before = rt.lifecycleState;
    const doubler = await rt.launch("doubler", null, { autoActivate: true, queueSize: 256 });
    await doubler.sendBatch(Array.from({ length: 100 }, (_, i) => ({ value: i })));
    const first = [];
    while (first.length < 40) first.push(...(await doubler.receiveBatch({ max: 40 - first.length, timeout: 20000 })));
    const draining = rt.drain({ timeout: 20000 });
    const during = rt.lifecycleState;
    const refused = [
      await catchIt(() => doubler.send({ value: 1 })),
      await catchIt(() => rt.sendBatch("doubler", new Int32Array(2))),
      await catchIt(() => doubler.call({ value: 1 })),
      await catchIt(() => rt.launch("echo")),
    ];
    const more = [];
    while (more.length < 30) more.push(...(await doubler.receiveBatch({ max: 30 - more.length, timeout: 20000 })));
    await draining;
    const totalMessages = rt.getSummary().totalMessages;
    const report = await rt.dispose();
    const again = await rt.completeShutdown();
    const after = await catchIt(() => rt.send("doubler", { value: 1 }));
    return { before, during, refused, received: first.length + more.length, totalMessages, report, again, after, stopped: rt.lifecycleState };
  `);
  assert.equal(value.before, "running");
  assert.equal(value.during, "draining");
  assert.deepEqual(value.refused, Array(4).fill("RuntimeDrainingError true"));
  assert.equal(value.received, 70);
  assert.equal(value.totalMessages, 100);
  const { totalUptimeMs, ...counts } = value.report;
  assert.ok(totalUptimeMs > 0, `${totalUptimeMs}`);
  assert.deepEqual(counts, {
    kernelsLaunched: 1, kernelsTerminated: 1, messagesProcessed: 100, messagesUnprocessed: 0,
    answersNeverReceived: 30, deviceLosses: 0, recoveries: 0, migratedKernels: 0,
  });
  assert.deepEqual(value.again, value.report);
  assert.equal(value.after, "RuntimeDisposedError true");
  assert.equal(value.stopped, "stopped");
});

test("circuit breakers refuse with CircuitOpenError and the watchdog lists a stalled kernel", async () => {
  const value = await inPage(`
    const rt = await rk.RingKernelRuntime.create({
      circuitBreaker: { failureThreshold: 2, openMs: 60000 },
      watchdog: { heartbeatTimeoutMs: 150 },
    });
    const doubler = await rt.launch("doubler", null, { autoActivate: true, inputQueueSize: 16, outputQueueSize: 2 });
    const closed = rt.circuitBreaker("doubler");
    for (let i = 0; i < 2; i++) {
      await rt.withCircuitBreaker("doubler", async () => { throw new Error("the caller's failure"); }).catch(() => {});
    }
    const open = rt.circuitBreaker("doubler");
    let refused;
    try { await doubler.send({ value: 1 }); } catch (e) { refused = e; }
    const sent = rt.getTelemetry("doubler").messagesSent;
    await rt.dispose();

    const rt2 = await rk.RingKernelRuntime.create({ watchdog: { heartbeatTimeoutMs: 150 } });
    const stuck = await rt2.launch("doubler", null, { autoActivate: true, inputQueueSize: 16, outputQueueSize: 2 });
    await stuck.sendBatch([1, 2, 3, 4, 5].map((value) => ({ value })));
    // Stuck once its two answers fill its output queue (however long a loaded machine takes to
    // get there); then it makes no progress for longer than the heartbeat timeout.
    while (stuck.status().outputQueueDepth < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setTimeout(resolve, 400));
    const stale = await rt2.scanStaleKernels();
    const metrics = rt2.metricsText();
    const answers = [];
    while (answers.length < 5) answers.push((await stuck.receive({ timeout: 20000 })).result);
    const after = await rt2.scanStaleKernels();
    await rt2.dispose();
    return {
      closed, open: { state: open.state, failures: open.failures, opened: open.opened, retry: open.retryAfterMs > 0 },
      refused: { name: refused?.name, cls: refused instanceof rk.CircuitOpenError, base: refused instanceof rk.RingKernelError,
        kernelId: refused?.kernelId, retry: refused?.retryAfterMs > 0 },
      sent,
      stale: stale.map(({ kernelId, inputDepth, action, sinceProgressMs }) => ({ kernelId, inputDepth, action, late: sinceProgressMs >= 150 })),
      metric: /ringkernel_kernel_stale\\{kernel="doubler"\\} 1/.test(metrics),
      answers, after,
    };
  `);
  assert.deepEqual(value.closed, { state: "closed", failures: 0, opened: 0, retryAfterMs: null });
  assert.deepEqual(value.open, { state: "open", failures: 0, opened: 1, retry: true });
  assert.deepEqual(value.refused, { name: "CircuitOpenError", cls: true, base: true, kernelId: "doubler", retry: true });
  assert.equal(value.sent, 0, "nothing was queued");
  assert.deepEqual(value.stale, [{ kernelId: "doubler", inputDepth: 3, action: "report", late: true }]);
  assert.equal(value.metric, true);
  assert.deepEqual(value.answers, [2, 4, 6, 8, 10]);
  assert.deepEqual(value.after, []);
});

// The runtime in a dedicated module worker, driven from the page as a worker's users drive it:
// a kernel handle's `readable()` and `writable()` transferred to the page with postMessage and
// piped through there; errors posted as `toJSON()` and made again with `RingKernelError.fromJSON`;
// `dispose()` in the worker while the page reads; a worker terminated while its sends and
// receives wait, and a new one after it; `deviceEvents()` iterated in the worker while the page
// calls in; `writeState`/`readState` from the page. Each test opens page/worker-eval.html, whose
// `startWorker()` starts page/worker-eval.js: it runs the code the page posts in the worker (the
// package there as `rk`, `scope` kept between messages) and posts back what it returned, or the
// error's `toJSON()`.
//
// A stream transferred to another realm is piped there through the platform's cross-realm pair
// (the worker keeps the kernel's stream and pipes it to a port), which reads one chunk ahead of
// the page's reader and hands the page's writes over one ahead of the kernel's queue; errors
// cross as structured clones. The tests pin what that means for a kernel's answers and messages,
// as README.md's Workers section says.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { launchChromium } from "../chromium.mjs";
import { startServer } from "../../www/serve.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const installed = join(root, "node_modules", "ringkernel-web");

let browser, server, url;
before(async () => {
  ({ server, url } = await startServer({ routes: { "/": join(root, "page"), "/ringkernel-web/": installed } }));
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  server?.close();
});

/** Runs `fn` (a function of the page, which may call `startWorker()`) on a fresh page; resolves with what it returned. */
async function onPage(fn, arg) {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e}`));
  try {
    await page.goto(`${url}/worker-eval.html`);
    await page.waitForFunction(() => window.__ready === true, null, { timeout: 30_000 });
    const value = await page.evaluate(fn, arg);
    assert.deepEqual(errors, [], "no uncaught errors on the page");
    return value;
  } finally {
    await page.close();
  }
}

/** Code run in the worker first by most tests: a runtime on WebGPU in `scope.runtime`. */
const CREATE = `scope.runtime = await rk.RingKernelRuntime.create(); return { value: scope.runtime.getSummary().backend };`;

test("a kernel's writable and readable, transferred to the page, carry 2000 messages and their answers complete, in order, exactly once", async () => {
  const value = await onPage(async (create) => {
    const { run } = startWorker();
    const backend = await run(create);
    const [writable, readable] = await run(`
      scope.k = await scope.runtime.launch("doubler", null, { autoActivate: true, queueSize: 16 });
      const streams = [scope.k.writable(), scope.k.readable({ timeout: 10000 })];
      return { value: streams, transfer: streams };`);
    const count = 2000;
    const source = new ReadableStream({
      start(controller) {
        for (let i = 0; i < count; i++) controller.enqueue({ value: i });
        controller.close();
      },
    });
    const piping = source.pipeTo(writable);
    const got = [];
    const reader = readable.getReader();
    while (got.length < count) got.push((await reader.read()).value.result);
    await piping;
    reader.releaseLock();
    const status = await run(`return { value: scope.k.status() };`);
    return { backend, wrong: got.flatMap((r, i) => (r === 2 * i ? [] : [[i, r]])), count: got.length, status };
  }, CREATE);
  assert.equal(value.backend, "browserwebgpu");
  assert.deepEqual(value.wrong, []);
  assert.equal(value.count, 2000);
  assert.equal(value.status.messagesProcessed, 2000, "each message processed once");
  assert.equal(value.status.inputQueueDepth, 0);
  assert.equal(value.status.outputQueueDepth, 0, "no answer left over: none came twice, none was lost");
});

test("a transferred writable keeps the kernel's backpressure: the page's writes resolve at most one ahead of the kernel's queue", async () => {
  const value = await onPage(async (create) => {
    const { run } = startWorker();
    await run(create);
    const writable = await run(`
      scope.k = await scope.runtime.launch("doubler", null, { queueSize: 4 });   // launched, not active: nothing is taken
      const w = scope.k.writable(); return { value: w, transfer: [w] };`);
    const writer = writable.getWriter();
    const resolved = [];
    const writes = Array.from({ length: 8 }, (_, i) => writer.write({ value: i }).then(() => resolved.push(i)));
    await new Promise((r) => setTimeout(r, 500));
    const held = { resolved: [...resolved], queued: (await run(`return { value: scope.k.status().inputQueueDepth };`)) };
    // Room for all: every write resolves and every message is queued once, in order.
    const answers = await run(`
      await scope.k.activate();
      const got = [];
      while (got.length < 8) got.push(...(await scope.k.receiveBatch({ timeout: 5000 })).map((a) => a.result));
      return { value: got };`);
    await Promise.all(writes);
    return { held, answers };
  }, CREATE);
  assert.equal(value.held.queued, 4, "the queue's bound");
  assert.deepEqual(value.held.resolved, [0, 1, 2, 3, 4], "one write resolved past the queue: its message waits for room in the worker");
  assert.deepEqual(value.answers, [0, 2, 4, 6, 8, 10, 12, 14]);
});

test("a transferred readable cancelled from the page: the answer its transfer read ahead is gone, the rest stay queued in order", async () => {
  const value = await onPage(async (create) => {
    const { run } = startWorker();
    await run(create);
    const readable = await run(`
      scope.k = await scope.runtime.launch("doubler", null, { autoActivate: true, queueSize: 16 });
      await scope.k.sendBatch([1, 2, 3, 4, 5].map((value) => ({ value })));
      while (scope.k.status().outputQueueDepth < 5) await new Promise((r) => setTimeout(r, 10));
      const r = scope.k.readable(); return { value: r, transfer: [r] };`);
    const reader = readable.getReader();
    const read = [(await reader.read()).value.result, (await reader.read()).value.result];
    await new Promise((r) => setTimeout(r, 200));
    const queuedBeforeCancel = await run(`return { value: scope.k.status().outputQueueDepth };`);
    await reader.cancel("enough");
    await new Promise((r) => setTimeout(r, 200));
    const left = await run(`return { value: (await scope.k.receiveBatch({ timeout: 1000 })).map((a) => a.result) };`);
    return { read, queuedBeforeCancel, left };
  }, CREATE);
  assert.deepEqual(value.read, [2, 4]);
  // In the worker a cancelled readable loses none (a high-water mark of 0); transferred, the
  // worker's end of the pipe to the page has read answer 6 already, and the cancel drops it.
  assert.equal(value.queuedBeforeCancel, 2, "the transfer took one answer the page had not asked for");
  assert.deepEqual(value.left, [8, 10], "the rest stay queued, in order");
});

test("a transferred writable aborted from the page: every message whose write resolved is queued once there is room, and the abort waits for a write under way", async () => {
  const value = await onPage(async (create) => {
    const { run } = startWorker();
    await run(create);
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    const writable = await run(`
      scope.k = await scope.runtime.launch("doubler", null, { queueSize: 2 });
      const w = scope.k.writable(); return { value: w, transfer: [w] };`);
    const writer = writable.getWriter();
    // Three writes: two queued, the third handed to the worker, where it waits for room.
    const resolved = [];
    await Promise.all([0, 1, 2].map((i) => writer.write({ value: i }).then(() => resolved.push(i))));
    const aborted = writer.abort("stop").then(() => "aborted");
    const soon = await Promise.race([aborted, sleep(300).then(() => "pending")]);
    await sleep(200);
    const queued = await run(`const before = scope.k.status().inputQueueDepth; await scope.k.activate();
      const got = []; while (got.length < 3) got.push(...(await scope.k.receiveBatch({ timeout: 5000 })).map((a) => a.result));
      await new Promise((r) => setTimeout(r, 300)); return { value: [before, got, scope.k.status().messagesProcessed] };`);
    // With a write under way (waiting for the worker to take it) the page's abort waits for it.
    const writable2 = await run(`await scope.k.deactivate(); const w = scope.k.writable(); return { value: w, transfer: [w] };`);
    const writer2 = writable2.getWriter();
    const writes2 = [0, 1, 2, 3].map((i) => writer2.write({ value: 10 + i }).then(() => "resolved", () => "rejected"));
    await sleep(300);
    const aborted2 = writer2.abort("stop").then(() => "aborted");
    const whileFull = await Promise.race([aborted2, sleep(1000).then(() => "pending")]);
    await run(`await scope.k.activate(); return {};`);
    const afterRoom = await Promise.race([aborted2, sleep(3000).then(() => "pending")]);
    const settled = await Promise.all(writes2);
    await sleep(300);
    // Its output queue holds two answers: what is not processed yet waits in its input queue.
    const processed = await run(`const { messagesProcessed, inputQueueDepth } = scope.k.status(); return { value: messagesProcessed + inputQueueDepth };`);
    return { resolved, soon, queued, whileFull, afterRoom, settled, processed };
  }, CREATE);
  assert.deepEqual(value.resolved, [0, 1, 2], "every write resolved on the page");
  assert.equal(value.soon, "aborted", "no write was under way on the page: its abort ends at once");
  // The worker's end of the pipe finishes the write it has (the send waiting for room) before
  // it aborts the kernel's writable: the page's abort does not end that wait.
  assert.deepEqual(value.queued, [2, [0, 2, 4], 3], "the third message, whose write resolved, is queued once there is room, once");
  assert.equal(value.whileFull, "pending", "a page's abort waits for its write under way, which waits for the kernel to take one");
  assert.equal(value.afterRoom, "aborted");
  assert.deepEqual(value.settled.slice(0, 3), ["resolved", "resolved", "resolved"]);
  assert.equal(value.processed, 3 + value.settled.filter((s) => s === "resolved").length, "each message whose write resolved was queued, once; none other");
});

test("an error crossing a transferred readable reaches the page as a plain Error: its message only, not its class or details", async () => {
  const value = await onPage(async (create) => {
    const { run } = startWorker();
    await run(create);
    const readable = await run(`
      scope.k = await scope.runtime.launch("doubler", null, { autoActivate: true });
      const r = scope.k.readable({ timeout: 100 }); return { value: r, transfer: [r] };`);
    // No read for 1 s: the worker's end of the pipe waits meanwhile, and its wait times out
    // (100 ms) and its error crosses to the page, with time to spare on a loaded machine.
    await new Promise((r) => setTimeout(r, 1000));
    const asked = performance.now();
    const error = await readable.getReader().read().then(() => null, (e) => e);
    return { name: error?.name, message: error?.message, kernelId: error?.kernelId, ringKernelError: error instanceof rk.RingKernelError,
      erroredBeforeTheRead: performance.now() - asked < 50 };
  }, CREATE);
  assert.deepEqual(value, { name: "Error", message: "receive on kernel 'doubler' timed out after 100 ms", kernelId: undefined, ringKernelError: false,
    erroredBeforeTheRead: true });
});

test("errors posted as toJSON() are made again on the page by RingKernelError.fromJSON: class, details, a batch's cause, a call's sent, several kernels' errors", async () => {
  const value = await onPage(async (create) => {
    const { run } = startWorker();
    await run(create);
    const caught = (code) => run(code).then(() => null, (data) => ({ data, error: rk.RingKernelError.fromJSON(data) }));
    const batch = await caught(`
      const k = await scope.runtime.launch("doubler", null, { queueSize: 2 });
      await k.sendBatch([1, 2, 3].map((value) => ({ value })), { signal: AbortSignal.timeout(100) });`);
    const call = await caught(`await (await scope.runtime.launch("echo")).call({ value: 1 }, { timeout: 100 });`);   // queued, never active
    const several = await caught(`
      const def = { input: rk.defineMessage("Request", { value: "i32" }), output: rk.defineMessage("Response", { result: "i32" }),
                    wgsl: "fn handle(r: Request) -> Response { return Response(r.value * 2); }" };
      for (const id of ["a", "b"]) await (await scope.runtime.launch(id, def)).sendBatch([{ value: 1 }, { value: 2 }]);
      await scope.runtime.terminateAll({ timeout: 0 });`);
    const viaJson = (e) => rk.RingKernelError.fromJSON(JSON.parse(JSON.stringify(e)));
    const b = batch.error;
    return {
      batch: [b instanceof rk.QueueFullError, b.kernelId, b.accepted, b.cause?.name],
      batchViaJson: [viaJson(b) instanceof rk.QueueFullError, viaJson(b).accepted, viaJson(b).cause?.name],
      call: [call.error instanceof rk.TimeoutError, call.error.sent, call.error.kernelId],
      several: [several.error instanceof rk.TimeoutError, several.error.unprocessed,
        several.error.errors.map((e) => [e instanceof rk.TimeoutError, e.kernelId, e.unprocessed])],
      severalViaJson: viaJson(several.error).errors.map((e) => [e instanceof rk.TimeoutError, e.kernelId]),
    };
  }, CREATE);
  assert.deepEqual(value.batch, [true, "doubler", 2, "TimeoutError"], "the signal's reason (a DOMException) is its cause");
  assert.deepEqual(value.batchViaJson, [true, 2, "TimeoutError"], "JSON.stringify(error) gives the same data as toJSON(), its cause's name included");
  assert.deepEqual(value.call, [true, true, "echo"]);
  // Every kernel left undrained: the batch's two, the call's one, and two of two each.
  const kernels = [["a", 2], ["b", 2], ["doubler", 2], ["echo", 1]];
  assert.deepEqual(value.several, [true, 7, kernels.map(([id, n]) => [true, id, n])]);
  assert.deepEqual(value.severalViaJson, kernels.map(([id]) => [true, id]));
});

test("dispose() in the worker while the page reads a transferred readable closes the stream, and the answers read are right", async () => {
  const value = await onPage(async (create) => {
    const { run } = startWorker();
    await run(create);
    const readable = await run(`
      scope.k = await scope.runtime.launch("doubler", null, { autoActivate: true, queueSize: 64 });
      const r = scope.k.readable(); return { value: r, transfer: [r] };`);
    const reader = readable.getReader();
    const got = [];
    const reading = (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return "closed";
        got.push(value.result);
      }
    })().catch((e) => `errored: ${e?.name}: ${e?.message}`);
    await new Promise((r) => setTimeout(r, 200));
    const report = await run(`
      scope.k.sendBatch(Array.from({ length: 10 }, (_, value) => ({ value })));
      return { value: await scope.runtime.dispose() };`);
    const ended = await Promise.race([reading, new Promise((r) => setTimeout(() => r("still open"), 5000))]);
    return { ended, got, report };
  }, CREATE);
  assert.equal(value.ended, "closed");
  assert.deepEqual(value.got, value.got.map((_, i) => 2 * i), "in order, from the first");
  assert.equal(value.report.messagesProcessed, 10);
  assert.equal(value.report.answersNeverReceived + value.got.length, 10, "every answer read or counted as never received");
});

test("a worker terminated while its sends and receives wait: a new worker on the same page gets a working runtime", async () => {
  const value = await onPage(async (create) => {
    const first = startWorker();
    await first.run(create);
    await first.run(`scope.k = await scope.runtime.launch("doubler", null, { queueSize: 2 }); return {};`);
    first.run(`await scope.k.sendBatch([1, 2, 3, 4].map((value) => ({ value }))); return {};`).catch(() => {});
    first.run(`await scope.k.receive(); return {};`).catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    first.worker.terminate();
    const second = startWorker();
    const backend = await second.run(create);
    const answers = await second.run(`
      const k = await scope.runtime.launch("doubler", null, { autoActivate: true });
      const calls = await Promise.all(Array.from({ length: 100 }, (_, value) => k.call({ value }, { timeout: 10000 })));
      await scope.runtime.dispose();
      return { value: calls.map((a) => a.result) };`);
    return { backend, wrong: answers.flatMap((r, i) => (r === 2 * i ? [] : [[i, r]])), count: answers.length };
  }, CREATE);
  assert.equal(value.backend, "browserwebgpu");
  assert.deepEqual(value.wrong, []);
  assert.equal(value.count, 100);
});

test("deviceEvents() iterated in the worker while the page calls in: a loss and its recovery, calls answered around them, the loop's end", async () => {
  const value = await onPage(async (create) => {
    const { run } = startWorker();
    await run(create);
    await run(`
      scope.k = await scope.runtime.launch("doubler", null, { autoActivate: true });
      scope.events = [];
      scope.controller = new AbortController();
      scope.loop = (async () => { for await (const e of scope.runtime.deviceEvents()) scope.events.push(e); return "ended"; })();
      scope.aborted = (async () => { for await (const e of scope.runtime.deviceEvents({ signal: scope.controller.signal })) {} })().then(() => "ended", (e) => e.name);
      return {};`);
    const call = (v) => run(`return { value: (await scope.k.call({ value: ${v} }, { timeout: 5000 })).result };`);
    const before = await Promise.all([1, 2, 3].map(call));
    await run(`scope.runtime.destroyDevice(); return {};`);
    await new Promise((r) => setTimeout(r, 300));
    const lost = await run(`return { value: await scope.k.call({ value: 4 }, { timeout: 500 }) };`).then(() => null, (d) => rk.RingKernelError.fromJSON(d).name);
    await run(`await scope.runtime.recover(); scope.controller.abort(); return {};`);
    const afterwards = await Promise.all([5, 6].map(call));
    const ended = await run(`
      await scope.runtime.dispose();
      return { value: { loop: await scope.loop, aborted: await scope.aborted, events: scope.events.map((e) => [e.seq, e.kind, e.device, e.kernels, e.missed, Object.keys(e).sort()]) } };`);
    return { before, lost, afterwards, ...ended };
  }, CREATE);
  assert.deepEqual(value.before, [2, 4, 6]);
  assert.equal(value.lost, "DeviceLostError");
  assert.deepEqual(value.afterwards, [10, 12]);
  assert.equal(value.loop, "ended", "the loop ends once the runtime is disposed");
  assert.equal(value.aborted, "AbortError", "a loop whose signal the page had aborted (through a message) throws its reason");
  const keys = ["device", "kernels", "kind", "missed", "reason", "seq", "timestampMs"];
  assert.deepEqual(value.events, [[1, "lost", 0, ["doubler"], 0, keys], [2, "recovered", 0, ["doubler"], 0, keys]]);
});

test("writeState and readState from the page through messages: the state read is a copy the worker can transfer", async () => {
  const value = await onPage(async (create) => {
    const { run } = startWorker();
    await run(create);
    await run(`
      const In = rk.defineMessage("Tick", { value: "u32" });
      const Out = rk.defineMessage("Tock", { value: "u32" });
      scope.counter = await scope.runtime.launch("counter", { input: In, output: Out, state: { length: 4 },
        wgsl: "fn handle(m: Tick) -> Tock { return Tock(atomicAdd(&state[0], m.value)); }" }, { autoActivate: true });
      return {};`);
    const values = new Uint32Array([10, 20]);
    await run(`await scope.counter.writeState(args, 1); return {};`, values);
    const transferred = await run(`
      await scope.counter.sendBatch([{ value: 1 }, { value: 2 }, { value: 3 }]);
      let got = 0; while (got < 3) got += (await scope.counter.receiveBatch({ timeout: 5000 })).length;
      const s = await scope.counter.readState();
      return { value: s, transfer: [s.buffer] };`);
    const again = await run(`return { value: [...await scope.counter.readState()] };`);
    return { transferred: [transferred.constructor.name, ...transferred], again };
  }, CREATE);
  assert.deepEqual(value.transferred, ["Uint32Array", 6, 10, 20, 0]);
  assert.deepEqual(value.again, [6, 10, 20, 0], "transferring the array read left the kernel's state and the runtime as they were");
});

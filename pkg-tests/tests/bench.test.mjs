// The browser bench (www/bench.html through pkg-tests/bench.mjs) in quick mode: the JSON has every
// section, in the native bench's shape where the measurements are the same, with positive finite
// numbers and every answer checked; a wrong answer fails it. Numbers only: no speed is asserted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { runBenchPage } from "../bench.mjs";
import { launchChromium } from "../chromium.mjs";
import { rawFloorCheck } from "../../www/bench-stats.js";
import { startServer } from "../../www/serve.mjs";
import { merge, ISSUE_19_GOALS } from "../../scripts/bench-merge.mjs";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";

const here = dirname(fileURLToPath(import.meta.url));
const runner = join(here, "..", "bench.mjs");
const root = join(here, "..", "..");

/** The top-level keys of native/src/bench/report.rs's Report, in its order. */
const NATIVE_KEYS = ["adapter", "config", "floors", "roundTrip", "throughput", "perMessage", "kernels", "cpuBackend", "ratios"];

const positive = (value, what) => assert.ok(Number.isFinite(value) && value > 0, `${what} is ${value}`);

function assertLatency(l, what, samples) {
  assert.equal(l.unit, "us", what);
  if (samples !== undefined) assert.equal(l.samples, samples, `${what}.samples`);
  for (const key of ["min", "p50", "p99", "max", "mean"]) positive(l[key], `${what}.${key}`);
  assert.ok(l.min <= l.p50 && l.p50 <= l.p99 && l.p99 <= l.max, `${what}: min ≤ p50 ≤ p99 ≤ max: ${JSON.stringify(l)}`);
}

function assertThroughput(t, what, messages) {
  assert.equal(t.unit, "msgs/s", what);
  assert.equal(t.messages, messages, `${what}.messages`);
  assert.ok(Number.isInteger(t.repetitions) && t.repetitions >= 1, `${what}.repetitions`);
  for (const key of ["msgsPerSec", "medianMs", "bestMs"]) positive(t[key], `${what}.${key}`);
}

test("bench.mjs --json --quick prints one JSON document with every section, every answer checked", async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [runner, "--json", "--quick"], { timeout: 120_000 });
  const r = JSON.parse(stdout); // stdout is the document and nothing else
  assert.equal(r.error, undefined, r.error);
  for (const key of [...NATIVE_KEYS, "pipeline", "stateCheckpoint", "jsActor", "hostPacking", "hostCost", "devices", "answersChecked"]) assert.ok(key in r, `missing ${key}`);
  assert.equal(r.stateCheckpoint.stateBytes, 4 << 20);
  assertLatency(r.stateCheckpoint.everyTick, "stateCheckpoint.everyTick", r.config.iterations);
  assertLatency(r.stateCheckpoint.never, "stateCheckpoint.never", r.config.iterations);
  // Two devices: migration pauses (a pause may read 0 on a coarse clock) and the pipelines.
  const d = r.devices;
  assert.equal(d.migrations, 10);
  assert.equal(d.pause.samples, 10);
  assert.ok(d.pause.min >= 0 && d.pause.p50 <= d.pause.p99, JSON.stringify(d.pause));
  assertLatency(d.migrate, "devices.migrate", 10);
  assertLatency(d.pipelineAcrossDevices, "devices.pipelineAcrossDevices");
  assertLatency(d.pipelineOneDevice, "devices.pipelineOneDevice");

  assert.equal(r.adapter.backend, "browserwebgpu");
  for (const key of ["name", "driver", "deviceType"]) assert.equal(typeof r.adapter[key], "string", `adapter.${key}`);
  assert.equal(typeof r.adapter.webgpu.isFallbackAdapter, "boolean");

  const c = r.config;
  assert.equal(c.quick, true);
  assert.deepEqual(c.batchSizes, [1, 1000, 10_000]);
  assert.deepEqual(c.kernelCounts, [1, 16]);
  for (const key of ["iterations", "naiveCount", "queueSize", "timerResolutionUs", "packingMessages", "hostCostMessages"]) positive(c[key], `config.${key}`);

  assertLatency(r.floors.submitAndMap, "floors.submitAndMap", c.iterations);
  assertLatency(r.floors.rawSingle, "floors.rawSingle", c.iterations);
  assertLatency(r.roundTrip.sendReceive, "roundTrip.sendReceive", c.iterations);
  assertLatency(r.roundTrip.call, "roundTrip.call", c.iterations);
  // Where a round trip goes: each lane split at its map, at least one map per round trip (a host
  // part may read 0 on a 5 µs clock; the wait never does).
  for (const lane of ["rawSingle", "sendReceive", "call"]) {
    const split = r.roundTripBreakdown[lane];
    assert.ok(split.mapsPerRoundTrip >= 1, `roundTripBreakdown.${lane}.mapsPerRoundTrip is ${split.mapsPerRoundTrip}`);
    assertLatency(split.wait, `roundTripBreakdown.${lane}.wait`, c.iterations);
    for (const part of ["before", "after"]) {
      const l = split[part];
      assert.equal(l.samples, c.iterations, `roundTripBreakdown.${lane}.${part}.samples`);
      assert.ok(l.min >= 0 && l.min <= l.p50 && l.p50 <= l.max, `roundTripBreakdown.${lane}.${part}: ${JSON.stringify(l)}`);
    }
  }

  assert.deepEqual(r.throughput.map((b) => b.messages), c.batchSizes);
  for (const b of r.throughput) {
    assertThroughput(b.runtime, `throughput[${b.messages}].runtime`, b.messages);
    assertThroughput(b.raw, `throughput[${b.messages}].raw`, b.messages);
    assertThroughput(b.rawSameGrid, `throughput[${b.messages}].rawSameGrid`, b.messages);
    // The runtime's grid on a software adapter: at most 64 workgroups (src/backend/gpu/kernel.rs).
    assert.ok(Number.isInteger(b.rawSameGrid.workgroups) && b.rawSameGrid.workgroups >= 1, "rawSameGrid.workgroups");
    if (r.adapter.deviceType === "Cpu") assert.ok(b.rawSameGrid.workgroups <= 64, `${b.rawSameGrid.workgroups} workgroups`);
  }

  assert.equal(r.perMessage.messages, c.naiveCount);
  positive(r.perMessage.msgsPerSec, "perMessage.msgsPerSec");
  assertLatency(r.perMessage.latency, "perMessage.latency", c.naiveCount);

  assert.deepEqual(r.kernels.map((k) => k.kernels), c.kernelCounts);
  for (const k of r.kernels) {
    assertLatency(k.tick, `kernels[${k.kernels}].tick`, c.iterations);
    // Every round ran at least one tick, and the runtime's tick telemetry says where they went.
    assert.ok(k.ticksPerRound >= 1, `kernels[${k.kernels}].ticksPerRound: ${k.ticksPerRound}`);
    for (const step of ["plan", "submit", "wait", "deliver"]) {
      assert.ok(Number.isFinite(k.steps[step]) && k.steps[step] >= 0, `kernels[${k.kernels}].steps.${step}: ${k.steps[step]}`);
    }
    positive(k.steps.wait, `kernels[${k.kernels}].steps.wait`);
  }
  assertLatency(r.kernelRoundsTakingTurns.one, "kernelRoundsTakingTurns.one", c.iterations);
  assertLatency(r.kernelRoundsTakingTurns.sixteen, "kernelRoundsTakingTurns.sixteen", c.iterations);

  const p = r.pipeline;
  assert.equal(p.stages, 4);
  assertLatency(p.singleStage, "pipeline.singleStage", c.iterations);
  assertLatency(p.hostRelayed, "pipeline.hostRelayed", c.iterations);
  if (p.available) {
    assertLatency(p.connected, "pipeline.connected", c.iterations);
    assertLatency(p.unfused, "pipeline.unfused", c.iterations);
    assertLatency(p.pausedMiddleStage, "pipeline.pausedMiddleStage", c.iterations);
    assert.equal(p.fused, true, "the connected pipeline ran fused");
  } else assert.match(p.reason, /connect/);

  assertLatency(r.jsActor.sendReceive, "jsActor.sendReceive", c.iterations);
  assert.deepEqual(r.jsActor.throughput.map((t) => t.messages), c.batchSizes);
  for (const t of r.jsActor.throughput) assertThroughput(t, `jsActor.throughput[${t.messages}]`, t.messages);

  // The doubler is built in with a host handler, so the cpu backend is there in every browser.
  assert.equal(r.cpuBackend.available, true, r.cpuBackend.reason);
  assertLatency(r.cpuBackend.sendReceive, "cpuBackend.sendReceive", c.iterations);
  assert.deepEqual(r.cpuBackend.throughput.map((t) => t.messages), c.batchSizes);
  for (const t of r.cpuBackend.throughput) assertThroughput(t, `cpuBackend.throughput[${t.messages}]`, t.messages);

  const h = r.hostPacking;
  assert.equal(h.messages, c.packingMessages);
  assert.equal(h.messageBytes, 4);
  assertThroughput(h.typedArray, "hostPacking.typedArray", h.messages);
  assertThroughput(h.objects, "hostPacking.objects", h.messages);

  const cost = r.hostCost;
  assert.equal(cost.messages, c.hostCostMessages);
  positive(cost.sendUs, "hostCost.sendUs");
  positive(cost.receiveUs, "hostCost.receiveUs");
  positive(cost.sendEnvelopeUs, "hostCost.sendEnvelopeUs");
  positive(cost.receiveEnvelopeUs, "hostCost.receiveEnvelopeUs");
  positive(cost.burstUs, "hostCost.burstUs");

  // Objects in and out next to typed arrays (and the JS actor for the doubler), per layout.
  const o = r.objects;
  assert.equal(o.messages, c.objectMessages);
  assert.deepEqual(Object.keys(o.layouts), ["doubler", "vec3", "nested"]);
  for (const [layout, lanes] of Object.entries(o.layouts)) {
    assert.deepEqual(Object.keys(lanes), layout === "doubler" ? ["objects", "typedArrays", "jsActor"] : ["objects", "typedArrays"]);
    for (const [lane, t] of Object.entries(lanes)) assertThroughput(t, `objects.${layout}.${lane}`, o.messages);
  }

  const q = r.ratios;
  for (const key of ["roundTripExtraHostUs", "callExtraHostUs"]) {
    const e = q[key];
    assert.ok([e.before, e.after, e.total].every(Number.isFinite) && e.total === e.before + e.after, `ratios.${key}: ${JSON.stringify(e)}`);
  }
  assert.deepEqual(q.batchedOverRaw.map((s) => s.messages), c.batchSizes);
  for (const s of q.batchedOverRaw) positive(s.value, `ratios.batchedOverRaw[${s.messages}]`);
  assert.deepEqual(q.batchedOverRawSameGrid.map((s) => s.messages), c.batchSizes);
  for (const s of q.batchedOverRawSameGrid) positive(s.value, `ratios.batchedOverRawSameGrid[${s.messages}]`);
  assert.equal(q.batchedOverPerMessage.messages, 10_000);
  for (const key of ["roundTripOverRawSingle", "roundTripOverSubmitAndMap", "tick16OverTick1", "tick16OverTick1Paired",
    "hostRelayedOverSingleStage", "checkpointEveryTickOverNever",
    "hostPackingTypedOverObjects", "hostPackingOverTarget", "objectsOverTypedArrays", "objectsOverJsActor"]) positive(q[key], `ratios.${key}`);
  positive(q.batchedOverPerMessage.value, "ratios.batchedOverPerMessage");
  for (const key of ["pipelineOverSingleStage", "unfusedOverSingleStage", "pausedMiddleOverSingleStage"]) {
    if (p.available) positive(q[key], `ratios.${key}`);
    else assert.equal(q[key], null);
  }

  // Every batch of every size was checked answer by answer, the million-message ones included.
  const batches = r.throughput.reduce((n, b) => n + b.messages * (b.runtime.repetitions + b.raw.repetitions), 0);
  assert.ok(r.answersChecked > batches + 2 * h.messages, `${r.answersChecked} answers checked`);
});

test("a raw one-message floor slower than the same work timed among the batches, or than the runtime's own round trip, is suspect", () => {
  // SwiftShader's raw single dispatch is bimodal (~0.3 or ~2.3 ms, all in the map's wait): a ratio
  // over the slow one read 0.17×, the runtime six times faster than hand-written WebGPU.
  const batches = (batchOfOneMs) => [{ messages: 1, raw: { medianMs: batchOfOneMs } }, { messages: 100, raw: { medianMs: 0.5 } }];
  const check = (floorUs, batchOfOneMs, roundTripUs) => rawFloorCheck({ p50: floorUs }, batches(batchOfOneMs), { p50: roundTripUs });
  assert.equal(check(300, 0.28, 400).suspect, false, "a floor as fast as the batch of 1 and under the round trip");
  assert.equal(check(2300, 0.3, 400).suspect, true, "slower than the batch of 1");
  assert.equal(check(2300, 2.2, 400).suspect, true, "the batch of 1 slow too: slower than the runtime's round trip");
  assert.deepEqual(check(400, 0.3, 500), { floorUs: 400, batchOfOneUs: 300, overBatchOfOne: 400 / 300, overRoundTrip: 0.8, suspect: false });
  assert.equal(rawFloorCheck({ p50: 300 }, [{ messages: 100, raw: { medianMs: 0.5 } }], { p50: 400 }), null, "no batch of 1");
});

test("a wrong answer fails the bench, naming it, with what was measured before", async () => {
  const outcome = await runBenchPage({ quick: true, query: { corrupt: "1" }, timeoutMs: 60_000 });
  assert.equal(outcome.ok, false);
  assert.match(outcome.error.message, /floor: raw doubler, 1 message: message 0 of 1: -?\d+ × 2 is -?\d+, got -?\d+/);
  assert.equal(outcome.result.adapter.backend, "browserwebgpu");
  assert.equal(outcome.result.config.quick, true);
  assert.equal(outcome.result.ratios, undefined);
});

test("node www/serve.mjs serves the bench page with /shaders/, cross-origin isolated; bad paths get 400 and 403 and it stays up", async () => {
  const server = spawn(process.execPath, [join(root, "www", "serve.mjs"), "0"], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const [line] = await once(server.stdout, "data");
    const url = String(line).match(/http:\/\/localhost:\d+/)[0];
    const bench = await fetch(`${url}/bench.html`);
    assert.equal(bench.status, 200);
    assert.equal(bench.headers.get("cross-origin-opener-policy"), "same-origin");
    assert.equal(bench.headers.get("cross-origin-embedder-policy"), "require-corp");
    const shader = await fetch(`${url}/shaders/bench/raw_doubler.wgsl`);
    assert.equal(shader.status, 200, "the raw baseline's WGSL");
    assert.match(await shader.text(), /fn double_values/);
    assert.equal((await fetch(`${url}/%E0%A4%A`)).status, 400, "a malformed URL");
    // A decoded `..` that climbs out of a route's directory is refused.
    assert.equal((await fetch(`${url}/shaders/..%2fREADME.md`)).status, 403);
    assert.equal((await fetch(`${url}/..%2fREADME.md`)).status, 403);
    assert.equal((await fetch(`${url}/`)).status, 200, "still serving");
  } finally {
    server.kill();
  }
});

test("startServer keeps each route in its directory: /pkg/..%2fpkg-tests/ is refused", async () => {
  const { server, url } = await startServer({ routes: { "/": join(root, "www"), "/pkg/": join(root, "pkg") } });
  try {
    assert.equal((await fetch(`${url}/pkg/package.json`)).status, 200);
    assert.equal((await fetch(`${url}/pkg/..%2fpkg-tests/package.json`)).status, 403);
  } finally {
    server.close();
  }
});

test("scripts/bench.sh's document puts issue 19's ratios side by side per report, naming what a run did not measure", () => {
  const parts = mkdtempSync(join(tmpdir(), "bench-parts-"));
  try {
    const sized = (values) => values.map(([messages, value]) => ({ messages, value }));
    const adapter = (backend) => ({ name: "an adapter", backend, deviceType: "DiscreteGpu" });
    const write = (name, value) => writeFileSync(join(parts, name), typeof value === "string" ? value : JSON.stringify(value));
    write("info.json", { adapters: [adapter("vulkan")] });
    write("native-vulkan.json", {
      adapter: adapter("vulkan"), config: { batchSizes: [1, 100_000, 1_000_000] },
      ratios: {
        batchedOverRaw: sized([[1, 0.5], [100_000, 0.85], [1_000_000, 0.95]]),
        roundTripOverRawSingle: 2, roundTripOverRawSinglePaired: 1.05,
        pipelineOverSingleStage: 2, pipelineOverSingleStagePaired: 1.02,
        tick16OverTick1: 2, tick16OverTick1Paired: 1.2,
      },
    });
    write("native-gl.json", "");
    write("native-gl.err", "thread 'main' panicked\nsomething went wrong");
    // A quick browser run over a suspect raw floor.
    write("browser.json", {
      adapter: adapter("browserwebgpu"), config: { batchSizes: [1, 1000, 10_000] },
      ratios: {
        batchedOverRaw: sized([[1, 0.5], [1000, 0.7], [10_000, 0.9]]),
        roundTripOverRawSingle: 0.2, rawSingleFloor: { suspect: true },
        pipelineOverSingleStage: 1.04, tick16OverTick1: 3, tick16OverTick1Paired: 1.3,
      },
    });
    const { document, failures } = merge(parts);
    assert.deepEqual(Object.keys(document), ["machine", "adapters", "native", "browser", "issue19", "failures"]);
    assert.deepEqual(failures.map((f) => f.bench), ["native gl"]);
    assert.match(failures[0].error, /something went wrong/);
    assert.deepEqual(document.issue19.goals.map((g) => g.name), ISSUE_19_GOALS.map((g) => g.name));
    assert.deepEqual(Object.keys(document.issue19.reports), ["native vulkan", "browser"]);
    const native = document.issue19.reports["native vulkan"];
    assert.deepEqual(native.values, {
      batchedOverRaw100k: 0.85, batchedOverRaw1M: 0.95, roundTripOverRawSingle: 1.05, pipelineOverSingleStage: 1.02, tick16OverTick1: 1.2,
    });
    assert.equal(native.from.roundTripOverRawSingle, "roundTripOverRawSinglePaired");
    assert.equal(native.missing, undefined);
    assert.match(native.adapter, /an adapter \(vulkan, DiscreteGpu\)/);
    const browser = document.issue19.reports.browser;
    assert.deepEqual(browser.values, {
      batchedOverRaw100k: null, batchedOverRaw1M: null, roundTripOverRawSingle: null, pipelineOverSingleStage: 1.04, tick16OverTick1: 1.3,
    });
    assert.match(browser.missing.batchedOverRaw1M, /no batch of 1000000.*--quick/);
    assert.match(browser.missing.roundTripOverRawSingle, /suspect/);
  } finally {
    rmSync(parts, { recursive: true, force: true });
  }
});

/** The bench page (www/) served with the installed package (or pkg/ before it is installed) and the shaders. */
function serveBenchPage() {
  const installed = join(here, "..", "node_modules", "ringkernel-web");
  return startServer({
    routes: { "/": join(root, "www"), "/pkg/": existsSync(installed) ? installed : join(root, "pkg"), "/shaders/": join(root, "shaders") },
  });
}

test("the raw baseline asks for the adapter the runtime gets: the same power preference", async () => {
  // On a machine with two GPUs the browser picks by power preference: a raw baseline asking for
  // none would run on the integrated GPU while the runtime (high-performance by default) runs on
  // the discrete one, and every ratio would compare two adapters.
  const { server, url } = await serveBenchPage();
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.addInitScript(() => {
      const original = GPU.prototype.requestAdapter;
      window.__adapterRequests = [];
      GPU.prototype.requestAdapter = function requestAdapter(options) {
        window.__adapterRequests.push(options?.powerPreference ?? "none");
        return original.call(this, options);
      };
    });
    await page.goto(`${url}/bench.html`);
    const requests = await page.evaluate(async () => {
      const { default: init, RingKernelRuntime } = await import("/pkg/index.js");
      const { RawGpu } = await import("/bench-raw.js");
      await init();
      window.__adapterRequests = [];
      const runtime = await RingKernelRuntime.create();
      const raw = await RawGpu.open();
      await runtime.dispose();
      raw.destroy();
      return window.__adapterRequests;
    });
    assert.equal(requests.length, 2, JSON.stringify(requests));
    assert.equal(requests[1], requests[0], `the runtime asked for ${requests[0]}, the raw baseline for ${requests[1]}`);
  } finally {
    await browser.close();
    server.close();
  }
});

test("without a WebGPU adapter the bench page says so, runs what needs none, and an unchecked quick box means a full run", async () => {
  const { server, url } = await serveBenchPage();
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    // What Chromium on Linux without --enable-unsafe-webgpu does: navigator.gpu is there, and it
    // offers no adapter.
    await page.addInitScript(() => { GPU.prototype.requestAdapter = async () => null; });
    await page.goto(`${url}/bench.html?quick=1&iterations=3&naive=3`);
    await page.waitForFunction(() => document.getElementById("adapter").textContent.startsWith("none"), null, { timeout: 10_000 });
    assert.match(await page.textContent("#adapter"), /^none: navigator\.gpu gave no adapter/);
    assert.equal(await page.isChecked("#quick"), true, "the URL's quick=1 checks the box");
    await page.uncheck("#quick");
    await page.click("#run");
    await page.waitForFunction(() => window.__bench !== undefined, null, { timeout: 300_000, polling: 250 });
    const outcome = await page.evaluate(() => window.__bench);
    assert.equal(outcome.ok, true, JSON.stringify(outcome.error));
    const r = outcome.result;
    assert.equal(r.config.quick, false, "the unchecked box wins over the URL");
    assert.deepEqual(r.config.batchSizes, [1, 1000, 100_000, 1_000_000]);
    assert.equal(r.adapter, null);
    assert.equal(r.webgpu.available, false);
    assert.match(r.webgpu.reason, /gave no adapter/);
    assert.match(r.webgpu.error, /^BackendUnavailableError/);
    for (const key of ["floors", "roundTrip", "throughput", "perMessage", "kernels", "pipeline", "hostCost", "objects", "devices"]) {
      assert.equal(r[key], undefined, `${key} needs WebGPU`);
    }
    assertLatency(r.jsActor.sendReceive, "jsActor.sendReceive", r.config.iterations);
    for (const t of r.jsActor.throughput) assertThroughput(t, `jsActor.throughput[${t.messages}]`, t.messages);
    assert.equal(r.cpuBackend.available, true, r.cpuBackend.reason);
    for (const t of r.cpuBackend.throughput) assertThroughput(t, `cpuBackend.throughput[${t.messages}]`, t.messages);
    assert.equal(r.hostPacking.backend, "cpu");
    assertThroughput(r.hostPacking.typedArray, "hostPacking.typedArray", r.hostPacking.messages);
    assertThroughput(r.hostPacking.objects, "hostPacking.objects", r.hostPacking.messages);
    // Host-side steps are timed in groups long enough for the clock: no median is one clock step.
    const tickMs = r.config.timerResolutionUs / 1e3;
    for (const t of [...r.jsActor.throughput, ...r.cpuBackend.throughput, r.hostPacking.typedArray, r.hostPacking.objects]) {
      assert.ok(t.medianMs * (t.groupSize ?? 1) >= 10 * tickMs, `a sample of ${t.messages} lasts ${t.medianMs * (t.groupSize ?? 1)} ms`);
    }
    positive(r.ratios.hostPackingTypedOverObjects, "ratios.hostPackingTypedOverObjects");
    assert.equal(r.ratios.roundTripOverRawSingle, undefined);
    const table = await page.textContent("#rows");
    assert.match(table, /WebGPU sections\s*not measured/);
    assert.match(await page.textContent("#report"), /WebGPU: not measured \(navigator\.gpu gave no adapter/);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    server.close();
  }
});

// The browser bench: the runtime against hand-written WebGPU, side by side in one run on one
// adapter, with the native bench's JSON keys (native/src/bench/) where the measurements are the
// same ones, plus what only the browser has. Served by pkg-tests/bench.mjs and by `node
// www/serve.mjs`, which both serve the repository's shaders/ at /shaders/ and cross-origin isolate
// the page. Without WebGPU it runs what needs none (the JS actor, the cpu backend, host packing).
//
// Measured, in order:
// 1. floors: one submit + map of a 4-byte copy, and the raw doubler on one message;
// 2. one message through the runtime doubler and back (`send` → `receive`, and `call`);
// 3. batches of 1, 1k, 100k and 1M messages through the runtime (`sendBatch(Int32Array)` /
//    `receiveBatch`) next to the raw doubler doing the same batch in one dispatch, with one
//    invocation per message and with the runtime's grid;
// 4. one raw dispatch + map per message (the naive design);
// 5. ticks of 1, 16 and 64 active doublers with traffic, and rounds of 1 and of 16 taking turns
//    while 16 are active (`kernelRoundsTakingTurns`; the native bench's `kernelRounds` are
//    alternating blocks);
// 6. a 4-stage pipeline: `connect`ed stages (fused, and unfused) vs one host round trip per stage
//    vs one stage, and one sent while its middle stage is paused and resumed;
// 7. the doubler as a plain JS async actor, and on the runtime's cpu backend;
// 8. host-side packing: how fast `sendBatch` takes 1M 4-byte messages, packed and as objects;
// 9. objects in and out (`sendBatch(objects)` / `receiveBatch` answer objects) next to typed
//    arrays and a plain JS async actor over the same objects, for the doubler, a layout with
//    vec3 padding and one with nested messages.
//
// What is compared is measured taking turns, one step each (floors with round trips, runtime
// with raw per batch size, the pipeline's forms), so both sides see the same machine; each round
// starts with the next lane, so none always follows the same one. Throughputs are messages per
// median sample, the naive design's too (one message per median dispatch).
// Every answer is checked (after its clock stops) and a wrong one fails the bench. Nothing
// asserts a speed. The page's clock resolves to 100 µs (5 µs when cross-origin isolated, as the
// runner and serve.mjs serve it), so host-side steps (the JS actor, the cpu backend, host
// packing) are timed in groups, each sample lasting at least 50 of the clock's steps (Bench.rounds).

import init, { RingKernelRuntime, defineMessage } from "./pkg/index.js";
import { RawGpu } from "./bench-raw.js";
import { JsActor, doubleHandler } from "./bench-actor.js";
import { latency, throughput, values, expectMultiplied, rawFloorCheck } from "./bench-stats.js";
import { formatReport, grouped, duration } from "./bench-report.js";

/** The id of the built-in doubler each bench runtime launches. */
const DOUBLER = "doubler";
/** Long enough for a million messages on a software adapter, short enough that a stuck runtime fails the bench. */
const WAIT = { timeout: 120_000 };
/** Queue size of each fleet kernel: a tick sends one message to each. */
const FLEET_QUEUE_SIZE = 16;
const PIPELINE_STAGES = 4;
/** Words of the state of the bench's stateful kernels (4 MiB). */
const STATE_WORDS = 1 << 20;
/** The issue's target for host-side packing of 4-byte messages. */
const HOST_PACKING_TARGET = 20e6;
/**
 * Clock steps a grouped sample lasts at least (see Bench.rounds): its time is then within 2 % of
 * the truth, 5 ms on a page that is not cross-origin isolated (100 µs steps), 0.25 ms on one that is.
 */
const MIN_SAMPLE_TICKS = 50;
/** Steps in one grouped sample at most, however short the step. */
const MAX_GROUP = 100_000;
/** The largest queue a kernel can have (`launch`'s queueSize): room for a group of packed batches. */
const MAX_QUEUE = 1 << 22;
const now = () => performance.now();

/**
 * Workgroups of the runtime's dispatch over `messages` messages, as its telemetry reports them
 * (`lastWorkgroups`) after one batch of that size: the grid the raw doubler on the runtime's
 * grid then uses.
 */
async function runtimeGrid(runtime, messages) {
  expectMultiplied("the runtime's grid", values(messages, 0), await batch(runtime, DOUBLER, values(messages, 0)), 2);
  const workgroups = runtime.getTelemetry(DOUBLER)?.lastWorkgroups;
  if (!Number.isInteger(workgroups) || workgroups < 1) throw new Error(`the runtime reported no grid for ${messages} messages (lastWorkgroups: ${workgroups})`);
  return workgroups;
}

/** Counts for one run, from the page's query (`quick=1`, `iterations=`, `naive=`, `corrupt=1`). */
export function makePlan(params) {
  const quick = params.get("quick") === "1";
  const int = (name, fallback) => {
    const n = Number.parseInt(params.get(name) ?? "", 10);
    return Number.isFinite(n) && n > 0 ? n : fallback;
  };
  const iterations = int("iterations", quick ? 20 : 1000);
  const plan = {
    quick,
    iterations,
    warmup: Math.min(Math.max(Math.floor(iterations / 10), 1), 20),
    naiveCount: int("naive", quick ? 50 : 500),
    queueSize: 1 << 20,
    batchSizes: quick ? [1, 1000, 10_000] : [1, 1000, 100_000, 1_000_000],
    kernelCounts: quick ? [1, 16] : [1, 16, 64],
    // Messages each batch size gets in all, so small batches repeat often and big ones a few
    // times (between minRepetitions and iterations).
    batchBudget: quick ? 20_000 : 5_000_000,
    minRepetitions: quick ? 3 : 5,
    packingMessages: quick ? 100_000 : 1_000_000,
    objectMessages: quick ? 10_000 : 100_000,
    hostCostMessages: quick ? 1_000 : 10_000,
    // `corrupt=1` changes the first answer before it is checked, so the tests can see that a
    // wrong answer fails the bench.
    corrupt: params.get("corrupt") === "1",
  };
  plan.repetitions = (messages) =>
    Math.min(Math.max(Math.floor(plan.batchBudget / messages), plan.minRepetitions), Math.max(plan.iterations, plan.minRepetitions));
  return plan;
}

let ready;
/** Loads the wasm module and defines the bench's message types, once per page. */
function setup() {
  ready ??= (async () => {
    await init();
    // Copies of the doubler under ids of their own (fleet, packing) and the pipeline's stages,
    // whose input and output are one layout so each can feed the next.
    const value = defineMessage("BenchValue", { value: "i32" });
    const result = defineMessage("BenchResult", { result: "i32" });
    const stage = defineMessage("BenchStage", { value: "i32" });
    // A layout with padding (each vec3 takes 16 bytes) and one with messages nested in messages.
    const body = defineMessage("BenchBody", { position: "vec3<i32>", velocity: "vec3<i32>" });
    const outer = defineMessage("BenchOuter", { tag: "u32", inner: value });
    const outerAnswer = defineMessage("BenchOuterAnswer", { tag: "u32", inner: result });
    return {
      vec3: { input: body, output: body, wgsl: "fn handle(b: BenchBody) -> BenchBody { return BenchBody(b.position * 2, b.velocity); }" },
      nested: {
        input: outer, output: outerAnswer,
        wgsl: "fn handle(m: BenchOuter) -> BenchOuterAnswer { return BenchOuterAnswer(m.tag, BenchResult(m.inner.value * 2)); }",
      },
      doublerCopy: { input: value, output: result, wgsl: "fn handle(msg: BenchValue) -> BenchResult { return BenchResult(msg.value * 2); }" },
      stage: { input: stage, output: stage, wgsl: "fn handle(msg: BenchStage) -> BenchStage { return BenchStage(msg.value * 2); }" },
      // A large state (4 MiB) that counts each message: its checkpoint comes back with every tick
      // unless a checkpoint interval keeps it on the device.
      stateful: {
        input: value, output: result,
        state: { length: STATE_WORDS, type: "atomic<u32>" },
        wgsl: `fn handle(msg: BenchValue) -> BenchResult { atomicAdd(&state[u32(msg.value) & ${STATE_WORDS - 1}u], 1u); return BenchResult(msg.value * 2); }`,
      },
    };
  })();
  return ready;
}

/** The i32s in answers packed as bytes (copied when unaligned). */
function int32s(bytes) {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  return new Int32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
}

// --- the runtime's side, through the public JS API exactly as a user would -------------------

/** `send` then `receive`; `field` is the answer's (`result` for doublers, `value` for pipeline stages). */
async function sendReceive(runtime, id, v, field = "result") {
  await runtime.send(id, { value: v[0] }, WAIT);
  return [(await runtime.receive(id, WAIT))[field]];
}

async function call(runtime, id, v) {
  return [(await runtime.call(id, { value: v[0] }, WAIT)).result];
}

/**
 * Sends what fits of `batch` within `timeout` ms: how many were queued (all, or as many as the
 * `QueueFullError` of a timeout that ran out says; those are answered, the rest were not queued).
 */
async function sendWhatFits(runtime, id, batch, timeout) {
  try {
    return await runtime.sendBatch(id, batch, { timeout });
  } catch (e) {
    if (e?.name === "QueueFullError") return e.accepted;
    throw e;
  }
}

/** `n` answers from `id`, however many `receiveBatch` calls that takes. */
async function drain(runtime, id, n) {
  const answers = new Int32Array(n);
  for (let got = 0; got < n;) {
    const more = int32s(await runtime.receiveBatch(id, { max: n - got, ...WAIT, packed: true }));
    answers.set(more, got);
    got += more.length;
  }
  return answers;
}

/**
 * A whole batch through a doubler. Sends what the queue takes, receives what has come back, and
 * repeats, so a batch larger than the queue streams through under backpressure; a batch that fits
 * goes out with one `sendBatch` (one tick).
 */
async function batch(runtime, id, v) {
  const answers = new Int32Array(v.length);
  let sent = 0;
  let got = 0;
  while (got < v.length) {
    // A zero timeout takes what fits now instead of waiting on answers nobody reads yet.
    if (sent < v.length) sent += await sendWhatFits(runtime, id, v.subarray(sent), 0);
    if (got < sent) {
      const more = int32s(await runtime.receiveBatch(id, { max: sent - got, ...WAIT, packed: true }));
      answers.set(more, got);
      got += more.length;
    }
  }
  return answers;
}

/**
 * A whole batch of message objects through a kernel that has room for it: one `sendBatch` of the
 * objects, then `receiveBatch` of answer objects until all are back; `read` takes the checked
 * number out of each answer.
 */
async function objectBatch(runtime, id, objects, read) {
  const answers = new Int32Array(objects.length);
  await runtime.sendBatch(id, objects, WAIT);
  for (let got = 0; got < objects.length;) {
    for (const answer of await runtime.receiveBatch(id, { max: objects.length - got, ...WAIT })) answers[got++] = read(answer);
  }
  return answers;
}

/**
 * The same batch packed by hand: one `sendBatch` of the typed array, then packed answers until
 * all are back; each message and answer is `words` i32s, the checked one at word `at`.
 */
async function packedBatch(runtime, id, packed, words, at) {
  const count = packed.length / words;
  const answers = new Int32Array(count);
  await runtime.sendBatch(id, packed, WAIT);
  for (let got = 0; got < count;) {
    const more = int32s(await runtime.receiveBatch(id, { max: count - got, ...WAIT, packed: true }));
    for (let k = at; k < more.length; k += words) answers[got++] = more[k];
  }
  return answers;
}

/**
 * Ticks run between two summaries, and where an average one spent its time (µs per step, from
 * the runtime's own `tickTime`; null from a build without it).
 */
function tickSteps(before, after) {
  const ticks = Math.max(1, after.ticks - before.ticks);
  const a = after.tickTime, b = before.tickTime;
  const us = (key) => ((a[key] - b[key]) * 1000) / ticks;
  const steps = a && b ? { plan: us("planMs"), submit: us("submitMs"), wait: us("waitMs"), deliver: us("deliverMs") } : null;
  return { ticks: after.ticks - before.ticks, steps };
}

/**
 * One round of traffic: `v[k]` to each kernel k, then every answer back. The sends go out
 * together (as a page sending to many kernels would), so they land before the pump's next tick
 * and share one submit; awaiting each in turn would let the pump tick between them.
 */
async function tick(runtime, ids, v) {
  await Promise.all(ids.map((id, k) => runtime.send(id, { value: v[k] }, WAIT)));
  const answers = await Promise.all(ids.map((id) => runtime.receive(id, WAIT)));
  return answers.map((a) => a.result);
}

/** Launches `ids` concurrently (their compilations overlap; the runtime keeps them apart). */
async function launchAll(runtime, ids, definition, options) {
  await Promise.all(ids.map((id) => runtime.launch(id, definition, options)));
}

async function launchActive(runtime, ids, definition, options) {
  await launchAll(runtime, ids, definition, options);
  for (const id of ids) await runtime.activate(id);
}

async function terminateAll(runtime, ids) {
  for (const id of ids) {
    await runtime.terminate(id, WAIT);
    runtime.remove(id);
  }
}

/** The smallest step `performance.now()` takes here, in µs. */
function timerResolutionUs() {
  let best = Infinity;
  for (let k = 0; k < 50; k++) {
    const start = now();
    let next;
    while ((next = now()) === start);
    best = Math.min(best, next - start);
  }
  return best * 1e3;
}

/** The measurements, sharing the plan and the page's progress display. */
/**
 * Watches `GPUBuffer.prototype.mapAsync` while installed (while the round trips are timed):
 * when each map of a step was called and when it resolved. Every map on the page goes through the prototype, the runtime's (through its
 * `GPUBuffer`) and the raw baseline's alike, so a round trip of either splits the same way: host
 * time before its map, the map's wait (the device's work and the browser's delivery of it) and
 * host time after. Its own reaction is registered first, so it sees the resolution first.
 */
class MapProbe {
  constructor() {
    this.maps = [];
    this.original = null;
  }

  install() {
    const probe = this;
    const original = GPUBuffer.prototype.mapAsync;
    this.original = original;
    GPUBuffer.prototype.mapAsync = function mapAsync(...args) {
      const promise = original.apply(this, args);
      const map = { calledAt: now(), settledAt: NaN };
      probe.maps.push(map);
      promise.then(() => { map.settledAt = now(); }, () => {});
      return promise;
    };
  }

  uninstall() {
    if (this.original) GPUBuffer.prototype.mapAsync = this.original;
    this.original = null;
  }
}

class Bench {
  /**
   * @param {number} resolutionMs the clock's step here (see timerResolutionUs): grouped lanes
   *   make each sample last MIN_SAMPLE_TICKS of it.
   */
  constructor(plan, ui, resolutionMs) {
    this.plan = plan;
    this.ui = ui;
    this.resolutionMs = resolutionMs;
    this.minSampleMs = MIN_SAMPLE_TICKS * resolutionMs;
    /** Answers checked so far, warmups included. */
    this.checked = 0;
  }

  /**
   * Runs `step` `warmup` times untimed and then `samples` times timed, each on fresh inputs (so a
   * stale answer cannot pass), checking every answer once its clock has stopped. `prepare` turns
   * the inputs into what `step` takes, off the clock; answers must be the inputs × `factor`. A
   * `selfTimed` step times the part that counts itself and resolves with `{ answers, elapsed }`.
   * See `rounds` for `grouped` lanes. Resolves with the ms per step of each timed sample.
   */
  async timed(label, { warmup, samples, ...lane }) {
    return (await this.rounds([{ label, ...lane }], warmup, samples)).timings[0];
  }

  /**
   * Like `timed` for several `lanes` ({ label, inputs, step, ... }) at once, taking turns one step
   * each: measurements that are compared see the same machine. On this adapter a single GPU round
   * trip is either ~0.4 ms or ~2.5 ms, and which one dominates drifts with the machine's load.
   *
   * A `grouped` lane (host-side work: a JS actor's round trip, a cpu-backend batch, packing a
   * batch) is timed in groups: each sample runs the step back to back, each time on fresh inputs,
   * as many times as make it last `minSampleMs` (see `calibrate`, at most its `maxGroup`), under
   * one clock, and counts the time per step. Timed one at a time, such a step reads as the
   * clock's resolution or as 0. A lane with `collect(messages)` takes its answers after the
   * clock stops, all the group's at once, in order (host packing sends into a paused kernel).
   * Resolves with each lane's ms per step (`timings`) and steps per sample (`groups`).
   */
  async rounds(lanes, warmup, samples) {
    this.ui.phase(lanes.map((lane) => lane.label).join(" · "), warmup + samples);
    // Grouped lanes count their inputs on, so no two steps of a lane see the same ones.
    const next = lanes.map(() => 0);
    const take = (k, group) => Array.from({ length: group }, () => next[k]++);
    const groups = [];
    for (const [k, lane] of lanes.entries()) groups.push(lane.grouped ? await this.calibrate(lane, (group) => take(k, group)) : 1);
    const timings = lanes.map(() => []);
    for (let i = 0; i < warmup + samples; i++) {
      // Each round starts with the next lane, so no lane always runs right after the same one
      // (on SwiftShader what runs after a map changes how long the next map waits).
      for (let j = 0; j < lanes.length; j++) {
        const k = (i + j) % lanes.length;
        const lane = lanes[k];
        const elapsed = await this.sample(lane, lane.grouped ? take(k, groups[k]) : [i]);
        if (i >= warmup) timings[k].push(elapsed);
      }
      this.ui.progress(i + 1);
    }
    return { timings, groups };
  }

  /**
   * One sample of `lane`: its step on the inputs numbered `indices`, one after another under one
   * clock; then every answer checked. Resolves with the ms per step.
   */
  async sample({ label, inputs, step, collect, prepare = (v) => v, factor = 2, selfTimed = false }, indices) {
    const given = indices.map((i) => inputs(i));
    const args = given.map((v) => prepare(v));
    const answers = [];
    let elapsed;
    try {
      const start = now();
      for (const argument of args) answers.push(await step(argument));
      elapsed = now() - start;
      if (selfTimed) ({ answers: answers[0], elapsed } = answers[0]); // a self-timed lane is never grouped
      if (collect) {
        const all = await collect(given.reduce((n, v) => n + v.length, 0));
        let at = 0;
        for (const [n, v] of given.entries()) answers[n] = all.subarray(at, (at += v.length));
      }
    } catch (e) {
      const error = new Error(`${label}: step ${indices[0]}: ${e?.message ?? e}`, { cause: e });
      error.name = e?.name ?? "Error";
      throw error;
    }
    for (const [n, v] of given.entries()) {
      if (this.plan.corrupt && this.checked === 0 && v.length > 0) answers[n][0] += 1; // the failure path's test
      expectMultiplied(label, v, answers[n], factor);
      this.checked += v.length;
    }
    return elapsed / indices.length;
  }

  /**
   * How many steps of a grouped lane make a sample last `minSampleMs`: after one step to warm
   * up, tries of a growing group, each sized by what the last one measured (at least twice the
   * last: a try shorter than the clock's step reads 0), until two tries of one group in a row are
   * long enough (the first of a size can be slow for a reason the rest do not share, a queue
   * growing to hold it), or the group reaches its `maxGroup`. The tries are warmup: their answers
   * are checked, their times dropped.
   */
  async calibrate(lane, take) {
    const most = Math.min(lane.maxGroup ?? MAX_GROUP, MAX_GROUP);
    await this.sample(lane, take(1)); // the first step ever pays for memory and compiling the rest reuse
    let group = 1;
    let confirming = false;
    for (;;) {
      const total = (await this.sample(lane, take(group))) * group;
      if (group >= most) return group;
      if (total >= this.minSampleMs) {
        if (confirming) return group;
        confirming = true;
        continue;
      }
      confirming = false;
      const enough = Math.ceil((group * 1.25 * this.minSampleMs) / Math.max(total, this.resolutionMs));
      group = Math.min(most, Math.max(enough, 2 * group));
    }
  }

  /** Latencies of `lanes` ({ label, inputs, step, ... }) over the plan's iterations, taking turns. */
  async latencies(lanes) {
    const { timings, groups } = await this.rounds(lanes, this.plan.warmup, this.plan.iterations);
    return lanes.map((lane, k) => {
      const l = latency(timings[k], { groupSize: groups[k] });
      this.ui.latency(lane.label, l);
      return l;
    });
  }

  /** Latency of `step` over the plan's iterations, after its warmup. */
  async latency(label, inputs, step, options = {}) {
    return (await this.latencies([{ label, inputs, step, ...options }]))[0];
  }

  /** Throughputs of `lanes` ({ label, step, ... }) on batches of `messages`, repeated as the plan says, taking turns. */
  async throughputs(messages, lanes) {
    const samples = this.plan.repetitions(messages);
    const warmup = Math.min(this.plan.warmup, samples);
    const { timings, groups } = await this.rounds(lanes.map((lane) => ({ inputs: (i) => values(messages, i), ...lane })), warmup, samples);
    return lanes.map((lane, k) => {
      const t = throughput(messages, timings[k]);
      if (groups[k] > 1) t.groupSize = groups[k];
      this.ui.throughput(lane.label, t);
      return t;
    });
  }

  /** Throughput of `step` on batches of `messages`, repeated as the plan says. */
  async throughput(label, messages, step, options = {}) {
    return (await this.throughputs(messages, [{ label, step, ...options }]))[0];
  }

  /**
   * The floors and the runtime's round trips, taking turns. Each one-message round trip (the
   * raw doubler's and the runtime's two) is also split at its map, from the same samples: host
   * time from the call to its (first) `mapAsync`, the wait until the (last) map resolves, and
   * host time from then until the answer is in hand (`roundTripBreakdown`). The runtime's
   * extra host time over the raw dispatch is what the round trip ratio measures, whatever this
   * adapter's wait.
   */
  async floorsAndRoundTrip(runtime, raw) {
    const single = raw.doubler(1);
    const one = (i) => values(1, i);
    const probe = new MapProbe();
    const splits = {};
    /** `step` timed and split at its maps, under `key` in `splits` (a self-timed lane's step). */
    const split = (key, step) => {
      const parts = (splits[key] = { before: [], wait: [], after: [], maps: [] });
      return async (v) => {
        probe.maps = [];
        const start = now();
        const answers = await step(v);
        const end = now();
        const { maps } = probe;
        const last = maps.at(-1);
        if (!last || !Number.isFinite(last.settledAt)) throw new Error(`answered without a map that resolved (${maps.length} maps)`);
        parts.before.push(maps[0].calledAt - start);
        parts.wait.push(last.settledAt - maps[0].calledAt);
        parts.after.push(end - last.settledAt);
        parts.maps.push(maps.length);
        return { answers, elapsed: end - start };
      };
    };
    probe.install();
    let latencies;
    try {
      latencies = await this.latencies([
        { label: "floor: submit + map", inputs: () => [], step: async () => (await raw.submitAndMap(), []) },
        { label: "floor: raw doubler, 1 message", inputs: one, selfTimed: true, step: split("rawSingle", (v) => single.run(v)) },
        { label: "runtime send → receive", inputs: one, selfTimed: true, step: split("sendReceive", (v) => sendReceive(runtime, DOUBLER, v)) },
        { label: "runtime call", inputs: one, selfTimed: true, step: split("call", (v) => call(runtime, DOUBLER, v)) },
      ]);
    } finally {
      probe.uninstall();
      single.destroy();
    }
    const [submitAndMap, rawSingle, sendReceiveLatency, callLatency] = latencies;
    const roundTripBreakdown = {};
    for (const [key, parts] of Object.entries(splits)) {
      // The samples after the warmup, as the latencies take them.
      const [before, wait, after, maps] = [parts.before, parts.wait, parts.after, parts.maps].map((a) => a.slice(this.plan.warmup));
      const s = { before: latency(before), wait: latency(wait), after: latency(after), mapsPerRoundTrip: maps.reduce((a, b) => a + b, 0) / maps.length };
      roundTripBreakdown[key] = s;
      this.ui.row(`${key}: before its map · the wait · after it (p50)`,
        `${s.before.p50.toFixed(0)} · ${s.wait.p50.toFixed(0)} · ${s.after.p50.toFixed(0)} µs`, `${s.mapsPerRoundTrip} maps per round trip`);
    }
    return { floors: { submitAndMap, rawSingle }, roundTrip: { sendReceive: sendReceiveLatency, call: callLatency }, roundTripBreakdown };
  }

  /**
   * The naive design: every message its own write, dispatch, copy, submit and map. Its rate is
   * one message per median dispatch, as every batch's rate is its messages per median batch.
   */
  async perMessage(raw) {
    const single = raw.doubler(1);
    const label = "raw, one dispatch per message";
    const samples = await this.timed(label, { warmup: this.plan.warmup, samples: this.plan.naiveCount, inputs: (i) => values(1, i), step: (v) => single.run(v) });
    single.destroy();
    const l = latency(samples);
    const perMessage = { messages: samples.length, unit: "msgs/s", msgsPerSec: 1e6 / l.p50, latency: l };
    this.ui.row(label, `${grouped(perMessage.msgsPerSec)} msgs/s`, `p50 ${perMessage.latency.p50.toFixed(1)} µs`);
    return perMessage;
  }

  async batches(runtime, raw) {
    const comparisons = [];
    for (const messages of this.plan.batchSizes) {
      const doubler = raw.doubler(messages);
      const sameGrid = raw.doubler(messages, await runtimeGrid(runtime, messages));
      const [runtimeBatches, rawBatches, sameGridBatches] = await this.throughputs(messages, [
        { label: `runtime batch of ${grouped(messages)}`, step: (v) => batch(runtime, DOUBLER, v) },
        { label: `raw batch of ${grouped(messages)}`, step: (v) => doubler.run(v) },
        { label: `raw batch of ${grouped(messages)}, the runtime's grid (${sameGrid.workgroups} workgroups)`, step: (v) => sameGrid.run(v) },
      ]);
      comparisons.push({ messages, runtime: runtimeBatches, raw: rawBatches, rawSameGrid: { ...sameGridBatches, workgroups: sameGrid.workgroups } });
      doubler.destroy();
      sameGrid.destroy();
    }
    return comparisons;
  }

  /**
   * One round of send-to-all and receive-from-all, for each kernel count; then, where the plan
   * has both counts, rounds of 16 kernels and of 1 taking turns (16 active), so their ratio is
   * not a drift of the machine between two phases.
   */
  async kernelTicks(runtime, definitions) {
    const most = Math.max(...this.plan.kernelCounts);
    const ids = Array.from({ length: most }, (_, i) => `${DOUBLER}-${i}`);
    this.ui.phase(`launching ${most} doublers`, 1);
    await launchAll(runtime, ids, definitions.doublerCopy, { queueSize: FLEET_QUEUE_SIZE });
    const ticks = [];
    let rounds = null;
    let active = 0;
    for (const kernels of this.plan.kernelCounts) {
      for (; active < kernels; active++) await runtime.activate(ids[active]);
      const fleet = ids.slice(0, kernels);
      // Kernels of one handler group once the grouped module has compiled (asynchronously);
      // measure them grouped, where the adapter groups at all.
      const groupedDispatches = () => fleet.reduce((sum, id) => sum + (runtime.getTelemetry(id)?.groupedDispatches ?? 0), 0);
      for (let i = 0; i < 2000 && kernels > 1 && groupedDispatches() === 0; i++) await tick(runtime, fleet, values(kernels, i));
      const groupedBefore = groupedDispatches();
      const before = runtime.getSummary();
      const latency = await this.latency(`tick, ${kernels} kernels`, (i) => values(kernels, i), (v) => tick(runtime, fleet, v));
      const grouped = groupedDispatches() > groupedBefore;
      // Rounds whose sends the runtime split over more than one tick show up here.
      const { ticks: ran, steps } = tickSteps(before, runtime.getSummary());
      ticks.push({ kernels, tick: latency, ticksPerRound: ran / (this.plan.warmup + this.plan.iterations), grouped, steps });
      if (kernels === 16 && this.plan.kernelCounts.includes(1)) {
        const lane = (count) => ({
          label: `round of ${count}, taking turns`,
          inputs: (i) => values(count, i),
          step: (v) => tick(runtime, ids.slice(0, count), v),
        });
        const [one, sixteen] = await this.latencies([lane(1), lane(16)]);
        rounds = { one, sixteen };
      }
    }
    await terminateAll(runtime, ids);
    return { ticks, rounds };
  }

  /**
   * One message through 4 doubling stages: `connect`ed on the GPU (fused into one dispatch, and
   * launched `unfused`: ring to ring), sent while the middle stage is paused and then resumed,
   * vs a host round trip per stage, vs one stage alone, taking turns. Inputs are shifted so ×16
   * fits.
   */
  async pipeline(runtime, definitions) {
    const stages = PIPELINE_STAGES;
    const factor = 2 ** stages;
    const inputs = (i) => values(1, i).map((v) => v >> stages);
    const section = { stages, available: false };
    const hosted = Array.from({ length: stages }, (_, i) => `stage-host-${i}`);
    const chain = (name) => Array.from({ length: stages }, (_, i) => `stage-${name}-${i}`);
    const [connected, unfused, paused] = [chain("connected"), chain("unfused"), chain("paused")];
    const lanes = [
      { label: "pipeline: single stage", inputs, step: (v) => sendReceive(runtime, "stage-single", v, "value") },
      {
        label: `pipeline: ${stages} host round trips`, inputs, factor,
        step: async (v) => {
          let x = v;
          for (const id of hosted) x = await sendReceive(runtime, id, x, "value");
          return x;
        },
      },
    ];
    const ids = ["stage-single", ...hosted];
    await launchActive(runtime, ids, definitions.stage);
    const through = (ids) => async (v) => {
      await runtime.send(ids[0], { value: v[0] }, WAIT);
      return [(await runtime.receive(ids[stages - 1], WAIT)).value];
    };
    if (typeof runtime.connect === "function") {
      for (const [pipe, options] of [[connected, undefined], [unfused, { unfused: true }], [paused, undefined]]) {
        await launchAll(runtime, pipe, definitions.stage, options);
        for (let i = 0; i + 1 < stages; i++) await runtime.connect(pipe[i], pipe[i + 1]);
        for (const id of pipe) await runtime.activate(id);
        ids.push(...pipe);
      }
      // The fused module compiles in the background: run the chain until a tick ran it fused.
      const fusedDispatches = () => runtime.getTelemetry(connected[0])?.fusedDispatches ?? 0;
      for (let i = 0; i < 2000 && fusedDispatches() === 0; i++) await through(connected)([1]);
      section.fused = fusedDispatches() > 0;
      const middle = paused[stages >> 1];
      lanes.push(
        { label: `pipeline: ${stages} connected stages, fused`, inputs, factor, step: through(connected) },
        { label: `pipeline: ${stages} connected stages, unfused`, inputs, factor, step: through(unfused) },
        {
          label: `pipeline: ${stages} stages, middle paused and resumed`, inputs, factor,
          step: async (v) => {
            await runtime.deactivate(middle);
            await runtime.send(paused[0], { value: v[0] }, WAIT);
            await runtime.reactivate(middle);
            return [(await runtime.receive(paused[stages - 1], WAIT)).value];
          },
        },
      );
    } else {
      section.reason = "this build of ringkernel-web has no runtime.connect (kernel-to-kernel routing)";
      this.ui.row(`pipeline: ${stages} connected stages`, "unavailable", section.reason);
    }
    [section.singleStage, section.hostRelayed, section.connected, section.unfused, section.pausedMiddleStage] =
      await this.latencies(lanes);
    section.available = section.connected !== undefined;
    if (!section.available) {
      delete section.connected;
      delete section.unfused;
      delete section.pausedMiddleStage;
    }
    await terminateAll(runtime, ids);
    return section;
  }

  /**
   * One message's round trip through a kernel with a 4 MiB state, its checkpoint copied back with
   * every tick (the default) and never (`checkpointIntervalMs: Infinity`), taking turns.
   */
  async stateCheckpoint(runtime, definitions) {
    const [everyTick, never] = ["state-every-tick", "state-never"];
    await runtime.launch(everyTick, definitions.stateful, { autoActivate: true });
    await runtime.launch(never, definitions.stateful, { autoActivate: true, checkpointIntervalMs: Infinity });
    const inputs = (i) => values(1, i);
    const [everyTickLatency, neverLatency] = await this.latencies([
      { label: "4 MiB state, checkpointed every tick", inputs, step: (v) => sendReceive(runtime, everyTick, v) },
      { label: "4 MiB state, never checkpointed", inputs, step: (v) => sendReceive(runtime, never, v) },
    ]);
    await terminateAll(runtime, [everyTick, never]);
    return { stateBytes: STATE_WORDS * 4, everyTick: everyTickLatency, never: neverLatency };
  }

  /** The doubler as a plain JS async actor: no GPU, no runtime, for reference. */
  async jsActor() {
    const actor = new JsActor(doubleHandler);
    // One round trip takes well under a microsecond: timed in groups (see rounds).
    const sendReceive = await this.latency("JS actor send → receive", (i) => values(1, i), async (v) => {
      await actor.send({ value: v[0] });
      return [(await actor.receive()).result];
    }, { grouped: true });
    const batches = [];
    for (const messages of this.plan.batchSizes) {
      // All sent, then all received: a batch of one or a thousand takes microseconds, so these
      // are timed in groups of batches too.
      batches.push(await this.throughput(`JS actor batch of ${grouped(messages)}`, messages, async (messagesIn) => {
        for (const message of messagesIn) await actor.send(message);
        const answers = new Int32Array(messagesIn.length);
        for (let k = 0; k < messagesIn.length; k++) answers[k] = (await actor.receive()).result;
        return answers;
      }, { grouped: true, prepare: (v) => Array.from(v, (value) => ({ value })) }));
    }
    await actor.stop();
    return { sendReceive, throughput: batches };
  }

  /**
   * Objects in and out, the API's natural form, against the same messages as typed arrays and
   * against a plain JS async actor over the same objects, taking turns; then a layout with vec3
   * padding and one with nested messages, as objects and as typed arrays.
   */
  async objects(runtime, definitions, actor) {
    const messages = this.plan.objectMessages;
    // Each layout: its object and, packed by hand as a user of the fast path would, the same
    // message as i32 words (the checked value at word `at`; vec3s take a padding word each).
    const kinds = [
      {
        layout: "doubler", id: DOUBLER, at: 0,
        make: (v) => ({ value: v }), words: (v) => [v], read: (a) => a.result,
      },
      {
        layout: "vec3", id: "objects-vec3", definition: definitions.vec3, at: 0,
        make: (v) => ({ position: [v, 1, 2], velocity: [3, 4, 5] }), words: (v) => [v, 1, 2, 0, 3, 4, 5, 0],
        read: (a) => a.position[0],
      },
      {
        layout: "nested", id: "objects-nested", definition: definitions.nested, at: 1,
        make: (v) => ({ tag: 7, inner: { value: v } }), words: (v) => [7, v], read: (a) => a.inner.result,
      },
    ];
    const section = { messages, layouts: {} };
    for (const kind of kinds) {
      if (kind.definition) await launchActive(runtime, [kind.id], kind.definition, { queueSize: this.plan.queueSize });
      const stride = kind.words(0).length;
      const pack = (v) => {
        const packed = new Int32Array(v.length * stride);
        for (let k = 0; k < v.length; k++) packed.set(kind.words(v[k]), k * stride);
        return packed;
      };
      const lanes = [
        { label: `objects: ${kind.layout}, objects in and out`, prepare: (v) => Array.from(v, kind.make),
          step: (objects) => objectBatch(runtime, kind.id, objects, kind.read) },
        { label: `objects: ${kind.layout}, typed arrays in and out`, prepare: pack,
          step: (packed) => packedBatch(runtime, kind.id, packed, stride, kind.at) },
      ];
      if (kind.layout === "doubler") {
        lanes.push({ label: "objects: doubler, plain JS async actor", prepare: (v) => Array.from(v, kind.make),
          step: async (objects) => {
            const answers = new Int32Array(objects.length);
            for (const message of objects) await actor.send(message);
            for (let k = 0; k < objects.length; k++) answers[k] = (await actor.receive()).result;
            return answers;
          } });
      }
      const [objects, typedArrays, jsActor] = await this.throughputs(messages, lanes);
      section.layouts[kind.layout] = { objects, typedArrays, ...(jsActor && { jsActor }) };
      if (kind.definition) await terminateAll(runtime, [kind.id]);
    }
    return section;
  }

  /** The doubler on the cpu backend (its built-in host handler), or why there is none. */
  async cpuBackend() {
    let runtime;
    try {
      runtime = await RingKernelRuntime.create({ backend: "cpu" });
      await runtime.launch(DOUBLER, null, { queueSize: this.plan.queueSize });
      await runtime.activate(DOUBLER);
    } catch (e) {
      await runtime?.dispose().catch(() => {});
      const reason = `${e.message} (${e.name})`;
      this.ui.row("cpu backend", "unavailable", reason);
      return { available: false, reason };
    }
    try {
      // Host work only, a round trip well under a millisecond: timed in groups (see rounds).
      const sendReceiveLatency = await this.latency("cpu send → receive", (i) => values(1, i), (v) => sendReceive(runtime, DOUBLER, v), { grouped: true });
      const batches = [];
      for (const messages of this.plan.batchSizes) {
        batches.push(await this.throughput(`cpu batch of ${grouped(messages)}`, messages, (v) => batch(runtime, DOUBLER, v), { grouped: true }));
      }
      return { available: true, sendReceive: sendReceiveLatency, throughput: batches };
    } finally {
      await runtime.dispose();
    }
  }

  /**
   * What one `send` of an object and one `receive` of an answer object cost on the page, one
   * message a call: sends go into a deactivated kernel (nothing is dispatched while the clock
   * runs), receives start once every answer is back; then a burst of unawaited sends ten times
   * the queue, each waiting its turn, timed until every answer is in. Medians over rounds, in
   * µs per message; every answer is checked.
   */
  async hostCost(runtime, definitions) {
    const id = "host-cost";
    const messages = this.plan.hostCostMessages;
    const rounds = this.plan.minRepetitions;
    await runtime.launch(id, definitions.doublerCopy, { queueSize: messages });
    await runtime.activate(id);
    const sends = [];
    const receives = [];
    this.ui.phase("host cost: send, receive", rounds);
    for (let round = 0; round < rounds; round++) {
      const inputs = values(messages, round);
      await runtime.deactivate(id);
      let start = now();
      for (let k = 0; k < messages; k++) await runtime.send(id, { value: inputs[k] });
      sends.push(((now() - start) * 1e3) / messages);
      await runtime.reactivate(id);
      while (runtime.getTelemetry(id).outputQueueDepth < messages) await new Promise((done) => setTimeout(done, 1));
      const answers = new Int32Array(messages);
      start = now();
      for (let k = 0; k < messages; k++) answers[k] = (await runtime.receive(id, { timeout: 0 })).result;
      receives.push(((now() - start) * 1e3) / messages);
      expectMultiplied("host cost", inputs, answers, 2);
      this.checked += messages;
    }
    // The same with envelopes (a package without them skips this).
    const envelopeSends = [];
    const envelopeReceives = [];
    for (let round = 0; runtime.sendEnvelope && round < rounds; round++) {
      const inputs = values(messages, round + rounds);
      await runtime.deactivate(id);
      let start = now();
      for (let k = 0; k < messages; k++) await runtime.sendEnvelope(id, { value: inputs[k] });
      envelopeSends.push(((now() - start) * 1e3) / messages);
      await runtime.reactivate(id);
      while (runtime.getTelemetry(id).outputQueueDepth < messages) await new Promise((done) => setTimeout(done, 1));
      const answers = new Int32Array(messages);
      start = now();
      for (let k = 0; k < messages; k++) answers[k] = (await runtime.receiveEnvelope(id, { timeout: 0 })).message.result;
      envelopeReceives.push(((now() - start) * 1e3) / messages);
      expectMultiplied("host cost (envelopes)", inputs, answers, 2);
      this.checked += messages;
    }
    // A burst: every send issued at once, unawaited, into an active kernel whose queue holds a
    // tenth of them, so most wait behind the ones before; answers received as they come.
    const burstId = "host-cost-burst";
    const bursts = [];
    await runtime.launch(burstId, definitions.doublerCopy, { queueSize: Math.max(1, messages / 10), autoActivate: true });
    for (let round = 0; round < rounds; round++) {
      const inputs = values(messages, round + 2 * rounds);
      const start = now();
      const sent = [];
      for (let k = 0; k < messages; k++) sent.push(runtime.send(burstId, { value: inputs[k] }, { timeout: 60_000 }));
      const answers = new Int32Array(messages);
      for (let got = 0; got < messages; ) {
        for (const answer of await runtime.receiveBatch(burstId, { max: messages - got, timeout: 60_000 })) answers[got++] = answer.result;
      }
      await Promise.all(sent);
      bursts.push(((now() - start) * 1e3) / messages);
      expectMultiplied("host cost (burst)", inputs, answers, 2);
      this.checked += messages;
    }
    await terminateAll(runtime, [id, burstId]);
    const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const cost = { messages, rounds, sendUs: median(sends), receiveUs: median(receives), burstUs: median(bursts) };
    if (envelopeSends.length) Object.assign(cost, { sendEnvelopeUs: median(envelopeSends), receiveEnvelopeUs: median(envelopeReceives) });
    this.ui.row("host cost per message", `send ${cost.sendUs.toFixed(2)} µs`, `receive ${cost.receiveUs.toFixed(2)} µs`);
    if (cost.sendEnvelopeUs) this.ui.row("  with envelopes", `send ${cost.sendEnvelopeUs.toFixed(2)} µs`, `receive ${cost.receiveEnvelopeUs.toFixed(2)} µs`);
    this.ui.row("  a burst of sends, 10× the queue", `${cost.burstUs.toFixed(2)} µs a message`, "sent and answered");
    return cost;
  }

  /**
   * How fast `sendBatch` takes N 4-byte messages into a deactivated kernel (nothing is
   * dispatched while the clock runs): an Int32Array already in the input layout, and an array of
   * objects. Packing a batch can take less than the clock's step, so a sample is a group of
   * batches sent back to back into a queue with room for them all (see rounds); after each the
   * kernel is reactivated and drained, checking every answer, and paused again. `runtime` is the
   * WebGPU one, or without WebGPU the cpu backend's (the packing is the same host code), and the
   * kernel `id` (`definition`, or a built-in).
   */
  async hostPacking(runtime, id, definition) {
    const messages = this.plan.packingMessages;
    const maxGroup = Math.max(1, Math.floor(MAX_QUEUE / messages));
    await runtime.launch(id, definition, { queueSize: messages * maxGroup });
    await runtime.activate(id);
    await runtime.deactivate(id);
    const lane = (label, prepare) => ({
      label, prepare, grouped: true, maxGroup,
      step: async (argument) => {
        const accepted = await runtime.sendBatch(id, argument, { timeout: 0 });
        if (accepted !== messages) throw new Error(`sendBatch accepted ${accepted} of ${messages} into a queue with room for them`);
      },
      // Off the clock: only sendBatch's own time counts, not the drain that checks the answers.
      collect: async (count) => {
        await runtime.reactivate(id);
        const answers = await drain(runtime, id, count);
        await runtime.deactivate(id);
        return answers;
      },
    });
    const [typedArray] = await this.throughputs(messages, [lane(`host packing: sendBatch(Int32Array of ${grouped(messages)})`, (v) => v)]);
    const [objects] = await this.throughputs(messages, [lane(`host packing: sendBatch(${grouped(messages)} objects)`, (v) => Array.from(v, (value) => ({ value })))]);
    await terminateAll(runtime, [id]);
    return { messages, messageBytes: 4, backend: runtime.adapter.backend, targetMsgsPerSec: HOST_PACKING_TARGET, typedArray, objects };
  }

  /**
   * Two WebGPU devices: the pause a live migration causes while messages flow (the kernel is out of
   * every tick that long; compiling on the target comes first), and one message through 3 connected
   * stages with the middle one on the other device (relayed through the host) vs all on one device.
   */
  async devices(definitions) {
    const runtime = await RingKernelRuntime.create({ devices: [{}, {}] });
    try {
      const migrations = this.plan.quick ? 10 : 100;
      const moving = "migrating-doubler";
      await runtime.launch(moving, definitions.doublerCopy, { queueSize: 4096, device: 0, autoActivate: true });
      const pauses = [];
      const calls = [];
      this.ui.phase("two devices: migrations with 500 messages in flight", migrations);
      for (let i = 0; i < migrations; i++) {
        const v = values(500, i);
        await runtime.sendBatch(moving, v, WAIT);
        const start = now();
        const report = await runtime.migrate(moving, (i + 1) % 2);
        calls.push(now() - start);
        pauses.push(report.pauseMs);
        expectMultiplied("migration", v, await drain(runtime, moving, v.length), 2);
        this.checked += v.length;
        this.ui.progress(i + 1);
      }
      const pause = latency(pauses);
      const migrate = latency(calls);
      this.ui.latency("two devices: migration pause", pause);
      this.ui.latency("two devices: migrate call (compiling included)", migrate);
      const stages = 3;
      const inputs = (i) => values(1, i).map((v) => v >> stages);
      const lanes = [];
      for (const [name, devices] of [["middle stage on the other device", [0, 1, 0]], ["one device", [0, 0, 0]]]) {
        const chain = devices.map((_, k) => `devices-${devices.join("")}-${k}`);
        for (let k = 0; k < stages; k++) await runtime.launch(chain[k], definitions.stage, { device: devices[k] });
        for (let k = 0; k + 1 < stages; k++) await runtime.connect(chain[k], chain[k + 1]);
        for (const id of chain) await runtime.activate(id);
        lanes.push({
          label: `two devices: 3-stage pipeline, ${name}`, inputs, factor: 2 ** stages,
          step: async (v) => {
            await runtime.send(chain[0], { value: v[0] }, WAIT);
            return [(await runtime.receive(chain[stages - 1], WAIT)).value];
          },
        });
      }
      const [pipelineAcrossDevices, pipelineOneDevice] = await this.latencies(lanes);
      return { migrations, pause, migrate, pipelineAcrossDevices, pipelineOneDevice };
    } finally {
      await runtime.dispose().catch(() => {});
    }
  }
}

/** How much longer `runtime`'s host parts took than `raw`'s, before and after the map (p50s, µs). */
function extraHost(runtime, raw) {
  const before = runtime.before.p50 - raw.before.p50;
  const after = runtime.after.p50 - raw.after.p50;
  return { before, after, total: before + after };
}

/** The report's ratios; those of sections that did not run (no WebGPU) are left out. */
function computeRatios(result) {
  const { hostPacking } = result;
  const host = {
    hostPackingTypedOverObjects: hostPacking.typedArray.msgsPerSec / hostPacking.objects.msgsPerSec,
    hostPackingOverTarget: hostPacking.typedArray.msgsPerSec / hostPacking.targetMsgsPerSec,
  };
  if (!result.webgpu.available) return host;
  const { floors, roundTrip, roundTripBreakdown: split, throughput: batches, perMessage, kernels, kernelRoundsTakingTurns, pipeline, objects } = result;
  const tick = (n) => kernels.find((k) => k.kernels === n)?.tick.p50;
  const largest = batches.reduce((a, b) => (b.messages > (a?.messages ?? -1) ? b : a), null);
  return {
    batchedOverRaw: batches.map((b) => ({ messages: b.messages, value: b.runtime.msgsPerSec / b.raw.msgsPerSec })),
    batchedOverRawSameGrid: batches.map((b) => ({ messages: b.messages, value: b.runtime.msgsPerSec / b.rawSameGrid.msgsPerSec })),
    batchedOverPerMessage: { messages: largest?.messages ?? 0, value: (largest?.runtime.msgsPerSec ?? NaN) / perMessage.msgsPerSec },
    roundTripOverRawSingle: roundTrip.sendReceive.p50 / floors.rawSingle.p50,
    // Whether that floor is one here (the report prints no ratio over a suspect one).
    rawSingleFloor: rawFloorCheck(floors.rawSingle, batches, roundTrip.sendReceive),
    roundTripOverSubmitAndMap: roundTrip.sendReceive.p50 / floors.submitAndMap.p50,
    // The runtime's own host time over the raw dispatch's (p50s, µs), which no adapter's wait hides.
    roundTripExtraHostUs: split ? extraHost(split.sendReceive, split.rawSingle) : null,
    callExtraHostUs: split ? extraHost(split.call, split.rawSingle) : null,
    tick16OverTick1: tick(16) !== undefined && tick(1) !== undefined ? tick(16) / tick(1) : null,
    tick16OverTick1Paired: kernelRoundsTakingTurns ? kernelRoundsTakingTurns.sixteen.p50 / kernelRoundsTakingTurns.one.p50 : null,
    pipelineOverSingleStage: pipeline.available ? pipeline.connected.p50 / pipeline.singleStage.p50 : null,
    hostRelayedOverSingleStage: pipeline.hostRelayed.p50 / pipeline.singleStage.p50,
    pipelineOverHostRelayed: pipeline.available ? pipeline.connected.p50 / pipeline.hostRelayed.p50 : null,
    unfusedOverSingleStage: pipeline.available ? pipeline.unfused.p50 / pipeline.singleStage.p50 : null,
    pausedMiddleOverSingleStage: pipeline.available ? pipeline.pausedMiddleStage.p50 / pipeline.singleStage.p50 : null,
    checkpointEveryTickOverNever: result.stateCheckpoint.everyTick.p50 / result.stateCheckpoint.never.p50,
    ...host,
    objectsOverTypedArrays: objects.layouts.doubler.objects.msgsPerSec / objects.layouts.doubler.typedArrays.msgsPerSec,
    objectsOverJsActor: objects.layouts.doubler.objects.msgsPerSec / objects.layouts.doubler.jsActor.msgsPerSec,
  };
}

/**
 * What this browser offers for WebGPU: `{ adapter }`, or `{ adapter: null, reason }` saying in
 * one sentence why there is none. `navigator.gpu` alone proves nothing: Chromium on Linux has it
 * without `--enable-unsafe-webgpu`, and then gives no adapter.
 */
export async function probeWebGpu() {
  if (!navigator.gpu) {
    return { adapter: null, reason: globalThis.isSecureContext === false
      ? "no navigator.gpu: the page is not a secure context (serve it from localhost or https)"
      : "no navigator.gpu: this browser has no WebGPU, or it is turned off" };
  }
  const adapter = await navigator.gpu.requestAdapter().catch(() => null);
  return adapter ? { adapter } : {
    adapter: null,
    reason: "navigator.gpu gave no adapter: WebGPU is disabled or the GPU blocklisted (Chromium on Linux: --enable-unsafe-webgpu)",
  };
}

/** The sections only WebGPU can run, named where they are not measured. */
const WEBGPU_SECTIONS = "floors, round trips, batches, one dispatch per message, kernel ticks, pipeline, a large state's checkpoint, host cost, objects in and out, two devices";

/**
 * The runtime on WebGPU, or null where this browser has none (`BackendUnavailableError`): the
 * sections that need no GPU still run then. `webgpu` in the result says which, and why not.
 */
async function openWebGpu(result, ui) {
  try {
    const runtime = await RingKernelRuntime.create({ enableTelemetry: true });
    result.webgpu = { available: true };
    return runtime;
  } catch (e) {
    if (e?.name !== "BackendUnavailableError") throw e;
    const { reason } = await probeWebGpu();
    result.webgpu = { available: false, reason: reason ?? e.message.split(". ")[0], skipped: WEBGPU_SECTIONS, error: `${e.name}: ${e.message}` };
    ui.row("WebGPU sections", "not measured", `${result.webgpu.reason}: ${WEBGPU_SECTIONS}`);
    return null;
  }
}

/**
 * Runs the whole bench and resolves with the report (the native bench's JSON plus the
 * browser-only sections). `partial` fills in as sections finish, for the error report. Without
 * WebGPU it runs what needs none (the JS actor, the cpu backend, host packing on the cpu
 * backend), and `webgpu.reason` says why the rest was not measured.
 */
export async function runBench(plan, ui, partial = {}) {
  const definitions = await setup();
  const result = partial;
  const timerUs = timerResolutionUs();
  const bench = new Bench(plan, ui, timerUs / 1e3);
  let runtime;
  let raw;
  try {
    ui.phase("opening the runtime and a raw WebGPU device", 1);
    result.adapter = null;
    runtime = await openWebGpu(result, ui);
    if (runtime) {
      raw = await RawGpu.open();
      result.adapter = { ...runtime.adapter, webgpu: raw.adapterInfo() };
    }
    ui.adapter(result.adapter, result.webgpu);
    result.config = {
      quick: plan.quick, iterations: plan.iterations, naiveCount: plan.naiveCount, queueSize: plan.queueSize,
      batchSizes: plan.batchSizes, kernelCounts: plan.kernelCounts, telemetry: true,
      warmup: plan.warmup, packingMessages: plan.packingMessages, hostCostMessages: plan.hostCostMessages,
      objectMessages: plan.objectMessages,
      pipelineStages: PIPELINE_STAGES,
      minGroupedSampleMs: bench.minSampleMs, crossOriginIsolated: globalThis.crossOriginIsolated === true,
      timerResolutionUs: timerUs, userAgent: navigator.userAgent,
    };
    if (runtime) {
      await runtime.launch(DOUBLER, null, { queueSize: plan.queueSize });
      await runtime.activate(DOUBLER);

      Object.assign(result, await bench.floorsAndRoundTrip(runtime, raw));
      result.throughput = await bench.batches(runtime, raw);
      result.perMessage = await bench.perMessage(raw);
      ({ ticks: result.kernels, rounds: result.kernelRoundsTakingTurns } = await bench.kernelTicks(runtime, definitions));
      result.pipeline = await bench.pipeline(runtime, definitions);
      result.stateCheckpoint = await bench.stateCheckpoint(runtime, definitions);
      result.hostPacking = await bench.hostPacking(runtime, "packing", definitions.doublerCopy);
      result.hostCost = await bench.hostCost(runtime, definitions);
      const actor = new JsActor(doubleHandler);
      result.objects = await bench.objects(runtime, definitions, actor);
      await actor.stop();
      await runtime.dispose();
      runtime = undefined;
      raw.destroy();
      raw = undefined;
    } else {
      // The same host packing, into the cpu backend's built-in doubler: its handler is the wasm
      // module's own, where a JavaScript one would make draining the answers the slow part.
      runtime = await RingKernelRuntime.create({ backend: "cpu" });
      result.hostPacking = await bench.hostPacking(runtime, DOUBLER, null);
      await runtime.dispose();
      runtime = undefined;
    }
    result.jsActor = await bench.jsActor();
    result.cpuBackend = await bench.cpuBackend();
    if (result.webgpu.available) result.devices = await bench.devices(definitions);
    result.ratios = computeRatios(result);
    result.answersChecked = bench.checked;
    return result;
  } finally {
    await runtime?.dispose().catch(() => {});
    raw?.destroy();
  }
}

// --- the page ----------------------------------------------------------------------------------

const $ = (selector) => document.querySelector(selector);

/** Progress and results as they come, in the page and on the console (the runner forwards it). */
function pageUi() {
  const rows = $("#rows");
  const status = $("#status");
  let label = "";
  let steps = 0;
  let shownAt = 0;
  const row = (what, value, detail = "") => {
    const tr = document.createElement("tr");
    for (const text of [what, value, detail]) tr.appendChild(document.createElement("td")).textContent = text;
    rows.appendChild(tr);
    console.log(`[bench] ${what}: ${value}${detail ? ` (${detail})` : ""}`);
  };
  return {
    phase(name, total) {
      label = name;
      steps = total;
      status.textContent = `${name}…`;
    },
    progress(done) {
      if (now() - shownAt < 200 && done < steps) return;
      shownAt = now();
      status.textContent = `${label}: ${done}/${steps}`;
    },
    row,
    latency: (what, l) => row(what, `p50 ${l.p50.toFixed(l.p50 < 10 ? 2 : 1)} µs`,
      `p99 ${l.p99.toFixed(l.p99 < 10 ? 2 : 1)} µs, ${l.samples} samples${l.groupSize ? `, each the mean of ${grouped(l.groupSize)}` : ""}`),
    throughput: (what, t) => row(what, `${grouped(t.msgsPerSec)} msgs/s`,
      `median ${duration(t.medianMs)} of ${t.repetitions}${t.groupSize ? `, timed in groups of ${grouped(t.groupSize)}` : ""}`),
    adapter(a, webgpu) {
      $("#adapter").textContent = a
        ? `${a.name} · ${a.backend} · ${a.deviceType}${a.driver ? ` · driver ${a.driver}` : ""}` +
          (a.webgpu.vendor ? ` · ${a.webgpu.vendor} ${a.webgpu.architecture}` : "") +
          (a.webgpu.isFallbackAdapter ? " · fallback adapter" : "")
        : `none (${webgpu.reason}): the WebGPU sections are not measured`;
    },
    status(text) {
      status.textContent = text;
    },
  };
}

/** The page's look for an adapter (showProbe): a run waits for it, so its report is not overwritten. */
let probed = Promise.resolve();

async function start() {
  await probed;
  const params = new URLSearchParams(location.search);
  // The box, which starts as the URL's `quick=1` says, decides: unchecked means a full run.
  params.set("quick", $("#quick").checked ? "1" : "0");
  const plan = makePlan(params);
  const ui = pageUi();
  $("#run").disabled = true;
  $("#rows").replaceChildren();
  $("#report").textContent = "";
  $("#json").textContent = "";
  document.body.dataset.status = "running";
  window.__bench = undefined;
  const partial = {};
  const started = now();
  try {
    const result = await runBench(plan, ui, partial);
    const text = formatReport(result);
    $("#report").textContent = text;
    $("#json").textContent = JSON.stringify(result, null, 2);
    ui.status(`done in ${((now() - started) / 1e3).toFixed(1)} s`);
    document.body.dataset.status = "done";
    window.__bench = { ok: true, result };
  } catch (e) {
    const error = { name: e?.name ?? "Error", message: e?.message ?? String(e), stack: e?.stack ?? "" };
    console.error(`[bench] failed: ${error.name}: ${error.message}`);
    ui.status(`failed: ${error.name}: ${error.message}`);
    $("#json").textContent = JSON.stringify({ ...partial, error }, null, 2);
    document.body.dataset.status = "failed";
    window.__bench = { ok: false, error, result: partial };
  } finally {
    $("#run").disabled = false;
  }
}

if (typeof document !== "undefined" && $("#run")) {
  const params = new URLSearchParams(location.search);
  $("#quick").checked = params.get("quick") === "1";
  $("#run").addEventListener("click", start);
  probed = showProbe();
  if (params.get("autorun") === "1") start();
}

/** What the page finds before a run: a WebGPU adapter (what it says of itself), or none and why. */
async function showProbe() {
  $("#adapter").textContent = "looking for a WebGPU adapter…";
  const { adapter, reason } = await probeWebGpu();
  if (!adapter) {
    $("#adapter").textContent = `none: ${reason}. Run measures what needs no GPU (the plain JS actor, the cpu backend, ` +
      "host packing); the WebGPU sections are not measured.";
    return;
  }
  const info = adapter.info ?? {};
  const words = [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "an adapter that does not name itself";
  $("#adapter").textContent = `${words}${info.isFallbackAdapter ?? adapter.isFallbackAdapter ? " · fallback adapter" : ""} ` +
    "(WebGPU; the runtime's name for it shows once the run starts)";
}

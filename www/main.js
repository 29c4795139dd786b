// ringkernel-web live demo. Launches a built-in doubler, the compute-heavy mandelbrot built-in and
// a three-stage pipeline of user-defined kernels connected with `connect` (on one GPU device the
// runtime runs the chain fused, one dispatch for all three, or ring to ring while it cannot; a
// stage moved to the other device is relayed through the host; the page sends to the first stage
// and receives from the last), streams batches through them with the packed fast path
// (sendBatch / receiveBatch), and charts each kernel's telemetry as it happens.
import init, { RingKernelRuntime, defineMessage, ringKernel } from "./pkg/index.js";
import { TimeSeriesChart, formatMs, formatShort } from "./charts.js";
import { MandelbrotView } from "./mandelbrot.js";

const SAMPLE_MS = 250;
const RATE_WINDOW_MS = 500;
const WINDOW_MS = 60_000;
const ACTIONS = ["launch", "activate", "deactivate", "reactivate", "terminate"];
/** What each state allows; "none" is an id the runtime does not know (never launched, or removed). */
const LEGAL = {
  none: ["launch"],
  created: [],
  launched: ["activate", "terminate"],
  active: ["deactivate", "terminate"],
  deactivated: ["reactivate", "terminate"],
  terminating: [],
  terminated: ["launch"],
  failed: ["terminate"], // until the device is recovered
};
const ACCEPTS_INPUT = new Set(["launched", "active", "deactivated"]);
/** Errors that streaming meets whenever a kernel is paused, stopping, stopped or being relaunched. */
const QUIET = new Set([
  "TimeoutError", "QueueFullError", "KernelStateError", "KernelNotFoundError", "DeviceLostError",
  // Refusals of the operations layer: an open circuit breaker, a degraded runtime shedding load.
  "CircuitOpenError", "OverloadedError",
]);
/** Device bytes the page lets the runtime hold (its memory pressure is measured against them). */
const MEMORY_BUDGET = 32 * 1024 * 1024;
/** Circuit breakers for every kernel, quick to open and to probe again so a visitor sees both. */
const CIRCUIT_BREAKER = { failureThreshold: 3, windowMs: 10_000, openMs: 3000, halfOpenProbes: 1 };
/** Shading behind a kernel's charts while it is not processing. */
const BANDS = {
  deactivated: "rgba(245, 158, 11, 0.16)",
  launched: "rgba(59, 130, 246, 0.10)",
  created: "rgba(59, 130, 246, 0.10)",
  terminating: "rgba(100, 116, 139, 0.14)",
  terminated: "rgba(100, 116, 139, 0.14)",
  failed: "rgba(220, 38, 38, 0.16)",
  none: "rgba(100, 116, 139, 0.14)",
};
/** Offered load multipliers for the senders (msg/s below are "normal"). */
const LOADS = { light: 0.25, normal: 1, heavy: 4 };
const VALUE_RANGE = 1_000_000;
const PIPELINE_INPUTS = 1000;
/** Kernels whose ids are connectable: both ends of a `connect` must be in one of these. */
const CONNECTABLE = new Set(["launched", "active", "deactivated"]);
/** Where "launch" places every kernel, so the pipeline's stages start side by side on one device. */
const LAUNCH_DEVICE = 0;

const KERNELS = [
  {
    id: "doubler", color: "#2563eb", queueSize: 4096, rate: 40_000,
    kind: "built-in", signature: "{ value: i32 } → { result: i32 }",
  },
  {
    id: "mandelbrot", color: "#9333ea", queueSize: 2048, rate: 4_000, answerLabel: "drawing",
    kind: "built-in · compute-heavy", signature: "{ origin, step, max_iter } → { iterations: array<u32, 64> }",
  },
  {
    id: "scale", color: "#0d9488", queueSize: 4096, rate: 20_000, group: "pipeline",
    stage: 1, signature: "{ value: f32 } → { value: value × 3 }",
    wgsl: "fn handle(m: PipelineValue) -> PipelineValue { return PipelineValue(m.value * 3.0); }",
    handler: (m) => ({ value: Math.fround(m.value * 3) }),
    input: (v) => v / 3, formula: "3x",
  },
  {
    id: "offset", color: "#ea580c", queueSize: 4096, group: "pipeline",
    stage: 2, signature: "{ value: f32 } → { value: value + 1 }",
    wgsl: "fn handle(m: PipelineValue) -> PipelineValue { return PipelineValue(m.value + 1.0); }",
    handler: (m) => ({ value: Math.fround(m.value + 1) }),
    input: (v) => (v - 1) / 3, formula: "3x + 1",
  },
  {
    id: "square", color: "#db2777", queueSize: 4096, group: "pipeline",
    stage: 3, signature: "{ value: f32 } → { value: value² }",
    wgsl: "fn handle(m: PipelineValue) -> PipelineValue { return PipelineValue(m.value * m.value); }",
    handler: (m) => ({ value: Math.fround(m.value * m.value) }),
    input: (v) => (Math.sqrt(v) - 1) / 3, formula: "(3x + 1)²",
  },
];

const $ = (selector, root = document) => root.querySelector(selector);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const count = (n) => Math.round(n).toLocaleString("en-US");

/** The pipeline's stages in order: each one's answers go into the next one's input. */
const PIPELINE = KERNELS.filter((k) => k.group === "pipeline").map((k) => k.id);

/** Everything the page tracks per kernel, by id. */
const kernels = Object.fromEntries(KERNELS.map((def) => [def.id, {
  ...def,
  state: "none",
  busy: false, // a lifecycle call is in progress: its buttons wait for it
  history: [], // recent { t, processed } for msg/s
  msgPerSec: 0,
  recentLatencyMs: null, // mean send → answer of the last half second's answers (see recentLatency)
  checked: 0,
  wrong: 0,
  last: "", // a note about the current state (a move's pause, a terminate's outcome); setState clears it
  fusing: false, // its last dispatches ran fused with its pipeline neighbours (see sample)
  retired: 0, // messages processed by this id's earlier instances (relaunched since)
  held: false, // misbehave() is driving it: its stream and its buttons wait
}]));

let runtime;
/** Where handlers run: "GPU", or "CPU" on the cpu backend (the words on the page follow it). */
let device = "GPU";
/** The cpu backend: handlers are JavaScript (the built-ins' Rust) run on the host, not WGSL dispatched on a GPU. */
let onCpu = false;
/** Devices lost now (ids), as the last sample saw them: no kernel can be moved onto one. */
let lostDevices = new Set();
let streaming = true;
let load = LOADS.normal;
/**
 * Until every kernel is launched and active: the controls wait, since a lifecycle click or a lost
 * device in between would make startup's own launch or activate fail half way.
 */
let starting = true;

async function main() {
  const backend = new URLSearchParams(location.search).get("backend") ?? undefined;
  document.body.dataset.status = "starting";
  await init();
  try {
    // The production preset (circuit breakers, the degradation manager), with breakers quick to
    // open and probe, a memory budget so memory pressure means something, and recovery left to
    // the Recover button so a lost device stays on screen.
    // Two devices on WebGPU (two adapters asked for: on a laptop with two GPUs, one each), so a
    // kernel can be moved, live, from one to the other.
    const devices = backend === "cpu" ? undefined : [{}, { powerPreference: "low-power" }];
    runtime = await RingKernelRuntime.create({
      preset: "production", autoRecover: false, enableTelemetry: true, defaultQueueSize: 4096,
      circuitBreaker: CIRCUIT_BREAKER,
      memoryBudget: MEMORY_BUDGET, ...(backend && { backend }), ...(devices && { devices }),
    });
  } catch (error) {
    return showUnavailable(error, backend);
  }
  onCpu = runtime.adapter.backend === "cpu";
  device = onCpu ? "CPU" : "GPU";
  for (const el of document.querySelectorAll("[data-device]")) el.textContent = device;
  // Texts written for one backend: the page shows those of the backend in use.
  for (const el of document.querySelectorAll("[data-on]")) el.hidden = el.dataset.on !== (onCpu ? "cpu" : "gpu");
  $("#memory-total").hidden = onCpu;
  showAdapter(runtime.adapter);
  defineUserKernels();
  const mandelbrot = new MandelbrotView($("#mandelbrot-canvas"));
  window.runtime = runtime;
  window.demo = { runtime, kernels, mandelbrot, act, setStreaming, setLoad, loseDevice, recover, misbehave, migrate };

  buildRows();
  $("#dashboard").hidden = false;
  $("#stream").checked = streaming;
  $("#stream").onchange = (e) => setStreaming(e.target.checked);
  $("#load").onchange = (e) => setLoad(e.target.value);
  $("#device-controls").hidden = onCpu;
  $("#lose-device").onclick = loseDevice;
  $("#recover").onclick = recover;
  $("#misbehave").onclick = misbehave;
  $("#dismiss-errors").onclick = dismissErrors;
  setInterval(() => sample(mandelbrot), SAMPLE_MS);
  sample(mandelbrot);

  const unstarted = await startKernels();
  starting = false;
  for (const k of Object.values(kernels)) render(k);
  renderTotals();
  // Streams start once every kernel is active: streaming into kernels that are only launched
  // while the others compile would fill their queues, and the runtime rightly reads that as
  // load (degradation "critical") for the first seconds of every visit.
  startStreams(mandelbrot);
  if (unstarted.length) {
    // Not "running": the tests and a visitor would take the page for working.
    document.body.dataset.status = "error";
    showError(new Error(`Startup did not finish: ${unstarted.map((k) => `${k.id} is ${k.state === "none" ? "not launched" : k.state}`).join(", ")}`));
    return;
  }
  document.body.dataset.status = "running";
}

/**
 * Launches (compiles) every kernel before activating any, so they all start flowing together;
 * launching a pipeline stage connects it to its launched neighbours (see connectPipeline). The
 * controls stay disabled meanwhile (`starting`). Resolves with the kernels that are not active
 * at the end (act has shown why).
 */
async function startKernels() {
  for (const { id } of KERNELS) await act(id, "launch");
  for (const { id } of KERNELS) await act(id, "activate");
  return Object.values(kernels).filter((k) => k.state !== "active");
}

/** The pipeline's stages: one message type in and out, so stage N's answers are stage N+1's input as they are. */
function defineUserKernels() {
  const PipelineValue = defineMessage("PipelineValue", { value: "f32" });
  for (const k of KERNELS.filter((k) => k.wgsl)) {
    // The CPU backend runs `handler` (the same function in JS); WebGPU runs the WGSL.
    ringKernel({ id: k.id, input: PipelineValue, output: PipelineValue, wgsl: k.wgsl, ...(onCpu && { handler: k.handler }) });
  }
}

function setStreaming(on) {
  streaming = on;
  $("#stream").checked = on;
}

function setLoad(name) {
  load = LOADS[name] ?? LOADS.normal;
  $("#load").value = name;
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

async function act(id, action) {
  const k = kernels[id];
  k.busy = true;
  render(k);
  let note = "";
  try {
    if (action === "launch") {
      // Terminated kernels never restart: forget this one so the id can be launched afresh. What
      // it processed stays in the page's running total (its telemetry goes with it).
      if (runtime.kernelIds.includes(id)) {
        k.retired += runtime.getTelemetry(id)?.messagesProcessed ?? 0;
        runtime.remove(id);
      }
      // A fresh instance: its counters start at zero, and so do the page's checks of its answers;
      // the old instance's last answer is not this one's.
      Object.assign(k, { checked: 0, wrong: 0, answer: undefined });
      k.onRelaunch?.();
      // Everything starts on one device, so the pipeline's stages run fused there; "move" takes a
      // kernel to the other device while it runs. While that device is lost, render() keeps
      // "launch" disabled (the runtime would refuse with DeviceLostError).
      await runtime.launch(id, undefined, { queueSize: k.queueSize, device: LAUNCH_DEVICE });
      // Terminating a stage took it out of the pipeline; launched again, it goes back in.
      if (k.group === "pipeline") await connectPipeline();
    } else if (action === "terminate") {
      await runtime.terminate(id, { timeout: 5000 });
    } else {
      await runtime[action](id);
    }
  } catch (error) {
    note = expectedOutcome(action, error);
    if (note === null) showError(error);
  } finally {
    k.busy = false;
    setState(k, stateOf(id));
    k.last = note ?? "";
    render(k);
  }
}

/**
 * What a lifecycle call's error says when it is an outcome the runtime documents rather than a
 * fault, as the card's note; null for an unexpected error. A terminate that timed out stopped
 * the kernel with messages left; so does terminating a kernel whose device was lost (README,
 * Reliability: "a failed kernel can still be terminated without recovering: it stops at once, and
 * if it had messages, DeviceLostError names how many were never processed").
 */
function expectedOutcome(action, error) {
  if (action !== "terminate") return null;
  if (error?.name === "TimeoutError") return error.message;
  if (error?.name === "DeviceLostError") {
    const n = error.unprocessed ?? 0;
    return `Terminated with its device lost: ${count(n)} message${n === 1 ? "" : "s"} left unprocessed ` +
      "(Recover before terminating runs them first).";
  }
  return null;
}

/**
 * Records kernel `k`'s state. A note about the state it leaves (a move's pause, a terminate's
 * outcome) goes with it, so the new state's own explanation shows (a moved kernel that then
 * fails reads "Failed: …", not where it moved).
 */
function setState(k, state) {
  if (state !== k.state) k.last = "";
  k.state = state;
}

/**
 * Moves kernel `id`, live, to the runtime's other device: its counters, state and connections
 * come along, and every message is answered once and in order (answers to or from a connected
 * neighbour left behind are relayed through the host, the next stage's input queue). The card
 * shows the pause the move caused, until the kernel's state changes.
 */
async function migrate(id) {
  const k = kernels[id];
  k.busy = true;
  render(k);
  let note = "";
  try {
    const to = (runtime.deviceOf(id) + 1) % runtime.deviceCount;
    const report = await runtime.migrate(id, to);
    note = `Moved to device ${report.to}: out of the tick for ${report.pauseMs.toFixed(2)} ms, ` +
      `${report.requeued} messages in flight answered there.`;
  } catch (error) {
    showError(error);
  } finally {
    k.busy = false;
    setState(k, stateOf(id));
    k.last = note;
    render(k);
  }
}

/**
 * Destroys device 0 (where every kernel is launched), as a driver reset would: the kernels on it
 * become "failed" and keep their messages; kernels moved to device 1 keep running.
 */
function loseDevice() {
  try {
    runtime.destroyDevice(LAUNCH_DEVICE);
  } catch (error) {
    showError(error);
  }
}

/** A new device, every failed kernel relaunched where it was, unanswered messages processed in order. */
async function recover() {
  $("#recover").disabled = true;
  try {
    await runtime.recover();
  } catch (error) {
    showError(error);
  }
}

/**
 * Makes the doubler fail three times in a row: paused, calls with a 1 ms timeout time out, one
 * after another until its circuit opens (a tick still in flight when it was paused answers after
 * the pause, and that success starts the run of failures again; ten calls at most). Its stream
 * holds off meanwhile, and the calls wait for its queue to have room first: a stream that keeps
 * the queue full would refuse them with `QueueFullError`, which is not the doubler's failure.
 * Its circuit breaker opens: sends to it are refused (`CircuitOpenError`) and nothing is queued.
 * After `openMs` it lets one probe through; the doubler, active again, answers it and the circuit
 * closes. The calls' messages are still processed; their late answers are discarded (counted as
 * `answersAbandoned`), so the page's checks of the doubler's answers stay in order.
 *
 * Only an active doubler can misbehave so (the button is enabled only then: see `render`): one
 * that is paused already would time out with its queue full of the stream's messages, one only
 * launched cannot be reactivated, a terminated one takes no calls. It leaves the doubler as it
 * found it, active, and holds its lifecycle buttons meanwhile so the visitor's clicks cannot
 * interleave with its pause and reactivation.
 */
async function misbehave() {
  const k = kernels.doubler;
  if (k.held || k.busy || stateOf("doubler") !== "active") return;
  k.held = true;
  render(k);
  try {
    const room = () => runtime.getTelemetry("doubler").inputQueueDepth <= k.queueSize - 10;
    for (let waited = 0; !room() && waited < 5000; waited += 20) await sleep(20);
    await act("doubler", "deactivate");
    for (let value = 1; value <= 10 && runtime.circuitBreaker("doubler").state !== "open"; value++) {
      const outcome = await runtime.call("doubler", { value }, { timeout: 1 }).catch((e) => e);
      if (!["TimeoutError", "CircuitOpenError"].includes(outcome?.name)) showError(outcome);
    }
    // Back to active, unless something else (a lost device) changed its state meanwhile.
    if (stateOf("doubler") === "deactivated") await act("doubler", "reactivate");
  } finally {
    k.held = false;
    render(k);
  }
}

function stateOf(id) {
  return runtime.kernelIds.includes(id) ? runtime.getState(id) : "none";
}

/**
 * Connects every pair of neighbouring pipeline stages that both exist and are not connected yet:
 * from then on the first one's answers go into the second one's input with no round trip through
 * the page (fused into one dispatch, ring to ring on the GPU, or relayed through the host: see
 * hop). A stage that is compiling or terminated is skipped; its own launch connects it once it is
 * back.
 */
async function connectPipeline() {
  for (let i = 0; i + 1 < PIPELINE.length; i++) {
    const [from, to] = [PIPELINE[i], PIPELINE[i + 1]];
    if (!CONNECTABLE.has(stateOf(from)) || !CONNECTABLE.has(stateOf(to))) continue;
    if (runtime.getTelemetry(from)?.connectedTo === to) continue;
    await runtime.connect(from, to);
  }
}

// ---------------------------------------------------------------------------------------------
// Streaming: senders at an offered rate, and receivers that check or draw answers.
// Nothing here blocks: every call is a promise with a short timeout, and a paused or stopped
// kernel only makes its loop wait and try again.

function startStreams(mandelbrot) {
  const doubler = { seq: 0, expect: 0 };
  kernels.doubler.onRelaunch = () => Object.assign(doubler, { seq: 0, expect: 0 });
  sender("doubler", {
    make: (n) => Int32Array.from({ length: n }, (_, i) => (doubler.seq + i) % VALUE_RANGE),
    commit: (n) => (doubler.seq += n),
  });
  receiver("doubler", (bytes) => {
    const answers = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    for (const result of answers) check("doubler", result === 2 * (doubler.expect++ % VALUE_RANGE));
    const value = (doubler.expect - 1) % VALUE_RANGE;
    kernels.doubler.answer = `${count(value)} → ${count(answers[answers.length - 1])}`;
  });

  kernels.mandelbrot.onRelaunch = () => {
    // A fresh instance: its tiles drawn start at zero, as the other cards' checked answers do.
    mandelbrot.reset();
    mandelbrot.drawn = 0;
    kernels.mandelbrot.drawn = 0;
  };
  sender("mandelbrot", { make: (n) => mandelbrot.make(n), commit: (n) => mandelbrot.commit(n) });
  receiver("mandelbrot", (bytes) => {
    mandelbrot.paint(bytes);
    kernels.mandelbrot.answer = mandelbrot.describe();
    kernels.mandelbrot.drawn = mandelbrot.drawn;
  }, 2048);

  // The pipeline: the page sends to the first stage and receives from the last; the stages in
  // between pass answers on inside the runtime. Answers come out in the order the inputs went in.
  const pipeline = { x: 0, expect: 0, resync: false };
  sender(PIPELINE[0], {
    make: (n) => Float32Array.from({ length: n }, (_, i) => (pipeline.x + i) % PIPELINE_INPUTS),
    commit: (n) => (pipeline.x = (pipeline.x + n) % PIPELINE_INPUTS),
  });
  for (const id of PIPELINE) {
    const last = id === PIPELINE[PIPELINE.length - 1];
    const k = kernels[id];
    // A stage that feeds the next one has nothing to receive. Only while the pipeline is broken
    // after it (the next stage terminated) does the pipeline end there: the page takes its
    // answers then, and those that were waiting when it was connected again.
    const idle = last ? null : () => {
      const t = runtime.kernelIds.includes(id) ? runtime.getTelemetry(id) : null;
      return !t || (t.connectedTo !== null && t.outputQueueDepth === 0);
    };
    receiver(id, (bytes) => {
      const answers = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      for (const v of answers) {
        const input = k.input(v);
        const x = Math.round(input);
        const valid = Math.abs(input - x) < 1e-3 && x >= 0 && x < PIPELINE_INPUTS;
        if (!last) {
          // These inputs leave the pipeline here: the last stage's answers skip them.
          check(id, valid);
          pipeline.resync = true;
        } else if (valid && pipeline.resync) {
          check(id, true);
          pipeline.resync = false;
          pipeline.expect = x + 1;
        } else {
          check(id, valid && x === pipeline.expect % PIPELINE_INPUTS);
          pipeline.expect = x + 1;
        }
      }
      const v = answers[answers.length - 1];
      k.answer = `x = ${Math.round(k.input(v))} → ${k.formula} = ${count(v)}`;
    }, 16_384, idle);
  }
  // A relaunched stage starts a fresh instance: the last stage's answers restart where they are.
  for (const id of PIPELINE) kernels[id].onRelaunch = () => (pipeline.resync = true);
}

function check(id, ok) {
  if (ok) kernels[id].checked++;
  else kernels[id].wrong++;
}

/**
 * Sends to `id` at its offered rate while streaming is on. `make(n)` packs the next n messages,
 * `commit(accepted)` moves past the ones the kernel took. A full queue (a paused kernel fills its
 * queue up to the bound) accepts fewer: the sender then backs off instead of waiting.
 */
function sender(id, { make, commit }) {
  const k = kernels[id];
  let budget = 0;
  let last = performance.now();
  forever(async () => {
    const now = performance.now();
    const elapsed = now - last;
    last = now;
    if (!streaming || k.held || !ACCEPTS_INPUT.has(k.state)) {
      budget = 0;
      return 100;
    }
    // At most a quarter second's worth at once, so a stall never turns into a burst.
    const rate = k.rate * load;
    budget = Math.min(budget + (rate * elapsed) / 1000, rate / 4);
    const n = Math.floor(budget);
    if (n < 1) return 20;
    const accepted = await sendWhatFits(id, make(n), 20);
    commit(accepted);
    budget -= n;
    return accepted < n ? 200 : 20;
  });
}

/**
 * Sends what fits of `batch` within `timeout` ms: how many were queued (all, or as many as the
 * `QueueFullError` of a timeout that ran out says; those are answered, the rest were not queued).
 */
async function sendWhatFits(id, batch, timeout) {
  try {
    return await runtime.sendBatch(id, batch, { timeout });
  } catch (e) {
    if (e?.name === "QueueFullError") return e.accepted;
    throw e;
  }
}

/**
 * Takes `id`'s answers as they arrive and hands them, packed, to `onAnswers` (not while `idle()`).
 * A pipeline stage's receive can be waiting when the stage after it is launched again and
 * connected: its answers go on from then, and the runtime refuses the waiting receive (a
 * TypeError naming the connection). That is the pipeline mending, not an error: back to idle.
 */
function receiver(id, onAnswers, max = 16_384, idle = null) {
  forever(async () => {
    if (idle?.()) return 250;
    let bytes;
    try {
      bytes = await runtime.receiveBatch(id, { max, timeout: 250, packed: true });
    } catch (error) {
      if (idle?.()) return 0;
      throw error;
    }
    if (bytes.byteLength) onAnswers(bytes);
    return 0;
  });
}

/** Runs `step` again and again; it returns how long to wait before the next run. */
async function forever(step) {
  for (;;) {
    let wait;
    try {
      wait = await step();
    } catch (error) {
      const quiet = QUIET.has(error?.name);
      if (!quiet) showError(error);
      wait = quiet ? 100 : 1000;
    }
    await sleep(wait);
  }
}

// ---------------------------------------------------------------------------------------------
// Telemetry: sampled a few times a second into the numbers and charts.

let overview;

function sample(mandelbrot) {
  const now = performance.now();
  const known = new Set(runtime.kernelIds);
  lostDevices = new Set(runtime.topology().devices.filter((d) => d.lost).map((d) => d.id));
  for (const k of Object.values(kernels)) {
    setState(k, known.has(k.id) ? runtime.getState(k.id) : "none");
    const t = known.has(k.id) ? runtime.getTelemetry(k.id) : null;
    k.telemetry = t;
    // msg/s over the last half second: smooth enough to read, quick to show a pause.
    // A relaunch restarts the counter (a drop reads as 0).
    const processed = t?.messagesProcessed ?? 0;
    const before = k.history[0];
    const latest = {
      t: now, processed, answers: t?.latency.count ?? 0, latencySumMs: t?.latency.sumMs ?? 0,
      dispatches: t?.dispatches ?? 0, fused: t?.fusedDispatches ?? 0,
    };
    k.history.push(latest);
    if (k.history.length > RATE_WINDOW_MS / SAMPLE_MS) k.history.shift();
    k.msgPerSec = before && processed >= before.processed && now > before.t
      ? ((processed - before.processed) * 1000) / (now - before.t) : 0;
    k.recentLatencyMs = recentLatency(before, latest);
    k.fusing = fusing(k, before, latest);

    const band = BANDS[k.state] ?? null;
    k.charts.rate.push(now, [k.msgPerSec], band);
    k.charts.queue.push(now, t ? [t.inputQueueDepth, t.inFlight, t.outputQueueDepth] : [null, null, null], band);
    k.charts.latency.push(now, [k.recentLatencyMs], band);
  }
  // After every kernel's sample: a stage's route reads its neighbour's too (see hop).
  for (const k of Object.values(kernels)) render(k);
  overview.push(now, KERNELS.map(({ id }) => kernels[id].msgPerSec));
  renderTotals();
  mandelbrot.flush();
  for (const k of Object.values(kernels)) for (const chart of Object.values(k.charts)) chart.draw(now);
  overview.draw(now);
}

/**
 * The mean send → answer latency of the answers timed between two samples, or null when none
 * were. Telemetry's latency summary (p50, p99) covers everything since the kernel's launch, so
 * after a pause its p99 stays at the backlog's seconds long after the backlog drained; its count
 * and sum are running totals too, and their differences give what the last half second's
 * answers took. A relaunch restarts them: then everything counted is the new instance's.
 */
function recentLatency(before, after) {
  if (!before) return null;
  const base = after.answers >= before.answers ? before : { answers: 0, latencySumMs: 0 };
  const answers = after.answers - base.answers;
  return answers > 0 ? (after.latencySumMs - base.latencySumMs) / answers : null;
}

/**
 * Whether kernel `k`'s dispatches of the last half second ran fused (`fusedDispatches` rose with
 * `dispatches`); with no dispatches in between (nothing sent, or paused) it stays as it was. A
 * relaunch restarts the counters: then the new instance has not fused yet.
 */
function fusing(k, before, latest) {
  if (!before || latest.dispatches < before.dispatches) return false;
  if (latest.dispatches === before.dispatches) return k.fusing;
  return latest.fused > before.fused;
}

function renderTotals() {
  const all = Object.values(kernels);
  // A running total: earlier instances of relaunched kernels count too.
  const processed = all.reduce((sum, k) => sum + k.retired + (k.telemetry?.messagesProcessed ?? 0), 0);
  $("#total-processed").textContent = count(processed);
  $("#total-rate").textContent = formatShort(all.reduce((sum, k) => sum + k.msgPerSec, 0));
  $("#total-active").textContent = `${all.filter((k) => k.state === "active").length} / ${all.length}`;
  const bytes = all.reduce((sum, k) => sum + (k.telemetry?.gpuMemoryBytes ?? 0), 0);
  $("#total-memory").textContent = `${(bytes / 1024).toFixed(0)} KiB`;
  for (const k of all) $(`[data-legend="${k.id}"]`).textContent = formatShort(k.msgPerSec);
  const health = runtime.getSummary().device;
  $("#lose-device").disabled = starting || lostDevices.has(LAUNCH_DEVICE) || Boolean(health.lost);
  $("#recover").disabled = !health.lost;
  $("#device-status").textContent = health.lost
    ? `Device lost: ${health.lost}`
    : health.losses ? `Recovered ${health.recoveries} of ${health.losses} losses` : "";
  $("#device-status").dataset.lost = Boolean(health.lost);
  renderDevices();
  renderOperations();
}

/** Each device: its adapter, the kernels placed there, its ticks. */
function renderDevices() {
  const list = $("#devices");
  const { devices } = runtime.topology();
  list.hidden = devices.length < 2;
  const text = devices.map((d) => `device ${d.id}: ${d.adapter.name} · ${d.kernels.length} kernels · ` +
    `${count(d.ticks)} ticks${d.lost ? " · lost" : ""}`).join("\n");
  if (list.textContent !== text) list.textContent = text;
}

/** Health (with its reason), degradation, memory pressure, and each kernel's circuit breaker. */
function renderOperations() {
  $("#degradation").textContent = runtime.degradationLevel;
  $("#memory-pressure").textContent = `${Math.round(runtime.memoryPressure * 100)} %`;
  const { status, reason } = runtime.health();
  const el = $("#health");
  el.textContent = status;
  el.dataset.status = status;
  $("#health-reason").hidden = !reason;
  $("#health-reason").textContent = reason ?? "";
  for (const k of Object.values(kernels)) {
    let circuit = null;
    try {
      if (k.state !== "none") circuit = runtime.circuitBreaker(k.id);
    } catch {
      // Removed since the last sample: no breaker to show.
    }
    const pill = k.row && $("[data-field=circuit]", k.row);
    if (!pill) continue;
    const state = circuit?.state ?? "closed";
    pill.dataset.circuit = state;
    pill.textContent = state === "open" && circuit.retryAfterMs !== null
      ? `circuit open · probe in ${(circuit.retryAfterMs / 1000).toFixed(1)} s`
      : `circuit ${state === "halfOpen" ? "half-open" : state}`;
  }
}

function render(k) {
  const row = k.row;
  if (!row) return;
  const t = k.telemetry;
  const set = (field, text) => {
    const el = $(`[data-field="${field}"]`, row);
    if (el && el.textContent !== text) el.textContent = text;
  };
  row.dataset.state = k.state;
  set("state", k.state === "none" ? "not launched" : k.state);
  for (const button of row.querySelectorAll("button[data-action]")) {
    button.disabled = locked(k) || !LEGAL[k.state].includes(button.dataset.action);
  }
  renderLaunch(k);
  if (k.id === "doubler") {
    // Misbehaving means pausing an active doubler and making it active again (see misbehave).
    $("#misbehave").disabled = locked(k) || k.state !== "active";
  }
  renderMove(k);
  const placed = ["launched", "active", "deactivated", "terminated"].includes(k.state);
  // Which device only means something where there are two to choose from.
  set("device", placed && runtime.deviceCount > 1 ? `device ${t?.device ?? 0}` : "");
  set("sent", count(t?.messagesSent ?? 0));
  set("processed", count(t?.messagesProcessed ?? 0));
  set("received", count(t?.messagesReceived ?? 0));
  set("rate", formatShort(k.msgPerSec));
  set("queued", count(t?.inputQueueDepth ?? 0));
  set("inflight", count(t?.inFlight ?? 0));
  set("outqueue", count(t?.outputQueueDepth ?? 0));
  set("latency", k.recentLatencyMs === null ? "–" : formatMs(k.recentLatencyMs));
  set("p50", t?.latency.count ? formatMs(t.latency.p50Ms) : "–");
  set("p99", t?.latency.count ? formatMs(t.latency.p99Ms) : "–");
  set("checked", count(k.checked));
  set("wrong", count(k.wrong));
  set("forwarded", count(t?.messagesForwarded ?? 0));
  set("route", route(k));
  set("drawn", count(k.drawn ?? 0));
  set("answer", k.answer ?? "–");
  set("note", `${k.last || explain(k)}${launchBlocked(k) ? ` Launch waits: device ${LAUNCH_DEVICE} is lost; Recover it first.` : ""}`);
}

/** Whether `k` could be launched (not launched, or terminated) but for its launch device being lost. */
function launchBlocked(k) {
  return LEGAL[k.state].includes("launch") && lostDevices.has(LAUNCH_DEVICE);
}

/** Whether `k`'s buttons wait: startup, a lifecycle call of its own, or misbehave() holds it. */
function locked(k) {
  return starting || k.busy || k.held;
}

/**
 * The "launch" button also waits while the device kernels are launched on is lost: the runtime
 * would refuse the launch with DeviceLostError. Its title says so, and the note (launchBlocked).
 */
function renderLaunch(k) {
  const launch = $('button[data-action="launch"]', k.row);
  const lost = lostDevices.has(LAUNCH_DEVICE);
  if (lost) launch.disabled = true;
  launch.title = lost
    ? `Device ${LAUNCH_DEVICE}, where kernels are launched, is lost: Recover it first`
    : `runtime.launch(id): a fresh instance on device ${LAUNCH_DEVICE}`;
}

/**
 * The "move to the other device" button: there only with two devices, enabled while the kernel
 * runs and the device it would go to is not lost (`migrate` would refuse with DeviceLostError).
 */
function renderMove(k) {
  const move = $("button[data-move]", k.row);
  move.hidden = runtime.deviceCount < 2;
  if (move.hidden) return;
  const to = ((k.telemetry?.device ?? 0) + 1) % runtime.deviceCount;
  const targetLost = lostDevices.has(to);
  move.disabled = locked(k) || targetLost || !["launched", "active", "deactivated"].includes(k.state);
  move.title = targetLost
    ? `Device ${to} is lost: Recover it first`
    : "runtime.migrate(id, otherDevice): moves the running kernel with its state and queued messages";
}

/** One line on what the kernel is doing now, so pausing and stopping read as intended. */
function explain(k) {
  const t = k.telemetry;
  switch (k.state) {
    case "none": return "Not launched.";
    case "created": return "Compiling the kernel…";
    case "launched": return onCpu
      ? "Launched: ready on the host, its handler not run until activated; input queues up."
      : "Launched: resident on the GPU, not dispatched until activated; input queues up.";
    case "active": return onCpu
      ? "Active: its handler runs on the host every tick while it has input."
      : "Active: dispatched every tick while it has input.";
    case "deactivated": {
      // A paused stage fed by others holds them too: what is sent queues at the first of them.
      const first = kernels[PIPELINE[chainStart(k)]] ?? k;
      const fed = first !== k;
      return `Paused: ${onCpu ? "its handler does not run" : "nothing dispatched"}${fed ? ", and the stages before it wait" : ""}; ` +
        `input queues${fed ? ` at ${first.id}` : ""} (${count(first.telemetry?.inputQueueDepth ?? 0)} of ${count(first.queueSize)}), ` +
        "then senders back off.";
    }
    case "terminating": return "Terminating: finishing the queued messages first.";
    case "terminated": return "Terminated: launch starts a fresh instance.";
    case "failed": return `Failed: the ${device} device it ran on (device ${t?.device ?? LAUNCH_DEVICE}) was lost. Queued and unanswered ` +
      "messages wait; Recover relaunches it where it was.";
    default: return "";
  }
}

// ---------------------------------------------------------------------------------------------
// Page building

function buildRows() {
  for (const k of Object.values(kernels)) {
    const row = document.createElement("article");
    row.className = "kernel";
    row.dataset.kernel = k.id;
    row.style.setProperty("--kernel-color", k.color);
    row.innerHTML = `
      <div class="about">
        <header>
          <h3><span class="swatch"></span>${k.id}</h3>
          <span class="kind">${kindOf(k)}</span>
          <span class="pill" data-field="state">not launched</span>
        </header>
        <span class="circuit" data-field="circuit" data-circuit="closed">circuit closed</span>
        <span class="device-pill" data-field="device"></span>
        <code class="signature">${escapeHtml(k.signature)}</code>
        <div class="actions">${ACTIONS.map((a) => `<button type="button" data-action="${a}">${a}</button>`).join("")}<button type="button" data-move title="runtime.migrate(id, otherDevice): moves the running kernel with its state and queued messages">move to the other device</button></div>
        <dl class="counters">
          <div><dt>sent</dt><dd data-field="sent">0</dd></div>
          <div><dt>processed (${device})</dt><dd data-field="processed">0</dd></div>
          <div><dt>received</dt><dd data-field="received">0</dd></div>
          ${counterFor(k)}
        </dl>
        ${next(k) ? `<p class="answer">answers go to <b data-field="route">–</b></p>` : `<p class="answer">${k.answerLabel ?? "last answer"} <b data-field="answer">–</b></p>`}
        <p class="note" data-field="note"></p>
      </div>
      <figure class="chart">
        <figcaption><span>messages / s</span><b data-field="rate">0</b></figcaption>
        <canvas data-chart="rate"></canvas>
      </figure>
      <figure class="chart">
        <figcaption><span><i class="key in"></i>input <b data-field="queued">0</b> <i class="key flight"></i>in flight <b data-field="inflight">0</b> <i class="key out"></i>output <b data-field="outqueue">0</b></span><span class="muted">bound ${count(k.queueSize)}</span></figcaption>
        <canvas data-chart="queue"></canvas>
      </figure>
      <figure class="chart">
        <figcaption title="Send → answer, the mean of the answers that arrived in the last half second; none while none arrive"><span><i class="key p50"></i>latency, last ½ s <b data-field="latency">–</b></span><span class="muted">send → answer, mean</span></figcaption>
        <canvas data-chart="latency"></canvas>
        <span class="since" title="getTelemetry's latency summary: every answer since this instance was launched">since launch: p50 <b data-field="p50">–</b> · p99 <b data-field="p99">–</b></span>
      </figure>`;
    k.charts = {
      rate: new TimeSeriesChart($('[data-chart="rate"]', row), { series: [{ color: k.color, fill: true }], windowMs: WINDOW_MS }),
      queue: new TimeSeriesChart($('[data-chart="queue"]', row), {
        windowMs: WINDOW_MS, yMax: k.queueSize,
        series: [{ color: "#0f766e", fill: true }, { color: "#6366f1", dash: [4, 3] }, { color: "#a16207", dash: [1, 2] }],
      }),
      latency: new TimeSeriesChart($('[data-chart="latency"]', row), {
        windowMs: WINDOW_MS, log: [0.1, 10_000], format: formatMs,
        series: [{ color: "#0369a1" }],
      }),
    };
    for (const button of row.querySelectorAll("button[data-action]")) {
      button.onclick = () => act(k.id, button.dataset.action);
    }
    $("button[data-move]", row).onclick = () => migrate(k.id);
    k.row = row;
    $(k.group === "pipeline" ? "#pipeline-kernels" : "#kernels").append(row);
    render(k);
  }
  // The handlers that run: WGSL on WebGPU, the JavaScript ones on the cpu backend.
  $("#handlers-title").textContent = onCpu ? "JavaScript handlers (the cpu backend runs these)" : "WGSL handlers";
  $("#pipeline-wgsl").textContent = KERNELS.filter((k) => k.wgsl)
    .map((k) => `// ${k.id}\n${onCpu ? k.handler.toString() : k.wgsl}`).join("\n");

  overview = new TimeSeriesChart($("#overview-chart"), {
    windowMs: WINDOW_MS, timeAxis: true,
    series: KERNELS.map((k) => ({ color: k.color, width: 2 })),
  });
  $("#legend").innerHTML = KERNELS.map((k) =>
    `<span style="--kernel-color: ${k.color}"><i class="swatch"></i>${k.id} <b data-legend="${k.id}">0</b></span>`).join("");
}

/** What kind of kernel `k` is; a user kernel's handler is WGSL on WebGPU, JavaScript on the cpu backend. */
function kindOf(k) {
  return k.stage ? `user ${onCpu ? "JavaScript" : "WGSL"} · stage ${k.stage}` : k.kind;
}

/** The fourth counter: answers checked (doubler, the pipeline's end), tiles drawn, or answers forwarded. */
function counterFor(k) {
  if (k.id === "doubler" || !next(k) && k.group === "pipeline") {
    return `<div><dt>checked ✓ / wrong</dt><dd><span data-field="checked">0</span> / <span data-field="wrong">0</span></dd></div>`;
  }
  if (k.id === "mandelbrot") return `<div><dt>tiles drawn</dt><dd data-field="drawn">0</dd></div>`;
  return `<div><dt>forwarded → ${next(k)}</dt><dd data-field="forwarded">0</dd></div>`;
}

/** The pipeline stage after `k`, or undefined (the last stage, or not in the pipeline). */
function next(k) {
  const i = PIPELINE.indexOf(k.id);
  return i < 0 ? undefined : PIPELINE[i + 1];
}

/** Where a pipeline stage's answers go: the next stage and how (see hop), or the page while the pipeline is broken there. */
function route(k) {
  const to = k.telemetry?.connectedTo;
  const checked = k.checked || k.wrong ? ` · ${count(k.checked)} checked, ${count(k.wrong)} wrong` : "";
  if (to) return `${to} (connect), ${hop(k, kernels[to])}${checked}`;
  return k.state === "none" || k.state === "terminated" ? "–" : `the page: ${next(k)} is not running, the pipeline ends here${checked}`;
}

/**
 * How stage `k`'s answers reach the connected stage `to`, from their telemetry (README, "Fused
 * pipelines" and "Several devices"): on one device the runtime runs the chain as one dispatch
 * while every stage in it is active (both stages' `fusedDispatches` rise), ring to ring on the GPU
 * while it cannot (a stage paused, the fused module still compiling); across devices the runtime
 * relays the answers through the host, into the next stage's input queue.
 */
function hop(k, to) {
  if (onCpu) return "inside the runtime";
  if ((k.telemetry?.device ?? 0) !== (to.telemetry?.device ?? 0)) return `relayed through the host (${to.id} is on device ${to.telemetry?.device})`;
  // A paused stage holds the chain (nothing is dispatched, so the counters stand still): it runs
  // ring to ring once resumed, until the runtime fuses it again.
  const fused = k.fusing && to.fusing && chainActive(k);
  return fused ? "fused into one dispatch" : "ring to ring on the GPU";
}

/** The index in PIPELINE of the first stage connected, directly or through others, to `k` (-1 outside the pipeline). */
function chainStart(k) {
  let i = PIPELINE.indexOf(k.id);
  while (i > 0 && kernels[PIPELINE[i - 1]].telemetry?.connectedTo === PIPELINE[i]) i--;
  return i;
}

/** Whether every stage connected with `k`, before and after it, is active. */
function chainActive(k) {
  for (let i = chainStart(k); ; i++) {
    const stage = kernels[PIPELINE[i]];
    if (stage.state !== "active") return false;
    if (stage.telemetry?.connectedTo !== PIPELINE[i + 1]) return true;
  }
}

function escapeHtml(text) {
  return text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function showAdapter({ backend, name, driver, deviceType }) {
  const el = $("#adapter");
  el.dataset.status = "ok";
  $("#adapter-name").textContent = name || "(unnamed adapter)";
  $("#adapter-details").textContent =
    `backend ${backend} · device type ${deviceType}${driver ? ` · driver ${driver}` : ""}`;
  if (/cpu/i.test(deviceType)) {
    $("#adapter-hint").textContent =
      backend === "cpu"
        ? "The CPU backend: the same lifecycle and queues, handlers run on the host."
        : "A software adapter (no GPU here, e.g. SwiftShader): real WebGPU, far slower than a GPU.";
  }
}

function showUnavailable(error, backend) {
  $("#adapter").dataset.status = "missing";
  $("#adapter-name").textContent = "no adapter";
  $("#adapter-details").textContent = `${error.name}`;
  if (error.name !== "BackendUnavailableError") {
    document.body.dataset.status = "error";
    return showError(error);
  }
  document.body.dataset.status = "unavailable";
  const box = $("#webgpu-missing");
  box.hidden = false;
  $("#missing-name", box).textContent = error.name;
  $("#missing-reason", box).textContent = whyNoWebGpu();
  // The runtime's own message names every backend wgpu tried: there for whoever needs it.
  $("#missing-message", box).textContent = error.message;
  $("#missing-context", box).hidden = window.isSecureContext;
  if (backend === "cpu") {
    $("#use-cpu", box).hidden = true;
  } else {
    $("#use-cpu", box).onclick = () => {
      const url = new URL(location.href);
      url.searchParams.set("backend", "cpu");
      location.assign(url);
    };
  }
}

/**
 * Why there is no WebGPU here, in one plain sentence from what the page itself sees (the
 * runtime's message is longer and lists wgpu's internal backends).
 */
function whyNoWebGpu() {
  if (!window.isSecureContext) return "this page is not a secure context, and browsers offer WebGPU only to secure ones.";
  if (!navigator.gpu) return "this browser has no WebGPU (navigator.gpu is missing): it does not support it, or it is turned off.";
  return "this browser has WebGPU but offered no adapter: it is disabled or the GPU is blocklisted.";
}

const shown = new Set();
function showError(error) {
  const text = `${error?.name ?? "Error"}: ${error?.message ?? error}`;
  if (shown.has(text)) return;
  shown.add(text);
  const box = $("#error");
  box.hidden = false;
  const item = document.createElement("li");
  item.textContent = text;
  $("ul", box).append(item);
}

/** Empties the error box (Dismiss): errors are kept until the visitor has read them, not forever. */
function dismissErrors() {
  shown.clear();
  $("#error ul").replaceChildren();
  $("#error").hidden = true;
}

main().catch((error) => {
  document.body.dataset.status = "error";
  showError(error);
});

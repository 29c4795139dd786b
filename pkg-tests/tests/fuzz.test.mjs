// Model-based fuzzing of the package's JavaScript API in Node, on the cpu backend or (with
// FUZZ_BACKEND=webgpu; tests/fuzz-webgpu.test.mjs runs it so) on WebGPU from the `webgpu` package
// (Dawn over SwiftShader, as the README's Node section sets it up): random cases of 1 to 3
// kernels with small queues (sometimes connected into a pipeline), whose handlers (JavaScript, and
// their WGSL twins on a GPU) echo a sequence number and drop some by a fixed rule, driven by random sends,
// envelopes, batches, calls, receives, lifecycle changes and terminates, through the runtime's
// id-based calls and through kernel handles, some awaited, some left in flight, with timeouts
// of a few ms and AbortSignals. A model follows every message and checks the README's promise:
// each message accepted is answered exactly once and in order (or dropped by its handler and
// counted so), or still queued, or reported by an error that says how many went in; queues stay
// bounded; nothing hangs without saying why; every refusal is a named error; the counters
// (metrics(), getTelemetry, metricsText, getSummary, the shutdown report) agree with the model.
//
// The schedule is seeded, so every run makes the same operations (their timing still varies).
// FUZZ_SEED and FUZZ_CASES change the run; FUZZ_CASE=n runs case n alone, to replay a failure,
// whose message gives the seed, the case and the trace of operations that led to it. To explore:
// FUZZ_FIRST (the first case), FUZZ_KERNELS, FUZZ_PIPE=always|never, FUZZ_MODE=distinct|same|none
// (every kernel its own drop rule, one rule for all so that kernels group on a GPU, or none so
// that pipelines fuse), FUZZ_TRACKED=0|1, FUZZ_STEPS_X, FUZZ_CASE_LIMIT_MS.
//
// On a GPU no handler runs on the host, so what ran where is learnt from the kernels' `state`
// (tracked cases count each sequence number there) and checked at the end of the case.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import init, {
  RingKernelRuntime,
  defineMessage,
  RingKernelError,
  QueueFullError,
  TimeoutError,
  MessageDroppedError,
  KernelStateError,
  KernelNotFoundError,
  RuntimeDisposedError,
} from "ringkernel-web";
// FUZZ_BACKEND: cpu (the default) or webgpu (Dawn over SwiftShader unless VK_ICD_FILENAMES says
// otherwise: Dawn turns Mesa's lavapipe down).
import { create as createGpu, globals as gpuGlobals } from "webgpu";
const BACKEND = process.env.FUZZ_BACKEND || "cpu";
const GPU = BACKEND !== "cpu";
if (GPU) {
  process.env.VK_ICD_FILENAMES ??= "/usr/lib/chromium/vk_swiftshader_icd.json";
  Object.assign(globalThis, gpuGlobals);
  globalThis.navigator = { gpu: createGpu([]) };
}
// Kernels record the seqs they handle in a `state` array (tracked cases), read back at the end.
const STATE_LEN = 8192;
const CASE_LIMIT_MS = Number(process.env.FUZZ_CASE_LIMIT_MS || 90000);

const envInt = (name, fallback) => {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a whole number, got ${text}`);
  return value;
};
const SEED = envInt("FUZZ_SEED", 20261205);
const CASES = envInt("FUZZ_CASES", 300);
const ONLY_CASE = envInt("FUZZ_CASE", null);
const FIRST_CASE = envInt("FUZZ_FIRST", 0);

// Kernel i drops the messages whose seq % p === r (returns null): a different rule per stage, so
// a pipeline drops some at each stage.
const DROP = [{ p: 7, r: 3 }, { p: 11, r: 5 }, { p: 13, r: 6 }];
// An operation with a timeout (or a signal that aborts) must settle within it plus this: more
// than a loaded 2-core CI machine needs, less than "hangs".
const SETTLE_SLACK_MS = 5000;
// The end of a case: everything accepted must be answered (or dropped) within this.
const DRAIN_MS = 15000;
// Operations left in flight at once, at most (a new one beyond it is awaited).
const MAX_IN_FLIGHT = 16;
// How lifecycle calls move a kernel (README: activate/deactivate/reactivate are launched →
// active ⇄ deactivated; a handle's activate also resumes). Anything else is a KernelStateError
// that changes nothing.
const TRANSITIONS = {
  "rt.activate": { launched: "active" },
  "rt.deactivate": { active: "deactivated" },
  "rt.reactivate": { deactivated: "active" },
  "h.activate": { launched: "active", deactivated: "active" },
  "h.deactivate": { active: "deactivated" },
  "h.suspend": { active: "deactivated" },
  "h.resume": { launched: "active", deactivated: "active" },
};

await init();
const Seq = defineMessage("FuzzSeq", { seq: "u32" });

/** mulberry32: a small seeded PRNG, the same numbers on every machine. */
class Rng {
  constructor(seed) {
    this.state = seed >>> 0;
  }
  next() {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = Math.imul(this.state ^ (this.state >>> 15), 1 | this.state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo, hi) {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p) {
    return this.next() < p;
  }
  pick(items) {
    return items[Math.floor(this.next() * items.length)];
  }
}

/** Each case has its own stream of numbers, so FUZZ_CASE=n replays case n alone. */
const caseSeed = (seed, number) => (seed ^ Math.imul(number + 1, 0x9e3779b9)) >>> 0;

/** Whether hybrid logical clock timestamp `a` is after `b`. */
const later = (a, b) => a.physicalMs > b.physicalMs || (a.physicalMs === b.physicalMs && a.logical > b.logical);

const describe = (e) =>
  e instanceof Error || (e && typeof e === "object")
    ? `${e.name}: ${e.message}${e.accepted !== undefined ? ` (accepted ${e.accepted})` : ""}`
    : String(e);

/** Outcomes seen over the whole run, by operation: shows (and checks) what the fuzz reached. */
const coverage = new Map();

/** Unhandled rejections anywhere in the process: every one is a failure of the case it came in. */
const unhandled = [];
process.on("unhandledRejection", (reason) => unhandled.push(reason));

class Case {
  constructor(number) {
    this.number = number;
    this.rng = new Rng(caseSeed(SEED, number));
    this.trace = [];
    this.failure = null;
    this.failed = new Promise((resolve) => (this.onFailure = resolve));
    this.kernels = [];
    this.entries = new Map(); // seq → the message's entry in the model
    this.streams = new Map(); // "entry kernel>sink" → entries in the order of the calls that sent them
    this.ops = [];
    this.nextSeq = 1;
    this.stats = { ops: 0, messages: 0, answers: 0 };
    this.timers = new Set(); // the hang alarms of operations not settled yet
    this.deferred = []; // GPU: checks that need to know which messages ran, run at the end
  }

  /** Ends a case that failed: its alarms and its runtime, without waiting on what hung. */
  async close() {
    for (const timer of this.timers) clearTimeout(timer);
    if (this.runtime && this.runtime.lifecycleState !== "stopped") {
      await Promise.race([this.runtime.dispose().catch(() => {}), sleep(SETTLE_SLACK_MS, undefined, { ref: false })]);
    }
  }

  log(line) {
    this.trace.push(line);
  }

  /** Records the case's first failure; the main flow throws it at its next step. */
  fail(message) {
    if (this.failure === null) {
      this.failure = message;
      this.log(`!! ${message}`);
      this.onFailure();
    }
  }

  /** The failure, with what it takes to replay it. */
  report(message) {
    const shown = this.trace.length > 600 ? ["...", ...this.trace.slice(-600)] : this.trace;
    return (
      `fuzz seed ${SEED}, case ${this.number}: ${message}\n` +
      `replay: FUZZ_BACKEND=${BACKEND} FUZZ_SEED=${SEED} FUZZ_CASE=${this.number} node --test tests/fuzz.test.mjs\n` +
      `trace:\n${shown.join("\n")}`
    );
  }

  check() {
    if (this.failure !== null) throw new Error(this.report(this.failure));
    if (unhandled.length) throw new Error(this.report(`unhandled rejection: ${describe(unhandled[0])}`));
  }

  /** Awaits `promise` unless the case fails first (a hung operation must not hang the test). */
  async race(promise) {
    await Promise.race([promise, this.failed]);
    this.check();
  }

  // ---- setup -------------------------------------------------------------------------------

  async setup() {
    const r = this.rng;
    this.telemetry = r.chance(0.8);
    this.runtime = await RingKernelRuntime.create({ ...(GPU ? {} : { backend: "cpu" }), enableTelemetry: this.telemetry });
    if (GPU && this.runtime.getSummary().backend === "cpu") throw new Error("not on a GPU");
    let count = r.int(1, 3);
    if (process.env.FUZZ_KERNELS) count = Number(process.env.FUZZ_KERNELS);
    // decided before the launches, since a GPU handler that may drop cannot feed
    // a pipeline (README, connect): feeding stages answer every message.
    let pipeLength = count >= 2 && r.chance(0.5) ? r.int(2, count) : 0;
    if (process.env.FUZZ_PIPE === "always" && count >= 2) pipeLength = count;
    if (process.env.FUZZ_PIPE === "never") pipeLength = 0;
    // distinct: kernel i drops by DROP[i] (the original); same: every kernel the same WGSL (so
    // several unconnected ones can run grouped); none: nobody drops (pipelines can fuse).
    this.handlerMode = r.pick(["distinct", "same", "none"]);
    this.tracked = r.chance(0.4);
    if (process.env.FUZZ_MODE) this.handlerMode = process.env.FUZZ_MODE;
    if (process.env.FUZZ_TRACKED) this.tracked = process.env.FUZZ_TRACKED === "1";
    for (let index = 0; index < count; index++) {
      const id = `k${index}`;
      const options = { queueSize: r.int(4, 16) };
      if (r.chance(0.3)) options.inputQueueSize = r.int(2, 16);
      if (r.chance(0.3)) options.outputQueueSize = r.int(2, 16);
      // maxBatch may not exceed the input queue (a RangeError).
      if (r.chance(0.2)) options.maxBatch = r.int(1, Math.min(4, options.inputQueueSize ?? options.queueSize));
      if (r.chance(0.2)) options.mode = "event-driven";
      if (r.chance(0.5)) options.autoActivate = true;
      const feeds = index + 1 < pipeLength;
      const drop = feeds || this.handlerMode === "none" ? null : this.handlerMode === "same" ? DROP[0] : DROP[index % DROP.length];
      // A slow handler (1 ms a message) lets a terminate with a short timeout run out. (cpu only:
      // the WGSL twin is not slow.)
      const slow = r.chance(0.15);
      const tracked = this.tracked;
      const handler = (message, state) => {
        this.onHandled(id, message.seq);
        if (tracked) state[Math.min(message.seq, STATE_LEN - 1)]++;
        if (slow) for (const start = performance.now(); performance.now() - start < 1; );
        return drop && message.seq % drop.p === drop.r ? null : { seq: message.seq };
      };
      const track = tracked ? `atomicAdd(&state[min(m.seq, ${STATE_LEN - 1}u)], 1u);` : "";
      const wgsl = drop
        ? `fn handle(m: FuzzSeq, out: ptr<function, FuzzSeq>) -> bool { ${track} (*out).seq = m.seq; return m.seq % ${drop.p}u != ${drop.r}u; }`
        : `fn handle(m: FuzzSeq) -> FuzzSeq { ${track} return FuzzSeq(m.seq); }`;
      const definition = { input: Seq, output: Seq, handler, wgsl, ...(tracked ? { state: { length: STATE_LEN } } : {}) };
      const handle = await this.runtime.launch(id, definition, options);
      const kernel = {
        id,
        index,
        drop,
        handles: [handle, this.runtime.getKernel(id)],
        inCap: options.inputQueueSize ?? options.queueSize,
        outCap: options.outputQueueSize ?? options.queueSize,
        state: options.autoActivate ? "active" : "launched",
        next: null,
        prev: null,
        terminating: false, // from the moment terminate is called
        unprocessed: null, // what a terminate that timed out said it left unprocessed
      };
      assert.equal(handle.state, kernel.state, `launch ${id} ${JSON.stringify(options)}`);
      this.kernels.push(kernel);
      this.log(`launch ${id} ${JSON.stringify(options)} (${drop ? `drops seq % ${drop.p} === ${drop.r}` : "drops none"}${slow ? ", slow" : ""}${tracked ? ", tracked" : ""})`);
    }
    if (pipeLength) {
      const length = pipeLength;
      for (let i = 0; i + 1 < length; i++) {
        const [from, to] = [this.kernels[i], this.kernels[i + 1]];
        await this.runtime.connect(from.id, to.id);
        from.next = to;
        to.prev = from;
        this.log(`connect ${from.id} → ${to.id}`);
      }
    }
    this.log(`telemetry ${this.telemetry}, handlers ${this.handlerMode}, ${this.tracked ? "tracked" : "untracked"}, backend ${BACKEND}`);
  }

  /** The last stage of `kernel`'s pipeline (itself when it is not connected onward). */
  sinkOf(kernel) {
    let k = kernel;
    while (k.next) k = k.next;
    return k;
  }

  /** Whether `kernel`'s handler drops `seq`. */
  drops(kernel, seq) {
    return kernel.drop !== null && seq % kernel.drop.p === kernel.drop.r;
  }

  /** The stages a message sent to `kernel` runs through: up to the one that drops it, or the sink. */
  path(entry) {
    const stages = [];
    for (let k = entry.kernel; k; k = k.next) {
      stages.push(k);
      if (this.drops(k, entry.seq)) break;
    }
    return stages;
  }

  // ---- the model ---------------------------------------------------------------------------

  /** `count` new messages to `kernel`, in the order of this call. */
  newEntries(kernel, count, kind) {
    const sink = this.sinkOf(kernel);
    const key = `${kernel.id}>${sink.id}`;
    if (!this.streams.has(key)) this.streams.set(key, { entries: [], next: 0, handledNext: new Map() });
    const stream = this.streams.get(key);
    const made = [];
    for (let i = 0; i < count; i++) {
      const entry = {
        seq: this.nextSeq++,
        kernel,
        sink,
        stream,
        pos: stream.entries.length,
        kind,
        accepted: undefined, // true / false once its operation settles; "unknown" for an aborted call
        mustAccept: false, // its answer (or its handler) came before its operation settled
        mustNotAccept: false, // a later message of its stream was answered (or handled) before it
        handled: new Set(),
        received: false,
        abandoned: false,
      };
      entry.dropBy = this.path(entry).find((k) => this.drops(k, entry.seq))?.id ?? null;
      stream.entries.push(entry);
      this.entries.set(entry.seq, entry);
      made.push(entry);
    }
    this.stats.messages += count;
    return made;
  }

  /** An operation settled: the first `accepted` of `entries` went in, the rest did not. */
  settle(op, entries, accepted) {
    entries.forEach((entry, i) => {
      const taken = i < accepted;
      if (taken && entry.mustNotAccept) {
        this.fail(`#${op.n}: seq ${entry.seq} was accepted, but a later message of its stream was answered or handled before it`);
      }
      if (!taken && entry.mustAccept) {
        this.fail(`#${op.n}: seq ${entry.seq} was not accepted, yet its handler ran or its answer came`);
      }
      entry.accepted = taken;
    });
  }

  /** Kernel `id`'s handler ran on `seq`: once, in its stream's order, only if it got there. */
  onHandled(id, seq) {
    this.log(`  [${id} handles ${seq}]`);
    const entry = this.entries.get(seq);
    if (!entry) return this.fail(`${id}'s handler got seq ${seq}, which was never sent`);
    const kernel = this.kernels.find((k) => k.id === id);
    if (!this.path(entry).includes(kernel)) return this.fail(`${id}'s handler got seq ${seq}, which cannot reach it`);
    if (entry.handled.has(id)) return this.fail(`${id}'s handler got seq ${seq} twice`);
    entry.handled.add(id);
    const { stream } = entry;
    const next = stream.handledNext.get(id) ?? 0;
    if (entry.pos < next) {
      return this.fail(`${id}'s handler got seq ${seq} after a message sent after it (out of order)`);
    }
    for (let j = next; j < entry.pos; j++) {
      const skipped = stream.entries[j];
      if (!this.path(skipped).includes(kernel)) continue;
      if (skipped.accepted === true) {
        return this.fail(`${id}'s handler got seq ${seq} before seq ${skipped.seq}, accepted earlier (lost or reordered)`);
      }
      skipped.mustNotAccept = true;
    }
    if (entry.accepted === false) return this.fail(`${id}'s handler got seq ${seq}, whose send was refused`);
    if (entry.accepted === undefined) entry.mustAccept = true;
    stream.handledNext.set(id, entry.pos + 1);
  }

  /** An answer came out of `kernel` through a receive: the next one expected, exactly once. */
  onAnswer(op, kernel, seq) {
    this.stats.answers++;
    const entry = this.entries.get(seq);
    const where = `#${op.n} ${kernel.id}`;
    if (!entry) return this.fail(`${where}: answer seq ${seq} was never sent`);
    if (entry.sink !== kernel) return this.fail(`${where}: answer seq ${seq} belongs to ${entry.sink.id}`);
    if (entry.kind === "call") return this.fail(`${where}: the answer to call seq ${seq} showed up in a receive`);
    if (entry.dropBy) return this.fail(`${where}: answer seq ${seq}, which ${entry.dropBy}'s handler dropped`);
    if (entry.received) return this.fail(`${where}: answer seq ${seq} came twice`);
    const { stream } = entry;
    if (entry.pos < stream.next) {
      return this.fail(`${where}: answer seq ${seq} came after seq ${stream.entries[stream.next - 1].seq}, sent after it`);
    }
    for (let j = stream.next; j < entry.pos; j++) {
      const skipped = stream.entries[j];
      if (skipped.kind === "call" || skipped.dropBy) continue;
      if (skipped.accepted === true) {
        return this.fail(`${where}: answer seq ${seq} came before seq ${skipped.seq}, accepted earlier (lost or reordered)`);
      }
      skipped.mustNotAccept = true;
    }
    if (entry.accepted === false) return this.fail(`${where}: answer seq ${seq}, whose send was refused`);
    if (entry.accepted === undefined) entry.mustAccept = true;
    entry.received = true;
    stream.next = entry.pos + 1;
    kernel.received = (kernel.received ?? 0) + 1;
  }

  // ---- operations --------------------------------------------------------------------------

  begin(kind, desc) {
    const op = { n: ++this.stats.ops, kind, desc, settled: false, promise: null };
    this.ops.push(op);
    this.log(`#${op.n} ${desc}`);
    return op;
  }

  end(op, outcome, detail = "") {
    op.settled = true;
    this.log(`  #${op.n} → ${outcome}${detail ? ` ${detail}` : ""}`);
    const key = `${op.kind}: ${outcome}`;
    coverage.set(key, (coverage.get(key) ?? 0) + 1);
  }

  /**
   * Follows an operation's promise: `onOk` / `onError` check its outcome. It must settle within
   * `bound` ms (null: no bound until the end of the case). Resolves with a promise to await, or
   * undefined to leave it in flight.
   */
  track(op, promise, bound, onOk, onError) {
    let timer = null;
    if (bound !== null) {
      timer = setTimeout(() => {
        if (!op.settled) this.fail(`#${op.n} ${op.desc} did not settle within ${bound} ms`);
      }, bound);
      this.timers.add(timer);
    }
    const guard = (fn) => (value) => {
      try {
        fn(value);
      } catch (e) {
        this.fail(`#${op.n}: the test's own check threw: ${e?.stack ?? e}`);
      }
      op.settled = true;
    };
    op.promise = promise.then(guard(onOk), guard(onError)).finally(() => {
      clearTimeout(timer);
      this.timers.delete(timer);
    });
    // One without a bound may wait for room until the end of the case (nobody else receives
    // meanwhile), as the README says a send without a timeout does: never awaited before then.
    const inFlight = this.ops.filter((o) => !o.settled).length;
    const awaited = this.rng.chance(0.5) || inFlight > MAX_IN_FLIGHT;
    return awaited && bound !== null ? op.promise : undefined;
  }

  /**
   * What a rejection was: the signal's reason ("aborted"), or one of `allowed` (classes), named
   * and with a message (and `kernelId` where the class has one). Anything else fails the case.
   */
  classify(op, error, signal, allowed, kernel) {
    if (signal && signal.signal.aborted && error === signal.signal.reason) {
      return "aborted";
    }
    for (const errorClass of allowed) {
      if (!(error instanceof errorClass)) continue;
      const name = errorClass.name;
      if (error.name !== name) this.fail(`#${op.n}: a ${name} named ${error.name}`);
      if (typeof error.message !== "string" || error.message.length === 0) this.fail(`#${op.n}: a ${name} without a message`);
      if (error instanceof RingKernelError && "kernelId" in error && error.kernelId !== kernel.id) {
        this.fail(`#${op.n}: a ${name} naming kernel ${error.kernelId}, not ${kernel.id}`);
      }
      return name;
    }
    this.fail(`#${op.n} ${op.desc} rejected with ${describe(error)}, not ${allowed.map((c) => c.name).join(" or ")}${signal ? " or its signal's reason" : ""}`);
    return "unexpected";
  }

  pickKernel() {
    return this.rng.pick(this.kernels);
  }

  pickHandle(kernel) {
    return this.rng.pick(kernel.handles);
  }

  /** A timeout of 0 or a few ms; `undefined` (wait as long as it takes) only where `open`. */
  pickTimeout(open) {
    const r = this.rng;
    if (open && r.chance(0.25)) return undefined;
    return r.pick([0, 0, 1, 2, 3, 5, 8, 15]);
  }

  /** Sometimes an AbortSignal: aborted already, aborted by a controller after a few ms, or AbortSignal.timeout. */
  makeSignal() {
    const r = this.rng;
    const roll = r.next();
    if (roll < 0.65) return null;
    if (roll < 0.7) return { signal: AbortSignal.abort(), at: 0, desc: "signal aborted already" };
    if (roll < 0.9) {
      const controller = new AbortController();
      const at = r.int(0, 6);
      const reason = r.chance(0.3) ? new Error(`fuzz abort at ${at} ms`) : undefined;
      setTimeout(() => controller.abort(reason), at);
      return { signal: controller.signal, at, desc: `signal aborting at ${at} ms${reason ? " (own reason)" : ""}` };
    }
    const at = r.int(1, 6);
    return { signal: AbortSignal.timeout(at), at, desc: `AbortSignal.timeout(${at})` };
  }

  options(timeout, signal) {
    const options = {};
    if (timeout !== undefined) options.timeout = timeout;
    if (signal) options.signal = signal.signal;
    return options;
  }

  /** How long an operation may take: its timeout or its signal's abort, plus slack; null for neither. */
  bound(timeout, signal) {
    const limits = [timeout, signal?.at].filter((t) => t !== undefined);
    return limits.length ? Math.min(...limits) + SETTLE_SLACK_MS : null;
  }

  optionsDesc(timeout, signal) {
    return [timeout === undefined ? "no timeout" : `timeout ${timeout}`, signal?.desc].filter(Boolean).join(", ");
  }

  /**
   * README: with room, and no earlier send to the kernel still waiting to be queued, a send's
   * (and a batch's, a call's) messages are queued before it returns. The depth before the call
   * when that applies (by the model: no send to the kernel is unsettled), else null.
   */
  roomBefore(kernel, count, signal) {
    if (signal?.signal.aborted || kernel.terminating || this.lineBusy(kernel)) return null;
    const depth = kernel.handles[0].status().inputQueueDepth;
    return depth + count <= kernel.inCap ? depth : null;
  }

  /** Whether a send to `kernel` made earlier may still wait to be queued (by the model: it has not settled). */
  lineBusy(kernel) {
    return this.ops.some((o) => !o.settled && o.target === kernel && o.sends);
  }

  queuedAtOnce(op, kernel, before, count) {
    if (before === null) return;
    coverage.set("checked: queued before returning", (coverage.get("checked: queued before returning") ?? 0) + 1);
    const after = kernel.handles[0].status().inputQueueDepth;
    if (after !== before + count) {
      this.fail(`#${op.n} ${op.desc}: with room (${before} of ${kernel.inCap} queued) and no send waiting, ${count} message(s) should be queued before it returns, but the queue went from ${before} to ${after}`);
    }
  }

  /** What may refuse a send to `kernel`: a full queue, and once it is being terminated, its state. */
  sendRefusals(kernel) {
    return kernel.terminating ? [QueueFullError, KernelStateError] : [QueueFullError];
  }

  /** A KernelStateError must name the state the kernel is in and what was asked. */
  checkStateError(op, error, kernel, action) {
    if (!["terminating", "terminated"].includes(error.state) || !kernel.terminating) {
      this.fail(`#${op.n}: KernelStateError says ${error.state}; the kernel is ${kernel.state}${kernel.terminating ? " (terminate called)" : ""}`);
    }
    if (action && error.action !== action) this.fail(`#${op.n}: KernelStateError's action is ${error.action}, not ${action}`);
  }

  opSend() {
    const r = this.rng;
    const kernel = this.pickKernel();
    const handle = r.chance(0.5) ? this.pickHandle(kernel) : null;
    const timeout = this.pickTimeout(true);
    const signal = this.makeSignal();
    const [entry] = this.newEntries(kernel, 1, "send");
    const op = this.begin("send", `${handle ? "handle" : "runtime"}.send ${kernel.id} seq ${entry.seq}, ${this.optionsDesc(timeout, signal)}`);
    Object.assign(op, { target: kernel, sends: true });
    const before = this.roomBefore(kernel, 1, signal);
    const options = this.options(timeout, signal);
    const promise = handle ? handle.send({ seq: entry.seq }, options) : this.runtime.send(kernel.id, { seq: entry.seq }, options);
    this.queuedAtOnce(op, kernel, before, 1);
    return this.track(
      op,
      promise,
      this.bound(timeout, signal),
      () => {
        this.settle(op, [entry], 1);
        this.end(op, "ok");
      },
      (error) => {
        const kind = this.classify(op, error, signal, this.sendRefusals(kernel), kernel);
        if (kind === "QueueFullError" && error.accepted !== 0) this.fail(`#${op.n}: a send's QueueFullError says ${error.accepted} accepted`);
        if (timeout === undefined && kind === "QueueFullError") this.fail(`#${op.n}: a send without a timeout was refused: ${describe(error)}`);
        if (kind === "KernelStateError") this.checkStateError(op, error, kernel, "send");
        this.settle(op, [entry], 0);
        this.end(op, kind);
      },
    );
  }

  /**
   * A send with an envelope (runtime only), in the same line as every other send. README: the
   * header as sent has a new message id, the destination and the clock's time (never going back).
   */
  opSendEnvelope() {
    const r = this.rng;
    const kernel = this.pickKernel();
    const timeout = this.pickTimeout(true);
    const signal = this.makeSignal();
    const [entry] = this.newEntries(kernel, 1, "send");
    const stamp = { ...(r.chance(0.5) ? { priority: r.int(0, 255) } : {}), ...(r.chance(0.3) ? { correlationId: r.int(1, 1000) } : {}) };
    const op = this.begin("send", `runtime.sendEnvelope ${kernel.id} seq ${entry.seq} ${JSON.stringify(stamp)}, ${this.optionsDesc(timeout, signal)}`);
    Object.assign(op, { target: kernel, sends: true });
    entry.enveloped = true;
    const before = this.roomBefore(kernel, 1, signal);
    const promise = this.runtime.sendEnvelope(kernel.id, { seq: entry.seq }, { ...stamp, ...this.options(timeout, signal) });
    this.queuedAtOnce(op, kernel, before, 1);
    return this.track(
      op,
      promise,
      this.bound(timeout, signal),
      (header) => {
        const expected = { correlationId: stamp.correlationId ?? null, source: null, destination: kernel.id, priority: stamp.priority ?? 0 };
        for (const [key, value] of Object.entries(expected)) {
          if (header?.[key] !== value) this.fail(`#${op.n}: the header as sent has ${key} ${JSON.stringify(header?.[key])}, not ${JSON.stringify(value)}`);
        }
        this.newMessageId(op, header);
        if (this.lastSentStamp && !later(header.timestamp, this.lastSentStamp)) {
          this.fail(`#${op.n}: the header's timestamp ${JSON.stringify(header.timestamp)} is not after the last one sent, ${JSON.stringify(this.lastSentStamp)}`);
        }
        this.lastSentStamp = header.timestamp;
        entry.header = header;
        if (entry.answerEnvelope) this.checkAnswerEnvelope(op, entry);
        this.settle(op, [entry], 1);
        this.end(op, "ok", `message id ${header.messageId}`);
      },
      (error) => {
        const kind = this.classify(op, error, signal, this.sendRefusals(kernel), kernel);
        if (kind === "QueueFullError" && error.accepted !== 0) this.fail(`#${op.n}: a send's QueueFullError says ${error.accepted} accepted`);
        if (timeout === undefined && kind === "QueueFullError") this.fail(`#${op.n}: a send without a timeout was refused: ${describe(error)}`);
        if (kind === "KernelStateError") this.checkStateError(op, error, kernel, "send");
        this.settle(op, [entry], 0);
        this.end(op, kind);
      },
    );
  }

  /** Message ids are unique in the runtime. */
  newMessageId(op, header) {
    this.messageIds ??= new Set();
    if (!Number.isInteger(header?.messageId) || this.messageIds.has(header.messageId)) {
      this.fail(`#${op.n}: message id ${header?.messageId} is not a new one`);
    }
    this.messageIds.add(header?.messageId);
  }

  /**
   * README: an answer's envelope names the answering kernel as its source, the host (null) as its
   * destination, the request's message id as its correlation id and the request's priority, and
   * is stamped after the request and after every answer taken before it from that kernel. A
   * plain message's answer gets a header when taken: no correlation id, priority 0.
   */
  checkAnswerEnvelope(op, entry) {
    const envelope = entry.answerEnvelope;
    const request = entry.header;
    const expected = {
      source: entry.sink.id,
      destination: null,
      correlationId: entry.enveloped ? request.messageId : null,
      priority: entry.enveloped ? request.priority : 0,
    };
    for (const [key, value] of Object.entries(expected)) {
      if (envelope?.[key] !== value) this.fail(`#${op.n}: the envelope of answer seq ${entry.seq} has ${key} ${JSON.stringify(envelope?.[key])}, not ${JSON.stringify(value)}`);
    }
    if (entry.enveloped && !later(envelope.timestamp, request.timestamp)) {
      this.fail(`#${op.n}: answer seq ${entry.seq} is stamped ${JSON.stringify(envelope.timestamp)}, not after its request's ${JSON.stringify(request.timestamp)}`);
    }
  }

  opTrySend() {
    const kernel = this.pickKernel();
    const handle = this.pickHandle(kernel);
    const [entry] = this.newEntries(kernel, 1, "send");
    const op = this.begin("trySend", `handle.trySend ${kernel.id} seq ${entry.seq}`);
    const before = this.roomBefore(kernel, 1, null);
    try {
      handle.trySend({ seq: entry.seq });
      this.queuedAtOnce(op, kernel, before, 1);
      this.settle(op, [entry], 1);
      this.end(op, "ok");
    } catch (error) {
      const kind = this.classify(op, error, null, this.sendRefusals(kernel), kernel);
      if (kind === "QueueFullError" && error.accepted !== 0) this.fail(`#${op.n}: trySend's QueueFullError says ${error.accepted} accepted`);
      if (kind === "KernelStateError") this.checkStateError(op, error, kernel, "send");
      if (before !== null) this.fail(`#${op.n}: trySend refused (${describe(error)}) with room and no send waiting`);
      this.settle(op, [entry], 0);
      this.end(op, kind);
    }
  }

  opSendBatch() {
    const r = this.rng;
    const kernel = this.pickKernel();
    const handle = r.chance(0.5) ? this.pickHandle(kernel) : null;
    const count = r.chance(0.2) ? r.int(kernel.inCap + 1, kernel.inCap + 8) : r.int(1, 20);
    const timeout = this.pickTimeout(true);
    const signal = this.makeSignal();
    const entries = this.newEntries(kernel, count, "send");
    const form = r.pick(["objects", "objects", "Uint32Array", "ArrayBuffer"]);
    const seqs = entries.map((e) => e.seq);
    const messages =
      form === "objects" ? seqs.map((seq) => ({ seq })) : form === "Uint32Array" ? Uint32Array.from(seqs) : Uint32Array.from(seqs).buffer;
    const op = this.begin(
      "sendBatch",
      `${handle ? "handle" : "runtime"}.sendBatch ${kernel.id} seq ${seqs[0]}..${seqs.at(-1)} (${count}, ${form}), ${this.optionsDesc(timeout, signal)}`,
    );
    Object.assign(op, { target: kernel, sends: true });
    const before = this.roomBefore(kernel, count, signal);
    const options = this.options(timeout, signal);
    const promise = handle ? handle.sendBatch(messages, options) : this.runtime.sendBatch(kernel.id, messages, options);
    this.queuedAtOnce(op, kernel, before, count);
    return this.track(
      op,
      promise,
      this.bound(timeout, signal),
      (sent) => {
        if (sent !== count) this.fail(`#${op.n}: sendBatch resolved with ${sent}, not ${count}`);
        this.settle(op, entries, count);
        this.end(op, "ok");
      },
      (error) => {
        // Aborted after part of it went in: a QueueFullError whose cause is the signal's reason.
        const partlyAborted = signal?.signal.aborted && error instanceof QueueFullError && error.cause === signal.signal.reason;
        const kind = this.classify(op, error, signal, this.sendRefusals(kernel), kernel);
        let accepted = 0;
        if (kind !== "QueueFullError" && error.accepted !== undefined) {
          // Refused part way by something else (a terminate meanwhile): `accepted` says how many went in.
          accepted = error.accepted;
          if (!Number.isInteger(accepted) || accepted < 1 || accepted >= count) {
            this.fail(`#${op.n}: sendBatch of ${count} rejected with ${describe(error)}, saying ${accepted} accepted`);
            accepted = 0;
          }
          const says = accepted === 1 ? "the first message of the batch was queued" : `the first ${accepted} messages of the batch were queued`;
          if (!error.message.includes(says)) {
            this.fail(`#${op.n}: sendBatch refused part way, but its message does not say how many went in: ${describe(error)}`);
          }
        }
        if (kind === "KernelStateError") {
          this.checkStateError(op, error, kernel, "send");
          if (accepted === 0) {
            // Refused whole: none of it may have been queued, or the error would hide how many were.
            const queued = entries.filter((e) => e.mustAccept).map((e) => e.seq);
            if (queued.length) this.fail(`#${op.n}: sendBatch rejected with ${describe(error)}, which says nothing was accepted, but seq ${queued} ran or were answered`);
          }
        }
        if (kind === "QueueFullError") {
          accepted = error.accepted;
          if (!Number.isInteger(accepted) || accepted < 0 || accepted >= count) {
            this.fail(`#${op.n}: sendBatch of ${count} rejected saying ${accepted} accepted`);
            accepted = 0;
          }
          if (timeout === undefined && !partlyAborted) this.fail(`#${op.n}: a sendBatch without a timeout was refused: ${describe(error)}`);
          if (partlyAborted && accepted === 0) this.fail(`#${op.n}: an aborted batch with nothing queued should reject with the signal's reason`);
        }
        this.settle(op, entries, accepted);
        this.end(op, kind === "QueueFullError" ? (accepted > 0 ? (partlyAborted ? "aborted part way" : "QueueFullError part way") : "QueueFullError") : accepted > 0 ? `${kind} part way` : kind, `accepted ${accepted}`);
      },
    );
  }

  opCall() {
    const r = this.rng;
    // Mostly kernels whose answers come back to the host; now and then one connected onward,
    // which the README says refuses calls.
    const onward = this.kernels.filter((k) => k.next);
    const kernel = onward.length && r.chance(0.08) ? r.pick(onward) : r.pick(this.kernels.filter((k) => !k.next));
    const handle = r.chance(0.5) ? this.pickHandle(kernel) : null;
    const timeout = this.pickTimeout(true);
    let signal = this.makeSignal();
    // an untracked case cannot tell on a GPU whether a call aborted in flight was
    // queued (no handler runs on the host), so its calls get only signals aborted already.
    if (!this.tracked && signal && !signal.signal.aborted) signal = null;
    const [entry] = this.newEntries(kernel, 1, "call");
    const op = this.begin("call", `${handle ? "handle" : "runtime"}.call ${kernel.id} seq ${entry.seq}${entry.dropBy ? " (dropped)" : ""}, ${this.optionsDesc(timeout, signal)}`);
    Object.assign(op, { target: kernel, sends: true });
    const before = kernel.next ? null : this.roomBefore(kernel, 1, signal);
    const options = this.options(timeout, signal);
    const promise = handle ? handle.call({ seq: entry.seq }, options) : this.runtime.call(kernel.id, { seq: entry.seq }, options);
    this.queuedAtOnce(op, kernel, before, 1);
    return this.track(
      op,
      promise,
      this.bound(timeout, signal),
      (answer) => {
        if (kernel.next) this.fail(`#${op.n}: a call to ${kernel.id}, connected to ${kernel.next.id}, was answered`);
        if (answer?.seq !== entry.seq) this.fail(`#${op.n}: call seq ${entry.seq} answered with ${JSON.stringify(answer)}`);
        if (entry.dropBy) this.fail(`#${op.n}: call seq ${entry.seq} answered, but its handler drops it`);
        if (GPU) entry.mustHaveRun = op.n;
        else if (!entry.handled.has(kernel.id)) this.fail(`#${op.n}: call seq ${entry.seq} answered without its handler running`);
        this.settle(op, [entry], 1);
        kernel.callsAnswered = (kernel.callsAnswered ?? 0) + 1;
        this.end(op, "answer");
      },
      (error) => {
        if (kernel.next) {
          // Refused at once, nothing queued: a TypeError naming the connection, even behind
          // earlier sends still waiting in the kernel's line (not their QueueFullError).
          const kind = this.classify(op, error, signal, [TypeError], kernel);
          if (kind === "TypeError" && !/connected/.test(error.message)) this.fail(`#${op.n}: ${describe(error)}`);
          this.settle(op, [entry], 0);
          return this.end(op, kind === "TypeError" ? "refused: connected" : `refused: connected, ${kind}`);
        }
        const refusals = [MessageDroppedError, QueueFullError, TimeoutError, ...(kernel.terminating ? [KernelStateError] : [])];
        const kind = this.classify(op, error, signal, refusals, kernel);
        if (kind === "KernelStateError") {
          // Terminated before its message was queued ("send"), or after, leaving it
          // unprocessed ("receive": a terminate that timed out counted it).
          this.checkStateError(op, error, kernel, null);
          if (error.action === "send") this.settle(op, [entry], 0);
          else if (error.action === "receive") {
            this.settle(op, [entry], 1);
            entry.unanswered = true;
          } else this.fail(`#${op.n}: KernelStateError's action is ${error.action}`);
          return this.end(op, `KernelStateError (${error.action})`);
        } else if (kind === "MessageDroppedError") {
          if (!entry.dropBy) this.fail(`#${op.n}: call seq ${entry.seq} rejected as dropped, but its handler answers it`);
          if (GPU) entry.mustHaveRun = op.n;
          this.settle(op, [entry], 1);
        } else if (kind === "QueueFullError") {
          // Never queued (README: the timeout covers waiting for room, then QueueFullError).
          if (error.accepted !== 0) this.fail(`#${op.n}: a call's QueueFullError says ${error.accepted} accepted`);
          if (timeout === undefined) this.fail(`#${op.n}: a call without a timeout was refused: ${describe(error)}`);
          this.settle(op, [entry], 0);
        } else if (kind === "TimeoutError") {
          // Queued, not answered in time: still processed, its answer discarded (answersAbandoned).
          if (timeout === undefined) this.fail(`#${op.n}: a call without a timeout timed out: ${describe(error)}`);
          this.settle(op, [entry], 1);
          entry.abandoned = !entry.dropBy;
        } else if (kind === "aborted") {
          // The signal's reason does not say whether the message was queued: the handler tells
          // at the end of the case (README: a queued call's answer is discarded, counted).
          entry.accepted = "unknown";
          entry.abortedCall = true;
        }
        this.end(op, kind);
      },
    );
  }

  /** Mostly a pipeline's last stage (or a lone kernel); now and then a stage whose answers go onward, which must give none. */
  pickReceiver() {
    const onward = this.kernels.filter((k) => k.next);
    return onward.length && this.rng.chance(0.05) ? this.rng.pick(onward) : this.rng.pick(this.kernels.filter((k) => !k.next));
  }

  receiveWait() {
    const signal = this.makeSignal();
    const timeout = signal && this.rng.chance(0.4) ? undefined : this.pickTimeout(false);
    return { signal, timeout };
  }

  /**
   * A receive's rejection: its timeout, its signal, or (once terminate was called) a
   * KernelStateError, which says no answer is left: every answer processed must have been taken.
   */
  receiveRefused(op, error, signal, kernel, waits = [TimeoutError]) {
    // A stage connected onward has no answers of its own: a receive on it is refused as a call is.
    const allowed = [...waits, ...(kernel.terminating ? [KernelStateError] : []), ...(kernel.next ? [TypeError] : [])];
    const kind = this.classify(op, error, signal, allowed, kernel);
    if (kind === "TypeError" && !/^kernel '\w+' is connected to '\w+', so its answers go there/.test(error.message)) {
      this.fail(`#${op.n}: ${describe(error)}`);
    }
    if (kind === "KernelStateError") {
      this.checkStateError(op, error, kernel, "receive");
      const left = this.owed().filter((e) => e.sink === kernel && e.handled.has(kernel.id)).map((e) => e.seq);
      if (left.length) this.fail(`#${op.n}: ${describe(error)}, but the answers to seq ${left} were never received`);
      if (GPU) {
        const waiting = [...this.entries.values()].filter((e) => e.sink === kernel && e.kind === "send" && e.accepted !== false && !e.dropBy && !e.received);
        this.deferred.push(() => {
          const lost = waiting.filter((e) => e.accepted === true && e.handled.has(kernel.id) && !e.received);
          if (lost.length) this.fail(`#${op.n}: ${describe(error)}, but the answers to seq ${lost.map((e) => e.seq)} (processed) were never received`);
        });
      }
    }
    return kind;
  }

  opReceive() {
    const kernel = this.pickReceiver();
    const handle = this.rng.chance(0.5) ? this.pickHandle(kernel) : null;
    const { signal, timeout } = this.receiveWait();
    const op = this.begin("receive", `${handle ? "handle" : "runtime"}.receive ${kernel.id}, ${this.optionsDesc(timeout, signal)}`);
    const options = this.options(timeout, signal);
    const promise = handle ? handle.receive(options) : this.runtime.receive(kernel.id, options);
    return this.track(
      op,
      promise,
      this.bound(timeout, signal),
      (answer) => {
        this.end(op, "answer", `seq ${answer?.seq}`);
        this.onAnswer(op, kernel, answer?.seq);
      },
      (error) => this.end(op, this.receiveRefused(op, error, signal, kernel)),
    );
  }

  /** An answer with its envelope's header (runtime only). */
  opReceiveEnvelope() {
    const kernel = this.pickReceiver();
    const { signal, timeout } = this.receiveWait();
    const op = this.begin("receive", `runtime.receiveEnvelope ${kernel.id}, ${this.optionsDesc(timeout, signal)}`);
    const promise = this.runtime.receiveEnvelope(kernel.id, this.options(timeout, signal));
    return this.track(
      op,
      promise,
      this.bound(timeout, signal),
      (answer) => {
        const seq = answer?.message?.seq;
        this.end(op, "answer", `seq ${seq}, envelope ${JSON.stringify(answer?.envelope)}`);
        this.onAnswer(op, kernel, seq);
        const entry = this.entries.get(seq);
        if (!entry || this.failure !== null) return;
        this.newMessageId(op, answer.envelope);
        if (kernel.lastAnswerStamp && !later(answer.envelope.timestamp, kernel.lastAnswerStamp)) {
          this.fail(`#${op.n}: answer seq ${seq} is stamped ${JSON.stringify(answer.envelope.timestamp)}, not after the answer taken before it (${JSON.stringify(kernel.lastAnswerStamp)})`);
        }
        kernel.lastAnswerStamp = answer.envelope.timestamp;
        entry.answerEnvelope = answer.envelope;
        // An enveloped request's header is checked once its sendEnvelope has settled.
        if (!entry.enveloped || entry.header) this.checkAnswerEnvelope(op, entry);
      },
      (error) => this.end(op, this.receiveRefused(op, error, signal, kernel)),
    );
  }

  opTryReceive() {
    const kernel = this.pickReceiver();
    const handle = this.pickHandle(kernel);
    const op = this.begin("tryReceive", `handle.tryReceive ${kernel.id}`);
    try {
      const answer = handle.tryReceive();
      if (answer === null) return this.end(op, "null");
      this.end(op, "answer", `seq ${answer.seq}`);
      this.onAnswer(op, kernel, answer.seq);
    } catch (error) {
      this.end(op, this.receiveRefused(op, error, null, kernel, []));
    }
  }

  opReceiveBatch() {
    const r = this.rng;
    const kernel = this.pickReceiver();
    const handle = r.chance(0.5) ? this.pickHandle(kernel) : null;
    const { signal, timeout } = this.receiveWait();
    const max = r.int(1, 10);
    const packed = r.chance(0.3);
    const op = this.begin(
      "receiveBatch",
      `${handle ? "handle" : "runtime"}.receiveBatch ${kernel.id} max ${max}${packed ? " packed" : ""}, ${this.optionsDesc(timeout, signal)}`,
    );
    const options = { ...this.options(timeout, signal), max, packed };
    const promise = handle ? handle.receiveBatch(options) : this.runtime.receiveBatch(kernel.id, options);
    return this.track(
      op,
      promise,
      this.bound(timeout, signal),
      (answers) => {
        let seqs;
        if (packed) {
          if (!(answers instanceof Uint8Array) || answers.byteLength % 4 !== 0) {
            return this.fail(`#${op.n}: packed receiveBatch gave ${Object.prototype.toString.call(answers)} of ${answers?.byteLength} bytes`);
          }
          const view = new DataView(answers.buffer, answers.byteOffset, answers.byteLength);
          seqs = Array.from({ length: answers.byteLength / 4 }, (_, i) => view.getUint32(4 * i, true));
        } else {
          seqs = answers.map((a) => a.seq);
        }
        this.end(op, "answers", `seq ${seqs.join(",")}`);
        if (seqs.length < 1 || seqs.length > max) this.fail(`#${op.n}: receiveBatch max ${max} gave ${seqs.length} answers`);
        for (const seq of seqs) this.onAnswer(op, kernel, seq);
      },
      (error) => this.end(op, this.receiveRefused(op, error, signal, kernel)),
    );
  }

  async opLifecycle() {
    const kernel = this.pickKernel();
    const method = this.rng.pick(Object.keys(TRANSITIONS));
    const from = kernel.state;
    const to = TRANSITIONS[method][from];
    const op = this.begin("lifecycle", `${method} ${kernel.id} (${from})`);
    const handle = this.pickHandle(kernel);
    const name = method.slice(method.indexOf(".") + 1);
    const promise = method.startsWith("rt.") ? this.runtime[name](kernel.id) : handle[name]();
    await this.race(
      this.track(
        op,
        promise,
        SETTLE_SLACK_MS,
        () => {
          if (!to) this.fail(`#${op.n}: ${method} succeeded on a ${from} kernel`);
          kernel.state = to ?? kernel.state;
          this.end(op, "ok", `→ ${kernel.state}`);
        },
        (error) => {
          const kind = this.classify(op, error, null, [KernelStateError], kernel);
          if (to) this.fail(`#${op.n}: ${method} on a ${from} kernel was refused: ${describe(error)}`);
          if (kind === "KernelStateError" && error.state !== from) this.fail(`#${op.n}: KernelStateError says ${error.state}, the kernel was ${from}`);
          this.end(op, to ? kind : "refused");
        },
      ) ?? op.promise,
    );
    for (const [what, state] of [["getState", this.runtime.getState(kernel.id)], ["handle.state", handle.state]]) {
      if (state !== kernel.state) this.fail(`#${op.n}: ${what} is ${state}, the model says ${kernel.state}`);
    }
  }

  /**
   * A graceful stop of a kernel on its own (not in a pipeline): README, terminate processes
   * what is queued and in flight (answers stay receivable), or past its timeout rejects with a
   * TimeoutError naming how many it left unprocessed. Sends waiting then are refused.
   */
  async opTerminate() {
    const r = this.rng;
    const kernel = r.pick(this.kernels);
    if (kernel.next || kernel.prev || kernel.terminating) return;
    const handle = r.chance(0.5) ? this.pickHandle(kernel) : null;
    const timeout = r.pick([0, 0, 1, 2, 5, 20, undefined]);
    const op = this.begin("terminate", `${handle ? "handle" : "runtime"}.terminate ${kernel.id} (${kernel.state}), ${this.optionsDesc(timeout, null)}`);
    kernel.terminating = true;
    const options = timeout === undefined ? undefined : { timeout };
    const promise = handle ? handle.terminate(options) : this.runtime.terminate(kernel.id, options);
    const onOk = () => {
      kernel.state = "terminated";
      this.end(op, "ok");
      const left = [...this.entries.values()].filter((e) => e.kernel === kernel && e.accepted === true && !e.handled.has(kernel.id));
      if (GPU) {
        // Which ran is known only at the end (the state read back).
        this.deferred.push(() => {
          const notRun = left.filter((e) => !e.handled.has(kernel.id));
          if (notRun.length) this.fail(`#${op.n}: terminate resolved, leaving seq ${notRun.map((e) => e.seq)} unprocessed`);
        });
      } else if (left.length) this.fail(`#${op.n}: terminate resolved, leaving seq ${left.map((e) => e.seq)} unprocessed`);
    };
    const onError = (error) => {
      const kind = this.classify(op, error, null, [TimeoutError], kernel);
      if (kind === "TimeoutError") {
        kernel.state = "terminated";
        kernel.unprocessed = error.unprocessed;
        if (!Number.isInteger(error.unprocessed) || error.unprocessed < 1) this.fail(`#${op.n}: terminate timed out saying ${error.unprocessed} unprocessed`);
        if (!/terminate/.test(error.message)) this.fail(`#${op.n}: ${describe(error)} does not say terminate timed out`);
      }
      this.end(op, kind, `unprocessed ${error?.unprocessed}`);
    };
    await this.race(this.track(op, promise, (timeout ?? 5000) + SETTLE_SLACK_MS, onOk, onError) ?? op.promise);
    for (const [what, state] of [["getState", this.runtime.getState(kernel.id)], ["handle.state", kernel.handles[0].state]]) {
      if (state !== "terminated") this.fail(`#${op.n}: after terminate, ${what} is ${state}`);
    }
  }

  /** Queues stay within their bounds, and every kernel is in the state the model says. */
  checkBounds(when) {
    for (const kernel of this.kernels) {
      const status = kernel.handles[1].status();
      if (status.inputQueueDepth > kernel.inCap) this.fail(`${when}: ${kernel.id}'s input queue holds ${status.inputQueueDepth}, over its bound ${kernel.inCap}`);
      // A terminating kernel processes all its input, whatever room its output has
      // (src/tick/plan.rs: keeping every answer matters more than the bound then).
      if (status.outputQueueDepth > kernel.outCap && !kernel.terminating) {
        this.fail(`${when}: ${kernel.id}'s output queue holds ${status.outputQueueDepth}, over its bound ${kernel.outCap}`);
      }
      if (status.state !== kernel.state) this.fail(`${when}: ${kernel.id} is ${status.state}, the model says ${kernel.state}`);
    }
  }

  step() {
    const roll = this.rng.next();
    if (roll < 0.17) return this.opSend();
    if (roll < 0.2) return this.opSendEnvelope();
    if (roll < 0.27) return this.opTrySend();
    if (roll < 0.4) return this.opSendBatch();
    if (roll < 0.5) return this.opCall();
    if (roll < 0.59) return this.opReceive();
    if (roll < 0.62) return this.opReceiveEnvelope();
    if (roll < 0.68) return this.opTryReceive();
    if (roll < 0.8) return this.opReceiveBatch();
    if (roll < 0.91) return this.opLifecycle();
    if (roll < 0.925) return this.opTerminate();
    const ms = this.rng.int(0, 4);
    this.log(`(sleep ${ms} ms)`);
    return sleep(ms);
  }

  // ---- the end of a case -------------------------------------------------------------------

  /** Answers still owed: accepted, not dropped, not a call's, not received yet, not left unprocessed by a terminate that timed out. */
  owed() {
    return [...this.entries.values()].filter(
      (e) => e.kind === "send" && e.accepted === true && !e.dropBy && !e.received && !(e.kernel.unprocessed !== null && !e.handled.has(e.kernel.id)),
    );
  }

  async finish() {
    // Everything runs again, so everything accepted gets answered.
    for (const kernel of this.kernels) {
      if (kernel.state === "launched" || kernel.state === "deactivated") {
        this.log(`(end) activate ${kernel.id} (${kernel.state})`);
        await this.race(kernel.handles[0].activate());
        kernel.state = "active";
      }
    }
    // Receive until every operation has settled, every owed answer came and every queue is
    // empty: sends waiting for room get in as answers are taken.
    const started = performance.now();
    const drainOp = this.begin("drain", "(end) receiveBatch from every last stage until all is answered");
    for (;;) {
      this.check();
      const pending = this.ops.filter((o) => !o.settled && o !== drainOp);
      const owed = this.owed();
      const busy = this.kernels.filter((k) => {
        const m = k.handles[0].metrics();
        return m.inputQueueDepth + m.outputQueueDepth + m.inFlight > 0;
      });
      if (!pending.length && !owed.length && !busy.length) break;
      if (performance.now() - started > DRAIN_MS) {
        this.fail(
          `still not done ${DRAIN_MS} ms after the end: operations unsettled [${pending.map((o) => `#${o.n}`).join(", ")}], ` +
            `answers owed [${owed.map((e) => `${e.sink.id}:${e.seq}`).join(", ")}], ` +
            `busy [${busy.map((k) => `${k.id} ${JSON.stringify(k.handles[0].status())}`).join("; ")}]`,
        );
        this.check();
      }
      for (const kernel of this.kernels.filter((k) => !k.next)) {
        try {
          const answers = await kernel.handles[0].receiveBatch({ max: 64, timeout: 5 });
          this.log(`  (end) ${kernel.id} → seq ${answers.map((a) => a.seq).join(",")}`);
          for (const answer of answers) this.onAnswer(drainOp, kernel, answer.seq);
        } catch (error) {
          this.receiveRefused(drainOp, error, null, kernel);
        }
      }
    }
    drainOp.settled = true;
    await this.race(Promise.all(this.ops.map((o) => o.promise)));
    this.checkBounds("end");
    await this.learnHandled();

    // Nothing more comes out of any kernel (a terminated one says so).
    for (const kernel of this.kernels) {
      try {
        const left = kernel.handles[1].tryReceive();
        if (left !== null || kernel.terminating) this.fail(`end: ${kernel.id}'s tryReceive gave ${JSON.stringify(left)}`);
      } catch (error) {
        this.receiveRefused(drainOp, error, null, kernel, []);
      }
    }

    // Every message the model says was accepted ran through its stages exactly once, or (on a
    // kernel whose terminate timed out) not at all; nothing refused ran. An aborted call's
    // message was queued if it ran; one that did not run may still be among a timed-out
    // terminate's unprocessed.
    for (const kernel of this.kernels) kernel.leftUnprocessed = 0;
    for (const entry of this.entries.values()) {
      if (entry.accepted !== "unknown") continue;
      entry.accepted = entry.handled.has(entry.kernel.id);
      if (entry.accepted && entry.mustNotAccept) this.fail(`end: aborted call seq ${entry.seq} ran after later messages of its stream`);
      entry.abandoned = entry.accepted && entry.kind === "call" && !entry.dropBy;
      entry.unsure = !entry.accepted && entry.kernel.unprocessed !== null;
    }
    for (const entry of this.entries.values()) {
      const stages = this.path(entry).map((k) => k.id);
      const ran = stages.filter((id) => entry.handled.has(id));
      if (entry.accepted === true && ran.length !== stages.length) {
        if (entry.kernel.unprocessed !== null && ran.length === 0) {
          entry.unprocessed = true;
          entry.abandoned = false;
          entry.kernel.leftUnprocessed++;
        } else {
          this.fail(`end: seq ${entry.seq} was accepted but ran through [${ran}] of [${stages}]`);
        }
      }
      if (entry.unanswered && ran.length) this.fail(`end: call seq ${entry.seq} was refused as unanswered, yet it ran`);
      if (entry.accepted === false && entry.handled.size) this.fail(`end: seq ${entry.seq} was refused but ran on [${[...entry.handled]}]`);
      if (entry.accepted === true && entry.kind === "send" && !entry.dropBy && !entry.received && !entry.unprocessed) {
        this.fail(`end: seq ${entry.seq} was accepted and never answered`);
      }
    }
    for (const kernel of this.kernels.filter((k) => k.unprocessed !== null)) {
      const unsure = [...this.entries.values()].filter((e) => e.kernel === kernel && e.unsure).length;
      kernel.abortedUnprocessed = kernel.unprocessed - kernel.leftUnprocessed;
      if (kernel.abortedUnprocessed < 0 || kernel.abortedUnprocessed > unsure) {
        this.fail(
          `end: ${kernel.id}'s terminate said ${kernel.unprocessed} unprocessed; the model has ${kernel.leftUnprocessed} accepted and never run` +
            (unsure ? ` (and ${unsure} aborted calls that may have been queued)` : ""),
        );
      }
    }
    this.check();
    this.checkCounters();
    this.check();
    const relaunched = await this.removeTerminated();

    const report = await this.runtime.dispose();
    const sum = (f) => this.kernels.reduce((total, k) => total + f(k), 0);
    const expected = {
      kernelsLaunched: this.kernels.length + relaunched,
      kernelsTerminated: this.kernels.length + relaunched,
      messagesProcessed: sum((k) => k.model.messagesProcessed) + relaunched,
      messagesUnprocessed: sum((k) => k.unprocessed ?? 0),
      answersNeverReceived: sum((k) => k.model.answersAbandoned),
    };
    for (const [key, value] of Object.entries(expected)) {
      if (report[key] !== value) this.fail(`dispose: the shutdown report's ${key} is ${report[key]}, the model says ${value}`);
    }
    // After dispose every operation is refused, by name (through a handle of a kernel that was
    // never removed: one of a removed kernel is a KernelNotFoundError first).
    const id = this.kernels[0].id;
    const after = await this.runtime.send(id, { seq: 0 }).then(() => "sent", (e) => e);
    if (!(after instanceof RuntimeDisposedError)) this.fail(`after dispose, send gave ${describe(after)}`);
    const kept = this.kernels.find((k) => k.state !== "terminated");
    if (kept) {
      try {
        kept.handles[0].tryReceive();
        this.fail("after dispose, tryReceive did not throw");
      } catch (e) {
        if (!(e instanceof RuntimeDisposedError)) this.fail(`after dispose, tryReceive threw ${describe(e)}`);
      }
    }
    this.check();
  }

  /**
   * Which kernel ran which message. Tracked cases read each kernel's state (a count per seq; on
   * the cpu backend checked against the JS handler's own record). Untracked cases on a GPU assume
   * what the model says: every accepted message ran through its path, except the last
   * `unprocessed` accepted ones of a kernel whose terminate timed out.
   */
  async learnHandled() {
    const untracked = () => !this.tracked;
    if (this.tracked) {
      for (const kernel of this.kernels) {
        let state;
        try {
          state = await this.runtime.readState(kernel.id);
        } catch (error) {
          this.fail(`end: readState(${kernel.id}) threw ${describe(error)}`);
          continue;
        }
        for (let seq = 0; seq < STATE_LEN; seq++) {
          const count = state[seq];
          const entry = this.entries.get(seq);
          if (!entry) {
            if (count) this.fail(`end: ${kernel.id}'s state says it handled seq ${seq} (x${count}), never sent`);
            continue;
          }
          if (count > 1) this.fail(`end: ${kernel.id} handled seq ${seq} ${count} times`);
          if (count && !this.path(entry).includes(kernel)) this.fail(`end: ${kernel.id} handled seq ${seq}, which cannot reach it`);
          if (GPU) {
            if (count) entry.handled.add(kernel.id);
          } else if (Boolean(count) !== entry.handled.has(kernel.id)) {
            this.fail(`end: ${kernel.id}'s state says seq ${seq} ran ${count} times, its handler saw it ${entry.handled.has(kernel.id) ? "once" : "never"}`);
          }
        }
      }
    }
    if (GPU) {
      for (const kernel of this.kernels.filter(untracked)) {
        const queued = (e) => e.accepted === true;
        const accepted = [...this.entries.values()].filter((e) => e.kernel === kernel && queued(e)).sort((a, b) => a.pos - b.pos);
        // FIFO: the unprocessed are the last ones accepted, up to the first (from the end) whose
        // answer came; the rest of the count may be aborted calls that were queued.
        let left = kernel.unprocessed ?? 0;
        for (const entry of accepted.reverse()) {
          if (left > 0 && !entry.received && !entry.mustHaveRun) {
            left--;
            continue;
          }
          left = 0;
          for (const stage of this.path(entry)) entry.handled.add(stage.id);
        }
      }
    }
    if (GPU) {
      for (const entry of this.entries.values()) {
        // An answer received (or a call's answer, or its drop) means every stage of its path ran.
        const ran = entry.received || entry.mustHaveRun;
        if (!ran) continue;
        const missing = this.path(entry).filter((k) => !entry.handled.has(k.id)).map((k) => k.id);
        if (missing.length) this.fail(`end: seq ${entry.seq} was answered (or dropped), but [${missing}] never ran it`);
      }
      for (const check of this.deferred) check();
    }
    this.check();
  }

  /**
   * README: remove forgets a terminated kernel; its handles then refuse every operation with
   * KernelNotFoundError, and only then may its id be launched again (a new kernel, answering).
   * Resolves with how many were launched again.
   */
  async removeTerminated() {
    let relaunched = 0;
    for (const kernel of this.kernels.filter((k) => k.state === "terminated")) {
      this.log(`(end) remove ${kernel.id}, launch it again`);
      this.runtime.remove(kernel.id);
      if (this.runtime.getKernel(kernel.id) !== null) this.fail(`end: getKernel(${kernel.id}) after remove is not null`);
      if (this.runtime.kernelIds.includes(kernel.id)) this.fail(`end: kernelIds after remove still has ${kernel.id}`);
      const refused = await kernel.handles[0].send({ seq: 0 }, { timeout: 0 }).then(() => null, (e) => e);
      if (!(refused instanceof KernelNotFoundError)) this.fail(`end: send to removed ${kernel.id} gave ${describe(refused)}`);
      const again = await this.runtime.launch(
        kernel.id,
        { input: Seq, output: Seq, handler: (m) => ({ seq: m.seq }), wgsl: "fn handle(m: FuzzSeq) -> FuzzSeq { return m; }" },
        { autoActivate: true },
      );
      const answer = await Promise.race([again.call({ seq: 4242 }, { timeout: 5000 }), this.failed]);
      if (answer?.seq !== 4242) this.fail(`end: ${kernel.id} launched again answered ${JSON.stringify(answer)}`);
      relaunched++;
    }
    this.check();
    return relaunched;
  }

  /** Every counter against the model: the handle's metrics(), getTelemetry, metricsText and the summary. */
  checkCounters() {
    const entries = [...this.entries.values()].filter((e) => e.accepted === true);
    for (const kernel of this.kernels) {
      const reaching = entries.filter((e) => this.path(e).includes(kernel) && !e.unprocessed);
      const processed = reaching.length;
      const dropped = reaching.filter((e) => e.dropBy === kernel.id).length;
      kernel.model = {
        messagesSent: entries.filter((e) => e.kernel === kernel).length + (kernel.abortedUnprocessed ?? 0),
        messagesProcessed: processed,
        messagesDropped: dropped,
        messagesForwarded: kernel.next ? processed - dropped : 0,
        messagesReceived: (kernel.received ?? 0) + (kernel.callsAnswered ?? 0),
        answersAbandoned: entries.filter((e) => e.kernel === kernel && e.abandoned).length,
        inputQueueDepth: 0,
        outputQueueDepth: 0,
        inFlight: 0,
        unprocessedAtTermination: kernel.unprocessed ?? 0,
        connectedTo: kernel.next?.id ?? null,
      };
      const metrics = kernel.handles[0].metrics();
      for (const key of ["fusedDispatches", "groupedDispatches", "dispatchesEncodedAhead"]) {
        if (metrics[key] > 0) coverage.set(`gpu: ${key}`, (coverage.get(`gpu: ${key}`) ?? 0) + metrics[key]);
      }
      const telemetry = this.runtime.getTelemetry(kernel.id);
      if (!this.telemetry && telemetry !== null) this.fail(`getTelemetry(${kernel.id}) without telemetry is not null`);
      for (const [source, counters] of [["metrics()", metrics], ["getTelemetry", telemetry]]) {
        if (counters === null) continue;
        for (const [key, value] of Object.entries(kernel.model)) {
          if (counters[key] !== value) this.fail(`end: ${kernel.id}'s ${source}.${key} is ${counters[key]}, the model says ${value}`);
        }
      }
      const status = kernel.handles[1].status();
      if (status.messagesProcessed !== processed) this.fail(`end: ${kernel.id}'s status().messagesProcessed is ${status.messagesProcessed}, the model says ${processed}`);
      const text = this.runtime.metricsText();
      for (const [family, key] of [
        ["ringkernel_messages_sent_total", "messagesSent"],
        ["ringkernel_messages_received_total", "messagesReceived"],
        ["ringkernel_messages_processed_total", "messagesProcessed"],
        ["ringkernel_messages_dropped_total", "messagesDropped"],
        ["ringkernel_messages_forwarded_total", "messagesForwarded"],
        ["ringkernel_answers_abandoned_total", "answersAbandoned"],
      ]) {
        const line = text.match(new RegExp(`^${family}\\{kernel="${kernel.id}"\\} (\\S+)$`, "m"));
        if (Number(line?.[1]) !== kernel.model[key]) this.fail(`end: metricsText's ${family} for ${kernel.id} is ${line?.[1]}, the model says ${kernel.model[key]}`);
      }
    }
    const summary = this.runtime.getSummary();
    const sum = (key) => this.kernels.reduce((total, k) => total + k.model[key], 0);
    for (const [key, model] of [
      ["totalSent", "messagesSent"],
      ["totalReceived", "messagesReceived"],
      ["totalDropped", "messagesDropped"],
      ["totalMessages", "messagesProcessed"],
    ]) {
      if (summary[key] !== sum(model)) this.fail(`end: getSummary().${key} is ${summary[key]}, the model says ${sum(model)}`);
    }
  }

  async run() {
    await this.setup();
    const steps = this.rng.int(30, 60) * Number(process.env.FUZZ_STEPS_X || 1);
    for (let i = 0; i < steps; i++) {
      const waiting = this.step();
      if (waiting) await this.race(waiting);
      this.checkBounds(`after #${this.stats.ops}`);
      this.check();
    }
    await this.finish();
  }
}

test(`model-based fuzz of the JavaScript API on the ${BACKEND} backend (seed ${SEED}, ${ONLY_CASE === null ? `${CASES} cases` : `case ${ONLY_CASE} alone`})`, { timeout: 3_600_000 }, async (t) => {
  const numbers = ONLY_CASE === null ? Array.from({ length: CASES }, (_, i) => FIRST_CASE + i) : [ONLY_CASE];
  const totals = { ops: 0, messages: 0, answers: 0 };
  for (const number of numbers) {
    const fuzzCase = new Case(number);
    try {
      // A whole case that never ends is a hang: fail it with its trace.
      let limit;
      await Promise.race([
        fuzzCase.run(),
        new Promise((_, reject) => {
          limit = setTimeout(() => reject(new Error(fuzzCase.report(`case still running after ${CASE_LIMIT_MS} ms (hang)`))), CASE_LIMIT_MS);
        }),
      ]).finally(() => clearTimeout(limit));
    } catch (error) {
      // A failure of the test's own making (or a throw outside the model) still names the case.
      if (error?.message?.startsWith(`fuzz seed ${SEED}`)) throw error;
      throw new Error(fuzzCase.report(`threw ${error?.stack ?? error}`));
    } finally {
      await fuzzCase.close();
    }
    for (const key of Object.keys(totals)) totals[key] += fuzzCase.stats[key];
  }
  t.diagnostic(`${numbers.length} cases: ${totals.ops} operations, ${totals.messages} messages, ${totals.answers} answers received`);
  t.diagnostic(`outcomes: ${[...coverage].sort().map(([k, v]) => `${k} ${v}`).join("; ")}`);
  // A full run must reach every path the model checks, or it checks less than it seems to.
  if (ONLY_CASE === null && CASES >= 100) {
    for (const outcome of [
      "send: ok", "send: QueueFullError", "send: aborted", "trySend: ok", "trySend: QueueFullError",
      "sendBatch: ok", "sendBatch: QueueFullError part way", "sendBatch: aborted part way", "sendBatch: aborted",
      "call: answer", "call: MessageDroppedError", "call: TimeoutError", "call: QueueFullError", "call: aborted",
      "call: refused: connected", "receive: answer", "receive: TimeoutError", "receive: aborted",
      "tryReceive: answer", "tryReceive: null", "receiveBatch: answers", "receiveBatch: TimeoutError",
      "lifecycle: ok", "lifecycle: refused", "checked: queued before returning",
      "terminate: ok", "terminate: TimeoutError", "send: KernelStateError", "trySend: KernelStateError",
      "call: KernelStateError (send)", "call: KernelStateError (receive)", "receive: KernelStateError",
    ]) {
      assert.ok(coverage.has(outcome), `no case reached "${outcome}": the fuzz no longer covers it`);
    }
  }
});

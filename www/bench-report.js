// The bench result as a table for people: the native bench's table (native/src/bench/report.rs)
// plus the browser-only sections. Pure functions, no DOM: the page shows it and
// pkg-tests/bench.mjs prints it.

/** A whole number with thousands separators: 1234567.8 → "1,234,568". */
export function grouped(value) {
  if (!Number.isFinite(value)) return String(value);
  return Math.round(value).toLocaleString("en-US");
}

/**
 * A duration to three significant figures in a unit that fits: "1.23 ms", "45.6 µs", "0.412 µs".
 * Grouped samples (bench.js's Bench.rounds) time steps far below the clock's step; fixed
 * decimals of a millisecond would print them as 0.000.
 */
export function duration(ms) {
  if (!Number.isFinite(ms)) return String(ms);
  return ms >= 1 ? `${ms.toPrecision(3)} ms` : `${(ms * 1e3).toPrecision(3)} µs`;
}

const fixed = (value, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : String(value));
const pad = (text, width) => String(text).padStart(width);
const padEnd = (text, width) => String(text).padEnd(width);

/** `result` (the JSON document) as lines of text. */
export function formatReport(result) {
  const out = [];
  const line = (text = "") => out.push(text);
  const a = result.adapter;
  const c = result.config;
  if (a) {
    const info = a.webgpu ?? {};
    line(`adapter: ${a.name} (${a.backend}, ${a.deviceType}${a.driver ? `, driver ${a.driver}` : ""})` +
      (info.vendor || info.architecture ? ` · ${[info.vendor, info.architecture].filter(Boolean).join(" ")}` : "") +
      (info.isFallbackAdapter ? ", fallback adapter" : ""));
  } else {
    line(`adapter: none (${result.webgpu?.reason ?? "no WebGPU"})`);
  }
  line(`${c.iterations} samples per latency, doubler queue ${c.queueSize}, telemetry ${c.telemetry ? "on" : "off"}` +
    `${c.quick ? ", quick" : ""}; timer resolution ${fixed(c.timerResolutionUs)} µs` +
    `${c.crossOriginIsolated ? " (cross-origin isolated)" : ""}` +
    (c.minGroupedSampleMs ? `; host-side steps timed in groups of at least ${duration(c.minGroupedSampleMs)}` : ""));
  // A document from before `webgpu` was reported always had it.
  const gpu = result.webgpu?.available ?? true;
  if (gpu) gpuSections(result, line);
  else {
    line();
    line(`WebGPU: not measured (${result.webgpu.reason}): ${result.webgpu.skipped}`);
  }
  hostSections(result, line);
  if (gpu) hostCostAndObjects(result, line);
  ratios(result, line, gpu);
  return out.join("\n");
}

/** Latency p50 and p99, to a tenth of a µs (hundredths below 10 µs). */
const micros = (value) => fixed(value, value < 10 ? 2 : 1);

/** The sections that need WebGPU: its floors, the runtime on it against them, two devices. */
function gpuSections(result, line) {
  line();
  line(`${padEnd("latency (µs)", 44)}${pad("p50", 12)}${pad("p99", 12)}`);
  const latencyRow = (label, l) => line(`  ${padEnd(label, 42)}${pad(fixed(l.p50), 12)}${pad(fixed(l.p99), 12)}`);
  latencyRow("floor: submit + map (4-byte copy)", result.floors.submitAndMap);
  const suspect = result.ratios?.rawSingleFloor?.suspect;
  latencyRow(`floor: raw doubler, 1 message${suspect ? " (suspect)" : ""}`, result.floors.rawSingle);
  latencyRow("runtime: send → receive, 1 message", result.roundTrip.sendReceive);
  latencyRow("runtime: call, 1 message", result.roundTrip.call);
  const split = result.roundTripBreakdown;
  if (split) {
    line();
    line(`${padEnd("one round trip (µs, p50)", 44)}${pad("before map", 12)}${pad("map wait", 12)}${pad("after map", 12)}`);
    const splitRow = (label, s) => line(`  ${padEnd(label, 42)}${pad(fixed(s.before.p50), 12)}${pad(fixed(s.wait.p50), 12)}${pad(fixed(s.after.p50), 12)}`);
    splitRow("raw doubler, 1 message", split.rawSingle);
    splitRow("runtime: send → receive", split.sendReceive);
    splitRow("runtime: call", split.call);
  }

  line();
  line(`${padEnd("throughput", 14)}${pad("runtime msgs/s", 16)}${pad("raw msgs/s", 16)}${pad("runtime/raw", 14)}` +
    `${pad("raw, its grid", 16)}${pad("runtime/that", 14)}`);
  result.throughput.forEach((b, i) => {
    line(`  ${pad(grouped(b.messages), 12)}${pad(grouped(b.runtime.msgsPerSec), 16)}${pad(grouped(b.raw.msgsPerSec), 16)}` +
      `${pad(fixed(result.ratios.batchedOverRaw[i]?.value, 3), 14)}${pad(grouped(b.rawSameGrid.msgsPerSec), 16)}` +
      `${pad(fixed(result.ratios.batchedOverRawSameGrid[i]?.value, 3), 14)}`);
  });
  const p = result.perMessage;
  line();
  line(`per message (raw WebGPU, one dispatch + map each): ${grouped(p.messages)} messages, ${grouped(p.msgsPerSec)} msgs/s ` +
    `(p50 ${fixed(p.latency.p50)} µs)`);

  line();
  line(`${padEnd("kernels with traffic", 24)}${pad("tick p50 µs", 14)}${pad("tick p99 µs", 14)}${pad("p50 per kernel", 16)}`);
  for (const k of result.kernels) {
    line(`  ${pad(k.kernels, 22)}${pad(fixed(k.tick.p50), 14)}${pad(fixed(k.tick.p99), 14)}${pad(fixed(k.tick.p50 / k.kernels), 16)}`);
  }
  if (result.kernels.every((k) => k.steps)) {
    line();
    line(`${padEnd("average tick (µs)", 24)}${pad("plan", 10)}${pad("submit", 10)}${pad("wait", 10)}${pad("deliver", 10)}${pad("host/kernel", 14)}`);
    for (const k of result.kernels) {
      const s = k.steps;
      line(`  ${pad(`${k.kernels} kernels`, 22)}${pad(fixed(s.plan), 10)}${pad(fixed(s.submit), 10)}${pad(fixed(s.wait), 10)}` +
        `${pad(fixed(s.deliver), 10)}${pad(fixed((s.plan + s.submit + s.deliver) / k.kernels), 14)}`);
    }
  }

  const pipe = result.pipeline;
  line();
  line(`${padEnd(`pipeline of ${pipe.stages} stages (µs)`, 44)}${pad("p50", 12)}${pad("p99", 12)}`);
  latencyRow("single stage: send → receive", pipe.singleStage);
  latencyRow(`${pipe.stages} host round trips, one per stage`, pipe.hostRelayed);
  if (pipe.available) {
    latencyRow(`${pipe.stages} connected stages, ${pipe.fused ? "fused" : "never fused"}`, pipe.connected);
    latencyRow(`${pipe.stages} connected stages, unfused (ring to ring)`, pipe.unfused);
    latencyRow("middle stage paused, then resumed", pipe.pausedMiddleStage);
  } else line(`  connected stages: unavailable: ${pipe.reason}`);

  const st = result.stateCheckpoint;
  if (st) {
    line();
    line(`${padEnd(`${st.stateBytes / 2 ** 20} MiB state, send → receive (µs)`, 44)}${pad("p50", 12)}${pad("p99", 12)}`);
    latencyRow("checkpointed with every tick (the default)", st.everyTick);
    latencyRow("never checkpointed (checkpointIntervalMs)", st.never);
  }

  const dev = result.devices;
  if (dev) {
    line();
    line(`${padEnd(`two devices, ${dev.migrations} migrations (µs)`, 44)}${pad("p50", 12)}${pad("p99", 12)}`);
    latencyRow("migration pause (out of every tick)", dev.pause);
    latencyRow("migrate call (compiling included)", dev.migrate);
    latencyRow("3-stage pipeline, middle on the other device", dev.pipelineAcrossDevices);
    latencyRow("3-stage pipeline, one device", dev.pipelineOneDevice);
  }
}

/** A throughput's median and how it was timed: "median 41.2 µs of 5, groups of 120". */
const median = (t) => `median ${duration(t.medianMs)} of ${t.repetitions}${t.groupSize ? `, groups of ${grouped(t.groupSize)}` : ""}`;

/** The sections that need no GPU: the JS actor, the cpu backend, host packing (on whichever runtime ran it). */
function hostSections(result, line) {
  const actor = result.jsActor;
  line();
  const perSample = (l) => (l.groupSize ? ` (each sample the mean of ${grouped(l.groupSize)})` : "");
  line(`JS async actor (mailbox + async handler): send → receive p50 ${micros(actor.sendReceive.p50)} µs, ` +
    `p99 ${micros(actor.sendReceive.p99)} µs${perSample(actor.sendReceive)}`);
  for (const t of actor.throughput) line(`  ${pad(grouped(t.messages), 12)}${pad(grouped(t.msgsPerSec), 16)} msgs/s  (${median(t)})`);

  const cpu = result.cpuBackend;
  line();
  if (cpu.available) {
    line(`cpu backend (host handlers): send → receive p50 ${micros(cpu.sendReceive.p50)} µs, p99 ${micros(cpu.sendReceive.p99)} µs` +
      perSample(cpu.sendReceive));
    for (const t of cpu.throughput) line(`  ${pad(grouped(t.messages), 12)}${pad(grouped(t.msgsPerSec), 16)} msgs/s  (${median(t)})`);
  } else {
    line(`cpu backend: unavailable: ${cpu.reason ?? "unknown"}`);
  }

  const pack = result.hostPacking;
  line();
  line(`host packing: sendBatch of ${grouped(pack.messages)} ${pack.messageBytes}-byte messages into a deactivated kernel` +
    (pack.backend ? ` (${pack.backend} backend)` : ""));
  line(`  ${padEnd("Int32Array (packed)", 28)}${pad(grouped(pack.typedArray.msgsPerSec), 16)} msgs/s  (${median(pack.typedArray)})`);
  line(`  ${padEnd("array of objects", 28)}${pad(grouped(pack.objects.msgsPerSec), 16)} msgs/s  (${median(pack.objects)})`);
}

/** What a message costs on the page through the WebGPU runtime: one a call, and as objects in and out. */
function hostCostAndObjects(result, line) {
  const cost = result.hostCost;
  if (cost) {
    line();
    line(`host cost per message (objects, one a call, median of ${cost.rounds} rounds of ${grouped(cost.messages)}): ` +
      `send ${fixed(cost.sendUs, 2)} µs, receive ${fixed(cost.receiveUs, 2)} µs`);
    if (cost.sendEnvelopeUs !== undefined) {
      line(`  with envelopes (sendEnvelope, receiveEnvelope): send ${fixed(cost.sendEnvelopeUs, 2)} µs, receive ${fixed(cost.receiveEnvelopeUs, 2)} µs`);
    }
    if (cost.burstUs !== undefined) {
      line(`  a burst of unawaited sends, 10× the queue, until every answer is in: ${fixed(cost.burstUs, 2)} µs a message`);
    }
  }

  const objects = result.objects;
  if (objects) {
    line();
    line(`objects in and out: sendBatch of ${grouped(objects.messages)} objects, receiveBatch of answer objects, vs the same as typed arrays`);
    for (const [layout, lanes] of Object.entries(objects.layouts)) {
      const cells = Object.entries(lanes).map(([lane, t]) => `${lane} ${grouped(t.msgsPerSec)}`).join(", ");
      line(`  ${padEnd(layout, 10)}${cells} msgs/s`);
    }
  }
}

/** The ratios; without WebGPU only host packing's. */
function ratios(result, line, gpu) {
  const r = result.ratios;
  const pack = result.hostPacking;
  line();
  line("ratios (latencies compare p50s)");
  if (gpu) gpuRatios(result, line);
  line(`  host packing, typed / objects   ${fixed(r.hostPackingTypedOverObjects, 1)}×  ` +
    `(typed: ${fixed(r.hostPackingOverTarget, 2)}× the ${grouped(pack.targetMsgsPerSec)} msgs/s target)`);
  if (r.objectsOverTypedArrays != null) {
    line(`  objects / typed arrays          ${fixed(r.objectsOverTypedArrays, 2)}×  (doubler, in and out)`);
    line(`  objects / plain JS actor        ${fixed(r.objectsOverJsActor, 2)}×  (doubler, the same objects)`);
  }
}

function gpuRatios(result, line) {
  const r = result.ratios;
  const pipe = result.pipeline;
  const sizes = r.batchedOverRaw.map((s) => `${grouped(s.messages)}: ${fixed(s.value, 3)}`).join(", ");
  line(`  batched / raw                   ${sizes}  (runtime msgs/s ÷ raw msgs/s)`);
  const sameGrid = r.batchedOverRawSameGrid.map((s) => `${grouped(s.messages)}: ${fixed(s.value, 3)}`).join(", ");
  line(`  batched / raw, the runtime's grid ${sameGrid}`);
  line(`  batched / per-message           ${fixed(r.batchedOverPerMessage.value)}×  ` +
    `(${grouped(r.batchedOverPerMessage.messages)} messages batched vs one dispatch each)`);
  const floor = r.rawSingleFloor;
  if (floor?.suspect) {
    // The same work timed among the batches took a fraction of it: the floor measured the browser's late map, not a floor.
    line(`  round trip / raw single         not a sound ratio: the raw floor (p50 ${fixed(floor.floorUs)} µs) is ` +
      `${fixed(floor.overBatchOfOne, 1)}× the raw batch of 1 (median ${fixed(floor.batchOfOneUs)} µs), the same work, ` +
      `and ${fixed(floor.overRoundTrip, 1)}× the runtime's round trip, which does more; ` +
      "its time is the map's wait (see the round trip split), so it is suspect here");
  } else {
    line(`  round trip / raw single         ${fixed(r.roundTripOverRawSingle, 2)}×`);
  }
  line(`  round trip / submit + map       ${fixed(r.roundTripOverSubmitAndMap, 2)}×`);
  if (r.roundTripExtraHostUs) {
    const extra = (e) => `${e.total < 0 ? "" : "+"}${fixed(e.total, 0)} µs (${fixed(e.before, 0)} before the map, ${fixed(e.after, 0)} after)`;
    line(`  host time over raw, round trip  ${extra(r.roundTripExtraHostUs)}; call ${extra(r.callExtraHostUs)}`);
  }
  line(`  16-kernel tick / 1-kernel tick  ${r.tick16OverTick1 == null ? "not measured" : `${fixed(r.tick16OverTick1, 2)}×`}` +
    (r.tick16OverTick1Paired == null ? "" : `  (taking turns: ${fixed(r.tick16OverTick1Paired, 2)}×)`));
  line(`  ${pipe.stages}-stage pipeline / single stage ${r.pipelineOverSingleStage == null ? "not measured (no connect)" : `${fixed(r.pipelineOverSingleStage, 2)}×`}` +
    `  (unfused: ${r.unfusedOverSingleStage == null ? "-" : `${fixed(r.unfusedOverSingleStage, 2)}×`}, ` +
    `middle paused: ${r.pausedMiddleOverSingleStage == null ? "-" : `${fixed(r.pausedMiddleOverSingleStage, 2)}×`}, ` +
    `${pipe.stages} host round trips: ${fixed(r.hostRelayedOverSingleStage, 2)}×)`);
  if (r.checkpointEveryTickOverNever != null) {
    line(`  large state, every tick / never ${fixed(r.checkpointEveryTickOverNever, 2)}×  (a round trip with its state's checkpoint copied back)`);
  }
}

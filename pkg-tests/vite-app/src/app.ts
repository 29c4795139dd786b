// A small app written as a TypeScript user writes one (strict mode): typed message descriptions,
// a kernel with both a WGSL handler (GPU) and a JavaScript handler (the cpu backend), typed
// answers, and error handling by name. `tsc --noEmit` checks it; Vite builds it; the package
// tests run the build in headless Chromium on WebGPU and on the cpu backend.
import { RingKernelRuntime, defineMessage, ringKernel, isRingKernelError } from "ringkernel-web";
import type { BackendName, DeviceHealth, InputOf, KernelTelemetry, KernelState, OutputOf, RuntimeSummary } from "ringkernel-web";

const Sample = defineMessage("Sample", { position: "vec2<f32>", scale: "f32" });
const Measured = defineMessage("Measured", { length: "f32", scaled: "vec2<f32>" });
const Tally = defineMessage("Tally", { count: "u32" });

ringKernel({
  id: "measure",
  input: Sample,
  output: Measured,
  wgsl: "fn handle(s: Sample) -> Measured { return Measured(length(s.position), s.position * s.scale); }",
  handler: (s) => ({
    length: Math.hypot(s.position[0], s.position[1]),
    scaled: [s.position[0] * s.scale, s.position[1] * s.scale],
  }),
});

// Counts every message in its state, answers with the sample's x, and drops negative scales.
ringKernel({
  id: "tally",
  input: Sample,
  output: Tally,
  state: { length: 1 },
  wgsl: `fn handle(s: Sample, out: ptr<function, Tally>) -> bool {
  atomicAdd(&state[0], 1u);
  (*out).count = u32(s.position.x);
  return s.scale >= 0.0;
}`,
  handler: (s, state) => {
    if (!state) throw new Error("tally has state");
    state[0] += 1;
    return s.scale >= 0 ? { count: s.position[0] } : null;
  },
});

export interface AppResult {
  backend: string;
  adapter: string;
  doubled: number;
  measured: { length: number; scaled: number[] };
  tallies: number[];
  dropped: number;
  state: number;
  processed: number;
  errorNames: string[];
  summaryKernels: number;
}

export async function run(backend: BackendName): Promise<AppResult> {
  await using runtime = await RingKernelRuntime.create({ backend, defaultQueueSize: 256, enableTelemetry: true, autoRecover: false });
  for (const id of ["doubler", "measure", "tally"]) {
    await runtime.launch(id, null, { maxBatch: 128 });
    await runtime.activate(id);
  }

  const doubled = await runtime.call<{ result: number }>("doubler", { value: 21 }, { timeout: 10_000 });

  const sample: InputOf<typeof Sample> = { position: [3, 4], scale: 2 };
  await runtime.send("measure", sample);
  const measured = await runtime.receive<OutputOf<typeof Measured>>("measure", { timeout: 10_000 });

  const accepted = await runtime.sendBatch("tally", [
    { position: [1, 0], scale: 1 },
    { position: [2, 0], scale: -1 },
    { position: [3, 0], scale: 1 },
  ]);
  const tallies: number[] = [];
  while (tallies.length < accepted - 1) {
    const answer = await runtime.receive<OutputOf<typeof Tally>>("tally", { timeout: 10_000 });
    tallies.push(answer.count);
  }
  const state = (await runtime.readState("tally"))[0];

  const errorNames: string[] = [];
  const attempts: Array<() => Promise<unknown>> = [
    () => runtime.activate("doubler"),
    () => runtime.launch("no-such-kernel"),
    () => runtime.send("measure", { position: [1, 2] }),
    () => runtime.receive("measure", { timeout: 10 }),
  ];
  for (const attempt of attempts) {
    try {
      await attempt();
    } catch (error) {
      if (!isRingKernelError(error)) throw error;
      if (error.name === "KernelStateError") errorNames.push(`${error.name}(${error.state})`);
      else if (error.name === "MessageFormatError") errorNames.push(`${error.name}(${error.field})`);
      else errorNames.push(error.name);
    }
  }

  const telemetry: KernelTelemetry | null = runtime.getTelemetry("tally");
  const summary: RuntimeSummary = runtime.getSummary();
  // A healthy device: nothing lost, nothing to recover (recover() then resolves at once).
  const health: DeviceHealth = summary.device;
  const failed: KernelState[] = runtime.kernelIds.map((id) => runtime.getState(id)).filter((s) => s === "failed");
  if (health.lost !== null || failed.length > 0) throw new Error("device lost");
  // Rings and readback on WebGPU; none on the cpu backend, which has no device.
  if ((summary.gpuBufferCount === 0) !== (summary.backend === "cpu")) throw new Error("GPU buffers miscounted");
  await runtime.recover();
  return {
    backend: summary.backend,
    adapter: runtime.adapter.name,
    doubled: doubled.result,
    measured: { length: measured.length, scaled: Array.from(measured.scaled) },
    tallies,
    dropped: telemetry?.messagesDropped ?? -1,
    state,
    processed: telemetry?.messagesProcessed ?? -1,
    errorNames,
    summaryKernels: summary.kernelCount,
  };
}

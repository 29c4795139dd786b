// A small app written as a TypeScript user writes one (strict mode): typed message descriptions,
// a kernel with both a WGSL handler (GPU) and a JavaScript handler (the cpu backend), kernel
// handles typed by their messages, and error handling by name. `tsc --noEmit` checks it; Vite
// builds it; the package tests run the build in headless Chromium on WebGPU and on the cpu backend.
import { RingKernelRuntime, defineMessage, ringKernel, isRingKernelError } from "ringkernel-web";
import type {
  BackendName, DegradationLevel, DegradationStatus, DeviceHealth, HealthReport, InputOf, KernelDefinitionInput, KernelHandle,
  KernelState, KernelStatus, KernelTelemetry, LaunchOptions, MemoryAlertEvent, MemoryPurpose, MemoryReport, OutputOf,
  RuntimeSummary,
} from "ringkernel-web";

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
// Launched from this definition (not registered), so its handle is typed by it.
const tallyKernel: KernelDefinitionInput<typeof Sample, typeof Tally> = {
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
};

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
  operations: {
    level: DegradationLevel; purposesAddUp: boolean; pressureInRange: boolean; alerts: string[];
    health: HealthReport["status"]; circuit: string;
  };
}

export async function run(backend: BackendName): Promise<AppResult> {
  await using runtime = await RingKernelRuntime.create({
    preset: "production", backend, defaultQueueSize: 256, enableTelemetry: true, autoRecover: false, tracing: false,
    health: { queueFill: 0.9 },
    memoryBudget: 1 << 30, degradation: { cooldownMs: 500, protectedPriority: 0 },
  });
  const alerts: string[] = [];
  const watch: number = runtime.onMemoryAlert(0.5, (event: MemoryAlertEvent) => alerts.push(`${event.alert}@${event.threshold}`));
  const options: LaunchOptions = { maxBatch: 128, autoActivate: true };
  // A built-in: its handle is untyped. A registered kernel: typed by the descriptions given.
  // A definition: typed by it. `await using` terminates the kernel when the function returns.
  const doubler = await runtime.launch("doubler", null, options);
  const measure = await runtime.launch<typeof Sample, typeof Measured>("measure", null, options);
  await using tally = await runtime.launch("tally", tallyKernel, options);
  const handles: KernelHandle[] = [doubler, measure, tally];
  if (handles.some((h) => h.state !== "active")) throw new Error("autoActivate");

  const doubled = await doubler.call({ value: 21 }, { timeout: 10_000 });
  if (typeof doubled.result !== "number") throw new Error("the doubler answers a number");

  const sample: InputOf<typeof Sample> = { position: [3, 4], scale: 2 };
  await measure.send(sample);
  const measured: OutputOf<typeof Measured> = await measure.receive({ timeout: 10_000 });

  const accepted = await tally.sendBatch([
    { position: [1, 0], scale: 1 },
    { position: [2, 0], scale: -1 },
    { position: [3, 0], scale: 1 },
  ]);
  const tallies: number[] = [];
  while (tallies.length < accepted - 1) {
    const answer = await tally.receive({ timeout: 10_000 });
    tallies.push(answer.count);
  }
  const state = (await runtime.readState(tally.id))[0];

  const errorNames: string[] = [];
  const attempts: Array<() => Promise<unknown>> = [
    () => doubler.activate(),
    () => runtime.launch("no-such-kernel"),
    // The untyped handle takes any message object; the kernel refuses this one by its layout.
    async () => runtime.getKernel("measure")?.send({ position: [1, 2] }),
    () => measure.receive({ timeout: 10 }),
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

  const telemetry: KernelTelemetry = tally.metrics();
  const status: KernelStatus = tally.status();
  if (status.messagesProcessed !== telemetry.messagesProcessed) throw new Error("status and metrics disagree");
  const summary: RuntimeSummary = runtime.getSummary();
  // A healthy device: nothing lost, nothing to recover (recover() then resolves at once).
  const health: DeviceHealth = summary.device;
  const failed: KernelState[] = runtime.kernelIds.map((id) => runtime.getState(id)).filter((s) => s === "failed");
  if (health.lost !== null || failed.length > 0) throw new Error("device lost");
  // Rings and readback on WebGPU; none on the cpu backend, which has no device.
  if ((summary.gpuBufferCount === 0) !== (summary.backend === "cpu")) throw new Error("GPU buffers miscounted");
  await runtime.recover();
  // The operations views: memory by purpose against the budget, and the degradation level.
  const memory: MemoryReport = runtime.memory();
  const purposes: MemoryPurpose[] = ["inputRing", "outputRing", "keptFlags", "state", "readback"];
  const byPurpose = purposes.reduce((total, purpose) => total + memory.byPurpose[purpose], 0);
  const degradation: DegradationStatus = runtime.degradationStatus();
  const healthReport: HealthReport = runtime.health();
  const issueKernels = healthReport.issues.map((issue) => issue.kernel ?? issue.subject);
  runtime.triggerMemoryAlert("high");
  runtime.removeMemoryAlert(watch);
  return {
    backend: summary.backend,
    adapter: runtime.adapter.name,
    doubled: doubled.result,
    measured: { length: measured.length, scaled: measured.scaled },
    tallies,
    dropped: telemetry.messagesDropped,
    state,
    processed: status.messagesProcessed,
    errorNames,
    summaryKernels: summary.kernelCount,
    operations: {
      level: runtime.degradationLevel === degradation.level ? degradation.level : "critical",
      purposesAddUp: byPurpose === memory.usedBytes && memory.budgetBytes === 1 << 30,
      pressureInRange: runtime.memoryPressure >= 0 && runtime.memoryPressure < 0.01,
      alerts,
      health: issueKernels.length === healthReport.issues.length ? healthReport.status : "unhealthy",
      circuit: runtime.circuitBreaker("doubler").state,
    },
  };
}

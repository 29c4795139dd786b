// Deliberate misuse: every line marked `// misuse` must be a type error, and no other line may
// be (tests/types.test.mjs runs tsc on this file and compares the lines it reports).
import { RingKernelRuntime, defineMessage, ringKernel, isRingKernelError, KernelStateError } from "ringkernel-web";
import type { InputOf, OutputOf, StateDefinition } from "ringkernel-web";

const Point = defineMessage("MisusePoint", { x: "f32", y: "f32" });
const Length = defineMessage("MisuseLength", { length: "f32" });
const Request = defineMessage("MisuseRequest", { value: "i32" });
const Response = defineMessage("MisuseResponse", { result: "i32" });

export async function misuse(): Promise<void> {
  const runtime = await RingKernelRuntime.create({ enableTelemetry: "yes" }); // misuse
  await RingKernelRuntime.create({ backend: "cuda" }); // misuse
  await RingKernelRuntime.create({ backend: "vulkan" }); // misuse
  await runtime.receive<string>("doubler"); // misuse
  await RingKernelRuntime.create({ defaultQueueSize: 10, telemetry: true }); // misuse
  await runtime.launch("doubler", null, { queueSize: "big" }); // misuse
  await runtime.launch("doubler", null, { mode: "polling" }); // misuse
  await runtime.launch("doubler", null, { maxBatch: "all" }); // misuse
  await RingKernelRuntime.create({ autoRecover: 1 }); // misuse
  await runtime.recover({ timeout: 5000 }); // misuse
  if (runtime.getSummary().device.lost.length > 0) return; // misuse
  await runtime.receive("doubler", { timout: 100 }); // misuse
  await runtime.terminate("doubler", 5000); // misuse
  await runtime.sendBatch("doubler", "1,2,3"); // misuse
  await runtime.send("doubler", 21); // misuse
  await runtime.send("doubler", { value: "21" }); // misuse
  await runtime.sendBatch("doubler", [{ value: 1 }, { value: null }]); // misuse
  // What is never one message: a list, packed bytes, a Date, a Map.
  await runtime.send("doubler", [21]); // misuse
  await runtime.send("doubler", new Int32Array([21])); // misuse
  await runtime.call("doubler", new Date()); // misuse
  await runtime.sendBatch("doubler", [new Map([["value", 21]])]); // misuse
  await runtime.sendEnvelope("doubler", [21]); // misuse
  const untyped = runtime.getKernel("worker")!; // a handle whose messages TypeScript does not know
  await untyped.send({ value: "21" }); // misuse
  await untyped.sendBatch([new Date()]); // misuse
  await untyped.call([21]); // misuse
  untyped.trySend(21); // misuse
  const tile = await runtime.launch("mandelbrot");
  await new ReadableStream<{ value: number }>().pipeTo(tile.writable()); // misuse
  await runtime.writeState("histogram", [1, 2, 3]); // misuse
  await runtime.writeState("histogram", new Uint32Array(4), { index: 1 }); // misuse
  await runtime.launch("histogram", null, { initialState: [0, 1] }); // misuse
  for await (const event of runtime.deviceEvents({ timeout: 100 })) console.log(event); // misuse
  if (runtime.adapter.features.includes("f16")) return; // misuse
  if (runtime.getState("doubler") === "running") return; // misuse
  runtime.getTelemetry("doubler").messagesSent; // misuse
  runtime.getSummary().perKernel["doubler"].latency.p50Ms.toFixed(2); // misuse
  defineMessage("Bad", { value: 5 }); // misuse
  defineMessage("BadScalar", { value: "f64" }); // misuse
  defineMessage("BadArray", { values: "array<f64, 4>" }); // misuse
  defineMessage("BadVector", { at: "vec5<f32>" }); // misuse
  defineMessage("BadLength", { values: "array<f32>" }); // misuse
  const Cells = defineMessage("MisuseCells", { cells: "array<array<f32, 2>, 2>", crowd: "array<MisusePoint, 2>" });
  const cells = await runtime.receive<OutputOf<typeof Cells>>("cells");
  cells.cells[0].toFixed(1);
  cells.cells[0][1]; // misuse
  const rows: Float32Array[] = cells.cells; // misuse
  cells.crowd.length.toFixed(0);
  const Ray = defineMessage("MisuseRay", { origin: "vec2<f32>" });
  const ray = await runtime.receive<OutputOf<typeof Ray>>("ray");
  ray.origin[1].toFixed(1);
  ray.origin[2]; // misuse
  const rays = await runtime.launch("misuse-rays", { input: Ray, output: Ray, wgsl: "" });
  await rays.send({ origin: [1, 2] });
  await rays.send({ origin: new Float32Array(2) });
  await rays.send({ origin: [1, 2].map((c) => c * 2) });
  await rays.send({ origin: new Float64Array(2) }); // misuse
  // Arrays as the runtime takes them: flat numbers for a 1-D array, flat or nested for deeper
  // ones, read-only arrays too; no Float64Array, no object that only has a length.
  const Grid = defineMessage("MisuseGrid", { row: "array<f32, 3>", cells: "array<array<f32, 2>, 2>", steps: "array<vec2<f32>, 2>" });
  const grid = await runtime.launch("misuse-grid", { input: Grid, output: Grid, wgsl: "" });
  await grid.send({ row: [1, 2, 3] as const, cells: [[1, 2], [3, 4]] as const, steps: [[1, 2], [3, 4]] as const });
  await grid.send({ row: new Float32Array(3), cells: [1, 2, 3, 4], steps: new Float32Array(4) });
  await grid.send({ row: new Float64Array(3), cells: [1, 2, 3, 4], steps: [1, 2, 3, 4] }); // misuse
  await grid.send({ row: [[1, 2, 3]], cells: [1, 2, 3, 4], steps: [1, 2, 3, 4] }); // misuse
  await grid.send({ row: { length: 3, 0: 1, 1: 2, 2: 3 }, cells: [1, 2, 3, 4], steps: [1, 2, 3, 4] }); // misuse
  // A class with methods is a message (its methods are no fields), and so are 8- and 16-bit
  // typed arrays for numeric fields.
  class Vec { constructor(public row: number[], public cells: number[], public steps: number[]) {} sum(): number { return 0; } }
  await grid.send(new Vec([1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4]));
  await runtime.send("misuse-grid", new Vec([1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4]));
  await grid.send({ row: new Uint8Array(3), cells: new Int16Array(4), steps: new Uint16Array(4) });
  // A definition's optional keys may be given as undefined (exactOptionalPropertyTypes is on).
  ringKernel({ id: "undefined-keys", input: Point, output: Length, wgsl: "", replace: undefined, workgroupSize: undefined, state: undefined, handler: undefined });
  ringKernel({ id: "no-handler", input: Point, output: Length }); // misuse
  ringKernel({ input: Point, output: Length, wgsl: "" }); // misuse
  ringKernel({ id: "wrong-answer", input: Point, output: Length, handler: (p) => ({ length: "far" }) }); // misuse
  ringKernel({ id: "wrong-field", input: Point, output: Length, handler: (p) => ({ length: p.z }) }); // misuse
  ringKernel({ id: "typo", input: Point, output: Length, wgsl: "", workGroupSize: 64 }); // misuse
  const point: InputOf<typeof Point> = { x: 1 }; // misuse
  const answer = await runtime.receive<OutputOf<typeof Length>>("length");
  answer.length.toUpperCase(); // misuse
  try {
    await runtime.activate("doubler");
  } catch (error) {
    if (isRingKernelError(error) && error.name === "KernelCompileError") {
      error.line.toFixed(0); // misuse
    }
    if (isRingKernelError(error) && error.name === "KernelStateError" && error.state === "paused") return; // misuse
    if (isRingKernelError(error) && error.name === "OutOfMemoryError") return; // misuse
  }
  // The operations layer.
  await RingKernelRuntime.create({ degradation: { cooldown: 5 } }); // misuse
  await RingKernelRuntime.create({ memoryBudget: "1GB" }); // misuse
  await runtime.launch("doubler", null, { latencyBudget: 5 }); // misuse
  await runtime.launch("histogram", null, { checkpointIntervalMs: "never" }); // misuse
  if (runtime.degradationLevel === "overloaded") return; // misuse
  runtime.memory().byPurpose.rings; // misuse
  runtime.onMemoryAlert(0.9, (event) => event.alert === "low"); // misuse
  runtime.triggerMemoryAlert("loud"); // misuse
  runtime.memoryPressure = 0; // misuse
  try {
    await runtime.send("doubler", { value: 1 });
  } catch (error) {
    if (isRingKernelError(error) && error.name === "OverloadedError" && error.level === "busy") return; // misuse
  }
  // A kernel's handle, typed by the definition it was launched with.
  const handle = await runtime.launch("misuse-typed", { input: Request, output: Response, wgsl: "" });
  await handle.send({ value: 1 });
  await handle.send({ val: 1 }); // misuse
  handle.trySend({ value: "1" }); // misuse
  await handle.sendBatch([{ value: 1 }, { valu: 2 }]); // misuse
  const reply = await handle.receive();
  reply.nope; // misuse
  (await handle.call({ value: 1 })).result.toUpperCase(); // misuse
  (await handle.sendEnvelope({ value: 1 }, { priority: 1 })).messageId.toFixed(0);
  await handle.sendEnvelope({ val: 1 }); // misuse
  (await handle.receiveEnvelope()).message.result.toFixed(0);
  (await handle.receiveEnvelope()).message.value; // misuse
  handle.tryReceive().result; // misuse
  await handle.terminate(5000); // misuse
  await handle.receiveBatch({ max: "all" }); // misuse
  await handle.receiveBatch({ min: "4", max: 8 }); // misuse
  await runtime.receiveBatch("doubler", { minimum: 4 }); // misuse
  if (handle.status().state === "running") return; // misuse
  handle.id = "other"; // misuse
  await runtime.getKernel("misuse-typed").activate(); // misuse
  await runtime.getKernel("doubler")?.send({ val: 1 }); // misuse
  await runtime.launch("doubler", null, { autoActivate: "yes" }); // misuse
  await runtime.launch("doubler", null, { inputQueueSize: "8" }); // misuse
  await RingKernelRuntime.create({ deviceIndex: "0" }); // misuse
  ringKernel({ id: "again", input: Point, output: Length, wgsl: "", replace: "yes" }); // misuse
  const answers = await handle.receiveBatch({ max: 10 });
  answers[0].result.toUpperCase(); // misuse
  const bytes = await handle.receiveBatch({ max: 10, packed: true });
  bytes[0].result; // misuse
  for await (const answer of handle) answer.result.toFixed();
  for await (const answer of handle.answers({ timeout: 100, signal: AbortSignal.timeout(1000) })) answer.result.toFixed();
  for await (const answer of handle) answer.value; // misuse
  await handle.sendBatch(new Int32Array([1, 2]));
  await handle.sendBatch(new Float64Array([1, 2])); // misuse
  for await (const answer of handle.answers({ max: 10 })) answer.result; // misuse
  try {
    await handle.activate();
  } catch (error) {
    if (error instanceof KernelStateError && error.state === "paused") return; // misuse
    if (isRingKernelError(error) && error.name === "QueueFullError" && error.stall === "outputFull") return;
    if (isRingKernelError(error) && error.name === "QueueFullError" && error.stall === "paused") return; // misuse
  }
  {
    using synchronous = await RingKernelRuntime.create(); // misuse
  }
  runtime.free(); // misuse
  await RingKernelRuntime.create({ preset: "fast" }); // misuse
  await RingKernelRuntime.create({ health: { queueFill: "80%" } }); // misuse
  if (runtime.health().status === "ok") return; // misuse
  const sent = await runtime.sendEnvelope("doubler", { value: 1 }, { priority: 2, correlationId: 7 });
  await runtime.sendEnvelope("doubler", { value: 1 }, { priorty: 2 }); // misuse
  await runtime.sendEnvelope("doubler", { value: 1 }, { correlationId: 7n }); // misuse
  const enveloped = await runtime.receiveEnvelope<OutputOf<typeof Response>>("doubler", { timeout: 100 });
  if (enveloped.envelope.correlationId === sent.messageId) enveloped.message.result.toFixed(0);
  enveloped.envelope.source.toUpperCase(); // misuse
  if (runtime.currentTimestamp().logical > sent.timestamp.physicalMs) return;
  const controller = new AbortController();
  await runtime.call("doubler", { value: 1 }, { timeout: 100, signal: controller.signal });
  await runtime.call("doubler", { value: "1" }); // misuse
  await (await runtime.launch("doubler")).call({ valu: 5 }); // misuse
  await runtime.call<OutputOf<typeof Response>>("doubler", 1); // misuse
  await runtime.receiveBatch("doubler", { max: 8, signal: AbortSignal.timeout(100) });
  await runtime.sendEnvelope("doubler", { value: 1 }, { signal: null });
  await runtime.send("doubler", { value: 1 }, { signal: controller }); // misuse
  await runtime.terminate("doubler", { signal: controller.signal }); // misuse
  runtime.destroyDevice();
  runtime.destroyDevice(1);
  runtime.destroyDevice("1"); // misuse
  // readState() claims no type the runtime may not give.
  const floats = await runtime.launch("misuse-floats", { input: Point, output: Point, state: { length: 4, type: "f32" }, wgsl: "" });
  const notCounts: Uint32Array = await floats.readState(); // misuse
  const byId: Float32Array = await runtime.readState("misuse-floats"); // misuse
  await runtime.readState<Float64Array>("misuse-floats"); // misuse
  const loose: StateDefinition = { length: 4 };
  const looselyTyped = await runtime.launch("misuse-loose", { input: Point, output: Point, state: loose, wgsl: "" });
  const guessed: Uint32Array = await looselyTyped.readState(); // misuse
  const none = await runtime.launch("misuse-none", { input: Point, output: Point, wgsl: "" });
  const noState: Uint32Array = await none.readState(); // misuse
  const found: Float32Array = await runtime.getKernel("misuse-floats")!.readState(); // misuse
  // A host handler's state claims no type the runtime may not give either.
  ringKernel({ id: "misuse-handler-floats", input: Point, output: Point, state: { length: 4, type: "f32" }, handler: (p, state) => { const counts: Uint32Array = state; return counts ? p : null; } }); // misuse
  ringKernel({ id: "misuse-handler-none", input: Point, output: Point, handler: (p, state) => { const words: Uint32Array = state; return words ? p : null; } }); // misuse
  await runtime.launch("misuse-handler-counts", { input: Point, output: Point, state: { length: 4 }, handler: (p, state) => { const signed: Int32Array = state; return signed ? p : null; } }); // misuse
  void point;
  void reply.result;
}

// What a strict TypeScript user writes beyond field types: every line must type-check, under
// the package's own tsconfig and under `lib: ["es2022", "dom"]` without `esnext.disposable`
// (tsconfig.es2022.json; the classes' `[Symbol.asyncDispose]` must not need it). It is type-checked,
// not run: the runtime takes each of these values as the JavaScript tests show.
import { DeviceLostError, RingKernelRuntime, RingKernelError, defineMessage, managedKernel, ringKernel } from "ringkernel-web";
import type { DeviceFeature, KernelHandle, OutputOf, StateArray, StateDefinition } from "ringkernel-web";

const Point = defineMessage("SurfacePoint", { x: "f32", at: "vec2<f32>" });

/** Messages and answers typed by interfaces, not only by type aliases. */
interface Doubling {
  value: number;
}
interface Doubled {
  result: number;
}

export async function surface(runtime: RingKernelRuntime): Promise<number> {
  // A readonly batch, as a handle's sendBatch takes one.
  const batch: readonly { value: number }[] = [{ value: 1 }, { value: 2 }];
  await runtime.sendBatch("doubler", batch);
  const request: Doubling = { value: 21 };
  await runtime.send("doubler", request);
  await runtime.sendBatch("doubler", [request, request]);
  // A handle whose messages TypeScript does not know takes them typed by interfaces too, as
  // send(id, ...) does.
  const worker = runtime.getKernel("worker");
  if (worker) {
    await worker.send(request);
    worker.trySend(request);
    await worker.sendBatch([request, request]);
    await worker.call(request);
    await worker.sendEnvelope(request);
    // Its answers typed as given, as receive<T>(id) types them.
    const one: Doubled = await worker.receive<Doubled>({ timeout: 1000 });
    const some: Doubled[] = await worker.receiveBatch<Doubled>({ max: 2 });
    const own: Doubled = await worker.call<Doubling, Doubled>(request);
    const enveloped: Doubled = (await worker.receiveEnvelope<Doubled>()).message;
    const waiting: Doubled | null = worker.tryReceive<Doubled>();
    const stream: ReadableStream<Doubled> = worker.readable<Doubled>();
    for await (const next of worker.answers<Doubled>()) void next.result;
    void [one.result, some, own.result, enveloped.result, waiting, stream];
    await new ReadableStream<Doubling>().pipeTo(worker.writable());
  }
  // Packed messages in a worker's shared memory, whole or through a view.
  await runtime.sendBatch("doubler", new SharedArrayBuffer(8));
  await runtime.sendBatch("doubler", new Int32Array(new SharedArrayBuffer(8)));
  await runtime.sendEnvelope("doubler", request, { priority: 1 });
  const answer = await runtime.receive<Doubled>("doubler", { timeout: 1000 });
  const answers = await runtime.receiveBatch<Doubled>("doubler", { max: 1 });
  const called = await runtime.call<Doubled>("doubler", request, { timeout: 1000 });
  // The built-ins' handles are typed.
  const doubler = await runtime.launch("doubler", null, { queueSize: 8 });
  const doubled: number = (await doubler.call({ value: 5 })).result * 2;
  for await (const answer of doubler) if (answer.result > doubled) break;
  // Web Streams of its input and answers, typed by its messages.
  await new ReadableStream<{ value: number }>().pipeTo(doubler.writable({ timeout: 1000 }));
  const streamedAnswer: { result: number } | undefined = (await doubler.readable().getReader().read()).value;
  if (streamedAnswer === undefined) return 0;
  // And found again by id: a built-in's typed, another's typed as asked.
  const found = runtime.getKernel("doubler");
  const again: number = found ? (await found.call({ value: 5 })).result : 0;
  const pointer = runtime.getKernel<typeof Point, typeof Point>("surface-point");
  const x: number = pointer ? (await pointer.call({ x: 1, at: [0, 0] })).x : again;
  // By an id held in a string, and a built-in's id given types of its own: the general overload.
  const held: string = pointer ? "surface-point" : "doubler";
  const byHeld = runtime.getKernel(held);
  const asPoint = runtime.getKernel<typeof Point, typeof Point>("doubler");
  if (byHeld === null || asPoint === null) return x;
  const tile = await runtime.launch("mandelbrot");
  const counts: Uint32Array = (await tile.call({ origin: [0, 0], step: 0.1, max_iter: 64 })).iterations;
  await runtime.call("doubler", request);
  // A key set to undefined is not given (exactOptionalPropertyTypes is on).
  const timeout: number | undefined = called.result > 0 ? 1000 : undefined;
  await runtime.receive("doubler", { timeout, signal: undefined });
  await runtime.receiveBatch("doubler", { max: undefined, timeout, packed: undefined });
  // At least 4 answers (or what came within the timeout), at most 8.
  const four: Doubled[] = await runtime.receiveBatch<Doubled>("doubler", { min: 4, max: 8, timeout });
  if (four.length > 8) return 0;
  const packedFour: Uint8Array = await doubler.receiveBatch({ min: 4, packed: true });
  if (packedFour.length === 0) return 0;
  await runtime.launch("surface-point", null, { queueSize: undefined, device: undefined });
  const bins = await runtime.launch("histogram", null, { checkpointIntervalMs: Infinity, initialState: new Uint32Array(64) });
  await runtime.writeState("histogram", new Uint32Array([1, 2]), 8);
  await bins.writeState(new Uint32Array(64));
  // readState() as its kernel's definition declares the state: f32 a Float32Array, i32 and
  // atomic<i32> an Int32Array, u32, atomic<u32> and none given (atomic<u32>) a Uint32Array.
  const histogram: Uint32Array = await bins.readState();
  const Tally = defineMessage("SurfaceTally", { bin: "u32" });
  const wgsl = "fn handle(m: SurfaceTally) -> SurfaceTally { return m; }";
  const floats = await runtime.launch("surface-floats", { input: Tally, output: Tally, state: { length: 4, type: "f32" }, wgsl });
  const weights: Float32Array = await floats.readState();
  const signed = await runtime.launch("surface-signed", { input: Tally, output: Tally, state: { length: 4, type: "atomic<i32>" }, wgsl });
  const balances: Int32Array = await signed.readState();
  const counters = await runtime.launch("surface-counters", { input: Tally, output: Tally, state: { length: 4 }, handler: (m) => m });
  const counted: Uint32Array = await counters.readState();
  // A host handler's state as the definition declares it, as readState() gives it; none declared, undefined.
  ringKernel({ id: "surface-weights", input: Tally, output: Tally, state: { length: 4, type: "f32" }, handler: (m, state) => { const w: Float32Array = state; w[0] += 0.5; return m; } });
  ringKernel({ id: "surface-signed-handler", input: Tally, output: Tally, state: { length: 4, type: "i32" }, handler: (m, state) => { const b: Int32Array = state; b[0] -= 1; return m; } });
  await runtime.launch("surface-tally-handler", { input: Tally, output: Tally, state: { length: 4 }, handler: (m, state) => { const c: Uint32Array = state; c[m.bin] += 1; return m; } });
  ringKernel({ id: "surface-stateless", input: Tally, output: Tally, handler: (m, state) => { const none: undefined = state; void none; return m; } });
  const looseState: StateDefinition | undefined = counted.length > 0 ? { length: 4 } : undefined;
  ringKernel({ id: "surface-loose", input: Tally, output: Tally, state: looseState, handler: (m, state) => { const maybe: StateArray | undefined = state; return maybe ? m : null; } });
  // A kernel by id, or a definition whose state type is not known: the union, or what the caller says.
  const unknown: StateArray = await runtime.readState("surface-floats");
  const asked: Float32Array = await runtime.readState<Float32Array>("surface-floats");
  const stateless: StateArray = await (await runtime.launch("surface-point")).readState();
  // A handle typed by its state is still a handle of its messages.
  const plain: KernelHandle<typeof Tally, typeof Tally> = floats;
  if (histogram.length + weights.length + balances.length + counted.length + unknown.length + asked.length + stateless.length === 0) await plain.activate();
  for await (const event of runtime.deviceEvents({ signal: AbortSignal.timeout(1) })) {
    const kind: "lost" | "recovered" | "recoveryFailed" | "autoRecoveryGaveUp" = event.kind;
    const about: [number, number, string | null, string[], number, number] = [event.seq, event.device, event.reason, event.kernels, event.timestampMs, event.missed];
    if (kind === "lost" && about[0] > 0) break;
  }
  // ringKernel's own return value is a definition managedKernel takes, typed by its messages.
  const definition = ringKernel({ id: "surface-point", input: Point, output: Point, handler: (p) => p });
  const managed = await managedKernel(runtime, "surface-point", definition, { queueSize: 16 });
  await managed[Symbol.asyncDispose]();
  // What the objects show (JSON.stringify, console.log): typed as what they are.
  const shown: { id: string; state: "created" | "launched" | "active" | "deactivated" | "terminating" | "terminated" | "failed" | null } =
    doubler.toJSON();
  const kernels: string[] = runtime.toJSON().kernelIds;
  const managedId: string = managed.toJSON().id;
  if (shown.state === null || kernels.length === 0 || managedId === "") return 0;
  // Answers are plain objects of their own: a user may change them.
  const point: OutputOf<typeof Point> = { x: 1, at: [2, 3] };
  point.x = 4;
  point.at[0] = 5;
  // What a handler may enable on the first device, and on each.
  const f16: boolean = runtime.adapter.features.includes("shader-f16");
  const everywhere: boolean = runtime.topology().devices.every((d) => d.adapter.features.some((f: DeviceFeature) => f === "shader-f16"));
  if (f16 !== everywhere) point.x = 1;
  // The application's own WebGPU work on the runtime's device, reading a copy of a kernel's state.
  const device: GPUDevice | null = runtime.gpuDevice(runtime.deviceOf("surface-point"));
  const copy: GPUBuffer = runtime.stateToGPU("histogram");
  if (device !== null) device.queue.submit([]);
  copy.destroy();
  (await runtime.launch("histogram")).stateToGPU().destroy();
  try {
    await runtime.terminate("surface-point");
  } catch (e) {
    // A kernel stranded on a lost device: which one, and how many of its messages.
    if (e instanceof DeviceLostError) return (e.unprocessed ?? 0) + (e.kernelId?.length ?? 0);
  }
  try {
    throw new RingKernelError("base");
  } catch (e) {
    if (e instanceof RingKernelError && e.name === "RingKernelError") return point.x;
    // Errors as data, across postMessage, and back.
    if (e instanceof RingKernelError) {
      const data: { name: string; message: string } = e.toJSON();
      const back = RingKernelError.fromJSON(data.name === "QueueFullError" ? e.toJSON() : data as ReturnType<typeof e.toJSON>);
      if (back.name === "QueueFullError") return back.accepted;
    }
  }
  return answer.result + (answers[0]?.result ?? 0) + (counts[0] ?? 0) + x;
}

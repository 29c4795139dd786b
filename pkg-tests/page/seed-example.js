// The seeds' doubler example, written as a user of the npm package writes it.
import init, { RingKernelRuntime, defineMessage, ringKernel } from "/ringkernel-web/index.js";

async function run() {
  await init();
  const runtime = await RingKernelRuntime.create({ enableTelemetry: true, defaultQueueSize: 1000, backend: "auto" });
  await runtime.launch("doubler");
  await runtime.activate("doubler");
  await runtime.send("doubler", { value: 21 });
  const response = await runtime.receive("doubler", { timeout: 10000 });

  // A user-defined kernel through the public API only.
  const Point = defineMessage("Point", { x: "f32", y: "f32" });
  const Length = defineMessage("Length", { length: "f32" });
  ringKernel({ id: "length", input: Point, output: Length,
               wgsl: "fn handle(p: Point) -> Length { return Length(sqrt(p.x * p.x + p.y * p.y)); }" });
  await runtime.launch("length");
  await runtime.activate("length");
  await runtime.send("length", { x: 3, y: 4 });
  const length = await runtime.receive("length", { timeout: 10000 });

  const telemetry = runtime.getTelemetry("doubler");
  const state = runtime.getState("doubler");
  await runtime.dispose();
  return { ok: true, response, length, telemetry, state, adapter: runtime.adapter };
}

run().then(
  (result) => { window.__result = result; },
  (error) => { window.__result = { ok: false, name: error.name, message: error.message }; },
).finally(() => { document.getElementById("out").textContent = JSON.stringify(window.__result, null, 2); });

// A ring kernel of your own, written only with the public API: nested message types, a handler
// that drops messages, and GPU-resident state read back with readState.
import init, { RingKernelRuntime, defineMessage, ringKernel } from "ringkernel-web";

await init();
const Particle = defineMessage("Particle", { position: "vec3<f32>", velocity: "vec3<f32>", mass: "f32" });
const Step = defineMessage("Step", { particle: Particle, dt: "f32" });
ringKernel({
  id: "integrate",
  input: Step,
  output: Particle,
  state: { length: 2, type: "atomic<u32>" }, // [kept, dropped]
  wgsl: `
// One Euler step; a particle that leaves the unit box is dropped.
fn handle(msg: Step, out: ptr<function, Particle>) -> bool {
  let p = msg.particle;
  let next = p.position + p.velocity * msg.dt;
  if (any(abs(next) > vec3<f32>(1.0))) {
    atomicAdd(&state[1], 1u);
    return false;
  }
  atomicAdd(&state[0], 1u);
  *out = Particle(next, p.velocity, p.mass);
  return true;
}`,
});

await using runtime = await RingKernelRuntime.create();
await runtime.launch("integrate");
await runtime.activate("integrate");
await runtime.sendBatch("integrate", [
  { particle: { position: [0, 0, 0], velocity: [1, 2, 0], mass: 1 }, dt: 0.25 },
  { particle: { position: [0.9, 0, 0], velocity: [1, 0, 0], mass: 2 }, dt: 0.5 }, // leaves the box
  { particle: { position: new Float32Array([0.5, 0.5, 0.5]), velocity: [-1, -1, -1], mass: 3 }, dt: 0.5 },
]);
for (let i = 0; i < 2; i++) {
  const { position } = await runtime.receive("integrate", { timeout: 5000 });
  console.log(`Position: ${[...position].join(", ")}`);
}
const [kept, dropped] = await runtime.readState("integrate");
console.log(`Kept: ${kept}, dropped: ${dropped}`);
console.log(`Dropped in telemetry: ${runtime.getTelemetry("integrate").messagesDropped}`);

// Mistakes are reported at your own line and column.
try {
  await runtime.launch("broken", { input: Step, output: Particle, wgsl: `
fn handle(msg: Step) -> Particle {
  return Particle(msg.speed, msg.particle.velocity, 1.0);
}` });
} catch (error) {
  console.log(`${error.name} at line ${error.line}, column ${error.column}`);
}

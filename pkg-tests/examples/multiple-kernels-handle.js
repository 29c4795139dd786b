// The seeds' "Multiple Kernels" example with kernel handles: two processors feed an aggregator.
import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";

await init();
const Sample = defineMessage("Sample", { value: "f32" });
// WGSL for GPU backends, a JavaScript handler for the cpu backend.
const processor = {
  input: Sample, output: Sample,
  wgsl: "fn handle(s: Sample) -> Sample { return Sample(s.value * s.value); }",
  handler: (s) => ({ value: s.value * s.value }),
};
const aggregator = {
  input: Sample, output: Sample,
  wgsl: "fn handle(s: Sample) -> Sample { return Sample(sqrt(s.value)); }",
  handler: (s) => ({ value: Math.sqrt(s.value) }),
};
{
  await using runtime = await RingKernelRuntime.create();
  // Launch multiple kernels
  const processor1 = await runtime.launch("processor1", processor);
  const processor2 = await runtime.launch("processor2", processor);
  const sum = await runtime.launch("aggregator", aggregator);

  // Activate all
  for (const kernel of [processor1, processor2, sum]) {
    await kernel.activate();
  }
  console.log(`Active kernels: ${runtime.activeKernels.join(", ")}`);

  // Use the pipeline: squares from both processors, summed on the host, rooted by the aggregator.
  const [a, b] = await Promise.all([
    processor1.call({ value: 3 }, { timeout: 5000 }),
    processor2.call({ value: 4 }, { timeout: 5000 }),
  ]);
  const hypotenuse = await sum.call({ value: a.value + b.value }, { timeout: 5000 });
  console.log(`Hypotenuse: ${hypotenuse.value}`); // 5
  console.log(`Total messages: ${runtime.getSummary().totalMessages}`); // 3
}

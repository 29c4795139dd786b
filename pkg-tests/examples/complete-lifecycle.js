// The seeds' "Complete Lifecycle" example (PyDotCompute's RingKernelRuntime reference), in JavaScript.
import init, { RingKernelRuntime } from "ringkernel-web";

await init();
{
  await using runtime = await RingKernelRuntime.create({ enableTelemetry: true });

  // Phase 1: Launch (allocate resources)
  await runtime.launch("doubler");

  // Phase 2: Activate (start processing)
  await runtime.activate("doubler");

  // Send request
  await runtime.send("doubler", { value: 21 });

  // Receive response
  const response = await runtime.receive("doubler", { timeout: 5000 });
  console.log(`Result: ${response.result}`); // 42

  // Check telemetry
  const telemetry = runtime.getTelemetry("doubler");
  console.log(`Messages processed: ${telemetry.messagesProcessed}`);
}
// The runtime terminated every kernel and released the GPU when the block ended.

// The seeds' "Complete Lifecycle" example with a kernel handle: `launch` resolves with the
// kernel, and every call after it is the kernel's own.
import init, { RingKernelRuntime } from "ringkernel-web";

await init();
{
  await using runtime = await RingKernelRuntime.create({ enableTelemetry: true });

  // Phase 1: Launch (allocate resources)
  const doubler = await runtime.launch("doubler");

  // Phase 2: Activate (start processing)
  await doubler.activate();

  // Send request
  await doubler.send({ value: 21 });

  // Receive response
  const response = await doubler.receive({ timeout: 5000 });
  console.log(`Result: ${response.result}`); // 42

  // Check telemetry
  console.log(`Messages processed: ${doubler.metrics().messagesProcessed}`);
}
// The runtime terminated every kernel and released the GPU when the block ended.

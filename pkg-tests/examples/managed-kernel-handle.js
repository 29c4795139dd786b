// The seeds' managed_kernel context manager with a kernel handle: `await using` terminates the
// kernel at block exit, and `wait()` resolves when it has.
import init, { RingKernelRuntime } from "ringkernel-web";

await init();
await using runtime = await RingKernelRuntime.create();
let stopped;
{
  await using kernel = await runtime.launch("doubler", null, { autoActivate: true });
  stopped = kernel.wait();
  // Kernel is launched and active
  const response = await kernel.call({ value: 21 }, { timeout: 5000 });
  console.log(`Result: ${response.result}`); // 42
}
// Kernel automatically terminated
await stopped;
console.log(`State: ${runtime.getState("doubler")}`); // terminated

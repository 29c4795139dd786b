// The seeds' managed_kernel context manager, in JavaScript: `await using` terminates the kernel.
import init, { RingKernelRuntime, managedKernel } from "ringkernel-web";

await init();
await using runtime = await RingKernelRuntime.create();
{
  await using kernel = await managedKernel(runtime, "doubler");
  // Kernel is launched and active
  const response = await runtime.call(kernel.id, { value: 21 }, { timeout: 5000 });
  console.log(`Result: ${response.result}`); // 42
}
// Kernel automatically terminated
console.log(`State: ${runtime.getState("doubler")}`); // terminated

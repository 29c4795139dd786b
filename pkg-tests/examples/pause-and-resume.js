// The seeds' "Pause and Resume" example, in JavaScript.
import init, { RingKernelRuntime, defineMessage, ringKernel } from "ringkernel-web";

await init();
const Job = defineMessage("Job", { id: "u32" });
const Done = defineMessage("Done", { id: "u32" });
// WGSL for GPU backends, a JavaScript handler for the cpu backend.
ringKernel({
  id: "worker", input: Job, output: Done,
  wgsl: "fn handle(job: Job) -> Done { return Done(job.id); }",
  handler: (job) => ({ id: job.id }),
});
const batch1 = [1, 2, 3].map((id) => ({ id }));
const batch2 = [4, 5, 6].map((id) => ({ id }));
{
  await using runtime = await RingKernelRuntime.create();
  await runtime.launch("worker");
  await runtime.activate("worker");

  // Process some work...
  for (const req of batch1) {
    await runtime.send("worker", req);
  }

  // Pause for maintenance
  await runtime.deactivate("worker");
  console.log(`State: ${runtime.getState("worker")}`); // deactivated

  // Messages queue up but aren't processed
  for (const req of batch2) {
    await runtime.send("worker", req);
  }

  // Resume processing
  await runtime.reactivate("worker");

  // Queued messages now processed, in order
  const done = [];
  for (let i = 0; i < batch1.length + batch2.length; i++) {
    done.push((await runtime.receive("worker", { timeout: 5000 })).id);
  }
  console.log(`Done: ${done.join(", ")}`); // 1, 2, 3, 4, 5, 6
}

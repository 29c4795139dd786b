// The seeds' "Pause and Resume" example with a kernel handle (the seeds' suspend and resume).
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
  const worker = await runtime.launch("worker", null, { autoActivate: true });

  // Process some work...
  await worker.sendBatch(batch1);

  // Pause for maintenance
  await worker.suspend();
  console.log(`State: ${worker.state}`); // deactivated

  // Messages queue up but aren't processed
  await worker.sendBatch(batch2);

  // Resume processing
  await worker.resume();

  // Queued messages now processed, in order
  const done = [];
  for (let i = 0; i < batch1.length + batch2.length; i++) {
    done.push((await worker.receive({ timeout: 5000 })).id);
  }
  console.log(`Done: ${done.join(", ")}`); // 1, 2, 3, 4, 5, 6
}

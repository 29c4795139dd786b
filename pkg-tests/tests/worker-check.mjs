// Shared by workers.test.mjs and vite-dev.test.mjs: opens a page that starts the runtime in a
// module worker (page/worker.html, vite-app/worker.html), which runs page/round-trips.js with
// PLAN and posts what it found; and the assertions on that report.
import assert from "node:assert/strict";

/** What each worker runs: rounds of `batchSize` messages, then single calls; `timeout` (ms) bounds each wait. */
export const PLAN = { batches: 1000, batchSize: 64, calls: 1000, timeout: 30_000 };

/** Opens `url` (a page that starts the worker) in `browser`; resolves with what the worker reported, and any page errors. */
export async function runWorkerPage(browser, url) {
  const page = await browser.newPage();
  const errors = [];
  page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
  page.on("pageerror", (e) => errors.push(`pageerror: ${e}`));
  try {
    await page.goto(`${url}?${new URLSearchParams(Object.entries(PLAN).map(([k, v]) => [k, String(v)]))}`);
    // Each wait in the worker is bounded by PLAN.timeout; this bound only keeps a hung worker
    // from hanging the test run.
    await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 300_000, polling: 250 })
      .catch(() => assert.fail(`the worker reported nothing within 5 minutes (a lost message?); page errors: ${errors.join("\n") || "none"}`));
    return { result: await page.evaluate(() => window.__result), errors, workers: page.workers().length };
  } finally {
    await page.close();
  }
}

/** Every answer the worker got was right, and it ran in a worker, on WebGPU. */
export function assertWorkerResult({ result, errors, workers }) {
  assert.equal(result.ok, true, `the worker failed: ${result.error}`);
  assert.equal(result.inWorker, true, "the runtime ran in a WorkerGlobalScope");
  assert.equal(workers, 1, "the page started one worker");
  assert.equal(result.backend, "browserwebgpu", `adapter ${result.adapter}`);
  const messages = PLAN.batches * PLAN.batchSize;
  assert.deepEqual(result.batches, { rounds: PLAN.batches, answers: messages, wrong: [] });
  assert.deepEqual(result.calls, { count: PLAN.calls, wrong: [] });
  assert.equal(result.processed, messages + PLAN.calls, "messages processed (GPU counter)");
  assert.equal(result.received, messages + PLAN.calls, "answers handed to the worker");
  assert.deepEqual(errors, []);
}

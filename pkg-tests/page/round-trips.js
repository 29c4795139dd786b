// What the worker tests run inside a dedicated module worker (page/worker.js on a plain page,
// vite-app/src/worker.js in a Vite build): a runtime on WebGPU, the built-in doubler, `batches`
// batched round trips (sendBatch of an Int32Array, then receiveBatch of the packed answers until
// every one is back) and `calls` single calls, every answer checked. Resolves with a summary the
// worker posts to its page; an error rejects (the worker posts its name and message).

/**
 * @param {{ default: (options?: unknown) => Promise<unknown>, RingKernelRuntime: any }} ringkernel
 *   the package's module (its `init` and `RingKernelRuntime`)
 * @param {{ batches: number, batchSize: number, calls: number, timeout: number }} plan
 */
export async function roundTrips(ringkernel, { batches, batchSize, calls, timeout }) {
  const { default: init, RingKernelRuntime } = ringkernel;
  await init();
  const runtime = await RingKernelRuntime.create({ enableTelemetry: true, defaultQueueSize: Math.max(batchSize, 64) });
  try {
    const doubler = await runtime.launch("doubler", null, { autoActivate: true });
    const wrong = [];
    let value = 0;
    const next = () => {
      // Positive and negative values, well inside i32 once doubled.
      value += 1;
      return value % 2 ? value * 1009 : -value * 997;
    };

    let answers = 0;
    for (let round = 0; round < batches; round++) {
      const sent = Int32Array.from({ length: batchSize }, next);
      const accepted = await runtime.sendBatch("doubler", sent, { timeout });
      if (accepted !== batchSize) throw new Error(`round ${round}: sendBatch accepted ${accepted} of ${batchSize}`);
      let got = 0;
      while (got < batchSize) {
        const results = await receivePacked(runtime, "doubler", { max: batchSize - got, timeout });
        for (const result of results) {
          const expected = sent[got] * 2;
          if (result !== expected && wrong.length < 10) wrong.push(`round ${round}, message ${got}: ${sent[got]} → ${result}, expected ${expected}`);
          got++;
        }
      }
      answers += got;
    }

    const callWrong = [];
    for (let i = 0; i < calls; i++) {
      const input = next();
      const { result } = await doubler.call({ value: input }, { timeout });
      if (result !== input * 2 && callWrong.length < 10) callWrong.push(`call ${i}: ${input} → ${result}, expected ${input * 2}`);
    }

    const telemetry = runtime.getTelemetry("doubler");
    return {
      ok: true,
      inWorker: typeof WorkerGlobalScope !== "undefined" && globalThis instanceof WorkerGlobalScope,
      backend: runtime.adapter.backend,
      adapter: runtime.adapter.name,
      batches: { rounds: batches, answers, wrong },
      calls: { count: calls, wrong: callWrong },
      processed: telemetry.messagesProcessed,
      received: telemetry.messagesReceived,
    };
  } finally {
    await runtime.dispose();
  }
}

/** Up to `max` answers of `id` as the doubler's `result`s, read packed (an Int32Array over the bytes). */
async function receivePacked(runtime, id, options) {
  const bytes = await runtime.receiveBatch(id, { ...options, packed: true });
  return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

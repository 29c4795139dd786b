// What each bundled page runs, given the package's module: init, a runtime on `?backend=`, the
// built-in doubler: one call, a batch of 1000 messages as an Int32Array and their answers packed,
// a batch of 100 objects and their answer objects, every answer checked; then dispose. The
// outcome goes to `window.__result`, as the Vite app's does.
async function run({ default: init, RingKernelRuntime }, backend) {
  await init();
  const runtime = await RingKernelRuntime.create({ backend });
  try {
    const doubler = await runtime.launch("doubler", null, { autoActivate: true });
    const called = await doubler.call({ value: 21 }, { timeout: 30_000 });

    const sent = Int32Array.from({ length: 1000 }, (_, i) => (i % 2 ? i * 1009 : -i * 997));
    const accepted = await doubler.sendBatch(sent, { timeout: 30_000 });
    const packed = [];
    while (packed.length < sent.length) {
      const bytes = await doubler.receiveBatch({ max: sent.length - packed.length, timeout: 30_000, packed: true });
      packed.push(...new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
    }

    const objects = Array.from({ length: 100 }, (_, i) => ({ value: i - 50 }));
    await doubler.sendBatch(objects, { timeout: 30_000 });
    const answers = [];
    while (answers.length < objects.length) {
      answers.push(...(await doubler.receiveBatch({ max: objects.length - answers.length, timeout: 30_000 })));
    }
    return {
      backend: runtime.adapter.backend,
      called: called.result,
      accepted,
      packedRight: packed.every((answer, i) => answer === 2 * sent[i]),
      objectsRight: answers.length === 100 && answers.every((answer, i) => answer.result === 2 * (i - 50)),
    };
  } finally {
    await runtime.dispose();
  }
}

/** Runs the app on the package's module `ringkernel` and records the outcome. */
export async function report(ringkernel) {
  const backend = new URLSearchParams(location.search).get("backend") ?? "auto";
  try {
    window.__result = { ok: true, value: await run(ringkernel, backend) };
  } catch (error) {
    window.__result = { ok: false, error: `${error?.name}: ${error?.message}` };
  }
  document.getElementById("out").textContent = JSON.stringify(window.__result, null, 2);
}

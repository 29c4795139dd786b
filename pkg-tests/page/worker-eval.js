// A dedicated module worker for tests that drive a runtime in a worker from the page: the page
// posts `{ id, code, args }`, the worker runs `code` as the body of an async function of
// `(rk, scope, args)` (rk: the initialized package; scope: an object kept between messages) and
// posts `{ id, ok: true, value }` with what it returned (`{ value, transfer }` transfers
// `transfer`), or `{ id, ok: false, error }` with the error as `toJSON()` gives it (a plain
// `{ name, message }` for other errors). Used by tests/worker-streams.test.mjs.
const rk = import("/ringkernel-web/index.js").then(async (module) => {
  await module.default();
  return module;
});
const scope = {};
const AsyncFunction = (async () => {}).constructor;

self.onmessage = async ({ data: { id, code, args } }) => {
  try {
    const result = (await new AsyncFunction("rk", "scope", "args", code)(await rk, scope, args)) ?? {};
    self.postMessage({ id, ok: true, value: result.value }, result.transfer ?? []);
  } catch (error) {
    const data = typeof error?.toJSON === "function" ? error.toJSON() : { name: error?.name ?? typeof error, message: String(error?.message ?? error) };
    self.postMessage({ id, ok: false, error: data });
  }
};

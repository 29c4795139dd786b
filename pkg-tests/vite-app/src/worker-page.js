// The page of worker.html: starts src/worker.js as a module worker (Vite bundles it as an ES
// module: `worker: { format: "es" }`), posts it what to run (from the query string), and records
// what it answers in `window.__result`.
const plan = Object.fromEntries([...new URLSearchParams(location.search)].map(([k, v]) => [k, Number(v)]));
const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
const done = (result) => {
  window.__result = result;
  document.getElementById("out").textContent = JSON.stringify(result, null, 2);
};
worker.onmessage = ({ data }) => done(data);
worker.onerror = (event) => done({ ok: false, error: `the worker failed: ${event.message || "it did not load (an import failed?)"}` });
worker.postMessage(plan);

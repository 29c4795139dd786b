// Demo: launches the built-in kernels, streams batches through them, and shows state and telemetry.
import init, { RingKernelRuntime } from "./pkg/ringkernel_web.js";

const KERNELS = ["doubler", "echo"];
const ACTIONS = ["launch", "activate", "deactivate", "reactivate", "terminate"];
const $ = (id) => document.getElementById(id);
const lastAnswer = {};
const rates = {};

function showError(error) {
  $("error").hidden = false;
  $("error").textContent = `${error.name}: ${error.message}`;
}

async function main() {
  await init();
  let runtime;
  try {
    runtime = await RingKernelRuntime.create({ enableTelemetry: true, defaultQueueSize: 4096 });
  } catch (error) {
    $("adapter").textContent = "unavailable";
    return showError(error);
  }
  window.runtime = runtime;
  const a = runtime.adapter;
  $("adapter").textContent = `${a.name} (${a.backend}, ${a.deviceType})`;

  for (const id of KERNELS) {
    const row = document.createElement("tr");
    row.id = `row-${id}`;
    row.innerHTML = `<td>${id}</td><td class="state">—</td><td class="sent">0</td><td class="processed">0</td>
      <td class="received">0</td><td class="queued">0</td><td class="rate">0</td><td class="answer">—</td><td class="controls"></td>`;
    for (const action of ACTIONS) {
      const button = document.createElement("button");
      button.textContent = action;
      button.dataset.action = action;
      button.onclick = () => act(runtime, id, action);
      row.querySelector(".controls").append(button);
    }
    $("kernels").append(row);
    await runtime.launch(id);
    await runtime.activate(id);
  }
  setInterval(() => render(runtime), 250);
  stream(runtime);
}

async function act(runtime, id, action) {
  try {
    if (action === "launch" && runtime.kernelIds.includes(id)) runtime.remove(id);
    if (action === "terminate") await runtime.terminate(id, { timeout: 2000 });
    else await runtime[action](id);
  } catch (error) {
    showError(error);
  }
  render(runtime);
}

let value = 0;
async function stream(runtime) {
  for (;;) {
    const active = runtime.activeKernels;
    if (!$("stream").checked || active.length === 0) {
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    await Promise.all(active.map(async (id) => {
      const batch = new Int32Array(256).map(() => value++ % 1_000_000);
      try {
        await runtime.sendBatch(id, batch, { timeout: 100 });
        const answers = new Int32Array((await runtime.receiveBatch(id, { timeout: 1000 })).buffer);
        lastAnswer[id] = answers[answers.length - 1];
      } catch (error) {
        if (error.name !== "TimeoutError" && error.name !== "KernelStateError") showError(error);
      }
    }));
  }
}

function render(runtime) {
  const now = performance.now();
  for (const id of KERNELS) {
    const row = $(`row-${id}`);
    let state = "—", t = null;
    try { state = runtime.getState(id); t = runtime.getTelemetry(id); } catch { /* not launched */ }
    row.querySelector(".state").textContent = state;
    row.querySelector(".state").className = `state ${state}`;
    if (t) {
      row.querySelector(".sent").textContent = t.messagesSent.toLocaleString();
      row.querySelector(".processed").textContent = t.messagesProcessed.toLocaleString();
      row.querySelector(".received").textContent = t.messagesReceived.toLocaleString();
      row.querySelector(".queued").textContent = (t.inputQueueDepth + t.inFlight + t.outputQueueDepth).toLocaleString();
      const prev = rates[id];
      if (prev) row.querySelector(".rate").textContent = Math.round((t.messagesProcessed - prev.n) / ((now - prev.t) / 1000)).toLocaleString();
      rates[id] = { n: t.messagesProcessed, t: now };
    }
    row.querySelector(".answer").textContent = lastAnswer[id] ?? "—";
  }
}

main().catch(showError);

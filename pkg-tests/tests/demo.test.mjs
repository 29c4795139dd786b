// The demo page (www/) in headless Chromium on its WebGPU (SwiftShader without a GPU): every
// kernel streams, the pipeline's stages are `connect`ed (the page sends to the first stage and
// receives from the last, and every answer it gets is checked), the lifecycle buttons drive the
// states they name, pausing holds a kernel's input while the others keep going, and a browser
// without WebGPU gets a clear explanation.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { launchChromium } from "../chromium.mjs";
import { startServer } from "../../www/serve.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const www = join(here, "..", "..", "www");
// www/pkg exists only after build.sh; the installed package (a link to pkg/) is the same build.
const installed = join(here, "..", "node_modules", "ringkernel-web");
const pkg = existsSync(installed) ? installed : join(here, "..", "..", "pkg");
const artifacts = join(here, "..", "artifacts");
const KERNELS = ["doubler", "mandelbrot", "scale", "offset", "square"];
const PIPELINE = ["scale", "offset", "square"];
const ACTIONS = ["launch", "activate", "deactivate", "reactivate", "terminate"];
const LEGAL = {
  launched: ["activate", "terminate"],
  active: ["deactivate", "terminate"],
  deactivated: ["reactivate", "terminate"],
  terminated: ["launch"],
  failed: ["terminate"],
};
const WAIT = { timeout: 30_000 };

let server, url, browser;

before(async () => {
  ({ server, url } = await startServer({ routes: { "/": www, "/pkg/": pkg } }));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  server?.close();
});

/** Opens the demo and records every console error and uncaught page error. */
async function openDemo({ hideWebGpu = false } = {}) {
  const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  const errors = [];
  page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
  page.on("pageerror", (e) => errors.push(`pageerror: ${e}`));
  if (hideWebGpu) {
    await page.addInitScript(() => Object.defineProperty(Navigator.prototype, "gpu", { get: () => undefined }));
  }
  await page.goto(`${url}/`);
  return { page, errors };
}

/** A kernel row's field as text, and as a number ("12,345" → 12345). */
const text = (page, id, field) => page.textContent(`[data-kernel="${id}"] [data-field="${field}"]`);
const number = async (page, id, field) => Number((await text(page, id, field)).replace(/[^\d.]/g, ""));
const numbers = async (page, field) => Object.fromEntries(await Promise.all(KERNELS.map(async (id) => [id, await number(page, id, field)])));

function waitForState(page, id, state) {
  return page.waitForFunction(
    ([id, state]) => document.querySelector(`[data-kernel="${id}"] [data-field="state"]`)?.textContent === state,
    [id, state], WAIT);
}

/** Waits until `field` of kernel `id` matches `pattern`; fails naming what it read last. */
async function waitForText(page, id, field, pattern) {
  await page.waitForFunction(([id, field, source]) =>
    new RegExp(source).test(document.querySelector(`[data-kernel="${id}"] [data-field="${field}"]`)?.textContent ?? ""),
  [id, field, pattern.source], WAIT).catch(() => {}); // the assertion below says what differs
  assert.match(await text(page, id, field), pattern, `${id}'s ${field}`);
}

/** Waits until `field` of kernel `id` satisfies `op` against `value` ("gt", "lt"). */
function waitForField(page, id, field, op, value) {
  return page.waitForFunction(([id, field, op, value]) => {
    const el = document.querySelector(`[data-kernel="${id}"] [data-field="${field}"]`);
    const n = Number(el?.textContent.replace(/[^\d.]/g, ""));
    return op === "gt" ? n > value : n < value;
  }, [id, field, op, value], WAIT);
}

/** What the runtime says about each pipeline stage: where its answers go, and its counters. */
function stages(page) {
  return page.evaluate((ids) => Object.fromEntries(ids.map((id) => {
    const t = window.runtime.getTelemetry(id);
    const { checked, wrong } = window.demo.kernels[id];
    return [id, { connectedTo: t.connectedTo, received: t.messagesReceived, forwarded: t.messagesForwarded,
      processed: t.messagesProcessed, checked, wrong }];
  })), PIPELINE);
}

/**
 * The pipeline is connected end to end: the middle stages forward their answers (more and more
 * of them), the page never receives from them, and every answer the last stage gave the page was
 * right and in order.
 */
async function assertPipelineConnected(page) {
  const before = await stages(page);
  assert.deepEqual(PIPELINE.map((id) => before[id].connectedTo), ["offset", "square", null], "connectedTo of each stage");
  for (const id of ["scale", "offset"]) await waitForField(page, id, "forwarded", "gt", before[id].forwarded);
  await waitForField(page, "square", "checked", "gt", before.square.checked);
  const after = await stages(page);
  for (const id of ["scale", "offset"]) {
    assert.ok(after[id].forwarded > before[id].forwarded, `${id} forwards: ${JSON.stringify(after[id])}`);
    assert.ok(after[id].forwarded <= after[id].processed, `${id} forwards only what it processed: ${JSON.stringify(after[id])}`);
  }
  assert.equal(after.square.forwarded, 0, "the last stage answers the page");
  for (const id of PIPELINE) assert.equal(after[id].wrong, 0, `${id}: wrong answers`);
  return after;
}

/** "Make the doubler misbehave" is enabled exactly when the doubler is active (and nothing else drives it). */
async function assertMisbehave(page, enabled) {
  await page.waitForFunction((enabled) => document.getElementById("misbehave").disabled === !enabled, enabled, { timeout: 5_000 })
    .catch(() => {}); // the assertion below says what differs
  assert.equal(await page.isEnabled("#misbehave"), enabled, `misbehave button ${enabled ? "enabled" : "disabled"}`);
}

async function click(page, id, action) {
  await page.click(`[data-kernel="${id}"] button[data-action="${action}"]`, WAIT);
}

/** Exactly the buttons legal in `state` are enabled (none while a lifecycle call is pending). */
async function assertButtons(page, id, state) {
  await page.waitForFunction(([id, legal]) => {
    const buttons = [...document.querySelectorAll(`[data-kernel="${id}"] button[data-action]`)];
    return buttons.length === 5 && buttons.every((b) => b.disabled === !legal.includes(b.dataset.action));
  }, [id, LEGAL[state]], { timeout: 5_000 }).catch(() => {}); // the assertion below says what differs
  const enabled = await page.$$eval(`[data-kernel="${id}"] button[data-action]`,
    (buttons) => buttons.filter((b) => !b.disabled).map((b) => b.dataset.action));
  assert.deepEqual(enabled, ACTIONS.filter((a) => LEGAL[state].includes(a)), `${id} ${state}: enabled buttons`);
}

test("the demo streams through every kernel; pause, resume, terminate and relaunch work from the buttons", async () => {
  const { page, errors } = await openDemo();
  try {
    await page.waitForFunction(() => ["running", "unavailable", "error"].includes(document.body.dataset.status), null, { timeout: 60_000 });
    assert.equal(await page.getAttribute("body", "data-status"), "running", `page failed: ${errors.join("\n")} ${await page.textContent("#error")}`);
    await page.locator("#stream").check({ force: true });

    // The adapter is named: WebGPU in the browser, whatever device it is.
    assert.equal(await page.getAttribute("#adapter", "data-status"), "ok");
    assert.match(await page.textContent("#adapter-details"), /backend browserwebgpu · device type \w+/);
    assert.notEqual((await page.textContent("#adapter-name")).trim(), "");

    for (const id of KERNELS) await waitForState(page, id, "active");
    for (const id of KERNELS) await assertButtons(page, id, "active");
    await assertMisbehave(page, true);

    // Work flows through every kernel, the pipeline's end included, and the answers check out.
    const start = await numbers(page, "processed");
    for (const id of KERNELS) await waitForField(page, id, "processed", "gt", start[id]);
    await waitForField(page, "doubler", "checked", "gt", 0);
    await waitForField(page, "square", "checked", "gt", 0);
    assert.equal(await number(page, "doubler", "wrong"), 0);
    assert.equal(await number(page, "square", "wrong"), 0);
    await waitForField(page, "mandelbrot", "drawn", "gt", 0);

    // The pipeline runs on `connect`: nothing goes through the page between its stages.
    const pipeline = await assertPipelineConnected(page);
    for (const id of ["scale", "offset"]) {
      assert.equal(pipeline[id].received, 0, `the page never received from ${id}`);
      assert.equal(await number(page, id, "received"), 0, `${id}'s received counter on the page`);
    }
    // On one device the connected stages run fused (README, "Fused pipelines"), and the cards say so.
    await waitForText(page, "scale", "route", /^offset \(connect\), fused into one dispatch$/);
    await waitForText(page, "offset", "route", /^square \(connect\), fused into one dispatch$/);
    await page.waitForTimeout(2000); // steady streaming before the pause, for the screenshot's charts
    const painted = await page.evaluate(() => {
      const canvas = document.getElementById("mandelbrot-canvas");
      const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
      let n = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i] !== 0x0d || data[i + 1] !== 0x13 || data[i + 2] !== 0x21) n++;
      return n;
    });
    assert.ok(painted > 0, "the mandelbrot canvas shows computed tiles");

    // Pause the doubler: its counter stops while its input queues up; the others keep going.
    await click(page, "doubler", "deactivate");
    await waitForState(page, "doubler", "deactivated");
    await assertButtons(page, "doubler", "deactivated");
    await assertMisbehave(page, false);
    await waitForField(page, "doubler", "queued", "gt", 0);
    await page.waitForTimeout(1000); // a dispatch already submitted may still report in
    const paused = await numbers(page, "processed");
    await page.waitForTimeout(1500);
    const later = await numbers(page, "processed");
    assert.equal(later.doubler, paused.doubler, "a deactivated kernel processes nothing");
    const queued = await number(page, "doubler", "queued");
    assert.ok(queued > 0, `the paused doubler's input is queued (${queued})`);
    for (const id of ["mandelbrot", "square"]) assert.ok(later[id] > paused[id], `${id} keeps processing`);

    // Reactivate: the backlog drains.
    await click(page, "doubler", "reactivate");
    await waitForState(page, "doubler", "active");
    await waitForField(page, "doubler", "processed", "gt", paused.doubler + queued - 1);
    await waitForField(page, "doubler", "queued", "lt", queued);
    assert.equal(await number(page, "doubler", "wrong"), 0);

    // Terminate, then launch a fresh instance and activate it. The page's total of messages
    // processed counts the old instance's too; the card's last answer is the new one's.
    await click(page, "doubler", "terminate");
    await waitForState(page, "doubler", "terminated");
    await assertButtons(page, "doubler", "terminated");
    await assertMisbehave(page, false);
    const total = Number((await page.textContent("#total-processed")).replace(/\D/g, ""));
    await click(page, "doubler", "launch");
    await waitForState(page, "doubler", "launched");
    await assertButtons(page, "doubler", "launched");
    await assertMisbehave(page, false);
    assert.equal(await text(page, "doubler", "answer"), "–", "no answer from the new instance yet");
    await page.waitForTimeout(600); // a sample or two
    const totalAfter = Number((await page.textContent("#total-processed")).replace(/\D/g, ""));
    assert.ok(totalAfter >= total, `the running total does not go down on a relaunch: ${total} → ${totalAfter}`);
    await click(page, "doubler", "activate");
    await waitForState(page, "doubler", "active");
    await assertMisbehave(page, true);
    const relaunched = await number(page, "doubler", "processed");
    await waitForField(page, "doubler", "processed", "gt", relaunched);
    assert.equal(await number(page, "doubler", "wrong"), 0, "answers after the relaunch check out");
    await assertPipelineConnected(page);

    await page.waitForTimeout(1500); // the charts show the relaunched doubler working again
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, "demo.png"), fullPage: true });
    assert.equal(await page.isHidden("#error"), true, await page.textContent("#error"));
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test("terminating a middle stage ends the pipeline before it; launched again, it is reconnected", async () => {
  const { page, errors } = await openDemo();
  try {
    await page.waitForFunction(() => document.body.dataset.status === "running", null, { timeout: 60_000 });
    await page.locator("#stream").check({ force: true });
    for (const id of PIPELINE) await waitForState(page, id, "active");
    await assertPipelineConnected(page);

    // Terminating offset takes it out of the pipeline: scale's answers now come to the page,
    // which checks them (3x), and offset's drained answers too (3x + 1).
    await click(page, "offset", "terminate");
    await waitForState(page, "offset", "terminated");
    const broken = await stages(page);
    assert.equal(broken.scale.connectedTo, null, "scale is disconnected from the terminated offset");
    assert.equal(broken.offset.connectedTo, null, "offset is out of the pipeline");
    await waitForField(page, "scale", "received", "gt", 0);
    await page.waitForFunction(() => /checked/.test(document.querySelector('[data-kernel="scale"] [data-field="route"]').textContent), null, WAIT);
    assert.match(await text(page, "scale", "route"), /^the page: offset is not running, the pipeline ends here · [\d,]+ checked, 0 wrong$/);
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, "demo-pipeline-broken.png"), fullPage: true });

    // Launched and activated again, offset goes back between scale and square.
    await click(page, "offset", "launch");
    await waitForState(page, "offset", "launched");
    await click(page, "offset", "activate");
    await waitForState(page, "offset", "active");
    await assertPipelineConnected(page);
    const after = await stages(page);
    assert.ok(after.scale.checked > 0, `the page checked scale's answers while the pipeline ended there: ${JSON.stringify(after.scale)}`);
    assert.equal(after.offset.received, 0, "the relaunched offset forwards everything");
    assert.equal(await page.isHidden("#error"), true, await page.textContent("#error"));
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test("losing the GPU device fails every kernel visibly, and Recover brings them back with nothing lost", async () => {
  const { page, errors } = await openDemo();
  try {
    await page.waitForFunction(() => document.body.dataset.status === "running", null, { timeout: 60_000 });
    for (const id of KERNELS) await waitForState(page, id, "active");
    await waitForField(page, "doubler", "checked", "gt", 0);
    assert.equal(await page.isDisabled("#recover"), true, "nothing to recover yet");

    await page.click("#lose-device", WAIT);
    for (const id of KERNELS) await waitForState(page, id, "failed");
    for (const id of KERNELS) await assertButtons(page, id, "failed");
    await page.waitForFunction(() => !document.getElementById("recover").disabled, null, WAIT);
    assert.match(await page.textContent("#device-status"), /Device lost: .*destroyed/);
    assert.match(await text(page, "doubler", "note"), /^Failed: the GPU device it ran on \(device 0\) was lost/);
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, "demo-device-lost.png"), fullPage: true });

    await page.click("#recover", WAIT);
    for (const id of KERNELS) await waitForState(page, id, "active");
    // Recovery keeps the connections: the pipeline still runs without the page in between.
    await assertPipelineConnected(page);
    await page.waitForFunction(() => /Recovered 1 of 1/.test(document.getElementById("device-status").textContent), null, WAIT);
    const checked = await number(page, "doubler", "checked");
    await waitForField(page, "doubler", "checked", "gt", checked);
    await waitForField(page, "square", "checked", "gt", await number(page, "square", "checked"));
    // The doubler's and the pipeline's answers are checked in order: a lost, repeated or
    // reordered message would count as wrong.
    assert.equal(await number(page, "doubler", "wrong"), 0);
    assert.equal(await number(page, "square", "wrong"), 0);
    assert.equal(await page.isHidden("#error"), true, await page.textContent("#error"));
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test("the operations panel shows health, degradation and memory; a misbehaving doubler's circuit opens and closes again", async () => {
  const { page, errors } = await openDemo();
  try {
    await page.waitForFunction(() => document.body.dataset.status === "running", null, { timeout: 60_000 });
    await waitForState(page, "doubler", "active");
    await waitForField(page, "doubler", "checked", "gt", 0);
    assert.match(await page.textContent("#health"), /^(healthy|degraded|unhealthy)$/);
    assert.match(await page.textContent("#degradation"), /^(normal|light|moderate|severe|critical)$/);
    assert.match(await page.textContent("#memory-pressure"), /^\d+ %$/);
    assert.equal(await text(page, "doubler", "circuit"), "circuit closed");

    await page.click("#misbehave", WAIT);
    // Three timed-out calls in a row: the circuit opens, and the health check names it.
    await page.waitForFunction(() =>
      document.querySelector('[data-kernel="doubler"] [data-field="circuit"]').dataset.circuit === "open", null, WAIT);
    assert.match(await text(page, "doubler", "circuit"), /circuit open · probe in \d/);
    await page.waitForFunction(() => /kernel 'doubler': circuit breaker open/.test(document.getElementById("health-reason").textContent), null, WAIT);
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, "demo-circuit-open.png"), fullPage: true });
    // After openMs a probe goes through, the doubler answers it, and the circuit closes.
    await page.waitForFunction(() =>
      document.querySelector('[data-kernel="doubler"] [data-field="circuit"]').dataset.circuit === "closed", null, WAIT);
    const checked = await number(page, "doubler", "checked");
    await waitForField(page, "doubler", "checked", "gt", checked);
    assert.equal(await number(page, "doubler", "wrong"), 0, "the doubler's answers stay in order");
    // It left the doubler as it found it: active, its buttons free again.
    assert.equal(await text(page, "doubler", "state"), "active");
    await assertButtons(page, "doubler", "active");
    await assertMisbehave(page, true);
    // Latency is the last half second's (live), next to telemetry's since-launch percentiles.
    assert.match(await text(page, "doubler", "latency"), /^[\d.]+ (µs|ms|s)$/);
    assert.match(await text(page, "doubler", "p99"), /^[\d.]+ (µs|ms|s)$/);
    assert.equal(await page.isHidden("#error"), true, await page.textContent("#error"));
    assert.deepEqual(errors, []);

    // An unexpected error stays listed until the visitor dismisses it.
    await page.evaluate(() => window.demo.act("mandelbrot", "activate")); // already active: KernelStateError
    await page.waitForFunction(() => !document.getElementById("error").hidden, null, WAIT);
    assert.match(await page.textContent("#error li"), /KernelStateError/);
    await page.click("#dismiss-errors");
    assert.equal(await page.isHidden("#error"), true, "dismissed");
  } finally {
    await page.close();
  }
});

test("the page runs on two devices; moving the doubler and a middle pipeline stage keeps every answer and counter", async () => {
  const { page, errors } = await openDemo();
  try {
    await page.waitForFunction(() => document.body.dataset.status === "running", null, { timeout: 60_000 });
    await waitForState(page, "doubler", "active");
    await waitForField(page, "doubler", "checked", "gt", 0);
    await page.waitForFunction(() => !document.getElementById("devices").hidden, null, WAIT);
    assert.match(await page.textContent("#devices"), /device 0: .* kernels[^]*device 1: /);
    assert.equal(await text(page, "doubler", "device"), "device 0");
    for (const id of ["doubler", "offset"]) {
      const processed = await number(page, id, "processed");
      await page.click(`[data-kernel="${id}"] button[data-move]`, WAIT);
      await page.waitForFunction((id) =>
        document.querySelector(`[data-kernel="${id}"] [data-field="device"]`).textContent === "device 1", id, WAIT);
      assert.match(await text(page, id, "note"), /^Moved to device 1: out of the tick for [\d.]+ ms/);
      // Its counters carry on from where they were, on the other device.
      await waitForField(page, id, "processed", "gt", processed);
    }
    // offset's neighbours stayed on device 0: its input and its answers are relayed through the host.
    await waitForText(page, "scale", "route", /^offset \(connect\), relayed through the host \(offset is on device 1\)$/);
    await waitForText(page, "offset", "route", /^square \(connect\), relayed through the host \(square is on device 0\)$/);
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, "demo-migrated.png"), fullPage: true });
    await waitForField(page, "doubler", "checked", "gt", await number(page, "doubler", "checked"));
    await waitForField(page, "square", "checked", "gt", await number(page, "square", "checked"));
    assert.equal(await number(page, "doubler", "wrong"), 0, "the doubler's answers stay in order");
    assert.equal(await number(page, "square", "wrong"), 0, "the pipeline's answers stay in order");
    assert.match(await page.textContent("#devices"), /device 1: [^\n]*2 kernels/);

    // Device 0 lost: nothing can move onto it (migrate would refuse) until it is recovered.
    await page.click("#lose-device", WAIT);
    await waitForState(page, "mandelbrot", "failed");
    const move = '[data-kernel="doubler"] button[data-move]';
    await page.waitForFunction((move) => document.querySelector(move).disabled, move, WAIT);
    assert.match(await page.getAttribute(move, "title"), /Device 0 is lost/);
    await page.click("#recover", WAIT);
    for (const id of KERNELS) await waitForState(page, id, "active");
    await page.waitForFunction((move) => !document.querySelector(move).disabled, move, WAIT);
    assert.equal(await page.isHidden("#error"), true, await page.textContent("#error"));
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test("a pipeline stage's card says how its answers travel: fused into one dispatch, or ring to ring while a stage is paused", async () => {
  const { page, errors } = await openDemo();
  try {
    await page.waitForFunction(() => document.body.dataset.status === "running", null, { timeout: 60_000 });
    for (const id of PIPELINE) await waitForState(page, id, "active");
    await waitForText(page, "scale", "route", /^offset \(connect\), fused into one dispatch$/);
    // The runtime's own counters agree: the stages' dispatches run fused.
    const fused = await page.evaluate(() => {
      const t = window.runtime.getTelemetry("scale");
      return { dispatches: t.dispatches, fusedDispatches: t.fusedDispatches };
    });
    assert.ok(fused.fusedDispatches > 0, JSON.stringify(fused));

    // A paused stage breaks the chain: the runtime runs what it can ring to ring (README: "A
    // paused ... stage ... make[s] the chain run ring to ring").
    await click(page, "offset", "deactivate");
    await waitForState(page, "offset", "deactivated");
    await waitForText(page, "scale", "route", /^offset \(connect\), ring to ring on the GPU$/);
    await waitForText(page, "offset", "route", /^square \(connect\), ring to ring on the GPU$/);
    // What the visitor sends waits at the first stage, not at the paused one.
    await waitForText(page, "offset", "note", /^Paused: nothing dispatched, and the stages before it wait; input queues at scale \([\d,]+ of 4,096\)/);
    await click(page, "offset", "reactivate");
    await waitForState(page, "offset", "active");
    await waitForText(page, "scale", "route", /^offset \(connect\), fused into one dispatch$/);
    await assertPipelineConnected(page);
    assert.equal(await page.isHidden("#error"), true, await page.textContent("#error"));
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test("the controls wait for startup: clicking them while the kernels launch changes nothing, and the page runs", async () => {
  const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  const errors = [];
  page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
  page.on("pageerror", (e) => errors.push(`pageerror: ${e}`));
  // From the moment the dashboard shows until the page says how startup went, a visitor clicks
  // whatever is enabled: "Lose GPU device 0", every lifecycle and move button, misbehave. Any of
  // them going through would fail startup's own launch or activate half way.
  await page.addInitScript(() => {
    window.__clickedDuringStartup = [];
    const poke = () => {
      const status = document.body?.dataset.status;
      if (status && !["loading", "starting"].includes(status)) return;
      if (document.getElementById("dashboard")?.hidden === false) {
        for (const el of document.querySelectorAll("#lose-device, #recover, #misbehave, button[data-action], button[data-move]")) {
          if (el.disabled || el.hidden) continue;
          const kernel = el.closest("[data-kernel]")?.dataset.kernel;
          window.__clickedDuringStartup.push(`${kernel ?? ""} ${el.dataset.action ?? el.id ?? "move"}`.trim());
          el.click();
        }
      }
      setTimeout(poke, 1);
    };
    poke();
  });
  try {
    await page.goto(`${url}/`);
    await page.waitForFunction(() => ["running", "unavailable", "error"].includes(document.body.dataset.status), null, { timeout: 60_000 });
    assert.deepEqual(await page.evaluate(() => window.__clickedDuringStartup), [], "controls enabled before startup finished");
    assert.equal(await page.getAttribute("body", "data-status"), "running", await page.textContent("#error"));
    for (const id of KERNELS) await waitForState(page, id, "active");
    for (const id of KERNELS) await assertButtons(page, id, "active");
    assert.equal(await page.isEnabled("#lose-device"), true, "Lose GPU device 0 is enabled once the kernels run");
    await assertMisbehave(page, true);
    await waitForField(page, "doubler", "checked", "gt", 0);
    assert.equal(await page.isHidden("#error"), true, await page.textContent("#error"));
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test("with device 0 lost: a moved kernel's note gives way to its failure, terminate is expected, launch waits for Recover", async () => {
  const { page, errors } = await openDemo();
  try {
    await page.waitForFunction(() => document.body.dataset.status === "running", null, { timeout: 60_000 });
    for (const id of KERNELS) await waitForState(page, id, "active");
    await waitForField(page, "doubler", "checked", "gt", 0);
    // The page says which device the button loses, and what red shading means.
    assert.match(await page.textContent("#lose-device"), /device 0/);
    assert.match(await page.textContent("footer"), /red while it has failed/);
    assert.match(await page.innerText(".lede"), /the queue that fills is the first stage's/);

    // There and back again: the note says where it moved...
    const move = '[data-kernel="doubler"] button[data-move]';
    for (const to of [1, 0]) {
      await page.click(move, WAIT);
      await waitForText(page, "doubler", "note", new RegExp(`^Moved to device ${to}: `));
    }
    // ...until its state changes: then the state's own explanation shows.
    await page.click("#lose-device", WAIT);
    for (const id of KERNELS) await waitForState(page, id, "failed");
    await waitForText(page, "doubler", "note", /^Failed: the GPU device it ran on \(device 0\) was lost/);

    // Terminating a failed kernel stops it with its messages unprocessed (DeviceLostError, as
    // README's Reliability says): the card's note, not an unexpected error.
    await click(page, "doubler", "terminate");
    await waitForState(page, "doubler", "terminated");
    await waitForText(page, "doubler", "note", /^Terminated with its device lost: [\d,]+ messages? left unprocessed .* Launch waits: device 0 is lost; Recover it first\.$/);
    assert.equal(await page.isHidden("#error"), true, await page.textContent("#error"));

    // Launch places kernels on device 0, which is lost: the button waits, and says why.
    const launch = '[data-kernel="doubler"] button[data-action="launch"]';
    await page.waitForTimeout(600); // a sample or two
    assert.equal(await page.isDisabled(launch), true, "launch disabled while device 0 is lost");
    assert.match(await page.getAttribute(launch, "title"), /Device 0, where kernels are launched, is lost: Recover it first/);

    // Recovered, it launches again; the other kernels come back where they were.
    await page.click("#recover", WAIT);
    for (const id of ["mandelbrot", ...PIPELINE]) await waitForState(page, id, "active");
    await waitForText(page, "doubler", "note", /^Terminated with its device lost: [\d,]+ messages? left unprocessed[^]*first\)\.$/);
    await page.waitForFunction((launch) => !document.querySelector(launch).disabled, launch, WAIT);
    await click(page, "doubler", "launch");
    await waitForState(page, "doubler", "launched");
    await click(page, "doubler", "activate");
    await waitForState(page, "doubler", "active");
    const relaunched = await number(page, "doubler", "processed");
    await waitForField(page, "doubler", "processed", "gt", relaunched);
    assert.equal(await number(page, "doubler", "wrong"), 0);

    // A relaunched mandelbrot starts counting its tiles afresh, as the doubler its checked answers.
    await waitForField(page, "mandelbrot", "drawn", "gt", 0);
    await click(page, "mandelbrot", "terminate");
    await waitForState(page, "mandelbrot", "terminated");
    await click(page, "mandelbrot", "launch");
    await waitForState(page, "mandelbrot", "launched");
    await page.waitForTimeout(600); // a sample or two
    assert.equal(await number(page, "mandelbrot", "drawn"), 0, "tiles drawn by the new instance");
    assert.equal(await page.isHidden("#error"), true, await page.textContent("#error"));
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test("without WebGPU the page explains BackendUnavailableError, how to enable WebGPU, and runs on the cpu backend", async () => {
  const { page, errors } = await openDemo({ hideWebGpu: true });
  try {
    await page.waitForFunction(() => ["running", "unavailable", "error"].includes(document.body.dataset.status), null, { timeout: 60_000 });
    assert.equal(await page.getAttribute("body", "data-status"), "unavailable");
    assert.equal(await page.isVisible("#webgpu-missing"), true);
    const notice = await page.textContent("#webgpu-missing");
    assert.match(notice, /BackendUnavailableError/);
    assert.match(notice, /enable-unsafe-webgpu/);
    assert.match(notice, /localhost/);
    // A plain sentence; the runtime's full message (wgpu's backend list) is folded away.
    assert.match(await page.textContent("#missing-reason"), /^this browser has no WebGPU \(navigator\.gpu is missing\)/);
    assert.equal(await page.isVisible("#missing-message"), false, "the full message is in a closed <details>");
    assert.match(await page.textContent("#missing-message"), /no GPU backend available/);
    assert.equal(await page.isVisible("#use-cpu"), true);
    assert.equal(await page.isHidden("#dashboard"), true);
    assert.equal(await page.isHidden("#error"), true, await page.textContent("#error"));
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, "demo-no-webgpu.png") });

    // The fallback the notice offers: the same demo on the cpu backend (JavaScript handlers).
    await page.click("#use-cpu");
    await page.waitForFunction(() => document.body.dataset.status === "running", null, { timeout: 60_000 });
    assert.match(await page.textContent("#adapter-details"), /backend cpu/);
    await page.locator("#stream").check({ force: true });
    for (const id of KERNELS) await waitForState(page, id, "active");
    const start = await numbers(page, "processed");
    for (const id of KERNELS) await waitForField(page, id, "processed", "gt", start[id]);
    await waitForField(page, "square", "checked", "gt", 0);
    assert.equal(await number(page, "doubler", "wrong"), 0);
    assert.equal(await number(page, "square", "wrong"), 0);
    // The cpu backend connects the stages too (inside the runtime, no round trip through the page).
    const pipeline = await assertPipelineConnected(page);
    for (const id of ["scale", "offset"]) assert.equal(pipeline[id].received, 0, `the page never received from ${id}`);
    assert.match(await text(page, "scale", "route"), /^offset \(connect\), inside the runtime$/);
    // The texts describe the cpu backend: handlers on the host, JavaScript for user kernels, one device.
    assert.match(await page.innerText(".lede"), /on the cpu backend/);
    assert.doesNotMatch(await page.innerText(".lede"), /GPU memory/);
    assert.equal(await page.textContent('[data-kernel="scale"] .kind'), "user JavaScript · stage 1");
    assert.match(await text(page, "doubler", "note"), /^Active: its handler runs on the host/);
    assert.equal(await text(page, "doubler", "device"), "", "no device pill with one device");
    await page.screenshot({ path: join(artifacts, "demo-cpu-backend.png") });

    // A phone-sized screen: everything wraps, nothing runs off the right edge.
    await page.setViewportSize({ width: 400, height: 800 });
    await page.waitForTimeout(300);
    const [scrollWidth, clientWidth] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    assert.ok(scrollWidth <= clientWidth, `the page is ${scrollWidth} px wide on a ${clientWidth} px screen`);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

// Random message layouts end to end through the installed package (tests/layout-fuzz-cases.mjs
// says what each case checks): on the cpu backend with the layouts' JavaScript codecs, again
// where code generation is refused (no codecs: the core reads and writes every message, so both
// must answer alike), and on WebGPU from the `webgpu` package (Dawn over SwiftShader, as the
// README's Node section sets it up). Each runs in a child `node` with a fixed seed; without
// Dawn's adapter the WebGPU run fails with the reason.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const DAWN_ENV = { VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? "/usr/lib/chromium/vk_swiftshader_icd.json" };

/** Runs the cases in a child `node` and resolves with its findings (the last line of its stdout). */
function fuzz(nodeArgs, seed, cases, backend, env = {}) {
  return new Promise((resolve, reject) => {
    const args = [...nodeArgs, "tests/layout-fuzz-cases.mjs", String(seed), String(cases), backend];
    const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => {
      const said = `\n--- stdout\n${stdout.slice(-4000)}\n--- stderr\n${stderr.slice(-4000)}`;
      if (code !== 0) return reject(new Error(`exit code ${code}${said}`));
      resolve({ ...JSON.parse(stdout.trim().split("\n").at(-1)), said });
    });
  });
}

function assertHeld(result, cases) {
  assert.deepEqual(result.failures, [], result.said);
  assert.equal(result.cases, cases);
  // Every case ran (layouts over 2,048 bytes are drawn again), each with four rounds of refusals.
  assert.ok(result.messages > 10 * cases && result.refusals === 4 * cases, `too little was checked: ${JSON.stringify(result)}`);
}

test("random layouts round-trip through the codecs on the cpu backend, and are refused alike", { timeout: 120_000 }, async () => {
  assertHeld(await fuzz([], 20261207, 80, "cpu"), 80);
});

test("the core's own reader and writer answer as the codecs do (code generation refused)", { timeout: 120_000 }, async () => {
  assertHeld(await fuzz(["--disallow-code-generation-from-strings"], 20261207, 80, "cpu"), 80);
});

test("random layouts round-trip through WGSL echo kernels on WebGPU (Dawn in Node)", { timeout: 300_000 }, async () => {
  assertHeld(await fuzz([], 20261208, 25, "webgpu", DAWN_ENV), 25);
});

// The model-based fuzz of tests/fuzz.test.mjs on WebGPU: the same cases, in a Node of its own
// whose `navigator.gpu` is the `webgpu` package's (Dawn over SwiftShader), each kernel's WGSL twin
// running where its JavaScript handler runs on the cpu backend. There the runtime's own paths
// differ (rings on the device, fused pipelines, grouped dispatches, commands encoded ahead,
// readback through `mapAsync`), and this fuzz found a terminate that dropped the answers of
// messages the GPU had run. FUZZ_SEED and FUZZ_CASES pass through; without Dawn's adapter the
// fuzz fails with the reason.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

test("model-based fuzz of the JavaScript API on WebGPU (Dawn in Node)", { timeout: 600_000 }, async () => {
  // Its own test run, not a subtest of this one (node:test skips a run nested in a test file).
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const child = spawn(process.execPath, ["--test", "--test-reporter=spec", "tests/fuzz.test.mjs"], {
    cwd: root,
    env: { ...env, FUZZ_BACKEND: "webgpu" },
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const code = await new Promise((resolve) => child.on("close", resolve));
  assert.equal(code, 0, `the fuzz on WebGPU failed:\n${output.slice(-20_000)}`);
  assert.match(output, /on the webgpu backend/, output.slice(-2_000));
  // It ran on the GPU's own paths, not only one kernel at a time.
  assert.match(output, /gpu: fusedDispatches [1-9]/, output.slice(-4_000));
  assert.match(output, /gpu: groupedDispatches [1-9]/, output.slice(-4_000));
});

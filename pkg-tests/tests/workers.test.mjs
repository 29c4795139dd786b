// The runtime in a dedicated module worker, as users run it off the main thread: from a plain
// page served as static files (page/worker.html starts page/worker.js, which imports the installed
// package by URL), and from the Vite app's worker.html built with `worker.format: "es"`, on the
// package's web build and on its bundler build. In the worker, on WebGPU (SwiftShader here), the
// built-in doubler answers 1000 batched round trips (sendBatch of an Int32Array, receiveBatch of
// the packed answers) and 1000 single calls, every answer checked there and reported to the page.
// Without a WebGPU adapter the worker reports why, and the test fails with that reason. The
// README's worker example runs as written too.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { launchChromium } from "../chromium.mjs";
import { startServer } from "../../www/serve.mjs";
import { assertWorkerResult, runWorkerPage } from "./worker-check.mjs";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const installed = join(root, "node_modules", "ringkernel-web");

let browser;
before(async () => {
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
});

test("a plain page runs the runtime in a module worker: 1000 batched round trips and 1000 calls on WebGPU", async () => {
  const { server, url } = await startServer({ routes: { "/": join(root, "page"), "/ringkernel-web/": installed } });
  try {
    assertWorkerResult(await runWorkerPage(browser, `${url}/worker.html`));
  } finally {
    server.close();
  }
});

for (const mode of ["web", "bundler"]) {
  test(`a Vite build (worker.format "es", the ${mode} build) runs the runtime in a module worker`, async () => {
    // Its own output folder: other test files build the same app.
    const out = await mkdtemp(join(tmpdir(), `ringkernel-vite-worker-${mode}-`));
    try {
      const args = ["build", join(root, "vite-app"), "--outDir", out, ...(mode === "bundler" ? ["--mode", "bundler"] : [])];
      await run(join(root, "node_modules", ".bin", "vite"), args, { cwd: root })
        .catch((e) => assert.fail(`vite build failed:\n${e.stdout}${e.stderr}`));
      const { server, url } = await startServer({ routes: { "/": out } });
      try {
        assertWorkerResult(await runWorkerPage(browser, `${url}/worker.html`));
      } finally {
        server.close();
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
}

test("the README's worker example runs as written (a plain page, the worker importing the package by URL)", async () => {
  const readme = await readFile(join(root, "..", "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("\n### Workers\n"), readme.indexOf("\n## The npm package\n"));
  const [worker, main] = [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.ok(worker?.startsWith("// worker.js") && main, "the Workers section has the worker's code, then the page's");
  // As the README says for pages without a bundler: the worker imports the package by its URL.
  const dir = await mkdtemp(join(tmpdir(), "ringkernel-readme-worker-"));
  await writeFile(join(dir, "worker.js"), worker.replaceAll(`"ringkernel-web"`, `"/ringkernel-web/index.js"`));
  await writeFile(join(dir, "index.html"), `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">\n<script type="module">\n${main}</script>\n`);
  const { server, url } = await startServer({ routes: { "/": dir, "/ringkernel-web/": installed } });
  const page = await browser.newPage();
  const errors = [];
  page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
  page.on("pageerror", (e) => errors.push(`pageerror: ${e}`));
  try {
    const logged = page.waitForEvent("console", { predicate: (m) => m.type() === "log", timeout: 120_000 });
    await page.goto(`${url}/index.html`);
    const text = await logged.then((m) => m.text(), () => assert.fail(`nothing logged within 2 minutes; errors: ${errors.join("\n") || "none"}`));
    assert.equal(text, "42");
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

// Vite's dev server (`vite`, not `vite build`) on the Vite app, in headless Chromium on WebGPU,
// with the package installed the two ways the README describes:
// - as the README's install instruction says, word for word: `npm pack` of pkg/ and `npm install`
//   of the tarball, into a fresh app folder (the Vite app's files, no vite config at all);
// - as a link (`npm install ../pkg`, how pkg-tests itself installs it), with the `server.fs.allow`
//   setting the README gives for links (vite-app/vite.config.js).
// Each time the app page runs (the doubler answers 42, ...) and so does the runtime in a module
// worker (1000 batched round trips and 1000 calls, every answer checked).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { cp, lstat, mkdtemp, readFile, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { launchChromium } from "../chromium.mjs";
import { assertWorkerResult, runWorkerPage } from "./worker-check.mjs";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const installed = join(root, "node_modules", "ringkernel-web");
const vite = join(root, "node_modules", ".bin", "vite");

let browser;
before(async () => {
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
});

/**
 * Starts `vite <app>` (the dev server) in `cwd` on a free port, and resolves with its URL once it
 * says it is ready, and a function that stops it. Fails with its output if it exits first.
 */
function startViteDev(cwd, app) {
  const child = spawn(vite, [app, "--port", "0", "--strictPort", "--logLevel", "info"], {
    cwd, env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" }, stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const stop = () => new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", resolve);
    child.kill();
  });
  return new Promise((resolve, reject) => {
    const read = (chunk) => {
      output += chunk;
      const url = output.match(/Local:\s+(http:\/\/\S+?)\/?\s/)?.[1];
      if (url) resolve({ url, stop, output: () => output });
    };
    child.stdout.on("data", read);
    child.stderr.on("data", read);
    child.once("exit", (code, signal) => reject(new Error(`vite exited (${code ?? signal}) before it was ready:\n${output}`)));
  });
}

/** Opens the app page (`?backend=auto`) and resolves with what it recorded, and any page errors. */
async function runApp(url) {
  const page = await browser.newPage();
  const errors = [];
  page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
  page.on("pageerror", (e) => errors.push(`pageerror: ${e}`));
  try {
    await page.goto(`${url}/index.html?backend=auto`);
    await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 120_000 })
      .catch(() => assert.fail(`the app recorded nothing within 2 minutes; page errors: ${errors.join("\n") || "none"}`));
    return { result: await page.evaluate(() => window.__result), errors };
  } finally {
    await page.close();
  }
}

/** The app ran on WebGPU and its answers are right (vite-app/src/app.ts). */
function assertApp({ result, errors }) {
  assert.equal(result.ok, true, `the app failed: ${result.error}`);
  assert.equal(result.value.backend, "browserwebgpu");
  assert.equal(result.value.doubled, 42, "the doubler answered 21 × 2");
  assert.equal(result.value.measured.length, 5);
  assert.deepEqual(result.value.tallies, [1, 3]);
  assert.deepEqual(errors, []);
}

test("`vite` dev with the package installed as the README says (npm pack, npm install of the tarball): the app and a module worker run on WebGPU", async () => {
  const { version } = JSON.parse(await readFile(join(installed, "package.json"), "utf8"));
  const tarball = `ringkernel-web-${version}.tgz`;
  const readme = await readFile(join(root, "..", "README.md"), "utf8");
  const pack = "npm pack path/to/ringkernel-web/pkg";
  const install = `npm install ./${tarball}`;
  for (const command of [pack, install]) assert.ok(readme.includes(`\n${command}`), `the README's install instruction says: ${command}`);

  // A fresh app: package.json, the Vite app's pages and sources, no vite config; and page/ for
  // the worker's checks, where the app's worker imports them from.
  const app = await mkdtemp(join(tmpdir(), "ringkernel-vite-dev-"));
  try {
    await writeFile(join(app, "package.json"), JSON.stringify({ name: "my-app", private: true, type: "module" }));
    for (const file of ["index.html", "worker.html", "src"]) await cp(join(root, "vite-app", file), join(app, "vite-app", file), { recursive: true });
    await cp(join(root, "page", "round-trips.js"), join(app, "page", "round-trips.js"));

    const npm = (args) => run("npm", args, { cwd: app, env: { ...process.env, npm_config_audit: "false", npm_config_fund: "false", npm_config_update_notifier: "false" } })
      .catch((e) => assert.fail(`npm ${args.join(" ")} failed:\n${e.stdout}${e.stderr}`));
    await npm(["pack", await realpath(installed)]); // the README's path/to/ringkernel-web/pkg
    await npm(["install", `./${tarball}`]);
    const copy = join(app, "node_modules", "ringkernel-web");
    assert.equal((await lstat(copy)).isSymbolicLink(), false, "the tarball installs a copy, not a link");

    await checkUnderViteDev(app);
  } finally {
    await rm(app, { recursive: true, force: true });
  }
});

test("`vite` dev with the package linked (npm install ./pkg) and the README's server.fs.allow: the app and a module worker run on WebGPU", async () => {
  assert.equal((await lstat(installed)).isSymbolicLink(), true, "pkg-tests installs ../pkg as a link");
  const config = await readFile(join(root, "vite-app", "vite.config.js"), "utf8");
  assert.match(config, /allow: \[searchForWorkspaceRoot\(.*\), ringkernelWeb\]/, "vite-app allows the link's target");

  await checkUnderViteDev(root);
});

/**
 * Starts `vite` (dev) on `dir`'s vite-app and checks the app and the worker page it serves;
 * a failure carries what vite said.
 */
async function checkUnderViteDev(dir) {
  const server = await startViteDev(dir, "vite-app");
  try {
    assertApp(await runApp(server.url));
    assertWorkerResult(await runWorkerPage(browser, `${server.url}/worker.html`));
  } catch (error) {
    error.message += `\nvite said:\n${server.output()}`;
    throw error;
  } finally {
    await server.stop();
  }
}

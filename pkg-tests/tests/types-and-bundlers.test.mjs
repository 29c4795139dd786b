// The package as TypeScript and bundler users meet it: its package.json points at files that
// exist, its declarations type-check a strict user app and reject misuse, and a Vite app built
// against each of its two builds runs in headless Chromium, on WebGPU and on the cpu backend
// (in a browser without WebGPU, where the default backend must refuse with a helpful error).
// webpack 5 (both builds) and esbuild (the web build, its .wasm copied beside the bundle as the
// README says) bundle a smaller app that runs there too.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFile, readFile, rm, writeFile } from "node:fs/promises";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { launchChromium } from "../chromium.mjs";
import { startServer } from "../../www/serve.mjs";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const installed = join(root, "node_modules", "ringkernel-web");
const bin = (name) => join(root, "node_modules", ".bin", name);
/** Makes the page look like a browser without WebGPU. */
const hideWebGpu = () => Object.defineProperty(Navigator.prototype, "gpu", { get: () => undefined, configurable: true });

let browser;
before(async () => {
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
});

test("package.json: every path it names exists and npm would publish it", async () => {
  const pkg = JSON.parse(await readFile(join(installed, "package.json"), "utf8"));
  for (const key of ["name", "version", "description", "license", "repository", "exports", "types", "sideEffects", "files"]) {
    assert.ok(pkg[key] !== undefined, `package.json has ${key}`);
  }
  assert.equal(pkg.type, "module");
  const exported = Object.values(pkg.exports).flatMap((e) => (typeof e === "string" ? [e] : Object.values(e)));
  const { stdout } = await run("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: installed });
  const packed = new Set(JSON.parse(stdout)[0].files.map((f) => `./${f.path}`));
  for (const file of [...exported, pkg.types, pkg.main, ...pkg.sideEffects].filter((f) => f !== "./package.json")) {
    assert.ok(packed.has(file.startsWith("./") ? file : `./${file}`), `npm pack includes ${file}`);
  }
  assert.ok(packed.has("./bundler/ringkernel_web_bg.wasm") && packed.has("./ringkernel_web_bg.wasm"));
});

test("a strict TypeScript app type-checks against the package's declarations, also without esnext.disposable", async () => {
  for (const config of [join(root, "tsconfig.json"), join(root, "types", "tsconfig.es2022.json")]) {
    await run(bin("tsc"), ["-p", config]).catch((e) => assert.fail(`tsc -p ${config} failed:\n${e.stdout}${e.stderr}`));
  }
});

test("the README's Node example in TypeScript, importing the webgpu package, type-checks with the tsconfig the README gives for it", async () => {
  const readme = await readFile(join(root, "..", "README.md"), "utf8");
  const node = readme.slice(readme.indexOf("\n### Node\n"), readme.indexOf("\n## Rust\n"));
  const block = node.match(/node-dawn\.ts`\), type-checks with:\n\n\s*```json\n([^]*?)\n\s*```/);
  assert.ok(block, "the README's Node section gives the tsconfig that pkg-tests/types/node-dawn.ts type-checks with");
  const config = JSON.parse(block[1]);
  // Written beside the example, so that it resolves the packages as an app there would.
  const file = join(root, "types", "tsconfig.node-dawn.json");
  await writeFile(file, JSON.stringify({ ...config, compilerOptions: { ...config.compilerOptions, noEmit: true }, include: ["node-dawn.ts"] }));
  try {
    await run(bin("tsc"), ["-p", file]).catch((e) => assert.fail(`tsc -p ${file} failed:\n${e.stdout}${e.stderr}`));
  } finally {
    await rm(file, { force: true });
  }
});

test("misuse of the API fails to type-check, on exactly the lines marked misuse", async () => {
  const file = join(root, "types", "misuse.ts");
  const marked = (await readFile(file, "utf8")).split("\n").flatMap((line, i) => (/\/\/ misuse$/.test(line) ? [i + 1] : []));
  const result = await run(bin("tsc"), ["-p", join(root, "types", "tsconfig.json")]).then(
    () => ({ code: 0, stdout: "" }),
    (e) => ({ code: e.code, stdout: e.stdout }),
  );
  assert.notEqual(result.code, 0, "tsc must reject the misuse file");
  const reported = new Set([...result.stdout.matchAll(/misuse\.ts\((\d+),\d+\): error/g)].map((m) => Number(m[1])));
  assert.ok(marked.length >= 20, `${marked.length} misuses`);
  assert.deepEqual([...reported].sort((a, b) => a - b), marked, result.stdout);
});

/** Builds the Vite app in `mode` and serves its output. */
async function viteBuild(mode) {
  const args = ["build", join(root, "vite-app"), ...(mode === "bundler" ? ["--mode", "bundler"] : [])];
  await run(bin("vite"), args, { cwd: root }).catch((e) => assert.fail(`vite build failed:\n${e.stdout}${e.stderr}`));
  return startServer({ routes: { "/": join(root, "vite-app", "dist", mode) } });
}

/** Opens the app and resolves with what it recorded, plus any console errors. */
async function openApp(url, { backend, withoutWebGpu = false }) {
  const page = await browser.newPage();
  const errors = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));
  if (withoutWebGpu) await page.addInitScript(hideWebGpu);
  await page.goto(`${url}/index.html?backend=${backend}`);
  await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 120_000 });
  const result = await page.evaluate(() => window.__result);
  await page.close();
  return { result, errors };
}

/** What the app computes, the same on every backend. */
function checkApp(value) {
  assert.equal(value.doubled, 42);
  assert.equal(value.measured.length, 5);
  assert.deepEqual(value.measured.scaled, [6, 8]);
  assert.deepEqual(value.tallies, [1, 3], "the message with a negative scale is dropped");
  assert.equal(value.dropped, 1);
  assert.equal(value.state, 3, "state counted every message");
  assert.equal(value.processed, 3);
  assert.deepEqual(value.errorNames, [
    "KernelStateError(active)", "KernelNotFoundError", "MessageFormatError(scale)", "TimeoutError",
  ]);
  assert.equal(value.summaryKernels, 3);
  assert.deepEqual(value.operations, {
    level: "normal", purposesAddUp: true, pressureInRange: true, alerts: ["high@0.5"], health: "healthy", circuit: "closed",
  });
}

for (const mode of ["web", "bundler"]) {
  test(`Vite app on the ${mode} build runs on WebGPU and, without WebGPU, on the cpu backend`, async () => {
    const { server, url } = await viteBuild(mode);
    try {
      const gpu = await openApp(url, { backend: "auto" });
      assert.equal(gpu.result.ok, true, gpu.result.error);
      assert.equal(gpu.result.value.backend, "browserwebgpu");
      checkApp(gpu.result.value);
      assert.deepEqual(gpu.errors, []);

      const refused = await openApp(url, { backend: "auto", withoutWebGpu: true });
      assert.equal(refused.result.ok, false);
      assert.match(refused.result.error, /^BackendUnavailableError: .*navigator\.gpu is missing/);
      assert.match(refused.result.error, /enable/i);
      assert.match(refused.result.error, /backend: "cpu"/);

      const cpu = await openApp(url, { backend: "cpu", withoutWebGpu: true });
      assert.equal(cpu.result.ok, true, cpu.result.error);
      assert.equal(cpu.result.value.backend, "cpu");
      checkApp(cpu.result.value);
      assert.deepEqual(cpu.errors, []);
    } finally {
      server.close();
    }
  });
}

/** A page that loads `script` (a module or a classic script) and shows the app's outcome. */
const bundledPage = (script, type) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">` +
  `<script ${type === "module" ? 'type="module"' : "defer"} src="${script}"></script></head>` +
  `<body><pre id="out">running…</pre></body></html>`;

/** Serves `dir` and runs the bundled app there on WebGPU and on the cpu backend. */
async function checkBundled(dir) {
  const { server, url } = await startServer({ routes: { "/": dir } });
  try {
    for (const backend of ["auto", "cpu"]) {
      const { result, errors } = await openApp(url, { backend });
      assert.equal(result.ok, true, result.error);
      assert.deepEqual(result.value, {
        backend: backend === "auto" ? "browserwebgpu" : "cpu", called: 42, accepted: 1000, packedRight: true, objectsRight: true,
      });
      assert.deepEqual(errors, []);
    }
  } finally {
    server.close();
  }
}

const apps = join(root, "bundler-apps");

for (const [entry, build, experiments] of [["main.js", "web", {}], ["main-bundler.js", "bundler", { asyncWebAssembly: true }]]) {
  test(`webpack 5 bundles the ${build} build${build === "web" ? " with no configuration for the wasm" : " with asyncWebAssembly"}, and it runs`, async () => {
    const { default: webpack } = await import("webpack");
    const out = join(apps, "dist", `webpack-${build}`);
    await rm(out, { recursive: true, force: true });
    const stats = await new Promise((resolve, reject) =>
      webpack({ mode: "production", context: apps, entry: `./${entry}`, output: { path: out, filename: "main.js" }, experiments, performance: { hints: false } })
        .run((error, stats) => (error ? reject(error) : resolve(stats))));
    assert.equal(stats.hasErrors(), false, stats.toString("errors-only"));
    assert.deepEqual(stats.compilation.warnings.map(String), [], "no warning about the package");
    assert.ok(Object.keys(stats.compilation.assets).some((name) => name.endsWith(".wasm")), "the .wasm is emitted");
    await writeFile(join(out, "index.html"), bundledPage("main.js", "classic"));
    await checkBundled(out);
  });
}

test("esbuild bundles the web build either way the README says (the .wasm copied beside the bundle, or imported with the file loader), and it runs", async () => {
  const esbuild = await import("esbuild");
  for (const [entry, loader] of [["main.js", {}], ["main-esbuild-file.js", { ".wasm": "file" }]]) {
    const out = join(apps, "dist", `esbuild-${entry.replace(".js", "")}`);
    await rm(out, { recursive: true, force: true });
    const built = await esbuild.build({
      entryPoints: [join(apps, entry)], bundle: true, format: "esm", outdir: out, loader, entryNames: "main", logLevel: "silent",
    });
    assert.deepEqual(built.warnings, []);
    if (entry === "main.js") await copyFile(join(installed, "ringkernel_web_bg.wasm"), join(out, "ringkernel_web_bg.wasm"));
    await writeFile(join(out, "index.html"), bundledPage("main.js", "module"));
    await checkBundled(out);
  }
});

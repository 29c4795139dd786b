// Turns wasm-pack's two outputs into one npm package: the `web` build at the root of pkg/ (the
// default export, `await init()`, works in plain pages, workers, Node and bundlers through
// `new URL(..., import.meta.url)`), and the `bundler` build under pkg/bundler/ (exported as
// `ringkernel-web/bundler`, for bundlers with WebAssembly ESM integration). Each gets its entry
// from src/wasm/js/ (index.js: the error classes, lifetimes.js, iteration.js, display.js, a Node-aware `init`).
//
//   node scripts/npm/finish-package.mjs <pkg dir> <bundler build dir>
//
// Writes package.json with `exports`, `types`, `files` and `sideEffects`, and fails if any file
// the package names does not exist.
import { access, copyFile, cp, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const [pkgDir, bundlerBuild] = process.argv.slice(2);
if (!pkgDir || !bundlerBuild) {
  console.error("usage: finish-package.mjs <pkg dir> <bundler build dir>");
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const stem = "ringkernel_web";

const js = join(here, "..", "..", "src", "wasm", "js"); // the package's hand-written JavaScript

/** The folder (relative to `dir`) where wasm-bindgen put the snippets of src/wasm/js/. */
async function snippetDir(dir) {
  for (const crate of await readdir(join(dir, "snippets"))) {
    const candidate = join("snippets", crate, "src", "wasm", "js");
    if (await access(join(dir, candidate, "errors.js")).then(() => true, () => false)) return candidate;
  }
  throw new Error(`no src/wasm/js snippets under ${join(dir, "snippets")}`);
}

/** Copies a file from src/wasm/js, pointing its imports of "./SNIPPETS/" at `snippets`. */
async function copyEntry(from, to, snippets) {
  const text = await readFile(join(js, from), "utf8");
  await writeFile(to, text.replaceAll("./SNIPPETS/", `./${snippets}/`));
}

/** wasm-bindgen declares `free()` and `[Symbol.dispose]`, which lifetimes.js takes away. */
async function withoutSyncDispose(file) {
  const text = await readFile(file, "utf8");
  await writeFile(file, text.replace(/^ *(\[Symbol\.dispose\]|free)\(\): void;\n/gm, ""));
}

const webSnippets = await snippetDir(pkgDir);
await copyEntry("index.js", join(pkgDir, "index.js"), webSnippets);
await copyEntry("lifetimes.js", join(pkgDir, "lifetimes.js"), webSnippets);
await copyEntry("iteration.js", join(pkgDir, "iteration.js"), webSnippets);
await copyEntry("display.js", join(pkgDir, "display.js"), webSnippets);
await copyFile(join(js, "index.d.ts"), join(pkgDir, "index.d.ts"));
await copyFile(join(js, "errors.d.ts"), join(pkgDir, "errors.d.ts"));
await withoutSyncDispose(join(pkgDir, `${stem}.d.ts`));

const bundlerDir = join(pkgDir, "bundler");
await rm(bundlerDir, { recursive: true, force: true });
await mkdir(bundlerDir, { recursive: true });
for (const file of [`${stem}.js`, `${stem}_bg.js`, `${stem}_bg.wasm`, `${stem}.d.ts`, `${stem}_bg.wasm.d.ts`]) {
  await copyFile(join(bundlerBuild, file), join(bundlerDir, file));
}
await cp(join(bundlerBuild, "snippets"), join(bundlerDir, "snippets"), { recursive: true });
const bundlerSnippets = await snippetDir(bundlerDir);
await copyEntry("bundler-index.js", join(bundlerDir, "index.js"), bundlerSnippets);
await copyEntry("lifetimes.js", join(bundlerDir, "lifetimes.js"), bundlerSnippets);
await copyEntry("iteration.js", join(bundlerDir, "iteration.js"), bundlerSnippets);
await copyEntry("display.js", join(bundlerDir, "display.js"), bundlerSnippets);
await copyFile(join(js, "bundler-index.d.ts"), join(bundlerDir, "index.d.ts"));
await withoutSyncDispose(join(bundlerDir, `${stem}.d.ts`));
// The licences Cargo.toml declares (MIT OR Apache-2.0), shipped with the package.
for (const file of ["LICENSE-MIT", "LICENSE-APACHE"]) {
  await copyFile(join(here, "..", "..", file), join(pkgDir, file));
}

// name, version, description, license, repository and keywords come from Cargo.toml via wasm-pack.
const generated = JSON.parse(await readFile(join(pkgDir, "package.json"), "utf8"));
const pkg = {
  name: generated.name,
  version: generated.version,
  description: generated.description,
  license: generated.license,
  repository: generated.repository,
  keywords: generated.keywords,
  type: "module",
  // Node 20's fs/promises, structuredClone and WebAssembly streaming; the tests run Node 20.
  engines: { node: ">=20" },
  main: "./index.js",
  module: "./index.js",
  types: "./index.d.ts",
  exports: {
    ".": { types: "./index.d.ts", default: "./index.js" },
    "./bundler": { types: "./bundler/index.d.ts", default: "./bundler/index.js" },
    [`./${stem}_bg.wasm`]: `./${stem}_bg.wasm`,
    "./package.json": "./package.json",
  },
  files: ["index.js", "index.d.ts", "errors.d.ts", "lifetimes.js", "iteration.js", "display.js", `${stem}.js`, `${stem}.d.ts`, `${stem}_bg.wasm`,
    `${stem}_bg.wasm.d.ts`, "snippets/", "bundler/", "README.md", "LICENSE-MIT", "LICENSE-APACHE"],
  // lifetimes.js, iteration.js and display.js patch the classes' prototypes; the bundler build
  // instantiates the wasm module (and runs its start function) on import.
  sideEffects: ["./index.js", "./lifetimes.js", "./iteration.js", "./display.js", "./bundler/index.js",
    "./bundler/lifetimes.js", "./bundler/iteration.js", "./bundler/display.js", `./bundler/${stem}.js`, `./bundler/${stem}_bg.js`],
};

const named = [pkg.main, pkg.types, ...Object.values(pkg.exports).flatMap((e) => (typeof e === "string" ? [e] : Object.values(e))),
  ...pkg.files, ...pkg.sideEffects];
for (const file of new Set(named)) {
  await access(join(pkgDir, file)).catch(() => {
    console.error(`package.json names ${file}, which is not in ${pkgDir}`);
    process.exit(1);
  });
}
await writeFile(join(pkgDir, "package.json"), `${JSON.stringify(pkg, null, 2)}\n`);

// The README's links to the repository's own files (MEASURED.md, sources) lead nowhere from
// npm's page or node_modules: point them at the repository.
const readme = join(pkgDir, "README.md");
const repository = (pkg.repository?.url ?? "").replace(/^git\+/, "").replace(/\.git$/, "");
if (repository) {
  const text = await readFile(readme, "utf8");
  await writeFile(readme, text.replace(/\]\((?!https?:|#|mailto:)([^)\s]+)\)/g, `](${repository}/blob/main/$1)`));
}
console.log(`package.json: ${pkg.name}@${pkg.version}, ${named.length} paths checked`);

// Turns wasm-pack's two outputs into one npm package: the `web` build at the root of pkg/ (the
// default export, `await init()`, works in plain pages and in bundlers through
// `new URL(..., import.meta.url)`), and the `bundler` build under pkg/bundler/ (exported as
// `ringkernel-web/bundler`, for bundlers with WebAssembly ESM integration).
//
//   node scripts/npm/finish-package.mjs <pkg dir> <bundler build dir>
//
// Writes package.json with `exports`, `types`, `files` and `sideEffects`, and fails if any file
// the package names does not exist.
import { copyFile, mkdir, readFile, writeFile, access, rm } from "node:fs/promises";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const [pkgDir, bundlerBuild] = process.argv.slice(2);
if (!pkgDir || !bundlerBuild) {
  console.error("usage: finish-package.mjs <pkg dir> <bundler build dir>");
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const stem = "ringkernel_web";

const bundlerDir = join(pkgDir, "bundler");
await rm(bundlerDir, { recursive: true, force: true });
await mkdir(bundlerDir, { recursive: true });
for (const file of [`${stem}.js`, `${stem}_bg.js`, `${stem}_bg.wasm`, `${stem}.d.ts`, `${stem}_bg.wasm.d.ts`]) {
  await copyFile(join(bundlerBuild, file), join(bundlerDir, file));
}
await copyFile(join(here, "bundler-index.js"), join(bundlerDir, "index.js"));
await copyFile(join(here, "bundler-index.d.ts"), join(bundlerDir, "index.d.ts"));
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
  main: `./${stem}.js`,
  module: `./${stem}.js`,
  types: `./${stem}.d.ts`,
  exports: {
    ".": { types: `./${stem}.d.ts`, default: `./${stem}.js` },
    "./bundler": { types: "./bundler/index.d.ts", default: "./bundler/index.js" },
    [`./${stem}_bg.wasm`]: `./${stem}_bg.wasm`,
    "./package.json": "./package.json",
  },
  files: [`${stem}.js`, `${stem}.d.ts`, `${stem}_bg.wasm`, `${stem}_bg.wasm.d.ts`, "bundler/", "README.md", "LICENSE-MIT",
    "LICENSE-APACHE"],
  // The bundler build instantiates the wasm module (and runs its start function) on import.
  sideEffects: ["./bundler/index.js", `./bundler/${stem}.js`, `./bundler/${stem}_bg.js`],
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
console.log(`package.json: ${pkg.name}@${pkg.version}, ${named.length} paths checked`);

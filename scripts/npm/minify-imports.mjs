// Shortens the names under which the wasm imports its JavaScript glue's functions: wasm-bindgen
// names each `__wbg_<what>_<16 hex digits>`, 267 of them, about 4.5 KB of the gzipped package
// that no compressor can shrink. Each becomes `$<base-36 index>`, in the wasm's import section and
// in the glue that provides it (the web build's import object, or the bundler build's
// `ringkernel_web_bg.js` exports), so the pair works exactly as before.
//
//   node scripts/npm/minify-imports.mjs <.wasm> <glue .js>
//
// A snippet's function that the wasm imports from the snippet's own module keeps its name. Fails,
// changing nothing, if the files are not what wasm-bindgen 0.2.130 writes: an import that is not
// a function of the glue module or a snippet, a name the glue does not define, or a new name the
// glue already uses.
import { readFile, rename, writeFile } from "node:fs/promises";
import { basename } from "node:path";

const [wasmPath, gluePath] = process.argv.slice(2);
if (!wasmPath || !gluePath) {
  console.error("usage: minify-imports.mjs <.wasm> <glue .js>");
  process.exit(2);
}
// The module the wasm imports the glue as (wasm-bindgen's `<out-name>_bg.js`).
const glueModule = `./${basename(wasmPath, ".wasm")}.js`;

function fail(message) {
  console.error(`minify-imports: ${message}`);
  process.exit(1);
}

/** Reads an unsigned LEB128 at `at`: [value, next offset]. */
function leb(bytes, at) {
  let value = 0, shift = 0, byte;
  do {
    byte = bytes[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [value, at];
}

/** Writes an unsigned LEB128. */
function uleb(value) {
  const out = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    out.push(byte);
  } while (value > 0);
  return out;
}

const utf8 = new TextEncoder();
const text = new TextDecoder("utf-8", { fatal: true });
const name = (s) => [...uleb(utf8.encode(s).length), ...utf8.encode(s)];

const wasm = await readFile(wasmPath);
let glue = await readFile(gluePath, "utf8");

// Rebuild the import section (id 2) with the new names; every other section is copied.
const out = [wasm.subarray(0, 8)]; // byte arrays, joined at the end
const renamed = new Map(); // old name -> new name
for (let at = 8; at < wasm.length; ) {
  const id = wasm[at];
  const [size, body] = leb(wasm, at + 1);
  const end = body + size;
  if (id !== 2) {
    out.push(wasm.subarray(at, end));
    at = end;
    continue;
  }
  let [count, p] = leb(wasm, body);
  const section = [...uleb(count)];
  for (let i = 0; i < count; i++) {
    let length;
    [length, p] = leb(wasm, p);
    const module = text.decode(wasm.subarray(p, p + length));
    p += length;
    [length, p] = leb(wasm, p);
    const field = text.decode(wasm.subarray(p, p + length));
    p += length;
    const kind = wasm[p++];
    if (kind !== 0) fail(`import ${i} (${module} ${field}) is not a function`);
    const start = p;
    [, p] = leb(wasm, p); // the function's type index
    if (module !== glueModule) {
      // A snippet's function that needs no glue (wasm-bindgen imports it from its own module,
      // e.g. ./snippets/.../envelope.js): it keeps its own name, which its module defines.
      if (!module.startsWith("./snippets/")) fail(`import ${i} (${module} ${field}) is neither the glue's nor a snippet's`);
      section.push(...name(module), ...name(field), kind, ...wasm.subarray(start, p));
      continue;
    }
    const short = `$${i.toString(36)}`;
    if (renamed.has(field)) fail(`${field} is imported twice`);
    renamed.set(field, short);
    section.push(...name(module), ...name(short), kind, ...wasm.subarray(start, p));
  }
  if (p !== end) fail("the import section has bytes after its imports");
  out.push(Uint8Array.from([id, ...uleb(section.length), ...section]));
  at = end;
}
if (renamed.size === 0) fail(`${wasmPath} imports nothing from ${glueModule}`);

// The same names in the glue, as whole identifiers (`$` and word characters around them are part
// of another name).
const token = (s) => new RegExp(`(?<![\\w$])${s.replace(/[$\\^.*+?()[\]{}|]/g, "\\$&")}(?![\\w$])`, "g");
for (const [old, short] of renamed) {
  if (token(short).test(glue)) fail(`${gluePath} already uses the name ${short}`);
}
for (const [old, short] of renamed) {
  const before = glue;
  glue = glue.replace(token(old), () => short);
  if (glue === before) fail(`${gluePath} does not define the import ${old}`);
}

/** Replaces `path` by a new file (not writing through a hard link another build shares). */
async function replace(path, contents) {
  await writeFile(`${path}.minified`, contents);
  await rename(`${path}.minified`, path);
}
await replace(wasmPath, Buffer.concat(out));
await replace(gluePath, glue);
console.log(`minify-imports: ${renamed.size} import names shortened in ${wasmPath} and ${gluePath}`);

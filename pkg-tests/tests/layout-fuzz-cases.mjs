// Random message layouts through the installed package, for tests/layout-fuzz.test.mjs:
// `node tests/layout-fuzz-cases.mjs <seed> <cases> <cpu|webgpu>` prints one JSON line,
// { cases, drawn, messages, refusals, failures }. Each case defines a random layout with `defineMessage`
// (i32, u32, f32, vectors, arrays of any of them, arrays of arrays, nested messages by description
// and by name, arrays of those, up to 50-odd fields, odd names such as `constructor`, `then` and
// `valueOf`), launches an echo kernel of it (a JavaScript handler on the cpu backend, WGSL on a
// GPU) and sends random messages (edge numbers: -0, NaN, ±Infinity, subnormals, numbers past
// f32's range, i32 and u32 bounds; vectors and numeric arrays as arrays, typed arrays, or element
// by element) every way there is: `sendBatch` of objects (the layout's JavaScript codec), of
// objects the codec leaves to the core (class instances), of bytes packed here from a layout
// computed here, `send`, `call`, `sendEnvelope`, a handle's `trySend`; the answers come back as
// objects (`receiveBatch`, `receive`, `call`, `receiveEnvelope`, `answers()`) and as bytes
// (`receiveBatch({ packed: true })`), each compared with what the README says they are (f32s as
// a Float32Array rounds them, vectors as arrays, numeric arrays as flat typed arrays). Then
// messages spoilt in one field (missing, extra, out of range, not integral, of the wrong type,
// of the wrong length) must be refused with a MessageFormatError naming that field's path,
// alone or anywhere in a batch, counted once each as an error, and leave nothing queued. On the
// cpu backend a second kernel's JavaScript handler changes every number and answers in the
// other shapes the package takes (typed arrays for vectors, arrays for numeric arrays). Run with
// --disallow-code-generation-from-strings, no codec is compiled and the core does all of it.
import init, { RingKernelRuntime, defineMessage } from "ringkernel-web";

const [seed = 1, cases = 20, backend = "cpu"] = process.argv.slice(2).map((a, i) => (i < 2 ? Number(a) : a));
if (backend === "webgpu") {
  const { create, globals } = await import("webgpu");
  Object.assign(globalThis, globals);
  globalThis.navigator = { gpu: create([]) };
}
await init();

// ---- a seeded generator (mulberry32) ----
let state = seed >>> 0;
function rand() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(rand() * n);
const pick = (list) => list[int(list.length)];

// ---- random layouts, and their WGSL layout computed here ----
const SCALARS = ["i32", "u32", "f32"];
const NAMES = ["a", "x", "value", "Z9", "_under", "t_1_", "min", "state", "read", "constructor", "toString", "valueOf",
  "hasOwnProperty", "length", "then", "prototype", "isPrototypeOf", "mass", "A", "f32", "i32", "vec3", "array", "msg", "out"];
let structCount = 0;

/** A type: { kind, scalar, n, element, len, layout } and its WGSL text. */
function randomType(depth) {
  const r = int(depth > 3 ? 2 : 5);
  if (r === 0) return { kind: "scalar", scalar: pick(SCALARS) };
  if (r === 1) return { kind: "vector", scalar: pick(SCALARS), n: 2 + int(3) };
  if (r === 2 || r === 3) {
    const len = rand() < 0.8 ? 1 + int(4) : 5 + int(20);
    return { kind: "array", element: randomType(depth + 1), len };
  }
  return { kind: "struct", layout: randomLayout(depth + 1, rand() < 0.1 ? 17 + int(20) : 1 + int(5)) };
}

function randomLayout(depth, fields) {
  const name = `${pick(["S", "_s", "Msg", "x_", "Zz"])}${seed}_${structCount++}`;
  const list = [];
  for (let i = 0; i < fields; i++) {
    let field = rand() < 0.75 ? pick(NAMES) : `f${int(100000)}`;
    if (list.some((f) => f.name === field)) field = `${field}_${i}`;
    list.push({ name: field, type: randomType(depth) });
  }
  return lay(name, list);
}

const align = (t) =>
  t.kind === "scalar" ? 4 : t.kind === "vector" ? (t.n === 2 ? 8 : 16) : t.kind === "array" ? align(t.element) : t.layout.align;
const size = (t) =>
  t.kind === "scalar" ? 4 : t.kind === "vector" ? 4 * t.n : t.kind === "array" ? t.len * stride(t.element) : t.layout.size;
const stride = (t) => Math.ceil(size(t) / align(t)) * align(t);
const roundUp = (v, a) => Math.ceil(v / a) * a;

function lay(name, fields) {
  let offset = 0;
  let a = 4;
  for (const f of fields) {
    offset = roundUp(offset, align(f.type));
    f.offset = offset;
    offset += size(f.type);
    a = Math.max(a, align(f.type));
  }
  const layout = { name, fields, size: roundUp(offset, a), align: a };
  // defineMessage: nested messages by description, or by name in a type string.
  const spec = {};
  for (const f of fields) spec[f.name] = typeSpec(f.type, true);
  layout.message = defineMessage(name, spec);
  return layout;
}

function typeText(t) {
  switch (t.kind) {
    case "scalar":
      return t.scalar;
    case "vector":
      return `vec${t.n}<${t.scalar}>`;
    case "array":
      return `array<${typeText(t.element)}, ${t.len}>`;
    default:
      return t.layout.name;
  }
}

function typeSpec(t, top) {
  if (t.kind === "struct" && top && rand() < 0.5) return t.layout.message;
  return typeText(t);
}

const numeric = (t) => (t.kind === "scalar" || t.kind === "vector" ? t.scalar : t.kind === "array" ? numeric(t.element) : undefined);
const count = (t) => (t.kind === "scalar" ? 1 : t.kind === "vector" ? t.n : t.len * count(t.element));

/** Each number of a type: [scalar, byte offset], in memory order. */
function leaves(t, at, out) {
  if (t.kind === "scalar") out.push([t.scalar, at]);
  else if (t.kind === "vector") for (let k = 0; k < t.n; k++) out.push([t.scalar, at + 4 * k]);
  else if (t.kind === "array") for (let i = 0; i < t.len; i++) leaves(t.element, at + i * stride(t.element), out);
  else for (const f of t.layout.fields) leaves(f.type, at + f.offset, out);
  return out;
}

// ---- random values ----
const EDGE = {
  i32: [0, 1, -1, -2147483648, 2147483647, -0],
  u32: [0, 1, 4294967295, 2147483648, -0],
  f32: [0, -0, NaN, Infinity, -Infinity, 1e-45, -1.1754942e-38, 1.17549435e-38, 3.4028235e38, 3.5e38, -1e39, 1e-46, 0.1, 1 / 3],
};
function number(scalar) {
  if (rand() < 0.5) return pick(EDGE[scalar]);
  if (scalar === "i32") return int(4294967296) - 2147483648;
  if (scalar === "u32") return int(4294967296);
  return (rand() - 0.5) * 10 ** (int(20) - 10);
}

/** A random message object of `t`, given in any of the shapes the package takes. */
function value(t) {
  switch (t.kind) {
    case "scalar":
      return number(t.scalar);
    case "vector": {
      const v = Array.from({ length: t.n }, () => number(t.scalar));
      return rand() < 0.2 ? typedOf(t.scalar, v) : v;
    }
    case "array": {
      const s = numeric(t);
      if (s && rand() < 0.7) {
        const flat = Array.from({ length: count(t) }, () => number(s));
        return rand() < 0.3 ? typedOf(s, flat) : flat;
      }
      return Array.from({ length: t.len }, () => value(t.element));
    }
    default: {
      const o = {};
      for (const f of t.layout.fields) o[f.name] = value(f.type);
      return o;
    }
  }
}
const typedOf = (scalar, numbers) => (scalar === "f32" ? Float32Array : scalar === "i32" ? Int32Array : Uint32Array).from(numbers);

/** The numbers of a message value in memory order (flattening any of its shapes). */
function numbers(t, v, out) {
  if (t.kind === "scalar") out.push(v);
  else if (t.kind === "struct") for (const f of t.layout.fields) numbers(f.type, v[f.name], out);
  else if (t.kind === "vector" || (numeric(t) && v.length === count(t) && typeof v[0] === "number")) out.push(...v);
  else for (let i = 0; i < t.len; i++) numbers(t.element, v[i], out);
  return out;
}

/** The bytes a message packs to, computed here. */
function pack(layout, message, bytes, at) {
  const type = { kind: "struct", layout };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ns = numbers(type, message, []);
  leaves(type, 0, []).forEach(([scalar, offset], i) => {
    if (scalar === "f32") view.setFloat32(at + offset, ns[i], true);
    else view.setUint32(at + offset, ns[i] >>> 0, true);
  });
}

/** What the package answers for a message: f32s rounded, vectors as arrays, numeric arrays flat typed arrays. */
function expected(t, v) {
  switch (t.kind) {
    case "scalar":
      return t.scalar === "f32" ? Math.fround(v) : t.scalar === "u32" ? v >>> 0 : v | 0;
    case "vector":
      return numbers(t, v, []).map((n) => expected({ kind: "scalar", scalar: t.scalar }, n));
    case "array": {
      const s = numeric(t);
      if (s) return typedOf(s, numbers(t, v, []));
      return Array.from({ length: t.len }, (_, i) => expected(t.element, v[i]));
    }
    default: {
      const o = {};
      for (const f of t.layout.fields) o[f.name] = expected(f.type, v[f.name]);
      return o;
    }
  }
}

/** Where `got` differs from `want` (Object.is for numbers, so -0 and NaN count), or null. */
function differ(got, want, path = "") {
  if (typeof want === "number") return Object.is(got, want) ? null : `${path}: ${got} for ${want}`;
  if (ArrayBuffer.isView(want)) {
    if (Object.getPrototypeOf(got ?? {}) !== Object.getPrototypeOf(want)) return `${path}: a ${Object.prototype.toString.call(got)} for a ${want.constructor.name}`;
  } else if (Array.isArray(want)) {
    if (!Array.isArray(got)) return `${path}: ${typeof got} for an array`;
  } else {
    if (got === null || typeof got !== "object" || Object.getPrototypeOf(got) !== Object.prototype) return `${path}: not a plain object`;
    const [gk, wk] = [Object.keys(got), Object.keys(want)];
    if (gk.join() !== wk.join()) return `${path}: keys ${gk} for ${wk}`;
    for (const k of wk) {
      const d = differ(got[k], want[k], `${path}.${k}`);
      if (d) return d;
    }
    return null;
  }
  if (got.length !== want.length) return `${path}: length ${got.length} for ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    const d = differ(got[i], want[i], `${path}[${i}]`);
    if (d) return d;
  }
  return null;
}

/** Every number of `v` changed: i32 bits inverted, u32 plus a constant (wrapping), f32 negated; `swap` gives numeric arrays as arrays and vectors as typed arrays. */
function flip(t, v, swap) {
  switch (t.kind) {
    case "scalar":
      return t.scalar === "i32" ? ~v : t.scalar === "u32" ? (v + 0x9e3779b9) >>> 0 : -v;
    case "vector": {
      const out = v.map((n) => flip({ kind: "scalar", scalar: t.scalar }, n));
      return swap ? typedOf(t.scalar, out) : out;
    }
    case "array": {
      const s = numeric(t);
      if (s) {
        const out = Array.from(v, (n) => flip({ kind: "scalar", scalar: s }, n));
        return swap ? out : typedOf(s, out);
      }
      return v.map((e) => flip(t.element, e, swap));
    }
    default: {
      const o = {};
      for (const f of t.layout.fields) o[f.name] = flip(f.type, v[f.name], swap);
      return o;
    }
  }
}

const sameBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
/** The core reads a class instance's fields; the codec leaves it to the core. */
const forCore = (o) => Object.assign(new (class Message {})(), o);

/** Spoils one field of message `m` (of `layout`, at `path`; nested messages at random): the path a refusal names. */
function spoil(layout, m, path) {
  const join = (name) => (path ? `${path}.${name}` : name);
  const nested = layout.fields.filter((f) => f.type.kind === "struct" || (f.type.kind === "array" && !numeric(f.type)));
  if (nested.length && rand() < 0.5) {
    const f = pick(nested);
    let [t, v, p] = [f.type, m, join(f.name)];
    let key = f.name;
    while (t.kind === "array") {
      v = v[key];
      key = int(t.len);
      p = `${p}[${key}]`;
      t = t.element;
    }
    if (t.kind === "struct") return spoil(t.layout, v[key], p);
  }
  const f = pick(layout.fields);
  const t = f.type;
  const r = int(6);
  if (r === 0) {
    delete m[f.name];
    return join(f.name);
  }
  if (r === 1) {
    m.zz_extra = 1;
    return join("zz_extra");
  }
  if (r === 2 && t.kind === "scalar" && t.scalar !== "f32") {
    m[f.name] = pick(t.scalar === "i32" ? [2147483648, -2147483649, 0.5, NaN, Infinity] : [-1, 4294967296, 0.5, NaN, -Infinity]);
    return join(f.name);
  }
  if (r === 3 && numeric(t) && t.kind !== "scalar") {
    m[f.name] = Array.from({ length: count(t) + (rand() < 0.5 ? 1 : -1) }, () => 0);
    return join(f.name);
  }
  if (r === 4 && numeric(t) && numeric(t) !== "f32" && t.kind !== "scalar") {
    const list = Array.from({ length: count(t) }, () => 0);
    const i = int(list.length);
    list[i] = pick([0.5, -4294967296, NaN]);
    m[f.name] = list;
    return `${join(f.name)}[${i}]`;
  }
  // (A Date or a Map is read as an object with no fields: for a nested message, its first field is missing.)
  m[f.name] = pick(["1", true, null, undefined, 1n, Symbol("s"), () => 1, ...(t.kind === "struct" ? [] : [new Date(0)])]);
  return join(f.name);
}

// ---- the fuzz ----
let refusals = 0;
const failures = [];
let messages = 0;
const runtime = await RingKernelRuntime.create({ backend });
const fail = (what) => failures.length < 20 && failures.push(what);
// `cases` layouts of at most 2,048 bytes are run; larger ones (about half of those drawn) are
// drawn again rather than counted.
let drawn = 0;
for (let ran = 0; ran < cases; ) {
  const layout = randomLayout(0, rand() < 0.15 ? 17 + int(40) : 1 + int(10));
  if (++drawn > 50 * cases) throw new Error(`${drawn} layouts drawn for ${ran} of ${cases} cases`);
  if (layout.size > 2048) continue;
  const c = ran++;
  const type = { kind: "struct", layout };
  const id = `echo${seed}_${c}`;
  const definition = { input: layout.message, output: layout.message };
  if (backend === "cpu") definition.handler = (m) => m;
  else definition.wgsl = `fn handle(msg: ${layout.name}) -> ${layout.name} { return msg; }`;
  const kernel = await runtime.launch(id, definition, { autoActivate: true, queueSize: 64 });
  const batch = Array.from({ length: 1 + int(6) }, () => value(type));
  const want = batch.map((m) => expected(type, m));
  const packed = new Uint8Array(layout.size * batch.length);
  batch.forEach((m, i) => pack(layout, m, packed, i * layout.size));
  const check = (how, answers) => {
    answers.forEach((a, i) => {
      const d = differ(a, want[i]);
      if (d) fail(`${layout.name} ${how} [${i}]${d}`);
    });
    messages += answers.length;
  };
  const checkBytes = (how, bytes) => {
    if (!sameBytes(bytes, packed)) {
      const at = bytes.findIndex((b, i) => b !== packed[i]);
      fail(`${layout.name} ${how}: bytes differ at ${at} of ${packed.length}`);
    }
  };
  const receive = (packedToo) => kernel.receiveBatch({ max: batch.length, timeout: 20000, packed: packedToo });
  // Objects in (the codec), objects out.
  await kernel.sendBatch(batch, { timeout: 20000 });
  check("sendBatch objects", await receive(false));
  // Objects in for the core, bytes out.
  await kernel.sendBatch(batch.map(forCore), { timeout: 20000 });
  checkBytes("sendBatch for the core, packed out", await receive(true));
  // Objects in, bytes out.
  await kernel.sendBatch(batch, { timeout: 20000 });
  checkBytes("sendBatch objects, packed out", await receive(true));
  // Bytes in, objects out.
  await kernel.sendBatch(packed, { timeout: 20000 });
  check("sendBatch packed", await receive(false));
  // One by one, and calls.
  for (const m of batch) await kernel.send(m, { timeout: 20000 });
  const single = [];
  for (let i = 0; i < batch.length; i++) single.push(await kernel.receive({ timeout: 20000 }));
  check("send/receive", single);
  check("call", await Promise.all(batch.map((m) => kernel.call(m, { timeout: 20000 }))));
  // Envelopes, a handle's trySend, and the answers as an async iterable.
  for (const m of batch) await kernel.sendEnvelope(m, { timeout: 20000 });
  const enveloped = [];
  for (let i = 0; i < batch.length; i++) enveloped.push((await kernel.receiveEnvelope({ timeout: 20000 })).message);
  check("sendEnvelope/receiveEnvelope", enveloped);
  for (const m of batch) kernel.trySend(m);
  const iterated = [];
  for await (const answer of kernel.answers({ timeout: 20000 })) if (iterated.push(answer) === batch.length) break;
  check("trySend/answers()", iterated);
  check("call for the core", await Promise.all(batch.map((m) => kernel.call(forCore(m), { timeout: 20000 }))));
  // Refusals: one message spoilt in one field, alone and in a batch, is refused by its path,
  // and nothing of it is queued.
  for (let r = 0; r < 4; r++) {
    const good = Array.from({ length: 3 }, () => value(type));
    const k = int(good.length);
    const spoilt = structuredClone(good);
    const path = spoil(layout, spoilt[k], "");
    const refusal = async (how, promise, field) => {
      try {
        await promise;
        fail(`${layout.name} ${how}: ${field} was taken`);
      } catch (e) {
        if (e?.name !== "MessageFormatError" || e.field !== field) fail(`${layout.name} ${how}: ${e?.name} ${e?.field} (${e?.message}) for ${field}`);
      }
    };
    const counted = kernel.metrics();
    await refusal("sendBatch", kernel.sendBatch(spoilt, { timeout: 20000 }), `[${k}].${path}`);
    await refusal("sendBatch for the core", kernel.sendBatch(spoilt.map(forCore), { timeout: 20000 }), `[${k}].${path}`);
    await refusal("send", kernel.send(spoilt[k], { timeout: 20000 }), path);
    await refusal("call", kernel.call(spoilt[k], { timeout: 20000 }), path);
    try {
      kernel.trySend(spoilt[k]);
      fail(`${layout.name} trySend: ${path} was taken`);
    } catch (e) {
      if (e?.name !== "MessageFormatError" || e.field !== path) fail(`${layout.name} trySend: ${e?.name} ${e?.field} for ${path}`);
    }
    // Each refusal counted once as an error, and no message as sent.
    const now = kernel.metrics();
    if (now.errors !== counted.errors + 5 || now.messagesSent !== counted.messagesSent) {
      fail(`${layout.name} refusals counted: errors ${counted.errors} → ${now.errors}, sent ${counted.messagesSent} → ${now.messagesSent}`);
    }
    await kernel.sendBatch(good, { timeout: 20000 });
    const answers = await kernel.receiveBatch({ max: 100, timeout: 20000 });
    if (answers.length !== good.length) fail(`${layout.name} after refusals: ${answers.length} answers for ${good.length}`);
    answers.forEach((a, i) => {
      const d = differ(a, expected(type, good[i]));
      if (d) fail(`${layout.name} after refusals [${i}]${d}`);
    });
    if (kernel.tryReceive() !== null) fail(`${layout.name} after refusals: an answer too many`);
    refusals++;
  }
  await kernel.terminate({ timeout: 20000 });
  // A handler that changes every number, answering with arrays where it was given typed arrays
  // (and the other way round for vectors): its answers packed by the output layout's codec (or
  // the core's writer), and each number changed as the handler says.
  if (backend === "cpu") {
    const flipper = await runtime.launch(`flip${seed}_${c}`, { input: layout.message, output: layout.message, handler: (m) => flip(type, m, true) }, { autoActivate: true, queueSize: 64 });
    const answers = await Promise.all(batch.map((m) => flipper.call(m, { timeout: 20000 })));
    messages += answers.length;
    answers.forEach((a, i) => {
      const d = differ(a, flip(type, want[i], false));
      if (d) fail(`${layout.name} flipped [${i}]${d}`);
    });
    await flipper.terminate({ timeout: 20000 });
  }
}
await runtime.dispose();
console.log(JSON.stringify({ cases, drawn, messages, refusals, failures }));

// Message objects ↔ packed bytes, in JavaScript, one codec per message layout.
//
// Crossing into wasm once per field made objects ten times slower than typed arrays. A codec is
// JavaScript generated from the layout (one typed-array access per field, object literals of a
// fixed shape), so V8 runs it at typed-array speed. It is a fast path, never a second set of
// rules: the encoder only writes messages it can vouch for (plain objects whose fields are all
// present, of the right kind and in range) and otherwise says which message stopped it; the
// caller then hands the batch to the core, which refuses the bad message by its field path and
// counts it. The decoder gives the same shapes as the core: numbers for scalars, arrays of
// numbers for vectors, typed arrays for numeric arrays, objects and arrays of objects for nested
// messages.
//
// Where code generation is refused (a Content-Security-Policy without 'unsafe-eval'),
// `compileCodec` returns null and every message takes the core's path.

/**
 * Compiles a codec from a layout description `{ name, size, fields: [{ name, offset, type }] }`,
 * types being `{ kind: "scalar", scalar }`, `{ kind: "vector", scalar, n }`,
 * `{ kind: "array", element, len, stride }` or `{ kind: "struct", layout }`, over the wasm
 * module's `memory`, where the messages it packs and the answers it reads lie.
 * @returns {Codec | null}
 */
export function compileCodec(layout, memory) {
  try {
    const stride = layout.size / 4; // words per message
    const names = new FieldNames();
    const encodeOne = new Source("return false", names).encodeObject(layout, "m", "b");
    const encodeAll = new Source("return j", names).encodeObject(layout, "m", "b");
    // Generated functions see only globals, so the one helper they call comes in as an argument.
    const encoders = new Function("isNumberList", `${names.declarations()}
return [function encodeOne(m, U, I, F, b) {
${encodeOne}return true; },
function encodeAll(ms, U, I, F, count, b) {
for (let j = 0; j < count; j++, b += ${stride}) { const m = ms[j];
${encodeAll}}
return count; }];`);
    const decoders = new Function(`
return [function decodeOne(U, I, F, b) { return ${new Source().decodeObject(layout, "b")}; },
function decodeAll(U, I, F, count, b) {
const out = new Array(count);
for (let j = 0; j < count; j++, b += ${stride}) out[j] = ${new Source().decodeObject(layout, "b")};
return out; }];`);
    return new Codec(layout.size, memory, ...encoders(isNumberList), ...decoders());
  } catch (error) {
    if (error instanceof EvalError) return null; // no code generation here: the core's path
    throw error;
  }
}

/**
 * Encoders and decoders of one layout, reading and writing wasm memory at a byte address
 * through 32-bit views of all of it, made once (and again when the memory grows): a view per
 * call cost ~0.3 µs, a tenth of a `send`. A batch's loop is generated with the layout's code
 * inside it, not a call per message: with several layouts on a page a shared loop's call would
 * see them all, and V8 would stop inlining it (nested messages 25% slower, one-field ones 30%).
 */
class Codec {
  constructor(size, memory, encodeOne, encodeAll, decodeOne, decodeAll) {
    this.size = size;
    this.memory = memory;
    this.encodeOneAt = encodeOne;
    this.encodeAllAt = encodeAll;
    this.decodeOneAt = decodeOne;
    this.decodeAllAt = decodeAll;
  }

  /**
   * Packs an array of message objects at `at` (zeroed, exactly their size): how many it
   * packed, all of them or (less) the index of the first one the fast path cannot vouch for
   * (the caller lets the core judge the batch).
   */
  encodeInto(messages, at) {
    if (at % 4 !== 0) return 0; // the 32-bit views need alignment: the core packs these
    const { buffer, U, I, F } = words(this.memory.buffer);
    try {
      const packed = this.encodeAllAt(messages, U, I, F, messages.length, at >>> 2);
      // A getter that called into wasm may have grown its memory: the views then wrote nowhere.
      return buffer === this.memory.buffer ? packed : 0;
    } catch {
      return 0; // a getter or a Proxy's trap threw: the core reads the batch and refuses it
    }
  }

  /**
   * Packs one message object at `at` (zeroed, exactly its size): whether the fast path vouched
   * for it (else the caller lets the core judge it).
   */
  encodeOne(message, at) {
    if (at % 4 !== 0) return false;
    const { buffer, U, I, F } = words(this.memory.buffer);
    try {
      // As in `encodeInto`: memory grown meanwhile leaves the core to pack the message.
      return this.encodeOneAt(message, U, I, F, at >>> 2) && buffer === this.memory.buffer;
    } catch {
      return false; // a getter or a Proxy's trap threw: the core reads the message and refuses it
    }
  }

  /** Every message in the `length` bytes at `at` (packed back to back) as objects. */
  decodeBatch(at, length) {
    const count = length / this.size;
    if (at % 4 !== 0) {
      const { U, I, F } = copied(this.memory, at, length); // the 32-bit views need alignment
      return this.decodeAllAt(U, I, F, count, 0);
    }
    const { U, I, F } = words(this.memory.buffer);
    return this.decodeAllAt(U, I, F, count, at >>> 2);
  }

  /** The one message at `at` as an object. */
  decodeOne(at) {
    if (at % 4 !== 0) {
      const { U, I, F } = copied(this.memory, at, this.size);
      return this.decodeOneAt(U, I, F, 0);
    }
    const { U, I, F } = words(this.memory.buffer);
    return this.decodeOneAt(U, I, F, at >>> 2);
  }
}

/** The wasm memory's views, kept while its buffer is the same (growing the memory replaces it). */
let viewed = { buffer: null };

/** The views of `buffer` (the wasm memory's now): the kept ones, or new ones if it was replaced. */
function words(buffer) {
  if (viewed.buffer !== buffer) viewed = wordViews(buffer);
  return viewed;
}

/** Views of a copy of the `length` bytes at `at`. */
function copied(memory, at, length) {
  return wordViews(new Uint8Array(memory.buffer, at, length).slice().buffer);
}

/** A buffer as the three 32-bit views generated code reads and writes: U, I and F. */
function wordViews(buffer) {
  const length = buffer.byteLength >>> 2;
  return { buffer, U: new Uint32Array(buffer, 0, length), I: new Int32Array(buffer, 0, length), F: new Float32Array(buffer, 0, length) };
}

/** The view a scalar is read and written through. */
const VIEW = { i32: "I", u32: "U", f32: "F" };
const TYPED_ARRAY = { i32: "Int32Array", u32: "Uint32Array", f32: "Float32Array" };

/** The most fields whose names a generated encoder checks with a switch. */
const MOST_CASES = 16;

/**
 * The Sets of field names that generated encoders check a message's keys against, one per
 * layout of more than `MOST_CASES` fields, made once per codec. A switch over the
 * names is faster for a few fields, but it is one comparison per case: F keys against F cases
 * made a message of 1,600 fields cost 8 ms.
 */
class FieldNames {
  constructor() {
    this.sets = new Map(); // layout → the constant's name
  }

  /** The name of the constant Set of `layout`'s field names. */
  of(layout) {
    let name = this.sets.get(layout);
    if (name === undefined) {
      name = `NAMES${this.sets.size}`;
      this.sets.set(layout, name);
    }
    return name;
  }

  /** The constants' declarations, to put before the generated functions. */
  declarations() {
    const declare = ([layout, name]) => `const ${name} = new Set(${JSON.stringify(layout.fields.map((field) => field.name))});`;
    return [...this.sets].map(declare).join("\n");
  }
}

/**
 * Writes the bodies of the generated functions. Word offsets are expressions in `b`, the
 * message's first word; variables get fresh names so nested loops never shadow each other. `fail` is the statement an encoder runs on a message it cannot vouch for
 * (`return false` for one message, `return j`, its index, in a batch).
 */
class Source {
  constructor(fail, names) {
    this.next = 0;
    this.fail = fail;
    this.names = names;
  }

  fresh(stem) {
    return `${stem}${this.next++}`;
  }

  // ----- encoding: `fail` for anything the core might judge differently -------------------

  /** Checks that `value` is a plain object with exactly the layout's fields, and writes them. */
  encodeObject(layout, value, base) {
    const [keys, key] = [this.fresh("k"), this.fresh("key")];
    // Plain objects only (their constructor is Object: a class instance or an object without a
    // prototype goes to the core), whose enumerable keys, own and inherited, as for...in lists
    // them and as the core reads them (`fieldEntries`), are exactly the layout's fields: a
    // misspelt extra one is the core's to refuse. Reading `constructor` is much cheaper than
    // asking for the prototype (twice the time of a one-field batch), and for...in allocates
    // nothing; its keys are interned, so each case of the switch is one comparison. Past a few
    // fields, a Set of the names (see `FieldNames`).
    const check =
      layout.fields.length > MOST_CASES
        ? `if (!${this.names.of(layout)}.has(${key})) ${this.fail};`
        : `switch (${key}) { ${layout.fields.map((field) => `case ${JSON.stringify(field.name)}: `).join("")}break; default: ${this.fail}; }`;
    let code = `if (typeof ${value} !== "object" || ${value} === null || ${value}.constructor !== Object) ${this.fail};
let ${keys} = 0;
for (const ${key} in ${value}) { ${check} ${keys}++; }
if (${keys} !== ${layout.fields.length}) ${this.fail};
`;
    for (const field of layout.fields) {
      const v = this.fresh("v");
      code += `const ${v} = ${value}[${JSON.stringify(field.name)}];\n`;
      code += this.encodeField(field.type, v, `${base} + ${field.offset / 4}`);
    }
    return code;
  }

  encodeField(type, v, at) {
    switch (type.kind) {
      case "scalar":
        return `${scalarCheck(type.scalar, v, this.fail)}${VIEW[type.scalar]}[${at}] = ${v};\n`;
      case "struct":
        return `{ ${this.encodeObject(type.layout, v, at)}}\n`;
      case "vector":
      case "array": {
        const scalar = numericScalar(type);
        if (scalar) return this.encodeNumbers(type, scalar, v, at);
        // An array of messages or of arrays of messages: one element at a time.
        const i = this.fresh("i");
        const e = this.fresh("e");
        return `if (!Array.isArray(${v}) || ${v}.length !== ${type.len}) ${this.fail};
for (let ${i} = 0; ${i} < ${type.len}; ${i}++) { const ${e} = ${v}[${i}];
${this.encodeField(type.element, e, `${at} + ${i} * ${type.stride / 4}`)}}\n`;
      }
      default:
        throw new Error(`unknown field kind ${type.kind}`);
    }
  }

  /** A vector or numeric array from one flat list of numbers (an array or a 32-bit typed array). */
  encodeNumbers(type, scalar, v, at) {
    return `if (!isNumberList(${v}) || ${v}.length !== ${countOf(type)}) ${this.fail};
${this.writeNumbers(type, scalar, v, "0", at)}`;
  }

  /** Writes `type` from `v[index...]` (memory order, padding skipped) at word `at`. */
  writeNumbers(type, scalar, v, index, at) {
    switch (type.kind) {
      case "scalar": {
        const n = this.fresh("n");
        return `{ const ${n} = ${v}[${index}]; ${scalarCheck(scalar, n, this.fail)}${VIEW[scalar]}[${at}] = ${n}; }\n`;
      }
      case "vector":
        return Array.from({ length: type.n }, (_, k) =>
          this.writeNumbers({ kind: "scalar" }, scalar, v, `${index} + ${k}`, `${at} + ${k}`),
        ).join("");
      case "array": {
        const i = this.fresh("i");
        const inner = this.writeNumbers(type.element, scalar, v, `${index} + ${i} * ${countOf(type.element)}`,
          `${at} + ${i} * ${type.stride / 4}`);
        return `for (let ${i} = 0; ${i} < ${type.len}; ${i}++) {\n${inner}}\n`;
      }
      default:
        throw new Error(`not numeric: ${type.kind}`);
    }
  }

  // ----- decoding: the shapes the core gives ------------------------------------------------

  decodeObject(layout, base) {
    const fields = layout.fields.map(
      (field) => `${JSON.stringify(field.name)}: ${this.decodeField(field.type, `${base} + ${field.offset / 4}`)}`,
    );
    return `{ ${fields.join(", ")} }`;
  }

  /** Reads `type` at word `at` into `out[index...]` (memory order, padding skipped). */
  readNumbers(type, scalar, out, index, at) {
    switch (type.kind) {
      case "vector":
        return Array.from({ length: type.n }, (_, k) => `${out}[${index} + ${k}] = ${VIEW[scalar]}[${at} + ${k}];\n`).join("");
      case "array": {
        const i = this.fresh("i");
        const inner = this.readNumbers(type.element, scalar, out, `${index} + ${i} * ${countOf(type.element)}`,
          `${at} + ${i} * ${type.stride / 4}`);
        return `for (let ${i} = 0; ${i} < ${type.len}; ${i}++) {\n${inner}}\n`;
      }
      default: // a scalar
        return `${out}[${index}] = ${VIEW[scalar]}[${at}];\n`;
    }
  }

  decodeField(type, at) {
    switch (type.kind) {
      case "scalar":
        return `${VIEW[type.scalar]}[${at}]`;
      case "struct":
        return this.decodeObject(type.layout, `(${at})`);
      case "vector":
        // An array literal: V8 makes one in a tenth of the time of a 3-element typed array,
        // and vectors are the fields messages have most (positions, colours, velocities).
        return `[${Array.from({ length: type.n }, (_, k) => `${VIEW[type.scalar]}[${at} + ${k}]`).join(", ")}]`;
      case "array": {
        const scalar = numericScalar(type);
        if (scalar) {
          const count = countOf(type);
          // Long runs without padding in one copy; short ones element by element, which V8
          // does twice as fast as `slice`.
          if (count > 16 && wordsSpanned(type) === count) return `${VIEW[scalar]}.slice(${at}, ${at} + ${count})`;
          const out = this.fresh("t");
          return `((${out}) => {\n${this.readNumbers(type, scalar, out, "0", at)}return ${out}; })(new ${TYPED_ARRAY[scalar]}(${count}))`;
        }
        const i = this.fresh("i");
        const out = this.fresh("a");
        const element = this.decodeField(type.element, `${at} + ${i} * ${type.stride / 4}`);
        return `((${out}) => { for (let ${i} = 0; ${i} < ${type.len}; ${i}++) ${out}[${i}] = ${element}; return ${out}; })(new Array(${type.len}))`;
      }
      default:
        throw new Error(`unknown field kind ${type.kind}`);
    }
  }
}

/** A check that `n` is a number the core would write unchanged as `scalar` (else `fail`). */
function scalarCheck(scalar, n, fail) {
  switch (scalar) {
    case "i32":
      return `if (typeof ${n} !== "number" || (${n} | 0) !== ${n}) ${fail}; `;
    case "u32":
      return `if (typeof ${n} !== "number" || (${n} >>> 0) !== ${n}) ${fail}; `;
    case "f32":
      // Any number, stored as the Float32Array stores it (NaN, and ±Infinity past its range).
      return `if (typeof ${n} !== "number") ${fail}; `;
    default:
      throw new Error(`unknown scalar ${scalar}`);
  }
}

/** The scalar of a vector or an array of numbers (at any depth), or undefined. */
function numericScalar(type) {
  if (type.kind === "scalar") return type.scalar;
  if (type.kind === "vector") return type.scalar;
  if (type.kind === "array") return numericScalar(type.element);
  return undefined;
}

/** How many numbers a numeric type holds (`array<vec3<f32>, 4>`: 12). */
function countOf(type) {
  switch (type.kind) {
    case "scalar":
      return 1;
    case "vector":
      return type.n;
    default:
      return type.len * countOf(type.element);
  }
}

/** How many words a numeric type spans in memory, padding included. */
function wordsSpanned(type) {
  switch (type.kind) {
    case "scalar":
      return 1;
    case "vector":
      return type.n;
    default:
      return (type.len - 1) * (type.stride / 4) + wordsSpanned(type.element);
  }
}

/** An array or a typed array of 32-bit (or smaller) numbers, as the core reads vectors. */
function isNumberList(value) {
  if (Array.isArray(value)) return true;
  return ArrayBuffer.isView(value) && !(value instanceof DataView) && value.BYTES_PER_ELEMENT !== 8;
}

// Host handlers: a JavaScript handler is called here, so that nothing it does throws into the
// runtime. (Here and not in a module of their own: wasm-bindgen-test-runner's server left a
// fifth snippet module's request hanging now and then, and the browser tests with it.) An
// exception that crossed into wasm would unwind past the Rust code that called it without
// running its destructors (a lock held, a kernel's place in line never given up), and one
// caught on the Rust side keeps its slot in wasm-bindgen's table of JavaScript values for good
// (one slot, and the thrown value with it, per throw). So throws are caught here, and what they
// say is read here too: an Error's `name` and `message` may be getters that throw as well.

/** Longest description of a thrown value kept: a thrown 20 MB string is not copied whole. */
const MOST = 1000;

let thrown = null;

/**
 * `handler(message, state)`; when it throws, `undefined`, with what it threw described for
 * `takeThrown`. A returned Promise is the handler's mistake (handlers run synchronously): its
 * rejection is caught here so it cannot end a Node process as an unhandled rejection.
 */
export function callHandler(handler, message, state) {
  try {
    const answer = handler(message, state);
    if (answer instanceof Promise) answer.catch(() => {});
    return answer;
  } catch (value) {
    thrown = describe(value);
    return undefined;
  }
}

/**
 * `callback(event)` for a memory alert: what it throws, or rejects with when it returns a
 * promise (an `async` callback), is shown in the console and reaches neither the runtime nor
 * Node's unhandled-rejection handling, which would end the process.
 */
export function callAlert(callback, event) {
  try {
    const returned = callback(event);
    // Any thenable: a promise of another realm, or a library's, is no `instanceof Promise`.
    if (typeof returned?.then === "function") {
      Promise.resolve(returned).catch((reason) => console.error("ringkernel-web: a memory alert callback rejected:", reason));
    }
  } catch (value) {
    console.error("ringkernel-web: a memory alert callback threw:", value);
  }
}

/**
 * The wakers of the operations waiting on each AbortSignal, behind one "abort" listener per
 * signal: a listener per operation made N operations sharing one signal cost O(N²) (an
 * EventTarget's add and remove are linear in the listeners it holds); a Set's are O(1).
 */
const abortWaits = new WeakMap();

/**
 * Calls `wake` when `signal` aborts, until `endAbortWait(signal, wake)`. The signal's listener
 * is added with its first waker (what adding it throws, it throws).
 */
export function startAbortWait(signal, wake) {
  let waits = abortWaits.get(signal);
  if (waits === undefined) {
    const wakers = new Set();
    const listener = () => {
      for (const waker of wakers) waker();
    };
    signal.addEventListener("abort", listener);
    waits = { wakers, listener };
    abortWaits.set(signal, waits);
  }
  waits.wakers.add(wake);
}

/**
 * Ends `wake`'s wait on `signal`; the signal's listener is removed with its last waker, so a
 * signal that lives long keeps none while nothing waits on it.
 */
export function endAbortWait(signal, wake) {
  const waits = abortWaits.get(signal);
  if (waits === undefined || !waits.wakers.delete(wake) || waits.wakers.size > 0) return;
  abortWaits.delete(signal);
  signal.removeEventListener("abort", waits.listener);
}

/** The built-in getter `name` of `prototype`, which a subclass's own cannot stand in for. */
const builtIn = (prototype, name) => Object.getOwnPropertyDescriptor(prototype, name).get;
const TYPED = Object.getPrototypeOf(Int8Array.prototype);
const VIEW_OF = {
  typed: [builtIn(TYPED, "buffer"), builtIn(TYPED, "byteOffset"), builtIn(TYPED, "byteLength")],
  data: [builtIn(DataView.prototype, "buffer"), builtIn(DataView.prototype, "byteOffset"), builtIn(DataView.prototype, "byteLength")],
};

/**
 * Whether `value` is a whole buffer: an ArrayBuffer, or a SharedArrayBuffer (a worker's shared
 * memory; the global exists only where the page is cross-origin isolated).
 */
export function isBuffer(value) {
  return value instanceof ArrayBuffer || (typeof SharedArrayBuffer === "function" && value instanceof SharedArrayBuffer);
}

/**
 * The bytes of an ArrayBuffer, a SharedArrayBuffer, a typed array or a DataView as a Uint8Array over the same
 * memory, read through the built-in getters (a subclass cannot make them say another range);
 * the byte length instead when it is over `max`; why not (the engine's words, e.g. a buffer
 * detached by its transfer to a worker) when they cannot be read.
 */
export function packedView(value, max) {
  try {
    let view;
    if (isBuffer(value)) {
      view = new Uint8Array(value);
    } else {
      const [buffer, offset, length] = value instanceof DataView ? VIEW_OF.data : VIEW_OF.typed;
      view = new Uint8Array(buffer.call(value), offset.call(value), length.call(value));
    }
    return view.byteLength > max ? view.byteLength : view;
  } catch (error) {
    return String(error?.message ?? error);
  }
}

/**
 * A message object's fields as `[name, value]` pairs, for the core's reader: its enumerable
 * properties, own and inherited, as `for...in` lists them, which is what the codecs read, so a
 * message is judged alike on both paths; functions are no fields (an ES5 class's methods are
 * enumerable on its prototype), and the codec leaves an object with any to this reader. A getter
 * or a Proxy's trap that throws is the caller's to catch.
 */
export function fieldEntries(object) {
  const entries = [];
  for (const name in object) {
    const value = object[name];
    if (typeof value !== "function") entries.push([name, value]);
  }
  return entries;
}

/**
 * The iterator of an iterable that is not an array (`options.rs`' `elements`), or `undefined`
 * when `value[Symbol.iterator]` is no function or what it returns has no `next` method: js-sys'
 * `try_iter`'s tests, in one call. A getter or an iterator that throws is the caller's to catch.
 */
export function iteratorOf(value) {
  const make = value[Symbol.iterator];
  if (!(make instanceof Function)) return undefined;
  const iterator = make.call(value);
  const object = typeof iterator === "object" && iterator !== null;
  return object && typeof iterator.next === "function" ? iterator : undefined;
}

/** What the last `callHandler` that threw threw, described (a string), or `null`. */
export function takeThrown() {
  const said = thrown;
  thrown = null;
  return said;
}

/** `Name: message` for an Error, the string form of anything else; never throws. */
function describe(value) {
  let text;
  try {
    text = value instanceof Error ? `${value.name}: ${value.message}` : typeof value === "string" ? value : String(value);
  } catch {
    text = `a thrown ${typeof value} that cannot be shown`; // its name, message or toString threw
  }
  return text.length > MOST ? `${text.slice(0, MOST)}… (${text.length} characters)` : text;
}

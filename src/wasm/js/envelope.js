// Envelope headers and received envelopes as JavaScript objects, made here as literals: built
// key by key from Rust, every key became a new string (a TextDecoder call each), about 6 µs of
// each `sendEnvelope` and `receiveEnvelope`.

/** An `EnvelopeHeader`; absent optional fields are `null`. */
export function header(messageId, correlationId, source, destination, priority, physicalMs, logical) {
  return { messageId, correlationId, source, destination, priority, timestamp: timestamp(physicalMs, logical) };
}

/** An `HlcTimestamp`. */
export function timestamp(physicalMs, logical) {
  return { physicalMs, logical };
}

/** What `receiveEnvelope` resolves with: the answer and its envelope's header. */
export function received(message, envelope) {
  return { message, envelope };
}

const WHAT = "sendEnvelope options";
const KEYS = ["correlationId", "priority", "source", "timestamp", "timeout", "signal"];
const TIMESTAMP_KEYS = ["physicalMs", "logical"];

/**
 * Checks and reads `sendEnvelope`'s options by the package's rules for options: unknown keys and
 * values of the wrong type are `TypeError`s, numbers out of range `RangeError`s. Writes into `out`
 * (NaN where absent): correlationId, priority, the timestamp's physicalMs and logical, timeout,
 * and 1 when there is a `signal` (which the wasm layer then checks and reads, as every
 * operation's);
 * returns the source (a kernel id) or `undefined`. Read here, not key by key from Rust, where
 * every key was a string crossing into JavaScript.
 */
export function sendOptions(options, out) {
  out.fill(NaN);
  if (options === undefined || options === null) return undefined;
  checkKeys(options, KEYS, WHAT);
  const { correlationId, priority, source, timestamp, timeout, signal } = options;
  out[0] = integer(correlationId, "correlationId", Number.MAX_SAFE_INTEGER);
  out[1] = integer(priority, "priority", 255);
  if (source !== undefined && typeof source !== "string") throw mistyped("source", "a kernel id (a string)", source);
  // Read as Rust text, a lone surrogate would become U+FFFD and the header would come back
  // other than sent: refused, as a kernel id with one is.
  if (source !== undefined && !wellFormed(source)) {
    throw new TypeError(`${WHAT}: source must be a kernel id of well-formed text, got ${shown(source)} (it has a lone surrogate)`);
  }
  if (timestamp !== undefined) {
    checkKeys(timestamp, TIMESTAMP_KEYS, `${WHAT}: timestamp`);
    // A clock reading with a part missing is no reading: both parts, as HlcTimestamp declares.
    for (const key of TIMESTAMP_KEYS) {
      if (timestamp[key] === undefined) throw mistyped(`timestamp.${key}`, "a number", undefined);
    }
    out[2] = integer(timestamp.physicalMs, "timestamp.physicalMs", Number.MAX_SAFE_INTEGER);
    out[3] = integer(timestamp.logical, "timestamp.logical", 2 ** 32 - 1);
  }
  if (timeout !== undefined) {
    if (typeof timeout !== "number") throw mistyped("timeout", "a number of milliseconds", timeout);
    // Infinity (or past 9e15) is no timeout, read as such by the wasm layer (`wait_ms`).
    if (!(timeout >= 0)) {
      throw new RangeError(`${WHAT}: timeout must be a non-negative number of milliseconds, got ${timeout}`);
    }
    out[4] = timeout;
  }
  // Checked and read by the wasm layer, as every operation's signal is.
  if (signal !== undefined && signal !== null) out[5] = 1;
  return source;
}

/** A surrogate without its other half. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Whether `text` has no lone surrogate (`isWellFormed` where the engine has it). */
function wellFormed(text) {
  return typeof text.isWellFormed === "function" ? text.isWellFormed() : !LONE_SURROGATE.test(text);
}

/** An object with only `known` keys, none of them a BigInt. */
function checkKeys(value, known, what) {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`${what} must be an object, got ${shown(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) throw new TypeError(`${what}: unknown option '${key}' (expected one of ${known.join(", ")})`);
    if (typeof value[key] === "bigint") throw new TypeError(`${what}: option '${key}' must be a number, got a BigInt`);
  }
}

/** An optional whole number from 0 to `max` (NaN when absent). */
function integer(value, what, max) {
  if (value === undefined) return NaN;
  if (typeof value !== "number") throw mistyped(what, "a number", value);
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${WHAT}: ${what} must be a whole number from 0 to ${max}, got ${value}`);
  }
  return value;
}

function mistyped(what, expected, value) {
  return new TypeError(`${WHAT}: ${what} must be ${expected}, got ${shown(value)}`);
}

/** A value as the package's errors show it (as `shown` in src/wasm/options.rs does). */
function shown(value) {
  switch (typeof value) {
    case "string": return JSON.stringify(value);
    case "bigint": return `${value}n`;
    case "number": case "boolean": case "undefined": return String(value);
    default: return value === null ? "null" : Array.isArray(value) ? "an array" : /^[aeiou]/i.test(typeof value) ? `an ${typeof value}` : `a ${typeof value}`;
  }
}

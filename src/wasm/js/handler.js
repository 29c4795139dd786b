// A host handler called so that nothing it does throws into the runtime. An exception that
// crossed into wasm would unwind past the Rust code that called it without running its
// destructors (a lock held, a kernel's place in line never given up), and one caught on the
// Rust side keeps its slot in wasm-bindgen's table of JavaScript values for good (one slot,
// and the thrown value with it, per throw). So throws are caught here, and what they say is
// read here too: an Error's `name` and `message` may be getters that throw as well.

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

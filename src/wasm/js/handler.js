// A host handler called so that what it throws comes back as a value. A JavaScript exception
// caught on the Rust side keeps its slot in wasm-bindgen's table of JavaScript values (measured:
// one slot, and the thrown value with it, per throw), so a handler that threw on every message
// held every error it threw. Here the throw is caught in JavaScript and kept for `takeThrown`.

let thrown = null;

/** `handler(message, state)`; when it throws, `undefined`, with the thrown value kept. */
export function callHandler(handler, message, state) {
  try {
    return handler(message, state);
  } catch (value) {
    thrown = { value };
    return undefined;
  }
}

/** The thrown value of the last `callHandler` that threw, boxed (`{ value }`), or `null`. */
export function takeThrown() {
  const box = thrown;
  thrown = null;
  return box;
}

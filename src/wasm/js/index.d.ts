export * from "./ringkernel_web.js";
export * from "./errors.js";
import type { InitInput, InitOutput } from "./ringkernel_web.js";

/**
 * Loads and instantiates the wasm module (once). Without an argument it is fetched next to the
 * package's JavaScript, or read from disk in Node.
 */
export default function init(
  input?: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>,
): Promise<InitOutput>;

export * from "./ringkernel_web.js";
export * from "../errors.js";
/** Nothing to do: the bundler instantiated the module on import. Kept so `await init()` works with both builds. */
export default function init(): Promise<void>;

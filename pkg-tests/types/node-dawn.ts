// The README's Node example (section "Node") in TypeScript, type-checked with the tsconfig the
// README gives there (tests/types-and-bundlers.test.mjs reads it from the README).
import { create, globals } from "webgpu";
import init, { RingKernelRuntime } from "ringkernel-web";

Object.assign(globalThis, globals); // Dawn's GPU* classes
(globalThis as { navigator?: unknown }).navigator = { gpu: create([]) }; // navigator.gpu
await init();

const runtime = await RingKernelRuntime.create(); // adapter backend "browserwebgpu", on Dawn
const doubler = await runtime.launch("doubler", null, { autoActivate: true });
console.log(await doubler.call({ value: 21 })); // { result: 42 }
await runtime.dispose();

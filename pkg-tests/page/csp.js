// Objects in and out under a Content-Security-Policy that forbids generated code: the same
// answers and the same refusals as with the codecs. Reports to window.__csp.
import init, { RingKernelRuntime, defineMessage, MessageFormatError } from "/ringkernel-web/index.js";

try {
  let codegen = "allowed";
  try {
    new Function("return 1");
  } catch (e) {
    codegen = e.name;
  }
  await init();
  const Body = defineMessage("CspBody", { position: "vec3<f32>", tags: "array<u32, 2>" });
  const runtime = await RingKernelRuntime.create();
  const doubler = await runtime.launch("doubler", null, { autoActivate: true });
  await doubler.sendBatch([{ value: 1 }, { value: 2 }, { value: 3 }]);
  const answers = [];
  while (answers.length < 3) answers.push(...(await doubler.receiveBatch({ timeout: 20000 })));
  const called = await doubler.call({ value: 21 }, { timeout: 20000 });
  // Fields as for...in lists them, as the codecs read them: inherited ones count, and a class
  // instance gives its own.
  const inherited = await doubler.call(Object.create({ value: 21 }), { timeout: 20000 });
  class Msg { constructor(value) { this.value = value; } }
  await doubler.sendBatch([Object.create({ value: 1 }), new Msg(2)]);
  const mixed = [];
  while (mixed.length < 2) mixed.push(...(await doubler.receiveBatch({ timeout: 20000 })));
  let refused = null;
  try {
    await doubler.sendBatch([{ value: 1 }, { value: 0.5 }]);
  } catch (e) {
    refused = { name: e.name, field: e.field, isClass: e instanceof MessageFormatError };
  }
  const echo = await runtime.launch("csp-echo", { input: Body, output: Body,
    wgsl: "fn handle(b: CspBody) -> CspBody { return b; }" }, { autoActivate: true });
  const body = await echo.call({ position: [0.5, 1, 2], tags: [7, 8] }, { timeout: 20000 });
  await runtime.dispose();
  window.__csp = { ok: true, codegen, answers, called, inherited, mixed, refused,
    body: { position: Array.from(body.position), tags: Array.from(body.tags), types: [body.position.constructor.name, body.tags.constructor.name] } };
} catch (e) {
  window.__csp = { ok: false, error: `${e?.name}: ${e?.message}` };
}

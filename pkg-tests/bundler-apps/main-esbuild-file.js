// The entry as the README has it for esbuild's `file` loader: the .wasm imported as a file,
// and its URL handed to `init`.
import * as ringkernel from "ringkernel-web";
import wasm from "ringkernel-web/ringkernel_web_bg.wasm";
import { report } from "./run.js";

const init = () => ringkernel.default({ module_or_path: new URL(wasm, import.meta.url) });
report({ ...ringkernel, default: init });

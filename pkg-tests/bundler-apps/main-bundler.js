// The entry for the package's bundler build (`ringkernel-web/bundler`), whose .wasm is an ES
// module import (webpack's `asyncWebAssembly`).
import * as ringkernel from "ringkernel-web/bundler";
import { report } from "./run.js";

report(ringkernel);

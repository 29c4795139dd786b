// The entry as a user writes it for the package's default (web) build.
import * as ringkernel from "ringkernel-web";
import { report } from "./run.js";

report(ringkernel);

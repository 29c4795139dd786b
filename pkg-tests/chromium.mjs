// Headless Chromium as every browser test and the bench runner start it: Debian's chromium (or
// CHROME_BIN) with WebGPU on (SwiftShader without a GPU) and the background services off that
// would otherwise flood the closed network. playwright gives every launch a fresh profile.
// CHROMIUM_EXTRA_ARGS (space-separated) adds switches, e.g. Chromium's GPU ones on a machine
// with a GPU (scripts/bench.sh).
import { chromium } from "playwright-core";

const CHROMIUM_ARGS = [
  "--enable-unsafe-webgpu", "--no-sandbox", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage",
];

/** Launches headless Chromium with CHROMIUM_ARGS and CHROMIUM_EXTRA_ARGS. */
export function launchChromium() {
  return chromium.launch({ executablePath: process.env.CHROME_BIN ?? "/usr/bin/chromium", args: [...CHROMIUM_ARGS, ...extraArgs()] });
}

/** CHROMIUM_EXTRA_ARGS split on whitespace (none when unset). */
function extraArgs() {
  return (process.env.CHROMIUM_EXTRA_ARGS ?? "").split(/\s+/).filter(Boolean);
}

// Headless Chromium as every browser test and the bench runner start it: Debian's chromium (or
// CHROME_BIN) with WebGPU on (SwiftShader without a GPU) and the background services off that
// would otherwise flood the closed network. playwright gives every launch a fresh profile.
import { chromium } from "playwright-core";

const CHROMIUM_ARGS = [
  "--enable-unsafe-webgpu", "--no-sandbox", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage",
];

/** Launches headless Chromium with CHROMIUM_ARGS. */
export function launchChromium() {
  return chromium.launch({ executablePath: process.env.CHROME_BIN ?? "/usr/bin/chromium", args: CHROMIUM_ARGS });
}

#!/usr/bin/env bash
# The main job: builds the npm package (pkg/, wasm-pack --target web, release), the demo page
# (www/, with the package copied to www/pkg) and the native CLI. Installs what it needs first.
# `scripts/build.sh --serve` then serves the demo on http://localhost:8080.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh

log "building pkg/ (wasm-pack, release, --target web)"
wasm_release wasm-pack build --release --target web --out-dir pkg --out-name ringkernel_web

log "building the demo page (www/)"
rm -rf www/pkg && cp -r pkg www/pkg

log "building the native CLI (target/release/ringkernel-native)"
cargo build -q --release -p ringkernel-native

wasm=pkg/ringkernel_web_bg.wasm
log "done: $wasm is $(stat -c %s "$wasm") bytes ($(gzip -9 -c "$wasm" | wc -c) gzipped)"
log "demo: node www/serve.mjs, then open http://localhost:8080 in a browser with WebGPU"
if [ "${1:-}" = "--serve" ]; then
    exec node www/serve.mjs
fi

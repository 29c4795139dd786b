#!/usr/bin/env bash
# The main job: builds the npm package (pkg/: wasm-pack web + bundler targets, release), the demo page
# (www/, with the package copied to www/pkg) and the native CLI. Installs what it needs first.
# `scripts/build.sh --serve` then serves the demo on http://localhost:8080.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh

log "building pkg/ (wasm-pack release builds for the web and bundler targets, wasm-opt)"
build_npm_package

log "building the demo page (www/)"
rm -rf www/pkg && cp -r pkg www/pkg

log "building the native CLI (target/release/ringkernel-native)"
cargo build -q --release -p ringkernel-native

log "done: pkg/ringkernel_web_bg.wasm sizes in bytes: $(cat "$wasm_size_file")"
log "demo: node www/serve.mjs, then open http://localhost:8080 in a browser with WebGPU"
if [ "${1:-}" = "--serve" ]; then
    exec node www/serve.mjs
fi

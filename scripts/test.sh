#!/usr/bin/env bash
# Every test: native unit and GPU tests (cargo test, lavapipe), the API docs and the layering,
# the published crates' build from their own files,
# browser tests (wasm-pack test in headless Chromium on SwiftShader WebGPU), the npm package
# as users install it (pkg-tests), and the release wasm's size against its budget
# (wasm_size_budget in setup.sh).
# Installs what it needs first. A missing GPU adapter fails the tests; nothing is skipped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
check_free_disk

log "native tests (cargo test --workspace)"
cargo test --workspace

log "API docs (cargo doc, warnings are errors, native and wasm32) and the layering (no cycles between files)"
RUSTDOCFLAGS="-D warnings" cargo doc -q --no-deps --workspace
RUSTDOCFLAGS="-D warnings" cargo doc -q --no-deps -p ringkernel-web --target wasm32-unknown-unknown
python3 scripts/code-shape.py --check > /dev/null

log "the crates as crates.io would ship them (cargo package: the files they list build on their own)"
# A target directory of its own: the packaged copies' build script and derive crate get the same
# unit hashes as the workspace's, and sharing target/ would leave cargo watching the packaged
# copies (an edited build.rs would then go unbuilt).
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/package-check" \
    cargo package -q --offline --allow-dirty -p ringkernel-web-derive -p ringkernel-web

log "browser tests (wasm-pack test --headless --chrome, WebGPU on SwiftShader)"
# ChromeDriver leaves each session's Chromium profile (about 40 MB, one per test binary) in
# TMPDIR: give the step a folder of its own and remove it afterwards, even on failure.
browser_tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringkernel-web-browser.XXXXXX")
trap 'rm -rf "$browser_tmp"' EXIT
TMPDIR="$browser_tmp" WASM_BINDGEN_TEST_TIMEOUT=240 \
    wasm-pack test --headless --chrome --chromedriver /usr/bin/chromedriver
rm -rf "$browser_tmp"

log "package tests (npm install of pkg/, headless Chromium)"
build_npm_package
(cd pkg-tests && npm install --no-audit --no-fund --loglevel=error && npm test)

log "release wasm size (gzipped, as the package ships it) against the budget"
check_wasm_size

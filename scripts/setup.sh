#!/usr/bin/env bash
# Installs everything the build and the tests need on a fresh Debian machine, skipping what is
# already present: Debian packages (Chromium, ChromeDriver, Mesa's lavapipe Vulkan driver), the
# wasm32 Rust target, wasm-bindgen-cli at exactly the Cargo.lock version, and wasm-pack.
# Sourced by build.sh and test.sh; safe to run any number of times.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export PATH="$HOME/.cargo/bin:$PATH"
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "need root to run: $*" >&2; exit 1
    fi
}

# --- Debian packages -----------------------------------------------------------------------
apt_packages=(chromium chromium-driver mesa-vulkan-drivers libvulkan1)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- Rust ------------------------------------------------------------------------------------
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
fi

# wasm-pack downloads a wasm-bindgen of its own unless one of the exact Cargo.lock version is on
# PATH; this machine cannot download it, so build it from crates.io.
bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$bindgen_version" ]; then
    log "installing wasm-bindgen-cli $bindgen_version (a few minutes)"
    # Not --locked: the CLI's own lockfile pins a yanked crate.
    cargo install -q wasm-bindgen-cli --version "$bindgen_version" --force
fi
if ! command -v wasm-pack >/dev/null; then
    log "installing wasm-pack (a few minutes)"
    cargo install -q wasm-pack --locked
fi

# --- Node, and Python for scripts/code-shape.py ----------------------------------------------
command -v npm >/dev/null || { as_root apt-get update -qq && as_root apt-get install -y -qq nodejs npm >/dev/null; }
command -v python3 >/dev/null || { as_root apt-get update -qq && as_root apt-get install -y -qq python3 >/dev/null; }

# wasm-opt from npm's binaryen into .tools/ (Debian's binaryen 108 miscompiles reference types;
# wasm-pack would try to download its own).
binaryen_version=132.0.0
if [ "$(.tools/node_modules/.bin/wasm-opt --version 2>/dev/null | awk '{print $3}')" != "${binaryen_version%%.*}" ]; then
    log "installing binaryen $binaryen_version (wasm-opt) into .tools/"
    mkdir -p .tools
    [ -f .tools/package.json ] || echo '{ "private": true }' > .tools/package.json
    npm install --prefix .tools --no-audit --no-fund --loglevel=error "binaryen@$binaryen_version"
fi
export PATH="$PWD/.tools/node_modules/.bin:$PATH"

# Software adapters: Vulkan loaders and Mesa want a runtime dir even when nothing is displayed.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/runtime-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
export CHROMEDRIVER=/usr/bin/chromedriver
export CHROME_BIN=/usr/bin/chromium
log "ready: $(rustc --version | cut -d' ' -f1-2), $(wasm-pack --version), wasm-bindgen $bindgen_version, $(chromium --version 2>/dev/null | head -1)"

# Size-tuned release settings for the wasm package only (native release builds keep defaults):
# opt-level "z" (14 KB less gzipped than "s" after wasm-opt), fat LTO, one codegen unit.
wasm_release() {
    CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_LTO=true CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 "$@"
}

# The npm package in pkg/: wasm-pack's `web` build at the root and its `bundler` build under
# pkg/bundler/, each .wasm shrunk by wasm-opt, and one package.json naming both (see
# scripts/npm/finish-package.mjs). Sizes before and after wasm-opt go to target/wasm-size.json.
build_npm_package() {
    local bundler=target/wasm-pack/bundler
    wasm_release wasm-pack build --release --target web --out-dir pkg --out-name ringkernel_web
    wasm_release wasm-pack build --release --target bundler --out-dir "$bundler" --out-name ringkernel_web
    local wasm=pkg/ringkernel_web_bg.wasm raw raw_gz opt opt_gz
    raw=$(stat -c %s "$wasm"); raw_gz=$(gzip -9 -c "$wasm" | wc -c)
    for file in "$wasm" "$bundler/ringkernel_web_bg.wasm"; do
        wasm-opt -Os "$file" -o "$file.opt" && mv "$file.opt" "$file"
    done
    opt=$(stat -c %s "$wasm"); opt_gz=$(gzip -9 -c "$wasm" | wc -c)
    printf '{ "raw": %d, "rawGzip": %d, "wasmOpt": %d, "wasmOptGzip": %d }\n' "$raw" "$raw_gz" "$opt" "$opt_gz" \
        > target/wasm-size.json
    log "release wasm: $raw bytes ($raw_gz gzipped) before wasm-opt, $opt bytes ($opt_gz gzipped) after"
    node scripts/npm/finish-package.mjs pkg "$bundler"
}

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
# Mesa's EGL and DRI drivers give wgpu's GL backend llvmpipe (tests/device_features.rs and
# `bench.sh` use lavapipe's GL adapter beside its Vulkan one); Chromium usually brings them.
apt_packages=(chromium chromium-driver mesa-vulkan-drivers libvulkan1 libegl-mesa0 libgl1-mesa-dri)
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
# opt-level "z" (14 KB less gzipped than "s" after wasm-opt), fat LTO, one codegen unit. The
# dependencies are built at opt-level 3 but for wgpu's own crate, at "z": 1,116 bytes less
# gzipped than all at "z" (all at 3: 668 less; js-sys or wasm-bindgen at "z" each put 650 to
# 740 back), and no slower (MEASURED.md, "Optimization levels"). The source paths that panic
# messages carry are shortened: the registry's prefix goes, and the
# toolchain's rust-src becomes /rustc/<commit> as in the prebuilt std, so each std path is
# stored once (and the build machine's paths stay out of the package). Its command is a
# `wasm-pack build`, whose arguments after `--` go to cargo.
wasm_dependency_opt_levels=(--config 'profile.release.package."*".opt-level=3' --config 'profile.release.package.wgpu.opt-level="z"')
wasm_release() {
    local remap registry
    remap="--remap-path-prefix=$(rustc --print sysroot)/lib/rustlib/src/rust=/rustc/$(rustc -vV | sed -n 's/^commit-hash: //p')"
    for registry in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
        remap+=" --remap-path-prefix=$registry="
    done
    RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }$remap" CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_LTO=true \
        CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 "$@" -- "${wasm_dependency_opt_levels[@]}"
}

# The release wasm's size limit in bytes, gzipped (gzip -9) as the package ships it (after
# wasm-opt and the import names' shortening): the one place it is set. Every build prints the
# sizes against it; scripts/test.sh fails when the package is over. It holds what the package is
# now, so that it cannot grow unnoticed, and moves in the commit that changes the size; what each
# change added or took off is in MEASURED.md ("Package size, step by step"). The goal is 150 KB
# (issue 16): lower this as the package shrinks.
wasm_size_budget=240531

# wasm-opt for the release wasm. -Oz is binaryen's shrink level 2 (-Os is 1: 95 bytes more,
# gzipped); --converge reruns the passes while they still shrink it;
# --low-memory-unused lets it fold constant offsets into loads and stores, which assumes the low
# 1 KiB of memory is never accessed: rustc puts the 1 MiB stack first in memory, growing down
# towards 0, so only a stack already overflowing would reach it. The producers and
# target_features sections are for tools; browsers and bundlers never read them.
# --one-caller-inline-max-function-size=16: a function with one caller is inlined into it only
# when it is as small as that (binaryen's default inlines any size): 11.6 KB larger raw, but
# 12.5 KB smaller gzipped, since the big functions that whole callees make compress worse than
# the callees apart (any limit from 10 to 20 gave 256.5 to 256.7 KB; 0 gave 257.4, 300 267.3).
# --reorder-functions-by-name, last: the functions in the order of their (Rust) names, so that
# alike ones (drop glue, formatting impls, one type's methods, one future's closures) sit side
# by side within gzip's window: 3.3 KB smaller gzipped, the same bytes raw. It reads the names
# from the name section wasm-bindgen leaves; wasm-opt writes none (no -g).
# --always-inline-max-function-size=3: functions of at most 3 bytes of code are inlined wherever
# called (binaryen's default is 2): 124 bytes smaller gzipped and 78 raw; 4 was 130 smaller
# gzipped but 1 KB larger raw, 5 and more larger both ways (8: +2.7 KB gzipped).
wasm_opt_flags=(-Oz --converge --low-memory-unused --strip-producers --strip-target-features
    --one-caller-inline-max-function-size=16 --always-inline-max-function-size=3
    --reorder-functions-by-name)

# Where cargo builds (CARGO_TARGET_DIR or target/): the bundler build and wasm-size.json go there.
target_dir=${CARGO_TARGET_DIR:-target}
wasm_size_file=$target_dir/wasm-size.json

# The npm package in pkg/: wasm-pack's `web` build at the root and its `bundler` build under
# pkg/bundler/, each .wasm shrunk by wasm-opt and its import names shortened
# (scripts/npm/minify-imports.mjs), two calls on a round trip's path in each glue made cheaper
# (scripts/npm/glue-fast-paths.mjs), and one package.json naming both (see
# scripts/npm/finish-package.mjs). Sizes before and after that shrinking, and the budget, go to
# $wasm_size_file (target/wasm-size.json by default) and the log.
build_npm_package() {
    local bundler=$target_dir/wasm-pack/bundler
    wasm_release wasm-pack build --release --target web --out-dir pkg --out-name ringkernel_web
    wasm_release wasm-pack build --release --target bundler --out-dir "$bundler" --out-name ringkernel_web
    local wasm=pkg/ringkernel_web_bg.wasm raw raw_gz opt opt_gz
    raw=$(stat -c %s "$wasm"); raw_gz=$(gzip -9 -n < "$wasm" | wc -c)
    for file in "$wasm" "$bundler/ringkernel_web_bg.wasm"; do
        wasm-opt "${wasm_opt_flags[@]}" "$file" -o "$file.opt" && mv "$file.opt" "$file"
    done
    # Short import names, in each wasm and the glue that provides them (see the script).
    node scripts/npm/minify-imports.mjs "$wasm" pkg/ringkernel_web.js
    node scripts/npm/minify-imports.mjs "$bundler/ringkernel_web_bg.wasm" "$bundler/ringkernel_web_bg.js"
    # Tasks in promise reactions, not queueMicrotask turns, and `performance` read once (see the script).
    node scripts/npm/glue-fast-paths.mjs pkg/ringkernel_web.js
    node scripts/npm/glue-fast-paths.mjs "$bundler/ringkernel_web_bg.js"
    opt=$(stat -c %s "$wasm"); opt_gz=$(gzip -9 -n < "$wasm" | wc -c)
    mkdir -p "$target_dir"
    printf '{ "raw": %d, "rawGzip": %d, "wasmOpt": %d, "wasmOptGzip": %d, "budgetGzip": %d }\n' \
        "$raw" "$raw_gz" "$opt" "$opt_gz" "$wasm_size_budget" > "$wasm_size_file"
    log "release wasm: $raw bytes ($raw_gz gzipped) from wasm-pack, $opt bytes ($opt_gz gzipped) after wasm-opt" \
        "and short import names;" \
        "budget $wasm_size_budget bytes gzipped: $(wasm_size_verdict "$opt_gz")"
    node scripts/npm/finish-package.mjs pkg "$bundler"
}

wasm_size_verdict() {
    if [ "$1" -le "$wasm_size_budget" ]; then
        echo "$((wasm_size_budget - $1)) bytes under"
    else
        echo "OVER by $(($1 - wasm_size_budget)) bytes"
    fi
}

# A full test run from a fresh clone writes about 5.5 GB under target/ (native and wasm32 test
# builds, the release wasm, docs, the packaged crates' own build). A disk that fills mid-link
# fails with the linker's "Bus error", which names no cause, so the run says so before it starts.
check_free_disk() {
    local need_gb=6 free_kb
    mkdir -p "$target_dir"
    free_kb=$(df -Pk "$target_dir" | awk 'NR == 2 { print $4 }')
    if [ "$free_kb" -lt $((need_gb * 1024 * 1024)) ]; then
        log "warning: $((free_kb / 1024)) MB free on the disk that holds $target_dir, where a test run" \
            "from a fresh clone writes about $need_gb GB; if it fills, a link fails with \"Bus error\""
    fi
}

# Fails when the last build_npm_package left a release wasm over the budget.
check_wasm_size() {
    local opt_gz
    opt_gz=$(sed -n 's/.*"wasmOptGzip": \([0-9]*\).*/\1/p' "$wasm_size_file" 2>/dev/null || true)
    if [ -z "$opt_gz" ]; then
        echo "no wasmOptGzip in $wasm_size_file: run build_npm_package first" >&2
        return 1
    fi
    if [ "$opt_gz" -gt "$wasm_size_budget" ]; then
        echo "wasm size check failed: pkg/ringkernel_web_bg.wasm is $opt_gz bytes gzipped as the package ships it," \
            "over the budget of $wasm_size_budget bytes (wasm_size_budget in scripts/setup.sh) by" \
            "$((opt_gz - wasm_size_budget)) bytes" >&2
        return 1
    fi
    log "wasm size check: $opt_gz bytes gzipped, within the budget of $wasm_size_budget ($(wasm_size_verdict "$opt_gz"))"
}

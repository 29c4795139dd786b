#!/usr/bin/env bash
# Both benchmarks on whatever adapters this machine has, written as one JSON file, so a machine
# with a real GPU measures everything in one command:
#
#   bash scripts/bench.sh [--quick] [--out FILE]      (default FILE: target/bench/all.json)
#
# - native: `ringkernel-native bench --json` once per graphics API on which wgpu lists an
#   adapter (`ringkernel-native info --json`), each on the adapter the runtime picks there
#   (the high-performance one first);
# - browser: `node pkg-tests/bench.mjs --json` in headless Chromium, on the package as users
#   install it. Chromium's WebGPU is SwiftShader without a GPU; on a machine with one, pass
#   Chromium's GPU switches in CHROMIUM_EXTRA_ARGS (e.g. "--enable-features=Vulkan
#   --use-angle=vulkan --ignore-gpu-blocklist"), and the report names the adapter it got.
#
# The file holds { machine, adapters, native: { <api>: report }, browser: report, issue19,
# failures }: `issue19` has, for each report, issue 19's five ratios read from the keys the
# README's goals table uses (natively the paired ones) and the adapter they ran on, null with
# the reason where one was not measured (--quick has no batches of 100,000 or 1,000,000).
# A bench that fails is named in `failures` (with what it said) and the script exits 1 after
# writing everything the others measured. Installs what it needs first (scripts/setup.sh).
set -euo pipefail

quick=()
out=target/bench/all.json
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=(--quick) ;;
        --out) out="${2:?bench.sh: --out needs a file}"; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
parts=target/bench/parts
rm -rf "$parts"
mkdir -p "$parts" "$(dirname "$out")"

log "native bench (release build of ringkernel-native)"
cargo build -q --release -p ringkernel-native
native=target/release/ringkernel-native
# `info` exits 1 when it finds no adapter, after writing its JSON (with no adapters).
"$native" info --json > "$parts/info.json" 2> "$parts/info.err" || true
# The graphics APIs with an adapter, as --backend names them (Vulkan → vulkan, Dx12 → dx12).
apis=$(node -e '
    let info;
    try { info = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); } catch { info = { adapters: [] }; }
    const apis = new Set(info.adapters.map((a) => a.backend.toLowerCase()));
    console.log([...apis].filter((a) => ["vulkan", "metal", "dx12", "gl"].includes(a)).join(" "));
' "$parts/info.json")
if [ -z "$apis" ]; then
    echo "no GPU adapter: wgpu lists none (install lavapipe, see README); the native bench needs one" \
        > "$parts/native-none.err"
fi
for api in $apis; do
    log "native bench on $api"
    if ! "$native" --backend "$api" bench --json "${quick[@]}" > "$parts/native-$api.json" 2> "$parts/native-$api.err"; then
        tail -5 "$parts/native-$api.err" >&2
    fi
done

log "browser bench (headless Chromium, the installed package)"
build_npm_package
(cd pkg-tests && npm install --no-audit --no-fund --loglevel=error)
if ! node pkg-tests/bench.mjs --json "${quick[@]}" > "$parts/browser.json" 2> "$parts/browser.err"; then
    tail -5 "$parts/browser.err" >&2
fi

# One document: each part as it came, the ones that failed under `failures`, and issue 19's
# ratios side by side (`issue19`, printed too; see scripts/bench-merge.mjs).
node scripts/bench-merge.mjs "$parts" "$out"

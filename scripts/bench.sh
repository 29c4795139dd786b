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
# The file holds { machine, adapters, native: { <api>: report }, browser: report, failures }.
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

# One document: each part as it came, the ones that failed under `failures`.
node - "$parts" "$out" <<'EOF'
const fs = require("fs");
const os = require("os");
const path = require("path");
const [parts, out] = process.argv.slice(2);
const read = (name) => {
  const file = path.join(parts, name);
  return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
};
const failures = [];
// A report is good when it parses and carries no `error` (bench.mjs writes what it measured
// before an error with the error beside it).
const report = (name, label) => {
  const text = read(`${name}.json`);
  let parsed;
  try { parsed = JSON.parse(text); } catch { parsed = undefined; }
  if (parsed === undefined || parsed.error) {
    const said = (parsed?.error ?? read(`${name}.err`).trim().split("\n").slice(-3).join(" | ")) || "no output";
    failures.push({ bench: label, error: said });
  }
  return parsed ?? null;
};
let info;
try { info = JSON.parse(read("info.json")); } catch { info = { adapters: [] }; }
const native = {};
for (const file of fs.readdirSync(parts).sort()) {
  const match = /^native-(.+)\.json$/.exec(file);
  if (match) native[match[1]] = report(`native-${match[1]}`, `native ${match[1]}`);
}
if (fs.existsSync(path.join(parts, "native-none.err"))) failures.push({ bench: "native", error: read("native-none.err").trim() });
const document = {
  machine: { host: os.hostname(), cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? "", date: new Date().toISOString() },
  adapters: info.adapters,
  native,
  browser: report("browser", "browser"),
  failures,
};
fs.writeFileSync(out, JSON.stringify(document, null, 2) + "\n");
console.error(`bench.sh: wrote ${out} (native on ${Object.keys(native).join(", ") || "no adapter"}; browser ${document.browser?.adapter?.name ?? "not measured"}); ${failures.length} failed`);
for (const f of failures) console.error(`  failed: ${f.bench}: ${f.error}`);
process.exitCode = failures.length ? 1 : 0;
EOF

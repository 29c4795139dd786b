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
# sizes against it; scripts/test.sh fails when the package is over. 206 KiB holds what the
# package is now so it cannot grow unnoticed: 190,434 bytes after issue 16's second size pass
# (results and options converted without serde-wasm-bindgen, no float formatting, log records
# compiled out) on issue 17's operations layer, then issue 18's several devices (placement,
# per-device ticks and recovery, migration: about 14.5 KB) and envelopes with the hybrid
# logical clock (about 5.6 KB): 209,077 bytes. Issue 19's fused pipelines (per-stage renaming
# codegen, two WGSL templates, the async compile task and module cache) add about 8.9 KB:
# 217,994 bytes; the tick telemetry 218,167. A third size pass (generated WGSL lines written
# with write!, wasm-opt -Oz, static WGSL type names): 217,970 bytes. Issue 19's grouped dispatches
# (their WGSL template, codegen, the per-handler class with its async compile task and buffers)
# add about 6.0 KB, and the harness WGSL compiled in without its comments (build.rs) takes 1.8 KB
# off: 222,151 bytes; one compile path for fused and grouped modules and one option-key check:
# 221,911 bytes, so 217 KiB; the harness shaped for software adapters and fused runs counted
# once: 221,848; the web's one-alarm timers, the `{ timeout }` reader and a burst's settling: 222,085; the drain bounded by its arrays' lengths, with a mask for its wrap: 222,116; a receive that wakes the tick loop only when input waits behind the room it freed, and the tick's turn (whose contended half is native only): 222,443; answers read straight from the output queue (no vector in between, nor a separate layout lookup) and large tick inputs written without wgpu's staging copy: 221,864; a small grid on software adapters and packed answer arrays made while the device works: 222,398; the web's readback through its GPUBuffer (no wgpu map closures) and the tick loop's check for work left: 222,080; the last dispatch's workgroups in kernel telemetry (`lastWorkgroups`, for the benches): 222,548, and 222,505 once the tick encodes the grid it records; answers' vectors as arrays and one message packed by its codec in `send`, `call` and `trySend`: 222,821; the codecs addressing wasm memory directly: 222,799; `sendEnvelope` through the codecs: 222,512; a send with room queued before `send` returns (no task): 223,038; a kernel's line of sends (every send queued at once when nothing waits ahead of it, each starting only when the one ahead is queued, `trySend` never overtaking): 224,839; envelope headers made in JavaScript: 224,813; trySend checking its line first: 224,799; a send's wait in line counted in its timeout (refused at its own deadline, handing its turn on), every send's arguments read when called: 225,588; sendEnvelope's options read in JavaScript: 225,111; option errors in JavaScript's terms (the option's path, the value as JavaScript prints it): 225,527; defineMessage's field-type error, receiveBatch refusing max 0: 225,662; one way to show a value in argument errors: 225,543; a batch's refusal led by the message's index: 225,679; kernel ids escaped in the generated WGSL: 225,770; argument errors naming a typed array by its constructor alone: 225,848; `{ signal }` (an AbortSignal ending any wait): 228,143; the tick loop holding its device for the tick only: 228,083; a waiting send that no longer spins, runtime options refused when made, queue sizes read within the core's range, a dropped call's last error, WGSL beside a host handler checked on the cpu backend, timeouts in error texts printed as numbers: 228,564; handles that refer to their launch only (a managed kernel's too): 229,073; the managed kernel's runtime reached through its handle: 229,128 (175 bytes smaller before gzip); launch shapes refused by their options on every backend: 229,145; a stall named in QueueFull and Timeout, receive timeouts no longer the kernel's errors, receive batches of 0 refused in the core, a batch cut off part way saying how many went in: 229,531; a call to a connected kernel refused at once, the cpu backend meeting binding requirements: 229,702; settings refused after shutdown and a stall as JavaScript errors' `stall`: 229,858; the review's mend (one bound for a definition's workgroup size, one wording of a batch's count): 229,881; counts of one in the singular: 230,004; a preset's nested options kept, state definitions held to their keys, articles and counts in message errors: 230,462; drain pipelines on the layout WebGPU derives (wgpu's create_bind_group_layout no longer linked): 229,372; timeouts' errors naming their option (terminateTimeout, the heartbeat timeout): 229,454; the review's mends (a fused module's bind groups kept with it, a loop's end not counted as an error, a preset's undefined keys not given): 229,571; the final review's mends (nested options read in place, one article rule): 229,005; devices released at dispose, a call's own failure, option names in timeouts' errors and the review's mends: 230,143; a TypeScript user's audit (sendBatch refusing typed arrays of the other kind of number, native backend names refused by name, undefined options not given, a handle's envelopes, receiveBatch's max as a count) and its review's mends: 231,110; the id-based methods typed by the caller's interfaces: 231,111; the runtime's envelope methods among its others: 231,109; a round trip's next tick encoded ahead on the web (the map asked for at the submit, `dispatchesEncodedAhead`): 231,997; dependencies at opt-level 3 but wgpu at "z", and `bytesFromDevice` counting what a tick copies back: 230,908; the mends of a JavaScript user's audit of the operations layer: 231,360; of a second audit, of custom kernels and pipelines: 231,428; of a third, of messaging at its edges: 231,954; of three more (the lifecycle against the seeds, answers, the demo and CLI): 233,546; of five more (several devices, the Rust API, the README's examples, the fuzz on WebGPU, resources over time): 236,401, and 236,001 after the last read of the change; of three more (the operations layer on WebGPU, concurrency and cancellation, native threads: several kernels' terminate errors together, options that could never work refused, a line of waiting receives): 238,205; a stale ticket's check: 238,217; of five more (the benchmarks, a newcomer's read, resources and limits, names and ids, host handlers: a handler's own bindings refused, pipelines kept for kernels launched again, removed kernels' memory freed on an idle device, the readback shrinking, WGSL keywords refused as names, ids escaped in error texts, nothing a handler does throwing into the runtime): 241,923, and 241,916 after a last read; of four more (WGSL handlers, messy traffic, many runtimes, memory's edges: a handler's declarations of the harness's names and its barriers refused, directives moved to the module's top, connect waiting for calls given up, dispose letting go of kernels' queues and handlers, a dropped runtime's devices destroyed, batches and host queues bounded, slow-path batches read one by one, host handlers' answers packed by their codecs) and a review's mends: 244,846, 244,904 with sendBatch's byte reader through the glue, and 244,874 after a last read; of seven more (cancellation under tokio: a dropped launch,
# migration, terminate or call leaves nothing half done; state carried to a GPU as its checkpoint; a refused
# envelope leaves the clock; a next stage's stall named; unheld stall looks; degradation after a quiet spell;
# a migration onto a lost target refused; relays to a stage gone sent to the host; aborts that come first
# win; memory alerts in rounds, at terminate and remove) and two reviews' mends: 247,172; a last read of the change (one lookup of a kernel by its launch, an envelope's clock mark taken for envelopes only): 247,200; stop 51's native
# tick loop leaving the turn to callers: 247,215; stop 52's native tick loop watching a caller's tick: 247,217, and the device's turn as one count of takes and releases: 247,254; stop 53's checkpoint interval (its option, the tick's choice, the readback layout it picks for commands encoded ahead, and one catch-up read of a state for migrations and terminates): 248,089, and 248,159 with a second review's mends (a terminating kernel's ticks checkpointed, a read kept only for the same buffer in a running runtime); 248,160 with the native turn's one yield loop; 248,152 with the state copy read off the readback layout; stop 54's final reads kept to their terminate's timeout (read apart: a thread natively, a task on the web) and none at a shutdown: 248,733; an audit's mends (docs, 9e15 in range, launch started when called): 248,789, and the serde reader's error naming that range: 248,834; stop 55's managedKernel started when called and a detached buffer's error: 248,882; four audits' mends (health judged per launch, fused stages' @id attributes blanked, a wait pinned to its launch, a handler grouped once a tick): 249,353; a call's errors saying whether its message was sent: 249,390; a review's mends (an @id's const-expression read to its closing parenthesis, a removed kernel's waits woken, a timed-out call abandoned in its own launch's ledger): 249,541; a handle's receives refusing a kernel removed before they first ran: 249,737; stop 56's audits' mends (messages read as for...in lists them, a frozen defineMessage, a refused number's index, escaped ids): 250,310; a nested type's failed layout as an error, a bounded tick taking turns, a device's count that only grows, hand-built types and enumerant names checked: 251,058 (host::typed's scalar check natively only, 1,219 more on the web); batching under many callers (the tick loop letting its callers send again, a plan of the kernels with work, the receive line left by halving, one warning a stall): 251,591; a review's mends (the kernel a bounded tick served longest ago first, a changed stall warned of, the device count taken at delivery): 252,124; the plan's list through running_ids_where: 252,150; stop 57's audits' mends (a launch activated under its lock, a pipeline's stalls named down and up it, a disconnect that wakes the tick, a field type's limits in its error): 252,441; handles pinned to their launch under the table's lock (the JavaScript handle's calls too), a terminate that joined a drain kept to its launch, a migration's source checked in its move: 252,978; a send by id behind others kept to the launch it was called on: 253,133 (253,135 kept to none when the id named none); a later stage's receive looking only while its input is held upstream, with no second lookup of its id: 253,220; stop 58's first audits' mends (automatic recovery's give-up, async alert callbacks, a scope's end after dispose, key listings caught): 253,706; the rest of stop 58's audits' mends (harness bindings refused, pipelines kept without the kernel's name, host queues bounded on the web, a tick's readback within the device's largest buffer, maxBatch for fed stages, a tick's plan O(L) in a chain with depths kept in routes, fused windows tiled, placement in one pass, sends' lines in a map, pipelines flushed by terminateAll, the review's mends): 257,534; a group's buffers shrunk, and let go after 256 ticks without a group: 257,861; imports of codec.js each with a shim: 257,868; the binding limit read once: 257,842; stop 59's host queues counted across every runtime in one wasm memory (and let go at a runtime's stop): 258,222; a circuit breaker's protected operation turned away (its circuit open, its queue full, load shed) not counted as the kernel's failure: 258,371; the watchdog charging its stale kernels only: 258,547; health's recovering flag per device: 258,618; the degradation manager's load from running kernels: 258,610; errorRate counting a handler's failure once, the latency histogram growing with its longest, uptime stopping at dispose, memoryBudget 0 refused: 258,886; health's worst lost device: 259,022; alert callbacks let go at shutdown: 259,070; a handle's wait({ timeout, signal }): 259,368; the review's mends: 259,564; getKernel typed, the output queue's bound in telemetry: 259,576; a handle's readState: 259,836; the second review's mends (one readState future for the runtime's and handles', a recover() of every device counted as asked for from the call on): 259,876; a receive's timeout counted against the circuit breaker only when the kernel made no progress while it waited: 259,878; stop 60's state written from the host (initialState, writeState): 262,207; device events: 264,377; a helper's mends and memoryBudget's own reader: 264,492; the review's mends (answerReady through receive's own waiting receive, typed arrays told by tag and element size): 265,381; the second review's (receiveInto, which hands the answer on in the step that takes it, in place of answerReady; typed arrays told by the built-in tag getter): 265,834; receiveInto taking nothing when its callback received from the kernel itself: 266,090; a last read (one DeviceLost of a failed kernel for state reads and writes): 266,072; stop 61's optional device features (shader-f16 where the adapter has it, a handler's enable directives read for placement and a named refusal): 267,405; a review's mends (WGSL's blankspace in the directive scan, the features narrowing placement among the devices that meet the requirements) and GPU interop (gpuDevice, stateToGPU on the runtime and handles): 268,495; recovery kernel by kernel (a kernel the recovered device cannot rebuild stays failed, saying why, and the rest run again): 269,073; an audit's mends (a device's lost and uncaptured-error callbacks handed to JavaScript on the web instead of wgpu's forgotten Closures; streams dropped part way letting go of the caller's signal): 268,906; a review's mends (a terminated kernel's host checkpoint copied by stateToGPU, a failed kernel's move to its own device rebuilt there or refused, the copy kept from a shutdown): 268,977; a last read (state reads and copies sharing their checks): 268,875; the runtime's uncaptured-error listener added with addEventListener, leaving onuncapturederror to the application: 268,921; an orphaned terminate of a kernel its recovered device cannot rebuild ending it, stranded: 269,077. The goal is
# 150 KB (issue 16): lower this as the package shrinks.
wasm_size_budget=269077

# wasm-opt for the release wasm. -Oz is binaryen's shrink level 2 (-Os is 1: 95 bytes more,
# gzipped); --converge reruns the passes while they still shrink it;
# --low-memory-unused lets it fold constant offsets into loads and stores, which assumes the low
# 1 KiB of memory is never accessed: rustc puts the 1 MiB stack first in memory, growing down
# towards 0, so only a stack already overflowing would reach it. The producers and
# target_features sections are for tools; browsers and bundlers never read them.
wasm_opt_flags=(-Oz --converge --low-memory-unused --strip-producers --strip-target-features)

# Where cargo builds (CARGO_TARGET_DIR or target/): the bundler build and wasm-size.json go there.
target_dir=${CARGO_TARGET_DIR:-target}
wasm_size_file=$target_dir/wasm-size.json

# The npm package in pkg/: wasm-pack's `web` build at the root and its `bundler` build under
# pkg/bundler/, each .wasm shrunk by wasm-opt and its import names shortened
# (scripts/npm/minify-imports.mjs), and one package.json naming both (see
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

# A full test run from a fresh clone writes about 5 GB under target/ (native and wasm32 test
# builds, the release wasm, docs). A disk that fills mid-link fails with the linker's "Bus
# error", which names no cause, so the run says so before it starts.
check_free_disk() {
    local need_gb=5 free_kb
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

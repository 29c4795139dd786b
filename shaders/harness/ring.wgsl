// Ring harness: wraps a user `handle` in a bounded, barrier-free drain of a GPU-resident ring.
// Bindings: 0 control block (read_write), 1 input ring (read), 2 output ring (read_write);
// answer_or_drop.wgsl adds 3 (kept flags), state.wgsl adds 4 (the kernel's state).
// src/codegen prepends the message structs, replaces {{IN}}, {{OUT}} and {{WORKGROUP_SIZE}},
// appends one of answer.wgsl / answer_or_drop.wgsl (which define `ring_answer`), optionally
// state.wgsl, and finally the user's handler.

// Keep in sync with `ControlBlock` in src/queue.rs (size and offsets are asserted there).
struct ControlBlock {
    // Written by the host.
    active_flag: u32,
    terminate_flag: u32,
    capacity: u32,
    input_tail: u32,
    // Written by the GPU (ring_commit): free-running indices, wrap at 2^32.
    input_head: u32,
    output_tail: u32,
    dispatches: u32,
    _pad: u32,
    // Telemetry counted where the work happens; 64-bit counters as lo/hi pairs.
    processed_lo: atomic<u32>,
    processed_hi: atomic<u32>,
    dropped_lo: atomic<u32>,
    dropped_hi: atomic<u32>,
    _reserved: array<u32, 4>,
}

@group(0) @binding(0) var<storage, read_write> control: ControlBlock;
@group(0) @binding(1) var<storage, read> input_ring: array<{{IN}}>;
@group(0) @binding(2) var<storage, read_write> output_ring: array<{{OUT}}>;

// Messages waiting in the ring. Clamped to the capacity so a corrupt tail can never make a
// dispatch run longer than one ring's worth of work.
fn pending_messages() -> u32 {
    return min(control.input_tail - control.input_head, control.capacity);
}

fn is_running() -> bool {
    return control.active_flag != 0u && control.terminate_flag == 0u;
}

// Each invocation takes slots head+i, head+i+stride, ... (grid stride). Output slot i answers
// input slot i, so order holds without any sorting or barrier.
@compute @workgroup_size({{WORKGROUP_SIZE}})
fn ring_drain(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    if (!is_running()) {
        return;
    }
    let head = control.input_head;
    let pending = pending_messages();
    let stride = groups.x * {{WORKGROUP_SIZE}}u;
    var processed = 0u;
    var dropped = 0u;
    for (var i = gid.x; i < pending; i += stride) {
        let slot = (head + i) % control.capacity;
        if (!ring_answer(slot)) {
            dropped += 1u;
        }
        processed += 1u;
    }
    // 64-bit counters: carry into the high word when the low word wraps.
    if (processed > 0u) {
        let before = atomicAdd(&control.processed_lo, processed);
        if (before + processed < before) {
            atomicAdd(&control.processed_hi, 1u);
        }
    }
    if (dropped > 0u) {
        let before = atomicAdd(&control.dropped_lo, dropped);
        if (before + dropped < before) {
            atomicAdd(&control.dropped_hi, 1u);
        }
    }
}

// Runs as the next dispatch in the same pass, after every ring_drain invocation has finished:
// the GPU, not the host, advances the consumer index.
@compute @workgroup_size(1)
fn ring_commit() {
    if (!is_running()) {
        return;
    }
    let pending = pending_messages();
    control.input_head += pending;
    control.output_tail += pending;
    control.dispatches += 1u;
}

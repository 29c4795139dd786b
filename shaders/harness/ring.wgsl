// Ring harness: wraps a user `handle` in a bounded, barrier-free drain of GPU-resident rings.
// Bindings: 0 the input ring (read), 1 the output ring (read_write); answer_or_drop.wgsl adds 2
// (kept flags), state.wgsl adds 3 (the kernel's state). `ring_drain` uses each one it has: the
// pipeline's bind group layout is the one WebGPU derives from the bindings its entry point uses.
// src/codegen prepends the message structs, replaces {{IN}}, {{OUT}} and {{WORKGROUP_SIZE}} (the
// default of the pipeline-overridable RING_WORKGROUP_SIZE: a launch may set another),
// appends one of answer.wgsl / answer_or_drop.wgsl (which define `ring_answer`), optionally
// state.wgsl, and finally the user's handler.
//
// One dispatch per kernel and tick: the host writes the header and the tick's messages in one
// `writeBuffer`, and copies the counters and the answers back in one copy. The host owns the
// ring indices (it knows what it wrote and reads back what was processed); the GPU counts.

// Keep in sync with `RingHeader` in src/queue.rs (layout asserted there, text checked in tests).
struct RingInput {
    // Written by the host with every tick's messages.
    head: u32,
    count: u32,
    capacity: u32,
    running: u32,
    messages: array<{{IN}}>,
}

// Keep in sync with `RingCounters` in src/backend/gpu/ring.rs. Counted where the work happens,
// in 32 bits that wrap: the host reads them back after every dispatch, and a dispatch adds less
// than a ring holds, so the difference between two readings is exact.
struct RingOutput {
    processed: atomic<u32>,
    dropped: atomic<u32>,
    _reserved: array<u32, 6>,
    answers: array<{{OUT}}>,
}

// Invocations per workgroup: the definition's, unless the launch asked for another block size.
override RING_WORKGROUP_SIZE: u32 = {{WORKGROUP_SIZE}}u;

@group(0) @binding(0) var<storage, read> input_ring: RingInput;
@group(0) @binding(1) var<storage, read_write> output_ring: RingOutput;

// Each invocation takes slots head+i, head+i+stride, ... (grid stride) of the `count` messages
// the host wrote, clamped to the capacity so a corrupt header can never make a dispatch run
// longer than one ring's worth of work. Output slot i answers input slot i, so order holds
// without any sorting or barrier. Rings hold a power of two of slots (the host asserts it), so
// a mask wraps an index, whatever the head.
//
// Written for software adapters as much as GPUs, each measured on lavapipe at 100,000 messages
// (one invocation each): no early `return` (it doubled the dispatch), no `%` (+25%), and the
// processed count added once per dispatch by invocation 0, since every slot under `pending` is
// taken by construction (an atomic per invocation on one word doubled it again). One atomic
// there, not three: each more cost another 3-4%. Then on SwiftShader, at 100,000 messages
// (twenty dispatches a submit, medians of eight):
// - the count is also bounded by both arrays' own lengths. That changes nothing (the host sizes
//   both rings to exactly `capacity` slots), but the drain ran about 11% faster (91 ms to 81 ms,
//   the raw doubler 67 ms): a bound it sees in the arrays themselves, as in the raw doubler's
//   `arrayLength` loop;
// - the wrap is a mask, not a compare and a conditional subtract: 3-9% faster again, as fast as
//   no wrap at all.
@compute @workgroup_size(RING_WORKGROUP_SIZE)
fn ring_drain(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let capacity = input_ring.capacity;
    let slots = min(arrayLength(&input_ring.messages), arrayLength(&output_ring.answers));
    let pending = min(select(0u, min(input_ring.count, capacity), input_ring.running != 0u), slots);
    let mask = capacity - 1u;
    let head = input_ring.head;
    let stride = groups.x * RING_WORKGROUP_SIZE;
    var dropped = 0u;
    for (var i = gid.x; i < pending; i += stride) {
        if (!ring_answer((head + i) & mask)) {
            dropped += 1u;
        }
    }
    if (gid.x == 0u) {
        atomicAdd(&output_ring.processed, pending);
        // With state, src/codegen reads it here, so the entry point uses every binding the
        // harness declares and the pipeline's derived layout binds the state whether or not the
        // handler reads it; without, nothing.
        {{USE_STATE}}
    }
    // Only a handler that drops pays this, and only invocations that dropped.
    if (dropped > 0u) {
        atomicAdd(&output_ring.dropped, dropped);
    }
}

// Fused pipeline: runs every stage of a chain of connected kernels on each message in turn and
// writes only the last stage's answer (src/codegen/fused.rs fills it in; see there).
// Bindings: 0 the first stage's input ring (read), 1 the last stage's output ring, 2 the last
// stage's input ring (read, its header only). Only the last stage's counters are kept here:
// every message runs every stage (fused handlers never drop), so the host counts each earlier
// stage's processed messages as the last stage's.

// Keep in sync with `RingHeader` in src/queue.rs and ring.wgsl.
struct RingInput {
    head: u32,
    count: u32,
    capacity: u32,
    running: u32,
    messages: array<{{IN}}>,
}

// The header alone, for the last stage's input ring.
struct RingHeader {
    head: u32,
    count: u32,
    capacity: u32,
    running: u32,
}

// Keep in sync with `RingCounters` in src/backend/gpu/ring.rs and ring.wgsl.
struct RingCounters {
    processed: atomic<u32>,
    dropped: atomic<u32>,
    _reserved: array<u32, 6>,
}

struct RingOutput {
    counters: RingCounters,
    answers: array<{{OUT}}>,
}

override RING_WORKGROUP_SIZE: u32 = {{WORKGROUP_SIZE}}u;

@group(0) @binding(0) var<storage, read> input_ring: RingInput;
@group(0) @binding(1) var<storage, read_write> output_ring: RingOutput;
@group(0) @binding(2) var<storage, read> last_input: RingHeader;

// As ring.wgsl's drain (and shaped as it is for software adapters: the count bounded by the
// input array's length too, masks for the wraps); message i is answered in the last stage's slot
// head+i (rings hold a power of two of slots).
@compute @workgroup_size(RING_WORKGROUP_SIZE)
fn ring_drain(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let capacity = input_ring.capacity;
    let slots = arrayLength(&input_ring.messages);
    let pending = min(select(0u, min(input_ring.count, capacity), input_ring.running != 0u), slots);
    let in_mask = capacity - 1u;
    let head = input_ring.head;
    let out_mask = last_input.capacity - 1u;
    let out_head = last_input.head;
    let stride = groups.x * RING_WORKGROUP_SIZE;
    for (var i = gid.x; i < pending; i += stride) {
        output_ring.answers[(out_head + i) & out_mask] = fused_handle(input_ring.messages[(head + i) & in_mask]);
    }
    if (gid.x == 0u) {
        atomicAdd(&output_ring.counters.processed, pending);
    }
}

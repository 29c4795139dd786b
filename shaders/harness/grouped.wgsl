// Grouped harness: one dispatch drains the tick's messages of several kernels launched from the
// same handler (an actor "class" with many instances), instead of one dispatch per kernel.
// Bindings: 0 the group's input (read), 1 its answers (read_write), 2 kept flags (from
// answer_or_drop.wgsl, for handlers that may drop), 3 the group table (read_write). Grouped
// kernels have no state, so state.wgsl's binding 3 never appears here.
// src/codegen replaces {{IN}}, {{OUT}} and {{WORKGROUP_SIZE}} as for ring.wgsl and appends the
// same answer.wgsl / answer_or_drop.wgsl, whose `ring_answer(slot)` reads
// `input_ring.messages[slot]` and writes `output_ring.answers[slot]`: here a slot indexes the
// group's buffers.
//
// The host packs each member's messages back to back (member m's from `first` on) and writes
// the table in front of the dispatch. Invocations stride over all the group's messages as
// ring.wgsl's do over one kernel's, so sixteen members with one message each take one
// workgroup, as one kernel with sixteen would. Slot i answers slot i, so each member's order
// holds. The counters are the tick's own (the host zeroes them): a member's cumulative counters
// in its own output ring are left as they were. As in ring.wgsl, invocation 0 counts the whole
// dispatch once (every slot under `total` is taken by construction), and only a message that
// was dropped looks up its member (a binary search over the table) to count it there.

struct RingInput {
    messages: array<{{IN}}>,
}

struct RingOutput {
    answers: array<{{OUT}}>,
}

// Keep in sync with `GroupEntry` in src/backend/gpu/grouped.rs.
struct GroupEntry {
    // Slot of the member's first message (and answer) in the group's buffers.
    first: u32,
    count: u32,
    dropped: atomic<u32>,
    _reserved: u32,
}

// Keep in sync with `GroupHeader` in src/backend/gpu/grouped.rs.
struct GroupTable {
    members: u32,
    // Messages of all members together.
    total: u32,
    // What the dispatch processed: `total`, once it has run.
    processed: atomic<u32>,
    _reserved: u32,
    entries: array<GroupEntry>,
}

override RING_WORKGROUP_SIZE: u32 = {{WORKGROUP_SIZE}}u;

@group(0) @binding(0) var<storage, read> input_ring: RingInput;
@group(0) @binding(1) var<storage, read_write> output_ring: RingOutput;
@group(0) @binding(3) var<storage, read_write> group_table: GroupTable;

// The member whose slots hold `slot`: the last whose `first` is not past it (every member has
// at least one message, so the `first`s increase).
fn group_member(slot: u32) -> u32 {
    var low = 0u;
    var high = group_table.members;
    while (high - low > 1u) {
        let middle = (low + high) / 2u;
        if (group_table.entries[middle].first <= slot) {
            low = middle;
        } else {
            high = middle;
        }
    }
    return low;
}

@compute @workgroup_size(RING_WORKGROUP_SIZE)
fn ring_drain(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let total = group_table.total;
    let stride = groups.x * RING_WORKGROUP_SIZE;
    for (var slot = gid.x; slot < total; slot += stride) {
        if (!ring_answer(slot)) {
            atomicAdd(&group_table.entries[group_member(slot)].dropped, 1u);
        }
    }
    if (gid.x == 0u) {
        atomicAdd(&group_table.processed, total);
    }
}

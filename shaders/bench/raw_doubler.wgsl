// Raw doubler: the hand-written baseline `bench` holds the runtime against. No ring, no
// header, no counters: each invocation doubles values i, i + grid, ... of one batch.
// Bindings: 0 the batch (read), 1 the doubled values (read_write); both exactly batch-sized,
// so arrayLength is the message count.
// Keep WORKGROUP_SIZE in native/src/bench/raw.rs equal to @workgroup_size.

@group(0) @binding(0) var<storage, read> values: array<i32>;
@group(0) @binding(1) var<storage, read_write> doubled: array<i32>;

@compute @workgroup_size(64)
fn double_values(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let count = arrayLength(&values);
    let grid = groups.x * 64u;
    for (var i = gid.x; i < count; i += grid) {
        doubled[i] = values[i] * 2;
    }
}

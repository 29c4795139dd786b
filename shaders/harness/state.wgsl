// The kernel's state: zeroed at launch, kept across dispatches for the kernel's whole life,
// read on the host with `readState`. Every invocation sees the same array, so updates that
// can race must use atomics (declare the state as atomic<u32> or atomic<i32>).
@group(0) @binding(3) var<storage, read_write> state: array<{{STATE_ELEMENT}}, {{STATE_LEN}}>;

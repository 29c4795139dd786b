// WGSL has no 64-bit integers: `u64` is Pod but not a WGSL type.
use bytemuck::{Pod, Zeroable};
use ringkernel_web::RingMessage;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, RingMessage)]
struct Stamp {
    nanos: u64,
}

fn main() {}

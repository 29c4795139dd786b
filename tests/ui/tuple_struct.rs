// WGSL struct members have names; a tuple struct has none to give them.
use bytemuck::{Pod, Zeroable};
use ringkernel_web::RingMessage;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, RingMessage)]
struct Pair(f32, f32);

fn main() {}

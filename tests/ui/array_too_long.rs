// Chromium's WGSL compiler takes arrays of at most 65535 elements.
use bytemuck::{Pod, Zeroable};
use ringkernel_web::RingMessage;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, RingMessage)]
struct Samples {
    values: [u32; 70000],
}

fn main() {}

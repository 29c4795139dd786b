// A field named by a WGSL reserved word (`target`) fails the build, at the field: WGSL takes it
// for no struct member, so the message would have no layout.
use ringkernel_web::RingMessage;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, RingMessage)]
struct Light {
    target: u32,
    brightness: f32,
}

fn main() {}

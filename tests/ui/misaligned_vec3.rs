// Rust puts `position` at 4; WGSL aligns a vec3 to 16.
use bytemuck::{Pod, Zeroable};
use ringkernel_web::message::Vec3;
use ringkernel_web::RingMessage;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, RingMessage)]
struct Particle {
    mass: f32,
    position: Vec3<f32>,
}

fn main() {}

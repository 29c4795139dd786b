// Without #[repr(C)] Rust may reorder the fields.
use bytemuck::Zeroable;
use ringkernel_web::RingMessage;

#[derive(Clone, Copy, Zeroable, RingMessage)]
struct Sample {
    value: f32,
    count: u32,
}

fn main() {}

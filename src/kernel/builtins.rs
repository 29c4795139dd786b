//! The built-in kernels: WGSL from `shaders/kernels/` for GPU backends, and the same handler in
//! Rust for the `cpu` backend. The Rust handlers mirror the WGSL line for line (f32 arithmetic,
//! wrapping i32), so both backends answer alike; the GPU tests compare them.

use super::host::typed;
use super::{KernelDefinition, StateElement};
use crate::message::{FieldType, MessageLayout, RingMessage, Vec2};

/// f32 lanes per `vector_add` and `saxpy` message (the shaders loop to this bound).
pub const VECTOR_LANES: u32 = 32;
/// Samples per `histogram` message.
pub const HISTOGRAM_SAMPLES: u32 = 16;
/// Bins in the `histogram` kernel's state, evenly splitting [0, 1).
pub const HISTOGRAM_BINS: u32 = 64;
/// `mandelbrot` tiles are `MANDELBROT_TILE`² pixels.
pub const MANDELBROT_TILE: u32 = 8;
/// Cap on a `mandelbrot` tile's `max_iter`: no pixel iterates more than this.
pub const MANDELBROT_MAX_ITER: u32 = 1000;

const LANES: usize = VECTOR_LANES as usize;
const SAMPLES: usize = HISTOGRAM_SAMPLES as usize;
const PIXELS: usize = (MANDELBROT_TILE * MANDELBROT_TILE) as usize;

fn layout(name: &str, fields: &[(&str, FieldType)]) -> MessageLayout {
    // Matched, not `expect`ed: `expect` would link the error's `Debug` for a panic that cannot come.
    match MessageLayout::new(name, fields) {
        Ok(layout) => layout,
        Err(_) => unreachable!("built-in layouts are valid"),
    }
}

/// The doubler's request.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, RingMessage)]
struct Request {
    value: i32,
}

/// The doubler's response.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, RingMessage)]
struct Response {
    result: i32,
}

/// The `{ value: i32 }` request of the seeds' doubler.
pub fn doubler_request() -> MessageLayout {
    Request::layout()
}

/// The `{ result: i32 }` response of the seeds' doubler.
pub fn doubler_response() -> MessageLayout {
    Response::layout()
}

/// `{ a: f32, x, y: array<f32, 32> }`: `a` at 0, `x` at 4, `y` at 132 (f32 arrays align to 4).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, RingMessage)]
struct SaxpyInput {
    a: f32,
    x: [f32; LANES],
    y: [f32; LANES],
}

/// `{ origin: vec2<f32>, step: f32, max_iter: u32 }`, 16 bytes.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, RingMessage)]
struct MandelbrotTile {
    origin: Vec2<f32>,
    step: f32,
    max_iter: u32,
}

/// `shaders/kernels/mandelbrot.wgsl` on the host.
fn mandelbrot(tile: &MandelbrotTile) -> [u32; PIXELS] {
    let limit = tile.max_iter.min(MANDELBROT_MAX_ITER);
    let (side, origin) = (MANDELBROT_TILE as usize, tile.origin.0);
    std::array::from_fn(|p| {
        let c = [origin[0] + tile.step * (p % side) as f32, origin[1] + tile.step * (p / side) as f32];
        let (mut z, mut n) = ([0f32; 2], 0);
        while n < limit && z[0] * z[0] + z[1] * z[1] <= 4.0 {
            z = [z[0] * z[0] - z[1] * z[1] + c[0], 2.0 * z[0] * z[1] + c[1]];
            n += 1;
        }
        n
    })
}

/// `shaders/kernels/histogram.wgsl` on the host: bins samples in [0, 1) into the state.
fn histogram(samples: &[f32; SAMPLES], bins: &mut [u32]) -> u32 {
    let mut binned = 0;
    for &v in samples.iter().filter(|v| (0.0..1.0).contains(*v)) {
        bins[((v * HISTOGRAM_BINS as f32) as usize).min(HISTOGRAM_BINS as usize - 1)] += 1;
        binned += 1;
    }
    binned
}

pub(super) fn all() -> Vec<KernelDefinition> {
    let lanes = || FieldType::array(FieldType::F32, VECTOR_LANES);
    let echo = layout("EchoMessage", &[("value", FieldType::I32)]);
    vec![
        KernelDefinition::new(
            "doubler",
            doubler_request(),
            doubler_response(),
            include_str!(concat!(env!("OUT_DIR"), "/kernels/doubler.wgsl")),
        )
        .with_host_handler(typed(|r: &Request, _: &mut [u32]| Some(Response { result: r.value.wrapping_mul(2) }))),
        KernelDefinition::new("echo", echo.clone(), echo, include_str!(concat!(env!("OUT_DIR"), "/kernels/echo.wgsl")))
            .with_host_handler(typed(|value: &i32, _: &mut [u32]| Some(*value))),
        KernelDefinition::new(
            "vector_add",
            layout("VectorPair", &[("a", lanes()), ("b", lanes())]),
            layout("VectorSum", &[("sum", lanes())]),
            include_str!(concat!(env!("OUT_DIR"), "/kernels/vector_add.wgsl")),
        )
        .with_host_handler(typed(|pair: &[[f32; LANES]; 2], _: &mut [u32]| {
            Some(std::array::from_fn::<f32, LANES, _>(|i| pair[0][i] + pair[1][i]))
        })),
        KernelDefinition::new(
            "saxpy",
            SaxpyInput::layout(),
            layout("SaxpyOutput", &[("result", lanes())]),
            include_str!(concat!(env!("OUT_DIR"), "/kernels/saxpy.wgsl")),
        )
        .with_host_handler(typed(|m: &SaxpyInput, _: &mut [u32]| {
            Some(std::array::from_fn::<f32, LANES, _>(|i| m.a * m.x[i] + m.y[i]))
        })),
        KernelDefinition::new(
            "histogram",
            layout("HistogramSamples", &[("samples", FieldType::array(FieldType::F32, HISTOGRAM_SAMPLES))]),
            layout("HistogramAck", &[("binned", FieldType::U32)]),
            include_str!(concat!(env!("OUT_DIR"), "/kernels/histogram.wgsl")),
        )
        .with_state(StateElement::AtomicU32, HISTOGRAM_BINS)
        .with_host_handler(typed(|samples: &[f32; SAMPLES], bins: &mut [u32]| Some(histogram(samples, bins)))),
        KernelDefinition::new(
            "mandelbrot",
            MandelbrotTile::layout(),
            layout(
                "MandelbrotCounts",
                &[("iterations", FieldType::array(FieldType::U32, MANDELBROT_TILE * MANDELBROT_TILE))],
            ),
            include_str!(concat!(env!("OUT_DIR"), "/kernels/mandelbrot.wgsl")),
        )
        .with_host_handler(typed(|tile: &MandelbrotTile, _: &mut [u32]| Some(mandelbrot(tile)))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every built-in's host handler fits its layouts (the check launch runs on the cpu backend).
    #[test]
    fn every_builtin_has_a_host_handler_that_fits_its_layouts() {
        for def in all() {
            let host = def.host.as_ref().unwrap_or_else(|| panic!("{} has no host handler", def.id));
            host.0.check(&def.input, &def.output).unwrap_or_else(|e| panic!("{}: {e}", def.id));
        }
    }

    /// The derived message types are the layouts the shaders were written against.
    #[test]
    fn derived_messages_keep_their_wgsl_layouts() {
        let lanes = || FieldType::array(FieldType::F32, VECTOR_LANES);
        assert_eq!(doubler_request(), layout("Request", &[("value", FieldType::I32)]));
        assert_eq!(doubler_response(), layout("Response", &[("result", FieldType::I32)]));
        assert_eq!(
            SaxpyInput::layout(),
            layout("SaxpyInput", &[("a", FieldType::F32), ("x", lanes()), ("y", lanes())])
        );
        let tile = [
            ("origin", FieldType::vector(crate::message::Scalar::F32, 2)),
            ("step", FieldType::F32),
            ("max_iter", FieldType::U32),
        ];
        assert_eq!(MandelbrotTile::layout(), layout("MandelbrotTile", &tile));
    }

    #[test]
    fn host_mandelbrot_and_histogram_follow_the_shaders() {
        let inside = mandelbrot(&MandelbrotTile { origin: Vec2([-0.1, -0.1]), step: 0.01, max_iter: 5000 });
        assert!(inside.iter().all(|&n| n == MANDELBROT_MAX_ITER), "capped at 1000 like the WGSL");
        let outside = mandelbrot(&MandelbrotTile { origin: Vec2([2.0, 2.0]), step: 0.1, max_iter: 100 });
        assert!(outside.iter().all(|&n| n == 1));
        let mut bins = [0u32; HISTOGRAM_BINS as usize];
        let mut samples = [0.5f32; SAMPLES];
        samples[0] = 1.0; // outside [0, 1): not counted
        samples[1] = 0.999_999;
        assert_eq!(histogram(&samples, &mut bins), 15);
        assert_eq!((bins[32], bins[63]), (14, 1));
    }
}

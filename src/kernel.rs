//! Kernel definitions and the global registry (the seeds' `@ring_kernel` decorator registry).
//!
//! A definition is data: an id, input and output layouts, the WGSL source of `handle`, and
//! optionally a state array. Built-ins from `shaders/kernels/` are registered before any user
//! code runs.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use crate::message::{FieldType, MessageLayout, Scalar};

/// Default invocations per workgroup: 64 is a safe fit for every adapter's limits and a
/// multiple of common subgroup sizes (4 on SwiftShader, 32 on NVIDIA, 64 on AMD).
pub const DEFAULT_WORKGROUP_SIZE: u32 = 64;

/// Largest state array, in elements (64 MiB): well inside WebGPU's default 128 MiB binding.
pub const MAX_STATE_LEN: u32 = 1 << 24;

/// Element type of a kernel's state array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateElement {
    AtomicU32,
    AtomicI32,
    U32,
    I32,
    F32,
}

impl StateElement {
    pub const ALL: [StateElement; 5] =
        [StateElement::AtomicU32, StateElement::AtomicI32, StateElement::U32, StateElement::I32, StateElement::F32];

    /// Parses the WGSL spelling (what `Display` writes): `atomic<u32>`, `atomic<i32>`, `u32`,
    /// `i32`, `f32`; whitespace inside is ignored.
    pub fn parse(text: &str) -> Option<Self> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        Self::ALL.into_iter().find(|element| element.to_string() == compact)
    }

    /// The scalar the host reads back.
    pub fn scalar(self) -> Scalar {
        match self {
            StateElement::AtomicU32 | StateElement::U32 => Scalar::U32,
            StateElement::AtomicI32 | StateElement::I32 => Scalar::I32,
            StateElement::F32 => Scalar::F32,
        }
    }
}

impl fmt::Display for StateElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateElement::AtomicU32 => "atomic<u32>",
            StateElement::AtomicI32 => "atomic<i32>",
            StateElement::U32 => "u32",
            StateElement::I32 => "i32",
            StateElement::F32 => "f32",
        })
    }
}

/// A kernel's persistent state: `var<storage, read_write> state: array<element, len>`, zeroed
/// at launch and kept on the GPU until the kernel is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateSpec {
    pub element: StateElement,
    pub len: u32,
}

impl StateSpec {
    pub fn new(element: StateElement, len: u32) -> Self {
        StateSpec { element, len }
    }

    pub fn size_bytes(&self) -> u64 {
        4 * self.len as u64
    }
}

/// Everything needed to launch a ring kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelDefinition {
    pub id: String,
    pub input: MessageLayout,
    pub output: MessageLayout,
    /// WGSL defining `fn handle(msg: In) -> Out` (or, to drop messages,
    /// `fn handle(msg: In, out: ptr<function, Out>) -> bool`) plus any helpers it needs.
    pub wgsl: String,
    pub workgroup_size: u32,
    pub state: Option<StateSpec>,
}

impl KernelDefinition {
    pub fn new(id: &str, input: MessageLayout, output: MessageLayout, wgsl: &str) -> Self {
        KernelDefinition {
            id: id.to_owned(),
            input,
            output,
            wgsl: wgsl.to_owned(),
            workgroup_size: DEFAULT_WORKGROUP_SIZE,
            state: None,
        }
    }

    /// Gives the handler a `state` array (see [`StateSpec`]).
    pub fn with_state(mut self, element: StateElement, len: u32) -> Self {
        self.state = Some(StateSpec::new(element, len));
        self
    }

    pub fn with_workgroup_size(mut self, size: u32) -> Self {
        self.workgroup_size = size;
        self
    }
}

fn registry() -> &'static Mutex<HashMap<String, Arc<KernelDefinition>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<KernelDefinition>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let map = builtins().into_iter().map(|def| (def.id.clone(), Arc::new(def))).collect();
        Mutex::new(map)
    })
}

/// Registers (or replaces) a definition under its id, for `Runtime::launch(id)` to find.
pub fn register(definition: KernelDefinition) {
    registry().lock().expect("kernel registry poisoned").insert(definition.id.clone(), Arc::new(definition));
}

/// Looks a definition up by id.
pub fn lookup(id: &str) -> Option<Arc<KernelDefinition>> {
    registry().lock().expect("kernel registry poisoned").get(id).cloned()
}

/// Ids of every registered definition, sorted.
pub fn registered_ids() -> Vec<String> {
    let mut ids: Vec<String> = registry().lock().expect("kernel registry poisoned").keys().cloned().collect();
    ids.sort();
    ids
}

fn layout(name: &str, fields: &[(&str, FieldType)]) -> MessageLayout {
    MessageLayout::new(name, fields).expect("built-in layouts are valid")
}

/// The `{ value: i32 }` request of the seeds' doubler.
pub fn doubler_request() -> MessageLayout {
    layout("Request", &[("value", FieldType::I32)])
}

/// The `{ result: i32 }` response of the seeds' doubler.
pub fn doubler_response() -> MessageLayout {
    layout("Response", &[("result", FieldType::I32)])
}

/// f32 lanes per `vector_add` and `saxpy` message (the shaders loop to this bound).
pub const VECTOR_LANES: u32 = 32;
/// Samples per `histogram` message, and the number of bins in its state.
pub const HISTOGRAM_SAMPLES: u32 = 16;
pub const HISTOGRAM_BINS: u32 = 64;
/// `mandelbrot` tiles are `MANDELBROT_TILE`² pixels; iterations are capped at this bound.
pub const MANDELBROT_TILE: u32 = 8;
pub const MANDELBROT_MAX_ITER: u32 = 1000;

fn builtins() -> Vec<KernelDefinition> {
    let lanes = || FieldType::array(FieldType::F32, VECTOR_LANES);
    let echo = layout("EchoMessage", &[("value", FieldType::I32)]);
    vec![
        KernelDefinition::new(
            "doubler",
            doubler_request(),
            doubler_response(),
            include_str!("../shaders/kernels/doubler.wgsl"),
        ),
        KernelDefinition::new("echo", echo.clone(), echo, include_str!("../shaders/kernels/echo.wgsl")),
        KernelDefinition::new(
            "vector_add",
            layout("VectorPair", &[("a", lanes()), ("b", lanes())]),
            layout("VectorSum", &[("sum", lanes())]),
            include_str!("../shaders/kernels/vector_add.wgsl"),
        ),
        KernelDefinition::new(
            "saxpy",
            layout("SaxpyInput", &[("a", FieldType::F32), ("x", lanes()), ("y", lanes())]),
            layout("SaxpyOutput", &[("result", lanes())]),
            include_str!("../shaders/kernels/saxpy.wgsl"),
        ),
        KernelDefinition::new(
            "histogram",
            layout("HistogramSamples", &[("samples", FieldType::array(FieldType::F32, HISTOGRAM_SAMPLES))]),
            layout("HistogramAck", &[("binned", FieldType::U32)]),
            include_str!("../shaders/kernels/histogram.wgsl"),
        )
        .with_state(StateElement::AtomicU32, HISTOGRAM_BINS),
        KernelDefinition::new(
            "mandelbrot",
            layout(
                "MandelbrotTile",
                &[
                    ("origin", FieldType::vector(Scalar::F32, 2)),
                    ("step", FieldType::F32),
                    ("max_iter", FieldType::U32),
                ],
            ),
            layout(
                "MandelbrotCounts",
                &[("iterations", FieldType::array(FieldType::U32, MANDELBROT_TILE * MANDELBROT_TILE))],
            ),
            include_str!("../shaders/kernels/mandelbrot.wgsl"),
        ),
    ]
}

//! Kernel definitions and the global registry (the seeds' `@ring_kernel` decorator registry).
//!
//! A definition is data: an id, input and output layouts, the WGSL source of `handle` (for GPU
//! backends), a [`host`] handler (for the `cpu` backend), and optionally a state array. The
//! built-ins (`doubler`, `echo` and the rest in `builtins.rs`) are registered before any user code runs.

mod builtins;
pub mod host;

pub use builtins::{
    doubler_request, doubler_response, HISTOGRAM_BINS, HISTOGRAM_SAMPLES, MANDELBROT_MAX_ITER, MANDELBROT_TILE,
    VECTOR_LANES,
};
pub use host::{HostHandler, SharedHostHandler};

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::Error;
use crate::message::registry::Registry;
use crate::message::{MessageLayout, Scalar};
use crate::platform::option_name;

/// Default invocations per workgroup: 64 is a safe fit for every adapter's limits and a
/// multiple of common subgroup sizes (4 on SwiftShader, 32 on NVIDIA, 64 on AMD).
pub const DEFAULT_WORKGROUP_SIZE: u32 = 64;

/// Largest state array, in elements (64 MiB): well inside WebGPU's default 128 MiB binding.
pub const MAX_STATE_LEN: u32 = 1 << 24;

/// Element type of a kernel's state array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StateElement {
    /// `atomic<u32>`, for counters many invocations update at once.
    AtomicU32,
    /// `atomic<i32>`, for signed values many invocations update at once.
    AtomicI32,
    /// Plain `u32`.
    U32,
    /// Plain `i32`.
    I32,
    /// Plain `f32`.
    F32,
}

impl StateElement {
    /// Every element type.
    pub const ALL: [StateElement; 5] =
        [StateElement::AtomicU32, StateElement::AtomicI32, StateElement::U32, StateElement::I32, StateElement::F32];

    /// Parses the WGSL spelling (what `Display` writes): `atomic<u32>`, `atomic<i32>`, `u32`,
    /// `i32`, `f32`; whitespace inside is ignored.
    pub fn parse(text: &str) -> Option<Self> {
        let compact = without_white_space(text);
        Self::ALL.into_iter().find(|element| element.wgsl() == compact)
    }

    /// The WGSL spelling (what `Display` writes).
    pub(crate) fn wgsl(self) -> &'static str {
        match self {
            StateElement::AtomicU32 => "atomic<u32>",
            StateElement::AtomicI32 => "atomic<i32>",
            StateElement::U32 => "u32",
            StateElement::I32 => "i32",
            StateElement::F32 => "f32",
        }
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
        f.write_str(self.wgsl())
    }
}

/// A kernel's persistent state: `var<storage, read_write> state: array<element, len>`, zeroed
/// at launch and kept on the GPU until the kernel is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateSpec {
    /// Type of each element.
    pub element: StateElement,
    /// Number of elements (1 to [`MAX_STATE_LEN`]).
    pub len: u32,
}

impl StateSpec {
    /// A state array of `len` elements of `element`.
    pub fn new(element: StateElement, len: u32) -> Self {
        StateSpec { element, len }
    }

    /// Size of the array in bytes (every element is 4 bytes).
    pub fn size_bytes(&self) -> u64 {
        4 * self.len as u64
    }
}

/// Values for a kernel's state array: launched with them
/// ([`LaunchOptions::with_initial_state`](crate::LaunchOptions::with_initial_state)) or written
/// into it later ([`Runtime::write_state`](crate::Runtime::write_state)). Typed, so that a value
/// of the wrong scalar (an `f32` into a `u32` state) is refused instead of reinterpreted; from
/// a `Vec` or slice of `u32`, `i32` or `f32` (`vec![1u32, 2].into()`). In JavaScript, a
/// `Uint32Array`, `Int32Array` or `Float32Array`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum StateValues {
    /// For an `atomic<u32>` or `u32` state.
    U32(Vec<u32>),
    /// For an `atomic<i32>` or `i32` state.
    I32(Vec<i32>),
    /// For an `f32` state.
    F32(Vec<f32>),
}

impl StateValues {
    /// The scalar of each value.
    pub fn scalar(&self) -> Scalar {
        match self {
            StateValues::U32(_) => Scalar::U32,
            StateValues::I32(_) => Scalar::I32,
            StateValues::F32(_) => Scalar::F32,
        }
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        self.as_bytes().len() / 4
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as the state array holds them: 4 little-endian bytes each.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            StateValues::U32(values) => bytemuck::cast_slice(values),
            StateValues::I32(values) => bytemuck::cast_slice(values),
            StateValues::F32(values) => bytemuck::cast_slice(values),
        }
    }

    /// Refuses these values for kernel `id`'s state from element `index` on: a kernel without
    /// state, values of another scalar (`InvalidArgument`, a `TypeError` in JavaScript), or
    /// values past the array's end (`OutOfRange`, a `RangeError`).
    pub(crate) fn check(&self, id: &str, state: Option<StateSpec>, index: u32) -> Result<StateSpec, Error> {
        let quoted = crate::error::Quoted(id);
        let Some(spec) = state else { return Err(no_state(id)) };
        if spec.element.scalar() != self.scalar() {
            return Err(Error::InvalidArgument(format!(
                "the state of kernel {} is array<{}, {}>: give {}, got {}",
                quoted,
                spec.element,
                spec.len,
                state_values_name(spec.element.scalar()),
                state_values_name(self.scalar()),
            )));
        }
        if index as u64 + self.len() as u64 > spec.len as u64 {
            return Err(Error::OutOfRange(format!(
                "the state of kernel {quoted} has {} elements: {} values from index {index} do not fit",
                spec.len,
                self.len()
            )));
        }
        Ok(spec)
    }
}

/// The refusal of a state operation on kernel `id`, which declares no state.
pub(crate) fn no_state(id: &str) -> Error {
    // Natively the call, then the JavaScript option in parentheses: after a colon, so no
    // parentheses nest. (One literal either way: no argument more to format.)
    #[cfg(target_arch = "wasm32")]
    macro_rules! declare {
        () => {
            " (state: {{ type, length }})"
        };
    }
    #[cfg(not(target_arch = "wasm32"))]
    macro_rules! declare {
        () => {
            concat!(": ", option_name!("state: {{ type, length }}", "with_state(element, len)"))
        };
    }
    Error::InvalidArgument(format!(
        concat!("kernel {} has no state; declare one in its definition", declare!()),
        crate::error::Quoted(id)
    ))
}

/// What values of `scalar` are called where the caller gives them.
fn state_values_name(scalar: Scalar) -> &'static str {
    let (js, rust) = match scalar {
        Scalar::U32 => ("a Uint32Array", "u32 values"),
        Scalar::I32 => ("an Int32Array", "i32 values"),
        Scalar::F32 => ("a Float32Array", "f32 values"),
    };
    if cfg!(target_arch = "wasm32") {
        js
    } else {
        rust
    }
}

macro_rules! state_values_from {
    ($($scalar:ty => $variant:ident),*) => {$(
        impl From<Vec<$scalar>> for StateValues {
            fn from(values: Vec<$scalar>) -> Self {
                StateValues::$variant(values)
            }
        }

        impl From<&[$scalar]> for StateValues {
            fn from(values: &[$scalar]) -> Self {
                StateValues::$variant(values.to_vec())
            }
        }

        impl<const N: usize> From<[$scalar; N]> for StateValues {
            fn from(values: [$scalar; N]) -> Self {
                StateValues::$variant(values.to_vec())
            }
        }
    )*};
}

state_values_from!(u32 => U32, i32 => I32, f32 => F32);

/// How a launch shapes a GPU kernel's dispatches (RingKernel's grid and block), set through
/// `LaunchOptions`; the cpu backend runs none, but checks it against every device's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DispatchShape {
    /// Invocations per workgroup (the block), over the definition's `workgroup_size`.
    pub workgroup_size: Option<u32>,
    /// Most workgroups one dispatch may use (the grid); invocations take more messages each
    /// (grid stride) when there are more messages than invocations.
    pub max_workgroups: Option<u32>,
    /// Bytes of workgroup memory the handler can use, as `workgroup_memory: array<u32, N>`.
    pub workgroup_memory_bytes: u32,
    /// Never run inside a fused pipeline, nor in a grouped dispatch.
    pub unfused: bool,
}

/// The most a device runs: invocations in one workgroup, bytes of workgroup memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShapeLimits {
    pub invocations: u32,
    pub workgroup_memory_bytes: u32,
    /// Who sets them, for the error text.
    pub set_by: &'static str,
}

impl ShapeLimits {
    /// WebGPU's least limits, which every device meets. A definition's own `workgroup_size` is
    /// held to them, and the cpu backend holds launches to them, so a shape that launches there
    /// launches on any GPU.
    pub const PORTABLE: ShapeLimits =
        ShapeLimits { invocations: 256, workgroup_memory_bytes: 16384, set_by: "every WebGPU device" };
}

impl DispatchShape {
    /// Refuses, by its launch option, a shape no device runs (an empty block or grid) or one
    /// beyond `limits`.
    pub(crate) fn check(&self, limits: &ShapeLimits) -> Result<(), Error> {
        let most = limits.invocations;
        if let Some(size) = self.workgroup_size.filter(|&size| size == 0 || size > most) {
            return Err(Error::OutOfRange(format!(
                concat!(
                    option_name!("workgroupSize", "block_size"),
                    " must be 1 to {} (what {} runs in one workgroup), got {}"
                ),
                most, limits.set_by, size
            )));
        }
        if self.max_workgroups == Some(0) {
            return Err(Error::OutOfRange(
                concat!(
                    option_name!("maxWorkgroups", "grid_size"),
                    " must be at least 1: a grid of 0 workgroups runs nothing"
                )
                .into(),
            ));
        }
        if self.workgroup_memory_bytes > limits.workgroup_memory_bytes {
            return Err(Error::OutOfRange(format!(
                concat!(
                    option_name!("sharedMemory", "shared_memory"),
                    " must be at most {} bytes (what {} has), got {}"
                ),
                limits.workgroup_memory_bytes, limits.set_by, self.workgroup_memory_bytes
            )));
        }
        Ok(())
    }
}

/// Everything needed to launch a ring kernel.
///
/// On lavapipe (llvmpipe, software Vulkan) any one WGSL loop stops after 65,535 iterations
/// without an error: a handler that loops longer answers wrongly there.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KernelDefinition {
    /// The id the kernel is registered and launched under.
    pub id: String,
    /// Layout of the messages the kernel takes.
    pub input: MessageLayout,
    /// Layout of the answers the kernel gives.
    pub output: MessageLayout,
    /// WGSL defining `fn handle(msg: In) -> Out` (or, to drop messages,
    /// `fn handle(msg: In, out: ptr<function, Out>) -> bool`) plus any helpers it needs. Empty
    /// for a kernel that only has a host handler (it runs on the `cpu` backend only).
    pub wgsl: String,
    /// The same handler for the host, run by the `cpu` backend.
    pub host: Option<SharedHostHandler>,
    /// Invocations per workgroup (1 to 256; default [`DEFAULT_WORKGROUP_SIZE`]).
    pub workgroup_size: u32,
    /// The handler's persistent `state` array, if it has one.
    pub state: Option<StateSpec>,
}

impl KernelDefinition {
    /// A kernel `id` taking `input` messages and answering `output` ones with the WGSL `handle`
    /// in `wgsl` (empty for a kernel with only a host handler).
    pub fn new(id: &str, input: MessageLayout, output: MessageLayout, wgsl: &str) -> Self {
        KernelDefinition {
            id: id.to_owned(),
            input,
            output,
            wgsl: wgsl.to_owned(),
            host: None,
            workgroup_size: DEFAULT_WORKGROUP_SIZE,
            state: None,
        }
    }

    /// Gives the kernel a handler for the `cpu` backend (see [`host`]).
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_host_handler(mut self, handler: impl HostHandler + 'static) -> Self {
        self.host = Some(SharedHostHandler::new(handler));
        self
    }

    /// Whether the kernel can run on a GPU backend (it has WGSL).
    pub fn has_wgsl(&self) -> bool {
        !self.wgsl.trim().is_empty()
    }

    /// Gives the handler a `state` array (see [`StateSpec`]).
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_state(mut self, element: StateElement, len: u32) -> Self {
        self.state = Some(StateSpec::new(element, len));
        self
    }

    /// The same kernel under another id, for a second instance of it.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_id(mut self, id: &str) -> Self {
        self.id = id.to_owned();
        self
    }

    /// Sets the invocations per workgroup (1 to 256; default [`DEFAULT_WORKGROUP_SIZE`]).
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_workgroup_size(mut self, size: u32) -> Self {
        self.workgroup_size = size;
        self
    }

    /// Checks the numbers a definition is made of: the workgroup size and the state length.
    /// Code generation refuses a definition that fails; front ends may ask earlier, to report
    /// the mistake where it was written.
    pub fn check_shape(&self) -> Result<(), String> {
        let most = ShapeLimits::PORTABLE.invocations;
        if !(1..=most).contains(&self.workgroup_size) {
            return Err(format!(
                concat!(option_name!("workgroupSize", "workgroup_size"), " must be 1 to {}, got {}"),
                most, self.workgroup_size
            ));
        }
        if let Some(state) = self.state.filter(|state| !(1..=MAX_STATE_LEN).contains(&state.len)) {
            return Err(format!("state length must be 1 to {MAX_STATE_LEN}, got {}", state.len));
        }
        Ok(())
    }
}

fn registry() -> &'static Mutex<Registry<KernelDefinition>> {
    static REGISTRY: OnceLock<Mutex<Registry<KernelDefinition>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = Registry::default();
        for def in builtins::all() {
            registry.insert(def.id.clone(), Arc::new(def));
        }
        Mutex::new(registry)
    })
}

/// Registers a definition under its id, for `Runtime::launch(id)` to find. An id that is
/// already registered is refused (`InvalidArgument`), so two kernels never silently share one;
/// see [`register_or_replace`].
///
/// ```
/// use ringkernel_web::kernel::{self, KernelDefinition};
/// use ringkernel_web::{FieldType, MessageLayout};
///
/// let request = MessageLayout::new("Request", &[("value", FieldType::I32)])?;
/// let response = MessageLayout::new("Response", &[("result", FieldType::I32)])?;
/// let wgsl = "fn handle(msg: Request) -> Response { return Response(msg.value + 1); }";
/// kernel::register(KernelDefinition::new("increment", request, response, wgsl))?;
/// assert!(kernel::lookup("increment").is_some());
/// // A second definition under the id is refused: `register_or_replace` replaces it.
/// # let (request, response) = (kernel::lookup("increment").unwrap().input.clone(), kernel::lookup("increment").unwrap().output.clone());
/// assert!(kernel::register(KernelDefinition::new("increment", request, response, wgsl)).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] when a definition is registered under its id already.
pub fn register(definition: KernelDefinition) -> Result<(), Error> {
    let id = definition.id.clone();
    match register_new(definition) {
        true => Ok(()),
        false => Err(Error::InvalidArgument(format!(
            "a kernel named {} is already registered; register_or_replace replaces it, and a second instance \
             runs under another id (Runtime::launch_as)",
            crate::error::Quoted(&id)
        ))),
    }
}

/// [`register`] without its error's text: `false`, registering nothing, when the id is taken.
/// JavaScript's `ringKernel` words its own refusal, so the wasm links no text it would drop.
pub(crate) fn register_new(definition: KernelDefinition) -> bool {
    let mut registry = registry().lock().expect("kernel registry poisoned");
    if registry.contains(&definition.id) {
        return false;
    }
    registry.insert(definition.id.clone(), Arc::new(definition));
    true
}

/// Registers a definition under its id, replacing any registered under the same id (kernels
/// already launched keep the definition they were launched with).
pub fn register_or_replace(definition: KernelDefinition) {
    registry().lock().expect("kernel registry poisoned").insert(definition.id.clone(), Arc::new(definition));
}

/// Looks a definition up by id.
pub fn lookup(id: &str) -> Option<Arc<KernelDefinition>> {
    registry().lock().expect("kernel registry poisoned").get(id)
}

/// Ids of every registered definition, sorted.
pub fn registered_ids() -> Vec<String> {
    registry().lock().expect("kernel registry poisoned").names()
}

/// Whether `id` (what `what` names: kernel ids, an envelope's source) is as long as a kernel
/// id may be: 1 to 128 bytes.
pub(crate) fn check_id_length(what: &str, id: &str) -> Result<(), Error> {
    if id.is_empty() || id.len() > 128 {
        return Err(Error::OutOfRange(format!("{what} must be 1 to 128 bytes long (UTF-8), got {}", id.len())));
    }
    Ok(())
}

/// `text` without its white space (`char::is_whitespace`), as a state type and a handler's
/// types are compared. Pushed, not collected: `String`'s `FromIterator<char>` was an instance
/// linked for these two alone.
pub(crate) fn without_white_space(text: &str) -> String {
    let mut compact = String::with_capacity(text.len());
    for c in text.chars() {
        if !c.is_whitespace() {
            compact.push(c);
        }
    }
    compact
}

#[cfg(test)]
mod tests {
    use super::{lookup, register, register_new, KernelDefinition, StateElement};
    use crate::message::{FieldType, MessageLayout};

    /// A taken id: `register_new` keeps the first definition and says `false`; `register` refuses
    /// with the text it always had (the wasm words its own, from `register_new`).
    #[test]
    fn a_taken_id_keeps_its_first_definition() {
        let layout = MessageLayout::new("TakenIdValue", &[("value", FieldType::U32)]).unwrap();
        let define = |wgsl: &str| KernelDefinition::new("taken \"id\"", layout.clone(), layout.clone(), wgsl);
        let first = "fn handle(msg: TakenIdValue) -> TakenIdValue { return msg; }";
        let second = "fn handle(msg: TakenIdValue) -> TakenIdValue { return TakenIdValue(1u); }";
        assert!(register_new(define(first)));
        assert!(!register_new(define(second)));
        let refused = register(define(second)).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "invalid argument: a kernel named 'taken \"id\"' is already registered; register_or_replace \
             replaces it, and a second instance runs under another id (Runtime::launch_as)"
        );
        assert_eq!(lookup("taken \"id\"").unwrap().wgsl, first);
    }

    /// A state type is read with its white space skipped, and only as one of the five types.
    #[test]
    fn state_types_are_read_without_their_white_space() {
        for element in StateElement::ALL {
            assert_eq!(StateElement::parse(element.wgsl()), Some(element));
        }
        for (text, read) in [
            (" atomic < u32 > ", Some(StateElement::AtomicU32)),
            ("atomic<\ti32>\n", Some(StateElement::AtomicI32)),
            ("u 32", Some(StateElement::U32)),
            ("\u{2028}f32", Some(StateElement::F32)),
            ("atomic<f32>", None),
            ("atomic<u32", None),
            ("u32u32", None),
            ("", None),
            (" ", None),
        ] {
            assert_eq!(StateElement::parse(text), read, "{text:?}");
        }
    }
}

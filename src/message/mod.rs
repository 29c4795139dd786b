//! Message types: field types, their WGSL byte layout and the WGSL struct text.
//!
//! The layout follows WGSL's storage-buffer rules exactly (alignment and size per type, struct
//! padding, array stride = element size rounded up to its alignment), so a packed message can be
//! copied straight into a GPU ring slot. A test asks naga for the offsets of the generated
//! struct and compares.
//!
//! - [`value`]: host values ↔ packed bytes (`encode`, `decode`);
//! - [`registry`]: message types by name (the seeds' `@message`), so fields can name them;
//! - [`typed`]: messages as Rust types (`#[derive(RingMessage)]`), their layout checked at
//!   compile time.

pub mod registry;
pub mod typed;
pub mod value;

use std::fmt::{self, Write as _};
use std::sync::Arc;

/// `#[derive(RingMessage)]`: exported beside the [`RingMessage`] trait it implements, so one
/// `use` brings both.
pub use ringkernel_web_derive::RingMessage;
pub use typed::{same_bytes, RingMessage, Vec2, Vec3, Vec4, WgslScalar, WgslType};
pub use value::Value;

/// One message as a caller holds it, borrowed: its fields as a [`Value::Struct`] (matched to
/// the layout by name), or its bytes already in the kernel's input layout (checked against
/// its size). [`Runtime::send_message`](crate::Runtime::send_message),
/// [`call_message`](crate::Runtime::call_message), `try_send_message`, `send_message_now` and
/// `send_envelope_message` take either.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum MessageRef<'a> {
    /// Named fields: a [`Value::Struct`].
    Value(&'a Value),
    /// Bytes in the kernel's input layout.
    Bytes(&'a [u8]),
}

/// Largest message, in bytes: 128 MiB, WebGPU's default `maxStorageBufferBindingSize`, the
/// most one ring binding holds, so a larger message could not have a single slot. The bound also
/// keeps every size and offset of a layout far from `u32` overflow.
pub const MAX_MESSAGE_SIZE: u32 = 1 << 27;

/// Most elements of one fixed-size array: Chromium's WGSL compiler (Tint) refuses a longer
/// array (`array count (N) must be less than 65536`), so a message holding one could never
/// compile on the web. Nested arrays reach larger messages.
pub const MAX_ARRAY_LENGTH: u32 = 65_535;

/// Deepest nesting of composite types (vectors, arrays, messages) in a message, the message
/// itself included: WGSL's implementation limit, which every WGSL compiler supports. Types and
/// values nested deeper are refused before anything recurses through them.
pub const MAX_NESTING: u32 = 15;

/// The scalar underneath every numeric field type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scalar {
    /// WGSL `i32`: a 32-bit signed integer.
    I32,
    /// WGSL `u32`: a 32-bit unsigned integer.
    U32,
    /// WGSL `f32`: a 32-bit float.
    F32,
}

/// A field's WGSL type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldType {
    /// A single `i32`, `u32` or `f32`.
    Scalar(Scalar),
    /// `vecN<T>` with N in 2..=4.
    Vector(Scalar, u32),
    /// `array<T, N>` of any other field type.
    Array(Box<FieldType>, u32),
    /// Another message type, nested by value.
    Struct(Arc<MessageLayout>),
}

impl FieldType {
    /// The `i32` field type.
    pub const I32: FieldType = FieldType::Scalar(Scalar::I32);
    /// The `u32` field type.
    pub const U32: FieldType = FieldType::Scalar(Scalar::U32);
    /// The `f32` field type.
    pub const F32: FieldType = FieldType::Scalar(Scalar::F32);

    /// `vecN<scalar>`; `n` must be 2, 3 or 4.
    ///
    /// # Panics
    /// When `n` is not 2, 3 or 4 (WGSL has no other vectors).
    pub fn vector(scalar: Scalar, n: u32) -> FieldType {
        assert!((2..=4).contains(&n), "WGSL vectors have 2 to 4 components, not {n}");
        FieldType::Vector(scalar, n)
    }

    /// `array<element, len>`; `len` must be at least 1.
    ///
    /// # Panics
    /// When `len` is 0 (WGSL has no empty fixed-size arrays).
    pub fn array(element: FieldType, len: u32) -> FieldType {
        assert!(len > 0, "WGSL fixed-size arrays have at least one element");
        FieldType::Array(Box::new(element), len)
    }

    /// A nested message.
    pub fn message(layout: &MessageLayout) -> FieldType {
        FieldType::Struct(Arc::new(layout.clone()))
    }

    /// Parses the WGSL spelling: `i32`, `vec3<f32>`, `array<f32, 16>`, or the name of a message
    /// in the [`registry`] (`Particle`, `array<Particle, 8>`).
    pub fn parse(text: &str) -> Option<FieldType> {
        Self::parse_with(text, &registry::lookup)
    }

    /// [`parse`](Self::parse) with the message names resolved by `messages`.
    pub fn parse_with(text: &str, messages: &dyn Fn(&str) -> Option<Arc<MessageLayout>>) -> Option<FieldType> {
        Self::parse_nested(text, messages, 0)
    }

    /// [`parse_with`](Self::parse_with) `depth` arrays deep; deeper than [`MAX_NESTING`] is
    /// refused rather than recursed into (a long `array<array<...` string would otherwise
    /// overflow the stack).
    fn parse_nested(
        text: &str,
        messages: &dyn Fn(&str) -> Option<Arc<MessageLayout>>,
        depth: u32,
    ) -> Option<FieldType> {
        if depth >= MAX_NESTING {
            return None;
        }
        let text = text.trim();
        if let Some(s) = Scalar::parse(text) {
            return Some(FieldType::Scalar(s));
        }
        let generic = |prefix: &str| text.strip_prefix(prefix)?.trim_start().strip_prefix('<')?.strip_suffix('>');
        for n in 2..=4 {
            if let Some(inner) = generic(&format!("vec{n}")) {
                return Scalar::parse(inner).map(|s| FieldType::Vector(s, n));
            }
        }
        if let Some(inner) = generic("array") {
            let (element, len) = inner.rsplit_once(',')?;
            let len: u32 = len.trim().trim_end_matches('u').parse().ok()?;
            if len == 0 {
                return None;
            }
            return Some(FieldType::Array(Box::new(Self::parse_nested(element, messages, depth + 1)?), len));
        }
        if is_identifier(text) {
            return messages(text).map(FieldType::Struct);
        }
        None
    }

    /// WGSL alignment in bytes.
    pub fn align(&self) -> u32 {
        match self {
            FieldType::Scalar(_) => 4,
            FieldType::Vector(_, 2) => 8,
            FieldType::Vector(..) => 16,
            FieldType::Array(element, _) => element.align(),
            FieldType::Struct(layout) => layout.align,
        }
    }

    /// WGSL size in bytes (vec3 is 12, not 16; its alignment pads what follows). Saturates at
    /// `u32::MAX` for types too large for any message (see [`MAX_MESSAGE_SIZE`]).
    pub fn size(&self) -> u32 {
        self.size_u64().min(u32::MAX as u64) as u32
    }

    /// Distance between consecutive elements when this type is an array element.
    pub fn stride(&self) -> u32 {
        self.stride_u64().min(u32::MAX as u64) as u32
    }

    /// The size without overflow: `array<array<f32, 65536>, 65536>` is 16 GiB, not 0.
    fn size_u64(&self) -> u64 {
        match self {
            FieldType::Scalar(_) => 4,
            FieldType::Vector(_, n) => 4 * *n as u64,
            FieldType::Array(element, n) => (*n as u64).saturating_mul(element.stride_u64()),
            FieldType::Struct(layout) => layout.size as u64,
        }
    }

    fn stride_u64(&self) -> u64 {
        round_up_u64(self.size_u64(), self.align() as u64)
    }

    /// How deeply composite types nest in this one (a scalar is 0, `vec3<f32>` is 1, a message
    /// of scalars is 1).
    pub fn depth(&self) -> u32 {
        match self {
            FieldType::Scalar(_) => 0,
            FieldType::Vector(..) => 1,
            FieldType::Array(element, _) => 1 + element.depth(),
            FieldType::Struct(layout) => layout.depth(),
        }
    }

    /// The scalar underneath, for types made only of numbers (`None` when a struct is inside).
    pub fn scalar(&self) -> Option<Scalar> {
        match self {
            FieldType::Scalar(s) | FieldType::Vector(s, _) => Some(*s),
            FieldType::Array(element, _) => element.scalar(),
            FieldType::Struct(_) => None,
        }
    }

    /// How many numbers a flat host value of this numeric type carries (vectors and arrays are
    /// flat lists in memory order).
    pub fn scalar_count(&self) -> u32 {
        match self {
            FieldType::Scalar(_) => 1,
            FieldType::Vector(_, n) => *n,
            FieldType::Array(element, n) => n * element.scalar_count(),
            FieldType::Struct(layout) => layout.fields.iter().map(|f| f.ty.scalar_count()).sum(),
        }
    }
}

impl Scalar {
    /// Every scalar type.
    pub const ALL: [Scalar; 3] = [Scalar::I32, Scalar::U32, Scalar::F32];

    /// Parses the WGSL spelling (what `Display` writes).
    fn parse(text: &str) -> Option<Scalar> {
        Self::ALL.into_iter().find(|scalar| scalar.wgsl() == text.trim())
    }

    /// The scalar a plain `T` is made of: `f32` for `f32`, `[f32; 4]` or `[[f32; 2]; 3]` (the
    /// name inside the brackets); `None` for any other type (a struct's fields are its own).
    pub(crate) fn of_pod<T>() -> Option<Scalar> {
        let inner = std::any::type_name::<T>().trim_start_matches('[').split(';').next().unwrap_or_default();
        Scalar::parse(inner)
    }

    /// The WGSL spelling (what `Display` writes).
    fn wgsl(self) -> &'static str {
        match self {
            Scalar::I32 => "i32",
            Scalar::U32 => "u32",
            Scalar::F32 => "f32",
        }
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wgsl())
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldType::Scalar(s) => write!(f, "{s}"),
            FieldType::Vector(s, n) => write!(f, "vec{n}<{s}>"),
            FieldType::Array(element, n) => write!(f, "array<{element}, {n}>"),
            FieldType::Struct(layout) => f.write_str(&layout.name),
        }
    }
}

/// One named field at its byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Field {
    /// The field's name, a WGSL identifier.
    pub name: String,
    /// The field's type.
    pub ty: FieldType,
    /// Byte offset of the field from the start of the message.
    pub offset: u32,
}

/// A message type: a WGSL struct with a fixed byte layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageLayout {
    name: String,
    fields: Vec<Field>,
    size: u32,
    align: u32,
}

/// Why a message type or a message value was refused; the runtime adds the kernel id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FieldError {
    /// The field's path: `mass`, `bodies[2].position`, or the struct name for whole-type problems.
    pub field: String,
    /// What is wrong, phrased to follow the field's name (`appears twice`).
    pub problem: String,
}

impl FieldError {
    pub(crate) fn new(field: &str, problem: impl Into<String>) -> Self {
        FieldError { field: field.to_owned(), problem: problem.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' {}", self.field, self.problem)
    }
}

impl std::error::Error for FieldError {}

/// So a layout can be built with `?` in a function returning [`crate::Result`].
impl From<FieldError> for crate::Error {
    fn from(error: FieldError) -> Self {
        crate::Error::InvalidArgument(error.to_string())
    }
}

const fn round_up(value: u32, align: u32) -> u32 {
    value.div_ceil(align) * align
}

fn round_up_u64(value: u64, align: u64) -> u64 {
    value.div_ceil(align).saturating_mul(align)
}

pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
        && name != "_"
}

/// What [`is_identifier`] takes, as a refusal says it: WGSL identifiers of ASCII characters.
const IDENTIFIER_RULE: &str =
    "is not a name messages take: ASCII letters, digits and `_`, not starting with a digit or `__`, not `_` alone";

/// WGSL's keywords and reserved words (as naga 30 lists them, after the WGSL spec's keyword
/// summary), one text with a space after each: no message and no field may be named by one.
const WGSL_RESERVED_WORDS: &str =
    "alias break case const const_assert continue continuing default diagnostic discard else \
     enable false fn for if let loop override requires return struct switch true var while \
     NULL Self abstract active alignas alignof as asm asm_fragment async attribute auto await \
     become cast catch class co_await co_return co_yield coherent column_major common compile \
     compile_fragment concept const_cast consteval constexpr constinit crate debugger decltype \
     delete demote demote_to_helper do dynamic_cast enum explicit export extends extern \
     external fallthrough filter final finally friend from fxgroup get goto groupshared highp \
     impl implements import inline instanceof interface layout lowp macro macro_rules match \
     mediump meta mod module move mut mutable namespace new nil noexcept noinline \
     nointerpolation non_coherent noncoherent noperspective null nullptr of operator package \
     packoffset partition pass patch pixelfragment precise precision premerge priv protected \
     pub public readonly ref regardless register reinterpret_cast require resource restrict \
     self set shared sizeof smooth snorm static static_assert static_cast std subroutine super \
     target template this thread_local throw trait try type typedef typeid typename typeof \
     union unless unorm unsafe unsized use using varying virtual volatile wgsl where with \
     writeonly yield";

/// Names a message struct may not take besides [`WGSL_RESERVED_WORDS`]: WGSL's predeclared
/// types (a user struct called `vec3` would shadow the builtin inside the generated module)
/// and enumerants (a struct called `storage` or `function` would stand for the harness's
/// `var<storage, read>` and a handler's `ptr<function, ..>`), and what the ring harness
/// declares or calls (`shaders/harness/`; a struct called `min` would shadow the builtin the
/// drain calls). Names starting `ring_` are the harness's too.
const RESERVED_NAMES: &str = "bool i32 u32 f32 f16 array atomic vec2 vec3 vec4 mat2x2 mat2x3 mat2x4 mat3x2 mat3x3 \
     mat3x4 mat4x2 mat4x3 mat4x4 ptr sampler sampler_comparison texture_1d texture_2d \
     texture_2d_array texture_3d texture_cube texture_cube_array texture_multisampled_2d \
     texture_depth_multisampled_2d texture_external texture_storage_1d texture_storage_2d \
     texture_storage_2d_array texture_storage_3d texture_depth_2d texture_depth_2d_array \
     texture_depth_cube texture_depth_cube_array RingInput RingOutput RingHeader RingCounters \
     GroupEntry GroupTable RING_WORKGROUP_SIZE group_member group_table fused_handle handle \
     input_ring output_ring output_kept last_input state workgroup_memory arrayLength \
     atomicAdd atomicLoad min select function private workgroup uniform storage read write read_write";

impl MessageLayout {
    /// Lays out `fields` in order by WGSL's rules. Names must be WGSL identifiers and unique.
    pub fn new(name: &str, fields: &[(&str, FieldType)]) -> Result<Self, FieldError> {
        if !is_identifier(name) {
            return Err(FieldError::new(name, IDENTIFIER_RULE));
        }
        if typed::__private::is_reserved_name(name) {
            return Err(FieldError::new(name, "is reserved by WGSL or the ring harness; pick another struct name"));
        }
        if fields.is_empty() {
            return Err(FieldError::new(name, "has no fields (WGSL structs need at least one)"));
        }
        let mut laid = Vec::with_capacity(fields.len());
        let mut offset = 0;
        let mut align = 4;
        for (field_name, ty) in fields {
            if !is_identifier(field_name) {
                return Err(FieldError::new(field_name, IDENTIFIER_RULE));
            }
            if typed::__private::is_reserved_word(field_name) {
                return Err(FieldError::new(field_name, "is a WGSL keyword or reserved word; pick another field name"));
            }
            if laid.iter().any(|f: &Field| f.name == *field_name) {
                return Err(FieldError::new(field_name, "appears twice"));
            }
            if let Some(problem) = ty.malformed() {
                return Err(FieldError::new(field_name, problem));
            }
            if ty.contains_struct_named(name) {
                return Err(FieldError::new(field_name, format!("nests {name} inside itself")));
            }
            if ty.depth() + 1 > MAX_NESTING {
                return Err(FieldError::new(
                    field_name,
                    format!("nests types {} deep in {name}; WGSL allows {MAX_NESTING}", ty.depth() + 1),
                ));
            }
            // Checked in u64 before anything is computed in u32: with every field at most
            // MAX_MESSAGE_SIZE, the running offset below cannot overflow either.
            let end = round_up_u64(offset as u64, ty.align() as u64) + ty.size_u64();
            if end > MAX_MESSAGE_SIZE as u64 {
                return Err(FieldError::new(
                    field_name,
                    format!(
                        "ends at byte {end} of {name}, but a message may take at most {MAX_MESSAGE_SIZE} bytes (128 \
                         MiB, what one ring slot can ever be bound as)"
                    ),
                ));
            }
            if let Some(len) = ty.longest_array().filter(|&len| len > MAX_ARRAY_LENGTH) {
                return Err(FieldError::new(
                    field_name,
                    format!(
                        "holds an array of {len} elements; WGSL compilers take at most {MAX_ARRAY_LENGTH} \
                         (nest arrays for more)"
                    ),
                ));
            }
            offset = round_up(offset, ty.align());
            align = align.max(ty.align());
            laid.push(Field { name: (*field_name).to_owned(), ty: ty.clone(), offset });
            offset += ty.size();
        }
        let layout = MessageLayout { name: name.to_owned(), fields: laid, size: round_up(offset, align), align };
        layout.structs()?; // two different nested types under one name cannot both be declared
        Ok(layout)
    }

    /// Starts a layout field by field: `MessageLayout::builder("Particle").field("mass",
    /// FieldType::F32).build()`.
    pub fn builder(name: &str) -> MessageBuilder {
        MessageBuilder { name: name.to_owned(), fields: Vec::new() }
    }

    /// The struct's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The fields in declaration order, with their offsets.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }
    /// Bytes per message, which is also the ring slot stride.
    pub fn size(&self) -> usize {
        self.size as usize
    }
    /// WGSL alignment of the struct in bytes: the largest of its fields'.
    pub fn align(&self) -> u32 {
        self.align
    }
    /// How deeply composite types nest in this message, itself included (see [`MAX_NESTING`]).
    pub fn depth(&self) -> u32 {
        1 + self.fields.iter().map(|f| f.ty.depth()).max().unwrap_or(0)
    }

    /// The WGSL declaration of this struct alone (nested types are declared by [`structs`]).
    ///
    /// [`structs`]: Self::structs
    pub fn wgsl_struct(&self) -> String {
        let mut text = format!("struct {} {{\n", self.name);
        for field in &self.fields {
            let _ = writeln!(text, "    {}: {},", field.name, field.ty);
        }
        text.push_str("}\n");
        text
    }

    /// This type and every type nested in it, each once, dependencies first, so their WGSL
    /// declarations can be emitted in order. Refuses two different types sharing one name.
    pub fn structs(&self) -> Result<Vec<&MessageLayout>, FieldError> {
        let mut out = Vec::new();
        collect_structs(self, &mut out)?;
        Ok(out)
    }

    /// Checks that `T`, a `#[repr(C)]` Pod struct, is exactly one message of this layout, so
    /// `send_pod`/`receive_pod` can move it without conversion. WGSL pads where C does not
    /// (after a `vec3`, to 16-byte struct alignment), so mirror those pads in `T` explicitly.
    /// This compares sizes only; `#[derive(RingMessage)]` (see [`typed`]) checks every field.
    pub fn check_pod<T: bytemuck::Pod>(&self) -> Result<(), FieldError> {
        let (host, wgsl) = (std::mem::size_of::<T>(), self.size());
        if host != wgsl {
            return Err(FieldError::new(
                &self.name,
                format!(
                    "is {wgsl} bytes in WGSL but {} is {host} bytes; add explicit padding fields to match WGSL's alignment",
                    std::any::type_name::<T>()
                ),
            ));
        }
        self.check_pod_scalars::<T>().map_err(|problem| FieldError::new(&self.name, problem))
    }

    /// Refuses `T` when it is a plain `i32`, `u32` or `f32`, or an array of one, and a field of
    /// this layout holds another scalar: its bytes would be read as that scalar's bits (`1.5f32`
    /// as the `i32` 1069547520). Other Pod types (structs) are compared by size alone.
    pub(crate) fn check_pod_scalars<T: 'static>(&self) -> Result<(), String> {
        let name = std::any::type_name::<T>();
        match Scalar::of_pod::<T>() {
            Some(scalar) if !self.made_of(scalar) => {
                Err(format!("holds fields that are not {scalar}, so {name} would be read as their bits"))
            }
            _ => Ok(()),
        }
    }

    /// Whether every number in this layout, nested messages' too, is a `scalar`.
    fn made_of(&self, scalar: Scalar) -> bool {
        self.fields.iter().all(|field| field.ty.made_of(scalar))
    }

    fn contains_struct_named(&self, name: &str) -> bool {
        self.name == name || self.fields.iter().any(|f| f.ty.contains_struct_named(name))
    }
}

impl FieldType {
    /// What makes this type no WGSL type, for variants built by hand rather than by
    /// [`vector`](Self::vector) and [`array`](Self::array), which assert it (nested messages'
    /// own layouts were checked when they were made).
    fn malformed(&self) -> Option<&'static str> {
        match self {
            FieldType::Vector(_, n) if !(2..=4).contains(n) => Some("is a vector of other than 2, 3 or 4 components"),
            FieldType::Array(_, 0) => Some("is an array of no elements (WGSL's fixed arrays hold at least one)"),
            FieldType::Array(element, _) => element.malformed(),
            _ => None,
        }
    }

    /// Whether every number in this type is a `scalar`.
    fn made_of(&self, scalar: Scalar) -> bool {
        match self {
            FieldType::Scalar(s) | FieldType::Vector(s, _) => *s == scalar,
            FieldType::Array(element, _) => element.made_of(scalar),
            FieldType::Struct(layout) => layout.made_of(scalar),
        }
    }

    /// The length of the longest array in this type outside nested messages (their own
    /// layouts were checked when they were made).
    fn longest_array(&self) -> Option<u32> {
        match self {
            FieldType::Array(element, n) => Some(element.longest_array().map_or(*n, |inner| inner.max(*n))),
            _ => None,
        }
    }

    fn contains_struct_named(&self, name: &str) -> bool {
        match self {
            FieldType::Array(element, _) => element.contains_struct_named(name),
            FieldType::Struct(layout) => layout.contains_struct_named(name),
            _ => false,
        }
    }

    fn nested_struct(&self) -> Option<&MessageLayout> {
        match self {
            FieldType::Array(element, _) => element.nested_struct(),
            FieldType::Struct(layout) => Some(layout),
            _ => None,
        }
    }
}

fn collect_structs<'a>(layout: &'a MessageLayout, out: &mut Vec<&'a MessageLayout>) -> Result<(), FieldError> {
    for field in &layout.fields {
        if let Some(nested) = field.ty.nested_struct() {
            collect_structs(nested, out)?;
        }
    }
    match out.iter().find(|seen| seen.name == layout.name) {
        Some(seen) if *seen != layout => {
            Err(FieldError::new(&layout.name, "names two different message types; give each its own name"))
        }
        Some(_) => Ok(()),
        None => {
            out.push(layout);
            Ok(())
        }
    }
}

/// Builds a [`MessageLayout`] one field at a time (see [`MessageLayout::builder`]).
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct MessageBuilder {
    name: String,
    fields: Vec<(String, FieldType)>,
}

impl MessageBuilder {
    /// Adds a field after the ones already added.
    pub fn field(mut self, name: &str, ty: FieldType) -> Self {
        self.fields.push((name.to_owned(), ty));
        self
    }

    /// Lays out the fields (see [`MessageLayout::new`]).
    pub fn build(self) -> Result<MessageLayout, FieldError> {
        let fields: Vec<(&str, FieldType)> = self.fields.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
        MessageLayout::new(&self.name, &fields)
    }

    /// Builds the layout and checks that `T` has its size (see [`MessageLayout::check_pod`];
    /// `#[derive(RingMessage)]` checks every field's type and offset).
    pub fn build_for<T: bytemuck::Pod>(self) -> Result<MessageLayout, FieldError> {
        let layout = self.build()?;
        layout.check_pod::<T>()?;
        Ok(layout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> FieldType {
        FieldType::parse_with(text, &|_| None).unwrap_or_else(|| panic!("type {text}"))
    }

    fn layout(fields: &[(&str, &str)]) -> MessageLayout {
        let fields: Vec<(&str, FieldType)> = fields.iter().map(|(n, t)| (*n, parse(t))).collect();
        MessageLayout::new("M", &fields).unwrap()
    }

    #[test]
    fn wgsl_alignment_rules() {
        // vec3 aligns to 16 but is 12 long, so a following f32 fits in its tail.
        let m = layout(&[
            ("a", "f32"),
            ("p", "vec3<f32>"),
            ("w", "f32"),
            ("v2", "vec2<u32>"),
            ("arr", "array<vec3<f32>, 2>"),
        ]);
        let offsets: Vec<u32> = m.fields().iter().map(|f| f.offset).collect();
        assert_eq!(offsets, vec![0, 16, 28, 32, 48]);
        assert_eq!(parse("array<vec3<f32>, 2>").size(), 32);
        assert_eq!(m.size(), 80);
        assert_eq!(m.align(), 16);
        assert_eq!(m.wgsl_struct().lines().nth(2), Some("    p: vec3<f32>,"));
    }

    #[test]
    fn nested_structs_pad_to_their_alignment() {
        let inner =
            MessageLayout::builder("Inner").field("position", FieldType::vector(Scalar::F32, 3)).build().unwrap();
        let outer = MessageLayout::builder("Outer")
            .field("tag", FieldType::U32)
            .field("inner", FieldType::message(&inner))
            .field("after", FieldType::U32)
            .field("many", FieldType::array(FieldType::message(&inner), 3))
            .build()
            .unwrap();
        assert_eq!(inner.size(), 16); // 12 rounded up to the vec3's 16-byte alignment
        let offsets: Vec<u32> = outer.fields().iter().map(|f| f.offset).collect();
        assert_eq!(offsets, vec![0, 16, 32, 48]);
        assert_eq!(outer.size(), 96);
        let names: Vec<&str> = outer.structs().unwrap().iter().map(|s| s.name()).collect();
        assert_eq!(names, vec!["Inner", "Outer"]);
    }

    #[test]
    fn parse_resolves_message_names_and_nested_arrays() {
        let point = MessageLayout::new("Point", &[("x", FieldType::F32), ("y", FieldType::F32)]).unwrap();
        let point = Arc::new(point);
        let resolve = |name: &str| (name == "Point").then(|| point.clone());
        assert_eq!(FieldType::parse_with("array<Point, 4>", &resolve).unwrap().size(), 32);
        assert_eq!(FieldType::parse_with("array<array<f32, 3>, 2>", &resolve).unwrap().size(), 24);
        assert_eq!(FieldType::parse_with("Unknown", &resolve), None);
    }

    #[test]
    fn refuses_bad_types_and_names() {
        for bad in ["i64", "vec5<f32>", "array<f32>", "array<f32, 0>", "bool", "vec3<bool>", "1abc"] {
            assert_eq!(FieldType::parse_with(bad, &|_| None), None, "{bad}");
        }
        assert!(MessageLayout::new("1bad", &[("a", FieldType::I32)]).is_err());
        assert!(MessageLayout::new("RingInput", &[("a", FieldType::I32)]).is_err());
        assert!(MessageLayout::new("vec3", &[("a", FieldType::I32)]).is_err());
        // Names no WGSL compiler takes, or that shadow what the harness declares or calls.
        for name in
            ["loop", "type", "Self", "override", "handle", "input_ring", "min", "atomicAdd", "GroupTable", "mat4x4"]
        {
            let err = MessageLayout::new(name, &[("a", FieldType::I32)]).unwrap_err();
            assert!(err.problem.contains("reserved"), "{name}: {err}");
        }
        for field in ["loop", "type", "self", "fn", "true"] {
            let err = MessageLayout::new("M", &[(field, FieldType::I32)]).unwrap_err();
            assert_eq!(err.field, field);
            assert!(err.problem.contains("keyword or reserved word"), "{err}");
        }
        assert!(MessageLayout::new("M", &[("min", FieldType::I32), ("state", FieldType::I32)]).is_ok(), "fields may");
        assert!(MessageLayout::new("é", &[("a", FieldType::I32)]).unwrap_err().problem.contains("ASCII"));
        assert!(MessageLayout::new("M", &[("a", FieldType::I32), ("a", FieldType::U32)]).is_err());
        assert!(MessageLayout::new("M", &[]).is_err());
    }

    /// Sizes are computed without overflow and capped, so an absurd array is refused by name
    /// instead of panicking (debug) or wrapping to a tiny layout (release).
    #[test]
    fn refuses_messages_too_large_for_a_ring_slot() {
        let huge = parse("array<array<f32, 65536>, 65536>");
        assert_eq!(huge.size(), u32::MAX, "saturates instead of overflowing");
        let err = MessageLayout::new("Huge", &[("x", huge)]).unwrap_err();
        assert_eq!(err.field, "x");
        assert!(err.problem.contains("at most 134217728 bytes"), "{err}");
        let err = MessageLayout::new("Huge", &[("x", parse("array<f32, 4294967295>"))]).unwrap_err();
        assert_eq!(err.field, "x");
        // The last field pushes it over: offsets count too.
        let fields = [("a", FieldType::F32), ("b", parse("array<array<f32, 8192>, 4096>"))];
        assert_eq!(MessageLayout::new("Over", &fields).unwrap_err().field, "b");
        let just = MessageLayout::new("Just", &fields[1..]).unwrap();
        assert_eq!(just.size(), MAX_MESSAGE_SIZE as usize);
    }

    /// One array longer than Chromium's WGSL compiler takes is refused when the message is
    /// defined, not when its kernel fails to compile on the web.
    #[test]
    fn refuses_arrays_longer_than_wgsl_compilers_take() {
        assert!(MessageLayout::new("Longest", &[("x", parse("array<u32, 65535>"))]).is_ok());
        for (ty, len) in [
            ("array<u32, 65536>", 65536),
            ("array<array<vec2<f32>, 70000>, 2>", 70000),
            ("array<array<u32, 2>, 16777216>", 16777216),
        ] {
            let err = MessageLayout::new("Long", &[("x", parse(ty))]).unwrap_err();
            assert_eq!(err.field, "x");
            assert!(
                err.problem.contains(&format!("an array of {len} elements")) && err.problem.contains("65535"),
                "{err}"
            );
        }
    }

    /// A type string nested deeper than WGSL allows is refused without recursing through all of
    /// it (a long enough one would overflow the stack).
    #[test]
    fn refuses_types_nested_deeper_than_wgsl_allows() {
        let nested = |depth: usize| format!("{}f32{}", "array<".repeat(depth), ", 2>".repeat(depth));
        assert!(FieldType::parse_with(&nested(14), &|_| None).is_some());
        assert_eq!(FieldType::parse_with(&nested(15), &|_| None), None);
        assert_eq!(FieldType::parse_with(&nested(200_000), &|_| None), None);
        let deepest = MessageLayout::new("Deep", &[("x", parse(&nested(14)))]).unwrap();
        assert_eq!(deepest.depth(), MAX_NESTING);
        let err = MessageLayout::new("Deeper", &[("x", FieldType::message(&deepest))]).unwrap_err();
        assert!(err.problem.contains("16 deep"), "{err}");
    }

    #[test]
    fn refuses_two_types_under_one_name() {
        let a = MessageLayout::new("Part", &[("x", FieldType::F32)]).unwrap();
        let b = MessageLayout::new("Part", &[("x", FieldType::I32)]).unwrap();
        let err =
            MessageLayout::new("Both", &[("a", FieldType::message(&a)), ("b", FieldType::message(&b))]).unwrap_err();
        assert_eq!(err.field, "Part");
        let err = MessageLayout::new("Part", &[("x", FieldType::message(&a))]).unwrap_err();
        assert!(err.problem.contains("inside itself"), "{err}");
    }

    #[test]
    fn check_pod_compares_sizes() {
        #[repr(C)]
        #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
        struct Padded {
            position: [f32; 3],
            _pad: f32,
        }
        let ok = MessageLayout::builder("P").field("position", FieldType::vector(Scalar::F32, 3)).build_for::<Padded>();
        assert!(ok.is_ok());
        let err =
            MessageLayout::builder("P").field("position", FieldType::vector(Scalar::F32, 3)).build_for::<[f32; 3]>();
        assert!(err.unwrap_err().problem.contains("padding"));
    }

    /// Enumerants the harness spells (`var<storage, read>`, `ptr<function, ..>`) name no
    /// message: a struct so named would stand for them in the generated module.
    #[test]
    fn address_spaces_and_access_modes_name_no_message() {
        for name in ["storage", "read", "read_write", "write", "function", "private", "workgroup", "uniform"] {
            let e = MessageLayout::new(name, &[("v", FieldType::Scalar(Scalar::F32))]).unwrap_err();
            assert!(e.problem.contains("reserved"), "{name}: {e}");
        }
        assert!(
            MessageLayout::new("Storage", &[("read", FieldType::Scalar(Scalar::F32))]).is_ok(),
            "as fields they are fine"
        );
    }

    #[test]
    fn vectors_and_arrays_built_by_hand_are_checked() {
        let vec7 = MessageLayout::new("V", &[("v", FieldType::Vector(Scalar::F32, 7))]).unwrap_err();
        assert_eq!(vec7.to_string(), "'v' is a vector of other than 2, 3 or 4 components");
        let empty = FieldType::Array(Box::new(FieldType::Scalar(Scalar::U32)), 0);
        let nested = MessageLayout::new("A", &[("a", FieldType::array(empty, 2))]).unwrap_err();
        assert!(nested.problem.contains("no elements"), "{nested}");
    }

    #[test]
    fn check_pod_refuses_plain_numbers_of_another_scalar() {
        let ints =
            MessageLayout::new("I", &[("a", FieldType::Scalar(Scalar::I32)), ("b", FieldType::vector(Scalar::I32, 2))])
                .unwrap();
        assert!(ints.check_pod::<[i32; 4]>().is_ok());
        let err = ints.check_pod::<[f32; 4]>().unwrap_err();
        assert_eq!(err.problem, "holds fields that are not f32, so [f32; 4] would be read as their bits");
        let one = MessageLayout::new("One", &[("v", FieldType::Scalar(Scalar::U32))]).unwrap();
        assert!(one.check_pod::<u32>().is_ok());
        assert!(one.check_pod::<i32>().is_err());
        // Nested messages count; a struct is checked by size alone.
        let outer = MessageLayout::new("Outer", &[("inner", FieldType::message(&one))]).unwrap();
        assert!(outer.check_pod_scalars::<f32>().is_err());
        #[repr(C)]
        #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
        struct Anything(f32);
        assert!(one.check_pod::<Anything>().is_ok());
    }
}

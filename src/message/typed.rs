//! Messages as Rust types: a `#[repr(C)]` struct whose bytes are its WGSL struct's, so the
//! layout is written once and checked by the compiler, field by field, not by size alone.
//!
//! - [`WgslType`]: a Rust type with a WGSL type's size, alignment and field offsets — `i32`,
//!   `u32`, `f32`, [`Vec2`]/[`Vec3`]/[`Vec4`] of those, arrays `[T; N]`, derived structs;
//! - [`RingMessage`]: a message type, with its [`MessageLayout`]; `#[derive(RingMessage)]` writes
//!   both impls and refuses, at compile time, a field that Rust places elsewhere than WGSL;
//! - [`same_bytes`]: whether two layouts describe the same bytes, whatever their names (and
//!   `renamed_field`: the first field they name differently).
//!
//! ```
//! use bytemuck::{Pod, Zeroable};
//! use ringkernel_web::message::{FieldType, MessageLayout, RingMessage, Scalar, Vec3};
//!
//! #[repr(C)]
//! #[derive(Clone, Copy, Pod, Zeroable, RingMessage)]
//! struct Particle {
//!     id: u32,
//!     #[ring(padding)] // WGSL aligns the vec3 to 16: fill bytes 4..16 on the Rust side
//!     _pad: [u32; 3],
//!     position: Vec3<f32>,
//!     mass: f32, // in the vec3's tail, at 28
//! }
//!
//! let by_hand = MessageLayout::builder("Particle")
//!     .field("id", FieldType::U32)
//!     .field("position", FieldType::vector(Scalar::F32, 3))
//!     .field("mass", FieldType::F32)
//!     .build()
//!     .unwrap();
//! assert_eq!(Particle::layout(), by_hand);
//! ```

use super::{round_up, FieldType, MessageLayout, Scalar};

/// A Rust type whose bytes are a WGSL type's under WGSL's storage-buffer layout rules, so a
/// value can be copied into a GPU buffer as it is.
///
/// # Safety
/// `size_of::<Self>()` must be at least `SIZE` bytes and every byte WGSL reads must be where WGSL
/// reads it: for a struct, each field's Rust offset is its WGSL offset; for an array, the Rust
/// element size is the WGSL stride. `#[derive(RingMessage)]` checks this at compile time;
/// implement it by hand only for a type whose layout you have checked the same way.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a WGSL type, so it cannot be a message field",
    label = "not a WGSL type",
    note = "message fields are i32, u32, f32, Vec2/Vec3/Vec4 of those, arrays [T; N] of WGSL types, or structs \
            with #[derive(RingMessage)]"
)]
pub unsafe trait WgslType: bytemuck::Pod {
    /// WGSL size in bytes (a `vec3<f32>` is 12; its alignment pads what follows).
    const SIZE: u32;
    /// WGSL alignment in bytes (a `vec2` is 8, a `vec3` or `vec4` 16, a struct its largest field's).
    const ALIGN: u32;
    /// The WGSL type as a [`FieldType`]. Panics where [`try_field_type`](Self::try_field_type)
    /// fails.
    fn field_type() -> FieldType;

    /// The WGSL type, or why a message type inside it makes no layout (see
    /// [`RingMessage::try_layout`]), so that a message nesting it says so instead of panicking.
    fn try_field_type() -> Result<FieldType, String> {
        Ok(Self::field_type())
    }
}

/// A message type: the WGSL struct a kernel receives or answers, as a Rust type. Derive it with
/// `#[derive(RingMessage)]`; `i32`, `u32` and `f32` are one-field messages `{ value }`.
pub trait RingMessage: WgslType {
    /// The WGSL struct, with the fields in order and their offsets. Panics where
    /// [`try_layout`](Self::try_layout) fails.
    fn layout() -> MessageLayout;

    /// The layout, or why the type makes none: two different nested types that share a struct
    /// name, or nesting deeper than WGSL allows. [`KernelHandle::typed`](crate::KernelHandle::typed)
    /// checks it, so that mistake is a `MessageFormat` error there, not a panic.
    fn try_layout() -> Result<MessageLayout, String> {
        Ok(Self::layout())
    }

    /// Whether the layout's field names are the type's own, chosen by its author, so that
    /// [`KernelHandle::typed`](crate::KernelHandle::typed) holds them to the kernel's (a field
    /// of the same bytes under another name would carry its value into that other field): true
    /// for a derived struct, and by default. False for `i32`, `u32` and `f32`, whose one field
    /// `value` stands for any one-field message of their scalar (the doubler's
    /// `Response { result }` too).
    const NAMED_FIELDS: bool = true;
}

/// The scalars a WGSL vector holds: `i32`, `u32`, `f32`.
pub trait WgslScalar: WgslType + sealed::Sealed {
    /// Which scalar this is.
    const SCALAR: Scalar;
}

mod sealed {
    /// Only the three WGSL scalars are vector components.
    pub trait Sealed {}
}

macro_rules! scalar {
    ($ty:ty, $scalar:ident, $message:literal) => {
        // SAFETY: a 4-byte scalar, 4-aligned in both languages.
        unsafe impl WgslType for $ty {
            const SIZE: u32 = 4;
            const ALIGN: u32 = 4;
            fn field_type() -> FieldType {
                FieldType::Scalar(Scalar::$scalar)
            }
        }

        impl sealed::Sealed for $ty {}

        impl WgslScalar for $ty {
            const SCALAR: Scalar = Scalar::$scalar;
        }

        /// A one-field message `{ value }`, so a kernel of one number (the doubler's `Request`)
        /// can be driven with a plain number.
        impl RingMessage for $ty {
            fn layout() -> MessageLayout {
                MessageLayout::new($message, &[("value", Self::field_type())]).expect("a one-scalar layout is valid")
            }

            const NAMED_FIELDS: bool = false;
        }
    };
}

scalar!(i32, I32, "I32Message");
scalar!(u32, U32, "U32Message");
scalar!(f32, F32, "F32Message");

macro_rules! vector {
    ($name:ident, $n:literal, $align:literal, $doc:literal) => {
        #[doc = $doc]
        #[repr(transparent)] // exactly `[T; N]`'s bytes (and lets `Pod` be derived for a generic type)
        #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, Debug, PartialEq, Default)]
        pub struct $name<T>(pub [T; $n]);

        // SAFETY: `[T; N]` of a 4-byte scalar: the WGSL size, and the components where WGSL has
        // them. Rust aligns it to 4, below WGSL's alignment; a containing derived struct checks
        // the offset WGSL gives it.
        unsafe impl<T: WgslScalar> WgslType for $name<T> {
            const SIZE: u32 = 4 * $n;
            const ALIGN: u32 = $align;
            fn field_type() -> FieldType {
                FieldType::Vector(T::SCALAR, $n)
            }
        }

        impl<T> From<[T; $n]> for $name<T> {
            fn from(components: [T; $n]) -> Self {
                $name(components)
            }
        }

        impl<T> From<$name<T>> for [T; $n] {
            fn from(vector: $name<T>) -> Self {
                vector.0
            }
        }
    };
}

vector!(Vec2, 2, 8, "WGSL `vec2<T>`: 8 bytes, aligned to 8 in WGSL (to 4 in Rust).");
vector!(
    Vec3,
    3,
    16,
    "WGSL `vec3<T>`: 12 bytes, aligned to 16 in WGSL (to 4 in Rust): a field after it may sit in its \
     tail, and a derived struct needs padding before it wherever Rust would place it off a 16-byte boundary. \
     Not an array element: WGSL strides `array<vec3<T>, N>` by 16; use [`Vec4`] or a struct."
);
vector!(Vec4, 4, 16, "WGSL `vec4<T>`: 16 bytes, aligned to 16 in WGSL (to 4 in Rust).");

// SAFETY: the `SIZE` const refuses (at compile time, where it is used) an element whose Rust
// size is not its WGSL stride, so the elements sit where WGSL puts them.
unsafe impl<T: WgslType, const N: usize> WgslType for [T; N]
where
    [T; N]: bytemuck::Pod,
{
    const SIZE: u32 = {
        let stride = round_up(T::SIZE, T::ALIGN);
        assert!(N > 0, "ringkernel: WGSL arrays have at least one element; [T; 0] is not a WGSL type");
        assert!(
            std::mem::size_of::<T>() == stride as usize,
            "ringkernel: an array element's Rust size is not its WGSL stride: WGSL pads each vec3 element to 16 \
             bytes; use Vec4, or a #[derive(RingMessage)] struct with the vec3 and a padding field"
        );
        assert!(
            N as u64 * stride as u64 <= super::MAX_MESSAGE_SIZE as u64,
            "ringkernel: the array is larger than a message may be (128 MiB)"
        );
        assert!(
            N as u64 <= super::MAX_ARRAY_LENGTH as u64,
            "ringkernel: the array is longer than WGSL compilers take (65535 elements; nest arrays for more)"
        );
        stride * N as u32
    };
    const ALIGN: u32 = T::ALIGN;
    fn field_type() -> FieldType {
        let _checked = Self::SIZE; // the stride check, wherever an array type is used
        FieldType::array(T::field_type(), N as u32)
    }
    fn try_field_type() -> Result<FieldType, String> {
        let _checked = Self::SIZE;
        Ok(FieldType::array(T::try_field_type()?, N as u32))
    }
}

/// Whether two layouts describe the same bytes: the same size and the same field types at the
/// same offsets, in order. Names are ignored, of the structs and of the fields, nested ones
/// included, so a Rust type can stand for a WGSL struct that spells its names differently.
pub fn same_bytes(a: &MessageLayout, b: &MessageLayout) -> bool {
    a.size() == b.size()
        && a.fields().len() == b.fields().len()
        && a.fields().iter().zip(b.fields()).all(|(x, y)| x.offset == y.offset && same_type(&x.ty, &y.ty))
}

fn same_type(a: &FieldType, b: &FieldType) -> bool {
    match (a, b) {
        (FieldType::Array(x, n), FieldType::Array(y, m)) => n == m && same_type(x, y),
        (FieldType::Struct(x), FieldType::Struct(y)) => same_bytes(x, y),
        _ => a == b,
    }
}

/// A field that two layouts of the same bytes ([`same_bytes`]) name differently: its path in
/// `ours` (`pair[].x` for a field of an array's struct elements) and its name in `theirs`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Renamed {
    pub path: String,
    pub theirs: String,
}

/// The first field, in order and depth first, that `ours` names otherwise than `theirs` does,
/// where both describe the same bytes; `None` when every field's name is the same, nested ones
/// included. Struct names are not compared: a type may spell its own name as it likes.
pub(crate) fn renamed_field(ours: &MessageLayout, theirs: &MessageLayout) -> Option<Renamed> {
    ours.fields().iter().zip(theirs.fields()).find_map(|(a, b)| {
        if a.name != b.name {
            return Some(Renamed { path: a.name.clone(), theirs: b.name.clone() });
        }
        renamed_within(&a.ty, &b.ty).map(|inner| Renamed { path: format!("{}{}", a.name, inner.path), ..inner })
    })
}

/// [`renamed_field`] within a field's type: its path from the field on (`.x`, `[].x`).
fn renamed_within(a: &FieldType, b: &FieldType) -> Option<Renamed> {
    match (a, b) {
        (FieldType::Array(x, _), FieldType::Array(y, _)) => {
            renamed_within(x, y).map(|inner| Renamed { path: format!("[]{}", inner.path), ..inner })
        }
        (FieldType::Struct(x), FieldType::Struct(y)) => {
            renamed_field(x, y).map(|inner| Renamed { path: format!(".{}", inner.path), ..inner })
        }
        _ => None,
    }
}

/// What the code `#[derive(RingMessage)]` writes calls; not an API.
#[doc(hidden)]
pub mod __private {
    use super::super::{MessageLayout, MAX_MESSAGE_SIZE, RESERVED_NAMES, WGSL_RESERVED_WORDS};
    use std::sync::OnceLock;

    /// A derived type's layout, made by `make` on the first call and cloned from `cell` after:
    /// `make` a function pointer, so that one instance of `OnceLock`'s initialization serves
    /// every derived type (a closure would make one each).
    pub fn layout_once(
        cell: &OnceLock<Result<MessageLayout, String>>,
        make: fn() -> Result<MessageLayout, String>,
    ) -> Result<MessageLayout, String> {
        cell.get_or_init(make).clone()
    }

    /// `value` rounded up to a multiple of `align`.
    pub const fn round_up(value: u32, align: u32) -> u32 {
        super::round_up(value, align)
    }

    /// The larger alignment.
    pub const fn max(a: u32, b: u32) -> u32 {
        if a > b {
            a
        } else {
            b
        }
    }

    /// Where a field of `size` bytes ends when the one before it ended at `end`.
    pub const fn field_end(end: u32, align: u32, size: u32) -> u32 {
        let end = round_up(end, align) as u64 + size as u64;
        assert!(end <= MAX_MESSAGE_SIZE as u64, "ringkernel: a message may take at most 128 MiB");
        end as u32
    }

    /// Whether [`MessageLayout::new`](super::MessageLayout::new) refuses `name` as a message's
    /// name: a WGSL keyword or reserved word, a predeclared type, or the harness's.
    pub const fn is_reserved_name(name: &str) -> bool {
        let bytes = name.as_bytes();
        is_reserved_word(name)
            || listed(RESERVED_NAMES, name)
            || (bytes.len() >= 5 && bytes_eq(bytes.split_at(5).0, b"ring_"))
    }

    /// Whether `name` is a WGSL keyword or reserved word, which no identifier may be.
    pub const fn is_reserved_word(name: &str) -> bool {
        listed(WGSL_RESERVED_WORDS, name)
    }

    /// Whether `name` is one of the space-separated words of `list`.
    const fn listed(list: &str, name: &str) -> bool {
        let (list, name) = (list.as_bytes(), name.as_bytes());
        let mut start = 0;
        while start < list.len() {
            let mut end = start;
            while end < list.len() && list[end] != b' ' {
                end += 1;
            }
            if bytes_eq(list.split_at(end).0.split_at(start).1, name) {
                return true;
            }
            start = end + 1;
        }
        false
    }

    const fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_types_have_wgsl_sizes_and_alignments() {
        assert_eq!((<Vec2<f32>>::SIZE, <Vec2<f32>>::ALIGN), (8, 8));
        assert_eq!((<Vec3<u32>>::SIZE, <Vec3<u32>>::ALIGN), (12, 16));
        assert_eq!((<Vec4<i32>>::SIZE, <Vec4<i32>>::ALIGN), (16, 16));
        assert_eq!(<[Vec2<f32>; 3]>::SIZE, 24);
        assert_eq!(<[[f32; 3]; 2]>::field_type(), FieldType::array(FieldType::array(FieldType::F32, 3), 2));
        assert_eq!(<Vec3<f32>>::field_type(), FieldType::vector(Scalar::F32, 3));
    }

    #[test]
    fn reserved_names_are_refused_as_struct_names() {
        for (name, reserved) in [
            ("RingInput", true),
            ("vec3", true),
            ("ring_state", true),
            ("Particle", false),
            ("ring", false),
            ("Ring_x", false),
        ] {
            assert_eq!(__private::is_reserved_name(name), reserved, "{name}");
            assert_eq!(MessageLayout::new(name, &[("a", FieldType::I32)]).is_err(), reserved, "{name}");
        }
    }

    #[test]
    fn same_bytes_ignores_names_nested_ones_too() {
        let a = MessageLayout::new("A", &[("x", FieldType::F32)]).unwrap();
        let b = MessageLayout::new("B", &[("y", FieldType::F32)]).unwrap();
        let outer = |name: &str, inner: &MessageLayout| {
            MessageLayout::new(name, &[("n", FieldType::array(FieldType::message(inner), 2))]).unwrap()
        };
        assert!(same_bytes(&outer("P", &a), &outer("Q", &b)));
        let c = MessageLayout::new("C", &[("x", FieldType::I32)]).unwrap();
        assert!(!same_bytes(&outer("P", &a), &outer("P", &c)));
    }

    #[test]
    fn renamed_field_finds_the_first_field_named_otherwise_nested_ones_too() {
        let a = MessageLayout::new("A", &[("x", FieldType::F32), ("y", FieldType::F32)]).unwrap();
        let b = MessageLayout::new("B", &[("y", FieldType::F32), ("x", FieldType::F32)]).unwrap();
        let renamed = |path: &str, theirs: &str| Some(Renamed { path: path.into(), theirs: theirs.into() });
        assert_eq!(renamed_field(&a, &b), renamed("x", "y"));
        assert_eq!(renamed_field(&a, &a), None);
        let outer = |name: &str, inner: &MessageLayout| {
            let nested = FieldType::array(FieldType::message(inner), 2);
            MessageLayout::new(name, &[("n", FieldType::U32), ("items", nested)]).unwrap()
        };
        assert_eq!(renamed_field(&outer("P", &a), &outer("Q", &b)), renamed("items[].x", "y"));
        assert_eq!(renamed_field(&outer("P", &a), &outer("Q", &a)), None, "struct names are not compared");
    }
}

//! `#[derive(RingMessage)]`: a derived layout is the `MessageLayout` one would build by hand
//! (scalars, arrays, vectors with WGSL's padding, nested structs, arrays of structs), naga agrees
//! with its offsets, and `same_bytes` tells layouts apart by bytes rather than by size or name.
//! What the derive refuses is in tests/compile_fail.rs (tests/ui/).
#![cfg(not(target_arch = "wasm32"))]

use bytemuck::{Pod, Zeroable};
use ringkernel_web::kernel::{doubler_request, doubler_response};
use ringkernel_web::message::{same_bytes, FieldType, MessageLayout, RingMessage, Scalar, Vec2, Vec3, Vec4, WgslType};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, RingMessage)]
struct Scalars {
    a: i32,
    b: u32,
    c: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, RingMessage)]
struct Arrays {
    a: f32,
    xs: [u32; 4],
    grid: [[f32; 3]; 2],
    #[ring(padding)]
    _to_48: u32,
    pairs: [Vec2<i32>; 2], // 48: an array of vec2 aligns to 8
}

/// Every vector size, with the gaps WGSL's alignment leaves filled by padding fields.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, RingMessage)]
struct Vectors {
    a: f32,
    #[ring(padding)]
    _to_8: u32,
    v2: Vec2<f32>, // 8: vec2 aligns to 8
    v3: Vec3<i32>, // 16: vec3 aligns to 16
    tail: u32,     // 28: in the vec3's tail
    v4: Vec4<u32>, // 32
}

/// The same bytes with the padding as an ordinary field: it becomes a WGSL field too.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, RingMessage)]
struct VisiblePadding {
    a: f32,
    _pad: u32,
    v2: Vec2<f32>,
}

/// tests/wgsl_layout.rs's `Inner`, `Middle` and `Outer` as Rust types.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, RingMessage)]
struct Inner {
    flag: u32,
    #[ring(padding)]
    _pad: [u32; 3],
    position: Vec3<f32>,
    #[ring(padding)]
    _end: u32, // WGSL rounds the struct up to 32, its vec3's alignment
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, RingMessage)]
struct Middle {
    tag: f32,
    #[ring(padding)]
    _pad: [u32; 3],
    inner: Inner,
    tail: Vec2<u32>,
    #[ring(padding)]
    _end: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, RingMessage)]
struct Outer {
    a: u32,
    #[ring(padding)]
    _pad: [u32; 3],
    middle: Middle,
    b: f32,
    #[ring(padding)]
    _pad2: [u32; 3],
    inners: [Inner; 3],
    middles: [Middle; 2],
    c: i32,
    #[ring(padding)]
    _end: [u32; 3],
}

fn offsets(layout: &MessageLayout) -> Vec<u32> {
    layout.fields().iter().map(|f| f.offset).collect()
}

fn hand_inner() -> MessageLayout {
    MessageLayout::builder("Inner")
        .field("flag", FieldType::U32)
        .field("position", FieldType::vector(Scalar::F32, 3))
        .build()
        .unwrap()
}

fn hand_middle() -> MessageLayout {
    MessageLayout::builder("Middle")
        .field("tag", FieldType::F32)
        .field("inner", FieldType::message(&hand_inner()))
        .field("tail", FieldType::vector(Scalar::U32, 2))
        .build()
        .unwrap()
}

#[test]
fn scalars_and_arrays_match_hand_built_layouts() {
    let scalars = MessageLayout::new("Scalars", &[("a", FieldType::I32), ("b", FieldType::U32), ("c", FieldType::F32)]);
    assert_eq!(Scalars::layout(), scalars.unwrap());
    assert_eq!((Scalars::SIZE, Scalars::ALIGN), (12, 4));

    let arrays = MessageLayout::builder("Arrays")
        .field("a", FieldType::F32)
        .field("xs", FieldType::array(FieldType::U32, 4))
        .field("grid", FieldType::array(FieldType::array(FieldType::F32, 3), 2))
        .field("pairs", FieldType::array(FieldType::vector(Scalar::I32, 2), 2))
        .build()
        .unwrap();
    assert_eq!(Arrays::layout(), arrays);
    assert_eq!(offsets(&arrays), vec![0, 4, 20, 48]);
    assert_eq!(Arrays::SIZE as usize, std::mem::size_of::<Arrays>());
}

#[test]
fn vectors_sit_where_wgsl_aligns_them() {
    let by_hand = MessageLayout::builder("Vectors")
        .field("a", FieldType::F32)
        .field("v2", FieldType::vector(Scalar::F32, 2))
        .field("v3", FieldType::vector(Scalar::I32, 3))
        .field("tail", FieldType::U32)
        .field("v4", FieldType::vector(Scalar::U32, 4))
        .build()
        .unwrap();
    assert_eq!(Vectors::layout(), by_hand);
    assert_eq!(offsets(&by_hand), vec![0, 8, 16, 28, 32]);
    assert_eq!((Vectors::SIZE, Vectors::ALIGN), (48, 16));
    assert_eq!(std::mem::size_of::<Vectors>(), 48);

    // Unmarked padding is a field of the WGSL struct: same bytes, one more field.
    let visible = VisiblePadding::layout();
    let names: Vec<&str> = visible.fields().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["a", "_pad", "v2"]);
    assert_eq!(offsets(&visible), vec![0, 4, 8]);
}

#[test]
fn nested_structs_and_arrays_of_structs_match_hand_built_layouts() {
    assert_eq!(Inner::layout(), hand_inner());
    assert_eq!(Middle::layout(), hand_middle());
    assert_eq!(Inner::field_type(), FieldType::message(&hand_inner()));
    let outer = MessageLayout::builder("Outer")
        .field("a", FieldType::U32)
        .field("middle", FieldType::message(&hand_middle()))
        .field("b", FieldType::F32)
        .field("inners", FieldType::array(FieldType::message(&hand_inner()), 3))
        .field("middles", FieldType::array(FieldType::message(&hand_middle()), 2))
        .field("c", FieldType::I32)
        .build()
        .unwrap();
    assert_eq!(Outer::layout(), outer);
    assert_eq!(offsets(&outer), vec![0, 16, 80, 96, 192, 320]);
    assert_eq!(outer.size(), std::mem::size_of::<Outer>());
    let names: Vec<&str> = outer.structs().unwrap().iter().map(|s| s.name()).collect();
    assert_eq!(names, ["Inner", "Middle", "Outer"]);
}

/// A derived value's bytes are what the layout's encoder writes: the field values land at the
/// layout's offsets, and the padding stays out of the way.
#[test]
fn derived_bytes_are_the_layouts_bytes() {
    let mut value = Inner::zeroed();
    value.flag = 7;
    value.position = Vec3([1.0, 2.0, 3.0]);
    let layout = Inner::layout();
    let mut packed = vec![0u8; layout.size()];
    let fields =
        [("flag", ringkernel_web::Value::Number(7.0)), ("position", ringkernel_web::Value::List(vec![1.0, 2.0, 3.0]))];
    layout.encode(fields.iter().map(|(n, v)| (*n, v)), &mut packed).unwrap();
    assert_eq!(bytemuck::bytes_of(&value), packed.as_slice());
}

/// The size check of old passed two fields of one size in either order; the types do not.
#[test]
fn swapped_fields_compile_but_lay_out_differently() {
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable, RingMessage)]
    struct Forward {
        count: u32,
        weight: f32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable, RingMessage)]
    struct Swapped {
        weight: f32,
        count: u32,
    }
    assert_eq!(Forward::SIZE, Swapped::SIZE);
    assert_ne!(Forward::layout().fields(), Swapped::layout().fields());
    assert!(!same_bytes(&Forward::layout(), &Swapped::layout()));
    // `check_pod` compares sizes only, and is fooled.
    assert!(Forward::layout().check_pod::<Swapped>().is_ok());
}

#[test]
fn same_bytes_ignores_names_but_not_types() {
    assert!(same_bytes(&i32::layout(), &doubler_request()));
    assert!(same_bytes(&i32::layout(), &doubler_response()));
    assert!(!same_bytes(&f32::layout(), &doubler_request()));
    assert!(!same_bytes(&u32::layout(), &doubler_request()));
    assert_eq!(i32::layout().fields()[0].name, "value");
    assert!(!same_bytes(&Vectors::layout(), &VisiblePadding::layout()));
}

/// A layout error converts into the crate's error with `?`.
#[test]
fn field_errors_convert_with_question_mark() {
    fn build() -> ringkernel_web::Result<MessageLayout> {
        Ok(MessageLayout::builder("P").field("position", FieldType::vector(Scalar::F32, 3)).build_for::<[f32; 3]>()?)
    }
    let err = build().unwrap_err();
    assert_eq!(err.kind(), ringkernel_web::ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("padding"), "{err}");
    let source: &dyn std::error::Error = &MessageLayout::new("M", &[]).unwrap_err();
    assert!(source.to_string().contains("no fields"));
}

/// naga, compiling the WGSL of the derived layouts, puts every field where the Rust type has it.
#[test]
fn derived_layouts_match_naga() {
    use std::mem::{offset_of, size_of};

    fn naga_struct(layout: &MessageLayout) -> (u32, Vec<(String, u32)>) {
        let mut source: String = layout.structs().unwrap().iter().map(|s| s.wgsl_struct()).collect();
        // Used in a storage buffer, so naga applies the storage-buffer layout rules.
        source.push_str(&format!(
            "@group(0) @binding(0) var<storage, read_write> messages: array<{}>;\n@compute @workgroup_size(1) fn \
             main() {{ let n = arrayLength(&messages); }}\n",
            layout.name()
        ));
        let module = naga::front::wgsl::parse_str(&source).unwrap_or_else(|e| panic!("{}", e.emit_to_string(&source)));
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
            .validate(&module)
            .unwrap();
        let ty = module.types.iter().find(|(_, ty)| ty.name.as_deref() == Some(layout.name())).expect("declared").1;
        let naga::TypeInner::Struct { members, span } = &ty.inner else { panic!("{} is a struct", layout.name()) };
        (*span, members.iter().map(|m| (m.name.clone().unwrap(), m.offset)).collect())
    }

    let cases = [
        (
            Vectors::layout(),
            size_of::<Vectors>(),
            vec![
                ("a", offset_of!(Vectors, a)),
                ("v2", offset_of!(Vectors, v2)),
                ("v3", offset_of!(Vectors, v3)),
                ("tail", offset_of!(Vectors, tail)),
                ("v4", offset_of!(Vectors, v4)),
            ],
        ),
        (
            Middle::layout(),
            size_of::<Middle>(),
            vec![
                ("tag", offset_of!(Middle, tag)),
                ("inner", offset_of!(Middle, inner)),
                ("tail", offset_of!(Middle, tail)),
            ],
        ),
        (
            Outer::layout(),
            size_of::<Outer>(),
            vec![
                ("a", offset_of!(Outer, a)),
                ("middle", offset_of!(Outer, middle)),
                ("b", offset_of!(Outer, b)),
                ("inners", offset_of!(Outer, inners)),
                ("middles", offset_of!(Outer, middles)),
                ("c", offset_of!(Outer, c)),
            ],
        ),
    ];
    for (layout, rust_size, rust_offsets) in cases {
        let (span, members) = naga_struct(&layout);
        assert_eq!(span as usize, rust_size, "{}: size", layout.name());
        let rust: Vec<(String, u32)> = rust_offsets.iter().map(|(n, o)| (n.to_string(), *o as u32)).collect();
        assert_eq!(members, rust, "{}: offsets", layout.name());
    }
}

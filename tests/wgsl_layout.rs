//! `MessageLayout` against the WGSL compiler: for structs using every field type (scalars,
//! vec2/3/4 of each scalar, arrays of scalars, vectors, arrays and structs, nested structs), the
//! offsets, sizes, alignments and array strides computed in Rust must equal what naga computes
//! for the generated WGSL. Also compiles every built-in's generated module with naga.
#![cfg(not(target_arch = "wasm32"))]

use naga::valid::{Capabilities, ValidationFlags, Validator};
use ringkernel_web::codegen;
use ringkernel_web::kernel;
use ringkernel_web::message::{FieldType, MessageLayout, Scalar};

fn every_numeric_type() -> Vec<FieldType> {
    let mut types = Vec::new();
    for scalar in [Scalar::I32, Scalar::U32, Scalar::F32] {
        types.push(FieldType::Scalar(scalar));
        for n in 2..=4 {
            types.push(FieldType::vector(scalar, n));
            types.push(FieldType::array(FieldType::vector(scalar, n), 3));
        }
        types.push(FieldType::array(FieldType::Scalar(scalar), 5));
    }
    types.push(FieldType::array(FieldType::array(FieldType::vector(Scalar::F32, 3), 2), 2));
    types
}

/// Layouts that mix every type with scalars in between, so each type's alignment shows.
fn layouts() -> Vec<MessageLayout> {
    let mut all = Vec::new();
    let mut fields = Vec::new();
    for (i, ty) in every_numeric_type().into_iter().enumerate() {
        fields.push((format!("pad{i}"), FieldType::U32));
        fields.push((format!("field{i}"), ty));
    }
    let named: Vec<(&str, FieldType)> = fields.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    let everything = MessageLayout::new("Everything", &named).unwrap();
    let inner = MessageLayout::builder("Inner")
        .field("flag", FieldType::U32)
        .field("position", FieldType::vector(Scalar::F32, 3))
        .build()
        .unwrap();
    let middle = MessageLayout::builder("Middle")
        .field("tag", FieldType::F32)
        .field("inner", FieldType::message(&inner))
        .field("tail", FieldType::vector(Scalar::U32, 2))
        .build()
        .unwrap();
    let outer = MessageLayout::builder("Outer")
        .field("a", FieldType::U32)
        .field("middle", FieldType::message(&middle))
        .field("b", FieldType::F32)
        .field("inners", FieldType::array(FieldType::message(&inner), 3))
        .field("middles", FieldType::array(FieldType::message(&middle), 2))
        .field("everything", FieldType::message(&everything))
        .field("c", FieldType::I32)
        .build()
        .unwrap();
    all.push(everything);
    all.push(inner);
    all.push(middle);
    all.push(outer);
    all
}

fn naga_type_size(module: &naga::Module, ty: naga::Handle<naga::Type>) -> u32 {
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).unwrap();
    layouter[ty].size
}

/// Compares one field type with naga's type, recursing into arrays and structs.
fn compare(module: &naga::Module, ours: &FieldType, theirs: naga::Handle<naga::Type>, path: &str) {
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).unwrap();
    let layout = layouter[theirs];
    assert_eq!(ours.size(), layout.size, "{path}: size");
    assert_eq!(ours.align(), layout.alignment.round_up(1), "{path}: alignment");
    match (&module.types[theirs].inner, ours) {
        (naga::TypeInner::Array { base, stride, size }, FieldType::Array(element, len)) => {
            assert_eq!(element.stride(), *stride, "{path}: array stride");
            assert!(matches!(size, naga::ArraySize::Constant(n) if n.get() == *len), "{path}: length");
            compare(module, element, *base, &format!("{path}[]"));
        }
        (naga::TypeInner::Struct { members, span }, FieldType::Struct(layout)) => {
            compare_struct(module, layout, members, *span, path);
        }
        (naga::TypeInner::Scalar(_) | naga::TypeInner::Vector { .. }, FieldType::Scalar(_) | FieldType::Vector(..)) => {
        }
        (theirs, ours) => panic!("{path}: naga has {theirs:?}, we have {ours}"),
    }
}

fn compare_struct(module: &naga::Module, ours: &MessageLayout, members: &[naga::StructMember], span: u32, path: &str) {
    assert_eq!(ours.size() as u32, span, "{path}: struct size");
    assert_eq!(ours.fields().len(), members.len(), "{path}: field count");
    for (field, member) in ours.fields().iter().zip(members) {
        let path = format!("{path}.{}", field.name);
        assert_eq!(member.name.as_deref(), Some(field.name.as_str()));
        assert_eq!(field.offset, member.offset, "{path}: offset");
        compare(module, &field.ty, member.ty, &path);
    }
}

#[test]
fn message_layouts_match_naga() {
    for layout in layouts() {
        let mut source: String = layout.structs().unwrap().iter().map(|s| s.wgsl_struct()).collect();
        // Used in a storage buffer, so naga applies the storage-buffer layout rules.
        source.push_str(&format!(
            "@group(0) @binding(0) var<storage, read_write> messages: array<{}>;\n@compute @workgroup_size(1) fn main() {{ let n = arrayLength(&messages); }}\n",
            layout.name()
        ));
        let module = naga::front::wgsl::parse_str(&source).unwrap_or_else(|e| panic!("{}", e.emit_to_string(&source)));
        Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&module).unwrap();
        let (handle, ty) =
            module.types.iter().find(|(_, ty)| ty.name.as_deref() == Some(layout.name())).expect("struct declared");
        let naga::TypeInner::Struct { members, span } = &ty.inner else { panic!("{} is a struct", layout.name()) };
        compare_struct(&module, &layout, members, *span, layout.name());
        assert_eq!(naga_type_size(&module, handle), layout.size() as u32);
    }
}

#[test]
fn every_builtin_compiles_with_naga() {
    for id in kernel::registered_ids() {
        let definition = kernel::lookup(&id).unwrap();
        let shader = codegen::generate(&definition).unwrap();
        codegen::check(&id, &shader).unwrap_or_else(|e| panic!("{id}: {e}\n{}", shader.source));
    }
}

/// A kernel id may hold any character: one that would end the WGSL comment naming the
/// handler's kernel (a line break of any kind) must not turn the rest of the id into code.
#[test]
fn any_kernel_id_compiles() {
    let doubler = kernel::lookup("doubler").unwrap();
    for id in
        ["a b\"c\n'd", "line\r\nbreak", "tab\tvertical\u{0B}form\u{0C}", "next\u{85}line\u{2028}para\u{2029}", "ünï 😀"]
    {
        let mut definition = (*doubler).clone();
        definition.id = id.to_owned();
        let shader = codegen::generate(&definition).unwrap();
        codegen::check(id, &shader).unwrap_or_else(|e| panic!("{id:?}: {e}\n{}", shader.source));
    }
}

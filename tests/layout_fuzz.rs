//! Random message layouts end to end, with proptest under a fixed seed: scalars, vectors, arrays
//! (of arrays, of vectors, of nested messages; now and then up to 65,535 long), messages nested
//! several levels deep, a nested type used twice, many fields and odd names. For each layout:
//! - its offsets, sizes, alignments and strides against naga's for the generated WGSL, and the
//!   generated modules (the ring harness, the grouped one, the two kernels fused each way round)
//!   around an echo and a handler touching every number, validated by naga;
//! - the Rust codec: typed values (vectors as typed lists or component by component), untyped
//!   numbers (flat lists or element by element) and packed bytes give the same bytes, and
//!   decoding gives the typed values back;
//! - messages of random numbers, edge ones included (NaN payloads, signalling NaNs, -0.0,
//!   subnormals, `i32::MIN`, `u32::MAX`), through a GPU kernel (lavapipe without a GPU) that
//!   echoes them and one that changes every number in a known way (bits inverted, added to,
//!   sign flipped through `bitcast`), bit for bit, as batches of values and of bytes, single
//!   sends and calls; through two kernels of one handler (grouped into one dispatch) and an echo
//!   feeding a kernel of the same bytes under other names (fused into one module where it can
//!   be); and through host handlers on the cpu backend the same way;
//! - refusals: a message spoilt in one field (missing, extra, given twice, out of range, not
//!   integral, of the wrong type or length) is refused by that field's path, alone or anywhere
//!   in a batch, sent or called, and nothing of it is queued.
//!
//! `LAYOUT_FUZZ_SEED=n` changes the seeds and `LAYOUT_FUZZ_SCALE=k` runs k times the cases.
#![cfg(not(target_arch = "wasm32"))]

#[allow(unused_imports)]
mod common;

use std::sync::Arc;
use std::time::Duration;

use naga::valid::{Capabilities, ValidationFlags, Validator};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use ringkernel_web::message::Scalar;
use ringkernel_web::{
    codegen, BackendChoice, FieldType, KernelDefinition, LaunchOptions, MessageLayout, MessageRef, Runtime, Value,
};

// ---- random layouts --------------------------------------------------------------------------

/// A type as generated, before it is laid out.
#[derive(Debug, Clone)]
enum Ty {
    Scalar(Scalar),
    Vector(Scalar, u32),
    Array(Box<Ty>, u32),
    Struct(Vec<(String, Ty)>),
}

/// Field names, some of them odd: what the harness or JavaScript objects also use, digits,
/// underscores, WGSL built-ins' names (fields may take them).
const NAMES: &[&str] = &[
    "a",
    "x",
    "value",
    "Z9",
    "_under",
    "t_1_",
    "min",
    "state",
    "read",
    "handle",
    "output_ring",
    "constructor",
    "toString",
    "valueOf",
    "hasOwnProperty",
    "length",
    "then",
    "prototype",
    "bitcast",
    "vec3f",
    "A",
    "mass",
    "f32",
    "i32",
    "vec3",
    "array",
    "atomic",
    "ptr",
    "bool",
    "storage",
    "msg",
    "out",
    "i0",
];

/// Struct name stems; a counter makes each struct's name its own.
const STRUCT_NAMES: &[&str] = &["S", "_s", "Msg", "x_", "Zz", "Inner"];

fn scalar() -> impl Strategy<Value = Scalar> {
    prop_oneof![Just(Scalar::I32), Just(Scalar::U32), Just(Scalar::F32)]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(NAMES).prop_map(str::to_owned),
        1 => (0u32..100_000).prop_map(|n| format!("f{n}")),
    ]
}

fn ty() -> impl Strategy<Value = Ty> {
    let leaf = prop_oneof![scalar().prop_map(Ty::Scalar), (scalar(), 2u32..=4).prop_map(|(s, n)| Ty::Vector(s, n))];
    // Now and then long, up to what WGSL compilers take (65,535): such layouts go to naga only.
    let len = prop_oneof![40 => 1u32..=4, 10 => 5u32..=24, 1 => 25u32..=65_535];
    leaf.prop_recursive(4, 40, 6, move |inner| {
        prop_oneof![
            (inner.clone(), len.clone()).prop_map(|(t, n)| Ty::Array(Box::new(t), n)),
            proptest::collection::vec((name(), inner), 1..=6).prop_map(Ty::Struct),
        ]
    })
}

/// A message's fields, and whether one more field repeats a nested message type already used.
fn message() -> impl Strategy<Value = (Vec<(String, Ty)>, bool, usize)> {
    (proptest::collection::vec((name(), ty()), 1..=12), any::<bool>(), 0usize..STRUCT_NAMES.len())
}

/// Lays out generated types; struct names are made unique with a counter.
struct Builder {
    structs: Vec<MessageLayout>,
    stem: usize,
}

impl Builder {
    fn field_type(&mut self, ty: &Ty) -> Result<FieldType, String> {
        Ok(match ty {
            Ty::Scalar(s) => FieldType::Scalar(*s),
            Ty::Vector(s, n) => FieldType::vector(*s, *n),
            Ty::Array(element, n) => FieldType::array(self.field_type(element)?, *n),
            Ty::Struct(fields) => {
                let name = format!(
                    "{}{}",
                    STRUCT_NAMES[(self.stem + self.structs.len()) % STRUCT_NAMES.len()],
                    self.structs.len()
                );
                let layout = self.layout(&name, fields)?;
                self.structs.push(layout.clone());
                FieldType::message(&layout)
            }
        })
    }

    fn layout(&mut self, name: &str, fields: &[(String, Ty)]) -> Result<MessageLayout, String> {
        let mut named: Vec<(String, FieldType)> = Vec::new();
        for (i, (field, ty)) in fields.iter().enumerate() {
            let mut field = field.clone();
            if named.iter().any(|(n, _)| *n == field) {
                field = format!("{field}_{i}");
            }
            named.push((field, self.field_type(ty)?));
        }
        let refs: Vec<(&str, FieldType)> = named.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
        MessageLayout::new(name, &refs).map_err(|e| e.to_string())
    }
}

/// The generated message as a layout (`None` when the layout is refused: too large, say).
fn build((fields, repeat, stem): &(Vec<(String, Ty)>, bool, usize)) -> Option<MessageLayout> {
    let mut builder = Builder { structs: Vec::new(), stem: *stem };
    let mut named: Vec<(String, FieldType)> = Vec::new();
    for (i, (field, ty)) in fields.iter().enumerate() {
        let mut field = field.clone();
        if named.iter().any(|(n, _)| *n == field) {
            field = format!("{field}_{i}");
        }
        named.push((field, builder.field_type(ty).ok()?));
    }
    if *repeat {
        if let Some(first) = builder.structs.first() {
            named.push(("again".into(), FieldType::array(FieldType::message(first), 2)));
        }
    }
    let refs: Vec<(&str, FieldType)> = named.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    MessageLayout::new("Message", &refs).ok()
}

/// A runner with a fixed seed, so every run makes the same cases: `LAYOUT_FUZZ_SEED` (a number)
/// changes every test's seed and `LAYOUT_FUZZ_SCALE` multiplies their case counts, to explore.
fn runner(seed: u8, cases: u32) -> TestRunner {
    let env = |name: &str| std::env::var(name).ok().map(|v| v.parse::<u64>().unwrap_or_else(|_| panic!("{name}: {v}")));
    let mut bytes = [seed; 32];
    bytes[..8].copy_from_slice(&(env("LAYOUT_FUZZ_SEED").unwrap_or(0) ^ seed as u64).to_le_bytes());
    let cases = cases * env("LAYOUT_FUZZ_SCALE").unwrap_or(1) as u32;
    // Shrinking a failure runs cases again, each up to its timeouts (a GPU case that hangs waits
    // 30 s a receive): a minute of it, then the smallest case found so far is reported.
    let config = Config {
        cases,
        failure_persistence: None,
        max_global_rejects: 1_000_000,
        max_shrink_time: 60_000,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Runs `test` on `cases` random layouts of at most `max_size` bytes, each with a seed for its values.
fn for_layouts(seed: u8, cases: u32, max_size: usize, test: impl Fn(&MessageLayout, u64) -> Result<(), TestCaseError>) {
    let strategy = (message(), any::<u64>());
    runner(seed, cases)
        .run(&strategy, |(message, value_seed)| {
            let Some(layout) = build(&message) else { return Err(TestCaseError::reject("refused layout")) };
            if layout.size() > max_size {
                return Err(TestCaseError::reject("too large"));
            }
            test(&layout, value_seed)
        })
        .unwrap();
}

// ---- against naga ----------------------------------------------------------------------------

fn compare(
    module: &naga::Module,
    layouter: &naga::proc::Layouter,
    ours: &FieldType,
    theirs: naga::Handle<naga::Type>,
    path: &str,
) -> Result<(), TestCaseError> {
    let layout = layouter[theirs];
    prop_assert_eq!(ours.size(), layout.size, "{}: size", path);
    prop_assert_eq!(ours.align(), layout.alignment.round_up(1), "{}: alignment", path);
    match (&module.types[theirs].inner, ours) {
        (naga::TypeInner::Array { base, stride, size }, FieldType::Array(element, len)) => {
            prop_assert_eq!(element.stride(), *stride, "{}: array stride", path);
            prop_assert!(matches!(size, naga::ArraySize::Constant(n) if n.get() == *len), "{}: length", path);
            compare(module, layouter, element, *base, &format!("{path}[]"))
        }
        (naga::TypeInner::Struct { members, span }, FieldType::Struct(layout)) => {
            compare_struct(module, layouter, layout, members, *span, path)
        }
        (naga::TypeInner::Scalar(s), FieldType::Scalar(ours)) => {
            prop_assert_eq!(naga_scalar(*s), Some(*ours), "{}: scalar", path);
            Ok(())
        }
        (naga::TypeInner::Vector { size, scalar }, FieldType::Vector(ours, n)) => {
            prop_assert_eq!((naga_scalar(*scalar), *size as u32), (Some(*ours), *n), "{}: vector", path);
            Ok(())
        }
        (theirs, ours) => Err(TestCaseError::fail(format!("{path}: naga has {theirs:?}, we have {ours}"))),
    }
}

fn naga_scalar(scalar: naga::Scalar) -> Option<Scalar> {
    match (scalar.kind, scalar.width) {
        (naga::ScalarKind::Sint, 4) => Some(Scalar::I32),
        (naga::ScalarKind::Uint, 4) => Some(Scalar::U32),
        (naga::ScalarKind::Float, 4) => Some(Scalar::F32),
        _ => None,
    }
}

fn compare_struct(
    module: &naga::Module,
    layouter: &naga::proc::Layouter,
    ours: &MessageLayout,
    members: &[naga::StructMember],
    span: u32,
    path: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(ours.size() as u32, span, "{}: struct size", path);
    prop_assert_eq!(ours.fields().len(), members.len(), "{}: field count", path);
    for (field, member) in ours.fields().iter().zip(members) {
        let path = format!("{path}.{}", field.name);
        prop_assert_eq!(member.name.as_deref(), Some(field.name.as_str()));
        prop_assert_eq!(field.offset, member.offset, "{}: offset", path);
        compare(module, layouter, &field.ty, member.ty, &path)?;
    }
    Ok(())
}

/// The layout's WGSL, used in a storage buffer (so naga applies the storage-buffer rules), laid
/// out by naga and compared field by field.
fn check_against_naga(layout: &MessageLayout) -> Result<(), TestCaseError> {
    let mut source: String = layout.structs().unwrap().iter().map(|s| s.wgsl_struct()).collect();
    source.push_str(&format!(
        "@group(0) @binding(0) var<storage, read_write> messages: array<{}>;\n@compute @workgroup_size(1) fn main() {{ let n = arrayLength(&messages); }}\n",
        layout.name()
    ));
    let module = naga::front::wgsl::parse_str(&source).map_err(|e| TestCaseError::fail(e.emit_to_string(&source)))?;
    Validator::new(ValidationFlags::all(), Capabilities::all())
        .validate(&module)
        .map_err(|e| TestCaseError::fail(format!("{e:?}\n{source}")))?;
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).unwrap();
    let (handle, ty) = module.types.iter().find(|(_, ty)| ty.name.as_deref() == Some(layout.name())).unwrap();
    let naga::TypeInner::Struct { members, span } = &ty.inner else { panic!("a struct") };
    compare_struct(&module, &layouter, layout, members, *span, layout.name())?;
    prop_assert_eq!(layouter[handle].size, layout.size() as u32);
    Ok(())
}

// ---- values --------------------------------------------------------------------------------

const EDGE_I32: &[i32] = &[0, 1, -1, i32::MIN, i32::MAX, i32::MIN + 1];
const EDGE_U32: &[u32] = &[0, 1, u32::MAX, 0x8000_0000, 0x7fff_ffff];
/// -0.0, subnormals, infinities, quiet and signalling NaNs with payloads and either sign,
/// the largest and smallest normals.
const EDGE_F32: &[u32] = &[
    0x0000_0000,
    0x8000_0000,
    0x0000_0001,
    0x807f_ffff,
    0x0040_0000,
    0x7f80_0000,
    0xff80_0000,
    0x7fc0_0000,
    0x7fc0_1234,
    0xffff_ffff,
    0x7f80_0001,
    0xff80_4321,
    0x7f7f_ffff,
    0x0080_0000,
    0x3f80_0000,
];

fn random_word(rng: &mut fastrand::Rng, scalar: Scalar) -> u32 {
    if rng.bool() {
        return match scalar {
            Scalar::I32 => EDGE_I32[rng.usize(..EDGE_I32.len())] as u32,
            Scalar::U32 => EDGE_U32[rng.usize(..EDGE_U32.len())],
            _ => EDGE_F32[rng.usize(..EDGE_F32.len())],
        };
    }
    match (scalar, rng.u8(..4)) {
        (Scalar::F32, 0) => (rng.f32() * 2000.0 - 1000.0).to_bits(),
        (Scalar::I32 | Scalar::U32, 0) => rng.u32(..1000),
        _ => rng.u32(..),
    }
}

/// The scalar of every number in a numeric type, in memory order, with its byte offset.
fn leaves(ty: &FieldType, offset: u32, out: &mut Vec<(Scalar, u32)>) {
    match ty {
        FieldType::Scalar(s) => out.push((*s, offset)),
        FieldType::Vector(s, n) => out.extend((0..*n).map(|i| (*s, offset + 4 * i))),
        FieldType::Array(element, n) => (0..*n).for_each(|i| leaves(element, offset + i * element.stride(), out)),
        FieldType::Struct(layout) => {
            layout.fields().iter().for_each(|f| leaves(&f.ty, offset + f.offset, out));
        }
        _ => unreachable!(),
    }
}

fn layout_leaves(layout: &MessageLayout) -> Vec<(Scalar, u32)> {
    let mut out = Vec::new();
    leaves(&FieldType::message(layout), 0, &mut out);
    out
}

/// A random message's bytes: every number random (padding zero).
fn random_bytes(layout: &MessageLayout, rng: &mut fastrand::Rng) -> Vec<u8> {
    let mut bytes = vec![0u8; layout.size()];
    for (scalar, at) in layout_leaves(layout) {
        bytes[at as usize..at as usize + 4].copy_from_slice(&random_word(rng, scalar).to_le_bytes());
    }
    bytes
}

fn word(bytes: &[u8], at: u32) -> u32 {
    u32::from_le_bytes(bytes[at as usize..at as usize + 4].try_into().unwrap())
}

/// The message in `bytes` as values: typed (`I32`, `F32s`, ...), or untyped (`Number`, `List`)
/// when `untyped`, with vectors and numeric arrays given flat or element by element at random.
fn value_of(ty: &FieldType, bytes: &[u8], at: u32, untyped: bool, rng: &mut fastrand::Rng) -> Value {
    let number = |scalar: Scalar, w: u32| match scalar {
        Scalar::I32 => i32::from_ne_bytes(w.to_ne_bytes()) as f64,
        Scalar::U32 => w as f64,
        _ => f32::from_bits(w) as f64,
    };
    match ty {
        FieldType::Struct(layout) => Value::Struct(
            layout
                .fields()
                .iter()
                .map(|f| (f.name.clone(), value_of(&f.ty, bytes, at + f.offset, untyped, rng)))
                .collect(),
        ),
        FieldType::Array(element, n) if ty.scalar().is_none() || (untyped && rng.u8(..3) == 0) => {
            Value::Array((0..*n).map(|i| value_of(element, bytes, at + i * element.stride(), untyped, rng)).collect())
        }
        FieldType::Scalar(s) => {
            let w = word(bytes, at);
            match (s, untyped) {
                (_, true) => Value::Number(number(*s, w)),
                (Scalar::I32, false) => Value::I32(w as i32),
                (Scalar::U32, false) => Value::U32(w),
                (Scalar::F32, false) => Value::F32(f32::from_bits(w)),
                _ => unreachable!(),
            }
        }
        _ => {
            let mut at_each = Vec::new();
            leaves(ty, at, &mut at_each);
            let words: Vec<u32> = at_each.iter().map(|(_, o)| word(bytes, *o)).collect();
            let scalar = ty.scalar().unwrap();
            if matches!(ty, FieldType::Vector(..)) && rng.u8(..4) == 0 {
                // A vector given element by element: numbers, or typed scalars.
                let element = FieldType::Scalar(scalar);
                return Value::Array(
                    (0..words.len() as u32).map(|k| value_of(&element, bytes, at + 4 * k, untyped, rng)).collect(),
                );
            }
            if untyped {
                let numbers: Vec<f64> = words.iter().map(|w| number(scalar, *w)).collect();
                if matches!(ty, FieldType::Vector(..)) && rng.bool() {
                    return Value::Array(numbers.into_iter().map(Value::Number).collect());
                }
                return Value::List(numbers);
            }
            match scalar {
                Scalar::I32 => Value::I32s(words.iter().map(|w| *w as i32).collect()),
                Scalar::U32 => Value::U32s(words),
                Scalar::F32 => Value::F32s(words.into_iter().map(f32::from_bits).collect()),
                _ => unreachable!(),
            }
        }
    }
}

fn message_value(layout: &MessageLayout, bytes: &[u8], untyped: bool, rng: &mut fastrand::Rng) -> Value {
    value_of(&FieldType::message(layout), bytes, 0, untyped, rng)
}

/// The change the "flip" kernels make: `i32` bits inverted, `u32` plus a constant (wrapping),
/// `f32` sign bit flipped through its bits.
fn flip_word(scalar: Scalar, w: u32) -> u32 {
    match scalar {
        Scalar::I32 => !w,
        Scalar::U32 => w.wrapping_add(0x9e37_79b9),
        Scalar::F32 => w ^ 0x8000_0000,
        _ => unreachable!(),
    }
}

fn flipped(layout: &MessageLayout, bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for (scalar, at) in layout_leaves(layout) {
        out[at as usize..at as usize + 4].copy_from_slice(&flip_word(scalar, word(bytes, at)).to_le_bytes());
    }
    out
}

/// Whether `got` holds `want`'s numbers: bit for bit, or (`nan_any`) any NaN for a NaN.
/// Padding is not compared: it carries no value.
fn same_numbers(layout: &MessageLayout, got: &[u8], want: &[u8], nan_any: bool) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{} bytes, expected {}", got.len(), want.len()));
    }
    for (scalar, at) in layout_leaves(layout) {
        let (g, w) = (word(got, at), word(want, at));
        let nans = scalar == Scalar::F32 && f32::from_bits(g).is_nan() && f32::from_bits(w).is_nan();
        if g != w && !(nan_any && nans) {
            return Err(format!("{scalar} at byte {at}: got {g:#010x}, expected {w:#010x}"));
        }
    }
    Ok(())
}

// ---- WGSL handlers -------------------------------------------------------------------------

/// Statements changing every number of `expr` (of type `ty`) as [`flip_word`] does.
fn flip_wgsl(ty: &FieldType, expr: &str, depth: usize, out: &mut String) {
    let constant = |s: Scalar, n: u32, c: &str| if n == 1 { format!("{c}u") } else { format!("vec{n}<{s}>({c}u)") };
    let leaf = |s: Scalar, n: u32, out: &mut String| {
        let u = if n == 1 { "u32".to_owned() } else { format!("vec{n}<u32>") };
        let changed = match s {
            Scalar::I32 => format!("~{expr}"),
            Scalar::U32 => format!("{expr} + {}", constant(Scalar::U32, n, "0x9e3779b9")),
            Scalar::F32 => format!(
                "bitcast<{}>(bitcast<{u}>({expr}) ^ {})",
                if n == 1 { "f32".to_owned() } else { format!("vec{n}<f32>") },
                constant(Scalar::U32, n, "0x80000000")
            ),
            _ => unreachable!(),
        };
        out.push_str(&format!("{expr} = {changed};\n"));
    };
    match ty {
        FieldType::Scalar(s) => leaf(*s, 1, out),
        FieldType::Vector(s, n) => leaf(*s, *n, out),
        FieldType::Array(element, n) => {
            out.push_str(&format!("for (var i{depth} = 0u; i{depth} < {n}u; i{depth}++) {{\n"));
            flip_wgsl(element, &format!("{expr}[i{depth}]"), depth + 1, out);
            out.push_str("}\n");
        }
        FieldType::Struct(layout) => {
            for field in layout.fields() {
                flip_wgsl(&field.ty, &format!("{expr}.{}", field.name), depth, out);
            }
        }
        _ => unreachable!(),
    }
}

fn echo_wgsl(layout: &MessageLayout) -> String {
    format!("fn handle(msg: {0}) -> {0} {{ return msg; }}", layout.name())
}

fn flip_kernel_wgsl(layout: &MessageLayout) -> String {
    let mut body = String::new();
    flip_wgsl(&FieldType::message(layout), "out", 0, &mut body);
    format!("fn handle(msg: {0}) -> {0} {{\nvar out = msg;\n{body}return out;\n}}", layout.name())
}

/// The same bytes under other names: every struct's and field's name changed.
fn renamed(layout: &MessageLayout) -> MessageLayout {
    fn ty(t: &FieldType) -> FieldType {
        match t {
            FieldType::Array(element, n) => FieldType::array(ty(element), *n),
            FieldType::Struct(inner) => FieldType::message(&renamed(inner)),
            other => other.clone(),
        }
    }
    let fields: Vec<(String, FieldType)> =
        layout.fields().iter().map(|f| (format!("r_{}", f.name), ty(&f.ty))).collect();
    let fields: Vec<(&str, FieldType)> = fields.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    MessageLayout::new(&format!("R{}", layout.name()), &fields).unwrap()
}

fn nests_arrays_of_messages(layout: &MessageLayout) -> bool {
    layout.fields().iter().any(|f| match &f.ty {
        FieldType::Struct(inner) => nests_arrays_of_messages(inner),
        FieldType::Array(..) => f.ty.scalar().is_none(),
        _ => false,
    })
}

// ---- the tests -------------------------------------------------------------------------------

/// Every random layout's offsets, sizes, alignments and strides are naga's, and the generated
/// module around both handlers validates.
#[test]
fn random_layouts_match_naga() {
    // Every name the generator picks is one a field may take, so no layout is refused for it.
    for name in NAMES {
        MessageLayout::new("T", &[(name, FieldType::I32)]).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for_layouts(1, 256, usize::MAX, |layout, _| {
        check_against_naga(layout)?;
        let fail = |e: ringkernel_web::Error, source: &str| TestCaseError::fail(format!("{e}\n{source}"));
        let mut definitions = Vec::new();
        for (id, wgsl) in [("echo", echo_wgsl(layout)), ("flip", flip_kernel_wgsl(layout))] {
            let definition = KernelDefinition::new(id, layout.clone(), layout.clone(), &wgsl);
            for shader in [codegen::generate(&definition), codegen::generate_grouped(&definition)] {
                let shader = shader.map_err(|e| fail(e, ""))?;
                codegen::check(id, &shader).map_err(|e| fail(e, &shader.source))?;
            }
            definitions.push(definition);
        }
        // The two as one fused pipeline, each way round, where messages of the layout can pass
        // between fused stages (not with arrays of messages: those chains run ring to ring).
        if nests_arrays_of_messages(layout) {
            return Ok(());
        }
        for stages in [[&definitions[0], &definitions[1]], [&definitions[1], &definitions[0]]] {
            let fused = codegen::generate_fused(&stages, 64).map_err(|e| fail(e, ""))?;
            codegen::check_fused(&fused).map_err(|e| fail(e, ""))?;
        }
        Ok(())
    });
}

/// The Rust codec: typed values pack to the bytes they came from, which decode to typed values
/// bit for bit; untyped numbers, flat or element by element, pack to the same bytes (a NaN to
/// some NaN).
#[test]
fn random_values_round_trip_through_the_codec() {
    for_layouts(2, 300, 1 << 16, |layout, seed| {
        let mut rng = fastrand::Rng::with_seed(seed);
        for _ in 0..4 {
            let bytes = random_bytes(layout, &mut rng);
            let Value::Struct(typed) = message_value(layout, &bytes, false, &mut rng) else { unreachable!() };
            let mut packed = vec![0xAAu8; layout.size()];
            layout
                .encode(typed.iter().map(|(n, v)| (n.as_str(), v)), &mut packed)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&packed, &bytes, "typed values pack to their bytes, padding zeroed");
            let decoded = Value::Struct(layout.decode(&bytes));
            prop_assert!(same_bits(&decoded, &decoded_value(&FieldType::message(layout), &bytes, 0)), "{:?}", decoded);
            let Value::Struct(untyped) = message_value(layout, &bytes, true, &mut rng) else { unreachable!() };
            layout
                .encode(untyped.iter().map(|(n, v)| (n.as_str(), v)), &mut packed)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            same_numbers(layout, &packed, &bytes, true).map_err(TestCaseError::fail)?;
        }
        Ok(())
    });
}

/// What `decode` gives for `bytes`: typed scalars, typed lists (flat) for vectors and numeric
/// arrays, and nested messages and arrays of them element by element.
fn decoded_value(ty: &FieldType, bytes: &[u8], at: u32) -> Value {
    match ty {
        FieldType::Struct(layout) => Value::Struct(
            layout.fields().iter().map(|f| (f.name.clone(), decoded_value(&f.ty, bytes, at + f.offset))).collect(),
        ),
        FieldType::Array(element, n) if ty.scalar().is_none() => {
            Value::Array((0..*n).map(|i| decoded_value(element, bytes, at + i * element.stride())).collect())
        }
        FieldType::Scalar(Scalar::I32) => Value::I32(word(bytes, at) as i32),
        FieldType::Scalar(Scalar::U32) => Value::U32(word(bytes, at)),
        FieldType::Scalar(_) => Value::F32(f32::from_bits(word(bytes, at))),
        _ => {
            let mut at_each = Vec::new();
            leaves(ty, at, &mut at_each);
            let words = at_each.iter().map(|(_, o)| word(bytes, *o));
            match ty.scalar() {
                Some(Scalar::I32) => Value::I32s(words.map(|w| w as i32).collect()),
                Some(Scalar::U32) => Value::U32s(words.collect()),
                _ => Value::F32s(words.map(f32::from_bits).collect()),
            }
        }
    }
}

/// The same values of the same kinds, an `f32` by its bits (`Value`'s `PartialEq` calls a NaN
/// unequal to itself and -0.0 equal to 0.0).
fn same_bits(a: &Value, b: &Value) -> bool {
    let floats = |x: &[f32], y: &[f32]| x.len() == y.len() && x.iter().zip(y).all(|(x, y)| x.to_bits() == y.to_bits());
    match (a, b) {
        (Value::F32(x), Value::F32(y)) => x.to_bits() == y.to_bits(),
        (Value::F32s(x), Value::F32s(y)) => floats(x, y),
        (Value::Struct(x), Value::Struct(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((n, v), (m, w))| n == m && same_bits(v, w))
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same_bits(v, w)),
        _ => a == b,
    }
}

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(30));

/// Echo and flip kernels of one layout, launched on `rt`; `host` gives them host handlers.
async fn launch_pair(rt: &Runtime, layout: &MessageLayout, case: usize, host: bool) -> (String, String) {
    let echo = format!("echo{case}");
    let flip = format!("flip{case}");
    let mut echo_def = KernelDefinition::new(&echo, layout.clone(), layout.clone(), &echo_wgsl(layout));
    let mut flip_def = KernelDefinition::new(&flip, layout.clone(), layout.clone(), &flip_kernel_wgsl(layout));
    if host {
        echo_def = echo_def.with_host_handler(|input: &[u8], output: &mut [u8], _: &mut [u32]| {
            output.copy_from_slice(input);
            Ok(true)
        });
        let l = Arc::new(layout.clone());
        flip_def = flip_def.with_host_handler(move |input: &[u8], output: &mut [u8], _: &mut [u32]| {
            output.copy_from_slice(&flipped(&l, input));
            Ok(true)
        });
    }
    for definition in [echo_def, flip_def] {
        let id = definition.id.clone();
        rt.launch_definition(definition, LaunchOptions::default().with_queue_capacity(64)).await.unwrap();
        rt.activate(&id).await.unwrap();
    }
    (echo, flip)
}

async fn receive_all(rt: &Runtime, id: &str, n: usize, size: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n * size {
        got.extend(rt.receive_batch_packed(id, n - got.len() / size, TIMEOUT).await.unwrap());
    }
    got
}

/// Random messages of `layout` through both kernels every way a message goes in and comes out.
async fn round_trips(rt: &Runtime, layout: &MessageLayout, case: usize, seed: u64, host: bool) -> Result<(), String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let size = layout.size();
    let (echo, flip) = launch_pair(rt, layout, case, host).await;
    let batch: Vec<Vec<u8>> = (0..1 + rng.usize(..6)).map(|_| random_bytes(layout, &mut rng)).collect();
    for (id, change) in [(&echo, false), (&flip, true)] {
        let expect = |bytes: &[u8]| if change { flipped(layout, bytes) } else { bytes.to_vec() };
        let what = |how: &str, i: usize| format!("{id} ({how}, message {i} of layout {}): ", layout.name());
        // A batch of typed values, and the answers packed.
        let values: Vec<Value> = batch.iter().map(|b| message_value(layout, b, false, &mut rng)).collect();
        assert_eq!(rt.send_values(id, &values, TIMEOUT).await.unwrap(), batch.len());
        let answers = receive_all(rt, id, batch.len(), size).await;
        for (i, (answer, sent)) in answers.chunks(size).zip(&batch).enumerate() {
            same_numbers(layout, answer, &expect(sent), false).map_err(|e| what("send_values", i) + &e)?;
        }
        // The same batch packed.
        assert_eq!(rt.send_packed(id, &batch.concat(), TIMEOUT).await.unwrap(), batch.len());
        let answers = receive_all(rt, id, batch.len(), size).await;
        for (i, (answer, sent)) in answers.chunks(size).zip(&batch).enumerate() {
            same_numbers(layout, answer, &expect(sent), false).map_err(|e| what("send_packed", i) + &e)?;
        }
        // One at a time: untyped values sent, decoded answers; a call with bytes; a call with
        // typed values.
        for (i, sent) in batch.iter().enumerate() {
            let untyped = message_value(layout, sent, true, &mut rng);
            rt.send_value(id, &untyped, TIMEOUT).await.unwrap();
            let answer = rt.receive(id, TIMEOUT).await.unwrap();
            let mut packed = vec![0u8; size];
            layout.encode(answer.iter().map(|(n, v)| (n.as_str(), v)), &mut packed).unwrap();
            same_numbers(layout, &packed, &expect(sent), true).map_err(|e| what("send_value", i) + &e)?;
            let answer = rt.call_packed(id, sent, TIMEOUT).await.unwrap();
            same_numbers(layout, &answer, &expect(sent), false).map_err(|e| what("call_packed", i) + &e)?;
            let typed = message_value(layout, sent, false, &mut rng);
            let answer =
                rt.call_message(id, MessageRef::Value(&typed), TIMEOUT, |_, bytes| bytes.to_vec()).await.unwrap();
            same_numbers(layout, &answer, &expect(sent), false).map_err(|e| what("call_message", i) + &e)?;
        }
    }
    if !host {
        grouped_and_fused(rt, layout, &echo, &flip, &batch).await?;
    }
    for id in [&echo, &flip] {
        rt.terminate(id, TIMEOUT).await.unwrap();
    }
    Ok(())
}

/// Two more kernels of the flip kernel's definition (grouped into one dispatch once their
/// module is ready), and the echo feeding the flip (fused into one module once it is ready,
/// where the layout can be): every answer as before, ring to ring, grouped and fused, the
/// rounds going on until both have run.
async fn grouped_and_fused(
    rt: &Runtime,
    layout: &MessageLayout,
    echo: &str,
    flip: &str,
    batch: &[Vec<u8>],
) -> Result<(), String> {
    let size = layout.size();
    let flipped_batch: Vec<u8> = batch.iter().flat_map(|b| flipped(layout, b)).collect();
    let packed = batch.concat();
    let twins = [format!("{flip}a"), format!("{flip}b")];
    for twin in &twins {
        let definition = KernelDefinition::new(twin, layout.clone(), layout.clone(), &flip_kernel_wgsl(layout));
        rt.launch_definition(definition, LaunchOptions::default().with_queue_capacity(64)).await.unwrap();
        rt.activate(twin).await.unwrap();
    }
    // The echo feeds a flip kernel of the same bytes under other names (structs and fields).
    let renamed = renamed(layout);
    let next = format!("{flip}r");
    let definition = KernelDefinition::new(&next, renamed.clone(), renamed.clone(), &flip_kernel_wgsl(&renamed));
    rt.launch_definition(definition, LaunchOptions::default().with_queue_capacity(64)).await.unwrap();
    rt.activate(&next).await.unwrap();
    rt.connect(echo, &next).await.unwrap();
    // Rounds until the twins have run grouped and the echo and its next stage fused (where the
    // layout lets them), so that those paths are checked however long their modules take to
    // compile (a large layout's on a loaded machine: many rounds); a module that never comes
    // fails the case rather than leaving it to the ring-to-ring path unseen.
    let fuses = !nests_arrays_of_messages(layout);
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    for round in 0.. {
        for twin in &twins {
            rt.send_packed(twin, &packed, TIMEOUT).await.unwrap();
        }
        rt.send_packed(echo, &packed, TIMEOUT).await.unwrap();
        for id in [&twins[0], &twins[1], &next] {
            let answers = receive_all(rt, id, batch.len(), size).await;
            for (i, (answer, want)) in answers.chunks(size).zip(flipped_batch.chunks(size)).enumerate() {
                same_numbers(layout, answer, want, false)
                    .map_err(|e| format!("{id} (round {round}, message {i}): {e}"))?;
            }
        }
        let metrics = |id: &str| rt.kernel_metrics(id).unwrap();
        let grouped = twins.iter().all(|twin| metrics(twin).grouped_dispatches > 0);
        let fused = !fuses || metrics(&next).fused_dispatches > 0;
        if round >= 11 && grouped && fused {
            break;
        }
        if std::time::Instant::now() > give_up {
            return Err(format!(
                "after {round} rounds: grouped {grouped}, fused {fused} (of a layout that fuses: {fuses})"
            ));
        }
        std::thread::sleep(Duration::from_millis(2)); // time for the grouped and fused modules to compile
    }
    for id in [&twins[0], &twins[1], &next] {
        rt.terminate(id, TIMEOUT).await.unwrap();
    }
    Ok(())
}

fn kernel_round_trips(backend: BackendChoice, seed: u8, cases: u32, max_size: usize) {
    let rt = common::runtime_on(backend);
    let host = backend == BackendChoice::Cpu;
    let case = std::cell::Cell::new(0);
    for_layouts(seed, cases, max_size, |layout, value_seed| {
        case.set(case.get() + 1);
        pollster::block_on(round_trips(&rt, layout, case.get(), value_seed, host)).map_err(TestCaseError::fail)
    });
}

/// On the GPU (lavapipe without one): every number comes back bit for bit, NaN payloads, -0.0
/// and subnormals included, from an echo and from a kernel that changes each number.
#[test]
fn random_messages_round_trip_through_gpu_kernels() {
    kernel_round_trips(BackendChoice::Auto, 3, 20, 1024);
}

/// The same on the cpu backend, with host handlers.
#[test]
fn random_messages_round_trip_through_host_handlers() {
    kernel_round_trips(BackendChoice::Cpu, 4, 40, 4096);
}

// ---- refusals --------------------------------------------------------------------------------

/// Spoils one field of `value` (a struct of `layout` at `path`, nested messages chosen at
/// random) and returns the path the refusal must name.
fn spoil(layout: &MessageLayout, value: &mut Value, path: &str, rng: &mut fastrand::Rng) -> String {
    let Value::Struct(fields) = value else { unreachable!() };
    let join = |name: &str| if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") };
    // Descend into a nested message now and then.
    let nested: Vec<usize> =
        (0..fields.len()).filter(|&i| matches!(fields[i].1, Value::Struct(_) | Value::Array(_))).collect();
    if !nested.is_empty() && rng.bool() {
        let i = nested[rng.usize(..nested.len())];
        let field = &layout.fields()[i];
        let child = join(&field.name);
        match (&field.ty, &mut fields[i].1) {
            (FieldType::Struct(inner), v @ Value::Struct(_)) => return spoil(inner, v, &child, rng),
            (ty @ FieldType::Array(..), Value::Array(items)) => {
                // An array of messages (or of arrays of them): one element, down to a message.
                let (mut ty, mut items, mut child) = (ty, items, child);
                loop {
                    let FieldType::Array(element, _) = ty else { unreachable!() };
                    let k = rng.usize(..items.len());
                    child = format!("{child}[{k}]");
                    match (&**element, &mut items[k]) {
                        (FieldType::Struct(inner), v @ Value::Struct(_)) => return spoil(inner, v, &child, rng),
                        (e @ FieldType::Array(..), Value::Array(next)) => (ty, items) = (e, next),
                        _ => break,
                    }
                }
            }
            _ => {}
        }
    }
    let i = rng.usize(..fields.len());
    let name = fields[i].0.clone();
    let ty = &layout.fields()[i].ty;
    match (rng.u8(..8), ty, &mut fields[i].1) {
        (0, ..) => {
            fields.remove(i);
            join(&name)
        }
        (1, ..) => {
            fields.insert(rng.usize(..=fields.len()), ("zz_extra".into(), Value::Number(1.0)));
            join("zz_extra")
        }
        (2, ..) => {
            let again = fields[i].clone();
            fields.push(again);
            join(&name)
        }
        (3, FieldType::Scalar(s), v) if *s != Scalar::F32 => {
            let bad: &[f64] = match s {
                Scalar::I32 => &[2_147_483_648.0, -2_147_483_649.0, 1.5, f64::NAN, f64::INFINITY],
                _ => &[-1.0, 4_294_967_296.0, 0.5, f64::NAN, f64::NEG_INFINITY],
            };
            *v = Value::Number(bad[rng.usize(..bad.len())]);
            join(&name)
        }
        (4, FieldType::Scalar(s), v) => {
            *v = if *s == Scalar::F32 { Value::I32(1) } else { Value::F32(1.0) };
            join(&name)
        }
        (6, FieldType::Vector(s, n), v) => {
            // Typed components, one of another scalar.
            let of = |scalar: Scalar| match scalar {
                Scalar::I32 => Value::I32(-1),
                Scalar::U32 => Value::U32(1),
                _ => Value::F32(0.5),
            };
            let other = Scalar::ALL.into_iter().filter(|o| o != s).nth(rng.usize(..2)).unwrap();
            let k = rng.usize(..*n as usize);
            *v = Value::Array((0..*n as usize).map(|j| of(if j == k { other } else { *s })).collect());
            format!("{}[{k}]", join(&name))
        }
        (5, _, Value::List(numbers)) if ty.scalar() != Some(Scalar::F32) => {
            let k = rng.usize(..numbers.len());
            numbers[k] = if rng.bool() { 0.5 } else { -4_294_967_296.0 };
            format!("{}[{k}]", join(&name))
        }
        (5, _, Value::List(numbers)) => {
            numbers.pop();
            join(&name)
        }
        (_, _, v) => {
            *v = Value::Unsupported(["string", "boolean", "null", "undefined"][rng.usize(..4)].into());
            join(&name)
        }
    }
}

/// A message spoilt in one field is refused by that field's path, alone or anywhere in a batch,
/// and nothing of the batch is queued: the good messages sent after it are the only answers.
#[test]
fn spoilt_messages_are_refused_by_their_path_and_lose_nothing() {
    let rt = common::runtime_on(BackendChoice::Cpu);
    let case = std::cell::Cell::new(0);
    for_layouts(5, 60, 4096, |layout, seed| {
        case.set(case.get() + 1);
        let mut rng = fastrand::Rng::with_seed(seed);
        pollster::block_on(async {
            let (echo, flip) = launch_pair(&rt, layout, case.get(), true).await;
            for _ in 0..6 {
                let bytes: Vec<Vec<u8>> = (0..3).map(|_| random_bytes(layout, &mut rng)).collect();
                let untyped = rng.bool();
                let mut batch: Vec<Value> = bytes.iter().map(|b| message_value(layout, b, untyped, &mut rng)).collect();
                let k = rng.usize(..batch.len());
                let path = spoil(layout, &mut batch[k], "", &mut rng);
                let mut encoded = vec![0u8; layout.size()];
                let Value::Struct(fields) = &batch[k] else { unreachable!() };
                let error = layout.encode(fields.iter().map(|(n, v)| (n.as_str(), v)), &mut encoded).unwrap_err();
                prop_assert_eq!(&error.field, &path, "{}", error);
                let counters = |id: &str| {
                    let t = rt.telemetry(id).unwrap().unwrap();
                    (t.messages_sent, t.errors)
                };
                let before = (counters(&echo), counters(&flip));
                let refused = rt.send_values(&echo, &batch, TIMEOUT).await.unwrap_err();
                prop_assert_eq!(refused.accepted, 0);
                match &refused.error {
                    ringkernel_web::Error::MessageFormat { field, .. } => {
                        prop_assert_eq!(field, &format!("[{k}].{path}"))
                    }
                    other => prop_assert!(false, "{other}"),
                }
                match rt.send_value(&flip, &batch[k], TIMEOUT).await.unwrap_err() {
                    ringkernel_web::Error::MessageFormat { field, .. } => prop_assert_eq!(&field, &path),
                    other => prop_assert!(false, "{other}"),
                }
                let called = rt.call_message(&flip, MessageRef::Value(&batch[k]), TIMEOUT, |_, b| b.to_vec()).await;
                let named =
                    matches!(called, Err(ringkernel_web::Error::MessageFormat { ref field, .. }) if *field == path);
                prop_assert!(named, "call: {:?}", called.err());
                // Each refusal counted once as an error, and no message as sent.
                let ((sent, errors), (flip_sent, flip_errors)) = before;
                prop_assert_eq!((counters(&echo), counters(&flip)), ((sent, errors + 1), (flip_sent, flip_errors + 2)));
                // Nothing went in: the next batch's answers are the only ones.
                prop_assert_eq!(rt.send_packed(&echo, &bytes.concat(), TIMEOUT).await.unwrap(), bytes.len());
                prop_assert_eq!(receive_all(&rt, &echo, bytes.len(), layout.size()).await, bytes.concat());
                prop_assert!(matches!(rt.try_receive_with(&echo, |_, _| ()), Ok(None)));
                prop_assert!(matches!(rt.try_receive_with(&flip, |_, _| ()), Ok(None)));
            }
            rt.terminate(&echo, TIMEOUT).await.unwrap();
            rt.terminate(&flip, TIMEOUT).await.unwrap();
            Ok(())
        })
    });
}

//! Handlers a user gets wrong, natively: each `KernelCompile` error says where in the user's
//! own source (line and column) and what, in WGSL's terms (types as WGSL writes them, no naga
//! arena indices, nothing about code the user did not write). Checked through the public
//! `codegen::generate` and `codegen::check`, what `launch` runs before it compiles, so no
//! device is needed.
#![cfg(not(target_arch = "wasm32"))]

use ringkernel_web::message::{FieldType, MessageLayout, Scalar};
use ringkernel_web::{codegen, Error, KernelDefinition, StateElement};

/// A particle step's messages: `position`, `velocity`, `mass`, `id`.
fn particle() -> MessageLayout {
    MessageLayout::builder("Particle")
        .field("position", FieldType::Vector(Scalar::F32, 3))
        .field("velocity", FieldType::Vector(Scalar::F32, 3))
        .field("mass", FieldType::F32)
        .field("id", FieldType::U32)
        .build()
        .unwrap()
}

/// The refusal of `wgsl` as a particle step with an `atomic<u32>` state of 16: its message,
/// line and column.
fn refusal(wgsl: &str) -> (String, Option<u32>, Option<u32>) {
    let def = KernelDefinition::new("step", particle(), particle(), wgsl).with_state(StateElement::AtomicU32, 16);
    let refused = codegen::generate(&def).and_then(|shader| codegen::check("step", &shader));
    match refused {
        Err(Error::KernelCompile { message, line, column, .. }) => (message, line, column),
        other => panic!("not a KernelCompile error: {other:?}\n{wgsl}"),
    }
}

/// (what the user got wrong, the handler, the line and column of the error, words its message
/// has, words it must not have)
type Case = (&'static str, &'static str, u32, u32, &'static [&'static str]);

const CASES: &[Case] = &[
    (
        "a u32 assigned to an f32 field",
        "fn handle(p: Particle) -> Particle {\n    var q = p;\n    q.mass = p.id;\n    return q;\n}",
        3,
        5,
        &["`u32` is given where `f32` is needed", "`f32(x)`"],
    ),
    (
        "no return at the end",
        "fn handle(p: Particle) -> Particle {\n    var q = p;\n    q.mass = 2.0;\n}",
        4,
        1,
        &["`handle` can reach its end without a `return`", "`Particle`"],
    ),
    (
        "a return on one branch only",
        "fn handle(p: Particle) -> Particle {\n    if (p.mass > 0.0) {\n        return p;\n    }\n}",
        5,
        1,
        &["`handle` can reach its end without a `return`"],
    ),
    (
        "a helper without its return",
        "fn speed(v: vec3<f32>) -> f32 {\n    let s = length(v);\n}\nfn handle(p: Particle) -> Particle {\n    return p;\n}",
        3,
        1,
        &["`speed` can reach its end without a `return`", "`f32`"],
    ),
    (
        "a field name the message does not have",
        "fn handle(p: Particle) -> Particle {\n    var q = p;\n    q.pos = p.position + p.velocity;\n    return q;\n}",
        3,
        7,
        &["`pos`", ": `Particle` has `position`, `velocity`, `mass` and `id`"],
    ),
    (
        "a vec3<f32> times an i32",
        "fn handle(p: Particle) -> Particle {\n    let dt = 2;\n    var q = p;\n    q.position = p.position + p.velocity * dt;\n    return q;\n}",
        4,
        31,
        &["`*` does not take `vec3<f32>` and `i32`", "`f32(x)`"],
    ),
    (
        "a vec3<f32> made of a u32",
        "fn handle(p: Particle) -> Particle {\n    var q = p;\n    q.velocity = vec3<f32>(0.0, 1.0, p.id);\n    return q;\n}",
        3,
        38,
        &["argument 3 of `vec3<f32>(…)` is `u32`, but its components are `f32`"],
    ),
    (
        "a helper that is not defined",
        "fn handle(p: Particle) -> Particle {\n    var q = p;\n    q.velocity = clampSpeed(p.velocity, 4.0);\n    return q;\n}",
        3,
        18,
        &["`clampSpeed`"],
    ),
    (
        "an atomic read without atomicLoad",
        "fn handle(p: Particle) -> Particle {\n    var q = p;\n    q.id = state[0] + 1u;\n    return q;\n}",
        3,
        12,
        &["`state[0]` is atomic", "`atomicLoad(&state[0])`"],
    ),
    (
        "an atomic passed to atomicAdd without its `&`",
        "fn handle(p: Particle) -> Particle {\n    atomicAdd(state[p.id % 16u], 1u);\n    return p;\n}",
        2,
        15,
        &["`atomicAdd` takes a pointer to the atomic: write `&state[p.id % 16u]`"],
    ),
    (
        "an f32 added to an atomic<u32>",
        "fn handle(p: Particle) -> Particle {\n    atomicAdd(&state[p.id % 16u], p.mass);\n    return p;\n}",
        2,
        35,
        &["`f32` is given where `u32` is needed"],
    ),
    (
        "a float literal for a u32",
        "fn handle(p: Particle) -> Particle {\n    var q = p;\n    q.id = 1.5;\n    return q;\n}",
        3,
        5,
        &["a float literal is given where `u32` is needed"],
    ),
    (
        "a reserved word as a name",
        "fn handle(p: Particle) -> Particle {\n    var q = p;\n    let target = p.position;\n    q.position = target;\n    return q;\n}",
        3,
        9,
        &["`target` is a reserved keyword"],
    ),
    (
        "a helper called with the wrong type",
        "fn speed(v: vec3<f32>) -> f32 { return length(v); }\nfn handle(p: Particle) -> Particle {\n    var q = p;\n    q.mass = speed(p.id);\n    return q;\n}",
        4,
        20,
        &["argument 1 of `speed` is `u32`, but its parameter is `vec3<f32>`"],
    ),
];

#[test]
fn wrong_handlers_are_refused_at_the_users_line_and_column_in_wgsl_terms() {
    let mut wrong = Vec::new();
    for &(what, wgsl, line, column, mentions) in CASES {
        let (message, at_line, at_column) = refusal(wgsl);
        let missing: Vec<_> = mentions.iter().filter(|word| !message.contains(*word)).collect();
        // naga's own words for what it made of the source, not the user's WGSL (outside what
        // the message quotes of the user's source in backticks).
        let unquoted: String = message.split('`').step_by(2).collect();
        let naga_terms = ["automatic conversions", "[", "Abstract", "Handle", "Scalar {", "has no value"]
            .into_iter()
            .filter(|term| unquoted.contains(term))
            .collect::<Vec<_>>();
        if (at_line, at_column) != (Some(line), Some(column)) || !missing.is_empty() || !naga_terms.is_empty() {
            wrong.push(format!(
                "{what}: at {at_line:?}:{at_column:?} (want {line}:{column}), missing {missing:?}, naga's terms \
                 {naga_terms:?}: {message}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_return_without_a_value_that_the_user_wrote_is_named_as_such() {
    let (message, line, column) =
        refusal("fn handle(p: Particle) -> Particle {\n    if (p.mass > 0.0) { return; }\n    return p;\n}");
    assert!(message.contains("this `return` has no value, but the function returns `Particle`"), "{message}");
    assert_eq!((line, column), (Some(2), Some(25)));
}

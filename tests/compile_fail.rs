//! What does not compile, and how the compiler says so: `#[derive(RingMessage)]` on a field that
//! Rust places elsewhere than WGSL, a struct without `#[repr(C)]`, a tuple struct, a field type
//! that is not a WGSL type; a typed `KernelHandle` given or asked for the wrong message type; and
//! an option's or builder's `with_*` whose result is dropped (under `deny(unused_must_use)`); a report
//! built by struct literal outside the crate (`#[non_exhaustive]`).
//! Each case in tests/ui/ is one compile; its `.stderr` is the message a user sees (regenerate
//! with `TRYBUILD=overwrite cargo test --test compile_fail`).
#![cfg(not(target_arch = "wasm32"))]

#[test]
fn what_the_types_refuse_does_not_compile() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}

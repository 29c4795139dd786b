//! What `#[derive(RingMessage)]` refuses at compile time, and how it says so: a field that Rust
//! places elsewhere than WGSL, a struct without `#[repr(C)]`, a tuple struct, and a field type
//! that is not a WGSL type. Each case in tests/ui/ is one compile; its `.stderr` is the message
//! a user sees (regenerate with `TRYBUILD=overwrite cargo test --test derive_ui`).
#![cfg(not(target_arch = "wasm32"))]

#[test]
fn derive_refuses_structs_wgsl_would_read_differently() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}

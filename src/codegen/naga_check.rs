//! Native pre-compilation with naga, the WGSL front end and validator wgpu itself runs
//! natively. naga's errors carry spans, so they map to the user's line and column and keep a
//! short message, where wgpu's compilation info would give a report about generated lines.
//! (In the browser, the WGSL compiler's own messages are mapped instead.)

use naga::valid::{Capabilities, ValidationFlags, Validator};
use naga::Span;

use super::GeneratedShader;
use crate::error::Error;

/// Parses and validates `shader`; the first error becomes a `KernelCompile` error.
pub fn check(id: &str, shader: &GeneratedShader) -> Result<(), Error> {
    let source = shader.source.as_str();
    let module = naga::front::wgsl::parse_str(source).map_err(|e| {
        let spans = e.labels().map(|(span, _)| located(span, source));
        shader.compile_error(id, e.message(), spans)
    })?;
    // Every capability: what the device lacks is still refused by wgpu after this check, so
    // this check never refuses a module the device would take.
    Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&module).map_err(|e| {
        let spans = e.spans().map(|(span, _)| located(*span, source));
        shader.compile_error(id, &innermost_cause(e.as_inner()), spans)
    })?;
    Ok(())
}

/// naga nests validation errors ("Function [2] 'helper' is invalid" → "Expression [1] is
/// invalid" → the reason); the innermost one says what is wrong.
fn innermost_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn located(span: Span, source: &str) -> (u32, u32, u32) {
    let at = span.location(source);
    (at.line_number, at.line_position, at.length)
}

//! Native pre-compilation with naga, the WGSL front end and validator wgpu itself runs
//! natively. naga's errors carry spans, so they map to the user's line and column and keep a
//! short message, where wgpu's compilation info would give a report about generated lines.
//! (In the browser, the WGSL compiler's own messages are mapped instead.)

use naga::valid::{Capabilities, ValidationFlags, Validator};
use naga::Span;

use super::{FusedShader, GeneratedShader};
use crate::error::Error;

/// Parses and validates `shader`; the first error becomes a `KernelCompile` error.
pub fn check(id: &str, shader: &GeneratedShader) -> Result<(), Error> {
    check_source(&shader.source, |message, spans| shader.compile_error(id, message, spans))
}

/// [`check`] for a fused module: the error names the stage whose source it lies in, at that
/// stage's own line.
pub fn check_fused(shader: &FusedShader) -> Result<(), Error> {
    check_source(&shader.source, |message, spans| shader.compile_error(message, spans))
}

type Spans<'a> = &'a mut dyn Iterator<Item = (u32, u32, u32)>;

fn check_source(source: &str, error: impl Fn(&str, Spans<'_>) -> Error) -> Result<(), Error> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| {
        let mut spans = e.labels().map(|(span, _)| located(span, source));
        error(e.message(), &mut spans)
    })?;
    // Every capability: what the device lacks is still refused by wgpu after this check, so
    // this check never refuses a module the device would take.
    Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&module).map_err(|e| {
        let mut spans = e.spans().map(|(span, _)| located(*span, source));
        error(&innermost_cause(e.as_inner()), &mut spans)
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

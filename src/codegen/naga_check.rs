//! Native pre-compilation with naga, the WGSL front end and validator wgpu itself runs
//! natively. naga's errors carry spans, so they map to the user's line and column and keep a
//! short message, where wgpu's compilation info would give a report about generated lines.
//! (In the browser, the WGSL compiler's own messages are mapped instead.)

use naga::common::wgsl::TypeContext;
use naga::valid::{Capabilities, FunctionError, ValidationFlags, Validator};
use naga::{Handle, Span};

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
        error(&innermost_cause(e.as_inner(), &module), &mut spans)
    })?;
    Ok(())
}

/// naga nests validation errors ("Function [2] 'helper' is invalid" → "Expression [1] is
/// invalid" → the reason); the innermost one says what is wrong. A mismatched `return` is
/// said in WGSL's terms: naga's own text names the types by its arena indices ("does not match
/// the declared return type Some([1])").
fn innermost_cause(error: &(dyn std::error::Error + 'static), module: &naga::Module) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let return_type = |ty: Handle<naga::Type>| module.to_ctx().type_to_string(ty);
    match cause.downcast_ref::<FunctionError>() {
        Some(FunctionError::InvalidReturnType { expression: Some(_), expected_ty: Some(ty) }) => {
            format!("the `return` value is not of the function's return type `{}`", return_type(*ty))
        }
        Some(FunctionError::InvalidReturnType { expression: None, expected_ty: Some(ty) }) => {
            format!("this `return` has no value, but the function returns `{}`", return_type(*ty))
        }
        Some(FunctionError::InvalidReturnType { expression: Some(_), expected_ty: None }) => {
            "this `return` has a value, but the function declares no return type".to_owned()
        }
        _ => cause.to_string(),
    }
}

fn located(span: Span, source: &str) -> (u32, u32, u32) {
    let at = span.location(source);
    (at.line_number, at.line_position, at.length)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(source: &str) -> String {
        let error = check_source(source, |message, _| Error::InvalidArgument(message.to_owned())).unwrap_err();
        error.to_string()
    }

    #[test]
    fn a_mismatched_return_names_the_types_in_wgsl_terms() {
        let wrong = refusal("struct Response { value: u32 }\nfn f(x: f32) -> Response { return Response(1u); }\nfn g(x: f32) -> Response { return x; }");
        assert!(wrong.contains("the `return` value is not of the function's return type `Response`"), "{wrong}");
        assert!(!wrong.contains("Some(["), "{wrong}");
        let vector = refusal("fn g(x: f32) -> vec2<f32> { return x; }");
        assert!(vector.contains("`vec2<f32>`"), "{vector}");
    }
}

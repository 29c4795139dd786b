//! Code generation: message structs + ring harness (`shaders/ring_harness.wgsl`) + user handler
//! → one WGSL module. The handler goes last so compiler positions map back to the user's source
//! by subtracting a line offset.

use crate::kernel::KernelDefinition;

const HARNESS: &str = include_str!("../shaders/ring_harness.wgsl");

/// A generated module and where the user's handler starts in it.
#[derive(Debug, Clone)]
pub struct GeneratedShader {
    pub source: String,
    /// 1-based line of the generated source on which the user's first line sits.
    pub handler_first_line: u32,
}

impl GeneratedShader {
    /// Maps a 1-based generated line to the user's own line, or `None` when the position lies
    /// in generated code (which would be a harness bug, reported as is).
    pub fn user_line(&self, generated_line: u32) -> Option<u32> {
        generated_line.checked_sub(self.handler_first_line).map(|l| l + 1)
    }
}

/// Builds the complete WGSL for `definition`.
pub fn generate(definition: &KernelDefinition) -> GeneratedShader {
    let mut source = String::new();
    source.push_str(&definition.input.wgsl_struct());
    if definition.output.name() != definition.input.name() {
        source.push_str(&definition.output.wgsl_struct());
    }
    source.push_str(
        &HARNESS
            .replace("{{IN}}", definition.input.name())
            .replace("{{OUT}}", definition.output.name())
            .replace("{{WORKGROUP_SIZE}}", &definition.workgroup_size.to_string()),
    );
    if !source.ends_with('\n') {
        source.push('\n');
    }
    let handler_first_line = source.lines().count() as u32 + 1;
    source.push_str(&definition.wgsl);
    GeneratedShader { source, handler_first_line }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel;

    #[test]
    fn doubler_module_has_structs_harness_and_handler() {
        let def = kernel::lookup("doubler").unwrap();
        let shader = generate(&def);
        assert!(shader.source.starts_with("struct Request {"));
        assert!(shader.source.contains("var<storage, read> input_ring: array<Request>;"));
        assert!(shader.source.contains("@compute @workgroup_size(64)"));
        assert!(!shader.source.contains("{{"));
        let handler_line = shader.source.lines().nth(shader.handler_first_line as usize - 1).unwrap();
        assert_eq!(handler_line, def.wgsl.lines().next().unwrap());
        assert_eq!(shader.user_line(shader.handler_first_line + 2), Some(3));
        assert_eq!(shader.user_line(1), None);
    }

    #[test]
    fn same_struct_in_and_out_is_declared_once() {
        let def = kernel::lookup("echo").unwrap();
        assert_eq!(generate(&def).source.matches("struct EchoMessage").count(), 1);
    }
}

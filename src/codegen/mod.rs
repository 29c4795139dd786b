//! Code generation: message structs + ring harness (`shaders/harness/`, its comments left out by
//! `build.rs`) + user handler → one WGSL module. The handler goes last, so a compiler position
//! maps back to the user's source by subtracting a line offset ([`GeneratedShader::user_line`]).
//!
//! - `handler`: finds `fn handle` and checks its signature before any compiler runs;
//! - `fused`: one module for a chain of connected kernels, each stage's names renamed apart;
//! - [`generate_grouped`]: one module for many kernels of one handler, each with a small batch;
//! - `check` (native): compiles the module with naga and maps its errors to user positions.

mod fused;
pub(crate) mod handler;
#[cfg(not(target_arch = "wasm32"))]
mod naga_check;
#[cfg(not(target_arch = "wasm32"))]
mod naga_messages;

use std::fmt::Write as _;

use crate::error::Error;
use crate::features::DeviceFeature;
use crate::kernel::{DispatchShape, KernelDefinition, StateElement};
use crate::message::MessageLayout;
pub use fused::{generate_fused, unfusable, FusedShader, MAX_FUSED_STAGES};
pub use handler::HandlerForm;
#[cfg(not(target_arch = "wasm32"))]
pub use naga_check::{check, check_fused};

const RING: &str = include_str!(concat!(env!("OUT_DIR"), "/harness/ring.wgsl"));
const ANSWER: &str = include_str!(concat!(env!("OUT_DIR"), "/harness/answer.wgsl"));
const ANSWER_OR_DROP: &str = include_str!(concat!(env!("OUT_DIR"), "/harness/answer_or_drop.wgsl"));
const STATE: &str = include_str!(concat!(env!("OUT_DIR"), "/harness/state.wgsl"));
const GROUPED: &str = include_str!(concat!(env!("OUT_DIR"), "/harness/grouped.wgsl"));

/// A generated module, where the user's handler starts in it, and what the harness needs
/// bound for it.
#[derive(Debug, Clone)]
pub struct GeneratedShader {
    /// The complete WGSL module.
    pub source: String,
    /// 1-based line of the generated source on which the user's first line sits.
    pub handler_first_line: u32,
    /// How the user's handler answers, which decides the harness entry point and bindings.
    pub form: HandlerForm,
    /// Where `source` names whose handler it is (a comment), which the module's code does not
    /// depend on.
    named: std::ops::Range<usize>,
}

impl GeneratedShader {
    /// The source without the comment's name of its kernel: what its pipeline is kept by, so a
    /// kernel launched under another id from the same definition reuses it.
    pub fn unnamed(&self) -> String {
        crate::error::joined(&[&self.source[..self.named.start], &self.source[self.named.end..]], "")
    }

    /// Maps a 1-based generated line to the user's own line, or `None` when the position lies
    /// in generated code (the handler's types did not fit the harness).
    pub fn user_line(&self, generated_line: u32) -> Option<u32> {
        generated_line.checked_sub(self.handler_first_line).map(|l| l + 1)
    }

    /// A `KernelCompile` error at the most precise of `locations` (1-based generated line,
    /// 1-based column, span length; the shortest span wins) that lies in the user's source, or
    /// at no position when none does.
    pub fn compile_error(
        &self,
        id: &str,
        message: &str,
        locations: impl IntoIterator<Item = (u32, u32, u32)>,
    ) -> Error {
        // The shortest span in the user's handler (the first of equal ones), by a loop: each
        // adapter chain is code of its own in the wasm.
        let mut at: Option<(u32, u32, u32)> = None;
        for (line, column, length) in locations {
            let Some(user_line) = self.user_line(line) else { continue };
            if at.is_none_or(|(_, _, shortest)| length < shortest) {
                at = Some((user_line, characters_before(&self.source, line, column), length));
            }
        }
        Error::KernelCompile {
            id: id.to_owned(),
            message: message.trim().to_owned(),
            line: at.map(|(line, _, _)| line),
            column: at.map(|(_, column, _)| column),
        }
    }
}

/// The 1-based column, in characters, of 1-based byte column `column` on 1-based line `line` of
/// `source`: compilers (naga, and wgpu's reading of the browser's) count a column's UTF-8 bytes,
/// which a line with non-ASCII text before the error (a comment, an identifier) would push past
/// where the user sees it. Lines are counted at `\n`, as they count them; a position that is not
/// on a character boundary of its line stays as it came.
fn characters_before(source: &str, line: u32, column: u32) -> u32 {
    let start = match line.checked_sub(2) {
        None => Some(0),
        Some(breaks) => {
            source.bytes().enumerate().filter(|&(_, b)| b == b'\n').nth(breaks as usize).map(|(at, _)| at + 1)
        }
    };
    let before = start.and_then(|start| source.get(start..start + (column as usize).saturating_sub(1)));
    match before {
        // Characters counted as the bytes that start one (not 0b10xxxxxx), as `chars().count()`
        // counts them: its code for long strings was linked for this alone.
        Some(before) if !before.contains('\n') => before.bytes().filter(|&b| (b as i8) >= -0x40).count() as u32 + 1,
        _ => column,
    }
}

/// The first feature `definition`'s handler enables (`enable f16;`) that a device with
/// `features` lacks, with where the handler enables it.
pub(crate) fn missing_feature(
    definition: &KernelDefinition,
    features: &[DeviceFeature],
) -> Option<(DeviceFeature, handler::Position)> {
    handler::enabled_features(&definition.wgsl).into_iter().find(|(feature, _)| !features.contains(feature))
}

/// `KernelCompile` at the extension's name when `definition`'s handler enables a feature that
/// a device with `features`, on adapter `adapter`, lacks: what the WGSL compiler would refuse
/// with "not supported in the current environment" at a line of generated code.
pub(crate) fn check_features(
    definition: &KernelDefinition,
    features: &[DeviceFeature],
    adapter: &str,
) -> Result<(), Error> {
    match missing_feature(definition, features) {
        None => Ok(()),
        Some((feature, at)) => Err(Error::KernelCompile {
            id: definition.id.clone(),
            message: format!(
                "`enable {};` needs the device feature \"{feature}\", which the device on adapter {adapter} does not \
                 have; it runs on a device whose adapter has it (its `adapter.features` lists it)",
                feature.extension()
            ),
            line: Some(at.line),
            column: Some(at.column),
        }),
    }
}

/// Builds the complete WGSL for `definition`, or says what is wrong with the definition (at
/// the user's line and column where there is one).
pub fn generate(definition: &KernelDefinition) -> Result<GeneratedShader, Error> {
    generate_for(definition, &DispatchShape::default())
}

/// [`generate`] for a launch that shapes the dispatch: with workgroup memory, the handler
/// can use `workgroup_memory: array<u32, N>` (the block size is a pipeline constant, set when
/// the pipeline is made).
pub fn generate_for(definition: &KernelDefinition, shape: &DispatchShape) -> Result<GeneratedShader, Error> {
    // Quoted and escaped as Rust's `Debug` does: a kernel id may hold any character, and a line
    // break in it would end the comment and turn the rest of the id into code.
    let named = format!("kernel {:?}", definition.id);
    assemble(definition, RING, shape.workgroup_memory_bytes, &named)
}

/// The module that runs the tick's messages of several kernels launched from `definition`'s
/// handler in one dispatch (`shaders/harness/grouped.wgsl`), or why it cannot: kernels with state
/// or workgroup memory never group. The module names no kernel, so kernels launched under other
/// ids from the same handler and messages generate the same text, which is what groups them.
pub fn generate_grouped(definition: &KernelDefinition) -> Result<GeneratedShader, Error> {
    if definition.state.is_some() {
        return Err(Error::KernelCompile {
            id: definition.id.clone(),
            message: "a kernel with state runs a dispatch of its own".into(),
            line: None,
            column: None,
        });
    }
    assemble(definition, GROUPED, 0, "the group's kernels")
}

/// Message structs, `harness`, the answer harness of the handler's form, workgroup memory of
/// `workgroup_memory_bytes` (none at 0), the state's binding when the definition has state, and
/// the user's handler last, behind a comment naming `whose` handler it is.
fn assemble(
    definition: &KernelDefinition,
    harness: &str,
    workgroup_memory_bytes: u32,
    whose: &str,
) -> Result<GeneratedShader, Error> {
    let invalid =
        |message: String| Error::KernelCompile { id: definition.id.clone(), message, line: None, column: None };
    definition.check_shape().map_err(invalid)?;
    let form = handler::inspect(definition)?;
    let code = handler::blank_comments(&definition.wgsl);
    let directives = handler::directives(&code);

    // The handler's directives open the module, as WGSL wants; blanked where they were.
    let mut source = String::new();
    for range in &directives {
        let _ = writeln!(source, "{}", handler::one_line(&code[range.clone()]));
    }
    for layout in message_structs(&definition.input, &definition.output).map_err(invalid)? {
        source.push_str(&layout.wgsl_struct());
    }
    // The state read by the drain, so that its binding is used (see shaders/harness/ring.wgsl).
    let use_state = match definition.state {
        Some(state) if matches!(state.element, StateElement::AtomicU32 | StateElement::AtomicI32) => {
            "_ = atomicLoad(&state[0]);"
        }
        Some(_) => "_ = state[0];",
        None => "",
    };
    let workgroup_size = definition.workgroup_size.to_string();
    let fill = |template: &str| {
        fill_in(
            template,
            &[
                ("IN", definition.input.name()),
                ("OUT", definition.output.name()),
                ("WORKGROUP_SIZE", &workgroup_size),
                ("USE_STATE", use_state),
            ],
        )
    };
    source.push_str(&fill(harness));
    source.push_str(&fill(match form {
        HandlerForm::Answer => ANSWER,
        HandlerForm::AnswerOrDrop => ANSWER_OR_DROP,
    }));
    let words = workgroup_memory_bytes.div_ceil(4);
    if words > 0 {
        let _ = write!(
            source,
            "// Workgroup memory the handler may use (sharedMemory / with_shared_memory).\nvar<workgroup> \
             workgroup_memory: array<u32, {words}>;\n"
        );
    }
    if let Some(state) = definition.state {
        source.push_str(&fill_in(
            STATE,
            &[("STATE_ELEMENT", state.element.wgsl()), ("STATE_LEN", &state.len.to_string())],
        ));
    }
    source.push_str("// ---- handler of ");
    let named = source.len()..source.len() + whose.len();
    let _ = writeln!(source, "{whose} (errors report lines from here) ----");
    let handler_first_line = lines_ended(&source) + 1;
    source.push_str(&handler::blank_ranges(&definition.wgsl, &directives));
    Ok(GeneratedShader { source, handler_first_line, form, named })
}

/// Every struct the two message types need, each once, dependencies first.
fn message_structs<'a>(input: &'a MessageLayout, output: &'a MessageLayout) -> Result<Vec<&'a MessageLayout>, String> {
    let mut all: Vec<&MessageLayout> = Vec::new();
    // Loops, not `chain`, `flatten` and `find`: each adapter is code of its own in the wasm. A
    // layout whose structs cannot be listed adds none (as `flatten` of its `Err` added none).
    for structs in [input.structs(), output.structs()] {
        let Ok(structs) = structs else { continue };
        'layouts: for layout in structs {
            for seen in &all {
                if seen.name() == layout.name() {
                    if *seen != layout {
                        return Err(format!(
                            "the input and output messages both use a type named {} but define it differently",
                            layout.name()
                        ));
                    }
                    continue 'layouts;
                }
            }
            all.push(layout);
        }
    }
    Ok(all)
}

/// How many lines `text`, which ends with a line break, has: its `\n`s, as `str::lines` counts
/// them then (counting bytes links no `Lines` iterator's `count`).
fn lines_ended(text: &str) -> u32 {
    debug_assert!(text.is_empty() || text.ends_with('\n'));
    text.bytes().filter(|&b| b == b'\n').count() as u32
}

/// `template` with each `{{NAME}}` of `fields` replaced by its value (a `{{` that starts no
/// field's name is kept as it is). One scan, where a `str::replace` per field linked `str`'s
/// substring search (two-way, about 2 KB) into the wasm.
pub(crate) fn fill_in(template: &str, fields: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let field = fields.iter().find(|(name, _)| {
            rest.strip_prefix("{{").and_then(|r| r.strip_prefix(name)).is_some_and(|r| r.starts_with("}}"))
        });
        match field {
            Some((name, value)) => {
                out.push_str(value);
                rest = &rest[name.len() + 4..];
            }
            None => {
                out.push('{');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel;
    use crate::message::FieldType;

    /// Byte columns become character columns: non-ASCII text before the position counts one a
    /// character; a position inside a character, or past its line, stays as it came.
    #[test]
    fn columns_count_characters_before_them() {
        let source = "let a = 1;\n// \u{e9}\u{fc}\u{df}\nlet b\u{e9} = x;\n";
        assert_eq!(characters_before(source, 1, 5), 5);
        assert_eq!(characters_before(source, 2, 10), 7); // after "// éüß": 9 bytes, 6 characters
        assert_eq!(characters_before(source, 3, 11), 10); // the x after "let bé = "
        assert_eq!(characters_before(source, 3, 7), 7); // inside é
        assert_eq!(characters_before(source, 1, 40), 40); // past the line
    }

    /// The structs of both messages, each once, in the order met (the input's first); a type
    /// name the two define differently is refused.
    #[test]
    fn message_structs_list_each_struct_once_and_refuse_two_definitions() {
        let part = MessageLayout::new("Part", &[("x", FieldType::F32)]).unwrap();
        let other = MessageLayout::new("Other", &[("y", FieldType::U32)]).unwrap();
        let input = MessageLayout::new("In", &[("p", FieldType::message(&part))]).unwrap();
        let output =
            MessageLayout::new("Out", &[("o", FieldType::message(&other)), ("p", FieldType::message(&part))]).unwrap();
        let names: Vec<&str> = message_structs(&input, &output).unwrap().iter().map(|s| s.name()).collect();
        assert_eq!(names, ["Part", "In", "Other", "Out"]);
        let same: Vec<&str> = message_structs(&input, &input).unwrap().iter().map(|s| s.name()).collect();
        assert_eq!(same, ["Part", "In"]);
        let changed = MessageLayout::new("Part", &[("x", FieldType::I32)]).unwrap();
        let clash = MessageLayout::new("Clash", &[("p", FieldType::message(&changed))]).unwrap();
        assert_eq!(
            message_structs(&input, &clash).unwrap_err(),
            "the input and output messages both use a type named Part but define it differently"
        );
    }

    /// Templates fill as a `str::replace` per field did: every occurrence, and braces that start
    /// no field's name kept.
    #[test]
    fn templates_fill_every_field_and_keep_other_braces() {
        let fields = [("IN", "Request"), ("N", "64")];
        let filled = fill_in("{{IN}} {{N}}u {{IN}}{{N}} {x} {{ {{OUT}} {{N} {{N}}}", &fields);
        assert_eq!(filled, "Request 64u Request64 {x} {{ {{OUT}} {{N} 64}");
        assert_eq!(fill_in("", &fields), "");
        assert_eq!(fill_in("{{N}}", &fields), "64");
        assert_eq!(fill_in("ends {", &fields), "ends {");
        for template in [RING, ANSWER, ANSWER_OR_DROP, STATE, GROUPED, fused::FUSED] {
            let replaced = template.replace("{{IN}}", "Request").replace("{{N}}", "64");
            assert_eq!(fill_in(template, &fields), replaced);
        }
    }

    #[test]
    fn doubler_module_has_structs_harness_and_handler() {
        let def = kernel::lookup("doubler").unwrap();
        let shader = generate(&def).unwrap();
        assert!(shader.source.starts_with("struct Request {"));
        assert!(shader.source.contains("messages: array<Request>,"));
        assert!(shader.source.contains("answers: array<Response>,"));
        assert!(shader.source.contains("override RING_WORKGROUP_SIZE: u32 = 64u;"));
        assert!(shader.source.contains("@compute @workgroup_size(RING_WORKGROUP_SIZE)"));
        assert!(!shader.source.contains("workgroup_memory"), "no workgroup memory unless asked");
        let shape = DispatchShape { workgroup_memory_bytes: 10, ..Default::default() };
        let shared = generate_for(&def, &shape).unwrap();
        assert!(shared.source.contains("var<workgroup> workgroup_memory: array<u32, 3>;"));
        assert!(!shader.source.contains("{{"));
        assert!(!shader.source.contains("output_kept"), "answer-only handlers bind no kept flags");
        let handler_line = shader.source.lines().nth(shader.handler_first_line as usize - 1).unwrap();
        assert_eq!(handler_line, def.wgsl.lines().next().unwrap());
        assert_eq!(shader.user_line(shader.handler_first_line + 2), Some(3));
        assert_eq!(shader.user_line(1), None);
    }

    #[test]
    fn one_definition_under_two_ids_keeps_one_pipeline() {
        let def = kernel::lookup("doubler").unwrap();
        let mut other = (*def).clone();
        other.id = "doubler-2\nline".into();
        let (a, b) = (generate(&def).unwrap(), generate(&other).unwrap());
        assert!(a.source.contains("handler of kernel \"doubler\"") && b.source.contains("kernel \"doubler-2\\nline\""));
        assert_eq!(a.unnamed(), b.unnamed(), "pipelines are kept by the source without its kernel's name");
        assert!(!a.unnamed().contains("doubler\""));
        assert_eq!(a.handler_first_line, b.handler_first_line);
    }

    #[test]
    fn directives_open_the_module() {
        let def = KernelDefinition::new(
            "k",
            kernel::doubler_request(),
            kernel::doubler_response(),
            "// first\nrequires pointer_composite_access; diagnostic(off,\n  derivative_uniformity);\nfn handle(msg: Request) -> Response { return Response(msg.value); }",
        );
        let shader = generate(&def).unwrap();
        assert!(
            shader
                .source
                .starts_with("requires pointer_composite_access;\ndiagnostic(off, derivative_uniformity);\nstruct"),
            "{}",
            shader.source
        );
        assert_eq!(shader.source.matches("requires").count(), 1);
        assert_eq!(shader.user_line(shader.handler_first_line + 3), Some(4));
        let handler = shader.source.lines().nth(shader.handler_first_line as usize + 2).unwrap();
        assert!(handler.starts_with("fn handle"), "{handler}");
        #[cfg(not(target_arch = "wasm32"))]
        check("k", &shader).unwrap_or_else(|e| panic!("{e}\n{}", shader.source));
    }

    /// Every name the harness templates declare at their top level or call is one a message
    /// and a handler's declarations are refused (`RESERVED_NAMES`, the `ring_` prefix), so a
    /// user's `fn min` cannot replace the builtin the drain calls.
    #[test]
    fn the_harness_names_are_reserved() {
        use crate::message::typed::__private::is_reserved_name;
        for harness in [RING, ANSWER, ANSWER_OR_DROP, STATE, GROUPED, fused::FUSED] {
            let harness = harness.replace("{{", "").replace("}}", "");
            for (_, name) in handler::top_level_names(&harness) {
                assert!(is_reserved_name(name), "the harness declares {name}");
            }
            let tokens: Vec<_> = handler::tokens(&harness).collect();
            for pair in tokens.windows(3) {
                if let [(_, before), (_, handler::Token::Ident(name)), (_, handler::Token::Punct(b'('))] = pair {
                    if !matches!(before, handler::Token::Punct(b'@')) {
                        assert!(is_reserved_name(name), "the harness calls {name}");
                    }
                }
            }
        }
        for name in ["fused_handle", "atomicLoad", "workgroup_memory"] {
            assert!(is_reserved_name(name), "codegen writes {name}");
        }
    }

    #[test]
    fn same_struct_in_and_out_is_declared_once() {
        let def = kernel::lookup("echo").unwrap();
        assert_eq!(generate(&def).unwrap().source.matches("struct EchoMessage").count(), 1);
    }

    #[test]
    fn state_and_drop_add_their_bindings() {
        let def = kernel::lookup("histogram").unwrap();
        let shader = generate(&def).unwrap();
        assert!(shader.source.contains("var<storage, read_write> state: array<atomic<u32>, 64>;"));
        let drop = KernelDefinition::new(
            "keep",
            kernel::doubler_request(),
            kernel::doubler_response(),
            "fn handle(msg: Request, out: ptr<function, Response>) -> bool { return false; }",
        );
        let shader = generate(&drop).unwrap();
        assert_eq!(shader.form, HandlerForm::AnswerOrDrop);
        assert!(shader.source.contains("var answer: Response;"));
    }
}

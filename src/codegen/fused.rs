//! Fused pipelines: one module for a chain of connected kernels, in which each invocation runs
//! every stage's `handle` on its message in turn and writes only the last stage's answer
//! (`shaders/harness/fused.wgsl`). Stream engines call this operator chaining.
//!
//! Stages keep their own sources: two stages may both declare `Request` or a helper `f`, so
//! each stage's message structs and top-level declarations (`fn`, `struct`, `const`, `var`,
//! `override`, `alias`) are renamed with the stage's prefix (`s1__f`). Renaming changes no line,
//! so a compiler position maps back to the stage whose code it lies in, at that stage's own line
//! ([`FusedShader::stage_line`]).
//!
//! Only stages whose handler answers every message (`fn handle(msg: In) -> Out`) and has no
//! state fuse; a chain with any other stage runs ring to ring as before.

use std::fmt::Write as _;

use super::handler::{self, blank_comments, tokens, top_level_names, HandlerForm, Token};
use crate::error::Error;
use crate::kernel::KernelDefinition;
use crate::message::{FieldType, MessageLayout};

pub(super) const FUSED: &str = include_str!(concat!(env!("OUT_DIR"), "/harness/fused.wgsl"));

/// Most stages one fused module runs (a longer chain fuses in runs of this many), which bounds
/// one module's size and compile time; the module binds 3 buffers whatever its length.
pub const MAX_FUSED_STAGES: usize = 6;

/// A fused module and where each stage's handler lies in it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FusedShader {
    /// The complete WGSL module.
    pub source: String,
    /// Per stage: its kernel's id and the 1-based generated lines its handler spans.
    pub stages: Vec<(String, std::ops::Range<u32>)>,
}

impl FusedShader {
    /// The stage (index into the chain) and its own 1-based line at a 1-based generated line,
    /// or `None` in generated code.
    pub fn stage_line(&self, generated_line: u32) -> Option<(usize, u32)> {
        self.stages
            .iter()
            .position(|(_, lines)| lines.contains(&generated_line))
            .map(|stage| (stage, generated_line - self.stages[stage].1.start + 1))
    }

    /// A `KernelCompile` error naming the stage whose source holds the most precise of
    /// `locations` (1-based generated line, column, span length), at its own line; the first
    /// stage's id at no position when none lies in a stage's source.
    pub fn compile_error(&self, message: &str, locations: impl IntoIterator<Item = (u32, u32, u32)>) -> Error {
        // The shortest span in a stage's handler (the first of equal ones), by a loop: each
        // adapter chain is code of its own in the wasm.
        let mut at = None;
        for (line, column, length) in locations {
            let Some(stage_line) = self.stage_line(line) else { continue };
            if at.is_none_or(|(_, _, shortest)| length < shortest) {
                at = Some((stage_line, column, length));
            }
        }
        let stage = at.map_or(0, |((stage, _), _, _)| stage);
        Error::KernelCompile {
            id: self.stages.get(stage).map_or_else(String::new, |(id, _)| id.clone()),
            message: message.trim().to_owned(),
            line: at.map(|((_, line), _, _)| line),
            // Renaming lengthens identifiers: a column would point into the renamed text.
            column: None,
        }
    }
}

/// Why `definition` cannot run inside a fused module, if it cannot.
pub fn unfusable(definition: &KernelDefinition) -> Option<&'static str> {
    if definition.state.is_some() {
        return Some("it has state");
    }
    match handler::inspect(definition) {
        Ok(HandlerForm::Answer) => None,
        Ok(HandlerForm::AnswerOrDrop) => Some("its handler may drop messages"),
        Err(_) => Some("its handler does not compile"),
    }
}

/// Builds the fused module of `stages` (each stage's output layout is the next one's input
/// layout byte for byte, as `connect` checks), or says why they cannot fuse.
pub fn generate_fused(stages: &[&KernelDefinition], workgroup_size: u32) -> Result<FusedShader, Error> {
    let refuse =
        |id: &str, message: String| Error::KernelCompile { id: id.to_owned(), message, line: None, column: None };
    let first = stages.first().ok_or_else(|| refuse("", "a fused pipeline needs stages".into()))?;
    if stages.len() < 2 || stages.len() > MAX_FUSED_STAGES {
        return Err(refuse(
            &first.id,
            format!("{} stages: a fused pipeline runs 2 to {MAX_FUSED_STAGES}", stages.len()),
        ));
    }
    // Every stage's directives open the module, each once, as WGSL wants.
    // Lists pushed, not collected: each `collect` is a copy of `Vec`'s `from_iter` in the wasm.
    let mut codes = Vec::with_capacity(stages.len());
    for stage in stages.iter() {
        let code = blank_comments(&stage.wgsl);
        let directives = handler::directives(&code);
        codes.push((code, directives));
    }
    let mut directives: Vec<String> = Vec::new();
    for (code, ranges) in &codes {
        for range in ranges {
            let directive = handler::one_line(&code[range.clone()]);
            if !directives.contains(&directive) {
                directives.push(directive);
            }
        }
    }
    let mut source = String::new();
    for directive in &directives {
        source.push_str(directive);
        source.push('\n');
    }
    let mut spans = Vec::new();
    for ((index, stage), (code, ranges)) in stages.iter().enumerate().zip(&codes) {
        if let Some(why) = unfusable(stage) {
            return Err(refuse(&stage.id, format!("cannot run fused: {why}")));
        }
        let structs = super::message_structs(&stage.input, &stage.output).map_err(|m| refuse(&stage.id, m))?;
        let code = handler::blank_ranges(&handler::blank_ranges(code, ranges), &override_ids(code));
        let mut names = Vec::new();
        for (_, name) in top_level_names(&code) {
            names.push(name);
        }
        for layout in &structs {
            names.push(layout.name());
        }
        let prefix = format!("s{index}__");
        for layout in &structs {
            source.push_str(&rename(&layout.wgsl_struct(), &names, &prefix));
        }
        // The id escaped (see `generate_for`).
        let _ = writeln!(source, "// ---- stage {index}: handler of kernel {:?} ----", stage.id);
        let start = super::lines_ended(&source) + 1;
        source.push_str(&rename(&code, &names, &prefix));
        if !source.ends_with('\n') {
            source.push('\n');
        }
        spans.push((stage.id.clone(), start..super::lines_ended(&source) + 1));
    }
    let last = stages[stages.len() - 1];
    source.push_str(&super::fill_in(
        FUSED,
        &[
            ("IN", &format!("s0__{}", first.input.name())),
            ("OUT", &format!("s{}__{}", stages.len() - 1, last.output.name())),
            ("WORKGROUP_SIZE", &workgroup_size.to_string()),
        ],
    ));
    // Generated glue: each stage's handle on the one before's answer, rebuilt as its own input
    // type field by field (the layouts match byte for byte; names may differ).
    let _ = write!(
        source,
        "fn fused_handle(msg: s0__{}) -> s{}__{} {{\n    let a0 = s0__handle(msg);\n",
        first.input.name(),
        stages.len() - 1,
        last.output.name()
    );
    for (index, pair) in stages.windows(2).enumerate() {
        let next = index + 1;
        let converted = convert(&format!("a{index}"), &pair[0].output, &pair[1].input, &format!("s{next}__"))
            .ok_or_else(|| {
                refuse(&pair[1].id, "its input nests arrays of structs, which fused stages cannot pass on".into())
            })?;
        let _ = writeln!(source, "    let a{next} = s{next}__handle({converted});");
    }
    let _ = write!(source, "    return a{};\n}}\n", stages.len() - 1);
    Ok(FusedShader { source, stages: spans })
}

/// Where `code`'s `@id(n)` attributes lie, which the fused copy blanks. Each numbers its
/// override's pipeline constant, and numbers must be unique within a module, while two stages
/// may well use the same one. The runtime sets no handler's constants, so every override keeps
/// its default either way.
fn override_ids(code: &str) -> Vec<std::ops::Range<usize>> {
    let mut ids = Vec::new();
    // The `@` just before, where an `@id(` being read began, and how deep in its parentheses
    // (its number is any const-expression: `@id(u32(3))`).
    let (mut sign, mut start, mut depth) = (None, None, 0);
    for (at, token) in tokens(code) {
        match token {
            Token::Punct(b'(') if start.is_some() => depth += 1,
            Token::Punct(b')') if start.is_some() => {
                depth -= 1;
                if depth == 0 {
                    if let Some(start) = start.take() {
                        ids.push(start..at + 1);
                    }
                }
            }
            _ if start.is_some() => {}
            Token::Ident("id") => start = sign,
            _ => {}
        }
        sign = matches!(token, Token::Punct(b'@')).then_some(at);
    }
    ids
}

/// `value` (of layout `from`) as a constructor of layout `to` (its struct names prefixed with
/// `prefix`), field by field; `None` for arrays of structs.
fn convert(value: &str, from: &MessageLayout, to: &MessageLayout, prefix: &str) -> Option<String> {
    let mut args = Vec::new();
    for (a, b) in from.fields().iter().zip(to.fields()) {
        let field = format!("{value}.{}", a.name);
        args.push(match (&a.ty, &b.ty) {
            (FieldType::Struct(x), FieldType::Struct(y)) => convert(&field, x, y, prefix)?,
            (FieldType::Array(x, _), _) if contains_struct(x) => return None,
            _ => field,
        });
    }
    Some(format!("{prefix}{}({})", to.name(), crate::error::joined(&args, ", ")))
}

fn contains_struct(ty: &FieldType) -> bool {
    match ty {
        FieldType::Struct(_) => true,
        FieldType::Array(element, _) => contains_struct(element),
        _ => false,
    }
}

/// `code` with every identifier in `names` prefixed, except member accesses (`x.name`) and
/// struct members' declarations (`name: T` inside a struct's braces).
fn rename(code: &str, names: &[&str], prefix: &str) -> String {
    let mut out = String::with_capacity(code.len() + 64);
    let mut copied = 0;
    let mut depth = 0usize;
    let mut struct_body: Option<usize> = None;
    let mut struct_next = false;
    for (at, token) in tokens(code) {
        match token {
            Token::Punct(b'{') => {
                depth += 1;
                if struct_next {
                    struct_body = Some(depth);
                    struct_next = false;
                }
            }
            Token::Punct(b'}') => {
                if struct_body == Some(depth) {
                    struct_body = None;
                }
                depth = depth.saturating_sub(1);
            }
            Token::Ident("struct") if depth == 0 => struct_next = true,
            Token::Ident(word) if names.contains(&word) => {
                // The last character before it that is not white space (`trim_end` was linked
                // for this alone).
                let before = code[..at].chars().rev().find(|c| !c.is_whitespace());
                let after = code[at + word.len()..].trim_start();
                let member_access = before == Some('.');
                let member_declaration = struct_body == Some(depth) && after.starts_with(':');
                if !member_access && !member_declaration {
                    out.push_str(&code[copied..at]);
                    out.push_str(prefix);
                    copied = at;
                }
            }
            _ => {}
        }
    }
    out.push_str(&code[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{doubler_request, doubler_response};

    /// Names are prefixed except as members: after a `.` (white space between or not) and
    /// declared inside a struct's braces.
    #[test]
    fn rename_leaves_members_alone() {
        let code = "struct T { x: f32 }\nfn f(t: T) -> f32 { let x = t.x + t .\n\tx; return x\u{e9}(x); }";
        let renamed = rename(code, &["x", "T"], "s0__");
        let want =
            "struct s0__T { x: f32 }\nfn f(t: s0__T) -> f32 { let s0__x = t.x + t .\n\tx; return x\u{e9}(s0__x); }";
        assert_eq!(renamed, want);
    }

    fn stage(id: &str, wgsl: &str) -> KernelDefinition {
        KernelDefinition::new(id, doubler_request(), doubler_response(), wgsl)
    }

    #[test]
    fn names_declared_twice_are_renamed_per_stage() {
        let a = stage("a", "struct Pair { value: i32 }\nfn f(x: i32) -> i32 { return x + 1; }\nfn handle(msg: Request) -> Response { let p = Pair(msg.value); return Response(f(p.value)); }");
        let b = stage("b", "const value: i32 = 2;\nfn f(x: i32) -> i32 { return x * value; }\nfn handle(msg: Request) -> Response { return Response(f(msg.value)); }");
        let shader = generate_fused(&[&a, &b], 64).unwrap();
        let s = &shader.source;
        assert!(
            s.contains("struct s0__Pair {\n    value: i32,") || s.contains("struct s0__Pair { value: i32 }"),
            "{s}"
        );
        assert!(s.contains("fn s0__f(x: i32)") && s.contains("fn s1__f(x: i32)"), "{s}");
        assert!(s.contains("return x * s1__value;"), "{s}");
        assert!(s.contains("s0__Pair(msg.value)") && s.contains("f(p.value)"), "{s}");
        assert!(s.contains("struct s0__Request") && s.contains("struct s1__Response"), "{s}");
        assert!(s.contains("let a1 = s1__handle(s1__Request(a0.result));"), "{s}");
        assert!(!s.contains("{{"));
        // Line mapping: b's second line.
        let (_, lines) = &shader.stages[1];
        assert_eq!(shader.stage_line(lines.start + 1), Some((1, 2)));
        assert_eq!(shader.stage_line(1), None);
    }

    #[test]
    fn directives_open_the_module_once() {
        let a = stage("a", "diagnostic(off, derivative_uniformity);\nfn handle(msg: Request) -> Response { return Response(msg.value); }");
        let b = stage("b", "// b\ndiagnostic( off,\n  derivative_uniformity );\nrequires pointer_composite_access;\nfn handle(msg: Request) -> Response { return Response(msg.value); }");
        let shader = generate_fused(&[&a, &b], 64).unwrap();
        let s = &shader.source;
        assert!(
            s.starts_with("diagnostic(off, derivative_uniformity);\nrequires pointer_composite_access;\nstruct"),
            "{s}"
        );
        assert_eq!(s.matches("diagnostic").count(), 1, "{s}");
        // b's handler keeps its own lines (its directive blanked where it was).
        let (_, lines) = &shader.stages[1];
        let handler = s.lines().nth((lines.start + 4 - 1) as usize).unwrap();
        assert!(handler.starts_with("fn s1__handle"), "{handler}");
    }

    #[test]
    fn drop_and_state_do_not_fuse() {
        let drop = stage("d", "fn handle(msg: Request, out: ptr<function, Response>) -> bool { return false; }");
        assert!(unfusable(&drop).is_some());
        let plain = stage("p", "fn handle(msg: Request) -> Response { return Response(msg.value); }");
        assert!(unfusable(&plain).is_none());
        assert!(generate_fused(&[&plain, &drop], 64).is_err());
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn fused_modules_validate_and_errors_map_to_the_stage() {
        let a = stage("a", "fn f(x: i32) -> i32 { return x + 1; }\nfn handle(msg: Request) -> Response { return Response(f(msg.value)); }");
        let b = stage("b", "fn f(x: i32) -> i32 { return x * 2; }\nfn handle(msg: Request) -> Response { return Response(f(msg.value)); }");
        let bad = stage(
            "c",
            "fn handle(msg: Request) -> Response {\n    let y = 1;\n    return Response(msg.value + missing);\n}",
        );
        let good = generate_fused(&[&a, &b, &a], 64).unwrap();
        crate::codegen::check_fused(&good).unwrap_or_else(|e| panic!("{e}\n{}", good.source));
        // Two stages numbering their overrides alike (unique per module) still fuse.
        let numbered = stage("n", "@id(0) override K: i32 = 1;\n@ id ( 7 ) override L: i32 = 2;\n@id(u32((3))) override M: i32 = 3;\nfn handle(msg: Request) -> Response { return Response(msg.value + K + L + M); }");
        let fused = generate_fused(&[&numbered, &numbered], 64).unwrap();
        crate::codegen::check_fused(&fused).unwrap_or_else(|e| panic!("{e}\n{}", fused.source));
        assert!(!fused.source.contains("@id") && fused.source.contains("override s1__K: i32 = 1;"), "{}", fused.source);
        let shader = generate_fused(&[&a, &b, &bad], 64).unwrap();
        match crate::codegen::check_fused(&shader) {
            Err(Error::KernelCompile { id, line, .. }) => assert_eq!((id.as_str(), line), ("c", Some(3))),
            other => panic!("{other:?}"),
        }
    }
}

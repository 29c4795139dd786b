//! Native pre-compilation with naga, the WGSL front end and validator wgpu itself runs
//! natively. naga's errors carry spans, so they map to the user's line and column and keep a
//! short message, where wgpu's compilation info would give a report about generated lines.
//! (In the browser, the WGSL compiler's own messages are mapped instead.)

use naga::front::wgsl::ParseError;
use naga::valid::{Capabilities, FunctionInfo, ModuleInfo, ValidationFlags, Validator};
use naga::{Block, Module, Span, Statement, TypeInner};

use super::{naga_messages, FusedShader, GeneratedShader};
use crate::error::{joined, Error};

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
    let module = naga::front::wgsl::parse_str(source).map_err(|e| parse_error(&e, source, &error))?;
    // Every capability: what the device lacks is still refused by wgpu after this check, so
    // this check never refuses a module the device would take.
    let info = Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&module).map_err(|e| {
        let (message, operand) = naga_messages::describe(e.as_inner(), &module);
        let mut spans = e.spans().map(|(span, _)| *span).chain(operand).map(|span| located(span, source));
        error(&message, &mut spans)
    })?;
    match atomic_assignment(&module, &info, source) {
        Some(span) => Err(error(ATOMIC_ASSIGNMENT, &mut std::iter::once(located(span, source)))),
        None => Ok(()),
    }
}

const ATOMIC_ASSIGNMENT: &str = "an atomic is assigned with `=`, which WGSL does not allow: write it through \
    its built-in functions (`atomicStore(&state[i], value)`, `atomicAdd`, ...)";

/// The first `=` onto an atomic. naga's IR stores into an atomic as into anything (its
/// `atomicStore` is such a store), so its WGSL front end takes `state[0] = 1u;`, which WGSL
/// and the browser's compiler refuse: refused here as well, so that a handler that compiles
/// natively compiles in the browser too. The two are told apart by the statement's text. The
/// types are the validator's (`info`, for the valid `module`): resolving each store's pointer
/// afresh would take time in the square of the function's length.
fn atomic_assignment(module: &Module, info: &ModuleInfo, source: &str) -> Option<Span> {
    let functions = module.functions.iter().map(|(handle, f)| (f, &info[handle]));
    let entry_points = module.entry_points.iter().enumerate().map(|(i, e)| (&e.function, info.get_entry_point(i)));
    functions
        .chain(entry_points)
        .find_map(|(function, types)| first_atomic_store(&function.body, module, types, source))
}

fn first_atomic_store(block: &Block, module: &Module, types: &FunctionInfo, source: &str) -> Option<Span> {
    block.span_iter().find_map(|(statement, span)| match statement {
        Statement::Store { pointer, .. } => {
            let onto_atomic = match *types[*pointer].ty.inner_with(&module.types) {
                TypeInner::Pointer { base, .. } => matches!(module.types[base].inner, TypeInner::Atomic(_)),
                _ => false,
            };
            // naga's span of the store it makes of `atomicStore(...)` is the built-in's name,
            // where an assignment's is the statement (which may begin with a name like
            // `atomicStoreCounts`).
            let written = span.to_range().and_then(|range| source.get(range)).unwrap_or("");
            (onto_atomic && written != "atomicStore").then_some(*span)
        }
        Statement::Block(inner) => first_atomic_store(inner, module, types, source),
        Statement::If { accept, reject, .. } => first_atomic_store(accept, module, types, source)
            .or_else(|| first_atomic_store(reject, module, types, source)),
        Statement::Switch { cases, .. } => {
            cases.iter().find_map(|case| first_atomic_store(&case.body, module, types, source))
        }
        Statement::Loop { body, continuing, .. } => first_atomic_store(body, module, types, source)
            .or_else(|| first_atomic_store(continuing, module, types, source)),
        _ => None,
    })
}

/// A parse error at its primary label (the first: naga's others point at what it relates to,
/// such as the `let` of an assigned name, which may be shorter), or at another of its labels
/// when that one lies outside the user's source, with naga's notes ("consider declaring `x`
/// with `var` instead of `let`") after the message.
fn parse_error(e: &ParseError, source: &str, error: &impl Fn(&str, Spans<'_>) -> Error) -> Error {
    let mut message = atomic_as_value(e, source)
        .or_else(|| missing_field(e, source))
        .unwrap_or_else(|| naga_messages::parse_message(e.message()));
    for note in e.notes() {
        message.push_str("; ");
        message.push_str(&parameter_note(e, source).unwrap_or_else(|| note.to_owned()));
    }
    let primary = error(&message, &mut e.labels().take(1).map(|(span, _)| located(span, source)));
    match primary {
        Error::KernelCompile { line: None, .. } => {
            error(&message, &mut e.labels().map(|(span, _)| located(span, source)))
        }
        primary => primary,
    }
}

/// naga's refusal of a field name a struct does not have ("invalid field accessor `pos`"),
/// with the fields there are. Parsing stopped there, so the accessed value's type is unknown:
/// the structs of the module that lack the name are the ones it may be (the runtime's own, its
/// rings', left out). An accessor a vector takes (`xyzw`, `rgba`) is about a vector; so is one
/// no struct lacks.
fn missing_field(e: &ParseError, source: &str) -> Option<String> {
    let accessor = e.message().strip_prefix("invalid field accessor `")?.strip_suffix('`')?;
    let swizzle = accessor.len() <= 4
        && (accessor.chars().all(|c| "xyzw".contains(c)) || accessor.chars().all(|c| "rgba".contains(c)));
    let harness: Vec<&str> = [super::RING, super::GROUPED, super::fused::FUSED]
        .into_iter()
        .flat_map(structs)
        .map(|(name, _)| name)
        .collect();
    let lacking: Vec<String> = structs(source)
        .into_iter()
        .filter(|(name, fields)| !harness.contains(name) && !fields.iter().any(|field| field == accessor))
        .map(|(name, fields)| {
            let fields: Vec<String> = fields.iter().map(|field| format!("`{field}`")).collect();
            let last = fields.len().saturating_sub(1);
            match fields.split_at(last) {
                ([], [only]) => format!("`{name}` has {only}"),
                (first, last) => format!("`{name}` has {} and {}", joined(first, ", "), joined(last, "")),
            }
        })
        .collect();
    (!swizzle && !lacking.is_empty())
        .then(|| format!("invalid field accessor `{accessor}`: {}", joined(&lacking, "; ")))
}

/// The structs `source` declares, each one's name and its fields' names, in order.
fn structs(source: &str) -> Vec<(&str, Vec<String>)> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("struct") {
        let keyword = rest[..at].chars().next_back().is_none_or(|c| !ident(c));
        rest = &rest[at + "struct".len()..];
        let (Some(open), Some(close)) = (rest.find('{'), rest.find('}')) else { break };
        let name = rest[..open].trim();
        if !keyword || !rest.starts_with(char::is_whitespace) || close < open || !name.chars().all(ident) {
            continue;
        }
        // Each `:` ends a field's name (types have none), less what comments say.
        let lines: Vec<&str> =
            rest[open + 1..close].lines().map(|line| line.split("//").next().unwrap_or("")).collect();
        let body = joined(&lines, "\n");
        let pieces: Vec<&str> = body.split(':').collect();
        let fields = pieces[..pieces.len() - 1]
            .iter()
            .map(|piece| {
                let piece = piece.trim_end();
                piece[piece.rfind(|c: char| !ident(c)).map_or(0, |at| at + 1)..].to_owned()
            })
            .collect();
        found.push((name, fields));
        rest = &rest[close..];
    }
    found
}

/// naga's refusal of an atomic used as a plain value ("use atomic built-in functions"), with
/// the call to write: as an atomic built-in's first argument the `&` was left out
/// (`atomicAdd(state[i], 1u)`, where the author did call one); elsewhere it is read or
/// written as a plain value (`state[0] + 1u`).
fn atomic_as_value(e: &ParseError, source: &str) -> Option<String> {
    if !e.message().starts_with("atomic variables cannot be accessed directly") {
        return None;
    }
    let (span, _) = e.labels().next()?;
    let range = span.to_range()?;
    let written = source.get(range.clone())?;
    let before = source.get(..range.start)?.trim_end();
    let callee = before.strip_suffix('(').map(|call| {
        let call = call.trim_end();
        let name_start = call.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |at| at + 1);
        &call[name_start..]
    });
    Some(match callee {
        Some(builtin) if builtin.starts_with("atomic") => {
            format!("`{builtin}` takes a pointer to the atomic: write `&{written}`")
        }
        _ => format!(
            "`{written}` is atomic, and WGSL uses an atomic only through its built-in functions: read it with \
             `atomicLoad(&{written})`, change it with `atomicStore(&{written}, value)` or `atomicAdd`"
        ),
    })
}

/// naga's note on assigning to an immutable name says to declare it with `var` instead of
/// `let`, parameters included, which `var` cannot declare: for a parameter, the note says to
/// copy it.
fn parameter_note(e: &ParseError, source: &str) -> Option<String> {
    if e.message() != "invalid left-hand side of assignment" {
        return None;
    }
    let (binding, _) = e.labels().nth(1)?;
    let range = binding.to_range()?;
    let before = source.get(..range.start)?.trim_end();
    let name = source.get(range)?;
    (before.ends_with('(') || before.ends_with(','))
        .then(|| format!("`{name}` is a parameter: copy it into a `var` to change it (`var m = {name};`)"))
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

    /// A field name a struct does not have lists the fields of the structs that lack it (what
    /// the value may be; comments and types with commas skipped); a vector's component that is
    /// not there lists none.
    #[test]
    fn a_missing_field_lists_the_fields_there_are() {
        let pair = concat!(
            "struct Pair {\n",
            "    a: u32, // the first: a\n",
            "    b: array<u32, 2>,\n",
            "}\nstruct Response { result: i32 }\n",
        );
        let missing = refusal(&format!("{pair}fn f(p: Pair) -> u32 {{ return p.c; }}"));
        assert!(
            missing.contains("invalid field accessor `c`: `Pair` has `a` and `b`; `Response` has `result`"),
            "{missing}"
        );
        let one = refusal(&format!("{pair}fn f(p: Pair) -> u32 {{ return p.result; }}"));
        assert!(one.contains("invalid field accessor `result`: `Pair` has `a` and `b`"), "{one}");
        assert!(!one.contains("`Response`"), "{one}");
        let component = refusal(&format!("{pair}fn f(v: vec2<f32>) -> f32 {{ return v.z; }}"));
        assert!(!component.contains(" has "), "{component}");
    }

    const MESSAGES: &str = "struct Response { result: i32 }\n";

    /// The refusal of `body`, a function after [`MESSAGES`], and the line and column of each
    /// span it was given, the shortest first.
    fn refusal_at(body: &str) -> (String, Vec<(u32, u32)>) {
        let source = format!("{MESSAGES}{body}");
        let at = std::cell::RefCell::new(Vec::new());
        let error = check_source(&source, |message, spans| {
            let mut spans: Vec<_> = spans.collect();
            spans.sort_by_key(|&(_, _, length)| length);
            *at.borrow_mut() = spans.into_iter().map(|(line, column, _)| (line - 1, column)).collect();
            Error::InvalidArgument(message.to_owned())
        })
        .unwrap_err();
        (error.to_string().trim_start_matches("invalid argument: ").to_owned(), at.into_inner())
    }

    #[test]
    fn validation_errors_name_types_as_wgsl_writes_them_and_point_at_the_operand() {
        let (message, at) = refusal_at("fn handle(v: i32) -> Response {\n    return Response(1u);\n}");
        assert_eq!(message, "argument 1 of `Response(…)` is `u32`, but its field `result` is `i32`");
        assert_eq!(at[0], (2, 21), "the argument, not the constructor");
        let (message, at) = refusal_at(
            "fn twice(v: f32) -> f32 { return v * 2.0; }\nfn handle(v: i32) -> Response {\n    return Response(i32(twice(v + 1)));\n}",
        );
        assert_eq!(message, "argument 1 of `twice` is `i32`, but its parameter is `f32`");
        assert_eq!(at[0], (3, 31));
        let (message, _) = refusal_at(
            "fn handle(v: i32) -> Response {\n    if (v) { return Response(1); }\n    return Response(0);\n}",
        );
        assert_eq!(message, "the `if` condition is `i32`, where a `bool` is needed");
        let (message, _) =
            refusal_at("fn handle(v: i32) -> Response {\n    let x: f32 = 1;\n    return Response(i32(x % 2u));\n}");
        assert!(message.starts_with("`%` does not take `f32` and `u32`: WGSL converts no type"), "{message}");
        let (message, _) = refusal_at(
            "fn handle(v: i32) -> Response {\n    let b = true;\n    return Response(select(0, 1, b + b));\n}",
        );
        assert_eq!(message, "`+` does not take `bool` and `bool`", "no conversion to suggest between equal types");
        let (message, _) = refusal_at(
            "fn handle(v: i32) -> Response {\n    var a = array<i32, 4>(1, 2, 3, 4);\n    return Response(a[7]);\n}",
        );
        assert_eq!(
            message, "index 7 is out of the bounds of `array<i32, 4>`",
            "the variable's type, not its pointer's"
        );
        let (message, at) = refusal_at("fn handle(v: i32) -> Response {\n    var a = array<i32, 4>(1, 2, 3, 4);\n    return Response(a[vec2<u32>(0u, 1u)]);\n}");
        assert_eq!(message, "an index is an `i32` or `u32`, not `vec2<u32>`");
        assert_eq!(at[0], (3, 23));
        // An operand that is a name (a parameter, a `let`) has its expression's span where the
        // name was declared: the error stays at the expression that uses it.
        let (message, at) =
            refusal_at("fn handle(v: u32) -> Response {\n    return Response(i32(vec2<f32>(v, 2.0).x));\n}");
        assert_eq!(message, "argument 1 of `vec2<f32>(…)` is `u32`, but its components are `f32`");
        assert_eq!(at[0], (2, 25), "the constructor, not the parameter's declaration");
        let (_, at) = refusal_at(
            "fn handle(v: u32) -> Response {\n    let w = v + 1u;\n    return Response(i32(vec2<f32>(w, 2.0).x));\n}",
        );
        assert_eq!(at[0], (3, 25), "the constructor, not the `let`");
        let (_, at) = refusal_at(
            "fn handle(p: vec2<u32>) -> Response {\n    var a = array<i32, 4>(1, 2, 3, 4);\n    return Response(a[p]);\n}",
        );
        assert_eq!(at[0], (3, 21), "the indexing, not the parameter's declaration");
        for (made, wanted) in [
            ("array<i32, 2>(1, 2u)", "argument 2 of `array<i32, 2>(…)` is `u32`, but its elements are `i32`"),
            (
                "mat2x2<f32>(vec2<u32>(1u, 2u), vec2(1.0, 2.0))",
                "argument 1 of `mat2x2<f32>(…)` is `vec2<u32>`, but its columns are `vec2<f32>`",
            ),
        ] {
            let (message, _) = refusal_at(&format!(
                "fn handle(v: u32) -> Response {{\n    let m = {made};\n    return Response(0);\n}}"
            ));
            assert_eq!(message, wanted);
        }
        let (message, _) = refusal_at(
            "fn f(a: i32, b: i32) -> i32 { return a; }\nfn handle(v: i32) -> Response {\n    return Response(f(v));\n}",
        );
        assert_eq!(message, "`f` takes 2 arguments, but 1 is given");
    }

    #[test]
    fn a_literal_left_without_a_type_says_why_that_happens() {
        for body in [
            "fn handle(v: i32) -> Response {\n    return Response(v + 1.5);\n}",
            "fn handle(v: i32) -> Response {\n    return Response(1, 2);\n}",
        ] {
            let (message, _) = refusal_at(body);
            assert!(message.starts_with("this number has no concrete type: WGSL converts no type"), "{message}");
        }
    }

    #[test]
    fn no_refusal_shows_naga_arena_indices_or_rust_debug_output() {
        let bodies = [
            "fn handle(v: i32) -> Response { return Response(v + 1.5); }",
            "fn handle(v: i32) -> Response { var x = 1; let p = &x; return Response(p); }",
            "fn handle(v: i32) -> Response { switch 1.0 { default: { } } return Response(0); }",
            "fn handle(v: i32) -> Response { return Response(select(1, 2u, true)); }",
            "fn handle(v: i32) -> Response { return Response(select(1, 2, 3)); }",
            "fn handle(v: i32) -> Response { return Response(-true); }",
            "fn handle(v: i32) -> Response { let a = array<i32, 2>(1, 2); return Response(a[-1]); }",
            "fn handle(v: i32) -> Response { return Response(v.x); }",
            "fn handle(v: i32) -> Response { return Response(v[0]); }",
            "fn handle(v: i32) -> Response { var x: i32; x = 1.5; return Response(x); }",
        ];
        for body in bodies {
            let (message, _) = refusal_at(body);
            let index = message.find('[').filter(|&at| message[at + 1..].starts_with(|c: char| c.is_ascii_digit()));
            assert!(
                index.is_none() && !message.contains("Scalar {") && !message.contains("kind:"),
                "{body}: {message}"
            );
        }
    }

    /// The front end's resolver refuses a logical operator or a comparison of other types
    /// with a Rust value for text ("Incompatible operands: Less(Matrix { columns: Bi, ...
    /// Scalar { kind: Float, width: 4 } }, _)"); `*` between shapes that do not multiply gets
    /// no advice to convert, which cannot help.
    #[test]
    fn operators_refused_for_their_operands_say_so_in_wgsl_terms() {
        for (body, wanted) in [
            (
                "let b = v && true;",
                "`&&` takes `bool` operands, not `u32`: WGSL converts no type to `bool` by itself; compare instead \
                 (`x != 0u`)",
            ),
            (
                "let b = vec2(v, v) || vec2(true, true);",
                "`||` takes `bool` operands, not `vec2<u32>`: WGSL converts no type to `bool` by itself; compare \
                 instead (`x != 0u`)",
            ),
            ("let m = mat2x2<f32>();\n    let x = m < m;", "`<` compares only scalars and vectors"),
            ("let a = array<u32, 2>(v, v);\n    let b = a == a;", "`==` compares only scalars and vectors"),
            ("let m = mat2x2<f32>();\n    let x = m * vec3<f32>();", "`*` does not take `mat2x2<f32>` and `vec3<f32>`"),
        ] {
            let (message, _) =
                refusal_at(&format!("fn handle(v: u32) -> Response {{\n    {body}\n    return Response(0);\n}}"));
            assert_eq!(message, wanted, "{body}");
        }
    }

    #[test]
    fn naga_notes_follow_its_message_and_a_parameter_is_told_to_be_copied() {
        let (message, at) =
            refusal_at("fn handle(v: i32) -> Response {\n    let x = 1;\n    x = 2;\n    return Response(x);\n}");
        assert_eq!(message, "invalid left-hand side of assignment; consider declaring `x` with `var` instead of `let`");
        assert_eq!(at, [(3, 5)], "the assignment, naga's primary label, not the shorter `let` name");
        let (message, at) = refusal_at("fn f(a: i32, b: i32) -> i32 {\n    b = 2;\n    return a;\n}");
        assert_eq!(message, "invalid left-hand side of assignment; `b` is a parameter: copy it into a `var` to change it (`var m = b;`)");
        assert_eq!(at, [(2, 5)]);
    }

    #[test]
    fn an_atomic_assigned_with_an_equals_sign_is_refused_as_wgsl_refuses_it() {
        const STATE: &str = "@group(0) @binding(0) var<storage, read_write> state: array<atomic<u32>>;\n\
            @group(0) @binding(1) var<storage, read_write> atomicStoreCounts: array<atomic<u32>>;\n";
        let source = |body: &str| format!("{STATE}fn handle(v: u32) -> u32 {{\n{body}\n    return 0u;\n}}");
        for (body, at) in [
            ("    state[0] = 1u;", (4, 5)),
            (
                "    if (v > 0u) {\n        loop {\n            state[v] = v;\n            break;\n        }\n    }",
                (6, 13),
            ),
            // A name that begins like the built-in is not a call of it.
            ("    atomicStoreCounts[0] = 1u;", (4, 5)),
        ] {
            let found = std::cell::Cell::new(None);
            let error = check_source(&source(body), |message, spans| {
                found.set(spans.min_by_key(|&(_, _, length)| length).map(|(line, column, _)| (line, column)));
                Error::InvalidArgument(message.to_owned())
            });
            assert!(error.unwrap_err().to_string().contains("an atomic is assigned with `=`"), "{body}");
            assert_eq!(found.get(), Some(at), "{body}");
        }
        for body in [
            "    atomicStore(&state[0], 1u);",
            "    atomicStore (&state[v], v);\n    let plain = atomicLoad(&state[0]);",
            "    let p = &state[v];\n    atomicStore(p, v);\n    atomicStore(&atomicStoreCounts[0], v);",
            "    switch v {\n        case 1u: { atomicStore(&state[0], v); }\n        default: {}\n    }",
            "    loop {\n        continuing {\n            atomicStore(&state[0], v);\n            break if true;\n        }\n    }",
            "    for (var i = 0u; i < 2u; atomicStore(&state[0], i)) {\n        i++;\n    }",
            "    atomicStore(\n        &state[0],\n        v,\n    );",
        ] {
            assert!(check_source(&source(body), |m, _| Error::InvalidArgument(m.to_owned())).is_ok(), "{body}");
        }
    }

    /// The search for an atomic assigned with `=` reads each store's type from the validator's
    /// analysis: resolving the expressions before each store afresh took seconds for a handler
    /// of a few thousand indexed stores (4,000: 2.5 s in a debug build, where validating it
    /// takes 12 ms).
    #[test]
    fn a_long_handler_is_searched_to_its_end_with_the_validators_types() {
        // Resolving each store's type afresh made the search quadratic (4,000 stores: 2.5 s in a
        // debug build); the search reads the types validation found (0.3 ms). Timings are the
        // benchmarks' to print, not a test's to assert: this one checks the search's answer.
        const STATE: &str = "@group(0) @binding(0) var<storage, read_write> state: array<atomic<u32>>;\n";
        let stores: String = (0..1_000).map(|i| format!("    a[{}] = x + {i}u;\n", i % 4)).collect();
        let source = |last: &str| {
            format!("{STATE}fn handle(v: u32) -> u32 {{\n    var x = v;\n    var a = array<u32, 4>();\n{stores}{last}    return x;\n}}")
        };
        let located = |source: &str| {
            let module = naga::front::wgsl::parse_str(source).unwrap();
            let info = Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&module).unwrap();
            atomic_assignment(&module, &info, source).map(|span| located(span, source))
        };
        assert_eq!(located(&source("")), None);
        assert_eq!(located(&source("    state[1] = x;\n")), Some((1_005, 5, 12)), "the last statement of 1,004");
    }
}

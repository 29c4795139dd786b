//! Finds the user's `fn handle` and checks its signature against the kernel's message types
//! before any GPU compiler sees it, so a wrong struct name or a missing handler gets a plain
//! message at the user's own line and column instead of an error inside generated code. The
//! same scan refuses what cannot work inside the harness's module (bindings of its own, a
//! declaration that would replace a name the harness uses, a workgroup barrier) and finds the
//! directives codegen moves to the module's top.
//!
//! This is a scan, not a parser: comments are blanked out, then the `fn handle(...) -> ...`
//! header is read. The body is left to the real compiler (naga natively, the browser's WGSL
//! compiler on the web), whose positions `codegen` maps back to the user's source.

use crate::error::Error;
use crate::features::DeviceFeature;
use crate::kernel::KernelDefinition;

/// How the handler answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandlerForm {
    /// `fn handle(msg: In) -> Out`: every message gets an answer.
    Answer,
    /// `fn handle(msg: In, out: ptr<function, Out>) -> bool`: `false` drops the message.
    AnswerOrDrop,
}

/// A 1-based line and column (in characters, as the user sees them) of the user's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl Position {
    /// Lines end where WGSL's do: at `\n`, `\r` (`\r\n` is one), VT, FF, NEL, U+2028, U+2029.
    fn of(source: &str, offset: usize) -> Self {
        let (mut line, mut column) = (1, 1);
        let mut chars = source[..offset].chars().peekable();
        while let Some(c) = chars.next() {
            let crlf = c == '\r' && chars.peek() == Some(&'\n');
            if is_line_break(c) && !crlf {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        Position { line, column }
    }
}

/// WGSL's line breaks (its spec, "Blankspace and line breaks").
fn is_line_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// WGSL's blankspace: its line breaks, space, tab and the left-to-right and right-to-left marks.
fn is_blankspace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{200E}' | '\u{200F}') || is_line_break(c)
}

/// The length in bytes of the blankspace beyond ASCII (NEL, the marks, U+2028, U+2029) that
/// starts at byte `at` of `code`, if one does.
fn wide_blank(code: &str, at: usize) -> Option<usize> {
    code.get(at..)?.chars().next().filter(|&c| !c.is_ascii() && is_blankspace(c)).map(char::len_utf8)
}

/// Checks `definition.wgsl` and says which form its handler takes.
pub fn inspect(definition: &KernelDefinition) -> Result<HandlerForm, Error> {
    let source = definition.wgsl.as_str();
    let code = blank_comments(source);
    let (input, output) = (definition.input.name(), definition.output.name());
    let expected = format!(
        "write `fn handle(msg: {input}) -> {output}`, or to drop messages \
         `fn handle(msg: {input}, out: ptr<function, {output}>) -> bool`"
    );
    let fail = |offset: Option<usize>, message: String| {
        let at = offset.map(|o| Position::of(source, o));
        Error::KernelCompile {
            id: definition.id.clone(),
            message,
            line: at.map(|p| p.line),
            column: at.map(|p| p.column),
        }
    };

    if let Some(at) = find_binding_attribute(&code) {
        return Err(fail(
            Some(at),
            "a handler declares no bindings (`@group`, `@binding`): the runtime owns the kernel's bind group \
             (its rings, counters and state); keep data in the kernel's `state` or in its messages"
                .into(),
        ));
    }
    let headers = find_handles(&code);
    // Its own `fn handle` is the one name of the harness's that a handler declares.
    // Loops, not `any` and `find`: each adapter is code of its own in the wasm.
    let names_handler = |at: usize| {
        for &fn_at in &headers {
            if at > fn_at && code[fn_at + 2..at].trim().is_empty() {
                return true;
            }
        }
        false
    };
    let mut reserved = None;
    for (at, name) in top_level_names(&code) {
        if !names_handler(at) && crate::message::typed::__private::is_reserved_name(name) {
            reserved = Some((at, name));
            break;
        }
    }
    if let Some((at, name)) = reserved {
        return Err(fail(
            Some(at),
            format!(
                "a handler may not declare `{name}`: the name is reserved for the harness built around it (its own \
                 names, the WGSL built-ins it calls, predeclared types, keywords), whose uses of it this would \
                 replace; rename it"
            ),
        ));
    }
    if let Some((at, name)) = harness_use(&code) {
        return Err(fail(
            Some(at),
            format!(
                "a handler may not use `{name}`, nor name anything so (a variable, a parameter, a field): it is \
                 the harness's own (its rings, counters and answers, which other messages, and in a grouped \
                 dispatch other kernels, share); a handler's data comes in its messages and its `state`"
            ),
        ));
    }
    if let Some((at, name)) = barrier_call(&code) {
        return Err(fail(
            Some(at),
            format!(
                "`{name}` needs a workgroup's invocations to reach it together, but the harness calls `handle` once \
                 per message, which they do not"
            ),
        ));
    }
    let Some(&first) = headers.first() else {
        return Err(fail(None, format!("no `fn handle` found; {expected}")));
    };
    if let Some(&second) = headers.get(1) {
        return Err(fail(Some(second), "`fn handle` is defined more than once".into()));
    }
    let header = read_header(&code, first)
        .ok_or_else(|| fail(Some(first), format!("cannot read the `fn handle` header; {expected}")))?;

    let wrong = |what: &str, (offset, found): &(usize, String), want: &str| {
        let found = if found.is_empty() { "missing".to_owned() } else { format!("`{found}`") };
        fail(Some(*offset), format!("{what} is {found} but kernel '{}' needs `{want}`; {expected}", definition.id))
    };
    let returns = header.returns.clone().unwrap_or((header.close_paren, String::new()));
    match header.params.as_slice() {
        [msg] => {
            if msg.1 != input {
                return Err(wrong("the message parameter's type", msg, input));
            }
            if returns.1 != output {
                return Err(wrong("the return type", &returns, output));
            }
            Ok(HandlerForm::Answer)
        }
        [msg, out] => {
            if msg.1 != input {
                return Err(wrong("the message parameter's type", msg, input));
            }
            let out_ptr = format!("ptr<function,{output}>");
            if out.1 != out_ptr {
                return Err(wrong("the answer parameter's type", out, &format!("ptr<function, {output}>")));
            }
            if returns.1 != "bool" {
                return Err(wrong("the return type of a handler that may drop", &returns, "bool"));
            }
            Ok(HandlerForm::AnswerOrDrop)
        }
        _ => Err(fail(Some(first), format!("`fn handle` takes {} parameters; {expected}", header.params.len()))),
    }
}

/// `source` with every comment replaced by spaces (newlines kept), so offsets still match.
pub(super) fn blank_comments(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    let mut depth = 0; // WGSL block comments nest
    while i < bytes.len() {
        let pair = (bytes[i], bytes.get(i + 1).copied());
        if depth == 0 && pair == (b'/', Some(b'/')) {
            // To the line break, whichever of WGSL's it is (a CR alone ends it too).
            let end = source[i..].find(is_line_break).map_or(bytes.len(), |n| i + n);
            out[i..end].fill(b' ');
            i = end;
            continue;
        }
        if pair == (b'/', Some(b'*')) {
            depth += 1;
            out[i] = b' ';
            out[i + 1] = b' ';
            i += 2;
            continue;
        }
        if depth > 0 && pair == (b'*', Some(b'/')) {
            depth -= 1;
            out[i] = b' ';
            out[i + 1] = b' ';
            i += 2;
            continue;
        }
        if depth > 0 && bytes[i] != b'\n' {
            out[i] = b' ';
        }
        i += 1;
    }
    // Only ASCII bytes were replaced, and whole multi-byte characters lie inside comments.
    as_text(source, out)
}

/// `original` with the characters `blanked` (its bytes, some made spaces: every byte of each
/// character that was) turned into as many spaces. Read off `original` rather than checking
/// `blanked` is UTF-8 again: that check (`str::from_utf8`) was linked for nothing else.
fn as_text(original: &str, blanked: Vec<u8>) -> String {
    let mut out = String::with_capacity(original.len());
    for (at, c) in original.char_indices() {
        // A kept character's first byte is itself; only a space or a blanked one reads b' '.
        if blanked[at] == b' ' {
            for _ in 0..c.len_utf8() {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub(super) fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The offset of the first `@group` or `@binding` attribute (WGSL allows blanks after `@`): a
/// binding the harness's pipeline would not bind, so its dispatch would fail on the device.
fn find_binding_attribute(code: &str) -> Option<usize> {
    code.match_indices('@').map(|(at, _)| at).find(|&at| {
        let name = code[at + 1..].trim_start();
        let len = name.bytes().take_while(|b| is_ident_byte(*b)).count();
        matches!(&name[..len], "group" | "binding")
    })
}

/// The module-scope bindings and functions of the harness a handler is compiled into. Declaring
/// them is refused with the other reserved names; using them is refused too, since through them
/// a handler would write past its own answer: the ring's counters, other messages' answers, and
/// in a grouped dispatch other kernels'.
const HARNESS_OWN: [&str; 8] = [
    "input_ring",
    "output_ring",
    "output_kept",
    "last_input",
    "group_table",
    "group_member",
    "ring_answer",
    "ring_drain",
];

/// The first use of one of [`HARNESS_OWN`] as a name (not as a field after `.`), with its offset.
fn harness_use(code: &str) -> Option<(usize, &str)> {
    let mut after_dot = false;
    tokens(code).find_map(|(at, token)| {
        let follows_dot = std::mem::replace(&mut after_dot, matches!(token, Token::Punct(b'.')));
        match token {
            Token::Ident(name) if !follows_dot && HARNESS_OWN.contains(&name) => Some((at, name)),
            _ => None,
        }
    })
}

/// The first call of a WGSL barrier (`workgroupBarrier()` and the like), which needs uniform
/// control flow, with its offset.
fn barrier_call(code: &str) -> Option<(usize, &str)> {
    tokens(code).find_map(|(at, token)| match token {
        Token::Ident(name @ ("workgroupBarrier" | "storageBarrier" | "textureBarrier" | "workgroupUniformLoad"))
            if code[at + name.len()..].trim_start().starts_with('(') =>
        {
            Some((at, name))
        }
        _ => None,
    })
}

/// Offsets of every `fn` keyword that introduces a function named `handle`.
fn find_handles(code: &str) -> Vec<usize> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    // Each `f` that starts "fn" (a `char` pattern: a `&str` one links `str`'s substring search).
    for (at, _) in code.match_indices('f').filter(|&(at, _)| code[at..].starts_with("fn")) {
        let starts_token = at == 0 || !is_ident_byte(bytes[at - 1]);
        let rest = &code[at + 2..];
        if !starts_token || !rest.starts_with(|c: char| c.is_whitespace()) {
            continue;
        }
        let name = rest.trim_start();
        let name_len = name.bytes().take_while(|b| is_ident_byte(*b)).count();
        if &name[..name_len] == "handle" {
            found.push(at);
        }
    }
    found
}

/// A handler header: parameter types and return type, each with its offset in the source and
/// written without whitespace (`ptr<function,Out>`).
struct Header {
    params: Vec<(usize, String)>,
    returns: Option<(usize, String)>,
    close_paren: usize,
}

fn read_header(code: &str, fn_offset: usize) -> Option<Header> {
    let open = fn_offset + code[fn_offset..].find('(')?;
    let mut depth = 0;
    let mut close = None;
    for (i, c) in code[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close?;
    let mut params = Vec::new();
    let mut start = open + 1;
    let mut angle = 0;
    for (i, c) in code[open + 1..=close].char_indices() {
        let at = open + 1 + i;
        match c {
            '<' => angle += 1,
            '>' => angle -= 1,
            ',' | ')' if angle == 0 => {
                let param = &code[start..at];
                if !param.trim().is_empty() {
                    let colon = param.find(':')?;
                    params.push(typed(code, start + colon + 1, at));
                }
                start = at + 1;
            }
            _ => {}
        }
    }
    let after = &code[close + 1..];
    let arrow = after.len() - after.trim_start().len();
    let returns = if after.trim_start().starts_with("->") {
        let from = close + 1 + arrow + 2;
        let body = from + code[from..].find('{')?;
        Some(typed(code, from, body))
    } else {
        None
    };
    Some(Header { params, returns, close_paren: close })
}

/// The type written in `code[from..to]`: where it starts, and its text without whitespace.
fn typed(code: &str, from: usize, to: usize) -> (usize, String) {
    let text = &code[from..to];
    let lead = text.len() - text.trim_start().len();
    (from + lead, crate::kernel::without_white_space(text))
}

/// Names declared at the top level of `code` (comments blanked), with their offsets: the
/// identifier after `fn`, `struct`, `const`, `var` (after its `<...>`), `override` or `alias`
/// outside any braces.
pub(super) fn top_level_names(code: &str) -> Vec<(usize, &str)> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    let mut declaring = false;
    // `var<storage, read>`: the words inside the angle brackets are not the name.
    let mut angle = 0usize;
    for (at, token) in tokens(code) {
        match token {
            Token::Punct(b'{') => depth += 1,
            Token::Punct(b'}') => depth = depth.saturating_sub(1),
            Token::Punct(b'<') if declaring => angle += 1,
            Token::Punct(b'>') if declaring => angle = angle.saturating_sub(1),
            Token::Ident(word) if depth == 0 && declaring && angle == 0 => {
                names.push((at, word));
                declaring = false;
            }
            Token::Ident("fn" | "struct" | "const" | "var" | "override" | "alias") if depth == 0 => declaring = true,
            _ => {}
        }
    }
    names
}

/// A token of WGSL source, as [`tokens`] reads it.
#[derive(Clone, Copy)]
pub(super) enum Token<'a> {
    /// A name or keyword (any character beyond ASCII but WGSL's blankspace counts as part of one).
    Ident(&'a str),
    /// Any other byte but whitespace.
    Punct(u8),
}

/// Identifiers (with their offsets) and punctuation of `code`, between WGSL's blankspace (NEL,
/// U+2028 and the direction marks too); numbers are skipped whole, so a suffix such as `1u` or
/// `2.0f` is never taken for a name.
pub(super) fn tokens(code: &str) -> impl Iterator<Item = (usize, Token<'_>)> {
    let bytes = code.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let b = bytes[i];
            let start = i;
            if let Some(blank) = wide_blank(code, i) {
                i += blank;
                continue;
            }
            if b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 {
                while i < bytes.len()
                    && (is_ident_byte(bytes[i]) || (bytes[i] >= 0x80 && wide_blank(code, i).is_none()))
                {
                    i += 1;
                }
                return Some((start, Token::Ident(&code[start..i])));
            }
            if b.is_ascii_digit() {
                while i < bytes.len() && (is_ident_byte(bytes[i]) || bytes[i] == b'.') {
                    i += 1;
                }
                continue;
            }
            i += 1;
            if !is_blankspace(b.into()) {
                return Some((start, Token::Punct(b)));
            }
        }
        None
    })
}

/// The byte ranges of the directives (`enable`, `requires`, `diagnostic`, each to its `;`) that
/// open `code` (comments blanked). WGSL wants them before every declaration, and the runtime
/// puts the harness before the handler, so codegen moves them to the module's top.
pub(super) fn directives(code: &str) -> Vec<std::ops::Range<usize>> {
    let mut found = Vec::new();
    let mut open: Option<usize> = None;
    for (at, token) in tokens(code) {
        match (open, token) {
            (None, Token::Ident("enable" | "requires" | "diagnostic")) => open = Some(at),
            (Some(start), Token::Punct(b';')) => {
                found.push(start..at + 1);
                open = None;
            }
            (Some(_), _) => {}
            (None, _) => break,
        }
    }
    found
}

/// The features the `enable` directives opening `source` need (`enable f16;`: `shader-f16`),
/// each with the position of its extension's name, for an error that points at it. An
/// extension the runtime knows no feature for is the compiler's to judge.
pub(crate) fn enabled_features(source: &str) -> Vec<(DeviceFeature, Position)> {
    let code = blank_comments(source);
    let mut found = Vec::new();
    for range in directives(&code) {
        let mut words = tokens(&code[range.clone()]);
        if !matches!(words.next(), Some((_, Token::Ident("enable")))) {
            continue;
        }
        for (at, token) in words {
            if let Token::Ident(extension) = token {
                if let Some(feature) = DeviceFeature::for_extension(extension) {
                    found.push((feature, Position::of(source, range.start + at)));
                }
            }
        }
    }
    found
}

/// `text` on one line, written one way (a blank only between words and after commas), so two
/// stages' copies of one directive read the same.
pub(super) fn one_line(text: &str) -> String {
    // ASCII tests (anything beyond ASCII counts as a word's), so no Unicode table is linked.
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii();
    let mut out = String::with_capacity(text.len());
    let mut blank = false;
    for c in text.chars() {
        if is_blankspace(c) {
            blank = true;
            continue;
        }
        if blank && word(c) && out.ends_with(word) {
            out.push(' ');
        }
        blank = false;
        out.push(c);
        if c == ',' {
            out.push(' ');
        }
    }
    out
}

/// `text` with the bytes in `ranges` replaced by spaces (line breaks kept, so lines still match).
pub(super) fn blank_ranges(text: &str, ranges: &[std::ops::Range<usize>]) -> String {
    let mut out = text.as_bytes().to_vec();
    for range in ranges {
        out[range.clone()].iter_mut().filter(|b| !matches!(b, b'\n' | b'\r')).for_each(|b| *b = b' ');
    }
    as_text(text, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{doubler_request, doubler_response};

    fn check(wgsl: &str) -> Result<HandlerForm, Error> {
        inspect(&KernelDefinition::new("k", doubler_request(), doubler_response(), wgsl))
    }

    fn position(err: Error) -> (Option<u32>, Option<u32>, String) {
        match err {
            Error::KernelCompile { line, column, message, .. } => (line, column, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn finds_both_forms() {
        assert_eq!(check("fn handle(msg: Request) -> Response { return Response(1); }").unwrap(), HandlerForm::Answer);
        let drop =
            "// keeps evens\nfn handle(m: Request,\n  out: ptr<function, Response>,\n) -> bool {\n  return true;\n}";
        assert_eq!(check(drop).unwrap(), HandlerForm::AnswerOrDrop);
        let with_helpers = "fn handler_helper() {}\n/* fn handle(x: Other) -> Other */\nfn handle(msg: Request) -> Response { return Response(0); }";
        assert_eq!(check(with_helpers).unwrap(), HandlerForm::Answer);
    }

    #[test]
    fn mismatches_point_at_the_users_text() {
        let (line, column, message) = position(check("\n\nfn handle(msg: Requst) -> Response {}").unwrap_err());
        assert_eq!((line, column), (Some(3), Some(16)));
        assert!(message.contains("`Requst`") && message.contains("`Request`"), "{message}");

        let (line, column, _) = position(check("fn handle(msg: Request) ->  Answer { }").unwrap_err());
        assert_eq!((line, column), (Some(1), Some(29)));

        let (line, column, message) =
            position(check("fn handle(msg: Request, out: ptr<function, Response>) -> u32 {}").unwrap_err());
        assert_eq!((line, column), (Some(1), Some(58)));
        assert!(message.contains("bool"), "{message}");

        let (line, column, message) = position(check("fn helper() -> i32 { return 1; }").unwrap_err());
        assert_eq!((line, column), (None, None));
        assert!(message.contains("no `fn handle`"), "{message}");

        let twice = "fn handle(msg: Request) -> Response {}\nfn handle(msg: Request) -> Response {}";
        assert_eq!(position(check(twice).unwrap_err()).0, Some(2));
    }

    #[test]
    fn the_harness_names_are_refused_where_they_are_declared() {
        let handler = "fn handle(msg: Request) -> Response { return Response(helper(msg.value)); }";
        for (declared, name, at) in [
            ("fn min(a: u32, b: u32) -> u32 { return b; }", "min", (2, 4)),
            ("struct GroupEntry { x: u32 }", "GroupEntry", (2, 8)),
            ("fn group_member(x: u32) -> u32 { return x; }", "group_member", (2, 4)),
            ("const ring_x = 1u;", "ring_x", (2, 7)),
            ("  alias u32 = i32;", "u32", (2, 9)),
            ("var<private> select: u32;", "select", (2, 14)),
        ] {
            let source = format!("// a kernel\n{declared}\nfn helper(x: i32) -> i32 {{ return x; }}\n{handler}");
            let (line, column, message) = position(check(&source).unwrap_err());
            assert_eq!((line, column), (Some(at.0), Some(at.1)), "{declared}");
            assert!(message.contains(&format!("may not declare `{name}`")), "{message}");
        }
        // Using them is fine, and so are names that only contain them.
        let fine = format!(
            "fn minimum(a: i32) -> i32 {{ return min(a, 3); }}\nconst état = 2;\nfn helper(x: i32) -> i32 {{ return minimum(x) + état; }}\n{handler}"
        );
        assert_eq!(check(&fine).unwrap(), HandlerForm::Answer);
    }

    #[test]
    fn the_harness_bindings_and_functions_are_refused_where_they_are_used() {
        for (body, name, at) in [
            ("atomicAdd(&output_ring.processed, 1000u);", "output_ring", (2, 16)),
            ("output_ring.answers[0] = Response(666);", "output_ring", (2, 5)),
            ("let n = input_ring.header.head;", "input_ring", (2, 13)),
            ("_ = ring_answer(0u);", "ring_answer", (2, 9)),
            ("let entry = group_table.entries[0].kernel;", "group_table", (2, 17)),
        ] {
            let source =
                format!("fn handle(msg: Request) -> Response {{\n    {body}\n    return Response(msg.value);\n}}");
            let (line, column, message) = position(check(&source).unwrap_err());
            assert_eq!((line, column), (Some(at.0), Some(at.1)), "{body}");
            assert!(message.contains(&format!("may not use `{name}`")), "{message}");
        }
        // Nor name anything so: shadowing it would let a later use through.
        for named in ["let last_input = msg.value;", "var group_table = 1;"] {
            let source =
                format!("fn handle(msg: Request) -> Response {{\n    {named}\n    return Response(msg.value);\n}}");
            assert!(position(check(&source).unwrap_err()).2.contains("nor name anything so"), "{named}");
        }
        // A message's field of the same name, and names that only contain them, are fine.
        let fine = "fn handle(msg: Request) -> Response {\n    let output_ring_len = msg.output_ring;\n    return Response(output_ring_len);\n}";
        assert_eq!(check(fine).unwrap(), HandlerForm::Answer);
    }

    #[test]
    fn barriers_are_refused_where_they_are_called() {
        let source = "var<workgroup> shared_sum: atomic<u32>;\nfn handle(msg: Request) -> Response {\n    workgroupBarrier ();\n    return Response(msg.value);\n}";
        let (line, column, message) = position(check(source).unwrap_err());
        assert_eq!((line, column), (Some(3), Some(5)));
        assert!(message.contains("`workgroupBarrier`") && message.contains("once per message"), "{message}");
    }

    #[test]
    fn every_wgsl_line_break_ends_a_comment_and_a_line() {
        for newline in ["\n", "\r\n", "\r", "\u{2028}", "\u{0B}"] {
            let source =
                ["// a comment", "fn handle(msg: Request) -> Response {", "  return Respons(1);", "}"].join(newline);
            assert_eq!(check(&source).unwrap(), HandlerForm::Answer, "{newline:?}");
            let wrong = ["// a comment", "fn handle(msg: Requst) -> Response { return Response(1); }"].join(newline);
            let (line, column, _) = position(check(&wrong).unwrap_err());
            assert_eq!((line, column), (Some(2), Some(16)), "{newline:?}");
        }
    }

    #[test]
    fn directives_are_found_at_the_top_only() {
        let code =
            blank_comments("// x\nenable f16; requires a,\n b;\ndiagnostic(off, y);\nfn handle() {}\nenable late;");
        let found: Vec<&str> = directives(&code).into_iter().map(|r| &code[r]).collect();
        assert_eq!(found, ["enable f16;", "requires a,\n b;", "diagnostic(off, y);"]);
        assert!(directives("fn f() {}\nenable f16;").is_empty());
    }

    #[test]
    fn enabled_features_point_at_their_extension() {
        let found = enabled_features("// half floats\nenable subgroups, f16 ;\n/* f16 */ requires a;\nfn handle() {}");
        assert_eq!(found, [(DeviceFeature::ShaderF16, Position { line: 2, column: 19 })]);
        assert!(enabled_features("// enable f16;\nfn handle() {}\nenable f16;").is_empty());
        assert!(enabled_features("diagnostic(off, f16);").is_empty());
        // After any of WGSL's line breaks, with any of its blankspace inside.
        for blank in ["\u{0B}", "\u{85}", "\u{2028}", "\u{2029}"] {
            let found = enabled_features(&format!("// x{blank}enable\u{200E}f16\u{200F};{blank}fn handle() {{}}"));
            // Column 8 in characters: U+200E is one, of three bytes.
            assert_eq!(found, [(DeviceFeature::ShaderF16, Position { line: 2, column: 8 })], "{blank:?}");
        }
        assert_eq!(one_line("enable\u{200E} a,\u{2028}b\u{0B};"), "enable a, b;");
        assert_eq!(blank_ranges("ab;\ncd;", &[0..2, 4..5]), "  ;\n d;");
        // Characters beyond ASCII blank to one space a byte, so offsets still match.
        assert_eq!(blank_ranges("é;\nü ;", &[0..3, 4..7]), "   \n   ;");
        let spaces = |n| " ".repeat(n);
        let blanked = format!("a{}\n{} b {}\r\nc", spaces(6), spaces(11), spaces(5));
        assert_eq!(blank_comments("a /* é\n/* ü */ */ b // ß\r\nc"), blanked);
    }

    #[test]
    fn bindings_of_its_own_are_refused_where_they_are_declared() {
        let handler = "fn handle(msg: Request) -> Response { return Response(msg.value); }";
        for (declared, at) in [
            ("@group(1) @binding(0) var<storage, read_write> x: array<u32>;", (2, 1)),
            ("var<private> p: u32;\n  @ binding(9) @group(0) var<uniform> u: vec4<u32>;", (3, 3)),
        ] {
            let (line, column, message) = position(check(&format!("// a kernel\n{declared}\n{handler}")).unwrap_err());
            assert_eq!((line, column), (Some(at.0), Some(at.1)), "{declared}");
            assert!(message.contains("declares no bindings") && message.contains("`state`"), "{message}");
        }
        // In comments, or a name that only starts so, it is no binding.
        let fine =
            format!("// @group(1)\n/* @binding(0) */\n@must_use fn grouped() -> u32 {{ return 1u; }}\n{handler}");
        assert_eq!(check(&fine).unwrap(), HandlerForm::Answer);
    }
}

//! naga's validation errors said in WGSL's terms. naga's own texts name expressions and types
//! by its arena indices ("Argument 0 value [1] doesn't match the type [10]") and print types
//! as Rust values (`Scalar(Scalar { kind: Float, width: 4 })`); a handler's author reads types
//! as WGSL writes them (`f32`) and arguments counted from one. The browser's WGSL compiler
//! says these in WGSL's terms already.

use crate::error::plural;
use naga::common::wgsl::TypeContext;
use naga::proc::{ResolveContext, TypeResolution};
use naga::valid::{CallError, ComposeError, ExpressionError, FunctionError, LiteralError, ValidationError, WidthError};
use naga::{BinaryOperator, Expression, Function, Handle, Module, Span, UnaryOperator};

/// What is wrong, for `error` found in `module`: a rewording of the variants a handler's
/// author meets, and naga's innermost text, freed of arena indices, for the rest; with the
/// span of the operand at fault where naga's spans stop at the expression around it (a
/// constructor's argument, not the whole constructor).
pub fn describe(error: &ValidationError, module: &Module) -> (String, Option<Span>) {
    let in_function = match error {
        ValidationError::Function { handle, source, .. } => Some((&module.functions[*handle], source)),
        ValidationError::EntryPoint { name, source: naga::valid::EntryPointError::Function(source), .. } => {
            module.entry_points.iter().find(|entry| entry.name == *name).map(|entry| (&entry.function, source))
        }
        _ => None,
    };
    if let ValidationError::Function { handle, name, source, .. } = error {
        if let Some(reworded) = missing_return(module, *handle, name, source) {
            return reworded;
        }
    }
    if let Some((function, source)) = in_function {
        let types = Types { module, function };
        if let Some(reworded) = types.function_error(source) {
            return (reworded, types.operand_at_fault(source));
        }
    }
    let cause = innermost(error);
    let text = match cause.downcast_ref::<WidthError>() {
        Some(WidthError::Abstract) => ABSTRACT.to_owned(),
        _ => without_indices(&cause.to_string()),
    };
    (text, None)
}

/// A parse error's message: the WGSL front end resolves types as it goes, and passes on the
/// resolver's texts, which name expressions by arena index ("Invalid access into expression
/// [0], indexed: true").
pub fn parse_message(message: &str) -> String {
    match message {
        m if m.starts_with("Invalid access into expression") && m.ends_with("indexed: true") => {
            "this value cannot be indexed".to_owned()
        }
        m if m.starts_with("Invalid access into expression") => "this value has no such member".to_owned(),
        m => m
            .strip_prefix("Incompatible operands: ")
            .and_then(incompatible_operands)
            .or_else(|| auto_conversion(m))
            .unwrap_or_else(|| without_indices(m)),
    }
}

/// naga's "automatic conversions cannot convert `u32` to `f32`" (or "cannot convert elements
/// of ..."), its words for a value of one type where another is needed (assigned, passed, in a
/// `let` of a declared type), with its own spelling of a literal's type (`{AbstractFloat}`):
/// said in WGSL's terms, with the conversion to write; `None` for its other texts.
fn auto_conversion(message: &str) -> Option<String> {
    let rest = message.strip_prefix("automatic conversions cannot convert ")?;
    let rest = rest.strip_prefix("elements of ").unwrap_or(rest);
    let (given, needed) = rest.strip_prefix('`')?.strip_suffix('`')?.split_once("` to `")?;
    let given = match given {
        "{AbstractFloat}" => "a float literal".to_owned(),
        "{AbstractInt}" => "an integer literal".to_owned(),
        // WGSL's own names, inside a vector of literals (`vec3<AbstractFloat>`).
        other => format!("`{}`", other.replace(['{', '}'], "")),
    };
    let convertible = ["i32", "u32", "f32", "f16", "bool", "vec", "mat"].iter().any(|t| needed.starts_with(t));
    let hint = match convertible {
        true if given == "a float literal" => format!(
            ": WGSL converts no type to another by itself; write a whole number for `{needed}` (`2`), or convert \
             (`{needed}(x)`)"
        ),
        true => format!(": WGSL converts no type to another by itself; convert it (`{needed}(x)`)"),
        false => ": WGSL converts no type to another by itself".to_owned(),
    };
    Some(format!("{given} is given where `{needed}` is needed{hint}"))
}

/// The resolver's refusal of an operator's left operand, `Op(type, _)`, where the type is
/// WGSL's name for a logical operator's operand and a Rust value for a comparison's
/// (`Less(Matrix { columns: Bi, ... }, _)`); `None` for its other texts.
fn incompatible_operands(operands: &str) -> Option<String> {
    use BinaryOperator as B;
    let (op, operand) = operands.strip_suffix(", _)")?.split_once('(')?;
    let op = match op {
        "LogicalAnd" => B::LogicalAnd,
        "LogicalOr" => B::LogicalOr,
        "Equal" => B::Equal,
        "NotEqual" => B::NotEqual,
        "Less" => B::Less,
        "LessEqual" => B::LessEqual,
        "Greater" => B::Greater,
        "GreaterEqual" => B::GreaterEqual,
        _ => return None,
    };
    let symbol = binary(op);
    Some(match op {
        B::LogicalAnd | B::LogicalOr if !operand.contains(['{', '[', '(']) => format!(
            "`{symbol}` takes `bool` operands, not `{operand}`: WGSL converts no type to `bool` by itself; compare \
             instead (`x != 0u`)"
        ),
        B::LogicalAnd | B::LogicalOr => format!("`{symbol}` takes `bool` operands"),
        _ => format!("`{symbol}` compares only scalars and vectors"),
    })
}

/// A function with a return type whose end can be reached without a `return`: naga's front
/// end ends every such path with a `return` of no value of its own (at no span), and its
/// validator then refuses that `return`, which the author never wrote. Said as WGSL's compilers
/// say it ("missing return at end of function"), at the function's closing brace; `None` for
/// any other error, and for a `return;` the author did write.
fn missing_return(
    module: &Module,
    handle: Handle<Function>,
    name: &str,
    error: &FunctionError,
) -> Option<(String, Option<Span>)> {
    let FunctionError::InvalidReturnType { expression: None, expected_ty: Some(expected) } = error else {
        return None;
    };
    let function = &module.functions[handle];
    if written_return_without_value(&function.body) {
        return None;
    }
    let message = format!(
        "`{name}` can reach its end without a `return`: it returns `{}`, so every path through it must end \
         with `return …;`",
        module.to_ctx().type_to_string(*expected)
    );
    // The function's span runs from `fn` to its closing brace.
    let closing = module.functions.get_span(handle).to_range().filter(|range| !range.is_empty());
    Some((message, closing.map(|range| Span::new(range.end as u32 - 1, range.end as u32))))
}

/// Whether `block` holds a `return;` of the author's (one with a span: naga's own have none).
fn written_return_without_value(block: &naga::Block) -> bool {
    use naga::Statement as S;
    block.span_iter().any(|(statement, span)| match statement {
        S::Return { value: None } => span.is_defined(),
        S::Block(inner) => written_return_without_value(inner),
        S::If { accept, reject, .. } => written_return_without_value(accept) || written_return_without_value(reject),
        S::Switch { cases, .. } => cases.iter().any(|case| written_return_without_value(&case.body)),
        S::Loop { body, continuing, .. } => {
            written_return_without_value(body) || written_return_without_value(continuing)
        }
        _ => false,
    })
}

/// naga's "Abstract types may only appear in constant expressions", where WGSL's compilers say
/// which operands of which operator did not match.
const ABSTRACT: &str = "this number has no concrete type: WGSL converts no type to another by itself, so a \
    literal beside a value of another type (`1.5` with an `i32`), or one too many in a constructor, is left \
    without one; write the literal as its type (`1.5f`, `2i`, `3u`) or convert the other value (`f32(x)`)";

/// The innermost cause: naga nests its errors ("Function [2] 'helper' is invalid" →
/// "Expression [1] is invalid" → the reason).
fn innermost<'a>(error: &'a (dyn std::error::Error + 'static)) -> &'a (dyn std::error::Error + 'static) {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause
}

/// The types of a function's expressions, as WGSL writes them.
pub(super) struct Types<'a> {
    pub module: &'a Module,
    pub function: &'a Function,
}

impl Types<'_> {
    fn function_error(&self, error: &FunctionError) -> Option<String> {
        let ty = |handle: Handle<naga::Type>| self.module.to_ctx().type_to_string(handle);
        Some(match error {
            FunctionError::Expression { handle, source } => return self.expression_error(*handle, source),
            FunctionError::InvalidReturnType { expression: Some(_), expected_ty: Some(expected) } => {
                format!("the `return` value is not of the function's return type `{}`", ty(*expected))
            }
            FunctionError::InvalidReturnType { expression: None, expected_ty: Some(expected) } => {
                format!("this `return` has no value, but the function returns `{}`", ty(*expected))
            }
            FunctionError::InvalidReturnType { expression: Some(_), expected_ty: None } => {
                "this `return` has a value, but the function declares no return type".to_owned()
            }
            FunctionError::InvalidIfType(condition) => {
                format!("the `if` condition is `{}`, where a `bool` is needed", self.of(*condition)?)
            }
            FunctionError::InvalidSwitchType(selector) => {
                format!("the `switch` value is `{}`, where an `i32` or `u32` is needed", self.of(*selector)?)
            }
            FunctionError::InvalidStoreTypes { pointer, value } => format!(
                "the value is `{}`, but what it is assigned to holds `{}`",
                self.of(*value)?,
                self.value_of(*pointer)?
            ),
            FunctionError::InvalidCall { function, error } => {
                let name = self.module.functions[*function].name.as_deref().unwrap_or("the function");
                match error {
                    CallError::ArgumentType { index, required, seen_expression } => format!(
                        "argument {} of `{name}` is `{}`, but its parameter is `{}`",
                        index + 1,
                        self.of(*seen_expression)?,
                        ty(*required)
                    ),
                    CallError::ArgumentCount { required, seen } => takes(name, *required, *seen),
                    _ => return None,
                }
            }
            _ => return None,
        })
    }

    /// The span of the operand `error` is about, where naga's spans end at the expression
    /// around it. Only one written inside that expression: a name's (a parameter's, a `let`'s)
    /// expression has the span where it was declared, which is not where it is used.
    fn operand_at_fault(&self, error: &FunctionError) -> Option<Span> {
        let (around, operand) = match error {
            FunctionError::Expression {
                handle,
                source: ExpressionError::Compose(ComposeError::ComponentType { index }),
            } => match &self.function.expressions[*handle] {
                Expression::Compose { components, .. } => (*handle, *components.get(*index as usize)?),
                _ => return None,
            },
            FunctionError::Expression { handle, source: ExpressionError::InvalidIndexType(index) } => (*handle, *index),
            _ => return None,
        };
        let (around, operand) =
            (self.function.expressions.get_span(around), self.function.expressions.get_span(operand));
        let (outer, inner) = (around.to_range()?, operand.to_range()?);
        (outer.start <= inner.start && inner.end <= outer.end).then_some(operand)
    }

    fn expression_error(&self, at: Handle<Expression>, error: &ExpressionError) -> Option<String> {
        Some(match error {
            ExpressionError::Literal(LiteralError::Width(WidthError::Abstract)) => ABSTRACT.to_owned(),
            ExpressionError::InvalidBinaryOperandTypes { op, lhs_type, rhs_type, .. } => {
                let (lhs, rhs) = (self.inner(lhs_type), self.inner(rhs_type));
                // Only a conversion of one side's scalar type can help.
                let hint = if lhs_type.scalar() != rhs_type.scalar() {
                    ": WGSL converts no type to another by itself; convert one side (`f32(x)`, `i32(x)`, `u32(x)`)"
                } else {
                    ""
                };
                format!("`{}` does not take `{lhs}` and `{rhs}`{hint}", binary(*op))
            }
            ExpressionError::InvalidUnaryOperandType(op, operand) => {
                format!("`{}` does not take `{}`", unary(*op), self.of(*operand)?)
            }
            ExpressionError::IndexOutOfBounds(base, index) => {
                format!("index {index} is out of the bounds of `{}`", self.value_of(*base)?)
            }
            ExpressionError::NegativeIndex(base) => format!("a negative index into `{}`", self.value_of(*base)?),
            ExpressionError::InvalidIndexType(index) => {
                format!("an index is an `i32` or `u32`, not `{}`", self.of(*index)?)
            }
            ExpressionError::InvalidBaseType(base) => format!("`{}` cannot be indexed", self.value_of(*base)?),
            ExpressionError::SelectConditionNotABool { actual } => {
                format!("`select`'s condition is `{}`, where a `bool` is needed", self.inner(actual))
            }
            ExpressionError::SelectValuesTypeMismatch { accept, reject } => {
                format!("`select`'s values are of two types, `{}` and `{}`", self.inner(reject), self.inner(accept))
            }
            ExpressionError::Compose(compose) => {
                let Expression::Compose { ty, ref components } = self.function.expressions[at] else {
                    return None;
                };
                let made = self.module.to_ctx().type_to_string(ty);
                match compose {
                    ComposeError::ComponentCount { expected, given } => {
                        takes(&format!("{made}(…)"), *expected as usize, *given as usize)
                    }
                    ComposeError::ComponentType { index } => {
                        let given = self.of(*components.get(*index as usize)?)?;
                        let wanted = match &self.module.types[ty].inner {
                            naga::TypeInner::Struct { members, .. } => {
                                let member = members.get(*index as usize)?;
                                format!(
                                    "its field `{}` is `{}`",
                                    member.name.as_deref().unwrap_or("?"),
                                    self.module.to_ctx().type_to_string(member.ty)
                                )
                            }
                            naga::TypeInner::Vector { scalar, .. } => {
                                format!("its components are `{}`", self.inner(&naga::TypeInner::Scalar(*scalar)))
                            }
                            naga::TypeInner::Matrix { rows, scalar, .. } => format!(
                                "its columns are `{}`",
                                self.inner(&naga::TypeInner::Vector { size: *rows, scalar: *scalar })
                            ),
                            naga::TypeInner::Array { base, .. } => {
                                format!("its elements are `{}`", self.module.to_ctx().type_to_string(*base))
                            }
                            _ => "that is not what it is made of".to_owned(),
                        };
                        format!("argument {} of `{made}(…)` is `{given}`, but {wanted}", index + 1)
                    }
                    ComposeError::Type(_) => format!("`{made}` cannot be made with a constructor"),
                }
            }
            _ => return None,
        })
    }

    /// The type of `expression`, resolved through the expressions before it (naga's own
    /// typifier stops at the first it cannot resolve, which may be the one in error).
    pub(super) fn resolution(&self, expression: Handle<Expression>) -> Option<TypeResolution> {
        let context =
            ResolveContext::with_locals(self.module, &self.function.local_variables, &self.function.arguments);
        let mut resolved: Vec<Option<TypeResolution>> = Vec::with_capacity(expression.index() + 1);
        for (handle, expr) in self.function.expressions.iter().take(expression.index() + 1) {
            let past = |h: Handle<Expression>| {
                resolved.get(h.index()).and_then(Option::as_ref).ok_or(naga::proc::ResolveError::InvalidScalar(h))
            };
            let resolution = context.resolve(expr, past).ok();
            debug_assert_eq!(handle.index(), resolved.len());
            resolved.push(resolution);
        }
        resolved.pop().flatten()
    }

    fn of(&self, expression: Handle<Expression>) -> Option<String> {
        Some(self.module.to_ctx().type_resolution_to_string(&self.resolution(expression)?))
    }

    /// The type a pointer expression points at (an assignment's left-hand side, a variable
    /// indexed), or the expression's own type when it is no pointer.
    fn value_of(&self, pointer: Handle<Expression>) -> Option<String> {
        let resolution = self.resolution(pointer)?;
        let inner = resolution.inner_with(&self.module.types);
        Some(match *inner {
            naga::TypeInner::Pointer { base, .. } => self.module.to_ctx().type_to_string(base),
            naga::TypeInner::ValuePointer { size, scalar, .. } => {
                let value = match size {
                    Some(size) => naga::TypeInner::Vector { size, scalar },
                    None => naga::TypeInner::Scalar(scalar),
                };
                self.inner(&value)
            }
            _ => self.inner(inner),
        })
    }

    fn inner(&self, inner: &naga::TypeInner) -> String {
        self.module.to_ctx().type_resolution_to_string(&TypeResolution::Value(inner.clone()))
    }
}

/// "`f` takes 2 arguments, but 1 is given".
fn takes(callee: &str, wanted: usize, given: usize) -> String {
    format!("`{callee}` takes {}, but {} given", plural(wanted, "argument", "arguments"), plural(given, "is", "are"))
}

fn binary(op: BinaryOperator) -> &'static str {
    use BinaryOperator as B;
    match op {
        B::Add => "+",
        B::Subtract => "-",
        B::Multiply => "*",
        B::Divide => "/",
        B::Modulo => "%",
        B::Equal => "==",
        B::NotEqual => "!=",
        B::Less => "<",
        B::LessEqual => "<=",
        B::Greater => ">",
        B::GreaterEqual => ">=",
        B::And => "&",
        B::ExclusiveOr => "^",
        B::InclusiveOr => "|",
        B::LogicalAnd => "&&",
        B::LogicalOr => "||",
        B::ShiftLeft => "<<",
        B::ShiftRight => ">>",
    }
}

fn unary(op: UnaryOperator) -> &'static str {
    match op {
        UnaryOperator::Negate => "-",
        UnaryOperator::LogicalNot => "!",
        UnaryOperator::BitwiseNot => "~",
    }
}

/// `text` without naga's arena indices: `[12]` and `Some([12])` dropped, with the space before
/// them; what it quotes in `"` (the user's own source) stays as it is.
fn without_indices(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Between quotes every other part, from the first; an unclosed quote runs to the end.
    for (i, part) in text.split('"').enumerate() {
        if i > 0 {
            out.push('"');
        }
        match i % 2 {
            0 => out.push_str(&indices_dropped(part)),
            _ => out.push_str(part),
        }
    }
    out
}

fn indices_dropped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(['[', 'S']) {
        let (before, from) = rest.split_at(start);
        let index_len = |s: &str| {
            let digits = s.strip_prefix('[')?.bytes().take_while(u8::is_ascii_digit).count();
            (digits > 0 && s.as_bytes().get(1 + digits) == Some(&b']')).then_some(digits + 2)
        };
        let skip = match from.strip_prefix("Some(") {
            Some(inner) => index_len(inner).filter(|&n| inner.as_bytes().get(n) == Some(&b')')).map(|n| n + 6),
            None => index_len(from),
        };
        match skip {
            Some(skip) => {
                out.push_str(before.strip_suffix(' ').unwrap_or(before));
                rest = &from[skip..];
            }
            None => {
                out.push_str(before);
                out.push_str(&from[..1]);
                rest = &from[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::without_indices;

    #[test]
    fn arena_indices_are_dropped() {
        assert_eq!(without_indices("Accessing with index [4] can't be done"), "Accessing with index can't be done");
        assert_eq!(without_indices("type Some([1]) of [22]!"), "type of!");
        assert_eq!(without_indices("Some things [x] and [] stay, So [9"), "Some things [x] and [] stay, So [9");
        // What naga quotes is the user's own source (the rest of it, after an unclosed `/*`).
        assert_eq!(
            without_indices("expected statement, found \"/* note\n    state[0] = a[1];\n}\n\""),
            "expected statement, found \"/* note\n    state[0] = a[1];\n}\n\""
        );
        assert_eq!(without_indices("type [1] of \"x[2]\" and [3]"), "type of \"x[2]\" and");
    }
}

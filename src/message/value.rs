//! Host values ↔ packed message bytes.
//!
//! Values keep their scalar types: decoding gives `I32`, `U32` and `F32` (and typed lists for
//! vectors and numeric arrays, flat in memory order, as a typed array holds them), and a typed
//! value must match its field's scalar. Untyped numbers (`Number`, `List`: what JavaScript has)
//! are checked against the field before packing: integers must be integral and in range; an
//! `f32` takes any number, rounded as a `Float32Array` stores it (NaN stays NaN, numbers past its
//! range become ±Infinity), since that is what WGSL answers and a typed array holds. Nested
//! structs are named fields; arrays of structs are lists of those.

use super::{FieldError, FieldType, MessageLayout, Scalar};
use crate::error::{plural, with_article};
use crate::platform::Float;

/// A host value for one field.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// A number of no particular scalar type (JavaScript's), checked against the field's.
    Number(f64),
    /// An `i32` field's value.
    I32(i32),
    /// A `u32` field's value.
    U32(u32),
    /// An `f32` field's value.
    F32(f32),
    /// A vector or an array of numbers of no particular scalar type, flat in memory order
    /// (`array<vec2<f32>, 2>` takes 4).
    List(Vec<f64>),
    /// A vector or numeric array of `i32`s, flat in memory order.
    I32s(Vec<i32>),
    /// A vector or numeric array of `u32`s, flat in memory order.
    U32s(Vec<u32>),
    /// A vector or numeric array of `f32`s, flat in memory order.
    F32s(Vec<f32>),
    /// A nested message: its fields by name.
    Struct(Vec<(String, Value)>),
    /// An array given element by element (required when the elements are structs).
    Array(Vec<Value>),
    /// A host value of no kind above (in JavaScript a string, boolean, `null`, `undefined`,
    /// BigInt, function or symbol), named by its type. Kept as a value so that encoding refuses
    /// it by its field path like every other mistake, through the same path (and counted the
    /// same way) as a number out of range.
    Unsupported(String),
}

macro_rules! value_from {
    ($($t:ty => $variant:ident),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant(v)
            }
        }
    )*};
}
value_from!(f64 => Number, i32 => I32, u32 => U32, f32 => F32, Vec<f64> => List, Vec<i32> => I32s, Vec<u32> => U32s,
    Vec<f32> => F32s);

impl MessageLayout {
    /// Packs named values into `out` (exactly `size()` bytes, padding zeroed). Missing, extra,
    /// mistyped and out-of-range fields are refused by their path (`bodies[2].mass`); `out` is
    /// only written once every field checks out.
    pub fn encode<'a, I>(&self, values: I, out: &mut [u8]) -> Result<(), FieldError>
    where
        I: IntoIterator<Item = (&'a str, &'a Value)>,
    {
        let mut packed = vec![0u8; self.size()];
        self.encode_in_place(values, &mut packed)?;
        out.copy_from_slice(&packed);
        Ok(())
    }

    /// [`encode`](Self::encode) straight into `out`, which must be zeroed: on an error it holds
    /// part of the message, for the caller to throw away (a queue slot it takes back).
    pub(crate) fn encode_in_place<'a, I>(&self, values: I, out: &mut [u8]) -> Result<(), FieldError>
    where
        I: IntoIterator<Item = (&'a str, &'a Value)>,
    {
        assert_eq!(out.len(), self.size(), "encode target must be one message long");
        self.encode_fields(values, 0, "", out)
    }

    fn encode_fields<'a, I>(&self, values: I, base: u32, path: &str, out: &mut [u8]) -> Result<(), FieldError>
    where
        I: IntoIterator<Item = (&'a str, &'a Value)>,
    {
        let mut given: Vec<Option<&Value>> = vec![None; self.fields.len()];
        for (name, value) in values {
            let index = self
                .fields
                .iter()
                .position(|f| f.name == name)
                .ok_or_else(|| FieldError::new(&join(path, name), format!("is not a field of {}", self.name)))?;
            if given[index].replace(value).is_some() {
                // Which of two values was meant is anyone's guess; taking either would hide a bug.
                return Err(FieldError::new(&join(path, name), "is given more than once"));
            }
        }
        for (field, value) in self.fields.iter().zip(given) {
            let path = join(path, &field.name);
            let value = value.ok_or_else(|| FieldError::new(&path, "is missing"))?;
            encode_value(&field.ty, value, base + field.offset, &path, out)?;
        }
        Ok(())
    }

    /// Unpacks one message into named values, in field order.
    ///
    /// # Panics
    /// When `bytes` is not exactly one message long ([`size`](Self::size) bytes).
    pub fn decode(&self, bytes: &[u8]) -> Vec<(String, Value)> {
        assert_eq!(bytes.len(), self.size(), "decode source must be one message long");
        self.decode_fields(bytes, 0)
    }

    fn decode_fields(&self, bytes: &[u8], base: u32) -> Vec<(String, Value)> {
        self.fields.iter().map(|f| (f.name.clone(), decode_value(&f.ty, bytes, base + f.offset))).collect()
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn encode_value(ty: &FieldType, value: &Value, offset: u32, path: &str, out: &mut [u8]) -> Result<(), FieldError> {
    match (ty, value) {
        (FieldType::Scalar(s), Value::Number(n)) => write_scalar(*s, *n, offset, path, out),
        (FieldType::Scalar(s), typed @ (Value::I32(_) | Value::U32(_) | Value::F32(_))) => {
            let (scalar, word) = typed_word(typed).expect("a typed scalar");
            if scalar != *s {
                return Err(FieldError::new(path, format!("is {ty}, got {}", value.kind())));
            }
            out[offset as usize..offset as usize + 4].copy_from_slice(&word.to_le_bytes());
            Ok(())
        }
        (FieldType::Vector(..) | FieldType::Array(..), typed @ (Value::I32s(_) | Value::U32s(_) | Value::F32s(_)))
            if ty.scalar().is_some() =>
        {
            let (scalar, words) = typed_words(typed).expect("a typed list");
            let count = ty.scalar_count() as usize;
            if Some(scalar) != ty.scalar() {
                return Err(FieldError::new(path, format!("is {ty}, got {}", value.kind())));
            }
            if words.len() != count {
                let expects = plural(count, "value", "values");
                return Err(FieldError::new(path, format!("expects {expects} ({ty}), got {}", words.len())));
            }
            let mut numbers = words.into_iter();
            write_words(ty, &mut numbers, offset, out);
            Ok(())
        }
        (FieldType::Struct(layout), Value::Struct(fields)) => {
            layout.encode_fields(fields.iter().map(|(n, v)| (n.as_str(), v)), offset, path, out)
        }
        (FieldType::Vector(..) | FieldType::Array(..), Value::List(numbers)) if ty.scalar().is_some() => {
            let count = ty.scalar_count() as usize;
            if numbers.len() != count {
                let expects = plural(count, "value", "values");
                return Err(FieldError::new(path, format!("expects {expects} ({ty}), got {}", numbers.len())));
            }
            let mut numbers = numbers.iter().copied().enumerate();
            write_flat(ty, &mut numbers, offset, path, out)
        }
        (FieldType::Array(element, len), Value::Array(items)) => {
            if items.len() != *len as usize {
                let expects = plural(*len as usize, "element", "elements");
                return Err(FieldError::new(path, format!("expects {expects} ({ty}), got {}", items.len())));
            }
            for (i, item) in items.iter().enumerate() {
                encode_value(element, item, offset + i as u32 * element.stride(), &format!("{path}[{i}]"), out)?;
            }
            Ok(())
        }
        (FieldType::Vector(s, n), Value::Array(items)) => {
            // [x, y, z] given element by element: each must be a number, and each is written as
            // it would be in a field of its own, so a typed one must be the vector's scalar and
            // keeps its bits (through an f64 a signalling NaN would come out quiet).
            if !items.iter().all(|item| item.as_number().is_some()) {
                return Err(FieldError::new(
                    path,
                    format!("expects {} ({ty})", plural(*n as usize, "number", "numbers")),
                ));
            }
            if items.len() != *n as usize {
                let expects = plural(*n as usize, "value", "values");
                return Err(FieldError::new(path, format!("expects {expects} ({ty}), got {}", items.len())));
            }
            let component = FieldType::Scalar(*s);
            for (i, item) in items.iter().enumerate() {
                encode_value(&component, item, offset + 4 * i as u32, &format!("{path}[{i}]"), out)?;
            }
            Ok(())
        }
        _ => Err(FieldError::new(path, format!("expects {}, got {}", describe(ty), value.kind()))),
    }
}

/// Writes a numeric type from a flat list in memory order, numbered by their place in the list,
/// which a refused number's path names (`a[40]`), as the list's own index.
fn write_flat(
    ty: &FieldType,
    numbers: &mut impl Iterator<Item = (usize, f64)>,
    offset: u32,
    path: &str,
    out: &mut [u8],
) -> Result<(), FieldError> {
    let mut write = |scalar: Scalar, at: u32, out: &mut [u8]| {
        let (i, n) = numbers.next().expect("count checked");
        write_scalar(scalar, n, at, path, out).map_err(|e| FieldError::new(&format!("{path}[{i}]"), e.problem))
    };
    match ty {
        FieldType::Scalar(s) => write(*s, offset, out),
        FieldType::Vector(s, n) => (0..*n).try_for_each(|i| write(*s, offset + 4 * i, out)),
        FieldType::Array(element, n) => {
            (0..*n).try_for_each(|i| write_flat(element, numbers, offset + i * element.stride(), path, out))
        }
        FieldType::Struct(_) => unreachable!("flat lists hold numeric types only"),
    }
}

/// Writes a numeric type from 32-bit words in memory order (already of its scalar).
fn write_words(ty: &FieldType, words: &mut impl Iterator<Item = u32>, offset: u32, out: &mut [u8]) {
    let mut put = |at: u32, word: u32| out[at as usize..at as usize + 4].copy_from_slice(&word.to_le_bytes());
    match ty {
        FieldType::Scalar(_) => put(offset, words.next().expect("count checked")),
        FieldType::Vector(_, n) => (0..*n).for_each(|i| put(offset + 4 * i, words.next().expect("count checked"))),
        FieldType::Array(element, n) => {
            (0..*n).for_each(|i| write_words(element, words, offset + i * element.stride(), out))
        }
        FieldType::Struct(_) => unreachable!("typed lists hold numeric types only"),
    }
}

/// A typed scalar's type and bits.
fn typed_word(value: &Value) -> Option<(Scalar, u32)> {
    match value {
        Value::I32(v) => Some((Scalar::I32, *v as u32)),
        Value::U32(v) => Some((Scalar::U32, *v)),
        Value::F32(v) => Some((Scalar::F32, v.to_bits())),
        _ => None,
    }
}

/// A typed list's scalar type and bits.
fn typed_words(value: &Value) -> Option<(Scalar, Vec<u32>)> {
    match value {
        Value::I32s(v) => Some((Scalar::I32, v.iter().map(|&x| x as u32).collect())),
        Value::U32s(v) => Some((Scalar::U32, v.clone())),
        Value::F32s(v) => Some((Scalar::F32, v.iter().map(|x| x.to_bits()).collect())),
        _ => None,
    }
}

fn write_scalar(scalar: Scalar, n: f64, offset: u32, path: &str, out: &mut [u8]) -> Result<(), FieldError> {
    let word = scalar_bits(path, scalar, n)?;
    out[offset as usize..offset as usize + 4].copy_from_slice(&word.to_le_bytes());
    Ok(())
}

fn decode_value(ty: &FieldType, bytes: &[u8], offset: u32) -> Value {
    match ty {
        FieldType::Scalar(s) => {
            let word = read_word(bytes, offset);
            match s {
                Scalar::I32 => Value::I32(word as i32),
                Scalar::U32 => Value::U32(word),
                Scalar::F32 => Value::F32(f32::from_bits(word)),
            }
        }
        FieldType::Struct(layout) => Value::Struct(layout.decode_fields(bytes, offset)),
        FieldType::Array(element, n) if ty.scalar().is_none() => {
            Value::Array((0..*n).map(|i| decode_value(element, bytes, offset + i * element.stride())).collect())
        }
        _ => {
            let mut words = Vec::with_capacity(ty.scalar_count() as usize);
            read_words(ty, bytes, offset, &mut words);
            match ty.scalar().expect("numeric") {
                Scalar::I32 => Value::I32s(words.into_iter().map(|w| w as i32).collect()),
                Scalar::U32 => Value::U32s(words),
                Scalar::F32 => Value::F32s(words.into_iter().map(f32::from_bits).collect()),
            }
        }
    }
}

fn read_words(ty: &FieldType, bytes: &[u8], offset: u32, out: &mut Vec<u32>) {
    match ty {
        FieldType::Scalar(_) => out.push(read_word(bytes, offset)),
        FieldType::Vector(_, n) => out.extend((0..*n).map(|i| read_word(bytes, offset + 4 * i))),
        FieldType::Array(element, n) => {
            (0..*n).for_each(|i| read_words(element, bytes, offset + i * element.stride(), out))
        }
        FieldType::Struct(_) => unreachable!("flat lists hold numeric types only"),
    }
}

fn read_word(bytes: &[u8], offset: u32) -> u32 {
    let at = offset as usize;
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn describe(ty: &FieldType) -> String {
    match ty {
        FieldType::Scalar(_) => format!("a number ({ty})"),
        FieldType::Struct(layout) => format!("an object with the fields of {}", layout.name()),
        FieldType::Array(_, n) if ty.scalar().is_none() => {
            format!("a list of {} ({ty})", plural(*n as usize, "element", "elements"))
        }
        _ => format!("{} ({ty})", plural(ty.scalar_count() as usize, "number", "numbers")),
    }
}

impl Value {
    /// What kind of value this is, for error messages: `number`, `array`, `object`, or the host
    /// type an unsupported value was.
    pub fn kind_name(&self) -> &str {
        match self {
            Value::Number(_) | Value::I32(_) | Value::U32(_) | Value::F32(_) => "number",
            Value::List(_) | Value::I32s(_) | Value::U32s(_) | Value::F32s(_) | Value::Array(_) => "array",
            Value::Struct(_) => "object",
            Value::Unsupported(name) => name,
        }
    }

    /// The number of a scalar field, whatever its type.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::I32(n) => Some(*n as f64),
            Value::U32(n) => Some(*n as f64),
            Value::F32(n) => Some(*n as f64),
            _ => None,
        }
    }

    /// What the value is, with its article, as refusals say it (`a string`, `null`).
    pub(crate) fn kind(&self) -> String {
        match self {
            Value::Number(_) => "a number".into(),
            Value::I32(_) => "an i32".into(),
            Value::U32(_) => "a u32".into(),
            Value::F32(_) => "an f32".into(),
            Value::List(_) => "a list of numbers".into(),
            Value::I32s(_) => "a list of i32s".into(),
            Value::U32s(_) => "a list of u32s".into(),
            Value::F32s(_) => "a list of f32s".into(),
            Value::Struct(_) => "an object".into(),
            Value::Array(_) => "a list".into(),
            // JavaScript's `null` and `undefined` as they are, and "...s nested more than N deep".
            Value::Unsupported(type_name) if type_name == "null" || type_name == "undefined" => type_name.clone(),
            // (Bytes compared, not `str::contains`: its substring search is linked for nothing else.)
            Value::Unsupported(type_name) if type_name.as_bytes().windows(8).any(|w| w == b" nested ") => {
                type_name.clone()
            }
            Value::Unsupported(type_name) => with_article(type_name),
        }
    }
}

/// A number in an error text: in digits where that is short, with an exponent beyond (`1e300`,
/// `1.5e-300`, not 301 digits), and `inf` and `NaN` as Rust writes them.
fn shown_number(n: f64) -> String {
    match n.abs() {
        a if a == 0.0 || (1e-4..1e16).contains(&a) => Float(n).to_string(),
        _ => format!("{:?}", Float(n)),
    }
}

/// Converts one host number to the 32-bit pattern of `scalar`, refusing what would not survive.
fn scalar_bits(field: &str, scalar: Scalar, n: f64) -> Result<u32, FieldError> {
    match scalar {
        // As a Float32Array stores it. The device's arithmetic gives NaN and ±Infinity too, so
        // an answer received can be sent on, and a host handler answers as the WGSL one would.
        Scalar::F32 => Ok((n as f32).to_bits()),
        Scalar::I32 | Scalar::U32 => {
            if !n.is_finite() || n.fract() != 0.0 {
                return Err(FieldError::new(field, format!("expects an integer ({scalar}), got {}", shown_number(n))));
            }
            let (min, max) = match scalar {
                Scalar::I32 => (i32::MIN as f64, i32::MAX as f64),
                _ => (0.0, u32::MAX as f64),
            };
            if n < min || n > max {
                return Err(FieldError::new(field, format!("value {} is out of range for {scalar}", shown_number(n))));
            }
            Ok(if scalar == Scalar::I32 { n as i32 as u32 } else { n as u32 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(fields: &[(&str, &str)]) -> MessageLayout {
        let fields: Vec<(&str, FieldType)> = fields
            .iter()
            .map(|(n, t)| (*n, FieldType::parse_with(t, &|_| None).unwrap_or_else(|| panic!("type {t}"))))
            .collect();
        MessageLayout::new("M", &fields).unwrap()
    }

    fn encode(m: &MessageLayout, values: &[(String, Value)]) -> Result<Vec<u8>, FieldError> {
        let mut bytes = vec![0u8; m.size()];
        m.encode(values.iter().map(|(n, v)| (n.as_str(), v)), &mut bytes)?;
        Ok(bytes)
    }

    fn named(pairs: Vec<(&str, Value)>) -> Vec<(String, Value)> {
        pairs.into_iter().map(|(n, v)| (n.to_owned(), v)).collect()
    }

    #[test]
    fn doubler_request_is_one_i32() {
        let req = layout(&[("value", "i32")]);
        assert_eq!(req.size(), 4);
        let bytes = encode(&req, &named(vec![("value", 21.into())])).unwrap();
        assert_eq!(bytes, 21i32.to_le_bytes());
        assert_eq!(req.decode(&bytes), named(vec![("value", Value::I32(21))]));
        assert_eq!(encode(&req, &named(vec![("value", (-7).into())])).unwrap(), (-7i32).to_le_bytes());
    }

    #[test]
    fn round_trip_every_type() {
        let m = layout(&[
            ("i", "i32"),
            ("u", "u32"),
            ("f", "f32"),
            ("v", "vec4<f32>"),
            ("p", "vec3<i32>"),
            ("a", "array<i32, 3>"),
            ("grid", "array<array<u32, 2>, 2>"),
        ]);
        let values = named(vec![
            ("i", Value::Number(-5.0)),
            ("u", Value::Number(4_000_000_000.0)),
            ("f", Value::Number(1.5)),
            ("v", Value::List(vec![1.0, 2.0, 3.0, 4.0])),
            ("p", Value::List(vec![-1.0, 0.0, 1.0])),
            ("a", Value::List(vec![7.0, -8.0, 9.0])),
            ("grid", Value::List(vec![1.0, 2.0, 3.0, 4.0])),
        ]);
        // Untyped numbers go in; decoding gives each field its own scalar type back.
        let decoded = named(vec![
            ("i", Value::I32(-5)),
            ("u", Value::U32(4_000_000_000)),
            ("f", Value::F32(1.5)),
            ("v", Value::F32s(vec![1.0, 2.0, 3.0, 4.0])),
            ("p", Value::I32s(vec![-1, 0, 1])),
            ("a", Value::I32s(vec![7, -8, 9])),
            ("grid", Value::U32s(vec![1, 2, 3, 4])),
        ]);
        let bytes = encode(&m, &values).unwrap();
        assert_eq!(m.decode(&bytes), decoded);
        // Typed values round-trip as they are.
        assert_eq!(encode(&m, &decoded).unwrap(), bytes);
    }

    #[test]
    fn typed_values_must_match_their_field() {
        let m = layout(&[("i", "i32"), ("v", "vec2<f32>")]);
        let with = |i: Value, v: Value| named(vec![("i", i), ("v", v)]);
        assert!(encode(&m, &with(Value::I32(1), Value::F32s(vec![1.0, 2.0]))).is_ok());
        let e = encode(&m, &with(Value::F32(1.0), Value::F32s(vec![1.0, 2.0]))).unwrap_err();
        assert_eq!((e.field.as_str(), e.problem.as_str()), ("i", "is i32, got an f32"));
        let e = encode(&m, &with(Value::I32(1), Value::I32s(vec![1, 2]))).unwrap_err();
        assert_eq!((e.field.as_str(), e.problem.as_str()), ("v", "is vec2<f32>, got a list of i32s"));
        let e = encode(&m, &with(Value::I32(1), Value::F32s(vec![1.0]))).unwrap_err();
        assert!(e.problem.contains("expects 2 values"), "{e}");
    }

    #[test]
    fn nested_structs_round_trip_and_zero_padding() {
        let inner = MessageLayout::new(
            "Body",
            &[("position", FieldType::parse_with("vec3<f32>", &|_| None).unwrap()), ("mass", FieldType::F32)],
        )
        .unwrap();
        let outer = MessageLayout::new(
            "System",
            &[
                ("count", FieldType::U32),
                ("sun", FieldType::message(&inner)),
                ("planets", FieldType::array(FieldType::message(&inner), 2)),
            ],
        )
        .unwrap();
        let body = |x: f64, m: f64| {
            Value::Struct(named(vec![("position", Value::List(vec![x, 0.0, 0.0])), ("mass", Value::Number(m))]))
        };
        let values = named(vec![
            ("count", Value::Number(3.0)),
            ("sun", body(0.0, 100.0)),
            ("planets", Value::Array(vec![body(1.0, 1.0), body(2.0, 0.5)])),
        ]);
        let bytes = encode(&outer, &values).unwrap();
        assert_eq!(outer.size(), 64);
        assert_eq!(&bytes[4..16], &[0u8; 12], "padding before the nested struct is zero");
        assert_eq!(f32::from_le_bytes(bytes[32 + 16 + 12..64].try_into().unwrap()), 0.5);
        let typed_body = |x: f32, m: f32| {
            Value::Struct(named(vec![("position", Value::F32s(vec![x, 0.0, 0.0])), ("mass", Value::F32(m))]))
        };
        let decoded = named(vec![
            ("count", Value::U32(3)),
            ("sun", typed_body(0.0, 100.0)),
            ("planets", Value::Array(vec![typed_body(1.0, 1.0), typed_body(2.0, 0.5)])),
        ]);
        assert_eq!(outer.decode(&bytes), decoded);

        let mut bad = values.clone();
        bad[2].1 =
            Value::Array(vec![body(1.0, 1.0), Value::Struct(named(vec![("position", Value::List(vec![0.0; 3]))]))]);
        assert_eq!(encode(&outer, &bad).unwrap_err().field, "planets[1].mass");
    }

    #[test]
    fn malformed_messages_name_the_field() {
        let m = layout(&[("value", "i32"), ("scale", "f32")]);
        let mut bytes = vec![0xAAu8; m.size()];
        let check = |vals: Vec<(&str, Value)>, field: &str, bytes: &mut Vec<u8>| {
            let err = m.encode(vals.iter().map(|(n, v)| (*n, v)), bytes).unwrap_err();
            assert_eq!(err.field, field, "{err:?}");
        };
        check(vec![("value", 1.into())], "scale", &mut bytes); // missing
        check(vec![("value", 1.into()), ("scale", 1.0f64.into()), ("extra", 1.into())], "extra", &mut bytes);
        check(vec![("value", 1.5f64.into()), ("scale", 1.0f64.into())], "value", &mut bytes); // not integral
        check(vec![("value", 3e9f64.into()), ("scale", 1.0f64.into())], "value", &mut bytes); // out of range
        check(vec![("value", f64::NAN.into()), ("scale", 1.0f64.into())], "value", &mut bytes);
        check(vec![("value", Value::List(vec![1.0])), ("scale", 1.0f64.into())], "value", &mut bytes);
        check(vec![("value", 1.into()), ("scale", Value::Struct(vec![]))], "scale", &mut bytes);
        check(vec![("value", Value::Unsupported("string".into())), ("scale", 1.0f64.into())], "value", &mut bytes);
        check(vec![("value", 1.into()), ("scale", 1.0f64.into()), ("value", 2.into())], "value", &mut bytes); // twice
        assert!(bytes.iter().all(|b| *b == 0xAA), "a refused message must not be written");
    }

    /// A number refused inside a flat list is named by its place in the list, and numbers far
    /// from 1 are printed with an exponent.
    #[test]
    fn a_refused_number_in_a_list_is_named_by_its_index() {
        let m = layout(&[("a", "array<vec2<i32>, 4>")]);
        let mut bytes = vec![0u8; m.size()];
        let mut numbers = vec![1.0; 8];
        numbers[5] = 1.5;
        let err = m.encode([("a", &Value::List(numbers.clone()))], &mut bytes).unwrap_err();
        assert_eq!(err.to_string(), "'a[5]' expects an integer (i32), got 1.5");
        numbers[5] = 1e300;
        let err = m.encode([("a", &Value::List(numbers.clone()))], &mut bytes).unwrap_err();
        assert_eq!(err.to_string(), "'a[5]' value 1e300 is out of range for i32");
        numbers[5] = f64::INFINITY;
        let err = m.encode([("a", &Value::List(numbers))], &mut bytes).unwrap_err();
        assert_eq!(err.to_string(), "'a[5]' expects an integer (i32), got inf");
    }

    /// A vector given element by element takes typed scalars as a typed list does: of its own
    /// scalar only, bit for bit (a signalling NaN stays one), and another scalar is refused by
    /// its index, as it is in a field of its own or a numeric array given element by element.
    #[test]
    fn typed_scalars_in_a_vector_keep_their_type_and_bits() {
        let m = layout(&[("v", "vec2<f32>"), ("w", "vec3<i32>")]);
        let snan = f32::from_bits(0x7f80_0001);
        let given = |v: Vec<Value>, w: Vec<Value>| named(vec![("v", Value::Array(v)), ("w", Value::Array(w))]);
        let one_by_one =
            given(vec![Value::F32(snan), Value::F32(-0.0)], vec![Value::I32(i32::MIN), 2.0.into(), (-1).into()]);
        let typed = named(vec![("v", Value::F32s(vec![snan, -0.0])), ("w", Value::I32s(vec![i32::MIN, 2, -1]))]);
        assert_eq!(encode(&m, &one_by_one).unwrap(), encode(&m, &typed).unwrap());
        let e = encode(&m, &given(vec![Value::F32(1.0), Value::I32(2)], vec![Value::I32(1); 3])).unwrap_err();
        assert_eq!(e.to_string(), "'v[1]' is f32, got an i32");
        let e = encode(&m, &given(vec![Value::F32(1.0); 2], vec![Value::I32(1), Value::F32(2.0), Value::I32(3)]))
            .unwrap_err();
        assert_eq!(e.to_string(), "'w[1]' is i32, got an f32");
        let e = encode(&m, &given(vec![Value::F32(1.0); 2], vec![Value::I32(1), Value::U32(2), Value::I32(3)]))
            .unwrap_err();
        assert_eq!(e.to_string(), "'w[1]' is i32, got a u32");
        // Untyped numbers are checked as before, by their index.
        let e = encode(&m, &given(vec![1.0.into(); 2], vec![1.0.into(), 2.5.into(), 3.0.into()])).unwrap_err();
        assert_eq!(e.to_string(), "'w[1]' expects an integer (i32), got 2.5");
        let e = encode(&m, &given(vec![1.0.into(); 3], vec![1.0.into(); 3])).unwrap_err();
        assert_eq!(e.to_string(), "'v' expects 2 values (vec2<f32>), got 3");
    }

    /// An f32 takes any number as a `Float32Array` stores it: NaN, ±Infinity, and numbers past
    /// its range as ±Infinity.
    #[test]
    fn f32_fields_store_numbers_as_a_float32_array_does() {
        let m = layout(&[("scale", "f32")]);
        let mut bytes = vec![0u8; m.size()];
        for (given, stored) in [(f64::NAN, f32::NAN), (1e39, f32::INFINITY), (-1e39, f32::NEG_INFINITY), (0.1, 0.1f32)]
        {
            m.encode([("scale", &Value::Number(given))], &mut bytes).unwrap();
            let read = f32::from_le_bytes(bytes[..4].try_into().unwrap());
            assert_eq!(read.to_bits(), stored.to_bits(), "{given} stored as {read}");
        }
    }
}

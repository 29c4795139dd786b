//! Message layouts: field types, their WGSL byte layout, the WGSL struct text, and packing of
//! host values into that layout.
//!
//! The layout follows WGSL's storage-buffer rules (alignment and size per type, struct padding,
//! array stride = element size rounded up to its alignment), so a packed message can be copied
//! straight into a GPU ring slot.

use std::fmt;

/// The scalar underneath every field type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    I32,
    U32,
    F32,
}

/// A field's WGSL type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    Scalar(Scalar),
    /// `vecN<T>` with N in 2..=4.
    Vector(Scalar, u32),
    /// `array<T, N>` of scalars or vectors.
    Array(Box<FieldType>, u32),
}

impl FieldType {
    pub const I32: FieldType = FieldType::Scalar(Scalar::I32);
    pub const U32: FieldType = FieldType::Scalar(Scalar::U32);
    pub const F32: FieldType = FieldType::Scalar(Scalar::F32);

    /// Parses the WGSL spelling: `i32`, `vec3<f32>`, `array<f32, 16>`.
    pub fn parse(text: &str) -> Option<FieldType> {
        let text = text.trim();
        let scalar = |s: &str| match s.trim() {
            "i32" => Some(Scalar::I32),
            "u32" => Some(Scalar::U32),
            "f32" => Some(Scalar::F32),
            _ => None,
        };
        if let Some(s) = scalar(text) {
            return Some(FieldType::Scalar(s));
        }
        let generic = |prefix: &str| text.strip_prefix(prefix)?.trim_start().strip_prefix('<')?.strip_suffix('>');
        for n in 2..=4 {
            if let Some(inner) = generic(&format!("vec{n}")) {
                return scalar(inner).map(|s| FieldType::Vector(s, n));
            }
        }
        let inner = generic("array")?;
        let (elem, len) = inner.rsplit_once(',')?;
        let elem = FieldType::parse(elem)?;
        let len: u32 = len.trim().trim_end_matches('u').parse().ok()?;
        if matches!(elem, FieldType::Array(..)) || len == 0 {
            return None;
        }
        Some(FieldType::Array(Box::new(elem), len))
    }

    /// WGSL alignment in bytes.
    pub fn align(&self) -> u32 {
        match self {
            FieldType::Scalar(_) => 4,
            FieldType::Vector(_, 2) => 8,
            FieldType::Vector(..) => 16,
            FieldType::Array(elem, _) => elem.align(),
        }
    }

    /// WGSL size in bytes (vec3 is 12, not 16; its alignment pads what follows).
    pub fn size(&self) -> u32 {
        match self {
            FieldType::Scalar(_) => 4,
            FieldType::Vector(_, n) => 4 * n,
            FieldType::Array(elem, n) => n * elem.stride(),
        }
    }

    /// Distance between consecutive elements when this type is an array element.
    pub fn stride(&self) -> u32 {
        round_up(self.size(), self.align())
    }

    /// How many scalars a host value for this field carries.
    pub fn scalar_count(&self) -> u32 {
        match self {
            FieldType::Scalar(_) => 1,
            FieldType::Vector(_, n) => *n,
            FieldType::Array(elem, n) => n * elem.scalar_count(),
        }
    }

    pub fn scalar(&self) -> Scalar {
        match self {
            FieldType::Scalar(s) | FieldType::Vector(s, _) => *s,
            FieldType::Array(elem, _) => elem.scalar(),
        }
    }

    /// Byte offsets of every scalar relative to the field start, in host order.
    fn scalar_offsets(&self, base: u32, out: &mut Vec<u32>) {
        match self {
            FieldType::Scalar(_) => out.push(base),
            FieldType::Vector(_, n) => out.extend((0..*n).map(|i| base + 4 * i)),
            FieldType::Array(elem, n) => {
                for i in 0..*n {
                    elem.scalar_offsets(base + i * elem.stride(), out);
                }
            }
        }
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scalar::I32 => "i32",
            Scalar::U32 => "u32",
            Scalar::F32 => "f32",
        })
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldType::Scalar(s) => write!(f, "{s}"),
            FieldType::Vector(s, n) => write!(f, "vec{n}<{s}>"),
            FieldType::Array(elem, n) => write!(f, "array<{elem}, {n}>"),
        }
    }
}

/// One named field at its byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub offset: u32,
}

/// A message type: a WGSL struct with a fixed byte layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageLayout {
    name: String,
    fields: Vec<Field>,
    size: u32,
    align: u32,
    /// Offsets of every scalar in field order, so packing is one pass with no recursion.
    scalar_offsets: Vec<u32>,
}

/// A host value for one field: a number for scalars, a list for vectors and arrays.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    List(Vec<f64>),
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Number(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Number(v as f64)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Number(v as f64)
    }
}
impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::Number(v as f64)
    }
}
impl From<Vec<f64>> for Value {
    fn from(v: Vec<f64>) -> Self {
        Value::List(v)
    }
}

/// Why a message did not fit its layout; the runtime adds the kernel id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl FieldError {
    fn new(field: &str, problem: impl Into<String>) -> Self {
        FieldError { field: field.to_owned(), problem: problem.into() }
    }
}

fn round_up(value: u32, align: u32) -> u32 {
    value.div_ceil(align) * align
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

impl MessageLayout {
    /// Lays out `fields` in order by WGSL's rules. Names must be WGSL identifiers and unique.
    pub fn new(name: &str, fields: &[(&str, FieldType)]) -> Result<Self, FieldError> {
        if !is_identifier(name) {
            return Err(FieldError::new(name, "is not a valid WGSL struct name"));
        }
        if fields.is_empty() {
            return Err(FieldError::new(name, "has no fields (WGSL structs need at least one)"));
        }
        let mut laid = Vec::with_capacity(fields.len());
        let mut offset = 0;
        let mut align = 4;
        let mut scalar_offsets = Vec::new();
        for (field_name, ty) in fields {
            if !is_identifier(field_name) {
                return Err(FieldError::new(field_name, "is not a valid WGSL identifier"));
            }
            if laid.iter().any(|f: &Field| f.name == *field_name) {
                return Err(FieldError::new(field_name, "appears twice"));
            }
            offset = round_up(offset, ty.align());
            align = align.max(ty.align());
            ty.scalar_offsets(offset, &mut scalar_offsets);
            laid.push(Field { name: (*field_name).to_owned(), ty: ty.clone(), offset });
            offset += ty.size();
        }
        Ok(MessageLayout { name: name.to_owned(), fields: laid, size: round_up(offset, align), align, scalar_offsets })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }
    /// Bytes per message, which is also the ring slot stride.
    pub fn size(&self) -> usize {
        self.size as usize
    }
    pub fn align(&self) -> u32 {
        self.align
    }

    /// The WGSL struct declaration for this layout.
    pub fn wgsl_struct(&self) -> String {
        let mut text = format!("struct {} {{\n", self.name);
        for field in &self.fields {
            text.push_str(&format!("    {}: {},\n", field.name, field.ty));
        }
        text.push_str("}\n");
        text
    }

    /// Packs named values into `out` (exactly `size()` bytes). Missing, extra, mistyped and
    /// out-of-range fields are refused by name; `out` is only written once all fields check out.
    pub fn encode<'a, I>(&self, values: I, out: &mut [u8]) -> Result<(), FieldError>
    where
        I: IntoIterator<Item = (&'a str, &'a Value)>,
    {
        assert_eq!(out.len(), self.size(), "encode target must be one message long");
        let mut given: Vec<Option<&Value>> = vec![None; self.fields.len()];
        for (name, value) in values {
            let index = self
                .fields
                .iter()
                .position(|f| f.name == name)
                .ok_or_else(|| FieldError::new(name, format!("is not a field of {}", self.name)))?;
            given[index] = Some(value);
        }
        let mut words: Vec<u32> = Vec::with_capacity(self.scalar_offsets.len());
        for (field, value) in self.fields.iter().zip(given) {
            let value = value.ok_or_else(|| FieldError::new(&field.name, "is missing"))?;
            let count = field.ty.scalar_count() as usize;
            let numbers: &[f64] = match (value, &field.ty) {
                (Value::Number(n), FieldType::Scalar(_)) => std::slice::from_ref(n),
                (Value::List(list), FieldType::Vector(..) | FieldType::Array(..)) => list,
                (Value::Number(_), _) => {
                    return Err(FieldError::new(
                        &field.name,
                        format!("expects {} values ({}), got a number", count, field.ty),
                    ))
                }
                (Value::List(_), _) => {
                    return Err(FieldError::new(&field.name, format!("expects a number ({}), got a list", field.ty)))
                }
            };
            if numbers.len() != count {
                return Err(FieldError::new(
                    &field.name,
                    format!("expects {} values ({}), got {}", count, field.ty, numbers.len()),
                ));
            }
            for &n in numbers {
                words.push(scalar_bits(&field.name, field.ty.scalar(), n)?);
            }
        }
        out.fill(0);
        for (offset, word) in self.scalar_offsets.iter().zip(words) {
            out[*offset as usize..*offset as usize + 4].copy_from_slice(&word.to_le_bytes());
        }
        Ok(())
    }

    /// Unpacks one message into named values, in field order.
    pub fn decode(&self, bytes: &[u8]) -> Vec<(String, Value)> {
        assert_eq!(bytes.len(), self.size(), "decode source must be one message long");
        let mut scalars = self.scalar_offsets.iter();
        self.fields
            .iter()
            .map(|field| {
                let scalar = field.ty.scalar();
                let mut read = || {
                    let offset = *scalars.next().expect("scalar offsets cover every field") as usize;
                    let word = u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"));
                    match scalar {
                        Scalar::I32 => word as i32 as f64,
                        Scalar::U32 => word as f64,
                        Scalar::F32 => f32::from_bits(word) as f64,
                    }
                };
                let value = match field.ty {
                    FieldType::Scalar(_) => Value::Number(read()),
                    _ => Value::List((0..field.ty.scalar_count()).map(|_| read()).collect()),
                };
                (field.name.clone(), value)
            })
            .collect()
    }
}

/// Converts one host number to the 32-bit pattern of `scalar`, refusing what would not survive.
fn scalar_bits(field: &str, scalar: Scalar, n: f64) -> Result<u32, FieldError> {
    match scalar {
        Scalar::F32 => {
            if n.is_nan() || n.is_finite() && (n as f32).is_infinite() {
                // NaN is refused because it is almost always a bug upstream; ±Infinity passes.
                return Err(FieldError::new(field, format!("is {n}, not a representable f32")));
            }
            Ok((n as f32).to_bits())
        }
        Scalar::I32 | Scalar::U32 => {
            if !n.is_finite() || n.fract() != 0.0 {
                return Err(FieldError::new(field, format!("expects an integer ({scalar}), got {n}")));
            }
            let (min, max) = match scalar {
                Scalar::I32 => (i32::MIN as f64, i32::MAX as f64),
                _ => (0.0, u32::MAX as f64),
            };
            if n < min || n > max {
                return Err(FieldError::new(field, format!("value {n} is out of range for {scalar}")));
            }
            Ok(if scalar == Scalar::I32 { n as i32 as u32 } else { n as u32 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(fields: &[(&str, &str)]) -> MessageLayout {
        let fields: Vec<(&str, FieldType)> =
            fields.iter().map(|(n, t)| (*n, FieldType::parse(t).unwrap_or_else(|| panic!("type {t}")))).collect();
        MessageLayout::new("M", &fields).unwrap()
    }

    #[test]
    fn doubler_request_is_one_i32() {
        let req = layout(&[("value", "i32")]);
        assert_eq!(req.size(), 4);
        assert_eq!(req.wgsl_struct(), "struct M {\n    value: i32,\n}\n");
        let mut bytes = [0u8; 4];
        req.encode([("value", &Value::from(21))], &mut bytes).unwrap();
        assert_eq!(bytes, 21i32.to_le_bytes());
        assert_eq!(req.decode(&bytes), vec![("value".to_owned(), Value::Number(21.0))]);
        req.encode([("value", &Value::from(-7))], &mut bytes).unwrap();
        assert_eq!(bytes, (-7i32).to_le_bytes());
    }

    #[test]
    fn wgsl_alignment_rules() {
        // vec3 aligns to 16 but is 12 long, so a following f32 fits in its tail.
        let m = layout(&[
            ("a", "f32"),
            ("p", "vec3<f32>"),
            ("w", "f32"),
            ("v2", "vec2<u32>"),
            ("arr", "array<vec3<f32>, 2>"),
        ]);
        let offsets: Vec<u32> = m.fields().iter().map(|f| f.offset).collect();
        assert_eq!(offsets, vec![0, 16, 28, 32, 48]);
        assert_eq!(FieldType::parse("array<vec3<f32>, 2>").unwrap().size(), 32);
        assert_eq!(m.size(), 80);
        assert_eq!(m.align(), 16);
    }

    #[test]
    fn round_trip_every_type() {
        let m = layout(&[("i", "i32"), ("u", "u32"), ("f", "f32"), ("v", "vec4<f32>"), ("a", "array<i32, 3>")]);
        let values = vec![
            ("i".to_owned(), Value::Number(-5.0)),
            ("u".to_owned(), Value::Number(4_000_000_000.0)),
            ("f".to_owned(), Value::Number(1.5)),
            ("v".to_owned(), Value::List(vec![1.0, 2.0, 3.0, 4.0])),
            ("a".to_owned(), Value::List(vec![7.0, -8.0, 9.0])),
        ];
        let mut bytes = vec![0u8; m.size()];
        m.encode(values.iter().map(|(n, v)| (n.as_str(), v)), &mut bytes).unwrap();
        assert_eq!(m.decode(&bytes), values);
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
        check(vec![("value", 1.into()), ("scale", f64::NAN.into())], "scale", &mut bytes);
        assert!(bytes.iter().all(|b| *b == 0xAA), "a refused message must not be written");
    }

    #[test]
    fn parse_rejects_unknown_types() {
        for bad in ["i64", "vec5<f32>", "array<f32>", "array<f32, 0>", "bool", "vec3<bool>"] {
            assert_eq!(FieldType::parse(bad), None, "{bad}");
        }
        assert!(MessageLayout::new("1bad", &[("a", FieldType::I32)]).is_err());
        assert!(MessageLayout::new("M", &[("a", FieldType::I32), ("a", FieldType::U32)]).is_err());
    }
}

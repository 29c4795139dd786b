//! Results to JavaScript: a serde `Serializer` that builds the same values serde-wasm-bindgen
//! built with `serialize_missing_as_null` and `serialize_maps_as_objects` (`None` and `()` are
//! `null`, structs and maps plain objects, sequences and tuples arrays, unit variants their
//! name, other variants `{ name: value }`, integers numbers up to 2^53 - 1), in fewer bytes of
//! wasm: every field goes through one copy of [`set`], and keys are not cached.

use std::fmt::{self, Display};

use js_sys::{Array, JsString, Object, Reflect, Uint8Array};
use serde::ser::{self, Serialize};
use wasm_bindgen::prelude::*;

/// `value` as a JavaScript value (see the module docs).
pub(super) fn to_value<T: Serialize + ?Sized>(value: &T) -> Result {
    value.serialize(JsSerializer)
}

/// Why a value has no JavaScript form, printed as serde-wasm-bindgen printed its errors
/// (a JavaScript `Error`'s `String()`).
#[derive(Debug)]
pub(super) struct Error(String);

impl Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Error: {}", self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

type Result<T = JsValue> = std::result::Result<T, Error>;

#[derive(Clone, Copy)]
struct JsSerializer;

/// `object[key] = value`, one copy for every field of every struct.
#[inline(never)]
fn set(object: &Object, key: &JsValue, value: JsValue) {
    let _ = Reflect::set(object, key, &value);
}

/// `object[key] = value` for a struct's field.
#[inline(never)]
fn set_field(object: &Object, key: &str, value: JsValue) {
    set(object, &key.into(), value)
}

/// [`set_field`] with the value as serialized, or its error passed on: one copy of the error's
/// path for every field.
#[inline(never)]
fn put_field(object: &Object, key: &str, value: Result) -> Result<()> {
    set_field(object, key, value?);
    Ok(())
}

/// A map's entry, `object[key] = value`, or the value's error passed on: one copy of the key's
/// checks for every map, where each value type's `serialize_value` had a copy of its own.
#[inline(never)]
fn put_entry(object: &Object, key: Option<JsValue>, value: Result) -> Result<()> {
    let key = key.unwrap_or_default();
    let value = value?;
    if !key.is_string() {
        return Err(Error("Map key is not a string and cannot be an object key".to_owned()));
    }
    // Map keys are kernel ids, any string: assigned, `__proto__` would set the object's
    // prototype instead of adding its entry. Defined, it is an entry like any other.
    if key.as_string().as_deref() == Some("__proto__") {
        let own = Object::new();
        for (name, v) in
            [("value", value), ("writable", true.into()), ("enumerable", true.into()), ("configurable", true.into())]
        {
            set_field(&own, name, v);
        }
        Object::define_property(object, &key, &own);
    } else {
        set(object, &key, value);
    }
    Ok(())
}

/// `array.push(value)`, or the value's error passed on (as [`put_field`]).
#[inline(never)]
fn push_element(array: &Array, value: Result) -> Result<()> {
    array.push(&value?);
    Ok(())
}

/// `{ variant: value }`.
#[inline(never)]
fn variant_object(variant: &str, value: JsValue) -> JsValue {
    let object = Object::new();
    set_field(&object, variant, value);
    object.into()
}

/// A safe integer as a number; past 2^53 - 1 either way, serde-wasm-bindgen's error.
#[inline(never)]
fn signed(v: i64) -> Result {
    match (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&v) {
        true => Ok(JsValue::from_f64(v as f64)),
        false => Err(Error(format!("{v} can't be represented as a JavaScript number"))),
    }
}

/// [`signed`] for unsigned integers.
#[inline(never)]
fn unsigned(v: u64) -> Result {
    match v <= MAX_SAFE_INTEGER as u64 {
        true => Ok(JsValue::from_f64(v as f64)),
        false => Err(Error(format!("{v} can't be represented as a JavaScript number"))),
    }
}

const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Arrays: sequences, tuples, tuple structs.
struct ArrayBuilder(Array);

/// Objects: structs, and maps whose keys are strings.
struct ObjectBuilder {
    object: Object,
    key: Option<JsValue>,
}

/// A struct or tuple variant: its fields, then `{ variant: fields }`.
struct VariantBuilder<B> {
    variant: &'static str,
    inner: B,
}

impl ser::Serializer for JsSerializer {
    type Ok = JsValue;
    type Error = Error;
    type SerializeSeq = ArrayBuilder;
    type SerializeTuple = ArrayBuilder;
    type SerializeTupleStruct = ArrayBuilder;
    type SerializeTupleVariant = VariantBuilder<ArrayBuilder>;
    type SerializeMap = ObjectBuilder;
    type SerializeStruct = ObjectBuilder;
    type SerializeStructVariant = VariantBuilder<ObjectBuilder>;

    fn serialize_bool(self, v: bool) -> Result {
        Ok(v.into())
    }
    fn serialize_i8(self, v: i8) -> Result {
        Ok(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result {
        Ok(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result {
        Ok(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result {
        signed(v)
    }
    fn serialize_u8(self, v: u8) -> Result {
        Ok(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result {
        Ok(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result {
        Ok(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result {
        unsigned(v)
    }
    fn serialize_i128(self, v: i128) -> Result {
        Ok(v.into())
    }
    fn serialize_u128(self, v: u128) -> Result {
        Ok(v.into())
    }
    fn serialize_f32(self, v: f32) -> Result {
        Ok(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result {
        Ok(v.into())
    }
    fn serialize_char(self, v: char) -> Result {
        Ok(JsString::from(v).into())
    }
    fn serialize_str(self, v: &str) -> Result {
        Ok(v.into())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result {
        Ok(Uint8Array::from(v).into())
    }
    fn serialize_none(self) -> Result {
        Ok(JsValue::NULL)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result {
        Ok(JsValue::NULL)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result {
        Ok(JsValue::NULL)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result {
        Ok(variant.into())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, value: &T) -> Result {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result {
        Ok(variant_object(variant, value.serialize(self)?))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<ArrayBuilder> {
        Ok(ArrayBuilder(Array::new()))
    }
    fn serialize_tuple(self, _: usize) -> Result<ArrayBuilder> {
        Ok(ArrayBuilder(Array::new()))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<ArrayBuilder> {
        Ok(ArrayBuilder(Array::new()))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<VariantBuilder<ArrayBuilder>> {
        Ok(VariantBuilder { variant, inner: ArrayBuilder(Array::new()) })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<ObjectBuilder> {
        Ok(ObjectBuilder { object: Object::new(), key: None })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<ObjectBuilder> {
        Ok(ObjectBuilder { object: Object::new(), key: None })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<VariantBuilder<ObjectBuilder>> {
        Ok(VariantBuilder { variant, inner: ObjectBuilder { object: Object::new(), key: None } })
    }
}

impl ser::SerializeSeq for ArrayBuilder {
    type Ok = JsValue;
    type Error = Error;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        push_element(&self.0, value.serialize(JsSerializer))
    }
    fn end(self) -> Result {
        Ok(self.0.into())
    }
}

impl ser::SerializeTuple for ArrayBuilder {
    type Ok = JsValue;
    type Error = Error;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result {
        Ok(self.0.into())
    }
}

impl ser::SerializeTupleStruct for ArrayBuilder {
    type Ok = JsValue;
    type Error = Error;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result {
        Ok(self.0.into())
    }
}

impl ser::SerializeTupleVariant for VariantBuilder<ArrayBuilder> {
    type Ok = JsValue;
    type Error = Error;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        ser::SerializeSeq::serialize_element(&mut self.inner, value)
    }
    fn end(self) -> Result {
        Ok(variant_object(self.variant, self.inner.0.into()))
    }
}

impl ser::SerializeMap for ObjectBuilder {
    type Ok = JsValue;
    type Error = Error;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<()> {
        self.key = Some(key.serialize(JsSerializer)?);
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        put_entry(&self.object, self.key.take(), value.serialize(JsSerializer))
    }
    fn end(self) -> Result {
        Ok(self.object.into())
    }
}

impl ser::SerializeStruct for ObjectBuilder {
    type Ok = JsValue;
    type Error = Error;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<()> {
        put_field(&self.object, key, value.serialize(JsSerializer))
    }
    fn end(self) -> Result {
        Ok(self.object.into())
    }
}

impl ser::SerializeStructVariant for VariantBuilder<ObjectBuilder> {
    type Ok = JsValue;
    type Error = Error;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<()> {
        ser::SerializeStruct::serialize_field(&mut self.inner, key, value)
    }
    fn end(self) -> Result {
        Ok(variant_object(self.variant, self.inner.object.into()))
    }
}

#[cfg(test)]
mod tests {
    //! The serializer against serde-wasm-bindgen, which it replaces: the same JavaScript values.

    use std::collections::BTreeMap;

    use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

    use super::*;

    wasm_bindgen_test_configure!(run_in_browser);

    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Fields {
        flag: bool,
        small: i8,
        count: u64,
        signed: i64,
        ratio: f64,
        half: f32,
        letter: char,
        name: String,
        missing: Option<u32>,
        present: Option<u32>,
        unit: (),
        list: Vec<u16>,
        pair: (u8, String),
        map: BTreeMap<String, u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        kinds: Vec<Kind>,
        tagged: Tagged,
        adjacent: Adjacent,
        #[serde(flatten)]
        flat: Flat,
    }

    #[derive(serde::Serialize)]
    enum Kind {
        Unit,
        Newtype(u32),
        Tuple(u8, u8),
        Struct { a: u8 },
    }

    #[derive(serde::Serialize)]
    #[serde(tag = "kind", rename_all = "lowercase")]
    enum Tagged {
        Scalar { size: u32 },
    }

    #[derive(serde::Serialize)]
    #[serde(tag = "subject", content = "kernel", rename_all = "lowercase")]
    enum Adjacent {
        Kernel(String),
    }

    #[derive(serde::Serialize)]
    struct Flat {
        extra: u32,
    }

    fn swb<T: Serialize>(value: &T) -> std::result::Result<JsValue, String> {
        let serializer =
            serde_wasm_bindgen::Serializer::new().serialize_missing_as_null(true).serialize_maps_as_objects(true);
        value.serialize(&serializer).map_err(|e| e.to_string())
    }

    fn same<T: Serialize>(value: &T) {
        let ours = to_value(value).map_err(|e| e.to_string());
        let theirs = swb(value);
        match (ours, theirs) {
            (Ok(a), Ok(b)) => {
                let (a, b) = (js_sys::JSON::stringify(&a).unwrap(), js_sys::JSON::stringify(&b).unwrap());
                assert_eq!(String::from(a), String::from(b));
            }
            (a, b) => assert_eq!(format!("{a:?}"), format!("{b:?}")),
        }
    }

    #[wasm_bindgen_test]
    fn values_as_serde_wasm_bindgen_built_them() {
        let fields = Fields {
            flag: true,
            small: -3,
            count: (1 << 53) - 1,
            signed: -(1 << 53) + 1,
            ratio: 0.25,
            half: 1.5,
            letter: 'é',
            name: "doubler".into(),
            missing: None,
            present: Some(7),
            unit: (),
            list: vec![1, 2, 3],
            pair: (4, "four".into()),
            map: [("a".to_owned(), 1), ("b".to_owned(), 2)].into_iter().collect(),
            skipped: None,
            kinds: vec![Kind::Unit, Kind::Newtype(5), Kind::Tuple(1, 2), Kind::Struct { a: 9 }],
            tagged: Tagged::Scalar { size: 4 },
            adjacent: Adjacent::Kernel("echo".into()),
            flat: Flat { extra: 11 },
        };
        same(&fields);
        same(&u64::MAX);
        same(&i64::MIN);
        same(&Some(f64::NAN).map(|_| ()));
        let nulls = to_value(&(None::<u8>, ())).unwrap();
        assert_eq!(String::from(js_sys::JSON::stringify(&nulls).unwrap()), "[null,null]");
    }
}

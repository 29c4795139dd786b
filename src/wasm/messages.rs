//! JavaScript values ↔ messages.
//!
//! In: numbers for scalars; arrays or typed arrays of numbers for vectors and numeric arrays
//! (flat, or nested per element); objects for nested messages; arrays of objects for arrays
//! of messages. Out: the same shapes, with arrays of numbers for vectors and typed arrays
//! (`Float32Array`, `Int32Array`, `Uint32Array`, by the field's scalar) for numeric arrays.

use std::time::Duration;

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::codec::{codec, is_buffer, packed_view};
use super::errors::{js_error, range_error, type_error};
use crate::error::with_article;
use crate::message::{FieldType, MessageLayout, Scalar, Value, MAX_NESTING};
use crate::runtime::{batch_bytes, MAX_BATCH_BYTES};
use crate::{MessageRef, Runtime};

// A message's reads that user code can make throw (a getter, a Proxy's trap), caught: an
// exception crossing into wasm would unwind past the Rust code reading the message without
// running its destructors (a kernel's place in its line of sends never given up).
#[wasm_bindgen(module = "/src/wasm/js/codec.js")]
extern "C" {
    /// A message object's `[name, value]` pairs as `for...in` lists them, as the codecs read
    /// them (own and inherited enumerable properties).
    #[wasm_bindgen(js_name = fieldEntries, catch)]
    fn entries(object: &JsValue) -> Result<Array, JsValue>;
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = Array, js_name = isArray, catch)]
    fn is_array(value: &JsValue) -> Result<bool, JsValue>;
    #[wasm_bindgen(js_namespace = Array, js_name = from, catch)]
    fn items(value: &JsValue) -> Result<Array, JsValue>;
}

/// What a message, or a field, is when reading it threw.
const UNREADABLE: &str = "value that threw when read (a getter or a Proxy's trap)";

/// One message as `send`, `call`, `trySend` and `sendEnvelope` hand it to the core. `send` and
/// `trySend` read it when called, so an object changed afterwards is sent as it was.
pub(super) enum JsMessage {
    /// Packed by the kernel's input codec, which vouched for it: the core gets bytes, without
    /// reading the object field by field from wasm.
    Packed(Vec<u8>),
    /// Read by [`js_message_value`] for the core to judge (an unknown kernel, no codec here, a
    /// message the codec cannot vouch for).
    Read(Value),
}

impl JsMessage {
    /// `message`, for kernel `id`.
    pub(super) fn read(rt: &Runtime, id: &str, message: &JsValue) -> Self {
        let packed = rt.definition(id).ok().and_then(|d| codec(&d.input)?.encode_one(&d.input, message));
        packed.map_or_else(|| JsMessage::Read(js_message_value(message)), JsMessage::Packed)
    }

    /// The message as the core takes it.
    pub(super) fn as_ref(&self) -> MessageRef<'_> {
        match self {
            JsMessage::Packed(bytes) => MessageRef::Bytes(bytes),
            JsMessage::Read(value) => MessageRef::Value(value),
        }
    }
}

/// Reads one JS message into a [`Value`]: a plain object becomes a [`Value::Struct`] of its
/// fields, anything else a [`Value::Unsupported`] naming its type, which the runtime refuses
/// (and counts) like every other malformed message. A field of the wrong kind (a string,
/// `null`, an array nested deeper than any message type) is kept as `Unsupported` too, so the
/// layout refuses it by its field path.
pub(super) fn js_message_value(message: &JsValue) -> Value {
    if !is_plain_object(message) {
        return Value::Unsupported(type_name(message));
    }
    js_fields(message, "", 1)
}

/// An object's fields as named values (a [`Value::Struct`]); `path` names the object, `depth`
/// counts the objects and arrays it sits in.
fn js_fields(object: &JsValue, path: &str, depth: u32) -> Value {
    let Ok(entries) = entries(object) else { return Value::Unsupported(UNREADABLE.into()) };
    // Pushed, not collected, as the lists below: each `collect` is a copy of `Vec`'s
    // `from_iter` in the wasm.
    let mut fields = Vec::with_capacity(entries.length() as usize);
    for entry in entries.iter() {
        let entry: Array = entry.unchecked_into();
        let name = entry.get(0).as_string().unwrap_or_default();
        let child = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
        let value = js_value(&entry.get(1), &child, depth);
        fields.push((name, value));
    }
    Value::Struct(fields)
}

fn is_plain_object(value: &JsValue) -> bool {
    value.is_object() && !is_array(value).unwrap_or(false) && !is_typed_array(value)
}

/// A list of numbers, the elements of a typed array or of an array checked to hold only
/// numbers (so never NaN for a missing one): one `collect` for both.
fn numbers(items: &Array) -> Value {
    let mut numbers = Vec::with_capacity(items.length() as usize);
    for n in items.iter() {
        numbers.push(n.as_f64().unwrap_or(f64::NAN));
    }
    Value::List(numbers)
}

fn js_value(value: &JsValue, path: &str, depth: u32) -> Value {
    if let Some(n) = value.as_f64() {
        return Value::Number(n);
    }
    if is_typed_array(value) {
        if has_64_bit_elements(value) {
            return Value::Unsupported(type_name(value));
        }
        return numbers(&Array::from(value));
    }
    // No message type nests deeper than MAX_NESTING, so a deeper value is malformed; stopping
    // here keeps a deliberately deep one from overflowing the stack.
    let array = is_array(value).unwrap_or(false);
    if depth >= MAX_NESTING && (array || is_plain_object(value)) {
        return Value::Unsupported(format!("{}s nested more than {MAX_NESTING} deep", type_name(value)));
    }
    if array {
        let Ok(items) = items(value) else { return Value::Unsupported(UNREADABLE.into()) };
        if items.iter().all(|item| item.as_f64().is_some()) {
            return numbers(&items);
        }
        let mut values = Vec::with_capacity(items.length() as usize);
        for (i, item) in items.iter().enumerate() {
            values.push(js_value(&item, &format!("{path}[{i}]"), depth + 1));
        }
        return Value::Array(values);
    }
    if is_plain_object(value) {
        return js_fields(value, path, depth + 1);
    }
    // Refused by the layout, by its path, like any other mistake in a field.
    Value::Unsupported(type_name(value))
}

/// A message or an answer as a JS object shaped by its layout, from its bytes: decoded by the
/// layout's JavaScript codec, or field by field here where a page allows no codec.
pub(super) fn js_answer(layout: &MessageLayout, answer: &[u8]) -> JsValue {
    match codec(layout) {
        Some(codec) => codec.decode(answer),
        None => js_message(layout, layout.decode(answer)),
    }
}

/// `receiveBatch` for the runtime and its handles: `min` (which the core waits for, until the
/// timeout) to `max` answers of `id` as objects, or with `packed` the bytes as they are.
pub(super) async fn receive_answers(
    rt: &Runtime,
    id: &str,
    (min, max): (usize, usize),
    timeout: Option<Duration>,
    packed: bool,
) -> Result<JsValue, JsValue> {
    let ready = if packed { answer_array(rt, id, max) } else { None };
    // Straight from the output queue into JavaScript: copied into a `Uint8Array`, or decoded.
    let answers = rt.receive_batch_at_least_with(id, min, max, timeout, |layout, answers| match (packed, ready) {
        (true, Some(array)) if array.length() as usize == answers.len() => {
            array.copy_from(answers);
            array.into()
        }
        (true, _) => js_sys::Uint8Array::from(answers).into(),
        (false, _) => js_answers(layout, answers),
    });
    answers.await.map_err(js_error)
}

/// Answer arrays at least this large are made ahead of their answers (see [`answer_array`]).
const MADE_AHEAD_BYTES: usize = 64 * 1024;

/// The `Uint8Array` a packed `receiveBatch` about to wait on the device will copy its answers
/// into, made now while the device works. A fresh array's memory costs most on first touch
/// (~300 µs per 400 KB in Chromium, page faults), so it is touched now too, and the copy after
/// the readback is the only work left then. Sized for the answers on the device, up to `max`:
/// when fewer come, the array is dropped and a fitting one made after all. `None` when answers
/// are already queued (they are taken at once, without waiting) or the batch is small.
fn answer_array(rt: &Runtime, id: &str, max: usize) -> Option<js_sys::Uint8Array> {
    let coming = rt.answers_coming(id).ok()?;
    let bytes = max.max(1).min(coming.in_flight) * coming.answer_size;
    if coming.queued > 0 || bytes < MADE_AHEAD_BYTES {
        return None;
    }
    let array = js_sys::Uint8Array::new_with_length(bytes as u32);
    array.fill(0, 0, bytes as u32);
    Some(array)
}

/// Answers packed back to back as an array of JS objects (see [`js_answer`]).
fn js_answers(layout: &MessageLayout, packed: &[u8]) -> JsValue {
    match codec(layout) {
        Some(codec) => codec.decode_all(packed).into(),
        None => packed
            .chunks_exact(layout.size())
            .map(|answer| js_message(layout, layout.decode(answer)))
            .collect::<Array>()
            .into(),
    }
}

/// `sendBatch`'s messages: already packed in the input layout, or message objects.
pub(super) enum Batch {
    /// A typed array, DataView, ArrayBuffer or SharedArrayBuffer (see [`packed_bytes`]).
    Packed(Vec<u8>),
    /// An array of message objects (a copy made by `Array.from`, whose reads cannot throw),
    /// each read by [`js_message_value`] when the core packs it.
    Each(Array),
}

/// Reads `sendBatch`'s argument: a `TypeError` for anything that is neither an array of
/// messages nor packed bytes (a malformed message inside the array is the core's to refuse),
/// and for a typed array of floats where the messages hold integers or the other way round
/// (see [`other_scalar`]).
/// An array is packed by the input layout's JavaScript codec when it vouches for every
/// message; otherwise the core reads each message and judges them.
pub(super) fn js_batch(messages: &JsValue, input: impl FnOnce() -> Option<MessageLayout>) -> Result<Batch, JsValue> {
    if let Some(bytes) = packed_bytes(messages)? {
        // The array's element type by its tag, which a subclass of `Float32Array` keeps.
        let tag = Reflect::get(messages, &js_sys::Symbol::to_string_tag()).ok().and_then(|tag| tag.as_string());
        let tag = tag.unwrap_or_default();
        let problem = match tag.as_str() {
            "Float16Array" => Some(NO_F16_FIELDS.to_owned()),
            tag => element_scalar(tag).and_then(|scalar| other_scalar(&input()?, scalar)),
        };
        if let Some(problem) = problem {
            return Err(type_error(format!("sendBatch got {} of {problem}", with_article(&kind_name(messages)))));
        }
        return Ok(Batch::Packed(bytes));
    }
    if is_array(messages).unwrap_or(false) {
        let messages: &Array = messages.unchecked_ref();
        let layout = input();
        if let Some(layout) = &layout {
            batch_bytes(messages.length() as usize, layout.size()).map_err(js_error)?;
        }
        if let Some(packed) = layout.as_ref().and_then(|l| codec(l)?.encode(l, messages)) {
            return Ok(Batch::Packed(packed));
        }
        let Ok(messages) = items(messages) else {
            return Err(type_error("sendBatch's array of messages threw when read".to_owned()));
        };
        return Ok(Batch::Each(messages));
    }
    Err(type_error(format!("sendBatch expects an array of messages or a typed array, got {}", type_name(messages))))
}

/// An answer decoded by its layout as a JS object: numbers, arrays of numbers for vectors,
/// typed arrays for numeric arrays, nested objects and arrays for the rest.
fn js_message(layout: &MessageLayout, fields: Vec<(String, Value)>) -> JsValue {
    let object = Object::new();
    for (field, (name, value)) in layout.fields().iter().zip(fields) {
        let _ = Reflect::set(&object, &name.into(), &js_field(&field.ty, value));
    }
    object.into()
}

fn js_field(ty: &FieldType, value: Value) -> JsValue {
    match (ty, value) {
        // Vectors as arrays of numbers (the typed array the arms below make, copied into an
        // array), numeric arrays as typed arrays: the shapes the codecs give.
        (FieldType::Vector(scalar, _), numbers) => Array::from(&js_field(&FieldType::Scalar(*scalar), numbers)).into(),
        (_, Value::I32(n)) => n.into(),
        (_, Value::U32(n)) => n.into(),
        (_, Value::F32(n)) => n.into(),
        (_, Value::I32s(numbers)) => js_sys::Int32Array::from(numbers.as_slice()).into(),
        (_, Value::U32s(numbers)) => js_sys::Uint32Array::from(numbers.as_slice()).into(),
        (_, Value::F32s(numbers)) => js_sys::Float32Array::from(numbers.as_slice()).into(),
        (FieldType::Struct(layout), Value::Struct(fields)) => js_message(layout, fields),
        (FieldType::Array(element, _), Value::Array(items)) => {
            items.into_iter().map(|item| js_field(element, item)).collect::<Array>().into()
        }
        // Names the kind, not the value: a value's Debug would link float formatting for `f32`.
        (_, other) => unreachable!("decode shapes values by their layout, got a {} for {ty}", other.kind_name()),
    }
}

/// Why messages cannot come as a `Float16Array` (the refusal's words after "of").
const NO_F16_FIELDS: &str =
    "f16 values, but no message field has 16-bit floats: f32 values go in a Float32Array, or send the messages as objects";

/// The scalar an `Int32Array`'s, `Uint32Array`'s or `Float32Array`'s elements are (`tag`: its
/// `Symbol.toStringTag`). Other views and buffers hold bytes: packed messages as they are,
/// whatever their fields.
fn element_scalar(tag: &str) -> Option<Scalar> {
    Scalar::ALL.into_iter().find(|&scalar| typed_array(scalar) == tag)
}

/// Why messages of `layout` cannot come as a typed array of `scalar`s: a float field would read
/// an integer's bits as a float, or the other way round (the refusal's words after "of").
/// `None` when every number in them is a float like `scalar`, or an integer like it: `i32` and
/// `u32` share their bits up to 2^31, and a WGSL `bitcast` reads them as each other.
fn other_scalar(layout: &MessageLayout, scalar: Scalar) -> Option<String> {
    let (path, other) = first_other(layout, scalar)?;
    let advice = match first_other(layout, other) {
        None => format!("{other} values go in {}", with_article(typed_array(other))),
        Some(_) => "packed bytes go in a Uint8Array".into(),
    };
    Some(format!(
        "{scalar} values, but field `{path}` of message {} is {other}: {advice}, or send the messages as objects",
        layout.name()
    ))
}

/// The first field (its path) of `layout` whose numbers are floats where `scalar` is an
/// integer or the other way round, and their scalar.
fn first_other(layout: &MessageLayout, scalar: Scalar) -> Option<(String, Scalar)> {
    let float = |scalar| scalar == Scalar::F32;
    layout.fields().iter().find_map(|field| {
        let mut ty = &field.ty;
        while let FieldType::Array(element, _) = ty {
            ty = element;
        }
        match ty {
            FieldType::Struct(nested) => {
                first_other(nested, scalar).map(|(path, other)| (format!("{}.{path}", field.name), other))
            }
            _ => ty.scalar().filter(|&other| float(other) != float(scalar)).map(|other| (field.name.clone(), other)),
        }
    })
}

/// The typed array whose elements are `scalar`s.
fn typed_array(scalar: Scalar) -> &'static str {
    match scalar {
        Scalar::I32 => "Int32Array",
        Scalar::U32 => "Uint32Array",
        Scalar::F32 => "Float32Array",
    }
}

/// The bytes of a typed array, DataView, ArrayBuffer or SharedArrayBuffer (messages already packed). Not of a
/// `Float64Array`, `BigInt64Array` or `BigUint64Array`: no message field has 64-bit elements, so
/// such an array is a mistake (`new Float64Array([1, 2])` for two `f32`s), not packed messages.
fn packed_bytes(value: &JsValue) -> Result<Option<Vec<u8>>, JsValue> {
    let packed = is_buffer(value) || (js_sys::ArrayBuffer::is_view(value) && !has_64_bit_elements(value));
    if !packed {
        return Ok(None);
    }
    let view = packed_view(value, MAX_BATCH_BYTES as f64).unwrap_or(JsValue::NULL);
    if let Some(length) = view.as_f64() {
        return Err(range_error(format!(
            "sendBatch got {} bytes of packed messages, over {MAX_BATCH_BYTES}, the most one batch takes: send them in \
             parts",
            length as u64
        )));
    }
    match view.dyn_into::<js_sys::Uint8Array>() {
        Ok(bytes) => Ok(Some(bytes.to_vec())),
        Err(why) => Err(type_error(format!(
            "sendBatch could not read the bytes of {}: {}",
            with_article(&kind_name(value)),
            why.as_string().unwrap_or_default()
        ))),
    }
}

/// Typed arrays (not DataView, which holds bytes rather than numbers).
fn is_typed_array(value: &JsValue) -> bool {
    js_sys::ArrayBuffer::is_view(value) && !value.is_instance_of::<js_sys::DataView>()
}

/// `Float64Array`, `BigInt64Array` and `BigUint64Array`: 8 bytes per element.
fn has_64_bit_elements(value: &JsValue) -> bool {
    Reflect::get(value, &"BYTES_PER_ELEMENT".into()).ok().and_then(|n| n.as_f64()) == Some(8.0)
}

/// The `TypeError` refusing `value` where `wanted` says what an argument must be: "`wanted`,
/// got `value`" (as [`shown`] shows it). One function for every such refusal: a `format!` of
/// each one's own weighed more in the wasm.
#[inline(never)]
pub(super) fn mistyped(wanted: std::fmt::Arguments<'_>, value: &JsValue) -> JsValue {
    type_error(format!("{wanted}, got {}", shown(value)))
}

/// A value as a JavaScript error names it: numbers and booleans as JavaScript prints them,
/// strings quoted, BigInts with their `n`, `null`, `undefined`, and what other values are.
pub(super) fn shown(value: &JsValue) -> String {
    if let Some(text) = value.as_string() {
        format!("{text:?}")
    } else if value.is_bigint() {
        format!("{}n", js_string(value))
    } else if value.as_f64().is_some() || value.as_bool().is_some() || value.loose_eq(&JsValue::NULL) {
        js_string(value)
    } else {
        with_article(&kind_name(value))
    }
}

#[wasm_bindgen]
extern "C" {
    /// `String(value)`: a number as JavaScript prints it, an exception's text.
    #[wasm_bindgen(js_name = String)]
    pub(super) fn js_string(error: &JsValue) -> String;
}

/// What kind of value `value` is, as message errors name it: [`kind_name`]'s, with a word on
/// why a typed array of 64-bit elements is none (no message field has them).
pub(super) fn type_name(value: &JsValue) -> String {
    let name = kind_name(value);
    match js_sys::ArrayBuffer::is_view(value) && has_64_bit_elements(value) {
        true => format!("{name} (no message field has 64-bit elements)"),
        false => name,
    }
}

/// What kind of value `value` is: `null`, `array`, a typed array's or buffer's constructor,
/// else its `typeof`.
fn kind_name(value: &JsValue) -> String {
    if value.is_null() {
        "null".into()
    } else if is_array(value).unwrap_or(false) {
        "array".into()
    } else if js_sys::ArrayBuffer::is_view(value) || is_buffer(value) {
        String::from(value.unchecked_ref::<Object>().constructor().name())
    } else {
        value.js_typeof().as_string().unwrap_or_else(|| "unknown".into())
    }
}

/// What a typed array is, by the built-in `%TypedArray%.prototype[Symbol.toStringTag]` getter:
/// an array's own (forged) tag does not change it, and one from another realm is told too.
/// `None` for anything else.
fn typed_array_tag(value: &JsValue) -> Option<String> {
    let typed_array = Object::get_prototype_of(&Object::get_prototype_of(&js_sys::Uint8Array::new_with_length(0)));
    let tag = Reflect::get_own_property_descriptor(&typed_array, &js_sys::Symbol::to_string_tag()).ok()?;
    let getter: js_sys::Function = Reflect::get(&tag, &"get".into()).ok()?.dyn_into().ok()?;
    getter.call0(value).ok()?.as_string()
}

/// State values from a `Uint32Array`, `Int32Array` or `Float32Array` (told by
/// [`typed_array_tag`]), copied now; `Ok(None)` for anything
/// else, and what it is when its values cannot be read (its buffer is detached).
pub(super) fn state_values(value: &JsValue) -> Result<Option<crate::kernel::StateValues>, String> {
    use crate::kernel::StateValues;
    let Some(scalar) = typed_array_tag(value).as_deref().and_then(element_scalar) else { return Ok(None) };
    let bytes = match packed_view(value, f64::INFINITY).map(|view| view.dyn_into::<js_sys::Uint8Array>()) {
        Ok(Ok(bytes)) => bytes.to_vec(),
        _ => return Err(format!("{} whose buffer is detached", with_article(&kind_name(value)))),
    };
    Ok(Some(match scalar {
        Scalar::U32 => StateValues::U32(bytemuck::pod_collect_to_vec(&bytes)),
        Scalar::I32 => StateValues::I32(bytemuck::pod_collect_to_vec(&bytes)),
        Scalar::F32 => StateValues::F32(bytemuck::pod_collect_to_vec(&bytes)),
    }))
}

/// A state array as the typed array of its element type.
pub(super) fn js_state(scalar: Scalar, bytes: &[u8]) -> JsValue {
    let words: Vec<u32> = bytemuck::pod_collect_to_vec(bytes);
    match scalar {
        Scalar::U32 => js_sys::Uint32Array::from(words.as_slice()).into(),
        Scalar::I32 => js_sys::Int32Array::from(bytemuck::cast_slice::<u32, i32>(&words)).into(),
        Scalar::F32 => js_sys::Float32Array::from(bytemuck::cast_slice::<u32, f32>(&words)).into(),
    }
}

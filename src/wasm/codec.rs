//! The JavaScript codecs of `js/codec.js`: message objects ↔ packed bytes without crossing into
//! wasm per field. One codec per message layout, compiled on first use and kept; a page that
//! forbids code generation gets none, and messages take the core's path (see `messages.rs`).

use std::cell::RefCell;

use js_sys::Array;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::to_js;
use crate::message::{FieldType, MessageLayout, Scalar};

#[wasm_bindgen(module = "/src/wasm/js/codec.js")]
extern "C" {
    /// A compiled codec (`Codec` in codec.js).
    #[derive(Clone)]
    pub(super) type Codec;

    /// The codec of a layout's description, over this module's memory (`memory`).
    #[wasm_bindgen(js_name = compileCodec, catch)]
    fn compile_codec(description: &JsValue, memory: &JsValue) -> Result<Option<Codec>, JsValue>;

    /// Packs the messages at address `at` (zeroed, their size): how many it packed, all of
    /// them, or fewer when one stopped the fast path.
    #[wasm_bindgen(method, js_name = encodeInto)]
    fn encode_into(this: &Codec, messages: &Array, at: *mut u8) -> u32;

    /// Packs one message at address `at` (zeroed, its size): whether the fast path vouched for
    /// it.
    #[wasm_bindgen(method, js_name = encodeOne)]
    fn encode_one_into(this: &Codec, message: &JsValue, at: *mut u8) -> bool;

    /// Every message in the `length` bytes at address `at` as an object.
    #[wasm_bindgen(method, js_name = decodeBatch)]
    fn decode_batch(this: &Codec, at: *const u8, length: usize) -> Array;

    /// The one message at address `at` as an object.
    #[wasm_bindgen(method, js_name = decodeOne)]
    fn decode_one(this: &Codec, at: *const u8) -> JsValue;

    /// A buffer's or view's bytes as a `Uint8Array`, its byte length when over `max`, or
    /// `null` when it cannot be read (`sendBatch`'s packed messages). (It never throws;
    /// `catch` only routes it through the glue, as the module's other imports are: imported
    /// straight from the snippet as well, the module was listed twice in the glue's imports.)
    #[wasm_bindgen(js_name = packedView, catch)]
    pub(super) fn packed_view(value: &JsValue, max: f64) -> Result<JsValue, JsValue>;

    /// Whether `value` is an `ArrayBuffer` or a `SharedArrayBuffer` (packed messages, whole);
    /// `catch` as `packedView`'s, though it never throws.
    #[wasm_bindgen(js_name = isBuffer, catch)]
    fn is_shared_or_plain_buffer(value: &JsValue) -> Result<bool, JsValue>;
}

/// Whether `value` is an `ArrayBuffer` or a `SharedArrayBuffer`: packed messages, whole.
pub(super) fn is_buffer(value: &JsValue) -> bool {
    is_shared_or_plain_buffer(value).unwrap_or(false)
}

thread_local! {
    /// Codecs by layout (`None`: code generation is refused here). Layouts are few and small,
    /// so a list compared by value is enough.
    static CODECS: RefCell<Vec<(MessageLayout, Option<Codec>)>> = const { RefCell::new(Vec::new()) };
}

impl Codec {
    /// The messages packed in `layout` (this codec's), or `None` when one of them stopped the
    /// fast path and the core must judge them. The codec writes straight into wasm memory.
    pub(super) fn encode(&self, layout: &MessageLayout, messages: &Array) -> Option<Vec<u8>> {
        let count = messages.length();
        if count == 0 {
            // Nothing to pack (and an empty Vec's dangling pointer is no 4-byte boundary).
            return Some(Vec::new());
        }
        let mut packed = vec![0u8; count as usize * layout.size()];
        // The codec writes exactly these bytes and keeps nothing of them (wasm memory never
        // moves; a getter that grew it meanwhile makes the codec vouch for nothing).
        let encoded = self.encode_into(messages, packed.as_mut_ptr());
        (encoded == count).then_some(packed)
    }

    /// Packs `message` into `slot` (zeroed, one message of `layout`, this codec's): whether the
    /// fast path vouched for it (when not, the core must judge it).
    pub(super) fn encode_one_at(&self, layout: &MessageLayout, message: &JsValue, slot: &mut [u8]) -> bool {
        // As in `encode`: the codec writes exactly these bytes and keeps nothing of them.
        slot.len() == layout.size() && self.encode_one_into(message, slot.as_mut_ptr())
    }

    /// One message packed in `layout` (this codec's), or `None` when the core must judge it.
    pub(super) fn encode_one(&self, layout: &MessageLayout, message: &JsValue) -> Option<Vec<u8>> {
        let mut packed = vec![0u8; layout.size()];
        // As in `encode`: the codec writes exactly these bytes and keeps nothing of them.
        let encoded = self.encode_one_into(message, packed.as_mut_ptr());
        encoded.then_some(packed)
    }

    /// Every answer in `packed` (back to back, in this codec's layout) as an object.
    pub(super) fn decode_all(&self, packed: &[u8]) -> Array {
        // The codec reads exactly these bytes (the objects it builds copy every value out).
        self.decode_batch(packed.as_ptr(), packed.len())
    }

    /// The one answer in `answer` as an object.
    pub(super) fn decode(&self, answer: &[u8]) -> JsValue {
        self.decode_one(answer.as_ptr())
    }
}

/// The codec of `layout`, compiled on first use; `None` where code generation is refused.
pub(super) fn codec(layout: &MessageLayout) -> Option<Codec> {
    if let Some(known) = CODECS.with_borrow(|codecs| codecs.iter().find(|(l, _)| l == layout).map(|(_, c)| c.clone())) {
        return known;
    }
    let compiled = to_js(&Description::of(layout)).ok().and_then(|description| {
        // A codec that fails to compile is a bug here, never the user's: say so, and let the
        // core's reader take the messages.
        compile_codec(&description, &wasm_bindgen::memory()).unwrap_or_else(|error| {
            web_sys::console::error_2(&format!("ringkernel-web: no codec for {}:", layout.name()).into(), &error);
            None
        })
    });
    CODECS.with_borrow_mut(|codecs| codecs.push((layout.clone(), compiled.clone())));
    compiled
}

/// What codec.js compiles from: `{ name, size, fields: [{ name, offset, type }] }`.
#[derive(Serialize)]
struct Description<'a> {
    name: &'a str,
    size: usize,
    fields: Vec<FieldDescription<'a>>,
}

#[derive(Serialize)]
struct FieldDescription<'a> {
    name: &'a str,
    offset: u32,
    #[serde(rename = "type")]
    ty: TypeDescription<'a>,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum TypeDescription<'a> {
    Scalar { scalar: &'static str },
    Vector { scalar: &'static str, n: u32 },
    Array { element: Box<TypeDescription<'a>>, len: u32, stride: u32 },
    Struct { layout: Description<'a> },
}

impl<'a> Description<'a> {
    fn of(layout: &'a MessageLayout) -> Self {
        // Pushed, not collected: each `collect` is a copy of `Vec`'s `from_iter` in the wasm.
        let mut fields = Vec::with_capacity(layout.fields().len());
        for f in layout.fields() {
            fields.push(FieldDescription { name: &f.name, offset: f.offset, ty: TypeDescription::of(&f.ty) });
        }
        Description { name: layout.name(), size: layout.size(), fields }
    }
}

impl<'a> TypeDescription<'a> {
    fn of(ty: &'a FieldType) -> Self {
        match ty {
            FieldType::Scalar(s) => TypeDescription::Scalar { scalar: scalar_name(*s) },
            FieldType::Vector(s, n) => TypeDescription::Vector { scalar: scalar_name(*s), n: *n },
            FieldType::Array(element, len) => {
                TypeDescription::Array { element: Box::new(Self::of(element)), len: *len, stride: element.stride() }
            }
            FieldType::Struct(layout) => TypeDescription::Struct { layout: Description::of(layout) },
        }
    }
}

fn scalar_name(scalar: Scalar) -> &'static str {
    match scalar {
        Scalar::I32 => "i32",
        Scalar::U32 => "u32",
        Scalar::F32 => "f32",
    }
}

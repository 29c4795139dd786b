//! The JavaScript codecs of `js/codec.js`: message objects ↔ packed bytes without crossing into
//! wasm per field. One codec per message layout, compiled on first use and kept; a page that
//! forbids code generation gets none, and messages take the core's path ([`super::messages`]).

use std::cell::RefCell;

use js_sys::{Array, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::to_js;
use crate::message::{FieldType, MessageLayout, Scalar};

#[wasm_bindgen(module = "/src/wasm/js/codec.js")]
extern "C" {
    /// A compiled codec (`Codec` in codec.js).
    #[derive(Clone)]
    pub(super) type Codec;

    #[wasm_bindgen(js_name = compileCodec)]
    fn compile_codec(description: &JsValue) -> Option<Codec>;

    /// All the messages packed, or (a number) the index of the first the fast path cannot
    /// vouch for.
    #[wasm_bindgen(method, js_name = encodeBatch)]
    pub(super) fn encode_batch(this: &Codec, messages: &Array) -> JsValue;

    /// Every message in the packed bytes as an object.
    #[wasm_bindgen(method, js_name = decodeBatch)]
    pub(super) fn decode_batch(this: &Codec, bytes: &Uint8Array) -> Array;

    /// The one message in the packed bytes as an object.
    #[wasm_bindgen(method, js_name = decodeOne)]
    pub(super) fn decode_one(this: &Codec, bytes: &Uint8Array) -> JsValue;
}

thread_local! {
    /// Codecs by layout (`None`: code generation is refused here). Layouts are few and small,
    /// so a list compared by value is enough.
    static CODECS: RefCell<Vec<(MessageLayout, Option<Codec>)>> = const { RefCell::new(Vec::new()) };
}

/// The codec of `layout`, compiled on first use; `None` where code generation is refused.
pub(super) fn codec(layout: &MessageLayout) -> Option<Codec> {
    if let Some(known) = CODECS.with_borrow(|codecs| codecs.iter().find(|(l, _)| l == layout).map(|(_, c)| c.clone())) {
        return known;
    }
    let compiled = to_js(&Description::of(layout)).ok().and_then(|description| compile_codec(&description));
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
        let fields = layout
            .fields()
            .iter()
            .map(|f| FieldDescription { name: &f.name, offset: f.offset, ty: TypeDescription::of(&f.ty) })
            .collect();
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

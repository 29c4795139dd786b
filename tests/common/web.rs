//! Helpers for the browser tests: build JS values, call methods the way JavaScript does, and
//! check errors as JavaScript sees them.

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// `{ k: v, ... }`.
pub fn object(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &(*k).into(), v).unwrap();
    }
    o.into()
}

/// `[a, b, ...]`.
pub fn array(items: &[JsValue]) -> JsValue {
    items.iter().collect::<Array>().into()
}

pub fn get(target: &JsValue, key: &str) -> JsValue {
    Reflect::get(target, &key.into()).unwrap()
}

/// `target[key]`, which must be a number.
pub fn num(target: &JsValue, key: &str) -> f64 {
    get(target, key).as_f64().unwrap_or_else(|| panic!("{key} is not a number"))
}

/// `{ timeout: ms }`.
pub fn timeout(ms: u32) -> JsValue {
    object(&[("timeout", ms.into())])
}

/// Resolves after `ms` milliseconds (setTimeout), letting the page's event loop (and with it
/// the runtime's pump) run.
pub async fn sleep_ms(ms: u32) {
    let promise = Promise::new(&mut |resolve, _| {
        let set_timeout: Function = get(&js_sys::global(), "setTimeout").unchecked_into();
        set_timeout.call2(&JsValue::UNDEFINED, &resolve, &ms.into()).unwrap();
    });
    js(promise).await.unwrap();
}

/// The error's `name` alone.
pub fn name_of(error: &JsValue) -> String {
    get(error, "name").as_string().unwrap_or_default()
}

pub async fn js(promise: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(promise).await
}

/// A JavaScript function from its source, `new Function(args, body)`.
pub fn js_function(args: &str, body: &str) -> Function {
    Function::new_with_args(args, body)
}

/// Calls `target[name](...args)` as JavaScript does: a throw is an `Err`, and a returned promise
/// is awaited.
pub async fn invoke(target: &JsValue, name: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let method: Function = get(target, name).dyn_into().unwrap_or_else(|_| panic!("{name} is a method"));
    let returned = method.apply(target, &args.iter().collect::<Array>())?;
    match returned.dyn_into::<Promise>() {
        Ok(promise) => js(promise).await,
        Err(value) => Ok(value),
    }
}

/// The error's `name` and `message`, or why it is not a JavaScript `Error`.
pub fn error_name(error: &JsValue) -> (String, String) {
    if !error.is_instance_of::<js_sys::Error>() {
        return ("(not an Error)".into(), format!("{error:?}"));
    }
    let name = get(error, "name").as_string().unwrap_or_default();
    (name, get(error, "message").as_string().unwrap_or_default())
}

/// `target[name](...args)` that must succeed (the test fails with the method's error).
pub async fn call(target: &JsValue, name: &str, args: &[JsValue]) -> JsValue {
    invoke(target, name, args).await.unwrap_or_else(|e| panic!("{name}: {e:?}"))
}

/// Registers kernel `id`: `{ value: i32 }` → `{ result: value * mul + add }`, in WGSL and as a
/// JavaScript handler (for the cpu backend), replacing any kernel of that id.
pub fn register_linear(id: &str, mul: i32, add: i32) {
    use ringkernel_web::wasm::{define_message, ring_kernel};
    let request = define_message("Request".into(), object(&[("value", "i32".into())])).unwrap();
    let response = define_message("Response".into(), object(&[("result", "i32".into())])).unwrap();
    let wgsl = format!("fn handle(msg: Request) -> Response {{ return Response(msg.value * {mul} + {add}); }}");
    let handler = js_function("m", &format!("return {{ result: m.value * {mul} + {add} }};"));
    ring_kernel(object(&[
        ("id", id.into()),
        ("input", request),
        ("output", response),
        ("wgsl", wgsl.into()),
        ("handler", handler.into()),
        ("replace", true.into()),
    ]))
    .unwrap();
}

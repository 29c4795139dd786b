//! Headless-browser tests (`wasm-pack test --headless --chrome`): the runtime on the browser's
//! WebGPU (SwiftShader in CI). No adapter is a failure with the reason, never a skip.
#![cfg(target_arch = "wasm32")]

use js_sys::{Object, Reflect};
use ringkernel_web::wasm::JsRuntime;
use ringkernel_web::{LaunchOptions, Runtime, RuntimeOptions};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn object(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &(*k).into(), v).unwrap();
    }
    o.into()
}

async fn js_runtime() -> JsRuntime {
    let runtime = Runtime::new(RuntimeOptions::default())
        .await
        .unwrap_or_else(|e| panic!("WebGPU runtime could not start (is --enable-unsafe-webgpu set?): {e}"));
    JsRuntime::from_runtime(runtime)
}

#[wasm_bindgen_test]
async fn create_resolves_to_a_runtime_object() {
    let created = JsFuture::from(JsRuntime::create(object(&[("enableTelemetry", true.into())])))
        .await
        .expect("create() on WebGPU");
    assert!(Reflect::get(&created, &"launch".into()).unwrap().is_function());
    // `await using` support: [Symbol.asyncDispose] is dispose itself, and calling it disposes.
    let symbol =
        Reflect::get(&Reflect::get(&js_sys::global(), &"Symbol".into()).unwrap(), &"asyncDispose".into()).unwrap();
    assert!(!symbol.is_undefined(), "this Chromium has Symbol.asyncDispose");
    let async_dispose: js_sys::Function = Reflect::get(&created, &symbol).unwrap().dyn_into().unwrap();
    assert_eq!(JsValue::from(async_dispose.clone()), Reflect::get(&created, &"dispose".into()).unwrap());
    JsFuture::from(js_sys::Promise::from(async_dispose.call0(&created).unwrap())).await.unwrap();
    let launch: js_sys::Function = Reflect::get(&created, &"launch".into()).unwrap().dyn_into().unwrap();
    let after =
        JsFuture::from(js_sys::Promise::from(launch.call1(&created, &"doubler".into()).unwrap())).await.unwrap_err();
    assert_eq!(Reflect::get(&after, &"name".into()).unwrap().as_string().unwrap(), "BackendUnavailableError");
    let bad = JsFuture::from(JsRuntime::create(object(&[("enableTelemetri", true.into())]))).await.unwrap_err();
    assert_eq!(Reflect::get(&bad, &"name".into()).unwrap().as_string().unwrap(), "TypeError");
}

#[wasm_bindgen_test]
async fn doubler_answers_42_through_the_js_api() {
    let rt = js_runtime().await;
    JsFuture::from(rt.launch("doubler".into(), JsValue::UNDEFINED, JsValue::UNDEFINED)).await.unwrap();
    assert_eq!(rt.get_state("doubler".into()).unwrap(), "launched");
    JsFuture::from(rt.activate("doubler".into())).await.unwrap();
    assert_eq!(rt.get_state("doubler".into()).unwrap(), "active");
    JsFuture::from(rt.send("doubler".into(), object(&[("value", 21.into())]), JsValue::UNDEFINED)).await.unwrap();
    let answer = JsFuture::from(rt.receive("doubler".into(), object(&[("timeout", 10_000.into())]))).await.unwrap();
    assert_eq!(Reflect::get(&answer, &"result".into()).unwrap().as_f64(), Some(42.0));
    JsFuture::from(rt.terminate("doubler".into(), object(&[("timeout", 5000.into())]))).await.unwrap();
    assert_eq!(rt.get_state("doubler".into()).unwrap(), "terminated");
    JsFuture::from(rt.dispose()).await.unwrap();
}

#[wasm_bindgen_test]
async fn thousand_messages_come_back_in_order() {
    let rt = Runtime::new(RuntimeOptions::default()).await.expect("WebGPU adapter");
    // 128 slots: 1,000 messages need several ticks and ring wrap-arounds.
    rt.launch("doubler", LaunchOptions { queue_size: Some(128), ..Default::default() }).await.unwrap();
    rt.activate("doubler").await.unwrap();
    let mut answers: Vec<i32> = Vec::new();
    let mut next = 0i32;
    while answers.len() < 1000 {
        let batch: Vec<i32> = (next..1000).collect();
        next += rt.send_packed("doubler", bytemuck::cast_slice(&batch), Some(0.0)).await.unwrap() as i32;
        let got = rt.receive_batch_packed("doubler", 1000, Some(20_000.0)).await.unwrap();
        answers.extend_from_slice(bytemuck::cast_slice(&got));
    }
    assert_eq!(answers, (0..1000).map(|v| v * 2).collect::<Vec<i32>>());
    let t = rt.telemetry("doubler").unwrap().unwrap();
    assert_eq!(t.messages_processed, 1000);
}

#[wasm_bindgen_test]
async fn errors_carry_their_names() {
    let rt = js_runtime().await;
    let err = JsFuture::from(rt.activate("missing".into())).await.unwrap_err();
    assert_eq!(Reflect::get(&err, &"name".into()).unwrap().as_string().unwrap(), "KernelNotFoundError");
    JsFuture::from(rt.launch("doubler".into(), JsValue::UNDEFINED, JsValue::UNDEFINED)).await.unwrap();
    let err = JsFuture::from(rt.send("doubler".into(), object(&[("value", "21".into())]), JsValue::UNDEFINED))
        .await
        .unwrap_err();
    assert_eq!(Reflect::get(&err, &"name".into()).unwrap().as_string().unwrap(), "MessageFormatError");
    assert_eq!(Reflect::get(&err, &"field".into()).unwrap().as_string().unwrap(), "value");
    let err = JsFuture::from(rt.receive("doubler".into(), object(&[("timeout", 50.into())]))).await.unwrap_err();
    assert_eq!(Reflect::get(&err, &"name".into()).unwrap().as_string().unwrap(), "TimeoutError");
    let err = JsFuture::from(rt.reactivate("doubler".into())).await.unwrap_err();
    assert_eq!(Reflect::get(&err, &"name".into()).unwrap().as_string().unwrap(), "KernelStateError");
}

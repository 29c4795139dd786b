//! Fused pipelines in the browser (headless Chromium, SwiftShader WebGPU), through the JavaScript
//! surface: three connected stages, whose WGSL all declare the same helper and struct, run as one
//! dispatch once their module has compiled (asynchronously, on the page's event loop); answers
//! stay right and in order, `fusedDispatches` counts the fused runs, and pausing the middle stage
//! falls back to the ring-to-ring path with nothing lost.
#![cfg(target_arch = "wasm32")]

use ringkernel_web::wasm::{define_message, ring_kernel, JsRuntime};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

mod common;

use common::web::{get, invoke, js, num, object, timeout};

wasm_bindgen_test_configure!(run_in_browser);

/// Stage `k` computes `value * (k + 2) + 1` through a helper `f` and a struct `Pair` that every
/// stage declares.
fn register(id: &str, k: i32) {
    let request = define_message("FuseIn".into(), object(&[("value", "i32".into())])).unwrap();
    let response = define_message("FuseOut".into(), object(&[("value", "i32".into())])).unwrap();
    let wgsl = format!(
        "struct Pair {{ a: i32, b: i32 }}\nfn f(p: Pair) -> i32 {{ return p.a * p.b + 1; }}\nfn handle(msg: FuseIn) -> \
         FuseOut {{ return FuseOut(f(Pair(msg.value, {}))); }}",
        k + 2
    );
    ring_kernel(object(&[("id", id.into()), ("input", request), ("output", response), ("wgsl", wgsl.into())])).unwrap();
}

fn expected(value: i32, stages: i32) -> i32 {
    (0..stages).fold(value, |v, k| v * (k + 2) + 1)
}

async fn round_trip(rt: &JsValue, first: &str, last: &str, value: i32) -> i32 {
    let message = object(&[("value", value.into())]);
    invoke(rt, "send", &[first.into(), message, timeout(10_000)]).await.unwrap();
    let answer = invoke(rt, "receive", &[last.into(), timeout(10_000)]).await.unwrap();
    num(&answer, "value") as i32
}

fn telemetry(rt: &JsValue, id: &str) -> JsValue {
    let get_telemetry = js_sys::Function::from(get(rt, "getTelemetry"));
    get_telemetry.call1(rt, &id.into()).unwrap()
}

fn fused(rt: &JsValue, id: &str) -> f64 {
    num(&telemetry(rt, id), "fusedDispatches")
}

#[wasm_bindgen_test]
async fn three_connected_stages_run_fused_and_answer_in_order() {
    let rt = js(JsRuntime::create(Some(object(&[("enableTelemetry", true.into())]))))
        .await
        .unwrap_or_else(|e| panic!("no WebGPU runtime (is --enable-unsafe-webgpu set?): {e:?}"));
    let ids: Vec<String> = (0..3).map(|k| format!("web-fuse-{k}")).collect();
    for (k, id) in ids.iter().enumerate() {
        register(id, k as i32);
        let options = object(&[("autoActivate", true.into()), ("queueSize", 1024.into())]);
        invoke(&rt, "launch", &[id.as_str().into(), JsValue::NULL, options]).await.unwrap();
    }
    for pair in ids.windows(2) {
        invoke(&rt, "connect", &[pair[0].as_str().into(), pair[1].as_str().into()]).await.unwrap();
    }
    let (first, last) = (ids[0].as_str(), ids[2].as_str());

    // Until the module has compiled, the chain runs ring to ring; the answers are the same.
    let mut sent = 0;
    while ids.iter().any(|id| fused(&rt, id) == 0.0) {
        assert!(sent < 5000, "the chain never ran fused");
        assert_eq!(round_trip(&rt, first, last, sent).await, expected(sent, 3));
        sent += 1;
    }

    // The next round trip runs on the commands encoded while the device ran the fused tick
    // before (see `backend::gpu::ahead`): every stage counts it.
    let ahead = |id: &str| num(&telemetry(&rt, id), "dispatchesEncodedAhead");
    let before: Vec<f64> = ids.iter().map(|id| ahead(id)).collect();
    assert_eq!(round_trip(&rt, first, last, sent).await, expected(sent, 3));
    sent += 1;
    for (id, before) in ids.iter().zip(before) {
        assert_eq!(ahead(id) - before, 1.0, "{id}: one fused tick on commands encoded ahead");
    }

    // A stream, in order, with the middle stage paused and resumed halfway.
    let values: Vec<i32> = (0..2000).map(|i| i * 5 - 3000).collect();
    let packed = js_sys::Int32Array::from(&values[..1000]);
    invoke(&rt, "sendBatch", &[first.into(), packed.into(), timeout(10_000)]).await.unwrap();
    invoke(&rt, "deactivate", &[ids[1].as_str().into()]).await.unwrap();
    let packed = js_sys::Int32Array::from(&values[1000..]);
    invoke(&rt, "sendBatch", &[first.into(), packed.into(), timeout(10_000)]).await.unwrap();
    invoke(&rt, "reactivate", &[ids[1].as_str().into()]).await.unwrap();
    let mut answers: Vec<i32> = Vec::new();
    while answers.len() < values.len() {
        let options = object(&[("max", 2000.into()), ("timeout", 10_000.into()), ("packed", true.into())]);
        let bytes = invoke(&rt, "receiveBatch", &[last.into(), options]).await.unwrap();
        answers.extend(bytemuck::pod_collect_to_vec::<u8, i32>(&js_sys::Uint8Array::new(&bytes).to_vec()));
    }
    assert_eq!(answers, values.iter().map(|&v| expected(v, 3)).collect::<Vec<_>>());

    // Fused again after the pause, and every stage counted every message.
    let before: Vec<f64> = ids.iter().map(|id| fused(&rt, id)).collect();
    let mut again = 0;
    while ids.iter().zip(&before).any(|(id, b)| fused(&rt, id) <= *b) {
        assert!(again < 5000, "the chain never fused again");
        assert_eq!(round_trip(&rt, first, last, again).await, expected(again, 3));
        again += 1;
    }
    for id in &ids {
        let t = telemetry(&rt, id);
        assert_eq!(num(&t, "messagesProcessed") as i32, sent + 2000 + again, "{id}");
        assert!(get(&t, "fusedDispatches").as_f64().unwrap() > 0.0);
    }
    invoke(&rt, "dispose", &[]).await.unwrap();
}

//! Grouped dispatches in the browser (headless Chromium, SwiftShader WebGPU), through the
//! JavaScript surface: eight kernels launched from one handler, each sent a small batch per
//! round, run as one dispatch once the grouped module has compiled (asynchronously, on the
//! page's event loop); every answer stays right and in order, and `groupedDispatches` counts
//! the grouped runs.
#![cfg(target_arch = "wasm32")]

use ringkernel_web::wasm::{define_message, ring_kernel, JsRuntime};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

mod common;

use common::web::{get, invoke, js, num, object, timeout};

wasm_bindgen_test_configure!(run_in_browser);

const KERNELS: i32 = 8;

fn register(id: &str) {
    let request = define_message("GroupIn".into(), object(&[("value", "i32".into())])).unwrap();
    let response = define_message("GroupOut".into(), object(&[("value", "i32".into())])).unwrap();
    let wgsl = "fn handle(msg: GroupIn) -> GroupOut { return GroupOut(msg.value * 3 + 1); }";
    ring_kernel(object(&[("id", id.into()), ("input", request), ("output", response), ("wgsl", wgsl.into())])).unwrap();
}

fn telemetry(rt: &JsValue, id: &str) -> JsValue {
    let get_telemetry = js_sys::Function::from(get(rt, "getTelemetry"));
    get_telemetry.call1(rt, &id.into()).unwrap()
}

/// Kernel `k`'s batch in round `round`: 1 to 5 values.
fn batch(k: i32, round: i32) -> Vec<i32> {
    (0..1 + (k + round) % 5).map(|j| k * 100_000 + round * 10 + j).collect()
}

#[wasm_bindgen_test]
async fn copies_of_one_handler_run_grouped_and_answer_in_order() {
    let rt = js(JsRuntime::create(Some(object(&[("enableTelemetry", true.into())]))))
        .await
        .unwrap_or_else(|e| panic!("no WebGPU runtime (is --enable-unsafe-webgpu set?): {e:?}"));
    let ids: Vec<String> = (0..KERNELS).map(|k| format!("web-group-{k}")).collect();
    for id in &ids {
        register(id);
        let options = object(&[("autoActivate", true.into()), ("queueSize", 64.into())]);
        invoke(&rt, "launch", &[id.as_str().into(), JsValue::NULL, options]).await.unwrap();
    }
    let grouped = |id: &str| num(&telemetry(&rt, id), "groupedDispatches");
    let mut sent = vec![0; ids.len()];
    let mut round = 0;
    // Until the module has compiled, each kernel runs a dispatch of its own; the answers are
    // the same either way. Then twenty rounds more.
    let mut after = 0;
    while after < 20 {
        assert!(round < 2000, "the copies never ran grouped");
        // The sends go out together, as a page sending to many kernels would, so they land
        // before the next tick; awaiting each in turn would let a tick run between them.
        let rt = &rt;
        let sends = ids.iter().enumerate().map(|(k, id)| {
            let packed = js_sys::Int32Array::from(&batch(k as i32, round)[..]);
            sent[k] += batch(k as i32, round).len();
            async move { invoke(rt, "sendBatch", &[id.as_str().into(), packed.into(), timeout(10_000)]).await }
        });
        for sent in futures_util::future::join_all(sends.collect::<Vec<_>>()).await {
            sent.unwrap();
        }
        for (k, id) in ids.iter().enumerate() {
            let want: Vec<i32> = batch(k as i32, round).iter().map(|v| v * 3 + 1).collect();
            let mut answers: Vec<i32> = Vec::new();
            while answers.len() < want.len() {
                let options = object(&[("max", 64.into()), ("timeout", 10_000.into()), ("packed", true.into())]);
                let bytes = invoke(rt, "receiveBatch", &[id.as_str().into(), options]).await.unwrap();
                answers.extend(bytemuck::pod_collect_to_vec::<u8, i32>(&js_sys::Uint8Array::new(&bytes).to_vec()));
            }
            assert_eq!(answers, want, "{id}, round {round}");
        }
        round += 1;
        if ids.iter().all(|id| grouped(id) > 0.0) {
            after += 1;
        }
    }
    for (id, sent) in ids.iter().zip(&sent) {
        let t = telemetry(&rt, id);
        assert_eq!(num(&t, "messagesProcessed") as usize, *sent, "{id}");
        assert!(num(&t, "groupedDispatches") > 0.0, "{id}");
    }
    invoke(&rt, "dispose", &[]).await.unwrap();
}

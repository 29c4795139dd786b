//! Fused pipelines in the browser (headless Chromium, SwiftShader WebGPU), through the JavaScript
//! surface: three connected stages, whose WGSL all declare the same helper and struct, run as one
//! dispatch once their module has compiled (asynchronously, on the page's event loop); answers
//! stay right and in order, `fusedDispatches` counts the fused runs, and pausing the middle stage
//! falls back to the ring-to-ring path with nothing lost. A seeded mix of round trips, batches and
//! pauses on a chain and a lone kernel checks the commands encoded ahead for round trips.
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

/// A runtime with telemetry and three connected stages `{prefix}-0` to `{prefix}-2` (queues of
/// 1,024, active), sent round trips until the chain runs fused. Returns the runtime, the stages'
/// ids and how many round trips that took.
async fn fused_chain(prefix: &str) -> (JsValue, Vec<String>, i32) {
    let rt = js(JsRuntime::create(Some(object(&[("enableTelemetry", true.into())]))))
        .await
        .unwrap_or_else(|e| panic!("no WebGPU runtime (is --enable-unsafe-webgpu set?): {e:?}"));
    let ids: Vec<String> = (0..3).map(|k| format!("{prefix}-{k}")).collect();
    for (k, id) in ids.iter().enumerate() {
        register(id, k as i32);
        let options = object(&[("autoActivate", true.into()), ("queueSize", 1024.into())]);
        invoke(&rt, "launch", &[id.as_str().into(), JsValue::NULL, options]).await.unwrap();
    }
    for pair in ids.windows(2) {
        invoke(&rt, "connect", &[pair[0].as_str().into(), pair[1].as_str().into()]).await.unwrap();
    }
    // Until the module has compiled, the chain runs ring to ring; the answers are the same.
    let mut sent = 0;
    while ids.iter().any(|id| fused(&rt, id) == 0.0) {
        assert!(sent < 5000, "the chain never ran fused");
        assert_eq!(round_trip(&rt, &ids[0], &ids[2], sent).await, expected(sent, 3));
        sent += 1;
    }
    (rt, ids, sent)
}

/// Receives `n` packed answers from `last`, in the order they come.
async fn receive_packed(rt: &JsValue, last: &str, n: usize) -> Vec<i32> {
    let mut answers: Vec<i32> = Vec::new();
    while answers.len() < n {
        let max = (n - answers.len()) as u32;
        let options = object(&[("max", max.into()), ("timeout", 10_000.into()), ("packed", true.into())]);
        let bytes = invoke(rt, "receiveBatch", &[last.into(), options]).await.unwrap();
        answers.extend(bytemuck::pod_collect_to_vec::<u8, i32>(&js_sys::Uint8Array::new(&bytes).to_vec()));
    }
    answers
}

#[wasm_bindgen_test]
async fn three_connected_stages_run_fused_and_answer_in_order() {
    let (rt, ids, mut sent) = fused_chain("web-fuse").await;
    let (first, last) = (ids[0].as_str(), ids[2].as_str());

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
    let answers = receive_packed(&rt, last, values.len()).await;
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

/// A small xorshift generator: the schedule below is the same in every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Sends `values` to `first` in one batch and receives as many answers from `last`.
async fn batch(rt: &JsValue, first: &str, last: &str, values: &[i32]) -> Vec<i32> {
    let packed = js_sys::Int32Array::from(values);
    let sent = invoke(rt, "sendBatch", &[first.into(), packed.into(), timeout(10_000)]).await.unwrap();
    assert_eq!(sent.as_f64(), Some(values.len() as f64));
    receive_packed(rt, last, values.len()).await
}

/// A seeded mix of round trips, batches of 1 to 40 messages (around the 16 that commands
/// encoded ahead take, see `backend::gpu::ahead`), batches of thousands that make the readback
/// buffer grow, and pauses of the chain's middle stage and of a lone kernel, on a fused chain of
/// three stages and a kernel on its own: every answer is right and in order, every message is
/// counted by every stage it ran through, and both the chain and the lone kernel ran ticks on
/// commands encoded ahead.
#[wasm_bindgen_test]
async fn a_seeded_mix_of_round_trips_batches_and_pauses_answers_in_order() {
    let (rt, ids, mut through_chain) = fused_chain("mix").await;
    register("mix-lone", 0);
    let options = object(&[("autoActivate", true.into()), ("queueSize", 8192.into())]);
    invoke(&rt, "launch", &["mix-lone".into(), JsValue::NULL, options]).await.unwrap();
    let (first, middle, last, lone) = (ids[0].as_str(), ids[1].as_str(), ids[2].as_str(), "mix-lone");
    let mut through_lone = 0;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for op in 0..200 {
        let v = rng.below(20_000) as i32 - 10_000;
        match rng.below(20) {
            0..=7 => {
                assert_eq!(round_trip(&rt, first, last, v).await, expected(v, 3), "op {op}: chain round trip");
                through_chain += 1;
            }
            8..=11 => {
                assert_eq!(round_trip(&rt, lone, lone, v).await, expected(v, 1), "op {op}: lone round trip");
                through_lone += 1;
            }
            12..=14 => {
                let values: Vec<i32> = (0..1 + rng.below(40) as i32).map(|i| v + i).collect();
                let want: Vec<i32> = values.iter().map(|&x| expected(x, 3)).collect();
                assert_eq!(batch(&rt, first, last, &values).await, want, "op {op}: chain batch");
                through_chain += values.len() as i32;
            }
            15 | 16 => {
                // Now and then thousands, which make the readback buffer grow.
                let n = if rng.below(4) == 0 { 1000 + rng.below(5000) } else { 1 + rng.below(40) };
                let values: Vec<i32> = (0..n as i32).map(|i| v + i).collect();
                let want: Vec<i32> = values.iter().map(|&x| expected(x, 1)).collect();
                assert_eq!(batch(&rt, lone, lone, &values).await, want, "op {op}: lone batch of {n}");
                through_lone += values.len() as i32;
            }
            17 | 18 => {
                // The chain runs ring to ring while its middle stage is paused, then fuses again.
                let values: Vec<i32> = (0..1 + rng.below(20) as i32).map(|i| v - i).collect();
                let packed = js_sys::Int32Array::from(values.as_slice());
                invoke(&rt, "deactivate", &[middle.into()]).await.unwrap();
                invoke(&rt, "sendBatch", &[first.into(), packed.into(), timeout(10_000)]).await.unwrap();
                invoke(&rt, "reactivate", &[middle.into()]).await.unwrap();
                let want: Vec<i32> = values.iter().map(|&x| expected(x, 3)).collect();
                let answers = receive_packed(&rt, last, values.len()).await;
                assert_eq!(answers, want, "op {op}: a batch past a paused middle stage");
                through_chain += values.len() as i32;
            }
            _ => {
                invoke(&rt, "deactivate", &[lone.into()]).await.unwrap();
                invoke(&rt, "reactivate", &[lone.into()]).await.unwrap();
                assert_eq!(round_trip(&rt, lone, lone, v).await, expected(v, 1), "op {op}: after a pause");
                through_lone += 1;
            }
        }
    }
    for (id, through) in ids.iter().map(|id| (id.as_str(), through_chain)).chain([(lone, through_lone)]) {
        let t = telemetry(&rt, id);
        assert_eq!(num(&t, "messagesProcessed") as i32, through, "{id}");
        assert!(num(&t, "dispatchesEncodedAhead") > 0.0, "{id} never ran on commands encoded ahead");
    }
    invoke(&rt, "dispose", &[]).await.unwrap();
}

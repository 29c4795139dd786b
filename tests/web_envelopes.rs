//! Envelopes in the browser, through `RingKernelRuntime` as JavaScript calls it
//! (`sendEnvelope`, `receiveEnvelope`, `currentTimestamp`), on WebGPU and on the cpu backend:
//! the header a message was sent with, the answer's header naming it (also at the end of a
//! 3-stage pipeline), plain answers' headers, bad options refused as `TypeError` or
//! `RangeError` and malformed messages as `MessageFormatError` by their field, nothing queued.
#![cfg(target_arch = "wasm32")]

use ringkernel_web::wasm::JsRuntime;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

mod common;

use common::web::{call, error_name, get, invoke, js, num, object, register_linear, timeout};

wasm_bindgen_test_configure!(run_in_browser);

async fn create(backend: &str) -> JsValue {
    js(JsRuntime::create(Some(object(&[("backend", backend.into())])))).await.unwrap_or_else(|e| panic!("{e:?}"))
}

fn value(v: i32) -> JsValue {
    object(&[("value", v.into())])
}

/// `(physicalMs, logical)` of a timestamp object, checking it has those two keys only.
fn stamp(timestamp: &JsValue) -> (f64, f64) {
    let keys: Vec<String> = js_sys::Object::keys(timestamp.unchecked_ref::<js_sys::Object>())
        .iter()
        .filter_map(|k| k.as_string())
        .collect();
    assert_eq!(keys, ["physicalMs", "logical"]);
    (num(timestamp, "physicalMs"), num(timestamp, "logical"))
}

fn nullable_num(target: &JsValue, key: &str) -> Option<f64> {
    let v = get(target, key);
    (!v.is_null()).then(|| v.as_f64().unwrap_or_else(|| panic!("{key} is a number or null")))
}

fn nullable_str(target: &JsValue, key: &str) -> Option<String> {
    let v = get(target, key);
    (!v.is_null()).then(|| v.as_string().unwrap_or_else(|| panic!("{key} is a string or null")))
}

/// Checks an answer's `envelope` against the header its request was sent with (`None`: a plain
/// message), answered by `kernel`; returns the answer's timestamp.
fn check_answer(answer: &JsValue, sent: Option<&JsValue>, kernel: &str) -> (f64, f64) {
    let envelope = get(answer, "envelope");
    assert_eq!(nullable_str(&envelope, "source").as_deref(), Some(kernel));
    assert_eq!(nullable_str(&envelope, "destination"), None, "answers go to the host");
    let at = stamp(&get(&envelope, "timestamp"));
    match sent {
        Some(sent) => {
            assert_eq!(nullable_num(&envelope, "correlationId"), Some(num(sent, "messageId")));
            assert_eq!(num(&envelope, "priority"), num(sent, "priority"));
            assert!(at > stamp(&get(sent, "timestamp")), "stamped after its request");
        }
        None => assert_eq!((nullable_num(&envelope, "correlationId"), num(&envelope, "priority")), (None, 0.0)),
    }
    assert!(num(&envelope, "messageId") > 0.0);
    at
}

#[wasm_bindgen_test]
async fn envelopes_through_javascript_on_webgpu_and_the_cpu_backend() {
    for backend in ["webgpu", "cpu"] {
        let rt = create(backend).await;
        let id = format!("web-env-{backend}");
        register_linear(&id, 2, 0);
        call(&rt, "launch", &[id.clone().into()]).await;
        call(&rt, "activate", &[id.clone().into()]).await;

        let before = stamp(&call(&rt, "currentTimestamp", &[]).await);
        let options = object(&[("priority", 3.into()), ("correlationId", 77.into())]);
        let sent = call(&rt, "sendEnvelope", &[id.clone().into(), value(21), options]).await;
        assert_eq!(nullable_str(&sent, "destination").as_deref(), Some(id.as_str()), "{backend}");
        assert_eq!((nullable_str(&sent, "source"), nullable_num(&sent, "correlationId")), (None, Some(77.0)));
        assert!(stamp(&get(&sent, "timestamp")) > before);
        call(&rt, "send", &[id.clone().into(), value(5)]).await;
        let answer = call(&rt, "receiveEnvelope", &[id.clone().into(), timeout(20_000)]).await;
        assert_eq!(num(&get(&answer, "message"), "result"), 42.0);
        let first = check_answer(&answer, Some(&sent), &id);
        let plain = call(&rt, "receiveEnvelope", &[id.clone().into(), timeout(20_000)]).await;
        assert_eq!(num(&get(&plain, "message"), "result"), 10.0);
        assert!(check_answer(&plain, None, &id) > first);

        // A timestamp from elsewhere moves the clock past it.
        let ahead = object(&[("physicalMs", (before.0 + 60_000.0).into()), ("logical", 4.into())]);
        let options = object(&[("timestamp", ahead), ("source", "elsewhere".into())]);
        let sent = call(&rt, "sendEnvelope", &[id.clone().into(), value(1), options]).await;
        assert!(stamp(&get(&sent, "timestamp")) > (before.0 + 60_000.0, 4.0));
        let answer = call(&rt, "receiveEnvelope", &[id.clone().into(), timeout(20_000)]).await;
        assert_eq!(nullable_str(&get(&answer, "envelope"), "destination").as_deref(), Some("elsewhere"));

        // Bad options: refused by name, nothing queued.
        for (options, name) in [
            (object(&[("priorty", 1.into())]), "TypeError"),
            (object(&[("priority", 256.into())]), "RangeError"),
            (object(&[("priority", "high".into())]), "TypeError"),
            (object(&[("correlationId", 1.5.into())]), "RangeError"),
            (object(&[("correlationId", js_sys::BigInt::from(1u32).into())]), "TypeError"),
            (object(&[("source", 5.into())]), "TypeError"),
            (object(&[("timestamp", object(&[("physicalMs", 1.into()), ("tick", 0.into())]))]), "TypeError"),
            (object(&[("timeout", (-1).into())]), "RangeError"),
            ("fast".into(), "TypeError"),
        ] {
            let refused = invoke(&rt, "sendEnvelope", &[id.clone().into(), value(1), options]).await.unwrap_err();
            assert_eq!(error_name(&refused).0, name, "{backend}: {:?}", error_name(&refused));
        }
        // Malformed messages: refused by their field path, as `send` refuses them, nothing queued.
        let fraction = object(&[("value", 1.5.into())]);
        let extra = object(&[("value", 1.into()), ("valeu", 2.into())]);
        for (message, field) in [(fraction, "value"), (extra, "valeu")] {
            let refused = invoke(&rt, "sendEnvelope", &[id.clone().into(), message]).await.unwrap_err();
            assert_eq!(error_name(&refused).0, "MessageFormatError", "{backend}: {:?}", error_name(&refused));
            assert_eq!(get(&refused, "field").as_string().as_deref(), Some(field), "{backend}");
        }
        let refused = invoke(&rt, "sendEnvelope", &["nope".into(), value(1)]).await.unwrap_err();
        assert_eq!(error_name(&refused).0, "KernelNotFoundError");
        let refused = invoke(&rt, "receiveEnvelope", &[id.clone().into(), object(&[("max", 1.into())])]).await;
        assert_eq!(error_name(&refused.unwrap_err()).0, "TypeError");
        let empty = invoke(&rt, "receiveEnvelope", &[id.clone().into(), timeout(50)]).await.unwrap_err();
        assert_eq!(error_name(&empty).0, "TimeoutError", "nothing was queued by the refused sends");
        call(&rt, "dispose", &[]).await;
    }
}

#[wasm_bindgen_test]
async fn an_envelope_follows_its_message_through_a_three_stage_pipeline() {
    for backend in ["webgpu", "cpu"] {
        let rt = create(backend).await;
        let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| format!("web-env-pipe-{backend}-{s}")).collect();
        for (id, (mul, add)) in ids.iter().zip([(1, 1), (2, 0), (1, 3)]) {
            register_linear(id, mul, add);
            call(&rt, "launch", &[id.clone().into()]).await;
            call(&rt, "activate", &[id.clone().into()]).await;
        }
        call(&rt, "connect", &[ids[0].clone().into(), ids[1].clone().into()]).await;
        call(&rt, "connect", &[ids[1].clone().into(), ids[2].clone().into()]).await;
        let mut sent = Vec::new();
        for v in 0..30 {
            sent.push(if v % 3 == 0 {
                call(&rt, "send", &[ids[0].clone().into(), value(v)]).await;
                None
            } else {
                let options = object(&[("priority", (v % 7).into())]);
                Some(call(&rt, "sendEnvelope", &[ids[0].clone().into(), value(v), options]).await)
            });
        }
        let mut last = (0.0, 0.0);
        for (v, sent) in sent.iter().enumerate() {
            let answer = call(&rt, "receiveEnvelope", &[ids[2].clone().into(), timeout(20_000)]).await;
            assert_eq!(num(&get(&answer, "message"), "result"), ((v as f64 + 1.0) * 2.0 + 3.0), "{backend}");
            let at = check_answer(&answer, sent.as_ref(), &ids[2]);
            assert!(at > last);
            last = at;
        }
        call(&rt, "dispose", &[]).await;
    }
}

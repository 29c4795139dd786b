//! The operations layer in the browser, through `RingKernelRuntime` as JavaScript calls it: the
//! GPU memory dashboard (`memory()`, `memoryPressure`, memory alerts) and the degradation
//! manager (`degradationLevel`, `degradationStatus()`, `OverloadedError`), on WebGPU
//! (SwiftShader) and on the cpu backend (JavaScript handlers).
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Object};
use ringkernel_web::wasm::{define_message, JsRuntime};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

mod common;

use common::web::{
    array, call, get, invoke, js, js_function, name_of, num, object, register_linear, sleep_ms, timeout,
};

wasm_bindgen_test_configure!(run_in_browser);

/// `RingKernelRuntime.create(options)`, as JavaScript calls it.
async fn create(options: JsValue) -> JsValue {
    js(JsRuntime::create(Some(options))).await.unwrap_or_else(|e| panic!("create: {e:?}"))
}

fn sum(values: &JsValue) -> f64 {
    Object::values(values.unchecked_ref::<Object>()).iter().map(|v| v.as_f64().unwrap()).sum()
}

/// Every purpose's bytes, summed over the kernels.
fn kernels_total(report: &JsValue) -> f64 {
    Object::values(get(report, "byKernel").unchecked_ref::<Object>()).iter().map(|k| sum(&k)).sum()
}

#[wasm_bindgen_test]
async fn memory_by_purpose_pressure_and_alerts_through_javascript() {
    for backend in ["webgpu", "cpu"] {
        let state = object(&[("length", 64.into())]);
        // A probe runtime measures one kernel with state; the budget fits a little under two.
        let probe = create(object(&[("backend", backend.into())])).await;
        let stateful = |id: &str| {
            let request = define_message("Request".into(), object(&[("value", "i32".into())])).unwrap();
            let response = define_message("Response".into(), object(&[("result", "i32".into())])).unwrap();
            object(&[
                ("id", id.into()),
                ("input", request),
                ("output", response),
                ("state", state.clone()),
                ("wgsl", "fn handle(msg: Request) -> Response { return Response(msg.value); }".into()),
                ("handler", js_function("m", "return { result: m.value };").into()),
            ])
        };
        let queue = object(&[("queueSize", 16.into())]);
        call(&probe, "launch", &["p".into(), stateful("p"), queue.clone()]).await;
        let one = sum(&get(&get(&call(&probe, "memory", &[]).await, "byKernel"), "p"));
        assert!(one >= 256.0, "{backend}: the state alone is 256 bytes, got {one}");
        let budget = (one * 1.75).floor();

        let rt = create(object(&[("backend", backend.into()), ("memoryBudget", budget.into())])).await;
        let heard = Array::new();
        let into = heard.clone();
        let listener = Closure::<dyn Fn(JsValue)>::new(move |event: JsValue| {
            into.push(&event);
        });
        let watch = call(&rt, "onMemoryAlert", &[0.9.into(), listener.as_ref().clone()]).await;
        call(&rt, "launch", &["a".into(), stateful("a"), queue.clone()]).await;
        let pressure = get(&rt, "memoryPressure").as_f64().unwrap();
        assert!(pressure > 0.5 && pressure < 0.9, "{backend}: one kernel makes {pressure}");
        call(&rt, "launch", &["b".into(), stateful("b"), queue.clone()]).await;
        assert_eq!(get(&rt, "memoryPressure").as_f64(), Some(1.0), "{backend}: over the budget reads 1");
        for _ in 0..3 {
            call(&rt, "memory", &[]).await;
        }
        assert_eq!(heard.length(), 1, "{backend}: one crossing, one alert");
        // A watch registered with pressure above it already hears "high" once onMemoryAlert has
        // returned its id, never inside the call.
        let late = Array::new();
        let into = late.clone();
        let late_listener = Closure::<dyn Fn(JsValue)>::new(move |event: JsValue| {
            into.push(&event);
        });
        call(&rt, "onMemoryAlert", &[0.5.into(), late_listener.as_ref().clone()]).await;
        assert_eq!(late.length(), 0, "{backend}: not called back inside onMemoryAlert");
        sleep_ms(0).await;
        assert_eq!(late.length(), 1, "{backend}: called back right after it");
        assert_eq!(get(&late.get(0), "alert").as_string().as_deref(), Some("high"));
        let event = heard.get(0);
        assert_eq!(get(&event, "alert").as_string().as_deref(), Some("high"));
        assert_eq!(num(&event, "threshold"), 0.9);
        assert_eq!(num(&event, "budgetBytes"), budget);

        // The report adds up: by kernel, by purpose, and (on WebGPU) to the buffer statistics
        // and each kernel's telemetry.
        let report = call(&rt, "memory", &[]).await;
        let summary = call(&rt, "getSummary", &[]).await;
        assert_eq!(num(&report, "usedBytes"), sum(&get(&report, "byPurpose")));
        assert_eq!(num(&get(&get(&report, "byKernel"), "a"), "state"), 256.0);
        assert_eq!(num(&report, "pressure"), 1.0);
        let readback = num(&get(&report, "byPurpose"), "readback");
        assert_eq!(kernels_total(&report) + readback, num(&report, "usedBytes"), "{backend}");
        if backend == "webgpu" {
            assert_eq!(num(&report, "usedBytes"), num(&summary, "gpuBufferBytes"));
            let per_kernel = get(&summary, "perKernel");
            for id in ["a", "b"] {
                let telemetry = get(&per_kernel, id);
                assert_eq!(sum(&get(&get(&report, "byKernel"), id)), num(&telemetry, "gpuMemoryBytes"), "{id}");
            }
            assert!(num(&get(&report, "deviceLimits"), "maxBindingBytes") > 0.0);
        } else {
            assert!(get(&get(&report, "deviceLimits"), "maxBufferBytes").is_null());
        }
        assert_eq!(num(&get(&summary, "memory"), "usedBytes"), num(&report, "usedBytes"));
        let metrics = call(&rt, "metricsText", &[]).await.as_string().unwrap();
        assert!(metrics.contains("ringkernel_memory_bytes{kernel=\"a\",purpose=\"state\"} 256\n"), "{metrics}");
        assert!(metrics.contains("ringkernel_memory_pressure 1\n"), "{metrics}");

        // Back under: one "normal"; a manual trigger reaches the callback; a removed watch is quiet.
        call(&rt, "terminate", &["b".into(), timeout(30_000)]).await;
        call(&rt, "remove", &["b".into()]).await;
        get(&rt, "memoryPressure");
        assert_eq!(heard.length(), 2, "{backend}");
        assert_eq!(get(&heard.get(1), "alert").as_string().as_deref(), Some("normal"));
        call(&rt, "triggerMemoryAlert", &["high".into()]).await;
        assert_eq!(heard.length(), 3);
        assert_eq!(call(&rt, "removeMemoryAlert", std::slice::from_ref(&watch)).await.as_bool(), Some(true));
        assert_eq!(call(&rt, "removeMemoryAlert", &[watch]).await.as_bool(), Some(false));
        call(&rt, "triggerMemoryAlert", &["high".into()]).await;
        assert_eq!(heard.length(), 3, "{backend}: removed");
        call(&rt, "dispose", &[]).await;
        call(&probe, "dispose", &[]).await;
    }
}

#[wasm_bindgen_test]
async fn degradation_levels_and_overloaded_errors_through_javascript() {
    register_linear("web-deg", 2, 0);
    for backend in ["webgpu", "cpu"] {
        let degradation = object(&[("cooldownMs", 5.into()), ("windowMs", 50.into())]);
        let rt = create(object(&[("backend", backend.into()), ("degradation", degradation)])).await;
        assert_eq!(get(&rt, "degradationLevel").as_string().as_deref(), Some("normal"));
        // Active, its one-answer output queue full of the primer's answer and nobody receiving:
        // what is sent waits in its input queue (a paused kernel's queue would be no load).
        let low_options = object(&[
            ("inputQueueSize", 10.into()),
            ("outputQueueSize", 1.into()),
            ("priority", (-1).into()),
            ("autoActivate", true.into()),
        ]);
        let low = call(&rt, "launch", &["web-deg".into(), JsValue::NULL, low_options]).await;
        call(&low, "send", &[object(&[("value", 100.into())])]).await;
        let mut polls = 0;
        while num(&call(&rt, "getTelemetry", &["web-deg".into()]).await, "messagesProcessed") < 1.0 {
            polls += 1;
            assert!(polls < 2_000, "{backend}: the primer was not processed");
            sleep_ms(5).await;
        }
        let values: Vec<JsValue> = (1..=9).map(|v| object(&[("value", v.into())])).collect();
        assert_eq!(call(&low, "sendBatch", &[array(&values)]).await.as_f64(), Some(9.0));
        assert_eq!(get(&rt, "degradationLevel").as_string().as_deref(), Some("severe"), "{backend}: 9 of 10");
        let status = call(&rt, "degradationStatus", &[]).await;
        assert_eq!(get(&status, "enabled").as_bool(), Some(true));
        assert_eq!(get(&status, "reason").as_string().as_deref(), Some("queueFill"));
        assert_eq!(num(&get(&status, "signals"), "queueFill"), 0.9);
        assert!(get(&get(&status, "signals"), "latencyRatio").is_null());

        let refused = invoke(&low, "trySend", &[object(&[("value", 50.into())])]).await.unwrap_err();
        assert_eq!(name_of(&refused), "OverloadedError", "{backend}");
        assert!(refused.is_instance_of::<js_sys::Error>());
        assert_eq!(get(&refused, "kernelId").as_string().as_deref(), Some("web-deg"));
        assert_eq!(get(&refused, "level").as_string().as_deref(), Some("severe"));
        assert_eq!(num(&refused, "priority"), -1.0);
        assert_eq!(num(&refused, "requiredPriority"), 0.0);
        let batch = invoke(&rt, "sendBatch", &["web-deg".into(), array(&values[..1])]).await.unwrap_err();
        assert_eq!(name_of(&batch), "OverloadedError");
        let summary = call(&rt, "getSummary", &[]).await;
        assert_eq!(get(&get(&summary, "degradation"), "level").as_string().as_deref(), Some("severe"));
        let sent = num(&get(&get(&summary, "perKernel"), "web-deg"), "messagesSent");
        assert_eq!(sent, 10.0, "the primer and nine: nothing refused went in");
        let metrics = call(&rt, "metricsText", &[]).await.as_string().unwrap();
        assert!(metrics.contains("ringkernel_degradation_level 3\n"), "{metrics}");

        // Serve the load: the primer's answer and the nine accepted come back in order, and the
        // level comes down.
        let mut answers = Vec::new();
        while answers.len() < 10 {
            let batch = call(&low, "receiveBatch", &[object(&[("max", 10.into()), ("timeout", 30_000.into())])]).await;
            answers.extend(Array::from(&batch).iter().map(|a| num(&a, "result") as i32));
        }
        assert_eq!(answers, [200].into_iter().chain((1..=9).map(|v| v * 2)).collect::<Vec<_>>(), "{backend}");
        let mut polls = 0;
        while get(&rt, "degradationLevel").as_string().as_deref() != Some("normal") {
            polls += 1;
            assert!(polls < 2_000, "{backend}: the level did not come down");
            sleep_ms(5).await;
        }
        call(&low, "send", &[object(&[("value", 21.into())])]).await;
        let answer = call(&low, "receive", &[timeout(30_000)]).await;
        assert_eq!(num(&answer, "result"), 42.0, "served again at normal");
        call(&rt, "dispose", &[]).await;
    }
}

//! Circuit breakers and the kernel watchdog in the browser, through the JavaScript surface as
//! JavaScript calls it (`runtime.circuitBreaker(id)`, `withCircuitBreaker`, `scanStaleKernels`,
//! the `circuitBreaker` and `watchdog` options of `RingKernelRuntime.create`), on the cpu
//! backend with JavaScript handlers and on WebGPU.
#![cfg(target_arch = "wasm32")]

mod common;

use common::web::{get, invoke, js, js_function, num, object, sleep_ms, timeout};
use ringkernel_web::wasm::{ring_kernel, JsRuntime};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

async fn create(options: JsValue) -> JsValue {
    js(JsRuntime::create(Some(options))).await.unwrap_or_else(|e| panic!("create: {e:?}"))
}

fn value(v: i32) -> JsValue {
    object(&[("value", v.into())])
}

fn int32s(values: &[i32]) -> JsValue {
    js_sys::Int32Array::from(values).into()
}

/// `circuitBreaker(id).state`.
async fn circuit(rt: &JsValue, id: &str) -> String {
    get(&invoke(rt, "circuitBreaker", &[id.into()]).await.unwrap(), "state").as_string().unwrap()
}

/// Polls `circuitBreaker(id).state` until it is `want` (the bound only keeps a broken runtime
/// from hanging the suite).
async fn wait_for_circuit(rt: &JsValue, id: &str, want: &str) {
    for _ in 0..1000 {
        if circuit(rt, id).await == want {
            return;
        }
        sleep_ms(10).await;
    }
    panic!("{id}'s circuit never became {want}");
}

fn telemetry(rt: &JsValue, id: &str) -> JsValue {
    let get_telemetry: js_sys::Function = get(rt, "getTelemetry").unchecked_into();
    get_telemetry.call1(rt, &id.into()).unwrap()
}

#[track_caller]
fn assert_named(result: Result<JsValue, JsValue>, name: &str) -> JsValue {
    let error = result.expect_err(&format!("expected {name}"));
    assert_eq!(get(&error, "name").as_string().as_deref(), Some(name), "{error:?}");
    error
}

/// Registers a cpu kernel whose JavaScript handler doubles, throws on negative values, and
/// spends `busy_ms` per message.
fn register_js_kernel(id: &str, busy_ms: u32) {
    let handler = js_function(
        "m",
        &format!(
            "const until = performance.now() + {busy_ms};
             while (performance.now() < until) {{}}
             if (m.value < 0) throw new RangeError('negative');
             return {{ result: m.value * 2 }};"
        ),
    );
    ring_kernel(object(&[
        ("id", id.into()),
        ("input", object(&[("name", "In".into()), ("fields", object(&[("value", "i32".into())]))])),
        ("output", object(&[("name", "Out".into()), ("fields", object(&[("result", "i32".into())]))])),
        ("handler", handler.into()),
    ]))
    .unwrap();
}

async fn start(rt: &JsValue, id: &str, options: JsValue) {
    invoke(rt, "launch", &[id.into(), JsValue::NULL, options]).await.unwrap();
    invoke(rt, "activate", &[id.into()]).await.unwrap();
}

async fn answers(rt: &JsValue, id: &str, count: usize) -> Vec<f64> {
    let mut out = Vec::new();
    while out.len() < count {
        let got = invoke(rt, "receive", &[id.into(), timeout(20_000)]).await.unwrap();
        out.push(num(&got, "result"));
    }
    out
}

#[wasm_bindgen_test]
async fn a_circuit_opens_on_handler_errors_refuses_by_name_and_closes_after_a_probe() {
    register_js_kernel("web-flaky", 0);
    let breaker = object(&[("failureThreshold", 2.into()), ("openMs", 300.into())]);
    let rt = create(object(&[("backend", "cpu".into()), ("circuitBreaker", breaker)])).await;
    start(&rt, "web-flaky", JsValue::UNDEFINED).await;
    assert_eq!(circuit(&rt, "web-flaky").await, "closed");
    invoke(&rt, "sendBatch", &[("web-flaky").into(), int32s(&[-1, -2])]).await.unwrap();
    wait_for_circuit(&rt, "web-flaky", "open").await;
    let status = invoke(&rt, "circuitBreaker", &["web-flaky".into()]).await.unwrap();
    assert_eq!(num(&status, "opened"), 1.0);
    assert!(num(&status, "retryAfterMs") > 0.0 && num(&status, "retryAfterMs") <= 300.0);
    let sent = num(&telemetry(&rt, "web-flaky"), "messagesSent");

    // Refused whole, by name, with nothing queued; the protected operation is not called.
    let error = assert_named(invoke(&rt, "send", &["web-flaky".into(), value(1)]).await, "CircuitOpenError");
    assert_eq!(get(&error, "kernelId").as_string().as_deref(), Some("web-flaky"));
    assert!(get(&error, "retryAfterMs").as_f64().is_some_and(|ms| ms <= 300.0));
    assert!(error.is_instance_of::<js_sys::Error>());
    assert_named(invoke(&rt, "sendBatch", &["web-flaky".into(), int32s(&[1, 2])]).await, "CircuitOpenError");
    assert_named(invoke(&rt, "call", &["web-flaky".into(), value(1), timeout(1000)]).await, "CircuitOpenError");
    let called = js_function("", "globalThis.__protectedCalls = (globalThis.__protectedCalls ?? 0) + 1; return 1;");
    let refused = invoke(&rt, "withCircuitBreaker", &["web-flaky".into(), called.clone().into()]).await;
    assert_named(refused, "CircuitOpenError");
    assert!(get(&js_sys::global(), "__protectedCalls").is_undefined(), "not called while open");
    let t = telemetry(&rt, "web-flaky");
    assert_eq!((num(&t, "messagesSent"), num(&t, "inputQueueDepth")), (sent, 0.0));
    assert_eq!(get(&t, "circuitState").as_string().as_deref(), Some("open"));
    let text = invoke(&rt, "metricsText", &[]).await.unwrap().as_string().unwrap();
    assert!(text.contains("ringkernel_circuit_state{kernel=\"web-flaky\",state=\"open\"} 1"), "{text}");

    // Half-open: the protected call is the probe; its success closes the circuit.
    wait_for_circuit(&rt, "web-flaky", "halfOpen").await;
    let probe = js_function("rt", "return rt.call('web-flaky', { value: 21 }, { timeout: 20000 });");
    let bound: JsValue = probe.bind1(&JsValue::NULL, &rt).into();
    let answer = invoke(&rt, "withCircuitBreaker", &["web-flaky".into(), bound]).await.unwrap();
    assert_eq!(num(&answer, "result"), 42.0);
    assert_eq!(circuit(&rt, "web-flaky").await, "closed");

    // A protected operation that rejects (or throws) counts as a failure.
    let failing = js_function("", "return Promise.reject(new TypeError('the caller failed'));");
    let throwing = js_function("", "throw new SyntaxError('the caller threw');");
    let first = invoke(&rt, "withCircuitBreaker", &["web-flaky".into(), failing.into()]).await;
    assert_named(first, "TypeError");
    let second = invoke(&rt, "withCircuitBreaker", &["web-flaky".into(), throwing.into()]).await;
    assert_named(second, "SyntaxError");
    assert_eq!(circuit(&rt, "web-flaky").await, "open");
    invoke(&rt, "dispose", &[]).await.unwrap();
}

#[wasm_bindgen_test]
async fn without_circuit_breaker_options_nothing_is_refused() {
    register_js_kernel("web-unguarded", 0);
    let rt = create(object(&[("backend", "cpu".into())])).await;
    start(&rt, "web-unguarded", JsValue::UNDEFINED).await;
    invoke(&rt, "sendBatch", &["web-unguarded".into(), int32s(&[-1, -2, -3, -4, -5, -6, -7])]).await.unwrap();
    let answer = invoke(&rt, "call", &["web-unguarded".into(), value(5), timeout(20_000)]).await.unwrap();
    assert_eq!(num(&answer, "result"), 10.0);
    assert_eq!(num(&telemetry(&rt, "web-unguarded"), "errors"), 7.0);
    let status = invoke(&rt, "circuitBreaker", &["web-unguarded".into()]).await.unwrap();
    assert_eq!(get(&status, "state").as_string().as_deref(), Some("closed"));
    assert!(get(&status, "retryAfterMs").is_null());
    invoke(&rt, "dispose", &[]).await.unwrap();
}

/// A doubler whose output queue holds two answers: given six messages and no receiver, it
/// answers two and then has input it cannot make progress on.
async fn start_stuck(rt: &JsValue, id: &str) {
    let options = object(&[("inputQueueSize", 16.into()), ("outputQueueSize", 2.into())]);
    invoke(rt, "launch", &[id.into(), JsValue::NULL, options]).await.unwrap();
    invoke(rt, "activate", &[id.into()]).await.unwrap();
    invoke(rt, "sendBatch", &[id.into(), int32s(&[1, 2, 3, 4, 5, 6])]).await.unwrap();
}

async fn scan(rt: &JsValue) -> Vec<JsValue> {
    js_sys::Array::from(&invoke(rt, "scanStaleKernels", &[]).await.unwrap()).to_vec()
}

#[wasm_bindgen_test]
async fn the_watchdog_finds_a_stalled_kernel_on_webgpu_and_deactivates_it_losing_nothing() {
    let watchdog = object(&[("heartbeatTimeoutMs", 200.into())]);
    let rt = create(object(&[("watchdog", watchdog)])).await;
    start_stuck(&rt, "doubler").await;
    assert!(scan(&rt).await.is_empty(), "not late yet");
    sleep_ms(400).await;
    let stale = scan(&rt).await;
    assert_eq!(stale.len(), 1);
    assert_eq!(get(&stale[0], "kernelId").as_string().as_deref(), Some("doubler"));
    assert_eq!((num(&stale[0], "inputDepth"), get(&stale[0], "action").as_string()), (4.0, Some("report".into())));
    assert!(num(&stale[0], "sinceProgressMs") >= 200.0);
    assert_eq!(get(&telemetry(&rt, "doubler"), "stale").as_bool(), Some(true));
    let text = invoke(&rt, "metricsText", &[]).await.unwrap().as_string().unwrap();
    assert!(
        text.contains("ringkernel_kernel_stale{kernel=\"doubler\"} 1") && text.contains("ringkernel_stale_kernels 1")
    );

    invoke(&rt, "setWatchdogAction", &["deactivate".into()]).await.unwrap();
    let stale = scan(&rt).await;
    assert_eq!(get(&stale[0], "action").as_string().as_deref(), Some("deactivate"));
    assert_eq!(invoke(&rt, "getState", &["doubler".into()]).await.unwrap().as_string().as_deref(), Some("deactivated"));
    invoke(&rt, "reactivate", &["doubler".into()]).await.unwrap();
    assert_eq!(answers(&rt, "doubler", 6).await, [2.0, 4.0, 6.0, 8.0, 10.0, 12.0], "every answer, in order");
    assert!(scan(&rt).await.is_empty());
    invoke(&rt, "dispose", &[]).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_slow_javascript_handler_under_max_batch_is_not_stale_and_a_stalled_one_is() {
    register_js_kernel("web-slow", 40);
    let watchdog = object(&[("heartbeatTimeoutMs", 250.into())]);
    let rt = create(object(&[("backend", "cpu".into()), ("watchdog", watchdog)])).await;
    start(&rt, "web-slow", object(&[("queueSize", 64.into()), ("maxBatch", 1.into())])).await;
    start_stuck(&rt, "doubler").await;
    invoke(&rt, "sendBatch", &["web-slow".into(), int32s(&(1..=20).collect::<Vec<_>>())]).await.unwrap();
    // 40 ms per message, one message per tick: 800 ms of work, a heartbeat every tick.
    let mut saw_stuck = false;
    while num(&telemetry(&rt, "web-slow"), "messagesProcessed") < 20.0 {
        let stale: Vec<String> = scan(&rt).await.iter().map(|k| get(k, "kernelId").as_string().unwrap()).collect();
        assert!(!stale.contains(&"web-slow".to_owned()), "a slow kernel that progresses is not stale");
        saw_stuck |= stale.contains(&"doubler".to_owned());
        sleep_ms(20).await;
    }
    sleep_ms(300).await;
    let stale: Vec<String> = scan(&rt).await.iter().map(|k| get(k, "kernelId").as_string().unwrap()).collect();
    assert_eq!(stale, ["doubler"], "only the stalled kernel (seen during the run: {saw_stuck})");
    invoke(&rt, "setHeartbeatTimeout", &[3_600_000.into()]).await.unwrap();
    assert!(scan(&rt).await.is_empty(), "a longer timeout forgives it");
    assert_eq!(answers(&rt, "doubler", 6).await, [2.0, 4.0, 6.0, 8.0, 10.0, 12.0]);
    invoke(&rt, "dispose", &[]).await.unwrap();
}

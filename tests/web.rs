//! Headless-browser tests (`wasm-pack test --headless --chrome`): the JavaScript surface on the
//! browser's WebGPU (SwiftShader in CI). Every call goes through the exported
//! `RingKernelRuntime` methods and every error is checked as JavaScript sees it (`name` and
//! properties). No adapter is a failure with the reason, never a skip.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Function, Object, Promise, Reflect};
use ringkernel_web::wasm::{define_message, managed_kernel, ring_kernel, JsRuntime};
use ringkernel_web::{BackendChoice, LaunchOptions, Runtime, RuntimeOptions};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

mod common;

use common::web::{array, get, invoke, js, name_of, num, object, sleep_ms, timeout};

wasm_bindgen_test_configure!(run_in_browser);

const NONE: JsValue = JsValue::UNDEFINED;

fn value(v: i32) -> JsValue {
    object(&[("value", v.into())])
}

/// Lets queued promise jobs run once.
async fn yield_now() {
    js(Promise::resolve(&NONE)).await.unwrap();
}

/// Asserts a rejected call is the named JS error carrying these properties.
#[track_caller]
fn assert_js_error(result: Result<JsValue, JsValue>, name: &str, props: &[(&str, &str)]) {
    let error = result.expect_err(&format!("expected {name}"));
    assert!(error.is_instance_of::<js_sys::Error>(), "errors are Error objects");
    let message = get(&error, "message").as_string().unwrap_or_default();
    assert_eq!(get(&error, "name").as_string().unwrap(), name, "{message}");
    for (key, expected) in props {
        assert_eq!(get(&error, key).as_string().as_deref(), Some(*expected), "{key} of {name}: {message}");
    }
}

async fn js_runtime() -> JsRuntime {
    js_runtime_with(RuntimeOptions::default()).await
}

async fn js_runtime_with(options: RuntimeOptions) -> JsRuntime {
    let runtime = Runtime::new(options)
        .await
        .unwrap_or_else(|e| panic!("WebGPU runtime could not start (is --enable-unsafe-webgpu set?): {e}"));
    JsRuntime::from_runtime(runtime)
}

fn state(rt: &JsRuntime, id: &str) -> String {
    rt.get_state(id.into()).unwrap()
}

/// Registers `id` as a user kernel that adds 1000 (the seeds' worker/processor kernels).
fn register_worker(id: &str) {
    let request = define_message("Request".into(), object(&[("value", "i32".into())])).unwrap();
    let response = define_message("Response".into(), object(&[("result", "i32".into())])).unwrap();
    let wgsl = "fn handle(msg: Request) -> Response { return Response(msg.value + 1000); }";
    ring_kernel(object(&[("id", id.into()), ("input", request), ("output", response), ("wgsl", wgsl.into())])).unwrap();
}

async fn receive_values(rt: &JsRuntime, id: &str, n: usize) -> Vec<i32> {
    let mut out = Vec::new();
    while out.len() < n {
        let options = object(&[("timeout", 20_000.into()), ("packed", true.into())]);
        let bytes = js(rt.receive_batch(id.into(), Some(options))).await.unwrap();
        let bytes = js_sys::Uint8Array::new(&bytes).to_vec();
        out.extend(bytemuck::pod_collect_to_vec::<u8, i32>(&bytes));
    }
    out
}

// ---- creation and the seeds' usage examples ----

#[wasm_bindgen_test]
async fn create_resolves_to_a_runtime_object() {
    let created =
        js(JsRuntime::create(Some(object(&[("enableTelemetry", true.into())])))).await.expect("create() on WebGPU");
    assert!(get(&created, "launch").is_function());
    // (`[Symbol.asyncDispose]` is the package entry's, tested in pkg-tests.)
    let dispose: Function = get(&created, "dispose").dyn_into().unwrap();
    js(dispose.call0(&created).unwrap().into()).await.unwrap();
    let launch: Function = get(&created, "launch").dyn_into().unwrap();
    let after = js(launch.call1(&created, &"doubler".into()).unwrap().into()).await;
    assert_js_error(after, "RuntimeDisposedError", &[]);
    let bad = js(JsRuntime::create(Some(object(&[("enableTelemetri", true.into())])))).await;
    assert_js_error(bad, "TypeError", &[]);
}

/// Calls `target[name](...args)` the way JavaScript does.
fn call_method(target: &JsValue, name: &str, args: &[JsValue]) -> JsValue {
    let method: Function = get(target, name).dyn_into().unwrap_or_else(|_| panic!("{name} is a method"));
    method.apply(target, &args.iter().collect::<Array>()).unwrap()
}

/// The seeds' first example, method by method as JavaScript calls it on the created object.
#[wasm_bindgen_test]
async fn seed_example_complete_lifecycle() {
    let runtime = js(JsRuntime::create(Some(object(&[("enableTelemetry", true.into())])))).await.unwrap();
    let run = |name: &str, args: &[JsValue]| js(call_method(&runtime, name, args).unchecked_into());
    run("launch", &["doubler".into()]).await.unwrap();
    run("activate", &["doubler".into()]).await.unwrap();
    run("send", &["doubler".into(), value(21)]).await.unwrap();
    let response = run("receive", &["doubler".into(), timeout(1000)]).await.unwrap();
    assert_eq!(num(&response, "result"), 42.0);
    let telemetry = call_method(&runtime, "getTelemetry", &["doubler".into()]);
    assert_eq!(num(&telemetry, "messagesProcessed"), 1.0);
    run("dispose", &[]).await.unwrap();
    assert_eq!(call_method(&runtime, "getState", &["doubler".into()]).as_string().unwrap(), "terminated");
}

#[wasm_bindgen_test]
async fn seed_example_multiple_kernels() {
    for id in ["processor1", "processor2", "aggregator"] {
        register_worker(id);
    }
    let rt = js_runtime().await;
    for id in ["processor1", "processor2", "aggregator"] {
        js(rt.launch(id.into(), None, None)).await.unwrap();
    }
    for id in rt.kernel_ids() {
        js(rt.activate(id.into())).await.unwrap();
    }
    assert_eq!(rt.active_kernels(), ["aggregator", "processor1", "processor2"]);
    let a = js(rt.call("processor1".into(), value(1), Some(timeout(10_000)))).await.unwrap();
    let b = js(rt.call("processor2".into(), value(2), Some(timeout(10_000)))).await.unwrap();
    let sum = (num(&a, "result") + num(&b, "result")) as i32;
    let total = js(rt.call("aggregator".into(), value(sum), Some(timeout(10_000)))).await.unwrap();
    assert_eq!(num(&total, "result"), 3003.0);
    js(rt.terminate_all(Some(timeout(5000)))).await.unwrap();
    assert!(rt.active_kernels().is_empty());
}

#[wasm_bindgen_test]
async fn seed_example_pause_and_resume() {
    register_worker("worker");
    let rt = js_runtime().await;
    js(rt.launch("worker".into(), None, None)).await.unwrap();
    js(rt.activate("worker".into())).await.unwrap();
    for v in 0..10 {
        js(rt.send("worker".into(), value(v), None)).await.unwrap();
    }
    js(rt.deactivate("worker".into())).await.unwrap();
    assert_eq!(state(&rt, "worker"), "deactivated");
    for v in 10..20 {
        js(rt.send("worker".into(), value(v), None)).await.unwrap();
    }
    js(rt.reactivate("worker".into())).await.unwrap();
    assert_eq!(state(&rt, "worker"), "active");
    assert_eq!(receive_values(&rt, "worker", 20).await, (1000..1020).collect::<Vec<_>>());
}

// ---- lifecycle ----

const ACTIONS: [&str; 5] = ["launch", "activate", "deactivate", "reactivate", "terminate"];

async fn apply(rt: &JsRuntime, id: &str, action: &str) -> Result<JsValue, JsValue> {
    js(match action {
        "launch" => rt.launch(id.into(), None, None),
        "activate" => rt.activate(id.into()),
        "deactivate" => rt.deactivate(id.into()),
        "reactivate" => rt.reactivate(id.into()),
        "terminate" => rt.terminate(id.into(), Some(timeout(10_000))),
        other => unreachable!("{other}"),
    })
    .await
}

/// The seeds' table as JS sees it: (from, action) → state after the call. A second launch of
/// a live id is always refused; terminate passes through `terminating` on its own, and a
/// terminate while one is under way waits with it.
fn expected(from: &str, action: &str) -> Option<&'static str> {
    match (from, action) {
        ("launched", "activate") => Some("active"),
        ("active", "deactivate") => Some("deactivated"),
        ("deactivated", "reactivate") => Some("active"),
        ("launched" | "active" | "deactivated" | "terminating", "terminate") => Some("terminated"),
        _ => None,
    }
}

/// All six states of a healthy device against every lifecycle call, on real kernels (`failed`
/// is in tests/web_recovery.rs). `created` is held by a launch that is still compiling,
/// `terminating` by a terminate that is still draining.
#[wasm_bindgen_test]
async fn lifecycle_matrix_through_the_js_api() {
    let rt = js_runtime().await;
    let states = ["created", "launched", "active", "deactivated", "terminating", "terminated"];
    let mut legal = 0;
    for from in states {
        for action in ACTIONS {
            let id = format!("m-{from}-{action}");
            register_worker(&id);
            let result = match from {
                "created" => {
                    let launch = js(rt.launch(id.clone().into(), None, None));
                    // Reserved when called, as a JavaScript async function's first steps run.
                    assert_eq!(state(&rt, &id), "created", "launch reserves the id at once");
                    yield_now().await;
                    assert_eq!(state(&rt, &id), "created", "still compiling");
                    let result = apply(&rt, &id, action).await;
                    launch.await.unwrap();
                    result
                }
                "terminating" => {
                    for step in ["launch", "activate", "deactivate"] {
                        apply(&rt, &id, step).await.unwrap();
                    }
                    js(rt.send(id.clone().into(), value(1), None)).await.unwrap();
                    let terminate = js(rt.terminate(id.clone().into(), Some(timeout(10_000))));
                    yield_now().await;
                    yield_now().await;
                    assert_eq!(state(&rt, &id), "terminating", "draining one queued message");
                    let result = apply(&rt, &id, action).await;
                    terminate.await.unwrap();
                    result
                }
                _ => {
                    let path: &[&str] = match from {
                        "launched" => &["launch"],
                        "active" => &["launch", "activate"],
                        "deactivated" => &["launch", "activate", "deactivate"],
                        _ => &["launch", "terminate"],
                    };
                    for step in path {
                        apply(&rt, &id, step).await.unwrap();
                    }
                    assert_eq!(state(&rt, &id), from);
                    apply(&rt, &id, action).await
                }
            };
            match expected(from, action) {
                Some(to) => {
                    result.unwrap_or_else(|e| panic!("{from} --{action}--> should work: {e:?}"));
                    assert_eq!(state(&rt, &id), to, "{from} --{action}-->");
                    legal += 1;
                }
                None => assert_js_error(
                    result,
                    "KernelStateError",
                    &[("kernelId", &id), ("state", from), ("action", action)],
                ),
            }
        }
    }
    assert_eq!(legal, 7, "every user-driven edge of the table, and a terminate joining one");
}

#[wasm_bindgen_test]
async fn terminated_ids_relaunch_only_after_remove_and_terminate_drains() {
    let rt = js_runtime().await;
    js(rt.launch("doubler".into(), None, Some(object(&[("queueSize", 2.into())])))).await.unwrap();
    js(rt.send_batch("doubler".into(), Array::of2(&value(1), &value(2)).into(), None)).await.unwrap();
    // Never activated, outputs beyond the queue bound: terminate still processes everything.
    js(rt.terminate("doubler".into(), Some(timeout(10_000)))).await.unwrap();
    assert_eq!(receive_values(&rt, "doubler", 2).await, [2, 4]);
    assert_js_error(apply(&rt, "doubler", "launch").await, "KernelStateError", &[("state", "terminated")]);
    rt.remove("doubler".into()).unwrap();
    js(rt.launch("doubler".into(), None, Some(object(&[("mode", "event-driven".into())])))).await.unwrap();
    let t = rt.get_telemetry("doubler".into()).unwrap();
    assert_eq!(get(&t, "mode").as_string().unwrap(), "event-driven");
    let bad = js(rt.launch("echo".into(), None, Some(object(&[("mode", "eager".into())])))).await;
    assert_js_error(bad, "TypeError", &[]);
    // Terminate past its timeout reports what was left.
    js(rt.send("doubler".into(), value(1), None)).await.unwrap();
    let late = js(rt.terminate("doubler".into(), Some(timeout(0)))).await;
    assert_eq!(num(late.as_ref().unwrap_err(), "unprocessed"), 1.0, "the error says how many were left");
    assert_js_error(late, "TimeoutError", &[("kernelId", "doubler")]);
    let t = rt.get_telemetry("doubler".into()).unwrap();
    assert_eq!(num(&t, "unprocessedAtTermination"), 1.0);
}

#[wasm_bindgen_test]
async fn managed_kernel_terminates_on_async_dispose() {
    let rt = js_runtime().await;
    let started = js(managed_kernel(&rt, "doubler".into(), None, None));
    assert_eq!(state(&rt, "doubler"), "created", "managedKernel reserves the id at once, as launch does");
    let kernel = started.await.unwrap();
    assert_eq!(get(&kernel, "id").as_string().unwrap(), "doubler");
    assert_eq!(state(&rt, "doubler"), "active");
    let answer = js(rt.call("doubler".into(), value(21), Some(timeout(10_000)))).await.unwrap();
    assert_eq!(num(&answer, "result"), 42.0);
    // What `await using` calls (the package entry installs it as `[Symbol.asyncDispose]`).
    let dispose: Function = get(&kernel, "terminate").dyn_into().unwrap();
    js(dispose.call0(&kernel).unwrap().into()).await.unwrap();
    assert_eq!(state(&rt, "doubler"), "terminated");
    // A second dispose (or an explicit terminate) is harmless.
    js(dispose.call0(&kernel).unwrap().into()).await.unwrap();
    let unknown = js(managed_kernel(&rt, "nope".into(), None, None)).await;
    assert_js_error(unknown, "KernelNotFoundError", &[("kernelId", "nope")]);
}

// ---- kernel handles: what launch resolves with ----

/// `handle.receiveBatch(...)` until `n` answers `{ result }` have come.
async fn receive_from(handle: &JsValue, n: usize) -> Vec<i32> {
    let mut out = Vec::new();
    while out.len() < n {
        let options = object(&[("max", ((n - out.len()) as u32).into()), ("timeout", 20_000.into())]);
        let answers: js_sys::Array = invoke(handle, "receiveBatch", &[options]).await.unwrap().dyn_into().unwrap();
        out.extend(answers.iter().map(|answer| num(&answer, "result") as i32));
    }
    out
}

fn text(target: &JsValue, key: &str) -> String {
    get(target, key).as_string().unwrap_or_else(|| panic!("{key} is not a string"))
}

/// A registered kernel's handle, as JavaScript gets it from `launch`, end to end: `trySend` up to
/// a full queue, `tryReceive` (null, then an answer), `sendBatch` (all, or `QueueFullError` with
/// `accepted`), `receive`, `receiveBatch`, `call`, `sendEnvelope`/`receiveEnvelope`,
/// `suspend`/`resume`, `status`, `metrics`, and
/// `wait` resolving when another handle (from `getKernel`) terminates the kernel.
#[wasm_bindgen_test]
async fn launch_resolves_with_a_handle_that_forwards_every_call() {
    register_worker("h-worker");
    let runtime = js(JsRuntime::create(None)).await.unwrap();
    let options = object(&[("queueSize", 4.into())]);
    let handle = invoke(&runtime, "launch", &["h-worker".into(), JsValue::NULL, options]).await.unwrap();
    assert_eq!((text(&handle, "id"), text(&handle, "state")), ("h-worker".into(), "launched".into()));
    let found = invoke(&runtime, "getKernel", &["h-worker".into()]).await.unwrap();
    assert_eq!(text(&found, "id"), "h-worker");
    assert!(invoke(&runtime, "getKernel", &["nope".into()]).await.unwrap().is_null(), "no such kernel: null");

    assert!(invoke(&handle, "tryReceive", &[]).await.unwrap().is_null(), "nothing waiting: null");
    for v in 1..=4 {
        invoke(&handle, "trySend", &[value(v)]).await.unwrap();
    }
    assert_js_error(invoke(&handle, "trySend", &[value(5)]).await, "QueueFullError", &[("kernelId", "h-worker")]);
    let refused = invoke(&handle, "sendBatch", &[array(&[value(5)]), timeout(0)]).await;
    assert_eq!(num(refused.as_ref().unwrap_err(), "accepted"), 0.0);
    assert_js_error(refused, "QueueFullError", &[("kernelId", "h-worker")]);
    let status = invoke(&handle, "status", &[]).await.unwrap();
    assert_eq!(
        (text(&status, "id"), text(&status, "state"), text(&status, "mode")),
        ("h-worker".into(), "launched".into(), "persistent".into())
    );
    assert_eq!((num(&status, "inputQueueDepth"), num(&status, "messagesProcessed")), (4.0, 0.0));

    invoke(&handle, "activate", &[]).await.unwrap();
    assert_eq!(text(&handle, "state"), "active");
    let first = loop {
        let answer = invoke(&handle, "tryReceive", &[]).await.unwrap();
        if !answer.is_null() {
            break answer;
        }
        sleep_ms(1).await;
    };
    assert_eq!(num(&first, "result"), 1001.0);
    assert_eq!(num(&invoke(&handle, "receive", &[timeout(20_000)]).await.unwrap(), "result"), 1002.0);
    assert_eq!(receive_from(&handle, 2).await, [1003, 1004]);

    // Suspended, the queue fills: a batch of six puts four in and says so.
    invoke(&handle, "suspend", &[]).await.unwrap();
    assert_eq!(text(&handle, "state"), "deactivated");
    let six: Vec<JsValue> = (11..=16).map(value).collect();
    let cut_short = invoke(&handle, "sendBatch", &[array(&six), timeout(0)]).await;
    assert_eq!(num(cut_short.as_ref().unwrap_err(), "accepted"), 4.0, "the first four went in");
    assert_js_error(cut_short, "QueueFullError", &[("kernelId", "h-worker")]);
    invoke(&handle, "resume", &[]).await.unwrap();
    assert_eq!(receive_from(&handle, 4).await, [1011, 1012, 1013, 1014]);
    let packed = js_sys::Int32Array::from([20, 21].as_slice());
    assert_eq!(invoke(&handle, "sendBatch", &[packed.into()]).await.unwrap().as_f64(), Some(2.0), "all of them");
    assert_eq!(receive_from(&handle, 2).await, [1020, 1021]);
    let answer = invoke(&handle, "call", &[value(5), timeout(20_000)]).await.unwrap();
    assert_eq!(num(&answer, "result"), 1005.0);
    // Envelopes: the header names the handle's kernel, and the answer's correlates with it.
    let header = invoke(&handle, "sendEnvelope", &[value(6), object(&[("priority", 7.into())])]).await.unwrap();
    assert_eq!((text(&header, "destination"), num(&header, "priority")), ("h-worker".into(), 7.0));
    let received = invoke(&handle, "receiveEnvelope", &[timeout(20_000)]).await.unwrap();
    assert_eq!(num(&get(&received, "message"), "result"), 1006.0);
    let envelope = get(&received, "envelope");
    assert_eq!((num(&envelope, "correlationId"), num(&envelope, "priority")), (num(&header, "messageId"), 7.0));
    assert_eq!(text(&envelope, "source"), "h-worker");

    let metrics = invoke(&handle, "metrics", &[]).await.unwrap();
    assert_eq!(text(&metrics, "kernelId"), "h-worker");
    // Three refusals: the full trySend, the batch with no room and the one cut short.
    for (key, want) in
        [("messagesSent", 12.0), ("messagesProcessed", 12.0), ("messagesReceived", 12.0), ("errors", 3.0)]
    {
        assert_eq!(num(&metrics, key), want, "{key}");
    }
    let status = invoke(&handle, "status", &[]).await.unwrap();
    assert_eq!((num(&status, "messagesProcessed"), num(&status, "outputQueueDepth")), (12.0, 0.0));
    assert!(num(&status, "uptimeMs") > 0.0);

    // wait() resolves when the kernel terminates, whoever terminates it.
    let waited = std::rc::Rc::new(std::cell::Cell::new(false));
    let waiting: Promise = call_method(&handle, "wait", &[]).unchecked_into();
    let flag = waited.clone();
    wasm_bindgen_futures::spawn_local(async move {
        js(waiting).await.unwrap();
        flag.set(true);
    });
    sleep_ms(20).await;
    assert!(!waited.get(), "wait() waits while the kernel runs");
    invoke(&found, "terminate", &[timeout(10_000)]).await.unwrap();
    for _ in 0..100 {
        if waited.get() {
            break;
        }
        sleep_ms(1).await;
    }
    assert!(waited.get(), "wait() resolved on terminate from another handle");
    assert_eq!(text(&handle, "state"), "terminated");
    invoke(&handle, "wait", &[]).await.expect("wait() on a terminated kernel resolves at once");
    assert_js_error(invoke(&handle, "send", &[value(1)]).await, "KernelStateError", &[("state", "terminated")]);
    assert_js_error(invoke(&handle, "tryReceive", &[]).await, "KernelStateError", &[("action", "receive")]);
    assert_js_error(invoke(&handle, "terminate", &[]).await, "KernelStateError", &[("action", "terminate")]);
    invoke(&runtime, "remove", &["h-worker".into()]).await.unwrap();
    assert_js_error(Reflect::get(&handle, &"state".into()), "KernelNotFoundError", &[("kernelId", "h-worker")]);
    assert!(invoke(&runtime, "getKernel", &["h-worker".into()]).await.unwrap().is_null());
    invoke(&handle, "wait", &[]).await.expect("wait() on a removed kernel resolves at once");
}

/// A handle from `launch(id, definition, { autoActivate })`, a built-in's handle, `metrics()`
/// without telemetry, and `[Symbol.asyncDispose]` (what `await using` calls) terminating.
#[wasm_bindgen_test]
async fn handles_from_definitions_and_builtins_and_async_dispose() {
    let runtime = js(JsRuntime::create(Some(object(&[("enableTelemetry", false.into())])))).await.unwrap();
    let request = define_message("Request".into(), object(&[("value", "i32".into())])).unwrap();
    let response = define_message("Response".into(), object(&[("result", "i32".into())])).unwrap();
    let wgsl = "fn handle(msg: Request) -> Response { return Response(msg.value * 2 + 1); }";
    let definition = object(&[("input", request), ("output", response), ("wgsl", wgsl.into())]);
    let options = object(&[("autoActivate", true.into()), ("inputQueueSize", 8.into()), ("outputQueueSize", 2.into())]);
    let handle = invoke(&runtime, "launch", &["h-defined".into(), definition, options]).await.unwrap();
    assert_eq!(text(&handle, "state"), "active", "autoActivate");
    let answer = invoke(&handle, "call", &[value(20), timeout(20_000)]).await.unwrap();
    assert_eq!(num(&answer, "result"), 41.0);
    assert!(invoke(&runtime, "getTelemetry", &["h-defined".into()]).await.unwrap().is_null());
    let metrics = invoke(&handle, "metrics", &[]).await.unwrap();
    assert_eq!(
        (num(&metrics, "messagesProcessed"), num(&metrics, "queueSize")),
        (1.0, 8.0),
        "metrics() whatever the flag"
    );

    let dispose: Function = get(&handle, "terminate").dyn_into().unwrap();
    js(dispose.call0(&handle).unwrap().into()).await.unwrap();
    assert_eq!(invoke(&runtime, "getState", &["h-defined".into()]).await.unwrap().as_string().unwrap(), "terminated");

    let doubler = invoke(&runtime, "launch", &["doubler".into()]).await.unwrap();
    invoke(&doubler, "activate", &[]).await.unwrap();
    invoke(&doubler, "send", &[value(21)]).await.unwrap();
    assert_eq!(num(&invoke(&doubler, "receive", &[timeout(20_000)]).await.unwrap(), "result"), 42.0);
    invoke(&doubler, "send", &[value(1)]).await.unwrap();
    invoke(&doubler, "deactivate", &[]).await.unwrap();
    invoke(&doubler, "send", &[value(2)]).await.unwrap();
    let late = invoke(&doubler, "terminate", &[timeout(0)]).await;
    assert_js_error(late, "TimeoutError", &[("kernelId", "doubler")]);
    invoke(&runtime, "dispose", &[]).await.unwrap();
    assert_js_error(invoke(&doubler, "call", &[value(1)]).await, "RuntimeDisposedError", &[]);
}

/// `ringKernel` refuses an id that is registered (a `TypeError`, the old kernel stays) unless the
/// definition says `replace: true`.
#[wasm_bindgen_test]
async fn ring_kernel_refuses_a_taken_id_unless_told_to_replace_it() {
    let request = define_message("Request".into(), object(&[("value", "i32".into())])).unwrap();
    let response = define_message("Response".into(), object(&[("result", "i32".into())])).unwrap();
    let definition = |add: i32, replace: Option<JsValue>| {
        let wgsl = format!("fn handle(msg: Request) -> Response {{ return Response(msg.value + {add}); }}");
        let mut fields = vec![
            ("id", "h-replaced".into()),
            ("input", request.clone()),
            ("output", response.clone()),
            ("wgsl", wgsl.into()),
        ];
        fields.extend(replace.map(|r| ("replace", r)));
        object(&fields)
    };
    let first_definition = definition(1000, None);
    let returned = ring_kernel(first_definition.clone()).unwrap();
    assert!(js_sys::Object::is(&returned, &first_definition), "ringKernel returns its definition");
    let taken = ring_kernel(definition(2000, None)).map(|_| NONE);
    assert!(taken.as_ref().unwrap_err().is_instance_of::<js_sys::TypeError>(), "a real TypeError");
    let message = get(taken.as_ref().unwrap_err(), "message").as_string().unwrap();
    assert!(message.contains("already registered") && message.contains("replace: true"), "{message}");
    assert_js_error(taken, "TypeError", &[]);
    assert_js_error(ring_kernel(definition(2000, Some("yes".into()))).map(|_| NONE), "TypeError", &[]);
    let runtime = js(JsRuntime::create(None)).await.unwrap();
    let options = object(&[("autoActivate", true.into())]);
    let first = invoke(&runtime, "launch", &["h-replaced".into(), JsValue::NULL, options.clone()]).await.unwrap();
    assert_eq!(num(&invoke(&first, "call", &[value(1), timeout(20_000)]).await.unwrap(), "result"), 1001.0);
    invoke(&first, "terminate", &[]).await.unwrap();
    invoke(&runtime, "remove", &["h-replaced".into()]).await.unwrap();
    ring_kernel(definition(2000, Some(true.into()))).unwrap();
    let second = invoke(&runtime, "launch", &["h-replaced".into(), JsValue::NULL, options]).await.unwrap();
    assert_eq!(num(&invoke(&second, "call", &[value(1), timeout(20_000)]).await.unwrap(), "result"), 2001.0);
}

// ---- messages ----

#[wasm_bindgen_test]
async fn doubler_answers_42_and_a_thousand_come_back_in_order() {
    let rt = Runtime::new(RuntimeOptions::default()).await.expect("WebGPU adapter");
    // 128 slots: 1,000 messages need several ticks and ring wrap-arounds.
    rt.launch("doubler", LaunchOptions::default().with_queue_capacity(128)).await.unwrap();
    rt.activate("doubler").await.unwrap();
    let mut answers: Vec<i32> = Vec::new();
    let mut next = 0i32;
    while answers.len() < 1000 {
        let batch: Vec<i32> = (next..1000).collect();
        next += common::accepted(rt.send_batch("doubler", &batch, Some(std::time::Duration::ZERO)).await) as i32;
        answers
            .extend(rt.receive_batch::<i32>("doubler", 1000, Some(std::time::Duration::from_secs(20))).await.unwrap());
    }
    assert_eq!(answers, (0..1000).map(|v| v * 2).collect::<Vec<i32>>());
    assert_eq!(rt.telemetry("doubler").unwrap().unwrap().messages_processed, 1000);
}

#[wasm_bindgen_test]
async fn malformed_messages_name_the_field_and_reach_nothing() {
    let rt = js_runtime().await;
    js(rt.launch("doubler".into(), None, None)).await.unwrap();
    let cases = [
        (object(&[]), "value"),                                         // missing
        (object(&[("value", 1.into()), ("extra", 2.into())]), "extra"), // extra
        (object(&[("value", "21".into())]), "value"),                   // wrong type
        (object(&[("value", 1.5.into())]), "value"),                    // not an integer
        (object(&[("value", 2_147_483_648.0.into())]), "value"),        // out of range
        ("not an object".into(), "(message)"),
    ];
    for (message, field) in cases {
        let result = js(rt.send("doubler".into(), message, None)).await;
        assert_js_error(result, "MessageFormatError", &[("kernelId", "doubler"), ("field", field)]);
    }
    let batch = Array::of2(&value(1), &object(&[("valu", 2.into())]));
    let result = js(rt.send_batch("doubler".into(), batch.into(), None)).await;
    assert_js_error(result, "MessageFormatError", &[("field", "[1].valu")]); // led by its index in the batch
    let t = rt.get_telemetry("doubler".into()).unwrap();
    assert_eq!((num(&t, "messagesSent"), num(&t, "inputQueueDepth")), (0.0, 0.0), "a bad batch queues nothing");
}

/// A typed array of floats for messages of integers (or of integers for floats) would give the
/// kernel the numbers' bits read as the other kind: `sendBatch` refuses it with a `TypeError`
/// naming the field and what to send instead, and queues nothing. Integers of either
/// signedness, and bytes, go in as packed messages.
#[wasm_bindgen_test]
async fn typed_arrays_of_the_other_number_kind_are_refused() {
    let rt = js_runtime().await;
    let ints = define_message("IntsIn".into(), object(&[("a", "i32".into())])).unwrap();
    let floats = define_message("FloatsIn".into(), object(&[("x", "f32".into())])).unwrap();
    let mixed = define_message("MixedIn".into(), object(&[("id", "u32".into()), ("inner", floats.clone())])).unwrap();
    let shaped_fields = object(&[("at", "vec2<f32>".into()), ("n", "array<i32, 2>".into())]);
    let shaped = define_message("ShapedIn".into(), shaped_fields).unwrap();
    let kernels = [
        ("ints", &ints, "IntsIn"),
        ("floats", &floats, "FloatsIn"),
        ("mixed", &mixed, "MixedIn"),
        ("shaped", &shaped, "ShapedIn"),
    ];
    for (id, message, name) in kernels {
        let wgsl = format!("fn handle(m: {name}) -> {name} {{ return m; }}");
        let fields =
            [("id", id.into()), ("input", message.clone()), ("output", message.clone()), ("wgsl", wgsl.into())];
        ring_kernel(object(&fields)).unwrap();
        js(rt.launch(id.into(), None, None)).await.unwrap();
    }
    let f32s = |n: u32| JsValue::from(js_sys::Float32Array::new_with_length(n));
    let i32s = |n: u32| JsValue::from(js_sys::Int32Array::new_with_length(n));
    let made = |source: &str| js_sys::Function::new_no_args(source).call0(&JsValue::NULL).unwrap();
    let refused = [
        ("ints", f32s(2), "a Float32Array of f32 values, but field `a` of message IntsIn is i32: i32 values go in an Int32Array"),
        ("floats", i32s(2), "an Int32Array of i32 values, but field `x` of message FloatsIn is f32: f32 values go in a Float32Array"),
        (
            "floats",
            js_sys::Uint32Array::new_with_length(1).into(),
            "a Uint32Array of u32 values, but field `x` of message FloatsIn is f32: f32 values go in a Float32Array",
        ),
        ("mixed", f32s(2), "a Float32Array of f32 values, but field `id` of message MixedIn is u32: packed bytes go in a Uint8Array"),
        ("mixed", i32s(2), "an Int32Array of i32 values, but field `inner.x` of message MixedIn is f32: packed bytes go in a Uint8Array"),
        ("shaped", f32s(4), "a Float32Array of f32 values, but field `n` of message ShapedIn is i32: packed bytes go in a Uint8Array"),
        ("shaped", i32s(4), "an Int32Array of i32 values, but field `at` of message ShapedIn is f32: packed bytes go in a Uint8Array"),
        // A subclass keeps its elements' type (its tag), whatever its name.
        (
            "ints",
            made("class Readings extends Float32Array {}; return new Readings(2);"),
            "a Readings of f32 values, but field `a` of message IntsIn is i32: i32 values go in an Int32Array",
        ),
        (
            "floats",
            made("return new Float16Array(2);"),
            "a Float16Array of f16 values, but no message field has 16-bit floats: f32 values go in a Float32Array",
        ),
        // An empty one is of the other kind too.
        ("ints", f32s(0), "a Float32Array of f32 values, but field `a` of message IntsIn is i32: i32 values go in an Int32Array"),
    ];
    for (id, batch, said) in refused {
        let error = js(rt.send_batch(id.into(), batch, None)).await.expect_err("refused");
        assert!(error.is_instance_of::<js_sys::TypeError>(), "{id}: {error:?}");
        let expected = format!("sendBatch got {said}, or send the messages as objects");
        assert_eq!(get(&error, "message").as_string().as_deref(), Some(expected.as_str()));
    }
    // A typed array whose buffer was transferred (to a worker) says why it cannot be read.
    let detached = made("const a = new Int32Array(2); structuredClone(a.buffer, { transfer: [a.buffer] }); return a;");
    let error = js(rt.send_batch("ints".into(), detached, None)).await.expect_err("refused");
    let message = get(&error, "message").as_string().unwrap();
    assert!(error.is_instance_of::<js_sys::TypeError>(), "{error:?}");
    assert!(
        message.starts_with("sendBatch could not read the bytes of an Int32Array: ") && message.contains("detached"),
        "{message}"
    );
    for id in ["ints", "floats", "mixed", "shaped"] {
        let t = rt.get_telemetry(id.into()).unwrap();
        assert_eq!((num(&t, "messagesSent"), num(&t, "errors")), (0.0, 0.0), "{id}: nothing queued, nothing counted");
    }
    let accepted = [
        ("ints", JsValue::from(js_sys::Uint32Array::new_with_length(2)), 2.0),
        ("ints", i32s(1), 1.0),
        ("floats", f32s(3), 3.0),
        ("mixed", js_sys::Uint8Array::new_with_length(8).into(), 1.0),
        ("mixed", js_sys::DataView::new(&js_sys::ArrayBuffer::new(8), 0, 8).into(), 1.0),
        ("shaped", js_sys::Uint8Array::new_with_length(32).into(), 2.0),
    ];
    for (id, batch, count) in accepted {
        assert_eq!(js(rt.send_batch(id.into(), batch, None)).await.unwrap().as_f64(), Some(count), "{id}");
    }
}

#[wasm_bindgen_test]
async fn backpressure_waits_then_refuses_and_keeps_what_was_accepted() {
    let rt = js_runtime().await;
    js(rt.launch("doubler".into(), None, Some(object(&[("queueSize", 4.into())])))).await.unwrap();
    let six = (1..=6).map(value).collect::<Array>();
    let cut_short = js(rt.send_batch("doubler".into(), six.into(), Some(timeout(0)))).await;
    let e = cut_short.clone().expect_err("a batch that does not fit in time is an error");
    assert_js_error(cut_short, "QueueFullError", &[("kernelId", "doubler")]);
    assert_eq!(num(&e, "accepted"), 4.0, "the error says how many fit");
    let started = js_sys::Date::now();
    assert_js_error(
        js(rt.send("doubler".into(), value(7), Some(timeout(150)))).await,
        "QueueFullError",
        &[("kernelId", "doubler")],
    );
    assert!(js_sys::Date::now() - started >= 140.0, "send waited for room before refusing");
    // A waiting send gets in once the kernel drains.
    let waiting = js(rt.send("doubler".into(), value(5), Some(timeout(20_000))));
    js(rt.activate("doubler".into())).await.unwrap();
    assert_eq!(receive_values(&rt, "doubler", 4).await, [2, 4, 6, 8]);
    waiting.await.unwrap();
    assert_eq!(receive_values(&rt, "doubler", 1).await, [10]);
    let t = rt.get_telemetry("doubler".into()).unwrap();
    // Two refusals: the batch cut short and the single send.
    assert_eq!((num(&t, "messagesSent"), num(&t, "messagesProcessed"), num(&t, "errors")), (5.0, 5.0, 2.0));
}

/// A receive runs a microtask after its call. A handle's reaches its own launch only: its
/// kernel removed and launched again under its id in the same synchronous code right after the
/// call, it rejects with `KernelNotFoundError` and takes nothing from the new launch. A receive
/// by id takes the kernel the id names when it runs: the new one.
#[wasm_bindgen_test]
async fn a_handles_receive_never_reaches_a_launch_made_after_its_call() {
    let rt = js_runtime().await;
    let active = || Some(object(&[("autoActivate", true.into())]));
    let old = js(rt.launch("doubler".into(), None, active())).await.unwrap();
    js(rt.terminate("doubler".into(), None)).await.unwrap();
    let by_handle = js(call_method(&old, "receive", &[timeout(5_000)]).unchecked_into());
    let batch_by_handle = js(call_method(&old, "receiveBatch", &[timeout(5_000)]).unchecked_into());
    let by_id = js(rt.receive("doubler".into(), Some(timeout(10_000))));
    rt.remove("doubler".into()).unwrap();
    js(rt.launch("doubler".into(), None, active())).await.unwrap();
    js(rt.send("doubler".into(), value(21), None)).await.unwrap();
    assert_js_error(by_handle.await, "KernelNotFoundError", &[("kernelId", "doubler")]);
    assert_js_error(batch_by_handle.await, "KernelNotFoundError", &[("kernelId", "doubler")]);
    assert_eq!(num(&by_id.await.unwrap(), "result"), 42.0, "the id names the new kernel when the receive runs");
}

#[wasm_bindgen_test]
async fn timeouts_and_waiting_receives() {
    let rt = js_runtime().await;
    js(rt.launch("doubler".into(), None, None)).await.unwrap();
    assert_js_error(
        js(rt.receive("doubler".into(), Some(timeout(50)))).await,
        "TimeoutError",
        &[("kernelId", "doubler")],
    );
    // Not active yet: the call times out, its message is still processed later (its error
    // says it was sent), and its late answer never shows up in receive.
    let late = js(rt.call("doubler".into(), value(1), Some(timeout(50)))).await;
    assert_eq!(get(late.as_ref().unwrap_err(), "sent"), JsValue::TRUE, "a call that timed out was sent");
    assert_js_error(late, "TimeoutError", &[]);
    // A call refused before its message was queued says it was not sent.
    let malformed = js(rt.call("doubler".into(), object(&[("value", "x".into())]), Some(timeout(50)))).await;
    assert_eq!(get(malformed.as_ref().unwrap_err(), "sent"), JsValue::FALSE, "a malformed call");
    assert_js_error(malformed, "MessageFormatError", &[]);
    let unknown = js(rt.call("nobody".into(), value(1), Some(timeout(50)))).await;
    assert_eq!(get(unknown.as_ref().unwrap_err(), "sent"), JsValue::FALSE, "a call to no kernel");
    let pending_receive = js(rt.receive("doubler".into(), None)); // no timeout: waits
    js(rt.send("doubler".into(), value(2), None)).await.unwrap();
    js(rt.activate("doubler".into())).await.unwrap();
    assert_eq!(num(&pending_receive.await.unwrap(), "result"), 4.0);
    let t = rt.get_telemetry("doubler".into()).unwrap();
    assert_eq!((num(&t, "messagesProcessed"), num(&t, "answersAbandoned")), (2.0, 1.0));
    assert_js_error(
        js(rt.receive("doubler".into(), Some(object(&[("timeout", (-1).into())])))).await,
        "RangeError",
        &[],
    );
}

#[wasm_bindgen_test]
async fn hundred_concurrent_calls_each_get_their_own_answer() {
    let rt = js_runtime().await;
    js(rt.launch("doubler".into(), None, None)).await.unwrap();
    js(rt.activate("doubler".into())).await.unwrap();
    let calls: Array =
        (0..100).map(|v| JsValue::from(rt.call("doubler".into(), value(v), Some(timeout(30_000))))).collect();
    // Plain sends in between: their answers stay in the output queue for receive.
    for v in 0..10 {
        js(rt.send("doubler".into(), value(-v), None)).await.unwrap();
    }
    let answers: Array = js(Promise::all(&calls)).await.unwrap().unchecked_into();
    for (v, answer) in answers.iter().enumerate() {
        assert_eq!(num(&answer, "result"), v as f64 * 2.0, "call {v} got someone else's answer");
    }
    assert_eq!(receive_values(&rt, "doubler", 10).await, (0..10).map(|v| -v * 2).collect::<Vec<_>>());
    let t = rt.get_telemetry("doubler".into()).unwrap();
    assert_eq!(
        (num(&t, "messagesSent"), num(&t, "messagesProcessed"), num(&t, "messagesReceived")),
        (110.0, 110.0, 110.0)
    );
    assert!(num(&t, "dispatches") < 110.0, "concurrent calls share dispatches");
}

// ---- queries and telemetry ----

#[wasm_bindgen_test]
async fn telemetry_summary_and_metrics_match_the_messages_sent() {
    let rt = js_runtime().await;
    js(rt.launch("doubler".into(), None, None)).await.unwrap();
    js(rt.launch("echo".into(), None, None)).await.unwrap();
    js(rt.activate("doubler".into())).await.unwrap();
    let packed = js_sys::Int32Array::from(&(0..50).collect::<Vec<i32>>()[..]);
    assert_eq!(js(rt.send_batch("doubler".into(), packed.into(), None)).await.unwrap().as_f64(), Some(50.0));
    receive_values(&rt, "doubler", 50).await;
    for v in 0..5 {
        js(rt.call("doubler".into(), value(v), Some(timeout(10_000)))).await.unwrap();
    }
    let t = rt.get_telemetry("doubler".into()).unwrap();
    assert_eq!(get(&t, "kernelId").as_string().unwrap(), "doubler");
    assert_eq!(get(&t, "state").as_string().unwrap(), "active");
    for (key, want) in
        [("messagesSent", 55.0), ("messagesProcessed", 55.0), ("messagesReceived", 55.0), ("errors", 0.0)]
    {
        assert_eq!(num(&t, key), want, "{key}");
    }
    for key in
        ["dispatches", "bytesToDevice", "bytesFromDevice", "gpuMemoryBytes", "uptimeMs", "throughput", "startTime"]
    {
        assert!(num(&t, key) > 0.0, "{key} > 0");
    }
    let latency = get(&t, "latency");
    assert_eq!(num(&latency, "count"), 55.0);
    let (min, p50, p99, max) =
        (num(&latency, "minMs"), num(&latency, "p50Ms"), num(&latency, "p99Ms"), num(&latency, "maxMs"));
    assert!(min <= p50 && p50 <= p99 && p99 <= max * 1.01, "{min} {p50} {p99} {max}");
    assert!(num(&latency, "meanMs") > 0.0);

    let summary = rt.get_summary().unwrap();
    assert_eq!(get(&summary, "backend").as_string().unwrap(), "browserwebgpu");
    assert_eq!(
        (num(&summary, "kernelCount"), num(&summary, "activeKernels"), num(&summary, "totalMessages")),
        (2.0, 1.0, 55.0)
    );
    let echo = get(&get(&summary, "perKernel"), "echo");
    assert_eq!(get(&echo, "state").as_string().unwrap(), "launched");
    assert!(get(&echo, "latency").is_object() && get(&get(&echo, "latency"), "p50Ms").is_null());

    let text = rt.metrics_text();
    assert!(text.contains("# TYPE ringkernel_messages_processed_total counter\n"), "{text}");
    assert!(text.contains("ringkernel_messages_processed_total{kernel=\"doubler\"} 55\n"), "{text}");
    assert!(text.contains("ringkernel_kernel_state{kernel=\"echo\",mode=\"persistent\",state=\"launched\"} 1\n"));
    assert!(text.contains("ringkernel_latency_seconds_count{kernel=\"doubler\"} 55\n"));

    let quiet = js_runtime_with(RuntimeOptions::default().with_telemetry(false)).await;
    js(quiet.launch("doubler".into(), None, None)).await.unwrap();
    assert!(quiet.get_telemetry("doubler".into()).unwrap().is_null(), "null when telemetry is disabled");
    assert_js_error(quiet.get_telemetry("nope".into()).map(|_| NONE), "KernelNotFoundError", &[]);
}

#[wasm_bindgen_test]
async fn every_error_name_reaches_javascript() {
    let rt = js_runtime().await;
    assert_js_error(js(rt.activate("missing".into())).await, "KernelNotFoundError", &[("kernelId", "missing")]);
    js(rt.launch("doubler".into(), None, Some(object(&[("queueSize", 1.into())])))).await.unwrap();
    assert_js_error(js(rt.reactivate("doubler".into())).await, "KernelStateError", &[("state", "launched")]);
    js(rt.send("doubler".into(), value(1), None)).await.unwrap();
    assert_js_error(js(rt.send("doubler".into(), value(2), Some(timeout(0)))).await, "QueueFullError", &[]);
    assert_js_error(js(rt.receive("doubler".into(), Some(timeout(0)))).await, "TimeoutError", &[]);
    assert_js_error(js(rt.send("doubler".into(), object(&[("v", 1.into())]), None)).await, "MessageFormatError", &[]);
    let request = define_message("Request".into(), object(&[("value", "i32".into())])).unwrap();
    let broken = object(&[
        ("input", request.clone()),
        ("output", request),
        ("wgsl", "fn handle(msg: Request) -> Request { return nope; }".into()),
    ]);
    assert_js_error(
        js(rt.launch("broken".into(), Some(broken), None)).await,
        "KernelCompileError",
        &[("kernelId", "broken")],
    );
    assert_js_error(
        js(rt.send("doubler".into(), value(1), Some(object(&[("timeuot", 5.into())])))).await,
        "TypeError",
        &[],
    );
    js(rt.dispose()).await.unwrap();
    assert_js_error(js(rt.launch("echo".into(), None, None)).await, "RuntimeDisposedError", &[]);
}

// ---- built-in and user-defined kernels (issue 4) ----

fn random_f32s(n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| ((js_sys::Math::random() * 2.0 - 1.0) as f32) * scale).collect()
}

fn f32s(value: &JsValue) -> Vec<f32> {
    assert!(value.is_instance_of::<js_sys::Float32Array>(), "f32 arrays come back as Float32Array");
    js_sys::Float32Array::new(value).to_vec()
}

async fn start(rt: &JsRuntime, id: &str, definition: Option<JsValue>) {
    js(rt.launch(id.into(), definition, None)).await.unwrap();
    js(rt.activate(id.into())).await.unwrap();
}

/// Sends packed `inputs` with sendBatch and receives as many packed answers.
async fn round_trip<In: bytemuck::Pod, Out: bytemuck::Pod>(rt: &JsRuntime, id: &str, inputs: &[In]) -> Vec<Out> {
    let packed = js_sys::Uint8Array::from(bytemuck::cast_slice::<In, u8>(inputs));
    let accepted = js(rt.send_batch(id.into(), packed.into(), None)).await.unwrap();
    assert_eq!(accepted.as_f64(), Some(inputs.len() as f64));
    let mut bytes = Vec::new();
    while bytes.len() < inputs.len() * std::mem::size_of::<Out>() {
        let options = object(&[("timeout", 20_000.into()), ("packed", true.into())]);
        let batch = js(rt.receive_batch(id.into(), Some(options))).await.unwrap();
        bytes.extend(js_sys::Uint8Array::new(&batch).to_vec());
    }
    bytemuck::pod_collect_to_vec(&bytes)
}

/// A tick's input over 64 KiB goes up straight from the input queue (header and messages in two
/// writes, see `platform::stage_write`), at the ring's start and after a wrap; answers come back
/// whole and in order, packed and as objects.
#[wasm_bindgen_test]
async fn batches_over_64_kib_go_up_straight_and_come_back_whole() {
    let rt = js_runtime().await;
    js(rt.launch("doubler".into(), None, Some(object(&[("queueSize", 32_768.into())])))).await.unwrap();
    js(rt.activate("doubler".into())).await.unwrap();
    // 20,000 four-byte messages (80,000 bytes) from slot 0, then 30,000 more (120,000 bytes)
    // from slot 20,000: the second tick's input wraps around the 32,768-slot ring.
    for (first, count) in [(0, 20_000), (20_000, 30_000)] {
        let inputs: Vec<i32> = (first..first + count).collect();
        let answers: Vec<i32> = round_trip(&rt, "doubler", &inputs).await;
        assert_eq!(answers, inputs.iter().map(|v| v * 2).collect::<Vec<_>>(), "{count} from {first}");
    }
    // Answers as objects, read from the output queue as they are.
    let inputs: Vec<i32> = (0..25_000).map(|v| v - 12_500).collect();
    let packed = js_sys::Int32Array::from(inputs.as_slice());
    js(rt.send_batch("doubler".into(), packed.into(), None)).await.unwrap();
    let mut results = Vec::new();
    while results.len() < inputs.len() {
        let options = object(&[("timeout", 20_000.into())]);
        let answers: Array = js(rt.receive_batch("doubler".into(), Some(options))).await.unwrap().into();
        results.extend(answers.iter().map(|answer| num(&answer, "result") as i32));
    }
    assert_eq!(results, inputs.iter().map(|v| v * 2).collect::<Vec<_>>());
}

/// Round trips run on commands encoded while the device ran the tick before
/// (`dispatchesEncodedAhead`, see `backend::gpu::ahead`), and only where those fit: a batch of
/// up to 16 messages takes them, a larger one is encoded as usual and leaves them kept for the
/// next round trip, and a batch that makes the readback buffer grow (replacing the one they copy
/// into: a stale copy would lose the device) has the next round trip encode its own. Every
/// answer comes back in order.
#[wasm_bindgen_test]
async fn round_trips_use_commands_encoded_ahead_only_where_they_fit() {
    let rt = js_runtime().await;
    js(rt.launch("doubler".into(), None, Some(object(&[("queueSize", 8192.into())])))).await.unwrap();
    js(rt.activate("doubler".into())).await.unwrap();
    let ahead = || num(&rt.get_telemetry("doubler".into()).unwrap(), "dispatchesEncodedAhead");
    let round_trips = |from: i32| {
        let rt = &rt;
        async move {
            for v in from..from + 3 {
                let answer = js(rt.call("doubler".into(), value(v), Some(timeout(10_000)))).await.unwrap();
                assert_eq!(num(&answer, "result"), 2.0 * v as f64);
            }
        }
    };
    let batch = |n: i32| {
        let rt = &rt;
        async move {
            let inputs: Vec<i32> = (0..n).collect();
            let answers: Vec<i32> = round_trip(rt, "doubler", &inputs).await;
            assert_eq!(answers, inputs.iter().map(|v| v * 2).collect::<Vec<_>>(), "a batch of {n}");
        }
    };
    round_trips(1).await;
    assert_eq!(ahead(), 2.0, "the second and third round trips ran on commands encoded ahead");
    // Each round trip's tick copied back the counters (32 bytes) and 16 answer slots.
    let read_back = num(&rt.get_telemetry("doubler".into()).unwrap(), "bytesFromDevice");
    assert_eq!(read_back, 3.0 * (32.0 + 16.0 * 4.0), "bytes read back by three round trips");
    batch(16).await;
    assert_eq!(ahead(), 3.0, "16 messages fit them");
    batch(17).await;
    assert_eq!(ahead(), 3.0, "17 messages do not");
    round_trips(10).await;
    assert_eq!(ahead(), 6.0, "the commands kept across the batch of 17 still fit the round trip after it");
    batch(5000).await;
    round_trips(20).await;
    assert_eq!(ahead(), 8.0, "the first round trip after the readback grew encoded its own");
    assert_eq!(num(&rt.get_telemetry("doubler".into()).unwrap(), "messagesProcessed"), (9 + 16 + 17 + 5000) as f64);
}

/// A packed `receiveBatch` that waits on the device makes its answer array while the device
/// works (see `wasm::messages::answer_array`): the array it resolves with holds exactly the
/// answers, whether as many came as were in sight, `max` took fewer, or the handler dropped some
/// (then the array made ahead does not fit and one that does is made after the readback).
#[wasm_bindgen_test]
async fn packed_answers_waited_for_fill_an_array_of_their_own_size() {
    let rt = js_runtime().await;
    let packed_answers = |batch: &JsValue| {
        let bytes = js_sys::Uint8Array::new(batch);
        assert_eq!(bytes.byte_offset(), 0);
        assert_eq!(
            bytes.buffer().byte_length(),
            bytes.byte_length(),
            "an array of its own, not a view of a larger one"
        );
        bytemuck::pod_collect_to_vec::<u8, i32>(&bytes.to_vec())
    };
    let receive = |id: &'static str, max: Option<u32>| {
        let mut options = vec![("timeout", JsValue::from(20_000)), ("packed", true.into())];
        options.extend(max.map(|max| ("max", JsValue::from(max))));
        js(rt.receive_batch(id.into(), Some(object(&options))))
    };
    js(rt.launch("doubler".into(), None, Some(object(&[("queueSize", 32_768.into())])))).await.unwrap();
    js(rt.activate("doubler".into())).await.unwrap();
    let inputs: Vec<i32> = (0..30_000).map(|v| v - 15_000).collect();
    let doubled: Vec<i32> = inputs.iter().map(|v| v * 2).collect();
    let send =
        |id: &'static str| js(rt.send_batch(id.into(), js_sys::Int32Array::from(inputs.as_slice()).into(), None));
    // All 30,000 at once (120,000 bytes), then in two parts: 20,000 (`max`) and the rest.
    send("doubler").await.unwrap();
    let mut answers = Vec::new();
    while answers.len() < inputs.len() {
        answers.extend(packed_answers(&receive("doubler", None).await.unwrap()));
    }
    assert_eq!(answers, doubled);
    send("doubler").await.unwrap();
    let first = packed_answers(&receive("doubler", Some(20_000)).await.unwrap());
    assert!(first.len() <= 20_000);
    let mut answers = first;
    while answers.len() < inputs.len() {
        answers.extend(packed_answers(&receive("doubler", None).await.unwrap()));
    }
    assert_eq!(answers, doubled);
    // A handler that keeps only even values: half the answers in sight never come.
    let number = define_message("Number".into(), object(&[("value", "i32".into())])).unwrap();
    let wgsl = "fn handle(msg: Number, out: ptr<function, Number>) -> bool {
    (*out).value = msg.value;
    return msg.value % 2 == 0;
}";
    let evens = object(&[("input", number.clone()), ("output", number), ("wgsl", wgsl.into())]);
    js(rt.launch("evens".into(), Some(evens), Some(object(&[("queueSize", 32_768.into())])))).await.unwrap();
    js(rt.activate("evens".into())).await.unwrap();
    send("evens").await.unwrap();
    let kept: Vec<i32> = inputs.iter().copied().filter(|v| v % 2 == 0).collect();
    let mut answers = Vec::new();
    while answers.len() < kept.len() {
        answers.extend(packed_answers(&receive("evens", None).await.unwrap()));
    }
    assert_eq!(answers, kept);
}

#[wasm_bindgen_test]
async fn vector_add_and_saxpy_match_the_cpu_in_the_browser() {
    let rt = js_runtime().await;
    start(&rt, "vector_add", None).await;
    start(&rt, "saxpy", None).await;
    // Objects with typed-array fields in, typed arrays out.
    for _ in 0..20 {
        let (a, b) = (random_f32s(32, 1e3), random_f32s(32, 1e3));
        let message = object(&[
            ("a", js_sys::Float32Array::from(a.as_slice()).into()),
            ("b", js_sys::Float32Array::from(b.as_slice()).into()),
        ]);
        let answer = js(rt.call("vector_add".into(), message, Some(timeout(20_000)))).await.unwrap();
        let expected: Vec<f32> = a.iter().zip(&b).map(|(a, b)| a + b).collect();
        assert_eq!(f32s(&get(&answer, "sum")), expected);
    }
    // Packed batches: [a, x[32], y[32]] per message.
    let inputs: Vec<[f32; 65]> = (0..200).map(|_| random_f32s(65, 100.0).try_into().unwrap()).collect();
    let results: Vec<[f32; 32]> = round_trip(&rt, "saxpy", &inputs).await;
    for (input, result) in inputs.iter().zip(&results) {
        for i in 0..32 {
            let cpu = input[0] * input[1 + i] + input[33 + i];
            assert!((result[i] - cpu).abs() <= 1e-5 * cpu.abs().max(1.0), "saxpy: GPU {} vs CPU {cpu}", result[i]);
        }
    }
}

#[wasm_bindgen_test]
async fn histogram_state_and_mandelbrot_match_the_cpu_in_the_browser() {
    let rt = js_runtime().await;
    start(&rt, "histogram", None).await;
    let samples: Vec<[f32; 16]> = (0..300)
        .map(|_| random_f32s(16, 0.6).iter().map(|v| v + 0.5).collect::<Vec<_>>().try_into().unwrap())
        .collect();
    let mut expected = vec![0u32; 64];
    let mut binned = Vec::new();
    for message in &samples {
        let inside: Vec<f32> = message.iter().copied().filter(|v| (0.0..1.0).contains(v)).collect();
        for v in &inside {
            expected[((v * 64.0) as usize).min(63)] += 1;
        }
        binned.push(inside.len() as u32);
    }
    assert_eq!(round_trip::<_, u32>(&rt, "histogram", &samples).await, binned);
    let state = js(rt.read_state("histogram".into())).await.unwrap();
    assert!(state.is_instance_of::<js_sys::Uint32Array>(), "atomic<u32> state is a Uint32Array");
    assert_eq!(js_sys::Uint32Array::new(&state).to_vec(), expected);
    start(&rt, "echo", None).await;
    assert_js_error(js(rt.read_state("echo".into())).await, "TypeError", &[]);

    start(&rt, "mandelbrot", None).await;
    let tile =
        |x: f32, y: f32, step: f32, max_iter: u32| -> [u32; 4] { [x.to_bits(), y.to_bits(), step.to_bits(), max_iter] };
    let tiles = [tile(-0.2, -0.1, 0.02, 200), tile(3.0, 3.0, 0.1, 200), tile(-0.75, 0.1, 0.003, 300)];
    let answers: Vec<[u32; 64]> = round_trip(&rt, "mandelbrot", &tiles).await;
    assert_eq!(answers[0], [200; 64], "inside the set every pixel reaches max_iter");
    assert_eq!(answers[1], [1; 64], "far outside every pixel escapes at once");
    let differing = (0..64)
        .filter(|&p| {
            let (cx, cy) = (-0.75 + 0.003 * (p % 8) as f32, 0.1 + 0.003 * (p / 8) as f32);
            let (mut x, mut y, mut n) = (0f32, 0f32, 0);
            while n < 300 && x * x + y * y <= 4.0 {
                (x, y) = (x * x - y * y + cx, 2.0 * x * y + cy);
                n += 1;
            }
            answers[2][p] != n
        })
        .count();
    assert!(differing <= 3, "{differing} of 64 boundary pixels differ from the CPU reference");
}

#[wasm_bindgen_test]
async fn user_kernels_with_nested_messages_state_and_drops_through_the_js_api() {
    let rt = js_runtime().await;
    let body =
        define_message("Body".into(), object(&[("position", "vec3<f32>".into()), ("mass", "f32".into())])).unwrap();
    // Nested by description and by name, and an array of them.
    let system =
        define_message("System".into(), object(&[("sun", body), ("planets", "array<Body, 2>".into())])).unwrap();
    let total = define_message("Total".into(), object(&[("mass", "f32".into()), ("x", "vec2<i32>".into())])).unwrap();
    let wgsl = "// Keeps systems heavier than 1; counts kept ones in state[0].
fn handle(msg: System, out: ptr<function, Total>) -> bool {
    let mass = msg.sun.mass + msg.planets[0].mass + msg.planets[1].mass;
    if (mass <= 1.0) {
        return false;
    }
    atomicAdd(&state[0], 1);
    (*out).mass = mass;
    (*out).x = vec2<i32>(i32(msg.planets[1].position.x), -1);
    return true;
}";
    ring_kernel(object(&[
        ("id", "heavy".into()),
        ("input", system),
        ("output", total),
        ("wgsl", wgsl.into()),
        ("state", object(&[("length", 1.into()), ("type", "atomic<i32>".into())])),
    ]))
    .unwrap();
    start(&rt, "heavy", None).await;
    let body = |x: f64, mass: f64| {
        object(&[
            ("position", [x, 0.0, 0.0].iter().map(|v| JsValue::from(*v)).collect::<Array>().into()),
            ("mass", mass.into()),
        ])
    };
    let system = |mass: f64| {
        object(&[
            ("sun", body(0.0, mass)),
            ("planets", [body(1.0, 0.25), body(7.0, 0.25)].iter().collect::<Array>().into()),
        ])
    };
    let kept = js(rt.call("heavy".into(), system(2.0), Some(timeout(20_000)))).await.unwrap();
    assert_eq!(num(&kept, "mass"), 2.5);
    let x = get(&kept, "x");
    assert!(Array::is_array(&x), "vec2<i32> comes back as an array of numbers");
    assert_eq!(Array::from(&x).iter().map(|n| n.as_f64().unwrap()).collect::<Vec<_>>(), vec![7.0, -1.0]);
    assert_js_error(
        js(rt.call("heavy".into(), system(0.1), Some(timeout(20_000)))).await,
        "MessageDroppedError",
        &[("kernelId", "heavy")],
    );
    let state = js(rt.read_state("heavy".into())).await.unwrap();
    assert_eq!(js_sys::Int32Array::new(&state).to_vec(), vec![1]);
    let telemetry = rt.get_telemetry("heavy".into()).unwrap();
    assert_eq!((num(&telemetry, "messagesProcessed"), num(&telemetry, "messagesDropped")), (2.0, 1.0));
    // A malformed nested field is named by its path.
    let bad = object(&[
        ("sun", object(&[("position", "oops".into()), ("mass", 1.into())])),
        ("planets", Array::new().into()),
    ]);
    assert_js_error(js(rt.send("heavy".into(), bad, None)).await, "MessageFormatError", &[("field", "sun.position")]);
    // Unknown definition keys and unknown type names are refused where they are written.
    let typo = object(&[
        ("id", "t".into()),
        ("input", "Body".into()),
        ("output", "Body".into()),
        ("wgsl", "".into()),
        ("workGroupSize", 64.into()),
    ]);
    assert_js_error(ring_kernel(typo).map(|_| NONE), "TypeError", &[]);
    assert_js_error(define_message("Bad".into(), object(&[("b", "array<Nope, 2>".into())])), "TypeError", &[]);
}

/// A kernel with state whose handler never touches it launches and answers, for every element
/// type: the drain reads the state, so the bind group layout WebGPU derives binds it.
#[wasm_bindgen_test]
async fn state_the_handler_leaves_alone_is_bound_all_the_same_in_the_browser() {
    let rt = js_runtime().await;
    let request = define_message("Request".into(), object(&[("value", "i32".into())])).unwrap();
    let response = define_message("Response".into(), object(&[("result", "i32".into())])).unwrap();
    for (i, element) in ["atomic<u32>", "atomic<i32>", "u32", "i32", "f32"].into_iter().enumerate() {
        let id = format!("unread-state-{i}");
        let definition = object(&[
            ("input", request.clone()),
            ("output", response.clone()),
            ("wgsl", "fn handle(msg: Request) -> Response { return Response(msg.value * 3); }".into()),
            ("state", object(&[("length", 4.into()), ("type", element.into())])),
        ]);
        js(rt.launch(id.as_str().into(), Some(definition), None)).await.unwrap_or_else(|e| panic!("{element}: {e:?}"));
        js(rt.activate(id.as_str().into())).await.unwrap();
        let answer = js(rt.call(id.as_str().into(), value(5), Some(timeout(20_000)))).await.unwrap();
        assert_eq!(num(&answer, "result"), 15.0, "{element}");
    }
}

#[wasm_bindgen_test]
async fn compile_errors_carry_the_users_line_and_column_in_the_browser() {
    let rt = js_runtime().await;
    let request = define_message("Request".into(), object(&[("value", "i32".into())])).unwrap();
    let response = define_message("Response".into(), object(&[("result", "i32".into())])).unwrap();
    let definition =
        |wgsl: &str| object(&[("input", request.clone()), ("output", response.clone()), ("wgsl", wgsl.into())]);
    let position = |error: &JsValue| (get(error, "line").as_f64(), get(error, "column").as_f64());
    // The browser's WGSL compiler finds this one; its position is mapped to the user's source.
    let source = "// doubles\nfn handle(msg: Request) -> Response {\n    return Response(nope * 2);\n}";
    let error = js(rt.launch("broken".into(), Some(definition(source)), None)).await.unwrap_err();
    assert_eq!(get(&error, "name").as_string().unwrap(), "KernelCompileError");
    let message = get(&error, "message").as_string().unwrap();
    assert_eq!(position(&error), (Some(3.0), Some(21.0)), "{message}");
    assert!(message.contains("nope") && message.contains("line 3, column 21"), "{message}");
    // A mismatched message type is caught before the compiler, at the same place natively.
    let error = js(rt.launch("broken".into(), Some(definition("fn handle(msg: Reqest) -> Response {}")), None))
        .await
        .unwrap_err();
    assert_eq!(position(&error), (Some(1.0), Some(16.0)));
    assert!(rt.kernel_ids().is_empty(), "a failed launch leaves nothing behind");
}

#[wasm_bindgen_test]
async fn an_f16_handler_runs_where_the_adapter_has_shader_f16_and_is_refused_at_its_enable_where_not() {
    let rt = js_runtime().await;
    let request = define_message("Request".into(), object(&[("value", "i32".into())])).unwrap();
    let response = define_message("Response".into(), object(&[("result", "i32".into())])).unwrap();
    let source = "// Arithmetic in half floats.\nenable f16;\nfn handle(msg: Request) -> Response {\n    \
                  return Response(i32(f16(msg.value) * 2.0h));\n}";
    let definition = object(&[("input", request), ("output", response), ("wgsl", source.into())]);
    let adapter = rt.adapter().unwrap();
    let features: Vec<String> =
        Array::from(&get(&adapter, "features")).iter().map(|f| f.as_string().expect("feature names")).collect();
    let launched = js(rt.launch("half".into(), Some(definition), None)).await;
    if features.iter().any(|f| f == "shader-f16") {
        // An adapter with it (a GPU's): the device was opened with it and the handler runs.
        launched.unwrap();
        js(rt.activate("half".into())).await.unwrap();
        let answer = js(rt.call("half".into(), value(21), Some(timeout(20_000)))).await.unwrap();
        assert_eq!(num(&answer, "result"), 42.0);
    } else {
        // SwiftShader has none: refused at the extension's name, naming the feature, where the
        // browser's compiler said "not supported in the current environment" in generated code.
        assert!(features.is_empty(), "{features:?}");
        let error = launched.unwrap_err();
        let message = get(&error, "message").as_string().unwrap();
        assert_eq!(get(&error, "name").as_string().unwrap(), "KernelCompileError", "{message}");
        assert_eq!((num(&error, "line"), num(&error, "column")), (2.0, 8.0), "{message}");
        assert!(message.contains("\"shader-f16\""), "{message}");
        assert!(rt.kernel_ids().is_empty(), "a refused launch leaves nothing behind");
    }
}

// ---- the cpu backend: JavaScript handlers for browsers without WebGPU (issue 5) ----

async fn cpu_runtime() -> JsRuntime {
    js_runtime_with(RuntimeOptions::default().with_backend(BackendChoice::Cpu)).await
}

fn js_function(args: &str, body: &str) -> JsValue {
    Function::new_with_args(args, body).into()
}

#[wasm_bindgen_test]
async fn cpu_backend_runs_javascript_handlers_with_state_drops_and_failures() {
    let rt = cpu_runtime().await;
    assert_eq!(get(&rt.adapter().unwrap(), "backend").as_string().as_deref(), Some("cpu"));
    let counter = object(&[
        ("id", "js-counter".into()),
        ("input", object(&[("name", "CpuIn".into()), ("fields", object(&[("value", "i32".into())]))])),
        ("output", object(&[("name", "CpuOut".into()), ("fields", object(&[("result", "i32".into())]))])),
        ("state", object(&[("length", 2.into()), ("type", "i32".into())])),
        (
            "handler",
            js_function(
                "m, s",
                "if (!(s instanceof Int32Array)) throw new TypeError('state is an Int32Array');
                 s[0] += m.value; s[1] += 1;
                 if (m.value === 13) throw new RangeError('unlucky');
                 if (m.value < 0) return null;
                 if (m.value === 7) return Promise.resolve({ result: 7 });
                 if (m.value === 8) return { result: 'eight' };
                 return { result: m.value * 3 };",
            ),
        ),
    ]);
    ring_kernel(counter).unwrap();
    start(&rt, "js-counter", None).await;
    let batch = js_sys::Int32Array::from([1, -2, 13, 7, 8, 4].as_slice());
    assert_eq!(js(rt.send_batch("js-counter".into(), batch.into(), None)).await.unwrap().as_f64(), Some(6.0));
    assert_eq!(receive_values(&rt, "js-counter", 2).await, [3, 12], "kept answers, in order");
    let dropped = js(rt.call("js-counter".into(), value(-5), Some(timeout(5000)))).await;
    assert_js_error(dropped, "MessageDroppedError", &[("kernelId", "js-counter")]);
    let t = rt.get_telemetry("js-counter".into()).unwrap();
    assert_eq!((num(&t, "messagesProcessed"), num(&t, "messagesDropped"), num(&t, "errors")), (7.0, 5.0, 3.0));
    let why = get(&t, "lastError").as_string().expect("a failure is reported");
    assert!(["RangeError: unlucky", "Promise", "malformed"].iter().any(|w| why.contains(w)), "{why}");
    let state = js(rt.read_state("js-counter".into())).await.unwrap();
    assert!(state.is_instance_of::<js_sys::Int32Array>());
    assert_eq!(js_sys::Int32Array::new(&state).to_vec(), [1 - 2 + 13 + 7 + 8 + 4 - 5, 7], "state updates persist");
    js(rt.terminate("js-counter".into(), Some(timeout(5000)))).await.unwrap();
    assert_eq!(state_after(&rt, "js-counter").await, [26, 7], "and outlive terminate");
}

async fn state_after(rt: &JsRuntime, id: &str) -> Vec<i32> {
    js_sys::Int32Array::new(&js(rt.read_state(id.into())).await.unwrap()).to_vec()
}

#[wasm_bindgen_test]
async fn each_backend_refuses_kernels_it_cannot_run() {
    let (cpu, gpu) = (cpu_runtime().await, js_runtime().await);
    let request = || object(&[("name", "CpuIn".into()), ("fields", object(&[("value", "i32".into())]))]);
    let response = || object(&[("name", "CpuOut".into()), ("fields", object(&[("result", "i32".into())]))]);
    let wgsl_only = object(&[
        ("input", request()),
        ("output", response()),
        ("wgsl", "fn handle(m: CpuIn) -> CpuOut { return CpuOut(m.value); }".into()),
    ]);
    let launched = js(cpu.launch("wgsl-only".into(), Some(wgsl_only), None)).await;
    assert_js_error(launched, "KernelCompileError", &[("kernelId", "wgsl-only")]);
    let handler_only = object(&[
        ("input", request()),
        ("output", response()),
        ("handler", js_function("m", "return { result: m.value };")),
    ]);
    let launched = js(gpu.launch("handler-only".into(), Some(handler_only.clone()), None)).await;
    assert_js_error(launched, "KernelCompileError", &[("kernelId", "handler-only")]);
    js(cpu.launch("handler-only".into(), Some(handler_only), None)).await.expect("a handler runs on the cpu backend");
    let neither = object(&[("id", "neither".into()), ("input", request()), ("output", response())]);
    assert!(ring_kernel(neither).is_err(), "a kernel needs wgsl or a handler");
    let not_a_function =
        object(&[("id", "x".into()), ("input", request()), ("output", response()), ("handler", 5.into())]);
    let error = ring_kernel(not_a_function).unwrap_err();
    assert_eq!(get(&error, "name").as_string().as_deref(), Some("TypeError"));
}

#[wasm_bindgen_test]
async fn builtins_on_the_cpu_backend_answer_as_on_webgpu() {
    let (cpu, gpu) = (cpu_runtime().await, js_runtime().await);
    let values: Vec<i32> = (0..1000).map(|i| i * 7919 - 3_000_000).collect();
    #[repr(C)]
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    struct Tile([f32; 3], u32);
    let tiles: Vec<Tile> = (0..16).map(|i| Tile([-2.0 + 0.15 * i as f32, -1.0 + 0.1 * i as f32, 0.01], 200)).collect();
    for rt in [&cpu, &gpu] {
        start(rt, "doubler", None).await;
        start(rt, "mandelbrot", None).await;
    }
    let on_gpu: Vec<i32> = round_trip(&gpu, "doubler", &values).await;
    assert_eq!(round_trip::<i32, i32>(&cpu, "doubler", &values).await, on_gpu);
    let (on_gpu, on_cpu): (Vec<[u32; 64]>, Vec<[u32; 64]>) =
        (round_trip(&gpu, "mandelbrot", &tiles).await, round_trip(&cpu, "mandelbrot", &tiles).await);
    let differing = on_gpu.iter().flatten().zip(on_cpu.iter().flatten()).filter(|(g, c)| g != c).count();
    assert!(differing * 100 <= 64 * tiles.len(), "{differing} pixels differ");
}

#[wasm_bindgen_test]
async fn without_webgpu_create_explains_and_the_cpu_backend_still_works() {
    // Make this page look like a browser without WebGPU, then put navigator.gpu back.
    let prototype = get(&js_sys::global(), "Navigator");
    let prototype = get(&prototype, "prototype");
    let original = Object::get_own_property_descriptor(prototype.unchecked_ref::<Object>(), &"gpu".into());
    let hidden = object(&[("get", js_function("", "return undefined;")), ("configurable", true.into())]);
    Object::define_property(prototype.unchecked_ref::<Object>(), &"gpu".into(), hidden.unchecked_ref::<Object>());
    let refused = js(JsRuntime::create(None)).await;
    let fallback = js(JsRuntime::create(Some(object(&[("backend", "cpu".into())])))).await;
    Object::define_property(prototype.unchecked_ref::<Object>(), &"gpu".into(), original.unchecked_ref::<Object>());

    let error = refused.clone().expect_err("no WebGPU");
    let message = get(&error, "message").as_string().unwrap();
    assert_js_error(refused, "BackendUnavailableError", &[]);
    assert!(message.contains("navigator.gpu is missing") && message.contains("backend: \"cpu\""), "{message}");
    let runtime = fallback.expect("the cpu backend needs no WebGPU");
    js(call_method(&runtime, "launch", &["doubler".into()]).into()).await.unwrap();
    js(call_method(&runtime, "activate", &["doubler".into()]).into()).await.unwrap();
    let answer = js(call_method(&runtime, "call", &["doubler".into(), value(21)]).into()).await.unwrap();
    assert_eq!(num(&answer, "result"), 42.0);
}

// ---- kernel-to-kernel pipelines (issue 7) ----

#[wasm_bindgen_test]
async fn a_connected_pipeline_answers_in_one_tick_through_the_js_api() {
    let rt = js_runtime().await;
    let request = object(&[("name", "StageIn".into()), ("fields", object(&[("value", "i32".into())]))]);
    let response = object(&[("name", "StageOut".into()), ("fields", object(&[("result", "i32".into())]))]);
    let stages = [
        ("js-add1", "m.value + 1"),
        ("js-times2", "m.value * 2"),
        ("js-add3", "m.value + 3"),
        ("js-times5", "m.value * 5"),
    ];
    for (id, expr) in stages {
        let wgsl = format!("fn handle(m: StageIn) -> StageOut {{ return StageOut({expr}); }}");
        let def = object(&[("input", request.clone()), ("output", response.clone()), ("wgsl", wgsl.into())]);
        start(&rt, id, Some(def)).await;
    }
    for pair in stages.windows(2) {
        js(rt.connect(pair[0].0.into(), pair[1].0.into())).await.unwrap();
    }
    let ticks = num(&rt.get_summary().unwrap(), "ticks");
    js(rt.send("js-add1".into(), value(7), None)).await.unwrap();
    let answer = js(rt.receive("js-times5".into(), Some(timeout(20_000)))).await.unwrap();
    assert_eq!(num(&answer, "result"), (((7.0 + 1.0) * 2.0) + 3.0) * 5.0);
    let t = rt.get_telemetry("js-add1".into()).unwrap();
    assert_eq!(get(&t, "connectedTo").as_string().as_deref(), Some("js-times2"));
    assert_eq!(num(&t, "messagesForwarded"), 1.0);
    assert_eq!(num(&rt.get_summary().unwrap(), "ticks") - ticks, 1.0, "four stages, one submit and one readback");
    let cycle = js(rt.connect("js-times5".into(), "js-add1".into())).await;
    assert_js_error(cycle, "TypeError", &[]);
    let call = js(rt.call("js-add1".into(), value(1), None)).await;
    assert_js_error(call, "TypeError", &[]);
}

#[wasm_bindgen_test]
async fn concurrent_launches_each_get_their_own_compile_result() {
    // WebGPU's error scopes are a stack per device: overlapping launches must not pop each
    // other's (this panicked with "Mismatched pop_error_scope call" before launches took turns).
    let rt = js_runtime().await;
    let request = object(&[("name", "ManyIn".into()), ("fields", object(&[("value", "i32".into())]))]);
    let response = object(&[("name", "ManyOut".into()), ("fields", object(&[("result", "i32".into())]))]);
    let definition =
        |wgsl: &str| object(&[("input", request.clone()), ("output", response.clone()), ("wgsl", wgsl.into())]);
    let good = "fn handle(m: ManyIn) -> ManyOut { return ManyOut(m.value + 1); }";
    let bad = "fn handle(m: ManyIn) -> ManyOut { return ManyOut(m.missing); }";
    let launches: Vec<Promise> = (0..8)
        .map(|i| rt.launch(format!("many-{i}").into(), Some(definition(if i == 5 { bad } else { good })), None))
        .collect();
    let settled = js(Promise::all_settled(&launches.into_iter().collect::<Array>())).await.unwrap();
    for (i, outcome) in Array::from(&settled).iter().enumerate() {
        let status = get(&outcome, "status").as_string().unwrap();
        if i == 5 {
            assert_eq!(status, "rejected");
            assert_eq!(get(&get(&outcome, "reason"), "name").as_string().as_deref(), Some("KernelCompileError"));
        } else {
            assert_eq!(status, "fulfilled", "many-{i}: {:?}", get(&outcome, "reason"));
            js(rt.activate(format!("many-{i}").into())).await.unwrap();
            let answer = js(rt.call(format!("many-{i}").into(), value(i as i32), Some(timeout(20_000)))).await.unwrap();
            assert_eq!(num(&answer, "result"), i as f64 + 1.0);
        }
    }
}

// ---- soak and concurrency through the JS API (issue 6) ----
//
// The same tagged messages as the native soak (`tests/common`): every answer carries its sender
// and sequence number, so order and exactly-once are checked on each one.

use common::{all_exactly_once, answer_after, stage_wgsl, InOrder, Increasing, Tagged, TAGGED_FIELDS, TAGGED_NAME};

const SOAK_MESSAGES: u32 = 1_000_000;
const SOAK_SEED: u64 = 0x5eed_0006;
/// Send batches are 1..=SOAK_MAX_BATCH messages; what does not fit in the 4096-slot queue is sent
/// again later.
const SOAK_MAX_BATCH: u32 = 20_000;

/// `defineMessage("Tagged", { tag: "u32", seq: "u32", value: "u32" })`.
fn tagged_message() -> JsValue {
    let fields = object(&TAGGED_FIELDS.map(|name| (name, JsValue::from("u32"))));
    define_message(TAGGED_NAME.into(), fields).unwrap()
}

fn tagged_js(message: Tagged) -> JsValue {
    object(&[("tag", message.tag.into()), ("seq", message.seq.into()), ("value", message.value.into())])
}

/// Launches, activates and connects `{prefix}-0 → {prefix}-1 → ...` through the JS API; stage `k`
/// computes `stage_value(value, k)`, in WGSL and as a JavaScript handler for the cpu backend.
async fn start_tagged_stages(rt: &JsRuntime, prefix: &str, stages: u32, queue_size: u32) -> Vec<String> {
    let mut ids = Vec::new();
    for stage in 0..stages {
        let id = format!("{prefix}-{stage}");
        let handler =
            format!("return {{ tag: m.tag, seq: m.seq, value: (Math.imul(m.value, 3) + {}) >>> 0 }};", stage + 1);
        let definition = object(&[
            ("input", tagged_message()),
            ("output", tagged_message()),
            ("wgsl", stage_wgsl(stage).into()),
            ("handler", js_function("m", &handler)),
        ]);
        js(rt.launch(id.clone().into(), Some(definition), Some(object(&[("queueSize", queue_size.into())]))))
            .await
            .unwrap();
        js(rt.activate(id.clone().into())).await.unwrap();
        ids.push(id);
    }
    for pair in ids.windows(2) {
        js(rt.connect(pair[0].clone().into(), pair[1].clone().into())).await.unwrap();
    }
    ids
}

/// `sendBatch(id, Uint8Array)` of packed messages: how many were queued (all, or as many as
/// the `QueueFullError` of a timeout that ran out says).
async fn send_tagged(rt: &JsRuntime, id: &str, batch: &[Tagged], timeout_ms: Option<u32>) -> u32 {
    let packed = js_sys::Uint8Array::from(bytemuck::cast_slice::<Tagged, u8>(batch));
    let options = timeout_ms.map(timeout);
    match js(rt.send_batch(id.into(), packed.into(), options)).await {
        Ok(all) => all.as_f64().unwrap() as u32,
        Err(e) if name_of(&e) == "QueueFullError" => num(&e, "accepted") as u32,
        Err(e) => panic!("sendBatch refused: {e:?}"),
    }
}

/// `receiveBatch(id, { max, timeout })`: answer objects, or with `packed` the bytes, unpacked.
async fn receive_tagged(
    rt: &JsRuntime,
    id: &str,
    max: usize,
    timeout_ms: Option<u32>,
    packed: bool,
) -> Result<Vec<Tagged>, JsValue> {
    let mut options = vec![("max", JsValue::from(max as u32)), ("packed", packed.into())];
    options.extend(timeout_ms.map(|ms| ("timeout", JsValue::from(ms))));
    let answers = js(rt.receive_batch(id.into(), Some(object(&options)))).await?;
    if packed {
        return Ok(bytemuck::pod_collect_to_vec(&js_sys::Uint8Array::new(&answers).to_vec()));
    }
    Ok(answers.unchecked_into::<js_sys::Array>().iter().map(|answer| tagged_from_js(&answer)).collect())
}

fn tagged_from_js(message: &JsValue) -> Tagged {
    let field = |name| num(message, name) as u32;
    Tagged { tag: field("tag"), seq: field("seq"), value: field("value") }
}

/// The browser soak over `stages` connected kernels: `messages` messages in seeded random
/// steps (a `sendBatch` of random size taking what fits now or, one in ten, a single `send`; a
/// `receiveBatch` of random size or, one in ten, a single `receive`; or a toggle of a random
/// stage), every answer checked in order as it arrives, then every counter checked. While a stage
/// is paused a receive only takes what is already there (`timeout: 0`); those that find nothing
/// (`TimeoutError`) and single sends that find no room (`QueueFullError`) are counted and must be
/// the only errors. On WebGPU, one step in 500 also loses the device (`destroyDevice`, wait for
/// every stage to fail, `recover`), and nothing may change in what arrives. Logs one JSON line.
async fn js_soak(rt: JsRuntime, prefix: &str, stages: u32, messages: u32) {
    let ids = start_tagged_stages(&rt, prefix, stages, 4096).await;
    let (first, last) = (&ids[0], &ids[ids.len() - 1]);
    let mut rng = fastrand::Rng::with_seed(SOAK_SEED);
    let mut order = InOrder::new(1, stages);
    let mut active = vec![true; ids.len()];
    let mut batch: Vec<Tagged> = Vec::with_capacity(SOAK_MAX_BATCH as usize);
    let (mut sent, mut toggles, mut sends, mut refused, mut receives, mut empty) = (0u32, 0, 0, 0u64, 0, 0u64);
    let on_gpu = get(&rt.adapter().unwrap(), "backend").as_string().as_deref() != Some("cpu");
    let mut faults = 0;
    let started = js_sys::Date::now();
    while order.received < u64::from(messages) {
        let step = rng.u32(0..100);
        if on_gpu && rng.u32(0..500) == 0 {
            rt.destroy_device(None).unwrap();
            for _ in 0..10_000 {
                if ids.iter().all(|id| rt.get_state(id.clone().into()).unwrap() == "failed") {
                    break;
                }
                sleep_ms(1).await;
            }
            js(rt.recover()).await.unwrap();
            faults += 1;
        } else if step < 3 {
            let stage = rng.usize(..ids.len());
            let id = ids[stage].clone();
            js(if active[stage] { rt.deactivate(id.clone().into()) } else { rt.reactivate(id.into()) }).await.unwrap();
            active[stage] = !active[stage];
            toggles += 1;
        } else if step < 50 && sent < messages {
            sends += 1;
            if rng.u32(0..10) == 0 {
                match js(rt.send(first.clone().into(), tagged_js(Tagged::new(0, sent)), Some(timeout(0)))).await {
                    Ok(_) => sent += 1,
                    Err(e) if name_of(&e) == "QueueFullError" => refused += 1,
                    Err(e) => panic!("send: {e:?}"),
                }
            } else {
                let end = sent + rng.u32(1..=SOAK_MAX_BATCH).min(messages - sent);
                batch.clear();
                batch.extend((sent..end).map(|seq| Tagged::new(0, seq)));
                // A batch cut short by its zero timeout is a QueueFullError saying how many went in.
                let accepted = send_tagged(&rt, first, &batch, Some(0)).await;
                refused += u64::from((accepted as usize) < batch.len());
                sent += accepted;
            }
        } else if u64::from(sent) > order.received {
            let flowing = !active.contains(&false);
            let wait = if flowing { 60_000 } else { 0 };
            let received = if rng.u32(0..10) == 0 {
                js(rt.receive(last.clone().into(), Some(timeout(wait))))
                    .await
                    .map(|answer| vec![tagged_from_js(&answer)])
            } else {
                let max = rng.usize(1..=2 * SOAK_MAX_BATCH as usize);
                let answers = receive_tagged(&rt, last, max, Some(wait), rng.bool()).await;
                answers.inspect(|a| assert!(a.len() <= max, "asked for at most {max}, got {}", a.len()))
            };
            match received {
                Ok(answers) => {
                    order.check(&answers);
                    receives += 1;
                }
                Err(e) if !flowing && name_of(&e) == "TimeoutError" => empty += 1,
                Err(e) => panic!("receive with {} outstanding: {e:?}", u64::from(sent) - order.received),
            }
        }
    }
    let seconds = (js_sys::Date::now() - started) / 1000.0;
    console_log!(
        "{{\"test\":\"browser-soak\",\"backend\":{},\"stages\":{stages},\"messages\":{messages},\"toggles\":{toggles},\
         \"faults\":{faults},\"sends\":{sends},\"refusedSends\":{refused},\"receives\":{receives},\"emptyReceives\":{empty},\
         \"seconds\":{seconds:.2},\"seed\":{SOAK_SEED}}}",
        get(&rt.adapter().unwrap(), "backend").as_string().map(|b| format!("{b:?}")).unwrap_or_default()
    );
    assert_eq!(order.per_sender(), [messages]);
    for (id, _) in ids.iter().zip(&active).filter(|(_, active)| !**active) {
        js(rt.reactivate(id.clone().into())).await.unwrap();
    }
    let total = f64::from(messages);
    for (i, id) in ids.iter().enumerate() {
        let t = rt.get_telemetry(id.clone().into()).unwrap();
        let (is_first, is_last) = (i == 0, i + 1 == ids.len());
        let expected = [
            ("messagesSent", if is_first { total } else { 0.0 }),
            ("messagesProcessed", total),
            ("messagesForwarded", if is_last { 0.0 } else { total }),
            ("messagesReceived", if is_last { total } else { 0.0 }),
            ("messagesDropped", 0.0),
            ("inputQueueDepth", 0.0),
            ("inFlight", 0.0),
            ("outputQueueDepth", 0.0),
            // Refused sends; a receive that timed out is not the kernel's error.
            ("errors", (if is_first { refused } else { 0 }) as f64),
        ];
        for (key, want) in expected {
            assert_eq!(num(&t, key), want, "{id}: {key}");
        }
    }
    let summary = rt.get_summary().unwrap();
    assert_eq!(num(&summary, "totalMessages"), total * f64::from(stages), "every stage processed every message");
    assert_eq!((num(&summary, "totalSent"), num(&summary, "totalReceived")), (total, total));
    assert!(toggles > 0, "the schedule toggled");
    if on_gpu {
        assert!(faults > 0, "the schedule lost the device");
        assert_eq!(num(&get(&summary, "device"), "recoveries"), f64::from(faults));
    }
}

#[wasm_bindgen_test]
async fn soak_a_million_messages_through_one_kernel_with_random_batches_and_toggles_in_the_browser() {
    js_soak(js_runtime().await, "js-soak", 1, SOAK_MESSAGES).await;
}

#[wasm_bindgen_test]
async fn soak_a_million_messages_through_a_three_stage_pipeline_with_toggles_in_the_browser() {
    js_soak(js_runtime().await, "js-soak-pipe", 3, SOAK_MESSAGES).await;
}

/// The same soak on the cpu backend: JavaScript handlers, three connected stages. 200,000
/// messages, not a million: the test build calls each handler at ~100k messages/s, so a million
/// through three stages took 32 s of the browser run's time limit.
#[wasm_bindgen_test]
async fn soak_through_three_javascript_handler_stages_on_the_cpu_backend() {
    js_soak(cpu_runtime().await, "js-soak-cpu", 3, 200_000).await;
}

/// JS promises racing on one kernel: eight senders (each its own tagged sequence in random
/// batches of `sendBatch`, waiting for room), three receivers (`receiveBatch` of random size), a
/// toggler (deactivate / reactivate at random short intervals) and 100 `call`s, all in flight
/// together on the page's event loop. Every call resolves with its own answer; each receiver's
/// stream keeps per-sender order ([`Increasing`]: its batches come one after another from the head
/// of the one output queue) and never holds a call's answer; together they hold every plain answer
/// exactly once. Receivers stop when the kernel, terminated after the last send, is drained.
#[wasm_bindgen_test]
async fn racing_send_receive_call_and_toggle_promises_keep_per_sender_fifo_and_lose_nothing() {
    use futures_util::future::{join, join_all};
    use std::cell::Cell;
    const SENDERS: u32 = 8;
    const PER_SENDER: u32 = 12_500;
    const CALLS: u32 = 100;
    let rt = js_runtime().await;
    let id = start_tagged_stages(&rt, "js-race", 1, 256).await.remove(0);
    let id = id.as_str();
    let started = js_sys::Date::now();
    let senders_done = Cell::new(false);
    let toggles = Cell::new(0u32);
    let senders = join_all((0..SENDERS).map(|tag| {
        let rt = &rt;
        async move {
            let mut rng = fastrand::Rng::with_seed(SOAK_SEED + u64::from(tag));
            let mut seq = 0;
            while seq < PER_SENDER {
                let end = (seq + rng.u32(1..=64)).min(PER_SENDER);
                let batch: Vec<Tagged> = (seq..end).map(|s| Tagged::new(tag, s)).collect();
                assert_eq!(send_tagged(rt, id, &batch, None).await, end - seq, "a send without timeout takes all");
                seq = end;
            }
        }
    }));
    let calls = join_all((0..CALLS).map(|i| {
        let rt = &rt;
        async move {
            let message = Tagged::new(100 + i % 4, i);
            let answer = js(rt.call(id.into(), tagged_js(message), Some(timeout(60_000)))).await.unwrap();
            assert_eq!(tagged_from_js(&answer), answer_after(message, 1), "call {message:?} got someone else's answer");
        }
    }));
    let toggler = async {
        let mut rng = fastrand::Rng::with_seed(SOAK_SEED + 300);
        loop {
            futures_timer::Delay::new(std::time::Duration::from_micros(rng.u64(0..3000))).await;
            js(rt.deactivate(id.into())).await.unwrap();
            futures_timer::Delay::new(std::time::Duration::from_micros(rng.u64(0..3000))).await;
            js(rt.reactivate(id.into())).await.unwrap();
            toggles.set(toggles.get() + 2);
            if senders_done.get() {
                return;
            }
        }
    };
    let senders_and_calls = async {
        join(senders, calls).await;
        senders_done.set(true);
    };
    let receivers = join_all((0..3u64).map(|r| {
        let rt = &rt;
        async move {
            let mut rng = fastrand::Rng::with_seed(SOAK_SEED + 100 + r);
            let mut stream = Increasing::new(SENDERS as usize, 1);
            loop {
                // Half the receivers take objects (the codec), half packed bytes.
                match receive_tagged(rt, id, rng.usize(1..=100), None, r % 2 == 0).await {
                    Ok(answers) => stream.check(&answers),
                    Err(e) if name_of(&e) == "KernelStateError" => return stream,
                    Err(e) => panic!("receiveBatch: {e:?}"),
                }
            }
        }
    }));
    let coordinator = async {
        join(senders_and_calls, toggler).await;
        js(rt.terminate(id.into(), Some(timeout(60_000)))).await.unwrap();
    };
    let ((), receivers) = join(coordinator, receivers).await;
    let counts: Vec<usize> = receivers.iter().map(|r| r.seen.len()).collect();
    console_log!(
        "{{\"test\":\"browser-race\",\"senders\":{SENDERS},\"receivers\":3,\"calls\":{CALLS},\"messages\":{},\
         \"toggles\":{},\"perReceiver\":{counts:?},\"seconds\":{:.2}}}",
        SENDERS * PER_SENDER,
        toggles.get(),
        (js_sys::Date::now() - started) / 1000.0
    );
    all_exactly_once(&receivers, &[PER_SENDER; SENDERS as usize]);
    let t = rt.get_telemetry(id.into()).unwrap();
    let total = f64::from(SENDERS * PER_SENDER + CALLS);
    for (key, want) in [
        ("messagesSent", total),
        ("messagesProcessed", total),
        ("messagesReceived", total),
        ("messagesDropped", 0.0),
        ("answersAbandoned", 0.0),
        ("unprocessedAtTermination", 0.0),
    ] {
        assert_eq!(num(&t, key), want, "{key}");
    }
}

// ---- tracing ----

/// The names of the `ringkernel:` measures in the page's performance timeline.
fn ringkernel_measures() -> Vec<(String, JsValue)> {
    let performance = get(&js_sys::global(), "performance");
    let entries: Array = call_method(&performance, "getEntriesByType", &["measure".into()]).dyn_into().unwrap();
    entries
        .iter()
        .filter_map(|entry| {
            let name = get(&entry, "name").as_string()?;
            name.starts_with("ringkernel:").then(|| (name, get(&entry, "detail")))
        })
        .collect()
}

fn clear_ringkernel_measures() {
    let performance = get(&js_sys::global(), "performance");
    for (name, _) in ringkernel_measures() {
        call_method(&performance, "clearMeasures", &[name.into()]);
    }
}

/// `create({ tracing: true })` records launches, ticks and their steps, and recoveries as User
/// Timing measures (what DevTools' performance panel shows); without it, none.
#[wasm_bindgen_test]
async fn tracing_records_user_timing_measures_only_when_on() {
    for on in [true, false] {
        clear_ringkernel_measures();
        let runtime = js(JsRuntime::create(Some(object(&[("tracing", on.into())])))).await.expect("create() on WebGPU");
        let rt = |name: &'static str, args: Vec<JsValue>| {
            let runtime = runtime.clone();
            async move { invoke(&runtime, name, &args).await.unwrap_or_else(|e| panic!("{name}: {e:?}")) }
        };
        rt("launch", vec!["doubler".into()]).await;
        rt("activate", vec!["doubler".into()]).await;
        let answer = rt("call", vec!["doubler".into(), value(21), timeout(20_000)]).await;
        assert_eq!(num(&answer, "result"), 42.0);
        rt("destroyDevice", vec![]).await;
        rt("recover", vec![]).await;
        rt("dispose", vec![]).await;
        let measures = ringkernel_measures();
        let count = |name: &str| measures.iter().filter(|(n, _)| n == name).count();
        if !on {
            assert_eq!(
                measures.len(),
                0,
                "measures with tracing off: {:?}",
                measures.iter().map(|m| &m.0).collect::<Vec<_>>()
            );
            continue;
        }
        let launches: Vec<_> = measures.iter().filter(|(n, _)| n == "ringkernel:launch").collect();
        assert_eq!(launches.len(), 1);
        assert_eq!(get(&launches[0].1, "kernel").as_string().as_deref(), Some("doubler"));
        assert!(count("ringkernel:tick") >= 1, "{:?}", measures.iter().map(|m| &m.0).collect::<Vec<_>>());
        assert!(count("ringkernel:tick.plan") >= 1);
        assert!(count("ringkernel:tick.execute") >= 1);
        assert!(count("ringkernel:tick.deliver") >= 1);
        assert_eq!(count("ringkernel:recovery"), 1);
    }
}

// ---- health ----

/// `health()` in JavaScript: `{ status, reason, issues }`, a full queue naming its kernel, a
/// lost device unhealthy until `recover()`.
#[wasm_bindgen_test]
async fn health_reports_status_reason_and_issues_to_javascript() {
    let runtime = js(JsRuntime::create(Some(object(&[("health", object(&[("queueFill", 0.5.into())]))]))))
        .await
        .expect("create() on WebGPU");
    let rt = |name: &'static str, args: Vec<JsValue>| {
        let runtime = runtime.clone();
        async move { invoke(&runtime, name, &args).await.unwrap_or_else(|e| panic!("{name}: {e:?}")) }
    };
    let health = rt("health", vec![]).await;
    assert_eq!(get(&health, "status").as_string().as_deref(), Some("healthy"));
    assert!(get(&health, "reason").is_null());
    assert_eq!(Array::from(&get(&health, "issues")).length(), 0);

    rt("launch", vec!["doubler".into(), NONE, object(&[("queueSize", 4.into())])]).await;
    let batch = array(&[value(1), value(2), value(3)]);
    rt("sendBatch", vec!["doubler".into(), batch]).await;
    let health = rt("health", vec![]).await;
    assert_eq!(get(&health, "status").as_string().as_deref(), Some("degraded"));
    assert_eq!(get(&health, "reason").as_string().as_deref(), Some("kernel 'doubler': input queue 75% full"));
    let issue = Array::from(&get(&health, "issues")).get(0);
    assert_eq!(get(&issue, "severity").as_string().as_deref(), Some("degraded"));
    assert_eq!(get(&issue, "subject").as_string().as_deref(), Some("kernel"));
    assert_eq!(get(&issue, "kernel").as_string().as_deref(), Some("doubler"));

    rt("destroyDevice", vec![]).await;
    let mut status = String::new();
    for _ in 0..200 {
        status = get(&rt("health", vec![]).await, "status").as_string().unwrap();
        if status == "unhealthy" {
            break;
        }
        sleep_ms(10).await;
    }
    assert_eq!(status, "unhealthy", "a lost device");
    let device = Array::from(&get(&rt("health", vec![]).await, "issues")).get(0);
    assert_eq!(get(&device, "subject").as_string().as_deref(), Some("device"));
    assert!(get(&device, "kernel").is_undefined() || get(&device, "kernel").is_null());
    rt("recover", vec![]).await;
    rt("activate", vec!["doubler".into()]).await;
    let answers =
        rt("receiveBatch", vec!["doubler".into(), object(&[("max", 3.into()), ("timeout", 20_000.into())])]).await;
    assert_eq!(Array::from(&answers).length(), 3);
    assert_eq!(get(&rt("health", vec![]).await, "status").as_string().as_deref(), Some("healthy"));
    rt("dispose", vec![]).await;
    assert_eq!(get(&rt("health", vec![]).await, "status").as_string().as_deref(), Some("unhealthy"));
}

/// `create({ preset })`: RuntimeBuilder's presets in JavaScript, the other keys overriding.
#[wasm_bindgen_test]
async fn presets_in_javascript_start_from_the_builders_options() {
    let create = |pairs: &[(&str, JsValue)]| js(JsRuntime::create(Some(object(pairs))));
    let production = create(&[("preset", "production".into()), ("backend", "cpu".into())]).await.unwrap();
    let status = invoke(&production, "degradationStatus", &[]).await.unwrap();
    assert_eq!(get(&status, "enabled").as_bool(), Some(true), "production has the degradation manager");
    invoke(&production, "launch", &["doubler".into()]).await.unwrap();
    let circuit = invoke(&production, "circuitBreaker", &["doubler".into()]).await.unwrap();
    assert_eq!(get(&circuit, "state").as_string().as_deref(), Some("closed"));

    let fast = create(&[("preset", "highPerformance".into()), ("backend", "cpu".into())]).await.unwrap();
    invoke(&fast, "launch", &["doubler".into()]).await.unwrap();
    assert!(invoke(&fast, "getTelemetry", &["doubler".into()]).await.unwrap().is_null(), "no telemetry");
    let overridden =
        create(&[("preset", "highPerformance".into()), ("backend", "cpu".into()), ("enableTelemetry", true.into())])
            .await
            .unwrap();
    invoke(&overridden, "launch", &["doubler".into()]).await.unwrap();
    assert!(invoke(&overridden, "getTelemetry", &["doubler".into()]).await.unwrap().is_object(), "given keys win");
    let status = invoke(&overridden, "degradationStatus", &[]).await.unwrap();
    assert_eq!(get(&status, "enabled").as_bool(), Some(false));

    for bad in [JsValue::from("fast"), JsValue::from(1), JsValue::NULL] {
        assert_js_error(create(&[("preset", bad)]).await, "TypeError", &[]);
    }
    assert_js_error(create(&[("preset", "production".into()), ("debugg", true.into())]).await, "TypeError", &[]);
}

/// `receiveBatch({ min, max, timeout })`, the runtime's and a handle's: a batch waits until
/// `min` answers are there (those there meanwhile stay queued, owed to it: `tryReceive` gives
/// `null`), then takes up to `max` in order; at its timeout it takes what is there, one or more
/// (`TimeoutError` with none). A `min` of 0, over `max` or over the output queue size is a
/// `RangeError` at the call, and so is a bad number; an abort while it waits takes nothing.
#[wasm_bindgen_test]
async fn receive_batch_with_a_min_waits_for_that_many_or_its_timeout() {
    let rt = js_runtime().await;
    let options = object(&[("queueSize", 16.into()), ("outputQueueSize", 8.into()), ("autoActivate", true.into())]);
    let doubler = js(rt.launch("doubler".into(), None, Some(options))).await.unwrap();
    let depth = || num(&call_method(&doubler, "status", &[]), "outputQueueDepth");
    let until_depth = |n: f64| async move {
        for _ in 0..4000 {
            if depth() == n {
                return;
            }
            sleep_ms(5).await;
        }
        panic!("{n} answers never came");
    };
    let send = |values: &[i32]| js(rt.send_batch("doubler".into(), js_sys::Int32Array::from(values).into(), None));
    let batch = |pairs: &[(&str, JsValue)]| js(rt.receive_batch("doubler".into(), Some(object(pairs))));
    let results = |answers: JsValue| {
        answers.unchecked_into::<Array>().iter().map(|a| num(&a, "result") as i32).collect::<Vec<_>>()
    };

    send(&[1, 2]).await.unwrap();
    until_depth(2.0).await;
    let waiting = batch(&[("min", 4.into()), ("max", 8.into()), ("timeout", 20_000.into())]);
    sleep_ms(100).await;
    assert_eq!(depth(), 2.0, "left queued while the batch waits for four");
    assert_eq!(call_method(&doubler, "tryReceive", &[]), JsValue::NULL, "owed to the waiting batch");
    send(&[3, 4, 5]).await.unwrap();
    let mut got = results(waiting.await.unwrap());
    assert!((4..=5).contains(&got.len()), "{got:?}");
    if got.len() == 4 {
        got.extend(results(batch(&[("timeout", 20_000.into())]).await.unwrap()));
    }
    assert_eq!(got, [2, 4, 6, 8, 10], "in order, each once");

    // At the timeout with fewer than `min`: what is there; with none, a TimeoutError.
    send(&[6, 7]).await.unwrap();
    until_depth(2.0).await;
    let started = js_sys::Date::now();
    let short = batch(&[("min", 4.into()), ("timeout", 150.into())]).await.unwrap();
    assert_eq!(results(short), [12, 14]);
    assert!(js_sys::Date::now() - started >= 140.0, "it waited for more first");
    assert_js_error(
        batch(&[("min", 4.into()), ("timeout", 20.into())]).await,
        "TimeoutError",
        &[("kernelId", "doubler")],
    );

    // Refused at the call, taking nothing.
    send(&[1, 2, 3]).await.unwrap();
    until_depth(3.0).await;
    let refusals: [(&[(&str, JsValue)], &str); 5] = [
        (&[("min", 0.into())], "receiveBatch options: min must be a whole number from 1 to 4294967295, got 0"),
        (&[("min", 1.5.into())], "receiveBatch options: min must be a whole number from 1 to 4294967295, got 1.5"),
        (&[("min", 3.into()), ("max", 2.into())], "kernel 'doubler': a receive batch's min must be at most its max of 2, got 3"),
        (
            &[("min", 9.into()), ("timeout", 20_000.into())],
            "a receive batch's min of 9 could never be met: kernel 'doubler' holds at most 8 answers in its output queue \
             (its outputQueueSize)",
        ),
        (&[("min", "3".into())], ""),
    ];
    for (options, says) in refusals {
        let refused = batch(options).await.unwrap_err();
        let (name, message) = (name_of(&refused), get(&refused, "message").as_string().unwrap());
        match says {
            "" => assert_eq!(name, "TypeError", "{message}"),
            says => assert_eq!((name.as_str(), message.as_str()), ("RangeError", says)),
        }
    }
    assert_eq!(depth(), 3.0, "nothing taken");
    // Aborted while it waits: the signal's reason, nothing taken.
    let controller = web_sys_abort_controller();
    let signal = get(&controller, "signal");
    let aborted = batch(&[("min", 5.into()), ("signal", signal)]);
    sleep_ms(20).await;
    call_method(&controller, "abort", &[]);
    assert_eq!(name_of(&aborted.await.unwrap_err()), "AbortError");
    assert_eq!(depth(), 3.0, "the aborted batch took nothing");
    // A handle's, packed: exactly `min` there is enough.
    let options = object(&[("min", 3.into()), ("max", 3.into()), ("packed", true.into())]);
    let packed = invoke(&doubler, "receiveBatch", &[options]).await.unwrap();
    let bytes = js_sys::Uint8Array::new(&packed).to_vec();
    assert_eq!(bytemuck::pod_collect_to_vec::<u8, i32>(&bytes), [2, 4, 6]);
    // Terminated while it waits for more: what is there, then the kernel's refusal.
    send(&[8]).await.unwrap();
    until_depth(1.0).await;
    let waiting = js(call_method(&doubler, "receiveBatch", &[object(&[("min", 4.into())])]).unchecked_into());
    sleep_ms(50).await; // waiting for more
    js(rt.terminate("doubler".into(), None)).await.unwrap();
    assert_eq!(results(waiting.await.unwrap()), [16]);
    assert_js_error(batch(&[("min", 2.into())]).await, "KernelStateError", &[("state", "terminated")]);
}

/// `new AbortController()`.
fn web_sys_abort_controller() -> JsValue {
    let class: Function = get(&js_sys::global(), "AbortController").unchecked_into();
    js_sys::Reflect::construct(&class, &Array::new()).unwrap()
}

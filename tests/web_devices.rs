//! Several devices in the browser (headless Chromium, SwiftShader WebGPU), through the JavaScript
//! surface: `create({ devices: [{}, {}] })` asks for two adapters and opens a device on each;
//! `topology()`, placement, a pipeline across devices, `migrate` with a call in flight, and a soak
//! that moves a kernel (and the middle of a 3-stage pipeline) back and forth every few hundred
//! messages for 1,000,000 sequence-numbered messages. No adapter is a failure with the reason.
#![cfg(target_arch = "wasm32")]

use ringkernel_web::wasm::{define_message, ring_kernel, JsRuntime};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

mod common;

use common::web::{array, call, error_name, get, invoke, js, num, object, sleep_ms, timeout};

wasm_bindgen_test_configure!(run_in_browser);

/// A runtime on two WebGPU devices, as JavaScript creates it.
async fn two_devices() -> JsValue {
    let devices = array(&[object(&[]), object(&[("powerPreference", "low-power".into())])]);
    let options = object(&[("devices", devices), ("loadBalancing", "roundRobin".into())]);
    js(JsRuntime::create(Some(options)))
        .await
        .unwrap_or_else(|e| panic!("two WebGPU devices could not open (is --enable-unsafe-webgpu set?): {e:?}"))
}

/// Registers `id`: `value * 3 + 1`, so an answer after `k` stages names its message.
fn register(id: &str) {
    let request = define_message("Request".into(), object(&[("value", "i32".into())])).unwrap();
    let response = define_message("Response".into(), object(&[("value", "i32".into())])).unwrap();
    let wgsl = "fn handle(msg: Request) -> Response { return Response(msg.value * 3 + 1); }";
    ring_kernel(object(&[("id", id.into()), ("input", request), ("output", response), ("wgsl", wgsl.into())])).unwrap();
}

fn after(stages: u32, value: i32) -> i32 {
    (0..stages).fold(value, |v, _| v * 3 + 1)
}

/// Launches (active) and connects `prefix-0 → prefix-1 → ...`, stage `k` on `devices[k]`.
async fn pipeline(rt: &JsValue, prefix: &str, devices: &[u32]) -> Vec<String> {
    let mut ids = Vec::new();
    for (stage, device) in devices.iter().enumerate() {
        let id = format!("{prefix}-{stage}");
        register(&id);
        let options =
            object(&[("device", (*device).into()), ("autoActivate", true.into()), ("queueSize", 4096.into())]);
        invoke(rt, "launch", &[id.as_str().into(), JsValue::NULL, options]).await.unwrap();
        ids.push(id);
    }
    for pair in ids.windows(2) {
        invoke(rt, "connect", &[pair[0].as_str().into(), pair[1].as_str().into()]).await.unwrap();
    }
    ids
}

/// Sends what fits of `values` now; how many went in.
async fn send_now(rt: &JsValue, id: &str, values: &[i32]) -> usize {
    let packed = js_sys::Int32Array::from(values);
    match invoke(rt, "sendBatch", &[id.into(), packed.into(), timeout(0)]).await {
        Ok(count) => count.as_f64().unwrap() as usize,
        Err(e) if error_name(&e).0 == "QueueFullError" => num(&e, "accepted") as usize,
        Err(e) => panic!("sendBatch: {:?}", error_name(&e)),
    }
}

/// The answers waiting now; with none, yields to the page's event loop first (where the
/// runtime's tick runs: a loop of promises that settle at once would starve it).
async fn receive_now(rt: &JsValue, id: &str, max: u32) -> Vec<i32> {
    let options = object(&[("max", max.into()), ("timeout", 0.into()), ("packed", true.into())]);
    match invoke(rt, "receiveBatch", &[id.into(), options]).await {
        Ok(bytes) => bytemuck::pod_collect_to_vec(&js_sys::Uint8Array::new(&bytes).to_vec()),
        Err(e) if error_name(&e).0 == "TimeoutError" => {
            sleep_ms(0).await;
            Vec::new()
        }
        Err(e) => panic!("receiveBatch: {:?}", error_name(&e)),
    }
}

async fn device_of(rt: &JsValue, id: &str) -> u32 {
    invoke(rt, "deviceOf", &[id.into()]).await.unwrap().as_f64().unwrap() as u32
}

#[wasm_bindgen_test]
async fn two_devices_have_a_topology_placement_and_a_pipeline_across_them() {
    let rt = two_devices().await;
    assert_eq!(num(&rt, "deviceCount"), 2.0);
    let ids = pipeline(&rt, "across", &[0, 1, 0]).await;
    let topology = invoke(&rt, "topology", &[]).await.unwrap();
    let devices: js_sys::Array = get(&topology, "devices").into();
    assert_eq!(devices.length(), 2);
    for (i, device) in devices.iter().enumerate() {
        assert_eq!(num(&device, "id"), i as f64);
        assert_eq!(get(&get(&device, "adapter"), "backend").as_string().unwrap(), "browserwebgpu");
        assert!(num(&device, "memoryBytes") > 0.0);
    }
    let on_1: js_sys::Array = get(&devices.get(1), "kernels").into();
    assert_eq!(on_1.get(0).as_string().unwrap(), ids[1]);
    // The pipeline relays across devices through the host, in order.
    let (mut sent, mut answers) = (0usize, Vec::new());
    let values: Vec<i32> = (0..20_000).collect();
    while answers.len() < values.len() {
        sent += send_now(&rt, &ids[0], &values[sent..(sent + 1000).min(values.len())]).await;
        answers.extend(receive_now(&rt, &ids[2], 4096).await);
    }
    assert_eq!(answers, values.iter().map(|&v| after(3, v)).collect::<Vec<_>>());
    // Round robin: the next launch without a device goes to the device after the last pick.
    register("placed");
    invoke(&rt, "launch", &["placed".into()]).await.unwrap();
    let summary = invoke(&rt, "getSummary", &[]).await.unwrap();
    assert_eq!(js_sys::Array::from(&get(&summary, "devices")).length(), 2);
    let placed = num(&get(&get(&summary, "perKernel"), "placed"), "device");
    assert_eq!(placed, device_of(&rt, "placed").await as f64);
    // Bad input is refused by name and changes nothing.
    let e = invoke(&rt, "migrate", &["placed".into(), 7.into()]).await.unwrap_err();
    assert_eq!(error_name(&e).0, "RangeError", "{:?}", error_name(&e));
    let e = invoke(&rt, "migrate", &["placed".into(), "one".into()]).await.unwrap_err();
    assert_eq!(error_name(&e).0, "TypeError");
    // A number that is no device id is out of range, as it is for a launch's `device` option.
    for bad in [-1.0, 1.5] {
        let e = invoke(&rt, "migrate", &["placed".into(), bad.into()]).await.unwrap_err();
        assert_eq!(error_name(&e).0, "RangeError", "{bad}: {:?}", error_name(&e));
    }
    let options = object(&[("devices", array(&[object(&[("speed", 1.into())])]))]);
    let e = js(JsRuntime::create(Some(options))).await.unwrap_err();
    assert!(error_name(&e).1.contains("devices[0]: unknown option 'speed'"), "{:?}", error_name(&e));
}

#[wasm_bindgen_test]
async fn a_webgpu_and_a_cpu_device_each_get_the_kernels_they_run() {
    let devices = array(&[object(&[]), object(&[("backend", "cpu".into())])]);
    let options = object(&[("devices", devices), ("loadBalancing", "roundRobin".into())]);
    let rt = js(JsRuntime::create(Some(options))).await.expect("a WebGPU device and a cpu device");
    let host_only = |id: &str| {
        let request = define_message("Request".into(), object(&[("value", "i32".into())])).unwrap();
        let response = define_message("Response".into(), object(&[("value", "i32".into())])).unwrap();
        let handler: JsValue = js_sys::Function::new_with_args("m", "return { value: m.value * 3 + 1 };").into();
        ring_kernel(object(&[("id", id.into()), ("input", request), ("output", response), ("handler", handler)]))
            .unwrap();
    };
    // Round robin would put every other launch on the device that cannot run it.
    for round in 0..2 {
        let (gpu, host) = (format!("gpu-only-{round}"), format!("host-only-{round}"));
        register(&gpu);
        host_only(&host);
        for (id, device) in [(&gpu, 0), (&host, 1)] {
            let options = object(&[("autoActivate", true.into())]);
            invoke(&rt, "launch", &[id.as_str().into(), JsValue::NULL, options]).await.unwrap();
            assert_eq!(device_of(&rt, id).await, device, "{id} goes where it runs");
            let answer = invoke(&rt, "call", &[id.as_str().into(), object(&[("value", 4.into())])]).await.unwrap();
            assert_eq!(num(&answer, "value"), 13.0);
        }
    }
    host_only("named");
    let named = object(&[("device", 0.into())]);
    let e = invoke(&rt, "launch", &["named".into(), JsValue::NULL, named]).await.unwrap_err();
    let (name, message) = error_name(&e);
    assert_eq!(name, "KernelCompileError", "{message}");
    assert!(message.contains("its host handler runs on device 1"), "{message}");
    let e = invoke(&rt, "selectDevice", &[object(&[("backend", "webgpu".into()), ("minBufferBytes", 1e15.into())])])
        .await
        .unwrap_err();
    assert!(
        e.is_instance_of::<js_sys::RangeError>(),
        "the cpu device has no buffers to bound; the WebGPU one none that large: {e:?}"
    );
    call(&rt, "dispose", &[]).await;
}

/// `GPUBuffer.destroy()` calls so far, counted by a wrapper installed the first time.
fn destroyed_buffers() -> f64 {
    js_sys::eval(
        "if (globalThis.__destroyedBuffers === undefined) {
           globalThis.__destroyedBuffers = 0;
           const destroy = GPUBuffer.prototype.destroy;
           GPUBuffer.prototype.destroy = function () { globalThis.__destroyedBuffers++; return destroy.call(this); };
         }
         globalThis.__destroyedBuffers",
    )
    .unwrap()
    .as_f64()
    .unwrap()
}

/// Rings a kernel leaves behind (migrated away, terminated) are destroyed at once: dropped, a
/// `GPUBuffer` frees its memory only when the garbage collector gets to it, and a page churning
/// large kernels held hundreds of MiB that way.
#[wasm_bindgen_test]
async fn rings_left_behind_are_destroyed_not_left_to_the_garbage_collector() {
    destroyed_buffers();
    let rt = two_devices().await;
    register("churn");
    let options = object(&[("device", 0.into()), ("autoActivate", true.into()), ("queueSize", 4096.into())]);
    invoke(&rt, "launch", &["churn".into(), JsValue::NULL, options]).await.unwrap();
    assert_eq!(send_now(&rt, "churn", &[1, 2, 3]).await, 3);
    let mut answers = Vec::new();
    while answers.len() < 3 {
        answers.extend(receive_now(&rt, "churn", 3).await);
    }
    assert_eq!(answers, [4, 7, 10]);
    let before = destroyed_buffers();
    invoke(&rt, "migrate", &["churn".into(), 1.into()]).await.unwrap();
    let moved = destroyed_buffers();
    assert!(moved >= before + 2.0, "the input and output rings on device 0: {before} → {moved}");
    invoke(&rt, "terminate", &["churn".into()]).await.unwrap();
    let ended = destroyed_buffers();
    assert!(ended >= moved + 2.0, "the rings on device 1: {moved} → {ended}");
    call(&rt, "dispose", &[]).await;
}

#[wasm_bindgen_test]
async fn a_call_in_flight_gets_its_answer_across_a_migration() {
    let rt = two_devices().await;
    let ids = pipeline(&rt, "mover", &[0]).await;
    let id = ids[0].as_str();
    let values: Vec<i32> = (0..2000).collect();
    assert_eq!(send_now(&rt, id, &values).await, 2000);
    let (call_args, migrate_args) =
        ([id.into(), object(&[("value", 14.into())]), timeout(60_000)], [id.into(), 1.into()]);
    let call = invoke(&rt, "call", &call_args);
    let migrate = invoke(&rt, "migrate", &migrate_args);
    let (call, report) = futures_util::join!(call, migrate);
    assert_eq!(num(&call.unwrap(), "value"), 43.0);
    let report = report.unwrap();
    assert_eq!((num(&report, "from"), num(&report, "to")), (0.0, 1.0));
    assert!(num(&report, "pauseMs") >= 0.0);
    let mut answers = Vec::new();
    while answers.len() < values.len() {
        answers.extend(receive_now(&rt, id, 4096).await);
    }
    assert_eq!(answers, values.iter().map(|&v| after(1, v)).collect::<Vec<_>>(), "exactly once, in order");
    let telemetry = invoke(&rt, "getTelemetry", &[id.into()]).await.unwrap();
    assert_eq!((num(&telemetry, "device"), num(&telemetry, "migrations")), (1.0, 1.0));
    let report = invoke(&rt, "dispose", &[]).await.unwrap();
    assert_eq!(num(&report, "migratedKernels"), 1.0);
}

/// 1,000,000 messages into the first of `devices.len()` stages; the middle stage migrates to the
/// other device every `EVERY` messages sent, while messages are queued and in flight.
async fn soak(prefix: &str, devices: &[u32]) {
    const MESSAGES: i32 = 1_000_000;
    const EVERY: i32 = 500;
    let rt = two_devices().await;
    let ids = pipeline(&rt, prefix, devices).await;
    let moving = ids[ids.len() / 2].as_str();
    let (first, last) = (ids[0].as_str(), ids[ids.len() - 1].as_str());
    let stages = ids.len() as u32;
    let (mut sent, mut next, mut received, mut migrations) = (0i32, EVERY, 0i32, 0u32);
    let mut chunk = Vec::with_capacity(EVERY as usize);
    while received < MESSAGES {
        if sent < MESSAGES {
            chunk.clear();
            chunk.extend(sent..(sent + EVERY).min(MESSAGES));
            sent += send_now(&rt, first, &chunk).await as i32;
        }
        if sent >= next {
            let to = 1 - device_of(&rt, moving).await;
            invoke(&rt, "migrate", &[moving.into(), to.into()]).await.unwrap();
            migrations += 1;
            next += EVERY;
        }
        for answer in receive_now(&rt, last, 8192).await {
            assert_eq!(answer, after(stages, received), "answer {received}: lost, repeated or out of order");
            received += 1;
        }
    }
    assert!(migrations >= 1900, "{migrations} migrations");
    let telemetry = invoke(&rt, "getTelemetry", &[moving.into()]).await.unwrap();
    assert_eq!(num(&telemetry, "migrations"), migrations as f64);
    assert_eq!(num(&telemetry, "messagesProcessed"), MESSAGES as f64);
    invoke(&rt, "dispose", &[]).await.unwrap();
}

#[wasm_bindgen_test]
async fn soak_one_kernel_migrating_back_and_forth() {
    soak("wsoak1", &[0]).await;
}

#[wasm_bindgen_test]
async fn soak_the_middle_stage_of_a_pipeline_migrating_back_and_forth() {
    soak("wsoak3", &[0, 1, 0]).await;
}

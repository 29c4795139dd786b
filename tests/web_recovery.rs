//! Device loss, recovery and resource bounds in the browser (headless Chromium, SwiftShader
//! WebGPU), through the JavaScript surface: `destroyDevice()` calls `GPUDevice.destroy()`,
//! kernels become "failed", waiting receives and calls reject with `DeviceLostError`, and
//! `recover()` (or `autoRecover`) brings every kernel back with its state; every message is
//! answered exactly once, in order. No adapter is a failure with the reason, never a skip.
#![cfg(target_arch = "wasm32")]

use ringkernel_web::wasm::{define_message, ring_kernel, JsRuntime};
use ringkernel_web::{Runtime, RuntimeOptions};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

mod common;

use common::web::{get, js, name_of, num, object, sleep_ms, timeout};

wasm_bindgen_test_configure!(run_in_browser);

async fn js_runtime(auto_recover: bool) -> JsRuntime {
    let runtime = Runtime::new(RuntimeOptions::default().with_auto_recover(auto_recover))
        .await
        .unwrap_or_else(|e| panic!("WebGPU runtime could not start (is --enable-unsafe-webgpu set?): {e}"));
    JsRuntime::from_runtime(runtime)
}

/// Registers `id`: `value * 3 + 1` (so each answer names its message), optionally counting
/// messages in `state[0]` and summing their values in `state[1]`.
fn register(id: &str, counting: bool) {
    let request = define_message("Request".into(), object(&[("value", "i32".into())])).unwrap();
    let response = define_message("Response".into(), object(&[("result", "i32".into())])).unwrap();
    let wgsl = if counting {
        "fn handle(msg: Request) -> Response { atomicAdd(&state[0], 1); atomicAdd(&state[1], msg.value); return Response(msg.value * 3 + 1); }"
    } else {
        "fn handle(msg: Request) -> Response { return Response(msg.value * 3 + 1); }"
    };
    let mut fields = vec![("id", id.into()), ("input", request), ("output", response), ("wgsl", wgsl.into())];
    if counting {
        fields.push(("state", object(&[("length", 2.into()), ("type", "atomic<i32>".into())])));
    }
    ring_kernel(object(&fields)).unwrap();
}

fn answer_to(seq: i32) -> i32 {
    seq * 3 + 1
}

fn state(rt: &JsRuntime, id: &str) -> String {
    rt.get_state(id.into()).unwrap()
}

async fn send_values(rt: &JsRuntime, id: &str, values: &[i32]) -> usize {
    let packed = js_sys::Int32Array::from(values);
    js(rt.send_batch(id.into(), packed.into(), Some(timeout(60_000)))).await.unwrap().as_f64().unwrap() as usize
}

/// Receives up to `n` answers (fewer if a receive rejects); returns them and the rejection.
async fn receive_up_to(rt: &JsRuntime, id: &str, n: usize) -> (Vec<i32>, Option<JsValue>) {
    let mut out = Vec::new();
    while out.len() < n {
        let options =
            object(&[("timeout", 60_000.into()), ("max", ((n - out.len()) as u32).into()), ("packed", true.into())]);
        match js(rt.receive_batch(id.into(), Some(options))).await {
            Ok(bytes) => out.extend(bytemuck::pod_collect_to_vec::<u8, i32>(&js_sys::Uint8Array::new(&bytes).to_vec())),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

async fn wait_for_state(rt: &JsRuntime, id: &str, wanted: &str) {
    for _ in 0..3000 {
        if state(rt, id) == wanted {
            return;
        }
        sleep_ms(5).await;
    }
    panic!("{id} never became {wanted} (is {})", state(rt, id));
}

async fn state_words(rt: &JsRuntime, id: &str) -> Vec<i32> {
    js_sys::Int32Array::new(&js(rt.read_state(id.into())).await.unwrap()).to_vec()
}

#[wasm_bindgen_test]
async fn destroy_device_fails_every_kernel_and_recover_brings_each_back_with_its_state() {
    let rt = js_runtime(false).await;
    register("run", true);
    register("paused", false);
    for id in ["run", "paused"] {
        js(rt.launch(id.into(), None, None)).await.unwrap();
        js(rt.activate(id.into())).await.unwrap();
    }
    js(rt.deactivate("paused".into())).await.unwrap();
    // Launched only: its messages wait in its queue, and it is stranded by the loss.
    register("stranded", false);
    js(rt.launch("stranded".into(), None, None)).await.unwrap();
    assert_eq!(send_values(&rt, "stranded", &[5, 6]).await, 2);
    assert_eq!(send_values(&rt, "run", &(0..100).collect::<Vec<_>>()).await, 100);
    let (early, _) = receive_up_to(&rt, "run", 60).await;
    assert_eq!(send_values(&rt, "paused", &[1, 2, 3]).await, 3);
    let waiting_receive = rt.receive("paused".into(), None);
    let waiting_call = rt.call("paused".into(), object(&[("value", 4.into())]), None);

    rt.destroy_device(None).unwrap();
    wait_for_state(&rt, "run", "failed").await;
    assert_eq!(state(&rt, "paused"), "failed");
    // Terminated while nothing will recover it: the error names the kernel and its count.
    let stranded = js(rt.terminate("stranded".into(), Some(timeout(1000)))).await.unwrap_err();
    assert_eq!(name_of(&stranded), "DeviceLostError");
    assert_eq!(get(&stranded, "kernelId").as_string().as_deref(), Some("stranded"));
    assert_eq!(num(&stranded, "unprocessed"), 2.0, "its two messages were never processed");
    let device = get(&rt.get_summary().unwrap(), "device");
    assert!(get(&device, "lost").as_string().is_some(), "getSummary().device.lost says why");
    assert_eq!((num(&device, "losses"), num(&device, "recoveries")), (1.0, 0.0));
    assert_eq!(name_of(&js(waiting_receive).await.unwrap_err()), "DeviceLostError");
    let waited = js(waiting_call).await.unwrap_err();
    assert_eq!(
        (name_of(&waited), get(&waited, "sent")),
        ("DeviceLostError".into(), JsValue::TRUE),
        "it runs after recovery"
    );
    let refused = js(rt.call("run".into(), object(&[("value", 1.into())]), Some(timeout(1_000)))).await.unwrap_err();
    assert_eq!(
        (name_of(&refused), get(&refused, "sent")),
        ("DeviceLostError".into(), JsValue::FALSE),
        "a new call never runs"
    );
    // Delivered answers stay receivable; then receives reject. Sends are still queued;
    // lifecycle calls are refused by name.
    let (delivered, rejected) = receive_up_to(&rt, "run", 41).await;
    assert_eq!(name_of(&rejected.expect("at most 40 answers can be there")), "DeviceLostError");
    assert_eq!(send_values(&rt, "run", &(100..150).collect::<Vec<_>>()).await, 50);
    for refused in [
        rt.activate("paused".into()),
        rt.deactivate("run".into()),
        rt.reactivate("paused".into()),
        rt.launch("run".into(), None, None),
    ] {
        assert_eq!(name_of(&js(refused).await.unwrap_err()), "KernelStateError");
    }
    assert_eq!((state(&rt, "run"), state(&rt, "paused")), ("failed".into(), "failed".into()), "nothing changed");
    assert_eq!(name_of(&js(rt.read_state("run".into())).await.unwrap_err()), "DeviceLostError");

    js(rt.recover()).await.unwrap();
    assert_eq!((state(&rt, "run"), state(&rt, "paused")), ("active".into(), "deactivated".into()));
    let (rest, rejected) = receive_up_to(&rt, "run", 150 - 60 - delivered.len()).await;
    assert!(rejected.is_none(), "{rejected:?}");
    let all: Vec<i32> = early.into_iter().chain(delivered).chain(rest).collect();
    assert_eq!(all, (0..150).map(answer_to).collect::<Vec<_>>(), "exactly once, in order");
    assert_eq!(state_words(&rt, "run").await, [150, (0..150).sum::<i32>()], "state counted each message once");
    js(rt.reactivate("paused".into())).await.unwrap();
    assert_eq!(receive_up_to(&rt, "paused", 3).await.0, [1, 2, 3].map(answer_to));
    let device = get(&rt.get_summary().unwrap(), "device");
    assert!(get(&device, "lost").is_null());
    assert_eq!(num(&device, "recoveries"), 1.0);
}

/// `checkpointIntervalMs`: `Infinity` keeps the state on the device (its ticks, encoded ahead,
/// copy no state back), 1 ms takes a checkpoint with some round trips and not others (so
/// commands encoded ahead with the state's copy, or without, meet ticks of the other kind),
/// answers and reads stay exact, and recovery restarts each from its last checkpoint.
#[wasm_bindgen_test]
async fn a_checkpoint_interval_keeps_the_state_on_the_device_until_a_loss() {
    let rt = js_runtime(false).await;
    for (id, interval) in [("every", 0.0), ("never", f64::INFINITY), ("often", 1.0)] {
        register(id, true);
        let options = object(&[("autoActivate", true.into()), ("checkpointIntervalMs", interval.into())]);
        js(rt.launch(id.into(), None, Some(options))).await.unwrap();
        for value in 0..40 {
            let answer =
                js(rt.call(id.into(), object(&[("value", value.into())]), Some(timeout(60_000)))).await.unwrap();
            assert_eq!(num(&answer, "result"), answer_to(value) as f64, "{id}");
            if value % 3 == 0 {
                sleep_ms(2).await;
            }
        }
        assert_eq!(state_words(&rt, id).await, [40, (0..40).sum::<i32>()], "{id}");
    }
    let telemetry = |id: &str| rt.get_telemetry(id.into()).unwrap();
    let (every, never) = (telemetry("every"), telemetry("never"));
    assert!(
        num(&never, "dispatchesEncodedAhead") > 30.0,
        "round trips encoded ahead: {}",
        num(&never, "dispatchesEncodedAhead")
    );
    // The 8-byte state came back with each of "every"'s 40 ticks, never with "never"'s.
    assert_eq!(num(&every, "bytesFromDevice") - num(&never, "bytesFromDevice"), 40.0 * 8.0);

    rt.destroy_device(None).unwrap();
    wait_for_state(&rt, "never", "failed").await;
    js(rt.recover()).await.unwrap();
    assert_eq!(state_words(&rt, "every").await, [40, (0..40).sum::<i32>()], "as of its last tick");
    assert_eq!(state_words(&rt, "never").await, [0, 0], "as launched: no checkpoint");
    let often = state_words(&rt, "often").await;
    assert!(often[0] > 0 && often[0] <= 40, "as of a tick that took a checkpoint: {often:?}");
    assert_eq!(often[1], (0..often[0]).sum::<i32>(), "the first {} messages' state: {often:?}", often[0]);

    // The terminate that ends a kernel whose checkpoint is behind reads its state back once,
    // the read going on past the terminate's own timeout; `dispose()` reads none, since it lets
    // go of every state.
    let bytes = |id: &str| num(&telemetry(id), "bytesFromDevice");
    for id in ["never", "kept"] {
        if id == "kept" {
            register(id, true);
            let options = object(&[("autoActivate", true.into()), ("checkpointIntervalMs", f64::INFINITY.into())]);
            js(rt.launch(id.into(), None, Some(options))).await.unwrap();
        }
        for value in 0..3 {
            let answer =
                js(rt.call(id.into(), object(&[("value", value.into())]), Some(timeout(60_000)))).await.unwrap();
            assert_eq!(num(&answer, "result"), answer_to(value) as f64, "{id}");
        }
    }
    let (never, kept) = (bytes("never"), bytes("kept"));
    js(rt.terminate("never".into(), Some(timeout(0)))).await.unwrap();
    for _ in 0..30_000 {
        if bytes("never") > never {
            break;
        }
        sleep_ms(1).await;
    }
    assert_eq!(bytes("never") - never, 8.0, "its final state read back once");
    js(rt.dispose()).await.unwrap();
    assert_eq!(bytes("kept"), kept, "dispose read no state back");
}

/// Two losses mid-stream through a 3-stage connected pipeline, with JS promises racing: one
/// sender and one receiver run concurrently, and the runtime recovers by itself.
#[wasm_bindgen_test]
async fn a_pipeline_streams_through_device_losses_with_auto_recover() {
    let rt = js_runtime(true).await;
    let stages = ["p1", "p2", "p3"];
    for id in stages {
        register(id, false);
        js(rt.launch(id.into(), None, Some(object(&[("queueSize", 2048.into())])))).await.unwrap();
        js(rt.activate(id.into())).await.unwrap();
    }
    js(rt.connect("p1".into(), "p2".into())).await.unwrap();
    js(rt.connect("p2".into(), "p3".into())).await.unwrap();
    let total = 50_000;
    let sender = async {
        for chunk in (0..total).collect::<Vec<i32>>().chunks(1500) {
            let mut sent = 0;
            while sent < chunk.len() {
                sent += send_values(&rt, "p1", &chunk[sent..]).await;
            }
        }
    };
    let receiver = async {
        let mut answers = Vec::new();
        let mut losses = 0;
        while answers.len() < total as usize {
            let (batch, rejected) = receive_up_to(&rt, "p3", 1).await;
            answers.extend(batch);
            if let Some(error) = rejected {
                assert_eq!(name_of(&error), "DeviceLostError");
                sleep_ms(1).await; // recovery is the runtime's own
            }
            if losses < 2 && answers.len() >= (losses + 1) * total as usize / 3 {
                rt.destroy_device(None).unwrap();
                losses += 1;
            }
        }
        answers
    };
    let ((), answers) = futures_util::join!(sender, receiver);
    let f = |v: i32| answer_to(answer_to(answer_to(v)));
    assert_eq!(answers, (0..total).map(f).collect::<Vec<_>>(), "exactly once, in order, through two losses");
    let device = get(&rt.get_summary().unwrap(), "device");
    assert_eq!((num(&device, "losses"), num(&device, "recoveries")), (2.0, 2.0));
}

/// Launch → activate → call → terminate → remove, many times: the GPU buffers the runtime
/// reports in getSummary are back to their start, count and bytes.
/// `initialState` starts a kernel's state, `writeState` (the runtime's and a handle's) writes
/// into it between ticks, and recovery restores both; values of the wrong element type, past
/// the state's end or not a typed array are refused as `TypeError`s and `RangeError`s, changing
/// nothing.
#[wasm_bindgen_test]
async fn initial_state_and_writes_reach_the_gpu_and_survive_recovery() {
    let rt = js_runtime(false).await;
    register("written", true);
    let initial = js_sys::Int32Array::from([10, 100].as_slice());
    let options = object(&[("autoActivate", true.into()), ("initialState", initial.clone().into())]);
    let handle = js(rt.launch("written".into(), None, Some(options))).await.unwrap();
    initial.set_index(0, -1); // copied at the call
    assert_eq!(state_words(&rt, "written").await, [10, 100]);
    assert_eq!(send_values(&rt, "written", &[1, 2]).await, 2);
    assert_eq!(receive_up_to(&rt, "written", 2).await.0, [answer_to(1), answer_to(2)]);
    assert_eq!(state_words(&rt, "written").await, [12, 103]);
    let write = |values: JsValue, index: Option<JsValue>| js(rt.write_state("written".into(), values, index));
    write(js_sys::Int32Array::from([7].as_slice()).into(), Some(1.into())).await.unwrap();
    assert_eq!(state_words(&rt, "written").await, [12, 7]);
    let zero: JsValue = js_sys::Int32Array::from([0].as_slice()).into();
    assert!(common::web::call(&handle, "writeState", &[zero]).await.is_undefined());
    assert_eq!(state_words(&rt, "written").await, [0, 7]);
    let refusals = [
        (
            write(js_sys::Float32Array::from([1.0f32].as_slice()).into(), None).await,
            "TypeError",
            "give an Int32Array, got a Float32Array",
        ),
        (
            write(js_sys::Int32Array::from([1, 2].as_slice()).into(), Some(1.into())).await,
            "RangeError",
            "2 values from index 1 do not fit",
        ),
        (
            write(js_sys::Array::of1(&1.into()).into(), None).await,
            "TypeError",
            "writeState takes a Uint32Array, Int32Array or Float32Array, got an array",
        ),
        (
            write(js_sys::Int32Array::new_with_length(1).into(), Some((-1).into())).await,
            "RangeError",
            "writeState: index must be a whole number from 0 to 4294967295, got -1",
        ),
        (
            js(rt.write_state("echo".into(), js_sys::Int32Array::new_with_length(1).into(), None)).await,
            "KernelNotFoundError",
            "echo",
        ),
    ];
    for (refused, name, text) in refusals {
        let error = refused.unwrap_err();
        let message = String::from(error.unchecked_ref::<js_sys::Error>().message());
        assert_eq!((name_of(&error).as_str(), message.contains(text)), (name, true), "{message}");
    }
    assert_eq!(state_words(&rt, "written").await, [0, 7], "nothing refused was written");
    rt.destroy_device(None).unwrap();
    assert_eq!(
        name_of(&write(js_sys::Int32Array::new_with_length(1).into(), None).await.unwrap_err()),
        "DeviceLostError"
    );
    js(rt.recover()).await.unwrap();
    assert_eq!(state_words(&rt, "written").await, [0, 7], "the checkpoint took the writes");
    js(rt.dispose()).await.unwrap();
}

/// `nextDeviceEvent(after)` resolves with each loss and recovery as it happens, by number, to
/// any number of readers; `lastDeviceEvent` is where a reader from now on starts; once the
/// runtime is disposed it resolves with `null`, and a signal ends its wait.
#[wasm_bindgen_test]
async fn device_events_tell_of_each_loss_and_recovery() {
    let rt = js_runtime(false).await;
    register("seen", false);
    js(rt.launch("seen".into(), None, Some(object(&[("autoActivate", true.into())])))).await.unwrap();
    assert_eq!(rt.last_device_event(), 0.0);
    let waiting = rt.next_device_event(0.into(), None);
    rt.destroy_device(None).unwrap();
    let lost = js(waiting).await.unwrap();
    assert_eq!(
        (num(&lost, "seq"), get(&lost, "kind").as_string().unwrap(), num(&lost, "device"), num(&lost, "missed")),
        (1.0, "lost".to_owned(), 0.0, 0.0)
    );
    let kernels: Vec<JsValue> = js_sys::Array::from(&get(&lost, "kernels")).to_vec();
    assert_eq!(kernels, [JsValue::from("seen")]);
    assert!(get(&lost, "reason").as_string().unwrap().contains("destroyDevice"));
    js(rt.recover()).await.unwrap();
    assert_eq!(rt.last_device_event(), 2.0);
    let recovered = js(rt.next_device_event(1.into(), None)).await.unwrap();
    assert_eq!(
        (get(&recovered, "kind").as_string().unwrap(), get(&recovered, "reason")),
        ("recovered".to_owned(), JsValue::NULL)
    );
    // Read again by another reader, from the first.
    assert_eq!(num(&js(rt.next_device_event(0.into(), None)).await.unwrap(), "seq"), 1.0);
    let refused = js(rt.next_device_event((-1).into(), None)).await.unwrap_err();
    assert_eq!(name_of(&refused), "RangeError");
    let signal = common::web::js_function("", "const c = new AbortController(); c.abort(); return c.signal;");
    let signal = signal.call0(&JsValue::NULL).unwrap();
    let aborted = rt.next_device_event(2.into(), Some(object(&[("signal", signal)])));
    assert_eq!(name_of(&js(aborted).await.unwrap_err()), "AbortError");
    let pending = rt.next_device_event(2.into(), None);
    js(rt.dispose()).await.unwrap();
    assert!(js(pending).await.unwrap().is_null(), "disposed: no event will come");
}

#[wasm_bindgen_test]
async fn launch_terminate_cycles_leave_no_gpu_buffer_behind() {
    const CYCLES: i32 = 1000;
    let rt = js_runtime(false).await;
    register("cycle", true);
    let cycle = |i: i32| {
        let rt = &rt;
        async move {
            js(rt.launch("cycle".into(), None, Some(object(&[("queueSize", 64.into())])))).await.unwrap();
            js(rt.activate("cycle".into())).await.unwrap();
            let during = rt.get_summary().unwrap();
            let answer = js(rt.call("cycle".into(), object(&[("value", i.into())]), Some(timeout(10_000)))).await;
            assert_eq!(num(&answer.unwrap(), "result"), answer_to(i) as f64);
            js(rt.terminate("cycle".into(), Some(timeout(10_000)))).await.unwrap();
            rt.remove("cycle".into()).unwrap();
            during
        }
    };
    cycle(-1).await; // the shared readback buffer is made once and kept
    let start = rt.get_summary().unwrap();
    for i in 0..CYCLES {
        let during = cycle(i).await;
        assert_eq!(num(&during, "gpuBufferCount"), num(&start, "gpuBufferCount") + 3.0, "cycle {i}");
    }
    let end = rt.get_summary().unwrap();
    for key in ["gpuBufferCount", "gpuBufferBytes"] {
        assert_eq!(num(&end, key), num(&start, key), "{key} after {CYCLES} cycles");
    }
    web_sys::console::log_1(
        &format!(
            "{{\"test\":\"launch_terminate_cycles_browser\",\"cycles\":{CYCLES},\"buffers\":{}}}",
            num(&end, "gpuBufferCount")
        )
        .into(),
    );
}

/// A handler that loops long per message does not hold the page: `maxBatch` bounds each
/// dispatch, and the event loop runs (a timer fires) between the resulting submissions.
#[wasm_bindgen_test]
async fn a_slow_handler_with_max_batch_leaves_the_page_responsive() {
    let rt = js_runtime(false).await;
    let request = define_message("Request".into(), object(&[("value", "i32".into())])).unwrap();
    let response = define_message("Response".into(), object(&[("result", "i32".into())])).unwrap();
    let wgsl = "fn handle(msg: Request) -> Response {
    var x = u32(msg.value);
    for (var i = 0u; i < 20000u; i++) { x = x * 1664525u + 1013904223u; }
    return Response(msg.value + i32(x & 0u));
}";
    for id in ["slow", "slow2"] {
        let fields =
            [("id", id.into()), ("input", request.clone()), ("output", response.clone()), ("wgsl", wgsl.into())];
        ring_kernel(object(&fields)).unwrap();
    }
    let options = object(&[("queueSize", 1024.into()), ("maxBatch", 16.into())]);
    js(rt.launch("slow".into(), None, Some(options))).await.unwrap();
    js(rt.activate("slow".into())).await.unwrap();
    let timer_fired = std::rc::Rc::new(std::cell::Cell::new(false));
    let fired = timer_fired.clone();
    wasm_bindgen_futures::spawn_local(async move {
        sleep_ms(0).await;
        fired.set(true);
    });
    let values: Vec<i32> = (0..256).collect();
    assert_eq!(send_values(&rt, "slow", &values).await, 256);
    let (answers, rejected) = receive_up_to(&rt, "slow", 256).await;
    assert!(rejected.is_none());
    assert_eq!(answers, values);
    assert!(timer_fired.get(), "a timer set before sending fired before the last answer");
    let t = rt.get_telemetry("slow".into()).unwrap();
    assert!(num(&t, "dispatches") >= 16.0, "256 messages at most 16 per dispatch: {}", num(&t, "dispatches"));
    let refused =
        js(rt.launch("slow2".into(), None, Some(object(&[("queueSize", 8.into()), ("maxBatch", 9.into())])))).await;
    assert_eq!(name_of(&refused.unwrap_err()), "RangeError");
}

/// Every device the runtime opens (at `create`, and again at each recovery) registers its
/// lost and uncaptured-error callbacks with the page. Once the device is replaced they must not
/// stay in wasm-bindgen's table of JavaScript values: wgpu's own registrations forgot their
/// `Closure`s, so each device left two functions there (and what they captured in wasm
/// memory) for the page's life: 20 recoveries took the table's live values from 36 to 76.
#[wasm_bindgen_test]
async fn devices_replaced_by_recovery_leave_no_callback_behind() {
    const CYCLES: u32 = 20;
    let rt = js_runtime(false).await;
    register("lives", false);
    js(rt.launch("lives".into(), None, Some(object(&[("autoActivate", true.into())])))).await.unwrap();
    let recover_cycle = || async {
        rt.destroy_device(None).unwrap();
        js(rt.recover()).await.unwrap();
        let answer = js(rt.call("lives".into(), object(&[("value", 2.into())]), Some(timeout(10_000)))).await;
        assert_eq!(num(&answer.unwrap(), "result"), answer_to(2) as f64);
    };
    recover_cycle().await;
    let before = wasm_bindgen::externref_heap_live_count();
    for _ in 0..CYCLES {
        recover_cycle().await;
    }
    let after = wasm_bindgen::externref_heap_live_count();
    js(rt.dispose()).await.unwrap();
    web_sys::console::log_1(
        &format!("{{\"test\":\"devices_replaced_by_recovery\",\"cycles\":{CYCLES},\"liveValues\":[{before},{after}]}}")
            .into(),
    );
    // A few values may be in flight at either count; two per device would be 2 × CYCLES more.
    assert!(after <= before + CYCLES / 4, "{CYCLES} recoveries: live JavaScript values {before} → {after}");
}

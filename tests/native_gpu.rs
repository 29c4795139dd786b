//! End-to-end tests on a real native adapter (lavapipe on machines without a GPU). A missing
//! adapter fails these tests with the reason; they never pass vacuously.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use ringkernel_web::{Error, ErrorKind, KernelState, LaunchOptions, Runtime, RuntimeOptions, Value};

fn runtime() -> Runtime {
    pollster::block_on(Runtime::new(RuntimeOptions::default()))
        .unwrap_or_else(|e| panic!("these tests need a wgpu adapter (install mesa-vulkan-drivers for lavapipe): {e}"))
}

#[test]
fn doubler_answers_42() {
    let rt = runtime();
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default()).await.unwrap();
        assert_eq!(rt.state("doubler").unwrap(), KernelState::Launched);
        rt.activate("doubler").await.unwrap();
        rt.send("doubler", &[("value", Value::from(21))], Some(Duration::from_millis(5000))).await.unwrap();
        let answer = rt.receive("doubler", Some(Duration::from_millis(10_000))).await.unwrap();
        assert_eq!(answer, vec![("result".to_owned(), Value::I32(42))]);
        let t = rt.telemetry("doubler").unwrap().unwrap();
        assert_eq!((t.messages_sent, t.messages_processed, t.messages_received), (1, 1, 1));
        rt.terminate("doubler", Some(Duration::from_millis(5000))).await.unwrap();
        assert_eq!(rt.state("doubler").unwrap(), KernelState::Terminated);
    });
}

#[test]
fn thousand_messages_in_order_across_ring_wrap() {
    let rt = runtime();
    pollster::block_on(async {
        // A 64-slot ring forces many ticks and wrap-arounds for 1,000 messages.
        rt.launch("doubler", LaunchOptions::default().with_queue_capacity(64)).await.unwrap();
        rt.activate("doubler").await.unwrap();
        let mut answers = Vec::new();
        let mut next = 0i32;
        while answers.len() < 1000 {
            let batch: Vec<i32> = (next..(next + 37).min(1000)).collect();
            let accepted =
                rt.send_packed("doubler", bytemuck::cast_slice(&batch), Some(Duration::from_millis(0))).await.unwrap();
            next += accepted as i32;
            let got = rt.receive_batch_packed("doubler", 1000, Some(Duration::from_millis(10_000))).await.unwrap();
            answers.extend_from_slice(bytemuck::cast_slice::<u8, i32>(&got));
        }
        let expected: Vec<i32> = (0..1000).map(|v| v * 2).collect();
        assert_eq!(answers, expected);
        let t = rt.telemetry("doubler").unwrap().unwrap();
        assert_eq!(t.messages_processed, 1000, "GPU counter must match what was sent");
        assert!(t.dispatches >= 1000 / 64, "a 64-slot ring needs at least 16 ticks, saw {}", t.dispatches);
    });
}

#[test]
fn receive_batch_with_reads_answers_in_place_and_takes_at_most_max() {
    let rt = runtime();
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default()).await.unwrap();
        rt.activate("doubler").await.unwrap();
        assert_eq!(rt.telemetry("doubler").unwrap().unwrap().last_workgroups, 0, "no dispatch yet");
        let inputs: Vec<i32> = (1..=10).collect();
        rt.send_batch("doubler", &inputs, None).await.unwrap();
        let wait = Some(Duration::from_millis(10_000));
        // All ten are answered in one tick; `read` sees the first four with the output layout.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while rt.telemetry("doubler").unwrap().unwrap().output_queue_depth < 10 {
            assert!(std::time::Instant::now() < deadline, "ten answers were not queued within 10 s");
            std::thread::sleep(Duration::from_millis(1));
        }
        let coming = rt.answers_coming("doubler").unwrap();
        assert_eq!((coming.queued, coming.in_flight, coming.answer_size), (10, 0, 4));
        let (size, first) = rt
            .receive_batch_with("doubler", 4, wait, |layout, answers| {
                (layout.size(), bytemuck::pod_collect_to_vec::<u8, i32>(answers))
            })
            .await
            .unwrap();
        assert_eq!((size, first), (4, vec![2, 4, 6, 8]));
        assert_eq!(rt.answers_coming("doubler").unwrap().queued, 6);
        // The other six stay queued, in order.
        let rest = rt.receive_batch_packed("doubler", 100, wait).await.unwrap();
        assert_eq!(bytemuck::pod_collect_to_vec::<u8, i32>(&rest), vec![10, 12, 14, 16, 18, 20]);
        // Nothing left: it waits like every receive, and a timeout is an error, `read` unused.
        let err = rt.receive_batch_with("doubler", 4, Some(Duration::from_millis(50)), |_, _| unreachable!()).await;
        assert!(matches!(err, Err(Error::Timeout { .. })), "{err:?}");
        let err = rt.receive_batch_with("nope", 4, wait, |_, _| unreachable!()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KernelNotFound);
        assert_eq!(rt.answers_coming("nope").unwrap_err().kind(), ErrorKind::KernelNotFound);
        let t = rt.telemetry("doubler").unwrap().unwrap();
        assert_eq!(t.messages_received, 10);
        assert_eq!(t.last_workgroups, 1, "ten messages fit one workgroup");
    });
}

/// Telemetry names the grid of a kernel's last dispatch, as the runtime chose it for the
/// adapter: on a software one (lavapipe, device type `Cpu`) 64 workgroups of 16 messages an
/// invocation for 100,000 messages, on a GPU one invocation per message.
#[test]
fn telemetry_names_the_last_dispatch_grid() {
    let rt = runtime();
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default().with_queue_capacity(1 << 17)).await.unwrap();
        rt.activate("doubler").await.unwrap();
        let inputs: Vec<i32> = (0..100_000).collect();
        assert_eq!(rt.send_batch("doubler", &inputs, None).await.unwrap(), 100_000);
        let wait = Some(Duration::from_millis(30_000));
        let mut answered = 0;
        while answered < 100_000 {
            answered += rt.receive_batch_packed("doubler", 100_000, wait).await.unwrap().len() / 4;
        }
        let t = rt.telemetry("doubler").unwrap().unwrap();
        let software = rt.adapter().device_type == "Cpu";
        // One tick took the whole batch: its grid is the one for 100,000 messages.
        if t.dispatches == 1 {
            assert_eq!(t.last_workgroups, if software { 64 } else { 1563 }, "{t:?}");
        }
        assert!(t.last_workgroups >= 1 && (!software || t.last_workgroups <= 64), "{t:?}");
        rt.call_pod::<i32, i32>("doubler", &21, wait).await.unwrap();
        assert_eq!(rt.telemetry("doubler").unwrap().unwrap().last_workgroups, 1, "one message, one workgroup");
    });
}

#[test]
fn deactivated_kernel_holds_messages_until_reactivated() {
    let rt = runtime();
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default()).await.unwrap();
        rt.activate("doubler").await.unwrap();
        rt.deactivate("doubler").await.unwrap();
        for v in 0..10 {
            rt.send_pod("doubler", &v, None).await.unwrap();
        }
        let err = rt.receive("doubler", Some(Duration::from_millis(200))).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        assert_eq!(rt.telemetry("doubler").unwrap().unwrap().input_queue_depth, 10);
        // Waiting on the host, not on the device: no answers are coming yet.
        let coming = rt.answers_coming("doubler").unwrap();
        assert_eq!((coming.queued, coming.in_flight), (0, 0));
        rt.reactivate("doubler").await.unwrap();
        for v in 0..10 {
            assert_eq!(rt.receive_pod::<i32>("doubler", Some(Duration::from_millis(10_000))).await.unwrap(), v * 2);
        }
    });
}

#[test]
fn named_errors() {
    let rt = runtime();
    pollster::block_on(async {
        let e = rt.launch("nope", LaunchOptions::default()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KernelNotFound);
        let e = rt.activate("doubler").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KernelNotFound);
        rt.launch("doubler", LaunchOptions::default()).await.unwrap();
        let e = rt.launch("doubler", LaunchOptions::default()).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "kernel 'doubler' is launched: cannot launch (the id is taken: launch under another id)"
        );
        let e = rt.reactivate("doubler").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KernelState);
        let e = rt.send("doubler", &[("valeu", Value::from(1))], None).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MessageFormat);
        assert!(e.to_string().contains("valeu"), "{e}");
        let e = rt.send("doubler", &[("value", Value::from(1.5))], None).await.unwrap_err();
        assert!(e.to_string().contains("'value'"), "{e}");
        // Full queue: two slots, kernel not active, so nothing drains.
        rt.terminate("doubler", Some(Duration::from_millis(1000))).await.unwrap();
        rt.remove("doubler").unwrap();
        rt.launch("doubler", LaunchOptions::default().with_queue_capacity(2)).await.unwrap();
        rt.send_pod("doubler", &1i32, Some(Duration::from_millis(0))).await.unwrap();
        rt.send_pod("doubler", &2i32, Some(Duration::from_millis(0))).await.unwrap();
        let e = rt.send_pod("doubler", &3i32, Some(Duration::from_millis(50))).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::QueueFull);
        assert_eq!(rt.telemetry("doubler").unwrap().unwrap().input_queue_depth, 2, "accepted messages are kept");
    });
}

/// Round trips around batches of 16 messages and just over, and around a batch that makes
/// the readback buffer grow, answer in order. Natively every tick encodes its own commands:
/// encoding the next tick's while the device works is for the web (`dispatchesEncodedAhead`
/// counts it there; see `platform::ENCODE_AHEAD`), and on lavapipe it made round trips slower.
#[test]
fn round_trips_around_batches_answer_in_order_and_encode_as_they_go() {
    let rt = runtime();
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default().with_queue_capacity(1 << 13)).await.unwrap();
        rt.activate("doubler").await.unwrap();
        let rt = &rt;
        let wait = Some(Duration::from_millis(10_000));
        let round_trips = |from: i32| async move {
            for v in from..from + 3 {
                assert_eq!(rt.call_pod::<i32, i32>("doubler", &v, wait).await.unwrap(), 2 * v);
            }
        };
        let batch = |n: i32| async move {
            let inputs: Vec<i32> = (0..n).collect();
            assert_eq!(rt.send_batch("doubler", &inputs, None).await.unwrap(), n as usize);
            let mut answers = Vec::new();
            while answers.len() < n as usize {
                let got = rt.receive_batch_packed("doubler", n as usize, wait).await.unwrap();
                answers.extend(bytemuck::pod_collect_to_vec::<u8, i32>(&got));
            }
            assert_eq!(answers, (0..n).map(|v| 2 * v).collect::<Vec<_>>(), "a batch of {n}");
        };
        round_trips(1).await;
        batch(16).await;
        batch(17).await;
        round_trips(10).await;
        batch(5000).await;
        round_trips(20).await;
        let t = rt.telemetry("doubler").unwrap().unwrap();
        assert_eq!(t.messages_processed, 3 * 3 + 16 + 17 + 5000);
        assert_eq!(t.dispatches_encoded_ahead, 0, "native ticks encode as they go");
    });
}

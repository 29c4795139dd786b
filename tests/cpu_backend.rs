//! The `cpu` backend natively: the same lifecycle, queues, correlation and telemetry as the GPU,
//! with host handlers in place of WGSL. Every built-in answers exactly as it does on the GPU
//! (lavapipe) for the same random inputs, and host handlers that drop, fail or panic lose
//! nothing silently.
#![cfg(not(target_arch = "wasm32"))]

#[allow(unused_imports)]
mod common;

use std::time::Duration;

use common::runtime_on;
use futures_util::future::join_all;
use ringkernel_web::kernel::{self, doubler_request, doubler_response, host, HISTOGRAM_BINS, HISTOGRAM_SAMPLES};
use ringkernel_web::{BackendChoice, Error, ErrorKind, KernelDefinition, KernelState, LaunchOptions, Runtime};

fn cpu() -> Runtime {
    runtime_on(BackendChoice::Cpu)
}

async fn start(rt: &Runtime, id: &str, queue_size: usize) {
    rt.launch(id, LaunchOptions::default().with_queue_capacity(queue_size)).await.unwrap();
    rt.activate(id).await.unwrap();
}

/// Sends `messages` and receives as many answers (chunked through the queue's bound).
async fn round_trip<In: bytemuck::Pod, Out: bytemuck::Pod>(rt: &Runtime, id: &str, messages: &[In]) -> Vec<Out> {
    let mut answers = Vec::with_capacity(messages.len());
    for chunk in messages.chunks(256) {
        assert_eq!(rt.send_batch(id, chunk, Some(Duration::from_millis(10_000))).await.unwrap(), chunk.len());
        let target = answers.len() + chunk.len();
        while answers.len() < target {
            answers
                .extend(rt.receive_batch::<Out>(id, chunk.len(), Some(Duration::from_millis(10_000))).await.unwrap());
        }
    }
    answers
}

#[test]
fn the_cpu_backend_describes_itself_and_runs_the_seed_example() {
    let rt = cpu();
    assert_eq!(rt.adapter().backend, "cpu");
    pollster::block_on(async {
        start(&rt, "doubler", 64).await;
        rt.send("doubler", &[("value", 21.into())], None).await.unwrap();
        let answer = rt.receive("doubler", Some(Duration::from_millis(5000))).await.unwrap();
        assert_eq!(answer, vec![("result".to_string(), 42.into())]);
        assert_eq!(
            rt.call_pod::<i32, i32>("doubler", &i32::MAX, Some(Duration::from_millis(5000))).await.unwrap(),
            -2,
            "wraps like WGSL"
        );
        let t = rt.telemetry("doubler").unwrap().unwrap();
        assert_eq!((t.messages_sent, t.messages_processed, t.messages_received), (2, 2, 2));
        assert!(t.dispatches >= 1 && t.dispatches <= 2);
        assert_eq!(t.gpu_memory_bytes, 0);
        rt.terminate("doubler", Some(Duration::from_millis(5000))).await.unwrap();
        assert_eq!(rt.state("doubler").unwrap(), KernelState::Terminated);
        assert_eq!(rt.summary().backend, "cpu");
    });
}

#[test]
fn every_builtin_answers_on_the_cpu_as_on_the_gpu() {
    let (gpu, host) = (runtime_on(BackendChoice::Auto), cpu());
    let mut rng = fastrand::Rng::with_seed(5);
    pollster::block_on(async {
        for rt in [&gpu, &host] {
            for id in ["doubler", "echo", "vector_add", "saxpy", "mandelbrot", "histogram"] {
                start(rt, id, 256).await;
            }
        }
        let ints: Vec<i32> = (0..1000).map(|_| rng.i32(..)).collect();
        for id in ["doubler", "echo"] {
            let on_gpu: Vec<i32> = round_trip(&gpu, id, &ints).await;
            assert_eq!(round_trip::<i32, i32>(&host, id, &ints).await, on_gpu, "{id}");
        }
        let pairs: Vec<[f32; 64]> = (0..300).map(|_| std::array::from_fn(|_| rng.f32() * 200.0 - 100.0)).collect();
        let on_gpu: Vec<[f32; 32]> = round_trip(&gpu, "vector_add", &pairs).await;
        assert_eq!(round_trip::<_, [f32; 32]>(&host, "vector_add", &pairs).await, on_gpu, "vector_add is exact");
        let saxpy: Vec<[f32; 65]> = (0..300).map(|_| std::array::from_fn(|_| rng.f32() * 20.0 - 10.0)).collect();
        let (on_gpu, on_cpu): (Vec<[f32; 32]>, Vec<[f32; 32]>) =
            (round_trip(&gpu, "saxpy", &saxpy).await, round_trip(&host, "saxpy", &saxpy).await);
        for (g, c) in on_gpu.iter().flatten().zip(on_cpu.iter().flatten()) {
            // The GPU may fuse a * x + y; the host rounds twice.
            assert!((g - c).abs() <= 1e-5 * g.abs().max(1.0), "saxpy {g} vs {c}");
        }
        #[repr(C)]
        #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
        struct Tile([f32; 3], u32);
        let tiles: Vec<Tile> = (0..100)
            .map(|_| Tile([rng.f32() * 3.0 - 2.0, rng.f32() * 2.4 - 1.2, 0.004], 1 + rng.u32(..1200)))
            .collect();
        let (on_gpu, on_cpu): (Vec<[u32; 64]>, Vec<[u32; 64]>) =
            (round_trip(&gpu, "mandelbrot", &tiles).await, round_trip(&host, "mandelbrot", &tiles).await);
        let differing = on_gpu.iter().flatten().zip(on_cpu.iter().flatten()).filter(|(g, c)| g != c).count();
        // Boundary pixels are chaotic under fused multiply-add; everything else is exact.
        assert!(differing * 100 <= 6400, "{differing} of 6400 pixels differ");
        let samples: Vec<[f32; HISTOGRAM_SAMPLES as usize]> =
            (0..500).map(|_| std::array::from_fn(|_| rng.f32() * 1.2 - 0.1)).collect();
        let acks: Vec<u32> = round_trip(&gpu, "histogram", &samples).await;
        assert_eq!(round_trip::<_, u32>(&host, "histogram", &samples).await, acks);
        let bins = gpu.read_state_as::<u32>("histogram").await.unwrap();
        assert_eq!(bins.len(), HISTOGRAM_BINS as usize);
        assert_eq!(host.read_state_as::<u32>("histogram").await.unwrap(), bins);
        // State outlives terminate on the host too, until remove.
        host.terminate("histogram", Some(Duration::from_millis(5000))).await.unwrap();
        assert_eq!(host.read_state_as::<u32>("histogram").await.unwrap(), bins);
        host.remove("histogram").unwrap();
        assert!(matches!(host.read_state("histogram").await, Err(Error::KernelNotFound { .. })));
    });
}

#[test]
fn pausing_keeps_input_queued_and_backpressure_refuses_without_losing() {
    let rt = cpu();
    pollster::block_on(async {
        start(&rt, "doubler", 8).await;
        rt.deactivate("doubler").await.unwrap();
        assert_eq!(
            common::accepted(
                rt.send_batch("doubler", &(0..12).collect::<Vec<i32>>(), Some(Duration::from_millis(0))).await
            ),
            8
        );
        let e = rt.send_pod("doubler", &99, Some(Duration::from_millis(50))).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::QueueFull);
        assert_eq!(
            rt.receive("doubler", Some(Duration::from_millis(50))).await.unwrap_err().kind(),
            ErrorKind::Timeout,
            "paused: no answers"
        );
        let t = rt.telemetry("doubler").unwrap().unwrap();
        assert_eq!((t.input_queue_depth, t.messages_processed), (8, 0));
        rt.reactivate("doubler").await.unwrap();
        let answers = rt.receive_batch::<i32>("doubler", 8, Some(Duration::from_millis(5000))).await.unwrap();
        let mut answers = answers;
        while answers.len() < 8 {
            answers.extend(rt.receive_batch::<i32>("doubler", 8, Some(Duration::from_millis(5000))).await.unwrap());
        }
        assert_eq!(answers, (0..8).map(|v| v * 2).collect::<Vec<_>>(), "in order, none lost");
    });
}

#[test]
fn hundred_concurrent_calls_each_get_their_own_answer() {
    let rt = cpu();
    pollster::block_on(async {
        start(&rt, "echo", 32).await;
        let values: Vec<i32> = (0..100).collect();
        let calls = values.iter().map(|v| rt.call_pod::<i32, i32>("echo", v, Some(Duration::from_millis(10_000))));
        let answers: Vec<i32> = join_all(calls).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(answers, (0..100).collect::<Vec<_>>());
    });
}

#[test]
fn host_handlers_that_drop_fail_or_panic_are_counted_and_reported() {
    kernel::register_or_replace(
        KernelDefinition::new("picky", doubler_request(), doubler_response(), "").with_host_handler(host::typed(
            |v: &i32, _: &mut [u32]| match v {
                13 => panic!("thirteen"),
                v if v % 2 == 1 => None,
                v => Some(v * 10),
            },
        )),
    );
    let rt = cpu();
    pollster::block_on(async {
        start(&rt, "picky", 64).await;
        assert_eq!(rt.send_batch("picky", &[2i32, 3, 13, 4], None).await.unwrap(), 4);
        let mut answers = Vec::new();
        while answers.len() < 2 {
            answers.extend(rt.receive_batch::<i32>("picky", 4, Some(Duration::from_millis(5000))).await.unwrap());
        }
        assert_eq!(answers, [20, 40], "dropped and failed messages leave no answer, the rest keep their order");
        let e = rt.call_pod::<i32, i32>("picky", &5, Some(Duration::from_millis(5000))).await.unwrap_err();
        assert!(
            matches!(&e, Error::MessageDropped { id, failure: None, .. } if id == "picky"),
            "dropped on purpose: {e}"
        );
        let t = rt.telemetry("picky").unwrap().unwrap();
        assert_eq!((t.messages_processed, t.messages_dropped, t.errors), (5, 3, 1));
        let why = t.last_error.expect("the panic is reported");
        assert!(why.contains("panicked") && why.contains("thirteen"), "{why}");
    });
}

/// Failures in one tick: a call hears its own message's failure (by its place in the tick, not
/// its number in the kernel's stream, which differ after the first tick), not another's, and
/// `last_error` is the latest.
#[test]
fn a_call_hears_why_its_own_message_failed_and_last_error_is_the_latest() {
    kernel::register_or_replace(
        KernelDefinition::new("odd-fails", doubler_request(), doubler_response(), "").with_host_handler(
            |input: &[u8], output: &mut [u8], _: &mut [u32]| -> host::HostOutcome {
                let v: i32 = bytemuck::pod_read_unaligned(input);
                if v % 2 == 1 {
                    return Err(format!("odd {v}"));
                }
                output.copy_from_slice(bytemuck::bytes_of(&(v * 2)));
                Ok(true)
            },
        ),
    );
    let rt = cpu();
    let wait = Some(Duration::from_millis(5000));
    pollster::block_on(async {
        start(&rt, "odd-fails", 64).await;
        assert_eq!(rt.call_pod::<i32, i32>("odd-fails", &2, wait).await.unwrap(), 4, "a first tick");
        rt.deactivate("odd-fails").await.unwrap();
        // Queued while the kernel is paused, so that all of them run in one tick: 1, the calls
        // of 3 and 4, then 5.
        assert_eq!(rt.send_batch("odd-fails", &[1i32], None).await.unwrap(), 1);
        let three = rt.call_pod::<i32, i32>("odd-fails", &3, wait);
        let four = rt.call_pod::<i32, i32>("odd-fails", &4, wait);
        let five = async {
            rt.send_batch("odd-fails", &[5i32], None).await.unwrap();
            rt.reactivate("odd-fails").await.unwrap();
        };
        let (three, four, ()) = futures_util::future::join3(three, four, five).await;
        let e = three.unwrap_err();
        let failure = "the host handler failed: odd 3";
        assert!(
            matches!(&e, Error::MessageDropped { id, failure: Some(f), .. } if id == "odd-fails" && f == failure),
            "{e:?}"
        );
        assert_eq!(e.to_string(), format!("kernel 'odd-fails' dropped the message of this call: {failure}"));
        assert_eq!(four.unwrap(), 8);
        let t = rt.telemetry("odd-fails").unwrap().unwrap();
        assert_eq!((t.messages_processed, t.errors, t.dispatches), (5, 3, 2), "two ticks");
        assert_eq!(t.last_error.as_deref(), Some("the host handler failed: odd 5"));
    });
}

#[test]
fn a_kernel_runs_only_where_it_has_a_handler() {
    kernel::register_or_replace(KernelDefinition::new(
        "wgsl-only",
        doubler_request(),
        doubler_response(),
        "fn handle(m: Request) -> Response { return Response(m.value); }",
    ));
    kernel::register_or_replace(
        KernelDefinition::new("host-only", doubler_request(), doubler_response(), "")
            .with_host_handler(host::typed(|v: &i32, _: &mut [u32]| Some(*v))),
    );
    kernel::register_or_replace(
        KernelDefinition::new("wrong-size", doubler_request(), doubler_response(), "")
            .with_host_handler(host::typed(|v: &[i32; 2], _: &mut [u32]| Some(v[0]))),
    );
    let (host, gpu) = (cpu(), runtime_on(BackendChoice::Auto));
    pollster::block_on(async {
        let e = host.launch("wgsl-only", LaunchOptions::default()).await.unwrap_err();
        assert!(matches!(&e, Error::KernelCompile { message, .. } if message.contains("no host handler")), "{e}");
        let e = host.launch("wrong-size", LaunchOptions::default()).await.unwrap_err();
        assert!(matches!(&e, Error::KernelCompile { message, .. } if message.contains("8 bytes")), "{e}");
        let e = gpu.launch("host-only", LaunchOptions::default()).await.unwrap_err();
        assert!(matches!(&e, Error::KernelCompile { message, .. } if message.contains("no WGSL")), "{e}");
        assert!(host.kernel_ids().is_empty() && gpu.kernel_ids().is_empty(), "failed launches leave nothing behind");
        host.launch("host-only", LaunchOptions::default()).await.unwrap();
    });
}

#[test]
fn terminate_drains_a_paused_kernel_on_the_cpu() {
    let rt = cpu();
    pollster::block_on(async {
        start(&rt, "doubler", 16).await;
        rt.deactivate("doubler").await.unwrap();
        rt.send_batch("doubler", &[1i32, 2, 3], None).await.unwrap();
        rt.terminate("doubler", Some(Duration::from_millis(5000))).await.unwrap();
        assert_eq!(rt.receive_batch::<i32>("doubler", 8, Some(Duration::from_millis(100))).await.unwrap(), [2, 4, 6]);
        assert_eq!(rt.send_pod("doubler", &1, None).await.unwrap_err().kind(), ErrorKind::KernelState);
    });
}

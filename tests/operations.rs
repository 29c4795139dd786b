//! The operations layer natively, on lavapipe and on the cpu backend: the GPU memory dashboard
//! (bytes by kernel and purpose add up to what telemetry and the buffer statistics say,
//! pressure against a budget, alerts once per crossing) and the degradation manager under
//! synthetic load (levels, refusals that hand the message back, nothing accepted lost).
#![cfg(not(target_arch = "wasm32"))]

#[allow(unused_imports)]
mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use common::wait_until;
use ringkernel_web::kernel::{self, host, HISTOGRAM_BINS};
use ringkernel_web::{
    BackendChoice, DegradationLevel, DegradationOptions, DegradationReason, Error, ErrorKind, KernelDefinition,
    KernelHandle, LaunchOptions, MemoryPressureAlert, MemoryPurpose, Runtime, RuntimeOptions, TrySendError,
};

const BACKENDS: [BackendChoice; 2] = [BackendChoice::Vulkan, BackendChoice::Cpu];

fn runtime(options: RuntimeOptions) -> Runtime {
    let backend = options.backend;
    pollster::block_on(Runtime::new(options)).unwrap_or_else(|e| panic!("{backend:?}: {e}"))
}

fn launch(rt: &Runtime, id: &str, as_id: &str, options: LaunchOptions) {
    pollster::block_on(rt.launch_as(id, as_id, options)).unwrap();
}

#[test]
fn memory_by_purpose_adds_up_to_telemetry_and_the_buffer_statistics() {
    for backend in BACKENDS {
        let rt = runtime(RuntimeOptions::default().with_backend(backend));
        launch(&rt, "doubler", "d", LaunchOptions::default().with_queue_capacity(64).with_auto_activate());
        launch(&rt, "histogram", "h", LaunchOptions::default().with_queue_capacity(16));
        // A tick's readback buffer, too.
        pollster::block_on(async {
            rt.send_batch("d", &[1i32, 2, 3], None).await.unwrap();
            rt.receive_batch::<i32>("d", 3, Some(Duration::from_secs(30))).await.unwrap();
        });

        let report = rt.gpu_memory_dashboard().report();
        let summary = rt.summary();
        assert_eq!(report.used_bytes, report.by_purpose.total(), "{backend:?}");
        for purpose in MemoryPurpose::ALL.into_iter().filter(|p| *p != MemoryPurpose::Readback) {
            let kernels: u64 = report.by_kernel.values().map(|k| k.get(purpose)).sum();
            assert_eq!(kernels, report.by_purpose.get(purpose), "{backend:?}: {purpose} by kernel and in all");
        }
        assert_eq!(report.by_kernel["h"].state, 4 * HISTOGRAM_BINS as u64, "{backend:?}: the histogram's bins");
        assert_eq!(report.by_kernel["d"].state, 0);
        if backend == BackendChoice::Cpu {
            assert_eq!(report.used_bytes, 4 * HISTOGRAM_BINS as u64, "the cpu backend holds state words only");
            assert_eq!(report.device_limits.max_buffer_bytes, None);
        } else {
            for (id, kernel) in &summary.per_kernel {
                assert_eq!(report.by_kernel[id].total(), kernel.gpu_memory_bytes, "{id}: as telemetry says");
            }
            assert_eq!(report.used_bytes, summary.gpu_buffer_bytes, "every buffer counted once");
            assert!(report.by_purpose.readback > 0, "the tick's readback buffer");
            assert!(report.by_kernel["d"].input_ring >= 16 + 4 * 64, "header and 64 slots");
            assert!(report.device_limits.max_binding_bytes.unwrap() > 0);
        }
        assert_eq!(summary.memory, report, "the summary carries the same report");
        assert_eq!(report.pressure, 0.0, "no budget: no pressure");

        pollster::block_on(async {
            rt.terminate("d", None).await.unwrap();
            rt.terminate("h", None).await.unwrap();
        });
        assert_eq!(rt.memory_report().by_kernel["h"].state, 4 * HISTOGRAM_BINS as u64, "state kept until removed");
        rt.remove("d").unwrap();
        rt.remove("h").unwrap();
        let report = rt.memory_report();
        assert!(report.by_kernel.is_empty());
        assert_eq!(report.used_bytes, report.by_purpose.readback, "{backend:?}: only the shared readback is left");
        // Disposed, the runtime holds nothing on a device.
        pollster::block_on(rt.dispose()).unwrap();
        let report = rt.memory_report();
        assert_eq!((report.used_bytes, report.by_purpose.readback), (0, 0), "{backend:?}: released at dispose");
        assert_eq!(rt.summary().gpu_buffer_bytes, 0, "{backend:?}");
    }
}

/// The shared readback grows to what a tick copies back (a large state's checkpoint too), and
/// shrinks back once ticks have taken much less for a while: a removed kernel's state is not
/// held on the device for good.
#[test]
fn the_readback_shrinks_once_a_large_kernel_is_gone() {
    use ringkernel_web::kernel::{doubler_request, doubler_response, KernelDefinition, StateElement, StateSpec};
    let rt = runtime(RuntimeOptions::default().with_backend(BackendChoice::Vulkan));
    let wgsl = "fn handle(msg: Request) -> Response { state[0] = u32(msg.value); return Response(msg.value * 2); }";
    let mut big = KernelDefinition::new("big", doubler_request(), doubler_response(), wgsl);
    big.state = Some(StateSpec::new(StateElement::U32, 1 << 20));
    pollster::block_on(async {
        let big = rt.launch_definition(big, LaunchOptions::default().with_auto_activate()).await.unwrap();
        assert_eq!(big.typed::<i32, i32>().unwrap().call(21, Duration::from_secs(30)).await.unwrap(), 42);
        let held = rt.memory_report().by_purpose.readback;
        assert!(held >= 4 << 20, "the state's checkpoint comes back through it: {held} bytes");
        rt.terminate("big", None).await.unwrap();
        rt.remove("big").unwrap();
        let doubler = rt.launch("doubler", LaunchOptions::default().with_auto_activate()).await.unwrap();
        let doubler = doubler.typed::<i32, i32>().unwrap();
        for i in 0..300 {
            assert_eq!(doubler.call(i, Duration::from_secs(30)).await.unwrap(), 2 * i);
        }
    });
    let readback = rt.memory_report().by_purpose.readback;
    assert!(readback <= 4096, "round trips of one doubler need a few hundred bytes, the readback holds {readback}");
}

#[test]
fn pressure_crosses_its_budget_and_alerts_fire_once_per_crossing() {
    for backend in BACKENDS {
        // Measure one kernel's bytes, then budget for a little under two of them.
        let probe = runtime(RuntimeOptions::default().with_backend(backend));
        launch(&probe, "histogram", "probe", LaunchOptions::default().with_queue_capacity(16));
        let one = probe.memory_report().by_kernel["probe"].total();
        let budget = one * 2 - one / 4;

        let rt = runtime(RuntimeOptions::default().with_backend(backend).with_memory_budget(budget));
        let dashboard = rt.gpu_memory_dashboard();
        assert_eq!(dashboard.budget(), Some(budget));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let into = seen.clone();
        let watch = dashboard
            .on_alert(0.9, move |event| into.lock().unwrap().push((event.alert, event.pressure, event.threshold)))
            .unwrap();
        launch(&rt, "histogram", "a", LaunchOptions::default().with_queue_capacity(16));
        let half = dashboard.memory_pressure();
        assert!(half > 0.5 && half < 0.9, "{backend:?}: one kernel makes {half}");
        assert!(seen.lock().unwrap().is_empty());

        launch(&rt, "histogram", "b", LaunchOptions::default().with_queue_capacity(16));
        assert_eq!(dashboard.memory_pressure(), 1.0, "{backend:?}: over the budget reads 1");
        for _ in 0..5 {
            dashboard.memory_pressure();
            rt.memory_report();
        }
        assert_eq!(seen.lock().unwrap().len(), 1, "{backend:?}: one crossing, one alert: {seen:?}");
        assert_eq!(seen.lock().unwrap()[0].0, MemoryPressureAlert::High);
        assert_eq!(seen.lock().unwrap()[0].2, 0.9);

        // Freed by the terminate (its rings) and the remove (its state): heard with nothing
        // reading the pressure meanwhile, at the remove, or, when the tick's thread was in a
        // round of alerts just then, by that round's next look (the remove asks it for one).
        pollster::block_on(rt.terminate("b", None)).unwrap();
        rt.remove("b").unwrap();
        let heard_by = Instant::now() + Duration::from_secs(10);
        while seen.lock().unwrap().len() < 2 && Instant::now() < heard_by {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(seen.lock().unwrap().len(), 2, "{backend:?}: the Normal alert came at the remove: {seen:?}");
        assert_eq!(seen.lock().unwrap()[1].0, MemoryPressureAlert::Normal);

        // trigger_alert reaches every watch at once, and a removed watch hears nothing more.
        dashboard.trigger_alert(MemoryPressureAlert::High).unwrap();
        assert_eq!(seen.lock().unwrap().len(), 3);
        assert_eq!(seen.lock().unwrap()[2].0, MemoryPressureAlert::High);
        assert!(dashboard.remove_alert(watch));
        dashboard.trigger_alert(MemoryPressureAlert::High).unwrap();
        assert_eq!(seen.lock().unwrap().len(), 3);

        let refused = dashboard.on_alert(1.5, |_| {}).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::OutOfRange);
    }
}

/// A degradation manager that reacts within a few milliseconds.
fn quick() -> DegradationOptions {
    DegradationOptions::default().with_cooldown(Duration::from_millis(20)).with_window(Duration::from_millis(20))
}

/// Launches doubler `id`, active, with an input queue of 20 and an output queue of one answer,
/// which the answer to `primer` fills: nobody receives, so the kernel runs but takes no more
/// input, and what is sent to it waits in its input queue (the synthetic load).
fn stalled(rt: &Runtime, id: &str, priority: i32, primer: i32) -> KernelHandle<i32, i32> {
    let options = LaunchOptions::default().with_input_queue_capacity(20).with_output_queue_capacity(1);
    launch(rt, "doubler", id, options.with_priority(priority).with_auto_activate());
    let kernel = rt.get_kernel(id).unwrap().typed::<i32, i32>().unwrap();
    kernel.try_send(primer).unwrap();
    wait_until("the primer's answer", || rt.kernel_metrics(id).unwrap().messages_processed == 1);
    kernel
}

#[test]
fn load_raises_the_level_refusals_hand_messages_back_and_nothing_accepted_is_lost() {
    for backend in BACKENDS {
        let rt = runtime(RuntimeOptions::default().with_backend(backend).with_degradation(quick()));
        assert!(rt.degradation_manager().is_enabled());
        let low = stalled(&rt, "low", -1, 100);
        let high = stalled(&rt, "high", 3, 100);
        let mid = stalled(&rt, "mid", 0, 100);
        assert_eq!(rt.degradation_level(), DegradationLevel::Normal);
        // A paused kernel's queue is work held, not load: full, it raises no level, and its
        // priority is no one's bar at critical.
        launch(&rt, "doubler", "paused", LaunchOptions::default().with_queue_capacity(20).with_priority(9));
        let paused = rt.get_kernel("paused").unwrap().typed::<i32, i32>().unwrap();
        for i in 0..20 {
            paused.try_send(i).unwrap();
        }
        assert_eq!(rt.degradation_level(), DegradationLevel::Normal, "{backend:?}");

        // 12 of 20: light (0.5) → moderate (0.7 needs 14).
        for i in 0..12 {
            low.try_send(i).unwrap();
        }
        assert_eq!(rt.degradation_level(), DegradationLevel::Light, "{backend:?}");
        // One batch: it begins at light and finishes whole (a send one at a time could meet
        // `severe` at 17 of 20 if the tick loop evaluated the level in between, and be refused).
        let more: Vec<i32> = (12..18).collect();
        assert_eq!(pollster::block_on(rt.send_batch("low", &more, Some(Duration::ZERO))).unwrap(), 6);
        let status = rt.degradation_manager().status();
        assert_eq!((status.level, status.reason), (DegradationLevel::Severe, DegradationReason::QueueFill));
        assert_eq!(status.signals.queue_fill, 0.9);

        // Severe: the low-priority kernel's sends are refused, the message handed back.
        match low.try_send(99) {
            Err(TrySendError::Refused(message, Error::Overloaded { level, priority, required, .. })) => {
                assert_eq!((message, level, priority, required), (99, DegradationLevel::Severe, -1, 0));
            }
            other => panic!("{backend:?}: expected Overloaded, got {other:?}"),
        }
        let batch = pollster::block_on(rt.send_batch("low", &[7i32, 8], Some(Duration::ZERO)));
        assert_eq!(batch.unwrap_err().error.kind(), ErrorKind::Overloaded);
        high.try_send(1000).unwrap();

        // Critical (19 of 20 ≥ 0.95): only the highest priority takes messages; at severe, a
        // kernel at the protected priority still did.
        mid.try_send(500).unwrap();
        for i in 1001..1019 {
            high.try_send(i).unwrap();
        }
        assert_eq!(rt.degradation_level(), DegradationLevel::Critical, "{backend:?}: high is 19 of 20");
        match mid.try_send(501) {
            Err(TrySendError::Refused(
                501,
                Error::Overloaded { level: DegradationLevel::Critical, required: 3, .. },
            )) => {}
            other => panic!("{backend:?}: expected Overloaded at critical, got {other:?}"),
        }
        let metrics = rt.metrics_text();
        assert!(metrics.contains("ringkernel_degradation_level 4\n"), "{metrics}");
        assert!(metrics.contains("ringkernel_degradation_state{level=\"critical\"} 1\n"));
        assert_eq!(rt.kernel_metrics("low").unwrap().errors, 2, "each refusal counted against its kernel");
        assert_eq!(
            rt.kernel_metrics("low").unwrap().messages_sent,
            19,
            "the primer and 18: refused messages were never accepted"
        );

        // Serve the load: every accepted message is answered once, in order; the level comes down
        // step by step.
        pollster::block_on(async {
            let rt = &rt;
            let all = |id: &'static str, count: usize| async move {
                let mut answers = Vec::new();
                while answers.len() < count {
                    answers.extend(rt.receive_batch::<i32>(id, 64, Some(Duration::from_secs(30))).await.unwrap());
                }
                answers
            };
            let primed = |sent: Vec<i32>| [200].into_iter().chain(sent.into_iter().map(|i| i * 2)).collect::<Vec<_>>();
            assert_eq!(all("low", 19).await, primed((0..18).collect()), "{backend:?}");
            assert_eq!(all("high", 20).await, primed((1000..1019).collect()));
            assert_eq!(all("mid", 2).await, primed(vec![500]), "mid's one accepted message");
        });
        let mut seen = vec![rt.degradation_level()];
        wait_until("the level to come back to normal", || {
            let level = rt.degradation_level();
            if seen.last() != Some(&level) {
                seen.push(level);
            }
            level == DegradationLevel::Normal
        });
        for pair in seen.windows(2) {
            assert!(pair[1] as u8 + 1 == pair[0] as u8, "{backend:?}: down one level at a time: {seen:?}");
        }
        assert!(low.try_send(5).is_ok(), "served again at normal");
    }
}

#[test]
fn latency_over_budget_raises_the_level_and_without_a_manager_nothing_changes() {
    // A budget no answer can meet: one nanosecond. The level holds for a minute once raised, so
    // what it says is not racing the cooldown on a busy machine.
    let options = quick().with_latency_thresholds([1.0, 2.0, 3.0, 1e12]).with_cooldown(Duration::from_secs(60));
    let rt = runtime(RuntimeOptions::default().with_backend(BackendChoice::Cpu).with_degradation(options));
    let budget = LaunchOptions::default().with_auto_activate().with_latency_budget(Duration::from_nanos(1));
    launch(&rt, "doubler", "slow", budget.with_queue_capacity(64));
    let slow = rt.get_kernel("slow").unwrap().typed::<i32, i32>().unwrap();
    wait_until("latency to count", || {
        pollster::block_on(async {
            slow.send(1).await.unwrap();
            slow.receive().await.unwrap();
        });
        rt.degradation_level() >= DegradationLevel::Severe
    });
    assert_eq!(rt.degradation_manager().status().reason, DegradationReason::Latency);
    // Severe with every kernel at the protected priority: the slow kernel takes smaller
    // batches, but its sends are taken.
    for i in 0..40 {
        slow.try_send(i).unwrap();
    }
    let answers: Vec<i32> = pollster::block_on(async {
        let mut answers = Vec::new();
        while answers.len() < 40 {
            answers.extend(slow.receive_batch(64).await.unwrap());
        }
        answers
    });
    assert_eq!(answers, (0..40).map(|i| i * 2).collect::<Vec<_>>());

    let plain = runtime(RuntimeOptions::default().with_backend(BackendChoice::Cpu));
    launch(&plain, "doubler", "x", LaunchOptions::default().with_queue_capacity(4).with_priority(-5));
    for i in 0..4 {
        pollster::block_on(plain.send("x", &[("value", i.into())], None)).unwrap();
    }
    let status = plain.degradation_manager().status();
    assert!(!status.enabled);
    assert_eq!(status.level, DegradationLevel::Normal, "no manager: full queues change nothing");
    assert!(plain.metrics_text().contains("ringkernel_degradation_level 0\n"));
}

/// Nothing reads the signals while nothing runs: the first send after a quiet spell is judged by
/// that spell (its windows empty, a level down per cooldown of it), not by the load before it.
#[test]
fn a_level_raised_by_a_burst_is_gone_after_a_quiet_spell() {
    let options = quick().with_latency_thresholds([1.0, 2.0, 3.0, 1e12]);
    let rt = runtime(RuntimeOptions::default().with_backend(BackendChoice::Cpu).with_degradation(options));
    let budget = LaunchOptions::default().with_auto_activate().with_latency_budget(Duration::from_nanos(1));
    launch(&rt, "doubler", "bursty", budget.with_queue_capacity(64));
    launch(&rt, "doubler", "low", LaunchOptions::default().with_auto_activate().with_priority(-1));
    let bursty = rt.get_kernel("bursty").unwrap().typed::<i32, i32>().unwrap();
    wait_until("the burst to raise the level", || {
        pollster::block_on(async {
            bursty.send(1).await.unwrap();
            bursty.receive().await.unwrap();
        });
        rt.degradation_level() >= DegradationLevel::Severe
    });
    // Ten windows and cooldowns with nothing running.
    std::thread::sleep(Duration::from_millis(200));
    let answer = pollster::block_on(rt.call_pod::<i32, i32>("low", &4, Some(Duration::from_secs(20))));
    assert_eq!(answer.unwrap(), 8, "a send after the quiet spell was refused for the burst before it");
    assert_eq!(rt.degradation_level(), DegradationLevel::Normal);
}

#[test]
fn prometheus_reports_memory_by_kernel_and_purpose() {
    let rt = runtime(RuntimeOptions::default().with_backend(BackendChoice::Vulkan).with_memory_budget(1 << 30));
    launch(&rt, "histogram", "h", LaunchOptions::default().with_queue_capacity(16));
    let text = rt.metrics_text();
    let lines: Vec<_> = text.lines().map(|l| Ok(l.to_owned())).collect();
    let scrape = prometheus_parse::Scrape::parse(lines.into_iter()).unwrap();
    let report = rt.memory_report();
    let mut total = 0.0;
    for sample in scrape.samples.iter().filter(|s| s.metric == "ringkernel_memory_bytes") {
        let prometheus_parse::Value::Gauge(bytes) = sample.value else { panic!("a gauge") };
        let purpose = &sample.labels["purpose"];
        if sample.labels["kernel"] == *"h" && purpose == "state" {
            assert_eq!(bytes, report.by_kernel["h"].state as f64);
        }
        total += bytes;
    }
    assert_eq!(total, report.used_bytes as f64, "the samples add up to what is held");
    let gauge = |name: &str| {
        scrape.samples.iter().find(|s| s.metric == name).map(|s| match s.value {
            prometheus_parse::Value::Gauge(v) => v,
            _ => panic!("{name} is a gauge"),
        })
    };
    assert_eq!(gauge("ringkernel_memory_budget_bytes"), Some((1u64 << 30) as f64));
    assert_eq!(gauge("ringkernel_memory_pressure"), Some(report.pressure));
    assert_eq!(gauge("ringkernel_degradation_level"), Some(0.0));
}

/// The worst latency ratio and level a degradation manager with a `window_ms` window reads
/// while a host handler takes 250 ms a message against a 10 ms budget.
fn worst_latency_reading(window_ms: u64) -> (Option<f64>, DegradationLevel) {
    let id = format!("slow-{window_ms}");
    let handler = host::typed(|v: &i32, _: &mut [u32]| {
        std::thread::sleep(Duration::from_millis(250));
        Some(*v)
    });
    kernel::register_or_replace(
        KernelDefinition::new(&id, kernel::doubler_request(), kernel::doubler_response(), "")
            .with_host_handler(handler),
    );
    let options = RuntimeOptions::default().with_backend(BackendChoice::Cpu).with_telemetry(true).with_degradation(
        DegradationOptions::default()
            .with_window(Duration::from_millis(window_ms))
            .with_cooldown(Duration::from_secs(10))
            .with_default_latency_budget(Duration::from_millis(10)),
    );
    let rt = pollster::block_on(Runtime::new(options)).unwrap();
    pollster::block_on(async {
        rt.launch(&id, LaunchOptions::default().with_queue_capacity(4).with_max_batch(1).with_auto_activate())
            .await
            .unwrap();
        // A steady, blocked sender (as under overload).
        let sender = {
            let (rt, id) = (rt.clone(), id.clone());
            std::thread::spawn(move || {
                pollster::block_on(async {
                    for i in 0..12 {
                        rt.send_pod(&id, &i, Some(Duration::from_secs(10))).await.unwrap();
                        let _ = rt.try_receive_with(&id, |_, _| ());
                    }
                })
            })
        };
        let mut worst_ratio: Option<f64> = None;
        let mut worst_level = DegradationLevel::Normal;
        let until = Instant::now() + Duration::from_millis(2500);
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(700));
            let s = rt.degradation_status();
            worst_level = worst_level.max(s.level);
            if let Some(r) = s.signals.latency_ratio {
                worst_ratio = Some(worst_ratio.map_or(r, |w: f64| w.max(r)));
            }
        }
        sender.join().unwrap();
        (worst_ratio, worst_level)
    })
}

/// Answers of ticks longer than the window still count: a window is read as empty only when
/// nothing was answered for a whole span (a late reading after a quiet spell).
#[test]
fn the_latency_signal_holds_when_ticks_outlast_the_window() {
    let wide = worst_latency_reading(1000);
    let narrow = worst_latency_reading(100);
    assert!(wide.0.is_some(), "a 1 s window sees latency: {wide:?}");
    assert!(narrow.0.is_some(), "a 100 ms window lost the 250 ms latencies: {narrow:?}");
}

/// Callbacks that free memory or remove watches: every watch hears its crossings once each and
/// in order (a check from inside a callback waits for the round under way), and a watch removed
/// by another's callback hears nothing more, even in the round that removed it.
#[test]
fn alert_callbacks_that_free_memory_or_remove_watches_keep_each_watch_in_order() {
    let probe = runtime(RuntimeOptions::default().with_backend(BackendChoice::Cpu));
    launch(&probe, "histogram", "probe", LaunchOptions::default().with_queue_capacity(16));
    let one = probe.memory_report().by_kernel["probe"].total();
    let rt = runtime(RuntimeOptions::default().with_backend(BackendChoice::Cpu).with_memory_budget(one * 2));
    let dashboard = rt.gpu_memory_dashboard();
    let heard = Arc::new(Mutex::new(Vec::new()));
    // The first watch frees half the memory from its callback, the moment it hears `High`.
    let (into, freeing) = (heard.clone(), rt.clone());
    dashboard
        .on_alert(0.7, move |event| {
            into.lock().unwrap().push(("first", event.alert));
            if event.alert == MemoryPressureAlert::High {
                pollster::block_on(freeing.terminate("b", None)).unwrap();
                freeing.remove("b").unwrap();
            }
        })
        .unwrap();
    let into = heard.clone();
    dashboard.on_alert(0.75, move |event| into.lock().unwrap().push(("second", event.alert))).unwrap();
    launch(&rt, "histogram", "a", LaunchOptions::default().with_queue_capacity(16));
    launch(&rt, "histogram", "b", LaunchOptions::default().with_queue_capacity(16));
    use MemoryPressureAlert::{High, Normal};
    assert_eq!(
        *heard.lock().unwrap(),
        [("first", High), ("second", High), ("first", Normal), ("second", Normal)],
        "each watch hears its crossings in order, after the round that raised them"
    );

    // A callback that removes the other watch: that one hears nothing of the round either.
    let rt = runtime(RuntimeOptions::default().with_backend(BackendChoice::Cpu).with_memory_budget(one * 2));
    let dashboard = rt.gpu_memory_dashboard();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let other = Arc::new(Mutex::new(None));
    let (into, removing, remover_dashboard) = (heard.clone(), other.clone(), rt.gpu_memory_dashboard());
    dashboard
        .on_alert(0.7, move |event| {
            into.lock().unwrap().push(("first", event.alert));
            if let Some(watch) = removing.lock().unwrap().take() {
                assert!(remover_dashboard.remove_alert(watch));
            }
        })
        .unwrap();
    let into = heard.clone();
    *other.lock().unwrap() =
        Some(dashboard.on_alert(0.75, move |event| into.lock().unwrap().push(("second", event.alert))).unwrap());
    launch(&rt, "histogram", "a", LaunchOptions::default().with_queue_capacity(16));
    launch(&rt, "histogram", "b", LaunchOptions::default().with_queue_capacity(16));
    assert_eq!(*heard.lock().unwrap(), [("first", High)], "the removed watch heard its round");
}

/// The bytes one `histogram` kernel with a queue of 16 holds on the cpu backend.
fn one_kernels_bytes() -> u64 {
    let probe = runtime(RuntimeOptions::default().with_backend(BackendChoice::Cpu));
    launch(&probe, "histogram", "probe", LaunchOptions::default().with_queue_capacity(16));
    probe.memory_report().by_kernel["probe"].total()
}

/// A watch registered while pressure is already above its threshold hears `High` before
/// `on_alert` returns natively, also while another thread's round of callbacks runs, and from
/// inside a callback: it has no earlier crossing to wait behind.
#[test]
fn a_new_watch_hears_its_first_crossing_before_on_alert_returns_whatever_round_runs() {
    let one = one_kernels_bytes();
    let rt = runtime(RuntimeOptions::default().with_backend(BackendChoice::Cpu).with_memory_budget(one * 2));
    let dashboard = rt.gpu_memory_dashboard();
    let in_slow = Arc::new(Barrier::new(2));
    let b = in_slow.clone();
    dashboard
        .on_alert(0.4, move |e| {
            if e.alert == MemoryPressureAlert::High {
                b.wait();
                std::thread::sleep(Duration::from_millis(500));
            }
        })
        .unwrap();
    let rt2 = rt.clone();
    // This launch's check fires the slow watch on another thread.
    let t =
        std::thread::spawn(move || launch(&rt2, "histogram", "a", LaunchOptions::default().with_queue_capacity(16)));
    in_slow.wait();
    let heard = Arc::new(AtomicUsize::new(0));
    let h = heard.clone();
    dashboard
        .on_alert(0.3, move |_| {
            h.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let at_return = heard.load(Ordering::SeqCst);
    t.join().unwrap();
    assert_eq!(at_return, 1, "pressure 0.5 is above 0.3: on_alert should have called back before returning");

    // From inside a callback.
    let rt = runtime(RuntimeOptions::default().with_backend(BackendChoice::Cpu).with_memory_budget(one * 2));
    let dashboard = rt.gpu_memory_dashboard();
    let seen_at_return = Arc::new(Mutex::new(None));
    let (s, d2) = (seen_at_return.clone(), rt.gpu_memory_dashboard());
    let done = Arc::new(AtomicBool::new(false));
    dashboard
        .on_alert(0.4, move |e| {
            if e.alert == MemoryPressureAlert::High && !done.swap(true, Ordering::SeqCst) {
                let heard = Arc::new(AtomicUsize::new(0));
                let h = heard.clone();
                d2.on_alert(0.3, move |_| {
                    h.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
                *s.lock().unwrap() = Some(heard.load(Ordering::SeqCst));
            }
        })
        .unwrap();
    launch(&rt, "histogram", "a", LaunchOptions::default().with_queue_capacity(16));
    assert_eq!(*seen_at_return.lock().unwrap(), Some(1), "on_alert from a callback returned before calling back");
}

/// A memory alert callback that panics on the tick loop's thread is reported and the loop goes
/// on: messages sent after it are processed with no caller waiting for them (a waiting receive
/// may run a tick itself), and so are those of a later launch.
#[test]
fn a_panicking_alert_callback_leaves_the_tick_loop_running() {
    // The doubler's rings hold about half the budget; the readback of a tick of 8000 answers
    // takes pressure past 0.7, inside the tick loop.
    let rt = runtime(RuntimeOptions::default().with_backend(BackendChoice::Vulkan).with_memory_budget(120_000));
    launch(&rt, "doubler", "d", LaunchOptions::default().with_queue_capacity(8192).with_auto_activate());
    let panicked_on = Arc::new(Mutex::new(Vec::new()));
    let into = panicked_on.clone();
    rt.gpu_memory_dashboard()
        .on_alert(0.7, move |event| {
            into.lock().unwrap().push(std::thread::current().name().map(str::to_owned));
            panic!("an alert callback that panics ({:?})", event.alert);
        })
        .unwrap();
    assert!(panicked_on.lock().unwrap().is_empty(), "pressure was below 0.7 at registration");
    let processed = |id: &str| rt.kernel_metrics(id).unwrap().messages_processed;
    let sent = |id: &str, n: i32| {
        let values: Vec<i32> = (0..n).collect();
        pollster::block_on(rt.send_batch(id, &values, Some(Duration::from_secs(60)))).unwrap();
    };
    sent("d", 8000);
    wait_until("the first 8000", || processed("d") == 8000);
    wait_until("the alert", || !panicked_on.lock().unwrap().is_empty());
    assert_eq!(*panicked_on.lock().unwrap(), [Some("ringkernel-tick".to_owned())]);
    pollster::block_on(common::receive_n(&rt, "d", 8000, Duration::from_secs(60)));

    sent("d", 100);
    wait_until("100 more, processed by the tick loop", || processed("d") == 8100);
    let answers = pollster::block_on(common::receive_n(&rt, "d", 100, Duration::from_secs(60)));
    assert_eq!(answers, (0..100).map(|v| v * 2).collect::<Vec<_>>());
    launch(&rt, "doubler", "later", LaunchOptions::default().with_queue_capacity(16).with_auto_activate());
    sent("later", 10);
    wait_until("a later launch's messages", || processed("later") == 10);
}

/// A callback holding the runtime (here its dashboard) would keep it alive through its own
/// watch: the shutdown lets every watch's callback go, and what it captured with it.
#[test]
fn dispose_lets_alert_callbacks_and_what_they_hold_go() {
    let rt = runtime(RuntimeOptions::default().with_backend(BackendChoice::Cpu).with_memory_budget(1 << 20));
    let sentinel = Arc::new(());
    let (held, dashboard) = (sentinel.clone(), rt.gpu_memory_dashboard());
    rt.gpu_memory_dashboard()
        .on_alert(0.5, move |_| {
            let _ = (&held, dashboard.budget());
        })
        .unwrap();
    assert_eq!(Arc::strong_count(&sentinel), 2);
    pollster::block_on(rt.dispose()).unwrap();
    assert_eq!(Arc::strong_count(&sentinel), 1, "the callback outlived the shutdown");
}

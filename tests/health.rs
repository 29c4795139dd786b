//! `Runtime::health` on lavapipe and on the cpu backend: healthy when idle, degraded by a
//! nearly full queue and by recent errors (naming the kernel), unhealthy while the device is
//! lost and healthy again after `recover`, degraded while draining and unhealthy once stopped.
//! The rules themselves are unit-tested in `src/health.rs`.
#![cfg(not(target_arch = "wasm32"))]
#[allow(unused_imports)]
mod common;

use std::time::Duration;

use common::{runtime_on, wait_until};
use ringkernel_web::health::{HealthSubject, Severity};
use ringkernel_web::{
    BackendChoice, CircuitBreakerConfig, Error, ErrorKind, HealthStatus, HealthThresholds, LaunchOptions, Runtime,
    RuntimeBuilder, RuntimeOptions, WatchdogConfig,
};

const WAIT: Option<Duration> = Some(Duration::from_secs(30));
const NOW: Option<Duration> = Some(Duration::ZERO);

fn check(backend: BackendChoice) {
    let rt = runtime_on(backend);
    pollster::block_on(async {
        assert_eq!(rt.health().status, HealthStatus::Healthy, "{backend:?}: a new runtime");
        assert_eq!(rt.health_checker().check().await.unwrap(), HealthStatus::Healthy);

        // Launched, not active: what is sent waits in its queue of 10.
        rt.launch("doubler", LaunchOptions::default().with_queue_capacity(10)).await.unwrap();
        rt.send_batch("doubler", &[1, 2, 3, 4, 5, 6, 7, 8], NOW).await.unwrap();
        let report = rt.health();
        assert_eq!(
            report.status,
            HealthStatus::Degraded("kernel 'doubler': input queue 80% full".into()),
            "{backend:?}"
        );
        assert_eq!(report.issues[0].subject, HealthSubject::Kernel("doubler".into()));
        assert_eq!(report.issues[0].severity, Severity::Degraded);
        let text = rt.metrics_text();
        let scraped = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
        let sample = |name: &str, labels: &[(&str, &str)]| {
            scraped
                .samples
                .iter()
                .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
                .map(|s| match s.value {
                    prometheus_parse::Value::Gauge(v) => v,
                    ref other => panic!("{name} is a gauge: {other:?}"),
                })
        };
        assert_eq!(sample("ringkernel_health", &[("status", "degraded")]), Some(1.0), "{text}");
        assert_eq!(sample("ringkernel_health", &[("status", "healthy")]), Some(0.0));
        let labels = [("severity", "degraded"), ("subject", "kernel"), ("kernel", "doubler")];
        assert_eq!(sample("ringkernel_health_issues", &labels), Some(1.0), "{text}");

        // Refusals of a full queue are back-pressure, not failures: still degraded by the queue.
        for accepted in [2, 0, 0] {
            match rt.send_batch("doubler", &[1, 2, 3], NOW).await.map_err(|cut| (cut.accepted, cut.error)) {
                Err((n, Error::QueueFull { accepted: m, .. })) => assert_eq!((n, m), (accepted, accepted)),
                other => panic!("{backend:?}: {other:?}"),
            }
        }
        assert_eq!(
            rt.health().status,
            HealthStatus::Degraded("kernel 'doubler': input queue 100% full".into()),
            "{backend:?}"
        );
        // Three calls that time out are failures: 3 of 3 operations since the last check.
        rt.launch("echo", LaunchOptions::default()).await.unwrap();
        for _ in 0..3 {
            let error = rt.call_pod::<i32, i32>("echo", &1, Some(Duration::from_millis(1))).await.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Timeout);
        }
        assert_eq!(
            rt.health().status,
            HealthStatus::Unhealthy("kernel 'echo': 3 of 3 operations failed since the last check".into()),
            "{backend:?}"
        );
        rt.terminate("echo", WAIT).await.unwrap();
        rt.remove("echo").unwrap();

        // The queue drained and no new errors: healthy again (rates are since the last check).
        rt.activate("doubler").await.unwrap();
        let mut answers = Vec::new();
        while answers.len() < 10 {
            answers.extend(rt.receive_batch::<i32>("doubler", 10, WAIT).await.unwrap());
        }
        assert_eq!(answers, vec![2, 4, 6, 8, 10, 12, 14, 16, 2, 4]);
        assert_eq!(rt.health().status, HealthStatus::Healthy, "{backend:?}");

        if backend != BackendChoice::Cpu {
            rt.destroy_device().unwrap();
            wait_until("the tick to notice the lost device", || rt.summary().device.lost.is_some());
            let status = rt.health().status;
            let HealthStatus::Unhealthy(reason) = &status else { panic!("{status:?}") };
            // The loss is also a failure of the kernel that was on the device.
            assert!(reason.starts_with("the device is lost (") && reason.contains("; call recover()"), "{reason}");
            assert!(reason.ends_with("kernel 'doubler': 1 of 1 operations failed since the last check"), "{reason}");
            rt.recover().await.unwrap();
            assert_eq!(rt.health().status, HealthStatus::Healthy);
        }

        rt.terminate("doubler", WAIT).await.unwrap();
        rt.begin_drain().unwrap();
        assert_eq!(rt.health().status, HealthStatus::Degraded("the runtime is draining".into()));
        rt.dispose().await.unwrap();
        assert_eq!(rt.health().status, HealthStatus::Unhealthy("the runtime is stopped".into()));
    });
}

#[test]
fn health_follows_queues_errors_the_device_and_the_lifecycle_on_the_gpu() {
    check(BackendChoice::Auto);
}

#[test]
fn health_follows_queues_errors_and_the_lifecycle_on_the_cpu() {
    check(BackendChoice::Cpu);
}

/// Thresholds move the lines; fractions outside [0, 1] are refused by name.
#[test]
fn thresholds_are_options_and_are_checked() {
    let strict = HealthThresholds::default().with_queue_fill(0.1);
    let options = RuntimeOptions::default().with_backend(BackendChoice::Cpu).with_health_thresholds(strict);
    let rt = pollster::block_on(Runtime::new(options)).unwrap();
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default().with_queue_capacity(10)).await.unwrap();
        rt.send_batch("doubler", &[1], NOW).await.unwrap();
        assert_eq!(rt.health().status.as_str(), "degraded");
    });
    for bad in [-0.1, 1.5, f64::NAN] {
        let options = RuntimeOptions::default()
            .with_backend(BackendChoice::Cpu)
            .with_health_thresholds(HealthThresholds::default().with_memory(0.8, bad));
        let error = pollster::block_on(Runtime::new(options)).expect_err("refused");
        assert_eq!(error.kind(), ErrorKind::OutOfRange);
        assert!(error.to_string().contains("memory_unhealthy (health.memoryUnhealthy) must be"), "{error}");
    }
    // At 0 every kernel would meet a line; a degraded line above its unhealthy one.
    for (bad, named) in [
        (
            HealthThresholds::default().with_queue_fill(0.0),
            "queue_fill (health.queueFill) must be a fraction more than 0",
        ),
        (
            HealthThresholds::default().with_error_rates(0.9, 0.1),
            "error_rate_degraded (health.errorRateDegraded) (0.9) must be at most error_rate_unhealthy",
        ),
    ] {
        let options = RuntimeOptions::default().with_backend(BackendChoice::Cpu).with_health_thresholds(bad);
        let error = pollster::block_on(Runtime::new(options)).expect_err("refused");
        assert_eq!(error.kind(), ErrorKind::OutOfRange);
        assert!(error.to_string().contains(named), "{error}");
    }
}

/// An open circuit and a stalled kernel (full output queue, nobody receiving) are findings
/// naming their kernels.
#[test]
fn open_circuits_and_stale_kernels_are_findings() {
    let options = RuntimeOptions::default()
        .with_backend(BackendChoice::Cpu)
        .with_circuit_breaker(CircuitBreakerConfig::default().with_failure_threshold(1))
        .with_watchdog(WatchdogConfig::default().with_heartbeat_timeout(Duration::from_millis(50)));
    let rt = pollster::block_on(Runtime::new(options)).unwrap();
    pollster::block_on(async {
        // Launched, never activated: a call times out, a failure that opens the circuit.
        rt.launch("echo", LaunchOptions::default()).await.unwrap();
        let timed_out = rt.call_pod::<i32, i32>("echo", &1, Some(Duration::from_millis(1))).await.unwrap_err();
        assert_eq!(timed_out.kind(), ErrorKind::Timeout);
        // Active with an output queue of 4 nobody receives from: 4 answers, then no progress.
        rt.launch("doubler", LaunchOptions::default().with_queue_capacity(4).with_auto_activate()).await.unwrap();
        rt.send_batch("doubler", &[1, 2, 3, 4, 5, 6, 7], WAIT).await.unwrap();
        wait_until("the doubler to stall", || rt.stale_kernel_ids() == ["doubler"]);
        let report = rt.health();
        let reasons: Vec<&str> = report.issues.iter().map(|i| i.reason.as_str()).collect();
        assert!(reasons.contains(&"kernel 'echo': circuit breaker open"), "{reasons:?}");
        assert!(
            reasons.iter().any(|r| r.starts_with("kernel 'doubler': has input and made no progress for ")),
            "{reasons:?}"
        );
    });
}

/// Memory pressure against the budget is a finding: a kernel whose rings take most of a small
/// budget makes the runtime degraded, then unhealthy.
#[test]
fn memory_pressure_is_a_finding() {
    let rt = runtime_on(BackendChoice::Auto);
    let used_by_one = pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default().with_queue_capacity(1024)).await.unwrap();
        let used = rt.memory_report().used_bytes;
        rt.dispose().await.unwrap();
        used
    });
    for (budget, status) in [(used_by_one * 100 / 85, "degraded"), (used_by_one, "unhealthy")] {
        let options = RuntimeOptions::default().with_backend(BackendChoice::Auto).with_memory_budget(budget);
        let rt = pollster::block_on(Runtime::new(options)).unwrap();
        pollster::block_on(rt.launch("doubler", LaunchOptions::default().with_queue_capacity(1024))).unwrap();
        let report = rt.health();
        assert_eq!(report.status.as_str(), status, "{report:?}");
        assert_eq!(report.issues[0].subject, HealthSubject::Memory);
        assert!(report.issues[0].reason.starts_with("GPU memory pressure is "), "{report:?}");
    }
}

/// The presets turn the operations layer on and off as the builder's table says.
#[test]
fn presets_turn_the_operations_layer_on_and_off() {
    let production = RuntimeBuilder::production();
    let o = production.options();
    assert_eq!(o.circuit_breaker, Some(CircuitBreakerConfig::default()));
    assert!(o.degradation.is_some() && o.auto_recover && o.enable_telemetry && !o.tracing && !o.debug);
    let o = RuntimeBuilder::development().options().clone();
    assert!(o.tracing && o.debug && !o.auto_recover && o.circuit_breaker.is_none() && o.degradation.is_none());
    assert_eq!(o.watchdog.heartbeat_timeout, Duration::from_secs(5));
    let o = RuntimeBuilder::high_performance().options().clone();
    assert!(!o.enable_telemetry && !o.tracing && o.circuit_breaker.is_none() && o.degradation.is_none());
    for name in ["development", "production", "highPerformance"] {
        assert!(RuntimeBuilder::preset(name).is_some(), "{name}");
    }
    assert!(RuntimeBuilder::preset("fast").is_none());
    // A production runtime: breakers and the degradation manager are there.
    let rt = pollster::block_on(production.backend(BackendChoice::Cpu).build()).unwrap();
    pollster::block_on(rt.launch("doubler", LaunchOptions::default())).unwrap();
    assert_eq!(rt.circuit_breaker("doubler").unwrap().state().unwrap(), ringkernel_web::CircuitState::Closed);
    assert!(rt.degradation_status().enabled);
}

/// Error rates are a launch's own: a kernel launched again under an id whose earlier launch
/// processed more messages than it has is judged by its own failures, not measured against
/// the earlier launch's counts (which read as none then), in `health()` and in the scrape.
#[test]
fn a_kernel_launched_again_is_judged_by_its_own_errors() {
    use ringkernel_web::kernel::{self, doubler_request, doubler_response, host};
    use ringkernel_web::KernelDefinition;
    let failing = KernelDefinition::new("health-always-fails", doubler_request(), doubler_response(), "")
        .with_host_handler(|_: &[u8], _: &mut [u8], _: &mut [u32]| -> host::HostOutcome { Err("always".into()) });
    kernel::register_or_replace(failing);
    let rt = runtime_on(BackendChoice::Cpu);
    pollster::block_on(async {
        let hundred: Vec<i32> = (0..100).collect();
        let first = LaunchOptions::default().with_queue_capacity(256).with_auto_activate();
        rt.launch_as("doubler", "h", first.clone()).await.unwrap();
        rt.send_batch("h", &hundred, WAIT).await.unwrap();
        common::receive_n(&rt, "h", 100, Duration::from_secs(30)).await;
        assert_eq!(rt.health().status, HealthStatus::Healthy);
        let _ = rt.metrics_text(); // the scrape's own sample, (0 failures, 100 operations)
        rt.terminate("h", WAIT).await.unwrap();
        rt.remove("h").unwrap();
        rt.launch_as("health-always-fails", "h", first).await.unwrap();
        rt.send_batch("h", &hundred, WAIT).await.unwrap();
        wait_until("100 failed", || rt.kernel_metrics("h").unwrap().errors == 100);
        let report = rt.health();
        let reasons: Vec<&str> = report.issues.iter().map(|i| i.reason.as_str()).collect();
        assert_eq!(reasons, ["kernel 'h': 100 of 100 operations failed since the last check"], "{report:?}");
        assert!(matches!(report.status, HealthStatus::Unhealthy(_)), "{report:?}");
        let scraped = rt.metrics_text();
        let judged =
            ["ringkernel_health{status=\"unhealthy\"} 1", "{severity=\"unhealthy\",subject=\"kernel\",kernel=\"h\"} 1"];
        assert!(judged.iter().all(|line| scraped.contains(line)), "the scrape judges it too:\n{scraped}");
    });
}

/// Telemetry's error rate counts a message whose handler failed once, as `health()` does
/// (it is among both the messages processed and the errors): a handler failing every message
/// reads 1 where `health()` finds all of them failed, one failing half of them 0.5.
#[test]
fn telemetry_error_rates_count_operations_as_health_does() {
    use ringkernel_web::kernel::{doubler_request, doubler_response, host};
    use ringkernel_web::KernelDefinition;
    // Doubles on the host and fails on negative values.
    let failing_negatives = |id: &str| {
        KernelDefinition::new(id, doubler_request(), doubler_response(), "").with_host_handler(
            |input: &[u8], output: &mut [u8], _: &mut [u32]| -> host::HostOutcome {
                let value: i32 = bytemuck::pod_read_unaligned(input);
                if value < 0 {
                    return Err(format!("negative input {value}"));
                }
                output.copy_from_slice(&(value * 2).to_le_bytes());
                Ok(true)
            },
        )
    };
    let rt = runtime_on(BackendChoice::Cpu);
    pollster::block_on(async {
        let options = LaunchOptions::default().with_queue_capacity(256).with_auto_activate();
        rt.launch_definition(failing_negatives("all-fail"), options.clone()).await.unwrap();
        rt.launch_definition(failing_negatives("half-fail"), options).await.unwrap();
        let negatives: Vec<i32> = (1..=100).map(|v| -v).collect();
        let halves: Vec<i32> = (1..=100).map(|v| if v % 2 == 0 { v } else { -v }).collect();
        rt.send_batch("all-fail", &negatives, WAIT).await.unwrap();
        rt.send_batch("half-fail", &halves, WAIT).await.unwrap();
        common::receive_n(&rt, "half-fail", 50, Duration::from_secs(30)).await;
        wait_until("every message processed", || {
            ["all-fail", "half-fail"].iter().all(|id| rt.kernel_metrics(id).unwrap().messages_processed == 100)
        });
        for (id, errors, rate) in [("all-fail", 100, 1.0), ("half-fail", 50, 0.5)] {
            let t = rt.telemetry(id).unwrap().unwrap();
            assert_eq!((t.messages_processed, t.errors, t.error_rate), (100, errors, rate), "{id}");
        }
        let report = rt.health();
        let reasons: Vec<&str> = report.issues.iter().map(|i| i.reason.as_str()).collect();
        let found = [
            "kernel 'all-fail': 100 of 100 operations failed since the last check",
            "kernel 'half-fail': 50 of 100 operations failed since the last check",
        ];
        assert_eq!(reasons, found, "{report:?}");
    });
}

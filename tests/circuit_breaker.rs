//! Circuit breakers natively, on the cpu backend (handler errors, timeouts, `execute`) and on
//! lavapipe (a lost device): closed → open after a run of failures, refusals that queue nothing
//! and hand the message back, half-open probes, and closing on success. The state machine on
//! its own is tested (with proptest) in `src/circuit.rs`.
#![cfg(not(target_arch = "wasm32"))]

#[allow(unused_imports)]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::wait_until;
use ringkernel_web::kernel::{doubler_request, doubler_response, host::HostOutcome};
use ringkernel_web::{
    BackendChoice, CircuitBreakerConfig, CircuitState, Error, ErrorKind, HealthStatus, KernelDefinition, KernelState,
    LaunchOptions, Runtime, RuntimeOptions,
};

/// How long a circuit stays open, and how long a round of half-open probes lasts: long enough
/// that a test's steps after one state is seen (the refusals of an open circuit, a probe and the
/// refusal behind it) fall within that state on a loaded machine.
const OPEN: Duration = Duration::from_millis(1500);
const LONG: Option<Duration> = Some(Duration::from_secs(10));

fn breaker(threshold: u32) -> CircuitBreakerConfig {
    CircuitBreakerConfig::default().with_failure_threshold(threshold).with_open_duration(OPEN)
}

fn runtime(backend: BackendChoice, breaker: Option<CircuitBreakerConfig>) -> Runtime {
    let mut options = RuntimeOptions::default().with_backend(backend);
    if let Some(config) = breaker {
        options = options.with_circuit_breaker(config);
    }
    pollster::block_on(Runtime::new(options)).unwrap_or_else(|e| panic!("{backend:?}: {e}"))
}

/// Doubles its input on the host, and fails (an error, not a drop) on negative values.
fn flaky(id: &str) -> KernelDefinition {
    KernelDefinition::new(id, doubler_request(), doubler_response(), "").with_host_handler(
        |input: &[u8], output: &mut [u8], _: &mut [u32]| -> HostOutcome {
            let value: i32 = bytemuck::pod_read_unaligned(input);
            if value < 0 {
                return Err(format!("negative input {value}"));
            }
            output.copy_from_slice(&(value * 2).to_le_bytes());
            Ok(true)
        },
    )
}

async fn start(rt: &Runtime, definition: KernelDefinition) {
    rt.launch_definition(definition, LaunchOptions::default().with_queue_capacity(16)).await.unwrap();
    rt.activate(rt.kernel_ids().last().unwrap()).await.unwrap();
}

fn circuit(rt: &Runtime, id: &str) -> CircuitState {
    rt.circuit_breaker(id).unwrap().state().unwrap()
}

#[test]
fn handler_errors_open_the_circuit_which_refuses_then_probes_and_closes() {
    let rt = runtime(BackendChoice::Cpu, Some(breaker(3)));
    pollster::block_on(async {
        start(&rt, flaky("flaky")).await;
        // Two failures, then a success: the run is broken, the circuit stays closed.
        assert_eq!(rt.send_batch("flaky", &[-1i32, -2], LONG).await.unwrap(), 2);
        wait_until("two failures", || rt.kernel_metrics("flaky").unwrap().errors == 2);
        assert_eq!(rt.circuit_status("flaky").unwrap().failures, 2);
        assert_eq!(rt.call_pod::<i32, i32>("flaky", &5, LONG).await.unwrap(), 10);
        assert_eq!(circuit(&rt, "flaky"), CircuitState::Closed);
        assert_eq!(rt.circuit_status("flaky").unwrap().failures, 0);

        assert_eq!(rt.send_batch("flaky", &[-3i32, -4, -5], LONG).await.unwrap(), 3);
        wait_until("the circuit to open", || circuit(&rt, "flaky") == CircuitState::Open);
        let before = rt.kernel_metrics("flaky").unwrap();
        let status = rt.circuit_status("flaky").unwrap();
        assert_eq!(status.opened, 1);
        assert!(status.retry_after.is_some_and(|d| d <= OPEN), "{status:?}");

        // Refused, whole, and nothing queued: single sends, batches, calls, handles, execute.
        let refused = rt.send_pod("flaky", &7i32, LONG).await.unwrap_err();
        assert!(
            matches!(&refused, Error::CircuitOpen { id, retry_after, .. } if id == "flaky" && *retry_after <= OPEN)
        );
        assert!(refused.to_string().contains("circuit of kernel 'flaky' is open"), "{refused}");
        assert_eq!(rt.send_batch("flaky", &[1i32, 2, 3], LONG).await.unwrap_err().error.kind(), ErrorKind::CircuitOpen);
        assert_eq!(rt.call_pod::<i32, i32>("flaky", &1, LONG).await.unwrap_err().kind(), ErrorKind::CircuitOpen);
        let handle = rt.get_kernel("flaky").unwrap().typed::<i32, i32>().unwrap();
        let back = handle.send(41).await.unwrap_err();
        assert_eq!((back.message, back.error.kind()), (41, ErrorKind::CircuitOpen), "the message comes back");
        let ran = AtomicUsize::new(0);
        let protected = rt
            .circuit_breaker("flaky")
            .unwrap()
            .execute(|| async {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Error>(())
            })
            .await;
        assert_eq!((protected.unwrap_err().kind(), ran.load(Ordering::SeqCst)), (ErrorKind::CircuitOpen, 0));
        let after = rt.kernel_metrics("flaky").unwrap();
        assert_eq!((after.messages_sent, after.input_queue_depth), (before.messages_sent, 0), "nothing was queued");
        assert_eq!(after.errors, before.errors, "refusals by the circuit are not the kernel's errors");
        assert_eq!(after.circuit_state, CircuitState::Open);
        assert!(rt.metrics_text().contains("ringkernel_circuit_state{kernel=\"flaky\",state=\"open\"} 1"));
        assert!(rt.metrics_text().contains("ringkernel_circuit_opened_total{kernel=\"flaky\"} 1"));

        // Half-open: one probe goes through, the next operation waits for its outcome.
        wait_until("half-open", || circuit(&rt, "flaky") == CircuitState::HalfOpen);
        rt.deactivate("flaky").await.unwrap();
        rt.send_pod("flaky", &8i32, LONG).await.unwrap();
        assert_eq!(rt.send_pod("flaky", &9i32, LONG).await.unwrap_err().kind(), ErrorKind::CircuitOpen);
        rt.reactivate("flaky").await.unwrap();
        assert_eq!(rt.receive_pod::<i32>("flaky", LONG).await.unwrap(), 16);
        wait_until("closed after the probe", || circuit(&rt, "flaky") == CircuitState::Closed);
        assert_eq!(rt.call_pod::<i32, i32>("flaky", &10, LONG).await.unwrap(), 20);

        // A probe that fails reopens it.
        assert_eq!(rt.send_batch("flaky", &[-6i32, -7, -8], LONG).await.unwrap(), 3);
        // Waits for the count of openings, which stays, not the open state, which a slow look
        // could miss (half-open again after OPEN) and then wait for in vain.
        let opened = || rt.circuit_status("flaky").unwrap().opened;
        wait_until("open again", || opened() == 2);
        wait_until("half-open again", || circuit(&rt, "flaky") == CircuitState::HalfOpen);
        rt.send_pod("flaky", &-9i32, LONG).await.unwrap();
        wait_until("reopened by the failed probe", || opened() == 3);
        let t = rt.kernel_metrics("flaky").unwrap();
        assert_eq!((t.circuit_opened, t.errors, t.messages_processed), (3, 9, 12));
        let rate = rt.telemetry("flaky").unwrap().unwrap().error_rate;
        assert_eq!(rate, 9.0 / 12.0, "the share of operations that failed: a failed message is one");
        assert_eq!(t.messages_received, 3, "every answered message was received once");
    });
}

#[test]
fn without_breakers_nothing_is_refused() {
    let rt = runtime(BackendChoice::Cpu, None);
    pollster::block_on(async {
        start(&rt, flaky("flaky-off")).await;
        let failing: Vec<i32> = (1..=12).map(|v| -v).collect();
        assert_eq!(rt.send_batch("flaky-off", &failing, LONG).await.unwrap(), 12);
        wait_until("twelve failures", || rt.kernel_metrics("flaky-off").unwrap().errors == 12);
        assert_eq!(circuit(&rt, "flaky-off"), CircuitState::Closed);
        assert_eq!(rt.call_pod::<i32, i32>("flaky-off", &4, LONG).await.unwrap(), 8);
        assert!(rt.metrics_text().contains("ringkernel_circuit_state{kernel=\"flaky-off\",state=\"closed\"} 1"));
    });
}

#[test]
fn timed_out_calls_open_the_circuit() {
    let rt = runtime(BackendChoice::Cpu, Some(breaker(2)));
    pollster::block_on(async {
        start(&rt, flaky("slowpoke")).await;
        // Deactivated, it keeps its input and answers nothing: calls time out.
        rt.deactivate("slowpoke").await.unwrap();
        for value in [1i32, 2] {
            let e = rt.call_pod::<i32, i32>("slowpoke", &value, Some(Duration::from_millis(30))).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Timeout);
        }
        assert_eq!(circuit(&rt, "slowpoke"), CircuitState::Open);
        // The timed-out calls' messages are still queued and are processed on reactivation.
        assert_eq!(rt.kernel_metrics("slowpoke").unwrap().input_queue_depth, 2);
        rt.reactivate("slowpoke").await.unwrap();
        wait_until("both processed", || rt.kernel_metrics("slowpoke").unwrap().answers_abandoned == 2);
    });
}

#[test]
fn execute_counts_the_callers_outcomes() {
    let rt = runtime(BackendChoice::Cpu, Some(breaker(2)));
    pollster::block_on(async {
        start(&rt, flaky("guarded")).await;
        let circuit = rt.circuit_breaker("guarded").unwrap();
        assert_eq!(circuit.kernel_id(), "guarded");
        let failing = || async { Err::<(), _>(Error::InvalidArgument("the caller's own failure".into())) };
        for _ in 0..2 {
            assert_eq!(circuit.execute(failing).await.unwrap_err().kind(), ErrorKind::InvalidArgument);
        }
        assert_eq!(circuit.state().unwrap(), CircuitState::Open);
        wait_until("half-open", || circuit.state().unwrap() == CircuitState::HalfOpen);
        let answer = circuit.execute(|| rt.call_pod::<i32, i32>("guarded", &21, LONG)).await.unwrap();
        assert_eq!((answer, circuit.state().unwrap()), (42, CircuitState::Closed));
        assert_eq!(rt.circuit_breaker("nobody").unwrap_err().kind(), ErrorKind::KernelNotFound);
        // Its kernel removed and launched again under the id: this breaker reaches none of it.
        rt.terminate("guarded", LONG).await.unwrap();
        rt.remove("guarded").unwrap();
        start(&rt, flaky("guarded")).await;
        assert_eq!(circuit.state().unwrap_err().kind(), ErrorKind::KernelNotFound);
        assert_eq!(circuit.execute(failing).await.unwrap_err().kind(), ErrorKind::KernelNotFound);
        let fresh = rt.circuit_breaker("guarded").unwrap();
        assert_eq!((fresh.state().unwrap(), fresh.status().unwrap().failures), (CircuitState::Closed, 0));
    });
}

/// Two protected operations racing a half-open circuit: each passes the circuit's check, then
/// yields before its call, so the second one's call finds the probe taken and is refused. That
/// refusal is not the kernel's failure: the probe's answer closes the circuit, as if the second
/// operation had never run.
#[test]
fn an_operation_turned_away_by_a_taken_probe_leaves_the_probe_to_close_the_circuit() {
    let rt = runtime(BackendChoice::Cpu, Some(breaker(1)));
    pollster::block_on(async {
        start(&rt, flaky("guarded")).await;
        let circuit = rt.circuit_breaker("guarded").unwrap();
        let failing = || async { Err::<(), _>(Error::InvalidArgument("the caller's own failure".into())) };
        circuit.execute(failing).await.unwrap_err();
        wait_until("half-open", || circuit.state().unwrap() == CircuitState::HalfOpen);
        let call = |value: i32| {
            let rt = rt.clone();
            move || async move {
                let mut yielded = false;
                std::future::poll_fn(|cx| match std::mem::replace(&mut yielded, true) {
                    true => std::task::Poll::Ready(()),
                    false => {
                        cx.waker().wake_by_ref();
                        std::task::Poll::Pending
                    }
                })
                .await;
                rt.call_pod::<i32, i32>("guarded", &value, LONG).await
            }
        };
        let (probe, second) = futures_util::join!(circuit.execute(call(21)), circuit.execute(call(1)));
        assert_eq!(probe.unwrap(), 42);
        assert_eq!(second.unwrap_err().kind(), ErrorKind::CircuitOpen);
        let status = circuit.status().unwrap();
        assert_eq!((status.state, status.failures, status.opened), (CircuitState::Closed, 0, 1));
        // A full queue turns an operation away too: no failure of the kernel's either.
        rt.deactivate("guarded").await.unwrap();
        rt.send_batch("guarded", &[1i32; 16], LONG).await.unwrap();
        let full = circuit.execute(|| rt.send_pod("guarded", &1i32, Some(Duration::ZERO))).await.unwrap_err();
        assert_eq!((full.kind(), circuit.status().unwrap().failures), (ErrorKind::QueueFull, 0));
    });
}

/// A receive that times out on a kernel busy answering calls (its answers go to them) is no
/// failure of the kernel: it made progress all the while. Nor is a poll that waited for nothing.
/// One on a kernel that has input and makes no progress (its handler held) is.
#[test]
fn a_receive_timing_out_beside_a_busy_kernel_is_no_failure_and_beside_a_stuck_one_is() {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    let rt = runtime(BackendChoice::Cpu, Some(breaker(1)));
    let held = Arc::new(AtomicBool::new(false));
    let gate = held.clone();
    let busy = KernelDefinition::new("busy", doubler_request(), doubler_response(), "").with_host_handler(
        move |input: &[u8], output: &mut [u8], _: &mut [u32]| -> HostOutcome {
            while gate.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(2));
            let value: i32 = bytemuck::pod_read_unaligned(input);
            output.copy_from_slice(&(value * 2).to_le_bytes());
            Ok(true)
        },
    );
    pollster::block_on(start(&rt, busy));
    // Eight callers keep its input queue from emptying: its answers all go to them.
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let (rt, stop) = (rt.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    assert_eq!(pollster::block_on(rt.call_pod::<i32, i32>("busy", &3, LONG)).unwrap(), 6);
                }
            })
        })
        .collect();
    let receive = |wait: Duration| pollster::block_on(rt.receive_pod::<i32>("busy", Some(wait))).unwrap_err().kind();
    // A second: the handler answers every 2 ms, so only a machine that stalls the tick loop for
    // that long could make it look stuck.
    assert_eq!(receive(Duration::from_secs(1)), ErrorKind::Timeout);
    assert_eq!(receive(Duration::ZERO), ErrorKind::Timeout);
    assert_eq!(circuit(&rt, "busy"), CircuitState::Closed, "busy answering calls, not stuck");
    // Held: input and no progress for as long as the receive waits. A message the handler had
    // begun may still end its tick's batch and deliver: the receive waits once that is done
    // (nothing processed for 50 ms), so its whole wait sees no progress.
    held.store(true, Ordering::Relaxed);
    let processed = || rt.kernel_metrics("busy").unwrap().messages_processed;
    loop {
        let before = processed();
        std::thread::sleep(Duration::from_millis(50));
        if processed() == before {
            break;
        }
    }
    assert_eq!(receive(Duration::from_millis(300)), ErrorKind::Timeout);
    assert_eq!(circuit(&rt, "busy"), CircuitState::Open, "stuck");
    // Every caller waits in a call it made before the circuit opened: stopped first, each ends
    // with that call's answer instead of calling into the open circuit.
    stop.store(true, Ordering::Relaxed);
    held.store(false, Ordering::Relaxed);
    for caller in callers {
        caller.join().unwrap();
    }
}

/// An open time longer than a `Duration` can say after the clock's milliseconds (the
/// largest) refuses with that as its wait, rather than panicking in every send that checks it.
#[test]
fn a_circuit_open_for_the_longest_duration_refuses_and_says_so() {
    let rt = runtime(BackendChoice::Cpu, Some(breaker(1).with_open_duration(Duration::MAX)));
    pollster::block_on(async {
        start(&rt, flaky("guarded")).await;
        let circuit = rt.circuit_breaker("guarded").unwrap();
        let failing = || async { Err::<(), _>(Error::InvalidArgument("the caller's own failure".into())) };
        assert_eq!(circuit.execute(failing).await.unwrap_err().kind(), ErrorKind::InvalidArgument);
        match rt.send_pod("guarded", &1i32, LONG).await.unwrap_err() {
            Error::CircuitOpen { retry_after, .. } => assert_eq!(retry_after, Duration::MAX),
            other => panic!("not refused by the open circuit: {other}"),
        }
        let status = circuit.status().unwrap();
        assert_eq!((status.state, status.retry_after), (CircuitState::Open, Some(Duration::MAX)));
    });
}

#[test]
fn a_lost_device_opens_the_circuit_of_its_kernels() {
    let rt = runtime(BackendChoice::Auto, Some(breaker(1)));
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default().with_queue_capacity(16)).await.unwrap();
        rt.activate("doubler").await.unwrap();
        assert_eq!(rt.call_pod::<i32, i32>("doubler", &1, LONG).await.unwrap(), 2);
        rt.destroy_device().unwrap();
        wait_until("the loss", || rt.state("doubler").unwrap() == KernelState::Failed);
        assert_eq!(circuit(&rt, "doubler"), CircuitState::Open);
        assert_eq!(rt.send_pod("doubler", &2i32, LONG).await.unwrap_err().kind(), ErrorKind::CircuitOpen);
        rt.recover().await.unwrap();
        wait_until("half-open", || circuit(&rt, "doubler") == CircuitState::HalfOpen);
        assert_eq!(rt.call_pod::<i32, i32>("doubler", &3, LONG).await.unwrap(), 6);
        assert_eq!(circuit(&rt, "doubler"), CircuitState::Closed);
        assert_eq!(rt.kernel_metrics("doubler").unwrap().messages_received, 2);
    });
}

#[test]
fn a_breaker_that_could_never_open_or_close_is_refused() {
    let named = [
        "failure_threshold (circuitBreaker.failureThreshold) must be at least 1",
        "half_open_probes (circuitBreaker.halfOpenProbes) must be at least 1",
        // A window of no time holds no failure: the circuit would never open.
        "window (circuitBreaker.windowMs) must be more than 0 ms",
    ];
    let configs = [breaker(0), breaker(1).with_half_open_probes(0), breaker(1).with_window(Duration::ZERO)];
    for (config, name) in configs.into_iter().zip(named) {
        let e = pollster::block_on(Runtime::new(
            RuntimeOptions::default().with_backend(BackendChoice::Cpu).with_circuit_breaker(config),
        ))
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OutOfRange, "{e}");
        assert_eq!(e.to_string(), format!("out of range: {name}"), "named as Rust writes it");
    }
    // The defaults are documented: five failures in a minute, thirty seconds open, one probe.
    let d = CircuitBreakerConfig::default();
    assert_eq!(
        (d.failure_threshold, d.window, d.open_duration, d.half_open_probes),
        (5, Duration::from_secs(60), Duration::from_secs(30), 1)
    );
}

/// Handler errors are messages processed that failed: ten failing messages are 10 of 10
/// operations in `health`, not 10 of 20. With breakers off, failed protected operations count
/// there as well. A scrape reports the rates since the previous scrape and `health` since the
/// previous check: neither empties the other's window.
#[test]
fn health_counts_each_failure_once_and_scrapes_keep_their_own_window() {
    let rt = runtime(BackendChoice::Cpu, None);
    let scraped_unhealthy = |rt: &Runtime| rt.metrics_text().contains("ringkernel_health{status=\"unhealthy\"} 1");
    pollster::block_on(async {
        start(&rt, flaky("flaky")).await;
        let failing: Vec<i32> = (1..=10).map(|v| -v).collect();
        assert_eq!(rt.send_batch("flaky", &failing, LONG).await.unwrap(), 10);
        wait_until("ten handler errors", || rt.kernel_metrics("flaky").unwrap().errors == 10);
        let ten_of_ten =
            HealthStatus::Unhealthy("kernel 'flaky': 10 of 10 operations failed since the last check".into());
        assert!(scraped_unhealthy(&rt), "{}", rt.metrics_text());
        assert_eq!(rt.health().status, ten_of_ten, "the scrape left health's window alone");
        assert_eq!(rt.health().status, HealthStatus::Healthy, "nothing failed since the last check");

        assert_eq!(rt.send_batch("flaky", &failing, LONG).await.unwrap(), 10);
        wait_until("ten more", || rt.kernel_metrics("flaky").unwrap().errors == 20);
        assert_eq!(rt.health().status, ten_of_ten);
        assert!(scraped_unhealthy(&rt), "the check left the scrape's window alone: {}", rt.metrics_text());
        assert!(!scraped_unhealthy(&rt), "nothing failed since the last scrape");

        // Two answered messages and two failed protected operations: 2 of 4.
        assert_eq!(rt.call_pod::<i32, i32>("flaky", &1, LONG).await.unwrap(), 2);
        assert_eq!(rt.call_pod::<i32, i32>("flaky", &2, LONG).await.unwrap(), 4);
        let circuit = rt.circuit_breaker("flaky").unwrap();
        for _ in 0..2 {
            let failed = circuit.execute(|| async { Err::<(), _>(Error::InvalidArgument("no".into())) }).await;
            assert!(failed.is_err());
        }
        let status = rt.health().status;
        assert_eq!(
            status,
            HealthStatus::Unhealthy("kernel 'flaky': 2 of 4 operations failed since the last check".into())
        );
    });
}

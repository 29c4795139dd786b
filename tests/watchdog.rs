//! The kernel watchdog natively: a kernel whose answers have nowhere to go (its output queue
//! full, nobody receiving) has input and makes no progress, and is found stale; a handler that
//! runs long per message under `max_batch` makes progress every tick and is not. The actions:
//! report, deactivate (nothing lost), and lose and recover the device (nothing lost) of a
//! kernel starved there, but not of one that waits for a receiver.
#![cfg(not(target_arch = "wasm32"))]

#[allow(unused_imports)]
mod common;

use std::time::{Duration, Instant};

use common::wait_until;
use ringkernel_web::kernel::{self, doubler_request, doubler_response, host};
use ringkernel_web::{
    BackendChoice, CircuitBreakerConfig, CircuitState, KernelDefinition, KernelState, LaunchOptions, Runtime,
    RuntimeOptions, WatchdogAction, WatchdogConfig,
};

/// The watchdog's timeout here: eight times the slow kernel's 60 ms per message, so a loaded
/// machine's scheduling delays between its ticks cannot pass for a stall (300 ms, five times,
/// did once while two builds shared the machine's two cores).
const HEARTBEAT: Duration = Duration::from_millis(500);
const LONG: Option<Duration> = Some(Duration::from_secs(10));

fn runtime(backend: BackendChoice, action: WatchdogAction) -> Runtime {
    let watchdog = WatchdogConfig::default().with_heartbeat_timeout(HEARTBEAT).with_action(action);
    let options = RuntimeOptions::default().with_backend(backend).with_watchdog(watchdog);
    pollster::block_on(Runtime::new(options)).unwrap_or_else(|e| panic!("{backend:?}: {e}"))
}

/// A doubler whose output queue holds 2 answers: sent 6 messages and never received from, it
/// answers 2 and then waits with 4 (the output queue cannot take more).
async fn stuck(rt: &Runtime, id: &str) {
    let options = LaunchOptions::default().with_input_queue_capacity(16).with_output_queue_capacity(2);
    rt.launch_as("doubler", id, options).await.unwrap();
    rt.activate(id).await.unwrap();
}

fn stale_ids(rt: &Runtime) -> Vec<String> {
    pollster::block_on(rt.kernel_watchdog().scan_stale_kernels()).unwrap().into_iter().map(|k| k.kernel_id).collect()
}

/// Receives every answer of `id` until `count` have come, checking they are 2·1 … 2·count.
async fn all_answers_in_order(rt: &Runtime, id: &str, count: i32) {
    for value in 1..=count {
        assert_eq!(rt.receive_pod::<i32>(id, LONG).await.unwrap(), value * 2, "{id}: answer {value}");
    }
}

#[test]
fn a_stalled_kernel_is_stale_and_a_slow_one_is_not() {
    kernel::register_or_replace(
        KernelDefinition::new("slow", doubler_request(), doubler_response(), "").with_host_handler(host::typed(
            |v: &i32, _: &mut [u32]| {
                std::thread::sleep(Duration::from_millis(60));
                Some(v * 2)
            },
        )),
    );
    let rt = runtime(BackendChoice::Cpu, WatchdogAction::Report);
    pollster::block_on(async {
        stuck(&rt, "stuck").await;
        rt.launch("slow", LaunchOptions::default().with_queue_capacity(64).with_max_batch(1)).await.unwrap();
        rt.activate("slow").await.unwrap();
        // Idle past the timeout: waiting for work is not a stall, and work that arrives starts
        // the clock afresh.
        std::thread::sleep(HEARTBEAT + Duration::from_millis(100));
        assert!(stale_ids(&rt).is_empty());
        let messages: Vec<i32> = (1..=6).collect();
        rt.send_batch("stuck", &messages, LONG).await.unwrap();
        let slow: Vec<i32> = (1..=20).collect();
        rt.send_batch("slow", &slow, LONG).await.unwrap();
        assert!(stale_ids(&rt).is_empty(), "nothing is late yet");
        wait_until("two answers", || rt.kernel_metrics("stuck").unwrap().output_queue_depth == 2);

        // The slow kernel answers one 60 ms message per tick (1.2 s for all, longer than the
        // timeout): never stale.
        let started = Instant::now();
        let mut found_stuck = None;
        while rt.kernel_metrics("slow").unwrap().messages_processed < 20 {
            let stale = pollster::block_on(rt.kernel_watchdog().scan_stale_kernels()).unwrap();
            assert!(stale.iter().all(|k| k.kernel_id != "slow"), "a slow kernel that progresses is not stale");
            if let Some(record) = stale.into_iter().find(|k| k.kernel_id == "stuck") {
                found_stuck.get_or_insert((record, started.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        wait_until("the stuck kernel to be found", || stale_ids(&rt) == ["stuck"]);
        let record = pollster::block_on(rt.kernel_watchdog().scan_stale_kernels()).unwrap().remove(0);
        assert_eq!((record.input_depth, record.action), (4, WatchdogAction::Report));
        assert!(record.since_progress >= HEARTBEAT, "{record:?}");
        if let Some((early, _)) = found_stuck {
            assert!(early.since_progress >= HEARTBEAT);
        }
        let t = rt.kernel_metrics("stuck").unwrap();
        assert!(t.stale && !rt.kernel_metrics("slow").unwrap().stale);
        let text = rt.metrics_text();
        assert!(text.contains("ringkernel_kernel_stale{kernel=\"stuck\"} 1"), "{text}");
        assert!(text.contains("ringkernel_kernel_stale{kernel=\"slow\"} 0"));
        assert!(text.contains("ringkernel_stale_kernels 1"));
        assert_eq!(rt.stale_kernel_ids(), ["stuck"]);

        // Reported only: receiving lets it progress, and it is no longer stale.
        assert_eq!(rt.state("stuck").unwrap(), KernelState::Active);
        all_answers_in_order(&rt, "stuck", 6).await;
        assert!(stale_ids(&rt).is_empty());

        // A longer timeout, set at run time, forgives the same stall.
        let watchdog = rt.kernel_watchdog();
        watchdog.set_heartbeat_timeout(Duration::from_secs(3600)).unwrap();
        assert_eq!(
            (watchdog.heartbeat_timeout(), watchdog.action()),
            (Duration::from_secs(3600), WatchdogAction::Report)
        );
        rt.send_batch("stuck", &messages, LONG).await.unwrap();
        std::thread::sleep(HEARTBEAT + Duration::from_millis(100));
        assert!(stale_ids(&rt).is_empty());
    });
}

#[test]
fn deactivate_takes_a_stale_kernel_out_and_loses_nothing() {
    for backend in [BackendChoice::Cpu, BackendChoice::Auto] {
        let rt = runtime(backend, WatchdogAction::Deactivate);
        pollster::block_on(async {
            stuck(&rt, "stuck").await;
            rt.send_batch("stuck", &(1..=6).collect::<Vec<i32>>(), LONG).await.unwrap();
            std::thread::sleep(HEARTBEAT + Duration::from_millis(100));
            let stale = rt.kernel_watchdog().scan_stale_kernels().await.unwrap();
            assert_eq!(stale.len(), 1, "{backend:?}");
            assert_eq!(stale[0].action, WatchdogAction::Deactivate);
            assert_eq!(rt.state("stuck").unwrap(), KernelState::Deactivated);
            // Deactivated kernels are not scanned; reactivated, it carries on in order.
            assert!(stale_ids(&rt).is_empty());
            rt.reactivate("stuck").await.unwrap();
            all_answers_in_order(&rt, "stuck", 6).await;
        });
    }
}

#[test]
fn recover_device_loses_and_recovers_the_device_and_loses_nothing() {
    // A kernel starved on its device: a bounded tick (1 message) always full of a busier
    // kernel's messages of higher priority. It has input and makes no progress: stale, and not
    // for want of a receiver, so the watchdog replaces its device.
    // The replacement counts against the stale kernel's circuit breaker only: the others on
    // the device lose nothing and did not fail.
    let watchdog =
        WatchdogConfig::default().with_heartbeat_timeout(HEARTBEAT).with_action(WatchdogAction::RecoverDevice);
    let breaker = CircuitBreakerConfig::default().with_failure_threshold(1).with_open_duration(Duration::from_secs(60));
    let options =
        RuntimeOptions::default().with_watchdog(watchdog).with_max_messages_per_tick(1).with_circuit_breaker(breaker);
    let rt = pollster::block_on(Runtime::new(options)).unwrap();
    const BUSY: i32 = 20_000;
    pollster::block_on(async {
        let busy = LaunchOptions::default().with_queue_capacity(BUSY as usize).with_priority(1).with_auto_activate();
        rt.launch_as("doubler", "busy", busy).await.unwrap();
        rt.launch_as("doubler", "starved", LaunchOptions::default().with_auto_activate()).await.unwrap();
        rt.launch_as("doubler", "bystander", LaunchOptions::default().with_auto_activate()).await.unwrap();
        assert_eq!(rt.call_pod::<i32, i32>("bystander", &1, LONG).await.unwrap(), 2);
        rt.send_batch("busy", &(1..=BUSY).collect::<Vec<i32>>(), LONG).await.unwrap();
        rt.send_batch("starved", &(1..=6).collect::<Vec<i32>>(), LONG).await.unwrap();
        std::thread::sleep(HEARTBEAT + Duration::from_millis(200));
        let stale = rt.kernel_watchdog().scan_stale_kernels().await.unwrap();
        let found: Vec<_> = stale.iter().map(|k| (k.kernel_id.as_str(), k.action)).collect();
        assert_eq!(found, [("starved", WatchdogAction::RecoverDevice)]);
        let device = rt.summary().device;
        assert_eq!((device.losses, device.recoveries, device.lost), (1, 1, None));
        assert_eq!(rt.state("starved").unwrap(), KernelState::Active);
        let circuit = |id: &str| rt.circuit_breaker(id).unwrap().state().unwrap();
        let circuits = ["busy", "starved", "bystander"].map(circuit);
        assert_eq!(circuits, [CircuitState::Closed, CircuitState::Open, CircuitState::Closed]);
        // The bystander's call waits behind the busy kernel's 20,000 messages, one a tick, at
        // its higher priority: taken after them, so that no timeout bounds how fast a loaded
        // machine ticks 20,000 times (10 s read 9.99 s with nothing else running).
        all_answers_in_order(&rt, "busy", BUSY).await;
        assert_eq!(rt.call_pod::<i32, i32>("bystander", &5, LONG).await.unwrap(), 10);
        all_answers_in_order(&rt, "starved", 6).await;
    });
}

#[test]
fn recover_device_leaves_a_kernel_waiting_for_a_receiver_to_the_report() {
    // Its answers wait for a receiver: a new device would change nothing.
    let rt = runtime(BackendChoice::Auto, WatchdogAction::RecoverDevice);
    pollster::block_on(async {
        stuck(&rt, "stuck").await;
        rt.send_batch("stuck", &(1..=6).collect::<Vec<i32>>(), LONG).await.unwrap();
        std::thread::sleep(HEARTBEAT + Duration::from_millis(100));
        let stale = rt.kernel_watchdog().scan_stale_kernels().await.unwrap();
        assert_eq!(stale.iter().map(|k| k.action).collect::<Vec<_>>(), [WatchdogAction::Report]);
        assert_eq!(rt.summary().device.losses, 0);
        all_answers_in_order(&rt, "stuck", 6).await;

        // Nor for a kernel held by its pipeline's last stage, whose answers wait for a
        // receiver: the device was replaced for it, with the receiver still missing.
        let queues = LaunchOptions::default().with_input_queue_capacity(16).with_output_queue_capacity(2);
        rt.launch_as("doubler", "head", queues.clone().with_auto_activate()).await.unwrap();
        rt.launch_as("echo", "tail", queues.with_auto_activate()).await.unwrap();
        rt.connect("head", "tail").await.unwrap();
        rt.send_batch("head", &(1..=12).collect::<Vec<i32>>(), LONG).await.unwrap();
        std::thread::sleep(HEARTBEAT + Duration::from_millis(100));
        let stale = rt.kernel_watchdog().scan_stale_kernels().await.unwrap();
        assert!(stale.iter().any(|k| k.kernel_id == "head"), "{stale:?}");
        assert!(stale.iter().all(|k| k.action == WatchdogAction::Report), "{stale:?}");
        assert_eq!(rt.summary().device.losses, 0);
        all_answers_in_order(&rt, "tail", 12).await;
    });
    // The cpu backend has no device to lose: the stale kernel is reported.
    let rt = runtime(BackendChoice::Cpu, WatchdogAction::RecoverDevice);
    pollster::block_on(async {
        stuck(&rt, "stuck").await;
        rt.send_batch("stuck", &(1..=6).collect::<Vec<i32>>(), LONG).await.unwrap();
        std::thread::sleep(HEARTBEAT + Duration::from_millis(100));
        let stale = rt.kernel_watchdog().scan_stale_kernels().await.unwrap();
        assert_eq!(stale.iter().map(|k| k.action).collect::<Vec<_>>(), [WatchdogAction::Report]);
        assert_eq!(rt.summary().device.losses, 0);
    });
}

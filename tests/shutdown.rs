//! The runtime's own lifecycle (`running → draining → stopped`), on lavapipe and on the cpu
//! backend: `drain` refuses new launches, sends and calls by name while what was queued or in
//! flight completes and stays receivable, and `complete_shutdown`'s report accounts for every
//! message, with the same numbers the telemetry gave.
#![cfg(not(target_arch = "wasm32"))]
#[allow(unused_imports)]
mod common;

use std::time::Duration;

use common::runtime_on;
use futures_util::future::join;
use ringkernel_web::kernel::{doubler_request, doubler_response, host};
use ringkernel_web::{
    BackendChoice, Error, ErrorKind, KernelDefinition, KernelState, LaunchOptions, LifecycleState, Runtime,
};

const WAIT: Option<Duration> = Some(Duration::from_secs(30));
const NOW: Option<Duration> = Some(Duration::ZERO);

fn queue(size: usize) -> LaunchOptions {
    LaunchOptions::default().with_queue_capacity(size)
}

/// Takes `n` answers of `id`, as i32s.
async fn take(rt: &Runtime, id: &str, n: usize) -> Vec<i32> {
    let mut out = Vec::new();
    while out.len() < n {
        out.extend(rt.receive_batch::<i32>(id, n - out.len(), WAIT).await.unwrap());
    }
    out
}

fn drain_then_report(backend: BackendChoice) {
    let rt = runtime_on(backend);
    pollster::block_on(async {
        assert_eq!(rt.lifecycle_state(), LifecycleState::Running);
        rt.start().expect("a running runtime starts: nothing to do");
        rt.launch("doubler", queue(256)).await.unwrap();
        rt.activate("doubler").await.unwrap();
        // Launched and never activated: its messages wait in its queue until the drain.
        rt.launch("echo", queue(16)).await.unwrap();
        for v in 0..10 {
            rt.send_pod("echo", &v, NOW).await.unwrap();
        }
        let values: Vec<i32> = (0..100).collect();
        rt.send_batch("doubler", &values, NOW).await.unwrap();
        let mut doubled = take(&rt, "doubler", 40).await;

        let refusals = async {
            // The drain below began first (join polls it first): new work is refused by name.
            let kinds = vec![
                rt.send_pod("doubler", &1, NOW).await.unwrap_err(),
                rt.send_batch("doubler", &[1, 2], NOW).await.unwrap_err().error,
                rt.call_pod::<i32, i32>("doubler", &1, NOW).await.unwrap_err(),
                rt.launch("histogram", queue(16)).await.map(drop).unwrap_err(),
                // An id nothing is registered under: refused as new work, not as unknown.
                rt.launch("no-such-kernel", queue(16)).await.map(drop).unwrap_err(),
                rt.launch_as("no-such-kernel", "copy", queue(16)).await.map(drop).unwrap_err(),
                rt.start().unwrap_err(),
            ];
            let state = rt.lifecycle_state();
            // Answers stay receivable while it drains.
            let more = take(&rt, "doubler", 30).await;
            (kinds, state, more)
        };
        let (drained, (refused, state_while_draining, more)) = join(rt.drain(Duration::from_secs(30)), refusals).await;
        drained.expect("everything queued is processed within the drain's timeout");
        assert_eq!(state_while_draining, LifecycleState::Draining);
        for error in &refused {
            assert!(matches!(error, Error::Draining(_)), "refused while draining: {error:?}");
            assert_eq!(error.kind(), ErrorKind::Draining);
        }
        assert!(refused[0].to_string().contains("draining"), "{}", refused[0]);
        doubled.extend(more);
        assert!(matches!(rt.state("histogram"), Err(Error::KernelNotFound { .. })), "the refused launch left nothing");
        for id in ["doubler", "echo"] {
            assert_eq!(rt.state(id).unwrap(), KernelState::Terminated, "{id}");
        }

        // Drained: every accepted message was processed. Leave 30 doubler and 5 echo answers
        // unreceived; the report must count them.
        let echoed = take(&rt, "echo", 5).await;
        assert_eq!(echoed, (0..5).collect::<Vec<_>>());
        assert_eq!(doubled, values[..70].iter().map(|v| v * 2).collect::<Vec<_>>());
        let summary = rt.summary();
        assert_eq!(summary.total_messages, 110);

        let report = rt.complete_shutdown().await.unwrap();
        assert_eq!(rt.lifecycle_state(), LifecycleState::Stopped);
        assert_eq!((report.kernels_launched, report.kernels_terminated), (2, 2));
        assert_eq!(report.messages_processed, summary.total_messages);
        assert_eq!(report.messages_unprocessed, 0);
        assert_eq!(report.answers_never_received, 30 + 5);
        assert_eq!((report.device_losses, report.recoveries, report.migrated_kernels), (0, 0, 0));
        assert!(report.total_uptime_ms >= summary.uptime_ms, "{report:?} vs {summary:?}");
        // Stopped, it reads the report's uptime at every read, as its kernels stopped theirs.
        assert_eq!(rt.summary().uptime_ms, report.total_uptime_ms);
        let scraped = rt.metrics_text();
        let seconds = scraped.lines().find_map(|line| line.strip_prefix("ringkernel_uptime_seconds "));
        assert_eq!(seconds.map(|s| s.parse::<f64>().unwrap()), Some(report.total_uptime_ms / 1000.0), "{scraped}");

        // Stopped: every call is refused; shutting down again hands back the same report.
        assert!(matches!(rt.send_pod("doubler", &1, NOW).await, Err(Error::Disposed)));
        assert!(matches!(rt.receive_batch::<i32>("doubler", 1, NOW).await, Err(Error::Disposed)));
        assert!(matches!(rt.drain(Duration::ZERO).await, Err(Error::Disposed)));
        assert!(matches!(rt.start(), Err(Error::Disposed)));
        // Launches too, of a registered id or of one nothing is registered under.
        for id in ["doubler", "no-such-kernel"] {
            let launched = rt.launch(id, queue(16)).await.map(drop);
            assert!(matches!(launched, Err(Error::Disposed)), "launch {id}: {launched:?}");
        }
        assert_eq!(rt.complete_shutdown().await.unwrap(), report);
        assert_eq!(rt.dispose().await.unwrap(), report);
    });
}

#[test]
fn drain_refuses_new_work_finishes_old_and_the_report_accounts_for_every_message_on_the_gpu() {
    drain_then_report(BackendChoice::Auto);
}

#[test]
fn drain_refuses_new_work_finishes_old_and_the_report_accounts_for_every_message_on_the_cpu() {
    drain_then_report(BackendChoice::Cpu);
}

/// `dispose` is drain + complete_shutdown; kernels removed before it are still in the report,
/// with the answers nobody took from them.
/// A stopped runtime keeps of its kernels what its reads show: a handler, and what it
/// captured, goes at the shutdown, not when the runtime itself is dropped.
#[test]
fn dispose_lets_go_of_the_kernels_handlers() {
    let rt = runtime_on(BackendChoice::Cpu);
    let captured = std::sync::Arc::new(7);
    let held = captured.clone();
    let definition = KernelDefinition::new("held", doubler_request(), doubler_response(), "")
        .with_host_handler(host::typed(move |v: &i32, _: &mut [u32]| Some(v + *held)));
    pollster::block_on(async {
        rt.launch_definition(definition, queue(16).with_auto_activate()).await.unwrap();
        assert_eq!(rt.call_pod::<i32, i32>("held", &1, WAIT).await.unwrap(), 8);
        assert!(std::sync::Arc::strong_count(&captured) > 1);
        rt.dispose().await.unwrap();
    });
    // The tick loop's thread, stopping, may hold the kernel's handler for its last pass.
    for _ in 0..200 {
        if std::sync::Arc::strong_count(&captured) == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(std::sync::Arc::strong_count(&captured), 1, "the runtime, still held, let go of the handler");
    assert_eq!(rt.telemetry("held").unwrap().unwrap().messages_processed, 1, "its reads still answer");
}

/// A shutdown lets go of every kernel's state, so it reads none back: a kernel whose
/// checkpoint is behind its state (a checkpoint interval) is not caught up on the way out, as
/// a terminate of its own would (a 64 MiB state took a shutdown 88 to 330 ms on lavapipe).
#[test]
fn dispose_reads_no_state_back_that_it_lets_go_of() {
    use ringkernel_web::kernel::StateElement;
    for dispose in [true, false] {
        let rt = runtime_on(BackendChoice::Vulkan);
        let wgsl = "fn handle(msg: Request) -> Response { atomicAdd(&state[0], 1); return Response(msg.value); }";
        let kept = KernelDefinition::new("kept", doubler_request(), doubler_response(), wgsl)
            .with_state(StateElement::AtomicI32, 1 << 16);
        let from_device = || rt.telemetry("kept").unwrap().unwrap().bytes_from_device;
        pollster::block_on(async {
            let options = queue(16).with_auto_activate().with_checkpoint_interval(Duration::MAX);
            rt.launch_definition(kept, options).await.unwrap();
            for value in [1, 2, 3] {
                assert_eq!(rt.call_pod::<i32, i32>("kept", &value, WAIT).await.unwrap(), value);
            }
            let before = from_device();
            assert!(before < 1 << 18, "its ticks copied no state: {before} bytes");
            let report = if dispose { rt.dispose().await } else { rt.complete_shutdown().await }.unwrap();
            assert_eq!((report.kernels_terminated, report.messages_processed), (1, 3));
            assert_eq!(from_device(), before, "dispose: {dispose}: the shutdown read none of the state back");
        });
    }
}

#[test]
fn dispose_reports_removed_kernels_too() {
    let rt = runtime_on(BackendChoice::Auto);
    pollster::block_on(async {
        rt.launch("doubler", queue(64)).await.unwrap();
        rt.activate("doubler").await.unwrap();
        rt.send_batch("doubler", &(0..10).collect::<Vec<i32>>(), NOW).await.unwrap();
        assert_eq!(take(&rt, "doubler", 7).await, (0..7).map(|v| v * 2).collect::<Vec<_>>());
        rt.terminate("doubler", WAIT).await.unwrap();
        assert_eq!(rt.remove("doubler").unwrap(), 3, "remove says how many answers it discarded");
        rt.launch("doubler", queue(64)).await.unwrap(); // the id again, never used
        let report = rt.dispose().await.unwrap();
        assert_eq!((report.kernels_launched, report.kernels_terminated), (2, 2));
        assert_eq!(report.messages_processed, 10);
        assert_eq!(report.answers_never_received, 3);
        assert_eq!(rt.lifecycle_state(), LifecycleState::Stopped);
    });
}

/// Receives waiting on other threads when `dispose` drains a kernel take the answers the drain
/// produced: none fails with `Disposed`, and the report counts none as never received.
#[test]
fn dispose_hands_drained_answers_to_receives_already_waiting() {
    for backend in [BackendChoice::Cpu, BackendChoice::Auto] {
        let rt = runtime_on(backend);
        pollster::block_on(async {
            rt.launch("doubler", queue(16)).await.unwrap(); // launched, not active: the drain runs them
            rt.send_batch("doubler", &[1i32, 2, 3], None).await.unwrap();
        });
        let receivers: Vec<_> = (0..3)
            .map(|_| {
                let rt = rt.clone();
                std::thread::spawn(move || pollster::block_on(rt.receive_pod::<i32>("doubler", None)))
            })
            .collect();
        // Every receiver waiting before the drain starts.
        std::thread::sleep(Duration::from_millis(100));
        let report = pollster::block_on(rt.dispose()).unwrap();
        let mut answers: Vec<i32> = receivers.into_iter().map(|r| r.join().unwrap().unwrap()).collect();
        answers.sort_unstable();
        assert_eq!(answers, [2, 4, 6], "{backend:?}");
        assert_eq!(report.answers_never_received, 0, "{backend:?}");
    }
}

/// A kernel still terminating when `dispose` (or `terminate_all`) begins is waited for, not
/// skipped: its messages are processed and counted, the terminate under way ends well, and a
/// second terminate joins it rather than being refused. (A drain that ends before the test sees
/// it is tried again, longer.)
#[test]
fn dispose_finishes_a_kernel_that_is_still_terminating() {
    for backend in [BackendChoice::Cpu, BackendChoice::Auto] {
        let caught = [1000, 4000, 16_000].into_iter().any(|n| {
            let rt = runtime_on(backend);
            pollster::block_on(async {
                rt.launch("doubler", queue(n).with_max_batch(1)).await.unwrap();
                rt.send_batch("doubler", &(0..n as i32).collect::<Vec<_>>(), None).await.unwrap();
            });
            let terminating = {
                let rt = rt.clone();
                std::thread::spawn(move || pollster::block_on(rt.terminate("doubler", None)))
            };
            while rt.state("doubler").unwrap() == KernelState::Launched {
                std::thread::yield_now();
            }
            if rt.state("doubler").unwrap() != KernelState::Terminating {
                terminating.join().unwrap().unwrap();
                return false;
            }
            let (joined, report) = pollster::block_on(join(rt.terminate("doubler", WAIT), rt.dispose()));
            terminating.join().unwrap().unwrap();
            joined.unwrap();
            let report = report.unwrap();
            assert_eq!(
                (report.kernels_terminated, report.messages_processed, report.messages_unprocessed),
                (1, n as u64, 0),
                "{backend:?}"
            );
            assert_eq!(report.answers_never_received, n as u64, "{backend:?}");
            true
        });
        assert!(caught, "{backend:?}: every drain ended before the test saw it");
    }
}

/// A launch still compiling when the shutdown begins does not start afterwards: it fails with
/// `Draining` or `Disposed`, and no kernel outlives the runtime. (The race is real: the launch
/// may also finish first, and is then drained and counted like any other.)
#[test]
fn a_launch_compiling_when_dispose_begins_leaves_no_kernel_behind() {
    let rt = runtime_on(BackendChoice::Auto);
    let launching = {
        let rt = rt.clone();
        std::thread::spawn(move || pollster::block_on(rt.launch("doubler", queue(16))).map(drop))
    };
    while rt.state("doubler").is_err() {
        std::thread::yield_now();
    }
    let report = pollster::block_on(rt.dispose()).unwrap();
    match launching.join().unwrap() {
        Ok(()) => assert_eq!((report.kernels_launched, report.kernels_terminated), (1, 1)),
        Err(error) => {
            assert!(matches!(error.kind(), ErrorKind::Draining | ErrorKind::Disposed), "{error}");
            assert_eq!(report.kernels_launched, 0);
            assert!(rt.list_kernels().is_empty(), "{:?}", rt.list_kernels());
        }
    }
}

/// A terminate out of time while a tick has the kernel's messages on the device waits for that
/// tick: those messages ran, so they are answered and counted processed, not unprocessed (their
/// answers were discarded while the kernel's state showed them run). Only messages never
/// dispatched count as unprocessed, and every message is one or the other. The histogram's bins
/// say which ran: 16 samples each.
#[test]
fn a_terminate_out_of_time_keeps_the_answers_of_messages_already_on_the_device() {
    for backend in [BackendChoice::Auto, BackendChoice::Cpu] {
        let rt = runtime_on(backend);
        pollster::block_on(async {
            for round in 0..40 {
                let id = format!("cut-{round}");
                rt.launch_as("histogram", &id, queue(64).with_auto_activate()).await.unwrap();
                let samples: Vec<[f32; 16]> =
                    (0..4).map(|m| std::array::from_fn(|i| (m * 16 + i) as f32 / 64.0)).collect();
                rt.send_batch(&id, &samples, WAIT).await.unwrap();
                if round % 2 == 1 {
                    // Let the tick take them first, some rounds.
                    std::thread::sleep(Duration::from_micros(300));
                }
                let unprocessed = match rt.terminate(&id, NOW).await {
                    Ok(()) => 0,
                    Err(Error::Timeout { unprocessed, .. }) => unprocessed,
                    Err(other) => panic!("{backend:?}: {other}"),
                };
                let mut answered = 0u64;
                while let Ok(Some(())) = rt.try_receive_with(&id, |_, _| ()) {
                    answered += 1;
                }
                let bins: Vec<u32> = rt.read_state_as(&id).await.unwrap();
                let ran = bins.iter().sum::<u32>() as u64 / 16;
                let processed = rt.kernel_metrics(&id).unwrap().messages_processed;
                assert_eq!(answered + unprocessed, 4, "{backend:?} round {round}: every message once");
                assert_eq!((ran, processed), (answered, answered), "{backend:?} round {round}: what ran was answered");
                rt.remove(&id).unwrap();
            }
        });
    }
}

/// When several kernels run out of time, `terminate_all` (and so a drain) says how many
/// messages they left unprocessed in all, with each kernel's own error, not only the first's.
/// Each kernel takes one message a dispatch, so a terminate of no time leaves most of its 2048
/// (all of them but a tick's, unless the terminating thread is held up for the ticks of all).
#[test]
fn several_kernels_out_of_time_are_reported_together() {
    for backend in [BackendChoice::Auto, BackendChoice::Cpu] {
        let rt = runtime_on(backend);
        pollster::block_on(async {
            for id in ["a", "b", "c"] {
                rt.launch_as("doubler", id, queue(2048).with_max_batch(1)).await.unwrap();
            }
            let values: Vec<i32> = (1..=2048).collect();
            for id in ["a", "b"] {
                rt.send_batch(id, &values, WAIT).await.unwrap();
            }
            let error = rt.terminate_all(NOW).await.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Timeout, "{backend:?}: {error}");
            let Error::SeveralKernels { errors, unprocessed, .. } = &error else { panic!("{backend:?}: {error}") };
            let each: Vec<(&str, u64)> = errors
                .iter()
                .map(|e| match e {
                    Error::Timeout { id, unprocessed, .. } if *unprocessed > 0 => (id.as_str(), *unprocessed),
                    other => panic!("{backend:?}: {other}"),
                })
                .collect();
            assert_eq!(each.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ["a", "b"], "{backend:?}: by id");
            assert_eq!(*unprocessed, each.iter().map(|(_, n)| n).sum::<u64>(), "{backend:?}: {error}");
            let messages = |n: u64| if n == 1 { "1 message".to_owned() } else { format!("{n} messages") };
            let (a, b) = (messages(each[0].1), messages(each[1].1));
            assert_eq!(
                error.to_string(),
                format!(
                    "2 kernels failed to terminate ({} left unprocessed in all): terminate on kernel 'a' timed out \
                     after 0 ms ({a} left unprocessed); terminate on kernel 'b' timed out after 0 ms ({b} left \
                     unprocessed)",
                    messages(*unprocessed)
                )
            );
            for (id, left) in each {
                let answers = take(&rt, id, 2048 - left as usize).await;
                assert_eq!(answers, values[..2048 - left as usize].iter().map(|v| v * 2).collect::<Vec<_>>());
                assert_eq!(rt.kernel_metrics(id).unwrap().unprocessed_at_termination, left, "{backend:?}");
            }
            let report = rt.complete_shutdown().await.unwrap();
            assert_eq!(report.messages_unprocessed, *unprocessed, "{backend:?}: the report agrees");
        });
    }
}

//! Device loss and recovery, natively on lavapipe: `destroy_device` loses the device the way a
//! driver reset would. Every kernel becomes `Failed`, waiting receives and calls fail with
//! `DeviceLost`, nothing queued or in flight is lost, and `recover` (or `auto_recover`)
//! relaunches the kernels with their state so every message is answered exactly once, in order.
//! Also: GPU buffers are accounted for across 1,000 launch/terminate cycles, and `max_batch`
//! bounds every dispatch.
#![cfg(not(target_arch = "wasm32"))]

use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::poll;
use ringkernel_web::kernel::{doubler_request, doubler_response};
use ringkernel_web::lifecycle::Action;
use ringkernel_web::{
    Error, ErrorKind, KernelDefinition, KernelState, LaunchOptions, Runtime, RuntimeOptions, StateElement,
};

fn runtime_with(options: RuntimeOptions) -> Runtime {
    pollster::block_on(Runtime::new(options))
        .unwrap_or_else(|e| panic!("these tests need a wgpu adapter (install mesa-vulkan-drivers for lavapipe): {e}"))
}

fn runtime() -> Runtime {
    runtime_with(RuntimeOptions::default())
}

fn queue(size: usize) -> LaunchOptions {
    LaunchOptions::default().with_queue_capacity(size)
}

/// Answers `3 * value + 1`, so the n-th answer names the message it belongs to.
fn sequencer(id: &str) -> KernelDefinition {
    KernelDefinition::new(
        id,
        doubler_request(),
        doubler_response(),
        "fn handle(msg: Request) -> Response { return Response(msg.value * 3 + 1); }",
    )
}

fn answer_to(seq: i32) -> i32 {
    seq * 3 + 1
}

/// Counts messages in `state[0]` and sums their values in `state[1]`: any message whose effect
/// were applied twice (or never) would show.
fn counter(id: &str) -> KernelDefinition {
    KernelDefinition::new(
        id,
        doubler_request(),
        doubler_response(),
        "fn handle(msg: Request) -> Response {
    atomicAdd(&state[0], 1);
    atomicAdd(&state[1], msg.value);
    return Response(msg.value);
}",
    )
    .with_state(StateElement::AtomicI32, 2)
}

fn is_device_lost<T: std::fmt::Debug>(result: &Result<T, Error>) -> bool {
    matches!(result, Err(Error::DeviceLost { .. }))
}

/// Polls until `id` is in `state` (the pump notices a lost device asynchronously).
fn wait_for_state(rt: &Runtime, id: &str, state: KernelState) {
    let start = Instant::now();
    while rt.state(id).unwrap() != state {
        assert!(start.elapsed() < Duration::from_secs(30), "{id} never became {state}: {:?}", rt.state(id));
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Receives from `id` until `count` answers came or the receive fails; returns them and the
/// error, if any.
async fn receive_up_to(rt: &Runtime, id: &str, count: usize) -> (Vec<i32>, Option<Error>) {
    let mut answers = Vec::new();
    while answers.len() < count {
        match rt.receive_batch::<i32>(id, count - answers.len(), Some(Duration::from_millis(30_000))).await {
            Ok(batch) => answers.extend(batch),
            Err(e) => return (answers, Some(e)),
        }
    }
    (answers, None)
}

/// A checkpoint interval: the state stays on the device between checkpoints (its ticks copy
/// back no state), reads and answers stay exact, and recovery after a lost device restarts
/// the kernel from its last checkpoint: with `Duration::MAX` none was taken, so from the zeroed
/// state it was launched with. A kernel on the default checkpoints every tick beside it.
#[test]
fn a_checkpoint_interval_keeps_the_state_on_the_device_and_recovery_restarts_from_the_last_checkpoint() {
    let rt = runtime();
    pollster::block_on(async {
        let with_state = |id: &str| counter(id).with_state(StateElement::AtomicI32, 1024);
        rt.launch_definition(with_state("every"), queue(64).with_auto_activate()).await.unwrap();
        let never = queue(64).with_auto_activate().with_checkpoint_interval(Duration::MAX);
        rt.launch_definition(with_state("never"), never).await.unwrap();
        for id in ["every", "never"] {
            for value in [5, 6, 7] {
                assert_eq!(rt.call_pod::<i32, i32>(id, &value, Some(Duration::from_secs(30))).await.unwrap(), value);
            }
            assert_eq!(rt.read_state_as::<i32>(id).await.unwrap()[..2], [3, 18], "{id}");
        }
        // Each read above copied the state back once (4 KiB); "every"'s three ticks did too.
        let from_device = |id: &str| rt.telemetry(id).unwrap().unwrap().bytes_from_device;
        let state_bytes = 4096;
        assert!(from_device("every") >= 4 * state_bytes, "{}", from_device("every"));
        assert!(from_device("never") < 2 * state_bytes, "its ticks copied no state: {}", from_device("never"));
        // A terminate reads such a kernel's final state back once: it survives a later loss.
        let ended = queue(64).with_auto_activate().with_checkpoint_interval(Duration::MAX);
        rt.launch_definition(with_state("ended"), ended).await.unwrap();
        for value in [5, 6, 7] {
            assert_eq!(rt.call_pod::<i32, i32>("ended", &value, Some(Duration::from_secs(30))).await.unwrap(), value);
        }
        rt.terminate("ended", Some(Duration::from_secs(30))).await.unwrap();
        // The terminate waits for that read within its own timeout; past it, the read goes on
        // without it.
        let no_time = queue(64).with_auto_activate().with_checkpoint_interval(Duration::MAX);
        rt.launch_definition(with_state("no time"), no_time).await.unwrap();
        for value in [5, 6, 7] {
            assert_eq!(rt.call_pod::<i32, i32>("no time", &value, Some(Duration::from_secs(30))).await.unwrap(), value);
        }
        let before = from_device("no time");
        rt.terminate("no time", Some(Duration::ZERO)).await.unwrap();
        let read_by = Instant::now() + Duration::from_secs(30);
        while from_device("no time") < before + state_bytes && Instant::now() < read_by {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(from_device("no time"), before + state_bytes, "its state was read back once");
        // One that drains after its terminate's caller went away copies its state with the
        // ticks of its drain.
        let never_active = queue(64).with_checkpoint_interval(Duration::MAX);
        rt.launch_definition(with_state("drained"), never_active).await.unwrap();
        rt.send_batch("drained", &[1, 2, 3, 4, 5], None).await.unwrap();
        let mut terminating = Box::pin(rt.terminate("drained", None));
        assert!(poll!(terminating.as_mut()).is_pending());
        drop(terminating);
        wait_for_state(&rt, "drained", KernelState::Terminated);

        rt.destroy_device().unwrap();
        for id in ["every", "never"] {
            wait_for_state(&rt, id, KernelState::Failed);
        }
        rt.recover().await.unwrap();
        assert_eq!(rt.read_state_as::<i32>("every").await.unwrap()[..2], [3, 18], "as of its last tick");
        assert_eq!(rt.read_state_as::<i32>("never").await.unwrap()[..2], [0, 0], "as launched: no checkpoint");
        assert_eq!(rt.read_state_as::<i32>("ended").await.unwrap()[..2], [3, 18], "as it ended");
        assert_eq!(
            rt.read_state_as::<i32>("no time").await.unwrap()[..2],
            [3, 18],
            "as it ended, read after its terminate"
        );
        assert_eq!(rt.read_state_as::<i32>("drained").await.unwrap()[..2], [5, 15], "as it drained");
        for id in ["every", "never"] {
            assert_eq!(rt.call_pod::<i32, i32>(id, &10, Some(Duration::from_secs(30))).await.unwrap(), 10);
        }
        assert_eq!(rt.read_state_as::<i32>("never").await.unwrap()[..2], [1, 10]);

        // An interval counts from the launch: a day's takes no checkpoint today, and one of 1 ms
        // takes one with a tick 2 ms after the launch.
        for (id, interval) in [("daily", Duration::from_secs(86_400)), ("often", Duration::from_millis(1))] {
            let options = queue(64).with_auto_activate().with_checkpoint_interval(interval);
            rt.launch_definition(with_state(id), options).await.unwrap();
            assert_eq!(rt.call_pod::<i32, i32>(id, &4, Some(Duration::from_secs(30))).await.unwrap(), 4);
            std::thread::sleep(Duration::from_millis(2));
            assert_eq!(rt.call_pod::<i32, i32>(id, &5, Some(Duration::from_secs(30))).await.unwrap(), 5);
        }
        rt.destroy_device().unwrap();
        wait_for_state(&rt, "daily", KernelState::Failed);
        rt.recover().await.unwrap();
        assert_eq!(rt.read_state_as::<i32>("daily").await.unwrap()[..2], [0, 0], "as launched");
        assert_eq!(rt.read_state_as::<i32>("often").await.unwrap()[..2], [2, 9], "as of its second tick");
    });
}

/// The whole story on an idle runtime: kernels in every live state fail together, each
/// refuses what it must with a named error, keeps what it holds, and comes back where it was.
#[test]
fn a_lost_device_fails_every_kernel_and_recover_brings_each_back_where_it_was() {
    let rt = runtime();
    pollster::block_on(async {
        for (id, state) in
            [("run", KernelState::Active), ("paused", KernelState::Deactivated), ("idle", KernelState::Launched)]
        {
            rt.launch_definition(sequencer(id), queue(256)).await.unwrap();
            if state != KernelState::Launched {
                rt.activate(id).await.unwrap();
            }
            if state == KernelState::Deactivated {
                rt.deactivate(id).await.unwrap();
            }
        }
        rt.launch_definition(counter("count"), queue(256)).await.unwrap();
        rt.activate("count").await.unwrap();

        // Before: answers flow, and some wait unreceived.
        let first: Vec<i32> = (0..100).collect();
        rt.send_batch("run", &first, None).await.unwrap();
        let (early, _) = receive_up_to(&rt, "run", 60).await;
        assert_eq!(early, first[..60].iter().map(|&s| answer_to(s)).collect::<Vec<_>>());
        rt.send_batch("count", &[5, 6, 7], None).await.unwrap();
        assert_eq!(receive_up_to(&rt, "count", 3).await.0, [5, 6, 7]);
        rt.send_batch("paused", &[1, 2, 3], None).await.unwrap();
        // A kernel that finished before the loss: its final state must stay readable.
        rt.launch_definition(counter("finished"), queue(64)).await.unwrap();
        rt.activate("finished").await.unwrap();
        rt.send_batch("finished", &[4, 5], None).await.unwrap();
        rt.terminate("finished", Some(Duration::from_millis(10_000))).await.unwrap();
        assert_eq!(rt.read_state_as::<i32>("finished").await.unwrap(), [2, 9]);
        let buffers_before = rt.summary().gpu_buffer_count;

        // A receive and a call already waiting when the device goes.
        let mut waiting_receive = pin!(rt.receive_batch::<i32>("paused", 10, None));
        assert!(poll!(waiting_receive.as_mut()).is_pending());
        let mut waiting_call = pin!(rt.call_pod::<i32, i32>("paused", &4, None));
        assert!(poll!(waiting_call.as_mut()).is_pending());

        rt.destroy_device().unwrap();
        for id in ["run", "paused", "idle", "count"] {
            wait_for_state(&rt, id, KernelState::Failed);
        }
        let summary = rt.summary();
        assert!(summary.device.lost.as_deref().is_some_and(|why| why.contains("destroyed")), "{:?}", summary.device);
        assert_eq!((summary.device.losses, summary.device.recoveries), (1, 0));
        assert!(summary.gpu_buffer_count < buffers_before, "the lost device's rings were released");
        assert!(is_device_lost(&waiting_receive.await), "a waiting receive rejects");
        assert!(is_device_lost(&waiting_call.await), "a waiting call rejects");

        // While failed: delivered answers stay receivable, then receives fail at once; sends
        // are queued; calls, lifecycle moves, launches and state reads are refused by name.
        // At most 40 answers can be there; asking for 41 must end in the loss.
        let (delivered, error) = receive_up_to(&rt, "run", 41).await;
        assert!(delivered.len() <= 40 && matches!(error, Some(Error::DeviceLost { .. })), "{error:?}");
        assert_eq!(
            rt.send_batch("run", &(100..150).collect::<Vec<i32>>(), Some(Duration::from_millis(0))).await,
            Ok(50)
        );
        assert!(is_device_lost(&rt.call_pod::<i32, i32>("run", &1, Some(Duration::from_millis(1000))).await));
        for (action, result) in [
            (Action::Activate, rt.activate("idle").await),
            (Action::Deactivate, rt.deactivate("run").await),
            (Action::Reactivate, rt.reactivate("paused").await),
        ] {
            assert!(
                matches!(result, Err(Error::KernelState { state: KernelState::Failed, action: a, .. }) if a == action)
            );
        }
        assert!(matches!(rt.launch_definition(sequencer("run"), queue(8)).await, Err(Error::KernelState { .. })));
        assert!(is_device_lost(&rt.launch_definition(sequencer("new"), queue(8)).await));
        assert!(is_device_lost(&rt.read_state("count").await));
        assert_eq!(rt.read_state_as::<i32>("finished").await.unwrap(), [2, 9], "kept as its checkpoint");

        rt.recover().await.unwrap();
        let summary = rt.summary();
        assert_eq!((summary.device.lost.clone(), summary.device.losses, summary.device.recoveries), (None, 1, 1));
        for (id, state) in [
            ("run", KernelState::Active),
            ("paused", KernelState::Deactivated),
            ("idle", KernelState::Launched),
            ("count", KernelState::Active),
        ] {
            assert_eq!(rt.state(id).unwrap(), state, "{id} is back where it failed");
        }

        // Every message of `run` answered exactly once, in order: 60 before, the rest after.
        let (rest, error) = receive_up_to(&rt, "run", 150 - 60 - delivered.len()).await;
        assert_eq!(error, None);
        let all: Vec<i32> = early.into_iter().chain(delivered).chain(rest).collect();
        assert_eq!(all, (0..150).map(answer_to).collect::<Vec<_>>());
        // The same buffers again, on the new device, but for the finished kernel's state, which
        // is now its checkpoint on the host.
        assert_eq!(rt.summary().gpu_buffer_count, buffers_before - 1);

        // The paused kernel kept its three sends and the call's message (answered, discarded).
        rt.reactivate("paused").await.unwrap();
        assert_eq!(receive_up_to(&rt, "paused", 3).await.0, [1, 2, 3].map(answer_to));
        let abandoned = || rt.telemetry("paused").unwrap().unwrap().answers_abandoned;
        let start = Instant::now();
        while abandoned() == 0 && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(abandoned(), 1, "the rejected call's message was processed, its answer discarded");

        // State came back from the checkpoint and keeps counting.
        assert_eq!(rt.read_state_as::<i32>("count").await.unwrap(), [3, 18]);
        rt.send_batch("count", &[10], None).await.unwrap();
        assert_eq!(rt.call_pod::<i32, i32>("count", &20, Some(Duration::from_millis(10_000))).await.unwrap(), 20);
        assert_eq!(receive_up_to(&rt, "count", 1).await.0, [10]);
        assert_eq!(rt.read_state_as::<i32>("count").await.unwrap(), [5, 48]);
        // Reading a state from the lost device never touches the new one.
        assert_eq!(rt.read_state_as::<i32>("finished").await.unwrap(), [2, 9]);
        assert_eq!(rt.call_pod::<i32, i32>("count", &1, Some(Duration::from_millis(10_000))).await.unwrap(), 1);
        assert_eq!(rt.summary().device.losses, 1);
        rt.launch_definition(sequencer("new"), queue(8)).await.unwrap();
        rt.recover().await.unwrap(); // nothing lost: nothing to do
        assert_eq!(rt.summary().device.recoveries, 1);
    });
}

/// A launch still compiling when the device goes fails with `DeviceLost` and leaves nothing
/// behind: the id is free, and launches again once the device is recovered.
#[test]
fn a_launch_compiling_when_the_device_is_lost_fails_cleanly() {
    const ATTEMPTS: usize = 20;
    let rt = runtime();
    pollster::block_on(async {
        for attempt in 0.. {
            assert!(attempt < ATTEMPTS, "never caught a launch still compiling");
            let mut launch = pin!(rt.launch_definition(sequencer("late"), queue(64)));
            if let Poll::Ready(done) = poll!(launch.as_mut()) {
                done.unwrap(); // finished before the first poll returned: try again
                rt.terminate("late", None).await.unwrap();
                rt.remove("late").unwrap();
                continue;
            }
            assert_eq!(rt.state("late").unwrap(), KernelState::Created);
            rt.destroy_device().unwrap();
            assert!(is_device_lost(&launch.await));
            break;
        }
        assert!(matches!(rt.state("late"), Err(Error::KernelNotFound { .. })), "the id is free again");
        rt.recover().await.unwrap();
        rt.launch_definition(sequencer("late"), queue(64)).await.unwrap();
        rt.activate("late").await.unwrap();
        assert_eq!(
            rt.call_pod::<i32, i32>("late", &2, Some(Duration::from_millis(10_000))).await.unwrap(),
            answer_to(2)
        );
    });
}

/// `Failed` against every lifecycle call. Without recovery a failed kernel can still be
/// terminated: it stops at once, and what it could not process is reported, not dropped.
#[test]
fn the_failed_row_of_the_lifecycle_table() {
    let rt = runtime();
    pollster::block_on(async {
        for id in ["empty", "loaded", "other"] {
            rt.launch_definition(sequencer(id), queue(64)).await.unwrap();
        }
        rt.send_batch("loaded", &[1, 2, 3], None).await.unwrap();
        rt.destroy_device().unwrap();
        wait_for_state(&rt, "other", KernelState::Failed);
        for (action, result) in [
            (Action::Launch, rt.launch_definition(sequencer("other"), queue(8)).await.map(drop)),
            (Action::Activate, rt.activate("other").await),
            (Action::Deactivate, rt.deactivate("other").await),
            (Action::Reactivate, rt.reactivate("other").await),
        ] {
            assert!(
                matches!(&result, Err(Error::KernelState { id, state: KernelState::Failed, action: a, .. })
                    if id == "other" && *a == action),
                "failed --{action}-->: {result:?}"
            );
            assert_eq!(rt.state("other").unwrap(), KernelState::Failed, "nothing changed");
        }
        assert_eq!(rt.terminate("empty", Some(Duration::from_millis(1000))).await, Ok(()));
        assert_eq!(rt.state("empty").unwrap(), KernelState::Terminated);
        let stopped = rt.terminate("loaded", Some(Duration::from_millis(1000))).await;
        assert!(
            matches!(&stopped, Err(Error::StrandedByDeviceLoss { id, unprocessed: 3, .. }) if id == "loaded"),
            "{stopped:?}"
        );
        let stopped = stopped.unwrap_err();
        assert_eq!(stopped.kind(), ErrorKind::DeviceLost);
        assert!(stopped.to_string().ends_with("; kernel 'loaded' stopped with 3 messages unprocessed"), "{stopped}");
        assert_eq!(rt.telemetry("loaded").unwrap().unwrap().unprocessed_at_termination, 3);
        rt.recover().await.unwrap();
        assert_eq!(rt.state("other").unwrap(), KernelState::Launched);
        assert_eq!(rt.state("loaded").unwrap(), KernelState::Terminated, "terminated stays terminated");
    });
}

/// Sends `total` messages in batches to `first` while receiving from `last`, losing the device
/// `losses` times along the way (after a share of the answers came back); the receiver
/// recovers whenever a receive reports the loss, unless the runtime does it itself. Returns
/// every answer received, in order.
async fn stream_through_losses(rt: &Runtime, first: &str, last: &str, total: i32, losses: usize) -> Vec<i32> {
    let sender = async {
        for chunk in (0..total).collect::<Vec<i32>>().chunks(997) {
            let mut sent = 0;
            while sent < chunk.len() {
                sent += rt.send_batch(first, &chunk[sent..], Some(Duration::from_millis(60_000))).await.unwrap();
            }
        }
    };
    let receiver = async {
        let mut answers = Vec::with_capacity(total as usize);
        let mut lost = 0;
        while answers.len() < total as usize {
            match rt.receive_batch::<i32>(last, 4096, Some(Duration::from_millis(60_000))).await {
                Ok(batch) => answers.extend(batch),
                Err(Error::DeviceLost { .. }) => {
                    if !rt.summary().device.auto_recover {
                        rt.recover().await.unwrap();
                    }
                    // Wait for the kernel to come back (immediately after a manual recover).
                    while rt.state(last).unwrap() == KernelState::Failed {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                Err(e) => panic!("after {} answers: {e}", answers.len()),
            }
            if lost < losses && answers.len() >= (lost + 1) * total as usize / (losses + 1) {
                rt.destroy_device().unwrap();
                lost += 1;
                // Lost when it returns, a tick under way on it or not.
                assert_eq!(rt.summary().device.losses, lost as u64, "the loss counts at once");
            }
        }
        answers
    };
    let ((), answers) = futures_util::join!(sender, receiver);
    answers
}

/// Messages on the GPU when the device goes are replayed: every answer exactly once, in order,
/// through three losses mid-stream, with manual recovery.
#[test]
fn messages_in_flight_when_the_device_is_lost_are_answered_exactly_once() {
    let rt = runtime();
    pollster::block_on(async {
        rt.launch_definition(counter("stream"), queue(4096)).await.unwrap();
        rt.activate("stream").await.unwrap();
        let total = 100_000;
        let answers = stream_through_losses(&rt, "stream", "stream", total, 3).await;
        assert_eq!(answers, (0..total).collect::<Vec<_>>());
        // Each message's effect on the state counted exactly once, across replays.
        let sum: i64 = (0..total as i64).sum();
        assert_eq!(rt.read_state_as::<i32>("stream").await.unwrap(), [total, sum as i32]);
        let summary = rt.summary();
        assert_eq!((summary.device.losses, summary.device.recoveries), (3, 3));
        println!(
            "{{\"test\":\"recovery_stream\",\"messages\":{total},\"losses\":3,\"processed_on_gpu\":{}}}",
            summary.per_kernel["stream"].messages_processed
        );
    });
}

/// The same through a 3-stage connected pipeline with automatic recovery: forwarded messages
/// lost with the device are produced again by their feeder, not duplicated.
#[test]
fn a_pipeline_recovers_by_itself_and_answers_exactly_once() {
    let rt = runtime_with(RuntimeOptions::default().with_auto_recover(true));
    pollster::block_on(async {
        let stages = ["s1", "s2", "s3"];
        for id in stages {
            let wgsl = "fn handle(msg: Request) -> Response { return Response(msg.value + 1); }";
            rt.launch_definition(KernelDefinition::new(id, doubler_request(), doubler_response(), wgsl), queue(2048))
                .await
                .unwrap();
            rt.activate(id).await.unwrap();
        }
        rt.connect("s1", "s2").await.unwrap();
        rt.connect("s2", "s3").await.unwrap();
        let total = 60_000;
        let answers = stream_through_losses(&rt, "s1", "s3", total, 2).await;
        assert_eq!(answers, (3..total + 3).collect::<Vec<_>>());
        let summary = rt.summary();
        assert_eq!((summary.device.losses, summary.device.recoveries), (2, 2));
        assert_eq!(summary.per_kernel["s3"].connected_to, None);
        assert_eq!(summary.per_kernel["s1"].connected_to.as_deref(), Some("s2"), "connections survive recovery");
    });
}

/// Automatic recovery counts its attempts afresh once a recovered device has answered: a kernel
/// kept busy through six losses (never idle between them, answering between them) comes back
/// each time at the first attempt's delay (0).
/// It once counted its attempts across recoveries that had worked, so the second loss waited
/// 0.1 s, the third 1 s, the fourth 5 s, and the fifth was never recovered.
#[test]
fn automatic_recovery_counts_its_attempts_afresh_once_a_recovered_device_answered() {
    let rt = runtime_with(RuntimeOptions::default().with_auto_recover(true));
    pollster::block_on(async {
        rt.launch_definition(counter("busy"), queue(65_536).with_max_batch(8)).await.unwrap();
        rt.activate("busy").await.unwrap();
        let values: Vec<i32> = (0..60_000).collect();
        rt.send_batch("busy", &values, None).await.unwrap();
        let processed = || rt.summary().per_kernel["busy"].messages_processed;
        for loss in 1..=6 {
            // A tick ran on the device since it was last recovered.
            let before = processed();
            wait_for(|| processed() > before);
            rt.destroy_device().unwrap();
            let lost_at = Instant::now();
            while rt.state("busy").unwrap() == KernelState::Failed {
                // Every attempt but the first waits 0.1 s or more.
                assert!(lost_at.elapsed() < Duration::from_secs(4), "loss {loss}: not recovered after 4 s");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        assert_eq!(rt.summary().device.recoveries, 6);
        let (answers, error) = receive_up_to(&rt, "busy", values.len()).await;
        assert_eq!((answers, error), (values.clone(), None));
        assert_eq!(rt.read_state_as::<i32>("busy").await.unwrap(), [60_000, values.iter().sum::<i32>()]);
    });
}

/// Polls `done` every millisecond, for at most 30 s.
fn wait_for(mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "waited 30 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A terminate that is draining when the device goes finishes after automatic recovery.
#[test]
fn a_draining_terminate_finishes_after_automatic_recovery() {
    let rt = runtime_with(RuntimeOptions::default().with_auto_recover(true));
    pollster::block_on(async {
        rt.launch_definition(sequencer("drain"), queue(65_536)).await.unwrap();
        let values: Vec<i32> = (0..65_536).collect();
        rt.send_batch("drain", &values, None).await.unwrap();
        let mut terminate = pin!(rt.terminate("drain", Some(Duration::from_millis(60_000))));
        if let Poll::Ready(done) = poll!(terminate.as_mut()) {
            panic!("terminate finished before its first poll returned: {done:?}");
        }
        rt.destroy_device().unwrap();
        assert_eq!(terminate.await, Ok(()));
        let (answers, _) = receive_up_to(&rt, "drain", values.len()).await;
        assert_eq!(answers, values.iter().map(|&v| answer_to(v)).collect::<Vec<_>>());
    });
}

/// 1,000 launch → activate → call → terminate → remove cycles leave the runtime's GPU buffers
/// (count and bytes, reported in the summary) exactly where they started.
#[test]
fn a_thousand_launch_terminate_cycles_leave_no_gpu_buffer_behind() {
    let rt = runtime();
    pollster::block_on(async {
        let cycle = |i: i32| {
            let rt = &rt;
            async move {
                rt.launch_definition(counter("cycle"), queue(64)).await.unwrap();
                rt.activate("cycle").await.unwrap();
                let during = rt.summary();
                assert_eq!(rt.call_pod::<i32, i32>("cycle", &i, Some(Duration::from_millis(10_000))).await.unwrap(), i);
                rt.terminate("cycle", Some(Duration::from_millis(10_000))).await.unwrap();
                rt.remove("cycle").unwrap();
                during
            }
        };
        cycle(-1).await; // the shared readback buffer is allocated once and kept
        let start = rt.summary();
        let mut peak = 0;
        let started = Instant::now();
        for i in 0..1000 {
            let during = cycle(i).await;
            // Input ring, output ring and state while the kernel lives.
            assert_eq!(during.gpu_buffer_count, start.gpu_buffer_count + 3, "cycle {i}");
            peak = peak.max(during.gpu_buffer_bytes);
        }
        let end = rt.summary();
        assert_eq!((end.gpu_buffer_count, end.gpu_buffer_bytes), (start.gpu_buffer_count, start.gpu_buffer_bytes));
        assert!(peak > start.gpu_buffer_bytes);
        println!(
            "{{\"test\":\"launch_terminate_cycles\",\"cycles\":1000,\"buffers\":{},\"bytes\":{},\"peak_bytes\":{peak},\"seconds\":{:.1}}}",
            end.gpu_buffer_count,
            end.gpu_buffer_bytes,
            started.elapsed().as_secs_f64()
        );
    });
}

/// `max_batch` bounds how many messages one dispatch handles, so a slow handler's submissions
/// stay short; everything is still answered in order. Out-of-range values are refused.
#[test]
fn max_batch_bounds_every_dispatch() {
    let rt = runtime();
    pollster::block_on(async {
        let options = LaunchOptions::default().with_queue_capacity(1024).with_max_batch(64);
        rt.launch_definition(sequencer("bounded"), options).await.unwrap();
        rt.activate("bounded").await.unwrap();
        let values: Vec<i32> = (0..1000).collect();
        rt.send_batch("bounded", &values, None).await.unwrap();
        let (answers, _) = receive_up_to(&rt, "bounded", values.len()).await;
        assert_eq!(answers, values.iter().map(|&v| answer_to(v)).collect::<Vec<_>>());
        let dispatches = rt.telemetry("bounded").unwrap().unwrap().dispatches;
        assert!(dispatches > 1000 / 64, "{dispatches} dispatches for 1000 messages of at most 64");
        for max_batch in [0, 1025] {
            let options = LaunchOptions::default().with_queue_capacity(1024).with_max_batch(max_batch);
            let refused = rt.launch_definition(sequencer("refused"), options).await;
            let expected =
                format!("max_batch (maxBatch) must be from 1 to 1024 (the input queue size), got {max_batch}");
            assert!(matches!(&refused, Err(Error::OutOfRange(said)) if *said == expected), "{max_batch}: {refused:?}");
        }
        assert!(matches!(rt.state("refused"), Err(Error::KernelNotFound { .. })));
    });
}

/// Device events tell of each loss and recovery as it happens, with the kernels each concerns,
/// to every reader from when it began reading; automatic recovery's too. A stopped runtime ends
/// every stream.
#[test]
fn device_events_tell_of_each_loss_and_recovery_to_every_reader() {
    use futures_util::StreamExt;
    use ringkernel_web::DeviceEventKind;
    let rt = runtime();
    pollster::block_on(async {
        for id in ["a", "b"] {
            rt.launch_definition(sequencer(id), queue(16).with_auto_activate()).await.unwrap();
        }
        assert_eq!(rt.last_device_event(), 0);
        let mut first = Box::pin(rt.device_events());
        rt.destroy_device().unwrap();
        // A reader that begins now hears of what comes next only.
        let mut second = Box::pin(rt.device_events());
        rt.recover().await.unwrap();
        let lost = first.next().await.unwrap();
        assert_eq!((lost.seq, lost.kind, lost.device.0, lost.missed), (1, DeviceEventKind::Lost, 0, 0));
        let mut kernels = lost.kernels.clone();
        kernels.sort();
        assert_eq!(kernels, ["a", "b"]);
        assert!(lost.reason.as_deref().unwrap().contains("destroyDevice"), "{lost:?}");
        let recovered = first.next().await.unwrap();
        assert_eq!((recovered.seq, recovered.kind, recovered.reason.as_deref()), (2, DeviceEventKind::Recovered, None));
        assert_eq!(recovered.kernels.len(), 2);
        assert_eq!(second.next().await.unwrap(), recovered, "the later reader starts after the loss");
        assert_eq!(rt.next_device_event(0).await.unwrap(), lost, "read by number, from the first kept");
        rt.dispose().await.unwrap();
        assert!(first.next().await.is_none() && second.next().await.is_none(), "a stopped runtime ends them");
    });
    // Automatic recovery's own.
    let rt = runtime_with(RuntimeOptions::default().with_auto_recover(true));
    pollster::block_on(async {
        rt.launch_definition(sequencer("auto"), queue(16).with_auto_activate()).await.unwrap();
        let mut events = Box::pin(rt.device_events());
        rt.destroy_device().unwrap();
        let kinds = [events.next().await.unwrap().kind, events.next().await.unwrap().kind];
        assert_eq!(kinds, [DeviceEventKind::Lost, DeviceEventKind::Recovered]);
        assert_eq!(
            rt.call("auto", &[("value", ringkernel_web::Value::from(2))], None).await.unwrap()[0].1,
            ringkernel_web::Value::I32(answer_to(2))
        );
        // A stream waiting when the runtime stops ends.
        let waiting = async { events.next().await };
        let (ended, disposed) = futures_util::join!(waiting, rt.dispose());
        assert!(ended.is_none());
        disposed.unwrap();
    });
}

//! RingKernel's typed API: `KernelHandle<In, Out>` from `launch(..).typed()`, its per-operation
//! errors (a refused message comes back), `Duration` timeouts, `LaunchOptions` builders and
//! `RuntimeBuilder` presets. On lavapipe and on the cpu backend.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::time::Duration;

use futures_util::future::join;
use ringkernel_web::{
    BackendChoice, CallError, DeviceSpec, Error, ErrorKind, KernelHandle, KernelState, LaunchOptions, LoadBalancing,
    MessageEnvelope, Runtime, RuntimeBuilder, SendError, SendTimeoutError, Stall, TryReceiveError, TrySendError,
};

const BACKENDS: [BackendChoice; 2] = [BackendChoice::Auto, BackendChoice::Cpu];
const WAIT: Duration = Duration::from_secs(60);

/// The built-in doubler under `id` (a second instance), typed `i32 → i32`.
async fn doubler(rt: &Runtime, id: &str, options: LaunchOptions) -> KernelHandle<i32, i32> {
    rt.launch_as("doubler", id, options).await.unwrap().typed::<i32, i32>().unwrap()
}

#[test]
fn a_typed_handle_sends_and_receives_its_types() {
    for backend in BACKENDS {
        let rt = common::runtime_on(backend);
        pollster::block_on(async {
            let h = doubler(&rt, "d", LaunchOptions::default()).await;
            assert_eq!((h.id(), h.state().unwrap()), ("d", KernelState::Launched));
            h.activate().await.unwrap();
            assert!(h.is_active());
            h.send(21).await.unwrap();
            assert_eq!(h.receive().await.unwrap(), 42, "{backend:?}");
            h.send_batch(&[1, 2, 3]).await.unwrap();
            let mut got = Vec::new();
            while got.len() < 3 {
                got.extend(h.receive_batch(3 - got.len()).await.unwrap());
            }
            assert_eq!(got, [2, 4, 6]);
            assert_eq!(h.call(5, WAIT).await.unwrap(), 10);
            let status = h.status().unwrap();
            assert_eq!(
                (status.state, status.messages_processed, status.output_queue_depth),
                (KernelState::Active, 5, 0)
            );
            assert_eq!(h.metrics().unwrap().messages_processed, 5);
            // Clones and `get_kernel` reach the same kernel.
            let again = rt.get_kernel("d").unwrap().typed::<i32, i32>().unwrap();
            again.clone().send(7).await.unwrap();
            assert_eq!(h.receive_timeout(WAIT).await.unwrap(), 14);
            assert_eq!(rt.list_kernels(), ["d"]);
            h.terminate().await.unwrap();
            assert!(h.is_terminated() && again.is_terminated());
        });
    }
}

#[test]
fn types_are_checked_against_the_layouts_not_only_sizes() {
    let rt = common::runtime_on(BackendChoice::Auto);
    pollster::block_on(async {
        let untyped = rt.launch("doubler", LaunchOptions::default()).await.unwrap();
        // f32 has i32's size; the kernel takes i32.
        let e = untyped.typed::<f32, i32>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MessageFormat, "{e}");
        assert!(e.to_string().contains("f32") && e.to_string().contains("i32"), "{e}");
        let e = untyped.typed::<i32, u32>().unwrap_err();
        assert!(e.to_string().contains("answers"), "{e}");
        assert!(untyped.typed::<i32, i32>().is_ok());
        assert!(rt.get_kernel("nope").is_none());
    });
}

#[test]
fn refused_messages_come_back_with_why() {
    for backend in BACKENDS {
        let rt = common::runtime_on(backend);
        pollster::block_on(async {
            let h = doubler(&rt, "small", LaunchOptions::default().with_queue_capacity(2)).await;
            // Launched, not active: messages queue up to the bound and wait.
            h.try_send(1).unwrap();
            h.send_timeout(2, Duration::ZERO).await.unwrap();
            match h.try_send(3) {
                Err(TrySendError::Full(3, full)) => assert_eq!(full.kind(), ErrorKind::QueueFull),
                other => panic!("{other:?}"),
            }
            match h.send_timeout(4, Duration::from_millis(20)).await {
                Err(SendTimeoutError::Timeout(4, full)) => assert_eq!(full.kind(), ErrorKind::QueueFull),
                other => panic!("{other:?}"),
            }
            // An envelope comes back whole, its header as it was given.
            match h
                .send_envelope_timeout(MessageEnvelope::new(4).with_correlation_id(40), Duration::from_millis(20))
                .await
            {
                Err(SendTimeoutError::Timeout(back, full)) => {
                    assert_eq!((back.message, back.header.correlation_id), (4, Some(40)));
                    assert_eq!(full.kind(), ErrorKind::QueueFull);
                }
                other => panic!("{other:?}"),
            }
            match h.try_receive() {
                Err(TryReceiveError::Empty(e)) => assert_eq!(e.kind(), ErrorKind::Timeout),
                other => panic!("{other:?}"),
            }
            let e = h.receive_timeout(Duration::from_millis(20)).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Timeout);
            // A batch that cannot fit in time says how many went in (none: the queue is full).
            let e = h.send_batch_timeout(&[5, 6], Duration::from_millis(20)).await.unwrap_err();
            assert_eq!((e.accepted, e.error.kind()), (0, ErrorKind::QueueFull));
            h.activate().await.unwrap();
            assert_eq!(h.receive().await.unwrap(), 2);
            assert_eq!(h.receive().await.unwrap(), 4);
            h.terminate().await.unwrap();
            let refused = h.send(8).await.unwrap_err();
            assert_eq!((refused.message, refused.error.kind()), (8, ErrorKind::KernelState));
            match h.send_envelope_timeout(MessageEnvelope::new(8), Duration::from_millis(20)).await {
                Err(SendTimeoutError::Refused(back, e)) => {
                    assert_eq!((back.message, e.kind()), (8, ErrorKind::KernelState))
                }
                other => panic!("{other:?}"),
            }
            match h.call(9, WAIT).await {
                Err(CallError::NotSent(9, e)) => assert_eq!(e.kind(), ErrorKind::KernelState),
                other => panic!("{other:?}"),
            }
            match h.try_receive() {
                Err(TryReceiveError::Refused(e)) => assert_eq!(e.kind(), ErrorKind::KernelState),
                other => panic!("{other:?}"),
            }
            // Every per-operation error is also the crate's `Error`.
            let e: Error = h.send(10).await.unwrap_err().into();
            assert_eq!(e.kind(), ErrorKind::KernelState);
        });
    }
}

#[test]
fn a_call_that_gets_no_answer_in_time_says_so() {
    let rt = common::runtime_on(BackendChoice::Auto);
    pollster::block_on(async {
        let h = doubler(&rt, "paused", LaunchOptions::default()).await;
        match h.call(1, Duration::from_millis(30)).await {
            Err(CallError::Unanswered(e)) => assert_eq!(e.kind(), ErrorKind::Timeout),
            other => panic!("{other:?}"),
        }
        // Its message stays queued and is processed once active; the late answer is discarded.
        h.activate().await.unwrap();
        assert_eq!(h.call(2, WAIT).await.unwrap(), 4);
        assert_eq!(h.metrics().unwrap().answers_abandoned, 1);
    });
}

#[test]
fn a_batch_larger_than_the_queue_goes_in_whole_while_answers_are_received() {
    for backend in BACKENDS {
        let rt = common::runtime_on(backend);
        pollster::block_on(async {
            let h = doubler(&rt, "stream", LaunchOptions::default().with_queue_capacity(64).with_auto_activate()).await;
            assert_eq!(h.state().unwrap(), KernelState::Active, "auto-activated");
            let values: Vec<i32> = (0..2_000).collect();
            let receiver = async {
                let mut got = Vec::new();
                while got.len() < values.len() {
                    got.extend(h.receive_batch(values.len() - got.len()).await.unwrap());
                }
                got
            };
            let (sent, got) = join(h.send_batch(&values), receiver).await;
            sent.unwrap();
            assert_eq!(got, values.iter().map(|v| v * 2).collect::<Vec<_>>(), "{backend:?}");
        });
    }
}

/// `answers()` streams a kernel's answers one by one: a stream dropped part way took only what
/// it yielded, and a stream ends when no answer will come (the kernel terminated with none left).
#[test]
fn answers_stream_one_by_one_and_end_when_none_will_come() {
    use futures_util::StreamExt;
    for backend in BACKENDS {
        let rt = common::runtime_on(backend);
        pollster::block_on(async {
            let h =
                doubler(&rt, "answers", LaunchOptions::default().with_queue_capacity(64).with_auto_activate()).await;
            let values: Vec<i32> = (0..50).collect();
            h.send_batch(&values).await.unwrap();
            let first: Vec<i32> = h.answers().take(20).map(Result::unwrap).collect().await;
            assert_eq!(first, (0..20).map(|v| v * 2).collect::<Vec<_>>(), "{backend:?}");
            let mut rest = Vec::new();
            while rest.len() < 30 {
                rest.extend(h.receive_batch(30 - rest.len()).await.unwrap());
            }
            assert_eq!(rest, (20..50).map(|v| v * 2).collect::<Vec<_>>(), "dropping the stream took none of the rest");

            h.send_batch(&[1, 2, 3]).await.unwrap();
            // The stream holds a handle of its own: it outlives the one it came from.
            let answers = h.clone().answers();
            let (all, terminated) = join(answers.collect::<Vec<_>>(), async {
                futures_timer::Delay::new(Duration::from_millis(50)).await;
                h.terminate().await
            })
            .await;
            terminated.unwrap();
            assert_eq!(all.into_iter().map(Result::unwrap).collect::<Vec<_>>(), [2, 4, 6], "then the stream ends");
            assert_eq!(h.metrics().unwrap().errors, 0, "the end of the answers is no failure");
        });
    }
}

/// `sink()` feeds a kernel from a stream with the kernel's queue as its backpressure, in order;
/// a refused message ends it with the message back. An untyped handle's `answers()` streams
/// named values and ends alike.
#[test]
fn a_sink_feeds_a_kernel_and_untyped_answers_stream_named_values() {
    use futures_util::{SinkExt, StreamExt};
    use ringkernel_web::Value;
    for backend in BACKENDS {
        let rt = common::runtime_on(backend);
        pollster::block_on(async {
            let h = doubler(&rt, "sink", LaunchOptions::default().with_queue_capacity(4).with_auto_activate()).await;
            // More than the queue holds: the sink waits for room as the answers are read.
            let values: Vec<i32> = (0..40).collect();
            let fed = futures_util::stream::iter(values.clone()).map(Ok).forward(h.sink());
            let read = async {
                let mut got = Vec::new();
                while got.len() < values.len() {
                    got.extend(h.receive_batch(values.len() - got.len()).await.unwrap());
                }
                got
            };
            let (fed, got) = join(fed, read).await;
            fed.unwrap();
            assert_eq!(got, values.iter().map(|v| v * 2).collect::<Vec<_>>(), "{backend:?}");

            let untyped = rt.get_kernel("sink").unwrap();
            h.send_batch(&[5, 6]).await.unwrap();
            let answers = untyped.answers();
            let (all, terminated) = join(answers.collect::<Vec<_>>(), async {
                futures_timer::Delay::new(Duration::from_millis(50)).await;
                h.terminate().await
            })
            .await;
            terminated.unwrap();
            let results: Vec<Value> = all.into_iter().map(|a| a.unwrap().remove(0).1).collect();
            assert_eq!(results, [Value::I32(10), Value::I32(12)], "{backend:?}");

            let mut sink = std::pin::pin!(h.sink());
            let refused = sink.send(7).await.unwrap_err();
            assert_eq!((refused.message, refused.error.kind()), (7, ringkernel_web::ErrorKind::KernelState));
        });
    }
}

/// A handle reads its own launch's state: the same as the runtime's read by id, and
/// `KernelNotFound` once removed, though another kernel is launched under its id.
#[test]
fn a_handle_reads_its_own_launchs_state() {
    use ringkernel_web::kernel::{HISTOGRAM_BINS, HISTOGRAM_SAMPLES};
    let rt = common::runtime_on(BackendChoice::Cpu);
    pollster::block_on(async {
        let options = LaunchOptions::default().with_auto_activate();
        let h = rt.launch("histogram", options.clone()).await.unwrap();
        let samples = [0.5f32; HISTOGRAM_SAMPLES as usize];
        rt.call_pod::<_, u32>("histogram", &samples, Some(Duration::from_secs(30))).await.unwrap();
        let bins = h.read_state_as::<u32>().await.unwrap();
        assert_eq!(bins.len(), HISTOGRAM_BINS as usize);
        assert_eq!(bins.iter().sum::<u32>(), HISTOGRAM_SAMPLES);
        assert_eq!(rt.read_state_as::<u32>("histogram").await.unwrap(), bins);
        assert_eq!(h.read_state().await.unwrap().len(), 4 * HISTOGRAM_BINS as usize);
        h.terminate().await.unwrap();
        rt.remove("histogram").unwrap();
        rt.launch("histogram", options).await.unwrap();
        assert_eq!(h.read_state().await.unwrap_err().kind(), ErrorKind::KernelNotFound);
    });
}

#[test]
fn handles_are_equal_when_they_refer_to_the_same_launch() {
    use std::collections::HashSet;
    let rt = common::runtime_on(BackendChoice::Cpu);
    pollster::block_on(async {
        let h = doubler(&rt, "same", LaunchOptions::default()).await;
        let found = rt.get_kernel("same").unwrap().typed::<i32, i32>().unwrap();
        let other = doubler(&rt, "other", LaunchOptions::default()).await;
        assert_eq!(h, h.clone());
        assert_eq!(h, found, "got again by id");
        assert_ne!(h, other);
        // Clippy calls any key holding a runtime mutable; a handle hashes by its launch alone.
        #[allow(clippy::mutable_key_type)]
        let set: HashSet<_> = [h.clone(), found, other.clone()].into_iter().collect();
        assert_eq!(set.len(), 2);
        // Launched again under its id, the kernel is another: its handles are too.
        h.terminate().await.unwrap();
        rt.remove("same").unwrap();
        let again = doubler(&rt, "same", LaunchOptions::default()).await;
        assert_ne!(h, again);
        assert!(!set.contains(&again) && set.contains(&other));
    });
}

#[test]
fn wait_resolves_when_another_handle_terminates_the_kernel() {
    let rt = common::runtime_on(BackendChoice::Cpu);
    pollster::block_on(async {
        let h = doubler(&rt, "waited", LaunchOptions::default()).await;
        let other = h.clone();
        // Bounded, the wait ends with a `Timeout` and leaves the kernel as it is.
        let timed_out = h.wait_timeout(Duration::from_millis(20)).await.unwrap_err();
        assert_eq!((timed_out.kind(), h.state().unwrap()), (ErrorKind::Timeout, KernelState::Launched));
        assert!(timed_out.to_string().starts_with("wait on kernel 'waited' timed out after 20 ms"), "{timed_out}");
        assert_eq!(h.metrics().unwrap().errors, 0, "a wait that ran out is no failure of the kernel");
        let (waited, terminated) =
            join(h.wait_timeout(Duration::from_secs(30)), async move { other.terminate().await }).await;
        terminated.unwrap();
        waited.unwrap();
        assert!(h.is_terminated());
        h.wait().await.unwrap();
    });
}

#[test]
fn input_and_output_queues_have_their_own_bounds() {
    let rt = common::runtime_on(BackendChoice::Auto);
    pollster::block_on(async {
        let options = LaunchOptions::default().with_input_queue_capacity(8).with_output_queue_capacity(2);
        let h = doubler(&rt, "bounds", options).await;
        let t = h.metrics().unwrap();
        assert_eq!((t.queue_size, t.output_queue_size), (8, 2));
        h.send_batch(&[1, 2, 3, 4, 5, 6, 7, 8]).await.unwrap();
        assert!(matches!(h.try_send(9), Err(TrySendError::Full(9, _))));
        h.activate().await.unwrap();
        // Only two answers fit in the output queue: the rest wait as input until received.
        common::wait_until("two answers", || h.status().unwrap().output_queue_depth == 2);
        std::thread::sleep(Duration::from_millis(50));
        let status = h.status().unwrap();
        assert_eq!((status.output_queue_depth, status.input_queue_depth), (2, 6));
        let mut got = Vec::new();
        while got.len() < 8 {
            got.push(h.receive().await.unwrap());
        }
        assert_eq!(got, [2, 4, 6, 8, 10, 12, 14, 16]);
        let bad = rt.launch("doubler", LaunchOptions::default().with_output_queue_capacity(0)).await.unwrap_err();
        assert!(bad.to_string().contains("outputQueueSize"), "{bad}");
    });
}

#[test]
fn builder_presets_set_what_the_readme_says() {
    // (preset, debug, profiling, auto_recover, default queue) as in the README's table.
    let table = [
        (RuntimeBuilder::new(), false, true, false, 4096),
        (RuntimeBuilder::development(), true, true, false, 1024),
        (RuntimeBuilder::production(), false, true, true, 4096),
        (RuntimeBuilder::high_performance(), false, false, true, 65_536),
    ];
    for (builder, debug, profiling, auto_recover, queue) in table {
        let o = builder.options();
        assert_eq!(
            (o.debug, o.enable_telemetry, o.auto_recover, o.default_queue_size),
            (debug, profiling, auto_recover, queue)
        );
    }
    pollster::block_on(async {
        // Validation on (where the layers are installed) still runs kernels.
        let rt = RuntimeBuilder::development().backend(BackendChoice::Auto).build().await.unwrap();
        let h = doubler(&rt, "dev", LaunchOptions::default().with_auto_activate()).await;
        assert_eq!(h.call(3, WAIT).await.unwrap(), 6);
        assert!(rt.telemetry("dev").unwrap().is_some(), "profiling keeps telemetry");
        let quiet = RuntimeBuilder::high_performance().backend(BackendChoice::Cpu).build().await.unwrap();
        doubler(&quiet, "fast", LaunchOptions::default()).await;
        assert!(quiet.telemetry("fast").unwrap().is_none(), "no latency telemetry without profiling");
        assert!(Runtime::is_backend_available(BackendChoice::Cpu).await);
        assert!(Runtime::is_backend_available(BackendChoice::Auto).await, "lavapipe");
        let metrics = rt.metrics();
        assert_eq!((metrics.active_kernels, metrics.total_launched), (1, 1));
        assert!(
            metrics.messages_sent >= 1 && metrics.gpu_memory_used > 0 && metrics.host_memory_used > 0,
            "{metrics:?}"
        );
        // A removed kernel's messages still count: the totals never go back.
        h.terminate().await.unwrap();
        rt.remove("dev").unwrap();
        let after = rt.metrics();
        assert_eq!((after.messages_sent, after.messages_received), (metrics.messages_sent, metrics.messages_received));
        rt.shutdown().await.unwrap();
        let missing = RuntimeBuilder::new().backend(BackendChoice::Auto).device(99).build().await.unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::BackendUnavailable, "{missing}");
        assert!(missing.to_string().contains("99"), "{missing}");
        // Every option has its builder method, as `RuntimeOptions` has its `with_`.
        let thresholds = ringkernel_web::HealthThresholds::default().with_queue_fill(0.5);
        let two = RuntimeBuilder::new()
            .backend(BackendChoice::Cpu)
            .devices([DeviceSpec::new(BackendChoice::Cpu), DeviceSpec::new(BackendChoice::Cpu)])
            .load_balancing(LoadBalancing::RoundRobin)
            .health_thresholds(thresholds);
        assert_eq!((two.options().load_balancing, &two.options().health), (LoadBalancing::RoundRobin, &thresholds));
        assert_eq!(two.build().await.unwrap().device_count(), 2);
    });
}

/// A handle refers to its launch: once that kernel is removed, every operation on it is
/// `KernelNotFound` (a refused message handed back), even after another kernel is launched
/// under the same id, which only its own handles reach.
#[test]
fn a_handle_never_reaches_a_kernel_launched_later_under_its_id() {
    for backend in BACKENDS {
        let rt = common::runtime_on(backend);
        pollster::block_on(async {
            let old = doubler(&rt, "reused", LaunchOptions::default().with_auto_activate()).await;
            let old_dynamic = rt.get_kernel("reused").unwrap();
            assert_eq!(old.call(20, Duration::from_secs(30)).await.unwrap(), 40);
            old.terminate().await.unwrap();
            rt.remove("reused").unwrap();
            let new = doubler(&rt, "reused", LaunchOptions::default().with_auto_activate()).await;
            let not_found = |e: &Error| e.kind() == ErrorKind::KernelNotFound && e.to_string().contains("reused");
            match old.send(1).await {
                Err(SendError { message: 1, error, .. }) => assert!(not_found(&error), "{error}"),
                other => panic!("{backend:?}: {other:?}"),
            }
            match old.try_send(2) {
                Err(TrySendError::Refused(2, error)) => assert!(not_found(&error), "{error}"),
                other => panic!("{backend:?}: {other:?}"),
            }
            match old.call(3, Duration::from_secs(1)).await {
                Err(CallError::NotSent(3, error)) => assert!(not_found(&error), "{error}"),
                other => panic!("{backend:?}: {other:?}"),
            }
            assert!(not_found(&old.state().unwrap_err()));
            assert!(not_found(&old_dynamic.receive_value(Some(Duration::ZERO)).await.unwrap_err()));
            assert!(not_found(&old.deactivate().await.unwrap_err()));
            assert!(old.is_terminated() && !old.is_active());
            old.wait().await.unwrap();
            assert!(old_dynamic.typed::<i32, i32>().is_err());
            // Nothing reached the new kernel; its own handles, and the one found now, work.
            assert_eq!(new.status().unwrap().input_queue_depth, 0);
            assert_eq!(new.call(21, Duration::from_secs(30)).await.unwrap(), 42);
            let found = rt.get_kernel("reused").unwrap().typed::<i32, i32>().unwrap();
            assert_eq!(found.call(5, Duration::from_secs(30)).await.unwrap(), 10);
            assert_eq!(new.metrics().unwrap().messages_processed, 2, "{backend:?}");
        });
    }
}

/// A wait begun on one launch stays on it: a receive, a send waiting for room and a batch
/// part way in, polled again only after their kernel was terminated, removed and launched
/// again under its id, end with `KernelNotFound` (the batch saying how many went in) and take
/// nothing from the new launch nor put anything in it. Handles and ids alike.
#[test]
fn a_wait_begun_on_one_launch_never_finishes_on_a_later_one() {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }
    let relaunch = |rt: &Runtime, id: &str| {
        let _ = pollster::block_on(rt.terminate(id, Some(Duration::ZERO)));
        rt.remove(id).unwrap();
        pollster::block_on(doubler(rt, id, LaunchOptions::default().with_queue_capacity(2).with_auto_activate()))
    };
    let not_found = |e: &Error| e.kind() == ErrorKind::KernelNotFound;
    for backend in BACKENDS {
        let rt = common::runtime_on(backend);
        // A receive through a handle, and one by id, waiting for an answer.
        let old = pollster::block_on(doubler(&rt, "j", LaunchOptions::default().with_auto_activate()));
        let mut by_handle = pin!(old.receive());
        let mut by_id = pin!(rt.receive_pod::<i32>("j", Some(WAIT)));
        assert!(poll_once(by_handle.as_mut()).is_pending() && poll_once(by_id.as_mut()).is_pending());
        let new = relaunch(&rt, "j");
        assert_eq!(pollster::block_on(rt.send_pod("j", &21, Some(WAIT))).map(|()| 1), Ok(1));
        common::wait_until("the new launch answered", || new.status().unwrap().output_queue_depth == 1);
        match poll_once(by_handle.as_mut()) {
            Poll::Ready(Err(e)) => assert!(not_found(&e), "{backend:?}: {e}"),
            other => panic!("{backend:?}: the handle's receive: {other:?}"),
        }
        match poll_once(by_id.as_mut()) {
            Poll::Ready(Err(e)) => assert!(not_found(&e), "{backend:?}: {e}"),
            other => panic!("{backend:?}: the id's receive: {other:?}"),
        }
        assert_eq!(pollster::block_on(new.receive()).unwrap(), 42, "the new launch's answer is still there");

        // A batch part way in and a single send, waiting for room (deactivated: nothing runs).
        let old = pollster::block_on(doubler(&rt, "k", LaunchOptions::default().with_queue_capacity(2)));
        let other = pollster::block_on(doubler(&rt, "s", LaunchOptions::default().with_queue_capacity(1)));
        pollster::block_on(other.send(1)).unwrap();
        let mut batch = pin!(old.send_batch(&[1, 2, 3, 4]));
        let mut send = pin!(rt.send_pod("s", &5, Some(WAIT)));
        assert!(poll_once(batch.as_mut()).is_pending() && poll_once(send.as_mut()).is_pending());
        let (new_k, new_s) = (relaunch(&rt, "k"), relaunch(&rt, "s"));
        pollster::block_on(async { (new_k.deactivate().await.unwrap(), new_s.deactivate().await.unwrap()) });
        match poll_once(batch.as_mut()) {
            Poll::Ready(Err(cut)) => {
                assert!(not_found(&cut.error), "{backend:?}: {}", cut.error);
                assert_eq!(cut.accepted, 2, "{backend:?}: two went into the first launch");
            }
            other => panic!("{backend:?}: the batch: {other:?}"),
        }
        match poll_once(send.as_mut()) {
            Poll::Ready(Err(e)) => assert!(not_found(&e), "{backend:?}: {e}"),
            other => panic!("{backend:?}: the send: {other:?}"),
        }
        for new in [&new_k, &new_s] {
            let status = new.status().unwrap();
            assert_eq!((status.input_queue_depth, new.metrics().unwrap().messages_sent), (0, 0), "{backend:?}");
        }
    }
}

/// A receive asleep behind another in its kernel's line hears the kernel's removal: it ends
/// with `KernelNotFound` rather than sleeping on (the receive ahead of it, holding the answer
/// left, is never polled again).
#[test]
fn a_receive_asleep_in_line_hears_its_kernel_removed() {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};
    for backend in BACKENDS {
        let rt = common::runtime_on(backend);
        pollster::block_on(rt.launch("doubler", LaunchOptions::default().with_auto_activate())).unwrap();
        let mut ahead = pin!(rt.receive_pod::<i32>("doubler", None));
        assert!(ahead.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
        let behind = {
            let rt = rt.clone();
            std::thread::spawn(move || pollster::block_on(rt.receive_pod::<i32>("doubler", None)))
        };
        std::thread::sleep(Duration::from_millis(100)); // asleep in line, behind `ahead`
        pollster::block_on(rt.send_pod("doubler", &1, Some(WAIT))).unwrap();
        pollster::block_on(rt.terminate("doubler", Some(WAIT))).unwrap();
        assert_eq!(rt.remove("doubler").unwrap(), 1, "{backend:?}: the answer left was `ahead`'s to take");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !behind.is_finished() {
            assert!(std::time::Instant::now() < deadline, "{backend:?}: the receive behind still sleeps");
            std::thread::sleep(Duration::from_millis(5));
        }
        let gone = behind.join().unwrap().unwrap_err();
        assert_eq!(gone.kind(), ErrorKind::KernelNotFound, "{backend:?}: {gone}");
    }
}

#[test]
fn a_send_call_or_receive_waiting_on_a_kernel_never_activated_is_reported_in_a_second() {
    for backend in BACKENDS {
        let rt = common::runtime_on(backend);
        pollster::block_on(async {
            // Launched, not activated (the seeds' lifecycle): its input waits.
            let h = doubler(&rt, "idle", LaunchOptions::default().with_queue_capacity(4)).await;
            h.send_batch(&[1, 2]).await.unwrap();
            let patience = Duration::from_millis(1_500);
            let timed_out = |e: &Error| matches!(e, Error::Timeout { stall: Some(Stall::Inactive(_)), .. });
            match h.call(3, patience).await {
                Err(CallError::Unanswered(e)) => assert!(timed_out(&e), "{e:?}"),
                other => panic!("{backend:?}: {other:?}"),
            }
            assert_eq!(h.metrics().unwrap().stalled_sends, 1, "{backend:?}: the call was reported");
            let e = h.receive_timeout(patience).await.unwrap_err();
            assert!(timed_out(&e), "{e:?}");
            assert_eq!(h.metrics().unwrap().stalled_sends, 2, "{backend:?}: the receive was reported");
            h.send(4).await.unwrap();
            match h.send_timeout(5, patience).await {
                Err(SendTimeoutError::Timeout(5, e)) => {
                    assert!(matches!(e, Error::QueueFull { stall: Some(Stall::Inactive(_)), .. }), "{e:?}")
                }
                other => panic!("{backend:?}: {other:?}"),
            }
            assert_eq!(h.metrics().unwrap().stalled_sends, 3, "{backend:?}: the send was reported");
            // Activated, it answers everything it took, in order (the call's answer went unclaimed).
            h.activate().await.unwrap();
            let mut got = Vec::new();
            while got.len() < 3 {
                got.push(h.receive_timeout(Duration::from_secs(30)).await.unwrap());
            }
            assert_eq!(got, [2, 4, 8]);
        });
    }
}

#[test]
fn a_send_stalled_by_unreceived_answers_is_reported_in_a_second() {
    for backend in BACKENDS {
        let rt = common::runtime_on(backend);
        pollster::block_on(async {
            let h = doubler(&rt, "stuck", LaunchOptions::default().with_queue_capacity(4).with_auto_activate()).await;
            h.send_batch(&[1, 2, 3, 4]).await.unwrap();
            common::wait_until("a full output queue", || h.status().unwrap().output_queue_depth == 4);
            h.send_batch(&[5, 6, 7, 8]).await.unwrap();
            // Nobody receives: the input cannot move, and this send waits. After a second it is
            // reported (a warning and the counter); the timeout then ends it as usual.
            let started = std::time::Instant::now();
            match h.send_timeout(9, Duration::from_millis(1_500)).await {
                Err(SendTimeoutError::Timeout(9, e)) => {
                    // The error says why, not only that the queue was full.
                    assert!(
                        matches!(&e, Error::QueueFull { stall: Some(Stall::OutputFull { answers: 4 }), .. }),
                        "{e:?}"
                    );
                    assert!(e.to_string().ends_with("while its output queue is full (4 answers nobody has received)"));
                }
                other => panic!("{other:?}"),
            }
            assert!(started.elapsed() >= Duration::from_millis(1_400));
            assert_eq!(h.metrics().unwrap().stalled_sends, 1, "{backend:?}");
            assert!(rt.metrics_text().contains("ringkernel_stalled_sends_total{kernel=\"stuck\"} 1"));
            // Receiving frees the pipeline: nothing was lost.
            let mut got = Vec::new();
            while got.len() < 8 {
                got.push(h.receive().await.unwrap());
            }
            assert_eq!(got, [2, 4, 6, 8, 10, 12, 14, 16]);
        });
    }
}

#[test]
fn blocks_grids_and_workgroup_memory_shape_the_dispatch() {
    let rt = common::runtime_on(BackendChoice::Auto);
    pollster::block_on(async {
        let values: Vec<i32> = (0..1_000).collect();
        let doubled: Vec<i32> = values.iter().map(|v| v * 2).collect();
        for (id, options) in [
            ("one-block", LaunchOptions::single_block()),
            ("two-by-32", LaunchOptions::multi_block(2, 32)),
            ("blocks-of-256", LaunchOptions::default().with_block_size(256).with_grid_size(3)),
        ] {
            let h = doubler(&rt, id, options.with_queue_capacity(1_000).with_auto_activate()).await;
            h.send_batch(&values).await.unwrap();
            let mut got = Vec::new();
            while got.len() < values.len() {
                got.extend(h.receive_batch(values.len()).await.unwrap());
            }
            assert_eq!(got, doubled, "{id}: grid-stride over few invocations answers every message, in order");
        }

        // Workgroup memory, zeroed, under the name the handler uses.
        let wgsl = "fn handle(msg: Request) -> Response { return Response(msg.value * 2 + i32(workgroup_memory[3])); }";
        let shared = ringkernel_web::KernelDefinition::new(
            "shared",
            ringkernel_web::kernel::doubler_request(),
            ringkernel_web::kernel::doubler_response(),
            wgsl,
        );
        let options = LaunchOptions::default().with_shared_memory(16).with_auto_activate();
        let h = rt.launch_definition(shared.clone(), options).await.unwrap().typed::<i32, i32>().unwrap();
        assert_eq!(h.call(21, WAIT).await.unwrap(), 42);
        // Without asking for it the name does not exist; past the device's limit it is refused.
        let e = rt.launch_definition(shared.clone().with_id("unshared"), LaunchOptions::default()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KernelCompile, "{e}");
        let e = rt
            .launch_definition(shared.with_id("too-much"), LaunchOptions::default().with_shared_memory(1 << 30))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OutOfRange, "{e}");
        assert!(e.to_string().contains("shared_memory (sharedMemory) must be at most"), "{e}");
        let e =
            rt.launch_as("doubler", "huge-block", LaunchOptions::default().with_block_size(1 << 20)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OutOfRange, "{e}");
        assert!(e.to_string().contains("got 1048576"), "{e}");
        let e = rt.launch_as("doubler", "no-grid", LaunchOptions::default().with_grid_size(0)).await.unwrap_err();
        assert!(e.to_string().contains("grid_size (maxWorkgroups) must be at least 1"), "{e}");
        assert!(!rt.kernel_ids().iter().any(|id| id == "no-grid"), "a refused launch leaves nothing");
    });
}

/// The cpu backend runs no dispatch, but holds a launch's shape to what every WebGPU device
/// runs, so a launch that works there works on any GPU.
#[test]
fn the_cpu_backend_refuses_shapes_some_gpu_would() {
    let rt = common::runtime_on(BackendChoice::Cpu);
    pollster::block_on(async {
        let refused = [
            ("block-0", LaunchOptions::default().with_block_size(0), "block_size (workgroupSize) must be 1 to 256"),
            ("block-257", LaunchOptions::default().with_block_size(257), "what every WebGPU device runs"),
            ("grid-0", LaunchOptions::default().with_grid_size(0), "grid_size (maxWorkgroups) must be at least 1"),
            ("memory", LaunchOptions::default().with_shared_memory(16388), "at most 16384 bytes"),
        ];
        for (id, options, says) in refused {
            let e = rt.launch_as("doubler", id, options).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::OutOfRange, "{id}: {e}");
            assert!(e.to_string().contains(says), "{id}: {e}");
        }
        let options = LaunchOptions::default().with_block_size(256).with_grid_size(1).with_auto_activate();
        let h = rt.launch_as("doubler", "widest", options).await.unwrap().typed::<i32, i32>().unwrap();
        assert_eq!(h.call(21, WAIT).await.unwrap(), 42);
    });
}

#[test]
fn a_bounded_tick_serves_every_kernel_in_priority_order() {
    for backend in BACKENDS {
        let rt = pollster::block_on(RuntimeBuilder::new().backend(backend).max_messages_per_tick(16).build()).unwrap();
        pollster::block_on(async {
            let low = doubler(&rt, "low", LaunchOptions::default().with_priority(0)).await;
            let high = doubler(&rt, "high", LaunchOptions::default().with_priority(9)).await;
            let values: Vec<i32> = (0..100).collect();
            low.send_batch(&values).await.unwrap();
            high.send_batch(&values).await.unwrap();
            low.activate().await.unwrap();
            high.activate().await.unwrap();
            for h in [&low, &high] {
                let mut got = Vec::new();
                while got.len() < values.len() {
                    got.extend(h.receive_batch(values.len()).await.unwrap());
                }
                assert_eq!(got, values.iter().map(|v| v * 2).collect::<Vec<_>>(), "{backend:?}");
            }
            // 200 messages, at most 16 a tick.
            assert!(rt.summary().ticks >= 13, "{backend:?}: {} ticks", rt.summary().ticks);
        });
    }
}

mod first {
    /// A `Point` of `i32`s.
    #[repr(C)]
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, ringkernel_web::RingMessage)]
    pub struct Point {
        pub x: i32,
        pub y: i32,
    }
}

mod second {
    /// Another `Point`, of `f32`s: a different type under the same WGSL name.
    #[repr(C)]
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, ringkernel_web::RingMessage)]
    pub struct Point {
        pub x: f32,
        pub y: f32,
    }
}

/// Nests two different types named `Point`: no WGSL struct can hold both.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, ringkernel_web::RingMessage)]
struct Segment {
    start: first::Point,
    end: second::Point,
}

/// The same mistake one struct further out, and in an array.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, ringkernel_web::RingMessage)]
struct Path {
    segments: [Segment; 2],
}

/// Two nested types that share a struct name (common across Rust modules) make no layout:
/// `typed` says so as a `MessageFormat` error instead of panicking, also for a message that
/// holds such a type further in.
#[test]
fn typed_refuses_a_message_whose_nested_types_share_a_name() {
    use ringkernel_web::message::RingMessage;
    let problem = Segment::try_layout().unwrap_err();
    assert!(problem.contains("'Point' names two different message types"), "{problem}");
    assert_eq!(Path::try_layout().unwrap_err(), problem, "the nested type's own error");
    let rt = common::runtime_on(BackendChoice::Cpu);
    pollster::block_on(async {
        let handle = rt.launch_as("doubler", "segments", LaunchOptions::default()).await.unwrap();
        let e = handle.typed::<Segment, i32>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MessageFormat, "{e}");
        assert!(e.to_string().contains("'Point' names two different message types"), "{e}");
        assert_eq!(handle.typed::<i32, Path>().unwrap_err().kind(), ErrorKind::MessageFormat);
        assert!(handle.typed::<i32, i32>().is_ok(), "the kernel is untouched");
    });
}

/// A batch takes at least one answer, so `max: 0` could only take more than it asked for: it is
/// `OutOfRange` (as JavaScript's `receiveBatch({ max: 0 })` is a `RangeError`) and takes nothing.
#[test]
fn a_receive_batch_of_zero_is_refused_and_takes_nothing() {
    let rt = common::runtime_on(BackendChoice::Cpu);
    pollster::block_on(async {
        let h = doubler(&rt, "zero-batch", LaunchOptions::default().with_auto_activate()).await;
        h.send_batch(&[1, 2, 3]).await.unwrap();
        let e = h.receive_batch_timeout(0, WAIT).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OutOfRange, "{e}");
        assert_eq!(rt.receive_batch::<i32>("zero-batch", 0, None).await.unwrap_err().kind(), ErrorKind::OutOfRange);
        assert_eq!(rt.receive_batch_packed("zero-batch", 0, None).await.unwrap_err().kind(), ErrorKind::OutOfRange);
        let mut got = Vec::new();
        while got.len() < 3 {
            got.extend(h.receive_batch_timeout(3, WAIT).await.unwrap());
        }
        assert_eq!(got, [2, 4, 6], "nothing was taken by the refused batches");
        assert_eq!(rt.telemetry("zero-batch").unwrap().unwrap().errors, 0, "an argument error is not the kernel's");
    });
}

/// A handle taken while a launch compiles refers to that launch only: once its WGSL fails to
/// compile, the handle is `KernelNotFound`, and it never reaches a kernel launched later under
/// the id (it read that kernel's state and called it).
#[test]
fn a_handle_of_a_launch_that_failed_never_reaches_a_later_kernel() {
    use ringkernel_web::kernel::{doubler_request, doubler_response};
    use ringkernel_web::KernelDefinition;
    let rt = common::runtime_on(BackendChoice::Auto);
    let broken = KernelDefinition::new(
        "flaky",
        doubler_request(),
        doubler_response(),
        "fn handle(m: Request) -> Response { nonsense }",
    );
    // The id is taken (created) from the launch's start until it fails. On a busy machine the
    // launch may fail before this thread runs again: then it is tried anew.
    let (handle, launching) = (0..100)
        .find_map(|_| {
            let launching = {
                let (rt, broken) = (rt.clone(), broken.clone());
                std::thread::spawn(move || {
                    pollster::block_on(rt.launch_definition(broken, LaunchOptions::default())).map(drop)
                })
            };
            loop {
                if let Some(handle) = rt.get_kernel("flaky") {
                    return Some((handle, launching));
                }
                if launching.is_finished() {
                    let _ = launching.join();
                    return None;
                }
                std::thread::yield_now();
            }
        })
        .expect("in 100 launches, a handle was never taken while one compiled");
    let failed = launching.join().unwrap().unwrap_err();
    assert_eq!(failed.kind(), ErrorKind::KernelCompile, "{failed}");
    pollster::block_on(async {
        let later = doubler(&rt, "flaky", LaunchOptions::default().with_auto_activate()).await;
        assert_eq!(handle.state().unwrap_err().kind(), ErrorKind::KernelNotFound);
        assert_eq!(handle.terminate().await.unwrap_err().kind(), ErrorKind::KernelNotFound);
        assert_eq!(later.call(4, WAIT).await.unwrap(), 8, "the later kernel is untouched");
    });
}

/// A `*_with` receive's `read` runs while the runtime's table is locked: one that calls the
/// runtime panics, saying so, rather than deadlocking every caller and the tick loop, and the
/// answer it was handed stays queued.
#[test]
fn a_read_that_calls_the_runtime_panics_and_the_answer_stays() {
    let rt = common::runtime_on(BackendChoice::Cpu);
    let handle = pollster::block_on(doubler(&rt, "reentrant", LaunchOptions::default().with_auto_activate()));
    pollster::block_on(handle.send(21)).unwrap();
    common::wait_until("the answer", || handle.status().unwrap().output_queue_depth == 1);
    let (inside, done) = (handle.clone(), std::sync::mpsc::channel());
    let reader = rt.get_kernel("reentrant").unwrap();
    std::thread::spawn(move || {
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            reader.try_receive_with(|_, bytes| {
                let _ = inside.state();
                bytes.to_vec()
            })
        }));
        let said = |panic: Box<dyn std::any::Any + Send>| match panic.downcast::<String>() {
            Ok(text) => Some(*text),
            Err(panic) => panic.downcast::<&str>().ok().map(|text| text.to_string()),
        };
        let _ = done.0.send(read.map(drop).map_err(said));
    });
    let read = done.1.recv_timeout(WAIT).expect("the read deadlocked");
    let text = read.expect_err("the read called the runtime").expect("a panic with a message");
    assert!(text.contains("must not call the runtime"), "{text}");
    assert_eq!(handle.try_receive().unwrap(), 42, "the answer stayed queued");
    pollster::block_on(handle.send(1)).unwrap();
    assert_eq!(pollster::block_on(handle.receive()).unwrap(), 2);
}

/// Polls `future` once, with a waker that does nothing: a receive that waits takes its place
/// in its kernel's line of receives then, deterministically, without a thread.
fn pending_once<F: std::future::Future>(future: std::pin::Pin<&mut F>) -> bool {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    future.poll(&mut context).is_pending()
}

/// `receive_batch_at_least(min, max, timeout)`: a batch waits until `min` answers are there
/// (those there meanwhile stay queued, owed to it: `try_receive` takes none), then takes up to
/// `max`, in order and each once; at its timeout it takes what is there, one or more, and with
/// none it is a `Timeout`. Without `min`, the first poll took the two answers there.
#[test]
fn a_batch_with_a_min_waits_for_that_many_or_its_timeout() {
    use std::pin::pin;
    use std::time::Instant;
    for backend in BACKENDS {
        let rt = common::runtime_on(backend);
        pollster::block_on(async {
            let options = LaunchOptions::default().with_queue_capacity(16).with_auto_activate();
            let h = doubler(&rt, "at-least", options).await;
            let depth = || h.status().unwrap().output_queue_depth;
            h.send_batch(&[1, 2]).await.unwrap();
            common::wait_until("two answers", || depth() == 2);
            let mut batch = pin!(h.receive_batch_at_least(4, 8, Some(WAIT)));
            assert!(pending_once(batch.as_mut()), "{backend:?}: two answers are not four");
            assert_eq!(depth(), 2, "{backend:?}: left queued while it waits");
            assert!(matches!(h.try_receive(), Err(TryReceiveError::Empty(_))), "{backend:?}: owed to the batch");
            h.send_batch(&[3, 4, 5]).await.unwrap();
            let mut got = batch.await.unwrap();
            assert!((4..=5).contains(&got.len()), "{backend:?}: {got:?}");
            got.extend(common::receive_n(&rt, "at-least", 5 - got.len(), WAIT).await);
            assert_eq!(got, [2, 4, 6, 8, 10], "{backend:?}: in order, each once");

            // At the timeout with fewer than `min`: what is there.
            h.send_batch(&[6, 7]).await.unwrap();
            common::wait_until("two answers", || depth() == 2);
            let short = Duration::from_millis(150);
            let started = Instant::now();
            assert_eq!(h.receive_batch_at_least(4, 8, Some(short)).await.unwrap(), [12, 14], "{backend:?}");
            assert!(started.elapsed() >= short, "{backend:?}: it waited for more first");
            // With none there by then: `Timeout`, as a batch without `min`.
            let e = h.receive_batch_at_least(4, 8, Some(Duration::from_millis(20))).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Timeout, "{backend:?}: {e}");
            // `max` still bounds it, the rest left queued; the packed form and the runtime's alike.
            h.send_batch(&[1, 2, 3, 4, 5, 6]).await.unwrap();
            common::wait_until("six answers", || depth() == 6);
            assert_eq!(rt.receive_batch_at_least::<i32>("at-least", 3, 4, Some(WAIT)).await.unwrap(), [2, 4, 6, 8]);
            let untyped = rt.get_kernel("at-least").unwrap();
            let packed = untyped.receive_batch_packed_at_least(2, 2, Some(WAIT)).await.unwrap();
            assert_eq!(bytemuck::cast_slice::<u8, i32>(&packed), [10, 12], "{backend:?}");
            assert_eq!(depth(), 0);
        });
    }
}

/// A batch's `min` as many as the output queue holds is met (the kernel fills its output queue
/// to the brim); more could never be, so it is `OutOfRange` at the call, as are a `min` of 0 and
/// one over `max`, and none of them takes anything.
#[test]
fn a_batch_min_that_could_never_be_met_is_refused_and_takes_nothing() {
    let rt = common::runtime_on(BackendChoice::Cpu);
    pollster::block_on(async {
        let options =
            LaunchOptions::default().with_queue_capacity(16).with_output_queue_capacity(4).with_auto_activate();
        let h = doubler(&rt, "brim", options).await;
        h.send_batch(&[1, 2, 3, 4, 5, 6]).await.unwrap();
        common::wait_until("a full output queue", || h.status().unwrap().output_queue_depth == 4);
        for (min, max, says) in [
            (5, 8, "a receive batch's min of 5 could never be met: kernel 'brim' holds at most 4 answers"),
            (0, 8, "kernel 'brim': a receive batch's min must be at least 1, got 0"),
            (3, 2, "kernel 'brim': a receive batch's min must be at most its max of 2, got 3"),
            (1, 0, "kernel 'brim': a receive batch's max must be at least 1, got 0"),
        ] {
            let e = h.receive_batch_at_least(min, max, None).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::OutOfRange, "{e}");
            assert!(e.to_string().contains(says), "{e}");
            let e = rt.receive_batch_packed_at_least("brim", min, max, Some(WAIT)).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::OutOfRange, "{e}");
        }
        assert_eq!(h.status().unwrap().output_queue_depth, 4, "nothing taken");
        assert_eq!(h.receive_batch_at_least(4, 4, Some(WAIT)).await.unwrap(), [2, 4, 6, 8]);
        assert_eq!(h.receive_batch_at_least(2, 8, Some(WAIT)).await.unwrap(), [10, 12]);
        assert_eq!(rt.telemetry("brim").unwrap().unwrap().errors, 0, "an argument error is not the kernel's");
    });
}

/// A batch waiting for more holds its turn in the line of receives: one made after it waits
/// behind it though answers are there, and takes the next once the batch has taken its own. A
/// batch dropped while it waits takes nothing and hands its turn on.
#[test]
fn a_batch_waiting_for_its_min_holds_its_turn_and_a_dropped_one_takes_nothing() {
    use std::pin::pin;
    for backend in BACKENDS {
        let rt = common::runtime_on(backend);
        pollster::block_on(async {
            let h = doubler(&rt, "turns", LaunchOptions::default().with_auto_activate()).await;
            let depth = || h.status().unwrap().output_queue_depth;
            h.send_batch(&[1, 2]).await.unwrap();
            common::wait_until("two answers", || depth() == 2);
            let mut first = pin!(h.receive_batch_at_least(3, 3, Some(WAIT)));
            assert!(pending_once(first.as_mut()));
            let mut behind = pin!(h.receive_timeout(WAIT));
            assert!(pending_once(behind.as_mut()), "{backend:?}: behind the batch, though answers are there");
            h.send(3).await.unwrap();
            assert_eq!(first.await.unwrap(), [2, 4, 6], "{backend:?}");
            h.send(4).await.unwrap();
            assert_eq!(behind.await.unwrap(), 8, "{backend:?}");

            h.send_batch(&[5, 6]).await.unwrap();
            common::wait_until("two answers", || depth() == 2);
            {
                let mut dropped = pin!(h.receive_batch_at_least(3, 3, None));
                assert!(pending_once(dropped.as_mut()));
            }
            assert_eq!(depth(), 2, "{backend:?}: the dropped batch took nothing");
            assert_eq!(h.receive_batch_at_least(2, 8, Some(WAIT)).await.unwrap(), [10, 12], "{backend:?}");
        });
    }
}

/// A batch waiting for more stops waiting, and takes what is there, once no more will come: its
/// kernel terminated (the next receive is then refused, as ever), or its device was lost (the
/// next receive hears `DeviceLost`; after recovery the kernel answers again).
#[test]
fn a_batch_waiting_for_its_min_takes_what_is_there_once_none_more_will_come() {
    for backend in BACKENDS {
        let rt = common::runtime_on(backend);
        let h = pollster::block_on(doubler(&rt, "ending", LaunchOptions::default().with_auto_activate()));
        pollster::block_on(h.send_batch(&[1, 2, 3])).unwrap();
        common::wait_until("three answers", || h.status().unwrap().output_queue_depth == 3);
        let waiting = {
            let h = h.clone();
            std::thread::spawn(move || pollster::block_on(h.receive_batch_at_least(8, 8, None)))
        };
        std::thread::sleep(Duration::from_millis(100)); // waiting for more
        assert!(!waiting.is_finished(), "{backend:?}");
        pollster::block_on(h.terminate()).unwrap();
        assert_eq!(waiting.join().unwrap().unwrap(), [2, 4, 6], "{backend:?}");
        let e = pollster::block_on(h.receive_timeout(WAIT)).unwrap_err();
        assert_eq!((e.kind(), h.state().unwrap()), (ErrorKind::KernelState, KernelState::Terminated), "{e}");
    }

    let rt = common::runtime_on(BackendChoice::Auto);
    let h = pollster::block_on(doubler(&rt, "lost", LaunchOptions::default().with_auto_activate()));
    pollster::block_on(h.send_batch(&[1, 2])).unwrap();
    common::wait_until("two answers", || h.status().unwrap().output_queue_depth == 2);
    let waiting = {
        let h = h.clone();
        std::thread::spawn(move || pollster::block_on(h.receive_batch_at_least(8, 8, None)))
    };
    std::thread::sleep(Duration::from_millis(100));
    assert!(!waiting.is_finished());
    rt.destroy_device().unwrap();
    assert_eq!(waiting.join().unwrap().unwrap(), [2, 4], "the answers read back before the loss");
    let e = pollster::block_on(h.receive_timeout(WAIT)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DeviceLost, "{e}");
    pollster::block_on(rt.recover()).unwrap();
    pollster::block_on(h.send(5)).unwrap();
    assert_eq!(pollster::block_on(h.receive_batch_at_least(1, 8, Some(WAIT))).unwrap(), [10]);
}

/// `{ x, y }`: the same bytes as [`Yx`] under the other names.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable, ringkernel_web::RingMessage)]
struct Xy {
    x: i32,
    y: i32,
}

/// `{ y, x }`: the messages of the `swapped` kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable, ringkernel_web::RingMessage)]
struct Yx {
    y: i32,
    x: i32,
}

/// [`Xy`] one struct further in, in an array.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable, ringkernel_web::RingMessage)]
struct XyPair {
    n: u32,
    pair: [Xy; 2],
}

/// [`Yx`] one struct further in, in an array: the messages of the `nested-swapped` kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable, ringkernel_web::RingMessage)]
struct YxPair {
    n: u32,
    pair: [Yx; 2],
}

/// A derived `{ val }` where the doubler's messages are `Request { value }`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable, ringkernel_web::RingMessage)]
struct Val {
    val: i32,
}

/// `typed::<In, Out>()` holds a derived struct's field names to the kernel's, nested ones too:
/// `{ x, y }` onto a kernel whose messages are `{ y, x }` has the same bytes, but every `x` sent
/// would arrive as `y` (and the JavaScript side, whose codecs map objects by name, would read
/// the same kernel's answers the other way round). Refused naming the field; a plain `i32`,
/// `u32` or `f32` still stands for any one-field message of its scalar (the doubler's
/// `Response { result }`).
#[test]
fn typed_refuses_fields_of_the_same_bytes_under_other_names() {
    use ringkernel_web::kernel::host;
    use ringkernel_web::message::RingMessage;
    use ringkernel_web::KernelDefinition;
    let rt = common::runtime_on(BackendChoice::Cpu);
    pollster::block_on(async {
        let echo = |id: &str, layout: ringkernel_web::MessageLayout| {
            KernelDefinition::new(id, layout.clone(), layout, "")
                .with_host_handler(host::typed(|m: &Yx, _: &mut [u32]| Some(*m)))
        };
        let swapped = rt.launch_definition(echo("swapped", Yx::layout()), LaunchOptions::default()).await.unwrap();
        let e = swapped.typed::<Xy, Yx>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MessageFormat, "{e}");
        let said = e.to_string();
        assert!(said.ends_with(
            "'handles::Xy.x' is where the kernel's messages (Yx) have `y`: the same bytes under another name, so its \
             value would go to `y`; name the fields as the kernel does"
        ), "{said}");
        let e = swapped.typed::<Yx, Xy>().unwrap_err().to_string();
        assert!(e.contains("handles::Xy.x'") && e.contains("answers (Yx)"), "{e}");
        let typed = swapped.typed::<Yx, Yx>().unwrap();
        typed.activate().await.unwrap();
        assert_eq!(typed.call(Yx { y: 1, x: 2 }, WAIT).await.unwrap(), Yx { y: 1, x: 2 });

        let nested = KernelDefinition::new("nested-swapped", YxPair::layout(), YxPair::layout(), "")
            .with_host_handler(host::typed(|m: &YxPair, _: &mut [u32]| Some(*m)));
        let nested = rt.launch_definition(nested, LaunchOptions::default()).await.unwrap();
        let e = nested.typed::<XyPair, YxPair>().unwrap_err().to_string();
        assert!(e.contains("handles::XyPair.pair[].x'") && e.contains("`y`"), "{e}");
        assert!(nested.typed::<YxPair, YxPair>().is_ok());

        let doubler = rt.launch_as("doubler", "named", LaunchOptions::default()).await.unwrap();
        let e = doubler.typed::<Val, i32>().unwrap_err().to_string();
        assert!(e.contains("handles::Val.val'") && e.contains("`value`"), "{e}");
        assert!(doubler.typed::<i32, i32>().is_ok(), "a plain number is any one-field message of its scalar");
    });
}

//! Concurrency (issue 6), natively: many sender and receiver threads on one kernel, with random
//! deactivate / reactivate toggles from another thread, keep per-sender FIFO and lose nothing;
//! `call`s racing plain sends each get their own answer while the plain answers stay in order.
//!
//! No timeouts decide anything here: receivers stop when the kernel is terminated (terminate
//! drains everything first, and a receive on a terminated kernel with nothing left fails with
//! `KernelStateError`), so a lost message shows up as a missing answer, not as a hang. A thread
//! that fails stops the kernel at once ([`StopOnPanic`]), which releases every other thread.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{all_exactly_once, answer_after, stage_wgsl, InOrder, Increasing, Tagged, TAGGED_FIELDS, TAGGED_NAME};
use futures_util::future::join_all;
use ringkernel_web::kernel;
use ringkernel_web::lifecycle::Action;
use ringkernel_web::{Error, FieldType, KernelDefinition, KernelState, LaunchOptions, MessageLayout, Runtime};

const SEED: u64 = 0x5eed_c0c0;

fn runtime() -> Runtime {
    common::runtime_on(ringkernel_web::BackendChoice::Auto)
}

/// Launches and activates `id`, a one-stage [`Tagged`] kernel (`value * 3 + 1`), with a small
/// queue so senders wait for room and the pump wraps its rings often.
fn start(rt: &Runtime, id: &str, queue_size: usize) {
    let layout = TAGGED_FIELDS
        .iter()
        .fold(MessageLayout::builder(TAGGED_NAME), |b, name| b.field(name, FieldType::U32))
        .build_for::<Tagged>()
        .unwrap();
    kernel::register_or_replace(KernelDefinition::new(id, layout.clone(), layout, &stage_wgsl(0)));
    pollster::block_on(async {
        rt.launch(id, LaunchOptions::default().with_queue_capacity(queue_size)).await.unwrap();
        rt.activate(id).await.unwrap();
    });
}

/// Terminates the kernel at once when the thread holding it panics, so that the other threads
/// (senders waiting for room, receivers waiting for answers, the toggler) fail or finish instead
/// of waiting forever for a thread that is gone.
struct StopOnPanic<'a>(&'a Runtime, &'a str);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = pollster::block_on(self.0.terminate(self.1, Some(Duration::from_millis(0))));
        }
    }
}

/// Sends sender `tag`'s messages `0..count` in order, in random batches of 1..=max_batch, each
/// waiting for room (a paused kernel only delays it).
fn send_sequence(rt: &Runtime, id: &str, tag: u32, count: u32, max_batch: u32) {
    let _stop = StopOnPanic(rt, id);
    let mut rng = fastrand::Rng::with_seed(SEED + u64::from(tag));
    let mut seq = 0;
    pollster::block_on(async {
        while seq < count {
            let end = (seq + rng.u32(1..=max_batch)).min(count);
            let batch: Vec<Tagged> = (seq..end).map(|s| Tagged::new(tag, s)).collect();
            assert_eq!(rt.send_batch(id, &batch, None).await.unwrap(), batch.len(), "a send without timeout takes all");
            seq = end;
        }
    });
}

/// Receives batches of random size until the kernel is terminated and drained, handing each to
/// `check`.
fn receive_until_terminated(rt: &Runtime, id: &str, seed: u64, mut check: impl FnMut(&[Tagged])) {
    let _stop = StopOnPanic(rt, id);
    let mut rng = fastrand::Rng::with_seed(seed);
    pollster::block_on(async {
        loop {
            match rt.receive_batch::<Tagged>(id, rng.usize(1..=100), None).await {
                Ok(answers) => check(&answers),
                Err(Error::KernelState { state: KernelState::Terminated, .. }) => return,
                Err(e) => panic!("receive: {e}"),
            }
        }
    });
}

/// Deactivates and reactivates `id` at random short intervals, at least once and then until
/// `stop`, and leaves it active; returns how many toggles it made.
fn toggle_until(rt: &Runtime, id: &str, stop: &AtomicBool) -> u32 {
    let _stop = StopOnPanic(rt, id);
    let mut rng = fastrand::Rng::with_seed(SEED + 300);
    let mut toggles = 0;
    pollster::block_on(async {
        loop {
            std::thread::sleep(Duration::from_micros(rng.u64(0..2000)));
            rt.deactivate(id).await.unwrap();
            std::thread::sleep(Duration::from_micros(rng.u64(0..2000)));
            rt.reactivate(id).await.unwrap();
            toggles += 2;
            if stop.load(Ordering::SeqCst) {
                return;
            }
        }
    });
    toggles
}

/// Eight sender threads (each its own tagged sequence, in random batches) and four receiver
/// threads share one kernel while a fifth thread toggles it. Each receiver checks per-sender
/// order on its own stream ([`Increasing`]: a receiver takes its batches one after another from
/// the head of the single output queue, so its stream is a subsequence of the global order), and
/// all streams together hold every answer exactly once ([`all_exactly_once`]).
#[test]
fn many_senders_and_receivers_with_toggles_keep_per_sender_fifo_and_lose_nothing() {
    const SENDERS: u32 = 8;
    const RECEIVERS: u64 = 4;
    const PER_SENDER: u32 = 25_000;
    let rt = runtime();
    let id = "conc-fifo";
    start(&rt, id, 512);
    let started = Instant::now();
    let senders_done = AtomicBool::new(false);
    let (receivers, toggles) = std::thread::scope(|s| {
        let _stop = StopOnPanic(&rt, id);
        let receivers: Vec<_> = (0..RECEIVERS)
            .map(|r| {
                let rt = &rt;
                s.spawn(move || {
                    let mut stream = Increasing::new(SENDERS as usize, 1);
                    receive_until_terminated(rt, id, SEED + 100 + r, |answers| stream.check(answers));
                    stream
                })
            })
            .collect();
        let toggler = s.spawn(|| toggle_until(&rt, id, &senders_done));
        let senders: Vec<_> = (0..SENDERS)
            .map(|tag| {
                s.spawn({
                    let rt = &rt;
                    move || send_sequence(rt, id, tag, PER_SENDER, 64)
                })
            })
            .collect();
        for sender in senders {
            sender.join().unwrap();
        }
        senders_done.store(true, Ordering::SeqCst);
        let toggles = toggler.join().unwrap();
        pollster::block_on(rt.terminate(id, Some(Duration::from_millis(60_000)))).unwrap();
        (receivers.into_iter().map(|r| r.join().unwrap()).collect::<Vec<_>>(), toggles)
    });
    let counts: Vec<usize> = receivers.iter().map(|r| r.seen.len()).collect();
    println!(
        "{{\"test\":\"concurrency\",\"senders\":{SENDERS},\"receivers\":{RECEIVERS},\"messages\":{},\"toggles\":{toggles},\
         \"perReceiver\":{counts:?},\"seconds\":{:.2}}}",
        SENDERS * PER_SENDER,
        started.elapsed().as_secs_f64()
    );
    all_exactly_once(&receivers, &[PER_SENDER; SENDERS as usize]);
    let t = rt.telemetry(id).unwrap().unwrap();
    let total = u64::from(SENDERS * PER_SENDER);
    assert_eq!((t.messages_sent, t.messages_processed, t.messages_received), (total, total, total));
    assert_eq!((t.messages_dropped, t.unprocessed_at_termination), (0, 0));
}

/// 100 `call`s (four threads of 25 concurrent futures) race four threads of plain sends on one
/// kernel while it is toggled. Every call resolves with the answer to its own message, and the
/// single receiver sees exactly the plain answers, each sender's in its send order with none
/// missing ([`InOrder`]); call answers (tags 100 and up) never reach it.
#[test]
fn concurrent_calls_mixed_with_plain_sends_get_their_own_answers_and_plain_fifo_holds() {
    const PLAIN_SENDERS: u32 = 4;
    const PER_SENDER: u32 = 5_000;
    const CALL_THREADS: u32 = 4;
    const CALLS_PER_THREAD: u32 = 25;
    let rt = runtime();
    let id = "conc-calls";
    start(&rt, id, 256);
    let started = Instant::now();
    let stop = AtomicBool::new(false);
    let (order, toggles) = std::thread::scope(|s| {
        let _stop = StopOnPanic(&rt, id);
        let receiver = s.spawn(|| {
            let mut order = InOrder::new(PLAIN_SENDERS as usize, 1);
            receive_until_terminated(&rt, id, SEED + 200, |answers| order.check(answers));
            order
        });
        let toggler = s.spawn(|| toggle_until(&rt, id, &stop));
        let senders: Vec<_> = (0..PLAIN_SENDERS)
            .map(|tag| {
                s.spawn({
                    let rt = &rt;
                    move || send_sequence(rt, id, tag, PER_SENDER, 32)
                })
            })
            .collect();
        let callers: Vec<_> = (0..CALL_THREADS)
            .map(|thread| {
                let rt = &rt;
                s.spawn(move || {
                    let _stop = StopOnPanic(rt, id);
                    pollster::block_on(join_all((0..CALLS_PER_THREAD).map(|i| async move {
                        let message = Tagged::new(100 + thread, i);
                        let answer: Tagged =
                            rt.call_pod(id, &message, Some(Duration::from_millis(60_000))).await.unwrap();
                        assert_eq!(answer, answer_after(message, 1), "call {message:?} got someone else's answer");
                    })));
                })
            })
            .collect();
        for thread in senders.into_iter().chain(callers) {
            thread.join().unwrap();
        }
        stop.store(true, Ordering::SeqCst);
        let toggles = toggler.join().unwrap();
        pollster::block_on(rt.terminate(id, Some(Duration::from_millis(60_000)))).unwrap();
        (receiver.join().unwrap(), toggles)
    });
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(order.per_sender(), [PER_SENDER; PLAIN_SENDERS as usize], "every plain answer arrived");
    let (plain, calls) = (u64::from(PLAIN_SENDERS * PER_SENDER), u64::from(CALL_THREADS * CALLS_PER_THREAD));
    let t = rt.telemetry(id).unwrap().unwrap();
    assert_eq!(
        (t.messages_sent, t.messages_processed, t.messages_received),
        (plain + calls, plain + calls, plain + calls)
    );
    assert_eq!((t.answers_abandoned, t.messages_dropped), (0, 0));
    println!(
        "{{\"test\":\"calls-and-sends\",\"calls\":{calls},\"plainMessages\":{plain},\"toggles\":{toggles},\
         \"seconds\":{seconds:.2}}}"
    );
}

/// Waiting receives are answered in the order they began to wait, however they are woken: a
/// receive woken by a send to its kernel (no answer yet) used to wait again behind a receive
/// that came later, which then took the earlier answer. Two receives on a terminated kernel
/// with one answer left: the first takes it, the second hears the end, neither hangs.
#[test]
fn waiting_receives_are_answered_in_the_order_they_began_to_wait() {
    use futures_util::poll;
    use std::pin::pin;
    const WAIT: Option<Duration> = Some(Duration::from_secs(30));
    for backend in [ringkernel_web::BackendChoice::Auto, ringkernel_web::BackendChoice::Cpu] {
        let rt = common::runtime_on(backend);
        pollster::block_on(async {
            let options = LaunchOptions::default().with_queue_capacity(16).with_auto_activate();
            rt.launch("doubler", options).await.unwrap();
            let answered = |n: u64| {
                let deadline = Instant::now() + Duration::from_secs(30);
                while rt.kernel_metrics("doubler").unwrap().messages_processed < n {
                    assert!(Instant::now() < deadline, "{backend:?}: no answer");
                    std::thread::sleep(Duration::from_millis(1));
                }
            };
            let mut first = pin!(rt.receive_pod::<i32>("doubler", WAIT));
            assert!(poll!(first.as_mut()).is_pending());
            rt.send_pod("doubler", &1, WAIT).await.unwrap();
            let mut second = pin!(rt.receive_pod::<i32>("doubler", WAIT));
            assert!(poll!(second.as_mut()).is_pending());
            answered(1);
            // The later receive is polled first: the answer is the earlier one's all the same.
            assert!(poll!(second.as_mut()).is_pending(), "{backend:?}: the later receive waits its turn");
            assert_eq!(first.await.unwrap(), 2, "{backend:?}");
            rt.send_pod("doubler", &2, WAIT).await.unwrap();
            assert_eq!(second.await.unwrap(), 4, "{backend:?}");

            let mut first = pin!(rt.receive_pod::<i32>("doubler", WAIT));
            assert!(poll!(first.as_mut()).is_pending());
            let mut second = pin!(rt.receive_pod::<i32>("doubler", WAIT));
            assert!(poll!(second.as_mut()).is_pending());
            rt.send_pod("doubler", &3, WAIT).await.unwrap();
            rt.terminate("doubler", WAIT).await.unwrap();
            assert!(poll!(second.as_mut()).is_pending(), "{backend:?}: behind the first");
            assert_eq!(first.await.unwrap(), 6, "{backend:?}");
            let end = second.await.unwrap_err();
            assert!(matches!(end, Error::KernelState { state: KernelState::Terminated, .. }), "{backend:?}: {end}");

            // A receive by id that waited on a kernel since removed, and is polled only after
            // its id was launched again, stays with the launch it began on: `KernelNotFound`,
            // and the new kernel's answer is left to its own receives.
            rt.remove("doubler").unwrap();
            rt.launch("doubler", LaunchOptions::default().with_queue_capacity(16)).await.unwrap();
            let mut stale = pin!(rt.receive_pod::<i32>("doubler", Some(Duration::from_secs(5))));
            assert!(poll!(stale.as_mut()).is_pending());
            rt.terminate("doubler", WAIT).await.unwrap();
            rt.remove("doubler").unwrap();
            let options = LaunchOptions::default().with_queue_capacity(16).with_auto_activate();
            rt.launch("doubler", options).await.unwrap();
            rt.send_pod("doubler", &5, WAIT).await.unwrap();
            let gone = stale.await.unwrap_err();
            assert!(matches!(gone, Error::KernelNotFound { .. }), "{backend:?}: {gone}");
            assert_eq!(rt.receive_pod::<i32>("doubler", WAIT).await.unwrap(), 10, "{backend:?}");
        });
    }
}

/// A launch that activates its kernel, and a handle's `activate`, decide under one lock: another
/// thread's `activate` or `deactivate` made meanwhile can neither turn a launch that took place
/// into an error (with the kernel left active and no handle given) nor make a handle's activate
/// refuse a kernel that is deactivated when it looks. Both races were open between two steps
/// natively; each round here gives the other thread a chance to come between them.
#[test]
fn lifecycle_calls_racing_from_another_thread_never_refuse_a_launch_or_a_handles_activate() {
    let rt = common::runtime_on(ringkernel_web::BackendChoice::Cpu);
    let doubler = KernelDefinition::clone(&kernel::lookup("doubler").unwrap());
    let options = LaunchOptions::default().with_queue_capacity(4).with_auto_activate();
    for round in 0..300 {
        let id = format!("race-{round}");
        let launched = AtomicBool::new(false);
        let handle = std::thread::scope(|scope| {
            // Activates until the launch has returned: after the launch it is refused (already
            // active), never the launch itself.
            scope.spawn(|| {
                while !launched.load(Ordering::Acquire) {
                    let _ = pollster::block_on(rt.activate(&id));
                }
            });
            let handle = pollster::block_on(rt.launch_definition(doubler.clone().with_id(&id), options.clone()));
            launched.store(true, Ordering::Release);
            handle
        });
        handle.unwrap_or_else(|e| panic!("round {round}: the launch took place yet failed: {e}"));
        assert_eq!(rt.state(&id).unwrap(), KernelState::Active);
        pollster::block_on(rt.terminate(&id, Some(Duration::from_secs(5)))).unwrap();
        rt.remove(&id).unwrap();
    }

    let handle = pollster::block_on(rt.launch_definition(doubler.with_id("toggled"), options)).unwrap();
    let stop = AtomicBool::new(false);
    let refused_deactivated = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let _ = pollster::block_on(rt.deactivate("toggled"));
            }
        });
        let refused = (0..20_000)
            .filter(|_| {
                let outcome = pollster::block_on(handle.activate());
                matches!(outcome, Err(Error::KernelState { state: KernelState::Deactivated, .. }))
            })
            .count();
        stop.store(true, Ordering::Relaxed);
        refused
    });
    assert_eq!(refused_deactivated, 0, "a handle's activate refused a deactivated kernel");
}

/// Ending a kernel that another caller ends or removes meanwhile is no failure: `terminate_if_live`,
/// `terminate_all` and a managed kernel's end decided by a look at the state before they acted,
/// and refused when the look was overtaken.
#[test]
fn ending_a_kernel_another_caller_ends_or_removes_meanwhile_is_no_failure() {
    const T: Option<Duration> = Some(Duration::from_secs(5));
    let rt = common::runtime_on(ringkernel_web::BackendChoice::Cpu);
    // A managed kernel whose body ended it itself (no race needed).
    let ended_in_body = pollster::block_on(rt.managed_kernel("doubler", LaunchOptions::default(), |id| {
        let rt = rt.clone();
        async move {
            rt.terminate(&id, T).await?;
            Ok(5)
        }
    }));
    assert_eq!(ended_in_body, Ok(5));
    rt.remove("doubler").unwrap();
    let options = LaunchOptions::default().with_queue_capacity(4).with_auto_activate();
    for round in 0..300 {
        pollster::block_on(rt.launch("doubler", options.clone())).unwrap();
        let (if_live, all) = std::thread::scope(|scope| {
            let if_live = scope.spawn(|| pollster::block_on(rt.terminate_if_live("doubler", T)));
            let all = scope.spawn(|| pollster::block_on(rt.terminate_all(T)));
            // Ends it and removes it, as soon as it can.
            let _ = pollster::block_on(rt.terminate("doubler", T));
            while rt.remove("doubler").is_err() && rt.state("doubler").is_ok() {
                std::thread::yield_now();
            }
            (if_live.join().unwrap(), all.join().unwrap())
        });
        assert_eq!((round, if_live, all), (round, Ok(()), Ok(())));
        let _ = rt.remove("doubler");
    }
}

/// A kernel's scope that ends after the runtime was disposed of (by the body, or by a shutdown
/// elsewhere while the body ran) is no failure: the dispose ended the kernel.
#[test]
fn a_scope_ending_after_the_runtime_was_disposed_of_is_no_failure() {
    let rt = common::runtime_on(ringkernel_web::BackendChoice::Cpu);
    let disposed_in_body = pollster::block_on(rt.managed_kernel("doubler", LaunchOptions::default(), |_| {
        let rt = rt.clone();
        async move {
            rt.dispose().await?;
            Ok(5)
        }
    }));
    assert_eq!(disposed_in_body, Ok(5));
    assert_eq!(pollster::block_on(rt.terminate_if_live("doubler", None)), Ok(()));
    // A plain terminate still says why it did nothing.
    assert_eq!(pollster::block_on(rt.terminate("doubler", None)), Err(Error::Disposed));
}

/// A terminate that joined another's drain, and a handle's operations, reach only the launch
/// they began on: with the kernel removed and launched again under its id by another thread
/// meanwhile, the terminate ends as the drain did (not on the new launch, nor with its state),
/// a handle's sends and lifecycle calls never reach the new launch, and `wait` returns.
#[test]
fn a_removed_launchs_terminate_and_handles_never_reach_the_kernel_launched_again_under_its_id() {
    let rt = common::runtime_on(ringkernel_web::BackendChoice::Cpu);
    let slow = KernelDefinition::new("slow-doubler", kernel::doubler_request(), kernel::doubler_response(), "")
        .with_host_handler(kernel::host::typed(|value: &i32, _: &mut [u32]| {
            std::thread::sleep(Duration::from_micros(500));
            Some(value * 2)
        }));
    let launch = |options: LaunchOptions| pollster::block_on(rt.launch_definition(slow.clone(), options)).unwrap();
    for round in 0..100 {
        let first = launch(LaunchOptions::default().with_queue_capacity(64).with_auto_activate());
        pollster::block_on(rt.send_batch("slow-doubler", &[1i32; 16], None)).unwrap();
        let outcomes = std::thread::scope(|scope| {
            let terminates: Vec<_> = (0..2)
                .map(|_| scope.spawn(|| pollster::block_on(first.terminate_timeout(Duration::from_secs(10)))))
                .collect();
            while rt.remove("slow-doubler").is_err() {
                std::thread::yield_now();
            }
            let again = launch(LaunchOptions::default().with_queue_capacity(64));
            pollster::block_on(again.typed::<i32, i32>().unwrap().send(7)).unwrap();
            terminates.into_iter().map(|t| t.join().unwrap()).collect::<Vec<_>>()
        });
        // Each ends as the drain did; one that began only after it ended (its thread started
        // late) is refused as terminated, as the lifecycle says, or, after the remove, as not
        // found. Neither may reach the new launch.
        for outcome in outcomes {
            let joined_or_late = matches!(
                outcome,
                Ok(())
                    | Err(Error::KernelState { state: KernelState::Terminated, action: Action::Terminate, .. })
                    | Err(Error::KernelNotFound { .. })
            );
            assert!(joined_or_late, "round {round}: {outcome:?}");
        }
        assert_eq!(
            rt.state("slow-doubler").unwrap(),
            KernelState::Launched,
            "round {round}: the new launch was reached"
        );
        pollster::block_on(rt.terminate("slow-doubler", Some(Duration::from_secs(10)))).unwrap();
        rt.remove("slow-doubler").unwrap();
    }

    let options = LaunchOptions::default().with_queue_capacity(16).with_auto_activate();
    for round in 0..300 {
        let old = pollster::block_on(rt.launch("doubler", options.clone())).unwrap().typed::<i32, i32>().unwrap();
        let stop = AtomicBool::new(false);
        let (again, waited) = std::thread::scope(|scope| {
            let user = scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let _ = old.try_send(-1);
                    let _ = pollster::block_on(old.deactivate());
                }
            });
            // Not scoped: a wait that never returns fails the test rather than hanging it.
            let (done, waited) = std::sync::mpsc::channel();
            let waiting = old.clone();
            std::thread::spawn(move || done.send(pollster::block_on(waiting.wait())));
            pollster::block_on(rt.terminate("doubler", Some(Duration::ZERO))).ok();
            rt.remove("doubler").unwrap();
            let again = pollster::block_on(rt.launch("doubler", options.clone())).unwrap();
            std::thread::sleep(Duration::from_micros(200));
            stop.store(true, Ordering::Relaxed);
            user.join().unwrap();
            (again, waited.recv_timeout(Duration::from_secs(10)))
        });
        assert_eq!(waited, Ok(Ok(())), "round {round}: the old handle's wait");
        let status = again.status().unwrap();
        assert_eq!((round, status.state, again.metrics().unwrap().messages_sent), (round, KernelState::Active, 0));
        pollster::block_on(rt.terminate("doubler", Some(Duration::from_secs(5)))).unwrap();
        rt.remove("doubler").unwrap();
    }
}

/// `migrate_kernel(id, source, target)` moves only a kernel on `source` when its move begins:
/// of two racing moves off device 0, the second finds it gone from there.
#[test]
fn a_migration_from_a_source_the_kernel_left_meanwhile_is_refused() {
    use ringkernel_web::{DeviceId, DeviceSpec, RuntimeOptions};
    let options = RuntimeOptions::default().with_backend(ringkernel_web::BackendChoice::Cpu).with_devices([
        DeviceSpec::default(),
        DeviceSpec::default(),
        DeviceSpec::default(),
    ]);
    let rt = pollster::block_on(Runtime::new(options)).unwrap();
    let migrator = &rt.kernel_migrator();
    for round in 0..200 {
        let launch = LaunchOptions::default().on_device(DeviceId(0)).with_auto_activate();
        pollster::block_on(rt.launch("doubler", launch)).unwrap();
        let reports = std::thread::scope(|scope| {
            let moves: Vec<_> = [1, 2]
                .map(|to| {
                    scope.spawn(move || {
                        pollster::block_on(migrator.migrate_kernel("doubler", DeviceId(0), DeviceId(to)))
                    })
                })
                .into_iter()
                .collect();
            moves.into_iter().map(|m| m.join().unwrap()).collect::<Vec<_>>()
        });
        let moved: Vec<_> = reports.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(moved.len(), 1, "round {round}: {reports:?}");
        assert_eq!(moved[0].from, DeviceId(0), "round {round}: {reports:?}");
        assert!(reports.iter().any(|r| matches!(r, Err(Error::InvalidArgument(_)))), "round {round}: {reports:?}");
        pollster::block_on(rt.terminate("doubler", Some(Duration::from_secs(5)))).unwrap();
        rt.remove("doubler").unwrap();
    }
}

/// About 1.2 million atomic adds per message: a tick of [`SLOW_BATCH`] messages runs for a
/// few hundred ms on lavapipe, far longer than a caller may hold its thread.
const SLOW_HANDLER: &str = "fn handle(msg: Request) -> Response {
    var x = msg.value;
    for (var i = 0; i < 60000; i++) {
        for (var j = 0; j < 20; j++) { x += atomicAdd(&state[(u32(i) + u32(j)) % 64u], 1); }
    }
    return Response(x);
}";
const SLOW_BATCH: usize = 20;

/// A waiting `receive` runs its device's tick on its own thread (no hop to the tick loop), but
/// a slow handler's tick held it, an executor's thread perhaps, for the whole tick: past the
/// receive's own timeout, which then failed with `Timeout` although its tick had delivered the
/// answers. Now what a receive's tick delivered is taken however long it ran, and after one slow
/// tick callers leave the ticks to the loop: a poll of the next receives returns at once.
#[test]
fn a_slow_handler_holds_a_waiting_caller_for_one_tick_at_most_and_its_answers_beat_the_timeout() {
    let rt = runtime();
    let definition = KernelDefinition::new("slow", kernel::doubler_request(), kernel::doubler_response(), SLOW_HANDLER)
        .with_state(ringkernel_web::StateElement::AtomicI32, 64);
    pollster::block_on(async {
        rt.launch_definition(definition, LaunchOptions::default().with_auto_activate()).await.unwrap();
        let values: Vec<i32> = (0..SLOW_BATCH as i32).collect();
        let short = Some(Duration::from_millis(20));
        let wait = Some(Duration::from_secs(60));
        let receive_rest = async |mut answered: usize| {
            while answered < SLOW_BATCH {
                answered += rt.receive_batch::<i32>("slow", SLOW_BATCH - answered, wait).await.unwrap().len();
            }
        };
        // The first slow tick: run by this receive (then it takes the answers, not `Timeout`),
        // or by the loop (then the receive times out while the tick runs).
        rt.send_batch("slow", &values, wait).await.unwrap();
        let started = Instant::now();
        let first = rt.receive_batch::<i32>("slow", SLOW_BATCH, short).await;
        let waited = started.elapsed();
        let (answered, timed_out) = match first {
            Ok(answers) => (answers.len(), None),
            Err(error) => (0, Some(error)),
        };
        receive_rest(answered).await;
        let started = Instant::now();
        rt.send_batch("slow", &values, wait).await.unwrap();
        receive_rest(0).await;
        let tick = started.elapsed();
        if tick < Duration::from_millis(50) {
            eprintln!("skipped: {SLOW_BATCH} slow messages took {tick:?} here, not a slow tick");
            return;
        }
        if let Some(error) = timed_out {
            assert!(waited < tick / 2, "timed out after {waited:?} (a tick takes {tick:?}): {error}");
        }
        for round in 0..3 {
            rt.send_batch("slow", &values, wait).await.unwrap();
            let mut receive = std::pin::pin!(rt.receive_batch::<i32>("slow", SLOW_BATCH, short));
            let polled = Instant::now();
            let mut context = std::task::Context::from_waker(std::task::Waker::noop());
            let first_poll = receive.as_mut().poll(&mut context);
            let held = polled.elapsed();
            assert!(
                first_poll.is_pending() && held < tick / 4,
                "round {round}: the first poll held the caller {held:?} (a tick takes {tick:?})"
            );
            receive_rest(receive.await.map_or(0, |answers| answers.len())).await;
        }
        rt.dispose().await.unwrap();
    });
}

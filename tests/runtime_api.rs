//! The whole RingKernelRuntime API natively, on a real adapter (lavapipe without a GPU): the
//! seeds' three usage examples, the lifecycle matrix, every error name, backpressure,
//! timeouts, correlation under concurrent calls, and telemetry that matches what was sent.
#![cfg(not(target_arch = "wasm32"))]

use std::pin::pin;
use std::task::Poll;
use std::time::Duration;
use std::time::Instant;

use futures_util::future::join_all;
use futures_util::poll;
use ringkernel_web::kernel::{self, doubler_request, doubler_response};
use ringkernel_web::lifecycle::Action;
use ringkernel_web::{
    BackendChoice, EnvelopeHeader, Error, ErrorKind, KernelDefinition, KernelMode, KernelState, LaunchOptions,
    MessageLayout, MessageRef, Runtime, RuntimeBuilder, RuntimeOptions, Stall, Value,
};

fn runtime() -> Runtime {
    runtime_with(RuntimeOptions::default())
}

fn runtime_with(options: RuntimeOptions) -> Runtime {
    pollster::block_on(Runtime::new(options))
        .unwrap_or_else(|e| panic!("these tests need a wgpu adapter (install mesa-vulkan-drivers for lavapipe): {e}"))
}

fn queue(size: usize) -> LaunchOptions {
    LaunchOptions::default().with_queue_capacity(size)
}

/// A user kernel like the seeds' `worker`: adds 1000, so answers are told apart from doubler's.
fn register_worker(id: &str) {
    kernel::register_or_replace(KernelDefinition::new(
        id,
        doubler_request(),
        doubler_response(),
        "fn handle(msg: Request) -> Response { return Response(msg.value + 1000); }",
    ));
}

fn assert_state_error(result: Result<(), Error>, id: &str, state: KernelState, action: Action) {
    assert!(
        matches!(&result, Err(Error::KernelState { id: i, state: s, action: a, .. }) if i == id && *s == state && *a == action),
        "{id}: {state} must refuse {action}: {result:?}"
    );
}

// ---- the seeds' usage examples (RingKernelRuntime reference page), ported ----

#[test]
fn seed_example_complete_lifecycle() {
    let rt = runtime_with(RuntimeOptions::default().with_telemetry(true));
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default()).await.unwrap(); // phase 1: allocate
        rt.activate("doubler").await.unwrap(); // phase 2: start processing
        rt.send("doubler", &[("value", Value::from(21))], None).await.unwrap();
        let response = rt.receive("doubler", Some(Duration::from_millis(1000))).await.unwrap();
        assert_eq!(response, vec![("result".to_owned(), Value::I32(42))]);
        let telemetry = rt.telemetry("doubler").unwrap().expect("telemetry enabled");
        assert_eq!(telemetry.messages_processed, 1);
        rt.dispose().await.unwrap(); // the seeds' `async with` exit terminates everything
        assert!(matches!(rt.state("doubler"), Ok(KernelState::Terminated)));
    });
}

#[test]
fn seed_example_multiple_kernels() {
    for id in ["processor1", "processor2", "aggregator"] {
        register_worker(id);
    }
    let rt = runtime();
    pollster::block_on(async {
        rt.launch("processor1", LaunchOptions::default()).await.unwrap();
        rt.launch("processor2", LaunchOptions::default()).await.unwrap();
        rt.launch("aggregator", LaunchOptions::default()).await.unwrap();
        for id in rt.kernel_ids() {
            rt.activate(&id).await.unwrap();
        }
        assert_eq!(rt.active_kernels(), ["aggregator", "processor1", "processor2"]);
        // Use the pipeline: both processors feed the aggregator through the host.
        let a: i32 = rt.call_pod("processor1", &1, Some(Duration::from_millis(5000))).await.unwrap();
        let b: i32 = rt.call_pod("processor2", &2, Some(Duration::from_millis(5000))).await.unwrap();
        let total: i32 = rt.call_pod("aggregator", &(a + b), Some(Duration::from_millis(5000))).await.unwrap();
        assert_eq!(total, 1001 + 1002 + 1000);
        rt.terminate_all(Some(Duration::from_millis(5000))).await.unwrap();
        assert!(rt.active_kernels().is_empty());
    });
}

#[test]
fn seed_example_pause_and_resume() {
    register_worker("worker");
    let rt = runtime();
    pollster::block_on(async {
        rt.launch("worker", LaunchOptions::default()).await.unwrap();
        rt.activate("worker").await.unwrap();
        for v in 0..10 {
            rt.send_pod("worker", &v, None).await.unwrap(); // batch 1
        }
        rt.deactivate("worker").await.unwrap(); // pause for maintenance
        assert_eq!(rt.state("worker").unwrap(), KernelState::Deactivated);
        for v in 10..20 {
            rt.send_pod("worker", &v, None).await.unwrap(); // batch 2 queues up
        }
        rt.reactivate("worker").await.unwrap(); // resume: batch 2 is processed, in order
        assert_eq!(rt.state("worker").unwrap(), KernelState::Active);
        let answers: Vec<i32> = rt_receive_n(&rt, "worker", 20).await;
        assert_eq!(answers, (1000..1020).collect::<Vec<_>>());
    });
}

async fn rt_receive_n(rt: &Runtime, id: &str, n: usize) -> Vec<i32> {
    let mut answers = Vec::new();
    while answers.len() < n {
        answers
            .extend(rt.receive_batch::<i32>(id, n - answers.len(), Some(Duration::from_millis(10_000))).await.unwrap());
    }
    answers
}

// ---- lifecycle ----

/// Every state against every operation, on real kernels. A kernel is held in `created` by
/// polling its launch once (it compiles on a helper thread) and in `terminating` by polling
/// its terminate once while a queued message still has to drain. Both are races against
/// another thread (the compiler, the pump), which a loaded machine can lose by descheduling
/// the test mid-poll; such an attempt shows nothing, so it is set up again under a fresh id,
/// at most `ATTEMPTS` times, and the held kernel gets the same assertions.
#[test]
fn lifecycle_matrix_on_real_kernels() {
    const ATTEMPTS: usize = 20;
    let rt = runtime();
    let actions = [Action::Launch, Action::Activate, Action::Deactivate, Action::Reactivate, Action::Terminate];
    let register = |id: &str| kernel::register_or_replace((*kernel::lookup("doubler").unwrap()).clone().with_id(id));
    pollster::block_on(async {
        let mut reached = std::collections::BTreeSet::new();
        // `Failed` needs a lost device, which fails every kernel of a runtime: tests/recovery.rs
        // walks its row of the table.
        for from in KernelState::ALL.into_iter().filter(|s| *s != KernelState::Failed) {
            for action in actions {
                let base = format!("m-{from}-{action}");
                let (id, result) = match from {
                    KernelState::Created => {
                        let mut attempt = 0;
                        loop {
                            let id = format!("{base}-{attempt}");
                            register(&id);
                            let mut launch = pin!(rt.launch(&id, LaunchOptions::default()));
                            if let Poll::Ready(done) = poll!(launch.as_mut()) {
                                done.unwrap(); // finished before the first poll returned: try again
                            } else {
                                assert_eq!(rt.state(&id).unwrap(), KernelState::Created);
                                let result = apply(&rt, &id, action).await;
                                launch.await.unwrap();
                                break (id.clone(), result);
                            }
                            attempt += 1;
                            assert!(attempt < ATTEMPTS, "never caught a launch still compiling");
                        }
                    }
                    KernelState::Terminating => {
                        let mut attempt = 0;
                        loop {
                            let id = format!("{base}-{attempt}");
                            register(&id);
                            drive(&rt, &id, KernelState::Deactivated).await;
                            rt.send_pod(&id, &1, None).await.unwrap();
                            let mut terminate = pin!(rt.terminate(&id, Some(Duration::from_millis(10_000))));
                            if let Poll::Ready(done) = poll!(terminate.as_mut()) {
                                done.unwrap(); // finished before the first poll returned: try again
                            } else {
                                assert_eq!(rt.state(&id).unwrap(), KernelState::Terminating);
                                let result = apply(&rt, &id, action).await;
                                terminate.await.unwrap();
                                break (id.clone(), result);
                            }
                            attempt += 1;
                            assert!(attempt < ATTEMPTS, "never caught a terminate still draining");
                        }
                    }
                    _ => {
                        register(&base);
                        drive(&rt, &base, from).await;
                        let result = apply(&rt, &base, action).await;
                        (base, result)
                    }
                };
                // A terminate while one is under way waits with it, and ends with the drain.
                if (from, action) == (KernelState::Terminating, Action::Terminate) {
                    result.unwrap_or_else(|e| panic!("a second terminate joins the first: {e}"));
                    assert_eq!(rt.state(&id).unwrap(), KernelState::Terminated);
                    continue;
                }
                // A second launch of a live id is always refused; otherwise the seeds' table.
                let expected = if action == Action::Launch { None } else { from.next(action) };
                match expected {
                    Some(to) => {
                        result.unwrap_or_else(|e| panic!("{from} --{action}--> should work: {e}"));
                        let now = rt.state(&id).unwrap();
                        // Terminating finishes on its own once drained.
                        let settled = if to == KernelState::Terminating { KernelState::Terminated } else { to };
                        assert_eq!(now, settled, "{from} --{action}-->");
                        reached.insert((from, to));
                    }
                    None => assert_state_error(result, &id, from, action),
                }
            }
        }
        let legal: std::collections::BTreeSet<_> = [
            (KernelState::Launched, KernelState::Active),
            (KernelState::Active, KernelState::Deactivated),
            (KernelState::Deactivated, KernelState::Active),
            (KernelState::Launched, KernelState::Terminating),
            (KernelState::Active, KernelState::Terminating),
            (KernelState::Deactivated, KernelState::Terminating),
        ]
        .into();
        assert_eq!(reached, legal, "every user-driven edge of the table, and no other");
    });
}

async fn apply(rt: &Runtime, id: &str, action: Action) -> Result<(), Error> {
    match action {
        Action::Launch => rt.launch(id, LaunchOptions::default()).await.map(drop),
        Action::Activate => rt.activate(id).await,
        Action::Deactivate => rt.deactivate(id).await,
        Action::Reactivate => rt.reactivate(id).await,
        Action::Terminate => rt.terminate(id, Some(Duration::from_millis(10_000))).await,
        other => unreachable!("{other} is not a user action"),
    }
}

/// Launches `id` and walks it to `state` (one of the stable states).
async fn drive(rt: &Runtime, id: &str, state: KernelState) {
    rt.launch(id, LaunchOptions::default()).await.unwrap();
    let path: &[Action] = match state {
        KernelState::Launched => &[],
        KernelState::Active => &[Action::Activate],
        KernelState::Deactivated => &[Action::Activate, Action::Deactivate],
        KernelState::Terminated => &[Action::Terminate],
        other => unreachable!("{other} is transient"),
    };
    for action in path {
        apply(rt, id, *action).await.unwrap();
    }
    assert_eq!(rt.state(id).unwrap(), state);
}

#[test]
fn terminated_kernels_do_not_restart_until_removed() {
    let rt = runtime();
    pollster::block_on(async {
        drive(&rt, "doubler", KernelState::Terminated).await;
        assert_state_error(rt.activate("doubler").await, "doubler", KernelState::Terminated, Action::Activate);
        assert_state_error(
            rt.launch("doubler", LaunchOptions::default()).await.map(drop),
            "doubler",
            KernelState::Terminated,
            Action::Launch,
        );
        let sent = rt.send_pod("doubler", &1, None).await;
        assert_state_error(sent, "doubler", KernelState::Terminated, Action::Send);
        rt.remove("doubler").unwrap();
        assert!(matches!(rt.state("doubler"), Err(Error::KernelNotFound { .. })));
        rt.launch("doubler", LaunchOptions::default()).await.unwrap();
        rt.activate("doubler").await.unwrap();
        assert_eq!(rt.call_pod::<i32, i32>("doubler", &5, Some(Duration::from_millis(5000))).await.unwrap(), 10);
        // Only terminated kernels can be removed.
        assert_state_error(rt.remove("doubler").map(drop), "doubler", KernelState::Active, Action::Remove);
    });
}

#[test]
fn terminate_drains_queued_messages_of_a_paused_kernel() {
    let rt = runtime();
    pollster::block_on(async {
        // Queue 2: the answers exceed the output bound while draining and are kept anyway.
        rt.launch("doubler", queue(2)).await.unwrap();
        rt.activate("doubler").await.unwrap();
        rt.deactivate("doubler").await.unwrap();
        rt.send_batch("doubler", &[1i32, 2], None).await.unwrap();
        rt.terminate("doubler", Some(Duration::from_millis(10_000))).await.unwrap();
        assert_eq!(rt.state("doubler").unwrap(), KernelState::Terminated);
        assert_eq!(rt_receive_n(&rt, "doubler", 2).await, [2, 4], "answers stay receivable after termination");
        let t = rt.telemetry("doubler").unwrap().unwrap();
        assert_eq!((t.messages_processed, t.unprocessed_at_termination), (2, 0));
        let e = rt.receive("doubler", Some(Duration::from_millis(100))).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KernelState, "nothing more will come: {e}");
    });
}

#[test]
fn terminate_past_its_timeout_reports_what_was_left() {
    // A kernel that takes 300 ms a message, one message a tick (a host handler on the cpu
    // backend), so the 4 messages cannot all be processed before a 0 ms terminate looks, however
    // the tick thread and this one are scheduled (a doubler on lavapipe could finish them while
    // this thread was preempted on a loaded machine).
    kernel::register_or_replace(
        KernelDefinition::new("sluggish", doubler_request(), doubler_response(), "").with_host_handler(
            kernel::host::typed(|v: &i32, _: &mut [u32]| {
                std::thread::sleep(Duration::from_millis(300));
                Some(v * 2)
            }),
        ),
    );
    let rt = runtime_with(RuntimeOptions::default().with_backend(BackendChoice::Cpu));
    pollster::block_on(async {
        rt.launch("sluggish", LaunchOptions::default().with_max_batch(1)).await.unwrap();
        rt.send_batch("sluggish", &[1i32, 2, 3], None).await.unwrap();
        let waiting_call = rt.call_pod::<i32, i32>("sluggish", &4, None);
        let terminate = rt.terminate("sluggish", Some(Duration::from_millis(0)));
        let (call, terminate) = futures_util::join!(waiting_call, terminate);
        let e = terminate.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert!(e.to_string().contains("4 messages left unprocessed"), "{e}");
        assert_eq!(rt.telemetry("sluggish").unwrap().unwrap().unprocessed_at_termination, 4);
        assert_eq!(rt.summary().per_kernel["sluggish"].unprocessed_at_termination, 4);
        let call = call.unwrap_err();
        assert_eq!(call.kind(), ErrorKind::KernelState, "the call learns its kernel stopped: {call}");
    });
}

#[test]
fn managed_kernel_terminates_on_exit_even_after_an_error() {
    let rt = runtime();
    pollster::block_on(async {
        let answer = rt
            .managed_kernel("doubler", LaunchOptions::default(), |id| {
                let rt = &rt;
                async move {
                    assert_eq!(rt.state(&id)?, KernelState::Active);
                    rt.call_pod::<i32, i32>(&id, &21, Some(Duration::from_millis(5000))).await
                }
            })
            .await
            .unwrap();
        assert_eq!(answer, 42);
        assert_eq!(rt.state("doubler").unwrap(), KernelState::Terminated);
        register_worker("managed-worker");
        let failed: Result<(), Error> = rt
            .managed_kernel("managed-worker", LaunchOptions::default(), |id| {
                let rt = &rt;
                async move { rt.receive(&id, Some(Duration::from_millis(10))).await.map(|_| ()) }
            })
            .await;
        assert_eq!(failed.unwrap_err().kind(), ErrorKind::Timeout);
        assert_eq!(rt.state("managed-worker").unwrap(), KernelState::Terminated);
    });
}

#[test]
fn launch_mode_is_recorded() {
    let rt = runtime();
    pollster::block_on(async {
        let options = LaunchOptions::default().with_mode(KernelMode::EventDriven);
        rt.launch("doubler", options).await.unwrap();
        rt.activate("doubler").await.unwrap();
        assert_eq!(rt.mode("doubler").unwrap(), KernelMode::EventDriven);
        assert_eq!(rt.call_pod::<i32, i32>("doubler", &4, Some(Duration::from_millis(5000))).await.unwrap(), 8);
        assert!(rt.metrics_text().contains("mode=\"event-driven\""));
    });
}

// ---- messages ----

#[test]
fn malformed_messages_name_the_field_and_reach_nothing() {
    let rt = runtime();
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default()).await.unwrap();
        let cases: &[(&[(&str, Value)], &str)] = &[
            (&[], "value"),                                                     // missing
            (&[("value", Value::from(1)), ("extra", Value::from(2))], "extra"), // extra
            (&[("value", Value::List(vec![1.0]))], "value"),                    // wrong type
            (&[("value", Value::from(1.5))], "value"),                          // not an integer
            (&[("value", Value::from(2_147_483_648.0))], "value"),              // out of range
        ];
        for (fields, field) in cases {
            match rt.send("doubler", fields, None).await {
                Err(Error::MessageFormat { field: named, .. }) => assert_eq!(named, *field),
                other => panic!("{fields:?} should be refused for '{field}': {other:?}"),
            }
        }
        let t = rt.telemetry("doubler").unwrap().unwrap();
        assert_eq!((t.messages_sent, t.input_queue_depth, t.errors), (0, 0, cases.len() as u64));
    });
}

/// A batch cut off part way by a terminate says how many of its messages went in, through the
/// id-based calls as through typed handles: those are answered, the rest were never queued.
#[test]
fn a_batch_cut_off_by_a_terminate_says_how_many_went_in() {
    let rt = runtime();
    pollster::block_on(async {
        rt.launch("doubler", queue(4)).await.unwrap(); // launched, not active: nothing drains
        let batch: Vec<i32> = (1..=10).collect();
        let terminate = async {
            futures_timer::Delay::new(Duration::from_millis(50)).await;
            rt.terminate("doubler", Some(Duration::from_secs(10))).await
        };
        let (sent, terminated) = futures_util::future::join(rt.send_batch("doubler", &batch, None), terminate).await;
        terminated.unwrap();
        let cut = sent.unwrap_err();
        assert_eq!(cut.error.kind(), ErrorKind::KernelState, "{cut}");
        assert!(
            cut.to_string().starts_with("the first 4 messages of the batch were queued, the rest not: kernel"),
            "{cut}"
        );
        let answers = rt.receive_batch::<i32>("doubler", 10, Some(Duration::ZERO)).await.unwrap_or_default();
        assert_eq!(answers, [2, 4, 6, 8], "the 4 queued are answered, once, in order");
    });
}

#[test]
fn a_full_queue_waits_then_refuses_and_keeps_what_it_accepted() {
    let rt = runtime();
    pollster::block_on(async {
        rt.launch("doubler", queue(4)).await.unwrap(); // launched, not active: nothing drains
        let partial = rt.send_batch("doubler", &[1i32, 2, 3, 4, 5, 6], Some(Duration::from_millis(0))).await;
        // The kernel itself is why its queue does not drain, and the error says so.
        let stall = Some(Stall::Inactive(KernelState::Launched));
        let cut = partial.unwrap_err();
        assert_eq!(cut.accepted, 4, "only room for 4");
        let full = |e: &Error, n| matches!(e, Error::QueueFull { id, capacity: 4, accepted, stall: s, .. } if id == "doubler" && *accepted == n && *s == stall);
        assert!(full(&cut.error, 4), "{:?}", cut.error);
        let started = Instant::now();
        let e = rt.send_pod("doubler", &7, Some(Duration::from_millis(150))).await.unwrap_err();
        assert!(full(&e, 0), "{e:?}");
        assert!(e.to_string().ends_with("; the kernel processes nothing while it is launched, not active"), "{e}");
        let e = rt.receive("doubler", Some(Duration::from_millis(1))).await.unwrap_err();
        assert!(e.to_string().ends_with("while it is launched, not active"), "a receive says why nothing came: {e}");
        assert!(started.elapsed().as_millis() >= 140, "send waited for room before refusing");
        // A send that waits is admitted as soon as room appears.
        let waiting = rt.send_pod("doubler", &5, Some(Duration::from_millis(10_000)));
        let drain = async {
            rt.activate("doubler").await.unwrap();
            rt_receive_n(&rt, "doubler", 4).await
        };
        let (sent, first) = futures_util::join!(waiting, drain);
        sent.unwrap();
        assert_eq!(first, [2, 4, 6, 8]);
        assert_eq!(rt_receive_n(&rt, "doubler", 1).await, [10]);
        let t = rt.telemetry("doubler").unwrap().unwrap();
        // Two refusals: the batch cut short and the single send.
        assert_eq!((t.messages_sent, t.messages_processed, t.errors), (5, 5, 2));
    });
}

#[test]
fn receive_times_out_or_waits_as_asked() {
    let rt = runtime();
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default()).await.unwrap();
        rt.activate("doubler").await.unwrap();
        let started = Instant::now();
        let e = rt.receive("doubler", Some(Duration::from_millis(100))).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert!(started.elapsed().as_millis() >= 95);
        // Without a timeout, receive waits until an answer exists.
        let late_send = async {
            futures_timer::Delay::new(std::time::Duration::from_millis(50)).await;
            rt.send_pod("doubler", &8, None).await.unwrap();
        };
        let (answer, ()) = futures_util::join!(rt.receive_pod::<i32>("doubler", None), late_send);
        assert_eq!(answer.unwrap(), 16);
        let e = rt.call_pod::<i32, i32>("missing", &1, Some(Duration::from_millis(10))).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KernelNotFound);
    });
}

#[test]
fn a_call_that_times_out_loses_nothing_else() {
    let rt = runtime();
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default()).await.unwrap(); // not active yet
        let e = rt.call_pod::<i32, i32>("doubler", &1, Some(Duration::from_millis(50))).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        rt.send_pod("doubler", &2, None).await.unwrap();
        rt.activate("doubler").await.unwrap();
        // The timed-out call's message is still processed; its answer does not leak into receive.
        assert_eq!(rt.receive_pod::<i32>("doubler", Some(Duration::from_millis(10_000))).await.unwrap(), 4);
        let t = rt.telemetry("doubler").unwrap().unwrap();
        assert_eq!((t.messages_processed, t.answers_abandoned, t.messages_received), (2, 1, 1));
    });
}

#[test]
fn hundred_concurrent_calls_each_get_their_own_answer() {
    let rt = runtime();
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default()).await.unwrap();
        rt.activate("doubler").await.unwrap();
        // Plain sends interleaved with the calls: their answers must stay in the output queue.
        let calls = join_all((0..100i32).map(|v| {
            let rt = &rt;
            async move {
                if v % 10 == 0 {
                    rt.send_pod("doubler", &-v, None).await.unwrap();
                }
                (v, rt.call_pod::<i32, i32>("doubler", &v, Some(Duration::from_millis(20_000))).await.unwrap())
            }
        }))
        .await;
        for (v, answer) in calls {
            assert_eq!(answer, v * 2, "call {v} got someone else's answer");
        }
        let plain = rt_receive_n(&rt, "doubler", 10).await;
        assert_eq!(plain, (0..10).map(|i| -i * 20).collect::<Vec<_>>());
        let t = rt.telemetry("doubler").unwrap().unwrap();
        assert_eq!((t.messages_sent, t.messages_processed, t.messages_received), (110, 110, 110));
        assert!(t.dispatches < 110, "concurrent calls share dispatches ({} for 110 messages)", t.dispatches);
    });
}

// ---- queries and telemetry ----

#[test]
fn telemetry_matches_the_messages_sent() {
    let rt = runtime();
    pollster::block_on(async {
        rt.launch("doubler", queue(256)).await.unwrap();
        rt.activate("doubler").await.unwrap();
        let batch: Vec<i32> = (0..200).collect();
        assert_eq!(rt.send_batch("doubler", &batch, None).await.unwrap(), 200);
        for v in 0..20 {
            rt.send("doubler", &[("value", Value::from(v))], None).await.unwrap();
        }
        rt_receive_n(&rt, "doubler", 220).await;
        for v in 0..5 {
            rt.call_pod::<i32, i32>("doubler", &v, Some(Duration::from_millis(5000))).await.unwrap();
        }
        let t = rt.telemetry("doubler").unwrap().unwrap();
        assert_eq!(t.kernel_id, "doubler");
        assert_eq!(t.state, KernelState::Active);
        assert_eq!((t.messages_sent, t.messages_processed, t.messages_received), (225, 225, 225));
        assert_eq!(
            (t.messages_dropped, t.errors, t.input_queue_depth, t.in_flight, t.output_queue_depth),
            (0, 0, 0, 0, 0)
        );
        assert!(t.dispatches >= 1 && t.dispatches <= 225);
        assert!(t.bytes_to_device >= 225 * 4, "{} bytes for 225 messages", t.bytes_to_device);
        assert!(t.bytes_from_device >= 225 * 4);
        assert!(t.gpu_memory_bytes >= 2 * 256 * 4 + 48, "two rings of 256 slots and their headers");
        let l = &t.latency;
        assert_eq!(l.count, 225);
        let (min, p50, p99, max) = (l.min_ms.unwrap(), l.p50_ms.unwrap(), l.p99_ms.unwrap(), l.max_ms.unwrap());
        assert!(min <= p50 && p50 <= p99 && p99 <= max * 1.01, "{l:?}");
        assert!(t.uptime_ms > 0.0 && t.throughput > 0.0);
        assert!(t.last_message_time.unwrap() >= t.start_time);

        let summary = rt.summary();
        assert_eq!((summary.kernel_count, summary.active_kernels, summary.total_messages), (1, 1, 225));
        assert_eq!(summary.backend, rt.adapter().backend);
        assert_eq!(summary.per_kernel["doubler"].messages_sent, 225);
        // Every tick that ran planned, submitted, waited for its readback and delivered.
        let time = summary.tick_time;
        assert!(summary.ticks >= 1, "{summary:?}");
        for (step, ms) in [("plan", time.plan_ms), ("submit", time.submit_ms), ("deliver", time.deliver_ms)] {
            assert!(ms >= 0.0 && ms.is_finite(), "{step}: {time:?}");
        }
        assert!(time.wait_ms > 0.0 && time.wait_ms < summary.uptime_ms, "{time:?}");
    });
}

#[test]
fn telemetry_is_none_when_disabled_but_the_summary_still_counts() {
    let rt = runtime_with(RuntimeOptions::default().with_telemetry(false));
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default()).await.unwrap();
        rt.activate("doubler").await.unwrap();
        rt.call_pod::<i32, i32>("doubler", &1, Some(Duration::from_millis(5000))).await.unwrap();
        assert_eq!(rt.telemetry("doubler").unwrap(), None);
        let summary = rt.summary();
        assert!(!summary.telemetry_enabled);
        assert_eq!(summary.total_messages, 1);
        assert_eq!(summary.per_kernel["doubler"].latency.count, 0, "latency is not recorded");
    });
}

#[test]
fn metrics_text_parses_as_prometheus_and_matches_the_counters() {
    let rt = runtime();
    pollster::block_on(async {
        register_worker("quoted \"id\"");
        rt.launch("doubler", LaunchOptions::default()).await.unwrap();
        rt.launch("quoted \"id\"", LaunchOptions::default()).await.unwrap();
        rt.activate("doubler").await.unwrap();
        for v in 0..7 {
            rt.call_pod::<i32, i32>("doubler", &v, Some(Duration::from_millis(5000))).await.unwrap();
        }
        let text = rt.metrics_text();
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition format");
        let sample = |name: &str, kernel: &str| {
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name && s.labels.get("kernel") == Some(kernel))
                .unwrap_or_else(|| panic!("{name}{{kernel={kernel}}} missing from\n{text}"))
                .value
                .clone()
        };
        use prometheus_parse::Value as P;
        assert_eq!(sample("ringkernel_messages_processed_total", "doubler"), P::Counter(7.0));
        assert_eq!(sample("ringkernel_messages_sent_total", "doubler"), P::Counter(7.0));
        // prometheus-parse does not unescape label values, so the escaped id is checked as text.
        assert!(text.contains("ringkernel_input_queue_depth{kernel=\"quoted \\\"id\\\"\"} 0\n"), "{text}");
        match sample("ringkernel_latency_seconds", "doubler") {
            P::Summary(quantiles) => assert_eq!(quantiles.len(), 2),
            other => panic!("latency is a summary, got {other:?}"),
        }
        let state = scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "ringkernel_kernel_state"
                    && s.labels.get("kernel") == Some("doubler")
                    && s.labels.get("state") == Some("active")
            })
            .expect("state sample");
        assert_eq!(state.value, P::Gauge(1.0));
        assert!(text.contains("ringkernel_info{backend="));
    });
}

#[test]
fn every_error_kind_is_reachable() {
    let rt = runtime();
    pollster::block_on(async {
        let mut names = std::collections::BTreeSet::new();
        let mut note = |e: Error| names.insert(e.kind());
        note(rt.activate("nope").await.unwrap_err());
        rt.launch("doubler", queue(1)).await.unwrap();
        note(rt.reactivate("doubler").await.unwrap_err());
        rt.send_pod("doubler", &1, None).await.unwrap();
        note(rt.send_pod("doubler", &2, Some(Duration::from_millis(0))).await.unwrap_err());
        note(rt.receive("doubler", Some(Duration::from_millis(0))).await.unwrap_err());
        note(rt.send("doubler", &[("nope", Value::from(1))], None).await.unwrap_err());
        let broken = KernelDefinition::new(
            "broken",
            doubler_request(),
            doubler_response(),
            "fn handle(msg: Request) -> Response { return nope; }",
        );
        note(rt.launch_definition(broken, LaunchOptions::default()).await.unwrap_err());
        note(rt.read_state("doubler").await.unwrap_err()); // it has no state
        let drops_all = KernelDefinition::new(
            "drops_all",
            doubler_request(),
            doubler_response(),
            "fn handle(msg: Request, out: ptr<function, Response>) -> bool { return false; }",
        );
        rt.launch_definition(drops_all, LaunchOptions::default()).await.unwrap();
        rt.activate("drops_all").await.unwrap();
        note(rt.call_pod::<i32, i32>("drops_all", &1, Some(Duration::from_millis(10_000))).await.unwrap_err());
        rt.dispose().await.unwrap(); // terminate drains the queued message even though it was never activated
        note(rt.launch("echo", LaunchOptions::default()).await.unwrap_err());
        let missing = RuntimeBuilder::new().backend(BackendChoice::Auto).device(99).build().await.unwrap_err();
        note(missing);
        let empty_queue = LaunchOptions::default().with_queue_capacity(0);
        note(runtime().launch("echo", empty_queue).await.unwrap_err());
        assert_eq!(
            names,
            std::collections::BTreeSet::from([
                ErrorKind::BackendUnavailable,
                ErrorKind::Disposed,
                ErrorKind::KernelCompile,
                ErrorKind::KernelNotFound,
                ErrorKind::KernelState,
                ErrorKind::MessageDropped,
                ErrorKind::MessageFormat,
                ErrorKind::QueueFull,
                ErrorKind::Timeout,
                ErrorKind::InvalidArgument,
                ErrorKind::OutOfRange
            ])
        );
    });
}

/// Every operation's future can move between threads, batches' too (what `tokio::spawn` asks
/// of them), and so can the stream of answers: compiled, never run.
#[allow(dead_code)]
fn every_operations_future_is_send(
    rt: &Runtime,
    typed: &ringkernel_web::KernelHandle<i32, i32>,
    untyped: &ringkernel_web::KernelHandle,
    values: &[Value],
) {
    fn send<F: Send>(_: F) {}
    let wait = Some(Duration::ZERO);
    send(rt.send_batch::<i32>("k", &[1], wait));
    send(rt.send_packed("k", &[0; 4], wait));
    send(rt.send_values("k", values, wait));
    send(rt.receive_batch::<i32>("k", 1, wait));
    send(rt.call_pod::<i32, i32>("k", &1, wait));
    send(rt.launch("k", LaunchOptions::default()));
    send(rt.migrate("k", ringkernel_web::DeviceId(0)));
    send(rt.terminate("k", wait));
    send(rt.shutdown());
    send(typed.send_batch(&[1]));
    send(typed.send_batch_timeout(&[1], Duration::ZERO));
    send(typed.call(1, Duration::ZERO));
    send(typed.answers());
    send(typed.sink());
    send(untyped.answers());
    send(untyped.send_values(values, wait));
    send(untyped.send_packed(&[0; 4], wait));
}

/// A message in either form (`MessageRef`): its bytes or its fields. `send_message` and
/// `try_send_message` queue it, answered like any other, and `call_message` reads its own
/// answer where it lies; bytes of
/// the wrong length and a value that is not a struct are refused by name. The sends' and
/// calls' futures can move between threads (what `tokio::spawn` asks of them): `send_ok`
/// makes the compiler check it.
#[test]
fn messages_in_either_form_are_answered_and_the_futures_are_send() {
    fn send_ok<F: std::future::Future + Send>(future: F) -> F {
        future
    }
    let wait = Some(Duration::from_secs(60));
    let rt = runtime();
    pollster::block_on(async {
        rt.launch("doubler", queue(8)).await.unwrap();
        rt.activate("doubler").await.unwrap();
        let value = Value::Struct(vec![("value".into(), Value::Number(5.0))]);
        let bytes = 21i32.to_le_bytes();
        for (message, answer) in [(MessageRef::Bytes(&bytes), 42), (MessageRef::Value(&value), 10)] {
            send_ok(rt.send_message("doubler", message, wait)).await.unwrap();
            assert_eq!(send_ok(rt.receive_pod::<i32>("doubler", wait)).await, Ok(answer), "{message:?}");
            let read = |_: &MessageLayout, answer: &[u8]| i32::from_le_bytes(answer.try_into().unwrap());
            assert_eq!(send_ok(rt.call_message("doubler", message, wait, read)).await, Ok(answer), "{message:?}");
            rt.try_send_message("doubler", message).unwrap();
            assert_eq!(rt.receive_pod::<i32>("doubler", wait).await, Ok(answer), "{message:?}");
            let mut header = EnvelopeHeader::new();
            header.correlation_id = Some(answer as u64);
            let sent = send_ok(rt.send_envelope_message("doubler", message, &header, wait)).await.unwrap();
            let received = rt.receive_envelope("doubler", wait).await.unwrap();
            // The sender's correlation id goes with the message; the answer's is the message's id.
            assert_eq!(sent.correlation_id, Some(answer as u64));
            assert_eq!(received.header.correlation_id, Some(sent.message_id));
            assert_eq!(received.message, vec![("result".to_string(), Value::I32(answer))], "{message:?}");
        }
        send_ok(rt.send_bytes("doubler", &(-8i32).to_le_bytes(), wait)).await.unwrap();
        assert_eq!(rt.receive_pod::<i32>("doubler", wait).await, Ok(-16));
        send_ok(rt.send_value("doubler", &value, wait)).await.unwrap();
        assert_eq!(rt.receive_pod::<i32>("doubler", wait).await, Ok(10));
        match rt.send_message("doubler", MessageRef::Bytes(&[0; 2]), wait).await {
            Err(Error::MessageFormat { field, .. }) => assert_eq!(field, "Request"),
            other => panic!("a 2-byte message must be a MessageFormat error naming the layout, got {other:?}"),
        }
        match rt.call_message("doubler", MessageRef::Value(&Value::Number(1.0)), wait, |_, _| ()).await {
            Err(Error::MessageFormat { field, .. }) => assert_eq!(field, "(message)"),
            other => panic!("a number must be a MessageFormat error for the message, got {other:?}"),
        }
        match rt.send_envelope_message("doubler", MessageRef::Bytes(&[0; 6]), &EnvelopeHeader::new(), wait).await {
            Err(Error::MessageFormat { field, .. }) => assert_eq!(field, "Request"),
            other => {
                panic!("a 6-byte enveloped message must be a MessageFormat error naming the layout, got {other:?}")
            }
        }
        let handle = rt.get_kernel("doubler").unwrap().typed::<i32, i32>().unwrap();
        send_ok(handle.send(3)).await.unwrap();
        assert_eq!(send_ok(handle.receive()).await, Ok(6));
        assert_eq!(send_ok(handle.call(4, Duration::from_secs(60))).await, Ok(8));
        let telemetry = rt.telemetry("doubler").unwrap().expect("telemetry is on by default");
        assert_eq!(telemetry.errors, 3, "each refusal is counted once");
    });
}

/// `send_message_now` queues a message when there is room, says `false` without counting an
/// error when the queue is full (the caller then waits with `send_message`), and refuses a
/// malformed message as `send_message` does, counted.
#[test]
fn a_send_now_queues_or_says_it_would_wait() {
    let wait = Some(Duration::from_secs(60));
    let rt = runtime();
    pollster::block_on(async {
        rt.launch("doubler", queue(2)).await.unwrap(); // launched, not active: nothing drains
        for value in [1i32, 2] {
            assert_eq!(rt.send_message_now("doubler", MessageRef::Bytes(&value.to_le_bytes())), Ok(true));
        }
        assert_eq!(rt.send_message_now("doubler", MessageRef::Bytes(&3i32.to_le_bytes())), Ok(false), "full");
        assert_eq!(rt.kernel_metrics("doubler").unwrap().input_queue_depth, 2, "the third was not queued");
        assert_eq!(rt.telemetry("doubler").unwrap().unwrap().errors, 0, "a full queue is no error here");
        match rt.send_message_now("doubler", MessageRef::Bytes(&[0; 3])) {
            Err(Error::MessageFormat { field, .. }) => assert_eq!(field, "Request"),
            other => panic!("a 3-byte message must be a MessageFormat error, got {other:?}"),
        }
        assert_eq!(rt.telemetry("doubler").unwrap().unwrap().errors, 1, "a refusal is counted");
        rt.activate("doubler").await.unwrap();
        assert_eq!(rt.receive_pod::<i32>("doubler", wait).await, Ok(2));
        assert_eq!(rt.receive_pod::<i32>("doubler", wait).await, Ok(4));
    });
}

//! Kernel-to-kernel pipelines (`connect`): answers of one kernel feed the next on the GPU in the
//! same submit, so a 4-stage pipeline answers in one tick; order holds, pausing a stage holds
//! the stages before it without losing anything, and bad routes are refused by name. The same
//! on the cpu backend.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

mod common;

use common::{launch_chain, receive_n, runtime_on};

use ringkernel_web::kernel::{self, doubler_request, doubler_response, host};
use ringkernel_web::{BackendChoice, Error, ErrorKind, KernelDefinition, LaunchOptions, Runtime};

/// Stage `id` computes `value * mul + add` (i32 in and out, both layouts 4 bytes), in WGSL
/// and as a host handler.
fn stage(id: &str, mul: i32, add: i32) -> KernelDefinition {
    let wgsl = format!("fn handle(m: Request) -> Response {{ return Response(m.value * {mul} + {add}); }}");
    KernelDefinition::new(id, doubler_request(), doubler_response(), &wgsl)
        .with_host_handler(host::typed(move |v: &i32, _: &mut [u32]| Some(v * mul + add)))
}

/// A stage that answers `value` as it is, taking `ms` a message (a host handler only).
fn slow_stage(id: &str, ms: u64) -> KernelDefinition {
    let handler = host::typed(move |v: &i32, _: &mut [u32]| {
        std::thread::sleep(Duration::from_millis(ms));
        Some(*v)
    });
    KernelDefinition::new(id, doubler_request(), doubler_response(), "").with_host_handler(handler)
}

/// How long one receive of a test waits.
const TIMEOUT: Duration = Duration::from_secs(10);

const STAGES: [(&str, i32, i32); 4] = [("p-add1", 1, 1), ("p-times2", 2, 0), ("p-add3", 1, 3), ("p-times5", 5, 0)];

fn expected(v: i32) -> i32 {
    STAGES.iter().fold(v, |v, (_, mul, add)| v * mul + add)
}

async fn build_pipeline(rt: &Runtime, prefix: &str, queue_size: usize) -> Vec<String> {
    let definitions = STAGES.iter().map(|(id, mul, add)| stage(&format!("{prefix}{id}"), *mul, *add)).collect();
    launch_chain(rt, definitions, &[queue_size; 4]).await
}

fn check_pipeline(backend: BackendChoice) {
    let rt = runtime_on(backend);
    pollster::block_on(async {
        let ids = build_pipeline(&rt, "", 1024).await;
        let (first, last) = (&ids[0], &ids[3]);

        // One message through four stages.
        let ticks = rt.summary().ticks;
        rt.send_pod(first, &7, None).await.unwrap();
        assert_eq!(receive_n(&rt, last, 1, TIMEOUT).await, [expected(7)]);
        if backend != BackendChoice::Cpu {
            assert_eq!(rt.summary().ticks - ticks, 1, "four stages, one submit and one readback");
        }

        // Many messages, more than one ring's worth, in order.
        let values: Vec<i32> = (0..5000).map(|i| i * 3 - 7000).collect();
        let mut answers = Vec::new();
        for chunk in values.chunks(700) {
            assert_eq!(rt.send_batch(first, chunk, Some(Duration::from_millis(10_000))).await.unwrap(), chunk.len());
            answers.extend(receive_n(&rt, last, chunk.len(), TIMEOUT).await);
        }
        assert_eq!(answers, values.iter().map(|&v| expected(v)).collect::<Vec<_>>());
        for (i, id) in ids.iter().enumerate() {
            let t = rt.telemetry(id).unwrap().unwrap();
            assert_eq!(t.messages_processed, 5001, "{id}");
            assert_eq!(t.messages_forwarded, if i < 3 { 5001 } else { 0 }, "{id}");
            assert_eq!(t.connected_to.as_deref(), ids.get(i + 1).map(String::as_str), "{id}");
            assert_eq!(t.messages_received, if i == 3 { 5001 } else { 0 }, "{id}");
        }

        // Pausing a middle stage holds everything before it; nothing is lost or reordered.
        rt.deactivate(&ids[2]).await.unwrap();
        rt.send_batch(first, &[1i32, 2, 3], None).await.unwrap();
        let e = rt.receive(last, Some(Duration::from_millis(200))).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        // Held before the paused stage, on every backend: none of them reached it.
        let depth = |id: &str| rt.telemetry(id).unwrap().unwrap().input_queue_depth;
        assert_eq!(depth(&ids[2]), 0, "{backend:?}: nothing was relayed into the paused stage");
        assert_eq!(depth(&ids[0]) + depth(&ids[1]), 3, "{backend:?}: the stages before it hold the three");
        rt.reactivate(&ids[2]).await.unwrap();
        assert_eq!(receive_n(&rt, last, 3, TIMEOUT).await, [expected(1), expected(2), expected(3)]);

        // A host send into a middle stage joins the stream after what was forwarded before it.
        rt.send_pod(&ids[2], &100, None).await.unwrap();
        assert_eq!(receive_n(&rt, last, 1, TIMEOUT).await, [(100 + 3) * 5]);

        // Terminating a stage takes it out of the pipeline: the stage before answers the host.
        rt.terminate(&ids[3], Some(Duration::from_millis(5000))).await.unwrap();
        assert_eq!(rt.connected_to(&ids[2]).unwrap(), None);
        rt.send_pod(first, &1, None).await.unwrap();
        assert_eq!(receive_n(&rt, &ids[2], 1, TIMEOUT).await, [((1 + 1) * 2) + 3]);
    });
}

#[test]
fn a_four_stage_gpu_pipeline_answers_in_one_tick_in_order_and_holds_when_paused() {
    check_pipeline(BackendChoice::Auto);
}

#[test]
fn a_four_stage_pipeline_on_the_cpu_backend_behaves_the_same() {
    check_pipeline(BackendChoice::Cpu);
}

/// A call that gave up still has its answer to come, which is no message for the next stage:
/// connecting waits for it (it used to go on, through the next stage, to a plain receive).
fn check_a_call_given_up_keeps_its_answer_from_the_next_stage(backend: BackendChoice) {
    let rt = runtime_on(backend);
    let (from, to) = (format!("g-{backend:?}-from"), format!("g-{backend:?}-to"));
    kernel::register_or_replace(stage(&from, 2, 0));
    kernel::register_or_replace(stage(&to, 1, 1));
    pollster::block_on(async {
        rt.launch(&from, LaunchOptions::default()).await.unwrap(); // launched, not active
        rt.launch(&to, LaunchOptions::default()).await.unwrap();
        rt.activate(&to).await.unwrap();
        let e = rt.call_pod::<i32, i32>(&from, &7, Some(Duration::from_millis(50))).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        let e = rt.connect(&from, &to).await.unwrap_err();
        assert!(matches!(&e, Error::InvalidArgument(m) if m.contains("1 call in flight")), "{e}");
        rt.activate(&from).await.unwrap();
        let abandoned = || rt.telemetry(&from).unwrap().unwrap().answers_abandoned;
        for _ in 0..1000 {
            if abandoned() == 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(abandoned(), 1, "the answer nobody waits for is discarded when it comes");
        rt.connect(&from, &to).await.unwrap();
        rt.send_pod(&from, &5, None).await.unwrap();
        assert_eq!(receive_n(&rt, &to, 1, TIMEOUT).await, [11]);
        assert_eq!(rt.telemetry(&to).unwrap().unwrap().messages_processed, 1, "only the message sent after");
    });
}

#[test]
fn a_call_given_up_keeps_its_answer_from_the_next_stage_on_the_gpu() {
    check_a_call_given_up_keeps_its_answer_from_the_next_stage(BackendChoice::Auto);
}

#[test]
fn a_call_given_up_keeps_its_answer_from_the_next_stage_on_the_cpu_backend() {
    check_a_call_given_up_keeps_its_answer_from_the_next_stage(BackendChoice::Cpu);
}

#[test]
fn bad_routes_are_refused_by_name() {
    let rt = runtime_on(BackendChoice::Auto);
    kernel::register_or_replace(KernelDefinition::new(
        "r-keep-even",
        doubler_request(),
        doubler_response(),
        "fn handle(m: Request, out: ptr<function, Response>) -> bool { (*out).result = m.value; return m.value % 2 == 0; }",
    ));
    pollster::block_on(async {
        let ids = build_pipeline(&rt, "r-", 64).await;
        rt.launch("vector_add", LaunchOptions::default()).await.unwrap();
        rt.launch("r-keep-even", LaunchOptions::default()).await.unwrap();
        let refused = |result: Result<(), Error>, why: &str| {
            let e = result.unwrap_err();
            assert!(matches!(&e, Error::InvalidArgument(m) if m.contains(why)), "expected '{why}', got {e}");
        };
        refused(rt.connect(&ids[0], &ids[0]).await, "cannot feed itself");
        refused(rt.connect(&ids[0], "vector_add").await, "already feeds");
        refused(rt.connect("vector_add", &ids[1]).await, "already fed by");
        refused(rt.connect(&ids[3], &ids[0]).await, "cycle");
        refused(rt.connect("vector_add", &ids[0]).await, "layouts must match");
        refused(rt.connect("r-keep-even", &ids[0]).await, "may drop messages");
        rt.disconnect(&ids[2]).await.unwrap();
        refused(rt.disconnect(&ids[2]).await, "not connected");
        // Ids are shown escaped, as in every error: a quote or a line break ends nothing.
        let odd = "odd'\nid";
        rt.launch_as("doubler", odd, LaunchOptions::default()).await.unwrap();
        let e = rt.disconnect(odd).await.unwrap_err();
        assert_eq!(e.to_string(), r"invalid argument: disconnect('odd\'\u{a}id'): it is not connected");
        let e = rt.connect(odd, odd).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            r"invalid argument: connect('odd\'\u{a}id', 'odd\'\u{a}id'): a kernel cannot feed itself"
        );
        rt.connect(&ids[3], &ids[0]).await.unwrap(); // 2 no longer feeds 3, so 3 → 0 → 1 → 2 is a chain
        let e = rt.call_pod::<i32, i32>(&ids[0], &1, Some(Duration::from_millis(1000))).await.unwrap_err();
        assert!(e.to_string().contains("is connected to"), "{e}");
        let e = rt.connect("nope", &ids[0]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KernelNotFound);
        rt.terminate("vector_add", Some(Duration::from_millis(1000))).await.unwrap();
        let e = rt.connect("vector_add", &ids[0]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KernelState);
    });
}

/// A send held back by a paused next stage says so: its `QueueFull` names the stall
/// (`NextStageStalled`), and a send waiting without a timeout is reported after a second, once.
fn check_a_held_stage_names_its_next_stage(backend: BackendChoice) {
    let rt = runtime_on(backend);
    pollster::block_on(async {
        let (first, next) = (format!("held-{backend:?}-a"), format!("held-{backend:?}-b"));
        kernel::register_or_replace(stage(&first, 2, 0));
        kernel::register_or_replace(stage(&next, 1, 0));
        rt.launch(&first, LaunchOptions::default().with_queue_capacity(2).with_auto_activate()).await.unwrap();
        // Launched, never activated: its queue fills with the first stage's answers.
        rt.launch(&next, LaunchOptions::default().with_queue_capacity(2)).await.unwrap();
        rt.connect(&first, &next).await.unwrap();
        let brief = Some(Duration::from_millis(50));
        let mut sent = 0;
        let error = loop {
            match rt.send_pod(&first, &sent, brief).await {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent <= 8, "{backend:?}: the first stage kept taking messages");
        };
        assert_eq!(sent, 2, "{backend:?}: the first stage's queue holds two; the next stage takes none");
        match error {
            Error::QueueFull { stall: Some(ringkernel_web::Stall::NextStageStalled), .. } => {}
            other => panic!("{backend:?}: a full queue naming its next stage, got {other:?}"),
        }
        assert!(error.to_string().contains("its next stage takes none of its answers"), "{error}");
        // Waiting with no timeout (on a thread of its own): looked at after a second and reported.
        let waiting = {
            let (rt, first) = (rt.clone(), first.clone());
            std::thread::spawn(move || pollster::block_on(rt.send_pod(&first, &9, None)))
        };
        common::wait_until("the stall to be reported", || rt.telemetry(&first).unwrap().unwrap().stalled_sends == 1);
        rt.activate(&next).await.unwrap();
        waiting.join().unwrap().unwrap();
        assert_eq!(receive_n(&rt, &next, 3, TIMEOUT).await, [0, 2, 18]);
    });
}

#[test]
fn a_gpu_stage_held_by_its_next_stage_names_it() {
    check_a_held_stage_names_its_next_stage(BackendChoice::Auto);
}

#[test]
fn a_cpu_stage_held_by_its_next_stage_names_it() {
    check_a_held_stage_names_its_next_stage(BackendChoice::Cpu);
}

/// A → B → C on the cpu backend (answers relayed through the host), C never activated: B is
/// held, but its queue has room, so A is not: a slow A is busy, not stalled, and neither its
/// `QueueFull` nor a send waiting over a second on it names a stall.
#[test]
fn a_slow_stage_whose_next_stage_has_room_is_busy_not_stalled() {
    let (a, b, c) = ("rv-a", "rv-b", "rv-c");
    kernel::register_or_replace(slow_stage(a, 1500));
    kernel::register_or_replace(stage(b, 1, 0));
    kernel::register_or_replace(stage(c, 1, 0));
    let rt = runtime_on(BackendChoice::Cpu);
    pollster::block_on(async {
        rt.launch(c, LaunchOptions::default().with_queue_capacity(2)).await.unwrap();
        rt.launch(b, LaunchOptions::default().with_queue_capacity(64).with_auto_activate()).await.unwrap();
        rt.launch(a, LaunchOptions::default().with_queue_capacity(2).with_max_batch(1).with_auto_activate())
            .await
            .unwrap();
        rt.connect(a, b).await.unwrap();
        rt.connect(b, c).await.unwrap();
        let mut i = 0;
        let full = loop {
            match rt.send_pod(a, &i, Some(Duration::ZERO)).await {
                Ok(()) => i += 1,
                Err(e) => break e,
            }
        };
        let processed_before = rt.telemetry(a).unwrap().unwrap().messages_processed;
        // Sends that wait over a second each for A to free room.
        for k in 0..3 {
            rt.send_pod(a, &(100 + k), Some(Duration::from_secs(10))).await.unwrap();
        }
        let ta = rt.telemetry(a).unwrap().unwrap();
        assert!(ta.messages_processed > processed_before, "A kept processing (it was not held)");
        assert!(
            matches!(full, Error::QueueFull { stall: None, .. }),
            "A's QueueFull names a stall although B had room: {full}"
        );
        assert_eq!(ta.stalled_sends, 0, "a send waiting on a busy A was reported stalled");
    });
}

/// What a pipeline's stalls say, and what ends them: a receive from the last stage names the
/// stall that holds its input at an earlier stage (`UpstreamStalled`, or its own `Inactive`
/// when it is the paused one); a stage connected onward is not `OutputFull` for answers left
/// in its output queue from before (its answers go on); and `disconnect` runs the input a
/// paused next stage held, into the first stage's own output queue, with nothing else to
/// wake the tick.
fn check_pipeline_stalls(backend: BackendChoice) {
    let rt = runtime_on(backend);
    let brief = Some(Duration::from_millis(300));
    let (a, b, c) = (format!("ps-{backend:?}-a"), format!("ps-{backend:?}-b"), format!("ps-{backend:?}-c"));
    for (id, add) in [(&a, 1), (&b, 10), (&c, 100)] {
        kernel::register_or_replace(stage(id, 1, add));
    }
    pollster::block_on(async {
        let queues = LaunchOptions::default().with_queue_capacity(4).with_auto_activate();
        for id in [&a, &b, &c] {
            rt.launch(id, queues.clone()).await.unwrap();
        }
        // Answers left in A's output queue from before it was connected.
        rt.send_batch(&a, &[0, 0, 0, 0], brief).await.unwrap();
        common::wait_until("A's answers", || rt.telemetry(&a).unwrap().unwrap().messages_processed == 4);
        rt.connect(&a, &b).await.unwrap();
        rt.connect(&b, &c).await.unwrap();

        // B paused: a receive from C hears that its input waits at an earlier stage, held.
        rt.deactivate(&b).await.unwrap();
        rt.send_batch(&a, &[1, 2], brief).await.unwrap();
        let error = rt.receive_pod::<i32>(&c, brief).await.unwrap_err();
        assert!(
            matches!(error, Error::Timeout { stall: Some(ringkernel_web::Stall::UpstreamStalled), .. }),
            "{backend:?}: {error:?}"
        );
        // A's queue fills: held by its next stage, not by the four answers it still has.
        let mut threes = 0;
        let error = loop {
            match rt.send_pod(&a, &3, Some(Duration::from_millis(50))).await {
                Ok(()) => threes += 1,
                Err(error) => break error,
            }
        };
        assert!(
            matches!(error, Error::QueueFull { stall: Some(ringkernel_web::Stall::NextStageStalled), .. }),
            "{backend:?}: {error:?}"
        );

        // C paused instead (nothing moves: B's answers would go to C): a receive from C names
        // C's own stall.
        rt.deactivate(&c).await.unwrap();
        rt.reactivate(&b).await.unwrap();
        let error = rt.receive_pod::<i32>(&c, brief).await.unwrap_err();
        assert!(
            matches!(
                error,
                Error::Timeout {
                    stall: Some(ringkernel_web::Stall::Inactive(ringkernel_web::KernelState::Deactivated)),
                    ..
                }
            ),
            "{backend:?}: {error:?}"
        );
        rt.reactivate(&c).await.unwrap();
        let mut expected = vec![112, 113];
        expected.extend(std::iter::repeat_n(114, threes));
        assert_eq!(receive_n(&rt, &c, expected.len(), TIMEOUT).await, expected, "{backend:?}");
        // The answers left from before A was connected are still A's to receive.
        assert_eq!(receive_n(&rt, &a, 4, TIMEOUT).await, [1, 1, 1, 1], "{backend:?}");

        // B paused, A's input held; disconnect(A) lets A run it into its own output queue, with
        // nothing else to wake the tick.
        rt.deactivate(&b).await.unwrap();
        rt.send_batch(&a, &[5, 6], brief).await.unwrap();
        let processed = || rt.telemetry(&a).unwrap().unwrap().messages_processed;
        let held = processed();
        rt.disconnect(&a).await.unwrap();
        common::wait_until("A to run what it held", || processed() == held + 2);
        assert_eq!(receive_n(&rt, &a, 2, TIMEOUT).await, [6, 7], "{backend:?}");
    });
}

#[test]
fn a_gpu_pipelines_stalls_are_named_and_a_disconnect_ends_one() {
    check_pipeline_stalls(BackendChoice::Auto);
}

#[test]
fn a_cpu_pipelines_stalls_are_named_and_a_disconnect_ends_one() {
    check_pipeline_stalls(BackendChoice::Cpu);
}

/// `maxBatch` bounds every dispatch of a stage, fed by the stage before or not: on the GPU a
/// fed stage dispatches all it holds, so what is forwarded into it (and so what a fused run
/// takes) must stay within its limit. A → B → C with B at 10: 1,000 messages take B at least
/// 100 dispatches, on every backend, and arrive in order.
fn check_max_batch_of_a_fed_stage(backend: BackendChoice) {
    let rt = runtime_on(backend);
    let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| format!("mb-{backend:?}-{s}")).collect();
    pollster::block_on(async {
        for (i, id) in ids.iter().enumerate() {
            kernel::register_or_replace(stage(id, 1, i as i32));
            let options = LaunchOptions::default().with_queue_capacity(1024).with_auto_activate();
            rt.launch(id, if i == 1 { options.with_max_batch(10) } else { options }).await.unwrap();
        }
        rt.connect(&ids[0], &ids[1]).await.unwrap();
        rt.connect(&ids[1], &ids[2]).await.unwrap();
        let values: Vec<i32> = (0..1000).collect();
        rt.send_batch(&ids[0], &values, None).await.unwrap();
        let answers = receive_n(&rt, &ids[2], values.len(), TIMEOUT).await;
        assert_eq!(answers, values.iter().map(|v| v + 3).collect::<Vec<_>>(), "{backend:?}: in order");
        let b = rt.telemetry(&ids[1]).unwrap().unwrap();
        assert_eq!(b.messages_processed, 1000);
        assert!(b.dispatches >= 100, "{backend:?}: B took more than 10 a dispatch ({} dispatches)", b.dispatches);
    });
}

#[test]
fn max_batch_bounds_a_gpu_stage_fed_by_the_stage_before() {
    check_max_batch_of_a_fed_stage(BackendChoice::Auto);
}

#[test]
fn max_batch_bounds_a_cpu_stage_fed_by_the_stage_before() {
    check_max_batch_of_a_fed_stage(BackendChoice::Cpu);
}

/// A long pipeline: each tick plans only the stages that have work or follow one that has, and
/// works out depths and rooms in one walk per chain (it walked the chain once per stage, so 400
/// stages cost 3.4 ms a tick, idle or not, unrelated kernels' ticks included). 200 stages still
/// deliver everything in order.
fn check_a_long_pipeline(backend: BackendChoice) {
    let rt = runtime_on(backend);
    let n = 200;
    pollster::block_on(async {
        let definitions = (0..n).map(|i| stage(&format!("long-{backend:?}-{i}"), 1, 1)).collect();
        let ids = launch_chain(&rt, definitions, &[64; 200]).await;
        let values: Vec<i32> = (0..300).collect();
        let mut answers = Vec::new();
        for chunk in values.chunks(100) {
            assert_eq!(rt.send_batch(&ids[0], chunk, Some(TIMEOUT)).await.unwrap(), chunk.len());
            answers.extend(receive_n(&rt, &ids[n - 1], chunk.len(), TIMEOUT).await);
        }
        assert_eq!(answers, values.iter().map(|v| v + n as i32).collect::<Vec<_>>(), "{backend:?}");
    });
}

#[test]
fn a_200_stage_gpu_pipeline_delivers_in_order() {
    check_a_long_pipeline(BackendChoice::Auto);
}

#[test]
fn a_200_stage_cpu_pipeline_delivers_in_order() {
    check_a_long_pipeline(BackendChoice::Cpu);
}

/// `terminate_all` (and so a drain and `dispose`) ends a pipeline's stages after the stages
/// feeding them: what is in the pipeline, even behind a paused stage, reaches the last stage,
/// in order, instead of staying in an earlier stage's output queue.
fn check_terminate_all_flushes_a_pipeline(backend: BackendChoice) {
    let rt = runtime_on(backend);
    pollster::block_on(async {
        let ids = build_pipeline(&rt, &format!("flush-{backend:?}-"), 1024).await;
        rt.deactivate(&ids[2]).await.unwrap();
        let values: Vec<i32> = (0..800).collect();
        assert_eq!(rt.send_batch(&ids[0], &values, Some(TIMEOUT)).await.unwrap(), values.len());
        rt.terminate_all(Some(TIMEOUT)).await.unwrap();
        let answers = receive_n(&rt, &ids[3], values.len(), TIMEOUT).await;
        assert_eq!(answers, values.iter().map(|&v| expected(v)).collect::<Vec<_>>(), "{backend:?}");
        // No earlier stage kept answers of its own, which the report would count.
        let report = rt.dispose().await.unwrap();
        assert_eq!(report.answers_never_received, 0, "{report:?}");
    });
}

#[test]
fn terminate_all_flushes_a_gpu_pipeline_to_its_last_stage() {
    check_terminate_all_flushes_a_pipeline(BackendChoice::Auto);
}

#[test]
fn terminate_all_flushes_a_cpu_pipeline_to_its_last_stage() {
    check_terminate_all_flushes_a_pipeline(BackendChoice::Cpu);
}

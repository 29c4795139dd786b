//! Envelopes and the hybrid logical clock, natively on lavapipe and on the cpu backend: an
//! answer's envelope names its request (correlation id = the request's message id) and is
//! stamped after it, through a 3-stage pipeline, through a handler that drops messages, and
//! through a lost device and its recovery; plain messages keep their plain answers, and a
//! `read` that panics leaves the answer with its header. A property
//! test: whatever mix of plain and enveloped sends and receives, answers come in FIFO order and
//! their timestamps increase in that order.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::time::{Duration, Instant};

use common::runtime_on;
use ringkernel_web::kernel::{self, doubler_request, doubler_response, host};
use ringkernel_web::{
    BackendChoice, EnvelopeHeader, ErrorKind, HlcTimestamp, KernelDefinition, KernelState, LaunchOptions,
    MessageEnvelope, Runtime, Value,
};

const BACKENDS: [BackendChoice; 2] = [BackendChoice::Auto, BackendChoice::Cpu];
const WAIT: Option<Duration> = Some(Duration::from_secs(20));

/// Stage `id` computes `value * mul + add`, in WGSL and as a host handler; with `keep_even`
/// it drops odd values (`fn handle(msg, out) -> bool`).
fn register_stage(id: &str, mul: i32, add: i32, keep_even: bool) {
    let definition = if keep_even {
        let wgsl = format!(
            "fn handle(m: Request, out: ptr<function, Response>) -> bool {{ (*out).result = m.value * {mul} + {add}; return m.value % 2 == 0; }}"
        );
        KernelDefinition::new(id, doubler_request(), doubler_response(), &wgsl)
            .with_host_handler(host::typed(move |v: &i32, _: &mut [u32]| (v % 2 == 0).then_some(v * mul + add)))
    } else {
        let wgsl = format!("fn handle(m: Request) -> Response {{ return Response(m.value * {mul} + {add}); }}");
        KernelDefinition::new(id, doubler_request(), doubler_response(), &wgsl)
            .with_host_handler(host::typed(move |v: &i32, _: &mut [u32]| Some(v * mul + add)))
    };
    kernel::register_or_replace(definition);
}

async fn launch(rt: &Runtime, id: &str) {
    rt.launch(id, LaunchOptions::default().with_queue_capacity(512)).await.unwrap();
    rt.activate(id).await.unwrap();
}

fn value(v: i32) -> Value {
    Value::Struct(vec![("value".into(), Value::from(v))])
}

/// The `result` of a received answer.
fn result_of(fields: &[(String, Value)]) -> i32 {
    match fields {
        [(name, Value::I32(v))] if name == "result" => *v,
        other => panic!("not a Response: {other:?}"),
    }
}

/// What a sent message should find in its answer's envelope, received from `kernel`.
#[track_caller]
fn assert_answers(answer: &EnvelopeHeader, sent: &EnvelopeHeader, kernel: &str) {
    assert_eq!(answer.correlation_id, Some(sent.message_id), "{answer:?} answers {sent:?}");
    assert_eq!(answer.source.as_deref(), Some(kernel));
    assert_eq!(answer.destination, sent.source);
    assert_eq!(answer.priority, sent.priority);
    assert!(answer.timestamp > sent.timestamp, "{answer:?} after {sent:?}");
    assert_ne!(answer.message_id, sent.message_id);
}

/// A header made when a plain answer was taken.
#[track_caller]
fn assert_plain(answer: &EnvelopeHeader, kernel: &str) {
    assert_eq!((answer.correlation_id, answer.source.as_deref(), &answer.destination), (None, Some(kernel), &None));
}

/// Checks the last stage's answers of a `(3x+1) → (x+2) → 2x` pipeline: the first stage's
/// messages (`first`: the header each was sent with, `None` when sent plain) and the middle
/// stage's own ones (`middle`, valued `DIRECT + k * middle_step`, sent from "direct") each
/// exactly once and in order, every answer naming its request, timestamps rising throughout.
fn check_pipeline_answers(
    answers: &[MessageEnvelope<Vec<(String, Value)>>],
    first: &[Option<EnvelopeHeader>],
    middle: &[EnvelopeHeader],
    middle_step: i32,
    last_stage: &str,
) {
    let (mut next_first, mut next_middle, mut last) = (0, 0, HlcTimestamp::ZERO);
    for got in answers {
        let into_middle = result_of(&got.message) / 2 - 2;
        if into_middle >= DIRECT {
            assert_eq!(
                into_middle - DIRECT,
                next_middle as i32 * middle_step,
                "the middle stage's own messages, in order, once"
            );
            assert_answers(&got.header, &middle[next_middle], last_stage);
            assert_eq!(got.header.destination.as_deref(), Some("direct"));
            next_middle += 1;
        } else {
            assert_eq!((into_middle - 1) / 3, next_first as i32, "the first stage's messages, in order, once");
            match &first[next_first] {
                Some(sent) => assert_answers(&got.header, sent, last_stage),
                None => assert_plain(&got.header, last_stage),
            }
            next_first += 1;
        }
        assert!(got.header.timestamp > last);
        last = got.header.timestamp;
    }
    assert_eq!((next_first, next_middle), (first.len(), middle.len()));
}

#[test]
fn an_answer_names_its_request_and_is_stamped_after_it() {
    for backend in BACKENDS {
        let rt = runtime_on(backend);
        pollster::block_on(async {
            let doubler = rt.launch("doubler", LaunchOptions::default()).await.unwrap().typed::<i32, i32>().unwrap();
            doubler.activate().await.unwrap();
            let before = rt.current_timestamp();
            let sent =
                doubler.send_envelope(MessageEnvelope::new(21).with_priority(3).with_correlation_id(77)).await.unwrap();
            assert!(sent.message_id > 0 && sent.timestamp > before, "{sent:?}");
            assert_eq!(
                (sent.correlation_id, sent.source.clone(), sent.destination.as_deref(), sent.priority),
                (Some(77), None, Some("doubler"), 3)
            );
            let answer = doubler.receive_envelope_timeout(WAIT.unwrap()).await.unwrap();
            assert_eq!(answer.message, 42);
            assert_answers(&answer.header, &sent, "doubler");
            assert!(rt.current_timestamp() > answer.header.timestamp);

            // Plain and enveloped messages mixed: each answer keeps its own kind, in order.
            doubler.send(1).await.unwrap();
            let second = rt.send_envelope("doubler", &MessageEnvelope::new(value(2)), None).await.unwrap();
            doubler.send(3).await.unwrap();
            // An envelope passed on from elsewhere: the clock moves past its timestamp.
            let ahead = HlcTimestamp::new(sent.timestamp.physical_ms + 60_000, 5);
            let fourth = doubler
                .send_envelope(MessageEnvelope::new(4).with_source("elsewhere").with_timestamp(ahead))
                .await
                .unwrap();
            assert!(fourth.timestamp > ahead);
            // One from a clock days ahead is refused, and the runtime's clock stays where it was.
            let before = rt.current_timestamp();
            let days_ahead = HlcTimestamp::new(before.physical_ms + 11 * 24 * 3600 * 1000, 0);
            let e = rt
                .send_envelope("doubler", &MessageEnvelope::new(value(5)).with_timestamp(days_ahead), None)
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::OutOfRange, "{e}");
            assert!(e.to_string().contains("ms ahead of this runtime's wall clock, more than 3600000 ms"), "{e}");
            assert!(rt.current_timestamp().physical_ms < before.physical_ms + 3_600_000, "the clock was not dragged");
            let mut last = answer.header.timestamp;
            for expected in 1..=4 {
                let got = rt.receive_envelope("doubler", WAIT).await.unwrap();
                assert_eq!(result_of(&got.message), expected * 2);
                match expected {
                    2 => assert_answers(&got.header, &second, "doubler"),
                    4 => {
                        assert_answers(&got.header, &fourth, "doubler");
                        assert_eq!(got.header.destination.as_deref(), Some("elsewhere"));
                    }
                    _ => assert_plain(&got.header, "doubler"),
                }
                assert!(got.header.timestamp > last, "answers are stamped in the order they are taken");
                last = got.header.timestamp;
            }

            // A plain receive takes an enveloped answer: its header goes, the next one is right.
            doubler.send_envelope(MessageEnvelope::new(5)).await.unwrap();
            let sixth = doubler.send_envelope(MessageEnvelope::new(6)).await.unwrap();
            assert_eq!(doubler.receive_timeout(WAIT.unwrap()).await.unwrap(), 10);
            let got = doubler.receive_envelope().await.unwrap();
            assert_eq!(got.message, 12);
            assert_answers(&got.header, &sixth, "doubler");
        });
    }
}

/// A send refused (no such kernel, a malformed message, a queue that stays full) gave nothing
/// out: the clock stays where it was, even when the refused envelope came from far ahead, and
/// the next message id follows the last one given.
#[test]
fn a_refused_envelope_moves_neither_the_clock_nor_the_ids() {
    for backend in BACKENDS {
        let rt = runtime_on(backend);
        pollster::block_on(async {
            let options = LaunchOptions::default().with_queue_capacity(2);
            rt.launch("doubler", options).await.unwrap();
            let first = rt.send_envelope("doubler", &MessageEnvelope::new(value(1)), None).await.unwrap();
            let before = rt.current_timestamp();
            let ahead = HlcTimestamp::new(before.physical_ms + 50 * 60 * 1000, 0);
            let from_ahead = |message: Value| MessageEnvelope::new(message).with_timestamp(ahead);
            let e = rt.send_envelope("no-such-kernel", &from_ahead(value(2)), None).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::KernelNotFound, "{e}");
            let malformed = Value::Struct(vec![("nope".into(), Value::from(2))]);
            let e = rt.send_envelope("doubler", &from_ahead(malformed), None).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::MessageFormat, "{e}");
            // The queue holds two; the kernel is not active, so the third waits out its timeout.
            rt.send_envelope("doubler", &MessageEnvelope::new(value(2)), None).await.unwrap();
            let waited = Some(Duration::from_millis(30));
            let e = rt.send_envelope("doubler", &from_ahead(value(3)), waited).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::QueueFull, "{e}");
            assert!(
                rt.current_timestamp().physical_ms < ahead.physical_ms,
                "{backend:?}: a refused send moved the clock"
            );
            rt.activate("doubler").await.unwrap();
            for _ in 0..2 {
                rt.receive_envelope("doubler", WAIT).await.unwrap();
            }
            // Given out since `first`: the second send's id and the two answers' ids.
            let next = rt.send_envelope("doubler", &MessageEnvelope::new(value(4)), None).await.unwrap();
            assert_eq!(next.message_id, first.message_id + 4, "{backend:?}: refused sends used up message ids");
        });
    }
}

#[test]
fn envelopes_follow_their_messages_through_a_three_stage_pipeline() {
    for (i, backend) in BACKENDS.into_iter().enumerate() {
        let rt = runtime_on(backend);
        let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| format!("env-pipe{i}-{s}")).collect();
        for (id, (mul, add)) in ids.iter().zip([(1, 1), (2, 0), (1, 3)]) {
            register_stage(id, mul, add, false);
        }
        pollster::block_on(async {
            for id in &ids {
                launch(&rt, id).await;
            }
            rt.connect(&ids[0], &ids[1]).await.unwrap();
            rt.connect(&ids[1], &ids[2]).await.unwrap();
            // Every third message plain; the others enveloped, with their priority.
            let mut sent = Vec::new();
            for v in 0..300 {
                sent.push(match v % 3 {
                    0 => {
                        rt.send(&ids[0], &[("value", Value::from(v))], None).await.unwrap();
                        None
                    }
                    _ => {
                        let envelope = MessageEnvelope::new(value(v)).with_priority((v % 7) as u8);
                        Some(rt.send_envelope(&ids[0], &envelope, None).await.unwrap())
                    }
                });
            }
            let mut last = HlcTimestamp::ZERO;
            for (v, sent) in sent.iter().enumerate() {
                let got = rt.receive_envelope(&ids[2], WAIT).await.unwrap();
                assert_eq!(result_of(&got.message), (v as i32 + 1) * 2 + 3, "FIFO through the pipeline");
                match sent {
                    Some(sent) => assert_answers(&got.header, sent, &ids[2]),
                    None => assert_plain(&got.header, &ids[2]),
                }
                assert!(got.header.timestamp > last);
                last = got.header.timestamp;
            }
        });
    }
}

#[test]
fn a_dropped_message_drops_its_header() {
    for (i, backend) in BACKENDS.into_iter().enumerate() {
        let rt = runtime_on(backend);
        let id = format!("env-keep-even{i}");
        register_stage(&id, 1, 0, true);
        pollster::block_on(async {
            launch(&rt, &id).await;
            let mut sent = Vec::new();
            for v in 0..40 {
                sent.push(rt.send_envelope(&id, &MessageEnvelope::new(value(v)), None).await.unwrap());
            }
            for v in (0..40).step_by(2) {
                let got = rt.receive_envelope(&id, WAIT).await.unwrap();
                assert_eq!(result_of(&got.message), v);
                assert_answers(&got.header, &sent[v as usize], &id);
            }
            assert!(rt.receive_envelope(&id, Some(Duration::from_millis(50))).await.is_err(), "odd ones dropped");
        });
    }
}

/// A `receive_envelope_with` whose `read` panics takes nothing: the answer stays queued with its
/// header, and the next `receive_envelope` gets both (as a plain `*_with` receive's answer stays).
#[test]
fn a_read_that_panics_leaves_the_answer_with_its_header() {
    for backend in BACKENDS {
        let rt = runtime_on(backend);
        let sent: Vec<EnvelopeHeader> = pollster::block_on(async {
            launch(&rt, "doubler").await;
            let mut sent = Vec::new();
            for v in [1, 2] {
                sent.push(rt.send_envelope("doubler", &MessageEnvelope::new(value(v)), None).await.unwrap());
            }
            sent
        });
        common::wait_until("both answers", || rt.kernel_metrics("doubler").unwrap().output_queue_depth == 2);
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pollster::block_on(rt.receive_envelope_with("doubler", WAIT, |_, _| -> i32 { panic!("the read fails") }))
        }));
        assert!(read.is_err(), "{backend:?}: the read panicked");
        pollster::block_on(async {
            for (expected, sent) in [2, 4].into_iter().zip(&sent) {
                let got = rt.receive_envelope("doubler", WAIT).await.unwrap();
                assert_eq!(result_of(&got.message), expected, "{backend:?}");
                assert_answers(&got.header, sent, "doubler");
            }
        });
    }
}

/// Polls until `id` is in `state` (the tick loop notices a lost device asynchronously).
fn wait_for_state(rt: &Runtime, id: &str, state: KernelState) {
    let start = Instant::now();
    while rt.state(id).unwrap() != state {
        assert!(start.elapsed() < Duration::from_secs(30), "{id} never became {state}: {:?}", rt.state(id));
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Messages sent straight into the middle stage carry this much more than the first stage's
/// answers ever reach, so an answer of the last stage says which way it came.
const DIRECT: i32 = 1_000_000;

#[test]
fn headers_and_timestamps_survive_lost_devices_mid_stream_through_a_pipeline() {
    let rt = runtime_on(BackendChoice::Auto);
    let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| format!("env-lost-{s}")).collect();
    for (id, (mul, add)) in ids.iter().zip([(3, 1), (1, 2), (2, 0)]) {
        register_stage(id, mul, add, false);
    }
    let total = 3000;
    pollster::block_on(async {
        for id in &ids {
            launch(&rt, id).await;
        }
        rt.connect(&ids[0], &ids[1]).await.unwrap();
        rt.connect(&ids[1], &ids[2]).await.unwrap();
        // Into the first stage: every fourth message plain. Into the middle one (whose input
        // also comes from the first stage, and is voided and forwarded again after a loss):
        // every fifth value, enveloped.
        let sender = async {
            let (mut first, mut middle) = (Vec::new(), Vec::new());
            for v in 0..total {
                if v % 4 == 0 {
                    rt.send(&ids[0], &[("value", Value::from(v))], None).await.unwrap();
                    first.push(None);
                } else {
                    let envelope = MessageEnvelope::new(value(v)).with_priority((v % 5) as u8);
                    first.push(Some(rt.send_envelope(&ids[0], &envelope, None).await.unwrap()));
                }
                if v % 5 == 0 {
                    let envelope = MessageEnvelope::new(value(DIRECT + v)).with_source("direct");
                    middle.push(rt.send_envelope(&ids[1], &envelope, None).await.unwrap());
                }
            }
            (first, middle)
        };
        let expected = (total + (total + 4) / 5) as usize;
        let receiver = async {
            let (mut answers, mut lost) = (Vec::new(), 0);
            while answers.len() < expected {
                match rt.receive_envelope(&ids[2], WAIT).await {
                    Ok(answer) => answers.push(answer),
                    Err(ringkernel_web::Error::DeviceLost { .. }) => {
                        rt.recover().await.unwrap();
                        wait_for_state(&rt, &ids[2], KernelState::Active);
                    }
                    Err(e) => panic!("after {} answers: {e}", answers.len()),
                }
                if lost < 2 && answers.len() >= (lost + 1) * expected / 3 {
                    rt.destroy_device().unwrap();
                    lost += 1;
                }
            }
            answers
        };
        let ((first, middle), answers) = futures_util::join!(sender, receiver);
        assert_eq!(rt.summary().device.losses, 2);
        check_pipeline_answers(&answers, &first, &middle, 5, &ids[2]);
        assert_eq!(first.len() as i32, total);
    });
}

/// Live migration replays a kernel's held messages as recovery does: the middle stage of a
/// pipeline moves between two devices (its input then crosses devices through the host) while
/// enveloped and plain messages stream through, some sent straight into it just before each
/// move, and every answer keeps its request's header.
#[test]
fn headers_survive_live_migration_of_a_middle_stage() {
    let options = ringkernel_web::RuntimeOptions::default()
        .with_devices([ringkernel_web::DeviceSpec::new(BackendChoice::Auto); 2]);
    let rt = pollster::block_on(Runtime::new(options)).expect("two devices on lavapipe");
    let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| format!("env-move-{s}")).collect();
    for (id, (mul, add)) in ids.iter().zip([(3, 1), (1, 2), (2, 0)]) {
        register_stage(id, mul, add, false);
    }
    let total = 2000;
    pollster::block_on(async {
        for id in &ids {
            let on = LaunchOptions::default().with_queue_capacity(512).on_device(ringkernel_web::DeviceId(0));
            rt.launch(id, on).await.unwrap();
            rt.activate(id).await.unwrap();
        }
        rt.connect(&ids[0], &ids[1]).await.unwrap();
        rt.connect(&ids[1], &ids[2]).await.unwrap();
        let sender = async {
            let (mut first, mut middle) = (Vec::new(), Vec::new());
            for v in 0..total {
                if v % 4 == 0 {
                    rt.send(&ids[0], &[("value", Value::from(v))], None).await.unwrap();
                    first.push(None);
                } else {
                    first.push(Some(rt.send_envelope(&ids[0], &MessageEnvelope::new(value(v)), None).await.unwrap()));
                }
                if v % 250 == 125 {
                    for _ in 0..20 {
                        let envelope = MessageEnvelope::new(value(DIRECT + middle.len() as i32)).with_source("direct");
                        middle.push(rt.send_envelope(&ids[1], &envelope, None).await.unwrap());
                    }
                    let to = ringkernel_web::DeviceId(1 - rt.device_of(&ids[1]).unwrap().0);
                    rt.migrate(&ids[1], to).await.unwrap();
                }
            }
            (first, middle)
        };
        let expected = total as usize + 20 * (total as usize / 250);
        let receiver = async {
            let mut answers = Vec::new();
            while answers.len() < expected {
                answers.push(rt.receive_envelope(&ids[2], WAIT).await.unwrap());
            }
            answers
        };
        let ((first, middle), answers) = futures_util::join!(sender, receiver);
        check_pipeline_answers(&answers, &first, &middle, 1, &ids[2]);
        assert_eq!(first.len() as i32, total);
    });
}

mod fifo_property {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Send,
        SendEnvelope(u8),
        Receive,
        ReceiveEnvelope,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Send),
            any::<u8>().prop_map(Op::SendEnvelope),
            Just(Op::Receive),
            Just(Op::ReceiveEnvelope)
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Per kernel, HLC order is FIFO order: sends are stamped in the order they are queued,
        /// answers come in that order with their own requests' headers, and are stamped in it.
        #[test]
        fn hlc_order_is_fifo_order(ops in proptest::collection::vec(op(), 1..60)) {
            let rt = shared_runtime();
            let id = format!("env-fifo-{}", next_case());
            register_stage(&id, 1, 0, false);
            pollster::block_on(async {
                launch(rt, &id).await;
                // What was sent and not yet received, oldest first.
                let mut pending: std::collections::VecDeque<(i32, Option<EnvelopeHeader>)> = Default::default();
                let (mut next, mut last_sent, mut last_answer) = (0, HlcTimestamp::ZERO, HlcTimestamp::ZERO);
                for op in ops {
                    match op {
                        Op::Send => {
                            rt.send(&id, &[("value", Value::from(next))], None).await.unwrap();
                            pending.push_back((next, None));
                            next += 1;
                        }
                        Op::SendEnvelope(priority) => {
                            let envelope = MessageEnvelope::new(value(next)).with_priority(priority);
                            let sent = rt.send_envelope(&id, &envelope, None).await.unwrap();
                            prop_assert!(sent.timestamp > last_sent);
                            last_sent = sent.timestamp;
                            pending.push_back((next, Some(sent)));
                            next += 1;
                        }
                        Op::Receive => {
                            let Some((v, _)) = pending.pop_front() else { continue };
                            prop_assert_eq!(result_of(&rt.receive(&id, WAIT).await.unwrap()), v);
                        }
                        Op::ReceiveEnvelope => {
                            let Some((v, sent)) = pending.pop_front() else { continue };
                            let got = rt.receive_envelope(&id, WAIT).await.unwrap();
                            prop_assert_eq!(result_of(&got.message), v);
                            match &sent {
                                Some(sent) => assert_answers(&got.header, sent, &id),
                                None => assert_plain(&got.header, &id),
                            }
                            prop_assert!(got.header.timestamp > last_answer);
                            last_answer = got.header.timestamp;
                        }
                    }
                }
                rt.terminate(&id, WAIT).await.unwrap();
                rt.remove(&id).unwrap();
                Ok(())
            })?;
        }
    }

    fn shared_runtime() -> &'static Runtime {
        static RUNTIME: std::sync::OnceLock<Runtime> = std::sync::OnceLock::new();
        RUNTIME.get_or_init(|| runtime_on(BackendChoice::Cpu))
    }

    fn next_case() -> usize {
        static CASES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        CASES.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }
}

//! Fused pipelines (operator chaining): a chain of connected kernels on one GPU runs as one
//! dispatch of one generated module, each stage's `handle` in turn. The answers, their order and
//! every stage's counters must be what the ring-to-ring path gives; a paused middle stage, a
//! stage that may drop or one with state falls back to that path with nothing lost, and the
//! chain fuses again when it can. Stages' names may collide; a compile error names its stage.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::time::Duration;

use common::{launch_chain, receive_n, runtime_on, wait_until};
use ringkernel_web::codegen::{check_fused, generate_fused};
use ringkernel_web::kernel::{doubler_request, doubler_response};
use ringkernel_web::{BackendChoice, Error, KernelDefinition, Runtime, StateElement};

/// Stage `id` computes `value * mul + add` through a helper `f` and a struct `Pair` that every
/// stage declares (same names, different bodies).
fn stage(id: &str, mul: i32, add: i32) -> KernelDefinition {
    let wgsl = format!(
        "// stage {id}\nstruct Pair {{ a: i32, b: i32 }}\nconst K: i32 = {add};\nfn f(p: Pair) -> i32 {{ return p.a * p.b + \
         K; }}\nfn handle(msg: Request) -> Response {{\n    return Response(f(Pair(msg.value, {mul})));\n}}\n"
    );
    KernelDefinition::new(id, doubler_request(), doubler_response(), &wgsl)
}

/// How long one receive of a test waits.
const TIMEOUT: Duration = Duration::from_secs(20);

const STAGES: [(i32, i32); 4] = [(1, 1), (2, 0), (1, 3), (5, 0)];

fn expected(value: i32, stages: &[(i32, i32)]) -> i32 {
    stages.iter().fold(value, |v, (mul, add)| v.wrapping_mul(*mul).wrapping_add(*add))
}

fn fused(rt: &Runtime, id: &str) -> u64 {
    rt.telemetry(id).unwrap().unwrap().fused_dispatches
}

/// Sends single messages through the chain until a tick runs it fused (its module compiles in
/// the background); checks every answer on the way.
fn until_fused(rt: &Runtime, ids: &[String], stages: &[(i32, i32)]) -> u64 {
    let mut sent = 0;
    wait_until("the chain to run fused", || {
        pollster::block_on(async {
            rt.send_pod(&ids[0], &(sent as i32), None).await.unwrap();
            assert_eq!(receive_n(rt, &ids[ids.len() - 1], 1, TIMEOUT).await, [expected(sent as i32, stages)]);
        });
        sent += 1;
        ids.iter().all(|id| fused(rt, id) > 0)
    });
    sent
}

/// Streams `values` through the chain in batches and returns the last stage's answers.
async fn stream(rt: &Runtime, ids: &[String], values: &[i32]) -> Vec<i32> {
    let mut answers = Vec::new();
    for chunk in values.chunks(700) {
        assert_eq!(rt.send_batch(&ids[0], chunk, Some(Duration::from_secs(20))).await.unwrap(), chunk.len());
        answers.extend(receive_n(rt, &ids[ids.len() - 1], chunk.len(), TIMEOUT).await);
    }
    answers
}

#[test]
fn three_and_four_stage_chains_answer_in_order_and_keep_each_stages_counters() {
    let rt = runtime_on(BackendChoice::Auto);
    for n in [3, 4] {
        let stages = &STAGES[..n];
        let definitions =
            stages.iter().enumerate().map(|(i, (mul, add))| stage(&format!("f{n}-{i}"), *mul, *add)).collect();
        let ids = pollster::block_on(launch_chain(&rt, definitions, &[1024, 512, 2048, 1024]));
        let warmup = until_fused(&rt, &ids, stages);

        // One message: one tick, and every stage ran in the chain's one dispatch.
        let before: Vec<(u64, u64)> = ids
            .iter()
            .map(|id| rt.telemetry(id).unwrap().map(|t| (t.dispatches, t.fused_dispatches)).unwrap())
            .collect();
        let ticks = rt.summary().ticks;
        pollster::block_on(async {
            rt.send_pod(&ids[0], &41, None).await.unwrap();
            assert_eq!(receive_n(&rt, &ids[n - 1], 1, TIMEOUT).await, [expected(41, stages)]);
        });
        assert_eq!(rt.summary().ticks - ticks, 1);
        for (id, (dispatches, fused_before)) in ids.iter().zip(before) {
            let t = rt.telemetry(id).unwrap().unwrap();
            assert_eq!((t.dispatches - dispatches, t.fused_dispatches - fused_before), (1, 1), "{id}: ran fused");
        }

        // More than a ring's worth, in order, each answer exactly once.
        let values: Vec<i32> = (0..5000).map(|i| i * 7 - 9000).collect();
        let answers = pollster::block_on(stream(&rt, &ids, &values));
        assert_eq!(answers, values.iter().map(|&v| expected(v, stages)).collect::<Vec<_>>());
        let total = warmup as u64 + 1 + 5000;
        for (i, id) in ids.iter().enumerate() {
            let t = rt.telemetry(id).unwrap().unwrap();
            assert_eq!(t.messages_processed, total, "{id}");
            assert_eq!(t.messages_forwarded, if i < n - 1 { total } else { 0 }, "{id}");
            assert_eq!(t.in_flight + t.input_queue_depth, 0, "{id}");
        }
    }
}

#[test]
fn a_paused_middle_stage_falls_back_loses_nothing_and_the_chain_fuses_again() {
    let rt = runtime_on(BackendChoice::Auto);
    let stages = &STAGES[..3];
    let definitions =
        stages.iter().enumerate().map(|(i, (mul, add))| stage(&format!("pause-{i}"), *mul, *add)).collect();
    let ids = pollster::block_on(launch_chain(&rt, definitions, &[]));
    let warmup = until_fused(&rt, &ids, stages);
    let values: Vec<i32> = (0..1500).collect();
    let answers = pollster::block_on(async {
        let mut answers = Vec::new();
        for (round, chunk) in values.chunks(250).enumerate() {
            assert_eq!(rt.send_batch(&ids[0], chunk, Some(Duration::from_secs(20))).await.unwrap(), chunk.len());
            match round {
                // Paused mid-stream: what the first stage answers waits for it.
                1 => rt.deactivate(&ids[1]).await.unwrap(),
                3 => rt.reactivate(&ids[1]).await.unwrap(),
                _ => {}
            }
            if round != 1 && round != 2 {
                let expect = values[..(round + 1) * 250].len() - answers.len();
                answers.extend(receive_n(&rt, &ids[2], expect, TIMEOUT).await);
            }
        }
        answers
    });
    assert_eq!(answers, values.iter().map(|&v| expected(v, stages)).collect::<Vec<_>>(), "in order, once each");
    // It fuses again.
    let fused_before: Vec<u64> = ids.iter().map(|id| fused(&rt, id)).collect();
    until_fused_again(&rt, &ids, stages, &fused_before);
    let total = warmup as u64 + 1500;
    for id in &ids {
        assert!(rt.telemetry(id).unwrap().unwrap().messages_processed > total, "{id}");
    }
}

fn until_fused_again(rt: &Runtime, ids: &[String], stages: &[(i32, i32)], before: &[u64]) {
    let mut sent = 0;
    wait_until("the chain to fuse again", || {
        pollster::block_on(async {
            rt.send_pod(&ids[0], &sent, None).await.unwrap();
            assert_eq!(receive_n(rt, &ids[ids.len() - 1], 1, TIMEOUT).await, [expected(sent, stages)]);
        });
        sent += 1;
        ids.iter().zip(before).all(|(id, &b)| fused(rt, id) > b)
    });
}

#[test]
fn stages_that_may_drop_or_keep_state_fall_back() {
    let rt = runtime_on(BackendChoice::Auto);
    // a → b fuse; c may drop (odd answers), so it runs on its own behind them.
    let drop_odd = KernelDefinition::new(
        "drop-c",
        doubler_request(),
        doubler_response(),
        "fn handle(msg: Request, out: ptr<function, Response>) -> bool {\n    (*out).result = msg.value;\n    \
         return (msg.value & 1) == 0;\n}",
    );
    let ids = pollster::block_on(launch_chain(&rt, vec![stage("drop-a", 1, 1), stage("drop-b", 2, 0), drop_odd], &[]));
    let stages = &STAGES[..2];
    let mut sent = 0;
    wait_until("a and b to run fused", || {
        pollster::block_on(async {
            rt.send_pod(&ids[0], &sent, None).await.unwrap();
            assert_eq!(receive_n(&rt, &ids[2], 1, TIMEOUT).await, [expected(sent, stages)]);
        });
        sent += 1;
        fused(&rt, &ids[0]) > 0 && fused(&rt, &ids[1]) > 0
    });
    assert_eq!(fused(&rt, &ids[2]), 0, "a stage that may drop never fuses");
    let values: Vec<i32> = (0..2000).collect();
    let answers = pollster::block_on(stream(&rt, &ids, &values));
    assert_eq!(answers, values.iter().map(|&v| expected(v, stages)).collect::<Vec<_>>());

    // A stateful middle stage: nothing fuses, answers as before.
    let counting = KernelDefinition::new(
        "state-b",
        doubler_request(),
        doubler_response(),
        "fn handle(msg: Request) -> Response {\n    atomicAdd(&state[0], 1u);\n    return Response(msg.value * 2);\n}",
    )
    .with_state(StateElement::AtomicU32, 1);
    let ids =
        pollster::block_on(launch_chain(&rt, vec![stage("state-a", 1, 1), counting, stage("state-c", 1, 3)], &[]));
    let values: Vec<i32> = (0..3000).collect();
    let answers = pollster::block_on(stream(&rt, &ids, &values));
    assert_eq!(answers, values.iter().map(|&v| expected(v, &STAGES[..3])).collect::<Vec<_>>());
    for id in &ids {
        assert_eq!(fused(&rt, id), 0, "{id}");
    }
}

#[test]
fn stages_declaring_the_same_names_fuse_and_a_compile_error_names_its_stage_and_line() {
    // Every stage of `stage` declares `Pair`, `K` and `f`; the fused module keeps them apart.
    let defs: Vec<KernelDefinition> =
        STAGES.iter().enumerate().map(|(i, (m, a))| stage(&format!("n{i}"), *m, *a)).collect();
    let refs: Vec<&KernelDefinition> = defs.iter().collect();
    let shader = generate_fused(&refs, 64).unwrap();
    check_fused(&shader).unwrap_or_else(|e| panic!("{e}\n{}", shader.source));

    // Stage 2's own line 4 refers to a name that does not exist.
    let broken = KernelDefinition::new(
        "broken",
        doubler_request(),
        doubler_response(),
        "fn f(x: i32) -> i32 { return x; }\nfn handle(msg: Request) -> Response {\n    let x = f(msg.value);\n    \
         return Response(x + undefined_name);\n}",
    );
    let refs = [&defs[0], &defs[1], &broken];
    let shader = generate_fused(&refs, 64).unwrap();
    match check_fused(&shader) {
        Err(Error::KernelCompile { id, line, message, .. }) => {
            assert_eq!((id.as_str(), line), ("broken", Some(4)), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn disconnecting_a_middle_stage_splits_the_chain_and_reconnecting_fuses_it_again() {
    let rt = runtime_on(BackendChoice::Auto);
    let stages = &STAGES[..3];
    let definitions = stages.iter().enumerate().map(|(i, (mul, add))| stage(&format!("cut-{i}"), *mul, *add)).collect();
    let ids = pollster::block_on(launch_chain(&rt, definitions, &[]));
    until_fused(&rt, &ids, stages);
    let values: Vec<i32> = (0..600).collect();
    pollster::block_on(async {
        assert_eq!(stream(&rt, &ids, &values).await, values.iter().map(|&v| expected(v, stages)).collect::<Vec<_>>());
        // Cut after the middle stage: its answers come to the host.
        rt.disconnect(&ids[1]).await.unwrap();
    });
    let cut_off = fused(&rt, &ids[2]);
    pollster::block_on(async {
        assert_eq!(
            stream(&rt, &ids[..2], &values).await,
            values.iter().map(|&v| expected(v, &stages[..2])).collect::<Vec<_>>()
        );
    });
    // The first two stages are a chain of their own, which fuses once its module has compiled.
    let before: Vec<u64> = ids[..2].iter().map(|id| fused(&rt, id)).collect();
    until_fused_again(&rt, &ids[..2], &stages[..2], &before);
    assert_eq!(fused(&rt, &ids[2]), cut_off, "the stage cut off ran in no fused chain");
    pollster::block_on(rt.connect(&ids[1], &ids[2])).unwrap();
    let before: Vec<u64> = ids.iter().map(|id| fused(&rt, id)).collect();
    until_fused_again(&rt, &ids, stages, &before);
    let answers = pollster::block_on(stream(&rt, &ids, &values));
    assert_eq!(answers, values.iter().map(|&v| expected(v, stages)).collect::<Vec<_>>());
}

/// A long-lived chain fuses again after the device's cache of fused modules fills and drops the
/// entries used longest ago, its own among them (64 other chains come and go while it idles):
/// its module compiles again and gets bind
/// groups of its own, since a layout derived from one pipeline binds that pipeline only. No
/// device error, every answer right.
#[test]
fn a_chain_fuses_again_after_the_cache_of_modules_is_emptied() {
    let rt = runtime_on(BackendChoice::Auto);
    let stages = &STAGES[..2];
    let chain = |name: &str| -> Vec<KernelDefinition> {
        stages.iter().enumerate().map(|(i, (mul, add))| stage(&format!("{name}-{i}"), *mul, *add)).collect()
    };
    let ids = pollster::block_on(launch_chain(&rt, chain("kept"), &[1024, 1024]));
    until_fused(&rt, &ids, stages);
    for round in 0..64 {
        let passing = pollster::block_on(launch_chain(&rt, chain(&format!("passing{round}")), &[64, 64]));
        until_fused(&rt, &passing, stages);
        for id in &passing {
            pollster::block_on(rt.terminate(id, Some(TIMEOUT))).unwrap();
            rt.remove(id).unwrap();
        }
    }
    let before: Vec<u64> = ids.iter().map(|id| fused(&rt, id)).collect();
    until_fused_again(&rt, &ids, stages, &before);
    let values: Vec<i32> = (0..2_000).collect();
    let answers = pollster::block_on(stream(&rt, &ids, &values));
    assert_eq!(answers, values.iter().map(|&v| expected(v, stages)).collect::<Vec<_>>());
    let device = rt.summary().device;
    assert_eq!((device.losses, device.lost), (0, None), "no device error");
}

/// A chain longer than one module's stages fuses in windows that tile it ([0, 6), [6, 12),
/// [12, 16): three modules), whether or not a window's module is ready yet (it compiled one
/// window from every stage on, which overlapped and misaligned the runs). Once they are ready,
/// a message is one tick in which every stage runs fused, and a stream arrives in order.
#[test]
fn a_sixteen_stage_chain_fuses_in_aligned_windows() {
    let rt = runtime_on(BackendChoice::Auto);
    let stages: Vec<(i32, i32)> = (0..16).map(|i| (if i % 4 == 0 { 3 } else { 1 }, i)).collect();
    let definitions = stages.iter().enumerate().map(|(i, (mul, add))| stage(&format!("long{i}"), *mul, *add)).collect();
    let ids = pollster::block_on(launch_chain(&rt, definitions, &[]));
    until_fused(&rt, &ids, &stages);
    let before: Vec<(u64, u64)> =
        ids.iter().map(|id| rt.telemetry(id).unwrap().map(|t| (t.dispatches, t.fused_dispatches)).unwrap()).collect();
    let ticks = rt.summary().ticks;
    pollster::block_on(async {
        rt.send_pod(&ids[0], &5, None).await.unwrap();
        assert_eq!(receive_n(&rt, &ids[15], 1, TIMEOUT).await, [expected(5, &stages)]);
    });
    assert_eq!(rt.summary().ticks - ticks, 1);
    for (id, (dispatches, fused_before)) in ids.iter().zip(before) {
        let t = rt.telemetry(id).unwrap().unwrap();
        assert_eq!((t.dispatches - dispatches, t.fused_dispatches - fused_before), (1, 1), "{id}: ran fused");
    }
    let values: Vec<i32> = (0..2000).map(|i| i * 5 - 3000).collect();
    let answers = pollster::block_on(stream(&rt, &ids, &values));
    assert_eq!(answers, values.iter().map(|&v| expected(v, &stages)).collect::<Vec<_>>());
}

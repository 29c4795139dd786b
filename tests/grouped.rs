//! Grouped dispatches: kernels launched from the same handler, each with a small batch in a
//! tick, run as one dispatch. Every answer must be what a dispatch of its own gives, in order
//! and exactly once, whichever ticks grouped; kernels of other handlers, kernels with state,
//! kernels launched `unfused` and paused kernels stay out of the group, with nothing lost.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::time::Duration;

use common::{receive_n, runtime_on, wait_until};
use ringkernel_web::codegen::generate_grouped;
use ringkernel_web::kernel::{doubler_request, doubler_response};
use ringkernel_web::{BackendChoice, KernelDefinition, LaunchOptions, Runtime, StateElement};

/// How long one receive of a test waits.
const TIMEOUT: Duration = Duration::from_secs(20);

/// `value * mul` (and, with `drop_odd`, no answer for odd values).
fn scaler(id: &str, mul: i32, drop_odd: bool) -> KernelDefinition {
    let wgsl = if drop_odd {
        format!(
            "fn handle(msg: Request, out: ptr<function, Response>) -> bool {{\n    (*out).result = msg.value * {mul};\n    \
             return (msg.value & 1) == 0;\n}}\n"
        )
    } else {
        format!("fn handle(msg: Request) -> Response {{\n    return Response(msg.value * {mul});\n}}\n")
    };
    KernelDefinition::new(id, doubler_request(), doubler_response(), &wgsl)
}

async fn launch(rt: &Runtime, definition: KernelDefinition, options: LaunchOptions) -> String {
    let id = definition.id.clone();
    rt.launch_definition(definition, options.with_queue_capacity(256)).await.unwrap();
    rt.activate(&id).await.unwrap();
    id
}

/// `count` copies of one scaler, `{prefix}0` and up, launched and active: a handler's kernels.
fn launch_copies(rt: &Runtime, prefix: &str, count: usize, drop_odd: bool) -> Vec<String> {
    pollster::block_on(async {
        let mut ids = Vec::new();
        for k in 0..count {
            ids.push(launch(rt, scaler(&format!("{prefix}{k}"), 2, drop_odd), LaunchOptions::default()).await);
        }
        ids
    })
}

fn grouped(rt: &Runtime, id: &str) -> u64 {
    rt.telemetry(id).unwrap().unwrap().grouped_dispatches
}

/// Round `round` sends kernel `k` `1 + (round + k) % 7` messages, `k * 1000 + round * 10 + j`.
fn batch(k: usize, round: usize) -> Vec<i32> {
    (0..1 + (round + k) % 7).map(|j| (k * 1000 + round * 10 + j) as i32).collect()
}

/// The grouped module names no kernel, so copies of a handler share one; state never groups.
#[test]
fn copies_of_a_handler_generate_one_grouped_module() {
    let a = generate_grouped(&scaler("a", 2, false)).unwrap();
    let b = generate_grouped(&scaler("b", 2, false)).unwrap();
    assert_eq!(a.source, b.source);
    assert!(a.source.contains("group_table") && !a.source.contains("'a'"));
    assert_ne!(a.source, generate_grouped(&scaler("c", 3, false)).unwrap().source);
    let dropping = generate_grouped(&scaler("d", 2, true)).unwrap();
    assert!(dropping.source.contains("output_kept"));
    let stateful = scaler("s", 2, false).with_state(StateElement::U32, 4);
    assert!(generate_grouped(&stateful).is_err());
}

/// Twelve kernels of three handlers (one of which drops) plus one with state and one launched
/// `unfused`: rounds of small batches to all of them, every answer checked. The copies group,
/// the others never do, and a kernel paused for some rounds keeps its messages and answers
/// them in order once resumed.
#[test]
fn grouped_kernels_answer_like_lone_ones() {
    let rt = runtime_on(BackendChoice::Auto);
    let mut kernels: Vec<(String, i32, bool)> = Vec::new();
    pollster::block_on(async {
        for k in 0..12 {
            let (mul, drops) = [(2, false), (3, false), (5, true)][k % 3];
            let id = launch(&rt, scaler(&format!("g{k}"), mul, drops), LaunchOptions::default()).await;
            kernels.push((id, mul, drops));
        }
        let stateful = scaler("lone-state", 2, false).with_state(StateElement::U32, 4);
        kernels.push((launch(&rt, stateful, LaunchOptions::default()).await, 2, false));
        kernels.push((
            launch(&rt, scaler("lone-unfused", 2, false), LaunchOptions::default().unfused()).await,
            2,
            false,
        ));
    });
    let paused = &kernels[4].0;
    let expect = |k: usize, values: &[i32]| -> Vec<i32> {
        let (_, mul, drops) = kernels[k];
        values.iter().filter(|v| !drops || *v % 2 == 0).map(|v| v * mul).collect()
    };
    let mut held: Vec<i32> = Vec::new();
    let mut round = 0;
    let run_round = |round: usize, held: &mut Vec<i32>| {
        pollster::block_on(async {
            for (k, (id, _, _)) in kernels.iter().enumerate() {
                rt.send_batch(id, &batch(k, round), None).await.unwrap();
            }
            for (k, (id, _, _)) in kernels.iter().enumerate() {
                if id == paused && (20..30).contains(&round) {
                    held.extend(batch(k, round));
                    continue;
                }
                let mut values = if id == paused && round == 30 { std::mem::take(held) } else { Vec::new() };
                values.extend(batch(k, round));
                let want = expect(k, &values);
                assert_eq!(receive_n(&rt, id, want.len(), TIMEOUT).await, want, "{id}, round {round}");
            }
        });
    };
    // Until every copy has run grouped at least once (its module compiles in the background).
    wait_until("every copy to run grouped", || {
        run_round(round, &mut held);
        round += 1;
        kernels[..12].iter().all(|(id, _, _)| grouped(&rt, id) > 0)
    });
    pollster::block_on(rt.deactivate(paused)).unwrap();
    for r in 20..30 {
        run_round(r, &mut held);
    }
    pollster::block_on(rt.reactivate(paused)).unwrap();
    run_round(30, &mut held);
    for r in 31..60 {
        run_round(r, &mut held);
    }
    for (id, _, _) in &kernels[12..] {
        assert_eq!(grouped(&rt, id), 0, "{id} must never group");
    }
    for (k, (id, _, drops)) in kernels.iter().enumerate() {
        let t = rt.telemetry(id).unwrap().unwrap();
        let sent: u64 = (0..round).chain(20..60).map(|r| batch(k, r).len() as u64).sum();
        assert_eq!(t.messages_processed, sent, "{id}: every message processed once");
        if !drops {
            assert_eq!(t.messages_dropped, 0, "{id}");
        }
        assert!(t.dispatches >= t.grouped_dispatches, "{id}");
        // What its ticks copied back: every message's answer slot (and kept flag, for a handler
        // that drops); per lone tick the ring's 32-byte counters (and the 16-byte state's
        // checkpoint); per grouped tick its 16-byte entry in the group's table.
        let per_message = 4 + if *drops { 4 } else { 0 };
        let per_lone_tick = 32 + if id == "lone-state" { 16 } else { 0 };
        let lone_ticks = t.dispatches - t.grouped_dispatches;
        assert_eq!(
            t.bytes_from_device,
            per_message * t.messages_processed + per_lone_tick * lone_ticks + 16 * t.grouped_dispatches,
            "{id}: bytes read back"
        );
    }
}

/// A grouped tick leaves a kernel's own GPU counters alone; a later tick that runs it alone
/// (here: the only kernel with work) still counts exactly what it processed.
#[test]
fn counters_stay_exact_between_grouped_and_lone_ticks() {
    let rt = runtime_on(BackendChoice::Auto);
    let ids = launch_copies(&rt, "c", 4, false);
    let mut sent = vec![0u64; ids.len()];
    let mut round = |to: &[String], values: &[i32]| {
        pollster::block_on(async {
            for id in to {
                rt.send_batch(id, values, None).await.unwrap();
            }
            for id in to {
                let want: Vec<i32> = values.iter().map(|v| v * 2).collect();
                assert_eq!(receive_n(&rt, id, want.len(), TIMEOUT).await, want);
            }
        });
        for id in to {
            sent[ids.iter().position(|i| i == id).unwrap()] += values.len() as u64;
        }
    };
    wait_until("the copies to run grouped", || {
        round(&ids, &[1, 2, 3]);
        ids.iter().all(|id| grouped(&rt, id) > 0)
    });
    let large: Vec<i32> = (0..200).collect();
    for _ in 0..3 {
        round(&ids[..1], &large);
        round(&ids, &[7]);
        round(&ids[1..2], &[5, 6]);
    }
    for (id, sent) in ids.iter().zip(&sent) {
        let t = rt.telemetry(id).unwrap().unwrap();
        assert_eq!(t.messages_processed, *sent, "{id}");
        assert_eq!(t.messages_received, *sent, "{id}");
    }
    for id in &ids[..2] {
        let t = rt.telemetry(id).unwrap().unwrap();
        assert!(t.dispatches > t.grouped_dispatches, "{id}: ran alone too");
    }
}

/// More kernels of one handler than a group holds, all with messages in one tick: the first
/// 256 run grouped and the rest alone, every answer right. A second group of the handler in the
/// same tick used to overwrite the first's messages and table in their shared buffers, and
/// the first group's kernels received other kernels' answers.
#[test]
fn a_handler_with_more_kernels_than_a_group_holds_answers_each_right() {
    let rt = runtime_on(BackendChoice::Vulkan);
    let ids = launch_copies(&rt, "many", 260, true);
    let rounds = 4;
    pollster::block_on(async {
        for round in 0..rounds {
            let even = |k: usize| (k * 1000 + round * 10) as i32 * 2;
            for (k, id) in ids.iter().enumerate() {
                rt.send_batch(id, &[even(k), even(k) + 1], None).await.unwrap();
            }
            for (k, id) in ids.iter().enumerate() {
                assert_eq!(receive_n(&rt, id, 1, TIMEOUT).await, [even(k) * 2], "{id}, round {round}");
            }
        }
    });
    for id in &ids {
        let t = rt.telemetry(id).unwrap().unwrap();
        assert_eq!((t.messages_processed, t.messages_dropped), (2 * rounds as u64, rounds as u64), "{id}");
    }
    assert!(ids.iter().map(|id| grouped(&rt, id)).sum::<u64>() >= 256, "the handler's kernels grouped");
}

/// A burst's group buffers are not held for good: once the handler's kernels stop running as a
/// group (or run small groups) for 256 ticks, the buffers go, and what the dashboard counts is
/// what the kernels themselves hold again (with the readback, which shrinks alike).
#[test]
fn a_bursts_group_buffers_go_once_the_group_is_idle() {
    let rt = runtime_on(BackendChoice::Auto);
    let held = |rt: &Runtime| {
        let report = rt.gpu_memory_dashboard().report();
        let kernels: u64 = report.by_kernel.values().map(|k| k.total() - k.readback).sum();
        report.used_bytes - report.by_purpose.readback - kernels
    };
    pollster::block_on(async {
        let ids = launch_copies(&rt, "burst", 4, false);
        let other = launch(&rt, scaler("burst-other", 3, false), LaunchOptions::default()).await;
        let burst: Vec<i32> = (0..256).collect();
        while ids.iter().all(|id| grouped(&rt, id) == 0) {
            for id in &ids {
                rt.send_batch(id, &burst, None).await.unwrap();
            }
            for id in &ids {
                receive_n(&rt, id, burst.len(), TIMEOUT).await;
            }
        }
        // A group of two at least (the tick that first grouped them may have had three of the
        // four bursts, or two): its input and answers.
        assert!(held(&rt) >= 2 * 2 * 256 * 4, "the group's input and answers: {} bytes", held(&rt));
        for round in 0..300 {
            rt.send_batch(&other, &[round], None).await.unwrap();
            receive_n(&rt, &other, 1, TIMEOUT).await;
        }
        assert_eq!(held(&rt), 0, "buffers no kernel holds, after 300 ticks without a group");
    });
}

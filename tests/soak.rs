//! Soak (issue 6): 1,000,000 messages through one kernel and through a 3-stage connected
//! pipeline, natively on the GPU (lavapipe without one) and on the cpu backend, with random batch
//! sizes, random receive sizes and random deactivate / reactivate toggles interleaved. Every
//! answer carries its sequence number, so exactly-once and FIFO order are checked on each one,
//! and the counters (`telemetry`, `summary`) must agree with what the test saw.
//!
//! On the GPU the schedule also loses the device now and then (`destroy_device`, then
//! `recover`): messages in flight at that moment are replayed, and every answer must still
//! arrive exactly once and in order.
//!
//! The random schedule is seeded: each test prints its seed (and a one-line JSON summary), and
//! `RINGKERNEL_SOAK_SEED=<n>` replays a schedule.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::time::Duration;
use std::time::Instant;

use common::{runtime_on, stage_value, stage_wgsl, tagged_layout, InOrder, Tagged};
use ringkernel_web::kernel::{self, host};
use ringkernel_web::{BackendChoice, Error, KernelDefinition, LaunchOptions, Runtime};

const MESSAGES: u32 = 1_000_000;
const QUEUE_SIZE: usize = 4096;
/// Send batches are 1..=MAX_BATCH messages; a batch larger than the room left in the queue is
/// accepted in part, and the rest is sent again later.
const MAX_BATCH: u32 = 20_000;
/// Percent chance per step of toggling a random stage (deactivate if active, else reactivate).
const TOGGLE_PERCENT: u32 = 3;
/// On GPU backends, one step in this many loses the device and recovers it.
const FAULT_ONE_IN: u32 = 500;

fn seed() -> u64 {
    std::env::var("RINGKERNEL_SOAK_SEED")
        .ok()
        .map_or(0x5eed_0006, |s| s.parse().expect("RINGKERNEL_SOAK_SEED is a u64"))
}

/// Launches, activates and connects `stages` kernels `{prefix}-0 → {prefix}-1 → ...`; stage `k`
/// computes `stage_value(value, k)` in WGSL and, for the cpu backend, as a host handler.
async fn build_stages(rt: &Runtime, prefix: &str, stages: u32) -> Vec<String> {
    let mut ids = Vec::new();
    for stage in 0..stages {
        let id = format!("{prefix}-{stage}");
        let layout = tagged_layout();
        let definition = KernelDefinition::new(&id, layout.clone(), layout, &stage_wgsl(stage)).with_host_handler(
            host::typed(move |m: &Tagged, _: &mut [u32]| Some(Tagged { value: stage_value(m.value, stage), ..*m })),
        );
        kernel::register_or_replace(definition);
        rt.launch(&id, LaunchOptions::default().with_queue_capacity(QUEUE_SIZE)).await.unwrap();
        rt.activate(&id).await.unwrap();
        ids.push(id);
    }
    for pair in ids.windows(2) {
        rt.connect(&pair[0], &pair[1]).await.unwrap();
    }
    ids
}

/// What one soak run did.
#[derive(Debug, Default)]
struct Soak {
    toggles: u64,
    /// Device losses injected, each followed by a recovery.
    faults: u64,
    /// `send_batch` and `send_pod` calls, and those refused (or, for batches, cut short) with
    /// `QueueFull` because the queue had no room then.
    sends: u64,
    refused_sends: u64,
    /// `receive_batch` and `receive_pod` calls that returned answers, and those that found none
    /// because a stage was paused (each a `Timeout`).
    receives: u64,
    empty_receives: u64,
}

/// Sends `MESSAGES` tagged messages into the first of `ids` and receives every answer from the
/// last, in random steps: a send (a batch of random size taking what fits now, or one in ten a
/// single `send_pod`), a receive (a batch of random size, or one in ten a single `receive_pod`),
/// or a toggle of a random stage. While every stage is active a receive waits for answers (some
/// must come: messages are outstanding); while one is paused it only takes what is already there.
/// Each answer is checked by [`InOrder`] as it arrives. Ends with every stage active.
async fn soak(rt: &Runtime, ids: &[String], seed: u64) -> Soak {
    let (first, last) = (&ids[0], &ids[ids.len() - 1]);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut order = InOrder::new(1, ids.len() as u32);
    let mut active = vec![true; ids.len()];
    let mut batch: Vec<Tagged> = Vec::with_capacity(MAX_BATCH as usize);
    let (mut sent, mut run) = (0u32, Soak::default());
    let on_gpu = rt.adapter().backend != "cpu";
    while order.received < u64::from(MESSAGES) {
        let step = rng.u32(0..100);
        if on_gpu && rng.u32(0..FAULT_ONE_IN) == 0 {
            // Lose the device with whatever is in flight, wait until the pump has failed every
            // stage, then recover: each comes back in the state it was in (paused or not).
            rt.destroy_device().unwrap();
            let lost = Instant::now();
            while ids.iter().any(|id| rt.state(id).unwrap() != ringkernel_web::KernelState::Failed) {
                assert!(lost.elapsed().as_secs() < 30, "the loss was never noticed");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            rt.recover().await.unwrap();
            run.faults += 1;
        } else if step < TOGGLE_PERCENT {
            let stage = rng.usize(..ids.len());
            if active[stage] {
                rt.deactivate(&ids[stage]).await.unwrap();
            } else {
                rt.reactivate(&ids[stage]).await.unwrap();
            }
            active[stage] = !active[stage];
            run.toggles += 1;
        } else if step < 50 && sent < MESSAGES {
            run.sends += 1;
            if rng.u32(0..10) == 0 {
                match rt.send_pod(first, &Tagged::new(0, sent), Some(Duration::from_millis(0))).await {
                    Ok(()) => sent += 1,
                    Err(Error::QueueFull { .. }) => run.refused_sends += 1,
                    Err(e) => panic!("send: {e}"),
                }
            } else {
                let end = sent + rng.u32(1..=MAX_BATCH).min(MESSAGES - sent);
                batch.clear();
                batch.extend((sent..end).map(|seq| Tagged::new(0, seq)));
                // A batch cut short by its zero timeout is a `QueueFull` saying how many went in.
                let accepted = common::accepted(rt.send_batch(first, &batch, Some(Duration::from_millis(0))).await);
                run.refused_sends += u64::from(accepted < batch.len());
                sent += accepted as u32;
            }
        } else if u64::from(sent) > order.received {
            let flowing = !active.contains(&false);
            let timeout = Some(if flowing { Duration::from_secs(60) } else { Duration::ZERO });
            let received = if rng.u32(0..10) == 0 {
                rt.receive_pod::<Tagged>(last, timeout).await.map(|answer| vec![answer])
            } else {
                let max = rng.usize(1..=2 * MAX_BATCH as usize);
                let answers = rt.receive_batch::<Tagged>(last, max, timeout).await;
                answers.inspect(|a| assert!(a.len() <= max, "asked for at most {max}, got {}", a.len()))
            };
            match received {
                Ok(answers) => {
                    order.check(&answers);
                    run.receives += 1;
                }
                Err(Error::Timeout { .. }) if !flowing => run.empty_receives += 1,
                Err(e) => panic!("receive with {} outstanding: {e}", u64::from(sent) - order.received),
            }
        }
    }
    assert_eq!(order.per_sender(), [MESSAGES]);
    for (id, _) in ids.iter().zip(active).filter(|(_, active)| !active) {
        rt.reactivate(id).await.unwrap();
    }
    run
}

/// Runs the soak on `backend` over `stages` connected kernels, then checks that every counter
/// agrees: each stage processed every message, the first ones forwarded all of them, the last
/// one's were all received, nothing is left queued or in flight, and the only errors are the
/// refused sends the test itself counted (an empty receive is not the kernel's error).
fn check_soak(backend: BackendChoice, prefix: &str, stages: u32) {
    let rt = runtime_on(backend);
    let seed = seed();
    pollster::block_on(async {
        let ids = build_stages(&rt, prefix, stages).await;
        let started = Instant::now();
        let run = soak(&rt, &ids, seed).await;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{{\"test\":\"soak\",\"backend\":\"{}\",\"stages\":{stages},\"messages\":{MESSAGES},\"toggles\":{},\
             \"faults\":{},\"sends\":{},\"refusedSends\":{},\"receives\":{},\"emptyReceives\":{},\"seconds\":{seconds:.2},\
             \"seed\":{seed}}}",
            rt.adapter().backend,
            run.toggles,
            run.faults,
            run.sends,
            run.refused_sends,
            run.receives,
            run.empty_receives
        );
        assert!(run.toggles > 0, "the schedule toggled: {run:?}");
        if backend != BackendChoice::Cpu {
            assert!(run.faults > 0, "the schedule lost the device: {run:?}");
            assert_eq!(rt.summary().device.recoveries, run.faults);
        }
        let total = u64::from(MESSAGES);
        for (i, id) in ids.iter().enumerate() {
            let t = rt.telemetry(id).unwrap().unwrap();
            let is_first = i == 0;
            let is_last = i + 1 == ids.len();
            assert_eq!(t.messages_sent, if is_first { total } else { 0 }, "{id}: sent");
            assert_eq!(t.messages_processed, total, "{id}: processed");
            assert_eq!(t.messages_forwarded, if is_last { 0 } else { total }, "{id}: forwarded");
            assert_eq!(t.messages_received, if is_last { total } else { 0 }, "{id}: received");
            assert_eq!(t.messages_dropped, 0, "{id}: dropped");
            assert_eq!((t.input_queue_depth, t.in_flight, t.output_queue_depth), (0, 0, 0), "{id}: left over");
            // Refused sends; a receive that timed out is not the kernel's error.
            let errors = if is_first { run.refused_sends } else { 0 };
            assert_eq!(t.errors, errors, "{id}: errors");
        }
        let summary = rt.summary();
        assert_eq!(summary.total_messages, total * u64::from(stages), "every stage processed every message");
        assert_eq!((summary.total_sent, summary.total_received, summary.total_dropped), (total, total, 0));
    });
}

#[test]
fn soak_a_million_messages_through_one_gpu_kernel_with_random_batches_and_toggles() {
    check_soak(BackendChoice::Auto, "soak-gpu", 1);
}

#[test]
fn soak_a_million_messages_through_a_three_stage_gpu_pipeline_with_toggles_on_random_stages() {
    check_soak(BackendChoice::Auto, "soak-gpu-pipe", 3);
}

#[test]
fn soak_a_million_messages_through_one_kernel_on_the_cpu_backend() {
    check_soak(BackendChoice::Cpu, "soak-cpu", 1);
}

#[test]
fn soak_a_million_messages_through_a_three_stage_pipeline_on_the_cpu_backend() {
    check_soak(BackendChoice::Cpu, "soak-cpu-pipe", 3);
}

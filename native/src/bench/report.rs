//! What one `bench` run found: every measurement with its unit, the ratios that say how far
//! the runtime is from hand-written wgpu, as one JSON document or a table for people.

use ringkernel_web::{AdapterSummary, TickTime};
use serde::Serialize;

use super::devices::Devices;
use super::host_cost::HostCost;
use super::stats::{Latency, Throughput};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub adapter: AdapterSummary,
    pub config: Config,
    pub floors: Floors,
    pub round_trip: RoundTrip,
    /// The runtime doubler next to the raw doubler, batch by batch.
    pub throughput: Vec<BatchComparison>,
    pub per_message: PerMessage,
    pub kernels: Vec<KernelTick>,
    /// 16-kernel rounds against 1-kernel rounds (16 copies active) in alternating blocks; absent
    /// when the plan lacks either count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_rounds: Option<Paired>,
    pub pipeline: Pipeline,
    pub state_checkpoint: StateCheckpoint,
    pub cpu_backend: CpuBackend,
    pub host_cost: HostCost,
    /// Two devices on the adapter: migration pauses and a pipeline across them.
    pub devices: Devices,
    pub ratios: Ratios,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    pub quick: bool,
    pub iterations: usize,
    pub naive_count: usize,
    pub queue_size: usize,
    pub batch_sizes: Vec<usize>,
    pub kernel_counts: Vec<usize>,
    /// The runtime runs with its default telemetry (counters and latency histogram) on.
    pub telemetry: bool,
}

/// What no runtime can beat on this adapter.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Floors {
    /// One submit of a 4-byte copy and one map of it.
    pub submit_and_map: Latency,
    /// The raw doubler on one message: write, dispatch, copy, submit, map.
    pub raw_single: Latency,
}

/// One message through a launched runtime kernel and back.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoundTrip {
    pub send_receive: Latency,
    pub call: Latency,
    /// `send_receive` against the raw single dispatch in alternating blocks of the plan's
    /// iterations each.
    pub paired: Paired,
}

/// A measure and the base it is compared with, timed in alternating blocks, one ratio of p50s
/// per block pair. A software adapter's speed drifts over seconds, so two phases measured one
/// after the other can differ by more than the runtime's own cost; blocks a few tens of
/// milliseconds apart share the machine's state.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Paired {
    /// Samples of each side per block.
    pub block_samples: usize,
    /// Each block pair's p50 ÷ its base's p50, in order.
    pub ratios: Vec<f64>,
    /// Their median (of ten, the mean of the fifth and sixth).
    pub median: f64,
    /// Each block pair's p50 minus its base's p50, in µs, in order: the measure's own extra
    /// time, which a ratio hides when the base is slow.
    pub differences_us: Vec<f64>,
    /// Their median.
    pub median_difference_us: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchComparison {
    pub messages: usize,
    /// `send_batch` + `receive_batch` through the runtime doubler.
    pub runtime: Throughput,
    /// The raw doubler on the whole batch in one dispatch, one invocation per message: the
    /// limit as hand-written wgpu usually reaches it.
    pub raw: Throughput,
    /// The raw doubler dispatched over the grid the runtime would use: the runtime's own cost
    /// apart from its choice of grid.
    pub raw_same_grid: SameGrid,
}

/// The raw doubler on the runtime's grid.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SameGrid {
    pub workgroups: u32,
    #[serde(flatten)]
    pub throughput: Throughput,
}

/// The naive design: one write + dispatch + copy + map per message (raw wgpu).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PerMessage {
    pub messages: usize,
    pub unit: &'static str,
    /// One message per median dispatch, as every batch's rate is its messages per median batch.
    pub msgs_per_sec: f64,
    pub latency: Latency,
}

/// One round of traffic to `kernels` active doublers: a send to each, then a receive from each;
/// next to `kernels` raw doublers dispatched in one submit (what the adapter charges per kernel).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelTick {
    pub kernels: usize,
    pub tick: Latency,
    pub raw_tick: Latency,
    /// Ticks the runtime ran per round (1 when every round's sends went out together).
    pub ticks_per_round: f64,
    /// Whether its kernels ran as grouped dispatches (one dispatch for all of them).
    pub grouped: bool,
    /// Where an average tick of those rounds spent its time.
    pub steps: TickSteps,
}

/// A tick's average time per step, in µs, from the runtime's own tick telemetry
/// (`RuntimeSummary::tick_time`) over the measured rounds.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TickSteps {
    /// Planning: what each kernel takes, forwards and has room for.
    pub plan: f64,
    /// Each kernel's write, the passes, dispatches and copies encoded, and the submit.
    pub submit: f64,
    /// Until the readback is mapped (the device's work included).
    pub wait: f64,
    /// Answers into ledgers and queues.
    pub deliver: f64,
}

impl TickSteps {
    /// The average tick between two summaries' totals: `(ticks, tick_time)` before and after.
    pub fn between(before: (u64, TickTime), after: (u64, TickTime)) -> Self {
        let ticks = after.0.saturating_sub(before.0).max(1) as f64;
        let us = |f: fn(&TickTime) -> f64| (f(&after.1) - f(&before.1)) * 1000.0 / ticks;
        TickSteps {
            plan: us(|t| t.plan_ms),
            submit: us(|t| t.submit_ms),
            wait: us(|t| t.wait_ms),
            deliver: us(|t| t.deliver_ms),
        }
    }

    pub fn host(&self) -> f64 {
        self.plan + self.submit + self.deliver
    }
}

/// One message through `stages` doublers: connected on the GPU (fused into one dispatch; and
/// launched `unfused`, ring to ring), relayed by the host, sent while the middle stage is paused
/// and then resumed, and (for scale) through a single stage.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    pub stages: usize,
    pub connected: Latency,
    pub unfused: Latency,
    pub host_relayed: Latency,
    pub paused_middle_stage: Latency,
    pub single_stage: Latency,
    /// `connected` against a single stage in alternating blocks.
    pub paired: Paired,
}

/// One message's round trip through a kernel with a large state: its state copied back as the
/// checkpoint with every tick (the default), and never (a checkpoint interval).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateCheckpoint {
    pub state_bytes: u64,
    pub every_tick: Latency,
    pub never: Latency,
}

/// The same doubler on the CPU backend (host handlers), for reference.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CpuBackend {
    pub available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_receive: Option<Latency>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub throughput: Vec<Throughput>,
}

/// How the runtime compares; every ratio of latencies uses p50s.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ratios {
    /// Runtime msgs/s ÷ raw msgs/s per batch size: 1.0 is as fast as hand-written wgpu.
    pub batched_over_raw: Vec<SizedRatio>,
    /// The same against the raw doubler on the runtime's grid.
    pub batched_over_raw_same_grid: Vec<SizedRatio>,
    /// Runtime msgs/s at the largest batch ÷ one-dispatch-per-message msgs/s: what batching buys.
    pub batched_over_per_message: SizedRatio,
    /// Runtime send → receive ÷ the raw doubler on one message: the runtime's cost per trip.
    pub round_trip_over_raw_single: f64,
    /// The same from alternating blocks (see [`Paired`]): the median block pair.
    pub round_trip_over_raw_single_paired: f64,
    /// The runtime's extra time per round trip over the raw single dispatch, in µs, from the
    /// same blocks (their median difference of p50s): what the ratio measures, whatever the
    /// adapter's own time.
    pub round_trip_extra_us: f64,
    /// Runtime send → receive ÷ one submit and map: how many GPU round trips a message costs.
    pub round_trip_over_submit_and_map: f64,
    /// Tick with 16 active kernels ÷ tick with 1; absent when either was not measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tick16_over_tick1: Option<f64>,
    /// The same from alternating blocks of 16-kernel and 1-kernel rounds (see [`Paired`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tick16_over_tick1_paired: Option<f64>,
    /// The same for 16 raw doublers in one submit ÷ 1: the adapter's own cost of more kernels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_tick16_over_raw_tick1: Option<f64>,
    /// Connected pipeline round trip ÷ one stage's round trip.
    pub pipeline_over_single_stage: f64,
    /// The same from alternating blocks (see [`Paired`]).
    pub pipeline_over_single_stage_paired: f64,
    /// Host-relayed pipeline round trip ÷ one stage's round trip.
    pub host_relayed_over_single_stage: f64,
    /// Unfused (ring-to-ring) pipeline round trip ÷ one stage's round trip.
    pub unfused_over_single_stage: f64,
    /// Paused-and-resumed middle stage round trip ÷ one stage's round trip.
    pub paused_middle_over_single_stage: f64,
    /// A large state's round trip checkpointed with every tick ÷ never: what the copy back costs.
    pub checkpoint_every_tick_over_never: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SizedRatio {
    pub messages: usize,
    pub value: f64,
}

impl Ratios {
    pub fn compute(
        floors: &Floors,
        round_trip: &RoundTrip,
        throughput: &[BatchComparison],
        per_message: &PerMessage,
        (kernels, kernel_rounds): (&[KernelTick], Option<&Paired>),
        pipeline: &Pipeline,
        state: &StateCheckpoint,
    ) -> Self {
        let tick = |n| kernels.iter().find(|k| k.kernels == n).map(|k| k.tick.p50);
        let raw_tick = |n| kernels.iter().find(|k| k.kernels == n).map(|k| k.raw_tick.p50);
        let largest = throughput.iter().max_by_key(|b| b.messages);
        Ratios {
            batched_over_raw: throughput
                .iter()
                .map(|b| SizedRatio { messages: b.messages, value: b.runtime.msgs_per_sec / b.raw.msgs_per_sec })
                .collect(),
            batched_over_raw_same_grid: throughput
                .iter()
                .map(|b| SizedRatio {
                    messages: b.messages,
                    value: b.runtime.msgs_per_sec / b.raw_same_grid.throughput.msgs_per_sec,
                })
                .collect(),
            batched_over_per_message: SizedRatio {
                messages: largest.map_or(0, |b| b.messages),
                value: largest.map_or(f64::NAN, |b| b.runtime.msgs_per_sec) / per_message.msgs_per_sec,
            },
            round_trip_over_raw_single: round_trip.send_receive.p50 / floors.raw_single.p50,
            round_trip_over_raw_single_paired: round_trip.paired.median,
            round_trip_extra_us: round_trip.paired.median_difference_us,
            round_trip_over_submit_and_map: round_trip.send_receive.p50 / floors.submit_and_map.p50,
            tick16_over_tick1: tick(16).zip(tick(1)).map(|(many, one)| many / one),
            tick16_over_tick1_paired: kernel_rounds.map(|paired| paired.median),
            raw_tick16_over_raw_tick1: raw_tick(16).zip(raw_tick(1)).map(|(many, one)| many / one),
            pipeline_over_single_stage: pipeline.connected.p50 / pipeline.single_stage.p50,
            pipeline_over_single_stage_paired: pipeline.paired.median,
            host_relayed_over_single_stage: pipeline.host_relayed.p50 / pipeline.single_stage.p50,
            unfused_over_single_stage: pipeline.unfused.p50 / pipeline.single_stage.p50,
            paused_middle_over_single_stage: pipeline.paused_middle_stage.p50 / pipeline.single_stage.p50,
            checkpoint_every_tick_over_never: state.every_tick.p50 / state.never.p50,
        }
    }
}

impl Report {
    pub fn print_table(&self) {
        let a = &self.adapter;
        let c = &self.config;
        println!("adapter: {}", crate::backend::adapter_line(a));
        println!(
            "{} samples per latency, doubler queue {}, telemetry {}{}",
            c.iterations,
            c.queue_size,
            if c.telemetry { "on" } else { "off" },
            if c.quick { ", quick" } else { "" }
        );

        println!("\n{:<44}{:>12}{:>12}", "latency (µs)", "p50", "p99");
        let latency_row = |label: &str, l: &Latency| println!("  {label:<42}{:>12.1}{:>12.1}", l.p50, l.p99);
        latency_row("floor: submit + map (4-byte copy)", &self.floors.submit_and_map);
        latency_row("floor: raw doubler, 1 message", &self.floors.raw_single);
        latency_row("runtime: send → receive, 1 message", &self.round_trip.send_receive);
        latency_row("runtime: call, 1 message", &self.round_trip.call);

        println!(
            "\n{:<14}{:>16}{:>16}{:>14}{:>16}{:>14}",
            "throughput", "runtime msgs/s", "raw msgs/s", "runtime/raw", "raw, its grid", "runtime/that"
        );
        let ratios = self.ratios.batched_over_raw.iter().zip(&self.ratios.batched_over_raw_same_grid);
        for (b, (ratio, same_grid)) in self.throughput.iter().zip(ratios) {
            println!(
                "  {:>12}{:>16}{:>16}{:>14.3}{:>16}{:>14.3}",
                grouped(b.messages as f64),
                grouped(b.runtime.msgs_per_sec),
                grouped(b.raw.msgs_per_sec),
                ratio.value,
                grouped(b.raw_same_grid.throughput.msgs_per_sec),
                same_grid.value
            );
        }
        let p = &self.per_message;
        println!(
            "\nper message (raw wgpu, one dispatch + map each): {} messages, {} msgs/s (p50 {:.1} µs)",
            grouped(p.messages as f64),
            grouped(p.msgs_per_sec),
            p.latency.p50
        );

        println!(
            "\n{:<24}{:>14}{:>14}{:>16}{:>16}{:>14}{:>10}",
            "kernels with traffic",
            "tick p50 µs",
            "tick p99 µs",
            "p50 per kernel",
            "raw tick p50 µs",
            "ticks/round",
            "grouped"
        );
        for k in &self.kernels {
            println!(
                "  {:>22}{:>14.1}{:>14.1}{:>16.1}{:>16.1}{:>14.2}{:>10}",
                k.kernels,
                k.tick.p50,
                k.tick.p99,
                k.tick.p50 / k.kernels as f64,
                k.raw_tick.p50,
                k.ticks_per_round,
                if k.grouped { "yes" } else { "no" }
            );
        }
        println!(
            "\n{:<24}{:>10}{:>10}{:>10}{:>10}{:>14}",
            "average tick (µs)", "plan", "submit", "wait", "deliver", "host/kernel"
        );
        for k in &self.kernels {
            let s = &k.steps;
            println!(
                "  {:>22}{:>10.1}{:>10.1}{:>10.1}{:>10.1}{:>14.1}",
                format!("{} kernels", k.kernels),
                s.plan,
                s.submit,
                s.wait,
                s.deliver,
                s.host() / k.kernels as f64
            );
        }

        let p = &self.pipeline;
        println!("\n{:<44}{:>12}{:>12}", format!("{}-stage pipeline (µs)", p.stages), "p50", "p99");
        latency_row("connected on the GPU, fused (one dispatch)", &p.connected);
        latency_row("connected on the GPU, unfused (ring to ring)", &p.unfused);
        latency_row("relayed by the host (a round trip each)", &p.host_relayed);
        latency_row("middle stage paused, then resumed", &p.paused_middle_stage);
        latency_row("a single stage", &p.single_stage);

        let s = &self.state_checkpoint;
        println!(
            "\n{:<44}{:>12}{:>12}",
            format!("{} MiB state, send → receive (µs)", s.state_bytes >> 20),
            "p50",
            "p99"
        );
        latency_row("checkpointed with every tick (the default)", &s.every_tick);
        latency_row("never checkpointed (a checkpoint interval)", &s.never);

        let d = &self.devices;
        println!("\n{:<44}{:>12}{:>12}", format!("two devices, {} migrations (µs)", d.migrations), "p50", "p99");
        latency_row("migration pause (out of every tick)", &d.pause);
        latency_row("migrate call (compiling included)", &d.migrate);
        latency_row("3-stage pipeline, middle on the other device", &d.pipeline_across_devices);
        latency_row("3-stage pipeline, one device", &d.pipeline_one_device);

        let h = &self.host_cost;
        println!(
            "\nhost cost per message (named values, {} a round, median of {}): send {:.0} ns, receive {:.0} ns; \
             with envelopes: send {:.0} ns, receive {:.0} ns",
            grouped(h.messages as f64),
            h.rounds,
            h.send_ns,
            h.receive_ns,
            h.send_envelope_ns,
            h.receive_envelope_ns
        );

        let cpu = &self.cpu_backend;
        match (&cpu.send_receive, &cpu.reason) {
            (Some(l), _) => {
                println!("\ncpu backend (host handlers): send → receive p50 {:.1} µs, p99 {:.1} µs", l.p50, l.p99);
                for t in &cpu.throughput {
                    println!("  {:>12}{:>16} msgs/s", grouped(t.messages as f64), grouped(t.msgs_per_sec));
                }
            }
            (None, reason) => println!("\ncpu backend: unavailable: {}", reason.as_deref().unwrap_or("unknown")),
        }

        let r = &self.ratios;
        println!("\nratios (latencies compare p50s)");
        let sizes: Vec<String> =
            r.batched_over_raw.iter().map(|s| format!("{}: {:.3}", grouped(s.messages as f64), s.value)).collect();
        println!("  batched / raw                   {}  (runtime msgs/s ÷ raw msgs/s)", sizes.join(", "));
        let same_grid: Vec<String> = r
            .batched_over_raw_same_grid
            .iter()
            .map(|s| format!("{}: {:.3}", grouped(s.messages as f64), s.value))
            .collect();
        println!("  batched / raw, the runtime's grid {}", same_grid.join(", "));
        println!(
            "  batched / per-message           {:.1}×  ({} messages batched vs one dispatch each)",
            r.batched_over_per_message.value,
            grouped(r.batched_over_per_message.messages as f64)
        );
        println!(
            "  round trip / raw single         {:.2}×  (alternating blocks: {:.2}×, {:+.0} µs)",
            r.round_trip_over_raw_single, r.round_trip_over_raw_single_paired, r.round_trip_extra_us
        );
        println!("  round trip / submit + map       {:.2}×", r.round_trip_over_submit_and_map);
        match (r.tick16_over_tick1, r.raw_tick16_over_raw_tick1) {
            (Some(v), Some(raw)) => println!(
                "  16-kernel tick / 1-kernel tick  {v:.2}×  (alternating blocks: {}, raw wgpu: {raw:.2}×)",
                r.tick16_over_tick1_paired.map_or("not measured".into(), |p| format!("{p:.2}×"))
            ),
            _ => println!("  16-kernel tick / 1-kernel tick  not measured"),
        }
        println!(
            "  pipeline / single stage         {:.2}×  (alternating blocks: {:.2}×; unfused: {:.2}×, host-relayed: \
             {:.2}×, middle paused: {:.2}×)",
            r.pipeline_over_single_stage,
            r.pipeline_over_single_stage_paired,
            r.unfused_over_single_stage,
            r.host_relayed_over_single_stage,
            r.paused_middle_over_single_stage
        );
        println!(
            "  large state, every tick / never {:.2}×  (a round trip with its state's checkpoint copied back)",
            r.checkpoint_every_tick_over_never
        );
    }
}

/// A whole number with thousands separators: 1234567.8 → "1,234,568".
fn grouped(value: f64) -> String {
    if !value.is_finite() {
        return format!("{value}");
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if value < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::grouped;

    #[test]
    fn thousands_separators() {
        assert_eq!(grouped(0.0), "0");
        assert_eq!(grouped(999.4), "999");
        assert_eq!(grouped(1000.0), "1,000");
        assert_eq!(grouped(1_234_567.8), "1,234,568");
        assert_eq!(grouped(-12_345.0), "-12,345");
    }
}

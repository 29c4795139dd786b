//! `bench`: the runtime against hand-written wgpu, side by side in one run on one adapter
//! (machines are noisy; numbers from different runs do not compare).
//!
//! Measured, in order:
//! 1. floors: one submit + map of a 4-byte copy, and the raw doubler on one message;
//! 2. one message through the runtime doubler and back (`send` → `receive`, and `call`);
//! 3. batches of 1, 1k, 100k and 1M messages through the runtime next to the raw doubler
//!    doing the same batch in one dispatch (one invocation per message, and on the runtime's
//!    grid), taking turns one batch each;
//! 4. one raw dispatch + map per message (the naive design);
//! 5. ticks of 1, 16 and 64 active doublers with traffic, next to as many raw doublers in one
//!    submit;
//! 6. one message through a 4-stage pipeline connected on the GPU (fused into one dispatch, and
//!    unfused: ring to ring), relayed by the host, with its middle stage paused and resumed, and
//!    through a single stage;
//! 7. the host's own cost of one message on the named-values path (`send` and `receive`, one
//!    message a call, no GPU time in the figure);
//! 8. the CPU backend's doubler on the same batches, when that backend is available;
//! 9. two devices of the adapter: a kernel's migration pause, and a pipeline across devices;
//! 10. one message through a kernel with a 4 MiB state, checkpointed with every tick and never.
//!
//! Ratios marked paired (round trip / raw single, 16 / 1 kernels, pipeline / single stage) come
//! from alternating blocks of the two sides, batched / raw from batches taking turns; the others
//! from phases one after the other.
//!
//! Every answer is checked (after its clock stops) and a wrong one fails the bench. Nothing
//! asserts a speed.

mod devices;
mod host_cost;
mod progress;
mod raw;
mod report;
mod runtime_doubler;
mod state_kernel;
mod stats;

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use ringkernel_web::{BackendChoice, Runtime};

use self::progress::Progress;
use self::raw::RawGpu;
use self::report::{
    BatchComparison, Config, CpuBackend, Floors, KernelTick, Paired, PerMessage, Pipeline, Ratios, Report, RoundTrip,
    SameGrid, StateCheckpoint, TickSteps,
};
use self::runtime_doubler::{Fleet, Pipelines, STAGES};
use self::stats::{median, Latency, Throughput};
use crate::backend::{adapter_like, Backend};

/// Block pairs in a paired comparison (see [`report::Paired`]).
const PAIRED_BLOCKS: usize = 10;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Small counts (seconds, for tests and CI) instead of the full sizes.
    #[arg(long)]
    quick: bool,
    /// Print one JSON document on stdout instead of the table; no progress bars.
    #[arg(long)]
    json: bool,
    /// Samples per latency measurement [default: 1000, 20 with --quick]; also the round trips
    /// in each of the ten paired blocks of round trip / raw single (a tenth of it for the other
    /// paired ratios).
    #[arg(long, value_parser = at_least_one)]
    iterations: Option<usize>,
    /// Messages for the one-dispatch-per-message baseline [default: 2000, 50 with --quick].
    #[arg(long, value_parser = at_least_one)]
    naive_count: Option<usize>,
    /// Queue size of the benchmarked doubler; larger batches stream through it.
    #[arg(long, default_value_t = 1 << 20)]
    queue_size: usize,
}

/// A count flag's value: a whole number from 1.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected a whole number from 1, got {text}")),
    }
}

/// Counts for one run, from the flags.
struct Plan {
    quick: bool,
    iterations: usize,
    warmup: usize,
    naive_count: usize,
    queue_size: usize,
    batch_sizes: Vec<usize>,
    kernel_counts: Vec<usize>,
    /// Messages each batch size gets in all, so small batches repeat often and big ones a
    /// few times (between `min_repetitions` and `iterations`).
    batch_budget: usize,
    min_repetitions: usize,
}

impl Plan {
    fn new(args: &BenchArgs) -> Self {
        let iterations = args.iterations.unwrap_or(if args.quick { 20 } else { 1000 });
        Plan {
            quick: args.quick,
            iterations,
            warmup: (iterations / 10).clamp(1, 20),
            naive_count: args.naive_count.unwrap_or(if args.quick { 50 } else { 2000 }),
            queue_size: args.queue_size,
            batch_sizes: if args.quick { vec![1, 1000, 10_000] } else { vec![1, 1000, 100_000, 1_000_000] },
            kernel_counts: if args.quick { vec![1, 16] } else { vec![1, 16, 64] },
            batch_budget: if args.quick { 20_000 } else { 5_000_000 },
            min_repetitions: if args.quick { 3 } else { 5 },
        }
    }

    fn repetitions(&self, messages: usize) -> usize {
        (self.batch_budget / messages).clamp(self.min_repetitions, self.iterations.max(self.min_repetitions))
    }

    fn config(&self) -> Config {
        Config {
            quick: self.quick,
            iterations: self.iterations,
            naive_count: self.naive_count,
            queue_size: self.queue_size,
            batch_sizes: self.batch_sizes.clone(),
            kernel_counts: self.kernel_counts.clone(),
            telemetry: true,
        }
    }
}

pub async fn run(backend: Backend, args: BenchArgs) -> anyhow::Result<()> {
    if backend == Backend::Cpu {
        bail!(
            "bench holds a GPU adapter against hand-written wgpu on it, so it needs a GPU backend; \
             the CPU backend is measured for reference in every bench run"
        );
    }
    let plan = Plan::new(&args);
    let progress = Progress::new(args.json);

    // The runtime's own hint for a missing adapter offers the cpu backend, which bench refuses.
    let runtime = runtime_doubler::open(backend.choice(), plan.queue_size).await.with_context(|| {
        format!(
            "opening the runtime (bench needs a GPU adapter for --backend {}: `info` lists those found, \
             and `--backend cpu demo` runs without one)",
            backend.name()
        )
    })?;
    let adapter = runtime.adapter().clone();
    let wgpu_adapter = adapter_like(&adapter)
        .await
        .ok_or_else(|| anyhow!("wgpu does not list the runtime's adapter {} ({})", adapter.name, adapter.backend))?;
    let raw = RawGpu::open(&wgpu_adapter).await?;
    let bench = Bench { plan: &plan, progress: &progress };

    let floors = bench.floors(&raw).await?;
    let round_trip = RoundTrip {
        send_receive: bench
            .latency(
                "runtime send → receive",
                |i| values(1, i),
                async |v: &[i32]| runtime_doubler::send_receive(&runtime, v[0]).await,
            )
            .await?,
        call: bench
            .latency("runtime call", |i| values(1, i), async |v: &[i32]| runtime_doubler::call(&runtime, v[0]).await)
            .await?,
        paired: bench.paired_round_trip(&raw, &runtime).await?,
    };
    let mut throughput = Vec::new();
    for &messages in &plan.batch_sizes {
        let doubler = raw.doubler(messages);
        let same_grid = raw.doubler_on_grid(messages, Some(runtime_doubler::grid(&runtime, messages).await?));
        let [runtime_batches, raw_batches, same_grid_batches] = bench
            .batches_taking_turns(
                messages,
                async |v: &[i32]| runtime_doubler::batch(&runtime, v).await,
                async |v: &[i32]| doubler.run(v),
                async |v: &[i32]| same_grid.run(v),
            )
            .await?;
        throughput.push(BatchComparison {
            messages,
            runtime: runtime_batches,
            raw: raw_batches,
            raw_same_grid: SameGrid { workgroups: same_grid.workgroups, throughput: same_grid_batches },
        });
    }
    let per_message = bench.per_message(&raw).await?;
    let (kernels, kernel_rounds) = bench.kernel_ticks(&runtime, &raw).await?;
    let pipeline = bench.pipeline(&runtime).await?;
    let state_checkpoint = bench.state_checkpoint(&runtime).await?;
    let host_cost = {
        let (messages, rounds) = if plan.quick { (1_000, 3) } else { (20_000, 7) };
        let measuring = progress.phase("host cost: send, receive", 1);
        let cost = host_cost::measure(&runtime, messages, rounds).await?;
        measuring.finish_and_clear();
        cost
    };
    runtime.dispose().await?;
    let cpu_backend = bench.cpu_backend().await?;
    let devices = {
        let migrations = if plan.quick { 20 } else { 200 };
        let measuring = progress.phase("two devices: migration pause, pipeline across devices", 1);
        let devices = devices::measure(backend.choice(), migrations, plan.iterations.min(300)).await?;
        measuring.finish_and_clear();
        devices
    };

    let ratios = Ratios::compute(
        &floors,
        &round_trip,
        &throughput,
        &per_message,
        (&kernels, kernel_rounds.as_ref()),
        &pipeline,
        &state_checkpoint,
    );
    let report = Report {
        adapter,
        config: plan.config(),
        floors,
        round_trip,
        throughput,
        per_message,
        kernels,
        kernel_rounds,
        pipeline,
        state_checkpoint,
        cpu_backend,
        host_cost,
        devices,
        ratios,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print_table();
    }
    Ok(())
}

/// The measurements, sharing the plan and the progress bars.
struct Bench<'a> {
    plan: &'a Plan,
    progress: &'a Progress,
}

impl Bench<'_> {
    async fn floors(&self, raw: &RawGpu) -> anyhow::Result<Floors> {
        let single = raw.doubler(1);
        Ok(Floors {
            submit_and_map: self
                .latency(
                    "floor: submit + map",
                    |_| Vec::new(),
                    async |_: &[i32]| raw.submit_and_map().map(|()| Vec::new()),
                )
                .await?,
            raw_single: self
                .latency("floor: raw doubler, 1 message", |i| values(1, i), async |v: &[i32]| single.run(v))
                .await?,
        })
    }

    /// `send` → `receive` against the raw single dispatch in alternating blocks of the plan's
    /// iterations each (1,000 round trips by default): the round trip's ratio is the one that
    /// tells builds apart, and blocks of 100 ranked the same two builds differently from one
    /// sitting to the next on a shared two-core machine.
    async fn paired_round_trip(&self, raw: &RawGpu, runtime: &Runtime) -> anyhow::Result<Paired> {
        let single = raw.doubler(1);
        let one = |i| values(1, i);
        self.paired(
            "round trip / raw single",
            self.plan.iterations,
            (2, one, async |v: &[i32]| runtime_doubler::send_receive(runtime, v[0]).await),
            (2, one, async |v: &[i32]| single.run(v)),
        )
        .await
    }

    /// `measure` against `base`, each `(factor, inputs, step)` as [`Bench::timed`] takes them,
    /// in ten alternating blocks of `block_samples` (at least 20) each (see [`Paired`]).
    async fn paired(
        &self,
        what: &str,
        block_samples: usize,
        (factor, inputs, step): (i32, impl Fn(usize) -> Vec<i32>, impl AsyncFn(&[i32]) -> anyhow::Result<Vec<i32>>),
        (base_factor, base_inputs, base): (
            i32,
            impl Fn(usize) -> Vec<i32>,
            impl AsyncFn(&[i32]) -> anyhow::Result<Vec<i32>>,
        ),
    ) -> anyhow::Result<Paired> {
        let block_samples = block_samples.max(20);
        let (mut ratios, mut differences_us) = (Vec::with_capacity(PAIRED_BLOCKS), Vec::with_capacity(PAIRED_BLOCKS));
        for block in 0..PAIRED_BLOCKS {
            // Inputs differ from block to block, so a stale answer cannot pass.
            let first = block * (block_samples + 2);
            let label = format!("{what}: block {}/{PAIRED_BLOCKS}", block + 1);
            // Every other block starts with the measured side, so neither always follows the other.
            let (base_samples, samples) = if block % 2 == 0 {
                let base_samples =
                    self.timed(&label, base_factor, 2, block_samples, |i| base_inputs(first + i), &base).await?;
                (base_samples, self.timed(&label, factor, 2, block_samples, |i| inputs(first + i), &step).await?)
            } else {
                let samples = self.timed(&label, factor, 2, block_samples, |i| inputs(first + i), &step).await?;
                (self.timed(&label, base_factor, 2, block_samples, |i| base_inputs(first + i), &base).await?, samples)
            };
            let (p50, base_p50) = (Latency::from_samples(&samples).p50, Latency::from_samples(&base_samples).p50);
            ratios.push(p50 / base_p50);
            differences_us.push(p50 - base_p50);
        }
        Ok(Paired {
            block_samples,
            median: median(&ratios),
            median_difference_us: median(&differences_us),
            ratios,
            differences_us,
        })
    }

    /// The naive design: every message its own write, dispatch, copy, submit and map.
    async fn per_message(&self, raw: &RawGpu) -> anyhow::Result<PerMessage> {
        let single = raw.doubler(1);
        let samples = self
            .timed(
                "raw, one dispatch per message",
                2,
                self.plan.warmup,
                self.plan.naive_count,
                |i| values(1, i),
                async |v: &[i32]| single.run(v),
            )
            .await?;
        let latency = Latency::from_samples(&samples);
        Ok(PerMessage { messages: samples.len(), unit: "msgs/s", msgs_per_sec: 1e6 / latency.p50, latency })
    }

    /// Batches of `messages` through the runtime doubler of `runtime`.
    async fn runtime_batches(&self, runtime: &Runtime, what: &str, messages: usize) -> anyhow::Result<Throughput> {
        self.throughput(format!("{what} batch of {messages}"), messages, async |v: &[i32]| {
            runtime_doubler::batch(runtime, v).await
        })
        .await
    }

    /// One round of send-to-all and receive-from-all, for each kernel count, next to as many
    /// raw doublers in one submit; and, while 16 are active, 16-kernel rounds against 1-kernel
    /// rounds in alternating blocks, where the plan has both counts.
    async fn kernel_ticks(&self, runtime: &Runtime, raw: &RawGpu) -> anyhow::Result<(Vec<KernelTick>, Option<Paired>)> {
        let most = self.plan.kernel_counts.iter().copied().max().unwrap_or(0);
        let launching = self.progress.phase(format!("launching {most} doublers"), 1);
        let mut fleet = Fleet::launch(runtime, most).await?;
        launching.finish_and_clear();
        let mut ticks = Vec::new();
        let mut rounds = None;
        for &kernels in &self.plan.kernel_counts {
            fleet.activate(runtime, kernels).await?;
            // Kernels of one handler group once the grouped module has compiled (in the
            // background); measure them grouped, where the adapter groups at all.
            for round in 0..2000 {
                if kernels < 2 || fleet.grouped_dispatches(runtime) > 0 {
                    break;
                }
                fleet.tick(runtime, &values(kernels, round)).await?;
            }
            let grouped_before = fleet.grouped_dispatches(runtime);
            let summary = runtime.summary();
            let (ticks_before, time_before) = (summary.ticks, summary.tick_time);
            let tick = self
                .latency(
                    format!("tick, {kernels} kernels"),
                    |i| values(fleet.active(), i),
                    async |v: &[i32]| fleet.tick(runtime, v).await,
                )
                .await?;
            // Rounds whose sends the runtime split over more than one tick show up here.
            let summary = runtime.summary();
            let ticks_per_round =
                (summary.ticks - ticks_before) as f64 / (self.plan.warmup + self.plan.iterations) as f64;
            let steps = TickSteps::between((ticks_before, time_before), (summary.ticks, summary.tick_time));
            let grouped = fleet.grouped_dispatches(runtime) > grouped_before;
            let raw_fleet = raw.fleet(kernels);
            let raw_tick = self
                .latency(
                    format!("raw tick, {kernels} kernels"),
                    |i| values(kernels, i),
                    async |v: &[i32]| raw_fleet.run(v),
                )
                .await?;
            ticks.push(KernelTick { kernels, tick, raw_tick, ticks_per_round, grouped, steps });
            if kernels == 16 && self.plan.kernel_counts.contains(&1) {
                let round = async |v: &[i32]| fleet.tick(runtime, v).await;
                rounds = Some(
                    self.paired(
                        "16-kernel / 1-kernel round",
                        self.plan.iterations / PAIRED_BLOCKS,
                        (2, |i| values(16, i), round),
                        (2, |i| values(1, i), round),
                    )
                    .await?,
                );
            }
        }
        fleet.terminate(runtime).await?;
        Ok((ticks, rounds))
    }

    /// One message through four doublers: connected, host-relayed; and through one, measured in
    /// this phase (the machine drifts between phases).
    async fn pipeline(&self, runtime: &Runtime) -> anyhow::Result<Pipeline> {
        let pipelines = Pipelines::launch(runtime).await?;
        let factor = 1i32 << STAGES;
        let single_stage = self
            .latency(
                "pipeline, single stage",
                |i| values(1, i),
                async |v: &[i32]| runtime_doubler::send_receive(runtime, v[0]).await,
            )
            .await?;
        let connected = self
            .latency_of(
                "pipeline, connected (fused)",
                factor,
                |i| values(1, i),
                async |v: &[i32]| pipelines.connected(runtime, v[0]).await,
            )
            .await?;
        let unfused = self
            .latency_of(
                "pipeline, connected unfused",
                factor,
                |i| values(1, i),
                async |v: &[i32]| pipelines.unfused(runtime, v[0]).await,
            )
            .await?;
        let host_relayed = self
            .latency_of(
                "pipeline, host-relayed",
                factor,
                |i| values(1, i),
                async |v: &[i32]| pipelines.host_relayed(runtime, v[0]).await,
            )
            .await?;
        let paused_middle_stage = self
            .latency_of(
                "pipeline, middle stage paused and resumed",
                factor,
                |i| values(1, i),
                async |v: &[i32]| pipelines.paused_middle(runtime, v[0]).await,
            )
            .await?;
        let paired = self
            .paired(
                "pipeline / single stage",
                self.plan.iterations / PAIRED_BLOCKS,
                (factor, |i| values(1, i), async |v: &[i32]| pipelines.connected(runtime, v[0]).await),
                (2, |i| values(1, i), async |v: &[i32]| runtime_doubler::send_receive(runtime, v[0]).await),
            )
            .await?;
        pipelines.terminate(runtime).await?;
        Ok(Pipeline { stages: STAGES, connected, unfused, host_relayed, paused_middle_stage, single_stage, paired })
    }

    /// One message through a kernel with a large state, checkpointed with every tick and never.
    async fn state_checkpoint(&self, runtime: &Runtime) -> anyhow::Result<StateCheckpoint> {
        state_kernel::launch(runtime).await?;
        let round_trip = async |id: &str| {
            self.latency(
                format!("{id}: 4 MiB state, send → receive"),
                |i| values(1, i),
                async |v: &[i32]| runtime_doubler::send_receive_to(runtime, id, v[0]).await,
            )
            .await
        };
        let every_tick = round_trip(state_kernel::EVERY_TICK).await?;
        let never = round_trip(state_kernel::NEVER).await?;
        state_kernel::remove(runtime).await?;
        Ok(StateCheckpoint { state_bytes: state_kernel::STATE_WORDS as u64 * 4, every_tick, never })
    }

    /// The doubler on the CPU backend, or why there is none.
    async fn cpu_backend(&self) -> anyhow::Result<CpuBackend> {
        let runtime = match runtime_doubler::open(BackendChoice::Cpu, self.plan.queue_size).await {
            Ok(runtime) => runtime,
            Err(e) => return Ok(CpuBackend { reason: Some(format!("{e} ({:?})", e.kind())), ..Default::default() }),
        };
        let send_receive = self
            .latency(
                "cpu send → receive",
                |i| values(1, i),
                async |v: &[i32]| runtime_doubler::send_receive(&runtime, v[0]).await,
            )
            .await?;
        let mut throughput = Vec::new();
        for &messages in &self.plan.batch_sizes {
            throughput.push(self.runtime_batches(&runtime, "cpu", messages).await?);
        }
        runtime.dispose().await?;
        Ok(CpuBackend { available: true, reason: None, send_receive: Some(send_receive), throughput })
    }

    /// Latency of `step` (which doubles its inputs) over the plan's iterations, after its warmup.
    async fn latency(
        &self,
        label: impl Into<String>,
        inputs: impl Fn(usize) -> Vec<i32>,
        step: impl AsyncFnMut(&[i32]) -> anyhow::Result<Vec<i32>>,
    ) -> anyhow::Result<Latency> {
        self.latency_of(label, 2, inputs, step).await
    }

    /// Latency of `step`, which multiplies its inputs by `factor` (wrapping, like WGSL's i32).
    async fn latency_of(
        &self,
        label: impl Into<String>,
        factor: i32,
        inputs: impl Fn(usize) -> Vec<i32>,
        step: impl AsyncFnMut(&[i32]) -> anyhow::Result<Vec<i32>>,
    ) -> anyhow::Result<Latency> {
        let samples = self.timed(label, factor, self.plan.warmup, self.plan.iterations, inputs, step).await?;
        Ok(Latency::from_samples(&samples))
    }

    /// Throughputs of the runtime doubler, the raw doubler and the raw doubler on the runtime's
    /// grid on batches of `messages`, repeated as the plan says, taking turns one batch each (as
    /// the browser bench does): this machine's speed drifts over seconds, and three phases one
    /// after the other compared the runtime with a raw side measured on another machine state.
    /// Each round starts with the next lane, so none always follows the same one.
    async fn batches_taking_turns(
        &self,
        messages: usize,
        mut runtime: impl AsyncFnMut(&[i32]) -> anyhow::Result<Vec<i32>>,
        mut raw: impl AsyncFnMut(&[i32]) -> anyhow::Result<Vec<i32>>,
        mut raw_same_grid: impl AsyncFnMut(&[i32]) -> anyhow::Result<Vec<i32>>,
    ) -> anyhow::Result<[Throughput; 3]> {
        const LANES: [&str; 3] = ["runtime", "raw", "raw, the runtime's grid"];
        let repetitions = self.plan.repetitions(messages);
        let warmup = self.plan.warmup.min(repetitions);
        let bar = self.progress.phase(format!("batches of {messages}, taking turns"), (warmup + repetitions) as u64);
        let mut timings: [Vec<Duration>; 3] = Default::default();
        for i in 0..warmup + repetitions {
            // Each lane its own inputs (three apart), different from sample to sample.
            for turn in 0..LANES.len() {
                let lane = (i + turn) % LANES.len();
                let values = values(messages, i * LANES.len() + lane);
                let start = Instant::now();
                let answers = match lane {
                    0 => runtime(&values).await,
                    1 => raw(&values).await,
                    _ => raw_same_grid(&values).await,
                };
                let elapsed = start.elapsed();
                let what = format!("{} batch of {messages}", LANES[lane]);
                let answers = answers.with_context(|| format!("{what}: step {i}"))?;
                expect_multiplied(&what, 2, &values, &answers)?;
                if i >= warmup {
                    timings[lane].push(elapsed);
                }
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(timings.map(|samples| Throughput::from_samples(messages, &samples)))
    }

    /// Throughput of `step` on batches of `messages`, repeated as the plan says.
    async fn throughput(
        &self,
        label: impl Into<String>,
        messages: usize,
        step: impl AsyncFnMut(&[i32]) -> anyhow::Result<Vec<i32>>,
    ) -> anyhow::Result<Throughput> {
        let repetitions = self.plan.repetitions(messages);
        let warmup = self.plan.warmup.min(repetitions);
        let samples = self.timed(label, 2, warmup, repetitions, |i| values(messages, i), step).await?;
        Ok(Throughput::from_samples(messages, &samples))
    }

    /// Runs `step` `warmup` times untimed and then `samples` times timed, each on fresh inputs
    /// (so a stale answer cannot pass), checking every answer (its input times `factor`) once
    /// its clock has stopped.
    async fn timed(
        &self,
        label: impl Into<String>,
        factor: i32,
        warmup: usize,
        samples: usize,
        inputs: impl Fn(usize) -> Vec<i32>,
        mut step: impl AsyncFnMut(&[i32]) -> anyhow::Result<Vec<i32>>,
    ) -> anyhow::Result<Vec<Duration>> {
        let label = label.into();
        let bar = self.progress.phase(label.as_str(), (warmup + samples) as u64);
        let mut timings = Vec::with_capacity(samples);
        for i in 0..warmup + samples {
            let values = inputs(i);
            let start = Instant::now();
            let answers = step(&values).await.with_context(|| format!("{label}: step {i}"))?;
            let elapsed = start.elapsed();
            expect_multiplied(&label, factor, &values, &answers)?;
            if i >= warmup {
                timings.push(elapsed);
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(timings)
    }
}

/// `count` distinct inputs for sample `sample`, spread over [-2^30, 2^30) so doubling never
/// overflows, and different from sample to sample.
fn values(count: usize, sample: usize) -> Vec<i32> {
    let first = (sample * count) as u32;
    (0..count as u32).map(|i| (first.wrapping_add(i).wrapping_mul(2_654_435_761) >> 1) as i32 - (1 << 30)).collect()
}

/// Fails the bench on any answer that is not its input times `factor` (wrapping), in order.
fn expect_multiplied(what: &str, factor: i32, inputs: &[i32], answers: &[i32]) -> anyhow::Result<()> {
    if answers.len() != inputs.len() {
        bail!("{what}: {} answers to {} messages", answers.len(), inputs.len());
    }
    match inputs.iter().zip(answers).position(|(input, answer)| *answer != input.wrapping_mul(factor)) {
        Some(i) => bail!(
            "{what}: message {i} of {}: {} times {factor} is {}, got {}",
            inputs.len(),
            inputs[i],
            inputs[i].wrapping_mul(factor),
            answers[i]
        ),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_double_without_overflow_and_differ_between_samples() {
        let a = values(1000, 0);
        assert!(a.iter().all(|v| v.checked_mul(2).is_some()));
        assert_ne!(a, values(1000, 1));
        assert!(expect_multiplied("x", 2, &a, &a.iter().map(|v| v * 2).collect::<Vec<_>>()).is_ok());
        assert!(expect_multiplied("x", 2, &a, &a).is_err());
        assert!(expect_multiplied("x", 16, &a, &a.iter().map(|v| v.wrapping_mul(16)).collect::<Vec<_>>()).is_ok());
    }
}

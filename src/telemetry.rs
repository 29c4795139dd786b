//! Telemetry: counted on the GPU where the work happens (processed, dropped, read back with
//! every tick's answers) and on the host where it happens (sent, received, refused, dispatches
//! completed, queue depths, bytes moved, send→answer latency).
//!
//! Field names follow PyDotCompute's `KernelTelemetry` (messages, errors, throughput, uptime)
//! and RingKernel's `KernelMetrics` (dispatches, bytes to and from the device, GPU memory,
//! queue depths, min/mean/max latency), camelCase in JavaScript.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::backend::AdapterSummary;
use crate::circuit::CircuitState;
use crate::degradation::DegradationStatus;
use crate::lifecycle::{KernelMode, KernelState};
use crate::memory::MemoryReport;

/// A snapshot of one kernel's counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct KernelTelemetry {
    /// The kernel's id.
    pub kernel_id: String,
    /// Where the kernel is in its lifecycle.
    pub state: KernelState,
    /// How the tick loop schedules the kernel.
    pub mode: KernelMode,
    /// Bound of the kernel's input queue, in messages (`queue_size`, or `input_queue_size`).
    pub queue_size: usize,
    /// Bound of its output queue, in messages (`queue_size`, or `output_queue_size`).
    pub output_queue_size: usize,
    /// Messages accepted by `send`, `send_batch` and `call` (host → kernel).
    pub messages_sent: u64,
    /// Answers handed to `receive`/`receive_batch`/`call` callers (kernel → host).
    pub messages_received: u64,
    /// Messages the GPU handler ran on (GPU counter).
    pub messages_processed: u64,
    /// Messages the handler chose to drop (GPU counter).
    pub messages_dropped: u64,
    /// Operations on this kernel that failed: refused messages and receives (malformed, full
    /// queue, wrong state, overloaded), timed-out calls and terminates, and host handler
    /// failures. Not counted: a timed-out receive (it refused nothing) and a receive from a
    /// terminated kernel with no answer left (the end of its answers).
    pub errors: u64,
    /// The share of operations that failed, from 0 to 1 (0 before any): `errors` per message
    /// processed or other operation failed. A message whose handler failed is one operation,
    /// though it is among both `messages_processed` and `errors`, as `health` counts it: a
    /// handler that fails every message reads 1.
    pub error_rate: f64,
    /// Dispatches of this kernel whose submission completed (one per tick that had work for it).
    pub dispatches: u64,
    /// Of those, the ones it ran fused with the other stages of its pipeline: one dispatch ran
    /// every fused stage on each message in turn (see `Runtime::connect`). A fused stage's other
    /// counters read as they would had it run alone.
    pub fused_dispatches: u64,
    /// Of those, the ones it ran grouped: one dispatch ran the tick's messages of several
    /// kernels launched from the same handler, each with a small batch. Its other counters read
    /// as they would had it run alone.
    pub grouped_dispatches: u64,
    /// Of those, the ones whose commands were encoded while the device ran the tick before. On
    /// the web a tick of one kernel, or of one fused chain, with at most 16 messages from its
    /// ring's first slot (a round trip's tick) has the next one encoded ahead, so that one only
    /// writes its messages and submits; native ticks encode as they go (0 here). See "Commands
    /// encoded ahead" in `MEASURED.md`.
    pub dispatches_encoded_ahead: u64,
    /// Workgroups of its last dispatch on a GPU (0 before any, and on the cpu backend): the grid
    /// the runtime chose for that tick's messages (see "A small grid on software adapters" in
    /// `MEASURED.md`), or the grid of the fused or grouped dispatch it ran in.
    pub last_workgroups: u32,
    /// Messages waiting on the host to go to the GPU.
    pub input_queue_depth: usize,
    /// Messages in the GPU ring, written but not yet answered.
    pub in_flight: usize,
    /// Answers waiting for `receive`.
    pub output_queue_depth: usize,
    /// Bytes written to the GPU for this kernel: each tick's ring header and its messages.
    pub bytes_to_device: u64,
    /// Bytes read back from the GPU for this kernel: what its ticks copied back (counters, every
    /// answer slot reserved, kept flags, its state's checkpoint) and its state reads.
    pub bytes_from_device: u64,
    /// GPU memory held by the kernel's rings, their header and counters, and its state.
    pub gpu_memory_bytes: u64,
    /// Milliseconds since the kernel was launched.
    pub uptime_ms: f64,
    /// Processed messages per second of uptime.
    pub throughput: f64,
    /// Wall-clock launch time, milliseconds since the Unix epoch.
    pub start_time: f64,
    /// Wall-clock time of the last answer, milliseconds since the Unix epoch (`None` before any).
    pub last_message_time: Option<f64>,
    /// Latency from `send` accepting a message to its answer arriving on the host.
    pub latency: LatencySummary,
    /// Messages still unprocessed when a `terminate` timed out (reported, never silently lost).
    pub unprocessed_at_termination: u64,
    /// Answers that arrived after their `call` had timed out; processed, then discarded.
    pub answers_abandoned: u64,
    /// Answers routed to the connected kernel (`connected_to`) instead of the host.
    pub messages_forwarded: u64,
    /// Sends, calls and receives that waited a second or more on this kernel while it could
    /// not run their input (its output queue full of answers nobody receives, or it was not
    /// active); the first of them for a stall was also reported as a warning. Shorter waits
    /// are not counted.
    pub stalled_sends: u64,
    /// The device it runs on (see [`crate::devices`]).
    pub device: crate::devices::DeviceId,
    /// Times it moved between devices ([`Runtime::migrate`](crate::Runtime::migrate)).
    pub migrations: u64,
    /// The kernel this one's answers go to (see `Runtime::connect`), if any.
    pub connected_to: Option<String>,
    /// Why the handler last failed (`cpu` backend: a host handler that threw or panicked; the
    /// message was dropped and counted in `errors`). `None` while nothing failed.
    pub last_error: Option<String>,
    /// Where the kernel's circuit breaker is (`Closed` while breakers are off).
    pub circuit_state: CircuitState,
    /// Times the kernel's circuit has opened.
    pub circuit_opened: u64,
    /// The watchdog's heartbeat: wall-clock time of the kernel's last progress (or of work
    /// arriving while it was idle, or of a state change), milliseconds since the Unix epoch.
    pub last_progress_time: f64,
    /// Whether the watchdog calls the kernel stale now: it runs, has input, and made no
    /// progress for the heartbeat timeout.
    pub stale: bool,
}

/// Latency statistics in milliseconds; `None` until an answer has been timed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LatencySummary {
    /// Answers whose latency was recorded.
    pub count: u64,
    /// Shortest latency, in milliseconds.
    pub min_ms: Option<f64>,
    /// Mean latency, in milliseconds.
    pub mean_ms: Option<f64>,
    /// Longest latency, in milliseconds.
    pub max_ms: Option<f64>,
    /// Median latency, in milliseconds.
    pub p50_ms: Option<f64>,
    /// 99th-percentile latency, in milliseconds.
    pub p99_ms: Option<f64>,
    /// Sum of all latencies, for Prometheus' `_sum`.
    pub sum_ms: f64,
}

/// Records send→answer latencies in an HDR histogram: O(1) per batch of answers, 1% precision
/// from a microsecond up. The histogram grows to the longest latency it holds, so the minimum,
/// maximum and percentiles are real ones however long (about 4 KB for milliseconds, 14 KB for
/// seconds, 27 KB for an hour: what a histogram bounded at an hour always took, which cut
/// longer latencies to an hour while the mean kept them).
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    /// Made with the first latency recorded: thousands of kernels may be launched and never
    /// answer, and each kernel has two recorders (the degradation manager's window's too).
    histogram: Option<Histogram<u64>>,
    sum_ms: f64,
}

impl LatencyRecorder {
    /// The most a growing histogram holds (hdrhistogram's `i64::MAX / 2`), in microseconds:
    /// about 146,000 years, so nothing a clock measures is cut.
    const HIGHEST_US: u64 = (i64::MAX / 2) as u64;

    /// Forgets every recorded latency (keeps the histogram's memory).
    pub fn reset(&mut self) {
        if let Some(histogram) = self.histogram.as_mut() {
            histogram.reset();
        }
        self.sum_ms = 0.0;
    }

    /// An empty recorder, which holds no histogram until it records a latency.
    pub fn new() -> Self {
        LatencyRecorder { histogram: None, sum_ms: 0.0 }
    }

    /// Records `count` messages that each took `latency_ms`.
    pub fn record(&mut self, latency_ms: f64, count: u64) {
        // The sum takes what the histogram holds, so the mean stays between its min and max.
        let latency_ms = latency_ms.max(0.0).min(Self::HIGHEST_US as f64 / 1000.0);
        let micros = ((latency_ms * 1000.0).round() as u64).min(Self::HIGHEST_US);
        // Auto-resizing: it starts at 2 KB and grows a bucket (1 KB) per doubling of its longest.
        // Matched, not `expect`ed: `expect` would link the error's `Debug` for a panic that cannot come.
        let histogram = self.histogram.get_or_insert_with(|| match Histogram::new(2) {
            Ok(histogram) => histogram,
            Err(_) => unreachable!("a precision of 2 is valid"),
        });
        if histogram.record_n(micros, count).is_err() {
            // Only when the histogram could not grow (its size past `usize`, which it is not).
            histogram.saturating_record_n(micros, count);
        }
        self.sum_ms += latency_ms * count as f64;
    }

    /// Count, min, mean, max, median and 99th percentile of what was recorded (empty before
    /// anything was).
    pub fn summary(&self) -> LatencySummary {
        let Some(h) = self.histogram.as_ref().filter(|h| !h.is_empty()) else {
            return LatencySummary::default();
        };
        let count = h.len();
        let ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            count,
            min_ms: Some(ms(h.min())),
            mean_ms: Some(self.sum_ms / count as f64),
            max_ms: Some(ms(h.max())),
            p50_ms: Some(ms(h.value_at_quantile(0.5))),
            p99_ms: Some(ms(h.value_at_quantile(0.99))),
            sum_ms: self.sum_ms,
        }
    }
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

/// Counters the host keeps for one kernel; GPU counters are copied in with every readback.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    pub messages_sent: u64,
    pub messages_received: u64,
    pub messages_processed: u64,
    pub messages_dropped: u64,
    pub errors: u64,
    pub dispatches: u64,
    pub fused_dispatches: u64,
    pub grouped_dispatches: u64,
    pub dispatches_encoded_ahead: u64,
    pub last_workgroups: u32,
    pub bytes_to_device: u64,
    pub bytes_from_device: u64,
    pub unprocessed_at_termination: u64,
    pub answers_abandoned: u64,
    pub messages_forwarded: u64,
    pub stalled_sends: u64,
    /// `messages_processed` when a stall was last reported as a warning, that stall, and the
    /// stall of the stage that holds the pipeline: the operations that wait on the same stall
    /// after it are counted, not warned of again (ten thousand waiting calls printed ten
    /// thousand lines). Another stall, or the same one after the kernel processed something,
    /// is warned of.
    pub stall_warned: Option<(u64, crate::error::Stall, Option<crate::error::Stall>)>,
    pub migrations: u64,
    pub last_error: Option<String>,
    pub last_message_time: Option<f64>,
    /// `None` when the runtime was created with telemetry disabled.
    pub latency: Option<LatencyRecorder>,
    /// The latencies of the degradation manager's current window (see
    /// `DegradationOptions::window`), kept beside `latency`; restarted every window.
    pub window_latency: Option<LatencyRecorder>,
    /// When the window began, and the p99 of the last complete one (`None`: nothing answered).
    pub window_started_ms: f64,
    pub window_p99_ms: Option<f64>,
    /// When the window last recorded a latency.
    pub window_sampled_ms: f64,
    pub launched_at_ms: f64,
    pub launched_unix_ms: f64,
    pub stopped_at_ms: Option<f64>,
    /// The watchdog's heartbeat, on the runtime's clock (see [`crate::watchdog`]).
    pub heartbeat_ms: f64,
    /// Failures of the kernel itself, what a circuit breaker counts whether or not there is
    /// one: handler errors, device losses, timed-out calls, receives timed out while it ran
    /// with input and made no progress, and failed operations run under its breaker ([`crate::CircuitBreaker::execute`]).
    /// (Refusals such as a full queue are back-pressure, not failures.)
    pub failures: u64,
    /// Of those, the ones that were not messages it processed (all but handler errors): with
    /// the messages processed, what `health`'s error rate divides by.
    pub failed_operations: u64,
}

impl Counters {
    /// `KernelTelemetry::error_rate`: `errors` over the messages processed and the errors
    /// beside them. A handler's failures are among both, so they are taken out of the
    /// divisor once (counted twice, a handler failing every message read 0.5).
    pub fn error_rate(&self) -> f64 {
        // `failures` beyond `failed_operations` are the messages handlers failed.
        let handler_failures = self.failures - self.failed_operations;
        match self.messages_processed + self.errors.saturating_sub(handler_failures) {
            0 => 0.0,
            operations => self.errors as f64 / operations as f64,
        }
    }

    /// A kernel's counters from launch on; latency is recorded only with telemetry on.
    pub fn new(telemetry: bool, now_ms: f64, unix_ms: f64) -> Self {
        Counters {
            latency: telemetry.then(LatencyRecorder::new),
            window_latency: telemetry.then(LatencyRecorder::new),
            window_started_ms: now_ms,
            window_sampled_ms: now_ms,
            launched_at_ms: now_ms,
            launched_unix_ms: unix_ms,
            heartbeat_ms: now_ms,
            ..Default::default()
        }
    }
}

/// What `Runtime::metrics` reports (the seed's `RuntimeMetrics`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RuntimeMetrics {
    /// Kernels in the `active` state now.
    pub active_kernels: usize,
    /// Kernels launched since the runtime was created.
    pub total_launched: u64,
    /// Messages accepted by every kernel's sends since the runtime was created (removed
    /// kernels' too, so it never goes back).
    pub messages_sent: u64,
    /// Answers handed to receivers since the runtime was created (removed kernels' too).
    pub messages_received: u64,
    /// Bytes of GPU buffers the runtime holds.
    pub gpu_memory_used: u64,
    /// Bytes the host queues hold.
    pub host_memory_used: u64,
}

/// Device losses and recoveries (see `Runtime::recover`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DeviceHealth {
    /// Why the device was lost, while kernels wait for recovery; `None` when it is healthy. Of
    /// several lost devices, the one `health` reports, named: one whose recovery failed, else
    /// one waiting for `recover()`, else one recovering.
    pub lost: Option<String>,
    /// Times the device was lost.
    pub losses: u64,
    /// Recoveries onto a new device.
    pub recoveries: u64,
    /// Whether the runtime recovers from a lost device by itself (`RuntimeOptions::auto_recover`).
    pub auto_recover: bool,
    /// Why the last recovery attempt of the device `lost` names failed, until one succeeds.
    pub recovery_error: Option<String>,
}

/// What [`Runtime::complete_shutdown`](crate::Runtime::complete_shutdown) (and `dispose`)
/// reports: the runtime's whole life in numbers, every message accounted for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ShutdownReport {
    /// From creation to shutdown, in milliseconds.
    pub total_uptime_ms: f64,
    /// Kernels launched over the runtime's life, removed ones included.
    pub kernels_launched: u64,
    /// Kernels terminated over the runtime's life, removed ones included.
    pub kernels_terminated: u64,
    /// Messages processed by every kernel (the seeds' `total_messages`).
    pub messages_processed: u64,
    /// Messages accepted but never processed: left behind by a terminate or drain that timed out.
    pub messages_unprocessed: u64,
    /// Answers nobody received: left in output queues at shutdown or when a kernel was
    /// removed, and late answers of calls that had timed out. Counted, never silently discarded.
    pub answers_never_received: u64,
    /// Times the GPU device was lost.
    pub device_losses: u64,
    /// Times a lost device was replaced and its kernels relaunched.
    pub recoveries: u64,
    /// Live migrations of kernels between devices ([`Runtime::migrate`](crate::Runtime::migrate)).
    pub migrated_kernels: u64,
}

/// Where the ticks that did work spent their time, in milliseconds summed since the runtime
/// was created (ticks on several devices overlap, so the sum may exceed the uptime). Divide by
/// [`RuntimeSummary::ticks`] for a tick's average; compare a runtime ticking one kernel with
/// one ticking many for what each kernel costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TickTime {
    /// Planning, under the table lock: what each kernel takes, forwards and has room for.
    pub plan_ms: f64,
    /// Handing the plan to the device, under the lock. On a GPU: each kernel's write, the
    /// passes, dispatches and copies encoded, the submit, the readback's map asked for, and on the
    /// web, after a round trip's tick, the next one's commands encoded ahead (while the device
    /// works); on the cpu backend, nothing yet.
    pub submit_ms: f64,
    /// Waiting, without the lock, until the results are in hand: on a GPU for the readback's
    /// map (the device's work included), on the cpu backend for the host handlers.
    pub wait_ms: f64,
    /// Delivery, under the lock (waiting for it included): answers into ledgers and queues,
    /// counters.
    pub deliver_ms: f64,
}

/// What `Runtime::summary` reports: where the runtime runs, every kernel, and totals. It grows
/// with the runtime (devices, tick time), so it is read, not built, outside this crate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RuntimeSummary {
    /// The adapter's backend, as in [`AdapterSummary::backend`].
    pub backend: String,
    /// The adapter the runtime runs on.
    pub adapter: AdapterSummary,
    /// Whether the runtime was created with telemetry enabled.
    pub telemetry_enabled: bool,
    /// Milliseconds since the runtime was created, until it stopped (then its shutdown
    /// report's `total_uptime_ms`).
    pub uptime_ms: f64,
    /// Kernels in the runtime, in any state.
    pub kernel_count: usize,
    /// Kernels in the `Active` state.
    pub active_kernels: usize,
    /// Ticks that did work: each is one submit and one readback for all kernels (one
    /// run of host handlers on the cpu backend).
    pub ticks: u64,
    /// Where those ticks' host time went, step by step, over every device.
    pub tick_time: TickTime,
    /// Messages processed by the kernels in `per_kernel` (PyDotCompute's `total_messages`), as
    /// every total here is: a removed kernel's counts leave with it (the shutdown report and
    /// `Runtime::metrics` keep them).
    pub total_messages: u64,
    /// Messages accepted by `send`, `send_batch` and `call`, over all kernels.
    pub total_sent: u64,
    /// Answers handed to callers, over all kernels.
    pub total_received: u64,
    /// Messages dropped by handlers, over all kernels.
    pub total_dropped: u64,
    /// Failed operations, over all kernels (see [`KernelTelemetry::errors`]).
    pub total_errors: u64,
    /// Bytes written to the GPU, over all kernels.
    pub total_bytes_to_device: u64,
    /// Bytes read back from the GPU, over all kernels.
    pub total_bytes_from_device: u64,
    /// Sum of every kernel's throughput, messages per second.
    pub aggregate_throughput: f64,
    /// GPU buffers the runtime holds (rings, state, readback) and their bytes: back to where
    /// they were once launched kernels are terminated and removed.
    pub gpu_buffer_count: u64,
    /// Bytes of those buffers.
    pub gpu_buffer_bytes: u64,
    /// Device losses and recoveries, over every device.
    pub device: DeviceHealth,
    /// Each device: adapter, kernels placed there, memory, messages, losses (see
    /// [`Runtime::gpu_topology`](crate::Runtime::gpu_topology)).
    pub devices: Vec<crate::devices::DeviceInfo>,
    /// Every kernel's telemetry by id (latency is empty when telemetry is disabled).
    pub per_kernel: BTreeMap<String, KernelTelemetry>,
    /// Device memory by kernel and by purpose, against the budget (see [`crate::memory`]).
    pub memory: MemoryReport,
    /// The degradation manager's level, reason and signals (see [`crate::degradation`]).
    pub degradation: DegradationStatus,
}

impl RuntimeSummary {
    /// Totals over `per_kernel` (the memory report and degradation status are the caller's to
    /// fill in).
    pub(crate) fn new(
        adapter: AdapterSummary,
        telemetry_enabled: bool,
        uptime_ms: f64,
        ticks: u64,
        (gpu_buffer_count, gpu_buffer_bytes): (u64, u64),
        device: DeviceHealth,
        per_kernel: BTreeMap<String, KernelTelemetry>,
    ) -> Self {
        let total = |f: fn(&KernelTelemetry) -> u64| per_kernel.values().map(f).sum::<u64>();
        RuntimeSummary {
            backend: adapter.backend.clone(),
            telemetry_enabled,
            uptime_ms,
            kernel_count: per_kernel.len(),
            ticks,
            tick_time: TickTime::default(),
            active_kernels: per_kernel.values().filter(|k| k.state == KernelState::Active).count(),
            total_messages: total(|k| k.messages_processed),
            total_sent: total(|k| k.messages_sent),
            total_received: total(|k| k.messages_received),
            total_dropped: total(|k| k.messages_dropped),
            total_errors: total(|k| k.errors),
            total_bytes_to_device: total(|k| k.bytes_to_device),
            total_bytes_from_device: total(|k| k.bytes_from_device),
            aggregate_throughput: per_kernel.values().map(|k| k.throughput).sum(),
            gpu_buffer_count,
            gpu_buffer_bytes,
            device,
            adapter,
            per_kernel,
            memory: MemoryReport::default(),
            degradation: DegradationStatus::default(),
            devices: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorder holds no histogram until it records: a kernel that never
    /// answers costs none, nor does its degradation window's recorder.
    #[test]
    fn a_recorder_holds_no_histogram_until_it_records() {
        let mut recorder = LatencyRecorder::new();
        recorder.reset();
        assert!(recorder.histogram.is_none());
        assert_eq!(recorder.summary(), LatencySummary::default());
        let counters = Counters::new(true, 0.0, 0.0);
        assert!(counters.latency.as_ref().is_some_and(|r| r.histogram.is_none()));
        assert!(counters.window_latency.as_ref().is_some_and(|r| r.histogram.is_none()));
        recorder.record(2.0, 3);
        assert_eq!(recorder.summary().count, 3);
        recorder.reset();
        assert!(recorder.histogram.is_some(), "a reset keeps the histogram's memory");
        assert_eq!(recorder.summary(), LatencySummary::default());
    }

    /// Latencies over an hour are held as they are: min, max and the percentiles show them, and
    /// the mean stays between min and max (a histogram bounded at an hour cut them to an hour
    /// while the mean kept them). Past what the histogram holds, the sum is cut alike. It grows
    /// with the longest latency: one of milliseconds holds less than that hour's 27 KB.
    #[test]
    fn latencies_over_an_hour_are_held_as_they_are() {
        let close = |got: Option<f64>, want: f64| {
            let got = got.unwrap();
            assert!((got - want).abs() <= want * 0.01, "{got} vs {want}");
        };
        let bytes = |recorder: &LatencyRecorder| recorder.histogram.as_ref().unwrap().distinct_values() * 8;
        let mut recorder = LatencyRecorder::new();
        recorder.record(1.0, 1);
        let milliseconds = bytes(&recorder);
        recorder.reset();
        let two_hours = 2.0 * 3_600_000.0;
        recorder.record(two_hours, 3);
        let s = recorder.summary();
        for got in [s.min_ms, s.max_ms, s.p50_ms, s.p99_ms] {
            close(got, two_hours);
        }
        assert_eq!(s.mean_ms, Some(two_hours));
        recorder.record(f64::INFINITY, 1);
        let s = recorder.summary();
        let (min, mean, max) = (s.min_ms.unwrap(), s.mean_ms.unwrap(), s.max_ms.unwrap());
        assert!(min <= mean && mean <= max && max.is_finite(), "{s:?}");
        assert!(milliseconds < 8 * 1024, "{milliseconds} bytes for a millisecond");
    }

    #[test]
    fn latency_summary_from_batches() {
        let mut recorder = LatencyRecorder::new();
        assert_eq!(recorder.summary().count, 0);
        assert_eq!(recorder.summary().p50_ms, None);
        recorder.record(1.0, 98);
        recorder.record(10.0, 1);
        recorder.record(100.0, 1);
        let s = recorder.summary();
        assert_eq!(s.count, 100);
        let close = |got: Option<f64>, want: f64| {
            let got = got.unwrap();
            assert!((got - want).abs() <= want * 0.01, "{got} vs {want}");
        };
        close(s.min_ms, 1.0);
        close(s.p50_ms, 1.0);
        close(s.p99_ms, 10.0);
        close(s.max_ms, 100.0);
        close(s.mean_ms, (98.0 + 10.0 + 100.0) / 100.0);
        assert!((s.sum_ms - 208.0).abs() < 1e-9);
    }
}

//! Read-only views of the runtime: states, ids, layouts, telemetry, the summary and its
//! Prometheus rendering. None of these touch the GPU; GPU counters are as of the last tick.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::handle::KernelHandle;
use super::Runtime;
use crate::error::Result;
use crate::kernel::{KernelDefinition, StateSpec};
use crate::lifecycle::{KernelMode, KernelState};
use crate::message::MessageLayout;
use crate::platform;
use crate::pressure;
use crate::table::Kernel;
use crate::telemetry::{DeviceHealth, KernelTelemetry, RuntimeMetrics, RuntimeSummary};

impl Runtime {
    /// Where the kernel is in its lifecycle.
    pub fn state(&self, id: &str) -> Result<KernelState> {
        Ok(self.kernel_in(&mut self.shared.lock(), id)?.life.state())
    }

    /// The kernel's execution mode (the seeds' name; both are scheduled alike: see [`KernelMode`]).
    pub fn mode(&self, id: &str) -> Result<KernelMode> {
        Ok(self.kernel_in(&mut self.shared.lock(), id)?.mode)
    }

    /// Ids of every kernel in the table (launched and not removed), sorted.
    pub fn kernel_ids(&self) -> Vec<String> {
        self.shared.lock().ids_where(&|_| true)
    }

    /// Ids of the kernels in the `Active` state, sorted.
    pub fn active_kernels(&self) -> Vec<String> {
        self.shared.lock().ids_where(&|k| k.life.state() == KernelState::Active)
    }

    /// A listener that fires when the kernel `id` changes (answers, room, state), or `None`
    /// once it is terminated or removed.
    pub(super) fn until_changed(&self, id: &str) -> Result<Option<event_listener::EventListener>> {
        let mut table = self.shared.lock();
        // Removed, or for a handle, launched again since: not the kernel it waits on.
        let Some(kernel) = table.kernels.get_mut(id).filter(|kernel| self.reaches(kernel, id).is_ok()) else {
            return Ok(None);
        };
        let listener = kernel.changed.listen();
        Ok((kernel.life.state() != KernelState::Terminated).then_some(listener))
    }

    /// Every counter of the kernel `id`, whether or not the runtime keeps telemetry (then the
    /// latency summary is empty).
    pub fn kernel_metrics(&self, id: &str) -> Result<KernelTelemetry> {
        let mut table = self.shared.lock();
        let timeout = table.watchdog.heartbeat_timeout;
        Ok(snapshot(id, self.kernel_in(&mut table, id)?, platform::now_ms(), timeout))
    }

    /// A handle to the kernel `id`, if it exists (the seed's `get_kernel`).
    pub fn get_kernel(&self, id: &str) -> Option<KernelHandle> {
        let table = self.shared.lock();
        table.kernels.get(id).map(|kernel| KernelHandle::new(self, id, kernel.removed.clone(), kernel.instance))
    }

    /// Ids of every kernel, sorted (the seed's `list_kernels`; the same as
    /// [`kernel_ids`](Self::kernel_ids)).
    pub fn list_kernels(&self) -> Vec<String> {
        self.kernel_ids()
    }

    /// The kernel's counters, or `None` when the runtime was created with telemetry disabled.
    pub fn telemetry(&self, id: &str) -> Result<Option<KernelTelemetry>> {
        let mut table = self.shared.lock();
        let timeout = table.watchdog.heartbeat_timeout;
        let kernel = self.kernel_in(&mut table, id)?;
        Ok(self.shared.settings.enable_telemetry.then(|| snapshot(id, kernel, platform::now_ms(), timeout)))
    }

    /// Backend, adapter, every kernel with its state and counters, and runtime totals.
    pub fn summary(&self) -> RuntimeSummary {
        let now = platform::now_ms();
        let mut table = self.shared.lock();
        pressure::evaluate_degradation(&self.shared, &mut table, now);
        let degradation = table.degrader.as_ref().map(|d| d.status()).unwrap_or_default();
        let memory = pressure::memory_report(&self.shared, &table);
        // Inserted rather than collected: `collect` into a B-tree would sort first (a sort of
        // its own in the wasm build, for ids that are unique anyway).
        let mut per_kernel = BTreeMap::new();
        for (id, k) in &table.kernels {
            per_kernel.insert(id.clone(), snapshot(id, k, now, table.watchdog.heartbeat_timeout));
        }
        // The device health itself reports: the summary and `health()` name the same one.
        let lost = table.worst_lost_device(self.shared.settings.auto_recover);
        let device = DeviceHealth {
            lost: lost.map(|(id, d)| self.name_device(id, d.lost_reason().unwrap_or_default())),
            losses: table.devices.iter().map(|d| d.generation).sum(),
            recoveries: table.devices.iter().map(|d| d.recoveries).sum(),
            auto_recover: self.shared.settings.auto_recover,
            recovery_error: lost.and_then(|(_, d)| d.recovery_error.clone()),
        };
        let devices = self.topology_of(&table).devices;
        // A stopped runtime's uptime ended with it, as its report's and its kernels' did.
        let uptime_ms = table.report.as_ref().map_or(now - self.shared.created_at_ms, |r| r.total_uptime_ms);
        let mut summary = RuntimeSummary::new(
            self.adapter(),
            self.shared.settings.enable_telemetry,
            uptime_ms,
            table.ticks,
            (self.shared.buffers.count(), self.shared.buffers.bytes()),
            device,
            per_kernel,
        );
        summary.tick_time = table.tick_time;
        summary.memory = memory;
        summary.degradation = degradation;
        summary.devices = devices;
        summary
    }

    /// The seed's `RuntimeMetrics`: kernels, messages and memory, totalled.
    pub fn metrics(&self) -> RuntimeMetrics {
        let table = self.shared.lock();
        let kernels = table.kernels.values();
        RuntimeMetrics {
            active_kernels: kernels.clone().filter(|k| k.life.state() == KernelState::Active).count(),
            total_launched: table.launched,
            messages_sent: table.retired.messages_sent + kernels.clone().map(|k| k.counters.messages_sent).sum::<u64>(),
            messages_received: table.retired.messages_received
                + kernels.clone().map(|k| k.counters.messages_received).sum::<u64>(),
            gpu_memory_used: self.shared.buffers.bytes(),
            host_memory_used: kernels.map(|k| (k.mailbox.inbox.memory() + k.mailbox.outbox.memory()) as u64).sum(),
        }
    }

    /// The summary and the health verdict in Prometheus' text exposition format, for
    /// scraping. The verdict's error rates are since the previous scrape: scrapes keep their own
    /// window, apart from [`Runtime::health`]'s.
    pub fn metrics_text(&self) -> String {
        let mut text = crate::prometheus::render(&self.summary());
        text.push_str(&crate::prometheus::render_health(&self.health_since(&self.inner.scrape_samples)));
        text
    }

    /// The kernel's definition, shared rather than copied (its layouts, for a caller that packs
    /// messages itself).
    pub fn definition(&self, id: &str) -> Result<Arc<KernelDefinition>> {
        Ok(self.kernel_in(&mut self.shared.lock(), id)?.def.clone())
    }

    /// The layout of the kernel's messages.
    pub fn input_layout(&self, id: &str) -> Result<MessageLayout> {
        Ok(self.kernel_in(&mut self.shared.lock(), id)?.def.input.clone())
    }

    /// The layout of the kernel's answers.
    pub fn output_layout(&self, id: &str) -> Result<MessageLayout> {
        Ok(self.kernel_in(&mut self.shared.lock(), id)?.def.output.clone())
    }

    /// The kernel's state array, if its definition declares one.
    pub fn state_spec(&self, id: &str) -> Result<Option<StateSpec>> {
        Ok(self.kernel_in(&mut self.shared.lock(), id)?.def.state)
    }

    /// The bound of the kernel's input queue, in messages.
    pub fn queue_size(&self, id: &str) -> Result<usize> {
        Ok(self.kernel_in(&mut self.shared.lock(), id)?.mailbox.inbox.capacity())
    }

    /// The answers the kernel `id` has coming for `receive_batch`: what a caller sizes a
    /// batch's buffer by before it waits (the JS layer makes its answer array while the device
    /// works).
    pub fn answers_coming(&self, id: &str) -> Result<AnswersComing> {
        let mut table = self.shared.lock();
        let kernel = self.kernel_in(&mut table, id)?;
        Ok(AnswersComing {
            queued: kernel.mailbox.outbox.len(),
            in_flight: kernel.cursor.in_flight() as usize,
            answer_size: kernel.def.output.size(),
        })
    }
}

/// What [`Runtime::answers_coming`] sees of a kernel's answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AnswersComing {
    /// Answers in the output queue now (a receive takes these without waiting).
    pub queued: usize,
    /// Messages on the device now, whose answers come with its next readback. An upper bound:
    /// a handler that may drop answers fewer, and answers to calls or forwarded to a
    /// connected kernel go elsewhere.
    pub in_flight: usize,
    /// Bytes of one packed answer.
    pub answer_size: usize,
}

fn snapshot(id: &str, kernel: &Kernel, now_ms: f64, heartbeat_timeout: std::time::Duration) -> KernelTelemetry {
    let c = &kernel.counters;
    let uptime_ms = c.stopped_at_ms.unwrap_or(now_ms) - c.launched_at_ms;
    KernelTelemetry {
        kernel_id: id.to_owned(),
        state: kernel.life.state(),
        mode: kernel.mode,
        queue_size: kernel.mailbox.inbox.capacity(),
        output_queue_size: kernel.mailbox.outbox.capacity(),
        messages_sent: c.messages_sent,
        messages_received: c.messages_received,
        messages_processed: c.messages_processed,
        messages_dropped: c.messages_dropped,
        errors: c.errors,
        error_rate: c.error_rate(),
        dispatches: c.dispatches,
        fused_dispatches: c.fused_dispatches,
        grouped_dispatches: c.grouped_dispatches,
        dispatches_encoded_ahead: c.dispatches_encoded_ahead,
        last_workgroups: c.last_workgroups,
        input_queue_depth: kernel.mailbox.inbox.len(),
        in_flight: kernel.cursor.in_flight() as usize,
        output_queue_depth: kernel.mailbox.outbox.len(),
        bytes_to_device: c.bytes_to_device,
        bytes_from_device: c.bytes_from_device,
        gpu_memory_bytes: kernel.resources.exec.as_ref().map_or(0, |exec| exec.device_bytes()),
        uptime_ms,
        throughput: if uptime_ms > 0.0 { c.messages_processed as f64 * 1000.0 / uptime_ms } else { 0.0 },
        start_time: c.launched_unix_ms,
        last_message_time: c.last_message_time,
        latency: c.latency.as_ref().map(|l| l.summary()).unwrap_or_default(),
        unprocessed_at_termination: c.unprocessed_at_termination,
        answers_abandoned: c.answers_abandoned,
        messages_forwarded: c.messages_forwarded,
        stalled_sends: c.stalled_sends,
        device: kernel.device,
        migrations: c.migrations,
        connected_to: kernel.route.downstream.clone(),
        last_error: c.last_error.clone(),
        circuit_state: kernel.circuit_state(now_ms),
        circuit_opened: kernel.breaker.as_ref().map_or(0, |b| b.status(now_ms).opened),
        last_progress_time: c.launched_unix_ms + (c.heartbeat_ms - c.launched_at_ms),
        stale: kernel.stale_for(now_ms, heartbeat_timeout).is_some(),
    }
}

//! Read-only views of the runtime: states, ids, layouts, telemetry, the summary and its
//! Prometheus rendering. None of these touch the GPU; GPU counters are as of the last tick.

use std::collections::BTreeMap;

use super::{kernel_mut, Kernel, Runtime};
use crate::error::{Error, Result};
use crate::lifecycle::{KernelMode, KernelState};
use crate::message::MessageLayout;
use crate::platform;
use crate::telemetry::{DeviceHealth, KernelTelemetry, RuntimeSummary};

impl Runtime {
    pub fn state(&self, id: &str) -> Result<KernelState> {
        Ok(kernel_mut(&mut self.shared.lock(), id)?.state)
    }

    pub fn mode(&self, id: &str) -> Result<KernelMode> {
        Ok(kernel_mut(&mut self.shared.lock(), id)?.mode)
    }

    /// Ids of every kernel in the table (launched and not removed), sorted.
    pub fn kernel_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.shared.lock().kernels.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Ids of the kernels in the `Active` state, sorted.
    pub fn active_kernels(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .shared
            .lock()
            .kernels
            .iter()
            .filter(|(_, k)| k.state == KernelState::Active)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The kernel's counters, or `None` when the runtime was created with telemetry disabled.
    pub fn telemetry(&self, id: &str) -> Result<Option<KernelTelemetry>> {
        let mut table = self.shared.lock();
        let kernel = kernel_mut(&mut table, id)?;
        Ok(self.shared.options.enable_telemetry.then(|| snapshot(id, kernel, platform::now_ms())))
    }

    /// Backend, adapter, every kernel with its state and counters, and runtime totals.
    pub fn summary(&self) -> RuntimeSummary {
        let now = platform::now_ms();
        let table = self.shared.lock();
        let per_kernel: BTreeMap<String, KernelTelemetry> =
            table.kernels.iter().map(|(id, k)| (id.clone(), snapshot(id, k, now))).collect();
        let device = DeviceHealth {
            lost: table.lost.as_ref().map(|lost| match lost {
                Error::DeviceLost { reason } => reason.clone(),
                other => other.to_string(),
            }),
            losses: table.generation,
            recoveries: table.recoveries,
            auto_recover: self.shared.options.auto_recover,
            recovery_error: table.recovery_error.clone(),
        };
        RuntimeSummary::new(
            self.adapter(),
            self.shared.options.enable_telemetry,
            now - self.shared.created_at_ms,
            table.ticks,
            (self.shared.buffers.count(), self.shared.buffers.bytes()),
            device,
            per_kernel,
        )
    }

    /// The summary in Prometheus' text exposition format, for scraping.
    pub fn metrics_text(&self) -> String {
        crate::metrics::render(&self.summary())
    }

    pub fn input_layout(&self, id: &str) -> Result<MessageLayout> {
        Ok(kernel_mut(&mut self.shared.lock(), id)?.def.input.clone())
    }

    pub fn output_layout(&self, id: &str) -> Result<MessageLayout> {
        Ok(kernel_mut(&mut self.shared.lock(), id)?.def.output.clone())
    }

    /// The kernel's state array, if its definition declares one.
    pub fn state_spec(&self, id: &str) -> Result<Option<crate::kernel::StateSpec>> {
        Ok(kernel_mut(&mut self.shared.lock(), id)?.def.state)
    }

    pub fn queue_size(&self, id: &str) -> Result<usize> {
        Ok(kernel_mut(&mut self.shared.lock(), id)?.inbox.capacity())
    }
}

fn snapshot(id: &str, kernel: &Kernel, now_ms: f64) -> KernelTelemetry {
    let c = &kernel.counters;
    let uptime_ms = kernel.stopped_at_ms.unwrap_or(now_ms) - kernel.launched_at_ms;
    KernelTelemetry {
        kernel_id: id.to_owned(),
        state: kernel.state,
        mode: kernel.mode,
        queue_size: kernel.inbox.capacity(),
        messages_sent: c.messages_sent,
        messages_received: c.messages_received,
        messages_processed: c.messages_processed,
        messages_dropped: c.messages_dropped,
        errors: c.errors,
        error_rate: if c.messages_processed == 0 { 0.0 } else { c.errors as f64 / c.messages_processed as f64 },
        dispatches: c.dispatches,
        input_queue_depth: kernel.inbox.len(),
        in_flight: kernel.in_flight() as usize,
        output_queue_depth: kernel.outbox.len(),
        bytes_to_device: c.bytes_to_device,
        bytes_from_device: c.bytes_from_device,
        gpu_memory_bytes: kernel.exec.as_ref().map_or(0, |exec| exec.device_bytes()),
        uptime_ms,
        throughput: if uptime_ms > 0.0 { c.messages_processed as f64 * 1000.0 / uptime_ms } else { 0.0 },
        start_time: kernel.launched_unix_ms,
        last_message_time: c.last_message_time,
        latency: c.latency.as_ref().map(|l| l.summary()).unwrap_or_default(),
        unprocessed_at_termination: c.unprocessed_at_termination,
        answers_abandoned: c.answers_abandoned,
        messages_forwarded: c.messages_forwarded,
        connected_to: kernel.downstream.clone(),
        last_error: c.last_error.clone(),
    }
}

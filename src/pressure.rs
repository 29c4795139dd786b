//! Readings of load off the kernel table: the memory report and pressure (see
//! [`crate::memory`]), the degradation manager's signals and its evaluation (see
//! [`crate::degradation`]). The tick and the runtime's queries both read them here.

use std::collections::BTreeMap;

use crate::backend::StateStore;
use crate::cancel::OnCancel;
use crate::degradation::{DegradationSignals, Policy};
use crate::devices::Load;
use crate::lifecycle::KernelState;
use crate::memory::{self, MemoryByPurpose, MemoryPurpose, MemoryReport};
use crate::table::{Kernel, Shared, Table};

/// One kernel's bytes by purpose: its rings from its device resources, its state from the store
/// that outlives them until the kernel is removed. The state's size comes from its buffer or its
/// definition, never from its words: a host handler holds those locked while it runs, and this
/// is read under the table's lock. A host copy kept on a GPU device (the state of a terminated
/// kernel whose device was lost) is not device memory and counts 0.
pub(crate) fn kernel_memory(kernel: &Kernel, on_cpu: bool) -> MemoryByPurpose {
    let mut bytes = kernel.resources.exec.as_ref().map(|exec| exec.ring_memory()).unwrap_or_default();
    bytes.state = match &kernel.resources.state {
        Some(StateStore::Gpu(buffer)) => buffer.size(),
        Some(StateStore::Cpu(_)) if on_cpu => kernel.def.state.map_or(0, |spec| spec.size_bytes()),
        _ => 0,
    };
    bytes
}

/// Bytes held on the device now, and the pressure they make. On a GPU the buffer statistics
/// say (no lock taken); on the cpu backend the kernels' state words, read under the lock.
pub(crate) fn used_and_pressure(shared: &Shared, table: Option<&Table>) -> (u64, f64) {
    let cpu_devices = cpu_devices(shared);
    let used = match cpu_devices.iter().any(|&cpu| cpu) {
        false => shared.buffers.bytes(),
        true => {
            let state_words = |table: &Table| -> u64 {
                // A loop: each adapter chain over the table is code of its own in the wasm.
                let mut words = 0;
                for kernel in table.kernels.values() {
                    if cpu_devices[kernel.device.index()] {
                        words += kernel_memory(kernel, true).total();
                    }
                }
                words
            };
            shared.buffers.bytes() + table.map_or_else(|| state_words(&shared.lock()), state_words)
        }
    };
    (used, memory::pressure(used, shared.settings.memory_budget))
}

/// What each device holds, by device id: its kernels' queued messages and bytes (rings, flags
/// and state; the tick's shared readback buffer is left out) and their count, in one pass over
/// the kernels (a pass per device and reading, at every launch, made launching many kernels
/// slow). Every device is marked not eligible: placement says which are.
pub(crate) fn loads_by_device(shared: &Shared, table: &Table) -> Vec<Load> {
    let cpu_devices = cpu_devices(shared);
    let mut loads = vec![Load { eligible: false, queued: 0, bytes: 0, kernels: 0 }; cpu_devices.len()];
    for kernel in table.kernels.values() {
        let device = kernel.device.index();
        let load = &mut loads[device];
        load.queued += kernel.input_depth() as u64;
        load.bytes += kernel_memory(kernel, cpu_devices[device]).total();
        load.kernels += 1;
    }
    loads
}

/// For each device, whether it is the cpu backend (whose kernels' state lives in host memory).
fn cpu_devices(shared: &Shared) -> Vec<bool> {
    // Pushed, not collected: each `collect` is a copy of `Vec`'s `from_iter` in the wasm.
    let mut cpu = Vec::new();
    for device in shared.device_ids() {
        cpu.push(shared.device(device).gpu().is_none());
    }
    cpu
}

/// The memory dashboard's snapshot.
pub(crate) fn memory_report(shared: &Shared, table: &Table) -> MemoryReport {
    let cpu_devices = cpu_devices(shared);
    let mut by_kernel = BTreeMap::new();
    // On a GPU every buffer is counted where it is made, readback included; the cpu backend
    // holds only the kernels' state words.
    let mut by_purpose = MemoryByPurpose::of(shared.buffers.by_purpose());
    for (id, kernel) in &table.kernels {
        let on_cpu = cpu_devices[kernel.device.index()];
        let memory = kernel_memory(kernel, on_cpu);
        if on_cpu {
            by_purpose.add(MemoryPurpose::State, memory.state);
        }
        by_kernel.insert(id.clone(), memory);
    }
    let used_bytes = by_purpose.total();
    let budget_bytes = shared.settings.memory_budget;
    MemoryReport {
        by_purpose,
        by_kernel,
        used_bytes,
        budget_bytes,
        pressure: memory::pressure(used_bytes, budget_bytes),
        device_limits: shared.device(crate::devices::DeviceId(0)).memory_limits(),
    }
}

/// Runs the memory watches against the pressure now. Call it with no lock held: callbacks may
/// call back into the runtime.
pub(crate) fn check_memory_alerts(shared: &Shared) {
    {
        let mut alerts = shared.alerts();
        if alerts.is_empty() {
            return;
        }
        // From inside a callback: the round under way looks again once its callbacks are done.
        if alerts.firing {
            alerts.look_again = true;
            return;
        }
        alerts.firing = true;
    }
    // The round ends however it ends (a native callback may panic).
    let _round = OnCancel::new(|| shared.alerts().firing = false);
    loop {
        fire_crossings(shared, None);
        // Ended under the same lock a check from elsewhere asks it to look again under.
        let mut alerts = shared.alerts();
        if !std::mem::take(&mut alerts.look_again) {
            alerts.firing = false;
            return;
        }
    }
}

/// A new watch's own first crossing, at the pressure now, heard before its registration
/// returns: it has no earlier crossing to wait behind, whatever round runs elsewhere. (On the
/// web a JavaScript callback must first have its watch's id: it hears in a microtask after.)
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn check_new_watch(shared: &Shared, id: memory::MemoryWatchId) {
    fire_crossings(shared, Some(id));
}

/// Calls back every watch (or watch `only`) whose threshold the pressure now has crossed.
fn fire_crossings(shared: &Shared, only: Option<memory::MemoryWatchId>) {
    let (used, pressure) = used_and_pressure(shared, None);
    let due = shared.alerts().observe(only, pressure, used, shared.settings.memory_budget);
    memory::fire(due, |id| shared.alerts().holds(id));
}

/// Reads the signals, closes latency windows that have run their span, and evaluates the
/// degradation manager at `now_ms`. Returns what the level means for each kernel (every action
/// off without a manager).
pub(crate) fn evaluate_degradation(shared: &Shared, table: &mut Table, now_ms: f64) -> Policy {
    let Some(degrader) = table.degrader.as_ref() else { return Policy::off() };
    let options = degrader.options().clone();
    let window_ms = options.window.as_secs_f64() * 1000.0;
    let default_budget = options.default_latency_budget.map(|b| b.as_secs_f64() * 1000.0);
    let mut queue_fill: f64 = 0.0;
    let mut latency_ratio: Option<f64> = None;
    let mut top_priority = i32::MIN;
    for kernel in table.kernels.values_mut() {
        if !kernel.life.state().accepts_messages() {
            continue;
        }
        // The load is what active kernels have to do (one terminating takes no new messages): a
        // paused kernel's queue is work held, however full, and its priority protects nothing
        // while it processes none.
        if kernel.life.state() == KernelState::Active {
            top_priority = top_priority.max(kernel.priority);
            queue_fill = queue_fill.max(kernel.mailbox.inbox.fill());
        }
        let counters = &mut kernel.counters;
        if now_ms - counters.window_started_ms >= window_ms {
            if let Some(window) = counters.window_latency.as_mut() {
                // Read late (nothing reads the signals while nothing runs), with nothing
                // answered for a whole span since, the window that ended last is a later,
                // empty one: the latencies of a load long gone are not the last complete
                // window's. Answers of ticks longer than a window still count.
                let recent = now_ms - counters.window_sampled_ms < window_ms;
                counters.window_p99_ms = if recent { window.summary().p99_ms } else { None };
                window.reset();
            }
            counters.window_started_ms = now_ms;
        }
        let budget = kernel.latency_budget_ms.or(default_budget).filter(|b| *b > 0.0);
        if let (Some(p99), Some(budget)) = (counters.window_p99_ms, budget) {
            latency_ratio = Some(latency_ratio.unwrap_or(0.0).max(p99 / budget));
        }
    }
    let (_, memory_pressure) = used_and_pressure(shared, Some(table));
    let degrader = table.degrader.as_mut().expect("checked above");
    degrader.evaluate(DegradationSignals::new(queue_fill, latency_ratio, memory_pressure), now_ms);
    Policy { level: degrader.level(), protected_priority: options.protected_priority, top_priority }
}

/// Whether a kernel ran over its latency budget in the last complete window.
pub(crate) fn over_latency_budget(table: &Table, kernel: &Kernel) -> bool {
    let default_budget =
        table.degrader.as_ref().and_then(|d| d.options().default_latency_budget).map(|b| b.as_secs_f64() * 1000.0);
    match (kernel.counters.window_p99_ms, kernel.latency_budget_ms.or(default_budget)) {
        (Some(p99), Some(budget)) => p99 > budget,
        _ => false,
    }
}

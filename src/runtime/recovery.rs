//! A lost GPU device, and coming back from it.
//!
//! A device can be lost at any time: a driver reset or a GPU watchdog (a handler that ran too
//! long), an unplugged or sleeping GPU, the browser reclaiming a background tab's device, or
//! `device.destroy()` ([`Runtime::destroy_device`] does that, for testing). When a tick fails
//! that way, [`fail_device`]:
//! - moves every kernel that had GPU resources to `Failed`, remembering the state it was in;
//! - puts the messages it had written to the GPU and not yet seen answered back at the front of
//!   its input queue, in their order (the pump holds written input until its answers arrive);
//! - wakes waiting `receive`s and `call`s, which fail with `DeviceLost` (a call's message stays
//!   queued, like a timed-out call's, and its answer is discarded when it comes).
//!
//! Answers already delivered stay receivable, and sends keep being queued (up to the queue
//! size). Nothing is dropped.
//!
//! [`Runtime::recover`] (or the pump itself, with `RuntimeOptions::auto_recover`) opens a new
//! device, relaunches every failed kernel with its state array as of the last tick whose answers
//! were delivered (the pump reads it back with every tick's answers), and returns each to the
//! state it failed in; the pump then processes the queued messages in order. A message whose
//! tick was lost is processed again on the new device, from the state it saw the first time, and
//! only that second answer is delivered: every message is answered exactly once, in order, and
//! state reflects each message once.

use std::sync::{Arc, Mutex};

use super::{create_exec, disposed_error, Runtime, Shared};
use crate::backend::gpu::Readback;
use crate::backend::{Device, KernelExec, StateStore};
use crate::error::{Error, Result};
use crate::lifecycle::{Action, KernelState};

/// With `auto_recover`, how long the pump waits before each attempt to recover (in
/// milliseconds). After the last failed attempt it waits for a manual `recover`.
pub(crate) const AUTO_RECOVERY_DELAYS_MS: [f64; 4] = [0.0, 100.0, 1000.0, 5000.0];

impl Runtime {
    /// Replaces a lost device: opens a new one on the same kind of adapter, relaunches every
    /// failed kernel with its last state checkpoint, returns each to the state it was in, and
    /// lets the pump process the messages that had no answer (see [`recovery`](self)). Resolves
    /// at once when no device was lost (and always on the cpu backend). If opening the device
    /// or relaunching fails, nothing changes and the error says why; `recover` may be retried.
    pub async fn recover(&self) -> Result<()> {
        drop(self.open_table()?);
        recover_device(&self.shared).await
    }

    /// Destroys the GPU device, as a driver reset or an unplugged GPU would lose it, so
    /// applications can test how they handle `DeviceLost` and [`recover`](Self::recover).
    /// Kernels become `Failed` as soon as the pump notices (at once if it is idle).
    pub fn destroy_device(&self) -> Result<()> {
        drop(self.open_table()?);
        match self.shared.device().gpu() {
            Some(gpu) => gpu.destroy("the device was destroyed (destroyDevice)"),
            None => return Err(Error::InvalidArgument("the cpu backend has no device to destroy".into())),
        }
        self.shared.wake_pump.notify(usize::MAX);
        Ok(())
    }
}

/// The tick of `generation` failed with `error`: the device is lost. A failure of a device
/// that was already replaced, or already reported, changes nothing.
pub(crate) fn fail_device(shared: &Shared, error: Error, generation: u64) {
    let mut table = shared.lock();
    if table.generation != generation || table.lost.is_some() {
        return;
    }
    let lost = match error {
        lost @ Error::DeviceLost { .. } => lost,
        // Anything else a tick can fail with means the device is unusable too (an uncaptured
        // validation error, a failed mapping); report it as lost, with the cause.
        other => Error::DeviceLost { reason: other.to_string() },
    };
    table.generation += 1;
    table.readback = Readback::new();
    for kernel in table.kernels.values_mut() {
        // State arrays on the lost device are gone; what remains is each one's checkpoint,
        // which stays readable for kernels that are not relaunched (terminated ones).
        if let (Some(StateStore::Gpu(_)), Some(spec)) = (&kernel.state_store, kernel.def.state) {
            let words = match &kernel.checkpoint {
                Some(bytes) => bytemuck::pod_collect_to_vec(bytes),
                None => vec![0u32; (spec.size_bytes() / 4) as usize],
            };
            kernel.state_store = Some(StateStore::Cpu(Arc::new(Mutex::new(words))));
        }
        if let Some(KernelExec::Gpu(_)) = kernel.exec {
            kernel.resume = Some(kernel.state);
            kernel.state = kernel.state.next(Action::Fail).unwrap_or(KernelState::Failed);
            kernel.exec = None;
            kernel.inbox.requeue_held();
            if let Some((first, count)) = kernel.forwarded_in_flight.take() {
                kernel.ledger.void(first, count);
            }
            kernel.gpu_head = 0;
            kernel.gpu_tail = 0;
            kernel.ledger.abandon_calls(&lost);
        }
        kernel.changed.notify(usize::MAX);
    }
    table.lost = Some(lost);
}

/// Opens a new device and relaunches the failed kernels on it (see [`Runtime::recover`]).
pub(crate) async fn recover_device(shared: &Arc<Shared>) -> Result<()> {
    let _one_at_a_time = shared.recovering.lock().await;
    let relaunch: Vec<_> = {
        let table = shared.lock();
        if table.disposed {
            return Err(disposed_error());
        }
        if table.lost.is_none() {
            return Ok(());
        }
        table
            .kernels
            .iter()
            .filter(|(_, k)| k.resume.is_some())
            .map(|(id, k)| (id.clone(), k.instance, k.def.clone(), k.inbox.capacity(), k.checkpoint.clone()))
            .collect()
    };
    let rebuilt = async {
        #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
        let device =
            Arc::new(Device::open(shared.options.backend, shared.buffers.clone(), shared.wake_pump.clone()).await?);
        let mut execs = Vec::with_capacity(relaunch.len());
        for (id, instance, definition, queue_size, checkpoint) in relaunch {
            let exec = create_exec(device.clone(), definition, queue_size).await?;
            if let (Some(StateStore::Gpu(state)), Some(checkpoint), Some(gpu)) =
                (exec.state_store(), checkpoint, device.gpu())
            {
                gpu.queue.write_buffer(&state, 0, &checkpoint);
            }
            execs.push((id, instance, exec));
        }
        Ok::<_, Error>((device, execs))
    }
    .await;
    let mut table = shared.lock();
    let (device, execs) = match rebuilt {
        Ok(rebuilt) => rebuilt,
        Err(error) => {
            table.recovery_error = Some(error.to_string());
            return Err(error);
        }
    };
    *shared.device.write().unwrap_or_else(|p| p.into_inner()) = device;
    for (id, instance, exec) in execs {
        // Skip a kernel terminated (stranded) while the device was being replaced.
        let Some(kernel) = table.kernels.get_mut(&id).filter(|k| k.instance == instance) else { continue };
        let Some(resume) = kernel.resume.take() else { continue };
        if kernel.state == KernelState::Failed {
            kernel.state = resume;
        }
        kernel.state_store = exec.state_store();
        kernel.exec = Some(exec);
        let c = &kernel.counters;
        kernel.counted_before = (c.messages_processed, c.messages_dropped, c.dispatches);
        kernel.changed.notify(usize::MAX);
    }
    table.lost = None;
    table.recoveries += 1;
    table.recovery_error = None;
    drop(table);
    shared.wake_pump.notify(usize::MAX);
    Ok(())
}

//! A lost GPU device, and coming back from it.
//!
//! A device can be lost at any time: a driver reset or a GPU watchdog (a handler that ran too
//! long), an unplugged or sleeping GPU, the browser reclaiming a background tab's device, or
//! `device.destroy()` (`Runtime::destroy_device` does that, for testing). The tick loop hands
//! every tick's outcome to [`Recovery::after_tick`], the one entry point here. When a tick
//! failed that way, the device is declared lost (only that device: a runtime's other devices
//! and their kernels keep running):
//! - every kernel on it that had GPU resources moves to `Failed` (through the lifecycle table,
//!   which remembers the state it was in);
//! - the messages it had written to the GPU and not yet seen answered go back to the front of
//!   its input queue, in their order (see [`crate::cursor`]);
//! - waiting `receive`s and `call`s fail with `DeviceLost` (a call's message stays queued, like a
//!   timed-out call's, and its answer is discarded when it comes).
//!
//! Answers already delivered stay receivable, and sends keep being queued (up to the queue
//! size). Nothing is dropped.
//!
//! [`recover_device`] (`Runtime::recover`, or the loop itself with automatic recovery) opens a
//! new device (for the application's own device, takes the one the application handed with
//! `Runtime::replace_shared_device`: automatic recovery leaves those alone), relaunches every
//! failed kernel with its state array as of the last tick whose answers were delivered (every tick reads it back with the answers, unless a checkpoint
//! interval spaces those copies out: see the `checkpoint` module), and returns each to the
//! state it failed in; the tick then processes the queued messages in order. A message whose
//! tick was lost is processed again on the new device, from the state it saw the first time, and
//! only that second answer is delivered: every message is answered exactly once, in order, and
//! state reflects each message once.

use std::sync::{Arc, Mutex};

use crate::backend::{Device, DeviceSource, KernelExec, StateStore};
use crate::device_events::DeviceEventKind;
use crate::devices::DeviceId;
use crate::error::{Error, Quoted, Result};
use crate::lifecycle::{Action, LifecycleState};
use crate::platform;
use crate::spans::{self, Phase};
use crate::table::{Failed, Shared, Table};
use crate::waiting;

/// With automatic recovery, how long the loop waits before each attempt to recover (in
/// milliseconds). After the last failed attempt it waits for a manual `recover`.
const AUTO_RECOVERY_DELAYS_MS: [f64; 4] = [0.0, 100.0, 1000.0, 5000.0];

/// How a tick went, as the tick loop reports it.
pub(crate) enum TickOutcome {
    /// It ran work.
    Ran,
    /// Nothing to do (or the device is lost and not yet replaced).
    Idle,
    /// The device of `generation` failed.
    Failed { error: Error, generation: u64 },
}

/// What the tick loop does next.
pub(crate) enum Flow {
    TickAgain,
    WaitForWork,
    Stop,
}

/// One tick loop's side of recovery: automatic attempts made since its device last delivered a
/// tick. A recovery whose device then delivered spends none of the next loss's attempts; one
/// whose device is lost again before it delivers anything (a message whose handler resets the
/// GPU, say) backs off as a failed attempt does, and then it is the application's call.
pub(crate) struct Recovery {
    device: DeviceId,
    attempts: usize,
    /// The device's delivered messages (`DeviceStatus::messages_processed`) at the last attempt.
    delivered: u64,
}

impl Recovery {
    /// Recovery for the tick loop of `device`.
    pub fn new(device: DeviceId) -> Self {
        Recovery { device, attempts: 0, delivered: 0 }
    }

    /// Called after every tick. A failed tick loses the device; an idle loop with automatic
    /// recovery tries to recover, backing off between attempts.
    pub async fn after_tick(&mut self, shared: &Arc<Shared>, outcome: TickOutcome) -> Flow {
        match outcome {
            TickOutcome::Ran => return Flow::TickAgain,
            TickOutcome::Failed { error, generation } => {
                fail_device(shared, self.device, error, generation);
                return Flow::TickAgain;
            }
            TickOutcome::Idle => {}
        }
        let delivered = {
            let mut table = shared.lock();
            let status = table.device(self.device);
            status.lost.is_some().then_some(status.messages_processed)
        };
        // The application's device is replaced by the application (see `crate::shared_device`).
        let automatic = shared.settings.auto_recover && !shared.is_shared(self.device);
        let Some(delivered) = delivered.filter(|_| automatic) else {
            self.attempts = 0;
            return Flow::WaitForWork;
        };
        // The device delivered since the last attempt: this loss's attempts start afresh.
        if delivered != self.delivered {
            (self.attempts, self.delivered) = (0, delivered);
        }
        let Some(&delay) = AUTO_RECOVERY_DELAYS_MS.get(self.attempts) else {
            give_up(shared, self.device);
            return Flow::WaitForWork;
        };
        self.attempts += 1;
        if !pause_unless_shut_down(shared, delay).await {
            return Flow::Stop;
        }
        // A failed attempt is recorded in the summary; the next one follows.
        let _ = recover_device(shared, self.device).await;
        Flow::TickAgain
    }
}

/// Automatic recovery of `device` has made its last attempt and failed: says so once, and wakes
/// the terminates waiting on its kernels, which no longer wait for a recovery that will not come.
fn give_up(shared: &Shared, device: DeviceId) {
    let mut table = shared.lock();
    let status = table.device(device);
    if status.lost.is_none() || status.auto_recovery_spent {
        return;
    }
    status.auto_recovery_spent = true;
    let why = (status.recovery_error.clone())
        .unwrap_or_else(|| "each new device was lost again before it delivered anything".into());
    for kernel in table.kernels.values_mut().filter(|k| k.device == device) {
        kernel.notify();
    }
    let waiting = waiting_on(&table, device);
    table.device_events.record(DeviceEventKind::AutoRecoveryGaveUp, device, Some(why.clone()), waiting);
    drop(table);
    platform::warn(&format!(
        "ringkernel-web: automatic recovery of device {} gave up after {} attempts ({why}); its kernels wait for \
         `recover()`, and terminating them ends them with their messages unprocessed",
        device.0,
        AUTO_RECOVERY_DELAYS_MS.len()
    ));
}

/// The kernels on `device` waiting for it to be replaced (failed, or terminated while failed),
/// sorted.
fn waiting_on(table: &Table, device: DeviceId) -> Vec<String> {
    table.ids_where(&|k| k.device == device && k.life.awaiting_device())
}

/// Waits `ms` milliseconds, or less if the runtime shuts down meanwhile (then `false`), so
/// dropping a runtime never waits out a recovery back-off.
async fn pause_unless_shut_down(shared: &Shared, ms: f64) -> bool {
    let deadline = platform::now_ms() + ms;
    loop {
        let listener = shared.wake.listen();
        if shared.is_shut_down() {
            return false;
        }
        if !waiting::wait(listener, Some(deadline)).await {
            return !shared.is_shut_down();
        }
    }
}

/// The tick of `device`'s `generation` failed with `error`: the device is lost. A failure of a
/// device that was already replaced, or already reported, changes nothing.
pub(crate) fn fail_device(shared: &Shared, device: DeviceId, error: Error, generation: u64) {
    fail_device_charging(shared, device, error, generation, &|_| true);
}

/// [`fail_device`], the loss counted against the circuit breakers of the kernels on it that
/// `charged` names only: a device the watchdog replaces failed its stale kernels, not the
/// others on it, which lose nothing.
pub(crate) fn fail_device_charging(
    shared: &Shared,
    device: DeviceId,
    error: Error,
    generation: u64,
    charged: &dyn Fn(&str) -> bool,
) {
    // Released by the runtime's shutdown, the device is not lost: its kernels keep their states.
    if shared.is_shut_down() {
        return;
    }
    let mut table = shared.lock();
    let status = table.device(device);
    if status.generation != generation || status.lost.is_some() {
        return;
    }
    let lost = match error {
        lost @ Error::DeviceLost { .. } => lost,
        // Anything else a tick can fail with means the device is unusable too (an uncaptured
        // validation error, a failed mapping); report it as lost, with the cause.
        other => Error::DeviceLost { reason: other.to_string() },
    };
    table.device(device).generation += 1;
    let mut failed = Vec::new();
    for (id, kernel) in table.kernels.iter_mut().filter(|(_, k)| k.device == device) {
        kernel.in_tick = false;
        let resources = &mut kernel.resources;
        // State arrays on the lost device are gone; what remains is each one's checkpoint,
        // which stays readable for kernels that are not relaunched (terminated ones).
        if let (Some(StateStore::Gpu(_)), Some(spec)) = (&resources.state, kernel.def.state) {
            let words = match &resources.checkpoint {
                Some(bytes) => bytemuck::pod_collect_to_vec(bytes),
                None => vec![0u32; (spec.size_bytes() / 4) as usize],
            };
            resources.state = Some(StateStore::Cpu(Arc::new(Mutex::new(words))));
            // The checkpoint is its state from now on, however far behind it was.
            resources.checkpoint_behind = false;
        }
        if let Some(KernelExec::Gpu(_)) = resources.exec {
            failed.push(id.clone());
            kernel.life.apply(Action::Fail).expect("kernels with GPU resources may fail");
            resources.exec = None;
            kernel.cursor.device_lost(&mut kernel.mailbox);
            kernel.mailbox.ledger.abandon_calls(&lost);
            if charged(id) {
                kernel.circuit_failures(1, Failed::Operations, platform::now_ms());
            }
        }
        kernel.notify();
    }
    let reason = lost.to_string();
    let status = table.device(device);
    status.lost = Some(lost);
    status.auto_recovery_spent = false;
    table.device_events.record(DeviceEventKind::Lost, device, Some(reason), failed);
}

/// [`recover_device`] for every lost device of the runtime; the first failure, after trying all.
pub(crate) async fn recover_all(shared: &Arc<Shared>) -> Result<()> {
    // Every device counts as asked for from the call on, not only once its turn comes, and no
    // longer once its turn has ended: one lost again after it waits for the next `recover()`.
    let mut asked = asked_to_recover(shared, 0..shared.device_count() as u32);
    let mut result = Ok(());
    for device in shared.device_ids() {
        let recovered = recover_device(shared, device).await;
        asked.first_done();
        if result.is_ok() {
            result = recovered;
        }
    }
    result
}

/// Recoveries of `devices` (by index) counted as asked for (see `DeviceStatus::recovering`):
/// each until its turn ends ([`first_done`](Self::first_done)), the rest when this is dropped,
/// however the recovery ends (its future dropped part way too).
struct Asked<'a> {
    shared: &'a Shared,
    devices: std::ops::Range<u32>,
}

impl Asked<'_> {
    /// The first device still counted has had its turn: it counts no more.
    fn first_done(&mut self) {
        let first = self.devices.start;
        self.devices.start += 1;
        let mut table = self.shared.lock();
        let status = table.device(DeviceId(first));
        status.recovering = status.recovering.saturating_sub(1);
    }
}

impl Drop for Asked<'_> {
    fn drop(&mut self) {
        while !self.devices.is_empty() {
            self.first_done();
        }
    }
}

/// Counts a recovery of each of `devices` (by index) as asked for until it is done with (see
/// [`Asked`]).
fn asked_to_recover(shared: &Shared, devices: std::ops::Range<u32>) -> Asked<'_> {
    let mut table = shared.lock();
    devices.clone().for_each(|device| table.device(DeviceId(device)).recovering += 1);
    Asked { shared, devices }
}

/// Opens a new device and relaunches the failed kernels on it (see the module docs). If that
/// fails, nothing changes and the error says why (also in the summary until an attempt
/// succeeds). Resolves at once when no device was lost (counting a failure the tick has not seen
/// yet).
pub(crate) async fn recover_device(shared: &Arc<Shared>, device: DeviceId) -> Result<()> {
    // Asked for: health calls the device recovering from here, while this waits for its turn
    // too, until it ends however it does.
    let _asked = asked_to_recover(shared, device.0..device.0 + 1);
    let _one_at_a_time = shared.recovering.lock().await;
    // The device may have failed before the tick loop noticed (it looks at its next tick, and
    // an idle loop may not have one yet): record the loss here as the tick would, so a
    // `recover` right after the loss replaces the device instead of finding nothing lost.
    if let Some(fault) = shared.device(device).fault() {
        let generation = shared.lock().device(device).generation;
        fail_device(shared, device, fault, generation);
    }
    spans::around(shared.settings.tracing, Phase::Recovery, None, recover_locked(shared, device)).await
}

/// [`recover_device`], one recovery at a time.
async fn recover_locked(shared: &Arc<Shared>, device_id: DeviceId) -> Result<()> {
    let relaunch = {
        let mut table = shared.lock();
        if table.state == LifecycleState::Stopped {
            return Err(Error::Disposed);
        }
        if table.device(device_id).lost.is_none() {
            return Ok(());
        }
        // Pushed, not collected: each `collect` is a copy of `Vec`'s `from_iter` in the wasm.
        let mut relaunch = Vec::new();
        for (id, k) in table.kernels.iter() {
            if k.device == device_id && k.life.awaiting_device() {
                let checkpoint = k.resources.checkpoint.clone();
                relaunch.push((id.clone(), k.instance, k.def.clone(), k.mailbox.inbox.capacity(), k.shape, checkpoint));
            }
        }
        relaunch
    };
    let rebuilt = async {
        let source = shared.source(device_id)?;
        #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
        let device = Arc::new(Device::open(&source, shared.buffers.clone(), shared.wake.clone()).await?);
        if let DeviceSource::Shared(used) = &source {
            shared.replacement_taken(device_id, used);
        }
        // Each kernel on its own: one the new device cannot run (a browser's recovered adapter
        // without a feature its handler enables) stays failed, and the rest come back.
        let (mut execs, mut unbuilt) = (Vec::with_capacity(relaunch.len()), Vec::new());
        for (id, instance, definition, queue_size, shape, checkpoint) in relaunch {
            let exec = match device.create_kernel(definition, queue_size, shape).await {
                Ok(exec) => exec,
                Err(error) => {
                    unbuilt.push((id, instance, error));
                    continue;
                }
            };
            if let (Some(StateStore::Gpu(state)), Some(checkpoint), Some(gpu)) =
                (exec.state_store(), checkpoint, device.gpu())
            {
                gpu.own_write(&state, 0, &checkpoint);
            }
            execs.push((id, instance, exec));
        }
        Ok::<_, Error>((device, execs, unbuilt))
    }
    .await;
    let mut table = shared.lock();
    let (device, execs, unbuilt) = match rebuilt {
        Ok(rebuilt) => rebuilt,
        Err(error) => {
            table.device(device_id).recovery_error = Some(error.to_string());
            let waiting = waiting_on(&table, device_id);
            table.device_events.record(DeviceEventKind::RecoveryFailed, device_id, Some(error.to_string()), waiting);
            return Err(error);
        }
    };
    // Stopped meanwhile: the shutdown released the devices it found, not this one.
    if table.state == LifecycleState::Stopped {
        if let Some(gpu) = device.gpu() {
            gpu.destroy("the runtime was disposed");
        }
        return Err(Error::Disposed);
    }
    shared.replace_device(device_id, device);
    let mut relaunched = Vec::new();
    for (id, instance, exec) in execs {
        // Skip a kernel terminated (stranded) while the device was being replaced.
        let Some(kernel) = table.launch_of(&id, instance).filter(|k| k.device == device_id) else {
            continue;
        };
        if !kernel.life.awaiting_device() {
            continue;
        }
        kernel.life.relaunched();
        kernel.unrecovered = None;
        relaunched.push(id);
        kernel.beat(platform::now_ms());
        kernel.resources.state = exec.state_store();
        kernel.resources.exec = Some(exec);
        // One whose terminate's caller went away while it was failed, with nothing left to run.
        kernel.finish_if_drained();
        kernel.notify();
    }
    // The kernels it could not rebuild stay failed on the working device, each saying why; the
    // first one's error is the recovery's.
    let (mut left, mut first) = (Vec::new(), None);
    for (id, instance, error) in unbuilt {
        let Some(kernel) = table.launch_of(&id, instance).filter(|k| k.device == device_id) else {
            continue;
        };
        if !kernel.life.awaiting_device() {
            continue;
        }
        let unrecovered = format!(
            "could not be rebuilt on device {device_id} when it was recovered ({error}): migrate it to a device \
             that can run it, or terminate it"
        );
        // One whose terminate's caller went away would stay terminating for good, since nothing
        // runs it again here: it ends as that terminate would have, stranded.
        if kernel.ends_when_drained {
            let unprocessed = kernel.input_depth() as u64;
            let reason = format!("kernel {} {unrecovered}", Quoted(&id));
            let ended = (unprocessed > 0).then(|| Error::StrandedByDeviceLoss { id: id.clone(), reason, unprocessed });
            let _ = kernel.finish(unprocessed, ended);
        } else {
            kernel.unrecovered = Some(unrecovered);
        }
        kernel.notify();
        left.push(format!("kernel {}: {error}", Quoted(&id)));
        first.get_or_insert(error);
    }
    let left = (!left.is_empty()).then(|| format!("not rebuilt: {}", crate::error::joined(&left, "; ")));
    let status = table.device(device_id);
    status.lost = None;
    status.recoveries += 1;
    status.recovery_error = None;
    table.device_events.record(DeviceEventKind::Recovered, device_id, left, relaunched);
    drop(table);
    shared.wake();
    first.map_or(Ok(()), Err)
}

//! Live migration: moving a running kernel to another device of its runtime with nothing lost,
//! duplicated or reordered (the seed's `kernel_migrator().migrate_kernel`).
//!
//! It is recovery's move ([`crate::recovery`]) made on purpose, on a live kernel:
//! 1. the kernel is compiled on the target device while it keeps running where it is;
//! 2. it leaves its device's ticks (`held_out`), and a tick that already has it planned is
//!    waited for, so every answer of that tick is delivered;
//! 3. under the table lock, in one step: its held input goes back to the front of its input
//!    queue (in order), its state as of that tick is written on the target (read from its
//!    device first when a checkpoint interval left its checkpoint behind), its rings are
//!    swapped and it is placed on the target, whose tick loop takes it from there.
//!
//! Nothing else changes: the id, handles, connections, counters and the correlation ledger stay,
//! so a `call` waiting for an answer gets it from the new device, and a connected neighbour left
//! on the old device relays through the host. Steps 2 and 3 are the pause a migration causes
//! ([`MigrationReport::pause`]); compiling happens before it.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::backend::StateStore;
use crate::cancel::OnCancel;
use crate::checkpoint;
use crate::devices::DeviceId;
use crate::error::{Error, Quoted, Result};
use crate::lifecycle::{Action, KernelState, LifecycleState};
use crate::platform;
use crate::table::{Kernel, Shared};
use crate::waiting;

/// What one migration did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MigrationReport {
    /// The kernel moved.
    pub kernel_id: String,
    /// The device it left.
    pub from: DeviceId,
    /// The device it runs on now.
    pub to: DeviceId,
    /// How long the kernel was out of every tick: waiting for its last tick on the old device
    /// to deliver, reading its state there when its checkpoint was behind, then the move itself
    /// (compiling on the target comes before).
    #[serde(rename = "pauseMs", serialize_with = "millis")]
    pub pause: Duration,
    /// Messages handed to the old device and not yet answered there, queued again to be
    /// answered on the new one: 0 unless the old device was lost while the kernel moved (a
    /// working device delivers its last tick first; a kernel that had failed already was given
    /// its messages back when it failed).
    pub requeued: u64,
}

/// A duration as JavaScript reads it: fractional milliseconds.
fn millis<S: serde::Serializer>(value: &Duration, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_f64(value.as_secs_f64() * 1000.0)
}

/// Moves kernel `id` to device `to` (see the module docs). A kernel already there is left as
/// it is (a report with a zero pause), unless it failed there: a move onto its lost device is
/// refused, and one its recovered device could not rebuild is built there again. A kernel
/// stranded on a lost device moves too, and runs again on the target with its state as of its
/// last checkpoint (recovery elsewhere). Refused, changing nothing, for a kernel that is not
/// launched, active, deactivated or stranded (`KernelState`), also when it was terminated or
/// the runtime stopped while it compiled on the target, a target that is lost (`DeviceLost`) or
/// unknown, and when compiling there fails.
/// With `from`, a kernel that is not there as the move begins is refused (`InvalidArgument`):
/// moves are made one at a time, so none can take it elsewhere afterwards.
pub(crate) async fn migrate(
    shared: &Arc<Shared>,
    id: &str,
    from: Option<DeviceId>,
    to: DeviceId,
) -> Result<MigrationReport> {
    // One migration or recovery at a time: each moves kernels' resources between devices.
    let _one_at_a_time = shared.recovering.lock().await;
    let (definition, queue_size, shape, instance, generation) = {
        let mut table = shared.lock();
        if table.state == LifecycleState::Stopped {
            return Err(Error::Disposed);
        }
        let (kernel, _) = table.kernel_on_device(id)?;
        if let Some(source) = from.filter(|&source| source != kernel.device) {
            return Err(Error::InvalidArgument(format!(
                "kernel {} runs on device {}, not on device {source}",
                Quoted(id),
                kernel.device
            )));
        }
        movable(id, kernel)?;
        // A failed kernel is not where it runs: one stranded on its lost device is refused
        // below, and one its recovered device could not rebuild is rebuilt there (a retry).
        if kernel.device == to && !kernel.life.awaiting_device() {
            return Ok(MigrationReport { kernel_id: id.to_owned(), from: to, to, pause: Duration::ZERO, requeued: 0 });
        }
        let (definition, queue_size, shape, instance) =
            (kernel.def.clone(), kernel.mailbox.inbox.capacity(), kernel.shape, kernel.instance);
        let target = table.device(to);
        if let Some(lost) = &target.lost {
            return Err(lost.clone());
        }
        (definition, queue_size, shape, instance, target.generation)
    };
    let target = shared.device(to);
    let created = target.create_kernel(definition, queue_size, shape).await;
    // A target lost while it compiled is why compiling failed, if it did.
    if let Some(fault) = target.fault() {
        return Err(fault);
    }
    let exec = created?;
    let started = platform::now_ms();
    let mut table = loop {
        let before = {
            let mut table = shared.lock();
            let stopped = table.state == LifecycleState::Stopped;
            // The target lost (or lost and replaced) while the kernel's tick ran: what was built
            // there is gone with it.
            let status = table.device(to);
            let target_lost = match (&status.lost, status.generation != generation) {
                (Some(lost), _) => Some(lost.clone()),
                (None, true) => Some(Error::DeviceLost {
                    reason: "the target device was lost and replaced while the kernel waited to move".into(),
                }),
                (None, false) => target.fault(),
            };
            let Some(kernel) = table.launch_of(id, instance) else {
                return Err(Error::KernelNotFound { id: id.to_owned() });
            };
            // While it compiled on the target (or its last tick delivered), the runtime may have
            // stopped, the kernel been terminated or the target lost: then it stays where it is,
            // as it was.
            let refused = match (stopped, target_lost) {
                (true, _) => Err(Error::Disposed),
                (false, Some(lost)) => Err(lost),
                (false, None) => movable(id, kernel),
            };
            if let Err(refused) = refused {
                kernel.held_out = false;
                kernel.notify();
                drop(table);
                shared.wake();
                return Err(refused);
            }
            kernel.held_out = true;
            if kernel.in_tick {
                Before::Tick(kernel.changed.listen())
            } else if kernel.resources.checkpoint_behind {
                // Its handler ran since its last checkpoint (a checkpoint interval): its state
                // is read as it is, and moves exactly.
                Before::CatchUp
            } else {
                break table;
            }
        };
        // Dropped while it waits for the kernel's tick or its state, it leaves the kernel where
        // it was, running: held out of every tick, it would never run again.
        let undo = OnCancel::new(|| {
            let mut table = shared.lock();
            if let Some(kernel) = table.launch_of(id, instance) {
                kernel.held_out = false;
                kernel.notify();
            }
            drop(table);
            shared.wake();
        });
        match before {
            Before::Tick(listener) => _ = waiting::wait(listener, None).await,
            Before::CatchUp => checkpoint::catch_up(shared, id, instance).await,
        }
        undo.done();
    };
    let kernel = table.kernels.get_mut(id).expect("found above, under this lock");
    let from = kernel.device;
    let requeued = kernel.mailbox.inbox.held() as u64;
    // Held input waits again at the front, in order; its answers come from the new device.
    kernel.cursor.device_lost(&mut kernel.mailbox);
    carry_state(kernel, &exec, &target);
    // Dropped: the old rings go (destroyed on the web; see `GpuBuffer`'s `Drop`); no tick has
    // them in flight, as the wait above made sure.
    kernel.resources.state = exec.state_store();
    kernel.resources.exec = Some(exec);
    kernel.device = to;
    kernel.held_out = false;
    // Its old device was lost while it moved: it runs again, on the new one.
    if kernel.life.awaiting_device() {
        kernel.life.relaunched();
        kernel.unrecovered = None;
        kernel.finish_if_drained();
    }
    kernel.counters.migrations += 1;
    kernel.beat(platform::now_ms());
    kernel.notify();
    table.migrations += 1;
    drop(table);
    shared.wake();
    Ok(MigrationReport {
        kernel_id: id.to_owned(),
        from,
        to,
        pause: platform::saturating_ms(platform::now_ms() - started),
        requeued,
    })
}

/// What a migration waits for before it moves a kernel.
enum Before {
    /// The kernel's tick under way to deliver.
    Tick(event_listener::EventListener),
    /// Its checkpoint caught up with its state (see [`checkpoint::catch_up`]).
    CatchUp,
}

/// `KernelState` unless `kernel` may move: launched, active or deactivated, or stranded on a
/// lost device (failed, or terminated while failed), which a move to a working device runs
/// again (recovery elsewhere).
fn movable(id: &str, kernel: &Kernel) -> Result<()> {
    let state = kernel.life.state();
    match state {
        KernelState::Launched | KernelState::Active | KernelState::Deactivated => Ok(()),
        _ if kernel.life.awaiting_device() => Ok(()),
        _ => Err(Error::KernelState { id: id.to_owned(), state, action: Action::Migrate }),
    }
}

/// Writes `kernel`'s state, as of its last delivered tick (its checkpoint, caught up before
/// this), into the state array of `exec` on
/// `target`. A kernel that never ran a tick keeps the fresh array (its state as launched). On a
/// GPU the bytes written are also its checkpoint: until its first tick there they are its state,
/// which a next move or a lost device reads from the checkpoint (a kernel coming from a cpu
/// device has no other).
fn carry_state(kernel: &mut Kernel, exec: &crate::backend::KernelExec, target: &crate::backend::Device) {
    let bytes: Option<Vec<u8>> = match &kernel.resources.state {
        // The cpu backend's words, or a lost GPU's last checkpoint kept on the host.
        Some(StateStore::Cpu(words)) => {
            Some(bytemuck::cast_slice(&words.lock().unwrap_or_else(|p| p.into_inner())).to_vec())
        }
        Some(StateStore::Gpu(_)) => kernel.resources.checkpoint.clone(),
        None => None,
    };
    let Some(bytes) = bytes else { return };
    match (exec.state_store(), target.gpu()) {
        (Some(StateStore::Gpu(state)), Some(gpu)) => {
            gpu.own_write(&state, 0, &bytes);
            kernel.resources.checkpoint = Some(bytes);
        }
        (Some(StateStore::Cpu(words)), _) => {
            let mut words = words.lock().unwrap_or_else(|p| p.into_inner());
            let len = words.len().min(bytes.len() / 4);
            words[..len].copy_from_slice(&bytemuck::pod_collect_to_vec::<u8, u32>(&bytes[..len * 4]));
        }
        _ => {}
    }
}

//! A GPU kernel's checkpoint: its `state` array copied back to the host, which recovery restores
//! after a lost device. By default every tick copies it with the answers, so a recovered
//! kernel's state reflects each answered message once. With a checkpoint interval
//! (`LaunchOptions::checkpoint_interval`) a tick copies it only once the interval has passed, and
//! in between the checkpoint is behind the state: a migration and the terminate that ends the
//! kernel catch it up by reading the state itself, so a move and a final state stay exact. The
//! terminates of a shutdown, which lets go of every state, read none.

use std::sync::Arc;

use event_listener::Event;

use crate::backend::gpu::readback::read_state;
use crate::backend::{Outcome, StateStore};
use crate::lifecycle::{KernelState, LifecycleState};
use crate::platform;
use crate::table::{Kernel, Resources, Shared};
use crate::waiting::{wait, Deadline};

/// Whether the tick at `now_ms` copies `kernel`'s state back: always with the default interval
/// (0), and on every tick of a terminating kernel, so one that drains (whoever waits for it)
/// brings its final state back.
pub(crate) fn due(kernel: &Kernel, now_ms: f64) -> bool {
    now_ms - kernel.resources.checkpoint_at_ms >= kernel.checkpoint_interval_ms
        || kernel.life.state() == KernelState::Terminating
}

/// Keeps what a tick that answered messages brought back: the state as the new checkpoint, or,
/// when it copied none, that the checkpoint is now behind a GPU state.
pub(crate) fn delivered(resources: &mut Resources, out: &Outcome<'_>, now_ms: f64) {
    match out.checkpoint {
        Some(state) => {
            let checkpoint = resources.checkpoint.get_or_insert_with(Vec::new);
            checkpoint.clear();
            checkpoint.extend_from_slice(state);
            resources.checkpoint_at_ms = now_ms;
            resources.checkpoint_behind = false;
        }
        None => resources.checkpoint_behind |= matches!(resources.state, Some(StateStore::Gpu(_))),
    }
}

/// Reads the state of kernel `id` (its launch `instance`) from its device into its checkpoint,
/// when the checkpoint is behind. The caller keeps the kernel out of the tick meanwhile (a
/// migration holds it out; a terminated kernel runs no more). A read fails only with its device:
/// the device is then declared lost, as a tick would find it, and the checkpoint stays what
/// recovery restores. Either way the checkpoint is no longer behind once this returns, so a
/// migration that waits for it moves on.
pub(crate) async fn catch_up(shared: &Shared, id: &str, instance: u64) {
    let (state, device, source, generation) = {
        let mut table = shared.lock();
        let Some(kernel) = table.launch_of(id, instance).filter(|k| k.resources.checkpoint_behind) else { return };
        let device = kernel.device;
        let state = match &kernel.resources.state {
            Some(StateStore::Gpu(state)) => state.clone(),
            _ => {
                kernel.resources.checkpoint_behind = false;
                return;
            }
        };
        // The device the buffer lives on, taken with it: recovery may replace the runtime's.
        (state, device, shared.device(device), table.device(device).generation)
    };
    let read = match source.gpu() {
        Some(gpu) => read_state(gpu, &state).await,
        None => Err(crate::Error::DeviceLost { reason: "its device has no GPU".into() }),
    };
    if let Err(error) = &read {
        crate::recovery::fail_device(shared, device, source.fault().unwrap_or_else(|| error.clone()), generation);
    }
    let mut table = shared.lock();
    let stopped = table.state == LifecycleState::Stopped;
    let Some(kernel) = table.launch_of(id, instance) else { return };
    kernel.resources.checkpoint_behind = false;
    let Ok(bytes) = read else { return };
    match &kernel.resources.state {
        // A runtime stopped meanwhile let go of the state: nothing is kept.
        _ if stopped => return,
        Some(StateStore::Gpu(now)) if Arc::ptr_eq(now, &state) => {}
        // Lost since the read: its state is now the checkpoint's copy on the host, which the read
        // (of a state no tick changed) brings up to date.
        Some(StateStore::Cpu(words)) => {
            *words.lock().unwrap_or_else(|p| p.into_inner()) = bytemuck::pod_collect_to_vec(&bytes)
        }
        _ => return,
    }
    kernel.counters.bytes_from_device += bytes.len() as u64;
    kernel.resources.checkpoint = Some(bytes);
}

/// [`catch_up`] for the terminate that ended kernel `id` (its launch `instance`), waited for
/// until `deadline`: the read runs apart from the terminate (natively on a thread of its own,
/// since a read blocks its thread until the device is done), so one still under way at the
/// deadline finishes all the same. Nothing is read once a shutdown has begun.
pub(crate) async fn final_read(shared: &Arc<Shared>, id: &str, instance: u64, deadline: Deadline) {
    let behind = |shared: &Shared| {
        let mut table = shared.lock();
        let open = !table.stopping && table.state != LifecycleState::Stopped;
        table.launch_of(id, instance).is_some_and(|k| k.resources.checkpoint_behind && open)
    };
    if !behind(shared) {
        return;
    }
    let done = Notify(Arc::new(Event::new()));
    let read = done.0.listen();
    let (apart, apart_id) = (shared.clone(), id.to_owned());
    let started = platform::spawn_detached("ringkernel-checkpoint", move || async move {
        let _done = done;
        // A shutdown waits for the read before it releases the device, or has begun already.
        let _work = apart.device_work();
        if !apart.lock().stopping {
            catch_up(&apart, &apart_id, instance).await;
        }
    });
    if started {
        wait(read, deadline).await;
        return;
    }
    // No thread to read on: read here.
    let _work = shared.device_work();
    if behind(shared) {
        catch_up(shared, id, instance).await;
    }
}

/// Tells whoever waits for a read apart that it ended, however it ended (a panic, or never
/// started, included).
struct Notify(Arc<Event>);

impl Drop for Notify {
    fn drop(&mut self) {
        self.0.notify(usize::MAX);
    }
}

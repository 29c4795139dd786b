//! A kernel's `state` array from the host: read back (`read_state`), written
//! (`write_state`), and given at launch (`LaunchOptions::with_initial_state`). Each write also
//! updates the checkpoint that recovery restores, so a recovered or moved kernel keeps it (but
//! a write of part of the array while a checkpoint interval has left the checkpoint behind,
//! which waits for the next checkpoint).

use super::Runtime;
use crate::backend::gpu::readback::read_state;
use crate::backend::{Device, StateStore};
use crate::cancel::OnCancel;
use crate::error::{Error, Quoted, Result};
use crate::kernel::{no_state, StateSpec, StateValues};
use crate::lifecycle::{Action, KernelState};
use crate::message::Scalar;
use crate::table::{DeviceStatus, Kernel, Table};
use crate::waiting::wait;

impl Runtime {
    /// Copies the kernel's `state` array back from the GPU, as it stands after every dispatch
    /// issued so far (so after receiving an answer, the state includes that message's updates).
    /// Readable from launch until the kernel is removed (or the runtime disposed, which
    /// releases the device), including after terminate. After a lost device, a kernel with a
    /// checkpoint interval holds its last checkpoint (see [`LaunchOptions::checkpoint_interval`](super::LaunchOptions::checkpoint_interval)).
    pub async fn read_state(&self, id: &str) -> Result<Vec<u8>> {
        let (store, device, _work) = {
            let mut table = self.open_table()?;
            let work = self.shared.device_work();
            let (kernel, device, store) = self.readable_state(&mut table, id)?;
            if let StateStore::Gpu(buffer) = &store {
                if let Some(lost) = device.lost.clone() {
                    return Err(lost);
                }
                kernel.counters.bytes_from_device += buffer.size();
            }
            // The device the buffer lives on, taken with it: recovery may replace the runtime's.
            (store, self.shared.device(kernel.device), work)
        };
        match (store, device.gpu()) {
            // The host handler updates the words under this lock, between messages.
            (StateStore::Cpu(words), _) => {
                Ok(bytemuck::cast_slice(&words.lock().unwrap_or_else(|p| p.into_inner())).to_vec())
            }
            (StateStore::Gpu(state), Some(gpu)) => read_state(gpu, &state).await,
            (StateStore::Gpu(_), None) => unreachable!("GPU state exists only on a GPU device"),
        }
    }

    /// Kernel `id` (a handle's own launch only), its device and where its state is, refused
    /// for a kernel without state (`InvalidArgument`), one whose state is not made yet
    /// (`KernelState`) and one failed with its device (whose state comes back with it on
    /// recovery): what reading the state, or copying it, needs first.
    pub(super) fn readable_state<'t>(
        &self,
        table: &'t mut Table,
        id: &str,
    ) -> Result<(&'t mut Kernel, &'t DeviceStatus, StateStore)> {
        let (kernel, device) = self.kernel_on_device_in(table, id)?;
        if kernel.def.state.is_none() {
            return Err(no_state(id));
        }
        let Some(store) = kernel.resources.state.clone() else {
            return Err(Error::KernelState {
                id: id.to_owned(),
                state: kernel.life.state(),
                action: Action::ReadState,
            });
        };
        if kernel.life.state() == KernelState::Failed {
            return Err(kernel.failure(id, device));
        }
        Ok((kernel, device, store))
    }

    /// [`read_state`](Self::read_state) as `u32`, `i32` or `f32` values, matching the state's
    /// element type (`u32` for `atomic<u32>`, and so on).
    ///
    /// # Errors
    /// `InvalidArgument`, before anything is read, for a `T` that is not 4 bytes or that is a
    /// scalar other than the state's (an `f32` read of an `atomic<u32>` state would be its
    /// counts' bits; a 4-byte struct of the caller's is taken by its size), and for a kernel
    /// without state; otherwise as [`read_state`](Self::read_state).
    pub async fn read_state_as<T: bytemuck::Pod>(&self, id: &str) -> Result<Vec<T>> {
        let spec = self.kernel_in(&mut *self.open_table()?, id)?.def.state.ok_or_else(|| no_state(id))?;
        let scalar = spec.element.scalar();
        if std::mem::size_of::<T>() != 4 || Scalar::of_pod::<T>().is_some_and(|theirs| theirs != scalar) {
            return Err(Error::InvalidArgument(format!(
                "the state of kernel {} is array<{}, {}>: read it as {scalar}, not {} ({} bytes)",
                Quoted(id),
                spec.element,
                spec.len,
                std::any::type_name::<T>(),
                std::mem::size_of::<T>()
            )));
        }
        Ok(bytemuck::pod_collect_to_vec(&self.read_state(id).await?))
    }

    /// Writes `values` into kernel `id`'s `state` array from element `index` on (the rest
    /// stays as it is), and into the checkpoint that recovery restores (with a
    /// [`checkpoint_interval`](super::LaunchOptions::checkpoint_interval) that has left the
    /// checkpoint behind, a write of part of the array reaches it with the next checkpoint; one of
    /// the whole array at once). The write lands between
    /// ticks: every message the device took before it saw the old values, every later one sees
    /// the new (a tick under way is waited for, its messages answered first). So receive the
    /// answers of the messages that should see the old values before writing. For a kernel
    /// that is launched, active or deactivated; refused for one without state or with values
    /// of another scalar (`InvalidArgument`), past the array's end (`OutOfRange`), one that
    /// is terminating or terminated (`KernelState`), and one whose device is lost
    /// (`DeviceLost`: recovery restores its last checkpoint, so write it again after).
    pub async fn write_state(&self, id: &str, index: u32, values: impl Into<StateValues>) -> Result<()> {
        let values = values.into();
        // One move of kernels' state between devices at a time: a migration or recovery under
        // way carries the state across, and would carry it without this write.
        let _one_at_a_time = self.shared.recovering.lock().await;
        let mut launch = None;
        loop {
            let listener = {
                let mut table = self.open_table()?;
                let (kernel, device) = self.kernel_on_device_in(&mut table, id)?;
                let ours = *launch.get_or_insert(kernel.instance) == kernel.instance;
                let refused = match ours {
                    true => values.check(id, kernel.def.state, index).and_then(|_| writable(id, kernel, device)),
                    // Removed while the write waited, and launched again under its id.
                    false => Err(Error::KernelNotFound { id: id.to_owned() }),
                };
                if refused.is_ok() && !kernel.in_tick {
                    let device = self.shared.device(kernel.device);
                    put(kernel, &device, index, &values);
                }
                if refused.is_err() || !kernel.in_tick {
                    // The write's own hold only (one write at a time, under `recovering`).
                    if ours && std::mem::take(&mut kernel.writing) {
                        kernel.notify();
                        drop(table);
                        self.shared.wake();
                    }
                    return refused;
                }
                // Out of the next ticks until the one under way has delivered, so the write
                // cannot wait behind a busy kernel for good.
                kernel.writing = true;
                kernel.changed.listen()
            };
            let instance = launch.expect("set above");
            let undo = OnCancel::new(|| {
                let mut table = self.shared.lock();
                if let Some(kernel) = table.launch_of(id, instance) {
                    kernel.writing = false;
                    kernel.notify();
                }
                drop(table);
                self.shared.wake();
            });
            wait(listener, None).await;
            undo.done();
        }
    }
}

/// Refuses a write to `kernel`'s state unless it is launched, active or deactivated on a
/// working `device`.
fn writable(id: &str, kernel: &Kernel, device: &DeviceStatus) -> Result<()> {
    let state = kernel.life.state();
    match state {
        // Its state comes back with it on recovery, as of its last checkpoint.
        KernelState::Failed => Err(kernel.failure(id, device)),
        _ if device.lost.is_some() => Err(device.lost.clone().expect("checked")),
        KernelState::Launched | KernelState::Active | KernelState::Deactivated if kernel.resources.exec.is_some() => {
            Ok(())
        }
        _ => Err(Error::KernelState { id: id.to_owned(), state, action: Action::WriteState }),
    }
}

/// Writes `values` (checked against the kernel's state) into `kernel`'s state array on
/// `device` from element `index` on, and into its checkpoint unless a checkpoint interval left
/// that behind the state already (a write of the whole array catches it up). Under the table lock, with no tick of the kernel under way: a
/// GPU write lands before the device's next submission, so before the kernel's next dispatch.
pub(crate) fn put(kernel: &mut Kernel, device: &Device, index: u32, values: &StateValues) {
    let (bytes, at) = (values.as_bytes(), index as usize * 4);
    if bytes.is_empty() {
        return;
    }
    match (&kernel.resources.state, device.gpu(), kernel.def.state) {
        (Some(StateStore::Gpu(state)), Some(gpu), Some(spec)) => {
            gpu.own_write(state, at as u64, bytes);
            kernel.counters.bytes_to_device += bytes.len() as u64;
            let resources = &mut kernel.resources;
            // Written whole, the state is known on the host again, whatever ran since the last
            // checkpoint.
            if bytes.len() as u64 == spec.size_bytes() {
                resources.checkpoint_behind = false;
            }
            if !resources.checkpoint_behind {
                // No checkpoint yet stands for the zeroed array of the launch.
                let checkpoint = resources.checkpoint.get_or_insert_with(|| zeroed(spec));
                checkpoint[at..at + bytes.len()].copy_from_slice(bytes);
            }
        }
        (Some(StateStore::Cpu(words)), _, _) => {
            let mut words = words.lock().unwrap_or_else(|p| p.into_inner());
            words[index as usize..][..values.len()].copy_from_slice(&bytemuck::pod_collect_to_vec::<u8, u32>(bytes));
        }
        _ => {}
    }
}

/// The state array of `spec` as launched without initial values.
fn zeroed(spec: StateSpec) -> Vec<u8> {
    vec![0; spec.size_bytes() as usize]
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::time::{Duration, Instant};

    use crate::kernel::{doubler_request, doubler_response, host};
    use crate::{BackendChoice, Error, KernelDefinition, KernelState, LaunchOptions, Runtime, RuntimeOptions};
    use crate::{LifecycleState, StateElement};

    /// A stateful kernel whose host handler takes `ms` per message (cpu backend).
    fn slow_counter(id: &str, ms: u64) -> KernelDefinition {
        let wgsl = "fn handle(msg: Request) -> Response { return Response(atomicAdd(&state[0], 1)); }";
        KernelDefinition::new(id, doubler_request(), doubler_response(), wgsl)
            .with_state(StateElement::AtomicI32, 2)
            .with_host_handler(host::typed(move |_: &i32, state: &mut [u32]| {
                std::thread::sleep(Duration::from_millis(ms));
                state[0] += 1;
                Some(state[0] as i32 - 1)
            }))
    }

    /// The kernel's state, whether a tick has it, and what holds it out of the ticks.
    fn flags(rt: &Runtime, id: &str) -> (KernelState, bool, bool, bool) {
        let table = rt.shared.lock();
        let kernel = &table.kernels[id];
        (kernel.life.state(), kernel.in_tick, kernel.held_out, kernel.writing)
    }

    fn until(rt: &Runtime, id: &str, holds: impl Fn((KernelState, bool, bool, bool)) -> bool) {
        let start = Instant::now();
        while !holds(flags(rt, id)) {
            assert!(start.elapsed() < Duration::from_secs(10), "{:?}", flags(rt, id));
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn cpu_runtime() -> Runtime {
        pollster::block_on(Runtime::new(RuntimeOptions::default().with_backend(BackendChoice::Cpu))).unwrap()
    }

    /// A terminate past its timeout holds its kernel out of the ticks while the tick under way
    /// delivers; a write refused for that terminating kernel leaves the hold as it found it.
    #[test]
    fn a_refused_write_leaves_a_terminates_hold() {
        let rt = cpu_runtime();
        pollster::block_on(async {
            let options = LaunchOptions::default().with_auto_activate().with_max_batch(1);
            rt.launch_definition(slow_counter("slow", 300), options).await.unwrap();
            rt.send_batch("slow", &[1i32, 2, 3, 4, 5], None).await.unwrap();
        });
        until(&rt, "slow", |(_, in_tick, _, _)| in_tick);
        let terminating = rt.clone();
        let terminate =
            std::thread::spawn(move || pollster::block_on(terminating.terminate("slow", Some(Duration::ZERO))));
        until(&rt, "slow", |flags| flags == (KernelState::Terminating, true, true, false));
        let refused = pollster::block_on(rt.write_state("slow", 0, [0])).unwrap_err();
        assert!(matches!(refused, Error::KernelState { action: crate::lifecycle::Action::WriteState, .. }));
        let (state, _, held_out, writing) = flags(&rt, "slow");
        assert_eq!((state, held_out, writing), (KernelState::Terminating, true, false), "the terminate's hold is kept");
        assert!(matches!(terminate.join().unwrap(), Err(Error::Timeout { .. })));
    }

    /// A write waiting for a tick under way when the runtime stops without that tick delivering
    /// ends with `Disposed` (the stop wakes whoever waits on a kernel). The tick that never
    /// delivers is made by hand: natively it is one that outlives the shutdown's wait for it.
    #[test]
    fn a_write_waiting_on_a_tick_that_never_delivers_ends_with_the_runtime() {
        let rt = cpu_runtime();
        pollster::block_on(rt.launch_definition(slow_counter("k", 0), LaunchOptions::default().with_auto_activate()))
            .unwrap();
        rt.shared.lock().kernels.get_mut("k").unwrap().in_tick = true;
        let (done, written) = std::sync::mpsc::channel();
        let writer = rt.clone();
        std::thread::spawn(move || done.send(pollster::block_on(writer.write_state("k", 0, [7]))));
        until(&rt, "k", |(_, _, _, writing)| writing);
        rt.begin_drain().unwrap();
        pollster::block_on(rt.complete_shutdown()).unwrap();
        assert_eq!(rt.lifecycle_state(), LifecycleState::Stopped);
        let written = written.recv_timeout(Duration::from_secs(5));
        assert!(matches!(written, Ok(Err(Error::Disposed))), "the write never ended: {written:?}");
    }
}

//! GPU interop: the application's own WebGPU work beside the runtime's. It gets the device a
//! runtime runs kernels on, and a kernel's `state` copied into a buffer of its own there, so
//! that a renderer draws what the kernels computed without a trip through host memory. The
//! copy is the application's (it destroys it when done); the runtime's own buffers never leave
//! it, since a migration, a recovery or a removal replaces or destroys them. The other way
//! round, an application with a device of its own hands it to the runtime ([`SharedDevice`],
//! `RuntimeBuilder::shared_device`), and [`Runtime::replace_shared_device`] hands the next one
//! after a loss.

use super::Runtime;
use crate::backend::StateStore;
use crate::devices::DeviceId;
use crate::error::{Error, Quoted, Result};
use crate::recovery;
use crate::shared_device::SharedDevice;

/// What a copy of a kernel's state may be used for: read in shaders (`STORAGE`), drawn from as
/// vertex data (`VERTEX`), and copied to and from.
///
/// Natively, bind a copy with its size, not with `as_entire_binding()`: wgpu makes every
/// `VERTEX` buffer 4 bytes longer than asked (so that an empty vertex range can be bound at its
/// end), and on Vulkan and GL a binding without a size covers those too, so a shader's
/// `arrayLength` counts one element more than the state has, and reads a stray word there
/// (on lavapipe's Vulkan adapter, not zero):
///
/// ```no_run
/// # fn bind(device: &ringkernel_web::wgpu::Device, layout: &ringkernel_web::wgpu::BindGroupLayout, copy: &ringkernel_web::wgpu::Buffer) {
/// use ringkernel_web::wgpu;
/// let state = wgpu::BufferBinding { buffer: copy, offset: 0, size: wgpu::BufferSize::new(copy.size()) };
/// let entries = [wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::Buffer(state) }];
/// let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout, entries: &entries });
/// # }
/// ```
pub const STATE_COPY_USAGES: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::VERTEX)
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

impl Runtime {
    /// The wgpu device and queue that `device` runs kernels on, for work of the application's
    /// own beside them (`None` for a cpu device). Commands submitted there run in queue order
    /// with the kernels' ticks. The pair is replaced when the device is recovered (a
    /// [`DeviceEvent`](crate::DeviceEvent) says when); an error of the application's work that
    /// no error scope catches counts as the device's own fault, as the runtime's would, and
    /// fails its kernels until recovery. The runtime hears of those through the device's
    /// uncaptured-error handler and its device-lost callback: leave
    /// [`on_uncaptured_error`](wgpu::Device::on_uncaptured_error) and
    /// [`set_device_lost_callback`](wgpu::Device::set_device_lost_callback) alone, which
    /// replace the runtime's, and catch errors with an error scope. The device is destroyed at
    /// [`shutdown`](Self::shutdown). On the application's own device ([`SharedDevice`]) these
    /// are its own handles (the replacement, once it handed one), which the runtime neither
    /// watches nor destroys. A `map_async` callback of the application's may run inside a
    /// submission of the runtime's own there (a tick's, or a kernel's release), and may not call
    /// the runtime (see [`SharedDevice`]).
    /// `OutOfRange` for a device the runtime does not have.
    pub fn wgpu_device(&self, device: DeviceId) -> Result<Option<(wgpu::Device, wgpu::Queue)>> {
        let _open = self.open_table()?;
        self.check_device(device)?;
        Ok(self.shared.device(device).gpu().map(|gpu| (gpu.device.clone(), gpu.queue.clone())))
    }

    /// A new buffer on kernel `id`'s device ([`wgpu_device`](Self::wgpu_device)) holding a copy
    /// of its `state` array, made on the device as of every tick submitted before it (the
    /// messages answered so far, and those of a tick under way), with [`STATE_COPY_USAGES`]
    /// (bind it with its size, not `as_entire_binding()`: see there).
    /// The buffer is the caller's: the runtime neither counts it nor destroys it, but it goes
    /// with its device (lost, or destroyed at shutdown unless the device is the application's
    /// own, a [`SharedDevice`], which outlives the runtime). Refused as
    /// [`read_state`](Self::read_state) is (a kernel without state, one not yet made or failed
    /// with its device), with `DeviceLost` while its device is lost (where `read_state` still
    /// reads a terminated kernel's checkpoint), and with `BackendUnavailable` for a kernel on a
    /// cpu device, whose state is in host memory. A kernel that ended on a device lost since keeps
    /// its last checkpoint on the host, as `read_state` reads it: the copy is made from that.
    pub fn state_to_gpu(&self, id: &str) -> Result<wgpu::Buffer> {
        let (store, device, _work) = {
            let mut table = self.open_table()?;
            // Taken under the lock that found the runtime open: a shutdown waits for the copy
            // before it releases the device.
            let work = self.shared.device_work();
            let (kernel, status, store) = self.readable_state(&mut table, id)?;
            if let Some(lost) = status.lost.clone() {
                return Err(lost);
            }
            let device = self.shared.device(kernel.device);
            if device.gpu().is_none() {
                return Err(Error::BackendUnavailable {
                    reason: format!(
                        "kernel {} runs on a cpu device, whose state is in host memory: read it with readState",
                        Quoted(id)
                    ),
                });
            }
            (store, device, work)
        };
        let gpu = device.gpu().expect("checked above");
        let size = match &store {
            StateStore::Gpu(state) => state.size(),
            StateStore::Cpu(words) => 4 * words.lock().unwrap_or_else(|p| p.into_inner()).len() as u64,
        };
        // The runtime's own error scope on the application's device (see
        // `GpuContext::own_work`).
        gpu.own_work(|| {
            let copy = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("state copy"),
                size,
                usage: STATE_COPY_USAGES,
                mapped_at_creation: false,
            });
            match store {
                StateStore::Gpu(state) => {
                    let mut encoder = gpu
                        .device
                        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("state copy") });
                    encoder.copy_buffer_to_buffer(&state, 0, &copy, 0, size);
                    gpu.queue.submit([encoder.finish()]);
                }
                // A kernel that ended on a device lost since (terminated, not relaunched): its state
                // is the checkpoint kept on the host, which `read_state` reads too.
                StateStore::Cpu(words) => {
                    let words = words.lock().unwrap_or_else(|p| p.into_inner());
                    gpu.queue.write_buffer(&copy, 0, bytemuck::cast_slice(&words));
                }
            }
            Ok(copy)
        })
    }

    /// Hands `replacement` for the application's own device `device` (see [`SharedDevice`]),
    /// and recovers the kernels there onto it, as [`recover`](Self::recover) does after a loss:
    /// each relaunched with its last state checkpoint and the messages it had no answer for
    /// processed again, in order, each answered once. The runtime cannot open a device the
    /// application knows about, so this is how a shared device comes back, after a loss (a new
    /// device), an uncaptured error forwarded with [`SharedDevice::uncaptured_error`] or the
    /// loss [`destroy_device_at`](Self::destroy_device_at) declares (the same device again,
    /// which still works); automatic recovery and `recover` leave such a device lost, `recover`
    /// saying so with `BackendUnavailable`. A device the runtime has not seen
    /// lost is declared lost first (its kernels keep their messages), so this also moves the
    /// kernels to another device of the application's at any time, as a recovery does: a
    /// kernel with a `checkpoint_interval` restarts from its last checkpoint, without what the
    /// messages answered since did to its state (a [`migrate`](Self::migrate) between devices
    /// of the runtime moves it exactly), and what waits on the kernels meets that loss as any
    /// other: a waiting call fails with `DeviceLost` (its message is processed on the
    /// replacement, its answer discarded), a waiting receive too if it looks while the kernels
    /// are failed (on another thread it may look only after the move, and waits on), and the
    /// device's events count a loss.
    ///
    /// # Errors
    /// `OutOfRange` for a device the runtime does not have, `InvalidArgument` for one the
    /// runtime opened itself (`recover` replaces those), `BackendUnavailable` for a replacement
    /// that cannot run kernels (nothing changes then), `Disposed` once the runtime stopped, and
    /// as `recover`: a kernel the replacement cannot run (a handler enabling `f16` on a device
    /// without `shader-f16`) stays `Failed`, saying why, while the rest run again.
    pub async fn replace_shared_device(&self, device: DeviceId, replacement: SharedDevice) -> Result<()> {
        drop(self.open_table()?);
        self.check_device(device)?;
        if !self.shared.is_shared(device) {
            let reason = "the runtime opened this device itself: recover() replaces it".to_owned();
            return Err(Error::InvalidArgument(format!("device {device}: {reason}")));
        }
        replacement.check_runs_kernels()?;
        self.shared.hand_replacement(device, replacement);
        let lost = self.shared.lock().device(device).lost.is_some() || self.shared.device(device).fault().is_some();
        if !lost {
            // Not the kernels' failure: no circuit breaker is charged.
            self.lose_device(device, "the application replaced its device (replace_shared_device)", &|_| false);
        }
        recovery::recover_device(&self.shared, device).await
    }
}

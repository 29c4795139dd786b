//! Kernels on the application's own wgpu device: [`SharedDevice`], and what stays the
//! application's.

use std::fmt;
use std::sync::{Arc, Mutex, Weak};

use event_listener::Event;

use crate::error::{Error, Result};

/// The application's own wgpu device and its queue, for a runtime to run kernels on: a renderer
/// or game loop that already has a `wgpu::Device` hands it (with its queue) to the runtime
/// ([`RuntimeBuilder::shared_device`](crate::RuntimeBuilder::shared_device)), and its own work
/// and the kernels' share one device, so that buffers pass between them without copies (as
/// vello's, egui-wgpu's or glyphon's renderers take the application's device).
///
/// The device stays the application's:
/// - the runtime never destroys it: its shutdown (or the last handle dropped) lets go of the
///   runtime's own buffers and pipelines there, and the application goes on using the device
///   (and copies made by [`Runtime::state_to_gpu`](crate::Runtime::state_to_gpu));
/// - the runtime installs no handler on it. wgpu keeps one device-lost callback and one
///   uncaptured-error handler per device, so installing the runtime's would silently replace the
///   application's. The application forwards instead, from its own handlers, what the runtime
///   should hear ([`SharedDevice::device_lost`], [`SharedDevice::uncaptured_error`]); without
///   that the runtime still notices a lost device when its next tick's readback fails;
/// - the runtime takes the device's features and limits as they are (a handler that enables
///   `f16` runs only where the device has `shader-f16`), and refuses at build a device that
///   cannot run kernels at all;
/// - the runtime cannot open a replacement the application would know about: recovery of a
///   shared device (after a loss, a forwarded uncaptured error, or `destroy_device`) waits for
///   the application to hand one, or the same device again when it still works, with
///   [`Runtime::replace_shared_device`](crate::Runtime::replace_shared_device); automatic
///   recovery and `recover()` leave it lost, and the watchdog's `RecoverDevice` reports its
///   stale kernels only. Until then the kernels on it keep what they were sent, as after any
///   loss;
/// - the runtime's tick polls the device (`Device::poll`) and submits to its queue on its own
///   thread (or a caller's, natively), which may run the application's `map_async` callbacks
///   there too (wgpu runs a device's ready callbacks on whichever thread polls or submits), and
///   its poll waits for the application's submissions before it as well as its own (one queue).
///   A callback that wgpu runs inside a submission of the runtime's made under its table lock
///   (a tick's, or the empty one that frees an ended kernel's buffers) runs while that lock is
///   held: a call to that runtime from it is refused (`InvalidArgument`, the message handed
///   back; the few calls that return no error, such as `get_kernel`, panic) rather than
///   waiting forever, so hand such work to a thread or task of the application's (a channel).
///   The runtime pushes error scopes around compilations, around each tick's submission and
///   around a state read's, a state write's and `state_to_gpu`'s GPU calls, and pops each
///   before its call returns: a launch's, a recovery's or a migration's on the thread that
///   awaits that call, a tick's on the thread that runs it (its own, or a receive's that helps
///   it), a state call's on its caller's, nested inside any scope the application has open
///   there, a background compilation's on a thread of its own. Natively wgpu keeps error
///   scopes per thread, and natively none of these yields between push and pop, so the
///   runtime's scopes never interleave with the application's. A validation error of that
///   work is the runtime's: it
///   fails the kernels there with `DeviceLost` (health and the device events report it) until
///   the application hands the device back, and never reaches the application's
///   uncaptured-error handler.
///
/// `SharedDevice` is native only: JavaScript has no way to hand a `GPUDevice` to the runtime,
/// since wgpu's WebGPU backend makes a `wgpu::Device` only from its own `requestDevice`. On
/// wasm32 none can be made (`new` is absent), so the npm package carries no code for it.
///
/// Cheap to clone: clones share where forwarded losses and errors go, so keep one in the
/// device's handlers:
///
/// ```no_run
/// # #[cfg(not(target_arch = "wasm32"))] // (none can be made there)
/// # async fn demo(device: ringkernel_web::wgpu::Device, queue: ringkernel_web::wgpu::Queue) -> ringkernel_web::Result<()> {
/// use std::sync::Arc;
/// use ringkernel_web::{wgpu, RuntimeBuilder, SharedDevice};
///
/// let shared = SharedDevice::new(device.clone(), queue.clone());
/// let (on_lost, on_error) = (shared.clone(), shared.clone());
/// device.set_device_lost_callback(move |reason, message| {
///     eprintln!("device lost: {message}"); // the application's own handling first
///     on_lost.device_lost(reason, &message);
/// });
/// device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
///     eprintln!("GPU error: {error}");
///     on_error.uncaptured_error(&error);
/// }));
/// let runtime = RuntimeBuilder::new().shared_device(shared).build().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SharedDevice {
    device: wgpu::Device,
    queue: wgpu::Queue,
    /// The runtimes' devices on it that hear what is forwarded.
    listeners: Arc<Listeners>,
    /// On wasm32 no value exists, so the compiler drops every path that would handle one.
    #[cfg(target_arch = "wasm32")]
    #[allow(dead_code, reason = "never read: it only makes the type uninhabited")]
    never: std::convert::Infallible,
}

/// Where forwarded faults go: each runtime device made on the shared device, as long as it lives.
#[derive(Default)]
struct Listeners(Mutex<Vec<Listener>>);

/// One runtime device's fault (what `GpuContext::fault` holds) and its tick loops' wake-up.
struct Listener {
    fault: Weak<Mutex<Option<String>>>,
    wake: Weak<Event>,
}

impl SharedDevice {
    /// The application's `device` and the `queue` it came with (the queue the kernels' ticks
    /// submit to, in order with the application's own submissions there). They are this
    /// crate's wgpu ([`crate::wgpu`], re-exported): an application that depends on wgpu itself
    /// needs the same major version (30) for its `Device` to be this one.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(device: wgpu::Device, queue: wgpu::Queue) -> Self {
        SharedDevice { device, queue, listeners: Arc::default() }
    }

    /// The device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// Its queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// Tells every runtime running kernels on this device that it was lost: call it from the
    /// application's own [`set_device_lost_callback`](wgpu::Device::set_device_lost_callback).
    /// Their kernels fail with `DeviceLost` (their queued messages kept) at once, even while
    /// idle, and wait for [`Runtime::replace_shared_device`](crate::Runtime::replace_shared_device).
    pub fn device_lost(&self, reason: wgpu::DeviceLostReason, message: &str) {
        // wgpu's message is empty for a destroyed device.
        let said = if message.is_empty() { String::new() } else { format!(": {message}") };
        self.fault(format!("{reason:?}{said} (the application's device)"));
    }

    /// Tells every runtime running kernels on this device of a GPU error no error scope caught:
    /// call it from the application's own
    /// [`on_uncaptured_error`](wgpu::Device::on_uncaptured_error) for the errors that leave the
    /// device unusable to the kernels, at least those the application cannot tell for its own
    /// (the runtime catches its compilations' and its ticks' validation errors in error scopes
    /// of its own). As on a device the runtime opened,
    /// the kernels then fail with `DeviceLost` until recovered; the device itself still works,
    /// so [`Runtime::replace_shared_device`](crate::Runtime::replace_shared_device) may hand
    /// the same one back.
    pub fn uncaptured_error(&self, error: &wgpu::Error) {
        self.fault(format!("uncaptured GPU error: {error} (on the application's device)"));
    }

    /// Notes `reason` as the fault of every runtime device on it still alive (the first reason
    /// each hears stays), and wakes their tick loops.
    fn fault(&self, reason: String) {
        let mut listeners = self.listeners.0.lock().unwrap_or_else(|p| p.into_inner());
        listeners.retain(|listener| {
            let (Some(fault), Some(wake)) = (listener.fault.upgrade(), listener.wake.upgrade()) else {
                return false;
            };
            fault.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| reason.clone());
            wake.notify(usize::MAX);
            true
        });
    }

    /// Has what is forwarded noted in `fault` and `wake` notified, for as long as both live.
    pub(crate) fn listen(&self, fault: &Arc<Mutex<Option<String>>>, wake: &Arc<Event>) {
        let mut listeners = self.listeners.0.lock().unwrap_or_else(|p| p.into_inner());
        listeners.retain(|listener| listener.fault.strong_count() > 0);
        listeners.push(Listener { fault: Arc::downgrade(fault), wake: Arc::downgrade(wake) });
    }

    /// `BackendUnavailable` when the device's limits leave no room for a kernel: one bind
    /// group of up to [`KERNEL_STORAGE_BUFFERS`] storage buffers in a compute shader of at least
    /// one invocation. (What a particular kernel needs beyond that, its rings' and state's
    /// sizes, workgroup size and memory, is checked at its launch, naming the limit.)
    pub(crate) fn check_runs_kernels(&self) -> Result<()> {
        let limits = self.device.limits();
        let short: Vec<String> = [
            ("max_bind_groups", limits.max_bind_groups, 1),
            (
                "max_storage_buffers_per_shader_stage",
                limits.max_storage_buffers_per_shader_stage,
                KERNEL_STORAGE_BUFFERS,
            ),
            ("max_compute_invocations_per_workgroup", limits.max_compute_invocations_per_workgroup, 1),
            ("max_compute_workgroup_size_x", limits.max_compute_workgroup_size_x, 1),
            ("max_compute_workgroups_per_dimension", limits.max_compute_workgroups_per_dimension, 1),
        ]
        .into_iter()
        .filter(|&(_, have, need)| have < need)
        .map(|(name, have, need)| format!("{name} is {have}, kernels need at least {need}"))
        .collect();
        if short.is_empty() {
            return Ok(());
        }
        Err(Error::BackendUnavailable {
            reason: format!(
                "the application's device ({}) cannot run kernels: {}; request it with limits at least wgpu's \
                 `Limits::downlevel_defaults()`",
                self.device.adapter_info().name,
                crate::error::joined(&short, ", ")
            ),
        })
    }
}

/// Storage buffers one kernel binds: its input ring, output ring, dropped-message flags and
/// state.
pub(crate) const KERNEL_STORAGE_BUFFERS: u32 = 4;

impl fmt::Debug for SharedDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.device.adapter_info();
        f.debug_struct("SharedDevice")
            .field("adapter", &info.name)
            .field("backend", &info.backend)
            .finish_non_exhaustive()
    }
}

/// The same `SharedDevice`: one value of `SharedDevice::new` and its clones. Not wgpu's own
/// equality of devices, which compares an id that devices of two instances can share.
impl PartialEq for SharedDevice {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.listeners, &other.listeners)
    }
}

impl Eq for SharedDevice {}

//! The wgpu backend: the device every kernel of a runtime shares, and the modules for what
//! lives on it:
//! - [`kernel`]: one kernel's rings, pipeline and bind group, created once at launch;
//! - [`pipelines`]: compiled drain pipelines kept for kernels launched again;
//! - [`ring`]: the rings' header and counters, mirrored from `shaders/harness/ring.wgsl`;
//! - [`readback`]: the buffer one tick's results come back in, and its layout;
//! - `web_map` (web only): mapping it through its `GPUBuffer`, without wgpu's per-map closures;
//! - [`execute`]: the tick's GPU step (one write per kernel, one submit, one map);
//! - [`ahead`]: a kernel's next tick encoded while the device works on its last;
//! - [`fused`]: chains of connected kernels run as one dispatch of one module;
//! - [`grouped`]: many kernels of one handler, each with a small batch, run as one dispatch.

pub(crate) mod ahead;
pub(crate) mod execute;
pub(crate) mod fused;
pub(crate) mod grouped;
pub(crate) mod kernel;
pub(crate) mod pipelines;
pub(crate) mod readback;
pub(crate) mod ring;
#[cfg(target_arch = "wasm32")]
mod web_map;

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use event_listener::Event;

use super::{AdapterSummary, BackendChoice, DeviceRequest};
use crate::error::{Error, Result};
use crate::features::DeviceFeature;
use crate::memory::{DeviceMemoryLimits, MemoryPurpose, PurposeBytes};
use crate::platform;
use crate::shared_device::SharedDevice;
pub(crate) use kernel::GpuKernel;
use readback::Readback;

/// What to do when no adapter exists, where that happens.
#[cfg(not(target_arch = "wasm32"))]
fn no_adapter_hint() -> &'static str {
    "install a Vulkan driver (on Debian, mesa-vulkan-drivers provides lavapipe), or use the cpu backend to run \
     kernels' host handlers"
}
#[cfg(target_arch = "wasm32")]
fn no_adapter_hint() -> &'static str {
    if crate::platform::runs_in_node() {
        return "Node has navigator.gpu, but it gave none. Dawn (the webgpu npm package) needs a GPU driver or a \
                software Vulkan driver it accepts: SwiftShader, which Chromium ships (on Debian start Node with \
                VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json); it turns Mesa's lavapipe down. Or fall \
                back to RingKernelRuntime.create({ backend: \"cpu\" }), which runs kernels' JavaScript handlers";
    }
    "the browser has WebGPU, but it gave none: it may be disabled or the GPU blocklisted. In Chrome or Edge see \
     chrome://gpu; on Linux enable chrome://flags/#enable-unsafe-webgpu (or start with --enable-unsafe-webgpu). Pages \
     can fall back to RingKernelRuntime.create({ backend: \"cpu\" }), which runs kernels' JavaScript handlers"
}

/// Why there is no WebGPU here (no `navigator.gpu`), and what to do: in a browser, or in Node.
/// Natively wgpu always makes an instance, so this is never reached there.
fn no_webgpu() -> Error {
    #[cfg(not(target_arch = "wasm32"))]
    let reason = no_adapter_hint();
    #[cfg(target_arch = "wasm32")]
    let reason = if crate::platform::runs_in_node() {
        "navigator.gpu is missing: Node has no WebGPU of its own. Install the webgpu npm package (Dawn, `npm install \
         webgpu`) and make its GPU navigator.gpu before RingKernelRuntime.create(): `import { create, globals } from \
         \"webgpu\"; Object.assign(globalThis, globals); globalThis.navigator = { gpu: create([]) };`. Or use \
         RingKernelRuntime.create({ backend: \"cpu\" }), which runs kernels' JavaScript handlers"
    } else {
        "navigator.gpu is missing: this browser has no WebGPU. Use Chrome or Edge 113+ or Safari 26+, or enable WebGPU \
         in the browser's flags (Firefox: dom.webgpu.enabled; Chrome on Linux: chrome://flags/#enable-unsafe-webgpu); \
         pages must be served over https or from localhost. Pages can fall back to \
         RingKernelRuntime.create({ backend: \"cpu\" }), which runs kernels' JavaScript handlers"
    };
    Error::BackendUnavailable { reason: reason.into() }
}

/// Asks for an adapter. `Auto` tries the primary APIs (Vulkan, Metal, DX12, WebGPU) before GL,
/// so a machine with Vulkan never probes EGL. Adapter 0 is the one wgpu recommends; others
/// are counted in the order wgpu lists them (natively only: a browser offers one).
pub(crate) async fn request_adapter(request: DeviceRequest) -> Result<wgpu::Adapter> {
    // The wasm build has wgpu's WebGPU backend only: a native API's name can never open here.
    #[cfg(target_arch = "wasm32")]
    if !matches!(request.backend, BackendChoice::Auto | BackendChoice::WebGpu) {
        return Err(Error::BackendUnavailable {
            reason: "\"vulkan\", \"metal\", \"dx12\" and \"gl\" are native graphics APIs, which only native builds \
                     open; on the web the runtime runs on WebGPU (\"webgpu\" or \"auto\") or on the host (\"cpu\")"
                .into(),
        });
    }
    let attempts: &[wgpu::Backends] = match request.backend {
        BackendChoice::Auto => &[wgpu::Backends::PRIMARY, wgpu::Backends::SECONDARY],
        other => &[other.backends()],
    };
    let mut failures = Vec::new();
    // Adapters of the backends tried so far, for counting `request.index` across them.
    #[cfg(not(target_arch = "wasm32"))]
    let mut listed = 0;
    for &backends in attempts {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        desc.backends = backends;
        if request.debug {
            // Debug labels and the API's validation (where its layers are installed).
            desc.flags |= wgpu::InstanceFlags::DEBUG | wgpu::InstanceFlags::VALIDATION;
        }
        let Some(instance) = crate::platform::gpu_instance(desc) else {
            return Err(no_webgpu());
        };
        if request.index > 0 {
            #[cfg(not(target_arch = "wasm32"))]
            {
                let adapters = instance.enumerate_adapters(backends).await;
                let count = adapters.len();
                if let Some(adapter) = adapters.into_iter().nth(request.index - listed) {
                    return Ok(adapter);
                }
                listed += count;
                failures.push(format!("{}: {count} adapters, no adapter {}", backend_names(backends), request.index));
            }
            #[cfg(target_arch = "wasm32")]
            failures.push(format!(
                "{}: a browser offers one adapter, not adapter {}",
                backend_names(backends),
                request.index
            ));
            continue;
        }
        let options = wgpu::RequestAdapterOptions {
            power_preference: match request.power {
                super::PowerPreference::HighPerformance => wgpu::PowerPreference::HighPerformance,
                super::PowerPreference::LowPower => wgpu::PowerPreference::LowPower,
            },
            force_fallback_adapter: false,
            compatible_surface: None,
            ..Default::default()
        };
        match instance.request_adapter(&options).await {
            Ok(adapter) => return Ok(adapter),
            Err(e) => failures.push(format!("{}: {e}", backend_names(backends))),
        }
    }
    Err(Error::BackendUnavailable {
        // What to do first, and what wgpu tried after it; but an adapter asked for by an index
        // past those there are is that, not a missing driver.
        reason: match request.index {
            0 => format!("no adapter found: {}. Tried: {}", no_adapter_hint(), crate::error::joined(&failures, "; ")),
            _ => format!("no adapter found: {}", crate::error::joined(&failures, "; ")),
        },
    })
}

/// `backends` as the runtime's options name them (`vulkan or gl`, `webgpu`), where wgpu's
/// `Debug` gives `Backends(VULKAN | GL)`.
fn backend_names(backends: wgpu::Backends) -> String {
    // Pushed, not collected: each `collect` is a copy of `Vec`'s `from_iter` in the wasm.
    let mut names = Vec::new();
    for (name, _) in backends.iter_names() {
        names.push(match name {
            "BROWSER_WEBGPU" => "webgpu".to_owned(),
            name => name.to_ascii_lowercase(),
        });
    }
    crate::error::joined(&names, " or ")
}

/// GPU buffers the runtime holds, counted as they are created and dropped, so the summary can
/// show that launching and terminating kernels leaks nothing. One per runtime: it spans the
/// devices recovery replaces.
#[derive(Debug, Default)]
pub(crate) struct BufferStats {
    count: AtomicU64,
    bytes: AtomicU64,
    /// The same bytes by what they are for (the memory dashboard's totals).
    by_purpose: PurposeBytes,
}

impl BufferStats {
    /// Buffers alive now.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
    /// Their bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
    /// Their bytes by purpose.
    pub fn by_purpose(&self) -> &PurposeBytes {
        &self.by_purpose
    }
}

/// A wgpu buffer counted in its runtime's [`BufferStats`] for as long as it lives.
pub(crate) struct GpuBuffer {
    buffer: wgpu::Buffer,
    purpose: MemoryPurpose,
    stats: Arc<BufferStats>,
}

impl GpuBuffer {
    /// What the buffer is for.
    pub fn purpose(&self) -> MemoryPurpose {
        self.purpose
    }
}

impl Deref for GpuBuffer {
    type Target = wgpu::Buffer;
    fn deref(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}

/// Its memory goes back when it is dropped (see [`platform::DESTROY_DROPPED_BUFFERS`]). Safe:
/// the runtime drops a kernel's rings and state under the table's lock, which a tick holds from
/// planning to `submit`, so any tick using them has submitted already (WebGPU finishes submitted
/// work on a destroyed buffer); commands kept for a later tick that bind them go first (a
/// kernel's own with it, a fused chain's by `forget_fused`); and whoever copies a state array
/// out holds the buffer until its copy is submitted.
impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if platform::DESTROY_DROPPED_BUFFERS {
            self.buffer.destroy();
        }
        self.stats.count.fetch_sub(1, Ordering::Relaxed);
        self.stats.bytes.fetch_sub(self.buffer.size(), Ordering::Relaxed);
        self.stats.by_purpose.sub(self.purpose, self.buffer.size());
    }
}

/// The device every kernel of one runtime shares.
pub(crate) struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    /// Whether the adapter runs on the CPU (SwiftShader, lavapipe, WARP): dispatches there get
    /// a small grid (see `kernel::Grid`).
    pub software: bool,
    /// The device's largest buffer: what the readback of one tick may take.
    pub max_buffer_size: u64,
    /// The device's largest storage binding: what a grouped dispatch's buffers may be. (Read
    /// once: on the web each `limits()` builds a JavaScript object.)
    pub max_binding_size: u64,
    /// Set by wgpu when the device is lost or an error escapes every error scope; the tick loop
    /// checks it each tick so later calls fail with `DeviceLostError` instead of hanging.
    pub fault: Arc<Mutex<Option<String>>>,
    /// Whether the runtime opened the device (then it destroys it when done), or the
    /// application handed it ([`SharedDevice`]: never destroyed by the runtime).
    pub owned: bool,
    stats: Arc<BufferStats>,
    /// WebGPU's error scopes are one stack per device, so launches whose compilations overlap
    /// on the page's event loop must not interleave their push and pop. (Natively scopes are
    /// per thread and every compilation has a thread of its own: the lock is never contended.)
    scopes: Scopes,
    /// Kernels' compiled drain pipelines, for kernels launched again.
    pub pipelines: pipelines::Pipelines,
    /// Fused pipelines' modules and bind groups.
    pub fused: fused::SharedCache,
    /// The classes of kernels that may share a grouped dispatch.
    pub grouped: grouped::SharedClasses,
    /// Where every tick's results come back (ticks on one device run one at a time).
    readback: Mutex<Readback>,
}

/// Notes in `fault` why `device` was lost or what GPU error went uncaught (the first only), and
/// notifies `wake`, so the tick loop notices even while idle.
#[cfg(not(target_arch = "wasm32"))]
fn watch_device(device: &wgpu::Device, fault: Arc<Mutex<Option<String>>>, wake: Arc<Event>) {
    let lost = fault.clone();
    let wake_on_loss = wake.clone();
    device.set_device_lost_callback(move |reason, message| {
        // wgpu's message is empty for a destroyed device.
        let said = if message.is_empty() { format!("{reason:?}") } else { format!("{reason:?}: {message}") };
        lost.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(said);
        wake_on_loss.notify(usize::MAX);
    });
    device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
        // wgpu's default handler panics; an uncaptured error means the runtime issued bad
        // GPU work, which must fail loudly but not abort the page.
        fault.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(format!("uncaptured GPU error: {error}"));
        wake.notify(usize::MAX);
    }));
}

/// On the web, the same through the `GPUDevice` itself. wgpu's `set_device_lost_callback` and
/// `on_uncaptured_error` `forget` their `Closure`s there, which keeps both functions in
/// wasm-bindgen's table, and what they capture in wasm memory, for the page's life: two for
/// every device a runtime opens or recovery replaces. Handed to JavaScript instead
/// (`into_js_value`), each lives while the device (or its `lost` promise) can call it, and the
/// page's `FinalizationRegistry` frees it after.
#[cfg(target_arch = "wasm32")]
fn watch_device(device: &wgpu::Device, fault: Arc<Mutex<Option<String>>>, wake: Arc<Event>) {
    use wasm_bindgen::prelude::*;

    let text = |object: &JsValue, key: &str| {
        js_sys::Reflect::get(object, &key.into()).ok().and_then(|v| v.as_string()).unwrap_or_default()
    };

    let gpu = device.as_webgpu().expect("on the web every device is a WebGPU device");
    let lost = fault.clone();
    let wake_on_loss = wake.clone();
    let on_lost = Closure::<dyn FnMut(JsValue)>::new(move |info: JsValue| {
        // wgpu's names for `GPUDeviceLostInfo.reason`.
        let reason = if text(&info, "reason") == "destroyed" { "Destroyed" } else { "Unknown" };
        lost.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(format!("{reason}: {}", text(&info, "message")));
        wake_on_loss.notify(usize::MAX);
    });
    let _ = gpu.lost().unchecked_into::<js_sys::Promise>().then(&on_lost);
    drop(on_lost.into_js_value());
    let on_error = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        // An uncaptured error means the runtime issued bad GPU work, which must fail loudly
        // but not abort the page. wgpu's text: the error's message, "Out of Memory" for one.
        let error = js_sys::Reflect::get(&event, &"error".into()).unwrap_or_default();
        let message = Some(text(&error, "message")).filter(|m| !m.is_empty());
        let message = message.unwrap_or_else(|| "Out of Memory".into());
        fault.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(format!("uncaptured GPU error: {message}"));
        wake.notify(usize::MAX);
    });
    // A listener, not the `onuncapturederror` property, which an application working on the
    // device (`gpuDevice()`) may set for itself without silencing the runtime's.
    let _ = gpu.add_event_listener_with_callback("uncapturederror", on_error.as_ref().unchecked_ref());
    drop(on_error.into_js_value());
}

impl GpuContext {
    /// Opens a device on an adapter `choice` allows. Buffers are counted in `stats`; `wake` is
    /// notified when the device is lost, so the tick loop notices even while idle.
    pub async fn new(request: DeviceRequest, stats: Arc<BufferStats>, wake: Arc<Event>) -> Result<Self> {
        let adapter = request_adapter(request).await?;
        let info = adapter.get_info();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("ringkernel-web"),
                // The optional features a handler may enable, where the adapter has them.
                required_features: adapter.features() & DeviceFeature::wanted(),
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::BackendUnavailable {
                reason: format!("adapter {} refused a device: {e}", info.name),
            })?;

        let fault = Arc::new(Mutex::new(None));
        watch_device(&device, fault.clone(), wake);
        Ok(Self::on(device, queue, info, fault, stats, true))
    }

    /// The application's device `shared`, as it is (its features and limits), with no handler
    /// installed on it: what the application forwards reaches `wake` (see
    /// [`crate::shared_device`]). `BackendUnavailable` when its limits leave no room for a kernel.
    pub fn shared(shared: &SharedDevice, stats: Arc<BufferStats>, wake: Arc<Event>) -> Result<Self> {
        shared.check_runs_kernels()?;
        let (device, queue) = (shared.device().clone(), shared.queue().clone());
        let fault = Arc::new(Mutex::new(None));
        shared.listen(&fault, &wake);
        let info = device.adapter_info();
        Ok(Self::on(device, queue, info, fault, stats, false))
    }

    /// The context of `device` (from the adapter `info` describes); `owned` when the runtime
    /// opened it.
    fn on(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
        fault: Arc<Mutex<Option<String>>>,
        stats: Arc<BufferStats>,
        owned: bool,
    ) -> Self {
        let limits = device.limits();
        let features = DeviceFeature::among(device.features());
        let (max_buffer_size, max_binding_size) = (limits.max_buffer_size, limits.max_storage_buffer_binding_size);
        GpuContext {
            device,
            queue,
            adapter: AdapterSummary {
                backend: format!("{:?}", info.backend).to_ascii_lowercase(),
                // Browsers may withhold the description; say what kind of adapter it is instead.
                name: match (info.name.is_empty(), info.device_type) {
                    (false, _) => info.name,
                    (true, wgpu::DeviceType::Cpu) => "software fallback adapter (name withheld by the browser)".into(),
                    (true, _) => "adapter (name withheld by the browser)".into(),
                },
                driver: info.driver,
                device_type: format!("{:?}", info.device_type),
                features,
            },
            software: info.device_type == wgpu::DeviceType::Cpu,
            max_buffer_size,
            max_binding_size,
            fault,
            owned,
            stats,
            scopes: Scopes::default(),
            pipelines: pipelines::Pipelines::default(),
            fused: fused::SharedCache::default(),
            grouped: grouped::SharedClasses::default(),
            readback: Mutex::new(Readback::new()),
        }
    }

    /// Runs `work`, the runtime's own GPU calls of a tick on the application's device
    /// ([`SharedDevice`]), inside a validation error scope of its own (on this thread, nested in
    /// any the application has open there, and popped before it returns): a validation error of
    /// the runtime's becomes this device's fault, as one its own handler hears on a device it
    /// opened, so it reaches the runtime's health and device events (its kernels fail with
    /// `DeviceLost` until the application hands the device back), not the application's
    /// uncaptured-error handler. Natively a pop is ready at once: a push and pop cost 55 to 420
    /// ns a tick on lavapipe, lost in a round trip's 60 to 75 µs (`MEASURED.md`).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn in_error_scope<T>(&self, work: impl FnOnce() -> Result<T>) -> Result<T> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let done = work();
        let Some(error) = pollster::block_on(scope.pop()) else { return done };
        let reason = format!("GPU validation error in the runtime's own work: {error} (on the application's device)");
        self.fault.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(reason);
        self.check_fault().and(done)
    }

    /// Runs `work`, GPU calls of the runtime's own (a tick's submission, a state read's or
    /// write's, `state_to_gpu`'s copy), in [`in_error_scope`](Self::in_error_scope) on the
    /// application's device; on a device the runtime opened, as it is (the runtime's own
    /// handler hears every error there).
    pub(crate) fn own_work<T>(&self, work: impl FnOnce() -> Result<T>) -> Result<T> {
        #[cfg(not(target_arch = "wasm32"))]
        if !self.owned {
            return self.in_error_scope(work);
        }
        work()
    }

    /// Writes `bytes` into `buffer` at `offset` as [`own_work`](Self::own_work): on the
    /// application's device an error there is the device's fault, which the next tick reports
    /// (a state write's, a moved kernel's state, a recovered kernel's checkpoint).
    pub(crate) fn own_write(&self, buffer: &wgpu::Buffer, offset: u64, bytes: &[u8]) {
        let _ = self.own_work(|| {
            self.queue.write_buffer(buffer, offset, bytes);
            Ok(())
        });
    }

    /// `DeviceLost` once the device was lost or an error escaped every error scope.
    pub fn check_fault(&self) -> Result<()> {
        match self.fault.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(reason) => Err(Error::DeviceLost { reason: reason.clone() }),
            None => Ok(()),
        }
    }

    /// Destroys the device (WebGPU's `device.destroy()`), as a driver reset or an unplugged GPU
    /// would lose it. The fault is recorded first, so the tick loop reports it even if the lost
    /// callback comes late. Its readback buffer goes too, so the memory figures count nothing
    /// on a device that is gone (unless a tick holds it now: that tick fails with the device).
    /// The application's device is never destroyed: the runtime only stops using it (the
    /// fault), and lets go of what it keeps there (a tick under way finishes on it, and its
    /// delivery is discarded as a lost device's would be).
    pub fn destroy(&self, reason: &str) {
        self.fault.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(reason.to_owned());
        // (Always the runtime's on wasm32, where no `SharedDevice` can be made.)
        if cfg!(target_arch = "wasm32") || self.owned {
            self.device.destroy();
        } else {
            // Fused bind groups and their kept commands hold kernels' rings: on a device that
            // lives on, they go now, not when the runtime is dropped.
            *self.fused.lock().unwrap_or_else(|p| p.into_inner()) = fused::FusedCache::default();
        }
        self.pipelines.clear();
        if let Ok(mut readback) = self.readback.try_lock() {
            *readback = Readback::new();
        }
    }

    /// Creates a buffer for `purpose`, counted in the runtime's buffer statistics.
    pub fn create_buffer(&self, purpose: MemoryPurpose, descriptor: &wgpu::BufferDescriptor<'_>) -> GpuBuffer {
        let buffer = self.device.create_buffer(descriptor);
        self.stats.count.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes.fetch_add(buffer.size(), Ordering::Relaxed);
        self.stats.by_purpose.add(purpose, buffer.size());
        GpuBuffer { buffer, purpose, stats: self.stats.clone() }
    }

    /// What the device says about memory: its per-buffer and per-binding bounds (WebGPU has no
    /// total to report).
    pub fn memory_limits(&self) -> DeviceMemoryLimits {
        let limits = self.device.limits();
        DeviceMemoryLimits {
            max_buffer_bytes: Some(limits.max_buffer_size),
            max_binding_bytes: Some(limits.max_storage_buffer_binding_size),
        }
    }
}

/// A device's fused pipelines (see [`fused`]).
pub(crate) type FusedCache = fused::SharedCache;

/// Drops the fused bind groups that bind the rings of kernel `serial`, as it is dropped.
pub(crate) fn forget_fused(cache: &FusedCache, serial: u64) {
    fused::forget(cache, serial);
}

/// Where a kernel or a fused chain keeps its next tick's commands (see [`ahead`]).
pub(crate) type NextCommands = ahead::NextCommands;

/// Kernels that may share a grouped dispatch (see [`grouped`]).
pub(crate) type GroupClass = grouped::GroupClass;

/// The lock on a device's error-scope stack (see `GpuContext::scopes`), shared with background
/// compilations.
pub(crate) type Scopes = Arc<futures_util::lock::Mutex<()>>;

impl GpuContext {
    /// Holds the device's error-scope stack for one compilation (see `scopes`).
    #[cfg(target_arch = "wasm32")]
    pub(crate) async fn one_scope_at_a_time(&self) -> futures_util::lock::MutexGuard<'_, ()> {
        self.scopes.lock().await
    }

    /// The lock on the device's error-scope stack, for a compilation that outlives the caller.
    pub(crate) fn scopes(&self) -> Scopes {
        self.scopes.clone()
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) mod tests {
    use super::*;

    /// A buffer wgpu refuses (mappable storage).
    fn refused_buffer(device: &wgpu::Device) -> wgpu::Buffer {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("mappable storage"),
            size: 16,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    }

    /// On the application's device a tick's own GPU calls run in an error scope of the
    /// runtime's: a validation error there is the device's fault (its kernels then fail with
    /// `DeviceLost`, which health and the device events report), and the application's
    /// uncaptured-error handler, which heard it before, does not; outside that scope the
    /// application's handler still hears its own.
    #[test]
    fn the_runtimes_own_error_on_the_applications_device_is_the_runtimes_fault() {
        let (ctx, device, heard) = shared_context();

        assert_eq!(ctx.in_error_scope(|| Ok(7)).unwrap(), 7, "no error: the work's own result");
        let failed = ctx.in_error_scope(|| Ok(refused_buffer(&ctx.device))).unwrap_err();
        let Error::DeviceLost { reason } = &failed else { panic!("{failed:?}") };
        assert!(reason.starts_with("GPU validation error in the runtime's own work: "), "{reason}");
        assert!(reason.ends_with("(on the application's device)"), "{reason}");
        assert!(ctx.check_fault().is_err(), "the device's fault from now on");
        assert!(heard.lock().unwrap().is_empty(), "{:?}", heard.lock().unwrap());

        let _own = refused_buffer(&device);
        assert_eq!(heard.lock().unwrap().len(), 1, "the application's own error is still its own");
    }

    /// An application's Vulkan device, handed to the runtime, the device, and what the
    /// application's uncaptured-error handler heard (it forwards nothing to the runtime).
    pub(crate) fn application_device() -> (SharedDevice, wgpu::Device, Arc<Mutex<Vec<String>>>) {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        desc.backends = wgpu::Backends::VULKAN;
        let instance = wgpu::Instance::new(desc);
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .expect("this test needs a Vulkan adapter (install mesa-vulkan-drivers for lavapipe)");
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).unwrap();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let handler = heard.clone();
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| handler.lock().unwrap().push(error.to_string())));
        (SharedDevice::new(device.clone(), queue), device, heard)
    }

    /// The runtime's context on an application's Vulkan device, the device, and what the
    /// application's uncaptured-error handler heard.
    fn shared_context() -> (GpuContext, wgpu::Device, Arc<Mutex<Vec<String>>>) {
        let (shared, device, heard) = application_device();
        let ctx = GpuContext::shared(&shared, Arc::default(), Arc::default()).unwrap();
        (ctx, device, heard)
    }

    /// A state read's copy on the application's device runs in the runtime's own error scope
    /// too: one wgpu refuses (from a buffer it may not copy from: no public call makes one) is
    /// the device's fault, not an error for the application's handler.
    #[test]
    fn a_state_reads_error_on_the_applications_device_is_the_runtimes_fault() {
        let (ctx, _device, heard) = shared_context();
        let uncopyable = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("state without COPY_SRC"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let failed = pollster::block_on(readback::read_state(&ctx, &uncopyable)).unwrap_err();
        let Error::DeviceLost { reason } = &failed else { panic!("{failed:?}") };
        assert!(reason.starts_with("GPU validation error in the runtime's own work: "), "{reason}");
        assert!(heard.lock().unwrap().is_empty(), "{:?}", heard.lock().unwrap());
    }
}

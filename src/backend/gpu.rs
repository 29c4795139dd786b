//! The wgpu backend: device setup, per-kernel GPU resources (input and output rings with their
//! rings, pipelines, bind group — all created once at launch), and the shared readback buffer.

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use event_listener::Event;

use crate::codegen::{self, HandlerForm};
use crate::error::{Error, Result};
use crate::kernel::KernelDefinition;
use crate::queue::{RingCounters, RingHeader};

use super::{AdapterSummary, BackendChoice};

/// What to do when no adapter exists, where that happens.
#[cfg(not(target_arch = "wasm32"))]
const NO_ADAPTER_HINT: &str = "install a Vulkan driver (on Debian, mesa-vulkan-drivers provides lavapipe), or use \
                               the cpu backend to run kernels' host handlers";
#[cfg(target_arch = "wasm32")]
const NO_ADAPTER_HINT: &str = "the browser has WebGPU but gave no adapter: it may be disabled or the GPU blocklisted. \
                               In Chrome or Edge see chrome://gpu; on Linux enable chrome://flags/#enable-unsafe-webgpu \
                               (or start with --enable-unsafe-webgpu). Pages can fall back to \
                               RingKernelRuntime.create({ backend: \"cpu\" }), which runs kernels' JavaScript handlers";

/// Asks for an adapter. `Auto` tries the primary APIs (Vulkan, Metal, DX12, WebGPU) before GL,
/// so a machine with Vulkan never probes EGL.
async fn request_adapter(choice: BackendChoice) -> Result<wgpu::Adapter> {
    let attempts: &[wgpu::Backends] = match choice {
        BackendChoice::Auto => &[wgpu::Backends::PRIMARY, wgpu::Backends::SECONDARY],
        other => &[other.backends()],
    };
    let mut failures = Vec::new();
    for &backends in attempts {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let options = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            ..Default::default()
        };
        match instance.request_adapter(&options).await {
            Ok(adapter) => return Ok(adapter),
            Err(e) => failures.push(format!("{backends:?}: {e}")),
        }
    }
    Err(Error::BackendUnavailable {
        reason: format!("no adapter found (tried {}); {NO_ADAPTER_HINT}", failures.join("; ")),
    })
}

/// GPU buffers the runtime holds, counted as they are created and dropped, so the summary can
/// show that launching and terminating kernels leaks nothing. One per runtime: it spans the
/// devices recovery replaces.
#[derive(Debug, Default)]
pub struct BufferStats {
    count: AtomicU64,
    bytes: AtomicU64,
}

impl BufferStats {
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// A wgpu buffer counted in its runtime's [`BufferStats`] for as long as it lives.
pub struct GpuBuffer {
    buffer: wgpu::Buffer,
    stats: Arc<BufferStats>,
}

impl Deref for GpuBuffer {
    type Target = wgpu::Buffer;
    fn deref(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        self.stats.count.fetch_sub(1, Ordering::Relaxed);
        self.stats.bytes.fetch_sub(self.buffer.size(), Ordering::Relaxed);
    }
}

/// The device every kernel of one runtime shares.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    /// Set by wgpu when the device is lost or an error escapes every error scope; the pump
    /// checks it each tick so later calls fail with `DeviceLostError` instead of hanging.
    pub fault: Arc<Mutex<Option<String>>>,
    stats: Arc<BufferStats>,
    /// WebGPU's error scopes are one stack per device, so launches whose compilations overlap
    /// on the page's event loop must not interleave their push and pop. (Natively scopes are
    /// per thread and every compilation has a thread of its own.)
    #[cfg(target_arch = "wasm32")]
    scopes: futures_util::lock::Mutex<()>,
}

impl GpuContext {
    /// Opens a device on an adapter `choice` allows. Buffers are counted in `stats`; `wake` is
    /// notified when the device is lost, so the pump notices even while idle.
    pub async fn new(choice: BackendChoice, stats: Arc<BufferStats>, wake: Arc<Event>) -> Result<Self> {
        #[cfg(target_arch = "wasm32")]
        if !crate::platform::browser_has_webgpu() {
            return Err(Error::BackendUnavailable {
                reason: "navigator.gpu is missing: this browser has no WebGPU. Use Chrome or Edge 113+ or Safari 26+, \
                         or enable WebGPU in the browser's flags (Firefox: dom.webgpu.enabled; Chrome on Linux: \
                         chrome://flags/#enable-unsafe-webgpu); pages must be served over https or from localhost. \
                         Pages can fall back to RingKernelRuntime.create({ backend: \"cpu\" }), which runs kernels' \
                         JavaScript handlers"
                    .into(),
            });
        }
        let adapter = request_adapter(choice).await?;
        let info = adapter.get_info();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("ringkernel-web"),
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::BackendUnavailable {
                reason: format!("adapter {} refused a device: {e}", info.name),
            })?;

        let fault = Arc::new(Mutex::new(None));
        let lost = fault.clone();
        let wake_on_loss = wake.clone();
        device.set_device_lost_callback(move |reason, message| {
            lost.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(format!("{reason:?}: {message}"));
            wake_on_loss.notify(usize::MAX);
        });
        let uncaptured = fault.clone();
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            // wgpu's default handler panics; an uncaptured error means the runtime issued bad
            // GPU work, which must fail loudly but not abort the page.
            uncaptured
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(format!("uncaptured GPU error: {error}"));
            wake.notify(usize::MAX);
        }));

        Ok(GpuContext {
            device,
            queue,
            adapter: AdapterSummary {
                backend: format!("{:?}", info.backend).to_lowercase(),
                // Browsers may withhold the description; say what kind of adapter it is instead.
                name: match (info.name.is_empty(), info.device_type) {
                    (false, _) => info.name,
                    (true, wgpu::DeviceType::Cpu) => "software fallback adapter (name withheld by the browser)".into(),
                    (true, _) => "adapter (name withheld by the browser)".into(),
                },
                driver: info.driver,
                device_type: format!("{:?}", info.device_type),
            },
            fault,
            stats,
            #[cfg(target_arch = "wasm32")]
            scopes: futures_util::lock::Mutex::new(()),
        })
    }

    pub fn check_fault(&self) -> Result<()> {
        match self.fault.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(reason) => Err(Error::DeviceLost { reason: reason.clone() }),
            None => Ok(()),
        }
    }

    /// Destroys the device (WebGPU's `device.destroy()`), as a driver reset or an unplugged GPU
    /// would lose it. The fault is recorded first, so the pump reports it even if the lost
    /// callback comes late.
    pub fn destroy(&self, reason: &str) {
        self.fault.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(reason.to_owned());
        self.device.destroy();
    }

    /// Creates a buffer counted in the runtime's buffer statistics.
    pub fn create_buffer(&self, descriptor: &wgpu::BufferDescriptor<'_>) -> GpuBuffer {
        let buffer = self.device.create_buffer(descriptor);
        self.stats.count.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes.fetch_add(buffer.size(), Ordering::Relaxed);
        GpuBuffer { buffer, stats: self.stats.clone() }
    }
}

/// The GPU side of one launched kernel. Buffers and pipelines live as long as the kernel.
pub struct GpuKernel {
    pub input_ring: GpuBuffer,
    pub output_ring: GpuBuffer,
    /// One u32 per slot for handlers that may drop: 1 = the slot's answer is kept.
    pub kept: Option<GpuBuffer>,
    /// The handler's `state` array, when the definition asks for one. Shared: it outlives the
    /// kernel's rings until the kernel is removed, so final results stay readable.
    pub state: Option<Arc<GpuBuffer>>,
    drain: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    pub slots: u32,
    pub input_stride: u64,
    pub output_stride: u64,
    workgroup_size: u32,
    max_workgroups: u32,
}

impl GpuKernel {
    /// Compiles the kernel's module and allocates its rings (`slots` must be a power of two, so
    /// free-running u32 indices map onto slots consistently across wrap-around).
    pub async fn create(ctx: &GpuContext, definition: &KernelDefinition, slots: u32) -> Result<Self> {
        assert!(slots.is_power_of_two());
        if !definition.has_wgsl() {
            return Err(Error::KernelCompile {
                id: definition.id.clone(),
                message: "it has no WGSL handler, which GPU backends run; give it `wgsl`, or create the runtime with \
                          the cpu backend to run its host handler"
                    .into(),
                line: None,
                column: None,
            });
        }
        let device = &ctx.device;
        check_limits(device, definition, slots)?;
        let shader = codegen::generate(definition)?;
        #[cfg(not(target_arch = "wasm32"))]
        codegen::naga_check::check(&definition.id, &shader)?;
        let label = definition.id.as_str();

        #[cfg(target_arch = "wasm32")]
        let _one_scope_at_a_time = ctx.scopes.lock().await;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(shader.source.as_str().into()),
        });
        let info = module.get_compilation_info().await;
        if let Some(error) = info.messages.iter().find(|m| m.message_type == wgpu::CompilationMessageType::Error) {
            drop(scope.pop());
            let at = error.location.map(|at| (at.line_number, at.line_position, at.length));
            return Err(shader.compile_error(&definition.id, &error.message, at));
        }

        let input_stride = definition.input.size() as u64;
        let output_stride = definition.output.size() as u64;
        let ring = |label, header: u64, stride: u64, usage| {
            ctx.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: header + stride * slots as u64,
                usage,
                mapped_at_creation: false,
            })
        };
        // The input ring is also the target of a connected kernel's answers, the output ring
        // their source.
        let input_ring = ring(
            "input ring",
            RingHeader::SIZE,
            input_stride,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        );
        let output_ring = ring(
            "output ring",
            RingCounters::SIZE,
            output_stride,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        );
        let drops = shader.form == HandlerForm::AnswerOrDrop;
        let kept = drops.then(|| ring("kept flags", 0, 4, wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC));
        // wgpu zero-initializes new buffers, which is the state's documented starting value.
        // COPY_DST: recovery writes the last checkpoint into a relaunched kernel's state.
        // Arc for sharing, not threads: on the web nothing is Send.
        #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
        let state = definition.state.map(|spec| {
            Arc::new(ctx.create_buffer(&wgpu::BufferDescriptor {
                label: Some("kernel state"),
                size: spec.size_bytes(),
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }))
        });

        // Bindings as in shaders/harness/ (binding, read-only, buffer): 2 only for handlers that
        // may drop, 3 only with state. The layout and the bind group are both made from this list.
        let mut bindings: Vec<(u32, bool, &wgpu::Buffer)> = vec![(0, true, &input_ring), (1, false, &output_ring)];
        bindings.extend(kept.as_deref().map(|buffer| (2, false, buffer)));
        bindings.extend(state.as_deref().map(|buffer| (3, false, &**buffer)));
        let layout_entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
            .iter()
            .map(|&(binding, read_only, _)| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        // An explicit layout so both entry points (which use different bindings) share one bind group.
        let bind_group_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(label),
            entries: &layout_entries,
        });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(&bind_group_layout)],
            immediate_size: 0,
        });
        let pipeline = |entry_point| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: Some(&layout),
                module: &module,
                entry_point: Some(entry_point),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let drain = pipeline("ring_drain");
        let group_entries: Vec<wgpu::BindGroupEntry> = bindings
            .iter()
            .map(|&(binding, _, buffer)| wgpu::BindGroupEntry { binding, resource: buffer.as_entire_binding() })
            .collect();
        // Inside the scope too: a binding the device refuses is this kernel's error, not the
        // device's.
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &bind_group_layout,
            entries: &group_entries,
        });
        if let Some(error) = scope.pop().await {
            return Err(Error::KernelCompile {
                id: definition.id.clone(),
                message: error.to_string(),
                line: None,
                column: None,
            });
        }
        Ok(GpuKernel {
            input_ring,
            output_ring,
            kept,
            state,
            drain,
            bind_group,
            slots,
            input_stride,
            output_stride,
            workgroup_size: definition.workgroup_size,
            max_workgroups: device.limits().max_compute_workgroups_per_dimension,
        })
    }

    /// Encodes one bounded drain of `pending` messages: the kernel's only dispatch of a tick.
    pub fn encode_dispatch(&self, pass: &mut wgpu::ComputePass<'_>, pending: u32) {
        // Cap the grid: beyond a few thousand workgroups the grid-stride loop does the rest and
        // fewer invocations mean fewer telemetry atomics.
        let groups = pending.div_ceil(self.workgroup_size).clamp(1, self.max_workgroups.min(4096));
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.set_pipeline(&self.drain);
        pass.dispatch_workgroups(groups, 1, 1);
    }

    /// Bytes of GPU memory this kernel holds.
    pub fn gpu_bytes(&self) -> u64 {
        self.input_ring.size()
            + self.output_ring.size()
            + self.kept.as_ref().map_or(0, |b| b.size())
            + self.state.as_ref().map_or(0, |b| b.size())
    }
}

/// Refuses a kernel whose rings (`slots` messages each) or state the device cannot bind, naming
/// the limit and the largest queue size that fits, before anything is compiled or allocated.
fn check_limits(device: &wgpu::Device, definition: &KernelDefinition, slots: u32) -> Result<()> {
    let limits = device.limits();
    let bindable = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
    let too_big =
        |message: String| Error::KernelCompile { id: definition.id.clone(), message, line: None, column: None };
    let rings = [
        ("input", RingHeader::SIZE, definition.input.size() as u64),
        ("output", RingCounters::SIZE, definition.output.size() as u64),
    ];
    for (ring, header, stride) in rings {
        let size = header + stride * slots as u64;
        if size > bindable {
            // Slots are a power of two: the largest queue that fits is the largest such count.
            let fits = bindable.saturating_sub(header) / stride;
            let largest = if fits == 0 { 0 } else { 1u64 << fits.ilog2() };
            return Err(too_big(format!(
                "its {ring} ring would be {size} bytes ({slots} slots of {stride}-byte messages), more than this \
                 device can bind ({bindable} bytes); the largest queueSize that fits is {largest}"
            )));
        }
    }
    if let Some(state) = definition.state.filter(|state| state.size_bytes() > bindable) {
        return Err(too_big(format!(
            "its state would be {} bytes, more than this device can bind ({bindable} bytes)",
            state.size_bytes()
        )));
    }
    Ok(())
}

/// A MAP_READ buffer that every tick's outputs are copied into, so one `mapAsync` brings back
/// the results of all kernels. It grows (by doubling) and is never shrunk.
pub struct Readback {
    buffer: Option<GpuBuffer>,
}

impl Readback {
    pub fn new() -> Self {
        Readback { buffer: None }
    }

    /// A buffer of at least `size` bytes.
    pub fn reserve(&mut self, ctx: &GpuContext, size: u64) -> wgpu::Buffer {
        let size = size.next_multiple_of(wgpu::MAP_ALIGNMENT).max(256);
        if self.buffer.as_ref().is_none_or(|b| b.size() < size) {
            let grown = self.buffer.as_ref().map_or(size, |b| size.max(b.size() * 2));
            if let Some(old) = self.buffer.take() {
                old.destroy();
            }
            self.buffer = Some(ctx.create_buffer(&wgpu::BufferDescriptor {
                // MAP_READ may only be combined with COPY_DST, hence a buffer apart from the rings.
                label: Some("readback"),
                size: grown,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
        }
        self.buffer.as_deref().cloned().expect("just reserved")
    }
}

impl Default for Readback {
    fn default() -> Self {
        Self::new()
    }
}

/// Maps `buffer[..size]`, copies it out and unmaps. Never blocks on the web.
pub async fn read_back(ctx: &GpuContext, buffer: &wgpu::Buffer, size: u64) -> Result<Vec<u8>> {
    read_back_with(ctx, buffer, size, <[u8]>::to_vec).await
}

/// Maps `buffer[..size]`, hands the mapped bytes to `read` (no copy in between) and unmaps.
/// Never blocks on the web.
pub async fn read_back_with<R>(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    size: u64,
    read: impl FnOnce(&[u8]) -> R,
) -> Result<R> {
    let (sender, receiver) = futures_channel::oneshot::channel();
    let slice = buffer.slice(..size.next_multiple_of(4));
    slice.map_async(wgpu::MapMode::Read, move |result| {
        let _ = sender.send(result);
    });
    crate::platform::drive_gpu(&ctx.device);
    let mapped = receiver.await.map_err(|_| Error::DeviceLost { reason: "readback callback dropped".into() })?;
    if let Err(e) = mapped {
        ctx.check_fault()?;
        return Err(Error::DeviceLost { reason: format!("mapping the readback buffer failed: {e}") });
    }
    let result = {
        let view = slice
            .get_mapped_range()
            .map_err(|e| Error::DeviceLost { reason: format!("reading the mapped readback buffer failed: {e}") })?;
        read(&view[..size as usize])
    };
    buffer.unmap();
    Ok(result)
}

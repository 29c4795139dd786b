//! One kernel on the GPU: its input and output rings (with their header and counters), the
//! kept flags of handlers that may drop, its state array, pipeline and bind group, all created
//! once at launch and dropped at terminate.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use super::ring::{RingCounters, RingHeader};
use super::{GpuBuffer, GpuContext};
use crate::codegen::{self, HandlerForm};
use crate::error::{Error, Result};
use crate::kernel::{DispatchShape, KernelDefinition, ShapeLimits};
use crate::memory::{MemoryByPurpose, MemoryPurpose};
use crate::platform::option_name;

/// The GPU side of one launched kernel. Buffers and pipelines live as long as the kernel.
pub(crate) struct GpuKernel {
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
    pub workgroup_size: u32,
    grid: Grid,
    /// What the GPU counters said at the last readback, so each tick reports what it added.
    pub tally: Arc<Tally>,
    /// Whether it can run inside a fused pipeline: its handler answers every message, and it
    /// has no state and no workgroup memory.
    pub fusable: bool,
    /// Unique among the device's kernels for the runtime's life: names it in fused bind groups.
    pub serial: u64,
    fused: super::FusedCache,
    /// The kernels it may share a grouped dispatch with, unless it never groups.
    pub group: Option<Arc<super::GroupClass>>,
    /// Its next tick's commands, encoded on the web while the device runs its last (see
    /// [`super::NextCommands`]).
    pub ahead: super::NextCommands,
    /// Last, so it is dropped after the buffers: see [`SubmitWhenDropped`].
    _release: SubmitWhenDropped,
}

/// Submits nothing to the queue when dropped. A destroyed buffer's memory is freed when the
/// queue next moves on (Dawn, wgpu natively), so without it an idle device kept every removed
/// kernel's rings: in Node on Dawn, 1,600 launch and remove cycles with no traffic grew the
/// process from 72 to 285 MB, and an empty submit after each destroy held it level.
struct SubmitWhenDropped(wgpu::Queue);

impl Drop for SubmitWhenDropped {
    fn drop(&mut self) {
        self.0.submit([]);
    }
}

impl Drop for GpuKernel {
    fn drop(&mut self) {
        super::forget_fused(&self.fused, self.serial);
    }
}

static SERIALS: AtomicU64 = AtomicU64::new(1);

/// How many workgroups a dispatch gets: enough for `per_invocation` messages each (but no
/// fewer than 16 while there are messages for them), at most `cap`, yet never so few that an
/// invocation loops over more than 1024 messages (lavapipe silently cuts any loop short after
/// 65,535 iterations); and never more than `max`, the launch's `max_workgroups` and the
/// device's limit. The handler's grid-stride loop takes the rest.
///
/// A GPU gets one invocation per message up to 4096 workgroups. A software adapter gets at
/// most 64 workgroups of up to 16 messages per invocation: it runs a few workgroups at a time,
/// one per CPU thread, and pays for each invocation's start (the ring header's reads, the
/// bounds, the counters), so fewer invocations that loop longer win; 16 workgroups keep a
/// heavy handler spread over the CPU's threads. Measured on SwiftShader (headless Chromium,
/// two cores), a doubler against one invocation per message: 100,000 messages in 0.30× the
/// time, 1,000,000 (4096 workgroups before) in 0.76×, 10,000 in 0.56×.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Grid {
    per_invocation: u32,
    cap: u32,
    max: u32,
}

impl Grid {
    /// Messages one invocation takes at most while the launch and the device allow more
    /// workgroups.
    const MOST_PER_INVOCATION: u32 = 1024;
    /// Workgroups a dispatch spreads over while it has a message for each invocation of them.
    const SPREAD: u32 = 16;

    /// The grid for an adapter that is `software` or not, under the launch's `max_workgroups`
    /// and the device's limit.
    fn new(software: bool, max_workgroups: Option<u32>, device_limit: u32) -> Self {
        let (per_invocation, cap) = if software { (16, 64) } else { (1, 4096) };
        Grid { per_invocation, cap, max: max_workgroups.unwrap_or(u32::MAX).min(device_limit).max(1) }
    }

    /// Workgroups of `workgroup_size` invocations for `pending` messages.
    fn workgroups(&self, pending: u32, workgroup_size: u32) -> u32 {
        let per = |messages: u32| pending.div_ceil(workgroup_size.saturating_mul(messages));
        let packed = per(self.per_invocation).max(per(1).min(Self::SPREAD)).min(self.cap);
        packed.max(per(Self::MOST_PER_INVOCATION)).clamp(1, self.max)
    }
}

/// A kernel's GPU counters as last read back (a relaunched kernel starts from zero with a new
/// tally).
#[derive(Debug, Default)]
pub(crate) struct Tally {
    processed: AtomicU32,
    dropped: AtomicU32,
}

impl Tally {
    /// Records the counters just read back; returns what they added since the last reading
    /// (processed, dropped). They are read after every dispatch that can change them, each
    /// adding less than 2^32, so the wrapping difference is exact.
    pub fn advance(&self, counters: &RingCounters) -> (u64, u64) {
        let step = |seen: &AtomicU32, now: u32| now.wrapping_sub(seen.swap(now, Ordering::Relaxed)) as u64;
        (step(&self.processed, counters.processed), step(&self.dropped, counters.dropped))
    }
}

impl GpuKernel {
    /// Compiles the kernel's module and allocates its rings (`slots` must be a power of two, so
    /// free-running u32 indices map onto slots consistently across wrap-around).
    pub async fn create(
        ctx: &GpuContext,
        definition: &KernelDefinition,
        slots: u32,
        shape: &DispatchShape,
    ) -> Result<Self> {
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
        codegen::check_features(definition, &ctx.adapter.features, &ctx.adapter.name)?;
        check_limits(device, definition, slots)?;
        let shader = codegen::generate_for(definition, shape)?;
        let workgroup_size = shape.workgroup_size.unwrap_or(definition.workgroup_size);
        check_shape(device, shape)?;
        #[cfg(not(target_arch = "wasm32"))]
        codegen::check(&definition.id, &shader)?;
        let label = definition.id.as_str();

        #[cfg(target_arch = "wasm32")]
        let _one_scope_at_a_time = ctx.one_scope_at_a_time().await;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let unnamed = shader.unnamed();
        let kept = ctx.pipelines.find(&unnamed, workgroup_size);
        let compiled = kept.is_none();
        let (drain, layout) = match kept {
            Some(pair) => pair,
            None => match shader_module(device, label, &shader.source).await {
                Ok(module) => drain_pipeline(device, label, &module, workgroup_size),
                Err((message, at)) => {
                    drop(scope.pop());
                    return Err(shader.compile_error(&definition.id, &message, at));
                }
            },
        };

        let drops = shader.form == HandlerForm::AnswerOrDrop;
        let buffers = Buffers::allocate(ctx, definition, slots, drops);
        let bindings = buffers.bindings();
        // Pushed, not collected: each `collect` is a copy of `Vec`'s `from_iter` in the wasm.
        let mut group_entries = Vec::with_capacity(bindings.len());
        for &(binding, buffer) in &bindings {
            group_entries.push(wgpu::BindGroupEntry { binding, resource: buffer.as_entire_binding() });
        }
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &layout,
            entries: &group_entries,
        });
        // The bind group is made inside the scope too: a binding the device refuses is this
        // kernel's error, not the device's.
        if let Some(error) = scope.pop().await {
            return Err(Error::KernelCompile {
                id: definition.id.clone(),
                message: error.to_string(),
                line: None,
                column: None,
            });
        }
        if compiled {
            ctx.pipelines.keep(&unnamed, workgroup_size, &drain, &layout);
        }
        let Buffers { input_ring, output_ring, kept, state } = buffers;
        let grid = Grid::new(ctx.software, shape.max_workgroups, device.limits().max_compute_workgroups_per_dimension);
        Ok(GpuKernel {
            input_ring,
            output_ring,
            kept,
            state,
            drain,
            bind_group,
            slots,
            input_stride: definition.input.size() as u64,
            output_stride: definition.output.size() as u64,
            workgroup_size,
            grid,
            tally: Arc::default(),
            fusable: !shape.unfused && shape.workgroup_memory_bytes == 0 && codegen::unfusable(definition).is_none(),
            serial: SERIALS.fetch_add(1, Ordering::Relaxed),
            fused: ctx.fused.clone(),
            group: super::GroupClass::for_kernel(ctx, definition, shape, workgroup_size, grid.max),
            ahead: Default::default(),
            _release: SubmitWhenDropped(ctx.queue.clone()),
        })
    }

    /// Encodes one bounded drain over `workgroups` workgroups (its [`workgroups`](Self::workgroups)
    /// for the tick's messages): the kernel's only dispatch of a tick.
    pub fn encode_dispatch(&self, pass: &mut wgpu::ComputePass<'_>, workgroups: u32) {
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.set_pipeline(&self.drain);
        pass.dispatch_workgroups(workgroups, 1, 1);
    }

    /// Workgroups of a dispatch over `pending` messages (see [`Grid`]).
    pub fn workgroups(&self, pending: u32) -> u32 {
        self.grid.workgroups(pending, self.workgroup_size)
    }

    /// Bytes of GPU memory this kernel holds.
    pub fn gpu_bytes(&self) -> u64 {
        self.memory().total()
    }

    /// Those bytes by purpose.
    pub fn memory(&self) -> MemoryByPurpose {
        let mut bytes = MemoryByPurpose::default();
        let buffers = [Some(&self.input_ring), Some(&self.output_ring), self.kept.as_ref(), self.state.as_deref()];
        for buffer in buffers.into_iter().flatten() {
            bytes.add(buffer.purpose(), buffer.size());
        }
        bytes
    }
}

/// Refuses a dispatch shape the device cannot run: a block (workgroup) larger than its limits,
/// an empty grid, more workgroup memory than it has.
fn check_shape(device: &wgpu::Device, shape: &DispatchShape) -> Result<()> {
    let limits = device.limits();
    shape.check(&ShapeLimits {
        invocations: limits.max_compute_invocations_per_workgroup.min(limits.max_compute_workgroup_size_x),
        workgroup_memory_bytes: limits.max_compute_workgroup_storage_size,
        set_by: "this device",
    })
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
                concat!(
                    "its {} ring would be {} bytes ({} slots of {}-byte messages), more than this device can bind ({} \
                     bytes); the largest ",
                    option_name!("queueSize", "queue_size"),
                    " that fits is {}"
                ),
                ring, size, slots, stride, bindable, largest
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

/// A kernel's buffers, as [`GpuKernel`] holds them.
struct Buffers {
    input_ring: GpuBuffer,
    output_ring: GpuBuffer,
    kept: Option<GpuBuffer>,
    state: Option<Arc<GpuBuffer>>,
}

impl Buffers {
    /// Rings of `slots` messages behind their header and counters, kept flags for handlers that
    /// may drop (`drops`), and the state array when the definition has one.
    fn allocate(ctx: &GpuContext, definition: &KernelDefinition, slots: u32, drops: bool) -> Self {
        let ring = |purpose, label, header: u64, stride: u64, usage| {
            ctx.create_buffer(
                purpose,
                &wgpu::BufferDescriptor {
                    label: Some(label),
                    size: header + stride * slots as u64,
                    usage,
                    mapped_at_creation: false,
                },
            )
        };
        let (input_stride, output_stride) = (definition.input.size() as u64, definition.output.size() as u64);
        // The input ring is also the target of a connected kernel's answers, the output ring
        // their source.
        let input_ring = ring(
            MemoryPurpose::InputRing,
            "input ring",
            RingHeader::SIZE,
            input_stride,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        );
        let output_ring = ring(
            MemoryPurpose::OutputRing,
            "output ring",
            RingCounters::SIZE,
            output_stride,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        );
        let kept = drops.then(|| {
            ring(
                MemoryPurpose::KeptFlags,
                "kept flags",
                0,
                4,
                wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            )
        });
        // wgpu zero-initializes new buffers, which is the state's documented starting value.
        // COPY_DST: recovery writes the last checkpoint into a relaunched kernel's state.
        // Arc for sharing, not threads: on the web nothing is Send.
        #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
        let state = definition.state.map(|spec| {
            Arc::new(ctx.create_buffer(
                MemoryPurpose::State,
                &wgpu::BufferDescriptor {
                    label: Some("kernel state"),
                    size: spec.size_bytes(),
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                },
            ))
        });
        Buffers { input_ring, output_ring, kept, state }
    }

    /// Bindings as in shaders/harness/ (binding, buffer): 2 only for handlers that may drop, 3
    /// only with state.
    fn bindings(&self) -> Vec<(u32, &wgpu::Buffer)> {
        let mut bindings: Vec<(u32, &wgpu::Buffer)> = vec![(0, &self.input_ring), (1, &self.output_ring)];
        // `if let`, not `extend` of an `Option`: each such `extend` is an instance of its own.
        if let Some(buffer) = self.kept.as_deref() {
            bindings.push((2, buffer));
        }
        if let Some(buffer) = self.state.as_deref() {
            bindings.push((3, &**buffer));
        }
        bindings
    }
}

/// Compiles WGSL `source`; a compile error comes back as its message and location (1-based
/// line, column, length), for the caller to map to the user's source.
pub(super) async fn shader_module(
    device: &wgpu::Device,
    label: &str,
    source: &str,
) -> std::result::Result<wgpu::ShaderModule, (String, Option<(u32, u32, u32)>)> {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let info = module.get_compilation_info().await;
    match info.messages.iter().find(|m| m.message_type == wgpu::CompilationMessageType::Error) {
        Some(error) => {
            Err((error.message.clone(), error.location.map(|at| (at.line_number, at.line_position, at.length))))
        }
        None => Ok(module),
    }
}

/// A background compilation's module and drain pipeline (see [`drain_pipeline`]), made inside
/// one validation error scope while holding the device's scope stack: the pipeline and its bind
/// group layout, or the compiler's message and location (as [`shader_module`] gives them).
pub(super) async fn compile_drain(
    device: &wgpu::Device,
    scopes: super::Scopes,
    label: &str,
    source: &str,
    workgroup_size: u32,
) -> std::result::Result<(wgpu::ComputePipeline, wgpu::BindGroupLayout), (String, Option<(u32, u32, u32)>)> {
    let _one_scope_at_a_time = scopes.lock().await;
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module = match shader_module(device, label, source).await {
        Ok(module) => module,
        Err(error) => {
            drop(scope.pop());
            return Err(error);
        }
    };
    let pipeline = drain_pipeline(device, label, &module, workgroup_size);
    match scope.pop().await {
        Some(error) => Err((error.to_string(), None)),
        None => Ok(pipeline),
    }
}

/// What a fused or grouped module's failure to compile says, for its warning: the compiler's
/// message and, where it lies in a handler's own source, its line there, naming the stage's
/// kernel when `names_stage` (a fused module's error names its stage; a grouped module's only
/// the module, whose kernels share one handler).
pub(super) fn compile_failure(error: Error, names_stage: bool) -> String {
    match error {
        Error::KernelCompile { id, message, line: Some(line), .. } if names_stage => {
            format!("{message} (kernel {}, its handler's line {line})", crate::error::Quoted(&id))
        }
        Error::KernelCompile { message, line: Some(line), .. } => format!("{message} (the handler's line {line})"),
        Error::KernelCompile { message, .. } => message,
        other => other.to_string(),
    }
}

/// The drain pipeline of `module` and its bind group layout, the one WebGPU derives from the
/// bindings its entry point uses. The harness uses every binding it declares (the state too,
/// whether or not the handler does: see shaders/harness/ring.wgsl), so the layout is the one
/// its bind groups are made for. No layout of our own: wgpu's `create_bind_group_layout`
/// handles every kind of binding, textures too, and on the web that weighed about 1 KB
/// gzipped that nothing here uses.
pub(super) fn drain_pipeline(
    device: &wgpu::Device,
    label: &str,
    module: &wgpu::ShaderModule,
    workgroup_size: u32,
) -> (wgpu::ComputePipeline, wgpu::BindGroupLayout) {
    let drain = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(label),
        layout: None,
        module,
        entry_point: Some("ring_drain"),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants: &[("RING_WORKGROUP_SIZE", workgroup_size as f64)],
            ..Default::default()
        },
        cache: None,
    });
    let bind_group_layout = drain.get_bind_group_layout(0);
    (drain, bind_group_layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GPU's 32-bit counters wrap; what each reading adds stays exact across the wrap.
    #[test]
    fn tally_steps_across_the_counters_wrap() {
        let tally = Tally::default();
        let reading = |processed: u32, dropped: u32| RingCounters { processed, dropped, ..Default::default() };
        assert_eq!(tally.advance(&reading(4_294_967_000, 7)), (4_294_967_000, 7));
        assert_eq!(tally.advance(&reading(200, 7)), (496, 0), "296 to the wrap, then 200");
        assert_eq!(tally.advance(&reading(200, u32::MAX)), (0, u32::MAX as u64 - 7));
        assert_eq!(tally.advance(&reading(1_000, 3)), (800, 4));
    }

    /// A GPU gets an invocation per message up to 4096 workgroups; a software adapter 16
    /// workgroups (fewer for fewer messages), more once each invocation has 16 messages, at
    /// most 64 unless an invocation would loop over more than 1024; the launch's cap and the
    /// device's limit hold on both, and there is always one workgroup.
    #[test]
    fn the_grid_is_small_on_software_adapters() {
        let gpu = Grid::new(false, None, 65_535);
        assert_eq!([0, 1, 64, 65, 100_000, 1 << 20].map(|n| gpu.workgroups(n, 64)), [1, 1, 1, 2, 1563, 4096]);
        assert_eq!(gpu.workgroups(1 << 22, 1), 4096, "1024 messages an invocation");
        let software = Grid::new(true, None, 65_535);
        let counts = [0, 1, 65, 1024, 16_384, 16_385, 40_000, 100_000, 1 << 22];
        assert_eq!(counts.map(|n| software.workgroups(n, 64)), [1, 1, 2, 16, 16, 17, 40, 64, 64]);
        assert_eq!(software.workgroups(100_000, 256), 25, "16 messages for each of 256 invocations");
        assert_eq!(software.workgroups(1 << 22, 1), 4096, "not 65,536 messages for each of 64 invocations");
        assert_eq!(software.workgroups(1 << 22, 16), 256);
        assert_eq!(Grid::new(false, Some(8), 65_535).workgroups(100_000, 64), 8);
        assert_eq!(Grid::new(true, Some(8), 65_535).workgroups(1 << 22, 1), 8, "the launch's cap holds");
        assert_eq!(Grid::new(false, None, 1000).workgroups(1 << 20, 64), 1000);
    }

    /// A fused module's warning says where its error lies in which stage; a grouped one's where
    /// in the one handler its kernels share.
    #[test]
    fn a_compile_failure_says_where() {
        let at = |line| Error::KernelCompile { id: "b".into(), message: "no `y`".into(), line, column: Some(5) };
        assert_eq!(compile_failure(at(Some(3)), true), "no `y` (kernel 'b', its handler's line 3)");
        assert_eq!(compile_failure(at(Some(3)), false), "no `y` (the handler's line 3)");
        assert_eq!(compile_failure(at(None), true), "no `y`");
    }
}

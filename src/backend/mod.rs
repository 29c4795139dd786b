//! Backends that run ring kernels:
//! - [`gpu`]: wgpu, on the browser's WebGPU or natively on Vulkan, Metal, DX12 and GL. Rings,
//!   headers, counters and state live in GPU memory.
//! - [`cpu`]: host handlers (Rust natively, JavaScript functions in the browser) behind the same
//!   lifecycle, queues and telemetry, for machines and browsers without a GPU adapter.
//!
//! The runtime sees them through [`Device`] (one per device it opened) and [`KernelExec`] (one per
//! launched kernel). The tick sees them through [`Execute`]: the one step of a tick that differs
//! between backends. Everything around it (what each kernel takes, where its answers go, how
//! they are counted) is the tick's, written once.

pub(crate) mod cpu;
pub(crate) mod gpu;

use std::future::Future;
use std::sync::{Arc, Mutex};

use event_listener::Event;

use crate::error::{Error, Result};
use crate::features::DeviceFeature;
use crate::kernel::{DispatchShape, KernelDefinition, ShapeLimits};
use crate::memory::{DeviceMemoryLimits, MemoryByPurpose};
use crate::platform;
use crate::shared_device::SharedDevice;
use cpu::{CpuContext, CpuKernel};
pub(crate) use gpu::BufferStats;
use gpu::{GpuBuffer, GpuContext, GpuKernel};

/// Which adapters the runtime may pick. In JavaScript (and in serialized options) these are
/// the lowercase names `"auto"`, `"vulkan"`, `"gl"`, `"metal"`, `"dx12"`, `"webgpu"` and `"cpu"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BackendChoice {
    /// Any GPU adapter (WebGPU in the browser; Vulkan, Metal, DX12, then GL natively).
    #[default]
    Auto,
    /// Vulkan (on machines without a GPU, Mesa's lavapipe).
    Vulkan,
    /// OpenGL ES / WebGL-class GL.
    #[serde(alias = "gles")]
    Gl,
    /// Apple's Metal.
    Metal,
    /// Direct3D 12.
    Dx12,
    /// The browser's WebGPU.
    WebGpu,
    /// No GPU: kernels run their host handlers (Rust natively, JavaScript functions in the
    /// browser) with the same lifecycle, queues and telemetry.
    Cpu,
}

impl BackendChoice {
    /// The choice named `name` (see the type's docs), or `None`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "auto" => BackendChoice::Auto,
            "vulkan" => BackendChoice::Vulkan,
            "gl" | "gles" => BackendChoice::Gl,
            "metal" => BackendChoice::Metal,
            "dx12" => BackendChoice::Dx12,
            "webgpu" => BackendChoice::WebGpu,
            "cpu" => BackendChoice::Cpu,
            _ => return None,
        })
    }

    pub(crate) fn backends(self) -> wgpu::Backends {
        match self {
            BackendChoice::Auto => wgpu::Backends::all(),
            BackendChoice::Vulkan => wgpu::Backends::VULKAN,
            BackendChoice::Gl => wgpu::Backends::GL,
            BackendChoice::Metal => wgpu::Backends::METAL,
            BackendChoice::Dx12 => wgpu::Backends::DX12,
            BackendChoice::WebGpu => wgpu::Backends::BROWSER_WEBGPU,
            BackendChoice::Cpu => wgpu::Backends::empty(),
        }
    }
}

/// Which way a browser (or wgpu natively) leans when it picks an adapter: on laptops with two
/// GPUs, `HighPerformance` asks for the discrete one and `LowPower` for the integrated one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum PowerPreference {
    /// The faster adapter (the default).
    #[default]
    HighPerformance,
    /// The adapter that saves power.
    LowPower,
}

/// What the runtime reports about the adapter it runs on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AdapterSummary {
    /// `vulkan`, `gl`, `metal`, `dx12`, `browserwebgpu` or `cpu`.
    pub backend: String,
    /// The adapter's name (a description when the browser withholds it).
    pub name: String,
    /// The driver's name (`ringkernel-web <version>` on the `cpu` backend).
    pub driver: String,
    /// wgpu's device type: `DiscreteGpu`, `IntegratedGpu`, `Cpu`, ...
    pub device_type: String,
    /// The optional features the device was opened with: those of [`DeviceFeature::ALL`] the
    /// adapter has (none on the `cpu` backend).
    pub features: Vec<DeviceFeature>,
}

/// Which device to open: the backend, the adapter's index among those wgpu lists (0: the one
/// it recommends, leaning the way `power` says), and whether to turn on debug labels and the
/// API's validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct DeviceRequest {
    pub backend: BackendChoice,
    pub index: usize,
    pub power: PowerPreference,
    pub debug: bool,
}

/// Where a device of the runtime comes from: opened by the runtime as `Open` says, or the
/// application's own ([`SharedDevice`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DeviceSource {
    Open(DeviceRequest),
    Shared(SharedDevice),
}

/// Whether `backend` has an adapter (always, for the cpu backend).
pub(crate) async fn is_available(backend: BackendChoice) -> bool {
    if backend == BackendChoice::Cpu {
        return true;
    }
    gpu::request_adapter(DeviceRequest { backend, ..Default::default() }).await.is_ok()
}

/// What every kernel of one runtime runs on.
pub(crate) enum Device {
    Gpu(GpuContext),
    Cpu(CpuContext),
}

impl Device {
    /// Opens the device `source` names; `BackendUnavailable` (saying what was tried) when no
    /// adapter exists, or when the application's device cannot run kernels. `Auto` never falls
    /// back to the CPU: that is the caller's explicit choice. GPU buffers are counted in
    /// `stats`; `wake` hears of a lost device.
    pub async fn open(source: &DeviceSource, stats: Arc<BufferStats>, wake: Arc<Event>) -> Result<Device> {
        match source {
            DeviceSource::Open(DeviceRequest { backend: BackendChoice::Cpu, .. }) => Ok(Device::Cpu(CpuContext::new())),
            DeviceSource::Open(request) => GpuContext::new(*request, stats, wake).await.map(Device::Gpu),
            DeviceSource::Shared(shared) => GpuContext::shared(shared, stats, wake).map(Device::Gpu),
        }
    }

    pub fn adapter(&self) -> &AdapterSummary {
        match self {
            Device::Gpu(gpu) => &gpu.adapter,
            Device::Cpu(cpu) => &cpu.adapter,
        }
    }

    /// Whether the device can run `definition`: a GPU its WGSL, the CPU its host handler.
    pub fn runs(&self, definition: &KernelDefinition) -> bool {
        match self {
            Device::Gpu(_) => definition.has_wgsl(),
            Device::Cpu(_) => definition.host.is_some(),
        }
    }

    /// Whether the device has every optional feature `definition`'s WGSL enables (a cpu
    /// device runs the host handler, which needs none).
    pub fn has_features(&self, definition: &KernelDefinition) -> bool {
        match self {
            Device::Gpu(gpu) => crate::codegen::missing_feature(definition, &gpu.adapter.features).is_none(),
            Device::Cpu(_) => true,
        }
    }

    /// What the device says about memory (nothing on the CPU).
    pub fn memory_limits(&self) -> DeviceMemoryLimits {
        self.gpu().map(GpuContext::memory_limits).unwrap_or_default()
    }

    pub fn gpu(&self) -> Option<&GpuContext> {
        match self {
            Device::Gpu(gpu) => Some(gpu),
            Device::Cpu(_) => None,
        }
    }

    /// Why the device is unusable, if it is (lost, or an error escaped every scope).
    pub fn fault(&self) -> Option<Error> {
        self.gpu().and_then(|gpu| gpu.check_fault().err())
    }

    /// Compiles `definition` for this device: its rings and pipeline on a GPU (natively on a
    /// helper thread, so compiling never stalls the caller's executor), its host handler on the
    /// CPU. `queue_size` sets the ring's slot count, `shape` the GPU dispatch.
    pub async fn create_kernel(
        self: &Arc<Self>,
        definition: Arc<KernelDefinition>,
        queue_size: usize,
        shape: DispatchShape,
    ) -> Result<KernelExec> {
        match &**self {
            Device::Cpu(_) => {
                shape.check(&ShapeLimits::PORTABLE)?;
                CpuKernel::create(&definition).map(|cpu| KernelExec::Cpu(Arc::new(cpu)))
            }
            Device::Gpu(_) => {
                let id = definition.id.clone();
                // A power of two, so free-running indices map onto slots across wrap-around.
                let slots = (queue_size as u32).next_power_of_two();
                let device = self.clone();
                platform::run_detached(move || async move {
                    let gpu = device.gpu().expect("matched above");
                    GpuKernel::create(gpu, &definition, slots, &shape).await.map(|gpu| KernelExec::Gpu(Box::new(gpu)))
                })
                .await
                .unwrap_or_else(|| {
                    Err(Error::KernelCompile {
                        id,
                        message: "the pipeline compiler panicked".into(),
                        line: None,
                        column: None,
                    })
                })
            }
        }
    }
}

/// A launched kernel's execution resources, created at launch and dropped at terminate.
pub(crate) enum KernelExec {
    /// Boxed: a GPU kernel's handles are many times the size of the CPU variant.
    Gpu(Box<GpuKernel>),
    /// Shared so the tick can run the host handler without holding the kernel table's lock.
    Cpu(Arc<CpuKernel>),
}

impl KernelExec {
    /// The kernel's state array, to be kept past terminate until the kernel is removed.
    pub fn state_store(&self) -> Option<StateStore> {
        match self {
            KernelExec::Gpu(gpu) => gpu.state.clone().map(StateStore::Gpu),
            KernelExec::Cpu(cpu) => cpu.has_state().then(|| StateStore::Cpu(cpu.state.clone())),
        }
    }

    /// Device memory held by the kernel's rings (with their header and counters) and state (0 on
    /// the CPU).
    pub fn device_bytes(&self) -> u64 {
        match self {
            KernelExec::Gpu(gpu) => gpu.gpu_bytes(),
            KernelExec::Cpu(_) => 0,
        }
    }

    /// Device bytes by purpose, its state left out (the kernel's [`StateStore`] holds that,
    /// also past terminate). 0 on the CPU, whose rings are the host queues.
    pub fn ring_memory(&self) -> MemoryByPurpose {
        match self {
            KernelExec::Gpu(gpu) => MemoryByPurpose { state: 0, ..gpu.memory() },
            KernelExec::Cpu(_) => MemoryByPurpose::default(),
        }
    }

    /// Whether the GPU handler may drop messages (then its answers cannot be forwarded slot for
    /// slot on the device).
    pub fn drops_on_gpu(&self) -> bool {
        matches!(self, KernelExec::Gpu(gpu) if gpu.kept.is_some())
    }
}

/// A kernel's `state` array wherever its backend keeps it.
#[derive(Clone)]
pub(crate) enum StateStore {
    Gpu(Arc<GpuBuffer>),
    Cpu(Arc<Mutex<Vec<u32>>>),
}

/// How a connected kernel's answers reach the next kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Routing {
    /// Copied ring to ring on the device, inside the tick: the next stage runs on them in the
    /// same tick.
    OnDevice,
    /// Through the host: pushed into the next kernel's input queue once the tick delivers.
    ViaHost,
}

/// One kernel's share of a tick, as the tick planned it for the backend.
pub(crate) struct Dispatch<'a> {
    pub exec: &'a KernelExec,
    /// The messages handed over this tick, packed back to back.
    pub input: &'a [u8],
    /// Ring index where `input` goes (behind the unanswered messages).
    pub input_at: u32,
    /// Ring index of the first message of the dispatch (the oldest unanswered one).
    pub head: u32,
    /// Messages the dispatch runs on: unanswered, handed over this tick, and forwarded in.
    pub pending: u32,
    /// For [`Routing::OnDevice`]: the dispatch (an index into the tick's dispatches) that
    /// this one's answers are copied into, and the ring index they land at.
    pub forward: Option<(usize, u32)>,
    /// The stage of the pipeline: 0, or one after the dispatch that feeds it.
    pub level: usize,
    /// The kernel's definition (fused pipelines are generated from their stages').
    pub definition: &'a Arc<crate::kernel::KernelDefinition>,
    /// Whether it may run fused with the stages next to it: it is active (not terminating) and
    /// stays on its device.
    pub fusable: bool,
    /// Whether its state array comes back as its checkpoint this tick (see
    /// `LaunchOptions::checkpoint_interval`).
    pub checkpoint: bool,
}

/// What one kernel's dispatch produced, as the tick delivers it.
#[derive(Debug, Default)]
pub(crate) struct Outcome<'a> {
    /// How many of the dispatch's messages were answered (all, or none if it did not run).
    pub answered: u32,
    /// The answers, packed (empty when they were forwarded on the device).
    pub answers: &'a [u8],
    /// One little-endian u32 per answer for handlers that may drop (0 = dropped).
    pub kept: Option<&'a [u8]>,
    /// What the handler added to its counters.
    pub processed: u64,
    pub dropped: u64,
    pub dispatches: u64,
    /// Host handlers that failed (threw or panicked), and why each did: the message's index
    /// among the answers, and the text.
    pub failed: u64,
    pub failures: &'a [(usize, String)],
    /// The state array after the dispatch, when the tick copied it back as the kernel's
    /// checkpoint (GPU kernels, see [`Dispatch::checkpoint`]).
    pub checkpoint: Option<&'a [u8]>,
    pub bytes_to_device: u64,
    pub bytes_from_device: u64,
    /// Whether it ran fused into one dispatch with the other stages of its pipeline.
    pub fused: bool,
    /// Whether it ran in one dispatch with other kernels of its handler (a grouped dispatch).
    pub grouped: bool,
    /// Whether its commands were encoded while the device ran the tick before (see
    /// `gpu::ahead`).
    pub encoded_ahead: bool,
    /// Workgroups of the dispatch it ran in (0 on the cpu backend).
    pub workgroups: u32,
}

/// What one tick of a device may copy back, for the plan to keep each tick within it: past
/// the device's largest buffer the readback cannot be made, and the device is lost with it.
#[derive(Clone, Copy)]
pub(crate) struct ReadbackBudget {
    /// Bytes a tick may copy back in all.
    pub most: u64,
    /// What a dispatch of a kernel copies back (nothing on the cpu backend).
    pub cost: fn(&KernelExec) -> ReadbackCost,
}

impl ReadbackBudget {
    /// No bound: a backend that copies nothing back.
    pub const NONE: ReadbackBudget = ReadbackBudget { most: u64::MAX, cost: |_| ReadbackCost::NONE };
}

/// What one dispatch of a kernel copies back, in bytes.
#[derive(Clone, Copy)]
pub(crate) struct ReadbackCost {
    /// Whatever its count: its counters.
    pub fixed: u64,
    /// Its state array, in a tick that checkpoints it.
    pub state: u64,
    /// Each answer, with its kept flag.
    pub per_answer: u64,
}

impl ReadbackCost {
    /// Nothing copied back.
    pub const NONE: ReadbackCost = ReadbackCost { fixed: 0, state: 0, per_answer: 0 };

    /// What a dispatch copies back whatever its count, in a tick that does or does not
    /// `checkpoint` its state.
    pub fn fixed_in_tick(&self, checkpoint: bool) -> u64 {
        self.fixed + if checkpoint { self.state } else { 0 }
    }
}

/// The backend-specific step of a tick: run the planned dispatches, report their outcomes.
pub(crate) trait Execute {
    /// Work handed to the device, to be completed without the table lock.
    type Submitted;

    /// How connected kernels pass answers to each other on this backend.
    const ROUTING: Routing;

    /// Most messages one dispatch of `exec` may hold in flight, or `None` when `exec` belongs
    /// to another backend.
    fn capacity(exec: &KernelExec) -> Option<u32>;

    /// What one tick of this device may copy back.
    fn readback_budget(&self) -> ReadbackBudget;

    /// Why the device cannot run anything now, if it cannot.
    fn check(&self) -> Result<()>;

    /// Under the table lock: hands the dispatches' input to the device and starts the work.
    fn submit(&self, dispatches: &[Dispatch<'_>]) -> Result<Self::Submitted>;

    /// Without the table lock: waits for the work, then hands each dispatch's outcome, in the
    /// order submitted, to `deliver`.
    fn complete<R>(
        &self,
        submitted: Self::Submitted,
        deliver: impl FnOnce(&[Outcome<'_>]) -> R,
    ) -> impl Future<Output = Result<R>>;
}

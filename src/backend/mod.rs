//! Backends that run ring kernels:
//! - [`gpu`]: wgpu, on the browser's WebGPU or natively on Vulkan, Metal, DX12 and GL. Rings,
//!   headers, counters and state live in GPU memory.
//! - [`cpu`]: host handlers (Rust natively, JavaScript functions in the browser) behind the same
//!   lifecycle, queues and telemetry, for machines and browsers without a GPU adapter.
//!
//! The runtime sees them through [`Device`] (one per runtime) and [`KernelExec`] (one per
//! launched kernel); only the pump tells them apart when it runs a tick.

pub mod cpu;
pub mod gpu;

use std::sync::{Arc, Mutex};

use event_listener::Event;

use crate::error::Result;
use cpu::{CpuContext, CpuKernel};
use gpu::{BufferStats, GpuBuffer, GpuContext, GpuKernel};

/// Which adapters the runtime may pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// Any GPU adapter (WebGPU in the browser; Vulkan, Metal, DX12, then GL natively).
    #[default]
    Auto,
    Vulkan,
    Gl,
    Metal,
    Dx12,
    /// The browser's WebGPU.
    WebGpu,
    /// No GPU: kernels run their host handlers (Rust natively, JavaScript functions in the
    /// browser) with the same lifecycle, queues and telemetry.
    Cpu,
}

impl BackendChoice {
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

/// What the runtime reports about the adapter it runs on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdapterSummary {
    pub backend: String,
    pub name: String,
    pub driver: String,
    pub device_type: String,
}

/// What every kernel of one runtime runs on.
pub(crate) enum Device {
    Gpu(GpuContext),
    Cpu(CpuContext),
}

impl Device {
    /// Opens the backend `choice` names; `BackendUnavailable` (saying what was tried) when no
    /// adapter exists. `Auto` never falls back to the CPU: that is the caller's explicit choice.
    /// GPU buffers are counted in `stats`; `wake` hears of a lost device.
    pub async fn open(choice: BackendChoice, stats: Arc<BufferStats>, wake: Arc<Event>) -> Result<Device> {
        match choice {
            BackendChoice::Cpu => Ok(Device::Cpu(CpuContext::new())),
            gpu_choice => GpuContext::new(gpu_choice, stats, wake).await.map(Device::Gpu),
        }
    }

    pub fn adapter(&self) -> &AdapterSummary {
        match self {
            Device::Gpu(gpu) => &gpu.adapter,
            Device::Cpu(cpu) => &cpu.adapter,
        }
    }

    pub fn gpu(&self) -> Option<&GpuContext> {
        match self {
            Device::Gpu(gpu) => Some(gpu),
            Device::Cpu(_) => None,
        }
    }
}

/// A launched kernel's execution resources, created at launch and dropped at terminate.
pub(crate) enum KernelExec {
    /// Boxed: a GPU kernel's handles are many times the size of the CPU variant.
    Gpu(Box<GpuKernel>),
    /// Shared so the pump can run the host handler without holding the kernel table's lock.
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
}

/// A kernel's `state` array wherever its backend keeps it.
#[derive(Clone)]
pub(crate) enum StateStore {
    Gpu(Arc<GpuBuffer>),
    Cpu(Arc<Mutex<Vec<u32>>>),
}

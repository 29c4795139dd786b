//! The `--backend` flag: what the runtime is asked for, and which adapters wgpu itself may
//! enumerate for it (for `info`, and for `bench`'s hand-written baselines, which must run on
//! the very adapter the runtime picked).

use clap::ValueEnum;
use ringkernel_web::{AdapterSummary, BackendChoice};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Auto,
    Vulkan,
    Gl,
    Metal,
    Dx12,
    /// No GPU: kernels run their host handlers.
    Cpu,
}

impl Backend {
    pub fn choice(self) -> BackendChoice {
        match self {
            Backend::Auto => BackendChoice::Auto,
            Backend::Vulkan => BackendChoice::Vulkan,
            Backend::Gl => BackendChoice::Gl,
            Backend::Metal => BackendChoice::Metal,
            Backend::Dx12 => BackendChoice::Dx12,
            Backend::Cpu => BackendChoice::Cpu,
        }
    }

    /// The graphics APIs wgpu may enumerate for this choice (none for `cpu`).
    pub fn wgpu_backends(self) -> wgpu::Backends {
        match self {
            Backend::Auto => wgpu::Backends::all(),
            Backend::Vulkan => wgpu::Backends::VULKAN,
            Backend::Gl => wgpu::Backends::GL,
            Backend::Metal => wgpu::Backends::METAL,
            Backend::Dx12 => wgpu::Backends::DX12,
            Backend::Cpu => wgpu::Backends::empty(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Vulkan => "vulkan",
            Backend::Gl => "gl",
            Backend::Metal => "metal",
            Backend::Dx12 => "dx12",
            Backend::Cpu => "cpu",
        }
    }
}

/// The graphics APIs wgpu has natively, each as its own flag.
const NATIVE_APIS: [wgpu::Backends; 4] =
    [wgpu::Backends::VULKAN, wgpu::Backends::METAL, wgpu::Backends::DX12, wgpu::Backends::GL];

/// Every adapter wgpu sees on `backends`, each from an instance of its own API family so a
/// missing GL driver cannot hide the Vulkan adapters.
pub async fn enumerate_adapters(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    let mut adapters = Vec::new();
    for api in NATIVE_APIS.into_iter().filter(|api| backends.contains(*api)) {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        desc.backends = api;
        adapters.extend(wgpu::Instance::new(desc).enumerate_adapters(api).await);
    }
    adapters
}

/// The wgpu adapter the runtime reports in `summary` (same API, same name), for baselines that
/// must share the runtime's hardware. Only the runtime's API is enumerated.
pub async fn adapter_like(runtime_adapter: &AdapterSummary) -> Option<wgpu::Adapter> {
    let api = match runtime_adapter.backend.as_str() {
        "vulkan" => wgpu::Backends::VULKAN,
        "metal" => wgpu::Backends::METAL,
        "dx12" => wgpu::Backends::DX12,
        "gl" => wgpu::Backends::GL,
        _ => return None,
    };
    enumerate_adapters(api).await.into_iter().find(|adapter| {
        let info = adapter.get_info();
        info.name == runtime_adapter.name
            && format!("{:?}", info.backend).eq_ignore_ascii_case(&runtime_adapter.backend)
    })
}

/// Whether the runtime runs kernels on host handlers rather than an adapter.
pub fn runs_on_host(adapter: &AdapterSummary) -> bool {
    adapter.backend.eq_ignore_ascii_case("cpu")
}

/// `name (backend, device type, driver ...)`, the driver left out where the adapter reports
/// none (GL drivers often do not).
pub fn adapter_line(adapter: &AdapterSummary) -> String {
    let driver = match adapter.driver.as_str() {
        "" => String::new(),
        driver => format!(", driver {driver}"),
    };
    format!("{} ({}, {}{driver})", adapter.name, adapter.backend, adapter.device_type)
}

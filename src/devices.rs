//! Several devices in one runtime: which devices to open ([`DeviceSpec`]), how a kernel is
//! placed on one at launch ([`LoadBalancing`], [`DeviceRequirements`]) and what the runtime
//! reports about them ([`DeviceInfo`], [`Topology`]).
//!
//! Each device has its own tick loop: one tick still submits every kernel of that device at once,
//! and devices tick side by side. Connected kernels on one device pass answers ring to ring on the
//! GPU; across devices the answers are relayed through the host. Losing one device fails and
//! recovers only the kernels placed on it. [`Runtime::migrate`](crate::Runtime::migrate) moves a
//! live kernel to another device.

use std::fmt;

use serde::Serialize;

pub use crate::backend::PowerPreference;
use crate::backend::{AdapterSummary, BackendChoice};
use crate::error::Error;
use crate::memory::DeviceMemoryLimits;

/// A device of a runtime: its index among the devices the runtime opened, in the order of
/// [`RuntimeOptions::devices`](crate::RuntimeOptions::devices) (0 when there is one). In
/// JavaScript a plain number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct DeviceId(pub u32);

impl DeviceId {
    /// The device's position in the runtime's list.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One device for the runtime to open. In JavaScript `{ backend, index, powerPreference }`, each
/// optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct DeviceSpec {
    /// Which adapters may be used.
    pub backend: BackendChoice,
    /// Which adapter among those wgpu lists for the backend (natively; a browser offers 0 only).
    /// Two specs with the same adapter open two devices on it.
    pub index: usize,
    /// Which adapter to prefer when asking for adapter 0.
    pub power_preference: PowerPreference,
}

impl DeviceSpec {
    /// A device on `backend`'s recommended adapter.
    pub fn new(backend: BackendChoice) -> Self {
        DeviceSpec { backend, ..Default::default() }
    }

    /// Adapter `index` among those wgpu lists for the backend.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_index(mut self, index: usize) -> Self {
        self.index = index;
        self
    }

    /// Which adapter to prefer.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_power_preference(mut self, preference: PowerPreference) -> Self {
        self.power_preference = preference;
        self
    }
}

/// How [`Runtime::launch`](crate::Runtime::launch) places a kernel that names no device (the
/// seed's `LoadBalancing`). In JavaScript `"leastLoaded"` or `"roundRobin"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum LoadBalancing {
    /// The device with the least queued work, then the least memory in use (the default).
    #[default]
    LeastLoaded,
    /// Each launch on the next device in turn.
    RoundRobin,
}

/// What a kernel needs of its device (the seed's `select_device(requirements)`); devices that do
/// not meet it are never chosen. In JavaScript `{ backend, minBufferBytes, minBindingBytes }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct DeviceRequirements {
    /// Only devices of this backend (`None`: any device; `Auto`: any GPU).
    pub backend: Option<BackendChoice>,
    /// Only devices whose largest buffer is at least this many bytes.
    pub min_buffer_bytes: Option<u64>,
    /// Only devices whose largest storage binding (one ring or state array) is at least this.
    pub min_binding_bytes: Option<u64>,
}

impl DeviceRequirements {
    /// Only devices of `backend`.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_backend(mut self, backend: BackendChoice) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Only devices whose largest storage binding is at least `bytes`.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_min_binding_bytes(mut self, bytes: u64) -> Self {
        self.min_binding_bytes = Some(bytes);
        self
    }

    /// Only devices whose largest buffer is at least `bytes`.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_min_buffer_bytes(mut self, bytes: u64) -> Self {
        self.min_buffer_bytes = Some(bytes);
        self
    }

    /// Whether a device with this `backend` (as [`AdapterSummary::backend`] names it) and
    /// `limits` meets the requirements.
    pub(crate) fn met_by(&self, backend: &str, limits: &DeviceMemoryLimits) -> bool {
        let backend_ok = match self.backend {
            None => true,
            Some(BackendChoice::Auto) => backend != "cpu",
            Some(choice) => backend_name(choice).is_some_and(|name| name == backend),
        };
        // The cpu backend binds no buffers: no binding or buffer size is beyond it.
        let at_least = |have: Option<u64>, want: Option<u64>| match (have, want) {
            (_, None) => true,
            (Some(have), Some(want)) => have >= want,
            (None, Some(_)) => backend == "cpu",
        };
        backend_ok
            && at_least(limits.max_buffer_bytes, self.min_buffer_bytes)
            && at_least(limits.max_binding_bytes, self.min_binding_bytes)
    }
}

/// How an [`AdapterSummary`] spells the backend `choice` (`None` for `Auto`).
fn backend_name(choice: BackendChoice) -> Option<&'static str> {
    Some(match choice {
        BackendChoice::Auto => return None,
        BackendChoice::Vulkan => "vulkan",
        BackendChoice::Gl => "gl",
        BackendChoice::Metal => "metal",
        BackendChoice::Dx12 => "dx12",
        BackendChoice::WebGpu => "browserwebgpu",
        BackendChoice::Cpu => "cpu",
    })
}

/// What placement weighs for one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Load {
    /// Whether it can take a kernel now (not lost, and it meets the requirements).
    pub eligible: bool,
    /// Messages queued or in flight on its kernels.
    pub queued: u64,
    /// Device bytes held by the runtime on it.
    pub bytes: u64,
    /// Kernels placed on it.
    pub kernels: usize,
}

/// The device `policy` picks among `loads` (indexed by device), with `turn` the round-robin
/// counter; `None` when no device is eligible.
pub(crate) fn choose(loads: &[Load], policy: LoadBalancing, turn: usize) -> Option<DeviceId> {
    let eligible = loads.iter().enumerate().filter(|(_, load)| load.eligible);
    let index = match policy {
        LoadBalancing::RoundRobin => {
            let count = eligible.clone().count();
            if count == 0 {
                return None;
            }
            eligible.clone().nth(turn % count).map(|(i, _)| i)
        }
        // Ties go to the device with fewer kernels, then the lower index.
        LoadBalancing::LeastLoaded => eligible.min_by_key(|(i, l)| (l.queued, l.bytes, l.kernels, *i)).map(|(i, _)| i),
    }?;
    Some(DeviceId(index as u32))
}

/// `OutOfRange` (a `RangeError` in JavaScript) saying that `which` ("device 1, which the
/// launch names, does not meet", "no device of the runtime's 2 meets") `requirements`, worded as
/// what was asked for (not as the struct's fields, which JavaScript names otherwise).
pub(crate) fn not_met(requirements: &DeviceRequirements, which: &str) -> Error {
    let DeviceRequirements { backend, min_buffer_bytes, min_binding_bytes } = requirements;
    // Pushed, not collected: each `collect` is a copy of `Vec`'s `from_iter` in the wasm.
    let mut wanted = Vec::new();
    if let Some(backend) = backend {
        wanted.push(format!("backend \"{}\"", format!("{backend:?}").to_ascii_lowercase()));
    }
    if let Some(bytes) = min_buffer_bytes {
        wanted.push(format!("a buffer of at least {bytes} bytes"));
    }
    if let Some(bytes) = min_binding_bytes {
        wanted.push(format!("a storage binding of at least {bytes} bytes"));
    }
    Error::OutOfRange(format!("{which} the requirements ({})", crate::error::joined(&wanted, ", ")))
}

/// One device as [`Runtime::gpu_topology`](crate::Runtime::gpu_topology) reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DeviceInfo {
    /// Its id (what `LaunchOptions::device` and `migrate` take).
    pub id: DeviceId,
    /// The adapter it was opened on: backend, name, driver, device type.
    pub adapter: AdapterSummary,
    /// Whether it is the application's own device, handed as a
    /// [`SharedDevice`](crate::SharedDevice) (the one handed last by
    /// [`replace_shared_device`](crate::Runtime::replace_shared_device)): the runtime never
    /// destroys it, and only the application brings it back after a loss. Never on the web,
    /// where none can be handed (and JavaScript's topology has no such key).
    #[cfg_attr(target_arch = "wasm32", serde(skip))]
    pub shared: bool,
    /// The limits that bound ring kernels (largest buffer and storage binding).
    pub limits: DeviceMemoryLimits,
    /// Device bytes this runtime holds there.
    pub memory_bytes: u64,
    /// Ids of the kernels placed there, sorted.
    pub kernels: Vec<String>,
    /// Messages processed there since the runtime began, by whichever kernels ran there (it
    /// only grows: a kernel that migrates away or is removed leaves its count behind).
    pub messages_processed: u64,
    /// Messages queued or in flight on the kernels placed there.
    pub queued: u64,
    /// Why it is lost, while it is.
    pub lost: Option<String>,
    /// Times it was lost, and recovered.
    pub losses: u64,
    /// Recoveries that replaced it.
    pub recoveries: u64,
    /// Ticks that did work on it.
    pub ticks: u64,
}

/// Every device of a runtime (the seed's `gpu_topology()`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Topology {
    /// The devices, by id.
    pub devices: Vec<DeviceInfo>,
}

impl Topology {
    /// The devices, by id.
    pub fn devices(&self) -> impl Iterator<Item = &DeviceInfo> {
        self.devices.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(queued: u64, bytes: u64, kernels: usize) -> Load {
        Load { eligible: true, queued, bytes, kernels }
    }

    #[test]
    fn least_loaded_weighs_queued_work_then_memory_then_kernels() {
        let loads = [load(10, 0, 0), load(2, 500, 3), load(2, 100, 9)];
        assert_eq!(choose(&loads, LoadBalancing::LeastLoaded, 0), Some(DeviceId(2)));
        let tied = [load(0, 0, 2), load(0, 0, 1)];
        assert_eq!(choose(&tied, LoadBalancing::LeastLoaded, 0), Some(DeviceId(1)));
    }

    #[test]
    fn round_robin_skips_devices_that_are_not_eligible() {
        let mut loads = [load(0, 0, 0), load(0, 0, 0), load(0, 0, 0)];
        loads[1].eligible = false;
        let picks: Vec<_> = (0..4).map(|turn| choose(&loads, LoadBalancing::RoundRobin, turn)).collect();
        assert_eq!(picks, [Some(DeviceId(0)), Some(DeviceId(2)), Some(DeviceId(0)), Some(DeviceId(2))]);
        loads.iter_mut().for_each(|l| l.eligible = false);
        assert_eq!(choose(&loads, LoadBalancing::RoundRobin, 0), None);
        assert_eq!(choose(&loads, LoadBalancing::LeastLoaded, 0), None);
    }

    #[test]
    fn requirements_filter_by_backend_and_limits() {
        let limits = DeviceMemoryLimits { max_buffer_bytes: Some(1 << 28), max_binding_bytes: Some(1 << 27) };
        assert!(DeviceRequirements::default().met_by("vulkan", &limits));
        assert!(DeviceRequirements::default().met_by("cpu", &DeviceMemoryLimits::default()));
        let any_gpu = DeviceRequirements::default().with_backend(BackendChoice::Auto);
        assert!(!any_gpu.met_by("cpu", &DeviceMemoryLimits::default()));
        assert!(DeviceRequirements::default().with_backend(BackendChoice::Cpu).met_by("cpu", &Default::default()));
        assert!(!DeviceRequirements::default().with_backend(BackendChoice::Gl).met_by("vulkan", &limits));
        assert!(DeviceRequirements::default().with_min_binding_bytes(1 << 27).met_by("vulkan", &limits));
        assert!(!DeviceRequirements::default().with_min_binding_bytes(1 << 28).met_by("vulkan", &limits));
        // The cpu backend binds nothing: any size is within it (the README's placement example).
        assert!(DeviceRequirements::default().with_min_binding_bytes(1 << 20).met_by("cpu", &Default::default()));
        assert!(!DeviceRequirements::default().with_min_binding_bytes(1 << 20).met_by("vulkan", &Default::default()));
    }
}

//! `RuntimeBuilder`: RingKernel's way to make a runtime, with presets for the usual settings.
//! In JavaScript, `RingKernelRuntime.create({ preset: "production", ...overrides })`.
//!
//! | preset | `debug` | `profiling` (latency telemetry) | `auto_recover` | default queue | tracing | circuit breakers | watchdog heartbeat | degradation manager |
//! |---|---|---|---|---|---|---|---|---|
//! | [`new`](RuntimeBuilder::new) (= `RuntimeOptions::default()`) | off | on | off | 4096 | off | off | 30 s | off |
//! | [`development`](RuntimeBuilder::development) | on | on | off | 1024 | on | off | 5 s | off |
//! | [`production`](RuntimeBuilder::production) | off | on | on | 4096 | off | on (defaults) | 30 s | on (defaults) |
//! | [`high_performance`](RuntimeBuilder::high_performance) | off | off | on | 65536 | off | off | 30 s | off |
//!
//! Health ([`Runtime::health`]) is there in every preset: it judges what the runtime already
//! counts, and costs nothing until asked. The watchdog judges at each
//! [`scan_stale_kernels`](crate::KernelWatchdog::scan_stale_kernels) and each health check.

use super::{Runtime, RuntimeOptions};
use crate::backend::BackendChoice;
use crate::circuit::CircuitBreakerConfig;
use crate::degradation::DegradationOptions;
use crate::devices::{DeviceSpec, LoadBalancing};
use crate::error::Result;
use crate::health::HealthThresholds;
use crate::shared_device::SharedDevice;
use crate::watchdog::WatchdogConfig;

/// Builds a [`Runtime`]: `RuntimeBuilder::production().backend(BackendChoice::Vulkan).build().await`.
///
/// ```no_run
/// # async fn demo() -> ringkernel_web::Result<()> {
/// use ringkernel_web::{BackendChoice, RuntimeBuilder};
///
/// let runtime = RuntimeBuilder::production().backend(BackendChoice::Auto).default_queue_size(1024).build().await?;
/// println!("{}", runtime.adapter().name);
/// runtime.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use = "a builder does nothing until `build` is awaited"]
pub struct RuntimeBuilder {
    options: RuntimeOptions,
}

impl RuntimeBuilder {
    /// The defaults of [`RuntimeOptions`].
    pub fn new() -> Self {
        Self::default()
    }

    /// For developing kernels, loud: debug labels and validation on, latency telemetry and
    /// tracing spans on, small queues (mistakes show up sooner), a 5 s watchdog heartbeat, no
    /// automatic recovery (a lost device stays visible) and no circuit breakers or degradation
    /// (failures reach the caller as they are).
    pub fn development() -> Self {
        Self::new()
            .debug(true)
            .profiling(true)
            .tracing(true)
            .default_queue_size(1024)
            .auto_recover(false)
            .watchdog(WatchdogConfig::default().with_heartbeat_timeout(std::time::Duration::from_secs(5)))
    }

    /// For serving: no validation, telemetry on for the operators, automatic recovery from a
    /// lost device, a circuit breaker per kernel and the degradation manager, each with its
    /// documented defaults ([`CircuitBreakerConfig::default`], [`DegradationOptions::default`]).
    pub fn production() -> Self {
        Self::new()
            .debug(false)
            .profiling(true)
            .auto_recover(true)
            .circuit_breaker(CircuitBreakerConfig::default())
            .degradation(DegradationOptions::default())
    }

    /// For throughput: no validation, no latency histograms, deep queues (bigger batches per
    /// tick), automatic recovery, and none of the extras (no tracing, breakers or degradation).
    pub fn high_performance() -> Self {
        Self::new().debug(false).profiling(false).default_queue_size(1 << 16).auto_recover(true)
    }

    /// The preset named as JavaScript names it (`"development"`, `"production"`,
    /// `"highPerformance"`), or `None`.
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "development" => Some(Self::development()),
            "production" => Some(Self::production()),
            "highPerformance" => Some(Self::high_performance()),
            _ => None,
        }
    }

    /// Which adapters may be used.
    pub fn backend(self, backend: BackendChoice) -> Self {
        RuntimeBuilder { options: self.options.with_backend(backend) }
    }

    /// Which adapter among those wgpu lists for the backend (0: the one it recommends).
    pub fn device(self, index: usize) -> Self {
        RuntimeBuilder { options: self.options.with_device_index(index) }
    }

    /// Debug labels and the graphics API's validation layers where installed.
    pub fn debug(self, enable: bool) -> Self {
        RuntimeBuilder { options: self.options.with_debug(enable) }
    }

    /// Latency histograms and per-kernel telemetry (counters are kept either way).
    pub fn profiling(self, enable: bool) -> Self {
        RuntimeBuilder { options: self.options.with_telemetry(enable) }
    }

    /// Recover from a lost device without waiting for `recover`.
    pub fn auto_recover(self, enable: bool) -> Self {
        RuntimeBuilder { options: self.options.with_auto_recover(enable) }
    }

    /// The queue size of kernels launched without their own.
    pub fn default_queue_size(self, messages: usize) -> Self {
        RuntimeBuilder { options: self.options.with_default_queue_size(messages) }
    }

    /// Bounds how many messages one tick takes from all input queues together (kernels of
    /// higher priority first).
    pub fn max_messages_per_tick(self, messages: usize) -> Self {
        RuntimeBuilder { options: self.options.with_max_messages_per_tick(messages) }
    }

    /// Tracing spans around launches, ticks and recoveries (`tracing` natively, User Timing
    /// measures in the browser).
    pub fn tracing(self, enable: bool) -> Self {
        RuntimeBuilder { options: self.options.with_tracing(enable) }
    }

    /// A circuit breaker per kernel (off unless set).
    pub fn circuit_breaker(self, config: CircuitBreakerConfig) -> Self {
        RuntimeBuilder { options: self.options.with_circuit_breaker(config) }
    }

    /// The kernel watchdog's heartbeat timeout and action.
    pub fn watchdog(self, config: WatchdogConfig) -> Self {
        RuntimeBuilder { options: self.options.with_watchdog(config) }
    }

    /// The device bytes memory pressure is measured against (see [`crate::memory`]).
    pub fn memory_budget(self, bytes: u64) -> Self {
        RuntimeBuilder { options: self.options.with_memory_budget(bytes) }
    }

    /// Turns the degradation manager on (see [`crate::degradation`]).
    pub fn degradation(self, options: DegradationOptions) -> Self {
        RuntimeBuilder { options: self.options.with_degradation(options) }
    }

    /// Where [`Runtime::health`] draws its lines.
    pub fn health_thresholds(self, thresholds: HealthThresholds) -> Self {
        RuntimeBuilder { options: self.options.with_health_thresholds(thresholds) }
    }

    /// Opens these devices, each with its own tick loop, instead of one (see [`crate::devices`]).
    pub fn devices(self, devices: impl IntoIterator<Item = DeviceSpec>) -> Self {
        RuntimeBuilder { options: self.options.with_devices(devices) }
    }

    /// Runs kernels on the application's own wgpu device (see [`SharedDevice`]), after the
    /// devices of [`devices`](Self::devices); alone, when there are none (the runtime then
    /// opens no device of its own). Call it again for several.
    pub fn shared_device(self, device: SharedDevice) -> Self {
        RuntimeBuilder { options: self.options.with_shared_device(device) }
    }

    /// Where launches that name no device go.
    pub fn load_balancing(self, policy: LoadBalancing) -> Self {
        RuntimeBuilder { options: self.options.with_load_balancing(policy) }
    }

    /// The options this builder has gathered.
    pub fn options(&self) -> &RuntimeOptions {
        &self.options
    }

    /// Opens the device and starts the runtime (see [`Runtime::new`]).
    ///
    /// # Errors
    /// As [`Runtime::new`]'s: `BackendUnavailable` without an adapter (or for a shared device
    /// that cannot run kernels), `OutOfRange` or `InvalidArgument` for options it refuses.
    pub async fn build(self) -> Result<Runtime> {
        Runtime::new(self.options).await
    }
}

impl RuntimeOptions {
    /// A builder starting from these options.
    pub fn builder(self) -> RuntimeBuilder {
        RuntimeBuilder { options: self }
    }
}

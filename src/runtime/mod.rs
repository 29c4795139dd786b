//! The runtime: every public operation on kernels. GPU work happens only in the tick
//! ([`crate::tick`]); operations here stage data on the host, change states through the
//! lifecycle table, and wake the tick.
//!
//! - this file: options, creating and disposing a runtime;
//! - `control`: the lifecycle (launch → activate ⇄ deactivate → terminate), `managed_kernel`,
//!   state arrays, device recovery;
//! - `messaging`: `send`, `send_batch`, `call`, `receive`, `receive_batch`;
//! - `envelopes`: `send_envelope`, `receive_envelope`, `current_timestamp`;
//! - `queries`: state, ids, telemetry, `summary`, `metrics_text`;
//! - `routing`: `connect` and `disconnect`;
//! - `resilience`: per-kernel circuit breakers and the kernel watchdog.
//! - `dashboards`: the memory dashboard and the degradation manager's view.
//! - `placement`: several devices: where a launch goes, the topology, and live migration.
//! - `health`: the vitals `Runtime::health` judges; `shutdown`: `drain` and the shutdown report.
//! - `handle`: typed [`KernelHandle`]s; `builder`: `RuntimeBuilder` and its presets.
//!
//! Operations that wait (`send` on a full queue, `receive`, `call`, `terminate`) await an event
//! the tick fires, raced against a timer; nothing blocks a thread on the web.

pub(crate) mod builder;
mod control;
pub(crate) mod dashboards;
mod device_events;
mod envelopes;
pub(crate) mod handle;
pub(crate) mod health;
pub(crate) mod interop;
mod messaging;
pub(crate) mod placement;
pub(crate) mod queries;
pub(crate) mod resilience;
mod routing;
mod shutdown;
mod state;

#[cfg_attr(not(target_arch = "wasm32"), allow(unused_imports))]
pub(crate) use messaging::{batch_bytes, MAX_BATCH_BYTES};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_listener::Event;

use crate::backend::{AdapterSummary, BackendChoice, BufferStats, Device, DeviceRequest, DeviceSource};
use crate::circuit::CircuitBreakerConfig;
use crate::degradation::{DegradationOptions, Degrader};
use crate::devices::{DeviceId, DeviceRequirements, DeviceSpec, LoadBalancing};
use crate::error::{Error, Result};
use crate::health::HealthThresholds;
use crate::kernel::{DispatchShape, StateValues};
use crate::lifecycle::{KernelMode, LifecycleState};
use crate::platform::{self, option_name};
use crate::shared_device::SharedDevice;
use crate::table::{DeviceStatus, Failed, Kernel, Settings, Shared, Table, TableGuard};
use crate::telemetry::ShutdownReport;
use crate::watchdog::WatchdogConfig;

/// Options for [`Runtime::new`]. In JavaScript, the same fields in camelCase
/// (`RingKernelRuntime.create({ enableTelemetry, defaultQueueSize, backend, autoRecover,
/// circuitBreaker, watchdog })`);
/// missing ones take their defaults and unknown ones are refused.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct RuntimeOptions {
    /// Record latency and report [`Runtime::telemetry`]; counters for `summary` are kept anyway.
    pub enable_telemetry: bool,
    /// Queue size for kernels launched without their own.
    pub default_queue_size: usize,
    /// Which adapters may be used ([`BackendChoice::Auto`]: any GPU, never the CPU).
    pub backend: BackendChoice,
    /// Recover from a lost device without waiting for [`Runtime::recover`]: the runtime opens a
    /// new device and relaunches the failed kernels itself (retrying a few times).
    pub auto_recover: bool,
    /// Which adapter, among those wgpu lists for the backend (0: the one it recommends; a
    /// browser offers only 0).
    pub device_index: usize,
    /// Several devices, each with its own tick loop (see [`crate::devices`]): empty (the
    /// default) opens one, from `backend` and `device_index`. A device whose backend is
    /// [`BackendChoice::Auto`] takes `backend`'s choice. Kernels are placed on them at
    /// launch (`LaunchOptions::device`, or `load_balancing`) and can move with
    /// [`Runtime::migrate`].
    pub devices: Vec<DeviceSpec>,
    /// The application's own wgpu devices to run kernels on too (Rust only; see
    /// [`SharedDevice`]): after those of `devices`, with the ids that follow theirs. With
    /// shared devices and no `devices`, the runtime opens no device of its own.
    #[serde(skip)]
    pub shared_devices: Vec<SharedDevice>,
    /// Where launches that name no device go (the seed's `LoadBalancing`).
    pub load_balancing: LoadBalancing,
    /// Debug labels and the graphics API's validation layers where installed (slower).
    pub debug: bool,
    /// Most messages one tick takes from all input queues together (`None`: no bound; at least
    /// 1 otherwise, since a tick that takes none would never process anything). When a
    /// tick is bounded, kernels of higher `LaunchOptions::priority` take theirs first; a kernel
    /// fed by a connected kernel drains its queue regardless.
    pub max_messages_per_tick: Option<usize>,
    /// Tracing spans around launches, ticks (plan, execute, deliver) and recoveries: the
    /// `tracing` crate's natively, User Timing measures (`performance.measure`) in the browser,
    /// where DevTools' performance panel shows them. Off by default; free when off.
    pub tracing: bool,
    /// Where [`Runtime::health`] draws its lines (queue fill, error rates, memory pressure).
    pub health: HealthThresholds,
    /// A circuit breaker per kernel (see [`Runtime::circuit_breaker`]); `None` (the default):
    /// none, nothing is ever refused by one.
    pub circuit_breaker: Option<CircuitBreakerConfig>,
    /// The kernel watchdog's heartbeat timeout and action (see [`Runtime::kernel_watchdog`]).
    pub watchdog: WatchdogConfig,
    /// Device bytes the runtime may hold before memory pressure reads 1 (see
    /// [`crate::memory`]): WebGPU reports no device total, so this is the denominator. `None`
    /// (the default): pressure reads 0. At least 1 (`OutOfRange` at [`Runtime::new`]).
    pub memory_budget: Option<u64>,
    /// The degradation manager and its settings (see [`crate::degradation`]); `None` (the
    /// default): off, every kernel served alike whatever the load.
    pub degradation: Option<DegradationOptions>,
}

impl RuntimeOptions {
    /// The device bytes memory pressure is measured against: at least 1 (a runtime made with 0
    /// is refused, as its pressure would read 1 with nothing held).
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_memory_budget(mut self, bytes: u64) -> Self {
        self.memory_budget = Some(bytes);
        self
    }

    /// Turns the degradation manager on with `options`.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_degradation(mut self, options: DegradationOptions) -> Self {
        self.degradation = Some(options);
        self
    }

    /// Which adapters may be used.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_backend(mut self, backend: BackendChoice) -> Self {
        self.backend = backend;
        self
    }

    /// Latency histograms and per-kernel telemetry on or off.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_telemetry(mut self, enable: bool) -> Self {
        self.enable_telemetry = enable;
        self
    }

    /// The queue size of kernels launched without their own.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_default_queue_size(mut self, messages: usize) -> Self {
        self.default_queue_size = messages;
        self
    }

    /// Recover from a lost device without waiting for `recover`.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_auto_recover(mut self, enable: bool) -> Self {
        self.auto_recover = enable;
        self
    }

    /// Which adapter among those wgpu lists for the backend.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_device_index(mut self, index: usize) -> Self {
        self.device_index = index;
        self
    }

    /// Opens these devices (each with its own tick loop) instead of one; an empty list keeps
    /// the one device of `backend` and `device_index`.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_devices(mut self, devices: impl IntoIterator<Item = DeviceSpec>) -> Self {
        self.devices = devices.into_iter().collect();
        self
    }

    /// Runs kernels on the application's own wgpu device too (see [`SharedDevice`]), after
    /// the devices of `devices` (alone, when there are none). Each device once: the same one
    /// twice is refused when the runtime is built (several runtimes may share it).
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_shared_device(mut self, device: SharedDevice) -> Self {
        self.shared_devices.push(device);
        self
    }

    /// Where launches that name no device go.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_load_balancing(mut self, policy: LoadBalancing) -> Self {
        self.load_balancing = policy;
        self
    }

    /// Where the runtime's devices come from: those it opens (`devices`, or the one `backend`
    /// and `device_index` name unless the application shares devices of its own), then the
    /// application's.
    fn device_sources(&self) -> Vec<DeviceSource> {
        let opened = match (self.devices.is_empty(), self.shared_devices.is_empty()) {
            (true, false) => Vec::new(),
            _ => self.device_requests(),
        };
        // Pushed, not collected: each `collect` is a copy of `Vec`'s `from_iter` in the wasm.
        let mut sources = Vec::new();
        for request in opened {
            sources.push(DeviceSource::Open(request));
        }
        for device in &self.shared_devices {
            sources.push(DeviceSource::Shared(device.clone()));
        }
        sources
    }

    /// The devices the runtime opens: `devices`, or the one `backend` and `device_index` name.
    fn device_requests(&self) -> Vec<DeviceRequest> {
        let request = |spec: &DeviceSpec| DeviceRequest {
            backend: match spec.backend {
                BackendChoice::Auto => self.backend,
                chosen => chosen,
            },
            index: spec.index,
            power: spec.power_preference,
            debug: self.debug,
        };
        if self.devices.is_empty() {
            return vec![request(&DeviceSpec::new(self.backend).with_index(self.device_index))];
        }
        let mut requests = Vec::new();
        for spec in &self.devices {
            requests.push(request(spec));
        }
        requests
    }

    /// Debug labels and validation layers on or off.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_debug(mut self, enable: bool) -> Self {
        self.debug = enable;
        self
    }

    /// Bounds how many messages one tick takes from all input queues together.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_max_messages_per_tick(mut self, messages: usize) -> Self {
        self.max_messages_per_tick = Some(messages);
        self
    }

    /// Where [`Runtime::health`] draws its lines.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_health_thresholds(mut self, thresholds: HealthThresholds) -> Self {
        self.health = thresholds;
        self
    }

    /// Tracing spans (natively `tracing`'s, in the browser User Timing measures) on or off.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_tracing(mut self, enable: bool) -> Self {
        self.tracing = enable;
        self
    }

    /// A circuit breaker per kernel, configured so.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_circuit_breaker(mut self, config: CircuitBreakerConfig) -> Self {
        self.circuit_breaker = Some(config);
        self
    }

    /// The kernel watchdog's settings.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_watchdog(mut self, config: WatchdogConfig) -> Self {
        self.watchdog = config;
        self
    }
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            enable_telemetry: true,
            default_queue_size: 4096,
            backend: BackendChoice::Auto,
            auto_recover: false,
            device_index: 0,
            devices: Vec::new(),
            shared_devices: Vec::new(),
            load_balancing: LoadBalancing::default(),
            debug: false,
            max_messages_per_tick: None,
            tracing: false,
            health: HealthThresholds::default(),
            circuit_breaker: None,
            watchdog: WatchdogConfig::default(),
            memory_budget: None,
            degradation: None,
        }
    }
}

/// Options for [`Runtime::launch`], built from [`LaunchOptions::default`] with the `with_*`
/// methods (RingKernel's builders). In JavaScript, `{ queueSize, inputQueueSize,
/// outputQueueSize, mode, maxBatch, autoActivate, workgroupSize, maxWorkgroups, sharedMemory,
/// unfused, priority, latencyBudgetMs, checkpointIntervalMs, initialState, device, requirements }`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct LaunchOptions {
    /// Bound of the host input queue and of the output queue, in messages (and the GPU ring's
    /// minimum slot count). Default: the runtime's `default_queue_size`.
    pub queue_size: Option<usize>,
    /// Bound of the input queue alone (and the ring's minimum slot count), over `queue_size`.
    pub input_queue_size: Option<usize>,
    /// Bound of the output queue alone, over `queue_size`. A kernel whose answers come here
    /// (not a next stage's) drains past it while it terminates, so its terminate leaves nothing
    /// unprocessed for want of a receiver.
    pub output_queue_size: Option<usize>,
    /// The seeds' execution mode (see [`KernelMode`]: both are scheduled alike).
    pub mode: KernelMode,
    /// Most messages one dispatch of this kernel handles, 1 to its input queue size (the
    /// default; `OutOfRange` beyond, naming that size). Lower it for handlers that run long per
    /// message, so each GPU submission stays short.
    pub max_batch: Option<usize>,
    /// Activate the kernel as soon as it is launched. Off by default: as in PyDotCompute, a
    /// launched kernel waits for `activate` (RingKernel's default is on).
    pub auto_activate: bool,
    /// Invocations per workgroup (RingKernel's block size), over the definition's
    /// `workgroup_size`: 1 to the device's limit (`OutOfRange` beyond). The cpu backend runs
    /// no workgroups but takes only what every WebGPU device runs, 1 to 256.
    #[serde(rename = "workgroupSize")]
    pub block_size: Option<u32>,
    /// Most workgroups one dispatch may use (RingKernel's grid size); with more messages than
    /// invocations, each invocation takes several. At least 1.
    #[serde(rename = "maxWorkgroups")]
    pub grid_size: Option<u32>,
    /// Bytes of workgroup memory the handler can use, as `workgroup_memory: array<u32, N>`:
    /// up to the device's limit (on the cpu backend, 16384, what every WebGPU device has).
    #[serde(rename = "sharedMemory")]
    pub shared_memory: u32,
    /// Keeps the kernel out of fused pipelines and grouped dispatches: connected to others, it
    /// still runs a dispatch of its own with its answers copied ring to ring (see
    /// [`Runtime::connect`]), and it never shares a dispatch with other kernels of its handler.
    /// Off by default. GPU backends only.
    pub unfused: bool,
    /// When the runtime bounds a tick (`RuntimeOptions::max_messages_per_tick`), kernels of
    /// higher priority take their messages first. Default 0. Under load, the degradation
    /// manager defers and refuses kernels below its `protected_priority` first.
    pub priority: i32,
    /// The latency p99 this kernel should keep (the degradation manager's latency signal; at
    /// `severe`, a kernel over it takes smaller batches). In JavaScript `latencyBudgetMs`.
    #[serde(rename = "latencyBudgetMs", deserialize_with = "crate::degradation::optional_millis")]
    pub latency_budget: Option<Duration>,
    /// How often a GPU kernel's `state` is copied back as the checkpoint that recovery
    /// restores after a lost device. `None` (the default): with every tick, so a recovered
    /// kernel's state reflects each answered message once. `Some(interval)`: with the first
    /// tick once `interval` has passed since the last copy or the launch (`Duration::MAX`:
    /// never), which spares a large state its copy on every tick; recovered, the kernel then
    /// starts again from its last checkpoint (its zeroed state as launched, if none), without
    /// what messages answered since did to it. A migration between working devices, and the
    /// terminate that ends the kernel, read the state itself, so a move and the final state stay
    /// exact (the terminate waits for its read within its own timeout, and one still under way
    /// then finishes unless the device is lost first; a shutdown reads none).
    /// In JavaScript `checkpointIntervalMs` (`Infinity`: never).
    #[serde(rename = "checkpointIntervalMs", deserialize_with = "checkpoint_millis")]
    pub checkpoint_interval: Option<Duration>,
    /// Values the kernel's `state` array starts with, from its first element on (the rest is
    /// zeroed), instead of all zeros: of the state's scalar, and no more than its length (see
    /// [`StateValues`]). Also what recovery restores before the first checkpoint. In
    /// JavaScript `initialState`, a `Uint32Array`, `Int32Array` or `Float32Array`.
    pub initial_state: Option<StateValues>,
    /// The device to run on (`None`: the runtime's `load_balancing` picks one that meets
    /// `requirements`).
    pub device: Option<DeviceId>,
    /// What the kernel needs of its device when the runtime picks one.
    pub requirements: DeviceRequirements,
}

impl LaunchOptions {
    /// The same bound for the input and the output queue, in messages.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_queue_capacity(mut self, messages: usize) -> Self {
        self.queue_size = Some(messages);
        self
    }

    /// The input queue's bound (and the ring's minimum slot count), in messages.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_input_queue_capacity(mut self, messages: usize) -> Self {
        self.input_queue_size = Some(messages);
        self
    }

    /// The output queue's bound, in messages (lifted while the kernel drains to terminate: see
    /// [`output_queue_size`](Self::output_queue_size)).
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_output_queue_capacity(mut self, messages: usize) -> Self {
        self.output_queue_size = Some(messages);
        self
    }

    /// The seeds' execution mode, kept and reported (both are scheduled alike: see [`KernelMode`]).
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_mode(mut self, mode: KernelMode) -> Self {
        self.mode = mode;
        self
    }

    /// Most messages one dispatch handles.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_max_batch(mut self, messages: usize) -> Self {
        self.max_batch = Some(messages);
        self
    }

    /// Activate the kernel as soon as it is launched.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_auto_activate(mut self) -> Self {
        self.auto_activate = true;
        self
    }

    /// Leave the kernel `launched` until `activate` (the default).
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn without_auto_activate(mut self) -> Self {
        self.auto_activate = false;
        self
    }

    /// One workgroup per dispatch (RingKernel's `single_block`): its invocations take every
    /// message in turn.
    pub fn single_block() -> Self {
        Self::default().with_grid_size(1)
    }

    /// `grid` workgroups of `block` invocations at most per dispatch (RingKernel's
    /// `multi_block`).
    pub fn multi_block(grid: u32, block: u32) -> Self {
        Self::default().with_grid_size(grid).with_block_size(block)
    }

    /// Most workgroups one dispatch may use.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_grid_size(mut self, workgroups: u32) -> Self {
        self.grid_size = Some(workgroups);
        self
    }

    /// Invocations per workgroup.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_block_size(mut self, invocations: u32) -> Self {
        self.block_size = Some(invocations);
        self
    }

    /// Bytes of workgroup memory the handler can use (`workgroup_memory: array<u32, N>`, so a
    /// count that is not a multiple of 4 is rounded up to whole words).
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_shared_memory(mut self, bytes: u32) -> Self {
        self.shared_memory = bytes;
        self
    }

    /// Keeps the kernel out of fused pipelines and grouped dispatches (it always runs a
    /// dispatch of its own).
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn unfused(mut self) -> Self {
        self.unfused = true;
        self
    }

    /// Priority in a bounded tick (higher first).
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// The latency p99 this kernel should keep.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_latency_budget(mut self, budget: Duration) -> Self {
        self.latency_budget = Some(budget);
        self
    }

    /// Copies the kernel's state back as its checkpoint at most once per `interval` rather than
    /// with every tick (see [`checkpoint_interval`](Self::checkpoint_interval)).
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_checkpoint_interval(mut self, interval: Duration) -> Self {
        self.checkpoint_interval = Some(interval);
        self
    }

    /// Starts the kernel's `state` array with `values` instead of zeros (see
    /// [`initial_state`](Self::initial_state)).
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_initial_state(mut self, values: impl Into<StateValues>) -> Self {
        self.initial_state = Some(values.into());
        self
    }

    /// Runs the kernel on `device`.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn on_device(mut self, device: DeviceId) -> Self {
        self.device = Some(device);
        self
    }

    /// What the kernel needs of the device the runtime picks for it.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_requirements(mut self, requirements: DeviceRequirements) -> Self {
        self.requirements = requirements;
        self
    }

    /// The GPU dispatch these options ask for.
    pub(crate) fn dispatch_shape(&self) -> DispatchShape {
        DispatchShape {
            workgroup_size: self.block_size,
            max_workgroups: self.grid_size,
            workgroup_memory_bytes: self.shared_memory,
            unfused: self.unfused,
        }
    }
}

/// `checkpointIntervalMs` as serde reads it: milliseconds as the circuit breaker's are (0 to
/// 9e15, as the JavaScript reader takes them), or `Infinity` for never (`Duration::MAX`).
/// The first two entries of `shared` that are the same device and queue, if any: two runtime
/// devices on one wgpu device would tick it from two loops and each need its own replacement.
fn handed_twice(shared: &[SharedDevice]) -> Option<(usize, usize)> {
    (1..shared.len()).find_map(|again| Some((shared[..again].iter().position(|d| *d == shared[again])?, again)))
}

fn checkpoint_millis<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<Duration>, D::Error> {
    match <f64 as serde::Deserialize>::deserialize(deserializer)? {
        f64::INFINITY => Ok(Some(Duration::MAX)),
        ms => {
            crate::circuit::duration_from_millis(ms, "checkpointIntervalMs").map(Some).map_err(serde::de::Error::custom)
        }
    }
}

/// Largest queue a kernel may ask for: keeps a ring within WebGPU's default 128 MiB binding
/// for messages of up to 32 bytes.
pub const MAX_QUEUE_SIZE: usize = 1 << 22;

/// Most devices one runtime opens: more than any machine has GPUs, while each device has a tick
/// loop of its own (natively a thread), so a list built by mistake cannot open thousands.
pub const MAX_DEVICES: usize = 64;

/// How long `dispose`, `managed_kernel` and [`KernelHandle::terminate`](crate::KernelHandle::terminate)
/// give kernels to drain.
pub const DEFAULT_TERMINATE_TIMEOUT: Duration = Duration::from_secs(5);

/// Host runtime for ring kernels on one device or several. Cheap to clone: clones and [`KernelHandle`]s
/// share one runtime, which stops its tick loop and releases its device when the last of them
/// is dropped (or at once on [`dispose`](Self::dispose)). A host handler that keeps a clone or a
/// handle keeps its own runtime alive: dispose such a runtime explicitly.
///
/// ```no_run
/// # async fn demo() -> ringkernel_web::Result<()> {
/// use std::time::Duration;
/// use ringkernel_web::{LaunchOptions, Runtime, RuntimeOptions, Value};
///
/// let runtime = Runtime::new(RuntimeOptions::default()).await?;
/// runtime.launch("doubler", LaunchOptions::default().with_auto_activate()).await?;
/// // Every operation by id, with named values; a clone shares the runtime (for another task).
/// let clone = runtime.clone();
/// clone.send("doubler", &[("value", Value::from(21))], Some(Duration::from_secs(1))).await?;
/// let answer = runtime.receive("doubler", Some(Duration::from_secs(1))).await?;
/// assert_eq!(answer, vec![("result".to_string(), Value::I32(42))]);
/// let report = runtime.shutdown().await?; // drains every kernel, then stops
/// println!("{} messages processed", report.messages_processed);
/// # Ok(()) }
/// ```
///
/// # Threads and blocking
/// `Runtime`, [`KernelHandle`] and every operation's future are `Send` (and the handles
/// `Sync`), so a multi-threaded executor's tasks share them (`tokio::spawn` takes the futures).
/// Natively each device has a tick loop thread of its own, and no operation blocks its caller's
/// thread for long, with two exceptions to know in an async executor:
/// - a `receive` or `call` that has to wait for its answer runs the device's next tick on its
///   own thread when no tick is under way and at most 1,024 messages wait on that device (a
///   round trip then takes no thread hop), so its `poll` holds the executor's thread while the
///   device works, as a raw wgpu `submit` and `poll` would, past the operation's own timeout
///   if the tick runs longer; larger ticks are left to the loop, and so are all ticks after one
///   that ran longer than 2 ms (a slow handler holds a caller's thread for one tick at most),
///   until one is that short again;
/// - dropping the last clone (or handle) of a runtime joins its tick loop threads, which waits
///   for a tick under way to end. After [`dispose`](Self::dispose)`.await` (which waits for the
///   devices' work asynchronously) the loops have stopped and the join is short; otherwise drop
///   the last clone where blocking is fine (`spawn_blocking`).
///
/// `launch` compiles on a helper thread, and host handlers of the `cpu` backend run on the
/// tick loop's thread, never the caller's. On the web nothing blocks: the tick loop is a task
/// of the page's event loop.
///
/// [`KernelHandle`]: crate::KernelHandle
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
    inner: Arc<Inner>,
    /// For a [`KernelHandle`]'s operations: the launch they reach under its id (see
    /// [`Runtime::kernel_in`]); `None` for the runtime's own, which reach whatever is there.
    pin: Option<Pin>,
}

/// One launch of a kernel id: what a [`KernelHandle`] refers to.
#[derive(Clone)]
pub(crate) struct Pin {
    id: Arc<str>,
    instance: u64,
}

/// What the runtime's clones share besides the kernel table.
struct Inner {
    shared: Arc<Shared>,
    options: RuntimeOptions,
    /// One per device.
    tick_loops: Mutex<Vec<platform::TickLoopHandle>>,
    /// What the previous health check counted (see [`Runtime::health`]), and what the previous
    /// scrape did (see [`Runtime::metrics_text`]): each reports the error rates since its own
    /// previous call, so a scraper and a health probe never shorten each other's window.
    error_samples: Mutex<health::ErrorSamples>,
    scrape_samples: Mutex<health::ErrorSamples>,
}

impl Runtime {
    /// Opens the backend (a GPU device, or the host for [`BackendChoice::Cpu`]) and starts the
    /// tick loop. Fails with `BackendUnavailable` (naming what was tried) when no adapter exists.
    ///
    /// # Errors
    /// [`Error::BackendUnavailable`] when no adapter of `options.backend` (or of a device in
    /// `options.devices`) exists or its device cannot be opened, or when a device of
    /// `options.shared_devices` cannot run kernels (its limits allow no kernel's bindings); [`Error::OutOfRange`] for an
    /// option outside its range (a default queue size of 0 or over [`MAX_QUEUE_SIZE`], more
    /// than [`MAX_DEVICES`] devices, a `max_messages_per_tick` or `memory_budget` of 0, health
    /// thresholds, watchdog, circuit breaker or degradation settings out of range);
    /// [`Error::InvalidArgument`] for `device_index` given together with `devices` or
    /// `shared_devices`, or the same device in `shared_devices` twice.
    pub async fn new(options: RuntimeOptions) -> Result<Runtime> {
        // Refused here rather than at each launch (a queue size the caller never passed) or
        // never (a tick bound of 0 that processes nothing).
        control::queue_size_in_range(
            option_name!("defaultQueueSize", "default_queue_size"),
            options.default_queue_size,
        )?;
        if options.devices.len() + options.shared_devices.len() > MAX_DEVICES {
            return Err(Error::OutOfRange(format!(
                "devices lists {} devices; a runtime runs at most {MAX_DEVICES} (each has a tick loop of its own)",
                options.devices.len() + options.shared_devices.len()
            )));
        }
        if !options.shared_devices.is_empty() && options.device_index != 0 {
            return Err(Error::InvalidArgument(
                "device_index picks the adapter of the device a runtime opens when given none; with shared devices \
                 it opens only those of devices, each picking its adapter with its own index"
                    .into(),
            ));
        }
        if let Some((first, again)) = handed_twice(&options.shared_devices) {
            return Err(Error::InvalidArgument(format!(
                "shared_devices hands the same device twice (entries {first} and {again}): a runtime runs one tick \
                 loop per device, so launch more kernels on it instead"
            )));
        }
        if !options.devices.is_empty() && options.device_index != 0 {
            return Err(Error::InvalidArgument(
                concat!(
                    option_name!("deviceIndex", "device_index"),
                    " picks the adapter of a runtime's one device; with devices, each device's own index picks its adapter"
                )
                .into(),
            ));
        }
        if options.max_messages_per_tick == Some(0) {
            return Err(Error::OutOfRange(
                concat!(option_name!("maxMessagesPerTick", "max_messages_per_tick"), " must be at least 1, got 0")
                    .into(),
            ));
        }
        if let Some(problem) = options.health.problem() {
            return Err(Error::OutOfRange(problem));
        }
        crate::watchdog::checked_heartbeat(options.watchdog.heartbeat_timeout)?;
        if options.memory_budget == Some(0) {
            return Err(Error::OutOfRange(
                concat!(
                    option_name!("memoryBudget", "memory_budget"),
                    " must be at least 1 byte, got 0: memory pressure would read 1 (unhealthy) with nothing held"
                )
                .into(),
            ));
        }
        if let Some(breaker) = &options.circuit_breaker {
            breaker.validate().map_err(Error::OutOfRange)?;
        }
        if let Some(problem) = options.degradation.as_ref().and_then(DegradationOptions::problem) {
            return Err(Error::OutOfRange(problem));
        }
        let buffers = Arc::new(BufferStats::default());
        let wake = Arc::new(Event::new());
        let mut devices = Vec::new();
        for source in options.device_sources() {
            devices.push((Device::open(&source, buffers.clone(), wake.clone()).await?, source));
        }
        let settings = Settings {
            enable_telemetry: options.enable_telemetry,
            auto_recover: options.auto_recover,
            tick_budget: options.max_messages_per_tick,
            tracing: options.tracing,
            circuit_breaker: options.circuit_breaker,
            memory_budget: options.memory_budget,
        };
        // On the web nothing is Send and the loop shares the page's thread; Arc keeps one type.
        #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
        let shared = Arc::new(Shared::new(devices, settings, wake, buffers, platform::now_ms()));
        shared.lock().watchdog = options.watchdog;
        shared.lock().degrader = options.degradation.clone().map(|o| Degrader::new(o, platform::now_ms()));
        // Pushed, not collected: each `collect` is a copy of `Vec`'s `from_iter` in the wasm.
        let mut tick_loops = Vec::new();
        for device in shared.device_ids() {
            tick_loops.push(platform::spawn_tick_loop(crate::tick::run(shared.clone(), device)));
        }
        let tick_loops = Mutex::new(tick_loops);
        #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
        let inner = Arc::new(Inner {
            shared: shared.clone(),
            options,
            tick_loops,
            error_samples: Mutex::default(),
            scrape_samples: Mutex::default(),
        });
        Ok(Runtime { shared, inner, pin: None })
    }

    /// This runtime for the operations of a handle to launch `instance` of kernel `id`.
    pub(crate) fn pinned(&self, id: Arc<str>, instance: u64) -> Runtime {
        Runtime { shared: self.shared.clone(), inner: self.inner.clone(), pin: Some(Pin { id, instance }) }
    }

    /// This runtime pinned to the launch kernel `id` names now (as it is when already pinned):
    /// for a send by id that waits its turn behind others, which goes to the launch it found
    /// when it was called, never to one launched since under the id.
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn pinned_to_current(&self, id: &str) -> Runtime {
        if self.pin.is_some() {
            return self.clone();
        }
        // With no kernel under the id, none launched later is its either: pinned to a launch
        // that never is (instances count up from 0).
        let instance = self.shared.lock().kernels.get(id).map_or(u64::MAX, |kernel| kernel.instance);
        self.pinned(id.into(), instance)
    }

    /// This runtime as its own operations see kernels: by id, whichever launch is there.
    pub(crate) fn unpinned(&self) -> Runtime {
        Runtime { shared: self.shared.clone(), inner: self.inner.clone(), pin: None }
    }

    /// Kernel `id` in `table`, or `KernelNotFound`. A handle's operations reach only the launch
    /// the handle refers to: one launched since under its id is not found, and that is checked
    /// under the lock the operation then acts under (a check before it, as the handle's
    /// `removed` flag is, can be overtaken by a remove and a launch on another thread).
    pub(crate) fn kernel_in<'t>(&self, table: &'t mut Table, id: &str) -> Result<&'t mut Kernel> {
        let kernel = table.kernel(id)?;
        self.reaches(kernel, id)?;
        Ok(kernel)
    }

    /// [`kernel_in`](Self::kernel_in), with the status of the kernel's device beside it.
    pub(crate) fn kernel_on_device_in<'t>(
        &self,
        table: &'t mut Table,
        id: &str,
    ) -> Result<(&'t mut Kernel, &'t DeviceStatus)> {
        let (kernel, device) = table.kernel_on_device(id)?;
        self.reaches(kernel, id)?;
        Ok((kernel, device))
    }

    /// `KernelNotFound` when `kernel`, found under `id`, is not the launch this runtime's
    /// handle refers to.
    fn reaches(&self, kernel: &Kernel, id: &str) -> Result<()> {
        match &self.pin {
            Some(pin) if *pin.id == *id && pin.instance != kernel.instance => {
                Err(Error::KernelNotFound { id: id.to_owned() })
            }
            _ => Ok(()),
        }
    }

    /// Whether `backend` has an adapter here (always, for the cpu backend). Asks for an adapter
    /// and lets it go; opens no device.
    pub async fn is_backend_available(backend: BackendChoice) -> bool {
        crate::backend::is_available(backend).await
    }

    /// The adapter this runtime's first device came from (see
    /// [`gpu_topology`](Self::gpu_topology) for every device).
    pub fn adapter(&self) -> AdapterSummary {
        self.shared.device(DeviceId(0)).adapter().clone()
    }

    /// The options the runtime was created with.
    pub fn options(&self) -> &RuntimeOptions {
        &self.inner.options
    }

    /// [`drain`](Self::drain) (every kernel terminated gracefully, within
    /// [`DEFAULT_TERMINATE_TIMEOUT`] each) and [`complete_shutdown`](Self::complete_shutdown):
    /// the report, or the drain's `Timeout` (the runtime stops all the same, and
    /// `complete_shutdown` then hands back the report). Later operations that change or wait on
    /// something fail with `Disposed`; queries (a kernel's state, telemetry, health) keep
    /// answering with the final state, and a second `dispose` hands back the same report.
    pub async fn dispose(&self) -> Result<ShutdownReport> {
        // Its drain's terminates then read no state back that the shutdown lets go of.
        self.shared.lock().stopping = true;
        if self.lifecycle_state() != LifecycleState::Stopped {
            let drained = self.drain(DEFAULT_TERMINATE_TIMEOUT).await;
            let report = self.complete_shutdown().await?;
            return drained.map(|()| report);
        }
        self.complete_shutdown().await
    }

    /// What tells this runtime (and its clones) apart from others while it lives: the address
    /// of what they share (the JavaScript layer's lines of sends are per runtime and kernel).
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn key(&self) -> usize {
        Arc::as_ptr(&self.shared) as usize
    }

    /// The kernel table, or `Disposed` once the runtime has stopped.
    fn open_table(&self) -> Result<TableGuard<'_>> {
        // Called from a wgpu callback that a submission of this runtime's own runs under its
        // table lock, on the thread that holds it: an error now, where the lock would wait
        // forever. (A receive's `read` that calls the runtime panics, as it did.)
        let table = self.shared.lock_or_refuse().map_err(Error::InvalidArgument)?;
        if table.state == LifecycleState::Stopped {
            return Err(Error::Disposed);
        }
        Ok(table)
    }

    /// The kernel table for new work (`what`: a launch, send or call): refused with `Draining`
    /// while the runtime drains, and with `Disposed` once it has stopped.
    fn accepting_table(&self, what: &'static str) -> Result<TableGuard<'_>> {
        let table = self.open_table()?;
        if table.state == LifecycleState::Draining {
            return Err(Error::Draining(what));
        }
        Ok(table)
    }

    /// Counts a failed message operation in the kernel's `errors` (see
    /// [`Error::counts_against_kernel`]) and hands the error back. A timed-out `call`, or a
    /// `receive` that waited and timed out while the kernel had input and made no progress, is
    /// also a failure for the kernel's circuit breaker: the kernel did not answer in time. A `receive` that timed
    /// out is not among the kernel's `errors`, though: nothing was refused, and a caller
    /// polling an idle kernel would otherwise make it look unhealthy.
    fn count(&self, id: &str, error: Error) -> Error {
        let (timed_out, waited) = match &error {
            Error::Timeout { operation, timeout, .. } => (Some(operation.as_str()), *timeout),
            _ => (None, Duration::ZERO),
        };
        if error.counts_against_kernel() {
            // Only against the launch this runtime reaches: a handle's error is not a later
            // launch's under the same id.
            let mut table = self.shared.lock();
            if let Ok(kernel) = self.kernel_in(&mut table, id) {
                // A receive that timed out fails the kernel only if it ran with input and made no
                // progress for as long as the receive waited: a paused kernel was not expected to
                // answer, nor one busy answering calls (its answers go to them), nor does a poll
                // that waited for nothing say anything.
                let stuck = !waited.is_zero() && kernel.stale_for(platform::now_ms(), waited).is_some();
                if timed_out == Some("call") || (timed_out == Some("receive") && stuck) {
                    kernel.circuit_failures(1, Failed::Operations, platform::now_ms());
                }
                if timed_out != Some("receive") {
                    kernel.counters.errors += 1;
                }
            }
        }
        error
    }

    /// [`count`](Self::count) for the error of a result, if it is one.
    fn counted<T>(&self, id: &str, result: Result<T>) -> Result<T> {
        result.map_err(|error| self.count(id, error))
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("adapter", &self.adapter().name)
            .field("kernels", &self.kernel_ids())
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.shut_down();
        for tick_loop in self.tick_loops.get_mut().unwrap_or_else(|p| p.into_inner()) {
            tick_loop.join();
        }
        // A runtime dropped without `dispose()` (collected, on the web) releases its devices
        // too: there nothing else would (see `release_devices`; Dawn in Node kept about 10 MB
        // a runtime). A tick still under way fails on its device, which changes nothing now.
        for id in self.shared.device_ids() {
            if let Some(gpu) = self.shared.device(id).gpu() {
                gpu.destroy("the runtime was dropped");
            }
        }
    }
}

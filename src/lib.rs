//! # ringkernel-web
//!
//! GPU-resident actors ("ring kernels") on WebGPU and native wgpu. A ring kernel is a WGSL
//! handler whose input ring, output ring and counters live in GPU memory for its whole life;
//! the host [`Runtime`] drives its lifecycle and moves messages in and out in batches.
//!
//! ```no_run
//! # async fn demo() -> ringkernel_web::Result<()> {
//! use std::time::Duration;
//! use ringkernel_web::{LaunchOptions, Runtime, RuntimeOptions, Value};
//! let runtime = Runtime::new(RuntimeOptions::default()).await?;
//! // A handle typed by its messages: i32 in, i32 out (checked against the kernel's layouts).
//! let doubler = runtime.launch("doubler", LaunchOptions::default()).await?.typed::<i32, i32>()?;
//! doubler.activate().await?;
//! doubler.send(20).await?;
//! assert_eq!(doubler.receive().await?, 40);
//! // Or by id, with named values.
//! runtime.send("doubler", &[("value", Value::from(21))], Some(Duration::from_secs(1))).await?;
//! let answer = runtime.receive("doubler", Some(Duration::from_secs(1))).await?;
//! assert_eq!(answer, vec![("result".to_string(), Value::I32(42))]);
//! # Ok(()) }
//! ```
//!
//! # Kernels and messages
//! A kernel is a [`KernelDefinition`]: an input and an output [`MessageLayout`] (fields laid
//! out by WGSL's rules, see [`message`]), a WGSL `fn handle` for GPU backends and optionally a
//! host handler for the `cpu` backend and a `state` array (see [`kernel`]). Register it with
//! [`kernel::register`] and [`Runtime::launch`] it by id, or pass it to
//! [`Runtime::launch_definition`]. [`codegen`] turns it into the WGSL module that runs.
//!
//! # Lifecycle
//! `launch → activate ⇄ deactivate → terminate`, one transition table for every operation (see
//! [`lifecycle`]); a refused transition is an [`Error::KernelState`]. A kernel whose device was
//! lost is `Failed` until [`Runtime::recover`] relaunches it with nothing lost.
//!
//! # Moving messages
//! `send`, `send_batch` and `call` queue messages on the host; `receive` and `receive_batch`
//! take answers. Every message accepted is answered exactly once and in order. Queues are
//! bounded: a send waits for room up to its timeout. Nothing touches the GPU per message: one
//! tick per batch writes every kernel's input with one write, dispatches every kernel in one
//! submit, and reads every answer back with one map.
//!
//! # Envelopes
//! [`Runtime::send_envelope`] and [`Runtime::receive_envelope`] (and the same on a typed
//! [`KernelHandle`]) send a message with a [`MessageEnvelope`] header (message id, correlation
//! id, source, destination, priority, [`HlcTimestamp`]) and take answers with theirs: the
//! answer's correlation id is its request's message id, through pipelines and recoveries too.
//! Each runtime has a hybrid logical clock ([`hlc`]); see [`envelope`].
//!
//! # Resilience
//! With [`RuntimeOptions::circuit_breaker`] set, each kernel has a circuit breaker
//! ([`Runtime::circuit_breaker`]) that refuses sends and calls with [`Error::CircuitOpen`] after
//! a run of failures, and [`CircuitBreaker::execute`] protects the caller's own operations. The
//! [`KernelWatchdog`] ([`Runtime::kernel_watchdog`]) lists kernels that have input and make no
//! progress, and can deactivate them or recover the device.
//!
//! # Under load
//! [`Runtime::gpu_memory_dashboard`] reports device bytes by kernel and by purpose against an
//! optional budget, with alerts when pressure crosses a threshold ([`memory`]).
//! [`Runtime::degradation_manager`] reports how loaded the runtime is, and when
//! `RuntimeOptions::degradation` is set, defers and sheds low-priority work without dropping
//! anything accepted ([`degradation`]).
//!
//! # Errors
//! Every operation returns [`Result`]; [`Error::kind`] gives an [`ErrorKind`] to match on, and
//! the message names the kernel, state or field.
//!
//! # Where things live (for contributors)
//! The crate is layered; each layer uses only those below it:
//! - `wasm` (wasm32 only): the JavaScript surface, `RingKernelRuntime`; it converts and forwards.
//! - `runtime`: [`Runtime`]'s operations (lifecycle, messaging, queries, routing, resilience).
//! - `tick`: the loop that runs kernels: plan → execute → deliver; `recovery`: device loss;
//!   `pressure`: load readings off the table for the tick and the queries.
//! - `table`: the kernel table, each kernel as named parts: `lifecycle`, `mailbox` (queues
//!   and the `correlation` ledger), `cursor` (what the device holds), `telemetry` counters,
//!   `circuit` (the breaker's state machine); each device's `turn` (one tick at a time: the
//!   loop's, or natively a waiting caller's); `watchdog`: what a stale kernel is.
//! - the operations layer's rules, pure where they can be: [`health`], [`memory`],
//!   [`degradation`]; several devices: [`devices`], `migration`; [`envelope`] headers and the
//!   [`hlc`] clock; `error`: the one error type.
//! - `backend`: the execute step per backend (`gpu`, `cpu`) and devices.
//! - [`codegen`], [`kernel`], [`message`]: definitions and the WGSL they compile to.
//! - `platform`: the only place native and wasm differ.

#![deny(missing_docs)]

extern crate self as ringkernel_web;

mod backend;
mod cancel;
mod checkpoint;
mod circuit;
pub mod codegen;
mod correlation;
mod cursor;
pub mod degradation;
mod device_events;
pub mod devices;
pub mod envelope;
mod error;
mod features;
pub mod health;
pub mod hlc;
pub mod kernel;
pub mod lifecycle;
mod mailbox;
pub mod memory;
pub mod message;
mod migration;
mod platform;
mod pressure;
mod prometheus;
mod queue;
mod recovery;
mod runtime;
mod shared_device;
mod spans;
mod table;
mod telemetry;
mod tick;
mod timers;
mod turn;
pub(crate) mod waiting;
#[cfg(target_arch = "wasm32")]
pub mod wasm;
mod watchdog;

pub use backend::{AdapterSummary, BackendChoice};
pub use circuit::{CircuitBreakerConfig, CircuitState, CircuitStatus};
pub use degradation::{DegradationLevel, DegradationOptions, DegradationReason, DegradationSignals, DegradationStatus};
pub use device_events::{DeviceEvent, DeviceEventKind, KEPT_DEVICE_EVENTS};
pub use devices::{DeviceId, DeviceInfo, DeviceRequirements, DeviceSpec, LoadBalancing, PowerPreference, Topology};
pub use envelope::{EnvelopeHeader, MessageEnvelope};
pub use error::{
    BatchSendError, CallError, Error, ErrorKind, Result, SendError, SendTimeoutError, Stall, TryReceiveError,
    TrySendError,
};
pub use features::DeviceFeature;
pub use health::{HealthReport, HealthStatus, HealthThresholds};
pub use hlc::HlcTimestamp;
pub use kernel::{KernelDefinition, StateElement, StateValues};
pub use lifecycle::{KernelMode, KernelState, LifecycleState};
pub use memory::{MemoryAlertEvent, MemoryByPurpose, MemoryPressureAlert, MemoryPurpose, MemoryReport, MemoryWatchId};
pub use message::{FieldType, MessageLayout, MessageRef, RingMessage, Scalar, Value, Vec2, Vec3, Vec4};
pub use migration::MigrationReport;
pub use runtime::builder::RuntimeBuilder;
pub use runtime::dashboards::{DegradationManager, GpuMemoryDashboard};
pub use runtime::handle::{Dynamic, KernelHandle, KernelStatus};
pub use runtime::health::HealthChecker;
pub use runtime::interop::STATE_COPY_USAGES;
pub use runtime::placement::KernelMigrator;
pub use runtime::queries::AnswersComing;
pub use runtime::resilience::{CircuitBreaker, KernelWatchdog};
pub use runtime::{LaunchOptions, Runtime, RuntimeOptions, DEFAULT_TERMINATE_TIMEOUT, MAX_DEVICES, MAX_QUEUE_SIZE};
pub use shared_device::SharedDevice;
pub use telemetry::{
    DeviceHealth, KernelTelemetry, LatencySummary, RuntimeMetrics, RuntimeSummary, ShutdownReport, TickTime,
};
pub use watchdog::{StaleKernel, WatchdogAction, WatchdogConfig};
/// The wgpu this crate runs on, for [`Runtime::wgpu_device`], [`Runtime::state_to_gpu`] and
/// [`SharedDevice`]: work of the application's own on the runtime's devices, and a device it
/// hands the runtime, need this version's types (open them through `ringkernel_web::wgpu`, or
/// depend on the same major version of wgpu).
pub use wgpu;

/// The README's Rust example, compiled and run as a doctest so it cannot rot.
#[cfg(all(doctest, not(target_arch = "wasm32")))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

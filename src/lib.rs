//! # ringkernel-web
//!
//! GPU-resident actors ("ring kernels") on WebGPU and native wgpu. A ring kernel is a WGSL
//! handler whose input ring, output ring and counters live in GPU memory for its whole
//! life; the host [`Runtime`] drives its lifecycle and moves messages in and out in batches.
//!
//! Where things live:
//! - [`lifecycle`]: states and the transition table.
//! - [`message`]: field types, WGSL byte layout, packing, message types by name.
//! - [`kernel`]: kernel definitions (with optional state), the registry and the built-ins.
//! - [`codegen`]: message structs + ring harness + handler → WGSL, and compile errors at the
//!   user's line and column.
//! - [`queue`]: host staging queues and the GPU ring header and counters.
//! - [`backend`]: the wgpu device, per-kernel GPU resources, readback.
//! - [`runtime`]: the kernel table and every public operation (lifecycle, messaging, queries).
//! - [`correlation`]: sequence numbers that pair each `call` with its answer.
//! - `pump`: the tick that batches all GPU work.
//! - [`telemetry`] and [`metrics`]: counters, latency, the summary, Prometheus text.
//! - `wasm` (wasm32 only): the JavaScript surface, `RingKernelRuntime`.
//!
//! ```no_run
//! # async fn demo() -> ringkernel_web::Result<()> {
//! use ringkernel_web::{Runtime, RuntimeOptions, LaunchOptions, Value};
//! let runtime = Runtime::new(RuntimeOptions::default()).await?;
//! runtime.launch("doubler", LaunchOptions::default()).await?;
//! runtime.activate("doubler").await?;
//! runtime.send("doubler", &[("value", Value::from(21))], Some(1000.0)).await?;
//! let answer = runtime.receive("doubler", Some(1000.0)).await?;
//! assert_eq!(answer, vec![("result".to_string(), Value::Number(42.0))]);
//! # Ok(()) }
//! ```

pub mod backend;
pub mod codegen;
pub mod correlation;
pub mod error;
pub mod kernel;
pub mod lifecycle;
pub mod message;
pub mod metrics;
mod platform;
mod pump;
pub mod queue;
pub mod runtime;
pub mod telemetry;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use backend::{AdapterSummary, BackendChoice};
pub use error::{Error, Result};
pub use kernel::{KernelDefinition, StateElement};
pub use lifecycle::{KernelMode, KernelState};
pub use message::{FieldType, MessageLayout, Scalar, Value};
pub use runtime::{LaunchOptions, Runtime, RuntimeOptions, TimeoutMs};
pub use telemetry::{KernelTelemetry, LatencySummary, RuntimeSummary};

/// The README's Rust example, compiled and run as a doctest so it cannot rot.
#[cfg(all(doctest, not(target_arch = "wasm32")))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

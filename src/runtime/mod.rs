//! The runtime: every public operation on kernels. GPU work happens only in the tick
//! ([`crate::tick`]); operations here stage data on the host, change states through the
//! lifecycle table, and wake the tick.
//!
//! - this file: options, creating and disposing a runtime;
//! - `control`: the lifecycle (launch → activate ⇄ deactivate → terminate), `managed_kernel`,
//!   state arrays, device recovery;
//! - `messaging`: `send`, `send_batch`, `call`, `receive`, `receive_batch`;
//! - `queries`: state, ids, telemetry, `summary`, `metrics_text`;
//! - `routing`: `connect` and `disconnect`.
//!
//! Operations that wait (`send` on a full queue, `receive`, `call`, `terminate`) await an event
//! the tick fires, raced against a timer; nothing blocks a thread on the web.

mod control;
mod messaging;
mod queries;
mod routing;

use std::sync::{Arc, MutexGuard};

use event_listener::Event;

use crate::backend::{AdapterSummary, BackendChoice, BufferStats, Device};
use crate::error::{Error, Result};
use crate::lifecycle::KernelMode;
use crate::platform;
use crate::table::{Settings, Shared, Table};

/// Options for [`Runtime::new`]. In JavaScript, the same fields in camelCase
/// (`RingKernelRuntime.create({ enableTelemetry, defaultQueueSize, backend, autoRecover })`);
/// missing ones take their defaults and unknown ones are refused.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
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
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            enable_telemetry: true,
            default_queue_size: 4096,
            backend: BackendChoice::Auto,
            auto_recover: false,
        }
    }
}

/// Options for [`Runtime::launch`]. In JavaScript, `{ queueSize, mode, maxBatch }`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct LaunchOptions {
    /// Bound of the host input queue and output queue, in messages (and the GPU ring's
    /// minimum slot count). Default: the runtime's `default_queue_size`.
    pub queue_size: Option<usize>,
    /// What wakes the kernel (see [`KernelMode`]).
    pub mode: KernelMode,
    /// Most messages one dispatch of this kernel handles (default: its queue size). Lower it
    /// for handlers that run long per message, so each GPU submission stays short.
    pub max_batch: Option<usize>,
}

/// Largest queue a kernel may ask for: keeps a ring within WebGPU's default 128 MiB binding
/// for messages of up to 32 bytes.
pub const MAX_QUEUE_SIZE: usize = 1 << 22;

/// How long to wait, in milliseconds: `None` waits for as long as it takes.
pub type TimeoutMs = Option<f64>;

/// How long `dispose` and `managed_kernel` give kernels to drain, in milliseconds.
pub const DEFAULT_TERMINATE_TIMEOUT_MS: f64 = 5000.0;

/// Host runtime for ring kernels on one device. Dropping it stops its tick loop.
pub struct Runtime {
    shared: Arc<Shared>,
    options: RuntimeOptions,
    tick_loop: platform::TickLoopHandle,
}

impl Runtime {
    /// Opens the backend (a GPU device, or the host for [`BackendChoice::Cpu`]) and starts the
    /// tick loop. Fails with `BackendUnavailable` (naming what was tried) when no adapter exists.
    pub async fn new(options: RuntimeOptions) -> Result<Runtime> {
        let buffers = Arc::new(BufferStats::default());
        let wake = Arc::new(Event::new());
        let device = Device::open(options.backend, buffers.clone(), wake.clone()).await?;
        let settings = Settings {
            enable_telemetry: options.enable_telemetry,
            auto_recover: options.auto_recover,
            backend: options.backend,
        };
        // On the web nothing is Send and the loop shares the page's thread; Arc keeps one type.
        #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
        let shared = Arc::new(Shared::new(device, settings, wake, buffers, platform::now_ms()));
        let tick_loop = platform::spawn_tick_loop(crate::tick::run(shared.clone()));
        Ok(Runtime { shared, options, tick_loop })
    }

    /// The adapter this runtime's device came from.
    pub fn adapter(&self) -> AdapterSummary {
        self.shared.device().adapter().clone()
    }

    /// The options the runtime was created with.
    pub fn options(&self) -> &RuntimeOptions {
        &self.options
    }

    /// Terminates all kernels, stops the tick loop and releases the device. Later calls fail
    /// with `BackendUnavailable`; a second `dispose` does nothing.
    pub async fn dispose(&self) -> Result<()> {
        if self.shared.lock().disposed {
            return Ok(());
        }
        let result = self.terminate_all(Some(DEFAULT_TERMINATE_TIMEOUT_MS)).await;
        self.shared.lock().disposed = true;
        self.shared.shut_down();
        result
    }

    /// The kernel table, or `BackendUnavailable` once the runtime is disposed.
    fn open_table(&self) -> Result<MutexGuard<'_, Table>> {
        let table = self.shared.lock();
        if table.disposed {
            return Err(disposed_error());
        }
        Ok(table)
    }

    /// Counts a failed message operation in the kernel's `errors` (see
    /// [`Error::counts_against_kernel`]).
    fn counted<T>(&self, id: &str, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if e.counts_against_kernel() {
                if let Some(kernel) = self.shared.lock().kernels.get_mut(id) {
                    kernel.counters.errors += 1;
                }
            }
        }
        result
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shared.shut_down();
        self.tick_loop.join();
    }
}

fn disposed_error() -> Error {
    Error::BackendUnavailable { reason: "the runtime has been disposed".into() }
}

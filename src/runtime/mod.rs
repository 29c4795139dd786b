//! The runtime: the kernel table and every public operation. GPU work happens only in the pump
//! (`crate::pump`); operations here stage data on the host, flip control flags, and wake it.
//!
//! - this file: options, the kernel table, creation and the lifecycle (launch → activate ⇄
//!   deactivate → terminate), `managed_kernel`;
//! - [`messaging`]: `send`, `send_batch`, `call`, `receive`, `receive_batch`;
//! - [`queries`]: state, ids, telemetry, `summary`, `metrics_text`;
//! - [`routing`]: `connect` and `disconnect`;
//! - [`recovery`]: what a lost device does to kernels, and `recover`.
//!
//! # Waiting
//! Operations that wait (`send` on a full queue, `receive`, `call`, `terminate`) await an event
//! that the pump fires after each tick, raced against a timer; nothing blocks a thread on the web.

mod messaging;
mod queries;
pub(crate) mod recovery;
mod routing;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use event_listener::Event;

use crate::backend::cpu::CpuKernel;
use crate::backend::gpu::{read_back, BufferStats, GpuKernel, Readback};
use crate::backend::{AdapterSummary, BackendChoice, Device, KernelExec, StateStore};
use crate::correlation::Ledger;
use crate::error::{Error, Result};
use crate::kernel::{self, KernelDefinition};
use crate::lifecycle::{transition, Action, KernelMode, KernelState};
use crate::platform;
use crate::queue::PackedQueue;
use crate::telemetry::{Counters, LatencyRecorder};

/// Options for [`Runtime::new`].
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Record latency and report [`Runtime::telemetry`]; counters for `summary` are kept anyway.
    pub enable_telemetry: bool,
    /// Queue size for kernels launched without their own.
    pub default_queue_size: usize,
    pub backend: BackendChoice,
    /// Recover from a lost device without waiting for [`Runtime::recover`]: the pump opens a
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

/// Options for [`Runtime::launch`].
#[derive(Debug, Clone, Default)]
pub struct LaunchOptions {
    /// Bound of the host input queue and output queue, in messages (and the GPU ring's
    /// minimum slot count).
    pub queue_size: Option<usize>,
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

/// How long `dispose` and `managed_kernel` give kernels to drain.
pub const DEFAULT_TERMINATE_TIMEOUT_MS: f64 = 5000.0;

pub(crate) struct Kernel {
    pub def: Arc<KernelDefinition>,
    pub mode: KernelMode,
    /// Tells launches of the same id apart, so a tick planned for a kernel that was removed
    /// and launched again never delivers into the new one.
    pub instance: u64,
    pub state: KernelState,
    /// Rings and pipelines (GPU) or the host handler (CPU); `None` until launched and after
    /// terminate.
    pub exec: Option<KernelExec>,
    /// The handler's state array, kept past termination so final results can be read, until
    /// the kernel is removed.
    pub state_store: Option<StateStore>,
    pub inbox: PackedQueue,
    pub outbox: PackedQueue,
    /// Messages handed to the backend (`tail`) and answered by it (`head`), free-running: on a
    /// GPU, what the host wrote into the input ring and what the GPU reported consumed at the
    /// last readback.
    pub gpu_head: u32,
    pub gpu_tail: u32,
    /// Fired whenever answers arrive, queue room frees up, or the state changes.
    pub changed: Arc<Event>,
    pub ledger: Ledger,
    pub counters: Counters,
    /// The kernel this one's answers go to instead of the host, and the one whose answers
    /// come in here (see [`Runtime::connect`]).
    pub downstream: Option<String>,
    pub upstream: Option<String>,
    /// Most messages per dispatch (see [`LaunchOptions::max_batch`]).
    pub max_batch: u32,
    /// For a kernel whose device was lost: the state recovery returns it to. Also set while a
    /// failed kernel is terminated, so recovery relaunches it to drain.
    pub resume: Option<KernelState>,
    /// The state array as of the last delivered tick: what recovery restores (GPU only).
    pub checkpoint: Option<Vec<u8>>,
    /// Sequence numbers of the messages a connected feeder forwarded into this kernel in the
    /// tick on the GPU now (`first`, `count`); if the device is lost they are voided, because
    /// the feeder processes their originals again.
    pub forwarded_in_flight: Option<(u64, u64)>,
    /// What the kernel's earlier devices counted (processed, dropped, dispatches): a relaunched
    /// kernel's GPU counters start again from zero.
    pub counted_before: (u64, u64, u64),
    pub launched_at_ms: f64,
    pub launched_unix_ms: f64,
    pub stopped_at_ms: Option<f64>,
}

impl Kernel {
    /// Messages handed to the backend and not yet answered.
    pub fn in_flight(&self) -> u32 {
        self.gpu_tail.wrapping_sub(self.gpu_head)
    }

    /// Whether the pump should dispatch this kernel: active, or draining while terminating.
    pub fn runs(&self) -> bool {
        matches!(self.state, KernelState::Active | KernelState::Terminating) && self.exec.is_some()
    }
}

pub(crate) struct Table {
    pub kernels: HashMap<String, Kernel>,
    /// Pump ticks that did work (reported in the summary).
    pub ticks: u64,
    pub readback: Readback,
    /// Why the device was lost, until recovery replaces it (see [`recovery`]).
    pub lost: Option<Error>,
    /// Counts device losses; a tick that ran on an earlier device delivers nothing.
    pub generation: u64,
    pub recoveries: u64,
    /// Why the last recovery attempt failed, if it did.
    pub recovery_error: Option<String>,
    pub disposed: bool,
}

pub(crate) struct Shared {
    /// Replaced by recovery when the device is lost.
    device: RwLock<Arc<Device>>,
    pub options: RuntimeOptions,
    pub table: Mutex<Table>,
    /// Wakes the pump: new input, a state change, queue room freed, or a lost device.
    pub wake_pump: Arc<Event>,
    pub shutdown: AtomicBool,
    pub created_at_ms: f64,
    /// GPU buffers held, across every device this runtime has had.
    pub buffers: Arc<BufferStats>,
    /// One recovery at a time (a manual `recover` may race the automatic one).
    pub recovering: futures_util::lock::Mutex<()>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, Table> {
        // A poisoned lock means a panic inside the runtime; keep serving rather than cascade.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The device kernels run on now.
    pub fn device(&self) -> Arc<Device> {
        self.device.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Host runtime for ring kernels on one GPU device. Dropping it stops the pump.
pub struct Runtime {
    shared: Arc<Shared>,
    pump: platform::PumpHandle,
}

impl Runtime {
    /// Opens the backend (a GPU device, or the host for [`BackendChoice::Cpu`]) and starts the
    /// pump. Fails with `BackendUnavailable` (naming what was tried) when no adapter exists.
    pub async fn new(options: RuntimeOptions) -> Result<Runtime> {
        let buffers = Arc::new(BufferStats::default());
        let wake_pump = Arc::new(Event::new());
        let device = Device::open(options.backend, buffers.clone(), wake_pump.clone()).await?;
        // On the web nothing is Send and the pump shares the page's thread; Arc keeps one type.
        #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
        let shared = Arc::new(Shared {
            device: RwLock::new(Arc::new(device)),
            options,
            table: Mutex::new(Table {
                kernels: HashMap::new(),
                ticks: 0,
                readback: Readback::new(),
                lost: None,
                generation: 0,
                recoveries: 0,
                recovery_error: None,
                disposed: false,
            }),
            wake_pump,
            shutdown: AtomicBool::new(false),
            created_at_ms: platform::now_ms(),
            buffers,
            recovering: futures_util::lock::Mutex::new(()),
        });
        let pump = platform::spawn_pump(crate::pump::run(shared.clone()));
        Ok(Runtime { shared, pump })
    }

    /// The adapter this runtime's device came from.
    pub fn adapter(&self) -> AdapterSummary {
        self.shared.device().adapter().clone()
    }

    /// Launches a registered kernel by id (see [`kernel::register`]). A second launch of a live
    /// id is a `KernelState` error; a terminated id must be [`remove`](Self::remove)d first.
    pub async fn launch(&self, id: &str, options: LaunchOptions) -> Result<()> {
        let definition = kernel::lookup(id).ok_or_else(|| Error::KernelNotFound { id: id.to_owned() })?;
        self.launch_definition((*definition).clone(), options).await
    }

    /// Launches `definition` under its own id: compiles its WGSL and allocates its GPU rings.
    /// The kernel is `Created` while it compiles (natively on a helper thread, so launching
    /// never stalls the caller's executor) and `Launched` once its rings exist.
    pub async fn launch_definition(&self, definition: KernelDefinition, options: LaunchOptions) -> Result<()> {
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        let id = definition.id.clone();
        validate_id(&id)?;
        let queue_size = options.queue_size.unwrap_or(self.shared.options.default_queue_size);
        if queue_size == 0 || queue_size > MAX_QUEUE_SIZE {
            return Err(Error::InvalidArgument(format!(
                "queueSize must be between 1 and {MAX_QUEUE_SIZE}, got {queue_size}"
            )));
        }
        let max_batch = options.max_batch.unwrap_or(queue_size);
        if max_batch == 0 || max_batch > queue_size {
            return Err(Error::InvalidArgument(format!(
                "maxBatch must be between 1 and the queue size ({queue_size}), got {max_batch}"
            )));
        }
        let definition = Arc::new(definition);
        let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let (device, generation) = {
            // Reserve the id (state Created) so a concurrent launch of the same id is refused.
            let mut table = self.open_table()?;
            if let Some(existing) = table.kernels.get(&id) {
                return Err(Error::KernelState { id, state: existing.state, action: Action::Launch });
            }
            if let Some(lost) = &table.lost {
                return Err(lost.clone());
            }
            let counters = Counters {
                latency: self.shared.options.enable_telemetry.then(LatencyRecorder::new),
                ..Default::default()
            };
            table.kernels.insert(
                id.clone(),
                Kernel {
                    def: definition.clone(),
                    mode: options.mode,
                    instance,
                    state: KernelState::Created,
                    exec: None,
                    state_store: None,
                    inbox: PackedQueue::new(definition.input.size(), queue_size),
                    outbox: PackedQueue::new(definition.output.size(), queue_size),
                    gpu_head: 0,
                    gpu_tail: 0,
                    changed: Arc::new(Event::new()),
                    ledger: Ledger::default(),
                    counters,
                    downstream: None,
                    upstream: None,
                    max_batch: max_batch as u32,
                    resume: None,
                    checkpoint: None,
                    forwarded_in_flight: None,
                    counted_before: (0, 0, 0),
                    launched_at_ms: platform::now_ms(),
                    launched_unix_ms: platform::unix_time_ms(),
                    stopped_at_ms: None,
                },
            );
            (self.shared.device(), table.generation)
        };
        let created = create_exec(device.clone(), definition.clone(), queue_size).await;
        // Lost meanwhile, whether or not the pump has noticed yet.
        let fault = device.gpu().and_then(|gpu| gpu.check_fault().err());
        let mut table = self.shared.lock();
        let still_ours = table.kernels.get(&id).is_some_and(|k| k.instance == instance);
        // Built (or failed to build) on a device that was lost meanwhile: it cannot run, and
        // a compile error from a dead device says nothing about the kernel.
        let created = match (&table.lost, fault) {
            (Some(lost), _) => Err(lost.clone()),
            (None, Some(fault)) => Err(fault),
            (None, None) if table.generation != generation => {
                Err(Error::DeviceLost { reason: "the device was lost and replaced while the kernel compiled".into() })
            }
            (None, None) => created,
        };
        match created {
            Ok(exec) if still_ours => {
                let kernel = table.kernels.get_mut(&id).expect("checked above");
                kernel.state = transition(&id, kernel.state, Action::Launch)?;
                kernel.state_store = exec.state_store();
                kernel.exec = Some(exec);
                kernel.changed.notify(usize::MAX);
                Ok(())
            }
            // The runtime was disposed while compiling.
            Ok(_) => Err(disposed_error()),
            Err(e) => {
                if still_ours {
                    table.kernels.remove(&id);
                }
                Err(e)
            }
        }
    }

    /// LAUNCHED → ACTIVE: the pump starts dispatching the kernel.
    pub async fn activate(&self, id: &str) -> Result<()> {
        self.set_active(id, Action::Activate)
    }

    /// ACTIVE → DEACTIVATED: the pump stops dispatching it; its input stays queued and nothing
    /// is dropped.
    pub async fn deactivate(&self, id: &str) -> Result<()> {
        self.set_active(id, Action::Deactivate)
    }

    /// DEACTIVATED → ACTIVE: queued input is processed, in order.
    pub async fn reactivate(&self, id: &str) -> Result<()> {
        self.set_active(id, Action::Reactivate)
    }

    /// A transition between launched, active and deactivated: the pump reads the state (see
    /// `Kernel::runs`) and the header it writes with every tick tells the GPU.
    fn set_active(&self, id: &str, action: Action) -> Result<()> {
        let mut table = self.open_table()?;
        let kernel = kernel_mut(&mut table, id)?;
        kernel.state = transition(id, kernel.state, action)?;
        kernel.changed.notify(usize::MAX);
        drop(table);
        self.shared.wake_pump.notify(usize::MAX);
        Ok(())
    }

    /// Graceful stop: the kernel passes through `Terminating` while queued and in-flight
    /// messages are processed (their answers stay receivable), then becomes `Terminated`.
    /// Past `timeout_ms` it is stopped anyway; the unprocessed count is recorded in its
    /// telemetry and returned in the `Timeout` error, and waiting `call`s are cancelled.
    pub async fn terminate(&self, id: &str, timeout_ms: TimeoutMs) -> Result<()> {
        let result = self.terminate_inner(id, timeout_ms).await;
        // Like every lifecycle call, a refused terminate is not a message error; one that timed
        // out left messages unprocessed, which is.
        match result {
            Err(Error::Timeout { .. }) => self.count_error(id, result),
            other => other,
        }
    }

    async fn terminate_inner(&self, id: &str, timeout_ms: TimeoutMs) -> Result<()> {
        let deadline = deadline(timeout_ms)?;
        let changed = {
            let mut table = self.open_table()?;
            let kernel = kernel_mut(&mut table, id)?;
            let failed = kernel.state == KernelState::Failed;
            kernel.state = transition(id, kernel.state, Action::Terminate)?;
            if failed {
                // Recovery relaunches it so it can drain; `resume` already says so.
                kernel.resume = Some(KernelState::Terminating);
            }
            // A stopping kernel leaves its pipeline: what it still answers goes to the host.
            routing::detach(&mut table, id);
            let kernel = kernel_mut(&mut table, id)?;
            // Terminating runs the kernel even if it was paused or never activated, so nothing
            // queued is dropped (see `Kernel::runs`).
            kernel.changed.notify(usize::MAX);
            kernel.changed.clone()
        };
        self.shared.wake_pump.notify(usize::MAX);
        loop {
            let listener = changed.listen();
            {
                let mut table = self.shared.lock();
                // Without automatic recovery nothing will drain a kernel whose device was lost.
                let stranded = table.lost.clone().filter(|_| !self.shared.options.auto_recover);
                let kernel = kernel_mut(&mut table, id)?;
                let drained = kernel.inbox.is_empty() && kernel.in_flight() == 0;
                let timed_out = deadline.is_some_and(|d| platform::now_ms() >= d);
                let stranded = stranded.filter(|_| kernel.exec.is_none());
                if drained || timed_out || stranded.is_some() {
                    let unprocessed = kernel.inbox.len() as u64 + kernel.in_flight() as u64;
                    kernel.state = transition(id, kernel.state, Action::Finish)?;
                    kernel.counters.unprocessed_at_termination = unprocessed;
                    kernel.stopped_at_ms = Some(platform::now_ms());
                    // Dropping (not destroying) lets wgpu free the rings once in-flight work ends.
                    kernel.exec = None;
                    kernel.resume = None;
                    kernel.inbox.clear();
                    kernel.gpu_head = kernel.gpu_tail;
                    kernel.ledger.cancel_unanswered();
                    kernel.changed.notify(usize::MAX);
                    if let Some(Error::DeviceLost { reason }) = stranded.filter(|_| unprocessed > 0) {
                        return Err(Error::DeviceLost {
                            reason: format!("{reason}; kernel '{id}' stopped with {unprocessed} messages unprocessed"),
                        });
                    }
                    if unprocessed > 0 {
                        return Err(Error::Timeout {
                            id: id.to_owned(),
                            operation: format!("terminate ({unprocessed} messages left unprocessed)"),
                            timeout_ms: timeout_ms.unwrap_or(0.0),
                        });
                    }
                    return Ok(());
                }
            }
            wait(listener, deadline).await;
        }
    }

    /// Terminates every kernel that can be terminated, concurrently, each within
    /// `timeout_ms`; the first failure is returned after all have finished.
    pub async fn terminate_all(&self, timeout_ms: TimeoutMs) -> Result<()> {
        let ids: Vec<String> = {
            let table = self.open_table()?;
            let mut ids: Vec<String> = table
                .kernels
                .iter()
                .filter(|(_, k)| k.state.next(Action::Terminate).is_some())
                .map(|(id, _)| id.clone())
                .collect();
            ids.sort();
            ids
        };
        let results = futures_util::future::join_all(ids.iter().map(|id| self.terminate(id, timeout_ms))).await;
        results.into_iter().find(Result::is_err).unwrap_or(Ok(()))
    }

    /// Copies the kernel's `state` array back from the GPU, as it stands after every dispatch
    /// issued so far (so after receiving an answer, the state includes that message's updates).
    /// Readable from launch until the kernel is removed, including after terminate.
    pub async fn read_state(&self, id: &str) -> Result<Vec<u8>> {
        let (store, device) = {
            let mut table = self.open_table()?;
            let lost = table.lost.clone();
            let kernel = kernel_mut(&mut table, id)?;
            if kernel.def.state.is_none() {
                return Err(Error::InvalidArgument(format!(
                    "kernel '{id}' has no state; declare one in its definition (state: {{ type, length }})"
                )));
            }
            let Some(store) = kernel.state_store.clone() else {
                return Err(Error::KernelState { id: id.to_owned(), state: kernel.state, action: Action::ReadState });
            };
            if kernel.state == KernelState::Failed {
                // Its state comes back with it on recovery.
                return Err(lost.unwrap_or_else(|| Error::DeviceLost { reason: format!("kernel '{id}' has failed") }));
            }
            if let StateStore::Gpu(buffer) = &store {
                if let Some(lost) = lost {
                    return Err(lost);
                }
                kernel.counters.bytes_from_device += buffer.size();
            }
            // The device the buffer lives on, taken with it: recovery may replace the runtime's.
            (store, self.shared.device())
        };
        match (store, device.gpu()) {
            // The host handler updates the words under this lock, between messages.
            (StateStore::Cpu(words), _) => {
                Ok(bytemuck::cast_slice(&words.lock().unwrap_or_else(|p| p.into_inner())).to_vec())
            }
            (StateStore::Gpu(state), Some(gpu)) => {
                let staging = gpu.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("state readback"),
                    size: state.size(),
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                let mut encoder =
                    gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("read state") });
                encoder.copy_buffer_to_buffer(&state, 0, &staging, 0, state.size());
                gpu.queue.submit([encoder.finish()]);
                let bytes = read_back(gpu, &staging, state.size()).await;
                staging.destroy();
                bytes
            }
            (StateStore::Gpu(_), None) => unreachable!("GPU state exists only on a GPU device"),
        }
    }

    /// [`read_state`](Self::read_state) as `u32`, `i32` or `f32` values, matching the state's
    /// element type.
    pub async fn read_state_as<T: bytemuck::Pod>(&self, id: &str) -> Result<Vec<T>> {
        if std::mem::size_of::<T>() != 4 {
            return Err(Error::InvalidArgument("state elements are 4 bytes (u32, i32 or f32)".into()));
        }
        Ok(bytemuck::pod_collect_to_vec(&self.read_state(id).await?))
    }

    /// Forgets a terminated kernel (and any answers nobody received) so its id can be
    /// launched again.
    pub fn remove(&self, id: &str) -> Result<()> {
        let mut table = self.open_table()?;
        let kernel = kernel_mut(&mut table, id)?;
        if kernel.state != KernelState::Terminated {
            return Err(Error::KernelState { id: id.to_owned(), state: kernel.state, action: Action::Remove });
        }
        table.kernels.remove(id);
        Ok(())
    }

    /// The seeds' `managed_kernel`: launches and activates `id`, runs `body`, then terminates
    /// the kernel whether `body` succeeded or not. `body`'s error wins over terminate's.
    pub async fn managed_kernel<T, F, Fut>(&self, id: &str, options: LaunchOptions, body: F) -> Result<T>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.launch(id, options).await?;
        if let Err(e) = self.activate(id).await {
            let _ = self.terminate(id, Some(DEFAULT_TERMINATE_TIMEOUT_MS)).await;
            return Err(e);
        }
        let outcome = body(id.to_owned()).await;
        let terminated = self.terminate(id, Some(DEFAULT_TERMINATE_TIMEOUT_MS)).await;
        let value = outcome?;
        terminated.map(|()| value)
    }

    /// Terminates all kernels, stops the pump and releases the device. Later calls fail with
    /// `BackendUnavailable`; a second `dispose` does nothing.
    pub async fn dispose(&self) -> Result<()> {
        if self.shared.lock().disposed {
            return Ok(());
        }
        let result = self.terminate_all(Some(DEFAULT_TERMINATE_TIMEOUT_MS)).await;
        self.shared.lock().disposed = true;
        self.stop_pump();
        result
    }

    fn open_table(&self) -> Result<MutexGuard<'_, Table>> {
        let table = self.shared.lock();
        if table.disposed {
            return Err(disposed_error());
        }
        Ok(table)
    }

    /// Counts a failed message operation in the kernel's `errors`.
    pub(crate) fn count_error<T>(&self, id: &str, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if matches!(
                e,
                Error::MessageFormat { .. }
                    | Error::QueueFull { .. }
                    | Error::Timeout { .. }
                    | Error::KernelState { .. }
            ) {
                if let Some(kernel) = self.shared.lock().kernels.get_mut(id) {
                    kernel.counters.errors += 1;
                }
            }
        }
        result
    }

    fn stop_pump(&self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.wake_pump.notify(usize::MAX);
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_pump();
        self.pump.join();
    }
}

/// Compiles `definition` for `device`: its rings and pipeline on a GPU (natively on a helper
/// thread, so compiling never stalls the caller's executor), its host handler on the CPU.
/// `queue_size` sets the ring's slot count.
async fn create_exec(device: Arc<Device>, definition: Arc<KernelDefinition>, queue_size: usize) -> Result<KernelExec> {
    let id = definition.id.clone();
    match &*device {
        Device::Cpu(_) => CpuKernel::create(&definition).map(|cpu| KernelExec::Cpu(Arc::new(cpu))),
        Device::Gpu(_) => {
            // A power of two, so free-running indices map onto slots across wrap-around.
            let slots = (queue_size as u32).next_power_of_two();
            platform::run_detached(move || async move {
                let gpu = device.gpu().expect("matched above");
                GpuKernel::create(gpu, &definition, slots).await.map(|gpu| KernelExec::Gpu(Box::new(gpu)))
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

fn disposed_error() -> Error {
    Error::BackendUnavailable { reason: "the runtime has been disposed".into() }
}

fn kernel_mut<'t>(table: &'t mut Table, id: &str) -> Result<&'t mut Kernel> {
    table.kernels.get_mut(id).ok_or_else(|| Error::KernelNotFound { id: id.to_owned() })
}

fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 128 {
        return Err(Error::InvalidArgument(format!("kernel ids are 1 to 128 characters, got {}", id.len())));
    }
    Ok(())
}

fn deadline(timeout_ms: TimeoutMs) -> Result<Option<f64>> {
    match timeout_ms {
        None => Ok(None),
        Some(ms) if ms.is_finite() && ms >= 0.0 => Ok(Some(platform::now_ms() + ms)),
        Some(ms) => {
            Err(Error::InvalidArgument(format!("timeout must be a non-negative number of milliseconds, got {ms}")))
        }
    }
}

/// Waits for `listener` or the deadline; `false` when the deadline passed first.
pub(crate) async fn wait(listener: event_listener::EventListener, deadline: Option<f64>) -> bool {
    wait_for(listener, deadline).await.is_some()
}

/// Awaits `future` until the deadline; `None` when the deadline passed first.
async fn wait_for<F: Future + Unpin>(future: F, deadline: Option<f64>) -> Option<F::Output> {
    match deadline {
        None => Some(future.await),
        Some(deadline) => {
            let remaining = deadline - platform::now_ms();
            if remaining <= 0.0 {
                return None;
            }
            match futures_util::future::select(future, platform::sleep_ms(remaining)).await {
                futures_util::future::Either::Left((output, _)) => Some(output),
                futures_util::future::Either::Right(_) => None,
            }
        }
    }
}

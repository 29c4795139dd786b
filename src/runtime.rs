//! The runtime: the kernel table and every public operation (lifecycle, send, receive,
//! queries). GPU work happens only in the pump (`crate::pump`); operations here stage data on
//! the host, flip control flags, and wake the pump.
//!
//! # Waiting
//! Operations that wait (`send` on a full queue, `receive`, `terminate`) await an event that the
//! pump fires after each tick, raced against a timer; nothing blocks a thread on the web.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use event_listener::Event;

use crate::backend::gpu::{AdapterSummary, BackendChoice, GpuContext, GpuKernel, Readback};
use crate::error::{Error, Result};
use crate::kernel::{self, KernelDefinition};
use crate::lifecycle::{transition, Action, KernelState};
use crate::message::{MessageLayout, Value};
use crate::platform;
use crate::queue::{ControlBlock, PackedQueue};
use crate::telemetry::KernelTelemetry;

/// Options for [`Runtime::new`].
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    pub enable_telemetry: bool,
    /// Queue size for kernels launched without their own.
    pub default_queue_size: usize,
    pub backend: BackendChoice,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions { enable_telemetry: true, default_queue_size: 4096, backend: BackendChoice::Auto }
    }
}

/// Options for [`Runtime::launch`].
#[derive(Debug, Clone, Default)]
pub struct LaunchOptions {
    /// Bound of the host input queue and output queue, in messages (and the GPU ring's
    /// minimum slot count).
    pub queue_size: Option<usize>,
}

/// Largest queue a kernel may ask for: keeps a ring within WebGPU's default 128 MiB binding
/// for messages of up to 32 bytes.
pub const MAX_QUEUE_SIZE: usize = 1 << 22;

pub(crate) struct Kernel {
    pub def: Arc<KernelDefinition>,
    pub state: KernelState,
    pub gpu: Option<GpuKernel>,
    pub inbox: PackedQueue,
    pub outbox: PackedQueue,
    /// Host view of the GPU ring indices: `tail` is what we wrote, `head` what the GPU
    /// reported consumed at the last readback.
    pub gpu_head: u32,
    pub gpu_tail: u32,
    /// Fired whenever answers arrive, queue room frees up, or the state changes.
    pub changed: Arc<Event>,
    pub telemetry: KernelTelemetry,
}

impl Kernel {
    pub fn gpu_pending(&self) -> u32 {
        self.gpu_tail.wrapping_sub(self.gpu_head)
    }

    /// Whether the pump should dispatch this kernel: active, or draining while terminating.
    pub fn runs(&self) -> bool {
        matches!(self.state, KernelState::Active | KernelState::Terminating) && self.gpu.is_some()
    }

    fn set_control(&self, gpu: &GpuContext, offset: u64, value: u32) {
        if let Some(k) = &self.gpu {
            k.write_control(&gpu.queue, offset, value);
        }
    }
}

pub(crate) struct Table {
    pub kernels: HashMap<String, Kernel>,
    pub readback: Readback,
    /// First fatal GPU error; every later operation reports it.
    pub fatal: Option<Error>,
    pub disposed: bool,
}

pub(crate) struct Shared {
    pub gpu: GpuContext,
    pub options: RuntimeOptions,
    pub table: Mutex<Table>,
    /// Wakes the pump: new input, a state change, or queue room freed.
    pub wake_pump: Event,
    pub shutdown: AtomicBool,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, Table> {
        // A poisoned lock means a panic inside the runtime; keep serving rather than cascade.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Host runtime for ring kernels on one GPU device. Dropping it stops the pump.
pub struct Runtime {
    shared: Arc<Shared>,
}

/// How long to wait: `None` waits for as long as it takes.
pub type TimeoutMs = Option<f64>;

impl Runtime {
    /// Opens a GPU device and starts the pump. Fails with `BackendUnavailable` (naming what was
    /// tried) when no adapter exists.
    pub async fn new(options: RuntimeOptions) -> Result<Runtime> {
        let gpu = GpuContext::new(options.backend).await?;
        let shared = Arc::new(Shared {
            gpu,
            options,
            table: Mutex::new(Table {
                kernels: HashMap::new(),
                readback: Readback::new(),
                fatal: None,
                disposed: false,
            }),
            wake_pump: Event::new(),
            shutdown: AtomicBool::new(false),
        });
        platform::spawn_pump(crate::pump::run(shared.clone()));
        Ok(Runtime { shared })
    }

    /// The adapter this runtime's device came from.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.shared.gpu.adapter
    }

    /// Launches a registered kernel by id (see [`kernel::register`]).
    pub async fn launch(&self, id: &str, options: LaunchOptions) -> Result<()> {
        let definition = kernel::lookup(id).ok_or_else(|| Error::KernelNotFound { id: id.to_owned() })?;
        self.launch_definition((*definition).clone(), options).await
    }

    /// Launches `definition` under its own id: compiles its WGSL and allocates its GPU rings.
    pub async fn launch_definition(&self, definition: KernelDefinition, options: LaunchOptions) -> Result<()> {
        let id = definition.id.clone();
        validate_id(&id)?;
        let queue_size = options.queue_size.unwrap_or(self.shared.options.default_queue_size);
        if queue_size == 0 || queue_size > MAX_QUEUE_SIZE {
            return Err(Error::InvalidArgument(format!(
                "queueSize must be between 1 and {MAX_QUEUE_SIZE}, got {queue_size}"
            )));
        }
        let definition = Arc::new(definition);
        {
            // Reserve the id (state Created) so a concurrent launch of the same id is refused.
            let mut table = self.open_table()?;
            if let Some(existing) = table.kernels.get(&id) {
                return Err(Error::KernelState { id, state: existing.state, action: Action::Launch });
            }
            table.kernels.insert(
                id.clone(),
                Kernel {
                    def: definition.clone(),
                    state: KernelState::Created,
                    gpu: None,
                    inbox: PackedQueue::new(definition.input.size(), queue_size),
                    outbox: PackedQueue::new(definition.output.size(), queue_size),
                    gpu_head: 0,
                    gpu_tail: 0,
                    changed: Arc::new(Event::new()),
                    telemetry: KernelTelemetry::default(),
                },
            );
        }
        let slots = (queue_size as u32).next_power_of_two();
        let created = GpuKernel::create(&self.shared.gpu, &definition, slots).await;
        let mut table = self.shared.lock();
        match created {
            Ok(gpu) => {
                let kernel = table.kernels.get_mut(&id).expect("reserved above");
                kernel.state = transition(&id, kernel.state, Action::Launch)?;
                kernel.gpu = Some(gpu);
                kernel.changed.notify(usize::MAX);
                Ok(())
            }
            Err(e) => {
                table.kernels.remove(&id);
                Err(e)
            }
        }
    }

    /// LAUNCHED → ACTIVE: the pump starts dispatching the kernel.
    pub async fn activate(&self, id: &str) -> Result<()> {
        self.set_active(id, Action::Activate, true)
    }

    /// ACTIVE → DEACTIVATED: the GPU control flag goes off and input stays queued.
    pub async fn deactivate(&self, id: &str) -> Result<()> {
        self.set_active(id, Action::Deactivate, false)
    }

    /// DEACTIVATED → ACTIVE: queued input is processed, in order.
    pub async fn reactivate(&self, id: &str) -> Result<()> {
        self.set_active(id, Action::Reactivate, true)
    }

    fn set_active(&self, id: &str, action: Action, active: bool) -> Result<()> {
        let mut table = self.open_table()?;
        let kernel = kernel_mut(&mut table, id)?;
        kernel.state = transition(id, kernel.state, action)?;
        kernel.set_control(&self.shared.gpu, ControlBlock::ACTIVE_OFFSET, active as u32);
        kernel.changed.notify(usize::MAX);
        drop(table);
        self.shared.wake_pump.notify(usize::MAX);
        Ok(())
    }

    /// Graceful stop: queued and in-flight messages are processed first. Past `timeout_ms` the
    /// kernel is stopped anyway and the unprocessed count is recorded in its telemetry and
    /// returned in the `Timeout` error.
    pub async fn terminate(&self, id: &str, timeout_ms: TimeoutMs) -> Result<()> {
        let deadline = deadline(timeout_ms)?;
        let changed = {
            let mut table = self.open_table()?;
            let kernel = kernel_mut(&mut table, id)?;
            kernel.state = transition(id, kernel.state, Action::Terminate)?;
            // Drain even if it was paused or never activated: nothing queued is dropped.
            kernel.set_control(&self.shared.gpu, ControlBlock::ACTIVE_OFFSET, 1);
            kernel.changed.notify(usize::MAX);
            kernel.changed.clone()
        };
        self.shared.wake_pump.notify(usize::MAX);
        loop {
            let listener = changed.listen();
            {
                let mut table = self.shared.lock();
                let fatal = table.fatal.clone();
                let kernel = kernel_mut(&mut table, id)?;
                let drained = kernel.inbox.is_empty() && kernel.gpu_pending() == 0;
                let timed_out = deadline.is_some_and(|d| platform::now_ms() >= d);
                if drained || timed_out || fatal.is_some() {
                    let unprocessed = kernel.inbox.len() as u64 + kernel.gpu_pending() as u64;
                    kernel.state = transition(id, kernel.state, Action::Finish)?;
                    kernel.telemetry.unprocessed_at_termination = unprocessed;
                    kernel.set_control(&self.shared.gpu, ControlBlock::TERMINATE_OFFSET, 1);
                    // Dropping (not destroying) lets wgpu free the rings once in-flight work ends.
                    kernel.gpu = None;
                    kernel.changed.notify(usize::MAX);
                    if let Some(fatal) = fatal {
                        return Err(fatal);
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

    /// Terminates every kernel that can be terminated; the first failure is returned after all
    /// have been tried.
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
        let mut first_error = None;
        for id in ids {
            if let Err(e) = self.terminate(&id, timeout_ms).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Forgets a terminated kernel so its id can be launched again.
    pub fn remove(&self, id: &str) -> Result<()> {
        let mut table = self.open_table()?;
        let kernel = kernel_mut(&mut table, id)?;
        if kernel.state != KernelState::Terminated {
            return Err(Error::KernelState { id: id.to_owned(), state: kernel.state, action: Action::Finish });
        }
        table.kernels.remove(id);
        Ok(())
    }

    /// Terminates all kernels, stops the pump and releases the device. Later calls fail.
    pub async fn dispose(&self) -> Result<()> {
        let result = self.terminate_all(Some(5000.0)).await;
        self.shared.lock().disposed = true;
        self.stop_pump();
        result
    }

    /// Queues packed messages (already in the kernel's input layout). Waits up to `timeout_ms`
    /// for room and returns how many whole messages were accepted; the rest were not queued.
    pub async fn send_packed(&self, id: &str, packed: &[u8], timeout_ms: TimeoutMs) -> Result<usize> {
        let deadline = deadline(timeout_ms)?;
        let mut accepted = 0;
        loop {
            let listener = {
                let mut table = self.open_table()?;
                let kernel = kernel_mut(&mut table, id)?;
                if !kernel.state.accepts_messages() {
                    return Err(Error::KernelState { id: id.to_owned(), state: kernel.state, action: Action::Send });
                }
                let stride = kernel.inbox.stride();
                if packed.len() % stride != 0 {
                    return Err(Error::MessageFormat {
                        id: id.to_owned(),
                        field: kernel.def.input.name().to_owned(),
                        problem: format!(
                            "packed batch of {} bytes is not a whole number of {stride}-byte messages",
                            packed.len()
                        ),
                    });
                }
                let pushed = kernel.inbox.push_many(&packed[accepted * stride..]);
                accepted += pushed;
                kernel.telemetry.messages_sent += pushed as u64;
                let listener = kernel.changed.listen();
                if pushed > 0 {
                    self.shared.wake_pump.notify(usize::MAX);
                }
                if accepted * stride == packed.len() {
                    return Ok(accepted);
                }
                listener
            };
            if !wait(listener, deadline).await {
                return Ok(accepted);
            }
        }
    }

    /// Queues one message given as named values. Waits up to `timeout_ms` for room, then
    /// fails with `QueueFull`.
    pub async fn send(&self, id: &str, fields: &[(&str, Value)], timeout_ms: TimeoutMs) -> Result<()> {
        let packed = self.encode(id, fields)?;
        self.send_one(id, &packed, timeout_ms).await
    }

    /// Queues one `#[repr(C)]` message whose bytes match the kernel's input layout.
    pub async fn send_pod<T: bytemuck::Pod>(&self, id: &str, message: &T, timeout_ms: TimeoutMs) -> Result<()> {
        self.send_one(id, bytemuck::bytes_of(message), timeout_ms).await
    }

    async fn send_one(&self, id: &str, packed: &[u8], timeout_ms: TimeoutMs) -> Result<()> {
        let layout = self.input_layout(id)?;
        if packed.len() != layout.size() {
            return Err(Error::MessageFormat {
                id: id.to_owned(),
                field: layout.name().to_owned(),
                problem: format!("is {} bytes, got {}", layout.size(), packed.len()),
            });
        }
        match self.send_packed(id, packed, timeout_ms).await? {
            1 => Ok(()),
            _ => Err(Error::QueueFull { id: id.to_owned(), capacity: self.queue_size(id)? }),
        }
    }

    /// Packs named values into the kernel's input layout.
    pub fn encode(&self, id: &str, fields: &[(&str, Value)]) -> Result<Vec<u8>> {
        let layout = self.input_layout(id)?;
        let mut packed = vec![0u8; layout.size()];
        layout.encode(fields.iter().map(|(n, v)| (*n, v)), &mut packed).map_err(|e| Error::MessageFormat {
            id: id.to_owned(),
            field: e.field,
            problem: e.problem,
        })?;
        Ok(packed)
    }

    /// Takes the next answer, packed in the output layout. Waits up to `timeout_ms` (forever
    /// when `None`), then fails with `Timeout`.
    pub async fn receive_packed(&self, id: &str, timeout_ms: TimeoutMs) -> Result<Vec<u8>> {
        let mut batch = self.receive_batch_packed(id, 1, timeout_ms).await?;
        batch.truncate(self.output_layout(id)?.size());
        Ok(batch)
    }

    /// Takes up to `max` answers at once (at least one), packed back to back.
    pub async fn receive_batch_packed(&self, id: &str, max: usize, timeout_ms: TimeoutMs) -> Result<Vec<u8>> {
        let deadline = deadline(timeout_ms)?;
        loop {
            let listener = {
                let mut table = self.open_table()?;
                let fatal = table.fatal.clone();
                let kernel = kernel_mut(&mut table, id)?;
                if !kernel.outbox.is_empty() {
                    let taken = kernel.outbox.pop_many(max.max(1));
                    kernel.telemetry.messages_received += (taken.len() / kernel.outbox.stride()) as u64;
                    // Room in the output queue lets the pump dispatch more.
                    self.shared.wake_pump.notify(usize::MAX);
                    return Ok(taken);
                }
                if let Some(fatal) = fatal {
                    return Err(fatal);
                }
                if matches!(kernel.state, KernelState::Terminated) {
                    return Err(Error::KernelState { id: id.to_owned(), state: kernel.state, action: Action::Receive });
                }
                kernel.changed.listen()
            };
            if !wait(listener, deadline).await {
                return Err(Error::Timeout {
                    id: id.to_owned(),
                    operation: "receive".into(),
                    timeout_ms: timeout_ms.unwrap_or(0.0),
                });
            }
        }
    }

    /// Takes the next answer as named values.
    pub async fn receive(&self, id: &str, timeout_ms: TimeoutMs) -> Result<Vec<(String, Value)>> {
        let packed = self.receive_packed(id, timeout_ms).await?;
        Ok(self.output_layout(id)?.decode(&packed))
    }

    /// Takes the next answer as a `#[repr(C)]` value matching the output layout.
    pub async fn receive_pod<T: bytemuck::Pod>(&self, id: &str, timeout_ms: TimeoutMs) -> Result<T> {
        let packed = self.receive_packed(id, timeout_ms).await?;
        bytemuck::try_pod_read_unaligned(&packed).map_err(|_| Error::MessageFormat {
            id: id.to_owned(),
            field: std::any::type_name::<T>().to_owned(),
            problem: format!("is {} bytes but answers are {}", std::mem::size_of::<T>(), packed.len()),
        })
    }

    pub fn state(&self, id: &str) -> Result<KernelState> {
        Ok(kernel_mut(&mut self.shared.lock(), id)?.state)
    }

    /// Ids of every kernel in the table, sorted.
    pub fn kernel_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.shared.lock().kernels.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Ids of the kernels in the ACTIVE state, sorted.
    pub fn active_kernels(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .shared
            .lock()
            .kernels
            .iter()
            .filter(|(_, k)| k.state == KernelState::Active)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The kernel's counters, or `None` when telemetry is disabled.
    pub fn telemetry(&self, id: &str) -> Result<Option<KernelTelemetry>> {
        let mut table = self.shared.lock();
        let kernel = kernel_mut(&mut table, id)?;
        if !self.shared.options.enable_telemetry {
            return Ok(None);
        }
        let mut t = kernel.telemetry.clone();
        t.input_queue_depth = kernel.inbox.len();
        t.in_flight = kernel.gpu_pending() as usize;
        t.output_queue_depth = kernel.outbox.len();
        Ok(Some(t))
    }

    pub fn input_layout(&self, id: &str) -> Result<MessageLayout> {
        Ok(kernel_mut(&mut self.shared.lock(), id)?.def.input.clone())
    }

    pub fn output_layout(&self, id: &str) -> Result<MessageLayout> {
        Ok(kernel_mut(&mut self.shared.lock(), id)?.def.output.clone())
    }

    pub fn queue_size(&self, id: &str) -> Result<usize> {
        Ok(kernel_mut(&mut self.shared.lock(), id)?.inbox.capacity())
    }

    fn open_table(&self) -> Result<MutexGuard<'_, Table>> {
        let table = self.shared.lock();
        if table.disposed {
            return Err(Error::BackendUnavailable { reason: "the runtime has been disposed".into() });
        }
        if let Some(fatal) = &table.fatal {
            return Err(fatal.clone());
        }
        Ok(table)
    }

    fn stop_pump(&self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.wake_pump.notify(usize::MAX);
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_pump();
    }
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
async fn wait(listener: event_listener::EventListener, deadline: Option<f64>) -> bool {
    match deadline {
        None => {
            listener.await;
            true
        }
        Some(deadline) => {
            let remaining = deadline - platform::now_ms();
            if remaining <= 0.0 {
                return false;
            }
            let timer = platform::sleep_ms(remaining);
            match futures_util::future::select(listener, timer).await {
                futures_util::future::Either::Left(_) => true,
                futures_util::future::Either::Right(_) => platform::now_ms() < deadline,
            }
        }
    }
}

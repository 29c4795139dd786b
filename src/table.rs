//! The kernel table: what the runtime's operations and the tick share. Each kernel is a handful
//! of named parts, each changed by the module that owns it:
//!
//! | part | type | owned by |
//! |---|---|---|
//! | where it is in its life | [`Lifecycle`] | `lifecycle` |
//! | queues and the correlation ledger | [`Mailbox`] | `mailbox`, `correlation` |
//! | what the backend holds of its input | [`RingCursor`] | `cursor` |
//! | counters | [`Counters`] | `telemetry` |
//! | its pipeline neighbours | [`Route`] | `runtime::routing` |
//! | its device resources | [`Resources`] | `backend`, `recovery` |
//! | its circuit breaker, when enabled | [`Breaker`] | `circuit` (fed by the runtime and the tick) |

use std::cell::Cell;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use event_listener::Event;

use crate::backend::{BufferStats, Device, DeviceSource, KernelExec, StateStore};
use crate::circuit::{Breaker, CircuitBreakerConfig, CircuitState};
use crate::cursor::RingCursor;
use crate::degradation::Degrader;
use crate::device_events::DeviceEventLog;
use crate::devices::DeviceId;
use crate::envelope::Clock;
use crate::error::{Error, Quoted, Result, Stall};
use crate::kernel::{DispatchShape, KernelDefinition};
use crate::lifecycle::{Action, IllegalTransition, KernelMode, KernelState, Lifecycle, LifecycleState};
use crate::mailbox::{HostQueueBytes, Mailbox};
use crate::memory::AlertWatches;
use crate::shared_device::SharedDevice;
use crate::telemetry::{Counters, ShutdownReport};
use crate::turn::TickTurn;
use crate::watchdog::{staleness, WatchdogConfig};

/// One launched kernel.
pub(crate) struct Kernel {
    pub def: Arc<KernelDefinition>,
    /// The device it runs on (see [`crate::devices`]); migration moves it.
    pub device: DeviceId,
    /// The tick leaves it out: a migration is moving it (until the move is done), or a
    /// terminate that ran out of time waits for the tick it is in to deliver.
    pub held_out: bool,
    /// The tick leaves it out for a state write, which waits for the tick it is in to deliver
    /// (apart from `held_out`, which a terminate may set meanwhile and a write must not clear).
    pub writing: bool,
    /// A tick on its device has it planned and not yet delivered (migration waits for that).
    pub in_tick: bool,
    /// A terminate whose caller went away (its future dropped) left it `Terminating`: it ends,
    /// as that terminate would have, once nothing is left to process (see [`Self::finish`]).
    pub ends_when_drained: bool,
    pub mode: KernelMode,
    /// Most messages per dispatch (see `LaunchOptions::max_batch`).
    pub max_batch: u32,
    /// Its place when a tick is bounded, and under load (see `LaunchOptions::priority`).
    pub priority: i32,
    /// When a bounded tick last served it (the runtime's tick count then, 0: never): of kernels
    /// of one stage and priority, the one served longest ago goes first.
    pub served: u64,
    /// What the tick plan being made worked out for it (see [`PlanMark`]).
    pub plan_mark: Cell<PlanMark>,
    /// The latency p99 it should keep, in milliseconds (see `LaunchOptions::latency_budget`).
    pub latency_budget_ms: Option<f64>,
    /// Milliseconds between copies of its GPU state as the checkpoint (0: every tick; infinite:
    /// never; see `LaunchOptions::checkpoint_interval`).
    pub checkpoint_interval_ms: f64,
    /// How its GPU dispatches are shaped (kept for relaunching it after a lost device).
    pub shape: DispatchShape,
    /// Tells launches of the same id apart, so a tick planned for a kernel that was removed
    /// and launched again never delivers into the new one.
    pub instance: u64,
    pub life: Lifecycle,
    pub mailbox: Mailbox,
    pub cursor: RingCursor,
    pub counters: Counters,
    pub route: Route,
    pub resources: Resources,
    /// `None` unless the runtime enables circuit breakers.
    pub breaker: Option<Breaker>,
    /// Fired whenever answers arrive, queue room frees up, or the state changes.
    pub changed: Arc<Event>,
    /// Set when it is removed; its handles share it, so a handle never reaches a kernel
    /// launched later under the same id (another actor).
    pub removed: Arc<AtomicBool>,
    /// Why the terminate that ended it failed (messages left unprocessed), for the terminates
    /// that waited with it; `None` while it runs and after a drain that processed everything.
    pub ended: Option<Error>,
    /// Why recovery could not rebuild it on its device, which came back without it (a
    /// recovered browser adapter without a feature its handler enables): it stays `Failed`,
    /// stranded, until a migration runs it elsewhere or a terminate ends it.
    pub unrecovered: Option<String>,
}

/// What a tick's plan worked out for one kernel, kept on the kernel so the plan needs no map
/// of its own (the `tick::plan` module): it holds for the plan numbered `plan` only
/// ([`Table::plans`]), so no plan has to clear what an earlier one left.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PlanMark {
    /// The plan it was made in.
    pub plan: u64,
    /// Its forward room this tick, once worked out.
    pub room: Option<usize>,
    /// The plan index of the kernel that forwards its answers into it on the device this tick.
    pub fed_by: Option<usize>,
}

impl PlanMark {
    /// `kernel`'s mark in plan `plan`: empty when it holds an earlier plan's.
    pub fn of(kernel: &Kernel, plan: u64) -> PlanMark {
        Some(kernel.plan_mark.get())
            .filter(|mark| mark.plan == plan)
            .unwrap_or(PlanMark { plan, ..PlanMark::default() })
    }
}

/// A kernel's neighbours in a pipeline (see `Runtime::connect`).
#[derive(Debug, Default)]
pub(crate) struct Route {
    /// The kernel this one's answers go to instead of the host.
    pub downstream: Option<String>,
    /// The kernel whose answers come in here.
    pub upstream: Option<String>,
    /// How many kernels feed this one, one after another (0 for a pipeline's first stage): kept
    /// by `connect`, `disconnect` and a terminate's detach, so a tick orders its stages without
    /// walking up every pipeline.
    pub depth: usize,
}

/// What a kernel holds on its device.
#[derive(Default)]
pub(crate) struct Resources {
    /// Rings and pipelines (GPU) or the host handler (CPU); `None` until launched, after
    /// terminate, and while its device is lost.
    pub exec: Option<KernelExec>,
    /// The handler's state array, kept past termination so final results can be read, until
    /// the kernel is removed.
    pub state: Option<StateStore>,
    /// The state array as of the last tick that copied it back: what recovery restores (GPU
    /// only).
    pub checkpoint: Option<Vec<u8>>,
    /// When that checkpoint was taken, or the kernel's launch began (its zeroed state its
    /// first checkpoint), in `platform::now_ms`.
    pub checkpoint_at_ms: f64,
    /// A tick ran its handler since the checkpoint without copying the state back (a
    /// checkpoint interval): a migration, or the terminate that ends the kernel, catches it up
    /// (see the `checkpoint` module).
    pub checkpoint_behind: bool,
}

impl Kernel {
    /// Whether the tick should dispatch this kernel: active or draining, with resources (a
    /// migrating kernel runs, on the device it moves to, once the move is done).
    pub fn runs(&self) -> bool {
        self.life.runs() && self.resources.exec.is_some()
    }

    /// Why this failed kernel runs nothing: its device's loss, or, its device recovered, why
    /// it could not be rebuilt there.
    pub fn failure(&self, id: &str, device: &DeviceStatus) -> Error {
        let reason = match (&device.lost, &self.unrecovered) {
            (Some(lost), _) => return lost.clone(),
            (None, Some(unrecovered)) => format!("kernel {} {unrecovered}", Quoted(id)),
            (None, None) => format!("kernel {} is waiting for recovery", Quoted(id)),
        };
        Error::DeviceLost { reason }
    }

    /// Fires the kernel's `changed` event.
    pub fn notify(&self) {
        self.changed.notify(usize::MAX);
    }

    /// Whether the tick leaves it out: a migration, a terminate or a state write holds it.
    pub fn out_of_ticks(&self) -> bool {
        self.held_out || self.writing
    }

    /// Ends a `Terminating` kernel: `Terminated`, its rings dropped (destroyed on the web; see
    /// `GpuBuffer`'s `Drop`), what is still queued or unanswered (`unprocessed` messages)
    /// dropped and its calls cancelled; `ended` is what the terminates waiting with it return.
    pub fn finish(&mut self, unprocessed: u64, ended: Option<Error>) -> std::result::Result<(), IllegalTransition> {
        self.life.apply(Action::Finish)?;
        self.held_out = false;
        self.ends_when_drained = false;
        self.counters.unprocessed_at_termination = unprocessed;
        self.counters.stopped_at_ms = Some(crate::platform::now_ms());
        self.resources.exec = None;
        self.mailbox.inbox.clear();
        self.cursor.stopped();
        self.mailbox.ledger.cancel_unanswered();
        self.ended = ended;
        self.notify();
        Ok(())
    }

    /// Ends a kernel whose terminate's caller went away, once it has nothing left to process.
    pub fn finish_if_drained(&mut self) {
        if self.ends_when_drained && self.input_depth() == 0 && !self.in_tick {
            // Only a kernel terminating (or failed while it was) is marked, and whatever ends it
            // clears the mark.
            let _ = self.finish(0, None);
        }
    }

    /// Messages accepted and not yet answered: queued on the host and in flight.
    pub fn input_depth(&self) -> usize {
        self.mailbox.inbox.len() + self.cursor.in_flight() as usize
    }

    /// Why the kernel processes none of its input now, where the kernel itself is the reason:
    /// it is not active, or its output queue is full while its answers go there (not while they
    /// go to a next stage, nor while it terminates: the plan then pays no heed to that queue).
    /// Only meaningful while it has input.
    pub fn stall(&self) -> Option<Stall> {
        let state = self.life.state();
        if !matches!(state, KernelState::Active | KernelState::Terminating) {
            return Some(Stall::Inactive(state));
        }
        let answers_here = state == KernelState::Active && self.route.downstream.is_none();
        (answers_here && self.mailbox.outbox.free() == 0)
            .then(|| Stall::OutputFull { answers: self.mailbox.outbox.len() })
    }

    /// [`stall`](Self::stall) when the kernel has input waiting, else `None` (an idle kernel
    /// explains no wait).
    pub fn stall_with_input(&self) -> Option<Stall> {
        self.stall().filter(|_| self.input_depth() > 0)
    }

    /// How long the kernel has been stale at `now_ms` with the watchdog's `timeout`: it runs,
    /// has input, and made no progress for that long (see [`crate::watchdog`]).
    pub fn stale_for(&self, now_ms: f64, timeout: Duration) -> Option<Duration> {
        if !self.runs() {
            return None;
        }
        staleness(self.input_depth(), self.counters.heartbeat_ms, now_ms, timeout)
    }

    /// The watchdog's heartbeat (see [`crate::watchdog`]): progress, or work arriving at an idle
    /// kernel, or a state change.
    pub fn beat(&mut self, now_ms: f64) {
        self.counters.heartbeat_ms = now_ms;
    }

    /// Where its circuit is (`Closed` when breakers are off).
    pub fn circuit_state(&self, now_ms: f64) -> CircuitState {
        self.breaker.as_ref().map_or(CircuitState::Closed, |b| b.state(now_ms))
    }

    /// `CircuitOpen` when its breaker refuses new work now.
    pub fn circuit_check(&self, id: &str, now_ms: f64) -> Result<()> {
        match self.breaker.as_ref().map(|b| b.check(now_ms)) {
            Some(Err(retry_after)) => Err(Error::CircuitOpen { id: id.to_owned(), retry_after }),
            _ => Ok(()),
        }
    }

    /// Work was let through its breaker (a probe, while half-open).
    pub fn circuit_admit(&mut self, now_ms: f64) {
        if let Some(breaker) = &mut self.breaker {
            breaker.admit(now_ms);
        }
    }

    /// `count` failures of the kernel (see `Counters::failures`), for its breaker if it has one:
    /// messages its handler failed, or operations that failed beside them.
    pub fn circuit_failures(&mut self, count: u64, what: Failed, now_ms: f64) {
        self.counters.failures += count;
        if what == Failed::Operations {
            self.counters.failed_operations += count;
        }
        if let Some(breaker) = &mut self.breaker {
            for _ in 0..count.min(u32::MAX as u64) {
                breaker.failure(now_ms);
            }
        }
    }

    /// A success for its breaker: a tick answered its messages without a handler error.
    pub fn circuit_success(&mut self, now_ms: f64) {
        if let Some(breaker) = &mut self.breaker {
            breaker.success(now_ms);
        }
    }
}

/// What failed, for [`Kernel::circuit_failures`]: messages the kernel processed (its handler's
/// errors, already among the messages processed), or operations beside them (timed-out calls
/// and receives, a lost device, an operation run under its breaker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failed {
    Messages,
    Operations,
}

/// One device's health as recovery tracks it, and its ticks.
#[derive(Debug, Default)]
pub(crate) struct DeviceStatus {
    /// Why the device was lost, until recovery replaces it.
    pub lost: Option<Error>,
    /// Counts device losses; a tick that ran on an earlier device delivers nothing.
    pub generation: u64,
    pub recoveries: u64,
    /// Why the last recovery attempt failed, if it did.
    pub recovery_error: Option<String>,
    /// Automatic recovery made its last attempt at this loss and failed: the device comes back
    /// only with a `recover`, so terminates stop waiting for it (their kernels are stranded).
    pub auto_recovery_spent: bool,
    /// Recoveries of this device asked for and not yet ended, waiting for their turn or under
    /// way (health calls a lost device recovering then; a migration, which takes the same turn,
    /// is none).
    pub recovering: u32,
    /// Ticks that did work on this device.
    pub ticks: u64,
    /// Messages its ticks processed, by whichever kernels ran there then: a count that only
    /// grows, as a kernel migrates away or is removed.
    pub messages_processed: u64,
    /// The application's own device ([`SharedDevice`]): only the application brings it back,
    /// never automatic recovery. Read it with [`DeviceStatus::is_shared`].
    shared: bool,
}

impl DeviceStatus {
    /// Whether this device, lost, comes back without the application: a recovery is asked for
    /// or under way, or automatic recovery (`auto_recover`) has attempts left.
    pub fn recovering(&self, auto_recover: bool) -> bool {
        self.auto_recovers(auto_recover) || self.recovering > 0
    }

    /// Whether it is the application's own device ([`SharedDevice`]): never on wasm32, where
    /// none can be made, so the compiler drops what handles one there.
    pub fn is_shared(&self) -> bool {
        cfg!(not(target_arch = "wasm32")) && self.shared
    }

    /// Whether automatic recovery (`auto_recover`) still tries to bring this device back: it has
    /// attempts left, and the device is not the application's.
    pub fn auto_recovers(&self, auto_recover: bool) -> bool {
        auto_recover && !self.is_shared() && !self.auto_recovery_spent
    }

    /// Why the device is lost, if it is, as the summary and health report it.
    pub fn lost_reason(&self) -> Option<String> {
        self.lost.as_ref().map(|lost| match lost {
            Error::DeviceLost { reason } => reason.clone(),
            other => other.to_string(),
        })
    }
}

/// Every kernel by id, and what the runtime knows beside them.
#[derive(Default)]
pub(crate) struct Table {
    pub kernels: HashMap<String, Kernel>,
    /// Ticks that did work (reported in the summary).
    pub ticks: u64,
    /// Tick plans made so far, each kernel's [`PlanMark`] naming the one it belongs to.
    pub plans: u64,
    /// Where those ticks' time went, step by step.
    pub tick_time: crate::telemetry::TickTime,
    /// Kernels launched so far, removed ones included.
    pub launched: u64,
    /// Each device's status, by [`DeviceId`].
    pub devices: Vec<DeviceStatus>,
    /// Launches placed round-robin so far (see [`crate::devices::LoadBalancing`]).
    pub placed: usize,
    /// Kernels moved between devices (the shutdown report's `migrated_kernels`).
    pub migrations: u64,
    /// What the host queues of every kernel here hold when full (kept by
    /// [`insert_kernel`](Self::insert_kernel) and [`remove_kernel`](Self::remove_kernel)): a
    /// launch on the web is refused past what wasm memory can hold.
    pub host_queue_bytes: HostQueueBytes,
    /// The runtime's own lifecycle (see [`LifecycleState`]).
    pub state: LifecycleState,
    /// What removed kernels leave behind for the shutdown report.
    pub retired: Retired,
    /// The report, once the runtime has stopped (a second shutdown hands it back).
    pub report: Option<ShutdownReport>,
    /// A shutdown has begun: the kernels it terminates let go of their state with the runtime,
    /// so their terminates read no final state back (see the `checkpoint` module).
    pub stopping: bool,
    /// What the kernel watchdog calls stale and does about it (changeable at run time).
    pub watchdog: WatchdogConfig,
    /// The degradation manager, when the runtime has one (see [`crate::degradation`]).
    pub degrader: Option<Degrader>,
    /// The hybrid logical clock and message ids of envelopes (see [`crate::envelope`]).
    pub clock: Clock,
    /// What happened to the devices lately, for readers of the runtime's device events.
    pub device_events: DeviceEventLog,
}

/// The counts of removed kernels that the shutdown report still owes.
#[derive(Debug, Default)]
pub(crate) struct Retired {
    pub kernels: u64,
    pub messages_sent: u64,
    pub messages_received: u64,
    pub messages_processed: u64,
    pub messages_unprocessed: u64,
    pub answers_never_received: u64,
}

impl Table {
    /// Adds a kernel (its id reserved), counting its host queues.
    pub fn insert_kernel(&mut self, id: String, kernel: Kernel) {
        self.host_queue_bytes.add(kernel.mailbox.host_queue_bytes());
        self.kernels.insert(id, kernel);
    }

    /// Sets the depth of `id` to `depth`, and of each stage after it to one more.
    pub fn set_depths(&mut self, id: &str, mut depth: usize) {
        let mut at = Some(id.to_owned());
        while let Some(kernel) = at.and_then(|id| self.kernels.get_mut(&id)) {
            kernel.route.depth = depth;
            depth += 1;
            at = kernel.route.downstream.clone();
        }
    }

    /// Takes kernel `id` out, and its host queues out of the count.
    pub fn remove_kernel(&mut self, id: &str) -> Option<Kernel> {
        let kernel = self.kernels.remove(id)?;
        self.host_queue_bytes.sub(kernel.mailbox.host_queue_bytes());
        Some(kernel)
    }

    /// Why kernel `id` processes none of its input now: its own reason ([`Kernel::stall`]), or
    /// its answers go to a next stage that is stalled itself (paused, its answers unreceived,
    /// or held by its own next stage) and has no room for them, as the tick's plan sees it
    /// (`tick::plan`'s `answer_room`): on the device such a stage takes nothing; relayed
    /// through the host, it takes what fits its queue, or nothing while it is not active. A
    /// next stage that is merely busy, its queue full while it works, is no stall.
    pub fn stall(&self, id: &str) -> Option<Stall> {
        let (at, stall) = self.stall_cause(id)?;
        Some(if at == id { stall } else { Stall::NextStageStalled })
    }

    /// [`stall`](Self::stall) when the kernel has input waiting, else `None`.
    pub fn stall_with_input(&self, id: &str) -> Option<Stall> {
        self.stall(id).filter(|_| self.kernels.get(id).is_some_and(|k| k.input_depth() > 0))
    }

    /// The stage whose own stall ([`Kernel::stall`]) is why `id` stalls, with that stall: `id`
    /// itself, or the first stage down its pipeline that stalls by itself (paused, or its
    /// answers unreceived) and so holds every stage before it, each of which has no room for
    /// its answers at the next (see [`stall`](Self::stall)). `None` when `id` does not stall.
    pub fn stall_cause(&self, id: &str) -> Option<(&str, Stall)> {
        let (mut at, mut kernel) = self.kernels.get_key_value(id)?;
        loop {
            if let Some(stall) = kernel.stall() {
                return Some((at, stall));
            }
            let (next_id, next) = self.kernels.get_key_value(kernel.route.downstream.as_deref()?)?;
            let on_device = next.device == kernel.device && matches!(kernel.resources.exec, Some(KernelExec::Gpu(_)));
            let paused = matches!(next.stall(), Some(Stall::Inactive(_)));
            if !(on_device || paused || next.mailbox.inbox.free() == 0) {
                return None;
            }
            (at, kernel) = (next_id, next);
        }
    }

    /// Why a receive from `id` gets no answer: the kernel's own stall while it has input, or,
    /// for a later stage of a pipeline, the stall that holds the input waiting at an earlier
    /// stage (the kernel's own when it is the stage that holds it, else
    /// [`Stall::UpstreamStalled`]), with the earlier stage where that input waits.
    pub fn receive_stall(&self, id: &str) -> Option<(Stall, Option<&str>)> {
        if let Some(stall) = self.stall_with_input(id) {
            return Some((stall, None));
        }
        let mut up = self.kernels.get(id)?.route.upstream.as_deref();
        while let Some(stage) = up {
            let kernel = self.kernels.get(stage)?;
            if kernel.input_depth() > 0 {
                if let Some((cause, stall)) = self.stall_cause(stage) {
                    return Some((if cause == id { stall } else { Stall::UpstreamStalled }, Some(stage)));
                }
            }
            up = kernel.route.upstream.as_deref();
        }
        None
    }

    /// Kernel `id` if it is still launch `instance`: not removed, nor launched again under its
    /// id, since.
    pub fn launch_of(&mut self, id: &str, instance: u64) -> Option<&mut Kernel> {
        self.kernels.get_mut(id).filter(|k| k.instance == instance)
    }

    /// The kernel `id`, or `KernelNotFound`.
    pub fn kernel(&mut self, id: &str) -> Result<&mut Kernel> {
        self.kernels.get_mut(id).ok_or_else(|| Error::KernelNotFound { id: id.to_owned() })
    }

    /// The kernel `id` and, beside it, its device's status (why it was lost, if it was), both
    /// from one borrow of the table.
    pub fn kernel_on_device(&mut self, id: &str) -> Result<(&mut Kernel, &DeviceStatus)> {
        let kernel = self.kernels.get_mut(id).ok_or_else(|| Error::KernelNotFound { id: id.to_owned() })?;
        let device = &self.devices[kernel.device.index()];
        Ok((kernel, device))
    }

    /// The worst lost device, by index (each recovers on its own; one is enough to degrade):
    /// one whose last recovery failed, else one waiting for `recover()`, else one recovering,
    /// the first of each, so no device that needs the application is hidden behind one that
    /// does not. `auto_recover`: the runtime's setting.
    pub fn worst_lost_device(&self, auto_recover: bool) -> Option<(usize, &DeviceStatus)> {
        let rank = |d: &DeviceStatus| 2 * u8::from(d.recovery_error.is_none()) + u8::from(d.recovering(auto_recover));
        let mut worst: Option<(usize, &DeviceStatus)> = None;
        for (id, device) in self.devices.iter().enumerate().filter(|(_, d)| d.lost.is_some()) {
            if worst.is_none_or(|(_, that)| rank(device) < rank(that)) {
                worst = Some((id, device));
            }
        }
        worst
    }

    /// The status of `device`.
    pub fn device(&mut self, device: DeviceId) -> &mut DeviceStatus {
        &mut self.devices[device.index()]
    }

    /// Ids of the kernels the tick of `device` dispatches now (not moving between devices),
    /// sorted; every device's with `None`.
    pub fn running_ids(&self, device: Option<DeviceId>) -> Vec<String> {
        sorted(self.running_ids_where(device, &|_| true))
    }

    /// [`running_ids`](Self::running_ids) of the kernels `keep` keeps, in no order: the tick's
    /// plan, its caller, orders them by a key of its own, so sorting them here too would be a
    /// second sort every tick.
    pub fn running_ids_where(&self, device: Option<DeviceId>, keep: &dyn Fn(&Kernel) -> bool) -> Vec<String> {
        self.unsorted_ids_where(&|k| device.is_none_or(|d| k.device == d) && !k.out_of_ticks() && k.runs() && keep(k))
    }

    /// Ids of the kernels `keep` keeps, sorted.
    pub fn ids_where(&self, keep: &dyn Fn(&Kernel) -> bool) -> Vec<String> {
        sorted(self.unsorted_ids_where(keep))
    }

    /// Ids of the kernels `keep` keeps, in the map's order. Every list of ids is made here: each
    /// caller's own filter and `collect` was a copy of `Vec`'s `from_iter` in the wasm.
    fn unsorted_ids_where(&self, keep: &dyn Fn(&Kernel) -> bool) -> Vec<String> {
        self.kernels.iter().filter(|(_, k)| keep(k)).map(|(id, _)| id.clone()).collect()
    }
}

/// `ids`, sorted. Through a heap, as the tick's plan is: the wasm links no `sort`, whose code for
/// `String` made it 1,380 bytes larger gzipped.
pub(crate) fn sorted(ids: Vec<String>) -> Vec<String> {
    BinaryHeap::from(ids).into_sorted_vec()
}

/// How the runtime was configured, as the table's users need it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub enable_telemetry: bool,
    pub auto_recover: bool,
    /// Most messages one tick takes from all input queues together.
    pub tick_budget: Option<usize>,
    /// Spans around launches, ticks and recoveries ([`crate::spans`]).
    pub tracing: bool,
    /// Each kernel's circuit breaker, or `None` for none.
    pub circuit_breaker: Option<CircuitBreakerConfig>,
    /// The device bytes memory pressure is measured against.
    pub memory_budget: Option<u64>,
}

/// One device of the runtime and what recovery opens in its place when it is lost.
pub(crate) struct DeviceSlot {
    /// Replaced by recovery when the device is lost.
    device: RwLock<Arc<Device>>,
    source: DeviceSource,
    /// For the application's device: the one it handed for recovery to use next (see
    /// `Runtime::replace_shared_device`), until a recovery takes it.
    replacement: Mutex<Option<SharedDevice>>,
    /// Whose tick it is: the tick loop's, or a caller's that runs it instead of waiting.
    turn: TickTurn,
}

/// What a runtime and its tick loops share.
pub(crate) struct Shared {
    /// Every device, by [`DeviceId`].
    devices: Vec<DeviceSlot>,
    pub settings: Settings,
    table: Mutex<Table>,
    /// Wakes the tick loops: new input, a state change, queue room freed, or a lost device.
    pub wake: Arc<Event>,
    /// How many times [`Shared::wake`] was called: the tick loop watches it to let a burst of
    /// sends finish arriving before it plans (see [`crate::platform::settle`]).
    wakes: AtomicUsize,
    shutdown: AtomicBool,
    pub created_at_ms: f64,
    /// GPU buffers held, across every device this runtime has had.
    pub buffers: Arc<BufferStats>,
    /// One recovery at a time (a manual `recover` may race the automatic one).
    pub recovering: futures_util::lock::Mutex<()>,
    /// Memory pressure watches (their callbacks run with neither lock held).
    pub alerts: Mutex<AlertWatches>,
    /// Work on the devices outside the tick (a state read, a kernel's compile, a migration),
    /// which the shutdown lets finish before it releases them.
    device_work: AtomicUsize,
    device_work_done: Event,
    /// Natively, the thread that holds the table lock now, 0 while none does (see
    /// [`HoldingTable`]).
    #[cfg(not(target_arch = "wasm32"))]
    holder: AtomicUsize,
}

/// Work on the devices outside the tick, under way until dropped (see [`Shared::device_work`]).
pub(crate) struct DeviceWork<'a>(&'a Shared);

impl Drop for DeviceWork<'_> {
    fn drop(&mut self) {
        if self.0.device_work.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.device_work_done.notify(usize::MAX);
        }
    }
}

impl Shared {
    pub fn new(
        devices: Vec<(Device, DeviceSource)>,
        settings: Settings,
        wake: Arc<Event>,
        buffers: Arc<BufferStats>,
        now_ms: f64,
    ) -> Self {
        let status = |source: &DeviceSource| DeviceStatus {
            shared: matches!(source, DeviceSource::Shared(_)),
            ..DeviceStatus::default()
        };
        // Pushed, not collected: each `collect` is a copy of `Vec`'s `from_iter` in the wasm.
        let mut statuses = Vec::with_capacity(devices.len());
        for (_, source) in &devices {
            statuses.push(status(source));
        }
        let table = Table { devices: statuses, ..Table::default() };
        let mut slots = Vec::with_capacity(devices.len());
        for (device, source) in devices {
            // On the web nothing is Send and everything shares the page's thread; Arc keeps
            // one type.
            #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
            let device = Arc::new(device);
            slots.push(DeviceSlot {
                device: RwLock::new(device),
                source,
                replacement: Mutex::new(None),
                turn: TickTurn::default(),
            });
        }
        Shared {
            devices: slots,
            settings,
            table: Mutex::new(table),
            wake,
            wakes: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            created_at_ms: now_ms,
            buffers,
            recovering: futures_util::lock::Mutex::new(()),
            alerts: Mutex::new(AlertWatches::default()),
            device_work: AtomicUsize::new(0),
            device_work_done: Event::new(),
            #[cfg(not(target_arch = "wasm32"))]
            holder: AtomicUsize::new(0),
        }
    }

    /// Marks work on the devices outside the tick as under way. Take it under the table lock
    /// that saw the runtime running: the shutdown stops the runtime under that lock, so it
    /// sees every such work begun before.
    pub fn device_work(&self) -> DeviceWork<'_> {
        self.device_work.fetch_add(1, Ordering::AcqRel);
        DeviceWork(self)
    }

    /// Waits until no work on the devices is under way outside the tick; `false` if `deadline`
    /// passes first.
    pub async fn device_work_done(&self, deadline: crate::waiting::Deadline) -> bool {
        loop {
            let done = self.device_work_done.listen();
            if self.device_work.load(Ordering::Acquire) == 0 {
                return true;
            }
            if !crate::waiting::wait(done, deadline).await {
                return false;
            }
        }
    }

    /// The table, locked. Natively this thread is marked as its holder until the guard goes
    /// (see [`HoldingTable`]): a call back into the runtime from a wgpu callback that a submit
    /// or poll under the lock runs panics with [`HoldingTable::refusal`], not a deadlock (the
    /// calls that return an error use [`Self::lock_or_refuse`]).
    pub fn lock(&self) -> TableGuard<'_> {
        match self.lock_or_refuse() {
            Ok(table) => table,
            Err(refusal) => refused(refusal),
        }
    }

    /// The table, locked, or, natively, [`HoldingTable::refusal`] where this thread holds the
    /// lock already: a submission under the lock ran a callback of the application's which
    /// called the runtime. A receive's `read` that called it panics (see `ReadingAnswers`).
    /// Only a lock held already looks at whether this thread holds it (see
    /// [`Self::contended`]), so the uncontended lock costs no lookup. (On the web std's
    /// one-thread lock panics on such a call itself.)
    #[inline]
    pub fn lock_or_refuse(&self) -> std::result::Result<TableGuard<'_>, String> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let table = match self.table.try_lock() {
                Ok(table) => table,
                // A poisoned lock means a panic inside the runtime; keep serving rather than
                // cascade.
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => self.contended()?,
            };
            Ok(TableGuard { _held: HoldingTable::begin(self), table })
        }
        #[cfg(target_arch = "wasm32")]
        {
            Ok(self.table.lock().unwrap_or_else(|p| p.into_inner()))
        }
    }

    /// The lock, held when asked for: refused where this thread holds it (see
    /// [`Self::lock_or_refuse`]), else waited for. Out of line, so the uncontended lock stays
    /// small where it is inlined.
    #[cfg(not(target_arch = "wasm32"))]
    #[cold]
    #[inline(never)]
    fn contended(&self) -> std::result::Result<MutexGuard<'_, Table>, String> {
        ReadingAnswers::refuse_reentry(self);
        if HoldingTable::inside(self) {
            return Err(HoldingTable::refusal());
        }
        Ok(self.table.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// What tells this runtime's table apart from others' while it lives.
    #[cfg(not(target_arch = "wasm32"))]
    fn table_address(&self) -> usize {
        std::ptr::from_ref(&self.table) as usize
    }

    /// The device `id` is now.
    pub fn device(&self, id: DeviceId) -> Arc<Device> {
        self.devices[id.index()].device.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whose tick it is on device `id` (see [`TickTurn`]).
    pub fn turn(&self, id: DeviceId) -> &TickTurn {
        &self.devices[id.index()].turn
    }

    /// How many devices the runtime has.
    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// Every device id.
    pub fn device_ids(&self) -> impl Iterator<Item = DeviceId> {
        (0..self.devices.len() as u32).map(DeviceId)
    }

    /// What recovery opens in place of device `id`: what the runtime opened it from, or the
    /// replacement the application handed for its own device (`BackendUnavailable` until it
    /// hands one).
    pub fn source(&self, id: DeviceId) -> Result<DeviceSource> {
        let slot = &self.devices[id.index()];
        match &slot.source {
            DeviceSource::Open(request) => Ok(DeviceSource::Open(*request)),
            DeviceSource::Shared(_) => {
                let replacement = slot.replacement.lock().unwrap_or_else(|p| p.into_inner()).clone();
                replacement.map(DeviceSource::Shared).ok_or_else(|| Error::BackendUnavailable {
                    reason: format!(
                        "device {id} is the application's (a SharedDevice), which the runtime cannot replace itself: \
                         hand its replacement, or the same device if it still works, with Runtime::replace_shared_device"
                    ),
                })
            }
        }
    }

    /// Whether device `id` is the application's ([`SharedDevice`]).
    pub fn is_shared(&self, id: DeviceId) -> bool {
        cfg!(not(target_arch = "wasm32")) && matches!(self.devices[id.index()].source, DeviceSource::Shared(_))
    }

    /// Hands `replacement` for the application's device `id` to the recovery that follows.
    pub fn hand_replacement(&self, id: DeviceId, replacement: SharedDevice) {
        *self.devices[id.index()].replacement.lock().unwrap_or_else(|p| p.into_inner()) = Some(replacement);
    }

    /// Forgets the replacement recovery used for device `id`, if it is still `used`.
    pub fn replacement_taken(&self, id: DeviceId, used: &SharedDevice) {
        let mut replacement = self.devices[id.index()].replacement.lock().unwrap_or_else(|p| p.into_inner());
        if replacement.as_ref() == Some(used) {
            *replacement = None;
        }
    }

    /// Recovery's replacement for the lost device `id`.
    pub fn replace_device(&self, id: DeviceId, device: Arc<Device>) {
        *self.devices[id.index()].device.write().unwrap_or_else(|p| p.into_inner()) = device;
    }

    /// The memory watches.
    pub fn alerts(&self) -> MutexGuard<'_, AlertWatches> {
        self.alerts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the tick loop.
    pub fn wake(&self) {
        self.wakes.fetch_add(1, Ordering::Relaxed);
        self.wake.notify(usize::MAX);
    }

    /// How many times the tick loops were woken so far.
    pub fn wakes(&self) -> usize {
        self.wakes.load(Ordering::Relaxed)
    }

    /// Tells the tick loop to stop.
    pub fn shut_down(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.wake();
    }

    pub fn is_shut_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }
}

/// [`Shared::lock`]'s panic with `refusal` (see [`HoldingTable::refusal`]), out of line.
#[cold]
#[inline(never)]
fn refused(refusal: String) -> ! {
    panic!("{refusal}")
}

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    /// The address of the table whose receive's `read` this thread runs, or 0 (see
    /// [`ReadingAnswers`]).
    static READING_ANSWERS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Natively, marks this thread as running a `*_with` receive's `read` for `shared`'s table
/// until dropped. `read` gets the answers straight from the output queue, under the table's
/// lock; one that calls the same runtime would wait for that lock forever, with the tick loop
/// and every caller behind it. (Another runtime's table is another lock, and fine.)
#[cfg(not(target_arch = "wasm32"))]
pub(crate) struct ReadingAnswers(usize);

#[cfg(not(target_arch = "wasm32"))]
impl ReadingAnswers {
    pub fn begin(shared: &Shared) -> Self {
        ReadingAnswers(READING_ANSWERS.replace(shared.table_address()))
    }

    /// Whether this thread runs a `read` of `shared`'s receive now.
    pub fn inside(shared: &Shared) -> bool {
        READING_ANSWERS.get() == shared.table_address()
    }

    /// Panics when `shared`'s table lock is wanted from inside a `read` of its own.
    fn refuse_reentry(shared: &Shared) {
        if Self::inside(shared) {
            panic!(
                "a receive's `read` called the runtime: it runs while the runtime's table is locked, so it must \
                 not call the runtime (copy what it needs and call after the receive returns)"
            );
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Drop for ReadingAnswers {
    fn drop(&mut self) {
        READING_ANSWERS.set(self.0);
    }
}

/// The locked table ([`Shared::lock`]); on the web std's guard itself.
#[cfg(target_arch = "wasm32")]
pub(crate) type TableGuard<'a> = MutexGuard<'a, Table>;

/// The locked table ([`Shared::lock`]), natively marking this thread as its holder (see
/// [`HoldingTable`]) until dropped.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) struct TableGuard<'a> {
    /// First, so the mark goes before the lock is released (the next holder marks its own).
    _held: HoldingTable<'a>,
    table: MutexGuard<'a, Table>,
}

#[cfg(not(target_arch = "wasm32"))]
impl std::ops::Deref for TableGuard<'_> {
    type Target = Table;

    fn deref(&self) -> &Table {
        &self.table
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl std::ops::DerefMut for TableGuard<'_> {
    fn deref_mut(&mut self) -> &mut Table {
        &mut self.table
    }
}

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    /// Nothing: its address tells this thread apart from the others running (see
    /// [`HoldingTable`]). Constant and without a destructor, so reaching it costs no call.
    static THREAD_MARK: u8 = const { 0 };
}

/// This thread, told apart from the others running: the address of its [`THREAD_MARK`].
#[cfg(not(target_arch = "wasm32"))]
fn this_thread() -> usize {
    THREAD_MARK.with(|mark| std::ptr::from_ref(mark) as usize)
}

/// Natively, marks this thread as holding `shared`'s table lock (in the table's `holder`, which
/// only the holding thread sets, and clears before it lets go), until dropped. wgpu's
/// `Queue::submit` and `Device::poll` run the device's `map_async` callbacks that have become
/// ready, on the calling thread, before they return, and the runtime submits under its table
/// lock: a tick's commands, and the empty submit that frees a kernel's rings when they drop
/// (its end, removal, recovery or move). On a device the application shares
/// ([`SharedDevice`](crate::SharedDevice), or one it uses through `wgpu_device`) those
/// callbacks include the application's own. One of those that called the same runtime would
/// wait for the lock its own thread holds, forever, with the tick loop and every caller behind
/// it: it is refused instead (see [`Self::refusal`]). A guard is never held across an await
/// (std's is not `Send`), so the thread that marks is the one that unmarks. Only a lock found
/// held looks at the mark ([`Shared::lock_or_refuse`]): the uncontended lock pays one store
/// to mark and one to unmark.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) struct HoldingTable<'a>(&'a AtomicUsize);

#[cfg(not(target_arch = "wasm32"))]
impl<'a> HoldingTable<'a> {
    fn begin(shared: &'a Shared) -> Self {
        shared.holder.store(this_thread(), Ordering::Relaxed);
        HoldingTable(&shared.holder)
    }

    /// Whether this thread holds `shared`'s table lock now: a call to that runtime here comes
    /// from a wgpu callback that a submission (or poll) under the lock ran. (Relaxed is
    /// enough: no other thread ever writes this thread's mark, and this thread sees its own
    /// writes in order.)
    pub fn inside(shared: &Shared) -> bool {
        shared.holder.load(Ordering::Relaxed) == this_thread()
    }

    /// What a call to the runtime from such a callback is refused with.
    pub fn refusal() -> String {
        "the runtime was called from a wgpu callback (a `map_async` callback of the application's, on a device it \
         shares with the runtime) that wgpu ran inside the runtime's own submission, while the runtime's table is \
         locked: hand the call to another thread or task (a channel) instead"
            .to_owned()
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Drop for HoldingTable<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

//! The lifecycle operations: launch → activate ⇄ deactivate → terminate, `remove`,
//! `managed_kernel`, state arrays, and device recovery. Every state change goes through the
//! lifecycle table ([`crate::lifecycle`]).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use event_listener::Event;

use super::handle::KernelHandle;
use super::{LaunchOptions, Runtime, MAX_QUEUE_SIZE};
use crate::cancel::OnCancel;
use crate::circuit::Breaker;
use crate::cursor::RingCursor;
use crate::error::{Error, Quoted, Result};
use crate::kernel::{self, KernelDefinition};
use crate::lifecycle::{Action, KernelState, Lifecycle, LifecycleState};
use crate::mailbox::{HostQueueBytes, Mailbox};
use crate::platform::{self, option_name};
use crate::recovery;
use crate::spans::{self, Phase};
use crate::table::{Kernel, Resources, Route, Table};
use crate::telemetry::{Counters, ShutdownReport};
use crate::waiting::{deadline, join_all, wait, Deadline};

impl Runtime {
    /// Launches a registered kernel by id (see [`kernel::register`]) and returns its handle
    /// (turn it into a typed one with [`KernelHandle::typed`]). A second launch of a live id is
    /// a `KernelState` error; a terminated id must be [`remove`](Self::remove)d first.
    ///
    /// # Errors
    /// [`Error::KernelNotFound`] when no kernel is registered under `id`;
    /// [`Error::KernelState`] when a kernel of that id is launched already;
    /// [`Error::KernelCompile`] when its WGSL (or host handler) is refused on this device, or
    /// the device it names cannot run it (a cpu device and no host handler, say);
    /// [`Error::OutOfRange`] for options outside their range (a queue size, workgroup size or
    /// shared memory the device cannot give, a device that does not exist, requirements no
    /// device meets, initial state past the state's end); [`Error::InvalidArgument`] for initial
    /// state the kernel cannot take (it has no state, or one of the other scalar);
    /// [`Error::DeviceLost`] when its device is lost (or was lost while it compiled);
    /// [`Error::Draining`] or [`Error::Disposed`] once the runtime drains or was disposed.
    pub async fn launch(&self, id: &str, options: LaunchOptions) -> Result<KernelHandle> {
        let definition = self.registered(id)?;
        self.launch_shared(definition, options).await
    }

    /// The kernel registered under `id`, once the runtime is known to take launches: a stopped
    /// or draining runtime refuses one as such (`Disposed`, `Draining`) whatever the id, as it
    /// refuses a send to an unknown id, rather than as `KernelNotFound`.
    fn registered(&self, id: &str) -> Result<Arc<KernelDefinition>> {
        drop(self.accepting_table("launches")?);
        kernel::lookup(id).ok_or_else(|| Error::KernelNotFound { id: id.to_owned() })
    }

    /// Launches a second (third, ...) instance of the registered kernel `id` under the id
    /// `as_id`, with rings and state of its own.
    pub async fn launch_as(&self, id: &str, as_id: &str, options: LaunchOptions) -> Result<KernelHandle> {
        let definition = self.registered(id)?;
        self.launch_definition((*definition).clone().with_id(as_id), options).await
    }

    /// Launches `definition` under its own id: compiles its WGSL and allocates its GPU rings.
    /// The kernel is `Created` while it compiles (natively on a helper thread, so launching
    /// never stalls the caller's executor) and `Launched` once its rings exist.
    pub async fn launch_definition(
        &self,
        definition: KernelDefinition,
        options: LaunchOptions,
    ) -> Result<KernelHandle> {
        self.launch_shared(Arc::new(definition), options).await
    }

    async fn launch_shared(&self, definition: Arc<KernelDefinition>, options: LaunchOptions) -> Result<KernelHandle> {
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        let id = definition.id.clone();
        validate_id(&id)?;
        let (input_size, output_size, max_batch) = queue_sizes(&options, self.options().default_queue_size)?;
        host_queues_fit(&definition, &options, input_size, output_size)?;
        if let Some(initial) = &options.initial_state {
            initial.check(&id, definition.state, 0)?;
        }
        let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let (device, generation, _work) = {
            // Reserve the id (state Created) so a concurrent launch of the same id is refused.
            let mut table = self.accepting_table("launches")?;
            let work = self.shared.device_work();
            if let Some(existing) = table.kernels.get(&id) {
                return Err(Error::KernelState { id, state: existing.life.state(), action: Action::Launch });
            }
            host_queues_fit_beside(&table, &id, &definition, input_size, output_size)?;
            let device = self.place(&mut table, &options, &definition)?;
            if let Some(lost) = &table.device(device).lost {
                return Err(lost.clone());
            }
            let mut counters =
                Counters::new(self.shared.settings.enable_telemetry, platform::now_ms(), platform::unix_time_ms());
            // The windowed latencies only feed the degradation manager.
            if table.degrader.is_none() {
                counters.window_latency = None;
            }
            let kernel = Kernel {
                device,
                held_out: false,
                writing: false,
                in_tick: false,
                ends_when_drained: false,
                served: 0,
                plan_mark: Default::default(),
                mode: options.mode,
                max_batch: max_batch as u32,
                priority: options.priority,
                latency_budget_ms: options.latency_budget.map(|budget| budget.as_secs_f64() * 1000.0),
                checkpoint_interval_ms: options
                    .checkpoint_interval
                    .map_or(0.0, |interval| interval.as_secs_f64() * 1000.0),
                shape: options.dispatch_shape(),
                instance,
                life: Lifecycle::new(),
                mailbox: Mailbox::new(definition.input.size(), definition.output.size(), input_size, output_size),
                cursor: RingCursor::default(),
                counters,
                route: Route::default(),
                // Its state as launched (zeroed) is its first checkpoint.
                resources: Resources { checkpoint_at_ms: platform::now_ms(), ..Resources::default() },
                breaker: self.shared.settings.circuit_breaker.map(Breaker::new),
                changed: Arc::new(Event::new()),
                removed: Arc::default(),
                ended: None,
                unrecovered: None,
                def: definition.clone(),
            };
            table.insert_kernel(id.clone(), kernel);
            (device, table.device(device).generation, work)
        };
        let device_id = device;
        let device = self.shared.device(device_id);
        // Dropped while it compiles, the launch takes its reservation back: the id would
        // otherwise stay `Created` for good, refusing every launch, terminate and remove.
        let undo = OnCancel::new(|| {
            let mut table = self.shared.lock();
            let reserved = table
                .kernels
                .get(&id)
                .is_some_and(|k| k.instance == instance && k.life.state() == KernelState::Created);
            if let Some(kernel) = reserved.then(|| table.remove_kernel(id.as_str())).flatten() {
                kernel.removed.store(true, Ordering::Relaxed);
                kernel.notify();
            }
        });
        let created = spans::around(
            self.shared.settings.tracing,
            Phase::Launch,
            Some(&id),
            device.create_kernel(definition, input_size, options.dispatch_shape()),
        )
        .await;
        undo.done();
        // Lost meanwhile, whether or not the tick has noticed yet.
        let fault = device.fault();
        // The table's lock, held only here: what follows awaits.
        let launched = {
            let mut table = self.shared.lock();
            let still_ours = table.kernels.get(&id).is_some_and(|k| k.instance == instance);
            // Built (or failed to build) on a device that was lost meanwhile: it cannot run, and
            // a compile error from a dead device says nothing about the kernel.
            let status = table.device(device_id);
            let created = match (&status.lost, fault) {
                (Some(lost), _) => Err(lost.clone()),
                (None, Some(fault)) => Err(fault),
                (None, None) if status.generation != generation => Err(Error::DeviceLost {
                    reason: "the device was lost and replaced while the kernel compiled".into(),
                }),
                (None, None) => created,
            };
            // A drain or shutdown that began while it compiled terminated everything launched
            // then, and this kernel was not yet: it does not start now.
            let refused = match table.state {
                LifecycleState::Stopped => Some(Error::Disposed),
                LifecycleState::Draining => Some(Error::Draining("launches")),
                _ => None,
            };
            let created = match refused {
                Some(refused) => created.and(Err(refused)),
                None => created,
            };
            match created {
                Ok(exec) if still_ours => {
                    let kernel = table.kernel(&id)?;
                    kernel.life.apply(Action::Launch).map_err(|t| t.for_kernel(&id))?;
                    // Activated in the same step, so that no other caller's activate or
                    // terminate comes between and turns a launch that took place into an error.
                    if options.auto_activate {
                        kernel.life.apply(Action::Activate).map_err(|t| t.for_kernel(&id))?;
                        kernel.beat(platform::now_ms());
                    }
                    kernel.resources.state = exec.state_store();
                    kernel.resources.exec = Some(exec);
                    if let Some(initial) = &options.initial_state {
                        super::state::put(kernel, &device, 0, initial);
                    }
                    kernel.notify();
                    let removed = kernel.removed.clone();
                    table.launched += 1;
                    Ok(removed)
                }
                // The runtime was disposed while compiling.
                Ok(_) => Err(Error::Disposed),
                Err(e) => {
                    // Handles taken while it compiled (`kernel`) refer to this launch only.
                    if let Some(kernel) = still_ours.then(|| table.remove_kernel(id.as_str())).flatten() {
                        kernel.removed.store(true, Ordering::Relaxed);
                    }
                    Err(e)
                }
            }
        };
        let removed = launched?;
        crate::pressure::check_memory_alerts(&self.shared);
        if options.auto_activate {
            self.shared.wake();
        }
        Ok(KernelHandle::new(self, &id, removed, instance))
    }

    /// LAUNCHED → ACTIVE: the tick starts dispatching the kernel.
    pub async fn activate(&self, id: &str) -> Result<()> {
        self.apply(id, Action::Activate)
    }

    /// ACTIVE → DEACTIVATED: the tick stops dispatching it; its input stays queued and nothing
    /// is dropped.
    pub async fn deactivate(&self, id: &str) -> Result<()> {
        self.apply(id, Action::Deactivate)
    }

    /// DEACTIVATED → ACTIVE: queued input is processed, in order.
    pub async fn reactivate(&self, id: &str) -> Result<()> {
        self.apply(id, Action::Reactivate)
    }

    /// `launched` → `active` or `deactivated` → `active`, whichever the kernel's state is when
    /// the change is made (a handle's `activate`): a deactivate made meanwhile by another
    /// caller cannot turn it into a refusal.
    pub(crate) fn activate_or_reactivate(&self, id: &str) -> Result<()> {
        self.apply_chosen(id, |state| match state {
            KernelState::Deactivated => Action::Reactivate,
            _ => Action::Activate,
        })
    }

    /// Applies a lifecycle action and wakes the tick, which reads the new state.
    fn apply(&self, id: &str, action: Action) -> Result<()> {
        self.apply_chosen(id, |_| action)
    }

    /// [`apply`](Self::apply), with the action chosen by the kernel's state under the same lock.
    fn apply_chosen(&self, id: &str, choose: impl FnOnce(KernelState) -> Action) -> Result<()> {
        let mut table = self.open_table()?;
        let kernel = self.kernel_in(&mut table, id)?;
        let action = choose(kernel.life.state());
        kernel.life.apply(action).map_err(|t| t.for_kernel(id))?;
        // A kernel that starts (or stops) running is not late yet.
        kernel.beat(platform::now_ms());
        kernel.notify();
        drop(table);
        self.shared.wake();
        Ok(())
    }

    /// The seeds' `managed_kernel` start: launches `id` (a registered kernel, or `definition`)
    /// and activates it in the same step as the launch (see
    /// [`LaunchOptions::with_auto_activate`]), so no other caller comes between the two.
    /// The handle is the scope's: its end never reaches a kernel launched later under `id`.
    pub async fn launch_and_activate(
        &self,
        id: &str,
        definition: Option<KernelDefinition>,
        options: LaunchOptions,
    ) -> Result<KernelHandle> {
        let options = options.with_auto_activate();
        match definition {
            Some(definition) => self.launch_definition(definition, options).await,
            None => self.launch(id, options).await,
        }
    }

    /// The seeds' `managed_kernel`: launches and activates `id`, runs `body`, then terminates
    /// the kernel whether `body` succeeded or not. `body`'s error wins over terminate's.
    pub async fn managed_kernel<T, F, Fut>(&self, id: &str, options: LaunchOptions, body: F) -> Result<T>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let handle = self.launch_and_activate(id, None, options).await?;
        let outcome = body(id.to_owned()).await;
        // The body may have ended the kernel itself (or removed it, or disposed of the runtime):
        // the scope's end is then done.
        let terminated = ended_with_scope(handle.terminate().await);
        let value = outcome?;
        terminated.map(|()| value)
    }

    /// Terminates `id` unless it already is terminated or removed, or the runtime is disposed
    /// of: the end of a managed kernel's scope, which must not fail because something else
    /// stopped it first.
    pub async fn terminate_if_live(&self, id: &str, timeout: Option<Duration>) -> Result<()> {
        // Asked, not checked first: another caller may end or remove it meanwhile.
        ended_with_scope(self.terminate(id, timeout).await)
    }

    /// Graceful stop: the kernel passes through `Terminating` while queued and in-flight
    /// messages are processed (their answers stay receivable), then becomes `Terminated`.
    /// Past `timeout` it is stopped anyway; the unprocessed count is recorded in its
    /// telemetry and returned in the `Timeout` error, and waiting `call`s are cancelled.
    ///
    /// # Errors
    /// [`Error::Timeout`] when the kernel was stopped at `timeout` with messages unprocessed
    /// (their count in [`Error::unprocessed`]); [`Error::KernelNotFound`] for an unknown id;
    /// [`Error::KernelState`] when it is terminated already or still being launched;
    /// [`Error::StrandedByDeviceLoss`] when its device was lost and nothing will recover it;
    /// [`Error::Disposed`] once the runtime was disposed.
    pub async fn terminate(&self, id: &str, timeout: Option<Duration>) -> Result<()> {
        self.terminate_within(id, timeout, Pipeline::Leave).await
    }

    /// [`terminate`](Self::terminate), leaving the kernel's pipeline at once or flushing it.
    async fn terminate_within(&self, id: &str, timeout: Option<Duration>, pipeline: Pipeline) -> Result<()> {
        let (mut ended_here, deadline) = (None, deadline(timeout));
        let result = self.terminate_inner(id, deadline, timeout, pipeline, &mut ended_here).await;
        // Its rings are free now (its state stays until it is removed).
        if let Some(instance) = ended_here {
            crate::pressure::check_memory_alerts(&self.shared);
            // A checkpoint interval's kernel that ended with no tick since its handler last ran
            // (a terminating kernel's ticks take one): its final state survives a later loss of
            // its device, as every tick's checkpoint keeps it without an interval. The terminate
            // waits for that read within its own timeout.
            crate::checkpoint::final_read(&self.shared, id, instance, deadline).await;
        }
        // Like every lifecycle call, a refused terminate is not a message error; one that timed
        // out left messages unprocessed, which is (once, by the terminate that ended it).
        match result {
            Err(Error::Timeout { .. }) if ended_here.is_some() => self.counted(id, result),
            other => other,
        }
    }

    /// How long a terminate past its timeout waits for its kernel's last tick before it warns
    /// that the tick is still on the device.
    const LAST_TICK_REPORT_MS: f64 = 5000.0;

    /// [`terminate`](Self::terminate); `ended_here` is set to the launch this call ended
    /// (rather than another terminate it waited with).
    async fn terminate_inner(
        &self,
        id: &str,
        deadline: Deadline,
        timeout: Option<Duration>,
        pipeline: Pipeline,
        ended_here: &mut Option<u64>,
    ) -> Result<()> {
        let (changed, instance) = {
            let mut table = self.open_table()?;
            let kernel = self.kernel_in(&mut table, id)?;
            let (changed, instance) = (kernel.changed.clone(), kernel.instance);
            // A terminate while another is under way waits with it, within its own timeout
            // (as `wait` does, without one): the drain is the same.
            if kernel.life.state() != KernelState::Terminating {
                // A failed kernel is relaunched by recovery to drain (its lifecycle remembers).
                kernel.life.apply(Action::Terminate).map_err(|t| t.for_kernel(id))?;
                // Terminating runs the kernel even if it was paused or never activated, so
                // nothing queued is dropped (see `Kernel::runs`).
                kernel.notify();
                // A stopping kernel leaves its pipeline: what it still answers goes to the host.
                // (Unless every stage stops together: see `Pipeline::Flush`.)
                if pipeline == Pipeline::Leave {
                    super::routing::detach(&mut table, id);
                }
            }
            (changed, instance)
        };
        self.shared.wake();
        // Dropped before the kernel ended (its caller went away), the terminate is not taken
        // back: the kernel drains and ends as it would have, and whatever it held out of the
        // tick runs again. Otherwise it would stay `Terminating` for good, its receives waiting.
        let _orphaned = OnCancel::new(|| {
            let mut table = self.shared.lock();
            let Some(kernel) = table.launch_of(id, instance) else { return };
            // Failed while terminating, it drains once recovery (or a move) runs it again.
            if kernel.life.terminating() {
                kernel.held_out = false;
                kernel.ends_when_drained = true;
                kernel.finish_if_drained();
                kernel.notify();
                // Ending with nobody waiting, it leaves its pipeline as a plain terminate does.
                if pipeline == Pipeline::Flush {
                    leave_flushed(&mut table, id, pipeline);
                }
                drop(table);
                self.shared.wake();
            }
        });
        let (mut reported, mut report_at) = (false, None);
        loop {
            let listener = changed.listen();
            let ran_out = {
                let mut table = self.shared.lock();
                // Flushing its pipeline, a stage ends after the stage that feeds it, whose
                // answers may still come (ending too, though its own terminate may not have
                // begun yet); that one, ending, leaves the route and wakes it (`leave_flushed`).
                let fed_yet = pipeline == Pipeline::Flush
                    && (table.kernels.get(id).and_then(|k| k.route.upstream.as_deref()))
                        .and_then(|up| table.kernels.get(up))
                        .is_some_and(|feeder| feeder.life.state() != KernelState::Terminated);
                // Without automatic recovery, or once it has given up, nothing drains a kernel
                // whose device was lost.
                let (kernel, device) = match table.kernel_on_device(id) {
                    Ok((kernel, device)) if kernel.instance == instance => (kernel, device),
                    // Removed meanwhile (and perhaps launched again under its id): another
                    // terminate ended it, how is gone with it, and a new launch is not this one's.
                    _ => return Err(Error::KernelNotFound { id: id.to_owned() }),
                };
                // Another terminate ended it meanwhile (or the tick did): that one's outcome is
                // this one's.
                if kernel.life.state() == KernelState::Terminated {
                    let ended = kernel.ended.clone();
                    leave_flushed(&mut table, id, pipeline);
                    return ended.map_or(Ok(()), Err);
                }
                // Nor one that its recovered device could not rebuild.
                let unrecovered = kernel.unrecovered.is_some() && device.lost.is_none();
                let stranded = (device.lost.clone())
                    .filter(|_| !device.auto_recovers(self.shared.settings.auto_recover))
                    .or_else(|| unrecovered.then(|| kernel.failure(id, device)));
                let timed_out = deadline.is_some_and(|d| platform::now_ms() >= d);
                let stranded = stranded.filter(|_| kernel.resources.exec.is_none());
                // Out of time while a tick has its messages on the device: they run (or ran)
                // there, so that tick delivers them, answers and counts, before the kernel
                // ends; it takes nothing more meanwhile. Only messages never dispatched are left
                // unprocessed.
                if timed_out && kernel.in_tick && stranded.is_none() {
                    kernel.held_out = true;
                    true
                } else {
                    let unprocessed = kernel.mailbox.inbox.len() as u64 + kernel.cursor.in_flight() as u64;
                    if (unprocessed == 0 && !fed_yet) || timed_out || stranded.is_some() {
                        let ended = match stranded.filter(|_| unprocessed > 0) {
                            Some(Error::DeviceLost { reason }) => {
                                Some(Error::StrandedByDeviceLoss { id: id.to_owned(), reason, unprocessed })
                            }
                            _ if unprocessed > 0 => Some(Error::Timeout {
                                id: id.to_owned(),
                                operation: "terminate".into(),
                                stall: None,
                                timeout: timeout.unwrap_or_default(),
                                unprocessed,
                            }),
                            _ => None,
                        };
                        kernel.finish(unprocessed, ended).map_err(|t| t.for_kernel(id))?;
                        *ended_here = Some(instance);
                        let ended = kernel.ended.clone();
                        leave_flushed(&mut table, id, pipeline);
                        return ended.map_or(Ok(()), Err);
                    }
                    false
                }
            };
            // Waiting for the last tick is not bounded by the deadline, which has passed: the
            // tick ends, delivering or failing (a lost device ends it too). One that stays on
            // the device is reported once, after a while: a handler that never returns holds
            // its device until the device resets, which a software adapter may never do.
            let until = match (ran_out, reported) {
                (false, _) => deadline,
                (true, false) => Some(*report_at.get_or_insert_with(|| platform::now_ms() + Self::LAST_TICK_REPORT_MS)),
                (true, true) => None,
            };
            // `wait` is false only once `until` has passed.
            if !wait(listener, until).await && ran_out && !reported {
                reported = true;
                platform::warn(&format!(
                    "ringkernel-web: terminating kernel {} has waited {} s past its timeout for its last tick, still on \
                     the device: a handler that never returns holds its device until the device resets (a device loss)",
                    Quoted(id),
                    Self::LAST_TICK_REPORT_MS as u64 / 1000 // whole seconds, without float formatting
                ));
            }
        }
    }

    /// Terminates every kernel that can be terminated, concurrently, each within
    /// `timeout`; after all have finished, a kernel's failure is returned as it is, several
    /// kernels' as one [`Error::SeveralKernels`] (each one's error by id, and the messages they
    /// left unprocessed, summed). What each kernel left unprocessed is also in its telemetry
    /// (`unprocessed_at_termination`) and, summed, in the shutdown report.
    pub async fn terminate_all(&self, timeout: Option<Duration>) -> Result<()> {
        let ids: Vec<String> = {
            let table = self.open_table()?;
            // Terminating ones too: their drain is waited for (within this timeout), so what
            // they hold is processed or counted before a shutdown's report.
            table.ids_where(&|k| {
                let state = k.life.state();
                state == KernelState::Terminating || state.step(Action::Terminate).is_ok()
            })
        };
        // A kernel another caller terminated or removed meanwhile has ended: no error of ours.
        // Every stage of a pipeline ends here, so each keeps its route until the stage feeding
        // it has ended: what is in a pipeline reaches its last stage (see `Pipeline::Flush`).
        let terminated = |id| async move { ended_already(self.terminate_within(id, timeout, Pipeline::Flush).await) };
        let results = join_all(ids.iter().map(|id| terminated(id.as_str()))).await;
        // Pushed, not collected: each `collect` is a copy of `Vec`'s `from_iter` in the wasm.
        let (mut errors, mut unprocessed) = (Vec::new(), 0);
        for result in results {
            if let Err(error) = result {
                unprocessed += error.unprocessed();
                errors.push(error);
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Error::SeveralKernels { unprocessed, errors }),
        }
    }

    /// Forgets a terminated kernel (and any answers nobody received) so its id can be
    /// launched again; returns how many answers nobody received it discarded (the shutdown
    /// report counts them too). Its handles stay its own: every operation on them is
    /// `KernelNotFound` from now on, whatever is launched under the id later.
    pub fn remove(&self, id: &str) -> Result<u64> {
        let mut table = self.open_table()?;
        let state = table.kernel(id)?.life.state();
        if state != KernelState::Terminated {
            return Err(Error::KernelState { id: id.to_owned(), state, action: Action::Remove });
        }
        let Some(kernel) = table.remove_kernel(id) else { return Ok(0) };
        kernel.removed.store(true, Ordering::Relaxed);
        // Waits still on it (a receive behind answers nobody takes) end: it is gone.
        kernel.notify();
        // What the shutdown report still owes for it.
        let discarded = kernel.mailbox.outbox.len() as u64;
        let retired = &mut table.retired;
        retired.kernels += 1;
        retired.messages_sent += kernel.counters.messages_sent;
        retired.messages_received += kernel.counters.messages_received;
        retired.messages_processed += kernel.counters.messages_processed;
        retired.messages_unprocessed += kernel.counters.unprocessed_at_termination;
        retired.answers_never_received += discarded + kernel.counters.answers_abandoned;
        drop(table);
        // Its memory (a GPU state array is freed as the kernel goes) is free now: a watch it
        // held above its threshold hears so at once.
        drop(kernel);
        crate::pressure::check_memory_alerts(&self.shared);
        Ok(discarded)
    }

    /// Replaces every lost device: opens a new one on the same kind of adapter, relaunches
    /// every failed kernel with its last state checkpoint, returns each to the state it was in,
    /// and lets the tick process the messages that had no answer (see the README's Reliability
    /// section). Resolves at once when no device was lost (and always on the cpu backend). If
    /// opening a device fails, nothing changes there and the error says why; `recover` may be
    /// retried. A kernel the new device cannot run (a browser's recovered adapter without a
    /// feature its handler enables) stays `Failed` there, its operations saying why, while the
    /// rest run again: the error is its (the first such kernel's), and a later `recover`
    /// returns `Ok` at once, leaving it so. A migration runs it elsewhere (one to its own
    /// device tries to build it there again), or a terminate ends it with its messages
    /// unprocessed.
    pub async fn recover(&self) -> Result<()> {
        drop(self.open_table()?);
        recovery::recover_all(&self.shared).await
    }

    /// The seed's `shutdown`: [`dispose`](Self::dispose).
    pub async fn shutdown(&self) -> Result<ShutdownReport> {
        self.dispose().await
    }

    /// Destroys the (first) GPU device, as a driver reset or an unplugged GPU would lose it,
    /// so applications can test how they handle `DeviceLost` and [`recover`](Self::recover).
    /// Its kernels are `Failed` when this returns, a tick under way on it failing with it. The
    /// application's own device (a [`SharedDevice`](crate::SharedDevice)) is declared lost the
    /// same way but not destroyed (a tick under way finishes on it, its answers discarded and
    /// its messages processed again after recovery), and comes back with
    /// [`replace_shared_device`](Self::replace_shared_device).
    pub fn destroy_device(&self) -> Result<()> {
        let mut first_gpu = crate::devices::DeviceId(0);
        for id in self.shared.device_ids() {
            if self.shared.device(id).gpu().is_some() {
                first_gpu = id;
                break;
            }
        }
        self.destroy_device_at(first_gpu)
    }

    /// [`destroy_device`](Self::destroy_device) for `device`: only its kernels fail.
    pub fn destroy_device_at(&self, device: crate::devices::DeviceId) -> Result<()> {
        drop(self.open_table()?);
        self.check_device(device)?;
        match self.shared.device(device).gpu() {
            // Lost from here on, as a real loss would be once noticed: a tick under way on it
            // when this returns has failed with it, not only the next one.
            Some(_) => self.lose_device(device, "the device was destroyed (destroyDevice)", &|_| true),
            None => {
                let reason = "the cpu backend has no device to destroy".to_owned();
                return Err(Error::InvalidArgument(self.name_device(device.index(), reason)));
            }
        }
        Ok(())
    }
}

/// The input and output queue bounds and the largest batch `options` ask for (the runtime's
/// `default_queue_size` where they ask nothing), or which one is out of range.
fn queue_sizes(options: &LaunchOptions, default_queue_size: usize) -> Result<(usize, usize, usize)> {
    let queue_size =
        queue_size_in_range(option_name!("queueSize", "queue_size"), options.queue_size.unwrap_or(default_queue_size))?;
    let input_size = options.input_queue_size.unwrap_or(queue_size);
    let input_size = queue_size_in_range(option_name!("inputQueueSize", "input_queue_size"), input_size)?;
    let output_size = options.output_queue_size.unwrap_or(queue_size);
    let output_size = queue_size_in_range(option_name!("outputQueueSize", "output_queue_size"), output_size)?;
    // A zero budget would read as none: every latency is over it.
    if options.latency_budget.is_some_and(|budget| budget.is_zero()) {
        return Err(Error::OutOfRange(
            concat!(option_name!("latencyBudgetMs", "latency_budget"), " must be more than 0 ms").into(),
        ));
    }
    let max_batch = options.max_batch.unwrap_or(input_size);
    if max_batch == 0 || max_batch > input_size {
        return Err(Error::OutOfRange(format!(
            concat!(option_name!("maxBatch", "max_batch"), " must be from 1 to {} (the input queue size), got {}"),
            input_size, max_batch
        )));
    }
    Ok((input_size, output_size, max_batch))
}

/// The most bytes one of a kernel's host queues may hold on the web, where it lives in wasm
/// memory (4 GiB in all, and a queue's buffer grows by doubling); natively only `usize`.
const MAX_HOST_QUEUE_BYTES: usize = if cfg!(target_arch = "wasm32") { 1 << 28 } else { isize::MAX as usize };

/// Whether `definition`'s messages fit queues of `input_size` and `output_size` in host
/// memory, or which one cannot hold that many (and how many it can), named by the option that
/// set its size.
fn host_queues_fit(
    definition: &KernelDefinition,
    options: &LaunchOptions,
    input_size: usize,
    output_size: usize,
) -> Result<()> {
    let named = |own: Option<usize>, name: &'static str| match own {
        Some(_) => name,
        None => option_name!("queueSize", "queue_size"),
    };
    let queues = [
        (
            named(options.input_queue_size, option_name!("inputQueueSize", "input_queue_size")),
            input_size,
            definition.input.size(),
        ),
        (
            named(options.output_queue_size, option_name!("outputQueueSize", "output_queue_size")),
            output_size,
            definition.output.size(),
        ),
    ];
    for (name, size, stride) in queues {
        if size.checked_mul(stride).is_none_or(|bytes| bytes > MAX_HOST_QUEUE_BYTES) {
            return Err(Error::OutOfRange(format!(
                "{name} of {size} messages of {stride} bytes is over {MAX_HOST_QUEUE_BYTES} bytes, the most a host \
                 queue holds here: at most {} fit",
                MAX_HOST_QUEUE_BYTES / stride
            )));
        }
    }
    Ok(())
}

/// The most bytes the host queues of all kernels in one wasm memory may hold together, every
/// runtime's in it (a page's, a worker's or a Node process's): 4 GiB in all, which a queue's
/// buffer, growing by doubling, may take up to twice its size of. Past it an allocation fails,
/// and that aborts the module (every runtime in it is lost). Natively only `isize`.
const MAX_HOST_QUEUES_BYTES: usize = if cfg!(target_arch = "wasm32") { 1 << 30 } else { isize::MAX as usize };

/// Whether a kernel `id` with `definition`'s messages and queues of `input_size` and
/// `output_size` fits beside the host queues of the kernels launched already, in `table` and
/// in every other runtime in this memory, or how far over.
fn host_queues_fit_beside(
    table: &Table,
    id: &str,
    definition: &KernelDefinition,
    input_size: usize,
    output_size: usize,
) -> Result<()> {
    let adding = input_size
        .saturating_mul(definition.input.size())
        .saturating_add(output_size.saturating_mul(definition.output.size()));
    let launched = HostQueueBytes::in_memory();
    if launched.saturating_add(adding) > MAX_HOST_QUEUES_BYTES {
        return Err(Error::OutOfRange(format!(
            "kernel {}: its host queues ({adding} bytes when full) and those of the kernels launched already \
             ({launched} bytes, {} of them this runtime's) are over {MAX_HOST_QUEUES_BYTES} bytes, the most all \
             host queues in one wasm memory hold: remove kernels, or launch this one with a smaller queue size",
            Quoted(id),
            table.host_queue_bytes.here()
        )));
    }
    Ok(())
}

/// `size`, or why the queue size option `name` cannot be it.
pub(super) fn queue_size_in_range(name: &str, size: usize) -> Result<usize> {
    if size == 0 || size > MAX_QUEUE_SIZE {
        return Err(Error::OutOfRange(format!("{name} must be between 1 and {MAX_QUEUE_SIZE}, got {size}")));
    }
    Ok(size)
}

fn validate_id(id: &str) -> Result<()> {
    kernel::check_id_length("kernel ids", id)
}

/// What a terminating kernel does with its pipeline.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pipeline {
    /// Leaves it at once: what it still answers goes to its own output queue (a `terminate`).
    Leave,
    /// Keeps its route until it ends, and ends only after the stage feeding it has: its
    /// answers go on to the next stage, which, ending too, runs until they are through, and a
    /// last stage ending takes every answer (`terminate_all`, a drain, `dispose`).
    Flush,
}

/// A kernel that ended while flushing its pipeline leaves it now, and wakes the terminate of
/// the stage after it, which was waiting for it to end.
fn leave_flushed(table: &mut Table, id: &str, pipeline: Pipeline) {
    if pipeline != Pipeline::Flush {
        return;
    }
    let next = table.kernels.get(id).and_then(|k| k.route.downstream.clone());
    super::routing::detach(table, id);
    if let Some(next) = next.and_then(|next| table.kernels.get(&next)) {
        next.notify();
    }
}

/// A terminate's outcome where the kernel need only have ended: a refusal because it is
/// terminated already, or was removed, is no failure.
fn ended_already(terminated: Result<()>) -> Result<()> {
    match terminated {
        Err(Error::KernelState { state: KernelState::Terminated, action: Action::Terminate, .. })
        | Err(Error::KernelNotFound { .. }) => Ok(()),
        other => other,
    }
}

/// [`ended_already`] for the end of a kernel's scope, where a runtime disposed of meanwhile
/// (which ended every kernel) is no failure either.
fn ended_with_scope(terminated: Result<()>) -> Result<()> {
    match ended_already(terminated) {
        Err(Error::Disposed) => Ok(()),
        other => other,
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::time::{Duration, Instant};

    use crate::{BackendChoice, KernelState, LaunchOptions, Runtime, RuntimeOptions};

    /// What the runtime counts as held: its kernels' device bytes (rings, flags and states, not
    /// the readback buffer all share) and its host queues' bytes.
    fn held(rt: &Runtime) -> (u64, usize) {
        let bytes = rt.memory_report().by_purpose;
        let device = bytes.input_ring + bytes.output_ring + bytes.kept_flags + bytes.state;
        (device, rt.shared.lock().host_queue_bytes.here())
    }

    /// Launches a doubler that takes a message a tick, sends it 2,000 and drops a terminate
    /// of it while it drains.
    fn drop_a_terminate_mid_drain(rt: &Runtime) {
        pollster::block_on(async {
            let options = LaunchOptions::default().with_queue_capacity(2048).with_max_batch(1).with_auto_activate();
            rt.launch("doubler", options).await.unwrap();
            rt.send_batch::<i32>("doubler", &(0..2000).collect::<Vec<_>>(), None).await.unwrap();
            let mut terminating = Box::pin(rt.terminate("doubler", None));
            assert!(futures_util::poll!(terminating.as_mut()).is_pending(), "dropped while it drains");
        });
        assert_eq!(rt.state("doubler"), Ok(KernelState::Terminating));
    }

    /// A terminate dropped while its kernel drains leaves nothing counted once the kernel has
    /// gone: its rings once it ends, its host queues once it is removed, or, disposed of mid
    /// drain, once the runtime has stopped.
    #[test]
    fn a_terminate_dropped_mid_drain_leaves_nothing_counted() {
        for backend in [BackendChoice::Auto, BackendChoice::Cpu] {
            let rt = pollster::block_on(Runtime::new(RuntimeOptions::default().with_backend(backend))).unwrap();
            let before = held(&rt);
            drop_a_terminate_mid_drain(&rt);
            assert!(held(&rt).1 > before.1, "{backend:?}: its queues are counted");
            let start = Instant::now();
            while rt.state("doubler") != Ok(KernelState::Terminated) {
                assert!(start.elapsed() < Duration::from_secs(30), "{backend:?}: {:?}", rt.state("doubler"));
                std::thread::sleep(Duration::from_millis(5));
            }
            assert_eq!(held(&rt).0, before.0, "{backend:?}: its rings are freed when it ends");
            rt.remove("doubler").unwrap();
            assert_eq!(held(&rt), before, "{backend:?}: and its queues when it is removed");

            drop_a_terminate_mid_drain(&rt);
            pollster::block_on(rt.dispose()).unwrap();
            assert_eq!(held(&rt), before, "{backend:?}: disposed of mid drain");
        }
    }
}

//! The tick: the one place kernels run. Each device has its own tick loop; ticks run back to
//! back while there is work and not at all while idle. Each tick is three steps:
//!
//! 1. [**plan**](plan) (under the table lock): per running kernel, what it takes from its input
//!    queue, what its feeder forwards into it, and whether its answers have room;
//! 2. **execute**: the backend's step ([`Execute`]). On a GPU: one write per kernel (ring header
//!    and messages together), one bounded dispatch per kernel, ring-to-ring copies between
//!    connected kernels, every kernel's counters, answers and state copied into one readback
//!    buffer, one submit and one map. On the cpu backend: each kernel's host handler runs over
//!    its input, without the lock;
//! 3. [**deliver**](deliver) (under the lock again): answers into ledgers and queues, held input
//!    released, counters.
//!
//! A tick that fails because the device was lost hands over to [`crate::recovery`], which also
//! decides what the loop does next.

mod deliver;
mod plan;

use std::sync::Arc;

use crate::backend::{Device, Execute};
use crate::devices::DeviceId;
use crate::platform;
use crate::pressure;
use crate::recovery::{Flow, Recovery, TickOutcome};
use crate::spans::{self, Phase};
use crate::table::Shared;

/// Ticks `device` until the runtime is dropped or disposed. A lost device does not stop it: it
/// idles until recovery (or recovers itself, with automatic recovery).
pub(crate) async fn run(shared: Arc<Shared>, device: DeviceId) {
    let mut recovery = Recovery::new(device);
    loop {
        let listener = shared.wake.listen();
        if shared.is_shut_down() {
            return;
        }
        // Woken by (or about to plan after) the first of several sends in a row: let the others
        // land, so they go out in this tick and not the next.
        platform::settle(|| shared.wakes());
        shared.turn(device).leave_to_caller();
        // A caller may be running a tick (see `help`). Once it is over, the loop starts again:
        // listening anew and settling, as if just woken, rather than planning at once, when the
        // caller may be in the middle of its next burst of sends.
        let Some(turn) = shared.turn(device).try_take() else {
            shared.turn(device).wait_until_free();
            continue;
        };
        // The shutdown releases the device while it holds the turn (see `complete_shutdown`):
        // no tick starts after it.
        if shared.is_shut_down() {
            return;
        }
        // The device is held for the tick only: a lost one (its readback buffer, its caches)
        // is freed once recovery replaces it, not whenever this loop next wakes.
        #[cfg(not(target_arch = "wasm32"))]
        let started = std::time::Instant::now();
        let outcome = {
            let context = Tick { shared: &shared, id: device, device: shared.device(device) };
            match &*context.device {
                Device::Gpu(gpu) => tick(&context, gpu, None).await,
                Device::Cpu(cpu) => tick(&context, cpu, None).await,
            }
        };
        if matches!(outcome, TickOutcome::Ran) {
            #[cfg(not(target_arch = "wasm32"))]
            shared.turn(device).tick_took(started.elapsed());
            shared.turn(device).loop_ticked();
        }
        drop(turn);
        // A tick that ended after the shutdown may have failed on the released device: there is
        // nothing left to recover or relay.
        if shared.is_shut_down() {
            return;
        }
        pressure::check_memory_alerts(&shared);
        // Connected kernels on other devices relay through the host both ways: answers pushed
        // into their input queues, and room freed in queues their feeders wait on. With several
        // devices a tick that ran wakes the others' loops to look.
        if matches!(outcome, TickOutcome::Ran) && shared.device_count() > 1 {
            shared.wake();
        }
        // A tick that ran leaves work behind only as input still waiting (beyond its ring or its
        // budget, or held for room) or as relays to other devices; what was sent or freed while
        // it ran woke `listener`, which the wait below sees at once. Otherwise the loop waits
        // rather than planning an empty pass, which on the web would stand between the answers
        // just delivered and the receives waiting for them.
        let flow = match outcome {
            TickOutcome::Ran if !work_remains(&shared, device) => Flow::WaitForWork,
            outcome => recovery.after_tick(&shared, outcome).await,
        };
        match flow {
            Flow::TickAgain => platform::let_woken_run().await,
            Flow::WaitForWork => listener.await,
            Flow::Stop => return,
        }
    }
}

/// Most messages a tick run by a waiting caller ([`help`]) may dispatch: it holds the caller's
/// thread (perhaps an async executor's) while the device works, so it takes small ticks only. A
/// larger one is left to the tick loop, which its sends woke.
#[cfg(not(target_arch = "wasm32"))]
const HELPING_TICK_MESSAGES: usize = 1024;

/// Natively, a caller about to wait for answers from a kernel on `device` runs the device's
/// next tick on its own thread if none is under way, instead of waiting for the tick loop's
/// thread to wake, tick and wake it in turn: a round trip without thread hops, as a raw
/// `submit` and `poll` on the caller's thread is. The tick loop, which the caller's sends woke,
/// plans after it; while callers run the ticks, it leaves the next one's sender a moment to
/// take the turn first (see `TickTurn::leave_to_caller`). A tick over
/// [`HELPING_TICK_MESSAGES`] messages is left to the loop, and so is every tick after one that
/// ran longer than `CALLER_TICK_LIMIT` (a slow handler or device), until one is that short
/// again; a failed one loses the device as the loop's would, and the loop recovers it. On the web the tick loop is a task of the caller's
/// own thread, so there is no hop to save and callers never help.
///
/// It blocks until the tick is delivered: natively a tick never waits on anything but the device
/// (`poll` blocks for it), so its future is driven here, not handed to the caller's executor.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn help(shared: &Shared, device: DeviceId) {
    let context = Tick { shared, id: device, device: shared.device(device) };
    // The cpu backend's host handlers are the user's code: they stay on the loop's thread.
    let Device::Gpu(gpu) = &*context.device else { return };
    let turns = shared.turn(device);
    // After a slow tick the loop ticks, and the caller waits for it without holding its thread.
    let Some(turn) = turns.callers_may_tick().then(|| turns.try_take()).flatten() else {
        turns.caller_left_to_loop();
        return;
    };
    if shared.is_shut_down() {
        return;
    }
    let started = std::time::Instant::now();
    let outcome = pollster::block_on(tick(&context, gpu, Some(HELPING_TICK_MESSAGES)));
    match outcome {
        // The loop ticks again after a tick that ran, for what it left: input beyond the
        // ring or held back for room, answers relayed to a connected kernel through the
        // host, other devices' relays. It is woken when anything may be left, and then takes
        // the turn at once.
        TickOutcome::Ran => {
            // Recorded while the turn is held: the loop, waiting for it, sees it once free.
            turns.tick_took(started.elapsed());
            turns.caller_ticked();
            drop(turn);
            if work_remains(shared, device) {
                turns.caller_left_to_loop();
                shared.wake();
            }
        }
        TickOutcome::Failed { error, generation } => {
            drop(turn);
            crate::recovery::fail_device(shared, device, error, generation);
            shared.wake();
        }
        // Nothing to run, or more than a caller takes: the caller waits for the loop.
        TickOutcome::Idle => turns.caller_left_to_loop(),
    }
}

/// Whether `device` may have work left after a tick that ran: input still waiting on its
/// kernels, or other devices to relay to.
fn work_remains(shared: &Shared, device: DeviceId) -> bool {
    shared.device_count() > 1 || plan::input_at_most(&shared.lock(), device) > 0
}

/// Which device a tick runs on.
struct Tick<'a> {
    shared: &'a Shared,
    id: DeviceId,
    /// The device as the tick found it (recovery may replace it meanwhile).
    device: Arc<Device>,
}

/// One tick on `backend`, the execution side of the tick's device, in a span when tracing is on.
/// With a `limit`, a tick of more messages than that is not run (and reports `Idle`).
async fn tick<B: Execute>(context: &Tick<'_>, backend: &B, limit: Option<usize>) -> TickOutcome {
    let tracing = context.shared.settings.tracing;
    // A pass that finds nothing to run (the last of a burst) is a short span with a plan only.
    spans::around(tracing, Phase::Tick, None, tick_steps(context, backend, tracing, limit)).await
}

async fn tick_steps<B: Execute>(context: &Tick<'_>, backend: &B, tracing: bool, limit: Option<usize>) -> TickOutcome {
    let Tick { shared, id: device, .. } = *context;
    let (plan, submitted, (generation, submitted_at), executing) = {
        let mut table = shared.lock();
        let generation = table.device(device).generation;
        // Lost and not yet recovered, or recovered since the device was fetched: nothing to do
        // here (kernels' resources belong to the current device).
        if table.device(device).lost.is_some() || !Arc::ptr_eq(&context.device, &shared.device(device)) {
            return TickOutcome::Idle;
        }
        if let Err(error) = backend.check() {
            return TickOutcome::Failed { error, generation };
        }
        // Only callers' ticks have a limit, and callers help only natively.
        if cfg!(not(target_arch = "wasm32")) && limit.is_some_and(|limit| plan::input_at_most(&table, device) > limit) {
            return TickOutcome::Idle;
        }
        let now = platform::now_ms();
        let policy = pressure::evaluate_degradation(shared, &mut table, now);
        let planning = platform::now_ms();
        let plan = spans::span(tracing, Phase::Plan, None).in_scope(|| {
            let limits = plan::Limits { budget: shared.settings.tick_budget, readback: backend.readback_budget() };
            plan::plan(&mut table, device, B::ROUTING, B::capacity, now, limits, &policy)
        });
        if plan.is_empty() {
            return TickOutcome::Idle;
        }
        // Execute: this submission and waiting for it; deliver runs inside, as the backend
        // completes.
        let executing = spans::span(tracing, Phase::Execute, None);
        let planned = platform::now_ms();
        // wgpu runs ready `map_async` callbacks inside the submit, the application's too: one
        // that calls this runtime is refused (see `table::HoldingTable`).
        let submitted = executing.in_scope(|| backend.submit(&plan::dispatches(&table, &plan, now)));
        match submitted {
            Ok(submitted) => {
                let submitted_at = platform::now_ms();
                table.ticks += 1;
                table.device(device).ticks += 1;
                table.tick_time.plan_ms += planned - planning;
                table.tick_time.submit_ms += submitted_at - planned;
                (plan, submitted, (generation, submitted_at), executing)
            }
            Err(error) => {
                plan::unplan(&mut table, &plan);
                return TickOutcome::Failed { error, generation };
            }
        }
    };
    let completing = backend.complete(submitted, |outcomes| {
        let now = platform::now_ms();
        let mut table = shared.lock();
        // The device was declared lost while this tick ran: its input was put back in line
        // and is processed again from the last checkpoint, so its answers must not count.
        if table.device(device).generation == generation {
            let processed = spans::span(tracing, Phase::Deliver, None)
                .in_scope(|| deliver::deliver(&mut table, &plan, outcomes, now));
            table.device(device).messages_processed += processed;
            table.tick_time.wait_ms += now - submitted_at;
            table.tick_time.deliver_ms += platform::now_ms() - now;
        } else {
            plan::unplan(&mut table, &plan);
        }
    });
    let completed = executing.run(completing).await;
    drop(executing);
    match completed {
        Ok(()) => TickOutcome::Ran,
        Err(error) => TickOutcome::Failed { error, generation },
    }
}

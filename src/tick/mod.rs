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
        let context = Tick { shared: &shared, id: device, device: shared.device(device) };
        let outcome = match &*context.device {
            Device::Gpu(gpu) => tick(&context, gpu).await,
            Device::Cpu(cpu) => tick(&context, cpu).await,
        };
        pressure::check_memory_alerts(&shared);
        // Connected kernels on other devices relay through the host both ways: answers pushed
        // into their input queues, and room freed in queues their feeders wait on. With several
        // devices a tick that ran wakes the others' loops to look.
        if matches!(outcome, TickOutcome::Ran) && shared.device_count() > 1 {
            shared.wake();
        }
        match recovery.after_tick(&shared, outcome).await {
            Flow::TickAgain => continue,
            Flow::WaitForWork => listener.await,
            Flow::Stop => return,
        }
    }
}

/// Which device a tick runs on.
struct Tick<'a> {
    shared: &'a Shared,
    id: DeviceId,
    /// The device as the tick found it (recovery may replace it meanwhile).
    device: Arc<Device>,
}

/// One tick on `backend`, the execution side of the tick's device, in a span when tracing is on.
async fn tick<B: Execute>(context: &Tick<'_>, backend: &B) -> TickOutcome {
    let tracing = context.shared.settings.tracing;
    // A pass that finds nothing to run (the last of a burst) is a short span with a plan only.
    spans::around(tracing, Phase::Tick, None, tick_steps(context, backend, tracing)).await
}

async fn tick_steps<B: Execute>(context: &Tick<'_>, backend: &B, tracing: bool) -> TickOutcome {
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
        let now = platform::now_ms();
        let policy = pressure::evaluate_degradation(shared, &mut table, now);
        let planning = platform::now_ms();
        let plan = spans::span(tracing, Phase::Plan, None).in_scope(|| {
            plan::plan(&mut table, device, B::ROUTING, B::capacity, now, shared.settings.tick_budget, &policy)
        });
        if plan.is_empty() {
            return TickOutcome::Idle;
        }
        // Execute: this submission and waiting for it; deliver runs inside, as the backend
        // completes.
        let executing = spans::span(tracing, Phase::Execute, None);
        let planned = platform::now_ms();
        let submitted = executing.in_scope(|| backend.submit(&plan::dispatches(&table, &plan)));
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
            spans::span(tracing, Phase::Deliver, None).in_scope(|| deliver::deliver(&mut table, &plan, outcomes, now));
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

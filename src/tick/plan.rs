//! Plan: what each running kernel of one device takes from its input queue this tick, what its
//! feeder forwards into it, and whether its answers have room where they go. Written once for
//! every backend; the backend contributes only each dispatch's capacity and how connected
//! kernels on one device pass answers ([`Routing`]). Connected kernels on different devices
//! always relay through the host.
//!
//! Room is reserved before anything is dispatched, so every answer has a place: a kernel takes
//! no more than its output queue (or its downstream) can hold, except while it drains for
//! termination, when keeping every answer matters more than the bound.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::backend::{Dispatch, KernelExec, ReadbackBudget, Routing};
use crate::degradation::Policy;
use crate::devices::DeviceId;
use crate::lifecycle::KernelState;
use crate::pressure;
use crate::table::{Kernel, PlanMark, Table};

/// One kernel's share of a tick.
#[derive(Debug)]
pub(crate) struct Planned {
    pub id: String,
    pub instance: u64,
    /// Ring index of the first message dispatched (the oldest unanswered one).
    pub head: u32,
    /// Messages handed over from the input queue this tick, and where they go in the ring.
    pub take: usize,
    pub input_at: u32,
    /// Messages in the dispatch: unanswered ones, this tick's, and forwarded ones.
    pub pending: u32,
    /// The pipeline stage: 0, or one after the kernel that feeds it this tick.
    pub level: usize,
    /// The connected kernel its answers go to (otherwise the host's output queue).
    pub downstream: Option<String>,
    /// How its answers reach `downstream`: on the device, or through the host.
    pub routing: Routing,
    /// With [`Routing::OnDevice`]: the plan index of that kernel and the ring index its answers
    /// land at.
    pub forward: Option<(usize, u32)>,
}

/// Plans a tick of `device` over the running kernels placed there that have work (input, or a
/// feeder that may forward to them), on the backend whose dispatch `capacity` this is, and
/// hands each planned kernel its input (held in its input queue until answered). Upstream
/// stages come first, so each kernel knows what its feeder forwards; among kernels of one
/// stage, higher priority first, and with a `budget` the one a bounded tick served longest ago
/// first. With a `budget` (in `limits`), the tick takes at most that many messages from input
/// queues, in that order (a kernel fed this tick drains its queue regardless); and it takes no
/// more than what it may copy back allows (`limits.readback`), the rest waiting a tick.
///
/// Under load the degradation `policy` shapes the tick (see [`crate::degradation`]): kernels it
/// defers sit the tick out while other kernels have work (never when nothing else would run),
/// and kernels over their latency budget take smaller batches.
pub(crate) fn plan(
    table: &mut Table,
    device: DeviceId,
    routing: Routing,
    capacity: fn(&KernelExec) -> Option<u32>,
    now_ms: f64,
    limits: Limits,
    policy: &Policy,
) -> Vec<Planned> {
    // Below `moderate` nothing is deferred: one pass, without looking for others' work.
    if !policy.may_defer() {
        return plan_with(table, device, routing, capacity, now_ms, limits, policy, &mut |_| false);
    }
    let tick = table.ticks;
    let others_have_work = table.kernels.values().any(|k| {
        k.device == device
            && k.runs()
            && !policy.defers(k.priority, tick)
            && (!k.mailbox.inbox.is_empty() || k.cursor.in_flight() > 0)
    });
    let defer = |priority: i32| others_have_work && policy.defers(priority, tick);
    let mut deferred = false;
    let planned = plan_with(table, device, routing, capacity, now_ms, limits, policy, &mut |priority| {
        let defers = defer(priority);
        deferred |= defers;
        defers
    });
    if planned.is_empty() && deferred {
        // Everything that had work was deferred: run it rather than idle the device.
        return plan_with(table, device, routing, capacity, now_ms, limits, policy, &mut |_| false);
    }
    planned
}

/// The most messages the next tick of `device` could dispatch from its kernels' input queues:
/// what waits there and what is in flight, over every kernel that runs on it.
pub(crate) fn input_at_most(table: &Table, device: DeviceId) -> usize {
    table.kernels.values().filter(|k| k.device == device && k.runs()).map(Kernel::input_depth).sum()
}

/// A planned tick that will not be delivered (its submission failed, or its device was replaced
/// meanwhile): its kernels are no longer in a tick. Their held input stays held for recovery.
pub(crate) fn unplan(table: &mut Table, plan: &[Planned]) {
    for p in plan {
        if let Some(kernel) = table.launch_of(&p.id, p.instance) {
            kernel.in_tick = false;
            kernel.notify();
        }
    }
}

/// What bounds a tick besides its kernels' rooms.
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    /// At most this many messages taken from input queues (`RuntimeOptions::tick_budget`).
    pub budget: Option<usize>,
    /// What it may copy back.
    pub readback: ReadbackBudget,
}

/// [`plan`], with `defer` saying which (unfed) kernels sit this tick out, by priority.
#[allow(clippy::too_many_arguments)]
fn plan_with(
    table: &mut Table,
    device: DeviceId,
    backend: Routing,
    capacity: fn(&KernelExec) -> Option<u32>,
    now_ms: f64,
    Limits { budget, readback }: Limits,
    policy: &Policy,
    defer: &mut dyn FnMut(i32) -> bool,
) -> Vec<Planned> {
    // Only kernels with input, or that a feeder may feed this tick: a tick's plan costs what
    // has work, not every kernel that runs (a thousand idle ones cost 0.5 ms a tick, and so did
    // every stage of an idle pipeline).
    let ids = with_fed_stages(table, device, table.running_ids_where(Some(device), &|k| k.input_depth() > 0));
    // Under a budget (of messages, or of what a GPU tick copies back), of kernels of one stage
    // and priority the one served longest ago goes first: in id order every tick, the first
    // would take the whole budget while it had a backlog, and the others would wait until it
    // had none. Ties in id order: each key ends with its id. Sorted through a
    // heap, as lists of ids are (see `table::sorted`).
    let bounded = budget.is_some() || readback.most != u64::MAX;
    let keyed: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let kernel = &table.kernels[&id];
            (kernel.route.depth, Reverse(kernel.priority), if bounded { kernel.served } else { 0 }, id)
        })
        .collect();
    let ids = BinaryHeap::from(keyed).into_sorted_vec().into_iter().map(|(.., id)| id);
    // Each stage's forward room is worked out once this tick (see `forward_room`), and a fed
    // stage's feeder noted, on the kernels' marks for this plan.
    table.plans += 1;
    let plan_no = table.plans;
    let served = table.ticks + 1;
    let mut budget = budget.unwrap_or(usize::MAX);
    // What the tick may still copy back: a kernel takes only the messages whose answers fit, and
    // the rest wait for the next tick (a readback over the device's largest buffer loses it).
    let mut readback_left = readback.most;
    let mut plan: Vec<Planned> = Vec::new();
    for id in ids {
        let kernel = &table.kernels[&id];
        let Some(exec) = kernel.resources.exec.as_ref() else { continue };
        let Some(slots) = capacity(exec) else { continue };
        let downstream = kernel.route.downstream.clone();
        let routing = routing_of(table, kernel, backend);
        // What its dispatch copies back: answers forwarded on the device are not.
        let cost = (readback.cost)(exec);
        let fixed = cost.fixed_in_tick(crate::checkpoint::due(kernel, now_ms));
        let forwards = downstream.is_some() && routing == Routing::OnDevice;
        let per_answer = if forwards { 0 } else { cost.per_answer };
        // What bounds what it takes: its own answers, or, forwarding them, those of the last
        // stage of its chain on the device, after what the later stages copy back and hold.
        let (bound_fixed, bound_per_answer, queued_later) = match (forwards, &downstream) {
            (true, Some(down)) => {
                let chain = chain_readback(table, down, backend, readback, now_ms);
                (fixed.saturating_add(chain.fixed), chain.per_answer, chain.queued)
            }
            _ => (fixed, per_answer, 0),
        };
        let answer_room = answer_room(table, kernel, backend, capacity, policy, plan_no);
        let max_batch = policy.max_batch(kernel.max_batch, pressure::over_latency_budget(table, kernel));
        // The plan index of the kernel feeding it on the device, which forwards all its
        // `pending` messages.
        let fed = PlanMark::of(kernel, plan_no).fed_by;
        if fed.is_none() && defer(kernel.priority) {
            continue;
        }
        let kernel = table.kernels.get_mut(&id).expect("listed above");
        kernel.cursor.rewind_if_idle();
        let in_flight = kernel.cursor.in_flight();
        // How many messages its dispatch may hold for the answers to fit what the tick may still
        // copy back; the tick's first kernel runs at least one, so every tick moves.
        let fits = match bound_per_answer {
            0 => usize::MAX,
            bytes => {
                let answers = readback_left.saturating_sub(bound_fixed) / bytes;
                usize::try_from(answers.saturating_sub(queued_later)).unwrap_or(usize::MAX)
            }
        };
        let fits = if plan.is_empty() { fits.max(in_flight as usize + 1) } else { fits };
        let (take, room) = match fed {
            // Fed this tick: its whole input queue goes first (the feeder's room made sure it
            // fits, within its batch limit), so the forwarded messages get the next sequence
            // numbers.
            Some(_) => (kernel.mailbox.inbox.len(), usize::MAX),
            None => {
                let batch_room = slots.min(max_batch).saturating_sub(in_flight) as usize;
                let most =
                    kernel.mailbox.inbox.len().min(batch_room).min(budget).min(fits.saturating_sub(in_flight as usize));
                let room = answer_room.saturating_sub(in_flight as usize);
                // Calls' answers go to their callers: with its output queue short of room, a
                // last stage still takes the calls among its next messages (a call must not
                // wait on answers nobody receives).
                let take = match most > room && downstream.is_none() {
                    true => kernel.mailbox.ledger.fitting(
                        kernel.mailbox.ledger.next_answer() + in_flight as u64,
                        most,
                        room,
                    ),
                    false => most.min(room),
                };
                (take, answer_room.saturating_add(take.saturating_sub(room)))
            }
        };
        let forwarded_in = fed.map_or(0, |feeder| plan[feeder].pending);
        let pending = in_flight + take as u32 + forwarded_in;
        // (A fed stage's feeder made room for it; an unfed one whose messages in flight alone
        // do not fit waits for a tick with room.)
        if pending == 0 || pending as usize > room || (fed.is_none() && pending as usize > fits) {
            continue;
        }
        budget = budget.saturating_sub(take);
        readback_left =
            readback_left.saturating_sub(fixed.saturating_add(u64::from(pending).saturating_mul(per_answer)));
        if bounded && take > 0 {
            kernel.served = served;
        }
        kernel.in_tick = true;
        let head = kernel.cursor.head();
        let input_at = head.wrapping_add(in_flight);
        kernel.cursor.hand_over(&mut kernel.mailbox, take);
        let mut level = 0;
        if let Some(feeder) = fed {
            let at = kernel.cursor.take_forwarded(&mut kernel.mailbox, forwarded_in, now_ms);
            plan[feeder].forward = Some((plan.len(), at));
            level = plan[feeder].level + 1;
        }
        if take > 0 {
            // Senders waiting for queue room may continue.
            kernel.notify();
        }
        let instance = kernel.instance;
        if let (Some(down), Routing::OnDevice) = (&downstream, routing) {
            if let Some(down) = table.kernels.get(down) {
                down.plan_mark.set(PlanMark { fed_by: Some(plan.len()), ..PlanMark::of(down, plan_no) });
            }
        }
        plan.push(Planned { id, instance, head, take, input_at, pending, level, downstream, routing, forward: None });
    }
    plan
}

/// What the backend needs of each planned kernel, borrowed from the table.
pub(crate) fn dispatches<'t>(table: &'t Table, plan: &[Planned], now_ms: f64) -> Vec<Dispatch<'t>> {
    plan.iter()
        .map(|p| {
            let kernel = &table.kernels[&p.id];
            Dispatch {
                exec: kernel.resources.exec.as_ref().expect("planned kernels have resources"),
                input: kernel.mailbox.inbox.newest_held(p.take),
                input_at: p.input_at,
                head: p.head,
                pending: p.pending,
                forward: p.forward,
                level: p.level,
                definition: &kernel.def,
                fusable: kernel.life.state() == KernelState::Active && !kernel.out_of_ticks(),
                checkpoint: crate::checkpoint::due(kernel, now_ms),
            }
        })
        .collect()
}

/// How `kernel`'s answers reach its downstream on a backend that routes so: on the device only
/// when both run on the same device and the downstream is not moving to another.
fn routing_of(table: &Table, kernel: &Kernel, backend: Routing) -> Routing {
    let same_device =
        |down: &String| table.kernels.get(down).is_some_and(|d| d.device == kernel.device && !d.out_of_ticks());
    match (&kernel.route.downstream, backend) {
        (Some(down), Routing::OnDevice) if same_device(down) => Routing::OnDevice,
        _ => Routing::ViaHost,
    }
}

/// How many forwarded messages kernel `id` can take on the device this tick after its whole
/// input queue: 0 when it does not run on this backend. Bounded by its dispatch (its ring and
/// its batch limit, `maxBatch` as the degradation `policy` has it: a fed kernel dispatches all it
/// holds, so this is the only place its limit can hold) and by where its own answers go (its
/// output queue, or its downstream's room, recursively: a fused run stays within every later
/// stage's limit).
///
/// Kept on the kernel's mark for plan `plan_no` for the rest of the tick's plan, so a pipeline's rooms cost one walk down it,
/// not one per stage. A stage's room is only asked for before it is planned (by the stages
/// before it, which the plan takes first), and planning them changes nothing it depends on.
fn forward_room(
    table: &Table,
    id: &str,
    backend: Routing,
    capacity: fn(&KernelExec) -> Option<u32>,
    policy: &Policy,
    plan_no: u64,
) -> usize {
    let Some(kernel) = table.kernels.get(id) else { return 0 };
    let mark = PlanMark::of(kernel, plan_no);
    if let Some(room) = mark.room {
        return room;
    }
    if !kernel.runs() || kernel.out_of_ticks() {
        return 0;
    }
    let Some(slots) = kernel.resources.exec.as_ref().and_then(capacity) else { return 0 };
    let queued = kernel.cursor.in_flight() as usize + kernel.mailbox.inbox.len();
    let max_batch = policy.max_batch(kernel.max_batch, pressure::over_latency_budget(table, kernel));
    let dispatch_room = (slots.min(max_batch) as usize).saturating_sub(queued);
    let room = dispatch_room.min(answer_room(table, kernel, backend, capacity, policy, plan_no).saturating_sub(queued));
    kernel.plan_mark.set(PlanMark { room: Some(room), ..PlanMark::of(kernel, plan_no) });
    room
}

/// Room where `kernel`'s answers go this tick: the next kernel (on the device, or relayed
/// through the host), or its output queue; no bound while a last stage drains to terminate.
fn answer_room(
    table: &Table,
    kernel: &Kernel,
    backend: Routing,
    capacity: fn(&KernelExec) -> Option<u32>,
    policy: &Policy,
    plan_no: u64,
) -> usize {
    match (&kernel.route.downstream, routing_of(table, kernel, backend)) {
        (Some(down), Routing::OnDevice) => forward_room(table, down, backend, capacity, policy, plan_no),
        (Some(down), Routing::ViaHost) => inbox_room(table, down),
        (None, _) if kernel.life.state() == KernelState::Terminating => usize::MAX,
        (None, _) => kernel.mailbox.outbox.free(),
    }
}

/// Room in `id`'s input queue for a connected kernel's answers relayed through the host: none
/// while it does not run (paused, failed) or once it stops taking messages, so a paused stage
/// holds the stages before it as it does on the device (see [`forward_room`]), whatever the
/// backend.
fn inbox_room(table: &Table, id: &str) -> usize {
    // A terminating stage still routed to takes what its feeder relays: the two end together,
    // flushing their pipeline (a stage terminated alone leaves its pipeline at once).
    let taking = |k: &&Kernel| k.runs() && (k.life.state().accepts_messages() || k.life.terminating());
    table.kernels.get(id).filter(taking).map_or(0, |k| k.mailbox.inbox.free())
}

/// What the stages of a chain from `id` on, as far as answers pass on the device, copy back
/// this tick besides what a feeder forwards into them: see [`chain_readback`].
struct ChainReadback {
    /// Their counters, and the states of those checkpointed this tick.
    fixed: u64,
    /// Messages they hold already (in flight and queued), which they run with what comes.
    queued: u64,
    /// Bytes an answer of the chain's last stage, whose answers are copied back.
    per_answer: u64,
}

/// [`ChainReadback`] of the stages from `id` down its pipeline while answers stay on the
/// device: a stage that forwards its answers has their cost met by the stages after it.
fn chain_readback(table: &Table, id: &str, backend: Routing, readback: ReadbackBudget, now_ms: f64) -> ChainReadback {
    let mut chain = ChainReadback { fixed: 0, queued: 0, per_answer: 0 };
    let mut at = Some(id);
    while let Some(kernel) = at.and_then(|id| table.kernels.get(id)) {
        let Some(exec) = kernel.resources.exec.as_ref() else { break };
        let cost = (readback.cost)(exec);
        chain.fixed = chain.fixed.saturating_add(cost.fixed_in_tick(crate::checkpoint::due(kernel, now_ms)));
        chain.queued += u64::from(kernel.cursor.in_flight()) + kernel.mailbox.inbox.len() as u64;
        chain.per_answer = cost.per_answer;
        at = match routing_of(table, kernel, backend) {
            Routing::OnDevice => kernel.route.downstream.as_deref(),
            Routing::ViaHost => None,
        };
    }
    chain
}

/// `ids` (the kernels with input) and after them the stages that they may feed on `device` this
/// tick (`plan_with` puts them in order): a stage with no input of its own and nothing with input before it has
/// nothing to run, so an idle pipeline costs a tick nothing. Each stage is walked once: a walk
/// down from a stage with input ends at the next one, which is walked from itself.
fn with_fed_stages(table: &Table, device: DeviceId, mut ids: Vec<String>) -> Vec<String> {
    let mut fed = Vec::new();
    for id in &ids {
        let mut down = table.kernels[id].route.downstream.as_deref();
        while let Some(id) = down {
            let feedable = |k: &&Kernel| k.device == device && !k.out_of_ticks() && k.runs() && k.input_depth() == 0;
            let Some(kernel) = table.kernels.get(id).filter(feedable) else { break };
            fed.push(id.to_owned());
            down = kernel.route.downstream.as_deref();
        }
    }
    ids.extend(fed);
    ids
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use event_listener::Event;

    use super::*;
    use crate::backend::cpu::{CpuContext, CpuKernel};
    use crate::backend::{Execute, ReadbackCost};
    use crate::cursor::RingCursor;
    use crate::degradation::DegradationLevel;
    use crate::kernel;
    use crate::lifecycle::{Action, KernelMode, Lifecycle};
    use crate::mailbox::Mailbox;
    use crate::table::{Kernel, Resources, Route};
    use crate::telemetry::Counters;

    /// An active doubler on the cpu backend with `queued` messages waiting.
    fn doubler(priority: i32, queued: usize) -> Kernel {
        let def = kernel::lookup("doubler").expect("built-in");
        let mut life = Lifecycle::new();
        life.apply(Action::Launch).unwrap();
        life.apply(Action::Activate).unwrap();
        let mut mailbox = Mailbox::new(4, 4, 64, 64);
        let packed: Vec<u8> = (0..queued as i32).flat_map(i32::to_le_bytes).collect();
        assert_eq!(mailbox.accept_packed(&packed, 0.0), queued);
        Kernel {
            device: DeviceId(0),
            held_out: false,
            writing: false,
            in_tick: false,
            ends_when_drained: false,
            served: 0,
            plan_mark: Default::default(),
            mode: KernelMode::Persistent,
            max_batch: 64,
            priority,
            latency_budget_ms: None,
            checkpoint_interval_ms: 0.0,
            shape: Default::default(),
            instance: 0,
            life,
            mailbox,
            cursor: RingCursor::default(),
            counters: Counters::default(),
            route: Route::default(),
            resources: Resources {
                exec: Some(KernelExec::Cpu(Arc::new(CpuKernel::create(&def).unwrap()))),
                ..Default::default()
            },
            breaker: None,
            changed: Arc::new(Event::new()),
            removed: Default::default(),
            ended: None,
            unrecovered: None,
            def,
        }
    }

    /// Plans a tick and answers everything it dispatched (as the cpu backend would).
    fn planned(table: &mut Table, budget: Option<usize>) -> Vec<(String, usize)> {
        planned_under(table, budget, &Policy::off())
    }

    /// [`planned`] under a degradation policy.
    fn planned_under(table: &mut Table, budget: Option<usize>, policy: &Policy) -> Vec<(String, usize)> {
        planned_within(table, budget, ReadbackBudget::NONE, policy)
    }

    /// [`planned_under`] with what a tick may copy back.
    fn planned_within(
        table: &mut Table,
        budget: Option<usize>,
        readback: ReadbackBudget,
        policy: &Policy,
    ) -> Vec<(String, usize)> {
        let limits = Limits { budget, readback };
        let plan = plan(table, DeviceId(0), CpuContext::ROUTING, CpuContext::capacity, 0.0, limits, policy);
        for p in &plan {
            let k = table.kernels.get_mut(&p.id).unwrap();
            k.cursor.answered(&mut k.mailbox, p.head, p.pending, p.pending);
        }
        plan.into_iter().map(|p| (p.id, p.take)).collect()
    }

    #[test]
    fn a_bounded_tick_serves_higher_priority_first() {
        let mut table = Table::default();
        table.kernels.insert("a-low".into(), doubler(0, 8));
        table.kernels.insert("b-high".into(), doubler(5, 8));
        table.kernels.insert("c-mid".into(), doubler(1, 8));
        assert_eq!(planned(&mut table, Some(12)), [("b-high".to_owned(), 8), ("c-mid".to_owned(), 4)]);
        // What is left goes in the next tick, the lower priority last.
        assert_eq!(planned(&mut table, Some(100)), [("c-mid".to_owned(), 4), ("a-low".to_owned(), 8)]);
    }

    #[test]
    fn a_tick_copies_back_no_more_than_the_device_allows_and_the_rest_waits() {
        let mut table = Table::default();
        table.kernels.insert("a".into(), doubler(0, 40));
        table.kernels.insert("b".into(), doubler(0, 40));
        // 16 bytes a dispatch and 4 an answer, 200 bytes a tick: `a` takes 176 of them, which
        // leaves `b` room for 2 answers; its other 38 go in the next tick.
        let readback = ReadbackBudget { most: 200, cost: SMALL };
        let off = Policy::off();
        assert_eq!(planned_within(&mut table, None, readback, &off), [("a".to_owned(), 40), ("b".to_owned(), 2)]);
        assert_eq!(planned_within(&mut table, None, readback, &off), [("b".to_owned(), 38)]);
        // The first kernel of a tick moves even when one dispatch is over the limit.
        table.kernels.insert("c".into(), doubler(0, 3));
        let tiny = ReadbackBudget { most: 8, cost: SMALL };
        assert_eq!(planned_within(&mut table, None, tiny, &off), [("c".to_owned(), 1)]);
    }

    #[test]
    fn a_bounded_tick_takes_turns_among_kernels_of_one_priority() {
        let mut table = Table::default();
        table.kernels.insert("a".into(), doubler(0, 16));
        table.kernels.insert("b".into(), doubler(0, 16));
        let mut firsts = Vec::new();
        for tick in 0..4 {
            table.ticks = tick;
            firsts.push(planned(&mut table, Some(8)));
        }
        let served = |id: &str| vec![(id.to_owned(), 8)];
        assert_eq!(
            firsts,
            [served("a"), served("b"), served("a"), served("b")],
            "neither waits for the other to empty"
        );
    }

    #[test]
    fn an_unbounded_tick_takes_every_queue() {
        let mut table = Table::default();
        table.kernels.insert("a".into(), doubler(0, 3));
        table.kernels.insert("b".into(), doubler(9, 5));
        assert_eq!(planned(&mut table, None), [("b".to_owned(), 5), ("a".to_owned(), 3)]);
    }

    /// Stages `names` connected in order, each with `queued[i]` messages waiting.
    fn chain(table: &mut Table, names: &[&str], queued: &[usize]) {
        for (i, name) in names.iter().enumerate() {
            let mut kernel = doubler(0, queued[i]);
            kernel.route = Route {
                upstream: i.checked_sub(1).map(|i| names[i].to_owned()),
                downstream: names.get(i + 1).map(|&n| n.to_owned()),
                depth: i,
            };
            table.kernels.insert((*name).to_owned(), kernel);
        }
    }

    #[test]
    fn only_stages_with_input_or_after_one_are_candidates() {
        let mut table = Table::default();
        chain(&mut table, &["s0", "s1", "s2", "s3", "s4"], &[0, 2, 0, 3, 0]);
        chain(&mut table, &["idle0", "idle1"], &[0, 0]);
        table.kernels.insert("lone".into(), doubler(0, 1));
        let ids = table.running_ids_where(Some(DeviceId(0)), &|k| k.input_depth() > 0);
        let mut ids = with_fed_stages(&table, DeviceId(0), ids);
        ids.sort_unstable();
        assert_eq!(ids, ["lone", "s1", "s2", "s3", "s4"], "an idle stage with nothing before it is no candidate");
    }

    fn at(level: DegradationLevel) -> Policy {
        Policy { level, protected_priority: 0, top_priority: 0 }
    }

    #[test]
    fn moderate_defers_low_priority_kernels_while_others_have_work_and_loses_nothing() {
        let mut table = Table::default();
        table.kernels.insert("low".into(), doubler(-1, 8));
        table.kernels.insert("high".into(), doubler(0, 8));
        table.ticks = 1;
        assert_eq!(planned_under(&mut table, None, &at(DegradationLevel::Light)).len(), 2, "light only reports");
        table.kernels.insert("low".into(), doubler(-1, 8));
        table.kernels.insert("high".into(), doubler(0, 8));
        assert_eq!(planned_under(&mut table, None, &at(DegradationLevel::Moderate)), [("high".to_owned(), 8)]);
        assert_eq!(table.kernels["low"].mailbox.inbox.len(), 8, "deferred, still queued");
        // Nothing else has work: the deferred kernel runs rather than the device idling.
        assert_eq!(planned_under(&mut table, None, &at(DegradationLevel::Moderate)), [("low".to_owned(), 8)]);
        // One tick in DEFER_EVERY it runs beside the others.
        table.kernels.insert("low".into(), doubler(-1, 8));
        table.kernels.insert("high".into(), doubler(0, 8));
        table.ticks = crate::degradation::DEFER_EVERY;
        assert_eq!(planned_under(&mut table, None, &at(DegradationLevel::Moderate)).len(), 2);
    }

    #[test]
    fn severe_shrinks_the_batches_of_kernels_over_their_latency_budget() {
        let degrader = Some(crate::degradation::Degrader::new(Default::default(), 0.0));
        let mut table = Table { degrader, ..Default::default() };
        let mut slow = doubler(0, 40);
        slow.latency_budget_ms = Some(1.0);
        slow.counters.window_p99_ms = Some(5.0);
        table.kernels.insert("slow".into(), slow);
        table.kernels.insert("fast".into(), doubler(0, 40));
        let bound = 64 / crate::degradation::BATCH_DIVISOR as usize;
        assert_eq!(
            planned_under(&mut table, None, &at(DegradationLevel::Severe)),
            [("fast".to_owned(), 40), ("slow".to_owned(), bound)]
        );
        assert_eq!(table.kernels["slow"].mailbox.inbox.len(), 40 - bound, "the rest waits its turn");
    }

    /// 16 bytes a dispatch and 4 an answer.
    const SMALL: fn(&KernelExec) -> ReadbackCost = |_| ReadbackCost { fixed: 16, state: 0, per_answer: 4 };

    /// What `plan` copies back at [`SMALL`]'s cost: a stage forwarding on the device, its
    /// counters only.
    fn copied_back(plan: &[Planned]) -> u64 {
        plan.iter().map(|p| 16 + if p.forward.is_some() { 0 } else { u64::from(p.pending) * 4 }).sum()
    }

    /// Plans one tick on a backend that forwards on the device, within `most` bytes of readback.
    fn planned_on_device(table: &mut Table, most: u64) -> Vec<Planned> {
        let limits = Limits { budget: None, readback: ReadbackBudget { most, cost: SMALL } };
        plan(table, DeviceId(0), Routing::OnDevice, CpuContext::capacity, 0.0, limits, &Policy::off())
    }

    #[test]
    fn a_chain_forwarding_on_the_device_stays_within_what_a_tick_copies_back() {
        // The head takes only what its last stage's answers leave room for.
        let mut table = Table::default();
        chain(&mut table, &["a", "b"], &[40, 0]);
        let plan = planned_on_device(&mut table, 100);
        assert!(copied_back(&plan) <= 100, "{plan:?}");
        assert_eq!(plan.iter().map(|p| p.pending).collect::<Vec<_>>(), [17, 17]);
        // Behind a kernel that took most of it, likewise.
        let mut table = Table::default();
        table.kernels.insert("0lone".into(), doubler(0, 20));
        chain(&mut table, &["a", "b"], &[10, 0]);
        let plan = planned_on_device(&mut table, 140);
        assert!(copied_back(&plan) <= 140, "{plan:?}");
        // Messages a later stage holds already run with what comes, and count.
        let mut table = Table::default();
        chain(&mut table, &["a", "b"], &[40, 10]);
        let plan = planned_on_device(&mut table, 100);
        assert!(copied_back(&plan) <= 100, "{plan:?}");
    }

    #[test]
    fn messages_in_flight_that_do_not_fit_wait_for_a_tick_with_room() {
        let mut table = Table::default();
        table.kernels.insert("a".into(), doubler(0, 40));
        let mut b = doubler(0, 30);
        b.cursor.hand_over(&mut b.mailbox, 30); // a dispatch that did not run: 30 in flight
        table.kernels.insert("b".into(), b);
        let readback = ReadbackBudget { most: 100, cost: SMALL };
        assert_eq!(planned_within(&mut table, None, readback, &Policy::off()), [("a".to_owned(), 21)]);
    }

    #[test]
    fn under_the_readback_budget_kernels_take_turns() {
        let mut table = Table::default();
        table.kernels.insert("a".into(), doubler(0, 64));
        table.kernels.insert("b".into(), doubler(0, 5));
        let readback = ReadbackBudget { most: 200, cost: SMALL };
        let mut b_ran = 0;
        for tick in 0..4 {
            table.ticks = tick;
            let took = planned_within(&mut table, None, readback, &Policy::off());
            b_ran += took.iter().filter(|(id, _)| id == "b").count();
            // `a` keeps getting messages: its queue refilled to full.
            let a = table.kernels.get_mut("a").unwrap();
            let packed: Vec<u8> = (0..a.mailbox.inbox.free() as i32).flat_map(i32::to_le_bytes).collect();
            a.mailbox.accept_packed(&packed, 0.0);
        }
        assert!(b_ran > 0, "b planned in none of 4 ticks");
    }
}

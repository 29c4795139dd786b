//! Plan: what each running kernel takes from its input queue this tick, what its feeder forwards
//! into it, and whether its answers have room where they go. Written once for every backend;
//! the backend contributes only each dispatch's capacity and how connected kernels pass answers
//! ([`Routing`]).
//!
//! Room is reserved before anything is dispatched, so every answer has a place: a kernel takes
//! no more than its output queue (or its downstream) can hold, except while it drains for
//! termination, when keeping every answer matters more than the bound.

use std::collections::HashMap;

use crate::backend::{Dispatch, KernelExec, Routing};
use crate::lifecycle::KernelState;
use crate::table::Table;

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
    /// With [`Routing::OnDevice`]: the plan index of that kernel and the ring index its answers
    /// land at.
    pub forward: Option<(usize, u32)>,
}

/// Plans a tick over every running kernel of the backend whose dispatch `capacity` this is, and
/// hands each planned kernel its input (held in its input queue until answered). Upstream
/// stages come first, so each kernel knows what its feeder forwards.
pub(crate) fn plan(
    table: &mut Table,
    routing: Routing,
    capacity: fn(&KernelExec) -> Option<u32>,
    now_ms: f64,
) -> Vec<Planned> {
    let mut ids = table.running_ids();
    ids.sort_by_cached_key(|id| depth(table, id));
    let mut plan: Vec<Planned> = Vec::new();
    // Kernel id → (plan index of the kernel feeding it on the device, messages it forwards).
    let mut incoming: HashMap<String, (usize, u32)> = HashMap::new();
    for id in ids {
        let kernel = &table.kernels[&id];
        let Some(slots) = kernel.resources.exec.as_ref().and_then(capacity) else { continue };
        let downstream = kernel.route.downstream.clone();
        // Room where its answers go: the next kernel, or the output queue.
        let answer_room = match (&downstream, routing) {
            (Some(down), Routing::OnDevice) => forward_room(table, down, capacity),
            (Some(down), Routing::ViaHost) => inbox_room(table, down),
            (None, _) if kernel.life.state() == KernelState::Terminating => usize::MAX,
            (None, _) => kernel.mailbox.outbox.free(),
        };
        let fed = incoming.remove(&id);
        let kernel = table.kernels.get_mut(&id).expect("listed above");
        kernel.cursor.rewind_if_idle();
        let in_flight = kernel.cursor.in_flight();
        let (take, room) = match fed {
            // Fed this tick: its whole input queue goes first (the feeder's room made sure it
            // fits), so the forwarded messages get the next sequence numbers.
            Some(_) => (kernel.mailbox.inbox.len(), usize::MAX),
            None => {
                let batch_room = slots.min(kernel.max_batch).saturating_sub(in_flight) as usize;
                let take =
                    kernel.mailbox.inbox.len().min(batch_room).min(answer_room.saturating_sub(in_flight as usize));
                (take, answer_room)
            }
        };
        let forwarded_in = fed.map_or(0, |(_, count)| count);
        let pending = in_flight + take as u32 + forwarded_in;
        if pending == 0 || pending as usize > room {
            continue;
        }
        let head = kernel.cursor.head();
        let input_at = head.wrapping_add(in_flight);
        kernel.cursor.hand_over(&mut kernel.mailbox, take);
        let mut level = 0;
        if let Some((feeder, count)) = fed {
            let at = kernel.cursor.take_forwarded(&mut kernel.mailbox, count, now_ms);
            plan[feeder].forward = Some((plan.len(), at));
            level = plan[feeder].level + 1;
        }
        if take > 0 {
            // Senders waiting for queue room may continue.
            kernel.notify();
        }
        if let (Some(down), Routing::OnDevice) = (&downstream, routing) {
            incoming.insert(down.clone(), (plan.len(), pending));
        }
        plan.push(Planned {
            id,
            instance: kernel.instance,
            head,
            take,
            input_at,
            pending,
            level,
            downstream,
            forward: None,
        });
    }
    plan
}

/// What the backend needs of each planned kernel, borrowed from the table.
pub(crate) fn dispatches<'t>(table: &'t Table, plan: &[Planned]) -> Vec<Dispatch<'t>> {
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
            }
        })
        .collect()
}

/// How many forwarded messages kernel `id` can take on the device this tick after its whole
/// input queue: 0 when it does not run on this backend. Bounded by its ring and by where its
/// own answers go (its output queue, or its downstream's room, recursively).
fn forward_room(table: &Table, id: &str, capacity: fn(&KernelExec) -> Option<u32>) -> usize {
    let Some(kernel) = table.kernels.get(id).filter(|k| k.runs()) else { return 0 };
    let Some(slots) = kernel.resources.exec.as_ref().and_then(capacity) else { return 0 };
    let queued = kernel.cursor.in_flight() as usize + kernel.mailbox.inbox.len();
    let ring_room = (slots as usize).saturating_sub(queued);
    let answer_room = match &kernel.route.downstream {
        Some(down) => forward_room(table, down, capacity).saturating_sub(queued),
        None if kernel.life.state() == KernelState::Terminating => usize::MAX,
        None => kernel.mailbox.outbox.free().saturating_sub(queued),
    };
    ring_room.min(answer_room)
}

/// Room in `id`'s input queue for a connected kernel's answers relayed through the host (none
/// once it stops taking messages).
fn inbox_room(table: &Table, id: &str) -> usize {
    table.kernels.get(id).filter(|k| k.life.state().accepts_messages()).map_or(0, |k| k.mailbox.inbox.free())
}

/// How many kernels feed `id`, one after another (0 for the first stage of a pipeline).
fn depth(table: &Table, id: &str) -> usize {
    let mut depth = 0;
    let mut up = table.kernels.get(id).and_then(|k| k.route.upstream.as_deref());
    while let Some(id) = up {
        depth += 1;
        up = table.kernels.get(id).and_then(|k| k.route.upstream.as_deref());
    }
    depth
}

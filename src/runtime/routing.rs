//! Kernel-to-kernel routing: `connect(from, to)` sends `from`'s answers into `to`'s input
//! instead of to the host. On a GPU the tick loop copies them from one ring to the other between two
//! dispatches of the same submit, so an n-stage pipeline costs one round trip, not n.
//!
//! # Fused pipelines
//! When a tick finds a chain of connected kernels on one GPU that are all active, whose
//! handlers answer every message (`fn handle(msg: In) -> Out`) and that have no state, no
//! workgroup memory and nothing of their own queued behind the first stage, it runs the chain as
//! one dispatch of one generated module: each invocation runs every stage's `handle` in turn and
//! writes only the last stage's answer (operator chaining). Each stage's telemetry reads as it
//! would unfused; `fused_dispatches` counts the dispatches it ran fused. The module is compiled
//! off the tick the first time the chain is seen, and cached; until it is ready, and whenever a
//! stage is paused, terminating, migrating, disconnected, may drop, keeps state or was launched
//! [`unfused`](crate::LaunchOptions::unfused()), the chain runs ring to ring as below, in order
//! and with nothing lost, and fuses again when it can.
//!
//! A pipeline is a chain: a kernel has at most one downstream and one upstream, and no cycle.
//! The answers of a connected kernel are not receivable (they are counted as forwarded); receive
//! from the last stage. Terminating a kernel takes it out of its pipeline first.

use super::Runtime;
use crate::error::{Error, Quoted, Result};
use crate::lifecycle::{Action, KernelState};
use crate::message::same_bytes;
use crate::table::Table;

impl Runtime {
    /// Routes `from`'s answers into `to`'s input from the next tick on. `to`'s input layout must
    /// be `from`'s output layout byte for byte (field names may differ). Refused for a kernel
    /// that is stopping or stopped, already connected that way, with `call`s in flight, whose
    /// GPU handler may drop messages, or when the route would close a cycle.
    ///
    /// On a GPU, a chain of connected stages that are all active, answer every message and have
    /// no state runs fused, as one dispatch in which each invocation runs every stage's `handle`
    /// in turn ([`KernelTelemetry::fused_dispatches`](crate::KernelTelemetry::fused_dispatches)
    /// counts them); otherwise, and while its module compiles in the background, answers are
    /// copied ring to ring. Either way every stage's telemetry and the answers' order are the
    /// same. [`LaunchOptions::unfused`](crate::LaunchOptions::unfused()) opts a kernel out.
    pub async fn connect(&self, from: &str, to: &str) -> Result<()> {
        let mut table = self.open_table()?;
        let (quoted_from, quoted_to) = (Quoted(from), Quoted(to));
        let invalid = |why: String| Err(Error::InvalidArgument(format!("connect({quoted_from}, {quoted_to}): {why}")));
        if from == to {
            return invalid("a kernel cannot feed itself".into());
        }
        for id in [from, to] {
            let state = table.kernel(id)?.life.state();
            if !matches!(state, KernelState::Launched | KernelState::Active | KernelState::Deactivated) {
                return Err(Error::KernelState { id: id.to_owned(), state, action: Action::Connect });
            }
        }
        let (source, target) = (&table.kernels[from], &table.kernels[to]);
        if let Some(existing) = &source.route.downstream {
            return invalid(format!("{quoted_from} already feeds {}; disconnect it first", Quoted(existing)));
        }
        if let Some(existing) = &target.route.upstream {
            return invalid(format!("{quoted_to} is already fed by {}; disconnect that first", Quoted(existing)));
        }
        if !same_bytes(&source.def.output, &target.def.input) {
            return invalid(format!(
                "{quoted_from} answers {} but {quoted_to} takes {}: the layouts must match byte for byte",
                source.def.output.name(),
                target.def.input.name()
            ));
        }
        // A call given up still has its answer to come, and that answer is no message for `to`.
        let calls = source.mailbox.ledger.calls_in_flight();
        if calls > 0 {
            return invalid(format!(
                "{quoted_from} has {} in flight, waiting or given up, whose answers are still to come; connect once it has \
                 answered them",
                crate::error::plural(calls, "call", "calls")
            ));
        }
        if source.resources.exec.as_ref().is_some_and(|exec| exec.drops_on_gpu()) {
            return invalid(format!(
                "{quoted_from} may drop messages (fn handle(..) -> bool), so its answers cannot be forwarded slot for slot \
                 on the GPU"
            ));
        }
        let mut next = Some(to.to_owned());
        while let Some(id) = next {
            if id == from {
                return invalid("the route would close a cycle".into());
            }
            next = table.kernels.get(&id).and_then(|k| k.route.downstream.clone());
        }
        let source = table.kernel(from)?;
        source.route.downstream = Some(to.to_owned());
        // Receives waiting on it hear that its answers now go on (see `try_take_answer`).
        source.notify();
        table.kernel(to)?.route.upstream = Some(from.to_owned());
        let depth = table.kernel(from)?.route.depth + 1;
        table.set_depths(to, depth);
        drop(table);
        self.shared.wake();
        Ok(())
    }

    /// Ends `from`'s route: from the next tick on its answers go to the host again. Messages
    /// already forwarded stay with the kernel they went to.
    pub async fn disconnect(&self, from: &str) -> Result<()> {
        let mut table = self.open_table()?;
        let kernel = table.kernel(from)?;
        let Some(to) = kernel.route.downstream.take() else {
            return Err(Error::InvalidArgument(format!("disconnect({}): it is not connected", Quoted(from))));
        };
        // Waits on it, and the stage after, see what changed: a stall of either may be over.
        kernel.notify();
        if let Some(target) = table.kernels.get_mut(&to) {
            target.route.upstream = None;
            target.notify();
        }
        table.set_depths(&to, 0);
        drop(table);
        // Input it held while the next stage took none of its answers runs now, into its own
        // output queue: the tick loop may be idle, with nothing else to wake it.
        self.shared.wake();
        Ok(())
    }

    /// The kernel `id`'s answers go to, if it is connected.
    pub fn connected_to(&self, id: &str) -> Result<Option<String>> {
        Ok(self.shared.lock().kernel(id)?.route.downstream.clone())
    }
}

/// Takes `id` out of its pipeline, both ways.
pub(super) fn detach(table: &mut Table, id: &str) {
    let Some(kernel) = table.kernels.get_mut(id) else { return };
    let (up, down) = (kernel.route.upstream.take(), kernel.route.downstream.take());
    if let Some(source) = up.and_then(|up| table.kernels.get_mut(&up)) {
        source.route.downstream = None;
    }
    if let Some(target) = down.as_ref().and_then(|down| table.kernels.get_mut(down)) {
        target.route.upstream = None;
    }
    table.set_depths(id, 0);
    if let Some(down) = down {
        table.set_depths(&down, 0);
    }
}

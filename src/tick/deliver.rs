//! Deliver: what each planned kernel's dispatch produced goes where it belongs. Answers reach
//! their `call`s or the output queue (or the next kernel of a pipeline), held input that was
//! answered is released, and the counters grow by what the dispatch added. Written once for
//! every backend.

use std::borrow::Cow;

use super::plan::Planned;
use crate::backend::{Outcome, Routing};
use crate::checkpoint;
use crate::correlation::{Answers, Sequence};
use crate::envelope::headers::Carried;
use crate::table::{Failed, Kernel, Table};

/// Delivers one tick: `outcomes` are in plan order. A kernel terminated, or removed and
/// launched again, while the tick ran gets nothing (its unanswered messages were counted then).
/// Returns the messages the kernels it delivered to processed (the device's count).
pub(crate) fn deliver(table: &mut Table, plan: &[Planned], outcomes: &[Outcome<'_>], now_ms: f64) -> u64 {
    let wall_clock = crate::platform::unix_time_ms();
    let mut processed = 0;
    for (p, out) in plan.iter().zip(outcomes) {
        let Some(kernel) = table.kernels.get_mut(&p.id) else { continue };
        if kernel.instance != p.instance {
            continue;
        }
        kernel.in_tick = false;
        if kernel.resources.exec.is_none() {
            kernel.notify();
            continue;
        }
        let Kernel { mailbox, cursor, counters, resources, route, .. } = kernel;
        let mut relay = None;
        // Envelope headers going on with forwarded answers (none on the plain path: one check).
        let mut carried = Vec::new();
        // Answers to relay through the host to a next stage that left the pipeline while the
        // tick ran (terminated, or disconnected): they go to the host, as its later ones do.
        let relayed_to = match (&p.downstream, p.routing) {
            (Some(down), Routing::ViaHost) if route.downstream.as_ref() != Some(down) => None,
            (down, _) => down.as_ref(),
        };
        match (relayed_to, p.routing) {
            (None, _) => {
                let stride = mailbox.outbox.stride();
                if !mailbox.headers.is_empty() {
                    mailbox.headers_to_outbox((out.answers.len() / stride) as u64, out.kept);
                }
                let answers = Answers { packed: out.answers, stride, kept: out.kept, failures: out.failures };
                mailbox.ledger.deliver(answers, &mut mailbox.outbox, counters, now_ms);
            }
            // Already copied into the next kernel's ring, which numbered them when planned.
            (Some(_), Routing::OnDevice) => {
                if !mailbox.headers.is_empty() {
                    carried = mailbox.headers_forwarded(out.answered as u64, None);
                }
                mailbox.ledger.forward(out.answered as u64, out.answered as u64, now_ms, counters)
            }
            (Some(down), Routing::ViaHost) => {
                if !mailbox.headers.is_empty() {
                    carried = mailbox.headers_forwarded(out.answered as u64, out.kept);
                }
                let kept = kept_answers(out, mailbox.outbox.stride());
                let count = (kept.len() / mailbox.outbox.stride()) as u64;
                mailbox.ledger.forward(out.answered as u64, count, now_ms, counters);
                relay = Some((down, kept, count));
            }
        }
        cursor.answered(mailbox, p.head, out.answered, p.pending);
        if out.answered > 0 {
            checkpoint::delivered(resources, out, now_ms);
        }
        counters.messages_processed += out.processed;
        processed += out.processed;
        counters.messages_dropped += out.dropped;
        counters.dispatches += out.dispatches;
        counters.fused_dispatches += out.fused as u64;
        counters.grouped_dispatches += out.grouped as u64;
        counters.dispatches_encoded_ahead += out.encoded_ahead as u64;
        if out.workgroups > 0 {
            counters.last_workgroups = out.workgroups;
        }
        counters.errors += out.failed;
        if let Some((_, last)) = out.failures.last() {
            counters.last_error = Some(last.clone());
        }
        counters.bytes_to_device += out.bytes_to_device;
        counters.bytes_from_device += out.bytes_from_device;
        if out.answered > 0 {
            counters.last_message_time = Some(wall_clock);
        }
        // The watchdog's heartbeat and the circuit breaker's outcomes.
        if out.answered > 0 || out.processed > 0 {
            kernel.beat(now_ms);
        }
        if out.failed > 0 {
            kernel.circuit_failures(out.failed, Failed::Messages, now_ms);
        } else if out.answered > 0 {
            kernel.circuit_success(now_ms);
        }
        kernel.finish_if_drained();
        kernel.notify();
        let mut forwarded_first = None;
        if let Some((down, answers, count)) = relay {
            if let Some(target) = table.kernels.get_mut(down) {
                // Room was reserved when the tick was planned; sends since may overshoot it by
                // one run.
                // Work reaching an idle kernel starts its watchdog's clock afresh.
                if target.input_depth() == 0 {
                    target.beat(now_ms);
                }
                target.mailbox.inbox.push_overflowing(&answers);
                forwarded_first = Some(target.mailbox.ledger.accept(count, now_ms));
                target.notify();
            }
        }
        if !carried.is_empty() {
            carry_headers(table, p, forwarded_first, carried);
        }
    }
    processed
}

/// Envelope headers of answers that went on to the next stage `p.downstream`, each with its
/// offset among what was forwarded: they join that kernel's at the sequence numbers the
/// forwarded messages got there (`relayed_first` when relayed through the host; on the device,
/// numbered when the tick was planned), their timestamps ticked. A kernel gone since drops them.
fn carry_headers(table: &mut Table, p: &Planned, relayed_first: Option<Sequence>, carried: Vec<(u64, Carried)>) {
    let Some(target) = p.downstream.as_ref().and_then(|down| table.kernels.get_mut(down)) else { return };
    let Some(first) = relayed_first.or_else(|| target.cursor.forwarded_first()) else { return };
    for (offset, mut header) in carried {
        table.clock.hop(&mut header);
        target.mailbox.headers.insert(first + offset, header);
    }
}

/// The answers the handler kept, packed back to back (borrowed when it kept them all).
fn kept_answers<'a>(out: &Outcome<'a>, stride: usize) -> Cow<'a, [u8]> {
    match out.kept {
        None => Cow::Borrowed(out.answers),
        Some(flags) => out
            .answers
            .chunks_exact(stride)
            .zip(flags.chunks_exact(4))
            .filter(|(_, flag)| *flag != [0; 4])
            .flat_map(|(answer, _)| answer)
            .copied()
            .collect(),
    }
}

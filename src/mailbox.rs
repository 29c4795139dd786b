//! A kernel's host side: the input queue it is fed from, the output queue its answers wait in,
//! and the correlation ledger that numbers every accepted message so each answer finds its
//! caller (see [`crate::correlation`]), and beside them the envelope headers of the messages
//! that came with one (see [`crate::envelope`]). Sends and receives go through here; the tick
//! takes input from and delivers answers to it.

use std::sync::atomic::{AtomicUsize, Ordering};

use futures_channel::oneshot;

use crate::correlation::{Ledger, Reply, Sequence};
use crate::envelope::headers::{Carried, Headers};
use crate::queue::PackedQueue;

/// A kernel's queues and ledger.
#[derive(Debug)]
pub(crate) struct Mailbox {
    /// Messages accepted and waiting for (or held by) the backend.
    pub inbox: PackedQueue,
    /// Answers waiting for `receive`.
    pub outbox: PackedQueue,
    pub ledger: Ledger,
    /// Envelope headers, sparsely (empty unless envelopes were sent).
    pub headers: Headers,
    /// The receives waiting for answers, by ticket, in the order they began to wait: answers go
    /// to the first, so waiting receives are answered in that order however they are woken (a
    /// receive woken by other news waits again, behind those that came later).
    pub receivers: std::collections::VecDeque<u64>,
    /// Whether its queues count against the host memory all runtimes share (see
    /// [`HostQueueBytes`]): not once a stopped runtime has let them go.
    counted: bool,
}

/// A `call`'s ticket: its message's sequence number and where its answer will arrive.
pub(crate) type CallTicket = (Sequence, oneshot::Receiver<Reply>);

impl Mailbox {
    /// Empty queues bounded to `input_size` and `output_size` messages.
    pub fn new(input_stride: usize, output_stride: usize, input_size: usize, output_size: usize) -> Self {
        Mailbox {
            inbox: PackedQueue::new(input_stride, input_size),
            outbox: PackedQueue::new(output_stride, output_size),
            ledger: Ledger::default(),
            headers: Headers::default(),
            receivers: Default::default(),
            counted: true,
        }
    }

    /// Empty queues of the same strides and sizes that no longer count against host memory:
    /// what a stopped runtime keeps of an ended kernel.
    pub fn let_go(&self) -> Self {
        let (inbox, outbox) = (&self.inbox, &self.outbox);
        let emptied = Mailbox::new(inbox.stride(), outbox.stride(), inbox.capacity(), outbox.capacity());
        Mailbox { counted: false, ..emptied }
    }

    /// Bytes its two queues hold when full: what a launch on the web counts against wasm memory
    /// (none once let go).
    pub fn host_queue_bytes(&self) -> usize {
        let bytes = |queue: &PackedQueue| queue.capacity().saturating_mul(queue.stride());
        if self.counted {
            bytes(&self.inbox).saturating_add(bytes(&self.outbox))
        } else {
            0
        }
    }

    /// Whether a receive holding `ticket` (or, without one, a receive that has not waited yet)
    /// may take answers now: none waits ahead of it.
    pub fn receivers_first(&self, ticket: Option<u64>) -> bool {
        match ticket {
            Some(ticket) => self.receivers.front() == Some(&ticket),
            None => self.receivers.is_empty(),
        }
    }

    /// A receive takes its place at the back of the line: its ticket.
    pub fn join_receivers(&mut self) -> u64 {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let ticket = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.receivers.push_back(ticket);
        ticket
    }

    /// A receive leaves the line (it took its answers, gave up or failed); true when the next
    /// one in line should be woken to take answers that are waiting.
    pub fn leave_receivers(&mut self, ticket: u64) -> bool {
        let first = self.receivers.front() == Some(&ticket);
        // Tickets are handed out in order, so the line is sorted: the one leaving is found by
        // halving (usually it is the first), not by a scan that made W waiting receives cost W².
        if first {
            self.receivers.pop_front();
        } else if let Ok(at) = self.receivers.binary_search(&ticket) {
            self.receivers.remove(at);
        }
        first && !self.receivers.is_empty() && !self.outbox.is_empty()
    }

    /// Queues as many whole messages of `packed` as fit, numbering them; returns how many.
    pub fn accept_packed(&mut self, packed: &[u8], now_ms: f64) -> usize {
        let pushed = self.inbox.push_many(packed);
        self.ledger.accept(pushed as u64, now_ms);
        pushed
    }

    /// Queues one message that `pack` writes in place (the caller checked room); with `call`,
    /// its answer will go to the returned ticket instead of the output queue.
    pub fn accept_one<E>(
        &mut self,
        pack: impl FnOnce(&mut [u8]) -> Result<(), E>,
        call: bool,
        now_ms: f64,
    ) -> Result<Option<CallTicket>, E> {
        self.inbox.push_with(pack)?;
        let seq = self.ledger.accept(1, now_ms);
        Ok(call.then(|| (seq, self.ledger.expect_answer(seq))))
    }

    /// The message just accepted came with an envelope: its header travels with it.
    pub fn attach_header(&mut self, carried: Carried) {
        self.headers.insert(self.ledger.next_sequence() - 1, carried);
    }

    /// Before the ledger delivers `count` answers to the host (`kept`: the handler's flags):
    /// headers of enveloped messages follow their answers into the output queue.
    pub fn headers_to_outbox(&mut self, count: u64, kept: Option<&[u8]>) {
        let first = self.ledger.next_answer();
        let ledger = &self.ledger;
        let to_outbox = |i: u64| kept_at(kept, i) && !ledger.is_call(first + i);
        let (end, taken) = (self.outbox.taken() + self.outbox.len() as u64, self.outbox.taken());
        self.headers.answered(first, count, to_outbox, end, taken);
    }

    /// Before the ledger counts `count` answers forwarded to the next pipeline stage: their
    /// headers, each with its offset among the kept answers.
    pub fn headers_forwarded(&mut self, count: u64, kept: Option<&[u8]>) -> Vec<(u64, Carried)> {
        let first = self.ledger.next_answer();
        self.headers.forwarded(first, count, |i| kept_at(kept, i))
    }

    /// The header of the answer just taken off the front of the output queue, if it has one:
    /// taken after the answer, so a receive whose `read` panics leaves the header with it.
    pub fn answer_header_taken(&mut self) -> Option<Carried> {
        self.headers.take_answer(self.outbox.taken() - 1)
    }
}

/// Whether answer `i` was kept by a handler that may drop (`kept`: one u32 flag per answer).
fn kept_at(kept: Option<&[u8]>, i: u64) -> bool {
    let i = i as usize;
    kept.is_none_or(|flags| flags.get(4 * i..4 * i + 4).is_some_and(|flag| flag != [0; 4]))
}

#[cfg(test)]
mod tests {
    use super::Mailbox;

    /// The line of receives keeps its order as receives leave it from the front, the middle or
    /// the back, and a ticket that already left changes nothing.
    #[test]
    fn receives_leave_their_line_from_anywhere() {
        let mut mailbox = Mailbox::new(4, 4, 8, 8);
        let tickets: Vec<u64> = (0..5).map(|_| mailbox.join_receivers()).collect();
        mailbox.leave_receivers(tickets[2]);
        mailbox.leave_receivers(tickets[0]);
        mailbox.leave_receivers(tickets[4]);
        mailbox.leave_receivers(tickets[4]);
        assert_eq!(mailbox.receivers.iter().copied().collect::<Vec<_>>(), [tickets[1], tickets[3]]);
        assert!(mailbox.receivers_first(Some(tickets[1])));
        mailbox.leave_receivers(tickets[1]);
        assert!(mailbox.receivers_first(Some(tickets[3])));
    }
}

/// What every runtime's host queues in this memory hold when full, in bytes: on the web one
/// wasm memory (a page's, a worker's or a Node process's) holds the queues of all its runtimes.
static HOST_QUEUES_IN_MEMORY: AtomicUsize = AtomicUsize::new(0);

/// What the host queues of one runtime's kernels hold when full, in bytes, counted in the
/// memory's total too ([`in_memory`](Self::in_memory)) until it is dropped with its runtime.
#[derive(Debug, Default)]
pub(crate) struct HostQueueBytes(usize);

impl HostQueueBytes {
    /// Counts a kernel's queues of `bytes` in.
    pub fn add(&mut self, bytes: usize) {
        self.0 = self.0.saturating_add(bytes);
        HOST_QUEUES_IN_MEMORY.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts a kernel's queues of `bytes` out.
    pub fn sub(&mut self, bytes: usize) {
        let bytes = bytes.min(self.0);
        self.0 -= bytes;
        HOST_QUEUES_IN_MEMORY.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// This runtime's total.
    pub fn here(&self) -> usize {
        self.0
    }

    /// Every runtime's total in this memory.
    pub fn in_memory() -> usize {
        HOST_QUEUES_IN_MEMORY.load(Ordering::Relaxed)
    }
}

impl Drop for HostQueueBytes {
    fn drop(&mut self) {
        HOST_QUEUES_IN_MEMORY.fetch_sub(self.0, Ordering::Relaxed);
    }
}

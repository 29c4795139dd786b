//! A kernel's host side: the input queue it is fed from, the output queue its answers wait in,
//! and the correlation ledger that numbers every accepted message so each answer finds its
//! caller (see [`crate::correlation`]). Sends and receives go through here; the tick takes
//! input from and delivers answers to it.

use futures_channel::oneshot;

use crate::correlation::{Ledger, Reply, Sequence};
use crate::queue::PackedQueue;

/// A kernel's queues and ledger.
#[derive(Debug)]
pub(crate) struct Mailbox {
    /// Messages accepted and waiting for (or held by) the backend.
    pub inbox: PackedQueue,
    /// Answers waiting for `receive`.
    pub outbox: PackedQueue,
    pub ledger: Ledger,
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
        }
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
}

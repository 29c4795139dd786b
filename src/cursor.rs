//! Where a kernel stands with its backend: the one place that keeps the in-flight invariant
//!
//! ```text
//! tail − head = messages held in the input queue + messages a feeder forwarded on the device
//! ```
//!
//! `tail` counts messages handed to the backend and `head` those it answered, as free-running
//! ring indices (on a GPU, slots of the kernel's input ring; on the cpu backend, the run handed
//! to the host handler). Messages the host handed over stay *held* in the input queue until
//! their answers arrive, so a lost device loses none of them.

use crate::correlation::Sequence;
use crate::mailbox::Mailbox;

/// A kernel's ring cursor (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct RingCursor {
    head: u32,
    tail: u32,
    /// Sequence numbers of the messages a connected feeder forwarded into this kernel in the
    /// tick now on the device (`first`, `count`); if the device is lost they are voided, because
    /// the feeder processes their originals again.
    forwarded: Option<(Sequence, u64)>,
}

impl RingCursor {
    /// Messages handed to the backend and not yet answered.
    pub fn in_flight(&self) -> u32 {
        self.tail.wrapping_sub(self.head)
    }

    /// Ring index of the oldest unanswered message (where the next dispatch starts).
    pub fn head(&self) -> u32 {
        self.head
    }

    /// With nothing unanswered, the next messages start at slot 0, right behind the ring's
    /// header: then they go up in one write and come back in one copy.
    pub fn rewind_if_idle(&mut self) {
        if self.in_flight() == 0 {
            self.head = 0;
            self.tail = 0;
        }
    }

    /// Hands the first `take` waiting messages of the input queue to the backend; they stay
    /// held there until answered.
    pub fn hand_over(&mut self, mailbox: &mut Mailbox, take: usize) {
        mailbox.inbox.hold(take);
        self.tail = self.tail.wrapping_add(take as u32);
    }

    /// A feeder's `count` answers are copied into this kernel's ring this tick, behind
    /// everything handed over so far: they are numbered now (after every message queued before
    /// them) and voided if the device is lost. Returns the ring index they land at.
    pub fn take_forwarded(&mut self, mailbox: &mut Mailbox, count: u32, now_ms: f64) -> u32 {
        let at = self.tail;
        let first = mailbox.ledger.accept(count as u64, now_ms);
        self.forwarded = Some((first, count as u64));
        self.tail = self.tail.wrapping_add(count);
        at
    }

    /// The dispatch of `pending` messages from ring index `head` answered `answered` of them
    /// (all, or none if it did not run): their held input is no longer needed for a replay.
    pub fn answered(&mut self, mailbox: &mut Mailbox, head: u32, answered: u32, pending: u32) {
        self.head = head.wrapping_add(answered);
        if answered == pending {
            let held = mailbox.inbox.held();
            mailbox.inbox.release(held);
            self.forwarded = None;
        } else {
            mailbox.inbox.release(answered as usize);
        }
    }

    /// The device was lost: held input waits again, at the front and in order; forwarded input
    /// is voided (its feeder processes the originals again).
    pub fn device_lost(&mut self, mailbox: &mut Mailbox) {
        mailbox.inbox.requeue_held();
        if let Some((first, count)) = self.forwarded.take() {
            mailbox.ledger.void(first, count);
        }
        *self = RingCursor::default();
    }

    /// The kernel stopped: nothing is in flight any more.
    pub fn stopped(&mut self) {
        *self = RingCursor::default();
    }
}

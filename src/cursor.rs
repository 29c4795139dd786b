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

    /// The sequence number of the first message a connected feeder forwarded into this kernel
    /// in the tick now on the device (where the feeder's envelope headers go).
    pub fn forwarded_first(&self) -> Option<Sequence> {
        self.forwarded.map(|(first, _)| first)
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
            mailbox.headers.void(first, count);
        }
        *self = RingCursor::default();
    }

    /// The kernel stopped: nothing is in flight any more.
    pub fn stopped(&mut self) {
        *self = RingCursor::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox() -> Mailbox {
        Mailbox::new(4, 4, 16, 16)
    }

    fn queued(mailbox: &mut Mailbox, values: &[u32]) {
        let packed: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(mailbox.accept_packed(&packed, 0.0), values.len());
    }

    /// What the cursor claims is in flight is exactly what the host holds for a replay plus what
    /// a feeder forwarded on the device.
    fn assert_invariant(cursor: &RingCursor, mailbox: &Mailbox) {
        let forwarded = cursor.forwarded.map_or(0, |(_, count)| count as u32);
        assert_eq!(cursor.in_flight(), mailbox.inbox.held() as u32 + forwarded);
    }

    #[test]
    fn handed_over_input_is_held_until_answered() {
        let (mut cursor, mut mailbox) = (RingCursor::default(), mailbox());
        queued(&mut mailbox, &[1, 2, 3]);
        cursor.rewind_if_idle();
        cursor.hand_over(&mut mailbox, 2);
        assert_eq!((cursor.head(), cursor.in_flight(), mailbox.inbox.len()), (0, 2, 1));
        assert_invariant(&cursor, &mailbox);
        // A dispatch that did not run answers nothing: the input stays held, in flight.
        cursor.answered(&mut mailbox, 0, 0, 2);
        assert_eq!(cursor.in_flight(), 2);
        assert_invariant(&cursor, &mailbox);
        cursor.answered(&mut mailbox, 0, 2, 2);
        assert_eq!((cursor.head(), cursor.in_flight(), mailbox.inbox.held()), (2, 0, 0));
        assert_invariant(&cursor, &mailbox);
        cursor.rewind_if_idle();
        assert_eq!(cursor.head(), 0, "idle: the next tick starts at slot 0");
    }

    #[test]
    fn forwarded_input_is_numbered_after_the_queue_and_counted_in_flight() {
        let (mut cursor, mut mailbox) = (RingCursor::default(), mailbox());
        queued(&mut mailbox, &[1]);
        cursor.hand_over(&mut mailbox, 1);
        let at = cursor.take_forwarded(&mut mailbox, 3, 0.0);
        assert_eq!((at, cursor.in_flight()), (1, 4));
        assert_invariant(&cursor, &mailbox);
        cursor.answered(&mut mailbox, 0, 4, 4);
        assert_eq!((cursor.in_flight(), mailbox.inbox.held()), (0, 0));
        assert_invariant(&cursor, &mailbox);
    }

    #[test]
    fn a_lost_device_puts_held_input_back_in_order_and_voids_forwarded_input() {
        let (mut cursor, mut mailbox) = (RingCursor::default(), mailbox());
        queued(&mut mailbox, &[1, 2]);
        cursor.hand_over(&mut mailbox, 2);
        cursor.take_forwarded(&mut mailbox, 2, 0.0);
        queued(&mut mailbox, &[3]);
        cursor.device_lost(&mut mailbox);
        assert_eq!(cursor.in_flight(), 0);
        assert_invariant(&cursor, &mailbox);
        let waiting: Vec<u32> = bytemuck::pod_collect_to_vec(mailbox.inbox.front(8));
        assert_eq!(waiting, [1, 2, 3], "held input first, in order, then what came after");
        // The voided forwarded messages gave their numbers back: the next message is number 3.
        assert_eq!(mailbox.ledger.accept(1, 0.0), 3);
    }

    #[test]
    fn a_lost_device_keeps_the_headers_of_held_input_and_renumbers_those_after_voided_input() {
        use crate::envelope::headers::Carried;
        let header = |message_id| Carried {
            message_id,
            correlation_id: None,
            source: None,
            priority: 0,
            timestamp: crate::hlc::HlcTimestamp::ZERO,
        };
        let (mut cursor, mut mailbox) = (RingCursor::default(), mailbox());
        queued(&mut mailbox, &[1]);
        mailbox.attach_header(header(10)); // number 0, held
        cursor.hand_over(&mut mailbox, 1);
        cursor.take_forwarded(&mut mailbox, 2, 0.0); // numbers 1 and 2, voided
        queued(&mut mailbox, &[3]);
        mailbox.attach_header(header(30)); // number 3, then 1
        cursor.device_lost(&mut mailbox);
        let kept: Vec<(u64, u64)> =
            mailbox.headers.forwarded(0, 2, |_| true).into_iter().map(|(at, c)| (at, c.message_id)).collect();
        assert_eq!(kept, [(0, 10), (1, 30)]);
    }
}

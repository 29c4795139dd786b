//! Correlation: which answer belongs to which message.
//!
//! Every message a kernel accepts gets the next sequence number. The GPU answers input slot i in
//! output slot i and the tick loop delivers answers in ring order, so the n-th answer to arrive is the
//! answer to message n: the sequence number is the correlation id, and it costs no bytes in the
//! rings. `call` registers its message's number; the tick loop hands that answer straight to the
//! caller and everything else to the output queue, so `call` and `receive` can be mixed and
//! many calls can be in flight at once.
//!
//! A handler that may drop messages (`fn handle(msg, out) -> bool`) still answers slot for slot:
//! the GPU writes a kept flag per slot, and a dropped message's answer is skipped here. A `call`
//! whose message was dropped learns so (its answer is `None`) instead of waiting forever.

use std::collections::VecDeque;

use futures_channel::oneshot;

use crate::error::Error;
use crate::queue::PackedQueue;
use crate::telemetry::Counters;

/// Correlation id of one message: its position in the kernel's stream of accepted messages.
pub(crate) type Sequence = u64;

/// What a `call` gets: the answer's bytes, or, when the handler dropped the message, why it
/// failed on it (`None`: it dropped the message on purpose).
pub(crate) type Answer = std::result::Result<Vec<u8>, Option<String>>;

/// One tick's answers of a kernel, as [`Ledger::deliver`] takes them.
pub(crate) struct Answers<'a> {
    /// Packed back to back, `stride` bytes each.
    pub packed: &'a [u8],
    pub stride: usize,
    /// One little-endian u32 flag per answer for handlers that may drop (0 = dropped).
    pub kept: Option<&'a [u8]>,
    /// Host handlers' failures: each failed message's index among the answers, and why.
    pub failures: &'a [(usize, String)],
}

/// What reaches a waiting `call`: its answer, or why it will not get one (the device was lost).
pub(crate) type Reply = Result<Answer, Error>;

#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Number the next accepted message gets.
    next: Sequence,
    /// Number of the next answer to arrive.
    answered: Sequence,
    /// Send times of unanswered messages, run-length encoded (a batch shares one time).
    sent_at: VecDeque<(f64, u64)>,
    /// `call`s by sequence number, in increasing order: `Some` waits for its answer, `None`
    /// timed out (its answer is discarded, and counted, when it arrives). Calls are registered
    /// as their messages are accepted and answered in the same order, so entries join at the
    /// back and leave from the front; a sorted deque does that with less wasm than a B-tree.
    calls: VecDeque<(Sequence, Option<oneshot::Sender<Reply>>)>,
}

/// What happened to a call that stopped waiting.
pub(crate) enum Abandon {
    /// The answer had already been delivered; here it is.
    Answered(Answer),
    /// The answer will be discarded when it arrives.
    Pending,
}

impl Ledger {
    /// Records `count` messages accepted at `now_ms`; returns the first one's sequence number.
    pub fn accept(&mut self, count: u64, now_ms: f64) -> Sequence {
        let first = self.next;
        if count > 0 {
            self.next += count;
            self.sent_at.push_back((now_ms, count));
        }
        first
    }

    /// Number of the next answer to arrive: the oldest unanswered message.
    pub fn next_answer(&self) -> Sequence {
        self.answered
    }

    /// Number the next accepted message gets.
    pub fn next_sequence(&self) -> Sequence {
        self.next
    }

    /// How many of the `most` messages from `first` on can be taken when only `room` of their
    /// answers fit in the output queue: calls' answers go to their callers, not there.
    /// Steps over the calls among them, not the messages: a take bounded by room is a tick's
    /// work on a busy kernel, and most of it has no call at all.
    pub fn fitting(&self, first: Sequence, most: usize, room: usize) -> usize {
        let end = first + most as u64;
        let at = self.calls.partition_point(|&(seq, _)| seq < first);
        // `next`: the first message not yet looked at; `plain`: messages taken that need room.
        let (mut next, mut plain) = (first, 0);
        for &(call, _) in self.calls.range(at..).take_while(|&&(call, _)| call < end) {
            let before = (call - next) as usize;
            if plain + before > room {
                break;
            }
            plain += before;
            next = call + 1;
        }
        let rest = ((end - next) as usize).min(room - plain);
        (next - first) as usize + rest
    }

    /// Whether the answer to `seq` goes to a `call` (or is discarded for one that gave up)
    /// rather than to the output queue.
    pub fn is_call(&self, seq: Sequence) -> bool {
        self.call_index(seq).is_ok()
    }

    /// Where `seq` is, or would go, in `calls`.
    fn call_index(&self, seq: Sequence) -> Result<usize, usize> {
        self.calls.binary_search_by_key(&seq, |&(seq, _)| seq)
    }

    /// Routes the answer to message `seq` to the returned receiver instead of the output queue.
    pub fn expect_answer(&mut self, seq: Sequence) -> oneshot::Receiver<Reply> {
        let (sender, receiver) = oneshot::channel();
        match self.call_index(seq) {
            Ok(at) => self.calls[at].1 = Some(sender),
            Err(at) => self.calls.insert(at, (seq, Some(sender))),
        }
        receiver
    }

    /// A caller gave up waiting for `seq`.
    pub fn abandon(&mut self, seq: Sequence, mut receiver: oneshot::Receiver<Reply>) -> Abandon {
        if let Ok(at) = self.call_index(seq) {
            if self.calls[at].1.take().is_some() {
                return Abandon::Pending;
            }
        }
        match receiver.try_recv() {
            Ok(Some(Ok(answer))) => Abandon::Answered(answer),
            _ => Abandon::Pending,
        }
    }

    /// Every waiting `call` fails with `error` now; its message stays queued and is processed
    /// later, and its answer is then discarded (and counted), as for a call that timed out.
    pub fn abandon_calls(&mut self, error: &Error) {
        for caller in self.calls.iter_mut().filter_map(|(_, caller)| caller.take()) {
            let _ = caller.send(Err(error.clone()));
        }
    }

    /// Messages `first .. first + count` will never be answered (a connected kernel's input
    /// that was on a lost device: its feeder processes the messages again and forwards fresh
    /// copies). Later numbers close the gap, so answers keep pairing with their messages.
    pub fn void(&mut self, first: Sequence, count: u64) {
        debug_assert!(first >= self.answered && first + count <= self.next);
        let end = first + count;
        // The voided numbers' calls go and later ones are renumbered, which keeps `calls`
        // sorted. (By index, not `retain_mut`: the wasm links fewer `VecDeque` methods.)
        let at = self.calls.partition_point(|&(seq, _)| seq < first);
        while self.calls.get(at).is_some_and(|&(seq, _)| seq < end) {
            self.calls.remove(at);
        }
        for (seq, _) in self.calls.iter_mut().skip(at) {
            *seq -= count;
        }
        // Cut the voided messages out of the send-time runs (which start at `answered`).
        let mut at = self.answered;
        let mut runs = VecDeque::with_capacity(self.sent_at.len());
        for &(time, run) in &self.sent_at {
            let overlap = end.min(at + run).saturating_sub(first.max(at));
            if run > overlap {
                runs.push_back((time, run - overlap));
            }
            at += run;
        }
        self.sent_at = runs;
        self.next -= count;
    }

    /// Delivers answers in arrival order: registered calls get theirs (or why their message
    /// was dropped), the rest go to `outbox` (a dropped one: nothing). Records latency when
    /// telemetry is on. Returns how many answers went to `outbox`.
    pub fn deliver(
        &mut self,
        answers: Answers<'_>,
        outbox: &mut PackedQueue,
        counters: &mut Counters,
        now_ms: f64,
    ) -> usize {
        let Answers { packed: answers, stride, kept, failures } = answers;
        let count = (answers.len() / stride) as u64;
        self.time_answers(count, now_ms, counters);
        let first = self.answered;
        self.answered += count;
        let last = self.answered;
        // Fast path: every answer kept, and no call or abandoned call among them.
        let routed = kept.is_some() || {
            let at = self.calls.partition_point(|&(seq, _)| seq < first);
            self.calls.get(at).is_some_and(|&(seq, _)| seq < last)
        };
        if !routed {
            return outbox.push_overflowing(answers);
        }
        let mut to_outbox = 0;
        for (i, answer) in answers.chunks_exact(stride).enumerate() {
            let seq = first + i as u64;
            let was_kept = kept.is_none_or(|flags| flags[4 * i..4 * i + 4] != [0; 4]);
            let call = self.call_index(seq).ok().and_then(|at| self.calls.remove(at));
            if let Some((_, Some(caller))) = call {
                // A caller that vanished without abandoning (its future was dropped, as an
                // aborted call's is on the web) abandoned its answer all the same.
                if caller.is_canceled() {
                    counters.answers_abandoned += was_kept as u64;
                } else {
                    counters.messages_received += was_kept as u64;
                    let answer = match was_kept {
                        true => Ok(answer.to_vec()),
                        false => Err(failures.binary_search_by_key(&i, |f| f.0).ok().map(|at| failures[at].1.clone())),
                    };
                    let _ = caller.send(Ok(answer));
                }
            } else if call.is_some() {
                counters.answers_abandoned += was_kept as u64;
            } else if was_kept {
                to_outbox += outbox.push_overflowing(answer);
            }
        }
        to_outbox
    }

    /// The next `count` answers went on to a connected kernel instead of the host: they are
    /// timed and counted here, and nobody receives them. Connecting refuses a kernel with
    /// calls in flight, waiting or given up, so none of these is a call's.
    /// `kept` of them were forwarded (the rest the handler dropped).
    pub fn forward(&mut self, count: u64, kept: u64, now_ms: f64, counters: &mut Counters) {
        self.time_answers(count, now_ms, counters);
        self.answered += count;
        counters.messages_forwarded += kept;
    }

    /// How many `call`s' answers are still to come: calls waiting, and calls given up (timed
    /// out, aborted, failed with their device) whose answers are discarded when they come.
    pub fn calls_in_flight(&self) -> usize {
        self.calls.len()
    }

    fn time_answers(&mut self, mut count: u64, now_ms: f64, counters: &mut Counters) {
        while count > 0 {
            let Some((sent, run)) = self.sent_at.front_mut() else { break };
            let take = (*run).min(count);
            if let Some(window) = counters.window_latency.as_mut() {
                window.record(now_ms - *sent, take);
                counters.window_sampled_ms = now_ms;
            }
            if let Some(latency) = counters.latency.as_mut() {
                latency.record(now_ms - *sent, take);
            }
            *run -= take;
            count -= take;
            if *run == 0 {
                self.sent_at.pop_front();
            }
        }
    }

    /// The kernel stopped with `unanswered` messages never processed: their calls are
    /// cancelled (callers see the kernel terminated) and their send times dropped.
    pub fn cancel_unanswered(&mut self) {
        self.calls.clear();
        self.sent_at.clear();
        self.answered = self.next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(values: &[u32]) -> Vec<u8> {
        bytemuck::cast_slice(values).to_vec()
    }

    /// Answers of 4 bytes, every one kept.
    fn plain(packed: &[u8]) -> Answers<'_> {
        Answers { packed, stride: 4, kept: None, failures: &[] }
    }

    /// With room for `room` answers, the calls among the next messages go too; the first
    /// message whose answer has no room stops the take (compared with a walk message by message).
    #[test]
    fn the_calls_among_the_next_messages_need_no_room() {
        let mut ledger = Ledger::default();
        ledger.accept(12, 0.0);
        let calls = [2, 3, 7, 11];
        let _receivers: Vec<_> = calls.iter().map(|&seq| ledger.expect_answer(seq)).collect();
        let walk = |first: u64, most: usize, room: usize| {
            let mut plain = 0;
            (0..most)
                .take_while(|&i| {
                    let call = calls.contains(&(first + i as u64));
                    (call || plain < room).then(|| plain += !call as usize).is_some()
                })
                .count()
        };
        for first in 0..12 {
            for most in 0..=(12 - first as usize) {
                for room in 0..6 {
                    assert_eq!(ledger.fitting(first, most, room), walk(first, most, room), "{first} {most} {room}");
                }
            }
        }
        assert_eq!(ledger.fitting(0, 12, 1), 1);
        assert_eq!(ledger.fitting(0, 12, 2), 4, "0, 1, and the calls 2 and 3");
        assert_eq!(ledger.fitting(4, 8, 0), 0);
    }

    #[test]
    fn calls_get_their_own_answers_and_the_rest_stay_in_order() {
        let mut ledger = Ledger::default();
        let mut outbox = PackedQueue::new(4, 16);
        let mut counters = Counters { latency: Some(Default::default()), ..Default::default() };
        assert_eq!(ledger.accept(2, 0.0), 0); // plain sends 0, 1
        let call_seq = ledger.accept(1, 1.0); // a call: 2
        let mut call = ledger.expect_answer(call_seq);
        assert_eq!(ledger.accept(1, 2.0), 3); // a plain send: 3
        let to_outbox = ledger.deliver(plain(&answers(&[10, 11, 12, 13])), &mut outbox, &mut counters, 5.0);
        assert_eq!(to_outbox, 3);
        assert_eq!(call.try_recv().unwrap(), Some(Ok(Ok(answers(&[12])))));
        assert_eq!(outbox.pop_many(8), answers(&[10, 11, 13]));
        let latency = counters.latency.unwrap().summary();
        assert_eq!(latency.count, 4);
        assert!((latency.sum_ms - (5.0 + 5.0 + 4.0 + 3.0)).abs() < 1e-9);
    }

    #[test]
    fn an_abandoned_call_discards_its_late_answer() {
        let mut ledger = Ledger::default();
        let mut outbox = PackedQueue::new(4, 16);
        let mut counters = Counters::default();
        let seq = ledger.accept(1, 0.0);
        let call = ledger.expect_answer(seq);
        assert!(matches!(ledger.abandon(seq, call), Abandon::Pending));
        ledger.accept(1, 0.0);
        assert_eq!(ledger.deliver(plain(&answers(&[1, 2])), &mut outbox, &mut counters, 1.0), 1);
        assert_eq!(counters.answers_abandoned, 1);
        assert_eq!(outbox.pop_many(8), answers(&[2]));
    }

    /// A call whose future was dropped (an aborted call on the web) never abandoned its answer
    /// by name; the answer is discarded and counted as abandoned all the same.
    #[test]
    fn a_dropped_call_discards_its_answer_as_abandoned() {
        let mut ledger = Ledger::default();
        let mut outbox = PackedQueue::new(4, 16);
        let mut counters = Counters::default();
        let seq = ledger.accept(1, 0.0);
        drop(ledger.expect_answer(seq));
        ledger.accept(1, 0.0);
        assert_eq!(ledger.deliver(plain(&answers(&[1, 2])), &mut outbox, &mut counters, 1.0), 1);
        assert_eq!((counters.answers_abandoned, counters.messages_received), (1, 0));
        assert_eq!(outbox.pop_many(8), answers(&[2]));
    }

    #[test]
    fn voided_messages_close_their_gap_and_calls_keep_their_answers() {
        let mut ledger = Ledger::default();
        let mut outbox = PackedQueue::new(4, 16);
        let mut counters = Counters { latency: Some(Default::default()), ..Default::default() };
        ledger.accept(1, 0.0); // 0: a host send
        ledger.accept(2, 1.0); // 1, 2: forwarded, then lost with the device
        let seq = ledger.accept(1, 2.0); // 3: a call
        let mut call = ledger.expect_answer(seq);
        ledger.void(1, 2);
        assert_eq!(ledger.accept(1, 3.0), 2, "numbers continue after the closed gap");
        ledger.deliver(plain(&answers(&[10, 11, 12])), &mut outbox, &mut counters, 4.0);
        assert_eq!(call.try_recv().unwrap(), Some(Ok(Ok(answers(&[11])))));
        assert_eq!(outbox.pop_many(8), answers(&[10, 12]));
        assert!((counters.latency.unwrap().summary().sum_ms - (4.0 + 2.0 + 1.0)).abs() < 1e-9);
    }

    #[test]
    fn calls_abandoned_for_a_lost_device_hear_why_and_their_answers_are_discarded() {
        let mut ledger = Ledger::default();
        let mut outbox = PackedQueue::new(4, 16);
        let mut counters = Counters::default();
        let seq = ledger.accept(1, 0.0);
        let mut call = ledger.expect_answer(seq);
        let lost = Error::DeviceLost { reason: "test".into() };
        ledger.abandon_calls(&lost);
        assert_eq!(call.try_recv().unwrap(), Some(Err(lost)));
        ledger.deliver(plain(&answers(&[5])), &mut outbox, &mut counters, 1.0);
        assert_eq!(counters.answers_abandoned, 1);
        assert!(outbox.is_empty());
    }

    #[test]
    fn abandoning_after_delivery_returns_the_answer() {
        let mut ledger = Ledger::default();
        let mut outbox = PackedQueue::new(4, 16);
        let seq = ledger.accept(1, 0.0);
        let call = ledger.expect_answer(seq);
        ledger.deliver(plain(&answers(&[7])), &mut outbox, &mut Counters::default(), 1.0);
        assert!(matches!(ledger.abandon(seq, call), Abandon::Answered(Ok(a)) if a == answers(&[7])));
    }

    #[test]
    fn dropped_messages_skip_the_outbox_and_tell_their_caller_why() {
        let mut ledger = Ledger::default();
        let mut outbox = PackedQueue::new(4, 16);
        let mut counters = Counters::default();
        ledger.accept(1, 0.0);
        let seq = ledger.accept(1, 0.0);
        let mut dropped = ledger.expect_answer(seq);
        let seq = ledger.accept(1, 0.0);
        let mut failed = ledger.expect_answer(seq);
        let kept = answers(&[1, 0, 0]);
        let failures = [(2, "the handler threw: RangeError: odd 7".to_owned())];
        let tick = Answers { packed: &answers(&[5, 6, 7]), stride: 4, kept: Some(&kept), failures: &failures };
        assert_eq!(ledger.deliver(tick, &mut outbox, &mut counters, 1.0), 1);
        assert_eq!(outbox.pop_many(8), answers(&[5]));
        assert_eq!(dropped.try_recv().unwrap(), Some(Ok(Err(None))));
        assert_eq!(failed.try_recv().unwrap(), Some(Ok(Err(Some(failures[0].1.clone())))));
        assert_eq!(counters.messages_received, 0);
    }
}

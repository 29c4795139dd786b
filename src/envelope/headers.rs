//! A kernel's envelope headers on the host, kept sparsely beside its queues: the headers of
//! accepted messages by sequence number (see [`crate::correlation`]) until they are answered,
//! then by position in the output queue until the answer is taken. Both lists are sorted, so
//! every lookup is at the front; a kernel without envelopes has two empty lists.

use std::collections::VecDeque;

use super::EnvelopeHeader;
use crate::hlc::HlcTimestamp;

/// A message's sequence number in its kernel (`correlation::Sequence`; spelled out so the
/// headers depend on nothing of the kernel table's).
type Sequence = u64;

/// What is kept of an envelope while its message is in a kernel: the header without its
/// destination (the kernel it is in).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Carried {
    pub message_id: u64,
    pub correlation_id: Option<u64>,
    pub source: Option<String>,
    pub priority: u8,
    pub timestamp: HlcTimestamp,
}

impl Carried {
    /// The full header, going to `destination`.
    pub fn header(self, destination: Option<String>) -> EnvelopeHeader {
        EnvelopeHeader {
            message_id: self.message_id,
            correlation_id: self.correlation_id,
            source: self.source,
            destination,
            priority: self.priority,
            timestamp: self.timestamp,
        }
    }
}

/// One kernel's headers (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Headers {
    /// Headers of accepted, unanswered messages, by sequence number, increasing.
    requests: VecDeque<(Sequence, Carried)>,
    /// Headers of answers in the output queue, by the answer's position (see
    /// `PackedQueue::taken`), increasing.
    answers: VecDeque<(u64, Carried)>,
}

impl Headers {
    /// Whether no message or answer of the kernel has a header (the plain path's one check).
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.answers.is_empty()
    }

    /// The message numbered `seq` came with `carried`.
    pub fn insert(&mut self, seq: Sequence, carried: Carried) {
        let at = self.requests.partition_point(|(s, _)| *s < seq);
        self.requests.insert(at, (seq, carried));
    }

    /// Messages `first .. first + count` were voided (see `Ledger::void`): their headers go and
    /// later numbers close the gap, as the ledger's do.
    pub fn void(&mut self, first: Sequence, count: u64) {
        let end = first + count;
        // By index, not `retain_mut`, as the ledger's calls are (see `Ledger::void`).
        let at = self.requests.partition_point(|(seq, _)| *seq < first);
        while self.requests.get(at).is_some_and(|(seq, _)| *seq < end) {
            self.requests.remove(at);
        }
        for (seq, _) in self.requests.iter_mut().skip(at) {
            *seq -= count;
        }
    }

    /// Headers of messages numbered below `first`: left behind by a kernel that stopped with
    /// them unanswered (`Ledger::cancel_unanswered`).
    fn drop_stale(&mut self, first: Sequence) {
        while self.requests.front().is_some_and(|(seq, _)| *seq < first) {
            self.requests.pop_front();
        }
    }

    /// The answers to messages `first .. first + count` were delivered: each kept one that goes
    /// to the output queue (`to_outbox(i)`: not a call's) takes its request's header along, to
    /// the output queue position it lands at (`end`: the position of the first one). Dropped
    /// messages and calls drop theirs. `taken` is where the output queue's front is now:
    /// headers of answers taken before (by plain receives) go.
    pub fn answered(
        &mut self,
        first: Sequence,
        count: u64,
        mut to_outbox: impl FnMut(u64) -> bool,
        end: u64,
        taken: u64,
    ) {
        while self.answers.front().is_some_and(|(at, _)| *at < taken) {
            self.answers.pop_front();
        }
        self.drop_stale(first);
        let mut position = end;
        for i in 0..count {
            if self.requests.front().is_none_or(|(seq, _)| *seq >= first + count) {
                return;
            }
            let goes = to_outbox(i);
            if self.requests[0].0 == first + i {
                let (_, carried) = self.requests.pop_front().expect("checked");
                if goes {
                    self.answers.push_back((position, carried));
                }
            }
            position += goes as u64;
        }
    }

    /// The answers to messages `first .. first + count` went on to the next pipeline stage,
    /// those for which `kept(i)` holds (the rest were dropped): their headers, each with its
    /// place among the kept ones (the forwarded message's offset in the next stage's numbering).
    pub fn forwarded(&mut self, first: Sequence, count: u64, mut kept: impl FnMut(u64) -> bool) -> Vec<(u64, Carried)> {
        self.drop_stale(first);
        let mut moved = Vec::new();
        let mut offset = 0;
        for i in 0..count {
            if self.requests.front().is_none_or(|(seq, _)| *seq >= first + count) {
                break;
            }
            let keeps = kept(i);
            if self.requests[0].0 == first + i {
                let (_, carried) = self.requests.pop_front().expect("checked");
                if keeps {
                    moved.push((offset, carried));
                }
            }
            offset += keeps as u64;
        }
        moved
    }

    /// The header of the answer at output queue position `at`, if it has one (taken now).
    pub fn take_answer(&mut self, at: u64) -> Option<Carried> {
        while self.answers.front().is_some_and(|(position, _)| *position < at) {
            self.answers.pop_front();
        }
        match self.answers.front() {
            Some((position, _)) if *position == at => self.answers.pop_front().map(|(_, carried)| carried),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carried(id: u64) -> Carried {
        Carried { message_id: id, correlation_id: None, source: None, priority: 0, timestamp: HlcTimestamp::new(id, 0) }
    }

    fn ids(moved: &[(u64, Carried)]) -> Vec<(u64, u64)> {
        moved.iter().map(|(at, c)| (*at, c.message_id)).collect()
    }

    #[test]
    fn answers_take_their_headers_to_their_output_positions_skipping_calls_and_drops() {
        let mut headers = Headers::default();
        for seq in [1, 2, 4] {
            headers.insert(seq, carried(10 + seq));
        }
        // 0 is plain, 1 enveloped, 2 enveloped but dropped, 3 a call, 4 enveloped.
        headers.answered(0, 5, |i| i != 2 && i != 3, 100, 100);
        assert_eq!(headers.take_answer(100), None, "the plain answer has none");
        assert_eq!(headers.take_answer(101).map(|c| c.message_id), Some(11));
        assert_eq!(headers.take_answer(102).map(|c| c.message_id), Some(14));
        assert!(headers.is_empty());
    }

    #[test]
    fn headers_of_answers_taken_by_plain_receives_are_dropped() {
        let mut headers = Headers::default();
        headers.insert(0, carried(1));
        headers.answered(0, 1, |_| true, 0, 0);
        headers.insert(1, carried(2));
        headers.answered(1, 1, |_| true, 1, 1); // answer 0 was taken by a plain receive
        assert_eq!(headers.take_answer(1).map(|c| c.message_id), Some(2));
        assert!(headers.is_empty());
    }

    #[test]
    fn forwarded_headers_are_numbered_among_the_kept_answers() {
        let mut headers = Headers::default();
        headers.insert(5, carried(1));
        headers.insert(7, carried(2));
        headers.insert(9, carried(3));
        let moved = headers.forwarded(5, 4, |i| i != 1);
        assert_eq!(ids(&moved), [(0, 1), (1, 2)]);
        assert_eq!(ids(&headers.forwarded(9, 1, |_| true)), [(0, 3)]);
        assert!(headers.is_empty());
    }

    #[test]
    fn voided_numbers_lose_their_headers_and_later_ones_close_the_gap() {
        let mut headers = Headers::default();
        for seq in [0, 1, 2, 3] {
            headers.insert(seq, carried(seq));
        }
        headers.void(1, 2);
        assert_eq!(ids(&headers.forwarded(0, 2, |_| true)), [(0, 0), (1, 3)]);
    }

    #[test]
    fn headers_a_stopped_kernel_left_behind_go_with_the_next_delivery() {
        let mut headers = Headers::default();
        headers.insert(0, carried(1));
        headers.insert(3, carried(2));
        headers.answered(3, 1, |_| true, 0, 0);
        assert_eq!(headers.take_answer(0).map(|c| c.message_id), Some(2));
        assert!(headers.is_empty());
    }
}

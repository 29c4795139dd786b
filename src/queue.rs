//! Queues: the bounded host-side FIFOs that stage packed messages, and the layout of the
//! header and counters that sit in front of the GPU rings.

use std::collections::VecDeque;

use bytemuck::{Pod, Zeroable};

/// A bounded FIFO of fixed-size packed messages. Messages are stored back to back so a whole
/// batch leaves with one copy (and one `writeBuffer`).
///
/// An input queue also keeps the messages it handed to the GPU until they are answered: they
/// are *held* at its front, out of the count and the bound, and are released when their answers
/// arrive. If the device is lost first, [`requeue_held`](Self::requeue_held) puts them back in
/// line, in their order, ahead of everything sent since: nothing written to a lost GPU is lost.
#[derive(Debug)]
pub struct PackedQueue {
    stride: usize,
    capacity: usize,
    /// Held messages first, then the waiting ones.
    bytes: VecDeque<u8>,
    held: usize,
}

impl PackedQueue {
    pub fn new(stride: usize, capacity: usize) -> Self {
        assert!(stride > 0, "messages have at least one field");
        PackedQueue { stride, capacity, bytes: VecDeque::new(), held: 0 }
    }

    /// Messages waiting (not counting held ones).
    pub fn len(&self) -> usize {
        self.bytes.len() / self.stride - self.held
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    /// Room left before the queue is full.
    pub fn free(&self) -> usize {
        self.capacity.saturating_sub(self.len())
    }
    pub fn stride(&self) -> usize {
        self.stride
    }
    /// Messages handed on and not yet released.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Appends as many whole messages of `packed` as fit and returns how many that was.
    pub fn push_many(&mut self, packed: &[u8]) -> usize {
        debug_assert_eq!(packed.len() % self.stride, 0);
        let count = (packed.len() / self.stride).min(self.free());
        self.bytes.extend(&packed[..count * self.stride]);
        count
    }

    /// Appends every whole message of `packed`, even past the capacity. For answers only: the
    /// pump reserves output room before dispatching, except while a kernel drains for
    /// termination, when keeping every answer matters more than the bound.
    pub fn push_overflowing(&mut self, packed: &[u8]) -> usize {
        debug_assert_eq!(packed.len() % self.stride, 0);
        self.bytes.extend(packed);
        packed.len() / self.stride
    }

    /// The first `count` waiting messages (at most all of them), packed, as the (at most two)
    /// contiguous runs they occupy, so callers copy them in bulk wherever they go.
    pub fn front(&self, count: usize) -> (&[u8], &[u8]) {
        let skip = self.held * self.stride;
        let len = count.min(self.len()) * self.stride;
        let (front, back) = self.bytes.as_slices();
        let (front, back) =
            if skip <= front.len() { (&front[skip..], back) } else { (&[][..], &back[skip - front.len()..]) };
        let from_front = len.min(front.len());
        (&front[..from_front], &back[..len - from_front])
    }

    /// Removes the first `count` waiting messages (at most all of them).
    pub fn discard(&mut self, count: usize) {
        let len = count.min(self.len()) * self.stride;
        let skip = self.held * self.stride;
        self.bytes.drain(skip..skip + len);
    }

    /// Marks the first `count` waiting messages as handed on: they stay, held, until
    /// [`release`](Self::release)d or [`requeue_held`](Self::requeue_held).
    pub fn hold(&mut self, count: usize) {
        self.held += count.min(self.len());
    }

    /// Forgets the first `count` held messages: they were answered.
    pub fn release(&mut self, count: usize) {
        let count = count.min(self.held);
        self.bytes.drain(..count * self.stride);
        self.held -= count;
    }

    /// Makes every held message wait again, at the front and in order.
    pub fn requeue_held(&mut self) {
        self.held = 0;
    }

    /// Removes every message, held ones included.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.held = 0;
    }

    /// Removes up to `max` waiting messages from the front and returns them packed.
    pub fn pop_many(&mut self, max: usize) -> Vec<u8> {
        let (front, back) = self.front(max);
        let popped = [front, back].concat();
        self.discard(max);
        popped
    }

    /// Removes up to `max` waiting messages from the front as values of `T`, copied straight
    /// into the returned vector. `T` must divide the message size (checked by the caller).
    pub fn pop_many_as<T: Pod>(&mut self, max: usize) -> Vec<T> {
        let (front, back) = self.front(max);
        let mut popped = vec![T::zeroed(); (front.len() + back.len()) / std::mem::size_of::<T>()];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut popped);
        bytes[..front.len()].copy_from_slice(front);
        bytes[front.len()..].copy_from_slice(back);
        self.discard(max);
        popped
    }

    /// Removes the front waiting message.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        (!self.is_empty()).then(|| self.pop_many(1))
    }
}

/// The host-written header in front of a kernel's GPU input ring, mirrored from `RingInput` in
/// `shaders/harness/ring.wgsl`: where this tick's messages start, how many there are, and
/// whether the kernel runs. It goes to the GPU in the same `writeBuffer` as the messages.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct RingHeader {
    pub head: u32,
    pub count: u32,
    pub capacity: u32,
    pub running: u32,
}

/// The GPU-written counters in front of a kernel's output ring, mirrored from `RingOutput` in
/// `shaders/harness/ring.wgsl`; they come back in the same copy as the answers.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct RingCounters {
    pub processed_lo: u32,
    pub processed_hi: u32,
    pub dropped_lo: u32,
    pub dropped_hi: u32,
    pub dispatches: u32,
    pub _reserved: [u32; 3],
}

const _: () = assert!(std::mem::size_of::<RingHeader>() == 16);
const _: () = assert!(std::mem::size_of::<RingCounters>() == 32);

impl RingHeader {
    /// Bytes before the first message: the header, which also satisfies the 16-byte alignment
    /// of any message struct.
    pub const SIZE: u64 = std::mem::size_of::<RingHeader>() as u64;
}

impl RingCounters {
    /// Bytes before the first answer (a multiple of every message alignment).
    pub const SIZE: u64 = std::mem::size_of::<RingCounters>() as u64;

    pub fn processed(&self) -> u64 {
        (self.processed_hi as u64) << 32 | self.processed_lo as u64
    }
    pub fn dropped(&self) -> u64 {
        (self.dropped_hi as u64) << 32 | self.dropped_lo as u64
    }
}

/// The contiguous slot ranges that `count` messages starting at free-running index `start`
/// occupy in a ring of `capacity` slots: one range, or two when they wrap.
pub fn ring_segments(start: u32, count: u32, capacity: u32) -> impl Iterator<Item = std::ops::Range<u32>> {
    let first = start % capacity;
    let first_len = count.min(capacity - first);
    let second_len = count - first_len;
    [first..first + first_len, 0..second_len].into_iter().filter(|r| !r.is_empty())
}

/// How to copy `count` slots starting at free-running index `from` of a ring of `from_slots`
/// into a ring of `to_slots` starting at `to`: contiguous pieces `(source slot, target slot,
/// length)`, split wherever either ring wraps.
pub fn ring_copy_pieces(from: u32, from_slots: u32, to: u32, to_slots: u32, count: u32) -> Vec<(u32, u32, u32)> {
    let mut pieces = Vec::new();
    let mut done = 0;
    while done < count {
        let (src, dst) = ((from.wrapping_add(done)) % from_slots, (to.wrapping_add(done)) % to_slots);
        let len = (count - done).min(from_slots - src).min(to_slots - dst);
        pieces.push((src, dst, len));
        done += len;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_is_fifo_and_bounded() {
        let mut q = PackedQueue::new(4, 3);
        let msgs: Vec<u8> = (1..=5u32).flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(q.push_many(&msgs), 3, "only three fit");
        assert_eq!(q.free(), 0);
        assert_eq!(q.pop().unwrap(), 1u32.to_le_bytes());
        assert_eq!(q.push_many(&msgs[16..]), 1);
        let rest = q.pop_many(10);
        let rest: Vec<u32> = rest.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(rest, vec![2, 3, 5]);
        assert!(q.is_empty());
    }

    #[test]
    fn held_messages_leave_the_count_and_come_back_in_order() {
        let mut q = PackedQueue::new(4, 3);
        let msgs: Vec<u8> = (1..=6u32).flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(q.push_many(&msgs), 3);
        q.hold(2);
        assert_eq!((q.len(), q.held(), q.free()), (1, 2, 2), "held messages do not count against the bound");
        assert_eq!(q.front(8), (&3u32.to_le_bytes()[..], &[][..]));
        assert_eq!(q.push_many(&msgs[12..]), 2);
        q.release(1);
        assert_eq!(q.held(), 1);
        q.requeue_held();
        let all: Vec<u32> = q.pop_many(10).chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(all, vec![2, 3, 4, 5], "the held message is first again");
    }

    #[test]
    fn ring_segments_wrap() {
        let segs: Vec<_> = ring_segments(6, 5, 8).collect();
        assert_eq!(segs, vec![6..8, 0..3]);
        let segs: Vec<_> = ring_segments(u32::MAX, 2, 8).collect();
        assert_eq!(segs, vec![7..8, 0..1], "free-running indices wrap at 2^32 (8 divides 2^32)");
        assert_eq!(ring_segments(3, 0, 8).count(), 0);
    }

    #[test]
    fn ring_copy_pieces_split_where_either_ring_wraps() {
        assert_eq!(ring_copy_pieces(6, 8, 1, 4, 5), vec![(6, 1, 2), (0, 3, 1), (1, 0, 2)]);
        assert_eq!(ring_copy_pieces(0, 8, 0, 8, 8), vec![(0, 0, 8)]);
        assert!(ring_copy_pieces(3, 8, 5, 16, 0).is_empty());
        let total: u32 = ring_copy_pieces(u32::MAX, 16, 7, 4, 9).iter().map(|p| p.2).sum();
        assert_eq!(total, 9);
    }

    /// The WGSL mirrors must list the same fields in the same order.
    #[test]
    fn ring_header_and_counters_match_wgsl() {
        let harness = include_str!("../shaders/harness/ring.wgsl");
        let fields = |name: &str| -> Vec<String> {
            let body = harness.split(&format!("struct {name} {{")).nth(1).unwrap().split('}').next().unwrap();
            body.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("//"))
                .map(|l| l.split(':').next().unwrap().to_owned())
                .collect()
        };
        assert_eq!(fields("RingInput"), ["head", "count", "capacity", "running", "messages"]);
        assert_eq!(
            fields("RingOutput"),
            ["processed_lo", "processed_hi", "dropped_lo", "dropped_hi", "dispatches", "_reserved", "answers"]
        );
    }
}

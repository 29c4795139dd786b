//! Queues: the bounded host-side FIFOs that stage packed messages, and the layout of the
//! GPU-resident control block that holds the ring indices and counters.

use std::collections::VecDeque;

use bytemuck::{Pod, Zeroable};

/// A bounded FIFO of fixed-size packed messages. Messages are stored back to back so a whole
/// batch leaves with one copy (and one `writeBuffer`).
#[derive(Debug)]
pub struct PackedQueue {
    stride: usize,
    capacity: usize,
    bytes: VecDeque<u8>,
}

impl PackedQueue {
    pub fn new(stride: usize, capacity: usize) -> Self {
        assert!(stride > 0, "messages have at least one field");
        PackedQueue { stride, capacity, bytes: VecDeque::new() }
    }

    pub fn len(&self) -> usize {
        self.bytes.len() / self.stride
    }
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
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

    /// Removes up to `max` messages from the front and returns them packed.
    pub fn pop_many(&mut self, max: usize) -> Vec<u8> {
        let len = max.min(self.len()) * self.stride;
        // Copy the ring's (at most two) contiguous runs at once rather than byte by byte.
        let (front, back) = self.bytes.as_slices();
        let from_front = len.min(front.len());
        let mut popped = Vec::with_capacity(len);
        popped.extend_from_slice(&front[..from_front]);
        popped.extend_from_slice(&back[..len - from_front]);
        self.bytes.drain(..len);
        popped
    }

    /// Removes the front message.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        (!self.is_empty()).then(|| self.pop_many(1))
    }
}

/// The GPU control block, mirrored from `ControlBlock` in `shaders/harness/ring.wgsl`.
/// Offsets are asserted below and the WGSL text is checked against this struct in tests.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct ControlBlock {
    pub active_flag: u32,
    pub terminate_flag: u32,
    pub capacity: u32,
    pub input_tail: u32,
    pub input_head: u32,
    pub output_tail: u32,
    pub dispatches: u32,
    pub _pad: u32,
    pub processed_lo: u32,
    pub processed_hi: u32,
    pub dropped_lo: u32,
    pub dropped_hi: u32,
    pub _reserved: [u32; 4],
}

const _: () = assert!(std::mem::size_of::<ControlBlock>() == 64);
const _: () = assert!(std::mem::offset_of!(ControlBlock, input_tail) == 12);
const _: () = assert!(std::mem::offset_of!(ControlBlock, input_head) == 16);
const _: () = assert!(std::mem::offset_of!(ControlBlock, processed_lo) == 32);

impl ControlBlock {
    pub const SIZE: u64 = std::mem::size_of::<ControlBlock>() as u64;
    pub const ACTIVE_OFFSET: u64 = std::mem::offset_of!(ControlBlock, active_flag) as u64;
    pub const TERMINATE_OFFSET: u64 = std::mem::offset_of!(ControlBlock, terminate_flag) as u64;
    pub const INPUT_TAIL_OFFSET: u64 = std::mem::offset_of!(ControlBlock, input_tail) as u64;

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

    /// The WGSL mirror must list the same fields in the same order.
    #[test]
    fn control_block_matches_wgsl() {
        let harness = include_str!("../shaders/harness/ring.wgsl");
        let body = harness.split("struct ControlBlock {").nth(1).unwrap().split('}').next().unwrap();
        let names: Vec<&str> = body
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("//"))
            .map(|l| l.split(':').next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "active_flag",
                "terminate_flag",
                "capacity",
                "input_tail",
                "input_head",
                "output_tail",
                "dispatches",
                "_pad",
                "processed_lo",
                "processed_hi",
                "dropped_lo",
                "dropped_hi",
                "_reserved"
            ]
        );
    }
}

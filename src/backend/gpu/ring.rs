//! The GPU rings' shape: the header the host writes in front of a kernel's input ring, the
//! counters the GPU keeps in front of its output ring (both mirrored from
//! `shaders/harness/ring.wgsl`), and how runs of free-running slot indices split where a ring
//! wraps.

use bytemuck::{Pod, Zeroable};

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
/// `shaders/harness/ring.wgsl`; they come back in the same copy as the answers. 32 bits that
/// wrap: read back after every dispatch, whose count is below a ring's, two readings differ
/// by exactly what the dispatch added (the kernel's tally keeps the last reading).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct RingCounters {
    pub processed: u32,
    pub dropped: u32,
    pub _reserved: [u32; 6],
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

/// The field names of WGSL struct `name` in `source`, in order (for the tests that check a Rust
/// mirror against its shader).
#[cfg(test)]
pub(crate) fn wgsl_struct_fields<'a>(source: &'a str, name: &str) -> Vec<&'a str> {
    let body = source.split(&format!("struct {name} {{")).nth(1).unwrap().split('}').next().unwrap();
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .map(|l| l.split(':').next().unwrap())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let harness = include_str!("../../../shaders/harness/ring.wgsl");
        let fields = |name: &str| wgsl_struct_fields(harness, name);
        assert_eq!(fields("RingInput"), ["head", "count", "capacity", "running", "messages"]);
        assert_eq!(fields("RingOutput"), ["processed", "dropped", "_reserved", "answers"]);
    }
}

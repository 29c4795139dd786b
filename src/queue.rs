//! The bounded host-side FIFOs that stage packed messages: a kernel's input queue (waiting to go
//! to the device) and output queue (answers waiting for `receive`).

use bytemuck::Pod;

/// A bounded FIFO of fixed-size packed messages, stored back to back in one contiguous buffer
/// so a whole batch leaves with one copy (and one `writeBuffer`) and a message is packed in
/// place.
///
/// An input queue also keeps the messages it handed to the backend until they are answered:
/// they are *held* at its front, out of the count and the bound, and are released when their
/// answers arrive. If the device is lost first, [`requeue_held`](Self::requeue_held) puts them
/// back in line, in their order, ahead of everything sent since: nothing written to a lost GPU
/// is lost.
#[derive(Debug)]
pub(crate) struct PackedQueue {
    stride: usize,
    capacity: usize,
    /// `bytes[start..]`: held messages first, then the waiting ones. The consumed prefix is
    /// reclaimed once it is at least half the buffer, so popping is amortized O(1).
    bytes: Vec<u8>,
    start: usize,
    held: usize,
    /// Waiting messages removed from the front so far: the position of the front one, which
    /// envelope headers of answers are keyed by (see `crate::envelope`).
    taken: u64,
}

impl PackedQueue {
    /// A queue of `stride`-byte messages that accepts at most `capacity` waiting ones.
    pub fn new(stride: usize, capacity: usize) -> Self {
        assert!(stride > 0, "messages have at least one field");
        PackedQueue { stride, capacity, bytes: Vec::new(), start: 0, held: 0, taken: 0 }
    }

    /// Messages waiting (not counting held ones).
    pub fn len(&self) -> usize {
        (self.bytes.len() - self.start) / self.stride - self.held
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    /// How full it is, 0 to 1 (what health and the degradation manager read).
    pub fn fill(&self) -> f64 {
        self.len() as f64 / self.capacity.max(1) as f64
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
    /// Position of the front waiting message: how many were removed from the front so far.
    pub fn taken(&self) -> u64 {
        self.taken
    }
    /// Host memory the queue holds, in bytes.
    pub fn memory(&self) -> usize {
        self.bytes.capacity()
    }

    /// Appends as many whole messages of `packed` as fit and returns how many that was.
    pub fn push_many(&mut self, packed: &[u8]) -> usize {
        debug_assert_eq!(packed.len() % self.stride, 0);
        let count = (packed.len() / self.stride).min(self.free());
        self.bytes.extend_from_slice(&packed[..count * self.stride]);
        count
    }

    /// Packs one message in place: `pack` writes its bytes into a zeroed slot at the back. If
    /// it fails, the slot is taken back and the queue is as it was. The caller checks room.
    pub fn push_with<E>(&mut self, pack: impl FnOnce(&mut [u8]) -> Result<(), E>) -> Result<(), E> {
        let end = self.bytes.len();
        self.bytes.resize(end + self.stride, 0);
        let packed = pack(&mut self.bytes[end..]);
        if packed.is_err() {
            self.bytes.truncate(end);
        }
        packed
    }

    /// Appends every whole message of `packed`, even past the capacity. For answers only: the
    /// tick reserves output room before dispatching, except while a kernel drains for
    /// termination, when keeping every answer matters more than the bound.
    pub fn push_overflowing(&mut self, packed: &[u8]) -> usize {
        debug_assert_eq!(packed.len() % self.stride, 0);
        self.bytes.extend_from_slice(packed);
        packed.len() / self.stride
    }

    /// The first `count` waiting messages (at most all of them), packed back to back.
    pub fn front(&self, count: usize) -> &[u8] {
        let from = self.start + self.held * self.stride;
        &self.bytes[from..from + count.min(self.len()) * self.stride]
    }

    /// The last `count` held messages: those [`hold`](Self::hold) just handed on.
    pub fn newest_held(&self, count: usize) -> &[u8] {
        let end = self.start + self.held * self.stride;
        &self.bytes[end - count.min(self.held) * self.stride..end]
    }

    /// Removes the first `count` waiting messages (at most all of them).
    pub fn discard(&mut self, count: usize) {
        let count = count.min(self.len());
        self.taken += count as u64;
        let len = count * self.stride;
        if self.held == 0 {
            self.consume(len);
        } else {
            let from = self.start + self.held * self.stride;
            self.bytes.drain(from..from + len);
        }
    }

    /// Marks the first `count` waiting messages as handed on: they stay, held, until
    /// [`release`](Self::release)d or [`requeue_held`](Self::requeue_held).
    pub fn hold(&mut self, count: usize) {
        self.held += count.min(self.len());
    }

    /// Forgets the first `count` held messages: they were answered.
    pub fn release(&mut self, count: usize) {
        let count = count.min(self.held);
        self.held -= count;
        self.consume(count * self.stride);
    }

    /// Makes every held message wait again, at the front and in order.
    pub fn requeue_held(&mut self) {
        self.held = 0;
    }

    /// Removes every message, held ones included.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.start = 0;
        self.held = 0;
    }

    /// Removes up to `max` waiting messages from the front, handing them to `read` first,
    /// packed back to back (no copy in between).
    pub fn pop_many_with<R>(&mut self, max: usize, read: impl FnOnce(&[u8]) -> R) -> R {
        let popped = read(self.front(max));
        self.discard(max);
        popped
    }

    /// Removes up to `max` waiting messages from the front and returns them packed.
    #[cfg(test)]
    pub fn pop_many(&mut self, max: usize) -> Vec<u8> {
        self.pop_many_with(max, <[u8]>::to_vec)
    }

    /// Removes up to `max` waiting messages from the front as values of `T`, copied straight
    /// into the returned vector. `T` must divide the message size (checked by the caller).
    pub fn pop_many_as<T: Pod>(&mut self, max: usize) -> Vec<T> {
        let front = self.front(max);
        // Aligned for `T` (as allocations and strides make it), one copy; otherwise a zeroed
        // vector and a copy into it.
        let popped = match bytemuck::try_cast_slice::<u8, T>(front) {
            Ok(values) => values.to_vec(),
            Err(_) => bytemuck::pod_collect_to_vec(front),
        };
        self.discard(max);
        popped
    }

    /// Removes the front waiting message, handing its bytes to `read` first.
    pub fn pop_with<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> Option<R> {
        if self.is_empty() {
            return None;
        }
        let value = read(self.front(1));
        self.discard(1);
        Some(value)
    }

    /// Drops `len` bytes from the front of the live region.
    fn consume(&mut self, len: usize) {
        self.start += len;
        if self.start == self.bytes.len() {
            self.clear_bytes();
        } else if self.start >= self.bytes.len() / 2 && self.start >= 4096 {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
    }

    fn clear_bytes(&mut self) {
        self.bytes.clear();
        self.start = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(bytes: &[u8]) -> Vec<u32> {
        bytes.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect()
    }

    #[test]
    fn queue_is_fifo_and_bounded() {
        let mut q = PackedQueue::new(4, 3);
        let msgs: Vec<u8> = (1..=5u32).flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(q.push_many(&msgs), 3, "only three fit");
        assert_eq!(q.free(), 0);
        assert_eq!(q.pop_with(<[u8]>::to_vec).unwrap(), 1u32.to_le_bytes());
        assert_eq!(q.push_many(&msgs[16..]), 1);
        assert_eq!(words(&q.pop_many(10)), vec![2, 3, 5]);
        assert!(q.is_empty());
    }

    #[test]
    fn held_messages_leave_the_count_and_come_back_in_order() {
        let mut q = PackedQueue::new(4, 3);
        let msgs: Vec<u8> = (1..=6u32).flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(q.push_many(&msgs), 3);
        q.hold(2);
        assert_eq!((q.len(), q.held(), q.free()), (1, 2, 2), "held messages do not count against the bound");
        assert_eq!(q.front(8), &3u32.to_le_bytes()[..]);
        assert_eq!(words(q.newest_held(1)), vec![2]);
        assert_eq!(q.push_many(&msgs[12..]), 2);
        q.release(1);
        assert_eq!(q.held(), 1);
        q.requeue_held();
        assert_eq!(words(&q.pop_many(10)), vec![2, 3, 4, 5], "the held message is first again");
    }

    #[test]
    fn a_failed_pack_leaves_nothing_behind() {
        let mut q = PackedQueue::new(4, 3);
        assert_eq!(q.push_with(|slot| Err::<(), _>(slot.len())), Err(4));
        assert!(q.is_empty());
        q.push_with(|slot| {
            slot.copy_from_slice(&7u32.to_le_bytes());
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(q.pop_with(words), Some(vec![7]));
    }

    /// Long streams reuse the buffer: the consumed prefix is reclaimed as it grows.
    #[test]
    fn the_buffer_stays_bounded_over_a_long_stream() {
        let mut q = PackedQueue::new(4, 100);
        let (mut next_in, mut next_out) = (0u32, 0u32);
        let mut push = |q: &mut PackedQueue, n: u32| {
            let batch: Vec<u8> = (next_in..next_in + n).flat_map(u32::to_le_bytes).collect();
            assert_eq!(q.push_many(&batch), n as usize);
            next_in += n;
        };
        push(&mut q, 50);
        for _ in 0..10_000 {
            push(&mut q, 7);
            q.hold(5);
            assert_eq!(words(q.newest_held(5)), (next_out..next_out + 5).collect::<Vec<_>>());
            q.release(5);
            next_out += 5;
            assert_eq!(words(&q.pop_many(2)), vec![next_out, next_out + 1]);
            next_out += 2;
            assert_eq!(q.len(), 50);
        }
        assert!(q.bytes.capacity() < 64 * 1024, "{}", q.bytes.capacity());
    }
}

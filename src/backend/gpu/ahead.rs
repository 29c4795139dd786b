//! A tick's commands encoded ahead, on the web ([`crate::platform::ENCODE_AHEAD`]). A tick of
//! one kernel on its own, or of one fused chain, with a message or a few (a round trip's tick) is
//! usually followed by another just like it. So while the device works on such a tick, its
//! commands are encoded once more and kept: with the kernel, or with the chain's bind group in
//! the fused cache (so that dropping any stage drops them). The next such tick then only
//! writes its messages and submits, and making the encoder, the pass and the copies leaves the
//! round trip's path.
//!
//! The commands fit every such tick of the same kernel or chain. The ring header written with
//! the messages says how many there are; the dispatch is the one workgroup the grid gives them;
//! and the copy back takes the counters and [`MOST_ANSWERS`] answer slots (fewer for a smaller
//! workgroup or ring) from slot 0, where the messages start when no earlier ones are still
//! unanswered. Other ticks are encoded as usual and leave the commands kept, still valid, for
//! the next round trip; commands that copy into a readback buffer since replaced by a larger one,
//! or that copy a state's checkpoint when the tick takes none (or the reverse), are dropped.

use std::sync::Mutex;

use super::fused::FusedRun;
use super::kernel::GpuKernel;
use crate::backend::Dispatch;

/// The most messages a round trip's tick takes: every such tick copies this many answer slots
/// back, so it stays a message or a few (a workgroup of large answers would be kilobytes).
pub(crate) const MOST_ANSWERS: u32 = 16;

/// A tick whose commands fit the next tick of the same kernel or chain: one kernel on its own
/// or one fused chain covering the tick, its messages from slot 0 on, no more than
/// [`Self::answer_slots`].
pub(crate) struct RoundTripTick<'a> {
    /// Where its kernel, or its chain, keeps the next tick's commands.
    next: &'a NextCommands,
    /// Answer slots its copy brings back, whatever its count.
    pub answer_slots: u32,
}

/// Commands encoded ahead, the readback buffer they copy into and how much they copy (with a
/// state's checkpoint or without).
pub(crate) struct Ahead {
    commands: wgpu::CommandBuffer,
    readback: wgpu::Buffer,
    size: u64,
}

/// Where a kernel or a fused chain keeps its next tick's commands (used once, or replaced).
pub(crate) type NextCommands = Mutex<Option<Ahead>>;

/// The tick as a [`RoundTripTick`], when it is one.
pub(crate) fn round_trip<'a>(
    dispatches: &[Dispatch<'_>],
    rings: &[&'a GpuKernel],
    runs: &'a [FusedRun],
) -> Option<RoundTripTick<'a>> {
    let (stages, next): (&[usize], &NextCommands) = match (dispatches, runs) {
        ([d], []) if d.forward.is_none() => (&[0], &rings[0].ahead),
        (_, [run]) if run.stages.len() == dispatches.len() => (&run.stages, run.next()),
        _ => return None,
    };
    let (first, last) = (stages[0], stages[stages.len() - 1]);
    let (ring, last_ring) = (rings[first], rings[last]);
    let answer_slots = MOST_ANSWERS.min(ring.workgroup_size).min(ring.slots).min(last_ring.slots);
    let pending = dispatches[first].pending;
    let fits = dispatches[first].head.is_multiple_of(ring.slots)
        && dispatches[last].head.is_multiple_of(last_ring.slots)
        && pending <= answer_slots;
    debug_assert!(!fits || ring.workgroups(pending) == 1, "a workgroup's messages get one workgroup");
    fits.then_some(RoundTripTick { next, answer_slots })
}

/// The commands kept for `tick`, when they copy `size` bytes into `readback`, the buffer in use
/// (replaced when it grows). Whatever was kept is taken either way.
pub(crate) fn take(tick: &RoundTripTick<'_>, readback: &wgpu::Buffer, size: u64) -> Option<wgpu::CommandBuffer> {
    let ahead = tick.next.lock().unwrap_or_else(|p| p.into_inner()).take()?;
    (ahead.readback == *readback && ahead.size == size).then_some(ahead.commands)
}

/// Keeps `commands`, the next tick like `tick`, copying `size` bytes into `readback`.
pub(crate) fn keep(tick: &RoundTripTick<'_>, commands: wgpu::CommandBuffer, readback: wgpu::Buffer, size: u64) {
    *tick.next.lock().unwrap_or_else(|p| p.into_inner()) = Some(Ahead { commands, readback, size });
}

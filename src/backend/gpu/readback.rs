//! How one tick's results come back: every kernel's counters, answers, kept flags and state
//! checkpoint (on the ticks that take one) are copied into one MAP_READ buffer, mapped once.
//! [`ReadbackLayout`] says where each kernel's part lies; the submit writes by it and the
//! delivery reads by it.

use super::ring::RingCounters;
use super::{GpuBuffer, GpuContext};
use crate::error::{Error, Result};
use crate::memory::MemoryPurpose;

/// Where one dispatch's results lie in the readback buffer, in this order: its counters, its
/// answers (none when they were forwarded on the device), one kept flag per answer (for
/// handlers that may drop), and its state array (when the tick takes its checkpoint).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Region {
    at: u64,
    answers: u32,
    stride: u64,
    kept: bool,
    state: u64,
}

impl Region {
    pub fn counters_at(&self) -> u64 {
        self.at
    }
    pub fn answers_at(&self) -> u64 {
        self.at + RingCounters::SIZE
    }
    /// Slots of answers copied back (0 for a dispatch whose answers were forwarded).
    pub fn answer_slots(&self) -> u32 {
        self.answers
    }
    pub fn kept_at(&self) -> u64 {
        self.answers_at() + self.answers as u64 * self.stride
    }
    pub fn state_at(&self) -> u64 {
        self.kept_at() + if self.kept { 4 * self.answers as u64 } else { 0 }
    }
    fn end(&self) -> u64 {
        self.state_at() + self.state
    }
    /// Bytes the tick copies back for the dispatch: every slot it reserved, answered or not.
    pub fn size(&self) -> u64 {
        self.end() - self.at
    }

    /// The dispatch's counters.
    pub fn counters(&self, bytes: &[u8]) -> RingCounters {
        bytemuck::pod_read_unaligned(slice(bytes, self.counters_at(), RingCounters::SIZE))
    }
    /// Its first `answered` answers.
    pub fn answers<'a>(&self, bytes: &'a [u8], answered: u32) -> &'a [u8] {
        slice(bytes, self.answers_at(), answered.min(self.answers) as u64 * self.stride)
    }
    /// Their kept flags, for handlers that may drop.
    pub fn kept<'a>(&self, bytes: &'a [u8], answered: u32) -> Option<&'a [u8]> {
        self.kept.then(|| slice(bytes, self.kept_at(), 4 * answered.min(self.answers) as u64))
    }
    /// Whether the state array comes back in this region (the tick takes its checkpoint).
    pub fn has_state(&self) -> bool {
        self.state > 0
    }
    /// The state array after the dispatch, for kernels that have one.
    pub fn state<'a>(&self, bytes: &'a [u8]) -> Option<&'a [u8]> {
        (self.state > 0).then(|| slice(bytes, self.state_at(), self.state))
    }
}

fn slice(bytes: &[u8], at: u64, len: u64) -> &[u8] {
    &bytes[at as usize..(at + len) as usize]
}

/// The regions of one tick, back to back.
#[derive(Debug, Default)]
pub(crate) struct ReadbackLayout {
    regions: Vec<Region>,
    size: u64,
}

impl ReadbackLayout {
    /// Adds a dispatch reading back `answers` answers of `stride` bytes (with kept flags when
    /// the handler may drop) and a state array of `state` bytes (0 without one).
    pub fn push(&mut self, answers: u32, stride: u64, kept: bool, state: u64) {
        let region = Region { at: self.size, answers, stride, kept, state };
        self.size = region.end();
        self.regions.push(region);
    }
    /// Adds `size` bytes of results laid out by their owner (a grouped dispatch's); returns
    /// where they start.
    pub fn push_block(&mut self, size: u64) -> u64 {
        let at = self.size;
        self.size += size.next_multiple_of(4);
        at
    }
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }
    /// Bytes the tick reads back.
    pub fn size(&self) -> u64 {
        self.size
    }
}

/// A MAP_READ buffer that every tick's outputs are copied into, so one `mapAsync` brings back
/// the results of all kernels. It grows (by doubling), and shrinks to what ticks take once
/// [`SHRINK_AFTER`] ticks in a row took at most a quarter of it (a removed kernel's large state
/// is not held for good, and a tick of it now and then does not make it grow each time).
pub(crate) struct Readback {
    buffer: Option<GpuBuffer>,
    /// Ticks in a row that took at most a quarter of the buffer.
    small_ticks: u32,
}

/// Ticks in a row that take at most a quarter of the readback buffer before it shrinks.
pub(super) const SHRINK_AFTER: u32 = 256;

impl Readback {
    pub fn new() -> Self {
        Readback { buffer: None, small_ticks: 0 }
    }

    /// A buffer of at least `size` bytes.
    pub fn reserve(&mut self, ctx: &GpuContext, size: u64) -> wgpu::Buffer {
        let size = size.next_multiple_of(wgpu::MAP_ALIGNMENT).max(256);
        let held = self.buffer.as_ref().map_or(0, |b| b.size());
        self.small_ticks = if size * 4 <= held { self.small_ticks + 1 } else { 0 };
        if held < size || self.small_ticks >= SHRINK_AFTER {
            self.small_ticks = 0;
            let grown = next_size(held, size, ctx.max_buffer_size);
            if let Some(old) = self.buffer.take() {
                old.destroy();
            }
            self.buffer = Some(ctx.create_buffer(
                MemoryPurpose::Readback,
                &wgpu::BufferDescriptor {
                    // MAP_READ may only be combined with COPY_DST, hence a buffer apart from the rings.
                    label: Some("readback"),
                    size: grown,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                },
            ));
        }
        self.buffer.as_deref().cloned().expect("just reserved")
    }
}

/// The readback buffer's next size, for a tick of `size` bytes with `held` bytes now: doubled
/// when it grows, a power of two when it shrinks, but never past the device's largest buffer
/// (`most`) when the tick fits in it: a buffer over it fails, and the device with it.
pub(super) fn next_size(held: u64, size: u64, most: u64) -> u64 {
    let wanted = if held < size { size.max(held * 2) } else { size.next_power_of_two() };
    wanted.min(most).max(size)
}

/// Maps `buffer[..size]`, copies it out and unmaps. Never blocks on the web.
pub(crate) async fn read_back(ctx: &GpuContext, buffer: &wgpu::Buffer, size: u64) -> Result<Vec<u8>> {
    Mapping::start(buffer.clone(), size).read(ctx, <[u8]>::to_vec).await
}

/// A kernel's `state` array as it is on the device now, through a staging buffer of its own
/// (`readState`, and a checkpoint caught up: see `checkpoint::catch_up`).
pub(crate) async fn read_state(ctx: &GpuContext, state: &wgpu::Buffer) -> Result<Vec<u8>> {
    // The runtime's own error scope on the application's device (see `GpuContext::own_work`).
    let staging = ctx.own_work(|| {
        let staging = ctx.create_buffer(
            MemoryPurpose::Readback,
            &wgpu::BufferDescriptor {
                label: Some("state readback"),
                size: state.size(),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            },
        );
        let mut encoder =
            ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("read state") });
        encoder.copy_buffer_to_buffer(state, 0, &staging, 0, state.size());
        ctx.queue.submit([encoder.finish()]);
        Ok(staging)
    })?;
    let bytes = read_back(ctx, &staging, state.size()).await;
    staging.destroy();
    bytes
}

/// A readback buffer's map, asked for as soon as its tick is submitted, so that the host's
/// work after the submit (on the web, encoding the next tick's commands: see [`super::ahead`])
/// overlaps the device's. On the web the map goes through the buffer's `GPUBuffer` (see
/// `web_map`), never blocking; natively through wgpu's `map_async`.
pub(crate) struct Mapping {
    buffer: wgpu::Buffer,
    size: u64,
    #[cfg(target_arch = "wasm32")]
    mapping: super::web_map::Mapping,
    #[cfg(not(target_arch = "wasm32"))]
    mapped: futures_channel::oneshot::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
}

impl Mapping {
    /// Asks for `buffer[..size]` to be mapped for reading.
    pub fn start(buffer: wgpu::Buffer, size: u64) -> Self {
        let aligned = size.next_multiple_of(4);
        #[cfg(target_arch = "wasm32")]
        {
            let mapping = super::web_map::map_read(web_buffer(&buffer), aligned);
            Mapping { buffer, size, mapping }
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let (sender, mapped) = futures_channel::oneshot::channel();
            buffer.slice(..aligned).map_async(wgpu::MapMode::Read, move |result| {
                let _ = sender.send(result);
            });
            Mapping { buffer, size, mapped }
        }
    }

    /// Waits for the map, hands `read` the mapped bytes and unmaps. Natively `read` sees wgpu's
    /// mapping itself; on the web the bytes are copied into wasm memory once, as they must be.
    pub async fn read<R>(self, ctx: &GpuContext, read: impl FnOnce(&[u8]) -> R) -> Result<R> {
        #[cfg(target_arch = "wasm32")]
        {
            use super::web_map;
            let Mapping { buffer, size, mapping } = self;
            if !mapping.settled().await {
                ctx.check_fault()?;
                return Err(Error::DeviceLost { reason: "mapping the readback buffer failed".into() });
            }
            web_map::read_mapped(web_buffer(&buffer), size, read)
                .ok_or_else(|| Error::DeviceLost { reason: "reading the mapped readback buffer failed".into() })
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let Mapping { buffer, size, mapped } = self;
            crate::platform::drive_gpu(&ctx.device);
            let mapped = mapped.await.map_err(|_| Error::DeviceLost { reason: "readback callback dropped".into() })?;
            if let Err(e) = mapped {
                ctx.check_fault()?;
                return Err(Error::DeviceLost { reason: format!("mapping the readback buffer failed: {e}") });
            }
            let result = {
                let view = buffer.slice(..size.next_multiple_of(4)).get_mapped_range().map_err(|e| {
                    Error::DeviceLost { reason: format!("reading the mapped readback buffer failed: {e}") }
                })?;
                read(&view[..size as usize])
            };
            buffer.unmap();
            Ok(result)
        }
    }
}

/// The `GPUBuffer` behind a wgpu buffer (on the web every buffer has one).
#[cfg(target_arch = "wasm32")]
fn web_buffer(buffer: &wgpu::Buffer) -> &wgpu::webgpu::GpuBuffer {
    buffer.as_webgpu().expect("on the web every buffer is a WebGPU buffer")
}

#[cfg(test)]
mod tests {
    use super::next_size;

    #[test]
    fn the_readback_doubles_and_shrinks_within_the_largest_buffer() {
        const GIB: u64 = 1 << 30;
        assert_eq!(next_size(0, 4096, GIB), 4096);
        assert_eq!(next_size(4096, 5000, GIB), 8192, "doubled");
        assert_eq!(next_size(GIB / 2, GIB / 2 + 4096, GIB), GIB, "doubled up to the limit, not past it");
        assert_eq!(next_size(GIB, 3000, GIB), 4096, "shrunk to a power of two");
        assert_eq!(next_size(GIB, 700 << 20, GIB), GIB, "a power of two past the limit is the limit");
    }
}

//! Reading a readback buffer back on the web, through its `GPUBuffer` (wgpu's
//! `Buffer::as_webgpu`) rather than wgpu's `map_async`. wgpu makes two closures for every map
//! (each one registered with the page's `FinalizationRegistry` and unregistered again), a shared
//! cell and the tick's channel, and copies the mapped range into a new vector. Here a map in
//! flight takes a [`Slot`] whose two callbacks were made once, and the range is copied into a
//! vector kept from one tick to the next. One tick's results are two or three of wgpu's calls
//! fewer, and no allocation, on the page's thread between the map and the delivery.
//!
//! Each device's ticks take turns, so as many slots exist as devices have mapped at once
//! (usually one). wgpu never sees these maps: nothing else maps the buffers read here.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wgpu::webgpu::GpuBuffer;

/// `GPUMapMode.READ`.
const MAP_READ: u32 = 1;

/// What a map in flight shares with its callbacks.
#[derive(Default)]
struct Settled {
    /// `Some(true)` once mapped, `Some(false)` once refused (a lost device, a destroyed buffer).
    outcome: Cell<Option<bool>>,
    waker: RefCell<Option<Waker>>,
    /// Its future was dropped first: the slot is freed when the map settles, not before, so
    /// its callbacks never settle a later map.
    abandoned: Cell<bool>,
}

/// One map's place: its shared state and the two callbacks that settle it.
struct Slot {
    settled: Rc<Settled>,
    on_mapped: Closure<dyn FnMut(JsValue)>,
    on_refused: Closure<dyn FnMut(JsValue)>,
}

thread_local! {
    static SLOTS: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
    static FREE: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    /// The last mapped range's copy, kept for the next (a tick reads back every tick).
    static COPY: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A free slot, made (with its callbacks) only when every slot is in use.
fn take_slot() -> (usize, Rc<Settled>) {
    if let Some(index) = FREE.with_borrow_mut(Vec::pop) {
        let settled = SLOTS.with_borrow(|slots| slots[index].settled.clone());
        settled.outcome.set(None);
        settled.abandoned.set(false);
        return (index, settled);
    }
    SLOTS.with_borrow_mut(|slots| {
        let index = slots.len();
        let settled = Rc::new(Settled::default());
        let callback = |mapped: bool| {
            let settled = settled.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |_: JsValue| {
                settled.outcome.set(Some(mapped));
                if settled.abandoned.get() {
                    FREE.with_borrow_mut(|free| free.push(index));
                } else if let Some(waker) = settled.waker.take() {
                    waker.wake();
                }
            })
        };
        let (on_mapped, on_refused) = (callback(true), callback(false));
        slots.push(Slot { settled: settled.clone(), on_mapped, on_refused });
        (index, settled)
    })
}

/// Frees its slot when the map's future ends: at once if the map settled, else when it does.
struct Release {
    index: usize,
    settled: Rc<Settled>,
}

impl Drop for Release {
    fn drop(&mut self) {
        if self.settled.outcome.get().is_some() {
            FREE.with_borrow_mut(|free| free.push(self.index));
        } else {
            self.settled.abandoned.set(true);
        }
    }
}

/// A map in flight: asked for when made, settled by [`Mapping::settled`]. Dropped first, it
/// leaves its slot to be freed when the browser settles the map.
pub(crate) struct Mapping {
    release: Release,
}

/// Asks for `buffer[..size]` to be mapped for reading, at once.
pub(crate) fn map_read(buffer: &GpuBuffer, size: u64) -> Mapping {
    let (index, settled) = take_slot();
    let release = Release { index, settled };
    let promise: Promise = buffer.map_async_with_f64_and_f64(MAP_READ, 0.0, size as f64).unchecked_into();
    SLOTS.with_borrow(|slots| {
        let slot = &slots[index];
        let _ = promise.then2(&slot.on_mapped, &slot.on_refused);
    });
    Mapping { release }
}

impl Mapping {
    /// Whether the buffer was mapped; `false` when the browser refused (the caller asks the
    /// device why).
    pub async fn settled(self) -> bool {
        let settled = &self.release.settled;
        poll_fn(|cx| match settled.outcome.get() {
            Some(mapped) => Poll::Ready(mapped),
            None => {
                *settled.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// Hands `read` the first `size` bytes of the mapped `buffer` (copied into wasm memory once,
/// into the kept vector), then unmaps it. `None` when the range cannot be had.
pub(crate) fn read_mapped<R>(buffer: &GpuBuffer, size: u64, read: impl FnOnce(&[u8]) -> R) -> Option<R> {
    let aligned = size.next_multiple_of(4);
    let range = buffer.get_mapped_range_with_f64_and_f64(0.0, aligned as f64).ok()?;
    let result = COPY.with_borrow_mut(|copy| {
        if copy.len() < aligned as usize {
            copy.resize(aligned as usize, 0);
        }
        let bytes = &mut copy[..aligned as usize];
        Uint8Array::new(&range).copy_to(bytes);
        read(&bytes[..size as usize])
    });
    buffer.unmap();
    Some(result)
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};

    use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

    use super::*;

    wasm_bindgen_test_configure!(run_in_browser);

    /// A MAP_READ buffer holding `bytes`.
    fn readable(device: &wgpu::Device, queue: &wgpu::Queue, bytes: &[u8]) -> wgpu::Buffer {
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: bytes.len() as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        queue.write_buffer(&buffer, 0, bytes);
        queue.submit([]);
        buffer
    }

    fn raw(buffer: &wgpu::Buffer) -> &GpuBuffer {
        buffer.as_webgpu().expect("a WebGPU buffer")
    }

    fn slots_and_free() -> (usize, usize) {
        (SLOTS.with_borrow(Vec::len), FREE.with_borrow(Vec::len))
    }

    /// Maps read what was written and unmap; a map whose future was dropped first keeps its slot
    /// until it settles, then frees it, and the slot then serves a later map; a refused map (a
    /// destroyed buffer) is `false`.
    #[wasm_bindgen_test]
    async fn maps_read_back_and_dropped_maps_free_their_slot_once_settled() {
        let instance = crate::platform::gpu_instance(wgpu::InstanceDescriptor::new_without_display_handle())
            .expect("no WebGPU here");
        let adapter = instance.request_adapter(&Default::default()).await.expect("no WebGPU adapter here");
        let (device, queue) = adapter.request_device(&Default::default()).await.expect("no WebGPU device");
        let first = readable(&device, &queue, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let second = readable(&device, &queue, &[9; 8]);

        {
            let mut abandoned = pin!(map_read(raw(&first), 8).settled());
            assert!(abandoned.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
        }
        let (slots, free) = slots_and_free();
        assert!(slots > free, "the dropped map still holds its slot: {slots} slots, {free} free");

        assert!(map_read(raw(&second), 8).settled().await);
        assert_eq!(read_mapped(raw(&second), 6, <[u8]>::to_vec), Some(vec![9; 6]));
        // The dropped map has settled meanwhile (one queue, maps in order): every slot is free.
        let (slots, free) = slots_and_free();
        assert_eq!(slots, free, "no map is in flight");

        // The dropped map did map `first`; unmapped, it maps again through a reused slot.
        raw(&first).unmap();
        assert!(map_read(raw(&first), 8).settled().await);
        assert_eq!(read_mapped(raw(&first), 8, <[u8]>::to_vec), Some(vec![1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(slots_and_free(), (slots, slots), "no slot was made for it");

        first.destroy();
        assert!(!map_read(raw(&first), 8).settled().await, "a destroyed buffer's map is refused");
        assert_eq!(slots_and_free(), (slots, slots));
    }
}

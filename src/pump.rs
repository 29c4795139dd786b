//! The pump: the one place kernels run. Ticks run back to back while there is work and not at
//! all while idle.
//!
//! On a GPU, each tick takes the staged input of every running kernel and writes it, behind a
//! header saying where it starts and how much there is, into the kernel's input ring (one
//! `writeBuffer` per kernel), encodes one bounded dispatch per kernel (one compute pass per
//! pipeline stage, with ring-to-ring copies between stages for connected kernels), copies every
//! kernel's counters and answers (and the state array of kernels that have one, as the
//! checkpoint recovery restores) into one readback buffer, submits once and maps once. Input
//! written to the GPU stays held on the host until its answers arrive. On the `cpu` backend,
//! each tick hands every running kernel's staged input to its host handler as one run, then
//! yields to the event loop.
//!
//! A tick that fails because the device was lost hands over to [`crate::runtime::recovery`].

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::backend::gpu::{read_back_with, GpuContext, GpuKernel};
use crate::backend::{cpu, Device, KernelExec};
use crate::error::Result;
use crate::lifecycle::KernelState;
use crate::platform;
use crate::queue::{ring_copy_pieces, ring_segments, PackedQueue, RingCounters, RingHeader};
use crate::runtime::recovery;
use crate::runtime::{Kernel, Shared, Table};

/// One kernel's share of a GPU tick.
struct Planned {
    id: String,
    instance: u64,
    /// Ring index of the first message dispatched (the GPU head before this tick).
    head: u32,
    /// Messages in the GPU ring this tick (earlier unanswered ones plus the new ones).
    pending: u32,
    /// Where this kernel's counters start in the readback buffer; its answers follow, then (for
    /// handlers that may drop) one kept flag per answer.
    offset: u64,
    output_stride: u64,
    drops: bool,
    /// For a connected kernel: the kernel its answers go to and the ring index they land at.
    /// Its answers are then copied ring to ring on the GPU, not read back.
    forward: Option<(String, u32)>,
    /// The compute pass it is dispatched in: 0, or one after the kernel that feeds it.
    level: usize,
    /// Where the state checkpoint lies in the readback buffer, and its size.
    state_at: Option<(u64, u64)>,
}

/// Runs until the runtime is dropped or disposed. A lost device does not stop it: it idles
/// until recovery (or recovers itself, with `auto_recover`).
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut auto_recovery_attempts = 0;
    loop {
        let listener = shared.wake_pump.listen();
        if shared.shutdown.load(Ordering::SeqCst) {
            return;
        }
        let device = shared.device();
        let ticked = match &*device {
            Device::Gpu(gpu) => gpu_tick(&shared, &device, gpu).await,
            Device::Cpu(_) => {
                let ran = cpu_tick(&shared);
                if ran {
                    // Host handlers run on the caller's thread in the browser: let the page breathe.
                    platform::yield_to_event_loop().await;
                }
                ran
            }
        };
        if ticked {
            continue;
        }
        if shared.options.auto_recover && shared.lock().lost.is_some() {
            if auto_recovery_attempts < recovery::AUTO_RECOVERY_DELAYS_MS.len() {
                let delay = recovery::AUTO_RECOVERY_DELAYS_MS[auto_recovery_attempts];
                auto_recovery_attempts += 1;
                if !pause_unless_shut_down(&shared, delay).await {
                    return;
                }
                // A failed attempt is recorded in the summary; the next one follows.
                let _ = recovery::recover_device(&shared).await;
                continue;
            }
        } else {
            auto_recovery_attempts = 0;
        }
        listener.await;
    }
}

/// Waits `ms` milliseconds, or less if the runtime shuts down meanwhile (then `false`), so
/// dropping a runtime never waits out a recovery back-off.
async fn pause_unless_shut_down(shared: &Shared, ms: f64) -> bool {
    let deadline = platform::now_ms() + ms;
    loop {
        let listener = shared.wake_pump.listen();
        if shared.shutdown.load(Ordering::SeqCst) {
            return false;
        }
        if !crate::runtime::wait(listener, Some(deadline)).await {
            return !shared.shutdown.load(Ordering::SeqCst);
        }
    }
}

/// How many staged messages `kernel` takes this tick, and how many it then has in flight;
/// `None` when it has nothing to do. Bounded by the backend's room (`slots`) and by
/// output-queue room, so every answer has a place. A terminating kernel drains regardless: no
/// new input can arrive, and its answers are kept past the bound rather than the drain waiting
/// on a reader.
fn share_of_tick(kernel: &Kernel, slots: u32) -> Option<(usize, u32)> {
    let draining = kernel.state == KernelState::Terminating;
    let in_flight = kernel.in_flight();
    let room = slots.min(kernel.max_batch).saturating_sub(in_flight);
    let out_room = if draining { usize::MAX } else { kernel.outbox.free().saturating_sub(in_flight as usize) };
    let take = kernel.inbox.len().min(room as usize).min(out_room);
    let pending = in_flight + take as u32;
    if pending == 0 || (!draining && pending as usize > kernel.outbox.free()) {
        return None;
    }
    Some((take, pending))
}

/// Ids of the kernels the pump runs now, in a stable order.
fn running_ids(table: &Table) -> Vec<String> {
    let mut ids: Vec<String> = table.kernels.iter().filter(|(_, k)| k.runs()).map(|(id, _)| id.clone()).collect();
    ids.sort();
    ids
}

/// How many forwarded messages kernel `id` can take this tick after its whole host inbox: 0
/// when it is not running on the GPU or cannot take its inbox. Bounded by its ring and by
/// where its own answers go (its output queue, or its downstream's room, recursively).
fn forward_room(table: &Table, id: &str) -> usize {
    let Some(kernel) = table.kernels.get(id).filter(|k| k.runs()) else { return 0 };
    let Some(KernelExec::Gpu(ring)) = &kernel.exec else { return 0 };
    let queued = kernel.in_flight() as usize + kernel.inbox.len();
    let ring_room = (ring.slots as usize).saturating_sub(queued);
    let answer_room = match &kernel.downstream {
        Some(down) => forward_room(table, down).saturating_sub(queued),
        None if kernel.state == KernelState::Terminating => usize::MAX,
        None => kernel.outbox.free().saturating_sub(queued),
    };
    ring_room.min(answer_room)
}

/// How many kernels feed `id`, one after another (0 for the first stage of a pipeline).
fn depth(table: &Table, id: &str) -> usize {
    let mut depth = 0;
    let mut up = table.kernels.get(id).and_then(|k| k.upstream.as_deref());
    while let Some(id) = up {
        depth += 1;
        up = table.kernels.get(id).and_then(|k| k.upstream.as_deref());
    }
    depth
}

/// Moves a tick's header and the first `take` messages of `inbox` into `ring`'s input buffer,
/// the messages from free-running index `at` on; the inbox holds them until they are answered.
/// When they start at slot 0 (always, unless earlier messages are still unanswered) header and
/// messages are contiguous: they are copied straight from the inbox into wgpu's staging memory
/// and go up in one write. Returns the bytes written.
fn write_input(
    queue: &wgpu::Queue,
    ring: &GpuKernel,
    header: RingHeader,
    at: u32,
    inbox: &mut PackedQueue,
    take: usize,
) -> u64 {
    let stride = ring.input_stride;
    let header = bytemuck::bytes_of(&header);
    let size = RingHeader::SIZE + take as u64 * stride;
    if at.is_multiple_of(ring.slots) {
        let staging = wgpu::BufferSize::new(size).and_then(|size| queue.write_buffer_with(&ring.input_ring, 0, size));
        if let Some(mut view) = staging {
            let (first, second) = inbox.front(take);
            let h = header.len();
            view.slice(..h).copy_from_slice(header);
            view.slice(h..h + first.len()).copy_from_slice(first);
            view.slice(h + first.len()..).copy_from_slice(second);
            drop(view);
            inbox.hold(take);
            return size;
        }
    }
    queue.write_buffer(&ring.input_ring, 0, header);
    let (first, second) = inbox.front(take);
    let staged = [first, second].concat();
    inbox.hold(take);
    let mut written = 0u64;
    for segment in ring_segments(at, take as u32, ring.slots) {
        let len = segment.len() as u64 * stride;
        let offset = RingHeader::SIZE + segment.start as u64 * stride;
        queue.write_buffer(&ring.input_ring, offset, &staged[written as usize..(written + len) as usize]);
        written += len;
    }
    size
}

/// One GPU tick on `device` (whose context is `gpu`). Returns whether it did anything: GPU
/// work, or handling the loss of the device.
async fn gpu_tick(shared: &Shared, device: &Arc<Device>, gpu: &GpuContext) -> bool {
    let generation = shared.lock().generation;
    match run_gpu_tick(shared, device, gpu, generation).await {
        Ok(ticked) => ticked,
        Err(error) => {
            recovery::fail_device(shared, error, generation);
            true
        }
    }
}

async fn run_gpu_tick(shared: &Shared, device: &Arc<Device>, gpu: &GpuContext, generation: u64) -> Result<bool> {
    let (readback, plan, used) = {
        let mut table = shared.lock();
        // Lost and not yet recovered, or recovered since `device` was fetched: nothing to do
        // here (kernels' resources belong to the device of the current generation).
        if table.lost.is_some() || table.generation != generation || !Arc::ptr_eq(device, &shared.device()) {
            return Ok(false);
        }
        gpu.check_fault()?;
        let now = platform::now_ms();
        let mut plan: Vec<Planned> = Vec::new();
        let mut used = 0u64;
        // Upstream stages first, so each kernel knows what its feeder forwards this tick.
        let mut ids = running_ids(&table);
        ids.sort_by_cached_key(|id| depth(&table, id));
        // Kernel id → (plan index of the kernel feeding it, messages it forwards).
        let mut incoming: std::collections::HashMap<String, (usize, u32)> = Default::default();
        for id in ids {
            let room_downstream = table.kernels[&id].downstream.as_deref().map(|down| forward_room(&table, down));
            let kernel = table.kernels.get_mut(&id).expect("listed above");
            let Some(KernelExec::Gpu(ring)) = &kernel.exec else { continue };
            let fed = incoming.remove(&id);
            let in_flight = kernel.in_flight();
            if in_flight == 0 {
                // Nothing unanswered: start this tick's messages at slot 0, right behind the
                // header, so they go up in one write and come back in one copy.
                kernel.gpu_head = 0;
                kernel.gpu_tail = 0;
            }
            let take = match (fed, room_downstream) {
                // Fed this tick: its whole inbox goes first (forward_room made sure it fits),
                // so the forwarded messages get the next sequence numbers.
                (Some(_), _) => kernel.inbox.len(),
                (None, Some(room)) => kernel
                    .inbox
                    .len()
                    .min(ring.slots.min(kernel.max_batch).saturating_sub(in_flight) as usize)
                    .min(room.saturating_sub(in_flight as usize)),
                (None, None) => match share_of_tick(kernel, ring.slots) {
                    Some((take, _)) => take,
                    None => continue,
                },
            };
            let forwarded_in = fed.map_or(0, |(_, n)| n);
            let pending = in_flight + take as u32 + forwarded_in;
            if pending == 0 {
                continue;
            }
            let header =
                RingHeader { head: kernel.gpu_head % ring.slots, count: pending, capacity: ring.slots, running: 1 };
            let written = write_input(&gpu.queue, ring, header, kernel.gpu_tail, &mut kernel.inbox, take);
            kernel.gpu_tail = kernel.gpu_tail.wrapping_add(take as u32);
            let mut level = 0;
            if let Some((feeder, count)) = fed {
                // The feeder's answers are copied in behind this tick's own messages.
                plan[feeder].forward = Some((id.clone(), kernel.gpu_tail));
                level = plan[feeder].level + 1;
                let first = kernel.ledger.accept(count as u64, now);
                kernel.forwarded_in_flight = Some((first, count as u64));
                kernel.gpu_tail = kernel.gpu_tail.wrapping_add(count);
            }
            kernel.counters.bytes_to_device += written;
            if take > 0 {
                // Senders waiting for queue room may continue.
                kernel.changed.notify(usize::MAX);
            }
            let forwards = room_downstream.is_some();
            if let Some(down) = kernel.downstream.clone().filter(|_| forwards) {
                incoming.insert(down, (plan.len(), pending));
            }
            let read_back_answers = !forwards as u64;
            let answers_end = used
                + RingCounters::SIZE
                + read_back_answers * pending as u64 * (ring.output_stride + 4 * ring.kept.is_some() as u64);
            let state_at = ring.state.as_ref().map(|state| (answers_end, state.size()));
            plan.push(Planned {
                id,
                instance: kernel.instance,
                head: kernel.gpu_head,
                pending,
                offset: used,
                output_stride: ring.output_stride,
                drops: ring.kept.is_some(),
                forward: None,
                level,
                state_at,
            });
            used = answers_end + state_at.map_or(0, |(_, size)| size);
        }
        if plan.is_empty() {
            return Ok(false);
        }

        let Table { kernels, readback, .. } = &mut *table;
        let readback = readback.reserve(gpu, used);
        let mut encoder =
            gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("ring tick") });
        // One compute pass per pipeline stage; between passes, each stage's answers are copied
        // into the next stage's input ring (copies cannot sit inside a compute pass).
        let levels = plan.iter().map(|p| p.level).max().unwrap_or(0);
        for level in 0..=levels {
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("ring tick"),
                    timestamp_writes: None,
                });
                for p in plan.iter().filter(|p| p.level == level) {
                    gpu_kernel(&kernels[&p.id]).encode_dispatch(&mut pass, p.pending);
                }
            }
            for p in plan.iter().filter(|p| p.level == level) {
                let Some((to, at)) = &p.forward else { continue };
                let (from, to) = (gpu_kernel(&kernels[&p.id]), gpu_kernel(&kernels[to]));
                let stride = p.output_stride;
                for (src, dst, len) in ring_copy_pieces(p.head, from.slots, *at, to.slots, p.pending) {
                    encoder.copy_buffer_to_buffer(
                        &from.output_ring,
                        RingCounters::SIZE + src as u64 * stride,
                        &to.input_ring,
                        RingHeader::SIZE + dst as u64 * stride,
                        len as u64 * stride,
                    );
                }
            }
        }
        for p in &plan {
            let ring = gpu_kernel(&kernels[&p.id]);
            let answers = if p.forward.is_some() { 0 } else { p.pending };
            let stride = p.output_stride;
            // Starting at slot 0, the answers lie right behind the counters: one copy for both.
            let contiguous = p.head % ring.slots == 0;
            let first_copy = RingCounters::SIZE + if contiguous { answers as u64 * stride } else { 0 };
            encoder.copy_buffer_to_buffer(&ring.output_ring, 0, &readback, p.offset, first_copy);
            // Otherwise slot runs of `buffer` (per-slot data from `base` on) go behind the counters.
            let mut copy_slots = |buffer: &wgpu::Buffer, base: u64, stride: u64, mut dst: u64| {
                for segment in ring_segments(p.head, answers, ring.slots) {
                    let len = segment.len() as u64 * stride;
                    encoder.copy_buffer_to_buffer(buffer, base + segment.start as u64 * stride, &readback, dst, len);
                    dst += len;
                }
            };
            let answers_at = p.offset + RingCounters::SIZE;
            if !contiguous {
                copy_slots(&ring.output_ring, RingCounters::SIZE, stride, answers_at);
            }
            if let Some(kept) = &ring.kept {
                copy_slots(kept, 0, 4, answers_at + answers as u64 * stride);
            }
            if let (Some(state), Some((at, size))) = (&ring.state, p.state_at) {
                encoder.copy_buffer_to_buffer(state, 0, &readback, at, size);
            }
        }
        gpu.queue.submit([encoder.finish()]);
        table.ticks += 1;
        (readback, plan, used)
    };

    read_back_with(gpu, &readback, used, |bytes| deliver_gpu_tick(shared, plan, bytes, generation)).await?;
    Ok(true)
}

/// Hands every planned kernel what its tick produced, straight from the mapped readback.
fn deliver_gpu_tick(shared: &Shared, plan: Vec<Planned>, bytes: &[u8], generation: u64) {
    let now = platform::now_ms();
    let wall_clock = platform::unix_time_ms();
    let mut table = shared.lock();
    if table.generation != generation {
        // The device was declared lost while this tick ran: its input was put back in line
        // and will be processed again from the last checkpoint, so its answers must not count.
        return;
    }
    for p in plan {
        // Skip a kernel that was terminated (its unanswered messages were counted then) or
        // removed and launched again while this tick was on the GPU.
        let Some(kernel) = table.kernels.get_mut(&p.id) else { continue };
        if kernel.instance != p.instance || kernel.exec.is_none() {
            continue;
        }
        let at = p.offset as usize;
        let gpu_counters: RingCounters = bytemuck::pod_read_unaligned(&bytes[at..at + RingCounters::SIZE as usize]);
        // The GPU counts what it processed; anything not answered stays in the ring for the
        // next tick (only if the dispatch did not run at all).
        let (processed_before, dropped_before, dispatches_before) = kernel.counted_before;
        let processed_total = processed_before + gpu_counters.processed();
        let processed = processed_total.saturating_sub(kernel.counters.messages_processed);
        let answered = processed.min(p.pending as u64) as u32;
        let Kernel { ledger, outbox, counters, .. } = kernel;
        let read = if p.forward.is_some() {
            ledger.forward(answered as u64, answered as u64, now, counters);
            0
        } else {
            let outputs = at + RingCounters::SIZE as usize;
            let len = answered as usize * p.output_stride as usize;
            let flags = outputs + p.pending as usize * p.output_stride as usize;
            let kept = p.drops.then(|| &bytes[flags..flags + 4 * answered as usize]);
            ledger.deliver(&bytes[outputs..outputs + len], p.output_stride as usize, kept, outbox, counters, now);
            len + kept.map_or(0, <[u8]>::len)
        };
        kernel.gpu_head = p.head.wrapping_add(answered);
        // Answered input is no longer needed for a replay. A dispatch answers all it was given
        // or (if it did not run) nothing.
        if answered == p.pending {
            let held = kernel.inbox.held();
            kernel.inbox.release(held);
            kernel.forwarded_in_flight = None;
        } else {
            kernel.inbox.release(answered as usize);
        }
        if let Some((at, size)) = p.state_at.filter(|_| answered > 0) {
            let state = &bytes[at as usize..(at + size) as usize];
            let checkpoint = kernel.checkpoint.get_or_insert_with(Vec::new);
            checkpoint.clear();
            checkpoint.extend_from_slice(state);
        }
        let c = &mut kernel.counters;
        c.messages_processed = processed_total;
        c.messages_dropped = dropped_before + gpu_counters.dropped();
        c.dispatches = dispatches_before + gpu_counters.dispatches as u64;
        c.bytes_from_device += RingCounters::SIZE + read as u64;
        if answered > 0 {
            c.last_message_time = Some(wall_clock);
        }
        kernel.changed.notify(usize::MAX);
    }
}

/// The GPU resources of a kernel planned into this tick (the table lock is held throughout).
fn gpu_kernel(kernel: &Kernel) -> &GpuKernel {
    match &kernel.exec {
        Some(KernelExec::Gpu(ring)) => ring,
        _ => unreachable!("only kernels with GPU resources are planned"),
    }
}

/// Room in `id`'s inbox for a connected kernel's answers (none once it stops taking messages).
fn down_room(table: &Table, id: &str) -> usize {
    table.kernels.get(id).filter(|k| k.state.accepts_messages()).map_or(0, |k| k.inbox.free())
}

/// One `cpu` tick: every running kernel's staged input goes to its host handler as one run.
/// The handlers run without the table lock (a JavaScript handler may call back into the
/// runtime); answers are delivered like a GPU readback, slot for slot. Returns whether any
/// handler ran.
fn cpu_tick(shared: &Shared) -> bool {
    let runs: Vec<(String, u64, Arc<cpu::CpuKernel>, Vec<u8>)> = {
        let mut table = shared.lock();
        let mut runs = Vec::new();
        for id in running_ids(&table) {
            // A connected kernel's answers go to its downstream's inbox: bounded by its room.
            let room_downstream = table.kernels[&id].downstream.as_deref().map(|down| down_room(&table, down));
            let kernel = table.kernels.get_mut(&id).expect("listed above");
            let Some(KernelExec::Cpu(host)) = &kernel.exec else { continue };
            let host = host.clone();
            let take = match room_downstream {
                Some(room) => kernel.inbox.len().min(cpu::MAX_RUN as usize).min(room),
                None => match share_of_tick(kernel, cpu::MAX_RUN) {
                    Some((take, _)) => take,
                    None => continue,
                },
            };
            if take == 0 {
                continue;
            }
            let inputs = kernel.inbox.pop_many(take);
            kernel.gpu_tail = kernel.gpu_tail.wrapping_add(take as u32);
            // Senders waiting for queue room may continue.
            kernel.changed.notify(usize::MAX);
            runs.push((id, kernel.instance, host, inputs));
        }
        table.ticks += !runs.is_empty() as u64;
        runs
    };
    if runs.is_empty() {
        return false;
    }
    let answered: Vec<_> =
        runs.into_iter().map(|(id, instance, host, inputs)| (id, instance, host.run(&inputs))).collect();

    let now = platform::now_ms();
    let wall_clock = platform::unix_time_ms();
    let mut table = shared.lock();
    for (id, instance, answers) in answered {
        // Skip a kernel terminated (past its timeout) or removed and relaunched meanwhile.
        let Some(kernel) = table.kernels.get_mut(&id) else { continue };
        if kernel.instance != instance || kernel.exec.is_none() {
            continue;
        }
        let count = answers.kept.len() as u64;
        let report = answers.report;
        match kernel.downstream.clone() {
            Some(down) => {
                let stride = kernel.outbox.stride();
                let forwarded: Vec<u8> = answers
                    .outputs
                    .chunks_exact(stride)
                    .zip(&answers.kept)
                    .filter(|(_, &kept)| kept != 0)
                    .flat_map(|(answer, _)| answer)
                    .copied()
                    .collect();
                let kept = (forwarded.len() / stride) as u64;
                kernel.ledger.forward(count, kept, now, &mut kernel.counters);
                if let Some(target) = table.kernels.get_mut(&down) {
                    // Room was checked when the run was planned; sends since may overshoot by one run.
                    target.inbox.push_overflowing(&forwarded);
                    target.ledger.accept(kept, now);
                    target.changed.notify(usize::MAX);
                }
            }
            None => {
                let kept = (report.dropped > 0).then(|| bytemuck::cast_slice::<u32, u8>(&answers.kept));
                let Kernel { ledger, outbox, counters, .. } = kernel;
                ledger.deliver(&answers.outputs, outbox.stride(), kept, outbox, counters, now);
            }
        }
        let Some(kernel) = table.kernels.get_mut(&id) else { continue };
        kernel.gpu_head = kernel.gpu_head.wrapping_add(count as u32);
        let c = &mut kernel.counters;
        c.messages_processed += count;
        c.messages_dropped += report.dropped;
        c.errors += report.failed;
        c.dispatches += 1;
        if report.first_failure.is_some() {
            c.last_error = report.first_failure;
        }
        if count > 0 {
            c.last_message_time = Some(wall_clock);
        }
        kernel.changed.notify(usize::MAX);
    }
    true
}

//! The pump: the one place kernels run. Ticks run back to back while there is work and not at
//! all while idle.
//!
//! On a GPU, each tick takes the staged input of every running kernel, writes it into the
//! kernels' GPU input rings (one `writeBuffer` per ring segment), encodes every kernel's bounded
//! dispatch in one compute pass, copies every output region and control block into one readback
//! buffer, submits once and maps once. On the `cpu` backend, each tick hands every running
//! kernel's staged input to its host handler as one run, then yields to the event loop.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::backend::gpu::{read_back, GpuContext};
use crate::backend::{cpu, Device, KernelExec};
use crate::error::Result;
use crate::lifecycle::KernelState;
use crate::platform;
use crate::queue::{ring_segments, ControlBlock};
use crate::runtime::{Kernel, Shared, Table};

/// One kernel's share of a tick.
struct Planned {
    id: String,
    instance: u64,
    /// Ring index of the first message dispatched (the GPU head before this tick).
    head: u32,
    /// Messages in the GPU ring this tick (earlier unanswered ones plus the new ones).
    pending: u32,
    /// Where this kernel's control block copy starts in the readback buffer; outputs follow,
    /// then (for handlers that may drop) one kept flag per output.
    offset: u64,
    output_stride: u64,
    drops: bool,
}

/// Runs until the runtime is dropped or disposed, or the device fails.
pub(crate) async fn run(shared: Arc<Shared>) {
    loop {
        let listener = shared.wake_pump.listen();
        if shared.shutdown.load(Ordering::SeqCst) {
            return;
        }
        let ticked = match &shared.device {
            Device::Gpu(gpu) => gpu_tick(&shared, gpu).await,
            Device::Cpu(_) => {
                let ran = cpu_tick(&shared);
                if ran {
                    // Host handlers run on the caller's thread in the browser: let the page breathe.
                    platform::yield_to_event_loop().await;
                }
                Ok(ran)
            }
        };
        match ticked {
            Ok(true) => continue,
            Ok(false) => listener.await,
            Err(error) => {
                let mut table = shared.lock();
                table.fatal.get_or_insert(error);
                for kernel in table.kernels.values_mut() {
                    // Waiting calls wake up and report the fatal error.
                    kernel.ledger.cancel_unanswered();
                    kernel.changed.notify(usize::MAX);
                }
                return;
            }
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
    let room = slots - in_flight;
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

/// One GPU tick. Returns whether any GPU work was done.
async fn gpu_tick(shared: &Shared, gpu: &GpuContext) -> Result<bool> {
    let (readback, plan, used) = {
        let mut table = shared.lock();
        gpu.check_fault()?;
        let mut plan = Vec::new();
        let mut used = 0u64;
        for id in running_ids(&table) {
            let kernel = table.kernels.get_mut(&id).expect("listed above");
            let Some(KernelExec::Gpu(ring)) = &kernel.exec else { continue };
            let Some((take, pending)) = share_of_tick(kernel, ring.slots) else { continue };
            let staged = kernel.inbox.pop_many(take);
            let stride = ring.input_stride;
            let mut written = 0u64;
            for segment in ring_segments(kernel.gpu_tail, take as u32, ring.slots) {
                let len = segment.len() as u64 * stride;
                gpu.queue.write_buffer(
                    &ring.input_ring,
                    segment.start as u64 * stride,
                    &staged[written as usize..(written + len) as usize],
                );
                written += len;
            }
            kernel.gpu_tail = kernel.gpu_tail.wrapping_add(take as u32);
            ring.write_control(&gpu.queue, ControlBlock::INPUT_TAIL_OFFSET, kernel.gpu_tail);
            kernel.counters.bytes_to_device += written + 4;
            if take > 0 {
                // Senders waiting for queue room may continue.
                kernel.changed.notify(usize::MAX);
            }
            plan.push(Planned {
                id,
                instance: kernel.instance,
                head: kernel.gpu_head,
                pending,
                offset: used,
                output_stride: ring.output_stride,
                drops: ring.kept.is_some(),
            });
            used += ControlBlock::SIZE + pending as u64 * (ring.output_stride + 4 * ring.kept.is_some() as u64);
        }
        if plan.is_empty() {
            return Ok(false);
        }

        let Table { kernels, readback, .. } = &mut *table;
        let readback = readback.reserve(&gpu.device, used);
        let mut encoder =
            gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("ring tick") });
        {
            let mut pass = encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("ring tick"), timestamp_writes: None });
            for p in &plan {
                gpu_kernel(&kernels[&p.id]).encode_dispatch(&mut pass, p.pending);
            }
        }
        for p in &plan {
            let ring = gpu_kernel(&kernels[&p.id]);
            encoder.copy_buffer_to_buffer(&ring.control, 0, &readback, p.offset, ControlBlock::SIZE);
            let mut dst = p.offset + ControlBlock::SIZE;
            let mut copy_slots = |buffer: &wgpu::Buffer, stride: u64| {
                for segment in ring_segments(p.head, p.pending, ring.slots) {
                    let len = segment.len() as u64 * stride;
                    encoder.copy_buffer_to_buffer(buffer, segment.start as u64 * stride, &readback, dst, len);
                    dst += len;
                }
            };
            copy_slots(&ring.output_ring, p.output_stride);
            if let Some(kept) = &ring.kept {
                copy_slots(kept, 4);
            }
        }
        gpu.queue.submit([encoder.finish()]);
        (readback, plan, used)
    };

    let bytes = read_back(gpu, &readback, used).await?;

    let now = platform::now_ms();
    let wall_clock = platform::unix_time_ms();
    let mut table = shared.lock();
    for p in plan {
        // Skip a kernel that was terminated (its unanswered messages were counted then) or
        // removed and launched again while this tick was on the GPU.
        let Some(kernel) = table.kernels.get_mut(&p.id) else { continue };
        if kernel.instance != p.instance || kernel.exec.is_none() {
            continue;
        }
        let at = p.offset as usize;
        let control: ControlBlock = bytemuck::pod_read_unaligned(&bytes[at..at + ControlBlock::SIZE as usize]);
        // The GPU says how far it got; anything not answered stays in the ring for next tick.
        let answered = control.input_head.wrapping_sub(p.head).min(p.pending);
        let outputs = at + ControlBlock::SIZE as usize;
        let len = answered as usize * p.output_stride as usize;
        let flags = outputs + p.pending as usize * p.output_stride as usize;
        let kept = p.drops.then(|| &bytes[flags..flags + 4 * answered as usize]);
        let Kernel { ledger, outbox, counters, .. } = kernel;
        ledger.deliver(&bytes[outputs..outputs + len], p.output_stride as usize, kept, outbox, counters, now);
        kernel.gpu_head = p.head.wrapping_add(answered);
        let c = &mut kernel.counters;
        c.messages_processed = control.processed();
        c.messages_dropped = control.dropped();
        c.dispatches = control.dispatches as u64;
        c.bytes_from_device += ControlBlock::SIZE + (len + kept.map_or(0, <[u8]>::len)) as u64;
        if answered > 0 {
            c.last_message_time = Some(wall_clock);
        }
        kernel.changed.notify(usize::MAX);
    }
    Ok(true)
}

/// The GPU resources of a kernel planned into this tick (the table lock is held throughout).
fn gpu_kernel(kernel: &Kernel) -> &crate::backend::gpu::GpuKernel {
    match &kernel.exec {
        Some(KernelExec::Gpu(ring)) => ring,
        _ => unreachable!("only kernels with GPU resources are planned"),
    }
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
            let kernel = table.kernels.get_mut(&id).expect("listed above");
            let Some(KernelExec::Cpu(host)) = &kernel.exec else { continue };
            let host = host.clone();
            let Some((take, _)) = share_of_tick(kernel, cpu::MAX_RUN) else { continue };
            if take == 0 {
                continue;
            }
            let inputs = kernel.inbox.pop_many(take);
            kernel.gpu_tail = kernel.gpu_tail.wrapping_add(take as u32);
            // Senders waiting for queue room may continue.
            kernel.changed.notify(usize::MAX);
            runs.push((id, kernel.instance, host, inputs));
        }
        runs
    };
    if runs.is_empty() {
        return false;
    }
    let answered: Vec<_> = runs.into_iter().map(|(id, instance, host, inputs)| (id, instance, host.run(&inputs))).collect();

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
        let kept = (report.dropped > 0).then(|| bytemuck::cast_slice::<u32, u8>(&answers.kept));
        let Kernel { ledger, outbox, counters, .. } = kernel;
        ledger.deliver(&answers.outputs, outbox.stride(), kept, outbox, counters, now);
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

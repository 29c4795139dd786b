//! Grouped dispatches: the kernels of one device launched from the same handler (many
//! instances of one actor "class") that each have a small batch in a tick run as one dispatch
//! of one module ([`codegen::generate_grouped`], `shaders/harness/grouped.wgsl`) instead of a
//! dispatch each. A software adapter charges tens of microseconds per dispatch, so sixteen
//! doublers with one message each cost sixteen times one; grouped, about one.
//!
//! The group packs its members' messages back to back into buffers of its own (one
//! `writeBuffer` for all of them, one for the table saying where each member's lie), the
//! dispatch's invocations stride over all of them (sixteen kernels with a message each take one
//! workgroup, as one kernel with sixteen messages would), and the table (what the dispatch processed, each member's dropped count), the answers and
//! the kept flags come back in one copy each. A member's own rings are not touched: its input stays queued on the host
//! until answered, as always, so device loss, migration and recovery see nothing new.
//!
//! Who groups: kernels on the GPU with no state, no workgroup memory and not launched
//! `unfused`, active and staying on their device, that take this tick's messages from the host
//! (no stage forwards into them, nothing unanswered in their ring) and forward none on the
//! device, with at most [`MAX_MEMBER_BATCH`] messages. Kernels are of one class when their
//! grouped module text (which names no kernel), block size and grid cap are equal. A class's
//! module is compiled off the hot path the first time two of its kernels could group (as fused
//! modules are); until it is ready, or if it failed, they run a dispatch each.

use std::sync::{Arc, Mutex, Weak};

use bytemuck::{Pod, Zeroable};

use super::kernel::{compile_drain, compile_failure, GpuKernel};
use super::readback::{next_size, SHRINK_AFTER};
use super::{GpuBuffer, GpuContext, Scopes};
use crate::backend::Dispatch;
use crate::codegen::{self, GeneratedShader, HandlerForm};
use crate::error::Result;
use crate::memory::MemoryPurpose;

/// Most kernels in one grouped dispatch.
pub(crate) const MAX_MEMBERS: usize = 256;

/// Most messages a kernel may have in a tick to join a group: small batches are what a dispatch
/// of their own wastes most on (a large one pays for its dispatch), and the group's buffers
/// stay small.
pub(crate) const MAX_MEMBER_BATCH: u32 = 1024;

/// One member's row of the group table, mirrored from `GroupEntry` in
/// `shaders/harness/grouped.wgsl`: where its messages lie, and how many of them it dropped.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub(crate) struct GroupEntry {
    pub first: u32,
    pub count: u32,
    pub dropped: u32,
    pub _reserved: u32,
}

/// The table's header, mirrored from `GroupTable` in `shaders/harness/grouped.wgsl`: the
/// dispatch sets `processed` to `total` when it runs.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub(crate) struct GroupHeader {
    pub members: u32,
    pub total: u32,
    pub processed: u32,
    pub _reserved: u32,
}

const ENTRY_SIZE: u64 = std::mem::size_of::<GroupEntry>() as u64;
const HEADER_SIZE: u64 = std::mem::size_of::<GroupHeader>() as u64;

/// Kernels that may share a grouped dispatch, and that module's pipeline and buffers on one
/// device. Held by each member kernel; the device keeps only a weak list to find it at launch.
pub(crate) struct GroupClass {
    source: GeneratedShader,
    workgroup_size: u32,
    max_workgroups: u32,
    state: Mutex<ClassState>,
}

enum ClassState {
    /// No two of its kernels have had work in one tick yet.
    Unused,
    Compiling,
    Ready(Box<GroupPipeline>),
    /// Never grouped (reported as a warning): its kernels run a dispatch each.
    Failed,
}

struct GroupPipeline {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    /// The group's buffers and their bind group, grown (by doubling) when a tick needs more,
    /// and shrunk as the readback is (see [`GroupPipeline::reserve`]).
    buffers: Option<GroupBuffers>,
    /// Ticks in a row whose input and answers took at most a quarter of the buffers.
    small_ticks: u32,
    /// The device's ticks in a row that ran no group of the class: past [`SHRINK_AFTER`] its
    /// buffers go (see [`release_idle`]).
    idle_ticks: u32,
}

struct GroupBuffers {
    input: GpuBuffer,
    output: GpuBuffer,
    kept: Option<GpuBuffer>,
    table: GpuBuffer,
    bind_group: wgpu::BindGroup,
}

/// The classes of one device's kernels.
pub(crate) type SharedClasses = Arc<Mutex<Vec<Weak<GroupClass>>>>;

impl GroupClass {
    /// The class of a kernel launched from `definition` with this block size and grid cap, or
    /// `None` when it never groups (state, workgroup memory, `unfused`, or a handler the grouped
    /// harness cannot take).
    pub(crate) fn for_kernel(
        ctx: &GpuContext,
        definition: &crate::kernel::KernelDefinition,
        shape: &crate::kernel::DispatchShape,
        workgroup_size: u32,
        max_workgroups: u32,
    ) -> Option<Arc<GroupClass>> {
        if shape.unfused || shape.workgroup_memory_bytes > 0 {
            return None;
        }
        let source = codegen::generate_grouped(definition).ok()?;
        let mut classes = ctx.grouped.lock().unwrap_or_else(|p| p.into_inner());
        classes.retain(|class| class.strong_count() > 0);
        let same = |class: &GroupClass| {
            class.workgroup_size == workgroup_size
                && class.max_workgroups == max_workgroups
                && class.source.source == source.source
        };
        if let Some(class) = classes.iter().filter_map(Weak::upgrade).find(|class| same(class)) {
            return Some(class);
        }
        // Arc for sharing, not threads: on the web nothing is Send.
        #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
        let class =
            Arc::new(GroupClass { source, workgroup_size, max_workgroups, state: Mutex::new(ClassState::Unused) });
        classes.push(Arc::downgrade(&class));
        Some(class)
    }
}

/// One grouped dispatch of a tick: its members (indices into the tick's dispatches, in table
/// order) and what the submit made for it.
pub(crate) struct GroupRun {
    pub members: Vec<usize>,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    output: wgpu::Buffer,
    kept: Option<wgpu::Buffer>,
    table: wgpu::Buffer,
    /// Per member: its first slot in the group's buffers.
    firsts: Vec<u32>,
    total: u32,
    output_stride: u64,
    workgroups: u32,
}

/// Where one member's results lie in the tick's readback buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MemberResults {
    pub header_at: u64,
    pub entry_at: u64,
    pub answers_at: u64,
    pub stride: u64,
    pub kept_at: Option<u64>,
}

impl MemberResults {
    /// The member's outcome from the mapped readback `bytes`, out of `pending` messages.
    pub fn outcome<'a>(&self, bytes: &'a [u8], pending: u32) -> crate::backend::Outcome<'a> {
        let header: GroupHeader = bytemuck::pod_read_unaligned(slice(bytes, self.header_at, HEADER_SIZE));
        let entry: GroupEntry = bytemuck::pod_read_unaligned(slice(bytes, self.entry_at, ENTRY_SIZE));
        // The dispatch answers all it was given or (if it did not run) nothing.
        let answered = if header.processed == header.total { pending } else { 0 };
        let answers = slice(bytes, self.answers_at, answered as u64 * self.stride);
        let kept = self.kept_at.map(|at| slice(bytes, at, 4 * answered as u64));
        crate::backend::Outcome {
            answered,
            answers,
            kept,
            processed: answered as u64,
            dropped: entry.dropped as u64,
            dispatches: 1,
            // What was copied back for it: its entry, and its answer slots and kept flags
            // whether answered or not (the group's header is no member's).
            bytes_from_device: ENTRY_SIZE + pending as u64 * (self.stride + if self.kept_at.is_some() { 4 } else { 0 }),
            grouped: true,
            ..Default::default()
        }
    }
}

fn slice(bytes: &[u8], at: u64, len: u64) -> &[u8] {
    &bytes[at as usize..(at + len) as usize]
}

impl GroupRun {
    /// Workgroups of the group's one dispatch.
    pub fn workgroups(&self) -> u32 {
        self.workgroups
    }

    /// The group's one dispatch.
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.set_pipeline(&self.pipeline);
        pass.dispatch_workgroups(self.workgroups, 1, 1);
    }

    /// Bytes the group's results take in the readback: the table, the answers, the kept flags.
    pub fn readback_size(&self) -> u64 {
        HEADER_SIZE
            + ENTRY_SIZE * self.members.len() as u64
            + self.total as u64 * self.output_stride
            + if self.kept.is_some() { 4 * self.total as u64 } else { 0 }
    }

    /// Copies the table, answers and kept flags to `readback` from `at` on (one copy each) and
    /// says where each member's lie.
    pub fn copy_back(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        readback: &wgpu::Buffer,
        at: u64,
    ) -> Vec<MemberResults> {
        let table_len = HEADER_SIZE + ENTRY_SIZE * self.members.len() as u64;
        let answers_at = at + table_len;
        let answers_len = self.total as u64 * self.output_stride;
        let kept_at = answers_at + answers_len;
        encoder.copy_buffer_to_buffer(&self.table, 0, readback, at, table_len);
        if answers_len > 0 {
            encoder.copy_buffer_to_buffer(&self.output, 0, readback, answers_at, answers_len);
        }
        if let Some(kept) = &self.kept {
            encoder.copy_buffer_to_buffer(kept, 0, readback, kept_at, 4 * self.total as u64);
        }
        self.firsts
            .iter()
            .enumerate()
            .map(|(m, &first)| MemberResults {
                header_at: at,
                entry_at: at + HEADER_SIZE + ENTRY_SIZE * m as u64,
                answers_at: answers_at + first as u64 * self.output_stride,
                stride: self.output_stride,
                kept_at: self.kept.as_ref().map(|_| kept_at + 4 * first as u64),
            })
            .collect()
    }
}

/// Whether dispatch `i` may join a group this tick (see the module's doc).
fn eligible(d: &Dispatch<'_>, ring: &GpuKernel, fed: bool) -> bool {
    ring.group.is_some()
        && d.fusable
        && !fed
        && d.forward.is_none()
        && d.level == 0
        && d.pending > 0
        && d.pending <= MAX_MEMBER_BATCH
        && d.input_at == d.head
        && d.input.len() as u64 == d.pending as u64 * ring.input_stride
}

/// This tick's grouped dispatches, among the dispatches `free` leaves to run alone; each
/// group's messages and table are written to its buffers here. A class seen with two eligible
/// kernels for the first time starts compiling and runs a dispatch each this tick. A class
/// groups once a tick, up to [`MAX_MEMBERS`] kernels: its one set of buffers is written before
/// the tick's commands run, so a second group would overwrite the first's messages and table.
/// Its kernels beyond that run alone.
pub(crate) fn plan(
    ctx: &GpuContext,
    dispatches: &[Dispatch<'_>],
    rings: &[&GpuKernel],
    free: &[bool],
) -> Vec<GroupRun> {
    let mut fed = vec![false; dispatches.len()];
    for d in dispatches {
        if let Some((to, _)) = d.forward {
            fed[to] = true;
        }
    }
    let mut taken = vec![false; dispatches.len()];
    let mut runs = Vec::new();
    for start in 0..dispatches.len() {
        if taken[start] || !free[start] || !eligible(&dispatches[start], rings[start], fed[start]) {
            continue;
        }
        let class = rings[start].group.as_ref().expect("eligible kernels have a class");
        let mut members = vec![start];
        for i in start + 1..dispatches.len() {
            let same_class = rings[i].group.as_ref().is_some_and(|other| Arc::ptr_eq(class, other));
            if same_class && !taken[i] && free[i] && eligible(&dispatches[i], rings[i], fed[i]) {
                // Past a full group, taken so that none of them starts another: they run alone.
                if members.len() < MAX_MEMBERS {
                    members.push(i);
                } else {
                    taken[i] = true;
                }
            }
        }
        if members.len() < 2 {
            continue;
        }
        for &i in &members {
            taken[i] = true;
        }
        if let Some(run) = ready_run(ctx, class, dispatches, rings, members) {
            runs.push(run);
        }
    }
    release_idle(ctx);
    runs
}

/// Counts a tick without a group for each of the device's classes that ran none (those that
/// did were reset by `reserve`), and lets go of the buffers of a class idle for
/// [`SHRINK_AFTER`] ticks: a burst's buffers are not held for as long as a member lives. Runs
/// while no tick is on the device, so nothing uses them.
fn release_idle(ctx: &GpuContext) {
    let classes = ctx.grouped.lock().unwrap_or_else(|p| p.into_inner());
    for class in classes.iter().filter_map(Weak::upgrade) {
        let mut state = class.state.lock().unwrap_or_else(|p| p.into_inner());
        let ClassState::Ready(pipeline) = &mut *state else { continue };
        if pipeline.buffers.is_none() {
            continue;
        }
        pipeline.idle_ticks += 1;
        if pipeline.idle_ticks > SHRINK_AFTER {
            (pipeline.buffers, pipeline.idle_ticks, pipeline.small_ticks) = (None, 0, 0);
        }
    }
}

/// The group run of `members` if the class's module is ready, with its input and table written;
/// otherwise starts compiling the module, once.
fn ready_run(
    ctx: &GpuContext,
    class: &Arc<GroupClass>,
    dispatches: &[Dispatch<'_>],
    rings: &[&GpuKernel],
    members: Vec<usize>,
) -> Option<GroupRun> {
    let mut state = class.state.lock().unwrap_or_else(|p| p.into_inner());
    let pipeline = match &mut *state {
        ClassState::Ready(pipeline) => pipeline,
        ClassState::Compiling | ClassState::Failed => return None,
        ClassState::Unused => {
            *state = ClassState::Compiling;
            drop(state);
            compile_in_background(ctx, class.clone());
            return None;
        }
    };
    let first = rings[members[0]];
    let mut firsts = Vec::with_capacity(members.len());
    let mut total = 0u32;
    for &i in &members {
        firsts.push(total);
        total += dispatches[i].pending;
    }
    let drops = class.source.form == HandlerForm::AnswerOrDrop;
    let input_bytes = total as u64 * first.input_stride;
    let output_bytes = total as u64 * first.output_stride;
    if input_bytes.max(output_bytes) > ctx.max_binding_size {
        return None;
    }
    let compute = pipeline.pipeline.clone();
    let buffers = pipeline.reserve(ctx, input_bytes, output_bytes, drops.then_some(4 * total as u64), members.len());

    let header = GroupHeader { members: members.len() as u32, total, processed: 0, _reserved: 0 };
    let entries = members.iter().zip(&firsts).map(|(&i, &first)| GroupEntry {
        first,
        count: dispatches[i].pending,
        dropped: 0,
        _reserved: 0,
    });
    let mut table: Vec<u8> = bytemuck::bytes_of(&header).to_vec();
    for entry in entries {
        table.extend_from_slice(bytemuck::bytes_of(&entry));
    }
    ctx.queue.write_buffer(&buffers.table, 0, &table);
    if let Some(mut view) =
        wgpu::BufferSize::new(input_bytes).and_then(|size| ctx.queue.write_buffer_with(&buffers.input, 0, size))
    {
        let mut at = 0;
        for &i in &members {
            let input = dispatches[i].input;
            view.slice(at..at + input.len()).copy_from_slice(input);
            at += input.len();
        }
    }
    Some(GroupRun {
        firsts,
        total,
        output_stride: first.output_stride,
        workgroups: first.workgroups(total),
        members,
        pipeline: compute,
        bind_group: buffers.bind_group.clone(),
        output: (*buffers.output).clone(),
        kept: buffers.kept.as_deref().cloned(),
        table: (*buffers.table).clone(),
    })
}

impl GroupPipeline {
    /// Buffers holding at least these sizes (and `members` table rows), grown by doubling, and
    /// made again to what ticks take once [`SHRINK_AFTER`] ticks in a row took a quarter of them
    /// or less: one burst does not hold its buffers (counted in the memory dashboard's rings,
    /// and in its pressure) for as long as a member lives.
    fn reserve(
        &mut self,
        ctx: &GpuContext,
        input: u64,
        output: u64,
        kept: Option<u64>,
        members: usize,
    ) -> &GroupBuffers {
        let table = HEADER_SIZE + ENTRY_SIZE * members as u64;
        let fits = |have: &GpuBuffer, need: u64| have.size() >= need.max(16);
        let enough = self.buffers.as_ref().is_some_and(|b| {
            fits(&b.input, input)
                && fits(&b.output, output)
                && fits(&b.table, table)
                && match (&b.kept, kept) {
                    (Some(have), Some(need)) => fits(have, need),
                    (None, None) => true,
                    _ => false,
                }
        });
        // This tick runs a group: `release_idle` counts it as one more.
        self.idle_ticks = 0;
        let small = |have: &GpuBuffer, need: u64| need * 4 <= have.size();
        let took_little = self.buffers.as_ref().is_some_and(|b| small(&b.input, input) && small(&b.output, output));
        self.small_ticks = if took_little { self.small_ticks + 1 } else { 0 };
        let shrink = self.small_ticks >= SHRINK_AFTER;
        if !enough || shrink {
            self.small_ticks = 0;
            // Doubled, but never past what a binding may be: a buffer over it would fail the
            // bind group, and the device with it, though the tick needs less.
            let most = ctx.max_binding_size.min(ctx.max_buffer_size);
            let grow = |old: Option<&GpuBuffer>, need: u64| {
                let need = need.max(16).next_multiple_of(4);
                match (old, shrink) {
                    (Some(old), false) => need.max((old.size() * 2).min(most)),
                    (Some(old), true) => next_size(old.size(), need, most),
                    (None, _) => need,
                }
            };
            let old = self.buffers.take();
            let buffer = |purpose, label, size, usage| {
                ctx.create_buffer(
                    purpose,
                    &wgpu::BufferDescriptor { label: Some(label), size, usage, mapped_at_creation: false },
                )
            };
            let storage = wgpu::BufferUsages::STORAGE;
            let input = buffer(
                MemoryPurpose::InputRing,
                "group input",
                grow(old.as_ref().map(|b| &b.input), input),
                storage | wgpu::BufferUsages::COPY_DST,
            );
            let output = buffer(
                MemoryPurpose::OutputRing,
                "group answers",
                grow(old.as_ref().map(|b| &b.output), output),
                storage | wgpu::BufferUsages::COPY_SRC,
            );
            let kept = kept.map(|need| {
                buffer(
                    MemoryPurpose::KeptFlags,
                    "group kept flags",
                    grow(old.as_ref().and_then(|b| b.kept.as_ref()), need),
                    storage | wgpu::BufferUsages::COPY_SRC,
                )
            });
            // The table holds the members' counters, as an output ring's header does.
            let table = buffer(
                MemoryPurpose::OutputRing,
                "group table",
                grow(old.as_ref().map(|b| &b.table), table),
                storage | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            );
            let mut entries = vec![(0, &*input), (1, &*output), (3, &*table)];
            entries.extend(kept.as_deref().map(|kept| (2, kept)));
            let entries: Vec<wgpu::BindGroupEntry> = entries
                .into_iter()
                .map(|(binding, buffer)| wgpu::BindGroupEntry { binding, resource: buffer.as_entire_binding() })
                .collect();
            let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("grouped dispatch"),
                layout: &self.layout,
                entries: &entries,
            });
            self.buffers = Some(GroupBuffers { input, output, kept, table, bind_group });
        }
        self.buffers.as_ref().expect("just reserved")
    }
}

/// Compiles the class's module off the tick and files the result in the class.
fn compile_in_background(ctx: &GpuContext, class: Arc<GroupClass>) {
    let device = ctx.device.clone();
    let scopes = ctx.scopes();
    crate::platform::spawn_detached("ringkernel-group", move || async move {
        let state = match compile(&device, scopes, &class).await {
            Ok(pipeline) => ClassState::Ready(Box::new(pipeline)),
            Err(error) => {
                // Each member compiled on its own, so this is the grouping's fault, not the user's.
                let why = compile_failure(error, false);
                crate::platform::warn(&format!("a grouped dispatch did not compile; its kernels run alone: {why}"));
                ClassState::Failed
            }
        };
        *class.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
    });
}

async fn compile(device: &wgpu::Device, scopes: Scopes, class: &GroupClass) -> Result<GroupPipeline> {
    let shader = &class.source;
    #[cfg(not(target_arch = "wasm32"))]
    codegen::check("grouped dispatch", shader)?;
    let (pipeline, layout) = compile_drain(device, scopes, "grouped dispatch", &shader.source, class.workgroup_size)
        .await
        .map_err(|(message, at)| shader.compile_error("grouped dispatch", &message, at))?;
    Ok(GroupPipeline { pipeline, layout, buffers: None, small_ticks: 0, idle_ticks: 0 })
}

/// Bytes written for a member besides its messages: its table row.
pub(crate) const MEMBER_OVERHEAD: u64 = ENTRY_SIZE;

#[cfg(test)]
mod tests {
    use super::super::ring::wgsl_struct_fields;
    use super::*;

    /// The WGSL mirrors must list the same fields in the same order.
    #[test]
    fn group_entry_and_table_match_wgsl() {
        let harness = include_str!("../../../shaders/harness/grouped.wgsl");
        assert_eq!(wgsl_struct_fields(harness, "GroupEntry"), ["first", "count", "dropped", "_reserved"]);
        assert_eq!(ENTRY_SIZE, 16);
        assert_eq!(
            wgsl_struct_fields(harness, "GroupTable"),
            ["members", "total", "processed", "_reserved", "entries"]
        );
        assert_eq!(HEADER_SIZE, 16);
    }
}

//! The tick's GPU step. Per kernel: one `writeBuffer` (the ring header and the tick's messages
//! together) and one bounded dispatch; one compute pass per pipeline stage, with connected
//! kernels' answers copied ring to ring between passes; every kernel's counters, answers and
//! state copied into one readback buffer; one submit and one `mapAsync` for all of them. A chain
//! of connected kernels that fuses ([`super::fused`]) is one dispatch in the pass of its first
//! stage, with no copies between its stages; only its last stage's counters come back, and
//! count for every stage. Kernels of one handler with small batches may run
//! as one grouped dispatch ([`super::grouped`]), their results copied back once for the group.
//! On the web a round trip's tick submits the commands encoded for it while the device ran the
//! tick before ([`super::ahead`]), and the map is asked for before the next tick's are encoded.

use std::sync::Arc;

use super::ahead;
use super::fused::{self, FusedRun};
use super::grouped::{self, GroupRun, MemberResults};
use super::kernel::{GpuKernel, Tally};
use super::readback::{Mapping, ReadbackLayout};
use super::ring::{ring_copy_pieces, ring_segments, RingCounters, RingHeader};
use super::GpuContext;
use crate::backend::{Dispatch, Execute, KernelExec, Outcome, ReadbackBudget, ReadbackCost, Routing};
use crate::error::Result;
use crate::platform;

/// The label of each tick's encoder and pass (see [`platform::hot_label`]).
const TICK_LABEL: Option<&str> = platform::hot_label("ring tick");

/// A tick on the GPU: its readback's map in flight and layout, and per dispatch what delivery
/// needs.
pub(crate) struct Submitted {
    mapping: Mapping,
    layout: ReadbackLayout,
    dispatches: Vec<Submission>,
}

struct Submission {
    pending: u32,
    tally: Arc<Tally>,
    written: u64,
    fused: bool,
    /// For a fused stage before the last: the last stage's submission, whose counters count
    /// for it (every message runs every stage; its own counters are neither kept nor copied).
    counted_by: Option<usize>,
    /// Where its results lie when it ran in a grouped dispatch.
    grouped: Option<MemberResults>,
    /// Workgroups of the dispatch it ran in (its own, its fused run's or its group's).
    workgroups: u32,
    /// Whether its commands were encoded ahead (see [`ahead`]).
    encoded_ahead: bool,
}

/// What a dispatch does in a tick with fused runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Its own dispatch (and its copies to the next stage).
    Alone,
    /// The first stage of fused run `n`: the run's one dispatch goes in its pass.
    Leads(usize),
    /// A later stage of a fused run: no dispatch, no copies into it; the last one's answers
    /// (and its header, which says where they go) are in its own ring as usual.
    Follows { last: bool },
    /// A member of grouped dispatch `n`: its messages went to the group's buffers, its results
    /// come back with the group's.
    Grouped(usize),
}

/// What a dispatch of `exec` copies back, as `ReadbackLayout::push` lays it out.
fn readback_cost(exec: &KernelExec) -> ReadbackCost {
    match exec {
        KernelExec::Gpu(ring) => ReadbackCost {
            fixed: RingCounters::SIZE,
            state: ring.state.as_ref().map_or(0, |state| state.size()),
            per_answer: ring.output_stride + if ring.kept.is_some() { 4 } else { 0 },
        },
        KernelExec::Cpu(_) => ReadbackCost::NONE,
    }
}

/// Room kept below the device's largest buffer for what a tick copies back besides its kernels'
/// dispatches: a grouped dispatch's header and member table (256 members at most).
const READBACK_SLACK: u64 = 64 << 10;

impl Execute for GpuContext {
    type Submitted = Submitted;
    const ROUTING: Routing = Routing::OnDevice;

    fn capacity(exec: &KernelExec) -> Option<u32> {
        match exec {
            KernelExec::Gpu(ring) => Some(ring.slots),
            KernelExec::Cpu(_) => None,
        }
    }

    fn readback_budget(&self) -> ReadbackBudget {
        ReadbackBudget { most: self.max_buffer_size.saturating_sub(READBACK_SLACK), cost: readback_cost }
    }

    fn check(&self) -> Result<()> {
        self.check_fault()
    }

    fn submit(&self, dispatches: &[Dispatch<'_>]) -> Result<Submitted> {
        self.own_work(|| self.submit_commands(dispatches))
    }

    async fn complete<R>(&self, submitted: Submitted, deliver: impl FnOnce(&[Outcome<'_>]) -> R) -> Result<R> {
        self.complete_commands(submitted, deliver).await
    }
}

impl GpuContext {
    /// [`Execute::submit`]: writes the tick's input, encodes its commands and submits them.
    fn submit_commands(&self, dispatches: &[Dispatch<'_>]) -> Result<Submitted> {
        let rings: Vec<&GpuKernel> = dispatches.iter().map(|d| gpu_kernel(d.exec)).collect();
        let runs = fused::runs(self, dispatches, &rings);
        let mut roles = vec![Role::Alone; dispatches.len()];
        for (n, run) in runs.iter().enumerate() {
            roles[run.stages[0]] = Role::Leads(n);
            for (i, &stage) in run.stages.iter().enumerate().skip(1) {
                roles[stage] = Role::Follows { last: i == run.stages.len() - 1 };
            }
        }
        let alone: Vec<bool> = roles.iter().map(|role| *role == Role::Alone).collect();
        let groups = grouped::plan(self, dispatches, &rings, &alone);
        for (n, group) in groups.iter().enumerate() {
            for &member in &group.members {
                roles[member] = Role::Grouped(n);
            }
        }
        // A round trip's tick: its commands may have been encoded ahead, and the next one's are.
        let round_trip = if platform::ENCODE_AHEAD { ahead::round_trip(dispatches, &rings, &runs) } else { None };
        let mut layout = ReadbackLayout::default();
        let mut submissions = Vec::with_capacity(dispatches.len());
        for ((d, ring), role) in dispatches.iter().zip(&rings).zip(&roles) {
            // Forwarded answers stay on the device: only the counters come back. A group member's
            // come back with its group's (its region stays empty). A round trip's tick copies the
            // same slots back whatever its count, as the commands encoded ahead do.
            let grouped = matches!(role, Role::Grouped(_));
            let answers = match &round_trip {
                _ if d.forward.is_some() || grouped => 0,
                Some(tick) => tick.answer_slots,
                None => d.pending,
            };
            let state = ring.state.as_ref().filter(|_| d.checkpoint).map_or(0, |s| s.size());
            layout.push(answers, ring.output_stride, ring.kept.is_some() && !grouped, state);
            // A middle stage of a fused run reads nothing of its own ring; a group member's
            // messages were written with its group's.
            let written = if *role == (Role::Follows { last: false }) {
                0
            } else if grouped {
                d.input.len() as u64 + grouped::MEMBER_OVERHEAD
            } else {
                let header =
                    RingHeader { head: d.head % ring.slots, count: d.pending, capacity: ring.slots, running: 1 };
                write_input(&self.queue, ring, header, d.input_at, d.input)
            };
            let fused = matches!(role, Role::Leads(_) | Role::Follows { .. });
            let workgroups = match role {
                Role::Grouped(n) => groups[*n].workgroups(),
                // A fused run's one dispatch is shaped by its first stage (set below).
                _ => ring.workgroups(d.pending),
            };
            submissions.push(Submission {
                pending: d.pending,
                tally: ring.tally.clone(),
                written,
                fused,
                counted_by: None,
                grouped: None,
                workgroups,
                encoded_ahead: false,
            });
        }
        for run in &runs {
            let (&last, earlier) = run.stages.split_last().expect("a fused run has stages");
            for &stage in earlier {
                submissions[stage].counted_by = Some(last);
            }
            let workgroups = submissions[run.stages[0]].workgroups;
            for &stage in &run.stages {
                submissions[stage].workgroups = workgroups;
            }
        }
        let group_blocks: Vec<u64> = groups.iter().map(|group| layout.push_block(group.readback_size())).collect();
        let readback = self.readback.lock().unwrap_or_else(|p| p.into_inner()).reserve(self, layout.size());
        let tick =
            TickCommands { dispatches, rings: &rings, roles: &roles, runs: &runs, groups: &groups, layout: &layout };
        let commands = match round_trip.as_ref().and_then(|tick| ahead::take(tick, &readback, layout.size())) {
            Some(commands) => {
                debug_assert!(groups.is_empty(), "a round trip's tick has no group, whose results it would lose");
                submissions.iter_mut().for_each(|s| s.encoded_ahead = true);
                commands
            }
            None => {
                let (commands, grouped) = tick.encode(&self.device, &submissions, &group_blocks, &readback);
                for (member, results) in grouped {
                    submissions[member].grouped = Some(results);
                }
                commands
            }
        };
        self.queue.submit([commands]);
        let mapping = Mapping::start(readback.clone(), layout.size());
        if let Some(round_trip) = &round_trip {
            // The same commands serve the next such tick: encoded now, while the device works.
            let (next, _) = tick.encode(&self.device, &submissions, &group_blocks, &readback);
            ahead::keep(round_trip, next, readback, layout.size());
        }
        Ok(Submitted { mapping, layout, dispatches: submissions })
    }

    /// [`Execute::complete`].
    async fn complete_commands<R>(&self, submitted: Submitted, deliver: impl FnOnce(&[Outcome<'_>]) -> R) -> Result<R> {
        let Submitted { mapping, layout, dispatches } = submitted;
        mapping
            .read(self, |bytes| {
                let regions = layout.regions();
                // What each dispatch's own counters added; the earlier stages of a fused run take
                // their last stage's (read first, whatever the order).
                let counted: Vec<(u64, u64)> = regions
                    .iter()
                    .zip(&dispatches)
                    .map(|(region, d)| match (&d.grouped, d.counted_by) {
                        (None, None) => d.tally.advance(&region.counters(bytes)),
                        _ => (0, 0),
                    })
                    .collect();
                let outcomes: Vec<Outcome<'_>> = regions
                    .iter()
                    .zip(&dispatches)
                    .enumerate()
                    .map(|(i, (region, d))| {
                        if let Some(results) = &d.grouped {
                            return Outcome {
                                bytes_to_device: d.written,
                                workgroups: d.workgroups,
                                ..results.outcome(bytes, d.pending)
                            };
                        }
                        let (processed, dropped) = match d.counted_by {
                            Some(last) => (counted[last].0, 0),
                            None => counted[i],
                        };
                        // A dispatch answers all it was given or (if it did not run) nothing.
                        let answered = processed.min(d.pending as u64) as u32;
                        let answers = region.answers(bytes, answered);
                        let kept = region.kept(bytes, answered);
                        Outcome {
                            answered,
                            answers,
                            kept,
                            processed,
                            dropped,
                            // Its dispatch (or, fused, its share of one) ran: the submission that
                            // held it has completed.
                            dispatches: 1,
                            checkpoint: region.state(bytes),
                            bytes_to_device: d.written,
                            // What was copied back: a fused run's earlier stages copy nothing,
                            // a round trip's tick all its answer slots, a kernel with state its
                            // checkpoint.
                            bytes_from_device: if d.counted_by.is_some() { 0 } else { region.size() },
                            fused: d.fused,
                            workgroups: d.workgroups,
                            encoded_ahead: d.encoded_ahead,
                            ..Default::default()
                        }
                    })
                    .collect();
                deliver(&outcomes)
            })
            .await
    }
}

/// What a tick's commands are encoded from, as the tick planned them.
struct TickCommands<'a, 'd> {
    dispatches: &'a [Dispatch<'d>],
    rings: &'a [&'a GpuKernel],
    roles: &'a [Role],
    runs: &'a [FusedRun],
    groups: &'a [GroupRun],
    layout: &'a ReadbackLayout,
}

impl TickCommands<'_, '_> {
    /// The tick's passes and its copies into `readback` (each group's block at `group_blocks`),
    /// and where each group member's results lie.
    fn encode(
        &self,
        device: &wgpu::Device,
        submissions: &[Submission],
        group_blocks: &[u64],
        readback: &wgpu::Buffer,
    ) -> (wgpu::CommandBuffer, Vec<(usize, MemberResults)>) {
        let TickCommands { dispatches, rings, roles, runs, groups, layout } = *self;
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: TICK_LABEL });
        let workgroups: Vec<u32> = submissions.iter().map(|s| s.workgroups).collect();
        encode_stages(&mut encoder, dispatches, rings, roles, &workgroups, runs, groups);
        let mut grouped = Vec::new();
        for (group, &at) in groups.iter().zip(group_blocks) {
            grouped.extend(group.members.iter().copied().zip(group.copy_back(&mut encoder, readback, at)));
        }
        for ((((d, ring), region), role), submission) in
            dispatches.iter().zip(rings).zip(layout.regions()).zip(roles).zip(submissions)
        {
            if matches!(role, Role::Grouped(_)) || submission.counted_by.is_some() {
                continue;
            }
            // Starting at slot 0, the answers lie right behind the counters: one copy for both.
            let answers = region.answer_slots();
            let contiguous = d.head % ring.slots == 0;
            let first_copy = RingCounters::SIZE + if contiguous { answers as u64 * ring.output_stride } else { 0 };
            encoder.copy_buffer_to_buffer(&ring.output_ring, 0, readback, region.counters_at(), first_copy);
            // Otherwise slot runs of `buffer` (per-slot data from `base` on) go behind the counters.
            let mut copy_slots = |buffer: &wgpu::Buffer, base: u64, stride: u64, mut dst: u64| {
                for segment in ring_segments(d.head, answers, ring.slots) {
                    let len = segment.len() as u64 * stride;
                    encoder.copy_buffer_to_buffer(buffer, base + segment.start as u64 * stride, readback, dst, len);
                    dst += len;
                }
            };
            if !contiguous {
                copy_slots(&ring.output_ring, RingCounters::SIZE, ring.output_stride, region.answers_at());
            }
            if let Some(kept) = &ring.kept {
                copy_slots(kept, 0, 4, region.kept_at());
            }
            if let Some(state) = ring.state.as_ref().filter(|_| region.has_state()) {
                encoder.copy_buffer_to_buffer(state, 0, readback, region.state_at(), state.size());
            }
        }
        (encoder.finish(), grouped)
    }
}

/// One compute pass per pipeline stage; between passes, each stage's answers are copied into the
/// next stage's input ring (copies cannot sit inside a compute pass). A fused run is one
/// dispatch in its first stage's pass, and nothing is copied between its stages. Each
/// dispatch goes over `workgroups[i]` workgroups, the grid its submission reports.
fn encode_stages(
    encoder: &mut wgpu::CommandEncoder,
    dispatches: &[Dispatch<'_>],
    rings: &[&GpuKernel],
    roles: &[Role],
    workgroups: &[u32],
    runs: &[FusedRun],
    groups: &[GroupRun],
) {
    let levels = dispatches.iter().map(|d| d.level).max().unwrap_or(0);
    for level in 0..=levels {
        let stage = || {
            dispatches
                .iter()
                .zip(rings)
                .zip(roles)
                .enumerate()
                .filter(move |(_, ((d, _), _))| d.level == level)
                .map(|(i, ((d, r), role))| (i, d, r, *role))
        };
        if stage().any(|(.., role)| !matches!(role, Role::Follows { .. })) {
            let mut pass =
                encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: TICK_LABEL, timestamp_writes: None });
            if level == 0 {
                // Group members are all first stages.
                for group in groups {
                    group.encode(&mut pass);
                }
            }
            for (i, _, ring, role) in stage() {
                match role {
                    Role::Alone => ring.encode_dispatch(&mut pass, workgroups[i]),
                    Role::Leads(run) => runs[run].encode(&mut pass, workgroups[i]),
                    Role::Follows { .. } | Role::Grouped(_) => {}
                }
            }
        }
        for (_, d, from, role) in stage() {
            let Some((to, at)) = d.forward else { continue };
            // Inside a fused run the next stage never reads its ring.
            if matches!(role, Role::Leads(_) | Role::Follows { last: false }) {
                continue;
            }
            let to = rings[to];
            let stride = from.output_stride;
            for (src, dst, len) in ring_copy_pieces(d.head, from.slots, at, to.slots, d.pending) {
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
}

/// Writes a tick's header and `input` (messages from free-running ring index `at` on) into the
/// kernel's input ring. When they start at slot 0 (always, unless earlier messages are still
/// unanswered) header and messages are contiguous and go up in one write, copied straight from
/// the input queue into wgpu's staging memory (where [`platform::stage_write`] says so).
/// Returns the bytes written.
fn write_input(queue: &wgpu::Queue, ring: &GpuKernel, header: RingHeader, at: u32, input: &[u8]) -> u64 {
    let header = bytemuck::bytes_of(&header);
    let size = RingHeader::SIZE + input.len() as u64;
    if at.is_multiple_of(ring.slots) && platform::stage_write(input.len()) {
        let staging = wgpu::BufferSize::new(size).and_then(|size| queue.write_buffer_with(&ring.input_ring, 0, size));
        if let Some(mut view) = staging {
            view.slice(..header.len()).copy_from_slice(header);
            view.slice(header.len()..).copy_from_slice(input);
            return size;
        }
    }
    queue.write_buffer(&ring.input_ring, 0, header);
    let mut written = 0;
    for segment in ring_segments(at, (input.len() as u64 / ring.input_stride) as u32, ring.slots) {
        let len = (segment.len() as u64 * ring.input_stride) as usize;
        let offset = RingHeader::SIZE + segment.start as u64 * ring.input_stride;
        queue.write_buffer(&ring.input_ring, offset, &input[written..written + len]);
        written += len;
    }
    size
}

/// The GPU resources of a dispatch's kernel (the tick plans only this backend's kernels).
fn gpu_kernel(exec: &KernelExec) -> &GpuKernel {
    match exec {
        KernelExec::Gpu(ring) => ring,
        KernelExec::Cpu(_) => unreachable!("only kernels with GPU resources are dispatched on a GPU"),
    }
}

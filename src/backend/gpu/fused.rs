//! Fused pipelines on the GPU: a chain of connected kernels that a tick plans back to back (each
//! stage fed only by the one before, every stage active and able to fuse) runs as one dispatch
//! of one module ([`codegen::generate_fused`]) instead of one dispatch per stage with ring-to-ring
//! copies between passes. Everything else about the tick stays: each stage is delivered as if it
//! had run alone (the earlier stages with the last stage's count, as every message runs every
//! stage), and the last stage's answers land in its own ring.
//!
//! Modules are compiled off the hot path (natively on a helper thread, on the web as a task of
//! the event loop) and cached per device by the chain's definitions and block size; until one is
//! ready, or if it failed, the chain runs ring to ring. wgpu 30 has no asynchronous pipeline
//! creation; on the web `createComputePipeline` returns at once and the task waits for the
//! module's compilation info and the error scope, which settle once the browser has compiled it,
//! so the tick never waits on a compiler.

use std::sync::{Arc, Mutex};

use super::kernel::{compile_drain, compile_failure, GpuKernel};
use super::{GpuContext, NextCommands};
use crate::backend::Dispatch;
use crate::codegen::{self, FusedShader, MAX_FUSED_STAGES};
use crate::error::Result;
use crate::kernel::KernelDefinition;

/// A chain's definitions (by identity) and the first stage's block size.
type PipelineKey = (Vec<usize>, u32);

/// Most modules a device keeps: chains come and go with launches.
const CACHE_ENTRIES: usize = 64;

/// The fused modules of one device, each with its bind groups: a few entries, searched in order
/// (no hash map in the wasm for them).
#[derive(Default)]
pub(crate) struct FusedCache {
    pipelines: Vec<Entry>,
    /// Counts lookups and new entries: each entry keeps the count of its last one, so a full cache drops the
    /// modules used longest ago, not those of chains still running.
    clock: u64,
}

/// A chain's module, and when it was last looked up (see `clock`).
struct Entry {
    key: PipelineKey,
    slot: Slot,
    used: u64,
}

impl FusedCache {
    /// The entry of `key`, marked used now.
    fn slot(&mut self, key: &PipelineKey) -> Option<&mut Slot> {
        self.clock += 1;
        let now = self.clock;
        let entry = self.pipelines.iter_mut().find(|e| e.key == *key)?;
        entry.used = now;
        Some(&mut entry.slot)
    }

    /// Files `slot` as `key`'s entry; a new entry counts as used now.
    fn file(&mut self, key: PipelineKey, slot: Slot) {
        match self.pipelines.iter_mut().find(|e| e.key == key) {
            Some(entry) => entry.slot = slot,
            None => {
                self.clock += 1;
                self.pipelines.push(Entry { key, slot, used: self.clock });
            }
        }
    }

    /// Room for one more entry: drops those used longest ago, but never one still compiling
    /// (its task files its result there).
    fn make_room(&mut self) {
        while self.pipelines.len() >= CACHE_ENTRIES {
            let finished = self.pipelines.iter().enumerate().filter(|(_, e)| !matches!(e.slot, Slot::Compiling));
            let Some((oldest, _)) = finished.min_by_key(|(_, e)| e.used) else { return };
            self.pipelines.swap_remove(oldest);
        }
    }
}

enum Slot {
    Compiling,
    Ready(Ready),
    /// Never fused (reported as a warning when it failed): the chain runs ring to ring.
    Failed,
}

/// A compiled module and the bind groups made from its layout, per chain of launched kernels
/// (their serials). A layout derived from a pipeline binds that pipeline only, so the groups
/// live and go with it: a module compiled again gets groups of its own. Each chain's next
/// tick's commands are kept beside its group, and go with it when a stage is dropped.
struct Ready {
    pipeline: Arc<FusedPipeline>,
    groups: Vec<(Vec<u64>, wgpu::BindGroup, Arc<NextCommands>)>,
    /// Held so that their addresses, the key, are never reused meanwhile.
    _definitions: Vec<Arc<KernelDefinition>>,
}

pub(crate) struct FusedPipeline {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

pub(crate) type SharedCache = Arc<Mutex<FusedCache>>;

/// Drops the bind groups that bind a kernel's rings, and the commands kept beside them (when
/// the kernel is dropped).
pub(crate) fn forget(cache: &SharedCache, serial: u64) {
    for entry in &mut cache.lock().unwrap_or_else(|p| p.into_inner()).pipelines {
        if let Slot::Ready(ready) = &mut entry.slot {
            ready.groups.retain(|(chain, ..)| !chain.contains(&serial));
        }
    }
}

/// One fused run of a tick: the dispatches (indices, in chain order) it stands for.
pub(crate) struct FusedRun {
    pub stages: Vec<usize>,
    pipeline: Arc<FusedPipeline>,
    bind_group: wgpu::BindGroup,
    next: Arc<NextCommands>,
}

impl FusedRun {
    /// Where the chain keeps its next tick's commands (see `ahead`).
    pub fn next(&self) -> &NextCommands {
        &self.next
    }

    /// One bounded drain of the chain's messages over `workgroups` workgroups (the first
    /// stage's grid for them).
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>, workgroups: u32) {
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.set_pipeline(&self.pipeline.pipeline);
        pass.dispatch_workgroups(workgroups, 1, 1);
    }
}

/// The runs of this tick's dispatches that fuse, each with a ready module; chains whose module
/// is not compiled yet start compiling and run ring to ring this tick.
pub(crate) fn runs(ctx: &GpuContext, dispatches: &[Dispatch<'_>], rings: &[&GpuKernel]) -> Vec<FusedRun> {
    let fusable = |i: usize| dispatches[i].fusable && rings[i].fusable;
    let next = |at: usize| {
        let (to, landing) = dispatches[at].forward?;
        let (from, next) = (&dispatches[at], &dispatches[to]);
        // Fed only by the stage before, in the same slots: nothing of its own queued or in flight.
        (next.pending == from.pending && next.input.is_empty() && next.head == landing).then_some(to)
    };
    windows(dispatches.len(), fusable, next, |stages| ready_run(ctx, dispatches, rings, stages))
}

/// Cuts the chains of a tick's `count` dispatches (in plan order: each stage after its feeder)
/// into windows of 2 to [`MAX_FUSED_STAGES`] fusable stages, each stage `next` of the one
/// before, and hands each window to `run` (its run, if its module is ready). A window covers
/// its stages whether or not its module is ready: the windows tile each chain the same way
/// every tick, so a chain of n stages compiles n / 6 modules (rounded up), not one from every
/// stage on, and each window fuses as soon as its own module is ready (one whose module failed
/// runs ring to ring).
fn windows<R>(
    count: usize,
    fusable: impl Fn(usize) -> bool,
    next: impl Fn(usize) -> Option<usize>,
    mut run: impl FnMut(Vec<usize>) -> Option<R>,
) -> Vec<R> {
    let mut covered = vec![false; count];
    let mut runs = Vec::new();
    for start in 0..count {
        if covered[start] || !fusable(start) {
            continue;
        }
        let mut stages = vec![start];
        while stages.len() < MAX_FUSED_STAGES {
            let Some(to) = next(stages[stages.len() - 1]).filter(|&to| !covered[to] && fusable(to)) else { break };
            stages.push(to);
        }
        if stages.len() < 2 {
            continue;
        }
        for &i in &stages {
            covered[i] = true;
        }
        runs.extend(run(stages));
    }
    runs
}

/// The run of `stages` if its module is ready (with its bind group, made once per chain of
/// launched kernels); otherwise starts compiling it, once.
fn ready_run(
    ctx: &GpuContext,
    dispatches: &[Dispatch<'_>],
    rings: &[&GpuKernel],
    stages: Vec<usize>,
) -> Option<FusedRun> {
    let first = rings[stages[0]];
    let key: PipelineKey =
        (stages.iter().map(|&i| Arc::as_ptr(dispatches[i].definition) as usize).collect(), first.workgroup_size);
    let mut cache = ctx.fused.lock().unwrap_or_else(|p| p.into_inner());
    let ready = match cache.slot(&key) {
        Some(Slot::Ready(ready)) => ready,
        Some(Slot::Compiling | Slot::Failed) => return None,
        None => {
            cache.make_room();
            let definitions: Vec<Arc<KernelDefinition>> =
                stages.iter().map(|&i| dispatches[i].definition.clone()).collect();
            cache.file(key.clone(), Slot::Compiling);
            drop(cache);
            compile_in_background(ctx, key, definitions);
            return None;
        }
    };
    let serials: Vec<u64> = stages.iter().map(|&i| rings[i].serial).collect();
    let (bind_group, next) = match ready.groups.iter().find(|(chain, ..)| *chain == serials) {
        Some((_, group, next)) => (group.clone(), next.clone()),
        None => {
            let chain: Vec<&GpuKernel> = stages.iter().map(|&i| rings[i]).collect();
            let group = bind_group(&ctx.device, &ready.pipeline.layout, &chain);
            let next = Arc::<NextCommands>::default();
            ready.groups.push((serials, group.clone(), next.clone()));
            (group, next)
        }
    };
    Some(FusedRun { stages, pipeline: ready.pipeline.clone(), bind_group, next })
}

/// Bindings as in shaders/harness/fused.wgsl: the first stage's input ring, the last stage's
/// output and input rings.
fn bind_group(device: &wgpu::Device, layout: &wgpu::BindGroupLayout, rings: &[&GpuKernel]) -> wgpu::BindGroup {
    let last = rings[rings.len() - 1];
    let buffers: [&wgpu::Buffer; 3] = [&rings[0].input_ring, &last.output_ring, &last.input_ring];
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .iter()
        .enumerate()
        .map(|(binding, buffer)| wgpu::BindGroupEntry { binding: binding as u32, resource: buffer.as_entire_binding() })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some("fused pipeline"), layout, entries: &entries })
}

/// Generates and compiles the chain's module off the tick and files the result in the cache.
fn compile_in_background(ctx: &GpuContext, key: PipelineKey, definitions: Vec<Arc<KernelDefinition>>) {
    let cache = ctx.fused.clone();
    let device = ctx.device.clone();
    let scopes = ctx.scopes();
    let workgroup_size = key.1;
    let stages: Vec<&KernelDefinition> = definitions.iter().map(|d| &**d).collect();
    let shader = codegen::generate_fused(&stages, workgroup_size);
    crate::platform::spawn_detached("ringkernel-fuse", move || async move {
        let compiled = match shader {
            Ok(shader) => compile(&device, scopes, &shader, workgroup_size).await,
            Err(error) => Err(error),
        };
        let slot = match compiled {
            Ok(pipeline) => {
                Slot::Ready(Ready { pipeline: Arc::new(pipeline), groups: Vec::new(), _definitions: definitions })
            }
            Err(error) => {
                // Each stage compiled on its own, so this is the fusion's fault, not the user's.
                let why = compile_failure(error, true);
                crate::platform::warn(&format!("a fused pipeline did not compile; its stages run unfused: {why}"));
                Slot::Failed
            }
        };
        cache.lock().unwrap_or_else(|p| p.into_inner()).file(key, slot);
    });
}

async fn compile(
    device: &wgpu::Device,
    scopes: super::Scopes,
    shader: &FusedShader,
    workgroup_size: u32,
) -> Result<FusedPipeline> {
    #[cfg(not(target_arch = "wasm32"))]
    codegen::check_fused(shader)?;
    let (pipeline, layout) = compile_drain(device, scopes, "fused pipeline", &shader.source, workgroup_size)
        .await
        .map_err(|(message, at)| shader.compile_error(&message, at))?;
    Ok(FusedPipeline { pipeline, layout })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain of 16 fusable stages whose modules are not ready: three windows, aligned (one
    /// module each to compile), not one from every stage on.
    #[test]
    fn windows_tile_a_chain_whether_or_not_their_modules_are_ready() {
        let mut compiling = Vec::new();
        let runs: Vec<()> = windows(
            16,
            |_| true,
            |at| (at + 1 < 16).then_some(at + 1),
            |stages| {
                compiling.push((stages[0], stages.len()));
                None
            },
        );
        assert!(runs.is_empty());
        assert_eq!(compiling, [(0, 6), (6, 6), (12, 4)]);
        // Ready ones run, in the same windows; a stage that cannot fuse ends a window.
        let runs = windows(16, |i| i != 8, |at| (at + 1 < 16).then_some(at + 1), Some);
        let runs: Vec<(usize, usize)> = runs.iter().map(|s| (s[0], s.len())).collect();
        assert_eq!(runs, [(0, 6), (6, 2), (9, 6)], "stage 15 alone is no window");
    }

    fn key(n: usize) -> PipelineKey {
        (vec![n], 64)
    }

    /// A full cache drops the entry used longest ago, never one still compiling: a chain that
    /// keeps running keeps its module while others come and go.
    #[test]
    fn a_full_cache_drops_what_was_used_longest_ago() {
        let mut cache = FusedCache::default();
        cache.file(key(0), Slot::Compiling);
        for n in 1..CACHE_ENTRIES {
            cache.file(key(n), Slot::Failed);
        }
        for n in [2, 1] {
            assert!(cache.slot(&key(n)).is_some());
        }
        for n in CACHE_ENTRIES..CACHE_ENTRIES + 3 {
            cache.make_room();
            cache.file(key(n), Slot::Failed);
        }
        assert_eq!(cache.pipelines.len(), CACHE_ENTRIES);
        let kept = |n: usize| cache.pipelines.iter().any(|e| e.key == key(n));
        assert!(kept(0), "still compiling");
        assert!(kept(1) && kept(2), "used last");
        assert!(!kept(3) && !kept(4) && !kept(5), "used longest ago");
        assert!(kept(6) && kept(CACHE_ENTRIES + 2));
    }
}

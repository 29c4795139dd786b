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

/// The fused modules of one device, each with its bind groups: a few entries, searched in order
/// (no hash map in the wasm for them).
#[derive(Default)]
pub(crate) struct FusedCache {
    pipelines: Vec<(PipelineKey, Slot)>,
}

impl FusedCache {
    fn slot(&mut self, key: &PipelineKey) -> Option<&mut Slot> {
        self.pipelines.iter_mut().find(|(k, _)| k == key).map(|(_, slot)| slot)
    }

    fn file(&mut self, key: PipelineKey, slot: Slot) {
        match self.pipelines.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = slot,
            None => self.pipelines.push((key, slot)),
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
    for (_, slot) in &mut cache.lock().unwrap_or_else(|p| p.into_inner()).pipelines {
        if let Slot::Ready(ready) = slot {
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
    let mut covered = vec![false; dispatches.len()];
    let mut runs = Vec::new();
    for start in 0..dispatches.len() {
        if covered[start] || !fusable(start) {
            continue;
        }
        let mut stages = vec![start];
        let mut at = start;
        while stages.len() < MAX_FUSED_STAGES {
            let Some((to, landing)) = dispatches[at].forward else { break };
            let (from, next) = (&dispatches[at], &dispatches[to]);
            // Fed only by the stage before, in the same slots: nothing of its own queued or in flight.
            if covered[to]
                || !fusable(to)
                || next.pending != from.pending
                || !next.input.is_empty()
                || next.head != landing
            {
                break;
            }
            stages.push(to);
            at = to;
        }
        if stages.len() < 2 {
            continue;
        }
        if let Some(run) = ready_run(ctx, dispatches, rings, stages) {
            for &i in &run.stages {
                covered[i] = true;
            }
            runs.push(run);
        }
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
            // Bounded: chains come and go with launches; forget finished entries now and then.
            if cache.pipelines.len() >= 64 {
                cache.pipelines.retain(|(_, slot)| matches!(slot, Slot::Compiling));
            }
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

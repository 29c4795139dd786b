//! Kernels' drain pipelines kept per device by their generated WGSL and workgroup size, so a
//! kernel launched again (after `remove`, under another id, or relaunched by recovery on the
//! same device) reuses its pipeline instead of compiling it again. Compiling takes milliseconds
//! on a software adapter, and Dawn keeps memory for every pipeline it ever made: about 80 KB
//! each on SwiftShader, measured over 1,000 launch and remove cycles, with the same WGSL or not.

use std::sync::Mutex;

/// How many pipelines a device keeps: the most recently used. A page with more kernel shapes
/// than this compiles the older ones again.
const KEPT: usize = 32;

/// One compiled pipeline, by what it was compiled from.
struct Kept {
    source: String,
    workgroup_size: u32,
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

/// A device's kept pipelines, the most recently used last.
#[derive(Default)]
pub(crate) struct Pipelines(Mutex<Vec<Kept>>);

impl Pipelines {
    /// The pipeline and bind group layout compiled from `source` for `workgroup_size`, if kept.
    pub fn find(&self, source: &str, workgroup_size: u32) -> Option<(wgpu::ComputePipeline, wgpu::BindGroupLayout)> {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let at = kept.iter().position(|k| k.workgroup_size == workgroup_size && k.source == source)?;
        let found = kept.remove(at);
        let pair = (found.pipeline.clone(), found.layout.clone());
        kept.push(found);
        Some(pair)
    }

    /// Keeps a pipeline that compiled and bound without error, dropping the least recently
    /// used beyond [`KEPT`].
    pub fn keep(
        &self,
        source: &str,
        workgroup_size: u32,
        pipeline: &wgpu::ComputePipeline,
        layout: &wgpu::BindGroupLayout,
    ) {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() == KEPT {
            kept.remove(0);
        }
        kept.push(Kept {
            source: source.to_owned(),
            workgroup_size,
            pipeline: pipeline.clone(),
            layout: layout.clone(),
        });
    }

    /// Drops every kept pipeline (the device is gone).
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

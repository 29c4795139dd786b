// One earlier stage of a fused pipeline (fused.wgsl): its output ring, bound for its counters
// only, and their update. src/codegen/fused.rs replaces {{STAGE}} and {{BINDING}}.
@group(0) @binding({{BINDING}}) var<storage, read_write> stage{{STAGE}}_counters: RingCounters;

// Called once per dispatch, by invocation 0 (see fused.wgsl).
fn count_stage{{STAGE}}(processed: u32) {
    atomicAdd(&stage{{STAGE}}_counters.processed, processed);
}

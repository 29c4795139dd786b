//! The `cpu` backend: each kernel's messages are answered on the host by its
//! [`HostHandler`](crate::kernel::HostHandler) instead of a GPU dispatch. Everything around the
//! handler is shared with the GPU path: host queues, the lifecycle, correlation of `call`s,
//! telemetry. It exists so a page without WebGPU (or a machine without a driver) degrades to
//! slower, never to broken.

use std::sync::{Arc, Mutex};

use super::{AdapterSummary, Dispatch, Execute, KernelExec, Outcome, Routing};
use crate::error::{Error, Result};
use crate::kernel::host::{HostHandler, HostRun, RunReport};
use crate::kernel::KernelDefinition;
use crate::platform;

/// Most messages one tick hands a kernel's host handler: bounds how long a tick holds the page's
/// event loop (the tick loop yields to it between ticks) while still amortizing per-run costs.
pub(crate) const MAX_RUN: u32 = 4096;

/// The `cpu` backend's stand-in for a device: nothing to open, only a description.
pub(crate) struct CpuContext {
    pub adapter: AdapterSummary,
}

impl CpuContext {
    pub fn new() -> Self {
        CpuContext {
            adapter: AdapterSummary {
                backend: "cpu".into(),
                name: "host CPU (kernels run their host handlers; no GPU)".into(),
                driver: format!("ringkernel-web {}", env!("CARGO_PKG_VERSION")),
                device_type: "Cpu".into(),
                features: Vec::new(),
            },
        }
    }
}

/// One launched kernel on the host: its handler and its state words.
pub(crate) struct CpuKernel {
    handler: Arc<dyn HostHandler>,
    /// The handler's `state` array (empty without one); shared with the runtime so it can be
    /// read after terminate.
    pub state: Arc<Mutex<Vec<u32>>>,
    input_stride: usize,
    output_stride: usize,
}

/// The answers of one run, slot for slot with its inputs.
pub(crate) struct HostAnswers {
    pub outputs: Vec<u8>,
    /// 1 = kept, 0 = dropped, per answer (the GPU's kept-flag format).
    pub kept: Vec<u32>,
    pub report: RunReport,
}

impl CpuKernel {
    /// Checks that the definition has a host handler that fits its layouts.
    pub fn create(definition: &KernelDefinition) -> Result<Self> {
        let compile_error =
            |message: String| Error::KernelCompile { id: definition.id.clone(), message, line: None, column: None };
        let Some(host) = &definition.host else {
            return Err(compile_error(
                "it has no host handler, which the cpu backend runs (WGSL needs a GPU backend); give its definition \
                 a handler (`handler` in JavaScript, `with_host_handler` in Rust)"
                    .into(),
            ));
        };
        host.0.check(&definition.input, &definition.output).map_err(compile_error)?;
        // WGSL beside the host handler is what a GPU backend would run: checked here too, so a
        // kernel tested on the cpu backend does not fail on a GPU for a mistake seen here.
        // Natively naga checks all of it; on the web, with no WGSL compiler but a device's,
        // the handler's signature.
        if definition.has_wgsl() {
            #[cfg(not(target_arch = "wasm32"))]
            crate::codegen::check(&definition.id, &crate::codegen::generate(definition)?)?;
            #[cfg(target_arch = "wasm32")]
            crate::codegen::handler::inspect(definition)?;
        }
        let words = definition.state.map_or(0, |spec| spec.len as usize);
        Ok(CpuKernel {
            handler: host.0.clone(),
            state: Arc::new(Mutex::new(vec![0; words])),
            input_stride: definition.input.size(),
            output_stride: definition.output.size(),
        })
    }

    pub fn has_state(&self) -> bool {
        !self.state.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    /// Runs the handler over `inputs` (packed back to back), in order.
    pub fn run(&self, inputs: &[u8]) -> HostAnswers {
        let count = inputs.len() / self.input_stride;
        let mut outputs = vec![0; count * self.output_stride];
        let mut kept = vec![0; count];
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let report = self.handler.handle_run(HostRun {
            inputs,
            input_stride: self.input_stride,
            outputs: &mut outputs,
            output_stride: self.output_stride,
            kept: &mut kept,
            state: &mut state,
        });
        HostAnswers { outputs, kept, report }
    }
}

/// One kernel's run in a tick: its handler and a copy of its input, so the handlers run without
/// the table lock (a JavaScript handler may call back into the runtime).
pub(crate) struct HostRunInput {
    kernel: Arc<CpuKernel>,
    inputs: Vec<u8>,
}

impl Execute for CpuContext {
    type Submitted = Vec<HostRunInput>;
    const ROUTING: Routing = Routing::ViaHost;

    fn capacity(exec: &KernelExec) -> Option<u32> {
        match exec {
            KernelExec::Cpu(_) => Some(MAX_RUN),
            KernelExec::Gpu(_) => None,
        }
    }

    fn readback_budget(&self) -> super::ReadbackBudget {
        super::ReadbackBudget::NONE
    }

    fn check(&self) -> Result<()> {
        Ok(())
    }

    fn submit(&self, dispatches: &[Dispatch<'_>]) -> Result<Vec<HostRunInput>> {
        Ok(dispatches
            .iter()
            .map(|d| match d.exec {
                KernelExec::Cpu(kernel) => HostRunInput { kernel: kernel.clone(), inputs: d.input.to_vec() },
                KernelExec::Gpu(_) => unreachable!("only kernels with host handlers are dispatched on the cpu"),
            })
            .collect())
    }

    async fn complete<R>(&self, runs: Vec<HostRunInput>, deliver: impl FnOnce(&[Outcome<'_>]) -> R) -> Result<R> {
        let answers: Vec<HostAnswers> = runs.iter().map(|run| run.kernel.run(&run.inputs)).collect();
        let outcomes: Vec<Outcome<'_>> = answers
            .iter()
            .map(|a| Outcome {
                answered: a.kept.len() as u32,
                answers: &a.outputs,
                kept: (a.report.dropped > 0).then(|| bytemuck::cast_slice::<u32, u8>(&a.kept)),
                processed: a.kept.len() as u64,
                dropped: a.report.dropped,
                dispatches: 1,
                failed: a.report.failed,
                failures: &a.report.failures,
                ..Default::default()
            })
            .collect();
        let delivered = deliver(&outcomes);
        // Host handlers run on the caller's thread in the browser: let the page breathe.
        platform::yield_to_event_loop().await;
        Ok(delivered)
    }
}

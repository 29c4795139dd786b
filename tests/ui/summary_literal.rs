// Reports and summaries are #[non_exhaustive]: they grow a field when the runtime learns to
// count something new, so a downstream crate reads them but does not build them by literal
// (a host handler's own `handle_run` starts from `RunReport::default()`).
use ringkernel_web::kernel::host::RunReport;
use ringkernel_web::codegen::FusedShader;

fn main() {
    let _ = RunReport { dropped: 0, failed: 0, failures: Vec::new() };
    let _ = FusedShader { source: String::new(), stages: Vec::new() };
}

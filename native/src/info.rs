//! `info`: every adapter wgpu can see for the chosen backend, the limits that bound a ring
//! kernel (ring size, grid size, bindings), and the adapter the runtime itself picks, since
//! wgpu's enumeration order and the runtime's preference need not agree.

use ringkernel_web::{AdapterSummary, Runtime, RuntimeOptions};
use serde::Serialize;

use crate::backend::{adapter_line, enumerate_adapters, runs_on_host, Backend};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InfoReport {
    backend: &'static str,
    adapters: Vec<AdapterEntry>,
    runtime: RuntimePick,
    /// Said for `--backend cpu`, where no adapter is involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AdapterEntry {
    name: String,
    backend: String,
    device_type: String,
    driver: String,
    driver_info: String,
    limits: RingLimits,
}

/// The limits a ring kernel runs into: ring bytes per binding and per buffer, the grid a drain
/// may use, how many rings one kernel may bind, and shared memory for handlers.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RingLimits {
    max_storage_buffer_binding_size: u64,
    max_buffer_size: u64,
    max_compute_invocations_per_workgroup: u32,
    max_compute_workgroups_per_dimension: u32,
    max_storage_buffers_per_shader_stage: u32,
    max_compute_workgroup_storage_size: u32,
}

/// The adapter `Runtime::new` settles on, or why it could not open one.
/// Serialized as `{"adapter": {...}}` or `{"unavailable": "reason"}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum RuntimePick {
    Adapter(AdapterSummary),
    Unavailable(String),
}

const HOST_HANDLERS_NOTE: &str =
    "no GPU adapter is used: kernels run on their host handlers (Rust) with the same lifecycle, queues and telemetry";

pub async fn run(backend: Backend, json: bool) -> anyhow::Result<()> {
    let adapters = enumerate_adapters(backend.wgpu_backends()).await.iter().map(describe).collect();
    let runtime = match Runtime::new(RuntimeOptions::default().with_backend(backend.choice())).await {
        Ok(runtime) => RuntimePick::Adapter(runtime.adapter().clone()),
        Err(e) => RuntimePick::Unavailable(format!("{e} ({:?})", e.kind())),
    };
    let report = InfoReport {
        backend: backend.name(),
        adapters,
        runtime,
        note: (backend == Backend::Cpu).then_some(HOST_HANDLERS_NOTE),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    // Scripts that ask "can the runtime run here?" read the exit status.
    match report.runtime {
        RuntimePick::Adapter(_) => Ok(()),
        RuntimePick::Unavailable(_) => Err(anyhow::anyhow!("the runtime cannot open --backend {}", backend.name())),
    }
}

fn describe(adapter: &wgpu::Adapter) -> AdapterEntry {
    let info = adapter.get_info();
    let limits = adapter.limits();
    AdapterEntry {
        name: info.name,
        backend: format!("{:?}", info.backend).to_lowercase(),
        device_type: format!("{:?}", info.device_type),
        driver: info.driver,
        driver_info: info.driver_info,
        limits: RingLimits {
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
            max_buffer_size: limits.max_buffer_size,
            max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
            max_storage_buffers_per_shader_stage: limits.max_storage_buffers_per_shader_stage,
            max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
        },
    }
}

fn print_text(report: &InfoReport) {
    if let Some(note) = report.note {
        println!("backend cpu: {note}");
    } else if report.adapters.is_empty() {
        println!("no adapters found for --backend {}", report.backend);
    } else {
        println!("adapters (--backend {}):", report.backend);
    }
    for (i, a) in report.adapters.iter().enumerate() {
        let l = &a.limits;
        let driver = format!("{} {}", a.driver, a.driver_info);
        let driver = match driver.trim() {
            "" => String::new(),
            driver => format!(", driver {driver}"),
        };
        println!("  [{i}] {} ({}, {}{driver})", a.name, a.backend, a.device_type);
        println!("      max storage buffer binding size    {}", bytes(l.max_storage_buffer_binding_size));
        println!("      max buffer size                    {}", bytes(l.max_buffer_size));
        println!("      max invocations per workgroup      {}", l.max_compute_invocations_per_workgroup);
        println!("      max workgroups per dimension       {}", l.max_compute_workgroups_per_dimension);
        println!("      max storage buffers per stage      {}", l.max_storage_buffers_per_shader_stage);
        println!("      workgroup storage size             {}", bytes(l.max_compute_workgroup_storage_size as u64));
    }
    match &report.runtime {
        // Its name says it runs host handlers.
        RuntimePick::Adapter(a) if runs_on_host(a) => println!("runtime: {}", a.name),
        RuntimePick::Adapter(a) => {
            println!("runtime picks: {}", adapter_line(a));
            // What a handler may `enable` there.
            let features: Vec<&str> = a.features.iter().map(|f| f.name()).collect();
            println!(
                "  optional features on: {}",
                if features.is_empty() { "none".into() } else { features.join(", ") }
            );
        }
        RuntimePick::Unavailable(reason) => println!("runtime: unavailable: {reason}"),
    }
}

/// Bytes in the largest binary unit that keeps a whole number (limits are usually powers of two).
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n;
    let mut unit = 0;
    while value >= 1024 && value.is_multiple_of(1024) && unit + 1 < UNITS.len() {
        value /= 1024;
        unit += 1;
    }
    match unit {
        0 => format!("{n} bytes"),
        _ => format!("{value} {} ({n} bytes)", UNITS[unit]),
    }
}

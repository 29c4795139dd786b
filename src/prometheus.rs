//! Prometheus text exposition (format 0.0.4) of a [`RuntimeSummary`], for operators who scrape.
//!
//! Written by hand rather than with a metrics crate: the runtime keeps its own counters and
//! exports snapshots, while `prometheus`/`prometheus-client` are live registries of metric
//! objects; the format itself is a few line rules and one escaping rule. Native tests parse
//! the output with `prometheus-parse`.

use std::fmt::{self, Write};

use crate::circuit::CircuitState;
use crate::degradation::DegradationLevel;
use crate::health::{HealthReport, HealthSubject, Severity};
use crate::lifecycle::KernelState;
use crate::memory::MemoryPurpose;
use crate::platform::Float;
use crate::telemetry::{KernelTelemetry, RuntimeSummary};

/// One metric family: name, help, type, and a sample per kernel.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    value: fn(&KernelTelemetry) -> f64,
}

const KERNEL_FAMILIES: &[Family] = &[
    Family {
        name: "ringkernel_messages_sent_total",
        help: "Messages accepted by send, sendBatch and call.",
        kind: "counter",
        value: |k| k.messages_sent as f64,
    },
    Family {
        name: "ringkernel_messages_received_total",
        help: "Answers handed to receive and call callers.",
        kind: "counter",
        value: |k| k.messages_received as f64,
    },
    Family {
        name: "ringkernel_messages_processed_total",
        help: "Messages the GPU handler ran on (counted on the GPU).",
        kind: "counter",
        value: |k| k.messages_processed as f64,
    },
    Family {
        name: "ringkernel_messages_dropped_total",
        help: "Messages the handler dropped (counted on the GPU).",
        kind: "counter",
        value: |k| k.messages_dropped as f64,
    },
    Family {
        name: "ringkernel_messages_forwarded_total",
        help: "Answers routed to the connected kernel instead of the host.",
        kind: "counter",
        value: |k| k.messages_forwarded as f64,
    },
    Family {
        name: "ringkernel_stalled_sends_total",
        help:
            "Sends, calls and receives that waited a second or more on the kernel while it could not run their input.",
        kind: "counter",
        value: |k| k.stalled_sends as f64,
    },
    Family {
        name: "ringkernel_errors_total",
        help: "Failed message operations: refused messages and timeouts.",
        kind: "counter",
        value: |k| k.errors as f64,
    },
    Family {
        name: "ringkernel_dispatches_total",
        help: "Dispatches of the kernel whose submission completed.",
        kind: "counter",
        value: |k| k.dispatches as f64,
    },
    Family {
        name: "ringkernel_bytes_to_device_total",
        help: "Bytes written to the GPU for this kernel.",
        kind: "counter",
        value: |k| k.bytes_to_device as f64,
    },
    Family {
        name: "ringkernel_bytes_from_device_total",
        help: "Bytes read back from the GPU for this kernel.",
        kind: "counter",
        value: |k| k.bytes_from_device as f64,
    },
    Family {
        name: "ringkernel_answers_abandoned_total",
        help: "Answers that arrived after their call timed out.",
        kind: "counter",
        value: |k| k.answers_abandoned as f64,
    },
    Family {
        name: "ringkernel_unprocessed_at_termination",
        help: "Messages left unprocessed when terminate timed out.",
        kind: "gauge",
        value: |k| k.unprocessed_at_termination as f64,
    },
    Family {
        name: "ringkernel_input_queue_depth",
        help: "Messages waiting on the host to go to the GPU.",
        kind: "gauge",
        value: |k| k.input_queue_depth as f64,
    },
    Family {
        name: "ringkernel_in_flight_messages",
        help: "Messages in the GPU ring, not yet answered.",
        kind: "gauge",
        value: |k| k.in_flight as f64,
    },
    Family {
        name: "ringkernel_output_queue_depth",
        help: "Answers waiting for receive.",
        kind: "gauge",
        value: |k| k.output_queue_depth as f64,
    },
    Family {
        name: "ringkernel_queue_capacity",
        help: "Bound of the kernel's input and output queues, in messages.",
        kind: "gauge",
        value: |k| k.queue_size as f64,
    },
    Family {
        name: "ringkernel_gpu_memory_bytes",
        help: "GPU memory held by the kernel's rings, their header and counters, and its state.",
        kind: "gauge",
        value: |k| k.gpu_memory_bytes as f64,
    },
    Family {
        name: "ringkernel_circuit_opened_total",
        help: "Times the kernel's circuit breaker opened.",
        kind: "counter",
        value: |k| k.circuit_opened as f64,
    },
    Family {
        name: "ringkernel_kernel_stale",
        help:
            "1 while the watchdog calls the kernel stale: it has input and made no progress for the heartbeat timeout.",
        kind: "gauge",
        value: |k| k.stale as u8 as f64,
    },
    Family {
        name: "ringkernel_kernel_migrations_total",
        help: "Times the kernel moved, live, to another device.",
        kind: "counter",
        value: |k| k.migrations as f64,
    },
    Family {
        name: "ringkernel_kernel_uptime_seconds",
        help: "Seconds since the kernel was launched.",
        kind: "gauge",
        value: |k| k.uptime_ms / 1000.0,
    },
    Family {
        name: "ringkernel_throughput_messages_per_second",
        help: "Processed messages per second of uptime.",
        kind: "gauge",
        value: |k| k.throughput,
    },
];

/// Renders the summary. Every kernel appears in every family, labelled `kernel="<id>"`.
pub fn render(summary: &RuntimeSummary) -> String {
    let mut out = String::new();
    let a = &summary.adapter;
    header(&mut out, "ringkernel_info", "The runtime's backend and adapter.", "gauge");
    let _ = writeln!(
        out,
        "ringkernel_info{{backend=\"{}\",adapter=\"{}\",driver=\"{}\",device_type=\"{}\"}} 1",
        Escaped(&a.backend),
        Escaped(&a.name),
        Escaped(&a.driver),
        Escaped(&a.device_type)
    );
    header(&mut out, "ringkernel_uptime_seconds", "Seconds since the runtime was created, until it stopped.", "gauge");
    let _ = writeln!(out, "ringkernel_uptime_seconds {}", Number(summary.uptime_ms / 1000.0));
    header(&mut out, "ringkernel_kernels", "Kernels in the runtime's table.", "gauge");
    let _ = writeln!(out, "ringkernel_kernels {}", summary.kernel_count);
    header(&mut out, "ringkernel_ticks_total", "Ticks that did work (one submit and readback each).", "counter");
    let _ = writeln!(out, "ringkernel_ticks_total {}", summary.ticks);
    let runtime_samples: [(&str, &str, &str, f64); 5] = [
        ("ringkernel_gpu_buffers", "GPU buffers the runtime holds.", "gauge", summary.gpu_buffer_count as f64),
        ("ringkernel_gpu_buffer_bytes", "Bytes of those GPU buffers.", "gauge", summary.gpu_buffer_bytes as f64),
        (
            "ringkernel_device_lost",
            "1 while the device is lost and kernels wait for recovery.",
            "gauge",
            summary.device.lost.is_some() as u8 as f64,
        ),
        ("ringkernel_device_losses_total", "Times the GPU device was lost.", "counter", summary.device.losses as f64),
        (
            "ringkernel_device_recoveries_total",
            "Recoveries onto a new device.",
            "counter",
            summary.device.recoveries as f64,
        ),
    ];
    for (name, help, kind, value) in runtime_samples {
        header(&mut out, name, help, kind);
        let _ = writeln!(out, "{name} {}", Number(value));
    }

    header(
        &mut out,
        "ringkernel_kernel_state",
        "1 for the kernel's current lifecycle state, 0 for the others.",
        "gauge",
    );
    for (id, kernel) in &summary.per_kernel {
        for state in KernelState::ALL {
            let _ = writeln!(
                out,
                "ringkernel_kernel_state{{kernel=\"{}\",mode=\"{}\",state=\"{}\"}} {}",
                Escaped(id),
                kernel.mode.as_str(),
                state,
                (kernel.state == state) as u8
            );
        }
    }
    header(
        &mut out,
        "ringkernel_circuit_state",
        "1 for the state the kernel's circuit breaker is in, 0 for the others.",
        "gauge",
    );
    for (id, kernel) in &summary.per_kernel {
        for state in CircuitState::ALL {
            let _ = writeln!(
                out,
                "ringkernel_circuit_state{{kernel=\"{}\",state=\"{}\"}} {}",
                Escaped(id),
                state,
                (kernel.circuit_state == state) as u8
            );
        }
    }
    let stale = summary.per_kernel.values().filter(|k| k.stale).count();
    header(&mut out, "ringkernel_stale_kernels", "Kernels the watchdog calls stale now.", "gauge");
    let _ = writeln!(out, "ringkernel_stale_kernels {stale}");
    for family in KERNEL_FAMILIES {
        header(&mut out, family.name, family.help, family.kind);
        for (id, kernel) in &summary.per_kernel {
            let _ = writeln!(out, "{}{{kernel=\"{}\"}} {}", family.name, Escaped(id), Number((family.value)(kernel)));
        }
    }
    render_devices(&mut out, summary);

    render_memory(&mut out, summary);
    render_degradation(&mut out, summary);

    let latency = "ringkernel_latency_seconds";
    header(&mut out, latency, "Latency from send to the answer arriving on the host.", "summary");
    for (id, kernel) in &summary.per_kernel {
        let l = &kernel.latency;
        let id = Escaped(id);
        for (quantile, value) in [("0.5", l.p50_ms), ("0.99", l.p99_ms)] {
            let value = Number(value.map_or(f64::NAN, |ms| ms / 1000.0));
            let _ = writeln!(out, "{latency}{{kernel=\"{id}\",quantile=\"{quantile}\"}} {value}");
        }
        let _ = writeln!(out, "{latency}_sum{{kernel=\"{id}\"}} {}", Number(l.sum_ms / 1000.0));
        let _ = writeln!(out, "{latency}_count{{kernel=\"{id}\"}} {}", l.count);
    }
    out
}

/// A device's figure for one per-device family.
type DeviceFamily = (&'static str, &'static str, &'static str, fn(&crate::devices::DeviceInfo) -> f64);

/// Per-device families, labelled `device="<id>"` (see [`crate::devices`]), and where each kernel
/// runs as an info family (`ringkernel_kernel_device{kernel,device} 1`), so kernel families keep
/// their labels when a kernel moves and join on `kernel` for a device breakdown.
fn render_devices(out: &mut String, summary: &RuntimeSummary) {
    header(out, "ringkernel_kernel_device", "The device each kernel runs on now.", "gauge");
    for (id, kernel) in &summary.per_kernel {
        let _ = writeln!(out, "ringkernel_kernel_device{{kernel=\"{}\",device=\"{}\"}} 1", Escaped(id), kernel.device);
    }
    header(out, "ringkernel_device_info", "Each device of the runtime and its adapter.", "gauge");
    for d in &summary.devices {
        let a = &d.adapter;
        let _ = writeln!(
            out,
            "ringkernel_device_info{{device=\"{}\",backend=\"{}\",adapter=\"{}\"}} 1",
            d.id,
            Escaped(&a.backend),
            Escaped(&a.name)
        );
    }
    let families: [DeviceFamily; 5] = [
        ("ringkernel_device_kernels", "Kernels placed on the device.", "gauge", |d| d.kernels.len() as f64),
        ("ringkernel_device_memory_bytes", "Device bytes its kernels hold there.", "gauge", |d| d.memory_bytes as f64),
        (
            "ringkernel_device_messages_processed_total",
            "Messages processed on the device, by whichever kernels ran there.",
            "counter",
            |d| d.messages_processed as f64,
        ),
        ("ringkernel_device_ticks_total", "Ticks that did work on the device.", "counter", |d| d.ticks as f64),
        ("ringkernel_device_is_lost", "1 while the device is lost.", "gauge", |d| d.lost.is_some() as u8 as f64),
    ];
    for (name, help, kind, value) in families {
        header(out, name, help, kind);
        for d in &summary.devices {
            let _ = writeln!(out, "{name}{{device=\"{}\"}} {}", d.id, Number(value(d)));
        }
    }
}

/// Renders the health verdict: the status one-hot, and the findings behind it by severity and
/// subject (`kernel` labelled with its id).
pub fn render_health(report: &HealthReport) -> String {
    let mut out = String::new();
    header(&mut out, "ringkernel_health", "1 for the runtime's health status, 0 for the others.", "gauge");
    for status in ["healthy", "degraded", "unhealthy"] {
        let _ = writeln!(out, "ringkernel_health{{status=\"{status}\"}} {}", (report.status.as_str() == status) as u8);
    }
    header(&mut out, "ringkernel_health_issues", "Findings behind the health status.", "gauge");
    let mut counts: Vec<(Severity, String, usize)> = Vec::new();
    for issue in &report.issues {
        let labels = match &issue.subject {
            HealthSubject::Kernel(id) => format!("subject=\"kernel\",kernel=\"{}\"", Escaped(id)),
            HealthSubject::Runtime => "subject=\"runtime\"".into(),
            HealthSubject::Device => "subject=\"device\"".into(),
            HealthSubject::Memory => "subject=\"memory\"".into(),
        };
        match counts.iter_mut().find(|(s, l, _)| *s == issue.severity && *l == labels) {
            Some(entry) => entry.2 += 1,
            None => counts.push((issue.severity, labels, 1)),
        }
    }
    for (severity, labels, count) in counts {
        let severity = if severity == Severity::Unhealthy { "unhealthy" } else { "degraded" };
        let _ = writeln!(out, "ringkernel_health_issues{{severity=\"{severity}\",{labels}}} {count}");
    }
    out
}

/// Device memory by kernel and purpose (the readback buffer, shared, under `kernel=""`), the
/// budget and the pressure.
fn render_memory(out: &mut String, summary: &RuntimeSummary) {
    let memory = &summary.memory;
    let name = "ringkernel_memory_bytes";
    header(
        out,
        name,
        "Device memory held, by kernel and purpose (kernel=\"\" for the shared readback buffer).",
        "gauge",
    );
    for (id, bytes) in &memory.by_kernel {
        for purpose in MemoryPurpose::ALL.into_iter().filter(|p| *p != MemoryPurpose::Readback) {
            let _ = writeln!(out, "{name}{{kernel=\"{}\",purpose=\"{purpose}\"}} {}", Escaped(id), bytes.get(purpose));
        }
    }
    let readback = MemoryPurpose::Readback;
    let _ = writeln!(out, "{name}{{kernel=\"\",purpose=\"{readback}\"}} {}", memory.by_purpose.get(readback));
    let samples = [
        ("ringkernel_memory_used_bytes", "Device memory held in all.", memory.used_bytes as f64),
        (
            "ringkernel_memory_budget_bytes",
            "The memory budget pressure is measured against (NaN without one).",
            memory.budget_bytes.map_or(f64::NAN, |b| b as f64),
        ),
        ("ringkernel_memory_pressure", "Memory held over the budget, 0 to 1 (0 without a budget).", memory.pressure),
    ];
    for (name, help, value) in samples {
        header(out, name, help, "gauge");
        let _ = writeln!(out, "{name} {}", Number(value));
    }
}

/// The degradation level as a number and as a one-hot state set, with its reason.
fn render_degradation(out: &mut String, summary: &RuntimeSummary) {
    let status = &summary.degradation;
    let name = "ringkernel_degradation_level";
    header(out, name, "Degradation level: 0 normal, 1 light, 2 moderate, 3 severe, 4 critical.", "gauge");
    let _ = writeln!(out, "{name} {}", status.level.as_u8());
    let name = "ringkernel_degradation_state";
    header(out, name, "1 for the current degradation level, 0 for the others.", "gauge");
    for level in DegradationLevel::ALL {
        let _ = writeln!(out, "{name}{{level=\"{level}\"}} {}", (status.level == level) as u8);
    }
    let name = "ringkernel_degradation_transitions_total";
    header(out, name, "Degradation level changes.", "counter");
    let _ = writeln!(out, "{name} {}", status.transitions);
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the format escapes it: backslash, double quote and newline. Written
/// straight into the text, with no string of its own.
#[derive(Clone, Copy)]
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut start = 0;
        for (at, byte) in self.0.bytes().enumerate() {
            let escaped = match byte {
                b'\\' => "\\\\",
                b'"' => "\\\"",
                b'\n' => "\\n",
                _ => continue,
            };
            // The escaped bytes are ASCII, so `start` and `at` are character boundaries.
            f.write_str(&self.0[start..at])?;
            f.write_str(escaped)?;
            start = at + 1;
        }
        f.write_str(&self.0[start..])
    }
}

/// A sample value: integers without a fraction, other finite values as Rust prints them, and
/// Prometheus' spellings of the non-finite ones. Written straight into the text.
#[derive(Clone, Copy)]
struct Number(f64);

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            v if v.is_nan() => f.write_str("NaN"),
            v if v == f64::INFINITY => f.write_str("+Inf"),
            v if v == f64::NEG_INFINITY => f.write_str("-Inf"),
            v if v.fract() == 0.0 && v.abs() < 1e15 => fmt::Display::fmt(&(v as i64), f),
            v => fmt::Display::fmt(&Float(v), f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(Escaped("a\"b\\c\nd").to_string(), "a\\\"b\\\\c\\nd");
        assert_eq!(Escaped("é\"ü\n").to_string(), "é\\\"ü\\n");
    }

    #[test]
    fn numbers_are_prometheus_floats() {
        assert_eq!(Number(3.0).to_string(), "3");
        assert_eq!(Number(0.25).to_string(), "0.25");
        assert_eq!(Number(f64::INFINITY).to_string(), "+Inf");
        assert_eq!(Number(f64::NAN).to_string(), "NaN");
    }
}

//! Health: one verdict, healthy, degraded or unhealthy, from what the runtime already knows,
//! with every reason naming the kernel or resource it is about. The assessment is a pure
//! function of the runtime's vitals and [`HealthThresholds`], so its rules are tested without a GPU;
//! `Runtime::health` gathers the vitals (`runtime/health.rs`).
//!
//! | finding | verdict |
//! |---|---|
//! | the runtime stopped | unhealthy |
//! | the runtime draining | degraded |
//! | the device lost, no recovery under way (or the last one failed) | unhealthy |
//! | the device lost, automatic recovery under way | degraded |
//! | a kernel's input or output queue at least `queue_fill` full | degraded |
//! | a kernel's failure rate since the last check (what its circuit breaker counts: handler errors, device losses, timed-out calls and receives, failed protected operations; per message processed or other operation failed) at least `error_rate_degraded` / `error_rate_unhealthy` | degraded / unhealthy |
//! | a kernel the watchdog finds stale | degraded |
//! | a kernel recovery could not rebuild on its recovered device | unhealthy |
//! | a kernel's circuit breaker open (or half-open) | degraded |
//! | memory pressure at least `memory_degraded` / `memory_unhealthy` | degraded / unhealthy |

use serde::{Deserialize, Serialize};

use crate::error::Quoted;
use crate::platform::{option_name, Float};

/// The verdict, as in the seed's `HealthStatus`; the reason lists the findings that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealthStatus {
    /// Nothing found.
    Healthy,
    /// Serving, with findings that need attention.
    Degraded(String),
    /// Not serving (or about to stop): a lost device, a stopped runtime, failing kernels.
    Unhealthy(String),
}

impl HealthStatus {
    /// `"healthy"`, `"degraded"` or `"unhealthy"`, as JavaScript and Prometheus name it.
    pub fn as_str(&self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded(_) => "degraded",
            HealthStatus::Unhealthy(_) => "unhealthy",
        }
    }

    /// Whether the runtime serves normally.
    pub fn is_healthy(&self) -> bool {
        matches!(self, HealthStatus::Healthy)
    }

    /// The findings behind a degraded or unhealthy verdict.
    pub fn reason(&self) -> Option<&str> {
        match self {
            HealthStatus::Healthy => None,
            HealthStatus::Degraded(reason) | HealthStatus::Unhealthy(reason) => Some(reason),
        }
    }
}

/// How bad one finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Severity {
    /// Serving, but look.
    Degraded,
    /// Not serving.
    Unhealthy,
}

/// What one finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "subject", content = "kernel", rename_all = "lowercase")]
#[non_exhaustive]
pub enum HealthSubject {
    /// The runtime as a whole (draining, stopped).
    Runtime,
    /// The GPU device (lost, recovering).
    Device,
    /// GPU memory against its budget.
    Memory,
    /// One kernel, by id.
    Kernel(String),
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HealthIssue {
    /// How bad it is.
    pub severity: Severity,
    /// What it is about.
    #[serde(flatten)]
    pub subject: HealthSubject,
    /// What was found, naming the kernel or resource.
    pub reason: String,
}

/// The verdict and every finding behind it (`Runtime::health`). Serialized (and in
/// JavaScript) as `{ status: "healthy" | "degraded" | "unhealthy", reason, issues }`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthReport {
    /// The verdict: the worst finding's severity, with the findings of that severity as reason.
    pub status: HealthStatus,
    /// Every finding, the worst first.
    pub issues: Vec<HealthIssue>,
}

impl Serialize for HealthReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut report = serializer.serialize_struct("HealthReport", 3)?;
        report.serialize_field("status", self.status.as_str())?;
        report.serialize_field("reason", &self.status.reason())?;
        report.serialize_field("issues", &self.issues)?;
        report.end()
    }
}

/// Where the verdict's lines are. Defaults: queues 80 % full, error rates 5 % (degraded) and
/// 50 % (unhealthy), memory pressure 0.8 and 0.95. In JavaScript,
/// `create({ health: { queueFill, errorRateDegraded, errorRateUnhealthy, memoryDegraded,
/// memoryUnhealthy } })`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct HealthThresholds {
    /// A queue this full (0–1) makes its kernel degraded.
    pub queue_fill: f64,
    /// Failures per operation (message processed or failure) since the last check that make a
    /// kernel degraded; refusals such as a full queue are back-pressure, not failures.
    pub error_rate_degraded: f64,
    /// ... and unhealthy.
    pub error_rate_unhealthy: f64,
    /// Memory pressure (0–1) that makes the runtime degraded.
    pub memory_degraded: f64,
    /// ... and unhealthy.
    pub memory_unhealthy: f64,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        HealthThresholds {
            queue_fill: 0.8,
            error_rate_degraded: 0.05,
            error_rate_unhealthy: 0.5,
            memory_degraded: 0.8,
            memory_unhealthy: 0.95,
        }
    }
}

impl HealthThresholds {
    /// A queue this full (0–1) makes its kernel degraded.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_queue_fill(mut self, fraction: f64) -> Self {
        self.queue_fill = fraction;
        self
    }

    /// Error rates (failed operations per operation since the last check) that make a kernel
    /// degraded and unhealthy.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_error_rates(mut self, degraded: f64, unhealthy: f64) -> Self {
        (self.error_rate_degraded, self.error_rate_unhealthy) = (degraded, unhealthy);
        self
    }

    /// Memory pressures that make the runtime degraded and unhealthy.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_memory(mut self, degraded: f64, unhealthy: f64) -> Self {
        (self.memory_degraded, self.memory_unhealthy) = (degraded, unhealthy);
        self
    }

    /// `None` if every threshold is a fraction more than 0 (at 0 everything would meet it) and at
    /// most 1 and each degraded line is at most its unhealthy one; otherwise what is wrong.
    pub(crate) fn problem(&self) -> Option<String> {
        let thresholds = [
            (option_name!("health.queueFill", "queue_fill"), self.queue_fill),
            (option_name!("health.errorRateDegraded", "error_rate_degraded"), self.error_rate_degraded),
            (option_name!("health.errorRateUnhealthy", "error_rate_unhealthy"), self.error_rate_unhealthy),
            (option_name!("health.memoryDegraded", "memory_degraded"), self.memory_degraded),
            (option_name!("health.memoryUnhealthy", "memory_unhealthy"), self.memory_unhealthy),
        ];
        if let Some((name, value)) = thresholds.into_iter().find(|&(_, v)| !(v > 0.0 && v <= 1.0)) {
            return Some(format!("{name} must be a fraction more than 0 and at most 1, got {}", Float(value)));
        }
        // A degraded line above its unhealthy one would skip `degraded` on the way up.
        [(thresholds[1], thresholds[2]), (thresholds[3], thresholds[4])]
            .into_iter()
            .find(|((_, degraded), (_, unhealthy))| degraded > unhealthy)
            .map(|((degraded, d), (unhealthy, u))| {
                format!("{degraded} ({}) must be at most {unhealthy} ({})", Float(d), Float(u))
            })
    }
}

/// The runtime as health sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Vitals {
    /// `Some("draining")` or `Some("stopped")` when the runtime no longer takes work.
    pub runtime: Option<&'static str>,
    /// Why the device is lost, if it is.
    pub device_lost: Option<String>,
    /// Whether a recovery is under way (automatic recovery on, attempts left).
    pub recovering: bool,
    /// Whether the lost device is the application's own, which only it brings back.
    pub device_shared: bool,
    /// Why the last recovery failed, if it did.
    pub recovery_error: Option<String>,
    /// Memory pressure, 0–1 (0 without a budget).
    pub memory_pressure: f64,
    /// Every kernel, sorted by id.
    pub kernels: Vec<KernelVitals>,
}

/// One kernel as health sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct KernelVitals {
    pub id: String,
    pub input_fill: f64,
    pub output_fill: f64,
    /// Failures of the kernel (`Counters::failures`) since the last check, and those plus the
    /// messages it processed.
    pub errors: u64,
    pub operations: u64,
    /// How long it has had input and made no progress, if the watchdog calls it stale.
    pub stale_for_ms: Option<f64>,
    /// `"open"` or `"halfOpen"` when its circuit breaker is not closed.
    pub circuit: Option<&'static str>,
    /// Why recovery could not rebuild it on its recovered device, where it stays failed.
    pub unrecovered: Option<String>,
}

/// The verdict on `vitals`.
pub(crate) fn assess(vitals: &Vitals, limits: &HealthThresholds) -> HealthReport {
    let mut issues = Vec::new();
    let mut found = |severity, subject, reason: String| issues.push(HealthIssue { severity, subject, reason });
    match vitals.runtime {
        Some("stopped") => found(Severity::Unhealthy, HealthSubject::Runtime, "the runtime is stopped".into()),
        Some(state) => found(Severity::Degraded, HealthSubject::Runtime, format!("the runtime is {state}")),
        None => {}
    }
    if let Some(lost) = &vitals.device_lost {
        match (&vitals.recovery_error, vitals.recovering) {
            (Some(failed), _) => found(
                Severity::Unhealthy,
                HealthSubject::Device,
                format!("the device is lost ({lost}) and the last recovery failed: {failed}"),
            ),
            (None, true) => {
                found(Severity::Degraded, HealthSubject::Device, format!("the device is lost ({lost}); recovering"))
            }
            (None, false) => found(
                Severity::Unhealthy,
                HealthSubject::Device,
                // (Never on wasm32, where no `SharedDevice` can be made.)
                match cfg!(not(target_arch = "wasm32")) && vitals.device_shared {
                    true => format!(
                        "the device is lost ({lost}); it is the application's: hand it back, or its replacement, with \
                         replace_shared_device()"
                    ),
                    false => format!("the device is lost ({lost}); call recover()"),
                },
            ),
        }
    }
    if vitals.memory_pressure >= limits.memory_unhealthy || vitals.memory_pressure >= limits.memory_degraded {
        let severity =
            if vitals.memory_pressure >= limits.memory_unhealthy { Severity::Unhealthy } else { Severity::Degraded };
        found(severity, HealthSubject::Memory, format!("GPU memory pressure is {}", percent(vitals.memory_pressure)));
    }
    for k in &vitals.kernels {
        let kernel = || HealthSubject::Kernel(k.id.clone());
        for (queue, fill) in [("input", k.input_fill), ("output", k.output_fill)] {
            if fill >= limits.queue_fill {
                found(
                    Severity::Degraded,
                    kernel(),
                    format!("kernel {}: {queue} queue {} full", Quoted(&k.id), percent(fill)),
                );
            }
        }
        if k.operations > 0 {
            let rate = k.errors as f64 / k.operations as f64;
            let severity = if rate >= limits.error_rate_unhealthy {
                Some(Severity::Unhealthy)
            } else if rate >= limits.error_rate_degraded {
                Some(Severity::Degraded)
            } else {
                None
            };
            if let Some(severity) = severity {
                found(
                    severity,
                    kernel(),
                    format!(
                        "kernel {}: {} of {} operations failed since the last check",
                        Quoted(&k.id),
                        k.errors,
                        k.operations
                    ),
                );
            }
        }
        if let Some(unrecovered) = &k.unrecovered {
            found(Severity::Unhealthy, kernel(), format!("kernel {} {unrecovered}", Quoted(&k.id)));
        }
        if let Some(ms) = k.stale_for_ms {
            found(
                Severity::Degraded,
                kernel(),
                format!("kernel {}: has input and made no progress for {} ms", Quoted(&k.id), ms.round() as u64),
            );
        }
        if let Some(circuit) = k.circuit {
            found(Severity::Degraded, kernel(), format!("kernel {}: circuit breaker {circuit}", Quoted(&k.id)));
        }
    }
    // Worst first, in the order found within a severity: a stable sort by severity, which with
    // two severities is one partition (a sort would link a stable sort's code into the wasm).
    // By a loop: `partition` and `extend` are code of their own in the wasm.
    let (mut worst_first, mut degraded) = (Vec::with_capacity(issues.len()), Vec::new());
    for issue in issues {
        match issue.severity == Severity::Unhealthy {
            true => worst_first.push(issue),
            false => degraded.push(issue),
        }
    }
    for issue in degraded {
        worst_first.push(issue);
    }
    let issues = worst_first;
    let worst = issues.first().map(|i| i.severity);
    let reason = || {
        // Pushed, not collected: each `collect` is a copy of `Vec`'s `from_iter` in the wasm.
        let mut lines = Vec::new();
        for issue in issues.iter().filter(|i| Some(i.severity) == worst) {
            lines.push(issue.reason.as_str());
        }
        crate::error::joined(&lines, "; ")
    };
    let status = match worst {
        None => HealthStatus::Healthy,
        Some(Severity::Degraded) => HealthStatus::Degraded(reason()),
        Some(Severity::Unhealthy) => HealthStatus::Unhealthy(reason()),
    };
    HealthReport { status, issues }
}

/// `0.873` → `"87%"`, without float formatting (integer percent, rounded down).
fn percent(fraction: f64) -> String {
    format!("{}%", (fraction * 100.0).floor() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(id: &str) -> KernelVitals {
        KernelVitals { id: id.into(), ..Default::default() }
    }

    fn verdict(vitals: &Vitals) -> HealthStatus {
        assess(vitals, &HealthThresholds::default()).status
    }

    #[test]
    fn nothing_found_is_healthy() {
        let vitals = Vitals { kernels: vec![kernel("a"), kernel("b")], ..Default::default() };
        assert_eq!(verdict(&vitals), HealthStatus::Healthy);
        assert!(assess(&vitals, &HealthThresholds::default()).issues.is_empty());
    }

    #[test]
    fn each_finding_names_its_kernel_or_resource() {
        let mut full = kernel("full");
        full.input_fill = 0.9;
        let mut failing = kernel("failing");
        (failing.errors, failing.operations) = (1, 10);
        let mut stale = kernel("stale");
        stale.stale_for_ms = Some(1500.4);
        let mut open = kernel("open");
        open.circuit = Some("open");
        let vitals = Vitals { kernels: vec![full, failing, stale, open], memory_pressure: 0.85, ..Default::default() };
        let report = assess(&vitals, &HealthThresholds::default());
        let reasons: Vec<&str> = report.issues.iter().map(|i| i.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "GPU memory pressure is 85%",
                "kernel 'full': input queue 90% full",
                "kernel 'failing': 1 of 10 operations failed since the last check",
                "kernel 'stale': has input and made no progress for 1500 ms",
                "kernel 'open': circuit breaker open",
            ]
        );
        assert!(
            matches!(report.status, HealthStatus::Degraded(ref r) if r.starts_with("GPU memory pressure is 85%; kernel 'full'"))
        );
        assert_eq!(report.issues[1].subject, HealthSubject::Kernel("full".into()));
    }

    #[test]
    fn the_worst_finding_decides_and_alone_gives_the_reason() {
        let mut failing = kernel("failing");
        (failing.errors, failing.operations) = (6, 10);
        let mut full = kernel("full");
        full.output_fill = 1.0;
        let vitals = Vitals { kernels: vec![full, failing], ..Default::default() };
        assert_eq!(
            verdict(&vitals),
            HealthStatus::Unhealthy("kernel 'failing': 6 of 10 operations failed since the last check".into())
        );
    }

    #[test]
    fn a_lost_device_is_unhealthy_until_a_recovery_is_under_way() {
        let lost = Vitals { device_lost: Some("destroyed".into()), ..Default::default() };
        assert_eq!(verdict(&lost), HealthStatus::Unhealthy("the device is lost (destroyed); call recover()".into()));
        let recovering = Vitals { recovering: true, ..lost.clone() };
        assert_eq!(verdict(&recovering), HealthStatus::Degraded("the device is lost (destroyed); recovering".into()));
        let failed = Vitals { recovery_error: Some("no adapter".into()), ..recovering };
        assert!(matches!(verdict(&failed), HealthStatus::Unhealthy(r) if r.ends_with("failed: no adapter")));
    }

    #[test]
    fn thresholds_move_the_lines() {
        let mut busy = kernel("busy");
        busy.input_fill = 0.5;
        let vitals = Vitals { kernels: vec![busy], memory_pressure: 0.5, ..Default::default() };
        assert_eq!(verdict(&vitals), HealthStatus::Healthy);
        let strict =
            HealthThresholds { queue_fill: 0.5, memory_degraded: 0.4, memory_unhealthy: 0.5, ..Default::default() };
        assert_eq!(assess(&vitals, &strict).status.as_str(), "unhealthy");
        assert_eq!(assess(&vitals, &strict).issues.len(), 2);
        let problem = |t: HealthThresholds| t.problem().unwrap_or_default();
        assert!(problem(HealthThresholds { queue_fill: 1.5, ..Default::default() }).contains("got 1.5"));
        assert!(problem(HealthThresholds { queue_fill: 0.0, ..Default::default() }).contains("more than 0"));
        let crossed = problem(HealthThresholds::default().with_error_rates(0.9, 0.1));
        assert!(crossed.contains("(0.9) must be at most") && crossed.ends_with("(0.1)"), "{crossed}");
        assert_eq!(HealthThresholds::default().problem(), None);
    }

    #[test]
    fn draining_is_degraded_and_stopped_unhealthy() {
        assert_eq!(verdict(&Vitals { runtime: Some("draining"), ..Default::default() }).as_str(), "degraded");
        assert_eq!(verdict(&Vitals { runtime: Some("stopped"), ..Default::default() }).as_str(), "unhealthy");
    }
}

//! The GPU memory dashboard's vocabulary: what each byte the runtime holds on its device is
//! for ([`MemoryPurpose`]), the report that adds them up by kernel and by purpose
//! ([`MemoryReport`]), memory pressure against an optional budget, and the alerts that fire when
//! pressure crosses a threshold (`GpuMemoryDashboard::on_alert`).
//!
//! # The denominator
//! WebGPU tells a page nothing about how much memory its device has: its limits bound one
//! buffer and one binding, not the total. So pressure is measured against a budget the user
//! sets (`RuntimeOptions::memory_budget`, `memoryBudget` in JavaScript): `used / budget`,
//! clamped to `[0, 1]`, and **0 without a budget**. The device's per-buffer limits are reported
//! beside it ([`DeviceMemoryLimits`]) for what they are.
//!
//! # The cpu backend
//! It holds no device memory: a kernel's state words live on the host and count as its `state`
//! bytes (what the backend holds in place of device memory); rings and readback are 0.
//!
//! # Alerts
//! A watch has a threshold in `(0, 1]`. It fires [`MemoryPressureAlert::High`] once when
//! pressure rises to the threshold or above, and [`MemoryPressureAlert::Normal`] once when
//! pressure falls below `threshold - ALERT_HYSTERESIS`: once per crossing, both ways, with no
//! flapping in between. Pressure is checked after every tick, after every launch, and on every
//! memory query, outside the kernel table's lock (a callback may call back into the runtime).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::platform::Float;

/// What a device buffer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum MemoryPurpose {
    /// A kernel's input ring, with the header the host writes in front of it.
    InputRing,
    /// A kernel's output ring, with the counters the GPU keeps in front of it.
    OutputRing,
    /// One flag per slot for handlers that may drop messages.
    KeptFlags,
    /// A kernel's `state` array (host words on the cpu backend).
    State,
    /// The buffer every tick's results are copied into and mapped (shared by all kernels).
    Readback,
}

impl MemoryPurpose {
    /// Every purpose, in report order.
    pub const ALL: [MemoryPurpose; 5] = [
        MemoryPurpose::InputRing,
        MemoryPurpose::OutputRing,
        MemoryPurpose::KeptFlags,
        MemoryPurpose::State,
        MemoryPurpose::Readback,
    ];

    /// The name used in JavaScript and in Prometheus' `purpose` label.
    pub fn as_str(self) -> &'static str {
        match self {
            MemoryPurpose::InputRing => "inputRing",
            MemoryPurpose::OutputRing => "outputRing",
            MemoryPurpose::KeptFlags => "keptFlags",
            MemoryPurpose::State => "state",
            MemoryPurpose::Readback => "readback",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for MemoryPurpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Live bytes per purpose, counted as buffers are created and dropped (one per runtime, across
/// the devices recovery replaces).
#[derive(Debug, Default)]
pub(crate) struct PurposeBytes([AtomicU64; MemoryPurpose::ALL.len()]);

impl PurposeBytes {
    pub fn add(&self, purpose: MemoryPurpose, bytes: u64) {
        self.0[purpose.index()].fetch_add(bytes, Ordering::Relaxed);
    }
    pub fn sub(&self, purpose: MemoryPurpose, bytes: u64) {
        self.0[purpose.index()].fetch_sub(bytes, Ordering::Relaxed);
    }
    pub fn get(&self, purpose: MemoryPurpose) -> u64 {
        self.0[purpose.index()].load(Ordering::Relaxed)
    }
}

/// Bytes by purpose, for one kernel or for the whole runtime. Serialized as an object keyed by
/// purpose (`{ inputRing, outputRing, keptFlags, state, readback }`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MemoryByPurpose {
    /// See [`MemoryPurpose::InputRing`].
    pub input_ring: u64,
    /// See [`MemoryPurpose::OutputRing`].
    pub output_ring: u64,
    /// See [`MemoryPurpose::KeptFlags`].
    pub kept_flags: u64,
    /// See [`MemoryPurpose::State`].
    pub state: u64,
    /// See [`MemoryPurpose::Readback`] (0 for a kernel: the buffer is shared).
    pub readback: u64,
}

impl MemoryByPurpose {
    /// The bytes for one purpose.
    pub fn get(&self, purpose: MemoryPurpose) -> u64 {
        match purpose {
            MemoryPurpose::InputRing => self.input_ring,
            MemoryPurpose::OutputRing => self.output_ring,
            MemoryPurpose::KeptFlags => self.kept_flags,
            MemoryPurpose::State => self.state,
            MemoryPurpose::Readback => self.readback,
        }
    }

    /// Adds `bytes` for `purpose`.
    pub(crate) fn add(&mut self, purpose: MemoryPurpose, bytes: u64) {
        let slot = match purpose {
            MemoryPurpose::InputRing => &mut self.input_ring,
            MemoryPurpose::OutputRing => &mut self.output_ring,
            MemoryPurpose::KeptFlags => &mut self.kept_flags,
            MemoryPurpose::State => &mut self.state,
            MemoryPurpose::Readback => &mut self.readback,
        };
        *slot += bytes;
    }

    /// Every purpose's bytes together.
    pub fn total(&self) -> u64 {
        MemoryPurpose::ALL.iter().map(|&p| self.get(p)).sum()
    }

    pub(crate) fn of(counts: &PurposeBytes) -> Self {
        let mut bytes = MemoryByPurpose::default();
        for purpose in MemoryPurpose::ALL {
            bytes.add(purpose, counts.get(purpose));
        }
        bytes
    }
}

/// What the device says about memory. WebGPU reports no total: these bound one buffer and one
/// storage binding. `None` fields on the cpu backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DeviceMemoryLimits {
    /// Largest buffer the device creates, in bytes.
    pub max_buffer_bytes: Option<u64>,
    /// Largest storage buffer binding (the bound of one ring or state array), in bytes.
    pub max_binding_bytes: Option<u64>,
}

/// A snapshot of the device memory the runtime holds (the seed's GPU memory dashboard).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MemoryReport {
    /// Every byte held, by purpose. `total()` equals `used_bytes`.
    pub by_purpose: MemoryByPurpose,
    /// Each kernel in the table, by purpose (a terminated kernel keeps its state until removed).
    pub by_kernel: BTreeMap<String, MemoryByPurpose>,
    /// Bytes held in all (the summary's `gpuBufferBytes` on a GPU).
    pub used_bytes: u64,
    /// The budget pressure is measured against (`RuntimeOptions::memory_budget`), if any.
    pub budget_bytes: Option<u64>,
    /// `used_bytes / budget_bytes` in `[0, 1]`; 0 without a budget.
    pub pressure: f64,
    /// What the device reports about its memory.
    pub device_limits: DeviceMemoryLimits,
}

/// Memory pressure: `used / budget` clamped to `[0, 1]`, and 0 without a budget (nothing to
/// measure against; see the module docs).
pub fn pressure(used: u64, budget: Option<u64>) -> f64 {
    match budget {
        Some(0) => 1.0,
        Some(budget) => (used as f64 / budget as f64).min(1.0),
        None => 0.0,
    }
}

/// Which way a watched threshold was crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum MemoryPressureAlert {
    /// Pressure rose to the threshold or above.
    High,
    /// Pressure fell back below the threshold minus [`ALERT_HYSTERESIS`].
    Normal,
}

impl MemoryPressureAlert {
    /// `"high"` or `"normal"`, as JavaScript sees it.
    pub fn as_str(self) -> &'static str {
        match self {
            MemoryPressureAlert::High => "high",
            MemoryPressureAlert::Normal => "normal",
        }
    }

    /// The alert named `name` (`"high"`, `"normal"`), or `None`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "high" => Some(MemoryPressureAlert::High),
            "normal" => Some(MemoryPressureAlert::Normal),
            _ => None,
        }
    }
}

/// `high` or `normal`, as [`as_str`](MemoryPressureAlert::as_str) gives it.
impl std::fmt::Display for MemoryPressureAlert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far below its threshold pressure must fall before a watch that fired `High` fires
/// `Normal`: keeps a workload hovering at the threshold from alerting on every tick.
pub const ALERT_HYSTERESIS: f64 = 0.05;

/// What an alert callback receives.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MemoryAlertEvent {
    /// Which way the threshold was crossed (or what `trigger_alert` was asked to send).
    pub alert: MemoryPressureAlert,
    /// The watch's threshold.
    pub threshold: f64,
    /// Pressure when the alert fired.
    pub pressure: f64,
    /// Bytes held when the alert fired.
    pub used_bytes: u64,
    /// The budget, if any.
    pub budget_bytes: Option<u64>,
}

/// A registered watch, for removing it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemoryWatchId(pub(crate) u64);

impl MemoryWatchId {
    /// The number JavaScript gets for the watch.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The watch JavaScript's number names.
    pub fn from_u64(id: u64) -> Self {
        MemoryWatchId(id)
    }
}

/// A callback an alert goes to. (On the web there is one thread; see the wasm layer for how a
/// JavaScript function meets these bounds.)
pub type AlertCallback = Arc<dyn Fn(&MemoryAlertEvent) + Send + Sync>;

pub(crate) struct Watch {
    id: MemoryWatchId,
    threshold: f64,
    high: bool,
    callback: AlertCallback,
}

/// The registered watches and which of them are above their threshold. Pure: it is handed
/// pressures and says which callbacks to run; the caller runs them without holding any lock.
#[derive(Default)]
pub(crate) struct AlertWatches {
    watches: Vec<Watch>,
    next: u64,
    /// A round of callbacks is running: a check from inside one (a callback that frees memory
    /// or reads it) leaves `look_again` for that round, which looks once it is done, so each
    /// watch hears its crossings in order.
    pub firing: bool,
    pub look_again: bool,
}

/// Callbacks to run with their events, returned so they run outside the lock; each with its
/// watch, so one removed meanwhile is skipped.
pub(crate) type Due = Vec<(MemoryWatchId, AlertCallback, MemoryAlertEvent)>;

/// A memory alert's threshold, a pressure in (0, 1], or why it is none.
pub(crate) fn check_threshold(threshold: f64) -> Result<()> {
    match threshold > 0.0 && threshold <= 1.0 {
        true => Ok(()),
        false => Err(Error::OutOfRange(format!(
            "a memory alert threshold is a pressure in (0, 1], not {}",
            Float(threshold)
        ))),
    }
}

impl AlertWatches {
    /// Registers a watch at `threshold` (in `(0, 1]`, else `OutOfRange`). It starts as if
    /// pressure were 0: a pressure already above fires `High` at the next check.
    pub fn add(&mut self, threshold: f64, callback: AlertCallback) -> Result<MemoryWatchId> {
        check_threshold(threshold)?;
        self.next += 1;
        let id = MemoryWatchId(self.next);
        self.watches.push(Watch { id, threshold, high: false, callback });
        Ok(id)
    }

    pub fn is_empty(&self) -> bool {
        self.watches.is_empty()
    }

    /// Whether watch `id` is registered.
    pub fn holds(&self, id: MemoryWatchId) -> bool {
        self.watches.iter().any(|w| w.id == id)
    }

    /// Takes every watch out, for the caller to drop outside the lock (a callback's captures
    /// may call the runtime as they go).
    pub fn clear(&mut self) -> Vec<Watch> {
        std::mem::take(&mut self.watches)
    }

    /// Removes a watch; `false` when there was none by that id.
    /// Takes a watch out, for the caller to drop outside the lock (as [`clear`](Self::clear));
    /// `None` when there was none by that id.
    pub fn remove(&mut self, id: MemoryWatchId) -> Option<Watch> {
        let at = self.watches.iter().position(|w| w.id == id)?;
        Some(self.watches.remove(at))
    }

    /// The crossings `pressure` makes, of every watch or of watch `only`: each watch fires at
    /// most once per crossing.
    pub fn observe(
        &mut self,
        only: Option<MemoryWatchId>,
        pressure: f64,
        used_bytes: u64,
        budget_bytes: Option<u64>,
    ) -> Due {
        let mut due = Vec::new();
        for watch in self.watches.iter_mut().filter(|w| only.is_none_or(|id| id == w.id)) {
            let alert = if !watch.high && pressure >= watch.threshold {
                MemoryPressureAlert::High
            } else if watch.high && pressure < watch.threshold - ALERT_HYSTERESIS {
                MemoryPressureAlert::Normal
            } else {
                continue;
            };
            watch.high = alert == MemoryPressureAlert::High;
            let event = MemoryAlertEvent { alert, threshold: watch.threshold, pressure, used_bytes, budget_bytes };
            due.push((watch.id, watch.callback.clone(), event));
        }
        due
    }

    /// `alert` to every watch now, whatever pressure is (the seed's `trigger_alert`); the
    /// watches' crossing state is left alone.
    pub fn trigger(
        &self,
        alert: MemoryPressureAlert,
        pressure: f64,
        used_bytes: u64,
        budget_bytes: Option<u64>,
    ) -> Due {
        // Pushed, not collected: each `collect` is a copy of `Vec`'s `from_iter` in the wasm.
        let mut due = Vec::with_capacity(self.watches.len());
        for w in &self.watches {
            let event = MemoryAlertEvent { alert, threshold: w.threshold, pressure, used_bytes, budget_bytes };
            due.push((w.id, w.callback.clone(), event));
        }
        due
    }
}

/// Runs the callbacks `observe` or `trigger` said are due, each only if its watch is still
/// registered (`registered`: a callback may remove another's watch).
pub(crate) fn fire(due: Due, registered: impl Fn(MemoryWatchId) -> bool) {
    for (id, callback, event) in due {
        if registered(id) {
            call(callback, &event);
        }
    }
}

/// Natively a callback that panics is reported and the others still run: it may run on the tick
/// loop's thread, which a panic would end. The callback is let go inside too (its captures may
/// hold the runtime's last handle). On the web panics abort.
#[cfg(not(target_arch = "wasm32"))]
fn call(callback: AlertCallback, event: &MemoryAlertEvent) {
    let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || callback(event)));
    if let Err(panic) = called {
        let said = crate::kernel::host::panic_message(&panic);
        crate::platform::warn(&format!("a memory alert callback panicked ({said}); the runtime goes on"));
    }
}

#[cfg(target_arch = "wasm32")]
fn call(callback: AlertCallback, event: &MemoryAlertEvent) {
    callback(event)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn recorder() -> (AlertCallback, Arc<Mutex<Vec<MemoryPressureAlert>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let into = seen.clone();
        (Arc::new(move |e: &MemoryAlertEvent| into.lock().unwrap().push(e.alert)), seen)
    }

    #[test]
    fn pressure_is_used_over_budget_and_zero_without_one() {
        assert_eq!(pressure(50, Some(200)), 0.25);
        assert_eq!(pressure(500, Some(200)), 1.0);
        assert_eq!(pressure(500, None), 0.0);
        assert_eq!(pressure(0, Some(0)), 1.0);
    }

    #[test]
    fn a_watch_fires_once_per_crossing_with_hysteresis() {
        let mut watches = AlertWatches::default();
        let (callback, seen) = recorder();
        watches.add(0.8, callback).unwrap();
        for p in [0.1, 0.79, 0.8, 0.95, 0.9, 0.78, 0.76, 0.81, 0.74, 0.5, 0.2, 0.85] {
            fire(watches.observe(None, p, 0, None), |_| true);
        }
        use MemoryPressureAlert::*;
        assert_eq!(*seen.lock().unwrap(), vec![High, Normal, High]);
    }

    #[test]
    fn thresholds_outside_zero_to_one_are_refused() {
        let mut watches = AlertWatches::default();
        for bad in [0.0, -0.5, 1.01, f64::NAN, f64::INFINITY] {
            let (callback, _) = recorder();
            assert_eq!(watches.add(bad, callback).unwrap_err().kind(), crate::ErrorKind::OutOfRange, "{bad}");
        }
    }

    #[test]
    fn removed_watches_stay_quiet_and_trigger_reaches_every_watch() {
        let mut watches = AlertWatches::default();
        let (first, first_seen) = recorder();
        let (second, second_seen) = recorder();
        let id = watches.add(0.5, first).unwrap();
        watches.add(0.9, second).unwrap();
        fire(watches.trigger(MemoryPressureAlert::High, 0.1, 0, None), |_| true);
        assert!(watches.remove(id).is_some());
        assert!(watches.remove(id).is_none());
        fire(watches.observe(None, 1.0, 0, None), |_| true);
        assert_eq!(first_seen.lock().unwrap().len(), 1, "the trigger only");
        assert_eq!(second_seen.lock().unwrap().len(), 2, "the trigger and the crossing");
    }
}

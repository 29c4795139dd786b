//! The operations views (the seed's `gpu_memory_dashboard()` and `degradation_manager()`):
//! cheap handles over the runtime that read memory and load, plus the memory alerts. Plain
//! queries, so a health check can read them without owning anything.

use std::sync::Arc;

use super::Runtime;
use crate::degradation::{DegradationLevel, DegradationStatus};
use crate::error::Result;
use crate::memory::{self, MemoryAlertEvent, MemoryPressureAlert, MemoryReport, MemoryWatchId};
use crate::platform;
use crate::pressure;

impl Runtime {
    /// The GPU memory dashboard: bytes by kernel and by purpose, pressure, alerts (see
    /// [`crate::memory`]).
    pub fn gpu_memory_dashboard(&self) -> GpuMemoryDashboard {
        GpuMemoryDashboard { runtime: self.clone() }
    }

    /// The degradation manager's view: the level, why, and the signals (see
    /// [`crate::degradation`]).
    pub fn degradation_manager(&self) -> DegradationManager {
        DegradationManager { runtime: self.clone() }
    }

    /// Device bytes by kernel and by purpose, against the budget. Also runs the memory alerts.
    pub fn memory_report(&self) -> MemoryReport {
        let report = pressure::memory_report(&self.shared, &self.shared.lock());
        pressure::check_memory_alerts(&self.shared);
        report
    }

    /// Bytes held over `RuntimeOptions::memory_budget`, in `[0, 1]`; 0 without a budget. Also
    /// runs the memory alerts.
    pub fn memory_pressure(&self) -> f64 {
        pressure::check_memory_alerts(&self.shared);
        pressure::used_and_pressure(&self.shared, None).1
    }

    /// The degradation level now (always `Normal` without a manager), evaluated at this call.
    pub fn degradation_level(&self) -> DegradationLevel {
        self.degradation_status().level
    }

    /// The level, its reason and the signals, evaluated at this call. `enabled: false` and
    /// `Normal` without a manager (`RuntimeOptions::degradation`).
    pub fn degradation_status(&self) -> DegradationStatus {
        let mut table = self.shared.lock();
        pressure::evaluate_degradation(&self.shared, &mut table, platform::now_ms());
        table.degrader.as_ref().map(|d| d.status()).unwrap_or_default()
    }
}

/// The seed's GPU memory dashboard: `runtime.gpu_memory_dashboard()`. Cheap to clone; keeps
/// its runtime alive.
#[derive(Clone, Debug)]
pub struct GpuMemoryDashboard {
    runtime: Runtime,
}

impl GpuMemoryDashboard {
    /// A snapshot: bytes by kernel and by purpose, the budget, pressure, the device's limits.
    pub fn report(&self) -> MemoryReport {
        self.runtime.memory_report()
    }

    /// Bytes held over the budget, in `[0, 1]`; 0 without a budget.
    pub fn memory_pressure(&self) -> f64 {
        self.runtime.memory_pressure()
    }

    /// The budget pressure is measured against, if any.
    pub fn budget(&self) -> Option<u64> {
        self.runtime.shared.settings.memory_budget
    }

    /// Calls `callback` once each time pressure crosses `threshold` (in `(0, 1]`, else
    /// `OutOfRange`): `High` on the way up, `Normal` on the way back below `threshold -`
    /// [`ALERT_HYSTERESIS`](crate::memory::ALERT_HYSTERESIS). Pressure is checked after every
    /// tick and launch and on every memory query; the callback runs with no lock held. A
    /// pressure already above `threshold` calls it before this returns natively, and on the web
    /// in a microtask after (so a JavaScript callback always has its watch's id). Natively a
    /// callback that panics is reported as a warning and the runtime goes on.
    ///
    /// A callback holding the runtime (a clone, a handle, a dashboard) keeps it alive, with its
    /// tick loop and devices, until [`dispose`](Runtime::dispose) or
    /// [`complete_shutdown`](Runtime::complete_shutdown), which let every callback go; dropping
    /// the handles is not enough then.
    pub fn on_alert(
        &self,
        threshold: f64,
        callback: impl Fn(&MemoryAlertEvent) + Send + Sync + 'static,
    ) -> Result<MemoryWatchId> {
        // A stopped runtime's memory changes no more: a watch would never fire. Added under the
        // table's lock, so a shutdown stopping meanwhile, which then lets watches go, sees it.
        // A threshold refused is refused first: the callback is then dropped with no lock held
        // (its captures may call the runtime as they go).
        crate::memory::check_threshold(threshold)?;
        let table = self.runtime.open_table()?;
        let id = self.runtime.shared.alerts().add(threshold, Arc::new(callback))?;
        drop(table);
        #[cfg(not(target_arch = "wasm32"))]
        pressure::check_new_watch(&self.runtime.shared, id);
        #[cfg(target_arch = "wasm32")]
        {
            let shared = self.runtime.shared.clone();
            crate::platform::spawn_detached("ringkernel-alerts", move || async move {
                pressure::check_memory_alerts(&shared)
            });
        }
        Ok(id)
    }

    /// Stops a watch; `false` when there was none by that id.
    pub fn remove_alert(&self, id: MemoryWatchId) -> bool {
        // The watch's callback is dropped once the lock is let go.
        let removed = self.runtime.shared.alerts().remove(id);
        removed.is_some()
    }

    /// Sends `alert` to every watch's callback now, at the current pressure (to test an alert
    /// path, or to raise one from a check of your own); the watches' crossings are unchanged.
    /// `Disposed` once the runtime has stopped.
    pub fn trigger_alert(&self, alert: MemoryPressureAlert) -> Result<()> {
        drop(self.runtime.open_table()?);
        let shared = &self.runtime.shared;
        let (used, pressure) = pressure::used_and_pressure(shared, None);
        let due = shared.alerts().trigger(alert, pressure, used, shared.settings.memory_budget);
        memory::fire(due, |id| shared.alerts().holds(id));
        Ok(())
    }
}

/// The seed's degradation manager: `runtime.degradation_manager()`. Cheap to clone; keeps its
/// runtime alive.
#[derive(Clone, Debug)]
pub struct DegradationManager {
    runtime: Runtime,
}

impl DegradationManager {
    /// Whether the runtime was created with one (`RuntimeOptions::degradation`).
    pub fn is_enabled(&self) -> bool {
        self.runtime.options().degradation.is_some()
    }

    /// The level now (`Normal` when not enabled).
    pub fn level(&self) -> DegradationLevel {
        self.runtime.degradation_level()
    }

    /// The level, why, and the signals behind it.
    pub fn status(&self) -> DegradationStatus {
        self.runtime.degradation_status()
    }
}

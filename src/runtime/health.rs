//! `Runtime::health` and the seed's `health_checker()`: the vitals [`crate::health`] judges,
//! gathered under the table lock.

use std::sync::Mutex;

use super::Runtime;
use crate::circuit::CircuitState;
use crate::error::Result;
use crate::health::{assess, HealthReport, HealthStatus, KernelVitals, Vitals};
use crate::lifecycle::LifecycleState;
use crate::platform;

/// Each kernel's [`Sample`] at the previous check, so error rates are recent ones, and of that
/// launch only. In id order, as a check lists the kernels, and looked up by binary search (a
/// `HashMap` of its own weighed more in the wasm).
#[derive(Default)]
pub(super) struct ErrorSamples(Vec<(String, Sample)>);

/// A kernel's launch and its (failures, operations) at a check.
type Sample = (u64, (u64, u64));

impl Runtime {
    /// Healthy, degraded or unhealthy, with every finding (see [`crate::health`] for the rules
    /// and [`RuntimeOptions::health`](super::RuntimeOptions::health) for the thresholds). Error
    /// rates are over the operations since the previous check, so a probe polled every few
    /// seconds sees what happens now, not since launch.
    pub fn health(&self) -> HealthReport {
        self.health_since(&self.inner.error_samples)
    }

    /// The health verdict with error rates since the previous check that used `samples` (the
    /// health checks' own, or the scrapes').
    pub(super) fn health_since(&self, samples: &Mutex<ErrorSamples>) -> HealthReport {
        let mut samples = samples.lock().unwrap_or_else(|p| p.into_inner());
        let table = self.shared.lock();
        let runtime = match table.state {
            LifecycleState::Draining => Some("draining"),
            LifecycleState::Stopped => Some("stopped"),
            _ => None,
        };
        // Owned ids, sorted.
        let ids = table.ids_where(&|_| true);
        let mut seen = Vec::with_capacity(ids.len());
        let now_ms = platform::now_ms();
        let heartbeat_timeout = table.watchdog.heartbeat_timeout;
        // Pushed, not collected: each `collect` is a copy of `Vec`'s `from_iter` in the wasm.
        let mut kernels = Vec::with_capacity(ids.len());
        for id in ids {
            let k = &table.kernels[&id];
            let c = &k.counters;
            // Operations: the messages it processed (a handler's errors among them) and the
            // operations that failed beside them.
            let now = (c.failures, c.messages_processed + c.failed_operations);
            // A kernel launched again under the same id starts from zero: its sample is
            // another launch's, whose counts may be below its own.
            let before = samples.0.binary_search_by(|(sampled, _)| sampled.as_str().cmp(&id)).ok();
            let before = before
                .map(|i| &samples.0[i].1)
                .filter(|(launch, b)| *launch == k.instance && b.0 <= now.0 && b.1 <= now.1);
            let before = before.map_or((0, 0), |s| s.1);
            seen.push((id.clone(), (k.instance, now)));
            kernels.push(KernelVitals {
                id,
                input_fill: k.mailbox.inbox.fill(),
                output_fill: k.mailbox.outbox.fill(),
                errors: now.0 - before.0,
                operations: now.1 - before.1,
                stale_for_ms: k.stale_for(now_ms, heartbeat_timeout).map(|since| since.as_secs_f64() * 1000.0),
                circuit: Some(k.circuit_state(now_ms))
                    .filter(|state| *state != CircuitState::Closed)
                    .map(CircuitState::as_str),
                unrecovered: k.unrecovered.clone().filter(|_| k.life.awaiting_device()),
            });
        }
        samples.0 = seen;
        let auto_recover = self.shared.settings.auto_recover;
        let lost = table.worst_lost_device(auto_recover);
        let vitals = Vitals {
            runtime,
            device_lost: lost.map(|(id, d)| self.name_device(id, d.lost_reason().unwrap_or_default())),
            recovering: lost.is_some_and(|(_, d)| d.recovering(auto_recover)),
            device_shared: lost.is_some_and(|(_, d)| d.is_shared()),
            recovery_error: lost.and_then(|(_, d)| d.recovery_error.clone()),
            memory_pressure: crate::pressure::used_and_pressure(&self.shared, Some(&table)).1,
            kernels,
        };
        assess(&vitals, &self.inner.options.health)
    }

    /// The seed's health checker: `runtime.health_checker().check().await?`.
    pub fn health_checker(&self) -> HealthChecker {
        HealthChecker { runtime: self.clone() }
    }
}

/// The seed's `HealthChecker`, checking one runtime.
#[derive(Clone, Debug)]
pub struct HealthChecker {
    runtime: Runtime,
}

impl HealthChecker {
    /// The verdict now (as [`Runtime::health`]'s status). Async in the seed's shape; it does
    /// not wait for the GPU.
    pub async fn check(&self) -> Result<HealthStatus> {
        Ok(self.runtime.health().status)
    }

    /// The verdict with every finding.
    pub fn report(&self) -> HealthReport {
        self.runtime.health()
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::devices::DeviceId;
    use crate::devices::DeviceSpec;
    use crate::error::Error;
    use crate::runtime::{BackendChoice, RuntimeOptions};

    /// A lost device is recovering while a recovery of it is under way, not while a migration
    /// takes the turn recoveries take too: health then still asks for `recover()`.
    #[test]
    fn a_lost_device_is_recovering_only_while_its_recovery_is_under_way() {
        let rt = pollster::block_on(Runtime::new(RuntimeOptions::default().with_backend(BackendChoice::Cpu))).unwrap();
        rt.shared.lock().device(DeviceId(0)).lost = Some(Error::DeviceLost { reason: "gone".into() });
        let migrating = pollster::block_on(rt.shared.recovering.lock());
        assert!(matches!(rt.health().status, HealthStatus::Unhealthy(_)), "{:?}", rt.health().status);
        drop(migrating);
        rt.shared.lock().device(DeviceId(0)).recovering = 1;
        assert!(matches!(rt.health().status, HealthStatus::Degraded(_)), "{:?}", rt.health().status);
    }

    /// A recovery asked for and waiting for its turn (behind a migration) counts as recovering
    /// already: the application has called `recover()`. Dropped, it counts no more.
    #[test]
    fn a_recovery_waiting_for_its_turn_counts_as_recovering() {
        let rt = pollster::block_on(Runtime::new(RuntimeOptions::default().with_backend(BackendChoice::Cpu))).unwrap();
        rt.shared.lock().device(DeviceId(0)).lost = Some(Error::DeviceLost { reason: "gone".into() });
        let migrating = pollster::block_on(rt.shared.recovering.lock());
        let mut recovery = Box::pin(crate::recovery::recover_device(&rt.shared, DeviceId(0)));
        pollster::block_on(async { assert!(futures_util::poll!(recovery.as_mut()).is_pending()) });
        assert!(matches!(rt.health().status, HealthStatus::Degraded(_)), "{:?}", rt.health().status);
        drop(recovery);
        assert!(matches!(rt.health().status, HealthStatus::Unhealthy(_)), "{:?}", rt.health().status);
        drop(migrating);

        // `recover()` of every device: each counts as asked for from the call on, not only once
        // its turn comes after the device before it.
        let options =
            RuntimeOptions::default().with_backend(BackendChoice::Cpu).with_devices([DeviceSpec::default(); 2]);
        let rt = pollster::block_on(Runtime::new(options)).unwrap();
        for device in [0, 1] {
            rt.shared.lock().device(DeviceId(device)).lost = Some(Error::DeviceLost { reason: "gone".into() });
        }
        let migrating = pollster::block_on(rt.shared.recovering.lock());
        let mut recovery = Box::pin(crate::recovery::recover_all(&rt.shared));
        pollster::block_on(async { assert!(futures_util::poll!(recovery.as_mut()).is_pending()) });
        assert!(matches!(rt.health().status, HealthStatus::Degraded(_)), "{:?}", rt.health().status);
        drop((recovery, migrating));
    }

    /// A device whose turn of a `recover()` of every device has ended counts as asked for no
    /// more: lost again while a later device's turn is under way (compiling its kernel on a
    /// helper thread), it waits for the next `recover()`, and health says so.
    #[test]
    fn a_device_lost_again_after_its_turn_of_recover_all_needs_recover_again() {
        let options =
            RuntimeOptions::default().with_devices([DeviceSpec::new(BackendChoice::Cpu), DeviceSpec::default()]);
        let rt = pollster::block_on(Runtime::new(options)).expect("a cpu device and a GPU device");
        let on_gpu = crate::LaunchOptions::default().on_device(DeviceId(1));
        pollster::block_on(rt.launch("doubler", on_gpu)).unwrap();
        rt.destroy_device_at(DeviceId(1)).unwrap();
        // The loss failed the kernel's operations: reported once, by this check.
        assert!(matches!(rt.health().status, HealthStatus::Unhealthy(_)));
        let lose_cpu = |reason: &str| {
            rt.shared.lock().device(DeviceId(0)).lost = Some(Error::DeviceLost { reason: reason.into() });
        };
        lose_cpu("gone");
        let mut recovery = Box::pin(crate::recovery::recover_all(&rt.shared));
        let polled = pollster::block_on(async { futures_util::poll!(recovery.as_mut()) });
        assert!(polled.is_pending(), "device 1's turn compiles its kernel on a helper thread");
        assert!(rt.shared.lock().device(DeviceId(0)).lost.is_none(), "device 0's turn came first");
        lose_cpu("again");
        let needs = HealthStatus::Unhealthy("the device is lost (device 0: again); call recover()".into());
        assert_eq!(rt.health().status, needs);
        pollster::block_on(recovery).unwrap();
        assert_eq!(rt.health().status, needs);
        pollster::block_on(rt.recover()).unwrap();
        assert_eq!(rt.health().status, HealthStatus::Healthy);
    }

    /// Of several lost devices, health reports the one that needs the application: a device
    /// waiting for `recover()` is not hidden behind one recovering, nor a failed recovery
    /// behind either.
    #[test]
    fn of_several_lost_devices_health_reports_the_one_that_needs_the_application() {
        let options =
            RuntimeOptions::default().with_backend(BackendChoice::Cpu).with_devices([DeviceSpec::default(); 3]);
        let rt = pollster::block_on(Runtime::new(options)).unwrap();
        let lose = |device: u32, reason: &str| {
            rt.shared.lock().device(DeviceId(device)).lost = Some(Error::DeviceLost { reason: reason.into() });
        };
        lose(0, "first");
        rt.shared.lock().device(DeviceId(0)).recovering = 1;
        lose(1, "second");
        let status = rt.health().status;
        assert_eq!(status, HealthStatus::Unhealthy("the device is lost (device 1: second); call recover()".into()));
        lose(2, "third");
        rt.shared.lock().device(DeviceId(2)).recovery_error = Some("no adapter".into());
        let status = rt.health().status;
        assert!(matches!(&status, HealthStatus::Unhealthy(why) if why.contains("third") && why.contains("no adapter")));
        // The summary names the same device, with its own recovery error.
        let device = rt.summary().device;
        assert_eq!(
            (device.lost.as_deref(), device.recovery_error.as_deref()),
            (Some("device 2: third"), Some("no adapter"))
        );
    }
}

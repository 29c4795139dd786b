//! Resilience: each kernel's circuit breaker as a handle ([`CircuitBreaker`]), and the kernel
//! watchdog ([`KernelWatchdog`]).
//!
//! What a breaker counts, and where: handler errors (the tick's delivery), a lost device (for
//! each kernel on it, where recovery declares the loss), timed-out calls and receives that
//! waited and timed out while the kernel had input and made no progress (where the runtime
//! counts errors), and whatever [`CircuitBreaker::execute`] protects. A tick that answered a
//! kernel's messages without a handler error is a success. While a circuit is open, sends,
//! batches and calls are refused with [`Error::CircuitOpen`] before anything is queued (see the
//! `circuit` module for the state machine itself).

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::Runtime;
use crate::circuit::{CircuitState, CircuitStatus};
use crate::devices::DeviceId;
use crate::error::{BatchSendError, Error, ErrorKind, Result};
use crate::lifecycle::KernelState;
use crate::platform;
use crate::recovery;
use crate::table::Failed;
use crate::watchdog::{StaleKernel, WatchdogAction};

/// One kernel's circuit breaker (the seed's `runtime.circuit_breaker()`), from
/// [`Runtime::circuit_breaker`]. Cheap to clone. With breakers off
/// (`RuntimeOptions::circuit_breaker` unset) it is always closed and refuses nothing.
#[derive(Clone)]
pub struct CircuitBreaker {
    runtime: Runtime,
    id: Arc<str>,
    /// The launch it belongs to: a kernel launched again under the id has a circuit of its own,
    /// which this handle never reaches (as a `KernelHandle` never reaches it).
    instance: u64,
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker").field("kernel", &self.id).finish()
    }
}

impl CircuitBreaker {
    /// The kernel whose circuit this is.
    pub fn kernel_id(&self) -> &str {
        &self.id
    }

    /// Where the circuit is now (`KernelNotFound` once the kernel is removed).
    pub fn state(&self) -> Result<CircuitState> {
        Ok(self.status()?.state)
    }

    /// The state with the failures of the current run, how often it opened, and when a refused
    /// operation may be tried again.
    pub fn status(&self) -> Result<CircuitStatus> {
        self.check_launch()?;
        self.runtime.circuit_status(&self.id)
    }

    /// `KernelNotFound` unless its kernel is still the launch it was made for.
    fn check_launch(&self) -> Result<()> {
        match self.runtime.shared.lock().kernels.get(&*self.id) {
            Some(kernel) if kernel.instance == self.instance => Ok(()),
            _ => Err(Error::KernelNotFound { id: self.id.to_string() }),
        }
    }

    /// Runs a protected operation of the caller's: refused with `CircuitOpen` (converted into
    /// `E`) without running it while the circuit refuses work, otherwise run, its `Err` counted
    /// as a failure and its `Ok` as a success of the kernel's circuit. An `Err` that is an
    /// [`Error`] (or a [`BatchSendError`]) turning the operation away before the kernel had its
    /// message (`CircuitOpen`, `QueueFull`, `Overloaded`) counts as neither: the kernel did not
    /// fail (a typed handle's `SendError` is told once converted into its `Error`). It takes no
    /// half-open probe itself, so an operation that sends to the kernel takes the probe with
    /// its send, and one that finds the probe taken by another is refused without reopening
    /// the circuit.
    ///
    /// ```no_run
    /// # async fn demo(runtime: ringkernel_web::Runtime) -> ringkernel_web::Result<()> {
    /// use ringkernel_web::Value;
    /// let circuit = runtime.circuit_breaker("doubler")?;
    /// let message = [("value", Value::from(2))];
    /// let answer = circuit.execute(|| runtime.call("doubler", &message, None)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn execute<T, E, F, Fut>(&self, operation: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<Error> + 'static,
    {
        let failed = |error: &E| {
            let error: &dyn Any = error;
            let batch = || error.downcast_ref::<BatchSendError>().map(|batch| &batch.error);
            !error
                .downcast_ref::<Error>()
                .or_else(batch)
                .is_some_and(|error| ErrorKind::TURNED_AWAY.contains(&error.kind()))
        };
        self.execute_judged(operation, failed).await
    }

    /// [`execute`](Self::execute), with which of the operation's errors are the kernel's
    /// failures told by `failed` (the JavaScript layer tells its errors by their names).
    pub(crate) async fn execute_judged<T, E, F, Fut>(
        &self,
        operation: F,
        failed: impl FnOnce(&E) -> bool,
    ) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        {
            let mut table = self.runtime.open_table()?;
            let kernel = table.kernel(&self.id)?;
            if kernel.instance != self.instance {
                return Err(Error::KernelNotFound { id: self.id.to_string() }.into());
            }
            kernel.circuit_check(&self.id, platform::now_ms())?;
        }
        let outcome = operation().await;
        let mut table = self.runtime.shared.lock();
        // Not for a kernel launched again under the same id meanwhile.
        if let Some(kernel) = table.launch_of(&self.id, self.instance) {
            match &outcome {
                Ok(_) => kernel.circuit_success(platform::now_ms()),
                Err(error) if failed(error) => kernel.circuit_failures(1, Failed::Operations, platform::now_ms()),
                Err(_) => {}
            }
        }
        outcome
    }
}

/// The kernel watchdog (the seed's `runtime.kernel_watchdog()`), from
/// [`Runtime::kernel_watchdog`]: its settings are the runtime's, shared by every clone.
#[derive(Clone)]
pub struct KernelWatchdog {
    runtime: Runtime,
}

impl std::fmt::Debug for KernelWatchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelWatchdog").field("heartbeat_timeout", &self.heartbeat_timeout()).finish()
    }
}

impl KernelWatchdog {
    /// How long a kernel with input may go without progress before it is stale.
    pub fn heartbeat_timeout(&self) -> Duration {
        self.runtime.shared.lock().watchdog.heartbeat_timeout
    }

    /// Sets the heartbeat timeout for later scans (`Disposed` once the runtime has stopped:
    /// no scan will run).
    pub fn set_heartbeat_timeout(&self, timeout: Duration) -> Result<()> {
        let mut table = self.runtime.open_table()?;
        table.watchdog.heartbeat_timeout = crate::watchdog::checked_heartbeat(timeout)?;
        Ok(())
    }

    /// What a scan does with the stale kernels it finds.
    pub fn action(&self) -> WatchdogAction {
        self.runtime.shared.lock().watchdog.action
    }

    /// Sets what later scans do with stale kernels (`Disposed` once the runtime has stopped).
    pub fn set_action(&self, action: WatchdogAction) -> Result<()> {
        self.runtime.open_table()?.watchdog.action = action;
        Ok(())
    }

    /// Lists the stale kernels (see [`Runtime::scan_stale_kernels`]) and applies the action.
    pub async fn scan_stale_kernels(&self) -> Result<Vec<StaleKernel>> {
        self.runtime.scan_stale_kernels().await
    }
}

impl Runtime {
    /// The circuit breaker of kernel `id` (`KernelNotFound` if there is none).
    pub fn circuit_breaker(&self, id: &str) -> Result<CircuitBreaker> {
        let mut table = self.open_table()?;
        let instance = self.kernel_in(&mut table, id)?.instance;
        drop(table);
        Ok(CircuitBreaker { runtime: self.clone(), id: id.into(), instance })
    }

    /// Kernel `id`'s circuit now (closed, with nothing counted, while breakers are off).
    pub fn circuit_status(&self, id: &str) -> Result<CircuitStatus> {
        let mut table = self.shared.lock();
        let kernel = self.kernel_in(&mut table, id)?;
        let now = platform::now_ms();
        Ok(match &kernel.breaker {
            Some(breaker) => breaker.status(now),
            None => CircuitStatus { state: CircuitState::Closed, failures: 0, opened: 0, retry_after: None },
        })
    }

    /// The kernel watchdog.
    pub fn kernel_watchdog(&self) -> KernelWatchdog {
        KernelWatchdog { runtime: self.clone() }
    }

    /// Kernels that run (active, or draining to terminate, on a live device), have input, and made no progress
    /// for the watchdog's heartbeat timeout, sorted by id; then the watchdog's action is applied
    /// to them (see [`WatchdogAction`]), and each record says what was done. A device that
    /// `RecoverDevice` fails to recover stays lost; the others are still recovered, and the first
    /// failure is the scan's error.
    pub async fn scan_stale_kernels(&self) -> Result<Vec<StaleKernel>> {
        let (mut stale, action, not_the_device) = {
            let table = self.open_table()?;
            let (timeout, action) = (table.watchdog.heartbeat_timeout, table.watchdog.action);
            let now = platform::now_ms();
            // Stale because of a stall the device is not why of: its answers, or a later
            // stage's, wait for a receiver (an output queue is full), or a later stage is not
            // active. A new device would change none of that, so `RecoverDevice` leaves it to
            // the report.
            let mut not_the_device = Vec::new();
            // In the order of `running_ids` (sorted), so nothing else needs sorting. Pushed, as
            // the lists below are: each `collect` was a copy of `Vec`'s `from_iter` in the wasm.
            let mut stale = Vec::new();
            for id in table.running_ids(None) {
                let k = &table.kernels[&id];
                let Some(since) = k.stale_for(now, timeout) else { continue };
                if table.stall_cause(&id).is_some() {
                    not_the_device.push(id.clone());
                }
                let input_depth = k.input_depth();
                stale.push(StaleKernel {
                    kernel_id: id,
                    input_depth,
                    since_progress: since,
                    action: WatchdogAction::Report,
                });
            }
            (stale, action, not_the_device)
        };
        match action {
            WatchdogAction::Deactivate => {
                for kernel in &mut stale {
                    // Only an active kernel can be deactivated; one draining to terminate is
                    // reported.
                    if self.state(&kernel.kernel_id) == Ok(KernelState::Active)
                        && self.deactivate(&kernel.kernel_id).await.is_ok()
                    {
                        kernel.action = WatchdogAction::Deactivate;
                    }
                }
            }
            WatchdogAction::RecoverDevice if !stale.is_empty() => {
                let stuck = |k: &&StaleKernel| !not_the_device.contains(&k.kernel_id);
                let on = |device: DeviceId| {
                    move |k: &&StaleKernel| stuck(k) && self.device_of(&k.kernel_id).ok() == Some(device)
                };
                // Each device with a stale kernel on it is replaced, once, in id order (taken
                // from the device list rather than sorted: no sort of its own in the wasm).
                let mut devices = Vec::new();
                for device in self.shared.device_ids() {
                    // The application's device is neither the runtime's to destroy nor to
                    // replace (see `crate::shared_device`): its kernels are reported.
                    if stale.iter().any(|k| on(device)(&k))
                        && self.shared.device(device).gpu().is_some()
                        && !self.shared.is_shared(device)
                    {
                        devices.push(device);
                    }
                }
                // A recovery that fails leaves its device lost (its error in the summary and
                // health) and the rest still tried; the first failure is the scan's, as
                // `recover`'s is.
                let mut recovered = Ok(());
                for &device in &devices {
                    let mut on_it = Vec::new();
                    for k in stale.iter().filter(on(device)) {
                        on_it.push(k.kernel_id.as_str());
                    }
                    let reason = format!("the watchdog found kernels stale: {}", crate::error::joined(&on_it, ", "));
                    self.lose_device(device, &reason, &|id| on_it.contains(&id));
                    let result = recovery::recover_device(&self.shared, device).await;
                    if recovered.is_ok() {
                        recovered = result;
                    }
                }
                recovered?;
                for kernel in &mut stale {
                    if stuck(&&*kernel) && self.device_of(&kernel.kernel_id).is_ok_and(|d| devices.contains(&d)) {
                        kernel.action = WatchdogAction::RecoverDevice;
                    }
                }
            }
            _ => {}
        }
        Ok(stale)
    }

    /// Ids of the kernels the watchdog would call stale now, sorted (no action applied).
    pub fn stale_kernel_ids(&self) -> Vec<String> {
        let table = self.shared.lock();
        let now = platform::now_ms();
        let timeout = table.watchdog.heartbeat_timeout;
        let mut ids = table.running_ids(None);
        ids.retain(|id| {
            let k = &table.kernels[id];
            k.stale_for(now, timeout).is_some()
        });
        ids
    }

    /// Declares the GPU `device` lost at once, rather than when the tick notices, so recovery
    /// that follows has a loss to recover, then destroys it (which also ends a tick waiting on
    /// it). The loss counts against the circuit breakers of the kernels `charged` names: declared
    /// first, it is this call's, not that of a tick the destruction fails, which would charge
    /// every kernel on the device (that tick's delivery finds its generation gone).
    pub(super) fn lose_device(&self, device: DeviceId, reason: &str, charged: &dyn Fn(&str) -> bool) {
        let generation = self.shared.lock().device(device).generation;
        // The device as it is now: a recovery that replaces it meanwhile keeps its new one.
        let lost_device = self.shared.device(device);
        let lost = Error::DeviceLost { reason: reason.to_owned() };
        recovery::fail_device_charging(&self.shared, device, lost, generation, charged);
        if let Some(gpu) = lost_device.gpu() {
            gpu.destroy(reason);
        }
        self.shared.wake();
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::sync::Arc;

    use std::time::Duration;

    use crate::devices::{DeviceId, DeviceSpec};
    use crate::health::HealthStatus;
    use crate::kernel::KernelDefinition;
    use crate::watchdog::{WatchdogAction, WatchdogConfig};
    use crate::{platform, DeviceEventKind, Error, ErrorKind, KernelState, LaunchOptions, Runtime, RuntimeOptions};

    /// With `RecoverDevice`, a device whose recovery fails (for one of its kernels) does not end
    /// the scan: every device with a stale kernel is replaced, and the failure is the scan's
    /// error, as `recover`'s is.
    #[test]
    fn a_failed_recovery_leaves_the_other_stale_devices_recovered() {
        let watchdog = WatchdogConfig::default().with_action(WatchdogAction::RecoverDevice);
        let options = RuntimeOptions::default()
            .with_devices([DeviceSpec::default(); 2])
            .with_watchdog(watchdog)
            .with_max_messages_per_tick(1);
        let rt = pollster::block_on(Runtime::new(options)).expect("GPU tests need lavapipe (mesa-vulkan-drivers)");
        // On each device a kernel starved by a busier one of higher priority, which takes every
        // one-message tick.
        const BUSY: usize = 2_000;
        pollster::block_on(async {
            for device in 0..2 {
                let on = LaunchOptions::default().on_device(DeviceId(device)).with_auto_activate();
                let busy = on.clone().with_queue_capacity(BUSY).with_priority(1);
                rt.launch_as("doubler", &format!("busy{device}"), busy).await.unwrap();
                rt.launch_as("doubler", &format!("starved{device}"), on).await.unwrap();
                rt.send_batch(&format!("busy{device}"), &[1i32; BUSY], None).await.unwrap();
                rt.send_batch(&format!("starved{device}"), &[1i32; 4], None).await.unwrap();
            }
        });
        {
            // Their last progress long ago as far as the watchdog knows; device 0's starved
            // kernel no longer compiles, so its device's recovery fails for it.
            let mut table = rt.shared.lock();
            for id in ["starved0", "starved1"] {
                table.kernels.get_mut(id).unwrap().beat(platform::now_ms() - 3_600_000.0);
            }
            let starved = table.kernels.get_mut("starved0").unwrap();
            starved.def = Arc::new(KernelDefinition { wgsl: "not WGSL".into(), ..(*starved.def).clone() });
        }
        let e = pollster::block_on(rt.kernel_watchdog().scan_stale_kernels()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KernelCompile, "{e}");
        let devices = rt.gpu_topology().devices;
        let tried = devices.iter().map(|d| (d.losses, d.recoveries, d.lost.is_some())).collect::<Vec<_>>();
        // Both devices came back, device 0 without its starved kernel, which stays failed.
        assert_eq!(tried, [(1, 1, false), (1, 1, false)], "{devices:?}");
        assert_eq!(rt.state("starved0"), Ok(KernelState::Failed));
        assert_eq!(rt.state("busy0"), Ok(KernelState::Active));
        assert_eq!(rt.state("starved1"), Ok(KernelState::Active));
        // Device events tell the same, each device's in turn, and health names the kernel.
        let events: Vec<_> = (0..rt.last_device_event())
            .map(|seen| pollster::block_on(rt.next_device_event(seen)).unwrap())
            .map(|e| (e.kind, e.device.0, e.kernels.contains(&"starved0".to_owned()), e.reason.is_some()))
            .collect();
        use crate::DeviceEventKind::{Lost, Recovered};
        let expected =
            [(Lost, 0, true, true), (Recovered, 0, false, true), (Lost, 1, false, true), (Recovered, 1, false, false)];
        assert_eq!(events, expected);
        assert!(matches!(rt.health().status, HealthStatus::Unhealthy(why) if why.contains("'starved0' could not be")));
    }

    const WAIT: Option<Duration> = Some(Duration::from_secs(10));

    /// Swaps kernel `id`'s WGSL, as a recovered adapter without a feature it enables would
    /// refuse it (no public path makes a native adapter change under a kernel).
    fn set_wgsl(rt: &Runtime, id: &str, wgsl: &str) {
        let mut table = rt.shared.lock();
        let kernel = table.kernels.get_mut(id).unwrap();
        kernel.def = Arc::new(KernelDefinition { wgsl: wgsl.into(), ..(*kernel.def).clone() });
    }

    /// One kernel that cannot be rebuilt on its recovered device no longer strands the others
    /// there: they run again, it stays failed and says why (its operations, health, the device
    /// event, `recover`'s error), a move runs it on another device with its queued messages
    /// answered once, and a terminate ends such a kernel at once with its messages counted.
    #[test]
    fn a_kernel_its_recovered_device_cannot_rebuild_stays_failed_and_the_others_run_again() {
        let options = RuntimeOptions::default().with_devices([DeviceSpec::default(); 2]);
        let rt = pollster::block_on(Runtime::new(options)).expect("GPU tests need lavapipe (mesa-vulkan-drivers)");
        pollster::block_on(async {
            let on = LaunchOptions::default().on_device(DeviceId(0));
            rt.launch_as("doubler", "kept", on.clone().with_auto_activate()).await.unwrap();
            for id in ["moved", "ended"] {
                // Launched, not active: their messages wait in their queues.
                rt.launch_as("doubler", id, on.clone()).await.unwrap();
                assert_eq!(rt.send_batch(id, &[1i32, 2, 3], WAIT).await.unwrap(), 3);
            }
            let doubler_wgsl = rt.shared.lock().kernels["moved"].def.wgsl.clone();
            rt.destroy_device_at(DeviceId(0)).unwrap();
            for id in ["moved", "ended"] {
                set_wgsl(&rt, id, "not WGSL");
            }
            let refused = rt.recover().await.unwrap_err();
            assert_eq!(refused.kind(), ErrorKind::KernelCompile, "{refused}");
            assert!(matches!(&refused, Error::KernelCompile { id, .. } if id == "moved" || id == "ended"));

            // The device and the kernel it could rebuild are back.
            assert_eq!(rt.call_pod::<i32, i32>("kept", &21, WAIT).await.unwrap(), 42);
            let device = &rt.gpu_topology().devices[0];
            assert_eq!((device.lost.is_none(), device.recoveries), (true, 1));
            let event = rt.next_device_event(rt.last_device_event() - 1).await.unwrap();
            assert_eq!((event.kind, event.kernels.as_slice()), (DeviceEventKind::Recovered, &["kept".to_owned()][..]));
            assert!(event.reason.as_deref().is_some_and(|r| r.contains("not rebuilt") && r.contains("moved")));

            // The others stay failed, each saying why, and health says so.
            assert_eq!(rt.state("moved"), Ok(KernelState::Failed));
            let failed = rt.receive_batch::<i32>("moved", 3, WAIT).await.unwrap_err();
            assert_eq!(failed.kind(), ErrorKind::DeviceLost);
            assert!(failed.to_string().contains("could not be rebuilt on device 0"), "{failed}");
            let HealthStatus::Unhealthy(why) = rt.health().status else { panic!("{:?}", rt.health()) };
            assert!(why.contains("'ended' could not be rebuilt"), "{why}");

            // A move runs it elsewhere, its queued messages answered once.
            set_wgsl(&rt, "moved", &doubler_wgsl);
            assert_eq!(rt.migrate("moved", DeviceId(1)).await.unwrap().to, DeviceId(1));
            assert_eq!(rt.state("moved"), Ok(KernelState::Launched));
            rt.activate("moved").await.unwrap();
            let mut answers = Vec::new();
            while answers.len() < 3 {
                answers.extend(rt.receive_batch::<i32>("moved", 3, WAIT).await.unwrap());
            }
            assert_eq!(answers, [2, 4, 6]);

            // A terminate ends the one left at once, with its messages counted.
            let ended = rt.terminate("ended", Some(Duration::from_secs(60))).await.unwrap_err();
            assert!(matches!(ended, Error::StrandedByDeviceLoss { unprocessed: 3, .. }), "{ended}");
            assert_eq!(rt.health().status, HealthStatus::Healthy);
            rt.shutdown().await.unwrap();
        });
    }

    /// A move to the device a failed kernel is on does not leave it failed with a report of a
    /// move made: stranded on its lost device it is refused with the loss, and once the device
    /// is recovered without it, it is rebuilt there (a retry), or refused with why not.
    #[test]
    fn a_move_of_a_failed_kernel_to_its_own_device_rebuilds_it_there_or_is_refused() {
        let rt = pollster::block_on(Runtime::new(RuntimeOptions::default())).expect("GPU tests need lavapipe");
        pollster::block_on(async {
            rt.launch_as("doubler", "stuck", LaunchOptions::default().with_auto_activate()).await.unwrap();
            let wgsl = rt.shared.lock().kernels["stuck"].def.wgsl.clone();
            assert_eq!(rt.send_batch("stuck", &[1i32, 2, 3], WAIT).await.unwrap(), 3);
            rt.destroy_device_at(DeviceId(0)).unwrap();
            let lost = rt.migrate("stuck", DeviceId(0)).await.unwrap_err();
            assert_eq!(lost.kind(), ErrorKind::DeviceLost, "{lost}");
            set_wgsl(&rt, "stuck", "not WGSL");
            assert_eq!(rt.recover().await.unwrap_err().kind(), ErrorKind::KernelCompile);
            assert_eq!(rt.state("stuck"), Ok(KernelState::Failed));
            // Still not buildable there: refused with why.
            let refused = rt.migrate("stuck", DeviceId(0)).await.unwrap_err();
            assert_eq!(refused.kind(), ErrorKind::KernelCompile, "{refused}");
            assert_eq!(rt.state("stuck"), Ok(KernelState::Failed));
            // Buildable again: it runs there, its queued messages answered once.
            set_wgsl(&rt, "stuck", &wgsl);
            rt.migrate("stuck", DeviceId(0)).await.unwrap();
            assert_eq!(rt.state("stuck"), Ok(KernelState::Active));
            let mut answers = Vec::new();
            while answers.len() < 3 {
                answers.extend(rt.receive_batch::<i32>("stuck", 3, WAIT).await.unwrap());
            }
            assert_eq!(answers, [2, 4, 6]);
            let health = rt.health();
            assert!(health.issues.iter().all(|issue| !issue.reason.contains("could not be rebuilt")), "{health:?}");
            rt.shutdown().await.unwrap();
        });
    }

    /// A kernel whose terminate's caller went away while its device was lost (it drains once
    /// recovery runs it) and which the recovered device cannot rebuild ends as that terminate
    /// would have, stranded with its messages counted, instead of staying terminating for good.
    #[test]
    fn an_orphaned_terminate_of_a_kernel_its_recovered_device_cannot_rebuild_ends_it() {
        let rt = pollster::block_on(Runtime::new(RuntimeOptions::default()))
            .expect("GPU tests need lavapipe (mesa-vulkan-drivers)");
        pollster::block_on(async {
            rt.launch_as("doubler", "orphaned", LaunchOptions::default()).await.unwrap();
            assert_eq!(rt.send_batch("orphaned", &[1i32, 2, 3], WAIT).await.unwrap(), 3);
            rt.destroy_device_at(DeviceId(0)).unwrap();
            {
                // As a terminate dropped while it waited for recovery leaves it (see
                // `Runtime::terminate`'s `OnCancel`): terminating, to end once drained.
                let mut table = rt.shared.lock();
                let kernel = table.kernels.get_mut("orphaned").unwrap();
                kernel.life.apply(crate::lifecycle::Action::Terminate).unwrap();
                kernel.ends_when_drained = true;
            }
            set_wgsl(&rt, "orphaned", "not WGSL");
            assert_eq!(rt.recover().await.unwrap_err().kind(), ErrorKind::KernelCompile);
            assert_eq!(rt.state("orphaned"), Ok(KernelState::Terminated));
            let (ended, unprocessed) = {
                let table = rt.shared.lock();
                let kernel = &table.kernels["orphaned"];
                (kernel.ended.clone(), kernel.counters.unprocessed_at_termination)
            };
            assert!(matches!(ended, Some(Error::StrandedByDeviceLoss { unprocessed: 3, .. })), "{ended:?}");
            assert_eq!(unprocessed, 3);
            rt.shutdown().await.unwrap();
        });
    }
}

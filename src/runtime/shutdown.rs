//! The runtime's own lifecycle (the seeds' enterprise runtime): `start`, `drain(timeout)` and
//! `complete_shutdown()`, which hands back a [`ShutdownReport`] accounting for every message.
//! While draining, new launches, sends and calls are refused with `Draining`; what is queued or
//! in flight completes, and answers stay receivable until the runtime stops.

use std::sync::Arc;
use std::time::Duration;

use super::Runtime;
use super::DEFAULT_TERMINATE_TIMEOUT;
use crate::error::{Error, Result};
use crate::kernel::KernelDefinition;
use crate::lifecycle::{KernelState, LifecycleState};
use crate::platform;
use crate::table::{Resources, Table};
use crate::telemetry::ShutdownReport;
use crate::waiting;

impl Runtime {
    /// The runtime's lifecycle state: `Running` from creation, `Draining` after
    /// [`drain`](Self::drain), `Stopped` after [`complete_shutdown`](Self::complete_shutdown).
    pub fn lifecycle_state(&self) -> LifecycleState {
        self.shared.lock().state
    }

    /// `Initializing → Running`. A runtime is running once created, so this only confirms it;
    /// a draining or stopped runtime cannot start again (`Draining`, `Disposed`).
    pub fn start(&self) -> Result<()> {
        let mut table = self.shared.lock();
        match table.state {
            LifecycleState::Stopped => Err(Error::Disposed),
            LifecycleState::Draining => Err(Error::Draining("start() calls")),
            _ => {
                table.state = LifecycleState::Running;
                Ok(())
            }
        }
    }

    /// `Running → Draining` now, without waiting: new launches, sends and calls are refused
    /// from here on ([`drain`](Self::drain) then finishes what is left). `Disposed` once stopped.
    pub fn begin_drain(&self) -> Result<()> {
        let mut table = self.shared.lock();
        match table.state {
            LifecycleState::Stopped => Err(Error::Disposed),
            _ => {
                table.state = LifecycleState::Draining;
                Ok(())
            }
        }
    }

    /// `Running → Draining`: refuses new launches, sends and calls from now on, and terminates
    /// every kernel gracefully, each within `timeout`, so that everything queued or in flight is
    /// processed; answers stay receivable. Past the timeout, `Timeout` says how many messages a
    /// kernel left unprocessed, or [`Error::SeveralKernels`] how many several kernels did, as
    /// [`terminate_all`](Self::terminate_all) reports (the shutdown report sums them too).
    /// Draining again waits again.
    pub async fn drain(&self, timeout: Duration) -> Result<()> {
        self.begin_drain()?;
        self.terminate_all(Some(timeout)).await
    }

    /// `→ Stopped`: drains first if that has not begun (within [`DEFAULT_TERMINATE_TIMEOUT`]),
    /// stops the tick loop, lets every memory alert callback go, releases every device (WebGPU's
    /// `device.destroy()`, once the work under way on it is done, or after a second at most;
    /// the application's own devices, [`SharedDevice`](crate::SharedDevice)s, are not destroyed:
    /// the runtime lets go of what it keeps there, and the application goes on using them)
    /// and reports the runtime's whole life. Every later operation that changes or waits on
    /// something fails with `Disposed` (queries answer with the final state); a second
    /// `complete_shutdown` hands back the same report.
    pub async fn complete_shutdown(&self) -> Result<ShutdownReport> {
        self.shared.lock().stopping = true;
        if self.lifecycle_state() == LifecycleState::Running {
            // What a drain that timed out left unprocessed is in the report.
            let _ = self.drain(DEFAULT_TERMINATE_TIMEOUT).await;
        }
        self.hand_over_drained_answers().await;
        let report = {
            let mut table = self.shared.lock();
            match &table.report {
                Some(report) => report.clone(),
                None => Self::stop(&mut table, self.shared.created_at_ms),
            }
        };
        self.shared.shut_down();
        // A stopped runtime's watches fire no more, and a callback holding the runtime would keep
        // it (its tick loop and devices) alive through them: they go, outside the lock.
        let watches = self.shared.alerts().clear();
        drop(watches);
        // Again on a second call: the first one's future may have been dropped before it.
        self.release_devices().await;
        Ok(report)
    }

    /// Lets receives that were waiting when the drain produced their answers take them before
    /// the runtime stops: woken, they have not run yet (on the web they are tasks of this
    /// thread, natively of others), and once it has stopped they would fail with `Disposed`
    /// while the answers counted as never received. While answers are left, the shutdown gives
    /// the event loop a turn, then waits as long as they keep being taken: until none is taken
    /// for 5 ms (on the web, until nothing listens for them), 100 ms at most.
    async fn hand_over_drained_answers(&self) {
        const QUIET_MS: f64 = 5.0;
        const LONGEST_MS: f64 = 100.0;
        // Answers left in output queues, and whether anything listens for a kernel holding some.
        // One loop over the kernels: each adapter chain over the table is code of its own in
        // the wasm.
        let left = || {
            let table = self.shared.lock();
            let (mut answers, mut listened) = (0, false);
            if table.state != LifecycleState::Stopped {
                for kernel in table.kernels.values() {
                    if !kernel.mailbox.outbox.is_empty() {
                        answers += kernel.mailbox.outbox.len();
                        listened |= kernel.changed.total_listeners() > 0;
                    }
                }
            }
            (answers, listened)
        };
        if left().0 == 0 {
            return;
        }
        // A turn of the page's event loop runs the receives woken on the web. (A sleep of 0 ms
        // would be ready at once.)
        platform::yield_to_event_loop().await;
        let started = platform::now_ms();
        let (mut last, mut taken_at) = (usize::MAX, started);
        loop {
            let (answers, listened) = left();
            let now = platform::now_ms();
            // Natively a woken receive no longer counts as listening: only progress tells.
            let waiting = answers > 0 && (listened || cfg!(not(target_arch = "wasm32")));
            if !waiting || now - started >= LONGEST_MS {
                return;
            }
            if answers < last {
                (last, taken_at) = (answers, now);
            } else if now - taken_at >= QUIET_MS {
                return;
            }
            platform::sleep_ms(1.0).await;
        }
    }

    /// Stops the runtime under the table lock and makes its report.
    fn stop(table: &mut Table, created_at_ms: f64) -> ShutdownReport {
        table.state = LifecycleState::Stopped;
        table.device_events.ended();
        // Whoever still waits on a kernel (a state write behind a tick that will never deliver)
        // looks again, and finds the runtime stopped.
        // The report's sums over the kernels in the same loop: each adapter chain over the
        // table is code of its own in the wasm.
        let retired = &table.retired;
        let (mut terminated, mut processed, mut unprocessed, mut never_received) =
            (retired.kernels, retired.messages_processed, retired.messages_unprocessed, retired.answers_never_received);
        for kernel in table.kernels.values() {
            kernel.notify();
            terminated += u64::from(kernel.life.state() == KernelState::Terminated);
            processed += kernel.counters.messages_processed;
            unprocessed += kernel.counters.unprocessed_at_termination;
            never_received += kernel.mailbox.outbox.len() as u64 + kernel.counters.answers_abandoned;
        }
        let report = ShutdownReport {
            total_uptime_ms: platform::now_ms() - created_at_ms,
            kernels_launched: table.launched,
            kernels_terminated: terminated,
            messages_processed: processed,
            messages_unprocessed: unprocessed,
            answers_never_received: never_received,
            device_losses: table.devices.iter().map(|d| d.generation).sum(),
            recoveries: table.devices.iter().map(|d| d.recoveries).sum(),
            migrated_kernels: table.migrations,
        };
        table.report = Some(report.clone());
        // A stopped runtime keeps of each terminated kernel what its reads show (its state in
        // the lifecycle, counters, telemetry): its queues, rings, state array and handler go
        // now, not when its last handle is collected. A handler is the user's code and holds
        // what it captured. A kernel still terminating (a drain under way past its time) keeps
        // what it holds, for that terminate to count. The queues let go no longer count
        // against the memory other runtimes launch in.
        let ended = table.kernels.values_mut().filter(|kernel| kernel.life.state() == KernelState::Terminated);
        for kernel in ended {
            table.host_queue_bytes.sub(kernel.mailbox.host_queue_bytes());
            kernel.mailbox = kernel.mailbox.let_go();
            kernel.resources = Resources::default();
            if kernel.def.host.is_some() {
                kernel.def = Arc::new(KernelDefinition { host: None, ..(*kernel.def).clone() });
            }
        }
        report
    }

    /// Destroys every GPU device the runtime opened (and stops using the application's), each
    /// between ticks. On the web and in Node nothing else would:
    /// wgpu's handles free no GPU memory when dropped there, so each runtime created and disposed
    /// kept its device's memory (Dawn in Node: about 10 MB a runtime). A tick still under way
    /// after [`RELEASE_WAIT`] fails on the released device, which after the shutdown changes
    /// nothing.
    async fn release_devices(&self) {
        let deadline = waiting::deadline(Some(RELEASE_WAIT));
        // State reads, compiles and migrations begun before the runtime stopped finish first. A
        // recovery under way destroys the device it opens itself, seeing the runtime stopped.
        self.shared.device_work_done(deadline).await;
        // Once stopped, recovery replaces no device (see `recover_locked`): the one here is it.
        for id in self.shared.device_ids() {
            let device = self.shared.device(id);
            let Some(gpu) = device.gpu() else { continue };
            let turn = self.shared.turn(id).take(deadline).await;
            gpu.destroy("the runtime was disposed");
            drop(turn);
        }
    }
}

/// How long the shutdown waits for the work under way on the devices before it releases them.
const RELEASE_WAIT: Duration = Duration::from_secs(1);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::time::Duration;

    use crate::devices::DeviceId;
    use crate::{BackendChoice, KernelState, LaunchOptions, Runtime, RuntimeOptions};

    /// A runtime on lavapipe with an active doubler that was sent `n` messages.
    fn doubler_sent(n: i32) -> Runtime {
        let options = RuntimeOptions::default().with_backend(BackendChoice::Auto);
        let rt = pollster::block_on(Runtime::new(options)).expect("GPU tests need lavapipe (mesa-vulkan-drivers)");
        pollster::block_on(async {
            rt.launch("doubler", LaunchOptions::default().with_queue_capacity(n as usize)).await.unwrap();
            rt.activate("doubler").await.unwrap();
            let values: Vec<i32> = (0..n).collect();
            rt.send_batch("doubler", &values, Some(Duration::from_secs(30))).await.unwrap();
        });
        rt
    }

    /// The shutdown destroys the device once the last tick is delivered: every message was
    /// processed, the kernel ends terminated (not failed by the device's end), and the device
    /// reports why it is gone.
    #[test]
    fn the_shutdown_releases_the_device_after_the_last_tick() {
        let rt = doubler_sent(1000);
        let report = pollster::block_on(rt.dispose()).unwrap();
        assert_eq!(report.messages_processed, 1000);
        let gpu = rt.shared.device(DeviceId(0));
        let fault = gpu.gpu().expect("a GPU device").check_fault().expect_err("the device was released");
        assert!(fault.to_string().contains("the runtime was disposed"), "{fault}");
        assert_eq!(rt.shared.lock().kernels["doubler"].life.state(), KernelState::Terminated);
    }

    /// A shutdown without a drain (after `begin_drain`) comes while ticks are under way: the
    /// device is released between ticks, so the kernel is not failed and the device not lost,
    /// and a second shutdown releases again harmlessly.
    #[test]
    fn a_shutdown_without_a_drain_releases_the_device_between_ticks() {
        let rt = doubler_sent(100_000);
        rt.begin_drain().unwrap();
        let report = pollster::block_on(rt.complete_shutdown()).unwrap();
        assert_eq!(pollster::block_on(rt.complete_shutdown()).unwrap().messages_processed, report.messages_processed);
        let mut table = rt.shared.lock();
        assert_eq!(table.kernels["doubler"].life.state(), KernelState::Active);
        assert!(table.device(DeviceId(0)).lost.is_none(), "{:?}", table.device(DeviceId(0)).lost);
    }

    /// The last handle let go on the tick loop's own thread (an alert callback that holds the
    /// dashboard and removes its own watch) cannot join that thread: the runtime still shuts down
    /// and releases its device, and the loop ends by itself.
    #[test]
    fn the_last_handle_dropped_on_the_tick_thread_still_releases_the_device() {
        use std::sync::{mpsc, Arc, Mutex, OnceLock};
        use std::time::Instant;

        let options = RuntimeOptions::default().with_backend(BackendChoice::Auto).with_memory_budget(120_000);
        let rt = pollster::block_on(Runtime::new(options)).expect("GPU tests need lavapipe (mesa-vulkan-drivers)");
        let options = LaunchOptions::default().with_queue_capacity(8192).with_auto_activate();
        pollster::block_on(rt.launch("doubler", options)).unwrap();
        let device = rt.shared.device(DeviceId(0));
        let own = Arc::new(OnceLock::new());
        let (dropped, waiting) = mpsc::channel::<()>();
        let (watch, waiting, dashboard) = (own.clone(), Mutex::new(waiting), rt.gpu_memory_dashboard());
        let id = rt
            .gpu_memory_dashboard()
            .on_alert(0.7, move |_| {
                // The test has let its handles go by the time this returns.
                let _ = waiting.lock().unwrap().recv_timeout(Duration::from_secs(60));
                assert_eq!(std::thread::current().name(), Some("ringkernel-tick"));
                dashboard.remove_alert(*watch.get().expect("set at registration"));
            })
            .unwrap();
        own.set(id).unwrap();
        // A tick of 8000 answers takes pressure past 0.7 with its readback.
        let values: Vec<i32> = (0..8000).collect();
        pollster::block_on(rt.send_batch("doubler", &values, None)).unwrap();
        drop(rt);
        dropped.send(()).unwrap();
        let released = |device: &crate::backend::Device| device.gpu().expect("a GPU").check_fault().is_err();
        let started = Instant::now();
        while !released(&device) {
            assert!(started.elapsed() < Duration::from_secs(60), "the device was never released");
            std::thread::sleep(Duration::from_millis(2));
        }
        let fault = device.gpu().unwrap().check_fault().unwrap_err();
        assert!(fault.to_string().contains("the runtime was dropped"), "{fault}");
    }
}

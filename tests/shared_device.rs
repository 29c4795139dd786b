//! Kernels on the application's own wgpu device (`SharedDevice`), natively (lavapipe): the test
//! opens its own instance, adapter and device, as a renderer would, and hands the device to the
//! runtime. Kernels run there, a copy of a kernel's state is read by the application's own pass
//! on the same device, the runtime leaves the application's handlers and the device itself
//! alone (also at shutdown), and a lost or faulted device comes back only with the device the
//! application hands, every message answered once, in order.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringkernel_web::{
    wgpu, BackendChoice, DeviceId, DeviceSpec, Error, ErrorKind, HealthStatus, LaunchOptions, Runtime, RuntimeBuilder,
    RuntimeOptions, SharedDevice, WatchdogAction, WatchdogConfig,
};

mod common;
use common::{buckets, doubled_by_own_pass, own_vulkan_device, sums};

const WAIT: Option<Duration> = Some(Duration::from_secs(10));

/// What the application's own handlers saw: uncaptured errors, and losses.
#[derive(Default)]
struct Heard {
    errors: Mutex<Vec<String>>,
    lost: Mutex<Vec<(wgpu::DeviceLostReason, String)>>,
}

/// The application's own device, on its own instance and adapter, with `limits`, and handlers of
/// its own that note what they hear in `heard`; with `forward`, they also tell the runtime
/// through the `SharedDevice` they return.
fn own_device(limits: wgpu::Limits, heard: &Arc<Heard>, forward: bool) -> (wgpu::Adapter, SharedDevice) {
    let (adapter, device, queue) = own_vulkan_device(limits);
    let shared = SharedDevice::new(device.clone(), queue);
    let (on_error, on_lost) = (heard.clone(), heard.clone());
    let (error_to_runtime, lost_to_runtime) = (shared.clone(), shared.clone());
    device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
        on_error.errors.lock().unwrap().push(error.to_string());
        if forward {
            error_to_runtime.uncaptured_error(&error);
        }
    }));
    device.set_device_lost_callback(move |reason, message| {
        on_lost.lost.lock().unwrap().push((reason, message.clone()));
        if forward {
            lost_to_runtime.device_lost(reason, &message);
        }
    });
    (adapter, shared)
}

/// A runtime on the application's device alone.
fn runtime_on(shared: &SharedDevice) -> Runtime {
    pollster::block_on(RuntimeBuilder::new().shared_device(shared.clone()).build()).unwrap()
}

/// Sends `values` as one batch and receives every answer, in order.
async fn run(rt: &Runtime, id: &str, values: std::ops::Range<i32>) -> Vec<i32> {
    let values: Vec<i32> = values.collect();
    assert_eq!(rt.send_batch(id, &values, WAIT).await.unwrap(), values.len());
    receive_all(rt, id, values.len()).await
}

/// `count` answers of kernel `id`, received in as many batches as they come in.
async fn receive_all(rt: &Runtime, id: &str, count: usize) -> Vec<i32> {
    let mut answers = Vec::new();
    while answers.len() < count {
        answers.extend(rt.receive_batch::<i32>(id, count - answers.len(), WAIT).await.unwrap());
    }
    answers
}

/// A buffer of `values` on the application's device, made by the application.
fn own_buffer(shared: &SharedDevice, values: &[i32]) -> wgpu::Buffer {
    let buffer = shared.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("own input"),
        size: 4 * values.len() as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    shared.queue().write_buffer(&buffer, 0, bytemuck::cast_slice(values));
    buffer
}

/// A buffer the device refuses (mappable for reading and storage): a validation error.
fn refused_buffer(device: &wgpu::Device) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("mappable storage"),
        size: 16,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    })
}

/// Waits until `done`, 10 s at most.
fn eventually(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(10), "never: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn kernels_run_on_the_applications_device_and_leave_it_working_after_shutdown() {
    let heard = Arc::new(Heard::default());
    let (adapter, shared) = own_device(wgpu::Limits::default(), &heard, true);
    pollster::block_on(async {
        let rt = runtime_on(&shared);
        let topology = rt.gpu_topology();
        assert_eq!(topology.devices.len(), 1, "no device of the runtime's own");
        assert_eq!(topology.devices[0].adapter.name, adapter.get_info().name);
        assert_eq!(topology.devices[0].adapter.backend, "vulkan");
        let (device, queue) = rt.wgpu_device(DeviceId(0)).unwrap().expect("a GPU device");
        assert!(device == *shared.device() && queue == *shared.queue(), "the application's own handles");

        // Send and receive, a call, a batch.
        rt.launch("doubler", LaunchOptions::default().with_auto_activate()).await.unwrap();
        rt.send_pod("doubler", &21, WAIT).await.unwrap();
        assert_eq!(rt.receive_pod::<i32>("doubler", WAIT).await.unwrap(), 42);
        assert_eq!(rt.call_pod::<i32, i32>("doubler", &-4, WAIT).await.unwrap(), -8);
        let doubled: Vec<i32> = (0..500).map(|v| v * 2).collect();
        assert_eq!(run(&rt, "doubler", 0..500).await, doubled);

        // The kernel's state, copied on the device, read by the application's own pass there.
        rt.launch_definition(buckets("buckets"), LaunchOptions::default().with_auto_activate()).await.unwrap();
        assert_eq!(run(&rt, "buckets", 0..1000).await, (0..1000).collect::<Vec<_>>());
        let copy = rt.state_to_gpu("buckets").unwrap();
        let expected: Vec<i32> = sums(0..1000).iter().map(|s| s * 2).collect();
        assert_eq!(doubled_by_own_pass(shared.device(), shared.queue(), &copy, 4), expected);
        assert!(heard.errors.lock().unwrap().is_empty(), "{:?}", heard.errors.lock().unwrap());

        rt.shutdown().await.unwrap();
        assert_eq!(rt.memory_report().used_bytes, 0, "the runtime let go of its buffers there");
        // The device is the application's still: its work runs, the copy is there, and its own
        // handlers hear of its errors and its loss.
        assert_eq!(
            doubled_by_own_pass(shared.device(), shared.queue(), &own_buffer(&shared, &[1, 2, 3]), 3),
            [2, 4, 6]
        );
        assert_eq!(doubled_by_own_pass(shared.device(), shared.queue(), &copy, 4), expected);
        assert!(heard.errors.lock().unwrap().is_empty(), "{:?}", heard.errors.lock().unwrap());
        let _refused = refused_buffer(shared.device());
        assert_eq!(heard.errors.lock().unwrap().len(), 1, "the application's error handler is still its own");
        shared.device().destroy();
        let _ = shared.device().poll(wgpu::PollType::Poll);
        let lost = heard.lost.lock().unwrap().clone();
        assert_eq!(lost.len(), 1, "the application's lost callback is still its own: {lost:?}");
        assert_eq!(lost[0].0, wgpu::DeviceLostReason::Destroyed);
    });
    drop(shared);
}

#[test]
fn a_device_too_small_for_a_kernel_is_refused_at_build() {
    let heard = Arc::new(Heard::default());
    let (_adapter, shared) = own_device(wgpu::Limits::downlevel_webgl2_defaults(), &heard, false);
    let refused = pollster::block_on(RuntimeBuilder::new().shared_device(shared.clone()).build()).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::BackendUnavailable, "{refused}");
    let message = refused.to_string();
    assert!(message.contains("the application's device"), "{message}");
    assert!(message.contains("max_storage_buffers_per_shader_stage is 0, kernels need at least 4"), "{message}");
    assert!(message.contains("max_compute_workgroups_per_dimension is 0"), "{message}");

    // Handed as a replacement, it is refused the same way, and the kernels stay where they are.
    let (_adapter, good) = own_device(wgpu::Limits::default(), &heard, false);
    let rt = runtime_on(&good);
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default().with_auto_activate()).await.unwrap();
        let refused = rt.replace_shared_device(DeviceId(0), shared.clone()).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::BackendUnavailable, "{refused}");
        assert_eq!(rt.call_pod::<i32, i32>("doubler", &5, WAIT).await.unwrap(), 10);
        assert!(rt.gpu_topology().devices[0].lost.is_none());
        rt.shutdown().await.unwrap();
    });
}

#[test]
fn the_same_device_handed_twice_is_refused_at_build() {
    let heard = Arc::new(Heard::default());
    let (_adapter, shared) = own_device(wgpu::Limits::default(), &heard, false);
    let (_other_adapter, other) = own_device(wgpu::Limits::default(), &heard, false);
    let twice =
        RuntimeBuilder::new().shared_device(shared.clone()).shared_device(other.clone()).shared_device(shared.clone());
    let refused = pollster::block_on(twice.build()).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidArgument, "{refused}");
    assert!(refused.to_string().contains("the same device twice (entries 0 and 2)"), "{refused}");
    // wgpu compares devices by an id that two instances' first devices share; these are two.
    assert_ne!(shared, other);
    assert_eq!(shared, shared.clone());
    // Once each, the device serves two runtimes as well as one.
    let (first, second) = (runtime_on(&shared), runtime_on(&shared));
    pollster::block_on(async {
        for rt in [&first, &second] {
            rt.launch("doubler", LaunchOptions::default().with_auto_activate()).await.unwrap();
            assert_eq!(rt.call_pod::<i32, i32>("doubler", &21, WAIT).await.unwrap(), 42);
            rt.shutdown().await.unwrap();
        }
    });
}

#[test]
fn shared_devices_follow_the_devices_the_runtime_opens_and_only_they_are_replaced_by_the_application() {
    let heard = Arc::new(Heard::default());
    let (_adapter, shared) = own_device(wgpu::Limits::default(), &heard, false);
    let options = RuntimeOptions::default()
        .with_devices([DeviceSpec::new(BackendChoice::Cpu)])
        .with_shared_device(shared.clone());
    let rt = pollster::block_on(Runtime::new(options)).unwrap();
    let backends: Vec<_> = rt.gpu_topology().devices.iter().map(|d| d.adapter.backend.clone()).collect();
    assert_eq!(backends, ["cpu", "vulkan"]);
    pollster::block_on(async {
        let not_shared = rt.replace_shared_device(DeviceId(0), shared.clone()).await.unwrap_err();
        assert_eq!(not_shared.kind(), ErrorKind::InvalidArgument, "{not_shared}");
        let missing = rt.replace_shared_device(DeviceId(2), shared.clone()).await.unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::OutOfRange, "{missing}");
        rt.launch("doubler", LaunchOptions::default().on_device(DeviceId(1)).with_auto_activate()).await.unwrap();
        assert_eq!(rt.call_pod::<i32, i32>("doubler", &3, WAIT).await.unwrap(), 6);
        rt.shutdown().await.unwrap();
    });
    // device_index picks the device a runtime opens when given none: with a shared device
    // there is none to pick.
    let options = RuntimeOptions::default().with_device_index(1).with_shared_device(shared.clone());
    let refused = pollster::block_on(Runtime::new(options)).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidArgument, "{refused}");
}

/// `gpu_topology()` marks the application's device, and only it: not a GPU device the runtime
/// opened on the same adapter, nor the cpu backend.
#[test]
fn the_topology_marks_the_applications_device_and_only_it() {
    let heard = Arc::new(Heard::default());
    let (_adapter, shared) = own_device(wgpu::Limits::default(), &heard, false);
    let opened = [DeviceSpec::new(BackendChoice::Vulkan), DeviceSpec::new(BackendChoice::Cpu)];
    let options = RuntimeOptions::default().with_devices(opened).with_shared_device(shared.clone());
    let rt = pollster::block_on(Runtime::new(options)).unwrap();
    let marked: Vec<_> = rt.gpu_topology().devices.iter().map(|d| (d.adapter.backend.clone(), d.shared)).collect();
    assert_eq!(marked, [("vulkan".to_owned(), false), ("cpu".to_owned(), false), ("vulkan".to_owned(), true)]);
    pollster::block_on(rt.shutdown()).unwrap();
}

/// An uncaptured error the application forwards fails the kernels (their messages kept), as
/// on a device the runtime opened; `recover` cannot replace the application's device and says
/// so, and the application hands the same device back, which still works.
#[test]
fn a_forwarded_uncaptured_error_fails_the_kernels_until_the_application_hands_the_device_back() {
    let heard = Arc::new(Heard::default());
    let (_adapter, shared) = own_device(wgpu::Limits::default(), &heard, true);
    let rt = pollster::block_on(RuntimeBuilder::production().shared_device(shared.clone()).build()).unwrap();
    pollster::block_on(async {
        rt.launch_definition(buckets("buckets"), LaunchOptions::default().with_auto_activate()).await.unwrap();
        assert_eq!(run(&rt, "buckets", 0..100).await, (0..100).collect::<Vec<_>>());
        let _refused = refused_buffer(shared.device());
        assert_eq!(heard.errors.lock().unwrap().len(), 1, "the application's handler heard it");
        eventually("the runtime declares the device lost", || rt.gpu_topology().devices[0].lost.is_some());
        let lost_event = rt.last_device_event();
        let lost = rt.call_pod::<i32, i32>("buckets", &7, WAIT).await.unwrap_err();
        assert_eq!(lost.kind(), ErrorKind::DeviceLost, "{lost}");
        assert!(lost.to_string().contains("uncaptured GPU error"), "{lost}");
        assert!(lost.to_string().contains("application's device"), "{lost}");
        rt.send_batch("buckets", &(100..200).collect::<Vec<i32>>(), WAIT).await.unwrap();
        // Automatic recovery (the production preset's) leaves the application's device alone.
        std::thread::sleep(Duration::from_millis(300));
        let device = &rt.gpu_topology().devices[0];
        assert!(device.lost.is_some() && device.recoveries == 0, "{device:?}");
        assert_eq!(rt.last_device_event(), lost_event, "no automatic attempt, failed or not");
        // Health says what brings it back: not a recovery of the runtime's own.
        let HealthStatus::Unhealthy(why) = rt.health().status else { panic!("{:?}", rt.health()) };
        assert!(why.contains("hand it back, or its replacement, with replace_shared_device()"), "{why}");
        let refused = rt.recover().await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::BackendUnavailable, "{refused}");
        assert!(refused.to_string().contains("replace_shared_device"), "{refused}");

        rt.replace_shared_device(DeviceId(0), shared.clone()).await.unwrap();
        // The call was refused (the device known lost): its message was never taken. Those
        // sent are answered once each, in order, and the state reflects each once.
        assert_eq!(receive_all(&rt, "buckets", 100).await, (100..200).collect::<Vec<_>>());
        assert_eq!(rt.read_state_as::<i32>("buckets").await.unwrap(), sums(0..200));
        assert_eq!(rt.gpu_topology().devices[0].recoveries, 1);
        rt.shutdown().await.unwrap();
    });
    assert!(heard.lost.lock().unwrap().is_empty(), "the device was never destroyed");
}

/// The application destroys its device: its own lost callback hears of it (the runtime
/// installed none), the kernels fail with `DeviceLost` keeping their messages, and the
/// application hands a new device, on which they come back with their state.
fn a_lost_device_comes_back_with_the_one_the_application_hands(forward: bool) {
    let heard = Arc::new(Heard::default());
    let (adapter, shared) = own_device(wgpu::Limits::default(), &heard, forward);
    let rt = pollster::block_on(RuntimeBuilder::production().shared_device(shared.clone()).build()).unwrap();
    pollster::block_on(async {
        rt.launch_definition(buckets("buckets"), LaunchOptions::default().with_auto_activate()).await.unwrap();
        assert_eq!(run(&rt, "buckets", 0..100).await, (0..100).collect::<Vec<_>>());
        shared.device().destroy();
        let _ = shared.device().poll(wgpu::PollType::Poll);
        assert_eq!(heard.lost.lock().unwrap().len(), 1, "the application's lost callback heard it");
        if forward {
            // Told, the runtime knows at once, idle as it is.
            eventually("the runtime declares the device lost", || rt.gpu_topology().devices[0].lost.is_some());
        }
        // Untold, it finds out from its next tick.
        let lost = rt.call_pod::<i32, i32>("buckets", &7, WAIT).await.unwrap_err();
        assert_eq!(lost.kind(), ErrorKind::DeviceLost, "{lost}");
        if forward {
            // wgpu's message for a destroyed device is empty: no dangling separator.
            assert!(lost.to_string().contains("Destroyed (the application's device)"), "{lost}");
        }
        rt.send_batch("buckets", &(100..200).collect::<Vec<i32>>(), WAIT).await.unwrap();
        assert_eq!(rt.recover().await.unwrap_err().kind(), ErrorKind::BackendUnavailable);

        let (device, queue) = pollster::block_on(adapter.request_device(&Default::default())).unwrap();
        let replacement = SharedDevice::new(device, queue);
        rt.replace_shared_device(DeviceId(0), replacement.clone()).await.unwrap();
        let (device, _) = rt.wgpu_device(DeviceId(0)).unwrap().unwrap();
        assert!(device == *replacement.device(), "the kernels run on the replacement");
        assert!(rt.gpu_topology().devices[0].shared, "the replacement is the application's device too");
        // Told, the runtime refused the call (the device known lost). Untold, it took the
        // call's message, which stayed queued when its tick failed: processed before the batch
        // (its answer discarded, as a failed call's is). Either way each message sent is
        // answered once, in order, and the state reflects each once.
        assert_eq!(receive_all(&rt, "buckets", 100).await, (100..200).collect::<Vec<_>>());
        let mut expected = sums(0..200);
        if !forward {
            expected[3] += 7;
        }
        assert_eq!(rt.read_state_as::<i32>("buckets").await.unwrap(), expected);
        let copy = rt.state_to_gpu("buckets").unwrap();
        let doubled: Vec<i32> = expected.iter().map(|s| s * 2).collect();
        assert_eq!(doubled_by_own_pass(replacement.device(), replacement.queue(), &copy, 4), doubled);
        rt.shutdown().await.unwrap();
        assert_eq!(
            doubled_by_own_pass(replacement.device(), replacement.queue(), &own_buffer(&replacement, &[5]), 1),
            [10]
        );
    });
}

#[test]
fn a_lost_device_the_application_tells_of_comes_back_with_its_replacement() {
    a_lost_device_comes_back_with_the_one_the_application_hands(true);
}

#[test]
fn a_lost_device_the_runtime_finds_out_about_comes_back_with_its_replacement() {
    a_lost_device_comes_back_with_the_one_the_application_hands(false);
}

/// `destroy_device_at` declares the application's device lost without destroying it (the
/// application's work goes on), and handing the same device back recovers the kernels.
#[test]
fn destroy_device_declares_the_applications_device_lost_without_destroying_it() {
    let heard = Arc::new(Heard::default());
    let (_adapter, shared) = own_device(wgpu::Limits::default(), &heard, true);
    let rt = runtime_on(&shared);
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default().with_auto_activate()).await.unwrap();
        assert_eq!(rt.call_pod::<i32, i32>("doubler", &1, WAIT).await.unwrap(), 2);
        rt.destroy_device().unwrap();
        assert_eq!(rt.call_pod::<i32, i32>("doubler", &2, WAIT).await.unwrap_err().kind(), ErrorKind::DeviceLost);
        assert_eq!(doubled_by_own_pass(shared.device(), shared.queue(), &own_buffer(&shared, &[4]), 1), [8]);
        assert!(heard.lost.lock().unwrap().is_empty(), "{:?}", heard.lost.lock().unwrap());
        rt.replace_shared_device(DeviceId(0), shared.clone()).await.unwrap();
        // The call made while the device was lost was refused, its message not taken.
        assert_eq!(rt.call_pod::<i32, i32>("doubler", &3, WAIT).await.unwrap(), 6);
        assert_eq!(rt.shutdown().await.unwrap().messages_processed, 2, "1 and 3");
    });
    assert!(heard.errors.lock().unwrap().is_empty(), "{:?}", heard.errors.lock().unwrap());
}

/// Replacing a device that works moves the kernels onto the new one, their messages and state
/// with them.
#[test]
fn a_working_device_is_replaced_without_losing_a_message() {
    let heard = Arc::new(Heard::default());
    let (adapter, shared) = own_device(wgpu::Limits::default(), &heard, true);
    let rt = runtime_on(&shared);
    pollster::block_on(async {
        rt.launch_definition(buckets("buckets"), LaunchOptions::default().with_auto_activate()).await.unwrap();
        let values: Vec<i32> = (0..2000).collect();
        rt.send_batch("buckets", &values, WAIT).await.unwrap();
        let (device, queue) = pollster::block_on(adapter.request_device(&Default::default())).unwrap();
        rt.replace_shared_device(DeviceId(0), SharedDevice::new(device, queue)).await.unwrap();
        assert_eq!(receive_all(&rt, "buckets", values.len()).await, values, "each answered once, in order");
        assert_eq!(rt.read_state_as::<i32>("buckets").await.unwrap(), sums(0..2000));
        rt.shutdown().await.unwrap();
    });
    // The old device was the application's: not destroyed.
    assert!(heard.lost.lock().unwrap().is_empty());
    assert_eq!(doubled_by_own_pass(shared.device(), shared.queue(), &own_buffer(&shared, &[6]), 1), [12]);
}

/// A kernel terminated while the application's device is lost ends at once, stranded with its
/// unprocessed messages counted: automatic recovery (on here) never brings such a device back,
/// so nothing is waited for.
#[test]
fn a_kernel_terminated_on_a_lost_shared_device_ends_stranded_at_once() {
    let heard = Arc::new(Heard::default());
    let (_adapter, shared) = own_device(wgpu::Limits::default(), &heard, true);
    let rt = pollster::block_on(RuntimeBuilder::production().shared_device(shared.clone()).build()).unwrap();
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default().with_auto_activate()).await.unwrap();
        assert_eq!(rt.call_pod::<i32, i32>("doubler", &1, WAIT).await.unwrap(), 2);
        shared.device().destroy();
        let _ = shared.device().poll(wgpu::PollType::Poll);
        eventually("the runtime declares the device lost", || rt.gpu_topology().devices[0].lost.is_some());
        rt.send_batch("doubler", &[1, 2, 3], WAIT).await.unwrap();
        let started = Instant::now();
        let ended = rt.terminate("doubler", Some(Duration::from_secs(5))).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "waited {:?}", started.elapsed());
        assert_eq!(ended.kind(), ErrorKind::DeviceLost, "{ended}");
        assert!(matches!(ended, Error::StrandedByDeviceLoss { unprocessed: 3, .. }), "{ended}");
        rt.shutdown().await.unwrap();
    });
}

/// The watchdog's `RecoverDevice` neither destroys nor replaces the application's device: a
/// kernel starved by one of higher priority on it is reported, and nothing is lost.
#[test]
fn the_watchdog_reports_stale_kernels_on_the_applications_device() {
    const HEARTBEAT: Duration = Duration::from_millis(500);
    const BUSY: i32 = 20_000;
    let heard = Arc::new(Heard::default());
    let (_adapter, shared) = own_device(wgpu::Limits::default(), &heard, true);
    let watchdog =
        WatchdogConfig::default().with_heartbeat_timeout(HEARTBEAT).with_action(WatchdogAction::RecoverDevice);
    let options = RuntimeOptions::default()
        .with_watchdog(watchdog)
        .with_max_messages_per_tick(1)
        .with_shared_device(shared.clone());
    let rt = pollster::block_on(Runtime::new(options)).unwrap();
    pollster::block_on(async {
        let busy = LaunchOptions::default().with_queue_capacity(BUSY as usize).with_priority(1).with_auto_activate();
        rt.launch_as("doubler", "busy", busy).await.unwrap();
        rt.launch_as("doubler", "starved", LaunchOptions::default().with_auto_activate()).await.unwrap();
        rt.send_batch("busy", &(1..=BUSY).collect::<Vec<i32>>(), WAIT).await.unwrap();
        rt.send_batch("starved", &(1..=6).collect::<Vec<i32>>(), WAIT).await.unwrap();
        std::thread::sleep(HEARTBEAT + Duration::from_millis(200));
        let stale = rt.kernel_watchdog().scan_stale_kernels().await.unwrap();
        let found: Vec<_> = stale.iter().map(|k| (k.kernel_id.as_str(), k.action)).collect();
        assert_eq!(found, [("starved", WatchdogAction::Report)]);
        let device = rt.summary().device;
        assert_eq!((device.losses, device.lost), (0, None));
        let doubled = |count: i32| (1..=count).map(|v| v * 2).collect::<Vec<_>>();
        assert_eq!(receive_all(&rt, "busy", BUSY as usize).await, doubled(BUSY));
        assert_eq!(receive_all(&rt, "starved", 6).await, doubled(6));
        rt.shutdown().await.unwrap();
    });
    assert!(heard.lost.lock().unwrap().is_empty() && heard.errors.lock().unwrap().is_empty());
}

/// Handed while the device works, the replacement moves the kernels as a recovery does, and
/// what waits on them meets a loss: a waiting call rejects with `DeviceLost`, its message
/// processed on the replacement with its answer discarded. (A waiting receive meets it only if
/// it looks while the kernels are failed: on a thread of its own it may look after the move,
/// and then waits on, so it is not checked here.)
#[test]
fn replacing_a_working_device_fails_a_waiting_call_as_a_loss_does() {
    let heard = Arc::new(Heard::default());
    let (_adapter, shared) = own_device(wgpu::Limits::default(), &heard, true);
    let rt = Arc::new(runtime_on(&shared));
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default().with_auto_activate()).await.unwrap();
        rt.deactivate("doubler").await.unwrap();
    });
    let call = {
        let rt = rt.clone();
        std::thread::spawn(move || pollster::block_on(rt.call_pod::<i32, i32>("doubler", &5, WAIT)))
    };
    eventually("the call's message is queued", || rt.telemetry("doubler").unwrap().unwrap().input_queue_depth == 1);
    pollster::block_on(rt.replace_shared_device(DeviceId(0), shared.clone())).unwrap();
    let waited = call.join().unwrap().unwrap_err();
    assert_eq!(waited.kind(), ErrorKind::DeviceLost, "{waited}");
    assert!(waited.to_string().contains("replace_shared_device"), "{waited}");
    pollster::block_on(async {
        rt.reactivate("doubler").await.unwrap();
        assert_eq!(rt.call_pod::<i32, i32>("doubler", &6, WAIT).await.unwrap(), 12);
        let telemetry = rt.telemetry("doubler").unwrap().unwrap();
        assert_eq!((telemetry.messages_processed, telemetry.answers_abandoned), (2, 1));
        assert!(rt.try_receive_with("doubler", |_, _| ()).unwrap().is_none(), "the abandoned answer is not received");
        rt.shutdown().await.unwrap();
    });
}

/// The runtime's error scope around a launch's compilation is pushed on the thread that awaits
/// the launch, inside any scope the application has open there, and popped before the launch
/// returns: the application's scope catches its own error, and only that.
#[test]
fn a_launch_nests_its_error_scope_inside_the_applications_on_the_same_thread() {
    let heard = Arc::new(Heard::default());
    let (_adapter, shared) = own_device(wgpu::Limits::default(), &heard, true);
    let rt = runtime_on(&shared);
    pollster::block_on(async {
        let scope = shared.device().push_error_scope(wgpu::ErrorFilter::Validation);
        rt.launch("doubler", LaunchOptions::default().with_auto_activate()).await.unwrap();
        rt.launch_definition(buckets("buckets"), LaunchOptions::default()).await.unwrap();
        let _refused = refused_buffer(shared.device());
        let caught = scope.pop().await.expect("the application's scope caught its error");
        assert!(caught.to_string().contains("mappable storage"), "{caught}");
        assert!(heard.errors.lock().unwrap().is_empty(), "{:?}", heard.errors.lock().unwrap());
        assert_eq!(rt.call_pod::<i32, i32>("doubler", &4, WAIT).await.unwrap(), 8);
        rt.shutdown().await.unwrap();
    });
}

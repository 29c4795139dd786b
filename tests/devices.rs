//! Several devices in one runtime (issue 18): placement, the topology, connected kernels across
//! devices (relayed through the host), losing one device while the other keeps running, and live
//! migration, including a soak that moves a kernel (and the middle stage of a 3-stage pipeline)
//! back and forth every few hundred messages for 1,000,000 sequence-numbered messages.
//!
//! Natively both devices are opened on the machine's adapter (lavapipe without a GPU): two
//! devices on one adapter are two devices to wgpu, with their own queues and tick loops.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::time::{Duration, Instant};

use common::{stage_value, stage_wgsl, tagged_layout, InOrder, Tagged};
use ringkernel_web::kernel::{self, host};
use ringkernel_web::{
    BackendChoice, DeviceId, DeviceRequirements, DeviceSpec, ErrorKind, KernelDefinition, KernelState, LaunchOptions,
    LoadBalancing, Runtime, RuntimeOptions,
};

const D0: DeviceId = DeviceId(0);
const D1: DeviceId = DeviceId(1);

fn two_devices(balancing: LoadBalancing) -> Runtime {
    let options = RuntimeOptions::default()
        .with_devices([DeviceSpec::default(), DeviceSpec::default()])
        .with_load_balancing(balancing);
    pollster::block_on(Runtime::new(options))
        .unwrap_or_else(|e| panic!("two devices: {e} (GPU tests need a wgpu adapter; install mesa-vulkan-drivers)"))
}

/// Registers stage `stage` of a tagged pipeline under `id` (WGSL, and a host handler for cpu
/// devices).
fn register_stage(id: &str, stage: u32) {
    let layout = tagged_layout();
    let definition = KernelDefinition::new(id, layout.clone(), layout, &stage_wgsl(stage)).with_host_handler(
        host::typed(move |m: &Tagged, _: &mut [u32]| Some(Tagged { value: stage_value(m.value, stage), ..*m })),
    );
    kernel::register_or_replace(definition);
}

/// Launches and connects `stages` tagged stages, stage `k` on `devices[k]`.
async fn pipeline(rt: &Runtime, prefix: &str, devices: &[DeviceId], queue: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for (stage, &device) in devices.iter().enumerate() {
        let id = format!("{prefix}-{stage}");
        register_stage(&id, stage as u32);
        let options = LaunchOptions::default().with_queue_capacity(queue).on_device(device).with_auto_activate();
        rt.launch(&id, options).await.unwrap();
        ids.push(id);
    }
    for pair in ids.windows(2) {
        rt.connect(&pair[0], &pair[1]).await.unwrap();
    }
    ids
}

/// Sends `count` tagged messages from `from` into `first`, 200 at a time (within the queues'
/// bounds), and checks every answer of `last`.
async fn flow(rt: &Runtime, first: &str, last: &str, order: &mut InOrder, from: u32, count: u32) {
    for start in (from..from + count).step_by(200) {
        let end = (start + 200).min(from + count);
        let batch: Vec<Tagged> = (start..end).map(|seq| Tagged::new(0, seq)).collect();
        rt.send_batch(first, &batch, Some(Duration::from_secs(30))).await.unwrap();
        let mut got = 0;
        while got < batch.len() {
            let answers = rt.receive_batch::<Tagged>(last, batch.len() - got, Some(Duration::from_secs(30))).await;
            let answers = answers.unwrap();
            order.check(&answers);
            got += answers.len();
        }
    }
}

#[test]
fn the_topology_lists_every_device_with_its_kernels() {
    let rt = two_devices(LoadBalancing::RoundRobin);
    pollster::block_on(async {
        assert_eq!(rt.device_count(), 2);
        let ids = pipeline(&rt, "topo", &[D0, D1], 64).await;
        let topology = rt.gpu_topology();
        let devices: Vec<_> = topology.devices().collect();
        assert_eq!(devices.len(), 2);
        for (i, device) in devices.iter().enumerate() {
            assert_eq!(device.id, DeviceId(i as u32));
            assert_eq!(device.kernels, [ids[i].clone()]);
            assert!(device.memory_bytes > 0, "{device:?}");
            assert!(device.limits.max_binding_bytes.unwrap() > 0);
            assert_eq!(device.lost, None);
            assert_ne!(device.adapter.backend, "cpu");
        }
        assert_eq!(rt.device_of(&ids[1]).unwrap(), D1);
        let summary = rt.summary();
        assert_eq!(summary.devices.len(), 2);
        assert_eq!(summary.per_kernel[&ids[1]].device, D1);
        let text = rt.metrics_text();
        let placed = format!("ringkernel_kernel_device{{kernel=\"{}\",device=\"1\"}} 1", ids[1]);
        assert!(text.contains(&placed), "where each kernel runs:\n{text}");
        assert!(text.contains("ringkernel_device_kernels{device=\"1\"} 1"), "{text}");
        // An id past the list is refused by name.
        let e = rt.launch("doubler", LaunchOptions::default().on_device(DeviceId(2))).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OutOfRange);
        assert!(e.to_string().contains("the runtime has 2 devices"), "{e}");
    });
}

/// A device that names no backend takes the runtime's: `backend: cpu` with two plain device
/// specs opens two cpu devices (it once asked for GPUs, and said to use the cpu backend).
#[test]
fn devices_without_a_backend_take_the_runtimes() {
    let options = RuntimeOptions::default()
        .with_backend(BackendChoice::Cpu)
        .with_devices([DeviceSpec::default(), DeviceSpec::new(BackendChoice::Auto)]);
    let rt = pollster::block_on(Runtime::new(options)).unwrap_or_else(|e| panic!("two cpu devices: {e}"));
    let backends: Vec<String> = rt.gpu_topology().devices().map(|d| d.adapter.backend.clone()).collect();
    assert_eq!(backends, ["cpu", "cpu"]);
    pollster::block_on(async {
        let h = rt.launch("doubler", LaunchOptions::default().on_device(D1).with_auto_activate()).await.unwrap();
        rt.send(h.id(), &[("value", 21.into())], None).await.unwrap();
        let answer = rt.receive(h.id(), Some(Duration::from_secs(10))).await.unwrap();
        assert_eq!(answer[0].1, 42.into());
    });
}

#[test]
fn placement_follows_the_policy_and_the_requirements() {
    let rt = two_devices(LoadBalancing::RoundRobin);
    pollster::block_on(async {
        let mut placed = Vec::new();
        for i in 0..4 {
            let handle = rt.launch_as("doubler", &format!("rr-{i}"), LaunchOptions::default()).await.unwrap();
            placed.push(rt.device_of(handle.id()).unwrap());
        }
        assert_eq!(placed, [D0, D1, D0, D1], "round robin");
        let cpu_only = DeviceRequirements::default().with_backend(BackendChoice::Cpu);
        let e = rt.select_device(&cpu_only).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OutOfRange, "{e}");
        let refused = "no device of the runtime's 2 meets the requirements (backend \"cpu\")";
        assert_eq!(e.to_string(), format!("out of range: {refused}"));
        // A device named with requirements must meet them.
        let named = LaunchOptions::default().on_device(D1).with_requirements(cpu_only);
        let e = rt.launch_as("doubler", "named", named).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OutOfRange, "{e}");
        assert!(e.to_string().contains("device 1, which the launch names, does not meet the requirements"), "{e}");
        assert!(rt.get_kernel("named").is_none());
        let huge = DeviceRequirements::default().with_min_binding_bytes(u64::MAX);
        let e = rt.launch_as("doubler", "huge", LaunchOptions::default().with_requirements(huge)).await.unwrap_err();
        let wanted = format!("(a storage binding of at least {} bytes)", u64::MAX);
        assert!(e.to_string().contains(&wanted), "worded as asked, not as the struct's fields: {e}");
        assert!(rt.get_kernel("huge").is_none(), "a refused launch leaves nothing behind");
    });
    let rt = two_devices(LoadBalancing::LeastLoaded);
    pollster::block_on(async {
        // Device 0 holds a kernel with queued work: the next launch goes to device 1.
        rt.launch_as("doubler", "busy", LaunchOptions::default().on_device(D0)).await.unwrap();
        rt.send_batch("busy", &[1i32, 2, 3], None).await.unwrap();
        rt.launch_as("doubler", "next", LaunchOptions::default()).await.unwrap();
        assert_eq!(rt.device_of("next").unwrap(), D1);
        assert_eq!(rt.select_device(&DeviceRequirements::default()).unwrap(), D1);
    });
}

/// With one device left to choose (the other lost), every launch goes to it, however loaded:
/// placement then weighs no kernels (it weighed every kernel at every launch), and the lost
/// device is passed over whatever the policy.
#[test]
fn with_one_device_left_every_launch_goes_to_it() {
    for balancing in [LoadBalancing::LeastLoaded, LoadBalancing::RoundRobin] {
        let rt = two_devices(balancing);
        pollster::block_on(async {
            rt.launch_as("doubler", "busy", LaunchOptions::default().on_device(D0)).await.unwrap();
            rt.send_batch("busy", &[1i32, 2, 3], None).await.unwrap();
            rt.destroy_device_at(D1).unwrap();
            common::wait_until("device 1 lost", || rt.gpu_topology().devices[1].lost.is_some());
            for i in 0..3 {
                let handle = rt.launch_as("doubler", &format!("left-{i}"), LaunchOptions::default()).await.unwrap();
                assert_eq!(rt.device_of(handle.id()).unwrap(), D0, "{balancing:?}: the device left");
            }
            assert_eq!(rt.select_device(&DeviceRequirements::default()).unwrap(), D0, "{balancing:?}");
            let topology = rt.gpu_topology();
            assert_eq!(topology.devices[0].kernels.len(), 4, "{balancing:?}: {topology:?}");
        });
    }
}

#[test]
fn a_runtime_of_a_gpu_and_a_cpu_device_places_each_kernel_where_it_runs() {
    let options = RuntimeOptions::default()
        .with_devices([DeviceSpec::default(), DeviceSpec::new(BackendChoice::Cpu)])
        .with_load_balancing(LoadBalancing::RoundRobin);
    let rt = pollster::block_on(Runtime::new(options)).expect("a GPU device and a cpu device");
    let layout = tagged_layout();
    let host_only = KernelDefinition::new("host-only", layout.clone(), layout.clone(), "")
        .with_host_handler(host::typed(|m: &Tagged, _: &mut [u32]| Some(*m)));
    let wgsl_only = KernelDefinition::new("wgsl-only", layout.clone(), layout, &stage_wgsl(0));
    pollster::block_on(async {
        // Round robin would put every other launch on the device that cannot run it.
        for i in 0..3 {
            let host = rt.launch_definition(host_only.clone().with_id(&format!("host-{i}")), LaunchOptions::default());
            assert_eq!(rt.device_of(host.await.unwrap().id()).unwrap(), D1, "a host handler runs on the cpu device");
            let gpu = rt.launch_definition(wgsl_only.clone().with_id(&format!("gpu-{i}")), LaunchOptions::default());
            assert_eq!(rt.device_of(gpu.await.unwrap().id()).unwrap(), D0, "WGSL alone runs on the GPU");
        }
        // Named onto the device that cannot run it: refused, naming the one that can.
        let e = rt
            .launch_definition(host_only.clone().with_id("named"), LaunchOptions::default().on_device(D0))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KernelCompile, "{e}");
        assert!(e.to_string().contains("its host handler runs on device 1, a cpu device"), "{e}");
        let e = rt
            .launch_definition(wgsl_only.clone().with_id("named"), LaunchOptions::default().on_device(D1))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("its WGSL runs on device 0"), "{e}");
        assert!(rt.get_kernel("named").is_none(), "a refused launch leaves nothing behind");
        // Requirements only the device that cannot run it meets.
        let cpu = DeviceRequirements::default().with_backend(BackendChoice::Cpu);
        let e = rt
            .launch_definition(wgsl_only.clone().with_id("cpu"), LaunchOptions::default().with_requirements(cpu))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OutOfRange, "{e}");
        let wanted = "no device of the runtime's 2 that can run kernel 'cpu' meets the requirements (backend \"cpu\")";
        assert!(e.to_string().contains(wanted), "{e}");
    });
}

#[test]
fn destroy_device_without_an_id_takes_the_first_gpu_device() {
    let options = RuntimeOptions::default().with_devices([DeviceSpec::new(BackendChoice::Cpu), DeviceSpec::default()]);
    let rt = pollster::block_on(Runtime::new(options)).expect("a cpu device and a GPU device");
    let e = rt.destroy_device_at(D0).unwrap_err();
    assert_eq!(e.to_string(), "invalid argument: device 0: the cpu backend has no device to destroy");
    rt.destroy_device().unwrap();
    common::wait_until("device 1 lost", || rt.gpu_topology().devices[1].lost.is_some());
    assert!(rt.gpu_topology().devices[0].lost.is_none());
}

#[test]
fn losing_one_device_fails_only_its_kernels() {
    let rt = two_devices(LoadBalancing::RoundRobin);
    pollster::block_on(async {
        // Two unconnected kernels, one per device, each the first stage of its own pipeline.
        let ids = [pipeline(&rt, "left", &[D0], 256).await, pipeline(&rt, "right", &[D1], 256).await].concat();
        let (mut order0, mut order1) = (InOrder::new(1, 1), InOrder::new(1, 1));
        flow(&rt, &ids[0], &ids[0], &mut order0, 0, 100).await;
        flow(&rt, &ids[1], &ids[1], &mut order1, 0, 100).await;
        rt.destroy_device_at(D1).unwrap();
        common::wait_until("device 1's kernel to fail", || rt.state(&ids[1]).unwrap() == KernelState::Failed);
        assert_eq!(rt.state(&ids[0]).unwrap(), KernelState::Active, "device 0 keeps running");
        flow(&rt, &ids[0], &ids[0], &mut order0, 100, 100).await;
        let topology = rt.gpu_topology();
        assert!(topology.devices[1].lost.is_some() && topology.devices[0].lost.is_none(), "{topology:?}");
        assert!(rt.summary().device.lost.unwrap().starts_with("device 1: "));
        // Messages sent to the failed kernel wait for recovery, which brings back only device 1.
        rt.recover().await.unwrap();
        assert_eq!(rt.state(&ids[1]).unwrap(), KernelState::Active);
        flow(&rt, &ids[1], &ids[1], &mut order1, 100, 100).await;
        let report = rt.dispose().await.unwrap();
        assert_eq!((report.device_losses, report.recoveries), (1, 1));
    });
}

#[test]
fn a_pipeline_across_devices_relays_through_the_host_in_order() {
    let rt = two_devices(LoadBalancing::RoundRobin);
    pollster::block_on(async {
        let ids = pipeline(&rt, "across", &[D0, D1, D0], 512).await;
        let mut order = InOrder::new(1, 3);
        flow(&rt, &ids[0], &ids[2], &mut order, 0, 5000).await;
        for id in &ids {
            assert_eq!(rt.telemetry(id).unwrap().unwrap().messages_processed, 5000, "{id}");
        }
    });
}

#[test]
fn migration_keeps_state_calls_and_order() {
    let rt = two_devices(LoadBalancing::RoundRobin);
    pollster::block_on(async {
        // The histogram keeps its bins in `state`: they must come along.
        rt.launch("histogram", LaunchOptions::default().on_device(D0).with_auto_activate()).await.unwrap();
        // 64 messages of 16 samples: 16 in each of the 64 bins.
        let samples: Vec<[f32; 16]> =
            (0..64).map(|m| std::array::from_fn(|i| ((m * 16 + i) % 64) as f32 / 64.0 + 0.001)).collect();
        rt.send_batch("histogram", &samples, None).await.unwrap();
        let report = rt.migrate("histogram", D1).await.unwrap();
        assert_eq!((report.from, report.to), (D0, D1));
        assert_eq!(rt.device_of("histogram").unwrap(), D1);
        rt.send_batch("histogram", &samples, None).await.unwrap();
        let mut answered = 0;
        while answered < 128 {
            answered += rt.receive_batch_packed("histogram", 2000, Some(Duration::from_secs(30))).await.unwrap().len()
                / rt.output_layout("histogram").unwrap().size();
        }
        let bins: Vec<u32> = rt.read_state_as("histogram").await.unwrap();
        assert!(bins.iter().all(|&b| b == 32), "every bin counted before and after the move: {bins:?}");

        // A call waiting when the kernel moves gets its answer from the new device.
        rt.launch("doubler", LaunchOptions::default().on_device(D0).with_auto_activate()).await.unwrap();
        rt.send_batch("doubler", &(0..1000).collect::<Vec<i32>>(), None).await.unwrap();
        let (call, moved) =
            futures_util::join!(rt.call_pod::<i32, i32>("doubler", &21, Some(Duration::from_secs(30))), async {
                rt.migrate("doubler", D1).await
            });
        assert_eq!(call.unwrap(), 42);
        moved.unwrap();
        let answers: Vec<i32> = rt.receive_batch("doubler", 1000, Some(Duration::from_secs(30))).await.unwrap();
        let mut all = answers;
        while all.len() < 1000 {
            all.extend(rt.receive_batch::<i32>("doubler", 1000, Some(Duration::from_secs(30))).await.unwrap());
        }
        assert_eq!(all, (0..1000).map(|v| v * 2).collect::<Vec<i32>>());
        // Moving to where it is changes nothing; a kernel that is not live cannot move.
        assert_eq!(rt.migrate("doubler", D1).await.unwrap().pause, Duration::ZERO);
        rt.terminate("doubler", None).await.unwrap();
        let e = rt.migrate("doubler", D0).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KernelState, "{e}");
        let e = rt.kernel_migrator().migrate_kernel("histogram", D0, D1).await.unwrap_err();
        assert!(e.to_string().contains("runs on device 1"), "{e}");
        let t = rt.telemetry("histogram").unwrap().unwrap();
        assert_eq!((t.migrations, t.device), (1, D1));
        assert_eq!(rt.dispose().await.unwrap().migrated_kernels, 2);
    });
}

/// A device's count of messages processed only grows, as its metric (a Prometheus counter) must:
/// a kernel that migrates away or is removed leaves what it processed there behind.
#[test]
fn a_devices_count_of_messages_processed_only_grows() {
    let rt = two_devices(LoadBalancing::RoundRobin);
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default().on_device(D0).with_auto_activate()).await.unwrap();
        let rt = &rt;
        let round = |n: i32| async move {
            rt.send_batch("doubler", &(0..n).collect::<Vec<i32>>(), None).await.unwrap();
            let mut answered = 0;
            while answered < n as usize {
                answered +=
                    rt.receive_batch::<i32>("doubler", 1000, Some(Duration::from_secs(30))).await.unwrap().len();
            }
        };
        let counts = || rt.gpu_topology().devices.iter().map(|d| d.messages_processed).collect::<Vec<u64>>();
        round(50).await;
        assert_eq!(counts(), [50, 0]);
        rt.migrate("doubler", D1).await.unwrap();
        round(30).await;
        assert_eq!(counts(), [50, 30], "device 0 keeps what it processed");
        rt.terminate("doubler", None).await.unwrap();
        rt.remove("doubler").unwrap();
        assert_eq!(counts(), [50, 30], "and so do both once the kernel is gone");
        let metrics = rt.metrics_text();
        assert!(metrics.contains("ringkernel_device_messages_processed_total{device=\"0\"} 50"), "{metrics}");
    });
}

/// A kernel whose state is never checkpointed moves with its state as it is on the device.
#[test]
fn migration_moves_a_state_that_was_never_checkpointed() {
    let rt = two_devices(LoadBalancing::RoundRobin);
    pollster::block_on(async {
        let options = LaunchOptions::default().on_device(D0).with_auto_activate();
        rt.launch("histogram", options.with_checkpoint_interval(Duration::MAX)).await.unwrap();
        let samples: Vec<[f32; 16]> =
            (0..64).map(|m| std::array::from_fn(|i| ((m * 16 + i) % 64) as f32 / 64.0 + 0.001)).collect();
        for round in 1..=2 {
            rt.send_batch("histogram", &samples, None).await.unwrap();
            let mut answered = 0;
            while answered < 64 {
                answered +=
                    rt.receive_batch_packed("histogram", 64, Some(Duration::from_secs(30))).await.unwrap().len()
                        / rt.output_layout("histogram").unwrap().size();
            }
            // Moved after its handler ran, never checkpointed: to D1, then back.
            rt.migrate("histogram", if round == 1 { D1 } else { D0 }).await.unwrap();
            let bins: Vec<u32> = rt.read_state_as("histogram").await.unwrap();
            assert!(bins.iter().all(|&b| b == 16 * round), "round {round}: {bins:?}");
        }
    });
}

#[test]
fn a_kernel_stranded_on_a_lost_device_migrates_to_a_working_one() {
    let rt = two_devices(LoadBalancing::RoundRobin);
    pollster::block_on(async {
        rt.launch("histogram", LaunchOptions::default().on_device(D1).with_auto_activate()).await.unwrap();
        let samples: Vec<[f32; 16]> =
            (0..64).map(|m| std::array::from_fn(|i| ((m * 16 + i) % 64) as f32 / 64.0)).collect();
        rt.send_batch("histogram", &samples, None).await.unwrap();
        // HistogramAck is one u32.
        let mut answered = 0;
        while answered < 64 {
            answered +=
                rt.receive_batch_packed("histogram", 64, Some(Duration::from_secs(30))).await.unwrap().len() / 4;
        }
        rt.destroy_device_at(D1).unwrap();
        common::wait_until("the kernel to fail", || rt.state("histogram").unwrap() == KernelState::Failed);
        // Sent while it is stranded: queued for wherever it runs next.
        rt.send_batch("histogram", &samples, None).await.unwrap();
        let report = rt.migrate("histogram", D0).await.unwrap();
        assert_eq!((report.from, report.to), (D1, D0));
        assert_eq!(rt.state("histogram").unwrap(), KernelState::Active, "it runs again where it failed: active");
        let mut answered = 0;
        while answered < 64 {
            answered +=
                rt.receive_batch_packed("histogram", 64, Some(Duration::from_secs(30))).await.unwrap().len() / 4;
        }
        let bins: Vec<u32> = rt.read_state_as("histogram").await.unwrap();
        assert!(bins.iter().all(|&b| b == 32), "its state as of its last tick came along: {bins:?}");
        // Device 1 stays lost; recovering it relaunches nothing that moved away.
        rt.recover().await.unwrap();
        assert_eq!(rt.device_of("histogram").unwrap(), D0);
        assert_eq!(rt.dispose().await.unwrap().migrated_kernels, 1);
    });
}

/// State kept on a cpu device goes with the kernel to a GPU, from there to another GPU, and
/// through that GPU's loss: the bytes carried onto a GPU are its checkpoint until it ticks there.
#[test]
fn state_from_a_cpu_device_moves_on_from_gpu_to_gpu_and_survives_a_loss() {
    const D2: DeviceId = DeviceId(2);
    let options = RuntimeOptions::default().with_devices([
        DeviceSpec::default(),
        DeviceSpec::default(),
        DeviceSpec::new(BackendChoice::Cpu),
    ]);
    let rt = pollster::block_on(Runtime::new(options)).expect("two GPU devices and a cpu device");
    // 64 messages of 16 samples: 16 in each of the 64 bins.
    let samples: Vec<[f32; 16]> =
        (0..64).map(|m| std::array::from_fn(|i| ((m * 16 + i) % 64) as f32 / 64.0 + 0.001)).collect();
    let rt = &rt;
    pollster::block_on(async {
        let run_batch = || async {
            rt.send_batch("histogram", &samples, None).await.unwrap();
            // HistogramAck is one u32.
            let mut answered = 0;
            while answered < 64 {
                answered +=
                    rt.receive_batch_packed("histogram", 64, Some(Duration::from_secs(30))).await.unwrap().len() / 4;
            }
        };
        let bins_all = |count: u32, when: &str| {
            let when = when.to_owned();
            async move {
                let bins: Vec<u32> = rt.read_state_as("histogram").await.unwrap();
                assert!(bins.iter().all(|&b| b == count), "{when}: {bins:?}");
            }
        };
        rt.launch("histogram", LaunchOptions::default().on_device(D2).with_auto_activate()).await.unwrap();
        run_batch().await;
        rt.migrate("histogram", D0).await.unwrap();
        bins_all(16, "moved from the cpu device to GPU 0").await;
        rt.migrate("histogram", D1).await.unwrap();
        bins_all(16, "moved on to GPU 1 before any tick there").await;
        rt.destroy_device_at(D1).unwrap();
        common::wait_until("the kernel to fail", || rt.state("histogram").unwrap() == KernelState::Failed);
        // Stranded there, it runs again on GPU 0 from what GPU 1 was given.
        rt.migrate("histogram", D0).await.unwrap();
        bins_all(16, "moved off the lost GPU 1").await;
        run_batch().await;
        bins_all(32, "counting on GPU 0 again").await;
    });
}

#[test]
fn a_migration_that_a_terminate_or_dispose_overtakes_changes_nothing() {
    for round in 0..6 {
        let rt = two_devices(LoadBalancing::RoundRobin);
        pollster::block_on(async {
            let id = format!("racing-{round}");
            rt.launch_as("doubler", &id, LaunchOptions::default().on_device(D0).with_auto_activate()).await.unwrap();
            // No input: the terminate (or the dispose's drain) ends while the target compiles.
            let (moved, stopped) = if round % 2 == 0 {
                let (moved, ended) = futures_util::join!(rt.migrate(&id, D1), rt.terminate(&id, None));
                ended.unwrap();
                (moved, None)
            } else {
                let (moved, report) = futures_util::join!(rt.migrate(&id, D1), rt.dispose());
                (moved, Some(report.unwrap()))
            };
            match &moved {
                Ok(report) => assert_eq!(report.to, D1),
                Err(e) => {
                    assert!(matches!(e.kind(), ErrorKind::KernelState | ErrorKind::Disposed), "{e}");
                    assert_eq!(rt.device_of(&id).unwrap(), D0, "a refused migration leaves the kernel where it was");
                }
            }
            let migrated = match stopped {
                Some(report) => report.migrated_kernels,
                None => rt.dispose().await.unwrap().migrated_kernels,
            };
            assert_eq!(migrated, u64::from(moved.is_ok()), "the report counts the migration that happened: {moved:?}");
        });
    }
}

/// One soak run: `MESSAGES` tagged messages into the first of `ids`, answers from the last, and
/// `moving` migrated to the other device every `EVERY` messages sent, while messages are queued
/// and in flight. Returns the migrations' pauses, in milliseconds.
async fn soak(rt: &Runtime, ids: &[String], moving: &str, seed: u64) -> Vec<f64> {
    const MESSAGES: u32 = 1_000_000;
    const EVERY: u32 = 400;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut order = InOrder::new(1, ids.len() as u32);
    let (first, last) = (&ids[0], &ids[ids.len() - 1]);
    let (mut sent, mut next_move, mut pauses) = (0u32, EVERY, Vec::new());
    let mut batch = Vec::new();
    while order.received < u64::from(MESSAGES) {
        if sent < MESSAGES {
            let end = (sent + rng.u32(1..=2 * EVERY)).min(MESSAGES);
            batch.clear();
            batch.extend((sent..end).map(|seq| Tagged::new(0, seq)));
            sent += common::accepted(rt.send_batch(first, &batch, Some(Duration::ZERO)).await) as u32;
        }
        if sent >= next_move {
            let to = DeviceId(1 - rt.device_of(moving).unwrap().0);
            pauses.push(rt.migrate(moving, to).await.unwrap().pause.as_secs_f64() * 1000.0);
            next_move += EVERY;
        }
        let answers = rt.receive_batch::<Tagged>(last, 4 * EVERY as usize, Some(Duration::ZERO)).await;
        match answers {
            Ok(answers) => order.check(&answers),
            Err(e) if e.kind() == ErrorKind::Timeout => {}
            Err(e) => panic!("receive: {e}"),
        }
    }
    assert_eq!(order.per_sender(), [MESSAGES]);
    pauses
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn check_migration_soak(stages: usize) {
    let rt = two_devices(LoadBalancing::RoundRobin);
    let devices: Vec<DeviceId> = (0..stages).map(|s| DeviceId((s % 2) as u32)).collect();
    pollster::block_on(async {
        let prefix = format!("msoak{stages}");
        let ids = pipeline(&rt, &prefix, &devices, 4096).await;
        let moving = ids[ids.len() / 2].clone();
        let started = Instant::now();
        let mut pauses = soak(&rt, &ids, &moving, 0x5eed_0018).await;
        pauses.sort_by(f64::total_cmp);
        println!(
            "{{\"test\":\"migration-soak\",\"stages\":{stages},\"messages\":1000000,\"migrations\":{},\
             \"pauseP50Ms\":{:.3},\"pauseP99Ms\":{:.3},\"seconds\":{:.2}}}",
            pauses.len(),
            percentile(&pauses, 0.5),
            percentile(&pauses, 0.99),
            started.elapsed().as_secs_f64()
        );
        assert!(pauses.len() >= 2000, "{} migrations", pauses.len());
        for id in &ids {
            let t = rt.telemetry(id).unwrap().unwrap();
            assert_eq!(t.messages_processed, 1_000_000, "{id}");
            assert_eq!((t.input_queue_depth, t.in_flight, t.output_queue_depth), (0, 0, 0), "{id}");
        }
        assert_eq!(rt.telemetry(&moving).unwrap().unwrap().migrations, pauses.len() as u64);
        assert_eq!(rt.dispose().await.unwrap().migrated_kernels, pauses.len() as u64);
    });
}

#[test]
fn soak_one_kernel_migrating_back_and_forth() {
    check_migration_soak(1);
}

#[test]
fn soak_the_middle_stage_of_a_pipeline_migrating_back_and_forth() {
    check_migration_soak(3);
}

/// A doubler on the host taking `ms` a message (its WGSL twin for GPU devices), under `id`.
fn register_slow_doubler(id: &str, ms: u64) {
    let handler = host::typed(move |v: &i32, _: &mut [u32]| {
        std::thread::sleep(Duration::from_millis(ms));
        Some(v * 2)
    });
    let wgsl = "fn handle(m: Request) -> Response { return Response(m.value * 2); }";
    kernel::register_or_replace(
        KernelDefinition::new(id, kernel::doubler_request(), kernel::doubler_response(), wgsl)
            .with_host_handler(handler),
    );
}

fn cpu_then_gpu() -> Runtime {
    let options = RuntimeOptions::default().with_devices([DeviceSpec::new(BackendChoice::Cpu), DeviceSpec::default()]);
    pollster::block_on(Runtime::new(options)).expect("a cpu device and a GPU device")
}

/// A target lost while the migration compiles there, or while it waits for the kernel's tick,
/// is `DeviceLost` (not a compile error; not a kernel moved onto a dead device, whose next tick
/// used to panic in wgpu), and the kernel runs on where it was.
#[test]
fn a_migration_whose_target_is_lost_meanwhile_is_device_lost_and_changes_nothing() {
    register_slow_doubler("slow-moving", 300);
    for while_waiting in [false, true] {
        // The compile runs on a thread of its own. On a loaded machine that thread can finish
        // before this one polls the migration again, which then completes at once, before the
        // target can be lost: then try again on a fresh runtime.
        for tries in 1.. {
            let rt = cpu_then_gpu();
            let raced = pollster::block_on(lose_the_target_while_migrating(&rt, while_waiting));
            if !raced {
                break;
            }
            assert!(tries < 5, "waiting {while_waiting}: the migration was done at its first poll {tries} times");
        }
    }
}

/// One try of the test above: whether the migration was done at its first poll (nothing was
/// tried then).
async fn lose_the_target_while_migrating(rt: &Runtime, while_waiting: bool) -> bool {
    let options = LaunchOptions::default().with_max_batch(1).on_device(D0).with_auto_activate();
    rt.launch("slow-moving", options).await.unwrap();
    if while_waiting {
        rt.send_pod("slow-moving", &1i32, None).await.unwrap();
        common::wait_until("the tick", || rt.kernel_metrics("slow-moving").unwrap().in_flight == 1);
    }
    let mut migrating = Box::pin(rt.migrate("slow-moving", D1));
    if futures_util::poll!(migrating.as_mut()).is_ready() {
        return true;
    }
    if while_waiting {
        // Compiled there by now; waiting for the 300 ms tick.
        std::thread::sleep(Duration::from_millis(100));
        assert!(futures_util::poll!(migrating.as_mut()).is_pending());
    }
    rt.destroy_device_at(D1).unwrap();
    let e = migrating.await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DeviceLost, "waiting {while_waiting}: {e}");
    assert_eq!(rt.device_of("slow-moving").unwrap(), D0);
    assert_eq!(rt.state("slow-moving").unwrap(), KernelState::Active);
    if while_waiting {
        let first = rt.receive_batch::<i32>("slow-moving", 1, Some(Duration::from_secs(20))).await.unwrap();
        assert_eq!(first, [2]);
    }
    let answer = rt.call_pod::<i32, i32>("slow-moving", &21, Some(Duration::from_secs(20))).await;
    assert_eq!(answer.unwrap(), 42, "waiting {while_waiting}");
    false
}

/// Answers relayed through the host to a next stage terminated while the tick ran go to the
/// host, as the first stage's later answers do: not into the terminated stage's queue, where
/// they vanished from every count, nor into another kernel launched under its id.
#[test]
fn answers_relayed_to_a_next_stage_ended_meanwhile_go_to_the_host() {
    register_slow_doubler("relaying", 300);
    for relaunched in [false, true] {
        let options = RuntimeOptions::default()
            .with_devices([DeviceSpec::new(BackendChoice::Cpu), DeviceSpec::new(BackendChoice::Cpu)]);
        let rt = pollster::block_on(Runtime::new(options)).unwrap();
        pollster::block_on(async {
            rt.launch("relaying", LaunchOptions::default().on_device(D0).with_auto_activate()).await.unwrap();
            rt.launch("doubler", LaunchOptions::default().on_device(D1).with_auto_activate()).await.unwrap();
            rt.connect("relaying", "doubler").await.unwrap();
            rt.send_pod("relaying", &21i32, None).await.unwrap();
            common::wait_until("the tick", || rt.kernel_metrics("relaying").unwrap().in_flight == 1);
            rt.terminate("doubler", None).await.unwrap();
            if relaunched {
                rt.remove("doubler").unwrap();
                rt.launch("doubler", LaunchOptions::default().on_device(D1).with_auto_activate()).await.unwrap();
            }
            let answer = rt.receive_batch::<i32>("relaying", 1, Some(Duration::from_secs(20))).await.unwrap();
            assert_eq!(answer, [42], "relaunched {relaunched}: the answer reaches the host");
            let next = rt.kernel_metrics("doubler").unwrap();
            assert_eq!((next.messages_sent, next.input_queue_depth), (0, 0), "relaunched {relaunched}");
        });
    }
}

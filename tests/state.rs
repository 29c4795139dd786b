//! A kernel's `state` array written from the host, natively (lavapipe, and the cpu backend):
//! the values a launch starts it with (`LaunchOptions::with_initial_state`) and writes while it
//! lives (`write_state`). A write lands between ticks, reaches the kernel's next messages, and
//! goes into the checkpoint, so recovery after a lost device and a migration keep it. Values of
//! the wrong scalar, past the array's end, for a kernel without state, or for one that cannot
//! take them are refused by name, changing nothing.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use ringkernel_web::kernel::{doubler_request, doubler_response, host};
use ringkernel_web::lifecycle::Action;
use ringkernel_web::{
    BackendChoice, DeviceId, DeviceSpec, Error, KernelDefinition, KernelState, LaunchOptions, Runtime, RuntimeOptions,
    StateElement, StateValues,
};

const WAIT: Option<Duration> = Some(Duration::from_secs(10));

fn runtime_with(options: RuntimeOptions) -> Runtime {
    pollster::block_on(Runtime::new(options))
        .unwrap_or_else(|e| panic!("these tests need a wgpu adapter (install mesa-vulkan-drivers for lavapipe): {e}"))
}

fn runtime() -> Runtime {
    runtime_with(RuntimeOptions::default())
}

/// Answers each message with the count of messages before it (`state[0]`) and adds its value
/// to `state[1]`, on a GPU or, with its host handler, on the cpu backend.
fn counter(id: &str) -> KernelDefinition {
    let wgsl = "fn handle(msg: Request) -> Response {
    let seen = atomicAdd(&state[0], 1);
    atomicAdd(&state[1], msg.value);
    return Response(seen);
}";
    KernelDefinition::new(id, doubler_request(), doubler_response(), wgsl)
        .with_state(StateElement::AtomicI32, 2)
        .with_host_handler(host::typed(|value: &i32, state: &mut [u32]| {
            let seen = state[0] as i32;
            state[0] = state[0].wrapping_add(1);
            state[1] = state[1].wrapping_add(*value as u32);
            Some(seen)
        }))
}

/// Sends `values` and returns their answers, sorted (a GPU tick's messages count in no set
/// order).
async fn counted(rt: &Runtime, id: &str, values: &[i32]) -> Vec<i32> {
    assert_eq!(rt.send_batch(id, values, WAIT).await.unwrap(), values.len());
    let mut answers = Vec::new();
    while answers.len() < values.len() {
        answers.extend(rt.receive_batch::<i32>(id, values.len() - answers.len(), WAIT).await.unwrap());
    }
    answers.sort();
    answers
}

#[test]
fn a_launch_starts_the_state_with_its_initial_values_and_recovery_restores_them() {
    let rt = runtime();
    pollster::block_on(async {
        let options = LaunchOptions::default().with_auto_activate();
        rt.launch_definition(counter("every"), options.clone().with_initial_state([10, 100])).await.unwrap();
        assert_eq!(rt.read_state_as::<i32>("every").await.unwrap(), [10, 100]);
        assert_eq!(counted(&rt, "every", &[1, 2, 3]).await, [10, 11, 12], "the messages start counting from 10");
        assert_eq!(rt.read_state_as::<i32>("every").await.unwrap(), [13, 106]);
        // Fewer values than elements: the rest is zeroed. With no checkpoint ever taken, the
        // initial values are what a lost device leaves.
        let never = options.with_checkpoint_interval(Duration::MAX).with_initial_state(vec![5]);
        rt.launch_definition(counter("never"), never).await.unwrap();
        assert_eq!(counted(&rt, "never", &[4]).await, [5]);
        rt.destroy_device().unwrap();
        rt.recover().await.unwrap();
        assert_eq!(rt.read_state_as::<i32>("never").await.unwrap(), [5, 0], "as launched, not zeroed");
        assert_eq!(rt.read_state_as::<i32>("every").await.unwrap(), [13, 106], "as of its last tick");
    });
}

#[test]
fn a_write_reaches_the_next_messages_and_recovery_keeps_it() {
    let rt = runtime();
    pollster::block_on(async {
        rt.launch_definition(counter("count"), LaunchOptions::default().with_auto_activate()).await.unwrap();
        assert_eq!(counted(&rt, "count", &[1, 2, 3]).await, [0, 1, 2]);
        // Part of the array: the rest stays as the messages left it.
        rt.write_state("count", 0, [100]).await.unwrap();
        assert_eq!(rt.read_state_as::<i32>("count").await.unwrap(), [100, 6]);
        assert_eq!(counted(&rt, "count", &[4]).await, [100]);
        rt.write_state("count", 1, vec![-7]).await.unwrap();
        assert_eq!(rt.read_state_as::<i32>("count").await.unwrap(), [101, -7]);
        // The checkpoint took the write: a lost device gives it back.
        rt.destroy_device().unwrap();
        rt.recover().await.unwrap();
        assert_eq!(rt.read_state_as::<i32>("count").await.unwrap(), [101, -7]);
        assert_eq!(counted(&rt, "count", &[1]).await, [101]);
        assert_eq!(rt.read_state_as::<i32>("count").await.unwrap(), [102, -6]);
        // Paused kernels take writes too; their queued messages see them.
        rt.deactivate("count").await.unwrap();
        assert_eq!(rt.send_batch("count", &[1, 1], WAIT).await.unwrap(), 2);
        rt.write_state("count", 0, [0, 0]).await.unwrap();
        rt.reactivate("count").await.unwrap();
        assert_eq!(rt.receive_batch::<i32>("count", 2, WAIT).await.unwrap().len(), 2);
        assert_eq!(rt.read_state_as::<i32>("count").await.unwrap(), [2, 2]);
    });
}

/// With a checkpoint interval the checkpoint falls behind the state: a partial write leaves it
/// behind (recovery restores the last checkpoint, without it), a whole one catches it up.
#[test]
fn a_whole_write_catches_up_a_checkpoint_left_behind_by_an_interval() {
    let rt = runtime();
    pollster::block_on(async {
        let options = LaunchOptions::default().with_auto_activate().with_checkpoint_interval(Duration::MAX);
        rt.launch_definition(counter("part"), options.clone()).await.unwrap();
        rt.launch_definition(counter("whole"), options).await.unwrap();
        for id in ["part", "whole"] {
            assert_eq!(counted(&rt, id, &[1, 2]).await, [0, 1]);
        }
        rt.write_state("part", 1, [50]).await.unwrap();
        rt.write_state("whole", 0, [7, 70]).await.unwrap();
        rt.destroy_device().unwrap();
        rt.recover().await.unwrap();
        assert_eq!(rt.read_state_as::<i32>("part").await.unwrap(), [0, 0], "its last checkpoint: as launched");
        assert_eq!(rt.read_state_as::<i32>("whole").await.unwrap(), [7, 70]);
    });
}

/// A kernel kept busy still takes a write: the tick under way is waited for, the next ones hold
/// the kernel back until the write is made, and every message is answered once, in order.
#[test]
fn a_write_to_a_busy_kernel_is_made_and_loses_no_message() {
    let rt = runtime();
    pollster::block_on(async {
        let options = LaunchOptions::default().with_auto_activate().with_queue_capacity(8192).with_max_batch(64);
        let handle = rt.launch_definition(counter("busy"), options).await.unwrap();
        let values: Vec<i32> = (0..8000).collect();
        assert_eq!(rt.send_batch("busy", &values, WAIT).await.unwrap(), values.len());
        let (written, answers) = futures_util::join!(
            async {
                let mut writes = 0;
                while handle.status().unwrap().input_queue_depth > 0 {
                    handle.write_state(1, [0]).await.unwrap();
                    writes += 1;
                }
                writes
            },
            async {
                let mut answers = Vec::new();
                while answers.len() < values.len() {
                    answers.extend(rt.receive_batch::<i32>("busy", values.len(), WAIT).await.unwrap());
                }
                answers
            }
        );
        assert!(written > 0);
        assert_eq!(answers.len(), values.len(), "each message answered once");
        let mut counts = answers.clone();
        counts.sort();
        assert_eq!(counts, (0..8000).collect::<Vec<i32>>(), "state[0], never written, counted each message once");
        assert_eq!(handle.metrics().unwrap().messages_processed, 8000);
    });
}

#[test]
fn bad_values_and_kernels_that_cannot_take_them_are_refused_by_name() {
    let rt = runtime();
    pollster::block_on(async {
        rt.launch_definition(counter("count"), LaunchOptions::default().with_auto_activate()).await.unwrap();
        rt.write_state("count", 0, [3, 4]).await.unwrap();
        let refusals = [
            (
                rt.write_state("count", 0, [1.5f32]).await,
                "the state of kernel 'count' is array<atomic<i32>, 2>: give i32 values, got f32 values",
            ),
            (
                rt.write_state("count", 0, [1u32]).await,
                "the state of kernel 'count' is array<atomic<i32>, 2>: give i32 values, got u32 values",
            ),
            (
                rt.write_state("count", 1, [1, 2]).await,
                "the state of kernel 'count' has 2 elements: 2 values from index 1 do not fit",
            ),
            (
                rt.write_state("count", u32::MAX, [1]).await,
                "the state of kernel 'count' has 2 elements: 1 values from index 4294967295 do not fit",
            ),
        ];
        for (refused, text) in refusals {
            let error = refused.unwrap_err();
            assert!(matches!(error, Error::InvalidArgument(_) | Error::OutOfRange(_)), "{error:?}");
            assert!(error.to_string().contains(text), "{error}");
        }
        assert_eq!(rt.read_state_as::<i32>("count").await.unwrap(), [3, 4], "nothing refused was written");

        rt.launch("doubler", LaunchOptions::default()).await.unwrap();
        let no_state = rt.write_state("doubler", 0, [1]).await.unwrap_err();
        assert!(
            no_state.to_string().ends_with(
                "kernel 'doubler' has no state; declare one in its definition: with_state(element, len) (state: { \
                 type, length })"
            ),
            "{no_state}"
        );
        assert!(matches!(rt.write_state("nobody", 0, [1]).await, Err(Error::KernelNotFound { .. })));

        // Initial values are held to the same rules, and a refused launch leaves its id free.
        let too_many = rt.launch_definition(counter("big"), LaunchOptions::default().with_initial_state([1, 2, 3]));
        assert!(matches!(too_many.await, Err(Error::OutOfRange(_))));
        let floats = rt.launch_definition(counter("big"), LaunchOptions::default().with_initial_state([1.0f32]));
        assert!(matches!(floats.await, Err(Error::InvalidArgument(_))));
        let no_state = rt.launch("echo", LaunchOptions::default().with_initial_state([1]));
        assert!(matches!(no_state.await, Err(Error::InvalidArgument(_))));
        rt.launch_definition(counter("big"), LaunchOptions::default().with_initial_state([1, 2])).await.unwrap();

        // A terminated kernel's state stays readable, not writable.
        rt.terminate("count", WAIT).await.unwrap();
        let ended = rt.write_state("count", 0, [1]).await.unwrap_err();
        assert!(
            matches!(&ended, Error::KernelState { state: KernelState::Terminated, action: Action::WriteState, .. }),
            "{ended:?}"
        );
        assert_eq!(rt.read_state_as::<i32>("count").await.unwrap(), [3, 4]);
        // A failed one's is restored by recovery, so a write now would be lost: refused.
        rt.destroy_device().unwrap();
        assert!(matches!(rt.write_state("big", 0, [1]).await, Err(Error::DeviceLost { .. })));
        rt.dispose().await.unwrap();
        assert!(matches!(rt.write_state("big", 0, [1]).await, Err(Error::Disposed)));
    });
}

/// A handle writes its own launch's state only.
#[test]
fn a_handle_writes_its_own_launch_only() {
    let rt = runtime();
    pollster::block_on(async {
        let first = rt.launch_definition(counter("count"), LaunchOptions::default()).await.unwrap();
        first.write_state(0, [9, 9]).await.unwrap();
        assert_eq!(first.read_state_as::<i32>().await.unwrap(), [9, 9]);
        rt.terminate("count", WAIT).await.unwrap();
        rt.remove("count").unwrap();
        let second = rt.launch_definition(counter("count"), LaunchOptions::default()).await.unwrap();
        assert!(matches!(first.write_state(0, [1]).await, Err(Error::KernelNotFound { .. })));
        assert_eq!(second.read_state_as::<i32>().await.unwrap(), [0, 0]);
    });
}

/// On the cpu backend the host handler's state words take the initial values and the writes.
#[test]
fn the_cpu_backend_takes_initial_values_and_writes() {
    let rt = runtime_with(RuntimeOptions::default().with_backend(BackendChoice::Cpu));
    pollster::block_on(async {
        let options = LaunchOptions::default().with_auto_activate().with_initial_state(StateValues::I32(vec![40, 1]));
        let handle = rt.launch_definition(counter("count"), options).await.unwrap();
        assert_eq!(counted(&rt, "count", &[5, 6]).await, [40, 41], "in order, on the host");
        handle.write_state(0, [0]).await.unwrap();
        assert_eq!(counted(&rt, "count", &[5]).await, [0]);
        assert_eq!(handle.read_state_as::<i32>().await.unwrap(), [1, 17]);
    });
}

/// A migration carries what was written, to a GPU device or to a cpu one.
#[test]
fn a_migration_carries_the_written_state() {
    let options = RuntimeOptions::default().with_devices([
        DeviceSpec::default(),
        DeviceSpec::default(),
        DeviceSpec::new(BackendChoice::Cpu),
    ]);
    let rt = runtime_with(options);
    pollster::block_on(async {
        let on_first = LaunchOptions::default().with_auto_activate().on_device(DeviceId(0));
        rt.launch_definition(counter("count"), on_first.with_initial_state([1, 1])).await.unwrap();
        assert_eq!(counted(&rt, "count", &[1]).await, [1]);
        rt.write_state("count", 1, [20]).await.unwrap();
        rt.migrate("count", DeviceId(1)).await.unwrap();
        assert_eq!(rt.read_state_as::<i32>("count").await.unwrap(), [2, 20]);
        rt.write_state("count", 0, [30]).await.unwrap();
        rt.migrate("count", DeviceId(2)).await.unwrap();
        assert_eq!(rt.read_state_as::<i32>("count").await.unwrap(), [30, 20]);
        assert_eq!(counted(&rt, "count", &[2]).await, [30]);
        assert_eq!(rt.read_state_as::<i32>("count").await.unwrap(), [31, 22]);
    });
}

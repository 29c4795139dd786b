//! Operations whose futures are dropped part way, as a `select!` or a timeout around them drops
//! them (and an aborted promise on the web): a launch, a migration, a terminate and a call each
//! leave the runtime as if they had not started, or finish what they began, and count what they
//! leave behind. Run on the cpu backend, whose slow host handler keeps a tick under way, and on
//! lavapipe, where a launch compiles on a helper thread.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::poll;
use ringkernel_web::kernel::{self, doubler_request, doubler_response, host};
use ringkernel_web::{
    BackendChoice, DeviceId, DeviceSpec, ErrorKind, KernelDefinition, KernelState, LaunchOptions, Runtime,
    RuntimeOptions,
};

const WAIT: Option<Duration> = Some(Duration::from_secs(20));

/// A doubler on the host that takes `ms` per message, so its ticks stay under way a while.
fn register_slow(id: &str, ms: u64) {
    let handler = host::typed(move |v: &i32, _: &mut [u32]| {
        std::thread::sleep(Duration::from_millis(ms));
        Some(v * 2)
    });
    kernel::register_or_replace(
        KernelDefinition::new(id, doubler_request(), doubler_response(), "").with_host_handler(handler),
    );
}

/// Polls `future` once (it must then wait) and drops it.
async fn start_and_drop<F: Future>(future: F) {
    let mut future: Pin<Box<F>> = Box::pin(future);
    assert!(poll!(future.as_mut()).is_pending(), "the operation was meant to be waiting when dropped");
}

fn cpu_devices(n: usize) -> Runtime {
    let options = RuntimeOptions::default().with_devices(vec![DeviceSpec::new(BackendChoice::Cpu); n]);
    pollster::block_on(Runtime::new(options)).unwrap()
}

/// Dropped while it waits for the kernel's tick, a migration leaves the kernel where it was,
/// running: it used to stay held out of every tick, accepting sends it never processed.
#[test]
fn a_dropped_migration_leaves_the_kernel_running_where_it_was() {
    register_slow("slow-migrating", 100);
    let rt = cpu_devices(2);
    pollster::block_on(async {
        let options = LaunchOptions::default().with_max_batch(1).on_device(DeviceId(0)).with_auto_activate();
        rt.launch("slow-migrating", options).await.unwrap();
        rt.send_pod("slow-migrating", &1i32, None).await.unwrap();
        common::wait_until("its tick to be under way", || rt.kernel_metrics("slow-migrating").unwrap().in_flight == 1);
        start_and_drop(rt.migrate("slow-migrating", DeviceId(1))).await;
        rt.send_pod("slow-migrating", &2i32, None).await.unwrap();
        assert_eq!(rt.receive_batch::<i32>("slow-migrating", 1, WAIT).await.unwrap(), [2]);
        assert_eq!(rt.receive_batch::<i32>("slow-migrating", 1, WAIT).await.unwrap(), [4], "it runs on after");
        assert_eq!(rt.device_of("slow-migrating").unwrap(), DeviceId(0), "it stayed where it was");
        let report = rt.migrate("slow-migrating", DeviceId(1)).await.unwrap();
        assert_eq!((report.from, report.to), (DeviceId(0), DeviceId(1)), "and can still move");
        assert_eq!(rt.call_pod::<i32, i32>("slow-migrating", &3, WAIT).await.unwrap(), 6);
    });
}

/// Dropped while it compiles (lavapipe compiles on a helper thread), a launch takes its id's
/// reservation back: the id used to stay `Created` for good, refusing every launch.
#[test]
fn a_dropped_launch_frees_its_id() {
    let rt = common::runtime_on(BackendChoice::Auto);
    pollster::block_on(async {
        start_and_drop(rt.launch("doubler", LaunchOptions::default())).await;
        assert!(rt.get_kernel("doubler").is_none(), "the dropped launch left {:?}", rt.state("doubler"));
        rt.launch("doubler", LaunchOptions::default().with_auto_activate()).await.unwrap();
        assert_eq!(rt.call_pod::<i32, i32>("doubler", &21, WAIT).await.unwrap(), 42);
    });
}

/// Dropped while its kernel drains, a terminate still ends it once the last message is
/// answered: the kernel used to stay `Terminating`, its next receive waiting for ever.
#[test]
fn a_dropped_terminate_still_ends_its_kernel() {
    register_slow("slow-terminating", 20);
    let rt = cpu_devices(1);
    pollster::block_on(async {
        rt.launch("slow-terminating", LaunchOptions::default().with_max_batch(1).with_auto_activate()).await.unwrap();
        rt.send_batch::<i32>("slow-terminating", &[1, 2, 3, 4], None).await.unwrap();
        start_and_drop(rt.terminate("slow-terminating", None)).await;
        assert_eq!(rt.state("slow-terminating").unwrap(), KernelState::Terminating);
        common::wait_until("the kernel to end", || rt.state("slow-terminating").unwrap() == KernelState::Terminated);
        assert_eq!(common::receive_n(&rt, "slow-terminating", 4, WAIT.unwrap()).await, [2, 4, 6, 8]);
        let e = rt.receive_batch::<i32>("slow-terminating", 1, WAIT).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KernelState, "{e}");
        let t = rt.telemetry("slow-terminating").unwrap().unwrap();
        assert_eq!((t.messages_processed, t.unprocessed_at_termination), (4, 0));
    });
}

/// Dropped after its answer came but before it read it, a call abandoned that answer: counted
/// in `answers_abandoned`, no longer as received by nobody.
#[test]
fn a_call_dropped_with_its_answer_unread_counts_it_abandoned() {
    register_slow("slow-called", 20);
    let rt = cpu_devices(1);
    pollster::block_on(async {
        rt.launch("slow-called", LaunchOptions::default().with_auto_activate()).await.unwrap();
        let mut call = Box::pin(rt.call_pod::<i32, i32>("slow-called", &5, WAIT));
        assert!(poll!(call.as_mut()).is_pending());
        common::wait_until("the answer to be delivered", || {
            rt.telemetry("slow-called").unwrap().unwrap().messages_processed == 1
        });
        drop(call);
        let t = rt.telemetry("slow-called").unwrap().unwrap();
        assert_eq!((t.messages_received, t.answers_abandoned), (0, 1));
        assert_eq!(rt.call_pod::<i32, i32>("slow-called", &6, WAIT).await.unwrap(), 12);
        let t = rt.telemetry("slow-called").unwrap().unwrap();
        assert_eq!((t.messages_received, t.answers_abandoned), (1, 1));
    });
}

/// A call whose answer came, dropped after its kernel was removed and another launched under its
/// id: the new kernel is not charged; the runtime's totals, which took the old one's counts at
/// the remove, count the answer abandoned.
#[test]
fn a_call_dropped_after_its_kernel_was_replaced_charges_the_old_one() {
    let id = "replaced";
    // Slow enough that the call's first poll never finds its answer already there (with no
    // delay the loop's thread sometimes answered between the call's send and its look).
    register_slow(id, 20);
    let rt = cpu_devices(1);
    pollster::block_on(async {
        rt.launch(id, LaunchOptions::default().with_auto_activate()).await.unwrap();
        let mut call = Box::pin(rt.call_pod::<i32, i32>(id, &5, Some(Duration::from_secs(10))));
        assert!(poll!(call.as_mut()).is_pending());
        common::wait_until("answer delivered", || rt.telemetry(id).unwrap().unwrap().messages_received == 1);
        rt.terminate(id, None).await.unwrap();
        rt.remove(id).unwrap();
        rt.launch(id, LaunchOptions::default().with_auto_activate()).await.unwrap();
        drop(call);
        let t = rt.telemetry(id).unwrap().unwrap();
        assert_eq!((t.messages_received, t.answers_abandoned), (0, 0), "the new kernel was charged");
        let report = rt.shutdown().await.unwrap();
        assert_eq!(report.answers_never_received, 1, "the abandoned answer is counted");
    });
}

/// A terminate dropped while its kernel is failed (its device lost) ends it once recovery has
/// run it again and it has drained: failed while terminating, it used to return to
/// `Terminating` with nothing to say it should end.
#[test]
fn a_terminate_dropped_while_its_kernel_failed_ends_it_after_recovery() {
    let rt = common::runtime_on(BackendChoice::Auto);
    pollster::block_on(async {
        let options = LaunchOptions::default().with_queue_capacity(2048).with_max_batch(1).with_auto_activate();
        rt.launch("doubler", options).await.unwrap();
        rt.send_batch::<i32>("doubler", &(0..2000).collect::<Vec<_>>(), None).await.unwrap();
        let mut terminating = Box::pin(rt.terminate("doubler", None));
        assert!(poll!(terminating.as_mut()).is_pending());
        rt.destroy_device_at(DeviceId(0)).unwrap();
        common::wait_until("the kernel to fail", || rt.state("doubler").unwrap() == KernelState::Failed);
        drop(terminating);
        rt.recover().await.unwrap();
        let mut answered = 0;
        while answered < 2000 {
            answered += rt.receive_batch::<i32>("doubler", 4096, WAIT).await.unwrap().len();
        }
        common::wait_until("the kernel to end", || rt.state("doubler").unwrap() == KernelState::Terminated);
    });
}

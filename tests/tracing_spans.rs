//! Tracing spans natively (`RuntimeOptions::tracing`), on lavapipe and on the cpu backend: with
//! tracing on, a subscriber sees `launch` (with its kernel), `tick` with `tick.plan` and
//! `tick.execute` inside it and `tick.deliver` inside that, and `recovery`; with tracing off it
//! sees nothing from the runtime. (The browser's User Timing measures: `tests/web.rs`.) The
//! spans also show which thread ran a tick: a `receive` that waits runs it itself.
#![cfg(not(target_arch = "wasm32"))]
#[allow(unused_imports)]
mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use ringkernel_web::{BackendChoice, LaunchOptions, Runtime, RuntimeOptions};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

const WAIT: Option<Duration> = Some(Duration::from_secs(30));

/// One span as the subscriber saw it being created.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    name: &'static str,
    target: String,
    /// The span entered on the creating thread at the time (tracing's contextual parent).
    parent: Option<&'static str>,
    kernel: Option<String>,
    /// The thread that created it.
    thread: std::thread::ThreadId,
}

/// A minimal subscriber: records every span it is told about, and which span each thread is in.
#[derive(Default)]
struct Recorder {
    next: AtomicU64,
    names: Mutex<HashMap<u64, &'static str>>,
    seen: Mutex<Vec<Seen>>,
}

thread_local! {
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

struct KernelField(Option<String>);

impl Visit for KernelField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "kernel" {
            self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "kernel" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl Subscriber for &'static Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let names = &mut *self.names.lock().unwrap();
        names.insert(id, attrs.metadata().name());
        let parent = ENTERED.with(|e| e.borrow().last().map(|p| names[p]));
        let mut kernel = KernelField(None);
        attrs.record(&mut kernel);
        self.seen.lock().unwrap().push(Seen {
            name: attrs.metadata().name(),
            target: attrs.metadata().target().to_owned(),
            parent,
            kernel: kernel.0,
            thread: std::thread::current().id(),
        });
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, span: &Id) {
        ENTERED.with(|e| e.borrow_mut().push(span.into_u64()));
    }
    fn exit(&self, span: &Id) {
        ENTERED.with(|e| {
            let mut entered = e.borrow_mut();
            if let Some(at) = entered.iter().rposition(|&s| s == span.into_u64()) {
                entered.remove(at);
            }
        });
    }
}

/// The recorder sees every runtime of the process: tests that read it take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn recorder() -> &'static Recorder {
    static RECORDER: OnceLock<&'static Recorder> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let recorder: &'static Recorder = Box::leak(Box::default());
        tracing::subscriber::set_global_default(recorder).expect("the only subscriber of this test binary");
        recorder
    })
}

/// Launches and runs a doubler over 100 messages, then loses the device and recovers it (GPU
/// backends), on a runtime with tracing `on` or off; returns the spans seen meanwhile.
fn exercise(backend: BackendChoice, on: bool) -> Vec<Seen> {
    let recorder = recorder();
    let before = recorder.seen.lock().unwrap().len();
    let options = RuntimeOptions::default().with_backend(backend).with_tracing(on);
    let rt = pollster::block_on(Runtime::new(options)).unwrap_or_else(|e| panic!("{backend:?}: {e}"));
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default().with_auto_activate()).await.unwrap();
        let values: Vec<i32> = (0..100).collect();
        assert_eq!(rt.send_batch("doubler", &values, WAIT).await.unwrap(), 100);
        let mut answers = Vec::new();
        while answers.len() < 100 {
            answers.extend(rt.receive_batch::<i32>("doubler", 100, WAIT).await.unwrap());
        }
        assert_eq!(answers, values.iter().map(|v| v * 2).collect::<Vec<_>>());
        if backend != BackendChoice::Cpu {
            rt.destroy_device().unwrap();
            rt.recover().await.unwrap();
        }
        rt.dispose().await.unwrap();
    });
    // The runtime goes first: dropping it joins its tick thread, which may be opening a span
    // (taking the recorder's lock), so the lock must not be held meanwhile.
    drop(rt);
    // Only the runtime's own spans (wgpu and others may have theirs).
    let seen =
        recorder.seen.lock().unwrap()[before..].iter().filter(|s| s.target == "ringkernel_web").cloned().collect();
    seen
}

fn count(seen: &[Seen], name: &str) -> usize {
    seen.iter().filter(|s| s.name == name).count()
}

#[test]
fn spans_when_on_and_none_when_off() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    for backend in [BackendChoice::Vulkan, BackendChoice::Cpu] {
        let seen = exercise(backend, true);
        let launch: Vec<_> = seen.iter().filter(|s| s.name == "launch").collect();
        assert_eq!(launch.len(), 1, "{backend:?}: {seen:?}");
        assert_eq!(launch[0].kernel.as_deref(), Some("doubler"));
        let ticks = count(&seen, "tick");
        assert!(ticks >= 1, "{backend:?}: no tick span in {seen:?}");
        assert!(count(&seen, "tick.plan") >= 1 && count(&seen, "tick.plan") <= ticks, "{backend:?}: {seen:?}");
        let executes = count(&seen, "tick.execute");
        assert!(executes >= 1, "{backend:?}: {seen:?}");
        assert!(count(&seen, "tick.deliver") >= 1 && count(&seen, "tick.deliver") <= executes, "{backend:?}: {seen:?}");
        for (child, parent) in [("tick.plan", "tick"), ("tick.execute", "tick"), ("tick.deliver", "tick.execute")] {
            for s in seen.iter().filter(|s| s.name == child) {
                assert_eq!(s.parent, Some(parent), "{backend:?}: {child} outside {parent}: {seen:?}");
            }
        }
        let recoveries = if backend == BackendChoice::Cpu { 0 } else { 1 };
        assert_eq!(count(&seen, "recovery"), recoveries, "{backend:?}: {seen:?}");

        assert_eq!(exercise(backend, false), vec![], "{backend:?}: spans with tracing off");
    }
}

/// A `receive` that has to wait runs the tick on its own thread when the tick loop is not
/// ticking (no hop to the loop's thread and back). Which of the two gets there first is a race
/// (the loop, woken by the send, first lets a burst of sends settle): in optimised builds the
/// caller wins nearly always, in debug builds about one round trip in three. Before callers
/// helped, none did.
#[test]
fn a_waiting_receive_runs_the_tick_on_its_own_thread() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let recorder = recorder();
    let caller = std::thread::current().id();
    let options = RuntimeOptions::default().with_backend(BackendChoice::Vulkan).with_tracing(true);
    let rt = pollster::block_on(Runtime::new(options)).unwrap();
    let before = recorder.seen.lock().unwrap().len();
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default().with_auto_activate()).await.unwrap();
        for value in 0..100 {
            rt.send_pod("doubler", &value, WAIT).await.unwrap();
            assert_eq!(rt.receive_pod::<i32>("doubler", WAIT).await.unwrap(), 2 * value);
        }
        rt.dispose().await.unwrap();
    });
    drop(rt);
    let seen = recorder.seen.lock().unwrap();
    let executed = |on_caller: bool| {
        seen[before..].iter().filter(|s| s.name == "tick.execute" && (s.thread == caller) == on_caller).count()
    };
    let (here, elsewhere) = (executed(true), executed(false));
    assert!(here + elsewhere >= 100, "{here} + {elsewhere} ticks for 100 round trips");
    assert!(here > 0, "none of {elsewhere} ticks ran on the caller's thread");
}

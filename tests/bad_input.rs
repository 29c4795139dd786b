//! The bad-input table, natively. Every way to call the runtime wrongly is one row: an
//! operation and the error `name` it must fail with. The rows run against one runtime whose
//! kernels sit in known states with known queued messages and answers, and for every row:
//!
//! - the operation fails, with exactly the named error (and the field path, compile position,
//!   or state and action where the row gives one);
//! - nothing changed: kernel ids, states, queue depths, in-flight counts, every message counter,
//!   dispatches, bytes, routes and pump ticks are what they were before the row;
//! - except `errors`: the kernel's counter of failed *message operations* (its documented
//!   meaning: refused messages, full queues, timeouts, and sends, calls and receives refused by
//!   the kernel's state) goes up by exactly one for those, and by nothing for anything else (bad
//!   arguments, unknown kernels, lifecycle refusals, compile errors). See [`counted`].
//!
//! After the table, every queued message and answer is still there, in order: queued inputs are
//! processed into the expected answers and queued answers are received as they were.
//!
//! The table runs twice: on the GPU (lavapipe natively) and on the `cpu` backend. The cpu world
//! also holds a kernel in each transient state — `created` (its host handler's launch check waits
//! on a gate) and `terminating` (its handler waits on a gate while terminate drains) — so illegal
//! transitions are tried from all six states without racing anything.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::{receive_n, runtime_on, wait_until};
use futures_util::FutureExt;
use ringkernel_web::kernel::host::HostOutcome;
use ringkernel_web::kernel::{self, doubler_request, doubler_response, host, HostHandler};
use ringkernel_web::lifecycle::Action;
use ringkernel_web::message::MessageLayout;
use ringkernel_web::{
    BackendChoice, DegradationLevel, DegradationOptions, Error, ErrorKind, FieldType, KernelDefinition, KernelState,
    LaunchOptions, MemoryPressureAlert, Runtime, RuntimeOptions, Scalar, StateElement, Value,
};
use ringkernel_web::{CircuitBreakerConfig, CircuitState};
use ringkernel_web::{DeviceSpec, WatchdogConfig, MAX_DEVICES, MAX_QUEUE_SIZE};

// ---- the kernels of the world ----

/// Launched, never activated: holds inputs 1 and 2.
const LAUNCHED: &str = "bad-launched";
/// Active: holds the answers 6 and 8, unreceived.
const ACTIVE: &str = "bad-active";
/// Deactivated: holds input 5.
const PAUSED: &str = "bad-paused";
/// Terminated: holds the answer 14.
const DONE: &str = "bad-done";
/// Terminated with nothing left: `receive` is refused.
const GONE: &str = "bad-gone";
/// Launched with a queue of 2, full: inputs 9 and 10.
const FULL: &str = "bad-full";
/// Launched, with an input type of every field kind (see [`shape_layout`]); holds nothing.
const SHAPES: &str = "bad-shapes";
/// cpu world only: `created`, its launch waiting in its handler's check.
const CREATING: &str = "bad-creating";
/// cpu world only: `terminating`, its one message stuck in its handler.
const TERMINATING: &str = "bad-terminating";
/// Registered, never launched.
const FRESH: &str = "bad-fresh";

const QUEUE: usize = 4;
const NOWHERE: &str = "no-such-kernel";

fn queue(size: usize) -> LaunchOptions {
    LaunchOptions::default().with_queue_capacity(size)
}

/// Registers `id` as a doubler (`{ value: i32 }` → `{ result: value * 2 }`, WGSL and Rust).
fn register_doubler(id: &str) {
    kernel::register_or_replace((*kernel::lookup("doubler").unwrap()).clone().with_id(id));
}

fn definition(id: &str) -> KernelDefinition {
    (*kernel::lookup(id).unwrap_or_else(|| panic!("{id} is registered"))).clone()
}

/// `BadInner { a: u32, v: vec2<f32> }`.
fn inner_layout() -> MessageLayout {
    MessageLayout::builder("BadInner")
        .field("a", FieldType::U32)
        .field("v", FieldType::vector(Scalar::F32, 2))
        .build()
        .unwrap()
}

/// `BadShape { i: i32, u: u32, f: f32, p: vec3<f32>, arr: array<i32, 4>, inner: BadInner,
/// items: array<BadInner, 2> }`: every kind of field a message can have.
fn shape_layout() -> MessageLayout {
    let inner = inner_layout();
    MessageLayout::builder("BadShape")
        .field("i", FieldType::I32)
        .field("u", FieldType::U32)
        .field("f", FieldType::F32)
        .field("p", FieldType::vector(Scalar::F32, 3))
        .field("arr", FieldType::array(FieldType::I32, 4))
        .field("inner", FieldType::message(&inner))
        .field("items", FieldType::array(FieldType::message(&inner), 2))
        .build()
        .unwrap()
}

fn register_shapes() {
    let def = KernelDefinition::new(
        SHAPES,
        shape_layout(),
        doubler_response(),
        "fn handle(m: BadShape) -> Response { return Response(m.i); }",
    )
    .with_host_handler(|_: &[u8], out: &mut [u8], _: &mut [u32]| -> HostOutcome {
        out.fill(0);
        Ok(true)
    });
    kernel::register_or_replace(def);
}

/// A gate host handlers wait on, so a kernel stays in a transient state until it opens.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// A doubler whose launch check (`wait_in_check`) or whose every message (otherwise) waits for
/// the gate.
struct GatedDoubler {
    gate: Arc<Gate>,
    wait_in_check: bool,
}

impl HostHandler for GatedDoubler {
    fn handle(&self, input: &[u8], output: &mut [u8], _: &mut [u32]) -> HostOutcome {
        if !self.wait_in_check {
            self.gate.wait();
        }
        let value = i32::from_le_bytes(input.try_into().unwrap());
        output.copy_from_slice(&(value.wrapping_mul(2)).to_le_bytes());
        Ok(true)
    }

    fn check(&self, _: &MessageLayout, _: &MessageLayout) -> Result<(), String> {
        if self.wait_in_check {
            self.gate.wait();
        }
        Ok(())
    }
}

/// Opens its gates when dropped, so a failing row cannot leave a thread waiting forever.
struct OpenOnDrop(Vec<Arc<Gate>>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.iter().for_each(|gate| gate.open());
    }
}

/// The registries of kernels are global to the test process, and the worlds register the same
/// ids (the gated kernels with gates of their own), so the tests of this file take turns.
fn one_world_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn register_gated(id: &str, gate: &Arc<Gate>, wait_in_check: bool) {
    let handler = GatedDoubler { gate: gate.clone(), wait_in_check };
    // State, so that `read_state` of the created kernel is refused for its state, not for lacking one.
    let def = KernelDefinition::new(id, doubler_request(), doubler_response(), "")
        .with_host_handler(handler)
        .with_state(StateElement::U32, 1);
    kernel::register_or_replace(def);
}

/// The world every table runs against: one runtime, kernels in known states.
struct World {
    rt: Runtime,
    backend: BackendChoice,
    /// The kernel that sits in each state this world holds.
    held: Vec<(KernelState, &'static str)>,
}

impl World {
    /// Launches the kernels of the stable states and fills their queues; waits until the pump
    /// has nothing left to do, so only the rows can change anything.
    fn new(backend: BackendChoice) -> World {
        Self::with_options(RuntimeOptions::default().with_backend(backend))
    }

    /// [`new`](Self::new) with a runtime made from `options`.
    fn with_options(options: RuntimeOptions) -> World {
        let backend = options.backend;
        for id in [LAUNCHED, ACTIVE, PAUSED, DONE, GONE, FULL, FRESH] {
            register_doubler(id);
        }
        register_shapes();
        let rt = pollster::block_on(Runtime::new(options)).unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        pollster::block_on(async {
            rt.launch(LAUNCHED, queue(QUEUE)).await.unwrap();
            rt.send_batch(LAUNCHED, &[1i32, 2], None).await.unwrap();

            rt.launch(ACTIVE, queue(QUEUE)).await.unwrap();
            rt.activate(ACTIVE).await.unwrap();
            rt.send_batch(ACTIVE, &[3i32, 4], None).await.unwrap();

            rt.launch(PAUSED, queue(QUEUE)).await.unwrap();
            rt.activate(PAUSED).await.unwrap();
            rt.deactivate(PAUSED).await.unwrap();
            rt.send_pod(PAUSED, &5i32, None).await.unwrap();

            rt.launch(DONE, queue(QUEUE)).await.unwrap();
            rt.send_pod(DONE, &7i32, None).await.unwrap();
            rt.terminate(DONE, Some(Duration::from_millis(30_000))).await.unwrap(); // drains: the answer 14 stays

            rt.launch(GONE, queue(QUEUE)).await.unwrap();
            rt.terminate(GONE, Some(Duration::from_millis(30_000))).await.unwrap();

            rt.launch(FULL, queue(2)).await.unwrap();
            assert_eq!(rt.send_batch(FULL, &[9i32, 10], Some(Duration::from_millis(0))).await, Ok(2));

            rt.launch(SHAPES, queue(QUEUE)).await.unwrap();
        });
        wait_until("the active kernel's two answers", || depths(&rt, ACTIVE) == (0, 0, 2));
        let held = vec![
            (KernelState::Launched, LAUNCHED),
            (KernelState::Active, ACTIVE),
            (KernelState::Deactivated, PAUSED),
            (KernelState::Terminated, DONE),
        ];
        World { rt, backend, held }
    }

    /// Every queued message and answer is still there, in order, and the kernels still work.
    fn assert_queues_intact(&self) {
        let rt = &self.rt;
        pollster::block_on(async {
            assert_eq!(receive_n(rt, ACTIVE, 2, Duration::from_secs(30)).await, [6, 8], "{ACTIVE}'s queued answers");
            assert_eq!(receive_n(rt, DONE, 1, Duration::from_secs(30)).await, [14], "{DONE}'s queued answer");
            let gone = rt.receive(DONE, Some(Duration::from_millis(0))).await.unwrap_err();
            assert_eq!(gone.kind(), ErrorKind::KernelState, "nothing more comes from a terminated kernel");
            rt.activate(LAUNCHED).await.unwrap();
            assert_eq!(receive_n(rt, LAUNCHED, 2, Duration::from_secs(30)).await, [2, 4], "{LAUNCHED}'s queued inputs");
            rt.reactivate(PAUSED).await.unwrap();
            assert_eq!(receive_n(rt, PAUSED, 1, Duration::from_secs(30)).await, [10], "{PAUSED}'s queued input");
            rt.activate(FULL).await.unwrap();
            assert_eq!(receive_n(rt, FULL, 2, Duration::from_secs(30)).await, [18, 20], "{FULL}'s queued inputs");
            assert_eq!(
                rt.call_pod::<i32, i32>(ACTIVE, &50, Some(Duration::from_millis(30_000))).await.unwrap(),
                100,
                "still answers"
            );
        });
    }
}

/// Runs `rows` against the GPU world, then checks that every queue is intact.
fn with_gpu_world(rows: impl FnOnce(&World)) {
    let _turn = one_world_at_a_time();
    let world = World::new(BackendChoice::Auto);
    rows(&world);
    world.assert_queues_intact();
}

/// Runs `rows` against the cpu world: the stable states, plus a kernel held in `created` and one
/// in `terminating` by gates. Then the gates open, both kernels must finish what they were
/// doing, and every queue must be intact.
fn with_cpu_world(rows: impl FnOnce(&World)) {
    let _turn = one_world_at_a_time();
    let mut world = World::new(BackendChoice::Cpu);
    let (creating, terminating) = (Arc::new(Gate::default()), Arc::new(Gate::default()));
    register_gated(CREATING, &creating, true);
    register_gated(TERMINATING, &terminating, false);
    world.held.extend([(KernelState::Created, CREATING), (KernelState::Terminating, TERMINATING)]);
    let world = &world;
    let rt = &world.rt;
    std::thread::scope(|scope| {
        // Dropped before the scope joins its thread, also when a row panics.
        let open_on_exit = OpenOnDrop(vec![creating.clone(), terminating.clone()]);
        // Terminating: its one message waits in its handler, so the drain waits.
        pollster::block_on(async {
            rt.launch(TERMINATING, queue(QUEUE)).await.unwrap();
            rt.send_pod(TERMINATING, &21i32, None).await.unwrap();
            rt.activate(TERMINATING).await.unwrap();
        });
        wait_until("the gated handler to take its message", || depths(rt, TERMINATING) == (0, 1, 0));
        let mut terminate = Box::pin(rt.terminate(TERMINATING, None));
        assert!((&mut terminate).now_or_never().is_none(), "terminate waits for the gated message");
        // Created: the launch waits in its handler's check, on another thread.
        let launch = scope.spawn(|| pollster::block_on(rt.launch(CREATING, queue(QUEUE))));
        wait_until("the gated launch to reserve its id", || rt.state(CREATING).is_ok());

        rows(world);

        assert_eq!(rt.state(CREATING).unwrap(), KernelState::Created, "held until its gate opens");
        assert_eq!(rt.state(TERMINATING).unwrap(), KernelState::Terminating, "held until its gate opens");
        drop(open_on_exit);
        launch.join().unwrap().expect("the held launch completes");
        pollster::block_on(terminate).expect("the held terminate drains");
        pollster::block_on(async {
            assert_eq!(
                receive_n(rt, TERMINATING, 1, Duration::from_secs(30)).await,
                [42],
                "the held message was answered"
            );
            rt.activate(CREATING).await.unwrap();
            assert_eq!(rt.call_pod::<i32, i32>(CREATING, &4, Some(Duration::from_millis(30_000))).await.unwrap(), 8);
        });
    });
    world.assert_queues_intact();
}

/// (input queue depth, in flight, output queue depth).
fn depths(rt: &Runtime, id: &str) -> (usize, usize, usize) {
    let t = rt.telemetry(id).unwrap().expect("telemetry is on");
    (t.input_queue_depth, t.in_flight, t.output_queue_depth)
}

// ---- "nothing changed" ----

/// Everything a bad input must leave alone, with each kernel's `errors` apart (see [`counted`]).
/// Uptime, throughput and the error rate move on their own and are left out.
type Snapshot = common::Snapshot<Vec<String>, u64, KernelView, u64>;

/// One kernel's part of a [`Snapshot`].
#[derive(Debug, Clone, PartialEq)]
struct KernelView {
    state: KernelState,
    queue_size: usize,
    sent: u64,
    received: u64,
    processed: u64,
    dropped: u64,
    dispatches: u64,
    input_depth: usize,
    in_flight: usize,
    output_depth: usize,
    bytes_to_device: u64,
    bytes_from_device: u64,
    gpu_memory: u64,
    unprocessed_at_termination: u64,
    answers_abandoned: u64,
    forwarded: u64,
    connected_to: Option<String>,
    last_error: Option<String>,
    latencies: u64,
}

fn snapshot(rt: &Runtime) -> Snapshot {
    let summary = rt.summary();
    let mut kernels = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for (id, t) in &summary.per_kernel {
        let view = KernelView {
            state: t.state,
            queue_size: t.queue_size,
            sent: t.messages_sent,
            received: t.messages_received,
            processed: t.messages_processed,
            dropped: t.messages_dropped,
            dispatches: t.dispatches,
            input_depth: t.input_queue_depth,
            in_flight: t.in_flight,
            output_depth: t.output_queue_depth,
            bytes_to_device: t.bytes_to_device,
            bytes_from_device: t.bytes_from_device,
            gpu_memory: t.gpu_memory_bytes,
            unprocessed_at_termination: t.unprocessed_at_termination,
            answers_abandoned: t.answers_abandoned,
            forwarded: t.messages_forwarded,
            connected_to: t.connected_to.clone(),
            last_error: t.last_error.clone(),
            latencies: t.latency.count,
        };
        kernels.insert(id.clone(), view);
        errors.insert(id.clone(), t.errors);
    }
    Snapshot { ids: rt.kernel_ids(), active: rt.active_kernels(), ticks: summary.ticks, kernels, errors }
}

// ---- operations ----

/// A `#[repr(C)]` message type of the wrong or the right size for a doubler's 4-byte messages.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Width {
    /// `u16`: 2 bytes.
    Short,
    /// `i32`: the doubler's 4 bytes.
    Exact,
    /// `[i32; 2]`: 8 bytes, bigger than a ring slot.
    Wide,
    /// `f32`: the doubler's 4 bytes, but another scalar than its `i32`.
    Float,
}

type Fields = Vec<(String, Value)>;

/// One call of the native API, with its arguments. Every method that takes a kernel id has a
/// variant (the `*_as`/`*_pod`/`*_batch` generics by [`Width`]).
#[derive(Debug, Clone)]
enum Op {
    Launch(String, LaunchOptions),
    LaunchDefinition(Box<KernelDefinition>, LaunchOptions),
    ManagedKernel(String),
    Activate(String),
    Deactivate(String),
    Reactivate(String),
    Terminate(String, Option<Duration>),
    TerminateAll(Option<Duration>),
    Drain(Duration),
    Remove(String),
    ReadState(String),
    ReadStateAs(String),
    Connect(String, String),
    Disconnect(String),
    Send(String, Fields, Option<Duration>),
    SendPacked(String, Vec<u8>, Option<Duration>),
    SendPod(String, Width, Option<Duration>),
    SendBatch(String, Width, Option<Duration>),
    Call(String, Fields, Option<Duration>),
    CallPacked(String, Vec<u8>, Option<Duration>),
    CallPod(String, Width, Width, Option<Duration>),
    Encode(String, Fields),
    Receive(String, Option<Duration>),
    ReceivePacked(String, Option<Duration>),
    ReceiveBatchPacked(String, Option<Duration>),
    ReceivePod(String, Width, Option<Duration>),
    ReceiveBatch(String, Width, Option<Duration>),
    State(String),
    Mode(String),
    Telemetry(String),
    InputLayout(String),
    OutputLayout(String),
    StateSpec(String),
    QueueSize(String),
    ConnectedTo(String),
    CircuitBreaker(String),
    CircuitStatus(String),
    /// A protected operation that would succeed.
    Execute(String),
}

impl Op {
    /// The kernel whose `errors` the runtime may count this failure in.
    fn kernel(&self) -> Option<&str> {
        use Op::*;
        match self {
            TerminateAll(_) | Drain(_) => None,
            LaunchDefinition(def, _) => Some(&def.id),
            Launch(id, _)
            | ManagedKernel(id)
            | Activate(id)
            | Deactivate(id)
            | Reactivate(id)
            | Terminate(id, _)
            | Remove(id)
            | ReadState(id)
            | ReadStateAs(id)
            | Connect(id, _)
            | Disconnect(id)
            | Send(id, ..)
            | SendPacked(id, ..)
            | SendPod(id, ..)
            | SendBatch(id, ..)
            | Call(id, ..)
            | CallPacked(id, ..)
            | CallPod(id, ..)
            | Encode(id, _)
            | Receive(id, _)
            | ReceivePacked(id, _)
            | ReceiveBatchPacked(id, _)
            | ReceivePod(id, ..)
            | ReceiveBatch(id, ..)
            | State(id)
            | Mode(id)
            | Telemetry(id)
            | InputLayout(id)
            | OutputLayout(id)
            | StateSpec(id)
            | QueueSize(id)
            | ConnectedTo(id)
            | CircuitBreaker(id)
            | CircuitStatus(id)
            | Execute(id) => Some(id),
        }
    }

    /// Whether this is a message operation: one that sends or receives messages.
    fn moves_messages(&self) -> bool {
        use Op::*;
        matches!(
            self,
            Send(..)
                | SendPacked(..)
                | SendPod(..)
                | SendBatch(..)
                | Call(..)
                | CallPacked(..)
                | CallPod(..)
                | Receive(..)
                | ReceivePacked(..)
                | ReceiveBatchPacked(..)
                | ReceivePod(..)
                | ReceiveBatch(..)
        )
    }

    /// The operation's name, as the rows are named.
    fn name(&self) -> String {
        let debug = format!("{self:?}");
        debug[..debug.find('(').unwrap_or(debug.len())].to_owned()
    }
}

fn borrowed(fields: &Fields) -> Vec<(&str, Value)> {
    fields.iter().map(|(name, value)| (name.as_str(), value.clone())).collect()
}

/// Runs `op`; what it returns on success does not matter here (every row must fail).
async fn run(rt: &Runtime, op: &Op) -> Result<(), Error> {
    use Op::*;
    use Width::*;
    match op {
        Launch(id, options) => rt.launch(id, options.clone()).await.map(drop),
        LaunchDefinition(def, options) => rt.launch_definition((**def).clone(), options.clone()).await.map(drop),
        ManagedKernel(id) => rt.managed_kernel(id, LaunchOptions::default(), |_| async { Ok(()) }).await,
        Activate(id) => rt.activate(id).await,
        Deactivate(id) => rt.deactivate(id).await,
        Reactivate(id) => rt.reactivate(id).await,
        Terminate(id, timeout) => rt.terminate(id, *timeout).await,
        TerminateAll(timeout) => rt.terminate_all(*timeout).await,
        Drain(timeout) => rt.drain(*timeout).await,
        Remove(id) => rt.remove(id).map(drop),
        ReadState(id) => rt.read_state(id).await.map(drop),
        ReadStateAs(id) => rt.read_state_as::<u32>(id).await.map(drop),
        Connect(from, to) => rt.connect(from, to).await,
        Disconnect(from) => rt.disconnect(from).await,
        Send(id, fields, timeout) => rt.send(id, &borrowed(fields), *timeout).await,
        SendPacked(id, bytes, timeout) => rt.send_packed(id, bytes, *timeout).await.map(drop).map_err(Error::from),
        SendPod(id, Short, timeout) => rt.send_pod(id, &7u16, *timeout).await,
        SendPod(id, Exact, timeout) => rt.send_pod(id, &7i32, *timeout).await,
        SendPod(id, Wide, timeout) => rt.send_pod(id, &[7i32, 8], *timeout).await,
        SendPod(id, Float, timeout) => rt.send_pod(id, &1.5f32, *timeout).await,
        SendBatch(id, Short, timeout) => rt.send_batch(id, &[7u16, 8], *timeout).await.map(drop).map_err(Error::from),
        SendBatch(id, Exact, timeout) => rt.send_batch(id, &[7i32, 8], *timeout).await.map(drop).map_err(Error::from),
        SendBatch(id, Wide, timeout) => rt.send_batch(id, &[[7i32, 8]], *timeout).await.map(drop).map_err(Error::from),
        SendBatch(id, Float, timeout) => rt.send_batch(id, &[1.5f32], *timeout).await.map(drop).map_err(Error::from),
        Call(id, fields, timeout) => rt.call(id, &borrowed(fields), *timeout).await.map(drop),
        CallPacked(id, bytes, timeout) => rt.call_packed(id, bytes, *timeout).await.map(drop),
        CallPod(id, input, output, timeout) => match (input, output) {
            (Short, _) => rt.call_pod::<u16, i32>(id, &7, *timeout).await.map(drop),
            (Wide, _) => rt.call_pod::<[i32; 2], i32>(id, &[7, 8], *timeout).await.map(drop),
            (Float, _) => rt.call_pod::<f32, i32>(id, &1.5, *timeout).await.map(drop),
            (Exact, Float) => rt.call_pod::<i32, f32>(id, &7, *timeout).await.map(drop),
            (Exact, Short) => rt.call_pod::<i32, u16>(id, &7, *timeout).await.map(drop),
            (Exact, Exact) => rt.call_pod::<i32, i32>(id, &7, *timeout).await.map(drop),
            (Exact, Wide) => rt.call_pod::<i32, [i32; 2]>(id, &7, *timeout).await.map(drop),
        },
        Encode(id, fields) => rt.encode(id, &borrowed(fields)).map(drop),
        Receive(id, timeout) => rt.receive(id, *timeout).await.map(drop),
        ReceivePacked(id, timeout) => rt.receive_packed(id, *timeout).await.map(drop),
        ReceiveBatchPacked(id, timeout) => rt.receive_batch_packed(id, 8, *timeout).await.map(drop),
        ReceivePod(id, Short, timeout) => rt.receive_pod::<u16>(id, *timeout).await.map(drop),
        ReceivePod(id, Exact, timeout) => rt.receive_pod::<i32>(id, *timeout).await.map(drop),
        ReceivePod(id, Wide, timeout) => rt.receive_pod::<[i32; 2]>(id, *timeout).await.map(drop),
        ReceivePod(id, Float, timeout) => rt.receive_pod::<f32>(id, *timeout).await.map(drop),
        ReceiveBatch(id, Short, timeout) => rt.receive_batch::<u16>(id, 8, *timeout).await.map(drop),
        ReceiveBatch(id, Exact, timeout) => rt.receive_batch::<i32>(id, 8, *timeout).await.map(drop),
        ReceiveBatch(id, Wide, timeout) => rt.receive_batch::<[i32; 2]>(id, 8, *timeout).await.map(drop),
        ReceiveBatch(id, Float, timeout) => rt.receive_batch::<f32>(id, 8, *timeout).await.map(drop),
        State(id) => rt.state(id).map(drop),
        Mode(id) => rt.mode(id).map(drop),
        Telemetry(id) => rt.telemetry(id).map(drop),
        InputLayout(id) => rt.input_layout(id).map(drop),
        OutputLayout(id) => rt.output_layout(id).map(drop),
        StateSpec(id) => rt.state_spec(id).map(drop),
        QueueSize(id) => rt.queue_size(id).map(drop),
        ConnectedTo(id) => rt.connected_to(id).map(drop),
        CircuitBreaker(id) => rt.circuit_breaker(id).map(drop),
        CircuitStatus(id) => rt.circuit_status(id).map(drop),
        Execute(id) => rt.circuit_breaker(id)?.execute(|| async { Ok::<_, Error>(()) }).await,
    }
}

/// Whether the runtime counts `error` from `op` in the kernel's `errors`: the failed message
/// operations its telemetry documents: a send, call or receive refused as malformed, for a full
/// queue, for the kernel's state, or timed out; and a terminate that timed out. Bad arguments
/// (`TypeError`, `RangeError`), unknown kernels, lifecycle refusals and compile errors are not
/// counted, nor a receive from a terminated kernel with none left (the end of its answers).
fn counted(op: &Op, error: &Error) -> bool {
    match op {
        Op::Terminate(..) => matches!(error, Error::Timeout { .. }),
        _ if matches!(error, Error::KernelState { state: KernelState::Terminated, action: Action::Receive, .. }) => {
            false
        }
        op if op.moves_messages() => matches!(
            error,
            Error::MessageFormat { .. }
                | Error::QueueFull { .. }
                | Error::Timeout { .. }
                | Error::KernelState { .. }
                | Error::Overloaded { .. }
        ),
        _ => false,
    }
}

// ---- rows ----

/// What a row checks beyond the error's name.
#[derive(Debug, Clone, PartialEq)]
enum Detail {
    None,
    /// A `MessageFormat` error naming this field path.
    Field(String),
    /// Exactly this `KernelState` error.
    State(String, KernelState, Action),
    /// A `KernelCompile` error at this position (`None`: no position) whose message mentions
    /// these words.
    Compile {
        line: Option<u32>,
        column: Option<u32>,
        mentions: Vec<&'static str>,
    },
}

struct Case {
    name: String,
    op: Op,
    /// The contract name of the error it must fail with (see `common::js_name`).
    expect: &'static str,
    detail: Detail,
}

fn case(name: impl Into<String>, op: Op, expect: &'static str) -> Case {
    Case { name: name.into(), op, expect, detail: Detail::None }
}

impl Case {
    fn detail(mut self, detail: Detail) -> Self {
        self.detail = detail;
        self
    }

    fn field(self, path: &str) -> Self {
        self.detail(Detail::Field(path.to_owned()))
    }

    fn compile(self, line: Option<u32>, column: Option<u32>, mentions: &[&'static str]) -> Self {
        self.detail(Detail::Compile { line, column, mentions: mentions.to_vec() })
    }
}

/// Runs one row and says what went wrong, if anything.
fn check(rt: &Runtime, case: &Case) -> Result<(), String> {
    let before = snapshot(rt);
    let result = pollster::block_on(run(rt, &case.op));
    let after = snapshot(rt);
    let error = match result {
        Ok(()) => return Err("was accepted".into()),
        Err(error) => error,
    };
    if common::js_name(&error) != case.expect {
        return Err(format!("failed with {} instead of {}: {error}", common::js_name(&error), case.expect));
    }
    match (&case.detail, &error) {
        (Detail::None, _) => {}
        (Detail::Field(path), Error::MessageFormat { field, .. }) if field == path => {}
        (Detail::State(id, state, action), Error::KernelState { id: i, state: s, action: a, .. })
            if (id, state, action) == (i, s, a) => {}
        (Detail::Compile { line, column, mentions }, Error::KernelCompile { line: l, column: c, message, .. })
            if (line, column) == (l, c) && mentions.iter().all(|word| message.contains(word)) => {}
        (detail, _) => return Err(format!("{error:?} does not match {detail:?}")),
    }
    let mut expected = before.clone();
    if counted(&case.op, &error) {
        let id = case.op.kernel().expect("message operations name a kernel");
        *expected.errors.get_mut(id).expect("a counted failure is of an existing kernel") += 1;
    }
    if after != expected {
        return Err(format!("changed the runtime:\n    {}", after.diff(&expected)));
    }
    Ok(())
}

/// Runs every row, panics listing every row that failed, and returns how many rows ran.
fn run_table(world: &World, table: &str, rows: Vec<Case>) -> usize {
    let failures: Vec<String> =
        rows.iter().filter_map(|row| check(&world.rt, row).err().map(|why| format!("- {}: {why}", row.name))).collect();
    println!("bad inputs tried ({table}, {:?} backend): {}", world.backend, rows.len());
    assert!(failures.is_empty(), "{} of {} rows failed:\n{}", failures.len(), rows.len(), failures.join("\n"));
    rows.len()
}

fn value(v: f64) -> Fields {
    vec![("value".to_owned(), Value::Number(v))]
}

fn long_id() -> String {
    "x".repeat(129)
}

/// Unknown, empty and over-long ids for every operation that takes a kernel id.
fn id_rows() -> Vec<Case> {
    use Op::*;
    let mut rows = Vec::new();
    for bad in [NOWHERE.to_owned(), String::new(), long_id()] {
        let shown = if bad.is_empty() {
            "empty".to_owned()
        } else if bad.len() > 128 {
            "over-long".to_owned()
        } else {
            "unknown".to_owned()
        };
        let ops = [
            Launch(bad.clone(), queue(QUEUE)),
            ManagedKernel(bad.clone()),
            Activate(bad.clone()),
            Deactivate(bad.clone()),
            Reactivate(bad.clone()),
            Terminate(bad.clone(), Some(Duration::from_millis(0))),
            Remove(bad.clone()),
            ReadState(bad.clone()),
            ReadStateAs(bad.clone()),
            Connect(bad.clone(), ACTIVE.to_owned()),
            Disconnect(bad.clone()),
            Send(bad.clone(), value(1.0), Some(Duration::from_millis(0))),
            SendPacked(bad.clone(), vec![0; 4], Some(Duration::from_millis(0))),
            SendPod(bad.clone(), Width::Exact, Some(Duration::from_millis(0))),
            SendBatch(bad.clone(), Width::Exact, Some(Duration::from_millis(0))),
            Call(bad.clone(), value(1.0), Some(Duration::from_millis(0))),
            CallPacked(bad.clone(), vec![0; 4], Some(Duration::from_millis(0))),
            CallPod(bad.clone(), Width::Exact, Width::Exact, Some(Duration::from_millis(0))),
            Encode(bad.clone(), value(1.0)),
            Receive(bad.clone(), Some(Duration::from_millis(0))),
            ReceivePacked(bad.clone(), Some(Duration::from_millis(0))),
            ReceiveBatchPacked(bad.clone(), Some(Duration::from_millis(0))),
            ReceivePod(bad.clone(), Width::Exact, Some(Duration::from_millis(0))),
            ReceiveBatch(bad.clone(), Width::Exact, Some(Duration::from_millis(0))),
            State(bad.clone()),
            Mode(bad.clone()),
            Telemetry(bad.clone()),
            InputLayout(bad.clone()),
            OutputLayout(bad.clone()),
            StateSpec(bad.clone()),
            QueueSize(bad.clone()),
            ConnectedTo(bad.clone()),
            CircuitBreaker(bad.clone()),
            CircuitStatus(bad.clone()),
            Execute(bad.clone()),
        ];
        for op in ops {
            rows.push(case(format!("{} with an {shown} id", op.name()), op, "KernelNotFoundError"));
        }
        rows.push(case(
            format!("Connect to an {shown} id"),
            Connect(ACTIVE.to_owned(), bad.clone()),
            "KernelNotFoundError",
        ));
        if bad != NOWHERE {
            // A definition needs no registration, so only ids no kernel may have are refused.
            let def = Box::new(definition(FRESH).with_id(&bad));
            rows.push(case(
                format!("LaunchDefinition with an {shown} id"),
                LaunchDefinition(def, queue(QUEUE)),
                "RangeError",
            ));
        }
    }
    // Registered under an id no kernel may have: launching it is refused for the id.
    let long = long_id().replace('x', "y");
    register_doubler(&long);
    rows.push(case("Launch of a registered over-long id", Op::Launch(long.clone(), queue(QUEUE)), "RangeError"));
    rows.push(case("ManagedKernel of a registered over-long id", Op::ManagedKernel(long), "RangeError"));
    rows
}

/// Every (state, action) the lifecycle refuses, from the table in `lifecycle.rs`
/// (`KernelState::next`, `accepts_messages`), for every state this world holds. A second launch of
/// a live id is always refused; removal needs `terminated`; sends, calls and connections need a
/// state that accepts messages; a created kernel's state cannot be read yet; a terminated kernel
/// with nothing left refuses `receive`.
fn transition_rows(held: &[(KernelState, &'static str)]) -> Vec<Case> {
    use Op::*;
    let mut rows = Vec::new();
    for &(state, id) in held {
        let mut refuse = |op: Op, action: Action| {
            let name = format!("{} of a {state} kernel", op.name());
            let row = case(name, op, "KernelStateError").detail(Detail::State(id.to_owned(), state, action));
            rows.push(row);
        };
        let s = || id.to_owned();
        refuse(Launch(s(), queue(QUEUE)), Action::Launch);
        refuse(LaunchDefinition(Box::new(definition(id)), queue(QUEUE)), Action::Launch);
        for (action, op) in [
            (Action::Activate, Activate(s())),
            (Action::Deactivate, Deactivate(s())),
            (Action::Reactivate, Reactivate(s())),
            (Action::Terminate, Terminate(s(), Some(Duration::from_millis(30_000)))),
        ] {
            // A terminate while one is under way is no mistake: it waits with it.
            let joins = action == Action::Terminate && state == KernelState::Terminating;
            if state.next(action).is_none() && !joins {
                refuse(op, action);
            }
        }
        if state != KernelState::Terminated {
            refuse(Remove(s()), Action::Remove);
        }
        if !state.accepts_messages() {
            for op in [
                Send(s(), value(1.0), Some(Duration::from_millis(0))),
                SendPacked(s(), vec![0; 4], Some(Duration::from_millis(0))),
                SendPod(s(), Width::Exact, Some(Duration::from_millis(0))),
                SendBatch(s(), Width::Exact, Some(Duration::from_millis(0))),
                Call(s(), value(1.0), Some(Duration::from_millis(0))),
                CallPacked(s(), vec![0; 4], Some(Duration::from_millis(0))),
                CallPod(s(), Width::Exact, Width::Exact, Some(Duration::from_millis(0))),
            ] {
                refuse(op, Action::Send);
            }
            refuse(Connect(s(), SHAPES.to_owned()), Action::Connect);
            refuse(Connect(SHAPES.to_owned(), s()), Action::Connect);
        }
        if state == KernelState::Created {
            refuse(ReadState(s()), Action::ReadState);
            refuse(ReadStateAs(s()), Action::ReadState);
        }
    }
    for op in [
        Receive(GONE.to_owned(), Some(Duration::from_millis(0))),
        ReceivePacked(GONE.to_owned(), Some(Duration::from_millis(0))),
        ReceiveBatchPacked(GONE.to_owned(), Some(Duration::from_millis(0))),
        ReceivePod(GONE.to_owned(), Width::Exact, Some(Duration::from_millis(0))),
        ReceiveBatch(GONE.to_owned(), Width::Exact, Some(Duration::from_millis(0))),
    ] {
        let detail = Detail::State(GONE.to_owned(), KernelState::Terminated, Action::Receive);
        rows.push(case(format!("{} of a drained terminated kernel", op.name()), op, "KernelStateError").detail(detail));
    }
    rows
}

fn num(n: f64) -> Value {
    Value::Number(n)
}

fn list(numbers: &[f64]) -> Value {
    Value::List(numbers.to_vec())
}

fn object(fields: &[(&str, Value)]) -> Value {
    Value::Struct(fields.iter().map(|(name, value)| ((*name).to_owned(), value.clone())).collect())
}

fn inner(a: f64, v: [f64; 2]) -> Value {
    object(&[("a", num(a)), ("v", list(&v))])
}

/// A message as named values.
type Message = Vec<(&'static str, Value)>;

/// A well-formed `BadShape`.
fn shape() -> Message {
    vec![
        ("i", num(-1.0)),
        ("u", num(1.0)),
        ("f", num(0.5)),
        ("p", list(&[1.0, 2.0, 3.0])),
        ("arr", list(&[1.0, 2.0, 3.0, 4.0])),
        ("inner", inner(1.0, [0.0, 0.0])),
        ("items", Value::Array(vec![inner(2.0, [1.0, 1.0]), inner(3.0, [2.0, 2.0])])),
    ]
}

/// `shape()` with `field` set to `value` (added if it is not a field).
fn shape_with(field: &'static str, value: Value) -> Message {
    let mut fields = shape();
    match fields.iter_mut().find(|(name, _)| *name == field) {
        Some(slot) => slot.1 = value,
        None => fields.push((field, value)),
    }
    fields
}

/// Malformed messages of every kind, each sent and called (both refuse before queueing) on a
/// kernel whose input has every kind of field. The field path names the culprit.
fn message_rows() -> Vec<Case> {
    let nan = f64::NAN;
    let inf = f64::INFINITY;
    let without = |field: &str| shape().into_iter().filter(|(name, _)| *name != field).collect::<Vec<_>>();
    let twice = {
        let mut fields = shape();
        fields.push(("i", num(2.0)));
        fields
    };
    let messages: Vec<(&str, Message, &str)> = vec![
        ("a missing field", without("u"), "u"),
        ("a missing nested field", shape_with("inner", object(&[("v", list(&[0.0, 0.0]))])), "inner.a"),
        (
            "a missing field in an array element",
            shape_with("items", Value::Array(vec![inner(0.0, [0.0; 2]), object(&[("a", num(1.0))])])),
            "items[1].v",
        ),
        ("an unknown field", shape_with("extra", num(1.0)), "extra"),
        (
            "an unknown nested field",
            shape_with("inner", object(&[("a", num(1.0)), ("v", list(&[0.0, 0.0])), ("zz", num(1.0))])),
            "inner.zz",
        ),
        ("a field given twice", twice, "i"),
        (
            "a nested field given twice",
            shape_with("inner", object(&[("a", num(1.0)), ("v", list(&[0.0, 0.0])), ("a", num(2.0))])),
            "inner.a",
        ),
        ("a list for an integer", shape_with("i", list(&[1.0])), "i"),
        ("a value of no supported kind for an integer", shape_with("i", Value::Unsupported("string".into())), "i"),
        ("an object for an integer", shape_with("i", object(&[])), "i"),
        ("a number for a vector", shape_with("p", num(1.0)), "p"),
        ("an object for an array", shape_with("arr", object(&[])), "arr"),
        ("a number for a nested message", shape_with("inner", num(1.0)), "inner"),
        ("a list of numbers for a nested message", shape_with("inner", list(&[1.0, 0.0, 0.0])), "inner"),
        ("numbers for an array of messages", shape_with("items", list(&[0.0; 6])), "items"),
        (
            "a number for an element of an array of messages",
            shape_with("items", Value::Array(vec![num(1.0), num(2.0)])),
            "items[0]",
        ),
        ("a number for a nested vector", shape_with("inner", object(&[("a", num(1.0)), ("v", num(0.0))])), "inner.v"),
        ("a vector one short", shape_with("p", list(&[1.0, 2.0])), "p"),
        ("a vector one long", shape_with("p", list(&[1.0, 2.0, 3.0, 4.0])), "p"),
        ("a nested vector one long", shape_with("inner", inner_v(&[0.0, 0.0, 0.0])), "inner.v"),
        ("a vector with an object in it", shape_with("p", Value::Array(vec![num(1.0), object(&[]), num(3.0)])), "p"),
        ("an array one short", shape_with("arr", list(&[1.0, 2.0, 3.0])), "arr"),
        ("an array one long", shape_with("arr", list(&[1.0, 2.0, 3.0, 4.0, 5.0])), "arr"),
        ("an array of messages one long", shape_with("items", Value::Array(vec![inner(0.0, [0.0; 2]); 3])), "items"),
        ("an array of messages one short", shape_with("items", Value::Array(vec![inner(0.0, [0.0; 2])])), "items"),
        ("a negative u32", shape_with("u", num(-1.0)), "u"),
        ("2^32 for a u32", shape_with("u", num(4_294_967_296.0)), "u"),
        ("2^31 for an i32", shape_with("i", num(2_147_483_648.0)), "i"),
        ("-2^31-1 for an i32", shape_with("i", num(-2_147_483_649.0)), "i"),
        ("2^40 for an i32", shape_with("i", num(1_099_511_627_776.0)), "i"),
        ("an out-of-range array element", shape_with("arr", list(&[0.0, 0.0, 0.0, 2_147_483_648.0])), "arr[3]"),
        (
            "a negative u32 in an array element",
            shape_with("items", Value::Array(vec![inner(-1.0, [0.0; 2]), inner(0.0, [0.0; 2])])),
            "items[0].a",
        ),
        ("2^32 for a nested u32", shape_with("inner", inner(4_294_967_296.0, [0.0; 2])), "inner.a"),
        ("1.5 for an i32", shape_with("i", num(1.5)), "i"),
        ("0.5 for a u32", shape_with("u", num(0.5)), "u"),
        ("a fraction in an integer array", shape_with("arr", list(&[0.0, 0.0, 0.5, 0.0])), "arr[2]"),
        ("NaN for an i32", shape_with("i", num(nan)), "i"),
        ("Infinity for an i32", shape_with("i", num(inf)), "i"),
        ("-Infinity for an i32", shape_with("i", num(-inf)), "i"),
        ("NaN for a u32", shape_with("u", num(nan)), "u"),
        ("Infinity for a u32", shape_with("u", num(inf)), "u"),
        ("NaN in an integer array", shape_with("arr", list(&[nan, 0.0, 0.0, 0.0])), "arr[0]"),
        ("Infinity for a nested u32", shape_with("inner", inner(inf, [0.0; 2])), "inner.a"),
    ];
    let mut rows = Vec::new();
    for (what, fields, path) in messages {
        let fields: Fields = fields.into_iter().map(|(name, value)| (name.to_owned(), value)).collect();
        rows.push(
            case(
                format!("send of {what}"),
                Op::Send(SHAPES.into(), fields.clone(), Some(Duration::from_millis(0))),
                "MessageFormatError",
            )
            .field(path),
        );
        rows.push(
            case(
                format!("call of {what}"),
                Op::Call(SHAPES.into(), fields, Some(Duration::from_millis(0))),
                "MessageFormatError",
            )
            .field(path),
        );
    }
    rows
}

fn inner_v(v: &[f64]) -> Value {
    object(&[("a", num(0.0)), ("v", list(v))])
}

/// Packed messages of the wrong size ("a message larger than a ring slot": a slot is exactly one
/// message of the input layout, so more bytes than that are refused, never split or truncated),
/// `#[repr(C)]` types of the wrong size, and full queues.
fn packed_rows() -> Vec<Case> {
    use Op::*;
    use Width::*;
    let l = || LAUNCHED.to_owned();
    let a = || ACTIVE.to_owned();
    let f = || FULL.to_owned();
    let format = "MessageFormatError";
    vec![
        case(
            "a packed batch of 3 bytes (not whole 4-byte messages)",
            SendPacked(l(), vec![0; 3], Some(Duration::from_millis(0))),
            format,
        )
        .field("Request"),
        case("a packed batch of 5 bytes", SendPacked(l(), vec![0; 5], Some(Duration::from_millis(0))), format)
            .field("Request"),
        case("a packed batch of 7 bytes", SendPacked(l(), vec![0; 7], Some(Duration::from_millis(0))), format)
            .field("Request"),
        case("send_pod of a 2-byte message", SendPod(l(), Short, Some(Duration::from_millis(0))), format)
            .field("Request"),
        case(
            "send_pod of an 8-byte message, larger than a ring slot",
            SendPod(l(), Wide, Some(Duration::from_millis(0))),
            format,
        )
        .field("Request"),
        case("call_packed of 2 bytes", CallPacked(l(), vec![0; 2], Some(Duration::from_millis(0))), format)
            .field("Request"),
        case(
            "call_packed of 8 bytes, larger than a ring slot",
            CallPacked(l(), vec![0; 8], Some(Duration::from_millis(0))),
            format,
        )
        .field("Request"),
        case("call_pod of a 2-byte message", CallPod(l(), Short, Exact, Some(Duration::from_millis(0))), format)
            .field("Request"),
        case(
            "call_pod of an 8-byte message, larger than a ring slot",
            CallPod(l(), Wide, Exact, Some(Duration::from_millis(0))),
            format,
        )
        .field("Request"),
        case("send_batch of 2-byte messages", SendBatch(l(), Short, Some(Duration::from_millis(0))), format)
            .field("Request"),
        case("send_batch of 8-byte messages", SendBatch(l(), Wide, Some(Duration::from_millis(0))), format)
            .field("Request"),
        case("receive_batch as 8-byte answers", ReceiveBatch(a(), Wide, Some(Duration::from_millis(0))), format),
        case("receive_pod as an 8-byte answer", ReceivePod(a(), Wide, Some(Duration::from_millis(0))), format),
        case("receive_pod as a 2-byte answer", ReceivePod(a(), Short, Some(Duration::from_millis(0))), format),
        case("call_pod answered as an 8-byte type", CallPod(l(), Exact, Wide, Some(Duration::from_millis(0))), format),
        // The right size but another scalar: its bits would be read as the doubler's `i32`s.
        case("send_pod of an f32", SendPod(l(), Float, Some(Duration::from_millis(0))), format).field("Request"),
        case("send_batch of f32s", SendBatch(l(), Float, Some(Duration::from_millis(0))), format).field("Request"),
        case("call_pod of an f32", CallPod(l(), Float, Exact, Some(Duration::from_millis(0))), format).field("Request"),
        case("call_pod answered as an f32", CallPod(l(), Exact, Float, Some(Duration::from_millis(0))), format)
            .field("Response"),
        case("receive_pod as an f32", ReceivePod(a(), Float, Some(Duration::from_millis(0))), format).field("Response"),
        case("receive_batch as f32s", ReceiveBatch(a(), Float, Some(Duration::from_millis(0))), format)
            .field("Response"),
        case("send to a full queue", Send(f(), value(1.0), Some(Duration::from_millis(0))), "QueueFullError"),
        case("send_pod to a full queue", SendPod(f(), Exact, Some(Duration::from_millis(0))), "QueueFullError"),
        case("call to a full queue", Call(f(), value(1.0), Some(Duration::from_millis(0))), "QueueFullError"),
        case("call_pod to a full queue", CallPod(f(), Exact, Exact, Some(Duration::from_millis(0))), "QueueFullError"),
        case(
            "call_packed to a full queue",
            CallPacked(f(), vec![0; 4], Some(Duration::from_millis(0))),
            "QueueFullError",
        ),
    ]
}

/// Other bad arguments: queue sizes, state of a stateless kernel, impossible connections.
fn argument_rows() -> Vec<Case> {
    use Op::*;
    vec![
        case("launch with a queue of 0", Launch(FRESH.into(), queue(0)), "RangeError"),
        case("launch with a queue over the maximum", Launch(FRESH.into(), queue(MAX_QUEUE_SIZE + 1)), "RangeError"),
        case("launch with a block of 0", Launch(FRESH.into(), queue(QUEUE).with_block_size(0)), "RangeError"),
        case("launch with a block of 2^20", Launch(FRESH.into(), queue(QUEUE).with_block_size(1 << 20)), "RangeError"),
        case("launch with a grid of 0", Launch(FRESH.into(), queue(QUEUE).with_grid_size(0)), "RangeError"),
        case(
            "launch with 1 GiB of workgroup memory",
            Launch(FRESH.into(), queue(QUEUE).with_shared_memory(1 << 30)),
            "RangeError",
        ),
        case("read_state of a kernel without state", ReadState(LAUNCHED.into()), "TypeError"),
        case("read_state_as of a kernel without state", ReadStateAs(LAUNCHED.into()), "TypeError"),
        case("connect of a kernel to itself", Connect(ACTIVE.into(), ACTIVE.into()), "TypeError"),
        case("connect of mismatched layouts", Connect(LAUNCHED.into(), SHAPES.into()), "TypeError"),
        case("disconnect of an unconnected kernel", Disconnect(ACTIVE.into()), "TypeError"),
    ]
}

fn doubler_with(wgsl: &str) -> Box<KernelDefinition> {
    Box::new(KernelDefinition::new("bad-compile", doubler_request(), doubler_response(), wgsl))
}

/// Invalid WGSL and handlers whose types do not match the kernel's layouts: a
/// `KernelCompileError` at the user's line and column, naming the mismatch; no kernel is left
/// behind.
fn wgsl_rows() -> Vec<Case> {
    let launch = |wgsl: &str| Op::LaunchDefinition(doubler_with(wgsl), queue(QUEUE));
    let compile = "KernelCompileError";
    let mut workgroup_0 = doubler_with("fn handle(msg: Request) -> Response { return Response(1); }");
    workgroup_0.workgroup_size = 0;
    let mut workgroup_257 = workgroup_0.clone();
    workgroup_257.workgroup_size = 257;
    let mut no_state = doubler_with("fn handle(msg: Request) -> Response { return Response(1); }");
    no_state.state = Some(ringkernel_web::kernel::StateSpec::new(StateElement::U32, 0));
    vec![
        case("a WGSL syntax error", launch("fn handle(msg: Request) -> Response {\n    return Response(msg.value * );\n}"), compile)
            .compile(Some(2), Some(33), &["expected expression"]),
        case("an unknown identifier", launch("// doubles\nfn handle(msg: Request) -> Response {\n    return Response(nope * 2);\n}"), compile)
            .compile(Some(3), Some(21), &["nope"]),
        case("a type error in the body", launch("fn handle(msg: Request) -> Response {\n  let x: f32 = msg.value;\n  return Response(1);\n}"), compile)
            .compile(Some(2), Some(7), &["`f32`", "`i32`"]),
        case("no fn handle", launch("fn helper() -> i32 { return 1; }"), compile).compile(None, None, &["no `fn handle`"]),
        case("fn handle twice", launch("fn handle(msg: Request) -> Response { return Response(1); }\nfn handle(msg: Request) -> Response { return Response(2); }"), compile)
            .compile(Some(2), Some(1), &["more than once"]),
        case("no WGSL at all", launch(""), compile).compile(None, None, &["no WGSL handler"]),
        case("a handler taking the wrong message type", launch("fn handle(msg: Response) -> Response { return msg; }"), compile)
            .compile(Some(1), Some(16), &["`Response`", "`Request`"]),
        case("a handler answering the wrong type", launch("fn handle(msg: Request) -> Request { return msg; }"), compile)
            .compile(Some(1), Some(28), &["return type", "`Request`", "`Response`"]),
        case("a handler answering nothing", launch("fn handle(msg: Request) { }"), compile).compile(Some(1), Some(23), &["missing", "`Response`"]),
        case("a dropping handler with the wrong answer pointer", launch("fn handle(msg: Request, out: ptr<function, Request>) -> bool { return false; }"), compile)
            .compile(Some(1), Some(30), &["ptr<function, Response>"]),
        case("a dropping handler not returning bool", launch("fn handle(msg: Request, out: ptr<function, Response>) -> u32 { return 0u; }"), compile)
            .compile(Some(1), Some(58), &["`u32`", "bool"]),
        case("a handler with three parameters", launch("fn handle(a: Request, b: Request, c: Request) -> Response { return Response(1); }"), compile)
            .compile(Some(1), Some(1), &["takes 3 parameters"]),
        case("a handler with no parameters", launch("fn handle() -> Response { return Response(1); }"), compile)
            .compile(Some(1), Some(1), &["takes 0 parameters"]),
        case("a handler declaring a binding of its own", launch("@group(1) @binding(0) var<storage, read_write> x: array<u32>;\nfn handle(msg: Request) -> Response { return Response(i32(x[0])); }"), compile)
            .compile(Some(1), Some(1), &["declares no bindings", "`state`"]),
        case("a handler declaring a WGSL built-in the harness calls", launch("fn min(a: u32, b: u32) -> u32 { return b; }\nfn handle(msg: Request) -> Response { return Response(msg.value); }"), compile)
            .compile(Some(1), Some(4), &["may not declare `min`"]),
        case("a handler calling workgroupBarrier", launch("fn handle(msg: Request) -> Response {\n  workgroupBarrier();\n  return Response(msg.value);\n}"), compile)
            .compile(Some(2), Some(3), &["`workgroupBarrier`", "once per message"]),
        case("a workgroup size of 0", Op::LaunchDefinition(workgroup_0, queue(QUEUE)), compile).compile(None, None, &["workgroupSize"]),
        case("a workgroup size of 257", Op::LaunchDefinition(workgroup_257, queue(QUEUE)), compile).compile(None, None, &["workgroupSize"]),
        case("a state of length 0", Op::LaunchDefinition(no_state, queue(QUEUE)), compile).compile(None, None, &["state length"]),
    ]
}

/// Kernels the cpu backend cannot run: no host handler, or one whose types do not fit.
fn host_handler_rows() -> Vec<Case> {
    let launch = |def: KernelDefinition| Op::LaunchDefinition(Box::new(def), queue(QUEUE));
    let base = || KernelDefinition::new("bad-host", doubler_request(), doubler_response(), "");
    let wide_in = base().with_host_handler(host::typed(|v: &[i32; 2], _: &mut [u32]| Some(v[0])));
    let wide_out = base().with_host_handler(host::typed(|v: &i32, _: &mut [u32]| Some([*v, 0])));
    // The right size, another scalar: the i32 message's bits would be read as an f32.
    let float_in = base().with_host_handler(host::typed(|v: &f32, _: &mut [u32]| Some((v * 2.0) as i32)));
    let wgsl_only = KernelDefinition::new(
        "bad-host",
        doubler_request(),
        doubler_response(),
        "fn handle(msg: Request) -> Response { return Response(1); }",
    );
    // WGSL beside a good host handler is checked as a GPU backend would: what works on the cpu
    // backend must not fail on a GPU for a mistake seen here.
    let with_wgsl = |wgsl: &str| {
        KernelDefinition::new("bad-host", doubler_request(), doubler_response(), wgsl)
            .with_host_handler(host::typed(|v: &i32, _: &mut [u32]| Some(v * 2)))
    };
    let wrong_type = with_wgsl("fn handle(msg: Response) -> Response { return msg; }");
    let no_handle = with_wgsl("fn helper() -> i32 { return 1; }");
    let syntax = with_wgsl("fn handle(msg: Request) -> Response {\n    return Response(msg.value * );\n}");
    vec![
        case("WGSL beside a host handler, taking the wrong message type", launch(wrong_type), "KernelCompileError")
            .compile(Some(1), Some(16), &["`Response`", "`Request`"]),
        case("WGSL beside a host handler, with no fn handle", launch(no_handle), "KernelCompileError").compile(
            None,
            None,
            &["no `fn handle`"],
        ),
        case("WGSL beside a host handler, with a syntax error", launch(syntax), "KernelCompileError").compile(
            Some(2),
            Some(33),
            &["expected expression"],
        ),
        case("a kernel with WGSL but no host handler", launch(wgsl_only), "KernelCompileError").compile(
            None,
            None,
            &["no host handler"],
        ),
        case("a host handler taking an f32 for an i32 message", launch(float_in), "KernelCompileError").compile(
            None,
            None,
            &["Request holds fields that are not f32"],
        ),
        case("a host handler taking an 8-byte message", launch(wide_in), "KernelCompileError").compile(
            None,
            None,
            &["Request", "8 bytes"],
        ),
        case("a host handler answering an 8-byte message", launch(wide_out), "KernelCompileError").compile(
            None,
            None,
            &["Response", "8 bytes"],
        ),
    ]
}

/// Every row that applies to `world`.
fn rows_for(world: &World) -> Vec<Case> {
    let mut rows = id_rows();
    rows.extend(transition_rows(&world.held));
    rows.extend(message_rows());
    rows.extend(packed_rows());
    // Timeouts are `Duration`s: a negative or NaN one cannot be written (JavaScript's are checked in web_bad_input.rs).
    rows.extend(argument_rows());
    match world.backend {
        BackendChoice::Cpu => rows.extend(host_handler_rows()),
        _ => rows.extend(wgsl_rows()),
    }
    rows
}

// ---- the tables ----

/// The whole table on the GPU (lavapipe): every row refused by name, nothing changed.
#[test]
fn every_bad_input_is_refused_by_name_and_changes_nothing_on_the_gpu() {
    with_gpu_world(|world| {
        run_table(world, "table", rows_for(world));
    });
}

/// The whole table on the cpu backend, from all six states.
#[test]
fn every_bad_input_is_refused_by_name_and_changes_nothing_on_the_cpu() {
    with_cpu_world(|world| {
        run_table(world, "table", rows_for(world));
    });
}

// ---- after dispose ----

/// Every operation that acts on the runtime, with arguments that are fine otherwise.
fn every_action() -> Vec<Op> {
    use Op::*;
    use Width::Exact;
    let (a, l) = (|| ACTIVE.to_owned(), || LAUNCHED.to_owned());
    vec![
        Launch(FRESH.into(), queue(QUEUE)),
        LaunchDefinition(Box::new(definition(FRESH)), queue(QUEUE)),
        ManagedKernel(FRESH.into()),
        Activate(l()),
        Deactivate(a()),
        Reactivate(PAUSED.into()),
        Terminate(a(), Some(Duration::from_millis(1000))),
        TerminateAll(Some(Duration::from_millis(1000))),
        Drain(Duration::from_millis(1000)),
        Remove(DONE.into()),
        ReadState(l()),
        ReadStateAs(l()),
        Connect(l(), a()),
        Disconnect(l()),
        Send(a(), value(1.0), Some(Duration::from_millis(0))),
        SendPacked(a(), vec![0; 4], Some(Duration::from_millis(0))),
        SendPod(a(), Exact, Some(Duration::from_millis(0))),
        SendBatch(a(), Exact, Some(Duration::from_millis(0))),
        Call(a(), value(1.0), Some(Duration::from_millis(0))),
        CallPacked(a(), vec![0; 4], Some(Duration::from_millis(0))),
        CallPod(a(), Exact, Exact, Some(Duration::from_millis(0))),
        Receive(a(), Some(Duration::from_millis(0))),
        ReceivePacked(a(), Some(Duration::from_millis(0))),
        ReceiveBatchPacked(a(), Some(Duration::from_millis(0))),
        ReceivePod(a(), Exact, Some(Duration::from_millis(0))),
        ReceiveBatch(a(), Exact, Some(Duration::from_millis(0))),
    ]
}

/// After `dispose`, every operation that would act fails with `RuntimeDisposedError` (the
/// device is gone) and changes nothing, queued answers included; queries keep answering with
/// the final state (the seeds' example reads `getState` after its `async with` block), and a
/// second `dispose` does nothing.
#[test]
fn after_dispose_every_operation_is_refused_and_nothing_changes() {
    let _turn = one_world_at_a_time();
    let world = World::new(BackendChoice::Auto);
    let rt = &world.rt;
    pollster::block_on(rt.dispose()).expect("dispose drains and stops every kernel");
    let rows = every_action()
        .into_iter()
        .map(|op| case(format!("{} after dispose", op.name()), op, "RuntimeDisposedError"))
        .collect();
    run_table(&world, "after dispose", rows);
    // Settings and alerts that nothing would use any more are refused too.
    let watchdog = rt.kernel_watchdog();
    let dashboard = rt.gpu_memory_dashboard();
    for refused in [
        watchdog.set_heartbeat_timeout(Duration::from_secs(1)).unwrap_err(),
        watchdog.set_action(ringkernel_web::WatchdogAction::Deactivate).unwrap_err(),
        dashboard.on_alert(0.5, |_| {}).unwrap_err(),
        dashboard.trigger_alert(MemoryPressureAlert::High).unwrap_err(),
    ] {
        assert_eq!(refused.kind(), ErrorKind::Disposed, "{refused}");
    }

    use Op::*;
    let before = snapshot(rt);
    let a = || ACTIVE.to_owned();
    for op in [
        State(a()),
        Mode(a()),
        Telemetry(a()),
        InputLayout(a()),
        OutputLayout(a()),
        StateSpec(a()),
        QueueSize(a()),
        ConnectedTo(a()),
        Encode(a(), value(1.0)),
    ] {
        pollster::block_on(run(rt, &op)).unwrap_or_else(|e| panic!("{} after dispose: {e}", op.name()));
    }
    assert_eq!(rt.state(ACTIVE).unwrap(), KernelState::Terminated, "dispose terminated it");
    assert!(rt.metrics_text().contains("ringkernel_"));
    pollster::block_on(rt.dispose()).expect("a second dispose does nothing");
    assert_eq!(snapshot(rt), before, "queries and a second dispose change nothing");
}

/// While the runtime drains, every operation that would add work (a launch, a send, a call)
/// is refused with `RuntimeDrainingError` and changes nothing; the drain then completes.
#[test]
fn while_draining_new_work_is_refused_and_nothing_changes() {
    let _turn = one_world_at_a_time();
    let world = World::new(BackendChoice::Auto);
    let rt = &world.rt;
    rt.begin_drain().expect("a running runtime begins to drain");
    use Op::*;
    use Width::Exact;
    let a = || ACTIVE.to_owned();
    let now = Some(Duration::from_millis(0));
    let rows = [
        Launch(FRESH.into(), queue(QUEUE)),
        LaunchDefinition(Box::new(definition(FRESH)), queue(QUEUE)),
        ManagedKernel(FRESH.into()),
        Send(a(), value(1.0), now),
        SendPacked(a(), vec![0; 4], now),
        SendPod(a(), Exact, now),
        SendBatch(a(), Exact, now),
        Call(a(), value(1.0), now),
        CallPacked(a(), vec![0; 4], now),
        CallPod(a(), Exact, Exact, now),
    ]
    .into_iter()
    .map(|op| case(format!("{} while draining", op.name()), op, "RuntimeDrainingError"))
    .collect();
    run_table(&world, "while draining", rows);
    pollster::block_on(rt.drain(Duration::from_secs(30))).expect("what was queued is processed");
    assert_eq!(rt.state(ACTIVE).unwrap(), KernelState::Terminated);
}

// ---- an open circuit ----

/// While a kernel's circuit is open, every send, batch, call and protected operation on it is
/// refused whole with `CircuitOpenError` (not counted in `errors`: the kernel did nothing
/// wrong this time) and changes nothing; a malformed message is still named as such first.
/// Its queued answers stay receivable.
#[test]
fn while_a_circuit_is_open_new_work_is_refused_and_nothing_changes() {
    let _turn = one_world_at_a_time();
    let breaker =
        CircuitBreakerConfig::default().with_failure_threshold(1).with_open_duration(Duration::from_secs(3600));
    for backend in [BackendChoice::Auto, BackendChoice::Cpu] {
        let world = World::with_options(RuntimeOptions::default().with_backend(backend).with_circuit_breaker(breaker));
        let rt = &world.rt;
        let failed = pollster::block_on(
            rt.circuit_breaker(ACTIVE).unwrap().execute(|| async { Err::<(), _>(Error::InvalidArgument("x".into())) }),
        );
        assert_eq!(failed.unwrap_err().kind(), ErrorKind::InvalidArgument);
        assert_eq!(rt.circuit_breaker(ACTIVE).unwrap().state().unwrap(), CircuitState::Open);
        use Op::*;
        use Width::*;
        let (a, now) = (|| ACTIVE.to_owned(), Some(Duration::from_millis(0)));
        let mut rows: Vec<Case> = [
            Send(a(), value(1.0), now),
            Send(a(), value(1.0), None),
            SendPacked(a(), vec![0; 8], now),
            SendPod(a(), Exact, now),
            SendBatch(a(), Exact, None),
            Call(a(), value(1.0), None),
            CallPacked(a(), vec![0; 4], now),
            CallPod(a(), Exact, Exact, None),
            Execute(a()),
        ]
        .into_iter()
        .map(|op| case(format!("{} while the circuit is open", op.name()), op, "CircuitOpenError"))
        .collect();
        let malformed = vec![("value".to_owned(), Value::List(vec![1.0, 2.0]))];
        rows.push(case("Send of a malformed message", Send(a(), malformed, now), "MessageFormatError").field("value"));
        rows.push(case("SendPacked of a partial message", SendPacked(a(), vec![0; 3], now), "MessageFormatError"));
        rows.push(case("SendPod of the wrong size", SendPod(a(), Wide, now), "MessageFormatError"));
        run_table(&world, "an open circuit", rows);
        pollster::block_on(async {
            assert_eq!(
                receive_n(rt, ACTIVE, 2, Duration::from_secs(30)).await,
                [6, 8],
                "its queued answers ({backend:?})"
            );
        });
        assert_eq!(rt.circuit_breaker(ACTIVE).unwrap().state().unwrap(), CircuitState::Open);
    }
}

// ---- under load, and the operations layer's arguments ----

/// While the degradation manager is at `severe`, every way to send to a low-priority kernel is
/// refused with `OverloadedError` before anything is accepted (counted in its `errors`, nothing
/// else changed), malformed messages are still refused as malformed first, and a kernel at the
/// protected priority still takes messages. Once the load is served, the refused kernel is
/// served again.
#[test]
fn while_degraded_sends_to_low_priority_kernels_are_refused_and_nothing_changes() {
    let _turn = one_world_at_a_time();
    register_doubler("bad-low");
    let options = RuntimeOptions::default()
        .with_backend(BackendChoice::Auto)
        .with_degradation(DegradationOptions::default().with_cooldown(Duration::from_millis(1)));
    let rt = pollster::block_on(Runtime::new(options)).unwrap();
    // The load: a kernel that runs, its one-answer output queue full of the primer's answer
    // and nobody receiving, so what is sent waits (a paused kernel's queue would be no load).
    pollster::block_on(async {
        let stalled = LaunchOptions::default().with_input_queue_capacity(10).with_output_queue_capacity(1);
        rt.launch("bad-low", stalled.with_priority(-1).with_auto_activate()).await.unwrap();
        rt.send_pod("bad-low", &0i32, None).await.unwrap();
        wait_until("the primer's answer", || rt.kernel_metrics("bad-low").unwrap().messages_processed == 1);
        rt.send_batch("bad-low", &[1i32, 2, 3, 4, 5, 6, 7, 8, 9], None).await.unwrap();
    });
    assert_eq!(rt.degradation_level(), DegradationLevel::Severe, "9 of 10 queued");
    use Op::*;
    use Width::Exact;
    let low = || "bad-low".to_owned();
    let now = Some(Duration::from_millis(0));
    let mut rows: Vec<Case> = [
        Send(low(), value(1.0), now),
        SendPacked(low(), vec![0; 4], now),
        SendPod(low(), Exact, now),
        SendBatch(low(), Exact, now),
        Call(low(), value(1.0), now),
        CallPacked(low(), vec![0; 4], now),
        CallPod(low(), Exact, Exact, now),
    ]
    .into_iter()
    .map(|op| case(format!("{} while severe", op.name()), op, "OverloadedError"))
    .collect();
    rows.push(case("a malformed send while severe", Send(low(), value(0.5), now), "MessageFormatError").field("value"));
    let failures: Vec<String> =
        rows.iter().filter_map(|row| check(&rt, row).err().map(|why| format!("- {}: {why}", row.name))).collect();
    assert!(failures.is_empty(), "{} of {} rows failed:\n{}", failures.len(), rows.len(), failures.join("\n"));
    pollster::block_on(async {
        assert_eq!(
            receive_n(&rt, "bad-low", 10, Duration::from_secs(30)).await,
            [0, 2, 4, 6, 8, 10, 12, 14, 16, 18],
            "the primer's answer and the accepted nine"
        );
    });
    wait_until("the level to come down", || rt.degradation_level() == DegradationLevel::Normal);
    pollster::block_on(rt.send("bad-low", &[("value", Value::from(21))], now)).expect("served again");
}

/// Runtime options that could never work are refused when the runtime is made, by name: a
/// default queue size of 0 (or over the limit) would fail every launch that names none, a
/// tick bound of 0 would process nothing, ever, and a memory budget of 0 would read full (and
/// unhealthy) with nothing held.
#[test]
fn a_runtime_that_could_not_work_is_refused_when_made() {
    let cpu = || RuntimeOptions::default().with_backend(BackendChoice::Cpu);
    for (options, named) in [
        (
            cpu().with_default_queue_size(0),
            "default_queue_size (defaultQueueSize) must be between 1 and 4194304, got 0",
        ),
        (
            cpu().with_default_queue_size(MAX_QUEUE_SIZE + 1),
            "default_queue_size (defaultQueueSize) must be between 1 and 4194304, got 4194305",
        ),
        (cpu().with_max_messages_per_tick(0), "max_messages_per_tick (maxMessagesPerTick) must be at least 1, got 0"),
        // A budget of nothing would read full, and unhealthy, with nothing held.
        (cpu().with_memory_budget(0), "memory_budget (memoryBudget) must be at least 1 byte, got 0"),
    ] {
        let refused = pollster::block_on(Runtime::new(options)).expect_err("refused");
        assert_eq!(common::js_name(&refused), "RangeError", "{refused}");
        assert!(refused.to_string().contains(named), "{refused}");
    }
    // A zero heartbeat would call every kernel with input stale at once.
    let zero = WatchdogConfig::default().with_heartbeat_timeout(Duration::ZERO);
    let refused = pollster::block_on(Runtime::new(cpu().with_watchdog(zero))).expect_err("refused");
    assert!(refused.to_string().contains("heartbeat_timeout (heartbeatTimeoutMs) must be more than 0 ms"), "{refused}");
    let rt = pollster::block_on(Runtime::new(cpu())).unwrap();
    let refused = rt.kernel_watchdog().set_heartbeat_timeout(Duration::ZERO).unwrap_err();
    assert_eq!(common::js_name(&refused), "RangeError", "{refused}");
    // A device list built by mistake opens nothing, rather than a thread per entry.
    let many = cpu().with_devices(vec![DeviceSpec::default(); MAX_DEVICES + 1]);
    let refused = pollster::block_on(Runtime::new(many)).expect_err("refused");
    assert_eq!(common::js_name(&refused), "RangeError", "{refused}");
    assert!(refused.to_string().contains("devices lists 65 devices; a runtime runs at most 64"), "{refused}");
    // An adapter index beside a device list would be ignored: refused instead.
    let both = cpu().with_devices([DeviceSpec::default(), DeviceSpec::default()]).with_device_index(1);
    let refused = pollster::block_on(Runtime::new(both)).expect_err("refused");
    assert_eq!(common::js_name(&refused), "TypeError", "{refused}");
    assert!(refused.to_string().contains("device_index (deviceIndex) picks the adapter of a runtime's one device"));
    // An adapter past those there are names the backends as the options do, not as wgpu's
    // `Debug` prints them ("Backends(VULKAN | GL)").
    let past = RuntimeOptions::default().with_backend(BackendChoice::Vulkan).with_device_index(99);
    let refused = pollster::block_on(Runtime::new(past)).expect_err("no adapter 99");
    assert!(refused.to_string().contains("vulkan: ") && refused.to_string().contains("no adapter 99"), "{refused}");
    assert!(!refused.to_string().contains("Backends("), "{refused}");
    let rt =
        pollster::block_on(Runtime::new(cpu().with_default_queue_size(MAX_QUEUE_SIZE).with_max_messages_per_tick(1)));
    rt.expect("the limits themselves are fine");
}

/// The operations layer's own arguments: degradation options that cannot work, memory alert
/// thresholds outside (0, 1], and option objects (as JSON, the shape JavaScript hands over)
/// with unknown keys or negative durations. Each is refused by name and registers nothing.
#[test]
fn bad_degradation_options_and_alert_thresholds_are_refused_by_name() {
    let bad_options = [
        DegradationOptions::default().with_queue_fill_thresholds([0.9, 0.5, 0.95, 0.99]),
        DegradationOptions::default().with_latency_thresholds([1.0, 2.0, f64::INFINITY, 4.0]),
        DegradationOptions::default().with_memory_thresholds([-0.1, 0.8, 0.9, 0.97]),
        DegradationOptions::default().with_hysteresis(1.0),
        DegradationOptions::default().with_hysteresis(-0.5),
        DegradationOptions::default().with_window(Duration::ZERO),
        // A queue is never more than full, and a zero budget would read as none.
        DegradationOptions::default().with_queue_fill_thresholds([0.5, 0.7, 0.8, 1.5]),
        DegradationOptions::default().with_default_latency_budget(Duration::ZERO),
    ];
    // Named as Rust writes them, with the key of their serde (and JavaScript) form after.
    let named = [
        "queue_fill_thresholds (degradation.queueFillThresholds)",
        "latency_thresholds (degradation.latencyThresholds)",
        "memory_thresholds (degradation.memoryThresholds)",
        "hysteresis (degradation.hysteresis)",
        "hysteresis (degradation.hysteresis)",
        "window (degradation.windowMs)",
        "queue_fill_thresholds (degradation.queueFillThresholds)",
        "default_latency_budget (degradation.defaultLatencyBudgetMs)",
    ];
    for (degradation, name) in bad_options.into_iter().zip(named) {
        let options = RuntimeOptions::default().with_backend(BackendChoice::Cpu).with_degradation(degradation.clone());
        let refused = pollster::block_on(Runtime::new(options)).unwrap_err();
        assert_eq!(common::js_name(&refused), "RangeError", "{degradation:?}: {refused}");
        assert!(refused.to_string().starts_with(&format!("out of range: {name} ")), "{refused}");
    }
    let unordered = DegradationOptions::default().with_queue_fill_thresholds([1.0, 0.8, 0.9, 1.0]);
    let options = RuntimeOptions::default().with_backend(BackendChoice::Cpu).with_degradation(unordered);
    let refused = pollster::block_on(Runtime::new(options)).unwrap_err().to_string();
    assert!(refused.ends_with("not [1, 0.8, 0.9, 1]"), "the thresholds as JavaScript prints them: {refused}");
    let rt = runtime_on(BackendChoice::Cpu);
    let zero = LaunchOptions::default().with_latency_budget(Duration::ZERO);
    let refused = pollster::block_on(rt.launch("doubler", zero)).unwrap_err();
    assert_eq!(common::js_name(&refused), "RangeError", "{refused}");
    assert!(rt.get_kernel("doubler").is_none(), "nothing launched");
    let rt = runtime_on(BackendChoice::Cpu);
    let dashboard = rt.gpu_memory_dashboard();
    let heard = Arc::new(Mutex::new(0));
    for threshold in [0.0, -0.5, 1.000_001, f64::NAN, f64::INFINITY] {
        let into = heard.clone();
        let refused = dashboard.on_alert(threshold, move |_| *into.lock().unwrap() += 1).unwrap_err();
        assert_eq!(common::js_name(&refused), "RangeError", "threshold {threshold}");
    }
    dashboard.trigger_alert(MemoryPressureAlert::High).unwrap();
    assert_eq!(*heard.lock().unwrap(), 0, "no refused watch was registered");

    let runtime_json = [
        r#"{"degradation": {"cooldownMs": -1}}"#,
        r#"{"degradation": {"cooldown": 5}}"#,
        r#"{"degradation": {"queueFillThresholds": [0.5, 0.7]}}"#,
        r#"{"degradation": 5}"#,
        r#"{"memoryBudget": -1}"#,
        r#"{"memoryBudget": "1"}"#,
    ];
    for json in runtime_json {
        assert!(serde_json::from_str::<RuntimeOptions>(json).is_err(), "{json} was accepted");
    }
    let launch_json = [
        r#"{"latencyBudgetMs": -5}"#,
        r#"{"latencyBudgetMs": "5"}"#,
        r#"{"latencyBudget": 5}"#,
        r#"{"checkpointIntervalMs": -1}"#,
        r#"{"checkpointIntervalMs": "1000"}"#,
        r#"{"checkpointIntervalMs": null}"#,
        r#"{"checkpointIntervalMs": 9000000000000001}"#,
    ];
    for json in launch_json {
        assert!(serde_json::from_str::<LaunchOptions>(json).is_err(), "{json} was accepted");
    }
    let too_long = serde_json::from_str::<LaunchOptions>(r#"{"checkpointIntervalMs": 1e16}"#).unwrap_err();
    assert!(
        too_long.to_string().contains("checkpointIntervalMs must be a number of milliseconds from 0 to 9e15, got 1"),
        "{too_long}"
    );
    let every_second: LaunchOptions = serde_json::from_str(r#"{"checkpointIntervalMs": 1000}"#).unwrap();
    assert_eq!(every_second.checkpoint_interval, Some(Duration::from_secs(1)));
    // The range's end, which its errors name ("from 0 to 9e15"), is in it.
    let longest: LaunchOptions = serde_json::from_str(r#"{"checkpointIntervalMs": 9e15}"#).unwrap();
    assert_eq!(longest.checkpoint_interval, Some(Duration::from_secs(9_000_000_000_000)));
    let fine: RuntimeOptions =
        serde_json::from_str(r#"{"memoryBudget": 1024, "degradation": {"cooldownMs": 250}}"#).unwrap();
    assert_eq!(fine.degradation.unwrap().cooldown, Duration::from_millis(250));
}

// ---- oversized batches and rings ----

/// A batch larger than the queue's room is not an error: the first messages that fit are
/// queued, in order, the count says how many, and the rest were not queued (as `send_packed`
/// and `sendBatch` document). With no room at all, 0 and nothing changes. Given time, a batch
/// several times the queue's size goes in whole while the kernel drains. (A single `send`,
/// which cannot report a partial count, fails with `QueueFullError`: see the table.)
#[test]
fn an_oversized_batch_queues_what_fits_and_says_how_many() {
    let _turn = one_world_at_a_time();
    register_doubler("bad-batch");
    let rt = runtime_on(BackendChoice::Auto);
    pollster::block_on(async {
        rt.launch("bad-batch", queue(4)).await.unwrap();
        rt.send_pod("bad-batch", &1i32, None).await.unwrap();
        let batch: Vec<i32> = (10..20).collect();
        assert_eq!(
            common::accepted(rt.send_batch("bad-batch", &batch, Some(Duration::from_millis(0))).await),
            3,
            "room for 3 of 10"
        );
        let full = snapshot(&rt);
        assert_eq!((full.kernels["bad-batch"].input_depth, full.kernels["bad-batch"].sent), (4, 4));
        assert_eq!(
            common::accepted(rt.send_batch("bad-batch", &batch, Some(Duration::from_millis(0))).await),
            0,
            "no room at all"
        );
        let mut expected = full.clone();
        *expected.errors.get_mut("bad-batch").unwrap() += 1;
        assert_eq!(snapshot(&rt), expected, "a batch with no room changes nothing but the error count");
        rt.activate("bad-batch").await.unwrap();
        assert_eq!(
            receive_n(&rt, "bad-batch", 4, Duration::from_secs(30)).await,
            [2, 20, 22, 24],
            "exactly the first three, in order"
        );

        let big: Vec<i32> = (0..12).collect();
        let (accepted, answers) = futures_util::join!(
            rt.send_batch("bad-batch", &big, Some(Duration::from_millis(30_000))),
            receive_n(&rt, "bad-batch", 12, Duration::from_secs(30))
        );
        assert_eq!(accepted.unwrap(), 12);
        assert_eq!(answers, big.iter().map(|v| v * 2).collect::<Vec<_>>());
        // Each batch cut short by its timeout was a `QueueFull`, counted like a full single send.
        assert_eq!(rt.telemetry("bad-batch").unwrap().unwrap().errors, 2);
    });
}

/// The adapter the runtime's `Auto` choice gets: same request as the runtime makes.
fn adapter_limits() -> wgpu::Limits {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = wgpu::Backends::PRIMARY;
    let instance = wgpu::Instance::new(desc);
    let options =
        wgpu::RequestAdapterOptions { power_preference: wgpu::PowerPreference::HighPerformance, ..Default::default() };
    pollster::block_on(instance.request_adapter(&options)).expect("the adapter the tests run on").limits()
}

/// A kernel whose ring would be larger than the device can bind: 4 KiB messages and a queue
/// one message past `max_storage_buffer_binding_size` (the buffer itself stays within
/// `max_buffer_size`), the case where a message no longer fits in a ring slot the device can
/// address. Launch must refuse it with a named error that says what fits, leave nothing
/// behind, and keep the runtime working. (It used to launch, and the bind group's validation
/// error then escaped every error scope, so the next operation found the device lost.)
#[test]
fn a_ring_larger_than_the_device_can_bind_is_refused_at_launch() {
    let _turn = one_world_at_a_time();
    let limits = adapter_limits();
    let stride = 4096u64;
    let queue_size = limits.max_storage_buffer_binding_size / stride + 1;
    let ring = queue_size.next_power_of_two() * stride; // the runtime rounds slots up to a power of two
    assert!(ring < limits.max_buffer_size, "the case is the binding limit, not the buffer size");
    let big = MessageLayout::new("BadBig", &[("x", FieldType::array(FieldType::F32, 1024))]).unwrap();
    let def = KernelDefinition::new(
        "bad-big",
        big,
        doubler_response(),
        "fn handle(m: BadBig) -> Response { return Response(i32(m.x[0])); }",
    );
    let rt = runtime_on(BackendChoice::Auto);
    let before = snapshot(&rt);
    let launched = pollster::block_on(rt.launch_definition(def, queue(queue_size as usize)));
    let works = pollster::block_on(async {
        rt.launch("doubler", queue(QUEUE)).await?;
        rt.activate("doubler").await?;
        rt.call_pod::<i32, i32>("doubler", &21, Some(Duration::from_millis(30_000))).await
    });
    println!("bad inputs tried (ring limits): 1");
    let refused = matches!(&launched, Err(Error::KernelCompile { message, .. }) if message.contains("largest queue_size (queueSize)"));
    assert!(
        refused && works == Ok(42),
        "a queue of {queue_size} {stride}-byte messages ({ring} bytes of ring, the device binds at most {}): launch \
         gave {launched:?}, and then a doubler call gave {works:?}",
        limits.max_storage_buffer_binding_size
    );
    assert!(!snapshot(&rt).ids.contains(&"bad-big".to_owned()), "{before:?}");
}

//! Model-based fuzzing: random sequences of lifecycle and messaging operations run against the
//! runtime and, side by side, against a small pure model of what the runtime promises. After
//! every operation its result (success, count, answer, or error name), every kernel's state,
//! the kernel lists and the queue counters must be ones the model allows; at the end of each
//! sequence everything is terminated and drained, and every accepted message must have been
//! answered exactly once, in order. proptest shrinks a failing sequence to a minimal one.
//!
//! Runs on a runtime of two `cpu` devices (many cases), of two GPU devices (lavapipe; fewer
//! cases, and device loss and recovery besides, see below) and of a cpu device beside a GPU one
//! (fewest; the kernels have WGSL and a host handler, so they run and move on either, and only
//! the GPU can be lost: a loss of the cpu device is refused), with a fixed seed and a bounded
//! case count so CI is deterministic in what it tries. Kernels are launched on a device drawn
//! with them, and move between the two (see *Migration*).
//! `RINGKERNEL_FUZZ_CASES` / `RINGKERNEL_FUZZ_GPU_CASES` / `RINGKERNEL_FUZZ_MIXED_CASES` raise the case counts and
//! `RINGKERNEL_FUZZ_SEED` picks another seed, for longer runs by hand.
//!
//! # What the model knows, and why it never depends on timing
//! The pump runs concurrently, so where a queued message is at a given moment (host input
//! queue, in flight, host output queue) depends on timing. The model does not track that. Per
//! kernel it keeps the state, the queue size `q`, and the FIFO of messages accepted and not yet
//! known to be finished: plain sends (whose answers `receive` must return, in order) and calls
//! that timed out (they still occupy queue room until processed, but their answers are
//! discarded and must never reach `receive`). It relies only on rules the runtime guarantees
//! whatever the timing:
//!
//! 1. the input queue holds at most `q` messages, and the output queue plus the messages in
//!    flight at most `q` (the pump takes input only when every answer will have room), except
//!    while terminating, when the drain ignores the output bound (and just after a device loss,
//!    see below);
//! 2. the pump takes input in FIFO order, and only while the kernel is active or terminating;
//! 3. an active kernel makes progress: it processes input as long as rule 1 lets it;
//! 4. `terminate` returns successfully only once everything queued has been processed (it
//!    runs the kernel, whatever its state, to drain it); past its timeout it stops the kernel
//!    anyway and reports the unprocessed count with a `TimeoutError`.
//!
//! Hence: every message behind the q-th unreceived send is certainly still in the input queue
//! ("held back": the sends before it fill the output side); messages queued while launched or
//! deactivated are certainly still there until the kernel runs again ("waiting"); and an active
//! kernel, left alone, processes everything up to its q-th unreceived send. So:
//!
//! - lifecycle operations are fully determined (success, `KernelStateError`,
//!   `KernelNotFoundError`), and so is every state;
//! - on an active kernel, a send or batch that will fit once the kernel has caught up is sent
//!   with a long timeout and must be accepted whole; a `receive` with an answer due, and a
//!   `call` with fewer than `q` unreceived sends ahead of it, must answer. The long timeout
//!   (`LONG_MS`) is a liveness bound that a passing run never waits out, not a timed assertion;
//! - where the outcome is already fixed (a queue that is full and cannot drain, a receive with
//!   nothing that could have been answered), the operation uses a zero or 1 ms timeout;
//! - where timing alone decides (how much a deactivated kernel processed before it paused, how
//!   much room an active one has made right now), the model allows every outcome timing can
//!   produce (a range of accepted counts, "the next answer or a timeout", "queue full or an
//!   abandoned call", "some prefix of the due answers" for `receive_batch`) and learns from
//!   the one observed. Whatever arrives must still be exactly the next answers the model
//!   expects;
//! - a terminate with a zero timeout (`TerminateNow`) races the drain it starts: it may finish,
//!   or stop the kernel with some prefix of the answers delivered. The harness reads how many
//!   from the output queue's depth; exactly those must be received afterwards, and nothing else.
//!
//! Telemetry is checked against the same rules: the queue depths stay within the bounds above,
//! `messages_sent` / `messages_received` count exactly what the model accepted and took, and
//! once a kernel is terminated every message it accepted was processed or counted in
//! `unprocessed_at_termination`. Independently of the model, the harness logs every launch's
//! accepted payloads and received answers, and checks at the end that each launch answered
//! exactly what it accepted, in order (less what a timed-out or stranded terminate reported
//! unprocessed).
//!
//! # State
//! "twin" counts in its `state`: `state[0] += 1` and `state[1] += value` per message. The kernel
//! takes its messages in order and a loss rolls its state back to the last delivered tick (the
//! checkpoint every tick takes) together with the messages it requeues, so the state always
//! counts a *prefix* of the messages the launch accepted (sends and calls, kept in
//! `KernelModel::log`): at least those known finished, at most all but those certainly still in
//! the input queue. `write_state` of the whole array lands between ticks, after some prefix
//! whose length the model bounds the same way when the write returns. So `ReadState` is checked
//! at any moment, not only at quiescent points: the values must be the last write plus what
//! `log[a..p]` adds, for a write split `a` in its bounds and a `p` in the processed bounds (the
//! payloads are unique and positive, so the two counters pin both down); the model narrows `a`
//! to what the values it read allow. Once stopped, the bounds freeze (all of it after a drain;
//! exactly the answered prefix after a terminate while failed; anything past the known
//! finished after a cut-short terminate). Refusals: no state (`doubler`: `TypeError`), a failed
//! kernel (`DeviceLostError`, read or write), a write to a kernel whose device is lost
//! (`DeviceLostError`) or that is terminated (`KernelStateError`); a stopped kernel's state
//! stays readable after a loss (its checkpoint).
//!
//! `WriteOne` writes one counter (index 1, or 0 alone; index 2 is past the end: `RangeError`),
//! so each counter has its own last write and split. A twin launched with a checkpoint interval
//! (`Duration::MAX`: no tick copies its state back) is exact while its device works, but a loss
//! leaves its last checkpoint, which the model tracks where the README fixes it: zeros at launch,
//! a whole write, a partial write while nothing was processed since the checkpoint (one made
//! after something was waits for the next checkpoint; where the model cannot tell, it forgets
//! the checkpoint), a move to another device (the state then, if the model knows it exactly), a
//! terminate that waited for its final read. After a loss the state is that checkpoint plus
//! what the requeued messages add when recovery runs them again; a checkpoint the model does not
//! know makes any state allowed until the next whole write.
//!
//! # Migration
//! `Migrate` moves a kernel to the other device (or its own) and awaits the move: a launched,
//! active or deactivated kernel keeps its state, queue contents and order, and the model changes
//! only its device (to its own: a zero-pause report); every check above holds across the move,
//! the answer log included. Refused, changing nothing: an unknown kernel (`KernelNotFoundError`),
//! a terminated one (`KernelStateError`), a lost target (`DeviceLostError`, also a failed
//! kernel's own device). A failed kernel moved to a working device runs again there in the
//! state it failed in, as `recover` would run it. The report's `from`, `to` and `requeued` (0:
//! no device is lost during a move) are checked. `MigrateLosing` destroys a device while a live
//! kernel moves (polled once first): lost under the kernel, the move is done all the same (its
//! unanswered messages requeued, whether it failed first or not: any `requeued` then, counted
//! in the run's summary line), and lost under the target, the move is done (the kernel then
//! fails there) or refused with `DeviceLostError` (nothing changed); the loss is then checked as
//! `DestroyDevice`, and the answer log must hold. `MigrateTwice` runs two moves of one kernel at
//! once (their outcomes must be those of one order, one after the other), `MigrateBoth` moves
//! both kernels at once. `MigrateWhile` starts a move (polled once, so it
//! takes its lock and starts compiling) and runs one operation on the same kernel while it goes
//! on (send, batch, receive, call, state read or write, activate, deactivate, reactivate,
//! terminate): the move changes nothing those operations' plans depend on, so both are checked
//! against plans made before, whichever lands first; a terminate that overtakes the move makes
//! it `KernelStateError`. A failed kernel's move changes its state, so it is run first, then
//! the operation.
//!
//! # Device loss (GPU only)
//! `DestroyDevice(d)` loses device `d` and polls until the pump has noticed (the summary says
//! lost, and no kernel on it is left launched, active, deactivated or terminating); `Recover`
//! calls `recover` (every lost device); `CallLosingDevice` loses the kernel's device while a
//! `call` waits. A loss moves every kernel on the device not terminated to `Failed`,
//! remembering its state; kernels on the other device go on as before. How much each had processed by
//! then is timing, so the harness reads each failed kernel's input-queue depth: the model
//! allows any depth from what is certainly unprocessed to its whole FIFO, and learns the
//! split. From then on it knows each failed kernel exactly, since nothing moves until
//! recovery: the answers delivered before the loss (the FIFO's front: output queue) and the
//! messages not processed (the rest: input queue, nothing in flight). While failed:
//! - `receive`/`receive_batch` return delivered answers, then `DeviceLostError` (zero timeout:
//!   a wait would show as `TimeoutError`); `call` is refused with `DeviceLostError`; `send` and
//!   `send_batch` queue as far as the input queue has room below `q`;
//! - activate, deactivate, reactivate and remove give `KernelStateError`, launching a new id
//!   on the lost device `DeviceLostError`;
//! - `terminate` (any timeout) stops the kernel at once: `Ok` if nothing was unprocessed, else
//!   `DeviceLostError`, with exactly that count in `unprocessed_at_termination`; the delivered
//!   answers stay receivable and are all the launch will ever answer;
//! - a call waiting at the loss ends in its answer (if it came first), or in `DeviceLostError`:
//!   its message is then queued (the harness sees `messages_sent` grow) and certainly not
//!   processed, or it was still waiting for room and was never queued.
//!
//! `recover` returns each failed kernel to its state; its queued messages are then processed in
//! order, so the model's rules above hold again, with one change: the messages the GPU had not
//! answered went back to the front of the input queue, which may then hold more than `q` (up
//! to `q` waiting plus `q` in flight; sends wait until it is below `q`), so the input bound is
//! `q` or the requeued messages left, whichever is more. The summary's `lost`, and each
//! device's `lost`, `losses` and `recoveries`, are checked after every operation, and so is
//! where each kernel runs (`device_of`, telemetry's `device`); a case that ends lost recovers
//! before draining, so the answer log must hold across every loss.
//!
//! Shrinking reruns shortened sequences, each up to `SHRINK_ATTEMPTS` times; a failure that
//! needs a lucky interleaving may still not recur, so its reported sequence may be longer than
//! minimal (the message also lists every operation of the failing run with its outcome).
//!
//! # Adding operations
//! An operation is a variant of [`Op`], a line in [`op_strategy`], an arm in [`Model::plan`]
//! (what it may return, under which timeout), in [`execute`] (the runtime call) and in
//! [`Model::apply`] (what the observed outcome changes). An operation that is one runtime
//! action but two model steps (like `CallLosingDevice`) is split in [`Case::step`].
#![cfg(not(target_arch = "wasm32"))]

#[allow(unused_imports)]
mod common;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::pin::pin;
use std::sync::Once;
use std::task::Poll;
use std::time::Duration;

use futures_util::poll;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use ringkernel_web::kernel::{doubler_request, doubler_response, host};
use ringkernel_web::{
    kernel, BackendChoice, DeviceId, DeviceSpec, Error, KernelDefinition, KernelMode, KernelState, LaunchOptions,
    MigrationReport, Runtime, RuntimeOptions, StateElement,
};

/// Kernel ids the operations pick from: the built-in doubler, a doubler under another id that
/// also counts in its `state` (see [`register_twin`]), and an id nobody registered.
const IDS: [&str; 3] = ["doubler", "twin", "ghost"];
/// The one with a `state` array.
const TWIN: usize = 1;
const GHOST: usize = 2;
/// Devices of the runtime (two cpu devices on the cpu backend, two GPU devices on the GPU).
const DEVICES: usize = 2;

/// Liveness bound for operations that must succeed eventually; never waited out when passing.
const LONG_MS: f64 = 10_000.0;
/// For operations whose outcome is already fixed: take what is there now.
const NOW_MS: f64 = 0.0;
/// For receives that must find nothing: a moment for a wrongly produced answer to show up.
const SHORT_MS: f64 = 1.0;

/// How long the cpu backend's "twin" handler takes per message.
const SLOW_HANDLER: std::time::Duration = std::time::Duration::from_micros(200);

const MAX_QUEUE: usize = 8;
const MAX_BATCH: usize = 20;
const MAX_OPS: usize = 50;
/// Runs of each shortened sequence while shrinking (see [`fuzz`]).
const SHRINK_ATTEMPTS: usize = 5;

const NOT_FOUND: &str = "KernelNotFoundError";
const STATE: &str = "KernelStateError";
const QUEUE_FULL: &str = "QueueFullError";
const TIMEOUT: &str = "TimeoutError";
const DEVICE_LOST: &str = "DeviceLostError";
/// `InvalidArgument`: here, reading or writing the state of a kernel without one.
const NO_STATE: &str = "TypeError";

// ---- operations ----

/// One of `IDS`, printed by name so shrunk sequences read well.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
struct K(usize);

impl K {
    fn id(self) -> &'static str {
        IDS[self.0]
    }
}

impl fmt::Debug for K {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.id())
    }
}

#[derive(Clone, Debug)]
enum Op {
    Launch {
        k: K,
        queue_size: usize,
        mode: KernelMode,
        device: usize,
        /// Launched with a checkpoint interval (`Duration::MAX`: its state is copied back only
        /// by a whole write, a move and its final terminate), see *State*.
        interval: bool,
    },
    Activate(K),
    Deactivate(K),
    Reactivate(K),
    /// Terminate with a long timeout: drains everything first.
    Terminate(K),
    /// Terminate with a zero timeout: stops at once, reporting what it left unprocessed.
    TerminateNow(K),
    Remove(K),
    /// One message, payload the next sequence number.
    Send(K),
    /// This many messages with consecutive sequence numbers.
    SendBatch(K, usize),
    Receive(K),
    /// `receive_batch` of up to this many (0 counts as 1).
    ReceiveBatch(K, usize),
    Call(K),
    /// `destroy_device_at` this device (GPU only), then waiting until the pump has noticed:
    /// every kernel that had GPU resources there is `Failed`.
    DestroyDevice(usize),
    /// `recover`: a new device, every failed kernel back in the state it failed in.
    Recover,
    /// A `call` (long timeout), and the kernel's device lost while it waits, at once or after a
    /// millisecond's `pause` (time for the pump to answer it first): checked as the call, then
    /// `DestroyDevice`.
    CallLosingDevice {
        k: K,
        pause: bool,
    },
    /// `migrate` to this device, awaited.
    Migrate(K, usize),
    /// `migrate` started (polled once), then the operation (on the same kernel) run while it
    /// goes on: checked as the migration, then the operation.
    MigrateWhile(K, usize, Box<Op>),
    /// `read_state` (the twin's two counters).
    ReadState(K),
    /// `write_state` of the whole array (both counters) from element 0.
    WriteState(K, i32, i32),
    /// `write_state` of one value at this index (1: the second counter alone; 2: past the end).
    WriteOne(K, usize, i32),
    /// `migrate` to the first device, device `lost` (the second) destroyed while the move goes
    /// on (polled once first), then both awaited: checked as the migration, then the loss.
    MigrateLosing {
        k: K,
        to: usize,
        lost: usize,
    },
    /// Two `migrate`s of the same kernel at once (to each device named), both awaited.
    MigrateTwice(K, usize, usize),
    /// `migrate`s of both kernels at once ("doubler" to the first device, "twin" to the second).
    MigrateBoth(usize, usize),
}

impl Op {
    /// The kernel a kernel operation names (the device operations name none and are handled
    /// before anything asks).
    fn k(&self) -> K {
        match *self {
            Op::Launch { k, .. } => k,
            Op::Activate(k)
            | Op::Deactivate(k)
            | Op::Reactivate(k)
            | Op::Terminate(k)
            | Op::TerminateNow(k)
            | Op::Remove(k)
            | Op::Send(k)
            | Op::SendBatch(k, _)
            | Op::Receive(k)
            | Op::ReceiveBatch(k, _)
            | Op::Call(k)
            | Op::CallLosingDevice { k, .. }
            | Op::Migrate(k, _)
            | Op::MigrateWhile(k, ..)
            | Op::ReadState(k)
            | Op::WriteState(k, ..)
            | Op::WriteOne(k, ..)
            | Op::MigrateLosing { k, .. }
            | Op::MigrateTwice(k, ..) => k,
            Op::DestroyDevice(_) | Op::Recover | Op::MigrateBoth(..) => unreachable!("{self:?} names no kernel"),
        }
    }
}

/// Both modes schedule alike today; the model holds for either.
fn mode() -> impl Strategy<Value = KernelMode> {
    prop_oneof![Just(KernelMode::Persistent), Just(KernelMode::EventDriven)]
}

fn kernel() -> impl Strategy<Value = K> {
    prop_oneof![6 => Just(K(0)), 6 => Just(K(1)), 1 => Just(K(GHOST))]
}

fn device() -> impl Strategy<Value = usize> {
    0..DEVICES
}

/// Launched with a checkpoint interval, one in four.
fn interval() -> impl Strategy<Value = bool> {
    prop_oneof![3 => Just(false), 1 => Just(true)]
}

/// Values `WriteState` writes: small, so a counter written back stays readable.
fn state_value() -> impl Strategy<Value = i32> {
    prop_oneof![Just(0), -5..=1000]
}

/// Operations a `MigrateWhile` runs while the migration goes on: ones the move does not
/// change the outcome of (so the model's plan for each holds whenever the move lands).
fn during_migration() -> impl Strategy<Value = Op> {
    let k = kernel;
    prop_oneof![
        3 => k().prop_map(Op::Send),
        2 => (k(), 1..=MAX_BATCH).prop_map(|(k, n)| Op::SendBatch(k, n)),
        3 => k().prop_map(Op::Receive),
        1 => (k(), 1..=10usize).prop_map(|(k, n)| Op::ReceiveBatch(k, n)),
        3 => k().prop_map(Op::Call),
        2 => k().prop_map(Op::ReadState),
        1 => (k(), state_value(), state_value()).prop_map(|(k, a, b)| Op::WriteState(k, a, b)),
        1 => k().prop_map(Op::Activate),
        1 => k().prop_map(Op::Deactivate),
        1 => k().prop_map(Op::Reactivate),
        1 => k().prop_map(Op::Terminate),
    ]
}

/// Every kind of operation; with `device`, also device loss and recovery (GPU only: the cpu
/// backend has no device to lose).
fn op_strategy(device: bool) -> BoxedStrategy<Op> {
    let k = kernel;
    let ops = prop_oneof![
        2 => (k(), 1..=MAX_QUEUE, mode(), self::device(), interval())
            .prop_map(|(k, queue_size, mode, device, interval)| Op::Launch { k, queue_size, mode, device, interval }),
        4 => k().prop_map(Op::Activate),
        3 => k().prop_map(Op::Deactivate),
        3 => k().prop_map(Op::Reactivate),
        1 => k().prop_map(Op::Terminate),
        1 => k().prop_map(Op::TerminateNow),
        1 => k().prop_map(Op::Remove),
        8 => k().prop_map(Op::Send),
        4 => (k(), 0..=MAX_BATCH).prop_map(|(k, n)| Op::SendBatch(k, n)),
        6 => k().prop_map(Op::Receive),
        3 => (k(), 0..=10usize).prop_map(|(k, n)| Op::ReceiveBatch(k, n)),
        3 => k().prop_map(Op::Call),
        3 => (k(), self::device()).prop_map(|(k, to)| Op::Migrate(k, to)),
        2 => (k(), self::device(), during_migration()).prop_map(|(k, to, op)| {
            // The operation names the migrating kernel.
            let op = match op {
                Op::Send(_) => Op::Send(k),
                Op::SendBatch(_, n) => Op::SendBatch(k, n),
                Op::Receive(_) => Op::Receive(k),
                Op::ReceiveBatch(_, n) => Op::ReceiveBatch(k, n),
                Op::Call(_) => Op::Call(k),
                Op::ReadState(_) => Op::ReadState(k),
                Op::WriteState(_, a, b) => Op::WriteState(k, a, b),
                Op::Activate(_) => Op::Activate(k),
                Op::Deactivate(_) => Op::Deactivate(k),
                Op::Reactivate(_) => Op::Reactivate(k),
                _ => Op::Terminate(k),
            };
            Op::MigrateWhile(k, to, Box::new(op))
        }),
        3 => k().prop_map(Op::ReadState),
        2 => (k(), state_value(), state_value()).prop_map(|(k, a, b)| Op::WriteState(k, a, b)),
        2 => (k(), prop_oneof![2 => Just(1usize), 2 => Just(0), 1 => Just(2)], state_value())
            .prop_map(|(k, i, v)| Op::WriteOne(k, i, v)),
        1 => (k(), self::device(), self::device()).prop_map(|(k, a, b)| Op::MigrateTwice(k, a, b)),
        1 => (self::device(), self::device()).prop_map(|(a, b)| Op::MigrateBoth(a, b)),
    ];
    if device {
        prop_oneof![
            44 => ops,
            1 => self::device().prop_map(Op::DestroyDevice),
            1 => (kernel(), any::<bool>()).prop_map(|(k, pause)| Op::CallLosingDevice { k, pause }),
            2 => Just(Op::Recover),
            1 => (kernel(), self::device(), self::device()).prop_map(|(k, to, lost)| Op::MigrateLosing { k, to, lost }),
        ]
        .boxed()
    } else {
        ops.boxed()
    }
}

/// A case: both kernels launched (queue sizes and devices drawn too), then random operations.
/// The two launches only spare cases a long run-up of `KernelNotFoundError`s; later `Launch` ops
/// relaunch removed kernels (or are refused).
/// Mostly single operations; sometimes a restart burst (terminate at once, remove, launch
/// again), back to back so the relaunch can meet work the old launch still had in progress;
/// with `device`, sometimes a batch followed at once by a loss of its kernel's device (the
/// first, if the kernel moved), so the device goes while messages are on the GPU.
fn chunk_strategy(device: bool) -> BoxedStrategy<Vec<Op>> {
    let restart = (prop_oneof![1 => Just(K(0)), 3 => Just(K(1))], 1..=MAX_QUEUE, mode(), self::device(), interval())
        .prop_map(|(k, queue_size, mode, device, interval)| {
            vec![Op::TerminateNow(k), Op::Remove(k), Op::Launch { k, queue_size, mode, device, interval }]
        });
    let chunks = prop_oneof![40 => op_strategy(device).prop_map(|op| vec![op]), 1 => restart];
    if device {
        let lost_mid_batch = (kernel(), 1..=MAX_BATCH, self::device())
            .prop_map(|(k, n, d)| vec![Op::SendBatch(k, n), Op::DestroyDevice(d)]);
        prop_oneof![41 => chunks, 1 => lost_mid_batch].boxed()
    } else {
        chunks.boxed()
    }
}

fn case_strategy(device: bool) -> impl Strategy<Value = Vec<Op>> {
    let launch = |k| {
        (1..=MAX_QUEUE, mode(), self::device(), interval()).prop_map(move |(queue_size, mode, device, interval)| {
            Op::Launch { k: K(k), queue_size, mode, device, interval }
        })
    };
    (launch(0), launch(1), proptest::collection::vec(chunk_strategy(device), 0..=MAX_OPS))
        .prop_map(|(a, b, chunks)| [a, b].into_iter().chain(chunks.into_iter().flatten()).collect())
}

// ---- the model ----

/// What an operation returned, reduced to what the model predicts.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    /// `send_batch`: how many were accepted.
    Accepted(usize),
    /// `receive` or `call`: the answer.
    Answer(i32),
    /// `receive_batch`: the answers.
    Answers(Vec<i32>),
    /// `terminate` timed out (`TimeoutError`) and stopped the kernel, with this many answers
    /// left in its output queue (read from telemetry right after).
    CutShort {
        answers_kept: usize,
    },
    /// The error's name.
    Failed(&'static str),
    /// `destroy_device`, once noticed: every `Failed` kernel with its input queue's depth then,
    /// which is everything it had not processed (the pump put what the GPU had not answered
    /// back in line). Read from telemetry, like `CutShort`'s answers.
    Lost(Vec<(K, usize)>),
    /// `call`: `DeviceLost` after its message was queued (the harness sees `messages_sent`
    /// grow). The message stays queued; its answer will be discarded.
    Abandoned,
    /// `CallLosingDevice`: the call's outcome, then the loss's.
    CallLost(Box<Outcome>, Vec<(K, usize)>),
    /// `migrate`: the report's devices and requeued count.
    Moved {
        from: usize,
        to: usize,
        requeued: u64,
    },
    /// `read_state`: the twin's two counters.
    State([i32; 2]),
    /// Allowed only: any `State` (the model lost track of it, see [`KernelModel::state_known`]).
    AnyState,
}

/// What the model expects of one operation: the timeout to run it with, the payload it sends,
/// and every outcome it allows.
#[derive(Debug)]
struct Plan {
    timeout_ms: f64,
    payload: Vec<i32>,
    allowed: Vec<Outcome>,
}

/// A message accepted and not yet known to be finished.
#[derive(Clone, Copy, Debug)]
struct Queued {
    /// `Some(value)` for a send (its answer, `2 * value`, is due to `receive`); `None` for a
    /// call that timed out (processed some time, answer discarded).
    send: Option<i32>,
    /// Certainly still in the input queue (queued while the kernel did not run, or seen full).
    waiting: bool,
    /// Put back in the input queue when the device was last lost. The input queue may then
    /// hold more than `q` (see [`KernelModel::inbox_cap`]).
    requeued: bool,
}

#[derive(Clone, Debug)]
struct KernelModel {
    /// `Created` and `Terminating` are never observed between operations: `launch` and
    /// `terminate` return after leaving them.
    state: KernelState,
    /// While `Failed`: the state `recover` returns it to.
    resume: Option<KernelState>,
    mode: KernelMode,
    queue_size: usize,
    fifo: VecDeque<Queued>,
    /// Accepted messages, and answers taken by `receive` or `call` (telemetry counts both).
    sent: u64,
    received: u64,
    /// Once terminated: bounds on the count telemetry reports as unprocessed.
    unprocessed: (usize, usize),
    /// The device it is placed on.
    device: usize,
    /// Every message this launch accepted, in order (sends and calls): the payloads its state
    /// counts. The kernel processes them in order (what a lost device had not answered runs
    /// again from its checkpoint, which counted none of it), so its state always counts a
    /// prefix of them: the first `p`, where `p` is at least what is known finished and at most
    /// what is not certainly still in the input queue (see [`KernelModel::processed`]).
    log: Vec<i32>,
    /// Each counter's last write (zeros from the launch), and bounds on how many of `log` the
    /// kernel had processed when it landed (between ticks, so a prefix): counter `i` is
    /// `written[i]` plus what `log[a..p]` added to it, for one `a` in `split[i]`.
    written: [i32; 2],
    split: [(usize, usize); 2],
    /// Once stopped: bounds on how many of `log` its final state counts.
    frozen: Option<(usize, usize)>,
    /// Launched with a checkpoint interval (never reached): a loss leaves its last checkpoint.
    interval: bool,
    /// With `interval`: its checkpoint's values where known exactly (launch, a whole write, a
    /// partial write while the checkpoint was not behind, a move whose state the model knew),
    /// and bounds on how many of `log` it counts.
    checkpoint: Option<[i32; 2]>,
    checkpoint_at: (usize, usize),
    /// Whether `written`/`split` describe the state: not after a loss left a checkpoint the
    /// model did not know (then any state is allowed until a whole write).
    state_known: bool,
    /// With `interval`: stopped by a terminate that may have ended before its final read of the
    /// state, so a later loss may leave an older checkpoint.
    read_pending: bool,
}

impl KernelModel {
    fn new(queue_size: usize, mode: KernelMode, device: usize, interval: bool) -> KernelModel {
        KernelModel {
            state: KernelState::Launched,
            resume: None,
            mode,
            queue_size,
            fifo: VecDeque::new(),
            sent: 0,
            received: 0,
            unprocessed: (0, 0),
            device,
            log: vec![],
            written: [0, 0],
            split: [(0, 0); 2],
            frozen: None,
            interval,
            checkpoint: Some([0, 0]),
            checkpoint_at: (0, 0),
            state_known: true,
            read_pending: false,
        }
    }

    /// Bounds on how many of `log` the state counts now: at least those known finished, at
    /// most all but the messages certainly still in the input queue.
    fn processed(&self) -> (usize, usize) {
        if let Some(frozen) = self.frozen {
            return frozen;
        }
        let n = self.log.len();
        (n - self.fifo.len(), n - self.inbox_min().min(self.fifo.len()))
    }

    /// Every state `read_state` may return now, with the write splits `[a0, a1]` each implies:
    /// after the first `p` messages, counter `i` written after the first `a_i`.
    fn possible_states(&self) -> Vec<([usize; 2], [i32; 2])> {
        let (lo, hi) = self.processed();
        // sums[n]: what the first n messages add to the second counter.
        let sums: Vec<i32> = std::iter::once(0)
            .chain(self.log.iter().scan(0i32, |sum, v| {
                *sum = sum.wrapping_add(*v);
                Some(*sum)
            }))
            .collect();
        let [(a0_lo, a0_hi), (a1_lo, a1_hi)] = self.split;
        let mut states = Vec::new();
        for a0 in a0_lo..=a0_hi {
            for a1 in a1_lo..=a1_hi {
                let least = a0.max(a1);
                for p in lo.max(least)..=hi.max(least) {
                    let state = [
                        self.written[0].wrapping_add((p - a0) as i32),
                        self.written[1].wrapping_add(sums[p].wrapping_sub(sums[a1])),
                    ];
                    states.push(([a0, a1], state));
                }
            }
        }
        states
    }

    /// The state, if the model knows exactly what it is now.
    fn exact_state(&self) -> Option<[i32; 2]> {
        let states = self.possible_states();
        let first = states.first().filter(|_| self.state_known)?.1;
        states.iter().all(|(_, s)| *s == first).then_some(first)
    }

    /// Moved to another working device: the move reads the state there (catching up a checkpoint
    /// left behind) and writes it on the target as its checkpoint.
    fn moved_checkpoint(&mut self) {
        if self.interval {
            self.checkpoint = self.exact_state();
            self.checkpoint_at = self.processed();
        }
    }

    /// Nothing the model says about the state holds any more (until a whole write).
    fn forget_state(&mut self) {
        self.state_known = false;
        self.checkpoint = None;
    }

    fn sends(&self) -> usize {
        self.fifo.iter().filter(|m| m.send.is_some()).count()
    }

    /// Payloads of the sends still due to `receive`, in order.
    fn due(&self) -> Vec<i32> {
        self.fifo.iter().filter_map(|m| m.send).collect()
    }

    /// Sends that may have been processed: all but those in the certainly unprocessed tail.
    fn maybe_processed_sends(&self) -> usize {
        self.fifo.iter().take(self.fifo.len() - self.inbox_min()).filter(|m| m.send.is_some()).count()
    }

    /// `receive` took the next answer: it and everything before it was processed.
    fn take_answer(&mut self) {
        while let Some(q) = self.fifo.pop_front() {
            if q.send.is_some() {
                break;
            }
        }
        self.received += 1;
    }

    /// Stopped: the first `answers_kept` answers stay receivable, nothing else remains.
    fn stop(&mut self, answers_kept: usize) {
        self.state = KernelState::Terminated;
        self.resume = None;
        let mut kept = 0;
        self.fifo.retain(|q| q.send.is_some() && (kept < answers_kept).then(|| kept += 1).is_some());
        self.fifo.iter_mut().for_each(|q| q.waiting = false);
    }

    /// How many messages are held back in the input queue if `extra` (true: a send, false: a
    /// call) joins the FIFO: the first send past the q whose answers fill the output side, and
    /// everything behind it (calls before it go on: their answers need no room there).
    fn held_back(&self, extra: impl IntoIterator<Item = bool>) -> usize {
        let (mut sends, mut held) = (0, 0);
        for answers in self.fifo.iter().map(|m| m.send.is_some()).chain(extra) {
            if held > 0 || answers && sends == self.queue_size {
                held += 1;
            } else if answers {
                sends += 1;
            }
        }
        held
    }

    /// Bounds on the input queue's length right now.
    fn inbox_min(&self) -> usize {
        let waiting = self.fifo.iter().rev().take_while(|m| m.waiting).count();
        waiting.max(self.held_back([]))
    }

    fn inbox_max(&self) -> usize {
        self.fifo.len().min(self.inbox_cap())
    }

    /// The input queue's bound: `q`, or more just after a loss put messages back in line
    /// (sends wait for room below `q`, so it never grows past the requeued messages left).
    fn inbox_cap(&self) -> usize {
        self.queue_size.max(self.fifo.iter().filter(|m| m.requeued).count())
    }

    /// Messages certainly in the input queue. While `Failed`, exactly those not processed.
    fn waiting(&self) -> usize {
        self.fifo.iter().filter(|m| m.waiting).count()
    }

    /// Unfinished calls (abandoned ones too).
    fn calls(&self) -> usize {
        self.fifo.iter().filter(|q| q.send.is_none()).count()
    }

    /// While `Failed`: answers delivered before the loss and not yet received (the FIFO's
    /// front; nothing is delivered until recovery).
    fn delivered(&self) -> usize {
        self.fifo.len() - self.waiting()
    }

    /// The device was lost with `unprocessed` of the FIFO's messages not processed (its tail):
    /// the processed sends' answers stay receivable, processed abandoned calls are finished, the
    /// rest waits in the input queue for recovery.
    fn fail(&mut self, unprocessed: usize) {
        self.resume = Some(self.state);
        self.state = KernelState::Failed;
        // Its state is its checkpoint: the messages answered, every one after the last write;
        // with a checkpoint interval, the last checkpoint's values (counting none since).
        let answered = self.log.len() - unprocessed;
        if !self.interval {
            self.split = self.split.map(|(lo, hi)| (lo.min(answered), hi.min(answered)));
        } else if let Some(checkpoint) = self.checkpoint.filter(|_| self.state_known) {
            self.written = checkpoint;
            self.split = [(answered, answered); 2];
            self.checkpoint_at = (answered, answered);
        } else {
            self.forget_state();
        }
        let processed = self.fifo.len() - unprocessed;
        let mut seen = 0;
        self.fifo.retain_mut(|m| {
            let done = seen < processed;
            seen += 1;
            (m.waiting, m.requeued) = (!done, !done);
            !done || m.send.is_some()
        });
    }

    /// A paused kernel refused input: its input queue is full, so the last `q` messages are in it.
    fn learn_full(&mut self) {
        if self.state != KernelState::Active {
            for m in self.fifo.iter_mut().rev().take(self.queue_size) {
                m.waiting = true;
            }
        }
    }

    /// What a call may end in when the device is lost while it waits: its answer, if it can
    /// be answered and was; `DeviceLost` after it was queued, if there was room in time;
    /// `DeviceLost` while it waited for room, if there was none at first.
    fn call_losing_device(&self, value: i32) -> Vec<Outcome> {
        let q = self.queue_size;
        let room_in_time =
            if self.state == KernelState::Active { self.held_back([false]) <= q } else { self.inbox_min() < q };
        let answerable = self.state == KernelState::Active && self.sends() <= q && room_in_time;
        [
            (answerable, Outcome::Answer(2 * value)),
            (room_in_time, Outcome::Abandoned),
            (self.inbox_max() >= q, Outcome::Failed(DEVICE_LOST)),
        ]
        .into_iter()
        .filter_map(|(possible, outcome)| possible.then_some(outcome))
        .collect()
    }

    /// Accepted: a send (`send`: its answer is due to `receive`) or a call that timed out.
    fn push(&mut self, value: i32, send: bool) {
        let waiting = self.state != KernelState::Active;
        self.fifo.push_back(Queued { send: send.then_some(value), waiting, requeued: false });
        self.log.push(value);
        self.sent += 1;
    }

    /// Back in the state it failed in, on a working device: what it had not processed waits
    /// for it to run.
    fn resume(&mut self) {
        if let Some(state) = self.resume.take() {
            self.state = state;
            if state == KernelState::Active {
                self.fifo.iter_mut().for_each(|q| q.waiting = false);
            }
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Model {
    kernels: BTreeMap<K, KernelModel>,
    /// Payloads are unique across kernels and launches, so a stray answer is never mistaken.
    next_value: i32,
    /// Each device: lost and not yet recovered.
    lost: Vec<bool>,
    /// Each device's counts of losses and recoveries (cumulative over the cases it ran).
    losses: Vec<u64>,
    recoveries: Vec<u64>,
    /// Each device: a cpu device (nothing to lose).
    cpu: Vec<bool>,
}

fn only(timeout_ms: f64, outcome: Outcome) -> (f64, Vec<Outcome>) {
    (timeout_ms, vec![outcome])
}

fn refused(name: &'static str) -> (f64, Vec<Outcome>) {
    only(NOW_MS, Outcome::Failed(name))
}

/// `allowed` outcomes, each only where its condition holds.
fn any_of(timeout_ms: f64, outcomes: impl IntoIterator<Item = (bool, Outcome)>) -> (f64, Vec<Outcome>) {
    (timeout_ms, outcomes.into_iter().filter(|(possible, _)| *possible).map(|(_, o)| o).collect())
}

impl Model {
    /// A model of a fresh runtime, or of one that earlier cases left healthy.
    fn new(rt: &Runtime, cpu: &[bool]) -> Model {
        let devices = rt.summary().devices;
        assert!(devices.iter().all(|d| d.lost.is_none()), "a case starts on healthy devices");
        Model {
            cpu: cpu.to_vec(),
            lost: vec![false; devices.len()],
            losses: devices.iter().map(|d| d.losses).collect(),
            recoveries: devices.iter().map(|d| d.recoveries).collect(),
            ..Model::default()
        }
    }

    fn any_lost(&self) -> bool {
        self.lost.iter().any(|&lost| lost)
    }

    /// The device kernel `k` is on (the first for one not launched).
    fn device_of(&self, k: K) -> usize {
        self.kernels.get(&k).map_or(0, |m| m.device)
    }

    /// What a loss may leave: every kernel not terminated fails, with each message it had not
    /// processed waiting in its input queue: at least those certainly there, at most all of its
    /// FIFO. An already failed kernel stays as it is.
    fn lost_outcomes(&self, device: usize) -> Vec<Outcome> {
        let mut outcomes = vec![vec![]];
        for (&k, m) in self.kernels.iter().filter(|(_, m)| m.device == device) {
            let unprocessed = match m.state {
                KernelState::Terminated => continue,
                KernelState::Failed => m.waiting()..=m.waiting(),
                _ => m.inbox_min()..=m.fifo.len(),
            };
            outcomes = outcomes
                .into_iter()
                .flat_map(|failed: Vec<(K, usize)>| {
                    unprocessed.clone().map(move |u| failed.iter().copied().chain([(k, u)]).collect())
                })
                .collect();
        }
        outcomes.into_iter().map(Outcome::Lost).collect()
    }

    fn plan(&self, op: &Op) -> Plan {
        use KernelState::*;
        use Outcome::*;
        match op {
            // A loss is noticed within the liveness bound.
            // A cpu device has nothing to lose: `InvalidArgument`.
            &Op::DestroyDevice(d) if self.cpu[d] => {
                return Plan { timeout_ms: NOW_MS, payload: vec![], allowed: vec![Outcome::Failed(NO_STATE)] }
            }
            &Op::DestroyDevice(d) => {
                return Plan { timeout_ms: LONG_MS, payload: vec![], allowed: self.lost_outcomes(d) }
            }
            // Resolves at once when nothing is lost.
            Op::Recover => return Plan { timeout_ms: NOW_MS, payload: vec![], allowed: vec![Done] },
            _ => {}
        }
        let k = op.k();
        let first = self.next_value + 1;
        let payload: Vec<i32> = match op {
            Op::Send(_) | Op::Call(_) | Op::CallLosingDevice { .. } => vec![first],
            Op::SendBatch(_, n) => (first..first + *n as i32).collect(),
            _ => vec![],
        };
        let lifecycle = |legal: bool| if legal { only(NOW_MS, Done) } else { refused(STATE) };
        if let (Op::CallLosingDevice { .. }, Some(m)) = (op, self.kernels.get(&k)) {
            if matches!(m.state, Launched | Active | Deactivated) {
                return Plan { timeout_ms: LONG_MS, payload, allowed: m.call_losing_device(first) };
            }
        }
        let (timeout_ms, allowed) = match (op, self.kernels.get(&k)) {
            (Op::Launch { .. }, _) if k.0 == GHOST => refused(NOT_FOUND),
            (&Op::Launch { device, .. }, None) if self.lost[device] => refused(DEVICE_LOST),
            (Op::Launch { .. }, None) => only(NOW_MS, Done),
            (Op::Launch { .. }, Some(_)) => refused(STATE),
            // A batch takes at least one answer: `max` 0 is refused before anything is looked at.
            (Op::ReceiveBatch(_, 0), _) => refused("RangeError"),
            (_, None) => refused(NOT_FOUND),
            (Op::ReadState(_) | Op::WriteState(..) | Op::WriteOne(..), _) if k.0 != TWIN => refused(NO_STATE),
            // The values are checked against the array before anything else.
            (Op::WriteOne(_, index, _), _) if *index >= 2 => refused("RangeError"),
            // Its state comes back with it on recovery; a stopped kernel's stays readable (as
            // its checkpoint, once its device is lost).
            (Op::ReadState(_), Some(m)) if m.state == KernelState::Failed => refused(DEVICE_LOST),
            (Op::ReadState(_), Some(m)) if !m.state_known => only(NOW_MS, AnyState),
            (Op::ReadState(_), Some(m)) => {
                let states: std::collections::BTreeSet<[i32; 2]> =
                    m.possible_states().into_iter().map(|(_, s)| s).collect();
                (NOW_MS, states.into_iter().map(State).collect())
            }
            (Op::WriteState(..) | Op::WriteOne(..), Some(m))
                if m.state == KernelState::Failed || self.lost[m.device] =>
            {
                refused(DEVICE_LOST)
            }
            (Op::WriteState(..) | Op::WriteOne(..), Some(m)) => {
                lifecycle(matches!(m.state, Launched | Active | Deactivated))
            }
            // Refused, changing nothing, unless the kernel can move there: a failed one moves
            // to a working device only (its own is lost), and one already there stays.
            (&Op::Migrate(_, to), Some(m)) => {
                let moved = Moved { from: m.device, to, requeued: 0 };
                match m.state {
                    Terminated => refused(STATE),
                    _ if to == m.device && m.state != KernelState::Failed => only(NOW_MS, moved),
                    _ if self.lost[to] => refused(DEVICE_LOST),
                    _ => only(LONG_MS, moved),
                }
            }
            // Nothing will drain it without recovery: it stops at once, and the error names
            // what it had not processed, if anything.
            (Op::Terminate(_) | Op::TerminateNow(_), Some(m)) if m.state == KernelState::Failed => {
                let timeout_ms = if matches!(op, Op::Terminate(_)) { LONG_MS } else { NOW_MS };
                only(timeout_ms, if m.waiting() == 0 { Done } else { Outcome::Failed(DEVICE_LOST) })
            }
            (Op::Activate(_), Some(m)) => lifecycle(m.state == Launched),
            (Op::Deactivate(_), Some(m)) => lifecycle(m.state == Active),
            (Op::Reactivate(_), Some(m)) => lifecycle(m.state == Deactivated),
            (Op::Remove(_), Some(m)) => lifecycle(m.state == Terminated),
            (Op::Terminate(_) | Op::TerminateNow(_), Some(m)) if m.state == Terminated => refused(STATE),
            (Op::Terminate(_), Some(_)) => only(LONG_MS, Done),
            (Op::TerminateNow(_), Some(m)) => {
                // Terminating runs the kernel, past the output bound, while `terminate` looks:
                // the pump may drain everything first, or the kernel stops with some prefix of
                // the answers delivered (and something left unprocessed).
                let cut_short = (0..=m.sends()).filter(|&kept| kept < m.fifo.len());
                (NOW_MS, std::iter::once(Done).chain(cut_short.map(|answers_kept| CutShort { answers_kept })).collect())
            }
            (Op::Receive(_) | Op::ReceiveBatch(..), Some(m)) => {
                let due = m.due();
                let most = match op {
                    Op::ReceiveBatch(_, max) => (*max).min(due.len()),
                    _ => due.len().min(1),
                };
                let answers = |n: usize| match op {
                    Op::ReceiveBatch(..) => Answers(due[..n].iter().map(|v| 2 * v).collect()),
                    _ => Answer(2 * due[0]),
                };
                match m.state {
                    // Terminate processed everything; what is left is there now.
                    Terminated if due.is_empty() => refused(STATE),
                    Terminated => only(NOW_MS, answers(most)),
                    // The answers delivered before the loss, then the loss, never a wait.
                    KernelState::Failed => match most.min(m.delivered()) {
                        0 => refused(DEVICE_LOST),
                        ready => only(NOW_MS, answers(ready)),
                    },
                    // Waits for the next answer, then takes what has arrived.
                    Active if most > 0 => (LONG_MS, (1..=most).map(answers).collect()),
                    // Processed before the pause (or in flight then), or still queued.
                    Deactivated => {
                        let ready = most.min(m.maybe_processed_sends());
                        any_of(
                            SHORT_MS,
                            std::iter::once((true, Outcome::Failed(TIMEOUT)))
                                .chain((1..=ready).map(|n| (true, answers(n)))),
                        )
                    }
                    _ => only(SHORT_MS, Outcome::Failed(TIMEOUT)),
                }
            }
            (_, Some(m)) if m.state == Terminated => refused(STATE),
            // Sends queue while the device is lost, as far as the input queue has room (its
            // depth is known exactly); calls are refused.
            (Op::Call(_) | Op::CallLosingDevice { .. }, Some(m)) if m.state == KernelState::Failed => {
                refused(DEVICE_LOST)
            }
            (Op::Send(_), Some(m)) if m.state == KernelState::Failed => {
                only(NOW_MS, if m.waiting() < m.queue_size { Done } else { Outcome::Failed(QUEUE_FULL) })
            }
            (Op::SendBatch(_, n), Some(m)) if m.state == KernelState::Failed => {
                only(NOW_MS, Accepted((*n).min(m.queue_size.saturating_sub(m.waiting()))))
            }
            (Op::Send(_), Some(m)) if m.state == Active => {
                if m.held_back([true]) <= m.queue_size {
                    only(LONG_MS, Done)
                } else {
                    // The input queue is full and stays full until something is received.
                    only(NOW_MS, Outcome::Failed(QUEUE_FULL))
                }
            }
            // Nothing drains a launched or deactivated kernel's input: room now or never.
            (Op::Send(_), Some(m)) => any_of(
                NOW_MS,
                [(m.inbox_min() < m.queue_size, Done), (m.inbox_max() >= m.queue_size, Outcome::Failed(QUEUE_FULL))],
            ),
            (Op::SendBatch(_, n), Some(m)) => {
                let (q, n) = (m.queue_size, *n);
                // Fewest accepted right away; most that can ever fit without a receive.
                let now = n.min(q.saturating_sub(m.inbox_max()));
                let most = if m.state == Active {
                    (0..=n).rev().find(|&c| m.held_back(std::iter::repeat_n(true, c)) <= q).expect("0 fits")
                } else {
                    n.min(q.saturating_sub(m.inbox_min()))
                };
                if m.state == Active && most == n {
                    only(LONG_MS, Accepted(n))
                } else {
                    (NOW_MS, (now..=most).map(Accepted).collect())
                }
            }
            (Op::Call(_), Some(m)) => {
                let q = m.queue_size;
                let answer = Answer(2 * first);
                if m.state == Active && m.held_back([false]) > q {
                    only(NOW_MS, Outcome::Failed(QUEUE_FULL))
                } else if m.state == Active && m.sends() <= q {
                    // Every send ahead fits the output queue: nothing holds it back.
                    only(LONG_MS, answer)
                } else {
                    // Cannot be answered before something is received: queued and abandoned
                    // (a timeout), or refused for room.
                    any_of(
                        NOW_MS,
                        [
                            (m.inbox_min() < q, Outcome::Failed(TIMEOUT)),
                            (m.inbox_max() >= q, Outcome::Failed(QUEUE_FULL)),
                        ],
                    )
                }
            }
            (
                Op::DestroyDevice(_)
                | Op::Recover
                | Op::CallLosingDevice { .. }
                | Op::MigrateWhile(..)
                | Op::MigrateLosing { .. }
                | Op::MigrateTwice(..)
                | Op::MigrateBoth(..),
                _,
            ) => {
                unreachable!("planned above, or in `Case::step`")
            }
        };
        Plan { timeout_ms, payload, allowed }
    }

    /// Updates the model with an outcome `plan` allowed.
    fn apply(&mut self, op: &Op, plan: &Plan, outcome: &Outcome) {
        use KernelState::*;
        self.next_value += plan.payload.len() as i32;
        match (op, outcome) {
            (&Op::DestroyDevice(d), Outcome::Lost(failed)) if !self.lost[d] => {
                self.lost[d] = true;
                self.losses[d] += 1;
                for &(k, unprocessed) in failed {
                    self.kernels.get_mut(&k).expect("allowed only for kernels in the model").fail(unprocessed);
                }
                // A stopped kernel's state is its checkpoint now: its final state, unless the
                // terminate's read of it may not have been made yet.
                for m in self.kernels.values_mut().filter(|m| m.device == d && m.state == Terminated && m.read_pending)
                {
                    m.forget_state();
                }
                return;
            }
            (Op::Recover, Outcome::Done) => {
                for d in 0..self.lost.len() {
                    if std::mem::take(&mut self.lost[d]) {
                        self.recoveries[d] += 1;
                    }
                }
                // Only kernels failed on a lost device remember a state to resume.
                self.kernels.values_mut().for_each(KernelModel::resume);
                return;
            }
            // Lost again while lost: nothing changes.
            (Op::DestroyDevice(_) | Op::Recover, _) => return,
            _ => {}
        }
        let k = op.k();
        if let (&Op::Launch { queue_size, mode, device, interval, .. }, Outcome::Done) = (op, outcome) {
            self.kernels.insert(k, KernelModel::new(queue_size, mode, device, interval));
            return;
        }
        let Some(m) = self.kernels.get_mut(&k) else { return };
        match (op, outcome) {
            (Op::Activate(_) | Op::Reactivate(_), Outcome::Done) => {
                m.state = Active;
                m.fifo.iter_mut().for_each(|q| q.waiting = false);
            }
            (Op::Deactivate(_), Outcome::Done) => m.state = Deactivated,
            // Drained: abandoned calls are gone, every answer is in the output queue.
            (Op::Terminate(_) | Op::TerminateNow(_), Outcome::Done) => {
                m.frozen = Some((m.log.len(), m.log.len()));
                m.stop(usize::MAX);
                // A zero timeout may not wait for the final read of the state.
                m.read_pending = m.interval && matches!(op, Op::TerminateNow(_));
            }
            // Stopped while failed: the delivered answers stay, the rest was never processed.
            (Op::Terminate(_) | Op::TerminateNow(_), Outcome::Failed(DEVICE_LOST)) => {
                let answered = m.log.len() - m.waiting();
                m.frozen = Some((answered, answered));
                m.unprocessed = (m.waiting(), m.waiting());
                m.stop(m.delivered());
            }
            (Op::TerminateNow(_), Outcome::CutShort { answers_kept }) => {
                // Everything not delivered by then was unprocessed: the sends after the kept
                // answers, and abandoned calls (some of them may have been processed).
                m.frozen = Some((m.processed().0, m.log.len()));
                m.unprocessed = (m.sends() - answers_kept, m.fifo.len() - answers_kept);
                m.stop(*answers_kept);
                m.read_pending = m.interval;
            }
            (Op::Migrate(..), &Outcome::Moved { from, to, .. }) => {
                if from != to {
                    m.moved_checkpoint();
                }
                m.device = to;
                // A failed kernel runs again there: recovery elsewhere.
                m.resume();
            }
            (Op::ReadState(_), Outcome::State(state)) if m.state_known => {
                if m.interval && m.checkpoint_at.1 > 0 {
                    INTERVAL_READS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                // The writes landed where this state says they may have.
                let splits = m.possible_states().into_iter().filter(|(_, s)| s == state).map(|(a, _)| a);
                let none = [(usize::MAX, 0); 2];
                m.split = splits.fold(none, |bounds, a| [0, 1].map(|i| (bounds[i].0.min(a[i]), bounds[i].1.max(a[i]))));
            }
            (&Op::WriteState(_, a, b), Outcome::Done) => {
                m.split = [m.processed(); 2];
                m.written = [a, b];
                m.state_known = true;
                // A write of the whole array is the checkpoint too.
                m.checkpoint = Some([a, b]);
                m.checkpoint_at = m.processed();
            }
            (&Op::WriteOne(_, i, value), Outcome::Done) => {
                let (lo, hi) = m.processed();
                m.split[i] = (lo, hi);
                m.written[i] = value;
                // It reaches the checkpoint only if that is not behind the state: nothing was
                // processed since it was taken (else it waits for the next one).
                let (taken_lo, taken_hi) = m.checkpoint_at;
                if hi <= taken_lo {
                    if let Some(checkpoint) = &mut m.checkpoint {
                        checkpoint[i] = value;
                    }
                } else if lo <= taken_hi {
                    m.checkpoint = None;
                }
            }
            (Op::Remove(_), Outcome::Done) => {
                self.kernels.remove(&k);
            }
            (Op::Send(_), Outcome::Done) => m.push(plan.payload[0], true),
            (Op::SendBatch(_, n), Outcome::Accepted(c)) => {
                plan.payload[..*c].iter().for_each(|&v| m.push(v, true));
                if c < n {
                    m.learn_full();
                }
            }
            (Op::Receive(_), Outcome::Answer(_)) => m.take_answer(),
            (Op::ReceiveBatch(..), Outcome::Answers(answers)) => answers.iter().for_each(|_| m.take_answer()),
            (Op::Call(_), Outcome::Answer(_)) => {
                // Everything ahead of the call has been processed.
                m.fifo.retain(|q| q.send.is_some());
                m.log.push(plan.payload[0]);
                m.sent += 1;
                m.received += 1;
            }
            (Op::Call(_), Outcome::Failed(TIMEOUT)) => m.push(plan.payload[0], false),
            (Op::Call(_), Outcome::Abandoned) => {
                // Not answered, so not processed on the lost device: it waits for recovery.
                m.push(plan.payload[0], false);
                m.fifo.back_mut().expect("just pushed").waiting = true;
            }
            (Op::Send(_) | Op::Call(_), Outcome::Failed(QUEUE_FULL)) => m.learn_full(),
            _ => {}
        }
    }
}

// ---- running operations on the runtime ----

fn on(rt: &Runtime, id: &str, device: usize) -> bool {
    rt.device_of(id).is_ok_and(|d| d.0 as usize == device)
}

/// Whether the pump has noticed a lost device: the runtime reports it lost, and no kernel on
/// it is left in a state that has GPU resources (a kernel the loss missed is the model's to
/// report).
fn loss_noticed(rt: &Runtime, device: usize) -> bool {
    use KernelState::*;
    rt.summary().devices[device].lost.is_some()
        && rt
            .kernel_ids()
            .iter()
            .filter(|id| on(rt, id, device))
            .all(|id| !matches!(rt.state(id), Ok(Launched | Active | Deactivated | Terminating)))
}

/// After a loss: every failed kernel on the device and the depth of its input queue.
fn failed_kernels(rt: &Runtime, device: usize) -> Result<Vec<(K, usize)>, Error> {
    let mut failed = Vec::new();
    for (i, id) in IDS.iter().enumerate() {
        if on(rt, id, device) && matches!(rt.state(id), Ok(KernelState::Failed)) {
            failed.push((K(i), rt.telemetry(id)?.expect("telemetry is enabled").input_queue_depth));
        }
    }
    Ok(failed)
}

/// `destroy_device_at`, then polls until the pump has noticed, up to the liveness bound.
fn lose_device(rt: &Runtime, device: usize) -> Result<(), Error> {
    rt.destroy_device_at(DeviceId(device as u32))?;
    wait_for_loss(rt, device);
    Ok(())
}

/// Polls until the pump has noticed the loss of `device`, up to the liveness bound.
fn wait_for_loss(rt: &Runtime, device: usize) {
    let start = std::time::Instant::now();
    while !loss_noticed(rt, device) && start.elapsed().as_secs_f64() * 1000.0 < LONG_MS {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Moves with `requeued` > 0 seen (a loss of the old device during the move), over the run.
static REQUEUED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Moves that ran while a device was lost under them, and of those the ones refused.
static LOSING: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static LOSING_REFUSED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// State reads of a kernel with a checkpoint interval checked against a known state after a loss.
static INTERVAL_READS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `MigrateLosing`: the migration polled once, device `lost` destroyed, the migration awaited,
/// then the loss waited for; both outcomes.
async fn migrate_losing(
    rt: &Runtime,
    k: K,
    to: usize,
    lost: usize,
) -> (Result<Outcome, Error>, Result<Outcome, Error>) {
    let mut migration = pin!(rt.migrate(k.id(), DeviceId(to as u32)));
    let early = poll!(migration.as_mut());
    let destroyed = rt.destroy_device_at(DeviceId(lost as u32));
    let migrated = match early {
        Poll::Ready(migrated) => migrated,
        Poll::Pending => migration.await,
    };
    if let Err(e) = destroyed {
        return (migrated.map(moved), Err(e));
    }
    wait_for_loss(rt, lost);
    (migrated.map(moved), failed_kernels(rt, lost).map(Outcome::Lost))
}

fn moved(report: MigrationReport) -> Outcome {
    Outcome::Moved { from: report.from.0 as usize, to: report.to.0 as usize, requeued: report.requeued }
}

/// `MigrateWhile`: the migration, polled once (it takes its lock and starts compiling on the
/// target), then `op` run while it goes on; both outcomes.
async fn migrate_while(
    rt: &Runtime,
    k: K,
    to: usize,
    op: &Op,
    plan: &Plan,
) -> (Result<Outcome, Error>, Result<Outcome, Error>) {
    let mut migration = pin!(rt.migrate(k.id(), DeviceId(to as u32)));
    let early = poll!(migration.as_mut());
    let (migrated, done) = match early {
        Poll::Ready(migrated) => (migrated, execute(rt, op, plan).await),
        Poll::Pending => futures_util::future::join(migration, execute(rt, op, plan)).await,
    };
    (migrated.map(moved), done)
}

async fn execute(rt: &Runtime, op: &Op, plan: &Plan) -> Result<Outcome, Error> {
    match op {
        &Op::DestroyDevice(d) => {
            lose_device(rt, d)?;
            return Ok(Outcome::Lost(failed_kernels(rt, d)?));
        }
        Op::Recover => return rt.recover().await.map(|()| Outcome::Done),
        &Op::CallLosingDevice { k, pause } => {
            let sent = || rt.telemetry(k.id()).ok().flatten().map_or(0, |t| t.messages_sent);
            let sent_before = sent();
            let mut call = pin!(rt.call_pod::<i32, i32>(
                k.id(),
                &plan.payload[0],
                Some(Duration::from_secs_f64(LONG_MS / 1000.0))
            ));
            // Queued (or refused) and waiting, unless the answer was already there.
            let early = poll!(call.as_mut());
            if pause {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let device = rt.device_of(k.id()).map_or(0, |d| d.0 as usize);
            lose_device(rt, device)?;
            let call = match early {
                Poll::Ready(done) => done,
                Poll::Pending => call.await,
            };
            let call = match call {
                Ok(answer) => Outcome::Answer(answer),
                Err(Error::DeviceLost { .. }) if sent() > sent_before => Outcome::Abandoned,
                Err(e) => Outcome::Failed(common::js_name(&e)),
            };
            return Ok(Outcome::CallLost(Box::new(call), failed_kernels(rt, device)?));
        }
        _ => {}
    }
    let id = op.k().id();
    let timeout = Some(Duration::from_secs_f64(plan.timeout_ms / 1000.0));
    Ok(match op {
        &Op::Launch { queue_size, mode, device, interval, .. } => {
            let mut options = LaunchOptions::default().with_queue_capacity(queue_size).with_mode(mode);
            if interval {
                options = options.with_checkpoint_interval(Duration::MAX);
            }
            rt.launch(id, options.on_device(DeviceId(device as u32))).await?;
            Outcome::Done
        }
        Op::Activate(_) => rt.activate(id).await.map(|()| Outcome::Done)?,
        Op::Deactivate(_) => rt.deactivate(id).await.map(|()| Outcome::Done)?,
        Op::Reactivate(_) => rt.reactivate(id).await.map(|()| Outcome::Done)?,
        Op::Terminate(_) => rt.terminate(id, timeout).await.map(|()| Outcome::Done)?,
        Op::TerminateNow(_) => match rt.terminate(id, timeout).await {
            Err(Error::Timeout { .. }) => {
                let answers_kept = rt.telemetry(id)?.expect("telemetry is enabled").output_queue_depth;
                Outcome::CutShort { answers_kept }
            }
            done => done.map(|()| Outcome::Done)?,
        },
        Op::Remove(_) => rt.remove(id).map(|_| Outcome::Done)?,
        Op::Send(_) => rt.send_pod(id, &plan.payload[0], timeout).await.map(|()| Outcome::Done)?,
        // A batch its timeout cut short says how many went in (`QueueFull`'s `accepted`).
        Op::SendBatch(..) => Outcome::Accepted(match rt.send_batch(id, &plan.payload, timeout).await {
            Err(cut) if matches!(cut.error, Error::QueueFull { .. }) => cut.accepted,
            other => other?,
        }),
        Op::Receive(_) => Outcome::Answer(rt.receive_pod::<i32>(id, timeout).await?),
        Op::ReceiveBatch(_, max) => Outcome::Answers(rt.receive_batch::<i32>(id, *max, timeout).await?),
        Op::Call(_) => Outcome::Answer(rt.call_pod::<i32, i32>(id, &plan.payload[0], timeout).await?),
        &Op::Migrate(_, to) => moved(rt.migrate(id, DeviceId(to as u32)).await?),
        Op::ReadState(_) => match rt.read_state_as::<i32>(id).await?[..] {
            [count, sum] => Outcome::State([count, sum]),
            ref other => panic!("the twin's state has two elements, read {other:?}"),
        },
        &Op::WriteState(_, a, b) => rt.write_state(id, 0, vec![a, b]).await.map(|()| Outcome::Done)?,
        &Op::WriteOne(_, i, value) => rt.write_state(id, i as u32, vec![value]).await.map(|()| Outcome::Done)?,
        Op::DestroyDevice(_)
        | Op::Recover
        | Op::CallLosingDevice { .. }
        | Op::MigrateWhile(..)
        | Op::MigrateLosing { .. }
        | Op::MigrateTwice(..)
        | Op::MigrateBoth(..) => {
            unreachable!("run above, or in `Case::step`")
        }
    })
}

/// Every kernel's state, the id lists and the queue counters, against the model.
fn check_runtime(rt: &Runtime, model: &Model) -> Result<(), String> {
    let summary = rt.summary();
    let (device, devices) = (summary.device, summary.devices);
    if device.lost.is_some() != model.any_lost() {
        return Err(format!("device lost {:?}; the model says lost {:?}", device.lost, model.lost));
    }
    for (d, info) in devices.iter().enumerate() {
        if (info.lost.is_some(), info.losses, info.recoveries) != (model.lost[d], model.losses[d], model.recoveries[d])
        {
            return Err(format!(
                "device {d} lost {:?} after {} losses and {} recoveries; the model says lost {}, {} and {}",
                info.lost, info.losses, info.recoveries, model.lost[d], model.losses[d], model.recoveries[d]
            ));
        }
    }
    for (i, id) in IDS.iter().enumerate() {
        let expected = model.kernels.get(&K(i)).map(|m| m.state);
        let actual = match rt.state(id) {
            Ok(state) => Some(state),
            Err(Error::KernelNotFound { .. }) => None,
            Err(e) => return Err(format!("state({id:?}) failed: {e}")),
        };
        if actual != expected {
            return Err(format!("state of {id:?} is {actual:?}, the model says {expected:?}"));
        }
    }
    let mut ids: Vec<String> = model.kernels.keys().map(|k| k.id().to_owned()).collect();
    ids.sort();
    if rt.kernel_ids() != ids {
        return Err(format!("kernel_ids() is {:?}, the model has {ids:?}", rt.kernel_ids()));
    }
    let mut active: Vec<String> =
        model.kernels.iter().filter(|(_, m)| m.state == KernelState::Active).map(|(k, _)| k.id().to_owned()).collect();
    active.sort();
    if rt.active_kernels() != active {
        return Err(format!("active_kernels() is {:?}, the model has {active:?}", rt.active_kernels()));
    }
    for (k, m) in &model.kernels {
        let t = rt.telemetry(k.id()).map_err(|e| e.to_string())?.expect("telemetry is enabled");
        let (inbox, in_flight, outbox) = (t.input_queue_depth, t.in_flight, t.output_queue_depth);
        let q = m.queue_size;
        let problem = if (t.messages_sent, t.messages_received) != (m.sent, m.received) {
            Some(format!(
                "sent/received {}/{}, the model counts {}/{}",
                t.messages_sent, t.messages_received, m.sent, m.received
            ))
        } else if t.device.0 as usize != m.device || rt.device_of(k.id()).ok().map(|d| d.0 as usize) != Some(m.device) {
            Some(format!("on device {} (device_of {:?}), the model says {}", t.device, rt.device_of(k.id()), m.device))
        } else if t.mode != m.mode || t.queue_size != q {
            Some(format!("launched as {:?} with queue {}, the model says {:?} and {q}", t.mode, t.queue_size, m.mode))
        } else if t.messages_processed > t.messages_sent {
            Some(format!("{} processed of {} sent", t.messages_processed, t.messages_sent))
        } else if m.state == KernelState::Terminated
            && t.messages_processed + t.unprocessed_at_termination != t.messages_sent
        {
            // Nothing silently lost: processed, or reported by the terminate that timed out.
            Some(format!(
                "{} processed + {} unprocessed != {} sent",
                t.messages_processed, t.unprocessed_at_termination, t.messages_sent
            ))
        } else if m.state == KernelState::Failed {
            // Nothing moves until recovery: what was delivered, and what waits, exactly.
            (in_flight > 0 || inbox != m.waiting() || outbox != m.delivered()).then(|| {
                format!("failed with {} answers delivered and {} messages waiting", m.delivered(), m.waiting())
            })
        } else if m.state == KernelState::Terminated {
            let (lo, hi) = m.unprocessed;
            let unprocessed = t.unprocessed_at_termination as usize;
            if inbox + in_flight > 0 || outbox != m.sends() {
                Some(format!("{} answers due after terminate", m.sends()))
            } else {
                (!(lo..=hi).contains(&unprocessed))
                    .then(|| format!("{unprocessed} unprocessed, the model says {lo}..={hi}"))
            }
        } else if inbox > m.inbox_cap() || outbox + in_flight > q + m.calls() {
            // Calls (abandoned ones too) need no room in the output queue: their answers go
            // to the caller, or nowhere.
            Some(format!("queue bound {q} exceeded (input bound {})", m.inbox_cap()))
        } else if !(m.inbox_min()..=m.inbox_max()).contains(&inbox) {
            Some(format!("input queue outside the model's {}..={}", m.inbox_min(), m.inbox_max()))
        } else if !(m.sends()..=m.fifo.len()).contains(&(inbox + in_flight + outbox)) {
            Some(format!("{} sends and {} unfinished messages in the model", m.sends(), m.fifo.len()))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(format!(
                "telemetry of {k:?} (input {inbox}, in flight {in_flight}, output {outbox}): {problem}; model {m:?}"
            ));
        }
    }
    Ok(())
}

/// One launch of a kernel as the harness saw it, apart from the model: the payloads
/// `send`/`send_batch` had accepted and the answers `receive`/`receive_batch` took (halved).
#[derive(Default)]
struct Launch {
    k: K,
    accepted: Vec<i32>,
    answered: Vec<i32>,
    /// After a terminate that timed out: how many of `accepted` can ever be answered (those
    /// answered by then plus those left in the output queue); the rest were reported
    /// unprocessed.
    answerable: Option<usize>,
    /// Terminated and drained by the end of the case (else removed earlier by an op).
    drained: bool,
    removed: bool,
}

/// One case on one runtime: the model, the launches seen and the operations run so far.
struct Case<'r> {
    rt: &'r Runtime,
    model: Model,
    launches: Vec<Launch>,
    trace: Vec<String>,
}

impl Case<'_> {
    /// Runs `op` on the runtime and checks its outcome, then every state and counter.
    fn step(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::MigrateWhile(k, to, inner) => return self.migrate_while(k, to, *inner),
            Op::MigrateLosing { k, to, lost } => return self.migrate_losing(k, to, lost),
            Op::MigrateTwice(k, a, b) => return self.migrate_twice(k, a, b),
            Op::MigrateBoth(a, b) => return self.migrate_both(a, b),
            // On a cpu device there is nothing to lose: the call alone.
            Op::CallLosingDevice { k, .. } if self.model.cpu[self.model.device_of(k)] => return self.step(Op::Call(k)),
            _ => {}
        }
        let plan = self.model.plan(&op);
        let result = pollster::block_on(execute(self.rt, &op, &plan));
        let outcome = result.as_ref().map_or_else(|e| Outcome::Failed(common::js_name(e)), Outcome::clone);
        let error = result.err().map(|e| format!(" ({e})")).unwrap_or_default();
        self.trace.push(format!("{:<36} -> {outcome:?}{error}", format!("{op:?}")));
        match (&op, outcome) {
            // One runtime action, two steps of the model: the call, then the loss.
            (&Op::CallLosingDevice { k, .. }, Outcome::CallLost(call, failed)) => {
                let device = self.model.device_of(k);
                self.check(&Op::Call(k), &plan, &call)?;
                let loss = self.model.plan(&Op::DestroyDevice(device));
                self.check(&Op::DestroyDevice(device), &loss, &Outcome::Lost(failed))?;
            }
            (_, outcome) => self.check(&op, &plan, &outcome)?,
        }
        check_runtime(self.rt, &self.model).or_else(|why| self.fail(why))
    }

    /// `MigrateWhile`: the migration and `op` at once, where the model's plans hold whichever
    /// lands first (a kernel that will not move, or moves to where it is, changes nothing; a
    /// launched, active or deactivated one keeps everything but its device). A failed kernel's
    /// move runs it again, which changes what `op` may do: then they run one after the other.
    fn migrate_while(&mut self, k: K, to: usize, op: Op) -> Result<(), TestCaseError> {
        use KernelState::*;
        let migration = Op::Migrate(k, to);
        if self.model.kernels.get(&k).is_some_and(|m| m.state == Failed) {
            self.step(migration)?;
            return self.step(op);
        }
        let mut plan = self.model.plan(&migration);
        let inner = self.model.plan(&op);
        if matches!(op, Op::Terminate(_)) && self.model.kernels.get(&k).is_some_and(|m| m.state != Terminated) {
            // The terminate may overtake the move, which then changes nothing.
            plan.allowed.push(Outcome::Failed(STATE));
        }
        let (migrated, done) = pollster::block_on(migrate_while(self.rt, k, to, &op, &inner));
        let [migrated, done] = [migrated, done].map(|result| {
            let outcome = result.as_ref().map_or_else(|e| Outcome::Failed(common::js_name(e)), Outcome::clone);
            (outcome, result.err().map(|e| format!(" ({e})")).unwrap_or_default())
        });
        self.trace.push(format!("{:<36} -> {:?}{}", format!("{migration:?}, while"), migrated.0, migrated.1));
        self.trace.push(format!("  {:<34} -> {:?}{}", format!("{op:?}"), done.0, done.1));
        self.check(&migration, &plan, &migrated.0)?;
        self.check(&op, &inner, &done.0)?;
        // With a checkpoint interval the move took the state as the operation left it, or not.
        if let (Outcome::Moved { from, to, .. }, Some(m)) = (&migrated.0, self.model.kernels.get_mut(&k)) {
            if from != to && m.interval {
                m.checkpoint = None;
            }
        }
        check_runtime(self.rt, &self.model).or_else(|why| self.fail(why))
    }

    /// Runs a migration's future and records its outcome in the trace.
    fn outcome_of(&mut self, label: String, result: Result<Outcome, Error>) -> Outcome {
        let outcome = result.as_ref().map_or_else(|e| Outcome::Failed(common::js_name(e)), Outcome::clone);
        let error = result.err().map(|e| format!(" ({e})")).unwrap_or_default();
        self.trace.push(format!("{label:<36} -> {outcome:?}{error}"));
        outcome
    }

    /// `MigrateLosing`: a live kernel's move with device `lost` destroyed while it goes on. Lost
    /// under the kernel (`lost` its device), the move still happens (the kernel fails and moves
    /// on as a stranded one, or moves before the loss reaches it, its unanswered messages
    /// requeued either way); lost under the target, the move is done (and the kernel fails
    /// there) or refused with `DeviceLost` (and it stays, untouched). Then the loss, checked as
    /// `DestroyDevice`. Anything else (a kernel not live, a device lost already, a cpu device)
    /// runs as the two operations one after the other.
    fn migrate_losing(&mut self, k: K, to: usize, lost: usize) -> Result<(), TestCaseError> {
        use KernelState::*;
        let (migration, loss) = (Op::Migrate(k, to), Op::DestroyDevice(lost));
        let live = self.model.kernels.get(&k).is_some_and(|m| matches!(m.state, Launched | Active | Deactivated));
        if !live || self.model.any_lost() || self.model.cpu[lost] {
            self.step(migration)?;
            return self.step(loss);
        }
        let from = self.model.device_of(k);
        let source_lost = lost == from && to != from;
        let mut allowed = vec![Outcome::Moved { from, to, requeued: 0 }];
        if lost == to {
            allowed.push(Outcome::Failed(DEVICE_LOST));
        }
        let plan = Plan { timeout_ms: LONG_MS, payload: vec![], allowed };
        let (migrated, failed) = pollster::block_on(migrate_losing(self.rt, k, to, lost));
        let mut migrated = self.outcome_of(format!("{migration:?}, losing {lost}"), migrated);
        let failed = self.outcome_of(format!("  {loss:?}"), failed);
        if let Outcome::Moved { requeued, .. } = &mut migrated {
            // Requeued only when the old device was lost under the move: any count then.
            if source_lost && *requeued > 0 {
                REQUEUED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                *requeued = 0;
            }
        }
        self.check(&migration, &plan, &migrated)?;
        LOSING.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if migrated == Outcome::Failed(DEVICE_LOST) {
            LOSING_REFUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let m = self.model.kernels.get_mut(&k).expect("live");
        if source_lost {
            // Whether it failed before it moved is timing: what it had not answered may be back
            // in its input queue, past the queue size, and its state rolled back to its
            // checkpoint (a prefix still; with an interval, anything).
            m.fifo.iter_mut().for_each(|q| q.requeued = true);
            if m.interval {
                m.forget_state();
            }
        } else if migrated == Outcome::Failed(DEVICE_LOST) && m.interval {
            // The move may have caught the checkpoint up before it was refused.
            m.checkpoint = None;
        }
        let loss_plan = self.model.plan(&loss);
        self.check(&loss, &loss_plan, &failed)?;
        check_runtime(self.rt, &self.model).or_else(|why| self.fail(why))
    }

    /// `MigrateTwice`: two moves of one kernel at once. They are made one at a time, in either
    /// order: the outcomes must be those of one order, run one after the other.
    fn migrate_twice(&mut self, k: K, a: usize, b: usize) -> Result<(), TestCaseError> {
        let (first, second) = (Op::Migrate(k, a), Op::Migrate(k, b));
        let both = futures_util::future::join(
            self.rt.migrate(k.id(), DeviceId(a as u32)),
            self.rt.migrate(k.id(), DeviceId(b as u32)),
        );
        let (ra, rb) = pollster::block_on(both);
        let oa = self.outcome_of(format!("{first:?}, at once with"), ra.map(moved));
        let ob = self.outcome_of(format!("  {second:?}"), rb.map(moved));
        let fits = |model: &Model, x: &Op, ox: &Outcome, y: &Op, oy: &Outcome| {
            let plan = model.plan(x);
            plan.allowed.contains(ox) && {
                let mut after = model.clone();
                after.apply(x, &plan, ox);
                after.plan(y).allowed.contains(oy)
            }
        };
        let order = if fits(&self.model, &first, &oa, &second, &ob) {
            [(first, oa), (second, ob)]
        } else {
            [(second, ob), (first, oa)]
        };
        for (op, outcome) in order {
            let plan = self.model.plan(&op);
            self.check(&op, &plan, &outcome)?;
        }
        check_runtime(self.rt, &self.model).or_else(|why| self.fail(why))
    }

    /// `MigrateBoth`: both kernels moved at once; neither move changes what the other may do.
    fn migrate_both(&mut self, a: usize, b: usize) -> Result<(), TestCaseError> {
        let (first, second) = (Op::Migrate(K(0), a), Op::Migrate(K(TWIN), b));
        let (pa, pb) = (self.model.plan(&first), self.model.plan(&second));
        let both = futures_util::future::join(
            self.rt.migrate(K(0).id(), DeviceId(a as u32)),
            self.rt.migrate(K(TWIN).id(), DeviceId(b as u32)),
        );
        let (ra, rb) = pollster::block_on(both);
        let oa = self.outcome_of(format!("{first:?}, at once with"), ra.map(moved));
        let ob = self.outcome_of(format!("  {second:?}"), rb.map(moved));
        self.check(&first, &pa, &oa)?;
        self.check(&second, &pb, &ob)?;
        check_runtime(self.rt, &self.model).or_else(|why| self.fail(why))
    }

    /// Checks `outcome` against `plan` and applies it to the model and the launch log.
    fn check(&mut self, op: &Op, plan: &Plan, outcome: &Outcome) -> Result<(), TestCaseError> {
        let any_state = matches!(outcome, Outcome::State(_)) && plan.allowed.contains(&Outcome::AnyState);
        if !plan.allowed.contains(outcome) && !any_state {
            // A loss's outcomes multiply over kernels: name a few.
            let (few, more) = plan.allowed.split_at(plan.allowed.len().min(12));
            let more = if more.is_empty() { String::new() } else { format!(" and {} more", more.len()) };
            return self.fail(format!("{op:?}: the model allows {few:?}{more} (timeout {} ms)", plan.timeout_ms));
        }
        self.model.apply(op, plan, outcome);
        self.record(op, plan, outcome);
        Ok(())
    }

    fn fail(&self, why: String) -> Result<(), TestCaseError> {
        Err(TestCaseError::fail(format!("{why}\nops run (the last one failed):\n  {}", self.trace.join("\n  "))))
    }

    fn current(&mut self, k: K) -> &mut Launch {
        self.launches.iter_mut().rev().find(|l| l.k == k && !l.removed).expect("launched")
    }

    fn record(&mut self, op: &Op, plan: &Plan, outcome: &Outcome) {
        if matches!(op, Op::DestroyDevice(_) | Op::Recover) {
            return;
        }
        let k = op.k();
        match (op, outcome) {
            (Op::Launch { .. }, Outcome::Done) => self.launches.push(Launch { k, ..Default::default() }),
            (Op::Remove(_), Outcome::Done) => self.current(k).removed = true,
            (Op::Send(_), Outcome::Done) => self.current(k).accepted.push(plan.payload[0]),
            (Op::SendBatch(..), Outcome::Accepted(n)) => self.current(k).accepted.extend(&plan.payload[..*n]),
            (Op::Receive(_), Outcome::Answer(a)) => self.current(k).answered.push(a / 2),
            (Op::ReceiveBatch(..), Outcome::Answers(a)) => self.current(k).answered.extend(a.iter().map(|a| a / 2)),
            (Op::TerminateNow(_), Outcome::CutShort { answers_kept }) => {
                let launch = self.current(k);
                launch.answerable = Some(launch.answered.len() + answers_kept);
            }
            // Stopped while failed: the model (already updated) keeps the answers delivered.
            (Op::Terminate(_) | Op::TerminateNow(_), Outcome::Failed(DEVICE_LOST)) => {
                let answers_kept = self.model.kernels[&k].sends();
                let launch = self.current(k);
                launch.answerable = Some(launch.answered.len() + answers_kept);
            }
            _ => {}
        }
    }

    /// Recovers a lost device, terminates (which drains) every kernel left, takes every answer,
    /// sees none remain and removes it, each step checked like the others; then every launch
    /// must have answered exactly what it accepted, in order, across every loss: all of it, less
    /// what a timed-out or stranded terminate reported unprocessed, and a prefix of that if an
    /// op removed the kernel earlier.
    fn finish(&mut self) -> Result<(), TestCaseError> {
        if self.model.any_lost() {
            self.step(Op::Recover)?;
        }
        let live: Vec<K> = self.model.kernels.keys().copied().collect();
        for k in live {
            if self.model.kernels[&k].state != KernelState::Terminated {
                self.step(Op::Terminate(k))?;
            }
            while !self.model.kernels[&k].due().is_empty() {
                self.step(Op::Receive(k))?;
            }
            self.step(Op::Receive(k))?; // nothing left: KernelStateError
            self.current(k).drained = true;
            self.step(Op::Remove(k))?;
        }
        for l in &self.launches {
            let answerable = &l.accepted[..l.answerable.unwrap_or(l.accepted.len()).min(l.accepted.len())];
            let fine = if l.drained { l.answered == answerable } else { answerable.starts_with(&l.answered) };
            if !fine {
                let why = format!("{:?} accepted {:?} but answered {:?}", l.k, l.accepted, l.answered);
                return self.fail(why);
            }
        }
        Ok(())
    }
}

/// One case: `ops`, then the end (see [`Case::finish`]).
fn run_case(rt: &Runtime, cpu: &[bool], ops: &[Op]) -> Result<(), TestCaseError> {
    let mut case = Case { rt, model: Model::new(rt, cpu), launches: vec![], trace: vec![] };
    for op in ops {
        case.step(op.clone())?;
    }
    case.finish()
}

// ---- the properties ----

/// Registers "twin": a doubler that also counts in its `state`, `state[0] += 1` and
/// `state[1] += value` per message (atomics on a GPU), so the state says exactly which prefix of
/// its messages it has processed; on the `cpu` backend its host handler takes `SLOW_HANDLER` per
/// message, so its runs are long enough for operations to land while one is in progress
/// (deactivate, terminate, remove and relaunch mid-run, migrate).
fn register_twin() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let wgsl = "fn handle(msg: Request) -> Response {
    atomicAdd(&state[0], 1);
    atomicAdd(&state[1], msg.value);
    return Response(msg.value * 2);
}";
        let slow = host::typed(|value: &i32, state: &mut [u32]| {
            std::thread::sleep(SLOW_HANDLER);
            state[0] = state[0].wrapping_add(1);
            state[1] = state[1].wrapping_add(*value as u32);
            Some(value.wrapping_mul(2))
        });
        let twin = KernelDefinition::new(IDS[TWIN], doubler_request(), doubler_response(), wgsl)
            .with_state(StateElement::AtomicI32, 2)
            .with_host_handler(slow);
        kernel::register_or_replace(twin);
        assert!(kernel::lookup(IDS[GHOST]).is_none());
    });
}

/// A runtime of `DEVICES` devices: each of `backend`, or with `mixed` a cpu device and a GPU.
fn runtime_on(backend: BackendChoice, mixed: bool) -> Runtime {
    let options = if mixed {
        RuntimeOptions::default().with_devices([DeviceSpec::new(BackendChoice::Cpu), DeviceSpec::default()])
    } else {
        RuntimeOptions::default().with_backend(backend).with_devices([DeviceSpec::default(); DEVICES])
    };
    pollster::block_on(Runtime::new(options)).unwrap_or_else(|e| panic!("{backend:?} (mixed {mixed}): {e}"))
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) => text.parse().unwrap_or_else(|_| panic!("{name}={text} is not a number")),
        Err(_) => default,
    }
}

/// Runs `cases` random sequences on one runtime of `backend` (every case removes its kernels,
/// so ids are reused across launches), from a fixed seed.
fn fuzz(backend: BackendChoice, mixed: bool, cases_var: &str, default_cases: u32) {
    let device_ops = mixed || backend != BackendChoice::Cpu;
    let cpu: Vec<bool> = (0..DEVICES).map(|d| backend == BackendChoice::Cpu || mixed && d == 0).collect();
    register_twin();
    let cases = env_number(cases_var, default_cases);
    let seed: u64 = env_number("RINGKERNEL_FUZZ_SEED", 0x52_49_4E_47);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        source_file: Some(file!()),
        max_shrink_iters: 2048,
        // Failures that wait out LONG_MS shrink slowly: keep the best found within 5 minutes.
        max_shrink_time: 300_000,
        verbose: 0,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    // A passing case removes every kernel it launched; after a failing one (which may leave
    // kernels or a broken pump behind) the next case gets a fresh runtime.
    let runtime: RefCell<Option<Runtime>> = RefCell::new(None);
    let shrinking = Cell::new(false);
    let result = runner.run(&case_strategy(device_ops), |ops| {
        let mut slot = runtime.borrow_mut();
        // Once a case has failed, proptest reruns shorter ones: run each a few times, so a
        // failure that needs a lucky interleaving still shrinks.
        let attempts = if shrinking.get() { SHRINK_ATTEMPTS } else { 1 };
        let mut result = Ok(());
        for _ in 0..attempts {
            if slot.as_ref().is_some_and(|rt| !rt.kernel_ids().is_empty()) {
                *slot = None;
            }
            result = run_case(slot.get_or_insert_with(|| runtime_on(backend, mixed)), &cpu, &ops);
            if result.is_err() {
                *slot = None;
                shrinking.set(true);
                break;
            }
        }
        result
    });
    let count = |counter: &std::sync::atomic::AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "{backend:?} (mixed {mixed}), counts so far over the tests: {} moves with a device lost under them ({} \
         refused, {} requeued messages), {} state reads with a checkpoint interval checked after a checkpoint",
        count(&LOSING),
        count(&LOSING_REFUSED),
        count(&REQUEUED),
        count(&INTERVAL_READS)
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, ops)) => {
            panic!("{backend:?} (seed {seed}): {why}\n\nminimal failing sequence ({} ops): {ops:?}", ops.len())
        }
        Err(e) => panic!("{backend:?} (seed {seed}): {e}"),
    }
}

/// On two `cpu` devices (host handlers): every random operation sequence behaves as the model
/// of the lifecycle, queues, state and migration says, and loses, duplicates or reorders no
/// answer.
#[test]
fn random_operation_sequences_match_the_model_on_the_cpu_backend() {
    fuzz(BackendChoice::Cpu, false, "RINGKERNEL_FUZZ_CASES", 1024);
}

/// The same property on two devices of a GPU adapter (lavapipe without a GPU), with fewer
/// cases: the pump's GPU ticks, readbacks, ring indices, state checkpoints and live migration
/// between the devices against the same model; and the loss and recovery of either device at
/// random points (`Failed` kernels, requeued messages, recovery to the state each failed in,
/// or a move to the working device), with every answer still delivered exactly once, in order,
/// and the state counting each message once.
#[test]
fn random_operation_sequences_match_the_model_on_the_gpu() {
    fuzz(BackendChoice::Auto, false, "RINGKERNEL_FUZZ_GPU_CASES", 768);
}

/// The same property on a runtime of a cpu device (device 0, host handlers) and a GPU device
/// (device 1): both kernels have WGSL and a host handler, so they run, and move, on either,
/// their state carried across; the GPU device is lost and recovered at random points (a loss
/// of the cpu device is refused: nothing to lose).
#[test]
fn random_operation_sequences_match_the_model_on_a_cpu_and_a_gpu_device() {
    fuzz(BackendChoice::Auto, true, "RINGKERNEL_FUZZ_MIXED_CASES", 96);
}

//! One tick at a time per device. A device's tick loop takes its turn before each tick; natively
//! a caller about to wait for an answer may take it too and run the tick on its own thread (the
//! tick's `help`), so a round trip needs no thread hop to the tick loop and back. Whoever holds
//! the turn owns the device's rings and readback buffer until the tick is delivered. On the web
//! only the tick loop ticks; there, as natively, the runtime's shutdown takes each device's turn
//! to release the device between ticks.
//!
//! Natively the loop and a caller race for the turn: a send wakes the loop, and its caller's
//! receive follows a few microseconds later. Where the loop won, the round trip took a hop to
//! the loop's thread and back after all (about four ticks in ten of a `send` → `receive`
//! stream on two cores). So while callers run the ticks, the loop, woken by a send, leaves them
//! a moment to take the turn first ([`TickTurn::leave_to_caller`]).

#[cfg(not(target_arch = "wasm32"))]
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicUsize, Ordering};

use event_listener::Event;

use crate::waiting::{self, Deadline};

/// Whether a tick of one device is under way, the event its end fires, and (natively) whether
/// callers run its ticks.
#[derive(Default)]
pub(crate) struct TickTurn {
    /// How many times the turn was taken and given back: odd while a tick is under way. One
    /// count for both, so the loop waiting for a tick tells it from the next one at once.
    turns: AtomicUsize,
    released: Event,
    /// Natively, whether callers run the ticks (see [`Self::leave_to_caller`]).
    #[cfg(not(target_arch = "wasm32"))]
    callers: CallerTicks,
    /// Natively, whether the loop's last wait for one tick lasted [`TICK_WATCH`] or more: if so,
    /// its next wait sleeps at once (see [`Self::wait_until_free`]).
    #[cfg(not(target_arch = "wasm32"))]
    long_ticks: AtomicBool,
    /// Natively, whether the last tick that ran took longer than [`CALLER_TICK_LIMIT`]: callers
    /// then leave the ticks to the loop (see [`Self::callers_may_tick`]).
    #[cfg(not(target_arch = "wasm32"))]
    slow_ticks: AtomicBool,
}

/// Whether callers run a device's ticks, for the loop's grace.
#[cfg(not(target_arch = "wasm32"))]
struct CallerTicks {
    /// A caller ran the last tick that ran, and no two graces since went unused; true before
    /// any tick (see the `Default`).
    ticking: AtomicBool,
    /// A grace went unused (no caller took the turn in it) since a caller last ticked.
    missed: AtomicBool,
    /// A caller did not tick (the turn was taken, or the tick was more than it takes) and
    /// waits for the loop, or its tick left work for the loop: the loop's next pass takes the
    /// turn without a grace.
    left_to_loop: AtomicBool,
}

/// A new device leaves its first ticks to callers too: with no grace, whether callers ever
/// tick hung on which thread won the first race, and once the loop had ticked, on it losing
/// one without a grace; on a machine where the woken loop kept winning (a test's fresh runtime
/// on CI), no caller ever ticked.
#[cfg(not(target_arch = "wasm32"))]
impl Default for CallerTicks {
    fn default() -> Self {
        CallerTicks {
            ticking: AtomicBool::new(true),
            missed: AtomicBool::new(false),
            left_to_loop: AtomicBool::new(false),
        }
    }
}

/// How long the tick loop, while callers run the ticks, leaves the turn to the next caller
/// before taking it: a few sends' and a receive's time on a busy machine (the loop yields its
/// thread meanwhile, so on a loaded one it may wait longer). A send no receive follows is ticked
/// that much later, once; two graces that no caller used since one last ticked end them until
/// a caller ticks again.
#[cfg(not(target_arch = "wasm32"))]
const CALLER_GRACE: std::time::Duration = std::time::Duration::from_micros(20);

/// How long one tick may run while the tick loop, finding it under way, watches for its end
/// with its thread yielding, before the loop sleeps on the turn's release. Sleeping at once,
/// the loop had the caller wake its thread when giving the turn back: a system call on every
/// round trip's path (about 12 µs of 110 on two cores), with a core left idle, slower to wake,
/// while the device ran the caller's tick. A round trip's tick on a software adapter takes
/// about 100 µs; a caller's tick longer than this (callers tick at most 1,024 messages, but a
/// device or kernel may be slow) is watched this long and then waited for asleep, as are the
/// ticks after it until one ends within this time again. The cost is CPU while callers stream
/// round trips: the loop's thread stays on the processor, yielding, until the stream ends.
#[cfg(not(target_arch = "wasm32"))]
const TICK_WATCH: std::time::Duration = std::time::Duration::from_micros(500);

/// The longest tick after which callers still run the device's next one on their own thread.
/// A caller's tick holds its thread, perhaps an async executor's, until the device is done, and
/// past the caller's own timeout (nothing can interrupt a `poll`): a kernel whose handler runs
/// for seconds held every `receive` and `call` on its device that long, and a
/// `receive_timeout` of 50 ms returned after 2 s. After a longer tick, callers wait for the
/// loop's instead, without blocking, until a tick is this short again: on a slow device, or
/// with a slow handler, a thread hop costs little against the tick.
#[cfg(not(target_arch = "wasm32"))]
const CALLER_TICK_LIMIT: std::time::Duration = std::time::Duration::from_millis(2);

/// A turn taken: the device's tick is this holder's until it is dropped.
pub(crate) struct Turn<'a>(&'a TickTurn);

impl TickTurn {
    /// The turn, if no tick is under way.
    pub fn try_take(&self) -> Option<Turn<'_>> {
        let turns = self.turns.load(Ordering::Relaxed);
        if !turns.is_multiple_of(2) {
            return None;
        }
        self.turns.compare_exchange(turns, turns.wrapping_add(1), Ordering::Acquire, Ordering::Relaxed).ok()?;
        Some(Turn(self))
    }

    /// Whether a tick is under way.
    #[cfg(not(target_arch = "wasm32"))]
    fn is_busy(&self) -> bool {
        !self.turns.load(Ordering::Acquire).is_multiple_of(2)
    }

    /// A caller ran a tick.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn caller_ticked(&self) {
        self.callers.missed.store(false, Ordering::Relaxed);
        self.callers.ticking.store(true, Ordering::Relaxed);
    }

    /// A caller left the next tick to the loop: it waits for it without ticking, or its own
    /// tick left work behind.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn caller_left_to_loop(&self) {
        self.callers.left_to_loop.store(true, Ordering::Relaxed);
    }

    /// A tick ran (the loop's or a caller's) and took `took`: whether callers may run the next
    /// ones depends on it (see [`CALLER_TICK_LIMIT`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn tick_took(&self, took: std::time::Duration) {
        self.slow_ticks.store(took > CALLER_TICK_LIMIT, Ordering::Relaxed);
    }

    /// Whether a waiting caller may run the next tick on its own thread: not after a tick
    /// longer than [`CALLER_TICK_LIMIT`], which would hold the caller's thread as long.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn callers_may_tick(&self) -> bool {
        !self.slow_ticks.load(Ordering::Relaxed)
    }

    /// The loop ran a tick: callers tick again only once one of them has.
    pub fn loop_ticked(&self) {
        #[cfg(not(target_arch = "wasm32"))]
        self.callers.ticking.store(false, Ordering::Relaxed);
    }

    /// For the tick loop, about to take the turn. Natively, while callers run the ticks, it
    /// yields its thread for up to [`CALLER_GRACE`] while no tick is under way, so that the
    /// caller whose send woke it (or, right after a caller's tick, that caller's next round
    /// trip) takes the turn and ticks on its own thread, without a hop to the loop and back.
    /// No grace where a caller left the tick to the loop. Two graces that no caller used since
    /// one last ticked (the loop woken for other work: another device's, a send no receive
    /// follows) end them until a caller ticks again. On the web callers never tick, and it returns at once.
    pub fn leave_to_caller(&self) {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let callers = &self.callers;
            if callers.left_to_loop.swap(false, Ordering::Relaxed) || !callers.ticking.load(Ordering::Relaxed) {
                return;
            }
            let taken = || self.is_busy() || callers.left_to_loop.load(Ordering::Relaxed);
            if !yield_while(CALLER_GRACE, || !taken()) && callers.missed.swap(true, Ordering::Relaxed) {
                callers.ticking.store(false, Ordering::Relaxed);
            }
        }
    }

    /// Waits, without blocking, until no tick is under way and takes the turn; `None` if
    /// `deadline` passes first.
    pub async fn take(&self, deadline: Deadline) -> Option<Turn<'_>> {
        loop {
            let released = self.released.listen();
            if let Some(turn) = self.try_take() {
                return Some(turn);
            }
            if !waiting::wait(released, deadline).await {
                return None;
            }
        }
    }

    /// Blocks until the tick under way, if any, is over: for the tick loop's own thread, which
    /// blocks on the device anyway. Natively it yields its thread while ticks run, watching for
    /// the turn to be given back, and sleeps on the release only once one tick has run for
    /// [`TICK_WATCH`] (see there); after such a tick the next is waited for asleep, until one
    /// is shorter again. A turn given back and taken again while it watches (a stream of
    /// callers' round trips) is watched on. On the web it returns at once (nothing may block
    /// there; only the shutdown takes the turn from the loop, which then sees the shutdown and
    /// ends).
    pub fn wait_until_free(&self) {
        #[cfg(not(target_arch = "wasm32"))]
        loop {
            use event_listener::Listener;
            let tick = self.turns.load(Ordering::Acquire);
            if tick.is_multiple_of(2) {
                return;
            }
            // The same tick still under way (not given back, nor given back and taken again).
            let same_tick = || self.turns.load(Ordering::Acquire) == tick;
            let started = std::time::Instant::now();
            if !self.long_ticks.load(Ordering::Relaxed) && (yield_while(TICK_WATCH, same_tick) || !same_tick()) {
                continue;
            }
            loop {
                let released = self.released.listen();
                if !same_tick() {
                    break;
                }
                released.wait();
            }
            self.long_ticks.store(started.elapsed() >= TICK_WATCH, Ordering::Relaxed);
        }
    }
}

/// Yields the thread while `holds()`, for `limit` at most: whether it stopped holding first. The
/// grace and the watch above, which wait for another thread's next step without a wake-up.
#[cfg(not(target_arch = "wasm32"))]
fn yield_while(limit: std::time::Duration, holds: impl Fn() -> bool) -> bool {
    let started = std::time::Instant::now();
    while holds() {
        if started.elapsed() >= limit {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.turns.fetch_add(1, Ordering::Release);
        // Both the tick loop and the shutdown may be waiting.
        self.0.released.notify(usize::MAX);
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::sync::atomic::Ordering;

    use super::TickTurn;

    /// Whether the loop would still leave its next pass to callers.
    fn ticking(turn: &TickTurn) -> bool {
        turn.callers.ticking.load(Ordering::Relaxed)
    }

    /// Graces only while callers tick; two unused since a caller's tick end them, one that found
    /// the turn taken does not count as unused, and the loop's own tick ends them too.
    #[test]
    fn graces_while_callers_tick() {
        let turn = TickTurn::default();
        assert!(ticking(&turn), "a new device leaves its first ticks to callers");
        turn.loop_ticked();
        turn.leave_to_caller();
        assert!(!ticking(&turn), "no caller has ticked since the loop did");
        turn.caller_ticked();
        turn.leave_to_caller();
        assert!(ticking(&turn), "one unused grace ends none");
        let held = turn.try_take().expect("free");
        turn.leave_to_caller();
        drop(held);
        assert!(ticking(&turn), "a grace that found the turn taken was used");
        turn.leave_to_caller();
        assert!(!ticking(&turn), "two unused graces since the caller's tick end them");
        turn.caller_ticked();
        turn.leave_to_caller();
        turn.caller_ticked();
        turn.leave_to_caller();
        assert!(ticking(&turn), "a caller's tick between two unused graces starts the count again");
        turn.loop_ticked();
        assert!(!ticking(&turn), "the loop's own tick ends them");
    }

    /// A caller that leaves the tick to the loop skips the loop's next grace, once.
    #[test]
    fn a_caller_leaving_the_tick_skips_one_grace() {
        let turn = TickTurn::default();
        turn.caller_ticked();
        turn.caller_left_to_loop();
        turn.leave_to_caller();
        assert!(!turn.callers.left_to_loop.load(Ordering::Relaxed), "the loop's pass took the notice");
        assert!(!turn.callers.missed.load(Ordering::Relaxed), "a skipped grace is not an unused one");
        assert!(ticking(&turn), "callers still tick");
    }

    /// A wait that outlasts the watch has the next one sleep at once; a free turn changes
    /// nothing.
    #[test]
    fn a_long_tick_ends_the_watch() {
        let turn = TickTurn::default();
        let held = turn.try_take().expect("free");
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| turn.wait_until_free());
            // The waiter listens for the release only once its watch ran out.
            while turn.released.total_listeners() == 0 {
                std::thread::yield_now();
            }
            drop(held);
            waiter.join().unwrap();
        });
        assert!(turn.long_ticks.load(Ordering::Relaxed), "a tick longer than the watch");
        turn.wait_until_free();
        assert!(turn.long_ticks.load(Ordering::Relaxed), "a free turn is no wait");
    }

    /// One holder at a time; a waiter goes on once the turn is given back.
    #[test]
    fn one_holder_at_a_time() {
        let turn = TickTurn::default();
        let held = turn.try_take().expect("free at first");
        assert!(turn.try_take().is_none(), "taken twice");
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                turn.wait_until_free();
                turn.try_take().is_some()
            });
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(!waiter.is_finished(), "went on while the turn was held");
            drop(held);
            assert!(waiter.join().unwrap(), "the turn was free once given back");
        });
    }
}

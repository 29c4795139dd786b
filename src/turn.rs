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
//! stream on two cores). So while callers run the ticks, the loop leaves them a moment to
//! take the turn first ([`TickTurn::leave_to_caller`]).

use std::sync::atomic::{AtomicBool, Ordering};

use event_listener::Event;

use crate::waiting::{self, Deadline};

/// Whether a tick of one device is under way, the event its end fires, and (natively) who ran
/// the last one.
#[derive(Default)]
pub(crate) struct TickTurn {
    busy: AtomicBool,
    released: Event,
    /// Whether a waiting caller ran the last tick (see [`Self::leave_to_caller`]).
    #[cfg(not(target_arch = "wasm32"))]
    callers_tick: AtomicBool,
}

/// How long the tick loop, woken by a send while callers run the ticks, leaves the turn to the
/// sender's receive before taking it: a few sends' and a receive's time on a busy machine. A
/// send that no caller follows is ticked that much later, once; the loop's own tick ends the
/// grace until a caller ticks again.
#[cfg(not(target_arch = "wasm32"))]
const CALLER_GRACE: std::time::Duration = std::time::Duration::from_micros(20);

/// A turn taken: the device's tick is this holder's until it is dropped.
pub(crate) struct Turn<'a>(&'a TickTurn);

impl TickTurn {
    /// The turn, if no tick is under way.
    pub fn try_take(&self) -> Option<Turn<'_>> {
        self.busy.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).ok().map(|_| Turn(self))
    }

    /// Records who ran the tick that just ended: a waiting caller (`by_caller`) or the loop.
    pub fn ticked(&self, by_caller: bool) {
        #[cfg(not(target_arch = "wasm32"))]
        self.callers_tick.store(by_caller, Ordering::Relaxed);
        #[cfg(target_arch = "wasm32")]
        let _ = by_caller;
    }

    /// For the tick loop, about to take the turn: natively, when a caller ran the last tick,
    /// yields its thread for up to [`CALLER_GRACE`] while no tick is under way, so that the
    /// caller whose send woke it takes the turn and ticks on its own thread, without a hop to
    /// the loop and back. On the web callers never tick, and it returns at once.
    pub fn leave_to_caller(&self) {
        #[cfg(not(target_arch = "wasm32"))]
        if self.callers_tick.load(Ordering::Relaxed) {
            let started = std::time::Instant::now();
            while !self.busy.load(Ordering::Acquire) && started.elapsed() < CALLER_GRACE {
                std::thread::yield_now();
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
    /// blocks on the device anyway. On the web it returns at once (nothing may block there; only
    /// the shutdown takes the turn from the loop, which then sees the shutdown and ends).
    pub fn wait_until_free(&self) {
        #[cfg(not(target_arch = "wasm32"))]
        while self.busy.load(Ordering::Acquire) {
            use event_listener::Listener;
            let released = self.released.listen();
            if !self.busy.load(Ordering::Acquire) {
                break;
            }
            released.wait();
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
        // Both the tick loop and the shutdown may be waiting.
        self.0.released.notify(usize::MAX);
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::TickTurn;

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

//! One tick at a time per device. A device's tick loop takes its turn before each tick; natively
//! a caller about to wait for an answer may take it too and run the tick on its own thread (the
//! tick's `help`), so a round trip needs no thread hop to the tick loop and back. Whoever holds
//! the turn owns the device's rings and readback buffer until the tick is delivered. On the web
//! only the tick loop ticks; there, as natively, the runtime's shutdown takes each device's turn
//! to release the device between ticks.

use std::sync::atomic::{AtomicBool, Ordering};

use event_listener::Event;

use crate::waiting::{self, Deadline};

/// Whether a tick of one device is under way, and the event its end fires.
#[derive(Default)]
pub(crate) struct TickTurn {
    busy: AtomicBool,
    released: Event,
}

/// A turn taken: the device's tick is this holder's until it is dropped.
pub(crate) struct Turn<'a>(&'a TickTurn);

impl TickTurn {
    /// The turn, if no tick is under way.
    pub fn try_take(&self) -> Option<Turn<'_>> {
        self.busy.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).ok().map(|_| Turn(self))
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

//! Hybrid logical clocks (Kulkarni et al., 2014): timestamps that follow the wall clock where it
//! can and a logical counter where it cannot, so they never go backwards and a message's
//! answer is always stamped after the message.
//!
//! A [`HlcTimestamp`] is a wall-clock millisecond (`physical_ms`, since the Unix epoch) and a
//! `logical` counter that orders events within one millisecond, or while the wall clock stands
//! still or steps back. Timestamps compare by `physical_ms`, then `logical`.
//!
//! A [`HybridClock`] stamps events:
//! - [`now`](HybridClock::now) for a local event or a send: later than every timestamp the
//!   clock gave or saw before;
//! - [`update`](HybridClock::update) for a receipt: later than the received timestamp too, so
//!   causality carries across runtimes (and machines) whose wall clocks disagree.
//!
//! Each [`Runtime`](crate::Runtime) has one clock: envelopes are stamped by it when they are sent,
//! at every pipeline stage they pass and when their answers are taken
//! ([`Runtime::current_timestamp`](crate::Runtime::current_timestamp) reads it). A received
//! timestamp drags the clock's physical part with it, so the runtime refuses one more than
//! [`MAX_DRIFT`] ahead of its wall clock ([`check_drift`]): a remote clock that wrong would
//! otherwise carry this one along for good.
//!
//! In JavaScript a timestamp is `{ physicalMs, logical }` (two numbers), the serde form too.

use std::cmp::Ordering;
use std::time::Duration;

/// How far ahead of the wall clock a received timestamp may be (an hour: clocks that disagree
/// by seconds or minutes pass; a date days ahead, or a garbage number, does not).
pub const MAX_DRIFT: Duration = Duration::from_secs(3600);

/// `Err` (saying by how much) when `remote` is more than [`MAX_DRIFT`] ahead of `wall_ms`, the
/// wall clock in milliseconds since the Unix epoch.
pub fn check_drift(remote: HlcTimestamp, wall_ms: u64) -> Result<(), String> {
    let most = MAX_DRIFT.as_millis() as u64;
    match remote.physical_ms.saturating_sub(wall_ms) {
        ahead if ahead > most => Err(format!(
            "its timestamp's physical time ({} ms since the Unix epoch) is {ahead} ms ahead of this runtime's wall \
             clock, more than {most} ms: a clock that wrong would drag the runtime's with it",
            remote.physical_ms
        )),
        _ => Ok(()),
    }
}

/// A hybrid logical clock's timestamp: wall-clock milliseconds, then a logical counter. Ordered
/// by `physical_ms`, then `logical` (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HlcTimestamp {
    /// Milliseconds since the Unix epoch, as far as the clock knows.
    pub physical_ms: u64,
    /// Orders events within one `physical_ms`.
    pub logical: u32,
}

impl HlcTimestamp {
    /// The earliest timestamp: before every one a clock gives.
    pub const ZERO: HlcTimestamp = HlcTimestamp { physical_ms: 0, logical: 0 };

    /// The latest timestamp. A clock that reaches it (only a received timestamp can take it
    /// there) keeps giving it: from there on its timestamps are equal, not later.
    pub const MAX: HlcTimestamp = HlcTimestamp { physical_ms: u64::MAX, logical: u32::MAX };

    /// A timestamp from its parts (one received from elsewhere, say).
    pub const fn new(physical_ms: u64, logical: u32) -> Self {
        HlcTimestamp { physical_ms, logical }
    }

    /// The next timestamp within the same millisecond (the next millisecond when the counter
    /// is full). [`HlcTimestamp::MAX`] stays itself: a clock dragged there by a received
    /// timestamp stops, rather than wrapping to the epoch or panicking.
    fn tick(self) -> Self {
        match (self.logical.checked_add(1), self.physical_ms.checked_add(1)) {
            (Some(logical), _) => HlcTimestamp { logical, ..self },
            (None, Some(physical_ms)) => HlcTimestamp { physical_ms, logical: 0 },
            (None, None) => HlcTimestamp::MAX,
        }
    }
}

impl Ord for HlcTimestamp {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.physical_ms, self.logical).cmp(&(other.physical_ms, other.logical))
    }
}

impl PartialOrd for HlcTimestamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for HlcTimestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.physical_ms, self.logical)
    }
}

/// A hybrid logical clock (see the [module docs](self)). Every timestamp it gives is later than
/// every one it gave or was [updated](Self::update) with before.
pub struct HybridClock {
    last: HlcTimestamp,
    physical: Box<dyn FnMut() -> u64 + Send>,
}

impl HybridClock {
    /// A clock on the wall clock (`Date.now()` on the web).
    pub fn new() -> Self {
        Self::with_physical_clock(|| crate::platform::unix_time_ms() as u64)
    }

    /// A clock whose physical part is read from `physical` (milliseconds), for tests and
    /// simulations; it may stand still or step back.
    pub fn with_physical_clock(physical: impl FnMut() -> u64 + Send + 'static) -> Self {
        HybridClock { last: HlcTimestamp::ZERO, physical: Box::new(physical) }
    }

    /// A timestamp for a local event or a send.
    pub fn now(&mut self) -> HlcTimestamp {
        let physical_ms = (self.physical)();
        self.last = if physical_ms > self.last.physical_ms {
            HlcTimestamp { physical_ms, logical: 0 }
        } else {
            self.last.tick()
        };
        self.last
    }

    /// A timestamp for the receipt of a message stamped `remote`: later than `remote` and than
    /// everything this clock gave before.
    pub fn update(&mut self, remote: HlcTimestamp) -> HlcTimestamp {
        let physical_ms = (self.physical)();
        let latest = self.last.max(remote);
        self.last =
            if physical_ms > latest.physical_ms { HlcTimestamp { physical_ms, logical: 0 } } else { latest.tick() };
        self.last
    }

    /// Takes the clock back to `last`, a timestamp it gave before, when every one given since
    /// was never used.
    pub(crate) fn rewind(&mut self, last: HlcTimestamp) {
        self.last = last;
    }

    /// The last timestamp given (or [`HlcTimestamp::ZERO`] before the first), without ticking.
    pub fn last(&self) -> HlcTimestamp {
        self.last
    }
}

impl Default for HybridClock {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for HybridClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridClock").field("last", &self.last).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
    use std::sync::Arc;

    use super::*;

    /// A clock whose wall clock the test sets.
    fn manual() -> (HybridClock, Arc<AtomicU64>) {
        let wall = Arc::new(AtomicU64::new(1000));
        let read = wall.clone();
        (HybridClock::with_physical_clock(move || read.load(SeqCst)), wall)
    }

    #[test]
    fn follows_the_wall_clock_and_counts_within_a_millisecond() {
        let (mut clock, wall) = manual();
        assert_eq!(clock.now(), HlcTimestamp::new(1000, 0));
        assert_eq!(clock.now(), HlcTimestamp::new(1000, 1));
        wall.store(1005, SeqCst);
        assert_eq!(clock.now(), HlcTimestamp::new(1005, 0));
    }

    #[test]
    fn never_goes_back_when_the_wall_clock_does() {
        let (mut clock, wall) = manual();
        let before = clock.now();
        wall.store(10, SeqCst);
        let after = clock.now();
        assert!(after > before);
        assert_eq!(after, HlcTimestamp::new(1000, 1));
    }

    #[test]
    fn a_receipt_is_later_than_the_message_from_a_clock_ahead() {
        let (mut clock, _) = manual();
        clock.now();
        let remote = HlcTimestamp::new(5000, 7);
        assert_eq!(clock.update(remote), HlcTimestamp::new(5000, 8));
        assert_eq!(clock.now(), HlcTimestamp::new(5000, 9), "the clock stays ahead of what it saw");
        // A stale remote timestamp changes nothing but the count.
        assert_eq!(clock.update(HlcTimestamp::new(3, 0)), HlcTimestamp::new(5000, 10));
    }

    #[test]
    fn a_full_counter_moves_to_the_next_millisecond() {
        let (mut clock, _) = manual();
        assert_eq!(clock.update(HlcTimestamp::new(1000, u32::MAX)), HlcTimestamp::new(1001, 0));
    }

    #[test]
    fn the_end_of_the_range_holds_the_clock_there() {
        let (mut clock, _) = manual();
        assert_eq!(clock.update(HlcTimestamp::new(u64::MAX, u32::MAX - 1)), HlcTimestamp::MAX);
        assert_eq!(clock.update(HlcTimestamp::MAX), HlcTimestamp::MAX, "no overflow, no wrap to the epoch");
        assert_eq!(clock.now(), HlcTimestamp::MAX);
        let (mut clock, _) = manual();
        assert_eq!(clock.update(HlcTimestamp::new(u64::MAX - 1, u32::MAX)), HlcTimestamp::new(u64::MAX, 0));
    }

    #[test]
    fn orders_by_physical_then_logical_and_serializes_in_camel_case() {
        assert!(HlcTimestamp::new(1, 9) < HlcTimestamp::new(2, 0));
        assert!(HlcTimestamp::new(2, 0) < HlcTimestamp::new(2, 1));
        assert_eq!(HlcTimestamp::new(5, 3).to_string(), "5.3");
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use proptest::prelude::*;

        use super::*;

        #[derive(Debug, Clone)]
        enum Event {
            /// The wall clock moves by this much (back when negative).
            Wall(i64),
            Now,
            Update(u64, u32),
        }

        fn event() -> impl Strategy<Value = Event> {
            prop_oneof![
                (-50i64..50).prop_map(Event::Wall),
                Just(Event::Now),
                (900u64..1200, 0u32..4).prop_map(|(p, l)| Event::Update(p, l)),
            ]
        }

        proptest! {
            /// Whatever the wall clock and remote clocks do, every timestamp is later than all the
            /// clock gave and saw before, and never behind the wall clock.
            #[test]
            fn strictly_increasing_and_after_what_it_saw(events in proptest::collection::vec(event(), 1..200)) {
                let (mut clock, wall) = manual();
                let mut latest = HlcTimestamp::ZERO;
                for e in events {
                    let stamped = match e {
                        Event::Wall(by) => {
                            wall.store(wall.load(SeqCst).saturating_add_signed(by), SeqCst);
                            continue;
                        }
                        Event::Now => clock.now(),
                        Event::Update(p, l) => {
                            let remote = HlcTimestamp::new(p, l);
                            let stamped = clock.update(remote);
                            prop_assert!(stamped > remote);
                            stamped
                        }
                    };
                    prop_assert!(stamped > latest, "{stamped} after {latest}");
                    prop_assert!(stamped.physical_ms >= wall.load(SeqCst));
                    prop_assert_eq!(clock.last(), stamped);
                    latest = stamped;
                }
            }
        }
    }
}

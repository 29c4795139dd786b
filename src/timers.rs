//! Deadlines for waits (`send`, `receive`, `call`, `terminate` with a timeout) behind one alarm
//! set for the earliest of them: natively a timer thread, on the web one `setTimeout`. The
//! alarm is moved only when a new deadline is earlier than the one it is set for. Almost every
//! wait ends long before its deadline, so registering and dropping one costs a table insert and
//! remove, no thread switch and no call into JavaScript:
//! - natively, `futures-timer` woke its thread for every timer made, which on two cores cost the
//!   round trip about a tenth of its time;
//! - on the web, a `setTimeout`, its closure and its `clearTimeout` per wait cost a `call` with a
//!   timeout about 20 µs of the page's thread (`MEASURED.md`).
//!
//! Deadlines, and waits that a table lookup ends, are the same code on both; only the alarm
//! differs (the `alarm` modules at the end).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

#[cfg(not(target_arch = "wasm32"))]
use std::time::Instant;

/// On the web, where `std`'s `Instant` panics: `performance.now()` (what
/// `platform::now_ms` gives there) to the nanosecond, with the few operations the
/// deadlines use.
#[cfg(target_arch = "wasm32")]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Instant(Duration);

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// The web's monotonic clock, in milliseconds since the page or worker began.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    pub(crate) fn performance_now() -> f64;
}

#[cfg(target_arch = "wasm32")]
impl Instant {
    fn now() -> Self {
        Self(Duration::from_nanos((performance_now() * 1e6) as u64))
    }

    fn checked_add(&self, duration: Duration) -> Option<Self> {
        self.0.checked_add(duration).map(Self)
    }

    fn saturating_duration_since(&self, earlier: Self) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

/// Resolves once `duration` has passed. Dropping it early removes its deadline.
pub(crate) fn sleep(duration: Duration) -> Sleep {
    // A deadline beyond what `Instant` holds never fires.
    Sleep { deadline: Instant::now().checked_add(duration), key: None, holds: true }
}

/// [`sleep`] that holds nothing open: in Node a process with only these pending exits (a
/// stall watch's look, on a wait the caller gave no timeout).
pub(crate) fn sleep_unheld(duration: Duration) -> Sleep {
    Sleep { holds: false, ..sleep(duration) }
}

/// The future of [`sleep`].
pub(crate) struct Sleep {
    deadline: Option<Instant>,
    /// Its slot in the table once polled.
    key: Option<usize>,
    /// Whether it holds Node's process open while pending.
    holds: bool,
}

/// A registered deadline, its waker, whether it has passed, and whether it holds the process.
struct Slot {
    at: Instant,
    waker: Option<Waker>,
    fired: bool,
    holds: bool,
}

/// Every registered deadline, and when the alarm goes off. A slab, not an ordered map: waits
/// register and drop far more often than the alarm goes off, and only going off looks at every
/// deadline (an ordered map weighed 5 KB of wasm).
#[derive(Default)]
struct Table {
    slots: Vec<Option<Slot>>,
    /// Slots free for reuse.
    free: Vec<usize>,
    /// Registered deadlines that have not passed, and how many of them hold the process.
    unfired: usize,
    unfired_holding: usize,
    /// When the alarm is set for (`None`: not set).
    alarm_at: Option<Instant>,
}

impl Table {
    fn insert(&mut self, slot: Slot) -> usize {
        self.unfired += 1;
        self.unfired_holding += usize::from(slot.holds);
        match self.free.pop() {
            Some(key) => {
                self.slots[key] = Some(slot);
                key
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, key: usize) {
        if let Some(slot) = self.slots[key].take() {
            self.unfired -= usize::from(!slot.fired);
            self.unfired_holding -= usize::from(!slot.fired && slot.holds);
            self.free.push(key);
        }
    }

    /// Marks every deadline up to `now` fired; their wakers, to wake.
    fn fire_due(&mut self, now: Instant) -> Vec<Waker> {
        let mut wakers = Vec::new();
        for slot in self.slots.iter_mut().flatten().filter(|slot| !slot.fired && slot.at <= now) {
            slot.fired = true;
            self.unfired -= 1;
            self.unfired_holding -= usize::from(slot.holds);
            wakers.extend(slot.waker.take());
        }
        wakers
    }

    /// The earliest deadline still to fire.
    fn earliest(&self) -> Option<Instant> {
        self.slots.iter().flatten().filter(|slot| !slot.fired).map(|slot| slot.at).min()
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = self.deadline else { return Poll::Pending };
        if Instant::now() >= deadline {
            return Poll::Ready(());
        }
        let key = self.key;
        // Whether the deadline has fired, and its slot (registered on the first poll).
        let (fired, key) = alarm::with_table(|table| match key {
            Some(key) => {
                let slot = table.slots[key].as_mut().expect("a registered deadline stays until dropped");
                if !slot.fired && !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    slot.waker = Some(cx.waker().clone());
                }
                (slot.fired, key)
            }
            None => {
                let holds = self.holds;
                let key = table.insert(Slot { at: deadline, waker: Some(cx.waker().clone()), fired: false, holds });
                // Only a deadline earlier than the alarm's needs the alarm moved.
                let sooner = table.alarm_at.is_none_or(|at| deadline < at);
                if sooner {
                    table.alarm_at = Some(deadline);
                }
                alarm::registered(table, sooner.then_some(deadline));
                (false, key)
            }
        });
        self.key = Some(key);
        if fired {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            alarm::with_table(|table| {
                table.remove(key);
                alarm::removed(table);
            });
        }
    }
}

/// Natively: one timer thread sleeping on a condition variable until the earliest deadline.
#[cfg(not(target_arch = "wasm32"))]
mod alarm {
    use std::sync::{Condvar, Mutex, OnceLock};

    use super::{Instant, Table};

    struct Timers {
        table: Mutex<Table>,
        wake: Condvar,
    }

    fn timers() -> &'static Timers {
        static TIMERS: OnceLock<&'static Timers> = OnceLock::new();
        TIMERS.get_or_init(|| {
            let timers: &'static Timers = Box::leak(Box::new(Timers { table: Mutex::default(), wake: Condvar::new() }));
            std::thread::Builder::new()
                .name("ringkernel-timers".into())
                .spawn(move || timers.run())
                .expect("the timer thread starts");
            timers
        })
    }

    impl Timers {
        fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
            self.table.lock().unwrap_or_else(|p| p.into_inner())
        }

        /// Fires every deadline that has passed, then sleeps until the earliest one left.
        fn run(&self) {
            let mut table = self.lock();
            loop {
                let now = Instant::now();
                table.fire_due(now).into_iter().for_each(|waker| waker.wake());
                let earliest = table.earliest();
                table.alarm_at = earliest;
                table = match earliest {
                    Some(at) => {
                        self.wake
                            .wait_timeout(table, at.saturating_duration_since(now))
                            .unwrap_or_else(|p| p.into_inner())
                            .0
                    }
                    None => self.wake.wait(table).unwrap_or_else(|p| p.into_inner()),
                };
            }
        }
    }

    /// Runs `f` on the table, under its lock.
    pub(super) fn with_table<R>(f: impl FnOnce(&mut Table) -> R) -> R {
        f(&mut timers().lock())
    }

    /// A deadline was registered; `sooner` when the alarm is now set for it: the thread wakes
    /// to sleep towards it instead.
    pub(super) fn registered(_table: &Table, sooner: Option<Instant>) {
        if sooner.is_some() {
            timers().wake.notify_one();
        }
    }

    /// A deadline was dropped: the thread finds out when it next wakes.
    pub(super) fn removed(_table: &Table) {}

    #[cfg(test)]
    pub(super) fn deadlines() -> Vec<Instant> {
        timers().lock().slots.iter().flatten().map(|slot| slot.at).collect()
    }
}

/// On the web: one `setTimeout` for the earliest deadline, its callback made once. An alarm
/// whose waits all ended early is left to go off (it finds nothing and is not set again) instead
/// of a `clearTimeout` per wait; in Node, where a pending timeout keeps the process alive, it is
/// `unref`ed meanwhile, so a finished script still exits at once.
#[cfg(target_arch = "wasm32")]
mod alarm {
    use std::cell::RefCell;

    use wasm_bindgen::prelude::*;

    use super::{Instant, Table};

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_name = setTimeout)]
        fn set_timeout(callback: &Closure<dyn FnMut()>, ms: f64) -> JsValue;
        #[wasm_bindgen(js_name = clearTimeout)]
        fn clear_timeout(handle: &JsValue);
        /// The handle of a timeout where it is an object: Node's and Bun's `Timeout`.
        type TimeoutObject;
        #[wasm_bindgen(method, js_name = "ref")]
        fn hold_open(this: &TimeoutObject);
        #[wasm_bindgen(method)]
        fn unref(this: &TimeoutObject);
    }

    /// The longest delay `setTimeout` takes (a longer one fires at once); a later deadline is
    /// reached by setting the alarm again when it goes off.
    const LONGEST_DELAY_MS: f64 = 2_147_483_647.0;

    /// The table, the pending `setTimeout` (and whether it holds Node's process open; `None`
    /// where timeouts are numbers), and what it calls.
    struct Web {
        table: RefCell<Table>,
        alarm: RefCell<Option<(JsValue, Option<bool>)>>,
        go_off: Closure<dyn FnMut()>,
    }

    thread_local! {
        static WEB: Web = Web { table: RefCell::default(), alarm: RefCell::new(None), go_off: Closure::new(go_off) };
    }

    /// Runs `f` on the table (never from inside itself: wakers only schedule their tasks).
    pub(super) fn with_table<R>(f: impl FnOnce(&mut Table) -> R) -> R {
        WEB.with(|web| f(&mut web.table.borrow_mut()))
    }

    /// A deadline was registered: the alarm moves to it when `sooner`, and holds Node open
    /// while any deadline pending holds it.
    pub(super) fn registered(table: &Table, sooner: Option<Instant>) {
        if let Some(at) = sooner {
            set(at);
        }
        hold(table.unfired_holding > 0);
    }

    /// A deadline was dropped: with none left that holds the process, the alarm lets go.
    pub(super) fn removed(table: &Table) {
        if table.unfired_holding == 0 {
            hold(false);
        }
    }

    /// Sets the alarm for `at`, replacing the pending one.
    fn set(at: Instant) {
        let delay_ms = at.saturating_duration_since(Instant::now()).as_secs_f64() * 1000.0;
        WEB.with(|web| {
            let handle = set_timeout(&web.go_off, delay_ms.ceil().min(LONGEST_DELAY_MS));
            // Browsers' handles are numbers: nothing to hold or let go of.
            let holds = handle.is_object().then_some(true);
            if let Some((old, _)) = web.alarm.borrow_mut().replace((handle, holds)) {
                clear_timeout(&old);
            }
        });
    }

    /// What the alarm does: fires the deadlines that passed and sets itself for the next one.
    fn go_off() {
        WEB.with(|web| web.alarm.borrow_mut().take());
        let wakers = with_table(|table| {
            let wakers = table.fire_due(Instant::now());
            table.alarm_at = table.earliest();
            if let Some(at) = table.alarm_at {
                set(at);
                hold(table.unfired_holding > 0);
            }
            wakers
        });
        wakers.into_iter().for_each(|waker| waker.wake());
    }

    /// `ref()`s or `unref()`s the pending timeout where it is an object (browsers' are
    /// numbers), once per change.
    fn hold(holds: bool) {
        WEB.with(|web| {
            let mut alarm = web.alarm.borrow_mut();
            let Some((handle, Some(held))) = alarm.as_mut() else { return };
            if *held != holds {
                *held = holds;
                let timeout: &TimeoutObject = handle.unchecked_ref();
                if holds {
                    timeout.hold_open();
                } else {
                    timeout.unref();
                }
            }
        });
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn sleeps_end_in_deadline_order_and_dropped_ones_never_fire() {
        let started = Instant::now();
        let mut long = Box::pin(sleep(Duration::from_secs(3600)));
        assert!(futures_util::FutureExt::now_or_never(&mut long).is_none());
        pollster::block_on(sleep(Duration::from_millis(30)));
        pollster::block_on(sleep(Duration::from_millis(10)));
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(40), "{elapsed:?}");
        drop(long);
        assert!(alarm::deadlines().into_iter().all(|at| at < started + Duration::from_secs(3000)));
        pollster::block_on(sleep(Duration::ZERO));
    }

    #[test]
    fn an_earlier_deadline_wakes_the_thread_sleeping_towards_a_later_one() {
        let mut far = Box::pin(sleep(Duration::from_secs(600)));
        assert!(futures_util::FutureExt::now_or_never(&mut far).is_none());
        let started = Instant::now();
        pollster::block_on(sleep(Duration::from_millis(20)));
        assert!(started.elapsed() < Duration::from_secs(5), "the near deadline fired on time");
    }
}

//! Native deadlines for waits (`send`, `receive`, `call`, `terminate` with a timeout) on one
//! timer thread that is woken only when a new deadline is earlier than the one it sleeps
//! towards. Almost every wait ends long before its deadline, so registering and dropping one
//! must cost no thread switch: `futures-timer` wakes its thread for every timer made, which on
//! two cores cost the native round trip (`send` then `receive` with a timeout) about a tenth of
//! its time (README, "Measured"). (The web keeps `futures-timer`'s `setTimeout`.)

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Resolves once `duration` has passed. Dropping it early removes its deadline.
pub(crate) fn sleep(duration: Duration) -> Sleep {
    // A deadline beyond what `Instant` holds never fires.
    Sleep { deadline: Instant::now().checked_add(duration), key: None }
}

/// The future of [`sleep`].
pub(crate) struct Sleep {
    deadline: Option<Instant>,
    /// Its place in the timer thread's table once polled.
    key: Option<Key>,
}

/// A deadline's place in the table: when, and a number that tells equal deadlines apart.
type Key = (Instant, u64);

/// A registered deadline's waker, and whether it has passed.
#[derive(Default)]
struct Slot {
    waker: Option<Waker>,
    fired: bool,
}

#[derive(Default)]
struct Table {
    slots: BTreeMap<Key, Slot>,
    next: u64,
    /// What the thread sleeps until (`None`: until something is registered).
    sleeping_until: Option<Instant>,
}

struct Timers {
    table: Mutex<Table>,
    wake: Condvar,
}

fn timers() -> &'static Arc<Timers> {
    static TIMERS: OnceLock<Arc<Timers>> = OnceLock::new();
    TIMERS.get_or_init(|| {
        let timers = Arc::new(Timers { table: Mutex::default(), wake: Condvar::new() });
        let thread = timers.clone();
        std::thread::Builder::new()
            .name("ringkernel-timers".into())
            .spawn(move || thread.run())
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
            for (_, slot) in table.slots.range_mut(..(now, u64::MAX)).filter(|(_, slot)| !slot.fired) {
                slot.fired = true;
                if let Some(waker) = slot.waker.take() {
                    waker.wake();
                }
            }
            let earliest = table.slots.iter().find(|(_, slot)| !slot.fired).map(|(&(at, _), _)| at);
            table.sleeping_until = earliest;
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

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = self.deadline else { return Poll::Pending };
        if Instant::now() >= deadline {
            return Poll::Ready(());
        }
        let timers = timers();
        let mut table = timers.lock();
        match self.key {
            Some(key) => {
                let slot = table.slots.get_mut(&key).expect("a registered deadline stays until dropped");
                if slot.fired {
                    return Poll::Ready(());
                }
                if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    slot.waker = Some(cx.waker().clone());
                }
            }
            None => {
                let key = (deadline, table.next);
                table.next += 1;
                table.slots.insert(key, Slot { waker: Some(cx.waker().clone()), fired: false });
                self.key = Some(key);
                // Only a deadline earlier than the thread's next wake-up needs the thread now.
                if table.sleeping_until.is_none_or(|at| deadline < at) {
                    table.sleeping_until = Some(deadline);
                    timers.wake.notify_one();
                }
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            timers().lock().slots.remove(&key);
        }
    }
}

#[cfg(test)]
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
        assert!(timers().lock().slots.keys().all(|&(at, _)| at < started + Duration::from_secs(3000)));
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

//! Sends queued in the order they were issued. A JavaScript promise starts its work when it is
//! made, so the order of a kernel's messages is the order of the calls that sent them: `send`,
//! `sendBatch`, `call`, `sendEnvelope` and `trySend`, whatever awaits came between.
//!
//! Each call holds a place in its kernel's line from the moment it is made until its message is
//! queued (or refused). Every call reads its message and options at once; one with no one ahead
//! of it is also tried at once, so when there is room its message is queued before the call
//! returns. A call behind others is queued only once the one ahead of it is done; its timeout
//! counts from the call, so one that runs out while it waits behind others is refused with
//! `QueueFullError`, and hands its turn on so those behind it keep their order. `trySend` behind
//! others is refused with `QueueFullError`, as a fair bounded channel's `try_send` is while
//! senders wait (tokio's `mpsc`).

use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

use futures_channel::oneshot;
use js_sys::Promise;
use wasm_bindgen::prelude::*;

use super::abort::Abort;
use super::errors::js_error;
use super::started_promise;
use crate::runtime::Runtime;
use crate::waiting::{remaining, wait_for, Deadline};

/// What a place hands the one behind it when it ends: nothing once its turn came (the one
/// behind goes next), or what it still waited on when it gave up before its turn.
struct Turn(Option<oneshot::Receiver<Turn>>);

/// One kernel's line: the sends to it issued and not yet queued, and what the next to join
/// waits on (the last place's end).
struct Line {
    unqueued: u32,
    last: Option<oneshot::Receiver<Turn>>,
}

thread_local! {
    /// The lines of kernels with sends not yet queued, in order of [`line_key`], found by
    /// binary search: every send looks its kernel's line up, and thousands of kernels may each
    /// have a send waiting. A kernel leaves when its last one is queued. (A `HashMap` type of
    /// its own weighed more in the wasm.)
    static LINES: RefCell<Vec<(String, Line)>> = const { RefCell::new(Vec::new()) };
}

/// The key of kernel `id`'s line in the runtime whose [`key`](Runtime::key) is `key` (which
/// stays its own while any place in the line holds the runtime): the runtime's key in 16 hex
/// digits, then the id, so no two differ only in how they split. One string, not a map of maps
/// nor a pair: one map type costs the package least.
fn line_key(key: usize, id: &str) -> String {
    let mut line = String::with_capacity(17 + id.len());
    for shift in (0..64).step_by(4) {
        line.push(char::from_digit(((key as u64 >> shift) & 15) as u32, 16).unwrap_or('0'));
    }
    line.push('/');
    line.push_str(id);
    line
}

/// Whether no send to kernel `id` of `runtime` issued before now is still waiting to be queued.
pub(super) fn is_clear(runtime: &Runtime, id: &str) -> bool {
    update(runtime.key(), id, None).0 == 0
}

/// How [`update`] changes a line.
enum Change {
    /// A place joins the end; the next to join waits on this (its sender is the place's).
    Join(oneshot::Receiver<Turn>),
    /// A place leaves (its message was queued or refused).
    Leave,
}

/// Kernel `id`'s line (of the runtime keyed `key`), changed by `change` (or only looked at):
/// returns how many were in line before and, when a place joins, what it waits on. One
/// function reaches the thread-local (a size matter).
fn update(key: usize, id: &str, change: Option<Change>) -> (u32, Option<oneshot::Receiver<Turn>>) {
    LINES.with_borrow_mut(|lines| {
        // Nothing waits anywhere (as a `trySend` with room finds it): no key to make.
        if lines.is_empty() && change.is_none() {
            return (0, None);
        }
        let name = line_key(key, id);
        let found = lines.binary_search_by(|(line, _)| line.as_str().cmp(&name));
        let before = found.map_or(0, |at| lines[at].1.unqueued);
        match (change, found) {
            (Some(Change::Join(next)), Ok(at)) => {
                let line = &mut lines[at].1;
                line.unqueued += 1;
                (before, line.last.replace(next))
            }
            (Some(Change::Join(next)), Err(at)) => {
                lines.insert(at, (name, Line { unqueued: 1, last: Some(next) }));
                (0, None)
            }
            (Some(Change::Leave), Ok(at)) => {
                lines[at].1.unqueued -= 1;
                if lines[at].1.unqueued == 0 {
                    lines.remove(at);
                }
                (before, None)
            }
            (_, _) => (before, None),
        }
    })
}

/// A send's place in its kernel's line, held until its message is queued (or refused): drop it
/// then. Its message goes in only once its [`turn`] has come.
pub(super) struct Place {
    /// Keeps the runtime, and so its key, alive while the place is held.
    _runtime: Runtime,
    key: usize,
    id: String,
    /// The end of the place ahead, until its turn comes (`None`: nothing ahead).
    ahead: Option<oneshot::Receiver<Turn>>,
    /// Ends this place for the one behind it.
    done: Option<oneshot::Sender<Turn>>,
}

impl Drop for Place {
    fn drop(&mut self) {
        update(self.key, &self.id, Some(Change::Leave));
        // Gave up before its turn: the one behind now waits on what this one waited on.
        if let (Some(done), Some(ahead)) = (self.done.take(), self.ahead.take()) {
            let _ = done.send(Turn(Some(ahead)));
        }
    }
}

/// Waits until every send ahead of `place` in its kernel's line is queued or refused, for as
/// long as `deadline` allows; then the time left of it, the send's own timeout from there.
/// When the deadline passes first, the send is refused with the kernel's `QueueFullError`
/// (counted as a send that timed out waiting for room is: those ahead of it are waiting for
/// room), and its place, once dropped, hands its wait to the one behind it.
pub(super) async fn turn(
    rt: &Runtime,
    id: &str,
    place: &mut Place,
    deadline: Deadline,
) -> Result<Option<Duration>, JsValue> {
    while let Some(ahead) = &mut place.ahead {
        match wait_for(ahead, deadline).await {
            None => return Err(js_error(rt.refused_in_line(id))),
            Some(Ok(Turn(next))) => place.ahead = next,
            Some(Err(oneshot::Canceled)) => place.ahead = None,
        }
    }
    Ok(remaining(deadline))
}

/// The promise of a send to kernel `id` (an id its caller has read): `send` makes the future
/// from the send's place, reads its arguments, awaits its [`turn`], and drops the place once
/// its message is queued; `abort` ends it early (dropping it, and so its place). The future is
/// polled here, so arguments are read (and, with nothing ahead and room, the message queued)
/// before the call returns; whatever is left runs as a task.
pub(super) fn in_line<F>(runtime: &Runtime, id: String, abort: Abort, send: impl FnOnce(Place) -> F) -> Promise
where
    F: Future<Output = Result<JsValue, JsValue>> + 'static,
{
    started_promise(abort.around(Box::pin(send(take_place(runtime, id)))))
}

/// A place at the end of kernel `id`'s line, waiting on the end of the place ahead (if any).
fn take_place(runtime: &Runtime, id: String) -> Place {
    let key = runtime.key();
    let (done, next) = oneshot::channel();
    let ahead = update(key, &id, Some(Change::Join(next))).1;
    Place { _runtime: runtime.clone(), key, id, ahead, done: Some(done) }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;
    use crate::backend::BackendChoice;
    use crate::platform;
    use crate::runtime::RuntimeOptions;

    /// Polls `place`'s turn once, without a deadline: whether it has come.
    fn turn_came(rt: &Runtime, place: &mut Place) -> bool {
        let future = pin!(turn(rt, "k", place, None));
        future.poll(&mut Context::from_waker(Waker::noop())).is_ready()
    }

    /// Gives `place` up: its deadline has passed.
    fn give_up(rt: &Runtime, mut place: Place) {
        let future = pin!(turn(rt, "k", &mut place, Some(platform::now_ms() - 1.0)));
        let refused = future.poll(&mut Context::from_waker(Waker::noop()));
        assert!(matches!(refused, Poll::Ready(Err(_))), "refused at once when its deadline has passed");
    }

    /// Each place's turn comes once the one ahead of it is dropped, in the order they joined;
    /// one that gives up before its turn hands its wait to the one behind it; a line is per
    /// runtime and kernel.
    #[wasm_bindgen_test]
    async fn places_take_turns_in_the_order_they_joined() {
        let options = RuntimeOptions::default().with_backend(BackendChoice::Cpu);
        let (rt, other) = (Runtime::new(options.clone()).await.unwrap(), Runtime::new(options).await.unwrap());
        let id = "k";
        let [mut a, mut b, mut c] = [(); 3].map(|()| take_place(&rt, id.to_owned()));
        assert!(turn_came(&rt, &mut a), "nothing is ahead of the first");
        assert!(!is_clear(&rt, "k"));
        assert!(is_clear(&rt, "j") && is_clear(&other, "k"), "other kernels' and runtimes' lines are their own");

        assert!(!turn_came(&rt, &mut b) && !turn_came(&rt, &mut c));
        drop(a);
        assert!(turn_came(&rt, &mut b), "the second goes once the first is done");
        assert!(!turn_came(&rt, &mut c), "the third still waits for the second");
        drop(b);
        assert!(turn_came(&rt, &mut c));
        assert!(!is_clear(&rt, "k"));
        drop(c);
        assert!(is_clear(&rt, "k"), "an empty line is gone");

        // Two in the middle give up (the later one first): the last waits on the first.
        let [mut a, b, c, mut d] = [(); 4].map(|()| take_place(&rt, id.to_owned()));
        assert!(turn_came(&rt, &mut a));
        give_up(&rt, c);
        assert!(!turn_came(&rt, &mut d), "still behind the second and the first");
        give_up(&rt, b);
        assert!(!turn_came(&rt, &mut d), "still behind the first");
        drop(a);
        assert!(turn_came(&rt, &mut d), "goes once the first is done");
        drop(d);
        assert!(is_clear(&rt, "k"));
    }
}

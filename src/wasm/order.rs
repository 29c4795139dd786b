//! Sends queued in the order they were issued. A JavaScript promise starts its work when it is
//! made, so the order of a kernel's messages is the order of the calls that sent them: `send`,
//! `sendBatch`, `call`, `sendEnvelope` and `trySend`, whatever awaits came between.
//!
//! Each call holds a place in its kernel's line from the moment it is made until its message is
//! queued (or refused). A call with no one ahead of it in its kernel's line is tried at once:
//! when there is room, its message is queued before the call returns. A call behind others
//! starts only once the one ahead of it is done, and `trySend` behind others is refused with
//! `QueueFullError`, as a fair bounded channel's `try_send` is while senders wait (tokio's
//! `mpsc`).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_channel::oneshot;
use js_sys::Promise;
use wasm_bindgen::prelude::*;

use super::boxed_promise;
use crate::runtime::Runtime;

/// One kernel's line: the sends to it issued and not yet queued, and what the next to join
/// waits on (the last place's end). `runtime` is the runtime's [`key`](Runtime::key), which
/// stays its own while any place in the line holds the runtime.
struct Line {
    runtime: usize,
    id: String,
    unqueued: u32,
    last: Option<oneshot::Receiver<()>>,
}

thread_local! {
    /// The lines of kernels with sends not yet queued (few at a time: a kernel leaves when its
    /// last one is queued).
    static LINES: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
}

/// Whether no send to kernel `id` of `runtime` issued before now is still waiting to be queued.
pub(super) fn is_clear(runtime: &Runtime, id: &str) -> bool {
    update(runtime.key(), id, None).0 == 0
}

/// How [`update`] changes a line.
enum Change {
    /// A place joins the end; the next to join waits on this (its sender is the place's).
    Join(oneshot::Receiver<()>),
    /// A place leaves (its message was queued or refused).
    Leave,
}

/// Kernel `id`'s line (of the runtime keyed `key`), changed by `change` (or only looked at):
/// returns how many were in line before and, when a place joins, what it waits on. One
/// function reaches the thread-local (a size matter).
fn update(key: usize, id: &str, change: Option<Change>) -> (u32, Option<oneshot::Receiver<()>>) {
    LINES.with_borrow_mut(|lines| {
        let at = lines.iter().position(|line| line.runtime == key && line.id == id);
        let before = at.map_or(0, |at| lines[at].unqueued);
        match (change, at) {
            (Some(Change::Join(next)), Some(at)) => {
                lines[at].unqueued += 1;
                (before, lines[at].last.replace(next))
            }
            (Some(Change::Join(next)), None) => {
                lines.push(Line { runtime: key, id: id.to_owned(), unqueued: 1, last: Some(next) });
                (0, None)
            }
            (Some(Change::Leave), Some(at)) => {
                lines[at].unqueued -= 1;
                if lines[at].unqueued == 0 {
                    lines.swap_remove(at);
                }
                (before, None)
            }
            (_, _) => (before, None),
        }
    })
}

/// A send's place in its kernel's line, held until its message is queued (or refused): drop it
/// then. Its send starts only once the place ahead is dropped (see [`in_line`]).
pub(super) struct Place {
    /// Keeps the runtime, and so its key, alive while the place is held.
    _runtime: Runtime,
    key: usize,
    id: String,
    /// Dropped with the place, which lets the next one in line go.
    _done: oneshot::Sender<()>,
}

impl Drop for Place {
    fn drop(&mut self) {
        update(self.key, &self.id, Some(Change::Leave));
    }
}

/// The promise of a send to kernel `id` (when `id` is no string, the send's own check rejects
/// it, and it takes no place): `send` makes the future from the send's place, and drops the
/// place once its message is queued. With no one ahead in the line, the future is polled here,
/// so a message with room is queued before the call returns; otherwise (and for whatever is
/// left, such as a call's wait for its answer) it runs as a task.
pub(super) fn in_line<F>(runtime: &Runtime, id: &JsValue, send: impl FnOnce(Option<Place>) -> F) -> Promise
where
    F: Future<Output = Result<JsValue, JsValue>> + 'static,
{
    let (ahead, place) = take_place(runtime, id);
    start(ahead, Box::pin(send(place)))
}

/// A place at the end of kernel `id`'s line, if `id` is a string, and what it waits on: the
/// end of the place ahead (`None` when nothing is ahead).
fn take_place(runtime: &Runtime, id: &JsValue) -> (Option<oneshot::Receiver<()>>, Option<Place>) {
    let Some(id) = id.as_string() else { return (None, None) };
    let key = runtime.key();
    let (done, next) = oneshot::channel();
    let ahead = update(key, &id, Some(Change::Join(next))).1;
    (ahead, Some(Place { _runtime: runtime.clone(), key, id, _done: done }))
}

/// [`in_line`]'s one instance of the start: polled now with nothing ahead, else a task that
/// first waits until the place ahead is dropped. Sends waiting for room are all woken when
/// room appears, so without that wait a later one could take the room first. Every place's
/// future runs to its end, so a place is dropped only after those ahead of it.
fn start(
    ahead: Option<oneshot::Receiver<()>>,
    mut send: Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>,
) -> Promise {
    let Some(ahead) = ahead else {
        // Polled again by its task if it waits: every future here registers its waker anew.
        if let Poll::Ready(settled) = send.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            return match settled {
                Ok(value) => Promise::resolve(&value),
                Err(error) => Promise::reject(&error),
            };
        }
        return boxed_promise(send);
    };
    boxed_promise(Box::pin(async move {
        let _ = ahead.await;
        send.await
    }))
}

#[cfg(test)]
mod tests {
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;
    use crate::backend::BackendChoice;
    use crate::runtime::RuntimeOptions;

    fn ended(ahead: &mut Option<oneshot::Receiver<()>>) -> bool {
        let ahead = ahead.as_mut().expect("a place ahead");
        Pin::new(ahead).poll(&mut Context::from_waker(Waker::noop())).is_ready()
    }

    /// Each place waits for the one ahead of it to be dropped, in the order they joined, and a
    /// line is per runtime and kernel.
    #[wasm_bindgen_test]
    async fn places_take_turns_in_the_order_they_joined() {
        let options = RuntimeOptions::default().with_backend(BackendChoice::Cpu);
        let (rt, other) = (Runtime::new(options.clone()).await.unwrap(), Runtime::new(options).await.unwrap());
        let id = JsValue::from("k");
        let (first, a) = take_place(&rt, &id);
        let (mut second, b) = take_place(&rt, &id);
        let (mut third, c) = take_place(&rt, &id);
        assert!(first.is_none(), "nothing is ahead of the first");
        assert!(!is_clear(&rt, "k"));
        assert!(is_clear(&rt, "j") && is_clear(&other, "k"), "other kernels' and runtimes' lines are their own");

        assert!(!ended(&mut second) && !ended(&mut third));
        drop(a);
        assert!(ended(&mut second), "the second goes once the first is done");
        assert!(!ended(&mut third), "the third still waits for the second");
        drop(b);
        assert!(ended(&mut third));
        assert!(!is_clear(&rt, "k"));
        drop(c);
        assert!(is_clear(&rt, "k"), "an empty line is gone");
        assert!(take_place(&rt, &id).0.is_none(), "a new line starts with nothing ahead");
    }
}

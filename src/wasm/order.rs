//! Sends queued in the order they were issued. A JavaScript promise starts its work when it is
//! made, so the order of a kernel's messages is the order of the calls that sent them: `send`,
//! `sendBatch`, `call`, `sendEnvelope` and `trySend`, whatever awaits came between.
//!
//! Each call holds a place in its kernel's line from the moment it is made until its message is
//! queued (or refused). A call with no one ahead of it in its kernel's line is tried at once:
//! when there is room, its message is queued before the call returns. A call behind others
//! becomes a task behind theirs, and `trySend` behind others is refused with `QueueFullError`,
//! as a fair bounded channel's `try_send` is while senders wait (tokio's `mpsc`).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use super::boxed_promise;
use crate::runtime::Runtime;

/// One kernel's line: the sends to it issued and not yet queued. `runtime` is the runtime's
/// [`key`](Runtime::key), which stays its own while any place in the line holds the runtime.
struct Line {
    runtime: usize,
    id: String,
    unqueued: u32,
}

thread_local! {
    /// The lines of kernels with sends not yet queued (few at a time: a kernel leaves when its
    /// last one is queued).
    static LINES: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
}

/// Whether no send to kernel `id` of `runtime` issued before now is still waiting to be queued.
pub(super) fn is_clear(runtime: &Runtime, id: &str) -> bool {
    move_line(runtime.key(), id, 0) == 0
}

/// Adds `step` (1, -1 or 0) to the sends in line for kernel `id` of the runtime keyed `key`;
/// returns how many were in line before. One function for the three, so the thread-local
/// is reached from one place (a size matter).
fn move_line(key: usize, id: &str, step: i32) -> u32 {
    LINES.with_borrow_mut(|lines| {
        let at = lines.iter().position(|line| line.runtime == key && line.id == id);
        let before = at.map_or(0, |at| lines[at].unqueued);
        let after = before.wrapping_add_signed(step);
        match at {
            Some(at) if after == 0 => drop(lines.swap_remove(at)),
            Some(at) => lines[at].unqueued = after,
            None if after > 0 => lines.push(Line { runtime: key, id: id.to_owned(), unqueued: after }),
            None => {}
        }
        before
    })
}

/// A send's place in its kernel's line, held until its message is queued (or refused): drop it
/// then.
pub(super) struct Place {
    /// Keeps the runtime, and so its key, alive while the place is held.
    _runtime: Runtime,
    key: usize,
    id: String,
}

impl Drop for Place {
    fn drop(&mut self) {
        move_line(self.key, &self.id, -1);
    }
}

/// The promise of a send to kernel `id` (when `id` is no string, the send's own check rejects
/// it, and it takes no place): `send` makes the future from the send's place, and drops the
/// place once its message is queued. With no one ahead in the line, the future is polled here,
/// so a message with room is queued before the call returns; otherwise (and for whatever is
/// left, such as a call's wait for its answer) it runs as a task, behind those ahead.
pub(super) fn in_line<F>(runtime: &Runtime, id: &JsValue, send: impl FnOnce(Option<Place>) -> F) -> Promise
where
    F: Future<Output = Result<JsValue, JsValue>> + 'static,
{
    let (first, place) = take_place(runtime, id);
    try_now(first, Box::pin(send(place)))
}

/// A place at the end of kernel `id`'s line, if `id` is a string, and whether it is the first.
fn take_place(runtime: &Runtime, id: &JsValue) -> (bool, Option<Place>) {
    let Some(id) = id.as_string() else { return (true, None) };
    let key = runtime.key();
    (move_line(key, &id, 1) == 0, Some(Place { _runtime: runtime.clone(), key, id }))
}

/// [`in_line`]'s one instance of the poll now and the promise after.
fn try_now(first: bool, mut send: Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>) -> Promise {
    if first {
        // Polled again by its task if it waits: every future here registers its waker anew.
        if let Poll::Ready(settled) = send.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            return match settled {
                Ok(value) => Promise::resolve(&value),
                Err(error) => Promise::reject(&error),
            };
        }
    }
    boxed_promise(send)
}

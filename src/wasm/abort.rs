//! `{ signal }`: an `AbortSignal` ends an operation's wait, as it ends a `fetch`. The operation
//! rejects with the signal's `reason` (by default a `DOMException` named `AbortError`), at once
//! when the signal has already aborted, and its future is dropped, which leaves nothing half
//! done: a send not yet queued is not queued (and hands its place in its kernel's line on), a
//! receive takes no answer, and a call whose message was queued has its answer discarded (its
//! message is processed, as a timed-out call's is). A batch part of which was queued says how
//! many were (see `calls::send_batch`). An abort is the caller's choice, not the kernel's
//! failure, so it is not counted among the kernel's errors.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

use js_sys::{Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::boxed_promise;

#[wasm_bindgen]
extern "C" {
    /// The DOM's `AbortSignal` (Node has it too), by the two members read here: bound here,
    /// not through web-sys.
    pub(super) type AbortSignal;
    #[wasm_bindgen(method, getter)]
    fn aborted(this: &AbortSignal) -> bool;
    #[wasm_bindgen(method, getter)]
    fn reason(this: &AbortSignal) -> JsValue;
}

#[wasm_bindgen(module = "/src/wasm/js/codec.js")]
extern "C" {
    /// Calls `wake` when `signal` aborts: one `abort` listener per signal, however many
    /// operations wait on it (a listener each made them quadratic: adding and removing one is
    /// linear in the listeners a signal holds).
    ///
    /// (Bound with `catch`, as `end_abort_wait` and `call_alert` are, though none throws: an
    /// import wasm-bindgen binds directly gets an `import * as` of its module of its own, and
    /// the glue's import object then repeats the module's key, which bundlers warn about.)
    #[wasm_bindgen(js_name = startAbortWait, catch)]
    fn start_abort_wait(signal: &AbortSignal, wake: &Closure<dyn FnMut()>) -> Result<(), JsValue>;
    /// Ends [`start_abort_wait`]'s wait; the signal's listener goes with its last one.
    #[wasm_bindgen(js_name = endAbortWait, catch)]
    fn end_abort_wait(signal: &AbortSignal, wake: &Closure<dyn FnMut()>) -> Result<(), JsValue>;
}

/// `value` as an `AbortSignal`, if it is one: judged by its shape, as Node judges one, so a
/// signal from another realm (an iframe's) counts too.
pub(super) fn as_signal(value: JsValue) -> Option<AbortSignal> {
    let has = |key: &str, test: fn(&JsValue) -> bool| Reflect::get(&value, &key.into()).is_ok_and(|v| test(&v));
    let shaped = value.is_object()
        && has("aborted", |v| v.as_bool().is_some())
        && has("addEventListener", JsValue::is_function)
        && has("removeEventListener", JsValue::is_function);
    shaped.then(|| value.unchecked_into())
}

/// The signal's reason if it has aborted already (an operation then does nothing).
pub(super) fn reason_if_aborted(signal: Option<&AbortSignal>) -> Option<JsValue> {
    signal.filter(|signal| signal.aborted()).map(AbortSignal::reason)
}

/// An operation's future, as `order` and the promises of the package's async methods box it.
pub(super) type Work = Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>;

/// What ends an operation early: its signal, and how its rejection is made from the signal's
/// reason (the reason itself, unless [`refusing_with`](Abort::refusing_with) says otherwise).
pub(super) struct Abort {
    signal: Option<AbortSignal>,
    refusal: Option<Box<dyn FnOnce(JsValue) -> JsValue>>,
}

impl Abort {
    /// Ended by `signal` (never, without one).
    pub fn by(signal: Option<AbortSignal>) -> Self {
        Abort { signal, refusal: None }
    }

    /// The rejection is `refusal(reason)`: for a batch, the reason or, when part of it was
    /// queued, an error that says how much.
    pub fn refusing_with(mut self, refusal: impl FnOnce(JsValue) -> JsValue + 'static) -> Self {
        self.refusal = Some(Box::new(refusal));
        self
    }

    /// `work`, ended early when the signal aborts (at once if it has already): `work` is dropped
    /// and the promise rejects. Without a signal, `work` itself. One instance for every
    /// operation.
    pub fn around(self, work: Work) -> Work {
        let Abort { signal: Some(signal), refusal } = self else { return work };
        Box::pin(async move {
            match until_aborted(&signal, work).await {
                Ok(done) => done,
                Err(reason) => Err(match refusal {
                    Some(refusal) => refusal(reason),
                    None => reason,
                }),
            }
        })
    }

    /// The promise of an async method (see `super::promise`), ended early by this.
    pub fn promise(self, work: impl Future<Output = Result<JsValue, JsValue>> + 'static) -> Promise {
        boxed_promise(self.around(Box::pin(work)))
    }
}

/// `work`'s output, or `Err(reason)` when `signal` aborts first (then `work` is dropped here).
async fn until_aborted(signal: &AbortSignal, mut work: Work) -> Result<Result<JsValue, JsValue>, JsValue> {
    if signal.aborted() {
        return Err(signal.reason());
    }
    let waker: Rc<Cell<Option<Waker>>> = Rc::default();
    let wake = {
        let waker = waker.clone();
        Closure::<dyn FnMut()>::new(move || {
            if let Some(waker) = waker.take() {
                waker.wake();
            }
        })
    };
    let _ = start_abort_wait(signal, &wake);
    // Ends the wait when the race ends, however it ends.
    let _listening = Listening { signal, wake: &wake };
    // The signal first: an abort that came before the work could go on wins, even when the
    // work would now be done (a send that found room, an answer that came): it is then not
    // done, and a call already queued has its answer abandoned (see `AwaitedAnswer`).
    poll_fn(|cx| {
        if signal.aborted() {
            return Poll::Ready(Err(signal.reason()));
        }
        if let Poll::Ready(done) = work.as_mut().poll(cx) {
            return Poll::Ready(Ok(done));
        }
        waker.set(Some(cx.waker().clone()));
        Poll::Pending
    })
    .await
}

/// The abort wait of a race under way; ended when the race ends, so a signal that lives long
/// (one for a page's whole session) does not collect a waker per operation.
struct Listening<'a> {
    signal: &'a AbortSignal,
    wake: &'a Closure<dyn FnMut()>,
}

impl Drop for Listening<'_> {
    fn drop(&mut self) {
        let _ = end_abort_wait(self.signal, self.wake);
    }
}

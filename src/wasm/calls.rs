//! The asynchronous calls `RingKernelRuntime` and `KernelHandle` share: each converts its
//! arguments, runs the core's operation on the kernel `id` and converts the result. A handle's
//! method is its runtime's call with the handle's id (as the core's `KernelHandle` forwards to
//! its `Runtime`), so the package holds each call once.

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;

use super::abort::{self, Abort};
use super::errors::type_error;
use super::errors::{aborted_batch, cut_batch, js_error, js_void};
use super::messages::{
    js_answer, js_batch, js_message_value, js_state, mistyped, receive_answers, shown, state_values, Batch, JsMessage,
};
use super::options::{timeout_option_or, u32_argument, wait_option, with_signal, ReceiveBatchOptions, Wait};
use super::{kernel_id, order, promise};
use crate::message::Scalar;
use crate::runtime::Runtime;
use crate::waiting::deadline;
use crate::MessageRef;

/// Queues one message; waits up to `{ timeout }` ms for room, or until `{ signal }` aborts. A
/// send with room and no earlier send to its kernel still waiting to be queued (see [`order`])
/// is queued at once and answered with a resolved promise, without a future or task: its host
/// cost is then the codec's and the queue's.
pub(super) fn send(rt: Runtime, id: JsValue, message: JsValue, options: Option<JsValue>) -> Promise {
    let (kernel, wait) = match arguments(&id, options, "send options") {
        Ok(read) => read,
        Err(error) => return Promise::reject(&error),
    };
    if let Some(reason) = abort::reason_if_aborted(wait.signal.as_ref()) {
        return Promise::reject(&reason);
    }
    let message = JsMessage::read(&rt, &kernel, &message);
    if order::is_clear(&rt, &kernel) {
        match rt.send_message_now(&kernel, message.as_ref()) {
            Ok(true) => return Promise::resolve(&JsValue::UNDEFINED),
            Ok(false) => {} // full: wait for room, holding its place in line
            Err(error) => return Promise::reject(&js_error(error)),
        }
    }
    let deadline = deadline(wait.timeout);
    // Behind others, it goes to the launch it found now or to none (see `pinned_to_current`).
    let rt = rt.pinned_to_current(&kernel);
    order::in_line(&rt.clone(), kernel.clone(), Abort::by(wait.signal), |mut place| async move {
        let timeout = order::turn(&rt, &kernel, &mut place, deadline).await?;
        let sent = rt.send_message(&kernel, message.as_ref(), timeout).await;
        drop(place);
        js_void(sent)
    })
}

/// Queues many messages (objects, or packed bytes) and resolves with their count. Aborted by
/// its `{ signal }` after part of it was queued, it rejects with a `QueueFullError` saying how
/// many were (as a batch whose timeout ran out does), the signal's reason as its `cause`.
pub(super) fn send_batch(rt: Runtime, id: JsValue, messages: JsValue, options: Option<JsValue>) -> Promise {
    let (kernel, wait) = match arguments(&id, options, "sendBatch options") {
        Ok(read) => read,
        Err(error) => return Promise::reject(&error),
    };
    let queued = Rc::new(AtomicUsize::new(0));
    let (counted, aborted_id) = (queued.clone(), kernel.clone());
    let abort = Abort::by(wait.signal).refusing_with(move |reason| match queued.load(Ordering::Relaxed) {
        0 => reason,
        accepted => aborted_batch(&aborted_id, accepted, reason),
    });
    let rt = rt.pinned_to_current(&kernel);
    order::in_line(&rt.clone(), kernel.clone(), abort, |mut place| async move {
        let id = kernel;
        let deadline = deadline(wait.timeout);
        // Read now, as every call's messages are: what the codec left, one by one as packed.
        let packed = match js_batch(&messages, || rt.input_layout(&id).ok())? {
            Batch::Packed(bytes) => bytes,
            Batch::Each(messages) => {
                let message = |i| js_message_value(&messages.get(i as u32));
                rt.pack_values(&id, messages.length() as usize, message).map_err(js_error)?
            }
        };
        let timeout = order::turn(&rt, &id, &mut place, deadline).await?;
        let accepted = rt.send_packed_counting(&id, &packed, timeout, &counted).await;
        drop(place);
        Ok(JsValue::from(accepted.map_err(|error| cut_batch(error, counted.load(Ordering::Relaxed)))? as f64))
    })
}

/// Sends one message and resolves with its own answer. Its place in the kernel's line is given
/// up once the message is queued, not when the answer comes. The runtime's errors say whether
/// the message was queued (`sent`), as Rust's `CallError` does by its variant: a message sent
/// runs (its late answer discarded), one not sent never does and can be sent again.
pub(super) fn call(rt: Runtime, id: JsValue, message: JsValue, options: Option<JsValue>) -> Promise {
    let read = arguments(&id, options, "call options").and_then(|(kernel, wait)| {
        let refused = |error| with_sent(js_error(error), false);
        rt.check_callable(&kernel).map(|()| (kernel, wait)).map_err(refused)
    });
    let (kernel, wait) = match read {
        Ok(read) => read,
        Err(error) => return Promise::reject(&error),
    };
    // Behind others, it goes to the launch it found now or to none (see `pinned_to_current`).
    let rt = rt.pinned_to_current(&kernel);
    order::in_line(&rt.clone(), kernel.clone(), Abort::by(wait.signal), |mut place| async move {
        let id = kernel;
        let deadline = deadline(wait.timeout);
        let message = JsMessage::read(&rt, &id, &message);
        let timeout = order::turn(&rt, &id, &mut place, deadline).await.map_err(|error| with_sent(error, false))?;
        let sent = std::cell::Cell::new(false);
        let queued = || {
            drop(place);
            sent.set(true);
        };
        // One `call_message_then` per form: an owned either-form message awaited once made the
        // package 344 bytes larger.
        match message {
            JsMessage::Packed(packed) => {
                rt.call_message_then(&id, MessageRef::Bytes(&packed), timeout, queued, js_answer).await
            }
            JsMessage::Read(value) => {
                rt.call_message_then(&id, MessageRef::Value(&value), timeout, queued, js_answer).await
            }
        }
        .map_err(|error| with_sent(js_error(with_given_timeout(error, wait.timeout)), sent.get()))
    })
}

/// A call's error with `sent`: whether its message was queued.
fn with_sent(error: JsValue, sent: bool) -> JsValue {
    let _ = js_sys::Reflect::set(&error, &"sent".into(), &sent.into());
    error
}

/// A call's `TimeoutError` names the timeout given, not what was left of it once the call's
/// turn in its kernel's line came (which the core waited for).
fn with_given_timeout(mut error: crate::Error, given: Option<Duration>) -> crate::Error {
    if let (crate::Error::Timeout { timeout, .. }, Some(given)) = (&mut error, given) {
        *timeout = given;
    }
    error
}

/// Resolves with the next answer. A handle's receive (`removed`: its launch's flag) refuses,
/// when it first runs, a kernel removed since the call (see [`launch_still_there`]).
pub(super) fn receive(rt: Runtime, id: JsValue, options: Option<JsValue>, removed: Removed) -> Promise {
    let (id, wait) = match arguments(&id, options, "receive options") {
        Ok(read) => read,
        Err(error) => return Promise::reject(&error),
    };
    Abort::by(wait.signal).promise(async move {
        launch_still_there(&removed, &id)?;
        rt.receive_with(&id, wait.timeout, js_answer).await.map_err(js_error)
    })
}

/// Waits in line for the next answer and hands it to `callback` in the same step as it takes
/// it: a callback that throws leaves it queued, and the promise rejects with what it threw (a
/// cancelled stream's `enqueue`). `removed` as for [`receive`].
pub(super) fn receive_into(
    rt: Runtime,
    id: JsValue,
    callback: JsValue,
    options: Option<JsValue>,
    removed: Removed,
) -> Promise {
    let read = arguments(&id, options, "receiveInto options").and_then(|read| match callback.dyn_into::<Function>() {
        Ok(callback) => Ok((read, callback)),
        Err(callback) => Err(mistyped(format_args!("receiveInto takes a function"), &callback)),
    });
    let ((id, wait), callback) = match read {
        Ok(read) => read,
        Err(error) => return Promise::reject(&error),
    };
    Abort::by(wait.signal).promise(async move {
        launch_still_there(&removed, &id)?;
        // Read and left queued, in this caller's turn; nothing awaits from here on, so on the
        // page's one thread nothing runs until the answer is handed on and taken.
        let answer = rt.answer_ready_with(&id, wait.timeout, js_answer).await.map_err(js_error)?;
        let at = rt.answers_handed_out(&id).map_err(js_error)?;
        callback.call1(&JsValue::NULL, &answer)?;
        rt.take_front_answer(&id, at).map_err(js_error)?;
        Ok(JsValue::UNDEFINED)
    })
}

/// A handle's receive runs a microtask after its call, and its kernel's id may have been
/// removed and launched again in between: `KernelNotFoundError` then, as at the call. From its
/// first run on, the core keeps it to the launch it finds.
pub(super) fn launch_still_there(removed: &Removed, id: &str) -> Result<(), JsValue> {
    match removed.as_ref().is_some_and(|removed| removed.load(Ordering::Relaxed)) {
        true => Err(js_error(crate::Error::KernelNotFound { id: id.to_owned() })),
        false => Ok(()),
    }
}

/// A handle's launch's removed flag (`KernelHandle::removed_flag`); `None` for calls by id.
pub(super) type Removed = Option<std::sync::Arc<std::sync::atomic::AtomicBool>>;

/// Resolves with `{ min }` (1 without it) to `{ max }` answers, as objects or packed; `removed`
/// as for [`receive`].
pub(super) fn receive_batch(rt: Runtime, id: JsValue, options: Option<JsValue>, removed: Removed) -> Promise {
    let read = kernel_id(&id, "id").and_then(|id| {
        let (options, signal) = with_signal::<ReceiveBatchOptions>(options, "receiveBatch options")?;
        Ok((id, options.timeout()?, options, signal))
    });
    let (id, timeout, options, signal) = match read {
        Ok(read) => read,
        Err(error) => return Promise::reject(&error),
    };
    let (min, max) = (options.min.unwrap_or(1), options.max.unwrap_or(usize::MAX));
    Abort::by(signal).promise(async move {
        launch_still_there(&removed, &id)?;
        receive_answers(&rt, &id, (min, max), timeout, options.packed).await
    })
}

/// The kernel id and `{ timeout, signal }` of an operation that waits (`what` names its
/// options in errors).
pub(super) fn arguments(id: &JsValue, options: Option<JsValue>, what: &str) -> Result<(String, Wait), JsValue> {
    Ok((kernel_id(id, "id")?, wait_option(options, what)?))
}

/// `active` → `deactivated`.
pub(super) async fn deactivate(rt: Runtime, id: JsValue) -> Result<JsValue, JsValue> {
    let id = kernel_id(&id, "id")?;
    js_void(rt.deactivate(&id).await)
}

/// `deactivated` → `active`.
pub(super) async fn reactivate(rt: Runtime, id: JsValue) -> Result<JsValue, JsValue> {
    let id = kernel_id(&id, "id")?;
    js_void(rt.reactivate(&id).await)
}

/// Graceful stop within `{ timeout }` ms, or within `default` without one (`Infinity`: as
/// long as it takes).
pub(super) async fn terminate(
    rt: Runtime,
    id: JsValue,
    options: Option<JsValue>,
    default: Option<Duration>,
) -> Result<JsValue, JsValue> {
    let id = kernel_id(&id, "id")?;
    let timeout = timeout_option_or(options, "terminate options", default)?;
    js_void(rt.terminate(&id, timeout).await)
}

/// `stateToGPU`: the copy's `GPUBuffer`.
pub(super) fn state_to_gpu(rt: &Runtime, id: &str) -> Result<JsValue, JsValue> {
    let copy = rt.state_to_gpu(id).map_err(js_error)?;
    Ok(copy.as_webgpu().cloned().map_or(JsValue::NULL, JsValue::from))
}

/// Resolves with kernel `id`'s state array, as a typed array of its element type (`rt` pinned
/// to a handle's launch reads that launch's only); one future for the runtime's and handles'.
pub(super) fn read_state(rt: Runtime, id: Result<String, JsValue>) -> Promise {
    promise(async move {
        let id = id?;
        // A stopped runtime refuses as it does for a known id (`read_state` below), not with
        // the `KernelNotFound` that a query's look-up gives an unknown one.
        if rt.lifecycle_state() == crate::LifecycleState::Stopped {
            return Err(js_error(crate::Error::Disposed));
        }
        // The element type first: the kernel may be removed while the copy is in flight.
        let spec = rt.state_spec(&id).map_err(js_error)?;
        let bytes = rt.read_state(&id).await.map_err(js_error)?; // refuses a kernel without state
        Ok(js_state(spec.map_or(Scalar::U32, |s| s.element.scalar()), &bytes))
    })
}

/// Writes `values` (a `Uint32Array`, `Int32Array` or `Float32Array`, copied before this returns)
/// into kernel `id`'s state array from `{ index }` on (`rt` pinned to a handle's launch writes
/// that launch's only).
pub(super) fn write_state(
    rt: Runtime,
    id: Result<String, JsValue>,
    values: JsValue,
    index: Option<JsValue>,
) -> Promise {
    let read = id.and_then(|id| {
        let values = match state_values(&values) {
            Ok(Some(values)) => values,
            Ok(None) => {
                let got = shown(&values);
                return Err(type_error(format!(
                    "writeState takes a Uint32Array, Int32Array or Float32Array, got {got}"
                )));
            }
            Err(what) => return Err(type_error(format!("writeState cannot read its values: they are {what}"))),
        };
        let index = u32_argument(index, "writeState", "index")?;
        Ok((id, index, values))
    });
    promise(async move {
        let (id, index, values) = read?;
        js_void(rt.write_state(&id, index, values).await)
    })
}

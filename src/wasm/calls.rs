//! The asynchronous calls `RingKernelRuntime` and `KernelHandle` share: each converts its
//! arguments, runs the core's operation on the kernel `id` and converts the result. A handle's
//! method is its runtime's call with the handle's id (as the core's `KernelHandle` forwards to
//! its `Runtime`), so the package holds each call once.

use std::time::Duration;

use wasm_bindgen::prelude::*;

use super::errors::{js_error, js_void};
use super::kernel_id;
use super::messages::{js_answer, js_batch, js_message_value, js_packed_message, receive_answers, Batch};
use super::options::{parse_options, timeout_option, ReceiveBatchOptions};
use crate::runtime::Runtime;
use crate::MessageRef;

/// Queues one message; waits up to `{ timeout }` ms for room.
pub(super) async fn send(
    rt: Runtime,
    id: JsValue,
    message: JsValue,
    options: Option<JsValue>,
) -> Result<JsValue, JsValue> {
    let id = kernel_id(&id, "id")?;
    let timeout = timeout_option(options, "send options")?;
    // Packed by the layout's codec, or read for the core to judge. One `send_message` per
    // branch: an owned either-form message awaited once made the package 344 bytes larger.
    js_void(match js_packed_message(&rt, &id, &message) {
        Some(packed) => rt.send_message(&id, MessageRef::Bytes(&packed), timeout).await,
        None => rt.send_message(&id, MessageRef::Value(&js_message_value(&message)), timeout).await,
    })
}

/// Queues many messages (objects, or packed bytes) and resolves with their count.
pub(super) async fn send_batch(
    rt: Runtime,
    id: JsValue,
    messages: JsValue,
    options: Option<JsValue>,
) -> Result<JsValue, JsValue> {
    let id = kernel_id(&id, "id")?;
    let timeout = timeout_option(options, "sendBatch options")?;
    let accepted = match js_batch(&messages, || rt.input_layout(&id).ok())? {
        Batch::Packed(bytes) => rt.send_packed(&id, &bytes, timeout).await,
        Batch::Values(values) => rt.send_values(&id, &values, timeout).await,
    }
    .map_err(js_error)?;
    Ok(JsValue::from(accepted as f64))
}

/// Sends one message and resolves with its own answer.
pub(super) async fn call(
    rt: Runtime,
    id: JsValue,
    message: JsValue,
    options: Option<JsValue>,
) -> Result<JsValue, JsValue> {
    let id = kernel_id(&id, "id")?;
    let timeout = timeout_option(options, "call options")?;
    match js_packed_message(&rt, &id, &message) {
        Some(packed) => rt.call_message(&id, MessageRef::Bytes(&packed), timeout, js_answer).await,
        None => rt.call_message(&id, MessageRef::Value(&js_message_value(&message)), timeout, js_answer).await,
    }
    .map_err(js_error)
}

/// Resolves with the next answer.
pub(super) async fn receive(rt: Runtime, id: JsValue, options: Option<JsValue>) -> Result<JsValue, JsValue> {
    let id = kernel_id(&id, "id")?;
    let timeout = timeout_option(options, "receive options")?;
    rt.receive_with(&id, timeout, js_answer).await.map_err(js_error)
}

/// Resolves with up to `{ max }` answers, as objects or packed.
pub(super) async fn receive_batch(rt: Runtime, id: JsValue, options: Option<JsValue>) -> Result<JsValue, JsValue> {
    let id = kernel_id(&id, "id")?;
    let opts: ReceiveBatchOptions = parse_options(options, "receiveBatch options")?;
    let (max, timeout) = (opts.max.unwrap_or(usize::MAX), opts.timeout()?);
    receive_answers(&rt, &id, max, timeout, opts.packed).await
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

/// Graceful stop within `{ timeout }` ms, or within `default` without one.
pub(super) async fn terminate(
    rt: Runtime,
    id: JsValue,
    options: Option<JsValue>,
    default: Option<Duration>,
) -> Result<JsValue, JsValue> {
    let id = kernel_id(&id, "id")?;
    let timeout = timeout_option(options, "terminate options")?;
    js_void(rt.terminate(&id, timeout.or(default)).await)
}

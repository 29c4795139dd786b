//! Envelopes on `RingKernelRuntime` and `KernelHandle` (see the core's `envelope` module): the
//! calls both make for `sendEnvelope` and `receiveEnvelope`, and the objects of headers and
//! timestamps (the runtime's `currentTimestamp` is one). Headers are plain objects, `{ messageId,
//! correlationId, source, destination, priority, timestamp: { physicalMs, logical } }`, ids and
//! milliseconds as numbers (as every count and id of the package is).

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use super::abort::Abort;
use super::errors::js_error;
use super::messages::{js_answer, JsMessage};
use super::options::{signal_of, Wait};
use super::{calls, kernel_id, order};
use crate::envelope::EnvelopeHeader;
use crate::hlc::HlcTimestamp;
use crate::runtime::Runtime;
use crate::waiting::{deadline, wait_ms};

#[wasm_bindgen(typescript_custom_section)]
const TS_ENVELOPES: &str = r#"
/** A hybrid logical clock's timestamp: wall-clock milliseconds since the Unix epoch, then a counter; compare `physicalMs`, then `logical`. */
export interface HlcTimestamp { physicalMs: number; logical: number; }
/** An envelope's header (see the README's "Envelopes and HLC"). */
export interface EnvelopeHeader {
  /** Unique in the runtime. */
  messageId: number;
  /** The message this one answers (an answer's is its request's `messageId`), or what the sender set. */
  correlationId: number | null;
  /** The kernel that sent it; null for the host. */
  source: string | null;
  /** The kernel it goes to; null for the host. */
  destination: string | null;
  /** The sender's priority (0 to 255), carried with the message and its answer. */
  priority: number;
  timestamp: HlcTimestamp;
}
export interface SendEnvelopeOptions {
  correlationId?: number | undefined;
  /** 0 to 255 (default 0). */
  priority?: number | undefined;
  /** The kernel it is sent on behalf of (default: the host). */
  source?: string | undefined;
  /** A timestamp from elsewhere: the runtime's clock is updated with it, so the message is stamped after it. */
  timestamp?: HlcTimestamp | undefined;
  /** Milliseconds to wait for queue room (default: as long as it takes). */
  timeout?: number | undefined;
  /** Ends the wait for room: the send rejects with the signal's `reason`, its message not queued. */
  signal?: AbortSignal | null | undefined;
}
/** An answer with its envelope's header. */
export interface ReceivedEnvelope<T extends object = MessageOutput> { message: T; envelope: EnvelopeHeader; }
export interface RingKernelRuntime {
  /** Queues one message with an envelope and resolves with the header it was sent with (a new `messageId`, `destination` = `id`, the runtime's clock's timestamp). */
  sendEnvelope<M extends object & MessageLike<M>>(id: string, message: M & NotAMessage<M>, options?: SendEnvelopeOptions): Promise<EnvelopeHeader>;
  /** Resolves with the next answer and its envelope's header (made now for an answer to a message sent without one); TimeoutError after `timeout` ms. */
  receiveEnvelope<T extends object = MessageOutput>(id: string, options?: WaitOptions): Promise<ReceivedEnvelope<T>>;
}
"#;

/// Reads `sendEnvelope`'s options into the header to send and how long to wait, checked in
/// JavaScript (`sendOptions` in `js/envelope.js`) by the package's rules for options; a
/// `signal` is then read as every operation's is.
fn send_options(options: Option<JsValue>) -> Result<(EnvelopeHeader, Wait), JsValue> {
    let mut header = EnvelopeHeader::new();
    let Some(options) = options.filter(|o| !o.is_undefined() && !o.is_null()) else {
        return Ok((header, Wait::default()));
    };
    let mut read = [0.0; 6];
    header.source = options_read(&options, &mut read)?;
    let [correlation_id, priority, physical_ms, logical, timeout, signal] = read.map(|n| (!n.is_nan()).then_some(n));
    // Looked up (and checked) only when there is one: a key read from Rust costs a string.
    let signal = if signal.is_some() { signal_of(&options, "sendEnvelope options")? } else { None };
    header.correlation_id = correlation_id.map(|n| n as u64);
    header.priority = priority.map_or(0, |n| n as u8);
    if let (Some(physical_ms), Some(logical)) = (physical_ms, logical) {
        header.timestamp = HlcTimestamp::new(physical_ms as u64, logical as u32);
    }
    Ok((header, Wait { timeout: timeout.and_then(wait_ms), signal }))
}

/// Queues one message with an envelope and resolves with the header it was sent with (a new
/// `messageId`, `destination` = `id`, the runtime's clock's timestamp); `RingKernelRuntime`'s
/// and `KernelHandle`'s `sendEnvelope`.
pub(super) fn send_envelope(rt: Runtime, id: JsValue, message: JsValue, options: Option<JsValue>) -> Promise {
    let read = || Ok::<_, JsValue>((kernel_id(&id, "id")?, send_options(options)?));
    let (kernel, (header, wait)) = match read() {
        Ok(read) => read,
        Err(error) => return Promise::reject(&error),
    };
    // Behind others, it goes to the launch it found now or to none (see `pinned_to_current`).
    let rt = rt.pinned_to_current(&kernel);
    order::in_line(&rt.clone(), kernel.clone(), Abort::by(wait.signal), |mut place| async move {
        let id = kernel;
        let deadline = deadline(wait.timeout);
        // As `send`: packed by the layout's codec, or read for the core to judge.
        let message = JsMessage::read(&rt, &id, &message);
        let timeout = order::turn(&rt, &id, &mut place, deadline).await?;
        let sent = rt.send_envelope_message(&id, message.as_ref(), &header, timeout).await;
        drop(place);
        Ok(js_header(&sent.map_err(js_error)?))
    })
}

/// Resolves with `{ message, envelope }`: the next answer and its envelope's header;
/// `RingKernelRuntime`'s and `KernelHandle`'s `receiveEnvelope` (`removed`: a handle's launch's
/// flag, see `calls::launch_still_there`).
pub(super) fn receive_envelope(rt: Runtime, id: JsValue, options: Option<JsValue>, removed: calls::Removed) -> Promise {
    let (id, wait) = match calls::arguments(&id, options, "receiveEnvelope options") {
        Ok(read) => read,
        Err(error) => return Promise::reject(&error),
    };
    Abort::by(wait.signal).promise(async move {
        calls::launch_still_there(&removed, &id)?;
        let received = rt.receive_envelope_with(&id, wait.timeout, js_answer).await.map_err(js_error)?;
        Ok(received_object(&received.message, js_header(&received.header)))
    })
}

#[wasm_bindgen(module = "/src/wasm/js/envelope.js")]
extern "C" {
    /// An `EnvelopeHeader` object (see `js/envelope.js`).
    #[wasm_bindgen(js_name = header)]
    fn header_object(
        message_id: f64,
        correlation_id: JsValue,
        source: JsValue,
        destination: JsValue,
        priority: u8,
        physical_ms: f64,
        logical: u32,
    ) -> JsValue;
    /// An `HlcTimestamp` object.
    #[wasm_bindgen(js_name = timestamp)]
    fn timestamp_object(physical_ms: f64, logical: u32) -> JsValue;
    /// `{ message, envelope }`.
    #[wasm_bindgen(js_name = received)]
    fn received_object(message: &JsValue, envelope: JsValue) -> JsValue;
    /// `sendEnvelope`'s options checked (a `TypeError` or `RangeError` if not): the source, and
    /// into `read` (NaN where absent) the correlation id, priority, timestamp and timeout, and 1
    /// when there is a signal.
    #[wasm_bindgen(js_name = sendOptions, catch)]
    fn options_read(options: &JsValue, read: &mut [f64]) -> Result<Option<String>, JsValue>;
}

/// `null` for `None`.
fn or_null<T: Into<JsValue>>(value: Option<T>) -> JsValue {
    value.map_or(JsValue::NULL, Into::into)
}

fn js_header(header: &EnvelopeHeader) -> JsValue {
    header_object(
        header.message_id as f64,
        or_null(header.correlation_id.map(|id| id as f64)),
        or_null(header.source.as_deref()),
        or_null(header.destination.as_deref()),
        header.priority,
        header.timestamp.physical_ms as f64,
        header.timestamp.logical,
    )
}

/// An `HlcTimestamp` object.
pub(super) fn js_timestamp(timestamp: HlcTimestamp) -> JsValue {
    timestamp_object(timestamp.physical_ms as f64, timestamp.logical)
}

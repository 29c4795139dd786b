//! Envelopes on `RingKernelRuntime` (see the core's `envelope` module): `sendEnvelope`,
//! `receiveEnvelope`, `currentTimestamp`. Headers are plain objects, `{ messageId,
//! correlationId, source, destination, priority, timestamp: { physicalMs, logical } }`, ids and
//! milliseconds as numbers (as every count and id of the package is).

use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

use std::time::Duration;

use wasm_bindgen::JsCast;

use super::errors::{js_error, range_error, type_error};
use super::messages::{js_answer, type_name, JsMessage};
use super::options::check_keys;
use super::runtime::JsRuntime;
use super::{kernel_id, order, promise};
use crate::envelope::EnvelopeHeader;
use crate::hlc::HlcTimestamp;
use crate::platform::Float;
use crate::waiting::{deadline, duration_from_ms};

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
  correlationId?: number;
  /** 0 to 255 (default 0). */
  priority?: number;
  /** The kernel it is sent on behalf of (default: the host). */
  source?: string;
  /** A timestamp from elsewhere: the runtime's clock is updated with it, so the message is stamped after it. */
  timestamp?: HlcTimestamp;
  /** Milliseconds to wait for queue room (default: as long as it takes). */
  timeout?: number;
}
/** An answer with its envelope's header. */
export interface ReceivedEnvelope<T extends MessageOutput = MessageOutput> { message: T; envelope: EnvelopeHeader; }
export interface RingKernelRuntime {
  /** Resolves with the next answer and its envelope's header (made now for an answer to a message sent without one); TimeoutError after `timeout` ms. */
  receiveEnvelope<T extends MessageOutput = MessageOutput>(id: string, options?: TimeoutOptions): Promise<ReceivedEnvelope<T>>;
}
"#;

/// `sendEnvelope`'s option keys, as `SendEnvelopeOptions` declares them.
const SEND_OPTIONS: [&str; 5] = ["correlationId", "priority", "source", "timestamp", "timeout"];

/// Reads `sendEnvelope`'s options into the header to send and the timeout, by the package's
/// rules for options: unknown keys and values of the wrong type are `TypeError`s, numbers out of
/// range `RangeError`s. (Read by hand: serde's derived reader would cost the package more.)
fn send_options(options: Option<JsValue>) -> Result<(EnvelopeHeader, Option<Duration>), JsValue> {
    let mut header = EnvelopeHeader::new();
    let Some(options) = options.filter(|o| !o.is_undefined() && !o.is_null()) else { return Ok((header, None)) };
    check_keys(&options, &SEND_OPTIONS, "sendEnvelope options")?;
    let object: &Object = options.unchecked_ref();
    let get = |key: &str| Reflect::get(object, &key.into());
    header.correlation_id = integer(get("correlationId")?, "correlationId", MAX_SAFE_INTEGER)?.map(|n| n as u64);
    header.priority = integer(get("priority")?, "priority", 255.0)?.map_or(0, |n| n as u8);
    let source = get("source")?;
    if !source.is_undefined() {
        let name = source.as_string().ok_or_else(|| mistyped("source", "a kernel id (a string)", &source))?;
        header.source = Some(name);
    }
    let timestamp = get("timestamp")?;
    if !timestamp.is_undefined() {
        check_keys(&timestamp, &["physicalMs", "logical"], "sendEnvelope options: timestamp")?;
        let part = |key: &str, max| integer(Reflect::get(&timestamp, &key.into())?, key, max);
        let physical_ms = part("physicalMs", MAX_SAFE_INTEGER)?.unwrap_or(0.0) as u64;
        header.timestamp = HlcTimestamp::new(physical_ms, part("logical", u32::MAX as f64)?.unwrap_or(0.0) as u32);
    }
    let timeout = get("timeout")?;
    let timeout = match timeout.as_f64() {
        Some(ms) => Some(duration_from_ms(ms).map_err(js_error)?),
        None if timeout.is_undefined() => None,
        None => return Err(mistyped("timeout", "a number of milliseconds", &timeout)),
    };
    Ok((header, timeout))
}

/// The largest integer a JavaScript number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// An optional whole number from 0 to `max`: `TypeError` for what is not a number (a BigInt
/// included), `RangeError` for a number that is not such an integer.
fn integer(value: JsValue, what: &str, max: f64) -> Result<Option<f64>, JsValue> {
    if value.is_undefined() {
        return Ok(None);
    }
    let n = value.as_f64().ok_or_else(|| mistyped(what, "a number", &value))?;
    if n.fract() != 0.0 || !(0.0..=max).contains(&n) {
        return Err(range_error(format!(
            "sendEnvelope options: {what} must be a whole number from 0 to {}, got {}",
            Float(max),
            Float(n)
        )));
    }
    Ok(Some(n))
}

fn mistyped(what: &str, expected: &str, value: &JsValue) -> JsValue {
    type_error(format!("sendEnvelope options: {what} must be {expected}, got {}", type_name(value)))
}

#[wasm_bindgen(js_class = RingKernelRuntime)]
impl JsRuntime {
    /// Queues one message with an envelope and resolves with the header it was sent with (a
    /// new `messageId`, `destination` = `id`, the runtime's clock's timestamp).
    #[wasm_bindgen(js_name = sendEnvelope, unchecked_return_type = "Promise<EnvelopeHeader>")]
    pub fn send_envelope(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_param_type = "MessageInput")] message: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SendEnvelopeOptions")] options: Option<JsValue>,
    ) -> Promise {
        let rt = self.inner.clone();
        order::in_line(&rt.clone(), &id.clone(), |mut place| async move {
            let id = kernel_id(&id, "id")?;
            let (header, timeout) = send_options(options)?;
            let deadline = deadline(timeout);
            // As `send`: packed by the layout's codec, or read for the core to judge.
            let message = JsMessage::read(&rt, &id, &message);
            let timeout = order::turn(&rt, &id, &mut place, deadline).await?;
            let sent = rt.send_envelope_message(&id, message.as_ref(), &header, timeout).await;
            drop(place);
            Ok(js_header(&sent.map_err(js_error)?))
        })
    }

    /// Resolves with `{ message, envelope }`: the next answer and its envelope's header.
    #[wasm_bindgen(js_name = receiveEnvelope, skip_typescript)] // declared generic in TS_ENVELOPES
    pub fn receive_envelope(&self, id: JsValue, options: Option<JsValue>) -> Promise {
        let rt = self.inner.clone();
        promise(async move {
            let id = kernel_id(&id, "id")?;
            let timeout = super::options::timeout_option(options, "receiveEnvelope options")?;
            let received = rt.receive_envelope_with(&id, timeout, js_answer).await.map_err(js_error)?;
            Ok(received_object(&received.message, js_header(&received.header)))
        })
    }

    /// The runtime's hybrid logical clock now (a local event: later than every timestamp it
    /// gave before).
    #[wasm_bindgen(js_name = currentTimestamp, unchecked_return_type = "HlcTimestamp")]
    pub fn current_timestamp(&self) -> JsValue {
        js_timestamp(self.inner.current_timestamp())
    }
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

fn js_timestamp(timestamp: HlcTimestamp) -> JsValue {
    timestamp_object(timestamp.physical_ms as f64, timestamp.logical)
}

//! Envelopes on `RingKernelRuntime` (see the core's `envelope` module): `sendEnvelope`,
//! `receiveEnvelope`, `currentTimestamp`. Headers are plain objects, `{ messageId,
//! correlationId, source, destination, priority, timestamp: { physicalMs, logical } }`, ids and
//! milliseconds as numbers (as every count and id of the package is).

use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

use super::errors::{js_error, range_error};
use super::messages::{js_answer, js_message_value};
use super::options::parse_options;
use super::runtime::JsRuntime;
use super::{kernel_id, promise};
use crate::envelope::{EnvelopeHeader, MessageEnvelope};
use crate::hlc::HlcTimestamp;
use crate::waiting::duration_from_ms;

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

/// `sendEnvelope`'s options.
#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
struct SendEnvelopeOptions {
    correlation_id: Option<u64>,
    priority: Option<u32>,
    source: Option<String>,
    timestamp: Option<HlcTimestamp>,
    timeout: Option<f64>,
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
        promise(async move {
            let id = kernel_id(&id, "id")?;
            let options: SendEnvelopeOptions = parse_options(options, "sendEnvelope options")?;
            let priority = options.priority.unwrap_or(0);
            let priority = u8::try_from(priority)
                .map_err(|_| range_error(format!("sendEnvelope options: priority must be 0 to 255, got {priority}")))?;
            let timeout = options.timeout.map(duration_from_ms).transpose().map_err(js_error)?;
            let mut header = EnvelopeHeader::new();
            header.correlation_id = options.correlation_id;
            header.priority = priority;
            header.source = options.source;
            header.timestamp = options.timestamp.unwrap_or_default();
            let envelope = MessageEnvelope::with_header(js_message_value(&message), header);
            Ok(js_header(&rt.send_envelope(&id, &envelope, timeout).await.map_err(js_error)?))
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
            let object = Object::new();
            set(&object, "message", &received.message);
            set(&object, "envelope", &js_header(&received.header));
            Ok(object.into())
        })
    }

    /// The runtime's hybrid logical clock now (a local event: later than every timestamp it
    /// gave before).
    #[wasm_bindgen(js_name = currentTimestamp, unchecked_return_type = "HlcTimestamp")]
    pub fn current_timestamp(&self) -> JsValue {
        js_timestamp(self.inner.current_timestamp())
    }
}

fn set(object: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &key.into(), value);
}

/// `null` for `None`.
fn or_null<T: Into<JsValue>>(value: Option<T>) -> JsValue {
    value.map_or(JsValue::NULL, Into::into)
}

fn js_header(header: &EnvelopeHeader) -> JsValue {
    let object = Object::new();
    set(&object, "messageId", &(header.message_id as f64).into());
    set(&object, "correlationId", &or_null(header.correlation_id.map(|id| id as f64)));
    set(&object, "source", &or_null(header.source.as_deref()));
    set(&object, "destination", &or_null(header.destination.as_deref()));
    set(&object, "priority", &header.priority.into());
    set(&object, "timestamp", &js_timestamp(header.timestamp));
    object.into()
}

fn js_timestamp(timestamp: HlcTimestamp) -> JsValue {
    let object = Object::new();
    set(&object, "physicalMs", &(timestamp.physical_ms as f64).into());
    set(&object, "logical", &timestamp.logical.into());
    object.into()
}

//! Message envelopes: a header beside a message, for applications that want to know which
//! answer belongs to which request, where it came from, and when, in [hybrid logical
//! clock](crate::hlc) time (RingKernel's `MessageEnvelope`).
//!
//! ```no_run
//! # async fn demo() -> ringkernel_web::Result<()> {
//! use std::time::Duration;
//! use ringkernel_web::{LaunchOptions, MessageEnvelope, Runtime, RuntimeOptions};
//! let runtime = Runtime::new(RuntimeOptions::default()).await?;
//! let doubler = runtime.launch("doubler", LaunchOptions::default()).await?.typed::<i32, i32>()?;
//! doubler.activate().await?;
//! let sent = doubler.send_envelope(MessageEnvelope::new(21).with_priority(2)).await?;
//! let answer = doubler.receive_envelope_timeout(Duration::from_secs(1)).await?;
//! assert_eq!(answer.message, 42);
//! assert_eq!(answer.header.correlation_id, Some(sent.message_id));
//! assert!(answer.header.timestamp > sent.timestamp);
//! # Ok(()) }
//! ```
//!
//! # Sending
//! `send_envelope` queues the message like `send` and returns the header it was sent with:
//! - `message_id`: new, unique in the runtime (whatever the envelope had);
//! - `correlation_id`, `source`, `priority`: as the envelope had them (`source` `None` is the
//!   host; `priority` is carried, not acted on: kernels are scheduled by their
//!   `LaunchOptions::priority`);
//! - `destination`: the kernel it was sent to;
//! - `timestamp`: the runtime's clock [updated](crate::hlc::HybridClock::update) with the
//!   envelope's timestamp: [`HlcTimestamp::ZERO`] (a new envelope's) gives the clock's `now`,
//!   and an envelope received elsewhere and passed on is stamped after it.
//!
//! # Answers
//! The answer to an enveloped message has an envelope too, made when it is taken
//! (`receive_envelope`): a new `message_id`; `correlation_id` = the request's `message_id`;
//! `source` = the kernel answering; `destination` = the request's `source`; the request's
//! `priority`; a `timestamp` from the clock updated with the request's (so later than the
//! request's, and later than every answer taken before it: answers are stamped in the order
//! they are taken, which is the order they were answered in).
//!
//! Through a connected pipeline the request's header travels with the message from stage to
//! stage (its destination becomes each stage in turn and its timestamp is ticked at each), and
//! the last stage's answer carries it as above: its `correlation_id` is the id `send_envelope`
//! returned. A message a handler drops (`fn handle(msg, out) -> bool`) drops its header too.
//! After a lost device, held messages are processed again with their headers and timestamps.
//!
//! **Plain messages.** A message sent without an envelope (`send`, `send_batch`) is answered
//! without one, and costs nothing here. `receive_envelope` on such an answer makes its header
//! when it is taken: a new `message_id`, no `correlation_id`, `source` = the kernel, no
//! `destination` (the host), `priority` 0 and the clock's `now`. Plain `receive`s may take
//! enveloped answers; their headers are then dropped.
//!
//! # Cost
//! Headers stay on the host, keyed by the sequence numbers the correlation ledger gives every
//! accepted message; the GPU never sees them. A kernel that never had an envelope pays one
//! emptiness check per delivered batch.

pub(crate) mod headers;

use crate::hlc::{HlcTimestamp, HybridClock};
use headers::Carried;

/// An envelope's header (RingKernel's `MessageHeader`): who sent a message to whom, which
/// message it answers, and when. See the [module docs](self) for how each field is set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct EnvelopeHeader {
    /// Unique in the runtime; given by the runtime when a message is sent or an answer taken.
    pub message_id: u64,
    /// The message this one answers (an answer's is its request's `message_id`), or whatever
    /// the sender set.
    pub correlation_id: Option<u64>,
    /// The kernel that sent it; `None` for the host.
    pub source: Option<String>,
    /// The kernel it goes to; `None` for the host.
    pub destination: Option<String>,
    /// The sender's priority, carried with the message and its answer.
    pub priority: u8,
    /// When it was sent, on the runtime's [hybrid logical clock](crate::hlc).
    pub timestamp: HlcTimestamp,
}

impl EnvelopeHeader {
    /// A header with nothing set: the runtime fills in `message_id`, `destination` and
    /// `timestamp` when the message is sent.
    pub fn new() -> Self {
        Self::default()
    }
}

/// A message with its header (RingKernel's `MessageEnvelope`). Build one with
/// [`new`](Self::new) and the `with_*` methods; the runtime fills in the rest when it is sent.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct MessageEnvelope<M> {
    /// Who, to whom, which request, when.
    pub header: EnvelopeHeader,
    /// The message itself.
    pub message: M,
}

impl<M> MessageEnvelope<M> {
    /// `message` with an empty header (sent from the host, priority 0, no correlation id).
    pub fn new(message: M) -> Self {
        MessageEnvelope { header: EnvelopeHeader::new(), message }
    }

    /// `message` with `header` (one received earlier, say, to pass on).
    pub fn with_header(message: M, header: EnvelopeHeader) -> Self {
        MessageEnvelope { header, message }
    }

    /// Sets the correlation id.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_correlation_id(mut self, correlation_id: u64) -> Self {
        self.header.correlation_id = Some(correlation_id);
        self
    }

    /// Sets the priority.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_priority(mut self, priority: u8) -> Self {
        self.header.priority = priority;
        self
    }

    /// Sets the source kernel (the host when unset).
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.header.source = Some(source.into());
        self
    }

    /// Sets the timestamp the runtime's clock is updated with when it is sent (one received
    /// from another runtime, say).
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_timestamp(mut self, timestamp: HlcTimestamp) -> Self {
        self.header.timestamp = timestamp;
        self
    }

    /// The header and the message.
    pub fn into_parts(self) -> (EnvelopeHeader, M) {
        (self.header, self.message)
    }

    /// The same header with another message.
    pub fn map<N>(self, f: impl FnOnce(M) -> N) -> MessageEnvelope<N> {
        MessageEnvelope { header: self.header, message: f(self.message) }
    }
}

/// A [`Clock`]'s state at one moment (see [`Clock::mark`]).
#[derive(Clone, Copy)]
pub(crate) struct ClockMark {
    last: crate::hlc::HlcTimestamp,
    last_id: u64,
}

/// The runtime's clock and message ids: every stamp an envelope gets comes from here.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    hlc: HybridClock,
    last_id: u64,
}

impl Clock {
    /// The clock's `now` (a local event).
    pub fn now(&mut self) -> HlcTimestamp {
        self.hlc.now()
    }

    /// Where the clock and the message ids stand, for [`rewind`](Self::rewind).
    pub fn mark(&self) -> ClockMark {
        ClockMark { last: self.hlc.last(), last_id: self.last_id }
    }

    /// Takes back every stamp given since `mark`, none of which was given out (a send refused
    /// under the same lock): a refused send moves neither the clock nor the ids.
    pub fn rewind(&mut self, mark: ClockMark) {
        self.hlc.rewind(mark.last);
        self.last_id = mark.last_id;
    }

    fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// Stamps `header` for a send to `destination`: what the kernel keeps, and the header as sent.
    pub fn send(&mut self, header: &EnvelopeHeader, destination: &str) -> (Carried, EnvelopeHeader) {
        let carried = Carried {
            message_id: self.next_id(),
            correlation_id: header.correlation_id,
            source: header.source.clone(),
            priority: header.priority,
            timestamp: self.hlc.update(header.timestamp),
        };
        let sent = carried.clone().header(Some(destination.to_owned()));
        (carried, sent)
    }

    /// A message passes from one pipeline stage to the next: its timestamp is ticked.
    pub fn hop(&mut self, carried: &mut Carried) {
        carried.timestamp = self.hlc.update(carried.timestamp);
    }

    /// The header of an answer of `kernel` taken now, to the request `carried` (`None` for a
    /// message sent without an envelope; see the module docs).
    pub fn answer(&mut self, request: Option<Carried>, kernel: &str) -> EnvelopeHeader {
        let message_id = self.next_id();
        let source = Some(kernel.to_owned());
        match request {
            Some(request) => EnvelopeHeader {
                message_id,
                correlation_id: Some(request.message_id),
                source,
                destination: request.source,
                priority: request.priority,
                timestamp: self.hlc.update(request.timestamp),
            },
            None => EnvelopeHeader { message_id, source, timestamp: self.hlc.now(), ..EnvelopeHeader::default() },
        }
    }
}

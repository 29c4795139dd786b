//! Envelopes (see [`crate::envelope`]): `send_envelope` queues a message with its header,
//! `receive_envelope` takes an answer with its header, `current_timestamp` reads the runtime's
//! hybrid logical clock. Queuing and taking are `messaging`'s, with the header stamped under the
//! same lock.

use std::time::Duration;

use super::messaging::Pack;
use super::Runtime;
use crate::envelope::{EnvelopeHeader, MessageEnvelope};
use crate::error::Result;
use crate::hlc::HlcTimestamp;
use crate::message::{MessageLayout, MessageRef, Value};
use crate::waiting::deadline;

impl Runtime {
    /// The runtime's hybrid logical clock now: a local event, later than every timestamp it
    /// gave before (see [`crate::hlc`]).
    pub fn current_timestamp(&self) -> HlcTimestamp {
        self.shared.lock().clock.now()
    }

    /// Queues `envelope`'s message (a [`Value::Struct`], as for
    /// [`send_value`](Self::send_value)) with its header, waiting up to `timeout` for room;
    /// returns the header as sent: a new message id, `destination` = `id`, and the clock's
    /// timestamp (see [`crate::envelope`]). Refused as `send_value` refuses.
    pub async fn send_envelope(
        &self,
        id: &str,
        envelope: &MessageEnvelope<Value>,
        timeout: Option<Duration>,
    ) -> Result<EnvelopeHeader> {
        self.send_envelope_message(id, MessageRef::Value(&envelope.message), &envelope.header, timeout).await
    }

    /// [`send_envelope`](Self::send_envelope) of a message in either form (see
    /// [`send_message`](Self::send_message)): what the JavaScript layer hands over, the bytes
    /// its codec packed or the fields it read, with the envelope's `header`.
    pub async fn send_envelope_message(
        &self,
        id: &str,
        message: MessageRef<'_>,
        header: &EnvelopeHeader,
        timeout: Option<Duration>,
    ) -> Result<EnvelopeHeader> {
        let mut sent = None;
        let result = self.enqueue_message(id, message, timeout, Some((header, &mut sent))).await;
        self.counted(id, result.map(|()| sent.expect("stamped when queued")))
    }

    /// Queues one message that `pack` writes with `header`; nothing is counted here.
    pub(super) async fn send_enveloped(
        &self,
        id: &str,
        header: &EnvelopeHeader,
        timeout: Option<Duration>,
        pack: Pack<'_>,
    ) -> Result<EnvelopeHeader> {
        let mut sent = None;
        self.enqueue(id, deadline(timeout), None, Some((header, &mut sent)), pack).await?;
        Ok(sent.expect("stamped when queued"))
    }

    /// Takes the next answer as named values with its envelope's header, waiting up to
    /// `timeout` (forever when `None`), then `Timeout`. An answer to a message sent without an
    /// envelope gets a header made now (see [`crate::envelope`]).
    pub async fn receive_envelope(
        &self,
        id: &str,
        timeout: Option<Duration>,
    ) -> Result<MessageEnvelope<Vec<(String, Value)>>> {
        self.receive_envelope_with(id, timeout, |layout, answer| layout.decode(answer)).await
    }

    /// [`receive_envelope`](Self::receive_envelope), handing `read` the output layout and the
    /// answer's bytes straight from the output queue. `read` runs while the runtime's table is
    /// locked: it must not call the runtime (natively that panics; copy what it needs and call
    /// after).
    ///
    /// # Panics
    /// When `read` calls the runtime, whose table is locked while `read` runs: natively with a
    /// panic that says so, on the web in std's lock.
    pub async fn receive_envelope_with<R>(
        &self,
        id: &str,
        timeout: Option<Duration>,
        read: impl FnOnce(&MessageLayout, &[u8]) -> R,
    ) -> Result<MessageEnvelope<R>> {
        let mut header = None;
        let result = self.receive_one(id, timeout, read, Some(&mut header), super::messaging::Taking::Take).await;
        self.counted(id, result.map(|message| MessageEnvelope::with_header(message, header.expect("made when taken"))))
    }
}

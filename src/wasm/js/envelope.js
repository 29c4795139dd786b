// Envelope headers and received envelopes as JavaScript objects, made here as literals: built
// key by key from Rust, every key became a new string (a TextDecoder call each), about 6 µs of
// each `sendEnvelope` and `receiveEnvelope`.

/** An `EnvelopeHeader`; absent optional fields are `null`. */
export function header(messageId, correlationId, source, destination, priority, physicalMs, logical) {
  return { messageId, correlationId, source, destination, priority, timestamp: timestamp(physicalMs, logical) };
}

/** An `HlcTimestamp`. */
export function timestamp(physicalMs, logical) {
  return { physicalMs, logical };
}

/** What `receiveEnvelope` resolves with: the answer and its envelope's header. */
export function received(message, envelope) {
  return { message, envelope };
}

//! Per-kernel telemetry: counted on the GPU where the work happens (processed, dropped,
//! dispatches, read back from the control block each tick) and on the host where it happens
//! (sent, received, queue depths, bytes moved).

/// A snapshot of one kernel's counters.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelTelemetry {
    /// Messages accepted by `send`/`send_batch`.
    pub messages_sent: u64,
    /// Messages handed to `receive` callers.
    pub messages_received: u64,
    /// Messages the GPU handler ran on (GPU counter).
    pub messages_processed: u64,
    /// Messages the handler chose to drop (GPU counter).
    pub messages_dropped: u64,
    /// Ticks that dispatched this kernel (GPU counter of commit dispatches).
    pub dispatches: u64,
    /// Messages waiting on the host to go to the GPU.
    pub input_queue_depth: usize,
    /// Messages in the GPU ring, not yet read back.
    pub in_flight: usize,
    /// Answers waiting for `receive`.
    pub output_queue_depth: usize,
    pub bytes_to_device: u64,
    pub bytes_from_device: u64,
    /// Messages still unprocessed when a terminate timed out (never silently lost: reported here).
    pub unprocessed_at_termination: u64,
}

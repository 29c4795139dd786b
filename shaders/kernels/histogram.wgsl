// histogram: bins every sample in [0, 1) into one of 64 equal bins kept in the kernel's state
// (atomic<u32>, read with readState) and answers how many of the message's 16 samples it binned;
// samples outside [0, 1) are counted by nobody.
fn handle(msg: HistogramSamples) -> HistogramAck {
    var binned = 0u;
    for (var i = 0u; i < 16u; i += 1u) {
        let v = msg.samples[i];
        if (v >= 0.0 && v < 1.0) {
            atomicAdd(&state[min(u32(v * 64.0), 63u)], 1u);
            binned += 1u;
        }
    }
    return HistogramAck(binned);
}

// For `fn handle(msg: In, out: ptr<function, Out>) -> bool`: the handler may drop a message by
// returning false. The answer slot is still written (order holds slot for slot) and the kept
// flag beside it tells the host whether to deliver it.
@group(0) @binding(2) var<storage, read_write> output_kept: array<u32>;

fn ring_answer(slot: u32) -> bool {
    var answer: {{OUT}};
    let kept = handle(input_ring.messages[slot], &answer);
    output_ring.answers[slot] = answer;
    output_kept[slot] = select(0u, 1u, kept);
    return kept;
}

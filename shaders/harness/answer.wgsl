// For `fn handle(msg: In) -> Out`: every message gets an answer in its own slot.
fn ring_answer(slot: u32) -> bool {
    output_ring.answers[slot] = handle(input_ring.messages[slot]);
    return true;
}

// For `fn handle(msg: In) -> Out`: every message gets an answer in its own slot.
fn ring_answer(slot: u32) -> bool {
    output_ring[slot] = handle(input_ring[slot]);
    return true;
}

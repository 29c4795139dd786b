// vector_add: answers { a, b } with { sum: a + b }, lane by lane over 32 f32 lanes.
fn handle(msg: VectorPair) -> VectorSum {
    var out: VectorSum;
    for (var i = 0u; i < 32u; i += 1u) {
        out.sum[i] = msg.a[i] + msg.b[i];
    }
    return out;
}

// saxpy: answers { a, x, y } with { result: a * x + y } over 32 f32 lanes (BLAS level 1).
fn handle(msg: SaxpyInput) -> SaxpyOutput {
    var out: SaxpyOutput;
    for (var i = 0u; i < 32u; i += 1u) {
        out.result[i] = msg.a * msg.x[i] + msg.y[i];
    }
    return out;
}

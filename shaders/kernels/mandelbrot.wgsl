// mandelbrot: one 8×8 tile per message. Pixel p (row-major) samples
// c = origin + step * (p % 8, p / 8) and counts iterations of z ← z² + c until |z| > 2, up to
// max_iter; the answer holds the 64 counts. max_iter is capped at 1000 so one message is bounded
// work (64,000 iterations at most, which also stays under llvmpipe's limit of 65,535 iterations
// per loop and invocation, past which lavapipe silently cuts loops short).
fn handle(msg: MandelbrotTile) -> MandelbrotCounts {
    let limit = min(msg.max_iter, 1000u);
    var out: MandelbrotCounts;
    for (var p = 0u; p < 64u; p += 1u) {
        let c = msg.origin + msg.step * vec2<f32>(f32(p % 8u), f32(p / 8u));
        var z = vec2<f32>(0.0, 0.0);
        var n = 0u;
        while (n < limit && dot(z, z) <= 4.0) {
            z = vec2<f32>(z.x * z.x - z.y * z.y, 2.0 * z.x * z.y) + c;
            n += 1u;
        }
        out.iterations[p] = n;
    }
    return out;
}

// Timed samples → the numbers the bench report carries, with the native bench's keys
// (native/src/bench/stats.rs): latency percentiles in µs by nearest rank over every sample (p99 of
// 1000 samples is the 990th), throughput from the median repetition, which one slow outlier on a
// shared machine cannot move. Pure functions, no DOM: pkg-tests/bench.mjs imports them too.

/** Nearest-rank percentile of ascending `sorted` (`q` in 0..=1); NaN when empty. */
export function percentile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(Math.max(rank, 1), sorted.length) - 1];
}

/**
 * Latency of one operation from per-sample durations in milliseconds (`performance.now()`
 * differences), reported in microseconds. `groupSize` > 1 says each sample is the mean of that many
 * back-to-back operations, timed together because one is shorter than the clock's resolution.
 */
export function latency(samplesMs, { groupSize = 1 } = {}) {
  const micros = samplesMs.map((ms) => ms * 1e3).sort((a, b) => a - b);
  const summary = {
    unit: "us",
    samples: micros.length,
    min: percentile(micros, 0),
    p50: percentile(micros, 0.5),
    p99: percentile(micros, 0.99),
    max: percentile(micros, 1),
    mean: micros.reduce((sum, v) => sum + v, 0) / Math.max(micros.length, 1),
  };
  if (groupSize > 1) summary.groupSize = groupSize;
  return summary;
}

/** Messages per second for a batch of `messages`, from the median of the repetitions' ms. */
export function throughput(messages, samplesMs) {
  const millis = [...samplesMs].sort((a, b) => a - b);
  const medianMs = percentile(millis, 0.5);
  return {
    messages,
    repetitions: millis.length,
    unit: "msgs/s",
    msgsPerSec: messages / (medianMs / 1e3),
    medianMs,
    bestMs: percentile(millis, 0),
  };
}

/**
 * `count` distinct inputs for sample `sample`, spread over [-2^30, 2^30) so doubling never
 * overflows, and different from sample to sample: the native bench's `values`, bit for bit.
 */
export function values(count, sample) {
  const out = new Int32Array(count);
  const first = (sample * count) >>> 0;
  for (let i = 0; i < count; i++) out[i] = (Math.imul((first + i) >>> 0, 2654435761) >>> 1) - (1 << 30);
  return out;
}

/**
 * Throws unless `answers` are `inputs` times `factor` (i32 wrapping, as WGSL multiplies), in order.
 * The message names the first wrong answer: a wrong answer fails the bench.
 */
export function expectMultiplied(what, inputs, answers, factor = 2) {
  if (answers.length !== inputs.length) {
    throw new Error(`${what}: ${answers.length} answers to ${inputs.length} messages`);
  }
  for (let i = 0; i < inputs.length; i++) {
    const want = Math.imul(inputs[i], factor);
    if (answers[i] !== want) {
      throw new Error(`${what}: message ${i} of ${inputs.length}: ${inputs[i]} × ${factor} is ${want}, got ${answers[i]}`);
    }
  }
}

/**
 * How much slower than the raw batch of 1 the raw one-message floor may be before the report calls
 * it suspect (see rawFloorCheck): the two are the same work sampled in different phases, whose
 * medians differ by some tens of percent on a quiet machine, not by a factor.
 */
const RAW_FLOOR_MARGIN = 1.5;

/**
 * Whether the raw one-message floor is a floor: it is the same work as the raw batch of 1 (one
 * write, dispatch, copy, submit and map of one value, on buffers made once), so a floor far
 * slower than that batch measured the environment, not WebGPU's cost. On Chromium's SwiftShader
 * a single raw dispatch + map is bimodal, ~0.3 ms or ~2.3 ms, the difference all in the map's
 * wait (roundTripBreakdown shows it): the finished dispatch reaches the page late unless other
 * GPU work wakes the browser's GPU process first, as the runtime's lanes (a next tick encoded
 * ahead) and those the raw batch of 1 takes turns with do. When the batch of 1 was slow too, the
 * runtime's own round trip (`sendReceive`), which does that work and more, gives it away. A ratio
 * over such a floor flatters the runtime; `suspect` (either past RAW_FLOOR_MARGIN) says not to
 * read one. Null without a batch of 1.
 */
export function rawFloorCheck(rawSingle, batches, sendReceive) {
  const one = batches.find((b) => b.messages === 1);
  if (!one) return null;
  const batchOfOneUs = one.raw.medianMs * 1e3;
  const overBatchOfOne = rawSingle.p50 / batchOfOneUs;
  const overRoundTrip = rawSingle.p50 / sendReceive.p50;
  const suspect = overBatchOfOne > RAW_FLOOR_MARGIN || overRoundTrip > RAW_FLOOR_MARGIN;
  return { floorUs: rawSingle.p50, batchOfOneUs, overBatchOfOne, overRoundTrip, suspect };
}

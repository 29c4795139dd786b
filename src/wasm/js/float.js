// An f64 as Rust prints it, `{}` (Display) or, with `debug`, `{:?}` (Debug), for the wasm's error
// texts and metrics: Rust's own float formatting would weigh about 6 KB gzipped on the package.
//
// The digits are JavaScript's shortest round-trip digits (toExponential() without an argument),
// which are Rust's, except where the value lies exactly halfway between two shortest strings:
// JavaScript takes the even one, Rust the upper one. Halfway means the exact decimal expansion
// is the digits and a 5; toFixed(100) gives it whole for every value below 1e21 that can be.
// src/platform.rs's browser test compares this with Rust's formatting.
export function floatText(x, debug) {
  if (Number.isNaN(x)) return "NaN";
  const sign = x < 0 || Object.is(x, -0) ? "-" : "";
  const abs = Math.abs(x);
  if (abs === Infinity) return `${sign}inf`;
  if (abs === 0) return sign + (debug ? "0.0" : "0");
  const [mantissa, exponent] = abs.toExponential().split("e");
  let digits = mantissa.replace(".", "");
  // abs = 0.digits × 10^point
  let point = Number(exponent) + 1;
  if (abs < 1e21 && abs.toFixed(100).replace(".", "").replace(/^0+|0+$/g, "") === `${digits}5`) {
    const upper = String(BigInt(digits) + 1n);
    point += upper.length - digits.length;
    digits = upper.replace(/0+$/, "");
  }
  if (debug && (abs >= 1e16 || abs < 1e-4)) {
    const rest = digits.slice(1);
    return `${sign}${digits[0]}${rest ? "." : ""}${rest}e${point - 1}`;
  }
  let text;
  if (point <= 0) text = `0.${"0".repeat(-point)}${digits}`;
  else if (point >= digits.length) text = digits + "0".repeat(point - digits.length) + (debug ? ".0" : "");
  else text = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return sign + text;
}

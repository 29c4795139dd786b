// Hand-drawn <canvas> charts for the demo page: rolling time series, no dependencies.
// They redraw only when the page samples telemetry (a few times a second), never in an animation
// loop: without a GPU the software WebGPU adapter shares the CPU with this page.

/** A rolling time-series chart: a few series over the last `windowMs`, with optional shaded bands behind them. */
export class TimeSeriesChart {
  /**
   * @param {HTMLCanvasElement} canvas sized by CSS; the backing store follows it (and devicePixelRatio).
   * @param {object} options
   * @param {{ color: string, fill?: boolean, dash?: number[], width?: number }[]} options.series
   * @param {number} [options.windowMs] how much history is shown, at most; a young chart spans what it has
   *   (at least `minWindowMs`), so the first seconds fill the width instead of a sliver at its right end.
   * @param {number} [options.yMax] a fixed top (a queue's bound); otherwise a round number above the data.
   * @param {[number, number]} [options.log] a fixed logarithmic range instead (latencies span 0.1 ms to seconds).
   * @param {(v: number) => string} [options.format] y-axis labels.
   * @param {boolean} [options.timeAxis] label the x axis ("−60 s" … "now").
   */
  constructor(canvas, { series, windowMs = 60_000, minWindowMs = 10_000, yMax, log, format = formatShort, timeAxis = false }) {
    this.canvas = canvas;
    this.series = series;
    this.windowMs = windowMs;
    this.minWindowMs = minWindowMs;
    this.yMax = yMax;
    this.log = log;
    this.format = format;
    this.timeAxis = timeAxis;
    /** @type {{ t: number, values: (number | null)[], band: string | null }[]} */
    this.samples = [];
  }

  /** Adds one sample; `null` values leave a gap, `band` shades the time until the next sample (e.g. "paused"). */
  push(t, values, band = null) {
    this.first ??= t;
    this.samples.push({ t, values, band });
    const oldest = t - this.windowMs - 2_000;
    while (this.samples.length > 2 && this.samples[1].t < oldest) this.samples.shift();
  }

  draw(now = performance.now()) {
    const ctx = prepare(this.canvas);
    if (!ctx) return;
    const { width, height } = ctx.canvas.getBoundingClientRect();
    const pad = { left: 4, right: 4, top: 4, bottom: this.timeAxis ? 16 : 3 };
    const w = width - pad.left - pad.right;
    const h = height - pad.top - pad.bottom;
    const span = Math.min(this.windowMs, Math.max(this.minWindowMs, now - (this.first ?? now)));
    const x = (t) => pad.left + w * (1 - (now - t) / span);

    // Shaded bands first, so lines stay readable on top of them.
    for (let i = 0; i < this.samples.length; i++) {
      const { t, band } = this.samples[i];
      if (!band) continue;
      const x0 = Math.max(pad.left, x(t));
      const x1 = Math.min(pad.left + w, x(this.samples[i + 1]?.t ?? now));
      ctx.fillStyle = band;
      ctx.fillRect(x0, pad.top, Math.max(0, x1 - x0), h);
    }

    const y = this.scale(h, pad.top);
    ctx.font = "10px system-ui, sans-serif";
    for (const tick of y.ticks) {
      const yy = Math.round(y(tick)) + 0.5;
      ctx.strokeStyle = tick === y.ticks[0] ? "#c9d1db" : "#eceff3";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(pad.left, yy);
      ctx.lineTo(pad.left + w, yy);
      ctx.stroke();
      if (tick !== y.ticks[0]) {
        // Labels sit under their line, so the top one stays inside the canvas.
        ctx.textBaseline = "top";
        ctx.strokeStyle = "rgba(255, 255, 255, 0.85)";
        ctx.lineWidth = 3;
        ctx.strokeText(this.format(tick), pad.left + 2, yy + 2);
        ctx.fillStyle = "#8a94a3";
        ctx.fillText(this.format(tick), pad.left + 2, yy + 2);
      }
    }
    if (this.timeAxis) {
      ctx.fillStyle = "#8a94a3";
      ctx.textBaseline = "top";
      ctx.textAlign = "left";
      ctx.fillText(`−${Math.round(span / 1000)} s`, pad.left, pad.top + h + 3);
      ctx.textAlign = "right";
      ctx.fillText("now", pad.left + w, pad.top + h + 3);
      ctx.textAlign = "left";
    }

    ctx.save();
    ctx.beginPath();
    ctx.rect(pad.left, pad.top, w, h);
    ctx.clip();
    this.series.forEach((s, i) => this.drawSeries(ctx, s, i, x, y, pad.top + h));
    ctx.restore();
  }

  /** The y mapping for the visible data, with the values that get grid lines. */
  scale(h, top) {
    if (this.log) {
      const [lo, hi] = this.log.map(Math.log10);
      const y = (v) => top + h * (1 - (Math.log10(Math.min(Math.max(v, this.log[0]), this.log[1])) - lo) / (hi - lo));
      y.ticks = [];
      for (let e = Math.ceil(lo); e <= Math.floor(hi); e++) y.ticks.push(10 ** e);
      return y;
    }
    let max = this.yMax;
    if (max === undefined) {
      max = 0;
      for (const { values } of this.samples) for (const v of values) if (v !== null && v > max) max = v;
      max = niceCeil(Math.max(max * 1.1, 10));
    }
    const y = (v) => top + h * (1 - Math.min(v, max) / max);
    y.ticks = [0, max / 2, max];
    return y;
  }

  drawSeries(ctx, { color, fill = false, dash = [], width = 1.75 }, i, x, y, bottom) {
    // One path per unbroken run of values; a null (no data) ends a run.
    const runs = [];
    let run = [];
    for (const { t, values } of this.samples) {
      const v = values[i];
      if (v === null || v === undefined || Number.isNaN(v)) {
        if (run.length) runs.push(run);
        run = [];
      } else {
        run.push([x(t), y(v)]);
      }
    }
    if (run.length) runs.push(run);
    for (const points of runs) {
      if (fill && points.length > 1) {
        ctx.beginPath();
        ctx.moveTo(points[0][0], bottom);
        for (const [px, py] of points) ctx.lineTo(px, py);
        ctx.lineTo(points[points.length - 1][0], bottom);
        ctx.closePath();
        ctx.fillStyle = withAlpha(color, 0.14);
        ctx.fill();
      }
      ctx.beginPath();
      points.forEach(([px, py], j) => (j ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
      ctx.setLineDash(dash);
      ctx.strokeStyle = color;
      ctx.lineWidth = width;
      ctx.lineJoin = "round";
      ctx.stroke();
      ctx.setLineDash([]);
    }
  }
}

/** Matches the canvas' backing store to its CSS size (crisp on HiDPI screens) and clears it. */
function prepare(canvas) {
  const { width, height } = canvas.getBoundingClientRect();
  if (width === 0 || height === 0) return null;
  const dpr = window.devicePixelRatio || 1;
  const [bw, bh] = [Math.round(width * dpr), Math.round(height * dpr)];
  if (canvas.width !== bw || canvas.height !== bh) [canvas.width, canvas.height] = [bw, bh];
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  return ctx;
}

/** The smallest round number (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k) at least `v`: halves stay round too. */
export function niceCeil(v) {
  const base = 10 ** Math.floor(Math.log10(v));
  return [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map((m) => m * base).find((n) => n >= v);
}

/** 950, 12.5k, 3.2M: short labels for axes and rates. */
export function formatShort(v) {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(v >= 1e7 ? 0 : 1)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(v >= 1e4 ? 0 : 1)}k`;
  return `${+v.toFixed(v >= 10 || v === 0 ? 0 : 1)}`;
}

/** 0.4 ms, 12 ms, 1.5 s. */
export function formatMs(ms) {
  if (ms >= 1000) return `${+(ms / 1000).toFixed(1)} s`;
  return `${+ms.toFixed(ms >= 10 ? 0 : 1)} ms`;
}

function withAlpha(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

// The mandelbrot kernel's workload: a slow zoom into the Mandelbrot set, cut into the 8×8 tiles
// the built-in computes (one message per tile), and a painter that draws each answer where its
// tile belongs. Answers come back in send order (output slot i answers input slot i), so a FIFO
// of sent tiles is enough to place them.

const TILE = 8;
/** Input layout of `mandelbrot`: origin vec2<f32> @0, step f32 @8, max_iter u32 @12. */
export const TILE_BYTES = 16;
/** Output layout: iterations array<u32, 64>. */
export const COUNTS_BYTES = 64 * 4;

// Seahorse valley: detailed at every zoom level that f32 coordinates can resolve.
const TARGET = [-0.743643887037151, 0.13182590420533];
const START = { center: [-0.6, 0], width: 3.4 };
const ZOOM_PER_FRAME = 0.8;
// The view's centre closes in on the target faster than it zooms, so the detail fills the frame.
const APPROACH_PER_FRAME = 0.6;
// Past this many units per pixel, f32 origins near the target blur into blocks: start over.
const MIN_STEP = 4e-7;
const BACKGROUND = "#0d1321";

export class MandelbrotView {
  /** @param {HTMLCanvasElement} canvas whose width and height are multiples of 8 */
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.cols = canvas.width / TILE;
    this.rows = canvas.height / TILE;
    this.image = this.ctx.createImageData(canvas.width, canvas.height);
    this.palette = makePalette(1001);
    this.ctx.fillStyle = BACKGROUND;
    this.ctx.fillRect(0, 0, canvas.width, canvas.height);
    this.view = { center: [...START.center], step: START.width / canvas.width, frame: 0 };
    this.next = 0; // next tile of the current frame to send
    this.pending = []; // the tiles of the last make(), until commit() says how many were accepted
    this.sent = new Fifo(); // tiles accepted by the kernel, in order, waiting for their answers
    this.drawn = 0;
    this.shownFrame = 0;
    this.shownMaxIter = 0;
  }

  /** Forgets tiles whose answers will never come (the kernel was removed and launched again). */
  reset() {
    this.sent.clear();
  }

  /** Packs the next `n` tiles (from where the last accepted batch ended) in the input layout. */
  make(n) {
    const bytes = new ArrayBuffer(n * TILE_BYTES);
    const f32 = new Float32Array(bytes);
    const u32 = new Uint32Array(bytes);
    this.pending = [];
    let { next, view } = this;
    for (let i = 0; i < n; i++) {
      if (next === this.cols * this.rows) [next, view] = [0, zoomed(view, this.canvas.width)];
      const tx = next % this.cols;
      const ty = Math.floor(next / this.cols);
      const maxIter = iterationsFor(view.step, this.canvas.width);
      // Pixel (0, 0) of the tile; the canvas' top row is the largest imaginary part.
      f32[i * 4] = view.center[0] + (tx * TILE - this.canvas.width / 2) * view.step;
      f32[i * 4 + 1] = view.center[1] + (this.canvas.height / 2 - (ty + 1) * TILE + 1) * view.step;
      f32[i * 4 + 2] = view.step;
      u32[i * 4 + 3] = maxIter;
      this.pending.push({ tx, ty, maxIter, frame: view.frame, after: [next + 1, view] });
      next++;
    }
    return new Uint8Array(bytes);
  }

  /** The kernel accepted the first `n` tiles of the last `make`: remember them, move on. */
  commit(n) {
    for (let i = 0; i < n; i++) this.sent.push(this.pending[i]);
    if (n > 0) [this.next, this.view] = this.pending[n - 1].after;
    this.pending = [];
  }

  /** Paints answers (packed `array<u32, 64>` each) onto their tiles. */
  paint(bytes) {
    const counts = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    const { data, width } = this.image;
    for (let m = 0; m < counts.length / 64; m++) {
      const tile = this.sent.shift();
      if (!tile) break; // answers from before a reset
      for (let p = 0; p < 64; p++) {
        const n = counts[m * 64 + p];
        // Row p/8 of the tile has the smallest imaginary part at the bottom: flip it.
        const px = tile.tx * TILE + (p % TILE);
        const py = tile.ty * TILE + (TILE - 1 - Math.floor(p / TILE));
        const color = n >= tile.maxIter ? 0 : this.palette[n % this.palette.length];
        const o = (py * width + px) * 4;
        data[o] = (color >> 16) & 255;
        data[o + 1] = (color >> 8) & 255;
        data[o + 2] = color & 255;
        data[o + 3] = 255;
      }
      this.drawn++;
      this.shownFrame = tile.frame;
      this.shownMaxIter = tile.maxIter;
    }
    this.dirty = true;
  }

  /** Puts the painted pixels on screen (once per render, not once per answer). */
  flush() {
    if (!this.dirty) return;
    this.ctx.putImageData(this.image, 0, 0);
    this.dirty = false;
  }

  /** "frame 12 · zoom ×28 · max_iter 310" for the page. */
  describe() {
    const zoom = START.width / this.canvas.width / this.view.step;
    return `frame ${this.shownFrame + 1} · zoom ×${zoom < 10 ? zoom.toFixed(1) : Math.round(zoom).toLocaleString("en-US")} · max_iter ${this.shownMaxIter}`;
  }
}

function zoomed(view, width) {
  const step = view.step * ZOOM_PER_FRAME;
  if (step < MIN_STEP) return { center: [...START.center], step: START.width / width, frame: view.frame + 1 };
  const center = view.center.map((c, i) => TARGET[i] + (c - TARGET[i]) * APPROACH_PER_FRAME);
  return { center, step, frame: view.frame + 1 };
}

/** Deeper zooms need more iterations to show the set's edge; the kernel caps them at 1000. */
function iterationsFor(step, width) {
  const zoom = START.width / width / step;
  return Math.min(1000, Math.round(100 + 45 * Math.log2(zoom)));
}

/** A smooth cyclic palette (cosine gradients), as 0xRRGGBB; 0 (black) is the set itself. */
function makePalette(n) {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const t = Math.sqrt(i / 64);
    const c = [0.0, 0.15, 0.35].map((d) => Math.round(255 * (0.5 + 0.5 * Math.cos(2 * Math.PI * (t + d + 0.55)))));
    out[i] = (c[0] << 16) | (c[1] << 8) | c[2];
  }
  out[0] = 0x1b2540;
  return out;
}

/** A queue with O(1) shift (Array.prototype.shift is O(n) on long arrays). */
class Fifo {
  constructor() {
    this.clear();
  }
  clear() {
    this.items = [];
    this.head = 0;
  }
  push(item) {
    this.items.push(item);
  }
  shift() {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head++];
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
  get length() {
    return this.items.length - this.head;
  }
}

// Hand-written WebGPU with no runtime: the floors and limits the runtime is measured against, the
// browser twin of native/src/bench/raw.rs. Everything is created once (device, pipeline, buffers,
// bind groups); a timed step only writes, dispatches, copies, submits and maps, the fastest honest
// way to move a batch through a GPU and back with WebGPU. The WGSL is shaders/bench/raw_doubler.wgsl,
// the very file the native bench compiles, fetched from /shaders/.

/** Invocations per workgroup of `double_values` in shaders/bench/raw_doubler.wgsl. */
const WORKGROUP_SIZE = 64;
export const RAW_DOUBLER_URL = "/shaders/bench/raw_doubler.wgsl";

/**
 * A device of its own (on a fresh adapter request, with the runtime's power preference: the
 * runtime holds its own device), with the raw doubler's pipeline.
 */
export class RawGpu {
  static async open() {
    if (!navigator.gpu) throw new Error("navigator.gpu is missing: no WebGPU in this browser (or not a secure context)");
    const response = await fetch(RAW_DOUBLER_URL);
    if (!response.ok) {
      throw new Error(`fetching ${RAW_DOUBLER_URL} gave HTTP ${response.status}: serve the repository's shaders/ at /shaders/ ` +
        "(pkg-tests/bench.mjs and `node www/serve.mjs` do)");
    }
    const code = await response.text();
    // The runtime asks for the high-performance adapter (its default powerPreference): on a
    // machine with two GPUs, asking for none here would measure the baseline on the other one.
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) throw new Error("requestAdapter() returned null for the raw baseline");
    const device = await adapter.requestDevice({
      label: "raw baseline",
      // The 1M-message batch is 4 MiB, within the defaults; ask for the adapter's own limits
      // anyway so the raw side is never the one held back.
      requiredLimits: {
        maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
        maxBufferSize: adapter.limits.maxBufferSize,
      },
    });
    const lost = { reason: null };
    device.lost.then((info) => { lost.reason = `${info.reason}: ${info.message}`; });
    const module = device.createShaderModule({ label: "raw doubler", code });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === "error");
    if (errors.length) throw new Error(`raw_doubler.wgsl: ${errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join("; ")}`);
    const pipeline = await device.createComputePipelineAsync({
      label: "raw doubler", layout: "auto", compute: { module, entryPoint: "double_values" },
    });
    return new RawGpu(adapter, device, pipeline, lost);
  }

  constructor(adapter, device, pipeline, lost) {
    this.adapter = adapter;
    this.device = device;
    this.pipeline = pipeline;
    this.lost = lost;
    // The submit-and-map floor copies these 4 bytes, so the map must wait for the submit.
    this.floorSource = device.createBuffer({ label: "floor source", size: 4, usage: GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
    new Uint32Array(this.floorSource.getMappedRange()).set([7]);
    this.floorSource.unmap();
    this.floorReadback = readbackBuffer(device, 4);
  }

  /** What the adapter says about itself: vendor, architecture, fallback or not. */
  adapterInfo() {
    const info = this.adapter.info ?? {};
    return {
      vendor: info.vendor ?? "", architecture: info.architecture ?? "", device: info.device ?? "",
      description: info.description ?? "", isFallbackAdapter: Boolean(info.isFallbackAdapter ?? this.adapter.isFallbackAdapter),
    };
  }

  /**
   * The cheapest GPU round trip: one submit (a 4-byte copy, so there is something to wait for:
   * mapping a buffer no submission touches resolves without the GPU) and one map.
   */
  async submitAndMap() {
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(this.floorSource, 0, this.floorReadback, 0, 4);
    this.device.queue.submit([encoder.finish()]);
    const copied = await mapAndRead(this.floorReadback, this.lost);
    if (copied.length !== 1 || copied[0] !== 7) throw new Error(`the floor's 4-byte copy read back ${[...copied]}`);
  }

  /**
   * A doubler for batches of exactly `messages` values over `workgroups` workgroups: one
   * invocation per message up to the device's limit (the textbook grid) unless given.
   */
  doubler(messages, workgroups) {
    return new RawDoubler(this, messages, workgroups);
  }

  destroy() {
    this.device.destroy();
  }
}

/** Buffers and bind group for one batch size, made once. */
class RawDoubler {
  constructor(gpu, messages, workgroups) {
    const { device, pipeline } = gpu;
    const size = Math.max(messages, 1) * 4;
    this.gpu = gpu;
    this.messages = messages;
    this.values = device.createBuffer({ label: "raw values", size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    this.doubled = device.createBuffer({ label: "raw doubled", size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    this.readback = readbackBuffer(device, size);
    this.bindGroup = device.createBindGroup({
      label: "raw doubler",
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: this.values } }, { binding: 1, resource: { buffer: this.doubled } }],
    });
    // One invocation per message, up to the grid limit; the shader's grid-stride loop does the rest.
    const maxGroups = device.limits.maxComputeWorkgroupsPerDimension;
    this.workgroups = workgroups ?? Math.min(Math.max(Math.ceil(messages / WORKGROUP_SIZE), 1), maxGroups);
  }

  /** One batch there and back: `writeBuffer`, one dispatch, one copy, one submit, one map. */
  async run(values) {
    if (values.length !== this.messages) throw new Error(`raw doubler made for ${this.messages} values, got ${values.length}`);
    const { device, pipeline } = this.gpu;
    device.queue.writeBuffer(this.values, 0, values.buffer, values.byteOffset, values.byteLength);
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, this.bindGroup);
    pass.dispatchWorkgroups(this.workgroups);
    pass.end();
    encoder.copyBufferToBuffer(this.doubled, 0, this.readback, 0, this.readback.size);
    device.queue.submit([encoder.finish()]);
    return new Int32Array((await mapAndRead(this.readback, this.gpu.lost)).buffer);
  }

  destroy() {
    for (const buffer of [this.values, this.doubled, this.readback]) buffer.destroy();
  }
}

/** A buffer the host can map: MAP_READ combines only with COPY_DST, hence one apart from the storage buffers. */
function readbackBuffer(device, size) {
  return device.createBuffer({ label: "raw readback", size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
}

/**
 * Maps all of `buffer`, copies it out (the one copy any caller needs to own the answers: the
 * mapped range is detached by `unmap`), unmaps.
 */
async function mapAndRead(buffer, lost) {
  try {
    await buffer.mapAsync(GPUMapMode.READ);
  } catch (e) {
    throw new Error(`mapping the readback buffer failed${lost.reason ? ` (device lost: ${lost.reason})` : ""}: ${e.message}`);
  }
  const copy = new Uint32Array(buffer.getMappedRange().slice(0));
  buffer.unmap();
  return copy;
}

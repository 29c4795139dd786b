//! Hand-written wgpu with no runtime: the floors and limits the runtime is measured against.
//! Everything is created once (device, pipeline, buffers, bind groups); a timed step only
//! writes, dispatches, copies, submits and maps, the fastest honest way to move a batch
//! through a GPU and back with wgpu.

use std::sync::mpsc;

use anyhow::{anyhow, Context};
use wgpu::util::DeviceExt;

/// Invocations per workgroup of `double_values` in shaders/bench/raw_doubler.wgsl.
const WORKGROUP_SIZE: u32 = 64;

/// A device of its own on the runtime's adapter, with the raw doubler's pipeline.
pub struct RawGpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    doubler: wgpu::ComputePipeline,
    /// The submit-and-map floor copies these 4 bytes, so the map must wait for the submit.
    floor_source: wgpu::Buffer,
    floor_readback: wgpu::Buffer,
}

impl RawGpu {
    pub async fn open(adapter: &wgpu::Adapter) -> anyhow::Result<Self> {
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("raw baseline"),
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .context("opening a device for the raw baseline")?;
        let module = device.create_shader_module(wgpu::include_wgsl!("../../../shaders/bench/raw_doubler.wgsl"));
        let doubler = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("raw doubler"),
            layout: None,
            module: &module,
            entry_point: Some("double_values"),
            compilation_options: Default::default(),
            cache: None,
        });
        let floor_source = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("floor source"),
            contents: &7u32.to_le_bytes(),
            usage: wgpu::BufferUsages::COPY_SRC,
        });
        let floor_readback = readback_buffer(&device, 4);
        Ok(RawGpu { device, queue, doubler, floor_source, floor_readback })
    }

    /// The cheapest GPU round trip: one submit (a 4-byte copy, so there is something to wait
    /// for: mapping a buffer no submission touches resolves without the GPU) and one map.
    pub fn submit_and_map(&self) -> anyhow::Result<()> {
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&self.floor_source, 0, &self.floor_readback, 0, 4);
        self.queue.submit([encoder.finish()]);
        let copied: Vec<u32> = map_and_read(&self.device, &self.floor_readback)?;
        anyhow::ensure!(copied == [7], "the floor's 4-byte copy read back {copied:?}");
        Ok(())
    }

    /// A doubler for batches of exactly `messages` values, with one invocation per message up
    /// to the grid limit (the textbook grid).
    pub fn doubler(&self, messages: usize) -> RawDoubler<'_> {
        self.doubler_on_grid(messages, None)
    }

    /// A doubler for batches of exactly `messages` values over `workgroups` workgroups, or the
    /// textbook grid without.
    pub fn doubler_on_grid(&self, messages: usize, workgroups: Option<u32>) -> RawDoubler<'_> {
        let size = (messages.max(1) * 4) as u64;
        let storage = |label, usage| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::STORAGE | usage,
                mapped_at_creation: false,
            })
        };
        let values = storage("raw values", wgpu::BufferUsages::COPY_DST);
        let doubled = storage("raw doubled", wgpu::BufferUsages::COPY_SRC);
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("raw doubler"),
            layout: &self.doubler.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: values.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: doubled.as_entire_binding() },
            ],
        });
        // One invocation per message, up to the grid limit; the shader's grid-stride loop does
        // the rest.
        let max_groups = self.device.limits().max_compute_workgroups_per_dimension;
        let workgroups = workgroups.unwrap_or((messages as u32).div_ceil(WORKGROUP_SIZE).clamp(1, max_groups));
        RawDoubler {
            gpu: self,
            messages,
            values,
            doubled,
            readback: readback_buffer(&self.device, size),
            bind_group,
            workgroups,
        }
    }
}

/// Buffers and bind group for one batch size, made once.
pub struct RawDoubler<'g> {
    gpu: &'g RawGpu,
    messages: usize,
    values: wgpu::Buffer,
    doubled: wgpu::Buffer,
    readback: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    pub workgroups: u32,
}

impl RawDoubler<'_> {
    /// One batch there and back: `write_buffer`, one dispatch, one copy, one submit, one map.
    pub fn run(&self, values: &[i32]) -> anyhow::Result<Vec<i32>> {
        anyhow::ensure!(values.len() == self.messages, "raw doubler made for {} values", self.messages);
        let RawGpu { device, queue, doubler, .. } = self.gpu;
        queue.write_buffer(&self.values, 0, bytemuck::cast_slice(values));
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(doubler);
            pass.set_bind_group(0, &self.bind_group, &[]);
            pass.dispatch_workgroups(self.workgroups, 1, 1);
        }
        encoder.copy_buffer_to_buffer(&self.doubled, 0, &self.readback, 0, self.readback.size());
        queue.submit([encoder.finish()]);
        map_and_read(device, &self.readback)
    }
}

/// `count` raw doublers of one message each, all dispatched in one pass of one submit and
/// read back with one map: what the adapter itself charges per extra kernel in a tick.
pub struct RawFleet<'g> {
    gpu: &'g RawGpu,
    members: Vec<RawDoubler<'g>>,
    readback: wgpu::Buffer,
}

impl RawGpu {
    pub fn fleet(&self, count: usize) -> RawFleet<'_> {
        RawFleet {
            gpu: self,
            members: (0..count).map(|_| self.doubler(1)).collect(),
            readback: readback_buffer(&self.device, 4 * count.max(1) as u64),
        }
    }
}

impl RawFleet<'_> {
    /// `values[i]` to doubler i: one write each, one dispatch each in one pass, one copy each
    /// into a shared readback buffer, one submit, one map.
    pub fn run(&self, values: &[i32]) -> anyhow::Result<Vec<i32>> {
        anyhow::ensure!(values.len() == self.members.len(), "raw fleet of {}", self.members.len());
        let RawGpu { device, queue, doubler, .. } = self.gpu;
        for (member, value) in self.members.iter().zip(values) {
            queue.write_buffer(&member.values, 0, bytemuck::bytes_of(value));
        }
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(doubler);
            for member in &self.members {
                pass.set_bind_group(0, &member.bind_group, &[]);
                pass.dispatch_workgroups(1, 1, 1);
            }
        }
        for (i, member) in self.members.iter().enumerate() {
            encoder.copy_buffer_to_buffer(&member.doubled, 0, &self.readback, 4 * i as u64, 4);
        }
        queue.submit([encoder.finish()]);
        map_and_read(device, &self.readback)
    }
}

/// A buffer the host can map: MAP_READ combines only with COPY_DST, hence one apart from the
/// storage buffers.
fn readback_buffer(device: &wgpu::Device, size: u64) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("raw readback"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// Maps all of `buffer`, waits for the GPU (native only: `poll(Wait)`), copies it out as `T`s
/// (the one copy any caller needs to own the answers), unmaps.
fn map_and_read<T: bytemuck::Pod>(device: &wgpu::Device, buffer: &wgpu::Buffer) -> anyhow::Result<Vec<T>> {
    let (sender, receiver) = mpsc::channel();
    let slice = buffer.slice(..);
    slice.map_async(wgpu::MapMode::Read, move |result| {
        let _ = sender.send(result);
    });
    device.poll(wgpu::PollType::wait_indefinitely()).context("waiting for the GPU")?;
    receiver.recv().map_err(|_| anyhow!("map callback dropped"))?.context("mapping the readback buffer")?;
    let values = bytemuck::pod_collect_to_vec(&slice.get_mapped_range().context("reading the mapped buffer")?);
    buffer.unmap();
    Ok(values)
}

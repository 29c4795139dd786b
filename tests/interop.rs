//! GPU interop, natively (lavapipe): the application's own wgpu work on a runtime's device
//! (`wgpu_device`), reading a copy of a kernel's `state` (`state_to_gpu`) in a compute pass of
//! its own, as a renderer would draw from it. The copy is the application's: later messages do
//! not change it, and it outlives the kernel's removal. What cannot be copied is refused by name.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::mpsc;
use std::time::Duration;

use ringkernel_web::{
    wgpu, BackendChoice, DeviceId, DeviceSpec, Error, ErrorKind, LaunchOptions, Runtime, RuntimeOptions,
    STATE_COPY_USAGES,
};

mod common;
use common::{buckets, doubled_by_own_pass, sums};

const WAIT: Option<Duration> = Some(Duration::from_secs(10));

fn runtime_with(options: RuntimeOptions) -> Runtime {
    pollster::block_on(Runtime::new(options))
        .unwrap_or_else(|e| panic!("these tests need a wgpu adapter (install mesa-vulkan-drivers for lavapipe): {e}"))
}

/// Sends 0..count and receives every answer.
async fn run(rt: &Runtime, id: &str, values: std::ops::Range<i32>) {
    let values: Vec<i32> = values.collect();
    assert_eq!(rt.send_batch(id, &values, WAIT).await.unwrap(), values.len());
    let mut answered = 0;
    while answered < values.len() {
        answered += rt.receive_batch::<i32>(id, values.len() - answered, WAIT).await.unwrap().len();
    }
}

/// The `arrayLength` a pass of the application's own sees for `input` bound with its size, as
/// `STATE_COPY_USAGES` says to bind a copy (without a size, wgpu's 4 extra bytes of a `VERTEX`
/// buffer count natively: one element more).
fn length_seen_by_own_pass(device: &wgpu::Device, queue: &wgpu::Queue, input: &wgpu::Buffer) -> u32 {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("own length"),
        source: wgpu::ShaderSource::Wgsl(
            "@group(0) @binding(0) var<storage, read> input: array<i32>;
             @group(0) @binding(1) var<storage, read_write> output: array<u32>;
             @compute @workgroup_size(1) fn main() { output[0] = arrayLength(&input); }"
                .into(),
        ),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("own length"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let buffer = |usage| {
        device.create_buffer(&wgpu::BufferDescriptor { label: None, size: 4, usage, mapped_at_creation: false })
    };
    let output = buffer(wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
    let staging = buffer(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
    let sized = wgpu::BufferBinding { buffer: input, offset: 0, size: wgpu::BufferSize::new(input.size()) };
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("own length"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::Buffer(sized) },
            wgpu::BindGroupEntry { binding: 1, resource: output.as_entire_binding() },
        ],
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(1, 1, 1);
    }
    encoder.copy_buffer_to_buffer(&output, 0, &staging, 0, 4);
    queue.submit([encoder.finish()]);
    let (sender, receiver) = mpsc::channel();
    staging.slice(..).map_async(wgpu::MapMode::Read, move |result| drop(sender.send(result)));
    device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
    receiver.recv().unwrap().unwrap();
    let length = bytemuck::pod_read_unaligned(&staging.slice(..).get_mapped_range().unwrap());
    staging.unmap();
    length
}

#[test]
fn a_copy_of_a_kernels_state_is_read_by_the_applications_own_pass_on_the_runtimes_device() {
    pollster::block_on(async {
        let rt = runtime_with(RuntimeOptions::default());
        let handle =
            rt.launch_definition(buckets("buckets"), LaunchOptions::default().with_auto_activate()).await.unwrap();
        run(&rt, "buckets", 0..1000).await;
        let (device, queue) = rt.wgpu_device(DeviceId(0)).unwrap().expect("a GPU device");
        let copy = rt.state_to_gpu("buckets").unwrap();
        assert_eq!((copy.size(), copy.usage()), (16, STATE_COPY_USAGES));
        let first: Vec<i32> = sums(0..1000).iter().map(|s| s * 2).collect();
        assert_eq!(doubled_by_own_pass(&device, &queue, &copy, 4), first);
        assert_eq!(length_seen_by_own_pass(&device, &queue, &copy), 4, "bound with its size");
        assert_eq!(rt.read_state_as::<i32>("buckets").await.unwrap(), sums(0..1000));

        // Later messages change the kernel's state, not the copy; a new copy (the handle's
        // too) has them.
        run(&rt, "buckets", 1000..1500).await;
        assert_eq!(doubled_by_own_pass(&device, &queue, &copy, 4), first);
        let used = rt.memory_report().used_bytes;
        let second = handle.state_to_gpu().unwrap();
        assert_eq!(rt.memory_report().used_bytes, used, "the runtime does not count the copy");
        let expected: Vec<i32> = sums(0..1500).iter().map(|s| s * 2).collect();
        assert_eq!(doubled_by_own_pass(&device, &queue, &second, 4), expected);

        // The copies are the application's: they outlive the kernel's buffers.
        rt.terminate("buckets", None).await.unwrap();
        rt.remove("buckets").unwrap();
        assert!(!rt.memory_report().by_kernel.contains_key("buckets"), "the kernel's buffers are gone");
        assert_eq!(doubled_by_own_pass(&device, &queue, &second, 4), expected);
        assert_eq!(handle.state_to_gpu().unwrap_err().kind(), ErrorKind::KernelNotFound);
        rt.shutdown().await.unwrap();
        assert!(matches!(rt.wgpu_device(DeviceId(0)), Err(Error::Disposed)));
    });
}

#[test]
fn what_has_no_state_on_a_gpu_is_refused_by_name() {
    pollster::block_on(async {
        let rt = runtime_with(
            RuntimeOptions::default().with_devices([DeviceSpec::default(), DeviceSpec::new(BackendChoice::Cpu)]),
        );
        assert!(rt.wgpu_device(DeviceId(1)).unwrap().is_none(), "a cpu device has no wgpu device");
        assert_eq!(rt.wgpu_device(DeviceId(2)).unwrap_err().kind(), ErrorKind::OutOfRange);
        assert_eq!(rt.state_to_gpu("nobody").unwrap_err().kind(), ErrorKind::KernelNotFound);
        rt.launch("doubler", LaunchOptions::default().on_device(DeviceId(0))).await.unwrap();
        let no_state = rt.state_to_gpu("doubler").unwrap_err();
        assert_eq!(no_state.kind(), ErrorKind::InvalidArgument, "{no_state}");
        rt.launch_definition(buckets("on-host"), LaunchOptions::default().on_device(DeviceId(1))).await.unwrap();
        let on_host = rt.state_to_gpu("on-host").unwrap_err();
        assert_eq!(on_host.kind(), ErrorKind::BackendUnavailable, "{on_host}");
        assert!(on_host.to_string().contains("readState"), "{on_host}");
        rt.shutdown().await.unwrap();
    });
}

#[test]
fn an_error_of_the_applications_own_work_that_no_scope_catches_fails_the_device_until_recovery() {
    pollster::block_on(async {
        let rt = runtime_with(RuntimeOptions::default());
        rt.launch("doubler", LaunchOptions::default().with_auto_activate()).await.unwrap();
        let (device, _queue) = rt.wgpu_device(DeviceId(0)).unwrap().unwrap();
        // Caught by a scope of the application's: the runtime never hears of it.
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let bad = wgpu::BufferDescriptor {
            label: Some("mappable storage"),
            size: 16,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        };
        let _refused = device.create_buffer(&bad);
        assert!(scope.pop().await.is_some(), "the scope caught the refusal");
        assert_eq!(rt.call_pod::<i32, i32>("doubler", &21, WAIT).await.unwrap(), 42);
        // Uncaught: the device's own fault, as the runtime's would be.
        let _refused = device.create_buffer(&bad);
        let failed = rt.call_pod::<i32, i32>("doubler", &21, WAIT).await.unwrap_err();
        assert_eq!(failed.kind(), ErrorKind::DeviceLost, "{failed}");
        assert!(failed.to_string().contains("uncaptured GPU error"), "{failed}");
        rt.recover().await.unwrap();
        assert_eq!(rt.call_pod::<i32, i32>("doubler", &21, WAIT).await.unwrap(), 42);
        // The recovered device is a new one, which takes the application's work again.
        let (recovered, _) = rt.wgpu_device(DeviceId(0)).unwrap().unwrap();
        let scope = recovered.push_error_scope(wgpu::ErrorFilter::Validation);
        let _made = recovered.create_buffer(&wgpu::BufferDescriptor { usage: wgpu::BufferUsages::STORAGE, ..bad });
        assert!(scope.pop().await.is_none());
        assert_eq!(rt.call_pod::<i32, i32>("doubler", &21, WAIT).await.unwrap(), 42);
        rt.shutdown().await.unwrap();
    });
}

/// A terminated kernel's state outlives a loss of its device: after recovery `read_state` reads
/// it (the checkpoint kept on the host), and `state_to_gpu` copies that onto the recovered
/// device, not refusing it as a kernel on a cpu device.
#[test]
fn a_terminated_kernels_state_is_copied_onto_its_recovered_device() {
    pollster::block_on(async {
        let rt = runtime_with(RuntimeOptions::default());
        rt.launch_definition(buckets("buckets"), LaunchOptions::default().with_auto_activate()).await.unwrap();
        run(&rt, "buckets", 0..100).await;
        rt.terminate("buckets", None).await.unwrap();
        rt.destroy_device_at(DeviceId(0)).unwrap();
        assert_eq!(rt.state_to_gpu("buckets").unwrap_err().kind(), ErrorKind::DeviceLost);
        rt.recover().await.unwrap();
        assert_eq!(rt.read_state_as::<i32>("buckets").await.unwrap(), sums(0..100));
        let copy = rt.state_to_gpu("buckets").unwrap();
        assert_eq!((copy.size(), copy.usage()), (16, STATE_COPY_USAGES));
        let (device, queue) = rt.wgpu_device(DeviceId(0)).unwrap().unwrap();
        let expected: Vec<i32> = sums(0..100).iter().map(|s| s * 2).collect();
        assert_eq!(doubled_by_own_pass(&device, &queue, &copy, 4), expected);
        rt.shutdown().await.unwrap();
    });
}

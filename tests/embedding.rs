//! An application that owns its wgpu device embeds ring kernels on it, written as a user meets
//! the API from its docs alone (`SharedDevice`, `state_to_gpu`, typed handles, batched
//! receives with a minimum), natively on lavapipe: the application opens its device through
//! `ringkernel_web::wgpu` (no wgpu dependency of its own), forwards its handlers as
//! `SharedDevice`'s docs show, runs its own compute pass over a copy of a kernel's state,
//! submits its own work from a thread of its own while the kernels' ticks run, drops the
//! runtime without shutting it down and goes on with its device, a second runtime there too.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use ringkernel_web::{
    wgpu, Error, ErrorKind, KernelDefinition, KernelHandle, KernelState, LaunchOptions, RingMessage, Runtime,
    RuntimeBuilder, SharedDevice, StateElement,
};

mod common;
use common::own_vulkan_device;

const WAIT: Option<Duration> = Some(Duration::from_secs(10));
/// Buckets of the histogram kernel's state.
const BUCKETS: u32 = 8;

/// A sample the histogram kernel counts: `weight` into bucket `value % 8`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable, RingMessage)]
struct Sample {
    value: u32,
    weight: u32,
}

/// The kernel's answer: the sample's bucket and its count once the sample is in.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable, RingMessage)]
struct Seen {
    bucket: u32,
    count: u32,
}

/// `Seen`'s bytes under other names, in another order: what a typed handle must refuse.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable, RingMessage)]
struct Swapped {
    count: u32,
    bucket: u32,
}

/// The histogram kernel: each sample's weight added into `state[value % 8]`.
fn histogram(id: &str) -> KernelDefinition {
    let wgsl = "fn handle(s: Sample) -> Seen {
    let bucket = s.value % 8u;
    let before = atomicAdd(&state[bucket], s.weight);
    return Seen(bucket, before + s.weight);
}";
    KernelDefinition::new(id, Sample::layout(), Seen::layout(), wgsl).with_state(StateElement::AtomicU32, BUCKETS)
}

/// The histogram of `samples` as the kernel counts it.
fn expected(samples: &[Sample]) -> Vec<u32> {
    let mut counts = vec![0; BUCKETS as usize];
    samples.iter().for_each(|s| counts[(s.value % BUCKETS) as usize] += s.weight);
    counts
}

fn samples(range: std::ops::Range<u32>) -> Vec<Sample> {
    range.map(|i| Sample { value: i * 7 + 3, weight: i % 5 + 1 }).collect()
}

/// What the application's own handlers heard.
#[derive(Default)]
struct Heard {
    errors: Mutex<Vec<String>>,
    lost: Mutex<Vec<String>>,
}

/// The application: its device, its queue, its own pipeline (adds a histogram into running
/// totals), its own buffer of totals, and its handlers, which also tell the runtime.
struct App {
    device: wgpu::Device,
    queue: wgpu::Queue,
    shared: SharedDevice,
    pipeline: wgpu::ComputePipeline,
    totals: wgpu::Buffer,
    heard: Arc<Heard>,
}

impl App {
    fn new() -> App {
        // README: "`downlevel_defaults()` is enough".
        let (_, device, queue) = own_vulkan_device(wgpu::Limits::downlevel_defaults());
        let shared = SharedDevice::new(device.clone(), queue.clone());
        let heard = Arc::new(Heard::default());
        let (on_lost, on_error) = (shared.clone(), shared.clone());
        let (lost, errors) = (heard.clone(), heard.clone());
        device.set_device_lost_callback(move |reason, message| {
            lost.lost.lock().unwrap().push(format!("{reason:?}: {message}"));
            on_lost.device_lost(reason, &message);
        });
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            errors.errors.lock().unwrap().push(error.to_string());
            on_error.uncaptured_error(&error);
        }));
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("totals"),
            source: wgpu::ShaderSource::Wgsl(
                "@group(0) @binding(0) var<storage, read> histogram: array<u32>;
                 @group(0) @binding(1) var<storage, read_write> totals: array<u32>;
                 @compute @workgroup_size(8) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
                     if (id.x < arrayLength(&histogram)) { totals[id.x] += histogram[id.x]; }
                 }"
                .into(),
            ),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("totals"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let totals = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("totals"),
            size: u64::from(BUCKETS) * 4,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        queue.write_buffer(&totals, 0, &[0; BUCKETS as usize * 4]);
        App { device, queue, shared, pipeline, totals, heard }
    }

    /// Adds `histogram` (a buffer of `BUCKETS` u32s, the application's or a kernel state's
    /// copy, bound with its size as `STATE_COPY_USAGES`' docs say) into the totals.
    fn add(&self, histogram: &wgpu::Buffer) {
        let size = wgpu::BufferSize::new(u64::from(BUCKETS) * 4);
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("totals"),
            layout: &self.pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer: histogram, offset: 0, size }),
                },
                wgpu::BindGroupEntry { binding: 1, resource: self.totals.as_entire_binding() },
            ],
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(1, 1, 1);
        }
        self.queue.submit([encoder.finish()]);
    }

    /// A histogram buffer of the application's own.
    fn own_histogram(&self, counts: &[u32]) -> wgpu::Buffer {
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("own histogram"),
            size: u64::from(BUCKETS) * 4,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue.write_buffer(&buffer, 0, bytemuck::cast_slice(counts));
        buffer
    }

    /// The totals, read back by the application (its own `map_async` and `poll`).
    fn totals(&self) -> Vec<u32> {
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("totals staging"),
            size: self.totals.size(),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&self.totals, 0, &staging, 0, self.totals.size());
        self.queue.submit([encoder.finish()]);
        let (sender, mapped) = mpsc::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |result| sender.send(result).unwrap());
        self.device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
        mapped.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
        let values = bytemuck::cast_slice(&staging.slice(..).get_mapped_range().unwrap()).to_vec();
        values
    }

    fn runtime(&self) -> Runtime {
        pollster::block_on(RuntimeBuilder::new().shared_device(self.shared.clone()).build()).unwrap()
    }

    /// A buffer of the application's to map for reading, which no submission uses: its map
    /// is ready at the device's next submit or poll, whoever makes it.
    fn readback(&self) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("the application's readback"),
            size: 16,
            usage: wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        })
    }

    fn quiet(&self) {
        assert!(self.heard.errors.lock().unwrap().is_empty(), "{:?}", self.heard.errors.lock().unwrap());
        assert!(self.heard.lost.lock().unwrap().is_empty(), "{:?}", self.heard.lost.lock().unwrap());
    }
}

fn send_sync<T: Send + Sync + 'static>() {}
fn sendable<F: std::future::Future + Send>(future: F) -> F {
    future
}

#[test]
fn an_application_runs_kernels_beside_its_own_work_and_keeps_its_device_after_dropping_the_runtime() {
    // What the application keeps in its own structs and moves to its threads and tasks.
    send_sync::<SharedDevice>();
    send_sync::<Runtime>();
    send_sync::<KernelHandle<Sample, Seen>>();

    let app = Arc::new(App::new());
    let runtime = app.runtime();
    let kernel = pollster::block_on(runtime.launch_definition(
        histogram("histogram"),
        LaunchOptions::default().with_auto_activate().with_queue_capacity(256),
    ))
    .unwrap()
    .typed::<Sample, Seen>()
    .unwrap();

    // The application's own work goes on from a thread of its own (its submissions, its
    // `map_async` and `poll`) while the kernel's ticks run on the same queue.
    let stop = Arc::new(AtomicBool::new(false));
    let own_work = {
        let (app, stop) = (app.clone(), stop.clone());
        std::thread::spawn(move || {
            let ones = app.own_histogram(&[1; BUCKETS as usize]);
            let mut rounds = 0u32;
            while !stop.load(Ordering::Relaxed) || rounds < 3 {
                app.add(&ones);
                assert_eq!(app.totals()[0], rounds + 1);
                rounds += 1;
            }
            rounds
        })
    };

    let all = samples(0..600);
    pollster::block_on(async {
        for chunk in all.chunks(200) {
            sendable(kernel.send_batch(chunk)).await.unwrap();
            // A batch of exactly its answers: at least and at most 200, in order.
            let answers = sendable(kernel.receive_batch_at_least(200, 200, WAIT)).await.unwrap();
            assert_eq!(answers.len(), 200);
            for (sample, seen) in chunk.iter().zip(&answers) {
                assert_eq!(seen.bucket, sample.value % BUCKETS, "answered in order");
            }
        }
    });
    stop.store(true, Ordering::Relaxed);
    let rounds = own_work.join().unwrap();
    app.quiet();

    // The kernel's state, read back and copied on the device for the application's own pass.
    let counts = pollster::block_on(kernel.read_state_as::<u32>()).unwrap();
    assert_eq!(counts, expected(&all));
    let copy = kernel.state_to_gpu().unwrap();
    app.add(&copy);
    let totals = app.totals();
    assert_eq!(totals, counts.iter().map(|c| c + rounds).collect::<Vec<_>>());

    // Dropped without `shutdown()`: the runtime's thread ends, the device stays the application's.
    drop(kernel);
    let (dropped, done) = mpsc::channel();
    std::thread::spawn(move || {
        drop(runtime);
        dropped.send(()).unwrap();
    });
    done.recv_timeout(Duration::from_secs(20)).expect("dropping the runtime returns");
    app.add(&copy);
    app.add(&app.own_histogram(&[10; BUCKETS as usize]));
    assert_eq!(app.totals(), counts.iter().map(|c| 2 * c + rounds + 10).collect::<Vec<_>>());
    app.quiet();

    // A second runtime on the same device, later (a level reloaded): kernels run there again.
    let runtime = app.runtime();
    pollster::block_on(async {
        let kernel = runtime
            .launch_definition(histogram("histogram"), LaunchOptions::default().with_auto_activate())
            .await
            .unwrap()
            .typed::<Sample, Seen>()
            .unwrap();
        let seen = kernel.call(Sample { value: 5, weight: 2 }, Duration::from_secs(10)).await.unwrap();
        assert_eq!(seen, Seen { bucket: 5, count: 2 }, "a fresh state");
        runtime.shutdown().await.unwrap();
    });
    app.add(&app.own_histogram(&[1; BUCKETS as usize]));
    assert_eq!(app.totals()[1], 2 * counts[1] + rounds + 11);
    app.quiet();
}

/// The histogram kernel on `runtime`, with room for `capacity` messages each way, as a typed
/// handle.
fn launched(runtime: &Runtime, capacity: usize) -> KernelHandle<Sample, Seen> {
    let options = LaunchOptions::default().with_auto_activate().with_queue_capacity(capacity);
    pollster::block_on(runtime.launch_definition(histogram("histogram"), options)).unwrap().typed().unwrap()
}

/// Waits until `n` answers are queued.
fn answers_queued<In, Out>(kernel: &KernelHandle<In, Out>, n: usize) {
    let started = Instant::now();
    while kernel.status().unwrap().output_queue_depth < n {
        assert!(started.elapsed() < Duration::from_secs(20), "never {n} answers queued");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn out_of_range(result: ringkernel_web::Result<Vec<Seen>>, mentions: &str) {
    match result {
        Err(Error::OutOfRange(message)) => assert!(message.contains(mentions), "{message}"),
        other => panic!("not OutOfRange: {other:?}"),
    }
}

#[test]
fn batched_receives_with_a_minimum_refuse_bad_bounds_taking_nothing_and_take_what_is_there_when_none_more_come() {
    let app = App::new();
    let runtime = app.runtime();
    let kernel = launched(&runtime, 16);
    pollster::block_on(async {
        kernel.send_batch(&samples(0..3)).await.unwrap();
        answers_queued(&kernel, 3);
        // Bounds refused before anything is taken, each saying what it got.
        out_of_range(kernel.receive_batch_at_least(0, 4, WAIT).await, "min must be at least 1, got 0");
        out_of_range(kernel.receive_batch_at_least(1, 0, WAIT).await, "max must be at least 1, got 0");
        out_of_range(kernel.receive_batch_at_least(5, 4, WAIT).await, "min must be at most its max of 4, got 5");
        // Named as a Rust caller sets it.
        out_of_range(kernel.receive_batch_at_least(17, 32, WAIT).await, "min of 17 could never be met");
        out_of_range(kernel.receive_batch_at_least(17, 32, WAIT).await, "its output_queue_size");
        assert_eq!(kernel.status().unwrap().output_queue_depth, 3, "nothing taken");

        // A zero timeout takes what is there, fewer than the minimum; with none there, `Timeout`.
        let answers = kernel.receive_batch_at_least(5, 8, Some(Duration::ZERO)).await.unwrap();
        assert_eq!(answers.iter().map(|a| a.bucket).collect::<Vec<_>>(), [3, 2, 1]);
        let none = kernel.receive_batch_at_least(1, 8, Some(Duration::ZERO)).await.unwrap_err();
        assert_eq!(none.kind(), ErrorKind::Timeout, "{none}");

        // The packed and `_with` forms of the runtime wait for the minimum as well.
        kernel.send_batch(&samples(0..4)).await.unwrap();
        let packed = runtime.receive_batch_packed_at_least("histogram", 4, 4, WAIT).await.unwrap();
        assert_eq!(packed.len(), 4 * std::mem::size_of::<Seen>());
        kernel.send_batch(&samples(0..2)).await.unwrap();
        let read = runtime.receive_batch_at_least_with("histogram", 2, 2, WAIT, |layout, bytes| {
            (layout.name().to_owned(), bytes.len() / layout.size())
        });
        assert_eq!(read.await.unwrap(), ("Seen".to_owned(), 2));
    });

    // A receive waiting for 10 with 4 there takes the 4 once the kernel is terminated; the
    // next receive hears that the kernel ended, and a refused send hands its sample back.
    pollster::block_on(kernel.send_batch(&samples(0..4))).unwrap();
    answers_queued(&kernel, 4);
    let waiting = {
        let kernel = kernel.clone();
        std::thread::spawn(move || pollster::block_on(kernel.receive_batch_at_least(10, 10, None)))
    };
    std::thread::sleep(Duration::from_millis(100));
    pollster::block_on(kernel.terminate()).unwrap();
    let taken = waiting.join().unwrap().unwrap();
    assert_eq!(taken.len(), 4);
    let ended = pollster::block_on(kernel.receive_batch_at_least(1, 4, WAIT)).unwrap_err();
    assert!(matches!(ended, Error::KernelState { state: KernelState::Terminated, .. }), "{ended:?}");
    let refused = pollster::block_on(kernel.send(Sample { value: 9, weight: 9 })).unwrap_err();
    assert_eq!(refused.message, Sample { value: 9, weight: 9 });
    assert_eq!(refused.error.kind(), ErrorKind::KernelState, "{}", refused.error);
    pollster::block_on(runtime.shutdown()).unwrap();
    app.quiet();
}

#[test]
fn typed_handles_and_typed_state_reads_refuse_the_wrong_types_by_name() {
    let app = App::new();
    let runtime = app.runtime();
    let kernel = launched(&runtime, 16);
    let untyped = runtime.get_kernel("histogram").unwrap();
    // The same bytes under names in another order would swap the answer's fields.
    match untyped.typed::<Sample, Swapped>() {
        Err(Error::MessageFormat { field, problem, .. }) => {
            assert!(field.contains("count") || field.contains("bucket"), "{field}: {problem}")
        }
        other => panic!("{other:?}"),
    }
    match untyped.typed::<Sample, u64Like>() {
        Err(Error::MessageFormat { field, .. }) => assert!(field.contains("u64Like"), "{field}"),
        other => panic!("{other:?}"),
    }
    pollster::block_on(async {
        kernel.send(Sample { value: 1, weight: 4 }).await.unwrap();
        kernel.receive_timeout(Duration::from_secs(10)).await.unwrap();
        assert_eq!(kernel.read_state_as::<u32>().await.unwrap()[1], 4);
        // The state is `atomic<u32>`: read as f32 its counts would be their bits.
        let error = kernel.read_state_as::<f32>().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{error}");
        assert!(error.to_string().contains("atomic<u32>") && error.to_string().contains("f32"), "{error}");
        let error = runtime.read_state_as::<u8>("histogram").await.unwrap_err();
        assert!(error.to_string().contains("'histogram'"), "{error}");
        runtime.shutdown().await.unwrap();
    });
    app.quiet();
}

/// A message of the right size and another layout (one field of two words).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable, RingMessage)]
struct u64Like {
    words: ringkernel_web::Vec2<u32>,
}

#[test]
fn the_applications_callback_that_the_runtimes_submission_runs_is_refused_instead_of_locking_up_the_runtime() {
    let app = App::new();
    let runtime = app.runtime();
    let kernel = launched(&runtime, 16);
    // A buffer no submission uses is mapped at the device's next maintain: with the application
    // polling nothing, that is inside the runtime's next tick submission (wgpu's `Queue::submit`
    // runs ready callbacks before it returns), on the thread that holds the runtime's table.
    let buffer = app.readback();
    let (called, calls) = mpsc::channel();
    let from_callback = kernel.clone();
    buffer.slice(..).map_async(wgpu::MapMode::Read, move |mapped| {
        // What an application does with what it read back: feed a kernel, copy its state.
        let sent = from_callback.try_send(Sample { value: 7, weight: 1 }).map_err(|refused| match refused {
            ringkernel_web::TrySendError::Refused(sample, error) => (error, sample),
            full => panic!("{full:?}"),
        });
        let copied = from_callback.state_to_gpu().map(drop);
        let status = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| from_callback.status().map(drop)))
            .map_err(|panic| panic.downcast_ref::<String>().cloned().unwrap_or_default());
        called.send((mapped.is_ok(), sent, copied, status)).unwrap();
    });
    pollster::block_on(kernel.send(Sample { value: 1, weight: 2 })).unwrap();
    let (mapped, sent, copied, status) =
        calls.recv_timeout(Duration::from_secs(20)).expect("the callback returned: the runtime did not lock up");
    assert!(mapped);
    let (error, sample) = sent.unwrap_err();
    assert_eq!(sample, Sample { value: 7, weight: 1 }, "the refused sample is handed back");
    assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{error}");
    assert!(error.to_string().contains("called from a wgpu callback"), "{error}");
    let copied = copied.unwrap_err();
    assert!(copied.to_string().contains("called from a wgpu callback"), "{copied}");
    assert!(status.unwrap_err().contains("called from a wgpu callback"), "a call that returns no error panics");

    // The runtime goes on: the sample sent before is answered, the refused one never queued.
    pollster::block_on(async {
        assert_eq!(kernel.receive_timeout(Duration::from_secs(10)).await.unwrap(), Seen { bucket: 1, count: 2 });
        assert_eq!(kernel.read_state_as::<u32>().await.unwrap()[7], 0);
        runtime.shutdown().await.unwrap();
    });
    app.quiet();
}

#[test]
fn the_applications_callback_that_a_kernels_release_runs_is_refused_instead_of_locking_up_the_runtime() {
    let app = App::new();
    let runtime = app.runtime();
    let kernel = launched(&runtime, 16);
    // Ending a kernel drops its rings, and with them submits nothing to the queue (to free
    // their memory), under the runtime's table lock: wgpu runs ready callbacks inside that
    // submit too, with no tick submitting.
    let buffer = app.readback();
    let (called, calls) = mpsc::channel();
    let from_callback = runtime.clone();
    buffer.slice(..).map_async(wgpu::MapMode::Read, move |mapped| {
        let status = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(from_callback.summary())))
            .map_err(|panic| panic.downcast_ref::<String>().cloned().unwrap_or_default());
        let launched =
            pollster::block_on(from_callback.launch_definition(histogram("another"), LaunchOptions::default()));
        called.send((mapped.is_ok(), status, launched.map(drop))).unwrap();
    });
    // On a thread of its own: the terminate itself would wait forever on this one otherwise.
    let (ended, terminated) = mpsc::channel();
    std::thread::spawn(move || ended.send(pollster::block_on(kernel.terminate())).unwrap());
    let (mapped, status, launched) =
        calls.recv_timeout(Duration::from_secs(20)).expect("the callback returned: the runtime did not lock up");
    assert!(mapped);
    let launched = launched.unwrap_err();
    assert_eq!(launched.kind(), ErrorKind::InvalidArgument, "{launched}");
    assert!(launched.to_string().contains("called from a wgpu callback"), "{launched}");
    assert!(status.unwrap_err().contains("called from a wgpu callback"), "a call that returns no error panics");
    terminated.recv_timeout(Duration::from_secs(20)).expect("the terminate returned").unwrap();
    pollster::block_on(runtime.shutdown()).unwrap();
    app.quiet();
}

//! Helpers shared by test files (`mod common;`); each test binary uses a different part:
//! - a message that carries its sender and sequence number, so every answer says where it came
//!   from and where it belongs, and checkers for exactly-once and per-sender FIFO delivery (the
//!   soak and concurrency tests, native and browser);
//! - runtimes on a chosen backend and bounded polling (natively);
//! - the browser's JavaScript helpers, in [`web`].
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use ringkernel_web::{Error, ErrorKind};

/// How many messages of a batch send were queued: all (`Ok`), or as many as `QueueFull`'s
/// `accepted` says when its timeout ran out first.
#[track_caller]
pub fn accepted(sent: Result<usize, ringkernel_web::BatchSendError>) -> usize {
    match sent {
        Ok(all) => all,
        Err(cut) => match cut.error {
            Error::QueueFull { accepted, .. } => {
                assert_eq!(accepted, cut.accepted, "the batch's error and its `QueueFull` agree");
                accepted
            }
            other => panic!("the batch was refused: {other}"),
        },
    }
}

/// The JavaScript name of an error's kind: the tables and the model were written in the API
/// contract's names, which the browser tests check on real `Error`s.
pub fn js_name(error: &Error) -> &'static str {
    match error.kind() {
        ErrorKind::KernelNotFound => "KernelNotFoundError",
        ErrorKind::KernelState => "KernelStateError",
        ErrorKind::QueueFull => "QueueFullError",
        ErrorKind::Timeout => "TimeoutError",
        ErrorKind::MessageFormat => "MessageFormatError",
        ErrorKind::KernelCompile => "KernelCompileError",
        ErrorKind::MessageDropped => "MessageDroppedError",
        ErrorKind::BackendUnavailable => "BackendUnavailableError",
        ErrorKind::DeviceLost => "DeviceLostError",
        ErrorKind::Disposed => "RuntimeDisposedError",
        ErrorKind::Draining => "RuntimeDrainingError",
        ErrorKind::CircuitOpen => "CircuitOpenError",
        ErrorKind::Overloaded => "OverloadedError",
        ErrorKind::InvalidArgument => "TypeError",
        ErrorKind::OutOfRange => "RangeError",
        other => panic!("{other:?} needs its contract name here"),
    }
}

/// What the bad-input tables compare before and after each refused operation: kernel ids,
/// active ids, pump ticks, each kernel's record, and its `errors` apart (a refusal may count
/// there). Natively the parts are Rust values; in the browser, JSON text and numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot<Ids, Ticks, Kernel, Errors> {
    pub ids: Ids,
    pub active: Ids,
    pub ticks: Ticks,
    pub kernels: BTreeMap<String, Kernel>,
    pub errors: BTreeMap<String, Errors>,
}

impl<Ids: Debug + PartialEq, Ticks: Debug + PartialEq, Kernel: Debug + PartialEq, Errors: Debug + PartialEq>
    Snapshot<Ids, Ticks, Kernel, Errors>
{
    /// What differs from `expected`, one line each.
    pub fn diff(&self, expected: &Self) -> String {
        let mut lines = Vec::new();
        if (&expected.ids, &expected.active, &expected.ticks) != (&self.ids, &self.active, &self.ticks) {
            lines.push(format!(
                "ids/active/ticks {:?} -> {:?}",
                (&expected.ids, &expected.active, &expected.ticks),
                (&self.ids, &self.active, &self.ticks)
            ));
        }
        for id in expected.kernels.keys().chain(self.kernels.keys()).collect::<BTreeSet<_>>() {
            let (was, is) = (expected.kernels.get(id), self.kernels.get(id));
            if was != is {
                lines.push(format!("{id}: {was:?}\n      -> {is:?}"));
            }
            let (was, is) = (expected.errors.get(id), self.errors.get(id));
            if was != is {
                lines.push(format!("{id}: errors should be {was:?}, is {is:?}"));
            }
        }
        lines.join("\n    ")
    }
}

#[cfg(target_arch = "wasm32")]
pub mod web;

#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use ringkernel_web::kernel::{doubler_request, doubler_response, host};
    use ringkernel_web::{
        kernel, wgpu, BackendChoice, KernelDefinition, LaunchOptions, Runtime, RuntimeOptions, StateElement,
    };

    /// A runtime on `backend`; a GPU backend without an adapter is a failure that says what to
    /// install, never a skip.
    pub fn runtime_on(backend: BackendChoice) -> Runtime {
        pollster::block_on(Runtime::new(RuntimeOptions::default().with_backend(backend))).unwrap_or_else(|e| {
            panic!("{backend:?}: {e} (GPU tests need a wgpu adapter; install mesa-vulkan-drivers for lavapipe)")
        })
    }

    /// `n` answers of kernel `id` as i32s, each receive waiting at most `timeout`.
    pub async fn receive_n(rt: &Runtime, id: &str, n: usize, timeout: Duration) -> Vec<i32> {
        let mut answers = Vec::new();
        while answers.len() < n {
            answers.extend(rt.receive_batch::<i32>(id, n - answers.len(), Some(timeout)).await.unwrap());
        }
        answers
    }

    /// Registers `definitions`, launches each with its queue size from `sizes` (1024 where
    /// `sizes` has none), activates them and connects them in order; returns their ids.
    pub async fn launch_chain(rt: &Runtime, definitions: Vec<KernelDefinition>, sizes: &[usize]) -> Vec<String> {
        let ids: Vec<String> = definitions.iter().map(|d| d.id.clone()).collect();
        for (i, definition) in definitions.into_iter().enumerate() {
            let id = definition.id.clone();
            kernel::register_or_replace(definition);
            let size = sizes.get(i).copied().unwrap_or(1024);
            rt.launch(&id, LaunchOptions::default().with_queue_capacity(size)).await.unwrap();
            rt.activate(&id).await.unwrap();
        }
        for pair in ids.windows(2) {
            rt.connect(&pair[0], &pair[1]).await.unwrap();
        }
        ids
    }

    /// Polls `done` until it holds. The bound only keeps a broken runtime from hanging the suite;
    /// it is generous so that a slow machine never fails here.
    #[track_caller]
    pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < Duration::from_secs(60), "waited a minute for {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// A device of the application's own, as a renderer opens one: its own instance and Vulkan
    /// adapter (lavapipe here), with `limits` (the shared-device and embedding tests).
    pub fn own_vulkan_device(limits: wgpu::Limits) -> (wgpu::Adapter, wgpu::Device, wgpu::Queue) {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        desc.backends = wgpu::Backends::VULKAN;
        let instance = wgpu::Instance::new(desc);
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .expect("these tests need a Vulkan adapter (install mesa-vulkan-drivers for lavapipe)");
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("the application's device"),
            required_limits: limits,
            ..Default::default()
        }))
        .unwrap();
        (adapter, device, queue)
    }

    // A kernel with state, and the application's own GPU work with a copy of it (the interop
    // and shared-device tests).

    /// Adds each message's value to `state[value % 4]` and answers it unchanged.
    pub fn buckets(id: &str) -> KernelDefinition {
        let wgsl = "fn handle(msg: Request) -> Response {
        atomicAdd(&state[u32(msg.value) % 4u], msg.value);
        return Response(msg.value);
    }";
        KernelDefinition::new(id, doubler_request(), doubler_response(), wgsl)
            .with_state(StateElement::AtomicI32, 4)
            .with_host_handler(host::typed(|value: &i32, state: &mut [u32]| {
                state[(*value as u32 % 4) as usize] = state[(*value as u32 % 4) as usize].wrapping_add(*value as u32);
                Some(*value)
            }))
    }

    /// What [`buckets`] holds after `values`.
    pub fn sums(values: std::ops::Range<i32>) -> Vec<i32> {
        let mut sums = vec![0; 4];
        values.for_each(|v| sums[(v % 4) as usize] += v);
        sums
    }

    /// `len` values of `input` doubled by a compute pass of the application's own on `device`,
    /// reading `input` (bound with its first `len` values' size) as read-only storage: what a copy
    /// of a kernel's state is for. A buffer of another device is a validation error here.
    pub fn doubled_by_own_pass(device: &wgpu::Device, queue: &wgpu::Queue, input: &wgpu::Buffer, len: u32) -> Vec<i32> {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("own pass"),
            source: wgpu::ShaderSource::Wgsl(
                "@group(0) @binding(0) var<storage, read> input: array<i32>;
                 @group(0) @binding(1) var<storage, read_write> output: array<i32>;
                 @compute @workgroup_size(1) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
                     output[id.x] = input[id.x] * 2;
                 }"
                .into(),
            ),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("own pass"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let bytes = u64::from(len) * 4;
        let buffer = |usage| {
            device.create_buffer(&wgpu::BufferDescriptor { label: None, size: bytes, usage, mapped_at_creation: false })
        };
        let output = buffer(wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
        let staging = buffer(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
        let input = wgpu::BufferBinding { buffer: input, offset: 0, size: wgpu::BufferSize::new(bytes) };
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("own pass"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::Buffer(input) },
                wgpu::BindGroupEntry { binding: 1, resource: output.as_entire_binding() },
            ],
        });
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(len, 1, 1);
        }
        encoder.copy_buffer_to_buffer(&output, 0, &staging, 0, bytes);
        queue.submit([encoder.finish()]);
        let (sender, receiver) = mpsc::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |result| drop(sender.send(result)));
        device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
        receiver.recv().unwrap().unwrap();
        let values = bytemuck::pod_collect_to_vec(&staging.slice(..).get_mapped_range().unwrap());
        staging.unmap();
        values
    }
}

/// A message tagged with its sender (`tag`) and its place in that sender's sequence (`seq`).
/// Both directions use it, so connected stages share one layout.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Tagged {
    pub tag: u32,
    pub seq: u32,
    pub value: u32,
}

/// WGSL message name, field names and types, in layout order.
pub const TAGGED_NAME: &str = "Tagged";
pub const TAGGED_FIELDS: [&str; 3] = ["tag", "seq", "value"];

impl Tagged {
    /// The `seq`-th message of sender `tag`; its value is derived from both.
    pub fn new(tag: u32, seq: u32) -> Tagged {
        Tagged { tag, seq, value: seq.wrapping_mul(2_654_435_761).wrapping_add(tag) }
    }
}

/// `Tagged`'s layout: three `u32`s, checked against the Rust struct.
pub fn tagged_layout() -> ringkernel_web::MessageLayout {
    TAGGED_FIELDS
        .iter()
        .fold(ringkernel_web::MessageLayout::builder(TAGGED_NAME), |b, name| {
            b.field(name, ringkernel_web::FieldType::U32)
        })
        .build_for::<Tagged>()
        .unwrap()
}

/// What stage `stage` (0-based) of a pipeline does to a value: `value * 3 + stage + 1`, wrapping
/// like WGSL's `u32`. Each stage differs, so an answer shows that every stage ran exactly once.
pub fn stage_value(value: u32, stage: u32) -> u32 {
    value.wrapping_mul(3).wrapping_add(stage + 1)
}

/// The WGSL `handle` of stage `stage`.
pub fn stage_wgsl(stage: u32) -> String {
    format!(
        "fn handle(m: {TAGGED_NAME}) -> {TAGGED_NAME} {{ return {TAGGED_NAME}(m.tag, m.seq, m.value * 3u + {}u); }}",
        stage + 1
    )
}

/// The answer to `message` after `stages` stages.
pub fn answer_after(message: Tagged, stages: u32) -> Tagged {
    let value = (0..stages).fold(message.value, stage_value);
    Tagged { value, ..message }
}

/// Checks one receiver's stream when it is the only receiver: for every sender, answers arrive
/// exactly in send order with none missing or repeated (`seq` is the next one expected), and each
/// is the right answer to its message.
pub struct InOrder {
    next: Vec<u32>,
    stages: u32,
    pub received: u64,
}

impl InOrder {
    pub fn new(senders: usize, stages: u32) -> InOrder {
        InOrder { next: vec![0; senders], stages, received: 0 }
    }

    #[track_caller]
    pub fn check(&mut self, answers: &[Tagged]) {
        for answer in answers {
            let next = self.next.get_mut(answer.tag as usize).unwrap_or_else(|| panic!("unknown sender in {answer:?}"));
            assert_eq!(answer.seq, *next, "sender {}: answer out of order, repeated or lost", answer.tag);
            assert_eq!(*answer, answer_after(Tagged::new(answer.tag, answer.seq), self.stages), "wrong answer");
            *next += 1;
        }
        self.received += answers.len() as u64;
    }

    /// How many answers each sender has had.
    pub fn per_sender(&self) -> &[u32] {
        &self.next
    }
}

/// Checks one receiver's stream when several receivers share a kernel. Each receiver takes its
/// batches one after another from the head of the kernel's single output queue, so its stream is
/// a subsequence of the global answer order: per-sender FIFO there means strictly increasing
/// `seq` per sender here. Exactly-once is checked over all receivers with [`all_exactly_once`].
pub struct Increasing {
    last: Vec<Option<u32>>,
    stages: u32,
    pub seen: Vec<Tagged>,
}

impl Increasing {
    pub fn new(senders: usize, stages: u32) -> Increasing {
        Increasing { last: vec![None; senders], stages, seen: Vec::new() }
    }

    #[track_caller]
    pub fn check(&mut self, answers: &[Tagged]) {
        for answer in answers {
            let last = self.last.get_mut(answer.tag as usize).unwrap_or_else(|| panic!("unknown sender in {answer:?}"));
            assert!(last.is_none_or(|l| answer.seq > l), "sender {}: {} after {last:?}", answer.tag, answer.seq);
            assert_eq!(*answer, answer_after(Tagged::new(answer.tag, answer.seq), self.stages), "wrong answer");
            *last = Some(answer.seq);
        }
        self.seen.extend_from_slice(answers);
    }
}

/// Every `(sender, seq)` with `seq < per_sender[sender]` was received exactly once over all
/// receivers, and nothing else was.
#[track_caller]
pub fn all_exactly_once(receivers: &[Increasing], per_sender: &[u32]) {
    let mut seen: Vec<Vec<u8>> = per_sender.iter().map(|&n| vec![0; n as usize]).collect();
    for answer in receivers.iter().flat_map(|r| &r.seen) {
        let count = seen
            .get_mut(answer.tag as usize)
            .and_then(|s| s.get_mut(answer.seq as usize))
            .unwrap_or_else(|| panic!("{answer:?} was never sent"));
        *count += 1;
        assert_eq!(*count, 1, "{answer:?} received twice");
    }
    for (tag, seen) in seen.iter().enumerate() {
        let missing = seen.iter().filter(|&&c| c == 0).count();
        assert_eq!(missing, 0, "sender {tag}: {missing} of {} answers never arrived", seen.len());
    }
}

//! User-defined and built-in ring kernels on a real adapter (lavapipe without a GPU): every
//! built-in against a CPU reference on random inputs, nested message structs, `#[repr(C)]`
//! messages, state with atomics, handlers that drop, and compile errors at the user's own line
//! and column.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use ringkernel_web::kernel::{
    self, doubler_request, doubler_response, StateElement, HISTOGRAM_BINS, HISTOGRAM_SAMPLES, MANDELBROT_MAX_ITER,
    MANDELBROT_TILE, VECTOR_LANES,
};
use ringkernel_web::message::Scalar;
use ringkernel_web::{
    Error, ErrorKind, FieldType, KernelDefinition, LaunchOptions, MessageLayout, Runtime, RuntimeOptions, Value,
};

fn runtime() -> Runtime {
    pollster::block_on(Runtime::new(RuntimeOptions::default()))
        .unwrap_or_else(|e| panic!("these tests need a wgpu adapter (install mesa-vulkan-drivers for lavapipe): {e}"))
}

async fn start(rt: &Runtime, id: &str) {
    rt.launch(id, LaunchOptions::default()).await.unwrap();
    rt.activate(id).await.unwrap();
}

async fn start_definition(rt: &Runtime, definition: KernelDefinition) {
    let id = definition.id.clone();
    rt.launch_definition(definition, LaunchOptions::default()).await.unwrap();
    rt.activate(&id).await.unwrap();
}

/// Sends `inputs` as one batch and receives exactly as many answers.
async fn round_trip<In: bytemuck::Pod, Out: bytemuck::Pod>(rt: &Runtime, id: &str, inputs: &[In]) -> Vec<Out> {
    assert_eq!(rt.send_batch(id, inputs, Some(Duration::from_millis(10_000))).await.unwrap(), inputs.len());
    let mut answers = Vec::new();
    while answers.len() < inputs.len() {
        answers.extend(
            rt.receive_batch::<Out>(id, inputs.len() - answers.len(), Some(Duration::from_millis(10_000)))
                .await
                .unwrap(),
        );
    }
    answers
}

fn floats(rng: &mut fastrand::Rng, n: u32, scale: f32) -> Vec<f32> {
    (0..n).map(|_| (rng.f32() * 2.0 - 1.0) * scale).collect()
}

fn assert_close(gpu: f32, cpu: f32, what: &str) {
    // WGSL allows fused multiply-add, so allow a few ulps of difference.
    let tolerance = 1e-5 * cpu.abs().max(1.0);
    assert!((gpu - cpu).abs() <= tolerance, "{what}: GPU {gpu} vs CPU {cpu}");
}

const LANES: usize = VECTOR_LANES as usize;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct VectorPair {
    a: [f32; LANES],
    b: [f32; LANES],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Saxpy {
    a: f32,
    x: [f32; LANES],
    y: [f32; LANES],
}

#[test]
fn vector_add_and_saxpy_match_the_cpu() {
    let rt = runtime();
    let mut rng = fastrand::Rng::with_seed(7);
    pollster::block_on(async {
        start(&rt, "vector_add").await;
        start(&rt, "saxpy").await;
        let pairs: Vec<VectorPair> = (0..300)
            .map(|_| VectorPair {
                a: floats(&mut rng, VECTOR_LANES, 1e3).try_into().unwrap(),
                b: floats(&mut rng, VECTOR_LANES, 1e3).try_into().unwrap(),
            })
            .collect();
        let sums: Vec<[f32; LANES]> = round_trip(&rt, "vector_add", &pairs).await;
        for (pair, sum) in pairs.iter().zip(&sums) {
            for ((a, b), sum) in pair.a.iter().zip(&pair.b).zip(sum) {
                assert_eq!(*sum, a + b, "vector_add");
            }
        }
        let inputs: Vec<Saxpy> = (0..300)
            .map(|_| Saxpy {
                a: rng.f32() * 4.0 - 2.0,
                x: floats(&mut rng, VECTOR_LANES, 100.0).try_into().unwrap(),
                y: floats(&mut rng, VECTOR_LANES, 100.0).try_into().unwrap(),
            })
            .collect();
        let results: Vec<[f32; LANES]> = round_trip(&rt, "saxpy", &inputs).await;
        for (input, result) in inputs.iter().zip(&results) {
            for ((x, y), result) in input.x.iter().zip(&input.y).zip(result) {
                assert_close(*result, input.a * x + y, "saxpy");
            }
        }
    });
}

#[test]
fn histogram_state_matches_the_cpu_and_survives_terminate() {
    let rt = runtime();
    let mut rng = fastrand::Rng::with_seed(11);
    pollster::block_on(async {
        start(&rt, "histogram").await;
        assert_eq!(rt.read_state_as::<u32>("histogram").await.unwrap(), vec![0; HISTOGRAM_BINS as usize]);
        let mut expected = vec![0u32; HISTOGRAM_BINS as usize];
        let mut binned_expected = Vec::new();
        let mut messages = Vec::new();
        for _ in 0..500 {
            // Some samples fall outside [0, 1) and must not be binned.
            let samples: Vec<f32> = (0..HISTOGRAM_SAMPLES).map(|_| rng.f32() * 1.2 - 0.1).collect();
            let mut binned = 0;
            for &v in &samples {
                if (0.0..1.0).contains(&v) {
                    expected[((v * HISTOGRAM_BINS as f32) as usize).min(HISTOGRAM_BINS as usize - 1)] += 1;
                    binned += 1;
                }
            }
            binned_expected.push(binned);
            messages.push(<[f32; HISTOGRAM_SAMPLES as usize]>::try_from(samples).unwrap());
        }
        let acks: Vec<u32> = round_trip(&rt, "histogram", &messages).await;
        assert_eq!(acks, binned_expected);
        assert_eq!(rt.read_state_as::<u32>("histogram").await.unwrap(), expected);

        // State persists across dispatches and stays readable after terminate, until remove.
        let read_back = || rt.telemetry("histogram").unwrap().unwrap().bytes_from_device;
        let before = read_back();
        let more: Vec<u32> = round_trip(&rt, "histogram", &[[0.5f32; HISTOGRAM_SAMPLES as usize]]).await;
        assert_eq!(more, vec![HISTOGRAM_SAMPLES]);
        // The tick copied back the counters (32 bytes), the one answer and the state's checkpoint.
        assert_eq!(read_back() - before, 32 + 4 + 4 * HISTOGRAM_BINS as u64, "bytes read back by one tick");
        expected[32] += HISTOGRAM_SAMPLES;
        rt.terminate("histogram", Some(Duration::from_millis(5000))).await.unwrap();
        assert_eq!(rt.read_state_as::<u32>("histogram").await.unwrap(), expected);
        rt.remove("histogram").unwrap();
        assert!(matches!(rt.read_state("histogram").await, Err(Error::KernelNotFound { .. })));

        start(&rt, "doubler").await;
        let err = rt.read_state("doubler").await.unwrap_err();
        assert!(matches!(&err, Error::InvalidArgument(m) if m.contains("has no state")), "{err}");
    });
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Tile {
    origin: [f32; 2],
    step: f32,
    max_iter: u32,
}

const PIXELS: usize = (MANDELBROT_TILE * MANDELBROT_TILE) as usize;

/// The CPU reference of shaders/kernels/mandelbrot.wgsl.
fn mandelbrot_cpu(tile: &Tile) -> [u32; PIXELS] {
    let limit = tile.max_iter.min(MANDELBROT_MAX_ITER);
    std::array::from_fn(|p| {
        let (px, py) = ((p as u32 % MANDELBROT_TILE) as f32, (p as u32 / MANDELBROT_TILE) as f32);
        let (cx, cy) = (tile.origin[0] + tile.step * px, tile.origin[1] + tile.step * py);
        let (mut x, mut y, mut n) = (0f32, 0f32, 0);
        while n < limit && x * x + y * y <= 4.0 {
            (x, y) = (x * x - y * y + cx, 2.0 * x * y + cy);
            n += 1;
        }
        n
    })
}

#[test]
fn mandelbrot_tiles_match_the_cpu() {
    let rt = runtime();
    let mut rng = fastrand::Rng::with_seed(3);
    pollster::block_on(async {
        start(&rt, "mandelbrot").await;
        // Deep inside the set every pixel reaches the limit; far outside each escapes at once.
        let inside = Tile { origin: [-0.2, -0.1], step: 0.02, max_iter: 200 };
        let outside = Tile { origin: [3.0, 3.0], step: 0.1, max_iter: 200 };
        let capped = Tile { origin: [-0.1, 0.0], step: 0.001, max_iter: 1_000_000 };
        let mut tiles = vec![inside, outside, capped];
        tiles.extend((0..200).map(|_| Tile {
            origin: [rng.f32() * 3.0 - 2.2, rng.f32() * 2.4 - 1.2],
            step: 0.002 + rng.f32() * 0.02,
            max_iter: 64 + rng.u32(0..256),
        }));
        let answers: Vec<[u32; PIXELS]> = round_trip(&rt, "mandelbrot", &tiles).await;
        assert_eq!(answers[0], [200; PIXELS]);
        assert_eq!(answers[1], mandelbrot_cpu(&outside));
        assert_eq!(answers[2], [MANDELBROT_MAX_ITER; PIXELS], "max_iter is capped");
        // Near the set's boundary escape times are chaotic: a fused multiply-add on the GPU can
        // change a pixel's count, so allow a small share of pixels to differ.
        let (mut differing, mut total) = (0, 0);
        for (tile, answer) in tiles.iter().zip(&answers) {
            let cpu = mandelbrot_cpu(tile);
            differing += cpu.iter().zip(answer).filter(|(c, g)| c != g).count();
            total += PIXELS;
        }
        assert!(differing * 100 <= total, "{differing} of {total} pixels differ from the CPU reference");
    });
}

// ---- user-defined kernels ----

fn vec3() -> FieldType {
    FieldType::vector(Scalar::F32, 3)
}

#[test]
fn nested_structs_travel_through_a_user_kernel() {
    let rt = runtime();
    pollster::block_on(async {
        let body =
            MessageLayout::builder("Body").field("position", vec3()).field("mass", FieldType::F32).build().unwrap();
        let system = MessageLayout::builder("System")
            .field("tag", FieldType::U32)
            .field("bodies", FieldType::array(FieldType::message(&body), 3))
            .build()
            .unwrap();
        let center = MessageLayout::builder("Center")
            .field("tag", FieldType::U32)
            .field("center", FieldType::message(&body))
            .build()
            .unwrap();
        let wgsl = "
// Center of mass of three bodies; the answer's mass is the total.
fn handle(msg: System) -> Center {
    var total = 0.0;
    var weighted = vec3<f32>(0.0);
    for (var i = 0; i < 3; i++) {
        total += msg.bodies[i].mass;
        weighted += msg.bodies[i].position * msg.bodies[i].mass;
    }
    return Center(msg.tag, Body(weighted / total, total));
}";
        start_definition(&rt, KernelDefinition::new("center", system, center, wgsl)).await;
        let body_value = |x: f64, y: f64, mass: f64| {
            Value::Struct(vec![("position".into(), Value::List(vec![x, y, 0.0])), ("mass".into(), Value::Number(mass))])
        };
        let message = [
            ("tag", Value::from(9u32)),
            (
                "bodies",
                Value::Array(vec![body_value(0.0, 0.0, 2.0), body_value(4.0, 0.0, 1.0), body_value(0.0, 3.0, 1.0)]),
            ),
        ];
        let answer = rt.call("center", &message, Some(Duration::from_millis(10_000))).await.unwrap();
        // Answers keep their scalar types: u32 and f32 values, an f32 vector.
        let center = Value::Struct(vec![
            ("position".into(), Value::F32s(vec![1.0, 0.75, 0.0])),
            ("mass".into(), Value::F32(4.0)),
        ]);
        assert_eq!(answer, vec![("tag".to_owned(), Value::U32(9)), ("center".to_owned(), center)]);
    });
}

/// A `#[repr(C)]` mirror of a WGSL struct with a vec3: the explicit pad matches WGSL's.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
struct Particle {
    position: [f32; 3],
    _pad: f32,
    velocity: [f32; 3],
    mass: f32,
}

#[test]
fn pod_structs_with_vec3_match_the_wgsl_layout() {
    let rt = runtime();
    pollster::block_on(async {
        let particle = MessageLayout::builder("Particle")
            .field("position", vec3())
            .field("velocity", vec3())
            .field("mass", FieldType::F32)
            .build_for::<Particle>()
            .unwrap();
        assert_eq!(particle.fields()[2].offset, 28, "mass sits in velocity's vec3 tail");
        let wgsl = "fn handle(p: Particle) -> Particle {
    return Particle(p.position + p.velocity * 0.5, p.velocity, p.mass);
}";
        start_definition(&rt, KernelDefinition::new("step", particle.clone(), particle, wgsl)).await;
        let p = Particle { position: [1.0, 2.0, 3.0], _pad: 0.0, velocity: [2.0, 4.0, -6.0], mass: 7.0 };
        let next: Particle = rt.call_pod("step", &p, Some(Duration::from_millis(10_000))).await.unwrap();
        assert_eq!(next, Particle { position: [2.0, 4.0, 0.0], ..p });
    });
}

fn keep_even() -> KernelDefinition {
    KernelDefinition::new(
        "keep_even",
        doubler_request(),
        doubler_response(),
        "// Drops odd values; answers even ones with half of them.
fn handle(msg: Request, out: ptr<function, Response>) -> bool {
    if (msg.value % 2 != 0) {
        return false;
    }
    (*out).result = msg.value / 2;
    return true;
}",
    )
}

#[test]
fn a_handler_may_drop_and_drops_are_counted() {
    let rt = runtime();
    pollster::block_on(async {
        start_definition(&rt, keep_even()).await;
        let values: Vec<i32> = (0..1000).collect();
        assert_eq!(rt.send_batch("keep_even", &values, None).await.unwrap(), 1000);
        let mut answers = Vec::new();
        while answers.len() < 500 {
            answers
                .extend(rt.receive_batch::<i32>("keep_even", 1000, Some(Duration::from_millis(10_000))).await.unwrap());
        }
        assert_eq!(answers, (0..500).collect::<Vec<i32>>(), "kept answers arrive in order");
        assert!(matches!(rt.receive("keep_even", Some(Duration::from_millis(50))).await, Err(Error::Timeout { .. })));
        let t = rt.telemetry("keep_even").unwrap().unwrap();
        assert_eq!(
            (t.messages_sent, t.messages_processed, t.messages_dropped, t.messages_received),
            (1000, 1000, 500, 500)
        );

        // A call whose message is dropped is told so; a kept one gets its answer.
        let dropped = rt.call("keep_even", &[("value", Value::from(3))], Some(Duration::from_millis(10_000))).await;
        assert!(
            matches!(&dropped, Err(Error::MessageDropped { id, failure: None, .. }) if id == "keep_even"),
            "{dropped:?}"
        );
        assert_eq!(dropped.unwrap_err().kind(), ErrorKind::MessageDropped);
        let kept =
            rt.call("keep_even", &[("value", Value::from(8))], Some(Duration::from_millis(10_000))).await.unwrap();
        assert_eq!(kept, vec![("result".to_owned(), Value::I32(4))]);
    });
}

#[test]
fn user_state_with_atomics_counts_across_dispatches() {
    let rt = runtime();
    pollster::block_on(async {
        let wgsl = "// state[0]: messages seen; state[1]: running sum of values.
fn handle(msg: Request) -> Response {
    let seen = atomicAdd(&state[0], 1);
    atomicAdd(&state[1], msg.value);
    return Response(seen);
}";
        let def = KernelDefinition::new("counter", doubler_request(), doubler_response(), wgsl)
            .with_state(StateElement::AtomicI32, 2);
        start_definition(&rt, def).await;
        for round in 1..=3 {
            let values: Vec<i32> = (1..=100).collect();
            let seen: Vec<i32> = round_trip(&rt, "counter", &values).await;
            let mut sorted = seen.clone();
            sorted.sort();
            // Each message saw a distinct earlier count, whatever order invocations ran in.
            assert_eq!(sorted, ((round - 1) * 100..round * 100).collect::<Vec<i32>>());
            assert_eq!(rt.read_state_as::<i32>("counter").await.unwrap(), vec![round * 100, round * 5050]);
        }
    });
}

/// A kernel with state whose handler never reads it (nor writes it, for now): its state is still
/// bound, every element type, and it answers. (The drain reads the state so that its binding is
/// used: the pipeline's bind group layout is the one WebGPU derives from what it uses.)
#[test]
fn state_that_the_handler_leaves_alone_is_bound_all_the_same() {
    let rt = runtime();
    pollster::block_on(async {
        let wgsl = "fn handle(msg: Request) -> Response { return Response(msg.value * 3); }";
        for (i, element) in StateElement::ALL.into_iter().enumerate() {
            let id = format!("unread-state-{i}");
            let def = KernelDefinition::new(&id, doubler_request(), doubler_response(), wgsl).with_state(element, 4);
            start_definition(&rt, def).await;
            let answers: Vec<i32> = round_trip(&rt, &id, &[1, 2, 3]).await;
            assert_eq!(answers, [3, 6, 9], "{element}");
            assert_eq!(rt.read_state(&id).await.unwrap(), [0; 16], "{element}");
        }
    });
}

// ---- compile errors ----

fn compile_error(rt: &Runtime, wgsl: &str) -> (Option<u32>, Option<u32>, String) {
    let def = KernelDefinition::new("broken", doubler_request(), doubler_response(), wgsl);
    match pollster::block_on(rt.launch_definition(def, LaunchOptions::default())) {
        Err(Error::KernelCompile { line, column, message, .. }) => (line, column, message),
        other => panic!("expected a KernelCompile error, got {other:?}"),
    }
}

#[test]
fn compile_errors_report_the_users_line_and_column() {
    let rt = runtime();
    // An undefined name on line 3, column 21 of the user's source.
    let (line, column, message) =
        compile_error(&rt, "// doubles\nfn handle(msg: Request) -> Response {\n    return Response(nope * 2);\n}");
    assert_eq!((line, column), (Some(3), Some(21)), "{message}");
    assert!(message.contains("nope"), "{message}");

    // A syntax error: the missing semicolon is reported where the next token starts.
    let (line, _, message) =
        compile_error(&rt, "fn handle(msg: Request) -> Response {\n    let x = 1\n    return Response(x);\n}");
    assert_eq!(line, Some(3), "{message}");

    // A type error inside a helper.
    let (line, column, message) = compile_error(
        &rt,
        "fn helper(v: i32) -> i32 {\n  return v + 1.5;\n}\nfn handle(msg: Request) -> Response { return Response(helper(msg.value)); }",
    );
    assert_eq!(line, Some(2), "{message}");
    assert!(column.is_some(), "{message}");

    // Signature problems are caught before the compiler, at the user's position.
    let (line, column, message) = compile_error(&rt, "fn handle(msg: Reqest) -> Response { return Response(0); }");
    assert_eq!((line, column), (Some(1), Some(16)));
    assert!(message.contains("`Reqest`") && message.contains("`Request`"), "{message}");
    let (line, _, message) = compile_error(&rt, "fn process(msg: Request) -> Response { return Response(0); }");
    assert_eq!(line, None);
    assert!(message.contains("no `fn handle`"), "{message}");
    // Natively naga checks the handler; its texts are said in WGSL's terms (no arena indices,
    // types as WGSL writes them), at the operand at fault.
    let (line, column, message) =
        compile_error(&rt, "fn handle(msg: Request) -> Response {\n    return Response(1u);\n}");
    assert_eq!((line, column), (Some(2), Some(21)), "{message}");
    assert_eq!(message, "argument 1 of `Response(…)` is `u32`, but its field `result` is `i32`");
    // An assignment to a `let`: at the assignment, with naga's note.
    let (line, column, message) = compile_error(
        &rt,
        "fn handle(msg: Request) -> Response {\n    let x = 1;\n    x = 2;\n    return Response(x);\n}",
    );
    assert_eq!((line, column), (Some(3), Some(5)), "{message}");
    assert!(message.ends_with("consider declaring `x` with `var` instead of `let`"), "{message}");
    // Nothing was left behind: the id can be launched again once the source is fixed.
    assert!(rt.kernel_ids().is_empty());
}

#[test]
fn an_atomic_state_assigned_with_an_equals_sign_is_refused_as_the_browser_refuses_it() {
    // naga's IR stores into atomics as into anything, so its WGSL front end took this; WGSL,
    // the browser's compiler and Dawn's do not ("cannot assign 'u32' to 'atomic<u32>'").
    let rt = runtime();
    let wgsl =
        "fn handle(msg: Request) -> Response {\n    state[0] = u32(msg.value);\n    return Response(msg.value);\n}";
    let def = KernelDefinition::new("assigns", doubler_request(), doubler_response(), wgsl)
        .with_state(StateElement::AtomicU32, 4);
    match pollster::block_on(rt.launch_definition(def, LaunchOptions::default())) {
        Err(Error::KernelCompile { line, column, message, .. }) => {
            assert_eq!((line, column), (Some(2), Some(5)), "{message}");
            assert!(message.contains("`atomicStore(&state[i], value)`"), "{message}");
        }
        other => panic!("expected a KernelCompile error, got {other:?}"),
    }
    let stores = "fn handle(msg: Request) -> Response {\n    atomicStore(&state[0], u32(msg.value));\n    return Response(i32(atomicLoad(&state[0])));\n}";
    let def = KernelDefinition::new("stores", doubler_request(), doubler_response(), stores)
        .with_state(StateElement::AtomicU32, 4);
    pollster::block_on(start_definition(&rt, def));
    let answers: Vec<i32> = pollster::block_on(round_trip(&rt, "stores", &[7]));
    assert_eq!(answers, [7]);
}

#[test]
fn every_builtin_is_registered() {
    for id in ["doubler", "echo", "vector_add", "saxpy", "histogram", "mandelbrot"] {
        assert!(kernel::lookup(id).is_some(), "{id}");
    }
}

//! The bad-input table in the browser, through the JavaScript surface (`wasm-pack test`). Every
//! row is a call as JavaScript makes it (`runtime[method](...args)`, or a kernel handle's
//! `handle[method](...args)` from `runtime.getKernel(id)`, through wasm-bindgen's glue) and the
//! `name` of the `Error` it must reject with, run against one runtime whose kernels sit in known
//! states with known queued messages and answers. For every row:
//!
//! - the call rejects (or throws) a JavaScript `Error` with that `name`, and with the
//!   properties the row gives (`kernelId`, `field`, `state`, `action`, `line`, `column`);
//! - nothing changed: `kernelIds`, `activeKernels` and every kernel's `getSummary()` record
//!   (states, depths, counters, bytes, routes) and the pump's `ticks` are as before, except
//!   `errors`, which counts failed message operations as natively (see `tests/bad_input.rs`):
//!   one more for a send, call or receive refused as malformed, for a full queue, for the
//!   kernel's state, or timed out; nothing for anything else.
//!
//! Afterwards every queued message and answer is still there, in order. The JavaScript-only
//! kinds matter most here: `NaN`, `Infinity`, `1.5`, `2**40`, strings, BigInts, `null`,
//! `undefined`, objects and symbols where numbers belong, non-numeric timeouts, typed arrays of
//! the wrong size or element width, non-object messages, and bad definitions.
#![cfg(target_arch = "wasm32")]

mod common;

use std::collections::BTreeMap;

use common::web::{array, error_name, get, invoke, js, js_function, object};
use js_sys::{Array, BigInt, Object, Promise, Reflect, Symbol, JSON};
use ringkernel_web::kernel::MAX_STATE_LEN;
use ringkernel_web::lifecycle::Action;
use ringkernel_web::message::MAX_MESSAGE_SIZE;
use ringkernel_web::wasm::{define_message, managed_kernel, ring_kernel, JsRuntime};
use ringkernel_web::KernelState;
use ringkernel_web::{Runtime, RuntimeOptions};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Launched, never activated: holds inputs 1 and 2.
const LAUNCHED: &str = "web-bad-launched";
/// Active: holds the answers 6 and 8, unreceived.
const ACTIVE: &str = "web-bad-active";
/// Deactivated: holds input 5.
const PAUSED: &str = "web-bad-paused";
/// Terminated: holds the answer 14.
const DONE: &str = "web-bad-done";
/// Terminated with nothing left: `receive` is refused.
const GONE: &str = "web-bad-gone";
/// Launched with a queue of 2, full: inputs 9 and 10.
const FULL: &str = "web-bad-full";
/// Launched, with an input of every field kind; holds nothing.
const SHAPES: &str = "web-bad-shapes";
/// Registered, never launched.
const FRESH: &str = "web-bad-fresh";
/// Launched, terminated and removed; the world keeps a `KernelHandle` to it.
const REMOVED: &str = "web-bad-removed";
/// webgpu only: `created` while its WGSL compiles, held by running rows within microtasks.
const CREATING: &str = "web-bad-creating";
/// webgpu only: `terminating` while its queue drains, held the same way.
const TERMINATING: &str = "web-bad-terminating";
const NOWHERE: &str = "no-such-kernel";

const DOUBLER_WGSL: &str = "fn handle(msg: Request) -> Response { return Response(msg.value * 2); }";
const SHAPE_WGSL: &str = "fn handle(m: BadShape) -> Response { return Response(m.i); }";

fn s(text: &str) -> JsValue {
    text.into()
}

fn n(number: f64) -> JsValue {
    number.into()
}

fn timeout(ms: f64) -> JsValue {
    object(&[("timeout", n(ms))])
}

fn value(v: JsValue) -> JsValue {
    object(&[("value", v)])
}

fn int32s(values: &[i32]) -> JsValue {
    js_sys::Int32Array::from(values).into()
}

/// `new Ctor(arg)` for a global constructor (`Float64Array`, `BigInt64Array`, `DataView`, ...).
fn construct(ctor: &str, arg: JsValue) -> JsValue {
    let ctor: js_sys::Function = get(&js_sys::global(), ctor).dyn_into().unwrap();
    Reflect::construct(&ctor, &array(&[arg]).unchecked_into()).unwrap()
}

/// `[[[...1...]]]`, `depth` arrays deep.
fn deep_array(depth: u32) -> JsValue {
    js_function("n", "let v = 1; for (let i = 0; i < n; i++) v = [v]; return v;")
        .call1(&JsValue::NULL, &n(depth as f64))
        .unwrap()
}

/// `{ value: { value: ... } }`, `depth` objects deep.
fn deep_object(depth: u32) -> JsValue {
    js_function("n", "let v = 1; for (let i = 0; i < n; i++) v = { value: v }; return v;")
        .call1(&JsValue::NULL, &n(depth as f64))
        .unwrap()
}

fn request() -> JsValue {
    define_message("Request".into(), object(&[("value", s("i32"))])).unwrap()
}

fn response() -> JsValue {
    define_message("Response".into(), object(&[("result", s("i32"))])).unwrap()
}

/// A doubler definition (`{ value: i32 }` → `{ result: value * 2 }`) for both backends.
fn doubler_definition() -> JsValue {
    object(&[
        ("input", request()),
        ("output", response()),
        ("wgsl", s(DOUBLER_WGSL)),
        ("handler", js_function("m", "return { result: m.value * 2 };").into()),
    ])
}

/// Registers (or, for the next test on this page, registers again) a doubler under `id`.
fn register_doubler(id: &str) {
    let definition = doubler_definition();
    Reflect::set(&definition, &"id".into(), &s(id)).unwrap();
    Reflect::set(&definition, &"replace".into(), &true.into()).unwrap();
    ring_kernel(definition).unwrap();
}

fn register_shapes() {
    let inner = define_message("BadInner".into(), object(&[("a", s("u32")), ("v", s("vec2<f32>"))])).unwrap();
    let shape = define_message(
        "BadShape".into(),
        object(&[
            ("i", s("i32")),
            ("u", s("u32")),
            ("f", s("f32")),
            ("p", s("vec3<f32>")),
            ("arr", s("array<i32, 4>")),
            ("inner", inner),
            ("items", s("array<BadInner, 2>")),
        ]),
    )
    .unwrap();
    ring_kernel(object(&[
        ("id", s(SHAPES)),
        ("input", shape),
        ("output", response()),
        ("wgsl", s(SHAPE_WGSL)),
        ("handler", js_function("m", "return { result: m.i };").into()),
        ("replace", true.into()),
    ]))
    .unwrap();
}

/// A well-formed `BadShape` with `field` replaced by (or, if new, added as) `v`.
fn shape_with(field: &str, v: JsValue) -> JsValue {
    let inner = |a: f64| object(&[("a", n(a)), ("v", array(&[n(0.0), n(0.0)]))]);
    let message = object(&[
        ("i", n(-1.0)),
        ("u", n(1.0)),
        ("f", n(0.5)),
        ("p", array(&[n(1.0), n(2.0), n(3.0)])),
        ("arr", int32s(&[1, 2, 3, 4])),
        ("inner", inner(1.0)),
        ("items", array(&[inner(2.0), inner(3.0)])),
    ]);
    Reflect::set(&message, &field.into(), &v).unwrap();
    message
}

// ---- the world ----

struct World {
    runtime: JsValue,
    backend: &'static str,
    held: Vec<(KernelState, &'static str)>,
    /// The `KernelHandle` `launch` gave for [`REMOVED`] (`null` in worlds without it).
    removed: JsValue,
}

async fn call(world: &World, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    invoke(&world.runtime, method, args).await
}

/// The runtime object as JavaScript gets it from `RingKernelRuntime.create`.
async fn create(backend: &str) -> JsValue {
    js(JsRuntime::create(Some(object(&[("backend", s(backend))]))))
        .await
        .unwrap_or_else(|e| panic!("{backend} runtime could not start (is --enable-unsafe-webgpu set?): {e:?}"))
}

impl World {
    /// Launches the kernels of the stable states and fills their queues; waits until the pump
    /// has nothing left to do.
    async fn new(backend: &'static str) -> World {
        for id in [LAUNCHED, ACTIVE, PAUSED, DONE, GONE, FULL, FRESH, REMOVED] {
            register_doubler(id);
        }
        register_shapes();
        let world = World { runtime: create(backend).await, backend, held: Vec::new(), removed: JsValue::NULL };
        let queue = |size: f64| object(&[("queueSize", n(size))]);
        let ok = |result: Result<JsValue, JsValue>| result.unwrap_or_else(|e| panic!("setting up: {e:?}"));
        let w = &world;
        ok(call(w, "launch", &[s(LAUNCHED), JsValue::NULL, queue(4.0)]).await);
        ok(call(w, "sendBatch", &[s(LAUNCHED), int32s(&[1, 2])]).await);
        ok(call(w, "launch", &[s(ACTIVE), JsValue::NULL, queue(4.0)]).await);
        ok(call(w, "activate", &[s(ACTIVE)]).await);
        ok(call(w, "sendBatch", &[s(ACTIVE), int32s(&[3, 4])]).await);
        ok(call(w, "launch", &[s(PAUSED), JsValue::NULL, queue(4.0)]).await);
        ok(call(w, "activate", &[s(PAUSED)]).await);
        ok(call(w, "deactivate", &[s(PAUSED)]).await);
        ok(call(w, "send", &[s(PAUSED), value(n(5.0))]).await);
        ok(call(w, "launch", &[s(DONE), JsValue::NULL, queue(4.0)]).await);
        ok(call(w, "send", &[s(DONE), value(n(7.0))]).await);
        ok(call(w, "terminate", &[s(DONE), timeout(30_000.0)]).await);
        ok(call(w, "launch", &[s(GONE), JsValue::NULL, queue(4.0)]).await);
        ok(call(w, "terminate", &[s(GONE), timeout(30_000.0)]).await);
        ok(call(w, "launch", &[s(FULL), JsValue::NULL, queue(2.0)]).await);
        ok(call(w, "sendBatch", &[s(FULL), int32s(&[9, 10])]).await);
        ok(call(w, "launch", &[s(SHAPES), JsValue::NULL, queue(4.0)]).await);
        let removed = ok(call(w, "launch", &[s(REMOVED)]).await);
        ok(call(w, "terminate", &[s(REMOVED), timeout(30_000.0)]).await);
        ok(call(w, "remove", &[s(REMOVED)]).await);
        while depth(w, ACTIVE, "outputQueueDepth") < 2.0 {
            sleep(1).await;
        }
        let held = vec![
            (KernelState::Launched, LAUNCHED),
            (KernelState::Active, ACTIVE),
            (KernelState::Deactivated, PAUSED),
            (KernelState::Terminated, DONE),
        ];
        World { held, removed, ..world }
    }

    /// Every queued message and answer is still there, in order, and the kernels still work.
    async fn assert_queues_intact(&self) {
        assert_eq!(receive_n(self, ACTIVE, 2).await, [6, 8], "{ACTIVE}'s queued answers");
        assert_eq!(receive_n(self, DONE, 1).await, [14], "{DONE}'s queued answer");
        call(self, "activate", &[s(LAUNCHED)]).await.unwrap();
        assert_eq!(receive_n(self, LAUNCHED, 2).await, [2, 4], "{LAUNCHED}'s queued inputs");
        call(self, "reactivate", &[s(PAUSED)]).await.unwrap();
        assert_eq!(receive_n(self, PAUSED, 1).await, [10], "{PAUSED}'s queued input");
        call(self, "activate", &[s(FULL)]).await.unwrap();
        assert_eq!(receive_n(self, FULL, 2).await, [18, 20], "{FULL}'s queued inputs");
        let answer = call(self, "call", &[s(ACTIVE), value(n(50.0)), timeout(30_000.0)]).await.unwrap();
        assert_eq!(get(&answer, "result").as_f64(), Some(100.0), "still answers");
    }
}

fn depth(world: &World, id: &str, which: &str) -> f64 {
    let telemetry = Reflect::get(&world.runtime, &"getTelemetry".into()).unwrap();
    let telemetry = telemetry.unchecked_into::<js_sys::Function>().call1(&world.runtime, &s(id)).unwrap();
    get(&telemetry, which).as_f64().unwrap()
}

async fn sleep(ms: i32) {
    let promise = Promise::new(&mut |resolve, _| {
        web_sys_timeout(&resolve, ms);
    });
    js(promise).await.unwrap();
}

fn web_sys_timeout(callback: &js_sys::Function, ms: i32) {
    let set_timeout: js_sys::Function = get(&js_sys::global(), "setTimeout").dyn_into().unwrap();
    set_timeout.call2(&JsValue::NULL, callback, &ms.into()).unwrap();
}

async fn receive_n(world: &World, id: &str, count: usize) -> Vec<i32> {
    let mut out = Vec::new();
    while out.len() < count {
        let options =
            object(&[("max", n((count - out.len()) as f64)), ("timeout", n(30_000.0)), ("packed", true.into())]);
        let bytes = call(world, "receiveBatch", &[s(id), options]).await.unwrap();
        out.extend(bytemuck::pod_collect_to_vec::<u8, i32>(&js_sys::Uint8Array::new(&bytes).to_vec()));
    }
    out
}

/// Lets queued promise jobs run once (no macrotask: nothing the GPU reports can run meanwhile).
async fn microtask() {
    js(Promise::resolve(&JsValue::UNDEFINED)).await.unwrap();
}

fn state_of(world: &World, id: &str) -> Option<String> {
    let get_state: js_sys::Function = get(&world.runtime, "getState").dyn_into().unwrap();
    get_state.call1(&world.runtime, &s(id)).ok().and_then(|state| state.as_string())
}

// ---- "nothing changed" ----

/// What a bad input must leave alone: ids, active ids, ticks, and each kernel's summary record
/// without the fields that move on their own (uptime, throughput, error rate) and `errors`,
/// which is kept apart.
type Snapshot = common::Snapshot<String, f64, String, f64>;

fn snapshot(world: &World) -> Snapshot {
    let rt = &world.runtime;
    let summary: js_sys::Function = get(rt, "getSummary").dyn_into().unwrap();
    let summary = summary.call0(rt).unwrap();
    let per_kernel = get(&summary, "perKernel");
    let (mut kernels, mut errors) = (BTreeMap::new(), BTreeMap::new());
    for entry in Object::entries(per_kernel.unchecked_ref()).iter() {
        let entry: Array = entry.unchecked_into();
        let (id, record) = (entry.get(0).as_string().unwrap(), entry.get(1));
        errors.insert(id.clone(), get(&record, "errors").as_f64().unwrap());
        for moving in ["uptimeMs", "throughput", "errorRate", "errors"] {
            Reflect::delete_property(record.unchecked_ref::<Object>(), &moving.into()).unwrap();
        }
        kernels.insert(id, JSON::stringify(&record).unwrap().as_string().unwrap());
    }
    let text = |key: &str| JSON::stringify(&get(rt, key)).unwrap().as_string().unwrap();
    Snapshot {
        ids: text("kernelIds"),
        active: text("activeKernels"),
        ticks: get(&summary, "ticks").as_f64().unwrap(),
        kernels,
        errors,
    }
}

// ---- rows ----

/// What a row calls.
#[derive(Clone)]
enum Op {
    /// `runtime[method](...args)`.
    Method(&'static str, Vec<JsValue>),
    /// `defineMessage(name, fields)`; afterwards `name` must still be unknown.
    DefineMessage(String, JsValue),
    /// `ringKernel(definition)`; afterwards the registry must hold for the definition's id what
    /// it held before (nothing, or the very same definition).
    RingKernel(JsValue),
    /// `runtime.getKernel(id)[method](...args)`: the kernel's `KernelHandle` as JavaScript has
    /// it; for [`REMOVED`], the handle the world kept.
    Handle(&'static str, &'static str, Vec<JsValue>),
    /// `RingKernelRuntime.create(options)`: a runtime of its own, which the world never sees.
    Create(JsValue),
}

struct Row {
    name: String,
    op: Op,
    expect: &'static str,
    /// Properties the error must carry, as strings (numbers compare by their text).
    props: Vec<(&'static str, String)>,
}

fn row(name: impl Into<String>, op: Op, expect: &'static str) -> Row {
    Row { name: name.into(), op, expect, props: Vec::new() }
}

fn method(name: &'static str, args: &[JsValue]) -> Op {
    Op::Method(name, args.to_vec())
}

impl Row {
    fn prop(mut self, key: &'static str, value: impl ToString) -> Self {
        self.props.push((key, value.to_string()));
        self
    }
}

fn handle(id: &'static str, method: &'static str, args: &[JsValue]) -> Op {
    Op::Handle(id, method, args.to_vec())
}

/// Whether the runtime counts this failure in the kernel's `errors` (as natively: not a receive
/// from a terminated kernel with none left, the end of its answers).
fn counted(op: &Op, name: &str, error: &JsValue) -> bool {
    let method = match op {
        Op::Method(method, _) | Op::Handle(_, method, _) => *method,
        _ => return false,
    };
    let text = |key: &str| Reflect::get(error, &key.into()).ok().and_then(|v| v.as_string());
    let ended = name == "KernelStateError"
        && text("state").as_deref() == Some("terminated")
        && text("action").as_deref() == Some("receive");
    match method {
        "terminate" => name == "TimeoutError",
        "send" | "trySend" | "sendBatch" | "call" | "receive" | "tryReceive" | "receiveBatch" => {
            !ended && ["MessageFormatError", "QueueFullError", "TimeoutError", "KernelStateError"].contains(&name)
        }
        _ => false,
    }
}

/// The kernel whose `errors` may count the failure: the first argument, if it names one, or
/// the handle's kernel.
fn target(op: &Op) -> Option<String> {
    match op {
        Op::Method(_, args) => args.first().and_then(|id| id.as_string()),
        Op::Handle(id, _, _) => Some((*id).to_owned()),
        _ => None,
    }
}

async fn run(world: &World, op: &Op) -> Result<JsValue, JsValue> {
    match op {
        Op::Method(name, args) => call(world, name, args).await,
        Op::DefineMessage(name, fields) => define_message(name.as_str().into(), fields.clone()),
        Op::RingKernel(definition) => ring_kernel(definition.clone()),
        Op::Handle(id, method, args) => {
            let handle = match *id {
                REMOVED => world.removed.clone(),
                id => call(world, "getKernel", &[s(id)]).await.expect("getKernel"),
            };
            assert!(handle.is_object(), "a handle of {id}");
            match *method {
                // A getter, read as JavaScript reads a property.
                "state" => Reflect::get(&handle, &"state".into()),
                method => invoke(&handle, method, args).await,
            }
        }
        Op::Create(options) => js(JsRuntime::create(Some(options.clone()))).await,
    }
}

/// What the registry holds for a `ringKernel` row's id.
fn registered(op: &Op) -> Option<std::sync::Arc<ringkernel_web::KernelDefinition>> {
    match op {
        Op::RingKernel(definition) if definition.is_object() => {
            get(definition, "id").as_string().and_then(|id| ringkernel_web::kernel::lookup(&id))
        }
        _ => None,
    }
}

/// Runs one row and says what went wrong, if anything.
async fn check(world: &World, row: &Row) -> Result<(), String> {
    let before = snapshot(world);
    let registered_before = registered(&row.op);
    let result = run(world, &row.op).await;
    let after = snapshot(world);
    let error = match result {
        Ok(value) => return Err(format!("was accepted (gave {value:?})")),
        Err(error) => error,
    };
    let (name, message) = error_name(&error);
    if name != row.expect {
        return Err(format!("rejected with {name} instead of {}: {message}", row.expect));
    }
    for (key, expected) in &row.props {
        let found = Reflect::get(&error, &(*key).into()).unwrap_or(JsValue::UNDEFINED);
        let found = match found.is_null() {
            true => Some("null".to_owned()),
            false => found.as_string().or_else(|| found.as_f64().map(|n| n.to_string())),
        };
        if found.as_deref() != Some(expected.as_str()) {
            return Err(format!("{key} is {found:?}, not {expected:?}: {message}"));
        }
    }
    let mut expected = before.clone();
    if counted(&row.op, &name, &error) {
        let id = target(&row.op).expect("counted failures name their kernel");
        *expected.errors.get_mut(&id).expect("a counted failure is of an existing kernel") += 1.0;
    }
    if after != expected {
        return Err(format!("changed the runtime ({message}):\n    {}", after.diff(&expected)));
    }
    // Definitions that failed must not have registered (or replaced) anything.
    match &row.op {
        Op::DefineMessage(name, _) if ringkernel_web::message::registry::lookup(name).is_some() => {
            return Err(format!("registered a message type '{name}'"))
        }
        Op::RingKernel(_) => {
            let same = match (registered_before, registered(&row.op)) {
                (None, None) => true,
                (Some(before), Some(after)) => std::sync::Arc::ptr_eq(&before, &after),
                _ => false,
            };
            if !same {
                return Err("changed the kernel registry".into());
            }
        }
        _ => {}
    }
    Ok(())
}

/// Runs every row and panics listing every row that failed.
async fn run_table(world: &World, table: &str, rows: Vec<Row>) -> usize {
    try_table(world, table, rows).await.unwrap_or_else(|report| panic!("{report}"))
}

/// [`run_table`], returning the report of what failed instead of panicking.
async fn try_table(world: &World, table: &str, rows: Vec<Row>) -> Result<usize, String> {
    let mut failures = Vec::new();
    for row in &rows {
        if let Err(why) = check(world, row).await {
            failures.push(format!("- {}: {why}", row.name));
        }
    }
    web_sys_log(&format!("bad inputs tried in the browser ({table}, {}): {}", world.backend, rows.len()));
    match failures.len() {
        0 => Ok(rows.len()),
        failed => Err(format!("{table}: {failed} of {} rows failed:\n{}", rows.len(), failures.join("\n"))),
    }
}

fn web_sys_log(text: &str) {
    let console = get(&js_sys::global(), "console");
    let log: js_sys::Function = get(&console, "log").dyn_into().unwrap();
    log.call1(&console, &s(text)).unwrap();
}

fn long_id() -> String {
    "x".repeat(129)
}

/// Unknown, empty and over-long ids for every method that takes a kernel id.
fn id_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for bad in [NOWHERE.to_owned(), String::new(), long_id()] {
        let shown = match bad.len() {
            0 => "empty",
            129 => "over-long",
            _ => "unknown",
        };
        let id = || s(&bad);
        let calls: Vec<(&'static str, Vec<JsValue>)> = vec![
            ("launch", vec![id()]),
            ("activate", vec![id()]),
            ("deactivate", vec![id()]),
            ("reactivate", vec![id()]),
            ("terminate", vec![id(), timeout(0.0)]),
            ("remove", vec![id()]),
            ("readState", vec![id()]),
            ("connect", vec![id(), s(ACTIVE)]),
            ("disconnect", vec![id()]),
            ("send", vec![id(), value(n(1.0)), timeout(0.0)]),
            ("sendBatch", vec![id(), int32s(&[1]), timeout(0.0)]),
            ("sendBatch", vec![id(), array(&[value(n(1.0))]), timeout(0.0)]),
            ("call", vec![id(), value(n(1.0)), timeout(0.0)]),
            ("receive", vec![id(), timeout(0.0)]),
            ("receiveBatch", vec![id(), timeout(0.0)]),
            ("getState", vec![id()]),
            ("getTelemetry", vec![id()]),
            ("circuitBreaker", vec![id()]),
            ("withCircuitBreaker", vec![id(), js_function("", "return 1;").into()]),
        ];
        for (name, args) in calls {
            let r = row(format!("{name} with an {shown} id"), Op::Method(name, args), "KernelNotFoundError");
            rows.push(r.prop("kernelId", &bad));
        }
        let to = method("connect", &[s(ACTIVE), id()]);
        rows.push(row(format!("connect to an {shown} id"), to, "KernelNotFoundError").prop("kernelId", &bad));
        if bad != NOWHERE {
            let launch = method("launch", &[id(), doubler_definition()]);
            rows.push(row(format!("launch of a definition with an {shown} id"), launch, "RangeError"));
        }
    }
    rows
}

/// Ids that are not strings.
fn non_string_id_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    let ids: Vec<(&str, JsValue)> = vec![
        ("5", n(5.0)),
        ("null", JsValue::NULL),
        ("undefined", JsValue::UNDEFINED),
        ("{}", object(&[])),
        ("true", true.into()),
        ("5n", BigInt::from(5).into()),
        ("a symbol", Symbol::for_("id").into()),
    ];
    for (shown, id) in ids {
        for (name, args) in [
            ("launch", vec![id.clone()]),
            ("activate", vec![id.clone()]),
            ("send", vec![id.clone(), value(n(1.0)), timeout(0.0)]),
            ("receive", vec![id.clone(), timeout(0.0)]),
            ("getState", vec![id.clone()]),
            ("remove", vec![id.clone()]),
            ("getKernel", vec![id.clone()]),
            ("circuitBreaker", vec![id.clone()]),
            ("withCircuitBreaker", vec![id.clone(), js_function("", "return 1;").into()]),
        ] {
            rows.push(row(format!("{name} with the id {shown}"), Op::Method(name, args), "TypeError"));
        }
    }
    rows
}

/// Every (state, action) the lifecycle refuses, generated from `KernelState::next` and
/// `accepts_messages`, for every state this world holds (see `tests/bad_input.rs`).
fn transition_rows(held: &[(KernelState, &'static str)]) -> Vec<Row> {
    let mut rows = Vec::new();
    for &(state, id) in held {
        let mut refuse_op = |name: String, op: Op, action: Action| {
            let r = row(format!("{name} of a {state} kernel"), op, "KernelStateError")
                .prop("kernelId", id)
                .prop("state", state.as_str())
                .prop("action", action);
            rows.push(r);
        };
        // The kernel's handle: activate also resumes a deactivated kernel, and resume is its
        // alias (the seeds').
        if state != KernelState::Deactivated && state.next(Action::Activate).is_none() {
            refuse_op("handle.activate".into(), handle(id, "activate", &[]), Action::Activate);
            refuse_op("handle.resume".into(), handle(id, "resume", &[]), Action::Activate);
        }
        for (name, action, args) in [
            ("deactivate", Action::Deactivate, vec![]),
            ("suspend", Action::Deactivate, vec![]),
            ("terminate", Action::Terminate, vec![timeout(30_000.0)]),
        ] {
            // A terminate while one is under way is no mistake: it waits with it.
            if state.next(action).is_none() && !(action == Action::Terminate && state == KernelState::Terminating) {
                refuse_op(format!("handle.{name}"), handle(id, name, &args), action);
            }
        }
        if !state.accepts_messages() {
            for (name, args) in [
                ("send", vec![value(n(1.0)), timeout(0.0)]),
                ("trySend", vec![value(n(1.0))]),
                ("sendBatch", vec![int32s(&[1]), timeout(0.0)]),
                ("sendBatch", vec![array(&[value(n(1.0))]), timeout(0.0)]),
                ("call", vec![value(n(1.0)), timeout(0.0)]),
            ] {
                refuse_op(format!("handle.{name}"), handle(id, name, &args), Action::Send);
            }
        }
        let mut refuse = |name: &'static str, args: Vec<JsValue>, action: Action| {
            refuse_op(name.to_owned(), Op::Method(name, args), action);
        };
        refuse("launch", vec![s(id)], Action::Launch);
        refuse("launch", vec![s(id), doubler_definition()], Action::Launch);
        for (name, action, args) in [
            ("activate", Action::Activate, vec![s(id)]),
            ("deactivate", Action::Deactivate, vec![s(id)]),
            ("reactivate", Action::Reactivate, vec![s(id)]),
            ("terminate", Action::Terminate, vec![s(id), timeout(30_000.0)]),
        ] {
            if state.next(action).is_none() && !(action == Action::Terminate && state == KernelState::Terminating) {
                refuse(name, args, action);
            }
        }
        if state != KernelState::Terminated {
            refuse("remove", vec![s(id)], Action::Remove);
        }
        if !state.accepts_messages() {
            refuse("send", vec![s(id), value(n(1.0)), timeout(0.0)], Action::Send);
            refuse("sendBatch", vec![s(id), int32s(&[1]), timeout(0.0)], Action::Send);
            refuse("sendBatch", vec![s(id), array(&[value(n(1.0))]), timeout(0.0)], Action::Send);
            refuse("call", vec![s(id), value(n(1.0)), timeout(0.0)], Action::Send);
            refuse("connect", vec![s(id), s(SHAPES)], Action::Connect);
            refuse("connect", vec![s(SHAPES), s(id)], Action::Connect);
        }
    }
    let drained = [
        ("receive".to_owned(), method("receive", &[s(GONE), timeout(0.0)])),
        ("receiveBatch".to_owned(), method("receiveBatch", &[s(GONE), timeout(0.0)])),
        ("handle.receive".to_owned(), handle(GONE, "receive", &[timeout(0.0)])),
        ("handle.tryReceive".to_owned(), handle(GONE, "tryReceive", &[])),
        ("handle.receiveBatch".to_owned(), handle(GONE, "receiveBatch", &[timeout(0.0)])),
    ];
    for (name, op) in drained {
        let r = row(format!("{name} of a drained terminated kernel"), op, "KernelStateError");
        rows.push(r.prop("kernelId", GONE).prop("state", "terminated").prop("action", Action::Receive));
    }
    rows
}

/// Each bad message through a kernel's handle: `send`, `trySend`, `call` and a `sendBatch` of it.
fn handle_message_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for (what, message, field, target) in bad_messages() {
        // In a batch, behind a good message: nothing of the batch is queued.
        let good = if target == SHAPES { shape_with("i", n(1.0)) } else { value(n(1.0)) };
        // In a batch the path starts at the message's index.
        let in_batch = match field {
            "(message)" => "[1]".to_owned(),
            path => format!("[1].{path}"),
        };
        for (name, args, field) in [
            ("send", vec![message.clone(), timeout(0.0)], field.to_owned()),
            ("trySend", vec![message.clone()], field.to_owned()),
            ("call", vec![message.clone(), timeout(0.0)], field.to_owned()),
            ("sendBatch", vec![array(&[good.clone(), message.clone()]), timeout(0.0)], in_batch.clone()),
        ] {
            let r = row(format!("handle.{name} of {what}"), handle(target, name, &args), "MessageFormatError");
            rows.push(r.prop("field", field).prop("kernelId", target));
        }
    }
    rows
}

/// Every method of a handle whose kernel was removed.
fn removed_handle_rows() -> Vec<Row> {
    let calls: Vec<(&'static str, Vec<JsValue>)> = vec![
        ("state", vec![]),
        ("send", vec![value(n(1.0)), timeout(0.0)]),
        ("trySend", vec![value(n(1.0))]),
        ("sendBatch", vec![int32s(&[1]), timeout(0.0)]),
        ("call", vec![value(n(1.0)), timeout(0.0)]),
        ("receive", vec![timeout(0.0)]),
        ("tryReceive", vec![]),
        ("receiveBatch", vec![timeout(0.0)]),
        ("activate", vec![]),
        ("deactivate", vec![]),
        ("suspend", vec![]),
        ("resume", vec![]),
        ("terminate", vec![timeout(0.0)]),
        ("status", vec![]),
        ("metrics", vec![]),
    ];
    calls
        .into_iter()
        .map(|(name, args)| {
            row(format!("handle.{name} of a removed kernel"), handle(REMOVED, name, &args), "KernelNotFoundError")
                .prop("kernelId", REMOVED)
        })
        .collect()
}

/// JavaScript values where a message field's number belongs, in a plain field, a nested one
/// and array elements; missing and unknown fields; and messages that are not objects: (what,
/// message, the `field` that names the culprit, the kernel it goes to).
fn bad_messages() -> Vec<(String, JsValue, &'static str, &'static str)> {
    let not_numbers: Vec<(&str, JsValue)> = vec![
        ("NaN", n(f64::NAN)),
        ("Infinity", n(f64::INFINITY)),
        ("-Infinity", n(f64::NEG_INFINITY)),
        ("1.5", n(1.5)),
        ("2**31", n(2f64.powi(31))),
        ("2**40", n(2f64.powi(40))),
        ("-(2**31)-1", n(-(2f64.powi(31)) - 1.0)),
        ("\"5\"", s("5")),
        ("\"\"", s("")),
        ("5n", BigInt::from(5).into()),
        ("null", JsValue::NULL),
        ("undefined", JsValue::UNDEFINED),
        ("{}", object(&[])),
        ("[]", array(&[])),
        ("[1]", array(&[n(1.0)])),
        ("true", true.into()),
        ("a function", js_function("", "return 1;").into()),
        ("a symbol", Symbol::for_("x").into()),
        ("Int32Array [1]", int32s(&[1])),
        ("Float64Array [1]", construct("Float64Array", array(&[n(1.0)]))),
        ("an array 100000 deep", deep_array(100_000)),
        ("an object 100000 deep", deep_object(100_000)),
    ];
    let mut messages: Vec<(String, JsValue, &str)> = Vec::new();
    for (shown, v) in &not_numbers {
        messages.push((format!("{shown} for an i32"), value(v.clone()), "value"));
    }
    let inner = |a: JsValue, v: JsValue| object(&[("a", a), ("v", v)]);
    let ok_inner = || inner(n(0.0), array(&[n(0.0), n(0.0)]));
    messages.extend([
        ("-1 for a u32".to_owned(), shape_with("u", n(-1.0)), "u"),
        ("-0.5 for a u32".to_owned(), shape_with("u", n(-0.5)), "u"),
        ("\"0.5\" for an f32".to_owned(), shape_with("f", s("0.5")), "f"),
        (
            "a string in a nested message".to_owned(),
            shape_with("inner", inner(s("1"), array(&[n(0.0), n(0.0)]))),
            "inner.a",
        ),
        ("null for a nested message".to_owned(), shape_with("inner", JsValue::NULL), "inner"),
        ("a nested message missing a field".to_owned(), shape_with("inner", object(&[("a", n(1.0))])), "inner.v"),
        (
            "a string for an array element message".to_owned(),
            shape_with("items", array(&[ok_inner(), s("x")])),
            "items[1]",
        ),
        (
            "an element message missing a field".to_owned(),
            shape_with("items", array(&[ok_inner(), object(&[("a", n(1.0))])])),
            "items[1].v",
        ),
        ("a string inside a vector".to_owned(), shape_with("p", array(&[n(1.0), s("2"), n(3.0)])), "p"),
        (
            "a Float32Array one short for a vec3".to_owned(),
            shape_with("p", js_sys::Float32Array::from([1.0f32, 2.0].as_slice()).into()),
            "p",
        ),
        ("an Int32Array one short for array<i32, 4>".to_owned(), shape_with("arr", int32s(&[1, 2, 3])), "arr"),
        ("a BigInt64Array for array<i32, 4>".to_owned(), shape_with("arr", construct("BigInt64Array", n(4.0))), "arr"),
        (
            "a Float64Array for a nested vec2".to_owned(),
            shape_with("inner", inner(n(0.0), construct("Float64Array", n(2.0)))),
            "inner.v",
        ),
        ("no fields".to_owned(), object(&[]), "value"),
        ("an unknown field".to_owned(), object(&[("value", n(1.0)), ("extra", n(2.0))]), "extra"),
        ("a misspelt field".to_owned(), object(&[("Value", n(1.0))]), "Value"),
    ]);
    let mut bad: Vec<_> = messages
        .into_iter()
        .map(|(what, message, field)| {
            let target = if ["value", "Value", "extra"].contains(&field) { LAUNCHED } else { SHAPES };
            (what, message, field, target)
        })
        .collect();
    let not_objects: Vec<(&str, JsValue)> = vec![
        ("5", n(5.0)),
        ("\"message\"", s("message")),
        ("null", JsValue::NULL),
        ("undefined", JsValue::UNDEFINED),
        ("[]", array(&[])),
        ("[{ value: 1 }]", array(&[value(n(1.0))])),
        ("an Int32Array", int32s(&[1])),
        ("true", true.into()),
        ("5n", BigInt::from(5).into()),
        ("a function", js_function("", "return { value: 1 };").into()),
    ];
    for (shown, message) in not_objects {
        bad.push((format!("the message {shown}"), message, "(message)", LAUNCHED));
    }
    bad
}

/// Each bad message sent and called; the `field` names the culprit.
fn message_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for (what, message, field, target) in bad_messages() {
        for name in ["send", "call"] {
            let args = [s(target), message.clone(), timeout(0.0)];
            let r = row(format!("{name} of {what}"), method(name, &args), "MessageFormatError");
            rows.push(r.prop("field", field).prop("kernelId", target));
        }
    }
    rows
}

/// `sendBatch` with packed bytes of the wrong size or element width, batches with one bad
/// message, and things that are not batches, through the runtime and through a handle; and full
/// queues.
fn batch_rows() -> Vec<Row> {
    let buffer = |bytes: f64| construct("ArrayBuffer", n(bytes));
    let batches: Vec<(&str, JsValue, &'static str, Option<&str>)> = vec![
        (
            "a 3-byte Uint8Array (not whole 4-byte messages)",
            construct("Uint8Array", n(3.0)),
            "MessageFormatError",
            Some("Request"),
        ),
        ("a 6-byte Uint8Array", construct("Uint8Array", n(6.0)), "MessageFormatError", Some("Request")),
        ("an Int16Array of one", construct("Int16Array", n(1.0)), "MessageFormatError", Some("Request")),
        ("a 3-byte DataView", construct("DataView", buffer(3.0)), "MessageFormatError", Some("Request")),
        ("a 5-byte ArrayBuffer", buffer(5.0), "MessageFormatError", Some("Request")),
        ("a Float64Array (64-bit elements)", construct("Float64Array", n(1.0)), "TypeError", None),
        ("a Float64Array of two", construct("Float64Array", n(2.0)), "TypeError", None),
        ("a BigInt64Array", construct("BigInt64Array", n(1.0)), "TypeError", None),
        ("a BigUint64Array", construct("BigUint64Array", n(2.0)), "TypeError", None),
        (
            "messages with a bad one in the middle",
            array(&[value(n(1.0)), value(s("2")), value(n(3.0))]),
            "MessageFormatError",
            Some("[1].value"),
        ),
        ("messages with a non-object among them", array(&[value(n(1.0)), n(2.0)]), "MessageFormatError", Some("[1]")),
        ("a number", n(5.0), "TypeError", None),
        ("a string", s("abc"), "TypeError", None),
        ("one message object", value(n(1.0)), "TypeError", None),
        ("null", JsValue::NULL, "TypeError", None),
        ("undefined", JsValue::UNDEFINED, "TypeError", None),
    ];
    let mut rows = Vec::new();
    for (what, messages, expect, field) in batches {
        let ops = [
            ("sendBatch", method("sendBatch", &[s(LAUNCHED), messages.clone(), timeout(0.0)])),
            ("handle.sendBatch", handle(LAUNCHED, "sendBatch", &[messages, timeout(0.0)])),
        ];
        for (name, op) in ops {
            let r = row(format!("{name} of {what}"), op, expect);
            rows.push(match field {
                Some(field) => r.prop("field", field),
                None => r,
            });
        }
    }
    let full: Vec<(&str, Op)> = vec![
        ("send", method("send", &[s(FULL), value(n(1.0)), timeout(0.0)])),
        ("call", method("call", &[s(FULL), value(n(1.0)), timeout(0.0)])),
        ("sendBatch of objects", method("sendBatch", &[s(FULL), array(&[value(n(1.0))]), timeout(0.0)])),
        ("sendBatch of an Int32Array", method("sendBatch", &[s(FULL), int32s(&[1, 2]), timeout(0.0)])),
        ("handle.send", handle(FULL, "send", &[value(n(1.0)), timeout(0.0)])),
        ("handle.trySend", handle(FULL, "trySend", &[value(n(1.0))])),
        ("handle.call", handle(FULL, "call", &[value(n(1.0)), timeout(0.0)])),
        ("handle.sendBatch of objects", handle(FULL, "sendBatch", &[array(&[value(n(1.0))]), timeout(0.0)])),
        ("handle.sendBatch of an Int32Array", handle(FULL, "sendBatch", &[int32s(&[1, 2]), timeout(0.0)])),
    ];
    for (name, op) in full {
        let batch = name.contains("sendBatch");
        let r = row(format!("{name} to a full queue"), op, "QueueFullError").prop("kernelId", FULL);
        rows.push(if batch { r.prop("accepted", 0) } else { r });
    }
    rows
}

/// The handle's calls that take options, each with `options` (a valid message where it takes one).
fn handle_option_calls(options: &JsValue) -> [(&'static str, Vec<JsValue>); 6] {
    [
        ("send", vec![value(n(1.0)), options.clone()]),
        ("sendBatch", vec![int32s(&[1]), options.clone()]),
        ("call", vec![value(n(1.0)), options.clone()]),
        ("receive", vec![options.clone()]),
        ("receiveBatch", vec![options.clone()]),
        ("terminate", vec![options.clone()]),
    ]
}

/// Timeouts and other options that are not what they must be.
fn option_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    // Not a number: TypeError; NaN or a number below 0: RangeError (`Infinity` is no timeout).
    let bad_timeouts: Vec<(&str, JsValue, &str)> = vec![
        ("\"10\"", s("10"), "TypeError"),
        ("{}", object(&[]), "TypeError"),
        ("NaN", n(f64::NAN), "RangeError"),
        ("-1", n(-1.0), "RangeError"),
        ("-Infinity", n(f64::NEG_INFINITY), "RangeError"),
        ("10n", BigInt::from(10).into(), "TypeError"),
        ("true", true.into(), "TypeError"),
        ("[]", array(&[]), "TypeError"),
    ];
    for (shown, t, expect) in &bad_timeouts {
        let options = object(&[("timeout", t.clone())]);
        for (name, args) in [
            ("send", vec![s(ACTIVE), value(n(1.0)), options.clone()]),
            ("sendBatch", vec![s(ACTIVE), int32s(&[1]), options.clone()]),
            ("call", vec![s(ACTIVE), value(n(1.0)), options.clone()]),
            ("receive", vec![s(ACTIVE), options.clone()]),
            ("receiveBatch", vec![s(ACTIVE), options.clone()]),
            ("terminate", vec![s(ACTIVE), options.clone()]),
            ("terminateAll", vec![options.clone()]),
            ("drain", vec![options.clone()]),
        ] {
            rows.push(row(format!("{name} with a timeout of {shown}"), Op::Method(name, args), expect));
        }
        for (name, args) in handle_option_calls(&options) {
            rows.push(row(format!("handle.{name} with a timeout of {shown}"), handle(ACTIVE, name, &args), expect));
        }
    }
    let not_options: Vec<(&str, JsValue)> = vec![
        ("5", n(5.0)),
        ("\"fast\"", s("fast")),
        ("true", true.into()),
        ("{ timout: 5 }", object(&[("timout", n(5.0))])),
    ];
    for (shown, options) in &not_options {
        for (name, args) in [
            ("send", vec![s(ACTIVE), value(n(1.0)), options.clone()]),
            ("receive", vec![s(ACTIVE), options.clone()]),
            ("terminate", vec![s(ACTIVE), options.clone()]),
            ("launch", vec![s(FRESH), JsValue::NULL, options.clone()]),
            ("drain", vec![options.clone()]),
        ] {
            rows.push(row(format!("{name} with the options {shown}"), Op::Method(name, args), "TypeError"));
        }
        for (name, args) in handle_option_calls(options) {
            rows.push(row(format!("handle.{name} with the options {shown}"), handle(ACTIVE, name, &args), "TypeError"));
        }
    }
    let misspelt = object(&[("timeout", n(0.0)), ("maxx", n(1.0))]);
    rows.push(row(
        "handle.receiveBatch with the options { maxx }",
        handle(ACTIVE, "receiveBatch", &[misspelt]),
        "TypeError",
    ));
    let launch_options: Vec<(&str, JsValue, &str)> = vec![
        ("{ autoActivate: \"yes\" }", object(&[("autoActivate", s("yes"))]), "TypeError"),
        ("{ autoActivate: 1 }", object(&[("autoActivate", n(1.0))]), "TypeError"),
        ("{ autoactivate: true }", object(&[("autoactivate", true.into())]), "TypeError"),
        ("{ inputQueueSize: 0 }", object(&[("inputQueueSize", n(0.0))]), "RangeError"),
        ("{ inputQueueSize: -1 }", object(&[("inputQueueSize", n(-1.0))]), "RangeError"),
        ("{ inputQueueSize: \"8\" }", object(&[("inputQueueSize", s("8"))]), "TypeError"),
        ("{ outputQueueSize: 0 }", object(&[("outputQueueSize", n(0.0))]), "RangeError"),
        ("{ outputQueueSize: 1.5 }", object(&[("outputQueueSize", n(1.5))]), "RangeError"),
        ("{ outputQueueSize: 2**40 }", object(&[("outputQueueSize", n(2f64.powi(40)))]), "RangeError"),
        (
            "{ inputQueueSize: 4, maxBatch: 8 }",
            object(&[("inputQueueSize", n(4.0)), ("maxBatch", n(8.0))]),
            "RangeError",
        ),
        // Shapes no device runs, or beyond any device's limits (the cpu backend holds launches to
        // what every WebGPU device runs).
        ("{ workgroupSize: 0 }", object(&[("workgroupSize", n(0.0))]), "RangeError"),
        ("{ workgroupSize: 2**20 }", object(&[("workgroupSize", n(2f64.powi(20)))]), "RangeError"),
        ("{ maxWorkgroups: 0 }", object(&[("maxWorkgroups", n(0.0))]), "RangeError"),
        ("{ sharedMemory: 2**30 }", object(&[("sharedMemory", n(2f64.powi(30)))]), "RangeError"),
    ];
    for (shown, options, expect) in launch_options {
        let launch = method("launch", &[s(FRESH), JsValue::NULL, options]);
        rows.push(row(format!("launch with the options {shown}"), launch, expect));
    }
    let create_options: Vec<(&str, JsValue, &'static str)> = vec![
        ("{ deviceIndex: \"0\" }", object(&[("deviceIndex", s("0"))]), "TypeError"),
        ("{ deviceIndex: -1 }", object(&[("deviceIndex", n(-1.0))]), "RangeError"),
        ("{ deviceIndex: 1.5 }", object(&[("deviceIndex", n(1.5))]), "RangeError"),
        ("{ deviceIndex: 0n }", object(&[("deviceIndex", BigInt::from(0).into())]), "TypeError"),
        ("{ deviceindex: 0 }", object(&[("deviceindex", n(0.0))]), "TypeError"),
        ("{ debug: \"yes\" }", object(&[("debug", s("yes"))]), "TypeError"),
        ("{ debug: 1 }", object(&[("debug", n(1.0))]), "TypeError"),
        ("{ tracing: \"on\" }", object(&[("tracing", s("on"))]), "TypeError"),
        ("{ health: { queueFill: 1.5 } }", object(&[("health", object(&[("queueFill", n(1.5))]))]), "RangeError"),
        (
            "{ health: { memoryDegraded: -0.1 } }",
            object(&[("health", object(&[("memoryDegraded", n(-0.1))]))]),
            "RangeError",
        ),
        (
            "{ health: { errorRateUnhealthy: NaN } }",
            object(&[("health", object(&[("errorRateUnhealthy", n(f64::NAN))]))]),
            "RangeError",
        ),
        // At 0 every idle kernel would be degraded; a degraded line above the unhealthy one.
        ("{ health: { queueFill: 0 } }", object(&[("health", object(&[("queueFill", n(0.0))]))]), "RangeError"),
        (
            "{ health: { errorRateDegraded: 0.9, errorRateUnhealthy: 0.1 } }",
            object(&[("health", object(&[("errorRateDegraded", n(0.9)), ("errorRateUnhealthy", n(0.1))]))]),
            "RangeError",
        ),
        (
            "{ health: { memoryDegraded: 0.99, memoryUnhealthy: 0.5 } }",
            object(&[("health", object(&[("memoryDegraded", n(0.99)), ("memoryUnhealthy", n(0.5))]))]),
            "RangeError",
        ),
        ("{ health: { queuefill: 0.5 } }", object(&[("health", object(&[("queuefill", n(0.5))]))]), "TypeError"),
        ("{ health: 0.5 }", object(&[("health", n(0.5))]), "TypeError"),
        ("{ backend: \"vulkan\" } (a native API)", object(&[("backend", s("vulkan"))]), "BackendUnavailableError"),
        (
            "{ deviceIndex: 1 } (a browser has one adapter)",
            object(&[("deviceIndex", n(1.0))]),
            "BackendUnavailableError",
        ),
    ];
    let breaker = |key: &str, v: JsValue| object(&[("circuitBreaker", object(&[(key, v)]))]);
    let watchdog = |key: &str, v: JsValue| object(&[("watchdog", object(&[(key, v)]))]);
    let resilience_options: Vec<(&str, JsValue, &'static str)> = vec![
        ("{ circuitBreaker: 5 }", object(&[("circuitBreaker", n(5.0))]), "TypeError"),
        ("{ circuitBreaker: { failureTreshold: 3 } }", breaker("failureTreshold", n(3.0)), "TypeError"),
        ("{ circuitBreaker: { failureThreshold: 0 } }", breaker("failureThreshold", n(0.0)), "RangeError"),
        ("{ circuitBreaker: { failureThreshold: -1 } }", breaker("failureThreshold", n(-1.0)), "RangeError"),
        ("{ circuitBreaker: { failureThreshold: \"3\" } }", breaker("failureThreshold", s("3")), "TypeError"),
        ("{ circuitBreaker: { halfOpenProbes: 0 } }", breaker("halfOpenProbes", n(0.0)), "RangeError"),
        ("{ circuitBreaker: { halfOpenProbes: 1.5 } }", breaker("halfOpenProbes", n(1.5)), "RangeError"),
        ("{ circuitBreaker: { windowMs: -1 } }", breaker("windowMs", n(-1.0)), "RangeError"),
        // A window of no time holds no failure: the circuit would never open.
        ("{ circuitBreaker: { windowMs: 0 } }", breaker("windowMs", n(0.0)), "RangeError"),
        ("{ circuitBreaker: { openMs: NaN } }", breaker("openMs", n(f64::NAN)), "RangeError"),
        ("{ circuitBreaker: { openMs: Infinity } }", breaker("openMs", n(f64::INFINITY)), "RangeError"),
        ("{ circuitBreaker: { openMs: 10n } }", breaker("openMs", BigInt::from(10).into()), "TypeError"),
        ("{ watchdog: null }", object(&[("watchdog", JsValue::NULL)]), "TypeError"),
        ("{ watchdog: { heartbeat: 5 } }", watchdog("heartbeat", n(5.0)), "TypeError"),
        ("{ watchdog: { heartbeatTimeoutMs: -5 } }", watchdog("heartbeatTimeoutMs", n(-5.0)), "RangeError"),
        ("{ watchdog: { heartbeatTimeoutMs: \"5\" } }", watchdog("heartbeatTimeoutMs", s("5")), "TypeError"),
        ("{ watchdog: { heartbeatTimeoutMs: 0 } }", watchdog("heartbeatTimeoutMs", n(0.0)), "RangeError"),
        ("{ watchdog: { action: \"reboot\" } }", watchdog("action", s("reboot")), "TypeError"),
        ("{ watchdog: { action: 1 } }", watchdog("action", n(1.0)), "TypeError"),
    ];
    for (shown, options, expect) in create_options.into_iter().chain(resilience_options) {
        rows.push(row(format!("RingKernelRuntime.create with {shown}"), Op::Create(options), expect));
    }
    let native =
        "no GPU backend available: \"vulkan\", \"metal\", \"dx12\" and \"gl\" are native graphics APIs, which \
                  only native builds open; on the web the runtime runs on WebGPU (\"webgpu\" or \"auto\") or on the \
                  host (\"cpu\")";
    for backend in ["metal", "gl"] {
        let options = object(&[("backend", s(backend))]);
        let shown = format!("RingKernelRuntime.create with {{ backend: \"{backend}\" }} (a native API)");
        rows.push(row(shown, Op::Create(options), "BackendUnavailableError").prop("message", native));
    }
    // The watchdog's settings at run time, and protected operations that are not functions.
    let settings: Vec<(&'static str, JsValue, &'static str, &'static str)> = vec![
        ("setHeartbeatTimeout", n(-1.0), "-1", "RangeError"),
        ("setHeartbeatTimeout", n(f64::NAN), "NaN", "RangeError"),
        ("setHeartbeatTimeout", s("10"), "\"10\"", "TypeError"),
        ("setHeartbeatTimeout", JsValue::UNDEFINED, "undefined", "TypeError"),
        // As create's watchdog.heartbeatTimeoutMs: 0 makes every kernel stale, 1e300 is no duration.
        ("setHeartbeatTimeout", n(0.0), "0", "RangeError"),
        ("setHeartbeatTimeout", n(1e300), "1e300", "RangeError"),
        ("setWatchdogAction", s("reboot"), "\"reboot\"", "TypeError"),
        ("setWatchdogAction", s("Report"), "\"Report\"", "TypeError"),
        ("setWatchdogAction", JsValue::NULL, "null", "TypeError"),
        ("withCircuitBreaker", JsValue::UNDEFINED, "no operation", "TypeError"),
        ("withCircuitBreaker", s("f"), "a string for an operation", "TypeError"),
    ];
    for (name, arg, shown, expect) in settings {
        let args = match name {
            "withCircuitBreaker" => vec![s(ACTIVE), arg],
            _ => vec![arg],
        };
        rows.push(row(format!("{name} with {shown}"), Op::Method(name, args), expect));
    }
    let bad_sizes: Vec<(&str, JsValue, &str)> = vec![
        ("NaN", n(f64::NAN), "RangeError"),
        ("Infinity", n(f64::INFINITY), "RangeError"),
        ("-1", n(-1.0), "RangeError"),
        ("1.5", n(1.5), "RangeError"),
        ("2**40", n(2f64.powi(40)), "RangeError"),
        ("0", n(0.0), "RangeError"),
        ("-0", n(-0.0), "RangeError"),
        ("\"10\"", s("10"), "TypeError"),
        ("10n", BigInt::from(10).into(), "TypeError"),
        ("{}", object(&[]), "TypeError"),
        ("true", true.into(), "TypeError"),
    ];
    for (shown, size, expect) in &bad_sizes {
        let options = object(&[("queueSize", size.clone())]);
        let launch = method("launch", &[s(FRESH), JsValue::NULL, options]);
        rows.push(row(format!("launch with a queueSize of {shown}"), launch, expect));
    }
    for (shown, mode) in [("\"fast\"", s("fast")), ("5", n(5.0))] {
        let options = object(&[("mode", mode)]);
        rows.push(row(
            format!("launch with the mode {shown}"),
            method("launch", &[s(FRESH), JsValue::NULL, options]),
            "TypeError",
        ));
    }
    let maxima: Vec<(&str, JsValue, &str)> = vec![
        ("0 (at least one answer comes)", n(0.0), "RangeError"),
        ("-1", n(-1.0), "RangeError"),
        ("1.5", n(1.5), "RangeError"),
        ("NaN", n(f64::NAN), "RangeError"),
        ("\"3\"", s("3"), "TypeError"),
        ("Infinity", n(f64::INFINITY), "RangeError"),
        ("3n", BigInt::from(3).into(), "TypeError"),
    ];
    for (shown, max, expect) in maxima {
        let options = object(&[("max", max), ("timeout", n(0.0))]);
        let receive = method("receiveBatch", &[s(ACTIVE), options.clone()]);
        let r = row(format!("receiveBatch with a max of {shown}"), receive, expect);
        // 0 and 1.5 are out of the same range, said the same way.
        rows.push(match shown.split(' ').next() {
            Some(number @ ("0" | "1.5")) => r.prop(
                "message",
                format!("receiveBatch options: max must be a whole number from 1 to 4294967295, got {number}"),
            ),
            _ => r,
        });
        let receive = handle(ACTIVE, "receiveBatch", &[options]);
        rows.push(row(format!("handle.receiveBatch with a max of {shown}"), receive, expect));
    }
    rows.push(row("readState of a kernel without state", method("readState", &[s(LAUNCHED)]), "TypeError"));
    rows.push(row("connect of a kernel to itself", method("connect", &[s(ACTIVE), s(ACTIVE)]), "TypeError"));
    rows.push(row("connect of mismatched layouts", method("connect", &[s(LAUNCHED), s(SHAPES)]), "TypeError"));
    rows.push(row("disconnect of an unconnected kernel", method("disconnect", &[s(ACTIVE)]), "TypeError"));
    rows
}

/// The operations layer's calls and options: memory alert thresholds, callbacks, watch ids and
/// alert names; memory budgets, degradation options and latency budgets.
fn operations_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    let callback = || JsValue::from(js_function("event", "globalThis.__heard = event"));
    let thresholds: Vec<(&str, JsValue, &str)> = vec![
        ("0", n(0.0), "RangeError"),
        ("-0.5", n(-0.5), "RangeError"),
        ("1.5", n(1.5), "RangeError"),
        ("NaN", n(f64::NAN), "RangeError"),
        ("Infinity", n(f64::INFINITY), "RangeError"),
        ("\"0.5\"", s("0.5"), "TypeError"),
        ("undefined", JsValue::UNDEFINED, "TypeError"),
        ("0.5n", BigInt::from(1).into(), "TypeError"),
    ];
    for (shown, threshold, expect) in thresholds {
        let op = method("onMemoryAlert", &[threshold, callback()]);
        rows.push(row(format!("onMemoryAlert with a threshold of {shown}"), op, expect));
    }
    for (shown, not_function) in [("5", n(5.0)), ("undefined", JsValue::UNDEFINED), ("{}", object(&[]))] {
        let op = method("onMemoryAlert", &[n(0.5), not_function]);
        rows.push(row(format!("onMemoryAlert with the callback {shown}"), op, "TypeError"));
    }
    for (shown, id) in [("\"1\"", s("1")), ("-1", n(-1.0)), ("1.5", n(1.5)), ("undefined", JsValue::UNDEFINED)] {
        rows.push(row(format!("removeMemoryAlert of {shown}"), method("removeMemoryAlert", &[id]), "TypeError"));
    }
    for (shown, alert) in
        [("\"loud\"", s("loud")), ("\"High\"", s("High")), ("1", n(1.0)), ("undefined", JsValue::UNDEFINED)]
    {
        rows.push(row(format!("triggerMemoryAlert of {shown}"), method("triggerMemoryAlert", &[alert]), "TypeError"));
    }
    let degradation = |pairs: &[(&str, JsValue)]| object(&[("degradation", object(pairs))]);
    let create_options: Vec<(&str, JsValue, &'static str)> = vec![
        ("{ memoryBudget: -1 }", object(&[("memoryBudget", n(-1.0))]), "RangeError"),
        ("{ memoryBudget: 0 }", object(&[("memoryBudget", n(0.0))]), "RangeError"),
        ("{ memoryBudget: 1.5 }", object(&[("memoryBudget", n(1.5))]), "RangeError"),
        ("{ memoryBudget: \"1\" }", object(&[("memoryBudget", s("1"))]), "TypeError"),
        ("{ memoryBudget: 1n }", object(&[("memoryBudget", BigInt::from(1).into())]), "TypeError"),
        ("{ degradation: 5 }", object(&[("degradation", n(5.0))]), "TypeError"),
        ("{ degradation: { cooldown: 5 } }", degradation(&[("cooldown", n(5.0))]), "TypeError"),
        ("{ degradation: { cooldownMs: -1 } }", degradation(&[("cooldownMs", n(-1.0))]), "RangeError"),
        ("{ degradation: { windowMs: \"5\" } }", degradation(&[("windowMs", s("5"))]), "TypeError"),
        ("{ degradation: { windowMs: 0 } }", degradation(&[("windowMs", n(0.0))]), "RangeError"),
        ("{ degradation: { hysteresis: 1 } }", degradation(&[("hysteresis", n(1.0))]), "RangeError"),
        (
            "{ degradation: { queueFillThresholds: [0.9, 0.5, 0.95, 0.99] } }",
            degradation(&[("queueFillThresholds", array(&[n(0.9), n(0.5), n(0.95), n(0.99)]))]),
            "RangeError",
        ),
        (
            "{ degradation: { queueFillThresholds: [0.5] } }",
            degradation(&[("queueFillThresholds", array(&[n(0.5)]))]),
            "TypeError",
        ),
        ("{ degradation: { protectedPriority: 0.5 } }", degradation(&[("protectedPriority", n(0.5))]), "RangeError"),
    ];
    for (shown, options, expect) in create_options {
        rows.push(row(format!("RingKernelRuntime.create with {shown}"), Op::Create(options), expect));
    }
    let launch_options: Vec<(&str, JsValue, &str)> = vec![
        ("{ latencyBudgetMs: -5 }", object(&[("latencyBudgetMs", n(-5.0))]), "RangeError"),
        ("{ latencyBudgetMs: NaN }", object(&[("latencyBudgetMs", n(f64::NAN))]), "RangeError"),
        ("{ latencyBudgetMs: \"5\" }", object(&[("latencyBudgetMs", s("5"))]), "TypeError"),
        ("{ latencyBudget: 5 }", object(&[("latencyBudget", n(5.0))]), "TypeError"),
        ("{ checkpointIntervalMs: -1 }", object(&[("checkpointIntervalMs", n(-1.0))]), "RangeError"),
        (
            "{ checkpointIntervalMs: -Infinity }",
            object(&[("checkpointIntervalMs", n(f64::NEG_INFINITY))]),
            "RangeError",
        ),
        ("{ checkpointIntervalMs: NaN }", object(&[("checkpointIntervalMs", n(f64::NAN))]), "RangeError"),
        ("{ checkpointIntervalMs: \"5\" }", object(&[("checkpointIntervalMs", s("5"))]), "TypeError"),
    ];
    for (shown, options, expect) in launch_options {
        let launch = method("launch", &[s(FRESH), JsValue::NULL, options]);
        rows.push(row(format!("launch with the options {shown}"), launch, expect));
    }
    rows
}

/// Message types that cannot be: unknown field types, bad names, too large, nested too deep.
fn define_message_rows() -> Vec<Row> {
    let deep_type = format!("{}f32{}", "array<".repeat(100_000), ", 2>".repeat(100_000));
    let deep_description = js_function(
        "n",
        "let d = { name: 'BadDeepLeaf', fields: { x: 'f32' } };
         for (let i = 0; i < n; i++) d = { name: 'BadDeep' + i, fields: { x: d } };
         return d.fields;",
    )
    .call1(&JsValue::NULL, &n(100_000.0))
    .unwrap();
    let too_big = format!("array<f32, {}>", MAX_MESSAGE_SIZE / 4 + 1);
    let cases: Vec<(&str, &str, JsValue)> = vec![
        ("an f64 field", "BadF64", object(&[("x", s("f64"))])),
        ("a bool field", "BadBool", object(&[("x", s("bool"))])),
        ("a vec5", "BadVec5", object(&[("x", s("vec5<f32>"))])),
        ("an array of 0", "BadArr0", object(&[("x", s("array<f32, 0>"))])),
        ("an array without a length", "BadArrN", object(&[("x", s("array<f32>"))])),
        ("an array of -1", "BadArrNeg", object(&[("x", s("array<f32, -1>"))])),
        ("an unknown message type", "BadUnknown", object(&[("x", s("NoSuchMessage"))])),
        ("a number for a type", "BadNum", object(&[("x", n(5.0))])),
        ("null for a type", "BadNull", object(&[("x", JsValue::NULL)])),
        ("undefined for a type", "BadUndef", object(&[("x", JsValue::UNDEFINED)])),
        (
            "an object that is no message for a type",
            "BadTypeObject",
            object(&[("x", object(&[("type", s("f32")), ("length", n(4.0))]))]),
        ),
        ("no fields", "BadEmpty", object(&[])),
        ("fields that are a number", "BadFields5", n(5.0)),
        ("fields that are null", "BadFieldsNull", JsValue::NULL),
        ("a field name that is not an identifier", "BadFieldName", object(&[("1x", s("f32"))])),
        ("an empty name", "", object(&[("x", s("f32"))])),
        ("a name with a space", "Bad Name", object(&[("x", s("f32"))])),
        ("a reserved name", "vec3", object(&[("x", s("f32"))])),
        ("a harness name", "RingInput", object(&[("x", s("f32"))])),
        ("a type larger than a ring slot can be (128 MiB)", "BadTooBig", object(&[("x", s(&too_big))])),
        ("a 16 GiB type (overflows 32 bits)", "BadOverflow", object(&[("x", s("array<array<f32, 65536>, 65536>"))])),
        (
            "an array longer than WGSL compilers take (64 MiB, of 16777216 elements)",
            "BadLongArray",
            object(&[("x", s("array<u32, 16777216>"))]),
        ),
        ("a type string nested 100000 deep", "BadDeepType", object(&[("x", s(&deep_type))])),
        ("descriptions nested 100000 deep", "BadDeepDescription", deep_description),
    ];
    cases
        .into_iter()
        .map(|(what, name, fields)| {
            row(format!("defineMessage with {what}"), Op::DefineMessage(name.to_owned(), fields), "TypeError")
        })
        .collect()
}

/// Kernel definitions that cannot be: for `ringKernel` and for `launch(id, definition)`.
fn definition_rows() -> Vec<Row> {
    let with = |pairs: &[(&str, JsValue)]| {
        let definition = doubler_definition();
        for (key, v) in pairs {
            Reflect::set(&definition, &(*key).into(), v).unwrap();
        }
        definition
    };
    let state = |pairs: &[(&str, JsValue)]| object(pairs);
    let (type_error, range_error) = ("TypeError", "RangeError");
    let definitions: Vec<(&str, JsValue, &str)> = vec![
        ("an unknown key", with(&[("wgls", s(DOUBLER_WGSL))]), type_error),
        ("wgsl that is a number", with(&[("wgsl", n(5.0))]), type_error),
        (
            "neither wgsl nor a handler",
            with(&[("wgsl", JsValue::UNDEFINED), ("handler", JsValue::UNDEFINED)]),
            type_error,
        ),
        ("a handler that is a number", with(&[("handler", n(5.0))]), type_error),
        ("an input that is a number", with(&[("input", n(5.0))]), type_error),
        ("an input naming no message", with(&[("input", s("NoSuchMessage"))]), type_error),
        ("an output that is missing", with(&[("output", JsValue::UNDEFINED)]), type_error),
        ("a workgroupSize of 0", with(&[("workgroupSize", n(0.0))]), range_error),
        ("a workgroupSize of 257", with(&[("workgroupSize", n(257.0))]), range_error),
        ("a workgroupSize of 1.5", with(&[("workgroupSize", n(1.5))]), range_error),
        ("a workgroupSize of \"64\"", with(&[("workgroupSize", s("64"))]), type_error),
        ("a state of length 0", with(&[("state", state(&[("length", n(0.0))]))]), range_error),
        ("a state of length 1.5", with(&[("state", state(&[("length", n(1.5))]))]), range_error),
        (
            "a state longer than the maximum",
            with(&[("state", state(&[("length", n(MAX_STATE_LEN as f64 + 1.0))]))]),
            range_error,
        ),
        ("a state of f64", with(&[("state", state(&[("length", n(1.0)), ("type", s("f64"))]))]), type_error),
        (
            "a state whose type is a number",
            with(&[("state", state(&[("length", n(1.0)), ("type", n(5.0))]))]),
            type_error,
        ),
        (
            "a state with a misspelt key",
            with(&[("state", state(&[("length", n(1.0)), ("typ", s("u32"))]))]),
            type_error,
        ),
        ("a state that is a number", with(&[("state", n(4.0))]), type_error),
        ("a replace that is a string", with(&[("replace", s("yes"))]), type_error),
        ("a replace of 1", with(&[("replace", n(1.0))]), type_error),
    ];
    let mut rows = Vec::new();
    for (i, (what, definition, expect)) in definitions.into_iter().enumerate() {
        let id = format!("web-bad-def-{i}");
        let launch = method("launch", &[s(&id), definition.clone()]);
        rows.push(row(format!("launch of a definition with {what}"), launch, expect));
        Reflect::set(&definition, &"id".into(), &s(&id)).unwrap();
        rows.push(row(format!("ringKernel with {what}"), Op::RingKernel(definition), expect));
    }
    rows.push(row("ringKernel without an id", Op::RingKernel(doubler_definition()), "TypeError"));
    let taken = doubler_definition();
    Reflect::set(&taken, &"id".into(), &s(FRESH)).unwrap();
    rows.push(row("ringKernel of a registered id without replace", Op::RingKernel(taken.clone()), "TypeError"));
    Reflect::set(&taken, &"replace".into(), &false.into()).unwrap();
    rows.push(row("ringKernel of a registered id with replace: false", Op::RingKernel(taken), "TypeError"));
    rows.push(row("ringKernel of a number", Op::RingKernel(n(5.0)), "TypeError"));
    rows.push(row(
        "launch with a definition that is a string",
        method("launch", &[s(FRESH), s("doubler")]),
        "TypeError",
    ));
    rows
}

/// Invalid WGSL and handlers whose types do not match the layouts (GPU backends): a
/// `KernelCompileError` at the user's line and column.
fn wgsl_rows() -> Vec<Row> {
    let launch = |what: &str, wgsl: &str, line: Option<u32>, column: Option<u32>| {
        let definition = object(&[("input", request()), ("output", response()), ("wgsl", s(wgsl))]);
        let r = row(
            format!("launch of {what}"),
            method("launch", &[s("web-bad-compile"), definition]),
            "KernelCompileError",
        );
        let r = r.prop("kernelId", "web-bad-compile");
        let r = match line {
            Some(line) => r.prop("line", line),
            None => r.prop("line", "null"),
        };
        match column {
            Some(column) => r.prop("column", column),
            None => r,
        }
    };
    vec![
        launch("a WGSL syntax error", "fn handle(msg: Request) -> Response {\n    return Response(msg.value * );\n}", Some(2), None),
        launch("an unknown identifier", "// doubles\nfn handle(msg: Request) -> Response {\n    return Response(nope * 2);\n}", Some(3), Some(21)),
        launch("a type error in the body", "fn handle(msg: Request) -> Response {\n  let x: f32 = msg.value;\n  return Response(1);\n}", Some(2), None),
        launch("no fn handle", "fn helper() -> i32 { return 1; }", None, None),
        launch("fn handle twice", "fn handle(msg: Request) -> Response { return Response(1); }\nfn handle(msg: Request) -> Response { return Response(2); }", Some(2), Some(1)),
        launch("a handler taking the wrong message type", "fn handle(msg: Response) -> Response { return msg; }", Some(1), Some(16)),
        launch("a handler answering the wrong type", "fn handle(msg: Request) -> Request { return msg; }", Some(1), Some(28)),
        launch("a handler answering nothing", "fn handle(msg: Request) { }", Some(1), Some(23)),
        launch("a dropping handler with the wrong answer pointer", "fn handle(msg: Request, out: ptr<function, Request>) -> bool { return false; }", Some(1), Some(30)),
        launch("a dropping handler not returning bool", "fn handle(msg: Request, out: ptr<function, Response>) -> u32 { return 0u; }", Some(1), Some(58)),
        launch("a handler with three parameters", "fn handle(a: Request, b: Request, c: Request) -> Response { return Response(1); }", Some(1), Some(1)),
        launch("a handler declaring a binding of its own", "// reads its own buffer\n@group(1) @binding(0) var<storage, read_write> x: array<u32>;\nfn handle(msg: Request) -> Response { return Response(i32(x[0])); }", Some(2), Some(1)),
        launch("a handler declaring a WGSL built-in the harness calls", "fn min(a: u32, b: u32) -> u32 { return b; }\nfn handle(msg: Request) -> Response { return Response(msg.value); }", Some(1), Some(4)),
        launch("a handler calling workgroupBarrier", "fn handle(msg: Request) -> Response {\n  workgroupBarrier();\n  return Response(msg.value);\n}", Some(2), Some(3)),
        launch("an empty WGSL source", "", None, None),
    ]
}

/// A kernel the cpu backend cannot run: no handler; or a handler beside WGSL whose `handle`
/// a GPU backend would refuse (its signature is checked here too, without a WGSL compiler).
fn host_handler_rows() -> Vec<Row> {
    let wgsl_only = object(&[("input", request()), ("output", response()), ("wgsl", s(DOUBLER_WGSL))]);
    let launch = method("launch", &[s("web-bad-host"), wgsl_only]);
    let beside = |wgsl: &str| {
        let handler = js_function("m", "return { result: m.value * 2 };");
        let definition =
            object(&[("input", request()), ("output", response()), ("wgsl", s(wgsl)), ("handler", handler.into())]);
        method("launch", &[s("web-bad-host"), definition])
    };
    vec![
        row("launch of a kernel without a handler on the cpu backend", launch, "KernelCompileError")
            .prop("kernelId", "web-bad-host"),
        row(
            "a handler beside WGSL taking the wrong message type",
            beside("fn handle(msg: Response) -> Response { return msg; }"),
            "KernelCompileError",
        )
        .prop("kernelId", "web-bad-host")
        .prop("line", 1)
        .prop("column", 16),
        row(
            "a handler beside WGSL with no fn handle",
            beside("fn helper() -> i32 { return 1; }"),
            "KernelCompileError",
        )
        .prop("kernelId", "web-bad-host"),
    ]
}

fn rows_for(world: &World) -> Vec<Row> {
    let mut rows = id_rows();
    rows.extend(non_string_id_rows());
    rows.extend(transition_rows(&world.held));
    rows.extend(message_rows());
    rows.extend(handle_message_rows());
    rows.extend(removed_handle_rows());
    rows.extend(batch_rows());
    rows.extend(option_rows());
    rows.extend(operations_rows());
    rows.extend(define_message_rows());
    rows.extend(definition_rows());
    match world.backend {
        "cpu" => rows.extend(host_handler_rows()),
        _ => rows.extend(wgsl_rows()),
    }
    rows
}

/// Runs `rows` on the world while a kernel is held in `created` (its launch is compiling) and
/// one in `terminating` (its queue is draining). Both wait on the GPU, which reports only in
/// later event-loop tasks; the rows run within microtasks, so neither can move meanwhile (it is
/// checked: both must still be where they were after the rows).
async fn with_transient_states(world: &World) -> Result<usize, String> {
    register_doubler(CREATING);
    register_doubler(TERMINATING);
    call(world, "launch", &[s(TERMINATING)]).await.unwrap();
    call(world, "sendBatch", &[s(TERMINATING), int32s(&[1, 2, 3])]).await.unwrap();
    let terminate: Promise = Reflect::apply(
        get(&world.runtime, "terminate").unchecked_ref::<js_sys::Function>(),
        &world.runtime,
        &array(&[s(TERMINATING), timeout(30_000.0)]).unchecked_into(),
    )
    .unwrap()
    .unchecked_into();
    let launch: Promise = Reflect::apply(
        get(&world.runtime, "launch").unchecked_ref::<js_sys::Function>(),
        &world.runtime,
        &array(&[s(CREATING)]).unchecked_into(),
    )
    .unwrap()
    .unchecked_into();
    for _ in 0..10 {
        microtask().await;
    }
    assert_eq!(state_of(world, CREATING).as_deref(), Some("created"), "the launch is compiling");
    assert_eq!(state_of(world, TERMINATING).as_deref(), Some("terminating"), "the terminate is draining");
    let held = [(KernelState::Created, CREATING), (KernelState::Terminating, TERMINATING)];
    let count = try_table(world, "transient states", transition_rows(&held)).await;
    assert_eq!(state_of(world, CREATING).as_deref(), Some("created"), "still compiling after the rows");
    assert_eq!(state_of(world, TERMINATING).as_deref(), Some("terminating"), "still draining after the rows");
    js(launch).await.expect("the held launch completes");
    js(terminate).await.expect("the held terminate drains");
    assert_eq!(receive_n(world, TERMINATING, 3).await, [2, 4, 6], "the draining kernel's answers");
    call(world, "activate", &[s(CREATING)]).await.unwrap();
    count
}

// ---- the tables ----

/// The whole table on the browser's WebGPU, from all six states.
#[wasm_bindgen_test]
async fn every_bad_input_is_refused_by_name_and_changes_nothing_on_webgpu() {
    let world = World::new("webgpu").await;
    let rows = rows_for(&world);
    let count = run_table(&world, "table", rows).await
        + with_transient_states(&world).await.unwrap_or_else(|report| panic!("{report}"));
    world.assert_queues_intact().await;
    web_sys_log(&format!("bad inputs tried in the browser (webgpu, all): {count}"));
}

/// The whole table on the cpu backend (JavaScript handlers).
#[wasm_bindgen_test]
async fn every_bad_input_is_refused_by_name_and_changes_nothing_on_the_cpu_backend() {
    let world = World::new("cpu").await;
    let rows = rows_for(&world);
    run_table(&world, "table", rows).await;
    world.assert_queues_intact().await;
}

/// `managedKernel(runtime, id, definition)` (a free function the tests call from Rust, on a
/// runtime of its own) refuses what `launch` refuses, and leaves no kernel behind.
#[wasm_bindgen_test]
async fn managed_kernel_refuses_bad_ids_and_definitions() {
    let runtime = Runtime::new(RuntimeOptions::default())
        .await
        .unwrap_or_else(|e| panic!("WebGPU runtime could not start (is --enable-unsafe-webgpu set?): {e}"));
    let rt = JsRuntime::from_runtime(runtime);
    let bad_state = doubler_definition();
    Reflect::set(&bad_state, &"state".into(), &object(&[("length", n(0.0))])).unwrap();
    let broken = object(&[
        ("input", request()),
        ("output", response()),
        ("wgsl", s("fn handle(m: Request) -> Response { nope }")),
    ]);
    let cases: Vec<(&str, String, Option<JsValue>, &str)> = vec![
        ("an unknown id", NOWHERE.into(), None, "KernelNotFoundError"),
        ("an empty id", String::new(), None, "KernelNotFoundError"),
        ("an over-long id", long_id(), None, "KernelNotFoundError"),
        ("a definition with an empty id", String::new(), Some(doubler_definition()), "RangeError"),
        ("a definition with an over-long id", long_id(), Some(doubler_definition()), "RangeError"),
        ("a definition with a bad state", "web-bad-managed".into(), Some(bad_state), "RangeError"),
        ("a definition that is a number", "web-bad-managed".into(), Some(n(5.0)), "TypeError"),
        ("a definition with invalid WGSL", "web-bad-managed".into(), Some(broken), "KernelCompileError"),
    ];
    let mut failures = Vec::new();
    for (what, id, definition, expect) in &cases {
        let result = js(managed_kernel(&rt, id.clone().into(), definition.clone(), None)).await;
        let (name, message) = match &result {
            Ok(_) => ("(accepted)".to_owned(), String::new()),
            Err(error) => error_name(error),
        };
        if name != *expect || !rt.kernel_ids().is_empty() {
            failures.push(format!("- managedKernel with {what}: {name} ({message}), kernels {:?}", rt.kernel_ids()));
        }
    }
    web_sys_log(&format!("bad inputs tried in the browser (managedKernel): {}", cases.len()));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A JavaScript handler (cpu backend) that answers with the wrong shape — not an object, a
/// field of the wrong kind or range, a missing or unknown field, a Promise — or throws fails
/// that message alone: its `call` rejects with `MessageDroppedError`, `errors`,
/// `messagesDropped` and `messagesProcessed` count it, `lastError` (and the rejection) says why,
/// and the kernel goes on answering.
#[wasm_bindgen_test]
async fn cpu_handlers_answering_the_wrong_shape_fail_only_that_message() {
    let world = World { runtime: create("cpu").await, backend: "cpu", held: Vec::new(), removed: JsValue::NULL };
    let handler = js_function(
        "m",
        "switch (m.value) {
           case 1: return 5;
           case 2: return 'x';
           case 3: return [];
           case 4: return { result: 'x' };
           case 5: return { wrong: 1 };
           case 6: return { result: 1, extra: 2 };
           case 7: return { result: 2 ** 40 };
           case 8: return { result: NaN };
           case 9: return Promise.resolve({ result: 9 });
           case 10: throw new RangeError('no');
           case 11: { let v = 1; for (let i = 0; i < 100000; i++) v = [v]; return { result: v }; }
           case 12: return Symbol('s');
           case 13: return { result: 10n };
           case 14: return { result: 1.5 };
           default: return { result: 42 };
         }",
    );
    ring_kernel(object(&[
        ("id", s("web-bad-handler")),
        ("input", request()),
        ("output", response()),
        ("handler", handler.into()),
    ]))
    .unwrap();
    call(&world, "launch", &[s("web-bad-handler")]).await.unwrap();
    call(&world, "activate", &[s("web-bad-handler")]).await.unwrap();
    let telemetry = || {
        let get_telemetry: js_sys::Function = get(&world.runtime, "getTelemetry").dyn_into().unwrap();
        get_telemetry.call1(&world.runtime, &s("web-bad-handler")).unwrap()
    };
    let count = |t: &JsValue, key: &str| get(t, key).as_f64().unwrap();
    let mut failures = Vec::new();
    for v in 1..=14 {
        let before = telemetry();
        let result = call(&world, "call", &[s("web-bad-handler"), value(n(v as f64)), timeout(30_000.0)]).await;
        let after = telemetry();
        let (name, message) = match &result {
            Ok(answer) => ("(answered)".to_owned(), format!("{answer:?}")),
            Err(error) => error_name(error),
        };
        let counted = ["errors", "messagesDropped", "messagesProcessed"]
            .iter()
            .all(|key| count(&after, key) == count(&before, key) + 1.0);
        let why = get(&after, "lastError").as_string().unwrap_or_default();
        // The rejection says why too, not only telemetry.
        if name != "MessageDroppedError" || !counted || why.is_empty() || !message.contains(&why) {
            failures.push(format!("- answer #{v}: {name} ({message}); counted: {counted}; lastError: {why:?}"));
        }
    }
    let good = call(&world, "call", &[s("web-bad-handler"), value(n(0.0)), timeout(30_000.0)]).await.unwrap();
    assert_eq!(get(&good, "result").as_f64(), Some(42.0), "the kernel goes on answering");
    assert_eq!(state_of(&world, "web-bad-handler").as_deref(), Some("active"));
    web_sys_log("bad inputs tried in the browser (handler answers): 14");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Edge values that are not bad input: `-0` is the integer 0; a `sendBatch` larger than the
/// queue's room queues the first messages that fit and rejects with a `QueueFullError` whose
/// `accepted` says how many (0 when there is no room, changing nothing but the kernel's
/// `errors`); see `tests/bad_input.rs`.
#[wasm_bindgen_test]
async fn negative_zero_is_zero_and_oversized_batches_say_how_many_went_in() {
    let world = World::new("webgpu").await;
    let answer = call(&world, "call", &[s(ACTIVE), value(n(-0.0)), timeout(30_000.0)]).await.unwrap();
    assert_eq!(get(&answer, "result").as_f64(), Some(0.0));
    let batch = [s(LAUNCHED), int32s(&[10, 11, 12, 13, 14]), timeout(0.0)];
    let cut_short = call(&world, "sendBatch", &batch).await.expect_err("room for 2 of 5");
    assert_eq!(error_name(&cut_short).0, "QueueFullError");
    assert_eq!(get(&cut_short, "accepted").as_f64(), Some(2.0), "the first two went in");
    let full = snapshot(&world);
    let refused = call(&world, "sendBatch", &[s(LAUNCHED), int32s(&[15]), timeout(0.0)]).await.expect_err("no room");
    assert_eq!((error_name(&refused).0, get(&refused, "accepted").as_f64()), ("QueueFullError".into(), Some(0.0)));
    let mut expected = full.clone();
    *expected.errors.get_mut(LAUNCHED).unwrap() += 1.0;
    assert_eq!(snapshot(&world), expected, "a batch with no room changes nothing but the error count");
    call(&world, "activate", &[s(LAUNCHED)]).await.unwrap();
    assert_eq!(receive_n(&world, LAUNCHED, 4).await, [2, 4, 20, 22], "exactly the first two, in order");
}

/// A kernel whose ring would be larger than the device can bind: launch refuses it by name and
/// the runtime keeps working (natively too: `tests/bad_input.rs`).
#[wasm_bindgen_test]
async fn a_ring_larger_than_the_device_can_bind_is_refused_at_launch() {
    let navigator = get(&js_sys::global(), "navigator");
    let adapter = invoke(&get(&navigator, "gpu"), "requestAdapter", &[]).await.unwrap();
    let binding = get(&get(&adapter, "limits"), "maxStorageBufferBindingSize").as_f64().unwrap();
    let queue_size = (binding / 4096.0).floor() + 1.0;
    let big = define_message("WebBadBig".into(), object(&[("x", s("array<f32, 1024>"))])).unwrap();
    let definition = object(&[
        ("input", big),
        ("output", response()),
        ("wgsl", s("fn handle(m: WebBadBig) -> Response { return Response(i32(m.x[0])); }")),
    ]);
    let world = World { runtime: create("webgpu").await, backend: "webgpu", held: Vec::new(), removed: JsValue::NULL };
    let options = object(&[("queueSize", n(queue_size))]);
    let launched = call(&world, "launch", &[s("web-bad-big"), definition, options]).await;
    let works = async {
        call(&world, "launch", &[s("doubler")]).await?;
        call(&world, "activate", &[s("doubler")]).await?;
        call(&world, "call", &[s("doubler"), value(n(21.0)), timeout(30_000.0)]).await
    }
    .await;
    web_sys_log("bad inputs tried in the browser (ring limits): 1");
    // Past 256 MiB a host queue is refused first (it lives in wasm memory): a ring the device
    // cannot bind is then one wasm memory could not queue either.
    let expected = if queue_size * 4096.0 > 268_435_456.0 { "RangeError" } else { "KernelCompileError" };
    let refused = matches!(&launched, Err(e) if error_name(e).0 == expected);
    let answered = works.as_ref().is_ok_and(|answer| get(answer, "result").as_f64() == Some(42.0));
    assert!(
        refused && answered,
        "a queue of {queue_size} 4096-byte messages (the device binds {binding} bytes): launch gave {:?} (not a \
         {expected}), then a doubler call gave {:?}",
        launched.map_err(|e| error_name(&e)),
        works.map_err(|e| error_name(&e))
    );
}

/// `defineMessage` with a name that is no string is a `TypeError` saying so (wasm-bindgen's own
/// conversion of a number into a string trapped in the allocator), and a handler that is no
/// function is named as what is wrong, with WGSL or without.
#[wasm_bindgen_test]
fn a_message_name_that_is_no_string_and_a_handler_that_is_no_function_are_named() {
    for name in [JsValue::from(5), JsValue::NULL, JsValue::UNDEFINED] {
        let refused = define_message(name.clone(), object(&[("a", s("i32"))])).unwrap_err();
        let (kind, text) = error_name(&refused);
        assert_eq!(kind, "TypeError", "{name:?}: {text}");
        assert!(text.starts_with("defineMessage's name must be a string, got "), "{name:?}: {text}");
    }
    for wgsl in [JsValue::UNDEFINED, s(DOUBLER_WGSL)] {
        let definition = doubler_definition();
        Reflect::set(&definition, &"id".into(), &s("bad-handler")).unwrap();
        Reflect::set(&definition, &"wgsl".into(), &wgsl).unwrap();
        Reflect::set(&definition, &"handler".into(), &JsValue::from(5)).unwrap();
        let (kind, text) = error_name(&ring_kernel(definition).unwrap_err());
        assert_eq!(
            (kind.as_str(), text.as_str()),
            ("TypeError", "kernel 'bad-handler': handler must be a function, got 5")
        );
    }
}

/// A message type's name cannot be given other fields later: messages nesting it by name would
/// change meaning. The same fields again are fine.
#[wasm_bindgen_test]
fn a_message_name_keeps_its_fields() {
    define_message("Kept".into(), object(&[("x", s("f32"))])).unwrap();
    define_message("Kept".into(), object(&[("x", s("f32"))])).expect("the same fields again");
    let nesting = define_message("KeptInside".into(), object(&[("k", s("Kept"))])).unwrap();
    let (kind, text) =
        error_name(&define_message("Kept".into(), object(&[("x", s("f32")), ("y", s("f32"))])).unwrap_err());
    assert_eq!(
        (kind.as_str(), text.as_str()),
        ("TypeError", "message type 'Kept' is already defined with other fields; give this one another name")
    );
    let definition = object(&[("id", s("kept-echo")), ("input", nesting.clone()), ("output", nesting)]);
    Reflect::set(&definition, &"handler".into(), &js_function("m", "return m;").into()).unwrap();
    ring_kernel(definition).expect("the nesting message still means what it meant");
}

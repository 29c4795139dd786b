//! The few things that differ between native and wasm, kept at the edge so the runtime's logic
//! has no `cfg`: spawning the tick loop, timers, and driving GPU callbacks.

use std::future::Future;
use std::time::Duration;

/// Runs the tick loop in the background. Natively it gets its own thread (blocking in
/// `device.poll(Wait)` there is fine); on the web it is a task on the page's event loop.
#[cfg(not(target_arch = "wasm32"))]
pub fn spawn_tick_loop(tick_loop: impl Future<Output = ()> + Send + 'static) -> TickLoopHandle {
    let thread = std::thread::Builder::new()
        .name("ringkernel-tick".into())
        .spawn(move || pollster::block_on(tick_loop))
        .expect("spawning the tick loop thread");
    TickLoopHandle(Some(thread))
}

#[cfg(target_arch = "wasm32")]
pub fn spawn_tick_loop(tick_loop: impl Future<Output = ()> + 'static) -> TickLoopHandle {
    wasm_bindgen_futures::spawn_local(tick_loop);
    TickLoopHandle(None)
}

/// The running tick loop. Natively its thread is joined once the tick loop was told to stop, so the
/// device is released by the runtime's owner and not by a detached thread racing the process's
/// exit (GL drivers abort with a double free then). On the web there is nothing to join.
pub struct TickLoopHandle(Option<std::thread::JoinHandle<()>>);

impl TickLoopHandle {
    /// Waits for the tick loop to return; call after telling it to stop. On the loop's own
    /// thread (the runtime's last handle let go by an alert callback) it does not wait: a thread
    /// cannot join itself, and the loop returns by itself once it sees the stop.
    pub fn join(&mut self) {
        if let Some(thread) = self.0.take() {
            #[cfg(not(target_arch = "wasm32"))]
            if thread.thread().id() == std::thread::current().id() {
                return;
            }
            // A panic in the tick loop was already reported by the panic hook.
            let _ = thread.join();
        }
    }
}

/// Runs the future `work` makes to completion off the caller's thread and resolves with its
/// output (`None` if it panicked). Natively this is a short-lived thread, so driver shader
/// compilation does not stall the caller's executor (the future is made on that thread because
/// wgpu error scopes are per thread); on the web, where nothing may block, it is just awaited.
#[cfg(not(target_arch = "wasm32"))]
pub async fn run_detached<T, F>(work: impl FnOnce() -> F + Send + 'static) -> Option<T>
where
    T: Send + 'static,
    F: Future<Output = T>,
{
    let (sender, receiver) = futures_channel::oneshot::channel();
    std::thread::Builder::new()
        .name("ringkernel-compile".into())
        .spawn(move || {
            let _ = sender.send(pollster::block_on(work()));
        })
        .ok()?;
    receiver.await.ok()
}

#[cfg(target_arch = "wasm32")]
pub async fn run_detached<T, F>(work: impl FnOnce() -> F + 'static) -> Option<T>
where
    F: Future<Output = T>,
{
    Some(work().await)
}

/// Runs the future `work` makes in the background and forgets it: natively on a short-lived
/// thread of its own called `name` (driver shader compilation or a blocking read never stalls
/// the tick loop or the caller; the future is made there, as wgpu error scopes are per thread),
/// on the web as a task of the event loop. `false` if no thread could be made natively: the work
/// is not done then (callers fall back to what works without it).
#[cfg(not(target_arch = "wasm32"))]
pub fn spawn_detached<F: Future<Output = ()>>(name: &str, work: impl FnOnce() -> F + Send + 'static) -> bool {
    std::thread::Builder::new().name(name.into()).spawn(move || pollster::block_on(work())).is_ok()
}

#[cfg(target_arch = "wasm32")]
pub fn spawn_detached<F: Future<Output = ()> + 'static>(_name: &str, work: impl FnOnce() -> F + 'static) -> bool {
    wasm_bindgen_futures::spawn_local(work());
    true
}

/// Resolves after `ms` milliseconds without blocking, on [`crate::timers`]' one alarm (a timer
/// thread natively, one `setTimeout` on the web). An infinite `ms` never resolves.
pub fn sleep_ms(ms: f64) -> impl Future<Output = ()> + Unpin {
    sleep_ms_holding(ms, true)
}

/// [`sleep_ms`], holding Node's process open while pending or not (see `timers::sleep_unheld`).
pub fn sleep_ms_holding(ms: f64, holds: bool) -> impl Future<Output = ()> + Unpin {
    match holds {
        true => crate::timers::sleep(saturating_ms(ms)),
        false => crate::timers::sleep_unheld(saturating_ms(ms)),
    }
}

/// `ms` milliseconds (at least 0) as a `Duration`, `Duration::MAX` beyond what one holds (a
/// timeout of 1e300 ms waits as long as no timeout does, rather than panicking in
/// `Duration::from_secs_f64`).
pub(crate) fn saturating_ms(ms: f64) -> Duration {
    Duration::try_from_secs_f64(ms.max(0.0) / 1000.0).unwrap_or(Duration::MAX)
}

/// Gives the page's event loop a turn (a task of its own) between host-handler ticks, so a
/// long stream of `cpu` work never freezes rendering and input. Natively the tick loop has its own
/// thread and this returns at once.
pub async fn yield_to_event_loop() {
    #[cfg(target_arch = "wasm32")]
    {
        // A message to ourselves, not `setTimeout(0)`: browsers stretch chained zero-delay
        // timers to 4 ms, which capped the cpu backend near 250 ticks a second.
        let Ok(channel) = web_sys::MessageChannel::new() else {
            return;
        };
        let turn = js_sys::Promise::new(&mut |resolve, _reject| {
            channel.port1().set_onmessage(Some(&resolve));
            if channel.port2().post_message(&wasm_bindgen::JsValue::UNDEFINED).is_err() {
                let _ = resolve.call0(&wasm_bindgen::JsValue::UNDEFINED);
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(turn).await;
        // Node keeps a port that has a listener alive until it is closed: left open, one turn
        // kept the process from ever exiting.
        channel.port1().close();
    }
}

/// Before the web's tick loop plans again at once (input still waits after a tick), lets what
/// the tick's delivery woke run first: callers whose answers came queue their next messages a
/// microtask later, and planning before them left those for the tick after, so independent
/// callers split into two cohorts that took every other tick, each half full. Natively the
/// callers run on threads of their own, and this returns at once.
pub async fn let_woken_run() {
    #[cfg(target_arch = "wasm32")]
    {
        let resolved = js_sys::Promise::resolve(&wasm_bindgen::JsValue::UNDEFINED);
        let _ = wasm_bindgen_futures::JsFuture::from(resolved).await;
    }
}

/// The wgpu label of an object made every tick: natively `Some(label)`, for validation errors;
/// on the web `None`, since each label there is a string made in JavaScript (three a tick: the
/// encoder, its pass and its command buffer, about 3 µs of a one-message round trip).
pub const fn hot_label(label: &'static str) -> Option<&'static str> {
    if cfg!(target_arch = "wasm32") {
        None
    } else {
        Some(label)
    }
}

/// Whether a round trip's tick has the next one's commands encoded while the device works (see
/// `backend::gpu::ahead`). On the web, where each encoding call crosses into JavaScript, that
/// takes them off the round trip's path. Natively wgpu-core encodes a tick in microseconds, and
/// on lavapipe with two cores, where the encoding competes with the device's threads, it gained
/// nothing for single kernels and added time with fused chains; native ticks encode as they go.
/// See "Commands encoded ahead" in `MEASURED.md`.
pub const ENCODE_AHEAD: bool = cfg!(target_arch = "wasm32");

/// Whether a buffer the runtime lets go of is destroyed there and then. On the web dropping a
/// `GPUBuffer` frees its memory only when the page's garbage collector gets to it (a page
/// churning large kernels held hundreds of MiB that way while the runtime counted a few), so it
/// is destroyed, which WebGPU allows once no command still to be submitted uses it (see
/// `GpuBuffer`'s `Drop`). Natively wgpu frees a dropped buffer once the work using it is done.
pub const DESTROY_DROPPED_BUFFERS: bool = cfg!(target_arch = "wasm32");

/// Whether a tick input of `bytes` goes up with its ring header in one staged write (wgpu's
/// `write_buffer_with`). Natively that write is the one copy, into wgpu's staging memory,
/// whatever the size. On the web wgpu stages it in a zeroed buffer on the wasm heap, which
/// `writeBuffer` then copies again, so an input over 64 KiB goes up straight from the input
/// queue instead (a second `writeBuffer`, a few µs, against ~70 µs of zeroing and copying for
/// 100,000 four-byte messages).
pub const fn stage_write(bytes: usize) -> bool {
    !cfg!(target_arch = "wasm32") || bytes <= 64 * 1024
}

/// Lets a burst of work that woke the tick loop finish arriving before the tick plans it, so
/// sixteen sends in a row from one thread go out in one tick, not in one with the first few and a
/// second with the rest. Natively the tick loop's thread can wake while the sender is still
/// sending: it waits while `arrivals()` keeps changing, until it has held still for 2 µs (a few
/// sends' time), and never longer than 50 µs in all (about 64 sends; half a tick on a software
/// adapter). On the web a task's sends are all queued before the tick loop's task runs, so this
/// returns at once.
pub fn settle(arrivals: impl Fn() -> usize) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        const QUIET: Duration = Duration::from_micros(2);
        const LONGEST: Duration = Duration::from_micros(50);
        let started = std::time::Instant::now();
        let (mut seen, mut quiet_since) = (arrivals(), started);
        loop {
            std::hint::spin_loop();
            let now = std::time::Instant::now();
            let current = arrivals();
            if current != seen {
                (seen, quiet_since) = (current, now);
            }
            if now - quiet_since >= QUIET || now - started >= LONGEST {
                return;
            }
        }
    }
    #[cfg(target_arch = "wasm32")]
    let _ = arrivals;
}

/// Lets wgpu deliver `map_async` callbacks: blocks the tick loop thread until the GPU is done.
/// (On the web the event loop delivers them; readbacks there do not go through wgpu's maps.)
#[cfg(not(target_arch = "wasm32"))]
pub fn drive_gpu(device: &wgpu::Device) {
    // An error here (device lost or timeout) surfaces through the map callback too.
    let _ = device.poll(wgpu::PollType::wait_indefinitely());
}

/// Milliseconds on a monotonic clock shared by every runtime of this process or page: natively
/// since the first call, on the web `performance.now()` (since the page or worker began).
#[cfg(not(target_arch = "wasm32"))]
pub fn now_ms() -> f64 {
    use std::sync::OnceLock;
    static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
    ORIGIN.get_or_init(std::time::Instant::now).elapsed().as_secs_f64() * 1000.0
}

#[cfg(target_arch = "wasm32")]
pub fn now_ms() -> f64 {
    crate::timers::performance_now()
}

/// Wall-clock milliseconds since the Unix epoch (`Date.now()` on the web), for timestamps
/// people read; durations use [`now_ms`].
#[cfg(not(target_arch = "wasm32"))]
pub fn unix_time_ms() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[cfg(target_arch = "wasm32")]
pub fn unix_time_ms() -> f64 {
    js_sys::Date::now()
}

/// Whether this JavaScript realm exposes `navigator.gpu` (browsers with WebGPU, Node with the
/// `webgpu` package). wgpu's WebGPU-only build panics when it is missing, so [`gpu_instance`] asks first.
#[cfg(target_arch = "wasm32")]
pub fn browser_has_webgpu() -> bool {
    let global = js_sys::global();
    let navigator = js_sys::Reflect::get(&global, &"navigator".into()).unwrap_or(wasm_bindgen::JsValue::UNDEFINED);
    if navigator.is_undefined() || navigator.is_null() {
        return false;
    }
    js_sys::Reflect::get(&navigator, &"gpu".into()).map(|gpu| !gpu.is_undefined() && !gpu.is_null()).unwrap_or(false)
}

/// Whether this JavaScript realm is Node (`process.versions.node`), to say how to get WebGPU there.
#[cfg(target_arch = "wasm32")]
pub fn runs_in_node() -> bool {
    let field = |object: &wasm_bindgen::JsValue, name: &str| {
        js_sys::Reflect::get(object, &name.into()).unwrap_or(wasm_bindgen::JsValue::UNDEFINED)
    };
    let process = field(&js_sys::global(), "process");
    if process.is_undefined() || process.is_null() {
        return false;
    }
    let versions = field(&process, "versions");
    !versions.is_undefined() && !versions.is_null() && field(&versions, "node").is_string()
}

/// wgpu's instance, or `None` where wgpu would panic for want of `navigator.gpu`.
///
/// wgpu's WebGPU backend looks for `navigator.gpu` only in a window or a dedicated worker, which it
/// recognises by a global `Window` or `WorkerGlobalScope`, and panics anywhere else, even where
/// `navigator.gpu` exists (Node with the `webgpu` package has neither). There a placeholder
/// `WorkerGlobalScope` stands on `globalThis` for the synchronous `Instance::new` only: wgpu reads
/// `navigator.gpu` then, keeps the object it found, and never looks for it again.
#[cfg(target_arch = "wasm32")]
pub fn gpu_instance(desc: wgpu::InstanceDescriptor) -> Option<wgpu::Instance> {
    use js_sys::Reflect;
    use wasm_bindgen::JsValue;
    if !browser_has_webgpu() {
        return None;
    }
    let global = js_sys::global();
    let scope = JsValue::from_str("WorkerGlobalScope");
    let defined = |name: &JsValue| Reflect::get(&global, name).is_ok_and(|value| !value.is_undefined());
    let placeholder = !defined(&"Window".into()) && !defined(&scope);
    // A global that refuses the placeholder (frozen, say) means no WebGPU, not a panic.
    if placeholder && !(Reflect::set(&global, &scope, &js_sys::Object::new()).unwrap_or(false) && defined(&scope)) {
        return None;
    }
    let instance = wgpu::Instance::new(desc);
    if placeholder {
        let _ = Reflect::delete_property(&global, &scope);
    }
    Some(instance)
}

/// wgpu's instance; natively there is always one (it may still find no adapter).
#[cfg(not(target_arch = "wasm32"))]
pub fn gpu_instance(desc: wgpu::InstanceDescriptor) -> Option<wgpu::Instance> {
    Some(wgpu::Instance::new(desc))
}

/// A warning for the developer: `tracing`'s `warn!` natively, `console.warn` in the browser.
pub fn warn(message: &str) {
    #[cfg(not(target_arch = "wasm32"))]
    tracing::warn!("{message}");
    #[cfg(target_arch = "wasm32")]
    web_sys::console::warn_1(&message.into());
}

/// An `f64` printed as Rust prints it: `{}` (Display) and `{:?}` (Debug) give the same text as
/// for the `f64` itself. Natively it is the `f64`'s own formatting; in the wasm it is built from
/// JavaScript's shortest round-trip digits (`src/wasm/js/float.js`, the digits Rust picks),
/// because Rust's float formatting would cost the package about 6 KB gzipped.
#[derive(Clone, Copy)]
pub struct Float(pub f64);

#[cfg(not(target_arch = "wasm32"))]
impl std::fmt::Display for Float {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl std::fmt::Debug for Float {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(target_arch = "wasm32")]
impl std::fmt::Display for Float {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&float_text(self.0, false))
    }
}

#[cfg(target_arch = "wasm32")]
impl std::fmt::Debug for Float {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&float_text(self.0, true))
    }
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/wasm/js/float.js")]
extern "C" {
    /// [`Float`]'s text: Display's (never an exponent) or, with `debug`, Debug's (`.0` on whole
    /// numbers; an exponent below 1e-4 and from 1e16 on).
    #[wasm_bindgen(js_name = floatText)]
    fn float_text(value: f64, debug: bool) -> String;
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

    use super::Float;

    wasm_bindgen_test_configure!(run_in_browser);

    /// [`Float`] prints what Rust's own float formatting prints.
    #[wasm_bindgen_test]
    #[allow(clippy::excessive_precision)] // literals that round: the digits printed are the test
    fn floats_print_as_rust_prints_them() {
        #[rustfmt::skip]
        let mut values = vec![
            0.0, -0.0, 1.0, -1.0, 0.5, 1.5, -1.5, 0.1, 0.2 + 0.1, 1.0 / 3.0, 2.0 / 3.0, 100.0, 123.456, 1e-4, 9.99e-5,
            1e-5, 1.5e-7, 1e-7, 1e-6, 1.25e-6, 1e15, 1e16, 1.5e16, 9.007_199_254_740_993e15, 1e20, 1e21, 1.5e21,
            1.234_567_89e25, 5e-324, f64::MIN_POSITIVE, f64::MAX, f64::MIN, f64::EPSILON, f64::NAN, f64::INFINITY,
            f64::NEG_INFINITY, 2f64.powi(53), 2f64.powi(64), 0.8, 0.95, 0.05, 60_000.0, 9.0e15, 4_294_967_296.0,
            1.700_000_000_000_001_3e14, 0.999_999_999_999_999_9, 9.999_999_999_999_999e22,
        ];
        // Halfway cases (JavaScript and Rust break the tie differently) among powers of two.
        values.extend((-80..80).map(|k| 2f64.powi(k)));
        let mut x = 1.0e-30_f64;
        while x < 1e30 {
            values.extend([x, x * 1.7, -x * 3.3, x * 9.999]);
            x *= 10.0;
        }
        for v in values {
            assert_eq!(Float(v).to_string(), v.to_string(), "{v:e}");
            assert_eq!(format!("{:?}", Float(v)), format!("{v:?}"), "{v:e}");
        }
    }

    /// The page's clocks: `now_ms` is `performance.now()`'s, `unix_time_ms` `Date.now()`'s, and a
    /// sleep on the timers' alarm (deadlines on `now_ms`) lasts at least what it was asked.
    #[wasm_bindgen_test]
    async fn the_clocks_are_the_pages_and_a_sleep_lasts_what_it_was_asked() {
        let performance = js_sys::Reflect::get(&js_sys::global(), &"performance".into()).unwrap();
        let now: js_sys::Function = js_sys::Reflect::get(&performance, &"now".into()).unwrap().into();
        let page_ms = || now.call0(&performance).unwrap().as_f64().unwrap();
        let (before, ours, after) = (page_ms(), super::now_ms(), page_ms());
        assert!(before <= ours && ours <= after, "{before} <= {ours} <= {after}");
        let (before, ours, after) =
            (js_sys::Date::new_0().get_time(), super::unix_time_ms(), js_sys::Date::new_0().get_time());
        assert!(before <= ours && ours <= after, "{before} <= {ours} <= {after}");
        let started = super::now_ms();
        super::sleep_ms(30.0).await;
        let slept = super::now_ms() - started;
        // The deadline is kept to the nanosecond below it.
        assert!(slept >= 30.0 - 1e-6, "{slept} ms");
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod native_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use super::settle;

    /// Work that never stops arriving cannot hold the tick loop: settling gives up at its bound
    /// (50 µs; a second here, so a loaded machine cannot fail it).
    #[test]
    fn settling_ends_while_work_keeps_arriving() {
        let arrivals = AtomicUsize::new(0);
        let started = Instant::now();
        settle(|| arrivals.fetch_add(1, Ordering::Relaxed));
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        assert!(arrivals.load(Ordering::Relaxed) > 2, "it looked more than once");
    }

    /// With nothing arriving it waits out the quiet spell and no more.
    #[test]
    fn settling_ends_once_nothing_arrives() {
        let started = Instant::now();
        settle(|| 7);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_micros(2) && waited < Duration::from_secs(1), "{waited:?}");
    }
}

/// An option's name in error texts, as this build's users write it: JavaScript's key on the web
/// (`option_name!("queueSize", "queue_size")` is `"queueSize"`), the Rust field natively, with
/// the key that option objects read through serde use after it (`"queue_size (queueSize)"`).
/// A literal either way, so `concat!` and format strings take it.
#[cfg(target_arch = "wasm32")]
macro_rules! option_name {
    ($js:literal, $rust:literal) => {
        $js
    };
}
#[cfg(not(target_arch = "wasm32"))]
macro_rules! option_name {
    ($js:literal, $rust:literal) => {
        concat!($rust, " (", $js, ")")
    };
}
pub(crate) use option_name;

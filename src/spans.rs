//! Tracing spans around the runtime's phases: a kernel's launch, each tick and its three steps
//! (plan, execute, deliver), and device recovery. Off unless `RuntimeOptions::tracing` is on;
//! when off, a span is a `None` and costs one branch.
//!
//! Natively the spans are the `tracing` crate's (target `ringkernel_web`, level INFO), so any
//! subscriber (`tracing-subscriber`, OpenTelemetry, tokio-console's) records them. In the
//! browser, and in workers and Node, each finished span is a User Timing measure
//! (`performance.measure("ringkernel:tick.plan", { start, end, detail })`), which DevTools'
//! performance panel shows on its Timings track and a `PerformanceObserver` can collect.

use std::future::Future;

/// The phases the runtime marks. The names are the spans' names natively and, prefixed with
/// `ringkernel:`, the measures' names in the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// A kernel's launch: compiling its handler and creating its rings.
    Launch,
    /// One tick of the tick loop, from plan to deliver.
    Tick,
    /// The tick's plan (under the table lock).
    Plan,
    /// The backend's step: write, dispatch, copy, read back.
    Execute,
    /// Answers into queues and ledgers (under the table lock).
    Deliver,
    /// Opening a new device after a lost one and relaunching its kernels.
    Recovery,
}

impl Phase {
    /// The measure's name in the browser.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    fn measure_name(self) -> &'static str {
        match self {
            Phase::Launch => "ringkernel:launch",
            Phase::Tick => "ringkernel:tick",
            Phase::Plan => "ringkernel:tick.plan",
            Phase::Execute => "ringkernel:tick.execute",
            Phase::Deliver => "ringkernel:tick.deliver",
            Phase::Recovery => "ringkernel:recovery",
        }
    }
}

/// An open span; it ends when dropped. Work is inside it only while it runs through
/// [`in_scope`](Span::in_scope) or [`run`](Span::run), so a span can cover the two halves of a
/// step with a wait between them, and never covers other tasks that run meanwhile.
#[must_use = "a span ends when dropped"]
pub(crate) struct Span(Option<imp::Open>);

/// Opens a span for `phase` if `on`; `kernel` names the kernel it concerns, if one.
pub(crate) fn span(on: bool, phase: Phase, kernel: Option<&str>) -> Span {
    Span(on.then(|| imp::Open::new(phase, kernel)))
}

/// Runs `work` inside a new span for `phase` if `on`.
pub(crate) async fn around<F: Future>(on: bool, phase: Phase, kernel: Option<&str>, work: F) -> F::Output {
    span(on, phase, kernel).run(work).await
}

impl Span {
    /// Runs `work` inside the span.
    pub fn in_scope<T>(&self, work: impl FnOnce() -> T) -> T {
        match &self.0 {
            Some(open) => open.in_scope(work),
            None => work(),
        }
    }

    /// Awaits `work` inside the span (natively, entered each time it is polled).
    pub async fn run<F: Future>(&self, work: F) -> F::Output {
        match &self.0 {
            Some(open) => open.run(work).await,
            None => work.await,
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::future::Future;

    use tracing::Instrument;

    use super::Phase;

    /// A `tracing` span; it closes when the last handle to it is dropped.
    pub struct Open(tracing::Span);

    impl Open {
        pub fn new(phase: Phase, kernel: Option<&str>) -> Self {
            // `tracing` wants each span's name at compile time, hence one macro call per phase.
            let kernel = kernel.unwrap_or("");
            Open(match phase {
                Phase::Launch => tracing::info_span!(target: "ringkernel_web", "launch", kernel),
                Phase::Tick => tracing::info_span!(target: "ringkernel_web", "tick"),
                Phase::Plan => tracing::info_span!(target: "ringkernel_web", "tick.plan"),
                Phase::Execute => tracing::info_span!(target: "ringkernel_web", "tick.execute"),
                Phase::Deliver => tracing::info_span!(target: "ringkernel_web", "tick.deliver"),
                Phase::Recovery => tracing::info_span!(target: "ringkernel_web", "recovery"),
            })
        }

        pub fn in_scope<T>(&self, work: impl FnOnce() -> T) -> T {
            self.0.in_scope(work)
        }

        pub async fn run<F: Future>(&self, work: F) -> F::Output {
            work.instrument(self.0.clone()).await
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use std::cell::Cell;
    use std::future::Future;

    use js_sys::{Function, Object, Reflect};
    use wasm_bindgen::{JsCast, JsValue};

    use super::Phase;

    /// A span's start on the User Timing clock (`performance.now()`) and what it concerns;
    /// measured when dropped.
    pub struct Open {
        phase: Phase,
        kernel: Option<String>,
        start: Option<f64>,
    }

    impl Open {
        pub fn new(phase: Phase, kernel: Option<&str>) -> Self {
            Open { phase, kernel: kernel.map(str::to_owned), start: PERFORMANCE.with(|p| now(p.as_ref()?)) }
        }
    }

    impl Drop for Open {
        fn drop(&mut self) {
            if let Some(start) = self.start {
                PERFORMANCE.with(|p| p.as_ref().map(|p| measure(p, self.phase, self.kernel.as_deref(), start)));
            }
        }
    }

    impl Open {
        pub fn in_scope<T>(&self, work: impl FnOnce() -> T) -> T {
            work()
        }

        pub async fn run<F: Future>(&self, work: F) -> F::Output {
            work.await
        }
    }

    /// User Timing keeps every measure in the page's performance timeline; after this many, the
    /// runtime's own are cleared (DevTools and `PerformanceObserver`s have seen them by then),
    /// so a long-running page with tracing on does not grow without bound.
    const CLEAR_EVERY: u32 = 4096;

    thread_local! {
        static MEASURED: Cell<u32> = const { Cell::new(0) };
        /// The realm's `performance`; where there is none, spans are not recorded.
        static PERFORMANCE: Option<JsValue> =
            Reflect::get(&js_sys::global(), &"performance".into()).ok().filter(|p| p.is_object());
    }

    fn now(performance: &JsValue) -> Option<f64> {
        call(performance, "now", &[]).ok()?.as_f64()
    }

    /// `performance.measure(name, { start, end, detail: { kernel } })`; a refusal is ignored.
    fn measure(performance: &JsValue, phase: Phase, kernel: Option<&str>, start: f64) {
        let Some(end) = now(performance) else { return };
        let options = Object::new();
        let detail = Object::new();
        if let Some(kernel) = kernel {
            let _ = Reflect::set(&detail, &"kernel".into(), &kernel.into());
        }
        let _ = Reflect::set(&options, &"start".into(), &start.into());
        let _ = Reflect::set(&options, &"end".into(), &end.into());
        let _ = Reflect::set(&options, &"detail".into(), &detail);
        let _ = call(performance, "measure", &[phase.measure_name().into(), options.into()]);
        let measured = MEASURED.with(|m| {
            m.set(m.get() + 1);
            m.get()
        });
        if measured.is_multiple_of(CLEAR_EVERY) {
            for phase in [Phase::Launch, Phase::Tick, Phase::Plan, Phase::Execute, Phase::Deliver, Phase::Recovery] {
                let _ = call(performance, "clearMeasures", &[phase.measure_name().into()]);
            }
        }
    }

    fn call(target: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
        let function: Function = Reflect::get(target, &method.into())?.dyn_into()?;
        function.apply(target, &args.iter().collect())
    }
}

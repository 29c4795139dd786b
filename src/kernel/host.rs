//! Host handlers: a kernel's `handle` written for the host instead of WGSL, run by the `cpu`
//! backend (Rust natively, a JavaScript function in the browser) so a machine or browser without
//! a GPU adapter still runs the same lifecycle, queues, correlation and telemetry.
//!
//! A host handler sees exactly what the WGSL handler sees: the message packed in the input
//! layout, a zeroed answer in the output layout, and the kernel's `state` words. It answers in
//! place and says whether the answer is kept (the drop form of the WGSL handler).

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::message::MessageLayout;

/// What one message's handling came to: `Ok(true)` answered, `Ok(false)` dropped on purpose,
/// `Err` failed (the message is dropped and counted as an error; the text says why).
pub type HostOutcome = Result<bool, String>;

/// A kernel's handler on the host. Implemented for closures
/// `Fn(&[u8], &mut [u8], &mut [u32]) -> HostOutcome`; see [`typed`] for `Pod` messages.
pub trait HostHandler: Send + Sync {
    /// Answers one message: `input` is packed in the input layout, `output` (zeroed) is the
    /// answer in the output layout, `state` the kernel's state words (empty without state).
    fn handle(&self, input: &[u8], output: &mut [u8], state: &mut [u32]) -> HostOutcome;

    /// Answers a run of messages in order. Override to pay per-run costs once (the JavaScript
    /// adapter copies `state` across the boundary once per run, not per message).
    fn handle_run(&self, mut run: HostRun<'_>) -> RunReport {
        run.answer_each(|input, output, state| {
            match catch_unwind(AssertUnwindSafe(|| self.handle(input, output, state))) {
                Ok(Err(text)) => Err(format!("the host handler failed: {text}")),
                Ok(answered) => answered,
                Err(panic) => Err(panic_text(&panic)),
            }
        })
    }

    /// Checks the handler against the kernel's layouts before launch (e.g. the size of the
    /// `Pod` types of a [`typed`] handler); the error becomes a `KernelCompileError`.
    fn check(&self, _input: &MessageLayout, _output: &MessageLayout) -> Result<(), String> {
        Ok(())
    }
}

impl<F> HostHandler for F
where
    F: Fn(&[u8], &mut [u8], &mut [u32]) -> HostOutcome + Send + Sync,
{
    fn handle(&self, input: &[u8], output: &mut [u8], state: &mut [u32]) -> HostOutcome {
        self(input, output, state)
    }
}

/// A run of messages for [`HostHandler::handle_run`]: `kept[i]` receives 1 when answer `i` is
/// kept and 0 when it is dropped (the GPU's kept-flag format).
#[derive(Debug)]
pub struct HostRun<'a> {
    /// The messages, packed back to back in the input layout.
    pub inputs: &'a [u8],
    /// Bytes per input message.
    pub input_stride: usize,
    /// The answers, zeroed, one per message in the output layout.
    pub outputs: &'a mut [u8],
    /// Bytes per answer.
    pub output_stride: usize,
    /// One kept flag per message, written by the run.
    pub kept: &'a mut [u32],
    /// The kernel's state words (empty without state).
    pub state: &'a mut [u32],
}

impl HostRun<'_> {
    /// Answers every message in order with `answer(input, output, state)`, setting its kept
    /// flag and counting what was dropped or failed.
    pub fn answer_each(&mut self, mut answer: impl FnMut(&[u8], &mut [u8], &mut [u32]) -> HostOutcome) -> RunReport {
        let mut report = RunReport::default();
        let inputs = self.inputs.chunks_exact(self.input_stride);
        let outputs = self.outputs.chunks_exact_mut(self.output_stride);
        for (index, ((input, output), kept)) in inputs.zip(outputs).zip(self.kept.iter_mut()).enumerate() {
            *kept = report.record(index, answer(input, output, self.state)) as u32;
        }
        report
    }
}

/// How a run went: dropped on purpose, failed, and why each failure failed. A
/// [`HostHandler::handle_run`] of one's own starts from `RunReport::default()` and
/// [`record`](Self::record)s each message's outcome (or returns [`HostRun::answer_each`]'s).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunReport {
    /// Messages whose answer was not kept, failures included.
    pub dropped: u64,
    /// Messages whose handler failed (returned `Err` or panicked).
    pub failed: u64,
    /// Each failure in order: the message's index in the run and why. A `call` whose message
    /// failed is told its own reason, and telemetry's `last_error` is the run's last.
    pub failures: Vec<(usize, String)>,
}

impl RunReport {
    /// Counts the outcome of the run's message `index` and returns whether its answer is kept.
    pub fn record(&mut self, index: usize, outcome: HostOutcome) -> bool {
        match outcome {
            Ok(kept) => {
                self.dropped += !kept as u64;
                kept
            }
            Err(text) => {
                self.dropped += 1;
                self.failed += 1;
                self.failures.push((index, text));
                false
            }
        }
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    format!("the host handler panicked: {}", panic_message(panic))
}

/// What a caught panic said (its `&str` or `String` payload), or `(no message)`.
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> &str {
    let text = panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str));
    text.unwrap_or("(no message)")
}

/// A host handler over `#[repr(C)]` `Pod` messages: `f(&msg, state)` returns the answer, or
/// `None` to drop the message. Launch checks that `In` and `Out` have the layouts' sizes.
pub fn typed<In, Out, F>(f: F) -> impl HostHandler
where
    In: bytemuck::Pod,
    Out: bytemuck::Pod,
    F: Fn(&In, &mut [u32]) -> Option<Out> + Send + Sync,
{
    TypedHandler { f, types: std::marker::PhantomData::<fn(In) -> Out> }
}

struct TypedHandler<F, T> {
    f: F,
    types: std::marker::PhantomData<T>,
}

impl<In, Out, F> HostHandler for TypedHandler<F, fn(In) -> Out>
where
    In: bytemuck::Pod,
    Out: bytemuck::Pod,
    F: Fn(&In, &mut [u32]) -> Option<Out> + Send + Sync,
{
    fn handle(&self, input: &[u8], output: &mut [u8], state: &mut [u32]) -> HostOutcome {
        // Queued messages are packed back to back, so they need not be aligned for `In`.
        let message: In = bytemuck::pod_read_unaligned(input);
        Ok(match (self.f)(&message, state) {
            Some(answer) => {
                output.copy_from_slice(bytemuck::bytes_of(&answer));
                true
            }
            None => false,
        })
    }

    fn check(&self, input: &MessageLayout, output: &MessageLayout) -> Result<(), String> {
        let sizes = [(input, std::mem::size_of::<In>()), (output, std::mem::size_of::<Out>())];
        if let Some((layout, size)) = sizes.iter().find(|(layout, size)| layout.size() != *size) {
            return Err(format!(
                "the host handler's type for {} is {size} bytes, but the layout is {} bytes",
                layout.name(),
                layout.size()
            ));
        }
        // A plain number of another scalar would read the message's bits as its own. (Natively
        // only: on the web the only typed handlers are the built-in kernels', and the check's
        // type names would weigh 1.2 KB gzipped in the package.)
        #[cfg(not(target_arch = "wasm32"))]
        for (layout, checked) in [(input, input.check_pod_scalars::<In>()), (output, output.check_pod_scalars::<Out>())]
        {
            checked.map_err(|problem| format!("the host handler's type for {0}: {0} {problem}", layout.name()))?;
        }
        Ok(())
    }
}

/// A shared host handler inside a [`KernelDefinition`](super::KernelDefinition): compared by
/// identity, printed by name only.
#[derive(Clone)]
pub struct SharedHostHandler(pub Arc<dyn HostHandler>);

impl SharedHostHandler {
    /// Wraps `handler` for sharing.
    pub fn new(handler: impl HostHandler + 'static) -> Self {
        SharedHostHandler(Arc::new(handler))
    }
}

impl fmt::Debug for SharedHostHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HostHandler")
    }
}

impl PartialEq for SharedHostHandler {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedHostHandler {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{doubler_request, doubler_response};

    #[test]
    fn a_typed_handler_answers_drops_and_checks_sizes() {
        let halve_evens = typed(|v: &i32, _: &mut [u32]| (v % 2 == 0).then_some(v / 2));
        let inputs: Vec<u8> = bytemuck::cast_slice(&[4i32, 5, -6]).to_vec();
        let (mut outputs, mut kept) = (vec![0u8; 12], vec![0u32; 3]);
        let run = HostRun {
            inputs: &inputs,
            input_stride: 4,
            outputs: &mut outputs,
            output_stride: 4,
            kept: &mut kept,
            state: &mut [],
        };
        let report = halve_evens.handle_run(run);
        assert_eq!(kept, [1, 0, 1]);
        assert_eq!(bytemuck::cast_slice::<u8, i32>(&outputs), [2, 0, -3]);
        assert_eq!(report, RunReport { dropped: 1, failed: 0, failures: Vec::new() });
        assert!(halve_evens.check(&doubler_request(), &doubler_response()).is_ok());
        let wide = typed(|v: &[i32; 2], _: &mut [u32]| Some(v[0]));
        assert!(wide.check(&doubler_request(), &doubler_response()).unwrap_err().contains("8 bytes"));
    }

    #[test]
    fn failures_and_panics_drop_the_message_and_are_reported() {
        let picky = |input: &[u8], output: &mut [u8], _: &mut [u32]| -> HostOutcome {
            match input[0] {
                0 => Err("zero is not allowed".into()),
                1 => panic!("one is worse"),
                n => {
                    output[0] = n;
                    Ok(true)
                }
            }
        };
        let inputs = [0u8, 1, 2];
        let (mut outputs, mut kept) = ([0u8; 3], [9u32; 3]);
        let run = HostRun {
            inputs: &inputs,
            input_stride: 1,
            outputs: &mut outputs,
            output_stride: 1,
            kept: &mut kept,
            state: &mut [],
        };
        let report = picky.handle_run(run);
        assert_eq!(kept, [0, 0, 1]);
        assert_eq!(outputs[2], 2);
        assert_eq!(report.failed, 2);
        assert_eq!(report.failures[0], (0, "the host handler failed: zero is not allowed".to_owned()));
        assert_eq!(report.failures[1], (1, "the host handler panicked: one is worse".to_owned()));
    }
}

//! Waiting without blocking: an operation that waits (`send` on a full queue, `receive`, `call`,
//! `terminate`) awaits an event the tick fires, raced against a timer. Nothing blocks a thread,
//! so the same code runs on the web's event loop.

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::platform;

/// When a wait ends, on [`platform::now_ms`]'s clock; `None` waits for as long as it takes.
pub(crate) type Deadline = Option<f64>;

/// The deadline `timeout` from now (`None`: no deadline).
pub(crate) fn deadline(timeout: Option<Duration>) -> Deadline {
    timeout.map(|timeout| platform::now_ms() + timeout.as_secs_f64() * 1000.0)
}

/// What is left of `deadline` now, as a timeout (zero once it has passed; `None`: no deadline).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn remaining(deadline: Deadline) -> Option<Duration> {
    deadline.map(|deadline| platform::saturating_ms(deadline - platform::now_ms()))
}

/// A timeout given in milliseconds (JavaScript's unit): `None`, no timeout, for `Infinity` and
/// any number past 9e15 (see [`wait_ms`]); negative numbers and NaN are refused with an error
/// that names it `what`. Only the JavaScript layer has timeouts in numbers.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn duration_from_ms(ms: f64, what: &str) -> Result<Option<Duration>> {
    if ms >= 0.0 {
        return Ok(wait_ms(ms));
    }
    // As JavaScript prints it (Rust says `inf`).
    let got = match ms {
        f64::NEG_INFINITY => "-Infinity".to_owned(),
        _ => platform::Float(ms).to_string(),
    };
    Err(Error::OutOfRange(format!("{what} must be a non-negative number of milliseconds, got {got}")))
}

/// Most milliseconds a wait's timeout counts as a deadline: 9e15, 285,000 years, the top of
/// what the options' other durations take (`circuit::duration_from_millis`).
pub(crate) const MAX_TIMEOUT_MS: f64 = 9.0e15;

/// A timeout of `ms` milliseconds (not negative, not NaN) as a wait takes it: `Infinity`, and
/// any number past [`MAX_TIMEOUT_MS`], is no timeout, as the checkpoint interval's `Infinity`
/// is never. A deadline that far could never pass, and as one it would differ from none only
/// where it should not: it would hold Node's process open while the wait itself does not.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn wait_ms(ms: f64) -> Option<Duration> {
    (ms <= MAX_TIMEOUT_MS).then(|| platform::saturating_ms(ms))
}

/// Waits for `listener` or the deadline; `false` when the deadline passed first.
pub(crate) async fn wait(listener: event_listener::EventListener, deadline: Deadline) -> bool {
    wait_for(listener, deadline).await.is_some()
}

/// [`wait`], the deadline holding Node's process open or not (see [`wait_until`]).
pub(crate) async fn wait_holding(listener: event_listener::EventListener, deadline: Deadline, holds: bool) -> bool {
    wait_until(listener, deadline, holds).await.is_some()
}

/// Awaits `future` until the deadline; `None` when the deadline passed first.
pub(crate) async fn wait_for<F: Future + Unpin>(future: F, deadline: Deadline) -> Option<F::Output> {
    wait_until(future, deadline, true).await
}

/// [`wait_for`], the deadline holding Node's process open or not (`holds`): a stall watch's
/// look on a wait without a timeout holds nothing, as the wait itself does not.
pub(crate) async fn wait_until<F: Future + Unpin>(future: F, deadline: Deadline, holds: bool) -> Option<F::Output> {
    match deadline {
        None => Some(future.await),
        Some(deadline) => {
            let remaining = deadline - platform::now_ms();
            if remaining <= 0.0 {
                // What is there already still counts: natively a receive runs its device's tick
                // on its own thread (`tick::help`), and a tick that outlasts the receive's
                // timeout delivers the answers it waits for before this look.
                return futures_util::FutureExt::now_or_never(future);
            }
            match futures_util::future::select(future, platform::sleep_ms_holding(remaining, holds)).await {
                futures_util::future::Either::Left((output, _)) => Some(output),
                futures_util::future::Either::Right(_) => None,
            }
        }
    }
}

/// Runs `futures` concurrently until every one has finished; their outputs, in order. What
/// `futures_util::future::join_all` does for short lists, without its second implementation for
/// long ones (a `FuturesOrdered`, a few kilobytes of wasm for a list of kernels).
pub(crate) async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    // Pushed, not collected: each `collect` is a copy of `Vec`'s `from_iter` in the wasm.
    let (mut slots, mut outputs) = (Vec::new(), Vec::new());
    for future in futures {
        slots.push(Some(Box::pin(future)));
        outputs.push(None);
    }
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, output) in slots.iter_mut().zip(&mut outputs) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *output = Some(value);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    let mut done = Vec::with_capacity(outputs.len());
    for output in outputs.into_iter().flatten() {
        done.push(output);
    }
    done
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::{duration_from_ms, wait, wait_for};
    use crate::platform;
    use std::time::Duration;

    /// `Infinity`, and any number of milliseconds past 9e15, is no timeout (it was a
    /// `RangeError`, while 1e300 waited as long as none); NaN and negative numbers stay refused.
    #[test]
    fn an_infinite_timeout_is_none() {
        let read = |ms: f64| duration_from_ms(ms, "timeout").map_err(|e| e.to_string());
        assert_eq!(read(f64::INFINITY), Ok(None));
        assert_eq!(read(1e300), Ok(None));
        assert_eq!(read(9.000_000_000_000_002e15), Ok(None));
        assert_eq!(read(9e15), Ok(Some(Duration::from_millis(9_000_000_000_000_000))));
        assert_eq!(read(0.0), Ok(Some(Duration::ZERO)));
        assert_eq!(read(1.5), Ok(Some(Duration::from_micros(1500))));
        for (ms, shown) in [(f64::NAN, "NaN"), (-1.0, "-1"), (f64::NEG_INFINITY, "-Infinity")] {
            let refusal = format!("out of range: timeout must be a non-negative number of milliseconds, got {shown}");
            assert_eq!(read(ms), Err(refusal));
        }
    }

    /// A wait whose deadline has passed still takes what is ready: the answers of a tick that
    /// the waiter ran itself past its timeout were otherwise left queued behind a `Timeout`.
    #[test]
    fn a_wait_past_its_deadline_takes_what_is_ready() {
        let past = Some(platform::now_ms() - 1.0);
        assert_eq!(pollster::block_on(wait_for(std::future::ready(7), past)), Some(7));
        let event = event_listener::Event::new();
        let notified = event.listen();
        event.notify(1);
        assert!(pollster::block_on(wait(notified, past)), "a listener notified before the look");
        assert!(!pollster::block_on(wait(event.listen(), past)), "nothing came: the deadline holds");
    }
}

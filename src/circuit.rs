//! A kernel's circuit breaker: the state machine alone, pure and driven by the caller's clock
//! (milliseconds, as [`crate::platform::now_ms`] counts them), so it is tested without a device.
//!
//! ```text
//!   Closed ──(failure_threshold failures in a row, within `window`)──▶ Open
//!   Open ──(open_duration passed)──▶ HalfOpen          (seen on the next look, no timer)
//!   HalfOpen ──(a probe succeeds)──▶ Closed
//!   HalfOpen ──(any failure)──▶ Open                   (for another open_duration)
//! ```
//!
//! A "run" of failures is broken by a success: a kernel that fails now and then while answering
//! most messages stays closed. While open, every send, call and protected operation is refused.
//! Half-open admits `half_open_probes` operations (a send, a batch, a call or an `execute`); the
//! rest are refused until one of them settles it (a protected `execute` checks but takes no probe:
//! the sends inside it do). A probe that never settles (its message still
//! waits) gives way to a new round of probes after another `open_duration`.
//!
//! What counts as a failure and a success is the runtime's business (see `runtime::resilience`);
//! this module only counts.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::platform::option_name;

/// Where a kernel's circuit breaker is. In JavaScript, `"closed"`, `"open"` or `"halfOpen"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum CircuitState {
    /// Everything goes through; failures are counted.
    Closed,
    /// Sends, calls and protected operations are refused with `CircuitOpen`.
    Open,
    /// A few probes go through; the first outcome closes or reopens the circuit.
    HalfOpen,
}

impl CircuitState {
    /// Every state, in the order Prometheus lists them.
    pub const ALL: [CircuitState; 3] = [CircuitState::Closed, CircuitState::Open, CircuitState::HalfOpen];

    /// The JavaScript (and Prometheus label) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "halfOpen",
        }
    }
}

impl std::fmt::Display for CircuitState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a kernel's circuit opens and how it closes again (see the module docs). Off unless set
/// in `RuntimeOptions::circuit_breaker`. In JavaScript, `{ failureThreshold, windowMs, openMs,
/// halfOpenProbes }`; missing fields take the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct CircuitBreakerConfig {
    /// Failures in a row that open the circuit. Default 5.
    pub failure_threshold: u32,
    /// The run must fall within this long (older failures are forgotten). Default 60 s.
    #[serde(rename = "windowMs", deserialize_with = "window_ms")]
    pub window: Duration,
    /// How long the circuit stays open before it lets probes through. Default 30 s.
    #[serde(rename = "openMs", deserialize_with = "open_ms")]
    pub open_duration: Duration,
    /// Operations let through while half-open. Default 1.
    pub half_open_probes: u32,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        CircuitBreakerConfig {
            failure_threshold: 5,
            window: Duration::from_secs(60),
            open_duration: Duration::from_secs(30),
            half_open_probes: 1,
        }
    }
}

impl CircuitBreakerConfig {
    /// Failures in a row that open the circuit.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_failure_threshold(mut self, failures: u32) -> Self {
        self.failure_threshold = failures;
        self
    }

    /// How close together those failures must be.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// How long the circuit stays open before probing.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_open_duration(mut self, open: Duration) -> Self {
        self.open_duration = open;
        self
    }

    /// Operations let through while half-open.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_half_open_probes(mut self, probes: u32) -> Self {
        self.half_open_probes = probes;
        self
    }

    /// `OutOfRange` naming the field when a threshold or probe count is 0 (the circuit would
    /// open on nothing, or never close) or the window is (it would hold no failure, and the
    /// circuit never open).
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.window.is_zero() {
            return Err(concat!(option_name!("circuitBreaker.windowMs", "window"), " must be more than 0 ms").into());
        }
        if self.failure_threshold == 0 {
            return Err(concat!(
                option_name!("circuitBreaker.failureThreshold", "failure_threshold"),
                " must be at least 1"
            )
            .into());
        }
        if self.half_open_probes == 0 {
            return Err(concat!(
                option_name!("circuitBreaker.halfOpenProbes", "half_open_probes"),
                " must be at least 1"
            )
            .into());
        }
        Ok(())
    }
}

/// A duration given in milliseconds (a non-negative, finite number), as JavaScript options are;
/// anything else is an `OutOfRange` naming the option.
pub(crate) fn millis<'de, D: Deserializer<'de>>(deserializer: D, name: &str) -> Result<Duration, D::Error> {
    duration_from_millis(f64::deserialize(deserializer)?, name).map_err(serde::de::Error::custom)
}

/// [`millis`]' rule for a number already read (the wasm layer reads its options itself).
pub(crate) fn duration_from_millis(ms: f64, name: &str) -> Result<Duration, crate::error::Error> {
    if let Some(duration) = millis_within(ms) {
        return Ok(duration);
    }
    let got = crate::platform::Float(ms);
    Err(crate::error::Error::OutOfRange(format!("{name} must be a number of milliseconds from 0 to 9e15, got {got}")))
}

/// [`duration_from_millis`] without its error: `None` for what it refuses (the wasm layer's
/// readers word their own refusal, and would drop the text).
pub(crate) fn millis_within(ms: f64) -> Option<Duration> {
    // Below 2^53 ms (285,000 years): every such number is exact and fits a `Duration`.
    (ms.is_finite() && (0.0..=9.0e15).contains(&ms)).then(|| crate::platform::saturating_ms(ms))
}

fn window_ms<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    millis(deserializer, "circuitBreaker.windowMs")
}

fn open_ms<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    millis(deserializer, "circuitBreaker.openMs")
}

/// A kernel's circuit as a snapshot: what `Runtime::circuit_breaker(..).status()` and
/// JavaScript's `runtime.circuitBreaker(id)` return.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CircuitStatus {
    /// Where the circuit is now.
    pub state: CircuitState,
    /// Failures in the current run (within the window).
    pub failures: u32,
    /// Times the circuit has opened (half-open probes that failed included).
    pub opened: u64,
    /// How long until a refused operation may be tried again (`None` when nothing is refused).
    #[serde(rename = "retryAfterMs", serialize_with = "optional_millis")]
    pub retry_after: Option<Duration>,
}

fn optional_millis<S: serde::Serializer>(value: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(d) => serializer.serialize_some(&(d.as_secs_f64() * 1000.0)),
        None => serializer.serialize_none(),
    }
}

/// The state proper, with what each state needs to leave it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Closed,
    Open {
        until_ms: f64,
    },
    /// `admitted` probes let through since `since_ms`.
    HalfOpen {
        since_ms: f64,
        admitted: u32,
    },
}

/// One kernel's breaker.
#[derive(Debug, Clone)]
pub(crate) struct Breaker {
    config: CircuitBreakerConfig,
    phase: Phase,
    /// When each failure of the current run happened, oldest first (at most the threshold): a
    /// `Vec`, which the wasm links less code for than a `VecDeque`.
    run: Vec<f64>,
    opened: u64,
}

impl Breaker {
    pub fn new(config: CircuitBreakerConfig) -> Self {
        Breaker { config, phase: Phase::Closed, run: Vec::new(), opened: 0 }
    }

    /// The state at `now_ms`: an open circuit whose time is up is half-open.
    pub fn state(&self, now_ms: f64) -> CircuitState {
        match self.phase(now_ms) {
            Phase::Closed => CircuitState::Closed,
            Phase::Open { .. } => CircuitState::Open,
            Phase::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    pub fn status(&self, now_ms: f64) -> CircuitStatus {
        CircuitStatus {
            state: self.state(now_ms),
            failures: self.run.iter().filter(|&&at| at > now_ms - self.window_ms()).count() as u32,
            opened: self.opened,
            retry_after: self.check(now_ms).err(),
        }
    }

    /// Whether an operation would be let through now; if not, how long until one may be.
    pub fn check(&self, now_ms: f64) -> Result<(), Duration> {
        let wait_until = match self.phase(now_ms) {
            Phase::Closed => return Ok(()),
            Phase::Open { until_ms } => until_ms,
            Phase::HalfOpen { admitted, .. } if admitted < self.config.half_open_probes => return Ok(()),
            Phase::HalfOpen { since_ms, .. } => since_ms + self.open_ms(),
        };
        Err(crate::platform::saturating_ms(wait_until - now_ms))
    }

    /// Lets an operation through (after [`check`](Self::check) said it may go): while
    /// half-open it takes a probe.
    pub fn admit(&mut self, now_ms: f64) {
        self.phase = match self.phase(now_ms) {
            Phase::HalfOpen { since_ms, admitted } => Phase::HalfOpen { since_ms, admitted: admitted + 1 },
            phase => phase,
        };
    }

    /// A failure at `now_ms`: counts toward the run, or reopens a half-open circuit.
    pub fn failure(&mut self, now_ms: f64) {
        match self.phase(now_ms) {
            Phase::Closed => {
                self.run.push(now_ms);
                let since = now_ms - self.window_ms();
                self.run.retain(|&at| at > since);
                if self.run.len() >= self.config.failure_threshold as usize {
                    self.open(now_ms);
                }
            }
            Phase::HalfOpen { .. } => self.open(now_ms),
            // Outcomes of operations let through before it opened change nothing.
            Phase::Open { .. } => {}
        }
    }

    /// A success at `now_ms`: ends the run, and closes a half-open circuit.
    pub fn success(&mut self, now_ms: f64) {
        match self.phase(now_ms) {
            Phase::Closed | Phase::HalfOpen { .. } => {
                self.phase = Phase::Closed;
                self.run.clear();
            }
            Phase::Open { .. } => {}
        }
    }

    fn open(&mut self, now_ms: f64) {
        self.phase = Phase::Open { until_ms: now_ms + self.open_ms() };
        self.run.clear();
        self.opened += 1;
    }

    /// The phase as of `now_ms`: open turns half-open when its time is up, and a round of
    /// probes that never settled gives way to a new one.
    fn phase(&self, now_ms: f64) -> Phase {
        let (mut since_ms, mut admitted) = match self.phase {
            Phase::Open { until_ms } if now_ms >= until_ms => (until_ms, 0),
            Phase::HalfOpen { since_ms, admitted } => (since_ms, admitted),
            phase => return phase,
        };
        let open_ms = self.open_ms();
        if now_ms >= since_ms + open_ms {
            since_ms =
                if open_ms > 0.0 { since_ms + ((now_ms - since_ms) / open_ms).floor() * open_ms } else { now_ms };
            admitted = 0;
        }
        Phase::HalfOpen { since_ms, admitted }
    }

    fn open_ms(&self) -> f64 {
        self.config.open_duration.as_secs_f64() * 1000.0
    }

    fn window_ms(&self) -> f64 {
        self.config.window.as_secs_f64() * 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn config(threshold: u32, window_ms: u64, open_ms: u64, probes: u32) -> CircuitBreakerConfig {
        CircuitBreakerConfig::default()
            .with_failure_threshold(threshold)
            .with_window(Duration::from_millis(window_ms))
            .with_open_duration(Duration::from_millis(open_ms))
            .with_half_open_probes(probes)
    }

    #[test]
    fn a_run_of_failures_opens_then_a_probe_closes() {
        let mut b = Breaker::new(config(3, 1000, 500, 1));
        b.failure(0.0);
        b.failure(10.0);
        assert_eq!(b.state(10.0), CircuitState::Closed);
        b.failure(20.0);
        assert_eq!(b.state(20.0), CircuitState::Open);
        assert_eq!(b.check(20.0), Err(Duration::from_millis(500)));
        assert_eq!(b.state(519.0), CircuitState::Open);
        assert_eq!(b.state(520.0), CircuitState::HalfOpen);
        assert_eq!(b.check(520.0), Ok(()));
        b.admit(520.0);
        // One probe only: the next operation waits for its outcome.
        assert!(b.check(521.0).is_err());
        b.success(530.0);
        assert_eq!(b.state(530.0), CircuitState::Closed);
        assert_eq!(b.status(530.0).opened, 1);
    }

    #[test]
    fn a_failed_probe_reopens() {
        let mut b = Breaker::new(config(1, 1000, 100, 2));
        b.failure(0.0);
        b.admit(100.0);
        b.failure(105.0);
        assert_eq!(b.state(105.0), CircuitState::Open);
        assert_eq!(b.check(105.0), Err(Duration::from_millis(100)));
        assert_eq!(b.status(105.0).opened, 2);
    }

    #[test]
    fn a_success_breaks_the_run_and_old_failures_expire() {
        let mut b = Breaker::new(config(2, 100, 100, 1));
        b.failure(0.0);
        b.success(1.0);
        b.failure(2.0);
        assert_eq!(b.state(2.0), CircuitState::Closed);
        // 2.0 is out of the window by 102.0.
        b.failure(102.0);
        assert_eq!(b.state(102.0), CircuitState::Closed);
        b.failure(150.0);
        assert_eq!(b.state(150.0), CircuitState::Open);
    }

    #[test]
    fn probes_that_never_settle_give_way_to_new_ones() {
        let mut b = Breaker::new(config(1, 1000, 100, 1));
        b.failure(0.0);
        b.admit(100.0);
        assert_eq!(b.check(150.0), Err(Duration::from_millis(50)));
        assert_eq!(b.check(200.0), Ok(()));
    }

    #[test]
    fn zero_thresholds_are_refused() {
        assert!(config(0, 1, 1, 1).validate().is_err());
        assert!(config(1, 1, 1, 0).validate().is_err());
        // A window of 0 ms would hold no failure; an open time of 0 probes at once.
        assert!(config(1, 0, 1, 1).validate().is_err());
        assert!(config(1, 1, 0, 1).validate().is_ok());
    }
}

/// The state machine against a model of it, over random event sequences (proptest runs natively).
#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties {
    use proptest::prelude::*;

    use super::tests::config;
    use super::*;

    #[derive(Debug, Clone)]
    enum Event {
        Failure,
        Success,
        Admit,
    }

    fn events() -> impl Strategy<Value = Vec<(u16, Event)>> {
        proptest::collection::vec(
            (0u16..300, prop_oneof![Just(Event::Failure), Just(Event::Success), Just(Event::Admit)]),
            0..80,
        )
    }

    /// A model of the documented machine, stepped with the same events: the breaker must agree
    /// with it on every state, and refuse exactly when the model does.
    #[derive(Debug)]
    struct Model {
        state: CircuitState,
        run: Vec<f64>,
        until: f64,
        admitted: u32,
    }

    proptest! {
        #[test]
        fn the_breaker_follows_its_state_machine(
            threshold in 1u32..5, window in 1u64..400, open in 1u64..400, probes in 1u32..3, steps in events()
        ) {
            let cfg = config(threshold, window, open, probes);
            let mut b = Breaker::new(cfg);
            let mut m = Model { state: CircuitState::Closed, run: vec![], until: 0.0, admitted: 0 };
            let mut now = 0.0;
            for (dt, event) in steps {
                now += dt as f64;
                // The model's clock: open → half-open when time is up, stale probe rounds renew.
                while m.state != CircuitState::Closed && now >= m.until {
                    m.state = CircuitState::HalfOpen;
                    m.admitted = 0;
                    m.until += open as f64;
                }
                prop_assert_eq!(b.state(now), m.state);
                let may = m.state == CircuitState::Closed
                    || (m.state == CircuitState::HalfOpen && m.admitted < probes);
                prop_assert_eq!(b.check(now).is_ok(), may);
                match event {
                    Event::Admit if may => {
                        b.admit(now);
                        if m.state == CircuitState::HalfOpen { m.admitted += 1; }
                    }
                    Event::Admit => {}
                    Event::Success => {
                        b.success(now);
                        if m.state != CircuitState::Open { m.state = CircuitState::Closed; m.run.clear(); }
                    }
                    Event::Failure => {
                        b.failure(now);
                        let opens = match m.state {
                            CircuitState::Closed => {
                                m.run.push(now);
                                m.run.retain(|&at| at > now - window as f64);
                                m.run.len() >= threshold as usize
                            }
                            CircuitState::HalfOpen => true,
                            CircuitState::Open => false,
                        };
                        if opens {
                            m.state = CircuitState::Open;
                            m.run.clear();
                            m.until = now + open as f64;
                        }
                    }
                }
                prop_assert_eq!(b.state(now), m.state);
            }
        }
    }
}

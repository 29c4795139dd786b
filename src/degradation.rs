//! The degradation manager: five levels of load, from three signals, with hysteresis, and what
//! the runtime does at each level. Off unless `RuntimeOptions::degradation` is set.
//!
//! # Signals
//! - **queue fill**: the fullest input queue among active kernels (`len / capacity`: a paused
//!   kernel's queue is work held, not load);
//! - **latency**: the worst `p99 / budget` among kernels with a latency budget
//!   (`LaunchOptions::latency_budget`, or [`DegradationOptions::default_latency_budget`]), the
//!   p99 taken over the answers of the last [`window`](DegradationOptions::window) (so a kernel
//!   that recovers stops counting); needs telemetry on;
//! - **memory pressure**: the memory dashboard's (`memory` module), 0 without a `memory_budget`.
//!
//! Each signal points at a level by its four thresholds (light, moderate, severe, critical);
//! the worst one wins and is the level's [`reason`](DegradationReason).
//!
//! # Hysteresis
//! Up at once, to the level the signals point at. Down one level at a time, and only when the
//! signals stay below that level's thresholds scaled by `1 - hysteresis` and the level has held
//! for `cooldown`. So a load that hovers at a threshold does not flap. Nothing reads the signals
//! while nothing runs, so the first reading after a quiet spell falls one level for each whole
//! `cooldown` of it (to no lower than the signals point at), as readings all along would have.
//!
//! # When it is evaluated
//! Before every tick that plans work, on every query of the level, and before refusing a send
//! (so a refusal never rests on a stale level). The clock is passed in: the state machine is pure.
//!
//! # Actions
//! "Low priority" is a kernel whose `LaunchOptions::priority` is below
//! [`DegradationOptions::protected_priority`]. No action drops an accepted message: they defer
//! work or refuse new messages before accepting them, handing them back.
//!
//! | level | what the runtime does |
//! |---|---|
//! | normal | nothing |
//! | light | nothing but report the level (summary, `metrics_text`) |
//! | moderate | low-priority kernels' ticks are deferred: while other kernels have work, they run one tick in [`DEFER_EVERY`] |
//! | severe | as moderate; kernels over their latency budget take `max_batch / `[`BATCH_DIVISOR`] per dispatch; sends to low-priority kernels are refused with `Overloaded` |
//! | critical | as severe; sends to every kernel below the highest priority in the runtime are refused |

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::platform::{option_name, Float};

/// How loaded the runtime is, from `Normal` to `Critical` (ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[repr(u8)]
pub enum DegradationLevel {
    /// No signal over its light threshold.
    #[default]
    Normal = 0,
    /// Some load: reported, nothing changes.
    Light = 1,
    /// Low-priority kernels' ticks are deferred.
    Moderate = 2,
    /// Also: smaller batches for kernels over their latency budget, low-priority sends refused.
    Severe = 3,
    /// Also: only the highest-priority kernels take messages.
    Critical = 4,
}

impl DegradationLevel {
    /// Every level, lowest first.
    pub const ALL: [DegradationLevel; 5] = [
        DegradationLevel::Normal,
        DegradationLevel::Light,
        DegradationLevel::Moderate,
        DegradationLevel::Severe,
        DegradationLevel::Critical,
    ];

    /// `"normal"`, `"light"`, `"moderate"`, `"severe"` or `"critical"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DegradationLevel::Normal => "normal",
            DegradationLevel::Light => "light",
            DegradationLevel::Moderate => "moderate",
            DegradationLevel::Severe => "severe",
            DegradationLevel::Critical => "critical",
        }
    }

    /// The level as a number, 0 (normal) to 4 (critical), as Prometheus reports it.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    fn from_index(index: usize) -> Self {
        Self::ALL[index.min(4)]
    }
}

impl std::fmt::Display for DegradationLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which signal set the level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum DegradationReason {
    /// No signal is over a threshold.
    #[default]
    None,
    /// The fullest input queue.
    QueueFill,
    /// The worst latency p99 against its budget.
    Latency,
    /// Memory pressure.
    MemoryPressure,
}

/// Moderate and above: a deferred kernel runs one tick in this many while others have work.
pub const DEFER_EVERY: u64 = 4;

/// Severe and above: a kernel over its latency budget takes `max_batch / BATCH_DIVISOR` (at
/// least 1) messages per dispatch.
pub const BATCH_DIVISOR: u32 = 4;

/// How the degradation manager reads its signals. In JavaScript, `degradation: { ... }` in the
/// runtime's options with these fields in camelCase (durations in milliseconds:
/// `cooldownMs`, `windowMs`, `defaultLatencyBudgetMs`); `degradation: {}` turns it on with the
/// defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct DegradationOptions {
    /// Input queue fill (0..1) at which each level starts: light, moderate, severe, critical.
    /// Default `[0.5, 0.7, 0.85, 0.95]`.
    pub queue_fill_thresholds: [f64; 4],
    /// Latency p99 over budget at which each level starts. Default `[1, 1.5, 2, 4]`.
    pub latency_thresholds: [f64; 4],
    /// Memory pressure (0..1) at which each level starts. Default `[0.7, 0.8, 0.9, 0.97]`.
    pub memory_thresholds: [f64; 4],
    /// How far below a level's thresholds (as a fraction of them) the signals must fall before
    /// the level steps down. Default 0.1.
    pub hysteresis: f64,
    /// How long a level holds before it may step down. Default 1 s.
    #[serde(rename = "cooldownMs", deserialize_with = "millis")]
    pub cooldown: Duration,
    /// The span of answers the latency p99 is taken over. Default 1 s.
    #[serde(rename = "windowMs", deserialize_with = "millis")]
    pub window: Duration,
    /// The latency budget of kernels launched without their own (`None`: only kernels with a
    /// budget of their own count towards the latency signal).
    #[serde(rename = "defaultLatencyBudgetMs", deserialize_with = "optional_millis")]
    pub default_latency_budget: Option<Duration>,
    /// Kernels with a priority below this are low priority (see the actions). Default 0, so
    /// kernels launched with a negative priority are shed first.
    pub protected_priority: i32,
}

impl Default for DegradationOptions {
    fn default() -> Self {
        DegradationOptions {
            queue_fill_thresholds: [0.5, 0.7, 0.85, 0.95],
            latency_thresholds: [1.0, 1.5, 2.0, 4.0],
            memory_thresholds: [0.7, 0.8, 0.9, 0.97],
            hysteresis: 0.1,
            cooldown: Duration::from_secs(1),
            window: Duration::from_secs(1),
            default_latency_budget: None,
            protected_priority: 0,
        }
    }
}

impl DegradationOptions {
    /// The thresholds of every signal.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_queue_fill_thresholds(mut self, thresholds: [f64; 4]) -> Self {
        self.queue_fill_thresholds = thresholds;
        self
    }

    /// Latency p99 over budget at which each level starts.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_latency_thresholds(mut self, thresholds: [f64; 4]) -> Self {
        self.latency_thresholds = thresholds;
        self
    }

    /// Memory pressure at which each level starts.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_memory_thresholds(mut self, thresholds: [f64; 4]) -> Self {
        self.memory_thresholds = thresholds;
        self
    }

    /// The fraction below a level's thresholds that lets it step down.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_hysteresis(mut self, fraction: f64) -> Self {
        self.hysteresis = fraction;
        self
    }

    /// How long a level holds before it may step down.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// The span of answers the latency p99 is taken over.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// The latency budget of kernels without their own.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_default_latency_budget(mut self, budget: Duration) -> Self {
        self.default_latency_budget = Some(budget);
        self
    }

    /// Kernels below this priority are low priority.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_protected_priority(mut self, priority: i32) -> Self {
        self.protected_priority = priority;
        self
    }

    /// Why these options cannot work, if they cannot: thresholds that are not finite, positive
    /// and rising (queue fills, fractions of a queue, at most 1), a hysteresis outside `[0, 1)`,
    /// an empty window, a zero default latency budget (every latency would be over it).
    pub fn problem(&self) -> Option<String> {
        let signals = [
            (
                option_name!("degradation.queueFillThresholds", "queue_fill_thresholds"),
                &self.queue_fill_thresholds,
                1.0,
            ),
            (option_name!("degradation.latencyThresholds", "latency_thresholds"), &self.latency_thresholds, f64::MAX),
            (option_name!("degradation.memoryThresholds", "memory_thresholds"), &self.memory_thresholds, f64::MAX),
        ];
        for (name, t, most) in signals {
            // Written one by one: `[f64; 4]::map` into `String`s was linked for this alone.
            let shown = || {
                let mut text = String::new();
                for (i, v) in t.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    let _ = std::fmt::Write::write_fmt(&mut text, format_args!("{sep}{}", Float(*v)));
                }
                text
            };
            if t.iter().any(|v| !v.is_finite() || *v <= 0.0) || t.windows(2).any(|w| w[1] < w[0]) {
                return Some(format!("{name} must be four finite positive rising numbers, not [{}]", shown()));
            }
            if t[3] > most {
                return Some(format!("{name} are fractions of a queue, at most 1, not [{}]", shown()));
            }
        }
        if self.default_latency_budget.is_some_and(|budget| budget.is_zero()) {
            return Some(
                concat!(
                    option_name!("degradation.defaultLatencyBudgetMs", "default_latency_budget"),
                    " must be more than 0 ms"
                )
                .into(),
            );
        }
        if !(0.0..1.0).contains(&self.hysteresis) {
            return Some(format!(
                concat!(option_name!("degradation.hysteresis", "hysteresis"), " is a fraction in [0, 1), not {}"),
                Float(self.hysteresis)
            ));
        }
        if self.window.is_zero() {
            return Some(concat!(option_name!("degradation.windowMs", "window"), " must be more than 0").into());
        }
        None
    }
}

/// What a duration option must be, as its errors say it: serde's natively, and the JavaScript
/// option reader's (`a number of milliseconds, at least 0`, a `RangeError` for a number).
pub(crate) const MILLISECONDS: &str = "milliseconds, at least 0";

/// Milliseconds (a finite number, at least 0) as a `Duration`.
fn millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let ms = f64::deserialize(deserializer)?;
    duration_from_millis(ms)
        .ok_or_else(|| serde::de::Error::invalid_value(serde::de::Unexpected::Float(ms), &MILLISECONDS))
}

/// [`millis`]' rule for a number already read (the wasm layer reads its options itself).
pub(crate) fn duration_from_millis(ms: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(ms / 1000.0).ok()
}

pub(crate) fn optional_millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    millis(deserializer).map(Some)
}

/// One reading of the signals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DegradationSignals {
    /// The fullest input queue among kernels that take messages, 0..1.
    pub queue_fill: f64,
    /// The worst recent latency p99 over its budget (`None`: no kernel with a budget answered
    /// in the window).
    pub latency_ratio: Option<f64>,
    /// Memory pressure, 0..1.
    pub memory_pressure: f64,
}

impl DegradationSignals {
    /// Signals from their three readings.
    pub fn new(queue_fill: f64, latency_ratio: Option<f64>, memory_pressure: f64) -> Self {
        DegradationSignals { queue_fill, latency_ratio, memory_pressure }
    }
}

/// Where the manager stands, as queries report it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DegradationStatus {
    /// Whether the runtime has a degradation manager (`RuntimeOptions::degradation`).
    pub enabled: bool,
    /// The level now.
    pub level: DegradationLevel,
    /// Which signal set it.
    pub reason: DegradationReason,
    /// The signals at the last evaluation.
    pub signals: DegradationSignals,
    /// Level changes so far.
    pub transitions: u64,
}

/// The state machine. Pure: callers hand it signals and the time.
#[derive(Debug, Clone)]
pub(crate) struct Degrader {
    options: DegradationOptions,
    level: DegradationLevel,
    reason: DegradationReason,
    signals: DegradationSignals,
    changed_at_ms: f64,
    /// When the signals were last read: nothing reads them while nothing runs.
    evaluated_at_ms: f64,
    transitions: u64,
}

impl Degrader {
    pub fn new(options: DegradationOptions, now_ms: f64) -> Self {
        Degrader {
            options,
            level: DegradationLevel::Normal,
            reason: DegradationReason::None,
            signals: DegradationSignals::default(),
            changed_at_ms: now_ms,
            evaluated_at_ms: now_ms,
            transitions: 0,
        }
    }

    pub fn options(&self) -> &DegradationOptions {
        &self.options
    }

    pub fn level(&self) -> DegradationLevel {
        self.level
    }

    pub fn status(&self) -> DegradationStatus {
        DegradationStatus {
            enabled: true,
            level: self.level,
            reason: self.reason,
            signals: self.signals,
            transitions: self.transitions,
        }
    }

    /// The level the signals point at with each threshold scaled by `scale`, and why.
    fn indicated(&self, s: &DegradationSignals, scale: f64) -> (DegradationLevel, DegradationReason) {
        let o = &self.options;
        let level_of = |value: f64, thresholds: &[f64; 4]| thresholds.iter().filter(|t| value >= *t * scale).count();
        let readings = [
            (level_of(s.queue_fill, &o.queue_fill_thresholds), DegradationReason::QueueFill),
            (s.latency_ratio.map_or(0, |r| level_of(r, &o.latency_thresholds)), DegradationReason::Latency),
            (level_of(s.memory_pressure, &o.memory_thresholds), DegradationReason::MemoryPressure),
        ];
        let (level, reason) =
            readings.into_iter().fold((0, DegradationReason::None), |best, r| if r.0 > best.0 { r } else { best });
        (DegradationLevel::from_index(level), reason)
    }

    /// Takes a reading at `now_ms`; returns the new level when it changed.
    pub fn evaluate(&mut self, signals: DegradationSignals, now_ms: f64) -> Option<DegradationLevel> {
        let next = self.next_level(signals, now_ms);
        self.evaluated_at_ms = now_ms;
        next
    }

    /// [`evaluate`](Self::evaluate) before it notes the time of the reading.
    fn next_level(&mut self, signals: DegradationSignals, now_ms: f64) -> Option<DegradationLevel> {
        self.signals = signals;
        let (up, reason) = self.indicated(&signals, 1.0);
        let next = if up > self.level {
            self.reason = reason;
            up
        } else {
            let (down, down_reason) = self.indicated(&signals, 1.0 - self.options.hysteresis);
            // One level once a cooldown has passed since the last change, or one per whole
            // cooldown nobody read the signals, if more (nothing reads them while nothing
            // runs): a reading after a quiet minute does not refuse sends for a load long gone.
            let cooldown_ms = self.options.cooldown.as_secs_f64() * 1000.0;
            let held = now_ms - self.changed_at_ms >= cooldown_ms;
            let quiet = now_ms - self.evaluated_at_ms;
            let steps = match cooldown_ms > 0.0 {
                true => ((quiet / cooldown_ms).floor() as usize).max(1),
                false => 1,
            };
            if down < self.level && held {
                let next = DegradationLevel::from_index((self.level as usize).saturating_sub(steps)).max(down);
                // Stepping down: the signal still over the next level's thresholds, if any, is
                // its reason; otherwise the one that raised it (its thresholds are being left).
                self.reason = match (next, down_reason) {
                    (DegradationLevel::Normal, _) => DegradationReason::None,
                    (_, DegradationReason::None) => self.reason,
                    (_, reason) => reason,
                };
                next
            } else {
                if down == self.level {
                    self.reason = down_reason;
                }
                self.level
            }
        };
        if next == self.level {
            return None;
        }
        self.level = next;
        self.changed_at_ms = now_ms;
        self.transitions += 1;
        Some(next)
    }
}

/// What the runtime does to one kernel at a level: the actions of the table in the module docs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub level: DegradationLevel,
    pub protected_priority: i32,
    /// The highest priority of any kernel that takes messages.
    pub top_priority: i32,
}

impl Policy {
    /// No degradation: every action off.
    pub fn off() -> Self {
        Policy { level: DegradationLevel::Normal, protected_priority: i32::MIN, top_priority: i32::MIN }
    }

    fn low(&self, priority: i32) -> bool {
        priority < self.protected_priority
    }

    /// Whether any kernel may sit a tick out at this level.
    pub fn may_defer(&self) -> bool {
        self.level >= DegradationLevel::Moderate
    }

    /// Whether a kernel of `priority` sits this tick out (not when it is fed by a connected
    /// kernel, nor when nothing else has work: deferring then would only idle the device).
    pub fn defers(&self, priority: i32, tick: u64) -> bool {
        self.may_defer() && self.low(priority) && !tick.is_multiple_of(DEFER_EVERY)
    }

    /// The batch bound of a kernel whose own is `max_batch`, `over_budget` or not.
    pub fn max_batch(&self, max_batch: u32, over_budget: bool) -> u32 {
        if self.level >= DegradationLevel::Severe && over_budget {
            (max_batch / BATCH_DIVISOR).max(1)
        } else {
            max_batch
        }
    }

    /// The priority a kernel needs for its sends to be taken now, if `priority` falls short.
    pub fn refuses(&self, priority: i32) -> Option<i32> {
        match self.level {
            DegradationLevel::Critical if priority < self.top_priority.max(self.protected_priority) => {
                Some(self.top_priority.max(self.protected_priority))
            }
            DegradationLevel::Severe | DegradationLevel::Critical if self.low(priority) => {
                Some(self.protected_priority)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DegradationLevel::*;

    fn fill(queue_fill: f64) -> DegradationSignals {
        DegradationSignals::new(queue_fill, None, 0.0)
    }

    fn degrader() -> Degrader {
        Degrader::new(DegradationOptions::default().with_cooldown(Duration::from_millis(100)), 0.0)
    }

    #[test]
    fn each_signal_raises_the_level_at_once_and_names_itself() {
        let mut d = degrader();
        assert_eq!(d.evaluate(fill(0.3), 1.0), None);
        assert_eq!(d.evaluate(fill(0.72), 2.0), Some(Moderate));
        assert_eq!(d.status().reason, DegradationReason::QueueFill);
        assert_eq!(d.evaluate(DegradationSignals::new(0.0, Some(4.5), 0.0), 3.0), Some(Critical));
        assert_eq!(d.status().reason, DegradationReason::Latency);
        let mut d = degrader();
        assert_eq!(d.evaluate(DegradationSignals::new(0.0, None, 0.91), 1.0), Some(Severe));
        assert_eq!(d.status().reason, DegradationReason::MemoryPressure);
    }

    #[test]
    fn it_steps_down_one_level_per_cooldown_and_only_below_the_hysteresis() {
        let mut d = degrader();
        d.evaluate(fill(0.96), 0.0);
        assert_eq!(d.level(), Critical);
        // Below critical's 0.95 but not below 0.95 * 0.9: holds however long.
        assert_eq!(d.evaluate(fill(0.9), 1_000.0), None);
        // Low enough, but the cooldown has not passed since the last change.
        assert_eq!(d.evaluate(fill(0.0), 1_050.0), Some(Severe), "held since 0 ms");
        assert_eq!(d.evaluate(fill(0.0), 1_100.0), None, "50 ms after the last change");
        assert_eq!(d.evaluate(fill(0.0), 1_150.0), Some(Moderate));
        assert_eq!(d.evaluate(fill(0.0), 1_250.0), Some(Light));
        assert_eq!(d.evaluate(fill(0.0), 1_350.0), Some(Normal));
        assert_eq!(d.status().reason, DegradationReason::None);
        assert_eq!(d.status().transitions, 5);
    }

    /// Nothing reads the signals while nothing runs: the first reading after a quiet spell takes
    /// a level per cooldown of it, not one.
    #[test]
    fn a_reading_after_a_quiet_spell_takes_every_step_it_earned() {
        let mut d = degrader();
        d.evaluate(fill(0.96), 0.0);
        assert_eq!(d.evaluate(fill(0.0), 250.0), Some(Moderate), "two cooldowns unread: two levels");
        assert_eq!(d.evaluate(fill(0.0), 300.0), None, "then one per cooldown again");
        d.evaluate(fill(0.96), 400.0);
        assert_eq!(d.evaluate(fill(0.0), 60_000.0), Some(Normal), "a quiet minute");
        assert_eq!(d.status().reason, DegradationReason::None);
    }

    #[test]
    fn the_actions_follow_the_level() {
        let at = |level| Policy { level, protected_priority: 0, top_priority: 5 };
        assert!(!at(Light).defers(-1, 1));
        assert!(at(Moderate).defers(-1, 1));
        assert!(!at(Moderate).defers(-1, DEFER_EVERY), "one tick in DEFER_EVERY runs");
        assert!(!at(Moderate).defers(0, 1), "protected kernels are never deferred");
        assert_eq!(at(Moderate).max_batch(64, true), 64);
        assert_eq!(at(Severe).max_batch(64, true), 16);
        assert_eq!(at(Severe).max_batch(2, true), 1);
        assert_eq!(at(Severe).max_batch(64, false), 64);
        assert_eq!(at(Moderate).refuses(-1), None);
        assert_eq!(at(Severe).refuses(-1), Some(0));
        assert_eq!(at(Severe).refuses(0), None);
        assert_eq!(at(Critical).refuses(3), Some(5));
        assert_eq!(at(Critical).refuses(5), None);
        assert_eq!(Policy::off().refuses(i32::MIN + 1), None);
    }

    #[test]
    fn bad_options_are_named() {
        let bad = [
            DegradationOptions::default().with_queue_fill_thresholds([0.5, 0.4, 0.9, 1.0]),
            DegradationOptions::default().with_latency_thresholds([f64::NAN, 1.0, 2.0, 3.0]),
            DegradationOptions::default().with_memory_thresholds([0.0, 0.5, 0.6, 0.7]),
            DegradationOptions::default().with_hysteresis(1.0),
            DegradationOptions::default().with_window(Duration::ZERO),
        ];
        for options in bad {
            assert!(options.problem().is_some(), "{options:?}");
        }
        assert_eq!(DegradationOptions::default().problem(), None);
    }

    /// Property tests under synthetic load (proptest runs natively).
    #[cfg(not(target_arch = "wasm32"))]
    mod load {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// Under any synthetic load: the level is always the one the signals point at or (while
            /// it steps down) above it; it never rises without a signal over its threshold; it
            /// falls one level per reading, or one per cooldown nobody read the signals if more;
            /// and it never flaps: between two changes down at least a cooldown passes.
            #[test]
            fn levels_follow_load_without_flapping(load in proptest::collection::vec((0.0f64..1.0, 0.0f64..6.0, 0.0f64..1.0, 1u32..400), 1..200)) {
                let mut d = degrader();
                let mut now = 0.0;
                let mut last_change = f64::NEG_INFINITY;
                for (queue_fill, latency, memory, step) in load {
                    now += step as f64;
                    let before = d.level();
                    let signals = DegradationSignals::new(queue_fill, Some(latency), memory);
                    let (pointed, _) = d.indicated(&signals, 1.0);
                    let changed = d.evaluate(signals, now);
                    let after = d.level();
                    prop_assert!(after >= pointed, "never below what the signals point at");
                    if after > before {
                        prop_assert_eq!(after, pointed, "up only as far as the signals point");
                    }
                    if after < before {
                        // More than one level only after a quiet spell: a cooldown each.
                        let steps = (before as u8 - after as u8) as f64;
                        prop_assert!(now - last_change >= 100.0, "down only after the cooldown");
                        prop_assert!(steps == 1.0 || step as f64 >= 100.0 * steps, "down one level per cooldown unread");
                    }
                    prop_assert_eq!(changed.is_some(), after != before);
                    if changed.is_some() {
                        last_change = now;
                    }
                }
            }

            /// Load held constant settles: after enough time the level is exactly what it points
            /// at with the hysteresis applied or the level it points at, and it stays there.
            #[test]
            fn constant_load_settles(queue_fill in 0.0f64..1.0, memory in 0.0f64..1.0) {
                let mut d = degrader();
                d.evaluate(fill(1.0), 0.0);
                let signals = DegradationSignals::new(queue_fill, None, memory);
                for i in 1..=10 {
                    d.evaluate(signals, i as f64 * 100.0);
                }
                let settled = d.level();
                for i in 11..=20 {
                    prop_assert_eq!(d.evaluate(signals, i as f64 * 100.0), None);
                }
                let (pointed, _) = d.indicated(&signals, 1.0);
                let (released, _) = d.indicated(&signals, 0.9);
                prop_assert!(settled >= pointed && settled <= released.max(pointed));
            }
        }
    }
}

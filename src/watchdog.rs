//! The kernel watchdog's terms: what a stale kernel is, and what the runtime does about one.
//!
//! Every kernel has a heartbeat: the last time it made progress (a tick answered or processed
//! some of its messages), or, when it was idle, the time work arrived or it was (re)activated,
//! so waiting for work never counts against it. A running kernel (active, or draining to
//! terminate) is stale when it has input (queued or in flight) and its heartbeat is older than
//! the heartbeat timeout: a handler that takes long per message but answers each tick keeps
//! beating; one whose answers have nowhere to go (its output queue full, nobody receiving), or
//! whose device or host handler hangs, does not.
//!
//! The scan happens when `KernelWatchdog::scan_stale_kernels` is called (the tick cannot do it:
//! a stalled kernel leaves the tick loop idle), and the configured [`WatchdogAction`] is applied
//! then, to the kernels that scan found.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a scan does with the stale kernels it finds, besides listing them. In JavaScript,
/// `"report"`, `"deactivate"` or `"recoverDevice"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum WatchdogAction {
    /// List them; change nothing.
    #[default]
    Report,
    /// Deactivate each (its input stays queued; `reactivate` resumes it).
    Deactivate,
    /// Lose the GPU device and recover onto a new one (nothing queued or in flight is lost; see
    /// `Runtime::recover`): for a device that hangs. Reported only on the cpu backend, which has
    /// no device to lose, on the application's own device (a `SharedDevice`), which the runtime
    /// may neither destroy nor replace, and for a kernel whose output queue is full (its answers
    /// wait for a receiver, which a new device would not bring).
    RecoverDevice,
}

impl WatchdogAction {
    /// The JavaScript spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            WatchdogAction::Report => "report",
            WatchdogAction::Deactivate => "deactivate",
            WatchdogAction::RecoverDevice => "recoverDevice",
        }
    }
}

/// Its JavaScript spelling, as [`as_str`](WatchdogAction::as_str) gives it.
impl std::fmt::Display for WatchdogAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The watchdog's settings, from `RuntimeOptions::watchdog` and changeable later through
/// `KernelWatchdog`. In JavaScript, `{ heartbeatTimeoutMs, action }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct WatchdogConfig {
    /// How long a kernel with input may go without progress before it is stale. Default 30 s.
    #[serde(rename = "heartbeatTimeoutMs", deserialize_with = "heartbeat_timeout_ms")]
    pub heartbeat_timeout: Duration,
    /// What a scan does with stale kernels. Default [`WatchdogAction::Report`].
    pub action: WatchdogAction,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        WatchdogConfig { heartbeat_timeout: Duration::from_secs(30), action: WatchdogAction::Report }
    }
}

impl WatchdogConfig {
    /// How long a kernel with input may go without progress.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = timeout;
        self
    }

    /// What a scan does with stale kernels.
    #[must_use = "this returns the changed value and leaves the one it was called on as it was"]
    pub fn with_action(mut self, action: WatchdogAction) -> Self {
        self.action = action;
        self
    }
}

/// A kernel the watchdog found stale. In JavaScript, `{ kernelId, inputDepth,
/// sinceProgressMs, action }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct StaleKernel {
    /// The kernel's id.
    pub kernel_id: String,
    /// Messages it has and has not answered: queued on the host and in flight.
    pub input_depth: usize,
    /// How long since its heartbeat.
    #[serde(rename = "sinceProgressMs", serialize_with = "as_millis")]
    pub since_progress: Duration,
    /// What the scan did about it (the configured action; `Report` where it could not apply,
    /// as for `RecoverDevice` on the cpu backend or for a kernel waiting for a receiver, or a
    /// kernel no longer active).
    pub action: WatchdogAction,
}

/// `timeout`, unless it is zero (`OutOfRange`): every kernel with input would be stale at once.
pub(crate) fn checked_heartbeat(timeout: Duration) -> crate::error::Result<Duration> {
    match timeout.is_zero() {
        true => Err(crate::error::Error::OutOfRange(
            concat!(
                crate::platform::option_name!("heartbeatTimeoutMs", "heartbeat_timeout"),
                " must be more than 0 ms: with none, every kernel with input is stale at once"
            )
            .into(),
        )),
        false => Ok(timeout),
    }
}

fn heartbeat_timeout_ms<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    crate::circuit::millis(deserializer, "watchdog.heartbeatTimeoutMs")
}

fn as_millis<S: serde::Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(value.as_secs_f64() * 1000.0)
}

/// How long a kernel with `input_depth` unanswered messages and a heartbeat at `heartbeat_ms`
/// has been stale at `now_ms`: `Some(since its heartbeat)` when that is past `timeout`, `None`
/// when it is not stale (no input, or a recent heartbeat).
pub(crate) fn staleness(input_depth: usize, heartbeat_ms: f64, now_ms: f64, timeout: Duration) -> Option<Duration> {
    let since = crate::platform::saturating_ms(now_ms - heartbeat_ms);
    (input_depth > 0 && since >= timeout).then_some(since)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_input_without_a_recent_heartbeat_is_stale() {
        let timeout = Duration::from_millis(100);
        assert_eq!(staleness(0, 0.0, 1_000.0, timeout), None);
        assert_eq!(staleness(3, 950.0, 1_000.0, timeout), None);
        assert_eq!(staleness(3, 900.0, 1_000.0, timeout), Some(Duration::from_millis(100)));
    }
}

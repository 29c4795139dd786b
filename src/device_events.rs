//! What happens to a runtime's devices, as events an application waits for
//! ([`Runtime::device_events`](crate::Runtime::device_events); in JavaScript `for await (const
//! event of runtime.deviceEvents())`): a device lost, recovered, a recovery that failed, and
//! automatic recovery giving up. An application hears of a loss as it happens instead of
//! polling `health()`, and no callback of its own runs inside the runtime, so none can block a
//! tick or call back into a lock.
//!
//! The runtime keeps its latest [`KEPT_DEVICE_EVENTS`] events, numbered from 1; each reader
//! holds the number of the last one it read, so readers never take events from each other, and
//! one that falls further behind than that is told how many it missed.

use std::sync::Arc;

use event_listener::{Event, EventListener};
use serde::Serialize;

use crate::devices::DeviceId;

/// How many device events a runtime keeps for readers that have yet to read them.
pub const KEPT_DEVICE_EVENTS: usize = 256;

/// What happened to a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum DeviceEventKind {
    /// The device was lost (a driver reset, a GPU unplugged, `destroy_device`, the watchdog's
    /// `recoverDevice`): its kernels are `failed` until a recovery.
    Lost,
    /// A new device replaced a lost one and its kernels run again with their state.
    Recovered,
    /// An attempt to replace a lost device failed; another may follow (`reason` says why).
    RecoveryFailed,
    /// Automatic recovery made its last attempt: the device's kernels wait for `recover()`.
    AutoRecoveryGaveUp,
}

impl DeviceEventKind {
    /// The JavaScript name: `lost`, `recovered`, `recoveryFailed`, `autoRecoveryGaveUp`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceEventKind::Lost => "lost",
            DeviceEventKind::Recovered => "recovered",
            DeviceEventKind::RecoveryFailed => "recoveryFailed",
            DeviceEventKind::AutoRecoveryGaveUp => "autoRecoveryGaveUp",
        }
    }
}

/// Its JavaScript name, as [`as_str`](DeviceEventKind::as_str) gives it.
impl std::fmt::Display for DeviceEventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing that happened to one device of a runtime.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DeviceEvent {
    /// Its number among the runtime's device events, from 1.
    pub seq: u64,
    /// What happened.
    pub kind: DeviceEventKind,
    /// To which device.
    pub device: DeviceId,
    /// Why: the loss's reason, a failed recovery's error, or what automatic recovery last saw;
    /// for a recovery `None`, or the kernels it could not rebuild and why (`not rebuilt: ...`),
    /// which stay failed on the recovered device.
    pub reason: Option<String>,
    /// The kernels it concerns: those that failed with the loss, those that run again after a
    /// recovery, those still waiting for one otherwise.
    pub kernels: Vec<String>,
    /// When, in milliseconds since the Unix epoch.
    pub timestamp_ms: f64,
    /// Events the reader skipped before this one because it fell more than
    /// [`KEPT_DEVICE_EVENTS`] behind (0 normally).
    pub missed: u64,
}

/// The events a runtime keeps, and who waits for the next (kept in its table, under its lock).
#[derive(Default)]
pub(crate) struct DeviceEventLog {
    /// Oldest first: a `Vec` (events are rare), which the wasm links less code for than a
    /// `VecDeque`.
    kept: Vec<DeviceEvent>,
    /// The number of the last event recorded (0: none yet).
    last: u64,
    /// Notified at each event, and when the runtime stops.
    changed: Arc<Event>,
}

impl DeviceEventLog {
    /// Records an event and wakes its readers; the oldest kept one goes past
    /// [`KEPT_DEVICE_EVENTS`].
    pub fn record(&mut self, kind: DeviceEventKind, device: DeviceId, reason: Option<String>, kernels: Vec<String>) {
        self.last += 1;
        if self.kept.len() == KEPT_DEVICE_EVENTS {
            self.kept.remove(0);
        }
        let timestamp_ms = crate::platform::unix_time_ms();
        self.kept.push(DeviceEvent { seq: self.last, kind, device, reason, kernels, timestamp_ms, missed: 0 });
        self.changed.notify(usize::MAX);
    }

    /// The number of the last event recorded (0: none yet): a reader from now on starts there.
    pub fn last(&self) -> u64 {
        self.last
    }

    /// The first event numbered after `seen`, with how many the reader missed before it.
    pub fn after(&self, seen: u64) -> Option<DeviceEvent> {
        let first = self.kept.first()?.seq;
        let at = seen.saturating_sub(first - 1) as usize;
        let mut event = self.kept.get(at)?.clone();
        event.missed = event.seq - seen - 1;
        Some(event)
    }

    /// Listens for the next event (or the runtime's stop); listen before looking, under the lock.
    pub fn listen(&self) -> EventListener {
        self.changed.listen()
    }

    /// Wakes every reader: the runtime has stopped, no event will follow.
    pub fn ended(&self) {
        self.changed.notify(usize::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(events: u64) -> DeviceEventLog {
        let mut log = DeviceEventLog::default();
        for i in 0..events {
            log.record(DeviceEventKind::Lost, DeviceId(i as u32), None, Vec::new());
        }
        log
    }

    #[test]
    fn a_reader_gets_each_event_after_the_one_it_saw_in_order() {
        let log = recorded(3);
        assert_eq!(log.last(), 3);
        let seqs: Vec<u64> = (0..3).map(|seen| log.after(seen).unwrap().seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert!(log.after(3).is_none());
        assert_eq!(log.after(1).unwrap().missed, 0);
    }

    #[test]
    fn a_reader_further_behind_than_what_is_kept_is_told_how_many_it_missed() {
        let extra = 10;
        let log = recorded(KEPT_DEVICE_EVENTS as u64 + extra);
        let first = log.after(0).unwrap();
        assert_eq!((first.seq, first.missed), (extra + 1, extra));
        let next = log.after(first.seq).unwrap();
        assert_eq!((next.seq, next.missed), (extra + 2, 0));
        assert!(log.after(log.last()).is_none());
    }
}

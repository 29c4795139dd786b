//! The runtime's device events for its callers (see [`crate::device_events`]): a stream of
//! them from now on, and the next one after a given number, which the JavaScript iterator
//! reads.

use super::Runtime;
use crate::device_events::DeviceEvent;
use crate::lifecycle::LifecycleState;
use crate::waiting::wait;

impl Runtime {
    /// What happens to the runtime's devices from now on, as a
    /// [`Stream`](futures_util::Stream) of [`DeviceEvent`]s: each device lost, recovered, each
    /// recovery that failed, and automatic recovery giving up. It ends once the runtime has
    /// stopped, after the events before the stop. Streams read independently: each sees every
    /// event (a reader more than [`KEPT_DEVICE_EVENTS`](crate::KEPT_DEVICE_EVENTS) behind is
    /// told how many it missed, in [`DeviceEvent::missed`]). The stream holds a clone of the
    /// runtime, so it keeps it alive until [`dispose`](Self::dispose). It is `Unpin`:
    /// `events.next().await` needs no `pin!`.
    pub fn device_events(&self) -> impl futures_util::Stream<Item = DeviceEvent> + Unpin + 'static {
        let seen = self.last_device_event();
        Box::pin(futures_util::stream::unfold((self.clone(), seen), |(runtime, seen)| async move {
            let event = runtime.next_device_event(seen).await?;
            let seq = event.seq;
            Some((event, (runtime, seq)))
        }))
    }

    /// The number of the last device event so far (0 before the first): a reader from now on
    /// passes it to [`next_device_event`](Self::next_device_event).
    pub fn last_device_event(&self) -> u64 {
        self.shared.lock().device_events.last()
    }

    /// The first device event numbered after `after`, as soon as there is one; `None` once the
    /// runtime has stopped with none after it. Bound the wait with your executor's timeout.
    pub async fn next_device_event(&self, after: u64) -> Option<DeviceEvent> {
        loop {
            let listener = {
                let table = self.shared.lock();
                if let Some(event) = table.device_events.after(after) {
                    return Some(event);
                }
                if table.state == LifecycleState::Stopped {
                    return None;
                }
                table.device_events.listen()
            };
            wait(listener, None).await;
        }
    }
}

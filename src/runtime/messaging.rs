//! Moving messages: `send` and `send_batch` stage packed messages on the host (the pump moves
//! them to the GPU in bulk), `receive` takes answers from the output queue, and `call` pairs
//! one message with its own answer through its correlation id (see [`crate::correlation`]).

use futures_channel::oneshot;

use super::{deadline, kernel_mut, wait, wait_for, Runtime, TimeoutMs};
use crate::correlation::{Abandon, Reply};
use crate::error::{Error, Result};
use crate::lifecycle::{Action, KernelState};
use crate::message::Value;
use crate::platform;
use crate::queue::PackedQueue;

/// What `enqueue` accepted.
struct Enqueued {
    accepted: usize,
    /// For a `call`: where its answer will arrive, and its correlation id.
    answer: Option<(u64, oneshot::Receiver<Reply>)>,
}

impl Runtime {
    /// Queues packed messages (already in the kernel's input layout, back to back). Waits up to
    /// `timeout_ms` for room and returns how many whole messages were accepted: those are the
    /// first ones, and the rest were not queued. `Some(0.0)` takes what fits now.
    pub async fn send_packed(&self, id: &str, packed: &[u8], timeout_ms: TimeoutMs) -> Result<usize> {
        let result = async { Ok(self.enqueue(id, packed, deadline(timeout_ms)?, false).await?.accepted) }.await;
        self.count_error(id, result)
    }

    /// Queues `#[repr(C)]` messages whose bytes match the input layout; returns how many were
    /// accepted within `timeout_ms` (see [`send_packed`](Self::send_packed)).
    pub async fn send_batch<T: bytemuck::Pod>(&self, id: &str, messages: &[T], timeout_ms: TimeoutMs) -> Result<usize> {
        self.count_error(id, self.expect_message_size(id, std::mem::size_of::<T>()))?;
        self.send_packed(id, bytemuck::cast_slice(messages), timeout_ms).await
    }

    /// Queues one message given as named values. Waits up to `timeout_ms` for room, then
    /// fails with `QueueFull`; a malformed message is a `MessageFormat` error naming the field.
    pub async fn send(&self, id: &str, fields: &[(&str, Value)], timeout_ms: TimeoutMs) -> Result<()> {
        let packed = self.count_error(id, self.encode(id, fields))?;
        self.send_one(id, &packed, timeout_ms).await
    }

    /// Queues one `#[repr(C)]` message whose bytes match the kernel's input layout.
    pub async fn send_pod<T: bytemuck::Pod>(&self, id: &str, message: &T, timeout_ms: TimeoutMs) -> Result<()> {
        self.send_one(id, bytemuck::bytes_of(message), timeout_ms).await
    }

    async fn send_one(&self, id: &str, packed: &[u8], timeout_ms: TimeoutMs) -> Result<()> {
        let result = async {
            self.expect_message_size(id, packed.len())?;
            match self.enqueue(id, packed, deadline(timeout_ms)?, false).await?.accepted {
                1 => Ok(()),
                _ => Err(Error::QueueFull { id: id.to_owned(), capacity: self.queue_size(id)? }),
            }
        }
        .await;
        self.count_error(id, result)
    }

    /// Sends one message and resolves with its own answer, matched by correlation id, however
    /// many other calls, sends and receives are in flight. `timeout_ms` covers both waiting for
    /// queue room (`QueueFull`) and for the answer (`Timeout`; the message is still processed
    /// and its late answer is discarded and counted as `answers_abandoned`). A handler that
    /// dropped the message gives `MessageDropped`. If the device is lost first, the call fails
    /// with `DeviceLost` and its message is treated like a timed-out call's: processed after
    /// recovery, its answer discarded. A failed kernel refuses calls.
    pub async fn call_packed(&self, id: &str, packed: &[u8], timeout_ms: TimeoutMs) -> Result<Vec<u8>> {
        let result = self.call_inner(id, packed, timeout_ms).await;
        self.count_error(id, result)
    }

    /// [`call_packed`](Self::call_packed) with named values in and out.
    pub async fn call(
        &self,
        id: &str,
        fields: &[(&str, Value)],
        timeout_ms: TimeoutMs,
    ) -> Result<Vec<(String, Value)>> {
        let packed = self.count_error(id, self.encode(id, fields))?;
        let answer = self.call_packed(id, &packed, timeout_ms).await?;
        Ok(self.output_layout(id)?.decode(&answer))
    }

    /// [`call_packed`](Self::call_packed) with `#[repr(C)]` values in and out.
    pub async fn call_pod<In: bytemuck::Pod, Out: bytemuck::Pod>(
        &self,
        id: &str,
        message: &In,
        timeout_ms: TimeoutMs,
    ) -> Result<Out> {
        // Checked before sending: a wrong `Out` must not cost the message its answer.
        self.count_error(id, self.expect_answer_size::<Out>(id))?;
        let answer = self.call_packed(id, bytemuck::bytes_of(message), timeout_ms).await?;
        self.pod_answer(id, &answer)
    }

    async fn call_inner(&self, id: &str, packed: &[u8], timeout_ms: TimeoutMs) -> Result<Vec<u8>> {
        let deadline = deadline(timeout_ms)?;
        if let Some(to) = self.connected_to(id)? {
            return Err(Error::InvalidArgument(format!(
                "kernel '{id}' is connected to '{to}', so its answers go there: send to it and receive from the \
                 pipeline's last kernel, or disconnect it first"
            )));
        }
        self.expect_message_size(id, packed.len())?;
        // One deadline covers both waiting for room and waiting for the answer.
        let enqueued = self.enqueue(id, packed, deadline, true).await?;
        let Some((seq, mut answer)) = enqueued.answer else {
            return Err(Error::QueueFull { id: id.to_owned(), capacity: self.queue_size(id)? });
        };
        let dropped = || Error::MessageDropped { id: id.to_owned() };
        match wait_for(&mut answer, deadline).await {
            Some(Ok(reply)) => reply?.ok_or_else(dropped),
            // The sender was dropped: the kernel stopped first.
            Some(Err(oneshot::Canceled)) => {
                let table = self.shared.lock();
                let state = table.kernels.get(id).map_or(KernelState::Terminated, |k| k.state);
                Err(Error::KernelState { id: id.to_owned(), state, action: Action::Receive })
            }
            None => {
                let mut table = self.shared.lock();
                if let Some(kernel) = table.kernels.get_mut(id) {
                    if let Abandon::Answered(answer) = kernel.ledger.abandon(seq, answer) {
                        return answer.ok_or_else(dropped);
                    }
                }
                Err(Error::Timeout {
                    id: id.to_owned(),
                    operation: "call".into(),
                    timeout_ms: timeout_ms.unwrap_or(0.0),
                })
            }
        }
    }

    /// Queues whole messages, waiting until the deadline for room. With `call`, `packed` is one
    /// message and its answer is routed to the returned receiver.
    async fn enqueue(&self, id: &str, packed: &[u8], deadline: Option<f64>, call: bool) -> Result<Enqueued> {
        let mut accepted = 0;
        loop {
            let listener = {
                let mut table = self.open_table()?;
                let lost = table.lost.clone();
                let kernel = kernel_mut(&mut table, id)?;
                if !kernel.state.accepts_messages() {
                    return Err(Error::KernelState { id: id.to_owned(), state: kernel.state, action: Action::Send });
                }
                if call && kernel.state == KernelState::Failed {
                    return Err(lost.unwrap_or_else(|| device_lost_error(id)));
                }
                let stride = kernel.inbox.stride();
                if !packed.len().is_multiple_of(stride) {
                    return Err(Error::MessageFormat {
                        id: id.to_owned(),
                        field: kernel.def.input.name().to_owned(),
                        problem: format!(
                            "packed batch of {} bytes is not a whole number of {stride}-byte messages",
                            packed.len()
                        ),
                    });
                }
                let pushed = kernel.inbox.push_many(&packed[accepted * stride..]);
                let first = kernel.ledger.accept(pushed as u64, platform::now_ms());
                let answer = (call && pushed == 1).then(|| (first, kernel.ledger.expect_answer(first)));
                accepted += pushed;
                kernel.counters.messages_sent += pushed as u64;
                let listener = kernel.changed.listen();
                if pushed > 0 {
                    self.shared.wake_pump.notify(usize::MAX);
                }
                if accepted * stride == packed.len() {
                    return Ok(Enqueued { accepted, answer });
                }
                listener
            };
            if !wait(listener, deadline).await {
                return Ok(Enqueued { accepted, answer: None });
            }
        }
    }

    /// Packs named values into the kernel's input layout.
    pub fn encode(&self, id: &str, fields: &[(&str, Value)]) -> Result<Vec<u8>> {
        let layout = self.input_layout(id)?;
        let mut packed = vec![0u8; layout.size()];
        layout.encode(fields.iter().map(|(n, v)| (*n, v)), &mut packed).map_err(|e| Error::MessageFormat {
            id: id.to_owned(),
            field: e.field,
            problem: e.problem,
        })?;
        Ok(packed)
    }

    /// Takes the next answer, packed in the output layout. Waits up to `timeout_ms` (forever
    /// when `None`), then fails with `Timeout`.
    pub async fn receive_packed(&self, id: &str, timeout_ms: TimeoutMs) -> Result<Vec<u8>> {
        let mut batch = self.receive_batch_packed(id, 1, timeout_ms).await?;
        batch.truncate(self.output_layout(id)?.size());
        Ok(batch)
    }

    /// Takes up to `max` answers at once (at least one), packed back to back. Answers to
    /// `call`s never appear here. After termination the remaining answers can still be taken;
    /// then `receive` fails with `KernelState`.
    pub async fn receive_batch_packed(&self, id: &str, max: usize, timeout_ms: TimeoutMs) -> Result<Vec<u8>> {
        let result = self.receive_inner(id, max, timeout_ms, |outbox, n| outbox.pop_many(n)).await;
        self.count_error(id, result)
    }

    /// Waits until answers are there, then takes up to `max` (at least one) with `take`.
    async fn receive_inner<R>(
        &self,
        id: &str,
        max: usize,
        timeout_ms: TimeoutMs,
        take: impl Fn(&mut PackedQueue, usize) -> R,
    ) -> Result<R> {
        let deadline = deadline(timeout_ms)?;
        loop {
            let listener = {
                let mut table = self.open_table()?;
                let lost = table.lost.clone();
                let kernel = kernel_mut(&mut table, id)?;
                if !kernel.outbox.is_empty() {
                    let count = max.max(1).min(kernel.outbox.len());
                    let taken = take(&mut kernel.outbox, count);
                    kernel.counters.messages_received += count as u64;
                    // Room in the output queue lets the pump dispatch more.
                    self.shared.wake_pump.notify(usize::MAX);
                    return Ok(taken);
                }
                match kernel.state {
                    KernelState::Terminated => {
                        return Err(Error::KernelState {
                            id: id.to_owned(),
                            state: kernel.state,
                            action: Action::Receive,
                        })
                    }
                    // Its answers come only after recovery: waiting receives hear why now.
                    KernelState::Failed => return Err(lost.unwrap_or_else(|| device_lost_error(id))),
                    _ => {}
                }
                kernel.changed.listen()
            };
            if !wait(listener, deadline).await {
                return Err(Error::Timeout {
                    id: id.to_owned(),
                    operation: "receive".into(),
                    timeout_ms: timeout_ms.unwrap_or(0.0),
                });
            }
        }
    }

    /// Takes the next answer as named values.
    pub async fn receive(&self, id: &str, timeout_ms: TimeoutMs) -> Result<Vec<(String, Value)>> {
        let packed = self.receive_packed(id, timeout_ms).await?;
        Ok(self.output_layout(id)?.decode(&packed))
    }

    /// Takes the next answer as a `#[repr(C)]` value matching the output layout.
    pub async fn receive_pod<T: bytemuck::Pod>(&self, id: &str, timeout_ms: TimeoutMs) -> Result<T> {
        // Checked before taking: a wrong `T` must not take the answer off the queue.
        self.count_error(id, self.expect_answer_size::<T>(id))?;
        let packed = self.receive_packed(id, timeout_ms).await?;
        self.pod_answer(id, &packed)
    }

    /// Takes up to `max` answers as `#[repr(C)]` values.
    pub async fn receive_batch<T: bytemuck::Pod>(&self, id: &str, max: usize, timeout_ms: TimeoutMs) -> Result<Vec<T>> {
        let stride = self.output_layout(id)?.size();
        if !stride.is_multiple_of(std::mem::size_of::<T>()) {
            return self.count_error(id, Err(self.pod_error::<T>(id, stride)));
        }
        // Straight from the output queue into the answer vector: one copy.
        let result = self.receive_inner(id, max, timeout_ms, |outbox, n| outbox.pop_many_as::<T>(n)).await;
        self.count_error(id, result)
    }

    fn pod_answer<T: bytemuck::Pod>(&self, id: &str, packed: &[u8]) -> Result<T> {
        bytemuck::try_pod_read_unaligned(packed).map_err(|_| self.pod_error::<T>(id, packed.len()))
    }

    /// Refuses a `#[repr(C)]` answer type whose size is not the output layout's.
    fn expect_answer_size<T>(&self, id: &str) -> Result<()> {
        let size = self.output_layout(id)?.size();
        if std::mem::size_of::<T>() != size {
            return Err(Error::MessageFormat {
                id: id.to_owned(),
                field: std::any::type_name::<T>().to_owned(),
                problem: format!("is {} bytes, but answers are {size} bytes", std::mem::size_of::<T>()),
            });
        }
        Ok(())
    }

    fn pod_error<T>(&self, id: &str, got: usize) -> Error {
        Error::MessageFormat {
            id: id.to_owned(),
            field: std::any::type_name::<T>().to_owned(),
            problem: format!("is {} bytes, which does not divide the {got} bytes of answers", std::mem::size_of::<T>()),
        }
    }

    /// Refuses one message (or a `#[repr(C)]` type) whose size is not the input layout's.
    fn expect_message_size(&self, id: &str, got: usize) -> Result<()> {
        let layout = self.input_layout(id)?;
        if got != layout.size() {
            return Err(Error::MessageFormat {
                id: id.to_owned(),
                field: layout.name().to_owned(),
                problem: format!("is {} bytes, got {got}", layout.size()),
            });
        }
        Ok(())
    }
}

/// For a failed kernel when the runtime has already recovered (or is about to).
fn device_lost_error(id: &str) -> Error {
    Error::DeviceLost { reason: format!("kernel '{id}' is waiting for recovery") }
}

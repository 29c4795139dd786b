//! Moving messages: `send` and `send_batch` stage packed messages on the host (the tick moves
//! them to the device in bulk), `receive` takes answers from the output queue, and `call` pairs
//! one message with its own answer through its correlation id (see [`crate::correlation`]).
//!
//! A single message is packed straight into its queue slot, with the kernel's layout looked up
//! once under the table lock; a received answer is read straight from the output queue.

use futures_channel::oneshot;

use super::{Runtime, TimeoutMs};
use crate::correlation::Abandon;
use crate::error::{Error, Result};
use crate::lifecycle::{Action, KernelState};
use crate::mailbox::CallTicket;
use crate::message::{MessageLayout, Value};
use crate::platform;
use crate::queue::PackedQueue;
use crate::waiting::{deadline, wait, wait_for, Deadline};

impl Runtime {
    /// Queues one message given as named values. Waits up to `timeout_ms` for room, then
    /// fails with `QueueFull`; a malformed message is a `MessageFormat` error naming the field.
    pub async fn send(&self, id: &str, fields: &[(&str, Value)], timeout_ms: TimeoutMs) -> Result<()> {
        let pack = |layout: &MessageLayout, slot: &mut [u8]| {
            pack_fields(id, layout, fields.iter().map(|(n, v)| (*n, v)), slot)
        };
        let result = async { self.enqueue_one(id, deadline(timeout_ms)?, None, pack).await.map(drop) }.await;
        self.counted(id, result)
    }

    /// Queues one message given as a [`Value::Struct`] of its fields (what the JavaScript
    /// layer hands over); any other value is a `MessageFormat` error.
    pub async fn send_value(&self, id: &str, message: &Value, timeout_ms: TimeoutMs) -> Result<()> {
        let result = async {
            let fields = struct_fields(id, message)?;
            let pack = |layout: &MessageLayout, slot: &mut [u8]| pack_fields(id, layout, named(fields), slot);
            self.enqueue_one(id, deadline(timeout_ms)?, None, pack).await.map(drop)
        }
        .await;
        self.counted(id, result)
    }

    /// Queues one `#[repr(C)]` message whose bytes match the kernel's input layout.
    pub async fn send_pod<T: bytemuck::Pod>(&self, id: &str, message: &T, timeout_ms: TimeoutMs) -> Result<()> {
        let pack =
            |layout: &MessageLayout, slot: &mut [u8]| copy_message(id, layout, bytemuck::bytes_of(message), slot);
        let result = async { self.enqueue_one(id, deadline(timeout_ms)?, None, pack).await.map(drop) }.await;
        self.counted(id, result)
    }

    /// Queues packed messages (already in the kernel's input layout, back to back). Waits up to
    /// `timeout_ms` for room and returns how many whole messages were accepted: those are the
    /// first ones, and the rest were not queued. `Some(0.0)` takes what fits now.
    pub async fn send_packed(&self, id: &str, packed: &[u8], timeout_ms: TimeoutMs) -> Result<usize> {
        let result = async { self.enqueue_many(id, packed, deadline(timeout_ms)?).await }.await;
        self.counted(id, result)
    }

    /// Queues `#[repr(C)]` messages whose bytes match the input layout; returns how many were
    /// accepted within `timeout_ms` (see [`send_packed`](Self::send_packed)).
    pub async fn send_batch<T: bytemuck::Pod>(&self, id: &str, messages: &[T], timeout_ms: TimeoutMs) -> Result<usize> {
        self.counted(id, self.expect_message_size(id, std::mem::size_of::<T>()))?;
        self.send_packed(id, bytemuck::cast_slice(messages), timeout_ms).await
    }

    /// Queues messages given as [`Value::Struct`]s (see [`send_value`](Self::send_value)); a
    /// malformed one refuses the whole batch, counted once. Returns how many were accepted
    /// within `timeout_ms`.
    pub async fn send_values(&self, id: &str, messages: &[Value], timeout_ms: TimeoutMs) -> Result<usize> {
        let packed = self.counted(id, self.encode_values(id, messages))?;
        self.send_packed(id, &packed, timeout_ms).await
    }

    /// Sends one message and resolves with its own answer, matched by correlation id, however
    /// many other calls, sends and receives are in flight. `timeout_ms` covers both waiting for
    /// queue room (`QueueFull`) and for the answer (`Timeout`; the message is still processed
    /// and its late answer is discarded and counted as `answers_abandoned`). A handler that
    /// dropped the message gives `MessageDropped`. If the device is lost first, the call fails
    /// with `DeviceLost` and its message is treated like a timed-out call's: processed after
    /// recovery, its answer discarded. A failed kernel refuses calls.
    pub async fn call(
        &self,
        id: &str,
        fields: &[(&str, Value)],
        timeout_ms: TimeoutMs,
    ) -> Result<Vec<(String, Value)>> {
        let pack = |layout: &MessageLayout, slot: &mut [u8]| {
            pack_fields(id, layout, fields.iter().map(|(n, v)| (*n, v)), slot)
        };
        self.call_with(id, timeout_ms, pack, |layout, answer| Ok(layout.decode(answer))).await
    }

    /// [`call`](Self::call) with the message as a [`Value::Struct`] (see
    /// [`send_value`](Self::send_value)); `read` gets the output layout and the answer's bytes.
    pub async fn call_value<R>(
        &self,
        id: &str,
        message: &Value,
        timeout_ms: TimeoutMs,
        read: impl FnOnce(&MessageLayout, &[u8]) -> R,
    ) -> Result<R> {
        let fields = self.counted(id, struct_fields(id, message))?;
        let pack = |layout: &MessageLayout, slot: &mut [u8]| pack_fields(id, layout, named(fields), slot);
        self.call_with(id, timeout_ms, pack, |layout, answer| Ok(read(layout, answer))).await
    }

    /// [`call`](Self::call) with the message packed in the input layout; the answer comes back
    /// packed.
    pub async fn call_packed(&self, id: &str, packed: &[u8], timeout_ms: TimeoutMs) -> Result<Vec<u8>> {
        let pack = |layout: &MessageLayout, slot: &mut [u8]| copy_message(id, layout, packed, slot);
        self.call_with(id, timeout_ms, pack, |_, answer| Ok(answer.to_vec())).await
    }

    /// [`call`](Self::call) with `#[repr(C)]` values in and out.
    pub async fn call_pod<In: bytemuck::Pod, Out: bytemuck::Pod>(
        &self,
        id: &str,
        message: &In,
        timeout_ms: TimeoutMs,
    ) -> Result<Out> {
        // Checked before sending: a wrong `Out` must not cost the message its answer.
        self.counted(id, self.expect_answer_size::<Out>(id))?;
        let pack =
            |layout: &MessageLayout, slot: &mut [u8]| copy_message(id, layout, bytemuck::bytes_of(message), slot);
        self.call_with(id, timeout_ms, pack, |_, answer| Ok(bytemuck::pod_read_unaligned(answer))).await
    }

    /// A call: `pack` writes the message into its slot, `read` turns the answer into the result.
    async fn call_with<R>(
        &self,
        id: &str,
        timeout_ms: TimeoutMs,
        pack: impl Fn(&MessageLayout, &mut [u8]) -> Result<()>,
        read: impl FnOnce(&MessageLayout, &[u8]) -> Result<R>,
    ) -> Result<R> {
        let result = async {
            // One deadline covers both waiting for room and waiting for the answer.
            let deadline = deadline(timeout_ms)?;
            let mut output = None;
            let (seq, mut answer) =
                self.enqueue_one(id, deadline, Some(&mut output), pack).await?.expect("a call gets its ticket");
            let dropped = || Error::MessageDropped { id: id.to_owned() };
            let layout = output.expect("set with the ticket");
            let answer = match wait_for(&mut answer, deadline).await {
                Some(Ok(reply)) => reply?.ok_or_else(dropped)?,
                // The sender was dropped: the kernel stopped first.
                Some(Err(oneshot::Canceled)) => {
                    let table = self.shared.lock();
                    let state = table.kernels.get(id).map_or(KernelState::Terminated, |k| k.life.state());
                    return Err(Error::KernelState { id: id.to_owned(), state, action: Action::Receive });
                }
                None => {
                    let mut table = self.shared.lock();
                    let late = match table.kernels.get_mut(id) {
                        Some(kernel) => kernel.mailbox.ledger.abandon(seq, answer),
                        None => Abandon::Pending,
                    };
                    match late {
                        Abandon::Answered(answer) => answer.ok_or_else(dropped)?,
                        Abandon::Pending => {
                            return Err(Error::Timeout {
                                id: id.to_owned(),
                                operation: "call".into(),
                                timeout_ms: timeout_ms.unwrap_or(0.0),
                            })
                        }
                    }
                }
            };
            read(&layout, &answer)
        }
        .await;
        self.counted(id, result)
    }

    /// Queues one message that `pack` writes in place (given the input layout), waiting until
    /// the deadline for room, then `QueueFull`. A malformed message is refused before any
    /// state is checked or room waited for. With `call` set, the message's answer goes to the
    /// returned ticket, and `call` receives the output layout to read it with.
    async fn enqueue_one(
        &self,
        id: &str,
        deadline: Deadline,
        mut call: Option<&mut Option<MessageLayout>>,
        pack: impl Fn(&MessageLayout, &mut [u8]) -> Result<()>,
    ) -> Result<Option<CallTicket>> {
        loop {
            let (listener, capacity) = {
                let mut table = self.open_table()?;
                let lost = table.device.lost.clone();
                let kernel = table.kernel(id)?;
                let connected = kernel.route.downstream.clone();
                let refusal = match kernel.life.state() {
                    _ if call.is_some() && connected.is_some() => Some(Error::InvalidArgument(format!(
                        "kernel '{id}' is connected to '{}', so its answers go there: send to it and receive from \
                         the pipeline's last kernel, or disconnect it first",
                        connected.unwrap_or_default()
                    ))),
                    state if !state.accepts_messages() => {
                        Some(Error::KernelState { id: id.to_owned(), state, action: Action::Send })
                    }
                    KernelState::Failed if call.is_some() => Some(lost.unwrap_or_else(|| device_lost_error(id))),
                    _ => None,
                };
                let input = &kernel.def.input;
                if kernel.mailbox.inbox.free() > 0 {
                    let pack = |slot: &mut [u8]| {
                        pack(input, slot)?;
                        refusal.map_or(Ok(()), Err)
                    };
                    let ticket = kernel.mailbox.accept_one(pack, call.is_some(), platform::now_ms())?;
                    if let Some(output) = call.take() {
                        *output = Some(kernel.def.output.clone());
                    }
                    kernel.counters.messages_sent += 1;
                    self.shared.wake();
                    return Ok(ticket);
                }
                // Full: refuse a malformed message now rather than after waiting for room.
                pack(input, &mut vec![0; input.size()])?;
                if let Some(refusal) = refusal {
                    return Err(refusal);
                }
                (kernel.changed.listen(), kernel.mailbox.inbox.capacity())
            };
            if !wait(listener, deadline).await {
                return Err(Error::QueueFull { id: id.to_owned(), capacity });
            }
        }
    }

    /// Queues whole packed messages, waiting until the deadline for room; returns how many
    /// were accepted (the first ones).
    async fn enqueue_many(&self, id: &str, packed: &[u8], deadline: Deadline) -> Result<usize> {
        let mut accepted = 0;
        loop {
            let listener = {
                let mut table = self.open_table()?;
                let kernel = table.kernel(id)?;
                let state = kernel.life.state();
                if !state.accepts_messages() {
                    return Err(Error::KernelState { id: id.to_owned(), state, action: Action::Send });
                }
                let stride = kernel.mailbox.inbox.stride();
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
                let pushed = kernel.mailbox.accept_packed(&packed[accepted * stride..], platform::now_ms());
                accepted += pushed;
                kernel.counters.messages_sent += pushed as u64;
                let listener = kernel.changed.listen();
                if pushed > 0 {
                    self.shared.wake();
                }
                if accepted * stride == packed.len() {
                    return Ok(accepted);
                }
                listener
            };
            if !wait(listener, deadline).await {
                return Ok(accepted);
            }
        }
    }

    /// Packs named values into the kernel's input layout.
    pub fn encode(&self, id: &str, fields: &[(&str, Value)]) -> Result<Vec<u8>> {
        let layout = self.input_layout(id)?;
        let mut packed = vec![0u8; layout.size()];
        pack_fields(id, &layout, fields.iter().map(|(n, v)| (*n, v)), &mut packed)?;
        Ok(packed)
    }

    /// Packs messages given as [`Value::Struct`]s back to back, the layout looked up once.
    fn encode_values(&self, id: &str, messages: &[Value]) -> Result<Vec<u8>> {
        let layout = self.input_layout(id)?;
        let mut packed = vec![0u8; layout.size() * messages.len()];
        for (message, slot) in messages.iter().zip(packed.chunks_exact_mut(layout.size())) {
            pack_fields(id, &layout, named(struct_fields(id, message)?), slot)?;
        }
        Ok(packed)
    }

    /// Takes the next answer as named values. Waits up to `timeout_ms` (forever when `None`),
    /// then fails with `Timeout`.
    pub async fn receive(&self, id: &str, timeout_ms: TimeoutMs) -> Result<Vec<(String, Value)>> {
        self.receive_with(id, timeout_ms, |layout, answer| layout.decode(answer)).await
    }

    /// Takes the next answer, handing `read` the output layout and the answer's bytes straight
    /// from the output queue (what the JavaScript layer turns into an object).
    pub async fn receive_with<R>(
        &self,
        id: &str,
        timeout_ms: TimeoutMs,
        read: impl FnOnce(&MessageLayout, &[u8]) -> R,
    ) -> Result<R> {
        let result = self
            .receive_inner(id, timeout_ms, |_| Ok(()), |layout, outbox| outbox.pop_with(|answer| read(layout, answer)))
            .await;
        self.counted(id, result.map(|read| read.expect("the output queue had an answer")))
    }

    /// Takes the next answer, packed in the output layout.
    pub async fn receive_packed(&self, id: &str, timeout_ms: TimeoutMs) -> Result<Vec<u8>> {
        self.receive_with(id, timeout_ms, |_, answer| answer.to_vec()).await
    }

    /// Takes the next answer as a `#[repr(C)]` value matching the output layout.
    pub async fn receive_pod<T: bytemuck::Pod>(&self, id: &str, timeout_ms: TimeoutMs) -> Result<T> {
        // Checked before taking: a wrong `T` must not take the answer off the queue.
        let check = |layout: &MessageLayout| answer_size_matches::<T>(id, layout);
        let result = self
            .receive_inner(id, timeout_ms, check, |_, outbox| outbox.pop_with(bytemuck::pod_read_unaligned::<T>))
            .await;
        self.counted(id, result.map(|read| read.expect("the output queue had an answer")))
    }

    /// Takes up to `max` answers at once (at least one), packed back to back. Answers to
    /// `call`s never appear here. After termination the remaining answers can still be taken;
    /// then `receive` fails with `KernelState`.
    pub async fn receive_batch_packed(&self, id: &str, max: usize, timeout_ms: TimeoutMs) -> Result<Vec<u8>> {
        let result = self.receive_inner(id, timeout_ms, |_| Ok(()), |_, outbox| outbox.pop_many(max.max(1))).await;
        self.counted(id, result)
    }

    /// Takes up to `max` answers as `#[repr(C)]` values.
    pub async fn receive_batch<T: bytemuck::Pod>(&self, id: &str, max: usize, timeout_ms: TimeoutMs) -> Result<Vec<T>> {
        let check = |layout: &MessageLayout| {
            if !layout.size().is_multiple_of(std::mem::size_of::<T>()) {
                return Err(pod_error::<T>(id, layout.size()));
            }
            Ok(())
        };
        // Straight from the output queue into the answer vector: one copy.
        let result = self.receive_inner(id, timeout_ms, check, |_, outbox| outbox.pop_many_as::<T>(max.max(1))).await;
        self.counted(id, result)
    }

    /// Waits until answers are there, then takes them with `take`. `check` refuses the call
    /// before anything is waited for or taken.
    async fn receive_inner<R>(
        &self,
        id: &str,
        timeout_ms: TimeoutMs,
        check: impl Fn(&MessageLayout) -> Result<()>,
        take: impl FnOnce(&MessageLayout, &mut PackedQueue) -> R,
    ) -> Result<R> {
        let deadline = deadline(timeout_ms)?;
        let mut take = Some(take);
        let mut checked = false;
        loop {
            let listener = {
                let mut table = self.open_table()?;
                let lost = table.device.lost.clone();
                let kernel = table.kernel(id)?;
                if !checked {
                    check(&kernel.def.output)?;
                    checked = true;
                }
                let outbox = &mut kernel.mailbox.outbox;
                if !outbox.is_empty() {
                    let before = outbox.len();
                    let taken = take.take().expect("taken once")(&kernel.def.output, outbox);
                    kernel.counters.messages_received += (before - kernel.mailbox.outbox.len()) as u64;
                    // Room in the output queue lets the tick dispatch more.
                    self.shared.wake();
                    return Ok(taken);
                }
                match kernel.life.state() {
                    state @ KernelState::Terminated => {
                        return Err(Error::KernelState { id: id.to_owned(), state, action: Action::Receive })
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

    /// Refuses a `#[repr(C)]` answer type whose size is not the output layout's.
    fn expect_answer_size<T>(&self, id: &str) -> Result<()> {
        answer_size_matches::<T>(id, &self.output_layout(id)?)
    }

    /// Refuses one message (or a `#[repr(C)]` type) whose size is not the input layout's.
    fn expect_message_size(&self, id: &str, got: usize) -> Result<()> {
        message_size_matches(id, &self.input_layout(id)?, got)
    }
}

/// Packs named values into `slot` (zeroed, one message long), naming the bad field on error.
fn pack_fields<'a>(
    id: &str,
    layout: &MessageLayout,
    fields: impl IntoIterator<Item = (&'a str, &'a Value)>,
    slot: &mut [u8],
) -> Result<()> {
    layout.encode_in_place(fields, slot).map_err(|e| Error::MessageFormat {
        id: id.to_owned(),
        field: e.field,
        problem: e.problem,
    })
}

/// Copies one already packed message into `slot`, refusing the wrong size.
fn copy_message(id: &str, layout: &MessageLayout, packed: &[u8], slot: &mut [u8]) -> Result<()> {
    message_size_matches(id, layout, packed.len())?;
    slot.copy_from_slice(packed);
    Ok(())
}

fn message_size_matches(id: &str, layout: &MessageLayout, got: usize) -> Result<()> {
    if got != layout.size() {
        return Err(Error::MessageFormat {
            id: id.to_owned(),
            field: layout.name().to_owned(),
            problem: format!("is {} bytes, got {got}", layout.size()),
        });
    }
    Ok(())
}

fn answer_size_matches<T>(id: &str, layout: &MessageLayout) -> Result<()> {
    let size = layout.size();
    if std::mem::size_of::<T>() != size {
        return Err(Error::MessageFormat {
            id: id.to_owned(),
            field: std::any::type_name::<T>().to_owned(),
            problem: format!("is {} bytes, but answers are {size} bytes", std::mem::size_of::<T>()),
        });
    }
    Ok(())
}

fn pod_error<T>(id: &str, got: usize) -> Error {
    Error::MessageFormat {
        id: id.to_owned(),
        field: std::any::type_name::<T>().to_owned(),
        problem: format!("is {} bytes, which does not divide the {got} bytes of answers", std::mem::size_of::<T>()),
    }
}

/// A message's fields, from a [`Value::Struct`]; anything else is not a message.
fn struct_fields<'v>(id: &str, message: &'v Value) -> Result<&'v [(String, Value)]> {
    match message {
        Value::Struct(fields) => Ok(fields),
        other => Err(Error::MessageFormat {
            id: id.to_owned(),
            field: "(message)".into(),
            problem: format!("must be an object, got {}", other.kind_name()),
        }),
    }
}

fn named(fields: &[(String, Value)]) -> impl Iterator<Item = (&str, &Value)> {
    fields.iter().map(|(name, value)| (name.as_str(), value))
}

/// For a failed kernel when the runtime has already recovered (or is about to).
fn device_lost_error(id: &str) -> Error {
    Error::DeviceLost { reason: format!("kernel '{id}' is waiting for recovery") }
}

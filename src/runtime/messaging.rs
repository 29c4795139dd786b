//! Moving messages: `send` and `send_batch` stage packed messages on the host (the tick moves
//! them to the device in bulk), `receive` takes answers from the output queue, and `call` pairs
//! one message with its own answer through its correlation id (see [`crate::correlation`]).
//!
//! A single message is packed straight into its queue slot, with the kernel's layout looked up
//! once under the table lock; a received answer is read straight from the output queue.
//!
//! Natively, a `receive` or `call` that has to wait for its answer runs the device's next tick
//! on its own thread when no tick is under way and the tick is small (see `tick::help`): the
//! round trip then needs no hop to the tick loop's thread and back. Such a receive holds its
//! thread while the device works, as a raw `submit` and `poll` would.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_channel::oneshot;

use super::Runtime;
use crate::correlation::{Abandon, Reply};
use crate::degradation::DegradationLevel;
use crate::devices::DeviceId;
use crate::envelope::EnvelopeHeader;
use crate::error::{BatchSendError, Error, Quoted, Result, Stall};
use crate::kernel::KernelDefinition;
use crate::lifecycle::{Action, KernelState, LifecycleState};
use crate::mailbox::CallTicket;
use crate::message::{MessageLayout, MessageRef, Value};
use crate::platform;
use crate::pressure;
use crate::queue::PackedQueue;
use crate::table::{DeviceStatus, Kernel, Shared, Table};
use crate::waiting::{deadline, wait_for, wait_holding, wait_until, Deadline};

impl Runtime {
    /// Queues one message given as named values. Waits up to `timeout` for room, then
    /// fails with `QueueFull`; a malformed message is a `MessageFormat` error naming the field.
    pub async fn send(&self, id: &str, fields: &[(&str, Value)], timeout: Option<Duration>) -> Result<()> {
        let pack = |layout: &MessageLayout, slot: &mut [u8]| {
            pack_fields(id, layout, fields.iter().map(|(n, v)| (*n, v)), slot)
        };
        let result = async { self.enqueue_one(id, deadline(timeout), None, &pack).await.map(drop) }.await;
        self.counted(id, result)
    }

    /// Queues one message given as a [`Value::Struct`] of its fields; any other value is a
    /// `MessageFormat` error.
    pub async fn send_value(&self, id: &str, message: &Value, timeout: Option<Duration>) -> Result<()> {
        self.send_message(id, MessageRef::Value(message), timeout).await
    }

    /// Queues one message given as its bytes in the kernel's input layout (a `MessageFormat`
    /// error when the length is not the layout's size); waits up to `timeout` for room.
    pub async fn send_bytes(&self, id: &str, message: &[u8], timeout: Option<Duration>) -> Result<()> {
        self.send_message(id, MessageRef::Bytes(message), timeout).await
    }

    /// Queues one message in either form (what the JavaScript layer hands over: bytes its
    /// codec packed, or the fields it read); waits up to `timeout` for room.
    pub async fn send_message(&self, id: &str, message: MessageRef<'_>, timeout: Option<Duration>) -> Result<()> {
        let result = self.enqueue_message(id, message, timeout, None).await;
        self.counted(id, result)
    }

    /// Queues one message in either form, with an envelope's header when `envelope` is set
    /// (see [`try_enqueue`](Self::try_enqueue)); nothing is counted here. The waiting send of
    /// `send_message` and `send_envelope_message`: one copy of it in the wasm, whichever form
    /// the message came in.
    pub(super) async fn enqueue_message(
        &self,
        id: &str,
        message: MessageRef<'_>,
        timeout: Option<Duration>,
        envelope: Option<(&EnvelopeHeader, &mut Option<EnvelopeHeader>)>,
    ) -> Result<()> {
        let packing = Packing::of(id, message)?;
        let pack = |layout: &MessageLayout, slot: &mut [u8]| packing.pack(id, layout, slot);
        self.enqueue(id, deadline(timeout), None, envelope, &pack).await.map(drop)
    }

    /// Queues one message given as a [`Value::Struct`] if there is room now (else `QueueFull`).
    pub fn try_send_value(&self, id: &str, message: &Value) -> Result<()> {
        self.try_send_message(id, MessageRef::Value(message))
    }

    /// Queues one message in either form if there is room now (else `QueueFull`).
    pub fn try_send_message(&self, id: &str, message: MessageRef<'_>) -> Result<()> {
        let result = self.queue_now(id, message).and_then(|full| full.map_or(Ok(()), Err));
        self.counted(id, result)
    }

    /// Queues one message in either form if there is room now: `Ok(true)`. `Ok(false)` when it
    /// would have to wait, counting nothing: the caller then waits with
    /// [`send_message`](Self::send_message), which counts how that ends. A refusal is counted
    /// and returned as `send_message` would. For front ends that answer a send without a task
    /// when it need not wait (the JavaScript layer's `send`).
    pub fn send_message_now(&self, id: &str, message: MessageRef<'_>) -> Result<bool> {
        let result = self.queue_now(id, message).map(|full| full.is_none());
        self.counted(id, result)
    }

    /// Refuses a call to kernel `id` while it is connected onward: its answer would go to the
    /// next kernel, never to the caller. Checked again when the call is queued; a front end that
    /// keeps each kernel's sends in line (the JavaScript layer's) asks first, so such a call is
    /// refused at once rather than after the sends ahead of it.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub(crate) fn check_callable(&self, id: &str) -> Result<()> {
        match self.shared.lock().kernels.get(id).and_then(|kernel| kernel.route.downstream.as_ref()) {
            Some(downstream) => Err(connected_refusal(id, downstream)),
            None => Ok(()),
        }
    }

    /// The `QueueFull` of a send that gave up while earlier sends to kernel `id` still waited
    /// for room, or of a `try_send` behind them (a front end that keeps each kernel's sends in
    /// order: the JavaScript layer's line), counted as a send refused by a full queue is.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub(crate) fn refused_in_line(&self, id: &str) -> Error {
        // A runtime that takes no new sends refuses it for that (no full queue to wait out).
        if let Err(refused) = self.accepting_table("sends") {
            return refused;
        }
        let mut table = self.shared.lock();
        let full =
            table.kernel(id).map(|kernel| kernel.mailbox.inbox.capacity()).map(|capacity| (capacity, table.stall(id)));
        drop(table);
        let error = full.map_or_else(
            |e| e,
            |(capacity, stall)| Error::QueueFull { id: id.to_owned(), capacity, accepted: 0, stall },
        );
        self.count(id, error)
    }

    /// One attempt to queue a message: `None` when queued, else the `QueueFull` error of a full
    /// queue; nothing is counted here.
    fn queue_now(&self, id: &str, message: MessageRef<'_>) -> Result<Option<Error>> {
        let packing = Packing::of(id, message)?;
        let pack = |layout: &MessageLayout, slot: &mut [u8]| packing.pack(id, layout, slot);
        Ok(match self.try_enqueue_one(id, None, &pack)? {
            Attempt::Done(_) => None,
            Attempt::Wait(_, full) => Some(full),
        })
    }

    /// Takes the next answer if one is waiting now, handing `read` the output layout and its
    /// bytes; `Ok(None)` when none is. `read` runs while the runtime's table is locked: it must
    /// not call the runtime (natively that panics; copy what it needs and call after).
    ///
    /// # Panics
    /// When `read` calls the runtime, whose table is locked while `read` runs: natively with a
    /// panic that says so, on the web in std's lock.
    pub fn try_receive_with<R>(&self, id: &str, read: impl FnOnce(&MessageLayout, &[u8]) -> R) -> Result<Option<R>> {
        let mut take = Some(|layout: &MessageLayout, outbox: &mut PackedQueue| {
            outbox.pop_with(|answer| read(layout, answer)).expect("not empty")
        });
        let result = match self.try_take(id, None::<fn(&MessageLayout) -> Result<()>>, &mut take) {
            Ok(Attempt::Done(answer)) => Ok(Some(answer)),
            Ok(Attempt::Wait(..)) => Ok(None),
            Err(refused) => Err(refused),
        };
        self.counted(id, result)
    }

    /// Queues one `#[repr(C)]` message whose bytes match the kernel's input layout.
    /// A plain `i32`, `u32` or `f32` (or an array of one) must be the layout's own scalar.
    pub async fn send_pod<T: bytemuck::Pod>(&self, id: &str, message: &T, timeout: Option<Duration>) -> Result<()> {
        self.counted(id, self.definition(id).and_then(|def| pod_scalars_match::<T>(id, &def.input)))?;
        self.send_bytes(id, bytemuck::bytes_of(message), timeout).await
    }

    /// Queues packed messages (already in the kernel's input layout, back to back), all of them:
    /// waits up to `timeout` for room and returns how many were queued (all). Otherwise the
    /// [`BatchSendError`] says how many were queued (the first ones; they are answered) and why
    /// the rest were not: `QueueFull` when the timeout ran out first, or the refusal that cut
    /// the batch off (the kernel terminated, the runtime shut down while it waited), as
    /// JavaScript's `sendBatch` does. `Some(Duration::ZERO)` takes what fits now: all of it, or
    /// `QueueFull` with the count.
    pub async fn send_packed(
        &self,
        id: &str,
        packed: &[u8],
        timeout: Option<Duration>,
    ) -> Result<usize, BatchSendError> {
        // Atomic only so that the future stays `Send` (what `tokio::spawn` asks), although it
        // holds a reference to this across its awaits.
        let queued = AtomicUsize::new(0);
        let result = self.send_packed_counting(id, packed, timeout, &queued).await;
        result.map_err(|error| BatchSendError { accepted: queued.load(Ordering::Relaxed), error })
    }

    /// [`send_packed`](Self::send_packed), keeping `queued` at how many of the messages are
    /// queued so far, for a caller that may drop it part way and must still say how many went
    /// in (the web's `{ signal }`).
    pub(crate) async fn send_packed_counting(
        &self,
        id: &str,
        packed: &[u8],
        timeout: Option<Duration>,
        queued: &AtomicUsize,
    ) -> Result<usize> {
        let result = match self.enqueue_many(id, packed, deadline(timeout), queued).await {
            (accepted, None) => Ok(accepted),
            // Past the timeout the `QueueFull` says how many went in.
            (_, Some(error)) => Err(error),
        };
        self.counted(id, result)
    }

    /// Queues `#[repr(C)]` messages whose bytes match the input layout, all of them, within
    /// `timeout` (see [`send_packed`](Self::send_packed)).
    pub async fn send_batch<T: bytemuck::Pod>(
        &self,
        id: &str,
        messages: &[T],
        timeout: Option<Duration>,
    ) -> Result<usize, BatchSendError> {
        let checked = self.definition(id).and_then(|def| {
            message_size_matches(id, &def.input, std::mem::size_of::<T>())?;
            pod_scalars_match::<T>(id, &def.input)
        });
        self.counted(id, checked).map_err(|error| BatchSendError { accepted: 0, error })?;
        self.send_packed(id, bytemuck::cast_slice(messages), timeout).await
    }

    /// Queues messages given as [`Value::Struct`]s (see [`send_value`](Self::send_value)); a
    /// malformed one refuses the whole batch, counted once. All are queued within `timeout`,
    /// or the [`BatchSendError`] says how many were and why not the rest (see
    /// [`send_packed`](Self::send_packed)).
    pub async fn send_values(
        &self,
        id: &str,
        messages: &[Value],
        timeout: Option<Duration>,
    ) -> Result<usize, BatchSendError> {
        let packed = self
            .pack_values(id, messages.len(), |i| &messages[i])
            .map_err(|error| BatchSendError { accepted: 0, error })?;
        self.send_packed(id, &packed, timeout).await
    }

    /// `count` messages packed in kernel `id`'s input layout, each made by `message(i)` as it
    /// is packed (see `encode_values`); a malformed one refuses them all, counted, by its index.
    pub(crate) fn pack_values<V: std::borrow::Borrow<Value>>(
        &self,
        id: &str,
        count: usize,
        message: impl FnMut(usize) -> V,
    ) -> Result<Vec<u8>> {
        self.counted(id, self.encode_values(id, count, message))
    }

    /// Sends one message and resolves with its own answer, matched by correlation id, however
    /// many other calls, sends and receives are in flight. `timeout` covers both waiting for
    /// queue room (`QueueFull`) and for the answer (`Timeout`; the message is still processed
    /// and its late answer is discarded and counted as `answers_abandoned`). A handler that
    /// dropped the message gives `MessageDropped`. If the device is lost first, the call fails
    /// with `DeviceLost` and its message is treated like a timed-out call's: processed after
    /// recovery, its answer discarded. A failed kernel refuses calls.
    pub async fn call(
        &self,
        id: &str,
        fields: &[(&str, Value)],
        timeout: Option<Duration>,
    ) -> Result<Vec<(String, Value)>> {
        let pack = |layout: &MessageLayout, slot: &mut [u8]| {
            pack_fields(id, layout, fields.iter().map(|(n, v)| (*n, v)), slot)
        };
        self.call_with(id, timeout, &pack, |layout, answer| Ok(layout.decode(answer))).await
    }

    /// [`call`](Self::call) with the message as a [`Value::Struct`] (see
    /// [`send_value`](Self::send_value)); `read` gets the output layout and the answer's bytes.
    pub async fn call_value<R>(
        &self,
        id: &str,
        message: &Value,
        timeout: Option<Duration>,
        read: impl FnOnce(&MessageLayout, &[u8]) -> R,
    ) -> Result<R> {
        self.call_message(id, MessageRef::Value(message), timeout, read).await
    }

    /// [`call`](Self::call) with the message packed in the input layout; the answer comes back
    /// packed.
    pub async fn call_packed(&self, id: &str, packed: &[u8], timeout: Option<Duration>) -> Result<Vec<u8>> {
        self.call_message(id, MessageRef::Bytes(packed), timeout, |_, answer| answer.to_vec()).await
    }

    /// [`call`](Self::call) with the message in either form; `read` gets the output layout and
    /// the answer's bytes where they lie. One copy of the call in the wasm for each `read`.
    pub async fn call_message<R>(
        &self,
        id: &str,
        message: MessageRef<'_>,
        timeout: Option<Duration>,
        read: impl FnOnce(&MessageLayout, &[u8]) -> R,
    ) -> Result<R> {
        self.call_message_then(id, message, timeout, || {}, read).await
    }

    /// [`call_message`](Self::call_message), running `queued` as soon as the message is queued
    /// (before its answer is awaited): the JavaScript layer then lets later sends to the
    /// kernel go, which it held back so that none overtakes the call's message.
    pub(crate) async fn call_message_then<R>(
        &self,
        id: &str,
        message: MessageRef<'_>,
        timeout: Option<Duration>,
        queued: impl FnOnce(),
        read: impl FnOnce(&MessageLayout, &[u8]) -> R,
    ) -> Result<R> {
        let packing = self.counted(id, Packing::of(id, message))?;
        let pack = |layout: &MessageLayout, slot: &mut [u8]| packing.pack(id, layout, slot);
        let result = self.call_inner(id, timeout, &pack, queued, |layout, answer| Ok(read(layout, answer))).await;
        self.counted(id, result.and_then(|answered| answered))
    }

    /// [`call`](Self::call) with `#[repr(C)]` values in and out.
    pub async fn call_pod<In: bytemuck::Pod, Out: bytemuck::Pod>(
        &self,
        id: &str,
        message: &In,
        timeout: Option<Duration>,
    ) -> Result<Out> {
        // Checked before sending: a wrong `Out` must not cost the message its answer.
        let checked = self.definition(id).and_then(|def| {
            answer_size_matches::<Out>(id, &def.output)?;
            pod_scalars_match::<In>(id, &def.input)
        });
        self.counted(id, checked)?;
        let bytes = bytemuck::bytes_of(message);
        let pack = |layout: &MessageLayout, slot: &mut [u8]| copy_message(id, layout, bytes, slot);
        self.call_with(id, timeout, &pack, |_, answer| Ok(bytemuck::pod_read_unaligned(answer))).await
    }

    /// A call: `pack` writes the message into its slot, `read` turns the answer into the result.
    async fn call_with<R>(
        &self,
        id: &str,
        timeout: Option<Duration>,
        pack: Pack<'_>,
        read: impl FnOnce(&MessageLayout, &[u8]) -> Result<R>,
    ) -> Result<R> {
        let result = self.call_inner(id, timeout, pack, || {}, read).await.and_then(|answered| answered);
        self.counted(id, result)
    }

    /// A call, telling apart a message that was not sent (the outer error) from one that was
    /// sent and got no answer (the inner error); `queued` runs once the message is queued.
    /// Nothing is counted here.
    pub(super) async fn call_inner<R>(
        &self,
        id: &str,
        timeout: Option<Duration>,
        pack: Pack<'_>,
        queued: impl FnOnce(),
        read: impl FnOnce(&MessageLayout, &[u8]) -> Result<R>,
    ) -> Result<Result<R>> {
        // One deadline covers both waiting for room and waiting for the answer.
        let deadline = deadline(timeout);
        let mut output = None;
        let (seq, answer) =
            self.enqueue_one(id, deadline, Some(&mut output), pack).await?.expect("a call gets its ticket");
        let (definition, may_stall, instance) = output.expect("set with the ticket");
        let mut answer = AwaitedAnswer { receiver: Some(answer), shared: &self.shared, id, instance };
        queued();
        Ok(async {
            let dropped = |failure| Error::MessageDropped { id: id.to_owned(), failure };
            #[cfg(not(target_arch = "wasm32"))]
            {
                let device = self.shared.lock().kernels.get(id).map(|kernel| kernel.device);
                if let Some(device) = device {
                    self.help_tick(device, deadline);
                }
            }
            // Only a call behind such messages watches for a stall: the others' wait is as before.
            let receiver = answer.receiver.as_mut().expect("taken only below");
            let waited = match may_stall {
                true => self.wait_watching_stall(id, receiver, deadline).await,
                false => wait_for(receiver, deadline).await,
            };
            let receiver = answer.receiver.take().expect("taken only here");
            let answer = match waited {
                Some(Ok(reply)) => reply?.map_err(dropped)?,
                // The sender was dropped: the kernel stopped first.
                Some(Err(oneshot::Canceled)) => {
                    let table = self.shared.lock();
                    let state = table.kernels.get(id).map_or(KernelState::Terminated, |k| k.life.state());
                    return Err(Error::KernelState { id: id.to_owned(), state, action: Action::Receive });
                }
                None => {
                    let mut table = self.shared.lock();
                    // Its own launch's ledger: one launched since under the id numbers anew.
                    let late = match table.launch_of(id, instance) {
                        Some(kernel) => kernel.mailbox.ledger.abandon(seq, receiver),
                        None => Abandon::Pending,
                    };
                    match late {
                        Abandon::Answered(answer) => answer.map_err(dropped)?,
                        Abandon::Pending => {
                            return Err(Error::Timeout {
                                id: id.to_owned(),
                                operation: "call".into(),
                                timeout: timeout.unwrap_or_default(),
                                unprocessed: 0,
                                stall: table.stall_with_input(id),
                            })
                        }
                    }
                }
            };
            read(&definition.output, &answer)
        }
        .await)
    }

    /// Natively, before waiting for answers from `device`: runs its next tick on this thread if
    /// none is under way and the deadline has not passed (see `tick::help`). The wait after it
    /// still takes what that tick delivered, however long it ran. On the web callers never help.
    fn help_tick(&self, device: DeviceId, deadline: Deadline) {
        #[cfg(not(target_arch = "wasm32"))]
        if deadline.is_none_or(|deadline| platform::now_ms() < deadline) {
            crate::tick::help(&self.shared, device);
        }
        #[cfg(target_arch = "wasm32")]
        let _ = (device, deadline);
    }

    /// Queues one message that `pack` writes in place (given the input layout), waiting until
    /// the deadline for room, then `QueueFull`. A malformed message is refused before any
    /// state is checked or room waited for. With `call` set, the message's answer goes to the
    /// returned ticket, and `call` receives the definition whose output layout reads it.
    async fn enqueue_one(
        &self,
        id: &str,
        deadline: Deadline,
        call: Option<&mut Option<CallQueued>>,
        pack: Pack<'_>,
    ) -> Result<Option<CallTicket>> {
        self.enqueue(id, deadline, call, None, pack).await
    }

    /// [`enqueue_one`](Self::enqueue_one), with an envelope's header when `envelope` is set
    /// (see [`try_enqueue`](Self::try_enqueue)).
    pub(super) async fn enqueue(
        &self,
        id: &str,
        deadline: Deadline,
        mut call: Option<&mut Option<CallQueued>>,
        mut envelope: Option<(&EnvelopeHeader, &mut Option<EnvelopeHeader>)>,
        pack: Pack<'_>,
    ) -> Result<Option<CallTicket>> {
        if let Some((header, _)) = &envelope {
            if let Some(source) = header.source.as_deref() {
                crate::kernel::check_id_length("an envelope's source", source)?;
            }
            crate::hlc::check_drift(header.timestamp, platform::unix_time_ms() as u64)
                .map_err(|why| Error::OutOfRange(format!("the envelope was refused: {why}")))?;
        }
        let (mut stall, mut launch) = (StallWatch::default(), None);
        loop {
            let envelope = envelope.as_mut().map(|(header, sent)| (*header, &mut **sent));
            match self.try_enqueue(id, call.as_deref_mut(), envelope, pack, &mut launch)? {
                Attempt::Done(ticket) => return Ok(ticket),
                Attempt::Wait(listener, full) => {
                    if !self.wait_for_room(id, listener, deadline, &mut stall).await {
                        return Err(full);
                    }
                }
            }
        }
    }

    /// One attempt of [`enqueue_one`](Self::enqueue_one): queued, or the queue is full (with
    /// the `QueueFull` error and what to wait on for room).
    pub(super) fn try_enqueue_one(
        &self,
        id: &str,
        call: Option<&mut Option<CallQueued>>,
        pack: Pack<'_>,
    ) -> Result<Attempt<Option<CallTicket>>> {
        self.try_enqueue(id, call, None, pack, &mut None)
    }

    /// [`try_enqueue_one`](Self::try_enqueue_one); with `envelope`, the message travels with
    /// that header, stamped by the runtime's clock (the header as sent goes to its second part).
    /// `launch` pins a send that waits to the launch it first found (see [`same_launch`]).
    fn try_enqueue(
        &self,
        id: &str,
        call: Option<&mut Option<CallQueued>>,
        envelope: Option<(&EnvelopeHeader, &mut Option<EnvelopeHeader>)>,
        pack: Pack<'_>,
        launch: &mut Option<u64>,
    ) -> Result<Attempt<Option<CallTicket>>> {
        let mut table = self.accepting_table(if call.is_some() { "calls" } else { "sends" })?;
        // An envelope refused, or waiting for room, leaves the clock and the message ids as they
        // were: its stamp was never given out. (Only envelopes are stamped.)
        let mark = envelope.is_some().then(|| table.clock.mark());
        let attempt = self.try_enqueue_in(&mut table, id, call, envelope, pack, launch);
        if let Some(mark) = mark.filter(|_| !matches!(attempt, Ok(Attempt::Done(_)))) {
            table.clock.rewind(mark);
        }
        attempt
    }

    /// [`try_enqueue`](Self::try_enqueue) under the table's lock.
    fn try_enqueue_in(
        &self,
        table: &mut Table,
        id: &str,
        call: Option<&mut Option<CallQueued>>,
        envelope: Option<(&EnvelopeHeader, &mut Option<EnvelopeHeader>)>,
        pack: Pack<'_>,
        launch: &mut Option<u64>,
    ) -> Result<Attempt<Option<CallTicket>>> {
        let overloaded = self.overload_refusal(table, id);
        // Stamped under the same lock as the message is numbered, so timestamps follow the
        // kernel's order.
        let stamped = envelope.map(|(header, sent)| (table.clock.send(header, id), sent));
        let (kernel, device) = self.kernel_on_device_in(table, id)?;
        same_launch(launch, kernel, id)?;
        let refusal = match (kernel.life.state(), &kernel.route.downstream) {
            (_, Some(downstream)) if call.is_some() => Some(connected_refusal(id, downstream)),
            (state, _) if !state.accepts_messages() => {
                Some(Error::KernelState { id: id.to_owned(), state, action: Action::Send })
            }
            (KernelState::Failed, _) if call.is_some() => Some(kernel.failure(id, device)),
            _ => overloaded,
        };
        let now = platform::now_ms();
        // An open circuit refuses the message whole (after a malformed one is named).
        let refusal = refusal.or_else(|| kernel.circuit_check(id, now).err());
        let input = &kernel.def.input;
        if kernel.mailbox.inbox.free() > 0 {
            let was_idle = kernel.input_depth() == 0;
            let pack = |slot: &mut [u8]| {
                pack(input, slot)?;
                refusal.map_or(Ok(()), Err)
            };
            let ticket = kernel.mailbox.accept_one(pack, call.is_some(), now)?;
            if let Some(((carried, header), sent)) = stamped {
                kernel.mailbox.attach_header(carried);
                *sent = Some(header);
            }
            if let Some(output) = call {
                // Messages ahead of it whose answers have no room yet in the output queue, or a
                // kernel that does not run: its answer may be long in coming.
                let behind_full = kernel.mailbox.outbox.free() < kernel.input_depth() - 1;
                let idle = !kernel.runs();
                *output = Some((kernel.def.clone(), behind_full || idle, kernel.instance));
            }
            kernel.circuit_admit(now);
            if was_idle {
                kernel.beat(now);
            }
            kernel.counters.messages_sent += 1;
            self.shared.wake();
            return Ok(Attempt::Done(ticket));
        }
        // Full: refuse a malformed message now rather than after waiting for room.
        pack(input, &mut vec![0; input.size()])?;
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
        let (capacity, listener) = (kernel.mailbox.inbox.capacity(), kernel.changed.listen());
        let full = Error::QueueFull { id: id.to_owned(), capacity, accepted: 0, stall: table.stall(id) };
        Ok(Attempt::Wait(listener, full))
    }

    /// Queues whole packed messages, waiting until the deadline for room; returns how many
    /// were accepted (the first ones) and, when not all were, why the rest were not: the
    /// `QueueFull` of a deadline that passed, or the kernel's refusal.
    pub(super) async fn enqueue_many(
        &self,
        id: &str,
        packed: &[u8],
        deadline: Deadline,
        queued: &AtomicUsize,
    ) -> (usize, Option<Error>) {
        let (mut accepted, mut launch) = (0, None);
        let mut stall = StallWatch::default();
        loop {
            let listener = {
                // A batch that began before a drain finishes as a send in flight.
                let table = if accepted == 0 { self.accepting_table("sends") } else { self.open_table() };
                let mut table = match table {
                    Ok(table) => table,
                    Err(e) => return (accepted, Some(e)),
                };
                // A batch that began is finished as a send in flight, as in a drain.
                let overloaded = if accepted == 0 { self.overload_refusal(&mut table, id) } else { None };
                let kernel =
                    match self.kernel_in(&mut table, id).and_then(|k| same_launch(&mut launch, k, id).map(|()| k)) {
                        Ok(kernel) => kernel,
                        Err(e) => return (accepted, Some(e)),
                    };
                let state = kernel.life.state();
                if !state.accepts_messages() {
                    // A batch under way when the runtime began to drain ends when the drain
                    // terminates its kernel: the drain is what refused the rest.
                    let refused = match table.state {
                        LifecycleState::Draining => Error::Draining("sends"),
                        _ => Error::KernelState { id: id.to_owned(), state, action: Action::Send },
                    };
                    return (accepted, Some(refused));
                }
                if let Some(refusal) = overloaded {
                    return (accepted, Some(refusal));
                }
                let stride = kernel.mailbox.inbox.stride();
                if !packed.len().is_multiple_of(stride) {
                    return (
                        accepted,
                        Some(Error::MessageFormat {
                            id: id.to_owned(),
                            field: kernel.def.input.name().to_owned(),
                            problem: format!(
                                "messages are {stride} bytes each: a packed batch of {} bytes is not a whole number \
                                 of them",
                                packed.len()
                            ),
                        }),
                    );
                }
                let now = platform::now_ms();
                // A batch under way finishes as it began; a new one is refused whole.
                if accepted == 0 {
                    if let Err(open) = kernel.circuit_check(id, now) {
                        return (0, Some(open));
                    }
                }
                let was_idle = kernel.input_depth() == 0;
                let pushed = kernel.mailbox.accept_packed(&packed[accepted * stride..], now);
                if pushed > 0 && accepted == 0 {
                    kernel.circuit_admit(now);
                }
                if pushed > 0 && was_idle {
                    kernel.beat(now);
                }
                accepted += pushed;
                queued.store(accepted, Ordering::Relaxed);
                kernel.counters.messages_sent += pushed as u64;
                let listener = kernel.changed.listen();
                if pushed > 0 {
                    self.shared.wake();
                }
                if accepted * stride == packed.len() {
                    return (accepted, None);
                }
                let capacity = kernel.mailbox.inbox.capacity();
                let full = Error::QueueFull { id: id.to_owned(), capacity, accepted, stall: table.stall(id) };
                (listener, full)
            };
            if !self.wait_for_room(id, listener.0, deadline, &mut stall).await {
                return (accepted, Some(listener.1));
            }
        }
    }

    /// The degradation manager's refusal of a new message for `id`, if it refuses one (see
    /// [`crate::degradation`]). Refusals start at `severe`; the level is read afresh first, so
    /// a refusal never rests on a level the load has left.
    fn overload_refusal(&self, table: &mut Table, id: &str) -> Option<Error> {
        if table.degrader.as_ref()?.level() < DegradationLevel::Severe {
            return None;
        }
        let policy = pressure::evaluate_degradation(&self.shared, table, platform::now_ms());
        let priority = table.kernels.get(id)?.priority;
        let required = policy.refuses(priority)?;
        Some(Error::Overloaded { id: id.to_owned(), level: policy.level, priority, required })
    }

    /// Waits for room in `id`'s input queue until the deadline (`false` when it passed). A send
    /// that has waited a second on a kernel whose own output queue is full (its answers wait
    /// for a receiver that may never come) is reported once: a warning and `stalled_sends`.
    async fn wait_for_room(
        &self,
        id: &str,
        listener: event_listener::EventListener,
        deadline: Deadline,
        stall: &mut StallWatch,
    ) -> bool {
        // A look on a wait without a timeout holds nothing open, as the wait does not.
        let (until, looking) = stall.until(deadline, true);
        if wait_holding(listener, until, deadline.is_some()).await {
            return true;
        }
        if deadline.is_some_and(|d| platform::now_ms() >= d) {
            return false;
        }
        if looking {
            stall.looked(self.report_stall(id, "a send to", "room", false));
        }
        true
    }

    /// Warns (once a stall: see `Counters::stall_warned`) and counts in `stalled_sends`
    /// (once per waiting operation) when kernel `id` processes none of its input: its output
    /// queue is full of answers nobody receives, it is not active (launched and never
    /// activated, say), or a stage after it holds it; for a receive (`receive`), also when its
    /// input waits at an earlier stage that is held (see [`Table::receive_stall`]). What
    /// `operation` ("a send to"), waiting a second for `what`, is stuck behind, naming the
    /// stage that holds it. Whether it was.
    fn report_stall(&self, id: &str, operation: &str, what: &str, receive: bool) -> bool {
        let mut table = self.shared.lock();
        let found = match receive {
            true => table.receive_stall(id),
            false => table.stall_with_input(id).map(|stall| (stall, None)),
        };
        let Some((stall, waits_at)) = found else { return false };
        let at = waits_at.unwrap_or(id);
        let queued = table.kernels.get(at).map_or(0, |k| k.input_depth());
        // The stage whose own stall holds the input, where that is another stage.
        let held_by = match stall {
            Stall::NextStageStalled | Stall::UpstreamStalled => {
                table.stall_cause(at).map(|(stage, cause)| (stage.to_owned(), cause))
            }
            _ => None,
        };
        let waits_at = waits_at.map(|stage| format!(" at an earlier stage, {},", Quoted(stage)));
        let Some(kernel) = table.kernels.get_mut(id) else { return false };
        kernel.counters.stalled_sends += 1;
        // One warning a stall: until the kernel processes something, or the stall changes, it
        // is the same one.
        let seen = Some((kernel.counters.messages_processed, stall, held_by.as_ref().map(|(_, cause)| *cause)));
        if kernel.counters.stall_warned == seen {
            return true;
        }
        kernel.counters.stall_warned = seen;
        drop(table);
        let because = match (stall, held_by) {
            (Stall::NextStageStalled, Some((stage, cause))) => {
                format!("{stall}. The stage that holds it, {}: {cause}. {}", Quoted(&stage), remedy(cause))
            }
            (Stall::UpstreamStalled, Some((stage, cause))) => {
                format!("{} holds it: {cause}. {}", Quoted(&stage), remedy(cause))
            }
            (stall, _) => format!("{stall}. {}", remedy(stall)),
        };
        platform::warn(&format!(
            "ringkernel-web: {operation} kernel {quoted_id} has waited {} s for {what}: its input ({}) waits{} \
             because {because}",
            STALL_REPORT_MS as u64 / 1000, // whole seconds, without float formatting
            crate::error::messages(queued),
            waits_at.unwrap_or_default(),
            quoted_id = Quoted(id)
        ));
        true
    }

    /// Waits for a call's `answer` until `deadline`, for a call queued behind messages whose
    /// answers have no room in the output queue: it looks after a second, as a waiting send
    /// does, and reports a kernel stalled by answers nobody receives. Other calls set no timer.
    async fn wait_watching_stall<F: std::future::Future + Unpin>(
        &self,
        id: &str,
        mut answer: F,
        deadline: Deadline,
    ) -> Option<F::Output> {
        let mut stall = StallWatch::default();
        loop {
            let (until, looking) = stall.until(deadline, true);
            if let Some(reply) = wait_until(&mut answer, until, deadline.is_some()).await {
                return Some(reply);
            }
            if deadline.is_some_and(|d| platform::now_ms() >= d) {
                return None;
            }
            if looking {
                stall.looked(self.report_stall(id, "a call to", "its answer", false));
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
    fn encode_values<V: std::borrow::Borrow<Value>>(
        &self,
        id: &str,
        count: usize,
        mut message: impl FnMut(usize) -> V,
    ) -> Result<Vec<u8>> {
        let layout = self.input_layout(id)?;
        let mut packed = vec![0u8; batch_bytes(count, layout.size())?];
        for (i, slot) in packed.chunks_exact_mut(layout.size()).enumerate() {
            // Each message's value lives while it is packed only: a large batch never holds
            // every message's value at once (about 160 bytes each on the web).
            let message = message(i);
            let packed =
                struct_fields(id, message.borrow()).and_then(|fields| pack_fields(id, &layout, named(fields), slot));
            packed.map_err(|error| in_batch(error, i))?;
        }
        Ok(packed)
    }

    /// Takes the next answer as named values. Waits up to `timeout` (forever when `None`),
    /// then fails with `Timeout`. Receives that wait on one kernel at once are answered in the
    /// order they began to wait: a waiting receive holds its place in line until it completes
    /// or is dropped, so one left unpolled holds up those behind it.
    pub async fn receive(&self, id: &str, timeout: Option<Duration>) -> Result<Vec<(String, Value)>> {
        self.receive_with(id, timeout, |layout, answer| layout.decode(answer)).await
    }

    /// Takes the next answer, handing `read` the output layout and the answer's bytes straight
    /// from the output queue (what the JavaScript layer turns into an object). `read` runs
    /// while the runtime's table is locked: it must not call the runtime (natively that panics;
    /// copy what it needs and call after).
    ///
    /// # Panics
    /// When `read` calls the runtime, whose table is locked while `read` runs: natively with a
    /// panic that says so, on the web in std's lock.
    pub async fn receive_with<R>(
        &self,
        id: &str,
        timeout: Option<Duration>,
        read: impl FnOnce(&MessageLayout, &[u8]) -> R,
    ) -> Result<R> {
        let result = self.receive_one(id, timeout, read, None, Taking::Take).await;
        self.counted(id, result)
    }

    /// Waits, in the line of receives, until an answer is there for this caller, and hands
    /// `read` that answer, left queued. Refused as `receive` is, `Timeout` after `timeout`
    /// alike. The JavaScript layer's `receiveInto` waits so, sharing `receive`'s waiting
    /// receive, then hands the answer on and takes it in the same step
    /// ([`take_front_answer`](Self::take_front_answer)); natively another thread could take it
    /// between the two, and a Rust stream needs no such step (a dropped receive takes nothing).
    #[cfg(target_arch = "wasm32")]
    pub(crate) async fn answer_ready_with<R>(
        &self,
        id: &str,
        timeout: Option<Duration>,
        read: impl FnOnce(&MessageLayout, &[u8]) -> R,
    ) -> Result<R> {
        let result = self.receive_one(id, timeout, read, None, Taking::Leave).await;
        self.counted(id, result)
    }

    /// How many answers kernel `id`'s output queue has handed out so far: where its front
    /// answer stands, for [`take_front_answer`](Self::take_front_answer).
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn answers_handed_out(&self, id: &str) -> Result<u64> {
        let mut table = self.open_table()?;
        Ok(self.kernel_on_device_in(&mut table, id)?.0.mailbox.outbox.taken())
    }

    /// Takes the front answer of kernel `id`, which [`answer_ready_with`](Self::answer_ready_with)
    /// has just read for this caller, as a receive takes it, if it is still the answer that
    /// stood `at` the front ([`answers_handed_out`](Self::answers_handed_out) then). For the
    /// wasm layer only: on the page's one thread nothing else runs between the read and this,
    /// but the JavaScript it calls in between might receive from the kernel itself: then
    /// nothing is taken here, and `InvalidArgument` says why.
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn take_front_answer(&self, id: &str, at: u64) -> Result<()> {
        let mut table = self.open_table()?;
        let (kernel, _) = self.kernel_on_device_in(&mut table, id)?;
        if kernel.mailbox.outbox.taken() != at {
            return Err(Error::InvalidArgument(format!(
                "receiveInto's callback received from kernel {} itself, which took the answer it was handed",
                crate::error::Quoted(id)
            )));
        }
        let before = kernel.mailbox.outbox.len();
        kernel.mailbox.outbox.discard(1);
        if answers_taken(kernel, before) {
            drop(table);
            self.shared.wake();
        }
        Ok(())
    }

    /// Takes the next answer (or with `Taking::Leave` leaves it queued), handing `read` the
    /// output layout and its bytes, and with `envelope` its envelope's header; nothing is
    /// counted here. `receive_with`, `receive_envelope_with` and `answer_ready_with` share it
    /// (one copy of the waiting receive in the wasm).
    pub(super) async fn receive_one<R>(
        &self,
        id: &str,
        timeout: Option<Duration>,
        read: impl FnOnce(&MessageLayout, &[u8]) -> R,
        envelope: Option<&mut Option<EnvelopeHeader>>,
        taking: Taking,
    ) -> Result<R> {
        let take = |layout: &MessageLayout, outbox: &mut PackedQueue| match taking {
            Taking::Take => outbox.pop_with(|answer| read(layout, answer)),
            #[cfg(target_arch = "wasm32")]
            Taking::Leave => (!outbox.is_empty()).then(|| read(layout, outbox.front(1))),
        };
        let read = self.receive_answer(id, timeout, 1, any_layout, take, envelope).await?;
        Ok(read.expect("the output queue had an answer"))
    }

    /// Takes the next answer, packed in the output layout.
    pub async fn receive_packed(&self, id: &str, timeout: Option<Duration>) -> Result<Vec<u8>> {
        self.receive_with(id, timeout, |_, answer| answer.to_vec()).await
    }

    /// Takes the next answer as a `#[repr(C)]` value matching the output layout.
    pub async fn receive_pod<T: bytemuck::Pod>(&self, id: &str, timeout: Option<Duration>) -> Result<T> {
        // Checked before taking: a wrong `T` must not take the answer off the queue.
        let check = |layout: &MessageLayout| answer_size_matches::<T>(id, layout);
        let result = self
            .receive_inner(id, timeout, 1, check, |_, outbox| outbox.pop_with(bytemuck::pod_read_unaligned::<T>))
            .await;
        self.counted(id, result.map(|read| read.expect("the output queue had an answer")))
    }

    /// Takes up to `max` answers at once (`max` is 1 or more: 0 is `OutOfRange`), waiting for
    /// the first, packed back to back. Answers to
    /// `call`s never appear here. After termination the remaining answers can still be taken;
    /// then `receive` fails with `KernelState`.
    pub async fn receive_batch_packed(&self, id: &str, max: usize, timeout: Option<Duration>) -> Result<Vec<u8>> {
        self.receive_batch_packed_at_least(id, 1, max, timeout).await
    }

    /// Takes at least `min` and up to `max` answers at once, packed back to back: waits until
    /// `min` are there (or, before that, until `timeout`, then takes what is there; see
    /// [`receive_batch_at_least`](Self::receive_batch_at_least)).
    ///
    /// # Errors
    /// As [`receive_batch_at_least`](Self::receive_batch_at_least)'s.
    pub async fn receive_batch_packed_at_least(
        &self,
        id: &str,
        min: usize,
        max: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>> {
        self.receive_batch_at_least_with(id, min, max, timeout, |_, answers| answers.to_vec()).await
    }

    /// Takes up to `max` answers at once (1 or more), as
    /// [`receive_batch_packed`](Self::receive_batch_packed) does, and hands them to `read`
    /// with the output layout straight from the output queue, packed back to back: answers
    /// decoded (or copied where they go) with no vector in between. `read` runs while the
    /// runtime's table is locked: it must not call the runtime (natively that panics; copy what
    /// it needs and call after).
    ///
    /// # Panics
    /// When `read` calls the runtime, whose table is locked while `read` runs: natively with a
    /// panic that says so, on the web in std's lock.
    pub async fn receive_batch_with<R>(
        &self,
        id: &str,
        max: usize,
        timeout: Option<Duration>,
        read: impl FnOnce(&MessageLayout, &[u8]) -> R,
    ) -> Result<R> {
        self.receive_batch_at_least_with(id, 1, max, timeout, read).await
    }

    /// Takes at least `min` and up to `max` answers at once, as
    /// [`receive_batch_at_least`](Self::receive_batch_at_least) does, and hands them to `read`
    /// as [`receive_batch_with`](Self::receive_batch_with) does: what JavaScript's
    /// `receiveBatch({ min, max, timeout })` waits with.
    ///
    /// # Errors
    /// As [`receive_batch_at_least`](Self::receive_batch_at_least)'s.
    ///
    /// # Panics
    /// When `read` calls the runtime, whose table is locked while `read` runs: natively with a
    /// panic that says so, on the web in std's lock.
    pub async fn receive_batch_at_least_with<R>(
        &self,
        id: &str,
        min: usize,
        max: usize,
        timeout: Option<Duration>,
        read: impl FnOnce(&MessageLayout, &[u8]) -> R,
    ) -> Result<R> {
        let (min, max) = batch_bounds(id, min, max)?;
        let take = |layout: &MessageLayout, outbox: &mut PackedQueue| {
            outbox.pop_many_with(max, |answers| read(layout, answers))
        };
        let result = self.receive_inner(id, timeout, min, |_| Ok(()), take).await;
        self.counted(id, result)
    }

    /// Takes up to `max` answers (1 or more) as `#[repr(C)]` values.
    pub async fn receive_batch<T: bytemuck::Pod>(
        &self,
        id: &str,
        max: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<T>> {
        self.receive_batch_at_least::<T>(id, 1, max, timeout).await
    }

    /// Takes at least `min` and up to `max` answers as `#[repr(C)]` values, for a consumer that
    /// amortises its cost per call over batches of a size it chooses (Kafka's
    /// `fetch.min.bytes` with `fetch.max.wait.ms`). Waits until `min` answers are there for
    /// it (in its turn among the receives that wait on the kernel: one waiting for more holds
    /// those behind it), then takes up to `max`. It stops waiting for more, and takes what is
    /// there, when `timeout` runs out and when no more will come without something else
    /// happening: the kernel terminated, its device was lost (the next receive hears of it), or
    /// it was connected onward. With none there then, it fails as
    /// [`receive_batch`](Self::receive_batch) does: `Timeout` after the timeout, and so on.
    /// Without a timeout it waits as long as it takes: a kernel whose handler drops messages,
    /// or that is sent fewer than `min`, may never have `min` answers for it. The answers are
    /// taken at once, in order; a refused or dropped receive takes none.
    ///
    /// # Errors
    /// [`Error::OutOfRange`], before anything is waited for or taken, for a `min` or `max` of
    /// 0, a `min` over `max`, or a `min` over the kernel's output queue size (that many
    /// answers are never there at once); [`Error::Timeout`] when no answer came within
    /// `timeout`; [`Error::MessageFormat`] when `T` does not fit the output layout; and
    /// [`receive`](Self::receive)'s refusals when no answer is there and none will come.
    pub async fn receive_batch_at_least<T: bytemuck::Pod>(
        &self,
        id: &str,
        min: usize,
        max: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<T>> {
        let (min, max) = batch_bounds(id, min, max)?;
        let check = |layout: &MessageLayout| {
            if !layout.size().is_multiple_of(std::mem::size_of::<T>()) {
                return Err(pod_error::<T>(id, layout.size()));
            }
            pod_scalars_match::<T>(id, layout)
        };
        // Straight from the output queue into the answer vector: one copy.
        let result = self.receive_inner(id, timeout, min, check, |_, outbox| outbox.pop_many_as::<T>(max)).await;
        self.counted(id, result)
    }

    /// Waits until `min` answers are there (fewer once `timeout` runs out or none more will
    /// come: see [`receive_batch_at_least`](Self::receive_batch_at_least)), then takes them
    /// with `take`. `check` refuses the call before anything is waited for or taken.
    async fn receive_inner<R>(
        &self,
        id: &str,
        timeout: Option<Duration>,
        min: usize,
        check: impl Fn(&MessageLayout) -> Result<()>,
        take: impl FnOnce(&MessageLayout, &mut PackedQueue) -> R,
    ) -> Result<R> {
        self.receive_answer(id, timeout, min, check, take, None).await
    }

    /// [`receive_inner`](Self::receive_inner); with `envelope`, one answer is taken and its
    /// envelope's header goes there (see [`try_take_answer`](Self::try_take_answer)).
    pub(super) async fn receive_answer<R>(
        &self,
        id: &str,
        timeout: Option<Duration>,
        min: usize,
        check: impl Fn(&MessageLayout) -> Result<()>,
        take: impl FnOnce(&MessageLayout, &mut PackedQueue) -> R,
        mut envelope: Option<&mut Option<EnvelopeHeader>>,
    ) -> Result<R> {
        let deadline = deadline(timeout);
        let mut take = Some(take);
        let mut check = Some(check);
        let mut stall = StallWatch::default();
        let mut place = InLine { runtime: self, id, ticket: None };
        let mut launch = None;
        // How many answers it waits for: `min`, and once the timeout has run out, any.
        let mut need = min;
        loop {
            let ticket = Some(&mut place.ticket);
            let attempt =
                self.try_take_answer(id, check.take(), need, &mut take, envelope.as_deref_mut(), ticket, &mut launch);
            match attempt? {
                Attempt::Done(taken) => return Ok(taken),
                Attempt::Wait(listener, (device, looks)) => {
                    // A receive from a kernel that does not run while its input waits looks
                    // again after a second, and reports it once; other receives set no timer.
                    let (until, looking) = stall.until(deadline, looks);
                    self.help_tick(device, deadline);
                    if !wait_holding(listener, until, deadline.is_some()).await {
                        if looking && deadline.is_none_or(|d| platform::now_ms() < d) {
                            stall.looked(self.report_stall(id, "a receive from", "an answer", true));
                            continue;
                        }
                        if need > 1 {
                            // Past the timeout with fewer than `min`: what is there, if any, in
                            // one more look (still in its turn).
                            need = 1;
                            continue;
                        }
                        return Err(Error::Timeout {
                            id: id.to_owned(),
                            operation: "receive".into(),
                            timeout: timeout.unwrap_or_default(),
                            unprocessed: 0,
                            stall: self.shared.lock().receive_stall(id).map(|(stall, _)| stall),
                        });
                    }
                }
            }
        }
    }

    /// One attempt of [`receive_inner`](Self::receive_inner): answers taken (`take` is used up),
    /// or none waiting (with what to wait on, the kernel's device, and whether the kernel
    /// processes none of the input it has: see [`Kernel::stall_with_input`]).
    pub(super) fn try_take<R>(
        &self,
        id: &str,
        check: Option<impl Fn(&MessageLayout) -> Result<()>>,
        take: &mut Option<impl FnOnce(&MessageLayout, &mut PackedQueue) -> R>,
    ) -> Result<Attempt<R, (DeviceId, bool)>> {
        self.try_take_answer(id, check, 1, take, None, None, &mut None)
    }

    /// [`try_take`](Self::try_take); with `envelope`, `take` takes the front answer and the
    /// header of its envelope (made now, see [`crate::envelope`]) goes to `envelope`. Answers
    /// go to receives in the order they began to wait (`Mailbox::receivers`): with `ticket`, a
    /// receive that waits takes its place in that line the first time (and leaves it when it
    /// takes answers); without, it takes answers only when no receive waits (`try_receive`).
    /// `launch` pins a receive that waits to the launch it first found (see [`same_launch`]).
    /// It takes answers once `need` are there, or fewer when none more will come (see
    /// [`receive_turn`]); `check` there (the first attempt) refuses a `need` over the output
    /// queue's size, which could never be met.
    #[allow(clippy::too_many_arguments)]
    fn try_take_answer<R>(
        &self,
        id: &str,
        check: Option<impl Fn(&MessageLayout) -> Result<()>>,
        need: usize,
        take: &mut Option<impl FnOnce(&MessageLayout, &mut PackedQueue) -> R>,
        envelope: Option<&mut Option<EnvelopeHeader>>,
        ticket: Option<&mut Option<u64>>,
        launch: &mut Option<u64>,
    ) -> Result<Attempt<R, (DeviceId, bool)>> {
        let mut table = self.open_table()?;
        let (kernel, device) = self.kernel_on_device_in(&mut table, id)?;
        same_launch(launch, kernel, id)?;
        if let Some(check) = check {
            check(&kernel.def.output)?;
            batch_min_fits(id, kernel, need)?;
        }
        let later_stage = kernel.route.upstream.is_some();
        if let Some((listener, (device, looks))) = receive_turn(id, kernel, device, need, ticket)? {
            // A later stage of a pipeline looks again after a second too while its input waits,
            // held, at an earlier stage (`Table::receive_stall`), which it alone cannot tell;
            // only then: a look a second ahead is often earlier than the page's alarm, which
            // every such receive would then move.
            let looks = looks || (later_stage && held_upstream(&table, id));
            return Ok(Attempt::Wait(listener, (device, looks)));
        }
        let before = kernel.mailbox.outbox.len();
        let taken = {
            #[cfg(not(target_arch = "wasm32"))]
            let _reading = crate::table::ReadingAnswers::begin(&self.shared);
            take.take().expect("taken once")(&kernel.def.output, &mut kernel.mailbox.outbox)
        };
        // Its header goes once the answer has: a `read` that panics leaves both queued.
        let request = envelope.is_some().then(|| kernel.mailbox.answer_header_taken());
        let held_back = answers_taken(kernel, before);
        if let (Some(envelope), Some(request)) = (envelope, request) {
            *envelope = Some(table.clock.answer(request, id));
        }
        if held_back {
            self.shared.wake();
        }
        Ok(Attempt::Done(taken))
    }
}

/// Whether [`Runtime::receive_one`] takes the answer it waited for, or leaves it queued (a wait
/// for an answer to be there).
#[derive(Clone, Copy)]
pub(super) enum Taking {
    Take,
    #[cfg(target_arch = "wasm32")]
    Leave,
}

/// Whether a receive may take answers from `kernel` now (`None`; its `ticket` then leaves the
/// line), or what it waits on while it may not (it joins the line with its first wait), or
/// why none will come. A receive that `need`s more answers than are there takes what is there
/// once none more will come without something else happening (see [`answers_held_up`]), as it
/// would at its timeout. Out of [`Runtime::try_take_answer`], which is generic over what the
/// receive makes of its answers, so that this is in the wasm once.
fn receive_turn(
    id: &str,
    kernel: &mut Kernel,
    device: &DeviceStatus,
    need: usize,
    ticket: Option<&mut Option<u64>>,
) -> Result<Option<(event_listener::EventListener, (DeviceId, bool))>> {
    let held = ticket.as_deref().copied().flatten();
    let ready = kernel.mailbox.outbox.len();
    let enough = ready >= need || (ready > 0 && answers_held_up(kernel));
    if enough && kernel.mailbox.receivers_first(held) {
        if let (Some(held), Some(ticket)) = (held, ticket) {
            kernel.mailbox.leave_receivers(held);
            *ticket = None;
        }
        return Ok(None);
    }
    // Answers waiting for receives that waited first, or none yet.
    if kernel.mailbox.outbox.is_empty() {
        match (kernel.life.state(), &kernel.route.downstream) {
            (state @ KernelState::Terminated, _) => {
                return Err(Error::KernelState { id: id.to_owned(), state, action: Action::Receive });
            }
            // Its answers come only after recovery: waiting receives hear why now.
            (KernelState::Failed, _) => return Err(kernel.failure(id, device)),
            // Its answers go to the next stage: none comes here while it stays connected.
            (_, Some(downstream)) => return Err(connected_refusal(id, downstream)),
            _ => {}
        }
    }
    if let Some(ticket @ None) = ticket {
        *ticket = Some(kernel.mailbox.join_receivers());
    }
    Ok(Some((kernel.changed.listen(), (kernel.device, kernel.stall_with_input().is_some()))))
}

/// Whether no more answers come to `kernel`'s output queue without something else happening:
/// it terminated, its device was lost (they come after recovery), or it is connected onward.
/// The states in which a receive finding no answer is refused (see [`receive_turn`]).
fn answers_held_up(kernel: &Kernel) -> bool {
    matches!(kernel.life.state(), KernelState::Terminated | KernelState::Failed) || kernel.route.downstream.is_some()
}

/// Refuses a receive batch's `min` over kernel `id`'s output queue size: the queue never holds
/// that many answers at once (but while the kernel terminates), so the wait could never end.
fn batch_min_fits(id: &str, kernel: &Kernel, min: usize) -> Result<()> {
    let capacity = kernel.mailbox.outbox.capacity();
    if min > capacity {
        return Err(Error::OutOfRange(format!(
            concat!(
                "a receive batch's min of {} could never be met: kernel {} holds at most {} in its output queue (its ",
                crate::platform::option_name!("outputQueueSize", "output_queue_size"),
                ")"
            ),
            min,
            Quoted(id),
            crate::error::plural(capacity, "answer", "answers")
        )));
    }
    Ok(())
}

/// Whether a later stage's input waits, held, at an earlier stage (see `Table::receive_stall`).
/// Out of line: [`Runtime::try_take_answer`] is generic.
#[inline(never)]
fn held_upstream(table: &Table, id: &str) -> bool {
    table.receive_stall(id).is_some()
}

/// Counts the answers a receive took from `kernel` (its output queue held `before`), wakes the
/// next receive in line (to take what is left, or, with none left, to hear that the kernel has
/// terminated), and says whether the tick should be woken: room in the output queue lets it
/// dispatch input it held back for want of room, this kernel's or a connected feeder's.
fn answers_taken(kernel: &mut Kernel, before: usize) -> bool {
    kernel.counters.messages_received += (before - kernel.mailbox.outbox.len()) as u64;
    if !kernel.mailbox.receivers.is_empty() {
        kernel.notify();
    }
    !kernel.mailbox.inbox.is_empty() || kernel.route.upstream.is_some()
}

/// A call's answer on its way to its caller. Dropped unread (the call's future dropped after
/// the tick handed the answer over, by a `select!` or a timeout around it, or an aborted
/// promise on the web), the answer was abandoned: counted so, and no longer as received.
struct AwaitedAnswer<'a> {
    receiver: Option<oneshot::Receiver<Reply>>,
    shared: &'a Shared,
    id: &'a str,
    /// The launch it was sent to: one removed and launched again under the id is another.
    instance: u64,
}

impl Drop for AwaitedAnswer<'_> {
    fn drop(&mut self) {
        let Some(mut receiver) = self.receiver.take() else { return };
        // Under the lock the tick delivers under: an answer is either in the receiver now, or
        // the tick sees the receiver gone and counts it abandoned itself.
        let mut table = self.shared.lock();
        if !matches!(receiver.try_recv(), Ok(Some(Ok(Ok(_))))) {
            return;
        }
        match table.launch_of(self.id, self.instance) {
            Some(kernel) => {
                kernel.counters.messages_received = kernel.counters.messages_received.saturating_sub(1);
                kernel.counters.answers_abandoned += 1;
            }
            // Removed since: the runtime's totals took its counts at the remove.
            None => {
                table.retired.messages_received = table.retired.messages_received.saturating_sub(1);
                table.retired.answers_never_received += 1;
            }
        }
    }
}

/// A waiting receive's place in its kernel's line of receives (`Mailbox::receivers`), left
/// when the receive ends without taking answers: it timed out, failed, or its future was
/// dropped (an aborted JavaScript receive). The next in line then takes what is waiting.
struct InLine<'a> {
    runtime: &'a Runtime,
    id: &'a str,
    ticket: Option<u64>,
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket else { return };
        let mut table = self.runtime.shared.lock();
        // Tickets are unique, so a kernel launched under the id since holds none of this one.
        if let Some(kernel) = table.kernels.get_mut(self.id) {
            if kernel.mailbox.leave_receivers(ticket) {
                kernel.notify();
            }
        }
    }
}

/// Pins an operation that waits (a send for room, a batch, a receive) to the launch of kernel
/// `id` it first found (`launch`, set then): once that launch is removed, it fails with
/// `KernelNotFound`, even if another kernel was launched under the id before it looked again.
/// A handle reaches its own launch only, and an id's operation the kernel it began on: a batch
/// is never split between two launches.
fn same_launch(launch: &mut Option<u64>, kernel: &Kernel, id: &str) -> Result<()> {
    if *launch.get_or_insert(kernel.instance) != kernel.instance {
        return Err(Error::KernelNotFound { id: id.to_owned() });
    }
    Ok(())
}

/// The `check` of a receive that takes any output layout.
fn any_layout(_: &MessageLayout) -> Result<()> {
    Ok(())
}

/// What a call learns as its message is queued: its kernel's definition, whether messages
/// ahead of it wait for room in the output queue (see `wait_watching_stall`), and the launch it
/// went to (see `AwaitedAnswer`).
type CallQueued = (Arc<KernelDefinition>, bool, u64);

/// How long a send waits on a full queue before it looks for a stalled kernel, in milliseconds.
const STALL_REPORT_MS: f64 = 1000.0;

/// What to do about a kernel stalled by `stall` (empty where there is no one remedy).
fn remedy(stall: Stall) -> &'static str {
    match stall {
        Stall::OutputFull { .. } => "Receive its answers (or connect it to a kernel that takes them).",
        Stall::Inactive(KernelState::Launched) => "activate() it.",
        Stall::Inactive(KernelState::Deactivated) => "reactivate() it.",
        Stall::Inactive(KernelState::Failed) => "recover() its device, or migrate() it.",
        Stall::NextStageStalled => "See to its next stage.",
        Stall::UpstreamStalled => "See to the stages before it.",
        _ => "",
    }
}

/// A waiting send's, call's or receive's watch for a stalled kernel: when to look next, and
/// whether it has reported (see `report_stall`).
#[derive(Default)]
struct StallWatch {
    check_at: Option<f64>,
    reported: bool,
}

impl StallWatch {
    /// How long a wait may last: until `deadline` or, while `watching` and not yet reported,
    /// until the next look a second after the first wait; and whether it ends to look. Once
    /// reported, only the deadline: a look-out time left in the past would end every wait at
    /// once, a loop that never yields (on the web, the page's thread frozen until the deadline,
    /// or for good without one).
    fn until(&mut self, deadline: Deadline, watching: bool) -> (Deadline, bool) {
        let check_at = (watching && !self.reported)
            .then(|| *self.check_at.get_or_insert_with(|| platform::now_ms() + STALL_REPORT_MS));
        let until = match (deadline, check_at) {
            (Some(deadline), Some(check_at)) => Some(deadline.min(check_at)),
            (deadline, check_at) => deadline.or(check_at),
        };
        (until, check_at.is_some())
    }

    /// A look was taken (`reported`: it found the kernel stalled and said so); without a
    /// report, the next look is a second after the next wait begins.
    fn looked(&mut self, reported: bool) {
        self.reported = reported;
        self.check_at = None;
    }
}

/// One attempt at an operation that may have to wait: done, or not yet (with the event that
/// fires when it may be worth trying again and, for a send, the error that says why if the
/// caller will not wait).
pub(super) enum Attempt<T, E = Error> {
    Done(T),
    Wait(event_listener::EventListener, E),
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

fn answer_size_matches<T: 'static>(id: &str, layout: &MessageLayout) -> Result<()> {
    let size = layout.size();
    if std::mem::size_of::<T>() != size {
        return Err(Error::MessageFormat {
            id: id.to_owned(),
            field: std::any::type_name::<T>().to_owned(),
            problem: format!("is {} bytes, but answers are {size} bytes", std::mem::size_of::<T>()),
        });
    }
    pod_scalars_match::<T>(id, layout)
}

/// Refuses a plain number type (or an array of one) of another scalar than the layout's (see
/// [`MessageLayout::check_pod_scalars`]): its bytes would be read as their bits.
fn pod_scalars_match<T: 'static>(id: &str, layout: &MessageLayout) -> Result<()> {
    layout.check_pod_scalars::<T>().map_err(|problem| Error::MessageFormat {
        id: id.to_owned(),
        field: layout.name().to_owned(),
        problem,
    })
}

fn pod_error<T>(id: &str, got: usize) -> Error {
    Error::MessageFormat {
        id: id.to_owned(),
        field: std::any::type_name::<T>().to_owned(),
        problem: format!("is {} bytes, which does not divide the {got} bytes of answers", std::mem::size_of::<T>()),
    }
}

/// The most bytes one batch takes packed on the web, where it is copied into wasm memory whole
/// (4 GiB in all, with 32-bit sizes): a larger one is refused before anything is made of it.
/// Natively only what `usize` counts bounds it.
pub(crate) const MAX_BATCH_BYTES: usize = if cfg!(target_arch = "wasm32") { 1 << 30 } else { isize::MAX as usize };

/// The packed size of `count` messages of `size` bytes, or why a batch cannot be that large.
pub(crate) fn batch_bytes(count: usize, size: usize) -> Result<usize> {
    count.checked_mul(size).filter(|&bytes| bytes <= MAX_BATCH_BYTES).ok_or_else(|| {
        Error::OutOfRange(format!(
            "a batch of {} of {size} bytes is over {MAX_BATCH_BYTES} bytes packed, the most one batch takes: send it \
             in parts",
            crate::error::messages(count)
        ))
    })
}

/// A malformed message's error with the message's place in its batch in front of the field's
/// path: `[3].value`, or `[3]` when the whole message is wrong.
fn in_batch(error: Error, index: usize) -> Error {
    match error {
        Error::MessageFormat { id, field, problem } => {
            let field = match field.as_str() {
                "(message)" => format!("[{index}]"),
                path => format!("[{index}].{path}"),
            };
            Error::MessageFormat { id, field, problem }
        }
        other => other,
    }
}

/// A message's fields, from a [`Value::Struct`]; anything else is not a message.
fn struct_fields<'v>(id: &str, message: &'v Value) -> Result<&'v [(String, Value)]> {
    match message {
        Value::Struct(fields) => Ok(fields),
        other => Err(Error::MessageFormat {
            id: id.to_owned(),
            field: "(message)".into(),
            problem: format!("must be an object, got {}", other.kind()),
        }),
    }
}

/// Writes a message into its slot, given the input layout. Taken as a reference to a trait
/// object, so the waiting send and the call exist once in the wasm, not once per caller.
pub(super) type Pack<'a> = &'a (dyn Fn(&MessageLayout, &mut [u8]) -> Result<()> + Sync);

/// What a send or a call writes into its message's slot: a value's fields, or bytes already in
/// the input layout (checked against its size).
#[derive(Clone, Copy)]
enum Packing<'a> {
    Fields(&'a [(String, Value)]),
    Bytes(&'a [u8]),
}

impl<'a> Packing<'a> {
    /// A message's packing; a value that is not a struct is a `MessageFormat` error, before
    /// any room is waited for.
    fn of(id: &str, message: MessageRef<'a>) -> Result<Self> {
        Ok(match message {
            MessageRef::Value(value) => Packing::Fields(struct_fields(id, value)?),
            MessageRef::Bytes(bytes) => Packing::Bytes(bytes),
        })
    }

    fn pack(self, id: &str, layout: &MessageLayout, slot: &mut [u8]) -> Result<()> {
        match self {
            Packing::Fields(fields) => pack_fields(id, layout, named(fields), slot),
            Packing::Bytes(bytes) => copy_message(id, layout, bytes, slot),
        }
    }
}

fn named(fields: &[(String, Value)]) -> impl Iterator<Item = (&str, &Value)> {
    fields.iter().map(|(name, value)| (name.as_str(), value))
}

/// A receive batch's `min` and `max` (from kernel `id`, whom a refusal names), each at least 1 (a batch takes at least one answer, so 0
/// could only be taken as 1, more than it asked for), `min` no more than `max`.
fn batch_bounds(id: &str, min: usize, max: usize) -> Result<(usize, usize)> {
    // One text for the three refusals: each `format!` of its own weighs in the wasm.
    let (which, rel, bound, got) = match (min, max) {
        (_, 0) => ("max", "least ", 1, 0),
        (0, _) => ("min", "least ", 1, 0),
        (min, max) if min > max => ("min", "most its max of ", max, min),
        bounds => return Ok(bounds),
    };
    Err(Error::OutOfRange(format!(
        "kernel {}: a receive batch's {which} must be at {rel}{bound}, got {got}",
        Quoted(id)
    )))
}

/// A call's or receive's refusal while kernel `id` is connected onward to `downstream`.
fn connected_refusal(id: &str, downstream: &str) -> Error {
    Error::InvalidArgument(format!(
        "kernel {quoted_id} is connected to {}, so its answers go there: send to it and receive from the \
         pipeline's last kernel, or disconnect it first",
        Quoted(downstream),
        quoted_id = Quoted(id)
    ))
}

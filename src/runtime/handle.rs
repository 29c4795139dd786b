//! Kernel handles: RingKernel's `KernelHandle`, a cheap-to-clone reference to one launched kernel
//! (like ractor's `ActorRef`), with every operation on it.
//!
//! [`Runtime::launch`] returns a [`KernelHandle`] whose messages are known only at run time
//! ([`Dynamic`]: `Value`s). [`KernelHandle::typed`] turns it into a `KernelHandle<In, Out>` after
//! checking that `In` and `Out` have the kernel's layouts byte for byte (field types and offsets,
//! not only sizes); from then on the handle sends only `In` and receives only `Out`.
//!
//! Timeouts are [`Duration`]s: no timeout means wait, `try_*` means don't. Each operation has its
//! own error, and a refused send hands the message back (see [`crate::SendError`]); every such
//! error converts into the crate's [`Error`].

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::messaging::Attempt;
use super::{Runtime, DEFAULT_TERMINATE_TIMEOUT};
use crate::envelope::{EnvelopeHeader, MessageEnvelope};
use crate::error::{
    BatchSendError, CallError, Error, Result, SendError, SendTimeoutError, TryReceiveError, TrySendError,
};
use crate::lifecycle::{KernelMode, KernelState};
use crate::message::typed::{renamed_field, Renamed};
use crate::message::{same_bytes, MessageLayout, MessageRef, RingMessage, Value};
use crate::telemetry::KernelTelemetry;
use crate::waiting::{deadline, wait};

/// The message type of a handle whose kernel's messages are known only at run time: it sends
/// and receives [`Value`]s (see [`KernelHandle::typed`] for Rust types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dynamic {}

/// A launched kernel. Cheap to clone; keeps its runtime alive while it exists. It refers to
/// that launch only: once the kernel is removed, every operation on it is `KernelNotFound`,
/// even after another kernel is launched under the same id (as an actor reference never
/// reaches the actor that took a stopped one's name).
///
/// ```no_run
/// # async fn demo(runtime: ringkernel_web::Runtime) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// use std::time::Duration;
/// use ringkernel_web::{CallError, LaunchOptions};
///
/// let options = LaunchOptions::default().with_auto_activate();
/// // i32 in, i32 out: `typed` checks both against the kernel's layouts.
/// let doubler = runtime.launch("doubler", options).await?.typed::<i32, i32>()?;
/// doubler.send(21).await?; // a refused message comes back in the `SendError`
/// assert_eq!(doubler.receive_timeout(Duration::from_secs(1)).await?, 42);
/// match doubler.call(5, Duration::from_secs(1)).await {
///     Ok(answer) => assert_eq!(answer, 10),
///     Err(CallError::NotSent(message, why)) => eprintln!("{message} not sent: {why}"),
///     Err(unanswered) => return Err(unanswered.into()),
/// }
/// doubler.terminate().await?;
/// # Ok(()) }
/// ```
pub struct KernelHandle<In = Dynamic, Out = Dynamic> {
    /// The runtime as the handle's operations use it: reaching its own launch only, checked
    /// under the lock each acts under (see `Runtime::kernel_in`).
    pinned: Runtime,
    /// The runtime as it is, for [`runtime`](Self::runtime).
    runtime: Runtime,
    id: Arc<str>,
    /// Set when its kernel is removed (shared with the kernel's entry).
    removed: Arc<AtomicBool>,
    messages: PhantomData<fn(In) -> Out>,
}

impl<In, Out> Clone for KernelHandle<In, Out> {
    fn clone(&self) -> Self {
        self.retyped()
    }
}

/// Two handles are equal when they refer to the same launch: clones, and handles got by id
/// while that launch was there. A kernel launched again under the id is another (as its
/// handles reach only it), so handles can key a map or a set of kernels. (Clippy's
/// `mutable_key_type` flags such a key, as it does any that holds a lock; a handle hashes by its
/// launch alone, which never changes.)
impl<In, Out> PartialEq for KernelHandle<In, Out> {
    fn eq(&self, other: &Self) -> bool {
        // Each launch has a flag of its own, shared by all its handles.
        Arc::ptr_eq(&self.removed, &other.removed)
    }
}

impl<In, Out> Eq for KernelHandle<In, Out> {}

impl<In, Out> std::hash::Hash for KernelHandle<In, Out> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.removed), state);
    }
}

impl<In, Out> std::fmt::Debug for KernelHandle<In, Out> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelHandle").field("id", &self.id).finish()
    }
}

/// A kernel's state and queue depths at a glance (the seed's `KernelStatus`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct KernelStatus {
    /// The kernel's id.
    pub id: String,
    /// Where it is in its lifecycle.
    pub state: KernelState,
    /// Its execution mode (see [`KernelMode`]).
    pub mode: KernelMode,
    /// Messages waiting on the host to go to the device.
    pub input_queue_depth: usize,
    /// Answers waiting to be received.
    pub output_queue_depth: usize,
    /// Messages its handler ran on.
    pub messages_processed: u64,
    /// Time since launch (until termination).
    pub uptime: Duration,
}

impl<In, Out> KernelHandle<In, Out> {
    /// A handle to launch `instance` of kernel `id`, whose entry shares `removed`.
    pub(super) fn new(runtime: &Runtime, id: &str, removed: Arc<AtomicBool>, instance: u64) -> Self {
        let id: Arc<str> = id.into();
        KernelHandle {
            pinned: runtime.pinned(id.clone(), instance),
            runtime: runtime.unpinned(),
            id,
            removed,
            messages: PhantomData,
        }
    }

    /// A handle to the same launch with other message types (a clone, or `typed`'s result once
    /// it checked them).
    fn retyped<I, O>(&self) -> KernelHandle<I, O> {
        KernelHandle {
            pinned: self.pinned.clone(),
            runtime: self.runtime.clone(),
            id: self.id.clone(),
            removed: self.removed.clone(),
            messages: PhantomData,
        }
    }

    /// The id to operate on, or `KernelNotFound` once this handle's kernel was removed.
    #[inline(never)] // one copy for every operation
    pub(crate) fn live_id(&self) -> Result<&str> {
        match self.removed.load(Ordering::Relaxed) {
            false => Ok(&self.id),
            true => Err(Error::KernelNotFound { id: self.id.to_string() }),
        }
    }

    /// Its launch's flag, set when the kernel is removed: for an operation that starts later
    /// (the JavaScript layer's receives, a microtask after their call).
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn removed_flag(&self) -> Arc<AtomicBool> {
        self.removed.clone()
    }

    /// The runtime as this handle's operations use it: reaching its launch only.
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn pinned_runtime(&self) -> &Runtime {
        &self.pinned
    }

    /// The kernel's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The runtime the kernel runs in.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// `launched` → `active`, or `deactivated` → `active`: the kernel processes its queued
    /// messages.
    ///
    /// # Errors
    /// [`Error::KernelState`] unless the kernel is launched or deactivated (a failed one
    /// recovers first); [`Error::KernelNotFound`] once it was removed; [`Error::Disposed`] once the
    /// runtime was disposed.
    pub async fn activate(&self) -> Result<()> {
        self.pinned.activate_or_reactivate(self.live_id()?)
    }

    /// `active` → `deactivated`: nothing more is dispatched; queued input stays.
    ///
    /// # Errors
    /// [`Error::KernelState`] unless the kernel is active; [`Error::KernelNotFound`] once it was
    /// removed; [`Error::Disposed`] once the runtime was disposed.
    pub async fn deactivate(&self) -> Result<()> {
        self.pinned.deactivate(self.live_id()?).await
    }

    /// The seed's name for [`deactivate`](Self::deactivate).
    ///
    /// # Errors
    /// As [`deactivate`](Self::deactivate)'s.
    pub async fn suspend(&self) -> Result<()> {
        self.deactivate().await
    }

    /// The seed's name for [`activate`](Self::activate): `deactivated` → `active`, or
    /// `launched` → `active`.
    ///
    /// # Errors
    /// As [`activate`](Self::activate)'s.
    pub async fn resume(&self) -> Result<()> {
        self.activate().await
    }

    /// Graceful stop: queued and in-flight messages are processed first (their answers stay
    /// receivable), for up to five seconds; see [`terminate_timeout`](Self::terminate_timeout).
    ///
    /// # Errors
    /// As [`Runtime::terminate`]'s: a `Timeout` saying how many messages were left unprocessed
    /// when the five seconds ran out, `KernelState` when it is terminated already.
    pub async fn terminate(&self) -> Result<()> {
        self.pinned.terminate(self.live_id()?, Some(DEFAULT_TERMINATE_TIMEOUT)).await
    }

    /// Graceful stop within `timeout`; past it the kernel stops anyway and the `Timeout` error
    /// says how many messages were left unprocessed.
    ///
    /// # Errors
    /// As [`Runtime::terminate`]'s: a `Timeout` saying how many messages were left unprocessed
    /// when `timeout` ran out, `KernelState` when it is terminated already.
    pub async fn terminate_timeout(&self, timeout: Duration) -> Result<()> {
        self.pinned.terminate(self.live_id()?, Some(timeout)).await
    }

    /// Its kernel's `state` array, read back as [`Runtime::read_state`] reads it: this launch's
    /// only (`KernelNotFound` once it is removed, even with another launched under its id).
    pub async fn read_state(&self) -> Result<Vec<u8>> {
        self.pinned.read_state(self.live_id()?).await
    }

    /// A copy of its kernel's `state` array in a new buffer on its device, as
    /// [`Runtime::state_to_gpu`] makes one: this launch's only.
    pub fn state_to_gpu(&self) -> Result<wgpu::Buffer> {
        self.pinned.state_to_gpu(self.live_id()?)
    }

    /// [`read_state`](Self::read_state) as `u32`, `i32` or `f32` values, matching the state's
    /// element type; another scalar is refused as [`Runtime::read_state_as`] refuses it.
    pub async fn read_state_as<T: bytemuck::Pod>(&self) -> Result<Vec<T>> {
        self.pinned.read_state_as(self.live_id()?).await
    }

    /// Writes `values` into its kernel's `state` array from element `index` on, as
    /// [`Runtime::write_state`] does: this launch's only.
    pub async fn write_state(&self, index: u32, values: impl Into<crate::kernel::StateValues>) -> Result<()> {
        self.pinned.write_state(self.live_id()?, index, values).await
    }

    /// Resolves once the kernel is terminated (or removed).
    pub async fn wait(&self) -> Result<()> {
        self.wait_within(None).await
    }

    /// [`wait`](Self::wait), for up to `timeout`: then `Timeout` (operation `wait`), the kernel
    /// left as it is.
    ///
    /// # Errors
    /// [`Error::Timeout`] (operation `wait`) when the kernel has not terminated within `timeout`.
    pub async fn wait_timeout(&self, timeout: Duration) -> Result<()> {
        self.wait_within(Some(timeout)).await
    }

    /// [`wait`](Self::wait) within `timeout`, if any.
    pub(crate) async fn wait_within(&self, timeout: Option<Duration>) -> Result<()> {
        let until = deadline(timeout);
        loop {
            let Ok(id) = self.live_id() else { return Ok(()) };
            let Some(listener) = self.pinned.until_changed(id)? else { return Ok(()) };
            if !wait(listener, until).await {
                let timeout = timeout.unwrap_or_default();
                return Err(Error::Timeout {
                    id: id.to_owned(),
                    operation: "wait".into(),
                    timeout,
                    unprocessed: 0,
                    stall: None,
                });
            }
        }
    }

    /// The kernel's state now.
    ///
    /// # Errors
    /// [`Error::KernelNotFound`] once the kernel was removed.
    pub fn state(&self) -> Result<KernelState> {
        self.pinned.state(self.live_id()?)
    }

    /// Whether the kernel is active now.
    pub fn is_active(&self) -> bool {
        self.state().is_ok_and(|state| state == KernelState::Active)
    }

    /// Whether the kernel has terminated (or was removed).
    pub fn is_terminated(&self) -> bool {
        matches!(self.state(), Ok(KernelState::Terminated) | Err(Error::KernelNotFound { .. }))
    }

    /// State, mode, queue depths, messages processed and uptime.
    ///
    /// # Errors
    /// [`Error::KernelNotFound`] once the kernel was removed.
    pub fn status(&self) -> Result<KernelStatus> {
        let t = self.metrics()?;
        Ok(KernelStatus {
            id: t.kernel_id,
            state: t.state,
            mode: t.mode,
            input_queue_depth: t.input_queue_depth,
            output_queue_depth: t.output_queue_depth,
            messages_processed: t.messages_processed,
            uptime: crate::platform::saturating_ms(t.uptime_ms),
        })
    }

    /// Every counter of the kernel (latency is empty when the runtime keeps no telemetry).
    ///
    /// # Errors
    /// [`Error::KernelNotFound`] once the kernel was removed.
    pub fn metrics(&self) -> Result<KernelTelemetry> {
        self.pinned.kernel_metrics(self.live_id()?)
    }

    /// The next answer handed to `read` if one is waiting now: the `try_receive` of both kinds
    /// of handle.
    fn try_receive_read<R>(&self, read: impl FnOnce(&MessageLayout, &[u8]) -> R) -> Result<R, TryReceiveError> {
        let id = self.live_id().map_err(TryReceiveError::Refused)?;
        match self.pinned.try_receive_with(id, read) {
            Ok(Some(answer)) => Ok(answer),
            Ok(None) => Err(TryReceiveError::Empty(Error::Timeout {
                id: self.id.to_string(),
                operation: "try_receive".into(),
                stall: None,
                timeout: Duration::ZERO,
                unprocessed: 0,
            })),
            Err(refused) => Err(TryReceiveError::Refused(refused)),
        }
    }
}

impl KernelHandle {
    /// This kernel as a handle that sends `In` and receives `Out`, after checking that their
    /// layouts are the kernel's: byte for byte (field types and offsets), and for a derived
    /// struct field by field by name too, nested ones included, since a field of the same bytes
    /// under another name (`{ x, y }` where the kernel has `{ y, x }`) would carry its value
    /// into that other field. The names of the structs themselves may differ, and a plain
    /// `i32`, `u32` or `f32` stands for any one-field message of its scalar (see
    /// [`RingMessage::NAMED_FIELDS`]).
    ///
    /// # Errors
    /// [`Error::MessageFormat`] naming the Rust type when `In` is not the kernel's input layout
    /// or `Out` not its output layout (or either is no WGSL type), and naming the field (its
    /// path in the Rust type: `Pair.items[].x`) when one is the kernel's under another name;
    /// [`Error::KernelNotFound`] once the kernel was removed.
    pub fn typed<In: RingMessage, Out: RingMessage>(&self) -> Result<KernelHandle<In, Out>> {
        let id = self.live_id()?;
        let layout_of = |layout: Result<MessageLayout, String>, ty: &str| {
            layout.map_err(|problem| Error::MessageFormat { id: id.to_owned(), field: ty.to_owned(), problem })
        };
        let (input, output) = (std::any::type_name::<In>(), std::any::type_name::<Out>());
        let theirs = layout_of(In::try_layout(), input)?;
        self.type_matches(&self.pinned.input_layout(id)?, &theirs, In::NAMED_FIELDS, "messages", input)?;
        let theirs = layout_of(Out::try_layout(), output)?;
        self.type_matches(&self.pinned.output_layout(id)?, &theirs, Out::NAMED_FIELDS, "answers", output)?;
        Ok(self.retyped())
    }

    /// Whether the Rust type `ty`, of layout `theirs`, is the kernel's `layout` for its
    /// `which` ("messages" or "answers"): the same bytes and, where the type names its fields
    /// (`named`), under the same names. Out of the generic [`typed`](Self::typed).
    fn type_matches(
        &self,
        layout: &MessageLayout,
        theirs: &MessageLayout,
        named: bool,
        which: &str,
        ty: &str,
    ) -> Result<()> {
        let error = |field: String, problem: String| Error::MessageFormat { id: self.id.to_string(), field, problem };
        if !same_bytes(layout, theirs) {
            let (it, kernels) = (theirs.wgsl_struct(), layout.wgsl_struct());
            let problem =
                format!("does not match the kernel's {which}: it is {}, the kernel's is {}", it.trim(), kernels.trim());
            return Err(error(ty.to_owned(), problem));
        }
        match renamed_field(theirs, layout).filter(|_| named) {
            None => Ok(()),
            Some(Renamed { path, theirs: kernels }) => Err(error(
                format!("{ty}.{path}"),
                format!(
                    "is where the kernel's {which} ({}) have `{kernels}`: the same bytes under another name, so its \
                     value would go to `{kernels}`; name the fields as the kernel does",
                    layout.name()
                ),
            )),
        }
    }

    /// Queues one message given as named values (a [`Value::Struct`]), waiting up to
    /// `timeout` for room (as long as it takes without one).
    pub async fn send_value(&self, message: &Value, timeout: Option<Duration>) -> Result<()> {
        self.pinned.send_value(self.live_id()?, message, timeout).await
    }

    /// Its answers as named values, one by one as they come: [`answers`](KernelHandle::answers)
    /// for a handle that is not typed, ending alike.
    pub fn answers(&self) -> impl futures_util::Stream<Item = Result<Vec<(String, Value)>>> + Unpin + 'static {
        Box::pin(futures_util::stream::unfold(Some(self.clone()), |handle| async move {
            let handle = handle?;
            match handle.receive_value(None).await {
                Ok(answer) => Some((Ok(answer), Some(handle))),
                Err(error) if error.ends_answers() => None,
                Err(error) => Some((Err(error), None)),
            }
        }))
    }

    /// Queues one message given as named values if there is room now (else `QueueFull`).
    pub fn try_send_value(&self, message: &Value) -> Result<()> {
        self.pinned.try_send_value(self.live_id()?, message)
    }

    /// Queues one message in either form (fields or bytes) if there is room now.
    pub fn try_send_message(&self, message: MessageRef<'_>) -> Result<()> {
        self.pinned.try_send_message(self.live_id()?, message)
    }

    /// Queues every message of `messages` (each a [`Value::Struct`]) within `timeout`, or the
    /// error says how many (from the front) were queued, and why not the rest.
    pub async fn send_values(&self, messages: &[Value], timeout: Option<Duration>) -> Result<usize, BatchSendError> {
        let id = self.live_id().map_err(|error| BatchSendError { accepted: 0, error })?;
        self.pinned.send_values(id, messages, timeout).await
    }

    /// Queues messages already packed in the input layout, all of them within `timeout`, or the
    /// error says how many (from the front) were queued, and why not the rest.
    pub async fn send_packed(&self, packed: &[u8], timeout: Option<Duration>) -> Result<usize, BatchSendError> {
        let id = self.live_id().map_err(|error| BatchSendError { accepted: 0, error })?;
        self.pinned.send_packed(id, packed, timeout).await
    }

    /// The next answer, as named values, waiting up to `timeout` (as long as it takes without).
    pub async fn receive_value(&self, timeout: Option<Duration>) -> Result<Vec<(String, Value)>> {
        self.pinned.receive(self.live_id()?, timeout).await
    }

    /// The next answer handed to `read` with the output layout, straight from the queue.
    /// `read` runs while the runtime's table is locked: it must not call the runtime (natively
    /// that panics; copy what it needs and call after).
    ///
    /// # Panics
    /// When `read` calls the runtime, whose table is locked while `read` runs: natively with a
    /// panic that says so, on the web in std's lock.
    pub async fn receive_with<R>(
        &self,
        timeout: Option<Duration>,
        read: impl FnOnce(&MessageLayout, &[u8]) -> R,
    ) -> Result<R> {
        self.pinned.receive_with(self.live_id()?, timeout, read).await
    }

    /// The next answer handed to `read` if one is waiting now. `read` runs while the runtime's
    /// table is locked: it must not call the runtime (natively that panics; copy what it needs
    /// and call after).
    ///
    /// # Panics
    /// When `read` calls the runtime, whose table is locked while `read` runs: natively with a
    /// panic that says so, on the web in std's lock.
    pub fn try_receive_with<R>(&self, read: impl FnOnce(&MessageLayout, &[u8]) -> R) -> Result<R, TryReceiveError> {
        self.try_receive_read(read)
    }

    /// Up to `max` answers (1 or more: 0 is `OutOfRange`), packed back to back, waiting up to `timeout` for
    /// the first.
    pub async fn receive_batch_packed(&self, max: usize, timeout: Option<Duration>) -> Result<Vec<u8>> {
        self.pinned.receive_batch_packed(self.live_id()?, max, timeout).await
    }

    /// At least `min` and up to `max` answers, packed back to back: waits until `min` are
    /// there, or until `timeout` and then takes what is there (see
    /// [`Runtime::receive_batch_at_least`]).
    ///
    /// # Errors
    /// As [`Runtime::receive_batch_at_least`]'s; [`Error::KernelNotFound`] once the kernel was
    /// removed.
    pub async fn receive_batch_packed_at_least(
        &self,
        min: usize,
        max: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>> {
        self.pinned.receive_batch_packed_at_least(self.live_id()?, min, max, timeout).await
    }

    /// Sends one message (a [`Value::Struct`]) and hands its own answer to `read`, waiting up to
    /// `timeout` in all.
    pub async fn call_value<R>(
        &self,
        message: &Value,
        timeout: Option<Duration>,
        read: impl FnOnce(&MessageLayout, &[u8]) -> R,
    ) -> Result<R> {
        self.pinned.call_value(self.live_id()?, message, timeout, read).await
    }
}

impl<In: RingMessage, Out: RingMessage> KernelHandle<In, Out> {
    /// Queues `message`, waiting for room as long as it takes. Refused only when the kernel
    /// does not take messages; the message comes back.
    ///
    /// # Errors
    /// A [`SendError`] with the message and why it was refused: the kernel was removed (`KernelNotFound`), is terminating or terminated (`KernelState`),
    /// the runtime drains or was disposed (`Draining`, `Disposed`), the kernel's circuit is open
    /// (`CircuitOpen`) or the degradation manager sheds its priority (`Overloaded`).
    pub async fn send(&self, message: In) -> Result<(), SendError<In>> {
        let id = match self.live_id() {
            Ok(id) => id,
            Err(error) => return Err(SendError { message, error }),
        };
        // Its types were checked against the layouts by `typed()`: the bytes go as they are.
        let sent = self.pinned.send_bytes(id, bytemuck::bytes_of(&message), None).await;
        sent.map_err(|error| SendError { message, error })
    }

    /// Queues `message` if there is room now.
    ///
    /// # Errors
    /// [`TrySendError::Full`] with the message when the input queue is full now (its error a
    /// `QueueFull`); [`TrySendError::Refused`] with the message when the kernel does not take
    /// messages, as [`send`](Self::send)'s refusals.
    pub fn try_send(&self, message: In) -> Result<(), TrySendError<In>> {
        let bytes = bytemuck::bytes_of(&message);
        let pack = |layout: &MessageLayout, slot: &mut [u8]| copy_into(layout, bytes, slot);
        let id = match self.live_id() {
            Ok(id) => id,
            Err(error) => return Err(TrySendError::Refused(message, error)),
        };
        match self.pinned.try_enqueue_one(id, None, &pack) {
            Ok(Attempt::Done(_)) => Ok(()),
            Ok(Attempt::Wait(_, full)) => Err(TrySendError::Full(message, self.pinned.count(&self.id, full))),
            Err(refused) => Err(TrySendError::Refused(message, self.pinned.count(&self.id, refused))),
        }
    }

    /// Queues `message`, waiting up to `timeout` for room.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`] with the message when the queue stayed full for all of
    /// `timeout` (its error a `QueueFull`); [`SendTimeoutError::Refused`] with the message when
    /// the kernel does not take messages, as [`send`](Self::send)'s refusals.
    pub async fn send_timeout(&self, message: In, timeout: Duration) -> Result<(), SendTimeoutError<In>> {
        let id = match self.live_id() {
            Ok(id) => id,
            Err(error) => return Err(SendTimeoutError::Refused(message, error)),
        };
        match self.pinned.send_bytes(id, bytemuck::bytes_of(&message), Some(timeout)).await {
            Ok(()) => Ok(()),
            Err(full @ Error::QueueFull { .. }) => Err(SendTimeoutError::Timeout(message, full)),
            Err(refused) => Err(SendTimeoutError::Refused(message, refused)),
        }
    }

    /// Queues every message of `messages`, in order, waiting for room as long as it takes; or
    /// says how many were queued before the kernel refused the rest.
    ///
    /// # Errors
    /// A [`BatchSendError`]: how many messages (from the front) were `accepted` (those are
    /// answered), and why the rest were not, one of [`send`](Self::send)'s refusals.
    pub async fn send_batch(&self, messages: &[In]) -> Result<(), BatchSendError> {
        self.send_batch_until(messages, None).await
    }

    /// [`send_batch`](Self::send_batch) within `timeout`: past it, the error says how many of
    /// the messages (from the front) were queued; those are answered, the rest were not queued.
    ///
    /// # Errors
    /// A [`BatchSendError`] saying how many were `accepted`: its error is a `QueueFull` when
    /// the timeout ran out, or one of [`send`](Self::send)'s refusals.
    pub async fn send_batch_timeout(&self, messages: &[In], timeout: Duration) -> Result<(), BatchSendError> {
        self.send_batch_until(messages, Some(timeout)).await
    }

    async fn send_batch_until(&self, messages: &[In], timeout: Option<Duration>) -> Result<(), BatchSendError> {
        let deadline = crate::waiting::deadline(timeout);
        let id = self.live_id().map_err(|error| BatchSendError { accepted: 0, error })?;
        match self.pinned.enqueue_many(id, bytemuck::cast_slice(messages), deadline, &AtomicUsize::new(0)).await {
            (_, None) => Ok(()),
            (accepted, Some(error)) => Err(BatchSendError { accepted, error: self.pinned.count(&self.id, error) }),
        }
    }

    /// The next answer, waiting as long as it takes.
    ///
    /// # Errors
    /// When no answer comes: the kernel terminated with none left (`KernelState`) or was
    /// removed (`KernelNotFound`), it waits for its lost device's recovery (`DeviceLost`), it is
    /// connected onward so its answers go to the next stage (`InvalidArgument`), or the runtime
    /// was disposed (`Disposed`).
    pub async fn receive(&self) -> Result<Out> {
        self.pinned.receive_pod(self.live_id()?, None).await
    }

    /// The next answer, waiting up to `timeout` (then `Timeout`).
    ///
    /// # Errors
    /// [`Error::Timeout`] when none came within `timeout`, and [`receive`](Self::receive)'s.
    pub async fn receive_timeout(&self, timeout: Duration) -> Result<Out> {
        self.pinned.receive_pod(self.live_id()?, Some(timeout)).await
    }

    /// The next answer if one is waiting now.
    ///
    /// # Errors
    /// [`TryReceiveError::Empty`] when no answer is waiting now; [`TryReceiveError::Refused`]
    /// when no answer will come, as [`receive`](Self::receive)'s errors.
    pub fn try_receive(&self) -> Result<Out, TryReceiveError> {
        self.try_receive_read(|_, answer| bytemuck::pod_read_unaligned::<Out>(answer))
    }

    /// Up to `max` answers (1 or more: 0 is `OutOfRange`), waiting for the first as long as it takes.
    ///
    /// # Errors
    /// As [`receive`](Self::receive)'s, and [`Error::OutOfRange`] for a `max` of 0.
    pub async fn receive_batch(&self, max: usize) -> Result<Vec<Out>> {
        self.pinned.receive_batch::<Out>(self.live_id()?, max, None).await
    }

    /// Up to `max` answers (1 or more), waiting up to `timeout` for the first (then `Timeout`).
    ///
    /// # Errors
    /// As [`receive_timeout`](Self::receive_timeout)'s, and [`Error::OutOfRange`] for a `max` of 0.
    pub async fn receive_batch_timeout(&self, max: usize, timeout: Duration) -> Result<Vec<Out>> {
        self.pinned.receive_batch::<Out>(self.live_id()?, max, Some(timeout)).await
    }

    /// At least `min` and up to `max` answers: waits until `min` are there for it, or, with a
    /// `timeout`, until that runs out and then takes what is there (one or more; `Timeout`
    /// with none). It takes what is there sooner when no more will come (the kernel
    /// terminated, its device was lost); see [`Runtime::receive_batch_at_least`].
    ///
    /// ```no_run
    /// # async fn consume(kernel: ringkernel_web::KernelHandle<i32, i32>) -> ringkernel_web::Result<()> {
    /// use std::time::Duration;
    /// // Batches of 64 to 1024 answers, or what came within 5 ms.
    /// let answers = kernel.receive_batch_at_least(64, 1024, Some(Duration::from_millis(5))).await?;
    /// assert!(!answers.is_empty() && answers.len() <= 1024);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::OutOfRange`], taking nothing, for a `min` or `max` of 0, a `min` over `max` or
    /// over the kernel's output queue size; [`Error::Timeout`] when no answer came within
    /// `timeout`; and [`receive`](Self::receive)'s refusals when none is there and none will
    /// come.
    pub async fn receive_batch_at_least(&self, min: usize, max: usize, timeout: Option<Duration>) -> Result<Vec<Out>> {
        self.pinned.receive_batch_at_least::<Out>(self.live_id()?, min, max, timeout).await
    }

    /// Its answers as a [`Stream`](futures_util::Stream), one by one as they come (as the
    /// JavaScript handle's `for await`): each is taken only when the stream is polled for it, so
    /// a stream dropped part way loses none (the rest stay queued). It ends when no answer will
    /// come: the kernel terminated with none left, was removed, or the runtime shut down. Any
    /// other refusal (a failed kernel, a lost device) is its last item. The stream holds a
    /// clone of the handle, so it may outlive this one: returned, stored or moved to a task. It is
    /// `Unpin`: `while let Some(answer) = answers.next().await` needs no `pin!`.
    pub fn answers(&self) -> impl futures_util::Stream<Item = Result<Out>> + Unpin + 'static
    where
        In: 'static,
        Out: 'static,
    {
        Box::pin(futures_util::stream::unfold(Some(self.clone()), |handle| async move {
            let handle = handle?;
            match handle.receive().await {
                Ok(answer) => Some((Ok(answer), Some(handle))),
                Err(error) if error.ends_answers() => None,
                Err(error) => Some((Err(error), None)),
            }
        }))
    }

    /// Its input as a [`Sink`](futures_util::Sink): each item is queued as
    /// [`send`](Self::send) queues it, waiting for room, so the kernel's queue is the sink's
    /// backpressure (`stream.map(Ok).forward(kernel.sink())`, or `SinkExt::send` on it). A
    /// refused message ends the sink with its error, the message in it; the sink is done then
    /// (used again, it panics, as futures' sinks do): take another with `sink()`. The sink holds
    /// a clone of the handle, and is `Unpin` (`SinkExt::send` on it needs no `pin!`).
    pub fn sink(&self) -> impl futures_util::Sink<In, Error = SendError<In>> + Unpin + 'static
    where
        In: 'static,
        Out: 'static,
    {
        Box::pin(futures_util::sink::unfold(self.clone(), |handle, message| async move {
            handle.send(message).await?;
            Ok(handle)
        }))
    }

    /// Queues `envelope`'s message with its header, waiting for room as long as it takes, and
    /// returns the header as sent (see [`crate::envelope`]). Refused only when the kernel does
    /// not take messages; the envelope comes back.
    ///
    /// # Errors
    /// A [`SendError`] with the envelope, for [`send`](Self::send)'s refusals, and
    /// `OutOfRange` for a header the runtime refuses (a source id not 1 to 128 bytes long, a
    /// timestamp too far ahead of the wall clock).
    pub async fn send_envelope(
        &self,
        envelope: MessageEnvelope<In>,
    ) -> Result<EnvelopeHeader, SendError<MessageEnvelope<In>>> {
        self.send_envelope_until(envelope, None).await.map_err(|(message, error)| SendError { message, error })
    }

    /// [`send_envelope`](Self::send_envelope), waiting up to `timeout` for room; the envelope
    /// comes back with the error, as [`send_timeout`](Self::send_timeout)'s message does.
    ///
    /// # Errors
    /// As [`send_timeout`](Self::send_timeout)'s, with the envelope in the error, and
    /// [`send_envelope`](Self::send_envelope)'s `OutOfRange` for a header it refuses.
    pub async fn send_envelope_timeout(
        &self,
        envelope: MessageEnvelope<In>,
        timeout: Duration,
    ) -> Result<EnvelopeHeader, SendTimeoutError<MessageEnvelope<In>>> {
        self.send_envelope_until(envelope, Some(timeout)).await.map_err(|(message, error)| match error {
            full @ Error::QueueFull { .. } => SendTimeoutError::Timeout(message, full),
            refused => SendTimeoutError::Refused(message, refused),
        })
    }

    async fn send_envelope_until(
        &self,
        envelope: MessageEnvelope<In>,
        timeout: Option<Duration>,
    ) -> Result<EnvelopeHeader, (MessageEnvelope<In>, Error)> {
        let bytes = bytemuck::bytes_of(&envelope.message);
        let pack = |layout: &MessageLayout, slot: &mut [u8]| copy_into(layout, bytes, slot);
        let id = match self.live_id() {
            Ok(id) => id,
            Err(error) => return Err((envelope, error)),
        };
        match self.pinned.send_enveloped(id, &envelope.header, timeout, &pack).await {
            Ok(sent) => Ok(sent),
            Err(error) => Err((envelope, self.pinned.count(&self.id, error))),
        }
    }

    /// The next answer with its envelope's header, waiting as long as it takes (an answer to
    /// a message sent without an envelope gets a header made now; see [`crate::envelope`]).
    ///
    /// # Errors
    /// As [`receive`](Self::receive)'s.
    pub async fn receive_envelope(&self) -> Result<MessageEnvelope<Out>> {
        self.receive_envelope_until(None).await
    }

    /// [`receive_envelope`](Self::receive_envelope), waiting up to `timeout` (then `Timeout`).
    ///
    /// # Errors
    /// As [`receive_timeout`](Self::receive_timeout)'s.
    pub async fn receive_envelope_timeout(&self, timeout: Duration) -> Result<MessageEnvelope<Out>> {
        self.receive_envelope_until(Some(timeout)).await
    }

    async fn receive_envelope_until(&self, timeout: Option<Duration>) -> Result<MessageEnvelope<Out>> {
        let read = |_: &MessageLayout, answer: &[u8]| bytemuck::pod_read_unaligned::<Out>(answer);
        let mut header = None;
        let taking = super::messaging::Taking::Take;
        let result = self.pinned.receive_one(self.live_id()?, timeout, read, Some(&mut header), taking).await;
        let result = result.map(|message| MessageEnvelope::with_header(message, header.expect("made when taken")));
        result.map_err(|error| self.pinned.count(&self.id, error))
    }

    /// Sends `message` and waits up to `timeout` for its own answer (matched by correlation
    /// id, however many calls are in flight).
    ///
    /// # Errors
    /// [`CallError::NotSent`] with the message when it was not queued: the queue stayed full
    /// for all of `timeout` (`QueueFull`), one of [`send`](Self::send)'s refusals, the kernel
    /// is connected onward (its answers go to the next stage: `InvalidArgument`), or it failed
    /// and waits for its device's recovery (`DeviceLost`). [`CallError::Unanswered`] when
    /// it was queued but no answer came within `timeout` (`Timeout`), the handler dropped it
    /// (`MessageDropped`), or the kernel stopped or lost its device first.
    pub async fn call(&self, message: In, timeout: Duration) -> Result<Out, CallError<In>> {
        let bytes = bytemuck::bytes_of(&message);
        let pack = |layout: &MessageLayout, slot: &mut [u8]| copy_into(layout, bytes, slot);
        let read = |_: &MessageLayout, answer: &[u8]| Ok(bytemuck::pod_read_unaligned::<Out>(answer));
        let id = match self.live_id() {
            Ok(id) => id,
            Err(error) => return Err(CallError::NotSent(message, error)),
        };
        match self.pinned.call_inner(id, Some(timeout), &pack, || {}, read).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(unanswered)) => Err(CallError::Unanswered(self.pinned.count(&self.id, unanswered))),
            Err(not_sent) => Err(CallError::NotSent(message, self.pinned.count(&self.id, not_sent))),
        }
    }
}

/// Copies a message whose layout was checked when the handle was typed.
fn copy_into(layout: &MessageLayout, message: &[u8], slot: &mut [u8]) -> Result<()> {
    debug_assert_eq!(layout.size(), message.len());
    slot.copy_from_slice(message);
    Ok(())
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::time::Duration;

    use crate::{BackendChoice, Error, KernelState, LaunchOptions, Result, Runtime, RuntimeOptions};

    /// What a handle's operations run on reaches its own launch only, whatever its `removed`
    /// flag said when an operation began: with the kernel removed and launched again under its
    /// id (on another thread, between the flag's check and the operation's lock, in the race
    /// this closes; here the flag is not consulted at all), every operation on the id through
    /// it is `KernelNotFound` and changes nothing.
    #[test]
    fn a_handles_operations_never_reach_a_launch_made_since_under_its_id() {
        let rt = pollster::block_on(Runtime::new(RuntimeOptions::default().with_backend(BackendChoice::Cpu))).unwrap();
        pollster::block_on(async {
            let old = rt.launch("doubler", LaunchOptions::default().with_auto_activate()).await.unwrap();
            let pinned = old.pinned.clone();
            rt.terminate("doubler", None).await.unwrap();
            rt.remove("doubler").unwrap();
            let new = rt.launch("doubler", LaunchOptions::default().with_auto_activate()).await.unwrap();
            let brief = Some(Duration::from_millis(50));
            let outcomes: Vec<(&str, Result<()>)> = vec![
                ("state", pinned.state("doubler").map(drop)),
                ("deactivate", pinned.deactivate("doubler").await),
                ("activate", pinned.activate_or_reactivate("doubler")),
                ("send", pinned.send_pod("doubler", &1i32, brief).await),
                ("try_receive", pinned.try_receive_with("doubler", |_, _| ()).map(drop)),
                ("receive", pinned.receive_pod::<i32>("doubler", brief).await.map(drop)),
                ("call", pinned.call_pod::<i32, i32>("doubler", &1, brief).await.map(drop)),
                ("metrics", pinned.kernel_metrics("doubler").map(drop)),
                ("terminate", pinned.terminate("doubler", brief).await),
            ];
            for (operation, outcome) in outcomes {
                assert!(matches!(outcome, Err(Error::KernelNotFound { .. })), "{operation}: {outcome:?}");
            }
            assert!(pinned.until_changed("doubler").unwrap().is_none(), "wait: the new launch is not its");
            // The new launch, untouched; the runtime's own calls reach it.
            assert_eq!(new.state().unwrap(), KernelState::Active);
            assert_eq!(new.metrics().unwrap().messages_sent, 0);
            assert_eq!(rt.call_pod::<i32, i32>("doubler", &21, Some(Duration::from_secs(5))).await.unwrap(), 42);
        });
    }
}

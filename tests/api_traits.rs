//! The public API as a downstream crate meets it, checked by the compiler (Rust API Guidelines:
//! C-SEND-SYNC, C-DEBUG, C-COMMON-TRAITS, C-GOOD-ERR): what moves between a multi-threaded
//! executor's threads (`tokio::spawn` asks `Send + 'static`, a shared `Arc` asks `Sync`), what
//! prints with `{:?}`, which value types compare, hash, copy and default, that every error goes
//! into `Box<dyn Error + Send + Sync>` (what `anyhow` and `?` in `main` ask), and that the streams
//! are `Unpin`, so `.next().await` needs no pinning. Each function but the one `#[test]` (the
//! kinds' `Display` texts) is compiled and never run: a type losing one of these traits fails the
//! build of this test.
#![cfg(not(target_arch = "wasm32"))]
#![allow(dead_code)]

use ringkernel_web::kernel::host::{HostRun, RunReport, SharedHostHandler};
use ringkernel_web::{
    codegen, degradation, devices, envelope, health, hlc, kernel, lifecycle, memory, message, AdapterSummary,
    AnswersComing, BackendChoice, BatchSendError, CallError, CircuitBreaker, CircuitBreakerConfig, CircuitState,
    CircuitStatus, DegradationManager, DeviceEvent, DeviceEventKind, DeviceFeature, DeviceHealth, Error, ErrorKind,
    GpuMemoryDashboard, HealthChecker, KernelHandle, KernelMigrator, KernelStatus, KernelTelemetry, KernelWatchdog,
    LatencySummary, LaunchOptions, MigrationReport, Runtime, RuntimeBuilder, RuntimeMetrics, RuntimeOptions,
    RuntimeSummary, SendError, SendTimeoutError, ShutdownReport, StaleKernel, Stall, TickTime, TryReceiveError,
    TrySendError, WatchdogAction, WatchdogConfig,
};

fn send_sync<T: Send + Sync + 'static>() {}
fn debug<T: std::fmt::Debug>() {}
fn value<T: std::fmt::Debug + Clone + PartialEq + Send + Sync + Unpin + 'static>() {}
fn key<T: Copy + Eq + std::hash::Hash + std::fmt::Debug + Send + Sync + 'static>() {}
fn error<E: std::error::Error + Send + Sync + 'static>() {}
fn boxed<E: Into<Box<dyn std::error::Error + Send + Sync>>>() {}
fn default<T: Default>() {}
fn unpin<T: Unpin>(_: &T) {}

/// The runtime, its handles and its operation objects can be shared between threads and moved
/// into spawned tasks; each prints something with `{:?}`.
fn the_runtime_and_its_handles_are_send_sync_and_debug() {
    fn each<T: Send + Sync + Clone + std::fmt::Debug + 'static>() {}
    each::<Runtime>();
    each::<KernelHandle>();
    each::<KernelHandle<i32, f32>>();
    each::<CircuitBreaker>();
    each::<KernelWatchdog>();
    each::<HealthChecker>();
    each::<GpuMemoryDashboard>();
    each::<DegradationManager>();
    each::<KernelMigrator>();
    each::<RuntimeBuilder>();
    each::<kernel::KernelDefinition>();
    each::<SharedHostHandler>();
    each::<message::MessageBuilder>();
    each::<codegen::GeneratedShader>();
    each::<codegen::FusedShader>();
    send_sync::<std::sync::Arc<dyn kernel::HostHandler>>();
    // The clock is `&mut` to use: it moves between threads, behind a `Mutex` to share.
    fn send<T: Send + std::fmt::Debug + Default + 'static>() {}
    send::<hlc::HybridClock>();
    send_sync::<std::sync::Mutex<hlc::HybridClock>>();
}

/// Options, reports, summaries and events: plain values that print, clone and compare.
fn options_reports_and_events_are_values() {
    value::<RuntimeOptions>();
    value::<LaunchOptions>();
    value::<CircuitBreakerConfig>();
    value::<WatchdogConfig>();
    value::<health::HealthThresholds>();
    value::<degradation::DegradationOptions>();
    value::<devices::DeviceSpec>();
    value::<devices::DeviceRequirements>();
    value::<envelope::EnvelopeHeader>();
    value::<envelope::MessageEnvelope<i32>>();
    value::<AdapterSummary>();
    value::<AnswersComing>();
    value::<CircuitStatus>();
    value::<DeviceEvent>();
    value::<DeviceHealth>();
    value::<KernelStatus>();
    value::<KernelTelemetry>();
    value::<LatencySummary>();
    value::<MigrationReport>();
    value::<RuntimeMetrics>();
    value::<RuntimeSummary>();
    value::<ShutdownReport>();
    value::<StaleKernel>();
    value::<TickTime>();
    value::<health::HealthReport>();
    value::<health::HealthIssue>();
    value::<health::HealthStatus>();
    value::<health::HealthSubject>();
    value::<memory::MemoryReport>();
    value::<memory::MemoryByPurpose>();
    value::<memory::MemoryAlertEvent>();
    value::<memory::DeviceMemoryLimits>();
    value::<degradation::DegradationStatus>();
    value::<degradation::DegradationSignals>();
    value::<devices::DeviceInfo>();
    value::<devices::Topology>();
    value::<kernel::StateSpec>();
    value::<kernel::StateValues>();
    value::<kernel::DispatchShape>();
    value::<RunReport>();
    value::<message::MessageLayout>();
    value::<message::Field>();
    value::<message::FieldType>();
    value::<message::Value>();
    value::<message::Vec3<f32>>();
    value::<lifecycle::IllegalTransition>();
    debug::<HostRun<'static>>();
    debug::<message::MessageRef<'static>>();
    // Options start from their defaults.
    default::<RuntimeOptions>();
    default::<LaunchOptions>();
    default::<RuntimeBuilder>();
    default::<CircuitBreakerConfig>();
    default::<WatchdogConfig>();
    default::<health::HealthThresholds>();
    default::<degradation::DegradationOptions>();
    default::<devices::DeviceSpec>();
    default::<devices::DeviceRequirements>();
    default::<envelope::EnvelopeHeader>();
}

/// Ids, kinds and states: copied, compared and used as map keys (`HashMap<ErrorKind, u64>`,
/// `HashSet<KernelState>`, counts by `DeviceEventKind`).
fn ids_kinds_and_states_are_keys() {
    key::<devices::DeviceId>();
    key::<memory::MemoryWatchId>();
    key::<hlc::HlcTimestamp>();
    key::<ErrorKind>();
    key::<lifecycle::KernelState>();
    key::<lifecycle::LifecycleState>();
    key::<lifecycle::KernelMode>();
    key::<lifecycle::Action>();
    key::<BackendChoice>();
    key::<devices::PowerPreference>();
    key::<devices::LoadBalancing>();
    key::<DeviceEventKind>();
    key::<DeviceFeature>();
    key::<CircuitState>();
    key::<WatchdogAction>();
    key::<degradation::DegradationLevel>();
    key::<degradation::DegradationReason>();
    key::<memory::MemoryPurpose>();
    key::<memory::MemoryPressureAlert>();
    key::<health::Severity>();
    key::<kernel::StateElement>();
    key::<message::Scalar>();
    key::<Stall>();
    key::<codegen::HandlerForm>();
}

/// Every error is a `std::error::Error + Send + Sync + 'static`, so it goes into
/// `Box<dyn Error + Send + Sync>` and `anyhow::Error`, the ones that hand a message back too
/// (when the message is `Debug + Send + Sync`).
fn every_error_is_a_send_sync_std_error() {
    error::<Error>();
    error::<BatchSendError>();
    error::<TryReceiveError>();
    error::<SendError<i32>>();
    error::<TrySendError<i32>>();
    error::<SendTimeoutError<i32>>();
    error::<CallError<i32>>();
    error::<SendError<envelope::MessageEnvelope<i32>>>();
    error::<message::FieldError>();
    error::<lifecycle::IllegalTransition>();
    boxed::<Error>();
    boxed::<CallError<i32>>();
    boxed::<lifecycle::IllegalTransition>();
}

/// A typed handle's answers, an untyped one's, and the runtime's device events are `Unpin`
/// streams: `while let Some(answer) = kernel.answers().next().await` compiles as it is, and
/// each can move to a spawned task.
fn the_streams_are_unpin_and_send(typed: &KernelHandle<i32, i32>, untyped: &KernelHandle, rt: &Runtime) {
    fn spawnable<T: Send + 'static>(t: T) -> T {
        t
    }
    unpin(&spawnable(typed.answers()));
    unpin(&spawnable(untyped.answers()));
    unpin(&spawnable(rt.device_events()));
    unpin(&spawnable(typed.sink()));
}

/// The kinds with a name print it with `{}` (C-COMMON-TRAITS), the same name `as_str` gives and
/// JavaScript sees: a log line or a metric label needs no `as_str()` of its own.
#[test]
fn named_kinds_display_their_names() {
    use ringkernel_web::memory::MemoryPressureAlert;
    use ringkernel_web::KernelMode;
    let shown = |kind: &dyn std::fmt::Display| kind.to_string();
    assert_eq!(shown(&DeviceEventKind::RecoveryFailed), DeviceEventKind::RecoveryFailed.as_str());
    assert_eq!(shown(&WatchdogAction::RecoverDevice), "recoverDevice");
    assert_eq!(shown(&MemoryPressureAlert::High), "high");
    assert_eq!(shown(&KernelMode::EventDriven), "event-driven");
    assert_eq!(KernelMode::parse(&KernelMode::Persistent.to_string()), Some(KernelMode::Persistent));
    // As the kinds that printed before did.
    assert_eq!(shown(&CircuitState::HalfOpen), CircuitState::HalfOpen.as_str());
    assert_eq!(shown(&ringkernel_web::KernelState::Active), "active");
}

/// What `tokio::spawn` asks (`Future + Send + 'static`), met the way a downstream task meets it:
/// a clone of the runtime or handle moved into an `async move` block around the operation.
fn operations_spawn_as_tasks(rt: &Runtime, typed: &KernelHandle<i32, i32>) {
    fn spawn<F: std::future::Future + Send + 'static>(_: F) {}
    let (rt, typed) = (rt.clone(), typed.clone());
    spawn({
        let rt = rt.clone();
        async move {
            let handle = rt.launch("doubler", LaunchOptions::default()).await?.typed::<i32, i32>()?;
            handle.send(1).await?;
            rt.receive("doubler", None).await?;
            rt.dispose().await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        }
    });
    spawn(async move {
        use futures_util::StreamExt;
        let mut answers = typed.answers();
        while let Some(answer) = answers.next().await {
            answer?;
        }
        typed.call(2, std::time::Duration::from_secs(1)).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    });
    spawn(async move {
        use futures_util::StreamExt;
        let mut events = rt.device_events();
        events.next().await
    });
}

//! Kernel lifecycle: the seven states and the one transition table every state change goes
//! through.
//!
//! ```text
//! CREATED ─launch→ LAUNCHED ─activate→ ACTIVE ⇄ DEACTIVATED (deactivate / reactivate)
//! LAUNCHED | ACTIVE | DEACTIVATED ─terminate→ TERMINATING ─finish (drained)→ TERMINATED
//! LAUNCHED | ACTIVE | DEACTIVATED | TERMINATING ─fail (device lost)→ FAILED
//! FAILED ─recover→ the state it failed in;  FAILED ─terminate→ TERMINATING
//! ```
//! The table is PyDotCompute's, plus `Failed`: the GPU device was lost and the kernel waits,
//! with its queued and unanswered messages, for `Runtime::recover` to relaunch it on a new
//! device. A terminated kernel never restarts; its id can be launched again once the runtime has
//! removed it (`Runtime::remove`).
//!
//! [`KernelState::step`] is the table; an illegal action is an [`IllegalTransition`], which the
//! runtime reports as a `KernelState` error naming the kernel. `Lifecycle` (internal) is one kernel's
//! place in the table, plus what a failed kernel must remember to come back.

use std::fmt;

/// Where a kernel is in its life. Explicit discriminants: the order is the lifecycle's, and
/// telemetry and metrics report it.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum KernelState {
    /// Being launched: its id is reserved while its WGSL compiles.
    Created = 0,
    /// Compiled, with its rings allocated; not dispatched until activated.
    Launched = 1,
    /// Dispatched by the tick (when its mode says it has work).
    Active = 2,
    /// Not dispatched; its input stays queued until reactivation.
    Deactivated = 3,
    /// Processing what is still queued before it stops.
    Terminating = 4,
    /// Stopped for good; [`Runtime::remove`](crate::Runtime::remove) frees its id.
    Terminated = 5,
    /// The device was lost; `recover` returns the kernel to the state it failed in.
    Failed = 6,
}

/// What a caller asks of a kernel. `Finish` (out of `Terminating`) and `Fail` (the device was
/// lost) are the runtime's own steps; `Recover` returns a failed kernel to where it was, which
/// the table cannot know, so the runtime keeps that state aside (see [`KernelState::next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Launch the kernel (`Created` → `Launched`).
    Launch,
    /// Start dispatching it (`Launched` → `Active`).
    Activate,
    /// Stop dispatching it, keeping its input (`Active` → `Deactivated`).
    Deactivate,
    /// Resume dispatching it (`Deactivated` → `Active`).
    Reactivate,
    /// Stop it once its queued messages are processed (→ `Terminating`).
    Terminate,
    /// End a termination once drained (`Terminating` or `Failed` → `Terminated`); the runtime's step.
    Finish,
    /// Queue a message for it (`send`, `send_batch`, `call`).
    Send,
    /// Wait for one of its answers.
    Receive,
    /// Forget a terminated kernel.
    Remove,
    /// Copy its state array back from the device.
    ReadState,
    /// Write values into its state array.
    WriteState,
    /// Route one kernel's answers into another's input.
    Connect,
    /// Move it to another device, live (its state is unchanged).
    Migrate,
    /// Mark it failed because the device was lost; the runtime's step.
    Fail,
    /// Return a failed kernel to the state it failed in.
    Recover,
}

impl KernelState {
    /// Every state, in lifecycle order.
    pub const ALL: [KernelState; 7] = [
        KernelState::Created,
        KernelState::Launched,
        KernelState::Active,
        KernelState::Deactivated,
        KernelState::Terminating,
        KernelState::Terminated,
        KernelState::Failed,
    ];

    /// The lowercase name used by the JavaScript API.
    pub fn as_str(self) -> &'static str {
        match self {
            KernelState::Created => "created",
            KernelState::Launched => "launched",
            KernelState::Active => "active",
            KernelState::Deactivated => "deactivated",
            KernelState::Terminating => "terminating",
            KernelState::Terminated => "terminated",
            KernelState::Failed => "failed",
        }
    }

    /// The transition table: where `action` leads from this state, or why it cannot.
    pub fn step(self, action: Action) -> Result<Next, IllegalTransition> {
        use Action::*;
        use KernelState::*;
        let to = match (self, action) {
            (Created, Launch) => Launched,
            (Launched, Activate) => Active,
            (Active, Deactivate) => Deactivated,
            (Deactivated, Reactivate) => Active,
            (Launched | Active | Deactivated | Failed, Terminate) => Terminating,
            (Terminating | Failed, Finish) => Terminated,
            (Launched | Active | Deactivated | Terminating, Fail) => Failed,
            // Back to where it failed: only the kernel knows (see `Lifecycle`).
            (Failed, Recover) => return Ok(Next::WhereItFailed),
            _ => return Err(IllegalTransition { state: self, action }),
        };
        Ok(Next::State(to))
    }

    /// Where `action` leads from this state when the table alone decides it: every legal
    /// action but `Recover` (which returns a kernel to the state it failed in, which only
    /// the kernel knows). `None` otherwise.
    pub fn next(self, action: Action) -> Option<KernelState> {
        match self.step(action) {
            Ok(Next::State(to)) => Some(to),
            _ => None,
        }
    }

    /// Whether messages may be queued for a kernel in this state. Deactivated and failed
    /// kernels keep accepting: their input waits on the host until reactivation or recovery.
    pub fn accepts_messages(self) -> bool {
        matches!(self, KernelState::Launched | KernelState::Active | KernelState::Deactivated | KernelState::Failed)
    }
}

impl serde::Serialize for KernelState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The runtime's own lifecycle (the seeds' `LifecycleState`): `Initializing` while
/// `Runtime::new` opens its device (a caller only ever gets a runtime that is `Running`),
/// `Running` while it takes work, `Draining` once [`drain`](crate::Runtime::drain) began (new
/// launches, sends and calls are refused; queued and in-flight work completes, answers stay
/// receivable), `Stopped` after [`complete_shutdown`](crate::Runtime::complete_shutdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum LifecycleState {
    /// Opening the device; not yet taking work.
    Initializing,
    /// Taking work.
    #[default]
    Running,
    /// Finishing what it has; refusing new work.
    Draining,
    /// Shut down; every operation that changes or waits on something is refused (queries
    /// answer with the final state).
    Stopped,
}

impl LifecycleState {
    /// Whether new launches, sends and calls are accepted (only while `Running`).
    pub fn is_accepting_work(self) -> bool {
        self == LifecycleState::Running
    }

    /// The state's name as JavaScript sees it: `initializing`, `running`, `draining`, `stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleState::Initializing => "initializing",
            LifecycleState::Running => "running",
            LifecycleState::Draining => "draining",
            LifecycleState::Stopped => "stopped",
        }
    }
}

impl fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The seeds' two execution modes. WebGPU has no dispatch that outlives a submit, so there is no
/// resident loop to choose between: in both modes pipelines, rings and state stay resident, and
/// the tick loop dispatches a kernel in each tick it has input, sent by the host or forwarded by
/// a connected kernel (so a kernel fed by the host alone runs exactly when sends arrive, and
/// nothing runs while nothing arrives). The mode is kept and reported (a handle's status,
/// telemetry, metrics) for code written against the seeds' API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KernelMode {
    /// The seeds' default: dispatched in each tick it has input.
    #[default]
    Persistent,
    /// The seeds' event-driven mode: scheduled as [`Persistent`](Self::Persistent) is.
    EventDriven,
}

impl KernelMode {
    /// The mode named `"persistent"` or `"event-driven"`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "persistent" => Some(KernelMode::Persistent),
            "event-driven" => Some(KernelMode::EventDriven),
            _ => None,
        }
    }

    /// The mode's name, as [`parse`](Self::parse) takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            KernelMode::Persistent => "persistent",
            KernelMode::EventDriven => "event-driven",
        }
    }
}

/// The mode's name, as [`as_str`](KernelMode::as_str) gives it and [`parse`](KernelMode::parse) takes it.
impl std::fmt::Display for KernelMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a legal action leads (see [`KernelState::step`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Next {
    /// This state.
    State(KernelState),
    /// The state the kernel was in when it failed.
    WhereItFailed,
}

/// An action the table refuses in a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct IllegalTransition {
    /// The state the kernel is in.
    pub state: KernelState,
    /// What was asked of it.
    pub action: Action,
}

/// One kernel's place in the lifecycle. Every change goes through the table; what the table
/// cannot know (where a failed kernel returns to) is kept here.
#[derive(Debug, Clone)]
pub(crate) struct Lifecycle {
    state: KernelState,
    /// For a failed kernel: the state it failed in, which recovery returns it to.
    failed_in: Option<KernelState>,
    /// Lost its device and waits for recovery to relaunch it: failed, or terminated while
    /// failed (then it is relaunched to drain).
    awaiting_device: bool,
}

impl Lifecycle {
    /// A kernel being launched (`Created`).
    pub fn new() -> Self {
        Lifecycle { state: KernelState::Created, failed_in: None, awaiting_device: false }
    }

    pub fn state(&self) -> KernelState {
        self.state
    }

    /// Applies `action` through the table and returns the new state.
    pub fn apply(&mut self, action: Action) -> Result<KernelState, IllegalTransition> {
        let to = match self.state.step(action)? {
            Next::State(to) => to,
            Next::WhereItFailed => self.failed_in.expect("a failed kernel remembers where it failed"),
        };
        match action {
            Action::Fail => {
                self.failed_in = Some(self.state);
                self.awaiting_device = true;
            }
            Action::Finish => {
                self.failed_in = None;
                self.awaiting_device = false;
            }
            Action::Recover | Action::Terminate => self.failed_in = None,
            _ => {}
        }
        self.state = to;
        Ok(to)
    }

    /// Whether the kernel is terminating, or failed while it was (recovery returns it there).
    pub fn terminating(&self) -> bool {
        self.state == KernelState::Terminating
            || (self.state == KernelState::Failed && self.failed_in == Some(KernelState::Terminating))
    }

    /// Whether the kernel lost its device and waits for recovery to relaunch it.
    pub fn awaiting_device(&self) -> bool {
        self.awaiting_device
    }

    /// Recovery gave the kernel a new device: a failed kernel returns to where it failed (a
    /// kernel terminated meanwhile stays `Terminating`, and drains).
    pub fn relaunched(&mut self) {
        if self.state == KernelState::Failed {
            // Matched, not `expect`ed: `expect` would link the error's `Debug` for a panic that
            // cannot come.
            if self.apply(Action::Recover).is_err() {
                unreachable!("failed kernels may recover");
            }
        }
        self.awaiting_device = false;
    }

    /// Whether the tick should dispatch the kernel: active, or draining while terminating.
    pub fn runs(&self) -> bool {
        matches!(self.state, KernelState::Active | KernelState::Terminating)
    }
}

impl fmt::Display for KernelState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Launch => "launch",
            Action::Activate => "activate",
            Action::Deactivate => "deactivate",
            Action::Reactivate => "reactivate",
            Action::Terminate => "terminate",
            Action::Finish => "finish terminating",
            Action::Send => "send",
            Action::Receive => "receive",
            Action::Remove => "remove",
            Action::ReadState => "read state",
            Action::WriteState => "write state",
            Action::Connect => "connect",
            Action::Migrate => "migrate",
            Action::Fail => "fail",
            Action::Recover => "recover",
        })
    }
}

/// As the runtime's `KernelState` error says it, without the kernel's id (see
/// [`IllegalTransition::for_kernel`] for the error that names it).
impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a kernel that is {} cannot {}", self.state, self.action)
    }
}

impl std::error::Error for IllegalTransition {}

#[cfg(test)]
mod tests {
    use super::*;
    use KernelState::*;

    /// A refusal of the table is an error of its own, for `?` into any `Box<dyn Error>`.
    #[test]
    fn an_illegal_transition_is_an_error_that_says_what_was_refused() {
        let refused = Terminated.step(Action::Activate).unwrap_err();
        assert_eq!(refused.to_string(), "a kernel that is terminated cannot activate");
        let boxed: Box<dyn std::error::Error + Send + Sync> = refused.into();
        assert!(boxed.source().is_none());
    }

    /// Every action that moves a kernel between states.
    const LIFECYCLE_ACTIONS: [Action; 8] = [
        Action::Launch,
        Action::Activate,
        Action::Deactivate,
        Action::Reactivate,
        Action::Terminate,
        Action::Finish,
        Action::Fail,
        Action::Recover,
    ];

    /// Every (state, action) pair of the lifecycle, checked against the table written out by hand
    /// from PyDotCompute's documentation.
    #[test]
    fn transition_matrix_matches_the_seed_table() {
        let legal: &[(KernelState, Action, Next)] = &[
            (Created, Action::Launch, Next::State(Launched)),
            (Launched, Action::Activate, Next::State(Active)),
            (Active, Action::Deactivate, Next::State(Deactivated)),
            (Deactivated, Action::Reactivate, Next::State(Active)),
            (Active, Action::Terminate, Next::State(Terminating)),
            (Deactivated, Action::Terminate, Next::State(Terminating)),
            (Launched, Action::Terminate, Next::State(Terminating)),
            (Terminating, Action::Finish, Next::State(Terminated)),
            (Launched, Action::Fail, Next::State(Failed)),
            (Active, Action::Fail, Next::State(Failed)),
            (Deactivated, Action::Fail, Next::State(Failed)),
            (Terminating, Action::Fail, Next::State(Failed)),
            (Failed, Action::Recover, Next::WhereItFailed),
            (Failed, Action::Terminate, Next::State(Terminating)),
            (Failed, Action::Finish, Next::State(Terminated)),
        ];
        let mut legal_seen = 0;
        for from in KernelState::ALL {
            for action in LIFECYCLE_ACTIONS {
                let expected = legal.iter().find(|(f, a, _)| *f == from && *a == action).map(|t| t.2);
                let got = from.step(action);
                match expected {
                    Some(to) => {
                        assert_eq!(got, Ok(to), "{from} --{action}-->");
                        legal_seen += 1;
                    }
                    None => assert_eq!(
                        got,
                        Err(IllegalTransition { state: from, action }),
                        "{from} --{action}--> must be refused"
                    ),
                }
            }
        }
        assert_eq!(legal_seen, legal.len());
    }

    /// The 7×7 state matrix: a state can reach another in one step only along the table
    /// (recovery's way back out of `Failed` goes where the kernel failed, checked below).
    #[test]
    fn state_to_state_reachability() {
        let mut edges = 0;
        for from in KernelState::ALL {
            for to in KernelState::ALL {
                let reachable = LIFECYCLE_ACTIONS.iter().any(|a| from.next(*a) == Some(to) && from != to);
                let expected = matches!(
                    (from, to),
                    (Created, Launched)
                        | (Launched, Active)
                        | (Active, Deactivated)
                        | (Deactivated, Active)
                        | (Launched | Active | Deactivated, Terminating)
                        | (Terminating | Failed, Terminated)
                        | (Launched | Active | Deactivated | Terminating, Failed)
                        | (Failed, Terminating)
                );
                assert_eq!(reachable, expected, "{from} -> {to}");
                edges += reachable as usize;
            }
        }
        assert_eq!(edges, 14);
    }

    #[test]
    fn terminated_is_final() {
        for action in [Action::Launch, Action::Activate, Action::Reactivate, Action::Terminate] {
            assert!(Terminated.next(action).is_none());
        }
    }

    /// A failed kernel comes back to where it failed; one terminated while failed drains.
    #[test]
    fn recovery_returns_where_the_kernel_failed() {
        for failed_in in [Launched, Active, Deactivated, Terminating] {
            let mut life = Lifecycle::new();
            life.apply(Action::Launch).unwrap();
            match failed_in {
                Active => drop(life.apply(Action::Activate)),
                Deactivated => {
                    life.apply(Action::Activate).unwrap();
                    life.apply(Action::Deactivate).unwrap();
                }
                Terminating => drop(life.apply(Action::Terminate)),
                _ => {}
            }
            assert_eq!(life.state(), failed_in);
            life.apply(Action::Fail).unwrap();
            assert!(life.awaiting_device());
            life.relaunched();
            assert_eq!(life.state(), failed_in);
            assert!(!life.awaiting_device());
        }
        let mut life = Lifecycle::new();
        life.apply(Action::Launch).unwrap();
        life.apply(Action::Fail).unwrap();
        life.apply(Action::Terminate).unwrap();
        assert!(life.awaiting_device(), "relaunched to drain");
        life.relaunched();
        assert_eq!(life.state(), Terminating);
    }

    #[test]
    fn refusal_names_state_and_action() {
        let err = Created.step(Action::Activate).unwrap_err();
        assert_eq!(err, IllegalTransition { state: Created, action: Action::Activate });
    }
}

//! Kernel lifecycle: the seven states and the one transition table every operation goes through.
//!
//! ```text
//! CREATED ─launch→ LAUNCHED ─activate→ ACTIVE ⇄ DEACTIVATED (deactivate / reactivate)
//! LAUNCHED | ACTIVE | DEACTIVATED ─terminate→ TERMINATING ─(drained)→ TERMINATED
//! LAUNCHED | ACTIVE | DEACTIVATED | TERMINATING ─(device lost)→ FAILED
//! FAILED ─recover→ the state it failed in;  FAILED ─terminate→ TERMINATING
//! ```
//! The table is PyDotCompute's, plus `Failed`: the GPU device was lost and the kernel waits,
//! with its queued and unanswered messages, for `Runtime::recover` to relaunch it on a new
//! device. A terminated kernel never restarts; its id can be launched again once the runtime has
//! removed it (`Runtime::remove`).

use std::fmt;

use crate::error::{Error, Result};

/// Where a kernel is in its life. Explicit discriminants: the order is the lifecycle's, and
/// telemetry and metrics report it.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KernelState {
    Created = 0,
    Launched = 1,
    Active = 2,
    Deactivated = 3,
    Terminating = 4,
    Terminated = 5,
    /// The device was lost; `recover` returns the kernel to the state it failed in.
    Failed = 6,
}

/// What a caller asks of a kernel. `Finish` (out of `Terminating`) and `Fail` (the device was
/// lost) are the runtime's own steps; `Recover` returns a failed kernel to where it was, which
/// the table cannot know, so the runtime keeps that state aside (see [`KernelState::next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Launch,
    Activate,
    Deactivate,
    Reactivate,
    Terminate,
    Finish,
    Send,
    Receive,
    Remove,
    ReadState,
    Connect,
    Fail,
    Recover,
}

impl KernelState {
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

    /// The transition table. `None` means the action is illegal in this state. `Recover` is
    /// legal only from `Failed` and leads back to the state the kernel failed in, which the
    /// runtime remembers; the table answers `Failed` for it.
    pub fn next(self, action: Action) -> Option<KernelState> {
        use Action::*;
        use KernelState::*;
        match (self, action) {
            (Created, Launch) => Some(Launched),
            (Launched, Activate) => Some(Active),
            (Active, Deactivate) => Some(Deactivated),
            (Deactivated, Reactivate) => Some(Active),
            (Launched | Active | Deactivated | Failed, Terminate) => Some(Terminating),
            (Terminating | Failed, Finish) => Some(Terminated),
            (Launched | Active | Deactivated | Terminating, Fail) => Some(Failed),
            (Failed, Recover) => Some(Failed),
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

/// How the pump schedules a kernel. WebGPU has no dispatch that outlives a submit, so both
/// modes keep pipelines, rings and state resident and are dispatched by the pump; they differ
/// in what wakes them: a persistent kernel runs every tick it has input from anywhere
/// (including, with `connect`, another kernel's output), an event-driven one only when the
/// host sends to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelMode {
    #[default]
    Persistent,
    EventDriven,
}

impl KernelMode {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "persistent" => Some(KernelMode::Persistent),
            "event-driven" => Some(KernelMode::EventDriven),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KernelMode::Persistent => "persistent",
            KernelMode::EventDriven => "event-driven",
        }
    }
}

/// Applies `action` to a kernel, or names the kernel, its state and the refused action.
pub fn transition(id: &str, state: KernelState, action: Action) -> Result<KernelState> {
    state.next(action).ok_or_else(|| Error::KernelState { id: id.to_owned(), state, action })
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
            Action::Connect => "connect",
            Action::Fail => "fail",
            Action::Recover => "recover",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use KernelState::*;

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
        let legal: &[(KernelState, Action, KernelState)] = &[
            (Created, Action::Launch, Launched),
            (Launched, Action::Activate, Active),
            (Active, Action::Deactivate, Deactivated),
            (Deactivated, Action::Reactivate, Active),
            (Active, Action::Terminate, Terminating),
            (Deactivated, Action::Terminate, Terminating),
            (Launched, Action::Terminate, Terminating),
            (Terminating, Action::Finish, Terminated),
            (Launched, Action::Fail, Failed),
            (Active, Action::Fail, Failed),
            (Deactivated, Action::Fail, Failed),
            (Terminating, Action::Fail, Failed),
            (Failed, Action::Recover, Failed),
            (Failed, Action::Terminate, Terminating),
            (Failed, Action::Finish, Terminated),
        ];
        let mut legal_seen = 0;
        for from in KernelState::ALL {
            for action in LIFECYCLE_ACTIONS {
                let expected = legal.iter().find(|(f, a, _)| *f == from && *a == action).map(|t| t.2);
                let got = transition("k", from, action);
                match expected {
                    Some(to) => {
                        assert_eq!(got, Ok(to), "{from} --{action}-->");
                        legal_seen += 1;
                    }
                    None => assert_eq!(
                        got,
                        Err(Error::KernelState { id: "k".into(), state: from, action }),
                        "{from} --{action}--> must be refused"
                    ),
                }
            }
        }
        assert_eq!(legal_seen, legal.len());
    }

    /// The 7×7 state matrix: a state can reach another in one step only along the table
    /// (recovery's way back out of `Failed` is the runtime's, not the table's).
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

    #[test]
    fn error_names_kernel_state_and_action() {
        let err = transition("doubler", Created, Action::Activate).unwrap_err();
        assert_eq!(err.name(), "KernelStateError");
        assert_eq!(err.to_string(), "kernel 'doubler' is created: cannot activate");
    }
}

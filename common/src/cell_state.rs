//! A cell's state, derived from its chain of jobs: the one definition the coordinator, the
//! report and the clients share (`Cell.state` on the wire is [`CellState::as_str`]).

use serde::Serialize;

use crate::state::JobState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellState {
    Blocked,
    Ready,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl CellState {
    pub const ALL: [CellState; 6] = [
        Self::Blocked,
        Self::Ready,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    /// The API's name of the state (`blocked`, `ready`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blocked => "blocked",
            Self::Ready => "ready",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// The inverse of [`CellState::as_str`]; `None` if unknown.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    /// Folds the states of a chain: any failed → failed; else any cancelled → cancelled; all
    /// succeeded → succeeded; any leased → running; any ready → ready; else blocked.
    pub fn of_chain(states: impl IntoIterator<Item = JobState>) -> Self {
        let (mut failed, mut cancelled, mut leased, mut ready, mut all_done) =
            (false, false, false, false, true);
        for s in states {
            failed |= s == JobState::Failed;
            cancelled |= s == JobState::Cancelled;
            leased |= s == JobState::Leased;
            ready |= s == JobState::Ready;
            all_done &= s == JobState::Succeeded;
        }
        match () {
            _ if failed => Self::Failed,
            _ if cancelled => Self::Cancelled,
            _ if all_done => Self::Succeeded,
            _ if leased => Self::Running,
            _ if ready => Self::Ready,
            _ => Self::Blocked,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobState::*;

    #[test]
    fn chain_state_folds_by_precedence() {
        assert_eq!(
            CellState::of_chain([Succeeded, Failed, Blocked]),
            CellState::Failed
        );
        assert_eq!(
            CellState::of_chain([Succeeded, Cancelled]),
            CellState::Cancelled
        );
        assert_eq!(
            CellState::of_chain([Succeeded, Succeeded]),
            CellState::Succeeded
        );
        assert_eq!(
            CellState::of_chain([Succeeded, Leased, Blocked]),
            CellState::Running
        );
        assert_eq!(CellState::of_chain([Ready, Blocked]), CellState::Ready);
        assert_eq!(CellState::of_chain([Blocked]), CellState::Blocked);
    }

    #[test]
    fn names_round_trip() {
        for s in CellState::ALL {
            assert_eq!(CellState::parse(s.as_str()), Some(s));
        }
        assert_eq!(CellState::parse("done"), None);
    }
}

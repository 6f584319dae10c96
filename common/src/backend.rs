//! Trainer backends as a scheduling requirement: what a burn job needs from the worker that
//! runs it, and what a worker offers.
//!
//! A grid's `[executor] backend` (or `stilts run --backend`) names a backend *family*:
//! `cpu` (burn-flex), `libtorch-cpu` or `libtorch-cuda`. The device index a worker trains on
//! (`libtorch-cuda:1`) is where it runs, not what the job needs. A burn grid without a backend
//! runs on any worker with a trainer. Command jobs run on every worker.
//!
//! Workers announce their executors in `RegisterWorkerRequest.backend` as a `+`-separated list:
//! `command` always, then `burn-cpu`, `burn-libtorch-cpu` or `burn-libtorch-cuda[:N]` when the
//! binary has the trainer (see [`Offer::parse`]).

use std::fmt;

/// A trainer backend family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrainerBackend {
    /// burn-flex, pure Rust, on the CPU.
    Cpu,
    /// LibTorch on the CPU (binary built with the `libtorch` feature).
    LibTorchCpu,
    /// LibTorch on CUDA GPUs (binary built with the `libtorch` feature).
    LibTorchCuda,
}

impl TrainerBackend {
    pub const ALL: [TrainerBackend; 3] = [Self::Cpu, Self::LibTorchCpu, Self::LibTorchCuda];

    /// The canonical name, as written in grids.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::LibTorchCpu => "libtorch-cpu",
            Self::LibTorchCuda => "libtorch-cuda",
        }
    }

    /// Parses a grid or command-line backend: `cpu` (or `flex`), `libtorch-cpu`,
    /// `libtorch-cuda`, `libtorch-cuda:N` or `cuda`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cpu" | "flex" => Some(Self::Cpu),
            "libtorch-cpu" => Some(Self::LibTorchCpu),
            "libtorch-cuda" | "cuda" => Some(Self::LibTorchCuda),
            other => other
                .strip_prefix("libtorch-cuda:")
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .map(|_| Self::LibTorchCuda),
        }
    }

    /// Needs the binary's `libtorch` cargo feature.
    pub fn needs_libtorch(self) -> bool {
        self != Self::Cpu
    }

    /// One line on how to get a binary that has this backend.
    pub fn how_to_get(self) -> &'static str {
        match self {
            Self::Cpu => "any stilts binary built with the default `trainer` feature has it",
            Self::LibTorchCpu | Self::LibTorchCuda => {
                "build stilts with `--features libtorch` against PyTorch's libtorch \
                 (README \"GPU build\"), or run the grid with `--backend cpu`"
            }
        }
    }
}

impl fmt::Display for TrainerBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a job needs from its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Need {
    /// A command-executor job: every worker runs it.
    Command,
    /// A burn job: a worker with the trainer, on this backend family if one is named.
    Trainer(Option<TrainerBackend>),
}

impl Need {
    /// Every need, in [`Need::class`] order.
    pub const ALL: [Need; 5] = [
        Self::Command,
        Self::Trainer(None),
        Self::Trainer(Some(TrainerBackend::Cpu)),
        Self::Trainer(Some(TrainerBackend::LibTorchCpu)),
        Self::Trainer(Some(TrainerBackend::LibTorchCuda)),
    ];

    /// A small dense number for indexes (the position in [`Need::ALL`]).
    pub fn class(self) -> u8 {
        match self {
            Self::Command => 0,
            Self::Trainer(None) => 1,
            Self::Trainer(Some(TrainerBackend::Cpu)) => 2,
            Self::Trainer(Some(TrainerBackend::LibTorchCpu)) => 3,
            Self::Trainer(Some(TrainerBackend::LibTorchCuda)) => 4,
        }
    }

    /// The need of a burn job of a sweep whose backend is `backend` ("" = any).
    pub fn of_burn_sweep(backend: &str) -> Self {
        Self::Trainer(TrainerBackend::parse(backend))
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Command => f.write_str("any worker"),
            Self::Trainer(None) => f.write_str("a worker with the burn trainer"),
            Self::Trainer(Some(b)) => write!(f, "a worker with backend {b}"),
        }
    }
}

/// What a worker offers, parsed from its announced backend string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offer {
    /// The trainer's backend family; `None` for a binary without the trainer.
    pub trainer: Option<TrainerBackend>,
}

impl Offer {
    /// Parses `command+burn-cpu`, `command+burn-libtorch-cuda:0`, `command`, … Unknown parts
    /// are ignored (a newer worker may announce more).
    pub fn parse(announced: &str) -> Self {
        let trainer = announced
            .split('+')
            .filter_map(|part| part.trim().strip_prefix("burn-"))
            .find_map(TrainerBackend::parse);
        Self { trainer }
    }

    /// The announcement of a worker whose trainer runs `device` (e.g. `libtorch-cuda:0`).
    pub fn announce(device: Option<&str>) -> String {
        match device {
            Some(d) => format!("command+burn-{d}"),
            None => "command".to_string(),
        }
    }

    pub fn can_run(self, need: Need) -> bool {
        match need {
            Need::Command => true,
            Need::Trainer(None) => self.trainer.is_some(),
            Need::Trainer(Some(b)) => self.trainer == Some(b),
        }
    }

    /// The needs this worker serves, in class order.
    pub fn serves(self) -> impl Iterator<Item = Need> {
        Need::ALL.into_iter().filter(move |n| self.can_run(*n))
    }
}

impl fmt::Display for Offer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.trainer {
            Some(b) => write!(f, "{b}"),
            None => f.write_str("no trainer"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_grid_names() {
        assert_eq!(TrainerBackend::parse("cpu"), Some(TrainerBackend::Cpu));
        assert_eq!(TrainerBackend::parse("flex"), Some(TrainerBackend::Cpu));
        assert_eq!(
            TrainerBackend::parse("libtorch-cuda:3"),
            Some(TrainerBackend::LibTorchCuda)
        );
        assert_eq!(TrainerBackend::parse("libtorch-cuda:"), None);
        assert_eq!(TrainerBackend::parse("libtorch-cuda:x"), None);
        assert_eq!(TrainerBackend::parse("tpu"), None);
        for b in TrainerBackend::ALL {
            assert_eq!(TrainerBackend::parse(b.as_str()), Some(b));
        }
    }

    #[test]
    fn classes_are_dense_and_ordered() {
        for (i, n) in Need::ALL.into_iter().enumerate() {
            assert_eq!(n.class() as usize, i);
        }
    }

    #[test]
    fn offers_match_needs_exactly() {
        let cpu = Offer::parse("command+burn-cpu");
        let cuda = Offer::parse("command+burn-libtorch-cuda:1");
        let none = Offer::parse("command");
        assert_eq!(cpu.trainer, Some(TrainerBackend::Cpu));
        assert_eq!(cuda.trainer, Some(TrainerBackend::LibTorchCuda));
        assert_eq!(none.trainer, None);
        let cuda_need = Need::Trainer(Some(TrainerBackend::LibTorchCuda));
        // Every (offer, need) pair, spelled out.
        let table = [
            (cpu, Need::Command, true),
            (cpu, Need::Trainer(None), true),
            (cpu, Need::Trainer(Some(TrainerBackend::Cpu)), true),
            (cpu, cuda_need, false),
            (cuda, Need::Command, true),
            (cuda, Need::Trainer(None), true),
            (cuda, Need::Trainer(Some(TrainerBackend::Cpu)), false),
            (cuda, cuda_need, true),
            (none, Need::Command, true),
            (none, Need::Trainer(None), false),
            (none, Need::Trainer(Some(TrainerBackend::Cpu)), false),
            (none, cuda_need, false),
        ];
        for (offer, need, ok) in table {
            assert_eq!(offer.can_run(need), ok, "{offer} runs {need}?");
        }
        assert_eq!(
            Offer::parse(&Offer::announce(Some("libtorch-cpu"))).trainer,
            Some(TrainerBackend::LibTorchCpu)
        );
        assert_eq!(cpu.serves().count(), 3);
    }
}

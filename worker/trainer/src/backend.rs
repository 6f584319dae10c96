//! Run-time backend selection. The pure-Rust CPU backend (burn-flex) is always built; LibTorch
//! (burn-tch, CPU or CUDA) only with the crate feature `libtorch`.

use burn::prelude::Device;

use crate::error::{Result, TrainerError};

/// Which device jobs run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// burn-flex on the CPU (`"cpu"` or `"flex"`).
    Flex,
    /// LibTorch on the CPU (`"libtorch-cpu"`); feature `libtorch`.
    LibTorchCpu,
    /// LibTorch on CUDA GPU `n` (`"libtorch-cuda"` = GPU 0, `"libtorch-cuda:N"`); feature
    /// `libtorch`.
    LibTorchCuda(usize),
}

impl Backend {
    /// Parses the `[executor] backend` string.
    pub fn parse(s: &str) -> Result<Self> {
        let backend = match s {
            "cpu" | "flex" => Self::Flex,
            "libtorch-cpu" => Self::LibTorchCpu,
            "libtorch-cuda" | "cuda" => Self::LibTorchCuda(0),
            other => match other
                .strip_prefix("libtorch-cuda:")
                .map(str::parse::<usize>)
            {
                Some(Ok(n)) => Self::LibTorchCuda(n),
                _ => {
                    return Err(TrainerError::Config(format!(
                        "unknown backend {other:?} (cpu, libtorch-cpu, libtorch-cuda[:N])"
                    )));
                }
            },
        };
        if backend != Self::Flex && !cfg!(feature = "libtorch") {
            return Err(TrainerError::Config(format!(
                "backend {s:?} needs a build with the cargo feature `libtorch`"
            )));
        }
        Ok(backend)
    }

    /// This backend on CUDA GPU `gpu` when one is given (a worker packing jobs onto GPUs chose
    /// it): `LibTorchCuda(_)` becomes `LibTorchCuda(gpu)`; other backends stay as they are.
    pub fn on_gpu(self, gpu: Option<u32>) -> Self {
        match (self, gpu) {
            (Self::LibTorchCuda(_), Some(n)) => Self::LibTorchCuda(n as usize),
            (other, _) => other,
        }
    }

    /// The name announced to the coordinator.
    pub fn name(&self) -> String {
        match self {
            Self::Flex => "burn-cpu".into(),
            Self::LibTorchCpu => "burn-libtorch-cpu".into(),
            Self::LibTorchCuda(n) => format!("burn-libtorch-cuda:{n}"),
        }
    }

    /// The device (without autodiff) this backend computes on.
    pub fn device(&self) -> Device {
        match self {
            Self::Flex => Device::flex(),
            #[cfg(feature = "libtorch")]
            #[allow(deprecated)]
            // burn-tch is deprecated upstream but the only CUDA path here
            Self::LibTorchCpu => Device::libtorch(),
            #[cfg(feature = "libtorch")]
            #[allow(deprecated)]
            Self::LibTorchCuda(n) => Device::libtorch_cuda(*n),
            #[cfg(not(feature = "libtorch"))]
            Self::LibTorchCpu | Self::LibTorchCuda(_) => {
                unreachable!("parse() refuses libtorch backends without the feature")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_backends() {
        assert_eq!(Backend::parse("cpu").unwrap(), Backend::Flex);
        assert!(Backend::parse("tpu").is_err());
        assert_eq!(
            Backend::LibTorchCuda(0).on_gpu(Some(3)),
            Backend::LibTorchCuda(3)
        );
        assert_eq!(
            Backend::LibTorchCuda(2).on_gpu(None),
            Backend::LibTorchCuda(2)
        );
        assert_eq!(Backend::Flex.on_gpu(Some(1)), Backend::Flex);
        assert_eq!(Backend::LibTorchCpu.on_gpu(Some(1)), Backend::LibTorchCpu);
        if !cfg!(feature = "libtorch") {
            let err = Backend::parse("libtorch-cuda:1").unwrap_err().to_string();
            assert!(err.contains("feature `libtorch`"), "{err}");
        }
    }
}

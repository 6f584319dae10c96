//! Progress of a running job, as executors report it and heartbeats carry it to the coordinator.

/// Progress a running job reports. `loss` is NaN while no loss is known (the wire form says the
/// same); two progresses with NaN losses compare equal.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Training steps done so far.
    pub step: u64,
    /// Total steps (0 = unknown).
    pub total: u64,
    /// Last training loss (NaN when none).
    pub loss: f64,
    /// Free-form phase, e.g. "train", "eval de".
    pub phase: String,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            step: 0,
            total: 0,
            loss: f64::NAN,
            phase: String::new(),
        }
    }
}

impl PartialEq for Progress {
    fn eq(&self, other: &Self) -> bool {
        let same_loss = self.loss == other.loss || (self.loss.is_nan() && other.loss.is_nan());
        self.step == other.step
            && self.total == other.total
            && same_loss
            && self.phase == other.phase
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_has_no_loss_and_equals_itself() {
        let p = Progress::default();
        assert!(p.loss.is_nan());
        assert_eq!(p, Progress::default());
        assert_ne!(
            p,
            Progress {
                loss: 0.5,
                ..Progress::default()
            }
        );
    }
}

//! Progress lines in a command's stdout. A job reports progress by printing lines like
//!
//! ```text
//! STILTS_PROGRESS step=120 total=2000 loss=0.4312 phase=train
//! ```
//!
//! Every field is optional; a field not given keeps its last value; unknown fields and values
//! that do not parse are ignored. The lines stay in `stdout.log` like any other output.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::mpsc::Sender;

use tracing::debug;

use crate::executor::Progress;

/// The marker a progress line starts with.
pub const PROGRESS_MARKER: &str = "STILTS_PROGRESS";

/// Longest line examined for the marker; longer lines are still logged in full.
const MAX_LINE: usize = 4096;

/// Applies one stdout line to `progress`. Returns whether it was a progress line.
pub fn apply_progress_line(line: &str, progress: &mut Progress) -> bool {
    let Some(rest) = line.trim().strip_prefix(PROGRESS_MARKER) else {
        return false;
    };
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return false;
    }
    for field in rest.split_whitespace() {
        let Some((name, value)) = field.split_once('=') else {
            continue;
        };
        match name {
            "step" => value.parse().map(|v| progress.step = v).unwrap_or(()),
            "total" => value.parse().map(|v| progress.total = v).unwrap_or(()),
            "loss" => value.parse().map(|v| progress.loss = v).unwrap_or(()),
            "phase" => progress.phase = value.to_string(),
            _ => {}
        }
    }
    true
}

/// Copies a child's stdout into `log` byte for byte and sends every progress update it finds.
/// Runs on its own thread until the pipe closes; `\r` ends a line as well as `\n`.
pub(crate) fn pump_stdout(stdout: impl Read, mut log: File, updates: Sender<Progress>) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::with_capacity(256);
    let mut progress = Progress::default();
    let mut log_ok = true;
    loop {
        let chunk = match reader.fill_buf() {
            Ok([]) => break,
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                debug!(error = %e, "reading job stdout failed");
                break;
            }
        };
        if log_ok && log.write_all(chunk).is_err() {
            log_ok = false;
        }
        for &b in chunk {
            if b == b'\n' || b == b'\r' {
                let text = String::from_utf8_lossy(&line);
                // A closed receiver is fine: keep draining so the child never blocks on a full pipe.
                if apply_progress_line(&text, &mut progress) {
                    let _ = updates.send(progress.clone());
                }
                line.clear();
            } else if line.len() < MAX_LINE {
                line.push(b);
            }
        }
        let n = chunk.len();
        reader.consume(n);
    }
    let _ = log.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_keeps_missing_ones() {
        let mut p = Progress::default();
        assert!(apply_progress_line(
            "STILTS_PROGRESS step=3 total=10 loss=0.5 phase=train",
            &mut p
        ));
        assert_eq!(
            p,
            Progress {
                step: 3,
                total: 10,
                loss: 0.5,
                phase: "train".into()
            }
        );
        assert!(apply_progress_line(
            "  STILTS_PROGRESS step=4 loss=oops extra=1 junk",
            &mut p
        ));
        assert_eq!(
            p,
            Progress {
                step: 4,
                total: 10,
                loss: 0.5,
                phase: "train".into()
            }
        );
    }

    #[test]
    fn other_lines_are_not_progress() {
        let mut p = Progress::default();
        assert!(!apply_progress_line("epoch 1 step=3", &mut p));
        assert!(!apply_progress_line("STILTS_PROGRESSION step=3", &mut p));
        assert_eq!(p, Progress::default());
    }

    #[test]
    fn pump_logs_everything_and_sends_updates() {
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("stdout.log");
        let input = b"hello\nSTILTS_PROGRESS step=1 total=2\rSTILTS_PROGRESS step=2\nbye";
        let (tx, rx) = std::sync::mpsc::channel();
        pump_stdout(&input[..], File::create(&log_path).unwrap(), tx);
        assert_eq!(std::fs::read(&log_path).unwrap(), input);
        let steps: Vec<u64> = rx.iter().map(|p| p.step).collect();
        assert_eq!(steps, vec![1, 2]);
    }
}

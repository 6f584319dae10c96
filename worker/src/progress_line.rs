//! Progress lines in a command's stdout. A job reports progress by printing lines like
//!
//! ```text
//! STILTS_PROGRESS step=120 total=2000 loss=0.4312 phase=train
//! ```
//!
//! Every field is optional; a field not given keeps its last value; unknown fields and values
//! that do not parse are ignored. The lines stay in `stdout.log` like any other output.
//!
//! A training job reports its curve with metric lines:
//!
//! ```text
//! STILTS_METRIC step=120 loss=0.4312 lr=2e-5 grad_norm=1.7
//! STILTS_METRIC step=500 dev=81.2
//! ```
//!
//! `step` is required; `loss`, `lr`, `grad_norm` and `dev` (the dev metric of an evaluation) are
//! optional numbers, `nan` and `inf` included (such a point is kept and flagged). A malformed metric
//! line (no step, an unknown field, a value that is not a number) is ignored with a warning naming
//! the line; it never fails the job.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::mpsc::Sender;

use tracing::debug;

use stilts_common::series::Point;

use crate::executor::Progress;

/// The marker a progress line starts with.
pub const PROGRESS_MARKER: &str = "STILTS_PROGRESS";

/// The marker a metric (curve point) line starts with.
pub const METRIC_MARKER: &str = "STILTS_METRIC";

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

/// Parses one stdout line as a curve point. `None`: not a metric line. `Some(Err(why))`: a
/// malformed metric line, to be ignored with a warning that quotes `why`.
pub fn parse_metric_line(line: &str) -> Option<Result<Point, String>> {
    let rest = line.trim().strip_prefix(METRIC_MARKER)?;
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return None;
    }
    Some(parse_metric_fields(rest))
}

fn parse_metric_fields(fields: &str) -> Result<Point, String> {
    let mut point = Point::default();
    let mut step = None;
    for field in fields.split_whitespace() {
        let Some((name, value)) = field.split_once('=') else {
            return Err(format!("field {field:?} is not name=value"));
        };
        let number = || {
            value
                .parse::<f64>()
                .map_err(|_| format!("{name}={value:?} is not a number"))
        };
        match name {
            "step" => {
                let parsed = value
                    .parse::<u64>()
                    .map_err(|_| format!("step={value:?} is not a whole number"))?;
                step = Some(parsed);
            }
            "loss" => point.loss = Some(number()?),
            "lr" => point.lr = Some(number()?),
            "grad_norm" => point.grad_norm = Some(number()?),
            "dev" => point.dev = Some(number()?),
            other => {
                return Err(format!(
                    "unknown field {other:?} (known: step, loss, lr, grad_norm, dev)"
                ));
            }
        }
    }
    point.step = step.ok_or_else(|| "no step= field".to_string())?;
    if point.loss.is_none()
        && point.lr.is_none()
        && point.grad_norm.is_none()
        && point.dev.is_none()
    {
        return Err("no value (loss, lr, grad_norm or dev)".to_string());
    }
    Ok(point)
}

/// What a child's stdout tells the executor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StdoutUpdate {
    /// The progress after a `STILTS_PROGRESS` line.
    Progress(Progress),
    /// A curve point from a `STILTS_METRIC` line.
    Point(Point),
    /// A malformed `STILTS_METRIC` line (1-based line number of stdout), ignored.
    Malformed { line: u64, why: String },
}

/// Copies a child's stdout into `log` byte for byte and sends every progress update, curve point
/// and malformed metric line it finds. Runs on its own thread until the pipe closes; `\r` ends a
/// line as well as `\n` (line numbers count `\n` only).
pub(crate) fn pump_stdout(stdout: impl Read, mut log: File, updates: Sender<StdoutUpdate>) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::with_capacity(256);
    let mut line_no = 1u64;
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
                    let _ = updates.send(StdoutUpdate::Progress(progress.clone()));
                } else if let Some(parsed) = parse_metric_line(&text) {
                    let _ = updates.send(match parsed {
                        Ok(point) => StdoutUpdate::Point(point),
                        Err(why) => StdoutUpdate::Malformed { line: line_no, why },
                    });
                }
                line.clear();
                if b == b'\n' {
                    line_no += 1;
                }
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
    fn metric_lines_parse_and_malformed_ones_say_why() {
        let p = parse_metric_line("STILTS_METRIC step=120 loss=0.43 lr=2e-5 grad_norm=1.5")
            .unwrap()
            .unwrap();
        assert_eq!(
            p,
            Point {
                step: 120,
                loss: Some(0.43),
                lr: Some(2e-5),
                grad_norm: Some(1.5),
                dev: None
            }
        );
        let dev = parse_metric_line(" STILTS_METRIC step=500 dev=81.2")
            .unwrap()
            .unwrap();
        assert_eq!((dev.step, dev.dev, dev.loss), (500, Some(81.2), None));
        let nan = parse_metric_line("STILTS_METRIC step=7 loss=nan")
            .unwrap()
            .unwrap();
        assert!(nan.loss_non_finite());
        let inf = parse_metric_line("STILTS_METRIC step=8 loss=inf")
            .unwrap()
            .unwrap();
        assert_eq!(inf.loss, Some(f64::INFINITY));
        for (line, why) in [
            ("STILTS_METRIC loss=0.5", "no step"),
            ("STILTS_METRIC step=x loss=0.5", "step=\"x\""),
            ("STILTS_METRIC step=3 loss=oops", "loss=\"oops\""),
            ("STILTS_METRIC step=3 acc=1", "unknown field \"acc\""),
            ("STILTS_METRIC step=3 junk", "\"junk\" is not name=value"),
            ("STILTS_METRIC step=3", "no value"),
        ] {
            let err = parse_metric_line(line).unwrap().unwrap_err();
            assert!(err.contains(why), "{line}: {err}");
        }
        assert!(parse_metric_line("STILTS_METRICS step=1 loss=1").is_none());
        assert!(parse_metric_line("STILTS_PROGRESS step=1").is_none());
    }

    #[test]
    fn pump_logs_everything_and_sends_updates() {
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("stdout.log");
        let input = b"hello\nSTILTS_PROGRESS step=1 total=2\rSTILTS_PROGRESS step=2\n\
            STILTS_METRIC step=2 loss=0.5\nSTILTS_METRIC step=x\nbye";
        let (tx, rx) = std::sync::mpsc::channel();
        pump_stdout(&input[..], File::create(&log_path).unwrap(), tx);
        assert_eq!(std::fs::read(&log_path).unwrap(), input);
        let updates: Vec<StdoutUpdate> = rx.iter().collect();
        let steps: Vec<u64> = updates
            .iter()
            .filter_map(|u| match u {
                StdoutUpdate::Progress(p) => Some(p.step),
                _ => None,
            })
            .collect();
        assert_eq!(steps, vec![1, 2]);
        assert_eq!(
            updates[2],
            StdoutUpdate::Point(Point {
                step: 2,
                loss: Some(0.5),
                ..Point::default()
            })
        );
        assert!(
            matches!(&updates[3], StdoutUpdate::Malformed { line: 4, why } if why.contains("step=\"x\"")),
            "{:?}",
            updates[3]
        );
    }
}

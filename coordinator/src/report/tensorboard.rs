//! TensorBoard event files for training curves: one run directory per job attempt, one scalar tag
//! per metric (`train/loss`, `train/lr`, `train/grad_norm`, `dev/metric`).
//!
//! Format: a TFRecord file (each record is its length as u64 little-endian, the masked CRC-32C of
//! those 8 bytes, the data, the masked CRC-32C of the data) of `tensorflow.Event` protobufs. The
//! first record carries `file_version = "brain.Event:2"`; every other record is one scalar:
//! `Event { wall_time = 1 (double), step = 2 (int64), summary = 5 { value = 1 { tag = 1 (string),
//! simple_value = 2 (float) } } }`. The five fields are encoded by hand below: that is all of the
//! protobuf this needs.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use stilts_common::series::Point;

/// Reads one value of a point.
pub type Field = fn(&Point) -> Option<f64>;

/// Scalar tags written for a curve, with the point field each one reads.
pub const TAGS: [(&str, Field); 4] = [
    ("train/loss", |p| p.loss),
    ("train/lr", |p| p.lr),
    ("train/grad_norm", |p| p.grad_norm),
    ("dev/metric", |p| p.dev),
];

/// Writes one run's event file under `run_dir` (created if missing) and returns its path. Every
/// point gets `wall_time` (seconds since the Unix epoch): stores keep steps, not times of points.
/// NaN and infinite values are written as they are (TensorBoard shows them as such).
pub fn write_run(run_dir: &Path, points: &[Point], wall_time: f64) -> io::Result<PathBuf> {
    std::fs::create_dir_all(run_dir)?;
    let path = run_dir.join(format!("events.out.tfevents.{}.stilts", wall_time as u64));
    let mut out = io::BufWriter::new(std::fs::File::create(&path)?);
    write_record(&mut out, &version_event(wall_time))?;
    for point in points {
        for (tag, read) in TAGS {
            if let Some(value) = read(point) {
                write_record(
                    &mut out,
                    &scalar_event(wall_time, point.step, tag, value as f32),
                )?;
            }
        }
    }
    out.flush()?;
    Ok(path)
}

/// One TFRecord: length, masked CRC of the length, data, masked CRC of the data.
fn write_record(out: &mut impl Write, data: &[u8]) -> io::Result<()> {
    let len = (data.len() as u64).to_le_bytes();
    out.write_all(&len)?;
    out.write_all(&masked_crc32c(&len).to_le_bytes())?;
    out.write_all(data)?;
    out.write_all(&masked_crc32c(data).to_le_bytes())
}

fn version_event(wall_time: f64) -> Vec<u8> {
    let mut event = Vec::new();
    put_key(&mut event, 1, 1);
    event.extend_from_slice(&wall_time.to_le_bytes());
    put_bytes(&mut event, 3, b"brain.Event:2");
    event
}

fn scalar_event(wall_time: f64, step: u64, tag: &str, value: f32) -> Vec<u8> {
    let mut summary_value = Vec::new();
    put_bytes(&mut summary_value, 1, tag.as_bytes());
    put_key(&mut summary_value, 2, 5);
    summary_value.extend_from_slice(&value.to_le_bytes());
    let mut summary = Vec::new();
    put_bytes(&mut summary, 1, &summary_value);
    let mut event = Vec::new();
    put_key(&mut event, 1, 1);
    event.extend_from_slice(&wall_time.to_le_bytes());
    put_key(&mut event, 2, 0);
    put_varint(&mut event, step);
    put_bytes(&mut event, 5, &summary);
    event
}

/// A field key: field number and wire type (0 varint, 1 fixed64, 2 bytes, 5 fixed32).
fn put_key(buf: &mut Vec<u8>, field: u32, wire_type: u32) {
    put_varint(buf, u64::from((field << 3) | wire_type));
}

fn put_bytes(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(buf, field, 2);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// CRC-32C (Castagnoli), masked as TFRecord wants: rotated right by 15 bits plus a constant.
fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn crc32c(data: &[u8]) -> u32 {
    const POLY: u32 = 0x82f6_3b78; // reflected Castagnoli polynomial
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_published_check_value() {
        // The standard check value of CRC-32C for the ASCII digits 1..9.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn records_frame_their_data() {
        let dir = tempfile::tempdir().unwrap();
        let points = [Point {
            step: 300,
            loss: Some(0.5),
            ..Point::default()
        }];
        let path = write_run(dir.path(), &points, 1_700_000_000.0).unwrap();
        let bytes = std::fs::read(path).unwrap();
        let mut at = 0;
        let mut records = 0;
        while at < bytes.len() {
            let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
            let len_crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
            assert_eq!(len_crc, masked_crc32c(&bytes[at..at + 8]));
            let data = &bytes[at + 12..at + 12 + len];
            let data_crc =
                u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
            assert_eq!(data_crc, masked_crc32c(data));
            at += 16 + len;
            records += 1;
        }
        assert_eq!(records, 2);
    }

    /// Reads the events back with TensorBoard's own reader (`event_accumulator`, from the
    /// `tensorboard` wheel in .ci/requirements.txt; `PYTHON` picks the interpreter). Skips with a
    /// notice where that reader is not installed.
    #[test]
    fn tensorboard_reads_the_events_back() {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
        let probe = std::process::Command::new(&python)
            .args([
                "-c",
                "import tensorboard.backend.event_processing.event_accumulator",
            ])
            .output();
        if !probe.is_ok_and(|o| o.status.success()) {
            eprintln!("skipping: {python} cannot import tensorboard (pip install tensorboard)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut points: Vec<Point> = (1..=40u64)
            .map(|step| Point {
                step,
                loss: Some(if step == 7 {
                    f64::NAN
                } else {
                    4.0 / step as f64
                }),
                lr: Some(2e-5),
                grad_norm: Some(1.25),
                dev: None,
            })
            .collect();
        points.push(Point {
            step: 40,
            dev: Some(81.5),
            ..Point::default()
        });
        let run = dir.path().join("job-1");
        write_run(&run, &points, 1_700_000_000.0).unwrap();
        let script = r#"
import json, math, sys
from tensorboard.backend.event_processing import event_accumulator as ea
acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0})
acc.Reload()
out = {}
for tag in acc.Tags()["scalars"]:
    out[tag] = [[e.step, None if math.isnan(e.value) else e.value] for e in acc.Scalars(tag)]
print(json.dumps(out))
"#;
        let output = std::process::Command::new(&python)
            .args(["-c", script])
            .arg(&run)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let read: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let loss = read["train/loss"].as_array().unwrap();
        assert_eq!(loss.len(), 40);
        assert_eq!(loss[0], serde_json::json!([1, 4.0]));
        assert_eq!(
            loss[6],
            serde_json::json!([7, null]),
            "NaN reads back as NaN"
        );
        assert_eq!(read["train/lr"].as_array().unwrap().len(), 40);
        let lr = read["train/lr"][0][1].as_f64().unwrap();
        assert!((lr - 2e-5).abs() < 1e-9, "{lr}");
        assert_eq!(read["dev/metric"], serde_json::json!([[40, 81.5]]));
    }
}

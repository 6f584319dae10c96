//! Plans the 1,000,000-cell benchmark grid and prints the time and peak memory.
//!
//! ```text
//! cargo run --release -p stilts-common --example plan_bench [-- GRID.toml [LANGUAGES_PER_JOB]]
//! ```
//! Default grid: tests/grids/large.toml. A second argument overrides `languages_per_job`
//! (1 = one evaluate job per cell: the worst case for the job table).

use std::time::Instant;

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// User + system CPU seconds of this process (the machine may be shared: wall time can mislead).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/grids/large.toml").to_string()
    });
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    if let Some(n) = args.next() {
        let n: u32 = n.parse().expect("LANGUAGES_PER_JOB is a number");
        text = text.replace("languages_per_job = 0", &format!("languages_per_job = {n}"));
    }
    let before = peak_rss_mib();
    let cpu_before = cpu_seconds();
    let start = Instant::now();
    let plan = match stilts_common::plan::plan(&path, &text, None, None) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let elapsed = start.elapsed();
    println!("grid:      {path}");
    println!("{}", plan.summary());
    let cpu = cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    match cpu {
        Some(cpu) => println!(
            "plan time: {:.3} s wall, {cpu:.2} s CPU",
            elapsed.as_secs_f64()
        ),
        None => println!("plan time: {:.3} s wall", elapsed.as_secs_f64()),
    }
    match (before, peak_rss_mib()) {
        (Some(before), Some(peak)) => {
            println!("peak RSS:  {peak:.1} MiB (VmHWM; {before:.1} MiB before planning)")
        }
        _ => println!("peak RSS:  unavailable (no /proc/self/status)"),
    }
}

//! Live progress of a sweep: one bar per stage kind, fed by polling the coordinator's status.

use std::time::Duration;

use anyhow::Result;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use stilts_proto::v1::{KindCounts, SweepStatus};

use crate::client::{self, Client};

fn count(k: &KindCounts, states: &[&str]) -> u64 {
    k.jobs
        .iter()
        .filter(|c| states.contains(&c.state.as_str()))
        .map(|c| c.count)
        .sum()
}

/// Polls `sweep` until every cell is finished, drawing bars (or, without a terminal, printing a
/// line whenever the counts change). Returns the final status.
pub async fn follow(client: &mut Client, sweep: &str, bars: bool) -> Result<SweepStatus> {
    let multi = MultiProgress::with_draw_target(if bars {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let style = ProgressStyle::with_template(
        "{prefix:>12} [{bar:32.cyan/blue}] {pos}/{len} {msg} ({elapsed_precise}, eta {eta})",
    )?
    .progress_chars("=> ");
    let mut kind_bars: Vec<(String, ProgressBar)> = Vec::new();
    let mut last_line = String::new();
    loop {
        let status = client::status(client, sweep).await?;
        for k in &status.jobs {
            let total: u64 = k.jobs.iter().map(|c| c.count).sum();
            let done = count(k, &["succeeded", "failed", "cancelled"]);
            let running = count(k, &["leased"]);
            let failed = count(k, &["failed"]);
            let bar = match kind_bars.iter().find(|(name, _)| *name == k.kind) {
                Some((_, b)) => b.clone(),
                None => {
                    let b = multi.add(ProgressBar::new(total).with_style(style.clone()));
                    b.set_prefix(k.kind.clone());
                    kind_bars.push((k.kind.clone(), b.clone()));
                    b
                }
            };
            bar.set_length(total);
            bar.set_position(done);
            let mut msg = format!("{running} running");
            if failed > 0 {
                msg.push_str(&format!(", {failed} failed"));
            }
            bar.set_message(msg);
        }
        if !bars {
            let line = client::format_status(&status)
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            if line != last_line {
                eprintln!("{line}");
                last_line = line;
            }
        }
        if status.finished {
            for (_, b) in &kind_bars {
                b.finish();
            }
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

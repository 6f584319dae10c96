//! `stilts sweep …`: the client side of the coordinator's SweepService.

use std::path::Path;

use anyhow::{Context, Result, bail};
use stilts_proto::v1::sweep_service_client::SweepServiceClient;
use stilts_proto::v1::{
    CancelSweepRequest, Cell, DeleteSweepRequest, GetResultsRequest, GetSweepRequest,
    ListCellsRequest, ResultRow, RetryFailedRequest, SubmitSweepRequest, SubmitSweepResponse,
    SweepStatus,
};
use stilts_worker::tls::BearerAuth;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::cli::{Format, RemoteArgs, SweepCommand};
use crate::results_view;
use crate::security::{self, ClientSecurity};

pub type Client = SweepServiceClient<InterceptedService<Channel, BearerAuth>>;

/// One connection, with TLS for https:// URLs and the token on every call.
async fn dial(url: &str, security: &ClientSecurity) -> Result<Client> {
    let channel = stilts_worker::tls::endpoint(url, security.tls.as_ref())?
        .connect()
        .await?;
    let auth = BearerAuth::new(security.token.as_ref())?;
    Ok(SweepServiceClient::with_interceptor(channel, auth))
}

/// [`connect_as`] with the TLS and token flags of a `stilts sweep` command.
async fn open(remote: &RemoteArgs) -> Result<Client> {
    connect_as(&remote.coordinator, &security::client(&remote.security)?).await
}

/// [`connect_as`] without TLS or token (the embedded coordinator of `stilts run`).
pub async fn connect(url: &str) -> Result<Client> {
    connect_as(url, &ClientSecurity::default()).await
}

/// Connects to the coordinator at `url`, or to the leader among several comma-separated replica
/// URLs: each is asked once; a follower's `UNAVAILABLE` answer names the leader
/// (`stilts-leader` metadata), which is used instead.
pub async fn connect_as(url: &str, security: &ClientSecurity) -> Result<Client> {
    let urls: Vec<&str> = url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    let mut last = None;
    for candidate in &urls {
        let mut client = match dial(candidate, security).await {
            Ok(c) => c,
            Err(e) => {
                last = Some(e.context(format!("cannot reach {candidate}")));
                continue;
            }
        };
        if urls.len() == 1 {
            return Ok(client);
        }
        // A cheap probe: the leader answers (NotFound), a follower redirects.
        let probe = client
            .get_sweep(GetSweepRequest {
                sweep: String::new(),
            })
            .await;
        match probe {
            Err(s) if s.code() == tonic::Code::Unavailable => {
                let hint = s
                    .metadata()
                    .get(stilts_coordinator::LEADER_METADATA)
                    .and_then(|v| v.to_str().ok());
                if let Some(leader) = hint
                    && let Ok(c) = dial(leader, security).await
                {
                    return Ok(c);
                }
                last = Some(anyhow::anyhow!("{candidate}: {}", s.message()));
            }
            _ => return Ok(client),
        }
    }
    Err(last
        .unwrap_or_else(|| anyhow::anyhow!("no coordinator URL given"))
        .context(format!(
            "cannot reach the coordinator at {url}: is `stilts coordinator` running there?"
        )))
}

/// Reads a grid file and submits it; grid errors come back naming file, line and column.
/// `backend` overrides its `[executor] backend` (None: the grid's). With `data_version =
/// "auto"` the digests of its data are computed here, where the data is readable.
pub async fn submit(
    client: &mut Client,
    grid: &Path,
    backend: Option<&str>,
    catalog: &stilts_tasks::Catalog,
) -> Result<SubmitSweepResponse> {
    let text = std::fs::read_to_string(grid)
        .with_context(|| format!("cannot read grid file {}", grid.display()))?;
    let data_digests = match crate::catalog::grid_with_tasks(grid, &text, catalog) {
        Some((tasks, g)) => crate::data_digest::for_grid(&g, &tasks.catalog)
            .with_context(|| format!("{}: nothing was submitted", grid.display()))?
            .into_iter()
            .collect(),
        None => Default::default(),
    };
    let req = SubmitSweepRequest {
        file_name: grid.display().to_string(),
        data_digests,
        catalog_files: crate::catalog::grid_catalog_files(grid, &text),
        grid_toml: text,
        // Empty: the grid's `[executor] backend`.
        backend: backend.unwrap_or_default().to_string(),
    };
    match client.submit_sweep(req).await {
        Ok(resp) => Ok(resp.into_inner()),
        Err(status) if status.code() == tonic::Code::InvalidArgument => {
            bail!("{}", status.message())
        }
        Err(status) => Err(status).context("submitting the sweep"),
    }
}

pub async fn status(client: &mut Client, sweep: &str) -> Result<SweepStatus> {
    let resp = client
        .get_sweep(GetSweepRequest {
            sweep: sweep.to_string(),
        })
        .await;
    Ok(resp
        .with_context(|| format!("status of sweep {sweep:?}"))?
        .into_inner())
}

/// Every cell of `sweep`, page by page (`offset` = the previous reply's `next_offset`).
pub async fn all_cells(client: &mut Client, sweep: &str) -> Result<Vec<Cell>> {
    let mut cells = Vec::new();
    let mut offset = 0;
    loop {
        let page = client
            .list_cells(ListCellsRequest {
                sweep: sweep.to_string(),
                offset,
            })
            .await
            .with_context(|| format!("cells of sweep {sweep:?}"))?
            .into_inner();
        cells.extend(page.cells);
        if page.next_offset == 0 {
            return Ok(cells);
        }
        offset = page.next_offset;
    }
}

/// Every result row of `sweep`, page by page.
pub async fn all_results(client: &mut Client, sweep: &str) -> Result<Vec<ResultRow>> {
    let mut rows = Vec::new();
    let mut offset = 0;
    loop {
        let page = client
            .get_results(GetResultsRequest {
                sweep: sweep.to_string(),
                offset,
            })
            .await
            .with_context(|| format!("results of sweep {sweep:?}"))?
            .into_inner();
        rows.extend(page.rows);
        if page.next_offset == 0 {
            return Ok(rows);
        }
        offset = page.next_offset;
    }
}

pub async fn results(client: &mut Client, sweep: &str, format: Format) -> Result<String> {
    let rows = all_results(client, sweep).await?;
    let cells = all_cells(client, sweep).await?;
    Ok(results_view::render(&rows, &cells, format))
}

/// Human-readable status: cells by state, jobs by kind and state, failures.
pub fn format_status(s: &SweepStatus) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let counts = |c: &[stilts_proto::v1::StateCount]| {
        c.iter()
            .filter(|c| c.count > 0)
            .map(|c| format!("{} {}", c.count, c.state))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let backend = if s.backend.is_empty() {
        String::new()
    } else {
        format!(", backend {}", s.backend)
    };
    let _ = writeln!(
        out,
        "sweep {}: {} cells ({}){backend}",
        s.sweep,
        s.cells_total,
        counts(&s.cells)
    );
    for w in &s.waiting {
        let _ = writeln!(out, "  PENDING {}", crate::term::printable(w));
    }
    for k in &s.jobs {
        let _ = writeln!(out, "  {:<12} {}", k.kind, counts(&k.jobs));
    }
    let mut axis = "";
    for a in &s.axes {
        if a.axis != axis {
            let _ = writeln!(out, "  by {}:", a.axis);
            axis = &a.axis;
        }
        let _ = writeln!(out, "    {:<20} {}", a.value, counts(&a.cells));
    }
    if let Some(c) = &s.compute {
        for line in stilts_coordinator::report::compute::Compute::from(
            &stilts_common::sweep_status::ComputeSummary::from(c),
        )
        .lines()
        {
            let _ = writeln!(out, "  compute: {line}");
        }
    }
    for f in &s.failed {
        let _ = writeln!(
            out,
            "  FAILED {} {} (attempt {}): {}",
            f.kind,
            &f.job_key[..12.min(f.job_key.len())],
            f.attempt,
            crate::term::printable(&f.message)
        );
    }
    if s.finished {
        let _ = writeln!(out, "  finished");
    }
    out
}

pub async fn run(cmd: SweepCommand) -> Result<()> {
    match cmd {
        SweepCommand::Submit {
            grid,
            backend,
            remote,
        } => {
            let mut c = open(&remote).await?;
            let catalog = crate::catalog::load(None)?;
            let r = submit(&mut c, &grid, backend.as_deref(), &catalog).await?;
            if r.replanned {
                println!(
                    "the data of sweep {} changed since it was submitted: planned again",
                    r.sweep
                );
            }
            println!(
                "submitted sweep {}: {} cells, {} jobs ({} already done)",
                r.sweep, r.cells, r.jobs, r.jobs_already_done
            );
        }
        SweepCommand::Status { sweep, remote } => {
            let mut c = open(&remote).await?;
            print!("{}", format_status(&status(&mut c, &sweep).await?));
        }
        SweepCommand::Results {
            sweep,
            format,
            remote,
        } => {
            let mut c = open(&remote).await?;
            print!("{}", results(&mut c, &sweep, format).await?);
        }
        SweepCommand::Retry { sweep, remote } => {
            let mut c = open(&remote).await?;
            let r = c
                .retry_failed(RetryFailedRequest {
                    sweep: sweep.clone(),
                })
                .await?;
            println!(
                "sweep {sweep}: {} jobs revived",
                r.into_inner().jobs_revived
            );
        }
        SweepCommand::Cancel { sweep, remote } => {
            let mut c = open(&remote).await?;
            let r = c
                .cancel_sweep(CancelSweepRequest {
                    sweep: sweep.clone(),
                })
                .await?;
            println!(
                "sweep {sweep}: {} jobs cancelled",
                r.into_inner().jobs_cancelled
            );
        }
        SweepCommand::Delete {
            sweep,
            yes,
            purge,
            compact,
            remote,
        } => {
            let mut c = open(&remote).await?;
            if !yes {
                let s = status(&mut c, &sweep).await?;
                let jobs: u64 = s.jobs.iter().flat_map(|k| &k.jobs).map(|n| n.count).sum();
                println!(
                    "would delete sweep {sweep}: {} cells, {jobs} jobs ({}); nothing was deleted. \
                     Run again with --yes{}",
                    s.cells_total,
                    if purge {
                        "with --purge, the records of jobs no other sweep contains go too"
                    } else {
                        "their results stay stored and are reused by any sweep that needs them"
                    },
                    if purge { " --purge" } else { "" }
                );
                return Ok(());
            }
            let r = c
                .delete_sweep(DeleteSweepRequest {
                    sweep: sweep.clone(),
                    purge,
                    compact,
                })
                .await
                .map_err(|s| anyhow::anyhow!("deleting sweep {sweep:?}: {}", s.message()))?
                .into_inner();
            println!(
                "deleted sweep {sweep}: {} cells, {} jobs ({} job records and {} artifacts purged)",
                r.cells, r.jobs, r.jobs_purged, r.artifacts_removed
            );
            if !r.compacted.is_empty() {
                println!("{}", r.compacted);
            }
        }
    }
    Ok(())
}

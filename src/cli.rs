//! Command-line surface of the `stilts` binary: clap definitions and help text only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "stilts",
    version,
    long_version = crate::version::LONG_VERSION,
    about = "Run intermediate-task × target-task × model × language × seed grids for zero-shot \
             cross-lingual transfer (XTREME-R), from a laptop to a GPU cluster.",
    after_help = "Examples:\n  \
        stilts plan grid.toml                 # check a grid, count cells and jobs\n  \
        stilts run grid.toml                  # run it here (embedded store under .stilts/)\n  \
        stilts run grid.toml                  # again: resumes, finished jobs never rerun\n  \
        stilts results --format csv > r.csv   # results of the last local sweep\n  \
        stilts coordinator --listen 0.0.0.0:50051 --state-dir /data/stilts\n  \
        stilts worker --coordinator http://head:50051 --slots 4\n  \
        stilts sweep submit grid.toml --coordinator http://head:50051"
)]
pub struct Cli {
    /// Log filter (also RUST_LOG), e.g. "info" or "stilts_coordinator=debug".
    #[arg(long, global = true, default_value = "warn", env = "STILTS_LOG")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant (the coordinator's flags) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a grid on this machine: coordinator, SQLite store and local workers in one process.
    #[command(after_help = "Examples:\n  \
        stilts run deploy/demo/grid.toml\n  \
        stilts run grid.toml --state-dir /scratch/stilts --slots 8\n  \
        STILTS_DATA_DIR=/data stilts run deploy/examples/domain-adaptation.toml\n\n\
        Running the same command again resumes the sweep: jobs that succeeded are never run again,\n\
        failed and cancelled jobs are retried. A grid may define its own tasks ([tasks.NAME],\n\
        catalog = [\"my-tasks.toml\"]); their files are read before anything is submitted (README\n\
        \"Your own tasks\").")]
    Run(RunArgs),
    /// Expand and validate a grid without running it: cells, stage jobs, naive count, saving.
    #[command(after_help = "Examples:\n  stilts plan grid.toml\n  \
        STILTS_DATA_DIR=/data stilts plan deploy/examples/domain-adaptation.toml\n\n\
        The files of the grid's own tasks ([tasks.NAME]) are read and checked here too.")]
    Plan {
        /// The grid file (TOML).
        grid: PathBuf,
    },
    /// Print the results of a sweep in the local state directory.
    #[command(after_help = "Examples:\n  \
        stilts results\n  stilts results --sweep demo --format csv > demo.csv")]
    Results {
        #[command(flatten)]
        state: StateArgs,
        /// Sweep name (default: the most recent sweep).
        #[arg(long)]
        sweep: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// The research answer for one sweep: transfer matrix (Δ vs the `none` baseline paired by
    /// seed, mean with a 95% t-interval over seeds — none below 3 seeds —, non-English first,
    /// all languages and English beside it, transfer gap, grouped by domain), aligned vs not
    /// aligned (contrasted within each target, targets equally weighted), QA F1 / EM,
    /// per-language tables, heatmap and bar plots (SVG, PNG), results with cell states as CSV,
    /// JSON Lines and Parquet.
    #[command(after_help = "Examples:\n  \
        stilts report                                  # latest sweep in .stilts/\n  \
        stilts report demo --out reports/demo\n  \
        stilts report domain-alignment --coordinator http://head:50051")]
    Report(ReportArgs),
    /// Serve the coordinator (gRPC) for remote workers and clients.
    #[command(after_help = "Example:\n  \
        stilts coordinator --listen 0.0.0.0:50051 --state-dir /data/stilts --lease-ttl 30\n  \
        stilts coordinator --store etcd --etcd-endpoints http://etcd:2379 \\\n    \
        --listen 0.0.0.0:50051 --advertise http://c1:50051   # one replica of several\n  \
        stilts coordinator --config coordinator.toml --advertise http://c1:50051   # [store] from a file\n  \
        stilts coordinator --listen 0.0.0.0:50051 --tls-cert server.pem --tls-key server.key \\\n    \
        --tls-client-ca ca.pem --client-token-file /run/secrets/stilts-token   # TLS, mTLS, token")]
    Coordinator(CoordinatorArgs),
    /// Run a worker that pulls jobs from a coordinator.
    #[command(after_help = "Examples:\n  \
        stilts worker --coordinator http://head:50051 --slots 2\n  \
        stilts worker --coordinator http://c1:50051,http://c2:50051 --artifacts /shared/stilts\n  \
        stilts worker --coordinator https://head:50051 --tls-ca ca.pem \\\n    \
        --tls-cert worker.pem --tls-key worker.key   # mutual TLS\n  \
        stilts worker --coordinator http://head:50051 --backend libtorch-cuda --gpus 0,1\n  \
        stilts worker --coordinator http://head:50051 --backend libtorch-cuda --gpus 0 \\\n    \
        --gpu-memory 70GiB --jobs-per-gpu 4   # leave 10 GiB of an 80 GB GPU, 4 jobs at most\n\n\
        With --gpus, jobs are packed onto the GPUs by memory: each reserves its estimate (from the\n\
        model's config.json and the recipe's batch_size, max_seq_len, precision) on the GPU with the\n\
        most free memory that fits, and runs there (burn: libtorch-cuda:K; command jobs:\n\
        CUDA_VISIBLE_DEVICES=K). A job that does not fit yet waits; one that runs out of memory\n\
        reserves 1.5x on its retry here, the whole GPU after a second time.\n\n\
        SIGTERM stops acquiring, lets running jobs finish (up to --grace), reports, exits.")]
    Worker(WorkerArgs),
    /// Talk to a running coordinator: submit, status, results, retry, cancel.
    #[command(subcommand)]
    Sweep(SweepCommand),
    /// Export a sweep's training curves (see `stilts export tensorboard --help`).
    #[command(subcommand)]
    Export(ExportCommand),
    /// Ask one coordinator process its gRPC health (grpc.health.v1); exit 0 when SERVING.
    #[command(after_help = "Examples:\n  \
        stilts health                                # does 127.0.0.1:50051 serve the API (leader)?\n  \
        stilts health --service liveness             # is it running (leader or follower)?\n  \
        stilts health --coordinator https://c1:50051 --tls-ca ca.pem\n\n\
        Service names: \"\" (default) and stilts.v1.WorkerService / stilts.v1.SweepService are\n\
        SERVING on a single coordinator and on the leader of several replicas, NOT_SERVING on\n\
        followers and while etcd is unreachable; \"liveness\" is SERVING whenever the process runs.\n\
        Exit status: 0 SERVING; 1 NOT_SERVING, unknown service or no answer.")]
    Health(HealthArgs),
    /// Print embeddings of texts with a HuggingFace encoder (one JSON array per input).
    #[command(after_help = "Examples:\n  \
        stilts encode --model models/all-MiniLM-L6-v2 \"A sentence.\" \"Another one.\"\n  \
        stilts encode --model models/all-MiniLM-L6-v2 --layer 4 --pool cls --input sents.txt")]
    Encode(EncodeArgs),
    /// Score one prediction file (XTREME submission format) against a gold file.
    #[command(after_help = "Example:\n  \
        stilts score --task xquad --lang de --predictions preds.json --gold xquad.de.json")]
    Score(ScoreArgs),
    /// List the task catalog: name, domain, head, metric, languages; then the components and
    /// weights of each multi-task dual encoder (`mixture`).
    #[command(
        after_help = "Examples:\n  stilts tasks\n  stilts tasks --catalog my-tasks.toml\n\n\
Heads: retrieval = zero-shot (Tatoeba); dual_encoder = trained on pairs, scored by mAP@20 over a\n\
shared candidate pool (lareqa, mewslix) or used as a multi-task intermediate stage (mt_dual)."
    )]
    Tasks {
        /// Extra task definitions (TOML) to add to the built-in catalog.
        #[arg(long)]
        catalog: Option<PathBuf>,
    },
    /// Download task data: original files from HuggingFace hub dataset repositories (or a
    /// mirror) into the layout the task readers read.
    #[command(subcommand)]
    Data(DataCommand),
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Download the files of TASK… under DIR, in the layout the readers read (`xnli/`,
    /// `squad/`, `glue/MNLI/`, …).
    #[command(after_help = "Examples:\n  \
        stilts data fetch xnli xquad mlqa squad mnli --to data/\n  \
        stilts data fetch squad --to data/ --mirror http://mirror.internal:8080   # air-gapped\n  \
        HF_TOKEN=hf_... stilts data fetch xcopa siqa copa --to data/            # gated repos\n  \
        stilts run grid.toml   # the trainer reads ./data (recipe data_dir, STILTS_DATA_DIR)\n\n\
        URLs are <base>/datasets/<repo>/resolve/<rev>/<path>; <base> is --mirror, else \
        HF_ENDPOINT,\nelse https://huggingface.co. HF_TOKEN is sent as a Bearer token to that \
        host.\nFiles download to <file>.part and continue with an HTTP Range request after a \
        dropped\nconnection or an interrupted run; DIR/.stilts-fetch.json records every \
        file's sha256 and a\nre-run verifies instead of downloading. The server's sha256 \
        (the hub's X-Linked-Etag) is checked\nwhen it sends one.\n\n\
        Which tasks can be fetched: `stilts data sources`. UD-POS, PAN-X, Tatoeba, LAReQA, \
        Mewsli-X and IMDB\ncannot (archives or sources outside the hub). The table's paths \
        are the original distributions'\nfile names and were not checked against the live \
        hub; repositories that hold only parquet\nconversions answer 404 there: use a mirror \
        of the original files.")]
    Fetch(DataFetchArgs),
    /// Print which hub repository and files each catalog task is fetched from, or why it cannot be.
    #[command(after_help = "Example:\n  stilts data sources")]
    Sources {
        /// Extra task definitions (TOML) to add to the built-in catalog.
        #[arg(long)]
        catalog: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct DataFetchArgs {
    /// Catalog task names (`stilts tasks`).
    #[arg(required = true)]
    pub tasks: Vec<String>,
    /// The data root the files go under.
    #[arg(long)]
    pub to: PathBuf,
    /// Base URL replacing https://huggingface.co (a mirror laid out as
    /// datasets/<repo>/resolve/<rev>/<path>); default: HF_ENDPOINT, else the hub.
    #[arg(long)]
    pub mirror: Option<String>,
    /// Extra task definitions (TOML) to add to the built-in catalog.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// TensorBoard event files, one run per job attempt (`OUT/<stage>/<run>/attempt-N/`), tags
    /// train/loss, train/lr, train/grad_norm and dev/metric; the same series as OUT/curves.json
    /// and OUT/curves.csv.
    #[command(after_help = "Examples:\n  \
        stilts export tensorboard demo --out runs/demo && tensorboard --logdir runs/demo\n  \
        stilts export tensorboard domain-alignment --out tb --coordinator http://head:50051")]
    Tensorboard(ExportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Sweep name (default: the most recent sweep).
    pub sweep: Option<String>,
    #[command(flatten)]
    pub state: StateArgs,
    /// Read from a running coordinator instead of the local state directory.
    #[arg(long, env = "STILTS_COORDINATOR")]
    pub coordinator: Option<String>,
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct StateArgs {
    /// Where the SQLite store and artifacts live.
    #[arg(long, default_value = ".stilts", env = "STILTS_STATE_DIR")]
    pub state_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Sweep name (default: the most recent sweep).
    pub sweep: Option<String>,
    #[command(flatten)]
    pub state: StateArgs,
    /// Read from a running coordinator instead of the local state directory.
    #[arg(long, env = "STILTS_COORDINATOR")]
    pub coordinator: Option<String>,
    /// Output directory (default: report-SWEEP).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Extra task definitions (TOML) for domain labels and score metrics.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The grid file (TOML).
    pub grid: PathBuf,
    #[command(flatten)]
    pub state: StateArgs,
    /// Jobs run at once (default: number of CPUs for command jobs, 1 for the burn trainer).
    #[arg(long)]
    pub slots: Option<u32>,
    /// Training backend for burn jobs: cpu, libtorch-cpu, libtorch-cuda[:N]. Default: the grid's
    /// `[executor] backend`, else cpu. A backend this binary lacks is refused before anything
    /// is submitted (libtorch ones need a build with `--features libtorch`, README "GPU build").
    #[arg(long)]
    pub backend: Option<String>,
    /// No progress bars (plain log lines instead); implied when stderr is not a terminal.
    #[arg(long)]
    pub no_progress: bool,
    /// Serve the live dashboard and Prometheus /metrics on ADDR (`off`: none). The default picks
    /// a free loopback port and prints the URL.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:0",
        env = "STILTS_HTTP"
    )]
    pub http: HttpAddr,
    /// Attempts per job before it is marked failed.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
}

#[derive(Debug, Args)]
pub struct CoordinatorArgs {
    /// Address to serve gRPC on.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub listen: String,
    #[command(flatten)]
    pub security: ServerSecurityArgs,
    /// Serve the live dashboard (/) and Prometheus metrics (/metrics) on ADDR; `off`: none.
    /// Unauthenticated: keep it on loopback or behind an authenticating proxy.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:50052",
        env = "STILTS_HTTP"
    )]
    pub http: HttpAddr,
    /// The workers' shared artifact directory, if this machine can read it: the dashboard then
    /// shows the tail of each job's logs. Default: none ("logs on worker").
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
    /// Worker lease time-to-live, a duration (`30s`, `1.5m`; a bare number counts seconds),
    /// from 2 s (workers heartbeat every third of it) to 1 d.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "30s",
        env = "STILTS_LEASE_TTL",
        value_parser = lease_ttl
    )]
    pub lease_ttl: Duration,
    /// Attempts per job before it is marked failed.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
    /// Largest sweep accepted, in cells; a bigger grid is refused at submit (nothing stored).
    #[arg(long, default_value_t = 5_000_000)]
    pub max_cells: u64,
    /// Config file (TOML) with a `[store]` table: `kind = "sqlite" | "etcd"` and the etcd
    /// settings (endpoints, prefix, username/password, [store.tls] ca_file/cert_file/key_file,
    /// timeouts). Flags override it, STILTS_ETCD_* variables override both.
    #[arg(long, value_name = "FILE", env = "STILTS_CONFIG")]
    pub config: Option<std::path::PathBuf>,
    /// Store backend: `sqlite` (one file under --state-dir, a single coordinator) or `etcd`
    /// (several replicas, one elected leader). Default: the config file's, else sqlite.
    #[arg(long, env = "STILTS_STORE", value_parser = ["sqlite", "etcd"])]
    pub store: Option<String>,
    /// etcd client URLs, comma-separated (with --store etcd; STILTS_ETCD_ENDPOINTS overrides).
    /// Default http://127.0.0.1:2379.
    #[arg(long, value_delimiter = ',')]
    pub etcd_endpoints: Vec<String>,
    /// Key prefix in etcd (with --store etcd; STILTS_ETCD_PREFIX overrides). Default /stilts/.
    #[arg(long)]
    pub etcd_prefix: Option<String>,
    /// URL workers and clients reach this replica at, handed out by followers as the leader
    /// hint (with --store etcd). Default: http:// + the --listen address.
    #[arg(long, env = "STILTS_ADVERTISE")]
    pub advertise: Option<String>,
    /// Election lease TTL, a duration (`5s`; a bare number counts seconds; with --store etcd):
    /// a dead leader is replaced after about this long.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5s",
        env = "STILTS_ELECTION_TTL",
        value_parser = duration
    )]
    pub election_ttl: Duration,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub security: ClientSecurityArgs,
    /// Coordinator URL(s), comma-separated; tried in turn.
    #[arg(
        long,
        env = "STILTS_COORDINATOR",
        value_delimiter = ',',
        required = true
    )]
    pub coordinator: Vec<String>,
    /// Jobs run at once on a worker without --gpus (with --gpus: what fits their memory).
    #[arg(long, default_value_t = 1, conflicts_with = "gpus")]
    pub slots: u32,
    /// GPUs (CUDA indices, comma-separated) to pack jobs onto by memory, with --backend
    /// libtorch-cuda; e.g. --gpus 0,1,2,3.
    #[arg(long, value_delimiter = ',', value_name = "INDICES")]
    pub gpus: Vec<u32>,
    /// Memory jobs may reserve on each of --gpus, e.g. 80GiB, 40G, 70000MiB. Default: each GPU's
    /// total memory from nvidia-smi.
    #[arg(long, value_name = "SIZE", requires = "gpus", value_parser = memory_size)]
    pub gpu_memory: Option<u64>,
    /// At most this many jobs on one of --gpus, whatever fits. Default: no cap.
    #[arg(long, value_name = "N", requires = "gpus", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs_per_gpu: Option<u32>,
    /// Artifact root shared with the coordinator's other workers (job outputs go to ROOT/<job key>).
    #[arg(long, default_value = ".stilts/artifacts", env = "STILTS_ARTIFACTS")]
    pub artifacts: PathBuf,
    /// Worker name shown in status (default: host name).
    #[arg(long)]
    pub name: Option<String>,
    /// Training backend for burn jobs: cpu, libtorch-cpu, libtorch-cuda[:N]. The coordinator
    /// gives this worker only burn jobs whose sweep needs this backend (or names none).
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// How long running jobs may take to finish after SIGTERM before they are cancelled, a
    /// duration (`60s`, `5m`; a bare number counts seconds).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "60s",
        env = "STILTS_GRACE",
        value_parser = duration
    )]
    pub grace: Duration,
    /// Device this worker's jobs are accounted on (GPU-hours in `stilts sweep status` and the
    /// report): default `cpu`, or the GPU's name from nvidia-smi for libtorch-cuda. Set it for
    /// command jobs that use a GPU, e.g. --device "NVIDIA H100".
    #[arg(long)]
    pub device: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SweepCommand {
    /// Submit a grid file.
    Submit {
        grid: PathBuf,
        /// Trainer backend the sweep's burn jobs need (cpu, libtorch-cpu, libtorch-cuda),
        /// overriding the grid's `[executor] backend`. Jobs wait until a worker with it connects.
        #[arg(long)]
        backend: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Counts per state, per stage kind and per axis value.
    Status {
        sweep: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Results, one row per cell and metric.
    Results {
        sweep: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Revive failed and cancelled jobs (resume).
    Retry {
        sweep: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Cancel unfinished jobs.
    Cancel {
        sweep: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Delete a sweep: its record, cells and memberships. Its jobs' results stay stored (another
    /// sweep, or the same grid submitted again, reuses them) unless --purge.
    ///
    /// Examples:
    ///   stilts sweep delete old-sweep                   # says what would go, deletes nothing
    ///   stilts sweep delete old-sweep --yes
    ///   stilts sweep delete old-sweep --yes --purge --compact
    #[command(verbatim_doc_comment)]
    Delete {
        sweep: String,
        /// Really delete (without it, only say what would be deleted).
        #[arg(long)]
        yes: bool,
        /// Also remove every job record no sweep contains and no worker holds (results,
        /// curves) and its artifact under the coordinator's artifact root.
        #[arg(long)]
        purge: bool,
        /// Then give the space back: SQLite VACUUM, etcd compaction and defragmentation.
        #[arg(long)]
        compact: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// URL of one coordinator process (asked as is: a follower is not redirected to the leader).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub coordinator: String,
    /// Health service name ("" = the API; "liveness" = the process).
    #[arg(long, default_value = "")]
    pub service: String,
    /// How long to wait for the answer, a duration (`5s`, `500ms`; a bare number counts
    /// seconds).
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub security: ClientSecurityArgs,
}

#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// Coordinator URL; several replicas comma-separated (the leader is found).
    #[arg(
        long,
        env = "STILTS_COORDINATOR",
        default_value = "http://127.0.0.1:50051"
    )]
    pub coordinator: String,
    #[command(flatten)]
    pub security: ClientSecurityArgs,
}

/// TLS and token towards a coordinator (`https://` URLs). Worker and client flags alike.
#[derive(Debug, Clone, Args)]
pub struct ClientSecurityArgs {
    /// CA certificate (PEM) that signed the coordinator's certificate; needed for https:// URLs.
    #[arg(long, env = "STILTS_TLS_CA", value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for a coordinator that requires mutual TLS (workers).
    #[arg(
        long,
        env = "STILTS_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(
        long,
        env = "STILTS_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Bearer token the coordinator asks clients for (sent as `authorization: Bearer …`).
    #[arg(long, env = "STILTS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// TLS and client authentication of the coordinator's gRPC port.
#[derive(Debug, Clone, Args)]
pub struct ServerSecurityArgs {
    /// Serve gRPC over TLS with this certificate chain (PEM); workers and clients then use
    /// https:// URLs and --tls-ca.
    #[arg(
        long,
        env = "STILTS_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(
        long,
        env = "STILTS_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: workers must present a certificate signed by this CA (PEM).
    #[arg(
        long,
        env = "STILTS_TLS_CLIENT_CA",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_client_ca: Option<PathBuf>,
    /// File whose first line is the bearer token every client (`stilts sweep …`) must send.
    #[arg(long, env = "STILTS_TOKEN_FILE", value_name = "FILE")]
    pub client_token_file: Option<PathBuf>,
    /// The client token itself (prefer the environment or --client-token-file: a command line
    /// is visible to other users).
    #[arg(
        long,
        env = "STILTS_TOKEN",
        hide_env_values = true,
        conflicts_with = "client_token_file"
    )]
    pub client_token: Option<String>,
    /// Let workers in without the token. By default, once a token is set, workers must send it
    /// too (`stilts worker --token` or STILTS_TOKEN), on top of their certificate under mutual
    /// TLS: otherwise anyone who reaches the port could act as a worker and forge results.
    #[arg(long)]
    pub workers_without_token: bool,
    /// File whose first line is a read-only token for the dashboard's data and /metrics
    /// (Prometheus: `authorization: credentials`; a browser: open `/#token=TOKEN`). The client
    /// token is accepted there too; once either is set, those need one.
    #[arg(long, env = "STILTS_HTTP_TOKEN_FILE", value_name = "FILE")]
    pub http_token_file: Option<PathBuf>,
    /// The read-only HTTP token itself (prefer the environment or --http-token-file).
    #[arg(
        long,
        env = "STILTS_HTTP_TOKEN",
        hide_env_values = true,
        conflicts_with = "http_token_file"
    )]
    pub http_token: Option<String>,
    /// Serve the dashboard's data and /metrics without a token although one is set.
    #[arg(long)]
    pub http_without_token: bool,
}

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// HuggingFace model directory (config.json, model.safetensors, tokenizer.json) or hub id;
    /// model_type bert, roberta, xlm-roberta or xlnet.
    #[arg(long)]
    pub model: String,
    /// Hidden layer to pool (0 = embeddings; default: last).
    #[arg(long)]
    pub layer: Option<usize>,
    /// mean (over all tokens, special ones included) or cls (the summary token: the first,
    /// XLNet's last).
    #[arg(long, default_value = "mean")]
    pub pool: String,
    /// Read one text per line from this file.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Texts to encode.
    pub texts: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    #[arg(long)]
    pub task: String,
    #[arg(long)]
    pub lang: String,
    #[arg(long)]
    pub predictions: PathBuf,
    #[arg(long)]
    pub gold: PathBuf,
    /// Extra task definitions (TOML).
    #[arg(long)]
    pub catalog: Option<PathBuf>,
}

/// An HTTP listen address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpAddr(pub Option<SocketAddr>);

impl FromStr for HttpAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(Self(None));
        }
        s.parse()
            .map(|a| Self(Some(a)))
            .map_err(|e| format!("{s:?} is not `off` or an address such as 127.0.0.1:50052 ({e})"))
    }
}

/// A duration flag: the one syntax of `stilts_common::duration` (`30s`, `1.5m`, `1h30m`); a bare
/// number counts seconds, as these flags always did.
fn duration(text: &str) -> Result<Duration, String> {
    stilts_common::duration::parse_or_seconds(text).map_err(|e| e.to_string())
}

/// A memory size flag (`80GiB`, `40G`, `70000MiB`, bytes): `stilts_worker::byte_size`.
fn memory_size(text: &str) -> Result<u64, String> {
    stilts_worker::byte_size::parse(text)
}

/// `--lease-ttl`: a [`duration`] from 2 s to 1 d.
fn lease_ttl(text: &str) -> Result<Duration, String> {
    let d = duration(text)?;
    if !(Duration::from_secs(2)..=Duration::from_secs(86_400)).contains(&d) {
        return Err(format!(
            "{text:?} is outside 2s..=1d: workers heartbeat every third of the TTL (e.g. \"30s\")"
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_flags_take_the_one_syntax_and_bare_seconds() {
        assert_eq!(lease_ttl("30"), Ok(Duration::from_secs(30)));
        assert_eq!(lease_ttl("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(lease_ttl("2s"), Ok(Duration::from_secs(2)));
        let e = lease_ttl("1500ms").unwrap_err();
        assert!(
            e.contains("outside 2s..=1d") && e.contains("\"30s\""),
            "{e}"
        );
        assert!(lease_ttl("2d").is_err());
        let e = duration("5 minutes").unwrap_err();
        assert!(e.contains("\"5 minutes\" has an unknown unit"), "{e}");
        let cli = Cli::try_parse_from(["stilts", "health", "--timeout", "500ms"]).unwrap();
        let Command::Health(h) = cli.command else {
            panic!("not health")
        };
        assert_eq!(h.timeout, Duration::from_millis(500));
        let cli = Cli::try_parse_from(["stilts", "health"]).unwrap();
        let Command::Health(h) = cli.command else {
            panic!("not health")
        };
        assert_eq!(h.timeout, Duration::from_secs(5));
    }

    fn worker(args: &[&str]) -> Result<WorkerArgs, clap::Error> {
        let base = ["stilts", "worker", "--coordinator", "http://c:1"];
        let cli = Cli::try_parse_from(base.iter().chain(args))?;
        match cli.command {
            Command::Worker(w) => Ok(w),
            _ => panic!("not worker"),
        }
    }

    #[test]
    fn worker_gpu_packing_flags() {
        let w = worker(&[]).unwrap();
        assert_eq!(
            (w.slots, w.gpus.len(), w.gpu_memory, w.jobs_per_gpu),
            (1, 0, None, None)
        );
        let w = worker(&[
            "--backend",
            "libtorch-cuda",
            "--gpus",
            "0,1,3",
            "--gpu-memory",
            "80GiB",
            "--jobs-per-gpu",
            "4",
        ])
        .unwrap();
        assert_eq!(w.gpus, vec![0, 1, 3]);
        assert_eq!(w.gpu_memory, Some(80 << 30));
        assert_eq!(w.jobs_per_gpu, Some(4));
        let w = worker(&["--gpus", "2"]).unwrap();
        assert_eq!((w.gpus, w.gpu_memory), (vec![2], None));
        // --slots counts CPU jobs: with --gpus the memory decides.
        let e = worker(&["--gpus", "0", "--slots", "4"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--slots") && e.contains("--gpus"), "{e}");
        assert!(worker(&["--gpu-memory", "80GiB"]).is_err(), "needs --gpus");
        assert!(worker(&["--gpus", "0", "--jobs-per-gpu", "0"]).is_err());
        let e = worker(&["--gpus", "0", "--gpu-memory", "lots"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a memory size"), "{e}");
        assert_eq!(worker(&["--slots", "4"]).unwrap().slots, 4);
    }
}

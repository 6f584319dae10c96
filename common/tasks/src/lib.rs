//! The task catalog (as data), dataset readers for the XTREME download layout and the original
//! distributions, and metrics identical to the official scripts. No burn here: the coordinator's
//! report and `stilts score` use this crate too.
//!
//! # Using it
//!
//! ```no_run
//! use std::path::Path;
//! use stilts_tasks::{Catalog, Dataset, Split, load};
//!
//! let catalog = Catalog::builtin(); // or Catalog::with_user_file(Path::new("my-tasks.toml"))?
//! let xnli = catalog.get("xnli").expect("built-in task");
//! // data_root holds per-task folders (`xnli/`, `udpos/`, …) in the XTREME download layout or
//! // the original distributions; the layout is detected per split.
//! let dev_de = load(xnli, Split::Dev, "de", Path::new("/data/xtreme"))?;
//! if let Dataset::Pairs(examples) = dev_de {
//!     println!("{} pairs, labels {:?}", examples.len(), xnli.labels);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! * [`Catalog`] / [`TaskDef`]: name, role, domain label, head, metric, languages, labels,
//!   English training tasks and the file layouts of every task (`catalog.toml`).
//! * [`load`] → [`Dataset`] (typed examples, see [`example`]); [`locate`] says which files.
//!   For the test split, labelled original layouts are preferred over XTREME's unlabelled copies.
//! * [`metrics`]: accuracy, Pearson/Spearman, SQuAD/MLQA EM+F1, seqeval 1.2.2 F1, mAP@k and the
//!   XTREME-R aggregation ([`metrics::task_score`]).
//! * [`score`]: one prediction file in the XTREME submission format against a gold file.
//! * The synthetic demo tasks `demo-nli`, `demo-sentiment` (intermediate) and `demo-nli-x`
//!   (target; en/de/fr/es) load from a copy embedded in the library (`demo/README.md`).

pub mod catalog;
pub mod demo;
pub mod error;
pub mod example;
pub mod lang;
mod load;
pub mod metrics;
pub mod readers;
mod score;

pub use catalog::{
    Catalog, Columns, Head, Layout, LayoutKind, Metric, MixtureComponent, ReaderKind, Role, TaskDef,
};
pub use error::{CatalogError, ScoreError, TaskError};
pub use example::*;
pub use load::{Located, Split, load, locate, locate_all};
pub use score::{Scored, score, score_checked};

//! The task catalog, as data: `catalog.toml` (embedded) plus optional user files that add or
//! replace tasks. See `catalog.toml` for the format; every key is documented there.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::CatalogError;

/// The built-in catalog source, embedded at compile time.
pub const BUILTIN_CATALOG: &str = include_str!("../catalog.toml");

/// What the task is in the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An XTREME(-R) target: trained on English, evaluated zero-shot on every listed language.
    Target,
    /// An English intermediate task (the "STILTs" stage).
    Intermediate,
}

/// The model head a task needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Head {
    Classification,
    Regression,
    MultipleChoice,
    SpanQa,
    TokenClassification,
    /// Zero-shot retrieval with the encoder's pooled states, no training (Tatoeba).
    Retrieval,
    /// A trained dual encoder: one shared encoder embeds queries and candidates, trained with an
    /// in-batch softmax over pairs (LAReQA, Mewsli-X, multi-task pair mixtures).
    DualEncoder,
}

/// The official metric of a task (see [`crate::metrics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// `accuracy` ×100.
    Accuracy,
    /// `pearson` and `spearman` ×100 (STS-B).
    PearsonSpearman,
    /// `exact_match` and `f1`, SQuAD v1.1 normalisation.
    Squad,
    /// `exact_match` and `f1`, MLQA language-aware normalisation (context language).
    Mlqa,
    /// seqeval 1.2.2 default-mode micro chunk `f1` (also `precision`, `recall`).
    SeqevalF1,
    /// `map@20` (mean average precision at 20; MRR@20 with one gold).
    #[serde(rename = "map_at_20")]
    MapAt20,
}

/// Which file family a layout reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayoutKind {
    /// What google-research/xtreme's `download_data.sh` writes (test labels removed).
    Xtreme,
    /// The dataset's own distribution (labelled test sets where they are public).
    Original,
    /// Files shipped in this crate (`demo/`).
    Demo,
}

/// The reader (file format) of a layout. See `readers/` for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReaderKind {
    /// `s1<TAB>s2<TAB>label` (2 columns = unlabelled test), no header: XTREME xnli/pawsx, demo.
    XtremePairTsv,
    /// `sentence<TAB>label` without header (demo single-sentence tasks).
    XtremeSingleTsv,
    /// XNLI-1.0 `xnli.{dev,test}.tsv` (header; `language` column filters).
    XnliTsv,
    /// XNLI-1.0 `xnli.{dev,test}.jsonl` (`language` field filters).
    XnliJsonl,
    /// XNLI-MT-1.0 `multinli.train.{lang}.tsv` / `xnli.{split}.{lang}.tsv` style: header `premise hypo label`.
    XnliMtTsv,
    /// PAWS-X `x-final` tsv: header `id sentence1 sentence2 label`.
    PawsxTsv,
    /// GLUE tsv with a header; columns found by name (MNLI, QQP, SST-2, STS-B).
    GlueTsv,
    /// MultiNLI / SNLI 1.0 jsonl (`sentence1`, `sentence2`, `gold_label`; "-" rows skipped).
    NliJsonl,
    /// jiant jsonl (`premise`, `hypothesis`, `label`).
    JiantNliJsonl,
    /// ANLI jsonl (`context`, `hypothesis`, `label` ∈ e/n/c).
    AnliJsonl,
    /// aclImdb folders `{split}/{pos,neg}/*.txt`; the pattern names the split folder.
    ImdbDir,
    /// COPA / XCOPA jsonl.
    CopaJsonl,
    /// Social IQa jsonl (`correct` A/B/C, or a sibling `*-labels.lst` with 1-based labels).
    SiqaJsonl,
    /// HellaSwag jsonl.
    HellaswagJsonl,
    /// Cosmos QA csv (or jsonl test file).
    CosmosqaCsv,
    /// CommonsenseQA jsonl (original schema or the HF export).
    CommonsenseqaJsonl,
    /// SQuAD v1.1 json (SQuAD, XQuAD, MLQA, TyDiQA-GoldP per language).
    SquadJson,
    /// The combined TyDiQA-GoldP json; examples filtered by the language prefix of their id.
    TydiqaCombinedJson,
    /// CoNLL-U, multi-word tokens merged as XTREME's conversion does (UD-POS).
    Conllu,
    /// `token<TAB>tag`, blank line between sentences (tokens only = unlabelled test).
    XtremeTagTsv,
    /// PAN-X original `lang:token<TAB>TAG`.
    PanxOriginal,
    /// LASER Tatoeba `tatoeba.{xxx}-eng.{xxx}` (+ `.eng`): line i ↔ line i.
    TatoebaLaser,
    /// LAReQA XQuAD-R json; the pool is built from every language file in the folder.
    LareqaJson,
    /// Mewsli-X `wikinews_mentions` jsonl + `candidate_set_entities.jsonl` in the same folder or its parent.
    MewslixJsonl,
    /// Any comma-separated file with a header row; `columns` names the text, pair and label
    /// columns (classification and regression).
    Csv,
    /// Any tab-separated file with a header row; `columns` as for `csv`.
    Tsv,
    /// JSON Lines, one object per line; `columns` names the keys.
    Jsonl,
}

impl ReaderKind {
    /// The generic readers that need a `columns` mapping.
    pub fn needs_columns(self) -> bool {
        matches!(self, Self::Csv | Self::Tsv | Self::Jsonl)
    }
}

/// Which columns (csv/tsv header names, or JSON keys) of a generic file hold what.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    /// The input text (the first sentence of a pair).
    pub text: String,
    /// The second sentence of a pair task (NLI, paraphrase, similarity); absent for one text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<String>,
    /// The gold label (one of `labels`) or, for `head = "regression"`, a number. Absent, or
    /// missing from a file: that file is unlabelled (test sets without gold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// One way the task's files can be laid out under the data root.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// Short name shown in errors and logs. Default "files".
    #[serde(default = "default_layout_name")]
    pub name: String,
    /// Default `original` (a user's own files, labelled test sets).
    #[serde(default = "default_layout_kind")]
    pub kind: LayoutKind,
    pub reader: ReaderKind,
    /// Folders relative to the data root tried in order (default: the task name).
    #[serde(default)]
    pub dirs: Vec<String>,
    /// Restricts the layout to these languages (default: all of the task's).
    #[serde(default)]
    pub languages: Option<Vec<String>>,
    /// File patterns relative to a dir, tried in order. Placeholders: `{lang}` (ISO 639-1),
    /// `{lang3}` (Tatoeba/LASER ISO 639-3), `{lang_name}` (TyDiQA's English language name).
    #[serde(default)]
    pub train: Vec<String>,
    #[serde(default)]
    pub dev: Vec<String>,
    #[serde(default)]
    pub test: Vec<String>,
    /// Column mapping of the generic `csv`, `tsv` and `jsonl` readers (required there, refused
    /// elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Columns>,
}

fn default_layout_name() -> String {
    "files".into()
}

fn default_layout_kind() -> LayoutKind {
    LayoutKind::Original
}

/// One task of the catalog. Serialised (JSON) it travels with the jobs of a grid that defines
/// it, so that every worker, the dashboard and the report see the definition the sweep was
/// planned with.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDef {
    /// Filled from the table key.
    #[serde(skip)]
    pub name: String,
    pub role: Role,
    /// Domain label used to group the transfer matrix (nli, qa, commonsense_mc, …).
    pub domain: String,
    pub head: Head,
    pub metric: Metric,
    /// Evaluation languages (official XTREME-R list for targets; `["en"]` for intermediate tasks).
    pub languages: Vec<String>,
    /// Label list (class index = position). Empty for QA, regression and retrieval.
    #[serde(default)]
    pub labels: Vec<String>,
    /// For targets: the English task(s) its zero-shot training data comes from, in order.
    #[serde(default)]
    pub english_train: Vec<String>,
    /// Input template for multiple-choice contexts (`{premise}`, `{question}`, `{context}`).
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(rename = "layout", default)]
    pub layouts: Vec<Layout>,
    /// A multi-task dual encoder (`head = "dual_encoder"`, `role = "intermediate"`): the pair
    /// tasks it trains on together, each batch drawn from one of them with probability ∝
    /// `weight`. Such a task has no files of its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mixture: Vec<MixtureComponent>,
}

/// One pair task of a mixture (`[[tasks.NAME.mixture]]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MixtureComponent {
    /// A task of the catalog whose English train split gives (query, candidate) pairs: QA
    /// (question → answer sentence), pairs (text → second text: translations, NLI), retrieval.
    pub task: String,
    /// Sampling weight (positive; normalised over the mixture).
    pub weight: f64,
    /// For a labelled pair task: only pairs with this label are positives (NLI `entailment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl TaskDef {
    /// Index of `label` in the label list.
    pub fn label_index(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }
    /// The evaluation languages other than English (the purer zero-shot average).
    pub fn non_english_languages(&self) -> impl Iterator<Item = &str> {
        self.languages
            .iter()
            .map(String::as_str)
            .filter(|l| *l != "en")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    tasks: BTreeMap<String, TaskDef>,
}

/// `[tasks.NAME]` sections inside another TOML document (a grid file); other keys are ignored.
#[derive(Deserialize)]
struct EmbeddedTasks {
    #[serde(default)]
    tasks: BTreeMap<toml::Spanned<String>, TaskDef>,
}

/// The set of known tasks, keyed by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    tasks: BTreeMap<String, TaskDef>,
}

impl Catalog {
    /// The built-in catalog (`common/tasks/catalog.toml`).
    pub fn builtin() -> Catalog {
        let mut catalog = Catalog::default();
        catalog
            .merge_str(BUILTIN_CATALOG, "catalog.toml (built in)")
            .expect("the built-in catalog is valid (tested)");
        catalog
    }

    /// The built-in catalog plus a user TOML file whose tasks are added or replace built-in tasks
    /// of the same name. Unknown keys are errors naming the file and line.
    pub fn with_user_file(path: &Path) -> Result<Catalog, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut catalog = Catalog::builtin();
        catalog.merge_str(&text, &path.display().to_string())?;
        Ok(catalog)
    }

    /// Adds the tasks of a TOML document (same format as `catalog.toml`); `file` names it in errors.
    pub fn merge_str(&mut self, text: &str, file: &str) -> Result<(), CatalogError> {
        let parsed: CatalogFile = toml::from_str(text).map_err(|e| parse_error(text, file, &e))?;
        let mut names = Vec::new();
        for (name, mut task) in parsed.tasks {
            task.name = name.clone();
            validate(&task, file)?;
            names.push(name.clone());
            self.tasks.insert(name, task);
        }
        for name in names {
            self.check_mixture(&self.tasks[&name], file)?;
        }
        Ok(())
    }

    /// A mixture's components must be known tasks that read pairs, with a label the task has.
    fn check_mixture(&self, task: &TaskDef, file: &str) -> Result<(), CatalogError> {
        for (i, c) in task.mixture.iter().enumerate() {
            let invalid = |message: String| CatalogError::Invalid {
                file: file.to_string(),
                task: task.name.clone(),
                message: format!("mixture[{i}].{message}"),
            };
            let Some(def) = self.tasks.get(&c.task) else {
                return Err(invalid(format!("task: unknown task `{}`", c.task)));
            };
            if !def.mixture.is_empty() {
                return Err(invalid(format!(
                    "task: `{}` is itself a mixture; list its components instead",
                    c.task
                )));
            }
            if matches!(def.head, Head::MultipleChoice | Head::TokenClassification) {
                return Err(invalid(format!(
                    "task: `{}` (head {:?}) gives no (query, candidate) pairs",
                    c.task, def.head
                )));
            }
            if def.layouts.iter().all(|l| l.train.is_empty()) {
                return Err(invalid(format!(
                    "task: `{}` has no train split to draw pairs from",
                    c.task
                )));
            }
            if let Some(label) = &c.label
                && def.label_index(label).is_none()
            {
                return Err(invalid(format!(
                    "label: `{label}` is not a label of `{}` ({})",
                    c.task,
                    def.labels.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Adds the `[tasks.NAME]` sections of another TOML document (a grid file: its other keys
    /// are not looked at) and returns the added tasks. A name this catalog knows already is an
    /// error: a grid defines new tasks, it does not redefine shared ones. Every error names
    /// `file`, line and column.
    pub fn add_embedded(&mut self, text: &str, file: &str) -> Result<Vec<TaskDef>, CatalogError> {
        let parsed: EmbeddedTasks =
            toml::from_str(text).map_err(|e| parse_error(text, file, &e))?;
        let mut added = Vec::new();
        for (name, mut task) in parsed.tasks {
            let (line, column) = line_col(text, name.span().start);
            let at = |message: String| CatalogError::Parse {
                file: file.to_string(),
                line,
                column,
                message,
            };
            let name = name.into_inner();
            if self.tasks.contains_key(&name) {
                return Err(at(format!(
                    "task `{name}` is already defined (built in or in a `catalog` file); pick another name"
                )));
            }
            task.name = name.clone();
            validate(&task, file).map_err(|e| match e {
                CatalogError::Invalid { task, message, .. } => {
                    at(format!("task `{task}`: {message}"))
                }
                other => other,
            })?;
            self.tasks.insert(name, task.clone());
            added.push(task);
        }
        for task in &added {
            self.check_mixture(task, file).map_err(|e| match e {
                CatalogError::Invalid { task, message, .. } => {
                    let (line, column) = line_col(text, mixture_offset(text, &task));
                    CatalogError::Parse {
                        file: file.to_string(),
                        line,
                        column,
                        message: format!("task `{task}`: {message}"),
                    }
                }
                other => other,
            })?;
        }
        Ok(added)
    }

    /// Adds one definition as it travelled with a job or sweep (JSON of [`TaskDef`]), replacing
    /// a task of the same name.
    pub fn insert(&mut self, task: TaskDef) {
        self.tasks.insert(task.name.clone(), task);
    }

    /// The task called `name`.
    pub fn get(&self, name: &str) -> Option<&TaskDef> {
        self.tasks.get(name)
    }

    /// All tasks, sorted by name.
    pub fn tasks(&self) -> impl Iterator<Item = &TaskDef> {
        self.tasks.values()
    }
}

fn parse_error(text: &str, file: &str, e: &toml::de::Error) -> CatalogError {
    let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
    CatalogError::Parse {
        file: file.to_string(),
        line,
        column,
        message: e.message().to_string(),
    }
}

impl TaskDef {
    /// A definition as it travelled with a job (`serde_json::to_value` of a [`TaskDef`]).
    pub fn from_json(name: &str, value: &serde_json::Value) -> Result<TaskDef, serde_json::Error> {
        let mut task: TaskDef = serde_json::from_value(value.clone())?;
        task.name = name.to_string();
        Ok(task)
    }
}

fn validate(task: &TaskDef, file: &str) -> Result<(), CatalogError> {
    let invalid = |message: String| CatalogError::Invalid {
        file: file.to_string(),
        task: task.name.clone(),
        message,
    };
    if task.languages.is_empty() {
        return Err(invalid("`languages` is empty".into()));
    }
    if !task.mixture.is_empty() {
        if task.head != Head::DualEncoder || task.role != Role::Intermediate {
            return Err(invalid(
                "a `mixture` task needs `head = \"dual_encoder\"` and `role = \"intermediate\"`"
                    .into(),
            ));
        }
        if !task.layouts.is_empty() {
            return Err(invalid(
                "a `mixture` task reads its components' files; it has no `layout`".into(),
            ));
        }
        for (i, c) in task.mixture.iter().enumerate() {
            if !(c.weight.is_finite() && c.weight > 0.0) {
                return Err(invalid(format!(
                    "mixture[{i}].weight: {} must be a positive number",
                    c.weight
                )));
            }
        }
        return Ok(());
    }
    if task.layouts.is_empty() {
        return Err(invalid("no `[[tasks.NAME.layout]]`".into()));
    }
    let needs_labels = matches!(task.head, Head::Classification | Head::TokenClassification);
    if needs_labels && task.labels.is_empty() {
        return Err(invalid(format!("head {:?} needs `labels`", task.head)));
    }
    for layout in &task.layouts {
        if layout.train.is_empty() && layout.dev.is_empty() && layout.test.is_empty() {
            return Err(invalid(format!("layout `{}` lists no files", layout.name)));
        }
        match (&layout.columns, layout.reader.needs_columns()) {
            (None, true) => {
                return Err(invalid(format!(
                    "layout `{}`: reader {:?} needs `columns = {{ text = \"…\", pair = \"…\", label = \"…\" }}`",
                    layout.name, layout.reader
                )));
            }
            (Some(_), false) => {
                return Err(invalid(format!(
                    "layout `{}`: `columns` is only read by the csv, tsv and jsonl readers",
                    layout.name
                )));
            }
            _ => {}
        }
        if layout.reader.needs_columns()
            && !matches!(
                task.head,
                Head::Classification | Head::Regression | Head::DualEncoder
            )
        {
            return Err(invalid(format!(
                "layout `{}`: the csv, tsv and jsonl readers read classification, regression and dual_encoder (text → pair) tasks, not {:?}",
                layout.name, task.head
            )));
        }
    }
    Ok(())
}

/// Where a task's mixture is written (its first `[[tasks.NAME.mixture]]` or `mixture =`), else
/// 0: errors about a component point there.
fn mixture_offset(text: &str, task: &str) -> usize {
    [
        format!("[[tasks.{task}.mixture]]"),
        format!("[tasks.{task}]"),
    ]
    .iter()
    .find_map(|needle| text.find(needle.as_str()))
    .unwrap_or(0)
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

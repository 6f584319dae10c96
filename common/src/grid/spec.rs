//! The grid file as written: serde structs with spans, before validation (see `load.rs`).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

/// A string with its position in the file.
pub type SpannedStr = Spanned<String>;

/// The whole grid file. Unknown keys anywhere are errors.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridSpec {
    /// Shared catalog files (same format as the built-in catalog.toml), relative to the grid's
    /// folder. Read by `grid::tasks`, not here.
    pub catalog: Option<Spanned<Vec<SpannedStr>>>,
    /// `[tasks.NAME]`: the grid's own tasks. Read and validated by `grid::tasks`, not here.
    pub tasks: Option<toml::Value>,
    pub sweep: Spanned<SweepSection>,
    /// Model name = HuggingFace directory or hub id.
    pub models: Spanned<Entries<SpannedStr>>,
    pub grid: Spanned<GridSection>,
    /// Absent: `languages_per_job = 0`.
    pub evaluate: Option<EvaluateSection>,
    /// Absent: no hyperparameters (every recipe is empty).
    pub recipe: Option<RecipeSection>,
    /// Absent: `kind = "burn"`.
    pub executor: Option<Spanned<ExecutorSection>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSection {
    pub name: SpannedStr,
    pub seeds: Spanned<Vec<Spanned<u64>>>,
    /// Enters every job key. Default "unversioned".
    pub data_version: Option<SpannedStr>,
    /// Enters every job key. Command executor default "unversioned"; burn default: the stilts
    /// version.
    pub code_version: Option<SpannedStr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridSection {
    pub intermediate: Spanned<Vec<SpannedStr>>,
    pub target: Spanned<Vec<SpannedStr>>,
    pub languages: Spanned<Languages>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluateSection {
    /// Languages per evaluate job; 0 (default) = all languages of a target checkpoint in one job.
    #[serde(default)]
    pub languages_per_job: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSection {
    /// "command" or "burn".
    pub kind: SpannedStr,
    /// burn: "cpu" or "libtorch-cuda". Where a job runs does not enter its key.
    pub backend: Option<SpannedStr>,
    pub intermediate: Option<SpannedStr>,
    pub target: Option<SpannedStr>,
    pub evaluate: Option<SpannedStr>,
    pub retryable_exit_codes: Option<Spanned<Vec<i32>>>,
    /// "90s", "30m", "6h", "1h30m".
    pub timeout: Option<SpannedStr>,
}

/// `languages = "all" | ["en", …] | { target = "all" | ["en", …] }`. A string other than "all"
/// is kept as `Word` so that validation can point at it.
#[derive(Debug)]
pub enum Languages {
    Word(String),
    List(Vec<SpannedStr>),
    PerTarget(Vec<(SpannedStr, Spanned<Languages>)>),
}

impl<'de> Deserialize<'de> for Languages {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Languages;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"all\", a list of languages, or a table of target = languages")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Languages, E> {
                Ok(Languages::Word(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Languages, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(Languages::List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Languages, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key()? {
                    out.push((k, map.next_value()?));
                }
                Ok(Languages::PerTarget(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A TOML table read as (key, value) pairs with the keys' positions (in key order: TOML tables
/// are unordered).
#[derive(Debug)]
pub struct Entries<V>(pub Vec<(SpannedStr, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Vis<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<V>, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key()? {
                    out.push((k, map.next_value()?));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(Vis(std::marker::PhantomData))
    }
}

/// `[recipe]`: default hyperparameters (`params`), and `[recipe.<stage>]` tables for the stage
/// names intermediate, target and evaluate. Any other table stays in `params` so that validation
/// can name it.
#[derive(Debug, Default)]
pub struct RecipeSection {
    pub params: Vec<(SpannedStr, Spanned<toml::Value>)>,
    pub stages: Vec<(SpannedStr, Spanned<StageRecipe>)>,
}

/// `[recipe.<stage>]`: non-table values are stage defaults, tables are per-task overrides.
#[derive(Debug, Default)]
pub struct StageRecipe {
    pub params: Vec<(SpannedStr, Spanned<toml::Value>)>,
    pub tasks: Vec<(SpannedStr, Spanned<toml::Table>)>,
}

impl<'de> Deserialize<'de> for RecipeSection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis;
        impl<'de> Visitor<'de> for Vis {
            type Value = RecipeSection;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of hyperparameters")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RecipeSection, A::Error> {
                let mut out = RecipeSection::default();
                while let Some(k) = map.next_key::<SpannedStr>()? {
                    if crate::job::StageKind::parse(k.get_ref()).is_some() {
                        out.stages.push((k, map.next_value()?));
                    } else {
                        out.params.push((k, map.next_value()?));
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(Vis)
    }
}

impl<'de> Deserialize<'de> for StageRecipe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Entries(entries) = Entries::<Spanned<toml::Value>>::deserialize(d)?;
        let mut out = StageRecipe::default();
        for (k, v) in entries {
            let span = v.span();
            match v.into_inner() {
                toml::Value::Table(t) => out.tasks.push((k, Spanned::new(span, t))),
                other => out.params.push((k, Spanned::new(span, other))),
            }
        }
        Ok(out)
    }
}

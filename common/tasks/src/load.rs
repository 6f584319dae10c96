//! Finding a task's files under a data root (layout detection) and dispatching to the reader.

use std::path::{Path, PathBuf};

use crate::catalog::{Layout, LayoutKind, TaskDef};
use crate::error::TaskError;
use crate::example::Dataset;
use crate::{demo, lang, readers};

/// A split of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Dev,
    Test,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a split's data was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<'a> {
    pub layout: &'a Layout,
    /// The files, in reading order (several when a pattern globs, e.g. all UD treebanks of a language).
    pub files: Vec<PathBuf>,
    /// The files are embedded in this crate (demo corpus), not on disk.
    pub embedded: bool,
}

/// Finds the files of `task`'s `split` in `lang` under `data_root`, trying the task's layouts in
/// catalog order (for the test split, labelled `original` layouts first). English is accepted
/// for every task (the English train/dev data of a target).
pub fn locate<'a>(
    task: &'a TaskDef,
    split: Split,
    lang: &str,
    data_root: &Path,
) -> Result<Located<'a>, TaskError> {
    candidates(task, split, lang, data_root)?
        .into_iter()
        .next()
        .ok_or_else(|| not_found(task, split, lang, data_root, &tried(task, split, lang)))
}

/// Every layout of `task`'s `split` in `lang` that has files under `data_root`, in the order
/// [`load`] tries them (it moves on when a file holds no rows of `lang`): what a job may read.
pub fn locate_all<'a>(
    task: &'a TaskDef,
    split: Split,
    lang: &str,
    data_root: &Path,
) -> Result<Vec<Located<'a>>, TaskError> {
    candidates(task, split, lang, data_root)
}

/// Every existing candidate, in preference order.
fn candidates<'a>(
    task: &'a TaskDef,
    split: Split,
    lang: &str,
    data_root: &Path,
) -> Result<Vec<Located<'a>>, TaskError> {
    if !task.languages.iter().any(|l| l == lang) && lang != "en" {
        return Err(TaskError::Unsupported {
            task: task.name.clone(),
            message: format!(
                "language `{lang}` is not one of its languages ({})",
                task.languages.join(" ")
            ),
        });
    }
    let mut found = Vec::new();
    for (layout, rel_path) in paths(task, split, lang) {
        let files = glob(data_root, &rel_path);
        if !files.is_empty() {
            found.push(Located {
                layout,
                files,
                embedded: false,
            });
        } else if layout.kind == LayoutKind::Demo && demo::file(&rel_path).is_some() {
            found.push(Located {
                layout,
                files: vec![PathBuf::from(rel_path)],
                embedded: true,
            });
        }
    }
    Ok(found)
}

/// (layout, relative path pattern) pairs in preference order.
fn paths<'a>(task: &'a TaskDef, split: Split, lang: &str) -> Vec<(&'a Layout, String)> {
    let mut layouts: Vec<&Layout> = task.layouts.iter().collect();
    if split == Split::Test {
        layouts.sort_by_key(|l| l.kind != LayoutKind::Original);
    }
    let mut out = Vec::new();
    for layout in layouts {
        if let Some(langs) = &layout.languages
            && !langs.iter().any(|l| l == lang)
        {
            continue;
        }
        let patterns = match split {
            Split::Train => &layout.train,
            Split::Dev => &layout.dev,
            Split::Test => &layout.test,
        };
        let default_dirs = [task.name.clone()];
        let dirs: &[String] = if layout.dirs.is_empty() {
            &default_dirs
        } else {
            &layout.dirs
        };
        for pattern in patterns {
            let Some(rel) = fill_pattern(pattern, lang) else {
                continue;
            };
            for dir in dirs {
                let rel_path = if dir == "." || dir.is_empty() {
                    rel.clone()
                } else {
                    format!("{dir}/{rel}")
                };
                out.push((layout, rel_path));
            }
        }
    }
    out
}

fn tried(task: &TaskDef, split: Split, lang: &str) -> String {
    let p: Vec<String> = paths(task, split, lang)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    if p.is_empty() {
        "(no layout has this split)".into()
    } else {
        p.join(", ")
    }
}

fn not_found(task: &TaskDef, split: Split, lang: &str, root: &Path, tried: &str) -> TaskError {
    TaskError::NotFound {
        task: task.name.clone(),
        split: split.to_string(),
        lang: lang.to_string(),
        root: root.to_path_buf(),
        tried: tried.to_string(),
    }
}

/// Loads one split of a task in one language from `data_root` (a folder holding per-task folders
/// such as `xnli/`, `udpos/`; both the XTREME download layout and the original distributions are
/// recognised). A multi-language file without rows for `lang` (e.g. a partial XNLI-1.0 copy)
/// falls through to the next layout. The synthetic demo tasks fall back to the copy embedded in
/// this crate.
pub fn load(
    task: &TaskDef,
    split: Split,
    lang: &str,
    data_root: &Path,
) -> Result<Dataset, TaskError> {
    let mut first_empty = None;
    for located in candidates(task, split, lang, data_root)? {
        let ctx = readers::ReadCtx {
            task,
            lang,
            split,
            layout: located.layout,
        };
        let data = if located.embedded {
            let name = located.files[0].to_string_lossy().to_string();
            let text = demo::file(&name).expect("located embedded file exists");
            let path = PathBuf::from(format!("<embedded demo>/{name}"));
            readers::read_text(&ctx, &path, text)?
        } else {
            readers::read_files(&ctx, &located.files)?
        };
        if !data.is_empty() {
            return Ok(data);
        }
        first_empty.get_or_insert(data);
    }
    first_empty.ok_or_else(|| not_found(task, split, lang, data_root, &tried(task, split, lang)))
}

/// Replaces `{lang}`, `{lang3}`, `{lang_name}`; `None` when the language has no such code.
fn fill_pattern(pattern: &str, code: &str) -> Option<String> {
    let mut out = pattern.replace("{lang}", code);
    if out.contains("{lang3}") {
        out = out.replace("{lang3}", lang::iso639_3(code)?);
    }
    if out.contains("{lang_name}") {
        out = out.replace("{lang_name}", lang::tydiqa_name(code)?);
    }
    Some(out)
}

/// Expands `*` within path components; returns existing paths, sorted per component.
fn glob(root: &Path, rel: &str) -> Vec<PathBuf> {
    let mut current = vec![root.to_path_buf()];
    for component in rel.split('/') {
        let mut next = Vec::new();
        for base in &current {
            if component.contains('*') {
                let Ok(entries) = std::fs::read_dir(base) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .filter(|n| wildcard_match(component, n))
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|n| base.join(n)));
            } else {
                let p = base.join(component);
                if p.exists() {
                    next.push(p);
                }
            }
        }
        current = next;
        if current.is_empty() {
            break;
        }
    }
    current
}

/// `*` matches any run of characters (no other metacharacters).
pub(crate) fn wildcard_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard() {
        assert!(wildcard_match("UD_*", "UD_English-EWT"));
        assert!(wildcard_match(
            "en_*-ud-test.conllu",
            "en_ewt-ud-test.conllu"
        ));
        assert!(!wildcard_match(
            "en_*-ud-test.conllu",
            "de_gsd-ud-test.conllu"
        ));
        assert!(!wildcard_match("a*b", "ab_"));
        assert!(wildcard_match("a*b*c", "axxbyyc"));
    }

    #[test]
    fn patterns() {
        assert_eq!(
            fill_pattern("tatoeba.{lang3}-eng.{lang3}", "de").as_deref(),
            Some("tatoeba.deu-eng.deu")
        );
        assert_eq!(
            fill_pattern("x-{lang_name}.json", "sw").as_deref(),
            Some("x-swahili.json")
        );
        assert_eq!(fill_pattern("{lang3}", "xx"), None);
    }
}

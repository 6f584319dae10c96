//! aclImdb: `{split}/neg/*.txt` and `{split}/pos/*.txt`, one review per file.

use std::path::Path;

use super::{ReadCtx, read_to_string};
use crate::error::TaskError;
use crate::example::{Dataset, PairExample};

/// Reads `neg/` then `pos/` of a split folder, files in numeric id order. `<br />` tags are kept
/// (they are part of the released text).
pub fn read(ctx: &ReadCtx<'_>, split_dir: &Path) -> Result<Dataset, TaskError> {
    let mut out = Vec::new();
    for class in ["neg", "pos"] {
        let dir = split_dir.join(class);
        let entries = std::fs::read_dir(&dir).map_err(|e| TaskError::io(&dir, e))?;
        let mut files: Vec<(u64, u64, std::path::PathBuf)> = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| TaskError::io(&dir, e))?.path();
            if path.extension().is_none_or(|x| x != "txt") {
                continue;
            }
            let stem = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let (id, rating) = stem
                .split_once('_')
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                .ok_or_else(|| {
                    TaskError::format(&path, 0, "file name is not `<id>_<rating>.txt`")
                })?;
            files.push((id, rating, path));
        }
        files.sort();
        for (id, rating, path) in files {
            let ok = match class {
                "neg" => rating <= 4,
                _ => rating >= 7,
            };
            if !ok {
                return Err(TaskError::format(
                    &path,
                    0,
                    format!("rating {rating} does not fit the `{class}` folder"),
                ));
            }
            let text = read_to_string(&path)?;
            out.push(PairExample {
                id: format!("{class}/{id}_{rating}"),
                text_a: text.trim_end().to_string(),
                text_b: None,
                label: ctx.class(&path, 1, class)?,
            });
        }
    }
    Ok(Dataset::Pairs(out))
}

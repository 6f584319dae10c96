//! The tasks a grid may name: the process's catalog, the grid's `catalog = [...]` files and its
//! own `[tasks.NAME]` sections (same keys as the built-in catalog.toml). Names already known are
//! refused, so a grid cannot silently redefine a shared task. Errors name file, line and column.

use std::collections::BTreeMap;

use serde::Deserialize;
use stilts_tasks::{Catalog, CatalogError};
use toml::Spanned;

use super::error::{GridError, Location};
use super::spec::SpannedStr;

/// The text of a `catalog` entry, by the path as written in the grid; `None` = not available.
/// The client reads the files (relative to the grid's folder) and sends them with the submit:
/// a coordinator never reads a path from a grid on its own file system.
pub type CatalogFiles<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The merged catalog of a grid.
#[derive(Debug, Clone)]
pub struct GridCatalog {
    /// The process's catalog plus the grid's catalog files and own tasks.
    pub catalog: Catalog,
    /// The tasks the grid brought (catalog files and `[tasks.NAME]`), as JSON of `TaskDef`.
    pub own: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct CatalogKey {
    catalog: Option<Spanned<Vec<SpannedStr>>>,
}

/// The `catalog = [...]` paths of a grid, as written (empty when it has none or does not parse:
/// the planner reports that).
pub fn catalog_paths(text: &str) -> Vec<String> {
    toml::from_str::<CatalogKey>(text)
        .ok()
        .and_then(|k| k.catalog)
        .map(|c| {
            c.into_inner()
                .into_iter()
                .map(Spanned::into_inner)
                .collect()
        })
        .unwrap_or_default()
}

/// `base` plus the grid's catalog files and `[tasks.NAME]` sections.
pub fn grid_catalog(
    file: &str,
    text: &str,
    base: &Catalog,
    files: CatalogFiles<'_>,
) -> Result<GridCatalog, GridError> {
    let key: CatalogKey = toml::from_str(text).map_err(|e| GridError::from_toml(file, text, &e))?;
    let mut catalog = base.clone();
    let mut own = BTreeMap::new();
    let mut add = |catalog: &mut Catalog, text: &str, name: &str| -> Result<(), GridError> {
        for task in catalog.add_embedded(text, name).map_err(from_catalog)? {
            let json = serde_json::to_value(&task).expect("a TaskDef always serialises to JSON");
            own.insert(task.name.clone(), json);
        }
        Ok(())
    };
    for path in key.catalog.map(Spanned::into_inner).unwrap_or_default() {
        let Some(contents) = files(path.get_ref()) else {
            return Err(GridError::Invalid {
                at: Location::of(file, text, &path.span()),
                path: "catalog".into(),
                message: format!("cannot read catalog file {:?}", path.get_ref()),
                hint: "paths are relative to the grid file's folder; check the name".into(),
            });
        };
        add(&mut catalog, &contents, path.get_ref())?;
    }
    add(&mut catalog, text, file)?;
    Ok(GridCatalog { catalog, own })
}

fn from_catalog(e: CatalogError) -> GridError {
    match e {
        CatalogError::Parse {
            file,
            line,
            column,
            message,
        } => GridError::Invalid {
            at: Location {
                file,
                line: line as u32,
                column: column as u32,
            },
            path: "[tasks]".into(),
            message,
            hint: "task keys: role, domain, head, metric, languages, labels, description, english_train, [[tasks.NAME.layout]], [[tasks.NAME.mixture]] (see README \"Your own tasks\")".into(),
        },
        other => GridError::Invalid {
            at: Location {
                file: String::new(),
                line: 0,
                column: 0,
            },
            path: "[tasks]".into(),
            message: other.to_string(),
            hint: "fix the task definition".into(),
        },
    }
}

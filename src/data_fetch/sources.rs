//! Where each catalog task's files come from: a HuggingFace hub dataset repository, a revision,
//! and the files under their original distribution names, placed under the data root where the
//! catalog's original-format layouts (`common/tasks/catalog.toml`) look for them.
//!
//! The repository paths follow the original distributions (XNLI-1.0, MLQA_V1, GLUE, …). They
//! were written without access to the hub: several repositories (`google/xquad`, `facebook/xnli`)
//! are known to hold parquet conversions on `main` rather than these files, and then the hub
//! answers 404 and the fetch says so. A mirror of the original files (`--mirror`) serves exactly
//! these paths.

use stilts_tasks::TaskDef;

/// One file to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Hub dataset repository, `org/name`.
    pub repo: &'static str,
    /// Branch, tag or commit.
    pub rev: &'static str,
    /// Path inside the repository.
    pub path: String,
    /// Path under the data root (`--to`), `/`-separated.
    pub dest: String,
    /// Known sha256 of the file, when the table pins one.
    pub sha256: Option<&'static str>,
}

impl Remote {
    /// `{base}/datasets/{repo}/resolve/{rev}/{path}`, the hub's download URL.
    pub fn url(&self, base: &str) -> String {
        format!(
            "{}/datasets/{}/resolve/{}/{}",
            base.trim_end_matches('/'),
            self.repo,
            self.rev,
            self.path
        )
    }
}

/// A task's row in the table.
#[derive(Debug)]
pub enum Source {
    Files {
        repo: &'static str,
        rev: &'static str,
        /// Folder under the data root.
        dir: &'static str,
        /// Paths in the repository (placeholders `{lang}`, `{lang3}`: one file per catalog
        /// language; `{round}`: ANLI's R1–R3). Each lands at `dir/path`.
        files: &'static [&'static str],
    },
    /// Why the task cannot be fetched yet, and how to get its data by hand.
    NotFetchable(&'static str),
    /// The data ships inside the binary: nothing to fetch.
    Embedded,
}

const GLUE: &str = "nyu-mll/glue";

/// The table: catalog task name → source. Tasks not listed have no known source.
pub fn source(task: &str) -> Option<Source> {
    use Source::*;
    fn files(repo: &'static str, dir: &'static str, files: &'static [&'static str]) -> Source {
        Source::Files {
            repo,
            rev: "main",
            dir,
            files,
        }
    }
    Some(match task {
        "xnli" => files(
            "facebook/xnli",
            "xnli",
            &[
                "XNLI-1.0/xnli.dev.tsv",
                "XNLI-1.0/xnli.test.tsv",
                "XNLI-MT-1.0/multinli/multinli.train.en.tsv",
            ],
        ),
        "pawsx" => files(
            "google-research-datasets/paws-x",
            "pawsx",
            &[
                "x-final/en/train.tsv",
                "x-final/{lang}/dev_2k.tsv",
                "x-final/{lang}/test_2k.tsv",
            ],
        ),
        "xcopa" => files(
            "cambridgeltl/xcopa",
            "xcopa",
            &[
                "data/{lang}/val.{lang}.jsonl",
                "data/{lang}/test.{lang}.jsonl",
            ],
        ),
        "xquad" => files("google/xquad", "xquad", &["xquad.{lang}.json"]),
        "mlqa" => files(
            "facebook/mlqa",
            "mlqa",
            &[
                "MLQA_V1/dev/dev-context-{lang}-question-{lang}.json",
                "MLQA_V1/test/test-context-{lang}-question-{lang}.json",
            ],
        ),
        "tydiqa" => files(
            "google-research-datasets/tydiqa",
            "tydiqa",
            &["tydiqa-goldp-v1.1-train.json", "tydiqa-goldp-v1.1-dev.json"],
        ),
        "udpos" => NotFetchable(
            "the UD v2.5/v2.7 treebanks are one archive per release with per-treebank file names \
             (ud-treebanks-v2.5.tgz, hdl.handle.net/11234/1-3105); unpack it under DIR/udpos/",
        ),
        "panx" => NotFetchable(
            "the hub's unimelb-nlp/wikiann holds parquet only and the Rahimi splits come from \
             AmazonPhotos.zip; unpack {lang}-{train,dev,test} files under DIR/panx/",
        ),
        "tatoeba" => NotFetchable(
            "the LASER originals (tatoeba.{xxx}-eng.{xxx,eng}) live in github.com/facebookresearch/\
             LASER data/tatoeba/v1, not in a hub dataset; copy them to DIR/tatoeba/",
        ),
        "lareqa" => NotFetchable(
            "the XQuAD-R files live in github.com/google-research-datasets/lareqa (xquad-r/{lang}.json), \
             not in a hub dataset; copy them to DIR/lareqa/xquad-r/",
        ),
        "mewslix" => NotFetchable(
            "Mewsli-X is built by google-research's get-mewsli-x.sh from Wikipedia/WikiNews \
             dumps; put its output under DIR/mewslix/",
        ),
        "mt_dual" => NotFetchable(
            "a multi-task mixture with no files of its own: fetch its components \
             (stilts data fetch squad mnli)",
        ),
        "mnli" => files(
            GLUE,
            "glue",
            &[
                "MNLI/train.tsv",
                "MNLI/dev_matched.tsv",
                "MNLI/test_matched.tsv",
            ],
        ),
        "qqp" => files(
            GLUE,
            "glue",
            &["QQP/train.tsv", "QQP/dev.tsv", "QQP/test.tsv"],
        ),
        "sst2" => files(
            GLUE,
            "glue",
            &["SST-2/train.tsv", "SST-2/dev.tsv", "SST-2/test.tsv"],
        ),
        "stsb" => files(
            GLUE,
            "glue",
            &["STS-B/train.tsv", "STS-B/dev.tsv", "STS-B/test.tsv"],
        ),
        "anli" => files(
            "facebook/anli",
            "anli",
            &[
                "anli_v1.0/{round}/train.jsonl",
                "anli_v1.0/{round}/dev.jsonl",
                "anli_v1.0/{round}/test.jsonl",
            ],
        ),
        "snli" => files(
            "stanfordnlp/snli",
            "snli",
            &[
                "snli_1.0/snli_1.0_train.jsonl",
                "snli_1.0/snli_1.0_dev.jsonl",
                "snli_1.0/snli_1.0_test.jsonl",
            ],
        ),
        "squad" => files(
            "rajpurkar/squad",
            "squad",
            &["train-v1.1.json", "dev-v1.1.json"],
        ),
        "siqa" => files(
            "allenai/social_i_qa",
            "siqa",
            &[
                "socialIQa_v1.4_trn.jsonl",
                "socialIQa_v1.4_dev.jsonl",
                "socialIQa_v1.4_tst.jsonl",
            ],
        ),
        "copa" => files(
            "aps/super_glue",
            "copa",
            &["COPA/train.jsonl", "COPA/val.jsonl", "COPA/test.jsonl"],
        ),
        "hellaswag" => files(
            "Rowan/hellaswag",
            "hellaswag",
            &[
                "data/hellaswag_train.jsonl",
                "data/hellaswag_val.jsonl",
                "data/hellaswag_test.jsonl",
            ],
        ),
        "cosmosqa" => files(
            "allenai/cosmos_qa",
            "cosmosqa",
            &["data/train.csv", "data/valid.csv", "data/test.jsonl"],
        ),
        "commonsenseqa" => files(
            "tau/commonsense_qa",
            "commonsenseqa",
            &[
                "train_rand_split.jsonl",
                "dev_rand_split.jsonl",
                "test_rand_split_no_answers.jsonl",
            ],
        ),
        "imdb" => NotFetchable(
            "aclImdb is one archive of 100,000 small files (aclImdb_v1.tar.gz) and unpacking \
             archives is not built; unpack it under DIR/imdb/",
        ),
        "demo-nli" | "demo-sentiment" | "demo-nli-x" => Embedded,
        _ => return None,
    })
}

/// The files of `task`, expanded over its catalog languages (none for an embedded task); `Err`
/// says why they cannot be fetched.
pub fn remotes(task: &TaskDef) -> Result<Vec<Remote>, String> {
    let (repo, rev, dir, files) = match source(&task.name) {
        Some(Source::Files {
            repo,
            rev,
            dir,
            files,
        }) => (repo, rev, dir, files),
        Some(Source::NotFetchable(why)) => return Err(format!("not fetchable yet: {why}")),
        Some(Source::Embedded) => return Ok(Vec::new()),
        None => {
            return Err(
                "no download source is known for this task (a task from a user catalog?); \
                 put its files under DIR as its layout says"
                    .to_string(),
            );
        }
    };
    let mut out = Vec::new();
    for pattern in files {
        for path in expand(pattern, &task.languages)? {
            if out.iter().any(|r: &Remote| r.path == path) {
                continue;
            }
            out.push(Remote {
                repo,
                rev,
                dest: format!("{dir}/{path}"),
                path,
                sha256: None,
            });
        }
    }
    Ok(out)
}

fn expand(pattern: &str, languages: &[String]) -> Result<Vec<String>, String> {
    if pattern.contains("{round}") {
        return Ok(["R1", "R2", "R3"]
            .iter()
            .map(|r| pattern.replace("{round}", r))
            .collect());
    }
    if !pattern.contains("{lang") {
        return Ok(vec![pattern.to_string()]);
    }
    languages
        .iter()
        .map(|lang| {
            let mut p = pattern.replace("{lang}", lang);
            if p.contains("{lang3}") {
                let l3 = stilts_tasks::lang::iso639_3(lang)
                    .ok_or_else(|| format!("no ISO 639-3 code known for language {lang:?}"))?;
                p = p.replace("{lang3}", l3);
            }
            Ok(p)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use stilts_tasks::Catalog;

    #[test]
    fn every_catalog_task_has_a_row_and_files_land_in_a_catalog_dir() {
        let catalog = Catalog::builtin();
        for task in catalog.tasks() {
            let row = source(&task.name);
            assert!(
                row.is_some(),
                "no source row for catalog task {}",
                task.name
            );
            if let Ok(remotes) = remotes(task) {
                let embedded = matches!(row, Some(Source::Embedded));
                assert_eq!(remotes.is_empty(), embedded, "{}", task.name);
                for r in remotes {
                    // Some layout of the task reads from a folder the file lands in.
                    let in_layout = task.layouts.iter().any(|l| {
                        l.dirs
                            .iter()
                            .any(|d| r.dest.starts_with(&format!("{d}/")) || d == ".")
                    });
                    assert!(
                        in_layout,
                        "{}: {} is in none of its layout dirs",
                        task.name, r.dest
                    );
                }
            }
        }
    }

    #[test]
    fn languages_expand_and_urls_follow_the_hub_pattern() {
        let catalog = Catalog::builtin();
        let xquad = remotes(catalog.get("xquad").unwrap()).unwrap();
        assert_eq!(xquad.len(), 12);
        assert_eq!(xquad[1].dest, "xquad/xquad.es.json");
        assert_eq!(
            xquad[1].url("http://m:1/"),
            "http://m:1/datasets/google/xquad/resolve/main/xquad.es.json"
        );
        let anli = remotes(catalog.get("anli").unwrap()).unwrap();
        assert_eq!(anli.len(), 9);
        let err = remotes(catalog.get("udpos").unwrap()).unwrap_err();
        assert!(err.starts_with("not fetchable yet"), "{err}");
    }
}

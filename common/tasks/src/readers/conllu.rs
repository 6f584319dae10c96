//! CoNLL-U → (token, UPOS) sentences, reproducing XTREME's conversion
//! (`conllu_to_conll.py --replace_subtokens_with_fused_forms`, then `udpos_preprocess`):
//!
//! * a multi-word token `s-e` becomes **one** token: its fused form, tagged with the UPOS of the
//!   span's head word. The head is the word with the fewest ancestors in the graph of basic and
//!   enhanced (DEPS) dependencies; ties go to the language's POS precedence list (es, fr, it have
//!   their own; every other language uses the default list), then to the earlier word;
//! * empty nodes (`8.1`) and comments are dropped;
//! * sentences whose words are (almost) all `_` are dropped (`num_empty < len − 1` is kept);
//! * spaces and U+200C inside a word are removed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::lines;
use crate::error::TaskError;
use crate::example::{Dataset, TaggedSentence};

struct Word {
    form: String,
    upos: String,
    /// Heads from the HEAD column and integer heads of DEPS.
    parents: Vec<usize>,
}

struct RawSentence {
    start_line: usize,
    words: BTreeMap<usize, Word>,
    /// first id → (last id, fused form)
    multi: BTreeMap<usize, (usize, String)>,
}

const DEFAULT_PRECEDENCE: &[&str] = &[
    "VERB", "NOUN", "PROPN", "PRON", "ADJ", "NUM", "ADV", "INTJ", "AUX", "ADP", "DET", "PART",
    "CCONJ", "SCONJ", "X", "PUNCT", "",
];

fn precedence(lang: &str) -> &'static [&'static str] {
    match lang {
        "es" => &["VERB", "AUX", "PRON", "ADP", "DET"],
        "fr" => &[
            "VERB", "AUX", "PRON", "NOUN", "ADJ", "ADV", "ADP", "DET", "PART", "SCONJ", "CONJ",
        ],
        "it" => &["VERB", "AUX", "ADV", "PRON", "ADP", "DET", "INTJ"],
        _ => DEFAULT_PRECEDENCE,
    }
}

/// Reads a CoNLL-U file as tagging sentences (UPOS), converted like XTREME's `udpos` files.
/// `labels` (when not empty) is the allowed tag set.
pub fn read_as_tagging(
    lang: &str,
    path: &Path,
    text: &str,
    labels: &[String],
) -> Result<Dataset, TaskError> {
    let mut out = Vec::new();
    for raw in parse(path, text)? {
        let (tokens, tags) = convert(&raw, lang);
        let num_empty = tokens.iter().filter(|t| *t == "_").count();
        if !(num_empty == 0 || num_empty + 1 < tokens.len()) {
            continue;
        }
        if !labels.is_empty()
            && let Some(bad) = tags.iter().find(|t| !labels.contains(t))
        {
            return Err(TaskError::format(
                path,
                raw.start_line,
                format!("unknown UPOS `{bad}` in the sentence starting here"),
            ));
        }
        let tokens = tokens
            .into_iter()
            .map(|w| w.replace(['\u{200c}', ' '], ""))
            .collect();
        out.push(TaggedSentence {
            id: out.len().to_string(),
            tokens,
            tags: Some(tags),
        });
    }
    Ok(Dataset::Tagging(out))
}

fn parse(path: &Path, text: &str) -> Result<Vec<RawSentence>, TaskError> {
    let mut sentences = Vec::new();
    let mut current: Option<RawSentence> = None;
    for (n, line) in lines(text) {
        if line.trim().is_empty() {
            if let Some(s) = current.take()
                && !s.words.is_empty()
            {
                sentences.push(s);
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() != 10 {
            return Err(TaskError::format(
                path,
                n,
                format!(
                    "expected 10 tab-separated CoNLL-U columns, found {}",
                    cols.len()
                ),
            ));
        }
        let s = current.get_or_insert_with(|| RawSentence {
            start_line: n,
            words: BTreeMap::new(),
            multi: BTreeMap::new(),
        });
        let id = cols[0];
        if id.contains('.') {
            continue;
        }
        let bad_id = || TaskError::format(path, n, format!("bad token id `{id}`"));
        if let Some((a, b)) = id.split_once('-') {
            let (a, b): (usize, usize) = (
                a.parse().map_err(|_| bad_id())?,
                b.parse().map_err(|_| bad_id())?,
            );
            s.multi.insert(a, (b, cols[1].to_string()));
            continue;
        }
        let id: usize = id.parse().map_err(|_| bad_id())?;
        let mut parents = Vec::new();
        if let Ok(h) = cols[6].parse::<usize>() {
            parents.push(h);
        }
        if cols[8] != "_" {
            for dep in cols[8].split('|') {
                let head = dep.split(':').next().unwrap_or("");
                if !head.is_empty() && head.chars().all(|c| c.is_ascii_digit()) {
                    parents.push(head.parse().map_err(|_| bad_id())?);
                }
            }
        }
        s.words.insert(
            id,
            Word {
                form: cols[1].to_string(),
                upos: cols[3].to_string(),
                parents,
            },
        );
    }
    if let Some(s) = current
        && !s.words.is_empty()
    {
        sentences.push(s);
    }
    Ok(sentences)
}

/// Number of distinct ancestors of `node` in the (possibly cyclic) parent graph.
fn ancestors(
    words: &BTreeMap<usize, Word>,
    node: usize,
    memo: &mut HashMap<usize, usize>,
) -> usize {
    if let Some(&n) = memo.get(&node) {
        return n;
    }
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<usize> = words
        .get(&node)
        .map(|w| w.parents.clone())
        .unwrap_or_default();
    while let Some(p) = stack.pop() {
        if seen.insert(p)
            && let Some(w) = words.get(&p)
        {
            stack.extend(w.parents.iter().copied());
        }
    }
    seen.remove(&node);
    let n = seen.len();
    memo.insert(node, n);
    n
}

fn convert(raw: &RawSentence, lang: &str) -> (Vec<String>, Vec<String>) {
    let mut memo = HashMap::new();
    let mut replaced: HashMap<usize, String> = HashMap::new();
    let mut dropped = std::collections::HashSet::new();
    for (&start, (end, fused)) in &raw.multi {
        let span: Vec<usize> = (start..=*end)
            .filter(|i| raw.words.contains_key(i))
            .collect();
        if span.is_empty() {
            continue;
        }
        let depth: Vec<usize> = span
            .iter()
            .map(|&i| ancestors(&raw.words, i, &mut memo))
            .collect();
        let min = *depth.iter().min().expect("span not empty");
        let highest: Vec<usize> = span
            .iter()
            .zip(&depth)
            .filter(|(_, d)| **d == min)
            .map(|(i, _)| *i)
            .collect();
        let head = if highest.len() == 1 {
            highest[0]
        } else {
            let list = precedence(lang);
            let rank = |i: &usize| list.iter().position(|p| *p == raw.words[i].upos);
            highest
                .iter()
                .filter_map(|i| rank(i).map(|r| (r, *i)))
                .min()
                .map_or(highest[0], |(_, i)| i)
        };
        replaced.insert(head, fused.clone());
        dropped.extend(span.into_iter().filter(|i| *i != head));
    }
    let mut tokens = Vec::new();
    let mut tags = Vec::new();
    for (id, w) in &raw.words {
        if dropped.contains(id) {
            continue;
        }
        tokens.push(replaced.get(id).cloned().unwrap_or_else(|| w.form.clone()));
        tags.push(w.upos.clone());
    }
    (tokens, tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiword_token_takes_head_upos() {
        // Spanish "del" = de (ADP, child of casa) + el (DET, child of casa): tie on depth → es list
        // ranks ADP before DET.
        let text = "# text = casa del pueblo\n\
1\tcasa\tcasa\tNOUN\t_\t_\t0\troot\t_\t_\n\
2-3\tdel\t_\t_\t_\t_\t_\t_\t_\t_\n\
2\tde\tde\tADP\t_\t_\t4\tcase\t_\t_\n\
3\tel\tel\tDET\t_\t_\t4\tdet\t_\t_\n\
4\tpueblo\tpueblo\tNOUN\t_\t_\t1\tnmod\t_\t_\n\n";
        let Dataset::Tagging(s) = read_as_tagging("es", Path::new("t"), text, &[]).unwrap() else {
            panic!()
        };
        assert_eq!(s[0].tokens, ["casa", "del", "pueblo"]);
        assert_eq!(s[0].tags.as_deref().unwrap(), ["NOUN", "ADP", "NOUN"]);
    }

    #[test]
    fn wrong_column_count_names_line() {
        let err = read_as_tagging("en", Path::new("x.conllu"), "1\ta\tb\n", &[]).unwrap_err();
        assert!(err.to_string().starts_with("x.conllu:1:"), "{err}");
    }
}

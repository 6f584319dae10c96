//! Our CoNLL-U conversion against XTREME's own `udpos` files made from the same treebanks.

mod common;

use stilts_tasks::{Catalog, Dataset, LayoutKind, Split, readers};

fn read(kind: LayoutKind, lang: &str, rel: &str) -> Option<Vec<stilts_tasks::TaggedSentence>> {
    let root = common::data_root()?;
    let catalog = Catalog::builtin();
    let task = catalog.get("udpos").unwrap();
    let layout = task.layouts.iter().find(|l| l.kind == kind).unwrap();
    let ctx = readers::ReadCtx {
        task,
        lang,
        split: Split::Dev,
        layout,
    };
    match readers::read_path(&ctx, &root.join(rel)).unwrap() {
        Dataset::Tagging(s) => Some(s),
        _ => panic!(),
    }
}

#[test]
fn ewt_dev_and_train_equal_xtreme_tsv() {
    for (conllu, tsv) in [
        (
            "udpos/UD_English-EWT/en_ewt-ud-dev.conllu",
            "udpos/xtreme_format/dev-en.tsv",
        ),
        (
            "udpos/UD_English-EWT/en_ewt-ud-train.conllu",
            "udpos/xtreme_format/train-en.tsv",
        ),
    ] {
        let Some(ours) = read(LayoutKind::Original, "en", conllu) else {
            return;
        };
        let theirs = read(LayoutKind::Xtreme, "en", tsv).unwrap();
        let n = ours.len().min(theirs.len());
        assert!(n >= 100, "{conllu}: {n}");
        for i in 0..n {
            assert_eq!(ours[i].tokens, theirs[i].tokens, "{conllu} sentence {i}");
            assert_eq!(ours[i].tags, theirs[i].tags, "{conllu} sentence {i}");
        }
        eprintln!("{conllu}: {n} sentences identical to {tsv}");
    }
}

#[test]
fn multiword_tokens_are_merged() {
    let Some(es) = read(
        LayoutKind::Original,
        "es",
        "udpos/UD_Spanish-GSD/es_gsd-ud-test.conllu",
    ) else {
        return;
    };
    let all: Vec<(&String, &String)> = es
        .iter()
        .flat_map(|s| s.tokens.iter().zip(s.tags.as_ref().unwrap()))
        .collect();
    // "del" = de + el and "al" = a + el become one ADP token (es precedence: ADP before DET)
    assert!(
        all.iter()
            .any(|(t, g)| t.as_str() == "del" && g.as_str() == "ADP"),
        "{all:?}"
    );
    let Some(de) = read(
        LayoutKind::Original,
        "de",
        "udpos/UD_German-GSD/de_gsd-ud-test.conllu",
    ) else {
        return;
    };
    let tokens: usize = de.iter().map(|s| s.tokens.len()).sum();
    assert!(tokens > 0 && de.len() == 50);
}

//! Every reader on the real files of the shared data dir (`STILTS_SHARED_DATA`).

mod common;

use stilts_tasks::{Catalog, Dataset, Label, LayoutKind, Split, load, locate};

fn get(task: &str, split: Split, lang: &str) -> Option<Dataset> {
    let root = common::data_root()?;
    let catalog = Catalog::builtin();
    let t = catalog.get(task).unwrap();
    Some(load(t, split, lang, &root).unwrap_or_else(|e| panic!("{task} {split} {lang}: {e}")))
}

fn pairs(d: Dataset) -> Vec<stilts_tasks::PairExample> {
    match d {
        Dataset::Pairs(p) => p,
        other => panic!("expected pairs, got {other:?}"),
    }
}

#[test]
fn xnli_xtreme_and_original() {
    let Some(dev) = get("xnli", Split::Dev, "de") else {
        return;
    };
    let dev = pairs(dev);
    assert_eq!(dev.len(), 200);
    assert_eq!(dev[0].text_a, "und er hat gesagt, Mama ich bin daheim.");
    assert_eq!(dev[0].label, Label::Class(2)); // neutral
    // Test prefers the labelled XNLI-1.0 file (1 dummy row per language here).
    let test = pairs(get("xnli", Split::Test, "de").unwrap());
    assert!(test.iter().all(|e| matches!(e.label, Label::Class(_))));
    assert!(!test.is_empty() && test.len() < 10, "{}", test.len());
    let train = pairs(get("xnli", Split::Train, "en").unwrap());
    assert_eq!(train.len(), 4);
    // every XNLI language has 200 dev rows; the labelled original dev row equals XTREME's first row
    let root = common::data_root().unwrap();
    let catalog = Catalog::builtin();
    let xnli = catalog.get("xnli").unwrap();
    for lang in &xnli.languages {
        let located = locate(xnli, Split::Dev, lang, &root).unwrap();
        assert_eq!(located.layout.kind, LayoutKind::Xtreme);
        let d = pairs(load(xnli, Split::Dev, lang, &root).unwrap());
        assert_eq!(d.len(), 200, "{lang}");
        let t = pairs(load(xnli, Split::Test, lang, &root).unwrap());
        let xt = xnli
            .layouts
            .iter()
            .find(|l| l.kind == LayoutKind::Xtreme)
            .unwrap();
        let ctx = stilts_tasks::readers::ReadCtx {
            task: xnli,
            lang,
            split: Split::Test,
            layout: xt,
        };
        let path = root.join(format!("xnli/xtreme_format/test-{lang}.tsv"));
        let unlabelled = pairs(stilts_tasks::readers::read_path(&ctx, &path).unwrap());
        assert!(unlabelled.iter().all(|e| e.label == Label::None));
        if matches!(t[0].label, Label::Class(_)) {
            // labelled XNLI-1.0 row = first row of XTREME's unlabelled copy
            assert_eq!(t[0].text_b, unlabelled[0].text_b, "{lang}");
        }
    }
}

#[test]
fn pawsx_csv_quoted_fields() {
    let Some(dev) = get("pawsx", Split::Dev, "de") else {
        return;
    };
    let dev = pairs(dev);
    assert_eq!(dev.len(), 200);
    assert!(
        dev.iter().any(|e| e.text_a.contains("Album \", weil")),
        "csv quotes undone"
    );
    assert!(
        dev.iter()
            .all(|e| !e.text_a.starts_with('"') || !e.text_a.ends_with('"'))
    );
    let test = pairs(get("pawsx", Split::Test, "de").unwrap());
    assert_eq!(test.len(), 4, "labelled x-final test_2k first");
    assert!(test.iter().all(|e| matches!(e.label, Label::Class(_))));
}

#[test]
fn intermediate_classification_tasks() {
    let Some(mnli) = get("mnli", Split::Train, "en") else {
        return;
    };
    let mnli = pairs(mnli);
    assert!(mnli[0].text_a.starts_with("Conceptually cream skimming"));
    assert_eq!(mnli[0].label, Label::Class(2));
    let dev = pairs(get("mnli", Split::Dev, "en").unwrap());
    assert!(!dev.is_empty());
    let test = pairs(get("mnli", Split::Test, "en").unwrap());
    assert!(test.iter().all(|e| e.label == Label::None));
    let anli = pairs(get("anli", Split::Dev, "en").unwrap());
    assert!(anli.len() >= 6, "R1–R3 concatenated: {}", anli.len());
    assert_eq!(anli[0].label, Label::Class(0)); // "c"
    let qqp = pairs(get("qqp", Split::Train, "en").unwrap());
    assert_eq!((qqp.len(), qqp[1].label.clone()), (3, Label::Class(1)));
    let sst = pairs(get("sst2", Split::Dev, "en").unwrap());
    assert_eq!(sst.len(), 872);
    assert!(sst.iter().all(|e| e.text_b.is_none()));
    let imdb = pairs(get("imdb", Split::Train, "en").unwrap());
    assert_eq!(imdb.len(), 100);
    assert_eq!(
        imdb.iter().filter(|e| e.label == Label::Class(1)).count(),
        50
    );
    assert!(
        imdb[50]
            .text_a
            .starts_with("Bromwell High is a cartoon comedy.")
    );
}

#[test]
fn multiple_choice_tasks() {
    let Some(Dataset::Choices(x)) = get("xcopa", Split::Dev, "et") else {
        return;
    };
    assert_eq!(x.len(), 100);
    assert_eq!(
        x[0].context,
        "Mees keeras kraani lahti. What was the effect?"
    );
    assert_eq!(x[0].label, Some(1));
    let Some(Dataset::Choices(copa)) = get("copa", Split::Train, "en") else {
        panic!()
    };
    assert_eq!(copa.len(), 400);
    assert_eq!(
        copa[0].context,
        "My body cast a shadow over the grass. What was the cause?"
    );
    let Some(Dataset::Choices(en)) = get("xcopa", Split::Dev, "en") else {
        panic!()
    };
    assert_eq!(en.len(), 100, "xcopa English = COPA val");
    let Some(Dataset::Choices(siqa)) = get("siqa", Split::Dev, "en") else {
        panic!()
    };
    assert_eq!(siqa.len(), 300);
    assert_eq!(siqa[0].label, Some(2));
    assert_eq!(
        siqa[0].context,
        "Tracy didn't go home that evening and resisted Riley's attacks. What does Tracy need to do before this?"
    );
    let Some(Dataset::Choices(h)) = get("hellaswag", Split::Dev, "en") else {
        panic!()
    };
    assert_eq!((h.len(), h[0].label, h[0].choices.len()), (2, Some(3), 4));
    let Some(Dataset::Choices(ht)) = get("hellaswag", Split::Test, "en") else {
        panic!()
    };
    assert!(ht.iter().all(|e| e.label.is_none()));
    let Some(Dataset::Choices(c)) = get("cosmosqa", Split::Dev, "en") else {
        panic!()
    };
    assert_eq!(c.len(), 300);
    assert!(c.iter().all(|e| e.choices.len() == 4 && e.label.is_some()));
    let Some(Dataset::Choices(csqa)) = get("commonsenseqa", Split::Dev, "en") else {
        panic!()
    };
    assert_eq!(
        (csqa.len(), csqa[0].label, csqa[0].choices.len()),
        (10, Some(0), 5)
    );
}

#[test]
fn siqa_label_file_release() {
    let Some(root) = common::data_root() else {
        return;
    };
    let catalog = Catalog::builtin();
    let siqa = catalog.get("siqa").unwrap();
    let layout = siqa
        .layouts
        .iter()
        .find(|l| l.name == "socialiqa-train-dev")
        .unwrap();
    let ctx = stilts_tasks::readers::ReadCtx {
        task: siqa,
        lang: "en",
        split: Split::Dev,
        layout,
    };
    let d =
        stilts_tasks::readers::read_path(&ctx, &root.join("siqa/socialiqa-train-dev/dev.jsonl"))
            .unwrap();
    let Dataset::Choices(d) = d else { panic!() };
    assert_eq!(
        d.iter().map(|e| e.label).collect::<Vec<_>>(),
        [Some(2), Some(0)]
    );
}

#[test]
fn qa_tasks_and_spans() {
    let Some(Dataset::Qa(x)) = get("xquad", Split::Test, "de") else {
        return;
    };
    assert_eq!(x.len(), 135);
    assert_eq!(x[0].context_lang, "de");
    let root = common::data_root().unwrap();
    let catalog = Catalog::builtin();
    for lang in &catalog.get("xquad").unwrap().languages {
        let Dataset::Qa(q) = load(catalog.get("xquad").unwrap(), Split::Test, lang, &root).unwrap()
        else {
            panic!()
        };
        assert_eq!(q.len(), 135, "{lang}");
    }
    let Some(Dataset::Qa(sq)) = get("squad", Split::Dev, "en") else {
        panic!()
    };
    assert_eq!(sq.len(), 810);
    assert!(sq.iter().all(|e| !e.answers.is_empty()));
    let Some(Dataset::Qa(t)) = get("tydiqa", Split::Train, "en") else {
        panic!()
    };
    assert!(!t.is_empty());
    // the labelled combined dev file comes first for test; XTREME's blanked copy otherwise
    let Some(Dataset::Qa(ar)) = get("tydiqa", Split::Test, "ar") else {
        panic!()
    };
    assert!(
        ar.iter()
            .all(|e| e.id.starts_with("arabic-") && !e.answers[0].0.is_empty())
    );
    let Some(Dataset::Qa(sw)) = get("tydiqa", Split::Test, "sw") else {
        panic!()
    };
    assert_eq!(sw.len(), 25);
    assert!(sw.iter().all(|e| e.answers.iter().all(|a| a.0.is_empty())));
}

#[test]
fn tagging_tasks() {
    let Some(Dataset::Tagging(p)) = get("panx", Split::Dev, "de") else {
        return;
    };
    assert_eq!(p.len(), 100);
    assert_eq!(
        p[0].tokens,
        ["Anton", "Wilhelm", "von", "Zuccalmaglio", "."]
    );
    assert_eq!(p[0].tags.as_deref().unwrap()[0], "B-PER");
    let Some(Dataset::Tagging(t)) = get("panx", Split::Test, "de") else {
        panic!()
    };
    // the labelled original (1 sentence) is preferred for test
    assert_eq!(t[0].tokens[0], "WEITERLEITUNG");
    assert!(t[0].tags.is_some());
    let Some(Dataset::Tagging(en)) = get("panx", Split::Train, "en") else {
        panic!()
    };
    assert_eq!(en.len(), 500);
    let Some(Dataset::Tagging(u)) = get("udpos", Split::Train, "en") else {
        panic!()
    };
    assert_eq!(u.len(), 300);
    let Some(Dataset::Tagging(es)) = get("udpos", Split::Test, "es") else {
        panic!()
    };
    assert_eq!(es.len(), 50, "es_gsd test conllu (labelled) preferred");
    let Some(Dataset::Tagging(de)) = get("udpos", Split::Test, "de") else {
        panic!()
    };
    assert_eq!(de.len(), 50);
}

#[test]
fn retrieval_tasks() {
    let Some(Dataset::Retrieval(t)) = get("tatoeba", Split::Test, "de") else {
        return;
    };
    assert_eq!(t.queries.len(), 200);
    assert_eq!(t.queries[0], "Maria sagte, sie wisse nicht, wo Tom sei.");
    assert_eq!(t.candidates[0], "Mary said she didn't know where Tom was.");
    let root = common::data_root().unwrap();
    let catalog = Catalog::builtin();
    let tat = catalog.get("tatoeba").unwrap();
    for lang in &tat.languages {
        assert!(
            load(tat, Split::Test, lang, &root).is_ok(),
            "tatoeba {lang}"
        );
    }
    let Some(Dataset::AnswerPool(p)) = get("lareqa", Split::Test, "de") else {
        panic!()
    };
    assert_eq!(p.queries.len(), 135);
    assert!(
        p.gold.iter().all(|g| g.len() == 11),
        "one answer sentence per language"
    );
    let first = &p.gold[0];
    assert!(
        first
            .iter()
            .any(|&i| p.candidates[i].lang == "de" && p.candidates[i].sentence.contains("308"))
    );
    let mentions = stilts_tasks::readers::read_mewslix_mentions(
        &root.join("mewslix/mewsli_x/testdata/example_mentions_no_text.jsonl"),
        None,
    )
    .unwrap();
    assert_eq!(mentions.len(), 3);
    assert_eq!(
        (mentions[0].text.as_str(), mentions[0].entity_id.as_str()),
        ("Helsinki", "Q1757")
    );
}

#[test]
fn errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("xnli")).unwrap();
    std::fs::write(
        dir.path().join("xnli/dev-de.tsv"),
        "a\tb\tneutral\na\tb\tmaybe\n",
    )
    .unwrap();
    let catalog = Catalog::builtin();
    let err = load(catalog.get("xnli").unwrap(), Split::Dev, "de", dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dev-de.tsv:2:") && err.contains("unknown label `maybe`"),
        "{err}"
    );
    std::fs::write(dir.path().join("xnli/dev-de.tsv"), "a\tb\tneutral\tx\n").unwrap();
    let err = load(catalog.get("xnli").unwrap(), Split::Dev, "de", dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dev-de.tsv:1:") && err.contains("found 4"),
        "{err}"
    );
    let err = load(catalog.get("xnli").unwrap(), Split::Dev, "fr", dir.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no dev file"), "{err}");
    let err = load(catalog.get("xnli").unwrap(), Split::Dev, "xx", dir.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not one of its languages"), "{err}");
}

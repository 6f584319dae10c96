//! The synthetic demo corpus loads (embedded, no data dir needed) and is shaped for a fast demo.

use stilts_tasks::{Catalog, Dataset, Label, Split, load};

#[test]
fn demo_tasks_load_from_the_embedded_copy() {
    let c = Catalog::builtin();
    let nowhere = std::path::Path::new("/nonexistent-data-root");
    let mut total = 0;
    for (task, lang, split, n) in [
        ("demo-nli", "en", Split::Train, 450),
        ("demo-nli", "en", Split::Dev, 100),
        ("demo-sentiment", "en", Split::Train, 450),
        ("demo-sentiment", "en", Split::Test, 100),
        ("demo-nli-x", "en", Split::Train, 450),
        ("demo-nli-x", "en", Split::Dev, 60),
        ("demo-nli-x", "de", Split::Dev, 60),
        ("demo-nli-x", "fr", Split::Test, 60),
        ("demo-nli-x", "es", Split::Test, 60),
    ] {
        let t = c.get(task).unwrap();
        let Dataset::Pairs(ex) = load(t, split, lang, nowhere).unwrap() else {
            panic!()
        };
        assert_eq!(ex.len(), n, "{task} {split} {lang}");
        for e in &ex {
            assert!(matches!(e.label, Label::Class(_)));
            let words = e.text_a.split_whitespace().count()
                + e.text_b
                    .as_deref()
                    .map_or(0, |b| b.split_whitespace().count());
            assert!(words < 24, "{task}: too long: {e:?}");
        }
        // every label occurs
        for i in 0..t.labels.len() {
            assert!(
                ex.iter().any(|e| e.label == Label::Class(i)),
                "{task} {split} {lang} label {i}"
            );
        }
        total += ex.len();
    }
    assert!(total > 1000);
    assert_eq!(
        c.get("demo-nli-x").unwrap().languages,
        ["en", "de", "fr", "es"]
    );
}

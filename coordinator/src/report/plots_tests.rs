//! Pixel checks of the heatmap (needs the PNG font: Debian `fonts-dejavu-core`).

use super::super::matrix::tests::{Fixture, small_options};
use super::super::{build_with, catalog_tasks};
use super::*;
use stilts_tasks::Catalog;

/// none / mnli (Δ −4) / squad (Δ +2) / sst2 (failed) on xnli, one seed, de + en.
fn signed_report() -> Report {
    let mut f = Fixture::new();
    for (i, en, de) in [
        ("none", 80.0, 70.0),
        ("mnli", 76.0, 66.0),
        ("squad", 82.0, 72.0),
    ] {
        f.acc(i, "xnli", "en", 1, en);
        f.acc(i, "xnli", "de", 1, de);
    }
    f.acc("sst2", "xnli", "en", 1, 80.0);
    f.failed("sst2", "xnli", "de", 1);
    let catalog = Catalog::builtin();
    build_with(&f.input, &catalog_tasks(&catalog), &small_options())
}

fn pixel(rgb: &[u8], width: u32, (x, y): (i32, i32)) -> (u8, u8, u8) {
    let i = (y as usize * width as usize + x as usize) * 3;
    (rgb[i], rgb[i + 1], rgb[i + 2])
}

#[test]
fn nice_steps() {
    assert_eq!(nice_step(0.7), 1.0);
    assert_eq!(nice_step(1.3), 2.0);
    assert_eq!(nice_step(3.0), 5.0);
    assert_eq!(nice_step(0.03), 0.05);
    assert_eq!(nice_step(70.0), 100.0);
}

#[test]
fn diverging_scale() {
    assert_eq!(diverging(0.0), WHITE_ISH);
    assert_eq!(diverging(-1.0), NEGATIVE);
    assert_eq!(diverging(1.0), POSITIVE);
    assert_eq!(diverging(-7.0), NEGATIVE);
    let half = diverging(-0.5);
    assert!(half.0 > half.2, "red-ish: {half:?}");
}

#[test]
fn heatmap_colours_follow_the_sign() {
    ensure_font().expect("PNG font (apt-get install fonts-dejavu-core)");
    let report = signed_report();
    let m = &report.models[0];
    let rows: Vec<&str> = m
        .rows
        .iter()
        .filter(|r| !r.baseline)
        .map(|r| r.intermediate.as_str())
        .collect();
    assert_eq!(rows, ["mnli", "squad", "sst2"]);
    let map = Heatmap::new(m, Scope::All);
    let (w, h) = map.size();
    let rgb = rgb_of(&map).unwrap();
    assert_eq!(rgb.len(), (w * h * 3) as usize);
    let corner = |row| {
        let (x0, y0, _, _) = map.cell_rect(row, 0);
        pixel(&rgb, w, (x0 + 8, y0 + 8))
    };
    // mnli: Δ −4 = the scale's end → red.
    let (r, g, b) = corner(0);
    assert!(r > 150 && g < 80 && b < 80, "mnli {r} {g} {b}");
    // squad: Δ +2 = half the scale → blue-ish.
    let (r, g, b) = corner(1);
    assert!(b > r + 40 && b > 150, "squad {r} {g} {b}");
    // sst2: failed → grey (fill or hatch line).
    let (r, g, b) = corner(2);
    assert!(
        r == g && g == b && (140..=210).contains(&r),
        "sst2 {r} {g} {b}"
    );
}

#[test]
fn svg_is_written_without_font_metrics() {
    let report = signed_report();
    let svg = svg_of(&Heatmap::new(&report.models[0], Scope::All)).unwrap();
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains("failed (1)"));
    assert!(svg.contains("-4.00"));
    let bars = Bars::new(&report.models[0], "xnli").unwrap();
    let svg = svg_of(&bars).unwrap();
    assert!(svg.contains("mnli") && svg.contains("\nde\n"));
}

#[test]
fn incomplete_bars_are_gaps_not_zero() {
    ensure_font().expect("PNG font (apt-get install fonts-dejavu-core)");
    let report = signed_report();
    let bars = Bars::new(&report.models[0], "xnli").unwrap();
    assert_eq!(bars.languages, ["de", "en"]);
    let names: Vec<&str> = bars.groups.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["mnli", "squad", "sst2"]);
    assert_eq!(
        bars.groups[2].1,
        [None, Some(0.0)],
        "sst2: de failed, en Δ 0"
    );
    let (w, _) = bars.size();
    let rgb = rgb_of(&bars).unwrap();
    // Near the top of the plot, far from the zero line: grey in sst2's de slot, white in mnli's
    // (mnli's bars go down from 0).
    let at = |g: i32| {
        let x = AXIS_X + g * bars.group_w() + 12 + bars.bar_w / 2;
        pixel(&rgb, w, (x, PLOT_TOP + 4))
    };
    let (r, g, b) = at(2);
    assert!(
        r == g && g == b && (140..=210).contains(&r),
        "sst2 de {r} {g} {b}"
    );
    assert_eq!(at(0), (255, 255, 255));
}

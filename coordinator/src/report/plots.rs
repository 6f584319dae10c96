//! Plots drawn with `plotters` primitives (rectangles, paths, text), so the same code writes SVG
//! and PNG and never needs font metrics: SVG text is left to the viewer's `sans-serif`, and only
//! the PNG rasteriser needs a TrueType font ([`FONT_ENV`], else Debian's `fonts-dejavu-core`).
//!
//! * `heatmap-MODEL-non-en.{svg,png}` (the headline) and `heatmap-MODEL.*` (all languages): the
//!   Δ matrix, diverging colours centred on 0 (red negative, blue positive, scaled to the largest
//!   |Δ| of the plot), mean and t-interval over seeds (or `n=2, no interval`) written in each
//!   cell, aligned cells framed, incomplete cells grey and hatched with their gap label
//!   (`failed (k)`, `metric missing (k)`, `baseline failed (k)`, …).
//! * `languages-MODEL-TARGET.{svg,png}`: per-language Δ bar chart, one bar group per
//!   intermediate, one bar per language; an incomplete language is a hatched grey column over
//!   the whole height (a gap), never a bar at 0.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::register_font;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::matrix::{Entry, ModelMatrix, Scope};
use super::{FONT_ENV, Report, ReportError, file_stem, write_file};

/// Where Debian's `fonts-dejavu-core` puts DejaVu Sans.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const FAMILY: &str = "sans-serif";

/// Registers the PNG font once; the error says which file was tried and what to install.
pub fn ensure_font() -> Result<(), String> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let path = std::env::var_os(FONT_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_FONT));
        let bytes = std::fs::read(&path)
            .map_err(|e| format!("cannot read the font {}: {e}", path.display()))?;
        // plotters keeps registered fonts for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        register_font(FAMILY, FontStyle::Normal, bytes)
            .map_err(|_| format!("{} is not a TrueType/OpenType font", path.display()))
    })
    .clone()
}

/// What [`write_plots`] wrote, and why PNGs were skipped (if they were).
pub struct Written {
    pub written: Vec<PathBuf>,
    pub png_skipped: Option<String>,
}

/// One figure: its size and how to draw it on any backend.
trait Figure {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

fn svg_of<F: Figure>(fig: &F) -> Result<String, String> {
    let mut text = String::new();
    {
        let area = SVGBackend::with_string(&mut text, fig.size()).into_drawing_area();
        fig.draw(&area)?;
        area.present().map_err(err)?;
    }
    Ok(text)
}

/// The figure as RGB pixels (row-major, 3 bytes a pixel).
fn rgb_of<F: Figure>(fig: &F) -> Result<Vec<u8>, String> {
    let (w, h) = fig.size();
    let mut buf = vec![0u8; w as usize * h as usize * 3];
    {
        let area = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        fig.draw(&area)?;
        area.present().map_err(err)?;
    }
    Ok(buf)
}

fn png_bytes(rgb: &[u8], (w, h): (u32, u32)) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(err)?;
    writer.write_image_data(rgb).map_err(err)?;
    writer.finish().map_err(err)?;
    Ok(out)
}

/// Writes `stem.svg` and, when `png` is true, `stem.png`.
fn write_figure<F: Figure>(
    fig: &F,
    dir: &Path,
    stem: &str,
    png: bool,
    written: &mut Vec<PathBuf>,
) -> Result<(), ReportError> {
    let plot_err = |path: &Path, message: String| ReportError::Plot {
        path: path.to_path_buf(),
        message,
    };
    let svg = dir.join(format!("{stem}.svg"));
    let text = svg_of(fig).map_err(|m| plot_err(&svg, m))?;
    write_file(&svg, text.as_bytes())?;
    written.push(svg);
    if png {
        let path = dir.join(format!("{stem}.png"));
        let bytes = rgb_of(fig)
            .and_then(|rgb| png_bytes(&rgb, fig.size()))
            .map_err(|m| plot_err(&path, m))?;
        write_file(&path, &bytes)?;
        written.push(path);
    }
    Ok(())
}

/// Writes every plot of the report into `dir`.
pub fn write_plots(report: &Report, dir: &Path) -> Result<Written, ReportError> {
    let png_skipped = ensure_font().err();
    let png = png_skipped.is_none();
    let mut written = Vec::new();
    for m in &report.models {
        let model = file_stem(&m.model);
        for scope in [Scope::NonEnglish, Scope::All] {
            let map = Heatmap::new(m, scope);
            if map.rows.is_empty() || (scope == Scope::NonEnglish && !map.any_entry) {
                continue;
            }
            let stem = match scope {
                Scope::NonEnglish => format!("heatmap-{model}-non-en"),
                _ => format!("heatmap-{model}"),
            };
            write_figure(&map, dir, &stem, png, &mut written)?;
        }
        for t in &m.targets {
            if let Some(bars) = Bars::new(m, t) {
                let stem = format!("languages-{model}-{}", file_stem(t));
                write_figure(&bars, dir, &stem, png, &mut written)?;
            }
        }
    }
    Ok(Written {
        written,
        png_skipped,
    })
}

const WHITE_ISH: RGBColor = RGBColor(247, 247, 247);
const NEGATIVE: RGBColor = RGBColor(202, 0, 32);
const POSITIVE: RGBColor = RGBColor(5, 113, 176);
const MISSING_FILL: RGBColor = RGBColor(205, 205, 205);
const HATCH: RGBColor = RGBColor(150, 150, 150);

/// Diverging colour of `t` ∈ [−1, 1]: red below 0, white at 0, blue above.
pub fn diverging(t: f64) -> RGBColor {
    let t = t.clamp(-1.0, 1.0);
    let end = if t < 0.0 { NEGATIVE } else { POSITIVE };
    let a = t.abs();
    let mix = |w: u8, e: u8| (w as f64 + (e as f64 - w as f64) * a).round() as u8;
    RGBColor(
        mix(WHITE_ISH.0, end.0),
        mix(WHITE_ISH.1, end.1),
        mix(WHITE_ISH.2, end.2),
    )
}

/// Text of `size` pixels (plotters draws fonts at 1/1.24 of the nominal size).
fn text_style(size: u32, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle {
        font: (FAMILY, size as f64 * 1.24).into_font(),
        color: color.to_backend_color(),
        pos: Pos::new(h, v),
    }
}

fn text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &str,
    (x, y): (i32, i32),
    style: &TextStyle,
) -> Result<(), String> {
    area.draw(&Text::new(s.to_string(), (x, y), style.clone()))
        .map_err(err)
}

/// Grey fill with diagonal hatching inside a rectangle.
fn hatched<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x0, y0, x1, y1): (i32, i32, i32, i32),
) -> Result<(), String> {
    area.draw(&Rectangle::new([(x0, y0), (x1, y1)], MISSING_FILL.filled()))
        .map_err(err)?;
    let (w, h) = (x1 - x0, y1 - y0);
    let mut k = -h;
    while k < w {
        // Segment of the line x − x0 = k + (y1 − y), clipped to the rectangle.
        let (mut ax, mut ay) = (x0 + k, y1);
        let (mut bx, mut by) = (x0 + k + h, y0);
        if ax < x0 {
            ay -= x0 - ax;
            ax = x0;
        }
        if bx > x1 {
            by += bx - x1;
            bx = x1;
        }
        area.draw(&PathElement::new(vec![(ax, ay), (bx, by)], HATCH))
            .map_err(err)?;
        k += 10;
    }
    Ok(())
}

/// The Δ heatmap of one model and scope.
pub(crate) struct Heatmap {
    title: String,
    /// Row labels (intermediate (domain)).
    rows: Vec<String>,
    columns: Vec<String>,
    /// Row-major: `None` = not in the grid.
    entries: Vec<Option<(Entry, bool)>>,
    scale: f64,
    any_entry: bool,
    /// Width of the row-label column, from the longest label.
    label_w: i32,
}

pub(crate) const TOP: i32 = 90;
pub(crate) const CELL_W: i32 = 150;
pub(crate) const CELL_H: i32 = 58;
const LEGEND_W: i32 = 120;

impl Heatmap {
    pub(crate) fn new(m: &ModelMatrix, scope: Scope) -> Heatmap {
        let rows: Vec<_> = m.rows.iter().filter(|r| !r.baseline).collect();
        let mut entries = Vec::new();
        let mut scale: f64 = 0.0;
        let mut any_entry = false;
        for r in &rows {
            for t in &m.targets {
                let e = m.cell(&r.intermediate, t).and_then(|c| {
                    let e = *c.delta.as_ref()?.get(scope)?;
                    Some((e, c.aligned == Some(true)))
                });
                if let Some((Entry::Value(s), _)) = &e {
                    scale = scale.max(s.mean.abs());
                }
                any_entry |= e.is_some();
                entries.push(e);
            }
        }
        Heatmap {
            title: format!("Δ vs none, {}: model {}", scope.label(), m.model),
            rows: rows
                .iter()
                .map(|r| format!("{} ({})", r.intermediate, r.domain))
                .collect(),
            columns: m.targets.clone(),
            entries,
            scale: if scale > 0.0 { scale } else { 1.0 },
            any_entry,
            label_w: 0,
        }
        .with_label_width()
    }

    fn with_label_width(mut self) -> Heatmap {
        // About 0.6 em a character at 13 px, plus margins.
        let longest = self
            .rows
            .iter()
            .map(|r| r.chars().count())
            .max()
            .unwrap_or(0);
        self.label_w = (24 + longest as i32 * 8).max(120);
        self
    }

    /// Pixel rectangle (x0, y0, x1, y1) of the cell at (row, column).
    pub(crate) fn cell_rect(&self, row: usize, col: usize) -> (i32, i32, i32, i32) {
        let x0 = self.label_w + col as i32 * CELL_W;
        let y0 = TOP + row as i32 * CELL_H;
        (x0, y0, x0 + CELL_W, y0 + CELL_H)
    }
}

impl Figure for Heatmap {
    fn size(&self) -> (u32, u32) {
        let w = self.label_w + self.columns.len() as i32 * CELL_W + LEGEND_W;
        let h = TOP + (self.rows.len() as i32).max(3) * CELL_H + 50;
        (w as u32, h as u32)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        area.fill(&WHITE).map_err(err)?;
        let black = RGBColor(0, 0, 0);
        let title = text_style(18, black, HPos::Left, VPos::Top);
        let label = text_style(13, black, HPos::Right, VPos::Center);
        let header = text_style(14, black, HPos::Center, VPos::Bottom);
        text(area, &self.title, (12, 12), &title)?;
        for (c, name) in self.columns.iter().enumerate() {
            let (x0, y0, x1, _) = self.cell_rect(0, c);
            text(area, name, ((x0 + x1) / 2, y0 - 8), &header)?;
        }
        let ncols = self.columns.len();
        for (r, name) in self.rows.iter().enumerate() {
            let (x0, y0, _, y1) = self.cell_rect(r, 0);
            text(area, name, (x0 - 8, (y0 + y1) / 2), &label)?;
            for c in 0..ncols {
                self.draw_cell(area, r, c, self.entries[r * ncols + c].as_ref())?;
            }
        }
        self.legend(area)
    }
}

impl Heatmap {
    fn draw_cell<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        r: usize,
        c: usize,
        entry: Option<&(Entry, bool)>,
    ) -> Result<(), String> {
        let rect @ (x0, y0, x1, y1) = self.cell_rect(r, c);
        let (cx, cy) = ((x0 + x1) / 2, (y0 + y1) / 2);
        let dark = RGBColor(20, 20, 20);
        let line2 = text_style(11, dark, HPos::Center, VPos::Center);
        match entry {
            None => {
                area.draw(&Rectangle::new([(x0, y0), (x1, y1)], WHITE.filled()))
                    .map_err(err)?;
                text(area, "not in grid", (cx, cy), &line2)?;
            }
            Some((e @ Entry::Incomplete { .. }, _)) => {
                hatched(area, rect)?;
                let label = e.gap_label().unwrap_or_default();
                area.draw(&Rectangle::new(
                    [(cx - 52, cy - 11), (cx + 52, cy + 11)],
                    WHITE.filled(),
                ))
                .map_err(err)?;
                text(area, &label, (cx, cy), &line2)?;
            }
            Some((Entry::Value(s), aligned)) => {
                let fill = diverging(s.mean / self.scale);
                area.draw(&Rectangle::new([(x0, y0), (x1, y1)], fill.filled()))
                    .map_err(err)?;
                let strong = (s.mean / self.scale).abs() > 0.6;
                let ink = if strong { WHITE } else { dark };
                let l1 = text_style(14, ink, HPos::Center, VPos::Center);
                let l2 = text_style(11, ink, HPos::Center, VPos::Center);
                text(area, &format!("{:+.2}", s.mean), (cx, cy - 8), &l1)?;
                // The t-interval over seeds, or why there is none (aligned cells are framed).
                let n = match s.ci {
                    Some([lo, hi]) => format!("[{lo:+.2}, {hi:+.2}] n={}", s.n),
                    None => format!("n={}, no interval", s.n),
                };
                text(area, &n, (cx, cy + 12), &l2)?;
                if *aligned {
                    area.draw(&Rectangle::new(
                        [(x0 + 2, y0 + 2), (x1 - 2, y1 - 2)],
                        BLACK.stroke_width(2),
                    ))
                    .map_err(err)?;
                }
            }
        }
        area.draw(&Rectangle::new([(x0, y0), (x1, y1)], WHITE.stroke_width(1)))
            .map_err(err)
    }

    fn legend<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let x0 = self.label_w + self.columns.len() as i32 * CELL_W + 30;
        let (top, height) = (TOP, (self.rows.len() as i32).max(3) * CELL_H);
        let steps = 60;
        for k in 0..steps {
            let t = 1.0 - 2.0 * (k as f64 + 0.5) / steps as f64;
            let y = top + height * k / steps;
            let y1 = top + height * (k + 1) / steps;
            area.draw(&Rectangle::new(
                [(x0, y), (x0 + 20, y1)],
                diverging(t).filled(),
            ))
            .map_err(err)?;
        }
        let style = text_style(11, RGBColor(0, 0, 0), HPos::Left, VPos::Center);
        for (t, y) in [(1.0, top), (0.0, top + height / 2), (-1.0, top + height)] {
            text(
                area,
                &format!("{:+.2}", t * self.scale),
                (x0 + 26, y),
                &style,
            )?;
        }
        let (hx, hy) = (x0, top + height + 12);
        hatched(area, (hx, hy, hx + 20, hy + 16))?;
        text(area, "no value", (hx + 26, hy + 8), &style)
    }
}

/// The per-language Δ bar chart of one (model, target).
pub(crate) struct Bars {
    title: String,
    languages: Vec<String>,
    /// (intermediate, per-language mean Δ or `None` when incomplete).
    groups: Vec<(String, Vec<Option<f64>>)>,
    bar_w: i32,
    lo: f64,
    hi: f64,
}

const PLOT_TOP: i32 = 50;
const PLOT_H: i32 = 320;
const AXIS_X: i32 = 70;

impl Bars {
    pub(crate) fn new(m: &ModelMatrix, target: &str) -> Option<Bars> {
        let table = m.languages.iter().find(|t| t.target == target)?;
        let groups: Vec<(String, Vec<Option<f64>>)> = table
            .rows
            .iter()
            .filter_map(|r| {
                let d = r.delta.as_ref()?;
                let values = d.iter().map(|e| e.value().map(|s| s.mean)).collect();
                Some((r.intermediate.clone(), values))
            })
            .collect();
        if groups.is_empty() || table.languages.is_empty() {
            return None;
        }
        let values = groups.iter().flat_map(|(_, v)| v.iter().flatten());
        let (lo, hi) = values.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        let pad = ((hi - lo) * 0.1).max(0.5);
        let bar_w = (600 / table.languages.len() as i32).clamp(6, 24);
        Some(Bars {
            title: format!("Δ vs none per language: {target}, model {}", m.model),
            languages: table.languages.clone(),
            groups,
            bar_w,
            lo: if lo < 0.0 { lo - pad } else { 0.0 },
            hi: if hi > 0.0 { hi + pad } else { 0.5 },
        })
    }

    fn group_w(&self) -> i32 {
        (self.languages.len() as i32 * self.bar_w + 24).max(100)
    }

    fn y(&self, v: f64) -> i32 {
        PLOT_TOP + ((self.hi - v) / (self.hi - self.lo) * PLOT_H as f64).round() as i32
    }

    fn colour(&self, k: usize) -> RGBColor {
        let hue = k as f64 / self.languages.len() as f64;
        let (r, g, b) = HSLColor(hue, 0.6, 0.5).rgb();
        RGBColor(r, g, b)
    }
}

/// The 1, 2 or 5 × 10^k at or above `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = if raw > 0.0 { raw } else { 1.0 };
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

impl Figure for Bars {
    fn size(&self) -> (u32, u32) {
        let w = AXIS_X + self.groups.len() as i32 * self.group_w() + 40 + 90;
        let legend_h = PLOT_TOP + self.languages.len() as i32 * 16 + 20;
        let h = (PLOT_TOP + PLOT_H + 50).max(legend_h);
        (w as u32, h as u32)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        area.fill(&WHITE).map_err(err)?;
        let black = RGBColor(0, 0, 0);
        let grey = RGBColor(120, 120, 120);
        text(
            area,
            &self.title,
            (12, 12),
            &text_style(16, black, HPos::Left, VPos::Top),
        )?;
        let right = AXIS_X + self.groups.len() as i32 * self.group_w();
        let tick = text_style(11, black, HPos::Right, VPos::Center);
        let step = nice_step((self.hi - self.lo) / 5.0);
        let first = (self.lo / step).ceil() as i64;
        let last = (self.hi / step).floor() as i64;
        for k in first..=last {
            let v = k as f64 * step;
            let y = self.y(v);
            area.draw(&PathElement::new(
                vec![(AXIS_X, y), (right, y)],
                RGBColor(230, 230, 230),
            ))
            .map_err(err)?;
            let decimals = if step >= 1.0 {
                0
            } else {
                1 + (-step.log10()).floor() as usize
            };
            let label = if k == 0 {
                "0".to_string()
            } else {
                format!("{v:+.decimals$}")
            };
            text(area, &label, (AXIS_X - 6, y), &tick)?;
        }
        let zero = self.y(0.0);
        area.draw(&PathElement::new(
            vec![(AXIS_X, zero), (right, zero)],
            black,
        ))
        .map_err(err)?;
        area.draw(&PathElement::new(
            vec![(AXIS_X, PLOT_TOP), (AXIS_X, PLOT_TOP + PLOT_H)],
            black,
        ))
        .map_err(err)?;
        let label = text_style(12, black, HPos::Center, VPos::Top);
        for (g, (name, values)) in self.groups.iter().enumerate() {
            let gx = AXIS_X + g as i32 * self.group_w() + 12;
            for (k, v) in values.iter().enumerate() {
                let x = gx + k as i32 * self.bar_w;
                match v {
                    Some(v) => {
                        let y = self.y(*v);
                        let (top, bottom) = if y < zero { (y, zero) } else { (zero, y) };
                        area.draw(&Rectangle::new(
                            [(x, top), (x + self.bar_w - 1, bottom.max(top + 1))],
                            self.colour(k).filled(),
                        ))
                        .map_err(err)?;
                    }
                    // A gap, not a value: hatched over the whole height, never a bar at 0.
                    None => hatched(area, (x, PLOT_TOP, x + self.bar_w - 1, PLOT_TOP + PLOT_H))?,
                }
            }
            let mid = gx + values.len() as i32 * self.bar_w / 2;
            text(area, name, (mid, PLOT_TOP + PLOT_H + 8), &label)?;
        }
        let legend = text_style(11, black, HPos::Left, VPos::Center);
        let lx = right + 30;
        for (k, lang) in self.languages.iter().enumerate() {
            let y = PLOT_TOP + k as i32 * 16;
            area.draw(&Rectangle::new(
                [(lx, y), (lx + 12, y + 12)],
                self.colour(k).filled(),
            ))
            .map_err(err)?;
            text(area, lang, (lx + 18, y + 6), &legend)?;
        }
        let note = text_style(11, grey, HPos::Left, VPos::Top);
        text(
            area,
            "hatched column: incomplete (no value), not 0",
            (AXIS_X, PLOT_TOP + PLOT_H + 28),
            &note,
        )
    }
}

#[cfg(test)]
#[path = "plots_tests.rs"]
mod tests;

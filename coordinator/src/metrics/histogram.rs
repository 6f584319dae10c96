//! The Prometheus text exposition's building blocks (format 0.0.4): a fixed-bucket histogram and
//! label-value escaping.

use std::fmt::Write as _;

/// A fixed-bucket histogram.
#[derive(Debug, Clone)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative); the last slot is `+Inf`.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    pub fn observe(&mut self, v: f64) {
        let i = self.bounds.iter().position(|&b| v <= b);
        self.counts[i.unwrap_or(self.bounds.len())] += 1;
        self.sum += v;
    }

    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, &b) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i];
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()];
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
        );
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), self.sum);
        let _ = writeln!(out, "{name}_count{} {cumulative}", braces(labels));
    }
}

/// Escapes a label value: backslash, double quote and newline.
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_with_inf() {
        let mut h = Histogram::new(&[1.0, 10.0]);
        for v in [0.5, 2.0, 3.0, 20.0] {
            h.observe(v);
        }
        let mut out = String::new();
        h.render(&mut out, "x", "k=\"a\"");
        assert_eq!(
            out,
            "x_bucket{k=\"a\",le=\"1\"} 1\nx_bucket{k=\"a\",le=\"10\"} 3\n\
             x_bucket{k=\"a\",le=\"+Inf\"} 4\nx_sum{k=\"a\"} 25.5\nx_count{k=\"a\"} 4\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}

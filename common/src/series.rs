//! A training job's curve: a bounded series of points (step, loss, learning rate, gradient norm,
//! dev metric), downsampled as it grows so that a job of any length keeps at most a fixed number
//! of points.
//!
//! Downsampling: points are offered in order. The series keeps every `stride`-th offered point in
//! a buffer of fixed capacity; when the buffer overflows it drops every other kept point and
//! doubles the stride. Kept points therefore stay evenly spaced for any length, and the latest
//! offered point is always kept beside them (so the curve ends where the job is now).
//!
//! Bad values: a point whose loss (or any other value) is NaN or infinite is kept and flagged,
//! never dropped silently. The first such point is always kept, whatever the stride, and the
//! number of such points is counted, so a curve shows where a job diverged.

use serde::{Deserialize, Serialize};

/// Evenly spaced points a training curve keeps by default: enough for a smooth plot of any job
/// length, and small enough (about 35 KB of protobuf) to ride on heartbeats.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Most points a store accepts for one attempt's curve (a worker sends at most
/// `DEFAULT_CAPACITY + 2`); a longer curve from a misbehaving client is cut to its last points.
pub const MAX_STORED_POINTS: usize = 4 * DEFAULT_CAPACITY;

/// One point of a curve. A value that was not reported is `None`; a reported NaN or infinite
/// value is kept as it is (see [`Point::non_finite`]). On the wire and in stores a non-finite
/// value is written as a string (`"NaN"`, `"inf"`, `"-inf"`), since JSON has no NaN.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Point {
    /// Training step (optimizer updates done).
    pub step: u64,
    /// Training loss at this step.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "finite_or_text"
    )]
    pub loss: Option<f64>,
    /// Learning rate at this step.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "finite_or_text"
    )]
    pub lr: Option<f64>,
    /// Gradient norm (before clipping) at this step.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "finite_or_text"
    )]
    pub grad_norm: Option<f64>,
    /// Dev metric from an evaluation at this step (the task's main score).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "finite_or_text"
    )]
    pub dev: Option<f64>,
}

impl Point {
    /// Whether any reported value is NaN or infinite.
    pub fn non_finite(&self) -> bool {
        [self.loss, self.lr, self.grad_norm, self.dev]
            .into_iter()
            .flatten()
            .any(|v| !v.is_finite())
    }

    /// Whether the loss is NaN or infinite (what `stop_on_nan` looks at).
    pub fn loss_non_finite(&self) -> bool {
        self.loss.is_some_and(|v| !v.is_finite())
    }
}

/// A bounded, evenly downsampled series of points; see the module comment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Most points kept in `points` (at least 2).
    capacity: usize,
    /// Every `stride`-th offered point is kept.
    stride: u64,
    /// Points offered so far.
    offered: u64,
    /// Kept points, in offer order.
    points: Vec<Point>,
    /// The latest offered point when it is not the last kept one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    latest: Option<Point>,
    /// The first point with a NaN or infinite value, kept whatever the stride.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_non_finite: Option<Point>,
    /// How many offered points had a NaN or infinite value.
    #[serde(default)]
    non_finite: u64,
}

impl Default for Series {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl Series {
    /// An empty series keeping at most `capacity` evenly spaced points (raised to 2 if smaller),
    /// plus the latest and the first non-finite point.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(2),
            stride: 1,
            offered: 0,
            points: Vec::new(),
            latest: None,
            first_non_finite: None,
            non_finite: 0,
        }
    }

    /// Offers the next point. Points are expected in step order; the series does not reorder.
    pub fn push(&mut self, point: Point) {
        if point.non_finite() {
            self.non_finite += 1;
            if self.first_non_finite.is_none() {
                self.first_non_finite = Some(point);
            }
        }
        let index = self.offered;
        self.offered += 1;
        if !index.is_multiple_of(self.stride) {
            self.latest = Some(point);
            return;
        }
        self.latest = None;
        self.points.push(point);
        if self.points.len() > self.capacity {
            // Keep offered indices 0, 2·stride, 4·stride, …: the kept points are those at even
            // positions of the buffer, which are exactly the multiples of the doubled stride.
            let mut i = 0usize;
            self.points.retain(|_| {
                let keep = i.is_multiple_of(2);
                i += 1;
                keep
            });
            self.stride *= 2;
            // The point just pushed may have been dropped: it is still the latest.
            if !index.is_multiple_of(self.stride) {
                self.latest = Some(point);
            }
        }
    }

    /// Every point to plot, in step order: the kept points, the first non-finite point where
    /// the stride dropped it, and the latest point. At most `capacity + 2` points.
    pub fn points(&self) -> Vec<Point> {
        let mut out = self.points.clone();
        if let Some(bad) = self.first_non_finite
            && !out.iter().any(|p| p.step == bad.step)
        {
            let at = out.partition_point(|p| p.step <= bad.step);
            out.insert(at, bad);
        }
        if let Some(latest) = self.latest
            && out.last().map(|p| p.step) != Some(latest.step)
        {
            out.push(latest);
        }
        out
    }

    /// Points offered so far (kept or not).
    pub fn offered(&self) -> u64 {
        self.offered
    }

    /// How many offered points had a NaN or infinite value.
    pub fn non_finite_count(&self) -> u64 {
        self.non_finite
    }

    /// The first offered point with a NaN or infinite value, if any.
    pub fn first_non_finite(&self) -> Option<Point> {
        self.first_non_finite
    }

    /// Whether no point was offered yet.
    pub fn is_empty(&self) -> bool {
        self.offered == 0
    }
}

/// Serde for `Option<f64>` that writes NaN and infinities as text, since JSON has no NaN.
mod finite_or_text {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Wire {
        Number(f64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            None => s.serialize_none(),
            Some(v) if v.is_nan() => s.serialize_some("NaN"),
            Some(v) if *v == f64::INFINITY => s.serialize_some("inf"),
            Some(v) if *v == f64::NEG_INFINITY => s.serialize_some("-inf"),
            Some(v) => s.serialize_some(v),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        match Option::<Wire>::deserialize(d)? {
            None => Ok(None),
            Some(Wire::Number(v)) => Ok(Some(v)),
            Some(Wire::Text(t)) => match t.as_str() {
                "NaN" | "nan" => Ok(Some(f64::NAN)),
                "inf" | "+inf" => Ok(Some(f64::INFINITY)),
                "-inf" => Ok(Some(f64::NEG_INFINITY)),
                other => Err(serde::de::Error::custom(format!(
                    "curve value {other:?} is neither a number nor NaN/inf/-inf"
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(step: u64, loss: f64) -> Point {
        Point {
            step,
            loss: Some(loss),
            ..Point::default()
        }
    }

    #[test]
    fn short_series_keeps_every_point() {
        let mut s = Series::with_capacity(8);
        for step in 1..=5 {
            s.push(at(step, 1.0 / step as f64));
        }
        let steps: Vec<u64> = s.points().iter().map(|p| p.step).collect();
        assert_eq!(steps, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn hundred_thousand_steps_stay_bounded_even_and_end_at_the_latest() {
        let capacity = 2000;
        let mut s = Series::with_capacity(capacity);
        for step in 1..=100_000u64 {
            s.push(at(step, 10.0 / step as f64));
            assert!(s.points().len() <= capacity + 2, "at step {step}");
        }
        let points = s.points();
        assert!(points.len() <= capacity + 1, "{}", points.len());
        // At least half the capacity is in use after the last thinning.
        assert!(points.len() > capacity / 2, "{}", points.len());
        assert_eq!(points.first().unwrap().step, 1);
        assert_eq!(points.last().unwrap().step, 100_000);
        // Evenly spaced: every gap but the one to the latest point is the same.
        let gaps: Vec<u64> = points.windows(2).map(|w| w[1].step - w[0].step).collect();
        let stride = gaps[0];
        assert!(stride >= 64, "stride {stride}");
        assert!(
            gaps[..gaps.len() - 1].iter().all(|&g| g == stride),
            "{gaps:?}"
        );
        assert!(*gaps.last().unwrap() <= stride);
        assert_eq!(s.offered(), 100_000);
    }

    #[test]
    fn non_finite_loss_is_kept_flagged_and_counted() {
        let mut s = Series::with_capacity(4);
        for step in 1..=100u64 {
            let loss = if step == 37 { f64::NAN } else { 1.0 };
            s.push(at(step, loss));
        }
        s.push(at(101, f64::INFINITY));
        assert_eq!(s.non_finite_count(), 2);
        assert_eq!(s.first_non_finite().unwrap().step, 37);
        let points = s.points();
        let bad = points
            .iter()
            .find(|p| p.step == 37)
            .expect("NaN point kept");
        assert!(bad.loss_non_finite() && bad.non_finite());
        assert!(
            points.windows(2).all(|w| w[0].step < w[1].step),
            "{points:?}"
        );
        assert_eq!(points.last().unwrap().loss, Some(f64::INFINITY));
        assert!(points.len() <= 4 + 2);
    }

    #[test]
    fn json_round_trip_keeps_nan_and_infinity() {
        let mut s = Series::with_capacity(3);
        s.push(at(1, 2.0));
        s.push(Point {
            step: 2,
            loss: Some(f64::NAN),
            lr: Some(1e-5),
            grad_norm: Some(f64::NEG_INFINITY),
            dev: Some(81.5),
        });
        let text = serde_json::to_string(&s).unwrap();
        assert!(
            text.contains("\"NaN\"") && text.contains("\"-inf\""),
            "{text}"
        );
        let back: Series = serde_json::from_str(&text).unwrap();
        let p = back.points()[1];
        assert!(p.loss.unwrap().is_nan());
        assert_eq!(p.grad_norm, Some(f64::NEG_INFINITY));
        assert_eq!(p.dev, Some(81.5));
        assert_eq!(back.points()[0], at(1, 2.0));
        let err = serde_json::from_str::<Point>(r#"{"step":1,"loss":"lots"}"#).unwrap_err();
        assert!(err.to_string().contains("lots"), "{err}");
    }
}

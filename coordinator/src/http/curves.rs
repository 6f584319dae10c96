//! Training curves for the cell page: the dashboard reads them from the store (they are not in
//! the coordinator's memory), through [`CurveReader`] so that the HTTP side stays free of the
//! store's type parameter.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Value, json};
use stilts_common::store::{CurveRecord, Store, StoreError};

/// A boxed future of a job's curves.
pub type CurvesFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<CurveRecord>, StoreError>> + Send + 'a>>;

/// Reads the stored curves of a job (every attempt that reported one).
pub trait CurveReader: Send + Sync + 'static {
    fn curves<'a>(&'a self, job_key: &'a str) -> CurvesFuture<'a>;
}

/// The store's curves.
pub struct StoreCurves<S>(pub Arc<S>);

impl<S: Store> CurveReader for StoreCurves<S> {
    fn curves<'a>(&'a self, job_key: &'a str) -> CurvesFuture<'a> {
        Box::pin(self.0.curves(job_key))
    }
}

/// A job's curves as the cell page shows them: `[{attempt, points: [{step, loss, lr, grad_norm,
/// dev}], non_finite}]`, non-finite values as the strings `"NaN"`, `"inf"`, `"-inf"`; an error
/// string when the store cannot be read (the rest of the page still renders).
pub async fn curves_json(reader: &dyn CurveReader, job_key: &str) -> Value {
    match reader.curves(job_key).await {
        Ok(curves) => Value::Array(
            curves
                .into_iter()
                .map(|c| {
                    let non_finite = c.points.iter().filter(|p| p.non_finite()).count();
                    json!({ "attempt": c.attempt, "points": c.points, "non_finite": non_finite })
                })
                .collect(),
        ),
        Err(e) => json!({ "error": format!("cannot read curves: {e}") }),
    }
}

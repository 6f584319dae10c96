//! JSON rendering: the whole [`Report`] as serde serialises it (matrices, per-seed scores,
//! per-language tables, alignment with CIs and exclusions, warnings, interval settings).
//! Incomplete entries carry `"status": "incomplete"` with gap counts; non-finite numbers are
//! written as `null`.

use super::{Report, ReportError};

pub fn render(report: &Report) -> Result<String, ReportError> {
    Ok(serde_json::to_string_pretty(report)?)
}

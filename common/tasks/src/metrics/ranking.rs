//! mAP@k for LAReQA and Mewsli-X (XTREME-R.md §4.4): AP@k = Σ over hits in the top k of
//! (hits so far / rank), divided by min(|targets|, k); a repeated prediction is not a new hit.
//! With one target this is the reciprocal rank truncated at k (Mewsli-X's MRR@20).

use std::collections::HashSet;
use std::hash::Hash;

pub fn average_precision_at_k<T: Eq + Hash>(targets: &HashSet<T>, ranked: &[T], k: usize) -> f64 {
    if targets.is_empty() || k == 0 {
        return 0.0;
    }
    let mut seen = HashSet::new();
    let (mut hits, mut score) = (0.0, 0.0);
    for (i, p) in ranked.iter().take(k).enumerate() {
        if targets.contains(p) && seen.insert(p) {
            hits += 1.0;
            score += hits / (i as f64 + 1.0);
        }
    }
    score / targets.len().min(k) as f64
}

/// Mean of AP@k over queries; a query without predictions scores 0.
pub fn mean_average_precision_at_k<T: Eq + Hash>(
    targets: &[HashSet<T>],
    ranked: &[Option<Vec<T>>],
    k: usize,
) -> f64 {
    if targets.is_empty() {
        return 0.0;
    }
    let sum: f64 = targets
        .iter()
        .zip(ranked)
        .map(|(t, r)| r.as_ref().map_or(0.0, |r| average_precision_at_k(t, r, k)))
        .sum();
    sum / targets.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ap_at_k() {
        let t: HashSet<u32> = [1, 2].into_iter().collect();
        // hits at ranks 1 and 3: (1/1 + 2/3) / 2
        let ap = average_precision_at_k(&t, &[1, 9, 2], 20);
        assert!((ap - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        let one: HashSet<u32> = [7].into_iter().collect();
        assert_eq!(average_precision_at_k(&one, &[3, 7], 20), 0.5);
        assert_eq!(average_precision_at_k(&one, &[3, 7], 1), 0.0);
        assert_eq!(average_precision_at_k(&one, &[7, 7], 20), 1.0);
    }
}

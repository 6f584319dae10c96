//! Student's t distribution for integer degrees of freedom: the CDF in closed form and its
//! inverse by bisection, exact to about 1e-12 (no table, no approximation formula).
//!
//! With θ = atan(t / √ν), the probability P(|T| ≤ t) is a finite trigonometric sum
//! (Abramowitz & Stegun 26.7.3–4):
//!
//! * ν odd: (2/π) · (θ + sin θ cos θ · Σ_{k=0}^{(ν−3)/2} a_k cos^{2k} θ), a_0 = 1,
//!   a_k = a_{k−1} · 2k / (2k + 1); for ν = 1 the sum is empty;
//! * ν even: sin θ · Σ_{k=0}^{(ν−2)/2} b_k cos^{2k} θ, b_0 = 1, b_k = b_{k−1} · (2k − 1) / (2k).

/// P(|T| ≤ t) for T ~ t(ν), t ≥ 0.
fn central_probability(t: f64, df: u64) -> f64 {
    let theta = (t / (df as f64).sqrt()).atan();
    let (s, c) = theta.sin_cos();
    let c2 = c * c;
    if df % 2 == 1 {
        let mut sum = 0.0;
        if df > 1 {
            let (mut term, mut k) = (1.0, 0u64);
            sum = 1.0;
            while 2 * k + 3 < df {
                k += 1;
                term *= c2 * (2 * k) as f64 / (2 * k + 1) as f64;
                sum += term;
            }
        }
        (2.0 / std::f64::consts::PI) * (theta + s * c * sum)
    } else {
        let (mut term, mut sum, mut k) = (1.0, 1.0, 0u64);
        while 2 * k + 2 < df {
            k += 1;
            term *= c2 * (2 * k - 1) as f64 / (2 * k) as f64;
            sum += term;
        }
        s * sum
    }
}

/// The CDF P(T ≤ t) of Student's t with `df` ≥ 1 degrees of freedom.
pub fn cdf(t: f64, df: u64) -> f64 {
    assert!(df >= 1, "t distribution needs df >= 1");
    let central = central_probability(t.abs(), df);
    if t >= 0.0 {
        0.5 + central / 2.0
    } else {
        0.5 - central / 2.0
    }
}

/// The quantile t_{p, df}: P(T ≤ t) = p, for 0 < p < 1 and `df` ≥ 1.
pub fn quantile(p: f64, df: u64) -> f64 {
    assert!(p > 0.0 && p < 1.0, "quantile needs 0 < p < 1, got {p}");
    if p < 0.5 {
        return -quantile(1.0 - p, df);
    }
    // P(|T| ≤ t) = 2p − 1 is increasing in t; bracket, then bisect to the last bit.
    let target = 2.0 * p - 1.0;
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while central_probability(hi, df) < target {
        lo = hi;
        hi *= 2.0;
        if hi > 1e300 {
            return f64::INFINITY;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if central_probability(mid, df) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The two-sided critical value for a `confidence` interval: t_{(1 + confidence)/2, df}.
pub fn critical(confidence: f64, df: u64) -> f64 {
    quantile((1.0 + confidence) / 2.0, df)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn known_quantiles() {
        // Published two-sided 95% / 99% values (6 decimals).
        for (p, df, want) in [
            (0.975, 1, 12.706205),
            (0.975, 2, 4.302653),
            (0.975, 3, 3.182446),
            (0.975, 4, 2.776445),
            (0.975, 5, 2.570582),
            (0.975, 9, 2.262157),
            (0.975, 10, 2.228139),
            (0.975, 29, 2.045230),
            (0.975, 30, 2.042272),
            (0.975, 120, 1.979930),
            (0.995, 5, 4.032143),
            (0.95, 3, 2.353363),
            (0.9, 7, 1.414924),
        ] {
            let got = quantile(p, df);
            assert!(
                close(got, want, 5e-7),
                "t_{{{p},{df}}} = {got}, want {want}"
            );
        }
        assert!(close(critical(0.95, 2), 4.302653, 5e-7));
    }

    #[test]
    fn closed_forms_for_one_and_two_df() {
        // ν = 1 is Cauchy: tan(π(p − ½)); ν = 2: (2p − 1) / √(2p(1 − p)).
        for p in [0.55, 0.7, 0.9, 0.975, 0.999] {
            let cauchy = (std::f64::consts::PI * (p - 0.5)).tan();
            assert!(close(quantile(p, 1), cauchy, 1e-9 * cauchy.max(1.0)));
            let two = (2.0 * p - 1.0) / (2.0 * p * (1.0 - p)).sqrt();
            assert!(close(quantile(p, 2), two, 1e-9 * two.max(1.0)));
        }
    }

    #[test]
    fn cdf_is_symmetric_and_inverts_quantile() {
        for df in [1, 2, 3, 6, 15, 60] {
            assert!(close(cdf(0.0, df), 0.5, 1e-15));
            for p in [0.01, 0.2, 0.5, 0.8, 0.975] {
                let t = quantile(p, df);
                assert!(close(cdf(t, df), p, 1e-12), "df {df} p {p}");
                assert!(close(cdf(-t, df), 1.0 - p, 1e-12));
            }
        }
        // Large df approaches the normal: z_{0.975} = 1.959964.
        assert!(close(quantile(0.975, 100_000), 1.959964, 1e-4));
    }
}

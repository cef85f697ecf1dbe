//! Exact order statistics over a period's cases: no sketch, no sampling, every value counted.
//! The median of an even count is the mean of the two middle values; the 90th percentile is
//! the nearest rank (the value at rank ⌈0.9·n⌉), so it is always a turnaround that happened.

/// Median and 90th percentile of `values` (sorted here); `None` for none.
pub fn median_p90(values: &mut [f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    // ⌈0.9·n⌉ in integers: (9n + 9) / 10, as a 1-based rank.
    let rank = (9 * n).div_ceil(10).max(1);
    Some((median, values[rank - 1]))
}

/// P / B × 100, rounded to two decimals; `None` when the base is empty.
pub fn share(p: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| ((p as f64) * 10_000.0 / (b as f64)).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_nearest_rank_p90() {
        assert_eq!(median_p90(&mut []), None);
        assert_eq!(median_p90(&mut [5.0]), Some((5.0, 5.0)));
        assert_eq!(median_p90(&mut [3.0, 1.0]), Some((2.0, 3.0)));
        let mut ten: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        assert_eq!(median_p90(&mut ten), Some((5.5, 9.0)));
        let mut eleven: Vec<f64> = (1..=11).map(f64::from).collect();
        assert_eq!(median_p90(&mut eleven), Some((6.0, 10.0)));
        let mut hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(median_p90(&mut hundred), Some((50.5, 90.0)));
    }

    #[test]
    fn shares_in_percent() {
        assert_eq!(share(1, 3), Some(33.33));
        assert_eq!(share(2, 3), Some(66.67));
        assert_eq!(share(0, 0), None);
        assert_eq!(share(5, 5), Some(100.0));
    }
}

//! Summaries of measured samples, as the report prints them.

use serde_json::Value;
use std::time::Duration;

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// min, median, p95, max (nearest rank).
pub fn summary(v: &[f64]) -> Option<[f64; 4]> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = |q: f64| s[((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
    Some([s[0], rank(0.5), rank(0.95), s[s.len() - 1]])
}

fn fmt_summary(v: &[f64]) -> String {
    match summary(v) {
        Some([a, b, c, d]) => format!("{a:.0} / {b:.0} / {c:.0} / {d:.0}"),
        None => "–".into(),
    }
}

/// A JSON array of samples as "min / median / p95 / max".
pub fn fmt_cell(v: &Value) -> String {
    let arr: Vec<f64> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    fmt_summary(&arr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_nearest_rank() {
        assert_eq!(summary(&[]), None);
        assert_eq!(summary(&[5.0]), Some([5.0, 5.0, 5.0, 5.0]));
        let v: Vec<f64> = (1..=20).rev().map(f64::from).collect();
        // 20 samples: median is the 10th, p95 the 19th smallest.
        assert_eq!(summary(&v), Some([1.0, 10.0, 19.0, 20.0]));
    }
}

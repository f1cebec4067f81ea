//! Latency summaries: nearest-rank percentiles over every sample (no histogram buckets, so
//! nothing is rounded), in milliseconds.

use std::time::Duration;

/// Percentiles of a set of durations.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The nearest-rank `q`-quantile (0 < q ≤ 1) of sorted values.
fn quantile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

impl Summary {
    pub(crate) fn of(samples: &[Duration]) -> Summary {
        Self::of_signed_ms(&samples.iter().map(|d| d.as_secs_f64() * 1e3).collect::<Vec<_>>())
    }

    /// For values that may be negative (watch lag measured against a client-side timestamp).
    pub(crate) fn of_signed_ms(samples: &[f64]) -> Summary {
        let mut v: Vec<f64> = samples.to_vec();
        v.sort_by(f64::total_cmp);
        Summary {
            count: v.len(),
            p50_ms: quantile(&v, 0.50).unwrap_or(f64::NAN),
            p99_ms: quantile(&v, 0.99).unwrap_or(f64::NAN),
            max_ms: v.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// The median of some durations.
pub(crate) fn median(samples: &[Duration]) -> Duration {
    let mut v = samples.to_vec();
    v.sort();
    quantile(&v, 0.5).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = Summary::of(&v);
        assert_eq!((s.count, s.p50_ms, s.p99_ms, s.max_ms), (100, 50.0, 99.0, 100.0));
        let s = Summary::of(&[Duration::from_millis(5)]);
        assert_eq!((s.p50_ms, s.p99_ms), (5.0, 5.0));
        assert!(Summary::of(&[]).p50_ms.is_nan());
        assert_eq!(median(&[3, 1, 2].map(Duration::from_secs)), Duration::from_secs(2));
        let s = Summary::of_signed_ms(&[-1.0, 2.0, 0.5]);
        assert_eq!((s.p50_ms, s.max_ms), (0.5, 2.0));
    }
}

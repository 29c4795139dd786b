//! Turning timed samples into the numbers the report carries: latency percentiles (nearest
//! rank over every sample, so p99 of 1000 samples is the 990th) and throughput from the median
//! repetition, which one slow outlier on a shared machine cannot move.

use std::time::Duration;

use serde::Serialize;

/// Latency of one operation over many samples, in microseconds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    pub unit: &'static str,
    pub samples: usize,
    pub min: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    pub fn from_samples(samples: &[Duration]) -> Self {
        let mut micros: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        micros.sort_by(f64::total_cmp);
        Latency {
            unit: "us",
            samples: micros.len(),
            min: percentile(&micros, 0.0),
            p50: percentile(&micros, 0.50),
            p99: percentile(&micros, 0.99),
            max: percentile(&micros, 1.0),
            mean: micros.iter().sum::<f64>() / micros.len().max(1) as f64,
        }
    }
}

/// Messages per second for a batch of `messages`, from the median of `repetitions` timings.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throughput {
    pub messages: usize,
    pub repetitions: usize,
    pub unit: &'static str,
    pub msgs_per_sec: f64,
    /// Wall time of the median repetition, in milliseconds.
    pub median_ms: f64,
    pub best_ms: f64,
}

impl Throughput {
    pub fn from_samples(messages: usize, samples: &[Duration]) -> Self {
        let mut millis: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        millis.sort_by(f64::total_cmp);
        let median_ms = percentile(&millis, 0.5);
        Throughput {
            messages,
            repetitions: millis.len(),
            unit: "msgs/s",
            msgs_per_sec: messages as f64 / (median_ms / 1e3),
            median_ms,
            best_ms: percentile(&millis, 0.0),
        }
    }
}

/// The median of `values` (any order): the middle one, or the mean of the two middle ones of an
/// even count (nearest rank would take the lower, which favours the measured side of every
/// ratio of ten block pairs); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Nearest-rank percentile of ascending `sorted` (`q` in 0..=1); NaN when empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.0), 1.0);
        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&values, 1.0), 100.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        let ten: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        assert_eq!(median(&ten), 5.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn throughput_uses_the_median_repetition() {
        let ms = |v| Duration::from_millis(v);
        let t = Throughput::from_samples(1000, &[ms(10), ms(1000), ms(20)]);
        assert_eq!(t.median_ms, 20.0);
        assert_eq!(t.msgs_per_sec, 50_000.0);
        assert_eq!(t.best_ms, 10.0);
    }
}

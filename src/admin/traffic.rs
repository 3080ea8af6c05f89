//! The traffic history behind the status page's charts, kept by the balancer so that a page
//! opened now shows the last minutes. Every [`SAMPLE_EVERY`] the recorder reads each backend's
//! totals (the counters and histogram the proxy already updates) and this keeps what each
//! interval added: requests, 5xx and the p99 duration, over the last [`WINDOW_SLOTS`]
//! intervals. Bounded whatever the table's size: one series for all traffic, one for each of
//! the [`KEPT_SERIES`] busiest backends, and each backend's last totals.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use prometheus::core::Metric as _;
use serde::Serialize;

use crate::metrics::BackendMetrics;

/// How often the recorder samples.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Intervals kept: 15 minutes.
pub const WINDOW_SLOTS: usize = 180;
/// Backends with a series of their own: with 2,500 apps, a page of every series would be
/// megabytes, and the quiet ones draw flat lines.
pub const KEPT_SERIES: usize = 100;

/// A backend's totals at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    pub requests: u64,
    pub errors_5xx: u64,
    /// Durations recorded (the histogram's count).
    pub timed: u64,
    /// Durations at or under each of [`Traffic`]'s bounds, cumulative; empty when none were
    /// recorded.
    pub buckets: Box<[u64]>,
}

/// One backend as the recorder read it.
#[derive(Debug, Clone)]
pub struct Reading {
    pub name: Box<str>,
    pub app_id: Box<str>,
    pub counters: Counters,
    /// Its counters were made since the last sample: all they hold is new. (Otherwise a
    /// backend met for the first time starts from what it holds now.)
    pub new: bool,
    /// It left the table since the last sample: what it added counts in the total, then it is
    /// forgotten.
    pub gone: bool,
}

/// What one interval added.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Point {
    requests: u32,
    errors_5xx: u32,
    /// Microseconds; `None` without a duration recorded.
    p99_us: Option<u32>,
}

/// The points of one backend (or of all), newest last: the last point is the last sample's.
#[derive(Debug, Clone, Default)]
struct Series {
    app_id: Box<str>,
    points: VecDeque<Point>,
    /// Sums over `points`.
    requests: u64,
    errors_5xx: u64,
    /// Still in the table at this sample.
    present: bool,
}

impl Series {
    fn push(&mut self, point: Point) {
        if self.points.len() == WINDOW_SLOTS {
            if let Some(old) = self.points.pop_front() {
                self.requests -= u64::from(old.requests);
                self.errors_5xx -= u64::from(old.errors_5xx);
            }
        }
        self.requests += u64::from(point.requests);
        self.errors_5xx += u64::from(point.errors_5xx);
        self.points.push_back(point);
    }
}

/// The history: see the module's comment.
#[derive(Debug, Clone, Default)]
pub struct Traffic {
    /// The duration histogram's bucket bounds (seconds), learnt from the first one read.
    bounds: Box<[f64]>,
    /// When the oldest kept interval began (Unix milliseconds).
    start_ms: u64,
    /// When each kept interval ended, oldest first.
    times: VecDeque<u64>,
    /// Each backend's totals at the last sample, by name.
    last: HashMap<Box<str>, Counters>,
    series: HashMap<Box<str>, Series>,
    total: Series,
    samples: u64,
    /// The last interval ends now, not at a sample (a report's copy).
    partial: bool,
}

impl Traffic {
    /// An empty history that starts at `start_ms`.
    pub fn new(start_ms: u64) -> Traffic {
        Traffic {
            start_ms,
            ..Traffic::default()
        }
    }

    /// Samples taken so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The totals of backend `name` now. An idle backend's histogram is not read again.
    pub fn read(&mut self, name: &str, metrics: &BackendMetrics) -> Counters {
        let requests = (0..5).map(|class| metrics.answered(class)).sum();
        let mut counters = Counters {
            requests,
            errors_5xx: metrics.answered(4),
            ..Counters::default()
        };
        if let Some(last) = self.last.get(name).filter(|l| l.requests == requests) {
            counters.timed = last.timed;
            counters.buckets = last.buckets.clone();
        } else if let Some(histogram) = metrics.duration_if_used() {
            let metric = histogram.metric();
            let histogram = metric.get_histogram();
            let buckets = histogram.get_bucket();
            if self.bounds.is_empty() {
                self.bounds = buckets.iter().map(|b| b.upper_bound()).collect();
            }
            if buckets.len() == self.bounds.len() {
                counters.timed = histogram.get_sample_count();
                counters.buckets = buckets.iter().map(|b| b.cumulative_count()).collect();
            }
        }
        counters
    }

    /// Adds the interval that ends at `at_ms`, from every backend in the table and those that
    /// left it since the last sample. A backend no longer there loses its series; so does one
    /// idle for the whole window.
    pub fn sample(&mut self, at_ms: u64, readings: Vec<Reading>) {
        let at_ms = at_ms.max(self.times.back().map_or(self.start_ms, |t| t + 1));
        let mut total = Delta::new(self.bounds.len());
        let mut candidates = Vec::new();
        let mut last = HashMap::with_capacity(readings.len());
        for reading in readings {
            let before = match self.last.remove(&reading.name) {
                Some(before) => before,
                None if reading.new => Counters::default(),
                None => reading.counters.clone(),
            };
            let delta = Delta::between(&before, &reading.counters, self.bounds.len());
            total.add(&delta);
            if reading.gone {
                self.series.remove(&reading.name);
                continue;
            }
            let point = delta.point(&self.bounds);
            match self.series.get_mut(&reading.name) {
                Some(series) => {
                    series.push(point);
                    series.present = true;
                }
                None if point.requests > 0 => {
                    candidates.push((reading.name.clone(), reading.app_id, point));
                }
                None => {}
            }
            last.insert(reading.name, reading.counters);
        }
        self.last = last;
        self.series
            .retain(|_, s| std::mem::take(&mut s.present) && s.requests > 0);
        self.admit(candidates);
        self.total.push(total.point(&self.bounds));
        self.times.push_back(at_ms);
        if self.times.len() > WINDOW_SLOTS {
            if let Some(end) = self.times.pop_front() {
                self.start_ms = end;
            }
        }
        self.samples += 1;
    }

    /// A backend without a series gets one while there is room, or in place of the quietest
    /// when its one interval saw more requests than that one's whole window.
    fn admit(&mut self, mut candidates: Vec<(Box<str>, Box<str>, Point)>) {
        candidates.sort_by(|a, b| b.2.requests.cmp(&a.2.requests).then(a.0.cmp(&b.0)));
        for (name, app_id, point) in candidates {
            if self.series.len() >= KEPT_SERIES {
                let quietest = self
                    .series
                    .iter()
                    .min_by(|a, b| a.1.requests.cmp(&b.1.requests).then(b.0.cmp(a.0)))
                    .map(|(name, s)| (name.clone(), s.requests));
                match quietest {
                    Some((quiet, requests)) if u64::from(point.requests) > requests => {
                        self.series.remove(&quiet);
                    }
                    _ => break,
                }
            }
            let mut series = Series {
                app_id,
                ..Series::default()
            };
            series.push(point);
            self.series.insert(name, series);
        }
    }

    /// This history with one more interval, from the last sample to `at_ms`: what a page opened
    /// now shows.
    pub fn with_partial(&self, at_ms: u64, readings: Vec<Reading>) -> Traffic {
        let mut copy = self.clone();
        copy.sample(at_ms, readings);
        copy.partial = true;
        copy
    }

    /// The JSON `/history` answers: backends busiest first.
    pub fn report(&self) -> HistoryReport<'_> {
        let mut backends: Vec<_> = self
            .series
            .iter()
            .map(|(name, s)| SeriesReport::new(Some(name), s))
            .collect();
        backends.sort_by(|a, b| {
            b.window_requests
                .cmp(&a.window_requests)
                .then(a.name.cmp(&b.name))
        });
        HistoryReport {
            interval_ms: SAMPLE_EVERY.as_millis() as u64,
            window_slots: WINDOW_SLOTS,
            kept_series: KEPT_SERIES,
            samples: self.samples,
            start_ms: self.start_ms,
            times: &self.times,
            last_partial: self.partial,
            total: SeriesReport::new(None, &self.total),
            backends,
        }
    }
}

/// What one backend added in one interval.
#[derive(Debug, Clone, Default)]
struct Delta {
    requests: u64,
    errors_5xx: u64,
    timed: u64,
    /// Cumulative, per bound.
    buckets: Vec<u64>,
}

impl Delta {
    fn new(bounds: usize) -> Delta {
        Delta {
            buckets: vec![0; bounds],
            ..Delta::default()
        }
    }

    fn between(before: &Counters, now: &Counters, bounds: usize) -> Delta {
        let at = |c: &Counters, i: usize| c.buckets.get(i).copied().unwrap_or(0);
        Delta {
            requests: now.requests.saturating_sub(before.requests),
            errors_5xx: now.errors_5xx.saturating_sub(before.errors_5xx),
            timed: now.timed.saturating_sub(before.timed),
            buckets: (0..bounds)
                .map(|i| at(now, i).saturating_sub(at(before, i)))
                .collect(),
        }
    }

    fn add(&mut self, other: &Delta) {
        self.requests += other.requests;
        self.errors_5xx += other.errors_5xx;
        self.timed += other.timed;
        for (sum, add) in self.buckets.iter_mut().zip(&other.buckets) {
            *sum += add;
        }
    }

    fn point(&self, bounds: &[f64]) -> Point {
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Point {
            requests: clamp(self.requests),
            errors_5xx: clamp(self.errors_5xx),
            p99_us: quantile(0.99, bounds, &self.buckets, self.timed)
                .map(|seconds| (seconds * 1e6).round().min(f64::from(u32::MAX)) as u32),
        }
    }
}

/// The `q` quantile of `count` durations, `cumulative[i]` of them at or under `bounds[i]`, the
/// rest above the last bound: as Prometheus' `histogram_quantile` estimates it (linear within
/// the bucket; past the last bound, the last bound).
fn quantile(q: f64, bounds: &[f64], cumulative: &[u64], count: u64) -> Option<f64> {
    if count == 0 || bounds.is_empty() || bounds.len() != cumulative.len() {
        return None;
    }
    let rank = q * count as f64;
    let mut below = 0u64;
    for (i, (&bound, &at)) in bounds.iter().zip(cumulative).enumerate() {
        if at as f64 >= rank && at > below {
            let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
            let within = (rank - below as f64) / (at - below) as f64;
            return Some(lower + (bound - lower) * within.clamp(0.0, 1.0));
        }
        below = at;
    }
    bounds.last().copied()
}

/// `/history`.
#[derive(Debug, Serialize)]
pub struct HistoryReport<'t> {
    pub interval_ms: u64,
    pub window_slots: usize,
    pub kept_series: usize,
    pub samples: u64,
    /// When the first interval began; `times[i]` is when interval `i` ended (Unix ms).
    pub start_ms: u64,
    pub times: &'t VecDeque<u64>,
    /// The last interval ends when the report was made, not at a sample.
    pub last_partial: bool,
    pub total: SeriesReport<'t>,
    /// A backend's arrays are the last of `times` (shorter when its series began later).
    pub backends: Vec<SeriesReport<'t>>,
}

#[derive(Debug, Serialize)]
pub struct SeriesReport<'t> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'t str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub app_id: &'t str,
    pub window_requests: u64,
    pub window_errors_5xx: u64,
    pub requests: Vec<u32>,
    pub errors_5xx: Vec<u32>,
    /// Milliseconds; `null` where nothing was timed.
    pub p99_ms: Vec<Option<f64>>,
}

impl<'t> SeriesReport<'t> {
    fn new(name: Option<&'t str>, series: &'t Series) -> SeriesReport<'t> {
        let points = &series.points;
        SeriesReport {
            name,
            app_id: &series.app_id,
            window_requests: series.requests,
            window_errors_5xx: series.errors_5xx,
            requests: points.iter().map(|p| p.requests).collect(),
            errors_5xx: points.iter().map(|p| p.errors_5xx).collect(),
            p99_ms: points
                .iter()
                .map(|p| p.p99_us.map(|us| f64::from(us) / 1000.0))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests;

use super::*;

const BOUNDS: [f64; 4] = [0.001, 0.01, 0.1, 1.0];

fn traffic() -> Traffic {
    Traffic {
        bounds: BOUNDS.into(),
        ..Traffic::new(0)
    }
}

/// A backend whose totals are `requests`, `errors` of them 5xx, each timed in the bucket of
/// `bound` (an index into `BOUNDS`).
fn reading(name: &str, requests: u64, errors: u64, bound: usize) -> Reading {
    let buckets = (0..BOUNDS.len())
        .map(|i| if i >= bound { requests } else { 0 })
        .collect();
    Reading {
        name: name.into(),
        app_id: format!("/{name}").into(),
        counters: Counters {
            requests,
            errors_5xx: errors,
            timed: requests,
            buckets,
        },
        new: true,
        gone: false,
    }
}

fn series<'t>(report: &'t HistoryReport<'t>, name: &str) -> Option<&'t SeriesReport<'t>> {
    report.backends.iter().find(|s| s.name == Some(name))
}

#[test]
fn quantiles_are_estimated_as_prometheus_does() {
    // 100 durations: 50 under 1 ms, 40 more under 10 ms, 10 more under 100 ms.
    let cumulative = [50, 90, 100, 100];
    let p50 = quantile(0.5, &BOUNDS, &cumulative, 100).unwrap();
    assert!((p50 - 0.001).abs() < 1e-12, "{p50}");
    let p99 = quantile(0.99, &BOUNDS, &cumulative, 100).unwrap();
    assert!((p99 - (0.01 + 0.09 * 0.9)).abs() < 1e-9, "{p99}");
    // Past the last bound: the last bound.
    assert_eq!(quantile(0.99, &BOUNDS, &[0, 0, 0, 0], 5), Some(1.0));
    assert_eq!(quantile(0.99, &BOUNDS, &[0, 0, 0, 0], 0), None);
    assert_eq!(quantile(0.99, &[], &[], 5), None);
}

#[test]
fn each_interval_keeps_what_it_added() {
    let mut t = traffic();
    t.sample(5_000, vec![reading("a", 10, 1, 0), reading("b", 4, 0, 2)]);
    t.sample(10_000, vec![reading("a", 13, 3, 0), reading("b", 4, 0, 2)]);
    let report = t.report();
    assert_eq!(report.samples, 2);
    assert_eq!(report.start_ms, 0);
    assert_eq!(
        report.times.iter().copied().collect::<Vec<_>>(),
        [5_000, 10_000]
    );
    let a = series(&report, "a").unwrap();
    assert_eq!(
        (a.requests.clone(), a.errors_5xx.clone()),
        (vec![10, 3], vec![1, 2])
    );
    assert_eq!(a.p99_ms, [Some(0.99), Some(0.99)]);
    assert_eq!((a.window_requests, a.window_errors_5xx), (13, 3));
    assert_eq!(a.app_id, "/a");
    let b = series(&report, "b").unwrap();
    assert_eq!(b.requests, [4, 0]);
    assert_eq!(b.p99_ms[1], None, "nothing timed in the second interval");
    assert_eq!(report.total.requests, [14, 3]);
    assert_eq!(report.total.errors_5xx, [1, 2]);
    // 14 durations, 10 under 1 ms and 4 under 100 ms: the 99th is in the third bucket.
    let p99 = report.total.p99_ms[0].unwrap();
    assert!(p99 > 10.0 && p99 <= 100.0, "{p99}");
    assert_eq!(report.backends[0].name, Some("a"), "busiest first");
}

#[test]
fn a_backend_met_late_starts_from_what_it_holds_unless_its_counters_are_new() {
    let mut t = traffic();
    t.sample(5_000, vec![]);
    let old = Reading {
        new: false,
        ..reading("old", 1_000, 0, 0)
    };
    t.sample(10_000, vec![old.clone(), reading("fresh", 7, 0, 0)]);
    let report = t.report();
    assert!(
        series(&report, "old").is_none(),
        "its old totals are not a spike"
    );
    assert_eq!(series(&report, "fresh").unwrap().requests, [7]);
    assert_eq!(report.total.requests, [0, 7]);
    let later = Reading {
        new: false,
        ..reading("old", 1_002, 0, 0)
    };
    t.sample(15_000, vec![later, reading("fresh", 7, 0, 0)]);
    assert_eq!(series(&t.report(), "old").unwrap().requests, [2]);
}

#[test]
fn only_the_busiest_backends_keep_a_series() {
    let mut t = traffic();
    let busy = |n: u64| -> Vec<Reading> {
        (0..KEPT_SERIES as u64 + 50)
            .map(|i| reading(&format!("b{i:03}"), n * (i + 1), 0, 0))
            .collect()
    };
    t.sample(5_000, busy(1));
    let report = t.report();
    assert_eq!(report.backends.len(), KEPT_SERIES);
    assert_eq!(report.backends[0].name, Some("b149"));
    assert!(series(&report, "b049").is_none(), "among the quietest");
    assert_eq!(report.total.window_requests, (1..=150).sum::<u64>());

    // A newcomer busier in one interval than the quietest kept one in its whole window takes
    // its place.
    let mut next = busy(1);
    next.push(reading("surge", 10_000, 0, 0));
    t.sample(10_000, next);
    let report = t.report();
    assert_eq!(report.backends.len(), KEPT_SERIES);
    assert_eq!(report.backends[0].name, Some("surge"));
    assert!(series(&report, "b050").is_none(), "the quietest gave way");
    assert!(series(&report, "b051").is_some());
}

#[test]
fn idle_and_departed_backends_lose_their_series() {
    let mut t = traffic();
    t.sample(
        5_000,
        vec![reading("idle", 3, 0, 0), reading("gone", 3, 0, 0)],
    );
    assert_eq!(t.report().backends.len(), 2);
    for i in 2..=WINDOW_SLOTS as u64 {
        t.sample(i * 5_000, vec![reading("idle", 3, 0, 0)]);
    }
    let report = t.report();
    assert!(series(&report, "gone").is_none());
    assert_eq!(series(&report, "idle").unwrap().window_requests, 3);
    t.sample(181 * 5_000, vec![reading("idle", 3, 0, 0)]);
    assert!(t.report().backends.is_empty(), "idle for the whole window");
    assert_eq!(
        t.last.len(),
        1,
        "totals kept for backends in the table only"
    );
}

#[test]
fn the_window_is_bounded() {
    let mut t = traffic();
    for i in 1..=WINDOW_SLOTS as u64 + 20 {
        t.sample(i * 5_000, vec![reading("a", i, 0, 1)]);
    }
    let report = t.report();
    assert_eq!(report.times.len(), WINDOW_SLOTS);
    assert_eq!(report.start_ms, 20 * 5_000);
    assert_eq!(report.times[0], 21 * 5_000);
    let a = series(&report, "a").unwrap();
    assert_eq!(a.requests.len(), WINDOW_SLOTS);
    assert_eq!(a.window_requests, WINDOW_SLOTS as u64);
    assert_eq!(report.total.requests.len(), WINDOW_SLOTS);
}

#[test]
fn a_partial_interval_is_a_copy_ending_now() {
    let mut t = traffic();
    t.sample(5_000, vec![reading("a", 2, 0, 0)]);
    let partial = t.with_partial(6_500, vec![reading("a", 5, 1, 0), reading("b", 1, 0, 0)]);
    let report = partial.report();
    assert!(report.last_partial);
    assert_eq!(report.times.back(), Some(&6_500));
    assert_eq!(series(&report, "a").unwrap().requests, [2, 3]);
    assert_eq!(series(&report, "b").unwrap().requests, [1]);
    let report = t.report();
    assert!(!report.last_partial);
    assert_eq!(report.samples, 1);
    assert_eq!(series(&report, "a").unwrap().requests, [2]);
}

#[test]
fn time_never_goes_back() {
    let mut t = traffic();
    t.sample(5_000, vec![]);
    t.sample(4_000, vec![]);
    assert_eq!(
        t.report().times.iter().copied().collect::<Vec<_>>(),
        [5_000, 5_001]
    );
}

#[test]
fn a_backend_that_left_counts_in_the_total_then_is_forgotten() {
    let mut t = traffic();
    t.sample(5_000, vec![reading("a", 2, 0, 0), reading("b", 1, 0, 0)]);
    let gone = Reading {
        gone: true,
        ..reading("a", 5, 0, 0)
    };
    // `c` came and went between two samples.
    let came_and_went = Reading {
        gone: true,
        ..reading("c", 4, 0, 0)
    };
    t.sample(10_000, vec![gone, came_and_went, reading("b", 1, 0, 0)]);
    let report = t.report();
    assert_eq!(report.total.requests, [3, 7]);
    assert!(series(&report, "a").is_none() && series(&report, "c").is_none());
    assert!(series(&report, "b").is_some());
    assert!(!t.last.contains_key("a"));
}

//! `/metrics` read as Prometheus reads it: by a real parser, and checked by `promtool`.

use std::io::Write;
use std::process::{Command, Stdio};

use prometheus_parse::{Sample, Scrape, Value};

/// The exposition, parsed (a text the parser refuses fails the test).
pub fn parse(text: &str) -> Scrape {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    Scrape::parse(lines).expect("the exposition parses")
}

/// The sample `name` whose labels include all of `labels`.
pub fn sample<'s>(
    samples: &'s [Sample],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'s Sample> {
    samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
}

/// The value of the sample `name` whose labels include all of `labels`.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let sample =
        sample(samples, name, labels).unwrap_or_else(|| panic!("no sample {name} {labels:?}"));
    match sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        Value::Histogram(ref buckets) => buckets.last().map_or(0.0, |b| b.count),
        ref other => panic!("{name}: unexpected {other:?}"),
    }
}

/// What `promtool check metrics` finds in `text` (naming, types, units, help): empty when
/// nothing. promtool comes from `scripts/install-test-deps.sh`; without it this fails.
pub fn promtool_findings(text: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (scripts/install-test-deps.sh installs it)");
    let mut stdin = child.stdin.take().unwrap();
    let text = text.to_owned();
    // Written beside the reads, so that neither side waits on a full pipe.
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        said
    } else {
        format!("{}: {said}", output.status)
    }
}

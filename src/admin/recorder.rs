//! What the balancer keeps for the status page besides the table: the traffic history and the
//! recent generations. A control-plane task samples the counters the proxy already increments
//! every [`SAMPLE_EVERY`]; the control loop records each table it publishes. The proxy never
//! sees any of it; the locks here are taken by the control plane and the admin port only.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use super::generations::{GenerationEntry, GenerationLog};
use super::traffic::{HistoryReport, Reading, Traffic, SAMPLE_EVERY};
use crate::metrics::BackendMetrics;
use crate::routing::{Backend, RoutingTable, SharedTable};

/// The recorded state, shared by the recorder task and the admin endpoints.
#[derive(Debug)]
pub struct Recorded {
    /// When the balancer started.
    pub started: SystemTime,
    traffic: Mutex<Sampled>,
    generations: Mutex<GenerationLog>,
}

#[derive(Debug)]
struct Sampled {
    traffic: Traffic,
    /// When the last sample was taken: counters made since are new traffic.
    at: Instant,
    /// The backends of every table since the last sample, by name: one that left the table
    /// before the next sample still has its last requests counted.
    seen: HashMap<Box<str>, SeenBackend>,
}

#[derive(Debug)]
struct SeenBackend {
    app_id: Box<str>,
    metrics: Arc<BackendMetrics>,
}

impl Sampled {
    fn note(&mut self, table: &RoutingTable) {
        self.note_backends(table.backends().iter());
    }

    fn note_backends<'b>(&mut self, backends: impl Iterator<Item = &'b Arc<Backend>>) {
        for backend in backends {
            if !self.seen.contains_key(&*backend.name) {
                let seen = SeenBackend {
                    app_id: backend.app_id().as_str().into(),
                    metrics: backend.metrics.clone(),
                };
                self.seen.insert(backend.name.clone(), seen);
            }
        }
    }

    /// Every backend of `table`, and those seen since the last sample that left it.
    fn read(&mut self, table: &RoutingTable) -> Vec<Reading> {
        self.note(table);
        let present: HashSet<&str> = table.backends().iter().map(|b| &*b.name).collect();
        let since = self.at;
        let traffic = &mut self.traffic;
        self.seen
            .iter()
            .map(|(name, seen)| Reading {
                name: name.clone(),
                app_id: seen.app_id.clone(),
                counters: traffic.read(name, &seen.metrics),
                new: seen.metrics.created() >= since,
                gone: !present.contains(&**name),
            })
            .collect()
    }
}

impl Recorded {
    pub fn new() -> Recorded {
        let started = SystemTime::now();
        Recorded {
            started,
            traffic: Mutex::new(Sampled {
                traffic: Traffic::new(unix_ms(started)),
                at: Instant::now(),
                seen: HashMap::new(),
            }),
            generations: Mutex::default(),
        }
    }

    /// Samples taken so far: the page fetches `/history` again when this moves.
    pub fn samples(&self) -> u64 {
        lock(&self.traffic).traffic.samples()
    }

    /// Newest first.
    pub fn generations(&self) -> Vec<GenerationEntry> {
        lock(&self.generations).recent()
    }

    /// Takes a sample of every backend in `table`.
    pub fn sample(&self, table: &RoutingTable) {
        let mut sampled = lock(&self.traffic);
        // Before the reads: counters made while they run are new at the next sample.
        let reading = Instant::now();
        let readings = sampled.read(table);
        sampled.traffic.sample(unix_ms(SystemTime::now()), readings);
        sampled.at = reading;
        let present: HashSet<&str> = table.backends().iter().map(|b| &*b.name).collect();
        sampled.seen.retain(|name, _| present.contains(&**name));
    }

    /// `/history` as JSON: the samples and the interval since the last one, up to now.
    pub fn history_json(&self, table: &RoutingTable) -> serde_json::Result<String> {
        let partial = {
            let mut sampled = lock(&self.traffic);
            let readings = sampled.read(table);
            sampled
                .traffic
                .with_partial(unix_ms(SystemTime::now()), readings)
        };
        let report: HistoryReport<'_> = partial.report();
        serde_json::to_string(&report)
    }

    /// Notes a table published: its entry, and the backends it added (by name: the others
    /// are known already) for the next sample.
    pub fn record_generation(&self, entry: GenerationEntry, added: &[Arc<Backend>]) {
        lock(&self.generations).record(entry);
        lock(&self.traffic).note_backends(added.iter());
    }
}

impl Default for Recorded {
    fn default() -> Self {
        Recorded::new()
    }
}

/// Runs until `stop`: a sample every [`SAMPLE_EVERY`] (the control loop records each table).
pub async fn run(recorded: Arc<Recorded>, table: SharedTable, stop: CancellationToken) {
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + SAMPLE_EVERY, SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => recorded.sample(&table.load()),
            () = stop.cancelled() => return,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

//! `/stats`: what the status page polls besides `/routes`: the process, the source's state,
//! the recent generations, every endpoint's runtime state (in flight, passive and active
//! health), and the hosts that lately found no route.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::generations::GenerationEntry;
use super::recorder::{unix_ms, Recorded};
use super::ReadStatus;
use crate::marathon::StreamStatus;
use crate::metrics::{Metrics, UnroutedHost};
use crate::routing::RoutingTable;

#[derive(Debug, Serialize)]
pub struct Stats {
    pub version: &'static str,
    pub started_unix_ms: u64,
    pub uptime_seconds: u64,
    pub generation: u64,
    /// Newest first, kept by the balancer.
    pub generations: Vec<GenerationEntry>,
    /// Samples of `/history` so far: it changes when this does.
    pub history_samples: u64,
    pub stream: StreamStatus,
    /// When the source was last read successfully (Unix milliseconds).
    pub last_sync_unix_ms: Option<u64>,
    pub read_error: Option<String>,
    /// Set while an empty app list is held back for confirmation (Unix milliseconds).
    pub held_empty_list_since_unix_ms: Option<u64>,
    pub backends: Vec<BackendStats>,
    /// Hosts whose requests found no route (503), most recent first, at most 50.
    pub unrouted: Vec<UnroutedHost>,
}

#[derive(Debug, Serialize)]
pub struct BackendStats {
    pub name: String,
    pub app_id: String,
    /// How the endpoints are spoken to: `h1`, `h2`, `h1-ssl`, `h2-ssl`.
    pub protocol: crate::model::BackendProtocol,
    /// Requests answered since start (all listeners), and those answered 5xx: the page turns
    /// successive polls into rates.
    pub requests: u64,
    pub errors_5xx: u64,
    pub endpoints: Vec<EndpointStats>,
}

#[derive(Debug, Serialize)]
pub struct EndpointStats {
    pub addr: String,
    pub task_id: String,
    pub in_flight: usize,
    /// Skipped now: a failed active check or a passive back-off.
    pub down: bool,
    pub check_failed: bool,
    pub draining: bool,
}

impl Stats {
    pub fn collect(
        table: &RoutingTable,
        stream: &StreamStatus,
        read: &ReadStatus,
        metrics: &Metrics,
        recorded: &Recorded,
    ) -> Stats {
        let backends = table
            .backends()
            .iter()
            .map(|backend| BackendStats {
                name: backend.name.to_string(),
                app_id: backend.app_id().to_string(),
                protocol: backend.protocol,
                requests: (0..5).map(|class| backend.metrics.answered(class)).sum(),
                errors_5xx: backend.metrics.answered(4),
                endpoints: backend
                    .endpoints()
                    .iter()
                    .zip(&backend.targets)
                    .map(|(endpoint, target)| EndpointStats {
                        addr: endpoint.addr.to_string(),
                        task_id: endpoint.task_id.to_string(),
                        in_flight: target.state.in_flight(),
                        down: target.state.is_down(),
                        check_failed: target.state.is_check_failed(),
                        draining: target.draining,
                    })
                    .collect(),
            })
            .collect();
        Stats {
            version: env!("CARGO_PKG_VERSION"),
            started_unix_ms: unix_ms(recorded.started),
            uptime_seconds: SystemTime::now()
                .duration_since(recorded.started)
                .map_or(0, |d| d.as_secs()),
            generation: table.generation(),
            generations: recorded.generations(),
            history_samples: recorded.samples(),
            stream: stream.clone(),
            last_sync_unix_ms: read
                .last_success
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as u64),
            read_error: read.error.clone(),
            held_empty_list_since_unix_ms: read
                .held_empty_list_since
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as u64),
            backends,
            unrouted: metrics.unrouted_hosts.recent(),
        }
    }
}

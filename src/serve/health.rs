//! Active health checks: each endpoint of a backend with a Marathon health check is probed at
//! the check's interval (HTTP `GET path` expecting 2xx/3xx, or a TCP connect). `fall`
//! consecutive failures take it out of rotation; two consecutive passes bring it back (HAProxy's
//! `rise 2`). Checkers are keyed by what they check, so a table swap keeps them running.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::model::{ActiveCheck, CheckKind};
use crate::routing::RoutingTable;
use crate::upstream::Endpoint;

/// Passes needed to come back after failing.
const RISE: u32 = 2;

/// What one checker probes and for which endpoint.
type CheckKey = (SocketAddr, SocketAddr, ActiveCheck);

#[derive(Debug, Default)]
pub struct HealthCheckers {
    running: HashMap<CheckKey, CancellationToken>,
}

impl HealthCheckers {
    /// Starts checkers for new (endpoint, check) pairs and stops those no longer in the table.
    pub fn reconcile(&mut self, table: &RoutingTable, shutdown: &CancellationToken) {
        let mut wanted: HashMap<CheckKey, Arc<Endpoint>> = HashMap::new();
        for backend in table.backends() {
            let Some(check) = &backend.service.health_check else {
                continue;
            };
            for (endpoint, target) in backend.endpoints().iter().zip(&backend.targets) {
                let probe = match endpoint.health_check_port {
                    Some(port) => SocketAddr::new(endpoint.addr.ip(), port),
                    None => endpoint.addr,
                };
                wanted.insert((endpoint.addr, probe, check.clone()), target.state.clone());
            }
        }
        let keys: HashSet<&CheckKey> = wanted.keys().collect();
        self.running.retain(|key, stop| {
            let keep = keys.contains(key);
            if !keep {
                stop.cancel();
            }
            keep
        });
        let new: Vec<_> = wanted
            .into_iter()
            .filter(|(key, _)| !self.running.contains_key(key))
            .collect();
        let spread = new.len() > PROBE_AT_ONCE;
        let count = new.len() as u32;
        for (i, (key, state)) in new.into_iter().enumerate() {
            // Many new checkers (a first table of thousands of endpoints) start spread over
            // their interval, not all probing in the same instant.
            let first = match spread {
                true => key.2.interval / count * i as u32,
                false => Duration::ZERO,
            };
            let stop = shutdown.child_token();
            tokio::spawn(check_loop(key.1, key.2.clone(), state, first, stop.clone()));
            self.running.insert(key, stop);
        }
    }
}

/// New checkers that may all probe at once; beyond this, first probes are spread.
const PROBE_AT_ONCE: usize = 256;

async fn check_loop(
    probe: SocketAddr,
    check: ActiveCheck,
    state: Arc<Endpoint>,
    first: Duration,
    stop: CancellationToken,
) {
    let (mut failures, mut passes) = (0u32, 0u32);
    let start = tokio::time::Instant::now() + first;
    let mut tick = tokio::time::interval_at(start, check.interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => {
                state.set_check_failed(false);
                return;
            }
        }
        if probe_once(probe, &check).await {
            failures = 0;
            passes = passes.saturating_add(1);
            if passes >= RISE && state.is_check_failed() {
                tracing::info!(endpoint = %state.addr, "health check passes again");
                state.set_check_failed(false);
            }
        } else {
            passes = 0;
            failures = failures.saturating_add(1);
            if failures >= check.fall && !state.is_check_failed() {
                tracing::warn!(endpoint = %state.addr, failures, "health check fails; out of rotation");
                state.set_check_failed(true);
            }
        }
    }
}

async fn probe_once(addr: SocketAddr, check: &ActiveCheck) -> bool {
    tokio::time::timeout(check.timeout, probe(addr, &check.kind))
        .await
        .unwrap_or(false)
}

async fn probe(addr: SocketAddr, kind: &CheckKind) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return false;
    };
    let CheckKind::Http { path } = kind else {
        return true;
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: switchyard-health\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    // Only the status line matters: `HTTP/1.x 2xx` or `3xx`.
    let mut head = [0u8; 12];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => read += n,
        }
    }
    head.starts_with(b"HTTP/1.") && matches!(head[9], b'2' | b'3')
}

//! Active health checks: each endpoint of a backend with a Marathon health check is probed at
//! the check's interval (HTTP `GET path` expecting 2xx/3xx, or a TCP connect). `fall`
//! consecutive failures take it out of rotation; two consecutive passes bring it back (HAProxy's
//! `rise 2`). Checkers are keyed by what they check, so a table swap keeps them running.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::model::{ActiveCheck, CheckKind};
use crate::routing::{Backend, RoutingTable};
use crate::upstream::Endpoint;

/// Passes needed to come back after failing.
const RISE: u32 = 2;

/// What one checker probes and for which endpoint.
type CheckKey = (SocketAddr, SocketAddr, ActiveCheck);

#[derive(Debug, Default)]
pub struct HealthCheckers {
    /// Each checker with the number of the table's endpoints it checks for (two backends may
    /// name one endpoint with one check).
    running: HashMap<CheckKey, (CancellationToken, usize)>,
}

impl HealthCheckers {
    /// Starts checkers for new (endpoint, check) pairs and stops those no longer in the table.
    pub fn reconcile(&mut self, table: &RoutingTable, shutdown: &CancellationToken) {
        let mut wanted: HashMap<CheckKey, (Arc<Endpoint>, usize)> = HashMap::new();
        for (key, state) in table.backends().iter().flat_map(|b| checks(b)) {
            wanted.entry(key).or_insert((state, 0)).1 += 1;
        }
        self.running
            .retain(|key, (stop, count)| match wanted.get(key) {
                Some((_, wanted_by)) => {
                    *count = *wanted_by;
                    true
                }
                None => {
                    stop.cancel();
                    false
                }
            });
        let new: Vec<_> = wanted
            .into_iter()
            .filter(|(key, _)| !self.running.contains_key(key))
            .collect();
        self.start(new, shutdown);
    }

    /// As [`HealthCheckers::reconcile`] when only `replaced` backends of the last table were
    /// replaced, by `added` ones: a change to one app touches its own checkers, not every one.
    pub fn reconcile_replaced(
        &mut self,
        replaced: &[Arc<Backend>],
        added: &[Arc<Backend>],
        shutdown: &CancellationToken,
    ) {
        for (key, _) in replaced.iter().flat_map(|b| checks(b)) {
            if let Some((stop, count)) = self.running.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    stop.cancel();
                    self.running.remove(&key);
                }
            }
        }
        let mut new: HashMap<CheckKey, (Arc<Endpoint>, usize)> = HashMap::new();
        for (key, state) in added.iter().flat_map(|b| checks(b)) {
            match self.running.get_mut(&key) {
                Some((_, count)) => *count += 1,
                None => new.entry(key).or_insert((state, 0)).1 += 1,
            }
        }
        self.start(new.into_iter().collect(), shutdown);
    }

    fn start(
        &mut self,
        new: Vec<(CheckKey, (Arc<Endpoint>, usize))>,
        shutdown: &CancellationToken,
    ) {
        let spread = new.len() > PROBE_AT_ONCE;
        let count = new.len() as u32;
        for (i, (key, (state, wanted_by))) in new.into_iter().enumerate() {
            // Many new checkers (a first table of thousands of endpoints) start spread over
            // their interval, not all probing in the same instant.
            let first = match spread {
                true => key.2.interval / count * i as u32,
                false => Duration::ZERO,
            };
            let stop = shutdown.child_token();
            tokio::spawn(check_loop(key.1, key.2.clone(), state, first, stop.clone()));
            self.running.insert(key, (stop, wanted_by));
        }
    }
}

/// A backend's checks: one per endpoint when its app has a check the balancer can run.
fn checks(backend: &Backend) -> impl Iterator<Item = (CheckKey, Arc<Endpoint>)> + '_ {
    let check = backend.service.health_check.as_ref();
    let endpoints = backend.endpoints().iter().zip(&backend.targets);
    check.into_iter().flat_map(move |check| {
        endpoints.clone().map(move |(endpoint, target)| {
            let probe = match endpoint.health_check_port {
                Some(port) => SocketAddr::new(endpoint.addr.ip(), port),
                None => endpoint.addr,
            };
            ((endpoint.addr, probe, check.clone()), target.state.clone())
        })
    })
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

//! Per-endpoint runtime state that outlives any one routing table: in-flight count, passive
//! health and the idle upstream connections, keyed by address and carried into every new table.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// First passive-health back-off after an ejection; doubles per further failure up to the cap.
const BACKOFF_BASE: Duration = Duration::from_secs(2);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// Failures in a row after a connection was made (no answer in time, a reset before the
/// response, an unparsable response) that eject the endpoint. One slow request must not;
/// a refused or timed-out connect is unambiguous and ejects at once.
pub const EJECT_AFTER: u32 = 3;

/// The back-off for the `failures`-th failure in a row (this one of kind `failure`): the
/// ejecting failure gets [`BACKOFF_BASE`], whichever kind it is, and each one after it doubles
/// it, up to the cap.
fn backoff_after(failures: u32, failure: Failure) -> Duration {
    let ejecting = match failure {
        Failure::Response => EJECT_AFTER,
        Failure::Connect => 1,
    };
    let past = failures.saturating_sub(ejecting).min(4);
    BACKOFF_BASE.saturating_mul(1 << past).min(BACKOFF_CAP)
}

/// What went wrong with one attempt, for passive health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connect was refused or timed out.
    Connect,
    /// Connected, but no usable response: a timeout, a reset, a broken response.
    Response,
}

/// The runtime side of one endpoint. Every field is atomic or lock-free: it is read and written
/// on the request path.
#[derive(Debug)]
pub struct EndpointState<C> {
    pub addr: SocketAddr,
    in_flight: AtomicUsize,
    /// Milliseconds since the process epoch until which the endpoint is skipped (0 = healthy).
    down_until_ms: AtomicU64,
    consecutive_failures: AtomicU32,
    /// Set by the active health check while the endpoint fails it.
    check_failed: AtomicBool,
    /// Shared by every state of a registry.
    counters: Option<Arc<EndpointCounters>>,
    /// Idle pooled connections to this endpoint, allocated on first use: a table of tens of
    /// thousands of endpoints must not pay for pools nobody sends to.
    /// Boxed: the queue's cache-padded head and tail would make every state ~300 bytes, and a
    /// table build touches every state.
    idle: OnceLock<Box<C>>,
}

impl<C> EndpointState<C> {
    fn new(addr: SocketAddr, counters: Option<Arc<EndpointCounters>>) -> EndpointState<C> {
        EndpointState {
            addr,
            in_flight: AtomicUsize::new(0),
            down_until_ms: AtomicU64::new(0),
            consecutive_failures: AtomicU32::new(0),
            check_failed: AtomicBool::new(false),
            counters,
            idle: OnceLock::new(),
        }
    }

    /// The idle-connection pools.
    pub fn idle(&self) -> &C
    where
        C: Default,
    {
        self.idle.get_or_init(Box::default)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a request until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight<C> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Whether passive or active health currently skips this endpoint.
    pub fn is_down(&self) -> bool {
        self.check_failed.load(Ordering::Relaxed)
            || self.down_until_ms.load(Ordering::Relaxed) > now_ms()
    }

    pub fn is_check_failed(&self) -> bool {
        self.check_failed.load(Ordering::Relaxed)
    }

    /// The active health check's verdict.
    pub fn set_check_failed(&self, failed: bool) {
        self.check_failed.store(failed, Ordering::Relaxed);
    }

    /// A connect failed: skip the endpoint for a back-off that grows with each failure.
    pub fn mark_failed(&self) {
        self.record_failure(Failure::Connect);
    }

    /// Passive health: a connect failure ejects the endpoint at once, response failures after
    /// [`EJECT_AFTER`] in a row. While failures go on (the first request after a back-off
    /// fails again), each one ejects again for a longer back-off.
    pub fn record_failure(&self, failure: Failure) {
        let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failure == Failure::Response && failures < EJECT_AFTER {
            return;
        }
        let backoff = backoff_after(failures, failure);
        let now = now_ms();
        let was_down = self
            .down_until_ms
            .swap(now + backoff.as_millis() as u64, Ordering::Relaxed);
        if was_down <= now {
            if let Some(counters) = &self.counters {
                counters.ejections.inc();
            }
            tracing::warn!(endpoint = %self.addr, failures, backoff_ms = backoff.as_millis() as u64, "endpoint ejected after failures");
        }
    }

    /// When the endpoint is down until (`now_ms`), 0 if it never was.
    #[cfg(test)]
    fn down_until(&self) -> u64 {
        self.down_until_ms.load(Ordering::Relaxed)
    }

    /// An idle pooled connection was dropped when taken: the backend closed it, or sent bytes
    /// nobody asked for while it sat idle.
    pub fn discarded_idle(&self) {
        if let Some(counters) = &self.counters {
            counters.idle_discarded.inc();
        }
    }

    /// A connect or response succeeded.
    pub fn mark_ok(&self) {
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
            self.down_until_ms.store(0, Ordering::Relaxed);
        }
    }
}

/// Decrements the in-flight count when dropped.
#[derive(Debug)]
pub struct InFlight<C>(Arc<EndpointState<C>>);

impl<C> Drop for InFlight<C> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counters that every endpoint of a registry adds to.
#[derive(Debug)]
pub struct EndpointCounters {
    /// Passive ejections (`switchyard_endpoint_ejections_total`).
    pub ejections: prometheus::IntCounter,
    /// Idle upstream connections dropped when taken (`switchyard_upstream_idle_discarded_total`).
    pub idle_discarded: prometheus::IntCounter,
}

/// Every endpoint's state by address. Only the control plane touches the map (when a table is
/// built); the request path holds the `Arc`s the table hands it.
///
/// Sharded by address, so that the parts of a parallel build rarely wait for each other.
#[derive(Debug)]
pub struct EndpointRegistry<C> {
    /// Held for the whole of a build, so that two builds never interleave; counts the backends
    /// built since the registry was last pruned.
    build: Mutex<usize>,
    shards: Box<[Mutex<Shard<C>>]>,
    hasher: ahash::RandomState,
    counters: Option<Arc<EndpointCounters>>,
}

/// The states, found by address (each state holds its own). A state nothing else holds (no
/// table, no request) is dropped at the end of the next build. A table of pointers: a first
/// build of 30,000 endpoints writes 8 bytes an entry, not the 40 of a map keyed by address.
type Shard<C> = hashbrown::HashTable<Arc<EndpointState<C>>>;

const SHARDS: usize = 16;
/// States from which [`RegistryBuild::finish`] prunes the shards in parallel.
const PARALLEL_PRUNE: usize = 8192;

impl<C> Default for EndpointRegistry<C> {
    fn default() -> Self {
        EndpointRegistry {
            build: Mutex::new(0),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: ahash::RandomState::new(),
            counters: None,
        }
    }
}

impl<C> EndpointRegistry<C> {
    /// A registry whose endpoints add to `counters`.
    pub fn with_counters(counters: EndpointCounters) -> Self {
        EndpointRegistry {
            counters: Some(Arc::new(counters)),
            ..EndpointRegistry::default()
        }
    }

    /// Starts handing out states for one table build. When the build ends, states that no
    /// table or request holds any more are forgotten: a backend reused from the last table
    /// keeps its states without asking for them again.
    pub fn build(&self) -> RegistryBuild<'_, C> {
        RegistryBuild {
            built_since_prune: lock(&self.build),
            registry: self,
            pruned: false,
        }
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
    }

    /// One hash per address: its bits 32..36 pick the shard, which leaves the table the low
    /// bits (its bucket) and the top ones (its control bytes) to itself.
    fn hash(&self, addr: &SocketAddr) -> u64 {
        self.hasher.hash_one(addr)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, hash: u64) -> &Mutex<Shard<C>> {
        &self.shards[(hash >> 32) as usize % SHARDS]
    }
}

/// A poisoned lock only means a build panicked half-way; the map itself is still whole.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The registry during one table build; parts of the build may ask from several threads.
pub struct RegistryBuild<'r, C> {
    built_since_prune: MutexGuard<'r, usize>,
    registry: &'r EndpointRegistry<C>,
    /// Whether [`RegistryBuild::finish`] pruned the registry already.
    pruned: bool,
}

impl<C> RegistryBuild<'_, C> {
    /// Makes room for `total` addresses in all (a first build asks for every one at once).
    pub fn expect(&self, total: usize) {
        for shard in self.registry.shards.iter() {
            let mut shard = lock(shard);
            let wanted = total / SHARDS + 1;
            let len = shard.len();
            shard.reserve(wanted.saturating_sub(len), |s| self.registry.hash(&s.addr));
        }
    }

    /// The state for an address: the one a live table has, or a new one.
    pub fn state(&self, addr: SocketAddr) -> Arc<EndpointState<C>> {
        let registry = self.registry;
        let hash = registry.hash(&addr);
        let mut shard = lock(registry.shard(hash));
        match shard.entry(hash, |s| s.addr == addr, |s| registry.hash(&s.addr)) {
            hashbrown::hash_table::Entry::Occupied(entry) => entry.get().clone(),
            hashbrown::hash_table::Entry::Vacant(entry) => {
                let state = Arc::new(EndpointState::new(addr, registry.counters.clone()));
                entry.insert(state.clone());
                state
            }
        }
    }
}

impl<C: Send + Sync> RegistryBuild<'_, C> {
    /// Ends the build of a table of `backends`, `built` of them new (the others taken over
    /// from the last table). The states nothing holds any more are forgotten once the backends
    /// built since the last pruning reach an eighth of the table: pruning reads every state (a
    /// cache miss each), which a change to one app of thousands should not pay, and the states
    /// left meanwhile are at most those of the backends replaced. A first build, or one that
    /// rebuilt everything, prunes at once; a large registry's shards side by side.
    pub fn finish(mut self, built: usize, backends: usize) {
        *self.built_since_prune += built;
        if *self.built_since_prune < backends / 8 {
            self.pruned = true;
            return;
        }
        *self.built_since_prune = 0;
        if self.registry.len() >= PARALLEL_PRUNE {
            use rayon::prelude::*;
            self.registry.shards.par_iter().for_each(prune);
            self.pruned = true;
        }
    }
}

impl<C> Drop for RegistryBuild<'_, C> {
    /// A build that ends without [`RegistryBuild::finish`] prunes.
    fn drop(&mut self) {
        if !self.pruned {
            *self.built_since_prune = 0;
            self.registry.shards.iter().for_each(prune);
        }
    }
}

/// Forgets the shard's states that no table or request holds. Under the shard's lock nobody
/// can take a new reference: a count of one is the registry's own.
fn prune<C>(shard: &Mutex<Shard<C>>) {
    lock(shard).retain(|state| Arc::strong_count(state) > 1);
}

/// Milliseconds since the first call: a cheap monotonic clock for back-off deadlines.
pub fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    // +1 so that a deadline of 0 always means "not down".
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

#[cfg(test)]
mod tests;

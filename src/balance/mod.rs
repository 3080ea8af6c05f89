//! Picking an endpoint: round-robin, least-connections, source hash and sticky cookies, with
//! atomics only. Built with each table; the endpoint state it reads outlives tables (`state.rs`).
//! Generic over what an endpoint keeps besides its health (`C`: the upstream connection pools,
//! which `upstream/` defines), so that this stage knows nothing of sockets.

pub mod state;

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub use state::{
    EndpointCounters, EndpointRegistry, EndpointState, InFlight,
    RegistryBuild as EndpointRegistryBuild,
};

use crate::model::Balance;

/// The name of Marathon-LB's sticky-session cookie.
pub const STICKY_COOKIE: &str = "mesosphere_server_id";

/// One endpoint as a backend sees it.
#[derive(Debug)]
pub struct Target<C> {
    pub state: Arc<EndpointState<C>>,
    /// A zero-downtime deployment drains it: no new requests.
    pub draining: bool,
    /// The sticky cookie value naming this endpoint (stable across tables and restarts),
    /// sent as 16 hex digits.
    pub sticky_id: u64,
}

impl<C> Clone for Target<C> {
    fn clone(&self) -> Self {
        Target {
            state: self.state.clone(),
            draining: self.draining,
            sticky_id: self.sticky_id,
        }
    }
}

impl<C> Target<C> {
    pub fn new(state: Arc<EndpointState<C>>, draining: bool) -> Target<C> {
        let sticky_id = sticky_id(state.addr);
        Target {
            state,
            draining,
            sticky_id,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.state.addr
    }

    fn available(&self) -> bool {
        !self.draining && !self.state.is_down()
    }
}

/// Picks among a backend's targets with its policy.
#[derive(Debug, Default)]
pub struct Selector {
    policy: Balance,
    next: AtomicUsize,
}

impl Selector {
    pub fn new(policy: Balance) -> Selector {
        Selector {
            policy,
            next: AtomicUsize::new(0),
        }
    }

    /// The index of the target for a request, skipping drained, backed-off and `excluded`
    /// targets (already tried for this request). A sticky cookie that names an available
    /// target wins. `None` when no target is available.
    pub fn pick<C>(
        &self,
        targets: &[Target<C>],
        client: IpAddr,
        sticky: Option<u64>,
        excluded: &[usize],
    ) -> Option<usize> {
        let n = targets.len();
        if n == 0 {
            return None;
        }
        let usable = |i: usize| targets[i].available() && !excluded.contains(&i);
        if let Some(wanted) = sticky {
            if let Some(i) = (0..n).find(|&i| targets[i].sticky_id == wanted) {
                if usable(i) {
                    return Some(i);
                }
            }
        }
        let start = match self.policy {
            Balance::RoundRobin | Balance::LeastConn => self.next.fetch_add(1, Ordering::Relaxed),
            Balance::Source => source_hash(client),
        } % n;
        let mut order = (0..n).map(|k| (start + k) % n).filter(|&i| usable(i));
        match self.policy {
            Balance::LeastConn => order.min_by_key(|&i| targets[i].state.in_flight()),
            Balance::RoundRobin | Balance::Source => order.next(),
        }
    }
}

fn source_hash(client: IpAddr) -> usize {
    let mut hasher = Fnv1a::default();
    client.hash(&mut hasher);
    hasher.finish() as usize
}

/// A stable name for an endpoint: FNV-1a of its address.
fn sticky_id(addr: SocketAddr) -> u64 {
    let mut hasher = Fnv1a::default();
    match addr.ip() {
        IpAddr::V4(ip) => hasher.write(&ip.octets()),
        IpAddr::V6(ip) => hasher.write(&ip.octets()),
    }
    hasher.write(&addr.port().to_be_bytes());
    hasher.finish()
}

/// FNV-1a: stable across processes and versions (unlike std's `DefaultHasher`), so a source
/// hash or a sticky cookie means the same endpoint after a restart.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Registry = EndpointRegistry<()>;

    fn targets(n: u16, registry: &Registry) -> Vec<Target<()>> {
        let states = registry.build();
        (0..n)
            .map(|i| {
                Target::new(
                    states.state(SocketAddr::from(([127, 0, 0, 1], 1000 + i))),
                    false,
                )
            })
            .collect()
    }

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn round_robin_visits_every_target() {
        let registry = Registry::default();
        let t = targets(3, &registry);
        let s = Selector::new(Balance::RoundRobin);
        let picks: Vec<_> = (0..6)
            .map(|_| s.pick(&t, CLIENT, None, &[]).unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn drained_down_and_excluded_targets_are_skipped() {
        let registry = Registry::default();
        let mut t = targets(3, &registry);
        t[0].draining = true;
        t[1].state.mark_failed();
        let s = Selector::new(Balance::RoundRobin);
        for _ in 0..5 {
            assert_eq!(s.pick(&t, CLIENT, None, &[]), Some(2));
        }
        assert_eq!(s.pick(&t, CLIENT, None, &[2]), None);
    }

    #[test]
    fn least_conn_prefers_the_idle_target() {
        let registry = Registry::default();
        let t = targets(3, &registry);
        let _a = t[0].state.begin();
        let _b = t[2].state.begin();
        let s = Selector::new(Balance::LeastConn);
        for _ in 0..4 {
            assert_eq!(s.pick(&t, CLIENT, None, &[]), Some(1));
        }
    }

    #[test]
    fn source_hash_is_stable_per_client() {
        let registry = Registry::default();
        let t = targets(5, &registry);
        let s = Selector::new(Balance::Source);
        let client: IpAddr = "127.0.0.9".parse().unwrap();
        let first = s.pick(&t, client, None, &[]);
        for _ in 0..10 {
            assert_eq!(s.pick(&t, client, None, &[]), first);
        }
    }

    #[test]
    fn a_sticky_cookie_pins_an_available_target() {
        let registry = Registry::default();
        let t = targets(3, &registry);
        let s = Selector::new(Balance::RoundRobin);
        let wanted = t[2].sticky_id;
        for _ in 0..4 {
            assert_eq!(s.pick(&t, CLIENT, Some(wanted), &[]), Some(2));
        }
        t[2].state.mark_failed();
        assert_ne!(s.pick(&t, CLIENT, Some(wanted), &[]), Some(2));
        assert_ne!(s.pick(&t, CLIENT, Some(12345), &[]), None);
    }
}

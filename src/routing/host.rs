//! Host → routes: exact names in a hash map, wildcards by suffix, each with its routes in
//! Marathon-LB's rule order. A lookup allocates nothing.

use std::collections::HashMap;
use std::sync::Arc;

use ahash::RandomState;

use crate::model::vhost::{host_part, MAX_HOST_LEN};
use crate::model::{PathMatch, VHost};

/// One vhost rule: host (+ optional path prefixes) → backend.
#[derive(Debug, Clone)]
pub struct HttpRoute {
    pub vhost: VHost,
    pub path: Option<PathMatch>,
    /// Higher is tried first; see [`super::RoutingTable`] for the full order.
    pub weight: i64,
    /// Its backend's place in the table's backends.
    pub(super) at: u32,
}

impl HttpRoute {
    fn matches_path(&self, path: &str) -> bool {
        self.path.as_ref().is_none_or(|p| p.matches(path))
    }
}

/// Request hosts are client input: a keyed hash (random per process) keeps crafted names from
/// colliding, and is several times faster than the standard SipHash on short keys.
/// Keyed by bytes: a request host is looked up as it came off the wire, never re-validated as
/// UTF-8.
type HostMap = HashMap<HostKey, Span, RandomState>;

/// A host's routes: `routes[start..start + len]` of the index.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..(self.start + self.len) as usize
    }
}

/// A vhost name as a map key: the route's own shared name (no copy), looked up by bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostKey(Arc<str>);

impl std::hash::Hash for HostKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As `[u8]` hashes, so that `Borrow<[u8]>` finds it.
        self.0.as_bytes().hash(state)
    }
}

impl std::borrow::Borrow<[u8]> for HostKey {
    fn borrow(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The vhost index.
#[derive(Debug, Default)]
pub struct HostRouter {
    /// Every route, one host after another, each host's in rule order: one vector rather than
    /// one per host (ten thousand allocations for ten thousand vhosts).
    routes: Vec<HttpRoute>,
    exact: HostMap,
    /// Keyed by the suffix after `*.`.
    wildcard: HostMap,
    /// Shortest and longest wildcard suffix: no other suffix of a request host can match, so
    /// the walk skips their hash lookups.
    wildcard_lengths: (usize, usize),
}

impl HostRouter {
    /// Builds the index; `routes` must already be in rule order (the sort is stable per host).
    pub fn new(mut routes: Vec<HttpRoute>) -> HostRouter {
        let wildcards = routes.iter().filter(|r| r.vhost.is_wildcard()).count();
        let mut exact =
            HostMap::with_capacity_and_hasher(routes.len() - wildcards, RandomState::new());
        let mut wildcard = HostMap::with_capacity_and_hasher(wildcards, RandomState::new());
        // Each host gets a number in order of appearance and counts its routes (its span holds
        // the number in `start` until the spans are known); `host_of` remembers each route's.
        let mut counts: Vec<u32> = Vec::new();
        let host_of: Vec<u32> = routes
            .iter()
            .map(|route| {
                let (map, name) = match &route.vhost {
                    VHost::Exact(name) => (&mut exact, name),
                    VHost::Wildcard(suffix) => (&mut wildcard, suffix),
                };
                let span = map.entry(HostKey(name.clone())).or_insert_with(|| {
                    counts.push(0);
                    Span {
                        start: counts.len() as u32 - 1,
                        len: 0,
                    }
                });
                counts[span.start as usize] += 1;
                span.start
            })
            .collect();
        // Host by host in order of first appearance: each host's run starts where the runs
        // before it end, and each route's place is the next free one in its host's run.
        let mut runs: Vec<Span> = Vec::with_capacity(counts.len());
        let mut next = 0u32;
        for len in counts {
            runs.push(Span { start: next, len });
            next += len;
        }
        let mut filled: Vec<u32> = runs.iter().map(|run| run.start).collect();
        let mut place: Vec<u32> = host_of
            .into_iter()
            .map(|host| {
                let at = filled[host as usize];
                filled[host as usize] += 1;
                at
            })
            .collect();
        // Into place by swaps, each putting one route where it belongs: none at all in the
        // usual table, where every host comes once and in order (a stable sort moved every
        // route several times, through a buffer as large as all of them).
        for i in 0..routes.len() {
            while place[i] as usize != i {
                let j = place[i] as usize;
                routes.swap(i, j);
                place.swap(i, j);
            }
        }
        // Within a host, by weight, highest first; stable, so rule order holds among equals.
        for run in runs.iter().filter(|run| run.len > 1) {
            routes[run.range()].sort_by_key(|route| std::cmp::Reverse(route.weight));
        }
        for span in exact.values_mut().chain(wildcard.values_mut()) {
            *span = runs[span.start as usize];
        }
        let wildcard_lengths = wildcard.keys().fold((usize::MAX, 0), |(lo, hi), k| {
            (lo.min(k.0.len()), hi.max(k.0.len()))
        });
        HostRouter {
            routes,
            exact,
            wildcard,
            wildcard_lengths,
        }
    }

    /// The route for a raw `Host` value (any case, maybe with a port) and a request path.
    ///
    /// The exact name's routes are tried first, in rule order; if none matches the path, the
    /// wildcards from the most specific suffix (`*.a.example.com`) to the least.
    pub fn route(&self, host: &[u8], path: &str) -> Option<&HttpRoute> {
        let host = host_part(host)?;
        if !host.iter().any(u8::is_ascii_uppercase) {
            return self.route_lowercase(host, path);
        }
        let mut buf = [0u8; MAX_HOST_LEN];
        let lower = &mut buf[..host.len()];
        lower.copy_from_slice(host);
        lower.make_ascii_lowercase();
        self.route_lowercase(lower, path)
    }

    /// As [`HostRouter::route`] for a host already lower case, without port.
    pub fn route_lowercase(&self, host: &[u8], path: &str) -> Option<&HttpRoute> {
        let first_match = |span: &Span| {
            self.routes[span.range()]
                .iter()
                .find(|r| r.matches_path(path))
        };
        if let Some(route) = self.exact.get(host).and_then(first_match) {
            return Some(route);
        }
        if self.wildcard.is_empty() {
            return None;
        }
        // Every suffix after a dot, longest first: `a.b.example.com` tries `b.example.com`,
        // then `example.com`, then `com`.
        let (shortest, longest) = self.wildcard_lengths;
        let mut rest = host;
        while let Some(dot) = rest.iter().position(|&b| b == b'.') {
            rest = &rest[dot + 1..];
            if rest.len() > longest {
                continue;
            }
            if rest.len() < shortest {
                break;
            }
            if let Some(route) = self.wildcard.get(rest).and_then(first_match) {
                return Some(route);
            }
        }
        None
    }

    /// Every route, exact hosts then wildcards, each host's routes in rule order, hosts sorted.
    pub fn routes(&self) -> Vec<&HttpRoute> {
        let mut hosts: Vec<(&VHost, &[HttpRoute])> = self
            .exact
            .values()
            .chain(self.wildcard.values())
            .map(|span| &self.routes[span.range()])
            .filter_map(|routes| routes.first().map(|r| (&r.vhost, routes)))
            .collect();
        hosts.sort_by(|a, b| a.0.cmp(b.0));
        hosts.into_iter().flat_map(|(_, routes)| routes).collect()
    }

    /// Routes, all hosts together.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub fn host_count(&self) -> usize {
        self.exact.len() + self.wildcard.len()
    }
}

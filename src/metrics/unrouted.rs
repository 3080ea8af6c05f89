//! The hosts that recently found no route (answered 503), for `/stats`: bounded whatever
//! clients send. Routed requests never touch it.
//!
//! Entries live in a fixed set of buckets (chosen by a keyed hash, so a client cannot aim at
//! one), each with its own lock and a few slots; a new host takes the least recently seen slot
//! of its bucket. A flood of made-up hosts therefore costs no memory beyond the fixed slots,
//! and threads recording at once mostly take different locks. A host name is cut to
//! [`MAX_HOST_BYTES`] and anything but a host name's characters is replaced, so what is kept
//! and shown is small and inert.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Hosts `/stats` lists at most.
pub const MAX_LISTED: usize = 50;
/// Longest host name kept; longer ones are cut and end in [`TRUNCATED`].
pub const MAX_HOST_BYTES: usize = 100;
/// The end of a cut host name: no real host name holds `..` (an empty label).
pub const TRUNCATED: &str = "...";
/// What a request that named no host is listed as (no host name holds parentheses).
pub const NO_HOST: &str = "(none)";

const BUCKETS: usize = 32;
const WAYS: usize = 4;
const SLOT_BYTES: usize = MAX_HOST_BYTES + TRUNCATED.len();

/// The recent unrouted hosts (`listener`, `host`) with their request counts.
#[derive(Debug)]
pub struct UnroutedHosts {
    hasher: ahash::RandomState,
    buckets: Box<[Mutex<[Slot; WAYS]>]>,
}

/// One host as `/stats` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnroutedHost {
    pub host: String,
    pub listener: &'static str,
    /// Requests since the host took its slot.
    pub requests: u64,
    /// RFC 3339, UTC, whole seconds.
    pub last_seen: String,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    host: [u8; SLOT_BYTES],
    len: usize,
    listener: &'static str,
    /// 0: empty.
    requests: u64,
    last_seen_ns: u64,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            host: [0; SLOT_BYTES],
            len: 0,
            listener: "",
            requests: 0,
            last_seen_ns: 0,
        }
    }
}

impl Slot {
    fn host(&self) -> &[u8] {
        &self.host[..self.len]
    }
}

impl Default for UnroutedHosts {
    fn default() -> Self {
        UnroutedHosts {
            hasher: ahash::RandomState::new(),
            buckets: (0..BUCKETS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl UnroutedHosts {
    /// Counts a request for `host` (as the client sent it, port removed; empty when it named
    /// none) that found no route on `listener`.
    pub fn record(&self, listener: &'static str, host: &[u8]) {
        let mut name = [0; SLOT_BYTES];
        let len = sanitise(host, &mut name);
        let name = &name[..len];
        let now = unix_ns(SystemTime::now());
        let bucket = self.hasher.hash_one((listener, name)) as usize % BUCKETS;
        let mut slots = self.buckets[bucket]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(slot) = slots
            .iter_mut()
            .find(|s| s.requests > 0 && s.listener == listener && s.host() == name)
        {
            slot.requests += 1;
            slot.last_seen_ns = slot.last_seen_ns.max(now);
            return;
        }
        // An empty slot has the oldest time of all (0).
        let Some(slot) = slots.iter_mut().min_by_key(|s| s.last_seen_ns) else {
            return;
        };
        slot.host[..len].copy_from_slice(name);
        slot.len = len;
        slot.listener = listener;
        slot.requests = 1;
        slot.last_seen_ns = now;
    }

    /// The [`MAX_LISTED`] most recently seen, most recent first.
    pub fn recent(&self) -> Vec<UnroutedHost> {
        let mut seen: Vec<Slot> = Vec::new();
        for bucket in self.buckets.iter() {
            let slots = bucket
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            seen.extend(slots.iter().filter(|s| s.requests > 0));
        }
        seen.sort_by_key(|slot| std::cmp::Reverse(slot.last_seen_ns));
        seen.truncate(MAX_LISTED);
        seen.iter()
            .map(|slot| UnroutedHost {
                host: String::from_utf8_lossy(slot.host()).into_owned(),
                listener: slot.listener,
                requests: slot.requests,
                last_seen: rfc3339_seconds(slot.last_seen_ns),
            })
            .collect()
    }
}

/// Writes `host` into `out` as it is kept: lower case; letters, digits and `.-_:[]*` as they
/// are, anything else `?`; at most [`MAX_HOST_BYTES`] of it, then [`TRUNCATED`];
/// [`NO_HOST`] for an empty one. Returns the length written.
fn sanitise(host: &[u8], out: &mut [u8; SLOT_BYTES]) -> usize {
    if host.is_empty() {
        out[..NO_HOST.len()].copy_from_slice(NO_HOST.as_bytes());
        return NO_HOST.len();
    }
    let kept = host.len().min(MAX_HOST_BYTES);
    for (to, &from) in out.iter_mut().zip(&host[..kept]) {
        *to = match from.to_ascii_lowercase() {
            b @ (b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b':' | b'[' | b']' | b'*') => b,
            _ => b'?',
        };
    }
    if host.len() == kept {
        return kept;
    }
    out[kept..kept + TRUNCATED.len()].copy_from_slice(TRUNCATED.as_bytes());
    kept + TRUNCATED.len()
}

/// Nanoseconds: two requests in a row never share a time, so the order is the order seen.
fn unix_ns(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn rfc3339_seconds(unix_ns: u64) -> String {
    let seconds = i64::try_from(unix_ns / 1_000_000_000).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(host: &[u8]) -> String {
        let mut out = [0; SLOT_BYTES];
        let len = sanitise(host, &mut out);
        String::from_utf8(out[..len].to_vec()).unwrap()
    }

    #[test]
    fn host_names_are_kept_small_and_inert() {
        assert_eq!(kept(b"Shop.Example.COM"), "shop.example.com");
        assert_eq!(kept(b""), NO_HOST);
        assert_eq!(kept(b"<script>\"\n\xff"), "?script????");
        let long = kept(&[b'a'; 10_000]);
        assert_eq!(long.len(), MAX_HOST_BYTES + TRUNCATED.len());
        assert!(long.ends_with(TRUNCATED));
    }

    #[test]
    fn counts_per_listener_and_host_most_recent_first() {
        let hosts = UnroutedHosts::default();
        hosts.record("http", b"a.example.com");
        hosts.record("http", b"A.example.com");
        hosts.record("https", b"a.example.com");
        let recent = hosts.recent();
        assert_eq!(recent.len(), 2);
        let http = recent.iter().find(|h| h.listener == "http").unwrap();
        assert_eq!((http.host.as_str(), http.requests), ("a.example.com", 2));
        assert!(
            http.last_seen.ends_with('Z') && http.last_seen.len() == 20,
            "{http:?}"
        );
    }

    #[test]
    fn a_flood_of_made_up_hosts_stays_within_the_slots() {
        let hosts = UnroutedHosts::default();
        for n in 0..100_000 {
            hosts.record("http", format!("{n}.flood.example").as_bytes());
        }
        hosts.record("http", b"last.example.com");
        let recent = hosts.recent();
        assert_eq!(recent.len(), MAX_LISTED);
        assert_eq!(recent[0].host, "last.example.com");
        assert!(recent[1..]
            .iter()
            .all(|h| h.requests == 1 && h.host.ends_with(".flood.example")));
    }
}

//! The cap on connections per client IP, checked once at accept (hyper has none).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open connections by client IP, in shards so that accepts on different addresses rarely
/// meet on one lock. Touched at accept and at close, never per request.
#[derive(Debug, Default)]
pub struct PerIp {
    shards: [Mutex<HashMap<IpAddr, usize, ahash::RandomState>>; 16],
}

impl PerIp {
    /// Counts a connection from `ip` unless `ip` already has `max` open.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<PerIpSlot> {
        let ip = ip.to_canonical();
        let mut shard = self.shard(ip).lock().unwrap_or_else(|e| e.into_inner());
        let open = shard.entry(ip).or_insert(0);
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(PerIpSlot {
            table: self.clone(),
            ip,
        })
    }

    /// Connections open from `ip`.
    pub fn open(&self, ip: IpAddr) -> usize {
        let ip = ip.to_canonical();
        let shard = self.shard(ip).lock().unwrap_or_else(|e| e.into_inner());
        shard.get(&ip).copied().unwrap_or(0)
    }

    fn shard(&self, ip: IpAddr) -> &Mutex<HashMap<IpAddr, usize, ahash::RandomState>> {
        let last = match ip {
            IpAddr::V4(v4) => v4.octets()[3],
            IpAddr::V6(v6) => v6.octets()[15],
        };
        &self.shards[usize::from(last) % self.shards.len()]
    }
}

/// One counted connection; uncounted when dropped.
#[derive(Debug)]
pub struct PerIpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for PerIpSlot {
    fn drop(&mut self) {
        let mut shard = self
            .table
            .shard(self.ip)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(open) = shard.get_mut(&self.ip) {
            *open -= 1;
            if *open == 0 {
                shard.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_caps_and_releases() {
        let table = Arc::new(PerIp::default());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let a = table.admit(ip, 2).unwrap();
        let b = table.admit(mapped, 2).unwrap();
        assert!(table.admit(ip, 2).is_none(), "third from one address");
        assert!(table.admit("10.0.0.2".parse().unwrap(), 2).is_some());
        drop(a);
        assert_eq!(table.open(ip), 1);
        drop(b);
        assert_eq!(table.open(ip), 0);
        assert!(table.shards.iter().all(|s| s.lock().unwrap().is_empty()));
    }
}

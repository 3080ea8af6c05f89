//! Agent host names → addresses, resolved before a build so that building never blocks on DNS.
//!
//! Marathon-LB resolves `task.host` with a blocking `gethostbyname` and caches it forever. Here
//! lookups run concurrently on tokio's resolver (off the async workers), each with a timeout,
//! IPv4 preferred as Marathon-LB does; a name that fails to resolve keeps its last known address,
//! so a DNS blip does not take its tasks out of rotation.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::marathon::wire;
use crate::model::AgentAddrs;

/// How long one name may take to resolve.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Remembers resolved agents between refreshes.
#[derive(Debug, Default)]
pub struct AgentResolver {
    known: HashMap<String, IpAddr>,
}

impl AgentResolver {
    /// Resolves every agent the apps' tasks run on; names that fail and were never resolved are
    /// left out (their tasks are reported as unresolvable by the model).
    pub async fn resolve(&mut self, apps: &[wire::App]) -> AgentAddrs {
        let names = AgentAddrs::names_to_resolve(apps.iter());
        self.resolve_names(names).await
    }

    /// The agents every app runs on when only `changed` apps changed since the last call:
    /// names already known keep their address, new ones are looked up. Forgetting agents and
    /// looking known ones up again is left to [`AgentResolver::resolve`] (full reads).
    pub async fn resolve_changed<'a>(
        &mut self,
        apps: impl Iterator<Item = &'a wire::App>,
    ) -> AgentAddrs {
        let mut names = AgentAddrs::names_to_resolve(apps);
        names.retain(|name| !self.known.contains_key(name));
        if !names.is_empty() {
            let mut known = std::mem::take(&mut self.known);
            let found = self.resolve_names(names).await;
            known.extend(found.iter().map(|(name, ip)| (name.to_owned(), ip)));
            self.known = known;
        }
        AgentAddrs::new(self.known.clone())
    }

    async fn resolve_names(&mut self, names: HashSet<String>) -> AgentAddrs {
        let mut lookups = JoinSet::new();
        for name in names {
            lookups.spawn(async move {
                let found = tokio::time::timeout(LOOKUP_TIMEOUT, lookup(&name)).await;
                (name, found.ok().flatten())
            });
        }
        let mut resolved = HashMap::new();
        while let Some(joined) = lookups.join_next().await {
            let Ok((name, found)) = joined else { continue };
            match found.or_else(|| self.known.get(&name).copied()) {
                Some(ip) => {
                    resolved.insert(name, ip);
                }
                None => tracing::warn!(agent = %name, "agent host name does not resolve"),
            }
        }
        // Forget agents no task runs on any more.
        self.known = resolved.clone();
        AgentAddrs::new(resolved)
    }
}

async fn lookup(name: &str) -> Option<IpAddr> {
    let addrs: Vec<IpAddr> = tokio::net::lookup_host((name, 0))
        .await
        .ok()?
        .map(|a| a.ip())
        .collect();
    addrs
        .iter()
        .find(|ip| ip.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_localhost_and_reports_unknown_names() {
        let mut resolver = AgentResolver::default();
        let names: HashSet<String> = ["localhost".to_owned(), "no-such-agent.invalid".to_owned()]
            .into_iter()
            .collect();
        let addrs = resolver.resolve_names(names).await;
        assert!(addrs.get("localhost").is_some_and(|ip| ip.is_loopback()));
        assert_eq!(addrs.get("no-such-agent.invalid"), None);
        assert_eq!(addrs.get("127.0.0.7"), Some("127.0.0.7".parse().unwrap()));
    }

    #[tokio::test]
    async fn keeps_the_last_known_address_when_a_lookup_fails() {
        let mut resolver = AgentResolver::default();
        resolver
            .known
            .insert("agent.invalid".to_owned(), "10.0.0.9".parse().unwrap());
        let addrs = resolver
            .resolve_names(["agent.invalid".to_owned()].into_iter().collect())
            .await;
        assert_eq!(
            addrs.get("agent.invalid"),
            Some("10.0.0.9".parse().unwrap())
        );
    }
}

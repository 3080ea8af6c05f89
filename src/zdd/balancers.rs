//! Every balancer instance the deployment must wait for: each `-l` URL, and every address its
//! name resolves to (as `zdd.py` asked each address of `marathon-lb.marathon.mesos`), read
//! through the admin port's `/stats`: which of the group's tasks it routes, which it drains,
//! and the requests in flight on each.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use super::ZddError;

/// How long one `/stats` read may take.
const STATS_TIMEOUT: Duration = Duration::from_secs(5);

/// One balancer instance: where its admin port is, and how to name it.
#[derive(Debug, Clone)]
pub struct Balancer {
    url: reqwest::Url,
    pub shown: String,
}

/// What one balancer says of the group's tasks, by task id.
pub type View = HashMap<String, EndpointView>;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointView {
    pub draining: bool,
    /// Skipped now (failed checks or a passive back-off).
    pub down: bool,
    pub in_flight: usize,
}

/// Expands the `-l` URLs: a name stands for each of its addresses (its IPv4 ones when it has
/// any, as `zdd.py` read A records, else its IPv6 ones); duplicates are dropped.
pub async fn resolve(urls: &[String]) -> Result<Vec<Balancer>, ZddError> {
    let mut out: Vec<Balancer> = Vec::new();
    for raw in urls {
        let url = reqwest::Url::parse(raw.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| ZddError::InvalidArgs(format!("-l {raw}: not an http(s) URL")))?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<IpAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                let found: Vec<IpAddr> = tokio::net::lookup_host((host.as_str(), port))
                    .await
                    .map_err(|e| {
                        ZddError::Balancer(format!("-l {raw}: cannot resolve {host}: {e}"))
                    })?
                    .map(|a| a.ip())
                    .collect();
                let v4: Vec<IpAddr> = found.iter().copied().filter(IpAddr::is_ipv4).collect();
                if v4.is_empty() {
                    found
                } else {
                    v4
                }
            }
        };
        for ip in addrs {
            let mut one = url.clone();
            let _ = one.set_ip_host(ip);
            let shown = if bare.parse::<IpAddr>().is_ok() {
                one.as_str().trim_end_matches('/').to_owned()
            } else {
                format!("{} ({host})", one.as_str().trim_end_matches('/'))
            };
            if !out.iter().any(|b| b.url == one) {
                out.push(Balancer { url: one, shown });
            }
        }
    }
    if out.is_empty() {
        return Err(ZddError::InvalidArgs(
            "no balancer: give its admin URL with -l".to_owned(),
        ));
    }
    Ok(out)
}

/// The admin port's `/stats`, the parts read here (the balancer's `admin/stats.rs`).
#[derive(Debug, Deserialize)]
struct Stats {
    #[serde(default)]
    backends: Vec<BackendStats>,
}

#[derive(Debug, Deserialize)]
struct BackendStats {
    app_id: String,
    #[serde(default)]
    endpoints: Vec<EndpointStats>,
}

#[derive(Debug, Deserialize)]
struct EndpointStats {
    task_id: String,
    #[serde(default)]
    in_flight: usize,
    #[serde(default)]
    down: bool,
    #[serde(default)]
    draining: bool,
}

impl Balancer {
    /// The group's tasks as this balancer routes them now (every port of the group's merged
    /// backend: a task listed on several ports counts its requests on all of them).
    pub async fn view(&self, http: &reqwest::Client, group: &str) -> Result<View, String> {
        let mut url = self.url.clone();
        url.set_path("/stats");
        let response = http
            .get(url)
            .timeout(STATS_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("{}: {}", self.shown, reason(&e)))?;
        if !response.status().is_success() {
            return Err(format!(
                "{}/stats answered {}",
                self.shown,
                response.status()
            ));
        }
        let stats: Stats = response
            .json()
            .await
            .map_err(|e| format!("{}/stats: {}", self.shown, reason(&e)))?;
        let mut view = View::new();
        for backend in stats.backends.iter().filter(|b| b.app_id == group) {
            for endpoint in &backend.endpoints {
                let seen = view.entry(endpoint.task_id.clone()).or_default();
                seen.draining |= endpoint.draining;
                seen.down |= endpoint.down;
                seen.in_flight += endpoint.in_flight;
            }
        }
        Ok(view)
    }
}

fn reason(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "does not answer".to_owned()
    } else {
        "failed".to_owned()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_means_each_of_its_addresses_once() {
        let balancers = resolve(&[
            "http://localhost:9090/".to_owned(),
            "http://127.0.0.1:9090".to_owned(),
            "http://[::1]:9091".to_owned(),
        ])
        .await
        .unwrap();
        let shown: Vec<&str> = balancers.iter().map(|b| b.shown.as_str()).collect();
        // localhost's IPv4 address only (as zdd.py read A records), and 127.0.0.1 given
        // again is the same balancer.
        assert_eq!(
            shown,
            ["http://127.0.0.1:9090 (localhost)", "http://[::1]:9091"]
        );
        assert!(resolve(&["ftp://x".to_owned()]).await.is_err());
    }
}

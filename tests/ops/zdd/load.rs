//! Continuous load through a balancer while a deployment runs: a keep-alive client on the
//! group's vhost, a new-connection client on its service port, and a sampler of `/routes`.
//! Every answer is tallied by the app that gave it; every failure is kept.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;

use super::{Balancer, VHOST};

/// Between two requests of one client: keeps the load steady without taking every core from
/// the processes under test. Pacing only; nothing waits on it.
const PACE: Duration = Duration::from_millis(2);

#[derive(Debug, Default)]
pub struct Tally {
    /// Answers by the app id that gave them.
    pub by_app: BTreeMap<String, usize>,
    pub failures: Vec<String>,
    /// Each distinct set of routes `/routes` showed for the group.
    pub route_sets: BTreeSet<String>,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<Tally>>,
}

impl Load {
    pub fn start(balancer: &Balancer, service_port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let vhost_url = format!("http://{}/", balancer.http);
        let host = balancer.http.rsplit_once(':').unwrap().0.to_owned();
        let port_url = format!("http://{host}:{service_port}/");
        let keep_alive = crate::support::proxy::client();
        let fresh = crate::support::proxy::fresh_client();
        let routes_url = format!("http://{}/routes", balancer.admin);
        let mut clients = vec![tokio::spawn(routes(routes_url, stop.clone()))];
        // Two of each kind: requests overlap, as they do in production.
        for _ in 0..2 {
            let (keep_alive, fresh) = (keep_alive.clone(), fresh.clone());
            let (vhost_url, port_url) = (vhost_url.clone(), port_url.clone());
            clients.push(tokio::spawn(requests(
                keep_alive,
                vhost_url,
                Some(VHOST),
                stop.clone(),
            )));
            clients.push(tokio::spawn(requests(fresh, port_url, None, stop.clone())));
        }
        Load { stop, clients }
    }

    pub async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        for client in self.clients {
            let tally = client.await.unwrap();
            for (app, n) in tally.by_app {
                *total.by_app.entry(app).or_default() += n;
            }
            total.failures.extend(tally.failures);
            total.route_sets.extend(tally.route_sets);
        }
        total
    }
}

async fn requests(
    client: reqwest::Client,
    url: String,
    host: Option<&'static str>,
    stop: Arc<AtomicBool>,
) -> Tally {
    let mut tally = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        // A POST with a body: the balancer may not replay it on another endpoint, so a
        // request cut short by a kill shows as a failure.
        let mut request = client.post(&url).body("tweet");
        if let Some(host) = host {
            request = request.header("host", host);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.text().await {
                    Ok(body) if status == 200 => {
                        let app = body.split_whitespace().next().unwrap_or("").to_owned();
                        *tally.by_app.entry(app).or_default() += 1;
                    }
                    Ok(body) => tally.failures.push(format!("{url}: {status} {body}")),
                    Err(err) => tally.failures.push(format!("{url}: body: {err}")),
                }
            }
            Err(err) => tally.failures.push(format!("{url}: {err:?}")),
        }
        tokio::time::sleep(PACE).await;
    }
    tally
}

/// The group's routes (listener, host, path → backend) as `/routes` shows them, sampled.
async fn routes(url: String, stop: Arc<AtomicBool>) -> Tally {
    let client = crate::support::proxy::client();
    let mut tally = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        let routes: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        let mut rows: Vec<String> = routes["routes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["app_id"] == "/web")
            .map(|r| {
                format!(
                    "{} {} {} → {}",
                    r["listener"], r["host"], r["path"], r["backend"]
                )
            })
            .collect();
        rows.sort();
        tally.route_sets.insert(rows.join("; "));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tally
}

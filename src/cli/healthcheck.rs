//! `switchyard healthcheck`: asks a running balancer's admin port whether it serves, so that a
//! container image needs no curl. It reads the admin port and address from the same flags,
//! `SWITCHYARD_*` variables and config file as the balancer, so it finds the port the balancer
//! bound.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;

use super::heading;
use crate::routing::DEFAULT_PORTS;

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Ask `/readyz` (200 once a first routing table is served) instead of
    /// `/_haproxy_health_check` (200 while the process serves).
    #[arg(long)]
    pub ready: bool,
    /// Seconds to wait for the answer (under the image's HEALTHCHECK timeout, 3 s, so that
    /// the reason is printed before Docker gives up).
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub timeout: f64,
    /// The balancer's admin port.
    #[arg(long, default_value_t = DEFAULT_PORTS.admin, help_heading = heading::LISTENERS)]
    pub admin_port: u16,
    /// The balancer's --admin-bind-address; `0.0.0.0` and `::` are asked on loopback.
    #[arg(long, help_heading = heading::LISTENERS)]
    pub admin_bind_address: Option<IpAddr>,
    /// The balancer's --bind-address, used when --admin-bind-address is not set.
    #[arg(long, default_value = "0.0.0.0", help_heading = heading::LISTENERS)]
    pub bind_address: IpAddr,
}

/// Runs `switchyard healthcheck`: 0 when the admin port answers 200, 1 otherwise (Docker's
/// HEALTHCHECK reads 0 as healthy, 1 as unhealthy).
pub async fn healthcheck(args: HealthcheckArgs) -> ExitCode {
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout < 1e6) {
        return super::fail("--timeout must be a positive number of seconds");
    }
    let addr = SocketAddr::new(
        loopback_if_any(args.admin_bind_address.unwrap_or(args.bind_address)),
        args.admin_port,
    );
    let path = match args.ready {
        true => "/readyz",
        false => "/_haproxy_health_check",
    };
    let url = format!("http://{addr}{path}");
    let timeout = Duration::from_secs_f64(args.timeout);
    match tokio::time::timeout(timeout, get(addr, path)).await {
        Ok(Ok(status)) if status == hyper::StatusCode::OK => {
            println!("{url}: {status}");
            ExitCode::SUCCESS
        }
        Ok(Ok(status)) => super::fail(&format!("{url}: {status}")),
        Ok(Err(reason)) => super::fail(&format!("{url}: {reason}")),
        Err(_) => super::fail(&format!("{url}: no answer within {}s", args.timeout)),
    }
}

/// A listener bound to every address answers on loopback.
fn loopback_if_any(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

/// One `GET path` on a fresh connection; the response's status.
async fn get(addr: SocketAddr, path: &str) -> Result<hyper::StatusCode, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::USER_AGENT, "switchyard-healthcheck")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    Ok(response.status())
}

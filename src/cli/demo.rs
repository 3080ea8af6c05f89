//! `switchyard demo`: the Marathon simulator, real backends and the balancer on one machine.

use std::process::ExitCode;

use clap::Args;

use super::fail;
use crate::routing::DEFAULT_PORTS;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address every demo listener binds to.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: std::net::IpAddr,
    /// The HTTP port (routes by Host).
    #[arg(long, default_value_t = 8080)]
    pub http_port: u16,
    /// The HTTPS port (routes by Host; a self-signed certificate).
    #[arg(long, default_value_t = 8443)]
    pub https_port: u16,
    /// The port that routes by the X-Marathon-App-Id header.
    #[arg(long, default_value_t = DEFAULT_PORTS.app_id)]
    pub app_id_port: u16,
    /// The admin port.
    #[arg(long, default_value_t = DEFAULT_PORTS.admin)]
    pub admin_port: u16,
    /// Tweeter's service port.
    #[arg(long, default_value_t = 10000)]
    pub tweeter_port: u16,
    /// Seconds between two changes to Tweeter.
    #[arg(long, default_value_t = 4.0)]
    pub interval: f64,
}

/// Runs `switchyard demo` until Ctrl-C or SIGTERM.
pub async fn demo(args: DemoArgs) -> ExitCode {
    if !(args.interval.is_finite() && args.interval >= 0.05 && args.interval < 1e6) {
        return fail("--interval must be at least 0.05 seconds");
    }
    let options = crate::sim::demo::DemoOptions {
        bind_address: args.bind_address,
        http_port: args.http_port,
        https_port: args.https_port,
        app_id_port: args.app_id_port,
        admin_port: args.admin_port,
        tweeter_port: args.tweeter_port,
        interval: std::time::Duration::from_secs_f64(args.interval),
    };
    match crate::sim::demo::run(options, stop_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

//! `--*-timeout`, `--max-*` and the other data-plane flags, and the proxy configuration they make.

use clap::Args;

use super::heading;
use crate::proxy::{ProxyConfig, DEFAULTS};

/// Timeouts (seconds) and limits of the data plane; all on by default.
#[derive(Debug, Clone, Args)]
pub struct LimitFlags {
    /// Connecting to an endpoint (then the next endpoint is tried).
    #[arg(long, default_value_t = DEFAULTS.connect_timeout.as_secs_f64(), help_heading = heading::TIMEOUTS)]
    pub connect_timeout: f64,
    /// Waiting for an endpoint's response headers (then 504).
    #[arg(long, default_value_t = DEFAULTS.server_timeout.as_secs_f64(), help_heading = heading::TIMEOUTS)]
    pub server_timeout: f64,
    /// Reading a request's headers, and a keep-alive connection's idle time.
    #[arg(long, default_value_t = DEFAULTS.header_timeout.as_secs_f64(), help_heading = heading::TIMEOUTS)]
    pub header_timeout: f64,
    /// A request body bringing less than 1 KiB in this long (stalled or dribbled): 408, and
    /// the upstream request is aborted.
    #[arg(long, default_value_t = DEFAULTS.client_body_timeout.as_secs_f64(), help_heading = heading::TIMEOUTS)]
    pub client_body_timeout: f64,
    /// A response the client does not take (stops reading; HTTP/2 window never opened) this
    /// long: the connection is closed.
    #[arg(long, default_value_t = DEFAULTS.client_send_timeout.as_secs_f64(), help_heading = heading::TIMEOUTS)]
    pub client_send_timeout: f64,
    /// A WebSocket or TCP-mode connection with no traffic either way.
    #[arg(long, default_value_t = DEFAULTS.tunnel_timeout.as_secs_f64(), help_heading = heading::TIMEOUTS)]
    pub tunnel_timeout: f64,
    /// How long a stopping balancer lets requests in flight finish.
    #[arg(long, default_value_t = DEFAULTS.drain_timeout.as_secs_f64(), help_heading = heading::TIMEOUTS)]
    pub drain_timeout: f64,
    /// Client connections open at once, all listeners together.
    #[arg(long, default_value_t = DEFAULTS.max_connections, help_heading = heading::LIMITS)]
    pub max_connections: usize,
    /// Client connections open at once from one IP address; more are closed at accept.
    #[arg(long, default_value_t = DEFAULTS.max_connections_per_ip, help_heading = heading::LIMITS)]
    pub max_connections_per_ip: usize,
    /// Largest request head, in bytes.
    #[arg(long, default_value_t = DEFAULTS.max_header_bytes, help_heading = heading::LIMITS)]
    pub max_header_bytes: usize,
    /// Log every request, routed or not, when its response ends (target `access`, level info):
    /// client, listener, method, host, path, query, protocol, status, bytes in and out,
    /// durations, backend, endpoint, referer, user agent.
    #[arg(long, help_heading = heading::LOGGING)]
    pub access_log: bool,
    /// Serve every HTTP/1 connection with hyper instead of the native HTTP/1 path (which
    /// forwards the common request itself and hands anything else to hyper), and send every
    /// request to backends with hyper's client.
    #[arg(long, help_heading = heading::LIMITS)]
    pub hyper_http1: bool,
    /// CA certificates (PEM) that the certificates of `h1-ssl` and `h2-ssl` endpoints must
    /// chain to (the name in them is not checked). Without it any certificate is accepted.
    #[arg(long, value_name = "FILE", help_heading = heading::TLS)]
    pub backend_ca: Option<std::path::PathBuf>,
}

impl LimitFlags {
    pub fn proxy_config(&self) -> Result<ProxyConfig, String> {
        let seconds = |name: &str, value: f64| {
            if value.is_finite() && value > 0.0 && value < 1e9 {
                Ok(std::time::Duration::from_secs_f64(value))
            } else {
                Err(format!(
                    "--{name} must be a positive number of seconds, not {value}"
                ))
            }
        };
        if self.max_connections == 0 {
            return Err("--max-connections must be at least 1".to_owned());
        }
        if self.max_connections_per_ip == 0 {
            return Err("--max-connections-per-ip must be at least 1".to_owned());
        }
        if !(1024..=1 << 24).contains(&self.max_header_bytes) {
            return Err("--max-header-bytes must be between 1024 and 16777216".to_owned());
        }
        Ok(ProxyConfig {
            connect_timeout: seconds("connect-timeout", self.connect_timeout)?,
            server_timeout: seconds("server-timeout", self.server_timeout)?,
            header_timeout: seconds("header-timeout", self.header_timeout)?,
            client_body_timeout: seconds("client-body-timeout", self.client_body_timeout)?,
            client_send_timeout: seconds("client-send-timeout", self.client_send_timeout)?,
            tunnel_timeout: seconds("tunnel-timeout", self.tunnel_timeout)?,
            drain_timeout: seconds("drain-timeout", self.drain_timeout)?,
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            max_header_bytes: self.max_header_bytes,
            access_log: self.access_log,
            native_http1: !self.hyper_http1,
            backend_ca: self.backend_ca.clone(),
            ..ProxyConfig::default()
        })
    }
}

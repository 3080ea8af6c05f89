//! The flags that say how to reach Marathon, with Marathon-LB's names.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::heading;
use crate::marathon::{Credentials, MarathonConfig, ServiceAccount, StreamOptions};
use crate::serve::MarathonSource;

/// Marathon-LB's positional first word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceMode {
    /// Follow Marathon's event stream (the default).
    Sse,
    /// Poll `/v2/apps` every `--marathon-poll` seconds instead.
    Poll,
}

/// Where Marathon is and how to log in; shared by serve mode and `switchyard routes`.
#[derive(Debug, Clone, Args)]
pub struct MarathonAccess {
    /// Marathon URL(s), given after one flag and/or by repeating it; tried in order.
    #[arg(long, short = 'm', value_name = "URL", num_args = 1.., help_heading = heading::SOURCE)]
    pub marathon: Vec<String>,
    /// HTTP Basic credentials for Marathon, `user:password`.
    #[arg(long, value_name = "USER:PASSWORD", hide_env_values = true, help_heading = heading::LOGIN)]
    pub auth_credentials: Option<String>,
    /// A file whose first line is `user:password` (wins over --auth-credentials).
    #[arg(long, value_name = "FILE", help_heading = heading::LOGIN)]
    pub marathon_auth_credential_file: Option<PathBuf>,
    /// A DC/OS service-account credential (JSON with uid, private_key, login_endpoint).
    #[arg(
        long,
        value_name = "JSON",
        env = "DCOS_SERVICE_ACCOUNT_CREDENTIAL",
        hide_env_values = true,
        help_heading = heading::LOGIN
    )]
    pub dcos_auth_credentials: Option<String>,
    /// A PEM CA bundle to verify Marathon's and the login endpoint's certificates
    /// (`https://marathon.mesos:8443` uses the DC/OS CA). Without it the public roots are used.
    #[arg(long, value_name = "FILE", help_heading = heading::LOGIN)]
    pub marathon_ca_cert: Option<PathBuf>,
}

impl MarathonAccess {
    /// The client settings. Precedence as in Marathon-LB: credential file, then
    /// --auth-credentials, then the DC/OS service account.
    pub fn config(&self) -> Result<MarathonConfig, String> {
        let credentials = if let Some(path) = &self.marathon_auth_credential_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "cannot read --marathon-auth-credential-file {}: {e}",
                    path.display()
                )
            })?;
            Credentials::basic(&text).map_err(|e| format!("{}: {e}", path.display()))?
        } else if let Some(value) = &self.auth_credentials {
            Credentials::basic(value).map_err(|e| format!("--auth-credentials: {e}"))?
        } else if let Some(json) = self
            .dcos_auth_credentials
            .as_ref()
            .filter(|j| !j.is_empty())
        {
            Credentials::ServiceAccount(
                ServiceAccount::from_json(json)
                    .map_err(|e| format!("--dcos-auth-credentials: {e}"))?,
            )
        } else {
            Credentials::None
        };
        Ok(MarathonConfig {
            urls: self.marathon.clone(),
            credentials,
            ca_cert: self.marathon_ca_cert.clone(),
        })
    }
}

/// How serve mode follows Marathon.
#[derive(Debug, Clone, Args)]
pub struct MarathonFollow {
    /// Follow the event stream (the default; accepted for Marathon-LB compatibility).
    #[arg(long, short = 's', help_heading = heading::FOLLOW)]
    pub sse: bool,
    /// Seconds between polls of `/v2/apps` in `poll` mode.
    #[arg(long, default_value_t = 5.0, help_heading = heading::FOLLOW)]
    pub marathon_poll: f64,
    /// Largest delay, in seconds, between attempts to reconnect the event stream.
    #[arg(long, default_value_t = 300.0, help_heading = heading::FOLLOW)]
    pub max_backoff: f64,
    /// Seconds between full refetches made even without events.
    #[arg(long, default_value_t = 300.0, help_heading = heading::FOLLOW)]
    pub resync_interval: f64,
    /// While events keep coming, seconds between refetches at least (the first change after a
    /// quiet spell is fetched at once).
    #[arg(long, default_value_t = 0.25, help_heading = heading::FOLLOW)]
    pub min_refresh_interval: f64,
    /// Seconds without a byte (Marathon sends one every 10 s) before the stream is reconnected.
    #[arg(long, default_value_t = 30.0, help_heading = heading::FOLLOW)]
    pub stream_stall_timeout: f64,
}

impl MarathonFollow {
    /// The source settings and the poll interval for `mode`.
    pub fn source(
        &self,
        mode: Option<SourceMode>,
        client: MarathonConfig,
    ) -> Result<(MarathonSource, Duration), String> {
        let seconds = |name: &str, value: f64, zero_ok: bool| {
            if value.is_finite() && (value > 0.0 || zero_ok && value == 0.0) && value < 1e9 {
                Ok(Duration::from_secs_f64(value))
            } else {
                Err(format!(
                    "--{name} must be a positive number of seconds, not {value}"
                ))
            }
        };
        let poll = seconds("marathon-poll", self.marathon_poll, false)?;
        let source = MarathonSource {
            client,
            events: mode != Some(SourceMode::Poll),
            stream: StreamOptions {
                stall: seconds("stream-stall-timeout", self.stream_stall_timeout, false)?,
                max_backoff: seconds("max-backoff", self.max_backoff, false)?,
                ..StreamOptions::default()
            },
            resync: seconds("resync-interval", self.resync_interval, false)?,
            min_refresh_interval: seconds("min-refresh-interval", self.min_refresh_interval, true)?,
            empty_list_confirm: MarathonSource::EMPTY_LIST_CONFIRM,
        };
        Ok((source, poll))
    }
}

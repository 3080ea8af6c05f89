//! Marathon-LB's flags that configure HAProxy: accepted so that its argument lists run unchanged,
//! and reported once at start as doing nothing here.

use clap::Args;

#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = super::heading::HAPROXY_ONLY)]
pub struct HaproxyOnlyFlags {
    #[arg(long)]
    pub haproxy_map: bool,
    #[arg(long, value_name = "FILE")]
    pub haproxy_config: Option<String>,
    #[arg(long, value_name = "CMD")]
    pub command: Option<String>,
    #[arg(long, value_name = "SECONDS")]
    pub reload_interval: Option<String>,
    #[arg(long, value_name = "N")]
    pub max_reload_retries: Option<String>,
    #[arg(long)]
    pub skip_validation: bool,
    #[arg(long, value_name = "N")]
    pub archive_versions: Option<String>,
    #[arg(long)]
    pub group_https_by_vhost: bool,
    #[arg(long, value_name = "N")]
    pub lru_cache_capacity: Option<String>,
    #[arg(long, value_name = "SOCKET")]
    pub syslog_socket: Option<String>,
}

impl HaproxyOnlyFlags {
    /// The flags given, by name.
    pub fn given(&self) -> Vec<&'static str> {
        let flags = [
            (self.haproxy_map, "--haproxy-map"),
            (self.haproxy_config.is_some(), "--haproxy-config"),
            (self.command.is_some(), "--command"),
            (self.reload_interval.is_some(), "--reload-interval"),
            (self.max_reload_retries.is_some(), "--max-reload-retries"),
            (self.skip_validation, "--skip-validation"),
            (self.archive_versions.is_some(), "--archive-versions"),
            (self.group_https_by_vhost, "--group-https-by-vhost"),
            (self.lru_cache_capacity.is_some(), "--lru-cache-capacity"),
            (self.syslog_socket.is_some(), "--syslog-socket"),
        ];
        flags
            .into_iter()
            .filter(|(set, _)| *set)
            .map(|(_, name)| name)
            .collect()
    }
}

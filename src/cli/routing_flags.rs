//! The flags that decide what is routed and which ports the balancer keeps for itself; shared by
//! every command that builds a table.

use clap::{ArgAction, Args};

use super::heading;
use crate::model::{Groups, ModelOptions};
use crate::routing::{BalancerPorts, BuildOptions, DEFAULT_PORTS};

#[derive(Debug, Clone, Args)]
pub struct RoutingFlags {
    /// Serve apps whose HAPROXY_GROUP (or HAPROXY_<n>_GROUP) includes this group; repeatable;
    /// `*` serves every app, including apps without a group.
    #[arg(long, value_name = "GROUP", default_value = "external", help_heading = heading::ROUTED)]
    pub group: Vec<String>,
    /// Serve only ports labelled HAPROXY_<n>_ENABLED=true.
    #[arg(long, help_heading = heading::ROUTED)]
    pub strict_mode: bool,
    /// Route only tasks whose Marathon health checks pass: on by default (Marathon-LB's
    /// Universe package always passes it). `--health-check=false` (in a file
    /// `health-check = false`, in the environment `SWITCHYARD_HEALTH_CHECK=false`) routes tasks
    /// whatever their health-check results, as --no-health-check does.
    #[arg(
        long,
        short = 'H',
        value_name = "BOOL",
        action = ArgAction::Set,
        num_args = 0..=1,
        // `--health-check sse`: `sse` stays Marathon-LB's first word, not this flag's value.
        require_equals = true,
        default_value_t = true,
        default_missing_value = "true",
        overrides_with = "no_health_check",
        help_heading = heading::ROUTED
    )]
    pub health_check: bool,
    /// Route tasks whatever their health-check results (= --health-check=false).
    #[arg(long, help_heading = heading::ROUTED)]
    pub no_health_check: bool,
    /// Lowest service port auto-assigned to IP-per-task apps without service ports.
    #[arg(long, default_value_t = 10050, help_heading = heading::ROUTED)]
    pub min_serv_port_ip_per_task: u16,
    /// Highest such port.
    #[arg(long, default_value_t = 10100, help_heading = heading::ROUTED)]
    pub max_serv_port_ip_per_task: u16,
    /// The HTTP port (no service port may take it).
    #[arg(long, default_value_t = DEFAULT_PORTS.http, help_heading = heading::LISTENERS)]
    pub http_port: u16,
    /// The HTTPS port.
    #[arg(long, default_value_t = DEFAULT_PORTS.https, help_heading = heading::LISTENERS)]
    pub https_port: u16,
    /// The admin port.
    #[arg(long, default_value_t = DEFAULT_PORTS.admin, help_heading = heading::LISTENERS)]
    pub admin_port: u16,
    /// The port that routes by the X-Marathon-App-Id header.
    #[arg(long, default_value_t = DEFAULT_PORTS.app_id, help_heading = heading::LISTENERS)]
    pub app_id_port: u16,
}

impl RoutingFlags {
    pub fn model_options(&self) -> Result<ModelOptions, String> {
        if self.min_serv_port_ip_per_task > self.max_serv_port_ip_per_task {
            return Err(format!(
                "--min-serv-port-ip-per-task {} is above --max-serv-port-ip-per-task {}",
                self.min_serv_port_ip_per_task, self.max_serv_port_ip_per_task
            ));
        }
        let groups = Groups::parse(&self.group.join(","));
        if groups.is_empty() {
            return Err("--group needs at least one group name (or '*')".to_owned());
        }
        Ok(ModelOptions {
            groups,
            strict_mode: self.strict_mode,
            health_check: self.health_check && !self.no_health_check,
            framework_name: std::env::var("FRAMEWORK_NAME")
                .ok()
                .filter(|n| !n.is_empty()),
            ip_per_task_ports: self.min_serv_port_ip_per_task..=self.max_serv_port_ip_per_task,
        })
    }

    pub fn build_options(&self) -> BuildOptions {
        let ports = BalancerPorts {
            http: self.http_port,
            https: self.https_port,
            admin: self.admin_port,
            app_id: self.app_id_port,
        };
        BuildOptions {
            reserved_ports: ports.reserved(),
            metrics: None,
        }
    }
}

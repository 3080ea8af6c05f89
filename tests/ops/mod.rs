//! Running the balancer: the admin port, logs, the status page, the `routes` and `demo`
//! commands, configuration files and variables, and the process lifecycle (upgrade, drain).

mod admin;
mod config;
mod control_logs;
mod demo_cli;
mod lifecycle;
mod logs;
mod routes_cli;
mod status_page;

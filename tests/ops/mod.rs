//! Running the balancer: the admin port, logs, the status page, the command line (`routes`,
//! `--dry`, `healthcheck`, `demo`, help, man page, completions, mistakes), configuration files
//! and variables, and the process lifecycle (upgrade, drain).

mod admin;
mod cli_manual;
mod cli_mistakes;
mod config;
mod control_logs;
mod demo_cli;
mod dry_run;
mod healthcheck_cli;
mod lifecycle;
mod logs;
mod metrics;
mod routes_cli;
mod status_page;

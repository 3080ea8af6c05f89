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
mod zdd;

use std::process::Output;
use std::time::Duration;

/// Guards against a command that serves instead of exiting; never a synchronisation point.
const EXIT_GUARD: Duration = Duration::from_secs(60);

/// The real binary run with `args` until it exits (without `RUST_LOG`, or Marathon-LB's
/// `FRAMEWORK_NAME` that would set its group).
async fn run(args: &[&str]) -> Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env_remove("FRAMEWORK_NAME")
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(EXIT_GUARD, child).await {
        Ok(output) => output.expect("the binary runs"),
        Err(_) => panic!("`switchyard {}` did not exit: it serves", args.join(" ")),
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

use std::process::ExitCode;

use clap::CommandFactory;
use switchyard::cli::{self, Cli, Command, LogFormat};

// Many small, short-lived allocations per table build and per request; glibc's malloc spends
// much of a large table's build consolidating free lists. mimalloc does not (`alloc.rs` says how
// it is called).
#[global_allocator]
static GLOBAL: switchyard::alloc::Allocator = switchyard::alloc::Allocator;

fn main() -> ExitCode {
    let cli = match cli::config::parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    switchyard::logs::init(cli.log_format == LogFormat::Json, cli.log_level);
    if cli.command.is_none() {
        // Before any thread starts: it reads and edits the environment.
        switchyard::handover::adopt();
    }
    // One thread: a current-thread runtime, no work stealing or cross-thread wake-ups.
    let mut builder = match cli.serve.threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        0 => tokio::runtime::Builder::new_multi_thread(),
        n => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("switchyard: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Some(Command::Routes(args)) => runtime.block_on(cli::routes(args)),
        Some(Command::Demo(args)) => runtime.block_on(cli::demo(args)),
        None if cli.serve.apps_file.is_none() && cli.serve.access.marathon.is_empty() => {
            let _ = Cli::command().print_help();
            ExitCode::from(2)
        }
        None => runtime.block_on(cli::serve(cli.serve)),
    }
}

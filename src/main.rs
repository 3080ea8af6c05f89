use std::process::ExitCode;

use switchyard::cli::{self, Command, LogFormat};

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
    let command = match cli.command {
        Some(Command::Completions(args)) => return cli::completions(args),
        Some(Command::Man(args)) => return cli::man(args),
        command => command,
    };
    switchyard::logs::init(cli.log_format == LogFormat::Json, cli.log_level);
    // Our TLS configurations name their provider; this is for any library that takes rustls'
    // process default, which two providers in the build (ring, aws-lc-rs) leave unset.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let serving = command.is_none() && !cli.serve.dry;
    if serving {
        // Before any thread starts: it reads and edits the environment.
        switchyard::handover::adopt();
    }
    // Commands that read once and exit need no worker threads.
    let threads = match (&command, serving) {
        (None, true) | (Some(Command::Demo(_)), _) => cli.serve.threads,
        _ => 1,
    };
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    // The main thread's runtime: everything with one thread; the control plane beside the
    // per-core workers (`workers.rs`) with more.
    if let Err(err) = switchyard::workers::start(threads) {
        eprintln!("switchyard: cannot start the worker threads: {err}");
        return ExitCode::FAILURE;
    }
    let mut builder = tokio::runtime::Builder::new_current_thread();
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("switchyard: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        Some(Command::Routes(args)) => runtime.block_on(cli::routes(args)),
        Some(Command::Healthcheck(args)) => runtime.block_on(cli::healthcheck(args)),
        Some(Command::Demo(args)) => runtime.block_on(cli::demo(args)),
        Some(Command::Zdd(args)) => runtime.block_on(cli::zdd(args)),
        // Printed before the runtime is made.
        Some(Command::Completions(_) | Command::Man(_)) => ExitCode::SUCCESS,
        None if cli.serve.dry => runtime.block_on(cli::dry_run(cli.serve)),
        None if cli.serve.apps_file.is_none() && cli.serve.access.marathon.is_empty() => {
            let _ = cli::config::command().print_help();
            ExitCode::from(2)
        }
        None => runtime.block_on(cli::serve(cli.serve)),
    }
}

//! Shell completions and man pages, generated from the command line itself (clap_complete,
//! clap_mangen), so they always list the options this binary takes.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{config, fail};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write switchyard.1 and one page per subcommand (switchyard-routes.1, ...) into this
    /// directory instead of printing switchyard.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell` on stdout.
pub fn completions(args: CompletionsArgs) -> ExitCode {
    let mut command = config::command();
    // Into memory first: the generator panics on a failed write (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "switchyard", &mut script);
    let mut out = std::io::stdout().lock();
    match out.write_all(&script).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader stopped reading (`| head`): what it wanted was written.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => fail(&format!("cannot write the completions: {err}")),
    }
}

/// Prints switchyard(1), or writes every page into `args.dir`.
pub fn man(args: ManArgs) -> ExitCode {
    let command = config::command();
    let written = match &args.dir {
        Some(dir) => clap_mangen::generate_to(command, dir)
            .map_err(|e| format!("cannot write the man pages into {}: {e}", dir.display())),
        None => {
            let mut out = std::io::stdout().lock();
            match clap_mangen::Man::new(command)
                .render(&mut out)
                .and_then(|()| out.flush())
            {
                // The reader stopped reading (`| head`): what it wanted was written.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                written => written.map_err(|e| format!("cannot write the man page: {e}")),
            }
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}
